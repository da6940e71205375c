"""Decision boundaries and level sets: known exact measures, the tie rule, cells on facets, the
independent check (accepts generated complexes, rejects every tampered field) and grid
cross-checks."""

from __future__ import annotations

import dataclasses
from fractions import Fraction as F

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import (
    CertificateError,
    InvalidInputError,
    Measure,
    check_boundary,
    decision_boundary,
    level_set,
)
from exactrelu.capture import capture
from exactrelu.strategies import boxes, domains, networks

from constructions import (
    diamond_tube,
    l1_ball_classifier,
    linf_ball_classifier,
    mlp,
    ramp,
    segments_meet,
    three_classes,
)

SQUARE = [(-1, 1), (-1, 1)]
CUBE = [(-1, 1)] * 3


def _checked(net: nn.Module, bounds: object) -> exactrelu.Certificate:
    cert = exactrelu.verify(net, bounds, progress=False)
    return exactrelu.check(cert, net)


def _value(row: list[F], t: tuple[F, ...]) -> F:
    return sum((a * x for a, x in zip(row[:-1], t, strict=True)), F(0)) + row[-1]


# ------------------------------------------------------------------------- known exact measures
def test_measure_of_a_hyperplane_section_is_exact() -> None:
    from exactrelu._geometry import hyperplane_section

    cube_A = [[F(int(i == j) * s) for j in range(3)] for i in range(3) for s in (1, -1)]
    sec = hyperplane_section(cube_A, [F(1)] * 6, (F(1), F(1), F(1)), F(0))
    # a regular hexagon of side sqrt(2): area 3 sqrt(3), vertices the permutations of (1, -1, 0)
    assert sorted(sec.vertices) == sorted({(a, b, -a - b) for a in (-1, 0, 1) for b in (-1, 0, 1)
                                           if a != b and abs(a + b) <= 1 and (a, b) != (0, 0)})
    assert Measure.of_section(sec, (F(1), F(1), F(1))) == Measure(((3, F(3)),))
    assert hyperplane_section(cube_A, [F(1)] * 6, (F(1), F(1), F(1)), F(3)) is None  # a vertex only
    # the segment from (-1, 1) to (1, -1): 2 sqrt(2), the normal (2, 2) made primitive first
    edge = hyperplane_section([[F(1), F(0)], [F(-1), F(0)]], [F(1), F(1)], (F(2), F(2)), F(0))
    assert Measure.of_section(edge, (F(2), F(2))) == Measure(((2, F(2)),))
    assert str(Measure(((1, F(1, 2)), (12, F(3))))) == "1/2 + 3*sqrt(12)"


def test_square_boundary_has_perimeter_four() -> None:
    net = linf_ball_classifier(2, 0.5)
    cert = _checked(net, SQUARE)
    b = check_boundary(decision_boundary(cert), cert, net, certificate_checked=True)
    assert b.measure().rational == 4  # the square max(|x|, |y|) = 1/2, side 1
    for c in b.cells:
        assert all(max(abs(v[0]), abs(v[1])) == F(1, 2) for v in c.vertices)
        # class 1 inside: on the side of the hyperplane towards the origin
        inside = 0 if c.offset > 0 else 1
        assert c.sides[inside] == 1 and c.sides[1 - inside] == 0
    same = level_set(cert, 0, output=1)  # f1 = 1/2 - max(|x|, |y|) = 0: the same square
    assert same.measure() == b.measure() and len(same) == len(b)


def test_diamond_boundary_has_length_two_sqrt_two() -> None:
    net = l1_ball_classifier(2, 0.5)
    cert = _checked(net, SQUARE)
    b = check_boundary(decision_boundary(cert), cert, net, certificate_checked=True)
    assert b.measure() == Measure(((2, F(2)),))  # four edges of length sqrt(2)/2
    assert str(b.measure()) == "2*sqrt(2)" and abs(float(b.measure()) - 2 * 2 ** 0.5) < 1e-12
    assert sorted(map(sorted, b.segments())) == sorted(
        sorted(s) for s in [((F(1, 2), F(0)), (F(0), F(1, 2))),
                            ((F(0), F(1, 2)), (F(-1, 2), F(0))),
                            ((F(-1, 2), F(0)), (F(0), F(-1, 2))),
                            ((F(0), F(-1, 2)), (F(1, 2), F(0)))])


def test_cube_and_octahedron_surfaces_have_exact_areas() -> None:
    cube = linf_ball_classifier(3, 0.5)
    cert = _checked(cube, CUBE)
    b = check_boundary(decision_boundary(cert), cert, cube, certificate_checked=True)
    assert b.measure().rational == 6
    assert all(len(p) >= 3 for p in b.polygons())
    octa = l1_ball_classifier(3, 0.5)
    cert = _checked(octa, CUBE)
    b = check_boundary(decision_boundary(cert), cert, octa, certificate_checked=True)
    # eight equilateral triangles of side sqrt(2)/2: 8 * sqrt(3)/8
    assert b.measure() == Measure(((3, F(1)),)) and len(b) == 8


def test_level_set_of_a_solid_torus_has_its_exact_area() -> None:
    net = diamond_tube()
    cert = _checked(net, CUBE)
    lev = check_boundary(level_set(cert, F(1, 4)), cert, net, certificate_checked=True)
    # per quadrant: two faces of 5 sqrt(3)/32 (outer) and two of 3 sqrt(3)/32 (inner)
    assert lev.measure() == Measure(((3, F(2)),))
    assert all(c.sides in ((-1, 1), (1, -1)) for c in lev.cells)


def test_boundary_inside_regions_and_on_a_facet_is_listed_once() -> None:
    net = three_classes()
    cert = _checked(net, SQUARE)
    b = check_boundary(decision_boundary(cert), cert, net, certificate_checked=True)
    assert b.measure() == Measure(((1, F(11, 4)), (2, F(1, 2))))
    by_kind = {c.kind: c for c in b.cells}
    assert sorted(c.kind for c in b.cells) == ["facet", "interior", "interior"]
    facet = by_kind["facet"]
    assert facet.normal == (1, 0) and facet.offset == F(1, 4)
    assert facet.vertices == ((F(1, 4), F(-1)), (F(1, 4), F(1, 2))) and facet.sides == (0, 1)
    left, right = facet.regions  # the region below x = 1/4 first
    assert all(cert.vertices[k][0] <= F(1, 4) for k in cert.regions[left].vertices)
    assert all(cert.vertices[k][0] >= F(1, 4) for k in cert.regions[right].vertices)


def test_a_tie_on_a_whole_region_goes_to_the_first_class() -> None:
    # outputs (0, relu(x - 1/4)): on x < 1/4 both are 0, class 0 (torch.argmax's first index)
    net = ramp(0.25, [0.0, 1.0])
    cert = _checked(net, SQUARE)
    b = check_boundary(decision_boundary(cert), cert, net, certificate_checked=True)
    assert [(c.kind, c.sides, c.vertices) for c in b.cells] == [
        ("facet", (0, 1), ((F(1, 4), F(-1)), (F(1, 4), F(1))))]
    assert int(torch.tensor([0.0, 0.0]).argmax()) == 0
    # outputs (relu(x - 1/4), 0): class 0 everywhere (a tie on x < 1/4, a win on x > 1/4)
    net = ramp(0.25, [1.0, 0.0])
    cert = _checked(net, SQUARE)
    assert len(check_boundary(decision_boundary(cert), cert, net, certificate_checked=True)) == 0


def test_level_set_cells_on_facets_flat_regions_and_the_domain_boundary() -> None:
    net = ramp(0.25, [1.0])  # f = relu(x - 1/4): zero on a whole region
    cert = _checked(net, SQUARE)
    lev = check_boundary(level_set(cert, 0), cert, net, certificate_checked=True)
    flat = [r.index for r in cert.regions if all(v == 0 for v in r.output[0])]
    assert list(lev.flat_regions) == flat and len(flat) == 1
    assert [(c.kind, c.sides) for c in lev.cells] == [("facet", (0, 1))]
    lev = check_boundary(level_set(cert, 0.5), cert, net, certificate_checked=True)
    assert [(c.kind, c.sides, c.vertices) for c in lev.cells] == [
        ("interior", (-1, 1), ((F(3, 4), F(-1)), (F(3, 4), F(1))))]
    vee = mlp(([[1.0, 0.0], [-1.0, 0.0]], [-0.25, 0.25]), ([[1.0, 1.0]], [0.0]))  # |x - 1/4|
    cert = _checked(vee, SQUARE)
    lev = check_boundary(level_set(cert, 0), cert, vee, certificate_checked=True)
    assert [(c.kind, c.sides) for c in lev.cells] == [("facet", (1, 1))]  # f touches 0 there
    lin = mlp(([[1.0, 0.0]], [0.0]))  # f = x on [0, 1]^2: f = 0 on the domain's left side
    cert = _checked(lin, [(0, 1), (0, 1)])
    lev = check_boundary(level_set(cert, 0), cert, lin, certificate_checked=True)
    assert [(c.kind, c.sides, c.measure.rational) for c in lev.cells] == [("domain", (None, 1), 1)]
    assert len(level_set(cert, 2)) == 0


def test_one_dimensional_boundaries_are_points_counted_by_their_measure() -> None:
    # (0, |x| - 1/2)
    net = mlp(([[1.0], [-1.0]], [0.0, 0.0]), ([[0.0, 0.0], [1.0, 1.0]], [0.0, -0.5]))
    cert = _checked(net, [(-1, 1)])
    b = check_boundary(decision_boundary(cert), cert, net, certificate_checked=True)
    assert sorted(c.vertices for c in b.cells) == [((F(-1, 2),),), ((F(1, 2),),)]
    assert b.measure().rational == 2
    assert sorted(c.sides for c in b.cells) == [(0, 1), (1, 0)]


def test_bad_arguments_are_refused() -> None:
    net = l1_ball_classifier(2, 0.5)
    cert = exactrelu.verify(net, SQUARE, progress=False)
    with pytest.raises(InvalidInputError, match="output"):
        level_set(cert, 0, output=2)
    with pytest.raises(InvalidInputError, match="two or more outputs"):
        decision_boundary(exactrelu.verify(ramp(0.25, [1.0]), SQUARE, progress=False))
    with pytest.raises(InvalidInputError, match="bounded"):
        decision_boundary(exactrelu.verify(net, None, progress=False))
    with pytest.raises(InvalidInputError, match="value"):
        level_set(cert, "one half")


# ------------------------------------------------------------------------- tampering
@pytest.fixture(scope="module")
def three() -> tuple[nn.Module, exactrelu.Certificate, exactrelu.BoundaryComplex]:
    net = three_classes()
    cert = _checked(net, SQUARE)
    return net, cert, decision_boundary(cert)


def _cell(b: exactrelu.BoundaryComplex, kind: str) -> int:
    return next(i for i, c in enumerate(b.cells) if c.kind == kind)


def _with_cell(b: exactrelu.BoundaryComplex, i: int,
               **changes: object) -> exactrelu.BoundaryComplex:
    cells = list(b.cells)
    cells[i] = dataclasses.replace(cells[i], **changes)
    return dataclasses.replace(b, cells=tuple(cells))


def _tampered_cells(b: exactrelu.BoundaryComplex) -> list[tuple[exactrelu.BoundaryComplex, str]]:
    i, f = _cell(b, "interior"), _cell(b, "facet")
    ci, cf = b.cells[i], b.cells[f]
    moved = (cf.vertices[0], (cf.vertices[1][0], cf.vertices[1][1] - F(1, 8)))
    return [
        (dataclasses.replace(b, cells=b.cells[:f] + b.cells[f + 1:]), "missing cell"),
        (dataclasses.replace(b, cells=(*b.cells, cf)), "listed twice"),
        (_with_cell(b, f, regions=cf.regions[::-1]), "carry no cell"),
        (_with_cell(b, i, regions=(1 - ci.regions[0],)), "not those"),
        (_with_cell(b, f, normal=(F(2), F(0))), "hyperplane"),
        (_with_cell(b, f, offset=F(1, 3)), "hyperplane"),
        (_with_cell(b, f, sides=cf.sides[::-1]), "sides"),
        (_with_cell(b, i, sides=(ci.sides[0], 3)), "sides"),
        (_with_cell(b, f, vertices=moved), "vertices"),
        (_with_cell(b, f, vertices=(*cf.vertices, (F(1, 4), F(0)))), "vertices"),
        (_with_cell(b, f, vertices=cf.vertices[::-1]), "sorted"),
        (_with_cell(b, f, vertices=((0.25, -1.0), cf.vertices[1])), "exact"),
        (_with_cell(b, f, halfspaces=cf.halfspaces[:1]), "halfspaces"),
        (_with_cell(b, f, halfspaces=((cf.halfspaces[0][0], cf.halfspaces[0][1] + 1),
                                      *cf.halfspaces[1:])),
         "halfspaces"),
        (_with_cell(b, i, measure=ci.measure + Measure(((1, F(1, 100)),))), "measure"),
        (_with_cell(b, i, measure=F(1)), "Measure"),
        (_with_cell(b, i, regions=(7,)), "region indices"),
        (dataclasses.replace(b, kind="level"), "output"),
        (dataclasses.replace(b, kind="contour"), "kind"),
        (dataclasses.replace(b, dim=3), "dim"),
        (dataclasses.replace(b, num_outputs=2), "num_outputs"),
        (dataclasses.replace(b, digest="0" * 64), "digest"),
        (dataclasses.replace(b, flat_regions=(0,)), "flat regions"),
        (dataclasses.replace(b, cells=list(b.cells)), "cells"),
    ]


def test_check_rejects_every_tampered_field(three) -> None:
    net, cert, b = three
    assert check_boundary(b, cert, net) is b
    for bad, msg in _tampered_cells(b):
        with pytest.raises(CertificateError, match=msg):
            check_boundary(bad, cert, net, certificate_checked=True)


def test_check_rejects_tampered_level_set_fields() -> None:
    net = ramp(0.25, [1.0])
    cert = _checked(net, SQUARE)
    lev = level_set(cert, 0)
    check_boundary(lev, cert, net, certificate_checked=True)
    for bad, msg in [(dataclasses.replace(lev, value=F(1, 3)), "flat_regions"),
                     (dataclasses.replace(lev, value=0.5), "value"),
                     (dataclasses.replace(lev, output=1), "output"),
                     (dataclasses.replace(lev, flat_regions=()), "flat_regions"),
                     (dataclasses.replace(lev, kind="decision"), "decision boundary"),
                     (dataclasses.replace(lev, cells=lev.cells + lev.cells), "listed twice")]:
        with pytest.raises(CertificateError, match=msg):
            check_boundary(bad, cert, net, certificate_checked=True)


def test_check_rejects_a_certificate_whose_facets_do_not_close_a_region(three) -> None:
    net, cert, b = three
    bad = dataclasses.replace(cert, regions=[dataclasses.replace(r) for r in cert.regions])
    bad.regions[0].facets = bad.regions[0].facets[1:]
    with pytest.raises(CertificateError, match="do not cut out"):
        check_boundary(b, bad, net, certificate_checked=True)


def test_sides_are_evaluated_by_the_network_just_off_the_cell(three) -> None:
    from exactrelu.boundary_check import _check_sides, _decision_groups, _fq, _Reg

    net, cert, b = three
    f = _cell(b, "facet")
    wrong = dataclasses.replace(b.cells[f], sides=(0, 2))  # the derived sides are (0, 1)
    regs = [_Reg(cert, i, _decision_groups(cert, i), lambda k: tuple(map(_fq, cert.vertices[k])))
            for i in range(cert.num_regions)]
    _check_sides(f, b.cells[f], regs, capture(net, (2,)), cert, b)
    with pytest.raises(CertificateError, match="just off its upper side"):
        _check_sides(f, wrong, regs, capture(net, (2,)), cert, b)


# ------------------------------------------------------------------------- generated networks
@st.composite
def _tie_nets(draw: st.DrawFn, d: int, k: int) -> nn.Module:
    """Small nets with ties: small integer hidden weights, outputs that are sums of hidden units
    (so outputs tie on whole regions and switch across region facets)."""
    small = st.sampled_from([0.0, 1.0, -1.0, 0.5, -0.5])
    w = draw(st.integers(1, 4))
    layers = []
    n = d
    for _ in range(draw(st.integers(1, 2))):
        layers.append(([[draw(small) for _ in range(n)] for _ in range(w)],
                       [draw(small) for _ in range(w)]))
        n = w
    out = ([[draw(st.sampled_from([0.0, 1.0, -1.0])) for _ in range(n)] for _ in range(k)],
           [draw(st.sampled_from([0.0, 0.0, 0.5])) for _ in range(k)])
    return mlp(*layers, out)


def _nets(d: int) -> st.SearchStrategy[nn.Module]:
    return st.integers(2, 3).flatmap(lambda k: st.one_of(
        networks(input_dim=d, depth=(0, 2), widths=(1, 4 if d < 3 else 3), output_dim=k,
                 degenerate=True),
        networks(input_dim=d, depth=(1, 2), widths=(2, 5 if d < 3 else 3), output_dim=k),
        _tie_nets(d, k)))


@pytest.mark.parametrize("d", [1, 2, 3])
def test_check_accepts_generated_boundaries_and_level_sets(d: int) -> None:
    @settings(max_examples=25 if d < 3 else 10, suppress_health_check=[HealthCheck.too_slow])
    @given(_nets(d), domains(d), st.sampled_from([0, F(1, 2), -1]))
    def run(net: nn.Module, dom: exactrelu.Box, value: F) -> None:
        cert = _checked(net, dom)
        check_boundary(decision_boundary(cert), cert, net, certificate_checked=True)
        check_boundary(level_set(cert, value, output=1), cert, net, certificate_checked=True)

    run()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(_nets(2), boxes(2))
def test_every_grid_edge_between_two_classes_crosses_a_listed_cell(net: nn.Module,
                                                                  box: exactrelu.Box) -> None:
    """A grid edge whose ends have different strict classes (a unique largest output) meets the
    decision boundary: its ends lie in different decision regions only, and a segment covered by
    finitely many closed sets, none covering it alone, meets two of them. So each such edge must
    meet a listed cell (exact segment intersection). Each cell, a segment with extents dx, dy,
    meets at most dy/hy + 1 horizontal and dx/hx + 1 vertical grid lines, each in at most one
    grid edge, which bounds the number of crossing edges by its L1 length (+3 per cell)."""
    cert = _checked(net, box)
    cells = decision_boundary(cert).cells
    prog = capture(net, (2,))
    n = 12
    (x0, x1), (y0, y1) = zip(box.lower, box.upper, strict=True)
    hx, hy = (x1 - x0) / n, (y1 - y0) / n
    grid = {(i, j): (x0 + i * hx, y0 + j * hy) for i in range(n + 1) for j in range(n + 1)}
    strict = {}
    for key, t in grid.items():
        out = prog.exact_forward(list(t))
        top = max(out)
        if out.count(top) == 1:
            strict[key] = out.index(top)
    crossing = 0
    for (i, j), a in strict.items():
        for nb in ((i + 1, j), (i, j + 1)):
            b = strict.get(nb)
            if b is None or b == a:
                continue
            crossing += 1
            p, q = grid[(i, j)], grid[nb]
            assert any(segments_meet(c.vertices[0], c.vertices[1], p, q) for c in cells), (p, q)
    bound = sum(abs(c.vertices[1][0] - c.vertices[0][0]) / hx
                + abs(c.vertices[1][1] - c.vertices[0][1]) / hy + 3
                for c in cells)
    assert crossing <= bound


def test_plot_draws_the_certified_boundary(three) -> None:
    from exactrelu.plot import plot_regions

    _, cert, b = three
    fig = plot_regions(cert, color_by="class")
    found = [c for c in fig.axes[0].collections if c.get_gid() == "decision_boundary"]
    drawn = sorted(tuple(map(tuple, s.tolist())) for s in found[0].get_segments())
    assert drawn == sorted(tuple((float(x), float(y)) for x, y in s) for s in b.segments())
