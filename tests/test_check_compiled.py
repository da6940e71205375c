"""The checker's compiled pass (exactrelu/_checkcore.cpp, run by ``check._check_compiled``; bounded
chains of 1 to ``check._VOLUME_MAX_DIM`` dimensions; on unbounded domains see
tests/test_check_compiled_unbounded.py) proves
what the Python pass proves: it accepts valid certificates by itself (it does not fall back), and
every tampered certificate is rejected by it (a reason, or a CertificateError from what follows
it) and by ``exactrelu.check`` with the Python pass's message. The tampered fields are those the
compiled pass checks in its own way: the witness, vertices, output maps, facets, volumes and
adjacent pairs, on columns and on objects."""

from __future__ import annotations

import copy
import functools
import itertools
import json
import math
import shutil
import sys
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pyarrow as pa
import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import CertificateError, _shards
from exactrelu._columns import Rationals, views
from exactrelu._exact import input_map
from exactrelu.certificate import Adjacency, Certificate

from test_shards import rewrite, shard

CHECKER = sys.modules["exactrelu.check"]
pytestmark = pytest.mark.skipif(CHECKER._checkcore is None, reason="built without _checkcore")


def mlp(d: int, widths: list[int], seed: int, act: Any = nn.ReLU, out: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    sizes = [d, *widths]
    layers = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), act())]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out)).double().eval()


def wide_integers() -> nn.Module:
    """A net whose second and last layers each hold a weight of 2^-80 beside weights near 1:
    their integers over one denominator exceed 64 bits, so the compiled pass makes the maps after
    them in GMP, and the two between in fixed width (limbs), the first from a GMP map, the second
    also by following the first's updates (which read the GMP map before it)."""
    net = mlp(2, [6, 5, 4, 3], 10, out=2)
    with torch.no_grad():
        net[2].weight[0, 0] = 2.0 ** -80
        net[8].weight[1, 2] = 2.0 ** -80
    return net


def degenerate(d: int, seed: int, act: Any = nn.ReLU) -> nn.Module:
    """A net whose first layer repeats a unit and negates another (facets on which several
    constraints vanish, regions whose facets share hyperplanes with both orientations)."""
    net = mlp(d, [5, 4], seed, act)
    with torch.no_grad():
        net[0].weight[1] = net[0].weight[0]
        net[0].bias[1] = net[0].bias[0]
        net[0].weight[3] = -net[0].weight[2]
        net[0].bias[3] = -net[0].bias[2]
    return net


NETS = {
    "1d": lambda: (mlp(1, [5, 4], 0), [(-2, 2)]),
    "2d": lambda: (mlp(2, [6, 5], 1, out=2), [(-1, 1), (-1, 1)]),
    "leaky": lambda: (mlp(2, [5, 4], 2, lambda: nn.LeakyReLU(0.1)), [(-1, 1), (-1, 1)]),
    "hardtanh": lambda: (mlp(2, [5, 4], 3, nn.Hardtanh), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [5, 4], 7), [(-1, 1)] * 3),
    "3d-hardtanh": lambda: (mlp(3, [6, 5], 8, nn.Hardtanh), [(-2, 2), (-1, 2), (-2, 1)]),
    "polygon": lambda: (mlp(2, [8, 6], 4),
                        exactrelu.Polytope([[-1, 0], [0, -1], [1, 2]], [0, 0, 2])),
    "4d": lambda: (mlp(4, [5, 4], 11), [(-1, 1)] * 4),
    "4d-degenerate": lambda: (degenerate(4, 12), [(-1, 1)] * 4),
    "5d-hardtanh": lambda: (mlp(5, [3, 3], 13, nn.Hardtanh), [(-2, 2)] * 5),
    "6d": lambda: (mlp(6, [3, 2], 14), [(-1, 1)] * 6),
    "wide-integers": lambda: (wide_integers(), [(-1, 1), (-1, 1)]),
}


def compiled(cert: Certificate, net: nn.Module, executor: Any = None) -> str | None:
    """The compiled pass's verdict alone: None (every claim holds), or why it stopped (a false
    claim, or input outside it); a CertificateError from what follows it propagates.
    ``executor``: a Dask client whose workers check the regions."""
    prog = CHECKER._program(cert, net)
    dom = cert.domain
    M, c = dom.input_map()
    A, b = dom.halfspaces()
    rows = [[CHECKER._fq(-x) for x in a] + [CHECKER._fq(y)] for a, y in zip(A, b, strict=True)]
    return CHECKER._check_compiled(cert, prog, input_map(M, c, prog.input_shape),
                                   list(cert.constraint_offsets), rows, False, executor)


def python_message(cert: Certificate, net: nn.Module) -> str:
    saved = CHECKER._COMPILED
    CHECKER._COMPILED = False
    try:
        with pytest.raises(CertificateError) as info:
            exactrelu.check(cert, net, progress=False)
    finally:
        CHECKER._COMPILED = saved
    return str(info.value)


def rejected_by_both(cert: Certificate, net: nn.Module, what: str = "") -> None:
    """The compiled pass rejects ``cert`` by itself, and check() raises the Python message."""
    try:
        reason = compiled(cert, net)
    except CertificateError:
        reason = "raised"
    assert reason is not None and reason != "outside the compiled pass", what
    want = python_message(cert, net)
    with pytest.raises(CertificateError) as info:
        exactrelu.check(cert, net, progress=False)
    assert str(info.value) == want


@pytest.fixture(scope="module", params=list(NETS))
def made(request) -> tuple[str, nn.Module, Certificate]:
    net, dom = NETS[request.param]()
    return request.param, net, exactrelu.verify(net, dom, progress=False)


#: the nets whose tampered objects are checked (each case runs the Python pass twice, about a
#: second a case in 6-D: there the columns are tampered with only; the compiled pass's code is
#: the same from 4-D up)
TAMPERED_OBJECTS = [name for name in NETS if name != "6d"]


@pytest.fixture(scope="module", params=TAMPERED_OBJECTS)
def made_objects(request) -> tuple[str, nn.Module, Certificate]:
    net, dom = NETS[request.param]()
    return request.param, net, exactrelu.verify(net, dom, progress=False)


def as_objects(cert: Certificate) -> Certificate:
    """``cert`` with its regions, vertices and adjacent pairs as lists of objects (as loaded)."""
    new = copy.deepcopy(cert)
    new.regions = [copy.deepcopy(r) for r in cert.regions]
    new.vertices = list(cert.vertices)
    new.adjacency = [copy.deepcopy(a) for a in cert.adjacency]
    return new


def test_the_compiled_pass_accepts_valid_certificates_by_itself(made, tmp_path):
    name, net, cert = made
    assert cert.num_regions > 5, name
    assert compiled(cert, net) is None
    assert compiled(as_objects(cert), net) is None
    listed = as_objects(cert)  # lists where the engines write tuples: the same claims
    listed.vertices = [list(v) for v in listed.vertices]
    for a in listed.adjacency:
        a.a, a.ids = list(a.a), list(a.ids)
    for r in listed.regions:
        r.witness = list(r.witness)
        for f in r.facets:
            f.a, f.ids, f.vertices = list(f.a), list(f.ids), list(f.vertices)
    assert compiled(listed, net) is None
    path = tmp_path / "c.json"
    cert.save(path)
    loaded = Certificate.load(path)
    assert compiled(loaded, net) is None
    assert exactrelu.check(loaded, net, progress=False) is loaded


def test_outside_the_compiled_pass():
    """Boxes of more than ``_VOLUME_MAX_DIM`` dimensions and R^4 go to the Python pass (which
    accepts them); R^2 and R^3 are the compiled pass's (tests/test_check_compiled_unbounded.py)."""
    d = CHECKER._VOLUME_MAX_DIM + 1
    for net, dom in ((mlp(d, [3, 2], 5), [(-1, 1)] * d), (mlp(4, [3, 2], 6),
                                                       exactrelu.RealSpace(4))):
        cert = exactrelu.verify(net, dom, progress=False)
        assert (compiled(cert, net) or "").startswith("outside the compiled pass")
        assert exactrelu.check(cert, net, progress=False) is cert


def test_the_lp_the_compiled_pass_hands_back_decides_overlap():
    """``check._interiors_meet`` (what the compiled pass calls in d >= 4 for two facets its other
    tests leave undecided): on the hyperplane t0 = 0 of R^4, the unit cube against copies of it
    moved along (1, 1, 1) (overlapping: a point strictly inside both), along t1 by 1 (touching
    on a square: no common interior point) and by 2 (apart)."""

    def cube(lo: list[Fraction]) -> list[list[int]]:
        rows = []  # [a | c], a . t + c >= 0: 2 t_i - 2 lo_i >= 0 and 2 lo_i + 2 - 2 t_i >= 0
        for i in range(1, 4):
            e = [0] * 4
            e[i] = 2
            rows.append([*e, int(-2 * lo[i - 1])])
            rows.append([-v for v in e] + [int(2 * lo[i - 1] + 2)])
        return rows

    key = [1, 0, 0, 0, 0]  # t0 = 0
    meets = CHECKER._interiors_meet
    base = cube([Fraction(0)] * 3)
    assert meets(base + cube([Fraction(1, 2)] * 3), key, 4, "test")
    assert not meets(base + cube([Fraction(1), Fraction(0), Fraction(0)]), key, 4, "test")
    assert not meets(base + cube([Fraction(2), Fraction(0), Fraction(0)]), key, 4, "test")
    decide = CHECKER._lp_decider(4)
    assert decide(0, 1, base + cube([Fraction(1, 2)] * 3), key)


def prism_net(d3_only: bool = False) -> nn.Module:
    """A 3-4-3-1 ReLU net of (t0, t1, t2), taking a fourth input t3 it ignores (``d3_only``: the
    same net without it)."""
    net = mlp(4, [4, 3], 3)
    with torch.no_grad():
        net[0].weight[:, 3] = 0
    if d3_only:
        first = nn.Linear(3, 4).double()
        with torch.no_grad():
            first.weight.copy_(net[0].weight[:, :3])
            first.bias.copy_(net[0].bias)
        net[0] = first
    return net


#: 2^61 - 1, the prime of the compiled pass's shared-simplex test (``share_simplex``)
PRIME = 2**61 - 1


def test_the_compiled_pass_hands_undecided_pairs_to_the_lp(monkeypatch):
    """The exact LP the compiled pass calls back (``check._lp_decider``) in d >= 4, reached from
    C++: on [-1, 1]^3 x [0, p / 2^60] (p = 2^61 - 1, the prime of its shared-simplex test) a net
    that ignores t3 has prisms for regions, every vertex at t3 = 0 or p / 2^60, so every vertex's
    t3 numerator is 0 modulo p; the shared vertices of two facets on a hyperplane of (t0, t1, t2)
    then have rank at most d - 1 modulo p, the shared-simplex test proves nothing, no facet
    separates the two (they are one facet), and the LP decides every adjacent pair. Its answers
    are compared with the adjacency of the same net on [-1, 1]^3 (3-D: no LP); a pair it proved,
    dropped, is rejected; and an LP answering the opposite stops the compiled pass (the answer is
    used), whose verdict the Python pass then gives."""
    net = prism_net()
    box = [(-1, 1)] * 3 + [(0, Fraction(PRIME, 2**60))]
    cert = exactrelu.verify(net, box, progress=False)
    assert {v[3] for v in cert.vertices} == {0, Fraction(PRIME, 2**60)}
    calls: list[tuple[int, int, bool]] = []
    lp_decider = CHECKER._lp_decider

    def counted(d: int) -> Any:
        decide = lp_decider(d)

        def wrapped(i: int, j: int, rows: list[list[int]], key: list[int]) -> bool:
            got = decide(i, j, rows, key)
            calls.append((i, j, got))
            return got

        return wrapped

    monkeypatch.setattr(CHECKER, "_lp_decider", counted)
    assert compiled(cert, net) is None
    flat = exactrelu.verify(prism_net(d3_only=True), [(-1, 1)] * 3, progress=False)
    by_pattern = {tuple(map(tuple, r.pattern)): r.index for r in flat.regions}
    to_3d = [by_pattern[tuple(map(tuple, r.pattern))] for r in cert.regions]
    assert len(to_3d) == flat.num_regions == len(set(to_3d))
    want = {tuple(sorted((a.i, a.j))) for a in flat.adjacency}
    assert len(calls) == len(cert.adjacency) == len(want) > 5
    assert {tuple(sorted((to_3d[i], to_3d[j]))) for i, j, got in calls if got} == want
    # a pair the LP proved, dropped from the list
    i, j, _ = calls[len(calls) // 2]
    dropped = as_objects(cert)
    dropped.adjacency = [a for a in dropped.adjacency if (a.i, a.j) != (i, j)]
    assert len(dropped.adjacency) == len(cert.adjacency) - 1
    rejected_by_both(dropped, net, "an adjacent pair the LP proved, dropped")
    # the LP's answer is what the compiled pass goes by
    monkeypatch.setattr(CHECKER, "_lp_decider",
                        lambda d: lambda i, j, rows, key: not lp_decider(d)(i, j, rows, key))
    reason = compiled(cert, net)
    assert reason is not None and "adjacen" in reason
    assert exactrelu.check(cert, net, progress=False) is cert


def shifted(q: Fraction, by: Fraction) -> Fraction:
    return Fraction(q) + by


TINY = Fraction(1, 2 ** 60)


def test_tampered_objects_are_rejected_by_the_compiled_pass(made_objects):
    name, net, cert = made_objects
    base = as_objects(cert)
    d = cert.domain.dim
    mid = cert.num_regions // 2
    r0 = base.regions[mid]
    cases = []

    def case(fn: Any) -> None:
        new = copy.deepcopy(base)
        fn(new)
        cases.append(new)

    # the witness moved onto a vertex of its region (on its facets), and outside the domain
    case(lambda c: setattr(c.regions[mid], "witness", tuple(c.vertices[r0.vertices[0]])))
    case(lambda c: setattr(c.regions[mid], "witness", tuple(Fraction(9) for _ in range(d))))
    # a vertex moved by a tiny rational (off its region's constraints, or not tight on d)
    for k in (0, len(base.vertices) // 2):
        case(lambda c, k=k: c.vertices.__setitem__(
            k, tuple(shifted(x, TINY if i == 0 else 0) for i, x in enumerate(c.vertices[k]))))
    # a wrong output entry
    case(lambda c: c.regions[mid].output[0].__setitem__(d, shifted(r0.output[0][d], TINY)))
    # a facet dropped; one listed twice; its vertices wrong; its inequality off
    case(lambda c: c.regions[mid].facets.pop(0))
    case(lambda c: c.regions[mid].facets.append(c.regions[mid].facets[0]))
    case(lambda c: setattr(c.regions[mid].facets[0], "vertices",
                           c.regions[mid].facets[0].vertices[1:]))
    case(lambda c: setattr(c.regions[mid].facets[0], "b", shifted(r0.facets[0].b, TINY)))
    case(lambda c: setattr(c.regions[mid].facets[0], "ids",
                           (*r0.facets[0].ids, cert.constraint_offsets[-1] - 1)
                           if cert.constraint_offsets[-1] - 1 not in r0.facets[0].ids
                           else (*r0.facets[0].ids[:-1], 0)))
    # a vertex missing from a region (volume short of its area), a volume off, none
    case(lambda c: setattr(c.regions[mid], "vertices", c.regions[mid].vertices[1:]))
    # (above 3-D the volume is optional: the engines leave it out, a stated one must be right)
    case(lambda c: setattr(c.regions[mid], "volume", shifted(r0.volume or 0, TINY)))
    if d <= 3:
        case(lambda c: setattr(c.regions[mid], "volume", None))
    # a state flipped (the witness is not in that cell)
    case(lambda c: c.regions[mid].pattern[-1].__setitem__(
        0, 1 - c.regions[mid].pattern[-1][0] if c.regions[mid].pattern[-1][0] < 2 else 0))
    # a region dropped (the volumes no longer sum to the domain's)
    last = cert.num_regions - 1
    case(lambda c: (c.regions.pop(), c.pieces.pop(),
                    setattr(c, "adjacency", [a for a in c.adjacency if a.j != last])))
    # adjacency: a pair missing, an extra one, its plane off, its ids short
    a0 = base.adjacency[len(base.adjacency) // 2]
    case(lambda c: c.adjacency.pop(len(c.adjacency) // 2))
    pairs = {(a.i, a.j) for a in base.adjacency}
    extra = next((i, j) for i in range(cert.num_regions) for j in range(i + 1, cert.num_regions)
                 if (i, j) not in pairs)
    case(lambda c: c.adjacency.append(Adjacency(*extra, a0.a, a0.b, a0.ids)))
    case(lambda c: setattr(c.adjacency[len(c.adjacency) // 2], "b", shifted(a0.b, TINY)))
    case(lambda c: setattr(c.adjacency[len(c.adjacency) // 2], "ids", a0.ids[1:]))
    # a piece label changed
    case(lambda c: c.pieces.__setitem__(mid, max(c.pieces) + 1))
    for n, new in enumerate(cases):
        rejected_by_both(new, net, f"{name} case {n}")


@pytest.mark.parametrize("fault", ["claim", "region", "pair", "vertex"])
def test_objects_are_validated_once_with_the_python_pass_messages(fault, monkeypatch):
    """Objects turned into columns for the compiled pass are validated there, and the Python pass
    that runs after the compiled pass stopped does not validate them again: each vertex, region
    and adjacent pair once (up to the malformed one), whether a claim is false (a volume) or an
    object malformed (a region's witness, a pair's ids, a vertex), with the message of the
    Python pass alone."""
    net, dom = NETS["2d"]()
    cert = as_objects(exactrelu.verify(net, dom, progress=False))
    n_reg, n_vert, n_adj = len(cert.regions), len(cert.vertices), len(cert.adjacency)
    mid, last = n_reg // 2, n_adj - 1
    if fault == "claim":
        cert.regions[mid].volume = Fraction(cert.regions[mid].volume) + 1
    elif fault == "region":
        cert.regions[mid].witness = cert.regions[mid].witness[:1]
    elif fault == "pair":
        cert.adjacency[last].ids = ["x"]
    else:
        cert.vertices[n_vert // 2] = (Fraction(0),)
    want = python_message(cert, net)
    counts = {"region": 0, "pair": 0, "vertex": 0}

    def counter(name: str, key: str) -> None:
        real = getattr(CHECKER, name)

        def counted(*args: Any) -> Any:
            if key != "vertex" or str(args[2]).startswith("vertex "):
                counts[key] += 1
            return real(*args)

        monkeypatch.setattr(CHECKER, name, counted)

    def chunk_counter(name: str, key: str) -> None:
        """Items a one-pass reader of a chunk found well-formed (it gives columns only where
        every item of the chunk is)."""
        real = getattr(CHECKER, name)

        def counted(*args: Any) -> Any:
            got = real(*args)
            if got is not None:
                counts[key] += len(next(a for a in args if isinstance(a, list)))
            return got

        monkeypatch.setattr(CHECKER, name, counted)

    counter("_validate_region", "region")
    counter("_validate_adjacency", "pair")
    counter("_qvec", "vertex")
    chunk_counter("_region_chunk", "region")
    chunk_counter("_pair_chunk", "pair")
    chunk_counter("_vertex_chunk", "vertex")
    with pytest.raises(CertificateError) as info:
        exactrelu.check(cert, net, progress=False)
    assert str(info.value) == want
    assert counts == {"claim": {"region": n_reg, "pair": 0, "vertex": n_vert},
                      "region": {"region": mid + 1, "pair": 0, "vertex": n_vert},
                      "pair": {"region": n_reg, "pair": n_adj, "vertex": n_vert},
                      "vertex": {"region": 0, "pair": 0, "vertex": n_vert // 2 + 1}}[fault]


@pytest.mark.parametrize("name", ["2d", "3d", "4d"])
def test_objects_reach_the_compiled_pass_a_chunk_at_a_time(name, monkeypatch):
    """Objects become columns a chunk of regions (and of adjacent pairs) at a time, each made
    when the compiled pass reaches it: with chunks of 5 the compiled pass accepts the objects by
    itself, no columns of more than 5 regions or pairs are ever made, and a false claim or a
    malformed object in the last chunk (the witness on a vertex, not a point; a pair dropped)
    is rejected by both passes with the Python pass's
    message."""
    net, dom = NETS[name]()
    cert = as_objects(exactrelu.verify(net, dom, progress=False))
    assert cert.num_regions > 10
    monkeypatch.setattr(CHECKER, "_CHUNK", 5)
    sizes: list[int] = []
    complex_of = CHECKER.complex_of

    def sized(d: int, n_ops: int, regions: Any, vertices: Any, adjacency: Any,
              pieces: Any) -> Any:
        sizes.append(max(len(regions), len(adjacency)))
        return complex_of(d, n_ops, regions, vertices, adjacency, pieces)

    monkeypatch.setattr(CHECKER, "complex_of", sized)
    region_chunk = CHECKER._region_chunk

    def region_sized(lo: int, chunk: list[Any], *args: Any) -> Any:
        sizes.append(len(chunk))
        return region_chunk(lo, chunk, *args)

    monkeypatch.setattr(CHECKER, "_region_chunk", region_sized)
    pair_chunk = CHECKER._pair_chunk

    def pair_sized(chunk: list[Any], *args: Any) -> Any:
        sizes.append(len(chunk))
        return pair_chunk(chunk, *args)

    monkeypatch.setattr(CHECKER, "_pair_chunk", pair_sized)
    assert compiled(cert, net) is None
    assert max(sizes) == 5
    assert len(sizes) >= cert.num_regions // 5 + len(cert.adjacency) // 5
    last = cert.num_regions - 1
    cases = [copy.deepcopy(cert) for _ in range(3)]
    cases[0].regions[last].witness = tuple(cert.vertices[cert.regions[last].vertices[0]])
    cases[1].regions[last].witness = ("x",) * cert.domain.dim
    cases[2].adjacency.pop()
    for n, new in enumerate(cases):
        rejected_by_both(new, net, f"{name} case {n}")


def facet_rows(cx: Any) -> list[tuple[tuple[int, int], ...]]:
    """Each facet's row of the columns ``cx`` as (numerator, denominator) pairs."""
    m = cx.d + 1
    return [tuple(zip(cx.rows.num[k * m:k * m + m], cx.rows.den[k * m:k * m + m], strict=True))
            for k in cx.facet_row.tolist()]


@pytest.mark.parametrize("name", ["2d", "3d", "hardtanh", "unbounded"])
def test_one_pass_region_columns_are_complex_of(name, tmp_path):
    """The columns ``check._region_chunk`` makes of a loaded certificate's regions (validating
    them on the way) are those :func:`exactrelu._columns.complex_of` makes of them: the same
    states, witnesses, vertices, facets (each facet's row equal in value), output maps, volumes
    and rays; ``check._pair_chunk``'s of its adjacent pairs likewise."""
    if name == "unbounded":
        net, dom = mlp(2, [6, 5], 1, out=2), None
    else:
        net, dom = NETS[name]()
    path = tmp_path / "c.json"
    exactrelu.verify(net, dom, progress=False).save(path)
    cert = Certificate.load(path)
    d, regions = cert.domain.dim, list(cert.regions)
    n_units = [len(p) for p in regions[0].pattern]
    got = CHECKER._region_chunk(0, regions, d, len(cert.vertices), n_units,
                                len(regions[0].output), cert.domain.is_bounded)
    want = CHECKER.complex_of(d, len(n_units), regions, [], [], [])
    assert got is not None
    for j in range(len(n_units)):
        assert (got.states[j].rows(got.state_ids[j]).tolist()
                == want.states[j].rows(want.state_ids[j]).tolist())
    for field in ("witness", "outputs", "volume"):
        assert getattr(got, field) == getattr(want, field), field
    for field in ("region_vertices", "facet_ids", "facet_vertices", "facet_rays"):
        for a, b in zip(getattr(got, field), getattr(want, field), strict=True):
            assert a.tolist() == b.tolist(), field
    assert got.facet_start.tolist() == want.facet_start.tolist()
    assert facet_rows(got) == facet_rows(want)
    assert (got.rays is None) == (want.rays is None) == (name != "unbounded")
    if got.rays is not None and want.rays is not None:
        assert got.rays[0].tolist() == want.rays[0].tolist() and got.rays[1] == want.rays[1]
    pairs = list(cert.adjacency)
    got = CHECKER._pair_chunk(pairs, d, len(regions))
    want = CHECKER.complex_of(d, len(n_units), [], [], pairs, [])
    assert got is not None
    for field in ("adj_i", "adj_j", "adj_plane"):
        assert getattr(got, field).tolist() == getattr(want, field).tolist(), field
    assert [a.tolist() for a in got.adj_ids] == [a.tolist() for a in want.adj_ids]
    assert got.planes == want.planes


class Int(int):
    """An int of another type: the one-pass readers leave it to the item-by-item validation,
    which takes it."""


def test_one_pass_readers_leave_every_other_type_to_the_item_by_item_validation(tmp_path):
    """A loaded certificate with one field of a region, a facet, a vertex or an adjacent pair
    changed to another type: where the item-by-item validation rejects it (a bool, a float, a
    string, a set, a Fraction where an int belongs, an index out of range) check() raises the
    Python pass's message; where it takes it (an int subclass, a list where a tuple was) the
    certificate is still accepted, by the compiled pass."""
    net, dom = NETS["2d"]()
    path = tmp_path / "c.json"
    exactrelu.verify(net, dom, progress=False).save(path)
    mid = Certificate.load(path).num_regions // 2

    def region(c: Certificate) -> Any:
        return c.regions[mid]

    def facet(c: Certificate) -> Any:
        return c.regions[mid].facets[0]

    def corner(c: Certificate) -> int:  # a vertex of the box: integer coordinates
        return next(k for k, v in enumerate(c.vertices) if all(x.denominator == 1 for x in v))

    bad = [
        lambda c: region(c).pattern[0].__setitem__(0, True),
        lambda c: region(c).pattern[0].__setitem__(0, Fraction(region(c).pattern[0][0])),
        lambda c: region(c).pattern[0].__setitem__(0, 1 << 40),
        lambda c: setattr(region(c), "witness", (0.5,) * c.domain.dim),
        lambda c: setattr(region(c), "witness", "ab"),
        lambda c: setattr(region(c), "vertices", {*region(c).vertices}),
        lambda c: setattr(region(c), "vertices", [*region(c).vertices[:-1], len(c.vertices)]),
        lambda c: setattr(region(c), "volume", 0.25),
        lambda c: region(c).output[0].__setitem__(0, "1/2"),
        lambda c: setattr(facet(c), "b", 1.0),
        lambda c: setattr(facet(c), "ids", (*facet(c).ids[:-1], Fraction(facet(c).ids[-1]))),
        lambda c: setattr(facet(c), "vertices", (*facet(c).vertices[:-1], -1)),
        lambda c: setattr(facet(c), "rays", (0,)),
        lambda c: region(c).facets.__setitem__(0, "facet"),
        lambda c: c.regions.__setitem__(mid, "region"),
        lambda c: c.vertices.__setitem__(3, (0.0,) * c.domain.dim),
        lambda c: setattr(c.adjacency[5], "ids", (*c.adjacency[5].ids, None)),
        lambda c: setattr(c.adjacency[5], "i", True),
        lambda c: setattr(c.adjacency[5], "b", 0.5),
    ]
    for n, change in enumerate(bad):
        cert = Certificate.load(path)
        change(cert)
        want = python_message(cert, net)
        with pytest.raises(CertificateError) as info:
            exactrelu.check(cert, net, progress=False)
        assert str(info.value) == want, n
    fine = [
        lambda c: setattr(facet(c), "ids", (*facet(c).ids[:-1], Int(facet(c).ids[-1]))),
        lambda c: setattr(region(c), "witness", list(region(c).witness)),
        lambda c: setattr(region(c), "index", Int(mid)),
        lambda c: setattr(c.adjacency[5], "j", Int(c.adjacency[5].j)),
        lambda c: c.vertices.__setitem__(3, [Int(x) if x.denominator == 1 else x
                                             for x in c.vertices[3]]),
        # plain ints beside Fractions (both exact types: read in one pass)
        lambda c: c.vertices.__setitem__(corner(c), tuple(int(x) for x in c.vertices[corner(c)])),
        lambda c: setattr(facet(c), "ids", list(facet(c).ids)),
    ]
    for n, change in enumerate(fine):
        cert = Certificate.load(path)
        change(cert)
        assert compiled(cert, net) is None, n
        exactrelu.check(cert, net, progress=False)


def checkers(cert: Certificate, net: nn.Module) -> tuple[Any, tuple[Any, ...], Any]:
    """A maker of fresh compiled checkers for ``cert`` (as ``check._compiled_claims`` makes
    them), its region columns (one chunk) and its adjacent pairs as ``finish`` takes them."""
    prog = CHECKER._program(cert, net)
    dom = cert.domain
    M, c = dom.input_map()
    A, b = dom.halfspaces()
    rows = [[CHECKER._fq(-x) for x in a] + [CHECKER._fq(y)] for a, y in zip(A, b, strict=True)]
    src, _, n_out, ops, root, den = CHECKER._compiled_input(
        cert, prog, input_map(M, c, prog.input_shape))
    flat = [v for row in rows for v in CHECKER._ints(row)]
    dens = [math.lcm(*(int(v.q) for v in row)) for row in rows]
    init = (dom.dim, list(cert.constraint_offsets), flat, dens, root, den, ops, n_out)
    (cx, _), = src.regions(None)
    vertices = src.vertices()
    unbounded = not dom.is_bounded  # the closure's state too
    return (lambda: CHECKER._checkcore.Checker(*init, vertices.num, vertices.den, unbounded),
            CHECKER._region_columns(cx), CHECKER._pair_columns(src.pairs(), dom.dim))


def test_parts_checked_apart_and_joined_are_one_pass(made):
    """Regions checked in parts by checkers of their own (``start``), their states exported and
    imported in order into one checker (or after regions it checked itself): ``finish`` returns
    what one pass over all regions returns (pattern hashes, the exact volume sum, the adjacent
    pairs with equal output hashes), which is the certificate's own volume."""
    parts_joined(*made)


def parts_joined(name: str, net: nn.Module, cert: Certificate) -> None:
    """test_parts_checked_apart_and_joined_are_one_pass on ``cert`` (on an unbounded domain the
    volume sum is 0 and ``finish`` finds the cells across facets among every part's prefixes)."""
    make, cols, pairs = checkers(cert, net)
    n = cert.num_regions
    one = make()
    assert one.regions(0, 0, n, cols) is None
    whole = one.finish(n, *pairs)
    assert isinstance(whole, tuple), (name, whole)
    want = cert.domain.volume() if cert.domain.is_bounded else 0
    assert Fraction(whole[1], whole[2]) == want, name
    cuts = [0, n // 3, n // 2 + 1, n]
    states = []
    for lo, hi in itertools.pairwise(cuts):
        part = make()
        assert part.start(lo) is None and part.regions(0, lo, hi, cols) is None
        states.append(part.export_state())
        assert part.finish(n, *pairs) == ("a part of the regions (start) does not finish"
                                          if hi == n else "not every region was checked")
    joined = make()
    assert all(joined.import_state(s) is None for s in states)
    assert joined.finish(n, *pairs) == whole
    mixed = make()  # the first part checked here, the others imported
    assert mixed.regions(0, 0, cuts[1], cols) is None
    assert all(mixed.import_state(s) is None for s in states[1:])
    assert mixed.finish(n, *pairs) == whole
    # a part missing, or out of order: refused
    gap = make()
    assert gap.import_state(states[0]) is None
    assert gap.import_state(states[2]) == "malformed state: regions out of order"


def test_equal_output_maps_survive_the_join():
    """On a net where adjacent regions share output maps, the joined checker proposes the same
    pairs to compare exactly as one pass."""
    net = merging_net()
    cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    make, cols, pairs = checkers(cert, net)
    n = cert.num_regions
    one = make()
    assert one.regions(0, 0, n, cols) is None
    whole = one.finish(n, *pairs)
    want = {(a.i, a.j) for a in cert.adjacency if cert.pieces[a.i] == cert.pieces[a.j]}
    assert want and want <= set(whole[3])
    a, b = make(), make()
    assert a.regions(0, 0, n // 2, cols) is None
    assert b.start(n // 2) is None and b.regions(0, n // 2, n, cols) is None
    assert a.import_state(b.export_state()) is None
    assert a.finish(n, *pairs) == whole


def test_a_malformed_state_is_refused_with_a_reason(made):
    """import_state reads nothing past the bytes it has and says what is wrong; the checker is
    then done."""
    malformed_refused(*made)


def checked_half(make: Callable[[], Any], cols: Any, n: int) -> Any:
    """A new checker (``make``) that has checked the first half of the ``n`` regions."""
    got = make()
    assert got.regions(0, 0, n // 2, cols) is None
    return got


def malformed_refused(name: str, net: nn.Module, cert: Certificate) -> bytes:
    """test_a_malformed_state_is_refused_with_a_reason on ``cert``; the second half's state."""
    make, cols, pairs = checkers(cert, net)
    n = cert.num_regions
    at_half = functools.partial(checked_half, make, cols, n)
    part = make()
    assert part.start(n // 2) is None and part.regions(0, n // 2, n, cols) is None
    state = part.export_state()
    assert isinstance(state, bytes)
    for cut in sorted({*range(0, len(state), max(1, len(state) // 40)), len(state) - 1}):
        got = at_half()
        reason = got.import_state(state[:cut])
        assert reason is not None and reason.startswith("malformed state"), (name, cut)
        assert got.finish(n, *pairs) == "an earlier chunk failed"
    for bad, why in ((state + b"\0", "bytes after its end"),
                     (b"\0" * 8 + state[8:], "not a checker state")):
        assert at_half().import_state(bad) == f"malformed state: {why}", name
    assert make().import_state(state) == "malformed state: regions out of order"
    # a region count larger than the bytes left can hold (after magic, d, P, the closure flag,
    # vertices, first)
    huge = bytearray(state)
    huge[48:56] = (1 << 40).to_bytes(8, "little")
    assert at_half().import_state(bytes(huge)) == "malformed state: a count"
    # the closure flag (bytes 24 to 32) of a bounded state on an unbounded domain or back
    other = bytearray(state)
    other[24] ^= 1
    assert at_half().import_state(bytes(other)) == \
        "malformed state: another chain, domain or vertex list"
    assert at_half().import_state(state) is None
    return state


def test_tampered_columns_are_rejected_by_the_compiled_pass(made):
    """Changing the columns of a columnar certificate (what an engine or a loader hands over)."""
    name, net, cert = made
    d = cert.domain.dim

    def fresh() -> Certificate:
        """A copy of ``cert`` with new views of a copy of its columns (none made yet)."""
        new = copy.deepcopy(cert)
        new.regions, new.vertices, new.adjacency = views(new.regions.cx)
        return new

    def tampered(field: str, k: int, by: Fraction) -> Certificate:
        new = fresh()
        cx = new.regions.cx
        q: Rationals = getattr(cx, field)
        v = (Fraction(q.num[k], q.den[k]) if q.den[k] else Fraction(0)) + by  # den 0: none
        q.num[k], q.den[k] = v.numerator, v.denominator
        assert new.regions.pristine()  # no view was made before: the columns are the claims
        return new

    mid = cert.num_regions // 2
    m = d + 1
    n_out = cert.regions.cx.n_out
    # the witness outside the domain; the rest off by a tiny rational
    for field, k, by in (("witness", mid * d, Fraction(10)), ("vertices", 0, TINY),
                         ("outputs", mid * n_out * m + d, TINY), ("volume", mid, TINY),
                         ("rows", 0, TINY), ("planes", 0, TINY)):
        rejected_by_both(tampered(field, k, by), net, f"{name} {field}")
    # a facet's ids and a region's vertex list, in the index columns
    new = fresh()
    cx = new.regions.cx
    cx.facet_ids.flat[0] = cx.facet_ids.flat[0] + 1
    rejected_by_both(new, net)
    new = fresh()
    cx = new.regions.cx
    cx.adj_j[0] = cx.adj_j[-1] if cx.adj_j[-1] != cx.adj_j[0] else cx.adj_j[0] + 1
    rejected_by_both(new, net)


# --------------------------------------------------------------------------- sharded certificates
def merging_net() -> nn.Module:
    """2-D net whose output ignores one unit of its last hidden layer: regions on either side of
    that unit's boundary have one output map, so pieces merge regions (the candidate pairs whose
    output maps the compiled pass reads again, from the shards)."""
    net = mlp(2, [6, 5], 1, out=2)
    with torch.no_grad():
        net[-1].weight[:, 0] = 0
    return net


@pytest.fixture(scope="module")
def sharded(tmp_path_factory) -> tuple[nn.Module, Certificate, Any]:
    net = merging_net()
    cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    assert len(set(cert.pieces)) < cert.num_regions  # some adjacent regions share their map
    path = tmp_path_factory.mktemp("sharded") / "c.parquet"
    cert.save(path, shard_rows=7)
    return net, cert, path


def copied(path: Any, to: Any) -> Any:
    shutil.copytree(path, to)
    return to


def test_a_sharded_certificate_is_checked_by_the_compiled_pass(sharded, monkeypatch):
    """Accepted by the compiled pass alone, which reads every region shard once and then only
    those holding adjacent regions with one output map (one piece)."""
    net, cert, path = sharded
    shards = json.loads((path / "manifest.json").read_text())["shards"]
    assert all(len(shards[t]) > 2 for t in ("regions", "vertices", "adjacency"))
    merged = {k // 7 for a in cert.adjacency if cert.pieces[a.i] == cert.pieces[a.j]
              for k in (a.i, a.j)}
    assert 0 < len(merged) < len(shards["regions"])
    read: list[int] = []
    rows = _shards._Rows
    real = rows._read

    def counted(self: Any, k: int) -> Any:
        if self._table == "regions":
            read.append(k)
        return real(self, k)

    monkeypatch.setattr(rows, "_read", counted)
    loaded = Certificate.load(path)
    assert compiled(loaded, net) is None
    assert sorted(read) == sorted([*range(len(shards["regions"])), *merged])
    assert exactrelu.check(loaded, net, progress=False) is loaded


def test_a_cells_run_is_checked_by_the_compiled_pass(tmp_path):
    net = mlp(2, [6, 5], 1, out=2)
    path = tmp_path / "x.parquet"
    exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, workers=1, cells=4, save=path)
    assert len(list((path / "regions").iterdir())) > 1
    assert compiled(Certificate.load(path), net) is None


def test_tampered_shards_are_rejected_by_the_compiled_pass(sharded, tmp_path):
    net, cert, path = sharded
    mid = cert.num_regions // 2
    k, at = divmod(mid, 7)  # region mid is row `at` of region shard k

    def checked(p: Any, by_checker: bool) -> None:
        loaded = Certificate.load(p)
        if by_checker:  # a false claim the compiled pass finds, on the shards' columns
            try:
                reason = compiled(loaded, net)
            except CertificateError:
                reason = "raised"
            assert reason is not None and "not available" not in reason
            assert not reason.startswith("reading a shard")
        rejected_by_both(Certificate.load(p), net)

    # the witness moved onto a vertex of its region
    p = copied(path, tmp_path / "witness")
    rows = shard(p, "regions", k).to_pylist()
    v = cert.vertices[cert.regions[mid].vertices[0]]
    rows[at]["witness"] = [str(x) for x in v]
    rewrite(p, "regions", k, pa.Table.from_pylist(rows, schema=shard(p, "regions", k).schema))
    checked(p, True)
    # a region dropped from its shard
    p = copied(path, tmp_path / "region")
    t = shard(p, "regions", k)
    rewrite(p, "regions", k, pa.concat_tables([t.slice(0, at), t.slice(at + 1)]),
            header={"num_regions": cert.num_regions - 1})
    checked(p, False)
    # an adjacent pair dropped
    p = copied(path, tmp_path / "pair")
    t = shard(p, "adjacency", 1)
    rewrite(p, "adjacency", 1, t.slice(1))
    checked(p, True)
    # an output map changed where two adjacent regions share it; the second one's piece label
    # split off (read from the region shards the candidate pairs are in)
    j = next(a.j for a in cert.adjacency if cert.pieces[a.i] == cert.pieces[a.j])
    n, at_j = divmod(j, 7)
    for field in ("output", "piece"):
        p = copied(path, tmp_path / field)
        rows = shard(p, "regions", n).to_pylist()
        if field == "output":
            rows[at_j]["output"][0][-1] = str(Fraction(rows[at_j]["output"][0][-1]) + TINY)
        else:
            rows[at_j]["piece"] = max(cert.pieces) + 1
        rewrite(p, "regions", n, pa.Table.from_pylist(rows, schema=shard(p, "regions", n).schema),
                header={"num_pieces": len({r["piece"] for r in rows} | set(cert.pieces))})
        checked(p, True)


def test_a_region_assigned_in_a_sharded_certificate_takes_the_python_pass(sharded):
    """A shard whose items were assigned or changed in place offers no columns (they would be
    stale): the compiled pass stops there and the Python pass names the claim."""
    net, cert, path = sharded
    mid = cert.num_regions // 2
    loaded = Certificate.load(path)
    r = copy.deepcopy(loaded.regions[mid])
    r.witness = tuple(loaded.vertices[r.vertices[0]])
    loaded.regions[mid] = r
    assert compiled(loaded, net) == "a region shard is not available as columns"
    rejected_by_both(loaded, net)
    loaded = Certificate.load(path)
    loaded.regions[mid].volume = None  # a view changed in place
    assert compiled(loaded, net) == "a region shard is not available as columns"
    rejected_by_both(loaded, net)
