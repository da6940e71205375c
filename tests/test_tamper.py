"""Every claim of a certificate is checked: tampering with any field is caught.

Certificates of small nets (1-D to 4-D boxes, all of R^2, LeakyReLU, a plane through the inputs
of a conv net, a net with BatchNorm) are mutated one field at a time, by walking the
certificate's dataclasses (so that a field added later gets mutated too, and fails here until it
has an expectation below and a check in ``exactrelu/check.py``): every list is cut by one
element, given one twice, has two different elements swapped, emptied or replaced by a
non-list; every number is shifted (a rational by 1/10^9, an int by 1); every leaf is replaced
by a value of the wrong type. Which mutations keep every claim true is decided here, from the
original (engine-made) certificate and plain arithmetic, never by the checker:

- provenance, not claims: ``version``, ``stats`` and a region's ``repaired`` flag;
- order inside lists that are sets: the adjacent pairs, a region's facets, vertices and lines,
  a facet's ids, vertices and rays, an adjacent pair's ids;
- a witness moved but still strictly inside its region (every facet inequality strict);
- a ray moved within the span of itself and its region's lines (the same ray up to positive
  scaling modulo the lines), a line moved within the lineality space, two rays swapped that lie
  on the same facets;
- a region's volume dropped in dimension 4 and up (required up to 3-D, where both engines
  write it);
- consistent renumberings of the vertices, the regions (with the adjacent pairs and piece labels
  renumbered) and a region's rays.

Everything else makes some claim false and must be rejected with a CertificateError (never
another exception). Cases with many instances of one kind of mutation are sampled
deterministically."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import itertools
import random
import re
import sys
from collections.abc import Callable, Iterator, Sequence
from fractions import Fraction
from typing import Any

import flint
import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import Box, CertificateError, RealSpace, Slice, strategies as ers
from exactrelu.certificate import Adjacency, Certificate, Region, RegionFacet
from exactrelu.domain import Domain

SHIFT = Fraction(1, 10 ** 9)
CHECKER = sys.modules["exactrelu.check"]  # the package exports the function under that name


# ----------------------------------------------------------------------------- nets and cases

def mlp(d: int, widths: list[int], seed: int, act: Callable[[], nn.Module] = nn.ReLU,
        out: int = 1) -> nn.Sequential:
    torch.manual_seed(seed)
    sizes = [d, *widths]
    layers = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), act())]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out)).double().eval()


def batchnorm_net() -> nn.Sequential:
    torch.manual_seed(3)
    net = nn.Sequential(nn.Linear(2, 3), nn.BatchNorm1d(3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[1].running_mean.uniform_(-1, 1)
        net[1].running_var.uniform_(0.5, 2)
    return net.eval()


def conv_slice() -> tuple[nn.Module, Slice]:
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(1, 2, 2), nn.ReLU(), nn.Flatten(), nn.Linear(8, 1))
    net = net.double().eval()
    x = torch.randn(3, 1, 3, 3, dtype=torch.float64)
    return net, Slice.plane(x[0], x[1], x[2])


def strips() -> nn.Sequential:
    """Parallel hyperplanes in the plane: every region of R^2 has a line, half of them a ray."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 1.0], [1.0, 1.0], [-2.0, -2.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -1.0, 1.0]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0, 0.5]]))
    return net.eval()


def slabs() -> nn.Sequential:
    """Two parallel planes and one across them in R^3: every region has the line (0, 0, 1), so
    adjacency goes through the exact LP."""
    net = nn.Sequential(nn.Linear(3, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [2.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -2.0, 0.5]))
        net[2].weight.copy_(torch.tensor([[1.0, -1.0, 2.0]]))
    return net.eval()


CASES: dict[str, Callable[[], tuple[nn.Module, Any]]] = {
    "1d": lambda: (mlp(1, [4, 3], 0), [(-2, 2)]),
    "2d": lambda: (mlp(2, [4, 3], 1, out=2), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [4, 2], 2), [(-1, 1)] * 3),
    "4d": lambda: (mlp(4, [3, 2], 3), [(-1, 1)] * 4),
    "r2": lambda: (mlp(2, [4, 2], 4), RealSpace(2)),
    "r3": lambda: (mlp(3, [4, 3], 6), RealSpace(3)),
    "r2-lines": lambda: (strips(), RealSpace(2)),
    "r3-lines": lambda: (slabs(), RealSpace(3)),
    "leaky": lambda: (mlp(2, [4, 3], 5, lambda: nn.LeakyReLU(0.1)), [(-1, 1), (-1, 1)]),
    "slice": conv_slice,
    "batchnorm": lambda: (batchnorm_net(), [(-1, 1), (-1, 1)]),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request) -> tuple[str, exactrelu.Program, Certificate]:
    net, dom = CASES[request.param]()
    cert = exactrelu.verify(net, dom, progress=False)
    return request.param, exactrelu.capture(net, cert.input_shape), cert


# ------------------------------------------------------------------------- walking a certificate

Path = tuple  # attribute names (str) and list positions (int)
CLASSES = (Certificate, Region, RegionFacet, Adjacency)


def walk(node: Any, path: Path = (), kind: str = "") -> Iterator[tuple[Path, Any, str]]:
    """Every field and list element under ``node`` as (path, value, kind); ``kind`` is the path
    with positions written ``[*]`` (e.g. ``regions[*].facets[*].ids[*]``)."""
    yield path, node, kind
    if isinstance(node, CLASSES):
        for f in dataclasses.fields(node):
            yield from walk(getattr(node, f.name), (*path, f.name), f"{kind}.{f.name}".lstrip("."))
    elif isinstance(node, Sequence) and not isinstance(node, str):  # lazy sequences of views too
        for k, x in enumerate(node):
            yield from walk(x, (*path, k), f"{kind}[*]")


def get(node: Any, path: Path) -> Any:
    for step in path:
        node = getattr(node, step) if isinstance(step, str) else node[step]
    return node


def replaced(node: Any, path: Path, fn: Callable[[Any], Any]) -> Any:
    """A copy of ``node`` with the value at ``path`` replaced by ``fn(value)``; only the objects
    along the path are copied (the original certificate is never changed)."""
    if not path:
        return fn(node)
    step, rest = path[0], path[1:]
    if isinstance(step, str):
        new = copy.copy(node)
        setattr(new, step, replaced(getattr(node, step), rest, fn))
        return new
    items = list(node)
    items[step] = replaced(node[step], rest, fn)
    return type(node)(items) if isinstance(node, tuple) else items


# ----------------------------------------------------------------------------- what is true

RATIONAL = {"regions[*].witness[*]", "regions[*].output[*][*]", "regions[*].volume",
            "regions[*].rays[*][*]", "regions[*].lines[*][*]", "vertices[*][*]",
            "regions[*].facets[*].a[*]", "regions[*].facets[*].b", "adjacency[*].a[*]",
            "adjacency[*].b"}
INTEGER = {"input_shape[*]", "output_shape[*]", "constraint_offsets[*]", "regions[*].index",
           "regions[*].pattern[*][*]", "regions[*].vertices[*]", "regions[*].facets[*].ids[*]",
           "regions[*].facets[*].vertices[*]", "regions[*].facets[*].rays[*]", "adjacency[*].i",
           "adjacency[*].j", "adjacency[*].ids[*]", "pieces[*]"}
PROVENANCE = {"version", "stats", "regions[*].repaired"}
SETS = {"adjacency", "regions[*].facets", "regions[*].vertices", "regions[*].lines",
        "regions[*].facets[*].ids", "regions[*].facets[*].vertices", "regions[*].facets[*].rays",
        "adjacency[*].ids"}
# every other field: each of its mutations makes a claim false
CLAIMS = {"domain", "input_shape", "output_shape", "digest", "constraint_offsets", "regions",
          "vertices", "adjacency", "pieces", "notes", "notes[*]", "regions[*]",
          "regions[*].pattern", "regions[*].pattern[*]", "regions[*].witness",
          "regions[*].facets", "regions[*].facets[*]", "regions[*].facets[*].a",
          "regions[*].facets[*].ids", "regions[*].facets[*].vertices",
          "regions[*].facets[*].rays", "regions[*].vertices", "regions[*].output",
          "regions[*].output[*]", "regions[*].rays", "regions[*].rays[*]", "regions[*].lines",
          "regions[*].lines[*]", "vertices[*]", "adjacency[*]", "adjacency[*].a",
          "adjacency[*].ids"}
KNOWN = RATIONAL | INTEGER | PROVENANCE | SETS | CLAIMS


def exact(x: Any) -> flint.fmpq:
    x = Fraction(x)
    return flint.fmpq(x.numerator, x.denominator)


def rank(rows: list) -> int:
    """Rank of rational rows."""
    return flint.fmpq_mat([[exact(x) for x in r] for r in rows]).rank() if rows else 0


def solve(columns: list, v: Any) -> list[Fraction] | None:
    """The coefficients ``x`` with ``sum x_i columns[i] = v``, when they exist and are unique."""
    n = len(columns)
    if rank(columns) != n or rank([*columns, v]) != n:
        return None
    A = flint.fmpq_mat([[exact(c[i]) for c in columns] for i in range(len(v))])
    b = flint.fmpq_mat([[exact(x)] for x in v])
    x = (A.transpose() * A).solve(A.transpose() * b)  # consistent, full column rank: exact
    return [Fraction(int(e.p), int(e.q)) for e in x.entries()]


def is_rational_vector(v: Any, d: int) -> bool:
    return (isinstance(v, (list, tuple)) and len(v) == d
            and all(isinstance(x, (int, Fraction)) and not isinstance(x, bool) for x in v))


def stays_true(cert: Certificate, kind: str, op: str, path: Path, new: Certificate) -> bool:
    """Does the mutation ``op`` at ``path`` (of kind ``kind``) keep every claim true?"""
    d = cert.dim
    if kind in PROVENANCE or (kind.startswith("stats") or kind.startswith("version")):
        return True
    if op == "swap" and kind in SETS:
        return True
    if kind.startswith("regions[*].witness"):
        r = cert.regions[path[1]]
        w = get(new, ("regions", path[1], "witness"))
        return is_rational_vector(w, d) and all(
            sum(a * x for a, x in zip(f.a, w, strict=True)) < f.b for f in r.facets)
    if kind == "regions[*].rays" and op == "swap":  # two rays trade places: on the same facets?
        r = cert.regions[path[1]]
        moved = [n for n, v in enumerate(get(new, path)) if v != r.rays[n]]
        return all(len(set(moved) & set(f.rays)) in (0, len(moved)) for f in r.facets)
    if kind.startswith("regions[*].rays[*]"):  # the same ray up to positive scaling, modulo lines?
        r = cert.regions[path[1]]
        ray, old = get(new, path[:4]), r.rays[path[3]]
        if not is_rational_vector(ray, d):
            return False
        x = solve([old, *r.lines], ray)
        return x is not None and x[0] > 0
    if kind.startswith("regions[*].lines[*]"):  # still a basis of the lineality space?
        r = cert.regions[path[1]]
        lines = get(new, path[:3])
        return (all(is_rational_vector(v, d) for v in lines)
                and rank(list(lines)) == len(lines) == rank(list(r.lines))
                == rank([*r.lines, *lines]))
    if kind == "regions[*].volume" and op == "none":
        return cert.domain.is_bounded and d > 3
    return False


# ----------------------------------------------------------------------------- mutations

def other_domain(dom: Domain) -> Any:
    if isinstance(dom, Box):
        bounds = list(zip(dom.lower, dom.upper, strict=True))
        return Box([(lo, hi + (SHIFT if i == 0 else 0)) for i, (lo, hi) in enumerate(bounds)])
    return Box([(-1, 1)] * dom.dim)


def ops_for(kind: str, value: Any) -> list[tuple[str, Callable[[Any], Any]]]:
    """The mutations of one value, as (name, function of the value)."""
    out: list[tuple[str, Callable[[Any], Any]]] = []
    if isinstance(value, Sequence) and not isinstance(value, str):
        t = type(value) if isinstance(value, (list, tuple)) else list  # a lazy sequence: a list
        if value:
            out += [("drop", lambda v: t(list(v)[1:])), ("dup", lambda v: t([*list(v), v[-1]])),
                    ("empty", lambda v: t())]
            k = next((k for k in range(len(value) - 1) if value[k] != value[k + 1]), None)
            if k is not None:
                out.append(("swap", lambda v, k=k: t([*v[:k], v[k + 1], v[k], *v[k + 2:]])))
        out.append(("type", lambda v: None))
    elif isinstance(value, bool):
        out += [("flip", lambda v: not v), ("type", lambda v: "x")]
    elif isinstance(value, (int, Fraction)):
        step = 1 if kind in INTEGER else SHIFT
        out += [("shift", lambda v: v + step), ("type", lambda v: "1/2"), ("float", lambda v: 0.5)]
        if kind == "regions[*].volume":
            out.append(("none", lambda v: None))
    elif isinstance(value, str):
        out += [("shift", lambda v: v + "x"), ("type", lambda v: None)]
    elif value is None:
        out += [("set", lambda v: Fraction(1)), ("type", lambda v: "x")]
    elif isinstance(value, Domain):
        out += [("shift", other_domain), ("type", lambda v: None)]
    elif isinstance(value, dict):
        out += [("shift", lambda v: {**v, "x": 1}), ("type", lambda v: None)]
    else:
        out.append(("type", lambda v: None))
    return out


def single_mutations(cert: Certificate, per_kind: int,
                     seed: int) -> Iterator[tuple[str, Certificate, bool]]:
    """(description, mutated certificate, keeps every claim true) for up to ``per_kind``
    instances of every (kind, op), chosen deterministically."""
    by_kind: dict[str, list[tuple[Path, Any]]] = {}
    for path, value, kind in walk(cert):
        if path:
            by_kind.setdefault(kind, []).append((path, value))
    unknown = sorted(k for k in by_kind if k not in KNOWN)
    assert not unknown, f"fields without an expectation (add a check and a rule here): {unknown}"
    rng = random.Random(seed)
    for kind in sorted(by_kind):
        items = by_kind[kind]
        chosen: dict[str, list] = {}
        for path, value in rng.sample(items, len(items)):
            for op, fn in ops_for(kind, value):
                if len(chosen.setdefault(op, [])) < per_kind:
                    chosen[op].append((path, fn))
        for op, picks in chosen.items():
            for path, fn in picks:
                new = replaced(cert, path, fn)
                yield f"{op} {kind} at {path}", new, stays_true(cert, kind, op, path, new)


def renumbered(cert: Certificate, seed: int) -> Iterator[tuple[str, Certificate]]:
    """Consistent renumberings, each keeping every claim true."""
    rng = random.Random(seed)
    # vertices
    n = cert.num_vertices
    perm = list(range(n))
    rng.shuffle(perm)  # old index k goes to perm[k]
    new = copy.deepcopy(cert)
    new.vertices = [None] * n
    for k, v in enumerate(cert.vertices):
        new.vertices[perm[k]] = v
    for r in new.regions:
        r.vertices = [perm[k] for k in r.vertices]
        for f in r.facets:
            f.vertices = tuple(perm[k] for k in f.vertices)
    yield "vertices renumbered", new
    # regions, with the adjacent pairs and the piece labels
    order = list(range(cert.num_regions))
    rng.shuffle(order)  # new position p holds old region order[p]
    pos = {old: p for p, old in enumerate(order)}
    new = copy.deepcopy(cert)
    new.regions = [new.regions[old] for old in order]
    for p, r in enumerate(new.regions):
        r.index = p
    for a in new.adjacency:
        a.i, a.j = sorted((pos[a.i], pos[a.j]))
    labels: dict[int, int] = {}
    new.pieces = [labels.setdefault(cert.pieces[old], len(labels)) for old in order]
    yield "regions renumbered", new
    # a region's rays
    k = next((k for k, r in enumerate(cert.regions) if len(r.rays) > 1), None)
    if k is not None:
        new = copy.deepcopy(cert)
        r = new.regions[k]
        back = list(reversed(range(len(r.rays))))
        r.rays = [r.rays[i] for i in back]
        for f in r.facets:
            f.rays = tuple(len(back) - 1 - i for i in f.rays)
        yield f"rays of region {k} renumbered", new
    # every set-like list reversed at once
    new = copy.deepcopy(cert)
    new.adjacency.reverse()
    for a in new.adjacency:
        a.ids = tuple(reversed(a.ids))
    for r in new.regions:
        r.facets.reverse()
        r.vertices.reverse()
        for f in r.facets:
            f.ids, f.vertices, f.rays = f.ids[::-1], f.vertices[::-1], f.rays[::-1]
    yield "every set-like list reversed", new


def outcome(cert: Certificate, prog: exactrelu.Program) -> str:
    try:
        exactrelu.check(cert, prog)
    except CertificateError as exc:
        return f"rejected: {exc}"
    except Exception as exc:
        return f"crashed: {type(exc).__name__}: {exc}"
    return "accepted"


# ----------------------------------------------------------------------------- the tests

@contextlib.contextmanager
def maps_path(generic: bool) -> Iterator[None]:
    """The checker composing exact maps through the rules' node loop (``generic``) or, where
    the program is a chain of elementwise ops, as integer products (its default)."""
    saved = CHECKER._GENERIC_MAPS
    CHECKER._GENERIC_MAPS = generic
    try:
        yield
    finally:
        CHECKER._GENERIC_MAPS = saved


def test_every_case_is_a_chain_so_both_map_paths_run():
    """The chain path is the default for every case here; the generic one is forced below."""
    for name, make in CASES.items():
        net, dom = make()
        cert = exactrelu.verify(net, dom, progress=False)
        assert CHECKER._ChainRunner.applies(exactrelu.capture(net, cert.input_shape)), name


@pytest.mark.parametrize("generic", [False, True], ids=["chain", "generic"])
def test_every_field_is_checked(case, generic):
    name, prog, cert = case
    with maps_path(generic):
        every_field_is_checked(name, prog, cert)


@pytest.mark.parametrize("name", ["2d", "leaky", "batchnorm"])
def test_both_map_paths_give_the_same_verdict_and_message(name):
    """Chain products and the node loop reject a tampered certificate with the same error."""
    net, dom = CASES[name]()
    cert = exactrelu.verify(net, dom, progress=False)
    prog = exactrelu.capture(net, cert.input_shape)
    differ = []
    n = 0
    for what, new, _ in single_mutations(cert, per_kind=1, seed=7):
        with maps_path(False):
            chain = outcome(new, prog)
        with maps_path(True):
            generic = outcome(new, prog)
        n += chain.startswith("rejected")
        if chain != generic:
            differ.append(f"{what}: {chain} / {generic}")
    assert not differ, "\n".join(differ)
    assert n > 50, n


def every_field_is_checked(name: str, prog: exactrelu.Program, cert: Certificate) -> None:
    assert exactrelu.check(cert, prog) is cert
    wrong = []
    count = {True: 0, False: 0}
    for what, new, true in single_mutations(cert, per_kind=2, seed=len(name)):
        got = outcome(new, prog)
        count[true] += 1
        if true and got != "accepted":
            wrong.append(f"{what}: keeps every claim true but was {got}")
        if not true and not got.startswith("rejected"):
            wrong.append(f"{what}: makes a claim false but was {got}")
    for what, new in renumbered(cert, seed=len(name)):
        got = outcome(new, prog)
        if got != "accepted":
            wrong.append(f"{what}: keeps every claim true but was {got}")
    assert not wrong, "\n".join(wrong)
    assert count[False] > 200 and count[True] > 10, count


def compiled_verdict(cert: Certificate, prog: exactrelu.Program) -> str:
    """The checker's compiled pass alone (no fallback to the Python pass): "accepted",
    "rejected: why", or "outside" (malformed objects, which the Python pass names)."""
    from exactrelu._exact import input_map

    dom = cert.domain
    if not isinstance(dom, Domain):
        return "outside"
    M, c = dom.input_map()
    A, b = dom.halfspaces()
    rows = [[CHECKER._fq(-x) for x in a] + [CHECKER._fq(y)] for a, y in zip(A, b, strict=True)]
    try:
        CHECKER._validate_header(cert)
        why = CHECKER._check_compiled(cert, prog, input_map(M, c, prog.input_shape),
                                      list(cert.constraint_offsets), rows, False)
    except CertificateError as exc:
        return f"rejected: {exc}"
    if why == "outside the compiled pass":
        return "outside"
    return "accepted" if why is None else f"rejected: {why}"


@pytest.mark.skipif(CHECKER._checkcore is None, reason="built without _checkcore")
@pytest.mark.parametrize("name", ["1d", "2d", "3d", "leaky", "r2", "r3"])
def test_the_compiled_pass_decides_every_mutation(name):
    """On the bounded 1-D to 3-D chains and on all of R^2 and R^3 (regions with rays) the
    compiled pass, by itself, accepts every mutation that keeps the claims true and rejects
    every other one that is well formed."""
    net, dom = CASES[name]()
    cert = exactrelu.verify(net, dom, progress=False)
    prog = exactrelu.capture(net, cert.input_shape)
    assert compiled_verdict(cert, prog) == "accepted"
    wrong = []
    decided = 0
    mutations = [(what, new, true) for what, new, true in single_mutations(cert, 2, seed=3)]
    mutations += [(what, new, True) for what, new in renumbered(cert, seed=3)]
    for what, new, true in mutations:
        field = re.search(r" at \('(\w+)'", what)
        if field and field.group(1) not in ("regions", "vertices", "adjacency", "pieces"):
            continue  # the header: checked by check() before either pass
        got = compiled_verdict(new, prog)
        if got == "outside":
            assert not true, what  # every true mutation is well formed
            continue
        decided += 1
        if true != (got == "accepted"):
            wrong.append(f"{what}: keeps the claims {true} but was {got}")
    assert not wrong, "\n".join(wrong)
    assert decided > 80, decided


def test_the_walk_reaches_every_field():
    """The mutations cover every field of every certificate class (a new field shows up here)."""
    net, dom = CASES["r2"]()
    cert = exactrelu.verify(net, dom, progress=False)
    kinds = {kind for _, _, kind in walk(cert)}
    for cls, prefix in ((Certificate, ""), (Region, "regions[*]."),
                        (RegionFacet, "regions[*].facets[*]."), (Adjacency, "adjacency[*].")):
        for f in dataclasses.fields(cls):
            assert f"{prefix}{f.name}" in kinds, f"{cls.__name__}.{f.name} is never mutated"


# ----------------------------------------------------------------------------- reproducers

def rejected(cert: Certificate, net: Any, match: str) -> None:
    with pytest.raises(CertificateError, match=match):
        exactrelu.check(cert, net)


@pytest.fixture(scope="module")
def box2() -> tuple[nn.Module, Certificate]:
    net = mlp(2, [6, 5], 0)
    return net, exactrelu.verify(net, [(-1, 1)] * 2, progress=False)


def test_a_dropped_adjacent_pair_is_missing(box2):
    net, cert = box2
    bad = copy.deepcopy(cert)
    a = bad.adjacency.pop(len(bad.adjacency) // 2)
    rejected(bad, net, f"regions {a.i} and {a.j} share a 1-dimensional face but are not listed")


def test_no_adjacency_and_one_piece_per_region(box2):
    net, cert = box2
    bad = copy.deepcopy(cert)
    bad.adjacency = []
    bad.pieces = list(range(bad.num_regions))
    rejected(bad, net, "not listed as adjacent")


def hat() -> nn.Sequential:
    """``relu(x + 1/2) - 2 relu(x) + relu(x - 1/2)``: zero left of -1/2 and right of 1/2."""
    net = nn.Sequential(nn.Linear(1, 3), nn.ReLU(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [1.0], [1.0]]))
        net[0].bias.copy_(torch.tensor([0.5, 0.0, -0.5]))
        net[2].weight.copy_(torch.tensor([[1.0, -2.0, 1.0]]))
        net[2].bias.zero_()
    return net


def test_regions_that_do_not_touch_are_not_one_piece():
    net = hat()
    cert = exactrelu.verify(net, [(-2, 2)], progress=False)
    exactrelu.check(cert, net)
    zero = [r.index for r in cert.regions if all(v == 0 for row in r.output for v in row)]
    assert len(zero) == 2 and cert.num_regions == 4 and cert.num_pieces == 4
    bad = copy.deepcopy(cert)
    labels: dict = {}
    bad.pieces = [labels.setdefault("zero" if k in zero else k, len(labels)) for k in range(4)]
    assert len(set(bad.pieces)) == 3
    rejected(bad, net, f"regions {zero[0]} and {zero[1]} are labelled .* but are not connected")


def test_adjacent_regions_with_one_map_are_one_piece():
    """A unit with output weight 0 splits regions, not pieces: labelling its two sides as two
    pieces is rejected, and so is a numbering that is not by first occurrence."""
    net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0], [1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, -0.5]))
        net[2].weight.copy_(torch.tensor([[1.0, 0.0]]))
    cert = exactrelu.verify(net, [(-1, 1)], progress=False)
    exactrelu.check(cert, net)
    assert cert.num_regions == 3 and cert.num_pieces == 2
    bad = copy.deepcopy(cert)
    bad.pieces = [0, 1, 2]
    rejected(bad, net, "are connected through adjacent regions with one exact output map but "
                       "labelled")
    bad.pieces = [1 - p for p in cert.pieces]
    rejected(bad, net, "region 0 starts a new piece labelled 1")


def test_an_extra_or_a_duplicated_vertex(box2):
    net, cert = box2
    bad = copy.deepcopy(cert)
    bad.vertices.append(tuple(v / 3 for v in cert.vertices[0]))
    rejected(bad, net, f"vertex {cert.num_vertices} is a vertex of no region")
    bad = copy.deepcopy(cert)
    bad.vertices.append(cert.vertices[0])
    rejected(bad, net, f"vertices 0 and {cert.num_vertices} are the same point")
    r = next(r for r in bad.regions if 0 in r.vertices)  # the copy used in place of the original
    r.vertices = [cert.num_vertices if k == 0 else k for k in r.vertices]
    rejected(bad, net, "the same point")


def test_a_vertex_removed_everywhere_on_the_plane():
    net = mlp(2, [5, 4], 1)
    cert = exactrelu.verify(net, RealSpace(2), progress=False)
    k = next(k for k, v in enumerate(cert.vertices))
    bad = copy.deepcopy(cert)
    del bad.vertices[k]
    for r in bad.regions:
        r.vertices = [i - (i > k) for i in r.vertices if i != k]
        for f in r.facets:
            f.vertices = tuple(i - (i > k) for i in f.vertices if i != k)
    rejected(bad, net, "its vertex .* is not listed")


def test_dropped_facets_and_truncated_facet_vertex_lists(box2):
    net, cert = box2
    bad = copy.deepcopy(cert)
    f = bad.regions[3].facets.pop(0)
    msg = f"region 3: its facet on constraints {sorted(f.ids)} is not listed"
    rejected(bad, net, re.escape(msg))
    bad = copy.deepcopy(cert)
    for r in bad.regions:
        for f in r.facets:
            f.vertices = f.vertices[:1]
    rejected(bad, net, "lies on it but is not listed")


def test_output_shape_and_notes_are_the_networks():
    net, dom = CASES["batchnorm"]()
    cert = exactrelu.verify(net, dom, progress=False)
    assert cert.notes and "BatchNorm" in cert.notes[0]
    bad = copy.deepcopy(cert)
    bad.output_shape = (2,)
    rejected(bad, net, "output_shape")
    bad = copy.deepcopy(cert)
    bad.notes = []
    rejected(bad, net, "notes")
    bad.notes = [cert.notes[0].replace("float64", "float32")]
    rejected(bad, net, "notes")


def test_facet_ids_hold_every_constraint_on_the_facet():
    """Duplicated, negated and proportional units and a unit on the box's boundary: a facet's
    ids are every constraint vanishing on it (domain row included), in both engines; one left
    out, or one added, is rejected."""
    net = nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.5], [1.0, 0.5], [-2.0, -1.0], [1.0, 0.0],
                                          [0.0, 1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, 0.0, 1.0, 0.25]))
    for engine in ("python", "compiled"):
        cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False, engine=engine)
        exactrelu.check(cert, net)
        n_dom = cert.constraint_offsets[0]  # rows: x0 <= 1, -x0 <= 1, x1 <= 1, -x1 <= 1
        ids = {tuple(sorted(f.ids)) for r in cert.regions for f in r.facets}
        assert (n_dom, n_dom + 1, n_dom + 2) in ids  # the three units on x0 + x1/2 = 0
        assert (1, n_dom + 3) in ids  # the unit x0 + 1 = 0 on the box's side x0 = -1
        r, n = next((r, n) for r in cert.regions for n, f in enumerate(r.facets) if len(f.ids) == 3)
        for ids_new in (r.facets[n].ids[:2], (*r.facets[n].ids, n_dom + 4)):
            bad = copy.deepcopy(cert)
            bad.regions[r.index].facets[n].ids = ids_new
            rejected(bad, net, f"region {r.index}: facet {n}")


def test_the_domain_can_be_required():
    net, dom = CASES["2d"]()
    cert = exactrelu.verify(net, dom, progress=False)
    assert exactrelu.check(cert, net, domain=dom) is cert
    assert exactrelu.check(cert, net, domain=Box(dom)) is cert
    for other in ([(-1, 1), (-1, 2)], RealSpace(2),
                  exactrelu.Polytope([[1, 0], [-1, 0], [0, 1], [0, -1]], [1, 1, 1, 1])):
        with pytest.raises(CertificateError, match="domain: the certificate is about"):
            exactrelu.check(cert, net, domain=other)


# ----------------------------------------------------------------------------- engines

def engines_accepted(net: nn.Module, dom: Any) -> int:
    """Check the certificates of both engines (where the compiled one applies); how many."""
    n = 0
    for engine in ("python", "compiled"):
        try:
            cert = exactrelu.verify(net, dom, progress=False, engine=engine,
                                    input_shape=net.input_shape)
        except exactrelu.InvalidInputError as exc:
            assert engine == "compiled", exc
            continue
        assert exactrelu.check(cert, net) is cert
        n += 1
    return n


@settings(max_examples=max(5, settings().max_examples // 2))
@given(st.data())
def test_both_engines_certificates_are_accepted_in_2d_and_3d(data):
    d = data.draw(st.sampled_from([2, 3]))
    deg = data.draw(st.booleans())
    net = data.draw(ers.networks(input_dim=d, degenerate=deg, widths=(1, 4), depth=(1, 2),
                                 activation=data.draw(st.sampled_from(ers.ACTIVATIONS)),
                                 kind=data.draw(st.sampled_from(ers.KINDS))))
    dom = data.draw(st.one_of(ers.boxes(d), ers.domains(d), st.just([(-1, 1)] * d)))
    with maps_path(data.draw(st.booleans(), label="generic maps")):
        assert engines_accepted(net, dom) >= 1


@settings(max_examples=max(5, settings().max_examples // 2))
@given(st.data())
def test_python_engine_certificates_are_accepted_in_1d_4d_and_on_all_of_rd(data):
    d = data.draw(st.sampled_from([1, 2, 3, 4]))
    act = data.draw(st.sampled_from(ers.ACTIVATIONS))
    net = data.draw(ers.networks(input_dim=d, degenerate=data.draw(st.booleans()), widths=(1, 3),
                                 depth=(1, 2), activation=act))
    dom = data.draw(st.one_of(ers.boxes(d), st.just(RealSpace(d))) if d < 4 else ers.boxes(d))
    with maps_path(data.draw(st.booleans(), label="generic maps")):
        assert engines_accepted(net, dom) >= 1
