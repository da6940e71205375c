"""Independent exact reference counter for the verification suite.

This module deliberately shares no code with the package under test (``exactrelu``): it reads the
network's parameters itself, exactly (``Fraction(float(p))`` per entry; every finite float is a
dyadic rational), and enumerates activation regions by plain recursive splitting in Python
``fractions.Fraction`` arithmetic.  It is written to be obviously correct, not fast, and supports
only ``nn.Sequential`` of ``nn.Linear`` and ``nn.ReLU`` on 1-D intervals and 2-D boxes.

Definitions (those of ../shared/DESIGN.md, beside the repository):

* Cells are processed op by op.  On a cell every coordinate of the current tensor is an exact affine
  function of the input.  ``nn.Linear`` composes; ``nn.ReLU`` splits every cell by each unit in
  turn.  A unit splits a cell only if its pre-activation takes both strictly positive and strictly
  negative values on the cell; otherwise its state on the cell is +1 (>= 0, not identically 0),
  -1 (<= 0, not identically 0) or 0 (identically zero: does not split, output 0).  An affine
  function that is >= 0 on a convex cell and not identically zero is > 0 on the cell's interior, so
  these states are the strict states of the region's interior, as the definition requires.
* Regions = the leaf cells (each has a distinct full activation pattern).
* Pieces = connected components of the graph "adjacent regions whose exact output affine maps are
  equal" (adjacent = sharing a segment of positive length in 2-D, a breakpoint in 1-D).
* Vertices = distinct vertices of the leaf polygons (exact).  Edges = the 1-cells of the planar
  subdivision: polygon sides subdivided at every vertex lying on them (a vertex of one region can
  lie in the relative interior of a side of its neighbour).  With these, V - E + F = 1 on a box.
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from fractions import Fraction

import torch.nn as nn

__all__ = ["ReferenceResult", "read_ops", "reference_count", "count_1d", "count_2d"]


@dataclass
class ReferenceResult:
    dim: int
    num_regions: int
    num_pieces: int
    num_vertices: int
    num_edges: int
    adjacency: list = field(default_factory=list)  # pairs (i, j), i < j, indices into cells
    vertices: list = field(default_factory=list)  # exact points (tuples of Fraction)
    cells: list = field(default_factory=list)  # 1-D: (lo, hi); 2-D: ccw vertex list
    patterns: list = field(default_factory=list)  # tuple of states (+1/-1/0) per ReLU unit


def _exact(t) -> list:
    return [Fraction(float(v)) for v in t.detach().cpu().reshape(-1).tolist()]


def read_ops(net: nn.Module) -> list:
    """[('linear', W rows, b), ('relu',)] with exact Fraction entries."""
    if not isinstance(net, nn.Sequential):
        raise TypeError("reference counter supports nn.Sequential only")
    ops = []
    for m in net:
        if isinstance(m, nn.Linear):
            out_f, in_f = m.weight.shape
            w = _exact(m.weight)
            rows = [w[i * in_f:(i + 1) * in_f] for i in range(out_f)]
            b = _exact(m.bias) if m.bias is not None else [Fraction(0)] * out_f
            ops.append(("linear", rows, b))
        elif isinstance(m, nn.ReLU):
            ops.append(("relu",))
        else:
            raise TypeError(f"reference counter: unsupported module {type(m).__name__}")
    return ops


# An affine map on a cell: list of rows, each row = (coefs tuple of length d, const).

def _compose(rows_w, b, amap, d):
    out = []
    for wr, bi in zip(rows_w, b, strict=True):
        coefs = [Fraction(0)] * d
        const = bi
        for wij, (c, k) in zip(wr, amap, strict=True):
            if wij:
                for t in range(d):
                    coefs[t] += wij * c[t]
                const += wij * k
        out.append((tuple(coefs), const))
    return out


def _eval(row, pt):
    c, k = row
    return sum((ci * xi for ci, xi in zip(c, pt, strict=True)), k)


def _identity_map(d):
    return [(tuple(Fraction(int(i == j)) for j in range(d)), Fraction(0)) for i in range(d)]


# ---------------------------------------------------------------- 1-D

def count_1d(ops, lo, hi) -> ReferenceResult:
    lo, hi = Fraction(lo), Fraction(hi)
    assert lo < hi
    cells = [((lo, hi), _identity_map(1), ())]  # (interval, map of current tensor, pattern)
    for op in ops:
        if op[0] == "linear":
            cells = [(iv, _compose(op[1], op[2], amap, 1), pat) for iv, amap, pat in cells]
            continue
        width = len(cells[0][1]) if cells else 0
        for j in range(width):
            new = []
            for (a, b), amap, pat in cells:
                va, vb = _eval(amap[j], (a,)), _eval(amap[j], (b,))
                if (va > 0 and vb < 0) or (va < 0 and vb > 0):
                    r = a + va / (va - vb) * (b - a)  # the unique root, strictly inside
                    for iv, s in (((a, r), 1 if va > 0 else -1), ((r, b), 1 if vb > 0 else -1)):
                        new.append((iv, amap, (*pat, s)))
                else:
                    s = 1 if (va > 0 or vb > 0) else (-1 if (va < 0 or vb < 0) else 0)
                    new.append(((a, b), amap, (*pat, s)))
            cells = new
        # apply the masks of this ReLU layer
        out = []
        for iv, amap, pat in cells:
            states = pat[len(pat) - width:]
            zero = ((Fraction(0),), Fraction(0))
            out.append((iv, [row if s == 1 else zero
                             for row, s in zip(amap, states, strict=True)], pat))
        cells = out
    cells.sort(key=lambda c: c[0][0])
    n = len(cells)
    pieces = 1 + sum(1 for i in range(n - 1) if cells[i][1] != cells[i + 1][1])
    verts = sorted({c[0][0] for c in cells} | {c[0][1] for c in cells})
    return ReferenceResult(
        dim=1, num_regions=n, num_pieces=pieces, num_vertices=len(verts), num_edges=n,
        adjacency=[(i, i + 1) for i in range(n - 1)], vertices=[(v,) for v in verts],
        cells=[c[0] for c in cells], patterns=[c[2] for c in cells])


# ---------------------------------------------------------------- 2-D

def _split(poly, vals):
    """Split a convex polygon (ccw vertex list) by the sign of an affine function (values at the
    vertices).  Called only when some value is > 0 and some < 0.  Returns (positive, negative)."""
    pos, neg = [], []
    n = len(poly)
    for i in range(n):
        p, q = poly[i], poly[(i + 1) % n]
        sp, sq = vals[i], vals[(i + 1) % n]
        if sp >= 0:
            pos.append(p)
        if sp <= 0:
            neg.append(p)
        if (sp > 0 and sq < 0) or (sp < 0 and sq > 0):
            t = sp / (sp - sq)
            x = (p[0] + t * (q[0] - p[0]), p[1] + t * (q[1] - p[1]))
            pos.append(x)
            neg.append(x)
    return pos, neg


def _line_key(p, q):
    a = q[1] - p[1]
    b = p[0] - q[0]
    c = a * p[0] + b * p[1]
    s = a if a != 0 else b
    return (a / s, b / s, c / s)


def count_2d(ops, box) -> ReferenceResult:
    (x0, x1), (y0, y1) = [(Fraction(a), Fraction(b)) for a, b in box]
    assert x0 < x1 and y0 < y1
    square = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]  # ccw
    cells = [(square, _identity_map(2), ())]
    for op in ops:
        if op[0] == "linear":
            cells = [(pg, _compose(op[1], op[2], amap, 2), pat) for pg, amap, pat in cells]
            continue
        width = len(cells[0][1]) if cells else 0
        for j in range(width):
            new = []
            for pg, amap, pat in cells:
                vals = [_eval(amap[j], v) for v in pg]
                has_pos = any(v > 0 for v in vals)
                has_neg = any(v < 0 for v in vals)
                if has_pos and has_neg:
                    pp, nn_ = _split(pg, vals)
                    new.append((pp, amap, (*pat, 1)))
                    new.append((nn_, amap, (*pat, -1)))
                else:
                    s = 1 if has_pos else (-1 if has_neg else 0)
                    new.append((pg, amap, (*pat, s)))
            cells = new
        out = []
        zero = ((Fraction(0), Fraction(0)), Fraction(0))
        for pg, amap, pat in cells:
            states = pat[len(pat) - width:]
            out.append((pg, [row if s == 1 else zero
                             for row, s in zip(amap, states, strict=True)], pat))
        cells = out

    # --- the planar subdivision: vertices, atomic edges, adjacency
    verts = {v for pg, _, _ in cells for v in pg}
    groups: dict = {}
    for r, (pg, _, _) in enumerate(cells):
        n = len(pg)
        for i in range(n):
            p, q = pg[i], pg[(i + 1) % n]
            key = _line_key(p, q)
            use_x = key[1] != 0  # non-vertical line: parametrise by x, else by y
            tp, tq = (p[0], q[0]) if use_x else (p[1], q[1])
            groups.setdefault(key, []).append((min(tp, tq), max(tp, tq), r))
    edge_cells: dict = {}
    for key, segs in groups.items():
        ts = sorted({t for a, b, _ in segs for t in (a, b)})
        for a, b, r in segs:
            i0, i1 = bisect.bisect_left(ts, a), bisect.bisect_left(ts, b)
            assert ts[i0] == a and ts[i1] == b and i0 < i1
            for k in range(i0, i1):
                edge_cells.setdefault((key, ts[k], ts[k + 1]), []).append(r)
    adjacency = set()
    for rs in edge_cells.values():
        assert len(rs) <= 2, "an edge shared by more than two regions: overlapping cells"
        if len(rs) == 2:
            adjacency.add((min(rs), max(rs)))
    # pieces: union-find over adjacent regions with identical exact output maps
    parent = list(range(len(cells)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, j in adjacency:
        if cells[i][1] == cells[j][1]:
            parent[find(i)] = find(j)
    pieces = len({find(i) for i in range(len(cells))})
    return ReferenceResult(
        dim=2, num_regions=len(cells), num_pieces=pieces, num_vertices=len(verts),
        num_edges=len(edge_cells), adjacency=sorted(adjacency), vertices=sorted(verts),
        cells=[c[0] for c in cells], patterns=[c[2] for c in cells])


def reference_count(net: nn.Module, domain) -> ReferenceResult:
    """Exact regions / pieces / vertices / edges of ``net`` on the box ``domain``
    (a list of (lo, hi) pairs; 1 or 2 of them)."""
    ops = read_ops(net)
    if len(domain) == 1:
        return count_1d(ops, *domain[0])
    if len(domain) == 2:
        return count_2d(ops, domain)
    raise ValueError("reference counter supports 1-D and 2-D domains only")
