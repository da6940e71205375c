"""Columnar certificates: the certified complex as columns of integers (:class:`Complex`), and
the lazy sequences (:class:`Lazy`) that give a certificate's regions, vertices and adjacent pairs
as the objects of :mod:`exactrelu.certificate`, each made when it is wanted.

Storage. Index data (offsets, constraint ids, vertex, region, row, plane and state numbers, piece
labels) are numpy ``int64`` arrays (the compiled core hands them over as bytes that
``numpy.frombuffer`` wraps without a copy); the states of each piecewise op are one table, a row
per distinct state list (:class:`StateTable`): bits for ReLU-like ops (an eighth of a byte per
unit, where a list of Python ints takes eight bytes and more), else the smallest integer type.
Rationals are two lists of Python ints, numerators and denominators (:class:`Rationals`): their
sizes are unbounded (hundreds of bits on wide nets) and Python ints hold them exactly at their
own size, while a fixed-width column would either overflow or pad every entry to the widest;
the small ones (0..255, and the powers of two the compiled core shares) are one shared object
each.

Views. ``Certificate.regions[i]`` builds the :class:`~exactrelu.certificate.Region` of row ``i``
from the columns; the certificate's sequences keep the most recent views they handed out (at
most :attr:`Lazy.keep`), so that a view changed in place (``cert.regions[3].facets[0] = f``,
``r.volume = x`` in a loop over ``cert.regions``) is the one ``check``, ``save`` and ``to_json``
see. A view dropped from that window is compared with a fresh one made from the columns and
kept for good when it differs (in a value, or in a value's type: ``True`` set where ``1`` was is
a change, though the two are equal); memory stays bounded by the window plus the views that were
changed. What is not seen: a view changed after it left the window while the caller still holds
it (the window is the last :attr:`Lazy.keep` accesses). Assigning an item (``seq[i] = x``) keeps
``x``; inserting or deleting (``append``, ``del``, ``pop``, slice assignment) turns the sequence
into a plain list of views first. ``cert.regions = [...]`` replaces the sequence as for any
attribute.

>>> cx = Complex(d=1, n_out=1, states=[[[0], [1]]], state_ids=[[0, 1]],
...              witness=Rationals([-1, 1], [2, 2]), vertices=Rationals([-1, 0, 1], [1, 1, 1]),
...              region_vertices=Ragged([0, 2, 4], [0, 1, 1, 2]),
...              rows=Rationals([-1, 1, 1, 0, -1, 0, 1, 1], [1, 1, 1, 1, 1, 1, 1, 1]),
...              facet_start=[0, 2, 4], facet_row=[0, 2, 1, 3],
...              facet_ids=Ragged([0, 1, 2, 3, 4], [0, 2, 2, 1]),
...              facet_vertices=Ragged([0, 1, 2, 3, 4], [0, 1, 1, 2]),
...              outputs=Rationals([0, 0, 1, 0], [1, 1, 1, 1]), volume=Rationals([1, 1], [1, 1]),
...              repaired=[False, False], adj_i=[0], adj_j=[1], adj_plane=[0],
...              adj_ids=Ragged([0, 1], [2]), planes=Rationals([1, 0], [1, 1]), pieces=[0, 1])
>>> regions, vertices, adjacency = views(cx)
>>> [r.output for r in regions], vertices[1], adjacency[0].i, adjacency[0].j
([[[Fraction(0, 1), Fraction(0, 1)]], [[Fraction(1, 1), Fraction(0, 1)]]], (Fraction(0, 1),), 0, 1)
"""

from __future__ import annotations

import itertools
import operator
from collections import OrderedDict
from collections.abc import Iterable, Iterator, MutableSequence, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, NamedTuple, TypeVar, overload

import numpy as np

from ._parse import coprime_fraction
from .certificate import Adjacency, Region, RegionFacet

__all__ = ["Complex", "Lazy", "Ragged", "Rationals", "StateTable", "complex_of", "views"]

T = TypeVar("T")


class Rationals(NamedTuple):
    """Rationals ``num[k] / den[k]`` (coprime, ``den[k] > 0``; ``den[k] == 0`` only where a
    field says so, e.g. a volume that is not known)."""

    num: list[int]
    den: list[int]


class Ragged(NamedTuple):
    """Lists of ints of different lengths: list ``k`` is ``flat[start[k]:start[k + 1]]``
    (``int64`` arrays once in a :class:`Complex`)."""

    start: Any
    flat: Any


_EMPTY_RAGGED = Ragged([], [])


def index_array(x: Any) -> np.ndarray:
    """``x`` (int64 bytes, a list of ints or an array) as a flat ``int64`` array, without a copy
    where it already is one (bytes are wrapped, read-only)."""
    if isinstance(x, bytes):
        return np.frombuffer(x, dtype=np.int64)
    return np.asarray(x, dtype=np.int64).reshape(-1)


class StateTable:
    """One op's distinct state lists, ``n`` states each: as bits when every state is 0 or 1
    (``bits``; ``data`` rows of ``ceil(n / 8)`` bytes, the first state in the high bit of the
    first byte, as ``numpy.packbits``), else as a 2-D array in the smallest of int8, int32 and
    int64 that holds them."""

    __slots__ = ("bits", "data", "n")

    def __init__(self, data: np.ndarray, n: int, bits: bool) -> None:
        self.data, self.n, self.bits = data, n, bits

    def __len__(self) -> int:
        return len(self.data)

    def row(self, k: int) -> list[int]:
        """State list ``k``."""
        if self.bits:
            return np.unpackbits(self.data[k], count=self.n).tolist()
        return self.data[k].tolist()

    def rows(self, ks: np.ndarray) -> np.ndarray:
        """State lists ``ks`` as an int64 array (one row each)."""
        if self.bits:
            return np.unpackbits(self.data[ks], axis=1, count=self.n).astype(np.int64)
        return self.data[ks].astype(np.int64)


def state_table(x: Any) -> StateTable:
    """One op's distinct states (a list of equally long lists of ints, a 2-D array, or a
    :class:`StateTable`) as a :class:`StateTable`."""
    if isinstance(x, StateTable):
        return x
    if isinstance(x, np.ndarray) and x.ndim == 2:
        a = x
    else:
        rows = list(x)
        a = np.asarray(rows, dtype=np.int64).reshape(len(rows), -1) if rows else \
            np.zeros((0, 0), np.int64)
    n = a.shape[1]
    if not a.size or (a.min() >= 0 and a.max() <= 1):
        return StateTable(np.packbits(a.astype(bool), axis=1), n, True)
    for t in (np.int8, np.int32):
        info = np.iinfo(t)
        if a.min() >= info.min and a.max() <= info.max:
            return StateTable(a.astype(t, copy=False), n, False)
    return StateTable(a, n, False)


def _ragged(r: Ragged) -> Ragged:
    return Ragged(index_array(r.start), index_array(r.flat))


@dataclass
class Complex:
    """The certified complex as columns, regions in the canonical order of the layer tree (see
    :func:`exactrelu.certify.run`), vertices numbered by first appearance in that order. Built
    with lists or arrays; index fields are ``int64`` arrays afterwards (see the module
    docstring), the states of op ``j`` a 2-D array.

    Per region ``r`` (``R`` regions): its states of op ``j`` are row ``state_ids[j][r]`` of
    ``states[j]``; ``witness``: ``d`` coordinates; vertices ``region_vertices``; facets
    ``facet_start[r]`` to ``facet_start[r + 1] - 1``; output map ``n_out`` rows
    ``(a_1, .., a_d, c)`` in ``outputs``; ``volume`` (denominator 0: none); ``repaired``; rays
    and lines (unbounded domains) ``d`` coordinates each, ``rays[0]`` counting points. Per
    facet ``f``: its inequality is row ``facet_row[f]`` of ``rows`` (rows ``(a_1, .., a_d, b)``
    of ``a . t <= b`` are shared by facets on one hyperplane from one side), its constraint ids,
    global vertices and the indices of its region's rays on it. Adjacent pairs
    ``adj_i[k] < adj_j[k]`` on plane ``adj_plane[k]`` of ``planes`` (``(a, b)`` with the first
    non-zero entry of ``a`` one) with ids ``adj_ids``; ``pieces``: the linear piece of every
    region."""

    d: int
    n_out: int
    states: list[Any]  # StateTable once built
    state_ids: list[Any]
    witness: Rationals
    vertices: Rationals
    region_vertices: Ragged
    rows: Rationals
    facet_start: Any
    facet_row: Any
    facet_ids: Ragged
    facet_vertices: Ragged
    outputs: Rationals
    volume: Rationals
    repaired: Any
    adj_i: Any
    adj_j: Any
    adj_plane: Any
    adj_ids: Ragged
    planes: Rationals
    pieces: Any
    facet_rays: Ragged = _EMPTY_RAGGED  # empty: no facet has a ray
    rays: tuple[Any, Rationals] | None = None  # (start per region, points); None: none
    lines: tuple[Any, Rationals] | None = None
    stats: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.states = [state_table(s) for s in self.states]
        self.state_ids = [index_array(s) for s in self.state_ids]
        for name in ("facet_start", "facet_row", "adj_i", "adj_j", "adj_plane", "pieces"):
            setattr(self, name, index_array(getattr(self, name)))
        for name in ("region_vertices", "facet_ids", "facet_vertices", "adj_ids", "facet_rays"):
            setattr(self, name, _ragged(getattr(self, name)))
        rep = self.repaired
        self.repaired = (np.frombuffer(rep, dtype=np.bool_) if isinstance(rep, bytes)
                         else np.asarray(rep, dtype=np.bool_).reshape(-1))
        if self.rays is not None:
            self.rays = (index_array(self.rays[0]), self.rays[1])
        if self.lines is not None:
            self.lines = (index_array(self.lines[0]), self.lines[1])

    @property
    def num_regions(self) -> int:
        return len(self.facet_start) - 1

    @property
    def num_vertices(self) -> int:
        return len(self.vertices.num) // self.d if self.d else 0


# --------------------------------------------------------------------------------- sequences
class Lazy(MutableSequence[T]):
    """A sequence whose items are made on access by :meth:`_make` (see the module docstring for
    what is kept). Subclasses set :attr:`keep` (0: items are immutable or kept elsewhere, never
    compared) and implement :meth:`_make`."""

    #: The most recent items handed out that are kept (and compared when dropped).
    keep = 4096

    def __init__(self, n: int) -> None:
        self._n = n
        self._recent: OrderedDict[int, T] = OrderedDict()
        self._changed: dict[int, T] = {}
        self._items: list[T] | None = None

    def _make(self, i: int) -> T:
        raise NotImplementedError

    def _get(self, i: int) -> T:
        if i in self._changed:
            return self._changed[i]
        if not self.keep:
            return self._make(i)
        hit = self._recent.get(i)
        if hit is not None:
            self._recent.move_to_end(i)
            return hit
        item = self._recent[i] = self._make(i)
        if len(self._recent) > self.keep:
            k, old = self._recent.popitem(last=False)
            if not self._same(old, self._make(k)):
                self._changed[k] = old
        return item

    def _index(self, i: int) -> int:
        j = i + self._n if i < 0 else i
        if not 0 <= j < self._n:
            raise IndexError(f"index {i} out of range ({self._n:,} items)")
        return j

    def pristine(self) -> bool:
        """Is every item what the columns say (no item assigned or changed in place)?"""
        return (self._items is None and not self._changed
                and all(self._same(v, self._make(k)) for k, v in self._recent.items()))

    def _same(self, kept: T, fresh: T) -> bool:
        """Is the item ``kept`` (handed out, maybe changed in place since) what the columns say,
        ``fresh``? Equal, and made of the types a view is made of (an equal value of another
        type, ``True`` for ``1``, ``Fraction(2)`` for ``2``, is a change)."""
        return kept == fresh

    def peek(self, lo: int, hi: int) -> list[T]:
        """Items ``lo`` to ``hi - 1`` for reading only (a writer's pass): the kept and changed
        ones as they are, the others made and not kept (nothing to compare later)."""
        if self._items is not None:
            return self._items[lo:hi]
        out = []
        for k in range(max(lo, 0), min(hi, self._n)):
            item = self._changed.get(k)
            if item is None:
                item = self._recent.get(k)
            out.append(self._make(k) if item is None else item)
        return out

    def materialize(self) -> list[T]:
        """Turn this sequence into a plain list of its items (kept from now on); returns it."""
        if self._items is None:
            self._items = [self._get(k) for k in range(self._n)]
            self._recent.clear()
            self._changed.clear()
        return self._items

    def __len__(self) -> int:
        return self._n if self._items is None else len(self._items)

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if self._items is not None:
            return self._items[i]
        if isinstance(i, slice):
            return [self._get(k) for k in range(*i.indices(self._n))]
        return self._get(self._index(i))

    @overload
    def __setitem__(self, i: int, v: T) -> None: ...
    @overload
    def __setitem__(self, i: slice, v: Iterable[T]) -> None: ...

    def __setitem__(self, i: int | slice, v: Any) -> None:
        if self._items is None and not isinstance(i, slice):
            k = self._index(i)
            self._recent.pop(k, None)
            self._changed[k] = v
            return
        self.materialize()[i] = v

    def __delitem__(self, i: int | slice) -> None:
        del self.materialize()[i]

    def insert(self, i: int, v: T) -> None:
        self.materialize().insert(i, v)

    def __iter__(self) -> Iterator[T]:
        if self._items is not None:
            yield from self._items
            return
        for k in range(self._n):
            yield self._get(k)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Sequence) or isinstance(other, (str, bytes)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other, strict=True))

    __hash__ = None  # type: ignore[assignment]  # mutable, as a list

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self):,} items>"


def fractions_at(r: Rationals, lo: int, hi: int) -> tuple[Fraction, ...]:
    return tuple(map(coprime_fraction, r.num[lo:hi], r.den[lo:hi]))


class Vertices(Lazy[tuple[Fraction, ...]]):
    """The global vertices of a :class:`Complex`, tuples of Fractions."""

    keep = 0  # tuples: nothing to change in place

    def __init__(self, cx: Complex) -> None:
        super().__init__(cx.num_vertices)
        self.cx = cx

    def _make(self, i: int) -> tuple[Fraction, ...]:
        d = self.cx.d
        return fractions_at(self.cx.vertices, i * d, i * d + d)


class Regions(Lazy[Region]):
    """The regions of a :class:`Complex` as :class:`~exactrelu.certificate.Region` views, the
    first indexed ``first`` (a shard's regions are a run of a certificate's)."""

    def __init__(self, cx: Complex, first: int = 0) -> None:
        super().__init__(cx.num_regions)
        self.cx, self.first = cx, first

    def _make(self, i: int) -> Region:
        cx, d = self.cx, self.cx.d
        fs = cx.facet_start
        f0, f1 = int(fs[i]), int(fs[i + 1])
        rays = points_at(cx, cx.rays, i)
        facets = []
        has_rays = len(cx.facet_rays.start) > 0
        for f in range(f0, f1):
            facets.append(RegionFacet(
                *row_at(cx, int(cx.facet_row[f])),
                tuple(ragged_item(cx.facet_ids, f)), tuple(ragged_item(cx.facet_vertices, f)),
                tuple(ragged_item(cx.facet_rays, f)) if has_rays else ()))
        m = d + 1
        o = i * cx.n_out * m
        output = [list(fractions_at(cx.outputs, o + k * m, o + k * m + m))
                  for k in range(cx.n_out)]
        q = cx.volume.den[i]
        return Region(
            self.first + i,
            [s.row(int(ids[i])) for s, ids in zip(cx.states, cx.state_ids, strict=True)],
            fractions_at(cx.witness, i * d, i * d + d), facets,
            ragged_item(cx.region_vertices, i), output,
            None if q == 0 else coprime_fraction(cx.volume.num[i], q), bool(cx.repaired[i]),
            rays, points_at(cx, cx.lines, i))

    def _same(self, kept: Region, fresh: Region) -> bool:
        return kept == fresh and _view_region(kept)


def _all(values: Any, t: type) -> bool:
    """Is every item of the tuple or list ``values`` of exactly type ``t``?"""
    return operator.countOf(map(type, values), t) == len(values)


def _nested(lists: Any, container: type, t: type) -> bool:
    """Is ``lists`` a list of ``container`` s (tuples or lists) of items of exactly type
    ``t``?"""
    return (type(lists) is list and _all(lists, container)
            and operator.countOf(map(type, itertools.chain.from_iterable(lists)), t)
            == sum(map(len, lists)))


_FACET_FIELDS = tuple(map(operator.attrgetter, ("a", "ids", "vertices", "rays")))


def _view_region(r: Region) -> bool:
    """Is ``r`` made of exactly the types of a view (:meth:`Regions._make`), each field's
    items checked at once (``map(type, ...)``)?"""
    fs = r.facets
    if not (type(r) is Region and type(r.index) is int and type(r.witness) is tuple
            and _all(r.witness, Fraction) and type(fs) is list and _all(fs, RegionFacet)
            and _all(list(map(operator.attrgetter("b"), fs)), Fraction)
            and (r.volume is None or type(r.volume) is Fraction) and type(r.repaired) is bool
            and _nested(r.pattern, list, int) and _nested(r.output, list, Fraction)
            and _nested(r.rays, tuple, Fraction) and _nested(r.lines, tuple, Fraction)
            and type(r.vertices) is list and _all(r.vertices, int)):
        return False
    a, ids, vertices, rays = (list(map(get, fs)) for get in _FACET_FIELDS)
    return (_nested(a, tuple, Fraction) and _nested(ids, tuple, int)
            and _nested(vertices, tuple, int) and _nested(rays, tuple, int))


class Adjacencies(Lazy[Adjacency]):
    """The adjacent pairs of a :class:`Complex` as :class:`~exactrelu.certificate.Adjacency`
    views."""

    def __init__(self, cx: Complex) -> None:
        super().__init__(len(cx.adj_i))
        self.cx = cx

    def _make(self, k: int) -> Adjacency:
        cx, d = self.cx, self.cx.d
        p = int(cx.adj_plane[k]) * (d + 1)
        return Adjacency(int(cx.adj_i[k]), int(cx.adj_j[k]), fractions_at(cx.planes, p, p + d),
                         coprime_fraction(cx.planes.num[p + d], cx.planes.den[p + d]),
                         tuple(ragged_item(cx.adj_ids, k)))

    def _same(self, kept: Adjacency, fresh: Adjacency) -> bool:
        return (kept == fresh and type(kept) is Adjacency and type(kept.i) is int
                and type(kept.j) is int and type(kept.a) is tuple and _all(kept.a, Fraction)
                and type(kept.b) is Fraction and type(kept.ids) is tuple and _all(kept.ids, int))


def row_at(cx: Complex, k: int) -> tuple[tuple[Fraction, ...], Fraction]:
    """Facet row ``k`` of ``cx`` as ``a, b`` (``a . x <= b``)."""
    at = k * (cx.d + 1)
    return (fractions_at(cx.rows, at, at + cx.d),
            coprime_fraction(cx.rows.num[at + cx.d], cx.rows.den[at + cx.d]))


def points_at(cx: Complex, sr: tuple[Any, Rationals] | None, i: int
              ) -> list[tuple[Fraction, ...]]:
    """Region ``i``'s run of points in ``sr`` (``cx.rays`` or ``cx.lines``: starts, points)."""
    if sr is None:
        return []
    d = cx.d
    start, pts = sr
    return [fractions_at(pts, k * d, k * d + d) for k in range(int(start[i]), int(start[i + 1]))]


def ragged_item(r: Ragged, k: int) -> list[int]:
    return r.flat[int(r.start[k]):int(r.start[k + 1])].tolist()


def views(cx: Complex) -> tuple[Regions, Vertices, Adjacencies]:
    """The regions, global vertices and adjacent pairs of ``cx`` as lazy sequences of the
    certificate's objects."""
    return Regions(cx), Vertices(cx), Adjacencies(cx)


def complex_of(d: int, n_ops: int, regions: Sequence[Region], vertices: Sequence[Sequence[Any]],
               adjacency: Sequence[Adjacency], pieces: Sequence[int],
               stats: dict[str, Any] | None = None) -> Complex:
    """The :class:`Complex` of a certificate's objects (``d`` dimensions, ``n_ops`` piecewise
    ops): regions in their order, each distinct state list of an op once, facet rows once per
    pair of ``a``, ``b`` objects (siblings share them), adjacent planes once per ``(a, b)``."""
    def rationals(values: Any) -> Rationals:
        return Rationals([v.numerator for v in values], [v.denominator for v in values])

    def flat(points: Any) -> list[Fraction]:
        return [c for p in points for c in p]

    L = n_ops
    states: list[list[list[int]]] = [[] for _ in range(L)]
    state_ids: list[list[int]] = [[] for _ in range(L)]
    seen: list[dict[tuple, int]] = [{} for _ in range(L)]
    row_of: dict[tuple[int, int], int] = {}
    row_vals: list[Fraction] = []
    facet_start, facet_row = [0], []
    fid_start, fv_start, fr_start = [0], [0], [0]
    fid_flat: list[int] = []
    fv_flat: list[int] = []
    fr_flat: list[int] = []
    rv_start = [0]
    rv_flat: list[int] = []
    witness: list[Fraction] = []
    outputs: list[Fraction] = []
    volume_num, volume_den = [], []
    rays_start, rays_pts, lines_start, lines_pts = [0], [], [0], []
    for r in regions:
        for j, s in enumerate(r.pattern):
            key = tuple(s)
            k = seen[j].get(key)
            if k is None:
                k = seen[j][key] = len(states[j])
                states[j].append(s)
            state_ids[j].append(k)
        witness.extend(r.witness)
        for f in r.facets:
            rk = (id(f.a), id(f.b))
            k = row_of.get(rk)
            if k is None:
                k = row_of[rk] = len(row_of)
                row_vals.extend(f.a)
                row_vals.append(f.b)
            facet_row.append(k)
            fid_flat.extend(f.ids)
            fid_start.append(len(fid_flat))
            fv_flat.extend(f.vertices)
            fv_start.append(len(fv_flat))
            fr_flat.extend(f.rays)
            fr_start.append(len(fr_flat))
        facet_start.append(len(facet_row))
        rv_flat.extend(r.vertices)
        rv_start.append(len(rv_flat))
        outputs.extend(flat(r.output))
        volume_num.append(0 if r.volume is None else r.volume.numerator)
        volume_den.append(0 if r.volume is None else r.volume.denominator)
        rays_pts.extend(r.rays)
        rays_start.append(len(rays_pts))
        lines_pts.extend(r.lines)
        lines_start.append(len(lines_pts))
    # planes keyed by their entries' (numerator, denominator) pairs: equal iff the rationals are
    # (ints and Fractions are normalized), without hashing Fractions (a modular inverse each)
    planes: dict[tuple[tuple[int, int], ...], int] = {}
    plane_vals: list[Any] = []
    adj_plane: list[int] = []
    for a in adjacency:
        pk = tuple((x.numerator, x.denominator) for x in (*a.a, a.b))
        k = planes.get(pk)
        if k is None:
            k = planes[pk] = len(planes)
            plane_vals.extend(a.a)
            plane_vals.append(a.b)
        adj_plane.append(k)
    return Complex(
        d=d, n_out=len(regions[0].output) if regions else 0, states=states, state_ids=state_ids,
        witness=rationals(witness), vertices=rationals(flat(vertices)),
        region_vertices=Ragged(rv_start, rv_flat), rows=rationals(row_vals),
        facet_start=facet_start, facet_row=facet_row, facet_ids=Ragged(fid_start, fid_flat),
        facet_vertices=Ragged(fv_start, fv_flat), outputs=rationals(outputs),
        volume=Rationals(volume_num, volume_den), repaired=[r.repaired for r in regions],
        adj_i=[a.i for a in adjacency], adj_j=[a.j for a in adjacency],
        adj_plane=adj_plane,
        adj_ids=Ragged([0, *_running([len(a.ids) for a in adjacency])],
                       [i for a in adjacency for i in a.ids]),
        planes=rationals(plane_vals), pieces=pieces,
        facet_rays=Ragged(fr_start, fr_flat) if fr_flat else Ragged([], []),
        rays=(rays_start, rationals(flat(rays_pts))) if rays_pts else None,
        lines=(lines_start, rationals(flat(lines_pts))) if lines_pts else None, stats=stats or {})


def _running(xs: list[int]) -> list[int]:
    out, t = [], 0
    for x in xs:
        t += x
        out.append(t)
    return out
