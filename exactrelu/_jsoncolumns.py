"""A JSON certificate's long lists (vertices, regions, adjacent pairs, pieces) read straight into
columns (:class:`~exactrelu._columns.Complex`), so that :meth:`Certificate.load
<exactrelu.certificate.Certificate.load>` gives a columnar certificate, as ``verify`` does: its
``regions``, ``vertices`` and ``adjacency`` are lazy sequences of views
(:func:`~exactrelu._columns.views`), equal item for item to the objects the object reader
(:func:`exactrelu.certificate._read`) makes of the same JSON, and ``check`` reads its columns.

:func:`read` takes only what it reads exactly as the object reader would, and declines
everything else (None), leaving the JSON untouched: the object reader then reads it, so that a
malformed value is the same :class:`~exactrelu.errors.CertificateError` naming the field, and
valid but unusual forms (rationals written as JSON integers, a pattern whose ops differ in
width from region to region, an op of no units) are read as objects. Declined: any value not of
the exact JSON type the object reader takes (``type(x) is list``, ``dict``, ``str``, ``int``,
``bool``: no subclass, no bool for an int), any count or length the object reader would refuse,
any index out of its range, any rational not in the certificate grammar (``[+-]digits`` or
``[+-]digits/digits``, a non-zero denominator), any missing required key. Rationals are read
in bulk (:func:`_rationals`): the characters of all texts at once (ASCII digits, ``+``, ``-``
and ``/`` only, no sign after ``/``), then each text's one or two integers by ``int`` (which
takes exactly ``[+-]?digits`` once whitespace, underscores and non-ASCII digits are ruled out)
and the pair reduced by its gcd; a text of more than :data:`_SHORT` characters goes through
:func:`exactrelu._parse.parse_certificate` (GMP for long integers). Every bound of the object
reader holds: the work is linear in the JSON's size (one pass over each list, a dict lookup per
pattern, facet row and plane), the columns no larger than the objects.

Nothing here decides anything about what the certificate claims: the columns are data, proven
by :func:`exactrelu.check` (its compiled pass reads them; the Python pass reads their views).
"""

from __future__ import annotations

import itertools
import math
import operator
from typing import Any

import numpy as np

from ._columns import Adjacencies, Complex, Ragged, Rationals, Regions, Vertices, views
from ._parse import parse_certificate
from .certificate import _STATE, Header

__all__ = ["read"]

#: texts of at most this many characters are read by ``int`` (both integers then have at most
#: :data:`exactrelu._parse._SMALL` digits: Python's own conversion, under any limit the
#: interpreter can be set to); longer ones by :func:`~exactrelu._parse.parse_certificate`
_SHORT = 600
#: texts read at a time (bounds the temporary lists of :func:`_rationals`)
_TEXT_CHUNK = 1 << 16
_GRAMMAR = b"0123456789+-/"
_EMPTY: list[Any] = []


class _Declined(Exception):
    """A value :func:`read` does not take: the object reader reads the certificate."""


def read(h: Header, data: dict[str, Any]
         ) -> tuple[Regions, Vertices, Adjacencies, list[int]] | None:
    """The regions, vertices and adjacent pairs of the certificate JSON object ``data`` (whose
    header ``h`` was read) as views of one :class:`~exactrelu._columns.Complex`, and its piece
    labels; None where any value is not read exactly as the object reader reads it (see the
    module docstring). ``data`` is not changed."""
    try:
        cx, pieces = _complex(h, data)
    except (_Declined, KeyError, TypeError, ValueError, IndexError, OverflowError):
        return None
    regions, vertices, adjacency = views(cx)
    return regions, vertices, adjacency, pieces


def _decline() -> Any:
    raise _Declined


def _lists(x: Any, n: int | None = None) -> list[Any]:
    """``x`` if it is a list of lists (each of ``n`` items, where given)."""
    if type(x) is not list or operator.countOf(map(type, x), list) != len(x):
        _decline()
    if n is not None and x and set(map(len, x)) != {n}:
        _decline()
    return x


def _flat(items: Any) -> list[Any]:
    return list(itertools.chain.from_iterable(items))


def _starts(items: list[Any]) -> np.ndarray:
    """The offsets of the lists ``items`` in their concatenation (``len(items) + 1``)."""
    out = np.zeros(len(items) + 1, dtype=np.int64)
    np.cumsum(np.fromiter(map(len, items), dtype=np.int64, count=len(items)), out=out[1:])
    return out


def _ints(x: list[Any], lo: int, hi: int | np.ndarray) -> np.ndarray:
    """``x`` as an int64 array if every item is exactly an int in ``[lo, hi)`` (``hi`` one bound
    each, or one for all)."""
    if operator.countOf(map(type, x), int) != len(x):
        _decline()
    if not x:
        return np.zeros(0, dtype=np.int64)
    if min(x) < lo:
        _decline()
    if isinstance(hi, np.ndarray):
        a = np.array(x, dtype=np.int64)  # every item >= lo >= 0 and below an int64 bound, or
        if np.any(a >= hi):  # too large for int64: OverflowError, declined
            _decline()
        return a
    if max(x) >= hi:
        _decline()
    return np.array(x, dtype=np.int64)


def _ragged(x: Any, lo: int, hi: int) -> Ragged:
    """The lists of ints ``x`` (each in ``[lo, hi)``) as a :class:`~exactrelu._columns.Ragged`."""
    _lists(x)
    return Ragged(_starts(x), _ints(_flat(x), lo, hi))


def _rationals(texts: list[Any]) -> Rationals:
    """The rationals written by ``texts``, each a string in the certificate grammar, as
    :func:`~exactrelu._parse.parse_certificate` reads them (coprime, positive denominators)."""
    n = len(texts)
    if operator.countOf(map(type, texts), str) != n:
        _decline()
    num: list[int] = []
    den: list[int] = []
    for lo in range(0, n, _TEXT_CHUNK):
        chunk = texts[lo:lo + _TEXT_CHUNK]
        if max(map(len, chunk)) > _SHORT:
            for s in chunk:
                f = parse_certificate(s)  # Malformed (a ValueError): declined
                num.append(f.numerator)
                den.append(f.denominator)
            continue
        raw = "".join(chunk).encode("ascii")  # UnicodeEncodeError (a ValueError): declined
        # only digits, signs and slashes (no whitespace, underscore or other digit int() takes),
        # and no sign after a slash: int() then reads exactly [+-]digits and digits
        if raw.translate(None, _GRAMMAR) or b"/+" in raw or b"/-" in raw:
            _decline()
        parts = list(map(operator.methodcaller("partition", "/"), chunk))
        p = [int(a) for a, _, _ in parts]  # ValueError ("", "-", "1+2", "1/2/3"): declined
        q = [int(b) if s else 1 for _, s, b in parts]
        if 0 in q:
            _decline()
        g = list(map(math.gcd, p, q))
        if operator.countOf(g, 1) != len(g):
            for k, gk in enumerate(g):
                if gk != 1:
                    p[k] //= gk
                    q[k] //= gk
        num.extend(p)
        den.extend(q)
    return Rationals(num, den)


def _rows(a: list[Any], b: list[Any], d: int) -> tuple[list[int], Rationals]:
    """Rows ``(a_1, .., a_d, b)`` (``a``: lists of ``d`` texts, ``b``: texts), each distinct row
    of texts once: the number of every row's, and the distinct ones' rationals (flat). Every
    text is a string before any is hashed (an int or a bool would hash as another value)."""
    _lists(a, d)
    if operator.countOf(map(type, b), str) != len(b):
        _decline()
    a_flat = _flat(a)
    if operator.countOf(map(type, a_flat), str) != len(a_flat):
        _decline()
    number: dict[tuple[str, ...], int] = {}
    which = [number.setdefault((*x, y), len(number)) for x, y in zip(a, b, strict=True)]
    return which, _rationals(_flat(number))


def _complex(h: Header, data: dict[str, Any]) -> tuple[Complex, list[int]]:
    d, n_out, n_ids = h.d, h.n_out, h.n_ids
    if type(data) is not dict:
        _decline()
    vs = _lists(data["vertices"], d)
    vertices = _rationals(_flat(vs))
    n_vert = len(vs)
    rs = data["regions"]
    if type(rs) is not list or not rs or operator.countOf(map(type, rs), dict) != len(rs):
        _decline()
    widths = [len(p) for p in _lists(rs[0]["pattern"])]
    if not all(widths):
        _decline()
    n_ops = len(widths)
    seen: list[dict[tuple[int, ...], int]] = [{} for _ in widths]  # an op's states, in order
    state_ids: list[list[int]] = [[] for _ in widths]
    witness: list[Any] = []
    outputs: list[Any] = []
    facets: list[Any] = []
    facet_count: list[int] = []
    region_vertices: list[Any] = []
    volumes: list[Any] = []
    repaired: list[bool] = []
    points: dict[str, list[Any]] = {"rays": [], "lines": []}
    counts: dict[str, list[int]] = {"rays": [], "lines": []}
    m = d + 1
    count_int = operator.countOf
    for r in rs:
        pattern, w, out, fs, rv = r["pattern"], r["witness"], r["output"], r["facets"], \
            r["vertices"]
        if (type(pattern) is not list or len(pattern) != n_ops or type(w) is not list
                or len(w) != d or type(out) is not list or len(out) != n_out
                or type(fs) is not list or type(rv) is not list):
            _decline()
        for j in range(n_ops):
            s = pattern[j]
            # every state an int before the list is hashed (1.0 and True hash as 1)
            if type(s) is not list or len(s) != widths[j] or count_int(map(type, s), int) != len(s):
                _decline()
            state_ids[j].append(seen[j].setdefault(tuple(s), len(seen[j])))
        witness.extend(w)
        for row in out:
            if type(row) is not list or len(row) != m:
                _decline()
            outputs.extend(row)
        facets.extend(fs)
        facet_count.append(len(fs))
        region_vertices.append(rv)
        for name in ("rays", "lines"):
            pts = r.get(name, _EMPTY)
            if type(pts) is not list:
                _decline()
            for p in pts:
                if type(p) is not list or len(p) != d:
                    _decline()
                points[name].extend(p)
            counts[name].append(len(pts))
        volumes.append(r.get("volume"))
        rep = r.get("repaired", False)
        if type(rep) is not bool:
            _decline()
        repaired.append(rep)
    n = len(rs)
    states = []
    for table in seen:
        a = np.array(list(table), dtype=np.int64)  # a state beyond int64: OverflowError, declined
        if a.min() < -_STATE or a.max() >= _STATE:
            _decline()
        states.append(a)
    if operator.countOf(map(type, facets), dict) != len(facets):
        _decline()
    fa, fb, fids, fverts = (list(map(operator.itemgetter(key), facets))
                            for key in ("a", "b", "ids", "vertices"))
    frays = [f.get("rays", _EMPTY) for f in facets]
    facet_row, rows = _rows(fa, fb, d)
    facet_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(facet_count, out=facet_start[1:])
    ray_start = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts["rays"], out=ray_start[1:])
    _lists(frays)
    rays_of_facet = np.repeat(np.asarray(counts["rays"], dtype=np.int64), facet_count)
    facet_rays = Ragged(_starts(frays), _ints(_flat(frays), 0, np.repeat(
        rays_of_facet, np.fromiter(map(len, frays), dtype=np.int64, count=len(frays)))))
    given = [v for v in volumes if v is not None]
    vq = iter(zip(*_rationals(given), strict=True))
    vol = [(0, 0) if v is None else next(vq) for v in volumes]
    sides: dict[str, tuple[Any, Rationals] | None] = {}
    for name in ("rays", "lines"):
        start = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(counts[name], out=start[1:])
        sides[name] = (start, _rationals(points[name])) if points[name] else None
    # adjacent pairs and piece labels
    pairs = data["adjacency"]
    if type(pairs) is not list or operator.countOf(map(type, pairs), dict) != len(pairs):
        _decline()
    ai, aj, pa, pb, pids = (list(map(operator.itemgetter(key), pairs))
                            for key in ("i", "j", "a", "b", "ids"))
    adj_plane, planes = _rows(pa, pb, d)
    pieces = data["pieces"]
    if type(pieces) is not list or len(pieces) != n:
        _decline()
    piece_array = _ints(pieces, 0, n)
    cx = Complex(
        d=d, n_out=n_out, states=states, state_ids=state_ids, witness=_rationals(witness),
        vertices=vertices, region_vertices=_ragged(region_vertices, 0, n_vert), rows=rows,
        facet_start=facet_start, facet_row=facet_row, facet_ids=_ragged(fids, 0, n_ids),
        facet_vertices=_ragged(fverts, 0, n_vert), outputs=_rationals(outputs),
        volume=Rationals([p for p, _ in vol], [q for _, q in vol]), repaired=repaired,
        adj_i=_ints(ai, 0, n), adj_j=_ints(aj, 0, n), adj_plane=adj_plane,
        adj_ids=_ragged(pids, 0, n_ids), planes=planes, pieces=piece_array,
        facet_rays=facet_rays if len(facet_rays.flat) else Ragged([], []),
        rays=sides["rays"], lines=sides["lines"])
    return cx, list(pieces)
