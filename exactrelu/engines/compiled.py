"""The compiled engine: when it applies, its input, and the :class:`Complex` of its output.

``exactrelu._core`` (C++ and GMP, built from ``exactrelu/_core.cpp`` at install time) certifies
the networks most studies use, a chain ``affine -> (elementwise op -> affine)*`` (Linear, Conv,
BatchNorm, pooling by averages, Flatten and the like between ReLU, LeakyReLU or Hardtanh) on a
2-D to 6-D domain (a box, a polytope or a slice through inputs; all of R^d, an unbounded
polyhedron (a cell of a split run), or a slice over either, through a box that holds every
vertex: see :func:`_vertex_bound` and :func:`_unboxed`),
with the same algorithm as the pure-Python arrangement path of :mod:`exactrelu.certify` and the
same complex (compared by :func:`exactrelu.engines.canonical` in ``tests/test_engines.py``,
entry by entry in ``tests/test_fastpath.py``); exact volumes up to 3-D, as there. Everything
else (other ops, other dimensions, an explicit executor) goes to the Python engine. The core
returns plain data keyed as the fields of :class:`Complex`: index data as bytes of native int64
(wrapped by ``numpy.frombuffer`` without a copy), each op's distinct states as bytes (bits when
they are all 0 or 1, else int8), rationals as lists of Python ints; never Python objects of the
certificate.

The float trace is not needed by the compiled layer (its cuts partition each parent, so its
children are complete by construction); it is only compared with the result afterwards, to count
what it proposed wrongly (``spurious``) and what it missed (``repaired``), as the Python path does.

>>> import torch
>>> from torch import nn
>>> from exactrelu.capture import capture
>>> from exactrelu.domain import as_domain
>>> torch.manual_seed(0) and None
>>> net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
>>> plan(capture(net, (2,)), as_domain([(-1, 1), (-1, 1)])) is not None or _core is None
True
"""

from __future__ import annotations

import itertools
import math
import os
from dataclasses import dataclass, replace
from fractions import Fraction
from typing import Any, cast

import numpy as np

from .. import _deps, _exact
from .._columns import StateTable
from .._geometry import full_on_hyperplane, integer_ray_normal_form, recession_generators
from .._progress import _Silent, progress_bar
from .._runtime import paused_gc
from ..capture import INPUT, Program, constraint_offsets
from ..certify import root_cell, root_live
from ..domain import Box, Domain, Polytope, Slice
from ..errors import CertificationError, MissingDependencyError, RegionLimitError
from ..rules import AffineRule, ElementwiseRule, ReshapeRule, exact_cache, plain_elementwise
from ._complex import Complex, Ragged, Rationals, joined
from ._interface import Options, Proposals

_core = _deps.core  # None when not built: the Python exact layer does everything

#: The largest input dimension of the compiled engine (DMAX in exactrelu/_core.cpp).
MAX_DIM = 6

__all__ = ["CompiledEngine", "available", "certify", "explain", "plan"]


def available() -> bool:
    """Is the compiled exact layer built and importable?"""
    return _core is not None


@dataclass
class Plan:
    """What the compiled layer needs besides the root cell: per piecewise op, its units, its
    thresholds, its states' integer slopes and constants over ``sa``, the id of its first
    switching function, and the affine layer after it as integers ``[Az | az] / dA``."""

    levels: list[tuple]
    box: Domain | None = None  # an unbounded domain: the box the core runs on (_bounding_box)


def _elementwise(nd: Any) -> bool:
    rule = nd.rule
    if not plain_elementwise(rule) or len(nd.inputs) != 1:
        return False
    ts = rule.thresholds(nd.module)
    return len(ts) == 1 or (len(ts) == 2 and ts[0] < ts[1])


def _segment(prog: Program, lo: int, hi: int) -> list[int] | None:
    """The nodes ``lo+1 .. hi-1`` after piecewise node ``lo`` if they form a chain of affine and
    reshape layers, each read only by the next (the last by node ``hi`` or as the output)."""
    chain = list(range(lo + 1, hi))
    prev = lo
    for i in chain:
        nd = prog.nodes[i]
        fwd = type(nd.rule).exact_forward
        if fwd is not AffineRule.exact_forward and fwd is not ReshapeRule.exact_forward:
            return None
        if list(nd.inputs) != [prev] or prog._last_use[prev] != i:
            return None
        prev = i
    return chain


def _int_affine(prog: Program, chain: list[int],
                n_in: int) -> tuple[list[int], int, list[int] | None, int]:
    """The composition of the affine layers ``chain`` as integers: (Az row-major, n_out, az or
    None when zero, dA) with ``[A | a] = [Az | az] / dA`` exactly."""
    affine = [i for i in chain
              if type(prog.nodes[i].rule).exact_forward is AffineRule.exact_forward]
    if not affine:
        return [int(r == c) for r in range(n_in) for c in range(n_in)], n_in, None, 1
    if len(affine) == 1:
        nd = prog.nodes[affine[0]]
        cache = exact_cache(nd.module)
        key = ("fastpath-int", tuple(nd.in_shapes[0]))
        hit = cache.get(key)
        if hit is None:
            hit = cache[key] = _integers(_exact_affine(nd))
        return hit
    first = _exact_affine(prog.nodes[affine[0]])
    A, a = first.A, _exact.fmpq_mat(len(first.a), 1, first.a)
    for i in affine[1:]:
        aff = _exact_affine(prog.nodes[i])
        A, a = aff.A * A, aff.A * a + _exact.fmpq_mat(len(aff.a), 1, aff.a)
    return _integers(_exact.ExactAffine(A, a.entries()))


def _exact_affine(nd: Any) -> _exact.ExactAffine:
    """The exact map of an affine node (its rule's exact_forward is AffineRule's)."""
    return cast(AffineRule, nd.rule).exact_affine(nd.module, tuple(nd.in_shapes[0]))


def _integers(aff: Any) -> tuple[list[int], int, list[int] | None, int]:
    n_out, n_in = aff.A.nrows(), aff.A.ncols()
    aug = _exact.fmpq_mat(n_out, n_in + 1, [v for r, c in zip(aff.A.tolist(), aff.a, strict=True)
                                            for v in (*r, c)])
    N, den = aug.numer_denom()
    flat = [int(v) for v in N.entries()]
    Az = [v for r in range(n_out) for v in flat[r * (n_in + 1): r * (n_in + 1) + n_in]]
    az = [flat[r * (n_in + 1) + n_in] for r in range(n_out)]
    return Az, n_out, (az if any(az) else None), int(den)


def plan(prog: Program, domain: Domain) -> Plan | None:
    """The compiled layer's plan for ``prog`` on ``domain``, or None where it does not apply."""
    got = explain(prog, domain)
    return got if isinstance(got, Plan) else None


def explain(prog: Program, domain: Domain) -> Plan | str:
    """:func:`plan`, or a sentence saying why the compiled layer does not apply."""
    if _core is None:
        return _deps.core_missing()
    if not 2 <= domain.dim <= MAX_DIM:
        return (f"the compiled exact layer takes 2-D to {MAX_DIM}-D domains (this one: "
                f"{domain.dim}-D)")
    if not prog.piecewise:
        return "the network has no piecewise op"
    pw = prog.piecewise
    for i in pw:
        nd = prog.nodes[i]
        if not _elementwise(nd):
            return (f"{nd.name}: the compiled exact layer takes ReLU, LeakyReLU and "
                    "Hardtanh-like ops only")
        if cast(ElementwiseRule, nd.rule).unit_slopes(nd.module, nd.in_shapes[0]) is not None:
            return (f"{nd.name}: the compiled exact layer takes one set of slopes per op, not one "
                    "per unit (PReLU with a slope per channel)")
    # the first op's input must be all that the ops before it leave for later
    first = prog.nodes[pw[0]]
    if (first.inputs[0] != INPUT and prog._last_use[first.inputs[0]] != pw[0]) or \
            any(INPUT in prog.nodes[i].inputs for i in range(pw[0] + 1, len(prog.nodes))):
        return "the network is not a chain after its first piecewise op (a skip connection)"
    offsets = constraint_offsets(prog, domain)
    if not domain.is_bounded:  # the box's rows come first (_boxed)
        offsets = [o + 2 * domain.dim for o in offsets]
    levels = []
    for j, i in enumerate(pw):
        nd = prog.nodes[i]
        hi = pw[j + 1] if j + 1 < len(pw) else len(prog.nodes)
        chain = _segment(prog, i, hi)
        end = (chain[-1] if chain else i) if chain is not None else None
        if chain is None or (j + 1 < len(pw) and list(prog.nodes[hi].inputs) != [end]) or \
                (j + 1 == len(pw) and prog.output != end):
            return (f"after {nd.name}: the compiled exact layer takes chains of affine layers "
                    "between piecewise ops")
        n = math.prod(nd.in_shapes[0])
        rule, module = cast(ElementwiseRule, nd.rule), nd.module  # checked above
        ts = [Fraction(t) for t in rule.thresholds(module)]
        sc = [(Fraction(a), Fraction(c)) for a, c in rule.slopes_consts(module)]
        if len(sc) != len(ts) + 1:
            return f"{nd.name}: a state per interval between thresholds is expected"
        sa = math.lcm(*(v.denominator for pair in sc for v in pair))
        states = [(int(a * sa), int(c * sa)) for a, c in sc]
        Az, n_out, az, dA = _int_affine(prog, chain, n)
        levels.append((n, [(t.numerator, t.denominator) for t in ts], states, sa, offsets[j], Az,
                       n_out, az, dA))
    if not domain.is_bounded:
        return Plan(levels, _boxed(domain, _vertex_bound(prog, domain, levels)))
    return Plan(levels)


# ----------------------------------------------------------------------------- unbounded domains
#
# On an unbounded domain the core runs on a box [-M, M]^d (in the domain's coordinates) so large
# that it holds every vertex of the complex strictly inside, and meets every face of it (see
# _vertex_bound); the complex on the box is then the complex on the domain cut by the box, and
# _unboxed takes the box back out: its facets and the vertices on it go, rays and lines come in.


def _boxed(domain: Domain, M: int) -> Domain:
    """The unbounded ``domain`` (all of R^d, an unbounded polyhedron, or a slice over either)
    cut to the box [-M, M]^d: the box's ``2 d`` rows first, then the domain's."""
    box: Domain = Box([(-M, M)] * domain.dim)
    A, b = domain.halfspaces()
    if A:
        box_A, box_b = box.halfspaces()
        box = Polytope(box_A + A, box_b + b)
    if isinstance(domain, Slice):
        return Slice._from_exact(domain.input_shape, domain.origin, domain.directions, box)
    return box


def _vertex_bound(prog: Program, domain: Domain, levels: list[tuple]) -> int:
    """A power of two ``M`` with every vertex of the complex on the unbounded ``domain``
    strictly inside [-M, M]^d, and a point of every non-empty face of it there too.

    Every row of the domain, scaled to integers, and every switching function of every op on
    every activation pattern, scaled by its level's common denominator ``D_j``, is an integer
    row ``[a | c]``; bound their 1-norms by ``K``
    (level by level: the numerators of op ``j + 1``'s inputs are ``Az (a_s N + c_s D_j) + az sa
    D_j``, so their 1-norms are at most ``|Az|_row (a_max B_j + c_max D_j) + |az|_max sa D_j``).
    A vertex solves d of these rows with independent normals: by Cramer's rule its coordinates
    are ratios of integer determinants, the denominator at least 1 in absolute value and the
    numerator at most ``K^d`` (Hadamard). A face without vertex holds a point of its minimal face
    solving some of its rows with the other coordinates 0, bounded the same way. So ``M > K^d``
    does."""
    key = prog.nodes[prog.piecewise[0]].inputs[0]
    m = _exact.as_int(root_live(prog, domain)[key])
    B = max((sum(map(abs, r)) for r in m.N.tolist()), default=0)
    D = int(m.den)
    K = 1
    for a, c in zip(*domain.halfspaces(), strict=True):
        s = math.lcm(*(v.denominator for v in (*a, c)))
        K = max(K, int(sum(abs(v * s) for v in (*a, c))))
    for n, ts, states, sa, _off, Az, n_out, az, dA in levels:
        K = max(K, *(q * B + abs(p) * D for p, q in ts))
        a_max = max(abs(a) for a, _ in states)
        c_max = max(abs(c) for _, c in states)
        row = max((sum(map(abs, Az[u * n:(u + 1) * n])) for u in range(n_out)), default=0)
        B = row * (a_max * B + c_max * D) + max(map(abs, az or [0])) * sa * D
        D *= sa * dA
    return 1 << (int(K).bit_length() * domain.dim + 1)


def _ragged_keep(start: list[int], vals: np.ndarray, item: np.ndarray,
                 lists: np.ndarray) -> tuple[list[int], np.ndarray]:
    """The lists of the ragged ``(start, vals)`` that ``lists`` keeps, each with the items that
    ``item`` keeps: the new starts and values."""
    bounds = np.asarray(start, dtype=np.int64)
    owner = np.repeat(np.arange(len(start) - 1), bounds[1:] - bounds[:-1])
    m = item & lists[owner]
    counts = np.bincount(owner[m], minlength=len(start) - 1)[lists]
    return [0, *np.cumsum(counts).tolist()], vals[m]


def _int_normal(num: list[int], den: list[int]) -> tuple[int, ...]:
    """The rational vector ``num / den`` times the lcm of its denominators: integers."""
    s = math.lcm(*den)
    return tuple(p * (s // q) for p, q in zip(num, den, strict=True))


def _dot(a: tuple[int, ...], r: tuple) -> Any:
    return sum(x * y for x, y in zip(a, r, strict=True))


def _edge(normals: list[tuple[int, ...]], d: int) -> tuple[int, ...] | None:
    """The direction of the line where the hyperplanes with ``normals`` (all through one point)
    meet, up to sign (the integer null space of the normals), or None where they meet in more
    than a line."""
    Z, nullity = _exact.fmpz_mat([list(n) for n in normals]).nullspace()
    if nullity != 1:
        return None
    return tuple(int(row[0]) for row in Z.tolist())


def _unboxed(cx: Complex, nbox: int, M: int) -> Complex:
    """The complex on the unbounded domain from ``cx``, its cut to the box [-M, M]^d of
    :func:`_vertex_bound` (whose ``nbox`` halfspaces have the first constraint ids): without the
    box's facets and the vertices on it, constraint ids as on the domain, rays, lines and no
    volumes.

    A region is bounded iff it has no facet on the box. The rays of a pointed unbounded region
    are the directions of its unbounded edges, and every such edge leaves the box at a vertex on
    the box whose facets off the box meet in its line (a vertex on the box where they meet in
    more than a line lies on no edge): the direction is the line's, the sign the one the region's
    facets allow. A region with lines (rare: all its normals in a plane) takes
    :func:`~exactrelu._geometry.recession_generators` of its normals."""
    d, R = cx.d, cx.num_regions
    vn, vd = cx.vertices
    nv = len(vn) // d
    off = np.array([any(vd[k] == 1 and abs(vn[k]) == M for k in range(v * d, v * d + d))
                    for v in range(nv)], dtype=bool).reshape(nv)
    new = np.where(off, -1, np.cumsum(~off) - 1).astype(np.int64)
    keep_v = np.repeat(~off, d)
    vertices = Rationals(np.asarray(vn, dtype=object)[keep_v].tolist(),
                         np.asarray(vd, dtype=object)[keep_v].tolist())
    fi_start = np.asarray(cx.facet_ids.start, dtype=np.int64)
    fi_flat = np.asarray(cx.facet_ids.flat, dtype=np.int64)
    F = len(fi_start) - 1
    on_box = np.add.reduceat((fi_flat < nbox).astype(np.int64), fi_start[:-1]) if F else \
        np.zeros(0, dtype=np.int64)
    lengths = np.diff(fi_start)
    if ((on_box > 0) & (on_box < lengths)).any():
        raise CertificationError("a facet lies on the bounding box and on a unit's hyperplane "
                                 "(the box is too small)")
    kept = on_box == 0
    ids_start, ids_flat = _ragged_keep(cx.facet_ids.start, fi_flat - nbox,
                                       np.ones(len(fi_flat), dtype=bool), kept)
    fv_flat = np.asarray(cx.facet_vertices.flat, dtype=np.int64)
    fv_start, fv_new = _ragged_keep(cx.facet_vertices.start, new[fv_flat] if len(fv_flat) else
                                    fv_flat, (new[fv_flat] >= 0) if len(fv_flat) else
                                    np.zeros(0, dtype=bool), kept)
    rv_flat = np.asarray(cx.region_vertices.flat, dtype=np.int64)
    rv_start, rv_new = _ragged_keep(cx.region_vertices.start, new[rv_flat] if len(rv_flat) else
                                    rv_flat, (new[rv_flat] >= 0) if len(rv_flat) else
                                    np.zeros(0, dtype=bool), np.ones(R, dtype=bool))
    fs = np.asarray(cx.facet_start, dtype=np.int64)
    owner = np.repeat(np.arange(R), np.diff(fs))
    boxed = np.bincount(owner[~kept], minlength=R) > 0
    facet_start = [0, *np.cumsum(np.bincount(owner[kept], minlength=R)).tolist()]
    facet_row = np.asarray(cx.facet_row, dtype=np.int64)[kept].tolist()
    rn, rd = cx.rows
    normals: dict[int, tuple[int, ...]] = {}

    def normal(row: int) -> tuple[int, ...]:
        got = normals.get(row)
        if got is None:
            k = row * (d + 1)
            got = normals[row] = _int_normal(rn[k:k + d], rd[k:k + d])
        return got

    fv_s, fv_f = cx.facet_vertices
    off_l = off.tolist()
    has_vertex = [a < b for a, b in itertools.pairwise(rv_start)]
    ray_n: list[list[tuple[int, int]]] = [[] for _ in range(R)]  # (numerator, denominator)
    line_n: list[list[tuple[int, int]]] = [[] for _ in range(R)]
    n_rays, n_lines = [0] * R, [0] * R
    f_rays: dict[int, list[int]] = {}  # kept facet (new number) -> its rays
    new_f = (np.cumsum(kept) - 1).tolist()
    for r in np.nonzero(boxed)[0].tolist():
        own = [f for f in range(int(fs[r]), int(fs[r + 1])) if kept[f]]
        lines: list[tuple[Fraction, ...]] = []
        if has_vertex[r]:  # pointed (a region with lines has no vertex)
            at: dict[int, list[int]] = {}  # a vertex on the box -> the region's facets through it
            for f in own:
                for v in fv_f[fv_s[f]:fv_s[f + 1]]:
                    if off_l[v]:
                        at.setdefault(v, []).append(f)
            found: dict[tuple[int, ...], int] = {}  # primitive integer directions
            for v in sorted(at):
                e = _edge([normal(cx.facet_row[f]) for f in at[v]], d)
                if e is None:
                    continue  # on a face of dimension 2 or more of the region, not on an edge
                # w = v + t r leaves the box where |w_i| = M > 2 |v_i|: r_i has w_i's sign
                i = next(i for i in range(d) if vd[v * d + i] == 1 and abs(vn[v * d + i]) == M)
                if e[i] == 0:
                    raise CertificationError("an unbounded edge runs along the bounding box "
                                             "(the box is too small)")
                sg = 1 if (e[i] > 0) == (vn[v * d + i] > 0) else -1
                g = math.gcd(*e) * sg
                k = found.setdefault(tuple(x // g for x in e), len(found))
                # the facets through the edge are the facets through its point v on the box
                for f in at[v]:
                    got = f_rays.setdefault(new_f[f], [])
                    if k not in got:
                        got.append(k)
            ray_n[r] = [pq for e in found for pq in integer_ray_normal_form(e)]
            n_rays[r] = len(found)
        else:
            rays, lines = recession_generators([normal(cx.facet_row[f]) for f in own], d)
            for f in own:
                n = normal(cx.facet_row[f])
                on = [k for k, ray in enumerate(rays) if _dot(n, ray) == 0]
                if on:
                    f_rays[new_f[f]] = on
            ray_n[r] = [(x.numerator, x.denominator) for ray in rays for x in ray]
            line_n[r] = [(x.numerator, x.denominator) for ln in lines for x in ln]
            n_rays[r], n_lines[r] = len(rays), len(lines)
    nk = int(kept.sum())
    fr_counts = [len(f_rays.get(f, ())) for f in range(nk)]
    fr_start = [0, *itertools.accumulate(fr_counts)]
    fr_flat = [k for f in sorted(f_rays) for k in sorted(f_rays[f])]

    def per_region(vals: list[list[tuple[int, int]]], counts: list[int]
                   ) -> tuple[list[int], Rationals]:
        flat = [x for v in vals for x in v]
        return ([0, *itertools.accumulate(counts)],
                Rationals([p for p, _ in flat], [q for _, q in flat]))

    ai = np.asarray(cx.adj_ids.flat, dtype=np.int64)
    if (ai < nbox).any():
        raise CertificationError("two regions meet on the bounding box")
    stats = dict(cx.stats)
    if "vertices" in stats:
        stats["vertices"] = int((~off).sum())
    return replace(
        cx, vertices=vertices, region_vertices=Ragged(rv_start, rv_new.tolist()),
        facet_start=facet_start, facet_row=facet_row, facet_ids=Ragged(ids_start,
                                                                        ids_flat.tolist()),
        facet_vertices=Ragged(fv_start, fv_new.tolist()), facet_rays=Ragged(fr_start, fr_flat),
        volume=Rationals([0] * R, [0] * R), adj_ids=Ragged(cx.adj_ids.start, (ai - nbox).tolist()),
        rays=per_region(ray_n, n_rays), lines=per_region(line_n, n_lines), stats=stats)


def _root_spec(root: Any, key: Any, d: int) -> tuple:
    """The root cell for the compiled layer: its vertices as integer rows (x_1, .., x_d, W) (2-D:
    counter-clockwise), its facets as integer rows with their scales, ids and the positions of
    their vertices (2-D: facet k joins vertices k and k + 1), witness, volume and the exact map
    entering the first piecewise op."""
    verts = []
    for p in root.vertices:
        w = math.lcm(*(int(c.q) for c in p))
        verts.append((*(int(c.p) * (w // int(c.q)) for c in p), w))
    facets = []
    for f in root.facets:
        vals = [_exact.to_fmpq(v) for v in f.slack]
        scale = math.lcm(*(int(v.q) for v in vals)) * f.scale
        ints = [int(v.p) * (scale // (int(v.q) * f.scale)) for v in vals]
        facets.append((ints, scale, tuple(f.ids), tuple(f.vertices)))
    witness = [int(x) for q in map(_exact.to_fmpq, root.witness) for x in (q.p, q.q)]
    vol = _exact.to_fmpq(0 if root.volume is None else root.volume)  # None above 3-D
    m = _exact.as_int(root.live[key])
    return (verts, facets, witness, (int(vol.p), int(vol.q)), int(m.den),
            [v for r in m.rows for v in r])


def _proposals(trace: Any) -> list[tuple[bytes, bool]]:
    """The trace's states per op as the core reads them, rows of bytes and whether they are
    bits: a :class:`~exactrelu.trace.Trace`'s packed rows as it keeps them (bits for two-state
    ops), else (an object with ``patterns`` only) a byte per unit."""
    if hasattr(trace, "packed_states") and all(
            trace.state_bytes(j) <= 1 for j in range(len(trace.program.piecewise))):
        return [(np.ascontiguousarray(trace.packed_states(j).cpu().numpy()).tobytes(),
                 trace.state_bytes(j) == 0) for j in range(len(trace.program.piecewise))]
    out = []
    for p in trace.patterns:
        P = p.reshape(trace.num_regions, -1).cpu().numpy()
        if P.size and (P.min() < -128 or P.max() > 127):
            P = np.full_like(P, 127)  # states no elementwise op has: never a certified one
        out.append((np.ascontiguousarray(P.astype(np.int8)).tobytes(), False))
    return out


def _settle_undecided(out: dict[str, Any]) -> None:
    """Above 3-D, the core's adjacent pairs that its exact integer tests leave undecided (listed
    in ``out["undecided"]``) decided by the exact LP of
    :func:`~exactrelu._geometry.full_on_hyperplane` on both regions' facets, as the Python engine
    decides them: a pair whose facets share no (d-1)-piece is dropped; a pair kept joins the
    pieces of its regions where their output maps are equal (the core's pieces join only the
    pairs it decided). Pieces stay numbered by their first region."""
    undecided = out.pop("undecided")
    if not undecided:
        return
    d, n_out = out["d"], out["n_out"]
    M = d + 1
    ai, aj, ap = (np.frombuffer(out[k], dtype=np.int64) for k in ("adj_i", "adj_j", "adj_plane"))
    fs, fr = (np.frombuffer(out[k], dtype=np.int64) for k in ("facet_start", "facet_row"))
    rn, rd = out["rows"]
    pn, pd = out["planes"]
    on, od = out["outputs"]

    def rows(r: int) -> tuple[list[list[Fraction]], list[Fraction]]:
        A, b = [], []
        for k in fr[fs[r]:fs[r + 1]].tolist():
            row = [Fraction(rn[k * M + i], rd[k * M + i]) for i in range(M)]
            A.append(row[:d])
            b.append(row[d])
        return A, b

    def output(r: int) -> tuple[list[int], list[int]]:
        lo, hi = r * n_out * M, (r + 1) * n_out * M
        return on[lo:hi], od[lo:hi]

    keep = np.ones(len(ai), dtype=bool)
    join = []
    for k in undecided:
        i, j, p = int(ai[k]), int(aj[k]), int(ap[k])
        Ai, bi = rows(i)
        Aj, bj = rows(j)
        plane = [Fraction(pn[p * M + c], pd[p * M + c]) for c in range(M)]
        if not full_on_hyperplane(Ai + Aj, bi + bj, plane[:d], plane[d]):
            keep[k] = False
        elif output(i) == output(j):
            join.append((i, j))
    pieces = np.frombuffer(out["pieces"], dtype=np.int64).tolist()
    out["pieces"] = np.array(joined(pieces, join), dtype=np.int64).tobytes()
    if keep.all():
        return
    for k in ("adj_i", "adj_j", "adj_plane"):
        out[k] = np.frombuffer(out[k], dtype=np.int64)[keep].tobytes()
    start, flat = (np.frombuffer(x, dtype=np.int64) for x in out["adj_ids"])
    new_start, new_flat = _ragged_keep(start.tolist(), flat, np.ones(len(flat), dtype=bool), keep)
    out["adj_ids"] = (np.asarray(new_start, dtype=np.int64).tobytes(), new_flat.tobytes())


def certify(prog: Program, domain: Domain, pl: Plan, trace: Any = None, threads: int = 1,
            progress: bool = False, max_regions: int | None = None) -> Complex:
    """Certify with the compiled layer on ``threads`` threads: the :class:`Complex` (its
    ``stats``: the counts, ``compiled_ms`` and ``compiled_limbs``). The certificate it makes does
    not depend on the number of threads; the complex's table of facet rows does (each thread
    keeps its own rows, numbered thread by thread), and only through ``facet_row``. With
    ``progress``, a progress bar (on a terminal only) counts the
    subtrees certified. With ``max_regions``, the threads stop as soon as more regions than that
    are known to exist (leaves certified plus cells waiting, each of which holds one at least)
    and :class:`RegionLimitError` is raised."""
    if _core is None:
        raise MissingDependencyError(_deps.core_missing())
    run_on = pl.box or domain
    root = root_cell(prog, run_on)
    first = prog.nodes[prog.piecewise[0]]
    volumes = pl.box is None and domain.dim <= 3  # exact volumes where cheap (as certify.py)
    spec = (domain.dim, _root_spec(root, first.inputs[0], domain.dim), pl.levels,
            constraint_offsets(prog, run_on)[0], int(volumes))
    proposals = None
    if trace is not None:  # the float trace's patterns, compared with the result by the core
        proposals = _proposals(trace)
        del trace  # freed here when the caller's engine handed it over (see Proposals.take)
    with paused_gc(), progress_bar(0, "certify (subtrees)", progress) as bar:
        report = None
        if progress and not isinstance(bar, _Silent):
            def report(done: int, total: int) -> None:
                if bar.total != total:
                    bar.total = total
                    bar.refresh()
                bar.update(done - bar.n)
        try:
            out = _core.certify2d(spec, max(1, int(threads)), proposals, report, max_regions or 0)
        except ArithmeticError as exc:
            raise CertificationError(str(exc)) from None
    if isinstance(out, int):
        raise RegionLimitError(f"more than max_regions={max_regions:,} regions: at least "
                               f"{out:,} exist (the compiled engine stopped there)", out)
    _settle_undecided(out)
    if not volumes:
        R = len(out["volume"][0])
        out["volume"] = ([0] * R, [0] * R)
    stats = out["counts"]
    # per phase of the compiled layer, in milliseconds (3 decimals: JSON without exponents)
    stats["compiled_ms"] = {k: round(v * 1000, 3) for k, v in out["seconds"].items()}
    states = []
    for (b, bits), lv in zip(out["states"], pl.levels, strict=True):
        n = lv[0]
        data = np.frombuffer(b, dtype=np.uint8 if bits else np.int8)
        states.append(StateTable(data.reshape(-1, (n + 7) // 8 if bits else n), n, bits))
    cx = Complex(
        d=out["d"], n_out=out["n_out"], states=states, state_ids=out["state_ids"],
        witness=Rationals(*out["witness"]), vertices=Rationals(*out["vertices"]),
        region_vertices=Ragged(*out["region_vertices"]), rows=Rationals(*out["rows"]),
        facet_start=out["facet_start"], facet_row=out["facet_row"],
        facet_ids=Ragged(*out["facet_ids"]), facet_vertices=Ragged(*out["facet_vertices"]),
        outputs=Rationals(*out["outputs"]), volume=Rationals(*out["volume"]),
        repaired=out["repaired"], adj_i=out["adj_i"], adj_j=out["adj_j"],
        adj_plane=out["adj_plane"], adj_ids=Ragged(*out["adj_ids"]),
        planes=Rationals(*out["planes"]), pieces=out["pieces"], stats=stats)
    if pl.box is None:
        return cx
    return _unboxed(cx, 2 * domain.dim, int(pl.box.halfspaces()[1][0]))


class CompiledEngine:
    """The compiled engine (see the module's docstring) as an
    :class:`~exactrelu.engines.Engine`."""

    name = "compiled"

    def applies(self, program: Program, domain: Domain, options: Options) -> str | None:
        if options.executor is not None:
            return ("an executor is for the Python engine; the compiled one runs on threads "
                    "(workers=), or on a Dask cluster (executor=client)")
        got = explain(program, domain)
        return got if isinstance(got, str) else None

    def certify(self, program: Program, domain: Domain, proposals: Proposals,
                options: Options) -> Complex:
        pl = plan(program, domain)
        if pl is None:
            raise CertificationError(f"engine='compiled': {explain(program, domain)}")
        threads = options.workers or os.cpu_count() or 1
        return certify(program, domain, pl, proposals.take(), threads, options.progress,
                       options.max_regions)
