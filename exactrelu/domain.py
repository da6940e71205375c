"""Input domains: boxes, polytopes, unbounded polyhedra, all of R^d, and affine slices of a
higher-dimensional input.

Every coordinate is an exact rational (:class:`fractions.Fraction`). Numbers may be given as
ints, Fractions, finite floats (taken exactly: ``Fraction(0.1)`` is the double nearest 0.1) or
strings such as ``"1/3"``, ``"-2"``, ``"0.25"`` or ``"1.5e-3"``; NaN, infinities, booleans,
exponents above 1000 in size and integers of more than a million digits are rejected with
:class:`~exactrelu.errors.InvalidInputError` (see :mod:`exactrelu._parse`).

**Limits**, checked before any work (a domain is cheap to write down and can be exponentially
expensive to use):

* :data:`MAX_BOUNDED_DIM` = 10: boxes, polytopes and bounded slices have at most 10 dimensions.
  Every cell of a bounded domain is held by its exact vertices, starting from the domain's own,
  and a d-dimensional box has 2^d of them: a net with 3 hidden units took 4.7 s on a 10-D box,
  28 s on an 11-D one and (reported) 109 s and 2.4 GB on a 12-D one; a 60-D box would never end.
  Use a :class:`Slice` through the inputs of interest, or :class:`RealSpace`.
* :data:`MAX_POLYTOPE_ROWS` = 256 constraints, and at most :data:`MAX_DOMAIN_VERTICES` = 2048
  vertices as bounded by the upper bound theorem for that many constraints in that dimension
  (McMullen), before cddlib computes the vertices (cddlib took 2.6 s for 1,000 constraints in
  2-D and 24 s for 30 in 10-D, in one call that Ctrl-C cannot interrupt).
* :data:`MAX_DIM` = 1024 dimensions for any domain (all of R^d included: its exact input map
  alone has d^2 entries; a 3-unit net took 4.6 s on R^300).
* :data:`MAX_INPUT_SIZE` = 2^24 network inputs (the flattened shape of a :class:`Slice`).

A domain's regions live in ``dim`` coordinates ``t``; the network's (flattened) input is
``x = M t + c`` with ``(M, c) = domain.input_map()`` (the identity for boxes and polytopes over
the raw input, ``x = x0 + U t`` for a :class:`Slice`).

>>> box = Box([(-1, 1), (0, "1/2")])
>>> box.dim, box.volume()
(2, Fraction(1, 1))
>>> as_domain([(-1, 1), (-1, 1)]) == Box([(-1, 1), (-1, 1)])
True
"""

from __future__ import annotations

import itertools
import math
import numbers
from collections.abc import Iterable, Sequence
from fractions import Fraction
from typing import TYPE_CHECKING, Any, TypeGuard

import numpy as np

from exactrelu import _geometry, _parse, _polyhedra
from exactrelu._parse import Malformed, show
from exactrelu.errors import CertificateError, InvalidInputError

if TYPE_CHECKING:  # torch is imported only where a method needs it
    import torch

__all__ = ["Domain", "Box", "Polytope", "Polyhedron", "RealSpace", "Slice", "as_domain",
           "to_fraction", "MAX_BOUNDED_DIM", "MAX_DIM", "MAX_DOMAIN_VERTICES", "MAX_INPUT_SIZE",
           "MAX_POLYTOPE_ROWS"]

Matrix = list[list[Fraction]]
Vector = list[Fraction]

#: Boxes, polytopes and bounded slices: at most this many dimensions (see the module docstring).
MAX_BOUNDED_DIM = 10
#: Any domain: at most this many dimensions.
MAX_DIM = 1024
#: At most this many constraints in a :class:`Polytope`.
MAX_POLYTOPE_ROWS = 256
#: A :class:`Polytope`'s vertices as bounded by the upper bound theorem: at most this many.
MAX_DOMAIN_VERTICES = 2048
#: At most this many (flattened) network inputs in a :class:`Slice`.
MAX_INPUT_SIZE = 1 << 24

_BOUNDED_WHY = (
    "every cell of a bounded domain is held by its exact vertices, and a d-dimensional box has "
    "2^d of them: a 3-unit net took 28 s on an 11-D box; use a Slice through the inputs of "
    "interest, or RealSpace"
)


def _check_bounded_dim(d: int, what: str, known: bool = True) -> None:
    """Refuse ``d > MAX_BOUNDED_DIM`` dimensions (``known``: ``d`` is the whole count, else the
    count so far of an iterable without a length)."""
    if d > MAX_BOUNDED_DIM:
        count = f"{d:,}" if known else f"more than {MAX_BOUNDED_DIM}"
        raise InvalidInputError(
            f"{what} has {count} dimensions; exactrelu takes bounded domains of at most "
            f"{MAX_BOUNDED_DIM} ({_BOUNDED_WHY})"
        )


def max_vertices(m: int, d: int) -> int:
    """The upper bound theorem: the most vertices a d-polytope with ``m`` facets has.

    >>> max_vertices(4, 2), max_vertices(6, 3), max_vertices(20, 10)
    (4, 8, 4004)
    """
    if m <= d:
        return 0  # not a bounded polytope
    return math.comb(m - (d + 1) // 2, d // 2) + math.comb(m - d // 2 - 1, (d + 1) // 2 - 1)


_MAX_BITS = int(_parse.MAX_DIGITS * 3.3219280948873626)  # 10^MAX_DIGITS < 2^_MAX_BITS


def _sized(n: int, d: int, what: str) -> Fraction:
    if max(abs(n).bit_length(), d.bit_length()) > _MAX_BITS:
        raise InvalidInputError(
            f"{what} is {show(Fraction(n, 1) if d == 1 else _parse.coprime_fraction(n, d))}; "
            f"numbers may have at most {_parse.MAX_DIGITS:,} digits"
        )
    return _parse.ratio(n, d)


def to_fraction(value: Any, what: str = "value") -> Fraction:
    """The exact rational value of ``value`` (int, Fraction, finite float, numpy scalar, 0-dim
    tensor, or a string like ``"1/3"``, ``"0.25"`` or ``"1.5e-3"``; see the module docstring).

    >>> to_fraction("1/3"), to_fraction(0.5), to_fraction(2), to_fraction("2e-3")
    (Fraction(1, 3), Fraction(1, 2), Fraction(2, 1), Fraction(1, 500))
    """
    if isinstance(value, (bool, np.bool_)):
        raise InvalidInputError(f"{what} is a boolean ({value!r}); pass a number")
    if isinstance(value, Fraction):
        return _sized(value.numerator, value.denominator, what)
    if isinstance(value, (int, np.integer)):
        return _sized(int(value), 1, what)
    if isinstance(value, str):
        try:
            return _parse.parse_user(value)
        except Malformed as exc:
            raise InvalidInputError(f"{what}: {exc}") from None
    if hasattr(value, "item") and getattr(value, "shape", None) in ((), ()):
        value = value.item()
        if isinstance(value, bool):
            raise InvalidInputError(f"{what} is a boolean ({value!r}); pass a number")
    if isinstance(value, numbers.Rational):
        return _sized(int(value.numerator), int(value.denominator), what)
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            raise InvalidInputError(f"{what} is NaN; pass a finite number")
        if math.isinf(v):
            raise InvalidInputError(
                f"{what} is {v}; pass a finite number (use RealSpace or domain=None for "
                "an unbounded input)"
            )
        return Fraction(v)
    raise InvalidInputError(
        f"{what} has type {type(value).__name__}; pass an int, Fraction, finite float or a "
        "string like '1/3'"
    )


def _fmt(q: Fraction) -> str:
    return f"{_parse.integer_text(q.numerator)}/{_parse.integer_text(q.denominator)}"


def _is_tensor(x: Any) -> TypeGuard[torch.Tensor]:
    return type(x).__module__.split(".")[0] == "torch" and hasattr(x, "detach")


def _exact_array(x: Any, what: str) -> tuple[tuple[int, ...], Vector]:
    """Shape and flat exact values of an array-like (torch tensor, numpy array, nested list)."""
    if _is_tensor(x):
        t = x.detach().cpu()
        if t.is_floating_point():
            t = t.double()
        arr = t.numpy()
    else:
        try:
            arr = np.asarray(x, dtype=object if _has_exact(x) else None)
        except (ValueError, TypeError):
            raise InvalidInputError(f"{what} is not a rectangular array of numbers") from None
    shape = tuple(int(s) for s in arr.shape)
    if len(shape) == 0:
        raise InvalidInputError(f"{what} is a scalar; pass an array with the model's input shape")
    if arr.size > MAX_INPUT_SIZE:
        raise InvalidInputError(f"{what} has {arr.size:,} entries; the limit is {MAX_INPUT_SIZE:,}")
    flat = [to_fraction(v, f"{what}[{i}]") for i, v in enumerate(arr.reshape(-1).tolist())]
    return shape, flat


def _has_exact(x: Any) -> bool:
    if isinstance(x, (Fraction, str)):
        return True
    if isinstance(x, (list, tuple)):
        return any(_has_exact(v) for v in x)
    return False


def _matrix(A: Any, what: str) -> Matrix:
    if _is_tensor(A) or isinstance(A, np.ndarray):
        if len(A.shape) == 2 and (A.shape[0] > MAX_POLYTOPE_ROWS or A.shape[1] > MAX_BOUNDED_DIM):
            raise InvalidInputError(f"{what} has shape {tuple(A.shape)}; a polytope may have at "
                                    f"most {MAX_POLYTOPE_ROWS} constraints in at most "
                                    f"{MAX_BOUNDED_DIM} dimensions")
        shape, flat = _exact_array(A, what)
        if len(shape) != 2:
            raise InvalidInputError(f"{what} has shape {shape}; pass a 2-D matrix (rows)")
        return [flat[i * shape[1]:(i + 1) * shape[1]] for i in range(shape[0])]
    if not isinstance(A, Sequence) or isinstance(A, str):
        raise InvalidInputError(f"{what} must be a list of rows; got {type(A).__name__}")
    if len(A) > MAX_POLYTOPE_ROWS:
        raise InvalidInputError(f"{what} has {len(A):,} rows; a polytope may have at most "
                                f"{MAX_POLYTOPE_ROWS} constraints")
    rows = []
    for i, row in enumerate(A):
        if isinstance(row, str) or not isinstance(row, (Sequence, np.ndarray)):
            raise InvalidInputError(f"{what}[{i}] is not a row (a list of numbers)")
        _check_bounded_dim(len(row), f"{what}[{i}]")
        rows.append([to_fraction(v, f"{what}[{i}][{j}]") for j, v in enumerate(row)])
    return rows


def _constraints(A: Any, b: Any, what: str) -> tuple[Matrix, Vector]:
    """The exact rows and right-hand sides of ``{x : A x <= b}`` (``what``: the domain's kind,
    for messages), checked: a non-empty rectangular ``A``, one entry of ``b`` per row, at most
    :data:`MAX_BOUNDED_DIM` columns."""
    rows = _matrix(A, "A")
    if _is_tensor(b) or isinstance(b, np.ndarray):
        shape, rhs = _exact_array(b, "b")
        if len(shape) != 1:
            raise InvalidInputError(f"b has shape {shape}; pass a 1-D vector")
    elif isinstance(b, Sequence) and not isinstance(b, str):
        rhs = [to_fraction(v, f"b[{i}]") for i, v in enumerate(b)]
    else:
        raise InvalidInputError(f"b must be a list of numbers; got {type(b).__name__}")
    if not rows:
        raise InvalidInputError(f"A has no rows; a {what} needs constraints (use RealSpace)")
    d = len(rows[0])
    if d == 0 or any(len(r) != d for r in rows):
        raise InvalidInputError(
            "A must be a non-empty rectangular matrix; row lengths "
            f"{sorted({len(r) for r in rows})}"
        )
    if len(rhs) != len(rows):
        raise InvalidInputError(f"A has {len(rows)} rows but b has {len(rhs)} entries")
    _check_bounded_dim(d, f"the {what}")
    return rows, rhs


class Domain:
    """Base class of input domains. See the module docstring for the common interface.

    >>> Domain.from_json(Box([(0, 1)]).to_json())
    Box([(0, 1)])
    """

    kind: str = "domain"

    @property
    def dim(self) -> int:
        """Dimension of the coordinates the regions live in."""
        raise NotImplementedError

    @property
    def input_dim(self) -> int:
        """Number of (flattened) network input coordinates."""
        return self.dim

    @property
    def is_bounded(self) -> bool:
        """True iff the domain is a bounded set."""
        raise NotImplementedError

    def halfspaces(self) -> tuple[Matrix, Vector]:
        """``(A, b)`` with the domain equal to ``{t : A t <= b}`` (exact)."""
        raise NotImplementedError

    def float_halfspaces(self) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`halfspaces` as float64 arrays of shapes ``(m, dim)`` and ``(m,)``."""
        A, b = self.halfspaces()
        fa = np.array([[float(v) for v in row] for row in A], dtype=np.float64).reshape(
            len(A), self.dim
        )
        return fa, np.array([float(v) for v in b], dtype=np.float64)

    def vertices(self) -> list[tuple[Fraction, ...]]:
        """Exact vertices (bounded domains only)."""
        raise NotImplementedError

    def volume(self) -> Fraction:
        """Exact ``dim``-volume in the domain's own coordinates (bounded domains only)."""
        raise NotImplementedError

    def contains(self, t: Sequence[Any]) -> bool:
        """Exact closed membership test of a point in the domain's coordinates."""
        if len(t) != self.dim:
            raise InvalidInputError(f"point has {len(t)} coordinates; the domain has {self.dim}")
        q = [to_fraction(v, "point coordinate") for v in t]
        A, b = self.halfspaces()
        return all(sum((a * x for a, x in zip(row, q, strict=True)), Fraction(0)) <= bi
                   for row, bi in zip(A, b, strict=True))

    def interior_point(self) -> tuple[Fraction, ...]:
        """An exact point strictly inside the domain."""
        A, b = self.halfspaces()
        res = _polyhedra.interior_point(A, b, dim=self.dim)
        assert res is not None and res[1] > 0
        return res[0]

    def input_map(self) -> tuple[Matrix, Vector]:
        """Exact ``(M, c)``: the flattened network input is ``x = M t + c``."""
        d = self.dim
        eye = [[Fraction(int(i == j)) for j in range(d)] for i in range(d)]
        return eye, [Fraction(0)] * d

    def float_input_map(self) -> tuple[Any, Any]:
        """``(M, c)`` as float64 torch tensors, shapes ``(input_dim, dim)`` and ``(input_dim,)``."""
        import torch

        M, c = self.input_map()
        fm = torch.tensor([[float(v) for v in row] for row in M], dtype=torch.float64)
        fc = torch.tensor([float(v) for v in c], dtype=torch.float64)
        return fm.reshape(len(M), self.dim), fc

    def to_json(self) -> dict[str, Any]:
        """A JSON-serialisable dict; rationals as ``"p/q"`` strings."""
        raise NotImplementedError

    @staticmethod
    def from_json(data: Any) -> Domain:
        """Rebuild a domain from :meth:`to_json` output (data: rationals as certificates write
        them, sizes within the limits); anything else raises
        :class:`~exactrelu.errors.CertificateError` naming the field.

        >>> Domain.from_json({"type": "realspace", "dim": 2})
        RealSpace(2)
        """
        try:
            return read_json(data)
        except Malformed as exc:
            raise CertificateError(exc.where("domain")) from None

    def _key(self) -> tuple[Any, ...]:
        raise NotImplementedError

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return False
        assert isinstance(other, Domain)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self._key()))


class Box(Domain):
    """The box ``lo_i <= x_i <= hi_i`` with ``lo_i < hi_i``.

    >>> b = Box([(0, 1), ("1/3", 0.5)])
    >>> b.upper, b.volume()
    ((Fraction(1, 1), Fraction(1, 2)), Fraction(1, 6))
    """

    kind = "box"

    def __init__(self, bounds: Iterable[Sequence[Any]]) -> None:
        if isinstance(bounds, Box):
            bounds = list(zip(bounds.lower, bounds.upper, strict=True))
        if _is_tensor(bounds) or isinstance(bounds, np.ndarray):
            bounds = np.asarray(bounds.detach().cpu() if _is_tensor(bounds) else bounds).tolist()
        if isinstance(bounds, (str, bytes)) or not isinstance(bounds, Iterable):
            raise InvalidInputError(
                f"Box bounds must be a list of (lo, hi) pairs; got {type(bounds).__name__}"
            )
        if isinstance(bounds, Sequence):
            _check_bounded_dim(len(bounds), "the box")
        lows, highs = [], []
        for i, pair in enumerate(bounds):
            _check_bounded_dim(i + 1, "the box", known=False)
            if isinstance(pair, (str, bytes)) or not isinstance(pair, (Sequence, np.ndarray)):
                raise InvalidInputError(
                    f"Box bound {i} is {_parse.kind(pair)}, not a (lo, hi) pair; pass e.g. "
                "[(-1, 1), (0, 2)]"
                )
            if len(pair) != 2:
                raise InvalidInputError(
                    f"Box bound {i} has {len(pair)} entries; each coordinate needs exactly (lo, hi)"
                )
            lo = to_fraction(pair[0], f"lower bound of coordinate {i}")
            hi = to_fraction(pair[1], f"upper bound of coordinate {i}")
            if not lo < hi:
                raise InvalidInputError(
                    f"coordinate {i} has lo={show(lo)} >= hi={show(hi)}; each bound needs lo < hi"
                )
            lows.append(lo)
            highs.append(hi)
        if not lows:
            raise InvalidInputError("Box needs at least one (lo, hi) pair")
        self.lower: tuple[Fraction, ...] = tuple(lows)
        self.upper: tuple[Fraction, ...] = tuple(highs)

    @property
    def dim(self) -> int:
        return len(self.lower)

    @property
    def is_bounded(self) -> bool:
        return True

    def halfspaces(self) -> tuple[Matrix, Vector]:
        """Rows ``x_i <= hi_i`` then ``-x_i <= -lo_i`` for each coordinate ``i`` in turn."""
        d = self.dim
        A: Matrix = []
        b: Vector = []
        for i in range(d):
            e = [Fraction(int(i == j)) for j in range(d)]
            A.append(e)
            b.append(self.upper[i])
            A.append([-v for v in e])
            b.append(-self.lower[i])
        return A, b

    def vertices(self) -> list[tuple[Fraction, ...]]:
        """The 2^dim corners (at most 2^MAX_BOUNDED_DIM: the constructor's limit)."""
        return [tuple(v) for v in itertools.product(*zip(self.lower, self.upper, strict=True))]

    def volume(self) -> Fraction:
        out = Fraction(1)
        for lo, hi in zip(self.lower, self.upper, strict=True):
            out *= hi - lo
        return out

    def interior_point(self) -> tuple[Fraction, ...]:
        return tuple((lo + hi) / 2 for lo, hi in zip(self.lower, self.upper, strict=True))

    def to_json(self) -> dict[str, Any]:
        pairs = [[_fmt(lo), _fmt(hi)] for lo, hi in zip(self.lower, self.upper, strict=True)]
        return {"type": "box", "bounds": pairs}

    def _key(self) -> tuple[Any, ...]:
        return (self.lower, self.upper)

    def __repr__(self) -> str:
        pairs = (f"({show(lo)}, {show(hi)})" for lo, hi in zip(self.lower, self.upper, strict=True))
        return "Box([" + ", ".join(pairs) + "])"


class _Rows(Domain):
    """What :class:`Polytope` and :class:`Polyhedron` share: the full-dimensional ``{x : A x <=
    b}`` held as its exact rows ``_A``, ``_b`` and an interior point ``_interior``, written to
    JSON under the subclass's ``kind``."""

    _A: Matrix
    _b: Vector
    _interior: tuple[Fraction, ...]

    @property
    def dim(self) -> int:
        return len(self._A[0])

    def halfspaces(self) -> tuple[Matrix, Vector]:
        return [list(r) for r in self._A], list(self._b)

    def interior_point(self) -> tuple[Fraction, ...]:
        return self._interior

    def to_json(self) -> dict[str, Any]:
        return {
            "type": self.kind,
            "A": [[_fmt(v) for v in row] for row in self._A],
            "b": [_fmt(v) for v in self._b],
        }

    def _key(self) -> tuple[Any, ...]:
        return (tuple(tuple(r) for r in self._A), tuple(self._b))


class Polytope(_Rows):
    """The bounded, full-dimensional polytope ``{x : A x <= b}`` (checked exactly with cddlib).

    >>> tri = Polytope([[-1, 0], [0, -1], [1, 1]], [0, 0, 1])
    >>> tri.volume(), len(tri.vertices())
    (Fraction(1, 2), 3)
    """

    kind = "polytope"

    def __init__(self, A: Any, b: Any) -> None:
        rows, rhs = _constraints(A, b, "polytope")
        d = len(rows[0])
        if max_vertices(len(rows), d) > MAX_DOMAIN_VERTICES:
            raise InvalidInputError(
                f"the polytope has {len(rows)} constraints in {d} dimensions: it may have up to "
                f"{max_vertices(len(rows), d):,} vertices (the upper bound theorem), more than the "
                f"{MAX_DOMAIN_VERTICES:,} exactrelu takes ({_BOUNDED_WHY}); drop redundant "
                "constraints"
            )
        vrep = _polyhedra.h_to_v(rows, rhs)
        if vrep.is_empty:
            raise InvalidInputError("the polytope {x : A x <= b} is empty")
        if not vrep.is_bounded:
            direction = (vrep.rays or vrep.lines)[0]
            raise InvalidInputError(
                "the polytope {x : A x <= b} is unbounded (it contains the direction "
                f"{tuple(str(v) for v in direction)}); add constraints, or use a Polyhedron"
            )
        ip = _polyhedra.interior_point(rows, rhs)
        if ip is None or ip[1] <= 0:
            raise InvalidInputError(
                "the polytope {x : A x <= b} is not full-dimensional (it has no interior); "
                "use a Slice for a lower-dimensional domain"
            )
        self._A = rows
        self._b = rhs
        self._vrep = vrep
        self._interior = ip[0]

    @property
    def is_bounded(self) -> bool:
        return True

    def vertices(self) -> list[tuple[Fraction, ...]]:
        return sorted(self._vrep.vertices)

    def volume(self) -> Fraction:
        v = self._vrep
        if self.dim == 1:
            return _geometry.interval_length(v.vertices)
        if self.dim == 2:
            return _geometry.polygon_area(v.vertices)
        return _geometry.polytope_volume(v.vertices, v.incidence)

    def __repr__(self) -> str:
        return f"Polytope(dim={self.dim}, rows={len(self._A)}, vertices={len(self._vrep.vertices)})"


class RealSpace(Domain):
    """All of R^d (unbounded: no vertices, no volume).

    >>> RealSpace(3).halfspaces()
    ([], [])
    """

    kind = "realspace"

    def __init__(self, dim: int) -> None:
        if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)) or dim < 1:
            raise InvalidInputError(
                f"RealSpace needs a positive integer dimension; got {show(dim)}"
            )
        if dim > MAX_DIM:
            raise InvalidInputError(
                f"RealSpace({show(dim)}): exactrelu takes domains of at most {MAX_DIM} dimensions "
                "(the exact input map alone has dim^2 entries); use a Slice through the inputs of "
                "interest"
            )
        self._dim = int(dim)

    @property
    def dim(self) -> int:
        return self._dim

    @property
    def is_bounded(self) -> bool:
        return False

    def halfspaces(self) -> tuple[Matrix, Vector]:
        return [], []

    def vertices(self) -> list[tuple[Fraction, ...]]:
        raise InvalidInputError("RealSpace is unbounded: it has no vertices; pass bounds")

    def volume(self) -> Fraction:
        raise InvalidInputError("RealSpace is unbounded: it has no finite volume; pass bounds")

    def interior_point(self) -> tuple[Fraction, ...]:
        return tuple(Fraction(0) for _ in range(self._dim))

    def to_json(self) -> dict[str, Any]:
        return {"type": "realspace", "dim": self._dim}

    def _key(self) -> tuple[Any, ...]:
        return (self._dim,)

    def __repr__(self) -> str:
        return f"RealSpace({self._dim})"


class Polyhedron(_Rows):
    """The full-dimensional, unbounded polyhedron ``{x : A x <= b}`` (a half-space, a wedge, a
    strip; checked exactly with cddlib): regions in it may have rays and lines, as on all of
    R^d. A bounded ``{x : A x <= b}`` is a :class:`Polytope`. It is also what a cell of an
    unbounded domain is when :mod:`exactrelu.distributed` cuts the domain by a net's first
    layer. The limits of :class:`Polytope` apply (rows, dimensions, the upper bound theorem's
    count for one row more: the vertices and rays).

    >>> half = Polyhedron([[-1, 0]], [0])   # x >= 0
    >>> half.is_bounded, half.interior_point()
    (False, (Fraction(1, 1), Fraction(0, 1)))
    """

    kind = "polyhedron"

    def __init__(self, A: Any, b: Any) -> None:
        rows, rhs = _constraints(A, b, "polyhedron")
        d = len(rows[0])
        if max_vertices(len(rows) + 1, d) > MAX_DOMAIN_VERTICES:
            raise InvalidInputError(
                f"the polyhedron has {len(rows)} constraints in {d} dimensions: it may have up "
                f"to {max_vertices(len(rows) + 1, d):,} vertices and rays (the upper bound "
                f"theorem), more than the {MAX_DOMAIN_VERTICES:,} exactrelu takes; drop "
                "redundant constraints")
        vrep = _polyhedra.h_to_v(rows, rhs)
        if vrep.is_empty:
            raise InvalidInputError("the polyhedron {x : A x <= b} is empty")
        if vrep.is_bounded:
            raise InvalidInputError("the polyhedron {x : A x <= b} is bounded; use a Polytope")
        ip = _polyhedra.interior_point(rows, rhs)
        if ip is None or ip[1] <= 0:
            raise InvalidInputError("the polyhedron {x : A x <= b} is not full-dimensional")
        self._A = rows
        self._b = rhs
        self._interior = ip[0]

    @property
    def is_bounded(self) -> bool:
        return False

    def vertices(self) -> list[tuple[Fraction, ...]]:
        raise InvalidInputError("a Polyhedron is unbounded: it has rays, not only vertices; "
                                "use a Polytope for a domain given by its vertices")

    def volume(self) -> Fraction:
        raise InvalidInputError("a Polyhedron is unbounded: it has no finite volume")

    def __repr__(self) -> str:
        return f"Polyhedron(dim={self.dim}, rows={len(self._A)})"


class Slice(Domain):
    """The affine slice ``x = x0 + U t`` of a higher-dimensional input, ``t`` in ``region``.

    ``x0`` is an array of the model's input shape (torch tensor, numpy array or nested list);
    ``U`` holds ``k`` directions stacked along the first axis, each shaped like ``x0`` (or
    flat); ``region`` is a Box, Polytope, Polyhedron or RealSpace of dimension ``k`` (or a list of
    ``(lo, hi)`` pairs). Exact values are kept: ``origin`` (flat) and ``directions`` (``k`` flat
    lists); ``input_shape`` is ``x0``'s shape. ``volume`` and ``vertices`` are in ``t``.

    >>> import numpy as np
    >>> e = np.eye(4).reshape(4, 1, 2, 2)
    >>> s = Slice.plane(np.zeros((1, 2, 2)), e[0], e[1])
    >>> s.dim, s.input_shape, s.volume()
    (2, (1, 2, 2), Fraction(1, 2))
    """

    kind = "slice"

    def __init__(self, x0: Any, U: Any, region: Domain | Sequence[Sequence[Any]]) -> None:
        shape, origin = _exact_array(x0, "x0")
        n = len(origin)
        if _is_tensor(U) or isinstance(U, np.ndarray):
            ushape, uflat = _exact_array(U, "U")
            k = ushape[0]
            if math.prod(ushape[1:]) != n:
                raise InvalidInputError(
                    f"U has shape {ushape} but x0 has {n} entries; pass U as k directions "
                    f"stacked along the first axis, each shaped like x0 {shape}"
                )
            dirs = [uflat[i * n:(i + 1) * n] for i in range(k)]
        elif isinstance(U, Sequence) and not isinstance(U, str):
            if len(U) > MAX_DIM:
                raise InvalidInputError(f"U has {len(U):,} directions; the limit is {MAX_DIM}")
            dirs = []
            for i, u in enumerate(U):
                ushape, uflat = _exact_array(u, f"U[{i}]")
                if len(uflat) != n:
                    raise InvalidInputError(
                        f"direction U[{i}] has {len(uflat)} entries but x0 has {n}; each "
                        f"direction must be shaped like x0 {shape}"
                    )
                dirs.append(uflat)
        else:
            raise InvalidInputError(
                f"U must be a list of directions or an array; got {type(U).__name__}"
            )
        self._init(shape, origin, dirs, as_domain(region))

    @classmethod
    def _from_exact(
        cls, shape: tuple[int, ...], origin: Vector, dirs: list[Vector], region: Domain
    ) -> Slice:
        obj = cls.__new__(cls)
        obj._init(shape, origin, dirs, region)
        return obj

    def _init(
        self, shape: tuple[int, ...], origin: Vector, dirs: list[Vector], region: Domain
    ) -> None:
        k = len(dirs)
        if k == 0:
            raise InvalidInputError("a Slice needs at least one direction")
        if math.prod(shape) != len(origin) or any(len(u) != len(origin) for u in dirs):
            raise InvalidInputError("origin, directions and input_shape have inconsistent sizes")
        if isinstance(region, Slice):
            raise InvalidInputError("a Slice's region must be a Box, Polytope, Polyhedron or "
                                    "RealSpace")
        if region.dim != k:
            raise InvalidInputError(
                f"the slice has {k} directions but its region has dimension {region.dim}; "
                f"pass a region in {k} slice coordinates"
            )
        from exactrelu._deps import flint

        n = len(origin)
        entries = [flint.fmpq(v.numerator, v.denominator) for u in dirs for v in u]
        mat = flint.fmpq_mat(k, n, entries)
        if mat.rank() != k:
            raise InvalidInputError(
                "the slice directions are linearly dependent (e.g. the points are equal or "
                "collinear); pass affinely independent points"
            )
        self.input_shape: tuple[int, ...] = shape
        self.origin: Vector = list(origin)
        self.directions: list[Vector] = [list(u) for u in dirs]
        self.region: Domain = region

    @classmethod
    def line(
        cls, x0: Any, x1: Any, bounds: Domain | Sequence[Sequence[Any]] | None = None
    ) -> Slice:
        """The segment ``x0 -> x1``: ``U = [x1 - x0]``, ``t`` in ``[0, 1]`` unless ``bounds``.

        >>> Slice.line([0.0, 0.0], [1.0, 2.0]).input_map()[0]
        [[Fraction(1, 1)], [Fraction(2, 1)]]
        """
        shape, p0 = _exact_array(x0, "x0")
        s1, p1 = _exact_array(x1, "x1")
        if s1 != shape:
            raise InvalidInputError(
                f"x0 has shape {shape} but x1 has shape {s1}; pass equal shapes"
            )
        region = Box([(0, 1)]) if bounds is None else as_domain(bounds)
        return cls._from_exact(shape, p0, [[b - a for a, b in zip(p0, p1, strict=True)]], region)

    @classmethod
    def plane(
        cls, x0: Any, x1: Any, x2: Any, bounds: Domain | Sequence[Sequence[Any]] | None = None
    ) -> Slice:
        """The plane through three inputs: ``U = [x1 - x0, x2 - x0]``; ``t`` in the triangle
        ``t1 >= 0, t2 >= 0, t1 + t2 <= 1`` (the triangle x0, x1, x2) unless ``bounds`` gives a
        Box (or Polytope) in slice coordinates.

        >>> Slice.plane([0, 0, 0], [1, 0, 0], [0, 1, 0], bounds=[(-1, 1), (-1, 1)]).volume()
        Fraction(4, 1)
        """
        shape, p0 = _exact_array(x0, "x0")
        s1, p1 = _exact_array(x1, "x1")
        s2, p2 = _exact_array(x2, "x2")
        if not s1 == s2 == shape:
            raise InvalidInputError(
                f"x0, x1, x2 have shapes {shape}, {s1}, {s2}; pass three inputs of equal shape"
            )
        if bounds is None:
            region: Domain = Polytope([[-1, 0], [0, -1], [1, 1]], [0, 0, 1])
        else:
            region = as_domain(bounds)
        dirs = [[b - a for a, b in zip(p0, p1, strict=True)],
                [b - a for a, b in zip(p0, p2, strict=True)]]
        return cls._from_exact(shape, p0, dirs, region)

    @property
    def dim(self) -> int:
        return len(self.directions)

    @property
    def input_dim(self) -> int:
        return len(self.origin)

    @property
    def is_bounded(self) -> bool:
        return self.region.is_bounded

    def halfspaces(self) -> tuple[Matrix, Vector]:
        return self.region.halfspaces()

    def vertices(self) -> list[tuple[Fraction, ...]]:
        return self.region.vertices()

    def volume(self) -> Fraction:
        return self.region.volume()

    def interior_point(self) -> tuple[Fraction, ...]:
        return self.region.interior_point()

    def input_map(self) -> tuple[Matrix, Vector]:
        k = self.dim
        M = [[self.directions[j][i] for j in range(k)] for i in range(len(self.origin))]
        return M, list(self.origin)

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "slice",
            "input_shape": list(self.input_shape),
            "origin": [_fmt(v) for v in self.origin],
            "directions": [[_fmt(v) for v in u] for u in self.directions],
            "region": self.region.to_json(),
        }

    def _key(self) -> tuple[Any, ...]:
        return (
            self.input_shape,
            tuple(self.origin),
            tuple(tuple(u) for u in self.directions),
            self.region,
        )

    def __repr__(self) -> str:
        return f"Slice(input_shape={self.input_shape}, dim={self.dim}, region={self.region!r})"


def shape_size(x: Any, most: int = MAX_INPUT_SIZE) -> tuple[tuple[int, ...], int]:
    """A JSON tensor shape (a list of at most 32 positive integers whose product is at most
    ``most``) and its product; :class:`Malformed` otherwise. The product is bounded as it grows.
    """
    _parse.items(x, most=32, what="sizes")
    size = 1
    for k, v in enumerate(x):
        try:
            size *= _parse.integer(v, 1, most + 1)
        except Malformed as exc:
            raise exc.under(f"[{k}]") from None
        if size > most:
            raise Malformed(f"the shape {show(x)[:80]} has more than {most:,} entries")
    return tuple(x), size


def read_json(data: Any) -> Domain:
    """:meth:`Domain.from_json`, raising :class:`Malformed` with the path below the domain. Every
    size is checked before the numbers it announces are read."""
    get, items, rationals = _parse.get, _parse.items, _parse.rationals
    d = _parse.obj(data)
    kind = get(d, "type")
    try:
        if kind == "box":
            bounds = _parse.under(".bounds", items, get(d, "bounds"), None, MAX_BOUNDED_DIM,
                                  "(lo, hi) pairs (one per coordinate)")
            pairs = [_parse.under(f".bounds[{i}]", rationals, pr, 2, "numbers (lo, hi)")
                     for i, pr in enumerate(bounds)]
            return Box(pairs)
        if kind in ("polytope", "polyhedron"):
            A = _parse.under(".A", items, get(d, "A"), None, MAX_POLYTOPE_ROWS, "rows")
            b = _parse.under(".b", rationals, get(d, "b"), len(A), "entries (one per row of A)")
            n = len(A[0]) if A and type(A[0]) is list else 0
            _parse.under(".A[0]", items, A[0] if A else [], None, MAX_BOUNDED_DIM, "columns")
            rows = [_parse.under(f".A[{i}]", rationals, r, n, "columns (as in A[0])")
                    for i, r in enumerate(A)]
            return Polytope(rows, b) if kind == "polytope" else Polyhedron(rows, b)
        if kind == "realspace":
            return RealSpace(_parse.under(".dim", _parse.integer, get(d, "dim"), 1, MAX_DIM + 1))
        if kind == "slice":
            shape, n = _parse.under(".input_shape", shape_size, get(d, "input_shape"))
            origin = _parse.under(".origin", rationals, get(d, "origin"), n,
                                  "entries (the product of input_shape)")
            U = _parse.under(".directions", items, get(d, "directions"), None, MAX_DIM,
                             "directions")
            dirs = [list(_parse.under(f".directions[{i}]", rationals, u, n,
                                      "entries (the product of input_shape)"))
                    for i, u in enumerate(U)]
            reg = _parse.under(".region", _parse.obj, get(d, "region"))
            if get(reg, "type", None) == "slice":
                raise Malformed("a slice's region must be a box, polytope, polyhedron or "
                                "realspace", ".region.type")
            region = _parse.under(".region", read_json, reg)
            return Slice._from_exact(shape, list(origin), dirs, region)
    except InvalidInputError as exc:
        raise Malformed(str(exc)) from None
    raise Malformed(f"unknown domain type {_parse.kind(kind)}; expected 'box', 'polytope', "
                    "'polyhedron', 'realspace' or 'slice'", ".type")


def as_domain(x: Any, input_dim: int | None = None) -> Domain:
    """Coerce ``x`` to a :class:`Domain`: a Domain is returned as is, ``None`` means
    ``RealSpace(input_dim)``, a list of ``(lo, hi)`` pairs (or a ``(d, 2)`` array) is a
    :class:`Box`. ``input_dim``, when given, must match the domain's input dimension.

    >>> as_domain([(0, 1)]), as_domain(None, input_dim=2)
    (Box([(0, 1)]), RealSpace(2))
    """
    if isinstance(x, Domain):
        dom = x
    elif x is None:
        if input_dim is None:
            raise InvalidInputError(
                "no domain and no input dimension given; pass bounds=[(lo, hi), ...] or input_dim"
            )
        return RealSpace(input_dim)
    elif _is_tensor(x) or isinstance(x, np.ndarray):
        arr = np.asarray(x.detach().cpu() if _is_tensor(x) else x)
        if arr.ndim != 2 or arr.shape[1] != 2:
            raise InvalidInputError(
                f"bounds array has shape {arr.shape}; pass shape (d, 2): one (lo, hi) row per "
                "coordinate"
            )
        _check_bounded_dim(arr.shape[0], "the box")
        dom = Box(arr.tolist())
    elif isinstance(x, Sequence) and not isinstance(x, (str, bytes)):
        if len(x) > 0 and all(
            isinstance(v, (numbers.Number, str, np.number)) and not isinstance(v, bool) for v in x
        ):
            raise InvalidInputError(
                f"bounds is a flat list of {len(x)} numbers; pass one (lo, hi) pair per "
                "coordinate, e.g. [(-1, 1), (-1, 1)]"
            )
        dom = Box(x)
    else:
        raise InvalidInputError(
            f"cannot make a domain from {type(x).__name__}; pass a Domain, None, or a list of "
            "(lo, hi) pairs"
        )
    if input_dim is not None and dom.input_dim != input_dim:
        raise InvalidInputError(
            f"the domain has input dimension {dom.input_dim} but the model takes {input_dim} inputs"
        )
    return dom
