"""Local complexity: the exact number of regions in a neighbourhood of each point of a batch."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from .. import _polyhedra
from .._geometry import nearest_floats
from .._progress import progress_bar
from ..capture import Program, capture
from ..certificate import Certificate
from ..domain import Box, Domain, Slice, to_fraction
from ..errors import InvalidInputError, RegionLimitError
from ..trace import trace
from ..verify import verify
from ._maps import Point, exact_point

__all__ = ["LocalComplexity", "local_complexity", "count_in_boxes"]

#: ``strategy="auto"`` certifies the bounding box of all box neighbourhoods once when its float
#: trace finds at most this many regions per point, each neighbourhood on its own otherwise.
#: Measured with ``benchmarks/local_complexity_bench.py`` (2-D, compiled engine): a certificate
#: of its own costs a neighbourhood about 5 ms, the union about 0.1-0.2 ms per region of the
#: bounding box (certificate and counting).
UNION_REGIONS_PER_POINT = 40


@dataclass
class LocalComplexity:
    """Exact region counts around each point.

    ``counts[i]``: the number of activation regions meeting neighbourhood ``i`` in a set of
    positive volume (= the regions of the certificate of that neighbourhood);
    ``volumes[i]``: the neighbourhood's exact volume in its own coordinates (area in slice
    coordinates ``t`` for a 2-D slice: a true area when the directions are orthonormal);
    ``densities[i] = counts[i] / volumes[i]`` (regions per unit volume, exact).
    ``strategy``: ``"each"`` (one certificate per neighbourhood) or ``"union"`` (one certificate
    of their bounding box, restricted to each neighbourhood by exact LPs). ``certificates``
    (with ``keep=True``): the certificates made, one per neighbourhood or the union's alone;
    ``seconds``: wall time.
    """

    counts: list[int]
    volumes: list[Fraction]
    densities: list[Fraction]
    neighbourhoods: list[Domain]
    strategy: str
    certificates: list[Certificate] | None
    seconds: float


def local_complexity(net: nn.Module | Program, points: Any, *, radius: Any = None, box: Any = None,
                     slice: Any = None, input_shape: Sequence[int] | None = None,
                     strategy: str = "auto", keep: bool = False, engine: str = "auto",
                     progress: bool = False) -> LocalComplexity:
    """Certify the regions around every point of ``points`` and count them, exactly.

    Neighbourhoods, in the network's input coordinates unless ``slice`` is given:

    - ``radius=r``: the l_inf ball (box) ``x +- r`` around each point;
    - ``box=[(lo, hi), ...]``: the box ``x + [lo, hi]`` per coordinate;
    - ``slice=U`` (``k`` directions, each shaped like an input, or a tensor ``(k, *input_shape)``)
      with ``radius`` or ``box``: the ``k``-D slice ``x + U t`` through each point, ``t`` in
      ``[-r, r]^k`` or in ``box`` (given in slice coordinates).

    Every number is exact (points and bounds are taken exactly). The network is captured once
    for all points. ``strategy``: ``"each"`` certifies every neighbourhood on its own;
    ``"union"`` certifies the bounding box of all of them once (boxes only) and counts the
    regions of that certificate meeting each box with positive volume (exact bounding-box tests,
    then cddlib's exact LP where a region straddles the box); ``"auto"`` traces the bounding box
    in float (the first step of certifying it, reused) and takes the union when the trace finds
    at most :data:`UNION_REGIONS_PER_POINT` regions per point, each otherwise (the trace is
    stopped there). The strategy only changes the time: counts are exact either way.
    ``engine`` is passed to :func:`~exactrelu.verify`.

    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.eye(2)), net[0].bias.zero_()
    >>> lc = local_complexity(net, [[0, 0], [2, 2]], radius=1)
    >>> lc.counts, lc.densities
    ([4, 1], [Fraction(1, 1), Fraction(1, 4)])
    """
    t0 = time.perf_counter()
    if strategy not in ("auto", "each", "union"):
        raise InvalidInputError(f"strategy={strategy!r}: use 'auto', 'each' or 'union'")
    if (radius is None) == (box is None):
        raise InvalidInputError("give exactly one of radius= and box= (with slice=, in slice "
                                "coordinates)")
    prog = _program(net, points, input_shape)
    n = prog.in_dim
    pts = _points(points, n)
    if not pts:
        raise InvalidInputError("points is empty; pass at least one point")
    hoods = _neighbourhoods(prog, pts, radius, box, slice)
    volumes = [h.volume() for h in hoods]
    if strategy == "union" and slice is not None:
        raise InvalidInputError("strategy='union' needs box neighbourhoods (slices through "
                                "different points lie in different planes); use 'each'")
    tr = None
    if strategy == "auto":
        strategy = "each"
        if slice is None and len(hoods) > 1:
            try:  # the float trace of the bounding box, stopped once it is too large for "union"
                tr = trace(prog, _bounding_box(hoods), progress=False,
                           max_regions=UNION_REGIONS_PER_POINT * len(hoods))
                strategy = "union"
            except RegionLimitError:
                pass
    certs: list[Certificate] = []
    counts: list[int] = []
    if strategy == "union":
        union = verify(prog, _bounding_box(hoods), engine=engine, progress=False, trace=tr)
        counts = count_in_boxes(union, cast(list[Box], hoods))  # no slice: boxes
        certs = [union]
    else:
        with progress_bar(len(hoods), "local complexity", progress) as bar:
            for h in hoods:
                cert = verify(prog, h, engine=engine, progress=False)
                counts.append(cert.num_regions)
                if keep:
                    certs.append(cert)
                bar.update()
    return LocalComplexity(counts, volumes,
                           [c / v for c, v in zip(counts, volumes, strict=True)], hoods,
                           strategy, certs if keep else None, time.perf_counter() - t0)


def _program(net: nn.Module | Program, points: Any, input_shape: Sequence[int] | None) -> Program:
    if isinstance(net, Program):
        return net
    if input_shape is None:
        if isinstance(points, torch.Tensor) and points.dim() >= 2:
            input_shape = tuple(points.shape[1:])
        else:
            first = next(iter(net.children()), None) if isinstance(net, nn.Sequential) else None
            if not isinstance(first, nn.Linear):
                raise InvalidInputError("pass input_shape= (the shape of one sample) or the points "
                                        "as a tensor (N, *input_shape)")
            input_shape = (first.in_features,)
    return capture(net, input_shape)


def _points(points: Any, n: int) -> list[Point]:
    if isinstance(points, torch.Tensor):
        flat = points.detach().to("cpu", torch.float64).reshape(points.shape[0], -1)
        return [exact_point(row, n, f"points[{i}]") for i, row in enumerate(flat)]
    try:
        rows = list(points)
    except TypeError:
        raise InvalidInputError("points must be a tensor (N, *input_shape) or a list of points") \
            from None
    return [exact_point(p, n, f"points[{i}]") for i, p in enumerate(rows)]


def _neighbourhoods(prog: Program, pts: list[Point], radius: Any, box: Any,
                    directions: Any) -> list[Domain]:
    n = prog.in_dim
    if radius is not None:
        r = to_fraction(radius, "radius")
        if r <= 0:
            raise InvalidInputError(f"radius must be positive, got {r}")
    if directions is None:
        if radius is not None:
            return [Box([(c - r, c + r) for c in p]) for p in pts]
        offsets = Box(box)
        if offsets.dim != n:
            raise InvalidInputError(f"box has {offsets.dim} (lo, hi) pairs; the input has {n} "
                                    "coordinates")
        return [Box([(c + lo, c + hi)
                     for c, lo, hi in zip(p, offsets.lower, offsets.upper, strict=True)])
                for p in pts]
    dirs = [exact_point(u, n, f"slice[{i}]") for i, u in enumerate(directions)]
    k = len(dirs)
    region = Box([(-r, r)] * k) if radius is not None else Box(box)
    if region.dim != k:
        raise InvalidInputError(f"box has {region.dim} (lo, hi) pairs for a {k}-D slice")
    shape = prog.input_shape
    U = [np.array(u, dtype=object).reshape(shape) for u in dirs]
    return [Slice(np.array(p, dtype=object).reshape(shape), U, region) for p in pts]


def _bounding_box(hoods: Sequence[Domain]) -> Box:
    boxes = [h for h in hoods if isinstance(h, Box)]
    lows = [min(b.lower[i] for b in boxes) for i in range(boxes[0].dim)]
    highs = [max(b.upper[i] for b in boxes) for i in range(boxes[0].dim)]
    return Box(list(zip(lows, highs, strict=True)))


def count_in_boxes(cert: Certificate, boxes: Sequence[Box]) -> list[int]:
    """For each box, the number of regions of ``cert`` (bounded) meeting it in a set of positive
    volume, i.e. the region count of the same network certified on the box (inside the
    certificate's domain).

    A region whose bounding box (from its exact vertices) touches the box at most on its
    boundary does not count; one whose bounding box lies inside the box does; the others are
    decided by cddlib's exact LP on the region's facets and the box's rows. Bounding boxes are
    compared in float64 first: rounding to nearest is monotone, so a strict inequality between
    the nearest floats of two rationals is the same strict inequality between the rationals; the
    rest is compared exactly.
    """
    if not cert.domain.is_bounded:
        raise InvalidInputError("count_in_boxes needs a certificate of a bounded domain")
    d = cert.dim
    V = cert.vertices
    # float bounding boxes: the min (max) of the nearest floats is the nearest float of the min
    fv = nearest_floats(V).reshape(len(V), d)
    order = np.fromiter((k for r in cert.regions for k in r.vertices), dtype=np.int64)
    starts = np.cumsum([0] + [len(r.vertices) for r in cert.regions[:-1]])
    flo = np.minimum.reduceat(fv[order], starts, axis=0)
    fhi = np.maximum.reduceat(fv[order], starts, axis=0)
    exact_box: dict[int, tuple[list[Fraction], list[Fraction]]] = {}
    counts = []
    for bx in boxes:
        if bx.dim != d:
            raise InvalidInputError(f"a box of dimension {bx.dim} for a {d}-D certificate")
        dom = cert.domain
        if not (all(a <= lo and hi <= b for a, b, lo, hi in
                    zip(dom.lower, dom.upper, bx.lower, bx.upper, strict=True))
                if isinstance(dom, Box)
                else all(dom.contains(v) for v in bx.vertices())):
            raise InvalidInputError(f"{bx!r} is not inside the certificate's domain "
                                    f"{cert.domain!r}")
        blo = nearest_floats(list(bx.lower))
        bhi = nearest_floats(list(bx.upper))
        apart = ((fhi < blo) | (flo > bhi)).any(axis=1)
        inside = ((flo > blo) & (fhi < bhi)).all(axis=1)
        count = int(inside.sum())
        A, b = bx.halfspaces()
        for k in np.nonzero(~apart & ~inside)[0].tolist():
            if k not in exact_box:
                pts = [V[v] for v in cert.regions[k].vertices]
                exact_box[k] = ([min(p[i] for p in pts) for i in range(d)],
                                [max(p[i] for p in pts) for i in range(d)])
            lo, hi = exact_box[k]
            if any(hi[i] <= bx.lower[i] or lo[i] >= bx.upper[i] for i in range(d)):
                continue
            if all(bx.lower[i] <= lo[i] and hi[i] <= bx.upper[i] for i in range(d)):
                count += 1
                continue
            r = cert.regions[k]
            ip = _polyhedra.interior_point([list(f.a) for f in r.facets] + A,
                                           [f.b for f in r.facets] + b, dim=d)
            count += ip is not None and ip[1] > 0
        counts.append(count)
    return counts

