"""The exact layer: certify regions, vertices, adjacency and counts in rational arithmetic.

Regions form a tree by layer (piecewise op). For a parent cell ``P`` (a cell of the ops before
``j``), the switching functions of op ``j`` are exactly affine on ``P``; its children are the
cells of that arrangement inside ``P``. For every parent the children are

1. proposed by the float trace (its patterns, grouped by prefix) with float interior points;
2. each confirmed exactly: a rational witness strictly inside (checked exactly; an exact LP finds
   one where the float point fails), exact non-redundant facets and vertices (cddlib GMP on the
   facets the trace proposes, then every other constraint checked exactly at every exact vertex,
   adding any violated one and recomputing);
3. certified complete by closure under facet crossing: for every facet of a child that is not on
   the boundary of ``P``, the child across it (decided exactly at a point of the facet's relative
   interior, with a symbolic step along the normal) must be present; a missing one is *repaired*:
   added with an exact witness and processed like the others;
4. where volumes are cheap (bounded, d <= 3), the children's exact volumes sum to the parent's.

Nothing here trusts a float: floats only propose candidates and witnesses.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import os
import random
import time
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Iterable, Sequence

import torch

from . import _exact, _polyhedra
from ._exact import ExactMap
from ._geometry import polygon_area, polytope_volume
from .capture import INPUT, Program
from .domain import Domain
from .errors import ExactReluError, InvalidInputError

log = logging.getLogger(__name__)

Row = tuple[Fraction, ...]


@dataclass
class Facet:
    """A non-redundant constraint ``a . t <= b`` of a cell, with the constraint ids defining it."""

    a: Row
    b: Fraction
    ids: tuple[int, ...]  # constraint ids (domain rows first, then switching functions)
    vertices: tuple[int, ...] = ()  # indices into the cell's vertex list


@dataclass
class Cell:
    """One node of the layer tree: ``states`` of the first ``level`` piecewise ops."""

    level: int
    states: tuple[tuple[int, ...], ...]
    witness: Row
    facets: list[Facet]
    vertices: list[Row]
    volume: Fraction | None = None
    repaired: bool = False
    live: dict | None = None  # exact live values before op ``level`` (not shipped in results)


@dataclass
class Stats:
    candidates: int = 0
    confirmed: int = 0
    spurious: int = 0
    repaired: int = 0
    witness_lp: int = 0
    redo_hv: int = 0
    cells: int = 0
    seconds: dict = field(default_factory=dict)

    def merge(self, other: "Stats") -> None:
        for k in ("candidates", "confirmed", "spurious", "repaired", "witness_lp", "redo_hv", "cells"):
            setattr(self, k, getattr(self, k) + getattr(other, k))
        for k, v in other.seconds.items():
            self.seconds[k] = self.seconds.get(k, 0.0) + v


class CertificationError(ExactReluError):
    """An internal consistency check of the exact layer failed (a bug, never a float issue)."""


# --------------------------------------------------------------------------- exact propagation

def _segment_bounds(prog: Program) -> list[tuple[int, int]]:
    """Node index ranges: before op 0, then op j .. before op j+1, ..., last op .. end."""
    pw = prog.piecewise
    starts = [0] + pw
    ends = pw + [len(prog.nodes)]
    return list(zip(starts, ends))


def _run_nodes(prog: Program, live: dict, lo: int, hi: int, state: Sequence[int] | None) -> dict:
    """Run nodes ``lo..hi-1`` exactly; node ``lo`` may be the piecewise op taking ``state``."""
    live = dict(live)
    for i in range(lo, hi):
        nd = prog.nodes[i]
        ins = [live[s] for s in nd.inputs]
        if nd.piecewise:
            st = torch.tensor(state, dtype=torch.int64).reshape(nd.out_shape)
            out = nd.rule.exact_apply(nd.module, ins[0], st)  # type: ignore[attr-defined]
        else:
            out = nd.rule.exact_forward(nd.module, ins, nd.out_shape)
        live[i] = out
        for s in set(nd.inputs):
            if s != INPUT and prog._last_use[s] <= i:
                live.pop(s, None)
    if hi >= len(prog.nodes):
        return {"output": live[prog.output]}
    if hi <= len(prog.nodes) and INPUT in live and all(INPUT not in nd.inputs for nd in prog.nodes[hi:]):
        live.pop(INPUT)
    return live


def _switching_rows(prog: Program, live: dict, j: int) -> list[tuple[Row, Fraction]]:
    nd = prog.nodes[prog.piecewise[j]]
    m = nd.rule.exact_switching(nd.module, live[nd.inputs[0]])  # type: ignore[attr-defined]
    out = []
    for row in m.mat.tolist():
        out.append((tuple(_exact.to_fraction(v) for v in row[:-1]), _exact.to_fraction(row[-1])))
    return out


# --------------------------------------------------------------------------- small exact helpers

def _dot(a: Row, x: Row) -> Fraction:
    return sum((ai * xi for ai, xi in zip(a, x)), Fraction(0))


def _strictly_inside(rows: Sequence[tuple[Row, Fraction]], x: Row) -> bool:
    """Exact check ``a . x < b`` for every row (float filter first)."""
    xf = [float(v) for v in x]
    for a, b in rows:
        s = float(b) - sum(float(ai) * xi for ai, xi in zip(a, xf))
        scale = abs(float(b)) + sum(abs(float(ai) * xi) for ai, xi in zip(a, xf))
        # float error (rounding of conversions and of the sum) is far below 1e-12 * scale
        if s > 1e-12 * scale + 1e-300:
            continue
        if s < -1e-12 * scale - 1e-300:
            return False
        if not (_dot(a, x) < b):
            return False
    return True


def _volume(vertices: list[Row], facets: list[Facet], d: int) -> Fraction | None:
    if d == 1:
        xs = [v[0] for v in vertices]
        return max(xs) - min(xs)
    if d == 2:
        return polygon_area(vertices)
    if d == 3:
        inc = [set() for _ in vertices]
        for fi, f in enumerate(facets):
            for k in f.vertices:
                inc[k].add(fi)
        return polytope_volume(vertices, inc)
    return None


# --------------------------------------------------------------------------- the per-parent step

@dataclass
class Candidate:
    state: tuple[int, ...]
    witness: Row | None
    hint_ids: set[int] | None  # constraint ids the float trace saw bounding descendants


class _Certifier:
    def __init__(self, prog: Program, domain: Domain, offsets: list[int]) -> None:
        self.prog = prog
        self.domain = domain
        self.d = domain.dim
        self.offsets = offsets
        self.stats = Stats()
        self.bounded = domain.is_bounded
        self.rng = random.Random(0)

    # -- one parent ------------------------------------------------------------------------
    def children(self, parent: Cell, cands: list[Candidate]) -> list[Cell]:
        j = parent.level
        nd = self.prog.nodes[self.prog.piecewise[j]]
        rule = nd.rule
        in_shape = nd.in_shapes[0]
        sw = _switching_rows(self.prog, parent.live, j)
        S = len(sw)
        zero = tuple(Fraction(0) for _ in range(self.d))
        vanish = [a == zero and c == 0 for a, c in sw]
        parent_rows = [(f.a, f.b) for f in parent.facets]
        parent_ids = [f.ids for f in parent.facets]
        found: dict[tuple[int, ...], Cell] = {}
        queue: list[Candidate] = list(cands)
        queued = {c.state for c in queue}
        self.stats.candidates += len(cands)
        while queue:
            cand = queue.pop()
            if cand.state in found:
                continue
            rows = self._state_rows(rule, nd.module, cand.state, in_shape, sw, vanish)
            if rows is None:
                self.stats.spurious += 1
                continue
            all_rows = parent_rows + [(a, b) for a, b, _ in rows]
            w = cand.witness
            if w is None or not _strictly_inside(all_rows, w):
                self.stats.witness_lp += 1
                ip = _polyhedra.interior_point([list(a) for a, _ in all_rows], [b for _, b in all_rows], dim=self.d)
                if ip is None or ip[1] <= 0:
                    self.stats.spurious += 1
                    continue
                w = ip[0]
            # The state of a cell is the state at its interior points; units identically zero on
            # the parent take their tie state there (they do not split it).
            state = self._state_at(rule, nd.module, sw, w, in_shape)
            if state != cand.state:
                self.stats.spurious += 1
                if state in found:
                    continue
                rows = self._state_rows(rule, nd.module, state, in_shape, sw, vanish)
                assert rows is not None
            cell = self._cell(parent, j, state, w, parent_rows, parent_ids, rows, cand.hint_ids)
            cell.repaired = cand.hint_ids is None and cand.witness is None
            if cell.repaired:
                self.stats.repaired += 1
            else:
                self.stats.confirmed += 1
            found[state] = cell
            # closure under facet crossing
            for f in cell.facets:
                if not any(self.offsets[j] <= i < self.offsets[j + 1] for i in f.ids):
                    continue  # only a facet of the parent: crossing it leaves P
                if self._on_parent_boundary(f, cell, parent_rows):
                    continue
                nb = self._across(f, cell, sw, rule, nd.module, in_shape)
                if nb not in found and nb not in queued:
                    queued.add(nb)
                    queue.append(Candidate(nb, None, None))
        if not found:
            raise CertificationError(f"no child found for a parent cell at level {j}; witness {parent.witness}")
        children = list(found.values())
        if parent.volume is not None:
            total = sum((c.volume for c in children), Fraction(0))  # type: ignore[misc]
            if total != parent.volume:
                raise CertificationError(
                    f"children volumes sum to {total}, parent volume is {parent.volume} (level {j})")
        return children

    def _state_at(self, rule: Any, module: Any, sw: list[tuple[Row, Fraction]], w: Row,
                  in_shape: tuple[int, ...]) -> tuple[int, ...]:
        signs = []
        for a, c in sw:
            v = _dot(a, w) + c
            signs.append((v > 0) - (v < 0))
        st = rule.state_from_signs(module, torch.tensor([signs], dtype=torch.int64), in_shape)
        return tuple(st.reshape(-1).tolist())

    def _state_rows(self, rule: Any, module: Any, state: tuple[int, ...], in_shape: tuple[int, ...],
                    sw: list[tuple[Row, Fraction]], vanish: list[bool]) -> list[tuple[Row, Fraction, int]] | None:
        """Rows ``a . t <= b`` (closures of ``sign * s(t) > 0``) of a state, leaving out switching
        functions identically zero on the parent; None when the state is empty for sure."""
        st = torch.tensor(state, dtype=torch.int64)
        idx, signs = rule.cell_constraints(module, st, in_shape)
        rows = []
        for i, sg in zip(idx.tolist(), signs.tolist()):
            a, c = sw[i]
            if vanish[i]:
                continue
            if all(v == 0 for v in a):
                if sg * c > 0:
                    continue
                return None
            rows.append((tuple(-sg * v for v in a), sg * c, i))
        return rows

    def _cell(self, parent: Cell, j: int, state: tuple[int, ...], w: Row, parent_rows: list, parent_ids: list,
              rows: list[tuple[Row, Fraction, int]], hint: set[int] | None) -> Cell:
        off = self.offsets[j]
        labels = list(parent_ids) + [(off + i,) for _, _, i in rows]
        A_all = [r[0] for r in parent_rows] + [a for a, _, _ in rows]
        b_all = [r[1] for r in parent_rows] + [b for _, b, _ in rows]
        n_par = len(parent_rows)
        if hint is None:
            use = list(range(len(A_all)))
        else:
            use = list(range(n_par)) + [n_par + k for k, (_, _, i) in enumerate(rows) if off + i in hint]
        while True:
            vrep = _polyhedra.h_to_v([list(A_all[k]) for k in use], [b_all[k] for k in use], dim=self.d)
            if vrep.rays or vrep.lines or not vrep.vertices:
                if len(use) < len(A_all):
                    use = list(range(len(A_all)))
                    self.stats.redo_hv += 1
                    continue
                raise InvalidInputError("unbounded cells are not supported yet by the certifier; use a bounded domain")
            unused = [k for k in range(len(A_all)) if k not in set(use)]
            bad = [k for k in unused if any(_dot(A_all[k], v) > b_all[k] for v in vrep.vertices)]
            if not bad:
                break
            self.stats.redo_hv += 1
            use = sorted(set(use) | set(bad))
        fs = _polyhedra.facets([list(A_all[k]) for k in use], [b_all[k] for k in use], vrep)
        verts = [tuple(v) for v in vrep.vertices]
        facets = []
        for group, vset in zip(fs.groups, fs.vertex_sets):
            k0 = use[group[0]]
            ids = tuple(sorted({i for g in group for i in labels[use[g]]}))
            facets.append(Facet(tuple(A_all[k0]), b_all[k0], ids, tuple(sorted(vset))))
        vol = _volume(verts, facets, self.d) if self.bounded else None
        cell = Cell(j + 1, parent.states + (state,), tuple(w), facets, verts, vol)
        cell.live = _run_nodes(self.prog, parent.live, *self._seg(j + 1), state)
        return cell

    def _seg(self, level: int) -> tuple[int, int]:
        pw = self.prog.piecewise
        lo = pw[level - 1]
        hi = pw[level] if level < len(pw) else len(self.prog.nodes)
        return lo, hi

    def _on_parent_boundary(self, f: Facet, cell: Cell, parent_rows: list) -> bool:
        pts = [cell.vertices[k] for k in f.vertices]
        return any(all(_dot(a, p) == b for p in pts) for a, b in parent_rows)

    def _across(self, f: Facet, cell: Cell, sw: list[tuple[Row, Fraction]], rule: Any, module: Any,
                in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """State of op j just across facet ``f`` (exact, at a point of its relative interior)."""
        pts = [cell.vertices[k] for k in f.vertices]
        n = f.a  # outward normal: a . t <= b inside
        on_f = [all(_dot(a, p) + c == 0 for p in pts) for a, c in sw]
        for attempt in range(50):
            if attempt == 0:
                wts = [Fraction(1, len(pts))] * len(pts)
            else:
                raw = [Fraction(self.rng.randint(1, 1000)) for _ in pts]
                tot = sum(raw)
                wts = [r / tot for r in raw]
            c = tuple(sum((w * p[i] for w, p in zip(wts, pts)), Fraction(0)) for i in range(self.d))
            signs = []
            ok = True
            for (a, b0), contains in zip(sw, on_f):
                v = _dot(a, c) + b0
                if v != 0:
                    signs.append(1 if v > 0 else -1)
                    continue
                if not contains:
                    ok = False  # c lies on a hyperplane crossing the facet: pick another point
                    break
                dv = _dot(a, n)
                signs.append((dv > 0) - (dv < 0))
            if ok:
                st = rule.state_from_signs(module, torch.tensor([signs], dtype=torch.int64), in_shape)
                return tuple(st.reshape(-1).tolist())
        raise CertificationError("could not find a generic point on a facet")




# --------------------------------------------------------------------------- driver

@dataclass
class Leaf:
    """A certified activation region (a leaf of the layer tree), ready for the certificate."""

    states: tuple[tuple[int, ...], ...]
    witness: Row
    facets: list[Facet]
    vertices: list[Row]
    volume: Fraction | None
    output: list[list[Fraction]]  # rows [a_1..a_d, c] of the output map in t coordinates
    repaired: bool


def constraint_offsets(prog: Program, domain: Domain) -> list[int]:
    A, _ = domain.halfspaces()
    offs = [len(A)]
    for j in range(prog.num_piecewise):
        offs.append(offs[-1] + prog.num_switching(j))
    return offs


def _root(prog: Program, domain: Domain) -> Cell:
    A, b = domain.halfspaces()
    d = domain.dim
    vrep = _polyhedra.h_to_v([list(r) for r in A], list(b), dim=d)
    fs = _polyhedra.facets([list(r) for r in A], list(b), vrep)
    verts = [tuple(v) for v in vrep.vertices]
    facets = [Facet(tuple(A[g[0]]), b[g[0]], tuple(g), tuple(sorted(vs))) for g, vs in zip(fs.groups, fs.vertex_sets)]
    vol = _volume(verts, facets, d) if domain.is_bounded else None
    root = Cell(0, (), tuple(domain.interior_point()), facets, verts, vol)
    M, c = domain.input_map()
    m0 = _exact.input_map(M, c, prog.input_shape)
    hi = prog.piecewise[0] if prog.piecewise else len(prog.nodes)
    root.live = _run_nodes(prog, {INPUT: m0}, 0, hi, None)
    return root


def _seed(cert: _Certifier, parent: Cell) -> Candidate:
    """A candidate child at a generic point near the parent's witness (no float trace needed)."""
    j = parent.level
    sw = _switching_rows(cert.prog, parent.live, j)
    w = parent.witness
    rng = random.Random(1)
    for attempt in range(200):
        vals = [_dot(a, w) + c for a, c in sw]
        if all(v != 0 or all(x == 0 for x in a) for v, (a, _) in zip(vals, sw)):
            nd = cert.prog.nodes[cert.prog.piecewise[j]]
            return Candidate(cert._state_at(nd.rule, nd.module, sw, w, nd.in_shapes[0]), w, None)
        # a random convex combination of the vertices, pulled slightly towards the witness
        raw = [Fraction(rng.randint(1, 10**6)) for _ in parent.vertices]
        tot = sum(raw)
        v = tuple(sum((r / tot * p[i] for r, p in zip(raw, parent.vertices)), Fraction(0))
                  for i in range(len(w))) if parent.vertices else w
        eps = Fraction(1, rng.randint(10, 10**3))
        w = tuple(wi + eps * (vi - wi) for wi, vi in zip(parent.witness, v))
    raise CertificationError("could not find a generic seed point")


def _subtree(prog: Program, domain: Domain, offsets: list[int], cells: list[Cell],
             tree: dict | None) -> tuple[list[Leaf], Stats]:
    """Certify everything below ``cells`` (all of one level); runs in a worker process."""
    cert = _Certifier(prog, domain, offsets)
    current = cells
    L = prog.num_piecewise
    while current and current[0].level < L:
        nxt: list[Cell] = []
        for parent in current:
            cands = _candidates(tree, parent) if tree is not None else []
            if not cands:
                cands = [_seed(cert, parent)]
            nxt.extend(cert.children(parent, cands))
            parent.live = None
        cert.stats.cells += len(nxt)
        current = nxt
    leaves = []
    for c in current:
        out = c.live["output"] if c.live else None
        rows = [[_exact.to_fraction(v) for v in row] for row in out.mat.tolist()] if out is not None else []
        leaves.append(Leaf(c.states, c.witness, c.facets, c.vertices, c.volume, rows, c.repaired))
    return leaves, cert.stats


def _candidates(tree: dict, parent: Cell) -> list[Candidate]:
    node = tree.get(parent.states)
    if not node:
        return []
    return [Candidate(st, w, ids) for st, (w, ids) in node.items()]


def candidate_tree(trace: Any) -> dict:
    """Prefix tree of the float trace: prefix states -> {state of next op: (witness, hint ids)}."""
    R = trace.num_regions
    per_op = [p.reshape(R, -1).tolist() for p in trace.patterns]
    interior = trace.interior.detach().cpu().tolist()
    offs = trace.bounding_offsets.tolist()
    ids = trace.bounding_ids.tolist()
    tree: dict = {}
    for r in range(R):
        w = tuple(Fraction(v) for v in interior[r])
        hint = set(ids[offs[r]:offs[r + 1]])
        prefix: tuple = ()
        for j in range(len(per_op)):
            st = tuple(per_op[j][r])
            node = tree.setdefault(prefix, {})
            if st in node:
                node[st][1].update(hint)
            else:
                node[st] = (w, set(hint))
            prefix = prefix + (st,)
    return tree


def run(prog: Program, domain: Domain, trace: Any | None = None, executor: cf.Executor | None = None,
        workers: int | None = None) -> tuple[list[Leaf], Stats, Cell]:
    """Certify all regions; returns the leaves, statistics and the root cell."""
    t0 = time.perf_counter()
    offsets = constraint_offsets(prog, domain)
    root = _root(prog, domain)
    if prog.num_piecewise == 0:
        leaves, stats = _subtree(prog, domain, offsets, [root], None)
        return leaves, stats, root
    tree = candidate_tree(trace) if trace is not None else None
    t1 = time.perf_counter()
    # Expand the first levels in this process until there is enough work to split.
    want = 8 * (workers or os.cpu_count() or 1) if executor is not None else 0
    cert = _Certifier(prog, domain, offsets)
    frontier = [root]
    while executor is not None and len(frontier) < want and frontier[0].level < prog.num_piecewise - 1:
        nxt = []
        for p in frontier:
            cands = _candidates(tree, p) if tree is not None else []
            nxt.extend(cert.children(p, cands or [_seed(cert, p)]))
        frontier = nxt
    stats = cert.stats
    if executor is None:
        leaves, s = _subtree(prog, domain, offsets, frontier, tree)
        stats.merge(s)
    else:
        n = max(1, min(len(frontier), want))
        chunks = [frontier[i::n] for i in range(n)]
        futures = []
        for ch in chunks:
            sub = {k: v for k, v in (tree or {}).items() if any(k[:len(c.states)] == c.states for c in ch)} if tree else None
            futures.append(executor.submit(_subtree, prog, domain, offsets, ch, sub))
        leaves = []
        for fut in futures:
            lv, s = fut.result()
            leaves.extend(lv)
            stats.merge(s)
    stats.seconds["exact"] = time.perf_counter() - t1
    stats.seconds["setup"] = t1 - t0
    return leaves, stats, root
