"""Independent checker of certificates.

It imports none of the tracer or certifier code: from the network's exact parameters (through the
layer rules) it recomputes, in rational arithmetic, everything a certificate claims, and stops at
the first item that does not hold with a :class:`~exactrelu.errors.CertificateError` naming it.

What is checked:
- the network digest (architecture and exact parameters) and the domain;
- every region: its witness lies in the domain and strictly inside every constraint of its pattern
  (so the region is a non-empty open cell with that pattern), the state at the witness equals the
  pattern (units identically zero there take their tie state), patterns are distinct, and the
  output map equals the exact output map of the pattern;
- every vertex of a region satisfies all its constraints and is tight on d linearly independent
  ones (so it is a vertex), every facet row is one of its constraints and is tight at its vertices;
- completeness (no region missing), two ways:
  - bounded domains (of dimension up to ``_VOLUME_MAX_DIM``): the exact volumes of the regions'
    hulls sum to the domain's volume. Regions with distinct patterns are disjoint open cells and
    each certified vertex is verified to be a vertex of its region's closure ``P``; the volume
    taken for a region is a lower bound of ``vol(P)``, in any dimension, even when its vertex
    list is incomplete: 1-D the span of its vertices, 2-D the area of their convex hull, d >= 3
    a pulling triangulation of their hull over the faces cut out by the region's constraints,
    found by exact tightness (:func:`_hull_lower_bound`). The lower bounds of disjoint cells of
    the domain summing to the domain's volume leave no room for a missing region (an open cell,
    of positive volume). A missing vertex makes its region's bound strict, so it is caught too.
  - unbounded domains (and any dimension above ``_VOLUME_MAX_DIM``): closure under facet
    crossing on the layer tree of the patterns (see :func:`_closure`). For every cell of a
    certified pattern prefix and every switching function of its last op whose hyperplane might
    bound it, one exact LP (cddlib's GMP LP, criss-cross rule) decides whether the hyperplane
    carries a facet of the cell, with a point in the facet's relative interior; the state just
    across it, computed exactly, must be certified. Closed sets of cells in a convex parent cover
    it, so none is missing.
- unbounded regions: every ray is a recession direction and every line lies in every constraint.
- adjacency: both regions have a facet on the stated hyperplane, on opposite sides; the pieces
  agree with the adjacency and the exact output maps; the counts agree with the lists.

How it is fast without trusting anything but exact arithmetic (and cddlib's exact LP):
- the exact maps are composed once per pattern prefix (regions share the states of their first
  ops), by the layer rules, through the program's own node loop (:meth:`Program.run_nodes`);
- signs of constraints at witnesses and vertices come from one float64 matrix product with a
  rigorous error bound (the filter of :mod:`exactrelu._geometry`); every sign the bound does not
  decide (in particular every zero: tightness) is recomputed exactly in ``fmpq``;
- 2-D areas: the vertices are ordered by float angle, the order is verified exactly (strict left
  turns, one turn in all) and the shoelace sum is exact; when the verification fails the exact
  angle sort of :func:`~exactrelu._geometry.polygon_area` is used instead.
"""

from __future__ import annotations

import math
import random
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from ._deps import cdd, cdd_gmp, flint
from ._exact import ExactMap, input_map, to_fraction
from ._geometry import float_signs, hull_volume, nearest_floats, polygon_area
from .capture import Node, Program, capture
from .certificate import Certificate, canonical_hyperplane
from .errors import CertificateError

__all__ = ["check"]

fmpq = flint.fmpq
_INPUT = -1
#: bounded domains up to this dimension are proven complete by exact volumes, all others by
#: closure under facet crossing (:func:`_closure`); tests lower it to run the closure path
#: where the volume path checks the same certificates independently. The volume argument holds
#: in every dimension; the bound is where it was measured to be the cheaper of the two (mlp nets
#: of benchmarks/nets.py on [-1, 1]^d, volumes vs closure: 4-10-10 6 s vs 44 s, 5-8-8 10 s vs
#: 32 s, 6-8-8 297 s vs 163 s: pulling triangulations grow fast with d).
_VOLUME_MAX_DIM = 5


def _fail(msg: str) -> None:
    raise CertificateError(msg)


def _rank(rows: list[Sequence[Fraction]]) -> int:
    if not rows:
        return 0
    d = len(rows[0])
    m = flint.fmpq_mat(len(rows), d, [flint.fmpq(v.numerator, v.denominator) for r in rows for v in r])
    return m.rank()


def _fq(x: Fraction | int) -> fmpq:
    return fmpq(x.numerator, x.denominator)


def _near(q: fmpq) -> float:
    """The nearest float64 to ``q`` (Python's int division is correctly rounded); ±inf on overflow."""
    try:
        return int(q.p) / int(q.q)
    except OverflowError:
        return float("inf") if q > 0 else float("-inf")


def _sign(v: fmpq) -> int:
    return (v > 0) - (v < 0)


def _signs(F: np.ndarray, absF: np.ndarray, rows: list[list[fmpq]], Xh: np.ndarray,
           pts: list[Sequence[fmpq]]) -> np.ndarray:
    """Exact signs (int8, (m, k)) of ``rows[i] . (pts[j], 1)``. ``F`` holds the nearest floats of
    ``rows`` (m, d + 1) and ``absF`` their absolute values, ``Xh`` those of ``pts`` as columns
    with a trailing row of ones (d + 1, k). The float product decides every entry whose value
    exceeds the rigorous error bound of :func:`~exactrelu._geometry.float_signs`; the rest (all
    zeros among them) are evaluated exactly."""
    out, decided = float_signs(F, absF, Xh)
    n = F.shape[1] - 1
    ii, jj = np.nonzero(~decided)
    for i, j in zip(ii.tolist(), jj.tolist()):
        row = rows[i]
        p = pts[j]
        v = row[n]
        for a, x in zip(row, p):
            v += a * x
        out[i, j] = _sign(v)
    return out


def _canon(row: Sequence[fmpq]) -> tuple:
    """``row`` divided by the absolute value of its first non-zero entry: two rows are positive
    multiples of each other iff their keys are equal (a zero row is its own key)."""
    for v in row:
        if v != 0:
            c = v if v > 0 else -v
            return tuple(x / c for x in row)
    return tuple(row)


def _neg(key: tuple) -> tuple:
    return tuple(-x for x in key)


class _Level:
    """Exact data for a pattern prefix (the states of piecewise ops ``< j``): the live values
    before piecewise op ``j`` and the exact rows ``[a | c]`` of its switching functions."""

    __slots__ = ("values", "rows", "mat", "F", "absF", "zero", "_keys")

    def __init__(self, values: dict[int, Any], sw: ExactMap | None) -> None:
        self.values = values
        if sw is None:
            return
        self.mat = sw.mat
        self.rows = sw.mat.tolist()
        self.F = np.array([_near(v) for v in sw.mat.entries()], dtype=np.float64).reshape(
            len(self.rows), sw.mat.ncols())
        self.absF = np.abs(self.F)
        # a zero row has zero floats; rows of zero floats are confirmed exactly (underflow)
        self.zero = ~self.F.any(axis=1)
        for i in np.nonzero(self.zero)[0].tolist():
            self.zero[i] = all(v == 0 for v in self.rows[i])
        self._keys: dict[int, tuple] = {}

    def key(self, i: int) -> tuple:
        """The canonical key of row ``i`` (see :func:`_canon`)."""
        k = self._keys.get(i)
        if k is None:
            k = self._keys[i] = _canon(self.rows[i])
        return k


def _forward(i: int, nd: Node, ins: list[Any]) -> Any:
    return nd.rule.exact_forward(nd.module, ins, nd.out_shape)


class _Runner:
    """The exact pass of :meth:`Program.exact_run`, through the same rules and the program's own
    node loop (:meth:`Program.run_nodes`), but memoized per pattern prefix: regions sharing the
    states of their first ops share that work."""

    def __init__(self, prog: Program, m0: ExactMap) -> None:
        self.prog = prog
        self.pw = list(prog.piecewise)
        values = prog.run_nodes({_INPUT: m0}, 0, self._stop(0), _forward)
        self.memo: dict[tuple, _Level] = {(): self._level(values, 0)}

    def _stop(self, j: int) -> int:
        """Index of piecewise node ``j`` (the end of the program after the last one)."""
        return self.pw[j] if j < len(self.pw) else len(self.prog.nodes)

    def _level(self, values: dict[int, Any], j: int) -> _Level:
        if j == len(self.pw):
            return _Level(values, None)
        nd = self.prog.nodes[self.pw[j]]
        return _Level(values, nd.rule.exact_switching(nd.module, values[nd.inputs[0]]))

    def _extend(self, lvl: _Level, j: int, state: torch.Tensor) -> dict[int, Any]:
        """The live values before piecewise op ``j + 1``, op ``j`` taking ``state``."""
        def step(i: int, nd: Node, ins: list[Any]) -> Any:
            if nd.piecewise:
                return nd.rule.exact_apply(nd.module, ins[0], state.reshape(nd.out_shape))
            return _forward(i, nd, ins)

        return self.prog.run_nodes(dict(lvl.values), self.pw[j], self._stop(j + 1), step)

    def level(self, key: tuple, j: int, states: list[torch.Tensor]) -> _Level:
        """Level ``j`` of a pattern whose state tuples are ``key`` (the first ``j`` are used)."""
        pre = key[:j]
        lvl = self.memo.get(pre)
        if lvl is None:
            parent = self.level(key, j - 1, states)
            lvl = self._level(self._extend(parent, j - 1, states[j - 1]), j)
            self.memo[pre] = lvl
        return lvl

    def output(self, key: tuple, states: list[torch.Tensor]) -> ExactMap:
        P = len(self.pw)
        if P == 0:
            values = self.memo[()].values
        else:
            values = self._extend(self.level(key, P - 1, states), P - 1, states[P - 1])
        return values[self.prog.output]


def _area_2d(ids: list[int], Vf: np.ndarray, vq: Any, pts: list) -> Fraction:
    """Exact area of the convex hull of the vertices ``ids`` (``pts`` their Fraction coordinates)."""
    n = len(ids)
    if n < 3:
        return Fraction(0)
    X = Vf[ids]
    if np.isfinite(X).all():
        c = X.mean(axis=0)
        order = np.argsort(np.arctan2(X[:, 1] - c[1], X[:, 0] - c[0]), kind="stable").tolist()
        P = [vq(ids[o]) for o in order]
        E = [(P[(i + 1) % n][0] - P[i][0], P[(i + 1) % n][1] - P[i][1]) for i in range(n)]
        half = [0 if e[1] > 0 or (e[1] == 0 and e[0] > 0) else 1 for e in E]
        turns = 0
        ok = True
        for i in range(n):
            e, g = E[i], E[(i + 1) % n]
            if not e[0] * g[1] - e[1] * g[0] > 0:
                ok = False
                break
            if half[i] == 0 and half[(i + 1) % n] == 1:
                turns += 1
        # strict left turns with the edge direction going round once: a convex polygon whose
        # vertices are exactly these points, counter-clockwise; the shoelace sum is its area.
        if ok and turns == 1:
            twice = fmpq(0)
            for i in range(n):
                p, q = P[i], P[(i + 1) % n]
                twice += p[0] * q[1] - q[0] * p[1]
            return to_fraction(twice) / 2
    return polygon_area(pts)


def _hull_lower_bound(vertices: list, vids: list[int], SG: np.ndarray | None,
                      colpos: dict[int, int]) -> Fraction:
    """Exact volume of the pulling triangulation of the hull ``Q`` of a region's certified
    vertices ``vids``, over the vertex sets of the region's constraints: a lower bound of the
    region's volume, equal to it when ``vids`` holds every vertex of the region.

    ``SG`` holds the exact signs of every constraint of the region (rows) at its vertices
    (columns ``colpos[k]``; every vertex already verified: all signs >= 0, tight rank d, so each
    is a vertex of the region's closure ``P`` and hence of ``Q``, which lies in ``P``). For a
    constraint ``g``, ``{k : g(v_k) = 0}`` is the vertex set of the face of ``Q`` exposed by the
    hyperplane ``g = 0`` (``g >= 0`` on ``P``, so on ``Q``). These sets are computed here, by
    exact tightness, never taken from the certificate's facet lists, which only name a subset of
    the vertices on a facet (subsets of a face are not faces, and a pulling triangulation over
    them can overcount). Duplicated or proportional constraints give the same set; constraints
    tight at no vertex or at all of them give none. With every set a face of ``Q``,
    :func:`~exactrelu._geometry.hull_volume` sums simplices with disjoint interiors inside
    ``Q``, so the result is at most ``vol(Q) <= vol(P)``. A facet of ``Q`` that is on no
    constraint (cut off by a missing vertex) is simply not pulled over; the bound is then strict,
    as it is whenever a vertex is missing (``Q`` then misses a neighbourhood of it in ``P``).
    When ``vids`` is complete, ``Q = P`` and every facet of ``P`` is on a constraint: equality."""
    ids = list(dict.fromkeys(vids))  # a point listed twice (under two ids) only loses simplices
    if SG is None or not ids:
        return Fraction(0)
    tight = np.packbits(SG[:, [colpos[k] for k in ids]] == 0, axis=1, bitorder="little")
    masks = {int.from_bytes(row.tobytes(), "little") for row in tight}
    return hull_volume([vertices[k] for k in ids], sorted(masks))


def _pairwise_sum(values: list[fmpq]) -> fmpq:
    """The exact sum of ``values``, added in pairs: a running sum of many regions' volumes, with
    their unrelated denominators, grows a denominator of tens of thousands of bits (measured on a
    10,000-region net: 8.6 s in Fraction, 0.65 s in pairs of fmpq)."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0] if values else fmpq(0)


def _facet_lp(rows: list[list[int]], d: int) -> tuple[Fraction, tuple[Fraction, ...]]:
    """``max s`` over ``(x, s)`` subject to ``r . (1, x, s) >= 0`` for every row ``r`` (cddlib's
    row format ``[b, -A]``) by cddlib's exact (GMP) LP with the criss-cross rule: the optimum and
    an optimal ``x``. The rule is finite; cddlib's default dual simplex, which
    :func:`exactrelu._polyhedra.lp_max` uses, was seen to cycle (hang or crash) on the
    degenerate facet LPs of duplicated units."""
    lp = cdd_gmp.linprog_from_array(rows + [[0] * (d + 1) + [1]], cdd.LPObjType.MAX)
    cdd_gmp.linprog_solve(lp, cdd.LPSolverType.CRISS_CROSS)
    if lp.status != cdd.LPStatusType.OPTIMAL:
        _fail(f"completeness: a facet LP ended with status {lp.status!r}, not optimal")
    return Fraction(lp.obj_value), tuple(Fraction(v) for v in lp.primal_solution[:d])


def _across(lvl: _Level, nd: Node, i: int, sg: int, x: list[fmpq], d: int,
            rng: random.Random) -> tuple[int, ...] | None:
    """The state of op ``nd`` just across the facet on ``h_i = 0`` of the cell where
    ``sg * h_i > 0``, at the point ``x`` of the facet's relative interior (every constraint of the
    cell not proportional to ``h_i`` is > 0 at ``x``). A switching function non-zero at ``x``
    keeps its sign; one proportional to ``h_i`` (``lam * h_i``) has the sign of ``-lam * sg``
    across; one identically zero is 0 (its tie state). Any other one vanishing at ``x`` is
    looked at in ``x + t w``, ``w`` a direction in the hyperplane with ``a_r . w != 0`` and
    ``t > 0`` small (that point is still in the facet's relative interior and every other sign is
    unchanged there): its sign across is the sign of ``a_r . w``. None if no such ``w`` is found."""
    vals = (lvl.mat * flint.fmpq_mat(d + 1, 1, x + [fmpq(1)])).entries()
    kh = lvl.key(i)
    nk = _neg(kh)
    signs: list[int] = []
    pending: list[int] = []
    for r, v in enumerate(vals):
        if v != 0:
            signs.append(_sign(v))
        elif lvl.zero[r]:
            signs.append(0)
        else:
            kr = lvl.key(r)
            signs.append(-sg if kr == kh else sg if kr == nk else 0)
            if kr != kh and kr != nk:
                pending.append(r)
    if pending:
        a = lvl.rows[i][:d]
        aa = sum((v * v for v in a), fmpq(0))
        for _ in range(100):
            v = [fmpq(rng.randint(-(2**20), 2**20)) for _ in range(d)]
            av = sum((ai * vi for ai, vi in zip(a, v)), fmpq(0))
            w = [aa * vi - av * ai for ai, vi in zip(a, v)]  # orthogonal to a
            dots = [sum((lvl.rows[r][m] * w[m] for m in range(d)), fmpq(0)) for r in pending]
            if all(dt != 0 for dt in dots):
                for r, dt in zip(pending, dots):
                    signs[r] = _sign(dt)
                break
        else:
            return None
    return nd.rule.state_tuple(nd.module, signs, nd.in_shapes[0])


def _closure(runner: _Runner, nodes: list[Node], dom_rows: list[list[fmpq]],
             seen: dict[tuple, tuple[int, list[torch.Tensor]]], cell_cons: Any,
             offsets: list[int], d: int) -> None:
    """Completeness by closure under facet crossing, on the layer tree of the patterns.

    A parent is a distinct prefix of the certified patterns (states of ops ``< j``; the root is
    the domain), its children the distinct states of op ``j`` under it; inside the parent the
    switching functions of op ``j`` are affine (``runner.level``). For every child C (the domain's
    rows and the sign constraints of ops ``<= j``, functions identically zero on their parent left
    out) and every constraint ``sg * h_i > 0`` of op ``j`` that is not constant and not a multiple
    of one of the parent's rows, one exact LP decides whether ``h_i = 0`` carries a facet of C:
    ``max s`` over ``h_i(x) = 0``, ``g(x) >= s`` for every other constraint ``g`` of C not
    proportional to ``h_i``, ``s <= 1``. With ``s > 0`` the optimum ``x`` lies in the relative
    interior of the facet and strictly inside the parent, so a neighbourhood of ``x`` just across
    lies in the parent with the state of :func:`_across`, which must be a certified child.

    Children are disjoint open convex cells (witnessed, with distinct states); a parent is convex,
    hence connected; the union of the closures of a set of children that is closed under crossing
    every facet interior to the parent is therefore the parent's closure (otherwise its boundary
    inside the parent would hold a facet with nothing across). By induction from the domain down
    the layer tree, the certified regions cover the domain up to a null set: none is missing."""
    rng = random.Random(0)
    cap = [1] + [0] * d + [-1]  # s <= 1

    def con(g: Sequence[fmpq]) -> tuple[tuple, list[int]]:
        # g(x) >= s as a row [c, a, -1] of the facet LP over (x, s), g scaled to integers (a
        # positive factor: the sign of the optimum and the optimal x are unchanged)
        den = math.lcm(*(int(v.q) for v in g))
        z = [int(v.p) * (den // int(v.q)) for v in g]
        return _canon(g), [z[d]] + z[:d] + [-1]

    keys = list(seen)
    parent_cons: dict[tuple, list] = {(): [con(g) for g in dom_rows]}
    for j, nd in enumerate(nodes):
        last = j + 1 == len(nodes)
        groups: dict[tuple, dict[tuple, tuple]] = {}
        for key in keys:
            groups.setdefault(key[:j], {}).setdefault(key[j], key)
        for pre, kids in groups.items():
            first = next(iter(kids.values()))
            lvl = runner.level(first, j, seen[first][1])
            pcons = parent_cons.pop(pre)
            pkeys = {c[0] for c in pcons}
            for st_key, rep in kids.items():
                idx, sgn = cell_cons(j, st_key, seen[rep][1][j])
                keep = ~lvl.zero[idx]
                own = []
                for i, sg in zip(idx[keep].tolist(), sgn[keep].tolist()):
                    h = lvl.rows[i]
                    own.append((i, sg, con(h if sg > 0 else [-v for v in h])))
                cons = pcons + [c for _, _, c in own]
                if not last:
                    parent_cons[pre + (st_key,)] = cons
                for i, sg, (kh, _) in own:
                    h = lvl.rows[i]
                    if all(v == 0 for v in h[:d]):
                        continue  # a non-zero constant on the parent: no hyperplane
                    nk = _neg(kh)
                    if kh in pkeys or nk in pkeys:
                        continue  # a facet there is on the parent's boundary: not crossed here
                    rows = [r for k, r in cons if k != kh and k != nk]
                    hr = con(h)[1][:-1] + [0]  # h(x) = 0 as two inequalities
                    rows += [hr, [-v for v in hr], cap]
                    value, xf = _facet_lp(rows, d)
                    if value <= 0:
                        continue  # h_i = 0 does not carry a facet of the child
                    x = [_fq(v) for v in xf]
                    across = _across(lvl, nd, i, sg, x, d, rng)
                    cell = (f"region {seen[rep][0]}" if last else
                            f"the cell of region {seen[rep][0]}'s first {j + 1} piecewise ops")
                    where = (f"completeness: {cell} has a facet on switching function {i} "
                             f"(constraint {offsets[j] + i}) of piecewise op {j} ({nd.name})")
                    if across is None:
                        _fail(f"{where}: no generic point found on it")
                    if across not in kids:
                        missing = [list(p) for p in pre] + [list(across)]
                        if last:
                            _fail(f"{where}; the region across it, pattern {missing}, is missing")
                        _fail(f"{where}; across it no region has a pattern beginning with {missing} "
                              f"(the states of the first {j + 1} of {len(nodes)} piecewise ops)")


def check(cert: Certificate | str, net: nn.Module | Program) -> Certificate:
    """Re-verify ``cert`` against ``net``; returns the certificate or raises CertificateError.

    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> import exactrelu
    >>> c = exactrelu.verify(net, [(-1, 1)], progress=False)
    >>> check(c, net).num_regions == c.num_regions
    True
    """
    if not isinstance(cert, Certificate):
        cert = Certificate.load(cert)
    prog = net if isinstance(net, Program) else capture(net, cert.input_shape)
    if prog.digest() != cert.digest:
        _fail("network digest: the certificate was made for a different network (architecture or parameters differ)")
    dom = cert.domain
    d = dom.dim
    A_dom, b_dom = dom.halfspaces()
    M, c = dom.input_map()
    m0 = input_map(M, c, prog.input_shape)
    offsets = [len(A_dom)]
    for j in range(prog.num_piecewise):
        offsets.append(offsets[-1] + prog.num_switching(j))
    if offsets != cert.constraint_offsets:
        _fail(f"constraint ids: the certificate's offsets {cert.constraint_offsets} do not match {offsets}")
    nodes = prog.piecewise_nodes()
    n_out = []
    for nd in nodes:
        n = 1
        for s in nd.out_shape:
            n *= s
        n_out.append(n)
    n_dom = len(A_dom)
    # domain rows as constraints b - a.t >= 0, in the same form as the switching rows
    dom_rows = [[_fq(-x) for x in a] + [_fq(b)] for a, b in zip(A_dom, b_dom)]
    dom_F = np.array([[_near(v) for v in row] for row in dom_rows], dtype=np.float64).reshape(n_dom, d + 1)
    dom_absF = np.abs(dom_F)
    dom_cids = np.arange(n_dom, dtype=np.int64)
    dom_sgn = np.ones(n_dom, dtype=np.int64)
    # vertices: nearest floats for all, exact fmpq on demand
    n_vert = len(cert.vertices)
    for k, v in enumerate(cert.vertices):
        if len(v) != d:
            _fail(f"vertex {k} has {len(v)} coordinates, the domain {d}")
    Vf = nearest_floats([list(v) for v in cert.vertices]) if n_vert else np.zeros((0, d))
    vq_cache: dict[int, tuple] = {}

    def vq(k: int) -> tuple:
        v = vq_cache.get(k)
        if v is None:
            v = vq_cache[k] = tuple(_fq(x) for x in cert.vertices[k])
        return v

    runner = _Runner(prog, m0)
    cc_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}

    def cell_cons(j: int, st_key: tuple, st: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """(indices, signs) of the switching functions of op ``j`` defining the cell of a state."""
        cc = cc_cache.get((j, st_key))
        if cc is None:
            nd = nodes[j]
            idx, sgn = nd.rule.cell_constraints(nd.module, st, nd.in_shapes[0])
            cc = cc_cache[(j, st_key)] = (idx.reshape(-1).numpy().astype(np.int64),
                                          sgn.reshape(-1).numpy().astype(np.int64))
        return cc

    seen: dict[tuple, tuple[int, list[torch.Tensor]]] = {}
    by_volume = dom.is_bounded and d <= _VOLUME_MAX_DIM
    volumes: list[fmpq] = []
    for r in cert.regions:
        where = f"region {r.index}"
        if len(r.pattern) != prog.num_piecewise:
            _fail(f"{where}: pattern has {len(r.pattern)} ops, the network has {prog.num_piecewise}")
        key = tuple(tuple(p) for p in r.pattern)
        if key in seen:
            _fail(f"{where}: pattern listed twice")
        states = []
        for p, nd, n in zip(r.pattern, nodes, n_out):
            if len(p) != n:
                _fail(f"{where}: pattern of {nd.name} has {len(p)} states, expected {n}")
            states.append(torch.tensor(p, dtype=torch.int64).reshape(nd.out_shape))
        seen[key] = (r.index, states)
        w = r.witness
        if len(w) != d:
            _fail(f"{where}: witness has {len(w)} coordinates, the domain {d}")
        # the witness and the (valid) vertices, exact and as nearest floats: one sign pass per op
        vids = list(r.vertices)
        n_ok = len(vids)
        for pos, k in enumerate(vids):
            if not 0 <= k < n_vert:
                n_ok = pos
                break
        ok_ids = vids[:n_ok]
        pts_q = [tuple(_fq(x) for x in w)] + [vq(k) for k in ok_ids]
        wf = nearest_floats([list(w)])
        X = np.concatenate([wf, Vf[ok_ids]], axis=0)
        Xh = np.concatenate([X.T, np.ones((1, X.shape[0]))], axis=0)
        S_dom = _signs(dom_F, dom_absF, dom_rows, Xh, pts_q)
        # constraints of the region (domain rows first, then every op's cell constraints in order):
        # blocks of (rows, floats, selected row indices, signs, constraint ids)
        blocks = [(dom_rows, S_dom, dom_cids, dom_sgn, dom_cids)]
        for j, (nd, st) in enumerate(zip(nodes, states)):
            lvl = runner.level(key, j, states)
            S_all = _signs(lvl.F, lvl.absF, lvl.rows, Xh, pts_q)
            sg_w = S_all[:, 0]
            at_w = nd.rule.state_from_signs(nd.module, torch.from_numpy(sg_w.astype(np.int64))[None],
                                            nd.in_shapes[0])[0]
            if not torch.equal(at_w.reshape(-1), st.reshape(-1)):
                _fail(f"{where}: the state of {nd.name} at the witness is not the region's pattern")
            idx, sgn = cell_cons(j, key[j], st)
            keep = ~lvl.zero[idx]  # identically zero: does not split (its tie state was checked above)
            bad = keep & (sgn * sg_w[idx] <= 0)
            if bad.any():
                i = int(idx[int(np.argmax(bad))])
                _fail(f"{where}: witness not strictly inside constraint {offsets[j] + i} of {nd.name}")
            sel = idx[keep]
            blocks.append((lvl.rows, S_all, sel, sgn[keep], offsets[j] + sel))
        sd = S_dom[:, 0]
        if (sd <= 0).any():
            _fail(f"{where}: witness outside the domain (row {int(np.argmax(sd <= 0))})")
        out = runner.output(key, states)
        rows_out = r.output
        same = (len(rows_out) == out.n and all(len(row) == out.k + 1 for row in rows_out))
        if same:
            try:
                same = flint.fmpq_mat(out.n, out.k + 1, [_fq(v) for row in rows_out for v in row]) == out.mat
            except (AttributeError, TypeError):
                same = [[to_fraction(v) for v in row] for row in out.mat.tolist()] == rows_out
        if not same:
            _fail(f"{where}: output map differs from the exact output map of its pattern")
        # unbounded regions: every ray is a recession direction, every line lies in every constraint
        for kind, dirs in (("ray", r.rays), ("line", r.lines)):
            for n_dir, v in enumerate(dirs):
                if len(v) != d or all(x == 0 for x in v):
                    _fail(f"{where}: {kind} {n_dir} is not a non-zero direction in dimension {d}")
                vdir = [_fq(x) for x in v]
                for rows, _, sel, sgn, cids in blocks:
                    for i, sg, cid in zip(sel.tolist(), sgn.tolist(), cids.tolist()):
                        dv = sg * sum((rows[i][m] * vdir[m] for m in range(d)), fmpq(0))
                        if dv < 0 or (kind == "line" and dv != 0):
                            _fail(f"{where}: {kind} {n_dir} leaves the region through constraint {cid}")
        # vertices: signs of every constraint at every vertex, then order-preserving diagnostics
        colpos: dict[int, int] = {}
        rowpos: dict[int, int] = {}
        if ok_ids:
            sign_blocks, cid_blocks, lin = [], [], []
            for rows, S_all, sel, sgn, cids in blocks:
                sign_blocks.append(S_all[sel, 1:] * sgn[:, None].astype(np.int8))
                cid_blocks.append(cids)
                lin.extend(rows[i][:-1] for i in sel.tolist())
            SG = np.concatenate(sign_blocks, axis=0)
            cids_all = np.concatenate(cid_blocks).tolist()
            for col, k in enumerate(ok_ids):
                colv = SG[:, col]
                neg = colv < 0
                if neg.any():
                    _fail(f"{where}: vertex {k} violates constraint {cids_all[int(np.argmax(neg))]}")
                tight = np.nonzero(colv == 0)[0].tolist()
                rk = flint.fmpq_mat(len(tight), d, [x for t in tight for x in lin[t]]).rank() if tight else 0
                if rk != d:
                    _fail(f"{where}: vertex {k} is not a vertex (tight constraints have rank {rk} < {d})")
                colpos.setdefault(k, col)
            rowpos = {cid: n for n, cid in enumerate(cids_all)}
        if n_ok < len(vids):
            _fail(f"{where}: vertex index {vids[n_ok]} out of range")
        # facets: each is one of the region's constraints, tight at its vertices
        if r.facets:
            cons_of: dict[int, tuple[list, int]] = {}
            for rows, _, sel, sgn, cids in blocks[1:]:
                for i, sg, cid in zip(sel.tolist(), sgn.tolist(), cids.tolist()):
                    cons_of[cid] = (rows[i], sg)

            def cons(cid: int) -> tuple | None:
                if 0 <= cid < n_dom:
                    return (tuple(A_dom[cid]), b_dom[cid])
                got = cons_of.get(cid)
                if got is None:
                    return None
                row, sg = got
                return (tuple(to_fraction(-sg * x) for x in row[:-1]), to_fraction(sg * row[-1]))

            for f in r.facets:
                match = None
                for cid in f.ids:
                    if cons(cid) == (f.a, f.b):
                        match = cid
                        break
                if match is None:
                    _fail(f"{where}: facet {f.ids} is not one of its constraints")
                for k in f.vertices:
                    if k in colpos and match in rowpos:
                        on = SG[rowpos[match], colpos[k]] == 0
                    else:
                        if not 0 <= k < n_vert:
                            _fail(f"{where}: vertex index {k} out of range")
                        on = sum((ai * vi for ai, vi in zip(f.a, cert.vertices[k])), Fraction(0)) == f.b
                    if not on:
                        _fail(f"{where}: vertex {k} is not on facet {f.ids}")
        if by_volume:
            # a lower bound of the volume of the region's closure P, whatever the vertex list: every
            # vertex in it was verified above (all constraints >= 0, tight rank d: a vertex of P),
            # so the hull Q of the list lies in P; the bound is vol(Q) in 1-D and 2-D and a sum of
            # interior-disjoint simplices in Q for d >= 3 (see _hull_lower_bound). It equals
            # vol(P) iff the list holds every vertex of P. Regions are disjoint open cells of the
            # domain, so the bounds summing to the domain's volume proves that none is missing.
            pts = [cert.vertices[k] for k in vids]
            if d == 1:
                vol = max(p[0] for p in pts) - min(p[0] for p in pts) if pts else Fraction(0)
            elif d == 2:
                vol = _area_2d(vids, Vf, vq, pts)
            else:
                vol = _hull_lower_bound(cert.vertices, vids, SG if ok_ids else None, colpos)
            if r.volume is not None and vol != r.volume:
                _fail(f"{where}: volume {r.volume} differs from the volume of its vertices {vol}")
            volumes.append(_fq(vol))
    if not cert.regions:
        _fail("completeness: the certificate lists no region")
    if by_volume:
        total_volume = to_fraction(_pairwise_sum(volumes))
        if total_volume != dom.volume():
            _fail(f"completeness: region volumes sum to {total_volume}, the domain's volume is {dom.volume()} "
                  "(a region is missing or its vertices are incomplete)")
    else:
        _closure(runner, nodes, dom_rows, seen, cell_cons, offsets, d)
    # adjacency and pieces
    sides_of: dict[int, dict[tuple, set[int]]] = {}

    def sides(ri: int) -> dict[tuple, set[int]]:
        got = sides_of.get(ri)
        if got is None:
            got = sides_of[ri] = {}
            for f in cert.regions[ri].facets:
                hk, side = canonical_hyperplane(f.a, f.b)
                got.setdefault(hk, set()).add(side)
        return got

    for a in cert.adjacency:
        if not (0 <= a.i < a.j < cert.num_regions):
            _fail(f"adjacency ({a.i}, {a.j}): bad region indices")
        key = (a.a, a.b)
        pair = []
        for ri in (a.i, a.j):
            s = sides(ri).get(key)
            if not s:
                _fail(f"adjacency ({a.i}, {a.j}): region {ri} has no facet on the stated hyperplane")
            pair.append(s)
        if not any(-s in pair[1] for s in pair[0]):
            _fail(f"adjacency ({a.i}, {a.j}): the regions are not on opposite sides of the hyperplane")
    if len(cert.pieces) != cert.num_regions:
        _fail("pieces: one piece label per region expected")
    for a in cert.adjacency:
        same = cert.regions[a.i].output == cert.regions[a.j].output
        if same and cert.pieces[a.i] != cert.pieces[a.j]:
            _fail(f"pieces: adjacent regions {a.i} and {a.j} have the same output map but different pieces")
    labels = {}
    for r in cert.regions:
        first = labels.setdefault(cert.pieces[r.index], r.index)
        if cert.regions[first].output != r.output:
            _fail(f"pieces: regions {first} and {r.index} share a piece but not their output map")
    return cert
