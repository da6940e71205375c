"""Exact polyhedral computations: the only module of exactrelu that imports cddlib.

Every function takes and returns :class:`fractions.Fraction` values. A polyhedron is always
given as ``{x : A x <= b}`` with ``A`` a list of rows and ``b`` a list of right-hand sides.
cddlib's own row format is ``[b, -A]`` (meaning ``0 <= b - A x``); the conversion happens here
and nowhere else.

>>> from fractions import Fraction as F
>>> A = [[F(1), F(0)], [F(-1), F(0)], [F(0), F(1)], [F(0), F(-1)]]
>>> b = [F(1), F(0), F(1), F(0)]
>>> sorted(h_to_v(A, b).vertices)[0]
(Fraction(0, 1), Fraction(0, 1))
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from exactrelu._deps import cdd, cdd_gmp as _gmp
from exactrelu.errors import InvalidInputError

__all__ = [
    "VRep",
    "FacetSet",
    "LPResult",
    "h_to_v",
    "facets",
    "interior_point",
    "lp_max",
    "cdd_rows",
    "rows_feasible",
]

Row = Sequence[Fraction]


def _solve(lp: _gmp.LinProg) -> None:
    """Solve ``lp`` by the criss-cross rule, the pivot rule of every exact LP here: it is finite
    on any LP (cddlib's default dual simplex was seen to cycle, hanging or crashing, on the
    degenerate LPs of duplicated units) and measured as fast as the default on this module's LPs
    (200 random feasibility LPs in 2 to 5 dimensions: 0.19 s either way). Looked up at the call:
    without pycddlib ``cdd`` is a placeholder that names what to install when it is used."""
    _gmp.linprog_solve(lp, cdd.LPSolverType.CRISS_CROSS)


@dataclass(frozen=True)
class VRep:
    """The V-representation of ``{x : A x <= b}`` with incidence.

    ``vertices``: points (tuples of Fraction); ``rays``: extreme directions; ``lines``: a basis
    of the lineality space; ``incidence[k]``: the frozenset of row indices of ``A`` tight at
    ``vertices[k]``; ``ray_incidence[k]``: rows ``i`` with ``A[i] . rays[k] == 0``.
    ``dim`` is the ambient dimension. An empty polyhedron has no vertices, rays or lines.

    >>> from fractions import Fraction as F
    >>> v = h_to_v([[F(1)], [F(-1)]], [F(2), F(0)])
    >>> sorted(v.vertices), v.is_bounded
    ([(Fraction(0, 1),), (Fraction(2, 1),)], True)
    """

    dim: int
    num_rows: int
    vertices: list[tuple[Fraction, ...]]
    rays: list[tuple[Fraction, ...]] = field(default_factory=list)
    lines: list[tuple[Fraction, ...]] = field(default_factory=list)
    incidence: list[frozenset[int]] = field(default_factory=list)
    ray_incidence: list[frozenset[int]] = field(default_factory=list)

    @property
    def is_empty(self) -> bool:
        """True iff the polyhedron has no point."""
        return not self.vertices

    @property
    def is_bounded(self) -> bool:
        """True iff the polyhedron has no rays and no lines (an empty set is bounded)."""
        return not self.rays and not self.lines


@dataclass(frozen=True)
class FacetSet:
    """The facets of a polyhedron among the rows of its H-representation.

    ``indices[k]`` is the lowest row index defining facet ``k``; ``groups[k]`` lists every row
    index defining that same halfspace (``groups[k][0] == indices[k]``); ``vertex_sets[k]`` is
    the frozenset of vertex indices (into :attr:`VRep.vertices`) on facet ``k``.

    >>> from fractions import Fraction as F
    >>> fs = facets([[F(1)], [F(-1)], [F(2)]], [F(1), F(0), F(2)])
    >>> fs.indices, fs.groups
    ([0, 1], [(0, 2), (1,)])
    """

    indices: list[int]
    groups: list[tuple[int, ...]]
    vertex_sets: list[frozenset[int]]


@dataclass(frozen=True)
class LPResult:
    """Outcome of an exact LP: ``status`` is "optimal", "infeasible" or "unbounded"; ``value``
    and ``x`` are set only when optimal."""

    status: str
    value: Fraction | None = None
    x: tuple[Fraction, ...] | None = None


def _check(A: Sequence[Row], b: Row, dim: int | None) -> int:
    if len(A) != len(b):
        raise InvalidInputError(
            f"A has {len(A)} rows but b has {len(b)} entries; pass one right-hand side per row"
        )
    if A:
        d = len(A[0])
        if any(len(row) != d for row in A):
            raise InvalidInputError("rows of A have different lengths; pass a rectangular matrix")
        if dim is not None and dim != d:
            raise InvalidInputError(f"A has {d} columns but dim={dim}")
        return d
    if dim is None:
        raise InvalidInputError("A has no rows; pass dim= to give the ambient dimension")
    return dim


def _cdd_rows(A: Sequence[Row], b: Row) -> list[list[Fraction]]:
    return [[Fraction(bi)] + [-Fraction(a) for a in row] for row, bi in zip(A, b, strict=True)]


def h_to_v(A: Sequence[Row], b: Row, dim: int | None = None) -> VRep:
    """Exact vertices, rays, lines and incidence of ``{x : A x <= b}`` (cddlib, GMP).

    ``dim`` is needed only when ``A`` has no rows (then the set is all of R^dim).

    >>> from fractions import Fraction as F
    >>> v = h_to_v([[F(-1), F(0)], [F(0), F(-1)], [F(1), F(1)]], [F(0), F(0), F(1)])
    >>> len(v.vertices), sorted(v.incidence[v.vertices.index((F(0), F(0)))])
    (3, [0, 1])
    """
    d = _check(A, b, dim)
    m = len(A)
    if m == 0:
        unit = [tuple(Fraction(int(i == j)) for j in range(d)) for i in range(d)]
        return VRep(d, 0, [tuple(Fraction(0) for _ in range(d))], [], unit, [frozenset()], [])
    mat = _gmp.matrix_from_array(_cdd_rows(A, b), rep_type=cdd.RepType.INEQUALITY)
    poly = _gmp.polyhedron_from_matrix(mat)
    gen = _gmp.copy_generators(poly)
    inc = _gmp.copy_incidence(poly)
    lin = gen.lin_set
    vertices: list[tuple[Fraction, ...]] = []
    rays: list[tuple[Fraction, ...]] = []
    lines: list[tuple[Fraction, ...]] = []
    vinc: list[frozenset[int]] = []
    rinc: list[frozenset[int]] = []
    for k, row in enumerate(gen.array):
        # cdd adds an artificial row index m (the hyperplane at infinity); drop it.
        tight = frozenset(i for i in inc[k] if i < m)
        if k in lin:
            lines.append(tuple(row[1:]))
        elif row[0] == 0:
            rays.append(tuple(row[1:]))
            rinc.append(tight)
        else:
            vertices.append(tuple(x / row[0] for x in row[1:]) if row[0] != 1 else tuple(row[1:]))
            vinc.append(tight)
    if not vertices and (rays or lines):
        # cdd leaves the origin implicit when the input is homogeneous (every b_i == 0).
        vertices.append(tuple(Fraction(0) for _ in range(d)))
        vinc.append(frozenset(i for i in range(m) if Fraction(b[i]) == 0))
    return VRep(d, m, vertices, rays, lines, vinc, rinc)


def facets(A: Sequence[Row], b: Row, vrep: VRep | None = None) -> FacetSet:
    """The non-redundant rows of ``{x : A x <= b}``, with duplicated halfspaces grouped.

    A row defines a facet iff the set of vertices and rays tight on it is non-empty, is not the
    whole polyhedron, and is inclusion-maximal among those sets: for a full-dimensional
    polyhedron these are exactly the faces of dimension d-1 (every proper face lies in a facet,
    and every facet is defined by some row). Rows with the same maximal tight set define the same
    halfspace. For a lower-dimensional polyhedron the result is its facets relative to its affine
    hull. Pass ``vrep`` (from :func:`h_to_v` on the same rows) to avoid recomputing it.

    >>> from fractions import Fraction as F
    >>> A = [[F(1), F(0)], [F(-1), F(0)], [F(0), F(1)], [F(0), F(-1)], [F(1), F(1)]]
    >>> facets(A, [F(1), F(0), F(1), F(0), F(5)]).indices
    [0, 1, 2, 3]
    """
    if vrep is None:
        vrep = h_to_v(A, b)
    m = len(A)
    nv = len(vrep.vertices)
    total = nv + len(vrep.rays)
    tight_sets: list[set[int]] = [set() for _ in range(m)]
    for k, rows in enumerate(vrep.incidence):
        for i in rows:
            tight_sets[i].add(k)
    for k, rows in enumerate(vrep.ray_incidence):
        for i in rows:
            tight_sets[i].add(nv + k)
    by_set: dict[frozenset[int], list[int]] = {}
    for i, s in enumerate(tight_sets):
        if not s or len(s) == total or min(s) >= nv:
            continue
        by_set.setdefault(frozenset(s), []).append(i)
    candidates = sorted(by_set, key=len, reverse=True)
    maximal: list[frozenset[int]] = []
    for c in candidates:
        if not any(len(t) > len(c) and c < t for t in maximal):
            maximal.append(c)
    order = sorted(maximal, key=lambda s: by_set[s][0])
    groups = [tuple(by_set[s]) for s in order]
    return FacetSet(
        [g[0] for g in groups],
        groups,
        [frozenset(k for k in s if k < nv) for s in order],
    )


def _l1(row: Row) -> Fraction:
    return sum((abs(Fraction(a)) for a in row), Fraction(0))


def interior_point(
    A: Sequence[Row], b: Row, dim: int | None = None
) -> tuple[tuple[Fraction, ...], Fraction] | None:
    """Exact Chebyshev-like interior point of ``{x : A x <= b}`` in the l_inf sense.

    Solves ``max s`` subject to ``A x + s ||a_i||_1 <= b`` and ``s <= 1``. Returns ``(x, s)``:
    ``s > 0`` iff the set is full-dimensional, and then ``A x < b`` holds strictly on every
    non-zero row (the box of half-width ``s`` around ``x`` lies inside). Returns ``(x, 0)`` when
    the set is non-empty but lower-dimensional and ``None`` when it is empty.

    >>> from fractions import Fraction as F
    >>> interior_point([[F(1)], [F(-1)]], [F(1), F(1)])
    ((Fraction(0, 1),), Fraction(1, 1))
    """
    d = _check(A, b, dim)
    rows = [
        [Fraction(bi)] + [-Fraction(a) for a in row] + [-_l1(row)]
        for row, bi in zip(A, b, strict=True)
    ]
    rows.append([Fraction(1)] + [Fraction(0)] * d + [Fraction(-1)])
    rows.append([Fraction(0)] + [Fraction(0)] * (d + 1))
    rows[-1][-1] = Fraction(1)
    lp = _gmp.linprog_from_array(rows, cdd.LPObjType.MAX)
    _solve(lp)
    status = lp.status
    if status in (cdd.LPStatusType.INCONSISTENT, cdd.LPStatusType.STRUC_INCONSISTENT):
        return None
    if status != cdd.LPStatusType.OPTIMAL:
        raise AssertionError(f"cddlib returned {status!r} for a bounded feasibility LP")
    sol = lp.primal_solution
    s = Fraction(lp.obj_value)
    if s < 0:
        return None
    return tuple(Fraction(v) for v in sol[:d]), s


def lp_max(c: Row, A: Sequence[Row], b: Row) -> LPResult:
    """Exact ``max c . x`` subject to ``A x <= b`` (cddlib's GMP simplex).

    >>> from fractions import Fraction as F
    >>> r = lp_max([F(1), F(1)], [[F(1), F(0)], [F(0), F(1)], [F(-1), F(-1)]], [F(1), F(2), F(0)])
    >>> r.status, r.value
    ('optimal', Fraction(3, 1))
    """
    d = _check(A, b, len(c))
    rows = _cdd_rows(A, b)
    rows.append([Fraction(0)] + [Fraction(ci) for ci in c])
    lp = _gmp.linprog_from_array(rows if A else [[Fraction(0)] * (d + 1), *rows], cdd.LPObjType.MAX)
    _solve(lp)
    status = lp.status
    if status == cdd.LPStatusType.OPTIMAL:
        return LPResult(
            "optimal", Fraction(lp.obj_value), tuple(Fraction(v) for v in lp.primal_solution)
        )
    if status in (cdd.LPStatusType.INCONSISTENT, cdd.LPStatusType.STRUC_INCONSISTENT):
        return LPResult("infeasible")
    if status in (cdd.LPStatusType.DUAL_INCONSISTENT, cdd.LPStatusType.STRUC_DUAL_INCONSISTENT,
                  cdd.LPStatusType.UNBOUNDED):
        return LPResult("unbounded")
    raise AssertionError(f"cddlib returned {status!r}")


def cdd_rows(A: Sequence[Row], b: Row) -> list[list[Fraction]]:
    """``{x : A x <= b}`` in cddlib's row format ``[b_i, -A_i]``, for :func:`rows_feasible`
    (convert once, test many unions).

    >>> from fractions import Fraction as F
    >>> cdd_rows([[F(1), F(2)]], [F(3)])
    [[Fraction(3, 1), Fraction(-1, 1), Fraction(-2, 1)]]
    """
    _check(A, b, None)
    return _cdd_rows(A, b)


def rows_feasible(rows: Sequence[Sequence[Fraction]], dim: int) -> bool:
    """Whether the rows (cddlib's format, see :func:`cdd_rows`; any union of such lists) have a
    common solution: cddlib's exact (GMP) LP with a zero objective and the criss-cross rule
    (finite on degenerate LPs, where the default dual simplex was seen to cycle).

    >>> from fractions import Fraction as F
    >>> unit = cdd_rows([[F(1)], [F(-1)]], [F(1), F(0)])
    >>> rows_feasible(unit, 1), rows_feasible(unit + cdd_rows([[F(1)]], [F(-1)]), 1)
    (True, False)
    """
    if not rows:
        return True
    lp = _gmp.linprog_from_array([*rows, [Fraction(0)] * (dim + 1)], cdd.LPObjType.MAX)
    _solve(lp)
    status = lp.status
    if status == cdd.LPStatusType.OPTIMAL:
        return True
    if status in (cdd.LPStatusType.INCONSISTENT, cdd.LPStatusType.STRUC_INCONSISTENT):
        return False
    raise AssertionError(f"cddlib returned {status!r} for a feasibility LP")
