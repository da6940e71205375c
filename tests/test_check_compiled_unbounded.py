"""The checker's compiled pass on unbounded domains (all of R^2 and R^3, Polyhedron domains, slices
over them): regions with rays, every region's vertices and rays proven by walking its edges,
completeness by closure under facet crossing (``across_facet`` in exactrelu/_checkcore.cpp). It
accepts the certificates ``verify`` makes by itself (``compiled`` returns None: it did not fall
back), on fixed nets with duplicated and negated units, LeakyReLU and Hardtanh, and on generated
ones; it rejects every tampered one by itself, and ``exactrelu.check`` then names the claim with the
Python pass's message; the two passes accept the same mutations. Regions with lines and unbounded
domains of 4 and more dimensions stop it with a reason (the Python pass checks them)."""

from __future__ import annotations

import copy
import functools
import itertools
import re
import sys
from fractions import Fraction
from typing import Any

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import CertificateError, RealSpace, Slice, strategies as ers
from exactrelu._columns import views
from exactrelu.certificate import Adjacency, Certificate

from test_check_compiled import (
    as_objects,
    checked_half,
    checkers,
    compiled,
    degenerate,
    malformed_refused,
    mlp,
    parts_joined,
    rejected_by_both,
)
from test_tamper import outcome, renumbered, single_mutations

CHECKER = sys.modules["exactrelu.check"]
pytestmark = pytest.mark.skipif(CHECKER._checkcore is None, reason="built without _checkcore")


def degenerate_hardtanh(d: int, seed: int) -> nn.Module:
    """Hardtanh units (two thresholds), one duplicated and one negated: facets on which both
    copies' constraints vanish, at either threshold."""
    return degenerate(d, seed, nn.Hardtanh)


NETS = {
    "r2": lambda: (mlp(2, [6, 5], 1, out=2), RealSpace(2)),
    "r2-leaky": lambda: (mlp(2, [5, 4], 2, lambda: nn.LeakyReLU(0.1)), RealSpace(2)),
    "r2-hardtanh": lambda: (mlp(2, [5, 4], 3, nn.Hardtanh), RealSpace(2)),
    "r2-degenerate": lambda: (degenerate(2, 12), RealSpace(2)),
    "r2-degenerate-hardtanh": lambda: (degenerate_hardtanh(2, 5), RealSpace(2)),
    "r2-deep": lambda: (mlp(2, [4, 4, 3], 9), RealSpace(2)),
    "r3": lambda: (mlp(3, [5, 4], 7), RealSpace(3)),
    "r3-hardtanh": lambda: (mlp(3, [4, 4], 8, nn.Hardtanh), RealSpace(3)),
    "r3-degenerate": lambda: (degenerate(3, 12), RealSpace(3)),
    "r3-degenerate-hardtanh": lambda: (degenerate_hardtanh(3, 6), RealSpace(3)),
    "polyhedron2": lambda: (mlp(2, [6, 5], 4),
                            exactrelu.Polyhedron([[-1, 0], [1, 2]], [1, 2])),
    "polyhedron3": lambda: (mlp(3, [5, 4], 10),
                            exactrelu.Polyhedron([[0, 0, -1], [1, 1, 0]], [1, 1])),
    "slice2": lambda: (mlp(4, [6, 5], 3),
                       Slice([0.5, 0, -1, 0], [[1, 0, 0, 1], [0, 1, 1, 0]], RealSpace(2))),
    "slice3-polyhedron": lambda: (
        mlp(4, [6, 5], 3), Slice([0.5, 0, -1, 0], [[1, 0, 0, 1], [0, 1, 1, 0], [1, 1, 0, 0]],
                                 exactrelu.Polyhedron([[1, 0, 0]], [1]))),
}


@pytest.fixture(scope="module", params=list(NETS))
def made(request) -> tuple[str, nn.Module, Certificate]:
    net, dom = NETS[request.param]()
    return request.param, net, exactrelu.verify(net, dom, progress=False)


def test_the_compiled_pass_accepts_unbounded_certificates_by_itself(made, tmp_path):
    name, net, cert = made
    assert cert.num_regions > 5, name
    assert not cert.domain.is_bounded
    assert any(r.rays for r in cert.regions) and not any(r.lines for r in cert.regions), name
    assert compiled(cert, net) is None, name
    assert compiled(as_objects(cert), net) is None, name
    path = tmp_path / "c.json"
    cert.save(path)
    loaded = Certificate.load(path)
    assert compiled(loaded, net) is None, name
    assert exactrelu.check(loaded, net, progress=False) is loaded


def test_degenerate_nets_have_facets_of_several_units():
    """The degenerate nets exercise what they are for: facets on which two units' constraints
    vanish (a duplicated pair, or a negated one from either side), at both Hardtanh thresholds."""
    for name in ("r2-degenerate-hardtanh", "r3-degenerate-hardtanh"):
        net, dom = NETS[name]()
        cert = exactrelu.verify(net, dom, progress=False)
        off = cert.constraint_offsets
        n = (off[1] - off[0]) // 2  # units of the first op (two thresholds each)
        multi = [f.ids for r in cert.regions for f in r.facets
                 if sum(off[0] <= c < off[1] for c in f.ids) >= 2]
        assert multi, name
        thresholds = {(c - off[0]) // n for ids in multi for c in ids if off[0] <= c < off[1]}
        assert thresholds == {0, 1}, name


@settings(max_examples=max(8, settings().max_examples // 2), deadline=None)
@given(st.data())
def test_generated_unbounded_certificates_are_accepted_by_the_compiled_pass(data):
    """Every certificate ``verify`` makes on all of R^2 and R^3 for generated chains (degenerate
    ones too: duplicated, negated, zero, dead, concurrent and parallel units; ReLU, LeakyReLU,
    Hardtanh, mixed) is accepted by the compiled pass by itself, unless a region has lines
    (first-layer normals that do not span R^d), which stops it with a reason."""
    d = data.draw(st.sampled_from([2, 3]), label="d")
    net = data.draw(ers.networks(input_dim=d, depth=(1, 2), widths=(2, 5),
                                 degenerate=data.draw(st.booleans(), label="degenerate"),
                                 activation=data.draw(st.sampled_from(ers.ACTIVATIONS))))
    cert = exactrelu.verify(net, RealSpace(d), progress=False)
    reason = compiled(cert, net)
    if any(r.lines for r in cert.regions):
        assert reason is not None and reason.startswith("outside the compiled pass")
    else:
        assert reason is None
        assert compiled(as_objects(cert), net) is None
    assert exactrelu.check(cert, net, progress=False) is cert


def test_outside_the_compiled_pass_on_unbounded_domains():
    """Regions with lines (R^2 cut by parallel lines) and all of R^4 stop the compiled pass with
    a reason; the Python pass accepts them."""
    strips = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        strips[0].weight.copy_(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
        strips[0].bias.copy_(torch.tensor([0.0, -1.0]))
    for net, dom in ((strips, RealSpace(2)), (mlp(4, [3, 2], 5), RealSpace(4))):
        cert = exactrelu.verify(net, dom, progress=False)
        assert (compiled(cert, net) or "").startswith("outside the compiled pass")
        assert compiled(as_objects(cert), net) is not None  # objects: stopped at the region
        assert exactrelu.check(cert, net, progress=False) is cert


# ----------------------------------------------------------------------------- tampering

def small(d: int) -> tuple[nn.Module, Certificate]:
    net = mlp(d, [4, 3], 20 + d)
    return net, exactrelu.verify(net, RealSpace(d), progress=False)


def without_region(cert: Certificate, k: int) -> Certificate:
    """``cert`` with region ``k`` taken out and everything else kept consistent: region indices,
    adjacent pairs and piece labels renumbered, the vertices of no other region dropped (and the
    vertex indices renumbered), so that completeness is the one false claim."""
    bad = as_objects(cert)
    del bad.regions[k]
    labels: dict[int, int] = {}
    bad.pieces = [labels.setdefault(p, len(labels)) for i, p in enumerate(bad.pieces) if i != k]
    kept: list[Adjacency] = []
    for a in bad.adjacency:
        if k not in (a.i, a.j):
            a.i -= a.i > k
            a.j -= a.j > k
            kept.append(a)
    bad.adjacency = kept
    used = sorted({v for r in bad.regions for v in r.vertices})
    new = {v: n for n, v in enumerate(used)}
    bad.vertices = [bad.vertices[v] for v in used]
    for i, r in enumerate(bad.regions):
        r.index = i
        r.vertices = [new[v] for v in r.vertices]
        for f in r.facets:
            f.vertices = tuple(new[v] for v in f.vertices)
    return bad


@pytest.mark.parametrize("d", [2, 3])
def test_every_removed_region_is_caught_by_the_closure(d):
    """Each region in turn taken out (the rest consistent): the compiled pass stops at its
    closure, by itself, and the Python pass names a missing cell."""
    net, cert = small(d)
    assert cert.num_regions > 5
    for k in range(cert.num_regions):
        bad = without_region(cert, k)
        reason = compiled(bad, net)
        assert reason is not None and "completeness" in reason, (k, reason)
        with pytest.raises(CertificateError, match="completeness"):
            exactrelu.check(bad, net, progress=False)


@settings(max_examples=max(6, settings().max_examples // 3), deadline=None)
@given(st.data())
def test_a_region_removed_from_a_generated_certificate_is_caught_by_the_closure(data):
    """A region taken out (the rest consistent) of a certificate of a generated chain on all of
    R^2 or R^3 (degenerate ones too, every activation): the compiled pass stops at its closure
    and check() names a missing cell."""
    d = data.draw(st.sampled_from([2, 3]), label="d")
    net = data.draw(ers.networks(input_dim=d, depth=(1, 2), widths=(2, 5),
                                 degenerate=data.draw(st.booleans(), label="degenerate"),
                                 activation=data.draw(st.sampled_from(ers.ACTIVATIONS))))
    cert = exactrelu.verify(net, RealSpace(d), progress=False)
    if any(r.lines for r in cert.regions) or cert.num_regions < 2:
        return  # outside the compiled pass, or nothing left to cover
    bad = without_region(cert, data.draw(st.integers(0, cert.num_regions - 1), label="region"))
    reason = compiled(bad, net)
    assert reason is not None and "completeness" in reason, reason
    with pytest.raises(CertificateError, match="completeness"):
        exactrelu.check(bad, net, progress=False)


def region_with_rays(cert: Certificate, n: int = 1) -> int:
    return next(k for k, r in enumerate(cert.regions) if len(r.rays) >= n
                and any(f.rays for f in r.facets))


def drop_ray(c: Certificate, k: int, n: int) -> None:
    r = c.regions[k]
    r.rays = [x for m, x in enumerate(r.rays) if m != n]
    for f in r.facets:
        f.rays = tuple(m - (m > n) for m in f.rays if m != n)


def tampered(d: int) -> list[tuple[str, Any]]:
    """(what, change) pairs: each makes one claim of an unbounded certificate false."""
    def negate_ray(c: Certificate, k: int) -> None:
        r = c.regions[k]
        r.rays[0] = tuple(-x for x in r.rays[0])

    def duplicate_ray(c: Certificate, k: int) -> None:
        r = c.regions[k]
        r.rays.append(r.rays[0])

    def inner_ray(c: Certificate, k: int) -> None:  # a recession direction, not extreme
        r = c.regions[k]
        r.rays[0] = tuple(x + y for x, y in zip(r.rays[0], r.rays[1], strict=True))

    def inner_ray_alone(c: Certificate, k: int) -> None:  # the same, with its facets' lists
        inner_ray(c, k)
        for f in c.regions[k].facets:
            f.rays = tuple(m for m in f.rays if m != 0)

    def drop_vertex(c: Certificate, k: int) -> None:
        r = c.regions[k]
        v = r.vertices[0]
        r.vertices = list(r.vertices[1:])
        for f in r.facets:
            f.vertices = tuple(x for x in f.vertices if x != v)

    def facet_ray_dropped(c: Certificate, k: int) -> None:
        f = next(f for f in c.regions[k].facets if f.rays)
        f.rays = f.rays[1:]

    def facet_ray_added(c: Certificate, k: int) -> None:
        r = c.regions[k]
        f = next(f for f in r.facets if len(f.rays) < len(r.rays))
        f.rays = (*f.rays, next(m for m in range(len(r.rays)) if m not in f.rays))

    def with_line(c: Certificate, k: int) -> None:
        c.regions[k].lines = [tuple(Fraction(int(i == 0)) for i in range(d))]

    def with_volume(c: Certificate, k: int) -> None:
        c.regions[k].volume = Fraction(1)

    def pair_dropped(c: Certificate, k: int) -> None:
        c.adjacency.pop(len(c.adjacency) // 2)

    def pair_added(c: Certificate, k: int) -> None:
        a0 = c.adjacency[0]
        pairs = {(a.i, a.j) for a in c.adjacency}
        n = len(c.regions)
        i, j = next((i, j) for i in range(n) for j in range(i + 1, n) if (i, j) not in pairs)
        c.adjacency.append(Adjacency(i, j, a0.a, a0.b, a0.ids))

    return [("ray dropped", lambda c, k: drop_ray(c, k, 0)), ("ray negated", negate_ray),
            ("ray duplicated", duplicate_ray), ("ray not extreme", inner_ray),
            ("ray not extreme, facets agreeing", inner_ray_alone),
            ("vertex dropped", drop_vertex), ("facet ray dropped", facet_ray_dropped),
            ("facet ray added", facet_ray_added), ("lines", with_line),
            ("volume", with_volume), ("pair dropped", pair_dropped), ("pair added", pair_added)]


@pytest.mark.parametrize("d", [2, 3])
def test_tampered_unbounded_certificates_are_rejected_by_the_compiled_pass(d):
    """Each change is rejected by the compiled pass alone (a region with lines stops it) and
    by check() with the Python pass's message."""
    net, cert = small(d)
    k = region_with_rays(cert, 2)
    for what, change in tampered(d):
        bad = as_objects(cert)
        change(bad, k)
        rejected_by_both(bad, net, what)


def test_a_region_with_lines_stops_the_compiled_pass_without_a_crash():
    net, cert = small(2)
    bad = as_objects(cert)
    bad.regions[0].lines = [(Fraction(1), Fraction(0))]
    assert compiled(bad, net) is not None
    with pytest.raises(CertificateError):
        exactrelu.check(bad, net, progress=False)


def python_outcome(cert: Certificate, prog: exactrelu.Program) -> str:
    saved = CHECKER._COMPILED
    CHECKER._COMPILED = False
    try:
        return outcome(cert, prog)
    finally:
        CHECKER._COMPILED = saved


def compiled_accepts(cert: Certificate, prog: exactrelu.Program) -> bool:
    try:
        CHECKER._validate_header(cert)
        return compiled(cert, prog) is None
    except CertificateError:
        return False


@pytest.mark.parametrize("d", [2, 3])
def test_both_passes_accept_the_same_mutations(d):
    """Every single-field mutation of an unbounded certificate (and every consistent
    renumbering) is accepted by the compiled pass alone iff the Python pass alone accepts it
    (the header's fields are checked by check() before either pass)."""
    net, cert = small(d)
    prog = exactrelu.capture(net, cert.input_shape)
    mutations = [(what, new) for what, new, _ in single_mutations(cert, 1, seed=11)
                 if re.search(r" at \('(regions|vertices|adjacency|pieces)'", what)]
    mutations += list(renumbered(cert, seed=11))
    differ = []
    accepted = 0
    for what, new in mutations:
        py = python_outcome(new, prog) == "accepted"
        accepted += py
        if compiled_accepts(new, prog) != py:
            differ.append(f"{what}: Python pass {'accepts' if py else 'rejects'}")
    assert not differ, "\n".join(differ)
    assert accepted > 5 and len(mutations) - accepted > 50, (accepted, len(mutations))


@pytest.mark.parametrize("d", [2, 3])
def test_a_sharded_unbounded_certificate_is_checked_by_the_compiled_pass(d, tmp_path):
    """Saved in shards and loaded, an unbounded certificate goes through the compiled pass a
    shard at a time (the closure's prefixes gathered across shards); with a region of a later
    shard taken out it is rejected by that pass, and check() names the missing cell."""
    net, cert = small(d)
    path = tmp_path / "c.parquet"
    cert.save(path, shard_rows=5)
    loaded = Certificate.load(path)
    assert callable(getattr(loaded.regions, "shards", None))
    assert compiled(loaded, net) is None
    assert exactrelu.check(loaded, net, progress=False) is loaded
    bad_path = tmp_path / "bad.parquet"
    without_region(cert, cert.num_regions - 1).save(bad_path, shard_rows=5)
    bad = Certificate.load(bad_path)
    reason = compiled(bad, net)
    assert reason is not None and "completeness" in reason, reason
    with pytest.raises(CertificateError, match="completeness"):
        exactrelu.check(bad, net, progress=False)


# ----------------------------------------------------------------------------- state transfer

def test_parts_checked_apart_and_joined_are_one_pass_on_unbounded_domains(made):
    """Regions checked in parts (``start``), their states (with the closure's prefixes, the
    prefixes across facets still to find and, in 3-D, the rays) imported in order: ``finish``
    returns what one pass returns, the cells across a part's facets found in other parts."""
    parts_joined(*made)


def test_a_malformed_unbounded_state_is_refused_with_a_reason(made):
    """import_state of an unbounded domain's state: every truncation (each of the last 300
    bytes, where the prefixes and those across are) refused with a reason, the checker then
    done; a byte changed anywhere is refused or imported, never a crash; an unbounded state into a
    bounded checker is refused."""
    name, net, cert = made
    state = malformed_refused(name, net, cert)
    make, cols, pairs = checkers(cert, net)
    n = cert.num_regions
    at_half = functools.partial(checked_half, make, cols, n)
    for cut in range(max(0, len(state) - 300), len(state)):
        got = at_half()
        reason = got.import_state(state[:cut])
        assert reason is not None and reason.startswith("malformed state"), (name, cut)
        assert got.finish(n, *pairs) == "an earlier chunk failed"
    for at in range(0, len(state), max(1, len(state) // 60)):
        bad = bytearray(state)
        bad[at] ^= 0xA5
        got = at_half()
        reason = got.import_state(bytes(bad))
        assert reason is None or reason.startswith("malformed state"), (name, at, reason)
        assert isinstance(got.finish(n, *pairs), (str, tuple))


@pytest.mark.parametrize("d", [2, 3])
def test_a_region_missing_between_parts_is_caught_by_the_joined_closure(d):
    """A region taken out (the rest consistent), the others checked in three parts and joined:
    no part sees the gap alone (a part does not finish), the joined checker's closure does, for
    every region in turn."""
    net, cert = small(d)
    for k in range(cert.num_regions):
        bad = without_region(cert, k)
        make, cols, pairs = checkers(bad, net)
        n = bad.num_regions
        cuts = [0, n // 3, 2 * n // 3, n]
        joined = make()
        for lo, hi in itertools.pairwise(cuts):
            part = make()
            assert part.start(lo) is None and part.regions(0, lo, hi, cols) is None
            assert joined.import_state(part.export_state()) is None
        reason = joined.finish(n, *pairs)
        assert isinstance(reason, str) and "completeness" in reason, (k, reason)


@pytest.mark.parametrize("d", [2, 3])
def test_tampered_ray_columns_are_rejected_by_the_compiled_pass(d):
    """The ray columns of a columnar certificate changed (what an engine or a loader hands
    over): a ray's coordinate, a region's ray offsets past the end, a facet's ray index."""
    net, cert = small(d)

    def fresh() -> Certificate:
        new = copy.deepcopy(cert)
        new.regions, new.vertices, new.adjacency = views(new.regions.cx)
        return new

    k = region_with_rays(cert, 2)
    cx = cert.regions.cx
    assert cx.rays is not None
    at = int(cx.rays[0][k]) * d  # the region's first ray's first coordinate

    new = fresh()
    rays = new.regions.cx.rays[1]
    v = Fraction(rays.num[at], rays.den[at]) + Fraction(1, 3)
    rays.num[at], rays.den[at] = v.numerator, v.denominator
    assert new.regions.pristine()
    rejected_by_both(new, net, "a ray moved")

    new = fresh()
    start = new.regions.cx.rays[0]
    start[-1] = 10 ** 12  # past the end: a reason, not an allocation
    assert compiled(new, net) is not None

    new = fresh()
    f = next(f for f in range(len(cx.facet_rays.start) - 1)
             if cx.facet_rays.start[f + 1] > cx.facet_rays.start[f])
    flat = new.regions.cx.facet_rays.flat
    flat[int(cx.facet_rays.start[f])] += 1
    rejected_by_both(new, net, "a facet's ray index")
