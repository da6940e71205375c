"""The exact layer: certify regions, vertices, adjacency and counts in rational arithmetic.

Regions form a tree by layer (piecewise op). For a parent cell ``P`` (a cell of the ops before
``j``), the switching functions of op ``j`` are exactly affine on ``P``; its children are the
cells of that arrangement inside ``P``. For every parent the children are

1. proposed by the float trace (its patterns, grouped by prefix) with float interior points;
2. each confirmed exactly: a rational witness strictly inside (checked exactly; an exact LP finds
   one where the float point fails), exact non-redundant facets and vertices (cddlib GMP on the
   facets the trace proposes, then every other constraint checked exactly at every exact vertex,
   adding any violated one and recomputing);
3. certified complete by closure under facet crossing: for every facet of a child that is not on
   the boundary of ``P``, the child across it (decided exactly at a point of the facet's relative
   interior, with a symbolic step along the normal) must be present; a missing one is *repaired*:
   added with an exact witness and processed like the others;
4. where volumes are cheap (bounded, d <= 3), the children's exact volumes sum to the parent's.

Nothing here trusts a float: floats only propose candidates and witnesses.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import logging
import math
import os
import random
import time
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from operator import ne
from typing import Any, overload

import numpy as np
import torch

from . import _exact, _polyhedra
from ._deps import flint
from ._exact import (
    ExactMap,
    IntMap as _IMap,
    as_exact as _as_exact,
    as_int as _as_int,
    fmpq,
    fmpq_mat,
)
from ._geometry import float_signs, lineality_basis, ray_normal_form
from ._progress import progress_bar
from ._runtime import paused_gc
from .capture import INPUT, Program, constraint_offsets
from .certificate import coprime_fraction
from .domain import Domain
from .errors import CertificationError, InvalidInputError, RegionLimitError
from .rules import AffineRule, ReshapeRule, _ElementwiseRule

log = logging.getLogger(__name__)
fmpz, fmpz_mat = flint.fmpz, flint.fmpz_mat

Row = tuple[Fraction, ...]


@dataclass
class Facet:
    """A non-redundant constraint of a cell as a slack row ``g``: ``g . (t, 1) >= 0`` inside."""

    slack: list  # fmpq, fmpz or int entries, length d + 1: the constraint's row times ``scale``
    ids: tuple[int, ...]  # constraint ids (domain rows first, then switching functions)
    vertices: tuple[int, ...] = ()  # indices into the cell's vertex list
    rays: tuple[int, ...] = ()  # indices into the cell's rays (unbounded cells)
    scale: int = 1  # positive: integer rows of the certifier's hot path are scaled rows
    fslack: np.ndarray | None = None  # float64 nearest to every entry of ``slack``, when known

    @property
    def a(self) -> tuple[Fraction, ...]:
        """``a`` of the facet written as ``a . t <= b`` (the constraint's own row, unscaled)."""
        number, scale = _Fractions.number, self.scale
        return tuple([number(-v, scale) for v in self.slack[:-1]])

    @property
    def b(self) -> Fraction:
        return _Fractions.number(self.slack[-1], self.scale)


@dataclass
class Cell:
    """One node of the layer tree: ``states`` of the first ``level`` piecewise ops."""

    level: int
    states: tuple[tuple[int, ...], ...]
    witness: tuple  # fmpq coordinates, strictly inside
    facets: list[Facet]
    vertices: list[tuple]  # fmpq coordinates
    volume: Any = None  # fmpq, where cheap
    repaired: bool = False
    live: dict | None = None  # exact live values before op ``level`` (not shipped in results)
    rays: list[tuple] = field(default_factory=list)  # extreme rays (unbounded cells), fmpq
    lines: list[tuple] = field(default_factory=list)  # a basis of the lineality space, fmpq
    fvertices: np.ndarray | None = None  # (len(vertices), d) float64 nearest to the vertices

    @property
    def live_values(self) -> dict:
        """``live`` of a cell whose children are being made (it is released only after)."""
        assert self.live is not None, "the live values of a finished cell were read"
        return self.live


@dataclass
class Stats:
    candidates: int = 0
    confirmed: int = 0
    spurious: int = 0
    repaired: int = 0
    witness_lp: int = 0
    redo_hv: int = 0
    cells: int = 0
    seconds: dict = field(default_factory=dict)

    def merge(self, other: Stats) -> None:
        for k in ("candidates", "confirmed", "spurious", "repaired", "witness_lp", "redo_hv",
                  "cells"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k, v in other.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v


# --------------------------------------------------------------------------- exact propagation

def _run_nodes(prog: Program, live: dict, lo: int, hi: int, state: Sequence[int] | None,
               apply: Any = None, affine: dict | None = None) -> dict:
    """Run nodes ``lo..hi-1`` exactly; node ``lo`` may be the piecewise op taking ``state``
    (through ``apply(input_map, state)`` when given, an exact equivalent of the rule's). With
    ``affine`` (a per-certifier cache), affine and reshape layers run on integer maps."""
    live = dict(live)
    for i in range(lo, hi):
        nd = prog.nodes[i]
        ins = [live[s] for s in nd.inputs]
        fwd = type(nd.rule).exact_forward
        if nd.piecewise and apply is not None:
            out = apply(ins[0], state)
        elif nd.piecewise:
            st = torch.tensor(state, dtype=torch.int64).reshape(nd.out_shape)
            out = nd.piecewise_rule.exact_apply(nd.module, _as_exact(ins[0]), st)
        elif affine is not None and fwd is AffineRule.exact_forward:
            out = _affine_forward(affine, i, nd, _as_int(ins[0]))
        elif affine is not None and fwd is ReshapeRule.exact_forward:
            m = _as_int(ins[0])
            out = _IMap(m._N, m.den, tuple(nd.out_shape), m._rows)
        else:
            out = nd.rule.exact_forward(nd.module, [_as_exact(x) for x in ins], nd.out_shape)
        live[i] = out
        for s in set(nd.inputs):
            if s != INPUT and prog._last_use[s] <= i:
                live.pop(s, None)
    if hi >= len(prog.nodes):
        return {"output": live[prog.output]}
    if hi <= len(prog.nodes) and INPUT in live \
            and all(INPUT not in nd.inputs for nd in prog.nodes[hi:]):
        live.pop(INPUT)
    return live


@dataclass
class _IntAffine:
    """An exact affine layer ``[A | a] = [Az | az] / dA`` in integers, for one input shape."""

    Az: Any  # fmpz_mat
    az: Any  # fmpz_mat column, or None when a = 0
    dA: int
    _obj: Any = None
    _columns: dict = field(default_factory=dict)
    _az_ints: list | None = None

    @property
    def obj(self) -> np.ndarray:
        """``Az`` as a numpy object array of Python ints (for products with few columns)."""
        if self._obj is None:
            ints = [[int(v) for v in r] for r in self.Az.tolist()]
            self._obj = np.array(ints, dtype=object).reshape(self.Az.nrows(), self.Az.ncols())
        return self._obj

    @property
    def az_ints(self) -> list[int] | None:
        if self._az_ints is None and self.az is not None:
            self._az_ints = [int(v) for v in self.az.entries()]
        return self._az_ints

    def column(self, k: int, ncols: int) -> list[int]:
        """Column ``k`` of ``Az``, each entry repeated ``ncols`` times (for row-major updates)."""
        key = (k, ncols)
        got = self._columns.get(key)
        if got is None:
            got = self._columns[key] = [v for v in self.obj[:, k].tolist() for _ in range(ncols)]
        return got


# Products ``Az R`` of an affine layer's integer matrix with a few columns of Python ints run in
# python-flint (C, but each entry converted in and out) once ``Az``'s rows times the nonzero rows
# of ``R`` reach this; below it, numpy's object product on the Python ints themselves is cheaper.
_FLINT_PRODUCT = 200


def _int_affine(cache: dict, i: int, nd: Any, shape: tuple[int, ...]) -> _IntAffine:
    """The integer form of affine node ``i`` for inputs of ``shape`` (kept in ``cache``)."""
    key = (i, shape)
    hit = cache.get(key)
    if hit is None:
        aff = nd.rule.exact_affine(nd.module, shape)
        rows = aff.A.tolist()
        aug = fmpq_mat(len(rows), aff.A.ncols() + 1,
                       [v for r, c in zip(rows, aff.a, strict=True) for v in (*r, c)])
        Nz, dA = aug.numer_denom()
        zrows = Nz.tolist()
        Az = fmpz_mat([r[:-1] for r in zrows]) if zrows and len(zrows[0]) > 1 \
            else fmpz_mat(len(zrows), 0)
        az = [r[-1] for r in zrows]
        col = fmpz_mat(len(az), 1, az) if any(v != 0 for v in az) else None
        hit = cache[key] = _IntAffine(Az, col, int(dA))
    return hit


def _affine_forward(cache: dict, i: int, nd: Any, m: _IMap) -> _IMap:
    """``AffineRule.exact_forward`` on integer maps: with ``[A | a] = [Az | az] / dA`` (kept per
    certifier), ``N' = Az N + az (0, ..., 0, den)`` over ``dA den``."""
    aff = _int_affine(cache, i, nd, m.shape)
    Az, az, dA = aff.Az, aff.az, aff.dA
    out = Az * m.N
    if az is not None:
        ncols = m.N.ncols()
        out = out + az * fmpz_mat(1, ncols, [0] * (ncols - 1) + [m.den])
    return _IMap(out, dA * m.den, tuple(nd.out_shape))


def _int_switching(rule: Any, module: Any, m: _IMap) -> tuple[list[list], list[int]]:
    """Switching rows of an elementwise op as integer rows with their positive scales: row ``i``
    is ``scale_i`` times the exact switching function (input minus threshold)."""
    rows = m.rows
    out: list[list] = []
    scales: list[int] = []
    for t in rule.thresholds(module):
        tq = _exact.to_fmpq(t) * m.den
        s, shift = int(tq.q), int(tq.p)
        if s == 1 and shift == 0:  # the input rows themselves (shared, never modified)
            out.extend(rows)
            scales.extend([m.den] * len(rows))
            continue
        for row in rows:
            r = list(row) if s == 1 else [v * s for v in row]
            r[-1] = r[-1] - shift
            out.append(r)
        scales.extend([m.den * s] * len(rows))
    return out, scales


def _switching_map(prog: Program, live: dict, j: int) -> ExactMap:
    nd = prog.nodes[prog.piecewise[j]]
    return nd.piecewise_rule.exact_switching(nd.module, _as_exact(live[nd.inputs[0]]))


# --------------------------------------------------------------------------- small exact helpers

def _q(x: Any) -> fmpq:
    return _exact.to_fmpq(x)


def _f(x: Any, scale: int = 1) -> Fraction:
    """``x / scale`` as a Fraction (``x``: fmpq, fmpz or int; see :meth:`_Fractions.number`)."""
    return _Fractions.number(x, scale)


def _mat(rows: list, ncols: int) -> fmpq_mat:
    return fmpq_mat(len(rows), ncols, [v for r in rows for v in r])


def _cols(points: Sequence[tuple], d: int, homogeneous: bool = True) -> fmpq_mat:
    """Points as the columns of a matrix, with a trailing row of ones when ``homogeneous``."""
    k = len(points)
    if homogeneous:
        return fmpq_mat(d + 1, k, [p[i] for i in range(d) for p in points] + [fmpq(1)] * k)
    return fmpq_mat(d, k, [p[i] for i in range(d) for p in points])


def _to_ab(G: list, d: int) -> tuple[list[list[Fraction]], list[Fraction]]:
    """Slack rows -> (A, b) with ``A t <= b``, as Fractions for the polyhedral adapter."""
    return [[-_f(v) for v in g[:d]] for g in G], [_f(g[d]) for g in G]


def _volume(vertices: list[tuple], facets: list[Facet], d: int) -> Any:
    if d == 1:
        xs = [v[0] for v in vertices]
        return max(xs) - min(xs)
    if d == 2:  # vertices are kept in counter-clockwise order: shoelace
        n = len(vertices)
        twice = fmpq(0)
        for k in range(n):  # sum of x_k (y_{k+1} - y_{k-1})
            twice += vertices[k][0] * (vertices[(k + 1) % n][1] - vertices[k - 1][1])
        if twice <= 0:
            raise CertificationError("a 2-D cell whose vertices are not in counter-clockwise order")
        return twice / 2
    if d == 3:
        return _volume3(vertices, [frozenset(f.vertices) for f in facets])
    return None


def _volume3(vertices: list[tuple], fsets: list[frozenset]) -> Any:
    """Exact volume of a 3-polytope from its vertices and the vertex sets of its facets: a
    pulling triangulation, cones from vertex 0 over the facets missing it, each facet fanned
    from its first vertex over its edges (two facets meet in an edge, a vertex or nothing).

    Each vertex in integers over its own denominator, ``v_k = (X_k, Y_k, Z_k) / w_k``; with
    ``r_k = w_0 (X_k, Y_k, Z_k) - w_k (X_0, Y_0, Z_0)`` a tetrahedron ``(v_0, v_a, v_b, v_c)`` has
    ``6 V = |det(r_a, r_b, r_c)| / (w_0^3 w_a w_b w_c)``: small integers, few rationals."""
    H = []
    for x, y, z in vertices:
        qx, qy, qz = int(x.q), int(y.q), int(z.q)
        w = math.lcm(qx, qy, qz)
        H.append((int(x.p) * (w // qx), int(y.p) * (w // qy), int(z.p) * (w // qz), w))
    X0, Y0, Z0, w0 = H[0]
    R = [(w0 * X - w * X0, w0 * Y - w * Y0, w0 * Z - w * Z0, w) for X, Y, Z, w in H]
    nf = len(fsets)
    edges: list[list[frozenset]] = [[] for _ in range(nf)]  # per facet, its edges
    for fi in range(nf):
        F = fsets[fi]
        for gi in range(fi + 1, nf):
            e = F & fsets[gi]
            if len(e) == 2:
                edges[fi].append(e)
                edges[gi].append(e)
    total = fmpq(0)
    for F, es in zip(fsets, edges, strict=True):
        if 0 in F:
            continue
        p0 = min(F)
        ax, ay, az, wa = R[p0]
        part = fmpq(0)
        for e in es:
            if p0 in e:
                continue
            i, j = e
            bx, by, bz, wb = R[i]
            cx, cy, cz, wc = R[j]
            det = ax * (by * cz - bz * cy) - ay * (bx * cz - bz * cx) + az * (bx * cy - by * cx)
            part += fmpq(abs(det), wb * wc)
        total += part / wa
    return total / (6 * w0 ** 3)


def _dyadic_inside(x: np.ndarray, facets: list[Facet], d: int) -> tuple | None:
    """The float point ``x`` as an exact (dyadic) rational point if it lies strictly inside every
    facet (decided exactly, in integers over one power of two), else None."""
    if not np.isfinite(x).all():
        return None
    ratios = [float(v).as_integer_ratio() for v in x]
    D = max(q for _, q in ratios)  # powers of two: the largest is a multiple of the others
    C = [n * (D // q) for n, q in ratios] + [D]
    w = tuple(fmpq(n, q) for n, q in ratios)
    for f in facets:
        g = f.slack
        if all(type(v) is int for v in g):
            if sum(a * c for a, c in zip(g, C, strict=True)) <= 0:
                return None
        elif _exact_value(g, w, d) <= 0:
            return None
    return w


def _clip(poly: list[tuple], g: list, d: int) -> list[tuple]:
    """Clip an interval (d = 1, two ends) or a counter-clockwise convex polygon by
    ``g . (t, 1) >= 0``."""
    s = [sum((gi * pi for gi, pi in zip(g, p, strict=False)), g[d]) for p in poly]
    if all(v >= 0 for v in s):
        return poly
    if d == 1:
        (_a,), (_b,) = poly
        cut = (-g[1] / g[0],)
        return [poly[0], cut] if s[0] >= 0 else [cut, poly[1]]
    out: list[tuple] = []
    n = len(poly)
    for i in range(n):
        p, sp = poly[i], s[i]
        q, sq = poly[(i + 1) % n], s[(i + 1) % n]
        if sp >= 0:
            out.append(p)
        if (sp > 0 and sq < 0) or (sp < 0 and sq > 0):
            t = sp / (sp - sq)
            out.append(tuple(pi + t * (qi - pi) for pi, qi in zip(p, q, strict=True)))
    dedup = [v for i, v in enumerate(out) if v != out[i - 1]] if len(out) > 1 else out
    return dedup



# --------------------------------------------------------------------------- filtered signs
#
# Signs of every row of an exact matrix M (rows [a_1..a_d, b]: fmpq, fmpz or int) at every point
# of a list of exact points, decided in float64 with the rigorous error bound of
# ``_geometry.float_signs`` (derived and tested there) from the nearest floats of both, and in
# exact arithmetic only where the bound does not decide (mostly the exact zeros: constraints
# tight at a vertex), or not at all where a zero is known by construction.


def _nearest(vals: Iterable) -> np.ndarray:
    """float64 nearest to each rational (int / int true division is correctly rounded), +-inf
    where it overflows."""
    vals = list(vals)
    try:
        return np.array([v if type(v) is int else float(int(v)) if type(v) is fmpz
                         else int(v.p) / int(v.q) for v in vals], dtype=np.float64)
    except OverflowError:
        out = []
        for v in vals:
            try:
                out.append(float(v) if type(v) is int else float(int(v)) if type(v) is fmpz
                           else int(v.p) / int(v.q))
            except OverflowError:
                out.append(math.inf if v > 0 else -math.inf)
        return np.array(out, dtype=np.float64)


def _float_rows(rows: list, ncols: int, ints: bool = False) -> np.ndarray:
    """float64 nearest to every entry of ``rows`` (numpy rounds Python ints correctly); ``ints``:
    the caller knows every entry is a Python int."""
    if ints or all(type(v) is int for r in rows for v in r):
        try:
            return np.array(rows, dtype=np.float64).reshape(len(rows), ncols)
        except OverflowError:
            pass
    return _nearest(v for r in rows for v in r).reshape(len(rows), ncols)


def _float_points(points: Sequence[tuple], d: int) -> np.ndarray:
    """(d + 1, k): the points as columns, with a trailing row of exact ones."""
    k = len(points)
    X = np.ones((d + 1, k), dtype=np.float64)
    if k:
        X[:d] = _nearest(v for p in points for v in p).reshape(k, d).T
    return X


def _value(row: list, p: tuple, d: int) -> fmpq:
    """Exact ``row . (p, 1)``."""
    return sum((row[i] * p[i] for i in range(d)), row[d])


def _direction(row: list, r: tuple, d: int) -> fmpq:
    """Exact ``row . (r, 0)``: the change of the affine function along the direction ``r``."""
    return sum((row[i] * r[i] for i in range(d)), fmpq(0))


def _exact_value(row: list, p: tuple, d: int) -> fmpq:
    v = row[d]
    for i in range(d):
        v += row[i] * p[i]
    return v


def _signs(rows: list, Mf: np.ndarray, absM: np.ndarray, points: Sequence[tuple], d: int,
           Xf: np.ndarray | None = None, zero: np.ndarray | None = None) -> np.ndarray:
    """Exact signs (int8, len(rows) x len(points)) of the exact rows at the exact points;
    ``zero`` (bool, same shape) marks entries known to be exactly 0 (not recomputed)."""
    if Xf is None:
        Xf = _float_points(points, d)
    out, decided = float_signs(Mf, absM, Xf)
    if zero is not None:
        out[zero] = 0
        decided |= zero
    und = np.nonzero(~decided)
    m = len(und[0])
    if m:
        if m * 4 > out.size:  # mostly undecided: one exact matrix product
            E = (_mat(rows, d + 1) * _cols(points, d)).tolist()
            for i, j in zip(und[0].tolist(), und[1].tolist(), strict=True):
                v = E[i][j]
                out[i, j] = (v > 0) - (v < 0)
        else:
            for i, j in zip(und[0].tolist(), und[1].tolist(), strict=True):
                v = _exact_value(rows[i], points[j], d)
                out[i, j] = (v > 0) - (v < 0)
    return out


# --------------------------------------------------------------------------- the per-parent step

@dataclass
class Candidate:
    state: tuple[int, ...]
    # an interior point: floats from the trace (taken exactly) or exact (seeds)
    witness: tuple | None
    hint_ids: set[int] | None  # constraint ids the float trace saw bounding descendants


class _Certifier:
    """Exact work for one parent at a time. Internally rationals are python-flint ``fmpq`` and
    constraints are *slack rows* ``g`` with ``g . (t, 1) >= 0`` (``> 0`` strictly inside), so that
    evaluations are ``fmpq_mat`` products: ``E = SW * V`` holds every switching function of the
    op at every vertex of a cell and answers all of the cell's sign questions at once."""

    def __init__(self, prog: Program, domain: Domain, offsets: list[int]) -> None:
        self.prog = prog
        self.domain = domain
        self.d = domain.dim
        self.offsets = offsets
        self.stats = Stats()
        self.bounded = domain.is_bounded
        self.rng = random.Random(0)
        self.affine: dict = {}  # exact affine layers by node (see _affine_forward)
        self.slopes: dict = {}  # integer slopes and constants of elementwise ops (see _OpContext)
        self._fast: dict = {}  # piecewise op -> its fast segment (see _fast_segment)
        self.limit: int | None = None  # max_regions: more children of one parent raise at once

    # -- one parent ------------------------------------------------------------------------
    def children(self, parent: Cell, cands: list[Candidate], traced: bool = True) -> list[Cell]:
        """The certified children of ``parent``; ``cands`` are the float trace's proposals
        (``traced``: there was a trace to propose them, so what it missed counts as repaired)."""
        j = parent.level
        d = self.d
        nd = self.prog.nodes[self.prog.piecewise[j]]
        live = parent.live_values
        if self.bounded and nd.piecewise_rule.sign_cells:
            sw_rows, scales = _int_switching(nd.rule, nd.module, _as_int(live[nd.inputs[0]]))
            ctx = _OpContext(nd, sw_rows, scales, parent, d, self.slopes)
            return self._arranged(parent, ctx, cands, traced)
        ctx = _OpContext(nd, _switching_map(self.prog, live, j).mat.tolist(), None, parent, d,
                         self.slopes)
        if not cands:
            cands = [_seed(self, parent)]
        found: dict[tuple[int, ...], Cell] = {}
        rank: dict[tuple[int, ...], tuple[int, ...]] = {}  # state -> its key in the sibling order
        queue: list[Candidate] = list(cands)
        queued = {c.state for c in queue}
        self.stats.candidates += len(cands)
        while queue:
            cand = queue.pop()
            if cand.state in found:
                continue
            rows = ctx.rows(cand.state)
            if rows is None:
                self.stats.spurious += 1
                continue
            # floats taken exactly
            w = tuple(_q(v) for v in cand.witness) if cand.witness is not None else None
            sw = ctx.point_signs(w, rows) if w is not None else None
            if w is None or sw is None:
                self.stats.witness_lp += 1
                A, b = _to_ab(ctx.parent_G + [ctx.slack(i, sg) for i, sg in rows], d)
                ip = _polyhedra.interior_point(A, b, dim=d)
                if ip is None or ip[1] <= 0:
                    self.stats.spurious += 1
                    continue
                w = tuple(_q(v) for v in ip[0])
                sw = ctx.point_signs(w, None)
            # The state of a cell is the state at its interior points; units identically zero on
            # the parent take their tie state there (they do not split it).
            state = ctx.rule.state_tuple(ctx.module, sw.tolist(), ctx.in_shape)
            if state != cand.state:
                self.stats.spurious += 1
                if state in found:
                    continue
                rows = ctx.rows(state)
                if rows is None:
                    raise CertificationError(f"the state at a cell's witness has a surely empty "
                                             f"cell (level {j}): the rule's constraint_list "
                                             "disagrees with its state_tuple")
            if self.bounded:
                cell, sgnE, sgnP = self._cell(parent, ctx, state, w, rows, cand.hint_ids)
            else:
                cell, sgnE, sgnP = self._cell_unbounded(parent, ctx, state, w, rows), None, None
            cell.repaired = cand.hint_ids is None and cand.witness is None
            if cell.repaired:
                self.stats.repaired += 1
            else:
                self.stats.confirmed += 1
            found[state] = cell
            rank[state] = tuple((-sw).tolist()) if ctx.rule.sign_cells else state
            if self.limit is not None and len(found) > self.limit:
                raise region_limit(len(found), self.limit)
            # closure under facet crossing
            lo, hi = self.offsets[j], self.offsets[j + 1]
            for f in cell.facets:
                if not any(lo <= i < hi for i in f.ids):
                    continue  # only a facet of the parent: crossing it leaves P
                if not self.bounded:
                    if self._on_parent_boundary_exact(f, cell, ctx):
                        continue
                    nb = self._across_exact(f, cell, ctx)
                elif sgnP is not None and (sgnP[:, list(f.vertices)] == 0).all(axis=1).any():
                    continue  # on the parent's boundary
                else:
                    assert sgnE is not None  # a bounded cell's signs at its vertices
                    nb = self._across(f, sgnE, cell.vertices, ctx)
                if nb not in found and nb not in queued:
                    queued.add(nb)
                    queue.append(Candidate(nb, None, None))
        if not found:
            raise CertificationError(f"no child found for a parent cell at level {j}")
        # the canonical sibling order (see ``run``): for an op whose cells are sign vectors, by
        # the signs of its switching functions inside (as the arrangement makes them; every
        # function not constant on the parent is a constraint, so non-zero at ``w``), else by
        # state
        children = [found[st] for st in sorted(found, key=rank.__getitem__)]
        if parent.volume is not None:
            total = sum((c.volume for c in children), fmpq(0))
            if total != parent.volume:
                raise CertificationError(
                    f"children volumes sum to {total}, parent volume is {parent.volume} "
                    f"(level {j})")
        return children

    # -- all children of a bounded parent at once ------------------------------------------
    def _arranged(self, parent: Cell, ctx: _OpContext, cands: list[Candidate],
                  traced: bool) -> list[Cell]:
        """The children of ``parent`` from the exact arrangement of the op's switching
        hyperplanes (see :class:`_Arrangement`); the float trace's candidates are only compared
        with them: a child it did not propose is counted as repaired, a proposal that is no child
        as spurious."""
        d, S, j = self.d, ctx.S, ctx.j
        arr = _Arrangement(ctx, parent, d)
        proposed = {c.state for c in cands}
        children: list[Cell] = []
        seen: set[tuple[int, ...]] = set()
        raw = arr.cells()
        # signs of every switching function on every cell, all cells at once (cells are the
        # column runs of their vertices)
        starts = np.cumsum([0] + [len(vs) for vs, _ in raw[:-1]])
        sub = arr.sg[:S, [v for vs, _ in raw for v in vs]]
        pos = np.logical_or.reduceat(sub > 0, starts, axis=1)
        neg = np.logical_or.reduceat(sub < 0, starts, axis=1)
        if (pos & neg).any():
            raise CertificationError(f"a switching function crosses a finished cell (level {j})")
        cell_signs = (pos.astype(np.int8) - neg.astype(np.int8)).T
        for (vs, cm), signs, sign_list in zip(raw, cell_signs, cell_signs.tolist(), strict=True):
            # units identically zero on the parent take their tie state (they do not split it)
            state = ctx.rule.state_tuple(ctx.module, sign_list, ctx.in_shape)
            if state in seen:
                raise CertificationError(f"two cells of one parent with the same state (level {j})")
            seen.add(state)
            if d == 1:
                vs = sorted(vs, key=lambda v: arr.pts[v][0])
            if len(raw) == 1 and not arr.touched(parent):
                # nothing cuts the parent and no switching function vanishes on a facet of it:
                # the same polytope, facets, witness and volume
                cell = Cell(j + 1, (*parent.states, state), parent.witness, parent.facets,
                            parent.vertices, parent.volume, fvertices=parent.fvertices)
                cell.repaired = traced and state not in proposed
                children.append(cell)
                continue
            facets = self._arranged_facets(arr, vs, cm, signs, ctx)
            verts = [arr.pts[v] for v in vs]
            fverts = arr.fx[vs]
            if len(raw) == 1:  # nothing cuts the parent: same polytope, witness and volume
                witness, vol = parent.witness, parent.volume
            else:
                # a short dyadic point near the centroid, checked strictly inside exactly; else
                # the exact centroid (2-D: of three ring vertices, which are never collinear, so
                # it is strictly inside; else of all vertices)
                dyadic = _dyadic_inside(fverts.mean(axis=0), facets, d)
                if dyadic is None:
                    w = verts[:3] if d == 2 else verts
                    dyadic = tuple(sum((p[i] for p in w), fmpq(0)) / len(w) for i in range(d))
                witness = dyadic
                vol = _volume(verts, facets, d)
            cell = Cell(j + 1, (*parent.states, state), witness, facets, verts, vol,
                        fvertices=fverts)
            cell.repaired = traced and state not in proposed
            children.append(cell)
        lives = self._child_lives(parent, ctx, [c.states[-1] for c in children])
        for cell, live in zip(children, lives, strict=True):
            cell.live = live
        if parent.volume is not None:
            total = sum((c.volume for c in children), fmpq(0))
            if total != parent.volume:
                raise CertificationError(
                    f"children volumes sum to {total}, parent volume is {parent.volume} "
                    f"(level {j})")
        st = self.stats
        st.candidates += len(cands)
        st.repaired += sum(c.repaired for c in children)
        st.confirmed += len(children) - sum(c.repaired for c in children)
        st.spurious += len(proposed - seen)
        return children

    def _arranged_facets(self, arr: _Arrangement, vs: list[int], cm: int, signs: np.ndarray,
                         ctx: _OpContext) -> list[Facet]:
        """Facets of one arrangement cell: sides of the ring (2-D), else the constraints whose
        sets of tight vertices are maximal; each with every constraint vanishing on all of it."""
        d, S, Z = self.d, arr.S, arr.Z
        off = self.offsets[ctx.j]
        sides: list[tuple[int, ...]]
        if d == 2:
            n = len(vs)
            sides = [(k, (k + 1) % n) for k in range(n)]
        else:
            by_bit: dict[int, list[int]] = {}  # constraint bit -> positions of its tight vertices
            for k, v in enumerate(vs):
                bits = Z[v] & cm
                while bits:
                    low = bits & -bits
                    bits ^= low
                    by_bit.setdefault(low, []).append(k)
            sets = [frozenset(t) for t in {tuple(t) for t in by_bit.values()}]
            sides = sorted(tuple(sorted(t)) for t in sets if not any(t < o for o in sets))
        facets = []
        for side in sides:
            z = arr.zmask
            for k in side:
                z &= Z[vs[k]]
            if not z or len(side) < d:
                raise CertificationError("a side of a cell lies on no constraint")
            ids: set[int] = set()
            first_unit = first_parent = None
            bits = z
            while bits:
                low = bits & -bits
                bits ^= low
                r = low.bit_length() - 1
                if r >= S:
                    ids.update(ctx.parent_ids[r - S])
                    if first_parent is None:
                        first_parent = r - S
                else:
                    ids.add(off + r)
                    if first_unit is None:
                        first_unit = r
            # a parent facet's row wins: the side lies on the parent's boundary
            if first_parent is not None:
                slack, scale = ctx.parent_G[first_parent], ctx.parent_scale[first_parent]
                fslack = ctx.ALLf[S + first_parent]
            elif first_unit is None:
                raise CertificationError("a side of a cell lies on no constraint")
            else:
                sg = int(signs[first_unit])
                slack, scale = ctx.slack(first_unit, sg), ctx.scale(first_unit)
                fslack = ctx.ALLf[first_unit] if sg > 0 else -ctx.ALLf[first_unit]
            facets.append(Facet(slack, tuple(sorted(ids)), side, scale=scale, fslack=fslack))
        return facets

    def _cell(self, parent: Cell, ctx: _OpContext, state: tuple[int, ...], w: tuple,
              rows: list[tuple[int, int]], hint: set[int] | None) -> tuple[Cell, np.ndarray, Any]:
        """The exact cell of ``state``; also the exact sign matrices of the op's switching
        functions (``sgnE``) and of the parent's facets (``sgnP``) at the cell's vertices."""
        d = self.d
        off = self.offsets[ctx.j]
        sign_of = dict(rows)
        ridx = np.fromiter((i for i, _ in rows), dtype=np.int64, count=len(rows))
        rsg = np.fromiter((sg for _, sg in rows), dtype=np.int8, count=len(rows))
        first = ridx.tolist() if hint is None else [i for i, _ in rows if off + i in hint]
        if d <= 2 and self.bounded:
            poly = list(parent.vertices)
            pending = first
            while True:
                for i in pending:
                    poly = _clip(poly, ctx.slack(i, sign_of[i]), d)
                sgnE, sgnP = ctx.signs(poly)
                bad = ((sgnE[ridx] * rsg[:, None]) < 0).any(axis=1)
                pending = ridx[bad].tolist()
                if not pending:
                    break
                self.stats.redo_hv += 1
            if len(poly) < d + 1:
                raise CertificationError("a cell with a witness strictly inside came out flat")
            verts = poly
            sides: list[tuple[int, ...]] = [(0,), (1,)] if d == 1 else \
                [(v, (v + 1) % len(poly)) for v in range(len(poly))]
        else:
            use = first
            while True:
                G = ctx.parent_G + [ctx.slack(i, sign_of[i]) for i in use]
                A, b = _to_ab(G, d)
                vrep = _polyhedra.h_to_v(A, b, dim=d)
                if vrep.rays or vrep.lines or not vrep.vertices:
                    if len(use) < len(rows):
                        use = [i for i, _ in rows]
                        self.stats.redo_hv += 1
                        continue
                    raise InvalidInputError("unbounded cells are not supported yet by the "
                                            "certifier; use a bounded domain")
                verts = [tuple(_q(v) for v in vx) for vx in vrep.vertices]
                sgnE, sgnP = ctx.signs(verts)
                badm = ((sgnE[ridx] * rsg[:, None]) < 0).any(axis=1)
                bad = ridx[badm].tolist()
                if not bad:
                    break
                self.stats.redo_hv += 1
                use = sorted(set(use) | set(bad))
            fs = _polyhedra.facets(A, b, vrep)
            sides = [tuple(sorted(vs)) for vs in fs.vertex_sets]
        zE = sgnE[ridx] == 0 if len(rows) else None
        zP = sgnP == 0 if sgnP is not None else None
        facets = []
        for side in sides:
            sl = list(side)
            tight_par = np.nonzero(zP[:, sl].all(axis=1))[0].tolist() if zP is not None else []
            tight_own = ridx[zE[:, sl].all(axis=1)].tolist() if zE is not None else []
            if tight_par:
                slack, scale = ctx.parent_G[tight_par[0]], ctx.parent_scale[tight_par[0]]
            elif tight_own:
                own = tight_own[0]
                slack, scale = ctx.slack(own, sign_of[own]), ctx.scale(own)
            else:
                raise CertificationError("a side of a cell lies on no constraint")
            ids = {i for k in tight_par for i in ctx.parent_ids[k]} | {off + i for i in tight_own}
            facets.append(Facet(list(slack), tuple(sorted(ids)), side, scale=scale))
        vol = _volume(verts, facets, d) if self.bounded else None
        cell = Cell(ctx.j + 1, (*parent.states, state), tuple(w), facets, verts, vol)
        cell.live = _run_nodes(self.prog, parent.live_values, *self._seg(ctx.j + 1), state,
                               ctx.apply, self.affine)
        return cell, sgnE, sgnP

    def _cell_unbounded(self, parent: Cell, ctx: _OpContext, state: tuple[int, ...], w: tuple,
                        rows: list[tuple[int, int]]) -> Cell:
        """The exact cell of ``state`` in an unbounded parent: cddlib on all its rows, with the
        points, extreme rays and lines of the V-representation (no volumes)."""
        d = self.d
        off = self.offsets[ctx.j]
        G = ctx.parent_G + [ctx.slack(i, sg) for i, sg in rows]
        scales = list(ctx.parent_scale) + [ctx.scale(i) for i, _ in rows]
        labels = list(ctx.parent_ids) + [(off + i,) for i, _ in rows]
        A, b = _to_ab(G, d)
        vrep = _polyhedra.h_to_v(A, b, dim=d)
        pts = [tuple(_q(v) for v in x) for x in vrep.vertices]
        rays, lines = _recession(vrep)
        facets = []
        if G:
            fs = _polyhedra.facets(A, b, vrep)
            n_par = len(ctx.parent_G)
            for group in fs.groups:
                # the row written, as on bounded domains: the parent's first facet on it, else
                # the unit with the lowest switching index (ops whose cells are sign vectors:
                # the arrangement's choice) or the first in the state's constraint order
                pick = group[0]
                if pick >= n_par and ctx.rule.sign_cells:
                    pick = min(group, key=lambda k: rows[k - n_par][0])
                g = G[pick]
                ids = tuple(sorted({i for k in group for i in labels[k]}))
                fp = tuple(k for k, p in enumerate(pts) if _value(g, p, d) == 0)
                fr = tuple(k for k, r in enumerate(rays) if _direction(g, r, d) == 0)
                facets.append(Facet(list(g), ids, fp, fr, scales[pick]))
        cell = Cell(ctx.j + 1, (*parent.states, state), tuple(w), facets, pts, None, rays=rays,
                    lines=lines)
        cell.live = _run_nodes(self.prog, parent.live_values, *self._seg(ctx.j + 1), state,
                               ctx.apply, self.affine)
        return cell

    def _on_parent_boundary_exact(self, f: Facet, cell: Cell, ctx: _OpContext) -> bool:
        d = self.d
        return any(all(_value(g, cell.vertices[k], d) == 0 for k in f.vertices)
                   and all(_direction(g, cell.rays[k], d) == 0 for k in f.rays)
                   and all(_direction(g, ln, d) == 0 for ln in cell.lines) for g in ctx.parent_G)

    def _across_exact(self, f: Facet, cell: Cell, ctx: _OpContext) -> tuple[int, ...]:
        """:meth:`_across` for unbounded cells, all in exact arithmetic: the point ``c`` is a
        positive combination of the facet's points (convex) and rays, in its relative interior."""
        d = self.d
        pts = [cell.vertices[k] for k in f.vertices]
        rays = [cell.rays[k] for k in f.rays]
        k = next(i for i in range(d) if f.slack[i] != 0)
        gk_pos = f.slack[k] > 0
        on_f = [all(_value(row, p, d) == 0 for p in pts)
                and all(_direction(row, r, d) == 0 for r in rays)
                and all(_direction(row, ln, d) == 0 for ln in cell.lines) for row in ctx.sw_rows]
        for attempt in range(50):
            if attempt == 0:
                wts, mus = [fmpq(1, len(pts))] * len(pts), [fmpq(1)] * len(rays)
            else:
                raw = [self.rng.randint(1, 1000) for _ in pts]
                wts = [fmpq(r, sum(raw)) for r in raw]
                mus = [fmpq(self.rng.randint(1, 1000)) for _ in rays]
            c = tuple(sum((wt * p[i] for wt, p in zip(wts, pts, strict=True)), fmpq(0))
                      + sum((mu * r[i] for mu, r in zip(mus, rays, strict=True)), fmpq(0))
                      for i in range(d))
            signs = []
            for row, on in zip(ctx.sw_rows, on_f, strict=True):
                if on:
                    # a multiple lam * g_f on the facet, sign(lam) = sign(row[k] / g_k);
                    # outside g_f < 0
                    ck = (row[k] > 0) - (row[k] < 0)
                    signs.append(-ck if gk_pos else ck)
                    continue
                v = _value(row, c, d)
                if v == 0:
                    break  # c lies on a hyperplane crossing the facet: pick another point
                signs.append(1 if v > 0 else -1)
            else:
                return ctx.rule.state_tuple(ctx.module, signs, ctx.in_shape)
        raise CertificationError("could not find a generic point on a facet")

    def _child_lives(self, parent: Cell, ctx: _OpContext,
                     states: list[tuple[int, ...]]) -> list[dict]:
        """The exact live maps after op ``ctx.j`` (up to the next piecewise op) for each of the
        parent's children ``states``.

        Where the op is elementwise (default ``exact_apply``) and feeds one affine layer and
        nothing else, the children share that product but for the units whose states differ:
        with ``R_k(s)`` the op's output row ``k`` in state ``s`` (integers over ``den sa``), a
        child's map is ``Az R(s) + az den sa``, and that of a child ``s'`` differing from ``s`` in a
        few units is ``Az R(s) + sum_k Az[:, k] (R_k(s'_k) - R_k(s_k))`` over those units: one
        product per parent, then a rank-one update per differing unit from the nearest child
        already made, all in Python ints (exact)."""
        j = ctx.j
        live = parent.live_values
        elementwise = ctx._elementwise
        fast = self._fast_segment(j) if elementwise is not None and len(live) == 1 else None
        if fast is None or elementwise is None:
            seg = self._seg(j + 1)
            return [_run_nodes(self.prog, live, *seg, st, ctx.apply, self.affine)
                    for st in states]
        i_aff, key = fast
        m = _as_int(live[ctx.nd.inputs[0]])
        aff = _int_affine(self.affine, i_aff, self.prog.nodes[i_aff], m.shape)
        rows, den = m.rows, m.den
        sa = elementwise[1]
        ncols = len(rows[0])

        def out_row(k: int, st: int) -> list[int]:
            return ctx.unit_row(rows[k], st, den)

        s0 = states[0]
        R0 = ctx.unit_rows(rows, s0, den)
        nz = [k for k, r in enumerate(R0) if any(r)]
        n_out = aff.Az.nrows()
        if n_out * len(nz) >= _FLINT_PRODUCT:  # in C; converting in and out costs less here
            M = fmpz_mat(len(R0), ncols, [v for r in R0 for v in r])
            flat0 = [int(v) for v in (aff.Az * M).entries()]
        elif nz:
            A = aff.obj
            flat0 = (A[:, nz] @ np.array([R0[k] for k in nz], dtype=object).reshape(len(nz), ncols)
                     ).reshape(-1).tolist()
        else:
            flat0 = [0] * (n_out * ncols)
        az = aff.az_ints
        if az is not None:
            for r, c in enumerate(az):
                flat0[r * ncols + ncols - 1] += c * (den * sa)
        out_den = aff.dA * den * sa
        shape = tuple(self.prog.nodes[i_aff].out_shape)
        # each child starts from the computed child (or s_0) it differs from in the fewest units
        S = np.array(states, dtype=np.int64).reshape(len(states), len(s0))
        var = np.nonzero((S != S[0]).any(axis=0))[0].tolist()
        sigs = [tuple(r) for r in S[:, var].tolist()]
        done: list[tuple[tuple, tuple, list]] = [(s0, sigs[0], flat0)]
        lives = []
        for st, sig in zip(states, sigs, strict=True):
            _, ref, acc = min(done[-8:], key=lambda e: sum(map(ne, sig, e[1])))
            for k, x, y in zip(var, sig, ref, strict=True):
                if x != y:  # acc += Az[:, k] (R_k(x) - R_k(y)), row-major
                    delta = [p - q for p, q in zip(out_row(k, x), out_row(k, y), strict=True)] \
                        * n_out
                    acc = [v + a * dl
                           for v, a, dl in zip(acc, aff.column(k, ncols), delta, strict=True)]
            done.append((st, sig, acc))
            child = [acc[r:r + ncols] for r in range(0, n_out * ncols, ncols)]
            lives.append({key: _IMap(None, out_den, shape, child)})
        return lives

    def _fast_segment(self, j: int) -> tuple[int, Any] | None:
        """(affine node, key of its map in ``live``) when piecewise op ``j`` feeds exactly one
        affine layer and that layer is all that runs before the next piecewise op; else None."""
        if j in self._fast:
            return self._fast[j]
        prog = self.prog
        lo, hi = self._seg(j + 1)
        out: tuple[int, Any] | None = None
        if hi - lo == 2:
            nd = prog.nodes[lo + 1]
            if (type(nd.rule).exact_forward is AffineRule.exact_forward and list(nd.inputs) == [lo]
                    and prog._last_use[lo] == lo + 1):
                if hi == len(prog.nodes):
                    out = (lo + 1, "output") if prog.output == lo + 1 else None
                else:
                    out = (lo + 1, lo + 1)
        self._fast[j] = out
        return out

    def _seg(self, level: int) -> tuple[int, int]:
        pw = self.prog.piecewise
        lo = pw[level - 1]
        hi = pw[level] if level < len(pw) else len(self.prog.nodes)
        return lo, hi

    def _across(self, f: Facet, sgnE: np.ndarray, verts: list[tuple],
                ctx: _OpContext) -> tuple[int, ...]:
        """State of the op just across facet ``f`` (exact): the signs at a point ``c`` of the
        facet's relative interior, where a switching function vanishing on the whole facet takes
        the sign it has just outside (from its normal), and one merely passing through ``c``
        forces another choice of ``c``.

        ``c`` is a convex combination of the facet's vertices with positive weights, so a function
        whose exact signs at those vertices are all >= 0 (<= 0), not all 0, is > 0 (< 0) at ``c``;
        only functions with mixed strict signs need their exact value at ``c``."""
        d = self.d
        vs = list(f.vertices)
        k = next(i for i in range(d) if f.slack[i] != 0)
        gk_pos = f.slack[k] > 0
        sub = sgnE[:, vs]
        pos = (sub > 0).any(axis=1)
        neg = (sub < 0).any(axis=1)
        signs = pos.astype(np.int8) - neg.astype(np.int8)
        zero = ~(pos | neg)
        if zero.any():
            # on f the function is a multiple lam * g_f with sign(lam) = sign(c / gk);
            # outside g_f < 0
            c = ctx.sw_sign[zero, k]
            signs[zero] = -c if gk_pos else c
        mixed = np.nonzero(pos & neg)[0].tolist()
        if mixed:
            vals = [[_exact_value(ctx.sw_rows[i], verts[x], d) for x in vs] for i in mixed]
            for attempt in range(50):
                if attempt == 0:
                    wts = [fmpq(1, len(vs))] * len(vs)
                else:
                    raw = [self.rng.randint(1, 1000) for _ in vs]
                    tot = sum(raw)
                    wts = [fmpq(r, tot) for r in raw]
                out = []
                for row in vals:
                    v = sum((wt * x for wt, x in zip(wts, row, strict=True)), fmpq(0))
                    if v == 0:
                        break  # c lies on a hyperplane crossing the facet: pick another point
                    out.append(1 if v > 0 else -1)
                else:
                    signs[mixed] = out
                    break
            else:
                raise CertificationError("could not find a generic point on a facet")
        return ctx.rule.state_tuple(ctx.module, signs.tolist(), ctx.in_shape)

    def _state_at(self, rule: Any, module: Any, SW: fmpq_mat, w: tuple,
                  in_shape: tuple[int, ...]) -> tuple[int, ...]:
        vals = (SW * _cols([w], self.d)).entries()
        return rule.state_tuple(module, [(v > 0) - (v < 0) for v in vals], in_shape)


class _OpContext:
    """What every child of one parent shares: the op, its exact switching functions on the
    parent."""

    def __init__(self, nd: Any, sw_rows: list[list], scales: list[int] | None, parent: Cell, d: int,
                 slopes: dict) -> None:
        """``sw_rows``: the switching functions' rows (fmpq), or integer rows that are
        ``scales[i]`` times them (signs and zeros are the same; facets divide the scale out)."""
        self.nd = nd
        self.rule = nd.rule
        self.module = nd.module
        self.in_shape = nd.in_shapes[0]
        self.out_shape = nd.out_shape
        self.j = parent.level
        self.d = d
        self.sw_rows = sw_rows
        self.scales = scales
        self.S = len(sw_rows)
        self.parent_G = [f.slack for f in parent.facets]
        self.parent_ids = [f.ids for f in parent.facets]
        self.parent_scale = [f.scale for f in parent.facets]
        # switching rows, then the parent's facets: one filtered sign matrix answers both
        self.all_rows = self.sw_rows + self.parent_G
        fslacks = [f.fslack for f in parent.facets if f.fslack is not None]
        if parent.facets and len(fslacks) == len(parent.facets):
            self.ALLf = np.vstack([_float_rows(sw_rows, d + 1, ints=scales is not None), *fslacks]
                                  ).reshape(len(self.all_rows), d + 1)
        else:
            self.ALLf = _float_rows(self.all_rows, d + 1)
        self.ALLa = np.abs(self.ALLf)
        # rows that are constant on the parent: identically zero (skipped) or a nonzero constant;
        # a float is 0 only for an exact 0 or an underflow, so only float-constant rows are
        # looked at
        self.const: dict[int, int] = {}
        self.vanish = [False] * self.S
        for i in np.nonzero(~(self.ALLf[:self.S, :d] != 0).any(axis=1))[0].tolist():
            row = sw_rows[i]
            if all(v == 0 for v in row[:d]):
                c = (row[d] > 0) - (row[d] < 0)
                self.const[i] = c
                self.vanish[i] = c == 0
        self._sw_sign: np.ndarray | None = None
        self._PG: Any = None
        self._SW: Any = None
        # per state of an elementwise op: (slope, constant) over ``sa``, ``sa``, kind
        self._elementwise: tuple[list[tuple[int, int]], int, list[int]] | None = None
        rule = self.rule
        if (isinstance(rule, _ElementwiseRule)
                and type(rule).exact_apply is _ElementwiseRule.exact_apply
                and rule.unit_slopes(self.module, self.in_shape) is None):
            key = id(nd)
            if key not in slopes:
                # slope and constant of every state times one common positive integer ``sa``
                sc = [(_q(a), _q(c)) for a, c in rule.slopes_consts(self.module)]
                sa = math.lcm(*(int(v.q) for pair in sc for v in pair))
                ints = [(int((a * sa).p), int((c * sa).p)) for a, c in sc]
                # per state: 1 identity, 0 zero, -1 other (see unit_rows)
                kinds = [1 if (a, c) == (1, 0) else 0 if (a, c) == (0, 0) else -1 for a, c in ints]
                slopes[key] = (ints, sa, kinds)
            self._elementwise = slopes[key]
        self._neg: dict[int, list] = {}

    def scale(self, i: int) -> int:
        return self.scales[i] if self.scales is not None else 1

    @property
    def sw_sign(self) -> np.ndarray:
        """Exact signs (int8, S x (d + 1)) of the entries of the switching rows."""
        if self._sw_sign is None:
            self._sw_sign = np.array([[(v > 0) - (v < 0) for v in row] for row in self.sw_rows],
                                     dtype=np.int8).reshape(self.S, self.d + 1)
        return self._sw_sign

    @property
    def SW(self) -> fmpq_mat:
        if self._SW is None:
            self._SW = _mat(self.sw_rows, self.d + 1)
        return self._SW

    @property
    def PG(self) -> fmpq_mat | None:
        if self._PG is None and self.parent_G:
            self._PG = _mat(self.parent_G, self.d + 1)
        return self._PG

    def signs(self, points: Sequence[tuple]) -> tuple[np.ndarray, np.ndarray | None]:
        """Exact signs (int8) of every switching function (S x len(points)) and of every facet
        of the parent (or None when it has none) at every point."""
        sg = _signs(self.all_rows, self.ALLf, self.ALLa, points, self.d)
        return sg[:self.S], (sg[self.S:] if self.parent_G else None)

    @overload
    def point_signs(self, w: tuple, rows: None) -> np.ndarray: ...
    @overload
    def point_signs(self, w: tuple, rows: list[tuple[int, int]]) -> np.ndarray | None: ...

    def point_signs(self, w: tuple, rows: list[tuple[int, int]] | None) -> np.ndarray | None:
        """Exact signs of the switching functions at ``w``; with ``rows``: None unless ``w`` is
        strictly inside the parent and strictly on the side ``rows`` ask for."""
        sg = _signs(self.all_rows, self.ALLf, self.ALLa, [w], self.d)[:, 0]
        sw = sg[:self.S]
        if rows is not None:
            if (sg[self.S:] <= 0).any():
                return None
            for i, s in rows:
                if sw[i] != s:
                    return None
        return sw

    def apply(self, m: Any, state: Sequence[int]) -> Any:
        """The op's exact output map for ``state`` (``rule.exact_apply``; for elementwise rules
        the same arithmetic on the integer rows of the input map, :meth:`unit_row`: slopes and
        constants are integers over a common ``sa``, the output is over ``den * sa``)."""
        if self._elementwise is None:
            st = torch.tensor(state, dtype=torch.int64).reshape(self.out_shape)
            return self.rule.exact_apply(self.module, _as_exact(m), st)
        im = _as_int(m)
        return _IMap(None, im.den * self._elementwise[1], im.shape,
                     self.unit_rows(im.rows, state, im.den))

    def unit_rows(self, rows: list[list[int]], states: Sequence[int], den: int) -> list[list[int]]:
        """:meth:`unit_row` of every unit; identity and zero states without arithmetic (the
        rows returned are shared: never modify them)."""
        assert self._elementwise is not None  # apply calls it for elementwise ops only
        kinds = self._elementwise[2]
        zero = [0] * len(rows[0]) if rows else []
        unit_row = self.unit_row
        return [row if kinds[st] == 1 else zero if kinds[st] == 0 else unit_row(row, st, den)
                for row, st in zip(rows, states, strict=True)]

    def unit_row(self, row: list[int], st: int, den: int) -> list[int]:
        """An elementwise unit's output row in state ``st`` from its input row ``row`` (integers
        over ``den``): ``a row + c den e_last`` over ``den sa`` (``row`` itself when ``a = 1``
        and ``c = 0``; never modify it)."""
        assert self._elementwise is not None  # for elementwise ops only
        a, c = self._elementwise[0][st]
        if a == 1 and c == 0:
            return row
        r = [a * v for v in row]
        if c:
            r[-1] += c * den
        return r

    def slack(self, i: int, sg: int) -> list:
        """Row ``i`` as a slack row on the side ``sg`` (one list object per row and side)."""
        row = self.sw_rows[i]
        if sg > 0:
            return row
        neg = self._neg.get(i)
        if neg is None:
            neg = self._neg[i] = [-v for v in row]
        return neg

    def rows(self, state: tuple[int, ...]) -> list[tuple[int, int]] | None:
        """(switching index, sign) defining the state's cell, leaving out functions identically
        zero on the parent; None when the state is surely empty (a constant with the wrong sign)."""
        cl = self.rule.constraint_list(self.module, state, self.in_shape, self.out_shape)
        if not self.const:
            return list(cl)
        out = []
        const = self.const
        for i, sg in cl:
            c = const.get(i)
            if c is None:
                out.append((i, sg))
            elif c == 0 or sg * c > 0:
                continue
            else:
                return None
        return out

    def strictly_inside(self, rows: list[tuple[int, int]], w: tuple) -> bool:
        col = _cols([w], self.d)
        if self.PG is not None and not all(v > 0 for v in (self.PG * col).entries()):
            return False
        vals = (self.SW * col).entries()
        return all(sg * vals[i] > 0 for i, sg in rows)

    def state_at(self, w: tuple) -> tuple[int, ...]:
        vals = (self.SW * _cols([w], self.d)).entries()
        return self.rule.state_tuple(self.module, [(v > 0) - (v < 0) for v in vals], self.in_shape)



# --------------------------------------------------------------------------- exact arrangement

class _Arrangement:
    """All children of one bounded parent at once: the cells of the op's switching hyperplanes
    inside the parent, built exactly by successive cuts (each hyperplane cuts every cell it
    crosses), for ops whose states are the sign vectors of their switching functions.

    Cells are lists of vertex ids into one vertex table per parent, so a vertex made on an edge
    is made once for every cell sharing the edge. Every sign is exact (the float filter decides
    where its rigorous bound does; exact ``fmpq`` otherwise); new vertices are exact rationals.
    In 2-D a cell is a counter-clockwise ring and a cut splits the ring; in other dimensions a
    cell carries the set of its constraints and a cut joins the vertices on either side that
    span an edge, by the combinatorial test: ``u, w`` span an edge iff no third vertex is tight
    on every constraint tight at both (Fukuda and Prodon, 1996). The cuts partition the parent,
    so the children are complete by construction."""

    def __init__(self, ctx: _OpContext, parent: Cell, d: int) -> None:
        self.ctx = ctx
        self.d = d
        self.S = ctx.S
        self.pts: list[tuple] = list(parent.vertices)
        # bits of constraints that can be tight: every row but the functions identically zero
        self.zmask = (1 << (self.S + len(ctx.parent_G))) - 1
        for i, z in enumerate(ctx.vanish):
            if z:
                self.zmask &= ~(1 << i)
        self.cap = max(64, 4 * len(self.pts))
        self.sg = np.empty((self.S + len(ctx.parent_G), self.cap), dtype=np.int8)
        self.fx = np.empty((self.cap, d), dtype=np.float64)  # float64 nearest to each vertex
        self.Z: list[int] = []
        self.nv = 0
        self.edge_point: dict[tuple[int, int, int], int] = {}
        self.known: list[int] = []  # per new point: bits of rows known to vanish there
        # the parent's facets vanish at their own vertices (by construction)
        known = [~self.zmask] * len(self.pts)
        for k, f in enumerate(parent.facets):
            for v in f.vertices:
                known[v] |= 1 << (self.S + k)
        Xf = None
        if parent.fvertices is not None and len(parent.fvertices) == len(self.pts):
            Xf = np.ones((d + 1, len(self.pts)), dtype=np.float64)
            Xf[:d] = parent.fvertices.T
        self._add_signs(self.pts, known, Xf)

    def _add_signs(self, pts: Sequence[tuple], known: list[int] | None = None,
                   Xf: np.ndarray | None = None) -> None:
        """Signs of every row at the new points; ``known``: bits of rows known to vanish there;
        ``Xf``: the points' nearest floats (see :func:`_float_points`), when already known."""
        k = len(pts)
        if not k:
            return
        zero = None
        if known:
            zero = np.zeros((self.sg.shape[0], k), dtype=bool)
            R = self.sg.shape[0]
            for c, bits in enumerate(known):
                bits &= (1 << R) - 1
                while bits:
                    low = bits & -bits
                    bits ^= low
                    zero[low.bit_length() - 1, c] = True
        if Xf is None:
            Xf = _float_points(pts, self.d)
        ctx = self.ctx
        block = _signs(ctx.all_rows, ctx.ALLf, ctx.ALLa, pts, self.d, Xf=Xf, zero=zero)
        if self.nv + k > self.cap:
            self.cap = max(2 * self.cap, self.nv + k)
            grown = np.empty((self.sg.shape[0], self.cap), dtype=np.int8)
            grown[:, :self.nv] = self.sg[:, :self.nv]
            self.sg = grown
            fgrown = np.empty((self.cap, self.d), dtype=np.float64)
            fgrown[:self.nv] = self.fx[:self.nv]
            self.fx = fgrown
        self.sg[:, self.nv:self.nv + k] = block
        self.fx[self.nv:self.nv + k] = Xf[:self.d].T
        zs = [0] * k
        rows, cols = np.nonzero(block == 0)
        for r, c in zip(rows.tolist(), cols.tolist(), strict=True):
            zs[c] |= 1 << r
        self.Z.extend(z & self.zmask for z in zs)
        self.nv += k

    def _point_on(self, p: int, q: int, i: int, new: list[tuple]) -> int:
        """The vertex where function ``i`` vanishes on the segment between vertices ``p`` and
        ``q``."""
        key = (p, q, i) if p < q else (q, p, i)
        k = self.edge_point.get(key)
        if k is None:
            row, d = self.ctx.sw_rows[i], self.d
            a, b = self.pts[key[0]], self.pts[key[1]]
            va, vb = _exact_value(row, a, d), _exact_value(row, b, d)
            t = va / (va - vb)
            x = tuple(ai + t * (bi - ai) for ai, bi in zip(a, b, strict=True))
            k = self.edge_point[key] = len(self.pts)
            self.pts.append(x)
            new.append(x)
            # exact zeros known without arithmetic: function i (by construction), every function
            # vanishing at both ends (so on the segment) and the functions identically zero
            self.known.append((self.Z[p] & self.Z[q]) | (1 << i) | ~self.zmask)
        return k

    def touched(self, parent: Cell) -> bool:
        """Does a switching function (not identically zero) vanish on a whole facet of the
        parent? (Exact: from the exact zero sets of the parent's vertices.)"""
        units = (1 << self.S) - 1
        for f in parent.facets:
            z = self.zmask & units
            for v in f.vertices:
                z &= self.Z[v]
            if z:
                return True
        return False

    def cells(self) -> list[tuple[list[int], int]]:
        """The final cells as (vertex ids, bits of the constraints that define them)."""
        S, d = self.S, self.d
        n0 = self.nv
        sub = self.sg[:S, :n0]
        cutting = np.nonzero((sub > 0).any(axis=1) & (sub < 0).any(axis=1))[0].tolist()
        cells = [(list(range(n0)), ((1 << len(self.ctx.parent_G)) - 1) << S)]
        for i in cutting:
            row = self.sg[i, :self.nv].tolist()
            new: list[tuple] = []
            out: list[tuple[list[int], int]] = []
            for vs, cm in cells:
                pos = neg = False
                for v in vs:
                    s = row[v]
                    if s > 0:
                        pos = True
                    elif s < 0:
                        neg = True
                if not (pos and neg):
                    out.append((vs, cm))
                    continue
                cm2 = cm | (1 << i)
                if d == 2:
                    plus, minus = self._split_ring(vs, row, i, new)
                else:
                    plus, minus = self._split_incidence(vs, cm, row, i, new)
                out.append((plus, cm2))
                out.append((minus, cm2))
            cells = out
            self._add_signs(new, self.known)
            self.known = []
        return cells

    def _split_ring(self, vs: list[int], row: list[int], i: int,
                    new: list[tuple]) -> tuple[list[int], list[int]]:
        plus: list[int] = []
        minus: list[int] = []
        n = len(vs)
        for k in range(n):
            p, q = vs[k], vs[(k + 1) % n]
            sp, sq = row[p], row[q]
            if sp >= 0:
                plus.append(p)
            if sp <= 0:
                minus.append(p)
            if sp * sq < 0:
                m = self._point_on(p, q, i, new)
                plus.append(m)
                minus.append(m)
        return plus, minus

    def _split_incidence(self, vs: list[int], cm: int, row: list[int], i: int,
                         new: list[tuple]) -> tuple[list[int], list[int]]:
        plus = [v for v in vs if row[v] >= 0]
        minus = [v for v in vs if row[v] <= 0]
        zc = [self.Z[v] & cm for v in vs]
        need = self.d - 1
        for a, u in enumerate(vs):
            if row[u] <= 0:
                continue
            for b, w in enumerate(vs):
                if row[w] >= 0:
                    continue
                t = zc[a] & zc[b]
                if t.bit_count() < need:
                    continue
                if any(z & t == t for k, z in enumerate(zc) if k != a and k != b):
                    continue  # a third vertex on every constraint tight at both: not an edge
                m = self._point_on(u, w, i, new)
                plus.append(m)
                minus.append(m)
        return plus, minus


# --------------------------------------------------------------------------- driver

@contextlib.contextmanager
def _torch_single_threaded() -> Any:
    """torch's intra-op parallelism off for the duration (restored as it was).

    The exact layer runs in worker processes that a process pool may have forked from a parent
    whose OpenMP thread pool was already running (the float trace ran there): the first parallel
    torch kernel in such a child waits for threads that do not exist, for ever (seen converting
    a 256 x 256 weight). With one thread torch never enters a parallel region; the exact layer
    uses torch only to read parameters, so nothing is lost."""
    was = torch.get_num_threads()
    if was != 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if was != 1:
            torch.set_num_threads(was)


@dataclass
class Leaf:
    """A certified activation region (a leaf of the layer tree), ready for the certificate."""

    states: tuple[tuple[int, ...], ...]
    witness: Row
    facets: list[tuple]  # (a, b, ids, vertex indices, ray indices) with a . t <= b, as Fractions
    vertices: list[Row]
    volume: Fraction | None
    output: list[list[Fraction]]  # rows [a_1..a_d, c] of the output map in t coordinates
    repaired: bool
    rays: list[Row] = field(default_factory=list)
    lines: list[Row] = field(default_factory=list)


class _PackedLeaves:
    """Leaves as they travel back from a worker: every Fraction as two ints in one table and
    every tuple of Fractions as indices into it, each once per object (siblings share vertex
    tuples and facet rows, and keep sharing them once unpacked). Pickle writes Python ints in
    binary but a Fraction through its decimal string, parsed again on arrival: for the leaves of
    2-32-32-32 that took as long as certifying them, now a few percent of it."""

    def __init__(self, leaves: list[Leaf]) -> None:
        nums: list[int] = []
        dens: list[int] = []
        frac: dict[int, int] = {}
        tups: list[list[int]] = []
        tup_ix: dict[int, int] = {}
        keep: list = []  # the objects behind the ids, alive until packing ends

        def f(x: Fraction) -> int:
            k = frac.get(id(x))
            if k is None:
                k = frac[id(x)] = len(nums)
                nums.append(x.numerator)
                dens.append(x.denominator)
                keep.append(x)
            return k

        def t(xs: tuple) -> int:
            k = tup_ix.get(id(xs))
            if k is None:
                k = tup_ix[id(xs)] = len(tups)
                tups.append([f(x) for x in xs])
                keep.append(xs)
            return k

        self.leaves = [(lf.states, t(lf.witness),
                        [(t(a), f(b), ids, fv, fr) for a, b, ids, fv, fr in lf.facets],
                        [t(v) for v in lf.vertices], -1 if lf.volume is None else f(lf.volume),
                        [t(tuple(r)) for r in lf.output], lf.repaired,
                        [t(r) for r in lf.rays], [t(r) for r in lf.lines]) for lf in leaves]
        self.nums, self.dens, self.tups = nums, dens, tups

    def unpack(self) -> list[Leaf]:
        F = list(map(coprime_fraction, self.nums, self.dens))
        T = [tuple([F[i] for i in ix]) for ix in self.tups]
        return [Leaf(states, T[w], [(T[a], F[b], ids, fv, fr) for a, b, ids, fv, fr in facets],
                     [T[v] for v in verts], None if vol < 0 else F[vol], [list(T[r]) for r in out],
                     repaired, [T[r] for r in rays], [T[r] for r in lines])
                for states, w, facets, verts, vol, out, repaired, rays, lines in self.leaves]


def _ordered(verts: list[tuple], facets: list[Facet], d: int) -> tuple[list[tuple], list[Facet]]:
    """Vertices in order (interval ends; counter-clockwise polygon) with facets as their sides."""
    if d == 1:
        order = sorted(range(len(verts)), key=lambda k: verts[k][0])
    else:
        nxt: dict[int, list[int]] = {}
        for f in facets:
            u, v = f.vertices
            nxt.setdefault(u, []).append(v)
            nxt.setdefault(v, []).append(u)
        order, prev, cur = [facets[0].vertices[0]], None, facets[0].vertices[0]
        while True:
            a, b = nxt[cur]
            step = b if a == prev else a
            if step == order[0]:
                break
            order.append(step)
            prev, cur = cur, step
        area2 = sum((verts[order[k]][0] * verts[order[(k + 1) % len(order)]][1]
                     - verts[order[(k + 1) % len(order)]][0] * verts[order[k]][1]
                     for k in range(len(order))), fmpq(0))
        if area2 < 0:
            order.reverse()
    pos = {k: n for n, k in enumerate(order)}
    new_facets = [Facet(f.slack, f.ids, tuple(pos[k] for k in f.vertices), scale=f.scale)
                  for f in facets]
    if d == 2:  # facet k joins vertex k and k+1
        by_side = {frozenset(f.vertices): f for f in new_facets}
        new_facets = [by_side[frozenset((k, (k + 1) % len(order)))] for k in range(len(order))]
        new_facets = [Facet(f.slack, f.ids, (k, (k + 1) % len(order)), scale=f.scale)
                      for k, f in enumerate(new_facets)]
    else:
        new_facets = sorted(new_facets, key=lambda f: f.vertices)
    return [verts[k] for k in order], new_facets


def _recession(vrep: _polyhedra.VRep) -> tuple[list[tuple], list[tuple]]:
    """The rays and lines of ``vrep`` as every engine writes them (fmpq): the lines as
    :func:`~exactrelu._geometry.lineality_basis`, the rays in
    :func:`~exactrelu._geometry.ray_normal_form` (cddlib's are some representatives)."""
    lines = lineality_basis(vrep.lines)
    return ([tuple(map(_q, ray_normal_form(r, lines))) for r in vrep.rays],
            [tuple(map(_q, ln)) for ln in lines])


def root_cell(prog: Program, domain: Domain) -> Cell:
    A, b = domain.halfspaces()
    d = domain.dim
    vrep = _polyhedra.h_to_v([list(r) for r in A], list(b), dim=d)
    fs = _polyhedra.facets([list(r) for r in A], list(b), vrep)
    verts = [tuple(_q(c) for c in v) for v in vrep.vertices]
    rays, lines = _recession(vrep)
    facets = []
    for g in fs.groups:
        slack = [-_q(v) for v in A[g[0]]] + [_q(b[g[0]])]
        facets.append(Facet(slack, tuple(g),
                            tuple(k for k, p in enumerate(verts) if _value(slack, p, d) == 0),
                            tuple(k for k, r in enumerate(rays)
                                  if _direction(slack, r, d) == 0)))
    if d <= 2 and domain.is_bounded:
        verts, facets = _ordered(verts, facets, d)
    vol = _volume(verts, facets, d) if domain.is_bounded else None
    root = Cell(0, (), tuple(_q(v) for v in domain.interior_point()), facets, verts, vol,
                rays=rays, lines=lines)
    root.live = root_live(prog, domain)
    return root


def root_live(prog: Program, domain: Domain) -> dict:
    """The exact maps of the nodes before the first piecewise op on ``domain`` (in its
    coordinates), by node."""
    M, c = domain.input_map()
    m0 = _exact.input_map(M, c, prog.input_shape)
    hi = prog.piecewise[0] if prog.piecewise else len(prog.nodes)
    return _run_nodes(prog, {INPUT: m0}, 0, hi, None)


def _seed(cert: _Certifier, parent: Cell) -> Candidate:
    """A candidate child at a generic point near the parent's witness (no float trace needed)."""
    j = parent.level
    d = cert.d
    SW = _switching_map(cert.prog, parent.live_values, j).mat
    rows = SW.tolist()
    w = parent.witness
    rng = random.Random(1)
    for _ in range(200):
        vals = (SW * _cols([w], d)).entries()
        if all(v != 0 or all(x == 0 for x in row[:d]) for v, row in zip(vals, rows, strict=True)):
            nd = cert.prog.nodes[cert.prog.piecewise[j]]
            return Candidate(cert._state_at(nd.rule, nd.module, SW, w, nd.in_shapes[0]), w, None)
        # a random convex combination of the vertices, pulled slightly towards the witness
        raw = [rng.randint(1, 10**6) for _ in parent.vertices]
        tot = sum(raw)
        v = tuple(sum((fmpq(r, tot) * p[i] for r, p in zip(raw, parent.vertices, strict=True)),
                      fmpq(0))
                  for i in range(d)) if parent.vertices else w
        # unbounded parents: also a random positive multiple of each ray, any multiple of each line
        for r in parent.rays:
            mu = fmpq(rng.randint(1, 1000))
            v = tuple(vi + mu * ri for vi, ri in zip(v, r, strict=True))
        for ln in parent.lines:
            mu = fmpq(rng.randint(-1000, 1000))
            v = tuple(vi + mu * li for vi, li in zip(v, ln, strict=True))
        eps = fmpq(1, rng.randint(10, 10**3))
        w = tuple(wi + eps * (vi - wi) for wi, vi in zip(parent.witness, v, strict=True))
    raise CertificationError("could not find a generic seed point")


def region_limit(found: int, limit: int) -> RegionLimitError:
    """The error for more than ``limit`` regions, ``found`` (a lower bound) known to exist."""
    return RegionLimitError(f"more than max_regions={limit:,} regions: at least {found:,} exist "
                            "(certification stopped there)", found)


def _subtree(prog: Program, domain: Domain, offsets: list[int], cells: list[Cell],
             tree: CandidateTree | None, bar: Any = None, pack: bool = False,
             limit: int | None = None) -> tuple[Any, Stats]:
    """Certify everything below ``cells``; runs in a worker process. Depth first, so that only
    the exact maps along the current path (and its siblings) are alive at a time, and every leaf
    is turned into a compact :class:`Leaf` at once. ``bar`` advances by one per parent cell.
    More than ``limit`` regions known to exist (leaves, and cells waiting: each holds one at
    least) raise :class:`RegionLimitError` at once."""
    cert = _Certifier(prog, domain, offsets)
    cert.limit = limit
    L = prog.num_piecewise
    leaves: list[Leaf] = []
    conv = _Fractions()
    stack = list(reversed(cells))
    with paused_gc(), _torch_single_threaded():
        while stack:
            cell = stack.pop()
            if cell.level >= L:
                leaves.append(_leaf(cell, conv))
                continue
            cands = tree.candidates(cell) if tree is not None else []
            kids = cert.children(cell, cands, tree is not None)
            cell.live = None
            cert.stats.cells += len(kids)
            stack.extend(reversed(kids))
            if limit is not None and len(leaves) + len(stack) > limit:
                raise region_limit(len(leaves) + len(stack), limit)
            if bar is not None:
                bar.update(1)
    return (_PackedLeaves(leaves) if pack else leaves), cert.stats


class _Fractions:
    """Conversions to ``Fraction`` for leaves, once per object: cells of one parent share their
    vertex tuples and constraint rows, so each is converted once. Keyed by ``id`` with the object
    kept alive beside its conversion (an id is never reused while the object lives)."""

    def __init__(self) -> None:
        self.points: dict[int, tuple] = {}
        self.rows: dict[tuple[int, int], tuple] = {}

    LIMIT = 4096  # siblings share objects; older entries are only memory

    @staticmethod
    def number(x: Any, scale: int = 1) -> Fraction:
        """``x / scale`` as a Fraction (``x``: fmpq, fmpz or int, ``scale`` a positive int). flint
        reduces the quotient and an fmpq is canonical (coprime, positive denominator), so the
        Fraction is built from its numerator and denominator without a second gcd; an integer
        over ``scale`` is reduced by one gcd of Python ints."""
        if type(x) is int or type(x) is fmpz:
            n, scale = int(x), int(scale)
            g = math.gcd(n, scale)
            return coprime_fraction(n // g, scale // g)
        if scale != 1:
            x = x / scale
        return coprime_fraction(int(x.p), int(x.q))

    @staticmethod
    def over(entries: list, den: int, ncols: int) -> list[list[Fraction]]:
        """Rows of ``ncols`` Fractions ``v / den`` for the fmpz ``entries`` (``den > 0``)."""
        gcd = math.gcd
        vals = []
        for v in entries:
            n = int(v)
            g = gcd(n, den)
            vals.append(coprime_fraction(n // g, den // g))
        return [vals[i:i + ncols] for i in range(0, len(vals), ncols)]

    @staticmethod
    def numbers(xs: Sequence) -> tuple[Fraction, ...]:
        """:meth:`number` of every entry (fmpq entries, the common case, inline)."""
        number = _Fractions.number
        return tuple([coprime_fraction(int(x.p), int(x.q)) if type(x) is fmpq else number(x)
                      for x in xs])

    def point(self, p: tuple) -> tuple:
        if len(self.points) > self.LIMIT:
            self.points.clear()
        got = self.points.get(id(p))
        if got is None or got[0] is not p:
            got = self.points[id(p)] = (p, self.numbers(p))
        return got[1]

    def facet(self, f: Facet) -> tuple:
        key = (id(f.slack), f.scale)
        if len(self.rows) > self.LIMIT:
            self.rows.clear()
        got = self.rows.get(key)
        if got is None or got[0] is not f.slack:
            got = self.rows[key] = (f.slack, f.a, f.b)
        return got[1], got[2]


def _leaf(c: Cell, conv: _Fractions | None = None) -> Leaf:
    conv = conv or _Fractions()
    number = _Fractions.number
    out = c.live["output"] if c.live else None
    if out is None:
        rows = []
    elif isinstance(out, _IMap):
        rows = _Fractions.over([v for r in out.rows for v in r], int(out.den), len(out.rows[0]))
    else:
        rows = [[number(v) for v in row] for row in out.mat.tolist()]
    # a cell with lines has no vertices: cddlib's points are then not vertices, leave them out
    pointed = not c.lines
    facet = conv.facet
    numbers = _Fractions.numbers
    return Leaf(c.states, numbers(c.witness),
                [(*facet(f), f.ids, f.vertices if pointed else (), f.rays) for f in c.facets],
                [conv.point(p) for p in c.vertices] if pointed else [],
                None if c.volume is None else number(c.volume), rows, c.repaired,
                [numbers(r) for r in c.rays], [numbers(r) for r in c.lines])


class CandidateTree:
    """The float trace's proposals as a prefix tree: for every prefix of states (the ops before
    ``j``), the states of op ``j`` seen under it, each with a float interior point and the
    constraint ids the trace saw bounding its regions (their union).

    States are kept as bytes (one machine integer per unit, the smallest width that holds the
    op's states), which keeps the tree of a 100,000-region trace to about a tenth of the memory
    of tuples of Python ints; :meth:`candidates` turns them back into tuples."""

    def __init__(self, nodes: dict, codes: list[str]) -> None:
        self.nodes = nodes  # prefix key (tuple of bytes) -> {state bytes: (float point, id set)}
        self.codes = codes  # array typecode of each op's states

    def __len__(self) -> int:
        return len(self.nodes)

    def key(self, states: Sequence[tuple[int, ...]]) -> tuple[bytes, ...] | None:
        """The key of a prefix of states; None for a state out of the range of every state the
        trace saw of its op (so no proposal lies below it)."""
        codes = self.codes
        try:
            return tuple([array(codes[j], st).tobytes() for j, st in enumerate(states)])
        except OverflowError:
            return None

    def candidates(self, parent: Cell) -> list[Candidate]:
        key = self.key(parent.states)
        node = self.nodes.get(key) if key is not None else None
        if not node:
            return []
        code = self.codes[parent.level]
        return [Candidate(tuple(array(code, st)), w, ids) for st, (w, ids) in node.items()]

    def split(self, groups: list[list[Cell]]) -> list[CandidateTree]:
        """One tree per group of cells of one level: the part below that group's cells."""
        level = groups[0][0].level
        owner = {self.key(c.states): k for k, g in enumerate(groups) for c in g}
        parts: list[dict] = [{} for _ in groups]
        for key, node in self.nodes.items():
            k = owner.get(key[:level]) if len(key) >= level else None
            if k is not None:
                parts[k][key] = node
        return [CandidateTree(part, self.codes) for part in parts]


def _state_code(P: np.ndarray) -> str:
    """Typecode of the narrowest signed integer that holds every entry of ``P``."""
    lo, hi = (int(P.min()), int(P.max())) if P.size else (0, 0)
    for code, bits in (("b", 8), ("h", 16), ("i", 32)):
        if -(1 << (bits - 1)) <= lo and hi < (1 << (bits - 1)):
            return code
    return "q"


def candidate_tree(trace: Any) -> CandidateTree:
    """The :class:`CandidateTree` of a float trace, built op by op with numpy: regions are grouped
    by (prefix group, state) with ``np.unique``; each child takes the interior point of its first
    region and the union of its regions' bounding ids."""
    R = trace.num_regions
    interior = trace.interior.detach().cpu().to(torch.float64).numpy()
    offs = trace.bounding_offsets.cpu().numpy()
    ids = trace.bounding_ids.cpu().numpy().astype(np.int64)
    id_region = np.repeat(np.arange(R), np.diff(offs))
    span = int(ids.max()) + 1 if ids.size else 1
    nodes: dict = {}
    codes: list[str] = []
    group = np.zeros(R, dtype=np.int64)  # prefix group of every region
    keys: list[tuple] = [()]  # prefix key of every group
    for p in trace.patterns:
        P = p.reshape(R, -1).cpu().numpy()
        code = _state_code(P)
        codes.append(code)
        P = np.ascontiguousarray(P.astype(np.dtype(code)))
        rows = P.view(np.dtype((np.void, max(1, P.shape[1]) * P.itemsize))).reshape(R) \
            if P.shape[1] else np.zeros(R, dtype=np.dtype((np.void, 1)))
        _, sid = np.unique(rows, return_inverse=True)
        sid = sid.reshape(R).astype(np.int64)
        pair = group * (int(sid.max()) + 1 if R else 1) + sid
        _, first, inv = np.unique(pair, return_index=True, return_inverse=True)
        inv = inv.reshape(R)
        # union of bounding ids per child: unique (child, id) pairs, split by child
        both = np.unique(inv[id_region] * span + ids)
        child, cid = np.divmod(both, span)
        cuts = np.searchsorted(child, np.arange(len(first) + 1))
        cid_list = cid.tolist()
        states = [P[r].tobytes() for r in first.tolist()] if P.shape[1] else [b""] * len(first)
        new_keys = []
        for k, r in enumerate(first.tolist()):
            pre = keys[group[r]]
            nodes.setdefault(pre, {})[states[k]] = (tuple(interior[r].tolist()),
                                                    set(cid_list[cuts[k]:cuts[k + 1]]))
            new_keys.append((*pre, states[k]))
        keys, group = new_keys, inv
    return CandidateTree(nodes, codes)


def _contiguous_chunks(cells: list[Cell], tree: CandidateTree | None, n: int) -> list[list[Cell]]:
    """``cells`` cut into at most ``n`` non-empty runs, in order, of about equal weight: a cell
    weighs one plus the number of the trace's proposal nodes below it (its subtree's parents)."""
    n = max(1, min(n, len(cells)))
    weights = [1] * len(cells)
    if tree is not None and cells:
        level = cells[0].level
        at = {tree.key(c.states): k for k, c in enumerate(cells)}
        for key in tree.nodes:
            k = at.get(key[:level]) if len(key) >= level else None
            if k is not None:
                weights[k] += 1
    total = sum(weights)
    chunks: list[list[Cell]] = []
    acc = 0
    for cell, w in zip(cells, weights, strict=True):
        # a new run once the runs so far hold their share of the weight
        if not chunks or (len(chunks) < n and acc * n >= len(chunks) * total):
            chunks.append([])
        chunks[-1].append(cell)
        acc += w
    return chunks


def run(prog: Program, domain: Domain, tree: CandidateTree | None = None,
        executor: cf.Executor | None = None, workers: int | None = None,
        progress: bool = False, sink: Any = None,
        max_regions: int | None = None) -> tuple[list[Leaf], Stats, Cell]:
    """Certify all regions from the float trace's proposals ``tree`` (:func:`candidate_tree`;
    None: from exact seeds only; with an executor the tree is consumed, emptied once its parts
    are shipped); returns the leaves, statistics and the root cell. With ``sink``, the leaves go
    to ``sink(batch)`` instead, in order, a batch at a time (one per work chunk with an
    executor), and the list returned is empty.

    The leaves come in the canonical order, whatever the executor and the float trace: depth
    first through the layer tree, each parent's children ordered by the signs of their op's
    switching functions inside them, compared in the functions' order (their constraint ids)
    with positive before negative, for ops whose cells are sign vectors (ReLU, LeakyReLU,
    Hardtanh); by their state tuples for other ops (MaxPool, rules without ``sign_cells``).
    On a bounded parent the exact arrangement makes its cells in that order (each cut puts the
    positive part before the negative one; a cell no function crosses keeps its place), and the
    compiled engine makes them the same way; :meth:`_Certifier.children` sorts the others.
    With an executor the first levels are expanded here and contiguous runs of the frontier
    certified as chunks whose leaves are taken in chunk order: the same sequence.

    With ``progress``, a progress bar (on a terminal only) counts parent cells, or work chunks
    with an executor. More than ``max_regions`` regions known to exist raise
    :class:`RegionLimitError` as soon as they are (each work chunk stops at that many; the
    chunks' leaves are counted as they come back)."""
    keep: list[Leaf] = []
    if sink is None:
        sink = keep.extend
    t0 = time.perf_counter()
    offsets = constraint_offsets(prog, domain)
    root = root_cell(prog, domain)
    if prog.num_piecewise == 0:
        leaves, stats = _subtree(prog, domain, offsets, [root], None, limit=max_regions)
        sink(leaves)
        return keep, stats, root
    t1 = time.perf_counter()
    # Expand the first levels in this process until there is enough work to split. A level's
    # cells are its parents' children in order, so the leaves below the frontier, frontier cell
    # by frontier cell, are the leaves in the canonical order (see the docstring).
    want = 4 * (workers or os.cpu_count() or 1) if executor is not None else 0
    cert = _Certifier(prog, domain, offsets)
    cert.limit = max_regions
    frontier = [root]
    while executor is not None and len(frontier) < want \
            and frontier[0].level < prog.num_piecewise - 1:
        nxt = []
        for p in frontier:
            cands = tree.candidates(p) if tree is not None else []
            kids = cert.children(p, cands, tree is not None)
            cert.stats.cells += len(kids)
            p.live = None
            nxt.extend(kids)
            if max_regions is not None and len(nxt) > max_regions:
                raise region_limit(len(nxt), max_regions)
        frontier = nxt
    stats = cert.stats
    if executor is None:
        with progress_bar(len(tree) if tree else 0, "certify (parent cells)", progress) as bar:
            leaves, s = _subtree(prog, domain, offsets, frontier, tree, bar, limit=max_regions)
        stats.merge(s)
        sink(leaves)
        del leaves
    else:
        # contiguous runs of the frontier, so that their leaves, taken chunk by chunk, come in
        # the canonical order; of about equal work (the trace's proposals below each cell)
        chunks = _contiguous_chunks(frontier, tree, min(len(frontier), want))
        # ship each chunk only its part of the candidate tree (grouped by the frontier's prefixes)
        subs = tree.split(chunks) if tree is not None else [None] * len(chunks)
        if tree is not None:
            tree.nodes = {}  # consumed: the caller's reference must not keep the whole tree alive
        futures: list[cf.Future[tuple[Any, Stats]] | None] = [
            executor.submit(_subtree, prog, domain, offsets, ch, sub, None, True, max_regions)
            for ch, sub in zip(chunks, subs, strict=True)]
        # the work items hold what they ship; here the candidate tree is only memory from now on
        del tree, subs, chunks, frontier
        found = 0
        with progress_bar(len(futures), "certify (chunks)", progress) as bar:
            try:
                for k in range(len(futures)):
                    fut = futures[k]
                    assert fut is not None  # each is taken once
                    futures[k] = None
                    lv, s = fut.result()
                    del fut  # its result is only memory once unpacked
                    found += len(lv.leaves)
                    if max_regions is not None and found > max_regions:
                        raise region_limit(found, max_regions)
                    sink(lv.unpack())
                    del lv
                    stats.merge(s)
                    bar.update(1)
            except BaseException:
                for f in futures:
                    if f is not None:
                        f.cancel()
                raise
    stats.seconds["exact"] = time.perf_counter() - t1
    stats.seconds["setup"] = t1 - t0
    return keep, stats, root
