"""``segment_regions``: the exact sequence of regions a segment crosses."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from torch import nn

from ..capture import Program
from ..certificate import Certificate, Region
from ..errors import InvalidInputError
from ..verify import _program_and_domain
from ._maps import AnalysisError, ExactNet, Point, VertexTable, closure_interval, exact_point
from .point import VERTEX_MAX_DIM, _space

__all__ = ["SegmentCrossing", "SegmentPiece", "SegmentWalk", "segment_regions"]


@dataclass
class SegmentPiece:
    """The open piece ``start < t < end`` of the segment and the regions whose closures contain
    it (indices into :attr:`SegmentWalk.regions`): one region, or several when the piece runs
    along a face they share."""

    start: Fraction
    end: Fraction
    regions: tuple[int, ...]


@dataclass
class SegmentCrossing:
    """The point at parameter ``t`` between two pieces and every region whose closure contains
    it: the regions of both pieces, and any region the segment only touches there (passing
    exactly through a vertex or a lower-dimensional face)."""

    t: Fraction
    point: Point
    regions: tuple[int, ...]


@dataclass
class SegmentWalk:
    """The segment ``p + t (q - p)``, ``0 <= t <= 1``, cut where the regions containing it change.

    ``pieces`` cover ``[0, 1]`` in order; ``crossings[k]`` is the point between ``pieces[k]`` and
    ``pieces[k + 1]``. ``regions`` holds what the indices refer to (a certificate's own regions
    for a walk on a certificate, else the regions met, numbered in the order met), ``vertices``
    what the regions' vertex indices refer to.
    """

    p: Point
    q: Point
    pieces: list[SegmentPiece]
    crossings: list[SegmentCrossing]
    regions: Sequence[Region]
    vertices: Sequence[Point]

    @property
    def parameters(self) -> list[Fraction]:
        """The exact ``t`` of every crossing."""
        return [c.t for c in self.crossings]

    @property
    def num_regions(self) -> int:
        """How many regions the segment passes through (each with a piece of positive length)."""
        return len({k for piece in self.pieces for k in piece.regions})

    def sequence(self) -> list[int]:
        """The regions crossed in order, one per piece; an error when a piece runs along a face
        shared by several regions (read :attr:`pieces` then)."""
        out = []
        for piece in self.pieces:
            if len(piece.regions) != 1:
                raise InvalidInputError(f"the piece {piece.start} < t < {piece.end} lies on a face "
                                        f"of {len(piece.regions)} regions; read .pieces")
            out.append(piece.regions[0])
        return out


def segment_regions(cert_or_net: Certificate | nn.Module | Program, p: Any, q: Any, *,
                    domain: Any = None, input_shape: Sequence[int] | None = None,
                    vertices: bool | None = None) -> SegmentWalk:
    """The regions crossed by the segment from ``p`` to ``q`` (in domain coordinates, taken
    exactly), with the exact parameters ``t`` where it crosses boundaries.

    On a certificate: for every region the exact interval of ``t`` where the segment lies in its
    closure (from its facets); pieces are cut at every interval end. On a network (``domain``
    as in :func:`~exactrelu.analysis.region_of`, all of R^d by default): region by region, with
    no certificate. At ``t`` the regions containing ``p + (t + e)(q - p)`` for small ``e > 0``
    are found exactly (signs of the switching functions at the point, ties broken by their
    derivative along the segment, and where both vanish, the segment running along their
    hyperplanes, every full-dimensional side); the piece ends where the first of them is left.
    Both give the same pieces and crossings.

    Passing exactly through a lower-dimensional face (a vertex, or an edge in 3-D) cuts the
    segment there; the regions touched only at that point are listed in that crossing only. A
    segment along a facet gives pieces with both regions of the facet.

    >>> import torch
    >>> net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.eye(2)), net[0].bias.zero_()
    >>> walk = segment_regions(net, [-1, -1], [1, 1])  # through the origin
    >>> walk.parameters, len(walk.pieces), len(walk.crossings[0].regions)
    ([Fraction(1, 2)], 2, 4)
    """
    if isinstance(cert_or_net, Certificate):
        if domain is not None or input_shape is not None:
            raise InvalidInputError("a certificate has its own domain; pass domain= and "
                                    "input_shape= only with a network")
        return _on_certificate(cert_or_net, p, q)
    prog, dom = _program_and_domain(
        cert_or_net, domain if domain is not None else _space(cert_or_net, input_shape),
        input_shape)
    return _on_network(ExactNet(prog, dom), p, q, vertices)


def _ends(dom: Any, p: Any, q: Any) -> tuple[Point, Point, Point]:
    a, b = exact_point(p, dom.dim, "p"), exact_point(q, dom.dim, "q")
    for name, x in (("p", a), ("q", b)):
        if not dom.contains(x):
            raise InvalidInputError(f"{name} = {[str(v) for v in x]} lies outside {dom!r}")
    direction = tuple(y - x for x, y in zip(a, b, strict=True))
    if not any(direction):
        raise InvalidInputError("p and q are the same point; a segment needs two")
    return a, b, direction


def _at(p: Point, direction: Point, t: Fraction) -> Point:
    return tuple(x + t * v for x, v in zip(p, direction, strict=True))


def _on_certificate(cert: Certificate, p: Any, q: Any) -> SegmentWalk:
    a, b, direction = _ends(cert.domain, p, q)
    spans = []
    for r in cert.regions:
        iv = closure_interval(r, a, direction)
        if iv is not None:
            spans.append((iv[0], iv[1], r.index))
    cuts = sorted({t for lo, hi, _ in spans for t in (lo, hi)} | {Fraction(0), Fraction(1)})
    pieces = [SegmentPiece(s, e, tuple(sorted(k for lo, hi, k in spans if lo <= s and e <= hi)))
              for s, e in itertools.pairwise(cuts)]
    crossings = [SegmentCrossing(t, _at(a, direction, t),
                                 tuple(sorted(k for lo, hi, k in spans if lo <= t <= hi)))
                 for t in cuts[1:-1]]
    return SegmentWalk(a, b, pieces, crossings, cert.regions, cert.vertices)


def _on_network(ex: ExactNet, p: Any, q: Any, vertices: bool | None) -> SegmentWalk:
    a, b, direction = _ends(ex.dom, p, q)
    table = VertexTable()
    listed = ex.d <= VERTEX_MAX_DIM if vertices is None else bool(vertices)
    regions: list[Region] = []
    number: dict[tuple, int] = {}

    def index(states: tuple) -> int:
        k = number.get(states)
        if k is None:
            r, _ = ex.region(states, len(regions), table if listed else None)
            k = number[states] = len(regions)
            regions.append(r)
        return k

    pieces: list[SegmentPiece] = []
    t = Fraction(0)
    while t < 1:
        here = sorted(index(s) for s in ex.patterns_at(_at(a, direction, t), direction))
        end = Fraction(1)
        for k in here:
            for f in regions[k].facets:
                g = sum((x * v for x, v in zip(f.a, direction, strict=True)), Fraction(0))
                if g > 0:
                    reach = f.b - sum((x * v for x, v in zip(f.a, a, strict=True)), Fraction(0))
                    end = min(end, reach / g)
        if end <= t:
            raise AnalysisError(f"the piece of the segment at t = {t} has no length")
        pieces.append(SegmentPiece(t, end, tuple(here)))
        t = end
    crossings = []
    for piece in pieces[:-1]:
        x = _at(a, direction, piece.end)
        crossings.append(SegmentCrossing(piece.end, x,
                                         tuple(sorted(index(s) for s in ex.patterns_at(x)))))
    return SegmentWalk(a, b, pieces, crossings, regions, table.vertices)
