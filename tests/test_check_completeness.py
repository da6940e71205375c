"""The checker's own completeness proof where volumes do not apply (dimension >= 4, unbounded
domains): closure of the certified patterns under crossing every facet interior to a parent cell,
each facet found by an exact LP. Certificates from ``verify`` are accepted; a certificate with one
region taken out (and rebuilt consistently, so that every other check passes) is rejected, and the
error names the missing pattern."""

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


def test_verified_certificates_are_accepted(case):
    net, cert = case
    assert cert.dim >= 4 or not cert.domain.is_bounded  # the closure path, not volumes
    assert exactrelu.check(cert, net) is cert


def test_a_removed_region_is_named_as_missing(case):
    net, cert = case
    n = cert.num_regions
    assert n > 10
    for k in sorted({0, n // 3, n // 2, n - 1}):
        assert_missing_named(cert, net, k)


def test_every_removed_region_is_caught_in_4d():
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


def test_degenerate_units_are_crossed_together():
    """Duplicated, negated and parallel units (one hyperplane for several switching functions),
    a unit identically zero and a dead one: crossing flips every unit on the facet's hyperplane."""
    W = [[1.0, -1.0, 0.5, 0.0], [1.0, -1.0, 0.5, 0.0], [-1.0, 1.0, -0.5, 0.0], [2.0, -2.0, 1.0, 0.0],
         [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 1.0, 1.0, -1.0], [1.0, 0.0, 0.0, 1.0]]
    b = [0.0, 0.0, 0.0, 0.5, 0.0, -1.0, 0.25, 0.0]
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3), nn.ReLU(), nn.Linear(3, 1)).double()
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
    net = nn.Sequential(nn.Conv2d(1, 2, 1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 1)).double()
    cert = exactrelu.verify(net, None, input_shape=(1, 2, 2), progress=False)
    prog = exactrelu.capture(net, (1, 2, 2))
    exactrelu.check(cert, prog)
    assert cert.num_regions > 20
    for k in range(0, cert.num_regions, cert.num_regions // 5):
        assert_missing_named(cert, prog, k)
