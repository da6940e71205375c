"""DOCSTRING"""

from __future__ import annotations

import bisect
import math
import random
from fractions import Fraction
from typing import Any, Sequence

import cdd
import cdd.gmp as cdd_gmp
import flint
import numpy as np
import torch
from torch import nn

from ._exact import ExactMap, input_map, to_fraction
from ._geometry import float_signs, hull_volume, nearest_floats, polygon_area
from .capture import Node, Program, capture
from .certificate import Adjacency, Certificate, Region, RegionFacet, canonical_hyperplane
from .domain import Domain, Slice, as_domain
from .errors import CertificateError, InvalidInputError

__all__ = ["check"]

fmpq = flint.fmpq
_INPUT = -1
#: bounded domains up to this dimension are proven complete by exact volumes, all others by
#: closure under facet crossing (:func:`_closure`) with each region's vertex, ray and line lists
#: proven by an exact H->V (:func:`_h_to_v`); tests lower it to run that path where the volume
#: path checks the same certificates independently. The volume argument holds in every
#: dimension; the bound is where it was measured to be the cheaper of the two (mlp nets of
#: benchmarks/nets.py on [-1, 1]^d, volumes vs closure: 4-10-10 6 s vs 44 s, 5-8-8 10 s vs
#: 32 s, 6-8-8 297 s vs 163 s: pulling triangulations grow fast with d).
_VOLUME_MAX_DIM = 5
#: on bounded domains up to this dimension a region's ``volume`` must be given (both engines
#: write it there); above, it may be None. Wherever it is given it must be exact.
_VOLUME_FIELD_MAX_DIM = 3
#: pattern states are small integers (a state indexes an op's pieces)
_MAX_STATE = 2 ** 31


def _fail(msg: str) -> None:
    raise CertificateError(msg)


def _rank(rows: list[list[fmpq]], n: int) -> int:
    """Rank of the exact rows (each of length ``n``)."""
    if not rows:
        return 0
    return flint.fmpq_mat(len(rows), n, [v for r in rows for v in r]).rank()


def _fq(x: Fraction | int) -> fmpq:
    return fmpq(x.numerator, x.denominator)


def _near(q: fmpq) -> float:
    """The nearest float64 to ``q`` (Python's int division is correctly rounded); ±inf on overflow."""
    try:
        return int(q.p) / int(q.q)
    except OverflowError:
        return float("inf") if q > 0 else float("-inf")


def _ints(row: Sequence[Any]) -> list[int]:
    """``row`` (rationals) times the least positive integer that makes every entry an integer."""
    qs = [_fq(v) if not isinstance(v, fmpq) else v for v in row]
    den = math.lcm(*(int(v.q) for v in qs))
    return [int(v.p) * (den // int(v.q)) for v in qs]


# ----------------------------------------------------------------------------- form of the object

def _short(x: Any) -> str:
    s = repr(x)
    return s if len(s) <= 60 else s[:57] + "..."


def _is_int(x: Any) -> bool:
    return type(x) is int or (isinstance(x, int) and not isinstance(x, bool))


def _is_q(x: Any) -> bool:
    return type(x) is Fraction or _is_int(x) or isinstance(x, Fraction)


def _seq(x: Any, what: str) -> Sequence[Any]:
    if not isinstance(x, (list, tuple)):
        _fail(f"{what}: expected a list, got {_short(x)}")
    return x


def _qvec(v: Any, n: int, what: str) -> None:
    """``v`` is a sequence of ``n`` rationals (int or Fraction)."""
    _seq(v, what)
    if len(v) != n:
        _fail(f"{what}: {len(v)} entries, expected {n}")
    for x in v:
        if not _is_q(x):
            _fail(f"{what}: {_short(x)} is not a rational (int or Fraction)")


def _ivec(v: Any, what: str, lo: int | None = None, hi: int | None = None) -> None:
    """``v`` is a sequence of ints, each in ``[lo, hi)`` where given."""
    _seq(v, what)
    for x in v:
        if not _is_int(x):
            _fail(f"{what}: {_short(x)} is not an int")
    if v and lo is not None and hi is not None and not (lo <= min(v) and max(v) < hi):
        bad = next(x for x in v if not lo <= x < hi)
        _fail(f"{what}: index {bad} out of range (0..{hi - 1})" if lo == 0 else
              f"{what}: {bad} out of range")


def _validate(cert: Certificate) -> None:
    """Types, lengths and index ranges of every field, so that the checks proper never meet
    anything but what they expect: a malformed object fails here, naming the field."""
    if not isinstance(cert.domain, Domain):
        _fail(f"domain: {_short(cert.domain)} is not a Domain")
    d = cert.domain.dim
    for name in ("input_shape", "output_shape"):
        shape = getattr(cert, name)
        _ivec(shape, name)
        if not shape or min(shape) < 1:
            _fail(f"{name}: {_short(shape)} is not a shape (positive sizes)")
    if not isinstance(cert.digest, str):
        _fail(f"digest: {_short(cert.digest)} is not a string")
    _ivec(cert.constraint_offsets, "constraint_offsets")
    for k, note in enumerate(_seq(cert.notes, "notes")):
        if not isinstance(note, str):
            _fail(f"notes[{k}]: {_short(note)} is not a string")
    n_vert = len(_seq(cert.vertices, "vertices"))
    for k, v in enumerate(cert.vertices):
        _qvec(v, d, f"vertex {k}")
    n_reg = len(_seq(cert.regions, "regions"))
    patterns: set[int] = set()  # regions share their pattern lists: each is checked once
    for pos, r in enumerate(cert.regions):
        if not isinstance(r, Region):
            _fail(f"regions[{pos}]: {_short(r)} is not a Region")
        where = f"region {pos}"
        if not _is_int(r.index) or r.index != pos:
            _fail(f"{where}: index {_short(r.index)}, expected its position {pos}")
        for j, p in enumerate(_seq(r.pattern, f"{where} pattern")):
            if id(p) not in patterns:
                _ivec(p, f"{where} pattern of piecewise op {j}", -_MAX_STATE, _MAX_STATE)
                patterns.add(id(p))
        _qvec(r.witness, d, f"{where} witness")
        for n, row in enumerate(_seq(r.output, f"{where} output")):
            _qvec(row, len(_seq(row, f"{where} output row {n}")), f"{where} output row {n}")
        if r.volume is not None and not _is_q(r.volume):
            _fail(f"{where} volume: {_short(r.volume)} is not a rational or None")
        for kind, dirs in (("ray", r.rays), ("line", r.lines)):
            for n, v in enumerate(_seq(dirs, f"{where} {kind}s")):
                _qvec(v, d, f"{where} {kind} {n}")
        _ivec(r.vertices, f"{where} vertices", 0, n_vert)
        for n, f in enumerate(_seq(r.facets, f"{where} facets")):
            fw = f"{where} facet {n}"
            if not isinstance(f, RegionFacet):
                _fail(f"{fw}: {_short(f)} is not a RegionFacet")
            _qvec(f.a, d, f"{fw} a")
            if not _is_q(f.b):
                _fail(f"{fw} b: {_short(f.b)} is not a rational")
            _ivec(f.ids, f"{fw} ids")
            _ivec(f.vertices, f"{fw} vertices", 0, n_vert)
            _ivec(f.rays, f"{fw} rays", 0, len(r.rays))
    for n, a in enumerate(_seq(cert.adjacency, "adjacency")):
        aw = f"adjacency entry {n}"
        if not isinstance(a, Adjacency):
            _fail(f"{aw}: {_short(a)} is not an Adjacency")
        if not (_is_int(a.i) and _is_int(a.j) and 0 <= a.i < a.j < n_reg):
            _fail(f"{aw}: region indices ({_short(a.i)}, {_short(a.j)}) must be ints with "
                  f"0 <= i < j < {n_reg}")
        _qvec(a.a, d, f"{aw} a")
        if not _is_q(a.b):
            _fail(f"{aw} b: {_short(a.b)} is not a rational")
        _ivec(a.ids, f"{aw} ids")
    _ivec(cert.pieces, "pieces")
    if len(cert.pieces) != n_reg:
        _fail(f"pieces: {len(cert.pieces)} labels for {n_reg} regions")


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


def _hull_lower_bound(points: list, masks: list[int]) -> Fraction:
    """Exact volume of the pulling triangulation of the hull ``Q`` of a region's certified
    vertices ``points`` over the vertex sets ``masks`` (bit ``k``: ``points[k]``): a lower bound
    of the region's volume, equal to it when ``points`` holds every vertex of the region.

    Every point was verified to be a vertex of the region's closure ``P`` (all constraints >= 0,
    tight rank d), hence of ``Q``, which lies in ``P``; no point is listed twice. Each mask is
    ``{k : g(p_k) = 0}`` for a constraint ``g`` of the region (found by exact tightness,
    :func:`_true_facets`; never taken from the certificate's facet lists): the vertex set of the
    face of ``Q`` exposed by the hyperplane ``g = 0`` (``g >= 0`` on ``P``, so on ``Q``). With
    every set a face of ``Q``, :func:`~exactrelu._geometry.hull_volume` sums simplices with
    disjoint interiors inside ``Q``, so the result is at most ``vol(Q) <= vol(P)``. A facet of
    ``Q`` that is on no constraint (cut off by a missing vertex) is simply not pulled over; the
    bound is then strict, as it is whenever a vertex is missing (``Q`` then misses a
    neighbourhood of it in ``P``). When ``points`` is complete, ``Q = P`` and every facet of
    ``P`` is one of the masks: equality."""
    if not points:
        return Fraction(0)
    return hull_volume(points, sorted(masks))


def _pairwise_sum(values: list[fmpq]) -> fmpq:
    """The exact sum of ``values``, added in pairs: a running sum of many regions' volumes, with
    their unrelated denominators, grows a denominator of tens of thousands of bits (measured on a
    10,000-region net: 8.6 s in Fraction, 0.65 s in pairs of fmpq)."""
    while len(values) > 1:
        values = [values[i] + values[i + 1] if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0] if values else fmpq(0)


def _facet_lp(rows: list[list[int]], d: int, what: str) -> tuple[Fraction, tuple[Fraction, ...]]:
    """``max s`` over ``(x, s)`` subject to ``r . (1, x, s) >= 0`` for every row ``r`` (cddlib's
    row format ``[b, -A]``) by cddlib's exact (GMP) LP with the criss-cross rule: the optimum and
    an optimal ``x``. The rule is finite; cddlib's default dual simplex was seen to cycle (hang
    or crash) on the degenerate facet LPs of duplicated units. ``what`` names the claim for an
    LP that does not end optimal (every caller's LP is feasible and bounded)."""
    lp = cdd_gmp.linprog_from_array(rows + [[0] * (d + 1) + [1]], cdd.LPObjType.MAX)
    cdd_gmp.linprog_solve(lp, cdd.LPSolverType.CRISS_CROSS)
    if lp.status != cdd.LPStatusType.OPTIMAL:
        _fail(f"{what}: an exact LP ended with status {lp.status!r}, not optimal")
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
                    value, xf = _facet_lp(rows, d, "completeness")
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


# ----------------------------------------------------------------------------- one region's faces

def _h_to_v(rows: list[list[fmpq]], d: int, where: str) -> tuple[list[tuple], list[tuple]]:
    """Points and rays of an exact V-representation of ``{t : g(t) >= 0}`` over the rows
    ``g = [a | c]`` (``g(t) = a . t + c``), by cddlib's GMP double description (exact and
    minimal: for a pointed polyhedron the points are its vertices and the rays its extreme rays;
    with lines, the points are one per minimal face and the rays extreme modulo the lines). The
    lines are not returned: the lineality space is the kernel of the normals, computed apart."""
    mat = cdd_gmp.matrix_from_array([[z[d]] + z[:d] for z in map(_ints, rows)],
                                     rep_type=cdd.RepType.INEQUALITY)
    gen = cdd_gmp.copy_generators(cdd_gmp.polyhedron_from_matrix(mat))
    lines = gen.lin_set
    points: list[tuple] = []
    rays: list[tuple] = []
    for k, row in enumerate(gen.array):
        if k in lines:
            continue
        if row[0] == 0:
            rays.append(tuple(Fraction(x) for x in row[1:]))
        else:
            points.append(tuple(Fraction(x) / row[0] for x in row[1:]))
    if not points:
        # cddlib leaves the origin implicit for a homogeneous system (every constant 0)
        if any(r[d] != 0 for r in rows):
            _fail(f"{where}: cddlib's H->V of the region returned no point")
        points.append((Fraction(0),) * d)
    return points, rays


def _true_facets(T: np.ndarray, n_pts: int, gens: list[list[fmpq]], lines: list[list[fmpq]],
                 d: int, bounded: bool) -> list[tuple[list[int], list[int]]]:
    """The facets of a full-dimensional region ``P = conv(points) + cone(rays) + lin(lines)``
    from its constraints' tightness at those generators: ``T[i, k]`` is whether constraint ``i``
    vanishes at generator ``k`` (the first ``n_pts`` columns points, then rays; lines are in
    every constraint), ``gens[k]`` the generator homogenized (``[p | 1]``, ``[r | 0]``),
    ``lines`` the lines as ``[l | 0]``. Returns (constraint rows, generator columns) per facet.

    For a constraint ``g >= 0`` on ``P`` the face ``P ∩ {g = 0}`` is generated by the generators
    on which ``g`` vanishes, so its dimension is the rank of those homogenized generators (with
    the lines) minus one; it is a facet iff that rank is d (at least one point must be among
    them: a non-empty face holds a point). Constraints vanishing on one facet have its affine
    hull as their hyperplane, hence the same tightness set: facets are the distinct sets of
    rank d, and a facet's constraints are the rows with that set (all with the region's
    orientation: each is >= 0 on ``P``). Bounded and d <= 3 the rank is read off the number of
    points (distinct vertices): one in 1-D, two distinct points span a line in 2-D, and three
    distinct extreme points of a convex set are never collinear in 3-D. A bounded facet has at
    least d vertices, an unbounded one at least one point; rows below that are skipped."""
    cnt = T[:, :n_pts].sum(axis=1)
    cand = np.nonzero(cnt >= (d if bounded else 1))[0]
    if not len(cand):
        return []
    packed = np.packbits(T[cand], axis=1, bitorder="little")
    groups: dict[bytes, list[int]] = {}
    for i, key in zip(cand.tolist(), packed):
        groups.setdefault(key.tobytes(), []).append(i)
    by_count = bounded and d <= 3
    out = []
    for rs in groups.values():
        cols = np.nonzero(T[rs[0]])[0].tolist()
        if len(cols) == T.shape[1]:
            continue  # vanishes on all of P: only with incomplete lists (caught elsewhere)
        if not by_count and _rank([gens[c] for c in cols] + lines, d + 1) != d:
            continue
        out.append((rs, cols))
    return out


def _facet_error(where: str, r: Region, facets: list[tuple[list[int], list[int]]],
                 cids: list[int], oriented: Any, vids: list[int], n_listed: int,
                 n_pts: int) -> str | None:
    """The first false claim among the listed facets of region ``r``, or None. ``facets`` are
    its true facets (:func:`_true_facets`), ``cids[i]`` the constraint id of row ``i`` and
    ``oriented(i)`` that row as ``[a | c]`` with ``a . t + c >= 0`` on the region; the first
    ``n_listed`` generator columns are the listed vertices ``vids`` (none for a region with
    lines, whose points are cddlib's), columns from ``n_pts`` on are the region's rays."""
    by_ids: dict[frozenset, tuple[list[int], list[int]]] = {}
    owner: dict[int, frozenset] = {}
    for rs, cols in facets:
        key = frozenset(cids[i] for i in rs)
        by_ids[key] = (rs, cols)
        for i in rs:
            owner[cids[i]] = key
    used: set[frozenset] = set()
    for n, f in enumerate(r.facets):
        fw = f"{where}: facet {n} (ids {list(f.ids)})"
        key = frozenset(f.ids)
        if len(key) != len(f.ids) or not key:
            return f"{fw}: its ids must be distinct constraint ids, at least one"
        got = by_ids.get(key)
        if got is None:
            for c in f.ids:
                if c not in owner:
                    return f"{fw}: constraint {c} carries no facet of the region"
            return (f"{fw}: the constraints vanishing on its facet are "
                    f"{sorted(owner[f.ids[0]])}, not these")
        if key in used:
            return f"{fw}: this facet is listed twice"
        used.add(key)
        rs, cols = got
        row = [-_fq(x) for x in f.a] + [_fq(f.b)]
        if not any(oriented(i) == row for i in rs):
            return f"{fw}: a . t <= b is not one of its constraints (as they bound the region)"
        for kind, kinds, listed, want in (
                ("vertex", "vertices", f.vertices, {vids[c] for c in cols if c < n_listed}),
                ("ray", "rays", f.rays, {c - n_pts for c in cols if c >= n_pts})):
            got_set = set(listed)
            if len(got_set) != len(listed):
                return f"{fw}: a {kind} listed twice"
            if got_set != want:
                extra = sorted(got_set - want)
                if extra:
                    return f"{fw}: {kind} {extra[0]} is not one of the region's {kinds} on it"
                return f"{fw}: the region's {kind} {sorted(want - got_set)[0]} lies on it but is not listed"
    if len(used) < len(by_ids):
        missing = next(k for k in by_ids if k not in used)
        return f"{where}: its facet on constraints {sorted(missing)} is not listed"
    return None


# ----------------------------------------------------------------------------- adjacency, pieces

def _hom(v: Sequence[Fraction], w: int) -> list[int]:
    """``v`` as integers ``[x | w * D]`` with ``v = x / D``, ``D > 0`` (``w = 1``: a point,
    ``w = 0``: a direction, positively scaled)."""
    den = math.lcm(*(x.denominator for x in v))
    return [x.numerator * (den // x.denominator) for x in v] + [w * den]


class _Face:
    """A facet of a region (already proven to be one) with what the overlap tests need: its
    exact extent along every coordinate (±inf where it is unbounded; all of R for a region with
    lines, whose facets list no vertex), and its vertices and rays as integer rows."""

    __slots__ = ("ri", "f", "lo", "hi", "gens", "pointed")

    def __init__(self, cert: Certificate, r: Region, f: RegionFacet, d: int) -> None:
        self.ri, self.f = r.index, f
        self.pointed = not r.lines
        if not self.pointed:
            self.lo: list = [-math.inf] * d
            self.hi: list = [math.inf] * d
            self.gens: list[list[int]] = []
            return
        pts = [cert.vertices[k] for k in f.vertices]
        dirs = [r.rays[k] for k in f.rays]
        self.lo = [-math.inf if any(v[i] < 0 for v in dirs) else min(p[i] for p in pts)
                   for i in range(d)]
        self.hi = [math.inf if any(v[i] > 0 for v in dirs) else max(p[i] for p in pts)
                   for i in range(d)]
        self.gens = [_hom(p, 1) for p in pts] + [_hom(v, 0) for v in dirs]


def _dot(a: list[int], b: list[int]) -> int:
    return sum(x * y for x, y in zip(a, b))


class _Adjacency:
    """The true adjacent pairs of a certificate whose regions and facets are proven (see the
    module docstring for the argument)."""

    def __init__(self, cert: Certificate, d: int, offsets: list[int]) -> None:
        self.cert, self.d, self.offsets = cert, d, offsets
        self.rows: dict[int, list[tuple[RegionFacet, list[int]]]] = {}

    def region_rows(self, ri: int) -> list[tuple[RegionFacet, list[int]]]:
        """Every facet ``a . t <= b`` of region ``ri`` as the integer row ``[-a | b]`` (times a
        positive integer): ``>= 0`` on the region."""
        got = self.rows.get(ri)
        if got is None:
            got = self.rows[ri] = [(f, _ints([-x for x in f.a] + [f.b]))
                                   for f in self.cert.regions[ri].facets]
        return got

    def pairs(self) -> dict[tuple[int, int], tuple[tuple, RegionFacet, RegionFacet]]:
        """``(i, j) -> (hyperplane, facet of i, facet of j)`` for every adjacent pair ``i < j``."""
        cert, d, offsets = self.cert, self.d, self.offsets
        n_dom = offsets[0]
        groups: dict[tuple, tuple[list[_Face], list[_Face]]] = {}
        prefixes: dict[tuple, int] = {}
        for r in cert.regions:
            pids: dict[int, int] = {}
            for f in r.facets:
                low = min(f.ids)
                if low < n_dom:
                    continue  # on the domain's boundary: every region is on the same side
                j0 = bisect.bisect_right(offsets, low) - 1
                pid = pids.get(j0)
                if pid is None:
                    pre = tuple(tuple(p) for p in r.pattern[:j0])
                    pid = pids[j0] = prefixes.setdefault(pre, len(prefixes))
                key, side = canonical_hyperplane(f.a, f.b)
                plus, minus = groups.setdefault((key, j0, pid), ([], []))
                (plus if side > 0 else minus).append(_Face(cert, r, f, d))
        out: dict[tuple[int, int], tuple[tuple, RegionFacet, RegionFacet]] = {}
        for (key, _, _), (plus, minus) in groups.items():
            if not plus or not minus:
                continue
            for p, m in self._overlapping(key, plus, minus):
                i, j = (p, m) if p.ri < m.ri else (m, p)
                out[(i.ri, j.ri)] = (key, i.f, j.f)
        return out

    def _overlapping(self, key: tuple, plus: list[_Face], minus: list[_Face]) -> list:
        """Pairs of facets on the hyperplane ``key`` (opposite sides) whose relative interiors
        share a (d-1)-dimensional set."""
        d = self.d
        if d == 1:
            return [(p, m) for p in plus for m in minus]  # both facets are the point itself
        a = key[0]
        free = [i for i in range(d) if any(a[k] != 0 for k in range(d) if k != i)]
        c0 = free[0]
        minus = sorted(minus, key=lambda m: m.lo[c0])
        out = []
        for p in plus:
            top = p.hi[c0]
            for m in minus:
                if m.lo[c0] >= top:
                    break
                if not all(p.lo[i] < m.hi[i] and m.lo[i] < p.hi[i] for i in free):
                    continue
                if d == 2 or self._overlap(key, p, m):
                    out.append((p, m))
        return out

    def _overlap(self, key: tuple, p: _Face, m: _Face) -> bool:
        """d >= 3: do facets ``p`` and ``m`` on the hyperplane ``key`` (their extents overlapping
        with positive length along every coordinate the hyperplane does not fix) share a
        (d-1)-dimensional set? d shared affinely independent vertices say yes; a facet of one
        region with the other facet on or beyond it says no; in 3-D (pointed facets) nothing
        else is possible; otherwise an exact LP decides."""
        d = self.d
        if p.pointed and m.pointed:
            shared = set(p.f.vertices).intersection(m.f.vertices)
            if len(shared) >= d:
                if d == 3:
                    return True  # three distinct extreme points of a polygon: a triangle
                pts = [[_fq(x) for x in self.cert.vertices[k]] + [fmpq(1)] for k in shared]
                if _rank(pts, d + 1) == d:
                    return True
            for x, y in ((p, m), (m, p)):
                for h, row in self.region_rows(x.ri):
                    if h is not x.f and all(_dot(row, g) <= 0 for g in y.gens):
                        return False
            if d == 3:
                return True
        rows = []
        for x in (p, m):
            for h, row in self.region_rows(x.ri):
                if h is not x.f:
                    rows.append([row[d]] + row[:d] + [-1])  # g(t) >= s
        e = _ints([-v for v in key[0]] + [key[1]])
        rows += [[e[d]] + e[:d] + [0], [-e[d]] + [-v for v in e[:d]] + [0], [1] + [0] * d + [-1]]
        value, _ = _facet_lp(rows, d, f"adjacency of regions {p.ri} and {m.ri}")
        return value > 0


def _check_adjacency(cert: Certificate, d: int, offsets: list[int]) -> None:
    """The listed adjacent pairs are exactly the true ones, each with its hyperplane and ids."""
    true = _Adjacency(cert, d, offsets).pairs()
    listed: set[tuple[int, int]] = set()
    for a in cert.adjacency:
        pair = (a.i, a.j)
        aw = f"adjacency ({a.i}, {a.j})"
        if pair in listed:
            _fail(f"{aw}: listed twice")
        listed.add(pair)
        got = true.get(pair)
        if got is None:
            _fail(f"{aw}: the regions' closures do not share a {d - 1}-dimensional face")
        key, fi, fj = got
        if (tuple(a.a), a.b) != key:
            _fail(f"{aw}: the shared hyperplane is a . t = b with a = {[str(v) for v in key[0]]}, "
                  f"b = {key[1]} (the first non-zero entry of a scaled to 1)")
        ids = set(fi.ids) | set(fj.ids)
        if len(set(a.ids)) != len(a.ids) or set(a.ids) != ids:
            _fail(f"{aw}: ids {list(a.ids)}, expected the constraints of both facets {sorted(ids)}")
    for pair in sorted(true):
        if pair not in listed:
            _fail(f"adjacency: regions {pair[0]} and {pair[1]} share a {d - 1}-dimensional face "
                  "but are not listed as adjacent")


def _check_pieces(cert: Certificate) -> None:
    """Piece labels: the connected components of the graph of adjacent pairs (proven exact)
    with equal exact output maps, numbered in order of first occurrence."""
    regions = cert.regions
    parent = list(range(len(regions)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a in cert.adjacency:
        if regions[a.i].output == regions[a.j].output:
            ri, rj = find(a.i), find(a.j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    label_of: dict[int, int] = {}  # component root -> its label
    opened: dict[int, int] = {}  # component root -> its first region
    first: dict[int, int] = {}  # label -> first region with it
    for k, p in enumerate(cert.pieces):
        root = find(k)
        want = label_of.setdefault(root, len(label_of))
        j = opened.setdefault(root, k)
        if p == want:
            first.setdefault(p, k)
        elif p in first:
            _fail(f"pieces: regions {first[p]} and {k} are labelled {p} but are not connected "
                  "through adjacent regions with their exact output map")
        elif j != k:
            _fail(f"pieces: regions {j} and {k} are connected through adjacent regions with one "
                  f"exact output map but labelled {cert.pieces[j]} and {p}")
        else:
            _fail(f"pieces: region {k} starts a new piece labelled {p}; labels number the pieces "
                  f"in order of first occurrence, so it is {want}")


# ----------------------------------------------------------------------------- the check

def _program(cert: Certificate, net: nn.Module | Program) -> Program:
    """The network captured at the certificate's input shape (which must fit the domain)."""
    shape = tuple(cert.input_shape)
    dom = cert.domain
    if isinstance(dom, Slice) and tuple(dom.input_shape) != shape:
        _fail(f"input_shape {shape}: the domain is a slice of inputs of shape {dom.input_shape}")
    if math.prod(shape) != dom.input_dim:
        _fail(f"input_shape {shape}: {math.prod(shape)} inputs, the domain has {dom.input_dim}")
    if isinstance(net, Program):
        if tuple(net.input_shape) != shape:
            _fail(f"input_shape {shape}: the program takes {net.input_shape}")
        return net
    try:
        return capture(net, shape)
    except InvalidInputError as exc:
        raise CertificateError(f"input_shape {shape}: {exc}") from None


def check(cert: Certificate | str, net: nn.Module | Program, domain: Any = None) -> Certificate:
    """Re-verify every claim of ``cert`` against ``net``; returns the certificate or raises
    :class:`~exactrelu.errors.CertificateError` naming the first claim that does not hold.
    ``domain`` (a :class:`~exactrelu.domain.Domain` or what :func:`~exactrelu.domain.as_domain`
    takes): also require the certificate to be about exactly that domain.

    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> import exactrelu
    >>> c = exactrelu.verify(net, [(-1, 1)], progress=False)
    >>> check(c, net, domain=[(-1, 1)]).num_regions == c.num_regions
    True
    """
    if not isinstance(cert, Certificate):
        cert = Certificate.load(cert)
    _validate(cert)
    dom = cert.domain
    if domain is not None:
        want = domain if isinstance(domain, Domain) else as_domain(domain)
        if dom != want:
            _fail(f"domain: the certificate is about {dom!r}, not {want!r}")
    prog = _program(cert, net)
    if prog.digest() != cert.digest:
        _fail("network digest: the certificate was made for a different network (architecture or parameters differ)")
    if tuple(cert.output_shape) != tuple(prog.output_shape):
        _fail(f"output_shape: {tuple(cert.output_shape)}, the network's is {tuple(prog.output_shape)}")
    if list(cert.notes) != prog.notes():
        _fail(f"notes: {list(cert.notes)}, the network's are {prog.notes()} (where it is not taken "
              "exactly as written)")
    d = dom.dim
    bounded = dom.is_bounded
    A_dom, b_dom = dom.halfspaces()
    M, c = dom.input_map()
    m0 = input_map(M, c, prog.input_shape)
    offsets = [len(A_dom)]
    for j in range(prog.num_piecewise):
        offsets.append(offsets[-1] + prog.num_switching(j))
    if offsets != list(cert.constraint_offsets):
        _fail(f"constraint ids: the certificate's offsets {cert.constraint_offsets} do not match {offsets}")
    nodes = prog.piecewise_nodes()
    n_out = [math.prod(nd.out_shape) for nd in nodes]
    n_dom = len(A_dom)
    # domain rows as constraints b - a.t >= 0, in the same form as the switching rows
    dom_rows = [[_fq(-x) for x in a] + [_fq(b)] for a, b in zip(A_dom, b_dom)]
    dom_F = np.array([[_near(v) for v in row] for row in dom_rows], dtype=np.float64).reshape(n_dom, d + 1)
    dom_absF = np.abs(dom_F)
    dom_cids = np.arange(n_dom, dtype=np.int64)
    dom_sgn = np.ones(n_dom, dtype=np.int64)
    # vertices: distinct points; nearest floats for all, exact fmpq on demand
    n_vert = len(cert.vertices)
    first_at: dict[tuple, int] = {}
    for k, v in enumerate(cert.vertices):
        j = first_at.setdefault(tuple(v), k)
        if j != k:
            _fail(f"vertices {j} and {k} are the same point")
    del first_at
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
    by_volume = bounded and d <= _VOLUME_MAX_DIM
    volumes: list[fmpq] = []
    deferred: str | None = None  # the first false facet claim, on the volume path
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
        vids = list(r.vertices)
        if len(set(vids)) != len(vids):
            _fail(f"{where}: a vertex index listed twice")
        # the witness and the vertices, exact and as nearest floats: one sign pass per op
        pts_q = [tuple(_fq(x) for x in w)] + [vq(k) for k in vids]
        wf = nearest_floats([list(w)])
        X = np.concatenate([wf, Vf[vids]], axis=0)
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
            same = flint.fmpq_mat(out.n, out.k + 1, [_fq(v) for row in rows_out for v in row]) == out.mat
        if not same:
            _fail(f"{where}: output map differs from the exact output map of its pattern")
        # the region's constraints, row by row: the block and row of each, its id
        starts = np.cumsum([0] + [len(b[2]) for b in blocks])
        cids = np.concatenate([b[4] for b in blocks]).tolist()

        def oriented(i: int, blocks: list = blocks, starts: np.ndarray = starts) -> list[fmpq]:
            """Row ``i`` of the region's constraints as ``[a | c]``, ``a . t + c >= 0`` on it."""
            n = int(np.searchsorted(starts, i, side="right")) - 1
            rows, _, sel, sgn, _ = blocks[n]
            row = rows[int(sel[i - starts[n]])]
            return list(row) if sgn[i - starts[n]] > 0 else [-v for v in row]

        # vertices: signs of every constraint at every vertex
        if vids:
            sign_blocks, lin = [], []
            for rows, S_all, sel, sgn, _ in blocks:
                sign_blocks.append(S_all[sel, 1:] * sgn[:, None].astype(np.int8))
                lin.extend(rows[i][:-1] for i in sel.tolist())
            SG = np.concatenate(sign_blocks, axis=0)
            for col, k in enumerate(vids):
                colv = SG[:, col]
                neg = colv < 0
                if neg.any():
                    _fail(f"{where}: vertex {k} violates constraint {cids[int(np.argmax(neg))]}")
                tight = np.nonzero(colv == 0)[0].tolist()
                if _rank([lin[t] for t in tight], d) != d:
                    _fail(f"{where}: vertex {k} is not a vertex of the region (its tight constraints "
                          f"have rank < {d})")
        else:
            SG = np.zeros((len(cids), 0), dtype=np.int8)
        # rays and lines: recession directions, lines in every constraint
        n_rows = len(cids)
        R_all = [oriented(i) for i in range(n_rows)] if (r.rays or r.lines or not by_volume) else None
        ray_tight = np.zeros((n_rows, len(r.rays)), dtype=bool)
        if R_all is not None and (r.rays or r.lines):
            N = flint.fmpq_mat(n_rows, d, [v for row in R_all for v in row[:d]])
            for kind, dirs in (("ray", r.rays), ("line", r.lines)):
                if not dirs:
                    continue
                D = N * flint.fmpq_mat(d, len(dirs), [_fq(dirs[n][m]) for m in range(d) for n in range(len(dirs))])
                vals = D.tolist()
                for n_dir in range(len(dirs)):
                    if all(x == 0 for x in dirs[n_dir]):
                        _fail(f"{where}: {kind} {n_dir} is the zero direction")
                    for i in range(n_rows):
                        dv = vals[i][n_dir]
                        if dv < 0 or (kind == "line" and dv != 0):
                            _fail(f"{where}: {kind} {n_dir} leaves the region through constraint {cids[i]}")
                        if kind == "ray":
                            ray_tight[i, n_dir] = dv == 0
        line_rows = [[_fq(x) for x in v] + [fmpq(0)] for v in r.lines]
        # the generators of the region: its listed vertices (when it has no lines) and rays
        points: list[tuple] = [vq(k) for k in vids]
        P_tight = SG == 0
        if not by_volume:
            # vertex, ray and line lists proven by an exact H->V of the region's constraints
            normals = [row[:d] for row in R_all]
            n_lin = d - _rank(normals, d)
            if _rank(line_rows, d + 1) != len(r.lines) or len(r.lines) != n_lin:
                _fail(f"{where}: its lines are not a basis of its lineality space (dimension {n_lin})")
            hv_pts, hv_rays = _h_to_v(R_all, d, where)
            if n_lin:
                if vids:
                    _fail(f"{where}: a region with lines has no vertex, {len(vids)} are listed")
                points = [tuple(_fq(x) for x in p) for p in hv_pts]
                P_tight = np.array([[sum((a * x for a, x in zip(row[:d], p)), row[d]) == 0
                                     for p in points] for row in R_all], dtype=bool).reshape(n_rows, len(points))
            else:
                listed = {tuple(cert.vertices[k]) for k in vids}
                missing = [p for p in hv_pts if p not in listed]
                if missing:
                    _fail(f"{where}: its vertex {tuple(str(x) for x in missing[0])} is not listed")
                if len(hv_pts) != len(vids):
                    _fail(f"{where}: {len(vids)} vertices listed, the region has {len(hv_pts)}")
            want = {frozenset(np.nonzero([sum((a * _fq(x) for a, x in zip(row[:d], v)), fmpq(0)) == 0
                                          for row in R_all])[0].tolist()) for v in hv_rays}
            have = [frozenset(np.nonzero(ray_tight[:, n])[0].tolist()) for n in range(len(r.rays))]
            if len(set(have)) != len(have) or set(have) != want:
                _fail(f"{where}: its rays are not its extreme rays (modulo its lines), each once: "
                      f"{len(r.rays)} listed, {len(want)} extreme")
        # facets: exactly the region's irredundant constraints
        gens = [list(p) + [fmpq(1)] for p in points] + [[_fq(x) for x in v] + [fmpq(0)] for v in r.rays]
        T = np.concatenate([P_tight, ray_tight], axis=1)
        facets = _true_facets(T, len(points), gens, line_rows, d, bounded)
        msg = _facet_error(where, r, facets, cids, oriented, vids, 0 if r.lines else len(vids),
                           len(points))
        if msg is not None:
            if not by_volume:
                _fail(msg)
            deferred = deferred or msg
        # volume
        if bounded and (by_volume or r.volume is not None or d <= _VOLUME_FIELD_MAX_DIM):
            # a lower bound of the volume of the region's closure P, whatever the vertex list: every
            # vertex in it was verified above (all constraints >= 0, tight rank d: a vertex of P),
            # so the hull Q of the list lies in P; the bound is vol(Q) in 1-D and 2-D and a sum of
            # interior-disjoint simplices in Q for d >= 3 (see _hull_lower_bound). It equals
            # vol(P) iff the list holds every vertex of P (proven by the volume sum, or by H->V).
            pts = [cert.vertices[k] for k in vids]
            if d == 1:
                vol = max(p[0] for p in pts) - min(p[0] for p in pts) if pts else Fraction(0)
            elif d == 2:
                vol = _area_2d(vids, Vf, vq, pts)
            else:
                masks = [sum(1 << c for c in cols) for _, cols in facets]
                vol = _hull_lower_bound(pts, masks)
            if r.volume is not None and vol != r.volume:
                _fail(f"{where}: volume {r.volume} differs from the volume of its vertices {vol}")
            if r.volume is None and d <= _VOLUME_FIELD_MAX_DIM:
                _fail(f"{where}: volume missing (it is required on bounded domains up to "
                      f"{_VOLUME_FIELD_MAX_DIM}-D)")
            volumes.append(_fq(vol))
        elif r.volume is not None:
            _fail(f"{where}: a volume on an unbounded domain (it must be None)")
    if not cert.regions:
        _fail("completeness: the certificate lists no region")
    if by_volume:
        total_volume = to_fraction(_pairwise_sum(volumes))
        if total_volume != dom.volume():
            _fail(f"completeness: region volumes sum to {total_volume}, the domain's volume is {dom.volume()} "
                  "(a region is missing or its vertices are incomplete)")
        if deferred is not None:
            _fail(deferred)
    else:
        _closure(runner, nodes, dom_rows, seen, cell_cons, offsets, d)
    # the global vertex list: every vertex is one of some region's (none extra)
    used = np.zeros(n_vert, dtype=bool)
    for r in cert.regions:
        used[r.vertices] = True
    if not used.all():
        _fail(f"vertex {int(np.argmin(used))} is a vertex of no region")
    _check_adjacency(cert, d, offsets)
    _check_pieces(cert)
    return cert
