"""Exact geometry helpers for the certifier: linear solves, volumes, filtered sign tests.

Linear algebra goes through python-flint's ``fmpq_mat`` (5-10x faster than Gaussian elimination
on :class:`fractions.Fraction` for d = 2..6, measured); inputs and outputs are ``Fraction``.
Signs of affine forms are decided in float64 with a rigorous error bound first and in exact
arithmetic only where the bound does not decide (the CGAL "filtered predicate" idea).

>>> from fractions import Fraction as F
>>> solve_vertex([[F(1), F(1)], [F(1), F(-1)]], [F(1), F(0)])
(Fraction(1, 2), Fraction(1, 2))
>>> polygon_area([(F(0), F(0)), (F(1), F(1)), (F(1), F(0)), (F(0), F(1))])
Fraction(1, 1)
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cmp_to_key
from typing import Any, cast

import numpy as np

from exactrelu._deps import flint
from exactrelu._polyhedra import facets, h_to_v, interior_point
from exactrelu.errors import InvalidInputError

__all__ = [
    "solve_vertex",
    "determinant",
    "interval_length",
    "polygon_area",
    "planar_polygon_order",
    "polytope_volume",
    "hull_volume",
    "volume",
    "affine_rank",
    "polygon_order",
    "Section",
    "hyperplane_chart",
    "restrict_to_hyperplane",
    "full_on_hyperplane",
    "hyperplane_section",
    "sign_exact",
    "sign_filtered",
    "signs_filtered",
    "float_signs",
    "nearest_floats",
    "exact_keys",
    "lineality_basis",
    "ray_normal_form",
    "integer_ray_normal_form",
    "recession_generators",
]

Point = Sequence[Fraction]
Incidence = Sequence[Collection[int]] | Mapping[object, Collection[int]]


def _q(x: Fraction | int) -> flint.fmpq:
    x = Fraction(x)
    return flint.fmpq(x.numerator, x.denominator)


def _f(x: flint.fmpq) -> Fraction:
    return Fraction(int(x.p), int(x.q))


def solve_vertex(rows: Sequence[Point], rhs: Point) -> tuple[Fraction, ...] | None:
    """Exact solution ``x`` of the square system ``rows x = rhs``; ``None`` if singular.

    >>> from fractions import Fraction as F
    >>> solve_vertex([[F(2), F(0)], [F(0), F(3)]], [F(1), F(1)])
    (Fraction(1, 2), Fraction(1, 3))
    >>> solve_vertex([[F(1), F(1)], [F(2), F(2)]], [F(1), F(1)]) is None
    True
    """
    n = len(rows)
    if len(rhs) != n or any(len(r) != n for r in rows):
        raise InvalidInputError(f"solve_vertex needs an n x n system; got {n} rows, {len(rhs)} rhs")
    if n == 0:
        return ()
    a = flint.fmpq_mat(n, n, [_q(v) for r in rows for v in r])
    bb = flint.fmpq_mat(n, 1, [_q(v) for v in rhs])
    try:
        x = a.solve(bb)
    except ZeroDivisionError:
        return None
    return tuple(_f(e) for e in x.entries())


def determinant(rows: Sequence[Point]) -> Fraction:
    """Exact determinant of a square matrix of rationals.

    >>> from fractions import Fraction as F
    >>> determinant([[F(1), F(2)], [F(3), F(4)]])
    Fraction(-2, 1)
    """
    n = len(rows)
    if n == 0:
        return Fraction(1)
    return _f(flint.fmpq_mat(n, n, [_q(v) for r in rows for v in r]).det())


def interval_length(vertices: Sequence[Point] | Sequence[Fraction]) -> Fraction:
    """Length of the segment spanned by 1-D points (given as numbers or 1-tuples).

    >>> from fractions import Fraction as F
    >>> interval_length([(F(1, 3),), (F(-1),)])
    Fraction(4, 3)
    """
    if not vertices:
        return Fraction(0)
    xs = [Fraction(v[0]) if isinstance(v, (tuple, list)) else Fraction(cast(Fraction, v))
          for v in vertices]
    return max(xs) - min(xs)


def _angle_order(vertices: Sequence[Point]) -> list[tuple[Fraction, Fraction]]:
    pts = list(dict.fromkeys((Fraction(p[0]), Fraction(p[1])) for p in vertices))
    n = len(pts)
    cx = sum((p[0] for p in pts), Fraction(0)) / n
    cy = sum((p[1] for p in pts), Fraction(0)) / n
    rel = [(p[0] - cx, p[1] - cy, p) for p in pts]

    def half(v: tuple[Fraction, Fraction, object]) -> int:
        return 0 if v[1] > 0 or (v[1] == 0 and v[0] > 0) else 1

    def cmp(u: tuple[Fraction, Fraction, object], v: tuple[Fraction, Fraction, object]) -> int:
        hu, hv = half(u), half(v)
        if hu != hv:
            return hu - hv
        cross = u[0] * v[1] - u[1] * v[0]
        return -1 if cross > 0 else (1 if cross < 0 else 0)

    return [r[2] for r in sorted(rel, key=cmp_to_key(cmp))]


def planar_polygon_order(vertices: Sequence[Point], normal: Point) -> list[tuple[Fraction, ...]]:
    """The distinct vertices of a convex polygon lying in a plane of ``normal`` (any dimension-3
    points), in cyclic order around it: exact (projected along the largest entry of ``normal``,
    which is one to one on the plane, then sorted by angle with cross products).

    >>> from fractions import Fraction as F
    >>> sq = [(F(x), F(y), F(1)) for x, y in ((0, 0), (1, 1), (1, 0), (0, 1))]
    >>> [tuple(map(int, p[:2])) for p in planar_polygon_order(sq, (F(0), F(0), F(1)))]
    [(1, 1), (0, 1), (0, 0), (1, 0)]
    """
    drop = max(range(len(normal)), key=lambda k: (abs(normal[k]), -k))
    if normal[drop] == 0:
        raise InvalidInputError("planar_polygon_order needs a non-zero normal")
    keep = [k for k in range(len(normal)) if k != drop]
    lifted = {(Fraction(p[keep[0]]), Fraction(p[keep[1]])): tuple(p) for p in vertices}
    if len(lifted) < 3:
        return list(lifted.values())
    return [lifted[q] for q in _angle_order(list(lifted))]


def polygon_area(vertices: Sequence[Point]) -> Fraction:
    """Exact area of the convex polygon with the given vertices (any order, duplicates allowed).

    The vertices are sorted by angle around their centroid (exactly, by cross products), then
    the shoelace formula is applied. Fewer than three distinct vertices give area 0.

    >>> from fractions import Fraction as F
    >>> polygon_area([(F(0), F(0)), (F(0), F(1)), (F(1), F(0))])
    Fraction(1, 2)
    """
    if any(len(p) != 2 for p in vertices):
        raise InvalidInputError("polygon_area needs 2-D points")
    if len(vertices) < 3:
        return Fraction(0)
    pts = _angle_order(vertices)
    n = len(pts)
    twice = sum(
        (pts[i][0] * pts[(i + 1) % n][1] - pts[(i + 1) % n][0] * pts[i][1] for i in range(n)),
        Fraction(0),
    )
    return abs(twice) / 2


def _face_masks(n_vertices: int, incidence: Incidence) -> list[int]:
    """The vertex sets of the facets named by ``incidence``, as bit masks (bit ``k``: vertex
    ``k``)."""
    if isinstance(incidence, Mapping):
        sets = [frozenset(int(k) for k in vs) for vs in incidence.values()]
    else:
        if len(incidence) != n_vertices:
            raise InvalidInputError(
                f"incidence has {len(incidence)} entries for {n_vertices} vertices; pass one set "
                "of facet labels per vertex, or a mapping facet -> vertex indices"
            )
        by_label: dict[object, set[int]] = {}
        for k, labels in enumerate(incidence):
            for lab in labels:
                by_label.setdefault(lab, set()).add(k)
        sets = [frozenset(s) for s in by_label.values()]
    masks = []
    for s in sets:
        if any(not 0 <= k < n_vertices for k in s):
            raise InvalidInputError(f"incidence names a vertex outside 0..{n_vertices - 1}")
        masks.append(sum(1 << k for k in s))
    return masks


def _face_rows(vertices: Sequence[Point], masks: list[int]) -> tuple[list[int], list[list[int]]]:
    """The masks among ``masks`` whose vertices span a hyperplane, each with that hyperplane's
    integer row ``[a | c]`` (``a . x + c = 0`` on it); the other masks are left out."""
    d = len(vertices[0])
    hom = [_hom_ints(v) for v in vertices]
    kept: list[int] = []
    rows: list[list[int]] = []
    for m in dict.fromkeys(masks):
        ks = [k for k in range(len(vertices)) if m >> k & 1]
        if len(ks) < d:
            continue
        basis, nullity = flint.fmpz_mat([hom[k] for k in ks]).nullspace()
        if nullity == 1:
            kept.append(m)
            rows.append([int(basis[i, 0]) for i in range(d + 1)])
    return kept, rows


def _hom_ints(v: Point) -> list[int]:
    """Vertex ``v`` as integers ``[p | q]``, ``v = p / q`` with ``q`` the least common
    denominator of its coordinates."""
    c = [x if isinstance(x, Fraction) else Fraction(x) for x in v]
    q = math.lcm(*(x.denominator for x in c))
    return [x.numerator * (q // x.denominator) for x in c] + [q]


def hull_volume(vertices: Sequence[Point], faces: Sequence[int],
                rows: Sequence[Sequence[Fraction | int]]) -> Fraction:
    """Exact d-volume of the pulling triangulation of ``conv(vertices)`` over the vertex sets
    ``faces`` (bit masks: bit ``k`` is vertex ``k``), ``rows[i]`` the row ``[a | c]`` of a
    hyperplane ``a . x + c = 0`` through the vertices of ``faces[i]`` and through no other vertex.

    Every point must be a vertex of the hull (a point listed twice lies on exactly the faces of
    its copy, and a face made of the two copies gives no simplex: repeats only lose volume).
    When ``faces`` holds the vertex set of every facet (other sets, such as lower-dimensional
    faces, are harmless), the result is the hull's volume.

    When each mask is ``{k : vertex k lies on H}`` for a hyperplane ``H`` with every vertex on one
    side of it (the vertex set of a face of the hull, exposed by ``H``) but facets may be missing,
    the result is a lower bound of the hull's volume. The recursion only visits faces of the hull
    (intersections of exposed faces). In a face ``F`` with lowest vertex ``v0``, each maximal
    proper face ``G`` not containing ``v0`` gives the cone ``conv(v0, G)``; when ``G`` is a facet
    of ``F``, the points of the cone's relative interior are those whose ray from ``v0`` leaves
    ``F`` through the relative interior of ``G``, and distinct faces have disjoint relative
    interiors: the cones do not overlap, and by induction neither do the simplices. A face of
    dimension below ``dim F - 1`` makes the chain drop two dimensions at once: its simplices have
    fewer than d + 1 vertices and are left out (volume 0). A chain of proper faces drops at least
    one dimension per step, so none has more than d + 1 vertices (checked).

    The sum is taken face by face, not simplex by simplex (as the compiled checker's
    ``FaceVolume`` does). In a face ``F`` of dimension ``j`` (in the coordinates ``kept``, onto
    which its affine hull ``A`` projects one to one) with lowest vertex ``v``, the simplices of
    ``F`` are ``v`` joined to those of each maximal proper face ``G`` without ``v``, and for each
    of them ``|det_j(u_1 - v, .., u_j - v)| = |rho(v)| / |rho_p| |det_{j-1}(u_2 - u_1, ..)|``
    without coordinate ``p``, where ``rho`` is ``G``'s row restricted to ``A`` (vanishing on
    ``G``) and ``rho_p != 0``. So ``vol_j(F)`` is the sum over ``G`` of ``|rho(v)| / (j |rho_p|)
    vol_{j-1}(G)`` (``G`` in ``A ∩ {rho = 0}``, coordinate ``p`` dropped), a face of one vertex
    having volume 1 in 0 dimensions and 0 above: exactly the sum of the simplex volumes. The
    rows restricted to ``A`` are the rows after fraction-free elimination (Bareiss) of the dropped
    coordinates by the rows of the faces on the way, each division exact. Every volume is an
    integer ``N`` over ``j! L_F``, ``L_F`` the product of the denominators ``q_u`` of ``F``'s
    vertices (``u = p_u / q_u``); with ``rho(v) = r / q_v`` the cone over ``G`` adds
    ``|r| N_G / |rho_p|`` (an integer: a sum of simplices' homogeneous determinants; checked)
    times the ``q_u`` of ``F``'s vertices neither ``v`` nor in ``G``. ``N`` depends on the face
    and the coordinates kept only (memoized).

    >>> from fractions import Fraction as F
    >>> square = [(F(0), F(0)), (F(1), F(0)), (F(1), F(1)), (F(0), F(1))]
    >>> edges = [0b0011, 0b0110, 0b1100, 0b1001]
    >>> rows = [(0, 1, 0), (1, 0, -1), (0, 1, -1), (1, 0, 0)]  # y = 0, x = 1, y = 1, x = 0
    >>> hull_volume(square, edges, rows)
    Fraction(1, 1)
    >>> hull_volume(square, edges[:1] + edges[2:], rows[:1] + rows[2:])  # a lower bound
    Fraction(1, 2)
    """
    if len(rows) != len(faces):
        raise InvalidInputError(f"hull_volume: {len(faces)} faces and {len(rows)} rows")
    if not vertices:
        return Fraction(0)
    d = len(vertices[0])
    if d == 0:
        return Fraction(1)
    if any(len(row) != d + 1 for row in rows):
        raise InvalidInputError(f"hull_volume: every row needs {d + 1} entries")
    P = [_hom_ints(v) for v in vertices]
    masks = list(faces)
    memo: dict[tuple[int, tuple[int, ...]], int] = {}

    def face(F: int, kept: tuple[int, ...], idx: list[int], R: list[list[int]],
             prev: int) -> int:
        """``N`` of the face ``F`` in the coordinates ``kept``: ``idx`` the faces cutting it
        properly, ``R`` their rows restricted to its affine hull (``len(kept) + 1`` integers),
        ``prev`` the last pivot of the elimination."""
        j = len(kept)
        low = F & -F
        v = low.bit_length() - 1
        if F == low:
            return P[v][d] if j == 0 else 0
        if j == 0:
            raise InvalidInputError("hull_volume: the sets are not faces of the hull "
                                    "(chain > d + 1)")
        subs: dict[int, int] = {}
        for a, m in enumerate(idx):
            x = F & masks[m]
            if x and x != F and x not in subs:
                subs[x] = a
        maximal: list[int] = []
        for s in sorted(subs, key=int.bit_count, reverse=True):
            if not any(s & t == s for t in maximal):
                maximal.append(s)
        pv = P[v]
        total = 0
        for G in maximal:
            if G & low:
                continue
            rho = R[subs[G]]
            r = rho[j] * pv[d]
            for i in range(j):
                r += rho[i] * pv[kept[i]]
            if not r:
                continue  # v on G's hyperplane: flat cones
            p = next((i for i in range(j) if rho[i]), -1)
            if p < 0:
                raise InvalidInputError("hull_volume: a row constant on a face")
            kept2 = kept[:p] + kept[p + 1:]
            sub = memo.get((G, kept2))
            if sub is None:
                rp = rho[p]
                idx2: list[int] = []
                R2: list[list[int]] = []
                for b, m in enumerate(idx):
                    x = G & masks[m]
                    if x and x != G:
                        row = R[b]
                        idx2.append(m)
                        R2.append([(rp * row[e] - row[p] * rho[e]) // prev
                                   for e in range(j + 1) if e != p])
                sub = memo[(G, kept2)] = face(G, kept2, idx2, R2, rp)
            if not sub:
                continue
            cone, rem = divmod(abs(r) * sub, abs(rho[p]))
            if rem:
                raise InvalidInputError("hull_volume: a cone volume that is not a sum of "
                                        "simplices (the rows do not match the faces)")
            rest = F & ~G & ~low
            while rest:
                bit = rest & -rest
                cone *= P[bit.bit_length() - 1][d]
                rest ^= bit
            total += cone
        return total

    R0 = []
    for row in rows:
        c = [x if isinstance(x, Fraction) else Fraction(x) for x in row]
        den = math.lcm(*(x.denominator for x in c))
        R0.append([x.numerator * (den // x.denominator) for x in c])
    num = face((1 << len(vertices)) - 1, tuple(range(d)), list(range(len(masks))), R0, 1)
    return Fraction(num, math.factorial(d) * math.prod(p[d] for p in P))


def polytope_volume(vertices: Sequence[Point], incidence: Incidence) -> Fraction:
    """Exact d-volume of a bounded polytope from its vertices and vertex-facet incidence.

    ``incidence`` is either a sequence aligned with ``vertices`` giving, for each vertex, the
    labels (e.g. row indices) of the facet-defining inequalities tight at it, as returned by
    :func:`exactrelu._polyhedra.h_to_v` (redundant rows are harmless), or a mapping from a facet
    label to the indices of the vertices on that facet. The polytope is cut into cones from a
    vertex ``v0`` over the facets not containing it, recursively (a pulling triangulation), and
    the simplex volumes ``|det(v_i - v0)| / d!`` are summed exactly, face by face (see
    :func:`hull_volume`; each facet's hyperplane through its vertices, sets that span none left
    out). A lower-dimensional polytope has volume 0.

    >>> from fractions import Fraction as F
    >>> cube = [tuple(F((k >> i) & 1) for i in range(3)) for k in range(8)]
    >>> inc = [{2 * i + int(v[i]) for i in range(3)} for v in cube]
    >>> polytope_volume(cube, inc)
    Fraction(1, 1)
    """
    if not vertices:
        return Fraction(0)
    return hull_volume(vertices, *_face_rows(vertices, _face_masks(len(vertices), incidence)))


def volume(A: Sequence[Point], b: Point) -> Fraction:
    """Exact volume of the bounded polyhedron ``{x : A x <= b}`` (0 if empty or flat).

    >>> from fractions import Fraction as F
    >>> volume([[F(-1), F(0)], [F(0), F(-1)], [F(1), F(1)]], [F(0), F(0), F(1)])
    Fraction(1, 2)
    """
    vrep = h_to_v(A, b)
    if not vrep.is_bounded:
        raise InvalidInputError("volume() needs a bounded polyhedron; add bounds to A x <= b")
    if vrep.is_empty:
        return Fraction(0)
    if vrep.dim == 1:
        return interval_length(vrep.vertices)
    if vrep.dim == 2:
        return polygon_area(vrep.vertices)
    return polytope_volume(vrep.vertices, vrep.incidence)


def affine_rank(points: Sequence[Point]) -> int:
    """Dimension of the affine hull of ``points`` (-1 for no point), exactly.

    >>> from fractions import Fraction as F
    >>> affine_rank([(F(0), F(0)), (F(1), F(1)), (F(2), F(2))])
    1
    """
    if not points:
        return -1
    p0 = points[0]
    d = len(p0)
    diffs = [_q(x - y) for p in points[1:] for x, y in zip(p, p0, strict=True)]
    if not diffs or d == 0:
        return 0
    return flint.fmpq_mat(len(points) - 1, d, diffs).rank()


def lineality_basis(lines: Sequence[Point]) -> list[tuple[Fraction, ...]]:
    """The reduced row echelon basis of the span of ``lines``: the one basis of a lineality space
    every engine writes (cddlib's lines are some basis, which depends on its input rows).

    >>> from fractions import Fraction as F
    >>> lineality_basis([(F(0), F(2), F(4)), (F(0), F(1), F(2))])
    [(Fraction(0, 1), Fraction(1, 1), Fraction(2, 1))]
    """
    if not lines:
        return []
    d = len(lines[0])
    R, rank = flint.fmpq_mat(len(lines), d, [_q(x) for ln in lines for x in ln]).rref()
    return [tuple(_f(x) for x in row) for row in R.tolist()[:rank]]


def ray_normal_form(ray: Sequence[Fraction | int], lines: Sequence[Point] = ()
                    ) -> tuple[Fraction, ...]:
    """The one representative every engine writes of the recession direction ``ray`` modulo the
    span of ``lines`` (a :func:`lineality_basis`): zero at the pivot column of every line, scaled
    by a positive factor so that its smallest non-zero entry in absolute value is 1 (cddlib's
    scaling of the extreme rays of a pointed polyhedron).

    >>> from fractions import Fraction as F
    >>> ray_normal_form((F(3), F(-6), F(5)), [(F(0), F(0), F(1))])
    (Fraction(1, 1), Fraction(-2, 1), Fraction(0, 1))
    """
    ints = [x for x in ray if type(x) is int]
    if not lines and len(ints) == len(ray):  # the common case, in integers
        return tuple(Fraction(p, q) for p, q in integer_ray_normal_form(ints))
    r = [Fraction(x) for x in ray]
    for ln in lines:
        p = next(i for i, x in enumerate(ln) if x != 0)
        if r[p]:
            c = r[p] / ln[p]
            r = [x - c * y for x, y in zip(r, ln, strict=True)]
    m = min((abs(x) for x in r if x), default=None)
    if m is None:
        raise InvalidInputError("a ray lies in the lineality space")
    return tuple(x / m for x in r)


def integer_ray_normal_form(ray: Sequence[int]) -> list[tuple[int, int]]:
    """:func:`ray_normal_form` of an integer direction (no lines), as coprime ``(numerator,
    denominator)`` pairs.

    >>> integer_ray_normal_form([4, -6, 0])
    [(1, 1), (-3, 2), (0, 1)]
    """
    k = min((abs(x) for x in ray if x), default=0)
    if not k:
        raise InvalidInputError("a ray is the zero direction")
    return [(x // g, k // g) for x in ray for g in (math.gcd(x, k),)]


def recession_generators(normals: Sequence[Sequence[int]], d: int
                         ) -> tuple[list[tuple[Fraction, ...]], list[tuple[Fraction, ...]]]:
    """The extreme rays modulo the lineality space (each in :func:`ray_normal_form`) and the
    :func:`lineality_basis` of the cone ``{r : n . r <= 0}`` over the integer ``normals``,
    exactly: an extreme ray modulo ``L`` is a direction of the cone that is zero at the pivots of
    ``L`` and tight on rank(N) - 1 independent normals (a one-dimensional face of the pointed
    cone the pivots cut out); every such direction is found from one set of rank(N) - 1 of them.

    >>> sorted(recession_generators([[1, 0], [0, 1]], 2)[0])
    [(Fraction(-1, 1), Fraction(0, 1)), (Fraction(0, 1), Fraction(-1, 1))]
    """
    N = [list(map(int, n)) for n in normals if any(n)]
    if not N:
        return [], [tuple(Fraction(int(i == j)) for j in range(d)) for i in range(d)]
    Z, nullity = flint.fmpz_mat(N).nullspace()
    cols = Z.tolist()
    lines = lineality_basis([tuple(Fraction(int(cols[i][k])) for i in range(d))
                             for k in range(nullity)])
    pivots = [[int(i == next(c for c, x in enumerate(ln) if x != 0)) for i in range(d)]
              for ln in lines]
    rank = d - nullity
    seen: dict[tuple[Fraction, ...], None] = {}
    for S in itertools.combinations(range(len(N)), rank - 1):
        K, k = flint.fmpz_mat([N[i] for i in S] + pivots if S or pivots else [[0] * d]
                              ).nullspace()
        if k != 1:
            continue
        v = [int(row[0]) for row in K.tolist()]
        for s in (1, -1):
            if all(s * sum(a * x for a, x in zip(n, v, strict=True)) <= 0 for n in N):
                seen.setdefault(ray_normal_form([s * x for x in v], lines))
    return list(seen), lines


def polygon_order(vertices: Sequence[Point]) -> list[tuple[Fraction, Fraction]]:
    """The distinct vertices of a convex polygon in counter-clockwise order (exact angle sort
    around their centroid, starting from the direction of the positive x-axis).

    >>> from fractions import Fraction as F
    >>> polygon_order([(F(0), F(0)), (F(1), F(1)), (F(1), F(0)), (F(0), F(1))])[:2]
    [(Fraction(1, 1), Fraction(1, 1)), (Fraction(0, 1), Fraction(1, 1))]
    """
    return _angle_order(vertices) if vertices else []


@dataclass(frozen=True)
class Section:
    """The (d-1)-dimensional part of a polytope lying on a hyperplane ``n . t = c``.

    ``chart`` is the coordinate eliminated to parametrise the hyperplane (the first index of the
    largest ``|n_i|``); ``vertices`` are exact points in the ambient coordinates; ``halfspaces``
    are the section's non-redundant inequalities ``a . t <= b`` within the hyperplane, reduced
    modulo the equation (``a[chart] == 0``) and scaled so that the first non-zero ``|a_i|`` is 1:
    with the equation they cut out exactly the section, and they are unique for it.
    ``projected_volume`` is the (d-1)-volume of the section's projection dropping coordinate
    ``chart`` (1 for a point when d = 1); the section's own (d-1)-volume is
    ``projected_volume * |n| / |n[chart]|``.
    """

    chart: int
    vertices: list[tuple[Fraction, ...]]
    halfspaces: list[tuple[tuple[Fraction, ...], Fraction]]
    projected_volume: Fraction


def hyperplane_chart(normal: Point) -> int:
    """The coordinate a hyperplane with this normal is solved for: the first largest ``|n_i|``."""
    best = 0
    for i, v in enumerate(normal):
        if abs(v) > abs(normal[best]):
            best = i
    if normal[best] == 0:
        raise InvalidInputError("a hyperplane needs a non-zero normal")
    return best


def restrict_to_hyperplane(A: Sequence[Point], b: Point, normal: Point, offset: Fraction
                           ) -> tuple[int, list[list[Fraction]], list[Fraction]] | None:
    """``{t : A t <= b}`` on the hyperplane ``normal . t = offset``, in the coordinates of the
    hyperplane: ``(chart, rows, rhs)`` with ``t[chart]`` solved from the equation (see
    :func:`hyperplane_chart`) and every row in the other d-1 coordinates; rows that become
    constant are dropped when they hold and give ``None`` (empty) when they do not.

    >>> from fractions import Fraction as F
    >>> restrict_to_hyperplane([[F(1), F(1)], [F(0), F(1)]], [F(1), F(1)], (F(0), F(1)), F(0))
    (1, [[Fraction(1, 1)]], [Fraction(1, 1)])
    >>> restrict_to_hyperplane([[F(0), F(1)]], [F(-1)], (F(0), F(1)), F(0)) is None  # y <= -1
    True
    """
    d = len(normal)
    k = hyperplane_chart(normal)
    nk = Fraction(normal[k])
    c = Fraction(offset)
    rows: list[list[Fraction]] = []
    rhs: list[Fraction] = []
    others = [i for i in range(d) if i != k]
    for row, bi in zip(A, b, strict=True):
        if row[k]:
            f = row[k] / nk
            red = [row[i] - f * normal[i] for i in others]
            rb = bi - f * c
        else:
            red, rb = [row[i] for i in others], bi
        if any(red):
            rows.append(red)
            rhs.append(rb)
        elif rb < 0:
            return None
    return k, rows, rhs


def full_on_hyperplane(A: Sequence[Point], b: Point, normal: Point, offset: Fraction) -> bool:
    """Is ``{t : A t <= b, normal . t = offset}`` (d-1)-dimensional? Do two regions' facets on
    one hyperplane share a (d-1)-dimensional part, given both regions' rows? An exact LP.

    >>> from fractions import Fraction as F
    >>> A, b = [[F(1), F(0)], [F(0), F(1)]], [F(0), F(0)]   # x <= 0, y <= 0
    >>> full_on_hyperplane(A, b, (F(0), F(1)), F(0)), full_on_hyperplane(A, b, (F(1), F(1)), F(0))
    (True, False)
    """
    restricted = restrict_to_hyperplane(A, b, normal, offset)
    if restricted is None:
        return False
    found = interior_point(restricted[1], restricted[2], len(normal) - 1)
    return found is not None and found[1] > 0


def hyperplane_section(A: Sequence[Point], b: Point, normal: Point, offset: Fraction
                       ) -> Section | None:
    """``{t : A t <= b, normal . t = offset}`` when it is (d-1)-dimensional, else ``None``.

    The hyperplane is parametrised by the other coordinates (``t[chart]`` solved from the
    equation), the rows restricted to it, and cddlib's exact H->V run in dimension d-1: the
    vertices, the non-redundant rows (from the incidence, see
    :func:`exactrelu._polyhedra.facets`) and the exact volume. The polytope must be bounded.

    >>> from fractions import Fraction as F
    >>> square = [[F(1), F(0)], [F(-1), F(0)], [F(0), F(1)], [F(0), F(-1)]]
    >>> s = hyperplane_section(square, [F(1)] * 4, (F(1), F(1)), F(1))
    >>> sorted(s.vertices), s.projected_volume
    ([(Fraction(0, 1), Fraction(1, 1)), (Fraction(1, 1), Fraction(0, 1))], Fraction(1, 1))
    """
    d = len(normal)
    restricted = restrict_to_hyperplane(A, b, normal, offset)
    if restricted is None:
        return None
    k, rows, rhs = restricted
    nk = Fraction(normal[k])
    c = Fraction(offset)

    def lift(p: Sequence[Fraction]) -> tuple[Fraction, ...]:
        full = [*p[:k], Fraction(0), *p[k:]]
        full[k] = (c - sum((normal[i] * full[i] for i in range(d) if i != k), Fraction(0))) / nk
        return tuple(full)

    if d == 1:
        return Section(k, [lift(())], [], Fraction(1))
    if not rows:
        raise InvalidInputError("hyperplane_section needs a bounded polytope")
    if d >= 3:
        # one exact LP says whether the section is (d-1)-dimensional: far cheaper than the H->V
        # above two dimensions (measured: 0.6 vs 1.5 ms in 2-D, 1.1 vs 6.7 ms in 3-D, 24 rows)
        ip = interior_point(rows, rhs, dim=d - 1)
        if ip is None or ip[1] == 0:
            return None
    vrep = h_to_v(rows, rhs)
    if vrep.is_empty:
        return None
    if not vrep.is_bounded:
        raise InvalidInputError("hyperplane_section needs a bounded polytope")
    if d == 2:
        vol = interval_length(vrep.vertices)
    elif d == 3:
        vol = polygon_area(vrep.vertices)
    else:
        vol = polytope_volume(vrep.vertices, vrep.incidence)
    if vol == 0:
        return None
    halfspaces = []
    for i in facets(rows, rhs, vrep).indices:
        scale = Fraction(next(abs(v) for v in rows[i] if v != 0))
        a = [v / scale for v in rows[i]]
        halfspaces.append(((*a[:k], Fraction(0), *a[k:]), rhs[i] / scale))
    return Section(k, [lift(p) for p in vrep.vertices], sorted(halfspaces), vol)


# --------------------------------------------------------------------------------------------
# Filtered signs of affine forms a . x + b.
#
# Notation: u = 2^-53 (unit roundoff of float64), eta = 2^-1074 (smallest subnormal),
# gamma_k = k u / (1 - k u), r^ = fl(r) the nearest float to a rational r.
#
# (1) Conversion. Unless fl(r) overflows, |r - r^| <= u |r^| + eta/2 (half an ulp of r^ is at
#     most u |r^| in the normal range; in the subnormal range the spacing is eta).
# (2) Data error. With a_i = a^_i + al_i, x_i = x^_i + xi_i, both errors bounded as in (1):
#       |a_i x_i - a^_i x^_i| <= (2u + u^2) |a^_i x^_i| + (1 + u)(eta/2)(|a^_i| + |x^_i|) + eta^2
#     and |b - b^| <= u |b^| + eta/2.
# (3) Evaluation error. s^ = fl(sum_i fl(a^_i x^_i) + b^), n products and n additions in any
#     order (so BLAS blocking/FMA are covered): |s^ - (sum a^_i x^_i + b^)|
#       <= gamma_{n+1} S + n eta/2,   S = sum |a^_i x^_i| + |b^|.
# (4) Total, with gamma_{n+1} + 2u + u^2 <= gamma_{n+3}:
#       |E - s^| <= gamma_{n+3} S + eta (T + 2n + 2),   T = sum |a^_i| + sum |x^_i|,
#     where E = a . x + b is the exact value.
# (5) S and T are themselves computed in float: S <= S^ (1 + gamma_{n+1}) + n eta and
#     T <= T^ (1 + gamma_{2n}). For (n + 4) u < 1e-3 the float value
#       B = fl(2 (n + 4) u * S^ + 2^-1000 (T^ + 2n + 4))
#     exceeds the bound in (4): the factor 2 covers gamma_{n+3} (1 + gamma_{n+1}) <= 1.01 (n+3) u
#     and the rounding of the few operations computing B; 2^-1000 >> 2 eta, and the product
#     2^-1000 * (T^ + 2n + 4) is a normal float scaled by a power of two, hence exact (or it
#     overflows to inf, which only makes B larger).
# (6) If s^, S^, T^ are finite and |s^| > B then sign(E) = sign(s^) and E != 0. Otherwise (or on
#     any overflow) the sign is computed exactly with Fraction.
#
# :func:`float_signs` is the one matrix form of (5)-(6), shared by :func:`signs_filtered`, the
# certifier and the checker: rows [a_1..a_n, b] against points carrying a trailing exact 1, so
# that s^ and S^ are each one matrix product; T^ there also counts |b^| and the 1s (only larger).
# --------------------------------------------------------------------------------------------

_U = 2.0**-53
_TINY = 2.0**-1000


def sign_exact(a: Point, b: Fraction, x: Point) -> int:
    """Exact sign (-1, 0, 1) of ``a . x + b`` in rational arithmetic.

    >>> from fractions import Fraction as F
    >>> sign_exact([F(1, 3)], F(-1), [F(3)])
    0
    """
    v = Fraction(b) + sum((Fraction(ai) * Fraction(xi) for ai, xi in zip(a, x, strict=True)),
                          Fraction(0))
    return (v > 0) - (v < 0)


def _nearest(r: Fraction | int | float) -> float:
    try:
        return float(r)
    except OverflowError:
        return math.inf if r > 0 else -math.inf


def sign_filtered(a: Point, b: Fraction, x: Point) -> int:
    """Sign (-1, 0, 1) of the exact value ``a . x + b``: float64 with a rigorous bound first,
    exact Fraction arithmetic only when the bound does not decide (see the comment above).

    >>> from fractions import Fraction as F
    >>> sign_filtered([F(1), F(1)], F(-1), [F(1, 3), F(2, 3)])
    0
    >>> sign_filtered([F(1)], F(-1), [F(1) + F(1, 10**30)])
    1
    """
    n = len(a)
    if len(x) != n:
        raise InvalidInputError(f"a has {n} entries but x has {len(x)}")
    ah = [_nearest(v) for v in a]
    xh = [_nearest(v) for v in x]
    bh = _nearest(b)
    s = bh
    big_s = abs(bh)
    t = 0.0
    for ai, xi in zip(ah, xh, strict=True):
        p = ai * xi
        s += p
        big_s += abs(p)
        t += abs(ai) + abs(xi)
    if math.isfinite(s) and math.isfinite(big_s) and math.isfinite(t):
        bound = 2.0 * (n + 4) * _U * big_s + _TINY * (t + 2 * n + 4)
        if s > bound:
            return 1
        if s < -bound:
            return -1
    return sign_exact(a, b, x)


def nearest_floats(values: Sequence[Any]) -> np.ndarray:
    """float64 array of the nearest floats to exact rationals (±inf where they overflow).

    >>> from fractions import Fraction as F
    >>> nearest_floats([[F(1, 2), F(1, 4)]])
    array([[0.5 , 0.25]])
    """
    if values and isinstance(values[0], (list, tuple)):
        return np.array([[_nearest(v) for v in row] for row in values], dtype=np.float64)
    return np.array([_nearest(v) for v in values], dtype=np.float64)


def exact_keys(values: Iterable[Fraction]) -> list[tuple[float, Fraction]]:
    """Sort keys ``(fl(v), v)`` that order exact rationals exactly while comparing floats almost
    always: tuples compare their first entries and look at the second only where the first are
    equal. Rounding to nearest is monotone (``fl(x) < fl(y)`` implies ``x < y``), so where the
    floats differ they decide; where they are equal (ties, ``+-inf`` past the float range, a
    ``-0.0`` beside a ``0.0``) the exact values do. Use them for every choice made on a float
    key (``min``, ``max``, ``sorted``, a comparison of two ends): a bare float key picks an
    arbitrary one of two rationals with the same nearest float.

    >>> from fractions import Fraction as F
    >>> a, b = F(1, 3), F(1, 3) + F(1, 2**80)  # one nearest float
    >>> ka, kb = exact_keys([a, b])
    >>> ka[0] == kb[0], ka < kb, max([kb, ka]) is kb
    (True, True, True)
    """
    values = list(values)
    try:  # int / int is correctly rounded
        return [(v.numerator / v.denominator, v) for v in values]
    except OverflowError:
        return [(_nearest(v), v) for v in values]


def signs_filtered(
    A: np.ndarray,
    b: np.ndarray,
    X: np.ndarray,
    exact: tuple[Sequence[Point], Point, Sequence[Point]] | None = None,
) -> np.ndarray:
    """Signs of ``A[i] . X[j] + b[i]`` for all rows ``i`` and points ``j``, as an int8 array of
    shape ``(m, k)``.

    ``A`` (m, n), ``b`` (m,) and ``X`` (k, n) are float64 arrays holding the nearest floats of
    the exact data ``exact = (A_q, b_q, X_q)`` (lists of Fraction; see :func:`nearest_floats`).
    Entries decided by the float error bound cost one matrix product; the others are
    recomputed exactly from ``exact``. Without ``exact`` the float arrays are taken as the exact
    values.

    >>> import numpy as np
    >>> from fractions import Fraction as F
    >>> Aq, bq, Xq = [[F(1), F(1)]], [F(-1)], [[F(1, 3), F(2, 3)], [F(1), F(1)]]
    >>> signs_filtered(nearest_floats(Aq), nearest_floats(bq), nearest_floats(Xq), (Aq, bq, Xq))
    array([[0, 1]], dtype=int8)
    """
    A = np.asarray(A, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if A.ndim != 2 or X.ndim != 2 or b.shape != (A.shape[0],) or X.shape[1] != A.shape[1]:
        raise InvalidInputError(
            f"signs_filtered needs A (m, n), b (m,), X (k, n); got {A.shape}, {b.shape}, {X.shape}"
        )
    M = np.concatenate([A, b[:, None]], axis=1)
    Xh = np.concatenate([X.T, np.ones((1, X.shape[0]))], axis=0)
    out, decided = float_signs(M, np.abs(M), Xh)
    undecided = ~decided
    if undecided.any():
        if exact is None:
            if not (np.isfinite(A).all() and np.isfinite(b).all() and np.isfinite(X).all()):
                raise InvalidInputError("signs_filtered got non-finite floats and no exact data")
            Aq: Sequence[Sequence[Fraction]] = [[Fraction(float(v)) for v in row] for row in A]
            bq: Sequence[Fraction] = [Fraction(float(v)) for v in b]
            Xq: Sequence[Sequence[Fraction]] = [[Fraction(float(v)) for v in row] for row in X]
        else:
            Aq, bq, Xq = exact
        for i, j in zip(*np.nonzero(undecided), strict=True):
            out[i, j] = sign_exact(Aq[i], bq[i], Xq[j])
    return out


def float_signs(M: np.ndarray, absM: np.ndarray, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Signs of ``M[i] . X[:, j]`` decided in float64 with the rigorous bound above.

    ``M`` (m, n + 1) float64 holds the nearest floats of exact rows ``[a_1..a_n, b]``, ``absM``
    is ``np.abs(M)`` (passed in so that callers can keep it), ``X`` (n + 1, k) float64 the
    nearest floats of exact points as columns, with a trailing row of exact ones. Returns
    ``(signs, decided)``: ``signs`` (int8, (m, k)) is the exact sign of ``a_i . x_j + b_i``
    wherever ``decided`` (bool, (m, k)) is True, and 0 elsewhere; undecided entries (every exact
    zero among them, and every entry touched by an overflow) are for the caller to evaluate
    exactly.

    >>> import numpy as np
    >>> M = np.array([[1.0, -1.0], [1.0, 0.0]])
    >>> s, ok = float_signs(M, np.abs(M), np.array([[1.0, 3.0], [1.0, 1.0]]))
    >>> s.tolist(), ok.tolist()
    ([[0, 1], [1, 1]], [[False, True], [True, True]])
    """
    n = M.shape[1] - 1
    with np.errstate(all="ignore"):
        s = M @ X
        absX = np.abs(X)
        bound = absM @ absX
        bound *= 2.0 * (n + 4) * _U
        bound += _TINY * (absM.sum(axis=1)[:, None] + (absX.sum(axis=0) + (2 * n + 4))[None, :])
        # |s| > bound is False for NaN and where bound is inf; a finite bound with s = +-inf
        # (an overflow of s alone) must not count as decided
        decided = np.abs(s) > bound
        decided &= np.isfinite(s)
        signs = np.sign(s).astype(np.int8)
        signs[~decided] = 0
    return signs, decided
