"""The exact layer: counts known by construction (degenerate ones included), invariants,
certificates accepted by the independent checker, tampered ones rejected."""

from __future__ import annotations

import copy
import itertools
import json
from fractions import Fraction

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import CertificateError, VerificationError


def mlp(weights: list[tuple[list[list[float]], list[float]]], act=nn.ReLU) -> nn.Sequential:
    """An MLP with the given (W, b) per layer; float64 so that dyadic values are exact."""
    layers: list[nn.Module] = []
    for k, (W, b) in enumerate(weights):
        lin = nn.Linear(len(W[0]), len(W)).double()
        with torch.no_grad():
            lin.weight.copy_(torch.tensor(W, dtype=torch.float64))
            lin.bias.copy_(torch.tensor(b, dtype=torch.float64))
        layers.append(lin)
        if k < len(weights) - 1:
            layers.append(act())
    return nn.Sequential(*layers)


def certify(net, bounds, **kw):
    cert = exactrelu.verify(net, bounds, progress=False, **kw)
    exactrelu.check(cert, net)
    return cert


def grid_patterns(net: nn.Sequential, bounds, n: int = 201) -> set[tuple[int, ...]]:
    axes = [torch.linspace(float(lo), float(hi), n, dtype=torch.float64) for lo, hi in bounds]
    pts = torch.stack(torch.meshgrid(*axes, indexing="ij"), -1).reshape(-1, len(bounds))
    g = exactrelu.affine_maps(net, pts)
    return set(map(tuple, torch.cat([p.reshape(p.shape[0], -1) for p in g.pattern], 1).tolist()))


def flat(r) -> tuple[int, ...]:
    return tuple(x for s in r.pattern for x in s)


def euler(cert) -> int:
    return cert.num_vertices - len(cert.edges()) + cert.num_regions


# --------------------------------------------------------------------------- known counts

def test_lines_through_a_common_point_give_2n_regions():
    dirs = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0], [1.0, 0.5], [0.25, 1.0]]
    net = mlp([(dirs, [0.0] * 6), ([[1.0] * 6], [0.0])])
    cert = certify(net, [(-1, 1), (-1, 1)])
    assert cert.num_regions == 12
    assert euler(cert) == 1
    origin = (Fraction(0), Fraction(0))
    assert origin in cert.vertices


def test_duplicated_and_negated_units_do_not_add_regions():
    rows = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]
    base = mlp([(rows, [0.1, -0.2, 0.05]), ([[1.0, 1.0, 1.0]], [0.0])])
    dup = mlp([([*rows, rows[0], [-1.0, -1.0]], [0.1, -0.2, 0.05, 0.1, -0.05]),
               ([[1.0] * 5], [0.0])])
    a = certify(base, [(-1, 1), (-1, 1)])
    b = certify(dup, [(-1, 1), (-1, 1)])
    assert a.num_regions == b.num_regions == 7  # 3 lines in general position, all crossings inside
    assert euler(b) == 1


def test_units_identically_zero_do_not_split():
    # layer 1: relu(x), relu(-x); layer 2: a unit equal to relu(x) >= 0, identically zero on x < 0,
    # a dead unit (weights 0, bias -1) and a unit with all-zero weights and bias.
    net = mlp([([[1.0], [-1.0]], [0.0, 0.0]),
               ([[1.0, 0.0], [0.0, 0.0], [0.0, 0.0]], [0.0, -1.0, 0.0]),
               ([[1.0, 1.0, 1.0]], [0.0])])
    cert = certify(net, [(-1, 1)])
    assert cert.num_regions == 2
    states = sorted(tuple(r.pattern[1]) for r in cert.regions)
    assert states == [(0, 0, 0), (1, 0, 0)]  # zero-on-a-cell takes the tie state "off"


def sawtooth(L: int) -> nn.Sequential:
    """Telgarsky's tent map m(x) = 2 relu(x) - 4 relu(x - 1/2) composed L times on [0, 1]; the
    units relu(y) only touch zero at interior points (degenerate on purpose)."""
    first = ([[1.0], [1.0]], [0.0, -0.5])
    mid = ([[2.0, -4.0], [2.0, -4.0]], [0.0, -0.5])
    layers = [first] + [mid] * (L - 1) + [([[2.0, -4.0]], [0.0])]
    return mlp(layers)


@pytest.mark.parametrize("L", [1, 2, 3, 4])
def test_sawtooth_touching_zero_has_2_to_the_L_pieces(L):
    cert = certify(sawtooth(L), [(0, 1)])
    assert cert.num_regions == 2 ** L
    assert cert.num_pieces == 2 ** L
    xs = sorted(v[0] for v in cert.vertices)
    assert xs == [Fraction(k, 2 ** L) for k in range(2 ** L + 1)]


def test_parallel_hyperplanes_grid():
    rows = [[1.0, 0.0]] * 7 + [[0.0, 1.0]] * 3
    bias = [-k / 4 for k in range(-3, 4)] + [-k / 4 for k in range(-1, 2)]
    net = mlp([(rows, bias), ([[1.0] * 10], [0.0])])
    cert = certify(net, [(-1, 1), (-1, 1)])
    assert cert.num_regions == 8 * 4
    assert cert.num_vertices == 9 * 5
    assert euler(cert) == 1


def test_huge_box_holds_the_full_arrangement():
    torch.manual_seed(3)
    n = 6
    W = torch.randn(n, 2, dtype=torch.float64)
    b = torch.randn(n, dtype=torch.float64)
    net = mlp([(W.tolist(), b.tolist()), ([[1.0] * n], [0.0])])
    big = 2 ** 40
    cert = certify(net, [(-big, big), (-big, big)])
    # independent count: 1 + lines meeting the box + crossings strictly inside
    Wq = [[Fraction(v) for v in r] for r in W.tolist()]
    bq = [Fraction(v) for v in b.tolist()]
    crossings = 0
    for i, j in itertools.combinations(range(n), 2):
        det = Wq[i][0] * Wq[j][1] - Wq[i][1] * Wq[j][0]
        if det == 0:
            continue
        x = (-bq[i] * Wq[j][1] + bq[j] * Wq[i][1]) / det
        y = (-Wq[i][0] * bq[j] + Wq[j][0] * bq[i]) / det
        crossings += -big < x < big and -big < y < big
    assert cert.num_regions == 1 + n + crossings == 1 + n + n * (n - 1) // 2


def test_one_dimensional_count_is_breakpoints_plus_one():
    net = mlp([([[1.0], [1.0], [-1.0], [2.0]], [0.0, -0.5, 0.25, 3.0]),
               ([[1.0, -1.0, 1.0, 1.0]], [0.0])])
    cert = certify(net, [(-1, 1)])
    # breakpoints inside (-1, 1): x = 0, 1/2, 1/4 (x = -3/2 is outside)
    assert cert.num_regions == 4
    assert sorted(v[0] for v in cert.vertices) == \
        [Fraction(-1), Fraction(0), Fraction(1, 4), Fraction(1, 2), Fraction(1)]


@pytest.mark.parametrize("seed,act", [(0, nn.ReLU), (1, nn.ReLU), (2, lambda: nn.LeakyReLU(0.125)),
                                      (3, lambda: nn.Hardtanh(-0.5, 0.5))])
def test_random_nets_cover_every_grid_pattern(seed, act):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 7), act(), nn.Linear(7, 5), act(), nn.Linear(5, 2)).double()
    bounds = [(-1, 1), (-1, 1)]
    cert = certify(net, bounds)
    certified = {flat(r) for r in cert.regions}
    assert grid_patterns(net, bounds) <= certified
    assert euler(cert) == 1
    assert sum(r.volume for r in cert.regions) == 4
    assert cert.num_pieces <= cert.num_regions


def test_three_dimensional_volumes_sum_to_the_box():
    torch.manual_seed(4)
    net = nn.Sequential(nn.Linear(3, 5), nn.ReLU(), nn.Linear(5, 4), nn.ReLU(),
                        nn.Linear(4, 1)).double()
    bounds = [(-1, 1), (0, 1), (-Fraction(1, 2), 2)]
    cert = certify(net, bounds)
    assert sum(r.volume for r in cert.regions) == 2 * 1 * Fraction(5, 2)
    assert grid_patterns(net, bounds, n=41) <= {flat(r) for r in cert.regions}


def test_maxpool_net_on_a_slice():
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(2 * 1 * 1, 1)).double()
    x = torch.randn(3, 1, 3, 3, dtype=torch.float64)
    dom = exactrelu.Slice.plane(x[0], x[1], x[2])
    cert = exactrelu.verify(net, dom, progress=False)
    exactrelu.check(cert, net)
    assert sum(r.volume for r in cert.regions) == Fraction(1, 2)
    # every region's witness maps to an input whose float pattern is the region's pattern
    M, c = dom.float_input_map()
    for r in cert.regions:
        t = torch.tensor([float(v) for v in r.witness], dtype=torch.float64)
        pt = (M @ t + c).reshape(1, 1, 3, 3)
        g = exactrelu.affine_maps(net, pt)
        assert tuple(torch.cat([p.reshape(-1) for p in g.pattern]).tolist()) == flat(r)


# --------------------------------------------------------------------------- certificates

@pytest.fixture(scope="module")
def small():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(),
                        nn.Linear(6, 1)).double()
    return net, certify(net, [(-1, 1), (-1, 1)])


def test_certificate_round_trips_through_json(small, tmp_path):
    net, cert = small
    path = tmp_path / "c.json"
    cert.save(path)
    text = path.read_text()
    assert "e-" not in text and "pickle" not in text  # rationals as p/q strings
    back = exactrelu.Certificate.load(path)
    assert back.to_json() == cert.to_json()
    exactrelu.check(back, net)


def _renumber(cert):
    for i, r in enumerate(cert.regions):
        r.index = i


def test_removed_region_is_rejected(small):
    net, cert = small
    bad = copy.deepcopy(cert)
    del bad.regions[2]
    del bad.pieces[2]
    _renumber(bad)
    bad.adjacency = [a for a in bad.adjacency if a.i < bad.num_regions and a.j < bad.num_regions]
    with pytest.raises(CertificateError, match="completeness"):
        exactrelu.check(bad, net)


def test_witness_moved_outside_is_rejected(small):
    net, cert = small
    bad = copy.deepcopy(cert)
    bad.regions[0].witness = tuple(Fraction(5) for _ in bad.regions[0].witness)
    with pytest.raises(CertificateError, match="region 0"):
        exactrelu.check(bad, net)


def test_vertex_perturbed_by_2_to_minus_60_is_rejected(small):
    net, cert = small
    # an interior vertex
    k = next(k for k, v in enumerate(cert.vertices) if all(abs(c) < 1 for c in v))
    bad = copy.deepcopy(cert)
    v = bad.vertices[k]
    bad.vertices[k] = (v[0] + Fraction(1, 2 ** 60), v[1])
    with pytest.raises(CertificateError, match="vertex"):
        exactrelu.check(bad, net)


def test_changed_count_is_rejected(small, tmp_path):
    _net, cert = small
    data = cert.to_json()
    data["num_regions"] += 1
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(CertificateError, match="num_regions"):
        exactrelu.Certificate.load(path)


def test_certificate_for_another_network_is_rejected(small):
    net, cert = small
    other = copy.deepcopy(net)
    with torch.no_grad():
        other[0].bias[0] += 2.0 ** -40
    with pytest.raises(CertificateError, match="digest"):
        exactrelu.check(cert, other)


def test_claimed_count_and_patterns(small):
    net, cert = small
    exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, claimed=cert.num_regions)
    with pytest.raises(VerificationError, match=f"certified {cert.num_regions}"):
        exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, claimed=cert.num_regions + 1)
    pats = [r.pattern for r in cert.regions]
    with pytest.raises(VerificationError, match="missing: region") as err:
        exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, claimed=pats[1:])
    assert "witness" in str(err.value)


def test_adjacency_pairs_share_a_segment(small):
    _net, cert = small
    for a in cert.adjacency:
        fi = [f for f in cert.regions[a.i].facets if set(f.vertices) and f.a and (f.a, f.b)]
        shared = set(cert.regions[a.i].vertices) & set(cert.regions[a.j].vertices)
        assert fi
        assert len(shared) >= 1


def test_runs_through_a_real_dask_cluster():
    distributed = pytest.importorskip("distributed")
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                        nn.Linear(8, 1)).double()
    serial = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cl, \
            distributed.Client(cl) as client:
        cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False,
                                executor=client.get_executor())
    assert cert.num_regions == serial.num_regions
    assert {flat(r) for r in cert.regions} == {flat(r) for r in serial.regions}
    exactrelu.check(cert, net)



_FORKED_POOL = """
import concurrent.futures as cf, multiprocessing as mp, torch
from torch import nn
import exactrelu
torch.set_num_threads(2)
torch.ones(2 ** 20).to(torch.float64)  # the parent's OpenMP thread pool is now running
net = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 40000), nn.ReLU(), nn.Linear(40000, 1))
with torch.no_grad():
    net[0].weight.copy_(torch.tensor([[1.0, 0.0]])); net[0].bias.zero_()
    net[2].weight.zero_(); net[2].bias.fill_(1.0)  # 40000 units, positive constants: no cut
with cf.ProcessPoolExecutor(2, mp_context=mp.get_context("fork")) as pool:
    cert = exactrelu.verify(net, [(-1, 1)] * 2, executor=pool, progress=False)
print(cert.num_regions, torch.get_num_threads())
"""


def test_pool_forked_after_torch_ran_does_not_hang():
    """Workers forked from a parent whose OpenMP pool runs hung in their first parallel torch
    kernel (converting a weight of 40,000 entries); 2 regions, and the parent keeps its threads."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-c", _FORKED_POOL], capture_output=True, text=True,
                          timeout=180)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["2", "2"]


# --------------------------------------------------------------------------- exact helpers

def _square_facets():
    """The facets of [0, 1]^2 as slack rows of Python ints: x >= 0, y >= 0, 1 - x >= 0,
    1 - y >= 0."""
    from exactrelu.certify import Facet

    return [Facet([1, 0, 0], (0,)), Facet([0, 1, 0], (1,)), Facet([-1, 0, 1], (2,)),
            Facet([0, -1, 1], (3,))]


def test_dyadic_witness_is_exact_and_strictly_inside():
    import numpy as np
    from flint import fmpq

    from exactrelu.certify import _dyadic_inside

    w = _dyadic_inside(np.array([0.25, 0.75]), _square_facets(), 2)
    assert w == (fmpq(1, 4), fmpq(3, 4))
    # 0.1 is not 1/10: the witness is the float's exact dyadic value, never a rounded decimal
    assert _dyadic_inside(np.array([0.1, 0.5]), _square_facets(), 2)[0] == \
        fmpq(*(0.1).as_integer_ratio())


@pytest.mark.parametrize("point", [[0.0, 0.5], [1.0, 1.0], [1.5, 0.5], [0.5, -2.0 ** -60],
                                   [float("nan"), 0.5]])
def test_dyadic_witness_on_or_outside_a_facet_is_refused(point):
    import numpy as np

    from exactrelu.certify import _dyadic_inside

    assert _dyadic_inside(np.array(point), _square_facets(), 2) is None


def test_integer_maps_convert_and_pickle_both_ways():
    import pickle

    from flint import fmpz_mat

    from exactrelu.certify import _IMap

    rows = [[3, -2 ** 80, 5], [0, 7, -1]]
    m = _IMap(None, 12, (2,), rows)
    assert m.N == fmpz_mat(rows)
    back = _IMap(fmpz_mat(rows), 12, (2,))
    assert back.rows == rows and all(type(v) is int for r in back.rows for v in r)
    again = pickle.loads(pickle.dumps(back))
    assert (again.rows, again.den, again.shape) == (rows, 12, (2,))


def test_candidate_tree_round_trips_states_and_ignores_unseen_ones():
    """States come back from the bytes tree as the trace's tuples, the bounding ids of regions with
    one prefix and state are united, and a state wider than any the trace saw has no proposals."""
    from types import SimpleNamespace

    from exactrelu.certify import Cell, candidate_tree

    pats = [torch.tensor([[0, 1], [0, 1], [1, 1]]), torch.tensor([[2, 0], [5, 0], [2, 0]])]
    interior = torch.tensor([[0.1, 0.2], [0.3, 0.4], [0.5, 0.6]], dtype=torch.float64)
    tr = SimpleNamespace(num_regions=3, patterns=pats, interior=interior,
                         bounding_offsets=torch.tensor([0, 2, 3, 4]),
                         bounding_ids=torch.tensor([7, 8, 9, 7]))
    tree = candidate_tree(tr)

    def cell(*states):
        return Cell(len(states), tuple(states), (), [], [])

    top = {c.state: (c.witness, c.hint_ids) for c in tree.candidates(cell())}
    assert top == {(0, 1): ((0.1, 0.2), {7, 8, 9}), (1, 1): ((0.5, 0.6), {7})}
    under = {c.state: c.hint_ids for c in tree.candidates(cell((0, 1)))}
    assert under == {(2, 0): {7, 8}, (5, 0): {9}}
    assert tree.candidates(cell((0, 300))) == []  # 300 does not fit the int8 the trace's states fit
