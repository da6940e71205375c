"""What every exact engine returns (:class:`Complex`, plain data) and the one builder that makes
a :class:`~exactrelu.certificate.Certificate` of it.

A complex holds integers only: rationals as two lists of Python ints (numerators and positive
denominators, coprime: :class:`Rationals`), ragged lists as offsets into one flat list
(:class:`Ragged`), any size (Python ints never overflow). Points of ``d`` coordinates, facet rows
``(a_1, .., a_d, b)`` of ``a . t <= b`` and adjacency planes are stored row after row.

>>> cx = Complex(d=1, n_out=1, states=[[[0], [1]]], state_ids=[[0, 1]],
...              witness=Rationals([-1, 1], [2, 2]), vertices=Rationals([-1, 0, 1], [1, 1, 1]),
...              region_vertices=Ragged([0, 2, 4], [0, 1, 1, 2]),
...              rows=Rationals([-1, 1, 1, 0, -1, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]),
...              facet_start=[0, 2, 4], facet_row=[0, 2, 1, 3],
...              facet_ids=Ragged([0, 1, 2, 3, 4], [0, 2, 2, 1]),
...              facet_vertices=Ragged([0, 1, 2, 3, 4], [0, 1, 1, 2]),
...              outputs=Rationals([0, 0, 1, 0], [1, 1, 1, 1]), volume=Rationals([1, 1], [1, 1]),
...              repaired=[False, False], adj_i=[0], adj_j=[1], adj_plane=[0],
...              adj_ids=Ragged([0, 1], [2]), planes=Rationals([1, 0], [1, 1]), pieces=[0, 1])
>>> regions, vertices, adjacency = regions_of(cx)
>>> [r.output for r in regions], vertices[1], adjacency[0].i, adjacency[0].j
([[Fraction(0, 1), Fraction(0, 1)], [Fraction(1, 1), Fraction(0, 1)]], (Fraction(0, 1),), 0, 1)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple

from .._runtime import paused_gc
from ..capture import Program, constraint_offsets
from ..certificate import Adjacency, Certificate, Region, RegionFacet, coprime_fraction
from ..domain import Domain

__all__ = ["Complex", "Ragged", "Rationals", "build_certificate", "regions_of"]


class Rationals(NamedTuple):
    """Rationals ``num[k] / den[k]`` (coprime, ``den[k] > 0``; ``den[k] == 0`` only where a
    field says so, e.g. a volume that is not known)."""

    num: list[int]
    den: list[int]


class Ragged(NamedTuple):
    """Lists of ints of different lengths: list ``k`` is ``flat[start[k]:start[k + 1]]``."""

    start: list[int]
    flat: list[int]


_EMPTY_RAGGED = Ragged([], [])


@dataclass
class Complex:
    """The certified complex as plain data, regions in the canonical order of the layer tree (see
    :func:`exactrelu.certify.run`), vertices numbered by first appearance in that order.

    Per region ``r`` (``R`` regions): its states of op ``j`` are ``states[j][state_ids[j][r]]``
    (each distinct state list once); ``witness``: ``d`` coordinates; vertices
    ``region_vertices``; facets ``facet_start[r]`` to ``facet_start[r + 1] - 1``; output map
    ``n_out`` rows ``(a_1, .., a_d, c)`` in ``outputs``; ``volume`` (denominator 0: none);
    ``repaired``; rays and lines (unbounded domains) ``d`` coordinates each, ``rays.start``
    counting points. Per facet ``f``: its inequality is row ``facet_row[f]`` of ``rows`` (rows
    are shared by facets on one hyperplane from one side), its constraint ids, global vertices and
    the indices of its region's rays on it. Adjacent pairs ``adj_i[k] < adj_j[k]`` on plane
    ``adj_plane[k]`` of ``planes`` (``(a, b)`` with the first non-zero entry of ``a`` one) with
    ids ``adj_ids``; ``pieces``: the linear piece of every region."""

    d: int
    n_out: int
    states: list[list[list[int]]]
    state_ids: list[list[int]]
    witness: Rationals
    vertices: Rationals
    region_vertices: Ragged
    rows: Rationals
    facet_start: list[int]
    facet_row: list[int]
    facet_ids: Ragged
    facet_vertices: Ragged
    outputs: Rationals
    volume: Rationals
    repaired: list[bool]
    adj_i: list[int]
    adj_j: list[int]
    adj_plane: list[int]
    adj_ids: Ragged
    planes: Rationals
    pieces: list[int]
    facet_rays: Ragged = _EMPTY_RAGGED  # empty: no facet has a ray
    rays: tuple[list[int], Rationals] | None = None  # (start per region, points); None: none
    lines: tuple[list[int], Rationals] | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def num_regions(self) -> int:
        return len(self.facet_start) - 1


def _fractions(r: Rationals) -> list[Fraction]:
    return list(map(coprime_fraction, r.num, r.den))


def _points(r: Rationals, d: int) -> list[tuple[Fraction, ...]]:
    """Consecutive runs of ``d`` entries as tuples of Fractions."""
    it = iter(_fractions(r))
    return list(zip(*[it] * d, strict=True)) if d else []


def _lists(flat: Ragged) -> list[tuple[int, ...]]:
    s, f = flat.start, flat.flat
    n = len(s) - 1
    if n > 0 and f and len(f) % n == 0:
        w = len(f) // n
        if s == list(range(0, len(f) + 1, w)):  # all of one length (2-D facets: 2 vertices)
            it = iter(f)
            return list(zip(*[it] * w, strict=True))
    return [tuple(f[s[k]:s[k + 1]]) for k in range(n)]


def regions_of(cx: Complex) -> tuple[list[Region], list[tuple[Fraction, ...]], list[Adjacency]]:
    """The regions, global vertices and adjacency of ``cx`` as the certificate's objects.

    Objects are shared where their values are (read-only): the ``a`` tuple and ``b`` of a facet
    row by all its facets, a state list by all regions with that state, the empty tuple."""
    d, R = cx.d, cx.num_regions
    vertices = _points(cx.vertices, d)
    rows = _points(cx.rows, d + 1)
    A = [r[:d] for r in rows]
    B = [r[d] for r in rows]
    empty: tuple = ()
    fids = _lists(cx.facet_ids)
    fverts = _lists(cx.facet_vertices)
    frays = _lists(cx.facet_rays) if cx.facet_rays.start else [empty] * len(fids)
    fr = cx.facet_row
    facets = list(map(RegionFacet, map(A.__getitem__, fr), map(B.__getitem__, fr), fids, fverts,
                      frays))
    del fids, fverts, frays, rows
    witness = _points(cx.witness, d)
    n_out = cx.n_out
    outputs = list(map(list, _points(cx.outputs, d + 1)))
    vol = [None if q == 0 else coprime_fraction(p, q) for p, q in zip(*cx.volume, strict=True)]
    rv = cx.region_vertices
    fs = cx.facet_start
    patterns = [list(map(states.__getitem__, ids))
                for states, ids in zip(cx.states, cx.state_ids, strict=True)]
    pattern = list(map(list, zip(*patterns, strict=True))) if patterns else [[] for _ in range(R)]
    del patterns

    def per_region(sr: tuple[list[int], Rationals] | None) -> list[list[tuple]]:
        if sr is None:
            return [[] for _ in range(R)]
        start, pts = sr
        flat = _points(pts, d)
        return [flat[start[k]:start[k + 1]] for k in range(R)]

    rvs, rvf = rv.start, rv.flat
    regions = list(map(
        Region, range(R), pattern, witness, [facets[fs[i]:fs[i + 1]] for i in range(R)],
        [rvf[rvs[i]:rvs[i + 1]] for i in range(R)],
        [outputs[i * n_out:(i + 1) * n_out] for i in range(R)], vol,
        map(bool, cx.repaired), per_region(cx.rays), per_region(cx.lines)))
    planes = _points(cx.planes, d + 1)
    pa = [p[:d] for p in planes]
    pb = [p[d] for p in planes]
    adjacency = list(map(Adjacency, cx.adj_i, cx.adj_j, map(pa.__getitem__, cx.adj_plane),
                         map(pb.__getitem__, cx.adj_plane), _lists(cx.adj_ids)))
    return regions, vertices, adjacency


def build_certificate(prog: Program, domain: Domain, cx: Complex) -> Certificate:
    """The certificate of ``cx``, the complex of ``prog`` on ``domain`` (the one place where a
    certificate is made of an engine's result)."""
    from .. import __version__

    with paused_gc():  # millions of small objects, none of them in a reference cycle
        regions, vertices, adjacency = regions_of(cx)
    return Certificate(domain, prog.input_shape, prog.output_shape, prog.digest(),
                       constraint_offsets(prog, domain), regions, vertices, adjacency,
                       list(cx.pieces), prog.notes(), __version__, dict(cx.stats))
