"""Per-region statistics of a certificate (volume, vertices, facets, diameter, inradius,
eccentricity), exact where the quantity is rational, and their aggregates."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from fractions import Fraction
from typing import Any

import numpy as np

from .. import _geometry
from ..certificate import Certificate
from ..errors import InvalidInputError
from ._maps import inscribed_ball, norm2_bounds

__all__ = ["RegionStatistics", "region_statistics", "summarize", "sqrt_float"]

#: the quantiles :meth:`RegionStatistics.summary` reports by default
QUANTILES = (Fraction(1, 10), Fraction(1, 4), Fraction(1, 2), Fraction(3, 4), Fraction(9, 10))


@dataclass
class RegionStatistics:
    """One column per statistic, one entry per region in the certificate's order (``dict(...)``
    of :meth:`columns` is what ``pandas.DataFrame`` takes).

    - ``volume``: exact d-volume (area in 2-D); None for unbounded regions.
    - ``num_vertices``, ``num_facets``: the region's own vertices (extreme points) and facets.
    - ``diameter_sq``: the exact squared Euclidean diameter (the largest squared distance between
      two vertices); ``diameter``: its square root as a float (see :func:`sqrt_float`: within one
      ulp). None for unbounded regions.
    - ``inradius_inf``: the exact radius of the largest l_inf ball (the half-width of the largest
      cube) inside the region, an exact LP over its facets with their normals' l1 norms.
    - ``inradius_lo`` <= Euclidean inradius <= ``inradius_hi``: the largest Euclidean ball needs
      the facets' normals' Euclidean norms, irrational in general. With rational bounds
      ``n_lo <= ||a|| <= n_hi`` (integer square roots, relative width below ``2^-bits``) the exact
      LP with ``n_hi`` gives a radius every real ball of which fits (a lower bound), the one
      with ``n_lo`` an upper bound; the two differ by a relative ``2^-bits`` at most. Equal when
      every normal's norm is rational (axis-aligned facets). None where unbounded (infinite),
      or when the statistics were asked for without them.
    - ``eccentricity_sq``: as SplineCam reports eccentricity (``region_eccentricity_2d`` in its
      ``utils.py``: the largest over the smallest distance between two vertices of the region's
      polygon), squared and exact; ``eccentricity`` its square root as a float. SplineCam's
      polygons are cycles of its planar graph and can also hold a neighbour's vertex lying on a
      side (where regions meet in a T), which only lowers the smallest distance; here the region's
      own vertices are used, in any dimension. None for unbounded regions.
    """

    index: list[int]
    volume: list[Fraction | None]
    num_vertices: list[int]
    num_facets: list[int]
    diameter_sq: list[Fraction | None]
    diameter: list[float | None]
    inradius_inf: list[Fraction | None]
    inradius_lo: list[Fraction | None]
    inradius_hi: list[Fraction | None]
    eccentricity_sq: list[Fraction | None]
    eccentricity: list[float | None]

    def columns(self) -> dict[str, list]:
        """Every column by name."""
        return asdict(self)

    def rows(self) -> list[dict[str, Any]]:
        """One dict per region."""
        names = [f.name for f in fields(self)]
        cols = [getattr(self, n) for n in names]
        return [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]

    def summary(self, column: str, quantiles: Sequence[Any] = QUANTILES) -> dict[str, Any]:
        """Aggregates of one column (see :func:`summarize`)."""
        if column not in {f.name for f in fields(self)}:
            raise InvalidInputError(f"no column {column!r}; columns: "
                                    f"{', '.join(f.name for f in fields(self))}")
        return summarize(getattr(self, column), quantiles)


def region_statistics(cert: Certificate, *, euclidean: bool = True,
                      bits: int = 40) -> RegionStatistics:
    """Exact statistics of every region of ``cert`` (see :class:`RegionStatistics`).

    Costs one exact LP per region for ``inradius_inf`` and two more with ``euclidean``
    (``bits``: the precision of the Euclidean norms' bounds).

    >>> import torch
    >>> from torch import nn
    >>> from exactrelu import verify
    >>> net = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0, 0.0]])), net[0].bias.zero_()
    >>> s = region_statistics(verify(net, [(-1, 1), (0, 1)], progress=False))
    >>> s.volume, s.diameter_sq
    ([Fraction(1, 1), Fraction(1, 1)], [Fraction(2, 1), Fraction(2, 1)])
    >>> s.inradius_inf, s.inradius_lo == s.inradius_hi == s.inradius_inf
    ([Fraction(1, 2), Fraction(1, 2)], True)
    """
    out = RegionStatistics([], [], [], [], [], [], [], [], [], [], [])
    d = cert.dim
    for r in cert.regions:
        pts = [cert.vertices[k] for k in r.vertices]
        bounded = not r.rays and not r.lines
        A = [list(f.a) for f in r.facets]
        b = [f.b for f in r.facets]
        vol = r.volume if r.volume is not None or not bounded else _geometry.volume(A, b)
        far = near = None
        if bounded and len(pts) >= 2:
            sq = [sum(((x - y) ** 2 for x, y in zip(u, v, strict=True)), Fraction(0))
                  for i, u in enumerate(pts) for v in pts[i + 1:]]
            far, near = max(sq), min(sq)
        ball = inscribed_ball(A, b, [sum((abs(v) for v in a), Fraction(0)) for a in A], d)
        lo = hi = None
        if euclidean:
            bounds = [norm2_bounds(a, bits) for a in A]
            low = inscribed_ball(A, b, [n_hi for _, n_hi in bounds], d)
            high = inscribed_ball(A, b, [n_lo for n_lo, _ in bounds], d)
            lo = None if low is None else low[1]
            hi = None if high is None else high[1]
        ecc = None if far is None or not near else far / near
        out.index.append(r.index)
        out.volume.append(vol)
        out.num_vertices.append(len(r.vertices))
        out.num_facets.append(len(r.facets))
        out.diameter_sq.append(far)
        out.diameter.append(None if far is None else sqrt_float(far))
        out.inradius_inf.append(None if ball is None else ball[1])
        out.inradius_lo.append(lo)
        out.inradius_hi.append(hi)
        out.eccentricity_sq.append(ecc)
        out.eccentricity.append(None if ecc is None else sqrt_float(ecc))
    return out


def sqrt_float(x: Fraction) -> float:
    """A float within one ulp of ``sqrt(x)`` for a rational ``x >= 0``: the correctly rounded
    float of ``floor(2^k sqrt(x)) / 2^k`` (an integer square root), with ``k`` such that the floor
    has at least 60 bits, so the truncation is below ``2^-59`` relative, under half an ulp.

    >>> sqrt_float(Fraction(9, 4)), sqrt_float(Fraction(2)) == 2 ** 0.5
    (1.5, True)
    """
    if x < 0:
        raise InvalidInputError(f"sqrt_float needs x >= 0, got {x}")
    if x == 0:
        return 0.0
    n, d = x.numerator, x.denominator
    k = max(0, 62 - (n.bit_length() - d.bit_length()) // 2)
    s = math.isqrt((n << (2 * k)) // d)
    try:
        return s / (1 << k)
    except OverflowError:
        return math.inf


def summarize(values: Sequence[Any], quantiles: Sequence[Any] = QUANTILES) -> dict[str, Any]:
    """``count``, ``missing`` (None entries, left out), ``mean``, ``min``, ``max``, ``median``
    and ``quantiles`` (a dict ``{q: value}``) of a column.

    Exact columns (ints, Fractions) give exact results: quantiles interpolate linearly between
    order statistics (numpy's default: position ``(n - 1) q``), with ``q`` taken exactly (a float
    ``q`` is its exact binary value; pass ``Fraction(1, 10)`` or ``"1/10"`` for a tenth). Float
    columns are aggregated in float64 with numpy.

    >>> summarize([Fraction(1), Fraction(2), Fraction(4), None])["median"]
    Fraction(2, 1)
    """
    present = [v for v in values if v is not None]
    qs = [Fraction(q) for q in quantiles]
    if any(not 0 <= q <= 1 for q in qs):
        raise InvalidInputError(f"quantiles must lie in [0, 1], got {list(quantiles)}")
    res: dict[str, Any] = {"count": len(present), "missing": len(values) - len(present)}
    if not present:
        return {**res, "mean": None, "min": None, "max": None, "median": None,
                "quantiles": {q: None for q in qs}}
    if any(isinstance(v, float) for v in present):
        arr = np.array(present, dtype=np.float64)
        return {**res, "mean": float(arr.mean()), "min": float(arr.min()), "max": float(arr.max()),
                "median": float(np.median(arr)),
                "quantiles": {q: float(np.quantile(arr, float(q))) for q in qs}}
    xs = sorted(Fraction(v) for v in present)
    n = len(xs)

    def at(q: Fraction) -> Fraction:
        h = (n - 1) * q
        lo = math.floor(h)
        return xs[lo] if lo == n - 1 else xs[lo] + (h - lo) * (xs[lo + 1] - xs[lo])

    return {**res, "mean": sum(xs, Fraction(0)) / n, "min": xs[0], "max": xs[-1],
            "median": at(Fraction(1, 2)), "quantiles": {q: at(q) for q in qs}}
