"""``exactrelu.verify``: float trace, exact certification, certificate."""

from __future__ import annotations

import bisect
import concurrent.futures as cf
import logging
import math
import os
import time
from fractions import Fraction
from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from flint import fmpq

from . import _polyhedra, certify
from .capture import Program, capture
from .certificate import Adjacency, Certificate, Region, RegionFacet, canonical_hyperplane
from .domain import Domain, Slice, as_domain
from .errors import InvalidInputError, VerificationError

log = logging.getLogger(__name__)

# Below this many float regions a process pool costs more (start-up, shipping the model) than it saves.
PARALLEL_THRESHOLD = 3000


def _program_and_domain(net: nn.Module | Program, domain: Any, input_shape: Sequence[int] | None) -> tuple[Program, Domain]:
    """The captured program and the domain; the input shape comes from ``input_shape``, a Slice, a
    Program, or the domain's dimension (a flat input); for ``domain=None`` without any of those,
    from a leading ``nn.Linear``."""
    if isinstance(domain, Slice):
        shape: tuple[int, ...] = tuple(domain.input_shape)
        dom: Domain = domain
    else:
        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
        elif isinstance(net, Program):
            shape = net.input_shape
        elif domain is None:
            first = next(iter(net.children()), None) if isinstance(net, nn.Sequential) else None
            if not isinstance(first, nn.Linear):
                raise InvalidInputError("domain=None (all of R^d) needs the input size: pass input_shape=(d,) "
                                        "or RealSpace(d)")
            shape = (first.in_features,)
        else:
            shape = ()
        dom = as_domain(domain, math.prod(shape) if shape else None)
        shape = shape or (dom.dim,)
    prog = net if isinstance(net, Program) else capture(net, shape)
    if not isinstance(dom, Slice) and prog.in_dim != dom.dim:
        raise InvalidInputError(f"the domain has dimension {dom.dim} but the network takes {prog.in_dim} inputs; "
                                "pass one (lo, hi) pair per input, or a Slice for a higher-dimensional input")
    return prog, dom


def verify(net: nn.Module | Program, domain: Any, *, input_shape: Sequence[int] | None = None,
           executor: cf.Executor | None = None, workers: int | None = None, claimed: Any = None,
           progress: bool = True, trace: Any = None) -> Certificate:
    """Certify the linear regions of ``net`` on ``domain`` in exact rational arithmetic.

    ``domain``: a list of (lo, hi) pairs, a :class:`~exactrelu.domain.Domain`. ``executor``: any
    ``concurrent.futures.Executor`` for the exact work (e.g. Dask's ``client.get_executor()``);
    by default a process pool over ``workers`` (all cores) for large traces, in-process otherwise.
    ``claimed``: a region count or a list of patterns to compare against; a difference raises
    :class:`~exactrelu.errors.VerificationError` naming missing and spurious regions.

    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     net[0].weight.copy_(torch.tensor([[1.0], [1.0]])); net[0].bias.copy_(torch.tensor([0.0, -0.5]))
    >>> verify(net, [(-1, 1)], progress=False).num_regions
    3
    """
    t0 = time.perf_counter()
    prog, dom = _program_and_domain(net, domain, input_shape)
    tr = trace
    if tr is None and not dom.is_bounded:
        log.info("unbounded domain: no float trace, the exact layer enumerates every cell itself")
    elif tr is None:
        try:
            from .trace import trace as float_trace
            tr = float_trace(prog, dom, progress=progress)
        except ImportError:
            tr = None
        except Exception as exc:  # the float trace only proposes; exact repair covers for it
            log.warning("float trace failed (%s); certifying from exact seeds only", exc)
            tr = None
    t1 = time.perf_counter()
    own = None
    n_float = tr.num_regions if tr is not None else 0
    if executor is None and (workers or os.cpu_count() or 1) > 1 and n_float >= PARALLEL_THRESHOLD and workers != 1:
        own = cf.ProcessPoolExecutor(max_workers=workers or os.cpu_count())
        executor = own
    try:
        leaves, stats, root = certify.run(prog, dom, tr, executor, workers, progress=progress)
    finally:
        if own is not None:
            own.shutdown()
    t2 = time.perf_counter()
    cert = _assemble(prog, dom, leaves, stats)
    t3 = time.perf_counter()
    cert.stats["seconds"] = {"trace": t1 - t0, "exact": t2 - t1, "assemble": t3 - t2, "total": t3 - t0}
    cert.stats["float_regions"] = n_float
    if claimed is not None:
        compare_claim(cert, claimed)
    return cert


def _assemble(prog: Program, dom: Domain, leaves: list, stats: certify.Stats) -> Certificate:
    from . import __version__

    vindex: dict[tuple, int] = {}
    vertices: list[tuple[Fraction, ...]] = []

    seen: dict[int, tuple[tuple, int]] = {}  # leaves share vertex tuples: by identity first

    def vid(v: tuple) -> int:
        got = seen.get(id(v))
        if got is not None and got[0] is v:
            return got[1]
        key = tuple((c.numerator, c.denominator) for c in v)  # hashing ints is cheaper than Fractions
        k = vindex.get(key)
        if k is None:
            k = vindex[key] = len(vertices)
            vertices.append(v)
        seen[id(v)] = (v, k)
        return k

    regions = []
    for i, lf in enumerate(leaves):
        ids = [vid(v) for v in lf.vertices]
        facets = [RegionFacet(a, b, fid, tuple(ids[k] for k in fv), fr) for a, b, fid, fv, fr in lf.facets]
        regions.append(Region(i, [list(s) for s in lf.states], lf.witness, facets, ids, lf.output, lf.volume,
                              lf.repaired, lf.rays, lf.lines))
    offsets = certify.constraint_offsets(prog, dom)
    units = []
    for j in range(prog.num_piecewise):
        nd = prog.nodes[prog.piecewise[j]]
        units.append(math.prod(nd.out_shape) if nd.rule.sign_cells else None)
    adjacency = find_adjacency(regions, vertices, dom.dim, offsets, units)
    pieces = _pieces(regions, adjacency)
    st = {k: getattr(stats, k) for k in ("candidates", "confirmed", "spurious", "repaired", "witness_lp", "redo_hv", "cells")}
    return Certificate(dom, prog.input_shape, prog.output_shape, prog.digest(), certify.constraint_offsets(prog, dom),
                       regions, vertices, adjacency, pieces, prog.notes(), __version__, st)


def find_adjacency(regions: list[Region], vertices: list[tuple], d: int, offsets: Sequence[int] | None = None,
                   units: Sequence[int | None] | None = None) -> list[Adjacency]:
    """Pairs of regions whose closures share a (d-1)-face (exact).

    Facets are grouped by their hyperplane and, with the constraint ``offsets`` of the certificate,
    further by what two regions sharing a (d-1)-piece of that hyperplane must have in common. Let
    ``j0`` be the first op with a constraint vanishing on a facet. At a generic point ``c`` of the
    shared piece no constraint of an earlier op vanishes (it would vanish on the whole facet), so
    both regions have the same states before ``j0``; for an op whose cells are the sign vectors of
    its switching functions (``units[j0]`` = its number of units, None otherwise) they also agree at
    ``j0`` except on the units vanishing there. A facet with a domain constraint lies on the domain's
    boundary and has no region across."""
    exact = vertices
    vertices = [tuple(fmpq(c.numerator, c.denominator) for c in v) for v in exact]  # fast rationals
    Vf = _nearest_floats(vertices, d)
    groups: dict[tuple, list[tuple[int, int, RegionFacet]]] = {}
    for r in regions:
        pat = [tuple(s) for s in r.pattern]
        for f in r.facets:
            if offsets is not None and f.ids and min(f.ids) < offsets[0]:
                continue  # on the domain's boundary
            key, side = _hyperplane_key(f.a, f.b)
            gk: tuple = key
            if offsets is not None and f.ids:
                low = min(f.ids)
                j0 = bisect.bisect_right(offsets, low) - 1
                n = units[j0] if units is not None and j0 < len(units) else None
                st: tuple = ()
                if n:
                    lo, hi = offsets[j0], offsets[j0 + 1]
                    masked = list(pat[j0])
                    for i in f.ids:
                        if lo <= i < hi:
                            masked[(i - lo) % n] = -1
                    st = tuple(masked)
                gk = (key, j0, tuple(pat[:j0]), st)
            groups.setdefault(gk, []).append((side, r.index, f))
    out: list[tuple[int, int, RegionFacet, RegionFacet]] = []
    for gk, items in groups.items():
        plus = [(ri, f) for s, ri, f in items if s > 0]
        minus = [(ri, f) for s, ri, f in items if s < 0]
        if not plus or not minus:
            continue
        if d > 1 and any(f.rays or regions[ri].lines for _, ri, f in items):
            # unbounded facets on this hyperplane: decide every pair by the exact LP
            pairs = [(p, m) for p in plus for m in minus
                     if _faces_overlap(p[1], m[1], regions[p[0]], regions[m[0]], vertices)]
        elif d == 1:
            pairs = [(p, m) for p in plus for m in minus]
        elif d == 2:
            # Collinear sides overlap iff their spans along one coordinate the line does not fix
            # overlap with positive length. Spans are compared in float64 first: rounding to
            # nearest is monotone, so a strict inequality between the floats of two rationals is
            # the same strict inequality between the rationals; equal floats are compared exactly.
            c = 0 if items[0][2].a[1] != 0 else 1
            span, less = _span_tests(Vf, vertices, c)
            ms = sorted(((span(f), ri, f) for ri, f in minus), key=lambda t: t[0][0])
            pairs = []
            for ri, f in plus:
                lo, hi, klo, khi = span(f)
                for (mlo, mhi, kmlo, kmhi), rj, g in ms:
                    if mlo > hi:
                        break
                    if less(mlo, kmlo, hi, khi) and less(lo, klo, mhi, kmhi):
                        pairs.append(((ri, f), (rj, g)))
        else:
            pairs = _overlapping_facets(plus[0][1].a, plus, minus, regions, vertices, Vf, d)
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
        adjacency.append(Adjacency(i, j, a, b, tuple(sorted(set(f.ids) | set(g.ids)))))
    return adjacency


def _span_tests(Vf: np.ndarray, vertices: list[tuple], c: int) -> tuple[Any, Any]:
    """For collinear sides in 2-D: their (float) span along coordinate ``c`` with the vertices at
    its ends, and an exact strict comparison of two ends decided in float where floats differ."""

    def span(f: RegionFacet) -> tuple[float, float, int, int]:
        ks = f.vertices
        lo = min(ks, key=lambda k: Vf[k, c])
        hi = max(ks, key=lambda k: Vf[k, c])
        return Vf[lo, c], Vf[hi, c], lo, hi

    def less(x: float, kx: int, y: float, ky: int) -> bool:
        return x < y or (x == y and vertices[kx][c] < vertices[ky][c])

    return span, less


def _hyperplane_key(a: Sequence[Fraction], b: Fraction) -> tuple[tuple[int, ...], int]:
    """(primitive integer row (a, b) with the first non-zero entry of a positive, side): a hashable
    key of the hyperplane that is cheap to build; side is the sign of that entry in ``a``."""
    vals = list(a) + [b]
    den = math.lcm(*(v.denominator for v in vals))
    ints = [v.numerator * (den // v.denominator) for v in vals]
    side = next((1 if v > 0 else -1 for v in ints[:-1] if v != 0), 0)
    if side == 0:
        raise VerificationError("a facet with a zero normal")
    g = math.gcd(*ints) * side
    return tuple(v // g for v in ints), side


def _nearest_floats(vertices: list[tuple], d: int) -> np.ndarray:
    """(n, d) float64: the nearest float of every exact coordinate (int / int is correctly
    rounded; +-inf where it overflows, which keeps the order)."""
    out = np.empty((len(vertices), d), dtype=np.float64)
    for k, v in enumerate(vertices):
        for i, c in enumerate(v):
            try:
                out[k, i] = int(c.p) / int(c.q)
            except OverflowError:
                out[k, i] = math.inf if c > 0 else -math.inf
    return out


def _overlapping_facets(a: Sequence[Fraction], plus: list, minus: list, regions: list[Region], vertices: list[tuple],
                        Vf: np.ndarray, d: int) -> list:
    """d >= 3: pairs of facets on one hyperplane (opposite sides) sharing a (d-1)-dim piece.

    Bounding boxes first: boxes whose exact extents along a coordinate the hyperplane does not fix
    are disjoint or touching cannot share a (d-1)-dim piece. The boxes are compared in float64,
    where a strict inequality between nearest floats is the same strict inequality between the
    rationals (rounding is monotone); only equal floats are compared exactly. Then d affinely
    independent shared vertices (a shared (d-1)-simplex), and for what is still undecided an exact
    separating-line test (3-D) or an exact LP.

    3-D: two convex polygons on the plane H share positive area unless a line of H separates them,
    and such a line can be taken through an edge of one of them (separating axis theorem). An edge
    line of the facet of region ``a`` is H cut by another facet ``h`` of ``a``; the other polygon
    lies beyond it iff all its vertices satisfy ``a_h . x >= b_h``. So the pair is separated iff
    some other facet of either region has all the other polygon's vertices on or beyond it.
    """
    free = [i for i in range(d) if any(a[k] != 0 for k in range(d) if k != i)]

    def box(f: RegionFacet) -> list[tuple[float, float, int, int]]:
        ks = list(f.vertices)
        sub = Vf[ks]
        lo, hi = sub.argmin(axis=0).tolist(), sub.argmax(axis=0).tolist()
        return [(float(sub[lo[i], i]), float(sub[hi[i], i]), ks[lo[i]], ks[hi[i]]) for i in range(d)]

    def apart(x: tuple, y: tuple, i: int) -> bool:
        """Is the exact upper end of ``x`` at most the exact lower end of ``y`` (coordinate i)?"""
        if x[1] != y[0]:
            return x[1] < y[0]
        return vertices[x[3]][i] <= vertices[y[2]][i]

    mboxes = [(box(g), rj, g) for rj, g in minus]
    rows: dict[int, list[tuple]] = {}

    def others(ri: int, f: RegionFacet) -> list[tuple]:
        """The region's other facets as exact (a, b) in fmpq."""
        got = rows.get(id(f))
        if got is None:
            got = rows[id(f)] = [(tuple(fmpq(v.numerator, v.denominator) for v in h.a),
                                  fmpq(h.b.numerator, h.b.denominator)) for h in regions[ri].facets if h is not f]
        return got

    def beyond(hs: list[tuple], ks: Sequence[int]) -> bool:
        """Is every vertex ``ks`` on or beyond one of the rows ``hs``?"""
        pts = [vertices[k] for k in ks]
        for ah, bh in hs:
            if all(ah[0] * p[0] + ah[1] * p[1] + ah[2] * p[2] >= bh for p in pts):
                return True
        return False

    out = []
    for ri, f in plus:
        fb = box(f)
        fset = set(f.vertices)
        for gb, rj, g in mboxes:
            if any(apart(fb[i], gb[i], i) or apart(gb[i], fb[i], i) for i in free):
                continue
            shared = fset.intersection(g.vertices)
            # 3-D: three vertices of a convex polygon are never collinear (they are extreme points)
            if len(shared) >= d and (d == 3 or _affine_rank([vertices[k] for k in shared]) == d - 1):
                out.append(((ri, f), (rj, g)))
            elif d == 3:
                if not beyond(others(ri, f), g.vertices) and not beyond(others(rj, g), f.vertices):
                    out.append(((ri, f), (rj, g)))
            elif _faces_overlap(f, g, regions[ri], regions[rj], vertices):
                out.append(((ri, f), (rj, g)))
    return out


def _affine_rank(points: list[tuple]) -> int:
    import flint

    base = points[0]
    rows = [[p[i] - base[i] for i in range(len(base))] for p in points[1:]]
    m = flint.fmpq_mat(len(rows), len(base), [v for r in rows for v in r])
    return m.rank()


def _faces_overlap(f: RegionFacet, g: RegionFacet, ri: Region, rj: Region, vertices: list[tuple]) -> bool:
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
    """Raise VerificationError when ``claimed`` (a count or list of patterns) differs."""
    if isinstance(claimed, (int,)) and not isinstance(claimed, bool):
        if claimed != cert.num_regions:
            raise VerificationError(f"claimed {claimed} regions, certified {cert.num_regions} "
                                    f"({cert.num_pieces} linear pieces) on {cert.domain!r}")
        return
    try:
        claims = [_flat_pattern(p) for p in claimed]
    except TypeError:
        raise InvalidInputError("claimed must be a region count or a list of activation patterns") from None
    have = {tuple(x for s in r.pattern for x in s): r for r in cert.regions}
    want = set(claims)
    missing = [have[k] for k in have if k not in want]
    spurious = [k for k in want if k not in have]
    if missing or spurious:
        lines = [f"claimed {len(want)} patterns, certified {cert.num_regions} regions"]
        for r in missing[:20]:
            lines.append(f"  missing: region {r.index}, witness {[str(v) for v in r.witness]}")
        for k in spurious[:20]:
            lines.append(f"  spurious: pattern {''.join(map(str, k))} (no full-dimensional region has it)")
        more = len(missing) + len(spurious) - min(20, len(missing)) - min(20, len(spurious))
        if more > 0:
            lines.append(f"  ... and {more} more")
        raise VerificationError("\n".join(lines))


def _flat_pattern(p: Any) -> tuple[int, ...]:
    if isinstance(p, torch.Tensor):
        return tuple(int(v) for v in p.reshape(-1).tolist())
    if isinstance(p, (list, tuple)) and p and isinstance(p[0], (list, tuple, torch.Tensor)):
        out: list[int] = []
        for s in p:
            out.extend(_flat_pattern(s))
        return tuple(out)
    return tuple(int(v) for v in p)
