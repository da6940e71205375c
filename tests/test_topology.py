"""Topology of decision regions and sublevel sets: known Betti numbers of hand-built sets, the
closure semantics, invariance under a finer cover of the same set, and grid connectivity."""

from __future__ import annotations

from fractions import Fraction as F

import pytest
import torch
from hypothesis import HealthCheck, given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import (
    InvalidInputError,
    decision_boundary,
    decision_region_topology,
    sublevel_topology,
    superlevel_topology,
)
from exactrelu.capture import capture
from exactrelu.strategies import boxes, networks

from constructions import diamond_tube, l1_shell, mlp, segments_meet

SQUARE = [(-1, 1), (-1, 1)]
CUBE = [(-1, 1)] * 3


def _cert(net: nn.Module, bounds: object) -> exactrelu.Certificate:
    return exactrelu.verify(net, bounds, progress=False)


# ------------------------------------------------------------------------- known sets
def test_annulus_has_one_component_and_one_hole() -> None:
    cert = _cert(l1_shell(2, 0.5), SQUARE)  # 1/4 <= |x| + |y| <= 3/4
    t = sublevel_topology(cert, F(1, 4))
    assert t.betti == (1, 1) and t.euler_characteristic == 0
    assert t.components == (tuple(range(cert.num_regions)),)  # every region meets the annulus
    # the complement: the inner diamond and the outer frame (which goes round the annulus)
    assert superlevel_topology(cert, F(1, 4)).betti == (2, 1)
    assert sublevel_topology(cert, F(1, 2)).betti == (1, 0)  # the whole square


def test_two_strips_are_two_components() -> None:
    net = mlp(([[1.0, 0.0], [-1.0, 0.0]], [0.0, 0.0]), ([[-1.0, -1.0]], [0.5]))  # 1/2 - |x|
    cert = _cert(net, SQUARE)
    t = sublevel_topology(cert, 0)  # |x| >= 1/2
    assert t.betti == (2, 0) and t.num_components == 2
    assert sublevel_topology(cert, F(-1, 2)).betti == (2, 0)  # the two edges x = -1 and x = 1
    assert sublevel_topology(cert, F(-3, 4)).betti == (0, 0)


def test_a_lower_dimensional_sublevel_set_is_kept() -> None:
    net = mlp(([[1.0, 0.0], [-1.0, 0.0]], [0.0, 0.0]), ([[1.0, 1.0]], [0.0]))  # |x|
    t = sublevel_topology(_cert(net, SQUARE), 0)  # the segment x = 0
    assert t.betti == (1, 0) and t.num_pieces == 2


def test_hollow_octahedron_has_a_cavity_and_a_solid_torus_a_loop() -> None:
    shell = sublevel_topology(_cert(l1_shell(3, 0.5), CUBE), F(1, 4))
    assert shell.betti == (1, 0, 1)
    torus = sublevel_topology(_cert(diamond_tube(), CUBE), F(1, 4))
    assert torus.betti == (1, 1, 0)


def test_decision_regions_of_an_annulus_classifier() -> None:
    # outputs (0, 1/4 - | |x|_1 - 1/2 |): class 1 on the annulus 1/4 < |x|_1 < 3/4
    net = mlp(([[1.0, 0], [-1, 0], [0, 1], [0, -1]], [0.0] * 4),
              ([[1.0] * 4, [-1.0] * 4], [-0.5, 0.5]),
              ([[0.0, 0.0], [-1.0, -1.0]], [0.0, 0.25]))
    cert = _cert(net, SQUARE)
    assert decision_region_topology(cert, 1).betti == (1, 1)
    assert decision_region_topology(cert, 0).betti == (2, 1)


def test_decision_regions_meeting_at_one_point_are_connected() -> None:
    # outputs (0, |x - y| - |x + y|): class 0 on the quadrants where x y > 0, class 1 where x y < 0
    net = mlp(([[1.0, -1.0], [-1.0, 1.0], [1.0, 1.0], [-1.0, -1.0]], [0.0] * 4),
              ([[0.0] * 4, [1.0, 1.0, -1.0, -1.0]], [0.0, 0.0]))
    cert = _cert(net, SQUARE)
    assert cert.num_regions == 4  # the wedges between the diagonals, each half class 0, half 1
    for cls in (0, 1):
        t = decision_region_topology(cert, cls)  # two closed squares touching at the origin
        assert t.betti == (1, 0) and t.components == ((0, 1, 2, 3),)
        halves = [decision_region_topology(_cert(net, [(0, 1), (0, 1)]), cls),
                  decision_region_topology(_cert(net, [(-1, 0), (0, 1)]), cls)]
        assert sorted(h.betti for h in halves) == [(0, 0), (1, 0)]  # one square or nothing


def test_bad_arguments_are_refused() -> None:
    cert = _cert(l1_shell(2, 0.5), SQUARE)
    with pytest.raises(InvalidInputError, match="cls"):
        decision_region_topology(cert, 1)
    with pytest.raises(InvalidInputError, match="output"):
        sublevel_topology(cert, 0, output=1)
    with pytest.raises(InvalidInputError, match="bounded"):
        sublevel_topology(_cert(l1_shell(2, 0.5), None), 0)


# ------------------------------------------------------------------------- generated networks
def _refined(net: nn.Sequential, w: list[float], b: float) -> nn.Sequential:
    """The same function with one more first-layer ReLU unit (weights ``w``, bias ``b``) whose
    output weight is 0: its hyperplane splits regions, the function and its sets are unchanged."""
    first, nxt = net[0], next(m for m in list(net)[1:] if isinstance(m, nn.Linear))
    wide = nn.Linear(first.in_features, first.out_features + 1, dtype=torch.float64)
    after = nn.Linear(nxt.in_features + 1, nxt.out_features, dtype=torch.float64)
    with torch.no_grad():
        wide.weight.copy_(torch.cat([first.weight.double(),
                                     torch.tensor([w], dtype=torch.float64)]))
        wide.bias.copy_(torch.cat([first.bias.double(), torch.tensor([b], dtype=torch.float64)]))
        after.weight.copy_(torch.cat([nxt.weight.double(), torch.zeros(nxt.out_features, 1)],
                                     dim=1))
        after.bias.copy_(nxt.bias.double())
    layers = list(net)
    layers[0], layers[layers.index(nxt)] = wide, after
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("d", [2, 3])
def test_betti_numbers_do_not_depend_on_the_cover(d: int) -> None:
    """Splitting regions by an extra unit that does not change the function changes the pieces
    and the nerve, never the Betti numbers (the nerve theorem holds for every cover)."""
    small = st.integers(-4, 4).map(lambda k: k / 4)

    @settings(max_examples=25 if d == 2 else 8, suppress_health_check=[HealthCheck.too_slow])
    @given(networks(input_dim=d, depth=1, widths=(2, 5 if d == 2 else 3), output_dim=2),
           st.lists(small, min_size=d, max_size=d).filter(any), small,
           st.sampled_from([0, F(1, 2), -1]))
    def run(net: nn.Sequential, w: list[float], b: float, value: F) -> None:
        box = [(-1, 1)] * d
        cert, finer = _cert(net, box), _cert(_refined(net, w, b), box)
        assert finer.num_regions >= cert.num_regions
        for f in (lambda c: sublevel_topology(c, value),
                  lambda c: superlevel_topology(c, value, output=1),
                  lambda c: decision_region_topology(c, 0),
                  lambda c: decision_region_topology(c, 1)):
            assert f(cert).betti == f(finer).betti

    run()


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(networks(input_dim=2, depth=(1, 2), widths=(2, 5), output_dim=3), boxes(2))
def test_grid_points_joined_inside_a_decision_region_share_a_component(net: nn.Module,
                                                                       box: exactrelu.Box) -> None:
    """The sound direction of a grid comparison: two neighbouring grid points of the same strict
    class c (a unique largest output) whose segment meets no cell of the certified decision
    boundary lie in one connected set inside the decision region of c, so in one component. (A
    grid can merge components joined only between its points, or miss small ones, so counts are
    not compared.) Every grid point of strict class c lies in a piece of c's region."""
    cert = _cert(net, box)
    cells = decision_boundary(cert).cells
    prog = capture(net, (2,))
    n = 10
    (x0, x1), (y0, y1) = zip(box.lower, box.upper, strict=True)
    grid = {(i, j): (x0 + (x1 - x0) * i / n, y0 + (y1 - y0) * j / n)
            for i in range(n + 1) for j in range(n + 1)}

    def region_of(t: tuple[F, F]) -> int:
        return next(r.index for r in cert.regions
                    if all(f.a[0] * t[0] + f.a[1] * t[1] <= f.b for f in r.facets))

    strict = {}
    for key, t in grid.items():
        out = prog.exact_forward(list(t))
        if out.count(max(out)) == 1:
            strict[key] = out.index(max(out))
    comp: dict[int, dict[int, int]] = {}
    for c in set(strict.values()):
        comp[c] = {r: k for k, members in enumerate(decision_region_topology(cert, c).components)
                   for r in members}
    for (i, j), c in strict.items():
        p = grid[(i, j)]
        assert region_of(p) in comp[c]
        for nb in ((i + 1, j), (i, j + 1)):
            if strict.get(nb) != c:
                continue
            q = grid[nb]
            if any(segments_meet(*cell.vertices, p, q) for cell in cells):
                continue
            assert comp[c][region_of(p)] == comp[c][region_of(q)]

