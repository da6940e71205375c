"""The engine seam: every engine (and every way of running the Python one) certifies the same
complex, compared as canonical forms (:func:`exactrelu.engines.canonical`), on generated nets
(generic, degenerate, near-degenerate) and hand-built degenerate ones, on every domain kind the
compiled engine takes (boxes, polytopes, plane slices through higher-dimensional inputs, all of
R^d and slices over it: regions with rays and lines), in 2-D to 6-D."""

from __future__ import annotations

import concurrent.futures as cf
import copy
import random
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import engines
from exactrelu.capture import capture
from exactrelu.domain import Polyhedron, RealSpace, Slice, as_domain
from exactrelu.engines import ENGINES, Options, canonical
from exactrelu.errors import InvalidInputError
from exactrelu.strategies import domains, networks

import constructions as cons

ACTS = st.sampled_from(["relu", "leaky_relu", "hardtanh", "mixed"])


def run(net: nn.Module, domain: Any, engine: str, **kw: Any) -> exactrelu.Certificate:
    shape = None if isinstance(domain, Slice) else getattr(net, "input_shape", None)
    cert = exactrelu.verify(net, domain, input_shape=shape, progress=False, engine=engine, **kw)
    assert cert.stats["engine"] == engine
    return cert


def assert_engines_agree(net: nn.Module, domain: Any) -> exactrelu.Certificate:
    compiled = run(net, domain, "compiled", workers=2)
    python = run(net, domain, "python", workers=1)
    assert canonical(compiled) == canonical(python)
    return compiled


# ----------------------------------------------------------------------------- the form itself

def _renumbered(cert: exactrelu.Certificate, seed: int) -> exactrelu.Certificate:
    """The same complex with regions, vertices, facets and pieces numbered in a random order."""
    rng = random.Random(seed)
    out = copy.deepcopy(cert)
    R, V = len(out.regions), len(out.vertices)
    rperm, vperm = list(range(R)), list(range(V))
    rng.shuffle(rperm)
    rng.shuffle(vperm)
    rnew = {old: k for k, old in enumerate(rperm)}
    out.vertices = [cert.vertices[old] for old in vperm]
    vnew = {old: k for k, old in enumerate(vperm)}
    regions = []
    for old in rperm:
        r = out.regions[old]
        r.index = rnew[old]
        r.vertices = [vnew[v] for v in r.vertices]
        for f in r.facets:
            f.vertices = tuple(vnew[v] for v in f.vertices)
        rng.shuffle(r.facets)
        regions.append(r)
    out.regions = regions
    for a in out.adjacency:
        a.i, a.j = sorted((rnew[a.i], rnew[a.j]))
    rng.shuffle(out.adjacency)
    labels = list(range(len(set(cert.pieces))))
    rng.shuffle(labels)
    out.pieces = [labels[cert.pieces[old]] for old in rperm]
    return out


@pytest.fixture(scope="module")
def small() -> exactrelu.Certificate:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 6), nn.ReLU(), nn.Linear(6, 4), nn.ReLU(), nn.Linear(4, 2))
    return exactrelu.verify(net, [(-1, 1)] * 2, progress=False)


def test_canonical_form_ignores_numbering(small):
    assert canonical(_renumbered(small, 1)) == canonical(small)
    assert canonical(_renumbered(small, 2)) == canonical(_renumbered(small, 3))


@pytest.mark.parametrize("change", ["vertex", "output", "facet ids", "adjacency", "pieces",
                                    "pattern", "volume"])
def test_canonical_form_sees_every_change(small, change):
    bad = copy.deepcopy(small)
    r = bad.regions[0]
    if change == "vertex":
        bad.vertices[r.vertices[0]] = tuple(c + Fraction(1, 7) for c in bad.vertices[r.vertices[0]])
    elif change == "output":
        r.output[0][0] += 1
    elif change == "facet ids":
        r.facets[0].ids = (*r.facets[0].ids, 999)
    elif change == "adjacency":
        bad.adjacency.pop()
    elif change == "pieces":
        assert small.num_pieces > 1
        bad.pieces = [0] * len(bad.pieces)
    elif change == "pattern":
        r.pattern = [list(s) for s in r.pattern]
        r.pattern[-1][0] = 1 - r.pattern[-1][0]
    else:
        r.volume = r.volume / 2
    assert canonical(bad) != canonical(small)


def test_canonical_form_of_a_complex_is_that_of_its_certificate():
    torch.manual_seed(1)
    net = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1))
    prog, dom = capture(net, (2,)), as_domain([(-1, 1)] * 2)
    for eng in ENGINES.values():
        cx = eng.certify(prog, dom, engines.Proposals(), Options(workers=1))
        cert = engines.build_certificate(prog, dom, cx)
        assert canonical(cx) == canonical(cert)
        exactrelu.check(cert, net)


# ----------------------------------------------------------------------------- the registry

def test_auto_takes_the_first_engine_that_applies():
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    prog = capture(net, (2,))
    box2, box4 = as_domain([(-1, 1)] * 2), as_domain([(-1, 1)] * 4)
    assert list(ENGINES) == ["compiled", "python"]
    assert engines.choose("auto", prog, box2, Options()) is ENGINES["compiled"]
    assert engines.choose("auto", prog, box2, Options(executor=cf.ThreadPoolExecutor(1))) \
        is ENGINES["python"]
    prog4 = capture(nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1)), (4,))
    assert engines.choose("auto", prog4, box4, Options()) is ENGINES["compiled"]
    assert engines.choose("auto", prog4, RealSpace(4), Options()) is ENGINES["compiled"]
    # beyond 6-D: the Python engine
    prog7 = capture(nn.Sequential(nn.Linear(7, 3), nn.ReLU(), nn.Linear(3, 1)), (7,))
    box7 = as_domain([(-1, 1)] * 7)
    why = ENGINES["compiled"].applies(prog7, box7, Options())
    assert why is not None and "6-D" in why
    assert engines.choose("auto", prog7, box7, Options()) is ENGINES["python"]
    with pytest.raises(InvalidInputError, match="6-D"):
        engines.choose("compiled", prog7, box7, Options())


# ----------------------------------------------------------------------------- generated nets

def nets_and_domains(d: int, **kw: Any) -> Any:
    depth, widths = ((1, 3), (1, 6)) if d == 2 else ((1, 2), (1, 5))
    return st.tuples(ACTS.flatmap(lambda act: networks(input_dim=d, depth=depth, widths=widths,
                                                       activation=act, **kw)), domains(d))


@given(nets_and_domains(2))
def test_engines_agree_on_generic_2d_nets(case):
    assert_engines_agree(*case)


@given(nets_and_domains(2, degenerate=True))
def test_engines_agree_on_degenerate_2d_nets(case):
    assert_engines_agree(*case)


@given(nets_and_domains(3, degenerate=True))
def test_engines_agree_on_degenerate_3d_nets(case):
    assert_engines_agree(*case)


@pytest.mark.parametrize("act", [nn.ReLU(), nn.LeakyReLU(0.25), nn.Hardtanh(-0.5, 0.5)],
                         ids=["relu", "leaky_relu", "hardtanh"])
def test_engines_agree_on_a_wider_deeper_net(act):
    # 2-24-24-24 (about 500 regions): wide enough that the compiled core makes most first maps
    # after a wide op from an earlier sibling's child, packs states eight units at a time and
    # keeps most rows far from each parent; the small generated nets above rarely get there
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 24), act, nn.Linear(24, 24), act, nn.Linear(24, 24), act,
                        nn.Linear(24, 2))
    cert = assert_engines_agree(net, [(-1, 1)] * 2)
    assert cert.num_regions > 400


def nets_and_boxes_above_3d(**kw: Any) -> Any:
    """4-D to 6-D: a small net (its regions are few, so that the Python engine's H->V in up to 6-D
    stays cheap) on a box or a box cut by a halfspace."""
    return st.sampled_from([4, 5, 6]).flatmap(lambda d: st.tuples(
        ACTS.flatmap(lambda act: networks(input_dim=d, depth=(1, 2), widths=(2, 6),
                                          activation=act, **kw)), domains(d, max_side=1)))


@given(nets_and_boxes_above_3d())
def test_engines_agree_on_generic_nets_above_3d(case):
    exactrelu.check(assert_engines_agree(*case), case[0])


@given(nets_and_boxes_above_3d(degenerate=True))
def test_engines_agree_on_degenerate_nets_above_3d(case):
    # duplicated, negated, parallel and concurrent units
    exactrelu.check(assert_engines_agree(*case), case[0])


@st.composite
def near_degenerate(draw: Any, d: int) -> tuple:
    """A near-degenerate net and a box around its planted point (side 2 or 2^-40)."""
    net = draw(networks(input_dim=d, depth=(1, 2), widths=(1, 4), activation=draw(ACTS),
                        near_degenerate=True))
    half = draw(st.sampled_from([Fraction(1), Fraction(1, 2**41)]))
    return net, [(Fraction(p) - half, Fraction(p) + half) for p in net.near_point]


@given(st.sampled_from([2, 3, 4]).flatmap(near_degenerate))
def test_engines_agree_on_near_degenerate_nets(case):
    assert_engines_agree(*case)


@settings(max_examples=8)
@given(networks(input_dim=5, depth=(1, 2), widths=(1, 5), activation="mixed"),
       st.randoms(use_true_random=False))
def test_engines_agree_on_plane_slices(net, rnd):
    # the plane through x0 spanned by e_i and e_j + e_k / 2 (independent: i != j, k)
    x0 = [rnd.choice([-1.0, -0.5, 0.0, 0.5, 1.0]) for _ in range(5)]
    i, j, k = rnd.sample(range(5), 3)
    x1, x2 = list(x0), list(x0)
    x1[i] += 1.0
    x2[j] += 1.0
    x2[k] += 0.5
    domain = Slice.plane(x0, x1, x2, bounds=[(-1, 1), (-1, 1)])
    assert_engines_agree(net, domain)


@pytest.mark.parametrize("name, net, d", [
    ("l1 ball", cons.l1_ball_classifier(2, 0.5), 2),
    ("linf ball", cons.linf_ball_classifier(2, 0.5), 2),
    ("l1 shell", cons.l1_shell(2, 0.5), 2),
    ("three classes", cons.three_classes(), 2),
    ("l1 ball 3-D", cons.l1_ball_classifier(3, 0.5), 3),
    ("diamond tube", cons.diamond_tube(), 3),
    # 2^d orthants meeting at the origin, every facet of the cross-polytope through 2^(d-1) of them
    ("l1 ball 4-D", cons.l1_ball_classifier(4, 0.5), 4),
    ("l1 shell 5-D", cons.l1_shell(5, 0.5), 5),
])
def test_engines_agree_on_degenerate_constructions(name, net, d):
    # hyperplanes through one point (every |x_i| kink meets at the origin), parallel families
    cert = assert_engines_agree(net, [(-1, 1)] * d)
    exactrelu.check(cert, net)


# ----------------------------------------------------------------------------- unbounded domains

def unbounded_nets(d: int, degenerate: bool) -> Any:
    depth, widths = ((1, 3), (1, 5)) if d == 2 else ((1, 2), (1, 4))
    return ACTS.flatmap(lambda act: networks(input_dim=d, depth=depth, widths=widths,
                                             activation=act, degenerate=degenerate))


@given(unbounded_nets(2, degenerate=False))
def test_engines_agree_on_all_of_r2(net):
    exactrelu.check(assert_engines_agree(net, RealSpace(2)), net)


@given(unbounded_nets(2, degenerate=True))
def test_engines_agree_on_degenerate_nets_on_r2(net):
    # duplicated, negated and parallel units: strips and half-planes (regions with lines)
    exactrelu.check(assert_engines_agree(net, RealSpace(2)), net)


POLYHEDRA = {
    "half-plane": Polyhedron([[1, -1]], ["1/2"]),
    "strip": Polyhedron([[0, 1], [0, -1]], [1, 1]),
    "wedge": Polyhedron([[-1, 0], [1, 2]], [0, 1]),
    "half-space 3-D": Polyhedron([[1, 1, -1]], [0]),
    "wedge 3-D": Polyhedron([[1, 0, 0], [0, 1, -1]], [1, 0]),
}


@settings(max_examples=15)
@given(st.sampled_from(sorted(POLYHEDRA)).flatmap(lambda name: st.tuples(
    st.just(name), unbounded_nets(POLYHEDRA[name].dim, degenerate=True))))
def test_engines_agree_on_unbounded_polyhedra(case):
    # the compiled engine on the polyhedron cut by its box: the box's rows, then the domain's
    name, net = case
    dom = POLYHEDRA[name]
    cert = assert_engines_agree(net, dom)
    assert cert.constraint_offsets[0] == len(dom.halfspaces()[0])
    exactrelu.check(exactrelu.Certificate.from_json(cert.to_json()), net)


@given(st.booleans().flatmap(lambda deg: unbounded_nets(3, degenerate=deg)))
def test_engines_agree_on_r3(net):
    exactrelu.check(assert_engines_agree(net, RealSpace(3)), net)


@settings(max_examples=8)
@given(st.sampled_from([4, 5]).flatmap(lambda d: networks(
    input_dim=d, depth=(1, 1), widths=(1, 4), activation="mixed", degenerate=True)))
def test_engines_agree_on_all_of_r4_and_r5(net):
    # regions with rays (the directions of edges leaving the core's box: the null space of the
    # facets through a vertex on it) and with lines (fewer than d independent normals)
    exactrelu.check(assert_engines_agree(net, RealSpace(net.input_shape[0])), net)


@settings(max_examples=10)
@given(networks(input_dim=5, depth=(1, 2), widths=(1, 4), activation="mixed", degenerate=True),
       st.randoms(use_true_random=False), st.sampled_from([2, 3]))
def test_engines_agree_on_slices_over_all_of_rk(net, rnd, k):
    x0 = [rnd.choice([-1.0, 0.0, 0.5]) for _ in range(5)]
    axes = rnd.sample(range(5), k + 1)
    dirs = [[float(i == axes[j]) + 0.5 * j * (i == axes[k]) for i in range(5)] for j in range(k)]
    assert_engines_agree(net, Slice(x0, dirs, RealSpace(k)))


@pytest.mark.parametrize("name, net, d", [
    ("l1 ball", cons.l1_ball_classifier(2, 0.5), 2),
    ("three classes", cons.three_classes(), 2),
    ("l1 shell 3-D", cons.l1_shell(3, 0.5), 3),
    ("diamond tube", cons.diamond_tube(), 3),
    # every region holds the line of z (prisms over a 2-D arrangement), or lies between parallel
    # lines (strips and half-planes)
    ("prisms", cons.prisms(3), 3),
    ("prisms 4-D", cons.prisms(4), 4),
    ("strips", cons.strips(), 2),
])
def test_engines_agree_on_degenerate_constructions_on_rd(name, net, d):
    cert = assert_engines_agree(net, RealSpace(d))
    exactrelu.check(cert, net)
    assert any(r.rays for r in cert.regions)
    if name in ("prisms", "prisms 4-D", "strips"):
        # the lines as the reduced row echelon basis of the lineality space
        line = {2: (1, Fraction(-1, 2)), 3: (0, 0, 1), 4: (0, 0, 0, 1)}[d]
        assert all(r.lines == [line] and not r.vertices for r in cert.regions)


def _hardtanh_pair() -> nn.Module:
    # units 0 and 1 switch at their lower threshold on one line y = -1 (unit 1's row -2 times
    # unit 0's); between y = -1 and y = -1/2 unit 0 is in its middle state and unit 1 in its lower
    # one, so the state's constraint list names unit 1 first: the row written for that facet is
    # still unit 0's, the lowest switching index, as the arrangement on bounded domains picks
    lin = nn.Linear(2, 3)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[0.0, 1.0], [0.0, -2.0], [1.0, 0.5]]))
        lin.bias.copy_(torch.tensor([0.0, -3.0, 0.0]))
    return nn.Sequential(lin, nn.Hardtanh(-1.0, -0.5), nn.Linear(3, 1))


def test_engines_agree_on_shared_hardtanh_thresholds_on_r2():
    net = _hardtanh_pair()
    cert = assert_engines_agree(net, RealSpace(2))
    exactrelu.check(cert, net)
    rows = {(f.a, f.b) for r in cert.regions for f in r.facets if f.ids == (0, 1)}
    assert rows and all(a[0] == 0 and abs(a[1]) == 1 and abs(b) == 1 for a, b in rows)


# ----------------------------------------------------------------------------- executors

def test_python_engine_gives_one_complex_on_every_executor():
    torch.manual_seed(5)
    net = nn.Sequential(nn.Linear(2, 12), nn.ReLU(), nn.Linear(12, 12), nn.ReLU(),
                        nn.Linear(12, 1))
    box = [(-1, 1)] * 2
    serial = canonical(run(net, box, "python", workers=1))
    with cf.ThreadPoolExecutor(2) as threads:
        assert canonical(run(net, box, "python", executor=threads, workers=2)) == serial
    with cf.ProcessPoolExecutor(2) as procs:
        assert canonical(run(net, box, "python", executor=procs, workers=2)) == serial
    assert canonical(run(net, box, "compiled", workers=2)) == serial


def test_the_checker_imports_no_engine_code():
    # the checker's own imports (read from its source): none of the tracer, the certifier, the
    # engines or verify, so that a bug shared with them cannot hide in a certificate
    import ast
    import pathlib

    src = pathlib.Path(exactrelu.__file__).with_name("check.py").read_text()
    names = set()
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            names.add((node.module or "").split(".")[0])
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("exactrelu"):
            names.add(node.module.split(".")[1] if "." in node.module else "")
    assert names, "the checker imports something of exactrelu"
    assert not names & {"trace", "certify", "engines", "verify", "_polyhedra", "_runtime"}, names


# ----------------------------------------------------------------------------- undecided pairs

def _box_rows(lo: list[Fraction], hi: list[Fraction]) -> list[list[Fraction]]:
    """The facets ``x_i <= hi_i`` and ``-x_i <= -lo_i`` of a box as rows ``(a, b)``."""
    d = len(lo)
    rows = []
    for i in range(d):
        e = [Fraction(int(k == i)) for k in range(d)]
        rows += [[*e, hi[i]], [*(-x for x in e), -lo[i]]]
    return rows


def test_the_compiled_engine_settles_undecided_pairs_by_the_lp():
    # 4-D boxes on both sides of x_1 = 0: region 1's facet there overlaps region 0's in a 3-D box
    # (x_2 in [1/2, 1]); region 2's meets it only where x_2 = 1 (a 2-D piece). The core left both
    # pairs undecided: the first stays and joins the pieces of regions 0 and 1 (equal outputs),
    # the second goes.
    from exactrelu.engines.compiled import _settle_undecided

    h, one, two = Fraction(1, 2), Fraction(1), Fraction(2)
    boxes = [([-one, 0, 0, 0], [0, one, one, one]), ([0, h, 0, 0], [one, two, one, one]),
             ([0, one, 0, 0], [one, two, one, one])]
    rows = [r for lo, hi in boxes for r in _box_rows([Fraction(x) for x in lo], hi)]
    ints = np.asarray
    outputs = [[Fraction(1)] * 5, [Fraction(1)] * 5, [Fraction(2)] * 5]
    out: dict[str, Any] = {
        "d": 4, "n_out": 1, "undecided": [0, 1],
        "adj_i": ints([0, 0]).tobytes(), "adj_j": ints([1, 2]).tobytes(),
        "adj_plane": ints([0, 0]).tobytes(),
        "adj_ids": (ints([0, 1, 2]).tobytes(), ints([7, 8]).tobytes()),
        "facet_start": ints([0, 8, 16, 24]).tobytes(), "facet_row": ints(range(24)).tobytes(),
        "rows": ([x.numerator for r in rows for x in r], [x.denominator for r in rows for x in r]),
        "planes": ([1, 0, 0, 0, 0], [1] * 5),
        "outputs": ([x.numerator for o in outputs for x in o], [1] * 15),
        "pieces": ints([0, 1, 2]).tobytes()}
    _settle_undecided(out)
    assert "undecided" not in out
    assert np.frombuffer(out["adj_i"], dtype=np.int64).tolist() == [0]
    assert np.frombuffer(out["adj_j"], dtype=np.int64).tolist() == [1]
    start, flat = (np.frombuffer(x, dtype=np.int64).tolist() for x in out["adj_ids"])
    assert (start, flat) == ([0, 1], [7])
    assert np.frombuffer(out["pieces"], dtype=np.int64).tolist() == [0, 0, 1]
