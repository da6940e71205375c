"""Cross-checks of the float and exact paths on generated networks (Hypothesis).

Every test draws small networks from :mod:`exactrelu.strategies`, certifies them with
:func:`exactrelu.verify` and re-derives a property of the certificate independently, in
``fractions.Fraction`` arithmetic where it matters. Failures shrink to a small network and domain.
The number of examples comes from the Hypothesis profile (``ci``: 25 per test, ``nightly``: 2000).
"""

from __future__ import annotations

import copy
import importlib
import itertools
import tempfile
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import _exact
from exactrelu.certificate import Certificate, canonical_hyperplane
from exactrelu.strategies import boxes, domains, networks

KINDS = st.sampled_from(["mlp", "mlp", "conv", "residual"])
ACTS = st.sampled_from(["relu", "leaky_relu", "hardtanh", "mixed"])


DEGENERATE = st.booleans()


@st.composite
def nets(draw: Any, d: int, widths: tuple[int, int] = (1, 6), kind: Any = KINDS,
         activation: Any = ACTS, degenerate: Any = DEGENERATE) -> nn.Module:
    return draw(networks(input_dim=d, kind=draw(kind), activation=draw(activation),
                         degenerate=draw(degenerate), widths=widths))


def certify(net: nn.Module, domain: Any) -> Certificate:
    return exactrelu.verify(net, domain, input_shape=net.input_shape, progress=False)


def patterns_of(cert: Certificate) -> set[tuple]:
    return {tuple(tuple(s) for s in r.pattern) for r in cert.regions}


def counts(cert: Certificate) -> tuple[int, int, int]:
    return cert.num_regions, cert.num_pieces, cert.num_vertices


def dot(a: Any, x: Any) -> Fraction:
    return sum((Fraction(u) * Fraction(v) for u, v in zip(a, x, strict=True)), Fraction(0))


def rank(rows: list[list[Fraction]]) -> int:
    """Rank by Gaussian elimination over the rationals."""
    m = [list(r) for r in rows]
    r = 0
    ncols = len(m[0]) if m else 0
    for c in range(ncols):
        piv = next((i for i in range(r, len(m)) if m[i][c] != 0), None)
        if piv is None:
            continue
        m[r], m[piv] = m[piv], m[r]
        for i in range(len(m)):
            if i != r and m[i][c] != 0:
                f = m[i][c] / m[r][c]
                m[i] = [x - f * y for x, y in zip(m[i], m[r], strict=True)]
        r += 1
    return r


def exact_point_pattern(prog: exactrelu.Program, t: tuple) -> tuple[tuple, bool]:
    """(pattern at the rational point t, whether some switching function is exactly zero there)."""
    collect: list = []
    _, states = prog.exact_run(_exact.constant_map(list(t), prog.input_shape), collect=collect)
    tie = any(v == 0 for m in collect for v in m.values())
    return tuple(tuple(s.reshape(-1).tolist()) for s in states), tie


def grid(domain: Any, n: int) -> list[tuple]:
    """Rational points of an n^d grid over the bounding box of ``domain``, strictly inside it."""
    vs = domain.vertices()
    lo = [min(v[i] for v in vs) for i in range(domain.dim)]
    hi = [max(v[i] for v in vs) for i in range(domain.dim)]
    axes = [[lo[i] + (hi[i] - lo[i]) * Fraction(2 * k + 1, 2 * n) for k in range(n)]
            for i in range(domain.dim)]
    A, b = domain.halfspaces()
    return [p for p in itertools.product(*axes)
            if all(dot(row, p) < bi for row, bi in zip(A, b, strict=True))]


# ----------------------------------------------------------------------------- counts and geometry


@given(nets(2), domains(2))
def test_euler_relation_in_2d(net: nn.Module, dom: Any) -> None:
    cert = certify(net, dom)
    assert cert.num_vertices - len(cert.edges()) + cert.num_regions == 1


@given(st.integers(1, 3).flatmap(lambda d: st.tuples(nets(d, widths=(1, 4)), domains(d))))
def test_volumes_sum_to_the_domain(case: tuple) -> None:
    net, dom = case
    cert = certify(net, dom)
    vols = [r.volume for r in cert.regions]
    assert all(v is not None and v > 0 for v in vols)
    assert sum(vols) == dom.volume()


@given(st.integers(1, 3).flatmap(lambda d: st.tuples(nets(d, widths=(1, 4)), domains(d))))
def test_pieces_never_outnumber_regions(case: tuple) -> None:
    net, dom = case
    cert = certify(net, dom)
    assert 1 <= cert.num_pieces <= cert.num_regions
    assert len(cert.pieces) == cert.num_regions


def _span(cert: Certificate, f: Any, direction: tuple) -> tuple[Fraction, Fraction]:
    ps = [dot(cert.vertices[k], direction) for k in f.vertices]
    return min(ps), max(ps)


def _overlap(cert: Certificate, fi: Any, fj: Any, direction: tuple) -> bool:
    """Whether two facets on one line of a 2-D certificate overlap in a segment."""
    (lo_i, hi_i), (lo_j, hi_j) = _span(cert, fi, direction), _span(cert, fj, direction)
    return min(hi_i, hi_j) > max(lo_i, lo_j)


@given(st.integers(1, 3).flatmap(lambda d: st.tuples(nets(d, widths=(1, 4)), domains(d))))
def test_adjacency_is_unique_and_shares_a_facet(case: tuple) -> None:
    net, dom = case
    cert = certify(net, dom)
    pairs = [(a.i, a.j) for a in cert.adjacency]
    assert all(i < j for i, j in pairs), "adjacency pairs are stored once, i < j"
    assert len(set(pairs)) == len(pairs), "an adjacent pair is listed twice"
    for adj in cert.adjacency:
        key, _ = canonical_hyperplane(adj.a, adj.b)
        sides = {}
        for idx in (adj.i, adj.j):
            on = [(f, canonical_hyperplane(f.a, f.b)[1]) for f in cert.regions[idx].facets
                  if canonical_hyperplane(f.a, f.b)[0] == key]
            assert on, f"region {idx} has no facet on the hyperplane of its adjacency"
            sides[idx] = on
        # The two regions lie on opposite sides and their facets overlap in a (d-1)-face.
        if cert.dim == 1:
            assert any(si != sj for _, si in sides[adj.i] for _, sj in sides[adj.j])
        elif cert.dim == 2:
            a = key[0]
            direction = (-a[1], a[0])
            assert any(si != sj and _overlap(cert, fi, fj, direction)
                       for fi, si in sides[adj.i] for fj, sj in sides[adj.j]), \
                f"regions {adj.i} and {adj.j} touch in less than a segment"
        else:
            assert any(si != sj for _, si in sides[adj.i] for _, sj in sides[adj.j])


@given(st.integers(1, 3).flatmap(lambda d: st.tuples(nets(d, widths=(1, 4)), domains(d))))
def test_every_vertex_has_d_independent_tight_constraints(case: tuple) -> None:
    net, dom = case
    cert = certify(net, dom)
    d = cert.dim
    for r in cert.regions:
        for f in r.facets:
            for k in f.vertices:
                assert dot(f.a, cert.vertices[k]) == f.b, "a facet's vertex is not on the facet"
        for k in r.vertices:
            v = cert.vertices[k]
            assert all(dot(f.a, v) <= f.b for f in r.facets), \
                f"vertex {k} is outside region {r.index}"
            tight = [list(f.a) for f in r.facets if dot(f.a, v) == f.b]
            assert rank(tight) == d, \
                f"vertex {k} of region {r.index} is tight on rank {rank(tight)} < {d}"


@given(nets(1), boxes(1),
       st.lists(st.fractions(0, 1).filter(lambda q: 0 < q < 1), min_size=1, max_size=3))
def test_1d_count_is_interior_breakpoints_plus_one(net: nn.Module, box: Any, ts: list) -> None:
    cert = certify(net, box)
    prog = exactrelu.capture(net, net.input_shape)
    xs = sorted(v[0] for v in cert.vertices)
    lo, hi = box.lower[0], box.upper[0]
    assert xs[0] == lo and xs[-1] == hi
    interior = [x for x in xs if lo < x < hi]
    assert cert.num_regions == len(interior) + 1
    # Independently: the exact pattern is constant inside each interval and changes at each
    # breakpoint.
    have = patterns_of(cert)
    previous = None
    for a, b in itertools.pairwise(xs):
        inside = {exact_point_pattern(prog, (a + (b - a) * t,))[0] for t in [Fraction(1, 2), *ts]}
        assert len(inside) == 1, f"the pattern changes inside ({a}, {b}): a missed breakpoint"
        (p,) = inside
        assert p in have
        assert p != previous, f"no pattern change at the breakpoint {a}"
        previous = p


# ----------------------------------------------------------------------------- invariances


def _hidden_linears(net: nn.Sequential) -> list[int]:
    return [i for i, m in enumerate(net) if isinstance(m, nn.Linear)]


@given(st.integers(1, 2).flatmap(lambda d: st.tuples(
    nets(d, kind=st.just("mlp")), boxes(d))), st.randoms(use_true_random=False))
def test_counts_are_invariant_under_permuting_hidden_units(case: tuple, rnd: Any) -> None:
    net, box = case
    lin = _hidden_linears(net)
    other = copy.deepcopy(net)
    with torch.no_grad():
        for a, b in itertools.pairwise(lin):
            perm = list(range(other[a].out_features))
            rnd.shuffle(perm)
            other[a].weight.copy_(other[a].weight[perm])
            other[a].bias.copy_(other[a].bias[perm])
            other[b].weight.copy_(other[b].weight[:, perm])
    c1, c2 = certify(net, box), certify(other, box)
    assert counts(c1) == counts(c2)


@given(st.integers(1, 2).flatmap(lambda d: st.tuples(
    nets(d, kind=st.just("mlp"), activation=st.sampled_from(["relu", "leaky_relu"])), boxes(d))),
    st.data())
def test_counts_are_invariant_under_positive_rescaling_of_a_unit(case: tuple,
                                                                  data: st.DataObject) -> None:
    # ReLU and LeakyReLU are positively homogeneous; c is a power of two so floats stay exact.
    net, box = case
    lin = _hidden_linears(net)
    other = copy.deepcopy(net)
    layer = data.draw(st.integers(0, len(lin) - 2), label="layer")
    a, b = lin[layer], lin[layer + 1]
    unit = data.draw(st.integers(0, other[a].out_features - 1), label="unit")
    c = data.draw(st.sampled_from([2.0, 4.0, 0.5, 0.25]), label="c")
    with torch.no_grad():
        other[a].weight[unit] *= c
        other[a].bias[unit] *= c
        other[b].weight[:, unit] /= c
    c1, c2 = certify(net, box), certify(other, box)
    assert counts(c1) == counts(c2)
    assert patterns_of(c1) == patterns_of(c2)


# ----------------------------------------------------------------------------- certificate, checker


@given(st.integers(1, 2).flatmap(lambda d: st.tuples(nets(d), domains(d))))
def test_certificate_round_trips_through_json_and_the_checker_accepts_it(case: tuple) -> None:
    net, dom = case
    cert = certify(net, dom)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "c.json"
        cert.save(path)
        loaded = Certificate.load(path)
        exactrelu.check(str(path), net)
    assert loaded.to_json() == cert.to_json()
    assert loaded.num_regions == cert.num_regions and loaded.vertices == cert.vertices
    exactrelu.check(cert, net)


@given(st.integers(1, 3).flatmap(lambda d: st.tuples(nets(d, widths=(1, 4)), domains(d))))
def test_grid_patterns_are_certified_patterns(case: tuple) -> None:
    net, dom = case
    cert = certify(net, dom)
    prog = exactrelu.capture(net, net.input_shape)
    have = patterns_of(cert)
    n = {1: 41, 2: 9, 3: 4}[dom.dim]
    seen = set()
    for p in grid(dom, n):
        pat, tie = exact_point_pattern(prog, p)
        if not tie:
            assert pat in have, f"the exact pattern at the grid point {p} is not certified"
            seen.add(pat)
    assert len(seen) <= cert.num_regions


def _float_tracer() -> Any:
    try:
        mod = importlib.import_module("exactrelu.trace")
    except ImportError:
        return None
    return getattr(mod, "trace", None)


@given(st.integers(1, 2).flatmap(lambda d: st.tuples(nets(d), domains(d))))
def test_float_trace_regions_are_certified_or_reported_spurious(case: tuple) -> None:
    net, dom = case
    cert = certify(net, dom)
    trace = _float_tracer()
    if trace is None:  # no tracer yet: the certificate must at least cover a sampled grid
        prog = exactrelu.capture(net, net.input_shape)
        pats = {exact_point_pattern(prog, p) for p in grid(dom, 9 if dom.dim == 2 else 41)}
        assert {p for p, tie in pats if not tie} <= patterns_of(cert)
        return
    tr = trace(net, dom, input_shape=net.input_shape, progress=False)
    have = patterns_of(cert)
    float_pats = {tuple(tuple(p[r].reshape(-1).tolist()) for p in tr.patterns)
                  for r in range(tr.num_regions)}
    uncertified = float_pats - have
    assert len(uncertified) <= cert.stats.get("spurious", 0), (
        f"{len(uncertified)} float regions are neither certified nor reported spurious "
        f"(stats {cert.stats}); e.g. {sorted(uncertified)[:3]}")
    assert cert.stats.get("float_regions") == tr.num_regions


def test_strategies_generate_the_network_kinds_the_crosschecks_rely_on() -> None:
    @settings(max_examples=5)
    @given(networks(input_dim=2, kind="residual", depth=2))
    def residual_has_an_add(net: nn.Module) -> None:
        assert any(type(nd.module).__name__ == "Add" for nd in exactrelu.capture(net, (2,)).nodes)

    residual_has_an_add()


@pytest.mark.parametrize("d", [1, 2])
def test_degenerate_nets_certify(d: int) -> None:
    @given(networks(input_dim=d, degenerate=True, widths=(2, 6), activation="mixed"), boxes(d))
    def run(net: nn.Module, box: Any) -> None:
        cert = certify(net, box)
        assert sum(r.volume for r in cert.regions) == box.volume()
        exactrelu.check(cert, net)

    run()
