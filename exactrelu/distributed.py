"""Certification on a Dask cluster: cells of the first piecewise layer become tasks, each
certified on a worker by :func:`exactrelu.verify` (the compiled engine where it applies), and the
results are merged exactly into one certificate.

Why the merge is exact and needs no gluing: a region of the net lies inside one cell of the
arrangement of any set of its first piecewise layer's units (the cell of its signs there), and
the net's regions inside a cell are exactly the regions of the net on that cell taken as the
domain. The cells are those of the first ``k`` units, ``k`` the least power of two giving at
least :data:`TASKS_PER_WORKER` cells per worker (the whole first layer where units cannot be
taken apart: a first op that is not ``Linear`` then a ReLU-like op). So the task certificates
hold every region once, with its witness, facets, vertices, map and volume as they are; what the
merge does is bookkeeping and one exact question:

- region order: the cells in their own canonical order, and each cell's regions in its task's
  order (the canonical order is depth first through the layer tree, comparing the first op's
  switching functions in id order: the first ``k`` units decide first, so a cell's regions are a
  contiguous run of it);
- constraint ids: a task's domain rows are its cell's facets, each standing for the ids the
  cells' certificate lists on that facet (rows of the whole domain, first-layer units, which
  have the same ids in both); a task's units' ids shift by the difference of the two domains'
  row counts;
- vertices: numbered by first appearance in region order, equal points (exact coordinates) once;
- adjacency: a task's own pairs, plus pairs of regions of different cells across a cell facet
  (opposite sides of one hyperplane), adjacent when their facets there share a (d-1)-dimensional
  part: exact extents along the hyperplane overlap with positive length (which decides in 2-D),
  and above 2-D an exact LP on the hyperplane (:func:`exactrelu._geometry.full_on_hyperplane` of
  both regions' rows);
- pieces: components of adjacency with equal exact maps, numbered by their first region.

:func:`exactrelu.check` proves the merged certificate like any other (the tests compare it with a
local run in canonical form and check it). Tasks return their exact complexes (plain integers)
to the client, which builds and merges their certificates: the client holds the whole
certificate (save it sharded with ``cert.save("x.parquet")``); a worker needs what one cell's
certification needs.

Applies to an ``nn.Sequential`` whose first piecewise module comes before any branching, on a
bounded domain (a box, a polytope or a slice through inputs); another net runs as one task.
"""

from __future__ import annotations

import copy
import logging
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import torch
from torch import nn

from ._geometry import full_on_hyperplane, hyperplane_chart
from ._progress import progress_bar
from .capture import Program
from .certificate import Adjacency, Certificate, Region, RegionFacet, canonical_hyperplane
from .domain import Box, Domain, Polytope, Slice
from .engines import Complex, build_certificate
from .engines.python import pieces_of
from .errors import InvalidInputError, RegionLimitError

__all__ = ["is_dask_client", "merge", "run"]

_log = logging.getLogger(__name__)

#: Tasks per Dask worker to aim for: enough for the cells' unequal sizes to even out.
TASKS_PER_WORKER = 8
_SHARED = (nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.ReLU6)  # one parameter set for all units


def is_dask_client(executor: Any) -> bool:
    """Is ``executor`` a ``dask.distributed.Client`` (checked without importing Dask)?"""
    distributed = sys.modules.get("distributed")
    return distributed is not None and isinstance(executor, distributed.Client)


def _first_layer(net: Any, prog: Program) -> nn.Module | None:
    """The shortest prefix of an ``nn.Sequential`` ending with a piecewise op (``prog``, its
    capture, names its nodes by module path: the first piecewise node's top-level index), or
    None."""
    first = prog.piecewise_nodes()
    if not isinstance(net, nn.Sequential) or not first:
        return None
    top = first[0].name.split(".")[0]
    return net[:int(top) + 1] if top.isdigit() and int(top) < len(net) else None


def _first_units(prefix: nn.Module, k: int) -> nn.Module | None:
    """``prefix`` (``Linear`` then a ReLU-like op of one parameter for all units) keeping only
    the first ``k`` units, or None for any other prefix (its cells are then those of the whole
    first layer)."""
    if not (isinstance(prefix, nn.Sequential) and len(prefix) == 2
            and isinstance(prefix[0], nn.Linear) and type(prefix[1]) in _SHARED):
        return None
    lin = prefix[0]
    if k >= lin.out_features:
        return None
    cut = nn.Linear(lin.in_features, k, bias=lin.bias is not None, dtype=lin.weight.dtype,
                    device=lin.weight.device)
    with torch.no_grad():
        cut.weight.copy_(lin.weight[:k])
        if lin.bias is not None:
            cut.bias.copy_(lin.bias[:k])
    return nn.Sequential(cut, copy.deepcopy(prefix[1])).eval()


def _cells(prefix: nn.Module, dom: Domain, shape: tuple[int, ...], want: int,
           workers: int | None) -> Certificate:
    """The certificate of the first layer's cells, or of the cells of its first ``k`` units for
    the least power of two ``k`` that gives at least ``want`` cells (fewer, larger tasks: every
    task costs a trace and an engine start). A region of the net lies in one cell of any set of
    its first layer's units, and the first ``k`` units come first in the canonical order, so the
    merge is the same."""
    from .verify import verify

    k = 1
    while (cut := _first_units(prefix, k)) is not None:
        cells = verify(cut, dom, input_shape=shape, workers=workers, progress=False)
        if cells.num_regions >= want:
            return cells
        k *= 2
    return verify(prefix, dom, input_shape=shape, workers=workers, progress=False)


def _cell_domain(dom: Domain, A: list[tuple[Fraction, ...]], b: list[Fraction]) -> Domain:
    if isinstance(dom, Slice):
        return Slice._from_exact(dom.input_shape, dom.origin, dom.directions, Polytope(A, b))
    return Polytope(A, b)


def _task(net: nn.Module | Program, dom: Domain, input_shape: tuple[int, ...],
          workers: int | None, max_regions: int | None, engine: str
          ) -> tuple[str, Complex, float]:
    """One cell on a worker: what :func:`exactrelu.verify` does up to the exact complex, which
    travels back as plain integers (the certificate's objects would pickle each Fraction as a
    decimal string); the client builds the certificate."""
    from .verify import _program_and_domain, certify_complex

    t0 = time.perf_counter()
    prog, dom = _program_and_domain(net, dom, input_shape)
    name, cx, _, _ = certify_complex(prog, dom, engine, None, workers, False, max_regions, None,
                                     t0)
    return name, cx, time.perf_counter() - t0


def run(net: nn.Module | Program, prog: Program, dom: Domain, client: Any, *,
        workers: int | None = None, max_regions: int | None = None,
        engine: str = "auto", progress: bool = False) -> Certificate:
    """What :func:`exactrelu.verify` does with ``executor=client`` (a Dask client): the cells of
    the first piecewise layer as tasks (``workers``: threads or processes per task, ``engine``
    for each), merged exactly (see the module docstring). ``max_regions`` bounds each task and
    the total: the run stops as soon as the tasks done hold more. ``progress``: a bar over the
    tasks done (on a terminal)."""
    from distributed import as_completed

    t0 = time.perf_counter()
    if not dom.is_bounded or not isinstance(dom, (Box, Polytope, Slice)):
        raise InvalidInputError(f"a cluster run needs a bounded box, polytope or slice; got "
                                f"{dom!r} (run it locally: verify(net, domain))")
    shape = prog.input_shape
    prefix = _first_layer(net, prog)
    if prefix is None:
        _log.info("one task: not an nn.Sequential whose first piecewise op can be cut off")
        tasks: list[Domain] = [dom]
        cells = None
    else:
        n_workers = max(1, len(client.scheduler_info().get("workers", {})))
        cells = _cells(prefix, dom, shape, TASKS_PER_WORKER * n_workers, workers)
        tasks = [_cell_domain(dom, [f.a for f in r.facets], [f.b for f in r.facets])
                 for r in cells.regions]
    net_ref = client.scatter(net, broadcast=True)
    futures = [client.submit(_task, net_ref, cell, shape, workers, max_regions, engine,
                             pure=False) for cell in tasks]
    order = {f.key: k for k, f in enumerate(futures)}
    parts: list[Certificate | None] = [None] * len(futures)
    names: set[str] = set()
    seconds = 0.0
    found = 0
    with progress_bar(len(futures), "cells", progress) as bar:
        for future in as_completed(futures):
            name, cx, s = future.result()
            k = order[future.key]
            part = parts[k] = build_certificate(prog, tasks[k], cx)
            names.add(name)
            seconds += s
            found += part.num_regions
            bar.update(1)
            if max_regions is not None and found > max_regions:
                client.cancel(futures)
                raise RegionLimitError(f"more than max_regions={max_regions:,} regions: the "
                                       f"tasks done hold {found:,}", found)
    done = [p for p in parts if p is not None]
    cert = done[0] if cells is None else merge(cells, done)
    cert.stats = {"engine": f"dask ({', '.join(sorted(names))})", "tasks": len(done),
                  "seconds": {"total": time.perf_counter() - t0, "tasks": seconds}}
    return cert


# --------------------------------------------------------------------------------- merging
def merge(cells: Certificate, parts: Sequence[Certificate]) -> Certificate:
    """The certificate of the whole domain from the first layer's certificate ``cells`` and one
    certificate per cell (``parts[k]`` on ``cells.regions[k]``'s polytope), in cell order."""
    n_dom = cells.constraint_offsets[0]
    d = cells.dim
    regions: list[Region] = []
    vertices: list[tuple[Fraction, ...]] = []
    number: dict[tuple[Fraction, ...], int] = {}
    adjacency: list[Adjacency] = []
    boundary: dict[tuple, list[tuple[int, int, RegionFacet]]] = {}  # hyperplane -> (side, i, f)
    offsets: list[int] | None = None
    for k, (cell, part) in enumerate(zip(cells.regions, parts, strict=True)):
        m = part.constraint_offsets[0]
        if m != len(cell.facets):
            raise InvalidInputError(f"task {k}: its domain has {m} rows, its cell "
                                    f"{len(cell.facets)} facets")
        shift = n_dom - m
        own = [tuple(f.ids) for f in cell.facets]
        on_cell_facet = [any(i >= n_dom for i in ids) for ids in own]

        def ids_of(ids: Sequence[int], own: list[tuple[int, ...]] = own,
                   shift: int = shift, m: int = m) -> tuple[int, ...]:
            out: set[int] = set()
            for i in ids:
                out.update(own[i] if i < m else (i + shift,))
            return tuple(sorted(out))

        shifted = [o + shift for o in part.constraint_offsets]
        if offsets is None:
            offsets = shifted
        elif shifted != offsets:
            raise InvalidInputError(f"task {k}: constraint offsets {shifted}, others {offsets}")
        first = len(regions)
        local: list[int] = []
        for v in part.vertices:
            if v not in number:
                number[v] = len(vertices)
                vertices.append(v)
            local.append(number[v])
        for r in part.regions:
            index = len(regions)
            facets = []
            for f in r.facets:
                g = RegionFacet(f.a, f.b, ids_of(f.ids), tuple(local[v] for v in f.vertices),
                                f.rays)
                facets.append(g)
                if any(i < m and on_cell_facet[i] for i in f.ids):
                    key, side = canonical_hyperplane(f.a, f.b)
                    boundary.setdefault(key, []).append((side, index, g))
            regions.append(Region(index, r.pattern, r.witness, facets,
                                  [local[v] for v in r.vertices], r.output, r.volume,
                                  r.repaired, r.rays, r.lines))
        adjacency.extend(Adjacency(a.i + first, a.j + first, a.a, a.b, ids_of(a.ids))
                         for a in part.adjacency)
    assert offsets is not None
    for key, on_it in boundary.items():
        adjacency.extend(_across(key, on_it, regions, vertices, d))
    adjacency.sort(key=lambda a: (a.i, a.j))
    return Certificate(cells.domain, cells.input_shape, parts[0].output_shape, parts[0].digest,
                       offsets, regions, vertices, adjacency, pieces_of(regions, adjacency),
                       list(parts[0].notes), parts[0].version, {})


def _across(key: tuple, facets: list[tuple[int, int, RegionFacet]], regions: list[Region],
            vertices: list[tuple[Fraction, ...]], d: int) -> list[Adjacency]:
    """The adjacent pairs across the hyperplane ``key`` among regions with a facet on it
    (``(side, region, facet)``, side +1 or -1): pairs of opposite sides whose facets share a
    (d-1)-dimensional part. The facets' exact extents along the hyperplane's coordinates (all
    but its chart) must overlap with positive length; a sweep along the first finds those pairs,
    which decides in 2-D; above, an exact LP on the hyperplane decides."""
    normal, offset = key
    if d == 1:
        axes: list[int] = []
    else:
        chart = hyperplane_chart(normal)
        axes = [i for i in range(d) if i != chart]
    boxes: list[Any] = []
    for side, i, f in facets:
        pts = [vertices[v] for v in f.vertices]
        boxes.append((side, i, f, [(min(p[a] for p in pts), max(p[a] for p in pts))
                                   for a in axes]))
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
        if d >= 3 and not full_on_hyperplane(
                [h.a for h in regions[i].facets] + [h.a for h in regions[j].facets],
                [h.b for h in regions[i].facets] + [h.b for h in regions[j].facets],
                normal, offset):
            continue
        out.append(Adjacency(min(i, j), max(i, j), normal, offset,
                             tuple(sorted(set(f.ids) | set(g.ids)))))
    return out
