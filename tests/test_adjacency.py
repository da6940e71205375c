"""Adjacency, pieces and region order of both engines on near-degenerate nets.

Adjacency and pieces are compared with an independent exact reference written here: it reads no
certifier code (only the captured program's exact maps and its rules' constraints) and decides
every pair by an exact LP. The nets are those float64 cannot resolve: hyperplanes concurrent up
to an ulp, axes tilted by ``2^-60``, weights over 70 binades, boxes of side ``2^-40``, in 1 to 5
dimensions and on all of R^2 and R^3 (``exactrelu.strategies.networks(near_degenerate=True)``).
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
from fractions import Fraction
from typing import Any

import cdd
import cdd.gmp as cdd_gmp
import pytest
import torch
from hypothesis import given, strategies as st
from torch import nn

import exactrelu
from exactrelu import _exact
from exactrelu.capture import capture
from exactrelu.engines.compiled import MAX_DIM
from exactrelu.strategies import networks
from exactrelu.verify import PARALLEL_THRESHOLD

from test_fastpath import comparable

Row = list[Fraction]  # [c, a_1, .., a_d]: the affine function c + a . x, > 0 inside a region


# --------------------------------------------------------------------------- the reference

def _sign(v: Fraction) -> int:
    return (v > 0) - (v < 0)


def region_rows(prog: Any, pattern: list[list[int]],
                d: int) -> tuple[list[Row], list[list[Fraction]]]:
    """The exact constraints ``g(x) > 0`` of the cell of ``pattern`` (before the domain's) and its
    exact output map, from the program's exact pass with the states given."""
    collect: list = []
    out, _ = prog.exact_run(_exact.identity_map(d, prog.input_shape),
                            [torch.tensor(s, dtype=torch.int64) for s in pattern], collect=collect)
    rows: list[Row] = []
    for j, sw in enumerate(collect):
        nd = prog.nodes[prog.piecewise[j]]
        funcs = [[_exact.to_fraction(v) for v in r] for r in sw.mat.tolist()]  # [a_1..a_d, c]
        cells = nd.rule.constraint_list(nd.module, tuple(pattern[j]), nd.in_shapes[0], nd.out_shape)
        for i, sg in cells:
            f = funcs[i]
            g = [sg * f[-1]] + [sg * v for v in f[:-1]]
            if all(v == 0 for v in g[1:]):
                # constant on all of R^d: zero (a unit that does not split) or of the right sign
                assert g[0] >= 0, "a certified pattern whose cell is empty"
                continue
            rows.append(g)
    output = [[_exact.to_fraction(v) for v in r] for r in out.mat.tolist()]
    return rows, output


def box_rows(box: list[tuple[Fraction, Fraction]] | None) -> list[Row]:
    """``x_i - lo_i > 0`` and ``hi_i - x_i > 0`` for every side of a box (None: all of R^d)."""
    if box is None:
        return []
    d = len(box)
    rows = []
    for i, (lo, hi) in enumerate(box):
        e = [Fraction(int(k == i)) for k in range(d)]
        rows.append([-Fraction(lo), *e])
        rows.append([Fraction(hi)] + [-v for v in e])
    return rows


def plane_key(g: Row) -> tuple[tuple[Fraction, ...], int]:
    """(the hyperplane ``g = 0`` scaled to a leading coefficient 1, the side ``g > 0`` is on)."""
    lead = next(v for v in g[1:] if v != 0)
    return tuple(v / lead for v in g), _sign(lead)


def positive_on(plane: tuple[Fraction, ...], rows: list[Row], d: int) -> bool:
    """Is some point of the hyperplane ``plane = 0`` strictly inside every row? The exact LP
    ``max s`` over ``(x, s)`` with ``plane(x) = 0``, ``g(x) >= s`` for every row and ``s <= 1``
    (cddlib's GMP LP, criss-cross rule; rows ``r . (1, x, s) >= 0``)."""
    lp_rows = [[*g, Fraction(-1)] for g in rows]
    lp_rows.append([*plane, Fraction(0)])
    lp_rows.append([-v for v in plane] + [Fraction(0)])
    lp_rows.append([Fraction(1)] + [Fraction(0)] * d + [Fraction(-1)])
    lp = cdd_gmp.linprog_from_array([*lp_rows, [Fraction(0)] * (d + 1) + [Fraction(1)]],
                                    cdd.LPObjType.MAX)
    cdd_gmp.linprog_solve(lp, cdd.LPSolverType.CRISS_CROSS)
    assert lp.status == cdd.LPStatusType.OPTIMAL, lp.status
    return Fraction(lp.obj_value) > 0


def reference(net: nn.Module, box: list[tuple[Fraction, Fraction]] | None,
              patterns: list[list[list[int]]]) -> tuple[set[frozenset], set[frozenset]]:
    """Exact adjacency (pairs of patterns) and pieces (sets of patterns) of the regions of
    ``patterns``. Two regions are adjacent iff some hyperplane carries a constraint of each with
    opposite sides and a point of it satisfies every other constraint of both strictly (their
    closures then share a (d-1)-dimensional piece of it, and only then). Pieces: the components
    of adjacent regions with equal exact output maps."""
    d = len(box) if box is not None else net.input_shape[0]
    prog = capture(net, net.input_shape)
    keys = [tuple(x for s in p for x in s) for p in patterns]
    rows, outputs, planes = [], [], []
    for p in patterns:
        r, out = region_rows(prog, p, d)
        r += box_rows(box)
        rows.append(r)
        outputs.append(out)
        planes.append({plane_key(g) for g in r})
    # a hyperplane that carries a facet of a region, by region
    facets: dict[tuple, list[tuple[int, int]]] = {}
    for k, r in enumerate(rows):
        for plane, side in planes[k]:
            others = [g for g in r if plane_key(g)[0] != plane]
            if positive_on(plane, others, d):
                facets.setdefault(plane, []).append((k, side))
    adjacent = set()
    for plane, items in facets.items():
        for a, sa in items:
            for b, sb in items:
                if a < b and sa != sb:
                    others = [g for g in rows[a] + rows[b] if plane_key(g)[0] != plane]
                    if positive_on(plane, others, d):
                        adjacent.add((a, b))
    parent = list(range(len(patterns)))

    def find(x: int) -> int:
        while parent[x] != x:
            x = parent[x]
        return x

    for a, b in adjacent:
        if outputs[a] == outputs[b]:
            parent[find(a)] = find(b)
    comps: dict[int, set] = {}
    for k in range(len(patterns)):
        comps.setdefault(find(k), set()).add(keys[k])
    return ({frozenset((keys[a], keys[b])) for a, b in adjacent},
            {frozenset(c) for c in comps.values()})


def certified(cert: exactrelu.Certificate) -> tuple[set[frozenset], set[frozenset]]:
    """A certificate's adjacency and pieces in the reference's terms."""
    keys = [tuple(x for s in r.pattern for x in s) for r in cert.regions]
    comps: dict[int, set] = {}
    for k, p in zip(keys, cert.pieces, strict=True):
        comps.setdefault(p, set()).add(k)
    return ({frozenset((keys[a.i], keys[a.j])) for a in cert.adjacency},
            {frozenset(c) for c in comps.values()})


def assert_exact(net: nn.Module,
                 box: list[tuple[Fraction, Fraction]] | None) -> list[exactrelu.Certificate]:
    """Both engines (the compiled one where it applies) certify the reference's adjacency and
    pieces; returns the certificates."""
    d = len(box) if box is not None else net.input_shape[0]
    domain = box if box is not None else exactrelu.RealSpace(d)
    engines = ["python"] + (["compiled"] if box is not None and 2 <= d <= MAX_DIM else [])
    certs = [exactrelu.verify(net, domain, progress=False, engine=e, workers=1) for e in engines]
    want = reference(net, box, [r.pattern for r in certs[0].regions])
    for cert in certs:
        assert {tuple(x for s in r.pattern for x in s) for r in cert.regions} == \
            {tuple(x for s in r.pattern for x in s) for r in certs[0].regions}
        adj, pieces = certified(cert)
        assert adj == want[0], (cert.stats["engine"], "adjacency", adj ^ want[0])
        assert pieces == want[1], (cert.stats["engine"], "pieces")
    return certs


# --------------------------------------------------------------------------- generated nets

ACTS = st.sampled_from(["relu", "leaky_relu", "hardtanh", "mixed"])


@st.composite
def near_degenerate_cases(draw: Any, dims: tuple[int, ...], bounded: bool = True) -> tuple:
    """(net, box or None): a near-degenerate MLP and a box around its planted point (side 2 or
    2^-40) or all of R^d."""
    d = draw(st.sampled_from(dims))
    depth, widths = ((1, 2), (1, 4)) if d <= 3 else ((1, 1), (2, 4))
    net = draw(networks(input_dim=d, depth=depth, widths=widths, activation=draw(ACTS),
                        near_degenerate=True))
    if not bounded:
        return net, None
    half = draw(st.sampled_from([Fraction(1), Fraction(1, 2**41)]))
    return net, [(Fraction(p) - half, Fraction(p) + half) for p in net.near_point]


@given(near_degenerate_cases((1, 2, 3, 4, 5, 6)))
def test_adjacency_and_pieces_are_exact_on_near_degenerate_boxes(case):
    assert_exact(*case)


@given(near_degenerate_cases((2, 3), bounded=False))
def test_adjacency_and_pieces_are_exact_on_near_degenerate_real_space(case):
    assert_exact(*case)


def test_reference_on_quadrants():
    """The reference on hand-checked facts: the quadrants of ``x = 0`` and ``y = 0`` in [-1, 1]^2
    meet their two neighbours along half-axes and the opposite quadrant in the origin only (4
    pairs, no diagonal); the output ``relu(x) + 2 relu(y)`` differs on all four (4 pieces),
    ``relu(y)`` only above and below (2 pieces)."""
    box = [(Fraction(-1), Fraction(1))] * 2
    pats = [[[a, b]] for a in (1, 0) for b in (1, 0)]
    pairs = {frozenset({(1, 1), (1, 0)}), frozenset({(1, 1), (0, 1)}),
             frozenset({(1, 0), (0, 0)}), frozenset({(0, 1), (0, 0)})}
    for out, pieces in (([1.0, 2.0], 4), ([0.0, 1.0], 2)):
        net = lifted([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0], out, 2)
        adj, got = reference(net, box, pats)
        assert adj == pairs and len(got) == pieces
        if pieces == 2:
            assert got == {frozenset({(1, 1), (0, 1)}), frozenset({(1, 0), (0, 0)})}


# --------------------------------------------------------------------------- issue 16's reproducers

def lifted(W: list[list[float]], b: list[float], out: list[float], d: int) -> nn.Sequential:
    """``out . relu(W x + b)`` on d inputs: the 2-D weights padded with zero columns."""
    W = [list(r) + [0.0] * (d - len(r)) for r in W]
    net = nn.Sequential(nn.Linear(d, len(W)), nn.ReLU(), nn.Linear(len(W), 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W, dtype=torch.float64))
        net[0].bias.copy_(torch.tensor(b, dtype=torch.float64))
        net[2].weight.copy_(torch.tensor([out], dtype=torch.float64))
        net[2].bias.zero_()
    net.input_shape = (d,)
    return net


DOMAINS = [2, 3, 4, 5, "R2", "R3"]


def _domain(where: Any, lo: int, hi: int) -> tuple[int, list | None]:
    if isinstance(where, str):
        return int(where[1:]), None
    return where, [(Fraction(lo), Fraction(hi))] * where


def _counts(net: nn.Module, box: list | None) -> list[tuple[int, int, int]]:
    """(regions, adjacent pairs, pieces) of each engine's certificate (checked by the reference)."""
    return [(c.num_regions, len(c.adjacency), c.num_pieces) for c in assert_exact(net, box)]


@pytest.mark.parametrize("where", DOMAINS)
def test_a_nearly_vertical_line_through_a_corner(where):
    """Lines ``x + 2^-60 y = 0.3`` and ``y = 0.5`` on [-1, 1]^2 (lifted: hyperplanes of the first
    two coordinates, every region a prism over the 2-D one; R^d the same). They cross at
    (0.3 - 2^-61, 0.5) inside: 4 regions, the quadrants; each meets its two neighbours along
    half a line (4 pairs) and the opposite one in the crossing only (not adjacent). The output
    ``relu(y - 0.5)`` has one map above y = 0.5 and one below, and each half is two adjacent
    quadrants: 2 pieces. (The first line's two vertices on y = 0.5 and y = 1 differ in x by
    2^-61, below the float spacing at 0.3.)"""
    d, box = _domain(where, -1, 1)
    net = lifted([[1.0, 2.0**-60], [0.0, 1.0]], [-0.3, -0.5], [0.0, 1.0], d)
    assert set(_counts(net, box)) == {(4, 4, 2)}


@pytest.mark.parametrize("where", DOMAINS)
def test_a_triangle_below_the_float_spacing(where):
    """Lines ``x = fl(1/3)``, ``y = fl(0.7)`` and ``x + y = s``, ``s = fl(fl(1/3) + fl(0.7))``, on
    [0, 1]^2 (lifted, or R^d). The sum is rounded, so the third line misses the crossing of the
    first two: three lines in general position, all three crossings inside the box (about
    (1/3, 0.7)), a triangle about 1e-17 wide. Regions: 1 + 1 + 2 + 3 = 7 (each line adds one
    more than it has crossings with the lines before); each line is cut into 3 segments by the
    other two, 9 adjacent pairs. The output ``relu(x - 1/3) + relu(y - 0.7)`` has one map per
    quadrant of the first two lines; the third line splits two quadrants into two adjacent
    regions each (one of them into the triangle and the rest), so 4 pieces."""
    third, first, second = 1 / 3 + 0.7, 1 / 3, 0.7
    assert Fraction(third) != Fraction(first) + Fraction(second)  # not concurrent
    d, box = _domain(where, 0, 1)
    net = lifted([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [-first, -second, -third], [1.0, 1.0, 0.0],
                 d)
    assert set(_counts(net, box)) == {(7, 9, 4)}


# --------------------------------------------------------------------------- canonical order

def mlp(widths: tuple[int, ...], seed: int) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(widths):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(widths[-1], 2))
    return nn.Sequential(*layers).eval()


def test_every_executor_and_engine_numbers_regions_alike():
    """A net above the process pool's threshold: the pool, a thread pool, the in-process run and
    the compiled engine on one and two threads give the same certificate entry by entry (regions
    in the same order, vertex numbering, adjacency, pieces, statistics)."""
    net = mlp((2, 32, 32, 32), 0)
    box = [(-1, 1)] * 2
    serial = exactrelu.verify(net, box, engine="python", workers=1, progress=False)
    assert serial.stats["float_regions"] >= PARALLEL_THRESHOLD
    want = comparable(serial)
    pool = exactrelu.verify(net, box, engine="python", workers=2, progress=False)
    with cf.ThreadPoolExecutor(2) as ex:
        threads = exactrelu.verify(net, box, executor=ex, progress=False)
    assert threads.stats["engine"] == "python"
    runs = [pool, threads] + [exactrelu.verify(net, box, engine="compiled", workers=w,
                                               progress=False) for w in (1, 2)]
    for got in runs:
        assert comparable(got) == want


def test_executors_number_regions_alike_on_real_space():
    # the Python engine on R^2 takes its other exact path (cddlib per cell, closure under facet
    # crossing); the compiled engine's witnesses there are its own (tests/test_engines.py)
    net = mlp((2, 5, 4), 7)
    serial = exactrelu.verify(net, None, progress=False, workers=1, engine="python")
    with cf.ThreadPoolExecutor(2) as ex:
        threads = exactrelu.verify(net, None, executor=ex, progress=False, workers=2)
    assert comparable(threads) == comparable(serial)


@pytest.mark.parametrize("domain", [[(-1, 1)] * 2, None, [(-1, 1)] * 4], ids=["box", "R2", "box4"])
def test_regions_come_in_the_canonical_order(domain):
    """Depth first through the layers, siblings by their ReLU signs with "on" first: for ReLU
    nets, the flat patterns in decreasing lexicographic order (the states of the first layer,
    then of the second)."""
    net = mlp((2 if domain is None else len(domain), 4, 3), 11)
    for engine in ("python", "auto"):
        cert = exactrelu.verify(net, domain, progress=False, engine=engine)
        flat = [tuple(x for s in r.pattern for x in s) for r in cert.regions]
        assert len(flat) > 4 and flat == sorted(flat, reverse=True)
        # vertices numbered by first appearance, pieces by their first region
        seen: list[int] = []
        for r in cert.regions:
            seen += [v for v in r.vertices if v not in seen]
        assert seen == list(range(len(cert.vertices)))
        firsts = [cert.pieces.index(p) for p in range(cert.num_pieces)]
        assert firsts == sorted(firsts)
