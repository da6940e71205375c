"""Certificates: exact regions, vertices, adjacency and counts, stored as plain JSON
(gzip-compressed when the file's name ends in ``.gz``).

Rationals are written as ``"p/q"`` strings (``"p"`` for integers; never floats, never pickle), of
any size. A certificate carries the digest of the network's exact parameters and architecture,
the domain, the places where the network was not taken exactly as written (BatchNorm folded in
float64) and the package version.

Loading is data only, and bounded: work and memory linear in the file's size (numbers of more
than 600 digits are read by GMP in near-linear time), whatever the file holds.

* A file starting with gzip's magic bytes is decompressed first (whatever its name), to at most
  :data:`GZIP_MAX_RATIO` times its size (plus a MiB): a gzip bomb stops there, a
  :class:`~exactrelu.errors.CertificateError`, as do corrupt, truncated or trailing data.

* Rationals are ``[+-]digits`` or ``[+-]digits/digits`` strings and nothing else (no exponents,
  decimals, whitespace or underscores), each integer of at most ``exactrelu._parse.MAX_DIGITS``
  (a million) digits; JSON integer literals (indices, counts) have at most 600 digits.
* Every size is checked before the work it announces: the domain's (see the limits of
  :mod:`exactrelu.domain`: at most 10 dimensions when bounded, 1024 otherwise), ``input_shape``
  (its product is the domain's input size), ``output_shape`` (its product is each region's
  number of output rows), the length of every point (the domain's dimension), every index (into
  the listed vertices, rays, regions and constraint ids) and the counts ``num_regions`` and
  ``num_pieces``. Text fields are at most 65,536 characters, ``stats`` at most 16 levels deep.
* Anything else, a list where an object belongs, ``[]`` as the whole file, a boolean for an
  integer, nesting deeper than the JSON parser takes, raises
  :class:`~exactrelu.errors.CertificateError` naming the field, e.g.
  ``regions[3].facets[0].a[1]: 'one' is not a rational ...``.

What the fields mean is not checked here: :func:`exactrelu.check` proves every one of them.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import MutableSequence, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any

from . import _parse
from ._parse import Malformed, coprime_fraction
from ._progress import progress_bar
from .domain import Domain, read_json as _read_domain, shape_size
from .errors import CertificateError

__all__ = ["FORMAT", "GZIP_MAX_RATIO", "Certificate", "gunzip", "Region", "RegionFacet",
           "Adjacency", "canonical_hyperplane",
           "coprime_fraction"]

FORMAT = "exactrelu-certificate/1"

_TEXT = 1 << 16  # characters of a text field
_STATS_DEPTH = 16
_STATE = 1 << 31  # |state| of a pattern entry (an op's state: a sign, a piece, a window position)
_SAVE_CHUNK = 4096  # items written at a time


#: gzip certificates: :meth:`Certificate.load` decompresses at most ``GZIP_MAX_RATIO`` bytes of
#: JSON per byte of the file, plus ``GZIP_SLACK`` (so that a small certificate of many repeated
#: numbers loads whatever its ratio), and refuses anything larger as a gzip bomb before
#: decompressing it further: the work and memory of a gzip certificate are linear in its size, as
#: a plain one's are. Genuine certificates compress 4x to 11x (the README's "Certificates on
#: disk"); deflate itself reaches 1032x.
GZIP_MAX_RATIO = 64
GZIP_SLACK = 1 << 20
GZIP_LEVEL = 6
_GZIP_MAGIC = b"\x1f\x8b"
_GZIP_CHUNK = 1 << 20


def gunzip(data: bytes, max_ratio: int = GZIP_MAX_RATIO, slack: int = GZIP_SLACK) -> bytes:
    """The decompressed bytes of a gzip file (one or more members), at most
    ``max_ratio * len(data) + slack`` of them; raises :class:`~exactrelu._parse.Malformed` on a
    corrupt, truncated or too large stream, or bytes after the last member that are not one,
    having decompressed at most one chunk (a MiB) past the limit."""
    import zlib

    limit = max_ratio * len(data) + slack
    chunks: list[bytes] = []
    size = 0
    rest = data
    while True:
        inflate = zlib.decompressobj(16 + zlib.MAX_WBITS)  # a gzip member, header and trailer
        buf = rest
        try:
            while not inflate.eof:
                chunk = inflate.decompress(buf, min(_GZIP_CHUNK, limit - size + 1))
                size += len(chunk)
                if size > limit:
                    raise Malformed(f"it decompresses to more than {limit:,} bytes, "
                                    f"{max_ratio} times its {len(data):,} bytes plus "
                                    f"{slack:,} (exactrelu.certificate.GZIP_MAX_RATIO): a "
                                    "gzip bomb, or not a certificate (a certificate "
                                    "compressed that well loads once gunzip has "
                                    "decompressed it)")
                chunks.append(chunk)
                buf = inflate.unconsumed_tail
                if not buf and not chunk and not inflate.eof:
                    raise Malformed("the gzip stream is truncated")
        except zlib.error as exc:
            raise Malformed(f"corrupt gzip data ({exc})") from None
        rest = inflate.unused_data
        if not rest:
            return b"".join(chunks)
        if rest[:2] != _GZIP_MAGIC:
            raise Malformed(f"{len(rest):,} bytes after the gzip stream that are not gzip")


#: ``q(x)``: ``x`` as a certificate writes it, ``"p/q"`` or ``"p"``, of any size (never Python's
#: 4300-digit limit on int -> str).
q = _parse.text


@dataclass(slots=True)
class RegionFacet:
    """A facet ``a . t <= b`` of a region: ``a``, ``b`` one of its constraints as it bounds the
    region; ``ids`` every constraint id of the region (domain rows included) vanishing on the
    facet, each once; ``vertices`` and ``rays`` exactly the region's vertices and rays on it."""

    a: tuple[Fraction, ...]
    b: Fraction
    ids: tuple[int, ...]
    vertices: tuple[int, ...]  # global vertex indices on this facet
    rays: tuple[int, ...] = ()  # indices into the region's rays lying on this facet


@dataclass(slots=True)
class Region:
    """One certified activation region. Every field is a claim the checker proves, except
    ``repaired`` (provenance: the exact layer found the region where the float trace had missed
    or mislabelled it), which it never reads. ``vertices`` holds every vertex of the region, each
    once; ``facets`` every facet; ``rays`` the extreme rays modulo the lineality space spanned by
    ``lines``; ``volume`` the exact volume (bounded domains; required up to 3-D)."""

    index: int
    pattern: list[list[int]]  # one flat list of states per piecewise op (read-only: may be shared)
    witness: tuple[Fraction, ...]  # strictly inside
    facets: list[RegionFacet]
    vertices: list[int]  # global vertex indices
    output: list[list[Fraction]]  # rows [a_1..a_d, c]: output_i(t) = a . t + c
    volume: Fraction | None = None
    repaired: bool = False
    # extreme rays (unbounded domains)
    rays: list[tuple[Fraction, ...]] = field(default_factory=list)
    lines: list[tuple[Fraction, ...]] = field(default_factory=list)  # lineality space basis

    def expression(self, names: Sequence[str] | None = None) -> list:
        """The exact output map as sympy expressions (one per output)."""
        import sympy

        d = len(self.witness)
        syms = sympy.symbols(list(names) if names else [f"t{i}" for i in range(d)])
        syms = syms if isinstance(syms, (list, tuple)) else [syms]
        return [sum((sympy.Rational(a.numerator, a.denominator) * s
                     for a, s in zip(row[:-1], syms, strict=True)), sympy.Integer(0))
                + sympy.Rational(row[-1].numerator, row[-1].denominator) for row in self.output]


@dataclass(slots=True)
class Adjacency:
    """Regions ``i < j`` share a (d-1)-face on the hyperplane ``a . t = b`` (the first non-zero
    entry of ``a`` is 1); ``ids`` the union of the ids of their facets on it."""

    i: int
    j: int
    a: tuple[Fraction, ...]
    b: Fraction
    ids: tuple[int, ...]


@dataclass
class Certificate:
    """Exact regions of a network on a domain; every number is a theorem about the network,
    proven by :func:`exactrelu.check` (its docstring gives the argument for each field). Not
    claims, never read by the checker: ``version`` and ``stats`` (which engine made it, how long
    it took, what the float trace proposed) and each region's ``repaired`` flag."""

    domain: Domain
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    digest: str
    constraint_offsets: list[int]
    # lists, or lazy sequences of views (a columnar or sharded certificate; see exactrelu._columns)
    regions: MutableSequence[Region]
    vertices: MutableSequence[tuple[Fraction, ...]]
    adjacency: MutableSequence[Adjacency]
    pieces: list[int]  # piece index of every region
    notes: list[str] = field(default_factory=list)
    version: str = ""
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def num_regions(self) -> int:
        return len(self.regions)

    @property
    def num_pieces(self) -> int:
        return len(set(self.pieces))

    @property
    def num_vertices(self) -> int:
        return len(self.vertices)

    @property
    def dim(self) -> int:
        return self.domain.dim

    def edges(self) -> list[tuple[int, int]]:
        """2-D only: the edges of the complex (pairs of global vertex indices, sorted).

        A facet is cut at every vertex of the complex lying on it (a vertex of a neighbour can sit
        inside a facet where a hyperplane bends), so V - E + F = 1 holds on a polygon domain.
        """
        if self.dim != 2:
            raise CertificateError("edges() is defined for 2-D certificates")
        groups: dict[tuple, list[RegionFacet]] = {}
        for r in self.regions:
            for f in r.facets:
                groups.setdefault(canonical_hyperplane(f.a, f.b)[0], []).append(f)
        out: set[tuple[int, int]] = set()
        for key, fs in groups.items():
            a = key[0]
            direction = (-a[1], a[0])
            pos = {k: self.vertices[k][0] * direction[0] + self.vertices[k][1] * direction[1]
                   for f in fs for k in f.vertices}
            on_line = sorted({k for f in fs for k in f.vertices}, key=pos.__getitem__)
            for f in fs:
                lo, hi = min(pos[k] for k in f.vertices), max(pos[k] for k in f.vertices)
                pts = [k for k in on_line if lo <= pos[k] <= hi]
                for u, v in itertools.pairwise(pts):
                    out.add((min(u, v), max(u, v)))
        return sorted(out)

    def to_latex(self, names: Sequence[str] | None = None, max_regions: int = 50,
                 **kwargs: Any) -> str:
        """A LaTeX piecewise definition of a small 1-D/2-D net (see ``exactrelu._latex``)."""
        from ._latex import certificate_to_latex
        return certificate_to_latex(self, names, max_regions, **kwargs)

    def dual_graph(self) -> Any:
        """The dual graph as a ``networkx.Graph`` (see :func:`exactrelu.analysis.dual_graph`)."""
        from .analysis import dual_graph
        return dual_graph(self)

    def to_csv(self, path: str | Path, **kwargs: Any) -> None:
        """Per-region statistics as CSV, one row per region, exact rationals as ``"p/q"`` beside
        their floats (see :mod:`exactrelu.export`)."""
        from .export import to_csv
        to_csv(self, path, **kwargs)

    def to_dataframe(self, **kwargs: Any) -> Any:
        """Per-region statistics as a ``pandas.DataFrame`` (the ``paper`` extra; see
        :mod:`exactrelu.export`)."""
        from .export import to_dataframe
        return to_dataframe(self, **kwargs)

    def summary(self) -> str:
        return (f"{self.num_regions} regions, {self.num_pieces} pieces, {self.num_vertices} "
                f"vertices, {len(self.adjacency)} adjacent pairs on {self.domain!r}")

    def __repr__(self) -> str:
        """One short line (a test's failed assertion shows it), never the regions themselves."""
        return f"<Certificate: {self.summary()}>"

    # --------------------------------------------------------------------------- JSON
    def header_json(self) -> dict[str, Any]:
        """Every field of :meth:`to_json` but the long lists (vertices, regions, adjacency,
        pieces): what a sharded certificate keeps in its manifest."""
        return header_json(self.domain, self.input_shape, self.output_shape, self.digest,
                           self.constraint_offsets, self.notes, self.version, self.num_regions,
                           self.num_pieces, self.stats)

    def to_json(self) -> dict[str, Any]:
        return {
            **self.header_json(),
            "vertices": [[q(c) for c in v] for v in self.vertices],
            "regions": [region_json(r) for r in self.regions],
            "adjacency": [adjacency_json(a) for a in self.adjacency],
            "pieces": list(self.pieces),
        }

    def save(self, path: str | Path, shard_rows: int | None = None,
             progress: bool = True) -> None:
        """Write the certificate as JSON (numbers of any size), gzip-compressed when the name ends
        in ``.gz`` (``x.cert.json.gz``; the same bytes for the same certificate: no time stamp),
        or as a sharded directory of Parquet files when it ends in ``.parquet`` (the ``parquet``
        extra; ``shard_rows`` rows per shard; see :mod:`exactrelu._shards`). Either is written
        from the certificate's sequences a chunk at a time (a columnar certificate's views are
        made a chunk at a time), with a bar on a terminal unless ``progress`` is false."""
        if str(path).rstrip("/").endswith(".parquet"):
            from . import _shards

            rows = _shards.SHARD_ROWS if shard_rows is None else shard_rows
            _shards.save(self, path, rows, progress)
            return
        total = len(self.vertices) + len(self.regions) + len(self.adjacency)
        with open(path, "wb") as raw, progress_bar(total, "saving", progress and total > 1) as bar:
            if str(path).endswith(".gz"):
                import gzip

                with gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                   compresslevel=GZIP_LEVEL, mtime=0) as out:
                    self._write_json(out, bar)
            else:
                self._write_json(raw, bar)

    def _write_json(self, out: Any, bar: Any) -> None:
        """Write :meth:`to_json` as compact JSON to ``out``, the bytes ``json.dumps(to_json(),
        separators=(",", ":"))`` gives, the long lists a chunk of items at a time."""
        import json

        def dumps(x: Any) -> str:
            return json.dumps(x, separators=(",", ":"))

        from . import _shards

        out.write(dumps(self.header_json())[:-1].encode("utf-8"))
        lists: tuple[tuple[str, Any], ...] = (
            ("vertices", lambda v: [q(c) for c in v]), ("regions", region_json),
            ("adjacency", adjacency_json))
        for key, convert in lists:
            seq = getattr(self, key)
            # a columnar certificate's rows as the Parquet writer makes them (their fields are
            # the JSON's, in its order), else its items converted one by one
            table = _shards.columnar_rows(self, key)
            out.write(f',"{key}":['.encode())
            n = len(seq)
            for lo in range(0, n, _SAVE_CHUNK):
                hi = min(lo + _SAVE_CHUNK, n)
                if table is None:
                    rows = [convert(x) for x in _shards.items(seq, lo, hi)]
                else:
                    t = table(lo, hi)
                    rows = (t.column("coordinates").to_pylist() if key == "vertices" else
                            t.drop_columns(["piece"]).to_pylist() if key == "regions" else
                            t.to_pylist())
                text = ",".join(map(dumps, rows))
                out.write(((',' if lo else '') + text).encode("utf-8"))
                bar.update(hi - lo)
            out.write(b"]")
        out.write(f',"pieces":{dumps(list(self.pieces))}}}'.encode())

    @staticmethod
    def load(path: str | Path) -> Certificate:
        """Read a certificate written by :meth:`save`, plain or gzip (told by its first bytes,
        whatever its name); bounded and strict (see the module docstring), every failure a
        :class:`~exactrelu.errors.CertificateError`. JSON is read into columns, a columnar
        certificate as :func:`exactrelu.verify` returns (:mod:`exactrelu._jsoncolumns`; its
        items equal to the objects :meth:`from_json` makes), or as objects where the columnar
        reader declines a value (a malformed one, or a valid form the columns do not hold). A
        directory is read as a sharded certificate, lazily (:mod:`exactrelu._shards`)."""
        if Path(path).is_dir():
            from . import _shards

            return _shards.load(path)
        try:
            raw = Path(path).read_bytes()
        except OSError as exc:
            reason = "no such file" if isinstance(exc, FileNotFoundError) else exc.strerror or exc
            raise CertificateError(f"cannot read a certificate at {path}: {reason}") from None
        if raw[:2] == _GZIP_MAGIC:
            try:
                raw = gunzip(raw)
            except Malformed as exc:
                raise CertificateError(f"{path} is not a gzip certificate: {exc}") from None
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise CertificateError(f"{path} is not a JSON certificate (not UTF-8 text: "
                                   f"{exc})") from None
        del raw
        try:
            data = _parse.read_json(text)
        except Malformed as exc:
            raise CertificateError(f"{path} is not a JSON certificate: {exc}") from None
        del text
        return _certificate(data, consume=True, columns=True)  # its own parse

    @staticmethod
    def from_json(data: Any) -> Certificate:
        """The certificate of :meth:`to_json`'s output, as objects (lists of regions, vertices
        and adjacent pairs); strict (see the module docstring)."""
        return _certificate(data)


def _certificate(data: Any, consume: bool = False, columns: bool = False) -> Certificate:
    """:func:`_read`, every failure a :class:`~exactrelu.errors.CertificateError`."""
    try:
        return _read(data, consume, columns)
    except Malformed as exc:
        raise CertificateError(f"malformed certificate: {exc.where()}") from None


def header_json(domain: Domain, input_shape: Sequence[int], output_shape: Sequence[int],
                digest: str, constraint_offsets: Sequence[int], notes: Sequence[str],
                version: str, num_regions: int, num_pieces: int,
                stats: dict[str, Any]) -> dict[str, Any]:
    """A certificate's header (:meth:`Certificate.header_json`) from its fields, for a writer
    that never holds the whole certificate (workers writing their shards)."""
    return {
        "format": FORMAT,
        "version": version,
        "digest": digest,
        "domain": domain.to_json(),
        "input_shape": list(input_shape),
        "output_shape": list(output_shape),
        "constraint_offsets": list(constraint_offsets),
        "notes": list(notes),
        "num_regions": num_regions,
        "num_pieces": num_pieces,
        "stats": stats,
    }


def region_json(r: Region) -> dict[str, Any]:
    """A region as its certificate JSON object (without its index: its position)."""
    return {
        "pattern": r.pattern,
        "witness": [q(c) for c in r.witness],
        "facets": [{"a": [q(c) for c in f.a], "b": q(f.b), "ids": list(f.ids),
                    "vertices": list(f.vertices), "rays": list(f.rays)} for f in r.facets],
        "rays": [[q(c) for c in v] for v in r.rays],
        "lines": [[q(c) for c in v] for v in r.lines],
        "vertices": r.vertices,
        "output": [[q(c) for c in row] for row in r.output],
        "volume": None if r.volume is None else q(r.volume),
        "repaired": r.repaired,
    }


def adjacency_json(a: Adjacency) -> dict[str, Any]:
    """An adjacent pair as its certificate JSON object."""
    return {"i": a.i, "j": a.j, "a": [q(c) for c in a.a], "b": q(a.b), "ids": list(a.ids)}


def canonical_hyperplane(a: Sequence[Fraction], b: Fraction) -> tuple[tuple, int]:
    """((a', b') scaled so the first non-zero entry of a' is 1, side): side is the sign of that
    entry."""
    for v in a:
        if v != 0:
            s = abs(v)
            side = 1 if v > 0 else -1
            return (tuple(x * side / s for x in a), b * side / s), side
    raise CertificateError("a facet with a zero normal")


def _all_facet_vertex_sets(cert: Certificate) -> list[tuple[int, ...]]:
    return [f.vertices for r in cert.regions for f in r.facets]


# --------------------------------------------------------------------------------- reading
def _stats(x: Any) -> dict[str, Any]:
    """``x`` if it is an object of JSON values nested at most ``_STATS_DEPTH`` deep (walked
    without recursion)."""
    _parse.obj(x)
    stack = [(x, 1)]
    while stack:
        v, depth = stack.pop()
        if depth > _STATS_DEPTH:
            raise Malformed(f"nested more than {_STATS_DEPTH} levels deep")
        children = v.values() if type(v) is dict else v
        for c in children:
            if type(c) in (dict, list):
                stack.append((c, depth + 1))
            elif type(c) is int and c.bit_length() > 1990:  # written back under any int limit
                raise Malformed(f"{_parse.show(c)}; integers in stats have at most 600 digits")
    return x


def _facet(f: Any, d: int, n_vertices: int, n_rays: int, n_ids: int) -> RegionFacet:
    get, under, integers = _parse.get, _parse.under, _parse.integers
    _parse.obj(f)
    return RegionFacet(under(".a", _parse.rationals, get(f, "a"), d),
                       under(".b", _parse.rational, get(f, "b")),
                       under(".ids", integers, get(f, "ids"), 0, n_ids),
                       under(".vertices", integers, get(f, "vertices"), 0, n_vertices),
                       under(".rays", integers, get(f, "rays", []), 0, n_rays))


def _points(x: Any, d: int) -> list[tuple[Fraction, ...]]:
    rationals = _parse.rationals
    out = []
    for k, v in enumerate(_parse.items(x)):
        try:
            out.append(rationals(v, d))
        except Malformed as exc:
            raise exc.under(f"[{k}]") from None
    return out


def _region(index: int, r: Any, d: int, n_out: int, n_vertices: int, n_ids: int) -> Region:
    get, under = _parse.get, _parse.under
    _parse.obj(r)
    pattern = []
    for k, states in enumerate(under(".pattern", _parse.items, get(r, "pattern"))):
        pattern.append(list(under(f".pattern[{k}]", _parse.integers, states, -_STATE, _STATE)))
    witness = under(".witness", _parse.rationals, get(r, "witness"), d)
    rays = under(".rays", _points, get(r, "rays", []), d)
    lines = under(".lines", _points, get(r, "lines", []), d)
    facets = []
    for k, f in enumerate(under(".facets", _parse.items, get(r, "facets"))):
        facets.append(under(f".facets[{k}]", _facet, f, d, n_vertices, len(rays), n_ids))
    vertices = list(under(".vertices", _parse.integers, get(r, "vertices"), 0, n_vertices))
    rows = under(".output", _parse.items, get(r, "output"), n_out, None,
                 "rows (the product of output_shape)")
    output = [list(under(f".output[{k}]", _parse.rationals, row, d + 1, "entries (dimension + 1)"))
              for k, row in enumerate(rows)]
    volume = get(r, "volume", None)
    volume = None if volume is None else under(".volume", _parse.rational, volume)
    repaired = under(".repaired", _parse.boolean, get(r, "repaired", False))
    return Region(index, pattern, witness, facets, vertices, output, volume, repaired, rays, lines)


def _adjacency(a: Any, d: int, n_regions: int, n_ids: int) -> Adjacency:
    get, under = _parse.get, _parse.under
    _parse.obj(a)
    return Adjacency(under(".i", _parse.integer, get(a, "i"), 0, n_regions),
                     under(".j", _parse.integer, get(a, "j"), 0, n_regions),
                     under(".a", _parse.rationals, get(a, "a"), d),
                     under(".b", _parse.rational, get(a, "b")),
                     under(".ids", _parse.integers, get(a, "ids"), 0, n_ids))


@dataclass
class Header:
    """The fields of a certificate besides its long lists, read and checked (:func:`read_header`),
    and what reading the lists needs: the dimension, output rows and constraint ids."""

    domain: Domain
    input_shape: tuple[int, ...]
    output_shape: tuple[int, ...]
    offsets: list[int]
    notes: list[str]
    digest: str
    version: str
    stats: dict[str, Any]
    num_regions: int
    num_pieces: int

    @property
    def d(self) -> int:
        return self.domain.dim

    @property
    def n_out(self) -> int:
        """Output rows of every region's map: the product of ``output_shape``."""
        return math.prod(self.output_shape)

    @property
    def n_ids(self) -> int:
        return self.offsets[-1]

    def certificate(self, regions: MutableSequence[Region],
                    vertices: MutableSequence[tuple[Fraction, ...]],
                    adjacency: MutableSequence[Adjacency], pieces: list[int]) -> Certificate:
        """The certificate of these lists (which may be lazy sequences), with the counts checked
        against them."""
        n = len(regions)
        if self.num_regions != n:
            raise Malformed(f"says {self.num_regions} but {n} regions are listed", ".num_regions")
        cert = Certificate(self.domain, self.input_shape, self.output_shape, self.digest,
                           self.offsets, regions, vertices, adjacency, pieces, self.notes,
                           self.version, self.stats)
        if self.num_pieces != cert.num_pieces:
            raise Malformed(f"says {self.num_pieces} but the piece labels give "
                            f"{cert.num_pieces}", ".num_pieces")
        return cert


def read_header(top: Any, fmt: str = FORMAT) -> Header:
    """The header fields of a certificate's JSON object (or a sharded certificate's manifest,
    whose format is ``fmt``), checked; raises :class:`Malformed` with the field's path."""
    get, under, integer, integers = _parse.get, _parse.under, _parse.integer, _parse.integers
    _parse.obj(top)
    got = get(top, "format")
    if got != fmt:
        raise Malformed(f"unknown certificate format {_parse.kind(got)} (expected {fmt!r})",
                        ".format")
    domain = under(".domain", _read_domain, get(top, "domain"))
    input_shape, n_in = under(".input_shape", shape_size, get(top, "input_shape"))
    if n_in != domain.input_dim:
        raise Malformed(f"{n_in:,} inputs, but the domain has {domain.input_dim:,}", ".input_shape")
    output_shape, _ = under(".output_shape", shape_size, get(top, "output_shape"))
    offsets = list(under(".constraint_offsets", integers, get(top, "constraint_offsets"), 0,
                         1 << 62))
    n_dom = len(domain.halfspaces()[1])
    if not offsets or offsets[0] != n_dom or any(b < a for a, b in itertools.pairwise(offsets)):
        raise Malformed(f"expected non-decreasing ids starting at the domain's {n_dom} "
                        f"constraints, got {len(offsets)} values", ".constraint_offsets")
    notes = under(".notes", _parse.items, get(top, "notes", []))
    notes = [under(f".notes[{k}]", _parse.string, v, _TEXT) for k, v in enumerate(notes)]
    return Header(domain, input_shape, output_shape, offsets, notes,
                  under(".digest", _parse.string, get(top, "digest"), _TEXT),
                  under(".version", _parse.string, get(top, "version", ""), _TEXT),
                  under(".stats", _stats, get(top, "stats", {})),
                  under(".num_regions", integer, get(top, "num_regions")),
                  under(".num_pieces", integer, get(top, "num_pieces")))


def _read(data: Any, consume: bool = False, columns: bool = False) -> Certificate:
    """:meth:`Certificate.from_json`, raising :class:`Malformed` with the field's path.
    ``columns``: the long lists are read into columns where :func:`exactrelu._jsoncolumns.read`
    takes them all (a columnar certificate, as ``verify`` returns), else as objects.
    ``consume`` (objects): each parsed region and adjacent pair is dropped from ``data`` once
    its object is made (the two never held whole at once)."""
    get, under, items = _parse.get, _parse.under, _parse.items
    h = read_header(data)
    if columns:
        from . import _jsoncolumns

        got = _jsoncolumns.read(h, data)
        if got is not None:
            return h.certificate(*got)
    d = h.d
    vertices = under(".vertices", _points, get(data, "vertices"), d)
    rs = under(".regions", items, get(data, "regions"))
    if not rs:
        raise Malformed("no regions (every domain has at least one)", ".regions")
    regions = []
    for i, r in enumerate(rs):
        regions.append(under(f".regions[{i}]", _region, i, r, d, h.n_out, len(vertices), h.n_ids))
        if consume:
            rs[i] = None
    n = len(regions)
    adjacency = []
    pairs = under(".adjacency", items, get(data, "adjacency"))
    for k, a in enumerate(pairs):
        adjacency.append(under(f".adjacency[{k}]", _adjacency, a, d, n, h.n_ids))
        if consume:
            pairs[k] = None
    pieces = list(under(".pieces", _parse.integers, get(data, "pieces"), 0, n, n))
    return h.certificate(regions, vertices, adjacency, pieces)
