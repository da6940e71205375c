"""Topology of decision regions and sublevel sets: connected components and Betti numbers, exact.

The sets:

- the **decision region** of class ``c``: the union of the class pieces labelled ``c`` (closed
  convex d-polytopes, see :mod:`exactrelu.boundary`), the closure of the interior of
  ``{x : argmax f(x) = c}``;
- the **sublevel set** ``{x in the domain : f(x) <= c}`` of an output: the union over regions
  ``P`` of ``closure(P) ∩ {g_P <= c}`` (``g_P`` the exact affine output on ``P``; ``f`` is
  continuous, so this is exactly the set, lower-dimensional parts included), and likewise
  ``{f >= c}``.

Each is a finite union of closed convex polytopes (*pieces*, at most one per region). By the nerve
theorem (Borsuk 1948, "On the imbedding of systems of compacta in simplicial complexes"; Leray
1945; see Hatcher, *Algebraic Topology*, Corollary 4G.3) the union is homotopy equivalent to the
nerve of the pieces: a simplex for every subfamily with a common point. ``H_k`` of a compact set
in R^d vanishes for ``k >= d`` (Alexander duality), so the Betti numbers are ``b_0 .. b_{d-1}``;
``b_k`` needs the boundary maps of the nerve's simplices of dimension ``k`` and ``k + 1``, so
subfamilies of at most ``d + 1`` pieces are enough (the nerve's d-skeleton has the nerve's
homology below degree d; by Helly's theorem larger subfamilies intersect iff all of their
(d+1)-subfamilies do, and they do not change those groups).

Common points are decided exactly, with sound shortcuts: a common vertex means non-empty,
disjoint bounding boxes (floats rounded outwards) mean empty; otherwise cddlib's exact (GMP) LP
decides. Larger subfamilies are only tried when every pair in them meets (and, pieces being
tried in sweeps over their boxes, only pairs whose boxes overlap are tried at all). The Betti
numbers ``b_k = n_k - rank d_k - rank d_(k+1)`` are computed over **Q**: exact ranks of the
nerve's boundary matrices by column reduction with rational coefficients. Over Z/2 they can
differ only for sets with torsion in their integer homology, which in R^d needs d >= 4 (subsets of
R^2 and R^3 have torsion-free homology). The components are those of the intersection graph
(and their number is checked against ``b_0``).

Domains must be bounded.

>>> import exactrelu, torch
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 1))  # f(x, y) = x + y
>>> with torch.no_grad(): _ = net[0].weight.fill_(1.0), net[0].bias.zero_()
>>> cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
>>> sublevel_topology(cert, 0).betti, sublevel_topology(cert, -5).betti
((1, 0), (0, 0))
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ._polyhedra import cdd_rows, rows_feasible
from .boundary import _analyse_all, _decision_groups, _level_groups, _need_bounded
from .certificate import Certificate
from .domain import to_fraction
from .errors import InvalidInputError

__all__ = ["Topology", "decision_region_topology", "sublevel_topology", "superlevel_topology"]

Point = tuple[Fraction, ...]


@dataclass(frozen=True)
class Topology:
    """Connected components and Betti numbers (over Q) of a closed set of the domain.

    ``betti``: ``(b_0, ..., b_{d-1})``; ``components``: for each connected component, the
    regions whose pieces make it up (sorted; components ordered by their first region);
    ``num_pieces``: convex pieces in the cover; ``nerve``: simplices of the nerve by dimension
    (``0..d``) before it was collapsed.
    """

    betti: tuple[int, ...]
    components: tuple[tuple[int, ...], ...]
    num_pieces: int
    nerve: tuple[int, ...]

    @property
    def num_components(self) -> int:
        return len(self.components)

    @property
    def euler_characteristic(self) -> int:
        return sum((-1) ** k * b for k, b in enumerate(self.betti))


@dataclass
class _Piece:
    """A closed convex polytope ``{A t <= b}`` of the cover with its vertices (and their ids)."""

    region: int
    A: list[tuple[Fraction, ...]]
    b: list[Fraction]
    vertices: list[Point]
    ids: frozenset[int]
    lo: tuple[float, ...]
    hi: tuple[float, ...]
    rows: list[list[Fraction]]  # the constraints in cddlib's format, for exact LPs


def _make(region: int, A: list, b: list, vertices: list[Point], ids: Iterable[int]) -> _Piece:
    """A piece with its bounding box in floats rounded outwards (``lo`` at most, ``hi`` at least
    the exact bounds: disjoint float boxes mean disjoint pieces)."""
    d = len(vertices[0])
    lo = tuple(math.nextafter(_near(min(v[i] for v in vertices)), -math.inf) for i in range(d))
    hi = tuple(math.nextafter(_near(max(v[i] for v in vertices)), math.inf) for i in range(d))
    return _Piece(region, A, b, vertices, frozenset(ids), lo, hi, cdd_rows(A, b))


def _near(x: Fraction) -> float:
    try:
        return float(x)
    except OverflowError:
        return math.inf if x > 0 else -math.inf


class _Ids:
    """Exact points -> integer ids (the certificate's vertex indices first)."""

    def __init__(self, cert: Certificate) -> None:
        self.cert = cert
        self.table: dict[Point, int] | None = None

    def __call__(self, points: list[Point]) -> list[int]:
        if self.table is None:
            self.table = {v: k for k, v in enumerate(self.cert.vertices)}
        return [self.table.setdefault(p, len(self.table)) for p in points]


def _meet(pieces: list[_Piece]) -> bool:
    """Whether the pieces have a common point (exact)."""
    if frozenset.intersection(*(p.ids for p in pieces)):
        return True
    d = len(pieces[0].lo)
    if any(max(p.lo[i] for p in pieces) > min(p.hi[i] for p in pieces) for i in range(d)):
        return False
    return rows_feasible([r for p in pieces for r in p.rows], d)


def _pairs(pieces: list[_Piece]) -> list[set[int]]:
    """The intersection graph: box overlaps found by a sweep along the first coordinate."""
    adj: list[set[int]] = [set() for _ in pieces]
    order = sorted(range(len(pieces)), key=lambda i: pieces[i].lo[0])
    active: list[int] = []
    for i in order:
        lo = pieces[i].lo[0]
        active = [j for j in active if pieces[j].hi[0] >= lo]
        for j in active:
            if _meet([pieces[i], pieces[j]]):
                adj[i].add(j)
                adj[j].add(i)
        active.append(i)
    return adj


def _nerve(pieces: list[_Piece], adj: list[set[int]], top: int) -> list[set[tuple[int, ...]]]:
    """Simplices of the nerve with at most ``top`` vertices, by size - 1 (cliques of the
    intersection graph whose pieces meet)."""
    levels: list[set[tuple[int, ...]]] = [{(i,) for i in range(len(pieces))}]
    levels.append({(i, j) for i in range(len(pieces)) for j in adj[i] if i < j})
    while len(levels) < top and levels[-1]:
        nxt = set()
        for s in levels[-1]:
            common = set.intersection(*(adj[i] for i in s))
            for j in common:
                if j > s[-1] and _meet([pieces[i] for i in (*s, j)]):
                    nxt.add((*s, j))
        levels.append(nxt)
    return levels[:top]


def _faces(s: tuple[int, ...]) -> list[tuple[int, ...]]:
    return [s[:i] + s[i + 1:] for i in range(len(s))]


def _boundary_ranks(levels: list[list[tuple[int, ...]]]) -> list[int]:
    """``ranks[k]``: the rank over Q of the boundary map from the simplices of ``levels[k]`` to
    those of ``levels[k - 1]`` (``ranks[0] = 0``), by column reduction (the standard persistence
    algorithm over Q; columns are sparse dicts of integers, reduced fraction-free: ``c * col -
    c' * other`` with the lowest entries ``c'`` of ``col`` and ``c`` of ``other``, divided by the
    gcd of its entries) with clearing: a simplex that is the lowest entry of a reduced column one
    dimension up is a combination of earlier columns' faces, so its own column reduces to zero and
    is skipped (Chen and Kerber, "Persistent homology computation with a twist", 2011)."""
    ranks = [0] * (len(levels) + 1)
    cleared: set[int] = set()
    for k in range(len(levels) - 1, 0, -1):
        where = {f: i for i, f in enumerate(levels[k - 1])}
        by_low: dict[int, dict[int, int]] = {}
        for j, simplex in enumerate(levels[k]):
            if j in cleared:
                continue
            col = {where[f]: -1 if i % 2 else 1 for i, f in enumerate(_faces(simplex))}
            while col:
                low = max(col)
                other = by_low.get(low)
                if other is None:
                    by_low[low] = col
                    break
                a, c = other[low], col[low]
                new = {r: a * v for r, v in col.items()}
                for r, v in other.items():
                    nv = new.get(r, 0) - c * v
                    if nv:
                        new[r] = nv
                    else:
                        new.pop(r, None)
                g = math.gcd(*new.values()) if new else 1
                col = {r: v // g for r, v in new.items()} if g > 1 else new
        ranks[k] = len(by_low)
        cleared = set(by_low)
    return ranks


def _topology(cert: Certificate, pieces: list[_Piece]) -> Topology:
    d = cert.dim
    adj = _pairs(pieces)
    levels = _nerve(pieces, adj, d + 1)
    simplices = [sorted(level) for level in levels] + [[] for _ in range(d + 1 - len(levels))]
    ranks = _boundary_ranks(simplices)
    betti = tuple(len(simplices[k]) - ranks[k] - ranks[k + 1] for k in range(d))
    comps: list[tuple[int, ...]] = []
    seen = [False] * len(pieces)
    for i in range(len(pieces)):
        if seen[i]:
            continue
        stack, members = [i], []
        seen[i] = True
        while stack:
            j = stack.pop()
            members.append(pieces[j].region)
            for k in adj[j]:
                if not seen[k]:
                    seen[k] = True
                    stack.append(k)
        comps.append(tuple(sorted(members)))
    comps.sort()
    if len(comps) != betti[0]:
        raise AssertionError(f"b_0 = {betti[0]} but the intersection graph has {len(comps)} "
                             "components")
    return Topology(betti, tuple(comps), len(pieces), tuple(len(x) for x in simplices))


def decision_region_topology(cert: Certificate, cls: int) -> Topology:
    """Components and Betti numbers of the decision region of class ``cls`` (see the module
    docstring and :mod:`exactrelu.boundary` for the definition)."""
    _need_bounded(cert, "decision_region_topology")
    k = math.prod(cert.output_shape)
    if isinstance(cls, bool) or not isinstance(cls, int) or not 0 <= cls < k:
        raise InvalidInputError(f"cls={cls!r}: the network has {k} outputs (pass 0..{k - 1})")
    ids = _Ids(cert)
    pieces = []
    for reg in _analyse_all(cert, _decision_groups):
        for p in reg.pieces:
            if p.label == cls:
                vid = reg.region.vertices if reg.pure else ids(p.vertices)
                pieces.append(_make(reg.region.index, p.A, p.b, p.vertices, vid))
    return _topology(cert, pieces)


def sublevel_topology(cert: Certificate, value: Any, *, output: int = 0) -> Topology:
    """Components and Betti numbers of ``{x in the domain : f(x) <= value}`` for output
    ``output`` (``value`` any rational; a float is taken exactly)."""
    return _level_topology(cert, value, output, -1, "sublevel_topology")


def superlevel_topology(cert: Certificate, value: Any, *, output: int = 0) -> Topology:
    """Components and Betti numbers of ``{x in the domain : f(x) >= value}``."""
    return _level_topology(cert, value, output, 1, "superlevel_topology")


def _level_topology(cert: Certificate, value: Any, output: int, keep: int, what: str) -> Topology:
    _need_bounded(cert, what)
    k = math.prod(cert.output_shape)
    if isinstance(output, bool) or not isinstance(output, int) or not 0 <= output < k:
        raise InvalidInputError(f"output={output!r}: the network has {k} outputs (pass 0..{k - 1})")
    c = to_fraction(value, "value")
    ids = _Ids(cert)
    pieces = []
    for reg in _analyse_all(cert, lambda r: _level_groups(r, output, c)):
        r = reg.region
        label = reg.pieces[0].label
        if reg.pure and label in (0, keep):
            pieces.append(_make(r.index, reg.A, reg.b, reg.vertices, r.vertices))
            continue
        g = next(row for lab, row in reg.groups if lab == keep)  # keep * (f - c) >= 0
        A = [*reg.A, tuple(-x for x in g[:-1])]
        b = [*reg.b, g[-1]]
        if reg.pure:
            # the other sign on the whole region: only where f = c (a face, maybe empty)
            on = [v for v in reg.vertices
                  if sum((x * y for x, y in zip(g, v, strict=False)), Fraction(0)) + g[-1] == 0]
            if on:
                pieces.append(_make(r.index, A, b, on, ids(on)))
            continue
        part = next(p for p in reg.pieces if p.label == keep)  # f - c changes sign: both are pieces
        pieces.append(_make(r.index, part.A, part.b, part.vertices, ids(part.vertices)))
    return _topology(cert, pieces)
