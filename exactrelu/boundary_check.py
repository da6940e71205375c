"""Independent check of boundary complexes (:func:`exactrelu.decision_boundary`,
:func:`exactrelu.level_set`).

It imports no tracer or certifier code and none of the construction in :mod:`exactrelu.boundary`
(only its data types): from a certificate that :func:`exactrelu.check` has proved, it derives the
complex again by another route and compares every field, stopping at the first difference with a
:class:`~exactrelu.errors.CertificateError` that names the cell.

- **Regions.** ``exactrelu.check`` proves every listed facet row a constraint of its region (so
  ``closure(P)`` lies in their intersection) and every listed vertex a vertex of ``closure(P)``.
  Here the rows are shown to cut out exactly the hull of the vertices (2-D: every row is tight at
  exactly two vertices and the pairs are the ``n`` edges of the ``n``-gon; above: cddlib's exact
  H->V of the rows gives exactly the listed vertices), so ``closure(P)`` is that polytope, facets
  and vertices complete, in any dimension.
- **Labels.** Groups of identical output maps (label: the first index) or the sign of ``f - c``;
  a region is one piece when one group is largest at all its vertices (then on all of it).
- **Interior cells,** without the pieces: for every two groups whose difference changes sign on
  a region, the tie set ``closure(P) ∩ {g_a = g_b >= every g_c}`` is computed directly in its
  hyperplane; when it is (d-1)-dimensional its sides are the groups tied on all of it with the
  largest and the smallest slope across it, and it is a cell when those are ``a`` and ``b``.
- **Facet cells,** without the certificate's adjacency: every facet of every region is cut by
  the labels on its own side (for each group, the facet's part where it is largest, a tie on all
  of it going to the group that increases fastest into the region), the parts are grouped by
  exact hyperplane, and every part below a hyperplane is intersected with every part above it
  whose exact bounding box meets it (disjoint boxes: disjoint sets). Regions tile the domain, so
  each interior facet point is covered from both sides.
- Every listed cell must be one of the derived cells with the same regions, hyperplane, sides,
  vertices (and their order), halfspaces and measure, each listed once, and every derived cell
  must be listed.
- **Sides by the network.** A rational point just off each side of every cell is evaluated by
  the network itself, exactly: the step is chosen by an exact ratio test so that the point lies
  strictly inside every constraint of the region and of the side's label, and the first maximal
  output there (or the sign of ``f - c``) must be the stated label.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, NoReturn

from torch import nn

from ._deps import flint
from ._geometry import Section, affine_rank, hyperplane_section, polygon_order
from ._polyhedra import h_to_v
from .boundary import BoundaryCell, BoundaryComplex, Measure
from .capture import Program, capture
from .certificate import Certificate, canonical_hyperplane
from .check import check
from .errors import CertificateError

__all__ = ["check_boundary"]

Row = tuple[Fraction, ...]


def _fail(msg: str) -> NoReturn:
    raise CertificateError(msg)


def _at(f: Row, t: Sequence[Fraction]) -> Fraction:
    """The affine function ``f = [a_1..a_d, c]`` at ``t``."""
    acc = f[-1]
    for a, x in zip(f, t, strict=False):
        acc += a * x
    return acc


def _dot(a: Sequence[Fraction], u: Sequence[Fraction]) -> Fraction:
    return sum((x * y for x, y in zip(a, u, strict=True)), Fraction(0))


class _Reg:
    """A region's closure ``{A t <= b}`` (facet rows), vertices, label groups and pure label.

    Values of the groups and of the facet rows at the vertices are exact, as python-flint
    ``fmpq_mat`` products: ``vals[g][j]`` is group ``g`` at vertex ``j``, ``tight[i]`` the
    vertices (positions) on facet row ``i``."""

    def __init__(self, cert: Certificate, i: int, groups: list[tuple[int, Row]], vq: Any) -> None:
        r = cert.regions[i]
        d = cert.dim
        self.index = i
        self.A = [tuple(f.a) for f in r.facets]
        self.b = [f.b for f in r.facets]
        self.V = [cert.vertices[k] for k in r.vertices]
        self.groups = groups
        n = len(self.V)
        cols = [vq(k) for k in r.vertices]
        Vh = flint.fmpq_mat(d + 1, n, [c[m] for m in range(d) for c in cols] + [1] * n)
        G = flint.fmpq_mat(len(groups), d + 1, [_fq(x) for _, g in groups for x in g])
        vals = (G * Vh).entries()
        self.vals = [vals[g * n:(g + 1) * n] for g in range(len(groups))]
        R = flint.fmpq_mat(len(self.A), d + 1, [_fq(x) for a, bi in zip(self.A, self.b, strict=True)
                                                for x in (*a, -bi)])
        t = (R * Vh).entries()
        self.tight = [[j for j in range(n) if t[row * n + j] == 0] for row in range(len(self.A))]
        k = len(groups)
        self.top = next((a for a in range(k)
                         if all(self.vals[a][j] >= self.vals[c][j]
                                for c in range(k) for j in range(n))), None)

    def label(self, g: int) -> int:
        return self.groups[g][0]

    def argmax_rows(self, g: int, skip: Sequence[int] = ()) -> tuple[list[Row], list[Fraction]]:
        """``g_c - g_g <= 0`` for every other group ``c`` (not in ``skip``)."""
        fg = self.groups[g][1]
        A, b = [], []
        for c, (_, fc) in enumerate(self.groups):
            if c != g and c not in skip:
                A.append(tuple(x - y for x, y in zip(fc[:-1], fg[:-1], strict=True)))
                b.append(fg[-1] - fc[-1])
        return A, b

    def winner(self, tied: list[int], u: Sequence[Fraction]) -> int:
        """The group among ``tied`` (equal on a (d-1)-set) that is largest just off it along
        ``u``."""
        return max(tied, key=lambda c: _dot(self.groups[c][1][:-1], u))


def _fq(x: Fraction) -> flint.fmpq:
    return flint.fmpq(x.numerator, x.denominator)


def _closure_is_complete(reg: _Reg, d: int) -> None:
    """The listed facet rows cut out exactly the hull of the listed vertices.

    The rows are constraints of the region and the vertices its vertices (both proved by
    :func:`exactrelu.check`), so a row tight at d affinely independent vertices is a facet of
    their hull ``Q``. 1-D: two vertices, each on a row. 2-D: every row on exactly two vertices
    and ``n`` distinct pairs for ``n`` vertices (the ``n`` edges of the ``n``-gon ``Q``). 3-D:
    with ``F`` distinct facet vertex sets (rank-2 tight sets) of total size ``S``, Euler's
    ``n - S/2 + F = 2`` (each edge lies in two facets; a missing facet of ``k >= 3`` vertices
    adds ``k/2 - 1 > 0``). Above: cddlib's exact H->V of the rows gives exactly the vertices. Then
    the rows cut out ``Q``, which lies in the region's closure, which lies in the rows: equal.
    """
    n = len(reg.V)
    if d == 1:
        ok = n == 2 and all(reg.tight) and {j for t in reg.tight for j in t} == {0, 1}
    elif d == 2:
        pairs = {frozenset(t) for t in reg.tight}
        ok = n >= 3 and all(len(t) == 2 for t in reg.tight) and len(pairs) == n
        ok = ok and all(sum(j in p for p in pairs) == 2 for j in range(n))
    elif d == 3:
        faces = {frozenset(t) for t in reg.tight if affine_rank([reg.V[j] for j in t]) == 2}
        ok = affine_rank(reg.V) == 3 and 2 * n - sum(len(f) for f in faces) + 2 * len(faces) == 4
    else:
        vrep = h_to_v(reg.A, reg.b)
        ok = vrep.is_bounded and sorted(vrep.vertices) == sorted(reg.V)
    if not ok:
        _fail(f"region {reg.index}: its facets do not cut out the hull of its vertices "
              "(a facet or a vertex is missing)")


class _Part:
    """A (d-1)-dimensional part of a region's facet with one label on the region's side."""

    __slots__ = ("A", "_box", "b", "group", "label", "points", "reg")

    def __init__(self, reg: _Reg, label: int, group: int, A: list[Row], b: list[Fraction],
                 points: list[tuple[Fraction, ...]]) -> None:
        self.reg, self.label, self.group, self.A, self.b = reg, label, group, A, b
        self.points = points
        self._box: tuple[list[Fraction], list[Fraction]] | None = None

    def box(self) -> tuple[list[Fraction], list[Fraction]]:
        """The exact bounding box ``(lo, hi)`` of the part."""
        if self._box is None:
            d = len(self.points[0])
            self._box = ([min(p[i] for p in self.points) for i in range(d)],
                         [max(p[i] for p in self.points) for i in range(d)])
        return self._box


def _meets(p: _Part, q: _Part) -> bool:
    (a, b), (x, y) = p.box(), q.box()
    return all(a_i <= y_i and x_i <= b_i for a_i, b_i, x_i, y_i in zip(a, b, x, y, strict=True))


def _hkey(a: Sequence[Fraction], b: Fraction) -> tuple[tuple, int]:
    """``((a', b'), side)``: the hyperplane ``a . t = b`` scaled so that the first non-zero
    entry of ``a'`` is 1 (exact ``fmpq``, hashable), ``side`` the sign of that entry in ``a``."""
    q = [_fq(x) for x in a] + [_fq(b)]
    i = next(j for j, v in enumerate(q) if v != 0)
    s = q[i]
    return (tuple(x / s for x in q[:-1]), q[-1] / s), (1 if s > 0 else -1)


def _fraction_key(key: tuple) -> tuple:
    return (tuple(Fraction(int(x.p), int(x.q)) for x in key[0]),
            Fraction(int(key[1].p), int(key[1].q)))


def _vanishes_on(f: Row, key: tuple) -> bool:
    normal, offset = key
    i = next(j for j, v in enumerate(normal) if v != 0)
    lam = f[i] / normal[i]
    return all(x == lam * y for x, y in zip(f[:-1], normal, strict=True)) and f[-1] == -lam * offset


def _facet_parts(reg: _Reg, row: int, side: int, key: tuple) -> list[_Part]:
    """The parts of facet ``row`` of ``reg`` by the label just inside the region."""
    if reg.top is not None:
        pts = [reg.V[j] for j in reg.tight[row]]
        return [_Part(reg, reg.label(reg.top), reg.top, reg.A, reg.b, pts)]
    inward = [-side * x for x in key[0]]
    on = reg.tight[row]
    vals = reg.vals
    out = []
    for g in range(len(reg.groups)):
        if any(all(vals[c][j] >= vals[g][j] for j in on)
               and any(vals[c][j] > vals[g][j] for j in on)
               for c in range(len(reg.groups))):
            continue  # below another group on the whole facet, strictly somewhere: no (d-1)-part
        Ag, bg = reg.argmax_rows(g)
        sec = hyperplane_section(reg.A + Ag, reg.b + bg, *key)
        if sec is None:
            continue
        fg = reg.groups[g][1]
        tied = [c for c, (_, fc) in enumerate(reg.groups)
                if all(_at(fc, v) == _at(fg, v) for v in sec.vertices)]
        if reg.winner(tied, inward) == g:
            out.append(_Part(reg, reg.label(g), g, reg.A + Ag, reg.b + bg, sec.vertices))
    return out


_Expected = tuple[tuple, tuple, Section]  # key, sides, section


def _derive(cert: Certificate, regs: list[_Reg], level: bool) -> dict[tuple, _Expected]:
    """Every cell of the complex: ``(regions, frozenset of vertices) -> (key, sides, section)``."""
    d = cert.dim
    out: dict[tuple, _Expected] = {}

    def add(regions: tuple[int, ...], key: tuple, sides: tuple, sec: Section) -> None:
        out[(regions, frozenset(sec.vertices))] = (key, sides, sec)

    for reg in regs:
        if reg.top is not None:
            continue
        n = len(reg.groups)
        for a in range(n):
            for b in range(a + 1, n):
                diff = [x - y for x, y in zip(reg.vals[a], reg.vals[b], strict=True)]
                if not (min(diff) < 0 < max(diff)):
                    continue
                fa, fb = reg.groups[a][1], reg.groups[b][1]
                h = [x - y for x, y in zip(fa, fb, strict=True)]
                key, _ = canonical_hyperplane(h[:-1], -h[-1])
                Ag, bg = reg.argmax_rows(a, skip=(b,))
                sec = hyperplane_section(reg.A + Ag, reg.b + bg, *key)
                if sec is None:
                    continue
                tied = [c for c, (_, fc) in enumerate(reg.groups)
                        if all(_at(fc, v) == _at(fa, v) for v in sec.vertices)]
                up = reg.winner(tied, key[0])
                down = reg.winner(tied, [-x for x in key[0]])
                if {up, down} == {a, b}:
                    add((reg.index,), key, (reg.label(down), reg.label(up)), sec)
    dom_A, dom_b = cert.domain.halfspaces()
    dom_keys = {_hkey(a, bi) for a, bi in zip(dom_A, dom_b, strict=True)}
    on_key: dict[tuple, tuple[list, list]] = {}
    for reg in regs:
        for row, (ra, rb) in enumerate(zip(reg.A, reg.b, strict=True)):
            hk, side = _hkey(ra, rb)
            if (hk, side) in dom_keys:
                if level and reg.top is not None and reg.label(reg.top) != 0:
                    key = _fraction_key(hk)
                    if _vanishes_on(reg.groups[reg.top][1], key):
                        sec = hyperplane_section(reg.A, reg.b, *key)
                        if sec is not None:
                            lab = reg.label(reg.top)
                            add((reg.index,), key, (lab, None) if side > 0 else (None, lab), sec)
                continue
            on_key.setdefault(hk, ([], []))[0 if side > 0 else 1].append((reg, row))
    for hk, (low_facets, high_facets) in on_key.items():
        if not low_facets or not high_facets:
            reg, row = (low_facets or high_facets)[0]
            _fail(f"region {reg.index}: its facet {row} is inside the domain but no region lies "
                  "on its other side")
        if all(reg.top is not None for reg, _ in low_facets + high_facets):
            labels = {reg.label(reg.top) for reg, _ in low_facets + high_facets}
            if len(labels) == 1 and not (level and 0 not in labels and _vanishes_on(
                    low_facets[0][0].groups[low_facets[0][0].top][1], _fraction_key(hk))):
                continue  # one label on both sides of the hyperplane and no level set on it
        key = _fraction_key(hk)
        lows = [p for reg, row in low_facets for p in _facet_parts(reg, row, 1, key)]
        highs = [p for reg, row in high_facets for p in _facet_parts(reg, row, -1, key)]
        j = next(i for i, v in enumerate(key[0]) if v != 0)
        axis = (j + 1) % d if d > 1 else 0
        events = sorted([(p.box()[0][axis], 0, n) for n, p in enumerate(lows)]
                        + [(q.box()[0][axis], 1, n) for n, q in enumerate(highs)])
        active: tuple[list[int], list[int]] = ([], [])
        for lo, which, n in events:
            me = (lows if which == 0 else highs)[n]
            others = highs if which == 0 else lows
            live = [m for m in active[1 - which] if others[m].box()[1][axis] >= lo]
            active[1 - which][:] = live
            active[which].append(n)
            for m in live:
                p, q = (me, others[m]) if which == 0 else (others[m], me)
                touching = level and p.label == q.label != 0 \
                    and _vanishes_on(p.reg.groups[p.group][1], key)
                if (p.label == q.label and not touching) or not _meets(p, q):
                    continue
                sec = hyperplane_section(p.A + q.A, p.b + q.b, *key)
                if sec is not None:
                    add((p.reg.index, q.reg.index), key, (p.label, q.label), sec)
    return out


def _same_cycle(listed: Sequence[tuple], exact: Sequence[tuple]) -> bool:
    """Whether ``listed`` is ``exact`` read from some start, in either direction."""
    n = len(exact)
    if len(listed) != n or not n:
        return len(listed) == n
    if listed[0] not in exact:
        return False
    s = exact.index(listed[0])
    fwd = [exact[(s + i) % n] for i in range(n)]
    back = [exact[(s - i) % n] for i in range(n)]
    return list(listed) in (fwd, back)


def _check_types(bd: BoundaryComplex, cert: Certificate) -> None:
    d = cert.dim

    def rational(x: Any) -> bool:
        return isinstance(x, Fraction)

    def point(p: Any) -> bool:
        return isinstance(p, tuple) and len(p) == d and all(map(rational, p))

    for n, c in enumerate(bd.cells):
        where = f"cell {n}"
        if not isinstance(c, BoundaryCell):
            _fail(f"{where}: not a BoundaryCell")
        if (not isinstance(c.regions, tuple) or len(c.regions) not in (1, 2)
                or not all(isinstance(i, int) and not isinstance(i, bool)
                           and 0 <= i < cert.num_regions for i in c.regions)):
            _fail(f"{where}: regions {c.regions!r} are not one or two region indices")
        if not point(c.normal) or not rational(c.offset):
            _fail(f"{where}: the hyperplane is not {d} rational coefficients and a rational offset")
        if not isinstance(c.sides, tuple) or len(c.sides) != 2 or not all(
                s is None or (isinstance(s, int) and not isinstance(s, bool)) for s in c.sides):
            _fail(f"{where}: sides {c.sides!r} are not two labels")
        if not isinstance(c.vertices, tuple) or not c.vertices or not all(map(point, c.vertices)):
            _fail(f"{where}: vertices are not a tuple of exact {d}-D points")
        if not isinstance(c.halfspaces, tuple) or not all(
                isinstance(h, tuple) and len(h) == 2 and point(h[0]) and rational(h[1])
                for h in c.halfspaces):
            _fail(f"{where}: halfspaces are not pairs (exact normal, exact offset)")
        if not isinstance(c.measure, Measure):
            _fail(f"{where}: measure is not a Measure")


def _step_inside(A: list[Row], b: list[Fraction], p: Sequence[Fraction],
                 u: Sequence[Fraction]) -> Fraction | None:
    """An exact ``e > 0`` with ``p + e u`` strictly inside every row, or ``None`` if a row tight at
    ``p`` does not decrease along ``u``."""
    best: Fraction | None = None
    for a, bi in zip(A, b, strict=True):
        slack = bi - _dot(a, p)
        rate = _dot(a, u)
        if slack < 0 or (slack == 0 and rate >= 0):
            return None
        if rate > 0:
            best = slack / rate if best is None else min(best, slack / rate)
    return Fraction(1) if best is None else best / 2


def _check_sides(n: int, c: BoundaryCell, regs: list[_Reg], prog: Program, cert: Certificate,
                 bd: BoundaryComplex) -> None:
    d = cert.dim
    M, c0 = cert.domain.input_map()
    p = tuple(sum((v[i] for v in c.vertices), Fraction(0)) / len(c.vertices) for i in range(d))
    owners = (c.regions[0], c.regions[-1])
    for s, (label, sign) in enumerate(zip(c.sides, (-1, 1), strict=True)):
        if label is None:
            continue
        reg = regs[owners[s]]
        g = next((k for k, (lab, _) in enumerate(reg.groups) if lab == label), None)
        if g is None:
            _fail(f"cell {n}: region {reg.index} has no output group labelled {label}")
        Ag, bg = reg.argmax_rows(g)
        u = [sign * x for x in c.normal]
        e = _step_inside(reg.A + Ag, reg.b + bg, p, u)
        if e is None:
            _fail(f"cell {n}: just off its {'lower' if s == 0 else 'upper'} side the label is not "
                  f"{label} (region {reg.index})")
        q = [x + e * y for x, y in zip(p, u, strict=True)]
        x = [sum((m * t for m, t in zip(row, q, strict=True)), Fraction(0)) + ci
             for row, ci in zip(M, c0, strict=True)]
        out = prog.exact_forward(x)
        if bd.kind == "decision":
            got = max(range(len(out)), key=lambda i: (out[i], -i))
        else:
            if bd.output is None or bd.value is None:  # checked by check_boundary already
                _fail("a level set needs an output and a value")
            v = out[bd.output] - bd.value
            got = (v > 0) - (v < 0)
        if got != label:
            _fail(f"cell {n}: the network gives label {got}, not {label}, at the exact point {q} "
                  f"just off its {'lower' if s == 0 else 'upper'} side")


def check_boundary(boundary: BoundaryComplex, cert: Certificate, net: nn.Module | Program, *,
                   certificate_checked: bool = False) -> BoundaryComplex:
    """Re-verify a decision boundary or level set of ``cert`` against ``net``; returns it or
    raises :class:`~exactrelu.errors.CertificateError` naming the first wrong field.

    The certificate itself is checked first with :func:`exactrelu.check` unless
    ``certificate_checked=True`` says it already was (against the same ``net``).

    >>> import torch, exactrelu
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    >>> cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    >>> b = exactrelu.decision_boundary(cert)
    >>> check_boundary(b, cert, net) is b
    True
    """
    if not isinstance(boundary, BoundaryComplex):
        _fail(f"check_boundary takes a BoundaryComplex, got {type(boundary).__name__}")
    if not isinstance(cert, Certificate):
        cert = Certificate.load(cert)
    if not certificate_checked:
        check(cert, net)
    prog = net if isinstance(net, Program) else capture(net, cert.input_shape)
    if prog.digest() != cert.digest:
        _fail("network digest: the certificate was made for a different network")
    if boundary.digest != cert.digest:
        _fail("digest: the boundary was made from another certificate")
    if not cert.domain.is_bounded:
        _fail("check_boundary needs a bounded domain")
    d = cert.dim
    k = math.prod(cert.output_shape)
    if boundary.dim != d:
        _fail(f"dim: the boundary says {boundary.dim}, the certificate's domain has {d}")
    if boundary.num_outputs != k:
        _fail(f"num_outputs: the boundary says {boundary.num_outputs}, the network has {k}")
    if boundary.kind == "decision":
        if k < 2 or boundary.output is not None or boundary.value is not None \
                or boundary.flat_regions != ():
            _fail("a decision boundary has no output, value or flat regions, and needs two or "
                  "more outputs")

        def groups_of(i: int) -> list[tuple[int, Row]]:
            return _decision_groups(cert, i)
    elif boundary.kind == "level":
        out, value = boundary.output, boundary.value
        if isinstance(out, bool) or not isinstance(out, int) or not 0 <= out < k:
            _fail(f"output: {out!r} is not an output index below {k}")
        if not isinstance(value, Fraction):
            _fail(f"value: {value!r} is not an exact rational")

        def groups_of(i: int) -> list[tuple[int, Row]]:
            f = (*cert.regions[i].output[out][:-1], cert.regions[i].output[out][-1] - value)
            return [(0, f)] if not any(f) else [(-1, tuple(-x for x in f)), (1, f)]
    else:
        _fail(f"kind: {boundary.kind!r} is neither 'decision' nor 'level'")
    if not isinstance(boundary.cells, tuple):
        _fail("cells: not a tuple")
    _check_types(boundary, cert)
    vq = functools.cache(lambda k: tuple(map(_fq, cert.vertices[k])))  # exact fmpq vertices
    regs = []
    for i in range(cert.num_regions):
        reg = _Reg(cert, i, groups_of(i), vq)
        _closure_is_complete(reg, d)
        regs.append(reg)
    if boundary.kind == "level":
        flat = tuple(reg.index for reg in regs if reg.groups[0][0] == 0)
        if boundary.flat_regions != flat:
            _fail(f"flat_regions: the output equals the value identically on regions {list(flat)}, "
                  f"not {list(boundary.flat_regions)}")
    expected = _derive(cert, regs, boundary.kind == "level")
    matched = set()
    for n, c in enumerate(boundary.cells):
        where = f"cell {n}"
        ident = (c.regions, frozenset(c.vertices))
        got = expected.get(ident)
        if got is None:
            near = [v for (regions, _), v in expected.items() if regions == c.regions]
            if not near:
                _fail(f"{where}: regions {list(c.regions)} carry no cell of the boundary")
            _fail(f"{where}: its vertices are not those of a cell of the boundary in regions "
                  f"{list(c.regions)}")
        if ident in matched:
            _fail(f"{where}: listed twice")
        matched.add(ident)
        key, sides, sec = got
        if (c.normal, c.offset) != key:
            _fail(f"{where}: it lies on the hyperplane {key}, not on the stated one")
        if len(set(c.vertices)) != len(c.vertices):
            _fail(f"{where}: a vertex is listed twice")
        if d == 3:
            k0 = sec.chart
            flat_v = {tuple(v[i] for i in range(3) if i != k0): v for v in sec.vertices}
            cyc = [flat_v[q] for q in polygon_order(list(flat_v))]
            if not _same_cycle(c.vertices, cyc):
                _fail(f"{where}: its vertices are not in cyclic order")
        elif list(c.vertices) != sorted(c.vertices):
            _fail(f"{where}: its vertices are not sorted")
        if c.sides != sides:
            _fail(f"{where}: sides {c.sides} differ from the labels {sides} on its two sides")
        if c.halfspaces != tuple(sec.halfspaces):
            _fail(f"{where}: halfspaces differ from the cell's facets within its hyperplane")
        if c.measure != Measure.of_section(sec, key[0]):
            _fail(f"{where}: measure {c.measure} differs from the exact measure "
                  f"{Measure.of_section(sec, key[0])}")
    missing = [ident for ident in expected if ident not in matched]
    if missing:
        regions, verts = missing[0]
        _fail(f"missing cell: the boundary has a cell in regions {list(regions)} with vertices "
              f"{sorted(verts)} that is not listed ({len(missing)} missing)")
    for n, c in enumerate(boundary.cells):
        _check_sides(n, c, regs, prog, cert, boundary)
    return boundary


def _decision_groups(cert: Certificate, i: int) -> list[tuple[int, Row]]:
    first: dict[Row, int] = {}
    for j, row in enumerate(cert.regions[i].output):
        first.setdefault(tuple(row), j)
    return [(j, row) for row, j in first.items()]
