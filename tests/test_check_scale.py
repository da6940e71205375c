"""The checker at scale: it streams a sharded certificate shard by shard, keeps compact state
across its passes, and what it keeps only proposes (hashes, floats, a bounded cache of levels):
every decision is still exact, so forcing every hash to collide or the cache to hold one level
changes no verdict and no message."""

from __future__ import annotations

import dataclasses
import sys
import weakref
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import Certificate, CertificateError, _shards

from test_check_compiled import compiled as compiled_verdict

CHECKER = sys.modules["exactrelu.check"]  # the package exports the function under that name


def dead_unit_net() -> nn.Sequential:
    """Units of the last hidden layer with zero outgoing weight: the two regions on either side
    of their hyperplanes have one output map, so some adjacent pairs have equal maps (pieces merge
    regions) and the exact comparison of equal hashes has work to do."""
    torch.manual_seed(11)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(),
                        nn.Linear(6, 1)).double().eval()
    with torch.no_grad():
        net[4].weight[:, :3] = 0.0
    return net


@pytest.fixture(scope="module")
def box() -> tuple[nn.Module, Certificate]:
    net = dead_unit_net()
    cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, workers=1)
    assert cert.num_pieces < cert.num_regions  # the construction above: pieces merge regions
    return net, cert


class Shard(list):
    """A shard's rows, as a list that can be referenced weakly (to see when it is dropped)."""


@pytest.mark.parametrize("compiled", [False, True])
def test_a_sharded_certificate_is_checked_one_shard_at_a_time(box, tmp_path, monkeypatch,
                                                               compiled):
    net, cert = box
    if compiled and CHECKER._checkcore is None:
        pytest.skip("built without _checkcore")
    monkeypatch.setattr(CHECKER, "_COMPILED", compiled)
    path = Path(tmp_path) / "c.parquet"
    cert.save(path, shard_rows=4, progress=False)
    read: dict[str, list[weakref.ref]] = {}
    most: dict[str, int] = {}
    real = _shards._Rows._read

    def counting(self: Any, k: int) -> Any:
        out = real(self, k)  # a shard read as columns as it is (the compiled pass takes them)
        if isinstance(out, list):
            out = Shard(out)
        refs = read.setdefault(self._table, [])
        alive = sum(r() is not None for r in refs) + 1
        most[self._table] = max(most.get(self._table, 0), alive)
        refs.append(weakref.ref(out))
        return out

    monkeypatch.setattr(_shards._Rows, "_read", counting)
    loaded = Certificate.load(path)
    n_shards = -(-cert.num_regions // 4)
    assert n_shards >= 6
    if compiled:
        assert compiled_verdict(loaded, net) is None  # by the compiled pass alone
    else:
        assert exactrelu.check(loaded, net, progress=False) is loaded
    # a shard is dropped when the next one is read: the one in use and the one being read at most
    assert most["regions"] <= 2, most
    assert most["vertices"] <= 2 and most["adjacency"] <= 2, most
    # the regions are read twice: the pass over them, and the output maps of the regions of the
    # adjacent pairs with equal hashes (this net has some; the compiled pass reads only the
    # shards holding them); never once per random access
    merged = {k // 4 for a in cert.adjacency if cert.pieces[a.i] == cert.pieces[a.j]
              for k in (a.i, a.j)}
    assert merged
    assert len(read["regions"]) == n_shards + (len(merged) if compiled else n_shards), (
        len(read["regions"]), n_shards)
    assert len(read["vertices"]) == -(-cert.num_vertices // 4)


def test_streaming_and_in_memory_checks_give_the_same_message(box, tmp_path):
    """A tampered sharded certificate is refused as its in-memory copy is."""
    net, cert = box
    k = next(n for n, a in enumerate(cert.adjacency) if cert.pieces[a.i] == cert.pieces[a.j])
    a = cert.adjacency[k]
    bad = Certificate(**{**cert.__dict__, "pieces": [*cert.pieces]})
    bad.pieces[a.j] = max(cert.pieces) + 1
    path = Path(tmp_path) / "bad.parquet"
    bad.save(path, shard_rows=4, progress=False)
    messages = []
    for c in (bad, Certificate.load(path)):
        with pytest.raises(CertificateError, match="pieces: ") as err:
            exactrelu.check(c, net, progress=False)
        messages.append(str(err.value))
    assert messages[0] == messages[1]


def verdict(cert: Certificate, net: nn.Module) -> str:
    try:
        exactrelu.check(cert, net, progress=False)
    except CertificateError as exc:
        return f"rejected: {exc}"
    return "accepted"


def tampered(cert: Certificate) -> dict[str, Certificate]:
    """Certificates with one claim made false where hashes and the cache decide nothing."""
    out: dict[str, Certificate] = {}

    def copy(**fields: Any) -> Certificate:
        return Certificate(**{**cert.__dict__, **fields})

    # a region's pattern given twice (its copy in place of another region)
    regions = list(cert.regions)
    twin = regions[-1]
    regions[0] = dataclasses.replace(twin, index=0)
    out["pattern twice"] = copy(regions=regions)
    # two regions of one piece given two labels, and two pieces given one
    same = next(a for a in cert.adjacency if cert.pieces[a.i] == cert.pieces[a.j])
    pieces = list(cert.pieces)
    pieces[same.j] = max(pieces) + 1
    out["piece split"] = copy(pieces=pieces)
    other = next(a for a in cert.adjacency if cert.pieces[a.i] != cert.pieces[a.j])
    pieces = list(cert.pieces)
    pieces = [pieces[other.i] if p == pieces[other.j] else p for p in pieces]
    out["pieces merged"] = copy(pieces=pieces)
    # an adjacent pair dropped, and one listed twice
    out["pair dropped"] = copy(adjacency=list(cert.adjacency)[1:])
    out["pair twice"] = copy(adjacency=[*cert.adjacency, cert.adjacency[0]])
    # a vertex given twice
    out["vertex twice"] = copy(vertices=[*cert.vertices, cert.vertices[0]])
    return out


def test_colliding_hashes_and_a_one_level_cache_change_no_verdict(box, monkeypatch):
    """Every hash the checker keeps (patterns, pattern prefixes, output maps) made equal, and
    the runner's cache cut to one level: the same verdicts and messages."""
    net, cert = box
    cases = tampered(cert)
    want = {name: verdict(c, net) for name, c in cases.items()}
    assert all(v.startswith("rejected") for v in want.values()), want
    assert verdict(cert, net) == "accepted"
    monkeypatch.setattr(CHECKER, "hash", lambda x: 7, raising=False)
    monkeypatch.setattr(CHECKER, "_MEMO_LEVELS", 1)
    assert verdict(cert, net) == "accepted"
    got = {name: verdict(c, net) for name, c in cases.items()}
    assert got == want


def test_distinct_vertices_with_one_nearest_float_are_distinct():
    """Vertices are compared by nearest floats first, exactly within a run of equal floats."""
    a = (Fraction(1, 3), Fraction(0))
    b = (Fraction(1, 3) + Fraction(1, 2 ** 80), Fraction(0))
    pts = CHECKER._Points([a, b, (Fraction(1), Fraction(2))], 2)
    assert pts.first_repeat() is None
    pts = CHECKER._Points([a, b, (Fraction(1), Fraction(2)), b, a], 2)
    assert pts.first_repeat() == (1, 3)  # the least index repeating an earlier point
    assert pts.exact(1) == b and pts.coord(0, 0) == Fraction(1, 3)
    big = (Fraction(3 ** 200, 7 ** 90), Fraction(-(5 ** 300)))  # many bytes, and a float overflow
    pts = CHECKER._Points([big], 2)
    assert pts.exact(0) == big and pts.hom(0)[-1] == 7 ** 90


def test_the_volume_sum_is_exact():
    s = CHECKER._Sum()
    values = [Fraction(1, k) for k in range(1, 200)]
    for v in values:
        s.add(CHECKER._fq(v))
    assert Fraction(int(s.total().p), int(s.total().q)) == sum(values)


@pytest.mark.parametrize("dims, domain", [
    (3, [(-1, 1)] * 3), (4, [(-1, 1)] * 4), (3, "R3"),
])
def test_views_made_again_are_checked_as_the_same_facets(dims, domain, monkeypatch):
    """The checker's adjacency above 2-D names a region's own facet by its position, never by
    the object: a columnar certificate makes a new view of a region once it left the window
    of recent ones (here a window of one item)."""
    from exactrelu._columns import Lazy
    from exactrelu.domain import RealSpace

    torch.manual_seed(dims)
    net = nn.Sequential(nn.Linear(dims, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(),
                        nn.Linear(5, 1)).double().eval()
    dom = RealSpace(3) if domain == "R3" else domain
    cert = exactrelu.verify(net, dom, progress=False)
    monkeypatch.setattr(Lazy, "keep", 1)
    first = cert.regions[0]
    assert cert.regions[1] is not None and cert.regions[0] is not first  # made again
    assert exactrelu.check(cert, net) is cert
    assert cert.num_regions > 20
