"""The checker's two completeness proofs. Volumes (bounded domains): the exact volumes of the
pulling triangulations of the regions' certified vertices, each a lower bound of its region's
volume, sum to the domain's. Closure (unbounded domains; forced here on boxes too): the certified
patterns are closed under crossing every facet interior to a parent cell, each facet found from
the proven facets of the regions under the cell. Certificates from ``verify`` are accepted; a
certificate with one region taken out (and rebuilt consistently, so that every other check
passes) is rejected, by the closure path with the missing pattern named; a region with one vertex
taken out is rejected by the volume path."""

from __future__ import annotations

import copy
import sys

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import CertificateError, RealSpace

checker = sys.modules["exactrelu.check"]  # the package exports the function under the same name


def mlp(d: int, widths: list[int], seed: int, act=nn.ReLU) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    n = d
    for w in widths:
        layers += [nn.Linear(n, w), act()]
        n = w
    layers.append(nn.Linear(n, 1))
    return nn.Sequential(*layers).double()


def without(cert, k: int):
    """``cert`` with region ``k`` taken out: indices, adjacency and piece labels renumbered."""
    bad = copy.deepcopy(cert)
    del bad.regions[k]
    del bad.pieces[k]
    for i, r in enumerate(bad.regions):
        r.index = i
    adjacency = []
    for a in bad.adjacency:
        if k in (a.i, a.j):
            continue
        a.i -= a.i > k
        a.j -= a.j > k
        adjacency.append(a)
    bad.adjacency = adjacency
    return bad


def assert_missing_named(cert, net, k: int) -> None:
    removed = [list(p) for p in cert.regions[k].pattern]
    with pytest.raises(CertificateError, match="completeness") as err:
        exactrelu.check(without(cert, k), net)
    msg = str(err.value)
    # the cell found missing lies in the removed region: its pattern, or a prefix of it when no
    # certified region is left below that prefix
    assert any(f"{removed[:n]}" in msg for n in range(1, len(removed) + 1)), msg


CASES = {
    "box4": (lambda: mlp(4, [5, 4], 0), [(-1, 1)] * 4),
    "R2": (lambda: mlp(2, [5, 4], 1), RealSpace(2)),
    "R3": (lambda: mlp(3, [5, 4], 2), RealSpace(3)),
    "none2": (lambda: mlp(2, [4, 3], 3, nn.LeakyReLU), None),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    make, dom = CASES[request.param]
    net = make()
    return net, exactrelu.verify(net, dom, progress=False)


@pytest.fixture
def closure(monkeypatch):
    """The closure path on every domain, bounded ones too."""
    monkeypatch.setattr(checker, "_VOLUME_MAX_DIM", 0)


def test_verified_certificates_are_accepted(case, closure):
    net, cert = case
    assert exactrelu.check(cert, net) is cert


def test_a_removed_region_is_named_as_missing(case, closure):
    net, cert = case
    n = cert.num_regions
    assert n > 10
    for k in sorted({0, n // 3, n // 2, n - 1}):
        assert_missing_named(cert, net, k)


def test_every_removed_region_is_caught_in_4d(closure):
    net = mlp(4, [3, 3], 5)
    cert = exactrelu.verify(net, [(-1, 1)] * 4, progress=False)
    for k in range(cert.num_regions):
        assert_missing_named(cert, net, k)


def test_a_certificate_without_regions_is_rejected():
    net = mlp(2, [3], 0)
    cert = exactrelu.verify(net, None, progress=False)
    bad = copy.deepcopy(cert)
    bad.regions, bad.pieces, bad.adjacency = [], [], []
    with pytest.raises(CertificateError, match="completeness: the certificate lists no region"):
        exactrelu.check(bad, net)


def test_closure_agrees_with_volumes_on_2d_and_3d_boxes(monkeypatch):
    """Where the volume path applies, the closure path (forced) accepts the same certificates and
    rejects the same removals."""
    nets = [(mlp(2, [6, 5], 7), [(-1, 1)] * 2), (mlp(3, [4, 3], 8, nn.Hardtanh), [(-1, 1)] * 3)]
    for net, box in nets:
        cert = exactrelu.verify(net, box, progress=False)
        ks = range(0, cert.num_regions, max(1, cert.num_regions // 12))
        for k in ks:  # the volume path
            with pytest.raises(CertificateError, match="region volumes sum"):
                exactrelu.check(without(cert, k), net)
        with monkeypatch.context() as m:
            m.setattr(checker, "_VOLUME_MAX_DIM", 0)
            exactrelu.check(cert, net)
            for k in ks:
                assert_missing_named(cert, net, k)


def test_degenerate_units_are_crossed_together(closure):
    """Duplicated, negated and parallel units (one hyperplane for several switching functions),
    a unit identically zero and a dead one: crossing flips every unit on the facet's hyperplane."""
    W = [[1.0, -1.0, 0.5, 0.0], [1.0, -1.0, 0.5, 0.0], [-1.0, 1.0, -0.5, 0.0],
         [2.0, -2.0, 1.0, 0.0],
         [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, -1.0], [1.0, 0.0, 0.0, 1.0]]
    b = [0.0, 0.0, 0.0, 0.5, 0.0, -1.0, 0.25, 0.0]
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU(),
                        nn.Linear(3, 1)).double()
    torch.manual_seed(3)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W, dtype=torch.float64))
        net[0].bias.copy_(torch.tensor(b, dtype=torch.float64))
    for dom in ([(-1, 1)] * 4, None):
        cert = exactrelu.verify(net, dom, progress=False)
        exactrelu.check(cert, net)
        for k in range(0, cert.num_regions, max(1, cert.num_regions // 6)):
            assert_missing_named(cert, net, k)


def test_maxpool_on_an_unbounded_4d_input():
    """MaxPool's switching functions are pairwise differences; the ones not involving the maximum
    are no constraints of a cell and may vanish at the LP point on a facet."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(2, 1)).double()
    cert = exactrelu.verify(net, None, input_shape=(1, 2, 2), progress=False)
    prog = exactrelu.capture(net, (1, 2, 2))
    exactrelu.check(cert, prog)
    assert cert.num_regions > 20
    for k in range(0, cert.num_regions, cert.num_regions // 5):
        assert_missing_named(cert, prog, k)


# ----------------------------------------------------------------------------- volumes in d >= 4

BOX4 = [(-1, 1)] * 4
VOLUME_MSG = "completeness: region volumes sum"


@pytest.fixture(scope="module")
def box4():
    net = mlp(4, [6, 6], 11)
    return net, exactrelu.verify(net, BOX4, progress=False)


def some(cert, n: int = 8) -> range:
    return range(0, cert.num_regions, max(1, cert.num_regions // n))


def test_volume_path_is_the_default_on_a_4d_box(box4):
    net, cert = box4
    assert cert.dim == 4 and cert.num_regions > 30
    assert exactrelu.check(cert, net) is cert
    for k in some(cert):
        with pytest.raises(CertificateError, match=VOLUME_MSG):
            exactrelu.check(without(cert, k), net)


def test_a_removed_vertex_makes_the_volume_bound_strict(box4):
    """One vertex fewer: its hull misses a neighbourhood of the vertex, and the sum falls short.
    The facets still listing the vertex are false claims too, reported only once the volumes
    have proven the vertex lists complete (here they are not)."""
    net, cert = box4
    for k in some(cert):
        for pos in (0, len(cert.regions[k].vertices) - 1):
            bad = copy.deepcopy(cert)
            r = bad.regions[k]
            del r.vertices[pos]
            if r.volume is not None:  # the region's own stated volume gives it away first
                with pytest.raises(CertificateError, match=f"region {k}: volume"):
                    exactrelu.check(bad, net)
                r.volume = None
            with pytest.raises(CertificateError, match=VOLUME_MSG):
                exactrelu.check(bad, net)


def test_volumes_ignore_the_certificates_facet_vertex_lists(box4):
    """The faces pulled over come from exact tightness, never from the facet lists: with facet
    lists cut down to one vertex (a false claim, rejected for itself once the vertex lists are
    proven complete) a missing region is still caught by the volumes first (3-D and 4-D)."""
    net3 = mlp(3, [5, 4], 15)
    for net, cert in (box4, (net3, exactrelu.verify(net3, [(-1, 1)] * 3, progress=False))):
        trimmed = copy.deepcopy(cert)
        for r in trimmed.regions:
            for f in r.facets:
                f.vertices = f.vertices[:1]
        with pytest.raises(CertificateError, match="lies on it but is not listed"):
            exactrelu.check(trimmed, net)
        with pytest.raises(CertificateError, match=VOLUME_MSG):
            exactrelu.check(without(trimmed, trimmed.num_regions // 2), net)


@pytest.mark.parametrize("seed, widths, act", [(12, [5, 4], nn.ReLU), (13, [4, 4, 3], nn.LeakyReLU),
                                               (14, [6], nn.Hardtanh)])
def test_volume_and_closure_paths_agree_in_4d(monkeypatch, seed, widths, act):
    net = mlp(4, widths, seed, act)
    cert = exactrelu.verify(net, BOX4, progress=False)
    ks = list(some(cert, 6))
    exactrelu.check(cert, net)
    for k in ks:
        with pytest.raises(CertificateError, match=VOLUME_MSG):
            exactrelu.check(without(cert, k), net)
    monkeypatch.setattr(checker, "_VOLUME_MAX_DIM", 0)
    exactrelu.check(cert, net)
    for k in ks:
        assert_missing_named(cert, net, k)


@pytest.mark.parametrize("d, dom", [(1, [(-2, 2)]), (2, RealSpace(2)), (3, [(-1, 1)] * 3),
                                    (4, BOX4)])
def test_a_vertex_missing_from_a_region_is_found_by_walking_its_edges(closure, d, dom):
    """On the closure path each region's vertex list is proven by walking its edges: one vertex
    taken out of a region (and its facets) leaves an edge ending at an unlisted vertex."""
    net = mlp(d, [4, 3], 20 + d)
    cert = exactrelu.verify(net, dom, progress=False)
    exactrelu.check(cert, net)
    for k in some(cert, 6):
        for pos in (0, -1):
            bad = copy.deepcopy(cert)
            r = bad.regions[k]
            v = r.vertices.pop(pos)
            for f in r.facets:
                f.vertices = tuple(x for x in f.vertices if x != v)
            missing = (f"region {k}: (an edge from its vertex .* which is not listed"
                       "|it has a vertex .* but lists none)")
            with pytest.raises(CertificateError, match=missing):
                exactrelu.check(bad, net)


# ------------------------------------------------- closure: facets of cells from their regions'

def test_every_removed_region_is_caught_on_r2_under_three_layers():
    """The closure path takes a cell's facets from the proven facets of the regions under it; a
    removed region hides its facets, and must still be found missing (three layers: cells of
    one and two ops above the regions)."""
    net = mlp(2, [4, 4, 3], 12)
    cert = exactrelu.verify(net, None, progress=False)
    assert exactrelu.check(cert, net) is cert
    assert cert.num_regions > 20
    for k in range(cert.num_regions):
        assert_missing_named(cert, net, k)


def test_a_removed_cell_of_the_first_layer_is_caught():
    """Every region under one state of the first op taken out: no region is left to carry that
    cell's facets, its neighbours' regions do, and crossing them names the missing prefix."""
    net = mlp(2, [4, 3], 13)
    cert = exactrelu.verify(net, None, progress=False)
    firsts = sorted({tuple(r.pattern[0]) for r in cert.regions})
    assert len(firsts) > 5
    for first in firsts:
        bad = cert
        for k in reversed([r.index for r in cert.regions if tuple(r.pattern[0]) == first]):
            bad = without(bad, k)
        with pytest.raises(CertificateError, match="no region has a pattern beginning") as err:
            exactrelu.check(bad, net)
        assert f"{[list(first)]}" in str(err.value)


def test_regions_with_lines_are_crossed_by_an_exact_lp():
    """Every unit a function of the first input only: every region is a strip with a line and
    lists no vertex, so the point on each facet comes from the exact LP; a removed strip is
    still named."""
    net = mlp(2, [3, 3], 14)
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]],
                                         dtype=torch.float64))
        net[0].bias.copy_(torch.tensor([0.0, 1.0, 1.5], dtype=torch.float64))
    cert = exactrelu.verify(net, None, progress=False)
    assert all(len(r.lines) == 1 and not r.vertices for r in cert.regions)
    assert exactrelu.check(cert, net) is cert
    assert cert.num_regions >= 4
    for k in range(cert.num_regions):
        assert_missing_named(cert, net, k)


# one facet LP of the closure path on mlp(2, [10, 10, 10], 0) over R^2 (a cell of the first two
# layers, one hyperplane of the second), rows ``[b, -a, -c]`` of ``b - a . x >= c s``
BADLY_SCALED_LP = [
    [-275772640, 5684369, -407294848, -1],
    [-9851127, 9764017, 8730653, -1],
    [9765863, 18276780, -12724907, -1],
    [-568155776, 15043159, -602001408, -1],
    [7648655, 4211183, -12556695, -1],
    [-10042421, 28681914, 18655286, -1],
    [-10741921, 11333570, 7856840, -1],
    [88041728, 39122556, -3515667, -1],
    [-14936773, 9379947, 14236480, -1],
    [3003371, 8042607, 5166019, -1],
    [-146457203031653, 44411732198091, 67406216389440, -1],
    [-2287442469085, 689698122963, 1046794137920, -1],
    [244199917006003, 137964547111779, 209396653911360, -1],
    [-233192717963569, 123491101291839, 187429480541760, -1],
    [3844673039963621, 146494952311989, 222343735917760, -1],
    [-390200278075417, 153098191121367, 232365847689280, -1],
    [-133532046254265, 77641094920503, 117840313491520, -1],
    [87929664092727, 21936065993511, 33293617202240, -1],
    [97863820255177, 29042820357849, 44079943220160, -1],
    [-281830494828231, 34818616522569, 52846198144960, -1],
    [16138660301184658211643, 1363426263344436178539, 2069349723359609469760, -1],
    [-384180174326830051801075, 14510293334279343678813, 22023098941561310601920, -1],
    [13431855493967911732875, 3220419943592583589563, 4887814837179457881920, -1],
    [12140163690064278735517, 593171174159706224877, 900289687937594367680, -1],
    [230074050323981410293407, -312115843891052502513, -473715999593397609920, -1],
    [-236927292470017841134983, 4684583724933516829833, 7110059631290188918720, -1],
    [-9539264612425120652647621, 22983760688438097481323, 34883763134880741440320, -1],
    [-169941931325470548457687, 3200391280575990230073, 4857416194152746640320, -1],
    [-148768819017189592112757, 42157327844916195801531, 63984578454184498399040, -1],
    [-69380654883496119137297, 15107013899736847332447, 22928775742904051836480, 0],
    [69380654883496119137297, -15107013899736847332447, -22928775742904051836480, 0],
    [1, 0, 0, -1],
]


def test_a_badly_scaled_facet_lp_is_solved_without_output(capfd):
    """Its rows' sizes range from 1 to 10^25: unscaled, cddlib's floating-point pre-solve runs
    out of pivots and says so on stderr. Scaled, nothing is written; the optimum is negative
    (no facet there), as the exact optimum of the unscaled LP is."""
    value, _ = checker._facet_lp(BADLY_SCALED_LP, 2, "test")
    assert value < 0
    assert capfd.readouterr() == ("", "")


def test_closure_on_r2_writes_nothing(capfd):
    """The certificate whose check wrote cddlib's pivot message."""
    net = mlp(2, [10, 10, 10], 0)
    cert = exactrelu.verify(net, None, progress=False)
    assert cert.num_regions == 363
    capfd.readouterr()
    assert exactrelu.check(cert, net, progress=False) is cert
    assert capfd.readouterr() == ("", "")


@pytest.mark.parametrize("change", ["b", "A", "kind"])
def test_a_changed_polyhedron_domain_is_rejected(change):
    """The quadrant x, y >= 0 as a Polyhedron: its certificate is accepted, and with the
    domain's row moved, turned, or the domain made all of R^2, it is not."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1))
    cert = exactrelu.verify(net, exactrelu.Polyhedron([[-1, 0], [0, -1]], [0, 0]),
                            progress=False)
    data = cert.to_json()
    assert exactrelu.check(exactrelu.Certificate.from_json(data), net, progress=False)
    tampered = copy.deepcopy(data)
    if change == "b":
        tampered["domain"]["b"][0] = "1/2"
    elif change == "A":
        tampered["domain"]["A"][0] = ["-1", "1/4"]
    else:
        tampered["domain"] = {"type": "realspace", "dim": 2}
    with pytest.raises(CertificateError):
        exactrelu.check(exactrelu.Certificate.from_json(tampered), net, progress=False)
