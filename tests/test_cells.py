"""verify with ``cells=``: the first layer's cells certified one after another in this process,
each written as shards in the whole certificate's numbering; the same certificate as an
unsplit run (in canonical form, regions in the same order), as the in-memory merge of the same
cells (field by field), checked, and a tampered cell shard refused."""

from __future__ import annotations

import hashlib
import json
import tempfile
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import (
    Certificate,
    CertificateError,
    InvalidInputError,
    RegionLimitError,
    distributed,
)
from exactrelu._columns import Adjacencies, Regions, Vertices, state_table
from exactrelu.cli import main
from exactrelu.domain import Domain, Polyhedron, Polytope, RealSpace
from exactrelu.engines import canonical
from exactrelu.verify import _program_and_domain

from constructions import l1_shell
from cut_nets import UNBOUNDED, conv_slice, degenerate, mlp, silent_unit
from test_check_compiled import compiled
from test_engines import unbounded_nets

CASES: dict[str, Any] = {
    "1d": lambda: (mlp(1, [6, 5], 2), [(-2, 2)]),
    "2d": lambda: (mlp(2, [10, 10, 10], 0), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [6, 6], 1), [(-1, 1)] * 3),
    "silent": lambda: (silent_unit(), [(-1, 1), (-1, 1)]),
    "degenerate": lambda: (degenerate(), [(-1, 1), (-1, 1)]),
    # two thresholds per unit: cut function by function, all first thresholds first
    "hardtanh": lambda: (mlp(2, [5, 4], 3, lambda: nn.Hardtanh(-1.0, -0.5)), [(-3, 3), (-3, 3)]),
    "shell": lambda: (l1_shell(2, 1.0), [(-2, 2), (-2, 2)]),
    "triangle": lambda: (mlp(2, [8, 6], 5), Polytope([[-1, 0], [0, -1], [1, 1]], [1, 1, 1])),
    "slice": conv_slice,
}


def plain(cert: Certificate) -> dict[str, Any]:
    out = cert.to_json()
    out.pop("stats")
    out["adjacency"].sort(key=lambda a: (a["i"], a["j"]))
    return out


@pytest.mark.parametrize("name", sorted(CASES))
def test_cells_write_the_certificate_of_an_unsplit_run(name, tmp_path):
    net, dom = CASES[name]()
    whole = exactrelu.verify(net, dom, progress=False, workers=1)
    path = tmp_path / "x.parquet"
    split = exactrelu.verify(net, dom, progress=False, workers=1, cells=4, save=path)
    assert split.stats["tasks"] >= 4 or name == "shell"
    assert split.stats["engine"].startswith("cells (")
    assert sorted(p.name for p in path.iterdir()) == ["adjacency", "manifest.json", "regions",
                                                     "vertices"]  # nothing spilled is left
    files = sorted(p.name for p in (path / "regions").iterdir())
    assert len(files) == split.stats["tasks"] and files[0].startswith("cell-00000")
    assert split.num_regions == whole.num_regions
    assert canonical(split) == canonical(whole)
    assert [r.pattern for r in split.regions] == [r.pattern for r in whole.regions]
    # field by field the certificate the in-memory merge of the same cells makes
    prog, domain = _program_and_domain(net, dom, None)
    merged = distributed.run(net, prog, domain, None, workers=1, cells=4)
    assert plain(merged) == plain(split)
    assert exactrelu.check(Certificate.load(path), net).num_regions == whole.num_regions


def both_merges(net: nn.Module, dom: Any, cells: int) -> tuple[Certificate, Certificate,
                                                             Certificate, tuple]:
    """``distributed.run`` with ``cells`` in memory, the merge of its parts again, the object
    merge of the same parts, and the merge's arguments (domain, shape, cells' ids, parts); a
    run of one task (nothing merged): the run three times and no arguments."""
    prog, domain = _program_and_domain(net, dom, None)
    with mock.patch.object(distributed, "merge", wraps=distributed.merge) as spy:
        run = distributed.run(net, prog, domain, None, workers=1, cells=cells)
    if spy.call_args is None:
        assert run.stats["tasks"] == 1
        return run, run, run, ()
    args = spy.call_args.args
    return run, distributed.merge(*args), distributed._merge_objects(*args), args


def is_columnar(cert: Certificate) -> bool:
    """Are the certificate's regions, vertices and pairs lazy views of one complex, unchanged?"""
    seqs = (cert.regions, cert.vertices, cert.adjacency)
    return ([type(s) for s in seqs] == [Regions, Vertices, Adjacencies]
            and all(s.cx is cert.regions.cx and s.pristine() for s in seqs))


MERGES = {**CASES, **{f"unbounded {k}": v for k, v in UNBOUNDED.items()}}


@pytest.mark.parametrize("name", sorted(MERGES))
def test_the_merge_in_columns_is_the_merge_of_objects(name):
    """The in-memory merge of the cells' columns: a columnar certificate (lazy views, not
    lists) equal field by field to the object merge of the same parts (regions in order,
    vertex and piece numbering, pairs, offsets), and to an unsplit run in canonical form; the
    checker accepts it, by the compiled pass wherever it takes the unsplit run's."""
    net, dom = MERGES[name]()
    run, columns, objects, (_, _, _, parts) = both_merges(net, dom, 4)
    assert len(parts) > 1 or name == "shell"
    assert is_columnar(run) and is_columnar(columns)
    assert type(objects.regions) is list and type(objects.adjacency) is list
    assert columns == objects
    assert plain(run) == plain(objects)
    whole = exactrelu.verify(net, dom, progress=False, workers=1)
    assert canonical(columns) == canonical(whole)
    assert [r.pattern for r in columns.regions] == [r.pattern for r in whole.regions]
    reason = compiled(whole, net)
    assert compiled(columns, net) == reason
    # the compiled pass takes bounded domains, and unbounded ones of 2 or 3 dimensions whose
    # regions have no lines
    takes = columns.domain.is_bounded or (columns.domain.dim in (2, 3)
                                          and not any(r.lines for r in whole.regions))
    assert (reason is None) == takes, reason
    assert exactrelu.check(columns, net, progress=False) is columns


def test_a_part_that_is_not_columnar_is_merged_as_objects():
    """A part whose regions were made a list (or changed in place): the object merge, the same
    certificate as the columns' merge of the unchanged parts."""
    net, dom = CASES["2d"]()
    _, columns, _, (domain, shape, ids, parts) = both_merges(net, dom, 4)
    parts[1].regions.materialize()
    merged = distributed.merge(domain, shape, ids, parts)
    assert not is_columnar(merged) and type(merged.regions) is list
    assert merged == columns
    parts[1].regions[0].repaired = True  # a changed part: the merge has the change
    assert distributed.merge(domain, shape, ids, parts).regions[len(parts[0].regions)].repaired


def test_joined_state_tables_keep_every_regions_states():
    """Cells' state tables joined (bits and small integers mixed, rows repeated across cells):
    each region's state list is the one its cell's table gives, and the joined rows are
    distinct."""
    lists = [[[0, 1, 1], [1, 0, 0]], [[2, 0, 1], [0, 1, 1]], [[1, 0, 0]]]
    ids = [np.array([1, 0, 1]), np.array([0, 1, 1, 0]), np.array([0, 0])]
    tables = [state_table(x) for x in lists]
    assert [t.bits for t in tables] == [True, False, True]
    table, joined = distributed._joined_states(tables, ids)
    expected = [lists[k][i] for k in range(3) for i in ids[k].tolist()]
    assert [table.row(int(j)) for j in joined] == expected
    assert len({tuple(table.row(k)) for k in range(len(table))}) == len(table) == 3
    bits = [state_table(x) for x in ([[0, 1]], [[1, 1], [0, 1]])]
    table, joined = distributed._joined_states(bits, [np.array([0, 0]), np.array([1, 0])])
    assert table.bits and [table.row(int(j)) for j in joined] == [[0, 1], [0, 1], [0, 1], [1, 1]]


def test_the_silent_unit_joins_pieces_across_cells(tmp_path):
    net = silent_unit()
    whole = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, workers=1)
    split = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, workers=1, cells=8,
                             save=tmp_path / "x.parquet")
    assert split.num_pieces == whole.num_pieces < whole.num_regions
    assert split.pieces == whole.pieces


def test_a_tampered_cell_shard_is_refused(tmp_path):
    net, dom = CASES["2d"]()
    path = tmp_path / "x.parquet"
    exactrelu.verify(net, dom, progress=False, workers=1, cells=4, save=path)
    manifest = json.loads((path / "manifest.json").read_text())
    entry = manifest["shards"]["regions"][1]
    rows = pq.read_table(path / entry["file"])
    moved = rows.to_pylist()
    w = moved[3]["witness"]
    moved[3]["witness"] = [w[1], w[0]] if w[0] != w[1] else ["7", w[1]]
    pq.write_table(type(rows).from_pylist(moved, schema=rows.schema), path / entry["file"])
    data = (path / entry["file"]).read_bytes()
    entry.update(bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (path / "manifest.json").write_text(json.dumps(manifest))
    first = manifest["shards"]["regions"][0]["rows"]
    with pytest.raises(CertificateError, match=f"region {first + 3}"):
        exactrelu.check(Certificate.load(path), net, progress=False)
    # a pair across cells dropped: adjacency is incomplete
    path2 = tmp_path / "y.parquet"
    exactrelu.verify(net, dom, progress=False, workers=1, cells=4, save=path2)
    manifest = json.loads((path2 / "manifest.json").read_text())
    across = next(e for e in manifest["shards"]["adjacency"] if "across" in e["file"])
    table = pq.read_table(path2 / across["file"])
    pq.write_table(table.slice(1), path2 / across["file"])
    data = (path2 / across["file"]).read_bytes()
    across.update(rows=table.num_rows - 1, bytes=len(data),
                  sha256=hashlib.sha256(data).hexdigest())
    (path2 / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CertificateError, match="adjacen"):
        exactrelu.check(Certificate.load(path2), net, progress=False)


def test_arguments_of_cells(tmp_path):
    net, dom = CASES["2d"]()
    whole = exactrelu.verify(net, dom, progress=False)
    n = whole.num_regions
    # without a .parquet directory the cells are merged in memory (and saved as JSON if asked)
    mem = exactrelu.verify(net, dom, progress=False, cells=4)
    assert type(mem.regions) is Regions  # columns, not objects
    assert canonical(mem) == canonical(whole)
    assert [r.pattern for r in mem.regions] == [r.pattern for r in whole.regions]
    saved = exactrelu.verify(net, dom, progress=False, cells=4, save=tmp_path / "x.json")
    assert Certificate.load(tmp_path / "x.json") == saved
    assert canonical(saved) == canonical(mem)
    with pytest.raises(RegionLimitError):
        exactrelu.verify(net, dom, progress=False, cells=4, max_regions=n // 2)
    with pytest.raises(InvalidInputError, match="cells=0: pass a positive integer"):
        exactrelu.verify(net, dom, progress=False, cells=0, save=tmp_path / "x.parquet")
    with pytest.raises(InvalidInputError, match="drop executor= and trace="):
        exactrelu.verify(net, dom, progress=False, cells=4, save=tmp_path / "x.parquet",
                         trace=exactrelu.trace(net, dom, progress=False))
    with pytest.raises(RegionLimitError) as info:
        exactrelu.verify(net, dom, progress=False, cells=4, save=tmp_path / "x.parquet",
                         max_regions=n // 2)
    assert info.value.found > n // 2
    assert not any(Path(tmp_path / "x.parquet").glob(".cells-*"))  # the spill is removed


def test_the_command_line_verifies_cell_by_cell(tmp_path, capsys, monkeypatch):
    (tmp_path / "cellnet_factory.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(),\n"
        "                         nn.Linear(6, 1))\n")
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 1))
    torch.save(net.state_dict(), tmp_path / "w.pt")
    monkeypatch.syspath_prepend(str(tmp_path))
    model = ["cellnet_factory:build", "--weights", str(tmp_path / "w.pt")]
    bounds = ["--bounds", "-1", "1", "-1", "1"]
    out = tmp_path / "c.parquet"
    assert main(["verify", *model, *bounds, "--cells", "3", "-o", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert len(list((out / "regions").glob("cell-*.parquet"))) >= 3
    assert main(["check", str(out), "--model", *model, "--quiet"]) == 0, capsys.readouterr()
    whole = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    assert Certificate.load(out).num_regions == whole.num_regions
    capsys.readouterr()
    # JSON: the cells merged in memory, then saved; the file is the unsplit run's certificate
    js = tmp_path / "c.json"
    assert main(["verify", *model, *bounds, "--cells", "3", "-o", str(js), "--quiet"]) == 0
    loaded = Certificate.load(js)
    assert canonical(loaded) == canonical(whole)
    assert [r.pattern for r in loaded.regions] == [r.pattern for r in whole.regions]
    assert main(["check", str(js), "--model", *model, "--quiet"]) == 0, capsys.readouterr()


# ----------------------------------------------------------------------------- unbounded domains
UNBOUNDED_2D: dict[str, Domain] = {
    "r2": RealSpace(2),
    "half-plane": Polyhedron([[1, -1]], ["1/2"]),
    "strip": Polyhedron([[0, 1], [0, -1]], [1, 1]),
    "wedge": Polyhedron([[-1, 0], [1, 2]], [0, 1]),
}


def same_split(net: nn.Module, dom: Domain) -> None:
    """cells=3 merged in memory (in columns) and written as shards: the unsplit certificate in
    canonical form, regions in the same order, field by field one another and the object
    merge of the same cells; the checker accepts it."""
    whole = exactrelu.verify(net, dom, progress=False, workers=1)
    merged, columns, objects, _ = both_merges(net, dom, 3)
    assert is_columnar(merged) and columns == objects
    assert canonical(merged) == canonical(whole)
    assert [r.pattern for r in merged.regions] == [r.pattern for r in whole.regions]
    with tempfile.TemporaryDirectory() as tmp:
        split = exactrelu.verify(net, dom, progress=False, workers=1, cells=3,
                                 save=Path(tmp) / "x.parquet")
        assert plain(split) == plain(merged)
    assert exactrelu.check(merged, net) is merged


@settings(max_examples=12)
@given(st.booleans().flatmap(lambda deg: unbounded_nets(2, degenerate=deg)),
       st.sampled_from(sorted(UNBOUNDED_2D)))
def test_cells_on_unbounded_2d_domains_give_the_unsplit_certificate(net, name):
    """Generated nets (degenerate ones: duplicated, negated, parallel units, hyperplanes through
    one point) on all of R^2, a half-plane, a strip and a wedge."""
    same_split(net, UNBOUNDED_2D[name])


@settings(max_examples=6)
@given(unbounded_nets(3, degenerate=True))
def test_cells_on_all_of_r3_give_the_unsplit_certificate(net):
    same_split(net, RealSpace(3))


@pytest.mark.parametrize("name", ["strips (lines)", "prisms (lines)", "r2", "r3"])
def test_a_dropped_pair_across_an_unbounded_cut_is_refused(name, tmp_path):
    """A pair across cells of unbounded regions that share fewer than d vertices (strips and
    prisms: regions with lines and no vertex at all; R^2 and R^3: regions meeting along an
    unbounded facet) dropped from the merged certificate, and from the pairs across that the
    client writes: the checker refuses both."""
    net, dom = UNBOUNDED[name]()
    path = tmp_path / "x.parquet"
    cert = exactrelu.verify(net, dom, progress=False, workers=1, cells=4, save=path)
    manifest = json.loads((path / "manifest.json").read_text())
    entry = next(e for e in manifest["shards"]["adjacency"] if "across" in e["file"])
    table = pq.read_table(path / entry["file"])
    across = table.to_pylist()
    k = next(k for k, a in enumerate(across)
             if cert.regions[a["i"]].rays + cert.regions[a["i"]].lines
             and cert.regions[a["j"]].rays + cert.regions[a["j"]].lines
             and len(set(cert.regions[a["i"]].vertices)
                     & set(cert.regions[a["j"]].vertices)) < dom.dim)
    prog, domain = _program_and_domain(net, dom, None)
    merged = distributed.run(net, prog, domain, None, workers=1, cells=4)
    pairs = [(a.i, a.j) for a in merged.adjacency]
    del merged.adjacency[pairs.index((across[k]["i"], across[k]["j"]))]
    with pytest.raises(CertificateError, match="adjacen"):
        exactrelu.check(merged, net, progress=False)
    pq.write_table(pa.concat_tables([table.slice(0, k), table.slice(k + 1)]), path / entry["file"])
    data = (path / entry["file"]).read_bytes()
    entry.update(rows=table.num_rows - 1, bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
    (path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CertificateError, match="adjacen"):
        exactrelu.check(Certificate.load(path), net, progress=False)
