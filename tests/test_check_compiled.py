"""The checker's compiled pass (exactrelu/_checkcore.cpp, run by ``check._check_compiled``; bounded
1-D to 3-D chains) proves
what the Python pass proves: it accepts valid certificates by itself (it does not fall back), and
every tampered certificate is rejected by it (a reason, or a CertificateError from what follows
it) and by ``exactrelu.check`` with the Python pass's message. The tampered fields are those the
compiled pass checks in its own way: the witness, vertices, output maps, facets, volumes and
adjacent pairs, on columns and on objects."""

from __future__ import annotations

import copy
import itertools
import sys
from fractions import Fraction
from typing import Any

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import CertificateError
from exactrelu._columns import Rationals, views
from exactrelu._exact import input_map
from exactrelu.certificate import Adjacency, Certificate

CHECKER = sys.modules["exactrelu.check"]
pytestmark = pytest.mark.skipif(CHECKER._checkcore is None, reason="built without _checkcore")


def mlp(d: int, widths: list[int], seed: int, act: Any = nn.ReLU, out: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    sizes = [d, *widths]
    layers = [m for a, b in itertools.pairwise(sizes) for m in (nn.Linear(a, b), act())]
    return nn.Sequential(*layers, nn.Linear(sizes[-1], out)).double().eval()


NETS = {
    "1d": lambda: (mlp(1, [5, 4], 0), [(-2, 2)]),
    "2d": lambda: (mlp(2, [6, 5], 1, out=2), [(-1, 1), (-1, 1)]),
    "leaky": lambda: (mlp(2, [5, 4], 2, lambda: nn.LeakyReLU(0.1)), [(-1, 1), (-1, 1)]),
    "hardtanh": lambda: (mlp(2, [5, 4], 3, nn.Hardtanh), [(-1, 1), (-1, 1)]),
    "3d": lambda: (mlp(3, [5, 4], 7), [(-1, 1)] * 3),
    "3d-hardtanh": lambda: (mlp(3, [6, 5], 8, nn.Hardtanh), [(-2, 2), (-1, 2), (-2, 1)]),
    "polygon": lambda: (mlp(2, [8, 6], 4),
                        exactrelu.Polytope([[-1, 0], [0, -1], [1, 2]], [0, 0, 2])),
}


def compiled(cert: Certificate, net: nn.Module) -> str | None:
    """The compiled pass's verdict alone: None (every claim holds), or why it stopped (a false
    claim, or input outside it); a CertificateError from what follows it propagates."""
    prog = CHECKER._program(cert, net)
    dom = cert.domain
    M, c = dom.input_map()
    A, b = dom.halfspaces()
    rows = [[CHECKER._fq(-x) for x in a] + [CHECKER._fq(y)] for a, y in zip(A, b, strict=True)]
    return CHECKER._check_compiled(cert, prog, input_map(M, c, prog.input_shape),
                                   list(cert.constraint_offsets), rows, False)


def python_message(cert: Certificate, net: nn.Module) -> str:
    saved = CHECKER._COMPILED
    CHECKER._COMPILED = False
    try:
        with pytest.raises(CertificateError) as info:
            exactrelu.check(cert, net, progress=False)
    finally:
        CHECKER._COMPILED = saved
    return str(info.value)


def rejected_by_both(cert: Certificate, net: nn.Module, what: str = "") -> None:
    """The compiled pass rejects ``cert`` by itself, and check() raises the Python message."""
    try:
        reason = compiled(cert, net)
    except CertificateError:
        reason = "raised"
    assert reason is not None and reason != "outside the compiled pass", what
    want = python_message(cert, net)
    with pytest.raises(CertificateError) as info:
        exactrelu.check(cert, net, progress=False)
    assert str(info.value) == want


@pytest.fixture(scope="module", params=list(NETS))
def made(request) -> tuple[str, nn.Module, Certificate]:
    net, dom = NETS[request.param]()
    return request.param, net, exactrelu.verify(net, dom, progress=False)


def as_objects(cert: Certificate) -> Certificate:
    """``cert`` with its regions, vertices and adjacent pairs as lists of objects (as loaded)."""
    new = copy.deepcopy(cert)
    new.regions = [copy.deepcopy(r) for r in cert.regions]
    new.vertices = list(cert.vertices)
    new.adjacency = [copy.deepcopy(a) for a in cert.adjacency]
    return new


def test_the_compiled_pass_accepts_valid_certificates_by_itself(made, tmp_path):
    name, net, cert = made
    assert cert.num_regions > 5, name
    assert compiled(cert, net) is None
    assert compiled(as_objects(cert), net) is None
    listed = as_objects(cert)  # lists where the engines write tuples: the same claims
    listed.vertices = [list(v) for v in listed.vertices]
    for a in listed.adjacency:
        a.a, a.ids = list(a.a), list(a.ids)
    for r in listed.regions:
        r.witness = list(r.witness)
        for f in r.facets:
            f.a, f.ids, f.vertices = list(f.a), list(f.ids), list(f.vertices)
    assert compiled(listed, net) is None
    path = tmp_path / "c.json"
    cert.save(path)
    loaded = Certificate.load(path)
    assert compiled(loaded, net) is None
    assert exactrelu.check(loaded, net, progress=False) is loaded


def test_outside_the_compiled_pass():
    """4-D boxes and R^2 go to the Python pass (which accepts them)."""
    for net, dom in ((mlp(4, [3, 2], 5), [(-1, 1)] * 4), (mlp(2, [3, 2], 6),
                                                       exactrelu.RealSpace(2))):
        cert = exactrelu.verify(net, dom, progress=False)
        assert compiled(cert, net) == "outside the compiled pass"
        assert exactrelu.check(cert, net, progress=False) is cert


def shifted(q: Fraction, by: Fraction) -> Fraction:
    return Fraction(q) + by


TINY = Fraction(1, 2 ** 60)


def test_tampered_objects_are_rejected_by_the_compiled_pass(made):
    name, net, cert = made
    base = as_objects(cert)
    d = cert.domain.dim
    mid = cert.num_regions // 2
    r0 = base.regions[mid]
    cases = []

    def case(fn: Any) -> None:
        new = copy.deepcopy(base)
        fn(new)
        cases.append(new)

    # the witness moved onto a vertex of its region (on its facets), and outside the domain
    case(lambda c: setattr(c.regions[mid], "witness", tuple(c.vertices[r0.vertices[0]])))
    case(lambda c: setattr(c.regions[mid], "witness", tuple(Fraction(9) for _ in range(d))))
    # a vertex moved by a tiny rational (off its region's constraints, or not tight on d)
    for k in (0, len(base.vertices) // 2):
        case(lambda c, k=k: c.vertices.__setitem__(
            k, tuple(shifted(x, TINY if i == 0 else 0) for i, x in enumerate(c.vertices[k]))))
    # a wrong output entry
    case(lambda c: c.regions[mid].output[0].__setitem__(d, shifted(r0.output[0][d], TINY)))
    # a facet dropped; one listed twice; its vertices wrong; its inequality off
    case(lambda c: c.regions[mid].facets.pop(0))
    case(lambda c: c.regions[mid].facets.append(c.regions[mid].facets[0]))
    case(lambda c: setattr(c.regions[mid].facets[0], "vertices",
                           c.regions[mid].facets[0].vertices[1:]))
    case(lambda c: setattr(c.regions[mid].facets[0], "b", shifted(r0.facets[0].b, TINY)))
    case(lambda c: setattr(c.regions[mid].facets[0], "ids",
                           (*r0.facets[0].ids, cert.constraint_offsets[-1] - 1)
                           if cert.constraint_offsets[-1] - 1 not in r0.facets[0].ids
                           else (*r0.facets[0].ids[:-1], 0)))
    # a vertex missing from a region (volume short of its area), a volume off, none
    case(lambda c: setattr(c.regions[mid], "vertices", c.regions[mid].vertices[1:]))
    case(lambda c: setattr(c.regions[mid], "volume", shifted(r0.volume, TINY)))
    case(lambda c: setattr(c.regions[mid], "volume", None))
    # a state flipped (the witness is not in that cell)
    case(lambda c: c.regions[mid].pattern[-1].__setitem__(
        0, 1 - c.regions[mid].pattern[-1][0] if c.regions[mid].pattern[-1][0] < 2 else 0))
    # a region dropped (the volumes no longer sum to the domain's)
    last = cert.num_regions - 1
    case(lambda c: (c.regions.pop(), c.pieces.pop(),
                    setattr(c, "adjacency", [a for a in c.adjacency if a.j != last])))
    # adjacency: a pair missing, an extra one, its plane off, its ids short
    a0 = base.adjacency[len(base.adjacency) // 2]
    case(lambda c: c.adjacency.pop(len(c.adjacency) // 2))
    pairs = {(a.i, a.j) for a in base.adjacency}
    extra = next((i, j) for i in range(cert.num_regions) for j in range(i + 1, cert.num_regions)
                 if (i, j) not in pairs)
    case(lambda c: c.adjacency.append(Adjacency(*extra, a0.a, a0.b, a0.ids)))
    case(lambda c: setattr(c.adjacency[len(c.adjacency) // 2], "b", shifted(a0.b, TINY)))
    case(lambda c: setattr(c.adjacency[len(c.adjacency) // 2], "ids", a0.ids[1:]))
    # a piece label changed
    case(lambda c: c.pieces.__setitem__(mid, max(c.pieces) + 1))
    for n, new in enumerate(cases):
        rejected_by_both(new, net, f"{name} case {n}")


def test_tampered_columns_are_rejected_by_the_compiled_pass(made):
    """Changing the columns of a columnar certificate (what an engine or a loader hands over)."""
    name, net, cert = made
    d = cert.domain.dim

    def fresh() -> Certificate:
        """A copy of ``cert`` with new views of a copy of its columns (none made yet)."""
        new = copy.deepcopy(cert)
        new.regions, new.vertices, new.adjacency = views(new.regions.cx)
        return new

    def tampered(field: str, k: int, by: Fraction) -> Certificate:
        new = fresh()
        cx = new.regions.cx
        q: Rationals = getattr(cx, field)
        v = Fraction(q.num[k], q.den[k]) + by
        q.num[k], q.den[k] = v.numerator, v.denominator
        assert new.regions.pristine()  # no view was made before: the columns are the claims
        return new

    mid = cert.num_regions // 2
    m = d + 1
    n_out = cert.regions.cx.n_out
    # the witness outside the domain; the rest off by a tiny rational
    for field, k, by in (("witness", mid * d, Fraction(10)), ("vertices", 0, TINY),
                         ("outputs", mid * n_out * m + d, TINY), ("volume", mid, TINY),
                         ("rows", 0, TINY), ("planes", 0, TINY)):
        rejected_by_both(tampered(field, k, by), net, f"{name} {field}")
    # a facet's ids and a region's vertex list, in the index columns
    new = fresh()
    cx = new.regions.cx
    cx.facet_ids.flat[0] = cx.facet_ids.flat[0] + 1
    rejected_by_both(new, net)
    new = fresh()
    cx = new.regions.cx
    cx.adj_j[0] = cx.adj_j[-1] if cx.adj_j[-1] != cx.adj_j[0] else cx.adj_j[0] + 1
    rejected_by_both(new, net)
