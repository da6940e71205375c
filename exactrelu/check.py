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
  (Dimensions >= 4: completeness rests on the certifier's closure check and is not re-derived.)
- adjacency: both regions have a facet on the stated hyperplane, on opposite sides; the pieces
  agree with the adjacency and the exact output maps; the counts agree with the lists.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any, Sequence

import flint
import torch
from torch import nn

from ._exact import input_map, to_fraction
from ._geometry import polygon_area, polytope_volume
from .capture import Program, capture
from .certificate import Certificate, canonical_hyperplane
from .errors import CertificateError

__all__ = ["check"]


def _fail(msg: str) -> None:
    raise CertificateError(msg)


def _rank(rows: list[Sequence[Fraction]]) -> int:
    if not rows:
        return 0
    d = len(rows[0])
    m = flint.fmpq_mat(len(rows), d, [flint.fmpq(v.numerator, v.denominator) for r in rows for v in r])
    return m.rank()


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
        for p, nd in zip(r.pattern, nodes):
            n_out = 1
            for s in nd.out_shape:
                n_out *= s
            if len(p) != n_out:
                _fail(f"{where}: pattern of {nd.name} has {len(p)} states, expected {n_out}")
            states.append(torch.tensor(p, dtype=torch.int64).reshape(nd.out_shape))
        collect: list = []
        out, _ = prog.exact_run(m0, states, collect=collect)
        # constraints: domain rows, then the cell constraints of every op (rows a.t <= b, ids)
        cons: dict[int, tuple[tuple[Fraction, ...], Fraction]] = {}
        for i, (a, b) in enumerate(zip(A_dom, b_dom)):
            cons[i] = (tuple(a), b)
        strict_ids: list[int] = []
        w = r.witness
        if len(w) != d:
            _fail(f"{where}: witness has {len(w)} coordinates, the domain {d}")
        for j, (nd, st, sw) in enumerate(zip(nodes, states, collect)):
            rows = sw.mat.tolist()
            vals = []
            signs = []
            for row in rows:
                a = [to_fraction(v) for v in row[:-1]]
                c0 = to_fraction(row[-1])
                v = sum((ai * wi for ai, wi in zip(a, w)), Fraction(0)) + c0
                vals.append((a, c0, v))
                signs.append((v > 0) - (v < 0))
            at_w = nd.rule.state_from_signs(nd.module, torch.tensor([signs], dtype=torch.int64), nd.in_shapes[0])[0]
            if not torch.equal(at_w.reshape(-1), st.reshape(-1)):
                _fail(f"{where}: the state of {nd.name} at the witness is not the region's pattern")
            idx, sgn = nd.rule.cell_constraints(nd.module, st, nd.in_shapes[0])
            for i, sg in zip(idx.tolist(), sgn.tolist()):
                a, c0, v = vals[i]
                if all(x == 0 for x in a) and c0 == 0:
                    continue  # identically zero: does not split (its tie state was checked above)
                if not sg * v > 0:
                    _fail(f"{where}: witness not strictly inside constraint {offsets[j] + i} of {nd.name}")
                cons[offsets[j] + i] = (tuple(-sg * x for x in a), sg * c0)
                strict_ids.append(offsets[j] + i)
        for i in range(len(A_dom)):
            a, b = cons[i]
            if not sum((ai * wi for ai, wi in zip(a, w)), Fraction(0)) < b:
                _fail(f"{where}: witness outside the domain (row {i})")
        exact_out = [[to_fraction(v) for v in row] for row in out.mat.tolist()]
        if exact_out != r.output:
            _fail(f"{where}: output map differs from the exact output map of its pattern")
        # vertices
        pts = []
        for k in r.vertices:
            if not 0 <= k < len(cert.vertices):
                _fail(f"{where}: vertex index {k} out of range")
            v = cert.vertices[k]
            tight = []
            for cid, (a, b) in cons.items():
                s = sum((ai * vi for ai, vi in zip(a, v)), Fraction(0))
                if s > b:
                    _fail(f"{where}: vertex {k} violates constraint {cid}")
                if s == b:
                    tight.append(a)
            if _rank(tight) != d:
                _fail(f"{where}: vertex {k} is not a vertex (tight constraints have rank {_rank(tight)} < {d})")
            pts.append(v)
        for f in r.facets:
            if not any(cid in cons and cons[cid] == (f.a, f.b) for cid in f.ids):
                _fail(f"{where}: facet {f.ids} is not one of its constraints")
            for k in f.vertices:
                if sum((ai * vi for ai, vi in zip(f.a, cert.vertices[k])), Fraction(0)) != f.b:
                    _fail(f"{where}: vertex {k} is not on facet {f.ids}")
        if dom.is_bounded and d <= 3:
            if d == 1:
                vol = max(p[0] for p in pts) - min(p[0] for p in pts) if pts else Fraction(0)
            elif d == 2:
                vol = polygon_area(pts) if len(pts) >= 3 else Fraction(0)
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
    for a in cert.adjacency:
        if not (0 <= a.i < a.j < cert.num_regions):
            _fail(f"adjacency ({a.i}, {a.j}): bad region indices")
        key = (a.a, a.b)
        sides = []
        for ri in (a.i, a.j):
            s = [canonical_hyperplane(f.a, f.b)[1] for f in cert.regions[ri].facets
                 if canonical_hyperplane(f.a, f.b)[0] == key]
            if not s:
                _fail(f"adjacency ({a.i}, {a.j}): region {ri} has no facet on the stated hyperplane")
            sides.append(set(s))
        if not any(-s in sides[1] for s in sides[0]):
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
