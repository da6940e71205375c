"""The float tracer: enumerate the candidate linear regions of a network over a bounded domain.

Algorithm ("vertex-copy splitting, layer by layer, unit by unit"). The state is a polyhedral
complex in domain coordinates ``t``: global float vertices ``V`` and, per region, its vertex
*copies*, each with the ids of the constraints tight there (see :attr:`Trace.constraint_offsets`).
It starts as the domain polytope. For every piecewise op ``j`` in order, the values of all its
switching functions at all vertices are read off the local affine maps of the cells at the start
of the op (continuity makes them independent of the cell; the maps are pushed through the network
level by level, see :class:`_Stages`, and also give the output maps). Then the switching functions
split the regions they cut: each edge of such a region (two copies sharing ``d - 1`` tight ids)
whose endpoints have strictly opposite signs gets a new vertex by linear interpolation (shared
between neighbouring regions), and the region becomes its two sides. Switching functions of op
``j`` are affine on every cell of the previous ops, so interpolation is exact in real arithmetic.
Which functions can cut a region is known from the cells at the start of the op (pending pairs);
each step splits every region with pending functions by its smallest one, so all regions are
split at once, each sees its functions in increasing order, and so does every edge (only the
functions that cut all its regions cross it); an edge crossed at an earlier step of the op keeps
its vertex. Every step is a batched tensor operation, on any device, in float64.

Whatever the tracer cannot decide in float (values within a relative tolerance of zero, a unit
that vanishes on a whole region, tight lists that overflow, splits that look degenerate) is
listed in :attr:`Trace.uncertain` for the exact layer; nothing is dropped. The one documented
merge: MaxPool's pairwise switching functions over-split, so sub-cells with the same full pattern
are merged at the end (the set of points with one fixed pattern is convex).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import nn

from ._progress import _Silent, progress_bar
from .capture import INPUT, Program, capture
from .domain import Domain, Slice, as_domain
from .errors import InvalidInputError, RegionLimitError
from .rules import FloatMap, MaxPool2dRule, _ElementwiseRule

__all__ = ["Trace", "Uncertain", "trace"]

log = logging.getLogger(__name__)

_BUDGET = 1 << 22  # elements per chunk of a batched intermediate
_MAX_TIGHT = 64  # tight ids kept per vertex copy; beyond this they are reported as overflow
_KEY = 1 << 31  # edge keys: min vertex id * _KEY + max vertex id
_INT16_IDS = 1 << 15  # tight ids are int16 below this many constraints, else int32
_BCAST = 1 << 18  # elements of a broadcast comparison of tight lists done at once


@dataclass
class Uncertain:
    """What the float tracer could not decide; every entry is a pair of int64 ids.

    - ``near_zero`` (K, 2): (vertex id, constraint id) with the constraint's value within the
      tolerance of zero at that vertex (the vertex may lie on the hyperplane, or just beside it).
    - ``vanishing`` (K, 2): (region, constraint id) with the switching function within the
      tolerance of zero at every vertex of the region (its state there is the rule's tie state).
    - ``overflow`` (K, 2): (vertex id, constraint id) that did not fit in a tight list (lists
      widen as needed up to 64 ids per vertex copy).
    - ``degenerate`` (K, 2): (region, constraint id): a split whose cut face got fewer than ``d``
      vertices (degenerate or badly conditioned geometry).
    - ``duplicates`` (K, 2): pairs of regions with the same full pattern (never expected without
      MaxPool; with MaxPool such sub-cells are merged).
    """

    near_zero: torch.Tensor
    vanishing: torch.Tensor
    overflow: torch.Tensor
    degenerate: torch.Tensor
    duplicates: torch.Tensor

    def __bool__(self) -> bool:
        return any(len(t) for t in (self.near_zero, self.vanishing, self.overflow, self.degenerate,
                                    self.duplicates))

    def summary(self) -> dict[str, int]:
        keys = ("near_zero", "vanishing", "overflow", "degenerate", "duplicates")
        return {k: len(getattr(self, k)) for k in keys}


@dataclass
class Trace:
    """The float trace of a network over a domain (see the module docstring).

    Ids: constraint ``i < constraint_offsets[0]`` is row ``i`` of the domain's
    ``float_halfspaces()``; switching function ``s`` of piecewise op ``j`` is constraint
    ``constraint_offsets[j] + s``. CSR pairs (``*_offsets``, ``*_ids``) list, for item ``i``,
    ``ids[offsets[i]:offsets[i + 1]]``. All tensors are on the CPU.

    >>> import torch.nn as nn
    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0], [-1.0]])); _ = net[0].bias.zero_()
    >>> trace(net, [(-1, 1)], progress=False).num_regions
    2
    """

    domain: Domain
    program: Program
    dim: int
    num_regions: int
    patterns: list[torch.Tensor]
    interior: torch.Tensor
    bounding_offsets: torch.Tensor
    bounding_ids: torch.Tensor
    region_vertex_offsets: torch.Tensor
    region_vertex_ids: torch.Tensor
    vertices: torch.Tensor
    vertex_tight_offsets: torch.Tensor
    vertex_tight_ids: torch.Tensor
    edges: torch.Tensor
    output_weight: torch.Tensor
    output_bias: torch.Tensor
    uncertain: Uncertain
    constraint_offsets: list[int]
    seconds: float
    merged: int = 0
    _packed: list[bytes] | None = field(default=None, repr=False)

    @property
    def bounding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offsets, ids): candidate bounding constraint ids per region."""
        return self.bounding_offsets, self.bounding_ids

    @property
    def region_vertices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offsets, vertex ids) per region."""
        return self.region_vertex_offsets, self.region_vertex_ids

    @property
    def vertex_tight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offsets, constraint ids) tight at each vertex (union over its regions)."""
        return self.vertex_tight_offsets, self.vertex_tight_ids

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    def region_vertex_list(self, r: int) -> torch.Tensor:
        off = self.region_vertex_offsets
        return self.region_vertex_ids[off[r]:off[r + 1]]

    def packed_patterns(self) -> list[bytes]:
        """One bytes key per region: its full pattern, ReLU-like ops as bits, others as bytes
        (uint8, or little-endian int32 for large MaxPool windows). Equal keys iff equal patterns."""
        if self._packed is None:
            self._packed = (pack_patterns(self.program, self.patterns) if self.patterns
                            else [b""] * self.num_regions)
        return self._packed

    def __repr__(self) -> str:
        return (f"Trace(dim={self.dim}, num_regions={self.num_regions}, "
                f"vertices={self.num_vertices}, edges={len(self.edges)}, "
                f"uncertain={self.uncertain.summary()}, seconds={self.seconds:.3f})")


def pack_patterns(program: Program, patterns: Sequence[torch.Tensor]) -> list[bytes]:
    """Bytes keys of full patterns (see :meth:`Trace.packed_patterns`)."""
    if not patterns:
        return []
    n = patterns[0].shape[0]
    parts: list[np.ndarray] = []
    for nd, p in zip(program.piecewise_nodes(), patterns):
        flat = p.reshape(n, -1).cpu().numpy()
        top = _max_state(nd)
        if top <= 1:
            parts.append(np.packbits(flat.astype(bool), axis=1))
        elif top <= 255:
            parts.append(flat.astype(np.uint8))
        else:
            parts.append(flat.astype("<i4").view(np.uint8).reshape(n, -1))
    allb = np.ascontiguousarray(np.concatenate(parts, axis=1))
    return [row.tobytes() for row in allb]


def _max_state(nd: Any) -> int:
    if isinstance(nd.rule, MaxPool2dRule):
        return math.prod(nd.in_shapes[0]) - 1
    th = getattr(nd.rule, "thresholds", None)
    return len(th(nd.module)) if th is not None else 255


# --------------------------------------------------------------------------------- helpers


def _grow(t: torch.Tensor, n: int, fill: Any) -> torch.Tensor:
    """``t`` with at least ``n`` rows (new rows filled with ``fill``, left uninitialised when
    ``fill`` is None), amortised."""
    if t.shape[0] >= n:
        return t
    shape = (max(n, t.shape[0] * 2 + 16), *t.shape[1:])
    new = t.new_empty(shape) if fill is None else t.new_full(shape, fill)
    new[:t.shape[0]] = t
    return new


def _widen(t: torch.Tensor, w: int, fill: Any) -> torch.Tensor:
    """``t`` with dimension 1 widened to ``w`` (filled with ``fill``)."""
    new = t.new_full((t.shape[0], w, *t.shape[2:]), fill)
    new[:, :t.shape[1]] = t
    return new


def _widen_last(t: torch.Tensor, w: int) -> torch.Tensor:
    """``t`` with its last dimension widened to ``w`` (filled with -1)."""
    new = t.new_full((*t.shape[:-1], w), -1)
    new[..., :t.shape[-1]] = t
    return new


def _where(mask: torch.Tensor) -> torch.Tensor:
    """Indices (int64, ascending) where the 1-D ``mask`` is true."""
    return mask.nonzero().reshape(-1)


def _pairs(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.stack([a.reshape(-1).to(torch.int64), b.reshape(-1).to(torch.int64)], dim=1)


def _unique_rows2(p: torch.Tensor) -> torch.Tensor:
    """Unique rows of a (K, 2) int64 tensor of non-negative ids, sorted."""
    if len(p) == 0:
        return p.reshape(0, 2)
    base = int(p[:, 1].max()) + 1
    key = torch.unique(p[:, 0] * base + p[:, 1])
    a = torch.div(key, base, rounding_mode="floor")
    return torch.stack([a, key - a * base], 1)


class _RowHash:
    """A random float64 projection of rows built from column blocks added one at a time (equal
    rows get equal hashes); rows may be gathered (``take``) between blocks."""

    def __init__(self, device: torch.device) -> None:
        self.gen = torch.Generator().manual_seed(12345)
        self.device = device
        self.h: torch.Tensor | None = None

    def take(self, rows: torch.Tensor) -> None:
        if self.h is not None:
            self.h = self.h.index_select(0, rows)

    def add(self, block: torch.Tensor) -> None:
        coef = torch.rand((block.shape[1], 1), generator=self.gen, dtype=torch.float64)
        part = (block.to(torch.float64) @ (coef.to(self.device) + 0.5)).reshape(-1)
        self.h = part if self.h is None else self.h + part


def _row_groups(parts: Sequence[torch.Tensor],
                h: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Group ids (inverse) and count of the distinct rows of the int64 matrix whose column blocks
    are ``parts`` (each (n, w_i)).

    Rows are hashed by a random float64 projection (``h`` when given, from :class:`_RowHash`);
    only when some hashes coincide are the groups checked, and then settled exactly."""
    n = parts[0].shape[0]
    if h is None:
        rh = _RowHash(parts[0].device)
        for p in parts:
            rh.add(p)
        h = rh.h
    assert h is not None
    _, g = torch.unique(h, return_inverse=True)
    G = int(g.max()) + 1 if n else 0
    if G < n:
        flat = torch.cat(list(parts), 1)
        first = torch.full((G,), n, dtype=torch.int64, device=flat.device).scatter_reduce_(
            0, g, torch.arange(n, device=flat.device), "amin")
        if not bool((flat.index_select(0, first.index_select(0, g)) == flat).all()):
            _, g = torch.unique(flat, dim=0, return_inverse=True)  # a collision: group exactly
            G = int(g.max()) + 1
    return g, G


def _csr_from_pairs(rows: torch.Tensor, ids: torch.Tensor,
                    n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted unique ``ids`` per row as CSR (offsets (n+1,), ids)."""
    rows = rows.to(torch.int64)
    ids = ids.to(torch.int64)
    base = int(ids.max()) + 1 if len(ids) else 1
    key = torch.unique(rows * base + ids)
    r = torch.div(key, base, rounding_mode="floor")
    counts = torch.bincount(r, minlength=n)
    offsets = torch.zeros(n + 1, dtype=torch.int64, device=key.device)
    offsets[1:] = torch.cumsum(counts, 0)
    return offsets, key - r * base


# --------------------------------------------------------------------------------- the complex


class _Complex:
    """Regions as padded rows of vertex copies; see the module docstring."""

    def __init__(self, d: int, device: torch.device, dtype: torch.dtype, max_regions: int | None,
                 m: int, num_constraints: int = 1 << 31) -> None:
        self.d = d
        # tight ids: int16 when every constraint id fits (halves the largest gathers and scatters
        # of the steps), else int32
        self.tdtype = torch.int16 if num_constraints < _INT16_IDS else torch.int32
        self.device = device
        self.dtype = dtype
        self.max_regions = max_regions
        self.m = m
        self.near_zero: list[torch.Tensor] = []
        self.overflow: list[torch.Tensor] = []
        # region records, in the numbering at the start of the current op / current numbering
        # rows (region, constraint id, kind: 0 vanishing / 1 degenerate)
        self.rec_start = torch.zeros((0, 3), dtype=torch.int64, device=device)
        self.rec_cur: list[torch.Tensor] = []
        self.threads: _Threads | None = None

    # ----------------------------------------------------------------- start: the domain
    def start(self, dom: Domain) -> None:
        A, b = dom.halfspaces()
        verts = dom.vertices()
        tight: list[list[int]] = []
        for v in verts:
            q = [Fraction(x) for x in v]
            tight.append([i for i, (row, bi) in enumerate(zip(A, b))
                          if sum((a * x for a, x in zip(row, q)), Fraction(0)) == bi])
        d = self.d
        self.T = max(d + 4, max(len(t) for t in tight) + 2)
        nv = len(verts)
        dev = self.device
        self.V = torch.tensor([[float(x) for x in v] for v in verts], dtype=self.dtype, device=dev)
        self.nV = nv
        self.cp_vid = torch.full((16, max(nv, 8)), -1, dtype=torch.int64, device=dev)
        self.cp_vid[0, :nv] = torch.arange(nv, device=dev)
        tt = torch.full((16, self.cp_vid.shape[1], self.T), -1, dtype=self.tdtype)
        for i, t in enumerate(tight):
            tt[0, i, :len(t)] = torch.tensor(t, dtype=self.tdtype)
        self.cp_tight = tt.to(dev)
        self.R = 1
        self.rparent = torch.zeros(16, dtype=torch.int64, device=dev)
        for i, t in enumerate(tight):
            if len(t) < d:
                log.warning("domain vertex %d has only %d tight rows", i, len(t))

    @property
    def Vcap(self) -> int:
        return self.cp_vid.shape[1]

    def _ensure_width(self, w: int) -> None:
        if w > self.Vcap:
            w = max(w, self.Vcap + 4)
            self.cp_vid = _widen(self.cp_vid, w, -1)
            self.cp_tight = _widen(self.cp_tight, w, -1)

    def _ensure_tight(self, n: int) -> int:
        """Widen the tight lists to at least ``n`` ids (at most ``_MAX_TIGHT``); the new width."""
        w = min(max(n, self.T + 2), _MAX_TIGHT)
        if w > self.T:
            self.cp_tight = _widen_last(self.cp_tight, w)
            self.T = w
        return self.T

    def reserve(self) -> None:
        """Pre-size the vertex and region buffers for the next op (an op rarely more than
        quadruples them; past that they grow by doubling as needed)."""
        self.V = _grow(self.V, 4 * self.nV + 1024, None)  # rows past nV are never read
        n = 4 * self.R + 64
        if n > self.cp_vid.shape[0]:  # (the sign rows are made by run_op)
            self.cp_vid = _grow(self.cp_vid, n, -1)
            self.cp_tight = _grow(self.cp_tight, self.cp_vid.shape[0], -1)
            self.rparent = _grow(self.rparent, self.cp_vid.shape[0], None)

    def _ensure_rows(self, n: int) -> None:
        if n > self.cp_vid.shape[0]:
            self.cp_vid = _grow(self.cp_vid, n, -1)
            self.cp_tight = _grow(self.cp_tight, self.cp_vid.shape[0], -1)
            self.rparent = _grow(self.rparent, self.cp_vid.shape[0], None)  # rows set when used
            self.rsign = _grow(self.rsign, self.cp_vid.shape[0], None)

    # ----------------------------------------------------------------- one piecewise op
    def run_op(self, j: int, vals: torch.Tensor, sid0: int, eps: float, bar: Any,
               label: str, buf: torch.Tensor | None = None) -> torch.Tensor:
        """Split by every switching function of op ``j`` (values ``vals`` (nV, S) at the
        vertices, optionally the first rows of a larger buffer ``buf``); returns the sign matrix
        (R, S) int8 (0 where a function vanishes)."""
        dev = self.device
        S = vals.shape[1]
        R0 = self.R
        self.vals = (buf if buf is not None and buf.shape[0] >= self.V.shape[0]
                     else _grow(vals, self.V.shape[0], None))
        tol = eps * torch.maximum(vals.amax(0), vals.amin(0).neg_())  # max |vals| without a copy
        self.tol = tol
        # cells at the start of the op: which switching functions cut them
        # sign codes per vertex and switching function: 2 positive, 1 near zero, 0 negative; one
        # more row (code 1) stands for the empty slots
        nV = vals.shape[0]
        code = torch.ones((nV + 1, S), dtype=torch.uint8, device=dev)
        code[:nV] += (vals > tol).to(torch.uint8)
        code[:nV] -= (vals < -tol).to(torch.uint8)
        hp_all = torch.zeros((R0, S), dtype=torch.bool, device=dev)
        hn_all = torch.zeros((R0, S), dtype=torch.bool, device=dev)
        W = self.Vcap
        ch = max(1, _BUDGET // max(1, W * S))
        for r0 in range(0, R0, ch):
            vid = self.cp_vid[r0:min(R0, r0 + ch)]
            k = vid.shape[0]
            cc = code.index_select(0, torch.where(vid >= 0, vid, nV).reshape(-1)).reshape(k, W, S)
            hp_all[r0:r0 + k] = cc.amax(1) == 2
            hn_all[r0:r0 + k] = cc.amin(1) == 0
        code = code[:nV]
        # near-zero values at vertices of cells where the function does not vanish
        zv = (code == 1).any(1).nonzero().reshape(-1)
        if len(zv):
            onr = torch.zeros(self.nV, dtype=torch.bool, device=dev)
            onr[zv] = True
            cv = self.cp_vid[:R0]
            rr, ss = (onr[cv.clamp(min=0)] & (cv >= 0)).nonzero(as_tuple=True)
            vv = self.cp_vid[rr, ss]
            z = (code[vv] == 1) & (hp_all[rr] | hn_all[rr])
            zi, zf = z.nonzero(as_tuple=True)
            self.near_zero.append(_pairs(vv[zi], zf + sid0))
        cutP = hp_all & hn_all
        van = ~hp_all & ~hn_all
        self.rsign = torch.empty((self.cp_vid.shape[0], S), dtype=torch.int8, device=dev)
        self.rsign[:R0] = hp_all.to(torch.int8) - (hn_all & ~hp_all).to(torch.int8)
        vr, vs = van.nonzero(as_tuple=True)
        start_recs = [self.rec_start,
                      torch.stack([vr, vs + sid0, torch.zeros_like(vr)], dim=1)]
        self.rparent[:R0] = torch.arange(R0, device=dev)
        # Pending pairs (region, function): the function may still cut the region. Each step
        # takes, for every region, its smallest pending function s, but only where no region has
        # s pending behind a smaller one. So every region sees its functions in increasing order,
        # and every region containing an edge crossed by s (all of them are cut by s, so have s
        # pending) is split by s in the same step: neighbours share the new vertex. After a
        # split, the pending functions of both sides that no longer cut them are resolved.
        P = cutP.nonzero().T.contiguous()  # (2, K): rows (region, function)
        self.ek = torch.zeros(0, dtype=torch.int64, device=dev)  # edges crossed in this op
        self.ev = torch.zeros(0, dtype=torch.int64, device=dev)  # and their new vertices
        left = S
        shown = not isinstance(bar, _Silent)
        while P.shape[1]:
            Pr, Ps = P[0], P[1]
            if shown:
                nleft = int((torch.bincount(Ps, minlength=S) > 0).sum())
                bar.update(left - nleft)
                left = nleft
            smin = torch.full((self.R,), S, dtype=torch.int64, device=dev).scatter_reduce_(
                0, Pr, Ps, "amin")
            sel = Ps == smin.index_select(0, Pr)
            cs = P.index_select(1, _where(sel))
            cand, srow = cs[0], cs[1]
            P = P.index_select(1, _where(sel.logical_not_()))
            R_before = self.R
            if self.threads is not None:
                self.threads.size(len(cand) * self.Vcap * S)
            split = self._step(srow, sid0, cand, label)
            if split is None or P.shape[1] == 0:
                continue
            ci, new = split
            mp = torch.full((R_before,), -1, dtype=torch.int64, device=dev)
            mp[ci] = new
            dup = mp.index_select(0, P[0])
            h = _where(dup >= 0)
            P = torch.cat([P, torch.stack([dup.index_select(0, h), P[1].index_select(0, h)])], 1)
            changed = torch.zeros(self.R, dtype=torch.bool, device=dev)
            changed[ci] = True
            changed[R_before:] = True  # (the new rows)
            m = changed.index_select(0, P[0])
            im = _where(m)
            if len(im):
                c = P.index_select(1, im)
                still = self._resolve(c[0], c[1], sid0)
                P = torch.cat([P.index_select(1, _where(m.logical_not_())),
                               c.index_select(1, _where(still))], 1)
        bar.update(left if shown else S)
        # records: expand start-of-op records to descendants, keep the rest
        rec = torch.cat(start_recs)
        rec = self._expand(rec, R0)
        self.rec_start = torch.cat([rec] + self.rec_cur) if self.rec_cur else rec
        self.rec_cur = []
        out = self.rsign[:self.R]
        del self.vals
        return out

    def _expand(self, rec: torch.Tensor, R0: int) -> torch.Tensor:
        """Records on start-of-op cells -> the same records on each of their current descendants."""
        if len(rec) == 0 or self.R == R0:
            return rec
        par = self.rparent[:self.R]
        order = torch.argsort(par, stable=True)
        counts = torch.bincount(par, minlength=R0)
        starts = torch.cumsum(counts, 0) - counts
        rep = counts[rec[:, 0]]
        idx = torch.repeat_interleave(torch.arange(len(rec), device=rec.device), rep)
        within = (torch.arange(len(idx), device=rec.device)
                  - torch.repeat_interleave(torch.cumsum(rep, 0) - rep, rep))
        out = rec[idx].clone()
        out[:, 0] = order[starts[rec[idx, 0]] + within]
        return out

    def _vertex_signs(self, cand: torch.Tensor, srow: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For regions ``cand``, each with its own switching function ``srow``: the regions'
        vertex ids (``-1`` padding), which of them are valid, and at which the function is clearly
        positive / negative (beyond the function's tolerance)."""
        tol_s = self.tol.index_select(0, srow).unsqueeze(1)
        vid = self.cp_vid.index_select(0, cand)
        valid = vid >= 0
        S = self.vals.shape[1]
        v = self.vals.reshape(-1).index_select(
            0, (vid.clamp(min=0) * S + srow.unsqueeze(1)).reshape(-1)).reshape(vid.shape)
        return vid, valid, valid & (v > tol_s), valid & (v < -tol_s)

    def _step(self, srow: torch.Tensor, sid0: int, cand: torch.Tensor, label: str) -> None:
        """Split the regions ``cand``, each by its own switching function ``srow`` (an edge is
        crossed by the function of every region containing it, so neighbours agree)."""
        d, T = self.d, self.T
        dev = self.device
        vid, valid, pos, neg = self._vertex_signs(cand, srow)
        sidr = srow + sid0
        hp = pos.any(1)
        hn = neg.any(1)
        zer = valid & ~pos & ~neg
        active = hp | hn
        zm = zer & active.unsqueeze(1)
        if zm.any():
            self.near_zero.append(_pairs(vid[zm], sidr.unsqueeze(1).expand_as(vid)[zm]))
        if not bool(active.all()):
            vr = cand[~active]
            self.rec_cur.append(
                torch.stack([vr, sidr[~active], torch.zeros_like(vr)], 1))
        self.rsign[cand, srow] = hp.to(torch.int8) - (hn > hp).to(torch.int8)
        cut = hp & hn
        if not bool(cut.all()):  # (rare: pending pairs were cutting when last looked at)
            k = _where(cut)
            if len(k) == 0:
                return None
            cand, vid, pos, neg, zer, srow, sidr = (
                x.index_select(0, k) for x in (cand, vid, pos, neg, zer, srow, sidr))
        ci = cand
        tight = self.cp_tight.index_select(0, ci)
        Rc = len(ci)
        # crossing edges: (+, -) copy pairs sharing >= d - 1 tight ids
        pr, pa, pb = (pos.unsqueeze(2) & neg.unsqueeze(1)).nonzero(as_tuple=True)
        ta = tight[pr, pa]
        tb = tight[pr, pb]
        if ta.numel() * ta.shape[1] <= _BCAST:  # (P, T): ids of a also in b
            sh = (ta.unsqueeze(2) == tb.unsqueeze(1)).any(2)
        else:  # column by column (T is small)
            sh = ta == tb[:, :1]
            for k in range(1, tb.shape[1]):
                sh |= ta == tb[:, k:k + 1]
        sh &= ta >= 0
        cnt = sh.sum(1)
        ok = cnt >= d - 1
        if not bool(ok.all()):
            k = ok.nonzero().reshape(-1)
            pr, pa, pb, ta, sh, cnt = (x.index_select(0, k) for x in (pr, pa, pb, ta, sh, cnt))
        ia = vid[pr, pa]
        ib = vid[pr, pb]
        nV = self.nV
        # an edge crossed here may have been crossed already in a region split at an earlier
        # step of this op (by the same function, the first to cross it everywhere): reuse its
        # vertex; edges new to this op get one vertex each, shared by the regions of this step
        key = torch.minimum(ia, ib) * _KEY + torch.maximum(ia, ib)
        P = len(key)
        nvid = torch.empty(P, dtype=torch.int64, device=dev)
        nf = torch.ones(P, dtype=torch.bool, device=dev)
        if len(self.ek):
            at = torch.searchsorted(self.ek, key).clamp(max=len(self.ek) - 1)
            found = self.ek.index_select(0, at) == key
            if bool(found.any()):
                nf = ~found
                nvid[found] = self.ev.index_select(0, at[found])
        inf = nf.nonzero().reshape(-1)
        uk, inv = torch.unique(key.index_select(0, inf), return_inverse=True)
        U = len(uk)
        first = torch.full((U,), P, dtype=torch.int64, device=dev).scatter_reduce_(
            0, inv, inf, "amin", include_self=True)
        nvid[inf] = inv + nV
        a, b = ia.index_select(0, first), ib.index_select(0, first)
        se = srow.index_select(0, pr.index_select(0, first))
        fa, fb = self.vals[a, se], self.vals[b, se]
        lam = (fa / (fa - fb)).unsqueeze(1)
        Va = self.V.index_select(0, a)
        newV = Va + lam * (self.V.index_select(0, b) - Va)
        # values at the new vertices, written in place: va + lam (vb - va)
        self.vals = _grow(self.vals, nV + U, None)
        old = self.vals[:nV]
        va = old.index_select(0, a)
        newvals = torch.index_select(old, 0, b, out=self.vals[nV:nV + U])
        newvals.sub_(va).mul_(lam).add_(va)
        newvals[torch.arange(U, device=dev), se] = 0.0
        del old, va
        # tight ids of each new copy: those its two endpoints share in its region, and the cut
        occ_t = torch.where(sh, ta, -1).sort(dim=1, descending=True).values
        c = cnt
        zr, zs = zer.nonzero(as_tuple=True)
        cz = (tight[zr, zs] >= 0).sum(1)
        need = max(int(c.max()) + 1 if P else 0, int(cz.max()) + 1 if len(cz) else 0)
        if need > T and T < _MAX_TIGHT:
            # more constraints through a point than expected (degenerate input): widen the lists
            T = self._ensure_tight(need)
            tight = _widen_last(tight, T)
            occ_t = _widen(occ_t, T, -1)
        room = c < T
        ar = torch.arange(P, device=dev)
        sidv = srow.index_select(0, pr) + sid0
        if bool(room.all()):
            occ_t[ar, c] = sidv.to(occ_t.dtype)
        else:
            occ_t[ar[room], c[room]] = sidv[room].to(occ_t.dtype)
            self.overflow.append(_pairs(nvid[~room], sidv[~room]))
        if U:
            ek = torch.cat([self.ek, uk])
            o = torch.argsort(ek)
            self.ek = ek.index_select(0, o)
            self.ev = torch.cat([self.ev, torch.arange(nV, nV + U, device=dev)]).index_select(0, o)
        # append the new vertices
        self.V = _grow(self.V, nV + U, None)  # rows past nV are never read
        self.V[nV:nV + U] = newV
        self.nV = nV + U
        # zero copies lie on the cut: they go to both sides with s added to their tight lists
        if len(zr):
            zroom = cz < T
            if bool(zroom.all()):
                tight[zr, zs, cz] = sidr.index_select(0, zr).to(tight.dtype)
            else:
                tight[zr[zroom], zs[zroom], cz[zroom]] = sidr[zr[zroom]].to(tight.dtype)
                bad = vid[zr[~zroom], zs[~zroom]]
                self.overflow.append(_pairs(bad, sidr[zr[~zroom]]))
        nnew = torch.bincount(pr, minlength=Rc)
        plus = pos | zer
        minus = neg | zer
        n_plus = plus.sum(1)
        n_minus = minus.sum(1)
        self._ensure_width(int(torch.maximum(n_plus, n_minus).max() + nnew.max()) if P else
                           int(torch.maximum(n_plus, n_minus).max()))
        Wc = self.Vcap
        rank = torch.arange(P, device=dev) - (torch.cumsum(nnew, 0) - nnew).index_select(0, pr)

        R = self.R
        self._ensure_rows(R + Rc)

        def build(mask: torch.Tensor, n_old: torch.Tensor, out_v: torch.Tensor | None = None,
                  out_t: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
            if out_v is None or out_t is None:
                out_v = torch.full((Rc, Wc), -1, dtype=torch.int64, device=dev)
                out_t = torch.full((Rc, Wc, T), -1, dtype=self.tdtype, device=dev)
            else:
                out_v.fill_(-1)
                out_t.fill_(-1)
            rr, ss = mask.nonzero(as_tuple=True)
            posn = (mask.cumsum(1) - 1)[rr, ss]
            out_v[rr, posn] = vid[rr, ss]
            out_t[rr, posn] = tight[rr, ss]
            q = n_old.index_select(0, pr) + rank
            out_v[pr, q] = nvid
            out_t[pr, q] = occ_t
            return out_v, out_t

        # the minus sides are the new rows R..R+Rc: built in place; the plus sides replace ci
        build(minus, n_minus, self.cp_vid[R:R + Rc], self.cp_tight[R:R + Rc])
        pv, pt = build(plus, n_plus)
        new = torch.arange(R, R + Rc, device=dev)
        self.cp_vid.index_copy_(0, ci, pv)
        self.cp_tight.index_copy_(0, ci, pt)
        torch.index_select(self.rsign[:R], 0, ci, out=self.rsign[R:R + Rc])
        self.rsign[ci, srow] = 1
        self.rsign[new, srow] = -1
        torch.index_select(self.rparent[:R], 0, ci, out=self.rparent[R:R + Rc])
        if self.rec_cur:
            rc = torch.cat(self.rec_cur)
            mp = torch.full((R,), -1, dtype=torch.int64, device=dev)
            mp[ci] = new
            dup = mp.index_select(0, rc[:, 0])
            hit = dup >= 0
            if bool(hit.any()):
                extra = rc[hit].clone()
                extra[:, 0] = dup[hit]
                rc = torch.cat([rc, extra])
            self.rec_cur = [rc]
        few = (nnew + zer.sum(1)) < d  # the cut face needs at least d vertices
        if bool(few.any()):
            rr = torch.cat([ci[few], new[few]])
            ss = torch.cat([sidr[few], sidr[few]])
            self.rec_cur.append(torch.stack([rr, ss, torch.ones_like(rr)], 1))
        self.R = R + Rc
        if self.max_regions is not None and self.R > self.max_regions:
            raise RegionLimitError(
                f"the trace exceeded max_regions={self.max_regions}: {self.R} regions found so far "
                f"(at {label}, switching function {int(srow.min())}); raise max_regions or "
                "shrink the domain",
                self.R)
        return ci, new

    def _resolve(self, cand: torch.Tensor, srow: torch.Tensor, sid0: int) -> torch.Tensor:
        """Pairs (region ``cand``, function ``srow``): which still cut; the others are settled
        (sign, vanishing and near-zero records) as a step would."""
        vid, valid, pos, neg = self._vertex_signs(cand, srow)
        hp = pos.any(1)
        hn = neg.any(1)
        cut = hp & hn
        done = ~cut
        if not bool(done.any()):
            return cut
        active = hp | hn
        sidr = srow + sid0
        zm = valid & ~pos & ~neg & (active & done).unsqueeze(1)
        if bool(zm.any()):
            self.near_zero.append(_pairs(vid[zm], sidr.unsqueeze(1).expand_as(vid)[zm]))
        if not bool(active.all()):
            vr = cand[~active]
            self.rec_cur.append(torch.stack([vr, sidr[~active], torch.zeros_like(vr)], 1))
        # write the settled signs, the cutting pairs' current ones back (the pairs are distinct)
        flat = self.rsign.view(-1)
        at = cand * self.rsign.shape[1] + srow
        val = hp.to(torch.int8) - hn.to(torch.int8)
        flat.index_copy_(0, at, torch.where(done, val, flat.index_select(0, at)))
        return cut


_MANY_THREADS = 1 << 17  # elements per op (vertices x switching functions) worth all threads


class _Threads:
    """Intra-op threads on the CPU: one while the complex is small (tiny tensors, where OpenMP
    hand-offs cost more than they save), the caller's setting once an op's tensors are large
    (batched steps then scale: about 1.6x with 2 threads on 2-128-128-128)."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = device.type == "cpu"
        self.before = torch.get_num_threads()
        self.cur = self.before

    def size(self, n: int) -> None:
        """Threads for work on about ``n`` elements."""
        want = self.before if n >= _MANY_THREADS else 1
        if self.cpu and want != self.cur:
            torch.set_num_threads(want)
            self.cur = want


@contextlib.contextmanager
def _few_threads(device: torch.device) -> Iterator[_Threads]:
    """See :class:`_Threads`; the caller's thread count is restored at the end."""
    th = _Threads(device)
    th.size(0)
    try:
        yield th
    finally:
        if th.cpu and th.cur != th.before:
            torch.set_num_threads(th.before)


# --------------------------------------------------------------------------------- passes


def _max_numel(prog: Program) -> int:
    return max([math.prod(prog.input_shape)] + [math.prod(nd.out_shape) for nd in prog.nodes])


def _switch_values(prog: Program, j: int, X: torch.Tensor) -> torch.Tensor:
    """Values (N, S_j) of op ``j``'s switching functions at network inputs ``X`` (N, n_in)."""
    n = X.shape[0]
    S = prog.num_switching(j)
    ch = max(1, _BUDGET // max(_max_numel(prog), S))
    out = X.new_empty((n, S))
    for i in range(0, n, ch):
        x = X[i:i + ch]
        k = x.shape[0]
        m0 = FloatMap(x.new_zeros((k, 0, *prog.input_shape)), x.reshape(k, *prog.input_shape))
        out[i:i + k] = prog.float_run(m0, until=j)[0].b.reshape(k, S)
    return out


def _output_maps(prog: Program, patterns: list[torch.Tensor], M: torch.Tensor, c: torch.Tensor,
                 n: int) -> tuple[torch.Tensor, torch.Tensor]:
    d = M.shape[1]
    W0 = M.T.reshape(1, d, *prog.input_shape)
    b0 = c.reshape(1, *prog.input_shape)
    ch = max(1, _BUDGET // (_max_numel(prog) * (d + 1)))
    ws, bs = [], []
    for i in range(0, n, ch):
        k = min(ch, n - i)
        out, _ = prog.float_run(FloatMap(W0.expand(k, *W0.shape[1:]), b0.expand(k, *b0.shape[1:])),
                                states=[p[i:i + k] for p in patterns])
        ws.append(out.W.movedim(1, -1).reshape(k, *prog.output_shape, d))
        bs.append(out.b.reshape(k, *prog.output_shape))
    return torch.cat(ws), torch.cat(bs)


def _edges(vid: torch.Tensor, tight: torch.Tensor, V: torch.Tensor, d: int) -> torch.Tensor:
    """Edges of the complex: copies of one region sharing ``d - 1`` tight ids; on a line with more
    than two such copies, consecutive ones along it. Unique (min, max) vertex id pairs."""
    dev = vid.device
    valid = vid >= 0
    rr, ss = valid.nonzero(as_tuple=True)
    if len(rr) == 0:
        return torch.zeros((0, 2), dtype=torch.int64, device=dev)
    cv = vid[rr, ss]
    t = tight[rr, ss].to(torch.int64)
    big = int(t.max()) + 2
    ts = torch.where(t >= 0, t, big).sort(1).values
    nt = (t >= 0).sum(1)
    T = int(nt.max())  # positions past the longest tight list never form a key
    members, keys = [], []
    for combo in itertools.combinations(range(T), d - 1):
        ok = nt > (combo[-1] if combo else -1)
        if not bool(ok.any()):
            continue
        cols = [rr[ok]] + [ts[ok, i] for i in combo]
        keys.append(torch.stack(cols, 1))
        members.append(cv[ok])
    K = torch.cat(keys)
    mem = torch.cat(members)
    radix = [int(K[:, 0].max()) + 1] + [big] * (d - 1)
    if math.prod(radix) < 2 ** 62:
        flat = K[:, 0].clone()
        for i in range(1, d):
            flat = flat * big + K[:, i]
        # one sort groups the keys (group ids in sorted order)
        fo, o = torch.sort(flat)
        start = torch.ones_like(fo, dtype=torch.bool)
        start[1:] = fo[1:] != fo[:-1]
        gs = torch.cumsum(start, 0) - 1
        G = int(gs[-1]) + 1
    else:
        _, g = torch.unique(K, dim=0, return_inverse=True)
        G = int(g.max()) + 1
        o = torch.argsort(g)
        gs = g[o]
    size = torch.bincount(gs, minlength=G)
    ms = mem[o]
    # the usual case: exactly two copies share the d - 1 ids
    two = size[gs] == 2
    m2 = ms[two]
    parts = [torch.stack([m2[0::2], m2[1::2]], 1)]
    many = size[gs] > 2
    if bool(many.any()):
        # several copies on one line (degenerate input): consecutive ones along it
        g3, m3 = gs[many], ms[many]
        lo = torch.full((G,), int(vid.max()) + 1, dtype=torch.int64, device=dev)
        lo = lo.scatter_reduce_(0, g3, m3, "amin")
        hi = torch.full((G,), -1, dtype=torch.int64, device=dev)
        hi = hi.scatter_reduce_(0, g3, m3, "amax")
        direction = V[hi[g3]] - V[lo[g3]]
        proj = ((V[m3] - V[lo[g3]]) * direction).sum(1)
        o3 = torch.argsort(proj, stable=True)
        o3 = o3[torch.argsort(g3[o3], stable=True)]
        g3, m3 = g3[o3], m3[o3]
        same = g3[1:] == g3[:-1]
        parts.append(torch.stack([m3[:-1][same], m3[1:][same]], 1))
    e = torch.cat(parts)
    e = torch.stack([e.min(1).values, e.max(1).values], 1)
    e = e[e[:, 0] != e[:, 1]]
    return _unique_rows2(e)


# --------------------------------------------------------------------------------- staged maps

_CHUNK = 1 << 20  # elements per row chunk of the last op's pass
_STAGE_BUDGET = 1 << 25  # elements of the live maps kept per cell level (else the plain passes)


class _Stages:
    """Local affine maps (in domain coordinates) of every live value of the program on the cells
    of the complex, op by op: before piecewise op ``j`` the rows are the cells at its start; after
    its split they are gathered to the new cells (by parent) and op ``j`` is applied with their
    states. Only cells split by the later ops need new maps, so the output maps cost one pass per
    level instead of one full pass per region, and switching values at vertices are read off the
    map of any cell containing the vertex. Gives up (``ok`` False) when the maps would not fit in
    ``_STAGE_BUDGET`` elements; the caller then uses the plain passes."""

    def __init__(self, prog: Program, M: torch.Tensor, c: torch.Tensor) -> None:
        self.prog = prog
        d = M.shape[1]
        self.k = d
        self.values: dict[int, FloatMap] = {
            INPUT: FloatMap(M.T.reshape(1, d, *prog.input_shape), c.reshape(1, *prog.input_shape))}
        self.i = 0
        self.ok = True
        self.last = prog.piecewise[-1] if prog.piecewise else -1
        self.deferred: tuple[torch.Tensor | None, torch.Tensor] | None = None

    def _advance(self) -> None:
        """Run the affine nodes up to the next piecewise node (or the end)."""
        prog = self.prog
        while self.i < len(prog.nodes) and not prog.nodes[self.i].piecewise:
            nd = prog.nodes[self.i]
            ins = [self.values[s] for s in nd.inputs]
            self.values[self.i] = nd.rule.float_forward(nd.module, ins)
            self._drop(self.i)
            self.i += 1

    def _drop(self, i: int) -> None:
        for s in set(self.prog.nodes[i].inputs):
            if s != INPUT and self.prog._last_use[s] <= i:
                del self.values[s]

    def switching(self) -> FloatMap:
        """Maps (R, d, S) of the next piecewise op's switching functions on the current rows."""
        self._advance()
        nd = self.prog.nodes[self.i]
        m = self.values[nd.inputs[0]]
        rule = nd.rule
        if (type(rule).switching is _ElementwiseRule.switching
                and list(rule.thresholds(nd.module)) == [0.0]):  # type: ignore[attr-defined]
            n, k = m.W.shape[0], m.W.shape[1]  # ReLU-like: the input itself, without copies
            return FloatMap(m.W.reshape(n, k, -1), m.b.reshape(n, -1))
        return rule.switching(nd.module, m)

    def apply(self, par: torch.Tensor | None, states: torch.Tensor) -> None:
        """Rows -> cells ``par`` (None: unchanged), then apply the next piecewise op."""
        n = len(states)
        live = sum(math.prod(v.b.shape[1:]) for v in self.values.values()) * (self.k + 1)
        if n * live > _STAGE_BUDGET:
            self.ok = False
            self.values = {}
            return
        if self.i == self.last:
            # the last piecewise op: the rest of the pass runs in row chunks in output() (the
            # gathered maps are the largest tensors of the pass; chunks stay in cache)
            self.deferred = (par, states)
            return
        if par is not None:
            self.values = {key: FloatMap(v.W.index_select(0, par), v.b.index_select(0, par))
                           for key, v in self.values.items()}
        self._apply_here(states)

    def _apply_here(self, states: torch.Tensor) -> None:
        nd = self.prog.nodes[self.i]
        m = self.values[nd.inputs[0]]
        self.values[self.i] = nd.rule.apply(nd.module, m, states.to(m.b.device))
        self._drop(self.i)
        self.i += 1

    def output(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Output maps (n, *out, d) and (n, *out) (rows expanded to ``n`` when there is one)."""
        if self.deferred is not None:
            par, states = self.deferred
            base, i0 = self.values, self.i
            live = sum(math.prod(v.b.shape[1:]) for v in base.values()) * (self.k + 1)
            ch = max(1, _CHUNK // max(1, live))
            Ws, bs = [], []
            for r0 in range(0, n, ch):
                rows = (par[r0:r0 + ch] if par is not None
                        else torch.arange(r0, min(n, r0 + ch), device=states.device))
                self.values = {key: FloatMap(v.W.index_select(0, rows), v.b.index_select(0, rows))
                               for key, v in base.items()}
                self.i = i0
                self._apply_here(states[r0:r0 + ch])
                self._advance()
                o = self.values[self.prog.output]
                Ws.append(o.W)
                bs.append(o.b)
            self.deferred = None
            out = FloatMap(torch.cat(Ws), torch.cat(bs))
        else:
            self._advance()
            out = self.values[self.prog.output]
        W, b = out.W, out.b
        if W.shape[0] != n:
            W, b = W.expand(n, *W.shape[1:]), b.expand(n, *b.shape[1:])
        return (W.movedim(1, -1).reshape(n, *self.prog.output_shape, self.k).contiguous(),
                b.reshape(n, *self.prog.output_shape).contiguous())


def _values_from_maps(sw: FloatMap, vid: torch.Tensor, V: torch.Tensor,
                      cap: int = 0) -> torch.Tensor:
    """Values (nV, S) at the vertices ``V`` of switching maps ``sw`` given per cell (rows of
    ``vid``: the cell's vertex ids); each vertex is read off one cell that contains it. The
    values are the first ``nV`` rows of the (max(nV, cap), S) result (the rest uninitialised)."""
    nV, d = V.shape
    R = sw.W.shape[0]
    W = sw.W.reshape(R, d, -1)
    b = sw.b.reshape(R, -1)
    S = W.shape[2]
    valid = vid >= 0
    rows = torch.arange(vid.shape[0], device=V.device).unsqueeze(1).expand_as(vid)
    # the last cell holding each vertex, chosen deterministically (an indexed assignment with
    # repeated indices lets any of them win when it runs on several threads)
    owner = torch.zeros(nV, dtype=torch.int64, device=V.device).scatter_reduce_(
        0, vid[valid], rows[valid], "amax", include_self=False)
    out = V.new_empty((max(nV, cap), S))
    if R == 1:
        out[:nV] = torch.addmm(b, V, W[0])
        return out
    ch = max(1, _BUDGET // max(1, d * S))
    for i in range(0, nV, ch):
        o = owner[i:i + ch]
        Wo = W.index_select(0, o)
        acc = b.index_select(0, o)
        for k in range(d):  # (many 1 x d times d x S products: elementwise beats batched mm)
            acc.addcmul_(V[i:i + ch, k:k + 1], Wo[:, k])
        out[i:min(nV, i + ch)] = acc
    return out


# --------------------------------------------------------------------------------- entry point


def trace(net: nn.Module | Program, domain: Any, *, input_shape: Sequence[int] | None = None,
          device: torch.device | str | None = None, progress: bool = True,
          max_regions: int | None = None, dtype: torch.dtype = torch.float64) -> Trace:
    """Enumerate the candidate linear regions of ``net`` over a bounded ``domain`` in float.

    ``domain``: a :class:`~exactrelu.domain.Box` (or a list of ``(lo, hi)`` pairs), a
    :class:`~exactrelu.domain.Polytope`, or a bounded :class:`~exactrelu.domain.Slice` (which gives
    the input shape). ``input_shape`` defaults to ``(d,)``. Runs on ``device`` (default: the
    model's), in ``dtype``. ``max_regions`` stops with :class:`~exactrelu.errors.RegionLimitError`.

    >>> net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 1))
    >>> tr = trace(net, [(-1, 1), (-1, 1)], progress=False)
    >>> tr.num_regions == len(set(tr.packed_patterns()))
    True
    """
    t_start = time.perf_counter()
    dom = as_domain(domain)
    if not dom.is_bounded:
        raise InvalidInputError(
            f"the float tracer needs a bounded domain, got {dom!r}; pass a Box "
            "(bounds=[(lo, hi), ...]); the exact layer handles all of R^d separately")
    if max_regions is not None and (isinstance(max_regions, bool)
                                    or not isinstance(max_regions, int) or max_regions < 1):
        raise InvalidInputError(f"max_regions must be a positive int or None, got {max_regions!r}")
    if dtype not in (torch.float64, torch.float32):
        raise InvalidInputError(f"dtype must be torch.float64 or torch.float32, got {dtype}")
    if isinstance(dom, Slice):
        shape = tuple(dom.input_shape)
        if input_shape is not None and math.prod(input_shape) != math.prod(shape):
            raise InvalidInputError(f"input_shape {tuple(input_shape)} does not match the slice's "
                                    f"input shape {shape}")
        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
    else:
        shape = tuple(int(s) for s in input_shape) if input_shape is not None else (dom.input_dim,)
    if isinstance(net, Program):
        prog = net
    elif isinstance(net, nn.Module):
        prog = capture(net, shape)
    else:
        raise InvalidInputError(f"expected a torch.nn.Module or Program, got {type(net).__name__}")
    if prog.in_dim != dom.input_dim:
        raise InvalidInputError(
            f"the domain has input dimension {dom.input_dim} but the model takes {prog.in_dim} "
            f"inputs (input shape {prog.input_shape})")
    d = dom.dim
    if d > 6:
        log.warning("tracing a %d-D domain: the tracer is meant for 1 to 6 dimensions", d)
    if device is None:
        p = next(itertools.chain(prog.net.parameters(), prog.net.buffers()), None)
        device = p.device if p is not None else torch.device("cpu")
    device = torch.device(device)
    eps = 1e-9 if dtype == torch.float64 else 1e-4

    A, _ = dom.float_halfspaces()
    m = A.shape[0]
    offsets = [m]
    for j in range(prog.num_piecewise):
        offsets.append(offsets[-1] + prog.num_switching(j))
    M, c = dom.float_input_map()
    M = M.to(device, dtype)
    c = c.to(device, dtype)

    cx = _Complex(d, device, dtype, max_regions, m, offsets[-1])
    cx.start(dom)
    patterns: list[torch.Tensor] = []
    nodes = prog.piecewise_nodes()
    total = offsets[-1] - offsets[0]
    with torch.inference_mode(), _few_threads(device) as threads, \
            progress_bar(total, "tracing", progress) as bar:
        st = _Stages(prog, M, c)
        rowhash = _RowHash(device)  # of the full patterns, built op by op (duplicate check)
        for j, nd in enumerate(nodes):
            label = f"op {j + 1}/{len(nodes)} ({nd.name or type(nd.module).__name__})"
            V = cx.V[:cx.nV]
            threads.size(cx.nV * prog.num_switching(j))
            cx.threads = threads
            cx.reserve()
            V = cx.V[:cx.nV]
            buf = None
            if st.ok:
                buf = _values_from_maps(st.switching(), cx.cp_vid[:cx.R], V, cx.V.shape[0])
                vals = buf[:cx.nV]
                orphan = torch.ones(cx.nV, dtype=torch.bool, device=device)
                cv = cx.cp_vid[:cx.R]
                orphan[cv[cv >= 0]] = False
                if bool(orphan.any()):  # never expected: every vertex is in some cell
                    o = orphan.nonzero().reshape(-1)
                    vals[o] = _switch_values(prog, j, V[o] @ M.T + c)
            else:
                vals = _switch_values(prog, j, V @ M.T + c)
            R0 = cx.R
            signs = cx.run_op(j, vals, offsets[j], eps, bar, label, buf)
            threads.size(cx.R * prog.num_switching(j))  # the steps may have left one thread
            par = cx.rparent[:cx.R]
            if cx.R != R0:
                patterns = [p.index_select(0, par) for p in patterns]
                rowhash.take(par)
            patterns.append(_states(nd, signs))
            rowhash.add(patterns[-1].reshape(cx.R, -1))
            if st.ok:
                st.apply(par if cx.R != R0 or R0 == 1 else None, patterns[-1])
            log.debug("%s: %d regions, %d vertices", label, cx.R, cx.nV)

        R = cx.R
        vid = cx.cp_vid[:R]
        tight = cx.cp_tight[:R]
        V = cx.V[:cx.nV]
        valid = vid >= 0
        nper = valid.sum(1)
        interior = (V[vid.clamp(min=0)] * valid.unsqueeze(2)).sum(1) / nper.unsqueeze(1)
        rv_off = torch.zeros(R + 1, dtype=torch.int64, device=device)
        rv_off[1:] = torch.cumsum(nper, 0)
        rv_ids = vid[valid]
        tr_, ts_, tt_ = (tight >= 0).nonzero(as_tuple=True)
        tids = tight[tr_, ts_, tt_]
        b_off, b_ids = _csr_from_pairs(tr_, tids, R)
        vt_off, vt_ids = _csr_from_pairs(vid[tr_, ts_], tids, cx.nV)
        edges = _edges(vid, tight, V, d)

        # records
        rec = cx.rec_start
        vanishing = _unique_rows2(rec[rec[:, 2] == 0][:, :2])
        degenerate = _unique_rows2(rec[rec[:, 2] == 1][:, :2])
        none = torch.zeros((0, 2), dtype=torch.int64, device=device)
        near = _unique_rows2(torch.cat(cx.near_zero)) if cx.near_zero else none
        over = _unique_rows2(torch.cat(cx.overflow)) if cx.overflow else none

        # equal full patterns: merged for MaxPool (documented), reported otherwise
        merged = 0
        duplicates = torch.zeros((0, 2), dtype=torch.int64, device=device)
        if patterns:
            g, G = _row_groups([p.reshape(R, -1) for p in patterns], rowhash.h)
            if G < R:
                if any(isinstance(nd.rule, MaxPool2dRule) for nd in nodes):
                    merged = R - G
                    (interior, patterns, (rv_off, rv_ids), (b_off, b_ids), vanishing,
                     degenerate) = _merge(g, G, interior, patterns, (rv_off, rv_ids),
                                          (b_off, b_ids), vanishing, degenerate)
                    R = G
                else:
                    o = torch.argsort(g, stable=True)
                    same = g[o][1:] == g[o][:-1]
                    duplicates = torch.stack([o[:-1][same], o[1:][same]], 1)
                    log.warning("%d regions share a full pattern with another region",
                                len(duplicates))

        if st.ok:
            ow, ob = st.output(cx.R)
            if R != cx.R:  # merged: one map per group (equal patterns, equal maps)
                first = torch.full((R,), cx.R, dtype=torch.int64, device=device).scatter_reduce_(
                    0, g, torch.arange(cx.R, device=device), "amin")
                ow, ob = ow[first], ob[first]
        else:
            ow, ob = _output_maps(prog, patterns, M, c, R)

    return Trace(
        domain=dom, program=prog, dim=d, num_regions=R,
        patterns=[_out(p) for p in patterns],
        interior=_out(interior, torch.float64),
        bounding_offsets=_out(b_off), bounding_ids=_out(b_ids),
        region_vertex_offsets=_out(rv_off), region_vertex_ids=_out(rv_ids),
        vertices=_out(V, torch.float64),
        vertex_tight_offsets=_out(vt_off), vertex_tight_ids=_out(vt_ids),
        edges=_out(edges), output_weight=_out(ow), output_bias=_out(ob),
        uncertain=Uncertain(_out(near), _out(vanishing), _out(over), _out(degenerate),
                            _out(duplicates)),
        constraint_offsets=offsets, seconds=time.perf_counter() - t_start, merged=merged)


def _out(t: torch.Tensor, dtype: torch.dtype | None = None) -> torch.Tensor:
    """``t`` on the CPU (in ``dtype``) as an ordinary tensor: the tracer runs under
    ``torch.inference_mode`` (less dispatch overhead per op), whose tensors refuse in-place
    updates outside it; called outside that mode, so a copy is made only where needed."""
    t = t.to("cpu", dtype if dtype is not None else t.dtype)
    return t.clone() if t.is_inference() else t


def _states(nd: Any, signs: torch.Tensor) -> torch.Tensor:
    """States of op ``nd`` from the region sign matrix (0 = vanishing: the rule's tie state)."""
    in_shape = nd.in_shapes[0]
    R, S = signs.shape
    per = S
    if isinstance(nd.rule, MaxPool2dRule):
        per = max(S, math.prod(in_shape) * math.prod(nd.out_shape))
    ch = max(1, _BUDGET // max(1, per))
    # the elementwise rules take the int8 signs as they are (comparisons only)
    plain = type(nd.rule).state_from_signs is _ElementwiseRule.state_from_signs
    out = [nd.rule.state_from_signs(nd.module, signs[i:i + ch] if plain
                                    else signs[i:i + ch].to(torch.int64), in_shape)
           for i in range(0, R, ch)]
    return torch.cat(out) if out else signs.new_zeros((0, *nd.out_shape), dtype=torch.int64)


def _merge(g: torch.Tensor, G: int, interior: torch.Tensor, patterns: list[torch.Tensor],
           rv: tuple[torch.Tensor, torch.Tensor], bd: tuple[torch.Tensor, torch.Tensor],
           vanishing: torch.Tensor, degenerate: torch.Tensor) -> tuple:
    """Merge regions with equal group id ``g`` (MaxPool sub-cells with one full pattern)."""
    dev = g.device
    cnt = torch.bincount(g, minlength=G).to(interior.dtype)
    inter = torch.zeros((G, interior.shape[1]), dtype=interior.dtype, device=dev)
    inter = inter.index_add_(0, g, interior) / cnt.unsqueeze(1)
    first = torch.full((G,), len(g), dtype=torch.int64, device=dev).scatter_reduce_(
        0, g, torch.arange(len(g), device=dev), "amin")
    pats = [p[first] for p in patterns]

    def regroup(csr: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        off, ids = csr
        rows = torch.repeat_interleave(torch.arange(len(off) - 1, device=dev), off[1:] - off[:-1])
        return _csr_from_pairs(g[rows], ids, G)

    def remap(rec: torch.Tensor) -> torch.Tensor:
        if len(rec) == 0:
            return rec
        r = rec.clone()
        r[:, 0] = g[r[:, 0]]
        return _unique_rows2(r)

    return inter, pats, regroup(rv), regroup(bd), remap(vanishing), remap(degenerate)
