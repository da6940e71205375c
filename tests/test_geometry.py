"""Exact polyhedral adapter and geometry helpers, checked against independent facts."""

from __future__ import annotations

import itertools
import math
import random
from fractions import Fraction as F

import numpy as np
import pytest
import sympy
from hypothesis import given, settings, strategies as st

from exactrelu import _geometry
from exactrelu._deps import flint
from exactrelu._geometry import (
    float_signs,
    hull_volume,
    interval_length,
    nearest_floats,
    polygon_area,
    polytope_volume,
    sign_exact,
    sign_filtered,
    signs_filtered,
    solve_vertex,
    volume,
)
from exactrelu._polyhedra import facets, h_to_v, interior_point, lp_max
from exactrelu.errors import InvalidInputError

SETTINGS = settings(max_examples=60, deadline=None)


def box_h(d: int, lo: F = F(0), hi: F = F(1)) -> tuple[list[list[F]], list[F]]:
    A, b = [], []
    for i in range(d):
        e = [F(int(i == j)) for j in range(d)]
        A += [e, [-v for v in e]]
        b += [hi, -lo]
    return A, b


def simplex_h(d: int) -> tuple[list[list[F]], list[F]]:
    A = [[F(-int(i == j)) for j in range(d)] for i in range(d)] + [[F(1)] * d]
    return A, [F(0)] * d + [F(1)]


def random_polytope(d: int, m: int, rng: random.Random) -> tuple[list[list[F]], list[F]]:
    """Box [-1, 1]^d cut by m random halfspaces that keep a ball around the origin."""
    A, b = box_h(d, F(-1), F(1))
    for _ in range(m):
        a = [F(rng.randint(-9, 9)) for _ in range(d)]
        if all(v == 0 for v in a):
            continue
        A.append(a)
        b.append(F(rng.randint(1, 10), 10) * sum(abs(v) for v in a) / 2)
    return A, b


def dot(a, x):
    return sum((ai * xi for ai, xi in zip(a, x, strict=True)), F(0))


# ----------------------------------------------------------------------------- h_to_v, facets


def test_unit_box_vertices_and_incidence_are_exact():
    A, b = box_h(3)
    v = h_to_v(A, b)
    assert sorted(v.vertices) == sorted(itertools.product([F(0), F(1)], repeat=3))
    assert v.is_bounded and not v.rays and not v.lines
    for p, rows in zip(v.vertices, v.incidence, strict=True):
        assert rows == frozenset(i for i in range(len(A)) if dot(A[i], p) == b[i])


def test_incidence_matches_direct_evaluation_on_random_polytopes():
    rng = random.Random(1)
    for d in (2, 3, 4):
        A, b = random_polytope(d, 6, rng)
        v = h_to_v(A, b)
        for p, rows in zip(v.vertices, v.incidence, strict=True):
            assert all(dot(A[i], p) <= b[i] for i in range(len(A)))
            assert rows == frozenset(i for i in range(len(A)) if dot(A[i], p) == b[i])
            assert len(rows) >= d


def test_unbounded_and_empty_and_homogeneous():
    # x >= 1, y >= 1: one vertex, two rays.
    v = h_to_v([[F(-1), F(0)], [F(0), F(-1)]], [F(-1), F(-1)])
    assert v.vertices == [(F(1), F(1))] and len(v.rays) == 2 and not v.is_bounded
    assert v.incidence == [frozenset({0, 1})]
    # x >= 0, y >= 0 (homogeneous): cdd leaves the origin implicit; we add it back.
    v = h_to_v([[F(-1), F(0)], [F(0), F(-1)]], [F(0), F(0)])
    assert v.vertices == [(F(0), F(0))] and v.incidence == [frozenset({0, 1})]
    # empty
    v = h_to_v([[F(1)], [F(-1)]], [F(0), F(-1)])
    assert v.is_empty and v.vertices == []
    # no rows: all of R^2
    v = h_to_v([], [], dim=2)
    assert len(v.lines) == 2 and not v.is_bounded


def test_facets_of_box_with_redundant_and_duplicated_rows():
    A, b = box_h(2)  # rows 0..3: x<=1, -x<=0, y<=1, -y<=0
    A = [*A, [F(1), F(1)], [F(2), F(0)], [F(1), F(1)], [F(0), F(-3)], [F(1), F(0)]]
    b = [*b, F(2), F(2), F(5), F(0), F(7)]
    # row 4: x+y<=2 touches only the vertex (1,1): redundant; row 5 duplicates row 0;
    # row 6 misses the box; row 7 duplicates row 3; row 8 is far away.
    fs = facets(A, b)
    assert fs.indices == [0, 1, 2, 3]
    assert fs.groups == [(0, 5), (1,), (2,), (3, 7)]
    v = h_to_v(A, b)
    for idx, vs in zip(fs.indices, fs.vertex_sets, strict=True):
        assert {v.vertices[k] for k in vs} == {p for p in v.vertices if dot(A[idx], p) == b[idx]}


def test_facets_of_cube_with_redundant_rows_in_3d():
    A, b = box_h(3)
    A = [*A, [F(1), F(1), F(1)], [F(1), F(1), F(0)], [F(3), F(0), F(0)]]
    b = [*b, F(3), F(2), F(3)]
    fs = facets(A, b)
    assert fs.indices == list(range(6))
    assert (0, 8) in fs.groups


def test_facets_agree_with_affine_rank_on_random_polytopes():
    rng = random.Random(7)
    for d in (2, 3, 4):
        A, b = random_polytope(d, 8, rng)
        v = h_to_v(A, b)
        fs = facets(A, b, v)
        by_rank = []
        for i in range(len(A)):
            pts = [p for p in v.vertices if dot(A[i], p) == b[i]]
            if not pts:
                continue
            rank = sympy.Matrix([[c - p0 for c, p0 in zip(p, pts[0], strict=True)]
                                 for p in pts]).rank()
            if rank == d - 1:
                by_rank.append(i)
        assert sorted(i for g in fs.groups for i in g) == by_rank


def test_interior_point_is_strictly_inside():
    rng = random.Random(3)
    for d in (1, 2, 3, 5):
        A, b = random_polytope(d, 5, rng)
        x, s = interior_point(A, b)
        assert s > 0
        assert all(dot(a, x) < bi for a, bi in zip(A, b, strict=True))


def test_interior_point_of_flat_and_empty_sets():
    # the segment x = 0, 0 <= y <= 1 in R^2 is not full-dimensional
    A = [[F(1), F(0)], [F(-1), F(0)], [F(0), F(1)], [F(0), F(-1)]]
    x, s = interior_point(A, [F(0), F(0), F(1), F(0)])
    assert s == 0 and x[0] == 0 and 0 <= x[1] <= 1
    assert interior_point([[F(1)], [F(-1)]], [F(0), F(-1)]) is None
    assert interior_point([], [], dim=3) == ((F(0), F(0), F(0)), F(1))


def test_lp_max_equals_best_vertex():
    rng = random.Random(5)
    for d in (2, 3, 4):
        A, b = random_polytope(d, 6, rng)
        verts = h_to_v(A, b).vertices
        for _ in range(5):
            c = [F(rng.randint(-5, 5), rng.randint(1, 4)) for _ in range(d)]
            r = lp_max(c, A, b)
            assert r.status == "optimal"
            assert r.value == max(dot(c, p) for p in verts)
            assert dot(c, r.x) == r.value
            assert all(dot(a, r.x) <= bi for a, bi in zip(A, b, strict=True))


def test_lp_max_unbounded_and_infeasible():
    assert lp_max([F(1)], [[F(-1)]], [F(0)]).status == "unbounded"
    assert lp_max([F(1)], [[F(1)], [F(-1)]], [F(0), F(-1)]).status == "infeasible"


@pytest.mark.parametrize(
    "args",
    [
        ([[F(1)], [F(2)]], [F(1)]),
        ([[F(1)], [F(2), F(3)]], [F(1), F(1)]),
    ],
)
def test_polyhedra_reject_malformed_input(args):
    with pytest.raises(InvalidInputError):
        h_to_v(*args)


# ----------------------------------------------------------------------------- solve_vertex


@SETTINGS
@given(st.integers(1, 5), st.randoms(use_true_random=False))
def test_solve_vertex_matches_sympy(d, rng):
    rows = [[F(rng.randint(-20, 20), rng.randint(1, 7)) for _ in range(d)] for _ in range(d)]
    rhs = [F(rng.randint(-20, 20), rng.randint(1, 7)) for _ in range(d)]
    M = sympy.Matrix([[sympy.Rational(v.numerator, v.denominator) for v in r] for r in rows])
    x = solve_vertex(rows, rhs)
    if M.det() == 0:
        assert x is None
    else:
        want = M.LUsolve(sympy.Matrix([sympy.Rational(v.numerator, v.denominator) for v in rhs]))
        assert [F(int(w.p), int(w.q)) for w in want] == list(x)


def test_solve_vertex_singular_returns_none():
    assert solve_vertex([[F(1), F(2)], [F(2), F(4)]], [F(1), F(2)]) is None


# ----------------------------------------------------------------------------- volumes


def test_unit_square_and_hand_computed_triangles():
    sq = [(F(0), F(0)), (F(1), F(0)), (F(1), F(1)), (F(0), F(1))]
    assert polygon_area(sq) == 1
    assert polygon_area(list(reversed(sq))) == 1
    assert polygon_area([(F(0), F(0)), (F(4), F(0)), (F(0), F(3))]) == 6
    # (1,1), (3,2), (2,5): cross((2,1),(1,4)) = 8 - 1 = 7
    assert polygon_area([(F(2), F(5)), (F(1), F(1)), (F(3), F(2))]) == F(7, 2)
    assert polygon_area([(F(0), F(0)), (F(1, 3), F(0)), (F(0), F(1, 7))]) == F(1, 42)
    assert polygon_area([(F(0), F(0)), (F(1), F(1)), (F(2), F(2))]) == 0
    assert polygon_area([(F(0), F(0)), (F(1), F(1))]) == 0


def test_polygon_area_is_independent_of_vertex_order():
    rng = random.Random(11)
    n = 12
    # vertices of a regular-ish convex polygon with rational coordinates: points on the
    # parabola y = x^2 are in convex position; close it with the chord.
    pts = [(F(k, 3), F(k * k, 9)) for k in range(-n, n + 1)]
    ref = polygon_area(pts)
    # shoelace in the natural order, computed by hand here
    m = len(pts)
    twice = sum(pts[i][0] * pts[(i + 1) % m][1] - pts[(i + 1) % m][0] * pts[i][1] for i in range(m))
    want = abs(twice) / 2
    assert ref == want
    for _ in range(5):
        rng.shuffle(pts)
        assert polygon_area(pts + pts[:3]) == want


def test_interval_length():
    assert interval_length([(F(1, 3),), (F(-2),), (F(0),)]) == F(7, 3)
    assert interval_length([F(5)]) == 0


@pytest.mark.parametrize("d", [1, 2, 3, 4, 5])
def test_standard_simplex_volume_is_one_over_d_factorial(d):
    A, b = simplex_h(d)
    assert volume(A, b) == F(1, math.factorial(d))


@pytest.mark.parametrize("d", [1, 2, 3, 4])
def test_cube_and_cross_polytope_volumes(d):
    A, b = box_h(d, F(-1), F(1, 2))
    assert volume(A, b) == F(3, 2) ** d
    cross = [[F(s) for s in signs] for signs in itertools.product([-1, 1], repeat=d)]
    assert volume(cross, [F(1)] * len(cross)) == F(2**d, math.factorial(d))


def test_polytope_volume_accepts_facet_mapping():
    A, b = box_h(3)
    v = h_to_v(A, b)
    fs = facets(A, b, v)
    by_facet = {i: sorted(vs) for i, vs in zip(fs.indices, fs.vertex_sets, strict=True)}
    assert polytope_volume(v.vertices, by_facet) == 1
    assert polytope_volume(v.vertices, v.incidence) == 1


def exposed_faces(A, b, pts) -> tuple[list[int], list[list[F]]]:
    """For every row of ``A x <= b``, the bit mask of the points tight on it (exact), and the
    row as ``[a | -b]`` (vanishing on exactly those points)."""
    masks = [sum(1 << k for k, p in enumerate(pts) if dot(a, p) == bi)
             for a, bi in zip(A, b, strict=True)]
    return masks, [[*a, -bi] for a, bi in zip(A, b, strict=True)]


def simplex_sum(vertices, masks) -> F:
    """The pulling triangulation's volume simplex by simplex, by determinants (flint): the lowest
    vertex of a face joined to the simplices of its maximal proper faces without it, each
    simplex with d + 1 vertices counted as ``|det(v_i - v_0)| / d!`` (an independent sum)."""
    d = len(vertices[0])

    def simplices(face: int) -> list[tuple[int, ...]]:
        low = face & -face
        if face == low:
            return [(low.bit_length() - 1,)]
        subs = {face & m for m in masks} - {0, face}
        maximal: list[int] = []
        for s in sorted(subs, key=int.bit_count, reverse=True):
            if not any(s & t == s for t in maximal):
                maximal.append(s)
        v0 = (low.bit_length() - 1,)
        return [v0 + s for f in maximal if not f & low for s in simplices(f)]

    total = F(0)
    for s in simplices((1 << len(vertices)) - 1):
        if len(s) == d + 1:
            m = flint.fmpq_mat(d, d, [flint.fmpq(x.numerator, x.denominator)
                                      for i in s[1:] for x in (vertices[i][k] - vertices[s[0]][k]
                                                               for k in range(d))])
            det = m.det()
            total += abs(F(int(det.p), int(det.q)))
    return total / math.factorial(d)


@pytest.mark.parametrize("d", [3, 4, 5])
def test_hull_volume_over_exposed_faces_is_a_lower_bound(d):
    """The checker's completeness argument: with the faces cut out by the constraints' hyperplanes
    from any subset of a polytope's vertices, the pulling triangulation never exceeds the
    polytope's volume, equals it for all vertices and falls short as soon as one is missing."""
    rng = random.Random(300 + d)
    for _ in range(4):
        A, b = random_polytope(d, 6, rng)
        full = volume(A, b)
        verts = list(h_to_v(A, b).vertices)
        assert hull_volume(verts, *exposed_faces(A, b, verts)) == full
        for _ in range(6):
            sub = rng.sample(verts, rng.randint(1, len(verts) - 1))
            got = hull_volume(sub, *exposed_faces(A, b, sub))
            assert 0 <= got < full


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6])
def test_hull_volume_face_by_face_equals_the_simplex_sum(d):
    """The face-by-face sum is the pulling triangulation's simplex sum, to the last bit, on random
    polytopes with all their vertices and with some missing (a lower bound), the vertices in
    random order (another lowest vertex, other faces on the way)."""
    rng = random.Random(400 + d)
    for trial in range(3 if d < 6 else 1):
        A, b = random_polytope(d, 4 if d < 6 else 2, rng)
        verts = list(h_to_v(A, b).vertices)
        rng.shuffle(verts)
        for pts in (verts, rng.sample(verts, max(d + 1, len(verts) - 1 - trial))):
            masks, rows = exposed_faces(A, b, pts)
            assert hull_volume(pts, masks, rows) == simplex_sum(pts, masks)


def cross_polytope(d: int, r: F) -> list[tuple[F, ...]]:
    return [tuple(s * r * int(i == k) for k in range(d)) for i in range(d) for s in (1, -1)]


@pytest.mark.parametrize("d", [2, 3, 4, 5, 6])
def test_hull_volume_of_cubes_simplices_and_cross_polytopes(d):
    """Known volumes: the box [-1/3, 1/2]^d, (5/6)^d; the simplex conv(0, e_i / 7), 1 / (7^d d!);
    the cross-polytope of radius 3/2, 2^d (3/2)^d / d!."""
    A, b = box_h(d, F(-1, 3), F(1, 2))
    cube = [tuple(F(1, 2) if (k >> i) & 1 else F(-1, 3) for i in range(d)) for k in range(2**d)]
    assert hull_volume(cube, *exposed_faces(A, b, cube)) == F(5, 6) ** d
    A, b = simplex_h(d)
    b = [v / 7 for v in b]
    simplex = [tuple(F(0) for _ in range(d))] + [
        tuple(F(int(i == k), 7) for k in range(d)) for i in range(d)]
    assert hull_volume(simplex, *exposed_faces(A, b, simplex)) == F(1, 7**d * math.factorial(d))
    cross = cross_polytope(d, F(3, 2))
    normals = [[F(s) for s in signs] for signs in itertools.product([-1, 1], repeat=d)]
    masks, rows = exposed_faces(normals, [F(3, 2)] * len(normals), cross)
    assert hull_volume(cross, masks, rows) == F(2**d) * F(3, 2) ** d / math.factorial(d)
    assert polytope_volume(cross, {i: [k for k in range(2 * d) if m >> k & 1]
                                   for i, m in enumerate(masks)}) == hull_volume(cross, masks, rows)


def test_hull_volume_rejects_malformed_rows():
    square = [(F(0), F(0)), (F(1), F(0)), (F(1), F(1)), (F(0), F(1))]
    edges = [0b0011, 0b0110, 0b1100, 0b1001]
    with pytest.raises(InvalidInputError):
        hull_volume(square, edges, [(F(0), F(1), F(0))] * 3)
    with pytest.raises(InvalidInputError):
        hull_volume(square, edges, [(F(0), F(1))] * 4)


def test_hull_volume_can_overcount_over_sets_that_are_not_faces():
    """Why the checker computes the face sets by tightness: a diagonal of the unit square offered
    as a face makes the cones from vertex 0 overlap."""
    square = [(F(0), F(0)), (F(1), F(0)), (F(1), F(1)), (F(0), F(1))]
    edges = [0b0011, 0b0110, 0b1100, 0b1001]
    rows = [(0, 1, 0), (1, 0, -1), (0, 1, -1), (1, 0, 0)]
    assert hull_volume(square, edges, rows) == 1
    assert hull_volume(square, [*edges, 0b1010], [*rows, (1, 1, -1)]) == F(3, 2)


def test_flat_and_empty_polytopes_have_volume_zero():
    A, b = box_h(3)
    b[0] = F(0)  # x <= 0 and x >= 0
    assert volume(A, b) == 0
    b[0] = F(-1)
    assert volume(A, b) == 0
    with pytest.raises(InvalidInputError):
        volume([[F(-1), F(0)]], [F(0)])


@pytest.mark.parametrize("d", [2, 3, 4])
def test_random_polytope_volume_is_additive_under_a_cut(d):
    rng = random.Random(100 + d)
    for _ in range(4):
        A, b = random_polytope(d, 6, rng)
        c = [F(rng.randint(-5, 5)) for _ in range(d)]
        if all(v == 0 for v in c):
            continue
        off = F(rng.randint(-3, 3), 10)
        lower = volume([*A, c], [*b, off])
        upper = volume([*A, [-v for v in c]], [*b, -off])
        assert lower + upper == volume(A, b)


@pytest.mark.parametrize("d", [2, 3, 4])
def test_random_polytope_volume_matches_monte_carlo(d):
    rng = random.Random(200 + d)
    A, b = random_polytope(d, 7, rng)
    exact = float(volume(A, b))
    n = 200_000
    pts = np.random.default_rng(d).uniform(-1, 1, size=(n, d))
    An = np.array(A, dtype=float)
    bn = np.array(b, dtype=float)
    frac = np.mean(np.all(pts @ An.T <= bn, axis=1))
    sigma = math.sqrt(frac * (1 - frac) / n) * 2**d
    assert abs(frac * 2**d - exact) < 5 * sigma + 1e-12
    assert 0 < exact < 2**d


# ----------------------------------------------------------------------------- filtered signs


def _near_zero_cases(rng: random.Random, n: int):
    """Affine forms whose exact value is 0 or within 2^-200 of 0, built so float cannot tell."""
    cases = []
    for _ in range(40):
        a = [F(rng.uniform(-1e3, 1e3)) for _ in range(n)]
        x = [F(rng.uniform(-1e3, 1e3)) for _ in range(n)]
        e = dot(a, x)
        for delta in (F(0), F(1, 2**200), -F(1, 2**200), F(1, 3 * 2**60), -F(1, 3 * 2**60)):
            cases.append((a, -e + delta, x, (delta > 0) - (delta < 0)))
    # catastrophic cancellation: 1e20 + 1 - 1e20 - 1 == 0 exactly
    big = F(10**20)
    cases.append(([big, F(1), -big], F(-1), [F(1), F(1), F(1)], 0))
    cases.append(([big, F(1), -big], F(-1), [F(1), F(1), F(1) + F(1, 10**30)], -1))
    # subnormal and tiny rationals
    tiny = F(1, 2**1074)
    cases.append(([F(3) * tiny], -tiny, [F(1, 3)], 0))
    cases.append(([F(3) * tiny], -tiny, [F(1, 3) + F(1, 10**9)], 1))
    cases.append(([F(1, 10**400)], F(0), [F(1)], 1))
    cases.append(([F(1, 10**400), F(1)], F(-1), [F(1), F(1)], 1))
    # values too large for float64
    cases.append(([F(10**400)], F(-(10**400)), [F(1)], 0))
    cases.append(([F(10**400), F(-1)], F(-(10**400)), [F(1), F(1)], -1))
    return cases


def test_sign_filtered_on_cases_undecidable_in_float():
    rng = random.Random(42)
    for n in (1, 2, 3, 8):
        for a, b, x, want in _near_zero_cases(rng, n):
            assert sign_exact(a, b, x) == want
            assert sign_filtered(a, b, x) == want


@SETTINGS
@given(
    st.lists(st.fractions(max_denominator=10**6), min_size=1, max_size=6),
    st.lists(st.fractions(max_denominator=10**6), min_size=6, max_size=6),
    st.fractions(max_denominator=10**6),
)
def test_sign_filtered_matches_exact_sign(a, x, b):
    x = x[: len(a)]
    assert sign_filtered(a, b, x) == sign_exact(a, b, x)
    # shifting b to make the value exactly zero
    e = dot(a, x)
    assert sign_filtered(a, -e, x) == 0


@SETTINGS
@given(
    st.lists(st.floats(-1e300, 1e300, allow_subnormal=True), min_size=1, max_size=5),
    st.lists(st.floats(-1e-300, 1e-300, allow_subnormal=True), min_size=5, max_size=5),
)
def test_sign_filtered_with_extreme_magnitudes(a, x):
    aq = [F(v) for v in a]
    xq = [F(v) for v in x[: len(a)]]
    e = dot(aq, xq)
    for b in (-e, -e + F(1, 2**1100), -e - F(1, 2**1100), F(0)):
        assert sign_filtered(aq, b, xq) == sign_exact(aq, b, xq)


def test_signs_filtered_matrix_on_near_zero_data():
    rng = random.Random(9)
    n, m, k = 3, 30, 20
    Xq = [[F(rng.uniform(-1, 1)) for _ in range(n)] for _ in range(k)]
    Aq, bq = [], []
    for i in range(m):
        a = [F(rng.uniform(-1, 1)) for _ in range(n)]
        j = i % k
        delta = [F(0), F(1, 2**200), -F(1, 2**200), F(1, 2**70), F(3)][i % 5]
        Aq.append(a)
        bq.append(-dot(a, Xq[j]) + delta)  # row i passes (nearly) through point j
    got = signs_filtered(nearest_floats(Aq), nearest_floats(bq), nearest_floats(Xq), (Aq, bq, Xq))
    assert got.dtype == np.int8 and got.shape == (m, k)
    want = np.array([[sign_exact(Aq[i], bq[i], Xq[j]) for j in range(k)] for i in range(m)])
    assert (got == want).all()
    assert (got == 0).sum() >= m // 5  # the exact zeros really are there


def test_signs_filtered_decides_well_separated_data_in_float(monkeypatch):
    calls = []
    real = _geometry.sign_exact
    monkeypatch.setattr(_geometry, "sign_exact", lambda *a: calls.append(a) or real(*a))
    rng = np.random.default_rng(0)
    A = rng.uniform(-1, 1, size=(40, 4))
    X = rng.uniform(-1, 1, size=(500, 4))
    b = rng.uniform(-1, 1, size=40)
    got = signs_filtered(A, b, X)
    exact_vals = A @ X.T + b[:, None]
    clear = np.abs(exact_vals) > 1e-9
    assert (got[clear] == np.sign(exact_vals[clear])).all()
    assert len(calls) == int((~clear).sum())  # nothing clear-cut went to the exact path


def test_signs_filtered_handles_overflowing_exact_data():
    Aq = [[F(10**400), F(-1)]]
    bq = [F(-(10**400))]
    Xq = [[F(1), F(1)], [F(1), F(0)], [F(2), F(0)]]
    got = signs_filtered(nearest_floats(Aq), nearest_floats(bq), nearest_floats(Xq), (Aq, bq, Xq))
    assert got.tolist() == [[-1, 0, 1]]


def test_signs_filtered_rejects_bad_shapes():
    with pytest.raises(InvalidInputError):
        signs_filtered(np.zeros((2, 3)), np.zeros(3), np.zeros((4, 3)))


def test_float_signs_decides_only_what_is_certain():
    """The shared filter: rows [a | b] against points with a trailing 1; every decided entry has
    the exact sign, exact zeros and overflowing entries are left undecided (signs 0 there)."""
    rng = random.Random(5)
    n, m, k = 4, 40, 25
    Xq = [[F(rng.uniform(-2, 2)) for _ in range(n)] for _ in range(k)]
    Mq = []
    for i in range(m):
        a = [F(rng.uniform(-1, 1)) for _ in range(n)]
        delta = [F(0), F(1, 2**300), F(1, 2**60), F(1)][i % 4]
        Mq.append([*a, -dot(a, Xq[i % k]) + delta])
    Mq.append([F(10**400)] + [F(0)] * (n - 1) + [F(-(10**400))])  # overflows to inf
    M = nearest_floats(Mq)
    X = np.vstack([nearest_floats(Xq).T, np.ones((1, k))])
    signs, decided = float_signs(M, np.abs(M), X)
    assert signs.dtype == np.int8 and signs.shape == decided.shape == (m + 1, k)
    want = np.array([[sign_exact(r[:-1], r[-1], x) for x in Xq] for r in Mq])
    assert (signs[decided] == want[decided]).all()
    assert (signs[~decided] == 0).all()
    assert not decided[want == 0].any()
    assert not decided[-1].any()
    assert decided.mean() > 0.8  # the clear-cut entries are decided in float
    # signs_filtered is the same filter plus the exact fallback
    got = signs_filtered(M[:, :-1], M[:, -1], nearest_floats(Xq),
                         ([r[:-1] for r in Mq], [r[-1] for r in Mq], Xq))
    assert (got == want).all()

