"""Certification over all of R^d (``domain=None`` or ``RealSpace(d)``): unbounded regions exactly,
with cddlib's rays and lines, no big-box approximation."""

from __future__ import annotations

import copy
import itertools
from fractions import Fraction

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import CertificateError, RealSpace


def one_layer(W, b) -> nn.Sequential:
    net = nn.Sequential(nn.Linear(len(W[0]), len(W)), nn.ReLU(), nn.Linear(len(W), 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W, dtype=torch.float64))
        net[0].bias.copy_(torch.tensor(b, dtype=torch.float64))
        net[2].weight.fill_(1.0)
    return net


def certify(net, domain):
    cert = exactrelu.verify(net, domain, progress=False)
    exactrelu.check(cert, net)
    return cert


def flat(r) -> tuple[int, ...]:
    return tuple(x for s in r.pattern for x in s)


def general_position_lines(n: int, seed: int) -> tuple[list, list, list]:
    """Small-integer lines, redrawn until no two are parallel and no three meet (checked
    exactly)."""
    g = torch.Generator().manual_seed(seed)
    while True:
        W = torch.randint(-9, 10, (n, 2), generator=g).double()
        b = torch.randint(-9, 10, (n,), generator=g).double()
        Wq = [[Fraction(v) for v in r] for r in W.tolist()]
        bq = [Fraction(v) for v in b.tolist()]
        pts = []
        for i, j in itertools.combinations(range(n), 2):
            det = Wq[i][0] * Wq[j][1] - Wq[i][1] * Wq[j][0]
            if det == 0:
                break
            pts.append(((-bq[i] * Wq[j][1] + bq[j] * Wq[i][1]) / det,
                        (-Wq[i][0] * bq[j] + Wq[j][0] * bq[i]) / det))
        else:
            if len(set(pts)) == len(pts):
                return W.tolist(), b.tolist(), pts


@pytest.mark.parametrize("n,seed", [(3, 0), (5, 1), (7, 2)])
def test_lines_in_general_position_give_zaslavsky_count(n, seed):
    W, b, pts = general_position_lines(n, seed)
    cert = certify(one_layer(W, b), None)
    assert cert.num_regions == 1 + n + n * (n - 1) // 2
    assert sorted(cert.vertices) == sorted(pts)
    # the unbounded regions of an arrangement
    assert sum(1 for r in cert.regions if r.rays) == 2 * n


def test_lines_through_the_origin_give_2n_cones():
    W = [[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -2.0]]
    cert = certify(one_layer(W, [0.0] * 4), RealSpace(2))
    assert cert.num_regions == 8
    assert cert.vertices == [(Fraction(0), Fraction(0))]
    assert all(len(r.rays) == 2 and r.vertices == [0] for r in cert.regions)


def test_parallel_lines_give_strips_with_a_line_each():
    W = [[1.0, 0.0]] * 4
    cert = certify(one_layer(W, [0.0, -1.0, -2.0, 3.0]), None)
    assert cert.num_regions == 5
    assert all(len(r.lines) == 1 and r.vertices == [] for r in cert.regions)
    assert cert.num_vertices == 0
    assert len(cert.adjacency) == 4


def test_one_dimensional_breakpoints():
    cert = certify(one_layer([[1.0], [-2.0], [0.5]], [1.0, 1.0, 0.0]), None)
    # breakpoints at -1, 1/2, 0
    assert cert.num_regions == 4
    assert sorted(v[0] for v in cert.vertices) == [Fraction(-1), Fraction(0), Fraction(1, 2)]


def test_deep_net_matches_a_box_holding_every_vertex():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(),
                        nn.Linear(6, 1)).double()
    full = certify(net, None)
    # every vertex of the R^2 complex inside a box, and every unbounded region has rays: the box
    # of twice the vertices' extent holds one piece of every region, so the patterns agree
    m = max(abs(c) for v in full.vertices for c in v) * 2 + 1
    boxed = certify(net, [(-m, m), (-m, m)])
    assert {flat(r) for r in full.regions} == {flat(r) for r in boxed.regions}
    assert full.num_regions == boxed.num_regions


def test_json_round_trip_keeps_rays_and_lines(tmp_path):
    cert = certify(one_layer([[1.0, 0.0], [1.0, 0.0]], [0.0, -1.0]), None)
    path = tmp_path / "c.json"
    cert.save(path)
    back = exactrelu.Certificate.load(path)
    assert back.to_json() == cert.to_json()
    assert [r.lines for r in back.regions] == [r.lines for r in cert.regions]


def test_a_ray_pointing_out_of_its_region_is_rejected():
    net = one_layer([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])
    cert = certify(net, None)
    bad = copy.deepcopy(cert)
    r = next(r for r in bad.regions if r.rays)
    r.rays[0] = tuple(-c for c in r.rays[0])
    with pytest.raises(CertificateError, match="ray 0 leaves the region"):
        exactrelu.check(bad, net)
