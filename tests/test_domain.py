"""Input domains: exact coordinates, the common interface, JSON, and invalid inputs."""

from __future__ import annotations

import itertools
import json
import math
from fractions import Fraction as F

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from exactrelu.domain import (
    Box,
    Domain,
    Polyhedron,
    Polytope,
    RealSpace,
    Slice,
    as_domain,
    to_fraction,
)
from exactrelu.errors import ExactReluError, InvalidInputError

SETTINGS = settings(max_examples=40, deadline=None)

TRIANGLE = Polytope([[-1, 0], [0, -1], [1, 1]], [0, 0, 1])


def roundtrip(d: Domain) -> Domain:
    return Domain.from_json(json.loads(json.dumps(d.to_json())))


# ----------------------------------------------------------------------------- numbers


def test_numbers_are_taken_exactly():
    assert to_fraction("1/3") == F(1, 3)
    assert to_fraction(" -2/6 ") == F(-1, 3)
    assert to_fraction("0.25") == F(1, 4)
    assert to_fraction(0.1) == F(3602879701896397, 36028797018963968)  # the double, not 1/10
    assert to_fraction(0.1) != F(1, 10)
    assert to_fraction(np.float32(0.1)) == F(float(np.float32(0.1)))
    assert to_fraction(np.int64(7)) == 7
    assert to_fraction(torch.tensor(0.5)) == F(1, 2)
    assert to_fraction(10**40) == 10**40


@pytest.mark.parametrize(
    "value, words",
    [
        (float("nan"), "NaN"),
        (float("inf"), "inf"),
        (-math.inf, "inf"),
        (True, "boolean"),
        (np.bool_(False), "boolean"),
        ("one third", "not a number"),
        ("1/0", "zero denominator"),
        ("1e1000000000", "exponent"),
        ("1_000", "not a number"),
        (None, "NoneType"),
        ([1], "list"),
    ],
)
def test_bad_numbers_are_rejected_with_a_reason(value, words):
    with pytest.raises(InvalidInputError, match=words):
        to_fraction(value)


@pytest.mark.parametrize("make", [lambda: "1" * 1_000_001, lambda: 10 ** 1_000_001,
                                  lambda: F(1, 2 ** 3_400_000), lambda: "0." + "1" * 1_000_001],
                         ids=["long string", "huge int", "huge denominator", "long decimal"])
def test_numbers_over_a_million_digits_are_rejected(make):
    with pytest.raises(InvalidInputError, match="digits"):
        to_fraction(make())


def test_decimal_and_scientific_strings_are_exact():
    assert to_fraction("0.1") == F(1, 10) and to_fraction("-1.5e-3") == F(-3, 2000)
    assert to_fraction("1e1000") == 10 ** 1000 and to_fraction(" .5 ") == F(1, 2)
    assert to_fraction("1E+2") == 100 and to_fraction("3.") == 3


# ----------------------------------------------------------------------------- Box


def test_box_interface():
    box = Box([(-1, 1), ("1/3", 0.5), (0, 2)])
    assert box.dim == 3 and box.input_dim == 3 and box.is_bounded
    assert box.lower == (F(-1), F(1, 3), F(0)) and box.upper == (F(1), F(1, 2), F(2))
    assert box.volume() == 2 * F(1, 6) * 2
    verts = box.vertices()
    assert len(verts) == 8 and len(set(verts)) == 8
    assert set(verts) == set(itertools.product(*zip(box.lower, box.upper, strict=True)))
    A, b = box.halfspaces()
    for v in verts:
        assert all(sum(a * x for a, x in zip(row, v, strict=True)) <= bi
                   for row, bi in zip(A, b, strict=True))
        tight = sum(sum(a * x for a, x in zip(row, v, strict=True)) == bi
                    for row, bi in zip(A, b, strict=True))
        assert tight == 3
    fa, fb = box.float_halfspaces()
    assert fa.shape == (6, 3) and fb.shape == (6,) and fa.dtype == np.float64
    M, c = box.input_map()
    assert M == [[F(int(i == j)) for j in range(3)] for i in range(3)] and c == [0, 0, 0]
    fm, fc = box.float_input_map()
    assert fm.dtype == torch.float64 and torch.equal(fm, torch.eye(3, dtype=torch.float64))
    assert fc.shape == (3,)
    assert box.contains(box.interior_point()) and not box.contains([2, 0, 0])
    assert box.contains(box.vertices()[0])
    assert repr(box) == "Box([(-1, 1), (1/3, 1/2), (0, 2)])"


def test_box_from_numpy_and_torch_bounds():
    arr = np.array([[-1.0, 1.0], [0.0, 0.5]])
    assert Box(arr) == Box([(-1, 1), (0, "1/2")])
    assert as_domain(torch.tensor(arr)) == Box([(-1, 1), (0, "1/2")])


@SETTINGS
@given(
    st.lists(
        st.tuples(st.floats(-1e6, 1e6), st.floats(1e-9, 1e6)).map(lambda p: (p[0], p[0] + p[1])),
        min_size=1,
        max_size=4,
    )
)
def test_box_json_roundtrip_is_exact(pairs):
    pairs = [(lo, hi) for lo, hi in pairs if lo < hi]
    if not pairs:
        return
    box = Box(pairs)
    assert box.lower == tuple(F(lo) for lo, _ in pairs)
    again = roundtrip(box)
    assert again == box and hash(again) == hash(box)
    assert box.volume() == math.prod((F(hi) - F(lo) for lo, hi in pairs), start=F(1))


# ----------------------------------------------------------------------------- Polytope


def test_triangle_polytope():
    assert TRIANGLE.dim == 2 and TRIANGLE.is_bounded
    assert TRIANGLE.volume() == F(1, 2)
    assert TRIANGLE.vertices() == [(F(0), F(0)), (F(0), F(1)), (F(1), F(0))]
    ip = TRIANGLE.interior_point()
    assert ip[0] > 0 and ip[1] > 0 and ip[0] + ip[1] < 1
    assert roundtrip(TRIANGLE) == TRIANGLE
    assert TRIANGLE != Box([(0, 1), (0, 1)])
    assert "Polytope" in repr(TRIANGLE)


def test_polytope_in_3d_matches_box_volume_and_vertices():
    box = Box([(0, 1), (0, "1/2"), (-1, 1)])
    A, b = box.halfspaces()
    # add a redundant and a duplicated row
    poly = Polytope([*A, [1, 1, 1], [2, 0, 0]], [*b, 10, 2])
    assert poly.volume() == box.volume() == F(1)
    assert set(poly.vertices()) == set(box.vertices())


def test_polytope_simplex_volume_in_4d():
    A = [[-int(i == j) for j in range(4)] for i in range(4)] + [[1, 1, 1, 1]]
    assert Polytope(A, [0, 0, 0, 0, 3]).volume() == F(3**4, 24)


# ----------------------------------------------------------------------------- RealSpace


def test_realspace():
    r = RealSpace(3)
    assert r.dim == 3 and not r.is_bounded and r.halfspaces() == ([], [])
    fa, fb = r.float_halfspaces()
    assert fa.shape == (0, 3) and fb.shape == (0,)
    assert r.contains([10**9, -5, 0])
    with pytest.raises(InvalidInputError):
        r.vertices()
    with pytest.raises(InvalidInputError):
        r.volume()
    assert roundtrip(r) == r and r != RealSpace(2)


# ----------------------------------------------------------------------------- Polyhedron


def test_polyhedron():
    wedge = Polyhedron([[-1, 0], [1, -2]], [0, "1/2"])  # x >= 0, x - 2 y <= 1/2
    assert wedge.dim == 2 and not wedge.is_bounded
    assert wedge.halfspaces() == ([[F(-1), F(0)], [F(1), F(-2)]], [F(0), F(1, 2)])
    p = wedge.interior_point()
    assert -p[0] < 0 and p[0] - 2 * p[1] < F(1, 2)
    assert wedge.contains([10**9, 10**9]) and not wedge.contains([-1, 0])
    for method in (wedge.vertices, wedge.volume):
        with pytest.raises(InvalidInputError, match="unbounded"):
            method()
    assert roundtrip(wedge) == wedge and wedge != Polyhedron([[-1, 0]], [0])
    over = Slice([0, 0, 1], [[1, 0, 0], [0, 1, 1]], wedge)  # a slice over it
    assert not over.is_bounded and roundtrip(over) == over
    strip = Polyhedron(np.array([[0, 1], [0, -1]]), torch.tensor([1.0, 1.0]))
    assert strip.interior_point() == (F(0), F(0))


# ----------------------------------------------------------------------------- Slice


def test_plane_through_three_images_reproduces_them_exactly():
    g = torch.Generator().manual_seed(0)
    x0, x1, x2 = (torch.rand(1, 12, 12, generator=g) for _ in range(3))
    s = Slice.plane(x0, x1, x2)
    assert s.dim == 2 and s.input_dim == 144 and s.input_shape == (1, 12, 12)
    assert s.volume() == F(1, 2)  # the triangle in (t1, t2)
    assert sorted(s.vertices()) == [(0, 0), (0, 1), (1, 0)]
    M, c = s.input_map()
    for t, x in [((0, 0), x0), ((1, 0), x1), ((0, 1), x2)]:
        img = [sum((M[i][j] * t[j] for j in range(2)), c[i]) for i in range(144)]
        assert img == [F(v) for v in x.double().flatten().tolist()]
    fm, fc = s.float_input_map()
    assert fm.shape == (144, 2) and fc.shape == (144,) and fm.dtype == torch.float64
    assert torch.equal(fc, x0.double().flatten())
    assert roundtrip(s) == s


def test_slice_directions_are_exact_differences_not_float_differences():
    x0, x1 = np.array([0.1, 0.0]), np.array([1e17, 1.0])
    s = Slice.line(x0, x1)
    assert s.directions[0][0] == F(1e17) - F(0.1)
    assert float(1e17 - 0.1) == 1e17  # float subtraction would have lost the 0.1
    assert s.volume() == 1 and s.region == Box([(0, 1)])


def test_slice_bounds_override_and_general_constructor():
    s = Slice.plane([0, 0, 0], [1, 0, 0], [0, 1, 0], bounds=[(-1, 1), (0, 3)])
    assert s.region == Box([(-1, 1), (0, 3)]) and s.volume() == 6
    g = Slice([0, 0, 0], [[1, 0, 0], [0, 1, 0]], TRIANGLE)
    assert g.input_map() == Slice.plane([0, 0, 0], [1, 0, 0], [0, 1, 0]).input_map()
    u = Slice(np.zeros((2, 2)), np.stack([np.eye(2), np.ones((2, 2))]), [(0, 1), (0, 1)])
    assert u.input_shape == (2, 2) and u.dim == 2
    assert u.input_map()[0] == [[1, 1], [0, 1], [0, 1], [1, 1]]
    assert Slice.line([0, 0], [1, 1], bounds=RealSpace(1)).is_bounded is False


# ----------------------------------------------------------------------------- as_domain


def test_as_domain_coercions():
    assert as_domain([(-1, 1), (0, 1)]) == Box([(-1, 1), (0, 1)])
    assert as_domain(TRIANGLE) is TRIANGLE
    assert as_domain(None, input_dim=4) == RealSpace(4)
    assert as_domain(np.array([[0, 1]])) == Box([(0, 1)])
    s = Slice.line([0, 0, 0], [1, 1, 1])
    assert as_domain(s, input_dim=3) is s


INVALID = [
    ("box lo == hi", lambda: Box([(1, 1)]), "lo"),
    ("box lo > hi", lambda: Box([(0, 1), (2, -2)]), "coordinate 1"),
    ("box triple", lambda: Box([(0, 1, 2)]), "exactly"),
    ("box empty", lambda: Box([]), "at least one"),
    ("box nan", lambda: Box([(0, float("nan"))]), "NaN"),
    ("box inf", lambda: Box([(-math.inf, 0)]), "inf"),
    ("box bool", lambda: Box([(False, True)]), "boolean"),
    ("box bad string", lambda: Box([("zero", 1)]), "not a number"),
    ("box scalar pairs", lambda: Box([1, 2]), "pair"),
    ("box string", lambda: Box("0 1"), "pairs"),
    ("polytope unbounded", lambda: Polytope([[-1, 0], [0, -1]], [0, 0]), "unbounded"),
    ("polytope empty", lambda: Polytope([[1], [-1]], [0, -1]), "empty"),
    ("polytope flat", lambda: Polytope([[1, 0], [-1, 0], [0, 1], [0, -1]], [0, 0, 1, 1]),
     "full-dimensional"),
    ("polytope ragged", lambda: Polytope([[1, 0], [1]], [1, 1]), "rectangular"),
    ("polytope b length", lambda: Polytope([[1], [-1]], [1]), "b has 1"),
    ("polytope no rows", lambda: Polytope([], []), "no rows"),
    ("polytope nan", lambda: Polytope([[float("nan")]], [1]), "NaN"),
    ("polyhedron bounded", lambda: Polyhedron([[1], [-1]], [1, 1]), "use a Polytope"),
    ("polyhedron empty", lambda: Polyhedron([[1, 0], [-1, 0]], [0, -1]), "is empty$"),
    ("polyhedron flat", lambda: Polyhedron([[1, 0], [-1, 0]], [0, 0]), "full-dimensional"),
    ("polyhedron no rows", lambda: Polyhedron([], []), "no rows; a polyhedron"),
    ("polyhedron b length", lambda: Polyhedron([[1, 0]], [1, 2]), "b has 2"),
    ("polyhedron 11-D", lambda: Polyhedron([[1] * 11], [1]), "at most 10"),
    ("polyhedron many rays", lambda: Polyhedron([[1] * 9 + [0]] * 40, [1] * 40),
     "upper bound theorem"),
    ("realspace zero", lambda: RealSpace(0), "positive"),
    ("realspace huge", lambda: RealSpace(100_000), "at most 1024"),
    ("box 11-D", lambda: Box([(0, 1)] * 11), "at most 10"),
    ("box 100000-D", lambda: Box([(0, 1)] * 100_000), "at most 10"),
    ("box 60-D generator", lambda: Box((0, 1) for _ in range(60)), "at most 10"),
    ("box huge array", lambda: as_domain(np.zeros((100_000, 2))), "at most 10"),
    ("polytope 11-D", lambda: Polytope([[1] * 11], [1]), "at most 10"),
    ("polytope rows", lambda: Polytope([[1, 0]] * 257, [1] * 257), "at most 256"),
    ("polytope many vertices", lambda: Polytope([[1] * 10] * 30, [1] * 30), "upper bound theorem"),
    ("slice huge input", lambda: Slice.line(np.zeros(1 << 25, dtype=np.int8),
                                            np.ones(1 << 25, dtype=np.int8)), "limit"),
    ("realspace bool", lambda: RealSpace(True), "positive"),
    ("slice collinear", lambda: Slice.plane([0, 0], [1, 1], [2, 2]), "dependent"),
    ("slice equal points", lambda: Slice.line([0, 0], [0, 0]), "dependent"),
    ("slice shapes", lambda: Slice.line(np.zeros(3), np.zeros(4)), "shape"),
    ("slice region dim", lambda: Slice.line([0, 0], [1, 0], bounds=[(0, 1), (0, 1)]), "dimension"),
    ("slice inf origin", lambda: Slice.line([math.inf, 0], [1, 0]), "inf"),
    ("slice U size", lambda: Slice([0, 0, 0], [[1, 0]], [(0, 1)]), "entries"),
    ("slice scalar x0", lambda: Slice.line(1.0, 2.0), "scalar"),
    ("as_domain flat list", lambda: as_domain([-1, 1, -1, 1]), "flat list"),
    ("as_domain None no dim", lambda: as_domain(None), "input dimension"),
    ("as_domain wrong array", lambda: as_domain(np.zeros((2, 3))), "shape"),
    ("as_domain dim mismatch", lambda: as_domain([(0, 1)], input_dim=2), "model takes 2"),
    ("as_domain string", lambda: as_domain("[-1,1]"), "str"),
]


@pytest.mark.parametrize("make, words", [c[1:] for c in INVALID], ids=[c[0] for c in INVALID])
def test_invalid_domains_raise_invalid_input_error(make, words):
    with pytest.raises(InvalidInputError, match=words) as info:
        make()
    assert isinstance(info.value, ExactReluError) and isinstance(info.value, ValueError)
