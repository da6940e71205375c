"""exactrelu.analysis: region_of, segment walks, the dual graph, local complexity, statistics.

Answers are checked against constructions whose regions are known by hand, against certificates
(an independent code path: region_of and walks on a network never read one), against networkx,
and against exact recomputation (closure membership, polygon areas)."""

from __future__ import annotations

import doctest
import importlib
import itertools
import math
import sys
from fractions import Fraction as F

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import Box, MissingDependencyError, RealSpace, Slice, verify
from exactrelu._exact import constant_map
from exactrelu._geometry import polygon_area
from exactrelu.analysis import (
    ConstraintRef,
    decode_constraint,
    dual_graph,
    local_complexity,
    region_of,
    region_statistics,
    segment_regions,
    shortest_path,
    sqrt_float,
    summarize,
)
from exactrelu.capture import capture
from exactrelu.certificate import canonical_hyperplane
from exactrelu.errors import ExactReluError, InvalidInputError
from exactrelu.strategies import boxes, domains, networks, rational_points


# ------------------------------------------------------------------------------ helpers
def relu_net(W: list[list[float]], b: list[float]) -> nn.Sequential:
    """``Linear(d, n)-ReLU-Linear(n, 1)`` with the given first layer (hyperplanes ``W x + b = 0``)
    and output weights 1, 2, 3, ... (so no two regions share a map by accident)."""
    net = nn.Sequential(nn.Linear(len(W[0]), len(W)), nn.ReLU(), nn.Linear(len(W), 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor(W, dtype=torch.float64))
        net[0].bias.copy_(torch.tensor(b, dtype=torch.float64))
        net[2].weight.copy_(torch.arange(1, len(W) + 1, dtype=torch.float64)[None])
        net[2].bias.zero_()
    return net


def flat(pattern: list[list[int]]) -> tuple[int, ...]:
    return tuple(s for op in pattern for s in op)


def in_closure(region: exactrelu.certificate.Region, x: tuple) -> bool:
    return all(sum(a * v for a, v in zip(f.a, x, strict=True)) <= f.b for f in region.facets)


def closure_patterns(cert: exactrelu.Certificate, x: tuple) -> list[tuple[int, ...]]:
    """Patterns of the certificate's regions whose closures contain ``x`` (exact)."""
    return sorted(flat(r.pattern) for r in cert.regions if in_closure(r, x))


def facet_key(f: exactrelu.certificate.RegionFacet) -> tuple:
    return canonical_hyperplane(f.a, f.b), tuple(f.ids)


def assert_same_region(cert: exactrelu.Certificate, at: exactrelu.analysis.PointRegions,
                       r: exactrelu.certificate.Region) -> None:
    """The region ``r`` of ``at`` equals the certificate's region of the same pattern."""
    c = next(c for c in cert.regions if flat(c.pattern) == flat(r.pattern))
    assert sorted(map(facet_key, c.facets)) == sorted(map(facet_key, r.facets))
    assert sorted(cert.vertices[k] for k in c.vertices) == \
        sorted(at.vertices[k] for k in r.vertices)
    assert c.output == r.output
    assert c.volume is None or c.volume == r.volume
    assert all(sum(a * v for a, v in zip(f.a, r.witness, strict=True)) < f.b for f in r.facets)


def walk_shape(walk: exactrelu.analysis.SegmentWalk) -> tuple[list, list]:
    """Pieces and crossings with regions named by pattern (the two walks number them apart)."""
    name = [flat(r.pattern) for r in walk.regions]
    return ([(p.start, p.end, sorted(name[k] for k in p.regions)) for p in walk.pieces],
            [(c.t, sorted(name[k] for k in c.regions)) for c in walk.crossings])


CROSS = relu_net([[1.0, 0.0], [0.0, 1.0]], [0.0, 0.0])  # the axes: four quadrants


# ------------------------------------------------------------------------------ region_of
@given(st.data())
def test_region_of_equals_the_certificates_region_at_points_facets_and_vertices(data) -> None:
    d = data.draw(st.sampled_from([1, 2, 2, 3]))
    net = data.draw(networks(input_dim=d, widths=(1, 4), activation=data.draw(
        st.sampled_from(["relu", "mixed"])), kind=data.draw(st.sampled_from(["mlp", "residual"])),
        degenerate=data.draw(st.booleans())))
    dom = data.draw(domains(d))
    cert = verify(net, dom, progress=False)
    points = [data.draw(rational_points(dom))]
    # a point of the relative interior of a shared face, and a vertex of the complex
    if cert.adjacency and d == 2:
        adj = data.draw(st.sampled_from(cert.adjacency))
        points.append(_shared_point(cert, adj))
    if cert.vertices:
        points.append(data.draw(st.sampled_from(cert.vertices)))
    for x in points:
        at = region_of(net, x, domain=dom)
        assert sorted(at.patterns()) == closure_patterns(cert, x)
        for r in at.regions:
            assert_same_region(cert, at, r)
        assert at.inside == (len(at.regions) == 1 and all(
            sum(a * v for a, v in zip(f.a, x, strict=True)) < f.b
            for f in at.regions[0].facets if max(f.ids) >= cert.constraint_offsets[0]))
    if cert.vertices:  # every region having the vertex as one of its own is listed
        v = points[-1]
        k = cert.vertices.index(v)
        owners = {flat(r.pattern) for r in cert.regions if k in r.vertices}
        assert owners <= set(region_of(net, v, domain=dom).patterns())


def _shared_point(cert: exactrelu.Certificate, adj: exactrelu.certificate.Adjacency) -> tuple:
    """2-D: the midpoint of the overlap of the two collinear sides on ``adj``'s line."""
    key = canonical_hyperplane(adj.a, adj.b)[0]
    c = 0 if adj.a[1] != 0 else 1
    spans = []
    for i in (adj.i, adj.j):
        f = next(f for f in cert.regions[i].facets if canonical_hyperplane(f.a, f.b)[0] == key)
        ts = [cert.vertices[k][c] for k in f.vertices]
        spans.append((min(ts), max(ts)))
    lo, hi = max(s[0] for s in spans), min(s[1] for s in spans)
    assert lo < hi
    t = (lo + hi) / 2
    a, b = key
    other = (b - a[c] * t) / a[1 - c]
    return (t, other) if c == 0 else (other, t)


@settings(max_examples=10)
@given(networks(input_dim=2, depth=(1, 2), widths=(1, 3)), st.data())
def test_region_of_on_all_of_rd_matches_the_unbounded_certificate(net, data) -> None:
    cert = verify(net, None, input_shape=(2,), progress=False)
    x = data.draw(rational_points(Box([(-3, 3), (-3, 3)])))
    at = region_of(net, x)
    assert sorted(at.patterns()) == closure_patterns(cert, x)
    for r in at.regions:
        c = next(c for c in cert.regions if flat(c.pattern) == flat(r.pattern))
        assert sorted(map(facet_key, c.facets)) == sorted(map(facet_key, r.facets))
        assert len(c.lines) == len(r.lines)  # a basis of the lineality space is not unique
        if not r.lines:  # extreme rays are, up to positive scaling
            assert sorted(map(_direction, c.rays)) == sorted(map(_direction, r.rays))
            assert sorted(cert.vertices[k] for k in c.vertices) == \
                sorted(at.vertices[k] for k in r.vertices)
        assert c.output == r.output


def _direction(v: tuple) -> tuple:
    scale = max(abs(x) for x in v)
    return tuple(x / scale for x in v)


def test_region_of_at_the_crossing_of_two_lines_lists_all_four_quadrants() -> None:
    at = region_of(CROSS, [0, 0])
    assert sorted(at.patterns()) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert not at.inside and at.vertices == [(0, 0)]
    assert all(r.rays and r.volume is None and r.vertices == [0] for r in at.regions)
    on_axis = region_of(CROSS, ["1/3", 0])
    assert sorted(on_axis.patterns()) == [(1, 0), (1, 1)]
    with pytest.raises(InvalidInputError, match="boundary of 2"):
        _ = on_axis.region
    inside = region_of(CROSS, [0.5, -0.25])
    assert inside.inside and flat(inside.region.pattern) == (1, 0)
    assert inside.region.output == [[F(1), F(0), F(0)]]  # 1 * relu(x) + 2 * relu(y), y < 0


def test_region_of_stops_at_max_regions() -> None:
    star = relu_net([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]], [0.0] * 4)
    assert len(region_of(star, [0, 0]).regions) == 8  # four lines through the origin
    with pytest.raises(exactrelu.RegionLimitError, match="max_regions=5"):
        region_of(star, [0, 0], max_regions=5)
    with pytest.raises(InvalidInputError, match="max_regions"):
        region_of(star, [0, 0], max_regions=0)


@settings(max_examples=15)
@given(st.data())
def test_region_of_without_vertices_has_the_same_facets(data) -> None:
    """Facets proved from float LPs (or exact LPs) equal cddlib's, degenerate nets included."""
    d = data.draw(st.sampled_from([2, 3, 4]))
    net = data.draw(networks(input_dim=d, widths=(1, 5), degenerate=data.draw(st.booleans())))
    dom = data.draw(domains(d))
    x = data.draw(rational_points(dom))
    full = region_of(net, x, domain=dom)
    lean = region_of(net, x, domain=dom, vertices=False)
    assert not lean.vertices_listed and lean.vertices == []
    assert lean.patterns() == full.patterns()
    for a, b in zip(full.regions, lean.regions, strict=True):
        assert sorted(map(facet_key, a.facets)) == sorted(map(facet_key, b.facets))
        assert a.output == b.output
        assert all(sum(u * v for u, v in zip(f.a, b.witness, strict=True)) < f.b for f in b.facets)


def test_region_of_in_32_dimensions_proves_float_proposals_exactly() -> None:
    from exactrelu.analysis._maps import ExactNet, facets_by_lp
    from exactrelu.verify import _program_and_domain

    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(32, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(),
                        nn.Linear(12, 10))
    x = torch.rand(32)
    at = region_of(net, x)  # all of R^32: no vertices listed above 6 dimensions
    assert at.inside and not at.vertices_listed
    ex = ExactNet(*_program_and_domain(net, RealSpace(32), None))
    A, b, ids = ex.halfspaces(tuple(tuple(s) for s in at.region.pattern))
    exact = facets_by_lp(A, b, ids)  # one exact cddlib LP per row
    assert sorted((f.a, f.b, f.ids) for f in at.region.facets) == sorted(exact)
    assert 0 < len(exact) < len(A)


def test_region_of_takes_a_slice_and_rejects_points_outside() -> None:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
    sl = Slice.plane(torch.zeros(4), torch.eye(4)[0], torch.eye(4)[1], bounds=[(-1, 1), (-1, 1)])
    cert = verify(net, sl, progress=False)
    at = region_of(net, [F(1, 5), F(-2, 5)], domain=sl)
    assert sorted(at.patterns()) == closure_patterns(cert, (F(1, 5), F(-2, 5)))
    with pytest.raises(InvalidInputError, match="outside"):
        region_of(net, [2, 0], domain=sl)
    with pytest.raises(InvalidInputError, match="coordinates"):
        region_of(net, [0, 0, 0], domain=sl)


# ------------------------------------------------------------------------------ segments
@pytest.mark.parametrize("n", [1, 3, 7])  # n + 1 a power of 2: dyadic cuts
def test_a_segment_across_n_parallel_lines_crosses_n_plus_one_regions(n: int) -> None:
    cuts = [F(k, n + 1) * 2 - 1 for k in range(1, n + 1)]  # x = c_k inside (-1, 1)
    net = relu_net([[1.0, 0.0]] * n, [float(-c) for c in cuts])
    cert = verify(net, [(-1, 1), (-1, 1)], progress=False)
    p, q = (F(-1), F(1, 3)), (F(1), F(-1, 5))
    for walk in (segment_regions(cert, p, q), segment_regions(net, p, q)):
        assert len(walk.pieces) == walk.num_regions == n + 1
        assert walk.parameters == [(c + 1) / 2 for c in cuts]  # x(t) = -1 + 2t
        assert all(len(c.regions) == 2 for c in walk.crossings)
        seq = [flat(walk.regions[k].pattern) for k in walk.sequence()]
        assert seq == [tuple(int(k < m) for k in range(n)) for m in range(n + 1)]
    assert walk_shape(segment_regions(cert, p, q)) == walk_shape(segment_regions(net, p, q))


def test_a_segment_through_a_crossing_touches_the_other_two_quadrants() -> None:
    walk = segment_regions(CROSS, [-1, -1], [1, 2])  # the line y = (3x + 1) / 2 misses 0
    assert walk.num_regions == 3
    walk = segment_regions(CROSS, [-1, -1], [1, 1])
    assert walk.parameters == [F(1, 2)] and walk.crossings[0].point == (0, 0)
    pieces, crossings = walk_shape(walk)
    assert [p[2] for p in pieces] == [[(0, 0)], [(1, 1)]]
    assert crossings[0][1] == [(0, 0), (0, 1), (1, 0), (1, 1)]


def test_a_segment_along_a_line_lists_both_sides() -> None:
    cert = verify(CROSS, [(-1, 1), (-1, 1)], progress=False)
    for walk in (segment_regions(CROSS, [-1, 0], [1, 0]),
                 segment_regions(cert, [-1, 0], [1, 0])):
        pieces, crossings = walk_shape(walk)
        assert pieces == [(0, F(1, 2), [(0, 0), (0, 1)]), (F(1, 2), 1, [(1, 0), (1, 1)])]
        assert crossings == [(F(1, 2), [(0, 0), (0, 1), (1, 0), (1, 1)])]
        with pytest.raises(InvalidInputError, match=r"read \.pieces"):
            walk.sequence()


@given(st.data())
def test_segment_walks_on_the_network_and_on_the_certificate_agree(data) -> None:
    d = data.draw(st.sampled_from([1, 2, 3]))
    net = data.draw(networks(input_dim=d, widths=(1, 4), activation="mixed",
                             degenerate=data.draw(st.booleans())))
    dom = data.draw(domains(d))
    cert = verify(net, dom, progress=False)
    ends = st.one_of(rational_points(dom), st.sampled_from(cert.vertices))
    p, q = data.draw(ends), data.draw(ends)
    if p == q:
        return
    walk = segment_regions(cert, p, q)
    assert walk_shape(walk) == walk_shape(segment_regions(net, p, q, domain=dom))
    assert walk.pieces[0].start == 0 and walk.pieces[-1].end == 1
    assert all(a.end == b.start for a, b in itertools.pairwise(walk.pieces))
    for piece in walk.pieces:  # the midpoint of a piece lies in the closure of exactly these
        mid = tuple(x + (piece.start + piece.end) / 2 * (y - x) for x, y in zip(p, q, strict=True))
        assert [flat(cert.regions[k].pattern) for k in piece.regions] == \
            [flat(r.pattern) for r in cert.regions if in_closure(r, mid)]


# ------------------------------------------------------------------------------ dual graph
def grid_net(nx: int, ny: int) -> tuple[nn.Sequential, list[tuple[int, int]]]:
    """Lines x = 1..nx and y = 1..ny on [0, nx + 1] x [0, ny + 1]: a grid of unit squares."""
    W = [[1.0, 0.0]] * nx + [[0.0, 1.0]] * ny
    b = [-float(k) for k in range(1, nx + 1)] + [-float(k) for k in range(1, ny + 1)]
    return relu_net(W, b), [(0, nx + 1), (0, ny + 1)]


def test_dual_graph_has_the_certificates_regions_and_adjacency() -> None:
    cert = verify(*grid_net(2, 3), progress=False)
    g = dual_graph(cert)
    assert sorted(g.nodes) == list(range(cert.num_regions)) == list(range(12))
    assert sorted(g.edges) == sorted((a.i, a.j) for a in cert.adjacency)
    assert g.number_of_edges() == 2 * 4 + 3 * 3  # 3 x 4 cells: 17 shared sides
    for r in cert.regions:
        node = g.nodes[r.index]
        assert node["pattern"] == r.pattern and node["output"] == r.output
        assert node["witness"] == r.witness and node["volume"] == r.volume == 1
    for a in cert.adjacency:
        e = g.edges[a.i, a.j]
        assert (e["a"], e["b"], e["ids"]) == (a.a, a.b, a.ids)
        assert e["sources"] == [decode_constraint(cert, c) for c in a.ids]
        (src,) = e["sources"]  # one unit per shared side: the one whose state differs
        diff = [k for k, (u, v) in enumerate(zip(flat(cert.regions[a.i].pattern),
                                                 flat(cert.regions[a.j].pattern), strict=True))
                if u != v]
        assert src == ConstraintRef(0, diff[0]) and len(diff) == 1


def test_shortest_paths_in_a_grid_are_manhattan_distances() -> None:
    import networkx as nx

    cert = verify(*grid_net(3, 2), progress=False)
    g = dual_graph(cert)
    cell = {flat(r.pattern): r.index for r in cert.regions}
    corner = cell[(0, 0, 0, 0, 0)]
    far = cell[(1, 1, 1, 1, 1)]
    path = shortest_path(cert, corner, far)
    assert len(path) - 1 == 3 + 2 == nx.shortest_path_length(g, corner, far)
    assert all(g.has_edge(u, v) for u, v in itertools.pairwise(path))
    for i in range(cert.num_regions):
        for j in range(cert.num_regions):
            assert len(shortest_path(cert, i, j)) - 1 == nx.shortest_path_length(g, i, j)


def test_hamming_weights_count_every_unit_on_a_doubled_line() -> None:
    net = relu_net([[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]], [0.5, 0.5, -0.5])  # x = -1/2 twice
    cert = verify(net, [(-1, 1), (-1, 1)], progress=False)
    left = next(r.index for r in cert.regions if flat(r.pattern) == (0, 0, 0))
    right = next(r.index for r in cert.regions if flat(r.pattern) == (1, 1, 1))
    assert len(shortest_path(cert, left, right)) == 3
    path = shortest_path(cert, left, right, weight="hamming")
    pats = [flat(cert.regions[k].pattern) for k in path]
    assert sum(sum(a != b for a, b in zip(u, v, strict=True))
               for u, v in itertools.pairwise(pats)) == 3
    g = dual_graph(cert)
    doubled = g.edges[left, path[1]]
    assert sorted(doubled["sources"]) == [ConstraintRef(0, 0), ConstraintRef(0, 1)]


def test_dual_graph_without_networkx_names_the_extra(monkeypatch) -> None:
    cert = verify(CROSS, [(-1, 1), (-1, 1)], progress=False)
    monkeypatch.setitem(sys.modules, "networkx", None)
    with pytest.raises(MissingDependencyError, match=r"exactrelu\[graph\]") as info:
        dual_graph(cert)
    assert isinstance(info.value, ImportError) and isinstance(info.value, ExactReluError)
    assert len(shortest_path(cert, 0, 3)) - 1 == (
        2 if sum(map(abs, (a - b for a, b in zip(flat(cert.regions[0].pattern),
                                                 flat(cert.regions[3].pattern),
                                                 strict=True)))) == 2 else 1)


# ------------------------------------------------------------------------------ local complexity
def area_in_box(cert: exactrelu.Certificate, r: exactrelu.certificate.Region, bx: Box) -> F:
    """Exact area of a 2-D region inside a box, without an LP: the hull of the region's vertices
    inside the box, the box's corners inside the region and the crossings of their sides (the
    vertices of the intersection of two convex polygons are among these, all on its boundary)."""
    verts = [cert.vertices[k] for k in r.vertices]
    pts = [v for v in verts if bx.contains(v)]
    pts += [c for c in bx.vertices() if in_closure(r, c)]
    sides = [(cert.vertices[f.vertices[0]], cert.vertices[f.vertices[1]]) for f in r.facets]
    for (x0, y0), (x1, y1) in sides:
        for c, val in [(0, lo) for lo in (bx.lower[0], bx.upper[0])] + \
                      [(1, lo) for lo in (bx.lower[1], bx.upper[1])]:
            a, b = (x0, x1) if c == 0 else (y0, y1)
            if a != b and min(a, b) <= val <= max(a, b):
                t = (val - a) / (b - a)
                p = (x0 + t * (x1 - x0), y0 + t * (y1 - y0))
                if bx.contains(p):
                    pts.append(p)
    return polygon_area(list(dict.fromkeys(pts))) if len(pts) >= 3 else F(0)


def exact_pattern(prog: exactrelu.Program, x: tuple) -> tuple[int, ...] | None:
    """The pattern at ``x`` from an exact forward pass; None when a switching function is 0."""
    sw: list = []
    _, states = prog.exact_run(constant_map(x, prog.input_shape), collect=sw)
    if any(v == 0 for m in sw for v in m.values()):
        return None
    return tuple(s for st in states for s in st.reshape(-1).tolist())


@settings(max_examples=10)
@given(networks(input_dim=2, depth=(1, 2), widths=(2, 6)), st.data())
def test_local_complexity_equals_the_union_certificate_restricted_to_each_box(net, data) -> None:
    big = data.draw(boxes(2, min_side=2, max_side=2, max_offset=0))
    pts = data.draw(st.lists(rational_points(big), min_size=1, max_size=4))
    radius = data.draw(st.sampled_from([F(1, 8), F(1, 4), F(1, 2)]))
    each = local_complexity(net, pts, radius=radius, strategy="each", keep=True)
    union = local_complexity(net, pts, radius=radius, strategy="union", keep=True)
    auto = local_complexity(net, pts, radius=radius)
    assert each.counts == union.counts == auto.counts
    assert each.counts == [c.num_regions for c in each.certificates]
    assert each.volumes == [(2 * radius) ** 2] * len(pts)
    assert each.densities == [F(c) / (2 * radius) ** 2 for c in each.counts]
    # independently: the regions of one certificate of a box holding all of them that meet each
    # neighbourhood in positive area, by exact clipping (no LP)
    cover = verify(net, Box([(-3, 3), (-3, 3)]), progress=False)
    prog = capture(net, (2,))
    for _x, bx, count in zip(pts, each.neighbourhoods, each.counts, strict=True):
        assert count == sum(area_in_box(cover, r, bx) > 0 for r in cover.regions)
        # grid sampling is a lower bound: distinct exact patterns at points inside the box
        grid = [(bx.lower[0] + (2 * i + 1) * radius / 5, bx.lower[1] + (2 * j + 1) * radius / 5)
                for i in range(5) for j in range(5)]
        seen = {exact_pattern(prog, g) for g in grid} - {None}
        assert len(seen) <= count


def test_local_complexity_on_slices_equals_the_same_boxes() -> None:
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))
    pts = torch.tensor([[0.1, -0.2], [0.5, 0.5], [-0.7, 0.3]])
    boxes_ = local_complexity(net, pts, radius="1/4", strategy="each")
    slices = local_complexity(net, pts, radius="1/4", slice=torch.eye(2))
    assert slices.strategy == "each" and slices.counts == boxes_.counts
    assert all(isinstance(h, Slice) for h in slices.neighbourhoods)
    shifted = local_complexity(net, pts, box=[(0, "1/2"), ("-1/4", "1/4")])
    assert shifted.counts == [verify(net, [(x + 0, x + F(1, 2)), (y - F(1, 4), y + F(1, 4))],
                                     progress=False).num_regions
                              for x, y in (map(F, p.tolist()) for p in pts)]


def test_local_complexity_of_the_quadrants() -> None:
    lc = local_complexity(CROSS, [[0, 0], [F(1, 2), 0], [2, 2]], radius=F(1, 4))
    assert lc.counts == [4, 2, 1] and lc.densities == [16, 8, 4]


@pytest.mark.parametrize("kwargs, match", [
    ({}, "exactly one of radius"),
    ({"radius": 1, "box": [(0, 1), (0, 1)]}, "exactly one of radius"),
    ({"radius": 0}, "positive"),
    ({"radius": 1, "strategy": "fast"}, "strategy"),
    ({"radius": 1, "slice": [[1, 0], [0, 1]], "strategy": "union"}, "box neighbourhoods"),
    ({"box": [(0, 1)]}, "1 \\(lo, hi\\) pairs"),
])
def test_local_complexity_rejects_bad_neighbourhoods(kwargs: dict, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        local_complexity(CROSS, [[0, 0]], **kwargs)


# ------------------------------------------------------------------------------ statistics
def test_statistics_of_unit_squares_and_right_triangles() -> None:
    squares = verify(relu_net([[1.0, 0.0], [0.0, 1.0]], [-1.0, -1.0]), [(0, 2), (0, 2)],
                     progress=False)
    s = region_statistics(squares)
    assert s.volume == [1] * 4 and s.num_vertices == [4] * 4 and s.num_facets == [4] * 4
    assert s.diameter_sq == [2] * 4 and s.diameter == [math.sqrt(2)] * 4
    assert s.inradius_inf == s.inradius_lo == s.inradius_hi == [F(1, 2)] * 4
    assert s.eccentricity_sq == [2] * 4  # SplineCam: longest / shortest vertex distance
    triangles = verify(relu_net([[1.0, -1.0]], [0.0]), [(0, 1), (0, 1)], progress=False)
    t = region_statistics(triangles)
    assert t.volume == [F(1, 2)] * 2 and t.num_vertices == t.num_facets == [3, 3]
    assert t.diameter_sq == [2, 2] and t.eccentricity_sq == [2, 2]
    assert t.inradius_inf == [F(1, 4)] * 2  # the largest square in the triangle
    r_true = 1 - math.sqrt(2) / 2  # legs 1: r = (a + b - c) / 2
    for lo, hi in zip(t.inradius_lo, t.inradius_hi, strict=True):
        assert (1 - lo) ** 2 >= F(1, 2) >= (1 - hi) ** 2  # lo <= 1 - sqrt(2)/2 <= hi, exactly
        assert hi - lo < F(1, 2**30) and abs(float(lo) - r_true) < 1e-12
    summary = t.summary("volume")
    assert summary["mean"] == summary["median"] == F(1, 2) and summary["count"] == 2
    assert s.rows()[0]["volume"] == 1 and set(s.columns()) >= {"volume", "inradius_lo"}


def test_statistics_volumes_sum_to_the_domain_and_bound_each_other() -> None:
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(2, 10), nn.ReLU(), nn.Linear(10, 10), nn.ReLU(), nn.Linear(10, 1))
    cert = verify(net, [(-1, 1), (-1, 1)], progress=False)
    s = region_statistics(cert)
    assert sum(s.volume) == 4
    for vol, dsq, rin, lo, hi in zip(s.volume, s.diameter_sq, s.inradius_inf, s.inradius_lo,
                                     s.inradius_hi, strict=True):
        assert lo <= hi and rin <= hi  # the largest cube fits in the largest ball's radius
        assert lo ** 2 * 4 <= dsq  # a ball of radius lo fits: diameter >= 2 lo
        assert vol <= dsq  # a convex region of diameter D lies in a disk of radius D


def test_summarize_interpolates_quantiles_exactly_like_numpy() -> None:
    import numpy as np

    vals = [F(3), F(1), None, F(7), F(2)]
    out = summarize(vals, quantiles=[F(1, 3), "1/2", 1])
    assert out["count"] == 4 and out["missing"] == 1 and out["mean"] == F(13, 4)
    assert out["quantiles"] == {F(1, 3): 2, F(1, 2): F(5, 2), F(1): 7}
    assert float(out["quantiles"][F(1, 3)]) == np.quantile([1, 2, 3, 7], 1 / 3)
    assert summarize([1.5, 2.5])["median"] == 2.0
    with pytest.raises(InvalidInputError, match="quantiles"):
        summarize([F(1)], quantiles=[2])


@given(st.fractions(min_value=0, max_value=10**30))
def test_sqrt_float_is_within_one_ulp(x) -> None:
    s = sqrt_float(x)
    lo, hi = math.nextafter(s, 0), math.nextafter(s, math.inf)
    assert F(lo) ** 2 <= x <= F(hi) ** 2


# ------------------------------------------------------------------------------ odds and ends
def test_decode_constraint_and_bad_arguments() -> None:
    assert decode_constraint([4, 10, 13], 3) == ConstraintRef(None, 3)
    assert decode_constraint([4, 10, 13], 10) == ConstraintRef(1, 0)
    with pytest.raises(InvalidInputError, match="outside"):
        decode_constraint([4, 10, 13], 13)
    cert = verify(CROSS, [(-1, 1), (-1, 1)], progress=False)
    with pytest.raises(InvalidInputError, match="weight"):
        shortest_path(cert, 0, 1, weight="length")
    with pytest.raises(InvalidInputError, match="does not exist"):
        shortest_path(cert, 0, 4)
    with pytest.raises(InvalidInputError, match="same point"):
        segment_regions(cert, [0, 0], [0, 0])
    with pytest.raises(InvalidInputError, match="outside"):
        segment_regions(cert, [0, 0], [2, 0])
    with pytest.raises(InvalidInputError, match="no column"):
        region_statistics(cert).summary("area")
    assert region_of(CROSS, [1, 1], domain=RealSpace(2)).inside


def test_certificate_dual_graph_method() -> None:
    cert = verify(CROSS, [(-1, 1), (-1, 1)], progress=False)
    assert sorted(cert.dual_graph().edges) == sorted(dual_graph(cert).edges)


@pytest.mark.parametrize("module", ["point", "segment", "graph", "complexity", "statistics"])
def test_docstring_examples_run(module: str) -> None:
    mod = importlib.import_module(f"exactrelu.analysis.{module}")
    result = doctest.testmod(mod, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
