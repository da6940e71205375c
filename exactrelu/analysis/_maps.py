"""What the analysis functions share: a network's exact maps on a domain, pattern by pattern; the
exact region of a pattern; the full-dimensional regions whose closures contain a point; largest
inscribed balls by exact LPs.

Coordinates are the domain's (``t``; the network's flat input is ``M t + c``). Constraint ids are
the certificate's: the domain's rows first, then every switching function of piecewise op ``j``
from ``constraint_offsets[j]`` on (:func:`exactrelu.certify.constraint_offsets`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from fractions import Fraction
from typing import Any

import torch

from .. import _exact, _geometry, _polyhedra
from .._deps import flint
from ..capture import Program
from ..certificate import Region, RegionFacet, canonical_hyperplane
from ..certify import constraint_offsets
from ..domain import Domain, to_fraction
from ..errors import ExactReluError, InvalidInputError, RegionLimitError
from . import _floatlp

Point = tuple[Fraction, ...]
States = tuple[tuple[int, ...], ...]


class AnalysisError(ExactReluError):
    """An internal consistency check of the analysis failed (a bug, never a float issue)."""


def exact_point(x: Any, n: int, what: str = "point") -> Point:
    """The exact coordinates of ``x`` (a sequence of numbers, a tensor or an array; floats are
    taken exactly), checked to have ``n`` entries."""
    if isinstance(x, torch.Tensor):
        vals: list[Any] = x.detach().to("cpu", torch.float64).reshape(-1).tolist()
    elif hasattr(x, "tolist") and hasattr(x, "shape"):
        vals = list(x.reshape(-1).tolist())
    elif isinstance(x, (list, tuple)):
        vals = list(x)
    else:
        raise InvalidInputError(f"{what} must be a sequence of numbers or a tensor, "
                                f"got {type(x).__name__}")
    if len(vals) != n:
        raise InvalidInputError(f"{what} has {len(vals)} coordinates; expected {n}")
    return tuple(to_fraction(v, f"{what}[{i}]") for i, v in enumerate(vals))


def _q(x: Fraction) -> Any:
    return flint.fmpq(x.numerator, x.denominator)


def _f(x: Any) -> Fraction:
    return _exact.to_fraction(x)


class ExactNet:
    """One program on one domain: exact switching rows ``[w_1..w_d, c]`` (flint's ``fmpq``) of
    every op for a pattern prefix (memoized), exact output maps, and the exact region of a full
    pattern."""

    def __init__(self, prog: Program, dom: Domain) -> None:
        self.prog = prog
        self.dom = dom
        self.d = dom.dim
        M, c = dom.input_map()
        self.m0 = _exact.input_map(M, c, prog.input_shape)
        self.offsets = constraint_offsets(prog, dom)
        A, b = dom.halfspaces()
        self.dom_A: list[list[Fraction]] = [list(r) for r in A]
        self.dom_b: list[Fraction] = list(b)
        self.nodes = prog.piecewise_nodes()
        self._sw: dict[States, list[list[Any]]] = {}

    @property
    def depth(self) -> int:
        return len(self.nodes)

    def _tensors(self, states: States) -> list[torch.Tensor]:
        return [torch.tensor(s, dtype=torch.int64).reshape(nd.out_shape)
                for s, nd in zip(states, self.nodes, strict=False)]

    def switching(self, states: States) -> list[list[Any]]:
        """Rows of the switching functions of op ``len(states)``, earlier ops in ``states``."""
        got = self._sw.get(states)
        if got is None:
            m, _ = self.prog.exact_run(self.m0, self._tensors(states), until=len(states))
            got = self._sw[states] = m.mat.tolist()
        return got

    def output(self, states: States) -> list[list[Fraction]]:
        """The exact output map, rows ``[a_1..a_d, c]``, of the full pattern ``states``."""
        m, _ = self.prog.exact_run(self.m0, self._tensors(states))
        return [[_f(v) for v in row] for row in m.mat.tolist()]

    def contains(self, x: Point) -> bool:
        return all(sum((a * v for a, v in zip(row, x, strict=True)), Fraction(0)) <= bi
                   for row, bi in zip(self.dom_A, self.dom_b, strict=True))

    # ------------------------------------------------------------------ regions at a point
    def patterns_at(self, x: Point, direction: Point | None = None,
                    max_regions: int | None = None) -> list[States]:
        """Patterns of the full-dimensional regions whose closures contain ``x`` (with a
        ``direction``: contain ``x + e direction`` for every small ``e > 0``), in a fixed order.

        A switching function nonzero at the point keeps its sign nearby (with a direction, one
        that is zero there takes the sign of its derivative along it); one that is identically
        zero under the pattern so far takes its op's tie state and splits nothing. The others
        vanish at the point with a nonzero gradient ``w``: near the point the region of a sign
        choice ``s`` is the open cone ``{u : s_i w_i . u > 0}`` (with the domain's rows tight at
        the point, ``a . u < 0``), and it is full-dimensional iff that cone is non-empty, which an
        exact LP decides. Sign choices are made one function at a time, dropping empty cones
        early; a piecewise op whose states are not its sign vectors (MaxPool) takes the state of
        each feasible sign vector and the cone of that state's own constraints. More than
        ``max_regions`` patterns raise :class:`~exactrelu.errors.RegionLimitError` (a point on
        ``k`` hyperplanes in general position lies in the closures of up to ``2^k`` regions).
        """
        d = self.d
        xq = [_q(v) for v in x]
        dq = [_q(v) for v in direction] if direction is not None else None
        cone0: list[list[Fraction]] = []
        for row, bi in zip(self.dom_A, self.dom_b, strict=True):
            v = sum((a * c for a, c in zip(row, x, strict=True)), Fraction(0)) - bi
            if v > 0:
                raise InvalidInputError(f"the point {[str(c) for c in x]} lies outside the domain "
                                        f"{self.dom!r}")
            if v == 0:
                if direction is not None:
                    g = sum((a * c for a, c in zip(row, direction, strict=True)), Fraction(0))
                    if g > 0:
                        raise InvalidInputError("the direction leaves the domain at the point")
                    if g < 0:
                        continue
                cone0.append([-a for a in row])
        out: list[States] = []

        def visit(states: States, cone: list[list[Fraction]]) -> None:
            j = len(states)
            if j == self.depth:
                out.append(states)
                if max_regions is not None and len(out) > max_regions:
                    raise RegionLimitError(f"more than max_regions={max_regions} regions have the "
                                           "point in their closures", len(out))
                return
            rows = self.switching(states)
            nd = self.nodes[j]
            rule, module, in_shape = nd.piecewise_rule, nd.module, nd.in_shapes[0]
            fixed: list[int] = []
            free: list[int] = []
            for i, row in enumerate(rows):
                v = row[d]
                for a, c in zip(row, xq, strict=False):
                    v += a * c
                if v == 0 and dq is not None:
                    for a, c in zip(row, dq, strict=False):
                        v += a * c
                if v != 0:
                    fixed.append(1 if v > 0 else -1)
                elif any(a != 0 for a in row[:d]):
                    fixed.append(0)
                    free.append(i)
                else:
                    fixed.append(0)  # identically zero: the tie state
            grad = {i: [_f(a) for a in rows[i][:d]] for i in free}
            found: dict[tuple[int, ...], None] = {}
            signs = list(fixed)

            def assign(k: int, c: list[list[Fraction]]) -> None:
                if k == len(free):
                    found.setdefault(rule.state_tuple(module, signs, in_shape))
                    return
                i = free[k]
                for s in (1, -1):
                    c2 = [*c, grad[i] if s > 0 else [-a for a in grad[i]]]
                    if open_cone(c2, d):
                        signs[i] = s
                        assign(k + 1, c2)
                signs[i] = 0

            assign(0, cone)
            for st in found:
                c2 = list(cone)
                ok = True
                for i, sg in rule.constraint_list(module, st, in_shape, nd.out_shape):
                    if i in grad:
                        c2.append(grad[i] if sg > 0 else [-a for a in grad[i]])
                    elif fixed[i] * sg < 0:
                        ok = False
                        break
                if ok and (not free or rule.sign_cells or open_cone(c2, d)):
                    visit((*states, st), c2)

        visit((), cone0)
        return out

    # ------------------------------------------------------------------ the region of a pattern
    def halfspaces(self, states: States) -> tuple[list[list[Fraction]], list[Fraction], list[int]]:
        """``(A, b, ids)``: every constraint of the pattern's cell as ``a . t <= b`` with its id
        (the domain's rows, then each op's constraints of its state; functions identically
        constant under the pattern are left out, and a constant of the wrong sign is an error)."""
        d = self.d
        A = [list(r) for r in self.dom_A]
        b = list(self.dom_b)
        ids = list(range(len(A)))
        for j, st in enumerate(states):
            nd = self.nodes[j]
            rows = self.switching(states[:j])
            for i, sg in nd.piecewise_rule.constraint_list(nd.module, st, nd.in_shapes[0],
                                                           nd.out_shape):
                row = rows[i]
                if all(a == 0 for a in row[:d]):
                    if row[d] * sg < 0:
                        raise InvalidInputError(f"the pattern is empty: op {j}'s switching "
                                                f"function {i} is constant with the other sign")
                    continue
                A.append([_f(-sg * a) for a in row[:d]])
                b.append(_f(sg * row[d]))
                ids.append(self.offsets[j] + i)
        return A, b, ids

    def region(self, states: States, index: int, vertex_id: Callable[[Point], int] | None
               ) -> tuple[Region, Fraction | None]:
        """The exact region of ``states`` (full-dimensional, else an error) as a
        :class:`~exactrelu.certificate.Region`, and the half-width of the largest cube centred at
        its witness inside it.

        With ``vertex_id`` (global vertex numbers) the V-representation comes from cddlib, facets
        from its incidence, and the witness is the exact centre of the largest inscribed cube
        (an exact LP; the radius is None when cubes of any size fit, the witness then the centre
        of one of half-width 1). Without it (high dimensions) no vertices, rays or lines are
        listed; each facet is proved by :mod:`._floatlp` (a float LP proposes, exact arithmetic
        checks) or by an exact LP, and the witness is the float centre of the largest cube,
        checked strictly inside (the radius is exact for that centre), or the exact one."""
        d = self.d
        A, b, ids = self.halfspaces(states)
        rays: list[Point] = []
        lines: list[Point] = []
        vertices: list[int] = []
        facets: list[RegionFacet] = []
        volume = None
        fast = vertex_id is None and _floatlp.available()
        if vertex_id is not None:
            vrep = _polyhedra.h_to_v(A, b, dim=d)
            fs = _polyhedra.facets(A, b, vrep)
            gid = [vertex_id(v) for v in vrep.vertices]
            rays, lines = list(vrep.rays), list(vrep.lines)
            for g, vs in zip(fs.groups, fs.vertex_sets, strict=True):
                a0 = A[g[0]]
                on = tuple(k for k, r in enumerate(rays)
                           if sum((x * y for x, y in zip(a0, r, strict=True)), Fraction(0)) == 0)
                facets.append(RegionFacet(tuple(a0), b[g[0]], tuple(sorted(ids[k] for k in g)),
                                          tuple(sorted(gid[k] for k in vs)), on))
            vertices = gid
            if vrep.is_bounded and vrep.vertices:
                volume = _geometry.volume([list(f.a) for f in facets], [f.b for f in facets])
        else:
            decide = None
            if fast and A:
                flp = _floatlp.FloatLP(A, b)
                inside = flp.interior([_l1(a) for a in A])
                if inside is not None:
                    decide = lambda group: flp.decide(group, inside)  # noqa: E731
            for fa, fb, fid in facets_by_lp(A, b, ids, decide):
                facets.append(RegionFacet(fa, fb, fid, ()))
        FA = [list(f.a) for f in facets]
        Fb = [f.b for f in facets]
        l1 = [_l1(a) for a in FA]
        ball = None
        if fast and FA:
            centre = _floatlp.FloatLP(FA, Fb).interior(l1)
            if centre is not None:
                ball = (centre,
                        min((bi - sum((x * y for x, y in zip(a, centre, strict=True)),
                                      Fraction(0))) / n
                            for a, bi, n in zip(FA, Fb, l1, strict=True)))
        radius = None
        if ball is None:
            ball = inscribed_ball(FA, Fb, l1, d)
            radius = None if ball is None else ball[1]
            if ball is None:
                ball = inscribed_ball(FA, Fb, l1, d, cap=Fraction(1))
                assert ball is not None
        else:
            radius = ball[1]
        if ball[1] <= 0:
            raise AnalysisError(f"pattern {states} has no full-dimensional cell")
        region = Region(index, [list(s) for s in states], ball[0], facets, vertices,
                        self.output(states), volume, False, rays, lines)
        return region, radius


def open_cone(rows: Sequence[Sequence[Fraction]], d: int) -> bool:
    """Is ``{u : r . u > 0 for every row r}`` non-empty? (exact: cddlib's LP on the cone cut by
    the box ``[-1, 1]^d``, which has an interior exactly when the open cone is non-empty)."""
    if not rows:
        return True
    A = [[-a for a in r] for r in rows]
    b = [Fraction(0)] * len(rows)
    for i in range(d):
        e = [Fraction(int(i == k)) for k in range(d)]
        A += [e, [-v for v in e]]
        b += [Fraction(1), Fraction(1)]
    ip = _polyhedra.interior_point(A, b, dim=d)
    return ip is not None and ip[1] > 0


def facets_by_lp(A: list[list[Fraction]], b: list[Fraction], ids: list[int],
                 decide: Callable[[list[int]], bool | None] | None = None
                 ) -> list[tuple[Point, Fraction, tuple[int, ...]]]:
    """The facets ``(a, b, ids)`` of the full-dimensional ``{t : A t <= b}``: rows defining the
    same halfspace are grouped (exactly, by their scaled rows); a group is a facet iff dropping it
    enlarges the set, i.e. iff the exact LP ``max a . t`` over the other rows exceeds ``b``.
    ``decide(group)``, when given, answers first (True/False, proved) or passes (None)."""
    groups: dict[tuple, list[int]] = {}
    for k, row in enumerate(A):
        key, side = canonical_hyperplane(row, b[k])
        groups.setdefault((key, side), []).append(k)
    out = []
    for g in groups.values():
        known = decide(g) if decide is not None else None
        if known is None:
            members = set(g)
            oA = [A[k] for k in range(len(A)) if k not in members]
            ob = [b[k] for k in range(len(A)) if k not in members]
            r = _polyhedra.lp_max(A[g[0]], oA, ob) if oA else None
            known = r is None or r.status == "unbounded" or (r.value is not None
                                                              and r.value > b[g[0]])
        if known:
            out.append((tuple(A[g[0]]), b[g[0]], tuple(sorted(ids[k] for k in g))))
    return out


def _l1(a: Sequence[Fraction]) -> Fraction:
    return sum((abs(v) for v in a), Fraction(0))


def inscribed_ball(A: Sequence[Sequence[Fraction]], b: Sequence[Fraction],
                   norms: Sequence[Fraction], d: int, cap: Fraction | None = None
                   ) -> tuple[Point, Fraction] | None:
    """``(x, s)`` maximizing ``s`` subject to ``a_i . x + s norms_i <= b_i`` (and ``s <= cap``),
    by cddlib's exact LP: with ``norms_i`` the dual norm of ``a_i`` (l1 for cubes, l_inf for
    cross-polytopes, l2 for balls) the ball of radius ``s`` around ``x`` is the largest inside
    ``{A t <= b}``. None when ``s`` is unbounded (no cap)."""
    rows = [[*a, n] for a, n in zip(A, norms, strict=True)]
    rhs = list(b)
    if cap is not None:
        rows.append([Fraction(0)] * d + [Fraction(1)])
        rhs.append(cap)
    if not rows:
        return None
    r = _polyhedra.lp_max([Fraction(0)] * d + [Fraction(1)], rows, rhs)
    if r.status == "unbounded":
        return None
    if r.status != "optimal" or r.x is None or r.value is None:
        raise AnalysisError(f"the inscribed-ball LP is {r.status}")
    return tuple(r.x[:d]), r.value


def norm2_bounds(a: Sequence[Fraction], bits: int = 40) -> tuple[Fraction, Fraction]:
    """Rationals ``lo <= ||a||_2 <= hi`` with ``hi - lo <= 2^-bits / D`` (``D``: the common
    denominator of ``a``), from an integer square root: exact when the norm is rational."""
    D = math.lcm(*(v.denominator for v in a)) if a else 1
    S = sum((v.numerator * (D // v.denominator)) ** 2 for v in a)
    scaled = S << (2 * bits)
    r = math.isqrt(scaled)
    den = D << bits
    return Fraction(r, den), Fraction(r + (r * r != scaled), den)


class VertexTable:
    """Exact vertices numbered once across several regions (``vertices[k]`` is vertex ``k``)."""

    def __init__(self) -> None:
        self.vertices: list[Point] = []
        self._index: dict[Point, int] = {}

    def __call__(self, v: Point) -> int:
        k = self._index.get(v)
        if k is None:
            k = self._index[v] = len(self.vertices)
            self.vertices.append(v)
        return k


def closure_interval(region: Region, p: Point, direction: Point
                     ) -> tuple[Fraction, Fraction] | None:
    """``[lo, hi]`` within ``[0, 1]`` of the ``t`` with ``p + t direction`` in the region's
    closure (its facets), or None when there is none."""
    lo, hi = Fraction(0), Fraction(1)
    for f in region.facets:
        g = sum((a * v for a, v in zip(f.a, direction, strict=True)), Fraction(0))
        r = f.b - sum((a * v for a, v in zip(f.a, p, strict=True)), Fraction(0))
        if g == 0:
            if r < 0:
                return None
        elif g > 0:
            hi = min(hi, r / g)
        else:
            lo = max(lo, r / g)
        if lo > hi:
            return None
    return lo, hi
