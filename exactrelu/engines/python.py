"""The Python engine: :func:`exactrelu.certify.run` on any network and domain, in this process or
on an executor, then exact vertices, adjacency and linear pieces, as a :class:`Complex`."""

from __future__ import annotations

import bisect
import concurrent.futures as cf
import logging
import math
import os
import signal
import sys
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

from .. import certify
from .._columns import complex_of
from .._deps import flint
from .._geometry import exact_keys, full_on_hyperplane
from .._runtime import paused_gc
from ..capture import Program, constraint_offsets
from ..certificate import Adjacency, Region, RegionFacet
from ..domain import Domain
from ..errors import VerificationError
from ._complex import Complex, joined
from ._interface import Options, Proposals

log = logging.getLogger(__name__)
_RESOURCE_SHARER = os.path.join("multiprocessing", "resource_sharer.py")

__all__ = ["PARALLEL_THRESHOLD", "PythonEngine", "find_adjacency", "pieces_of"]

fmpz_mat = flint.fmpz_mat

# Below this many float regions a process pool costs about what it saves (start-up, shipping the
# cells and the leaves): verify's own 2-worker pool took 2-32-32 (707 regions) from 0.62 s to
# 0.61 s, 2-32-32-32 (1,151) from 1.41 s to 1.22 s and 2-64-64-64 (4,113) from 5.2 s to 3.7 s.
PARALLEL_THRESHOLD = 1000



def _ignore_sigint() -> None:
    """In a worker of verify's own pool: Ctrl-C is the caller's to handle (it stops the pool);
    a worker interrupted while idle would print a traceback of its own, and so would its
    resource sharer when the caller stops in the middle of fetching a tensor from it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _quiet_resource_sharer()


def _from_resource_sharer(tb: Any) -> bool:
    """Does this traceback pass through multiprocessing's resource sharer (the thread that hands
    file descriptors to another process, as torch's tensor pickling asks)?"""
    while tb is not None:
        if tb.tb_frame.f_code.co_filename.endswith(_RESOURCE_SHARER):
            return True
        tb = tb.tb_next
    return False


def _quiet_resource_sharer() -> None:
    """When the pool stops, a resource sharer's thread (the caller's or a worker's) can fail in
    ``accept`` (the other side gone in the middle of its handshake); it reports that through
    ``sys.excepthook``, which prints a traceback (at the command line, after Ctrl-C). In workers
    from their start, in the caller from the first stop on, such reports are logged at DEBUG
    instead; every other exception goes to the hook that was there."""
    previous = sys.excepthook
    if getattr(previous, "_exactrelu", False):
        return

    def hook(kind: Any, value: Any, tb: Any) -> None:
        if _from_resource_sharer(tb):
            log.debug("multiprocessing's resource sharer after a stop: %r", value)
        else:
            previous(kind, value, tb)

    hook._exactrelu = True  # type: ignore[attr-defined]  # installed once
    sys.excepthook = hook


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a process pool at once (an error or Ctrl-C here): pending work is cancelled and the
    workers are terminated rather than waited for. ``_processes`` is the executor's own table
    of its worker processes (CPython 3.8 to 3.13)."""
    _quiet_resource_sharer()
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(1)


class _Regions:
    """Regions from certified leaves, batch by batch as they arrive (each batch consumed, so that
    the leaves of a large net are never all in memory beside their regions), with the vertices
    deduplicated exactly across all of them."""

    def __init__(self) -> None:
        self.vindex: dict[tuple, int] = {}
        self.vertices: list[tuple[Fraction, ...]] = []
        # leaves share vertex tuples: by identity first
        self.seen: dict[int, tuple[tuple, int]] = {}
        # Regions of one parent share the states of their first ops (one tuple object in the
        # leaves): they share one list per state too (read-only; a 2-256-256-256 net saves about
        # 0.5 GB).
        self.state_lists: dict[int, tuple[tuple, list]] = {}
        self.regions: list[Region] = []

    def vid(self, v: tuple) -> int:
        got = self.seen.get(id(v))
        if got is not None and got[0] is v:
            return got[1]
        key = tuple([(c.numerator, c.denominator) for c in v])  # ints hash faster than Fractions
        k = self.vindex.get(key)
        if k is None:
            k = self.vindex[key] = len(self.vertices)
            self.vertices.append(v)
        self.seen[id(v)] = (v, k)
        return k

    def state_list(self, st: tuple) -> list:
        # leaves of one parent come together; older ones are memory
        if len(self.state_lists) > 4096:
            self.state_lists.clear()
        got = self.state_lists.get(id(st))
        if got is None or got[0] is not st:
            got = self.state_lists[id(st)] = (st, list(st))
        return got[1]

    def add(self, leaves: list) -> None:
        """Turn ``leaves`` into regions (consumed: the list is emptied of them)."""
        vid, state_list, regions = self.vid, self.state_list, self.regions
        for i in range(len(leaves)):
            lf, leaves[i] = leaves[i], None  # what the region does not keep is freed now
            ids = [vid(v) for v in lf.vertices]
            facets = [RegionFacet(a, b, fid, tuple([ids[k] for k in fv]), fr)
                      for a, b, fid, fv, fr in lf.facets]
            regions.append(Region(len(regions), [state_list(s) for s in lf.states], lf.witness,
                                  facets, ids, lf.output, lf.volume, lf.repaired, lf.rays,
                                  lf.lines))
        # identity entries hold their objects alive; no later batch shares them (each arrives
        # unpickled on its own), so they are only memory from here on
        self.seen.clear()
        self.state_lists.clear()


def find_adjacency(regions: list[Region], vertices: list[tuple], d: int,
                   offsets: Sequence[int] | None = None,
                   units: Sequence[int | None] | None = None) -> list[Adjacency]:
    """Pairs of regions whose closures share a (d-1)-face (exact).

    Facets are grouped by their hyperplane and, with the constraint ``offsets`` of the certificate,
    further by what two regions sharing a (d-1)-piece of that hyperplane must have in common. Let
    ``j0`` be the first op with a constraint vanishing on a facet. At a generic point ``c`` of the
    shared piece no constraint of an earlier op vanishes (it would vanish on the whole facet), so
    both regions have the same states before ``j0``; for an op whose cells are the sign vectors of
    its switching functions (``units[j0]`` = its number of units, None otherwise) they also agree at
    ``j0`` except on the units vanishing there (the two regions' switching functions of ``j0``
    are the same affine maps). Past ``j0`` the maps differ across the facet, and a switching
    function that is identically zero on one side (its state there a tie) may have either state
    on the other, so later ops are not in the key. A facet with a domain constraint lies on the
    domain's boundary and has no region across."""
    exact = vertices
    # per coordinate, the exact keys of every vertex's coordinate: every choice of an extreme
    # vertex and every comparison of two ends is exact, and almost always one of floats
    keys = [exact_keys([v[c] for v in exact]) for c in range(d)] if d > 1 else []
    planes_of: dict[tuple[int, int], tuple[tuple[int, ...], int]] = {}  # by id of (a, b)

    def plane(f: RegionFacet) -> tuple[tuple[int, ...], int]:
        """:func:`_hyperplane_key` of a facet, once per (a, b) pair of objects (leaves share them;
        every one stays alive with ``regions``, so its id is not reused)."""
        k = (id(f.a), id(f.b))
        got = planes_of.get(k)
        if got is None:
            got = planes_of[k] = _hyperplane_key(f.a, f.b)
        return got

    prefixes: dict[tuple, int] = {}  # the states of the ops before j0, as a small int
    groups: dict[tuple, list[tuple[int, int, RegionFacet]]] = {}
    for r in regions:
        pat = r.pattern
        pids: dict[int, int] = {}
        for f in r.facets:
            fids = f.ids
            if offsets is not None and fids:
                low = min(fids)
                if low < offsets[0]:
                    continue  # on the domain's boundary
            key, side = plane(f)
            gk: tuple = key
            if offsets is not None and fids:
                j0 = bisect.bisect_right(offsets, low) - 1
                n = units[j0] if units is not None and j0 < len(units) else None
                st: tuple = ()
                if n:
                    lo, hi = offsets[j0], offsets[j0 + 1]
                    masked = list(pat[j0])
                    for i in fids:
                        if lo <= i < hi:
                            masked[(i - lo) % n] = -1
                    st = tuple(masked)
                pid = pids.get(j0)
                if pid is None:
                    prefix = tuple(tuple(s) for s in pat[:j0])
                    pid = pids[j0] = prefixes.setdefault(prefix, len(prefixes))
                gk = (key, j0, pid, st)
            groups.setdefault(gk, []).append((side, r.index, f))
    out: list[tuple[int, int, RegionFacet, RegionFacet, Any]] = []
    for gk, items in groups.items():
        plus = [(ri, f) for s, ri, f in items if s > 0]
        minus = [(ri, f) for s, ri, f in items if s < 0]
        if not plus or not minus:
            continue
        if d > 1 and any(f.rays or regions[ri].lines for _, ri, f in items):
            # unbounded facets on this hyperplane: decide every pair by the exact LP
            pairs = [(p, m) for p in plus for m in minus
                     if _faces_overlap(p[1], regions[p[0]], regions[m[0]])]
        elif d == 1:
            pairs = [(p, m) for p in plus for m in minus]
        elif d == 2:
            # Collinear sides overlap iff their spans along a coordinate the line does not fix
            # overlap with positive length; ends are compared by exact keys (floats where they
            # differ, the rationals where the floats are equal).
            kc = keys[0 if items[0][2].a[1] != 0 else 1]
            at = kc.__getitem__
            ms = sorted(((kc[min(g.vertices, key=at)], kc[max(g.vertices, key=at)], rj, g)
                         for rj, g in minus), key=_first)
            pairs = []
            for ri, f in plus:
                flo, fhi = kc[min(f.vertices, key=at)], kc[max(f.vertices, key=at)]
                for mlo, mhi, rj, g in ms:
                    if mlo >= fhi:
                        break  # so are the later ones: sorted by their lower ends
                    if flo < mhi:
                        pairs.append(((ri, f), (rj, g)))
        else:
            # a facet with the vertices of one across is that facet: they share all of it, and
            # neither shares a (d-1)-piece with another (facets on one side of a hyperplane have
            # disjoint relative interiors, their regions' interiors being disjoint)
            across = {frozenset(g.vertices): (rj, g) for rj, g in minus}
            pairs, rest = [], []
            for ri, f in plus:
                twin = across.pop(frozenset(f.vertices), None)
                if twin is None:
                    rest.append((ri, f))
                else:
                    pairs.append(((ri, f), twin))
            if rest and across:
                pairs += _overlapping_facets(plus[0][1].a, rest, list(across.values()), regions,
                                             exact, keys, d, plane)
        for (ri, f), (rj, g) in pairs:
            out.append((min(ri, rj), max(ri, rj), f, g, gk if offsets is None else gk[0]))
    uniq: dict[tuple[int, int], tuple] = {}
    for i, j, f, g, key in out:
        uniq.setdefault((i, j), (f, g, key))
    adjacency = []
    planes: dict[tuple, tuple] = {}
    for (i, j), (f, g, key) in sorted(uniq.items()):
        if key not in planes:  # first non-zero entry of a scaled to 1, from the integer key
            lead = next(v for v in key if v != 0)
            planes[key] = (tuple(Fraction(v, lead) for v in key[:-1]), Fraction(key[-1], lead))
        a, b = planes[key]
        fi = f.ids
        ids = fi if len(fi) == 1 and fi == g.ids else tuple(sorted(set(fi) | set(g.ids)))
        adjacency.append(Adjacency(i, j, a, b, ids))
    return adjacency


def _hyperplane_key(a: Sequence[Fraction], b: Fraction) -> tuple[tuple[int, ...], int]:
    """(primitive integer row (a, b) with the first non-zero entry of a positive, side): a hashable
    key of the hyperplane that is cheap to build; side is the sign of that entry in ``a``."""
    vals = list(a)
    vals.append(b)
    dens = [v.denominator for v in vals]
    den = math.lcm(*dens)
    ints = [v.numerator * (den // q) for v, q in zip(vals, dens, strict=True)]
    side = next((1 if v > 0 else -1 for v in ints[:-1] if v != 0), 0)
    if side == 0:
        raise VerificationError("a facet with a zero normal")
    g = math.gcd(*ints) * side
    return tuple([v // g for v in ints]), side


def _first(t: tuple) -> Any:
    return t[0]


def _overlapping_facets(a: Sequence[Fraction], plus: list, minus: list, regions: list[Region],
                        vertices: list[tuple], keys: list[list[tuple[float, Fraction]]], d: int,
                        plane: Any) -> list:
    """d >= 3: pairs of facets on one hyperplane (opposite sides) sharing a (d-1)-dim piece.

    Bounding boxes first: boxes whose exact extents along a coordinate the hyperplane does not fix
    are disjoint or touching cannot share a (d-1)-dim piece. Extents are chosen and compared by
    ``keys`` (:func:`~exactrelu._geometry.exact_keys` of every vertex's coordinates: floats where
    they differ, the rationals where the floats are equal). Then d affinely independent shared
    vertices (a shared (d-1)-simplex), and for what is still undecided an exact separating-line
    test (3-D) or an exact LP.

    Separation: if some other facet ``h`` of one region has all the other facet's vertices on or
    beyond it (``a_h . x >= b_h``), the two facets meet at most in a (d-2)-dimensional piece.
    That is decided in integers: ``plane(h)`` is ``(a_h, b_h)`` times a non-zero rational of
    sign ``side`` as a primitive integer row, and a vertex is an integer vector over one positive
    denominator. In 3-D it is also necessary: two convex polygons on the plane H share positive
    area unless a line of H separates them, and such a line can be taken through an edge of one
    of them (separating axis theorem), an edge line of the facet of region ``a`` being H cut by
    another facet of ``a``. Above 3-D a separation may need edges of both, so what this test
    leaves undecided goes to the exact LP (on a 4-10-10 net it decided all of the 7,876 pairs
    that went to the LP before).
    """
    free = [i for i in range(d) if any(a[k] != 0 for k in range(d) if k != i)]
    ats = [kc.__getitem__ for kc in keys]

    def box(f: RegionFacet) -> list[tuple[tuple, tuple]]:
        """Per coordinate, the keys of the facet's exact least and greatest coordinate."""
        ks = f.vertices
        return [(kc[min(ks, key=at)], kc[max(ks, key=at)])
                for kc, at in zip(keys, ats, strict=True)]

    mboxes = [(box(g), rj, g) for rj, g in minus]
    seps: dict[int, Any] = {}
    cols_of: dict[int, Any] = {}
    homs: dict[int, tuple[int, ...]] = {}

    def hom(k: int) -> tuple[int, ...]:
        """Vertex ``k`` as integers ``(x_0, .., x_{d-1}, D)``: the vertex is ``x / D``,
        ``D > 0``."""
        got = homs.get(k)
        if got is None:
            v = vertices[k]
            dens = [c.denominator for c in v]
            D = math.lcm(*dens)
            got = homs[k] = (*(c.numerator * (D // q) for c, q in zip(v, dens, strict=True)), D)
        return got

    def others(ri: int, f: RegionFacet) -> Any:
        """The region's other facets as the rows of an integer matrix, ``r . (x, D) >= 0`` iff
        the vertex ``x / D`` satisfies ``a_h . x >= b_h`` (on or beyond facet ``h``)."""
        got = seps.get(id(f))
        if got is None:
            rs = []
            for h in regions[ri].facets:
                if h is not f:
                    key, side = plane(h)
                    r = key if side > 0 else tuple([-v for v in key])
                    rs.append([*r[:-1], -r[-1]])
            got = seps[id(f)] = fmpz_mat(rs)
        return got

    def columns(f: RegionFacet) -> Any:
        """The facet's vertices ``(x, D)`` as the columns of an integer matrix."""
        got = cols_of.get(id(f))
        if got is None:
            got = cols_of[id(f)] = fmpz_mat([hom(k) for k in f.vertices]).transpose()
        return got

    def beyond(H: Any, P: Any) -> bool:
        """Is every column of ``P`` on or beyond one of the rows of ``H``?"""
        return any(all(v >= 0 for v in row) for row in (H * P).tolist())

    out = []
    # a sweep along the first free coordinate: the other facets by their lower ends; once one is
    # at or past this facet's upper end, so are the later ones
    c0 = free[0]
    mboxes.sort(key=lambda t: t[0][c0][0])
    for ri, f in plus:
        fb = box(f)
        fset = set(f.vertices)
        top = fb[c0][1]
        for gb, rj, g in mboxes:
            if gb[c0][0] >= top:
                break
            if any(fb[i][1] <= gb[i][0] or gb[i][1] <= fb[i][0] for i in free):
                continue  # apart or touching along a coordinate the hyperplane does not fix
            shared = fset.intersection(g.vertices)
            # d affinely independent shared vertices: their homogeneous lifts have rank d (3-D:
            # three vertices of a convex polygon are never collinear, they are extreme points)
            if len(shared) >= d and (d == 3 or fmpz_mat([hom(k) for k in shared]).rank() == d):
                out.append(((ri, f), (rj, g)))
            elif beyond(others(ri, f), columns(g)) or beyond(others(rj, g), columns(f)):
                continue  # another facet's hyperplane separates them: no shared (d-1)-piece
            elif d == 3 or _faces_overlap(f, regions[ri], regions[rj]):
                out.append(((ri, f), (rj, g)))
    return out


def _faces_overlap(f: RegionFacet, ri: Region, rj: Region) -> bool:
    """Do the facets of ``ri`` and ``rj`` on ``f``'s hyperplane share a (d-1)-dimensional piece?
    (exact LP, d >= 3)."""
    return full_on_hyperplane([h.a for h in ri.facets] + [h.a for h in rj.facets],
                              [h.b for h in ri.facets] + [h.b for h in rj.facets], f.a, f.b)


def pieces_of(regions: Sequence[Region], adjacency: Sequence[Adjacency]) -> list[int]:
    """Components of adjacency with equal exact maps, numbered by their first region."""
    return joined(range(len(regions)), ((a.i, a.j) for a in adjacency
                                        if regions[a.i].output == regions[a.j].output))


class PythonEngine:
    """The Python engine behind :class:`~exactrelu.engines.Engine`: takes every network and
    domain. With no executor: a process pool over ``workers`` for traces of at least
    :data:`PARALLEL_THRESHOLD` regions, in-process otherwise."""

    name = "python"

    def applies(self, program: Program, domain: Domain, options: Options) -> str | None:
        return None

    def certify(self, program: Program, domain: Domain, proposals: Proposals,
                options: Options) -> Complex:
        workers, executor = options.workers, options.executor
        own = None
        if executor is None and workers != 1 and (workers or os.cpu_count() or 1) > 1 and \
                proposals.num_regions >= PARALLEL_THRESHOLD:
            own = cf.ProcessPoolExecutor(max_workers=workers or os.cpu_count(),
                                         initializer=_ignore_sigint)
            executor = own
        with paused_gc():
            trace = proposals.take()
            tree = certify.candidate_tree(trace) if trace is not None else None
            del trace  # only memory once its proposals are in the tree
            built = _Regions()
            try:
                _, stats, _ = certify.run(program, domain, tree, executor, workers,
                                          progress=options.progress, sink=built.add,
                                          max_regions=options.max_regions)
            except BaseException:
                if own is not None:
                    _stop(own)
                raise
            if own is not None:
                own.shutdown()
            return _complex(program, domain, built, stats)


def _complex(prog: Program, dom: Domain, built: _Regions, stats: certify.Stats) -> Complex:
    """The complex of the regions in ``built``: their adjacency and pieces found, then every field
    written as plain integers (facet rows once per pair of ``a``, ``b`` objects: siblings share
    them)."""
    regions, vertices = built.regions, built.vertices
    offsets = constraint_offsets(prog, dom)
    units = []
    for j in range(prog.num_piecewise):
        nd = prog.nodes[prog.piecewise[j]]
        units.append(math.prod(nd.out_shape) if nd.piecewise_rule.sign_cells else None)
    d = dom.dim
    adjacency = find_adjacency(regions, vertices, d, offsets, units)
    pieces = pieces_of(regions, adjacency)
    st = {k: getattr(stats, k) for k in ("candidates", "confirmed", "spurious", "repaired",
                                         "witness_lp", "redo_hv", "cells")}
    return complex_of(d, prog.num_piecewise, regions, vertices, adjacency, pieces, st)
