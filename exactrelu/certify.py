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
from ._exact import ExactMap, fmpq, fmpq_mat
from ._geometry import polytope_volume
from .capture import INPUT, Program
from .domain import Domain
from .errors import ExactReluError, InvalidInputError

log = logging.getLogger(__name__)

Row = tuple[Fraction, ...]


@dataclass
class Facet:
    """A non-redundant constraint of a cell as a slack row ``g``: ``g . (t, 1) >= 0`` inside."""

    slack: list  # fmpq entries, length d + 1
    ids: tuple[int, ...]  # constraint ids (domain rows first, then switching functions)
    vertices: tuple[int, ...] = ()  # indices into the cell's vertex list

    @property
    def a(self) -> tuple[Fraction, ...]:
        """``a`` of the facet written as ``a . t <= b``."""
        return tuple(-_f(v) for v in self.slack[:-1])

    @property
    def b(self) -> Fraction:
        return _f(self.slack[-1])


@dataclass
class Cell:
    """One node of the layer tree: ``states`` of the first ``level`` piecewise ops."""

    level: int
    states: tuple[tuple[int, ...], ...]
    witness: tuple  # fmpq coordinates, strictly inside
    facets: list[Facet]
    vertices: list[tuple]  # fmpq coordinates
    volume: Any = None  # fmpq, where cheap
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


def _switching_map(prog: Program, live: dict, j: int) -> ExactMap:
    nd = prog.nodes[prog.piecewise[j]]
    return nd.rule.exact_switching(nd.module, live[nd.inputs[0]])  # type: ignore[attr-defined]


# --------------------------------------------------------------------------- small exact helpers

def _q(x: Any) -> fmpq:
    return _exact.to_fmpq(x)


def _f(x: fmpq) -> Fraction:
    return Fraction(int(x.p), int(x.q))


def _mat(rows: list, ncols: int) -> fmpq_mat:
    return fmpq_mat(len(rows), ncols, [v for r in rows for v in r])


def _cols(points: Sequence[tuple], d: int, homogeneous: bool = True) -> fmpq_mat:
    """Points as the columns of a matrix, with a trailing row of ones when ``homogeneous``."""
    k = len(points)
    if homogeneous:
        return fmpq_mat(d + 1, k, [p[i] for i in range(d) for p in points] + [fmpq(1)] * k)
    return fmpq_mat(d, k, [p[i] for i in range(d) for p in points])


def _all_positive(G: list, points: Sequence[tuple], d: int) -> bool:
    """Exact: every slack row is strictly positive at every point."""
    if not G:
        return True
    return all(v > 0 for v in (_mat(G, d + 1) * _cols(points, d)).entries())


def _to_ab(G: list, d: int) -> tuple[list[list[Fraction]], list[Fraction]]:
    """Slack rows -> (A, b) with ``A t <= b``, as Fractions for the polyhedral adapter."""
    return [[-_f(v) for v in g[:d]] for g in G], [_f(g[d]) for g in G]


def _volume(vertices: list[tuple], facets: list[Facet], d: int) -> Any:
    if d == 1:
        xs = [v[0] for v in vertices]
        return max(xs) - min(xs)
    if d == 2:  # vertices are kept in counter-clockwise order: shoelace
        n = len(vertices)
        twice = fmpq(0)
        for k in range(n):
            p, q = vertices[k], vertices[(k + 1) % n]
            twice += p[0] * q[1] - q[0] * p[1]
        if twice <= 0:
            raise CertificationError("a 2-D cell whose vertices are not in counter-clockwise order")
        return twice / 2
    if d == 3:
        inc = [set() for _ in vertices]
        for fi, f in enumerate(facets):
            for k in f.vertices:
                inc[k].add(fi)
        return _q(polytope_volume([tuple(_f(c) for c in v) for v in vertices], inc))
    return None


def _clip(poly: list[tuple], g: list, d: int) -> list[tuple]:
    """Clip an interval (d = 1, two ends) or a counter-clockwise convex polygon by ``g . (t, 1) >= 0``."""
    s = [sum((gi * pi for gi, pi in zip(g, p)), g[d]) for p in poly]
    if all(v >= 0 for v in s):
        return poly
    if d == 1:
        (a,), (b,) = poly
        cut = (-g[1] / g[0],)
        return [poly[0], cut] if s[0] >= 0 else [cut, poly[1]]
    out: list[tuple] = []
    n = len(poly)
    for i in range(n):
        p, sp = poly[i], s[i]
        q, sq = poly[(i + 1) % n], s[(i + 1) % n]
        if sp >= 0:
            out.append(p)
        if (sp > 0 and sq < 0) or (sp < 0 and sq > 0):
            t = sp / (sp - sq)
            out.append(tuple(pi + t * (qi - pi) for pi, qi in zip(p, q)))
    dedup = [v for i, v in enumerate(out) if v != out[i - 1]] if len(out) > 1 else out
    return dedup


# --------------------------------------------------------------------------- the per-parent step

@dataclass
class Candidate:
    state: tuple[int, ...]
    witness: Row | None
    hint_ids: set[int] | None  # constraint ids the float trace saw bounding descendants


class _Certifier:
    """Exact work for one parent at a time. Internally rationals are python-flint ``fmpq`` and
    constraints are *slack rows* ``g`` with ``g . (t, 1) >= 0`` (``> 0`` strictly inside), so that
    evaluations are ``fmpq_mat`` products: ``E = SW * V`` holds every switching function of the
    op at every vertex of a cell and answers all of the cell's sign questions at once."""

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
        d = self.d
        nd = self.prog.nodes[self.prog.piecewise[j]]
        ctx = _OpContext(nd, _switching_map(self.prog, parent.live, j).mat, parent, d)
        found: dict[tuple[int, ...], Cell] = {}
        queue: list[Candidate] = list(cands)
        queued = {c.state for c in queue}
        self.stats.candidates += len(cands)
        while queue:
            cand = queue.pop()
            if cand.state in found:
                continue
            rows = ctx.rows(cand.state)
            if rows is None:
                self.stats.spurious += 1
                continue
            w = cand.witness
            if w is None or not ctx.strictly_inside(rows, w):
                self.stats.witness_lp += 1
                A, b = _to_ab(ctx.parent_G + [ctx.slack(i, sg) for i, sg in rows], d)
                ip = _polyhedra.interior_point(A, b, dim=d)
                if ip is None or ip[1] <= 0:
                    self.stats.spurious += 1
                    continue
                w = tuple(_q(v) for v in ip[0])
            # The state of a cell is the state at its interior points; units identically zero on
            # the parent take their tie state there (they do not split it).
            state = ctx.state_at(w)
            if state != cand.state:
                self.stats.spurious += 1
                if state in found:
                    continue
                rows = ctx.rows(state)
                assert rows is not None
            cell, E, P = self._cell(parent, ctx, state, w, rows, cand.hint_ids)
            cell.repaired = cand.hint_ids is None and cand.witness is None
            if cell.repaired:
                self.stats.repaired += 1
            else:
                self.stats.confirmed += 1
            found[state] = cell
            # closure under facet crossing
            lo, hi = self.offsets[j], self.offsets[j + 1]
            for f in cell.facets:
                if not any(lo <= i < hi for i in f.ids):
                    continue  # only a facet of the parent: crossing it leaves P
                if any(all(row[v] == 0 for v in f.vertices) for row in P):
                    continue  # on the parent's boundary
                nb = self._across(f, E, ctx)
                if nb not in found and nb not in queued:
                    queued.add(nb)
                    queue.append(Candidate(nb, None, None))
        if not found:
            raise CertificationError(f"no child found for a parent cell at level {j}")
        children = list(found.values())
        if parent.volume is not None:
            total = sum((c.volume for c in children), fmpq(0))  # type: ignore[misc]
            if total != parent.volume:
                raise CertificationError(
                    f"children volumes sum to {total}, parent volume is {parent.volume} (level {j})")
        return children

    def _cell(self, parent: Cell, ctx: "_OpContext", state: tuple[int, ...], w: tuple,
              rows: list[tuple[int, int]], hint: set[int] | None) -> tuple[Cell, list, list]:
        d = self.d
        off = self.offsets[ctx.j]
        sign_of = dict(rows)
        if hint is None:
            first = [i for i, _ in rows]
        else:
            first = [i for i, _ in rows if off + i in hint]
        if d <= 2 and self.bounded:
            poly = list(parent.vertices)
            pending = first
            while True:
                for i in pending:
                    poly = _clip(poly, ctx.slack(i, sign_of[i]), d)
                E = (ctx.SW * _cols(poly, d)).tolist()
                pending = [i for i, sg in rows if any(sg * v < 0 for v in E[i])]
                if not pending:
                    break
                self.stats.redo_hv += 1
            if len(poly) < d + 1:
                raise CertificationError("a cell with a witness strictly inside came out flat")
            verts = poly
            sides = [(0,), (1,)] if d == 1 else [(v, (v + 1) % len(poly)) for v in range(len(poly))]
        else:
            use = first
            while True:
                G = ctx.parent_G + [ctx.slack(i, sign_of[i]) for i in use]
                A, b = _to_ab(G, d)
                vrep = _polyhedra.h_to_v(A, b, dim=d)
                if vrep.rays or vrep.lines or not vrep.vertices:
                    if len(use) < len(rows):
                        use = [i for i, _ in rows]
                        self.stats.redo_hv += 1
                        continue
                    raise InvalidInputError("unbounded cells are not supported yet by the certifier; "
                                            "use a bounded domain")
                verts = [tuple(_q(v) for v in vx) for vx in vrep.vertices]
                E = (ctx.SW * _cols(verts, d)).tolist()
                bad = [i for i, sg in rows if any(sg * v < 0 for v in E[i])]
                if not bad:
                    break
                self.stats.redo_hv += 1
                use = sorted(set(use) | set(bad))
            fs = _polyhedra.facets(A, b, vrep)
            sides = [tuple(sorted(vs)) for vs in fs.vertex_sets]
        P = (ctx.PG * _cols(verts, d)).tolist() if ctx.parent_G else []
        facets = []
        for side in sides:
            tight_par = [k for k, row in enumerate(P) if all(row[v] == 0 for v in side)]
            tight_own = [i for i, _ in rows if all(E[i][v] == 0 for v in side)]
            if tight_par:
                slack = ctx.parent_G[tight_par[0]]
            elif tight_own:
                slack = ctx.slack(tight_own[0], sign_of[tight_own[0]])
            else:
                raise CertificationError("a side of a cell lies on no constraint")
            ids = {i for k in tight_par for i in ctx.parent_ids[k]} | {off + i for i in tight_own}
            facets.append(Facet(list(slack), tuple(sorted(ids)), side))
        vol = _volume(verts, facets, d) if self.bounded else None
        cell = Cell(ctx.j + 1, parent.states + (state,), tuple(w), facets, verts, vol)
        cell.live = _run_nodes(self.prog, parent.live, *self._seg(ctx.j + 1), state)
        return cell, E, P

    def _seg(self, level: int) -> tuple[int, int]:
        pw = self.prog.piecewise
        lo = pw[level - 1]
        hi = pw[level] if level < len(pw) else len(self.prog.nodes)
        return lo, hi

    def _across(self, f: Facet, E: list, ctx: "_OpContext") -> tuple[int, ...]:
        """State of the op just across facet ``f`` (exact): the signs at a point ``c`` of the
        facet's relative interior, where a switching function vanishing on the whole facet takes
        the sign it has just outside (from its normal), and one merely passing through ``c``
        forces another choice of ``c``."""
        d = self.d
        vs = f.vertices
        k = next(i for i in range(d) if f.slack[i] != 0)
        gk = f.slack[k]
        across = []
        for i, row in enumerate(E):
            if all(row[v] == 0 for v in vs):
                c = ctx.sw_rows[i][k]
                # on f the function is a multiple lam * g_f with sign(lam) = sign(c / gk); outside g_f < 0
                across.append(0 if c == 0 else (-1 if (c > 0) == (gk > 0) else 1))
            else:
                across.append(None)
        for attempt in range(50):
            if attempt == 0:
                wts = [fmpq(1, len(vs))] * len(vs)
            else:
                raw = [self.rng.randint(1, 1000) for _ in vs]
                tot = sum(raw)
                wts = [fmpq(r, tot) for r in raw]
            signs = []
            for row, fixed in zip(E, across):
                if fixed is not None:
                    signs.append(fixed)
                    continue
                v = sum((wt * row[x] for wt, x in zip(wts, vs)), fmpq(0))
                if v == 0:
                    break  # c lies on a hyperplane crossing the facet: pick another point
                signs.append(1 if v > 0 else -1)
            else:
                return ctx.rule.state_tuple(ctx.module, signs, ctx.in_shape)
        raise CertificationError("could not find a generic point on a facet")

    def _state_at(self, rule: Any, module: Any, SW: fmpq_mat, w: tuple, in_shape: tuple[int, ...]) -> tuple[int, ...]:
        vals = (SW * _cols([w], self.d)).entries()
        return rule.state_tuple(module, [(v > 0) - (v < 0) for v in vals], in_shape)


class _OpContext:
    """What every child of one parent shares: the op, its exact switching functions on the parent."""

    def __init__(self, nd: Any, SW: fmpq_mat, parent: Cell, d: int) -> None:
        self.nd = nd
        self.rule = nd.rule
        self.module = nd.module
        self.in_shape = nd.in_shapes[0]
        self.out_shape = nd.out_shape
        self.j = parent.level
        self.d = d
        self.SW = SW
        self.sw_rows = SW.tolist()
        self.vanish = [all(v == 0 for v in row) for row in self.sw_rows]
        self.parent_G = [f.slack for f in parent.facets]
        self.parent_ids = [f.ids for f in parent.facets]
        self.PG = _mat(self.parent_G, d + 1) if self.parent_G else None

    def slack(self, i: int, sg: int) -> list:
        row = self.sw_rows[i]
        return row if sg > 0 else [-v for v in row]

    def rows(self, state: tuple[int, ...]) -> list[tuple[int, int]] | None:
        """(switching index, sign) defining the state's cell, leaving out functions identically
        zero on the parent; None when the state is surely empty (a constant with the wrong sign)."""
        out = []
        d = self.d
        for i, sg in self.rule.constraint_list(self.module, state, self.in_shape, self.out_shape):
            if self.vanish[i]:
                continue
            row = self.sw_rows[i]
            if all(v == 0 for v in row[:d]):
                if sg * row[d] > 0:
                    continue
                return None
            out.append((i, sg))
        return out

    def strictly_inside(self, rows: list[tuple[int, int]], w: tuple) -> bool:
        col = _cols([w], self.d)
        if self.PG is not None and not all(v > 0 for v in (self.PG * col).entries()):
            return False
        vals = (self.SW * col).entries()
        return all(sg * vals[i] > 0 for i, sg in rows)

    def state_at(self, w: tuple) -> tuple[int, ...]:
        vals = (self.SW * _cols([w], self.d)).entries()
        return self.rule.state_tuple(self.module, [(v > 0) - (v < 0) for v in vals], self.in_shape)


# --------------------------------------------------------------------------- driver

@dataclass
class Leaf:
    """A certified activation region (a leaf of the layer tree), ready for the certificate."""

    states: tuple[tuple[int, ...], ...]
    witness: Row
    facets: list[tuple]  # (a, b, ids, vertex indices) with a . t <= b, as Fractions
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


def _ordered(verts: list[tuple], facets: list[Facet], d: int) -> tuple[list[tuple], list[Facet]]:
    """Vertices in order (interval ends; counter-clockwise polygon) with facets as their sides."""
    if d == 1:
        order = sorted(range(len(verts)), key=lambda k: verts[k][0])
    else:
        nxt: dict[int, list[int]] = {}
        for f in facets:
            u, v = f.vertices
            nxt.setdefault(u, []).append(v)
            nxt.setdefault(v, []).append(u)
        order, prev, cur = [facets[0].vertices[0]], None, facets[0].vertices[0]
        while True:
            a, b = nxt[cur]
            step = b if a == prev else a
            if step == order[0]:
                break
            order.append(step)
            prev, cur = cur, step
        area2 = sum((verts[order[k]][0] * verts[order[(k + 1) % len(order)]][1]
                     - verts[order[(k + 1) % len(order)]][0] * verts[order[k]][1] for k in range(len(order))), fmpq(0))
        if area2 < 0:
            order.reverse()
    pos = {k: n for n, k in enumerate(order)}
    new_facets = [Facet(f.slack, f.ids, tuple(pos[k] for k in f.vertices)) for f in facets]
    if d == 2:  # facet k joins vertex k and k+1
        by_side = {frozenset(f.vertices): f for f in new_facets}
        new_facets = [by_side[frozenset((k, (k + 1) % len(order)))] for k in range(len(order))]
        new_facets = [Facet(f.slack, f.ids, (k, (k + 1) % len(order))) for k, f in enumerate(new_facets)]
    else:
        new_facets = sorted(new_facets, key=lambda f: f.vertices)
    return [verts[k] for k in order], new_facets


def _root(prog: Program, domain: Domain) -> Cell:
    A, b = domain.halfspaces()
    d = domain.dim
    vrep = _polyhedra.h_to_v([list(r) for r in A], list(b), dim=d)
    fs = _polyhedra.facets([list(r) for r in A], list(b), vrep)
    verts = [tuple(_q(c) for c in v) for v in vrep.vertices]
    facets = [Facet([-_q(v) for v in A[g[0]]] + [_q(b[g[0]])], tuple(g), tuple(sorted(vs)))
              for g, vs in zip(fs.groups, fs.vertex_sets)]
    if d <= 2 and domain.is_bounded:
        verts, facets = _ordered(verts, facets, d)
    vol = _volume(verts, facets, d) if domain.is_bounded else None
    root = Cell(0, (), tuple(_q(v) for v in domain.interior_point()), facets, verts, vol)
    M, c = domain.input_map()
    m0 = _exact.input_map(M, c, prog.input_shape)
    hi = prog.piecewise[0] if prog.piecewise else len(prog.nodes)
    root.live = _run_nodes(prog, {INPUT: m0}, 0, hi, None)
    return root


def _seed(cert: _Certifier, parent: Cell) -> Candidate:
    """A candidate child at a generic point near the parent's witness (no float trace needed)."""
    j = parent.level
    d = cert.d
    SW = _switching_map(cert.prog, parent.live, j).mat
    rows = SW.tolist()
    w = parent.witness
    rng = random.Random(1)
    for attempt in range(200):
        vals = (SW * _cols([w], d)).entries()
        if all(v != 0 or all(x == 0 for x in row[:d]) for v, row in zip(vals, rows)):
            nd = cert.prog.nodes[cert.prog.piecewise[j]]
            return Candidate(cert._state_at(nd.rule, nd.module, SW, w, nd.in_shapes[0]), w, None)
        # a random convex combination of the vertices, pulled slightly towards the witness
        raw = [rng.randint(1, 10**6) for _ in parent.vertices]
        tot = sum(raw)
        v = tuple(sum((fmpq(r, tot) * p[i] for r, p in zip(raw, parent.vertices)), fmpq(0))
                  for i in range(d)) if parent.vertices else w
        eps = fmpq(1, rng.randint(10, 10**3))
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
        leaves.append(Leaf(c.states, tuple(_f(v) for v in c.witness),
                           [(f.a, f.b, f.ids, f.vertices) for f in c.facets],
                           [tuple(_f(v) for v in p) for p in c.vertices],
                           None if c.volume is None else _f(c.volume), rows, c.repaired))
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
        w = tuple(_q(v) for v in interior[r])
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
