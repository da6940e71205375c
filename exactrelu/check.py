"""Independent checker of certificates.

It imports none of the tracer or certifier code: from the network's exact parameters (through the
layer rules) it recomputes, in rational arithmetic, everything a certificate claims, and stops at
the first item that does not hold with a :class:`~exactrelu.errors.CertificateError` naming it.

What is checked:
- the network digest (architecture and exact parameters) and the domain;
- every region: its witness lies in the domain and strictly inside every constraint of its pattern
  (so the region is a non-empty open cell with that pattern), the state at the witness equals the
  pattern (units identically zero there take their tie state), patterns are distinct, and the
  output map equals the exact output map of the pattern;
- every vertex of a region satisfies all its constraints and is tight on d linearly independent
  ones (so it is a vertex), every facet row is one of its constraints and is tight at its vertices;
- completeness, for bounded domains of dimension 1 to 3: the exact volumes of the regions (convex
  hulls of their certified vertices) sum to the domain's volume. Regions with distinct patterns are
  disjoint and each hull lies in its region, so equality leaves no room for a missing region.
  (Dimensions >= 4 and unbounded domains: completeness rests on the certifier's closure check
  and is not re-derived here.)
- unbounded regions: every ray is a recession direction and every line lies in every constraint.
- adjacency: both regions have a facet on the stated hyperplane, on opposite sides; the pieces
  agree with the adjacency and the exact output maps; the counts agree with the lists.

How it is fast without trusting anything but exact arithmetic:
- the exact maps are composed once per pattern prefix (regions share the states of their first
  ops), by the layer rules, node by node in the program's order;
- signs of constraints at witnesses and vertices come from one float64 matrix product with a
  rigorous error bound (the filter of :mod:`exactrelu._geometry`); every sign the bound does not
  decide (in particular every zero: tightness) is recomputed exactly in ``fmpq``;
- 2-D areas: the vertices are ordered by float angle, the order is verified exactly (strict left
  turns, one turn in all) and the shoelace sum is exact; when the verification fails the exact
  angle sort of :func:`~exactrelu._geometry.polygon_area` is used instead.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import flint
import numpy as np
import torch
from torch import nn

from ._exact import ExactMap, input_map, to_fraction
from ._geometry import _TINY, _U, nearest_floats, polygon_area, polytope_volume
from .capture import Program, capture
from .certificate import Certificate, canonical_hyperplane
from .errors import CertificateError

__all__ = ["check"]

fmpq = flint.fmpq
_INPUT = -1


def _fail(msg: str) -> None:
    raise CertificateError(msg)


def _rank(rows: list[Sequence[Fraction]]) -> int:
    if not rows:
        return 0
    d = len(rows[0])
    m = flint.fmpq_mat(len(rows), d, [flint.fmpq(v.numerator, v.denominator) for r in rows for v in r])
    return m.rank()


def _fq(x: Fraction | int) -> fmpq:
    return fmpq(x.numerator, x.denominator)


def _near(q: fmpq) -> float:
    """The nearest float64 to ``q`` (Python's int division is correctly rounded); ±inf on overflow."""
    try:
        return int(q.p) / int(q.q)
    except OverflowError:
        return float("inf") if q > 0 else float("-inf")


def _sign(v: fmpq) -> int:
    return (v > 0) - (v < 0)


def _signs(F: np.ndarray, rows: list[list[fmpq]], X: np.ndarray, pts: list[Sequence[fmpq]]) -> np.ndarray:
    """Exact signs (int8, (m, k)) of ``rows[i] . (pts[j], 1)``. ``F`` holds the nearest floats of
    ``rows`` (m, d + 1), ``X`` those of ``pts`` (k, d). The float product decides every entry whose
    value exceeds the rigorous error bound of ``_geometry.signs_filtered``; the rest (all zeros
    among them) are evaluated exactly."""
    A = F[:, :-1]
    b = F[:, -1]
    n = A.shape[1]
    with np.errstate(all="ignore"):
        s = A @ X.T + b[:, None]
        absA = np.abs(A)
        absX = np.abs(X)
        big_s = absA @ absX.T + np.abs(b)[:, None]
        t = absA.sum(axis=1)[:, None] + absX.sum(axis=1)[None, :]
        bound = (2.0 * (n + 4) * _U) * big_s + _TINY * (t + (2 * n + 4))
        decided = np.isfinite(s) & np.isfinite(bound) & (np.abs(s) > bound)
        out = np.where(s > 0, 1, -1).astype(np.int8)
    ii, jj = np.nonzero(~decided)
    for i, j in zip(ii.tolist(), jj.tolist()):
        row = rows[i]
        p = pts[j]
        v = row[n]
        for a, x in zip(row, p):
            v += a * x
        out[i, j] = _sign(v)
    return out


class _Level:
    """Exact data for a pattern prefix (the states of piecewise ops ``< j``): the live values
    before piecewise op ``j`` and the exact rows ``[a | c]`` of its switching functions."""

    __slots__ = ("values", "rows", "F", "zero")

    def __init__(self, values: dict[int, Any], sw: ExactMap | None) -> None:
        self.values = values
        if sw is None:
            return
        self.rows = sw.mat.tolist()
        self.F = np.array([_near(v) for v in sw.mat.entries()], dtype=np.float64).reshape(
            len(self.rows), sw.mat.ncols())
        # a zero row has zero floats; rows of zero floats are confirmed exactly (underflow)
        self.zero = ~self.F.any(axis=1)
        for i in np.nonzero(self.zero)[0].tolist():
            self.zero[i] = all(v == 0 for v in self.rows[i])


class _Runner:
    """The exact pass of :meth:`Program.exact_run`, through the same rules node by node, but
    memoized per pattern prefix: regions sharing the states of their first ops share that work."""

    def __init__(self, prog: Program, m0: ExactMap) -> None:
        self.prog = prog
        self.nodes = prog.nodes
        self.pw = list(prog.piecewise)
        last = list(range(len(self.nodes)))
        for i, nd in enumerate(self.nodes):
            for s in nd.inputs:
                if s != _INPUT:
                    last[s] = max(last[s], i)
        if prog.output != _INPUT:
            last[prog.output] = len(self.nodes)
        self.last = last
        values = {_INPUT: m0}
        self._advance(values, 0)
        self.memo: dict[tuple, _Level] = {(): self._level(values, 0)}

    def _free(self, values: dict[int, Any], i: int) -> None:
        for s in set(self.nodes[i].inputs):
            if s != _INPUT and self.last[s] <= i:
                values.pop(s, None)

    def _advance(self, values: dict[int, Any], start: int) -> None:
        """Run the non-piecewise nodes from ``start`` up to the next piecewise node (or the end)."""
        for i in range(start, len(self.nodes)):
            nd = self.nodes[i]
            if nd.piecewise:
                return
            values[i] = nd.rule.exact_forward(nd.module, [values[s] for s in nd.inputs], nd.out_shape)
            self._free(values, i)

    def _level(self, values: dict[int, Any], j: int) -> _Level:
        if j == len(self.pw):
            return _Level(values, None)
        nd = self.nodes[self.pw[j]]
        return _Level(values, nd.rule.exact_switching(nd.module, values[nd.inputs[0]]))

    def _extend(self, lvl: _Level, j: int, state: torch.Tensor) -> dict[int, Any]:
        i = self.pw[j]
        nd = self.nodes[i]
        values = dict(lvl.values)
        values[i] = nd.rule.exact_apply(nd.module, values[nd.inputs[0]], state.reshape(nd.out_shape))
        self._free(values, i)
        self._advance(values, i + 1)
        return values

    def level(self, key: tuple, j: int, states: list[torch.Tensor]) -> _Level:
        """Level ``j`` of a pattern whose state tuples are ``key`` (the first ``j`` are used)."""
        pre = key[:j]
        lvl = self.memo.get(pre)
        if lvl is None:
            parent = self.level(key, j - 1, states)
            lvl = self._level(self._extend(parent, j - 1, states[j - 1]), j)
            self.memo[pre] = lvl
        return lvl

    def output(self, key: tuple, states: list[torch.Tensor]) -> ExactMap:
        P = len(self.pw)
        if P == 0:
            values = self.memo[()].values
        else:
            values = self._extend(self.level(key, P - 1, states), P - 1, states[P - 1])
        return values[self.prog.output]


def _area_2d(ids: list[int], Vf: np.ndarray, vq: Any, pts: list) -> Fraction:
    """Exact area of the convex hull of the vertices ``ids`` (``pts`` their Fraction coordinates)."""
    n = len(ids)
    if n < 3:
        return Fraction(0)
    X = Vf[ids]
    if np.isfinite(X).all():
        c = X.mean(axis=0)
        order = np.argsort(np.arctan2(X[:, 1] - c[1], X[:, 0] - c[0]), kind="stable").tolist()
        P = [vq(ids[o]) for o in order]
        E = [(P[(i + 1) % n][0] - P[i][0], P[(i + 1) % n][1] - P[i][1]) for i in range(n)]
        half = [0 if e[1] > 0 or (e[1] == 0 and e[0] > 0) else 1 for e in E]
        turns = 0
        ok = True
        for i in range(n):
            e, g = E[i], E[(i + 1) % n]
            if not e[0] * g[1] - e[1] * g[0] > 0:
                ok = False
                break
            if half[i] == 0 and half[(i + 1) % n] == 1:
                turns += 1
        # strict left turns with the edge direction going round once: a convex polygon whose
        # vertices are exactly these points, counter-clockwise; the shoelace sum is its area.
        if ok and turns == 1:
            twice = fmpq(0)
            for i in range(n):
                p, q = P[i], P[(i + 1) % n]
                twice += p[0] * q[1] - q[0] * p[1]
            return to_fraction(twice) / 2
    return polygon_area(pts)


def check(cert: Certificate | str, net: nn.Module | Program) -> Certificate:
    """Re-verify ``cert`` against ``net``; returns the certificate or raises CertificateError.

    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> import exactrelu
    >>> c = exactrelu.verify(net, [(-1, 1)], progress=False)
    >>> check(c, net).num_regions == c.num_regions
    True
    """
    if not isinstance(cert, Certificate):
        cert = Certificate.load(cert)
    prog = net if isinstance(net, Program) else capture(net, cert.input_shape)
    if prog.digest() != cert.digest:
        _fail("network digest: the certificate was made for a different network (architecture or parameters differ)")
    dom = cert.domain
    d = dom.dim
    A_dom, b_dom = dom.halfspaces()
    M, c = dom.input_map()
    m0 = input_map(M, c, prog.input_shape)
    offsets = [len(A_dom)]
    for j in range(prog.num_piecewise):
        offsets.append(offsets[-1] + prog.num_switching(j))
    if offsets != cert.constraint_offsets:
        _fail(f"constraint ids: the certificate's offsets {cert.constraint_offsets} do not match {offsets}")
    nodes = prog.piecewise_nodes()
    n_out = []
    for nd in nodes:
        n = 1
        for s in nd.out_shape:
            n *= s
        n_out.append(n)
    n_dom = len(A_dom)
    # domain rows as constraints b - a.t >= 0, in the same form as the switching rows
    dom_rows = [[_fq(-x) for x in a] + [_fq(b)] for a, b in zip(A_dom, b_dom)]
    dom_F = np.array([[_near(v) for v in row] for row in dom_rows], dtype=np.float64).reshape(n_dom, d + 1)
    dom_cids = np.arange(n_dom, dtype=np.int64)
    dom_sgn = np.ones(n_dom, dtype=np.int64)
    # vertices: nearest floats for all, exact fmpq on demand
    n_vert = len(cert.vertices)
    for k, v in enumerate(cert.vertices):
        if len(v) != d:
            _fail(f"vertex {k} has {len(v)} coordinates, the domain {d}")
    Vf = nearest_floats([list(v) for v in cert.vertices]) if n_vert else np.zeros((0, d))
    vq_cache: dict[int, tuple] = {}

    def vq(k: int) -> tuple:
        v = vq_cache.get(k)
        if v is None:
            v = vq_cache[k] = tuple(_fq(x) for x in cert.vertices[k])
        return v

    runner = _Runner(prog, m0)
    cc_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
    seen: set[tuple] = set()
    total_volume = Fraction(0)
    for r in cert.regions:
        where = f"region {r.index}"
        if len(r.pattern) != prog.num_piecewise:
            _fail(f"{where}: pattern has {len(r.pattern)} ops, the network has {prog.num_piecewise}")
        key = tuple(tuple(p) for p in r.pattern)
        if key in seen:
            _fail(f"{where}: pattern listed twice")
        seen.add(key)
        states = []
        for p, nd, n in zip(r.pattern, nodes, n_out):
            if len(p) != n:
                _fail(f"{where}: pattern of {nd.name} has {len(p)} states, expected {n}")
            states.append(torch.tensor(p, dtype=torch.int64).reshape(nd.out_shape))
        w = r.witness
        if len(w) != d:
            _fail(f"{where}: witness has {len(w)} coordinates, the domain {d}")
        # the witness and the (valid) vertices, exact and as nearest floats: one sign pass per op
        vids = list(r.vertices)
        n_ok = len(vids)
        for pos, k in enumerate(vids):
            if not 0 <= k < n_vert:
                n_ok = pos
                break
        ok_ids = vids[:n_ok]
        pts_q = [tuple(_fq(x) for x in w)] + [vq(k) for k in ok_ids]
        wf = nearest_floats([list(w)])
        X = np.concatenate([wf, Vf[ok_ids]], axis=0)
        S_dom = _signs(dom_F, dom_rows, X, pts_q)
        # constraints of the region (domain rows first, then every op's cell constraints in order):
        # blocks of (rows, floats, selected row indices, signs, constraint ids)
        blocks = [(dom_rows, S_dom, dom_cids, dom_sgn, dom_cids)]
        for j, (nd, st) in enumerate(zip(nodes, states)):
            lvl = runner.level(key, j, states)
            S_all = _signs(lvl.F, lvl.rows, X, pts_q)
            sg_w = S_all[:, 0]
            at_w = nd.rule.state_from_signs(nd.module, torch.from_numpy(sg_w.astype(np.int64))[None],
                                            nd.in_shapes[0])[0]
            if not torch.equal(at_w.reshape(-1), st.reshape(-1)):
                _fail(f"{where}: the state of {nd.name} at the witness is not the region's pattern")
            cc = cc_cache.get((j, key[j]))
            if cc is None:
                idx, sgn = nd.rule.cell_constraints(nd.module, st, nd.in_shapes[0])
                cc = cc_cache[(j, key[j])] = (idx.reshape(-1).numpy().astype(np.int64),
                                              sgn.reshape(-1).numpy().astype(np.int64))
            idx, sgn = cc
            keep = ~lvl.zero[idx]  # identically zero: does not split (its tie state was checked above)
            bad = keep & (sgn * sg_w[idx] <= 0)
            if bad.any():
                i = int(idx[int(np.argmax(bad))])
                _fail(f"{where}: witness not strictly inside constraint {offsets[j] + i} of {nd.name}")
            sel = idx[keep]
            blocks.append((lvl.rows, S_all, sel, sgn[keep], offsets[j] + sel))
        sd = S_dom[:, 0]
        if (sd <= 0).any():
            _fail(f"{where}: witness outside the domain (row {int(np.argmax(sd <= 0))})")
        out = runner.output(key, states)
        rows_out = r.output
        same = (len(rows_out) == out.n and all(len(row) == out.k + 1 for row in rows_out))
        if same:
            try:
                same = flint.fmpq_mat(out.n, out.k + 1, [_fq(v) for row in rows_out for v in row]) == out.mat
            except (AttributeError, TypeError):
                same = [[to_fraction(v) for v in row] for row in out.mat.tolist()] == rows_out
        if not same:
            _fail(f"{where}: output map differs from the exact output map of its pattern")
        # unbounded regions: every ray is a recession direction, every line lies in every constraint
        for kind, dirs in (("ray", r.rays), ("line", r.lines)):
            for n_dir, v in enumerate(dirs):
                if len(v) != d or all(x == 0 for x in v):
                    _fail(f"{where}: {kind} {n_dir} is not a non-zero direction in dimension {d}")
                vdir = [_fq(x) for x in v]
                for rows, _, sel, sgn, cids in blocks:
                    for i, sg, cid in zip(sel.tolist(), sgn.tolist(), cids.tolist()):
                        dv = sg * sum((rows[i][m] * vdir[m] for m in range(d)), fmpq(0))
                        if dv < 0 or (kind == "line" and dv != 0):
                            _fail(f"{where}: {kind} {n_dir} leaves the region through constraint {cid}")
        # vertices: signs of every constraint at every vertex, then order-preserving diagnostics
        colpos: dict[int, int] = {}
        rowpos: dict[int, int] = {}
        if ok_ids:
            sign_blocks, cid_blocks, lin = [], [], []
            for rows, S_all, sel, sgn, cids in blocks:
                sign_blocks.append(S_all[sel, 1:] * sgn[:, None].astype(np.int8))
                cid_blocks.append(cids)
                lin.extend(rows[i][:-1] for i in sel.tolist())
            SG = np.concatenate(sign_blocks, axis=0)
            cids_all = np.concatenate(cid_blocks).tolist()
            for col, k in enumerate(ok_ids):
                colv = SG[:, col]
                neg = colv < 0
                if neg.any():
                    _fail(f"{where}: vertex {k} violates constraint {cids_all[int(np.argmax(neg))]}")
                tight = np.nonzero(colv == 0)[0].tolist()
                rk = flint.fmpq_mat(len(tight), d, [x for t in tight for x in lin[t]]).rank() if tight else 0
                if rk != d:
                    _fail(f"{where}: vertex {k} is not a vertex (tight constraints have rank {rk} < {d})")
                colpos.setdefault(k, col)
            rowpos = {cid: n for n, cid in enumerate(cids_all)}
        if n_ok < len(vids):
            _fail(f"{where}: vertex index {vids[n_ok]} out of range")
        # facets: each is one of the region's constraints, tight at its vertices
        if r.facets:
            cons_of: dict[int, tuple[list, int]] = {}
            for rows, _, sel, sgn, cids in blocks[1:]:
                for i, sg, cid in zip(sel.tolist(), sgn.tolist(), cids.tolist()):
                    cons_of[cid] = (rows[i], sg)

            def cons(cid: int) -> tuple | None:
                if 0 <= cid < n_dom:
                    return (tuple(A_dom[cid]), b_dom[cid])
                got = cons_of.get(cid)
                if got is None:
                    return None
                row, sg = got
                return (tuple(to_fraction(-sg * x) for x in row[:-1]), to_fraction(sg * row[-1]))

            for f in r.facets:
                match = None
                for cid in f.ids:
                    if cons(cid) == (f.a, f.b):
                        match = cid
                        break
                if match is None:
                    _fail(f"{where}: facet {f.ids} is not one of its constraints")
                for k in f.vertices:
                    if k in colpos and match in rowpos:
                        on = SG[rowpos[match], colpos[k]] == 0
                    else:
                        if not 0 <= k < n_vert:
                            _fail(f"{where}: vertex index {k} out of range")
                        on = sum((ai * vi for ai, vi in zip(f.a, cert.vertices[k])), Fraction(0)) == f.b
                    if not on:
                        _fail(f"{where}: vertex {k} is not on facet {f.ids}")
        if dom.is_bounded and d <= 3:
            pts = [cert.vertices[k] for k in vids]
            if d == 1:
                vol = max(p[0] for p in pts) - min(p[0] for p in pts) if pts else Fraction(0)
            elif d == 2:
                vol = _area_2d(vids, Vf, vq, pts)
            else:
                inc = [set() for _ in pts]
                pos = {k: n for n, k in enumerate(r.vertices)}
                for fi, f in enumerate(r.facets):
                    for k in f.vertices:
                        if k in pos:
                            inc[pos[k]].add(fi)
                vol = polytope_volume(pts, inc)
            if r.volume is not None and vol != r.volume:
                _fail(f"{where}: volume {r.volume} differs from the volume of its vertices {vol}")
            total_volume += vol
    if dom.is_bounded and d <= 3 and total_volume != dom.volume():
        _fail(f"completeness: region volumes sum to {total_volume}, the domain's volume is {dom.volume()} "
              "(a region is missing or its vertices are incomplete)")
    # adjacency and pieces
    sides_of: dict[int, dict[tuple, set[int]]] = {}

    def sides(ri: int) -> dict[tuple, set[int]]:
        got = sides_of.get(ri)
        if got is None:
            got = sides_of[ri] = {}
            for f in cert.regions[ri].facets:
                hk, side = canonical_hyperplane(f.a, f.b)
                got.setdefault(hk, set()).add(side)
        return got

    for a in cert.adjacency:
        if not (0 <= a.i < a.j < cert.num_regions):
            _fail(f"adjacency ({a.i}, {a.j}): bad region indices")
        key = (a.a, a.b)
        pair = []
        for ri in (a.i, a.j):
            s = sides(ri).get(key)
            if not s:
                _fail(f"adjacency ({a.i}, {a.j}): region {ri} has no facet on the stated hyperplane")
            pair.append(s)
        if not any(-s in pair[1] for s in pair[0]):
            _fail(f"adjacency ({a.i}, {a.j}): the regions are not on opposite sides of the hyperplane")
    if len(cert.pieces) != cert.num_regions:
        _fail("pieces: one piece label per region expected")
    for a in cert.adjacency:
        same = cert.regions[a.i].output == cert.regions[a.j].output
        if same and cert.pieces[a.i] != cert.pieces[a.j]:
            _fail(f"pieces: adjacent regions {a.i} and {a.j} have the same output map but different pieces")
    labels = {}
    for r in cert.regions:
        first = labels.setdefault(cert.pieces[r.index], r.index)
        if cert.regions[first].output != r.output:
            _fail(f"pieces: regions {first} and {r.index} share a piece but not their output map")
    return cert
