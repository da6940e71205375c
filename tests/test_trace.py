"""The float tracer: counts against exact small cases and grid sampling, invariants of the trace."""

from __future__ import annotations

import itertools
from fractions import Fraction

import numpy as np
import pytest
import torch
from torch import nn

from exactrelu._progress import progress_bar
from exactrelu.capture import Program
from exactrelu.domain import Box, Polytope, RealSpace, Slice
from exactrelu.errors import InvalidInputError, RegionLimitError
from exactrelu.graphs import affine_maps
from exactrelu.rules import FloatMap
from exactrelu.trace import Trace, trace


def mlp(widths, seed, act=nn.ReLU, out=2):
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(widths[-1], out))
    return nn.Sequential(*layers).double().eval()


def set_linear(layer: nn.Linear, w, b) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(w, dtype=layer.weight.dtype))
        layer.bias.copy_(torch.tensor(b, dtype=layer.bias.dtype))


def flat_patterns(patterns) -> list[tuple[int, ...]]:
    n = patterns[0].shape[0]
    return [tuple(r) for r in torch.cat([p.reshape(n, -1) for p in patterns], 1).tolist()]


def patterns_at(prog: Program, X: torch.Tensor) -> list[tuple[int, ...]]:
    """Patterns at network inputs ``X`` (N, n_in) by a plain forward pass."""
    n = X.shape[0]
    m0 = FloatMap(X.new_zeros((n, 0, *prog.input_shape)), X.reshape(n, *prog.input_shape))
    _, found = prog.float_run(m0)
    return flat_patterns(found)


def inputs_of(tr: Trace, T: torch.Tensor) -> torch.Tensor:
    M, c = tr.domain.float_input_map()
    return T.to(torch.float64) @ M.T + c


def grid(box_bounds, n):
    axes = [torch.linspace(lo, hi, n, dtype=torch.float64) for lo, hi in box_bounds]
    return torch.cartesian_prod(*axes).reshape(-1, len(box_bounds))


def assert_interior_patterns(tr: Trace) -> None:
    got = patterns_at(tr.program, inputs_of(tr, tr.interior))
    assert got == flat_patterns(tr.patterns)


def assert_grid_lower_bound(tr: Trace, T: torch.Tensor) -> None:
    grid_pats = set(patterns_at(tr.program, inputs_of(tr, T)))
    traced = set(flat_patterns(tr.patterns))
    assert tr.num_regions >= len(grid_pats)
    assert grid_pats <= traced, f"{len(grid_pats - traced)} grid patterns missing from the trace"


# ----------------------------------------------------------------------------- 1-D, by hand


def test_1d_three_relus_give_four_intervals():
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    set_linear(net[0], [[1.0], [1.0], [-1.0]], [0.0, -0.5, 0.25])
    tr = trace(net, [(-1, 1)], progress=False)
    assert tr.num_regions == 4
    assert sorted(tr.vertices[:, 0].tolist()) == pytest.approx([-1, 0, 0.25, 0.5, 1])
    assert len(tr.edges) == 4
    assert_interior_patterns(tr)


def test_1d_hidden_layer_elbow_inside_counts_and_outside_does_not():
    net = nn.Sequential(nn.Linear(1, 1), nn.ReLU(), nn.Linear(1, 2), nn.ReLU(),
                        nn.Linear(2, 1)).double()
    set_linear(net[0], [[1.0]], [0.0])
    # elbows at x = 0.5 (inside) and x = 2 (outside)
    set_linear(net[2], [[1.0], [1.0]], [-0.5, -2.0])
    tr = trace(net, [(-1, 1)], progress=False)
    assert tr.num_regions == 3
    assert sorted(tr.vertices[:, 0].tolist()) == pytest.approx([-1, 0, 0.5, 1])
    assert_interior_patterns(tr)


def test_1d_interval_outside_every_breakpoint_is_one_region():
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    set_linear(net[0], [[1.0], [2.0]], [-3.0, -5.0])
    tr = trace(net, [(-1, 1)], progress=False)
    assert tr.num_regions == 1
    assert tr.patterns[0].tolist() == [[0, 0]]


# ----------------------------------------------------------------------------- 2-D arrangements


def exact_arrangement_count(W: torch.Tensor, b: torch.Tensor, lo: Fraction, hi: Fraction) -> int:
    """Regions of a line arrangement inside the open square (lo, hi)^2, in exact arithmetic:
    1 + lines meeting the open square + pairwise intersections strictly inside (general
    position)."""
    W, b = W.detach(), b.detach()
    lines = [(Fraction(float(w[0])), Fraction(float(w[1])), Fraction(float(c)))
             for w, c in zip(W, b, strict=True)]
    corners = list(itertools.product([lo, hi], repeat=2))
    meeting = [ln for ln in lines
               if min(ln[0] * x + ln[1] * y + ln[2] for x, y in corners) < 0
               < max(ln[0] * x + ln[1] * y + ln[2] for x, y in corners)]
    inside = 0
    for (a1, b1, c1), (a2, b2, c2) in itertools.combinations(lines, 2):
        det = a1 * b2 - a2 * b1
        if det == 0:
            continue
        x = (-c1 * b2 + c2 * b1) / det
        y = (-a1 * c2 + a2 * c1) / det
        inside += lo < x < hi and lo < y < hi
    return 1 + len(meeting) + inside


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
@pytest.mark.parametrize("width", [5, 12, 30])
def test_2d_one_hidden_layer_matches_exact_line_arrangement(seed, width):
    net = mlp((2, width), seed)
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    expected = exact_arrangement_count(net[0].weight, net[0].bias, Fraction(-1), Fraction(1))
    assert tr.num_regions == expected
    assert_interior_patterns(tr)


@pytest.mark.parametrize("widths,seed", [((2, 8, 8), 0), ((2, 16, 16, 16), 1), ((2, 24, 12), 2)])
def test_2d_deep_nets_never_below_grid_count(widths, seed):
    net = mlp(widths, seed)
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    assert_grid_lower_bound(tr, grid([(-1, 1), (-1, 1)], 300))
    assert_interior_patterns(tr)
    assert len(set(tr.packed_patterns())) == tr.num_regions


@pytest.mark.parametrize("widths,seed", [((2, 10), 4), ((2, 8, 8), 5), ((2, 16, 16, 16), 6)])
def test_2d_euler_characteristic_of_the_box_complex(widths, seed):
    tr = trace(mlp(widths, seed), [(-1, 2), (-0.5, 1)], progress=False)
    assert tr.num_vertices - len(tr.edges) + tr.num_regions == 1


@pytest.mark.parametrize("seed", [0, 1])
def test_wide_2d_net_shares_every_crossing_vertex(seed):
    # regions are split in many orders at once (each by its own next function); an edge crossed
    # in one step must get the same vertex in a neighbour split at a later step
    tr = trace(mlp((2, 48, 48, 48), seed), [(-1, 1), (-1, 1)], progress=False)
    assert tr.num_vertices - len(tr.edges) + tr.num_regions == 1
    V = tr.vertices
    order = torch.argsort(V[:, 0] * 1e6 + V[:, 1])
    gaps = (V[order][1:] - V[order][:-1]).abs().amax(1)
    assert float(gaps.min()) > 1e-12  # no point appears under two vertex ids
    counts = tr.region_vertex_offsets[1:] - tr.region_vertex_offsets[:-1]
    assert int(counts.min()) >= 3
    assert len(set(tr.packed_patterns())) == tr.num_regions


@pytest.mark.parametrize("d", [2, 3])
def test_int32_tight_ids_give_the_same_trace_as_int16(d, monkeypatch):
    # tight ids are int16 when every constraint id fits, else int32: both give one trace
    import exactrelu.trace as trace_mod

    net = mlp((d, 24, 24), 3)
    box = [(-1, 1)] * d
    a = trace(net, box, progress=False)
    monkeypatch.setattr(trace_mod, "_INT16_IDS", 0)
    b = trace(net, box, progress=False)
    assert a.num_regions == b.num_regions
    for k in ("vertices", "edges", "region_vertex_ids", "bounding_ids", "vertex_tight_offsets",
              "vertex_tight_ids"):
        assert torch.equal(getattr(a, k), getattr(b, k)), k
    assert all(torch.equal(p, q) for p, q in zip(a.patterns, b.patterns, strict=True))
    assert a.vertex_tight_ids.dtype == b.vertex_tight_ids.dtype == torch.int64


def test_2d_region_vertices_satisfy_the_region_constraints():
    net = mlp((2, 12, 12), 7)
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    prog = tr.program
    # every vertex of a region lies in its closure: switching functions have the region's sign
    off, ids = tr.region_vertices
    collect: list = []
    for r in range(0, tr.num_regions, max(1, tr.num_regions // 40)):
        vs = tr.vertices[ids[off[r]:off[r + 1]]]
        n = len(vs)
        states = [p[r:r + 1].expand(n, *p.shape[1:]) for p in tr.patterns]
        m0 = FloatMap(vs.new_zeros((n, 0, 2)), vs)
        collect.clear()
        prog.float_run(m0, states=states, collect=collect)
        for j, sw in enumerate(collect):
            st = tr.patterns[j][r].reshape(-1)
            sign = torch.where(st > 0, 1.0, -1.0).double()
            assert ((sw.b * sign) >= -1e-9).all()


@pytest.mark.parametrize("k", [3, 5, 8])
def test_lines_through_one_point_give_2k_regions(k):
    # degenerate on purpose: every hyperplane passes through the origin
    torch.manual_seed(k)
    net = nn.Sequential(nn.Linear(2, k, bias=False), nn.ReLU(), nn.Linear(k, 1)).double()
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    assert tr.num_regions == 2 * k
    assert tr.num_vertices - len(tr.edges) + tr.num_regions == 1
    assert_interior_patterns(tr)


@pytest.mark.parametrize("k", [3, 5, 8])
def test_central_planes_in_3d_give_k_k_minus_1_plus_2_regions(k):
    torch.manual_seed(k)
    net = nn.Sequential(nn.Linear(3, k, bias=False), nn.ReLU(), nn.Linear(k, 1)).double()
    tr = trace(net, [(-1, 1)] * 3, progress=False)
    assert tr.num_regions == k * (k - 1) + 2
    assert_interior_patterns(tr)


def test_bias_free_deep_net_many_hyperplanes_through_the_origin():
    torch.manual_seed(8)
    net = nn.Sequential(nn.Linear(2, 8, bias=False), nn.ReLU(), nn.Linear(8, 8, bias=False),
                        nn.ReLU(), nn.Linear(8, 1)).double()
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    assert_interior_patterns(tr)
    assert_grid_lower_bound(tr, grid([(-1, 1), (-1, 1)], 301))
    assert len(tr.uncertain.near_zero) > 0  # the origin is handed to the exact layer
    assert len(tr.uncertain.overflow) == 0


@pytest.mark.parametrize("seed", range(12))
def test_random_small_nets_and_boxes(seed):
    rnd = np.random.default_rng(seed)
    d = int(rnd.integers(1, 4))
    widths = tuple([d] + [int(rnd.integers(2, 10)) for _ in range(int(rnd.integers(1, 4)))])
    act = [nn.ReLU, lambda: nn.LeakyReLU(0.2), lambda: nn.Hardtanh(-0.5, 0.5)][seed % 3]
    net = mlp(widths, seed, act=act)
    bounds = [(-float(rnd.uniform(0.2, 2)), float(rnd.uniform(0.2, 2))) for _ in range(d)]
    tr = trace(net, bounds, progress=False)
    assert_interior_patterns(tr)
    assert_grid_lower_bound(tr, grid(bounds, {1: 5000, 2: 150, 3: 30}[d]))
    if d == 2:
        assert tr.num_vertices - len(tr.edges) + tr.num_regions == 1


def test_network_without_piecewise_ops_is_one_region():
    tr = trace(nn.Sequential(nn.Linear(2, 3)).double(), [(-1, 1), (-1, 1)], progress=False)
    assert tr.num_regions == 1 and tr.packed_patterns() == [b""]
    assert tr.output_weight.shape == (1, 3, 2)


# ----------------------------------------------------------------------------- 3-D and higher


@pytest.mark.parametrize("widths,seed", [((3, 6, 6), 0), ((3, 10), 1)])
def test_3d_never_below_grid_count(widths, seed):
    tr = trace(mlp(widths, seed), [(-1, 1)] * 3, progress=False)
    assert_grid_lower_bound(tr, grid([(-1, 1)] * 3, 45))
    assert_interior_patterns(tr)


@pytest.mark.parametrize("d", [4, 5, 6])
def test_higher_dimensions_interior_points_have_their_patterns(d):
    tr = trace(mlp((d, 5, 4), d), [(-1, 1)] * d, progress=False)
    assert tr.num_regions > 1
    assert_interior_patterns(tr)
    T = torch.rand(4000, d, generator=torch.Generator().manual_seed(d), dtype=torch.float64) * 2 - 1
    assert_grid_lower_bound(tr, T)


def test_polytope_domain_triangle():
    net = mlp((2, 10, 6), 3)
    tri = Polytope([[-1, 0], [0, -1], [1, 1]], [0, 0, 1])
    tr = trace(net, tri, progress=False)
    assert_interior_patterns(tr)
    T = grid([(0, 1), (0, 1)], 250)
    T = T[T.sum(1) <= 1]
    assert_grid_lower_bound(tr, T)
    assert (tr.interior >= 0).all() and (tr.interior.sum(1) <= 1).all()


# ----------------------------------------------------------------------------- other layers


@pytest.mark.parametrize("act", [lambda: nn.Hardtanh(-0.3, 0.4), lambda: nn.LeakyReLU(0.1)])
def test_hardtanh_and_leaky_relu_nets(act):
    net = mlp((2, 10, 10), 8, act=act)
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    assert_grid_lower_bound(tr, grid([(-1, 1), (-1, 1)], 300))
    assert_interior_patterns(tr)
    assert tr.num_vertices - len(tr.edges) + tr.num_regions == 1


def conv_net(pool: bool, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    layers: list[nn.Module] = [nn.Conv2d(1, 2, 3), nn.ReLU()]
    if pool:
        layers.append(nn.MaxPool2d(2))
        layers += [nn.Flatten(), nn.Linear(2 * 2 * 2, 3), nn.ReLU(), nn.Linear(3, 2)]
    else:
        layers += [nn.Flatten(), nn.Linear(2 * 4 * 4, 3), nn.ReLU(), nn.Linear(3, 2)]
    return nn.Sequential(*layers).double().eval()


def three_images(seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn((1, 6, 6), generator=g, dtype=torch.float64) for _ in range(3)]


def triangle_grid(n: int) -> torch.Tensor:
    T = grid([(0, 1), (0, 1)], n)
    return T[T.sum(1) <= 1]


def test_slice_plane_through_three_inputs_of_a_conv_net():
    net = conv_net(pool=False)
    dom = Slice.plane(*three_images())
    tr = trace(net, dom, progress=False)
    assert tr.num_regions > 3
    assert_interior_patterns(tr)
    assert_grid_lower_bound(tr, triangle_grid(200))


def test_maxpool_net_on_a_slice_merges_sub_cells_and_keeps_patterns():
    net = conv_net(pool=True, seed=1)
    dom = Slice.plane(*three_images(1), bounds=[(-1, 2), (-1, 2)])
    tr = trace(net, dom, progress=False)
    assert tr.num_regions > 3
    assert len(set(tr.packed_patterns())) == tr.num_regions
    assert_interior_patterns(tr)
    assert_grid_lower_bound(tr, grid([(-1, 2), (-1, 2)], 200))


# ----------------------------------------------------------------------------- the trace itself


def test_output_maps_match_the_network_at_interior_points():
    net = mlp((2, 8, 8), 9)
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    y = net(tr.interior)
    pred = (tr.output_weight * tr.interior[:, None, :]).sum(-1) + tr.output_bias
    assert torch.allclose(pred, y, atol=1e-10)
    ref = affine_maps(net, tr.interior)
    assert torch.allclose(tr.output_weight, ref.weight, atol=1e-12)


def test_bounding_and_tight_ids_use_the_documented_scheme():
    net = mlp((2, 6, 5), 10)
    tr = trace(net, Box([(-1, 1), (-1, 1)]), progress=False)
    assert tr.constraint_offsets == [4, 10, 15]
    off, ids = tr.bounding
    assert len(off) == tr.num_regions + 1 and int(off[-1]) == len(ids)
    assert ids.min() >= 0 and ids.max() < 15
    voff, vids = tr.vertex_tight
    assert len(voff) == tr.num_vertices + 1
    # a box corner is tight on exactly its two box rows
    at_corner = (tr.vertices - torch.tensor([1.0, 1.0], dtype=torch.float64)).abs().sum(1) < 1e-12
    corner = int(at_corner.nonzero())
    assert sorted(vids[voff[corner]:voff[corner + 1]].tolist()) == [0, 2]


def test_max_regions_raises_with_the_count_found_so_far():
    net = mlp((2, 32, 32), 11)
    with pytest.raises(RegionLimitError) as err:
        trace(net, [(-1, 1), (-1, 1)], progress=False, max_regions=50)
    assert err.value.found > 50
    assert "max_regions" in str(err.value)


def test_vanishing_unit_is_reported_not_split():
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1), nn.ReLU(),
                        nn.Linear(1, 1)).double()
    set_linear(net[0], [[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    set_linear(net[2], [[1.0, -1.0]], [0.0])  # zero wherever both hidden units are off
    tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    assert_interior_patterns(tr)
    assert len(tr.uncertain.vanishing) >= 1
    assert set(tr.uncertain.vanishing[:, 1].tolist()) == {tr.constraint_offsets[1]}


def test_float32_runs():
    tr = trace(mlp((2, 8), 12), [(-1, 1), (-1, 1)], progress=False, dtype=torch.float32)
    first = mlp((2, 8), 12)[0]
    assert tr.num_regions == exact_arrangement_count(first.weight, first.bias, Fraction(-1),
                                                     Fraction(1))


@pytest.mark.parametrize("bad,kw", [
    (RealSpace(2), {}),
    ([(-1, 1)] * 3, {}),
    ([(-1, 1)] * 2, {"max_regions": 0}),
    ([(-1, 1)] * 2, {"dtype": torch.int64}),
])
def test_invalid_arguments_raise(bad, kw):
    with pytest.raises(InvalidInputError):
        trace(mlp((2, 4), 0), bad, progress=False, **kw)


def test_progress_bar_is_silent_when_disabled_or_not_a_terminal(capsys):
    with progress_bar(5, "x", enabled=True) as bar:  # pytest's stderr is not a terminal
        bar.update(5)
    assert capsys.readouterr().err == ""
    trace(mlp((2, 4), 0), [(-1, 1)] * 2, progress=True)
    assert capsys.readouterr().err == ""


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cpu_and_cuda_give_the_same_regions():
    net = mlp((2, 16, 16), 13)
    a = trace(net, [(-1, 1), (-1, 1)], progress=False, device="cpu")
    b = trace(net.to("cuda"), [(-1, 1), (-1, 1)], progress=False, device="cuda")
    assert a.num_regions == b.num_regions
    assert set(a.packed_patterns()) == set(b.packed_patterns())


def test_trace_is_bit_reproducible_with_two_threads():
    """Values at a vertex are read off one cell holding it; which cell must not depend on thread
    timing (an indexed assignment with repeated indices gave a different float trace almost every
    run of this net with two threads)."""
    torch.manual_seed(5)
    layers = [nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 64),
              nn.ReLU(), nn.Linear(64, 2)]
    net = nn.Sequential(*layers).eval()
    was = torch.get_num_threads()

    def fingerprint() -> bytes:
        tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
        return b"".join(t.numpy().tobytes()
                        for t in (tr.vertices, tr.interior, tr.output_weight, tr.output_bias))

    try:
        torch.set_num_threads(1)
        serial = fingerprint()
        torch.set_num_threads(2)
        assert all(fingerprint() == serial for _ in range(3))
    finally:
        torch.set_num_threads(was)


# ---------------------------------------------------------------------------- large-trace machinery


def _spy(monkeypatch, cls, name, record):
    """Wrap method ``name`` of ``cls`` so that every call appends ``record(self, *args)``."""
    orig = getattr(cls, name)

    def wrapped(self, *args):
        out = orig(self, *args)
        record(self, *args)
        return out
    monkeypatch.setattr(cls, name, wrapped)


@pytest.mark.parametrize("widths,seed,act", [
    ((2, 20, 20, 20), 1, nn.ReLU),
    ((2, 12, 12, 12, 12), 2, lambda: nn.LeakyReLU(0.1)),
    ((2, 10, 10, 10), 3, lambda: nn.Hardtanh(-0.3, 0.4)),
])
def test_a_trace_in_chunks_and_blocks_is_the_same_complex(widths, seed, act, monkeypatch):
    # large traces split each op in chunks of start cells (vertices and edges on chunk borders
    # decided once) and, where a chunk would explode, take the functions in blocks
    import exactrelu.trace as trace_mod

    net = mlp(widths, seed, act=act)
    box = [(-1, 1), (-1, 1)]
    whole = trace(net, box, progress=False)
    chunks, blocks = [], []
    _spy(monkeypatch, trace_mod._Chunk, "run", lambda ch, *a: chunks.append(ch.op.j))
    _spy(monkeypatch, trace_mod._Chunk, "_block", lambda ch, s0, *a: blocks.append(s0))
    monkeypatch.setattr(trace_mod, "_CHUNK", 600)
    monkeypatch.setattr(trace_mod, "_BLOCK", 900)
    tr = trace(net, box, progress=False)
    assert len(chunks) > 2 * len(widths) and max(blocks) > 0  # both really happened
    assert tr.num_regions == whole.num_regions and tr.num_vertices == whole.num_vertices
    assert set(tr.packed_patterns()) == set(whole.packed_patterns())
    assert tr.num_vertices - len(tr.edges) + tr.num_regions == 1
    V = tr.vertices
    order = torch.argsort(V[:, 0] * 1e6 + V[:, 1])
    assert float((V[order][1:] - V[order][:-1]).abs().amax(1).min()) > 1e-12
    assert_interior_patterns(tr)
    assert_grid_lower_bound(tr, grid(box, 200))


@pytest.mark.parametrize("block", [1 << 24, 1500])
def test_values_derived_from_earlier_ops_equal_the_forward_pass(block, monkeypatch):
    # a vertex the previous op made gets its values from the two ends of its edge and the few
    # outputs that change along it; older vertices through one layer from the op before: both
    # must be the plain forward pass at the vertex, up to rounding
    import exactrelu.trace as trace_mod

    seen = []

    def compare(ch, vals):
        if ch.op.prev is not None:
            ref = ch.tr.switch_values(ch.op.j, ch.V[:ch.nV])
            scale = (ch.op.tol / ch.tr.eps).clamp(min=1e-300)
            seen.append((ch.op.prev2 is not None, float(((vals - ref).abs() / scale).max())))

    _spy(monkeypatch, trace_mod._Chunk, "_start_values", compare)
    monkeypatch.setattr(trace_mod, "_BLOCK", block)
    monkeypatch.setattr(trace_mod, "_DELTAS", 0)  # (16 units: kept only when asked to)
    for act in (nn.ReLU, lambda: nn.LeakyReLU(0.2), lambda: nn.Hardtanh(-0.3, 0.4),
                lambda: nn.PReLU(16, 0.3)):  # (PReLU: one slope per unit)
        trace(mlp((2, 16, 16, 16, 16), 4, act=act), [(-1, 1)] * 2, progress=False)
    assert len(seen) >= 9 and any(two for two, _ in seen)
    assert max(err for _, err in seen) < 1e-11


@pytest.mark.parametrize("act", [nn.ReLU, lambda: nn.LeakyReLU(0.2),
                                 lambda: nn.Hardtanh(-0.3, 0.4)])
def test_small_ops_take_the_forward_pass_and_find_the_same_regions(act, monkeypatch):
    # below _DELTAS an op keeps no deltas (the next op's values come from the forward pass):
    # the same regions as with the deltas kept, and the forward pass really taken
    import exactrelu.trace as trace_mod

    net = mlp((2, 16, 16, 16), 5, act=act)
    kept = []
    _spy(monkeypatch, trace_mod._Chunk, "_start_values",
         lambda ch, vals: kept.append(ch.op.prev is not None))
    small = trace(net, [(-1, 1)] * 2, progress=False)
    assert kept and not any(kept)
    kept.clear()
    monkeypatch.setattr(trace_mod, "_DELTAS", 0)
    derived = trace(net, [(-1, 1)] * 2, progress=False)
    assert any(kept)
    assert small.num_regions == derived.num_regions > 50
    assert set(small.packed_patterns()) == set(derived.packed_patterns())
    assert_interior_patterns(small)


@pytest.mark.parametrize("act", [nn.ReLU, lambda: nn.LeakyReLU(0.2),
                                 lambda: nn.Hardtanh(-0.3, 0.4)])
def test_values_of_nearby_points_from_few_features_equal_the_forward_pass(act, monkeypatch):
    # values at a chunk's older vertices (and at vertices whose edge ends are elsewhere) come
    # from an affine map of t and the outputs of the few units whose state varies among nearby
    # points: they must be the plain forward pass, up to rounding, and the groups must really
    # have been computed that way (not all handed back to the forward pass)
    import exactrelu.trace as trace_mod

    seen, local = [], []
    orig = trace_mod._Tracer.local_values

    def wrapped(tr, j, T, tol, out, rows, below=None):
        orig(tr, j, T, tol, out, rows, below)
        ref = tr.switch_values(j, T)
        scale = (tol / tr.eps).clamp(min=1e-300)
        seen.append((below is not None,
                     float(((out.index_select(0, rows) - ref).abs() / scale).max())))

    groups = trace_mod._Tracer._groups

    def counted(tr, *args):
        done = groups(tr, *args)
        local.extend(done)
        return done

    monkeypatch.setattr(trace_mod._Tracer, "local_values", wrapped)
    monkeypatch.setattr(trace_mod._Tracer, "_groups", counted)
    trace(mlp((2, 128, 128, 128), 3, act=act), [(-1, 1)] * 2, progress=False)
    assert any(below for below, _ in seen) and any(not below for below, _ in seen)
    assert sum(local) > 10
    assert max(err for _, err in seen) < 1e-11


def test_nearby_values_go_to_the_forward_pass_when_the_check_fails():
    # with a zero tolerance the check at each group's reference point fails unless the two agree
    # to the last bit: then the values are those of the forward pass itself
    import exactrelu.trace as trace_mod

    net = mlp((2, 128, 128, 128), 3)
    tr = trace_mod._Tracer(trace_mod.capture(net, (2,)), trace_mod.as_domain([(-1, 1)] * 2),
                           torch.device("cpu"), torch.float64, None, trace_mod._Threads(
                               torch.device("cpu")))
    assert tr.local(2) and tr.local(1)
    g = torch.Generator().manual_seed(0)
    T = 0.05 * torch.rand((300, 2), generator=g, dtype=torch.float64) + 0.3
    below = tr.switch_values(1, T)
    S = tr.prog.num_switching(2)
    rows = torch.randperm(len(T), generator=g)
    loose, strict = T.new_zeros((len(T), S)), T.new_zeros((len(T), S))
    tr.local_values(2, T, torch.full((S,), 1e-3, dtype=torch.float64), loose, rows, below)
    tr.local_values(2, T, torch.zeros(S, dtype=torch.float64), strict, rows, below)
    loose, strict = loose.index_select(0, rows), strict.index_select(0, rows)
    assert torch.equal(strict, tr.layer(2, below))
    assert not torch.equal(loose, strict)  # (the loose one really was computed the other way)
    assert float((loose - strict).abs().max()) < 1e-9


def test_a_trace_with_values_of_nearby_points_is_the_same_as_by_the_forward_pass(monkeypatch):
    import exactrelu.trace as trace_mod

    net = mlp((2, 128, 128, 128), 7)
    box = [(-1, 1), (-1, 1)]
    tr = trace(net, box, progress=False)
    monkeypatch.setattr(trace_mod._Tracer, "local", lambda self, j: False)
    ref = trace(net, box, progress=False)
    assert tr.num_regions == ref.num_regions and tr.num_vertices == ref.num_vertices
    assert set(tr.packed_patterns()) == set(ref.packed_patterns())
    assert float((tr.vertices - ref.vertices).abs().max()) < 1e-12


def test_states_are_kept_packed_without_loss():
    tr = trace(mlp((2, 13, 9), 5), [(-1, 1), (-1, 1)], progress=False)  # 13: not a byte
    for j, p in enumerate(tr.patterns):
        st = tr.states(j)
        assert st.dtype == torch.int8 and torch.equal(st.to(torch.int64), p)
    bits = [np.packbits(p.numpy().astype(bool), axis=1) for p in tr.patterns]
    assert all(np.array_equal(tr.packed_states(j).numpy(), b) for j, b in enumerate(bits))
    assert tr.packed_patterns() == [row.tobytes() for row in np.concatenate(bits, 1)]
    ht = trace(mlp((2, 7), 6, act=lambda: nn.Hardtanh(-0.2, 0.3)), [(-1, 1)] * 2, progress=False)
    assert ht.states(0).dtype == torch.int8 and set(ht.patterns[0].unique().tolist()) <= {0, 1, 2}
    assert torch.equal(ht.states(0).to(torch.int64), ht.patterns[0])


@pytest.mark.parametrize("u", [1, 8, 13, 64])
def test_set_bits_of_packed_rows_are_those_of_the_unpacked_matrix(u):
    """The pending pairs and vanishing pairs are read off packed bits: the same pairs, in the
    same (row-major) order, as ``nonzero`` of the matrix, padding bits past ``u`` ignored."""
    from exactrelu.trace import _bit_pairs, _popcount

    g = torch.Generator().manual_seed(u)
    m = torch.rand((40, u), generator=g) < 0.3
    m[3] = True
    m[5] = False
    packed = torch.from_numpy(np.packbits(m.numpy(), axis=1))
    padded = packed.clone()
    if u % 8:
        padded[:, -1] |= 255 >> (u % 8)  # every padding bit set
    r, c = _bit_pairs(padded, u)
    assert torch.equal(torch.stack([r, c], 1), m.nonzero())
    assert torch.equal(_popcount(packed), m.sum(1))


def test_opposite_signs_are_those_of_a_negative_product():
    """Units whose switching function changes sign strictly along an edge: exactly the entries
    with ``a * b < 0`` (zeros of either sign, NaN and products that underflow excluded)."""
    from exactrelu.trace import _opposite

    g = torch.Generator().manual_seed(0)
    a = torch.randn((300, 37), generator=g, dtype=torch.float64)
    b = torch.randn((300, 37), generator=g, dtype=torch.float64)
    a[0, :6] = torch.tensor([0.0, -0.0, float("nan"), 1e-200, -1e-200, -2.0])
    b[0, :6] = torch.tensor([-1.0, 1.0, -1.0, -1e-200, 1e-200, 3.0])
    i, c = _opposite(a, b)
    assert torch.equal(torch.stack([i, c], 1), (a * b < 0).nonzero())
    assert c[i == 0].tolist()[:1] == [5]


def test_opposite_signs_from_kept_sign_bits_are_those_of_the_rows():
    """A chunk keeps the sign bits of its value rows while it keeps deltas: the pairs it reads
    off them are those of :func:`_opposite` on the two ends' rows (signed zeros, NaN and
    products that underflow included)."""
    from types import SimpleNamespace

    from exactrelu.trace import _Chunk, _opposite, _packbits

    g = torch.Generator().manual_seed(1)
    vals = torch.randn((50, 21), generator=g, dtype=torch.float64)
    vals[3, :5] = torch.tensor([0.0, -0.0, float("nan"), 1e-200, -2.0])
    vals[7, :5] = torch.tensor([-1.0, 1.0, -1.0, -1e-200, 3.0])
    a = torch.randint(0, 50, (400,), generator=g)
    b = torch.randint(0, 50, (400,), generator=g)
    a[0], b[0] = 3, 7
    ch = SimpleNamespace(vals=vals, sgn=_packbits(torch.signbit(vals)))
    got = _Chunk._opposite_rows(ch, a, b)  # type: ignore[arg-type]
    want = _opposite(vals[a], vals[b])
    assert all(torch.equal(x, y) for x, y in zip(got, want, strict=True))
    assert got[1][got[0] == 0].tolist()[:1] == [4]
    ch.sgn = None  # (without the bits: from the rows themselves)
    assert all(torch.equal(x, y) for x, y in zip(_Chunk._opposite_rows(ch, a, b), want,
                                                  strict=True))


@pytest.mark.parametrize("dense", [1 << 15, 0])
def test_interpolated_rows_are_those_of_lerp(dense, monkeypatch):
    """``_lerp_rows`` (one sparse-dense product, or below ``_DENSE_LERP`` elements the same sum
    on gathered rows) against :func:`torch.lerp` on gathered rows, written into rows of the same
    storage past the ones it reads."""
    import exactrelu.trace as trace_mod
    from exactrelu.trace import _lerp_rows

    monkeypatch.setattr(trace_mod, "_DENSE_LERP", dense)
    g = torch.Generator().manual_seed(2)
    buf = torch.randn((80, 33), generator=g, dtype=torch.float64) * 1e3
    a = torch.randint(0, 60, (20,), generator=g)
    b = torch.randint(0, 60, (20,), generator=g)
    lam = torch.rand(20, generator=g, dtype=torch.float64)
    lam[:2] = torch.tensor([0.0, 1.0])
    want = torch.lerp(buf[a], buf[b], lam.unsqueeze(1))
    got = _lerp_rows(buf[:60], a, b, lam, buf[60:80])
    assert got.data_ptr() == buf[60].data_ptr()
    scale = torch.maximum(buf[a].abs(), buf[b].abs())
    assert bool(((got - want).abs() <= 4 * torch.finfo(torch.float64).eps * scale).all())
    assert torch.equal(got[0], buf[a[0]]) and torch.equal(got[1], buf[b[1]])
    empty = torch.zeros(0, dtype=torch.int64)
    assert _lerp_rows(buf[:60], empty, empty, lam[:0], buf[60:60]).shape == (0, 33)


def test_both_forms_of_interpolated_rows_round_alike(monkeypatch):
    """The sparse product and the sum on gathered rows of ``_lerp_rows``: the same values, bit
    for bit, on the CPU (so the size that picks one does not change a trace)."""
    import exactrelu.trace as trace_mod

    g = torch.Generator().manual_seed(3)
    for n, w in ((7, 5), (300, 64)):
        src = torch.randn((4 * n, w), generator=g, dtype=torch.float64)
        src *= torch.rand((4 * n, 1), generator=g, dtype=torch.float64) * 1e4
        a = torch.randint(0, 4 * n, (n,), generator=g)
        b = torch.randint(0, 4 * n, (n,), generator=g)
        lam = torch.rand(n, generator=g, dtype=torch.float64)
        monkeypatch.setattr(trace_mod, "_DENSE_LERP", 1 << 40)
        dense = trace_mod._lerp_rows(src, a, b, lam, torch.empty((n, w), dtype=torch.float64))
        monkeypatch.setattr(trace_mod, "_DENSE_LERP", 0)
        sparse = trace_mod._lerp_rows(src, a, b, lam, torch.empty((n, w), dtype=torch.float64))
        assert torch.equal(dense, sparse)


def test_max_regions_counts_the_regions_of_every_chunk(monkeypatch):
    import exactrelu.trace as trace_mod

    net = mlp((2, 16, 16, 16), 7)
    full = trace(net, [(-1, 1), (-1, 1)], progress=False).num_regions
    monkeypatch.setattr(trace_mod, "_CHUNK", 600)
    with pytest.raises(RegionLimitError) as err:
        trace(net, [(-1, 1), (-1, 1)], progress=False, max_regions=full - 20)
    assert full - 20 < err.value.found <= full
