"""Pictures and LaTeX of certificates: what is drawn is exactly what was certified."""

import re
from fractions import Fraction
from pathlib import Path

import matplotlib
import pytest
import torch
from matplotlib.figure import Figure
from torch import nn

import exactrelu
from exactrelu import ExactReluError, InvalidInputError, exact_forward
from exactrelu.boundary import class_cells
from exactrelu.plot import (
    kinks,
    plot_counts,
    plot_function_1d,
    plot_regions,
    plot_surface,
    region_polygon,
)

matplotlib.use("Agg")


def _value(row: list[Fraction], t: tuple[Fraction, ...]) -> Fraction:
    return sum((a * x for a, x in zip(row[:-1], t, strict=True)), Fraction(0)) + row[-1]


def _area(poly: list[tuple[Fraction, ...]]) -> Fraction:
    """Signed area (shoelace), exact."""
    return sum((p[0] * q[1] - q[0] * p[1] for p, q in zip(poly, poly[1:] + poly[:1], strict=True)),
               Fraction(0)) / 2


def _collection(fig: Figure, gid: str):
    found = [c for c in fig.axes[0].collections if c.get_gid() == gid]
    assert len(found) == 1, f"no single collection with gid {gid!r}"
    return found[0]


@pytest.fixture(scope="module")
def classifier() -> tuple[nn.Module, exactrelu.Certificate]:
    """A 2-8-3 classifier on [-1, 1]^2: a few dozen regions, three classes."""
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    return net, exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)


@pytest.fixture(scope="module")
def ramps() -> tuple[nn.Module, exactrelu.Certificate]:
    """relu(x - 1/4) - 2 relu(x - 1/2) + 0 relu(x - 3/4) on [0, 1]: 4 regions, 2 kinks."""
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(torch.tensor([-0.25, -0.5, -0.75]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0, 0.0]]))
        net[2].bias.fill_(0.5)
    return net, exactrelu.verify(net, [(0, 1)], progress=False)


def test_kinks_on_all_of_r_are_the_ramps_thresholds() -> None:
    # relu(x - 1/4) - 2 relu(x - 1/2) + relu(x + 3): kinks at -3, 1/4 and 1/2 (each unit's
    # output weight is non-zero), on R^1 where the end regions have rays
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.fill_(1.0)
        net[0].bias.copy_(torch.tensor([-0.25, -0.5, 3.0]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0, 1.0]]))
        net[2].bias.fill_(0.0)
    cert = exactrelu.verify(net, None, progress=False)
    assert cert.num_regions == 4 and not cert.domain.is_bounded
    assert kinks(cert) == [Fraction(-3), Fraction(1, 4), Fraction(1, 2)]
    line = exactrelu.verify(nn.Sequential(nn.Linear(1, 1)), None, progress=False)
    assert kinks(line) == [] and line.num_regions == 1


@pytest.mark.parametrize("domain", [None, exactrelu.Polyhedron([[-1, 0]], [0])])
def test_drawing_an_unbounded_domain_is_refused_by_name(domain) -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1))
    cert = exactrelu.verify(net, domain, progress=False)
    for draw, name in ((plot_regions, "plot_regions"), (plot_surface, "plot_surface")):
        with pytest.raises(InvalidInputError, match=f"^{name} draws certificates on a bounded"):
            draw(cert)
    one = exactrelu.verify(nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)), None,
                           progress=False)
    with pytest.raises(InvalidInputError, match=r"^plot_function_1d draws .* verify\(net"):
        plot_function_1d(one)


# --------------------------------------------------------------------------------- 2-D map
def test_plot_regions_fills_one_polygon_per_region(classifier, tmp_path: Path) -> None:
    _, cert = classifier
    path = tmp_path / "regions.png"
    fig = plot_regions(cert, path=path)
    assert len(_collection(fig, "regions").get_paths()) == cert.num_regions > 5
    assert len(_collection(fig, "regions").get_facecolors()) == cert.num_regions
    assert len(_collection(fig, "edges").get_segments()) == len(cert.edges())
    assert path.read_bytes()[:4] == b"\x89PNG" and path.stat().st_size > 1000


def test_an_axes_of_a_subfigure_draws_into_the_figure_holding_it(classifier, tmp_path) -> None:
    _, cert = classifier
    fig = Figure()
    ax = fig.subfigures(1, 2)[1].add_subplot()
    assert plot_regions(cert, ax=ax, path=tmp_path / "sub.png") is fig
    assert len(_collection(fig, "regions").get_paths()) == cert.num_regions
    assert (tmp_path / "sub.png").stat().st_size > 1000


def test_region_polygons_tile_the_domain_exactly(classifier) -> None:
    _, cert = classifier
    areas = [_area(region_polygon(cert, r)) for r in cert.regions]
    assert all(a > 0 for a in areas)  # counter-clockwise, non-degenerate
    assert sum(areas) == 4


def test_class_cells_tile_the_domain_and_carry_the_argmax(classifier) -> None:
    _, cert = classifier
    cells = class_cells(cert)
    assert all(_area(list(c.vertices)) > 0 for c in cells)  # counter-clockwise
    assert sum(_area(list(c.vertices)) for c in cells) == 4
    for c in cells:
        centre = tuple(sum(p[k] for p in c.vertices) / len(c.vertices) for k in range(2))
        vals = [_value(row, centre) for row in cert.regions[c.region].output]
        assert vals[c.label] == max(vals) and vals.index(max(vals)) == c.label
    fig = plot_regions(cert, color_by="class", level=0)
    assert len(_collection(fig, "classes").get_paths()) == len(cells)
    assert len(_collection(fig, "decision_boundary").get_segments()) == \
        len(exactrelu.decision_boundary(cert))
    assert len(_collection(fig, "level_set").get_segments()) == len(exactrelu.level_set(cert, 0))


def test_decision_boundary_lies_exactly_where_two_outputs_tie(classifier) -> None:
    net, cert = classifier
    cells = exactrelu.decision_boundary(cert).cells
    assert cells
    for c in cells:
        (p, q), (i, j), index = c.vertices, c.sides, c.regions[0]
        assert p != q and i != j
        for point in (p, q, ((p[0] + q[0]) / 2, (p[1] + q[1]) / 2)):
            vals = [_value(row, point) for row in cert.regions[index].output]
            assert vals[i] == vals[j] == max(vals)
            assert exact_forward(net, list(point), (2,)) == vals  # the net itself, exactly
            for r in c.regions:
                assert all(f.a[0] * point[0] + f.a[1] * point[1] <= f.b
                           for f in cert.regions[r].facets)


def test_plot_regions_by_output_has_a_colour_bar(classifier) -> None:
    _, cert = classifier
    fig = plot_regions(cert, color_by="output", output=2)
    assert len(fig.axes) == 2
    assert len(_collection(fig, "regions").get_array()) == cert.num_regions


# --------------------------------------------------------------------------------- 1-D
def test_plot_function_1d_marks_exactly_the_certified_kinks(ramps, tmp_path: Path) -> None:
    net, cert = ramps
    path = tmp_path / "f.png"
    fig = plot_function_1d(cert, net=net, path=path)
    interior = sorted(v[0] for v in cert.vertices if 0 < v[0] < 1)
    assert interior == [Fraction(1, 4), Fraction(1, 2), Fraction(3, 4)] and cert.num_regions == 4
    # the unit at 3/4 has output weight 0: a vertex (two regions) but no kink (one piece)
    assert kinks(cert) == [Fraction(1, 4), Fraction(1, 2)] and cert.num_pieces == 3
    marked = _collection(fig, "kinks").get_offsets()
    assert [tuple(m) for m in marked] == [(0.25, 0.5), (0.5, 0.75)]  # f(1/4), f(1/2)
    assert sorted(_collection(fig, "elbows").get_offsets()[:, 0].tolist()) == [0.25, 0.5, 0.75]
    assert path.stat().st_size > 1000


def test_kinks_of_a_generic_net_are_its_interior_vertices() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(), nn.Linear(12, 1))
    cert = exactrelu.verify(net, [(-2, 2)], progress=False)
    interior = sorted(v[0] for v in cert.vertices if -2 < v[0] < 2)
    assert kinks(cert) == interior and len(interior) == cert.num_regions - 1
    fig = plot_function_1d(cert, net=net)
    assert sorted(_collection(fig, "kinks").get_offsets()[:, 0].tolist()) == [float(k) for k in
                                                                            interior]


# --------------------------------------------------------------------------------- surface, counts
def test_plot_surface_draws_a_facet_per_region(classifier, tmp_path: Path) -> None:
    _, cert = classifier
    fig = plot_surface(cert, output=1, path=tmp_path / "s.png")
    assert isinstance(fig, Figure)
    faces = [c for c in fig.axes[0].collections if c.get_gid() == "regions"]
    assert len(faces) == 1 and len(faces[0].get_paths()) == cert.num_regions
    assert (tmp_path / "s.png").stat().st_size > 1000


def test_plot_counts_draws_each_series(tmp_path: Path) -> None:
    fig = plot_counts([0, 5, 10], {"a": [3, 4, 9], "b": [3, 3, 5]}, path=tmp_path / "c.png")
    assert [line.get_ydata().tolist() for line in fig.axes[0].lines] == [[3, 4, 9], [3, 3, 5]]
    assert (tmp_path / "c.png").stat().st_size > 1000


# --------------------------------------------------------------------------------- LaTeX
def test_to_latex_has_one_case_per_region_at_the_exact_breakpoints(ramps) -> None:
    _, cert = ramps
    tex = cert.to_latex()
    assert tex.startswith(r"f(x_{1}) = \begin{cases}") and tex.endswith(r"\end{cases}")
    cases = tex[tex.index(r"\begin{cases}") + len(r"\begin{cases}"):tex.index(r"\end{cases}")]
    cases = [c.strip() for c in cases.split(r" \\ ")]
    assert len(cases) == cert.num_regions == 4

    def number(s: str) -> Fraction:
        m = re.fullmatch(r"(-?)\\frac\{(\d+)\}\{(\d+)\}", s.strip())
        return Fraction(int(m[2]), int(m[3])) * (-1 if m[1] else 1) if m else Fraction(s.strip())

    bounds = [re.search(r"\\text\{if \} (.+?) \\le x_\{1\} \\le (.+)$", c).groups() for c in cases]
    assert [(number(a), number(b)) for a, b in bounds] == [
        (Fraction(0), Fraction(1, 4)), (Fraction(1, 4), Fraction(1, 2)),
        (Fraction(1, 2), Fraction(3, 4)), (Fraction(3, 4), Fraction(1))]
    values = [c.split(" & ")[0] for c in cases]  # 1/2 + relu(x - 1/4) - 2 relu(x - 1/2)
    assert values == [r"\frac{1}{2}", r"x_{1} + \frac{1}{4}", r"\frac{5}{4} - x_{1}",
                      r"\frac{5}{4} - x_{1}"]


def test_to_latex_refuses_too_many_regions(classifier) -> None:
    _, cert = classifier
    with pytest.raises(ExactReluError, match="max_regions"):
        cert.to_latex(max_regions=cert.num_regions - 1)
    assert cert.to_latex(output=0, max_regions=cert.num_regions).count(r"\text{if }") == \
        cert.num_regions


# --------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call", [
    lambda c1, c2: plot_regions(c1),
    lambda c1, c2: plot_surface(c1),
    lambda c1, c2: plot_function_1d(c2),
    lambda c1, c2: plot_regions(c2, color_by="colour"),
    lambda c1, c2: plot_regions(c2, color_by="output", output=3),
    lambda c1, c2: plot_counts([0, 1], [1, 2, 3]),
    lambda c1, c2: c2.to_latex(names=["x"]),
    lambda c1, c2: c2.to_latex(output=5),
    lambda c1, c2: plot_surface(c2, ax=Figure().add_subplot()),
], ids=["regions-1d", "surface-1d", "function-2d", "color_by", "output", "counts", "names",
        "latex-output", "surface-2d-axes"])
def test_bad_arguments_raise_invalid_input(call, classifier, ramps) -> None:
    with pytest.raises(InvalidInputError):
        call(ramps[1], classifier[1])
