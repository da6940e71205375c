"""The exact arrangement path of the certifier (all children of a bounded parent at once) against
the per-candidate path (cells one at a time from the float trace's proposals, closed under facet
crossing) and against counts known by construction. Two different algorithms must give the same
exact certificate, region by region."""

from __future__ import annotations

import itertools
from fractions import Fraction
from types import SimpleNamespace

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu.rules import _ElementwiseRule


def _set(layer: nn.Linear, W: list, b: list) -> None:
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(W, dtype=torch.float32))
        layer.bias.copy_(torch.tensor(b, dtype=torch.float32))


def _summary(cert: exactrelu.Certificate) -> dict:
    """Everything exact about a certificate that does not depend on the order of regions or
    vertices, nor on the choice of witnesses."""
    out = {}
    for r in cert.regions:
        key = tuple(tuple(s) for s in r.pattern)
        verts = frozenset(cert.vertices[k] for k in r.vertices)
        facets = frozenset((f.a, f.b, tuple(f.ids), frozenset(cert.vertices[k] for k in f.vertices))
                           for f in r.facets)
        out[key] = (verts, facets, r.volume, tuple(map(tuple, r.output)))
    pats = {r.index: tuple(tuple(s) for s in r.pattern) for r in cert.regions}
    adj = frozenset((frozenset((pats[a.i], pats[a.j])), a.a, a.b, a.ids) for a in cert.adjacency)
    return {"regions": out, "adjacency": adj, "pieces": cert.num_pieces}


def _both(net: nn.Module, bounds: list, monkeypatch: pytest.MonkeyPatch) -> tuple:
    fast = exactrelu.verify(net, bounds, progress=False, workers=1)
    with monkeypatch.context() as m:
        m.setattr(_ElementwiseRule, "sign_cells", False)
        slow = exactrelu.verify(net, bounds, progress=False, workers=1)
    return fast, slow


def _random_net(sizes: tuple, act: type = nn.ReLU, seed: int = 0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(sizes[:-1]):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("sizes,act,seed", [
    ((1, 6, 6, 1), nn.ReLU, 1),
    ((2, 8, 8, 1), nn.ReLU, 2),
    ((2, 6, 6, 6, 2), nn.LeakyReLU, 3),
    ((2, 6, 6, 1), nn.Hardtanh, 4),
    ((3, 5, 5, 1), nn.ReLU, 5),
])
def test_arrangement_equals_per_candidate_path(sizes: tuple, act: type, seed: int,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    net = _random_net(sizes, act, seed)
    bounds = [(-1.5, 1.5)] * sizes[0]
    fast, slow = _both(net, bounds, monkeypatch)
    assert fast.num_regions == slow.num_regions
    assert _summary(fast) == _summary(slow)
    exactrelu.check(fast, net)


def test_central_planes_in_3d_have_the_zaslavsky_count(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four planes through the origin of R^3, any three independent: a central arrangement in
    general position has 2 (C(3,0) + C(3,1) + C(3,2)) = 14 regions; every cell touches the common
    vertex, the degenerate case for the edge test (many facets through one vertex)."""
    net = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 1))
    _set(net[0], [[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]], [0, 0, 0, 0])
    _set(net[2], [[1, -2, 3, -4]], [0])
    fast, slow = _both(net, [(-1, 1)] * 3, monkeypatch)
    assert fast.num_regions == 14
    assert _summary(fast) == _summary(slow)
    # every region has the origin as a vertex, and the volumes fill the cube exactly
    origin = (Fraction(0),) * 3
    assert all(origin in {fast.vertices[k] for k in r.vertices} for r in fast.regions)
    assert sum(r.volume for r in fast.regions) == 8
    exactrelu.check(fast, net)


def test_duplicated_negated_and_zero_units(monkeypatch: pytest.MonkeyPatch) -> None:
    """A unit, its copy, its negation and a zero unit: one line, two regions in the first layer;
    the facet on the line carries all three units' ids, the zero unit none."""
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1))
    _set(net[0], [[1, 2, ], [1, 2], [-1, -2], [0, 0]], [0.5, 0.5, -0.5, 0])
    _set(net[2], [[1, 0, 0, 0], [0, 0, 1, 0], [1, 1, 1, 1]], [-0.25, -0.25, -1])
    fast, slow = _both(net, [(-1, 1)] * 2, monkeypatch)
    assert _summary(fast) == _summary(slow)
    first = {tuple(r.pattern[0]) for r in fast.regions}
    assert first == {(1, 1, 0, 0), (0, 0, 1, 0)}
    line_facets = [f for r in fast.regions for f in r.facets if set(f.ids) & {4, 5, 6}]
    assert line_facets and all({4, 5, 6} <= set(f.ids) and 7 not in f.ids for f in line_facets)
    exactrelu.check(fast, net)


def test_regions_the_trace_missed_are_counted_as_repaired() -> None:
    """Feed the certifier a float trace with one region removed: the certificate is the same,
    and the statistics say one region was repaired."""
    from exactrelu.trace import trace as float_trace

    net = _random_net((2, 8, 8, 1), nn.ReLU, 7)
    bounds = [(-1, 1)] * 2
    tr = float_trace(net, bounds, progress=False)
    full = exactrelu.verify(net, bounds, progress=False, workers=1, trace=tr)
    # the certifier reads only these fields of a trace: drop region 0 from all of them
    R = tr.num_regions
    ids = [tr.bounding_ids[tr.bounding_offsets[r]:tr.bounding_offsets[r + 1]] for r in range(1, R)]
    offsets = torch.tensor([0] + [len(x) for x in ids]).cumsum(0)
    cut = SimpleNamespace(num_regions=R - 1, patterns=[p[1:] for p in tr.patterns],
                          interior=tr.interior[1:],
                          bounding_offsets=offsets, bounding_ids=torch.cat(ids))
    cert = exactrelu.verify(net, bounds, progress=False, workers=1, trace=cut)
    assert cert.num_regions == full.num_regions == R
    assert {tuple(map(tuple, r.pattern)) for r in cert.regions} == \
        {tuple(map(tuple, r.pattern)) for r in full.regions}
    assert cert.stats["repaired"] == 1
    assert full.stats["repaired"] == 0 and full.stats["spurious"] == 0


def test_3d_adjacency_matches_an_exact_lp_on_every_facet_pair() -> None:
    """Adjacency in 3-D (grouped facets, float-filtered boxes, separating-line test) against an
    exact LP on every pair of facets lying on one plane from opposite sides."""
    from exactrelu.certificate import canonical_hyperplane
    from exactrelu.engines.python import _faces_overlap

    net = _random_net((3, 6, 6, 1), nn.ReLU, 11)
    cert = exactrelu.verify(net, [(-1, 1)] * 3, progress=False, workers=1)
    by_plane: dict = {}
    for r in cert.regions:
        for f in r.facets:
            key, side = canonical_hyperplane(f.a, f.b)
            by_plane.setdefault(key, []).append((side, r, f))
    expected = set()
    for items in by_plane.values():
        for s1, r1, f1 in items:
            for s2, r2, _ in items:
                if s1 > 0 > s2 and _faces_overlap(f1, r1, r2):
                    expected.add((min(r1.index, r2.index), max(r1.index, r2.index)))
    got = {(a.i, a.j) for a in cert.adjacency}
    assert len(got) > cert.num_regions  # a real arrangement, many adjacencies
    assert got == expected
