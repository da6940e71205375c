"""Certification cell by cell: cells of the first piecewise layer become tasks, each certified
by :func:`exactrelu.verify` (the compiled engine where it applies), and the results are merged
exactly into one certificate. The tasks run on a Dask cluster (``executor=client``) or one after
another in this process (``cells=`` with a sharded ``save``: :class:`_Local`); both go through
one pool interface (:class:`_Pool`) and one merge.

Why the merge is exact and needs no gluing: a region of the net lies inside one cell of the
arrangement of any set of its first piecewise layer's switching hyperplanes (the cell of its
signs there), and the net's regions inside a cell are exactly the regions of the net on that
cell taken as the domain. The cells are cut one switching function at a time in id order
(:func:`_cells`; the whole first layer where they cannot be taken apart: a first op that is not
``Linear`` on a flat input then a ReLU-like op). On an unbounded domain (all of R^d, an
unbounded :class:`~exactrelu.domain.Polyhedron`, a slice over either) a cell may be unbounded:
its task's domain is then a polyhedron, and its regions come with their rays and lines. So
the task certificates hold every region once, with its witness, facets, vertices, rays, lines,
map and volume as they are (volumes dropped on an unbounded domain: a bounded cell's task
computes them); what the merge does is bookkeeping and one exact question:

- region order: the cells in their canonical order, and each cell's regions in its task's
  order (the canonical order is depth first through the layer tree, comparing the first op's
  switching functions in id order, positive first: a cell of functions ``0 .. k`` is a
  contiguous run of it);
- constraint ids: a task's domain rows are its cell's facets, each standing for the whole
  domain's ids on that facet (rows of the whole domain, first-layer functions); a task's ids
  shift by the difference of the two domains' row counts;
- vertices: numbered by first appearance in region order, equal points (exact coordinates) once;
- adjacency: a task's own pairs, plus pairs of regions of different cells across a cell facet
  (opposite sides of one hyperplane), adjacent when their facets there share a (d-1)-dimensional
  part: exact extents along the hyperplane overlap with positive length (which decides in 2-D;
  a facet's extent is infinite along a coordinate where one of its rays or lines leaves, so
  unbounded facets with no vertex in common, or none at all, meet where they should), and above
  2-D an exact LP on the hyperplane (:func:`exactrelu._geometry.full_on_hyperplane` of both
  regions' rows, unbounded or not);
- pieces: components of adjacency with equal exact maps, numbered by their first region.

:func:`exactrelu.check` proves the merged certificate like any other (the tests compare it with a
local run in canonical form and check it). Two ways to merge:

- in memory (the default): tasks return their exact complexes (plain integers) to the client,
  which merges them in columns (:func:`merge`): the regions, vertices and pairs on the cells'
  boundaries made as objects to number the vertices seen twice and find the pairs across (as
  below), every cell's columns renumbered in array operations and joined into one columnar
  certificate, which the client holds;
- workers write (``save="x.parquet"``, a directory on a file system the workers and the client
  share): each task keeps its cell's certificate on its worker and returns a summary (counts,
  the vertices and facets on the cell's boundary with those regions' rows, rays, lines, maps
  and local pieces, and each local piece's first region); the client numbers the vertices (a
  vertex can be in two cells only on their common boundary) and the pieces (each cell's own,
  joined where equal maps meet across a cell facet), finds the pairs across cells, and has each
  worker write its cell's regions, new vertices and own pairs as shards in the whole
  certificate's numbering, from the cell's columns renumbered in array operations; the client
  writes the pairs across and the manifest. The client then holds what lies on the cells'
  boundaries, and one piece label per piece; a worker needs what one cell's certification
  needs. In this process a cell's complex waits in a pickle file under the output directory
  instead, so that memory holds one cell at a time.

Applies to an ``nn.Sequential`` whose first piecewise module comes before any branching, on
every domain kind (a box, a polytope, all of R^d, an unbounded polyhedron, a slice through
inputs over any of them); another net runs as one task.
"""

from __future__ import annotations

import bisect
import dataclasses
import logging
import pickle
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from . import _shards
from ._columns import (
    Adjacencies,
    Complex,
    Ragged,
    Rationals,
    Regions,
    StateTable,
    Vertices,
    fractions_at,
    points_at,
    ragged_item,
    row_at,
    state_table,
    views,
)
from ._deps import dask_workers, is_dask_client
from ._geometry import full_on_hyperplane, hyperplane_chart
from ._progress import _Silent, progress_bar
from ._shards import SHARD_ROWS
from .capture import Program, constraint_offsets
from .certificate import (
    Adjacency,
    Certificate,
    Region,
    RegionFacet,
    adjacency_json,
    canonical_hyperplane,
    header_json,
)
from .domain import Box, Domain, Polyhedron, Polytope, RealSpace, Slice
from .engines import build_certificate
from .engines.python import pieces_of
from .errors import InvalidInputError, RegionLimitError
from .rules import ElementwiseRule

__all__ = ["is_dask_client", "merge", "run"]

_log = logging.getLogger(__name__)

#: Tasks per Dask worker to aim for: enough for the cells' unequal sizes to even out, few
#: enough that the fixed cost of a task (about 0.2 CPU s at 2-256^3: the trace and the exact
#: engine started on a small cell) stays small: 2-256^3 on 2 workers took 14.2 to 16.5 CPU s in
#: 16 tasks against 18.7 to 19.7 in 34 (8 per worker), and less wall time.
TASKS_PER_WORKER = 4
_SHARED = (nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.ReLU6)  # one parameter set for all units


def _first_layer(net: Any, prog: Program) -> nn.Module | None:
    """The shortest prefix of an ``nn.Sequential`` ending with a piecewise op (``prog``, its
    capture, names its nodes by module path: the first piecewise node's top-level index), or
    None."""
    first = prog.piecewise_nodes()
    if not isinstance(net, nn.Sequential) or not first:
        return None
    top = first[0].name.split(".")[0]
    return net[:int(top) + 1] if top.isdigit() and int(top) < len(net) else None


def _thresholds(prefix: nn.Module, prog: Program) -> list[float] | None:
    """The thresholds of ``prefix``'s op (its first piecewise op, ``prog``'s) where its
    switching functions can be cut one at a time: ``Linear`` on a flat input then a ReLU-like
    op of one parameter set for all units; None for any other prefix (its cells are then those
    of the whole first layer)."""
    if not (isinstance(prefix, nn.Sequential) and len(prefix) == 2 and len(prog.input_shape) == 1
            and isinstance(prefix[0], nn.Linear) and type(prefix[1]) in _SHARED):
        return None
    nd = prog.piecewise_nodes()[0]
    return list(cast(ElementwiseRule, nd.rule).thresholds(nd.module))


def _switch(prefix: nn.Module, k: int, thresholds: list[float]) -> nn.Module:
    """Switching function ``k`` of ``prefix`` (``Linear`` then an op of these thresholds; its
    functions in id order: threshold ``t`` of unit ``u`` is function ``t * units + u``) as a
    net of one ReLU unit, whose one hyperplane is that function's: the unit's row, then (for a
    threshold ``t`` other than 0) ``x - t`` as a layer of its own, exact in float64."""
    lin = next(iter(prefix.children()))
    assert isinstance(lin, nn.Linear)  # by _thresholds
    t, u = divmod(k, lin.out_features)
    f64, at = torch.float64, lin.weight.device
    cut = nn.Linear(lin.in_features, 1, bias=lin.bias is not None, dtype=f64, device=at)
    layers: list[nn.Module] = [cut]
    with torch.no_grad():
        cut.weight.copy_(lin.weight[u:u + 1])
        if lin.bias is not None:
            cut.bias.copy_(lin.bias[u:u + 1])
        if thresholds[t] != 0:
            shift = nn.Linear(1, 1, dtype=f64, device=at)
            shift.weight.fill_(1.0)
            shift.bias.fill_(-thresholds[t])
            layers.append(shift)
    return nn.Sequential(*layers, nn.ReLU()).eval()


@dataclass
class _Cell:
    """A cell of the first layer's switching functions ``0 .. next - 1`` (each splits it or
    is constant on it): its facets' rows ``a . t <= b``, the whole domain's constraint ids
    each facet stands for, ``load``, the estimated work in it (see :func:`_cells`), and
    whether it is bounded (a cell of an unbounded domain may be either)."""

    A: list[tuple[Fraction, ...]]
    b: list[Fraction]
    ids: list[tuple[int, ...]]
    next: int
    load: float = 0.0
    bounded: bool = True


#: The most cells :func:`_cells` makes, per cell asked for.
MAX_CELLS_PER_WANTED = 4


def _cells(prefix: nn.Module, prog: Program, dom: Domain, n_dom: int, want: int,
           workers: int | None) -> list[_Cell]:
    """The cells of the tasks, in the canonical order: cells of the first layer's switching
    functions (one per unit for ReLU and LeakyReLU, two for Hardtanh: all units' first
    thresholds, then all their second ones) split one function at a time, in id order, the
    cell of most estimated work first, until no cell has more than ``1 / want`` of the total
    (or ``MAX_CELLS_PER_WANTED * want`` cells are made). A region of the net lies in one cell
    of any set of its first layer's switching hyperplanes, and a cell of functions
    ``0 .. k - 1`` split by function ``k`` gives its regions in the canonical order's runs (it
    compares the first layer's switching functions in id order, positive first), so the merge
    is the same whatever cells are taken. Each split is an exact :func:`exactrelu.verify` of
    the one function (:func:`_switch`) on the cell. The work of a cell is estimated in float,
    as ``(1 + L) ** d`` for ``L`` the functions still to come whose hyperplanes cross it
    (about the regions of the first layer in it): an estimate that only chooses which cell to
    split next, never what a cell or region is. It counts hyperplanes, never volumes, so it
    holds on unbounded cells too (their volume is infinite): a hyperplane crosses a cell when
    its values at the cell's vertices (its witness, for a cell with lines and no vertex) take
    both signs, or a ray of the cell makes it grow towards the sign its vertices lack, or a
    line of the cell is not parallel to it. A prefix whose functions cannot be taken apart
    gives the cells of its whole layer."""
    from .verify import verify

    def certify(units: nn.Module, cell: Domain) -> Certificate:
        return verify(units, cell, input_shape=prog.input_shape, workers=workers,
                      progress=False)

    thresholds = _thresholds(prefix, prog)
    if thresholds is None:
        whole = certify(prefix, dom)
        return [_Cell([f.a for f in r.facets], [f.b for f in r.facets],
                      [tuple(f.ids) for f in r.facets], 0, bounded=not (r.rays or r.lines))
                for r in whole.regions]
    lin = next(iter(prefix.children()))
    assert isinstance(lin, nn.Linear)
    W = lin.weight.detach().double().cpu().numpy()
    c = (lin.bias.detach().double().cpu().numpy() if lin.bias is not None
         else np.zeros(len(W)))
    if isinstance(dom, Slice):  # the units in slice coordinates
        U = np.array([[float(x) for x in u] for u in dom.directions])
        c = c + W @ np.array([float(x) for x in dom.origin])
        W = W @ U.T
    W, c = np.tile(W, (len(thresholds), 1)), np.concatenate([c - t for t in thresholds])
    n_units = len(W)  # switching functions

    def floats(vs: Sequence[Sequence[Fraction]]) -> np.ndarray:
        return np.array([[float(x) for x in v] for v in vs]).reshape(len(vs), dom.dim)

    def load(cell: _Cell, r: Region, part: Certificate) -> float:
        points = [part.vertices[v] for v in r.vertices] or [r.witness]
        rest = slice(cell.next, None)
        values = W[rest] @ floats(points).T + c[rest, None]
        slopes = W[rest] @ floats(r.rays).T  # how each hyperplane's value grows along a ray
        along = np.abs(W[rest] @ floats(r.lines).T)
        below = (values.min(axis=1) < 0) | (slopes.min(axis=1, initial=0) < 0)
        above = (values.max(axis=1) > 0) | (slopes.max(axis=1, initial=0) > 0)
        crossing = int(np.sum((below & above) | (along.max(axis=1, initial=0) > 0)))
        return float((1 + crossing) ** dom.dim)

    # the domain; its estimate comes with its first split
    root = _Cell([], [], [(i,) for i in range(n_dom)], 0, bounded=dom.is_bounded)
    cells = [root]
    while len(cells) < max(want, 1) * MAX_CELLS_PER_WANTED:
        open_ = [k for k, x in enumerate(cells) if x.next < n_units]
        if not open_:
            break
        total = sum(x.load for x in cells)
        k = max(open_, key=lambda k: cells[k].load)
        if cells[k].load and cells[k].load * want <= total:
            break
        cell = cells[k]
        part = certify(_switch(prefix, cell.next, thresholds),
                       dom if cell is root else _cell_domain(dom, cell))
        m = len(cell.ids)
        kids = []
        for r in part.regions:
            ids = [tuple(sorted({x for i in f.ids
                                 for x in (cell.ids[i] if i < m else (n_dom + cell.next,))}))
                   for f in r.facets]
            kid = _Cell([f.a for f in r.facets], [f.b for f in r.facets], ids, cell.next + 1,
                        bounded=not (r.rays or r.lines))
            kid.load = load(kid, r, part)
            kids.append(kid)
        cells[k:k + 1] = kids
    return cells


def _cell_domain(dom: Domain, cell: _Cell) -> Domain:
    """The cell as a domain: a polytope, or where it is unbounded a polyhedron (a slice through
    either for a slice); a cell without facets (all of R^d, no function splitting it) is the
    domain."""
    if not cell.A:
        return dom
    region = Polytope(cell.A, cell.b) if cell.bounded else Polyhedron(cell.A, cell.b)
    if isinstance(dom, Slice):
        return Slice._from_exact(dom.input_shape, dom.origin, dom.directions, region)
    return region


def run(net: nn.Module | Program, prog: Program, dom: Domain, client: Any, *,
        workers: int | None = None, max_regions: int | None = None,
        engine: str = "auto", progress: bool = False, save: str | Path | None = None,
        shard_rows: int = SHARD_ROWS, cells: int | None = None) -> Certificate:
    """What :func:`exactrelu.verify` does with ``executor=client`` (a Dask client) or with
    ``cells=``: the cells of the first piecewise layer as tasks (``workers``: threads or
    processes per task, ``engine`` for each), merged exactly (see the module docstring).
    ``client`` None: the tasks run one after another in this process. ``cells``: how many cells
    to aim for (default :data:`TASKS_PER_WORKER` per Dask worker). ``max_regions`` bounds each
    task and the total: the run stops as soon as the tasks done hold more. ``progress``: a bar
    over the tasks done (on a terminal). ``save``: a directory ending in ``.parquet`` that the
    workers write the sharded certificate into (a file system every worker and the client see),
    the client merging only what lies on the cells' boundaries; the certificate returned is that
    directory, loaded lazily. Otherwise the client merges the whole certificate in memory."""
    t0 = time.perf_counter()
    if not isinstance(dom, (Box, Polytope, Polyhedron, RealSpace, Slice)):
        where = "a cluster run" if client is not None else "cells="
        raise InvalidInputError(f"{where} needs a box, polytope, polyhedron, all of R^d or a "
                                f"slice; got {dom!r} (run it as one: verify(net, domain))")
    shape = prog.input_shape
    prefix = _first_layer(net, prog)
    n_dom = constraint_offsets(prog, dom)[0]
    sharded = save is not None
    pool: _Pool = _Local(prog, workers, max_regions, engine) if client is None else \
        _Dask(client, prog, workers, max_regions, engine)
    want = cells if cells is not None else TASKS_PER_WORKER * pool.size()
    if prefix is None:
        _log.info("one task: not an nn.Sequential whose first piecewise op can be cut off")
    made = [] if prefix is None else _cells(prefix, prog, dom, n_dom, want, workers)
    if len(made) <= 1:
        tasks: list[Domain] = [dom]
        ids = [_CellIds([(i,) for i in range(n_dom)], n_dom)]
    else:
        tasks = [_cell_domain(dom, c) for c in made]
        ids = [_CellIds(c.ids, n_dom) for c in made]
    root = _shards.prepare(save) if save is not None else None
    parts: list[Any] = [None] * len(tasks)  # certificates, or summaries when workers save
    names: set[str] = set()
    seconds = 0.0
    found = 0
    with pool, progress_bar(len(tasks), "cells", progress) as bar:
        for k, out in pool.certify(tasks, ids, sharded, root):
            if sharded:
                part = parts[k] = out
                name, s, n = part.name, part.seconds, part.regions
            else:
                name, cx, s = out
                part = parts[k] = build_certificate(prog, tasks[k], cx)
                n = part.num_regions
            names.add(name)
            seconds += s
            found += n
            bar.update(1)
            if max_regions is not None and found > max_regions:
                pool.cancel()
                raise RegionLimitError(f"more than max_regions={max_regions:,} regions: the "
                                       f"tasks done hold {found:,}", found)
        stats: dict[str, Any] = {"engine": f"{pool.name} ({', '.join(sorted(names))})",
                                 "tasks": len(parts),
                                 "seconds": {"total": 0.0, "tasks": seconds}}
        if root is not None:
            _write(pool, parts, ids, prog, dom, root, shard_rows, stats, progress, t0)
            return Certificate.load(root)
    cert = parts[0] if len(parts) == 1 else merge(dom, shape, ids, parts)
    stats["seconds"]["total"] = time.perf_counter() - t0
    cert.stats = stats
    return cert


class _Pool:
    """Where the cells' tasks run: :meth:`certify` runs them (a cell certified, and with
    ``sharded`` its summary made, the cell's certificate kept where the task ran) and yields
    ``(cell, result)`` as they finish; :meth:`write` has each kept cell write its shards
    (:func:`_write_cell`'s arguments after the certificate, per cell) and yields their
    entries. A context manager: leaving it drops what is kept."""

    name = ""

    def size(self) -> int:
        """How many tasks run at once."""
        raise NotImplementedError

    def certify(self, tasks: list[Domain], ids: list[_CellIds], sharded: bool,
                root: Path | None) -> Iterator[tuple[int, Any]]:
        raise NotImplementedError

    def write(self, args: list[tuple[Any, ...]]) -> Iterator[dict[str, list[dict[str, Any]]]]:
        raise NotImplementedError

    def cancel(self) -> None:
        """Stop the tasks not done."""

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cancel()


class _Dask(_Pool):
    """Tasks on a Dask cluster; a cell's certificate stays on its worker until it is written.
    The workers get the program captured here (the user's net as capture took it, its refusal
    rules applied in this process), scattered once: a task does not capture again, and a
    worker's exact caches (keyed by the program's modules) last for every task it runs."""

    name = "dask"

    def __init__(self, client: Any, prog: Program, workers: int | None,
                 max_regions: int | None, engine: str) -> None:
        self.client, self.prog = client, prog
        self.options = (workers, max_regions, engine)
        self.futures: list[Any] = []

    def size(self) -> int:
        return dask_workers(self.client)

    def certify(self, tasks: list[Domain], ids: list[_CellIds], sharded: bool,
                root: Path | None) -> Iterator[tuple[int, Any]]:
        from distributed import as_completed

        client = self.client
        # a key of its own (hash=False): a key made from the net's contents would be shared
        # with a run just before on the same net, whose release can reach the scheduler after
        # this scatter and drop the data under this run's tasks ("lost dependencies")
        prog_ref = client.scatter(self.prog, broadcast=True, hash=False)
        self.futures = [client.submit(_task, prog_ref, cell, *self.options, sharded,
                                      pure=False) for cell in tasks]
        outs = [client.submit(_summary, f, i, pure=False)
                for f, i in zip(self.futures, ids, strict=True)] if sharded else self.futures
        order = {f.key: k for k, f in enumerate(outs)}
        for future in as_completed(outs):
            yield order[future.key], future.result()

    def write(self, args: list[tuple[Any, ...]]) -> Iterator[dict[str, list[dict[str, Any]]]]:
        written = [self.client.submit(_write_cell, f, *a, pure=False)
                   for f, a in zip(self.futures, args, strict=True)]
        yield from self.client.gather(written)

    def cancel(self) -> None:
        if self.futures:
            self.client.cancel(self.futures)
            self.futures = []


class _Local(_Pool):
    """Tasks one after another in this process (each on ``workers`` threads or processes). With
    ``sharded`` a cell's certificate is its complex (:class:`~exactrelu._columns.Complex`)
    pickled to a file under the output directory until it is written, so that the process
    holds one cell's certification at a time, plus the summaries."""

    name = "cells"

    def __init__(self, prog: Program, workers: int | None, max_regions: int | None,
                 engine: str) -> None:
        self.prog = prog
        self.options = (workers, max_regions, engine)
        self.spill: tempfile.TemporaryDirectory[str] | None = None
        self.tasks: list[Domain] = []

    def size(self) -> int:
        return 1

    def _file(self, k: int) -> Path:
        assert self.spill is not None
        return Path(self.spill.name) / f"cell-{k:05d}.pickle"

    def certify(self, tasks: list[Domain], ids: list[_CellIds], sharded: bool,
                root: Path | None) -> Iterator[tuple[int, Any]]:
        self.tasks = tasks
        if sharded:
            assert root is not None
            root.mkdir(parents=True, exist_ok=True)
            self.spill = tempfile.TemporaryDirectory(prefix=".cells-", dir=root)
        for k, cell in enumerate(tasks):
            name, cx, s = _task(self.prog, cell, *self.options, False)
            if not sharded:
                yield k, (name, cx, s)
                continue
            part = build_certificate(self.prog, cell, cx)
            summary = _summary((name, part, s), ids[k])
            del part
            with self._file(k).open("wb") as fh:
                pickle.dump(cx, fh, protocol=pickle.HIGHEST_PROTOCOL)
            del cx
            yield k, summary

    def write(self, args: list[tuple[Any, ...]]) -> Iterator[dict[str, list[dict[str, Any]]]]:
        for k, a in enumerate(args):
            with self._file(k).open("rb") as fh:
                cx = pickle.load(fh)  # a file this run wrote (in its own output directory)
            self._file(k).unlink()
            part = build_certificate(self.prog, self.tasks[k], cx)
            del cx
            yield _write_cell(("", part, 0.0), *a)

    def cancel(self) -> None:
        if self.spill is not None:
            self.spill.cleanup()
            self.spill = None


def _task(prog: Program, dom: Domain, workers: int | None, max_regions: int | None,
          engine: str, keep: bool) -> tuple[str, Any, float]:
    """One cell on a worker: what :func:`exactrelu.verify` does up to the exact complex, which
    travels back as plain integers (the certificate's objects would pickle each Fraction as a
    decimal string) for the client to build the certificate; ``keep``: the certificate built
    here instead, to stay on the worker (which writes its shards)."""
    from .verify import _program_and_domain, certify_complex

    t0 = time.perf_counter()
    prog, dom = _program_and_domain(prog, dom, None)  # the shape: the program's
    name, cx, _, _ = certify_complex(prog, dom, engine, None, workers, False, max_regions, None,
                                     t0)
    out = build_certificate(prog, dom, cx) if keep else cx
    return name, out, time.perf_counter() - t0


# --------------------------------------------------------------------------------- merging
class _CellIds:
    """A task's constraint ids as the whole domain's: the task's domain rows are its cell's
    facets (``own[i]``: the ids the cells' certificate lists on facet ``i``), its units' ids
    shift by the difference of the two domains' row counts
    (``n_dom``, the whole domain's rows). A facet is on the cell's boundary when one of its ids
    is a cell facet that is not a row of the whole domain."""

    def __init__(self, own: list[tuple[int, ...]], n_dom: int) -> None:
        self.own, self.m, self.shift = own, len(own), n_dom - len(own)
        self.cut = [any(i >= n_dom for i in ids) for ids in own]

    def __call__(self, ids: Sequence[int]) -> tuple[int, ...]:
        out: set[int] = set()
        for i in ids:
            out.update(self.own[i] if i < self.m else (i + self.shift,))
        return tuple(sorted(out))

    def ragged(self, r: Ragged) -> Ragged:
        """Lists of a task's ids (a :class:`~exactrelu._columns.Ragged` of int64 arrays) each
        as :meth:`__call__` gives it: every id replaced by its ids in the whole domain, then
        sorted without repeats, in array operations."""
        start, flat = r.start, r.flat
        n = len(start) - 1
        if not len(flat):
            return Ragged(start, flat)
        table = [self.own[v] if v < self.m else (v + self.shift,)
                 for v in range(int(flat.max()) + 1)]
        lens = np.array([len(t) for t in table], dtype=np.int64)
        at = np.concatenate([[0], np.cumsum(lens)])
        values = np.fromiter((i for t in table for i in t), np.int64, int(at[-1]))
        counts = lens[flat]
        seg = np.repeat(np.repeat(np.arange(n), np.diff(start)), counts)
        ends = np.cumsum(counts)
        pos = np.repeat(at[flat], counts) + np.arange(int(ends[-1])) - np.repeat(ends - counts,
                                                                              counts)
        out = values[pos]
        order = np.lexsort((out, seg))
        seg, out = seg[order], out[order]
        keep = np.ones(len(out), dtype=bool)
        keep[1:] = (seg[1:] != seg[:-1]) | (out[1:] != out[:-1])
        seg, out = seg[keep], out[keep]
        return Ragged(np.concatenate([[0], np.cumsum(np.bincount(seg, minlength=n))]), out)

    def on_boundary(self, ids: Sequence[int]) -> bool:
        return any(i < self.m and self.cut[i] for i in ids)

    def offsets(self, k: int, part_offsets: Sequence[int]) -> list[int]:
        if part_offsets[0] != self.m:
            raise InvalidInputError(f"task {k}: its domain has {part_offsets[0]} rows, its cell "
                                    f"{self.m} facets")
        return [o + self.shift for o in part_offsets]


def _renumbered(olds: list[Region], pairs: list[Adjacency], ids: _CellIds, first: int,
                vertex: Sequence[int], volumes: bool) -> tuple[list[Region], list[Adjacency]]:
    """A task's regions and adjacent pairs in the whole certificate's numbering: regions from
    ``first``, vertex ``v`` as ``vertex[v]``, constraint ids through ``ids``; no volumes
    unless ``volumes`` (a bounded cell of an unbounded domain has them, the domain's
    certificate not)."""
    regions = []
    for i, r in enumerate(olds):
        facets = [RegionFacet(f.a, f.b, ids(f.ids), tuple(vertex[v] for v in f.vertices), f.rays)
                  for f in r.facets]
        regions.append(Region(first + i, r.pattern, r.witness, facets,
                              [vertex[v] for v in r.vertices], r.output,
                              r.volume if volumes else None, r.repaired,
                              r.rays, r.lines))
    return regions, [Adjacency(a.i + first, a.j + first, a.a, a.b, ids(a.ids)) for a in pairs]


def _same_offsets(k: int, shifted: list[int], offsets: list[int] | None) -> list[int]:
    if offsets is not None and shifted != offsets:
        raise InvalidInputError(f"task {k}: constraint offsets {shifted}, others {offsets}")
    return shifted


def merge(dom: Domain, input_shape: tuple[int, ...], cells: Sequence[_CellIds],
          parts: Sequence[Certificate]) -> Certificate:
    """The certificate of ``dom`` from one certificate per cell of its first layer's units
    (``parts[k]`` on the polytope of the cell whose ids ``cells[k]`` maps), in cell order: a
    columnar certificate where every part is one, unchanged (:func:`_columnar`): the cells'
    columns renumbered and joined in array operations, only what lies on the cells' boundaries
    made as objects (:func:`_summary`, :func:`_numbering`, as when workers write shards);
    otherwise the same certificate made of objects (:func:`_merge_objects`)."""
    if not all(_columnar(p) for p in parts):
        return _merge_objects(dom, input_shape, cells, parts)
    num = _numbering([_summary(("", p, 0.0), i) for p, i in zip(parts, cells, strict=True)],
                     cells, dom.dim)
    cx = _joined([_renumbered_complex(_complex(p), i, *num.args(k), dom.is_bounded)
                  for k, (p, i) in enumerate(zip(parts, cells, strict=True))],
                 num.across, dom.dim)
    regions, vertices, adjacency = views(cx)
    p = parts[0]
    return Certificate(dom, input_shape, p.output_shape, p.digest, num.offsets, regions,
                       vertices, adjacency, cx.pieces.tolist(), list(p.notes), p.version, {})


def _columnar(part: Certificate) -> bool:
    """Is ``part`` a columnar certificate whose sequences and pieces are its columns unchanged
    (views of one :class:`~exactrelu._columns.Complex`, none assigned or changed in place)?"""
    regions, vertices, adjacency = part.regions, part.vertices, part.adjacency
    return (type(regions) is Regions and type(vertices) is Vertices
            and type(adjacency) is Adjacencies and vertices.cx is regions.cx
            and adjacency.cx is regions.cx and regions.first == 0 and regions.pristine()
            and vertices.pristine() and adjacency.pristine()
            and list(part.pieces) == regions.cx.pieces.tolist())


def _joined_ragged(parts: Sequence[Ragged], counts: Sequence[int]) -> Ragged:
    """Ragged lists one after another (``counts[k]`` lists in ``parts[k]``; an empty ``start``
    stands for that many empty lists)."""
    starts, flats, at = [np.zeros(1, np.int64)], [], 0
    for r, n in zip(parts, counts, strict=True):
        start = np.asarray(r.start, dtype=np.int64)
        if not len(start):
            start = np.zeros(n + 1, np.int64)
        flat = np.asarray(r.flat, dtype=np.int64)[int(start[0]):int(start[-1])]
        starts.append(start[1:] - start[0] + at)
        flats.append(flat)
        at += len(flat)
    return Ragged(np.concatenate(starts), np.concatenate(flats) if flats else
                  np.zeros(0, np.int64))


def _taken(r: Ragged, order: np.ndarray) -> Ragged:
    """The lists of ``r`` in ``order``."""
    start = np.asarray(r.start, dtype=np.int64)
    lens = np.diff(start)[order]
    out = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
    pos = np.repeat(start[:-1][order] - out[:-1], lens) + np.arange(int(out[-1]))
    return Ragged(out, np.asarray(r.flat, dtype=np.int64)[pos])


def _joined_rationals(parts: Sequence[Rationals]) -> Rationals:
    return Rationals([x for r in parts for x in r.num], [x for r in parts for x in r.den])


def _joined_states(tables: Sequence[StateTable], ids: Sequence[np.ndarray]
                   ) -> tuple[StateTable, np.ndarray]:
    """One op's state tables of the parts (region ``i`` of part ``k`` in state row
    ``ids[k][i]`` of ``tables[k]``) as one table of distinct rows, in order of first
    appearance over the tables, and the regions' rows in it (state lists compared as the
    exact integers they are)."""
    n = tables[0].n
    if all(t.bits for t in tables):
        data = np.concatenate([t.data for t in tables])
    else:
        data = np.concatenate([t.rows(np.arange(len(t))) for t in tables])
    shift = np.cumsum([0, *(len(t) for t in tables)])[:-1]
    every = np.concatenate([np.asarray(i, dtype=np.int64) + s
                            for i, s in zip(ids, shift, strict=True)])
    if not len(data) or not data.shape[1]:  # no states: nothing to tell apart
        return StateTable(data, n, all(t.bits for t in tables)), every
    flat = np.ascontiguousarray(data)
    keys = flat.view(np.dtype((np.void, flat.dtype.itemsize * flat.shape[1]))).reshape(-1)
    _, at, inverse = np.unique(keys, return_index=True, return_inverse=True)
    order = np.argsort(at)  # the distinct rows by first appearance
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(len(order))
    rows = data[at[order]]
    table = StateTable(rows, n, True) if all(t.bits for t in tables) else state_table(rows)
    return table, rank[inverse.reshape(-1)][every]


def _joined(parts: Sequence[Complex], across: Sequence[Adjacency], d: int) -> Complex:
    """The renumbered complexes of the cells (:func:`_renumbered_complex`, in cell order) as
    one, with the adjacent pairs ``across`` cells; its pairs sorted by their regions."""
    regions = [cx.num_regions for cx in parts]
    facets = [len(cx.facet_row) for cx in parts]
    m = d + 1
    states, state_ids = [], []
    for j in range(len(parts[0].states)):
        t, i = _joined_states([cx.states[j] for cx in parts], [cx.state_ids[j] for cx in parts])
        states.append(t)
        state_ids.append(i)

    def starts(counts: list[int]) -> list[int]:
        return np.cumsum([0, *counts])[:-1].tolist()

    row_shift = starts([len(cx.rows.num) // m for cx in parts])
    plane_shift = starts([len(cx.planes.num) // m for cx in parts])
    facet_start = np.concatenate(
        [np.zeros(1, np.int64)] + [cx.facet_start[1:] - cx.facet_start[0] + s
                                   for cx, s in zip(parts, starts(facets), strict=True)])
    pairs = [len(cx.adj_i) for cx in parts]
    adj_i = np.concatenate([*(cx.adj_i for cx in parts), [a.i for a in across]]).astype(np.int64)
    adj_j = np.concatenate([*(cx.adj_j for cx in parts), [a.j for a in across]]).astype(np.int64)
    n_planes = sum(len(cx.planes.num) // m for cx in parts)
    adj_plane = np.concatenate([*(cx.adj_plane + s for cx, s in zip(parts, plane_shift,
                                                                    strict=True)),
                                n_planes + np.arange(len(across))]).astype(np.int64)
    across_ids = Ragged(np.cumsum([0, *(len(a.ids) for a in across)]),
                        [i for a in across for i in a.ids])
    adj_ids = _joined_ragged([*(cx.adj_ids for cx in parts), across_ids], [*pairs, len(across)])
    across_planes = [Fraction(x) for a in across for x in (*a.a, a.b)]
    planes = _joined_rationals([*(cx.planes for cx in parts),
                                Rationals([x.numerator for x in across_planes],
                                          [x.denominator for x in across_planes])])
    order = np.lexsort((adj_j, adj_i))
    facet_rays = (_joined_ragged([cx.facet_rays for cx in parts], facets)
                  if any(len(cx.facet_rays.flat) for cx in parts) else Ragged([], []))

    def points(get: Callable[[Complex], tuple[Any, Rationals] | None]
               ) -> tuple[Any, Rationals] | None:
        """Rays or lines (``get``): each region's run of points, one after another."""
        got = [get(cx) for cx in parts]
        if all(g is None for g in got):
            return None
        start, pts, at = [np.zeros(1, np.int64)], [], 0
        for g, n in zip(got, regions, strict=True):
            if g is None:
                start.append(np.full(n, at, np.int64))
                continue
            s = np.asarray(g[0], dtype=np.int64)
            lo, hi = int(s[0]), int(s[-1])
            start.append(s[1:] - lo + at)
            pts.append(Rationals(g[1].num[lo * d:hi * d], g[1].den[lo * d:hi * d]))
            at += hi - lo
        return np.concatenate(start), _joined_rationals(pts)

    return Complex(
        d=d, n_out=parts[0].n_out, states=states, state_ids=state_ids,
        witness=_joined_rationals([cx.witness for cx in parts]),
        vertices=_joined_rationals([cx.vertices for cx in parts]),
        region_vertices=_joined_ragged([cx.region_vertices for cx in parts], regions),
        rows=_joined_rationals([cx.rows for cx in parts]), facet_start=facet_start,
        facet_row=np.concatenate([cx.facet_row + s for cx, s in zip(parts, row_shift,
                                                                   strict=True)]),
        facet_ids=_joined_ragged([cx.facet_ids for cx in parts], facets),
        facet_vertices=_joined_ragged([cx.facet_vertices for cx in parts], facets),
        outputs=_joined_rationals([cx.outputs for cx in parts]),
        volume=_joined_rationals([cx.volume for cx in parts]),
        repaired=np.concatenate([cx.repaired for cx in parts]),
        adj_i=adj_i[order], adj_j=adj_j[order], adj_plane=adj_plane[order],
        adj_ids=_taken(adj_ids, order), planes=planes,
        pieces=np.concatenate([cx.pieces for cx in parts]), facet_rays=facet_rays,
        rays=points(lambda cx: cx.rays), lines=points(lambda cx: cx.lines))


def _merge_objects(dom: Domain, input_shape: tuple[int, ...], cells: Sequence[_CellIds],
                   parts: Sequence[Certificate]) -> Certificate:
    """:func:`merge` made of objects: every part's regions, facets and pairs renumbered as
    objects (:func:`_renumbered`), the vertices numbered through one exact dictionary of all
    of them, the pieces found again from all pairs; for parts that are not columnar (or were
    changed)."""
    d = dom.dim
    regions: list[Region] = []
    vertices: list[tuple[Fraction, ...]] = []
    number: dict[tuple[Fraction, ...], int] = {}
    adjacency: list[Adjacency] = []
    boundary: dict[tuple, list[tuple[int, int, RegionFacet]]] = {}  # hyperplane -> (side, i, f)
    offsets: list[int] | None = None
    for k, (ids, part) in enumerate(zip(cells, parts, strict=True)):
        offsets = _same_offsets(k, ids.offsets(k, part.constraint_offsets), offsets)
        local: list[int] = []
        for v in _shards.items(part.vertices, 0, part.num_vertices):  # each view made once
            if v not in number:
                number[v] = len(vertices)
                vertices.append(v)
            local.append(number[v])
        olds = _shards.items(part.regions, 0, part.num_regions)
        mine, pairs = _renumbered(olds, _shards.items(part.adjacency, 0, len(part.adjacency)),
                                  ids, len(regions), local, dom.is_bounded)
        for r, g in zip(olds, mine, strict=True):
            for f, h in zip(r.facets, g.facets, strict=True):
                if ids.on_boundary(f.ids):
                    key, side = canonical_hyperplane(f.a, f.b)
                    boundary.setdefault(key, []).append((side, g.index, h))
        regions.extend(mine)
        adjacency.extend(pairs)
    assert offsets is not None
    for key, on_it in boundary.items():
        adjacency.extend(_across(key, on_it, lambda i: _rows(regions[i]), vertices.__getitem__,
                                 lambda i: (regions[i].rays, regions[i].lines), d))
    adjacency.sort(key=lambda a: (a.i, a.j))
    return Certificate(dom, input_shape, parts[0].output_shape, parts[0].digest,
                       offsets, regions, vertices, adjacency, pieces_of(regions, adjacency),
                       list(parts[0].notes), parts[0].version, {})


def _rows(r: Region) -> tuple[list[tuple[Fraction, ...]], list[Fraction]]:
    return [f.a for f in r.facets], [f.b for f in r.facets]


def _extent(points: list[tuple[Fraction, ...]], rays: list[tuple[Fraction, ...]],
            lines: list[tuple[Fraction, ...]], a: int) -> tuple[Any, Any]:
    """The exact extent ``(lo, hi)`` along coordinate ``a`` of the face with these vertices,
    rays and lines (``-inf``, ``inf`` where a direction leaves it; a face with lines and no
    vertex whose lines all keep ``a`` fixed: ``(-inf, inf)``, an extent too wide, for the LP
    that follows above 2-D to decide; in 2-D a facet without a vertex is a whole line, which
    no coordinate but its chart keeps fixed)."""
    inf = float("inf")
    if any(x[a] for x in lines) or not points:
        return -inf, inf
    lo: Any = min(p[a] for p in points)
    hi: Any = max(p[a] for p in points)
    if any(x[a] < 0 for x in rays):
        lo = -inf
    if any(x[a] > 0 for x in rays):
        hi = inf
    return lo, hi


def _across(key: tuple, facets: list[tuple[int, int, RegionFacet]],
            rows: Callable[[int], tuple[list, list]],
            point: Callable[[int], tuple[Fraction, ...]],
            recession: Callable[[int], tuple[list, list]], d: int) -> list[Adjacency]:
    """The adjacent pairs across the hyperplane ``key`` among regions with a facet on it
    (``(side, region, facet)``, side +1 or -1; ``point(v)``: vertex ``v``, ``rows(i)``: region
    ``i``'s facet rows, ``recession(i)``: its rays and lines): pairs of opposite sides whose
    facets share a (d-1)-dimensional part. The facets' exact extents along the hyperplane's
    coordinates (all but its chart; infinite where a ray or line of the facet leaves along
    one) must overlap with positive length; a sweep along the first finds those pairs, which
    decides in 2-D; above, an exact LP on the hyperplane decides (it takes unbounded sets)."""
    normal, offset = key
    if d == 1:
        axes: list[int] = []
    else:
        chart = hyperplane_chart(normal)
        axes = [i for i in range(d) if i != chart]
    boxes: list[Any] = []
    for side, i, f in facets:
        pts = [point(v) for v in f.vertices]
        rays, lines = recession(i)
        mine = [rays[k] for k in f.rays]
        boxes.append((side, i, f, [_extent(pts, mine, lines, a) for a in axes]))
    out = []
    pairs: list[tuple[Any, Any]]
    if d == 1:
        pairs = [(x, y) for x in boxes for y in boxes if x[0] > 0 > y[0]]  # one point
    else:
        boxes.sort(key=lambda x: x[3][0][0])
        pairs = []
        active: list[Any] = []
        for x in boxes:
            lo = x[3][0][0]
            active = [y for y in active if y[3][0][1] > lo]
            pairs.extend((x, y) if x[0] > 0 else (y, x) for y in active if y[0] != x[0])
            active.append(x)
    for (_, i, f, bi), (_, j, g, bj) in pairs:
        if not all(max(p[0], q[0]) < min(p[1], q[1]) for p, q in zip(bi, bj, strict=True)):
            continue
        if d >= 3:
            (ai, bi_), (aj, bj_) = rows(i), rows(j)
            if not full_on_hyperplane(ai + aj, bi_ + bj_, normal, offset):
                continue
        out.append(Adjacency(min(i, j), max(i, j), normal, offset,
                             tuple(sorted(set(f.ids) | set(g.ids)))))
    return out


# ------------------------------------------------------------------- workers write shards
@dataclass
class _Summary:
    """What the client needs of a cell whose worker writes its shards: counts, the fields of
    the header, each local piece's first region, and what lies on the cell's boundary (vertices
    with their local numbers, facets with the whole domain's ids and local vertex numbers, and
    those regions' facet rows, rays and lines, maps and local pieces)."""

    name: str
    seconds: float
    regions: int
    vertices: int
    offsets: list[int]
    output_shape: tuple[int, ...]
    digest: str
    notes: list[str]
    version: str
    piece_first: list[int]
    points: list[tuple[int, tuple[Fraction, ...]]]
    facets: list[tuple[tuple, int, int, RegionFacet]]  # (hyperplane, side, local region, facet)
    rows: dict[int, tuple[list, list]]  # facet rows ``a``, ``b`` (empty below 3-D)
    recession: dict[int, tuple[list, list]]  # rays and lines
    maps: dict[int, tuple]  # numerators and denominators (lowest terms): equal maps, equal
    pieces: dict[int, int]


def _complex(part: Certificate) -> Complex:
    """The columns of a task's certificate (an engine's, unchanged)."""
    regions = part.regions
    if not isinstance(regions, Regions):
        raise InvalidInputError(f"a task's certificate is not columnar ({type(regions).__name__})")
    return regions.cx


def _boundary_facets(cx: Complex, ids: _CellIds) -> np.ndarray:
    """The facets of a task's complex on its cell's boundary (an id that is a cut), in order."""
    cut = np.flatnonzero(np.asarray(ids.cut, dtype=bool))
    start, flat = cx.facet_ids
    if not len(cut) or not len(flat):
        return np.zeros(0, np.int64)
    facet_of = np.repeat(np.arange(len(start) - 1), np.diff(start))
    return np.unique(facet_of[np.isin(flat, cut)])


def _summary(done: tuple[str, Certificate, float], ids: _CellIds) -> _Summary:
    """The :class:`_Summary` of a cell's certificate (on the worker that keeps it, or in the
    client merging in memory), read from its columns (those of an engine, unchanged): only the
    facets on the cell's boundary and their regions' maps, rays and lines (and above 2-D, where
    :func:`_across` asks for them, facet rows) made as objects, the same objects its views
    give. The vertices on the boundary are those of the facets on it: a vertex on a cut's
    hyperplane lies in the cell's facet there, which the regions' facets on it cover."""
    name, part, seconds = done
    cx = _complex(part)
    d = cx.d
    facets: list[tuple[tuple, int, int, RegionFacet]] = []
    rows: dict[int, tuple[list, list]] = {}
    recession: dict[int, tuple[list, list]] = {}
    maps: dict[int, tuple] = {}
    pieces: dict[int, int] = {}
    on_cut = _boundary_facets(cx, ids)
    region_of = np.searchsorted(cx.facet_start, on_cut, side="right") - 1
    planes: dict[int, tuple[tuple[Fraction, ...], Fraction, tuple, int]] = {}  # by row

    def row(k: int) -> tuple[tuple[Fraction, ...], Fraction, tuple, int]:
        """Row ``k`` as ``a, b`` and its hyperplane's canonical key and side."""
        hit = planes.get(k)
        if hit is None:
            a, b = row_at(cx, k)
            hit = planes[k] = (a, b, *canonical_hyperplane(a, b))
        return hit

    has_rays = len(cx.facet_rays.start) > 0
    m = cx.n_out * (d + 1)
    for f, i in zip(on_cut.tolist(), region_of.tolist(), strict=True):
        a, b, key, side = row(int(cx.facet_row[f]))
        rays = tuple(ragged_item(cx.facet_rays, f)) if has_rays else ()
        facets.append((key, side, i, RegionFacet(a, b, ids(ragged_item(cx.facet_ids, f)),
                                                 tuple(ragged_item(cx.facet_vertices, f)),
                                                 rays)))
        if i in maps:
            continue
        # the exact map as its rationals' numerators and denominators in lowest terms (equal
        # exactly when the maps are)
        maps[i] = (tuple(cx.outputs.num[i * m:i * m + m]), tuple(cx.outputs.den[i * m:i * m + m]))
        pieces[i] = int(cx.pieces[i])
        recession[i] = (points_at(cx, cx.rays, i), points_at(cx, cx.lines, i))
        rows[i] = ([], [])
        if d >= 3:  # facet rows for the LP
            own = [row(int(k))[:2] for k in cx.facet_row[cx.facet_start[i]:cx.facet_start[i + 1]]]
            rows[i] = ([x[0] for x in own], [x[1] for x in own])
    on = sorted({v for _, _, _, f in facets for v in f.vertices})
    boundary_points = [(v, fractions_at(cx.vertices, v * d, v * d + d)) for v in on]
    _, first = np.unique(cx.pieces, return_index=True)  # labels 0.. by their first region
    return _Summary(name, seconds, part.num_regions, part.num_vertices,
                    list(part.constraint_offsets), tuple(part.output_shape), part.digest,
                    list(part.notes), part.version, first.tolist(), boundary_points, facets,
                    rows, recession, maps, pieces)


def _renumbered_complex(cx: Complex, ids: _CellIds, first: int, seen: dict[int, int],
                        base: int, piece: Sequence[int], volumes: bool) -> Complex:
    """A cell's complex in the whole certificate's numbering, in array operations: regions from
    ``first``, vertices ``seen`` in an earlier cell keeping their numbers and the others
    counted from ``base`` (only those others kept as its vertices, in their order), constraint
    ids through ``ids``, local piece ``p`` as ``piece[p]``; no volumes unless ``volumes``."""
    n, d = cx.num_vertices, cx.d
    old = np.fromiter(seen, np.int64, len(seen))
    is_old = np.zeros(n, dtype=bool)
    is_old[old] = True
    new = np.flatnonzero(~is_old)
    vertex = np.empty(n, dtype=np.int64)
    vertex[new] = base + np.arange(len(new))
    vertex[old] = np.fromiter(seen.values(), np.int64, len(seen))
    if len(old):
        coords = (new[:, None] * d + np.arange(d)).reshape(-1).tolist()
        num, den = cx.vertices.num, cx.vertices.den
        points = Rationals([num[c] for c in coords], [den[c] for c in coords])
    else:
        points = cx.vertices
    out = dataclasses.replace(
        cx, vertices=points,
        region_vertices=Ragged(cx.region_vertices.start, vertex[cx.region_vertices.flat]),
        facet_vertices=Ragged(cx.facet_vertices.start, vertex[cx.facet_vertices.flat]),
        facet_ids=ids.ragged(cx.facet_ids), adj_i=cx.adj_i + first, adj_j=cx.adj_j + first,
        adj_ids=ids.ragged(cx.adj_ids), pieces=np.asarray(piece, dtype=np.int64)[cx.pieces],
        stats={})
    if not volumes:
        zeros = [0] * out.num_regions
        out = dataclasses.replace(out, volume=Rationals(zeros, list(zeros)))
    return out


def _write_cell(done: tuple[str, Certificate, float], root: Path, k: int, ids: _CellIds,
                first: int, seen: dict[int, int], base: int, piece: list[int],
                shard_rows: int, volumes: bool) -> dict[str, list[dict[str, Any]]]:
    """On the worker: write its cell's regions, new vertices and own adjacent pairs in the
    whole certificate's numbering (:func:`_renumbered_complex` of the cell's columns, whose
    arguments these are), the shards written from those columns; the shards' entries."""
    out = _renumbered_complex(_complex(done[1]), ids, first, seen, base, piece, volumes)
    sizes = {"regions": out.num_regions, "vertices": out.num_vertices,
             "adjacency": len(out.adj_i)}
    schemas = _shards.schemas()
    entries: dict[str, list[dict[str, Any]]] = {}
    for t in _shards.TABLES:
        _shards.save_table(root, t, sizes[t], shard_rows, _shards.complex_rows(out, t),
                           schemas[t], entries.setdefault(t, []), _Silent(), stem=f"cell-{k:05d}")
    return entries


@dataclass
class _Numbering:
    """The whole certificate's numbering of its cells' (from their :class:`_Summary`): each
    cell's first region, vertices seen in an earlier cell (local number -> number) and the
    number its other vertices count from, its local pieces' numbers; the constraint offsets,
    the counts, and the adjacent pairs across cells (sorted)."""

    first: list[int]
    seen: list[dict[int, int]]
    bases: list[int]
    pieces: list[list[int]]
    offsets: list[int]
    regions: int
    vertices: int
    num_pieces: int
    across: list[Adjacency]

    def args(self, k: int) -> tuple[int, dict[int, int], int, list[int]]:
        """Cell ``k``'s ``first, seen, base, piece`` of :func:`_renumbered_complex`."""
        return self.first[k], self.seen[k], self.bases[k], self.pieces[k]


def _numbering(parts: Sequence[_Summary], ids: Sequence[_CellIds], d: int) -> _Numbering:
    """Number the cells' regions, vertices and pieces from their summaries, and find the
    adjacent pairs across cells."""
    offsets: list[int] | None = None
    first, n = [], 0
    for k, (part, cell) in enumerate(zip(parts, ids, strict=True)):
        offsets = _same_offsets(k, cell.offsets(k, part.offsets), offsets)
        first.append(n)
        n += part.regions
    assert offsets is not None
    # vertices: by first appearance in region order; only boundary vertices can be seen twice
    # (equal points found by their exact coordinates: the keys of ``number``, each coordinate's
    # numerator and denominator, which are equal exactly for equal Fractions, all in lowest
    # terms)
    number: dict[tuple[int, ...], int] = {}
    seen: list[dict[int, int]] = []
    bases: list[int] = []
    base = 0
    point: dict[int, tuple[Fraction, ...]] = {}
    glob: list[dict[int, int]] = []
    for part in parts:
        keys = [(v, x, tuple(c for q in x for c in (q.numerator, q.denominator)))
                for v, x in part.points]
        old = {v: number[key] for v, _, key in keys if key in number}
        before = sorted(old)
        mine = dict(old)
        for v, x, key in keys:
            if v not in old:  # numbered after the cell's vertices not seen before it
                number[key] = mine[v] = base + v - bisect.bisect_left(before, v)
            point[mine[v]] = x
        seen.append(old)
        bases.append(base)
        glob.append(mine)
        base += part.vertices - len(old)
    # adjacency across cells, on the boundary facets, grouped by hyperplane (its canonical key,
    # found by the numerators and denominators of its coordinates, all in lowest terms)
    boundary: dict[tuple, tuple[tuple, list[tuple[int, int, RegionFacet]]]] = {}
    rows: dict[int, tuple[list, list]] = {}
    recession: dict[int, tuple[list, list]] = {}
    maps: dict[int, tuple] = {}
    local_piece: dict[int, tuple[int, int]] = {}
    for k, part in enumerate(parts):
        for key, side, r, f in part.facets:
            on = RegionFacet(f.a, f.b, f.ids, tuple(glob[k][v] for v in f.vertices), f.rays)
            normal, offset = cast(tuple[tuple[Fraction, ...], Fraction], key)
            exact = tuple((q.numerator, q.denominator) for q in (*normal, offset))
            boundary.setdefault(exact, (key, []))[1].append((side, first[k] + r, on))
        for r in part.rows:
            rows[first[k] + r], maps[first[k] + r] = part.rows[r], part.maps[r]
            recession[first[k] + r] = part.recession[r]
            local_piece[first[k] + r] = (k, part.pieces[r])
    across: list[Adjacency] = []
    for key, on_it in boundary.values():
        across.extend(_across(key, on_it, rows.__getitem__, point.__getitem__,
                              recession.__getitem__, d))
    across.sort(key=lambda a: (a.i, a.j))
    # pieces: each cell's own, joined across cells where equal maps meet; numbered by their
    # first region
    heads = [[first[k] + i for i in part.piece_first] for k, part in enumerate(parts)]
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        while parent.get(x, x) != x:
            x = parent[x]
        return x

    for a in across:
        if maps[a.i] == maps[a.j]:
            (ki, pi), (kj, pj) = local_piece[a.i], local_piece[a.j]
            hi, hj = find(heads[ki][pi]), find(heads[kj][pj])
            if hi != hj:
                parent[max(hi, hj)] = min(hi, hj)
    number_of: dict[int, int] = {}
    for h in (h for hs in heads for h in hs):  # in increasing order
        if find(h) == h:
            number_of[h] = len(number_of)
    pieces = [[number_of[find(h)] for h in hs] for hs in heads]
    return _Numbering(first, seen, bases, pieces, offsets, n, base, len(number_of), across)


def _write(pool: _Pool, parts: list[_Summary], ids: list[_CellIds], prog: Program,
           dom: Domain, root: Path, shard_rows: int, stats: dict[str, Any], progress: bool,
           t0: float) -> None:
    """Number the cells from their summaries (:func:`_numbering`), have each worker write its
    cell, and write the pairs across and the manifest."""
    num = _numbering(parts, ids, dom.dim)
    args = [(root, k, i, *num.args(k), shard_rows, dom.is_bounded) for k, i in enumerate(ids)]
    shards: dict[str, list[dict[str, Any]]] = {t: [] for t in _shards.TABLES}
    with progress_bar(len(args), "writing cells", progress) as bar:
        for entries in pool.write(args):
            for t in _shards.TABLES:
                shards[t].extend(entries[t])
            bar.update(1)
    across = num.across
    _shards.save_table(root, "adjacency", len(across), shard_rows,
                       lambda lo, hi: [adjacency_json(a) for a in across[lo:hi]],
                       _shards.schemas()["adjacency"], shards["adjacency"], _Silent(),
                       stem="across")
    p = parts[0]
    stats["seconds"]["total"] = time.perf_counter() - t0
    _shards.write_manifest(root, header_json(dom, prog.input_shape, p.output_shape, p.digest,
                                             num.offsets, p.notes, p.version, num.regions,
                                             num.num_pieces, stats), shards)
