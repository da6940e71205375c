"""Decision boundaries and level sets of certified networks, as exact polyhedral complexes.

Inside a certified region every output is an exact affine map, so the region is cut into convex
*pieces* by which output is largest (or by the sign of ``f - c``), and the label changes only on
(d-1)-dimensional convex polytopes: pieces of a hyperplane inside one region, and pieces of a
facet between two regions whose labels differ across it. This module lists them exactly.

Definitions (what :func:`decision_boundary`, :func:`level_set` and the checker
:func:`exactrelu.check_boundary` agree on):

- **Class** at a point: the first maximal output (the rule of ``torch.argmax``).
- **Class pieces** of a region ``P``: outputs that are the same affine map on ``P`` form one group,
  labelled by its first output index (so a tie on a whole region goes to the first class); group
  ``a``'s piece is ``closure(P) ∩ {g_a >= g_b for every group b}``, kept when it is
  d-dimensional.
- **Decision region** of class ``c``: the union of the class pieces labelled ``c``, which is the
  closure of the interior of ``{x : class(x) = c}``. A class that wins only on a lower-dimensional
  set (two outputs touching along a line while a third wins on both sides) has no piece there.
- **Decision boundary**: the union of the pairwise intersections of decision regions of different
  classes. Its cells are the (d-1)-dimensional intersections of two class pieces with different
  labels: inside one region (a face of its argmax subdivision, ``kind == "interior"``) or on a
  facet between two regions (``kind == "facet"``, listed once, for the pair of regions). Each
  cell carries the label on each side of its hyperplane.
- **Level set** of output ``f`` at ``c``: the same construction with the pieces
  ``closure(P) ∩ {f <= c}`` (label -1) and ``closure(P) ∩ {f >= c}`` (label +1); a region where
  ``f = c`` identically is one piece of label 0 and is listed in ``flat_regions``. Cells are the
  (d-1)-dimensional places where the label changes, and also the region facets (between two
  regions or on the domain's boundary, ``kind == "domain"``, outside side ``None``) on which
  ``f = c`` while ``f - c`` keeps one sign next to them. Points where ``f`` meets ``c`` only along a
  lower-dimensional set are not cells.

Every cell lies on the hyperplane ``normal . t = offset`` (``normal``'s first non-zero entry is 1),
``sides`` is ``(label where normal . t < offset, label where normal . t > offset)``; its exact
vertices and non-redundant halfspaces come from cddlib's exact H->V in the hyperplane
(:func:`exactrelu._geometry.hyperplane_section`); its (d-1)-measure is exact, as a sum of
rational multiples of square roots (:class:`Measure`; the number of points when d = 1).

Domains must be bounded (cells are polytopes).

>>> import torch, exactrelu
>>> net = torch.nn.Sequential(torch.nn.Linear(2, 2))   # class 1 where y > x
>>> with torch.no_grad(): _ = net[0].weight.copy_(torch.tensor([[1., 0.], [0., 1.]]))
>>> with torch.no_grad(): _ = net[0].bias.zero_()
>>> b = decision_boundary(exactrelu.verify(net, [(0, 1), (0, 1)], progress=False))
>>> [(c.sides, c.vertices) for c in b.cells]
[((1, 0), ((Fraction(0, 1), Fraction(0, 1)), (Fraction(1, 1), Fraction(1, 1))))]
>>> str(b.measure())
'sqrt(2)'
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from ._geometry import (
    Section,
    affine_rank,
    float_signs,
    hyperplane_section,
    nearest_floats,
    polygon_order,
)
from ._polyhedra import h_to_v
from .certificate import Certificate, Region, canonical_hyperplane
from .domain import to_fraction
from .errors import CertificateError, InvalidInputError

__all__ = ["Measure", "BoundaryCell", "BoundaryComplex", "ClassCell", "decision_boundary",
           "level_set", "class_cells"]

Point = tuple[Fraction, ...]
Halfspace = tuple[tuple[Fraction, ...], Fraction]


# ------------------------------------------------------------------------------------ measures
_SMALL_PRIMES = [p for p in range(2, 1000) if all(p % q for q in range(2, math.isqrt(p) + 1))]


def _square_part(r: int) -> tuple[int, int]:
    """``(s, r')`` with ``r == s * s * r'``: square factors of primes below 1000 and a remaining
    perfect square moved into ``s`` (``r'`` is squarefree unless it has a repeated prime factor
    above 1000)."""
    s = 1
    for p in _SMALL_PRIMES:
        if p * p > r:
            break
        while r % (p * p) == 0:
            r //= p * p
            s *= p
    root = math.isqrt(r)
    if root * root == r:
        return s * root, 1
    return s, r


@dataclass(frozen=True)
class Measure:
    """An exact non-negative real ``sum(coef * sqrt(radicand))``: the (d-1)-measure of cells.

    ``terms`` holds ``(radicand, coef)`` pairs sorted by radicand, each coefficient positive and
    each radicand without square factors of primes below 1000 (lengths in 2-D, areas in 3-D,
    and so on; in 1-D a cell is a point of measure 1). Equal terms mean equal numbers; distinct
    radicands are rationally independent square roots unless one has a repeated prime factor
    above 1000 (normals with such entries are rare; the sum is still exact). ``float(m)`` and
    :meth:`sympy` give its value.

    >>> from fractions import Fraction as F
    >>> m = Measure(((1, F(2)), (2, F(1, 2))))
    >>> str(m), round(float(m), 6)
    ('2 + 1/2*sqrt(2)', 2.707107)
    """

    terms: tuple[tuple[int, Fraction], ...] = ()

    @staticmethod
    def of_section(section: Section, normal: Sequence[Fraction]) -> Measure:
        """The (d-1)-measure of a section of the hyperplane with this normal:
        ``projected_volume * |n| / |n[chart]|``, with ``n`` the primitive integer normal."""
        den = math.lcm(*(Fraction(v).denominator for v in normal))
        ints = [int(Fraction(v) * den) for v in normal]
        g = math.gcd(*ints)
        m = [v // g for v in ints]
        s, r = _square_part(sum(v * v for v in m))
        coef = section.projected_volume * s / abs(m[section.chart])
        return Measure(((r, coef),) if coef else ())

    def __add__(self, other: Measure) -> Measure:
        acc: dict[int, Fraction] = dict(self.terms)
        for r, c in other.terms:
            acc[r] = acc.get(r, Fraction(0)) + c
        return Measure(tuple(sorted((r, c) for r, c in acc.items() if c)))

    def __float__(self) -> float:
        total = 0.0
        for r, c in self.terms:
            total += math.exp(math.log(c.numerator) - math.log(c.denominator) + 0.5 * math.log(r))
        return total

    @property
    def rational(self) -> Fraction | None:
        """The value when it is rational (no square root left), else ``None``."""
        if not self.terms:
            return Fraction(0)
        if len(self.terms) == 1 and self.terms[0][0] == 1:
            return self.terms[0][1]
        return None

    def sympy(self) -> Any:
        """The value as an exact sympy expression (sympy is an optional dependency)."""
        import sympy

        return sum((sympy.Rational(c.numerator, c.denominator) * sympy.sqrt(sympy.Integer(r))
                    for r, c in self.terms), sympy.Integer(0))

    def __str__(self) -> str:
        if not self.terms:
            return "0"
        parts = []
        for r, c in self.terms:
            if r == 1:
                parts.append(str(c))
            else:
                parts.append(f"sqrt({r})" if c == 1 else f"{c}*sqrt({r})")
        return " + ".join(parts)


# ------------------------------------------------------------------------------------ results
@dataclass(frozen=True)
class BoundaryCell:
    """One (d-1)-dimensional convex cell of a boundary complex.

    ``regions``: the region it lies in (``kind == "interior"``), the two regions whose common
    facet it is a piece of (below, above: ``"facet"``) or the region whose facet on the domain's
    boundary it is (``"domain"``). ``sides``: the label on the side ``normal . t < offset`` and on
    the side ``normal . t > offset`` (a class; for a level set the sign of ``f - c``, 0 on a flat
    region; ``None`` outside the domain). ``vertices``: exact, the two ends of a segment in 2-D
    (sorted), a polygon in cyclic order in 3-D, sorted otherwise. ``halfspaces``: the cell's
    facets within its hyperplane (see :class:`~exactrelu._geometry.Section`).
    """

    regions: tuple[int, ...]
    normal: tuple[Fraction, ...]
    offset: Fraction
    sides: tuple[int | None, int | None]
    vertices: tuple[Point, ...]
    halfspaces: tuple[Halfspace, ...]
    measure: Measure

    @property
    def kind(self) -> str:
        if len(self.regions) == 2:
            return "facet"
        return "domain" if None in self.sides else "interior"


@dataclass(frozen=True)
class BoundaryComplex:
    """The decision boundary (``kind == "decision"``) or a level set (``"level"``, of output
    ``output`` at ``value``) of a certificate, as exact (d-1)-dimensional cells. ``digest`` is the
    certified network's; ``flat_regions`` (level sets) the regions where the output equals
    ``value`` identically. Check it with :func:`exactrelu.check_boundary`."""

    kind: str
    dim: int
    digest: str
    num_outputs: int
    cells: tuple[BoundaryCell, ...]
    output: int | None = None
    value: Fraction | None = None
    flat_regions: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.cells)

    def __iter__(self) -> Iterator[BoundaryCell]:
        return iter(self.cells)

    def measure(self) -> Measure:
        """The exact total (d-1)-measure (length in 2-D, area in 3-D, points in 1-D)."""
        total = Measure()
        for c in self.cells:
            total = total + c.measure
        return total

    def segments(self) -> list[tuple[Point, Point]]:
        """2-D: every cell as its two exact end points."""
        if self.dim != 2:
            raise InvalidInputError(f"segments() is for 2-D boundaries; this one has dimension "
                                    f"{self.dim}")
        return [(c.vertices[0], c.vertices[1]) for c in self.cells]

    def polygons(self) -> list[tuple[Point, ...]]:
        """3-D: every cell as its exact vertices in cyclic order."""
        if self.dim != 3:
            raise InvalidInputError(f"polygons() is for 3-D boundaries; this one has dimension "
                                    f"{self.dim}")
        return [c.vertices for c in self.cells]


@dataclass(frozen=True)
class ClassCell:
    """A class piece of a region: exact vertices (2-D: counter-clockwise) and its label."""

    region: int
    label: int
    vertices: tuple[Point, ...]


# ------------------------------------------------------------------------------------ pieces
def _value(row: Sequence[Fraction], t: Sequence[Fraction]) -> Fraction:
    return sum((a * x for a, x in zip(row, t, strict=False)), Fraction(0)) + row[-1]


@dataclass
class _Piece:
    """A d-dimensional convex piece ``{A t <= b}`` of a region: rows of the region first.
    ``incidence`` (rows tight at each vertex) is ``None`` for a whole region (then computed per
    row when asked)."""

    region: int
    label: int
    group: int
    A: list[tuple[Fraction, ...]]
    b: list[Fraction]
    vertices: list[Point]
    incidence: list[frozenset[int]] | None

    def face(self, row: int) -> list[Point]:
        """The vertices on row ``row`` (exactly)."""
        if self.incidence is None:
            a, bi = self.A[row], self.b[row]
            return [v for v in self.vertices
                    if sum((x * y for x, y in zip(a, v, strict=True)), Fraction(0)) == bi]
        return [v for v, inc in zip(self.vertices, self.incidence, strict=True) if row in inc]


def _pair_signs(groups: list[tuple[int, tuple[Fraction, ...]]], V: list[Point], X: np.ndarray
                ) -> dict[tuple[int, int], np.ndarray]:
    """Exact signs of ``g_a - g_c`` (``a < c``) at the vertices ``V``: the float filter of
    :func:`~exactrelu._geometry.float_signs` (``X``: the vertices' nearest floats as columns, a
    row of ones below) on the differences scaled to integers, exact where it does not decide."""
    pairs = [(a, c) for a in range(len(groups)) for c in range(a + 1, len(groups))]
    if not pairs:
        return {}
    den = math.lcm(*(x.denominator for _, g in groups for x in g))
    ints = [[x.numerator * (den // x.denominator) for x in g] for _, g in groups]
    rows = [[x - y for x, y in zip(ints[a], ints[c], strict=True)] for a, c in pairs]
    F = nearest_floats(rows)
    signs, decided = float_signs(F, np.abs(F), X)
    for i, j in zip(*np.nonzero(~decided), strict=True):
        v = _value(rows[i], V[j])
        signs[i, j] = (v > 0) - (v < 0)
    return {pair: signs[n] for n, pair in enumerate(pairs)}


class _Analysed:
    """A region, its label functions (groups: ``(label, row [a_1..a_d, c])``) and its pieces:
    one, the whole region, when one group is largest at every vertex (``pure``), else the
    d-dimensional pieces ``{g_a >= g_c for every c}`` by cddlib."""

    def __init__(self, cert: Certificate, r: Region, groups: list[tuple[int, tuple[Fraction, ...]]],
                 Vf: np.ndarray) -> None:
        d = cert.dim
        self.region = r
        self.groups = groups
        self.A = [tuple(f.a) for f in r.facets]
        self.b = [f.b for f in r.facets]
        self.vertices = V = [cert.vertices[k] for k in r.vertices]
        X = np.concatenate([Vf[r.vertices].T, np.ones((1, len(V)))], axis=0)
        self.signs = sg = _pair_signs(groups, V, X)
        n = len(groups)

        def dominates(a: int, c: int) -> bool:
            return a == c or bool((sg[(a, c)] >= 0).all() if a < c else (sg[(c, a)] <= 0).all())

        top = [a for a in range(n) if all(dominates(a, c) for c in range(n))]
        self.pure = bool(top)
        if top:
            self.pieces = [_Piece(r.index, groups[top[0]][0], top[0], self.A, self.b, V, None)]
            return
        self.pieces = []
        for a in range(n):
            if any(dominates(c, a) for c in range(n) if c != a):
                continue  # g_c >= g_a on the region: a's piece is not d-dimensional
            ga = groups[a][1]
            extra_A = [tuple(x - y for x, y in zip(groups[c][1][:-1], ga[:-1], strict=True))
                       for c in range(n) if c != a]
            extra_b = [ga[-1] - groups[c][1][-1] for c in range(n) if c != a]
            vrep = h_to_v(self.A + extra_A, self.b + extra_b)
            if affine_rank(vrep.vertices) == d:
                self.pieces.append(_Piece(r.index, groups[a][0], a, self.A + extra_A,
                                          self.b + extra_b, vrep.vertices,
                                          list(vrep.incidence)))

    @functools.cached_property
    def facet_of(self) -> dict[tuple, tuple[int, int]]:
        """Canonical hyperplane key -> (facet row, side) of the region's facets."""
        out: dict[tuple, tuple[int, int]] = {}
        for i, f in enumerate(self.region.facets):
            key, side = canonical_hyperplane(f.a, f.b)
            out.setdefault(key, (i, side))
        return out


def _decision_groups(r: Region) -> list[tuple[int, tuple[Fraction, ...]]]:
    out: list[tuple[int, tuple[Fraction, ...]]] = []
    for i, row in enumerate(r.output):
        t = tuple(row)
        if all(t != g for _, g in out):
            out.append((i, t))
    return out


def _level_groups(r: Region, output: int,
                  value: Fraction) -> list[tuple[int, tuple[Fraction, ...]]]:
    row = (*r.output[output][:-1], r.output[output][-1] - value)
    if not any(row):
        return [(0, row)]
    return [(-1, tuple(-v for v in row)), (1, row)]


def _analyse_all(cert: Certificate, groups_of: Any) -> list[_Analysed]:
    Vf = nearest_floats(cert.vertices)
    return [_Analysed(cert, r, groups_of(r), Vf) for r in cert.regions]


def _need_bounded(cert: Certificate, what: str) -> None:
    if not isinstance(cert, Certificate):
        raise InvalidInputError(f"{what} takes a Certificate, got {type(cert).__name__}")
    if not cert.domain.is_bounded:
        raise InvalidInputError(f"{what} needs a bounded domain (cells are polytopes); certify on "
                                f"a box or polytope instead of {cert.domain!r}")


# ------------------------------------------------------------------------------------ cells
def _cell(regions: tuple[int, ...], key: tuple, sides: tuple[int | None, int | None],
          A: list, b: list) -> BoundaryCell | None:
    normal, offset = key
    sec = hyperplane_section(A, b, normal, offset)
    if sec is None:
        return None
    verts = sec.vertices
    if len(normal) == 3:
        k = sec.chart
        flat = {tuple(v[i] for i in range(3) if i != k): v for v in verts}
        verts = [flat[p] for p in polygon_order(list(flat))]
    else:
        verts = sorted(verts)
    return BoundaryCell(regions, tuple(normal), offset, sides, tuple(verts), tuple(sec.halfspaces),
                        Measure.of_section(sec, normal))


def _box_overlap(p: list[Point], q: list[Point]) -> bool:
    return all(min(u[i] for u in p) <= max(v[i] for v in q)
               and min(v[i] for v in q) <= max(u[i] for u in p)
               for i in range(len(p[0])))


def _vanishes_on(row: tuple[Fraction, ...], key: tuple) -> bool:
    """Whether the affine function ``row`` is zero on the whole hyperplane ``key``."""
    normal, offset = key
    i = next(j for j, v in enumerate(normal) if v != 0)
    lam = row[i] / normal[i]
    return all(x == lam * y for x, y in zip(row[:-1], normal, strict=True)) \
        and row[-1] == -lam * offset


def _side_pieces(reg: _Analysed, row: int, d: int) -> list[tuple[_Piece, list[Point]]]:
    out = []
    for p in reg.pieces:
        face = p.face(row)
        if affine_rank(face) == d - 1:
            out.append((p, face))
    return out


def _interior_cells(reg: _Analysed) -> list[BoundaryCell]:
    out = []
    ps = reg.pieces
    for i in range(len(ps)):
        for j in range(i + 1, len(ps)):
            gi, gj = ps[i].group, ps[j].group
            sg = reg.signs[(gi, gj)] if gi < gj else -reg.signs[(gj, gi)]
            if not (sg.max() > 0 > sg.min()):
                continue  # g_i - g_j keeps one sign on the region: they meet on no interior cell
            h = tuple(x - y for x, y in zip(reg.groups[gi][1], reg.groups[gj][1], strict=True))
            key, side = canonical_hyperplane(h[:-1], -h[-1])
            # normal . t - offset has the sign of side * h: label i lies above when side > 0
            sides = (ps[j].label, ps[i].label) if side > 0 else (ps[i].label, ps[j].label)
            cell = _cell((reg.region.index,), key, sides, ps[i].A, ps[i].b)
            if cell is not None:
                out.append(cell)
    return out


def _complex(cert: Certificate, groups_of: Any,
             kind: str) -> tuple[list[BoundaryCell], list[_Analysed]]:
    d = cert.dim
    regs = _analyse_all(cert, groups_of)
    level = kind == "level"
    cells: list[BoundaryCell] = []
    for reg in regs:
        if not reg.pure:
            cells += _interior_cells(reg)
    for adj in cert.adjacency:
        key = (tuple(adj.a), adj.b)
        ri, rj = regs[adj.i], regs[adj.j]
        if ri.pure and rj.pure and ri.pieces[0].label == rj.pieces[0].label and not (
                level and ri.pieces[0].label != 0 and _vanishes_on(ri.groups[0][1], key)):
            continue  # one label on both sides (and for a level set, f - c is not zero between)
        if key not in ri.facet_of or key not in rj.facet_of:
            raise CertificateError(f"adjacency ({adj.i}, {adj.j}): a region has no facet on its "
                                   "hyperplane")
        lo, hi = (ri, rj) if ri.facet_of[key][1] > 0 else (rj, ri)
        below = _side_pieces(lo, lo.facet_of[key][0], d)
        above = _side_pieces(hi, hi.facet_of[key][0], d)
        for p, fp in below:
            for q, fq in above:
                touching = (level and p.label == q.label != 0
                            and _vanishes_on(lo.groups[p.group][1], key))
                if (p.label == q.label and not touching) or not _box_overlap(fp, fq):
                    continue
                cell = _cell((lo.region.index, hi.region.index), key, (p.label, q.label),
                             p.A + q.A, p.b + q.b)
                if cell is not None:
                    cells.append(cell)
    if level:
        n_dom = cert.constraint_offsets[0]
        for reg in regs:
            if not reg.pure or reg.pieces[0].label == 0:
                continue
            p = reg.pieces[0]
            for f in reg.region.facets:
                key, side = canonical_hyperplane(f.a, f.b)
                if min(f.ids) < n_dom and _vanishes_on(reg.groups[p.group][1], key):
                    cell = _cell((reg.region.index,), key,
                                 (p.label, None) if side > 0 else (None, p.label), p.A, p.b)
                    if cell is not None:
                        cells.append(cell)
    return cells, regs


def decision_boundary(cert: Certificate) -> BoundaryComplex:
    """The exact decision boundary of a classifier's certificate (two or more outputs).

    See the module docstring for the definitions; check the result with
    :func:`exactrelu.check_boundary`.
    """
    _need_bounded(cert, "decision_boundary")
    k = math.prod(cert.output_shape)
    if k < 2:
        raise InvalidInputError(f"decision_boundary needs two or more outputs; this network has "
                                f"{k} (use level_set for a scalar output)")
    cells, _ = _complex(cert, _decision_groups, "decision")
    return BoundaryComplex("decision", cert.dim, cert.digest, k, tuple(cells))


def level_set(cert: Certificate, value: Any = 0, *, output: int = 0) -> BoundaryComplex:
    """The exact level set ``{f = value}`` of output ``output`` (default the first) as a complex.

    ``value`` is any rational (a float is taken exactly). Regions where the output equals
    ``value`` identically are ``flat_regions``; see the module docstring for the cells.
    """
    _need_bounded(cert, "level_set")
    k = math.prod(cert.output_shape)
    if isinstance(output, bool) or not isinstance(output, int) or not 0 <= output < k:
        raise InvalidInputError(f"output={output!r}: the network has {k} outputs (pass 0..{k - 1})")
    c = to_fraction(value, "value")
    cells, regs = _complex(cert, lambda r: _level_groups(r, output, c), "level")
    flat = tuple(reg.region.index for reg in regs if reg.pieces[0].label == 0)
    return BoundaryComplex("level", cert.dim, cert.digest, k, tuple(cells), output, c, flat)


def _class_pieces(cert: Certificate) -> list[_Piece]:
    """Every d-dimensional class piece of every region (the argmax subdivision)."""
    return [p for reg in _analyse_all(cert, _decision_groups) for p in reg.pieces]


def class_cells(cert: Certificate) -> list[ClassCell]:
    """The class pieces of every region: the decision regions cut along the certified regions.

    They tile the domain (their volumes sum to its volume); in 2-D the vertices are in
    counter-clockwise order, ready to draw.
    """
    _need_bounded(cert, "class_cells")
    out = []
    for p in _class_pieces(cert):
        verts = polygon_order(p.vertices) if cert.dim == 2 else sorted(p.vertices)
        out.append(ClassCell(p.region, p.label, tuple(verts)))
    return out
