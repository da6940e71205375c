"""verify on a Dask cluster (a LocalCluster of processes): the first layer's cells as tasks,
merged exactly into the certificate a local run gives (in canonical form), checked."""

from __future__ import annotations

import concurrent.futures
import itertools
import json
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import (
    Certificate,
    CertificateError,
    ClusterError,
    InvalidInputError,
    RegionLimitError,
    _checkdask,
)
from exactrelu._columns import Adjacencies, Regions, Vertices
from exactrelu.distributed import run as distributed_run
from exactrelu.domain import Polytope
from exactrelu.engines import canonical
from exactrelu.verify import _program_and_domain

from constructions import l1_shell, linf_ball_classifier
from cut_nets import UNBOUNDED, conv_slice, degenerate, mlp, silent_unit
from test_check_compiled import compiled, merging_net
from test_check_compiled_unbounded import without_region
from test_shards import rewrite

CHECKER = sys.modules["exactrelu.check"]

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def client() -> Any:
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, \
            distributed.Client(cluster) as c:
        yield c


def same(remote: Certificate, local: Certificate) -> None:
    """Equal in canonical form, and the regions in the same (canonical) order."""
    assert canonical(remote) == canonical(local)
    assert [r.pattern for r in remote.regions] == [r.pattern for r in local.regions]


CASES: dict[str, Any] = {
    "1d": lambda: (mlp(1, [6, 5], 2), [(-2, 2)]),
    "2d": lambda: (mlp(2, [12, 12, 12], 0), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [6, 6], 1), [(-1, 1)] * 3),
    "4d": lambda: (mlp(4, [5, 4], 3), [(-1, 1)] * 4),
    "leaky": lambda: (mlp(2, [8, 8], 4, lambda: nn.LeakyReLU(0.2)), [(-1, 1), (-1, 1)]),
    "degenerate": lambda: (degenerate(), [(-1, 1), (-1, 1)]),
    "silent": lambda: (silent_unit(), [(-1, 1), (-1, 1)]),
    "shell": lambda: (l1_shell(2, 1.0), [(-2, 2), (-2, 2)]),
    "linf": lambda: (linf_ball_classifier(3, 0.5), [(-1, 1)] * 3),
    "triangle": lambda: (mlp(2, [8, 6], 5), Polytope([[-1, 0], [0, -1], [1, 1]], [1, 1, 1])),
    "slice": conv_slice,
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_a_cluster_run_is_the_local_certificate(client, name):
    net, dom = CASES[name]()
    local = exactrelu.verify(net, dom, progress=False, workers=1)
    remote = exactrelu.verify(net, dom, executor=client, progress=False, workers=1)
    assert remote.stats["tasks"] > 1
    assert remote.num_regions == local.num_regions
    same(remote, local)
    # merged in columns: lazy views of one complex, which the compiled checker's pass takes
    # wherever it takes the local run's
    assert [type(s) for s in (remote.regions, remote.vertices, remote.adjacency)] == \
        [Regions, Vertices, Adjacencies]
    reason = compiled(remote, net)
    assert reason == compiled(local, net) and (reason is None or name not in ("2d", "4d"))
    assert exactrelu.check(remote, net) is remote
    # vertices are numbered by first appearance, adjacency sorted by region pair
    seen: dict[int, None] = {}
    for r in remote.regions:
        seen.update(dict.fromkeys(r.vertices))
    assert list(seen) == list(range(remote.num_vertices))
    assert [(a.i, a.j) for a in remote.adjacency] == sorted((a.i, a.j) for a in remote.adjacency)
    if name == "silent":
        assert remote.num_pieces < remote.num_regions


@pytest.mark.parametrize("name", ["1d", "2d", "3d", "degenerate", "silent", "slice"])
def test_workers_write_the_shards_of_the_merged_certificate(client, name, tmp_path):
    """With save="x.parquet" the workers write their cells and the client what lies between
    them: the directory holds the certificate the in-memory merge makes (adjacent pairs
    grouped by cell, then those across cells)."""
    net, dom = CASES[name]()
    merged = exactrelu.verify(net, dom, executor=client, progress=False, workers=1)
    path = tmp_path / "x.parquet"
    sharded = exactrelu.verify(net, dom, executor=client, progress=False, workers=1, save=path)
    files = sorted(p.name for p in (path / "regions").iterdir())
    assert len(files) == merged.stats["tasks"] > 1 and files[0].startswith("cell-00000")
    a, b = merged.to_json(), sharded.to_json()
    for j in (a, b):
        j.pop("stats")
        j["adjacency"].sort(key=lambda x: (x["i"], x["j"]))
    assert a == b
    assert exactrelu.check(Certificate.load(path), net).num_regions == merged.num_regions


def test_a_net_that_cannot_be_cut_runs_as_one_task(client, tmp_path):
    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.body = mlp(2, [6], 0)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.body(x)

    net = Twice().double()
    local = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, workers=1)
    remote = exactrelu.verify(net, [(-1, 1), (-1, 1)], executor=client, progress=False,
                              claimed=local.num_regions)
    assert remote.stats["tasks"] == 1
    same(remote, local)
    path = tmp_path / "one.parquet"
    written = exactrelu.verify(net, [(-1, 1), (-1, 1)], executor=client, progress=False,
                               save=path)
    same(written, local)
    assert [p.name for p in (path / "regions").iterdir()] == ["cell-00000-00000.parquet"]


def test_save_writes_what_verify_returns(client, tmp_path):
    net, dom = CASES["2d"]()
    for executor, name in ((None, "local.json"), (client, "merged.cert.json.gz")):
        cert = exactrelu.verify(net, dom, executor=executor, progress=False, save=tmp_path / name)
        assert Certificate.load(tmp_path / name).to_json() == cert.to_json()
    with pytest.raises(InvalidInputError, match="save=3: pass a path"):
        exactrelu.verify(net, dom, progress=False, save=3)


def test_limits_and_domains(client):
    net = mlp(2, [12, 12], 0)
    n = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False).num_regions
    with pytest.raises(RegionLimitError) as info:
        exactrelu.verify(net, [(-1, 1), (-1, 1)], executor=client, max_regions=n // 2,
                         progress=False)
    assert info.value.found > n // 2
    tr = exactrelu.trace(net, [(-1, 1), (-1, 1)], progress=False)
    with pytest.raises(InvalidInputError, match="trace= is for a local run"):
        exactrelu.verify(net, [(-1, 1), (-1, 1)], executor=client, trace=tr, progress=False)
    # the compiled engine on each task
    c = exactrelu.verify(net, [(-1, 1), (-1, 1)], executor=client, engine="compiled",
                         progress=False)
    assert c.stats["engine"] == "dask (compiled)" and c.num_regions == n
    assert sum(r.volume for r in c.regions) == Fraction(4)


def test_progress_counts_every_task(client, monkeypatch):
    seen = []

    class Bar:
        def __init__(self, total, desc, enabled):
            self.total, self.enabled, self.n = total, enabled, 0
            seen.append(self)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

        def update(self, k):
            self.n += k

    monkeypatch.setattr("exactrelu.distributed.progress_bar", Bar)
    cert = exactrelu.verify(mlp(2, [8, 8], 1), [(-1, 1), (-1, 1)], executor=client)
    assert len(seen) == 1 and seen[0].enabled
    assert seen[0].n == seen[0].total == cert.stats["tasks"] > 1


# ------------------------------------------------------------------------- unbounded domains
@pytest.mark.parametrize("name", sorted(UNBOUNDED))
def test_unbounded_domains_split_into_cells_give_the_local_certificate(client, name, tmp_path):
    """All of R^d, an unbounded polyhedron, a slice over R^2, and first layers whose cells
    meet along shared hyperplanes, at one point, or hold lines: the local run, cells= (sharded,
    in this process) and a cluster run (merged in memory) are one certificate in canonical form,
    regions in the same order, without volumes; the checker accepts it."""
    net, dom = UNBOUNDED[name]()
    local = exactrelu.verify(net, dom, progress=False, workers=1)
    assert any(r.rays or r.lines for r in local.regions)
    split = exactrelu.verify(net, dom, progress=False, workers=1, cells=4,
                             save=tmp_path / "x.parquet")
    remote = exactrelu.verify(net, dom, executor=client, progress=False, workers=1, cells=4)
    assert remote.stats["tasks"] > 1 and split.stats["tasks"] > 1
    for cert in (split, remote):
        same(cert, local)
        assert all(r.volume is None for r in cert.regions)
    if name.endswith("(lines)"):
        assert all(r.lines and not r.vertices for r in remote.regions)
    assert exactrelu.check(remote, net) is remote  # the shards: tests/test_cells.py


@pytest.mark.parametrize("name", ["half-plane", "slice over r2", "strips (lines)"])
def test_workers_write_the_shards_on_unbounded_domains(client, name, tmp_path, caplog):
    """save= on the cluster: the directory holds what the in-memory merge makes; check with the
    cluster accepts it, its regions checked on the workers (the compiled pass), or in this
    process by the Python pass where a region has lines, saying why."""
    net, dom = UNBOUNDED[name]()
    merged = exactrelu.verify(net, dom, executor=client, progress=False, workers=1, cells=4)
    path = tmp_path / "x.parquet"
    exactrelu.verify(net, dom, executor=client, progress=False, workers=1, cells=4, save=path)
    a, b = merged.to_json(), Certificate.load(path).to_json()
    for j in (a, b):
        j.pop("stats")
        j["adjacency"].sort(key=lambda x: (x["i"], x["j"]))
    assert a == b
    with caplog.at_level("INFO", logger="exactrelu.check"):
        assert exactrelu.check(str(path), net, executor=client, progress=False).num_regions == \
            merged.num_regions
    if name.endswith("(lines)"):
        assert "checked in this process by the Python pass" in caplog.text
        assert "on an unbounded domain, a region with lines" in caplog.text
    else:
        assert "checked in this process" not in caplog.text


# --------------------------------------------------------------------------- check on the cluster
CHECK_CASES: dict[str, Any] = {
    "2d": lambda: (merging_net(), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [6, 6], 1), [(-1, 1)] * 3),
    # unbounded: the closure's state travels too
    "r2": UNBOUNDED["r2"],
    "r3": UNBOUNDED["r3"],
    "half-plane": UNBOUNDED["half-plane"],
}


@pytest.fixture(scope="module", params=sorted(CHECK_CASES))
def cells_cert(request, tmp_path_factory) -> tuple[str, nn.Module, Path]:
    """A certificate written cell by cell (``cells=4``) in shards of 5 regions."""
    net, dom = CHECK_CASES[request.param]()
    prog, domain = _program_and_domain(net, dom, None)
    path = tmp_path_factory.mktemp("cells") / "x.parquet"
    distributed_run(net, prog, domain, None, workers=1, cells=4, save=path, shard_rows=5)
    return request.param, net, path


def shard_of(path: Path, table: str, k: int) -> pa.Table:
    entry = json.loads((path / "manifest.json").read_text())["shards"][table][k]
    return pq.read_table(path / entry["file"])


def message(path: Path, net: nn.Module, **kw: Any) -> str:
    with pytest.raises(CertificateError) as info:
        exactrelu.check(Certificate.load(path), net, progress=False, **kw)
    return str(info.value)


def test_the_workers_check_the_regions(client, cells_cert, monkeypatch):
    """check(executor=client): the compiled pass accepts by itself, its region pass run on the
    workers (the client's is never called) as contiguous groups of region shards, two per
    worker; the same verdict as the local check."""
    name, net, path = cells_cert
    shards = json.loads((path / "manifest.json").read_text())["shards"]["regions"]
    assert len(shards) >= 6, name
    cut: list[list[tuple[int, int]]] = []
    real = _checkdask.groups

    def groups(rows: list[int], n: int) -> list[tuple[int, int]]:
        cut.append(real(rows, n))
        return cut[-1]

    def here(*args: Any) -> None:
        raise AssertionError("the client ran the region pass")

    local = exactrelu.check(Certificate.load(path), net, progress=False)
    monkeypatch.setattr(_checkdask, "groups", groups)
    monkeypatch.setattr(CHECKER, "_region_pass", here)
    assert compiled(Certificate.load(path), net, client) is None  # by the compiled pass itself
    (runs,) = cut
    assert len(runs) == 4 and runs[0][0] == 0 and runs[-1][1] == len(shards)
    assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(runs))
    remote = exactrelu.check(str(path), net, executor=client, progress=False)
    assert remote.num_regions == local.num_regions and remote.pieces == local.pieces
    # a certificate in memory is checked here (the workers cannot read it)
    monkeypatch.undo()
    cert = exactrelu.verify(net, CHECK_CASES[name]()[1], progress=False, workers=1)
    assert exactrelu.check(cert, net, executor=client, progress=False) is cert
    with pytest.raises(InvalidInputError, match=r"executor must be a dask\.distributed\.Client"):
        exactrelu.check(cert, net, executor=ThreadPoolExecutor(1))


def test_tampered_shards_give_the_local_message(client, cells_cert, tmp_path):
    """A witness moved onto a vertex in one region shard, a region dropped from one, an adjacent
    pair dropped: the workers (or the client's finish) stop the compiled pass, and the check
    raises the local check's message."""
    _, net, path = cells_cert
    cert = Certificate.load(path)
    k = 3
    t = shard_of(path, "regions", k)
    first = sum(shard_of(path, "regions", i).num_rows for i in range(k))
    # the witness on a vertex of its region
    p = Path(shutil.copytree(path, tmp_path / "witness"))
    rows = t.to_pylist()
    rows[1]["witness"] = [str(x) for x in cert.vertices[cert.regions[first + 1].vertices[0]]]
    rewrite(p, "regions", k, pa.Table.from_pylist(rows, schema=t.schema))
    reason = compiled(Certificate.load(p), net, client)
    assert reason is not None and "(a task)" in reason, reason
    assert message(p, net, executor=client) == message(p, net)
    # a region dropped
    p = Path(shutil.copytree(path, tmp_path / "region"))
    rewrite(p, "regions", k, pa.concat_tables([t.slice(0, 1), t.slice(2)]),
            header={"num_regions": cert.num_regions - 1})
    assert message(p, net, executor=client) == message(p, net)
    # an adjacent pair dropped
    p = Path(shutil.copytree(path, tmp_path / "pair"))
    listed = json.loads((p / "manifest.json").read_text())["shards"]["adjacency"]
    j = next(i for i, e in enumerate(listed) if e["rows"])
    rewrite(p, "adjacency", j, shard_of(p, "adjacency", j).slice(1))
    reason = compiled(Certificate.load(p), net, client)
    assert reason is not None and "(a task)" not in reason, reason
    assert message(p, net, executor=client) == message(p, net)


@pytest.mark.parametrize("name", ["half-plane", "r2", "r3"])  # on bounded domains volumes decide
def test_a_region_only_the_closure_misses_is_caught_after_the_join(client, name, tmp_path,
                                                                   monkeypatch):
    """On an unbounded domain, a region inside taken out (all its neighbours kept, the rest
    consistent) and the certificate saved in shards: every task accepts its part (none sees the
    gap: the regions across its facets may be in other parts), the client's finish finds a
    prefix across a facet in no part and the check raises the local message."""
    net, dom = CHECK_CASES[name]()
    whole = exactrelu.verify(net, dom, progress=False, workers=1)
    assert not whole.domain.is_bounded
    k = whole.num_regions // 2
    p = tmp_path / "missing.parquet"
    without_region(whole, k).save(p, shard_rows=5)
    assert len(json.loads((p / "manifest.json").read_text())["shards"]["regions"]) >= 6

    def here(*args: Any) -> None:
        raise AssertionError("the client ran the region pass")

    with monkeypatch.context() as m:
        m.setattr(CHECKER, "_region_pass", here)
        reason = compiled(Certificate.load(p), net, client)
    assert reason is not None and "completeness" in reason and "(a task)" not in reason, reason
    assert message(p, net, executor=client) == message(p, net)
    assert "completeness" in message(p, net)


class Garbled(distributed.Client):
    """A client whose region tasks return ``result`` (or, a callable, ``result`` of what the
    task returns; no cluster behind it: the other tasks run here, on the certificate at ``root``
    where it is given: a worker's view of another file system)."""

    def __init__(self, result: Any, root: Path | None = None) -> None:  # no connection
        self.result, self.root = result, root

    def scheduler_info(self, **kw: Any) -> dict[str, Any]:
        return {"workers": {"a": {}}}

    def scatter(self, data: Any, **kw: Any) -> Any:
        return data

    def submit(self, fn: Any, *args: Any, **kw: Any) -> Any:
        done: Any = concurrent.futures.Future()
        if self.root is not None:  # the workers see another file system
            args = (self.root, *args[1:])
        try:
            if fn is not _checkdask._task:
                done.set_result(fn(*args))
            elif callable(self.result):  # the futures it takes resolved, as Dask does
                args = tuple(a.result() if isinstance(a, concurrent.futures.Future) else a
                             for a in args)
                done.set_result(self.result(fn(*args)))
            else:
                done.set_result(self.result)
        except ClusterError as exc:  # raised by the task: by result(), as Dask does
            done.set_exception(exc)
        done.release = lambda: None
        return done

    def cancel(self, futures: Any, **kw: Any) -> None:
        pass

    def __del__(self) -> None:
        pass


def flipped(state: bytes, at: int) -> bytes:
    out = bytearray(state)
    out[at] ^= 1
    return bytes(out)


def test_a_task_result_that_is_no_state_or_no_directory_is_a_cluster_error(cells_cert):
    """A task's state that is not bytes, a truncated or corrupted one (its closure flag, its
    last byte: on an unbounded domain the prefixes across facets), or no certificate where the
    workers look: a ClusterError."""
    _, net, path = cells_cert
    for result, match in ((b"\0" * 64, "cannot import: malformed state: not a checker state"),
                          (3, "returned a int, not a checker's state"),
                          (lambda s: s[:len(s) // 2], "cannot import: malformed state"),
                          (lambda s: s[:-1], "cannot import: malformed state"),
                          (lambda s: flipped(s, 24), "cannot import: malformed state: another "
                                                     "chain, domain or vertex list"),
                          (lambda s: s + b"\0", "malformed state: bytes after its end")):
        with pytest.raises(ClusterError, match=match):
            exactrelu.check(str(path), net, executor=Garbled(result), progress=False)
    with pytest.raises(ClusterError, match=r"a worker finds no certificate at .*elsewhere"):
        exactrelu.check(str(path), net, executor=Garbled(None, path.parent / "elsewhere"),
                        progress=False)
