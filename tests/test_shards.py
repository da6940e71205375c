"""Sharded certificates (a directory of Parquet shards and a manifest): the same certificate as
JSON, checked as JSON is, readable by pandas, and every tampered or hostile shard refused."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import Certificate, CertificateError, _columns
from exactrelu.cli import main
from exactrelu.domain import RealSpace, Slice


def mlp(d: int, widths: list[int], seed: int, out: int = 1) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip([d, *widths], widths, strict=False):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(widths[-1], out)).double().eval()


def conv_slice() -> tuple[nn.Module, Slice]:
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1))
    x = torch.randn(3, 1, 3, 3, dtype=torch.float64)
    return net.double().eval(), Slice.plane(x[0], x[1], x[2])


CASES: dict[str, Any] = {
    "1d": lambda: (mlp(1, [5, 3], 0), [(-2, 2)]),
    "2d": lambda: (mlp(2, [6, 5], 1, out=2), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [5, 3], 2), [(-1, 1)] * 3),
    "r2": lambda: (mlp(2, [5, 3], 4), RealSpace(2)),
    "slice": conv_slice,
    "hardtanh": lambda: (nn.Sequential(nn.Linear(2, 5), nn.Hardtanh(), nn.Linear(5, 1)).double()
                         .eval(), [(-2, 2), (-2, 2)]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request: pytest.FixtureRequest) -> tuple[nn.Module, Certificate]:
    net, dom = CASES[request.param]()
    return net, exactrelu.verify(net, dom, progress=False, workers=1)


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> tuple[nn.Module, Certificate]:
    """A 2-D certificate of several hundred regions."""
    net = mlp(2, [16, 16], 3, out=2)
    return net, exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, workers=1)


def saved(cert: Certificate, path: Path, shard_rows: int) -> Path:
    cert.save(path, shard_rows=shard_rows)
    return path


def test_round_trip_equals_json_and_checks(case, tmp_path):
    net, cert = case
    path = saved(cert, tmp_path / "c.parquet", shard_rows=3)
    manifest = json.loads((path / "manifest.json").read_text())
    assert len(manifest["shards"]["regions"]) == -(-cert.num_regions // 3)
    assert sum(s["rows"] for s in manifest["shards"]["vertices"]) == cert.num_vertices
    back = Certificate.load(path)
    assert back.num_regions == cert.num_regions and back.pieces == cert.pieces
    assert back.to_json() == cert.to_json()
    # and the same as going through JSON
    cert.save(tmp_path / "c.json")
    assert Certificate.load(tmp_path / "c.json").to_json() == back.to_json()
    assert exactrelu.check(Certificate.load(path), net).num_regions == cert.num_regions


def test_regions_are_read_shard_by_shard(big, tmp_path):
    _, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    back = Certificate.load(path)
    regions: Any = back.regions
    assert regions._cached == {}  # nothing read at load time but the piece labels
    assert back.regions[150].witness == cert.regions[150].witness
    assert set(regions._cached) == {1}
    assert back.regions[-1].output == cert.regions[-1].output
    assert [len(s) for s in regions.shards()][:2] == [100, 100]
    regions.release()
    assert regions._cached == {}
    assert [r.index for r in back.regions] == list(range(cert.num_regions))


def test_shards_are_read_as_columns_whose_views_are_the_json_objects(case, tmp_path):
    """Each shard becomes columns (a Complex of its rows) and its views are the objects the
    JSON reader makes of the same certificate, indexed by their position in the whole."""
    net, cert = case
    path = saved(cert, tmp_path / "c.parquet", shard_rows=4)
    back = Certificate.load(path)
    objects = Certificate.from_json(json.loads(json.dumps(cert.to_json())))
    kinds = {"regions": _columns.Regions, "vertices": _columns.Vertices,
             "adjacency": _columns.Adjacencies}
    for name, kind in kinds.items():
        rows: Any = getattr(back, name)
        passes = list(rows.shards())
        assert passes and all(isinstance(p.columns[0], _columns.Complex) for p in passes)
        assert [p.columns[1] for p in passes] == [4 * k for k in range(len(passes))]
        assert all(isinstance(rows._load(k), kind) for k in range(len(passes)))
        assert [x for p in passes for x in p] == list(getattr(objects, name))
        assert list(rows) == list(getattr(objects, name))
    assert [r.index for r in back.regions] == list(range(cert.num_regions))
    states = back.regions._load(0).cx.states  # type: ignore[attr-defined]
    assert all(s.bits for s in states) != (net[1].__class__ is nn.Hardtanh)


def test_a_shard_the_columns_decline_is_read_as_objects(big, tmp_path):
    """Patterns of unequal shapes fit no state table: that shard is read row by row (the
    objects the JSON reader makes), and check refuses the pattern naming the region."""
    net, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    t = shard(path, "regions", 1)
    rows = t.to_pylist()
    rows[7]["pattern"][0].append(0)
    rewrite(path, "regions", 1, pa.Table.from_pylist(rows, schema=t.schema))
    back = Certificate.load(path)
    regions: Any = back.regions
    assert isinstance(regions._load(0), _columns.Regions)
    assert type(regions._load(1)) is list
    assert regions[107].pattern[0] == [*cert.regions[107].pattern[0], 0]
    assert regions[108] == cert.regions[108]
    assert "region 107" in rejected(path, net)


@pytest.mark.parametrize(("table", "row", "change", "named"), [
    ("regions", 5, lambda r: r["witness"].__setitem__(0, "1/0"), "regions[5].witness[0]"),
    ("regions", 6, lambda r: r["witness"].__setitem__(1, None), "regions[6].witness[1]"),
    ("regions", 7, lambda r: r["witness"].__setitem__(0, "0x1F"), "regions[7].witness[0]"),
    ("regions", 8, lambda r: r["facets"][0]["vertices"].__setitem__(0, 10**9),
     "regions[8].facets[0].vertices[0]"),
    ("regions", 9, lambda r: r["facets"][1]["ids"].__setitem__(0, -1),
     "regions[9].facets[1].ids[0]"),
    ("regions", 3, lambda r: r["output"].pop(), "regions[3].output"),
    ("regions", 4, lambda r: r["output"][0].pop(), "regions[4].output[0]"),
    ("regions", 2, lambda r: r.__setitem__("repaired", None), "regions[2].repaired"),
    ("regions", 1, lambda r: r["pattern"][1].__setitem__(0, 1 << 40), "regions[1].pattern[1][0]"),
    ("regions", 0, lambda r: r["facets"].__setitem__(0, None), "regions[0].facets[0]"),
    ("regions", 10, lambda r: r["facets"][0]["rays"].append(0), "regions[10].facets[0].rays[0]"),
    ("vertices", 2, lambda r: r["coordinates"].append("1"), "vertices[2]"),
    ("adjacency", 3, lambda r: r.__setitem__("j", 10**7), "adjacency[3].j"),
    ("adjacency", 4, lambda r: r.__setitem__("b", "--1"), "adjacency[4].b"),
])
def test_a_malformed_value_in_a_shard_is_named(big, tmp_path, table, row, change, named):
    """What the columnar reader declines, the row reader names (the same error as before)."""
    net, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    t = shard(path, table, 0)
    rows = t.to_pylist()
    change(rows[row])
    rewrite(path, table, 0, pa.Table.from_pylist(rows, schema=t.schema))
    message = rejected(path, net)
    assert f"malformed certificate: {named}" in message, message


def test_pandas_reads_each_table(big, tmp_path):
    pd = pytest.importorskip("pandas")
    _, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    regions = pd.read_parquet(path / "regions")
    assert len(regions) == cert.num_regions
    assert list(regions["piece"]) == cert.pieces
    assert len(pd.read_parquet(path / "adjacency")) == len(cert.adjacency)


def test_the_command_line_writes_and_checks_shards(tmp_path, capsys, monkeypatch):
    (tmp_path / "shardnet_factory.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1))\n")
    torch.manual_seed(0)
    torch.save(nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 1)).state_dict(),
               tmp_path / "w.pt")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = ["shardnet_factory:build", "--weights", str(tmp_path / "w.pt")]
    out = tmp_path / "c.parquet"
    rc = main(["verify", *model, "--bounds", "-1", "1", "-1", "1", "-o", str(out), "--quiet"])
    assert rc == 0, capsys.readouterr()
    assert (out / "manifest.json").is_file()
    assert main(["check", str(out), "--model", *model]) == 0, capsys.readouterr()
    (out / "vertices/part-00000.parquet").write_bytes(b"")
    assert main(["check", str(out), "--model", *model]) == 1
    assert "vertices/part-00000.parquet: 0 bytes" in "".join(capsys.readouterr())


# ------------------------------------------------------------------------------- tampering
def rewrite(path: Path, table: str, k: int, new: pa.Table, header: dict[str, Any] | None = None,
            **write: Any) -> None:
    """Write ``new`` as shard ``k`` of ``table`` and make the manifest agree with it (and set
    the manifest's fields ``header``)."""
    manifest = json.loads((path / "manifest.json").read_text())
    entry = manifest["shards"][table][k]
    pq.write_table(new, path / entry["file"], **write)
    data = (path / entry["file"]).read_bytes()
    entry.update(rows=new.num_rows, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    manifest.update(header or {})
    (path / "manifest.json").write_text(json.dumps(manifest))


def shard(path: Path, table: str, k: int) -> pa.Table:
    return pq.read_table(path / f"{table}/part-{k:05d}.parquet")


def rejected(path: Path, net: nn.Module) -> str:
    """The message of the CertificateError that loading or checking raises (reading every
    shard); fails the test if the certificate is accepted."""
    with pytest.raises(CertificateError) as info:
        exactrelu.check(Certificate.load(path), net)
    return str(info.value)


def test_a_dropped_shard_is_refused(big, tmp_path):
    net, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    f = path / "regions/part-00001.parquet"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 1
    f.write_bytes(bytes(data))
    assert "part-00001.parquet: its SHA-256 differs" in rejected(path, net)
    f.unlink()
    assert "regions/part-00001.parquet: missing" in rejected(path, net)
    # dropped from the manifest too, counts adjusted: the regions left do not cover the domain
    path = saved(cert, tmp_path / "d.parquet", shard_rows=100)
    manifest = json.loads((path / "manifest.json").read_text())
    del manifest["shards"]["regions"][-1]
    manifest["num_regions"] = sum(s["rows"] for s in manifest["shards"]["regions"])
    (path / "manifest.json").write_text(json.dumps(manifest))
    rejected(path, net)


def test_a_region_moved_between_shards_is_refused(big, tmp_path):
    net, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    first, second = shard(path, "regions", 0), shard(path, "regions", 1)
    moved = pa.concat_tables([second, first.slice(0, 1)])
    pq.write_table(moved, path / "regions/part-00001.parquet", compression="zstd")
    assert "regions/part-00001.parquet: 33" in rejected(path, net)
    # with the manifest made to agree: the regions are in another order than adjacency and
    # pieces say
    rewrite(path, "regions", 1, moved)
    rewrite(path, "regions", 0, first.slice(1))
    rejected(path, net)


def test_a_changed_value_is_refused(big, tmp_path):
    net, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    rows = shard(path, "regions", 0).to_pylist()
    w = rows[5]["witness"]
    rows[5]["witness"] = [w[1], w[0]] if w[0] != w[1] else ["7", w[1]]
    table = pa.Table.from_pylist(rows, schema=shard(path, "regions", 0).schema)
    rewrite(path, "regions", 0, table)
    assert "region 5" in rejected(path, net)


def test_hostile_shards_fail_with_certificate_error_naming_them(big, tmp_path):
    net, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    # a column of another type
    t = shard(path, "vertices", 0)
    rewrite(path, "vertices", 0, pa.table({"coordinates": pa.array([[1.5, 2.5]] * t.num_rows)}))
    assert "vertices/part-00000.parquet" in rejected(path, net)
    assert "unexpected types" in rejected(path, net)
    # not Parquet at all, with a manifest that agrees
    path = saved(cert, tmp_path / "d.parquet", shard_rows=100)
    f = path / "adjacency/part-00000.parquet"
    f.write_bytes(b"PAR1 garbage")
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["shards"]["adjacency"][0].update(
        bytes=12, sha256=hashlib.sha256(b"PAR1 garbage").hexdigest())
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert "not a readable Parquet file" in rejected(path, net)
    # a path out of the directory
    manifest["shards"]["adjacency"][0]["file"] = "../../etc/passwd"
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert "shards.adjacency[0].file" in rejected(path, net)
    # a manifest that is not JSON, and none at all
    (path / "manifest.json").write_text("{")
    assert "malformed sharded certificate" in rejected(path, net)
    (path / "manifest.json").unlink()
    assert "no manifest.json" in rejected(path, net)


def test_a_decompression_bomb_is_refused_before_reading(big, tmp_path):
    net, cert = big
    path = saved(cert, tmp_path / "c.parquet", shard_rows=100)
    t = shard(path, "regions", 0)
    rows = t.to_pylist()
    for r in rows:  # one long repeated string: zstd shrinks it by far more than 64x
        r["witness"] = ["1" * 200_000 + "/3", "0"]
    rewrite(path, "regions", 0, pa.Table.from_pylist(rows, schema=t.schema),
            use_dictionary=False, compression="zstd")
    assert "decompression bomb" in rejected(path, net)


def test_saving_over_something_else_is_refused(big, tmp_path):
    _, cert = big
    (tmp_path / "x.parquet").mkdir()
    (tmp_path / "x.parquet" / "keep.txt").write_text("mine")
    with pytest.raises(CertificateError, match="not a sharded certificate"):
        cert.save(tmp_path / "x.parquet")
    assert (tmp_path / "x.parquet" / "keep.txt").read_text() == "mine"


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_fuzzed_manifests_fail_with_certificate_error(big, tmp_path_factory, data):
    """Any change of one manifest field is refused with a CertificateError (or leaves the
    certificate as it was), within seconds."""
    _, cert = big
    path = tmp_path_factory.mktemp("fuzz") / "c.parquet"
    cert.save(path, shard_rows=100)
    manifest = json.loads((path / "manifest.json").read_text())
    entries = [("shards", t, k, f) for t in ("regions", "vertices", "adjacency")
               for k in range(len(manifest["shards"][t])) for f in ("file", "rows", "bytes")]
    entries += [(key,) for key in ("format", "num_regions", "num_pieces", "input_shape",
                                   "constraint_offsets", "domain")]
    where = data.draw(st.sampled_from(entries))
    value = data.draw(st.one_of(st.integers(-2, 10**6), st.text(max_size=8), st.none(),
                                st.lists(st.integers(-1, 3), max_size=3), st.just(10**40)))
    target = manifest
    for key in where[:-1]:
        target = target[key]
    target[where[-1]] = value
    (path / "manifest.json").write_text(json.dumps(manifest))
    t0 = time.perf_counter()
    try:
        back = Certificate.load(path)
        same = back.to_json() == cert.to_json()
    except CertificateError:
        same = True
    assert same, where
    assert time.perf_counter() - t0 < 5


def test_a_bad_shard_size_is_an_input_error(big, tmp_path):
    _, cert = big
    for bad in (0, -3, 1.5, True):
        with pytest.raises(exactrelu.InvalidInputError, match="shard_rows"):
            cert.save(tmp_path / "c.parquet", shard_rows=bad)
