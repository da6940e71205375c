"""``exactrelu.verify``: float trace, exact certification, certificate."""

from __future__ import annotations

import bisect
import concurrent.futures as cf
import logging
import math
import os
import signal
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import nn

from . import _export, _fastpath, _polyhedra, certify
from ._deps import flint
from ._geometry import exact_keys
from ._parse import Malformed, approx, show
from .capture import Program, capture
from .certificate import Adjacency, Certificate, Region, RegionFacet
from .domain import Domain, Slice, as_domain, shape_size
from .errors import (
    CertificationError,
    ExactReluError,
    InvalidInputError,
    RegionLimitError,
    VerificationError,
)

log = logging.getLogger(__name__)
fmpz_mat = flint.fmpz_mat

# Below this many float regions a process pool costs about what it saves (start-up, shipping the
# cells and the leaves): verify's own 2-worker pool took 2-32-32 (707 regions) from 0.62 s to
# 0.61 s, 2-32-32-32 (1,151) from 1.41 s to 1.22 s and 2-64-64-64 (4,113) from 5.2 s to 3.7 s.
PARALLEL_THRESHOLD = 1000

#: The most threads or processes ``workers`` may ask for.
MAX_WORKERS = 1024

ENGINES = ("auto", "compiled", "python")

#: The environment variable that sets ``workers`` when a call leaves it None (the pytest plugin
#: sets it under pytest-xdist: the cores divided among the test workers).
WORKERS_ENV = "EXACTRELU_WORKERS"


def env_workers() -> int | None:
    """``workers`` from :data:`WORKERS_ENV` (None when unset or empty): a positive integer of at
    most :data:`MAX_WORKERS`, else an InvalidInputError naming the variable."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 4 or \
            not 1 <= int(text) <= MAX_WORKERS:
        raise InvalidInputError(f"the environment variable {WORKERS_ENV}={show(text)}: set it to a "
                                f"positive integer of at most {MAX_WORKERS:,}, or unset it (all "
                                "cores)")
    return int(text)


def _claim_failed(info: Any) -> bool:
    """pytest's ``__tracebackhide__`` test: a failed claim is shown at the caller's line, without
    exactrelu's frames."""
    return bool(info.errisinstance(VerificationError))


def _count(value: Any, name: str, most: int | None = None) -> int | None:
    """``value`` if it is None or a positive int (not a bool), at most ``most``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name}={show(value)} ({type(value).__name__}): pass a positive "
                                "integer or None")
    if value < 1 or (most is not None and value > most):
        limit = f" of at most {most:,}" if most is not None else ""
        raise InvalidInputError(f"{name}={show(int(value))}: pass a positive integer{limit} "
                                "or None")
    return int(value)


def _arguments(input_shape: Any, executor: Any, workers: Any, claimed: Any, progress: Any,
               engine: Any, max_regions: Any
               ) -> tuple[tuple[int, ...] | None, int | None, int | None]:
    """Every argument of :func:`verify` but the net and domain checked before any work, one
    clear InvalidInputError each; returns ``input_shape`` as a tuple, ``workers`` and
    ``max_regions`` as ints (or None)."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise InvalidInputError(f"engine={show(engine)}: use 'auto', 'compiled' or 'python'")
    if engine == "compiled" and executor is not None:
        raise InvalidInputError("an executor is for the Python engine; the compiled one runs on "
                                "threads (workers=)")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise InvalidInputError(f"executor must be a concurrent.futures.Executor (with submit); "
                                f"got {type(executor).__name__}")
    if not isinstance(progress, (bool, np.bool_)):
        raise InvalidInputError(f"progress={show(progress)}: pass True or False")
    workers = _count(workers, "workers", MAX_WORKERS)
    max_regions = _count(max_regions, "max_regions")
    if claimed is not None:
        if isinstance(claimed, (bool, str, bytes, float, dict, set, Fraction)) \
                or not isinstance(claimed, (int, np.integer, Sequence, torch.Tensor, np.ndarray)):
            raise InvalidInputError("claimed must be a region count (an int) or a list of "
                                    f"activation patterns; got {show(claimed)} "
                                    f"({type(claimed).__name__})")
        if isinstance(claimed, (int, np.integer)) and claimed < 0:
            raise InvalidInputError(f"claimed={show(int(claimed))}: a region count is at least 0")
    shape = None
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes)) or \
                not isinstance(input_shape, (Sequence, torch.Size)):
            raise InvalidInputError(f"input_shape={show(input_shape)}: pass a tuple of positive "
                                    "sizes")
        sizes = list(input_shape)
        if any(isinstance(v, np.integer) for v in sizes):
            sizes = [int(v) if isinstance(v, np.integer) else v for v in sizes]
        try:
            shape = shape_size(sizes)[0]
        except Malformed as exc:
            raise InvalidInputError(exc.where("input_shape")) from None
    return shape, workers, max_regions


def _program_and_domain(net: nn.Module | Program, domain: Any,
                        input_shape: Sequence[int] | None) -> tuple[Program, Domain]:
    """The captured program and the domain; the input shape comes from ``input_shape``, a Slice, a
    Program, an exported program, or the domain's dimension (a flat input); for ``domain=None``
    without any of those, from a leading ``nn.Linear``."""
    if isinstance(domain, Slice):
        shape: tuple[int, ...] = tuple(domain.input_shape)
        dom: Domain = domain
    else:
        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
        elif isinstance(net, Program):
            shape = net.input_shape
        elif (exported := _export.input_shape(net)) is not None:
            shape = exported  # an exported program's own input shape
        elif domain is None:
            first = next(iter(net.children()), None) if isinstance(net, nn.Sequential) else None
            if not isinstance(first, nn.Linear):
                raise InvalidInputError("domain=None (all of R^d) needs the input size: pass "
                                        "input_shape=(d,) or RealSpace(d)")
            shape = (first.in_features,)
        else:
            shape = ()
        dom = as_domain(domain, math.prod(shape) if shape else None)
        shape = shape or (dom.dim,)
    prog = net if isinstance(net, Program) else capture(net, shape)
    if not isinstance(dom, Slice) and prog.in_dim != dom.dim:
        raise InvalidInputError(f"the domain has dimension {dom.dim} but the network takes "
                                f"{prog.in_dim} inputs; pass one (lo, hi) pair per input, or a "
                                "Slice for a higher-dimensional input")
    return prog, dom


def verify(net: nn.Module | Program, domain: Any, *, input_shape: Sequence[int] | None = None,
           executor: cf.Executor | None = None, workers: int | None = None, claimed: Any = None,
           progress: bool = True, trace: Any = None, engine: str = "auto",
           max_regions: int | None = None) -> Certificate:
    """Certify the linear regions of ``net`` on ``domain`` in exact rational arithmetic.

    ``domain``: a list of (lo, hi) pairs, a :class:`~exactrelu.domain.Domain`. ``engine``: the
    exact layer to use. ``"compiled"`` (C++ and GMP, on ``workers`` threads, all cores by default)
    takes chains of affine layers and ReLU/LeakyReLU/Hardtanh ops on bounded 2-D and 3-D domains;
    ``"python"`` takes every network and domain; ``"auto"`` (default) takes the compiled one where
    it applies and no ``executor`` is given. Both give the same certificate. ``executor`` (Python
    engine): any ``concurrent.futures.Executor`` for the exact work (e.g. Dask's
    ``client.get_executor()``); by default a process pool over ``workers`` for large traces,
    in-process otherwise. ``workers=None`` takes the environment variable ``EXACTRELU_WORKERS``
    when set (exactrelu's pytest plugin sets it under pytest-xdist: the cores divided among the
    test workers), else all cores.
    ``claimed``: a region count or a list of patterns to compare against; a difference raises
    :class:`~exactrelu.errors.VerificationError` naming missing and spurious regions.
    ``max_regions``: stop with :class:`~exactrelu.errors.RegionLimitError` (its ``found``: how
    many regions were known to exist) as soon as more than that many regions are known to exist,
    so that memory stays what that many regions need: the exact engines (both) count certified
    regions and the cells still to split (each holds one region at least); the float trace,
    which may propose a few spurious candidates near ties, stops at twice as many.
    Domains are limited in size (bounded: 10 dimensions; see :mod:`exactrelu.domain`); every
    argument is checked before any work.

    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0], [1.0]]))
    ...     _ = net[0].bias.copy_(torch.tensor([0.0, -0.5]))
    >>> verify(net, [(-1, 1)], progress=False).num_regions
    3
    """
    __tracebackhide__ = _claim_failed
    t0 = time.perf_counter()
    input_shape, workers, max_regions = _arguments(input_shape, executor, workers, claimed,
                                                   progress, engine, max_regions)
    if workers is None:
        workers = env_workers()
    progress = bool(progress)
    prog, dom = _program_and_domain(net, domain, input_shape)
    fast = None
    if engine != "python" and executor is None:
        got = _fastpath.explain(prog, dom)
        if isinstance(got, str) and engine == "compiled":
            raise InvalidInputError(f"engine='compiled': {got}; use engine='python' (or 'auto')")
        fast = got if not isinstance(got, str) else None
    tr = trace
    if tr is None and not dom.is_bounded:
        log.info("unbounded domain: no float trace, the exact layer enumerates every cell itself")
    elif tr is None:
        try:
            from .trace import trace as float_trace
            tr = float_trace(prog, dom, progress=progress,
                             max_regions=None if max_regions is None else 2 * max_regions)
        except ImportError:
            tr = None
        except RegionLimitError as exc:
            raise RegionLimitError(f"more than max_regions={max_regions:,} regions, most likely: "
                                   f"the float trace proposed {exc.found:,} candidates (it stops "
                                   "at twice max_regions)", exc.found) from None
        except (ExactReluError, RuntimeError, ArithmeticError, ValueError, IndexError,
                AssertionError) as exc:
            # the float trace only proposes; exact repair covers for a failure of its own (any
            # other exception, e.g. from a signal handler that stops the run, is the caller's)
            log.warning("float trace failed (%s); certifying from exact seeds only", exc)
            tr = None
    t1 = time.perf_counter()
    n_float = tr.num_regions if tr is not None else 0
    if fast is not None:
        threads = workers or os.cpu_count() or 1
        try:
            regions, vertices, adjacency, pieces, st = _fastpath.certify(
                prog, dom, fast, tr, threads, progress, max_regions)
        except CertificationError as exc:
            raise _naming_rules(exc, prog) from None
        del tr
        t2 = time.perf_counter()
        cert = _certificate(prog, dom, regions, vertices, adjacency, pieces, st)
        return _finish(cert, "compiled", (t0, t1, t2, time.perf_counter()), n_float, claimed)
    own = None
    if executor is None and (workers or os.cpu_count() or 1) > 1 \
            and n_float >= PARALLEL_THRESHOLD and workers != 1:
        own = cf.ProcessPoolExecutor(max_workers=workers or os.cpu_count(),
                                     initializer=_ignore_sigint)
        executor = own
    with certify.paused_gc():
        tree = certify.candidate_tree(tr) if tr is not None else None
        if trace is None:
            del tr  # a trace made here is only memory once its proposals are in the tree
        built = _Regions()
        try:
            _, stats, _root = certify.run(prog, dom, tree, executor, workers, progress=progress,
                                         sink=built.add, max_regions=max_regions)
        except BaseException as exc:
            if own is not None:
                _stop(own)
            if isinstance(exc, CertificationError):
                raise _naming_rules(exc, prog) from None
            raise
        if own is not None:
            own.shutdown()
        t2 = time.perf_counter()
        cert = _assemble(prog, dom, built, stats)
        t3 = time.perf_counter()
    return _finish(cert, "python", (t0, t1, t2, t3), n_float, claimed)


def _naming_rules(exc: CertificationError, prog: Program) -> CertificationError:
    """``exc`` naming the program's rules that are not exactrelu's own (the likely culprits)."""
    own = sorted({f"{type(nd.rule).__qualname__} for {type(nd.module).__qualname__}"
                  for nd in prog.nodes if type(nd.rule).__module__.split(".")[0] != "exactrelu"})
    return CertificationError(exc.detail, own) if own and not exc.rules else exc


def _ignore_sigint() -> None:
    """In a worker of verify's own pool: Ctrl-C is the caller's to handle (it stops the pool);
    a worker interrupted while idle would print a traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _stop(pool: cf.ProcessPoolExecutor) -> None:
    """Stop a process pool at once (an error or Ctrl-C here): pending work is cancelled and the
    workers are terminated rather than waited for. ``_processes`` is the executor's own table
    of its worker processes (CPython 3.8 to 3.13)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        p.terminate()
    for p in procs:
        p.join(1)


def _finish(cert: Certificate, engine: str, times: tuple, n_float: int,
            claimed: Any) -> Certificate:
    """Statistics common to both engines, then the claim (if any) checked."""
    __tracebackhide__ = _claim_failed
    t0, t1, t2, t3 = times
    cert.stats["seconds"] = {"trace": t1 - t0, "exact": t2 - t1, "assemble": t3 - t2,
                             "total": t3 - t0}
    cert.stats["float_regions"] = n_float
    cert.stats["engine"] = engine
    if claimed is not None:
        compare_claim(cert, claimed)
    return cert


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


def _assemble(prog: Program, dom: Domain, built: _Regions, stats: certify.Stats) -> Certificate:
    """The certificate of the regions in ``built``."""
    regions, vertices = built.regions, built.vertices
    offsets = certify.constraint_offsets(prog, dom)
    units = []
    for j in range(prog.num_piecewise):
        nd = prog.nodes[prog.piecewise[j]]
        units.append(math.prod(nd.out_shape) if nd.piecewise_rule.sign_cells else None)
    adjacency = find_adjacency(regions, vertices, dom.dim, offsets, units)
    pieces = _pieces(regions, adjacency)
    st = {k: getattr(stats, k) for k in ("candidates", "confirmed", "spurious", "repaired",
                                         "witness_lp", "redo_hv", "cells")}
    return _certificate(prog, dom, regions, vertices, adjacency, pieces, st)


def _certificate(prog: Program, dom: Domain, regions: list[Region], vertices: list,
                 adjacency: list[Adjacency], pieces: list[int], st: dict) -> Certificate:
    from . import __version__

    return Certificate(dom, prog.input_shape, prog.output_shape, prog.digest(),
                       certify.constraint_offsets(prog, dom), regions, vertices, adjacency, pieces,
                       prog.notes(), __version__, st)


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
    ``j0`` except on the units vanishing there. A facet with a domain constraint lies on the
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
                     if _faces_overlap(p[1], m[1], regions[p[0]], regions[m[0]], exact)]
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
            pairs = _overlapping_facets(plus[0][1].a, plus, minus, regions, exact, keys, d, plane)
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
            elif d == 3 or _faces_overlap(f, g, regions[ri], regions[rj], vertices):
                out.append(((ri, f), (rj, g)))
    return out


def _faces_overlap(f: RegionFacet, g: RegionFacet, ri: Region, rj: Region,
                   vertices: list[tuple]) -> bool:
    """Do two facets on one hyperplane share a (d-1)-dimensional piece? (exact LP, d >= 3)."""
    a, b = f.a, f.b
    k = next(i for i, v in enumerate(a) if v != 0)
    d = len(a)
    # t_k = (b - sum_{i != k} a_i t_i) / a_k ; substitute into the other facets of both regions.
    rows, rhs = [], []
    for reg, own in ((ri, f), (rj, g)):
        for h in reg.facets:
            if h is own:
                continue
            coef = [h.a[i] - h.a[k] * a[i] / a[k] for i in range(d) if i != k]
            r = h.b - h.a[k] * b / a[k]
            if all(c == 0 for c in coef):
                if r < 0:
                    return False
                continue
            rows.append(coef)
            rhs.append(r)
    ip = _polyhedra.interior_point(rows, rhs, dim=d - 1)
    return ip is not None and ip[1] > 0


def _pieces(regions: list[Region], adjacency: list[Adjacency]) -> list[int]:
    parent = list(range(len(regions)))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a in adjacency:
        if regions[a.i].output == regions[a.j].output:
            ri, rj = find(a.i), find(a.j)
            if ri != rj:
                parent[max(ri, rj)] = min(ri, rj)
    roots: dict[int, int] = {}
    return [roots.setdefault(find(i), len(roots)) for i in range(len(regions))]


def compare_claim(cert: Certificate, claimed: Any) -> None:
    """Raise VerificationError when ``claimed`` (a count or list of patterns) differs: the counts,
    then the first regions missing from the claim (witnesses as decimals beside their exact
    values) and the first claimed patterns no region has."""
    __tracebackhide__ = _claim_failed
    if isinstance(claimed, (int, np.integer)) and not isinstance(claimed, bool):
        if claimed != cert.num_regions:
            raise VerificationError(f"claimed region count {show(int(claimed))}, certified "
                                    f"{cert.num_regions} regions ({cert.num_pieces} linear pieces) "
                                    f"on {cert.domain!r}")
        return
    try:
        claims = [_flat_pattern(p) for p in claimed]
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError("claimed must be a region count or a list of activation "
                                "patterns") from None
    have = {tuple(x for s in r.pattern for x in s): r for r in cert.regions}
    n = len(next(iter(have)))
    for k, c in enumerate(claims):
        if len(c) != n:
            raise InvalidInputError(f"claimed pattern {k} has {len(c)} states; the network's "
                                    f"patterns have {n} (one per unit of each piecewise op, in "
                                    "order)")
    want = set(claims)
    missing = [have[k] for k in have if k not in want]
    spurious = list(dict.fromkeys(k for k in claims if k not in have))  # in the claim's order
    if missing or spurious:
        lines = [f"claimed {len(want)} patterns, certified {cert.num_regions} regions on "
                 f"{cert.domain!r}"]
        for r in missing[:SHOWN]:
            lines.append(f"  missing: region {r.index} (certified, not claimed), pattern "
                         f"{pattern_text(r.pattern)}, witness "
                         f"({', '.join(approx(v) for v in r.witness)})")
        sizes = [len(s) for s in next(iter(have.values())).pattern]
        for pat in spurious[:SHOWN]:
            parts, at = [], 0
            for size in sizes:
                parts.append(list(pat[at:at + size]))
                at += size
            lines.append(f"  spurious: pattern {pattern_text(parts)} (claimed; no "
                         "full-dimensional region has it)")
        more = len(missing) + len(spurious) - min(SHOWN, len(missing)) - min(SHOWN, len(spurious))
        if more > 0:
            lines.append(f"  ... and {more} more")
        raise VerificationError("\n".join(lines))


#: How many missing and how many spurious regions a failed claim lists.
SHOWN = 5


def pattern_text(pattern: Sequence[Sequence[int]]) -> str:
    """A pattern for a message: each op's states as digits (commas where a state has more than
    one), ops separated by ``|``; e.g. ``0110|10``."""
    out = []
    for states in pattern:
        states = list(states)
        wide = any(not 0 <= v <= 9 for v in states)
        out.append((",".join if wide else "".join)(str(v) for v in states))
    return "|".join(out)


def _flat_pattern(p: Any) -> tuple[int, ...]:
    if isinstance(p, torch.Tensor):
        return tuple(int(v) for v in p.reshape(-1).tolist())
    if isinstance(p, (list, tuple)) and p and isinstance(p[0], (list, tuple, torch.Tensor)):
        out: list[int] = []
        for s in p:
            out.extend(_flat_pattern(s))
        return tuple(out)
    return tuple(int(v) for v in p)
