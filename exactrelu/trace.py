"""The float tracer: enumerate the candidate linear regions of a network over a bounded domain.

Algorithm ("vertex-copy splitting, op by op, chunk by chunk, unit by unit"). The state is a
polyhedral complex in domain coordinates ``t``: global float vertices ``V`` and, per region, its
vertex *copies*, each with the ids of the constraints tight there (see
:attr:`Trace.constraint_offsets`), kept compactly between ops (one row per copy). It starts as the
domain polytope. For every piecewise op ``j`` in order, the regions at the start of the op (its
*start cells*) are put in a spatial order (Morton order, the cells made from one start cell of
the previous op together) and cut into chunks that fit a memory budget; each chunk is split on
its own, in padded tensors:

- the values of op ``j``'s switching functions at the chunk's vertices are computed (*Values*
  below), and each gets a sign code: positive, near zero (within a tolerance relative to the
  function's scale, its largest value at the domain's vertices and a fixed sample of points),
  negative;
- the functions that can cut a start cell are those with both strict signs at its vertices
  (pending pairs); each step splits every region with pending functions by its smallest one: each
  edge of the region (two copies sharing ``d - 1`` tight ids) whose endpoints have strictly
  opposite signs gets a new vertex by linear interpolation (shared between neighbouring regions),
  and the region becomes its two sides. Switching functions of op ``j`` are affine on every start
  cell, so interpolation (of coordinates and of the values of the other functions) is exact in
  real arithmetic. Every region sees its functions in increasing order, and so does every edge
  (only the functions that cut all its regions cross it); an edge crossed at an earlier step, or by
  an earlier chunk, of the op keeps its vertex.

Neighbouring regions in different chunks agree because each decision is made once: the sign codes
of a vertex shared with a later chunk, and the vertices made on the edges it shares, are kept
until the op ends and reused there (a later chunk recomputes only values, for interpolation). The
complex is thus the same for any chunking, up to rounding in vertex coordinates. A chunk whose
start cells would multiply (the first op splits the whole domain) takes the op's switching
functions in blocks, each with values computed afresh at the vertices of the moment. Memory is the
compact complex (copies, vertices, patterns packed to bits) plus one chunk; the fields of
:class:`Trace` that nothing needs during tracing (output maps, edges, tight lists per vertex,
unpacked patterns) are computed on request.

Values. The values of op ``j``'s switching functions at a point are those of the plain forward
pass (float64), continuous, so one per vertex whatever cell holds it. A vertex ``u`` that op
``j - 1`` made on the edge ``(a, b)`` at ``lam`` needs no forward pass: on the start cell of op
``j - 1`` holding that edge everything before op ``j - 1`` is affine, so ``z(u) = (1 - lam) z(a)
+ lam z(b) + J delta``, with ``J`` the linear map from op ``j - 1``'s outputs to op ``j``'s
switching functions (the affine ops between them) and ``delta`` op ``j - 1``'s outputs at ``u``
minus their interpolation between ``a`` and ``b``: zero except for the units with a switching
function of strictly opposite signs at ``a`` and ``b`` (a few), kept when ``u`` is made. The ends
are computed first (in order of depth). On a chain (each op reads only the previous one's
outputs), an older vertex takes one layer from its values at op ``j - 1``, derived the same way
from op ``j - 2``; what none of this reaches (a vertex whose ends are in another chunk, the
domain's corners) takes the forward pass. Where every op before ``j`` is elementwise, that layer
and that forward pass are replaced, for groups of nearby vertices, by an affine map of ``t`` plus
one term per unit whose state varies within the group (:meth:`_Tracer.local_values`: a few
against the op's width), checked against the forward pass at one point per group. The first
op's values come from its affine map on the domain.

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
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import torch
from torch import nn

from ._progress import progress_bar
from .capture import INPUT, Program, capture
from .domain import Domain, Slice, as_domain
from .errors import InvalidInputError, RegionLimitError
from .rules import FloatMap, MaxPool2dRule, _ElementwiseRule

__all__ = ["Trace", "Uncertain", "trace"]

log = logging.getLogger(__name__)

_BUDGET = 1 << 20  # elements per chunk of a batched intermediate
_PASS = 1 << 22  # elements per row block of a forward pass (each converts the weights once)
_CHUNK = 3 << 22  # vertices x switching functions a chunk of an op is sized for (larger
# chunks have fewer vertices on their boundaries and fewer steps per region: 2-512^3 traces
# about a fifth faster at 3 << 22 than at 1 << 22)
_BLOCK = 1 << 24  # vertices x switching functions a chunk may hold (else functions in blocks)
_MAX_TIGHT = 64  # tight ids kept per vertex copy; beyond this they are reported as overflow
_KEY = 1 << 31  # edge keys: min vertex id * _KEY + max vertex id
_INT16_IDS = 1 << 15  # tight ids are int16 below this many constraints, else int32
_BCAST = 1 << 18  # elements of a broadcast comparison of tight lists done at once
_DELTAS = 1 << 12  # entries of the next op's Jacobian from which an op keeps its deltas (below,
# the next op's forward pass costs less per vertex than keeping and reading the deltas: 2-16-16)
_DENSE_LERP = 1 << 15  # elements of an interpolation done on gathered rows (see _lerp_rows)
_SAMPLES = 256  # points per op at which the scale of each switching function is taken
_SEED = 12345  # of the random projections and sample points (the trace is deterministic)


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


# --------------------------------------------------------------------------------- packed states


def _encoding(nd: Any) -> int:
    """Bytes per state of op ``nd`` in packed form: 0 for bits (two states), else 1, 4 or 8."""
    rule = nd.rule
    if isinstance(rule, _ElementwiseRule):
        top = len(rule.thresholds(nd.module))
    elif isinstance(rule, MaxPool2dRule):
        top = math.prod(nd.in_shapes[0]) - 1
    else:  # a rule whose range of states is not known here
        return 8
    return 0 if top <= 1 else 1 if top <= 255 else 4 if top < 2 ** 31 else 8


def _packbits(mask: torch.Tensor) -> torch.Tensor:
    """Rows of a bool (or 0/1) matrix (n, u) packed to bits (n, ceil(u / 8)) uint8, the first
    column in the high bit of the first byte (as ``numpy.packbits``)."""
    if mask.device.type == "cpu":
        return torch.from_numpy(np.packbits(mask.numpy().astype(bool, copy=False), axis=1))
    n, u = mask.shape
    b = mask.to(torch.uint8)
    if u % 8:
        b = torch.cat([b, b.new_zeros((n, 8 - u % 8))], 1)
    sh = torch.arange(7, -1, -1, dtype=torch.uint8, device=b.device)
    return (b.reshape(n, -1, 8) << sh).sum(2, dtype=torch.uint8)


def _sign_bits(x: torch.Tensor,
               tol: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Rows of ``x`` (n, u) against ``tol`` (u,): the bits of ``x > tol`` and of ``x < -tol``
    packed (as :func:`_packbits`), and which rows have a value within ``tol`` of zero. On the CPU
    through numpy, whose comparisons there are several times faster than torch's."""
    if x.device.type == "cpu":
        xn, tn = x.numpy(), tol.numpy()
        p, q = xn > tn, xn < -tn
        zero = ~(p | q).all(1)
        return (torch.from_numpy(np.packbits(p, axis=1)), torch.from_numpy(np.packbits(q, axis=1)),
                torch.from_numpy(zero))
    above, below = x > tol, x < -tol
    return _packbits(above), _packbits(below), ~(above | below).all(1)


def _positive_bits(x: torch.Tensor) -> torch.Tensor:
    """The bits of ``x > 0`` for rows of an integer matrix, packed (as :func:`_packbits`); on
    the CPU through numpy (torch's int8 comparisons there are an order of magnitude slower)."""
    if x.device.type == "cpu":
        return torch.from_numpy(np.packbits(x.numpy() > 0, axis=1))
    return _packbits(x > 0)


def _opposite(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) where ``a`` and ``b`` (n, u) have strictly opposite signs, in row-major
    order (as ``nonzero``); on the CPU through numpy (several times faster there)."""
    if a.device.type == "cpu":
        an, bn = a.numpy().reshape(-1), b.numpy().reshape(-1)
        cand = np.flatnonzero(np.signbit(an) ^ np.signbit(bn))  # (zeros and NaNs among them)
        k = torch.from_numpy(cand[an[cand] * bn[cand] < 0])
        i = torch.div(k, a.shape[1], rounding_mode="floor")
        return i, k - i * a.shape[1]
    i, c = (a * b < 0).nonzero(as_tuple=True)
    return i, c


def _unpackbits(packed: torch.Tensor, u: int) -> torch.Tensor:
    """The inverse of :func:`_packbits`: bool (n, u)."""
    if packed.device.type == "cpu":
        return torch.from_numpy(np.unpackbits(packed.numpy(), axis=1, count=u).view(bool))
    sh = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    return torch.bitwise_and(packed.unsqueeze(2) >> sh, 1).reshape(len(packed), -1)[:, :u].bool()


def _pack(states: torch.Tensor, enc: int) -> torch.Tensor:
    """States (n, *shape) (non-negative ints) as rows of bytes (n, B) uint8: bits (as
    :func:`_packbits`), or ``enc`` little-endian bytes each."""
    n = states.shape[0]
    flat = states.reshape(n, -1)
    if enc == 0:
        return _packbits(flat != 0)
    if enc == 1:
        return flat.to(torch.uint8)
    x = flat.to(torch.int64)
    parts = [torch.bitwise_and(x >> (8 * k), 255) for k in range(enc)]
    return torch.stack(parts, 2).to(torch.uint8).reshape(n, -1)


def _unpack(packed: torch.Tensor, enc: int, shape: tuple[int, ...],
            dtype: torch.dtype = torch.int64) -> torch.Tensor:
    """The inverse of :func:`_pack`: states (n, *shape) in ``dtype``."""
    n = packed.shape[0]
    u = math.prod(shape)
    if enc == 0:
        return _unpackbits(packed, u).to(dtype).reshape(n, *shape)
    if enc == 1:
        return packed.to(dtype).reshape(n, *shape)
    b = packed.reshape(n, u, enc).to(torch.int64)
    x = b[:, :, 0]
    for k in range(1, enc):
        x = x | (b[:, :, k] << (8 * k))
    return x.to(dtype).reshape(n, *shape)


def _narrow(enc: int, top_small: bool) -> torch.dtype:
    if enc == 0 or (enc == 1 and top_small):
        return torch.int8
    return {1: torch.int16, 4: torch.int32}.get(enc, torch.int64)


class _Patterns(Sequence[torch.Tensor]):
    """A read-only list of the per-op state tensors of a :class:`Trace`, unpacked on access."""

    def __init__(self, tr: Trace) -> None:
        self._tr = tr

    def __len__(self) -> int:
        return len(self._tr._packed_states)

    def __getitem__(self, j: Any) -> Any:
        if isinstance(j, slice):
            return [self[i] for i in range(*j.indices(len(self)))]
        return self._tr.states(j if j >= 0 else j + len(self), torch.int64)

    def __repr__(self) -> str:
        return f"<{len(self)} state tensors of {self._tr.num_regions} regions>"


# --------------------------------------------------------------------------------- the trace


@dataclass
class Trace:
    """The float trace of a network over a domain (see the module docstring).

    Ids: constraint ``i < constraint_offsets[0]`` is row ``i`` of the domain's
    ``float_halfspaces()``; switching function ``s`` of piecewise op ``j`` is constraint
    ``constraint_offsets[j] + s``. CSR pairs (``*_offsets``, ``*_ids``) list, for item ``i``,
    ``ids[offsets[i]:offsets[i + 1]]``. All tensors are on the CPU. Patterns are kept packed
    (:meth:`states`, :meth:`packed_patterns`); ``patterns``, ``bounding``, ``vertex_tight``,
    ``edges`` and the output maps are computed on first access.

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
    interior: torch.Tensor
    region_vertex_offsets: torch.Tensor
    region_vertex_ids: torch.Tensor
    vertices: torch.Tensor
    uncertain: Uncertain
    constraint_offsets: list[int]
    seconds: float
    merged: int = 0
    # packed states per op (see _pack); the cells as traced: copy offsets per cell, the tight ids
    # of each copy (-1 padding), and (after a MaxPool merge) the region of each cell
    _packed_states: list[torch.Tensor] = field(default_factory=list, repr=False)
    _cell_offsets: torch.Tensor | None = field(default=None, repr=False)
    _cell_vertex_ids: torch.Tensor | None = field(default=None, repr=False)
    _copy_tight: torch.Tensor | None = field(default=None, repr=False)
    _cell_region: torch.Tensor | None = field(default=None, repr=False)
    _cache: dict = field(default_factory=dict, repr=False)

    # ----------------------------------------------------------------- patterns
    @property
    def patterns(self) -> Sequence[torch.Tensor]:
        """Per piecewise op, the states of every region (R, *out_shape) int64, unpacked on each
        access (``R x units x 8`` bytes per op: prefer :meth:`states` on large traces)."""
        return _Patterns(self)

    def states(self, j: int, dtype: torch.dtype | None = None) -> torch.Tensor:
        """States of piecewise op ``j`` for every region, shape (R, *out_shape), in ``dtype``
        (default: the narrowest integer type that holds them, int8 for ReLU-like ops)."""
        nd = self.program.piecewise_nodes()[j]
        enc = _encoding(nd)
        if dtype is None:
            dtype = _narrow(enc, not isinstance(nd.rule, MaxPool2dRule)
                            or math.prod(nd.in_shapes[0]) <= 128)
        return _unpack(self._packed_states[j], enc, tuple(nd.out_shape), dtype)

    def packed_states(self, j: int) -> torch.Tensor:
        """States of piecewise op ``j`` as rows of bytes (R, B) uint8, as kept: bits for
        two-state ops (first unit in the high bit of the first byte, as ``numpy.packbits``), else
        1, 4 or 8 little-endian bytes per unit (see :meth:`packed_patterns`). Equal rows iff
        equal states; the form to use on large traces."""
        return self._packed_states[j]

    def state_bytes(self, j: int) -> int:
        """Bytes per unit in :meth:`packed_states` of op ``j``: 0 for bits, else 1, 4 or 8."""
        return _encoding(self.program.piecewise_nodes()[j])

    def packed_patterns(self) -> list[bytes]:
        """One bytes key per region: its full pattern, ReLU-like ops as bits, others as bytes
        (uint8, or little-endian int32 for large MaxPool windows, int64 for other rules). Equal
        keys iff equal patterns."""
        if "packed" not in self._cache:
            if not self._packed_states:
                self._cache["packed"] = [b""] * self.num_regions
            else:
                allb = torch.cat(self._packed_states, 1).numpy()
                self._cache["packed"] = [row.tobytes() for row in allb]
        return self._cache["packed"]

    # ----------------------------------------------------------------- the complex
    def _copy_rows(self) -> torch.Tensor:
        off = self._cell_offsets
        assert off is not None
        return torch.repeat_interleave(torch.arange(len(off) - 1), off[1:] - off[:-1])

    def _tight_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(copy index, constraint id) of every tight id of every copy."""
        assert self._copy_tight is not None
        c, k = (self._copy_tight >= 0).nonzero(as_tuple=True)
        return c, self._copy_tight[c, k].to(torch.int64)

    def _cached(self, key: str, make: Any) -> Any:
        if key not in self._cache:
            self._cache[key] = make()
        return self._cache[key]

    def _bounding(self) -> tuple[torch.Tensor, torch.Tensor]:
        c, ids = self._tight_pairs()
        rows = self._copy_rows().index_select(0, c)
        if self._cell_region is not None:
            rows = self._cell_region.index_select(0, rows)
        return _csr_from_pairs(rows, ids, self.num_regions)

    def _vertex_tight(self) -> tuple[torch.Tensor, torch.Tensor]:
        c, ids = self._tight_pairs()
        assert self._cell_vertex_ids is not None
        return _csr_from_pairs(self._cell_vertex_ids.index_select(0, c), ids, self.num_vertices)

    @property
    def bounding_offsets(self) -> torch.Tensor:
        return self._cached("bounding", self._bounding)[0]

    @property
    def bounding_ids(self) -> torch.Tensor:
        return self._cached("bounding", self._bounding)[1]

    @property
    def bounding(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offsets, ids): candidate bounding constraint ids per region."""
        return self._cached("bounding", self._bounding)

    @property
    def vertex_tight_offsets(self) -> torch.Tensor:
        return self._cached("vertex_tight", self._vertex_tight)[0]

    @property
    def vertex_tight_ids(self) -> torch.Tensor:
        return self._cached("vertex_tight", self._vertex_tight)[1]

    @property
    def vertex_tight(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offsets, constraint ids) tight at each vertex (union over its regions)."""
        return self._cached("vertex_tight", self._vertex_tight)

    @property
    def edges(self) -> torch.Tensor:
        """(E, 2) int64 vertex id pairs (min, max), unique: the edges of the complex (of the
        cells as traced, before any MaxPool merge)."""
        assert self._cell_vertex_ids is not None and self._copy_tight is not None
        return self._cached("edges", lambda: _edges(self._copy_rows(), self._cell_vertex_ids,
                                                    self._copy_tight, self.vertices, self.dim))

    @property
    def region_vertices(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(offsets, vertex ids) per region."""
        return self.region_vertex_offsets, self.region_vertex_ids

    @property
    def num_vertices(self) -> int:
        return int(self.vertices.shape[0])

    def region_vertex_list(self, r: int) -> torch.Tensor:
        off = self.region_vertex_offsets
        return self.region_vertex_ids[off[r]:off[r + 1]]

    # ----------------------------------------------------------------- output maps
    def _output(self) -> tuple[torch.Tensor, torch.Tensor]:
        M, c = self.domain.float_input_map()
        return _output_maps(self.program, self, M.to(torch.float64), c.to(torch.float64),
                            self.num_regions)

    @property
    def output_weight(self) -> torch.Tensor:
        """(R, *out_shape, d): the output's local affine map on each region (weight)."""
        return self._cached("output", self._output)[0]

    @property
    def output_bias(self) -> torch.Tensor:
        """(R, *out_shape): the output's local affine map on each region (bias)."""
        return self._cached("output", self._output)[1]

    def __repr__(self) -> str:
        return (f"Trace(dim={self.dim}, num_regions={self.num_regions}, "
                f"vertices={self.num_vertices}, uncertain={self.uncertain.summary()}, "
                f"seconds={self.seconds:.3f})")


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
    if t.shape[-1] >= w:
        return t
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


def _segments(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For segments of ``counts`` items: the segment of each item and its rank within it."""
    seg = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)
    first = torch.cumsum(counts, 0) - counts
    return seg, torch.arange(len(seg), device=counts.device) - first.index_select(0, seg)


class _RowHash:
    """A random float64 projection of rows built from column blocks added one at a time (equal
    rows get equal hashes); rows may be gathered (``take``) between blocks."""

    def __init__(self, device: torch.device) -> None:
        self.gen = torch.Generator().manual_seed(_SEED)
        self.device = device
        self.h: torch.Tensor | None = None

    def take(self, rows: torch.Tensor) -> None:
        if self.h is not None:
            self.h = self.h.index_select(0, rows)

    def add(self, block: torch.Tensor) -> None:
        coef = torch.rand((block.shape[1], 1), generator=self.gen, dtype=torch.float64)
        coef = coef.to(self.device) + 0.5
        n = block.shape[0]
        part = torch.empty(n, dtype=torch.float64, device=self.device)
        ch = max(1, _BUDGET // max(1, block.shape[1]))
        for i in range(0, n, ch):
            part[i:i + ch] = (block[i:i + ch].to(torch.float64) @ coef).reshape(-1)
        self.h = part if self.h is None else self.h + part


def _row_groups(parts: Sequence[torch.Tensor],
                h: torch.Tensor | None = None) -> tuple[torch.Tensor, int]:
    """Group ids (inverse) and count of the distinct rows of the integer matrix whose column
    blocks are ``parts`` (each (n, w_i)).

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


def _expand(rec: torch.Tensor, par: torch.Tensor, n0: int) -> torch.Tensor:
    """Records (rows (cell, ...)) on ``n0`` cells -> the same records on each of their
    descendants, ``par`` giving the ancestor of every current cell."""
    if len(rec) == 0:
        return rec
    order = torch.argsort(par, stable=True)
    counts = torch.bincount(par, minlength=n0)
    starts = torch.cumsum(counts, 0) - counts
    rep = counts.index_select(0, rec[:, 0])
    idx = torch.repeat_interleave(torch.arange(len(rec), device=rec.device), rep)
    within = (torch.arange(len(idx), device=rec.device)
              - torch.repeat_interleave(torch.cumsum(rep, 0) - rep, rep))
    out = rec.index_select(0, idx).clone()
    out[:, 0] = order.index_select(0, starts.index_select(0, out[:, 0]) + within)
    return out


_POPCOUNT = torch.tensor([bin(i).count("1") for i in range(256)], dtype=torch.int64)


def _popcount(packed: torch.Tensor) -> torch.Tensor:
    """Set bits per row of packed bits (n, B) uint8, int64 (n,)."""
    return _POPCOUNT.to(packed.device)[packed.to(torch.int64)].sum(1)


def _bit_pairs(packed: torch.Tensor, u: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(row, column) of the set bits of packed bits (n, B) uint8 (as :func:`_packbits`) in
    columns below ``u``, in row-major order (as ``nonzero`` of the unpacked matrix); only the
    nonzero bytes are expanded."""
    r, b = packed.nonzero(as_tuple=True)
    sh = torch.arange(7, -1, -1, dtype=torch.uint8, device=packed.device)
    i, k = torch.bitwise_and(packed[r, b].unsqueeze(1) >> sh, 1).nonzero(as_tuple=True)
    col = b.index_select(0, i) * 8 + k
    keep = _where(col < u)
    return r.index_select(0, i).index_select(0, keep), col.index_select(0, keep)


def _add_sparse_rows(z: torch.Tensor, counts: torch.Tensor, cols: torch.Tensor,
                     vals: torch.Tensor, J: torch.Tensor) -> None:
    """``z += D @ J`` in place, ``D`` the sparse matrix (rows of ``z``, rows of ``J``) with
    ``counts`` entries per row (``cols``, ``vals``, row by row): one sparse-dense product, several
    times faster than an indexed add of the rows of ``J``."""
    crow = torch.zeros(len(counts) + 1, dtype=torch.int64, device=z.device)
    torch.cumsum(counts, 0, out=crow[1:])
    with warnings.catch_warnings():  # (sparse CSR tensors are "beta" in torch 2.x)
        warnings.simplefilter("ignore", UserWarning)
        D = torch.sparse_csr_tensor(crow, cols, vals, size=(len(z), J.shape[0]),
                                    check_invariants=False)
        torch.addmm(z, D, J, out=z)


def _lerp_rows(src: torch.Tensor, a: torch.Tensor, b: torch.Tensor, lam: torch.Tensor,
               out: torch.Tensor) -> torch.Tensor:
    """``out[i] = (1 - lam[i]) src[a[i]] + lam[i] src[b[i]]`` (``out`` contiguous, apart from
    ``src``'s storage or a disjoint part of it); on the CPU as one sparse-dense product with two
    entries per row, which reads each row of ``src`` it needs once and writes ``out`` once (the
    gathered copies of :func:`torch.lerp` cost as much again at wide ops). The two forms round
    differently (within an ulp or two of the values): either is a float proposal. Below
    ``_DENSE_LERP`` elements (where the sparse product's fixed cost, about 0.2 ms, dominates) the
    same sum of two products on gathered rows (on the CPU the same roundings as the sparse
    product: the tests compare them)."""
    if src.device.type != "cpu" or len(a) == 0:
        return torch.lerp(src.index_select(0, a), src.index_select(0, b), lam.unsqueeze(1),
                          out=out)
    n = len(a)
    if n * src.shape[1] <= _DENSE_LERP:
        lo = (1 - lam).to(src.dtype).unsqueeze(1)
        torch.mul(src.index_select(0, a), lo, out=out)
        return out.add_(src.index_select(0, b).mul_(lam.to(src.dtype).unsqueeze(1)))
    crow = torch.arange(0, 2 * n + 1, 2, dtype=torch.int64, device=src.device)
    with warnings.catch_warnings():  # (sparse CSR tensors are "beta" in torch 2.x)
        warnings.simplefilter("ignore", UserWarning)
        P = torch.sparse_csr_tensor(crow, torch.stack([a, b], 1).reshape(-1),
                                    torch.stack([1 - lam, lam], 1).reshape(-1).to(src.dtype),
                                    size=(n, src.shape[0]), check_invariants=False)
        return torch.addmm(out, P, src, beta=0, out=out)


def _values_at(vals: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``vals[rows[k], cols[k]]`` for each k (``vals`` contiguous), read from its flat storage."""
    return vals.view(-1).index_select(0, rows * vals.shape[1] + cols)


def _codes(vals: torch.Tensor, tol: torch.Tensor) -> torch.Tensor:
    """Sign codes (uint8) of values: 2 positive, 1 within ``tol`` of zero, 0 negative."""
    code = (vals > tol).to(torch.uint8)
    code += 1
    code -= (vals < -tol).to(torch.uint8)
    return code


def _morton(P: torch.Tensor, bits: int = 20) -> torch.Tensor:
    """Morton (Z-order) keys of points ``P`` (n, d) in their bounding box (at most ``bits`` bits
    per coordinate)."""
    n, d = P.shape
    bits = max(1, min(bits, 62 // max(d, 1)))
    lo = P.amin(0)
    span = (P.amax(0) - lo).clamp(min=1e-300)
    q = ((P - lo) / span * ((1 << bits) - 1)).round().to(torch.int64)
    key = torch.zeros(n, dtype=torch.int64, device=P.device)
    for b in range(bits - 1, -1, -1):
        for k in range(d):
            key = (key << 1) | torch.bitwise_and(q[:, k] >> b, 1)
    return key


# --------------------------------------------------------------------------------- the complex


class _Complex:
    """The complex between ops: vertices ``V`` and cells as rows of vertex copies (``off``: copy
    offsets per cell; ``cv``: each copy's vertex; ``ct``: its tight ids, -1 padding)."""

    def __init__(self, d: int, device: torch.device, dtype: torch.dtype, num_constraints: int,
                 dom: Domain) -> None:
        self.d = d
        self.device = device
        self.dtype = dtype
        # tight ids: int16 when every constraint id fits (halves the largest gathers and scatters
        # of the steps), else int32
        self.tdtype = torch.int16 if num_constraints < _INT16_IDS else torch.int32
        A, b = dom.halfspaces()
        verts = dom.vertices()
        tight: list[list[int]] = []
        for v in verts:
            q = [Fraction(x) for x in v]
            tight.append([i for i, (row, bi) in enumerate(zip(A, b, strict=True))
                          if sum((a * x for a, x in zip(row, q, strict=True)), Fraction(0)) == bi])
        for i, t in enumerate(tight):
            if len(t) < d:
                log.warning("domain vertex %d has only %d tight rows", i, len(t))
        self.T = max(d + 4, max(len(t) for t in tight) + 2)
        nv = len(verts)
        self._V = torch.tensor([[float(x) for x in v] for v in verts], dtype=dtype, device=device)
        self.nV = nv
        self.off = torch.tensor([0, nv], dtype=torch.int64, device=device)
        self.cv = torch.arange(nv, device=device)
        ct = torch.full((nv, self.T), -1, dtype=self.tdtype)
        for i, t in enumerate(tight):
            ct[i, :len(t)] = torch.tensor(t, dtype=self.tdtype)
        self.ct = ct.to(device)

    @property
    def R(self) -> int:
        return len(self.off) - 1

    @property
    def V(self) -> torch.Tensor:
        return self._V[:self.nV]

    def add_vertices(self, X: torch.Tensor) -> None:
        self._V = _grow(self._V, self.nV + len(X), None)
        self._V[self.nV:self.nV + len(X)] = X
        self.nV += len(X)

    def centroids(self) -> torch.Tensor:
        counts = self.off[1:] - self.off[:-1]
        rows, _ = _segments(counts)
        s = torch.zeros((self.R, self.d), dtype=self.dtype, device=self.device)
        s.index_add_(0, rows, self.V.index_select(0, self.cv))
        return s / counts.unsqueeze(1).to(s.dtype)


@dataclass
class _Part:
    """A finished chunk: its cells (copy counts, vertex ids, tight ids), their start cells,
    their packed states of the op, and region records (local rows)."""

    counts: torch.Tensor
    cv: torch.Tensor
    ct: torch.Tensor
    parent: torch.Tensor
    packed: torch.Tensor
    rec: torch.Tensor

    @property
    def R(self) -> int:
        return len(self.counts)


class _Made:
    """The vertices an op makes, kept for the next op's values (module docstring, *Values*).

    Per vertex (global id ``nV0 + i``, made in id order): the ends of the edge it was made on
    (``ea``, ``eb``; -1 when not kept), where it sits between them (``lam``), its depth (1 + the
    larger depth of its ends; vertices older than the op have depth 0), and the changes of the
    op's outputs along its edge, ``delta`` as (vertex, unit, value) entries in vertex order."""

    def __init__(self, nV0: int, device: torch.device, dtype: torch.dtype) -> None:
        self.nV0, self.n, self.entries = nV0, 0, 0
        self.ea = torch.zeros(0, dtype=torch.int64, device=device)
        self.eb = torch.zeros(0, dtype=torch.int64, device=device)
        self.level = torch.zeros(0, dtype=torch.int64, device=device)
        self.lam = torch.zeros(0, dtype=dtype, device=device)
        self.parts: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []

    def depth(self, gid: torch.Tensor) -> torch.Tensor:
        k = gid - self.nV0
        out = torch.zeros_like(k)
        new = _where(k >= 0)
        out[new] = self.level.index_select(0, k.index_select(0, new))
        return out

    def add(self, ea: torch.Tensor, eb: torch.Tensor, lam: torch.Tensor, level: torch.Tensor,
            delta: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None) -> None:
        """The next ``len(ea)`` vertices (``delta`` None: not kept, ends -1)."""
        n, U = self.n, len(ea)
        self.ea, self.eb, self.level = (_grow(x, n + U, None) for x in (self.ea, self.eb,
                                                                         self.level))
        self.lam = _grow(self.lam, n + U, None)
        if delta is None:
            ea = eb = torch.full_like(ea, -1)
        else:
            k, t, v = delta
            self.parts.append((k + n, t, v))
            self.entries += len(k)
        self.ea[n:n + U], self.eb[n:n + U], self.lam[n:n + U] = ea, eb, lam
        self.level[n:n + U] = level
        self.n = n + U

    def extend(self, k: torch.Tensor, t: torch.Tensor, v: torch.Tensor) -> None:
        """More delta entries, of vertices ``nV0 + k`` made earlier."""
        self.parts.append((k, t, v))
        self.entries += len(k)

    def over(self, more: int) -> bool:
        """Whether ``more`` entries would pass 64 a vertex (past a first million)."""
        return self.entries + more > 64 * self.n + (1 << 20)

    def drop(self, k: torch.Tensor) -> None:
        """Vertices ``nV0 + k`` not kept after all."""
        self.ea[k] = -1
        self.eb[k] = -1

    def finish(self) -> None:
        """The delta entries as CSR (``doff``, ``dunit``, ``dval``) over the vertices."""
        dev = self.ea.device
        if self.parts:
            k, t, v = (torch.cat(x) for x in zip(*self.parts, strict=True))
            o = torch.argsort(k, stable=True)
            k, t, v = k.index_select(0, o), t.index_select(0, o), v.index_select(0, o)
        else:
            k = t = torch.zeros(0, dtype=torch.int64, device=dev)
            v = self.lam[:0]
        self.parts = []
        self.doff = torch.zeros(self.n + 1, dtype=torch.int64, device=dev)
        self.doff[1:] = torch.cumsum(torch.bincount(k, minlength=self.n), 0)
        self.dunit, self.dval = t, v


def _jacobian(prog: Program, j: int, dtype: torch.dtype,
              device: torch.device) -> tuple[torch.Tensor, torch.Tensor] | None:
    """(U, S) and (S,): op ``j``'s switching functions as linear functions of op ``j - 1``'s U
    outputs (the affine ops between the two, without their constants), and those constants
    (meaningful on a chain only, see :meth:`_Tracer.chain`: other inputs count as zero); None
    when it would not fit in ``_BUDGET`` elements per value."""
    lo, hi = prog.piecewise[j - 1], prog.piecewise[j]
    nodes = prog.nodes
    shape = tuple(nodes[lo].out_shape)
    U = math.prod(shape)
    if U * _max_numel(prog) > _BUDGET:
        return None
    values: dict[int, FloatMap] = {}
    for i in range(lo + 1, hi + 1):
        for src in nodes[i].inputs:
            if src <= lo and src not in values:
                sh = tuple(prog.input_shape) if src == INPUT else tuple(nodes[src].out_shape)
                W = (torch.eye(U, dtype=dtype, device=device) if src == lo
                     else torch.zeros((U, math.prod(sh)), dtype=dtype, device=device))
                values[src] = FloatMap(W.reshape(1, U, *sh),
                                       torch.zeros((1, *sh), dtype=dtype, device=device))
    prog.run_nodes(values, lo + 1, hi, lambda i, nd, ins: _forward(nd, ins))
    nd = nodes[hi]
    sw = nd.rule.switching(nd.module, values[nd.inputs[0]])  # type: ignore[attr-defined]
    return sw.W.reshape(U, -1), sw.b.reshape(-1)


class _Table:
    """Rows found by unique int64 keys: columns appended to (amortised growth) and a sorted index
    of the keys, the keys added since the last :meth:`settle` kept in an index of their own (so
    adding sorts only those)."""

    def __init__(self, device: torch.device, **columns: tuple[torch.dtype, int]) -> None:
        self.n = 0
        self.cols = {k: torch.empty((0, w) if w else (0,), dtype=dt, device=device)
                     for k, (dt, w) in columns.items()}
        none = torch.zeros(0, dtype=torch.int64, device=device)
        self.keys, self.rows, self.new_keys, self.new_rows = none, none, none, none

    def __len__(self) -> int:
        return len(self.keys) + len(self.new_keys)

    def col(self, name: str) -> torch.Tensor:
        return self.cols[name]

    def add(self, keys: torch.Tensor, **values: torch.Tensor) -> None:
        n, k = self.n, len(keys)
        for name, v in values.items():
            c = self.cols[name] = _grow(self.cols[name], n + k, None)
            c[n:n + k] = v
        rows = torch.arange(n, n + k, device=keys.device)
        nk = torch.cat([self.new_keys, keys])
        o = torch.argsort(nk)
        self.new_keys = nk.index_select(0, o)
        self.new_rows = torch.cat([self.new_rows, rows]).index_select(0, o)
        self.n = n + k

    def find(self, keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(found, row) for each key (row meaningless where not found)."""
        found = torch.zeros(len(keys), dtype=torch.bool, device=keys.device)
        row = torch.zeros(len(keys), dtype=torch.int64, device=keys.device)
        for ks, rs in ((self.keys, self.rows), (self.new_keys, self.new_rows)):
            if len(ks):
                at = torch.searchsorted(ks, keys).clamp(max=len(ks) - 1)
                hit = ks.index_select(0, at) == keys
                row = torch.where(hit, rs.index_select(0, at), row)
                found |= hit
        return found, row

    def settle(self, keep: Any = None) -> None:
        """Merge the keys added since the last call into the index (a linear merge), only those
        whose rows pass ``keep`` (a function of rows) when given; compact the columns once most
        of their rows are dropped."""
        nk, nr = self.new_keys, self.new_rows
        if keep is not None and len(nk):
            k = _where(keep(nr))
            nk, nr = nk.index_select(0, k), nr.index_select(0, k)
        self.new_keys, self.new_rows = self.new_keys[:0], self.new_rows[:0]
        if len(nk):
            n1, n2 = len(self.keys), len(nk)
            at_new = torch.searchsorted(self.keys, nk) + torch.arange(n2, device=nk.device)
            at_old = torch.searchsorted(nk, self.keys) + torch.arange(n1, device=nk.device)
            keys = torch.empty(n1 + n2, dtype=nk.dtype, device=nk.device)
            rows = torch.empty(n1 + n2, dtype=nr.dtype, device=nk.device)
            keys[at_new], rows[at_new] = nk, nr
            keys[at_old], rows[at_old] = self.keys, self.rows
            self.keys, self.rows = keys, rows
        if keep is not None and 2 * len(self.rows) < self.n:
            self.cols = {k: c.index_select(0, self.rows) for k, c in self.cols.items()}
            self.n = len(self.rows)
            self.rows = torch.arange(self.n, device=self.rows.device)


class _Op:
    """One piecewise op: what its chunks share. The edges crossed so far and the sign codes of
    vertices shared with later chunks live until the op ends."""

    def __init__(self, tr: _Tracer, j: int) -> None:
        self.j = j
        self.nd = tr.nodes[j]
        self.S = tr.prog.num_switching(j)
        self.sid0 = tr.offsets[j]
        dev = tr.device
        none = torch.zeros(0, dtype=torch.int64, device=dev)
        i64 = (torch.int64, 0)
        # edges crossed (by key): the new vertex, the positive and negative ends, where it sits
        self.edges = _Table(dev, v=i64, a=i64, b=i64, lam=(tr.dtype, 0))
        # sign codes of vertices shared with later chunks (by global id)
        self.codes = _Table(dev, code=(torch.uint8, self.S))
        self.loc = torch.full((tr.cx.nV,), -1, dtype=torch.int64, device=dev)  # global -> local
        self.next_gid = tr.cx.nV
        # per vertex, the last position (in the op's order of start cells) of a cell holding it
        self.last = torch.zeros(tr.cx.nV, dtype=torch.int64, device=dev)
        # the scale of each switching function: its largest value at the domain's vertices and a
        # fixed sample of points (any positive scale works: it sets what "near zero" means)
        scale = tr.switch_values(j, tr.samples).abs().amax(0) if self.S else none.to(tr.dtype)
        self.tol = tr.tols[j] = tr.eps * scale
        # values from the vertices the previous op made (when it kept them), and what this op
        # makes kept for the next (an elementwise op after the first, its start cells small, with
        # slopes shared by its units: the changes along an edge are read off one table)
        self.prev = tr.made if tr.made is not None and tr.jacobian(j) is not None else None
        self.prev2 = (tr.made2 if self.prev is not None and tr.made2 is not None
                      and tr.chain(j) and tr.jacobian(j - 1) is not None else None)
        self.made = None
        rule = self.nd.rule
        if (isinstance(rule, _ElementwiseRule) and j < len(tr.nodes) - 1
                and rule.unit_slopes(self.nd.module, tuple(self.nd.in_shapes[0])) is None
                and (J := tr.jacobian(j + 1)) is not None and J.numel() >= _DELTAS):
            self.made = _Made(tr.cx.nV, dev, tr.dtype)
            self.ts = rule.thresholds(self.nd.module)
            self.table = tr.slopes(j)

    def stored(self, gid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """For global vertex ids: which have stored codes, and their code rows (found only)."""
        found, row = self.codes.find(gid)
        return found, self.codes.col("code").index_select(0, row[found])

    def settle(self) -> None:
        """After a chunk: the edges kept are those whose new vertex a later chunk can see (its
        codes are stored)."""
        self.codes.settle()
        made = self.edges.col("v")
        self.edges.settle(lambda rows: self.codes.find(made.index_select(0, rows))[0])


class _Chunk:
    """Start cells of one chunk of an op, as padded rows of vertex copies with local vertex ids
    (``gid``: their global ids), split by the op's switching functions (module docstring)."""

    def __init__(self, tr: _Tracer, op: _Op, cells: torch.Tensor, end: int,
                 outside: int) -> None:
        cx = tr.cx
        dev = tr.device
        self.tr, self.op, self.cx = tr, op, cx
        self.d, self.T, self.tdtype, self.device = cx.d, cx.T, cx.tdtype, dev
        self.outside, self.cells = outside, cells
        n = len(cells)
        starts = cx.off.index_select(0, cells)
        counts = cx.off.index_select(0, cells + 1) - starts
        rows, pos = _segments(counts)
        src = starts.index_select(0, rows) + pos
        gid, inv = torch.unique(cx.cv.index_select(0, src), return_inverse=True)
        width = max(8, int(counts.max()) + 4)
        cap = 2 * n + 64
        self.cp_vid = torch.full((cap, width), -1, dtype=torch.int64, device=dev)
        self.cp_vid[rows, pos] = inv
        self.cp_tight = torch.full((cap, width, self.T), -1, dtype=self.tdtype, device=dev)
        self.cp_tight[rows, pos] = cx.ct.index_select(0, src)
        self.rparent = torch.empty(cap, dtype=torch.int64, device=dev)  # -> chunk start row
        self.rparent[:n] = torch.arange(n, device=dev)
        self.bpar = torch.empty(cap, dtype=torch.int64, device=dev)  # -> block start row
        self.rsign = torch.empty((cap, op.S), dtype=torch.int8, device=dev)
        self.R = n
        m = len(gid)
        self.nV = m
        self.gid = _grow(gid, 2 * m + 64, None)
        self.V = _grow(cx.V.index_select(0, gid), 2 * m + 64, None)
        self.bnd = torch.zeros(self.gid.shape[0], dtype=torch.bool, device=dev)
        self.bnd[:m] = op.last.index_select(0, gid) >= end  # in a later chunk too
        op.loc = _grow(op.loc, cx.nV, -1)
        op.loc[gid] = torch.arange(m, device=dev)
        self.own0 = op.next_gid  # global ids from here on are vertices made by this chunk
        self.rec = torch.zeros((0, 3), dtype=torch.int64, device=dev)  # (row, id, kind) records
        self.vals: torch.Tensor  # values of the moment (set by run)
        # the sign bits of ``vals`` row by row (as :func:`_packbits`), kept while deltas are
        # (:meth:`_opposite_rows`) and the functions are not in blocks; else None
        self.sgn: torch.Tensor | None = None
        self.saved: list[tuple[torch.Tensor, int, torch.Tensor]] = []  # codes to store
        # sign codes are computed from the values where they are read, except for vertices an
        # earlier chunk decided: ``flag`` gives their row of ``frows`` (all functions), else -1
        self.flag = torch.full((self.gid.shape[0],), -1, dtype=torch.int64, device=dev)
        found, self.frows = op.stored(gid)
        hit = _where(found)
        self.flag[hit] = torch.arange(len(hit), device=dev)
        self.bnd[hit] = True

    # ----------------------------------------------------------------- vertex rows
    def _reserve_vertices(self, n: int) -> None:
        if n > self.vals.shape[0]:
            self.vals = _grow(self.vals, n, None)
        if self.sgn is not None and n > self.sgn.shape[0]:
            self.sgn = _grow(self.sgn, n, None)
        if n > self.gid.shape[0]:
            self.gid = _grow(self.gid, n, None)
            self.V = _grow(self.V, n, None)
            self.bnd = _grow(self.bnd, n, False)
            self.flag = _grow(self.flag, n, -1)

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

    def _ensure_rows(self, n: int) -> None:
        if n > self.cp_vid.shape[0]:
            self.cp_vid = _grow(self.cp_vid, n, -1)
            self.cp_tight = _grow(self.cp_tight, self.cp_vid.shape[0], -1)
            self.rparent = _grow(self.rparent, self.cp_vid.shape[0], None)  # rows set when used
            self.bpar = _grow(self.bpar, self.cp_vid.shape[0], None)
            self.rsign = _grow(self.rsign, self.cp_vid.shape[0], None)

    # ----------------------------------------------------------------- the chunk
    def run(self, progress: Any) -> _Part:
        """Split the chunk by every switching function of the op; its finished cells."""
        op, S, m, n = self.op, self.op.S, self.nV, self.R
        # values in the tracer's reusable buffer (its pages are already touched)
        vals = self.tr.scratch("vals", (max(4 * m + 64, _CHUNK // max(S, 1)), S))
        self._start_values(vals[:m])
        # vertices the chunk may reach: a cell cut by k functions makes at most about
        # k^d / 2^d + k new ones; a chunk that could outgrow 4 _CHUNK, or _BLOCK with vertices
        # that multiply by more than 8 (the first op splits the whole domain), takes the
        # functions in blocks of _BLOCK
        self.vals, self.s0, self.tol = vals, 0, op.tol
        cuts: tuple | None = self._cut_sets(n)
        assert cuts is not None
        k = _popcount(cuts[0] & cuts[1]).to(torch.float64)
        grow = float((k ** self.d / 2 ** self.d + k).sum())
        est = int(m + grow) + 64
        big = est * S > max(_BLOCK, 4 * _CHUNK) or (est * S > _BLOCK and est > 8 * m)
        width = max(1, _BLOCK // est) if big else S
        self._ensure_rows(n + int(grow) + 64)
        if width < S:
            cuts = None
        # deltas are kept for the next op; with functions in blocks, for single-threshold ops
        self.keep = op.made is not None and (width == S or len(op.ts) == 1)
        # buffers sized for the estimate (pages never written are never touched)
        self.gid = _grow(self.gid, est, None)
        self.V = _grow(self.V, est, None)
        self.bnd = _grow(self.bnd, est, False)
        self.flag = _grow(self.flag, est, -1)
        s0 = 0
        while True:
            s1 = min(S, s0 + width)
            if s0 == 0 and s1 == S:
                if est > len(vals):
                    vals = self.tr.scratch("vals", (est, S), keep=m)
                self.vals = vals
                del vals
                if self.keep:
                    self.sgn = torch.empty((self.vals.shape[0], (S + 7) // 8), dtype=torch.uint8,
                                           device=self.device)
                    ch = max(1, _BUDGET // max(1, S))
                    for v0 in range(0, m, ch):
                        v1 = min(m, v0 + ch)
                        self.sgn[v0:v1] = _packbits(torch.signbit(self.vals[v0:v1]))
            elif s0 == 0:
                self.vals = vals.new_empty((est, s1))
                self.vals[:m] = vals[:m, :s1]
                del vals
            else:
                self.vals = self.vals.new_empty((max(est, 2 * self.nV + 64), s1 - s0))
                self.vals[:self.nV] = self.tr.switch_values(op.j, self.V[:self.nV], (s0, s1))
                self.s0, self.tol = s0, op.tol[s0:s1]
                if self.keep:
                    self._delta_block()
            self._block(s0, s1, cuts)
            cuts = None
            bm = _where(self.bnd[:self.nV])
            if len(bm):
                self.saved.append((bm, s0, self._row_codes(bm)))
            progress(len(self.cells), s1 - s0)
            if s1 >= S:
                break
            s0 = s1
        return self._finish()

    def _start_values(self, vals: torch.Tensor) -> None:
        """Values of the op's switching functions at the chunk's vertices, into ``vals`` (m, S):
        see :meth:`_derive`; on a chain (each op reads only the previous one's outputs), the
        vertices older than the previous op by one layer from their values at the previous op,
        derived the same way from the op before it."""
        op, m, tr = self.op, self.nV, self.tr
        if op.prev is None:
            vals[:] = tr.switch_values(op.j, self.V[:m])
            return
        given = None
        old = _where(self.gid[:m] < op.prev.nV0)
        if op.prev2 is not None and len(old):
            below = vals.new_empty((len(old), tr.prog.num_switching(op.j - 1)))
            self._derive(below, old, op.j - 1, op.prev2)
            tr.local_values(op.j, self.V.index_select(0, old), op.tol, vals, old, below)
            del below
            given = torch.zeros(m, dtype=torch.bool, device=self.device)
            given[old] = True
        self._derive(vals, torch.arange(m, device=self.device), op.j, op.prev, given)

    def _derive(self, out: torch.Tensor, X: torch.Tensor, j: int, made: _Made,
                given: torch.Tensor | None = None) -> None:
        """Values of op ``j``'s switching functions at local vertices ``X``, into ``out``
        (rows ``given`` already there): for a vertex op ``j - 1`` made on the edge (a, b) at lam
        (ends in ``X``), ``(1 - lam) z(a) + lam z(b) + J delta`` (ends first: in order of
        depth); for the others, :meth:`_Tracer.local_values`."""
        tr = self.tr
        n = len(X)
        pos = torch.full((self.nV,), -1, dtype=torch.int64, device=self.device)
        pos[X] = torch.arange(n, device=self.device)
        k = self.gid.index_select(0, X) - made.nV0
        la = torch.full_like(k, -1)
        lb = torch.full_like(k, -1)
        new = _where(k >= 0)
        kn = k.index_select(0, new)
        ea, eb = made.ea.index_select(0, kn), made.eb.index_select(0, kn)
        kept = _where((ea >= 0) & (eb >= 0))
        for ends, e in ((la, ea), (lb, eb)):
            loc = self.op.loc.index_select(0, e.index_select(0, kept))
            ends[new[kept]] = torch.where(loc >= 0, pos.index_select(0, loc.clamp(min=0)), -1)
        derived = (la >= 0) & (lb >= 0)
        todo = ~derived if given is None else ~derived & ~given
        if given is not None:
            derived &= ~given
        scratch = _where(todo)
        if len(scratch):
            tr.local_values(j, self.V.index_select(0, X.index_select(0, scratch)), tr.tols[j],
                            out, scratch)
        rows = _where(derived)
        if len(rows) == 0:
            return
        J = tr.jacobian(j)
        assert J is not None
        kr = k.index_select(0, rows)
        depth = made.level.index_select(0, kr)
        ch = max(1, _BUDGET // max(1, out.shape[1]))
        for lev in torch.unique(depth).tolist():
            at = _where(depth == lev)
            for i in range(0, len(at), ch):
                sel = at[i:i + ch]
                r, kk = rows.index_select(0, sel), kr.index_select(0, sel)
                a, b = la.index_select(0, r), lb.index_select(0, r)
                z = _lerp_rows(out, a, b, made.lam.index_select(0, kk),
                               tr.scratch("a", (len(a), out.shape[1])))
                # the delta entries of these vertices, as a sparse matrix (rows of z, units)
                lo, hi = made.doff.index_select(0, kk), made.doff.index_select(0, kk + 1)
                seg, p = _segments(hi - lo)
                if len(seg):
                    e = lo.index_select(0, seg) + p
                    _add_sparse_rows(z, hi - lo, made.dunit.index_select(0, e),
                                     made.dval.index_select(0, e), J)
                out.index_copy_(0, r, z)

    def _row_codes(self, rows: torch.Tensor) -> torch.Tensor:
        """Sign codes (len(rows), functions of the block) of local vertices ``rows``."""
        code = _codes(self.vals.index_select(0, rows), self.tol)
        f = self.flag.index_select(0, rows)
        hit = _where(f >= 0)
        if len(hit):
            w = code.shape[1]
            code[hit] = self.frows.index_select(0, f.index_select(0, hit))[:, self.s0:self.s0 + w]
        return code

    def _code_at(self, v: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Sign codes at local vertices ``v`` of block functions ``s`` (same shapes)."""
        w = self.vals.shape[1]
        x = self.vals.reshape(-1).index_select(0, (v * w + s).reshape(-1)).reshape(v.shape)
        code = _codes(x, self.tol.index_select(0, s.reshape(-1)).reshape(s.shape))
        if len(self.frows):
            f = self.flag.index_select(0, v.reshape(-1)).reshape(v.shape)
            hit = f >= 0
            if bool(hit.any()):
                code[hit] = self.frows[f[hit], s[hit] + self.s0]
        return code

    def _cut_sets(self, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(has a positive vertex, has a negative vertex) per cell 0..n-1 and function, packed
        (n, ceil(functions / 8)) as :func:`_packbits` (the sign bits of its vertices, or-ed over
        its copies), and which vertices have a code near zero."""
        nV, S = self.nV, self.vals.shape[1]
        dev = self.device
        B = (S + 7) // 8
        pos = torch.zeros((nV + 1, B), dtype=torch.uint8, device=dev)
        neg = torch.zeros((nV + 1, B), dtype=torch.uint8, device=dev)
        zero = torch.zeros(nV, dtype=torch.bool, device=dev)
        ch = max(1, _BUDGET // max(1, S))
        flagged = _where(self.flag[:nV] >= 0)
        for v0 in range(0, nV, ch):
            x = self.vals[v0:min(nV, v0 + ch)]
            pos[v0:v0 + len(x)], neg[v0:v0 + len(x)], zero[v0:v0 + len(x)] = _sign_bits(
                x, self.tol)
        if len(flagged):  # decided by an earlier chunk
            c = self._row_codes(flagged)
            pos[flagged] = _packbits(c == 2)
            neg[flagged] = _packbits(c == 0)
            zero[flagged] = (c == 1).any(1)
        hp = torch.zeros((n, B), dtype=torch.uint8, device=dev)
        hn = torch.zeros((n, B), dtype=torch.uint8, device=dev)
        vid = self.cp_vid[:n]
        used = int((vid >= 0).sum(0).nonzero().max()) + 1 if n else 0
        for i in range(used):  # empty slots read the last row: no sign
            idx = vid[:, i].masked_fill(vid[:, i] < 0, nV)
            hp |= pos.index_select(0, idx)
            hn |= neg.index_select(0, idx)
        return hp, hn, zero

    def _block(self, s0: int, s1: int, cuts: tuple | None = None) -> None:
        """Split the current cells by functions ``s0..s1-1`` (values of the moment in ``vals``,
        one column per function; ``cuts``: their :meth:`_cut_sets` when known)."""
        dev = self.device
        op = self.op
        sid0 = op.sid0 + s0
        S = s1 - s0
        R0 = self.R
        self.s0 = s0
        self.tol = op.tol[s0:s1]
        self.bpar[:R0] = torch.arange(R0, device=dev)
        self.rec_cur: list[torch.Tensor] = []
        hp_all, hn_all, onr = cuts if cuts is not None else self._cut_sets(R0)
        # near-zero values at vertices of cells where the function does not vanish
        if bool(onr.any()):
            cv = self.cp_vid[:R0]
            rr, ss = (onr[cv.clamp(min=0)] & (cv >= 0)).nonzero(as_tuple=True)
            vv = self.cp_vid[rr, ss]
            z = (self._row_codes(vv) == 1) & _unpackbits(hp_all[rr] | hn_all[rr], S)
            zi, zf = z.nonzero(as_tuple=True)
            self.tr.near_zero.append(_pairs(self.gid.index_select(0, vv[zi]), zf + sid0))
        self.rsign[:R0, s0:s1] = (_unpackbits(hp_all, S).to(torch.int8)
                                  - _unpackbits(hn_all & ~hp_all, S).to(torch.int8))
        vr, vs = _bit_pairs(~(hp_all | hn_all), S)
        start_recs = [self.rec, torch.stack([vr, vs + sid0, torch.zeros_like(vr)], dim=1)]
        P = torch.stack(_bit_pairs(hp_all & hn_all, S))  # (2, K): rows (region, function)
        del hp_all, hn_all
        # Pending pairs (region, function): the function may still cut the region. Each step
        # takes, for every region, its smallest pending function s. So every region sees its
        # functions in increasing order, and every region containing an edge crossed by s (all of
        # them are cut by s, so have s pending) is split by s in the same step, or in an earlier
        # chunk: neighbours share the new vertex. After a split, the pending functions of both
        # sides that no longer cut them are resolved.
        while P.shape[1]:
            Pr, Ps = P[0], P[1]
            smin = torch.full((self.R,), S, dtype=torch.int64, device=dev).scatter_reduce_(
                0, Pr, Ps, "amin")
            sel = Ps == smin.index_select(0, Pr)
            cs = P.index_select(1, _where(sel))
            cand, srow = cs[0], cs[1]
            P = P.index_select(1, _where(sel.logical_not_()))
            R_before = self.R
            self.tr.threads.size(len(cand) * self.Vcap * S)
            split = self._step(srow, sid0, cand)
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
        # records: the block's start-row records expanded to descendants, then the step records
        rec = _expand(torch.cat(start_recs), self.bpar[:self.R], R0)
        self.rec = torch.cat([rec, *self.rec_cur]) if self.rec_cur else rec
        self.rec_cur = []

    def _vertex_signs(self, cand: torch.Tensor, srow: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """For regions ``cand``, each with its own switching function ``srow``: the regions'
        vertex ids (``-1`` padding), which of them are valid, and at which the function is clearly
        positive / negative (by the vertex's sign code)."""
        vid = self.cp_vid.index_select(0, cand)
        valid = vid >= 0
        c = self._code_at(vid.clamp(min=0), srow.unsqueeze(1).expand_as(vid))
        return vid, valid, valid & (c == 2), valid & (c == 0)

    def _near(self, v: torch.Tensor, sid: torch.Tensor) -> None:
        self.tr.near_zero.append(_pairs(self.gid.index_select(0, v), sid))

    def _step(self, srow: torch.Tensor, sid0: int,
              cand: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Split the regions ``cand``, each by its own switching function ``srow`` (an edge is
        crossed by the function of every region containing it, so neighbours agree)."""
        d, T = self.d, self.T
        dev = self.device
        op = self.op
        vid, valid, pos, neg = self._vertex_signs(cand, srow)
        sidr = srow + sid0
        hp = pos.any(1)
        hn = neg.any(1)
        zer = valid & ~pos & ~neg
        active = hp | hn
        zm = zer & active.unsqueeze(1)
        if zm.any():
            self._near(vid[zm], sidr.unsqueeze(1).expand_as(vid)[zm])
        if not bool(active.all()):
            vr = cand[~active]
            self.rec_cur.append(
                torch.stack([vr, sidr[~active], torch.zeros_like(vr)], 1))
        self.rsign[cand, srow + self.s0] = hp.to(torch.int8) - (hn > hp).to(torch.int8)
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
            for col in range(1, tb.shape[1]):
                sh |= ta == tb[:, col:col + 1]
        sh &= ta >= 0
        cnt = sh.sum(1)
        ok = cnt >= d - 1
        if not bool(ok.all()):
            k = ok.nonzero().reshape(-1)
            pr, pa, pb, ta, sh, cnt = (x.index_select(0, k) for x in (pr, pa, pb, ta, sh, cnt))
        ia = vid[pr, pa]
        ib = vid[pr, pb]
        ga = self.gid.index_select(0, ia)
        gb = self.gid.index_select(0, ib)
        # an edge crossed here may have been crossed already, in a region split at an earlier
        # step of this op, here or in an earlier chunk (by the same function, the first to cross
        # it everywhere): reuse its vertex; edges new to this op get one vertex each, shared by
        # the regions of this step
        key = torch.minimum(ga, gb) * _KEY + torch.maximum(ga, gb)
        P = len(key)
        nvid = torch.empty(P, dtype=torch.int64, device=dev)
        nf = torch.ones(P, dtype=torch.bool, device=dev)
        if len(op.edges):
            found, at = op.edges.find(key)
            if bool(found.any()):
                nf = ~found
                fi = _where(found)
                nvid[fi] = self._local(at.index_select(0, fi),
                                       srow.index_select(0, pr.index_select(0, fi)))
        inf = nf.nonzero().reshape(-1)
        uk, inv = torch.unique(key.index_select(0, inf), return_inverse=True)
        U = len(uk)
        first = torch.full((U,), P, dtype=torch.int64, device=dev).scatter_reduce_(
            0, inv, inf, "amin", include_self=True)
        nV = self.nV
        nvid[inf] = inv + nV
        a, b = ia.index_select(0, first), ib.index_select(0, first)
        se = srow.index_select(0, pr.index_select(0, first))
        self._reserve_vertices(nV + U)
        fa, fb = self.vals[a, se], self.vals[b, se]
        lam = fa / (fa - fb)
        Va = self.V.index_select(0, a)
        self.V[nV:nV + U] = Va + lam.unsqueeze(1) * (self.V.index_select(0, b) - Va)
        # values at the new vertices, written in place: (1 - lam) va + lam vb
        newvals = _lerp_rows(self.vals[:nV], a, b, lam, self.vals[nV:nV + U])
        ar = torch.arange(U, device=dev)
        newvals[ar, se] = 0.0
        if self.sgn is not None:
            self.sgn[nV:nV + U] = _packbits(torch.signbit(newvals))
        self.flag[nV:nV + U] = -1
        self.bnd[nV:nV + U] = self.bnd.index_select(0, a) & self.bnd.index_select(0, b)
        gnew = torch.arange(op.next_gid, op.next_gid + U, device=dev)
        op.next_gid += U
        self.gid[nV:nV + U] = gnew
        op.loc = _grow(op.loc, op.next_gid, -1)
        op.loc[gnew] = torch.arange(nV, nV + U, device=dev)
        if U:
            ga, gb = self.gid.index_select(0, a), self.gid.index_select(0, b)
            op.edges.add(uk, v=gnew, a=ga, b=gb, lam=lam)
            if op.made is not None:
                op.made.add(ga, gb, lam, 1 + torch.maximum(op.made.depth(ga), op.made.depth(gb)),
                            self._delta(a, b, lam, nV + ar) if self.keep else None)
        self.nV = nV + U
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
        arP = torch.arange(P, device=dev)
        sidv = srow.index_select(0, pr) + sid0
        if bool(room.all()):
            occ_t[arP, c] = sidv.to(occ_t.dtype)
        else:
            occ_t[arP[room], c[room]] = sidv[room].to(occ_t.dtype)
            self.tr.overflow.append(_pairs(self.gid.index_select(0, nvid[~room]), sidv[~room]))
        # zero copies lie on the cut: they go to both sides with s added to their tight lists
        if len(zr):
            zroom = cz < T
            if bool(zroom.all()):
                tight[zr, zs, cz] = sidr.index_select(0, zr).to(tight.dtype)
            else:
                tight[zr[zroom], zs[zroom], cz[zroom]] = sidr[zr[zroom]].to(tight.dtype)
                bad = vid[zr[~zroom], zs[~zroom]]
                self.tr.overflow.append(_pairs(self.gid.index_select(0, bad), sidr[zr[~zroom]]))
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
        self.rsign[ci, srow + self.s0] = 1
        self.rsign[new, srow + self.s0] = -1
        torch.index_select(self.rparent[:R], 0, ci, out=self.rparent[R:R + Rc])
        torch.index_select(self.bpar[:R], 0, ci, out=self.bpar[R:R + Rc])
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
        limit = self.tr.max_regions
        if limit is not None and self.outside + self.R > limit:
            raise RegionLimitError(
                f"the trace exceeded max_regions={limit}: {self.outside + self.R} regions found "
                f"so far (at {self.tr.label}, switching function {int(srow.min()) + self.s0}); "
                "raise max_regions or shrink the domain", self.outside + self.R)
        return ci, new

    def _opposite_rows(self, a: torch.Tensor,
                       b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(i, column) where the values of local vertices ``a[i]`` and ``b[i]`` have strictly
        opposite signs, in row-major order (as :func:`_opposite`): from the sign bits ``sgn``
        when kept (the rows' values are read only where the bits differ), else from the rows."""
        if self.sgn is None:
            return _opposite(self.vals.index_select(0, a), self.vals.index_select(0, b))
        i, c = _bit_pairs(self.sgn.index_select(0, a) ^ self.sgn.index_select(0, b),
                          self.vals.shape[1])
        # (bits differ also between +0 and -0: the product is the test, as in _opposite)
        x, y = (_values_at(self.vals, r.index_select(0, i), c) for r in (a, b))
        k = _where(x * y < 0)
        return i.index_select(0, k), c.index_select(0, k)

    def _delta(self, a: torch.Tensor, b: torch.Tensor, lam: torch.Tensor,
               u: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """The op's outputs at new vertices (local vertices ``u``, made on edges with ends ``a``,
        ``b`` at ``lam``; values of the block's switching functions in ``vals``) minus the same
        interpolation of its outputs at the ends: (i, unit, value) for the units with a
        switching function of strictly opposite signs at the ends (for the others the output is
        affine along the edge, so the difference is zero). None (and no more kept for this op)
        past the budget of :meth:`_Made.over`."""
        op = self.op
        made = op.made
        assert made is not None
        i, c = self._opposite_rows(a, b)
        nu = op.S // len(op.ts)
        key = torch.unique(i * nu + (c + self.s0) % nu)  # (vertex, unit), once per unit
        i = torch.div(key, nu, rounding_mode="floor")
        t = key - i * nu
        if made.over(len(i)):
            self.keep, self.sgn = False, None
            return None
        col = t - self.s0  # the unit's first switching function (its input minus ts[0])
        t0 = op.ts[0]
        rule, mod, tab = op.nd.rule, op.nd.module, op.table
        assert isinstance(rule, _ElementwiseRule)  # (deltas are kept for elementwise ops only)
        zi, ai, bi = (_values_at(self.vals, r.index_select(0, i), col) + t0
                      for r in (u, a, b))
        li = lam.index_select(0, i)

        def out(z: torch.Tensor) -> torch.Tensor:
            st = rule.state(mod, z)
            return tab[st, 0] * z + tab[st, 1]

        return i, t, out(zi) - (1 - li) * out(ai) - li * out(bi)

    def _delta_block(self) -> None:
        """At the start of a later block of functions: the delta entries of its units for the
        vertices this chunk made earlier in the op (from the values of the moment)."""
        op, made, nV = self.op, self.op.made, self.nV
        assert made is not None
        own = _where(self.gid[:nV] >= self.own0)
        k = self.gid.index_select(0, own) - made.nV0
        kept = _where(made.ea.index_select(0, k) >= 0)
        own, k = own.index_select(0, kept), k.index_select(0, kept)
        la = op.loc.index_select(0, made.ea.index_select(0, k))
        lb = op.loc.index_select(0, made.eb.index_select(0, k))
        lam = made.lam.index_select(0, k)
        ch = max(1, _BUDGET // max(1, self.vals.shape[1]))
        for i in range(0, len(own), ch):
            d = self._delta(la[i:i + ch], lb[i:i + ch], lam[i:i + ch], own[i:i + ch])
            if d is None:  # over budget: none of them kept
                made.drop(k)
                return
            made.extend(k[i:i + ch].index_select(0, d[0]), d[1], d[2])

    def _local(self, at: torch.Tensor, srow: torch.Tensor) -> torch.Tensor:
        """Local ids of the vertices of found edges ``at`` (rows of the op's edge table), crossed by
        functions ``srow``; a vertex an earlier chunk made is brought in: its coordinates, its
        values (interpolated here) and its stored sign codes."""
        op = self.op
        E = op.edges.cols
        gv = E["v"].index_select(0, at)
        lv = op.loc.index_select(0, gv)
        miss = _where(lv < 0)
        if len(miss) == 0:
            return lv
        g, first = torch.unique(gv.index_select(0, miss), return_inverse=True)
        pick = torch.full((len(g),), len(miss), dtype=torch.int64, device=g.device)
        pick = pick.scatter_reduce_(0, first, torch.arange(len(miss), device=g.device), "amin")
        e = at.index_select(0, miss.index_select(0, pick))
        s = srow.index_select(0, miss.index_select(0, pick))
        U, nV = len(g), self.nV
        self._reserve_vertices(nV + U)
        la = op.loc.index_select(0, E["a"].index_select(0, e))
        lb = op.loc.index_select(0, E["b"].index_select(0, e))
        nv = _lerp_rows(self.vals[:nV], la, lb, E["lam"].index_select(0, e),
                        self.vals[nV:nV + U])
        nv[torch.arange(U, device=g.device), s] = 0.0
        if self.sgn is not None:
            self.sgn[nV:nV + U] = _packbits(torch.signbit(nv))
        self.V[nV:nV + U] = self.cx._V.index_select(0, g)
        found, rows = op.stored(g)
        hit = _where(found)
        self.flag[nV:nV + U] = -1
        self.flag[nV + hit] = torch.arange(len(self.frows), len(self.frows) + len(hit),
                                           device=g.device)
        self.frows = torch.cat([self.frows, rows])
        self.bnd[nV:nV + U] = True
        self.gid[nV:nV + U] = g
        op.loc[g] = torch.arange(nV, nV + U, device=g.device)
        self.nV = nV + U
        return op.loc.index_select(0, gv)

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
            self._near(vid[zm], sidr.unsqueeze(1).expand_as(vid)[zm])
        if not bool(active.all()):
            vr = cand[~active]
            self.rec_cur.append(torch.stack([vr, sidr[~active], torch.zeros_like(vr)], 1))
        # write the settled signs, the cutting pairs' current ones back (the pairs are distinct)
        flat = self.rsign.view(-1)
        at = cand * self.rsign.shape[1] + srow + self.s0
        val = hp.to(torch.int8) - hn.to(torch.int8)
        flat.index_copy_(0, at, torch.where(done, val, flat.index_select(0, at)))
        return cut

    def _finish(self) -> _Part:
        """The chunk's cells in compact form; its new vertices and shared codes to the op."""
        op, cx = self.op, self.cx
        R, nV = self.R, self.nV
        vid = self.cp_vid[:R]
        valid = vid >= 0
        counts = valid.sum(1)
        cv = self.gid.index_select(0, vid[valid])
        ct = self.cp_tight[:R][valid]
        # vertices made here, in global id order (they were numbered as they were made)
        gid = self.gid[:nV]
        own = _where(gid >= self.own0)
        cx.add_vertices(self.V.index_select(0, own))
        # sign codes of vertices a later chunk shares (start vertices, and vertices on edges
        # between two such vertices), unless stored already
        new = _where(self.bnd[:nV] & (self.flag[:nV] < 0))
        if len(new):
            rows = torch.ones((len(new), op.S), dtype=torch.uint8, device=self.device)
            pos = torch.full((nV,), -1, dtype=torch.int64, device=self.device)
            pos[new] = torch.arange(len(new), device=self.device)
            for ids, s0, codes in self.saved:
                p = pos.index_select(0, ids)
                k = _where(p >= 0)
                rows[p.index_select(0, k), s0:s0 + codes.shape[1]] = codes.index_select(0, k)
            op.codes.add(gid.index_select(0, new), code=rows)
        op.loc[gid] = -1
        op.settle()
        nd, enc = op.nd, _encoding(op.nd)
        if (enc == 0 and isinstance(nd.rule, _ElementwiseRule)
                and type(nd.rule).state_from_signs is _ElementwiseRule.state_from_signs):
            packed = _positive_bits(self.rsign[:R])  # (two-state elementwise ops: on iff positive)
        else:
            packed = _pack(_states(nd, self.rsign[:R]), enc)
        return _Part(counts, cv, ct, self.cells.index_select(0, self.rparent[:R]), packed,
                     self.rec)


_MANY_THREADS = 1 << 17  # elements per op (vertices x switching functions) worth more threads

#: The most intra-op threads the trace uses on the CPU (at most the caller's setting). Two gain
#: about 1.6x on 2-128-128-128 when both cores are free, but when another process keeps one core
#: busy, OpenMP's threads wait for each other at every parallel step: the same trace took 5.7 to
#: 6.9 s with two threads against 0.21 to 0.30 s with one (2 cores, load average about 2.5).
TRACE_THREADS = 1


class _Threads:
    """Intra-op threads on the CPU: one while the complex is small (tiny tensors, where OpenMP
    hand-offs cost more than they save), up to :data:`TRACE_THREADS` once an op's tensors are
    large."""

    def __init__(self, device: torch.device) -> None:
        self.cpu = device.type == "cpu"
        self.before = torch.get_num_threads()
        self.cur = self.before

    def size(self, n: int) -> None:
        """Threads for work on about ``n`` elements."""
        want = min(self.before, TRACE_THREADS) if n >= _MANY_THREADS else 1
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


# --------------------------------------------------------------------------------- the tracer


class _Tracer:
    """The op loop: plan chunks, split them, gather the finished cells (module docstring)."""

    def __init__(self, prog: Program, dom: Domain, device: torch.device, dtype: torch.dtype,
                 max_regions: int | None, threads: _Threads) -> None:
        self.prog, self.dom, self.device, self.dtype = prog, dom, device, dtype
        self.max_regions, self.threads = max_regions, threads
        self.eps = 1e-9 if dtype == torch.float64 else 1e-4
        A, _ = dom.float_halfspaces()
        self.offsets = [A.shape[0]]
        for j in range(prog.num_piecewise):
            self.offsets.append(self.offsets[-1] + prog.num_switching(j))
        self.nodes = prog.piecewise_nodes()
        M, c = dom.float_input_map()
        self.M = M.to(device, dtype)
        self.c = c.to(device, dtype)
        self.cx = _Complex(dom.dim, device, dtype, self.offsets[-1], dom)
        corners = self.cx.V.clone()
        g = torch.Generator().manual_seed(_SEED)
        w = -torch.log(torch.rand((_SAMPLES, len(corners)), generator=g, dtype=torch.float64))
        w = (w / w.sum(1, keepdim=True)).to(device, dtype)
        self.samples = torch.cat([corners, w @ corners])
        self.packed: list[torch.Tensor] = []
        self.rowhash = _RowHash(device)  # of the full patterns, op by op (duplicate check)
        self.rec = torch.zeros((0, 3), dtype=torch.int64, device=device)  # (region, id, kind)
        self.near_zero: list[torch.Tensor] = []
        self.overflow: list[torch.Tensor] = []
        self.label = ""
        self.made: _Made | None = None  # what the previous op made
        self.made2: _Made | None = None  # and the op before it
        self.family: torch.Tensor | None = None  # per cell, the previous op's start cell
        self._jac: dict[int, tuple[torch.Tensor, torch.Tensor] | None] = {}
        self._scratch: dict[str, torch.Tensor] = {}
        self._first: tuple[torch.Tensor, torch.Tensor] | None = None
        self._local: dict[int, bool] = {}
        self._slopes: dict[int, torch.Tensor] = {}
        self.tols: dict[int, torch.Tensor] = {}  # per op, its near-zero tolerances

    def chain(self, j: int) -> bool:
        """Whether op ``j``'s input depends only on op ``j - 1``'s output (through affine ops)."""
        lo, hi = self.prog.piecewise[j - 1], self.prog.piecewise[j]
        return j >= 1 and all(src >= lo for i in range(lo + 1, hi + 1)
                              for src in self.prog.nodes[i].inputs)

    def layer(self, j: int, z: torch.Tensor) -> torch.Tensor:
        """Values of op ``j``'s switching functions from op ``j - 1``'s (``z``, rows of
        points) on a chain (:meth:`chain`): op ``j - 1`` applied, then the ops between (in row
        blocks of ``_PASS`` elements)."""
        prog = self.prog
        lo, hi = prog.piecewise[j - 1], prog.piecewise[j]
        nd = prog.nodes[lo]
        rule = nd.rule
        assert isinstance(rule, _ElementwiseRule)
        shape = tuple(nd.in_shapes[0])
        top = prog.nodes[hi]
        out = z.new_empty((len(z), prog.num_switching(j)))
        ch = max(1, _PASS // max(1, z.shape[1], out.shape[1]))
        for i in range(0, len(z), ch):
            zi = z[i:i + ch]
            n = len(zi)
            x = (zi[:, :math.prod(shape)] + rule.thresholds(nd.module)[0]).reshape(n, *shape)
            values = {lo: _forward(nd, [FloatMap(x.new_zeros((n, 0, *shape)), x)])}
            prog.run_nodes(values, lo + 1, hi, lambda i, nd, ins: _forward(nd, ins))
            out[i:i + n] = _switching_of(top, values[top.inputs[0]])
        return out

    def slopes(self, j: int) -> torch.Tensor:
        """(states, 2): slope and constant of each state of elementwise op ``j``."""
        if j not in self._slopes:
            nd = self.nodes[j]
            rule = nd.rule
            assert isinstance(rule, _ElementwiseRule)
            self._slopes[j] = torch.tensor(rule.slopes_consts(nd.module), dtype=self.dtype,
                                           device=self.device)
        return self._slopes[j]

    def jacobian(self, j: int) -> torch.Tensor | None:
        link = self.link(j)
        return None if link is None else link[0]

    def link(self, j: int) -> tuple[torch.Tensor, torch.Tensor] | None:
        """See :func:`_jacobian`."""
        if j not in self._jac:
            self._jac[j] = _jacobian(self.prog, j, self.dtype, self.device)
        return self._jac[j]

    def scratch(self, name: str, shape: tuple[int, int], keep: int = 0) -> torch.Tensor:
        """A (rows, cols) tensor of the tracer's dtype over storage reused from call to call
        (the first ``keep`` rows as the last call under this name left them)."""
        rows, cols = shape
        buf = self._scratch.get(name)
        if buf is None or buf.numel() < rows * cols:
            size = rows * cols if buf is None else max(rows * cols, buf.numel() * 3 // 2)
            new = torch.empty(size, dtype=self.dtype, device=self.device)
            if buf is not None and keep:
                new[:keep * cols] = buf[:keep * cols]
            buf = self._scratch[name] = new
        return buf[:rows * cols].view(rows, cols)

    def release(self) -> None:
        """Let the scratch tensors go (at the end of an op: the next one touches fresh pages,
        a few hundredths of a second, but the complex it builds does not share the peak)."""
        self._scratch.clear()

    def switch_values(self, j: int, T: torch.Tensor,
                      cols: tuple[int, int] | None = None) -> torch.Tensor:
        """Values of op ``j``'s switching functions (``cols``: a range of them) at domain points
        ``T`` (n, d), by the plain forward pass; for the first op, by its affine map on the
        domain (no piecewise op comes before it)."""
        if j == 0:
            W, b = self.first_map()
            lo, hi = cols if cols is not None else (0, W.shape[1])
            return torch.addmm(b[lo:hi], T, W[:, lo:hi])
        return _switch_values(self.prog, j, T @ self.M.T + self.c, cols)

    def first_map(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(d, S) and (S,): the first op's switching functions as affine functions of ``t``."""
        if self._first is None:
            d = self.M.shape[1]
            m0 = FloatMap(self.M.T.reshape(1, d, *self.prog.input_shape),
                          self.c.reshape(1, *self.prog.input_shape))
            sw = self.prog.float_run(m0, until=0)[0]
            self._first = (sw.W.reshape(d, -1), sw.b.reshape(-1))
        return self._first

    def local(self, j: int) -> bool:
        """Whether :meth:`local_values` applies to op ``j``: every op before it an elementwise
        op (shared slopes) whose outputs alone feed the next one through affine ops (a chain)."""
        if j not in self._local:
            ok = j >= 1
            for i in range(1, j + 1):
                nd = self.nodes[i - 1]
                rule = nd.rule
                ok = (ok and self.chain(i) and isinstance(rule, _ElementwiseRule)
                      and type(rule).switching is _ElementwiseRule.switching
                      and type(rule).state is _ElementwiseRule.state
                      and rule.unit_slopes(nd.module, tuple(nd.in_shapes[0])) is None
                      and self.link(i) is not None)
            self._local[j] = ok
        return self._local[j]

    def local_values(self, j: int, T: torch.Tensor, tol: torch.Tensor, out: torch.Tensor,
                     rows: torch.Tensor, below: torch.Tensor | None = None) -> None:
        """Values of op ``j``'s switching functions at domain points ``T`` (n, d), into rows
        ``rows`` of ``out``, given op ``j - 1``'s at them when ``below`` is not None: the forward
        pass (or, with ``below``, :meth:`layer`), or where :meth:`local` allows, the same values
        at less cost for points that lie close together (the vertices of a chunk).

        The points are cut into groups in Morton order. On a group, an op's outputs are affine
        functions of ``t`` for every unit whose state is the same at all its points; only the
        units whose state varies (the few whose switching hyperplanes cross the group) need their
        outputs as extra features. So op ``i``'s switching values on the group are ``F @ H_i``:
        ``F`` the columns ``t``, 1 and the varying units' outputs at the points of every op
        before ``i``, ``H_i`` built from ``H_{i-1}`` by one product with the affine map between
        the two ops (one product for all groups). The cost per point is one row of ``H_j`` per
        feature, not one per unit of op ``j - 1`` (about 160 against 512 at 2-512^3, groups of
        512 points; ``H_j`` itself costs a dense layer per row, shared by the group).

        It is the same sum, reassociated: it rounds like the forward pass unless its terms are
        much larger than the values (cancellation). Criterion: in each group, the point with the
        largest ``|F| @ max_s(|H_j| / tol)`` (the terms' size relative to the tolerance, a
        multiple of the rounding error of any of the group's points) gets the forward pass too
        (unit by unit, through the same affine maps between ops), and the whole group gets the
        forward pass of :meth:`switch_values` or :meth:`layer` unless the two agree within
        ``tol / 64`` for every function (at 2-512^3 they agree within about ``5e-6 tol``). So
        does a group whose features would pass half the units of an op (no cheaper than the
        forward pass)."""
        n = len(T)
        if n == 0:
            return
        if not self.local(j):
            out.index_copy_(0, rows, self._forward_values(j, T, below))
            return
        nd = self.nodes[j - 1]
        # group size: the rows of H_j cost a dense layer each, a point one row per feature; the
        # features grow about with the square root of the group's points (2-D)
        g = 128 if j == 1 else max(64, math.prod(nd.in_shapes[0]))
        ng = -(-n // g)
        order = torch.argsort(_morton(T, 8)) if ng > 1 else torch.arange(n, device=T.device)
        size = -(-n // ng)
        sels = [order[i:i + size] for i in range(0, n, size)]
        done = self._groups(j, T, tol, out, rows, below, sels)
        redo = [sel for sel, ok in zip(sels, done, strict=True) if not ok]
        if redo:
            sel = torch.cat(redo)
            out.index_copy_(0, rows.index_select(0, sel), self._forward_values(
                j, T.index_select(0, sel), None if below is None else below.index_select(0, sel)))

    def _forward_values(self, j: int, T: torch.Tensor,
                        below: torch.Tensor | None) -> torch.Tensor:
        """Op ``j``'s switching values at points ``T`` by the forward pass: :meth:`layer` from
        op ``j - 1``'s values ``below`` when given, else :meth:`switch_values`."""
        return self.layer(j, below) if below is not None else self.switch_values(j, T)

    def _link_forward(self, j: int, T: torch.Tensor,
                      below: torch.Tensor | None) -> torch.Tensor:
        """The forward pass to op ``j`` at points ``T`` (from op ``j - 1``'s values ``below``
        when given) through the affine maps of :meth:`local_values`."""
        if below is None:
            W0, b0 = self.first_map()
            z, i0 = torch.addmm(b0, T, W0), 1
        else:
            z, i0 = below, j
        for i in range(i0, j + 1):
            nd = self.nodes[i - 1]
            rule, mod = nd.rule, nd.module
            assert isinstance(rule, _ElementwiseRule)
            x = z[:, :math.prod(nd.in_shapes[0])] + rule.thresholds(mod)[0]
            tab = self.slopes(i - 1)
            st = rule.state(mod, x)
            link = self.link(i)
            assert link is not None
            z = torch.addmm(link[1], tab[st, 0] * x + tab[st, 1], link[0])
        return z

    def _groups(self, j: int, T: torch.Tensor, tol: torch.Tensor, out: torch.Tensor,
                rows: torch.Tensor, below: torch.Tensor | None,
                sels: list[torch.Tensor]) -> list[bool]:
        """The groups ``sels`` of :meth:`local_values`, op by op for all of them at once: which
        were done (the others are for the forward pass)."""
        d = T.shape[1]
        W0, b0 = self.first_map()
        one = d  # the row of H (column of F) of the constant
        Ts = [T.index_select(0, sel) for sel in sels]
        F = [torch.cat([t, t.new_ones((len(t), 1))], 1) for t in Ts]
        H0 = torch.cat([W0, b0.unsqueeze(0)])
        H: list[Any] = [H0] * len(sels)
        z: list[Any] = [torch.addmm(b0, t, W0) for t in Ts]
        ok = [True] * len(sels)
        for i in range(1, j + 1):
            nd = self.nodes[i - 1]
            rule, mod = nd.rule, nd.module
            assert isinstance(rule, _ElementwiseRule)
            U = math.prod(nd.in_shapes[0])
            t0 = rule.thresholds(mod)[0]
            tab = self.slopes(i - 1)
            link = self.link(i)
            assert link is not None
            J, c = link
            outs, varies = [], []
            for k in range(len(sels)):
                if not ok[k]:
                    continue
                x = z[k][:, :U]
                # states are monotone in the input: a unit's state varies iff it differs at the
                # ends
                lo = rule.state(mod, x.amin(0) + t0)
                vary = _where(lo != rule.state(mod, x.amax(0) + t0))
                if H[k].shape[0] + len(vary) > U // 2:
                    ok[k] = False
                    continue
                slope, const = tab[lo, 0], tab[lo, 1]
                slope[vary] = 0.0
                const[vary] = 0.0
                Hout = H[k][:, :U] * slope
                Hout[one] += slope * t0 + const
                outs.append(Hout)
                varies.append((k, vary))
                xv = x.index_select(1, vary) + t0
                sv = rule.state(mod, xv)
                F[k] = torch.cat([F[k], tab[sv, 0] * xv + tab[sv, 1]], 1)
            if not outs:
                return ok
            HJ = torch.cat(outs) @ J  # (one product for all groups: J is read once)
            r0 = 0
            for (k, vary), Hout in zip(varies, outs, strict=True):
                Hk = torch.cat([HJ[r0:r0 + len(Hout)], J.index_select(0, vary)])
                r0 += len(Hout)
                Hk[one] += c
                H[k] = Hk
                if i < j:
                    z[k] = (below.index_select(0, sels[k]) if i == j - 1 and below is not None
                            else F[k] @ Hk)
        # the values, and the check against the forward pass at one point per group (see
        # local_values), through the same affine maps, for all groups at once
        inv = torch.where(tol > 0, 1 / tol, torch.finfo(tol.dtype).max)
        live = [k for k in range(len(sels)) if ok[k]]
        refs, got = [], []
        for k in live:
            vals = F[k] @ H[k]
            out.index_copy_(0, rows.index_select(0, sels[k]), vals)
            r = int(torch.argmax(F[k].abs() @ (H[k].abs() * inv).amax(1)))
            refs.append(int(sels[k][r]))
            got.append(vals[r])
        if live:
            at = torch.tensor(refs, dtype=torch.int64, device=T.device)
            ref = self._link_forward(j, T.index_select(0, at),
                                     None if below is None else below.index_select(0, at))
            bad = ((torch.stack(got) - ref).abs() > tol / 64).any(1).tolist()
            for k, b in zip(live, bad, strict=True):
                ok[k] = not b
        return ok

    def plan(self, op: _Op) -> tuple[torch.Tensor, torch.Tensor]:
        """The op's start cells in spatial order, the cells of one family (made from one start
        cell of the previous op) together: Morton order of the families' centroids, then of the
        cells'; and where each family ends in that order. Sets, per vertex, the last position
        of a cell holding it."""
        cx = self.cx
        dev = self.device
        fam = self.family if self.family is not None else torch.arange(cx.R, device=dev)
        F = int(fam.max()) + 1
        cells = cx.centroids()
        cent = torch.zeros((F, cx.d), dtype=cx.dtype, device=dev).index_add_(0, fam, cells)
        key = _morton(cent / torch.bincount(fam, minlength=F).unsqueeze(1).to(cx.dtype))
        fo = torch.argsort(key, stable=True)
        rank = torch.empty_like(fo)
        rank[fo] = torch.arange(F, device=dev)
        order = torch.argsort(_morton(cells), stable=True)
        order = order.index_select(0, torch.argsort(rank.index_select(0, fam.index_select(
            0, order)), stable=True))
        ends = torch.cumsum(torch.bincount(fam, minlength=F).index_select(0, fo), 0)
        position = torch.empty_like(order)
        position[order] = torch.arange(cx.R, device=self.device)
        rows, _ = _segments(cx.off[1:] - cx.off[:-1])
        op.last = torch.full((cx.nV,), -1, dtype=torch.int64, device=self.device)
        op.last.scatter_reduce_(0, cx.cv, position.index_select(0, rows), "amax")
        return order, ends

    def run_op(self, j: int, bar: Any) -> None:
        nd = self.nodes[j]
        self.label = f"op {j + 1}/{len(self.nodes)} ({nd.name or type(nd.module).__name__})"
        op = _Op(self, j)
        cx = self.cx
        R0 = cx.R
        # chunks sized for _CHUNK vertices x functions, by the vertices per start cell the op
        # has made so far (4 until it has made some)
        grow = 4.0
        if R0 * max(op.S, 1) * grow > _CHUNK:
            order, ends = self.plan(op)
        else:
            order, ends = torch.arange(R0, device=self.device), torch.tensor([R0])
        ends = ends.cpu()
        done = [0.0, 0]

        def progress(cells: int, functions: int) -> None:
            done[0] += cells / R0 * functions
            step = int(done[0]) - done[1]
            if step > 0:
                bar.update(step)
                done[1] += step

        parts: list[_Part] = []
        made = p0 = 0
        verts = 0
        while p0 < R0:
            # to the end of a family, so that the ends of the edges its vertices were made on are
            # here too (unless the family alone is larger than two chunks)
            target = max(1, int(_CHUNK / (max(op.S, 1) * grow)))
            end = int(ends[min(len(ends) - 1, int(torch.searchsorted(ends, p0 + target)))])
            n = min(R0, p0 + target) - p0 if end - p0 > 2 * target else end - p0
            cells = order[p0:p0 + n]
            self.threads.size(n * max(op.S, 1))
            chunk = _Chunk(self, op, cells, p0 + n, made + R0 - (p0 + n))
            part = chunk.run(progress)
            p0 += n
            made += part.R
            verts += chunk.nV
            grow = max(1.0, verts / p0)
            parts.append(part)
            del chunk, part
        bar.update(op.S - done[1])
        self.release()  # (the chunk buffers go before the new complex is built)
        # the new complex: the chunks' cells in order, copied part by part (each part, and the
        # old complex, let go as soon as it is copied)
        cx.off = cx.cv = cx.ct = None  # type: ignore[assignment]
        R = made
        C = sum(len(p.cv) for p in parts)
        T = max(p.ct.shape[1] for p in parts)
        off = torch.zeros(R + 1, dtype=torch.int64, device=self.device)
        cv = torch.empty(C, dtype=torch.int64, device=self.device)
        ct = torch.full((C, T), -1, dtype=cx.tdtype, device=self.device)
        par = torch.empty(R, dtype=torch.int64, device=self.device)
        packed = torch.empty((R, parts[0].packed.shape[1]), dtype=torch.uint8, device=self.device)
        recs = []
        r0 = c0 = 0
        while parts:
            p = parts.pop(0)
            r1, c1 = r0 + p.R, c0 + len(p.cv)
            off[r0 + 1:r1 + 1] = torch.cumsum(p.counts, 0) + c0
            cv[c0:c1], ct[c0:c1, :p.ct.shape[1]] = p.cv, p.ct
            par[r0:r1], packed[r0:r1] = p.parent, p.packed
            if len(p.rec):
                rec = p.rec.clone()
                rec[:, 0] += r0
                recs.append(rec)
            r0, c0 = r1, c1
            del p
        cx.off, cx.cv, cx.ct, cx.T = off, cv, ct, max(cx.T, T)
        self.rec = torch.cat([_expand(self.rec, par, R0), *recs])
        for i, q in enumerate(self.packed):  # (one op at a time: old and new never all at once)
            self.packed[i] = q.index_select(0, par)
        self.packed.append(packed)
        self.rowhash.take(par)
        self.rowhash.add(packed)
        self._jac.pop(j - 1, None)
        self.made2, self.made = self.made, op.made
        self.family = par
        if self.made is not None:
            self.made.finish()
        log.debug("%s: %d regions, %d vertices", self.label, cx.R, cx.nV)


def _max_numel(prog: Program) -> int:
    return max([math.prod(prog.input_shape)] + [math.prod(nd.out_shape) for nd in prog.nodes])


def _forward(nd: Any, ins: list[FloatMap]) -> FloatMap:
    return nd.rule.float_forward(nd.module, ins)


def _switching_of(nd: Any, m: FloatMap) -> torch.Tensor:
    """Values (n, S) of piecewise node ``nd``'s switching functions from the values ``m`` of its
    input (for ReLU-like ops the input itself, without a copy)."""
    rule = nd.rule
    if (type(rule).switching is _ElementwiseRule.switching
            and list(rule.thresholds(nd.module)) == [0.0]):
        return m.b.reshape(len(m.b), -1)
    return rule.switching(nd.module, m).b.reshape(len(m.b), -1)


def _switch_values(prog: Program, j: int, X: torch.Tensor,
                   cols: tuple[int, int] | None = None) -> torch.Tensor:
    """Values (N, S) of op ``j``'s switching functions (``cols``: the range ``lo..hi-1`` of them)
    at network inputs ``X`` (N, n_in), by the forward pass."""
    n = X.shape[0]
    S = prog.num_switching(j)
    lo, hi = cols if cols is not None else (0, S)
    top = prog.nodes[prog.piecewise[j]]
    ch = max(1, _PASS // max(_max_numel(prog), S))
    out = X.new_empty((n, hi - lo))
    for i in range(0, n, ch):
        x = X[i:i + ch]
        k = x.shape[0]
        values = {INPUT: FloatMap(x.new_zeros((k, 0, *prog.input_shape)),
                                  x.reshape(k, *prog.input_shape))}
        prog.run_nodes(values, 0, prog.piecewise[j], lambda i, nd, ins: _forward(nd, ins))
        out[i:i + k] = _switching_of(top, values[top.inputs[0]])[:, lo:hi]
    return out


def _output_maps(prog: Program, tr: Trace, M: torch.Tensor, c: torch.Tensor,
                 n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Output maps (n, *out, d) and (n, *out) of the regions of ``tr`` (states unpacked a row
    chunk at a time)."""
    d = M.shape[1]
    W0 = M.T.reshape(1, d, *prog.input_shape)
    b0 = c.reshape(1, *prog.input_shape)
    ch = max(1, _BUDGET // (_max_numel(prog) * (d + 1)))
    nodes = prog.piecewise_nodes()
    ws, bs = [], []
    for i in range(0, n, ch):
        k = min(ch, n - i)
        states = [_unpack(p[i:i + k], _encoding(nd), tuple(nd.out_shape))
                  for p, nd in zip(tr._packed_states, nodes, strict=True)]
        out, _ = prog.float_run(FloatMap(W0.expand(k, *W0.shape[1:]), b0.expand(k, *b0.shape[1:])),
                                states=states)
        ws.append(out.W.movedim(1, -1).reshape(k, *prog.output_shape, d))
        bs.append(out.b.reshape(k, *prog.output_shape))
    return torch.cat(ws), torch.cat(bs)


def _edges(rr: torch.Tensor, cv: torch.Tensor, tight: torch.Tensor, V: torch.Tensor,
           d: int) -> torch.Tensor:
    """Edges of the complex: copies (region ``rr``, vertex ``cv``, tight ids ``tight``) of one
    region sharing ``d - 1`` tight ids; on a line with more than two such copies, consecutive
    ones along it. Unique (min, max) vertex id pairs."""
    dev = cv.device
    if len(rr) == 0:
        return torch.zeros((0, 2), dtype=torch.int64, device=dev)
    t = tight.to(torch.int64)
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
        lo = torch.full((G,), int(cv.max()) + 1, dtype=torch.int64, device=dev)
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
        device = prog.device() or torch.device("cpu")
    device = torch.device(device)

    nodes = prog.piecewise_nodes()
    with torch.inference_mode(), _few_threads(device) as threads:
        tr = _Tracer(prog, dom, device, dtype, max_regions, threads)
        offsets = tr.offsets
        with progress_bar(offsets[-1] - offsets[0], "tracing", progress) as bar:
            for j in range(len(nodes)):
                tr.run_op(j, bar)
        threads.size(0)
        res = _results(tr, d, any(isinstance(nd.rule, MaxPool2dRule) for nd in nodes))
        del tr
    # out of inference mode, one tensor at a time (its inference original then goes)
    packed = res.pop("packed")
    for i in range(len(packed)):
        packed[i] = _out(packed[i])
    out = {k: _out(res.pop(k), torch.float64 if k in ("interior", "vertices") else None)
           for k in list(res) if res[k] is not None}
    cells = (out["off"], out["cv"])
    rv = (out.pop("rv_off"), out.pop("rv_ids")) if "rv_off" in out else cells
    return Trace(
        domain=dom, program=prog, dim=d, num_regions=len(out["interior"]),
        interior=out["interior"], region_vertex_offsets=rv[0], region_vertex_ids=rv[1],
        vertices=out["vertices"],
        uncertain=Uncertain(out["near"], out["vanishing"], out["over"], out["degenerate"],
                            out["duplicates"]),
        constraint_offsets=offsets, seconds=time.perf_counter() - t_start,
        merged=int(out["off"].shape[0]) - 1 - len(out["interior"]),
        _packed_states=packed, _cell_offsets=cells[0], _cell_vertex_ids=cells[1],
        _copy_tight=out["ct"], _cell_region=out.get("group"))


def _results(tr: _Tracer, d: int, maxpool: bool) -> dict[str, Any]:
    """The traced complex as the tensors of a :class:`Trace` (the tracer's own references to
    them are dropped): interior points, records, duplicate patterns merged (MaxPool) or
    reported."""
    cx = tr.cx
    R, dev = cx.R, tr.device
    V = cx.V
    counts = cx.off[1:] - cx.off[:-1]
    rows, _ = _segments(counts)
    interior = torch.zeros((R, d), dtype=tr.dtype, device=dev)
    interior.index_add_(0, rows, V.index_select(0, cx.cv))
    interior /= counts.unsqueeze(1).to(tr.dtype)
    del rows
    rec = tr.rec
    none = torch.zeros((0, 2), dtype=torch.int64, device=dev)
    res: dict[str, Any] = {
        "vertices": V, "off": cx.off, "cv": cx.cv, "ct": cx.ct,
        "vanishing": _unique_rows2(rec[rec[:, 2] == 0][:, :2]),
        "degenerate": _unique_rows2(rec[rec[:, 2] == 1][:, :2]),
        "near": _unique_rows2(torch.cat(tr.near_zero)) if tr.near_zero else none,
        "over": _unique_rows2(torch.cat(tr.overflow)) if tr.overflow else none,
        "duplicates": none, "group": None}
    packed = tr.packed
    tr.packed = []
    # equal full patterns: merged for MaxPool (documented), reported otherwise
    if packed:
        g, G = _row_groups(packed, tr.rowhash.h)
        if G < R and maxpool:
            interior, packed, (res["rv_off"], res["rv_ids"]), res["vanishing"], \
                res["degenerate"] = _merge(g, G, interior, packed, (cx.off, cx.cv),
                                           res["vanishing"], res["degenerate"])
            res["group"] = g
        elif G < R:
            o = torch.argsort(g, stable=True)
            same = g[o][1:] == g[o][:-1]
            res["duplicates"] = torch.stack([o[:-1][same], o[1:][same]], 1)
            log.warning("%d regions share a full pattern with another region",
                        len(res["duplicates"]))
    res["interior"], res["packed"] = interior, packed
    tr.cx = None  # type: ignore[assignment]
    return res


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


def _merge(g: torch.Tensor, G: int, interior: torch.Tensor, packed: list[torch.Tensor],
           rv: tuple[torch.Tensor, torch.Tensor], vanishing: torch.Tensor,
           degenerate: torch.Tensor) -> tuple:
    """Merge regions with equal group id ``g`` (MaxPool sub-cells with one full pattern)."""
    dev = g.device
    cnt = torch.bincount(g, minlength=G).to(interior.dtype)
    inter = torch.zeros((G, interior.shape[1]), dtype=interior.dtype, device=dev)
    inter = inter.index_add_(0, g, interior) / cnt.unsqueeze(1)
    first = torch.full((G,), len(g), dtype=torch.int64, device=dev).scatter_reduce_(
        0, g, torch.arange(len(g), device=dev), "amin")
    pats = [p.index_select(0, first) for p in packed]

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

    return inter, pats, regroup(rv), remap(vanishing), remap(degenerate)
