"""The compiled exact layer (exactrelu._core) against the Python one.

Both engines implement the same construction and today give the same certificate entry by
entry: regions in the same order with the same patterns, witnesses, facets, vertices, output
maps and volumes, the same vertex numbering, adjacency, pieces and statistics; this file holds
them to that (the seam's own contract, equal canonical forms, is tests/test_engines.py). The
Python engine is the reference here; the checker (which shares no code with either) re-verifies
the compiled engine's certificates on its own.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction
from typing import Any

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu.capture import capture
from exactrelu.domain import Polytope, RealSpace, Slice
from exactrelu.engines import compiled as compiled_engine
from exactrelu.errors import InvalidInputError
from exactrelu.strategies import domains, networks
from exactrelu.trace import trace as float_trace


def comparable(cert: exactrelu.Certificate) -> dict:
    """The certificate as JSON without what differs by engine: timings and the engine's own
    notes."""
    data = cert.to_json()
    data["stats"] = dict(data["stats"])  # to_json shares the certificate's own dict
    for key in ("seconds", "engine", "compiled_ms", "compiled_limbs"):
        data["stats"].pop(key, None)
    return data


def both(net: nn.Module, domain: Any, threads: int = 2,
         **kw: Any) -> tuple[exactrelu.Certificate, exactrelu.Certificate]:
    shape = getattr(net, "input_shape", None)
    if isinstance(domain, Slice):
        shape = None
    compiled = exactrelu.verify(net, domain, input_shape=shape, progress=False, engine="compiled",
                                workers=threads, **kw)
    python = exactrelu.verify(net, domain, input_shape=shape, progress=False, engine="python",
                              workers=1, **kw)
    assert compiled.stats["engine"] == "compiled" and python.stats["engine"] == "python"
    return compiled, python


def assert_same(net: nn.Module, domain: Any, threads: int = 2, **kw: Any) -> exactrelu.Certificate:
    compiled, python = both(net, domain, threads, **kw)
    a, b = comparable(compiled), comparable(python)
    if a != b:
        diff = [k for k in a if a[k] != b[k]]
        raise AssertionError(f"the engines differ in {diff}")
    return compiled


def mlp(widths: tuple[int, ...], seed: int, act: Any = nn.ReLU, out: int = 2) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), act()]
    layers.append(nn.Linear(widths[-1], out))
    return nn.Sequential(*layers).eval()


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.out = nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.a(x))
        return self.out(h + torch.relu(self.b(h)))


def test_compiled_layer_is_built():
    # CI builds it (scripts/setup.sh); without it every 2-D certification falls back to Python
    assert compiled_engine.available()


ACTS = st.sampled_from(["relu", "leaky_relu", "hardtanh", "mixed"])


def nets_on(d: int, degenerate: bool) -> Any:
    """(net, domain) pairs: small MLPs with any elementwise op on d-D boxes and polytopes."""
    depth, widths = ((1, 3), (1, 6 if degenerate else 8)) if d == 2 \
        else ((1, 2), (1, 5 if degenerate else 7))
    return st.tuples(ACTS.flatmap(lambda act: networks(input_dim=d, depth=depth, widths=widths,
                                                       activation=act, kind="mlp",
                                                       degenerate=degenerate)), domains(d))


@given(nets_on(2, degenerate=True))
def test_degenerate_nets_same_certificate(case):
    # duplicated, negated, zero and dead units, lines through one point, parallel families
    net, domain = case
    exactrelu.check(assert_same(net, domain), net)


@given(nets_on(2, degenerate=False))
def test_generic_nets_same_certificate(case):
    net, domain = case
    exactrelu.check(assert_same(net, domain), net)


@given(nets_on(3, degenerate=True))
def test_degenerate_3d_nets_same_certificate(case):
    # 3-D cells split by incidence (the edge test of Fukuda and Prodon), facets from tight sets,
    # volumes by pulling triangulation, adjacency by separating lines in the shared plane
    net, domain = case
    exactrelu.check(assert_same(net, domain), net)


@given(nets_on(3, degenerate=False))
def test_generic_3d_nets_same_certificate(case):
    assert_same(*case)


@given(st.sampled_from([4, 5, 6]).flatmap(lambda d: st.tuples(
    ACTS.flatmap(lambda act: networks(input_dim=d, depth=(1, 2), widths=(2, 5), activation=act,
                                      kind="mlp", degenerate=True)), domains(d, max_side=1))))
def test_nets_above_3d_same_certificate(case):
    # d-D vertices from d independent rows, facets from tight sets, no volumes; adjacency by
    # twin facets, shared simplices and separating facets, the rest by the exact LP
    net, domain = case
    cert = assert_same(net, domain)
    assert all(r.volume is None for r in cert.regions)


@given(st.sampled_from(["relu", "mixed"]).flatmap(
    lambda act: networks(input_dim=2, depth=(1, 2), widths=(1, 4), activation=act, kind="conv",
                         degenerate=True)), domains(2))
def test_conv_nets_same_certificate(net, domain):
    # Conv1d layers, Flatten and Linear composed into one affine layer per piecewise op
    assert compiled_engine.plan(capture(net, net.input_shape), domain) is not None
    assert_same(net, domain)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("act", [nn.ReLU, lambda: nn.LeakyReLU(0.1),
                                 lambda: nn.Hardtanh(-0.25, 0.5)])
@pytest.mark.parametrize("d", [2, 3])
def test_default_init_nets_same_certificate(seed, act, d):
    # float32 weights of every exponent: maps of several limbs
    net = mlp((d, 12, 10, 8) if d == 2 else (d, 8, 6), seed, act)
    cert = assert_same(net, [(-1, 1)] * d)
    assert max(cert.stats["compiled_limbs"]) >= 2
    exactrelu.check(cert, net)


def test_plane_slice_through_images_same_certificate():
    torch.manual_seed(3)
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 6), nn.ReLU(),
                        nn.Linear(6, 3)).eval()
    x = [torch.rand(1, 3, 3).tolist() for _ in range(3)]
    domain = Slice.plane(x[0], x[1], x[2], bounds=[(-1, 1), (-1, 1)])
    cert = assert_same(net, domain)
    exactrelu.check(cert, net)


def test_polygon_domain_same_certificate():
    net = mlp((2, 16, 16), 4)
    tri = Polytope([[Fraction(-1), Fraction(0)], [Fraction(0), Fraction(-1)],
                    [Fraction(1), Fraction(1)]],
                   [Fraction(1), Fraction(1), Fraction(1, 3)])
    assert_same(net, tri)


@pytest.mark.parametrize("threads", [1, 3, 7])
def test_thread_count_does_not_change_the_certificate(threads):
    net = mlp((2, 24, 24, 24), 5)
    one = exactrelu.verify(net, [(-1, 1)] * 2, progress=False, engine="compiled", workers=1)
    many = exactrelu.verify(net, [(-1, 1)] * 2, progress=False, engine="compiled", workers=threads)
    assert comparable(one) == comparable(many)


def test_gmp_fallback_same_certificate():
    # weights from 2^-70 to 1 in one layer: integer weights beyond 64 bits, so the maps after it
    # are GMP integers, not limbs
    torch.manual_seed(6)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(),
                        nn.Linear(5, 1)).double().eval()
    with torch.no_grad():
        net[2].weight[0, 0] = 2.0 ** -70
        net[2].weight[1, 1] = 3 * 2.0 ** -69
    cert = assert_same(net, [(-1, 1)] * 2)
    assert 0 in cert.stats["compiled_limbs"]
    exactrelu.check(cert, net)


def test_wide_integers_same_certificate():
    # LeakyReLU(0.01) has slopes over 2^59 and float64 weights 53-bit mantissas: after a few
    # layers the maps need more than one or two limbs
    torch.manual_seed(7)
    net = nn.Sequential(*[m for _ in range(4)
                          for m in (nn.Linear(2 if _ == 0 else 5, 5), nn.LeakyReLU(0.01))],
                        nn.Linear(5, 1)).double().eval()
    cert = assert_same(net, [(-1, 1)] * 2)
    assert max(cert.stats["compiled_limbs"]) >= 4


@pytest.mark.parametrize("seed, near, tiny",
                         [(0, -45, -40), (1, -50, -20), (3, -45, -20), (4, -50, -40)])
def test_near_ties_on_wide_limbs_same_certificate(seed, near, tiny):
    # rows read off maps of three to five limbs (tiny weights), converted to floats for the sign
    # filter: lines through the origin, duplicated and negated units (rows vanishing at the
    # vertices they make, exactly), a unit within a relative 2^-45 or 2^-50 of another (its signs
    # at the other's vertices at the edge of what the filter decides, or beyond it: exact), and
    # negative weights and slopes throughout (the signed multiply-adds on limbs)
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 7), nn.LeakyReLU(0.01), nn.Linear(7, 7), nn.LeakyReLU(0.01),
                        nn.Linear(7, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()
    with torch.no_grad():
        w0, b0 = net[0].weight, net[0].bias
        b0[:3] = 0.0
        w0[3], b0[3] = w0[0], b0[0]
        w0[4], b0[4] = -w0[1], -b0[1]
        w2, b2 = net[2].weight, net[2].bias
        w2[1], b2[1] = w2[0] * (1 + 2.0 ** near), b2[0] * (1 + 2.0 ** near)
        w2[2], b2[2] = -w2[0], -b2[0]
        w2[3] *= 2.0 ** tiny
        w4, b4 = net[4].weight, net[4].bias
        w4[1], b4[1] = -w4[0], -b4[0]
        b4[2] = 0.0
    cert = assert_same(net, [(-1, 1)] * 2)
    assert max(cert.stats["compiled_limbs"]) >= 3
    exactrelu.check(cert, net)


@pytest.mark.parametrize("seed, near",
                         [(0, None), (1, None), (4, None), (8, None), (3, -45), (5, -50), (6, -30)])
def test_near_ties_in_maps_kept_as_updates_same_certificate(seed, near):
    # the maps of cells after the second op and later are kept as the first sibling's map plus
    # rank-one updates, their rows read as doubles with an error bound (Map, Certifier::delta_maps).
    # Without `near`: two units of op 1 on one line (one 3 times the other, of more than 53
    # bits: their doubles are not 3 times each other) and units of op 2 that weigh them by 3
    # 2^10 and -2^10 (exactly 0 together; the doubles' error, from terms 2^10 times the rows'
    # size, far above the filter's relative one), a duplicate (its row vanishing exactly at the
    # vertices the first makes), a negation, and one that is unit 2 of op 1 besides (its row
    # vanishing exactly on the facets unit 2 makes: a filter without the doubles' error bound
    # takes a wrong sign there); with `near`, a unit within a relative 2^near of another and two
    # duplicates of it; lines through the origin; the same again at op 3, whose maps are updates
    # of maps kept as updates
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 8),
                        nn.LeakyReLU(0.25), nn.Linear(8, 8), nn.ReLU(),
                        nn.Linear(8, 2)).double().eval()
    with torch.no_grad():
        for layer in list(net)[2::2]:
            if isinstance(layer, nn.Linear):  # float32 values (products with 3 stay exact)
                layer.weight.copy_(layer.weight.float().double())
                layer.bias.copy_(layer.bias.float().double())
        b0 = net[0].bias
        b0[:3] = 0.0
        w2, b2 = net[2].weight, net[2].bias
        w2[1], b2[1] = w2[0] * 3, b2[0] * 3
        b2[2] = 0.0
        for w, b in ((net[4].weight, net[4].bias), (net[6].weight, net[6].bias)):
            if near is None:
                w[:, 0], w[:, 1] = 3 * 2.0 ** 10, -(2.0 ** 10)
                w[2], b[2] = -w[0], -b[0]
                w[3, 2:], b[3] = 0.0, 0.0
                w[3, 2] = 1.0
            else:
                w[3], b[3] = w[0] * (1 + 2.0 ** near), b[0] * (1 + 2.0 ** near)
                w[2], b[2] = w[3], b[3]
            w[1], b[1] = w[0], b[0]
            b[5] = 0.0
    cert = assert_same(net, [(-1, 1)] * 2)
    limbs = cert.stats["compiled_limbs"]
    assert limbs[1] > 0 and limbs[2] > 0, limbs  # fixed-width maps (not GMP) where updates are kept
    exactrelu.check(cert, net)


def test_statistics_match_when_the_trace_is_wrong():
    # the trace of another network proposes wrong cells and misses real ones: both engines count
    # the same candidates, spurious and repaired cells and flag the same regions as repaired
    net, other = mlp((2, 8, 8), 8), mlp((2, 8, 8), 9)
    wrong = float_trace(other, [(-1, 1)] * 2, progress=False)
    compiled, python = both(net, [(-1, 1)] * 2, trace=wrong)
    assert comparable(compiled) == comparable(python)
    st = compiled.stats
    assert st["spurious"] > 0 and st["repaired"] > 0
    assert sum(r.repaired for r in compiled.regions) > 0
    assert st["confirmed"] + st["repaired"] == st["cells"]


@pytest.mark.parametrize("case, why", [
    ("7d", "6-D"), ("maxpool", "ReLU, LeakyReLU and Hardtanh"),
    ("residual", "chain"),
])
def test_compiled_engine_says_what_it_cannot_take(case, why):
    torch.manual_seed(0)
    domain: Any = [(-1, 1)] * 2
    if case == "7d":
        net, domain = mlp((7, 4), 0), [(-1, 1)] * 7
    elif case == "maxpool":
        net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                            nn.Linear(2, 1)).double()
        x = torch.randn(3, 1, 3, 3, dtype=torch.float64)
        domain = Slice.plane(x[0], x[1], x[2])
    else:
        net = Residual()
    with pytest.raises(InvalidInputError, match=why):
        exactrelu.verify(net, domain, progress=False, engine="compiled")
    auto = exactrelu.verify(net, domain, progress=False, engine="auto")
    assert auto.stats["engine"] == "python"


def test_engine_argument_is_checked():
    net = mlp((2, 4), 0)
    with pytest.raises(InvalidInputError, match="engine"):
        exactrelu.verify(net, [(-1, 1)] * 2, progress=False, engine="fast")
    with pytest.raises(InvalidInputError, match="executor"):
        exactrelu.verify(net, [(-1, 1)] * 2, progress=False, engine="compiled", executor=object())


@pytest.mark.parametrize("spec", [None, (1, 2), ("root", [], 0),
                                  (([], [], (0, 1, 0, 1), (1, 1), 1, []), [], 0)])
def test_core_rejects_malformed_input(spec):
    # a bad spec is a Python exception, never a crash of the interpreter
    with pytest.raises((TypeError, ValueError)):
        compiled_engine._core.certify2d(spec, 1, None)


def test_a_signal_handler_exception_stops_the_compiled_engine():
    # Ctrl-C (or any signal handler that raises) ends a long certification promptly: the core
    # runs Python's signal handlers every 50 ms and stops its worker threads
    import signal
    import time

    from exactrelu.domain import as_domain

    class Stop(Exception):
        pass

    def raise_stop(signum, frame):
        raise Stop()

    net = mlp((2, 256, 256, 256), 5)  # about 110,000 regions: seconds of work
    dom = as_domain([(-1, 1)] * 2)
    prog = capture(net, (2,))
    pl = compiled_engine.plan(prog, dom)
    old = signal.signal(signal.SIGALRM, raise_stop)
    try:
        t0 = time.perf_counter()
        signal.setitimer(signal.ITIMER_REAL, 0.3)
        with pytest.raises(Stop):
            compiled_engine.certify(prog, dom, pl, None, 2)
        elapsed = time.perf_counter() - t0
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    assert elapsed < 2.5
    # and the next certification runs normally
    assert exactrelu.verify(mlp((2, 4), 1), [(-1, 1)] * 2, progress=False,
                            engine="compiled").num_regions >= 1


def test_progress_reports_every_subtree(monkeypatch):
    # the calling thread hears of finished subtrees, in order, while the workers certify
    from exactrelu.domain import as_domain

    net = mlp((2, 64, 64, 64), 5)
    dom = as_domain([(-1, 1)] * 2)
    prog = capture(net, (2,))
    quiet = compiled_engine.certify(prog, dom, compiled_engine.plan(prog, dom), None, 2)
    seen = []
    real = compiled_engine._core.certify2d
    monkeypatch.setattr(compiled_engine._core, "certify2d",
                        lambda *args: real(*args[:3],
                                           lambda done, total: seen.append((done, total))))
    told = compiled_engine.certify(prog, dom, compiled_engine.plan(prog, dom), None, 2)
    done = [d for d, _ in seen]
    assert seen and done == sorted(done) and all(0 <= d <= t for d, t in seen)
    assert seen[-1][0] == seen[-1][1] > 1
    assert told.num_regions == quiet.num_regions


# ----------------------------------------------------------------------------- unbounded domains
# On all of R^d the compiled engine cuts the domain to a box holding every vertex and takes the
# box back out; its regions come in the Python engine's order with the same patterns, maps,
# facets, vertices, rays and lines (its witnesses and vertex numbering are its own, compared
# through the canonical form in tests/test_engines.py).

def _same_regions(net: nn.Module, domain: Any) -> exactrelu.Certificate:
    compiled, python = both(net, domain)
    assert [r.pattern for r in compiled.regions] == [r.pattern for r in python.regions]
    for a, b in zip(compiled.regions, python.regions, strict=True):
        assert a.output == b.output and a.volume is None and b.volume is None
        assert sorted(a.rays) == sorted(b.rays) and a.lines == b.lines
        assert sorted(compiled.vertices[v] for v in a.vertices) == \
            sorted(python.vertices[v] for v in b.vertices)
        assert sorted((f.ids, f.a, f.b, sorted(a.rays[k] for k in f.rays)) for f in a.facets) \
            == sorted((f.ids, f.a, f.b, sorted(b.rays[k] for k in f.rays)) for f in b.facets)
    assert sorted(compiled.vertices) == sorted(python.vertices)
    exactrelu.check(compiled, net)
    return compiled


@pytest.mark.parametrize("d, n", [(2, 6), (3, 5), (4, 5)])
def test_generic_arrangement_on_rd(d, n):
    # n hyperplanes in general position in R^d: sum_{k <= d} C(n, k) regions, C(n, d) vertices;
    # in R^2 the 2n unbounded regions each have two rays (between two lines that diverge)
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(d, n), nn.ReLU(), nn.Linear(n, 1)).double()
    cert = _same_regions(net, RealSpace(d))
    assert cert.num_regions == sum(math.comb(n, k) for k in range(d + 1))
    assert len(cert.vertices) == math.comb(n, d)
    if d == 2:
        assert sorted(len(r.rays) for r in cert.regions if r.rays) == [2] * (2 * n)


def test_far_vertex_on_r2():
    # two lines meeting at x = 2^40: the box the compiled engine runs on must hold that vertex
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[0.0, 1.0], [-(2.0 ** -40), 1.0]], dtype=torch.float64))
        net[0].bias.copy_(torch.tensor([0.0, 1.0], dtype=torch.float64))
    cert = _same_regions(net, RealSpace(2))
    assert cert.vertices == [(Fraction(2 ** 40), Fraction(0))] and cert.num_regions == 4


@settings(max_examples=10)
@given(nets_on(2, degenerate=True).map(lambda case: case[0]))
def test_degenerate_nets_on_r2_same_regions(net):
    _same_regions(net, RealSpace(2))
