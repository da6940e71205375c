"""Exact geometry helpers for the certifier: linear solves, volumes, filtered sign tests.

Linear algebra goes through python-flint's ``fmpq_mat`` (5-10x faster than Gaussian elimination
on :class:`fractions.Fraction` for d = 2..6, measured); inputs and outputs are ``Fraction``.
Signs of affine forms are decided in float64 with a rigorous error bound first and in exact
arithmetic only where the bound does not decide (the CGAL "filtered predicate" idea).

>>> from fractions import Fraction as F
>>> solve_vertex([[F(1), F(1)], [F(1), F(-1)]], [F(1), F(0)])
(Fraction(1, 2), Fraction(1, 2))
>>> polygon_area([(F(0), F(0)), (F(1), F(1)), (F(1), F(0)), (F(0), F(1))])
Fraction(1, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from functools import cmp_to_key
from typing import Union

import flint
import numpy as np

from exactrelu._polyhedra import h_to_v
from exactrelu.errors import InvalidInputError

__all__ = [
    "solve_vertex",
    "determinant",
    "interval_length",
    "polygon_area",
    "polytope_volume",
    "volume",
    "sign_exact",
    "sign_filtered",
    "signs_filtered",
    "float_signs",
    "nearest_floats",
]

Point = Sequence[Fraction]
Incidence = Union[Sequence[Sequence[int]], Mapping[object, Sequence[int]]]


def _q(x: Fraction | int) -> flint.fmpq:
    x = Fraction(x)
    return flint.fmpq(x.numerator, x.denominator)


def _f(x: flint.fmpq) -> Fraction:
    return Fraction(int(x.p), int(x.q))


def solve_vertex(rows: Sequence[Point], rhs: Point) -> tuple[Fraction, ...] | None:
    """Exact solution ``x`` of the square system ``rows x = rhs``; ``None`` if singular.

    >>> from fractions import Fraction as F
    >>> solve_vertex([[F(2), F(0)], [F(0), F(3)]], [F(1), F(1)])
    (Fraction(1, 2), Fraction(1, 3))
    >>> solve_vertex([[F(1), F(1)], [F(2), F(2)]], [F(1), F(1)]) is None
    True
    """
    n = len(rows)
    if len(rhs) != n or any(len(r) != n for r in rows):
        raise InvalidInputError(f"solve_vertex needs an n x n system; got {n} rows, {len(rhs)} rhs")
    if n == 0:
        return ()
    a = flint.fmpq_mat(n, n, [_q(v) for r in rows for v in r])
    bb = flint.fmpq_mat(n, 1, [_q(v) for v in rhs])
    try:
        x = a.solve(bb)
    except ZeroDivisionError:
        return None
    return tuple(_f(e) for e in x.entries())


def determinant(rows: Sequence[Point]) -> Fraction:
    """Exact determinant of a square matrix of rationals.

    >>> from fractions import Fraction as F
    >>> determinant([[F(1), F(2)], [F(3), F(4)]])
    Fraction(-2, 1)
    """
    n = len(rows)
    if n == 0:
        return Fraction(1)
    return _f(flint.fmpq_mat(n, n, [_q(v) for r in rows for v in r]).det())


def interval_length(vertices: Sequence[Point] | Sequence[Fraction]) -> Fraction:
    """Length of the segment spanned by 1-D points (given as numbers or 1-tuples).

    >>> from fractions import Fraction as F
    >>> interval_length([(F(1, 3),), (F(-1),)])
    Fraction(4, 3)
    """
    if not vertices:
        return Fraction(0)
    xs = [Fraction(v[0]) if isinstance(v, (tuple, list)) else Fraction(v) for v in vertices]
    return max(xs) - min(xs)


def _angle_order(vertices: Sequence[Point]) -> list[tuple[Fraction, Fraction]]:
    pts = list(dict.fromkeys((Fraction(p[0]), Fraction(p[1])) for p in vertices))
    n = len(pts)
    cx = sum((p[0] for p in pts), Fraction(0)) / n
    cy = sum((p[1] for p in pts), Fraction(0)) / n
    rel = [(p[0] - cx, p[1] - cy, p) for p in pts]

    def half(v: tuple[Fraction, Fraction, object]) -> int:
        return 0 if v[1] > 0 or (v[1] == 0 and v[0] > 0) else 1

    def cmp(u: tuple[Fraction, Fraction, object], v: tuple[Fraction, Fraction, object]) -> int:
        hu, hv = half(u), half(v)
        if hu != hv:
            return hu - hv
        cross = u[0] * v[1] - u[1] * v[0]
        return -1 if cross > 0 else (1 if cross < 0 else 0)

    return [r[2] for r in sorted(rel, key=cmp_to_key(cmp))]


def polygon_area(vertices: Sequence[Point]) -> Fraction:
    """Exact area of the convex polygon with the given vertices (any order, duplicates allowed).

    The vertices are sorted by angle around their centroid (exactly, by cross products), then
    the shoelace formula is applied. Fewer than three distinct vertices give area 0.

    >>> from fractions import Fraction as F
    >>> polygon_area([(F(0), F(0)), (F(0), F(1)), (F(1), F(0))])
    Fraction(1, 2)
    """
    if any(len(p) != 2 for p in vertices):
        raise InvalidInputError("polygon_area needs 2-D points")
    if len(vertices) < 3:
        return Fraction(0)
    pts = _angle_order(vertices)
    n = len(pts)
    twice = sum(
        (pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n)),
        Fraction(0),
    )
    return abs(twice) / 2


def _vertex_sets_of_facets(n_vertices: int, incidence: Incidence) -> list[frozenset[int]]:
    if isinstance(incidence, Mapping):
        sets = [frozenset(int(k) for k in vs) for vs in incidence.values()]
    else:
        if len(incidence) != n_vertices:
            raise InvalidInputError(
                f"incidence has {len(incidence)} entries for {n_vertices} vertices; pass one set "
                "of facet labels per vertex, or a mapping facet -> vertex indices"
            )
        by_label: dict[object, set[int]] = {}
        for k, labels in enumerate(incidence):
            for lab in labels:
                by_label.setdefault(lab, set()).add(k)
        sets = [frozenset(s) for s in by_label.values()]
    return [s for s in dict.fromkeys(sets) if s]


def _pulling_simplices(
    face: frozenset[int], facet_sets: list[frozenset[int]], memo: dict[frozenset[int], list]
) -> list[tuple[int, ...]]:
    """Simplices (as vertex-index tuples) of a pulling triangulation of ``face``."""
    got = memo.get(face)
    if got is not None:
        return got
    if len(face) == 1:
        out: list[tuple[int, ...]] = [tuple(face)]
        memo[face] = out
        return out
    # Facets of a face F are the inclusion-maximal proper non-empty sets F & V_j.
    subs = {face & s for s in facet_sets}
    subs = {s for s in subs if s and s != face}
    ordered = sorted(subs, key=len, reverse=True)
    maximal: list[frozenset[int]] = []
    for s in ordered:
        if not any(s < t for t in maximal):
            maximal.append(s)
    v0 = min(face)
    out = []
    for f in maximal:
        if v0 in f:
            continue
        for simplex in _pulling_simplices(f, facet_sets, memo):
            out.append((v0,) + simplex)
    memo[face] = out
    return out


def polytope_volume(vertices: Sequence[Point], incidence: Incidence) -> Fraction:
    """Exact d-volume of a bounded polytope from its vertices and vertex-facet incidence.

    ``incidence`` is either a sequence aligned with ``vertices`` giving, for each vertex, the
    labels (e.g. row indices) of the facet-defining inequalities tight at it, as returned by
    :func:`exactrelu._polyhedra.h_to_v` (redundant rows are harmless), or a mapping from a facet
    label to the indices of the vertices on that facet. The polytope is cut into cones from a
    vertex ``v0`` over the facets not containing it, recursively (a pulling triangulation), and
    the simplex volumes ``|det(v_i - v0)| / d!`` are summed exactly. A lower-dimensional
    polytope has volume 0.

    >>> from fractions import Fraction as F
    >>> cube = [tuple(F((k >> i) & 1) for i in range(3)) for k in range(8)]
    >>> inc = [{2 * i + int(v[i]) for i in range(3)} for v in cube]
    >>> polytope_volume(cube, inc)
    Fraction(1, 1)
    """
    if not vertices:
        return Fraction(0)
    d = len(vertices[0])
    if d == 0:
        return Fraction(1)
    facet_sets = _vertex_sets_of_facets(len(vertices), incidence)
    simplices = _pulling_simplices(frozenset(range(len(vertices))), facet_sets, {})
    if not simplices or len(simplices[0]) != d + 1:
        return Fraction(0)
    q = [[_q(c) for c in v] for v in vertices]
    total = flint.fmpq(0)
    for s in simplices:
        base = q[s[0]]
        m = flint.fmpq_mat(d, d, [q[i][j] - base[j] for i in s[1:] for j in range(d)])
        det = m.det()
        total += det if det >= 0 else -det
    return _f(total) / math.factorial(d)


def volume(A: Sequence[Point], b: Point) -> Fraction:
    """Exact volume of the bounded polyhedron ``{x : A x <= b}`` (0 if empty or flat).

    >>> from fractions import Fraction as F
    >>> volume([[F(-1), F(0)], [F(0), F(-1)], [F(1), F(1)]], [F(0), F(0), F(1)])
    Fraction(1, 2)
    """
    vrep = h_to_v(A, b)
    if not vrep.is_bounded:
        raise InvalidInputError("volume() needs a bounded polyhedron; add bounds to A x <= b")
    if vrep.is_empty:
        return Fraction(0)
    if vrep.dim == 1:
        return interval_length(vrep.vertices)
    if vrep.dim == 2:
        return polygon_area(vrep.vertices)
    return polytope_volume(vrep.vertices, vrep.incidence)


# --------------------------------------------------------------------------------------------
# Filtered signs of affine forms a . x + b.
#
# Notation: u = 2^-53 (unit roundoff of float64), eta = 2^-1074 (smallest subnormal),
# gamma_k = k u / (1 - k u), r^ = fl(r) the nearest float to a rational r.
#
# (1) Conversion. Unless fl(r) overflows, |r - r^| <= u |r^| + eta/2 (half an ulp of r^ is at
#     most u |r^| in the normal range; in the subnormal range the spacing is eta).
# (2) Data error. With a_i = a^_i + al_i, x_i = x^_i + xi_i, both errors bounded as in (1):
#       |a_i x_i - a^_i x^_i| <= (2u + u^2) |a^_i x^_i| + (1 + u)(eta/2)(|a^_i| + |x^_i|) + eta^2
#     and |b - b^| <= u |b^| + eta/2.
# (3) Evaluation error. s^ = fl(sum_i fl(a^_i x^_i) + b^), n products and n additions in any
#     order (so BLAS blocking/FMA are covered): |s^ - (sum a^_i x^_i + b^)|
#       <= gamma_{n+1} S + n eta/2,   S = sum |a^_i x^_i| + |b^|.
# (4) Total, with gamma_{n+1} + 2u + u^2 <= gamma_{n+3}:
#       |E - s^| <= gamma_{n+3} S + eta (T + 2n + 2),   T = sum |a^_i| + sum |x^_i|,
#     where E = a . x + b is the exact value.
# (5) S and T are themselves computed in float: S <= S^ (1 + gamma_{n+1}) + n eta and
#     T <= T^ (1 + gamma_{2n}). For (n + 4) u < 1e-3 the float value
#       B = fl(2 (n + 4) u * S^ + 2^-1000 (T^ + 2n + 4))
#     exceeds the bound in (4): the factor 2 covers gamma_{n+3} (1 + gamma_{n+1}) <= 1.01 (n+3) u
#     and the rounding of the few operations computing B; 2^-1000 >> 2 eta, and the product
#     2^-1000 * (T^ + 2n + 4) is a normal float scaled by a power of two, hence exact (or it
#     overflows to inf, which only makes B larger).
# (6) If s^, S^, T^ are finite and |s^| > B then sign(E) = sign(s^) and E != 0. Otherwise (or on
#     any overflow) the sign is computed exactly with Fraction.
#
# :func:`float_signs` is the one matrix form of (5)-(6), shared by :func:`signs_filtered`, the
# certifier and the checker: rows [a_1..a_n, b] against points carrying a trailing exact 1, so
# that s^ and S^ are each one matrix product; T^ there also counts |b^| and the 1s (only larger).
# --------------------------------------------------------------------------------------------

_U = 2.0**-53
_TINY = 2.0**-1000


def sign_exact(a: Point, b: Fraction, x: Point) -> int:
    """Exact sign (-1, 0, 1) of ``a . x + b`` in rational arithmetic.

    >>> from fractions import Fraction as F
    >>> sign_exact([F(1, 3)], F(-1), [F(3)])
    0
    """
    v = Fraction(b) + sum((Fraction(ai) * Fraction(xi) for ai, xi in zip(a, x)), Fraction(0))
    return (v > 0) - (v < 0)


def _nearest(r: Fraction | int | float) -> float:
    try:
        return float(r)
    except OverflowError:
        return math.inf if r > 0 else -math.inf


def sign_filtered(a: Point, b: Fraction, x: Point) -> int:
    """Sign (-1, 0, 1) of the exact value ``a . x + b``: float64 with a rigorous bound first,
    exact Fraction arithmetic only when the bound does not decide (see the comment above).

    >>> from fractions import Fraction as F
    >>> sign_filtered([F(1), F(1)], F(-1), [F(1, 3), F(2, 3)])
    0
    >>> sign_filtered([F(1)], F(-1), [F(1) + F(1, 10**30)])
    1
    """
    n = len(a)
    if len(x) != n:
        raise InvalidInputError(f"a has {n} entries but x has {len(x)}")
    ah = [_nearest(v) for v in a]
    xh = [_nearest(v) for v in x]
    bh = _nearest(b)
    s = bh
    big_s = abs(bh)
    t = 0.0
    for ai, xi in zip(ah, xh):
        p = ai * xi
        s += p
        big_s += abs(p)
        t += abs(ai) + abs(xi)
    if math.isfinite(s) and math.isfinite(big_s) and math.isfinite(t):
        bound = 2.0 * (n + 4) * _U * big_s + _TINY * (t + 2 * n + 4)
        if s > bound:
            return 1
        if s < -bound:
            return -1
    return sign_exact(a, b, x)


def nearest_floats(values: Sequence[Sequence[Fraction]] | Sequence[Fraction]) -> np.ndarray:
    """float64 array of the nearest floats to exact rationals (±inf where they overflow).

    >>> from fractions import Fraction as F
    >>> nearest_floats([[F(1, 2), F(1, 4)]])
    array([[0.5 , 0.25]])
    """
    if values and isinstance(values[0], (list, tuple)):
        return np.array([[_nearest(v) for v in row] for row in values], dtype=np.float64)
    return np.array([_nearest(v) for v in values], dtype=np.float64)


def signs_filtered(
    A: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    exact: tuple[Sequence[Point], Point, Sequence[Point]] | None = None,
) -> np.ndarray:
    """Signs of ``A[i] . X[j] + b[i]`` for all rows ``i`` and points ``j``, as an int8 array of
    shape ``(m, k)``.

    ``A`` (m, n), ``b`` (m,) and ``X`` (k, n) are float64 arrays holding the nearest floats of
    the exact data ``exact = (A_q, b_q, X_q)`` (lists of Fraction; see :func:`nearest_floats`).
    Entries decided by the float error bound cost one matrix product; the others are
    recomputed exactly from ``exact``. Without ``exact`` the float arrays are taken as the exact
    values.

    >>> import numpy as np
    >>> from fractions import Fraction as F
    >>> Aq, bq, Xq = [[F(1), F(1)]], [F(-1)], [[F(1, 3), F(2, 3)], [F(1), F(1)]]
    >>> signs_filtered(nearest_floats(Aq), nearest_floats(bq), nearest_floats(Xq), (Aq, bq, Xq))
    array([[0, 1]], dtype=int8)
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if A.ndim != 2 or X.ndim != 2 or b.shape != (A.shape[0],) or X.shape[1] != A.shape[1]:
        raise InvalidInputError(
            f"signs_filtered needs A (m, n), b (m,), X (k, n); got {A.shape}, {b.shape}, {X.shape}"
        )
    M = np.concatenate([A, b[:, None]], axis=1)
    Xh = np.concatenate([X.T, np.ones((1, X.shape[0]))], axis=0)
    out, decided = float_signs(M, np.abs(M), Xh)
    undecided = ~decided
    if undecided.any():
        if exact is None:
            if not (np.isfinite(A).all() and np.isfinite(b).all() and np.isfinite(X).all()):
                raise InvalidInputError("signs_filtered got non-finite floats and no exact data")
            Aq = [[Fraction(float(v)) for v in row] for row in A]
            bq = [Fraction(float(v)) for v in b]
            Xq = [[Fraction(float(v)) for v in row] for row in X]
        else:
            Aq, bq, Xq = exact
        for i, j in zip(*np.nonzero(undecided)):
            out[i, j] = sign_exact(Aq[i], bq[i], Xq[j])
    return out


def float_signs(M: np.ndarray, absM: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signs of ``M[i] . X[:, j]`` decided in float64 with the rigorous bound above.

    ``M`` (m, n + 1) float64 holds the nearest floats of exact rows ``[a_1..a_n, b]``, ``absM``
    is ``np.abs(M)`` (passed in so that callers can keep it), ``X`` (n + 1, k) float64 the
    nearest floats of exact points as columns, with a trailing row of exact ones. Returns
    ``(signs, decided)``: ``signs`` (int8, (m, k)) is the exact sign of ``a_i . x_j + b_i``
    wherever ``decided`` (bool, (m, k)) is True, and 0 elsewhere; undecided entries (every exact
    zero among them, and every entry touched by an overflow) are for the caller to evaluate
    exactly.

    >>> import numpy as np
    >>> M = np.array([[1.0, -1.0], [1.0, 0.0]])
    >>> s, ok = float_signs(M, np.abs(M), np.array([[1.0, 3.0], [1.0, 1.0]]))
    >>> s.tolist(), ok.tolist()
    ([[0, 1], [1, 1]], [[False, True], [True, True]])
    """
    n = M.shape[1] - 1
    with np.errstate(all="ignore"):
        s = M @ X
        absX = np.abs(X)
        bound = absM @ absX
        bound *= 2.0 * (n + 4) * _U
        bound += _TINY * (absM.sum(axis=1)[:, None] + (absX.sum(axis=0) + (2 * n + 4))[None, :])
        # |s| > bound is False for NaN and where bound is inf; a finite bound with s = +-inf
        # (an overflow of s alone) must not count as decided
        decided = np.abs(s) > bound
        decided &= np.isfinite(s)
        signs = np.sign(s).astype(np.int8)
        signs[~decided] = 0
    return signs, decided
