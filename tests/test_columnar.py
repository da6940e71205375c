"""Columnar certificates: the views a certificate makes of its columns are the objects the
columns were made of; JSON and Parquet written from columns are what the objects give;
a change made through a view is what ``check``, ``save`` and ``to_json`` see."""

from __future__ import annotations

import dataclasses
import itertools
import json
from fractions import Fraction
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import Certificate, CertificateError, RealSpace, _columns, _shards
from exactrelu.certificate import RegionFacet
from exactrelu.engines import compiled, python as python_engine


def mlp(d: int, widths: list[int], seed: int, act: Any = nn.ReLU, out: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    sizes = [d, *widths]
    layers = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), act())]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out)).double().eval()


def strips() -> nn.Module:
    """Parallel lines in the plane: every region of R^2 has a line, some a ray."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 1.0], [-2.0, -2.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
    return net.eval()


CASES: dict[str, Any] = {
    "1d": lambda: (mlp(1, [5, 3], 0), [(-2, 2)]),
    "2d": lambda: (mlp(2, [6, 5], 1, out=2), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [4, 3], 2), [(-1, 1)] * 3),
    "r2": lambda: (mlp(2, [4, 3], 4), RealSpace(2)),
    "r2-lines": lambda: (strips(), RealSpace(2)),
    "leaky": lambda: (mlp(2, [5, 4], 5, lambda: nn.LeakyReLU(0.1)), [(-1, 1), (-1, 1)]),
    "hardtanh": lambda: (mlp(2, [5, 4], 6, nn.Hardtanh), [(-1, 1), (-1, 1)]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, Certificate]:
    net, dom = CASES[request.param]()
    return net, exactrelu.verify(net, dom, progress=False, workers=1)


def test_a_verified_certificate_is_columnar(case: tuple[nn.Module, Certificate]) -> None:
    _, cert = case
    assert isinstance(cert.regions, _columns.Regions)
    assert isinstance(cert.vertices, _columns.Vertices)
    assert isinstance(cert.adjacency, _columns.Adjacencies)
    cx = cert.regions.cx
    assert cx.facet_start.dtype == np.int64 and cx.adj_ids.flat.dtype == np.int64
    hardtanh = isinstance(cert.regions[0].pattern, list) and any(
        x == 2 for r in cert.regions for s in r.pattern for x in s)
    for s in cx.states:  # bits for two states (ReLU-like ops), else a byte per unit
        assert s.bits or (hardtanh and s.data.dtype == np.int8)
        assert s.data.shape == (len(s), (s.n + 7) // 8 if s.bits else s.n)


def test_views_are_the_objects_the_columns_were_made_of(
        case: tuple[nn.Module, Certificate]) -> None:
    """The certificate as objects, read from its JSON (the parser makes every Region itself),
    turned into columns by the Python engine's writer and viewed again: the same objects,
    patterns, facets, rays, lines, volumes and all."""
    net, cert = case
    objects = Certificate.from_json(cert.to_json())
    assert isinstance(objects.regions, list)
    built = python_engine._Regions()
    built.regions, built.vertices = list(objects.regions), list(objects.vertices)
    prog = exactrelu.capture(net, cert.input_shape)
    cx = python_engine._complex(prog, cert.domain, built, exactrelu.certify.Stats())
    regions, vertices, adjacency = _columns.views(cx)
    assert list(regions) == list(objects.regions)
    assert list(vertices) == list(objects.vertices)
    assert sorted((a.i, a.j) for a in adjacency) == sorted((a.i, a.j) for a in objects.adjacency)
    assert regions[-1] == objects.regions[-1] and regions[0:2] == objects.regions[0:2]


def test_json_of_the_columns_is_the_json_of_the_objects(
        case: tuple[nn.Module, Certificate], tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """``save`` streams a chunk at a time: the same bytes as one ``json.dumps``, for a columnar
    certificate and for the same certificate loaded from JSON."""
    _, cert = case
    monkeypatch.setattr(exactrelu.certificate, "_SAVE_CHUNK", 3)
    doc = cert.to_json()
    whole = json.dumps(doc, separators=(",", ":")).encode()
    cert.save(tmp_path / "a.json")
    assert (tmp_path / "a.json").read_bytes() == whole
    loaded = Certificate.load(tmp_path / "a.json")
    assert loaded.to_json() == doc
    loaded.save(tmp_path / "b.json.gz")
    assert Certificate.load(tmp_path / "b.json.gz").to_json() == doc


def test_load_drops_its_own_parse_and_from_json_keeps_the_callers(
        case: tuple[nn.Module, Certificate], tmp_path: Any) -> None:
    """``load`` reads its own parse (into columns; as objects, where the columnar reader
    declines, dropping its parsed regions and pairs one by one as it makes their objects);
    ``from_json`` leaves the caller's data as it was; both give the same certificate."""
    _, cert = case
    doc = cert.to_json()
    data = json.loads(json.dumps(doc))
    objects = Certificate.from_json(data)
    assert data == json.loads(json.dumps(doc))
    cert.save(tmp_path / "a.json")
    assert Certificate.load(tmp_path / "a.json").to_json() == objects.to_json() == doc


def test_parquet_from_the_columns_is_parquet_from_the_objects(
        case: tuple[nn.Module, Certificate], tmp_path: Any,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Shards written from the columns (Arrow arrays) and from the objects (their JSON rows)
    hold equal tables, row group by row group."""
    _, cert = case
    monkeypatch.setattr(_shards, "GROUP_ROWS", 3)
    objects = Certificate.from_json(cert.to_json())
    cert.save(tmp_path / "c.parquet", shard_rows=5, progress=False)
    objects.save(tmp_path / "o.parquet", shard_rows=5, progress=False)
    for table in _shards.TABLES:
        files = sorted((tmp_path / "c.parquet" / table).iterdir())
        assert files
        for f in files:
            got = pq.read_table(f)
            want = pq.read_table(tmp_path / "o.parquet" / table / f.name)
            assert got.equals(want), (table, f.name)
    back = Certificate.load(tmp_path / "c.parquet")
    assert back.to_json() == cert.to_json()


def test_index_buffers_are_wrapped_without_a_copy() -> None:
    raw = np.array([0, 3, -5, 2**40], dtype=np.int64).tobytes()
    got = _columns.index_array(raw)
    assert got.tolist() == [0, 3, -5, 2**40] and got.base is raw
    assert _columns.index_array([1, 2]).tolist() == [1, 2]
    assert _columns.index_array([]).dtype == np.int64
    bits = _columns.state_table([[0, 1] * 5, [1] * 10])
    assert bits.bits and bits.data.tolist() == [[0b01010101, 0b01000000], [255, 0b11000000]]
    assert bits.row(0) == [0, 1] * 5 and bits.rows(np.array([1, 0])).tolist()[0] == [1] * 10
    assert _columns.state_table([[0, 2], [1, 1]]).data.dtype == np.int8
    assert _columns.state_table([[0, 300]]).data.dtype == np.int32
    net, dom = CASES["2d"]()
    prog = exactrelu.capture(net, (2,))
    pl = compiled.plan(prog, exactrelu.domain.as_domain(dom))
    if pl is None:
        pytest.skip("the compiled core is not built")
    cx = compiled.certify(prog, exactrelu.domain.as_domain(dom), pl)
    assert isinstance(cx.facet_start.base, bytes)  # the core's bytes, not a copy
    assert cx.facet_start[0] == 0 and cx.facet_start[-1] == len(cx.facet_row)


# --------------------------------------------------------------------------------- mutation
def _fresh() -> tuple[nn.Module, Certificate]:
    net, dom = CASES["2d"]()
    return net, exactrelu.verify(net, dom, progress=False, workers=1)


def _rejected(cert: Certificate, net: nn.Module) -> str:
    with pytest.raises(CertificateError) as info:
        exactrelu.check(cert, net)
    return str(info.value)


def test_a_change_through_an_index_view_is_seen_by_check_and_json() -> None:
    net, cert = _fresh()
    exactrelu.check(cert, net)
    f = cert.regions[3].facets[0]
    cert.regions[3].facets[0] = RegionFacet(f.a, f.b + Fraction(1, 7), f.ids, f.vertices)
    assert cert.to_json()["regions"][3]["facets"][0]["b"] != exactrelu.certificate.q(f.b)
    _rejected(cert, net)


def test_a_change_in_a_loop_survives_leaving_the_window(monkeypatch: pytest.MonkeyPatch,
                                                          tmp_path: Any) -> None:
    """With a window of two views, the changed one is dropped from it by the walks after the
    change, compared with the columns and kept: check, to_json and both savers see it."""
    monkeypatch.setattr(_columns.Regions, "keep", 2)
    net, cert = _fresh()
    for r in cert.regions:
        if r.index == 1:
            r.witness = tuple(c + 5 for c in r.witness)  # outside the domain: not inside
    assert not cert.regions.pristine()
    assert sum(1 for _ in cert.regions) == cert.num_regions  # more walks, more evictions
    original = _fresh()[1]
    assert cert.regions[1].witness == tuple(c + 5 for c in original.regions[1].witness)
    doc = cert.to_json()
    assert doc["regions"][1]["witness"] != original.to_json()["regions"][1]["witness"]
    assert doc["regions"][2] == original.to_json()["regions"][2]
    cert.save(tmp_path / "x.parquet", progress=False)
    assert Certificate.load(tmp_path / "x.parquet").to_json() == doc
    cert.save(tmp_path / "x.json")
    assert Certificate.load(tmp_path / "x.json").to_json() == doc
    assert "witness" in _rejected(cert, net)


def test_assigned_inserted_and_deleted_items() -> None:
    net, cert = _fresh()
    n, v0 = cert.num_vertices, cert.vertices[0]
    cert.vertices[2] = v0
    assert cert.vertices[2] == v0 and len(cert.vertices) == n
    _rejected(cert, net)
    net, cert = _fresh()
    a = cert.adjacency[0]
    cert.adjacency.append(dataclasses.replace(a))  # the same pair twice
    assert len(cert.adjacency) == len(_fresh()[1].adjacency) + 1
    assert isinstance(cert.adjacency.materialize(), list)
    _rejected(cert, net)
    net, cert = _fresh()
    del cert.regions[0]
    assert cert.num_regions == len(cert.pieces) - 1
    _rejected(cert, net)
    with pytest.raises(IndexError):
        _fresh()[1].regions[10**6]


def test_a_sequence_equals_a_list_of_its_items(case: tuple[nn.Module, Certificate]) -> None:
    _, cert = case
    assert cert.regions == list(cert.regions) and list(cert.regions) == cert.regions
    assert cert.vertices != [*cert.vertices, (Fraction(0),) * cert.dim]
    assert cert.regions != "x"
