"""``region_of``: the exact region of a point, without certifying a whole domain."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from torch import nn

from ..capture import Program
from ..certificate import Region
from ..domain import Domain, RealSpace
from ..errors import InvalidInputError
from ..verify import _program_and_domain
from ._maps import ExactNet, Point, VertexTable, exact_point

__all__ = ["PointRegions", "region_of"]

#: ``region_of`` lists vertices (cddlib's exact H->V) up to this dimension by default; above it
#: a region's vertex count can explode, and facets come from LPs instead: float LPs (scipy's
#: HiGHS) whose answers are proved exactly, an exact LP wherever a proof fails or scipy is
#: missing (see :mod:`exactrelu.analysis._floatlp`; a 64-32-32 net's region in R^64: 1.2 s,
#: 208 s with exact LPs alone).
VERTEX_MAX_DIM = 6


@dataclass
class PointRegions:
    """The full-dimensional activation regions whose closures contain a point.

    ``regions`` are :class:`~exactrelu.certificate.Region` objects numbered ``0, 1, ...`` in this
    list; their ``vertices`` and facets' ``vertices`` index :attr:`vertices` (so plotting code that
    reads ``cert.vertices`` and ``cert.regions`` works on this object too). Each region's witness
    is the centre of the largest cube inside it (an exact LP, the l_inf Chebyshev centre) and
    ``radii`` holds that cube's half-width (None when the region holds arbitrarily large cubes;
    its witness is then the centre of a cube of half-width 1 inside it). Without vertices (high
    dimensions, with scipy installed) the witness is HiGHS's float centre, checked strictly
    inside exactly, and ``radii`` the exact half-width of the largest cube around it.

    ``inside`` is True iff the point lies in a region's cell (every switching function that
    bounds it is nonzero at the point; the domain's own boundary belongs to the cells), which is
    then the only region. A
    point on a boundary between regions gives every region whose closure contains it (two
    across a facet, all of them around a vertex of the complex). ``vertices_listed`` is False
    when vertices, rays and lines were not computed (``vertices=False``): facets and everything
    else are still exact.
    """

    point: Point
    domain: Domain
    constraint_offsets: list[int]
    regions: list[Region]
    vertices: list[Point]
    radii: list[Fraction | None]
    inside: bool
    vertices_listed: bool = True

    @property
    def dim(self) -> int:
        return self.domain.dim

    @property
    def region(self) -> Region:
        """The region containing the point; an error when the point lies on a boundary."""
        if not self.inside:
            raise InvalidInputError(f"the point lies on the boundary of {len(self.regions)} "
                                    "region(s); read .regions for all of them")
        return self.regions[0]

    def patterns(self) -> list[tuple[int, ...]]:
        """Every region's pattern, flattened (one tuple of states per region)."""
        return [tuple(s for op in r.pattern for s in op) for r in self.regions]


def region_of(net: nn.Module | Program, x: Any, *, domain: Any = None,
              input_shape: Sequence[int] | None = None, vertices: bool | None = None,
              max_regions: int | None = None) -> PointRegions:
    """The exact activation region(s) at the point ``x``: pattern, facets with constraint ids,
    vertices or rays and lines, exact output map, volume where bounded, interior witness.

    ``x`` is taken exactly (floats included) in the coordinates of ``domain``: the network's
    input for ``None`` (all of R^d) and boxes or polytopes, the slice coordinates ``t`` for a
    :class:`~exactrelu.domain.Slice`. With the certificate's domain, each region equals that
    certificate's region of the same pattern (facets, ids, vertices, output map, volume).
    ``vertices``: list vertices, rays and lines (cddlib, exact); by default up to dimension
    :data:`VERTEX_MAX_DIM`. ``max_regions``: raise :class:`~exactrelu.errors.RegionLimitError`
    beyond that many regions (a point on ``k`` hyperplanes through it in general position lies
    in the closures of ``2^k``).

    >>> import torch
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.eye(2)), net[0].bias.zero_()
    >>> at = region_of(net, [1, 1])
    >>> at.inside, at.region.pattern, len(at.region.facets)
    (True, [[1, 1]], 2)
    >>> len(region_of(net, [0, 0]).regions)  # the origin: all four quadrants
    4
    """
    if domain is None and input_shape is None and not isinstance(net, Program):
        shape = getattr(x, "shape", None)
        if shape is not None and len(shape) > 1:
            input_shape = tuple(int(s) for s in shape)
    prog, dom = _program_and_domain(net, domain if domain is not None else _space(net, input_shape),
                                    input_shape)
    ex = ExactNet(prog, dom)
    p = exact_point(x, dom.dim)
    table = VertexTable()
    listed = dom.dim <= VERTEX_MAX_DIM if vertices is None else bool(vertices)
    regions, radii = [], []
    if max_regions is not None and (isinstance(max_regions, bool) or
                                    not isinstance(max_regions, int) or max_regions < 1):
        raise InvalidInputError(f"max_regions must be a positive int or None, got {max_regions!r}")
    for k, states in enumerate(ex.patterns_at(p, max_regions=max_regions)):
        r, rad = ex.region(states, k, table if listed else None)
        regions.append(r)
        radii.append(rad)
    first = ex.offsets[0]
    inside = len(regions) == 1 and all(
        sum((a * v for a, v in zip(f.a, p, strict=True)), Fraction(0)) < f.b
        for f in regions[0].facets if max(f.ids) >= first)
    return PointRegions(p, dom, list(ex.offsets), regions, table.vertices, radii, inside, listed)


def _space(net: nn.Module | Program, input_shape: Sequence[int] | None) -> Domain | None:
    """All of R^d for the network's flat input, when its size is known here (else None and the
    caller's own inference decides)."""
    if isinstance(net, Program):
        return RealSpace(net.in_dim)
    if input_shape is not None:
        n = 1
        for s in input_shape:
            n *= int(s)
        return RealSpace(n)
    return None
