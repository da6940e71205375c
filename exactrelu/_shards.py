"""Sharded certificates: a directory of Parquet files and a manifest, for certificates too big
for one JSON document; read lazily, one shard at a time.

``cert.save("big.parquet")`` (any name ending in ``.parquet``) writes a directory::

    big.parquet/
      manifest.json                    the header (every field but the long lists), and the shards
      regions/part-00000.parquet ...   one row per region, in order, with its piece label
      vertices/part-00000.parquet ...  one row per global vertex
      adjacency/part-00000.parquet ... one row per adjacent pair

Each table is a Parquet dataset (``pandas.read_parquet("big.parquet/regions")`` or
``dask.dataframe.read_parquet`` read it as it is); its columns are the fields of the JSON
certificate, rationals as the same ``"p/q"`` strings (exact, of any size; Parquet's decimals stop
at 76 digits), indices as 64-bit integers, compressed with zstd. Parquet (through pyarrow) is
what pandas and Dask read natively, keeps one type per column (so a shard's schema is checked
once, not value by value), compresses columns of similar strings well, and reads one column
without the others (the piece labels at load time).

The manifest lists every shard with its row count, byte size and SHA-256. :meth:`Certificate.load
<exactrelu.certificate.Certificate.load>` reads the manifest and, for each region shard, checks
its size and digest and reads its ``piece`` column; regions, vertices and adjacency are then
sequences that read a shard when an item of it is first wanted, checking size, digest, row count
and schema again. A shard is read as columns (a :class:`~exactrelu._columns.Complex` of its
rows, views made on access: a few hundred bytes to a few KB per region), every value checked as
the JSON reader checks it; a shard the columnar reader declines is read row by row by the JSON
reader's rules, so a malformed value is a :class:`~exactrelu.errors.CertificateError` naming it,
e.g. ``regions[70001].witness[0]``, when its shard is read. Shards read by index are kept, so
random accesses over all of a table hold its columns; ``cert.regions.shards()`` walks the
regions one shard at a time (each shard's views for one pass, with its columns), and
``cert.regions.release()`` drops what was read.
:func:`exactrelu.check` reads every table that way, one shard at a time (only adjacency in
d >= 3 reads regions by index).

Bounds: the manifest is JSON read as a certificate is (at most :data:`MANIFEST_BYTES`); a shard
is read only if its size and digest are the manifest's, and only if the sizes its footer
declares (each column chunk, uncompressed) are at most :data:`~exactrelu.certificate.
GZIP_MAX_RATIO` times the file's size plus a MiB, as for gzip certificates. Beyond the footer,
the bound relies on pyarrow's reader, which decompresses each page into the size its header
declares and fails on any other: this is the one place where exactrelu parses a file with a
reader it did not write, and a hostile shard reaches it only together with a manifest naming it.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import shutil
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, overload

import numpy as np

from . import _parse
from ._columns import (
    Adjacencies,
    Complex,
    Lazy,
    Ragged,
    Rationals,
    Regions,
    StateTable,
    Vertices,
    state_table,
)
from ._deps import extra_missing
from ._parse import Malformed
from ._progress import progress_bar
from .certificate import (
    _STATE,
    GZIP_MAX_RATIO,
    GZIP_SLACK,
    Adjacency,
    Certificate,
    Header,
    Region,
    _adjacency,
    _region,
    adjacency_json,
    read_header,
    region_json,
)
from .errors import CertificateError, InvalidInputError, MissingDependencyError

__all__ = ["MANIFEST_BYTES", "SHARD_ROWS", "FORMAT", "load", "save"]

FORMAT = "exactrelu-shards/1"
MANIFEST = "manifest.json"
#: Rows per shard (regions, vertices or adjacent pairs): about 5 to 15 MB of Parquet for 2-D
#: regions of a wide net. A reader holds a shard's regions as columns (about 1.5 KB each on
#: 2-64-64-64), so this also bounds what a streaming check holds at once.
SHARD_ROWS = 1 << 14
#: The largest manifest read (its shards list grows by about 150 bytes per shard).
MANIFEST_BYTES = 1 << 24
TABLES = ("regions", "vertices", "adjacency")

T = TypeVar("T")


def _arrow() -> tuple[Any, Any]:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as err:
        raise extra_missing(err, "exactrelu._shards", "parquet") from err
    return pa, pq


def _schemas(pa: Any) -> dict[str, Any]:
    rational, rationals = pa.string(), pa.list_(pa.string())
    index = pa.list_(pa.int64())
    facet = pa.struct([("a", rationals), ("b", rational), ("ids", index), ("vertices", index),
                       ("rays", index)])
    return {
        "regions": pa.schema([
            ("pattern", pa.list_(index)), ("witness", rationals), ("facets", pa.list_(facet)),
            ("rays", pa.list_(rationals)), ("lines", pa.list_(rationals)), ("vertices", index),
            ("output", pa.list_(rationals)), ("volume", rational), ("repaired", pa.bool_()),
            ("piece", pa.int64())]),
        "vertices": pa.schema([("coordinates", rationals)]),
        "adjacency": pa.schema([("i", pa.int64()), ("j", pa.int64()), ("a", rationals),
                                ("b", rational), ("ids", index)]),
    }


def schemas() -> dict[str, Any]:
    """Each table's Arrow schema."""
    return _schemas(_arrow()[0])


# --------------------------------------------------------------------------------- writing
#: Rows per Parquet row group: what is built in memory at a time while a shard is written.
GROUP_ROWS = 4096


def save(cert: Certificate, path: str | Path, shard_rows: int = SHARD_ROWS,
         progress: bool = True) -> None:
    """Write ``cert`` as a sharded certificate directory at ``path`` (replacing one that is
    there; refusing to replace anything else); ``progress``: a bar over the shards on a
    terminal. A table whose sequence is a columnar certificate's, unchanged, is written from
    its columns (Arrow arrays of its index columns, rationals formatted straight from their
    integers); any other from its items, ``GROUP_ROWS`` at a time."""
    pa, _ = _arrow()
    if isinstance(shard_rows, bool) or not isinstance(shard_rows, int) or shard_rows < 1:
        raise InvalidInputError(f"shard_rows={shard_rows!r}: pass a positive integer")
    root = prepare(path)
    schemas = _schemas(pa)
    rows: dict[str, Callable[[int, int], Any]] = {
        "regions": lambda lo, hi: [{**region_json(r), "piece": p} for r, p in
                                   zip(items(cert.regions, lo, hi), cert.pieces[lo:hi],
                                       strict=True)],
        "vertices": lambda lo, hi: [{"coordinates": [_parse.text(c) for c in v]}
                                    for v in items(cert.vertices, lo, hi)],
        "adjacency": lambda lo, hi: [adjacency_json(a) for a in items(cert.adjacency, lo, hi)],
    }
    for name in TABLES:
        fast = columnar_rows(cert, name)
        if fast is not None:
            rows[name] = fast
    sizes = {"regions": cert.num_regions, "vertices": cert.num_vertices,
             "adjacency": len(cert.adjacency)}
    shards: dict[str, list[dict[str, Any]]] = {}
    total = sum(-(-max(n, 1) // shard_rows) for n in sizes.values())
    with progress_bar(total, "saving shards", progress and total > 1) as bar:
        for name in TABLES:
            save_table(root, name, sizes[name], shard_rows, rows[name], schemas[name],
                       shards.setdefault(name, []), bar)
    write_manifest(root, cert.header_json(), shards)


def prepare(path: str | Path) -> Path:
    """The directory ``path`` made ready for a sharded certificate: a sharded certificate there
    is removed; anything else there is refused."""
    root = Path(path)
    if root.exists():
        if not (root / MANIFEST).is_file():
            raise CertificateError(f"{root} exists and is not a sharded certificate; "
                                   "choose another name or remove it")
        shutil.rmtree(root)
    return root


def save_table(root: Path, name: str, size: int, shard_rows: int,
               rows: Callable[[int, int], Any], schema: Any,
               listed: list[dict[str, Any]], bar: Any, stem: str = "part") -> None:
    """Write the shards of one table, ``shard_rows`` rows each, a row group of at most
    :data:`GROUP_ROWS` rows at a time: ``rows(lo, hi)`` gives rows ``lo`` to ``hi - 1`` as JSON
    objects or as an Arrow table."""
    pa, _ = _arrow()
    (root / name).mkdir(parents=True, exist_ok=True)
    for k, lo in enumerate(range(0, max(size, 1), shard_rows)):
        hi = min(lo + shard_rows, size)
        groups = (rows(g, min(g + GROUP_ROWS, hi)) for g in range(lo, max(hi, lo + 1), GROUP_ROWS))
        tables = (g if isinstance(g, pa.Table) else pa.Table.from_pylist(g, schema=schema)
                  for g in groups)
        listed.append(write_shard(root, f"{name}/{stem}-{k:05d}.parquet", tables, schema))
        bar.update(1)


def write_shard(root: Path, file: str, tables: Iterable[Any], schema: Any) -> dict[str, Any]:
    """Write ``tables`` (Arrow tables of one table's schema, a row group each) as the Parquet
    file ``root/file``; its entry in the manifest (file, rows, bytes, SHA-256 of the bytes
    written)."""
    pa, pq = _arrow()
    sink = pa.BufferOutputStream()
    n = 0
    with pq.ParquetWriter(sink, schema, compression="zstd") as writer:
        for t in tables:
            writer.write_table(t)
            n += t.num_rows
    data = sink.getvalue().to_pybytes()
    (root / file).write_bytes(data)
    return {"file": file, "rows": n, "bytes": len(data),
            "sha256": hashlib.sha256(data).hexdigest()}


def write_manifest(root: Path, header: dict[str, Any], shards: dict[str, list[dict[str, Any]]]
                   ) -> None:
    """Write the manifest: ``header`` (see :meth:`Certificate.header_json`) and every table's
    shards in order."""
    manifest = {**header, "format": FORMAT, "shards": {t: shards[t] for t in TABLES}}
    (root / MANIFEST).write_text(json.dumps(manifest, separators=(",", ":")))


def items(seq: Sequence[T], lo: int, hi: int) -> list[T]:
    """Items ``lo`` to ``hi - 1`` of a certificate's sequence for reading (a lazy sequence's
    views are made and not kept)."""
    return seq.peek(lo, hi) if isinstance(seq, Lazy) else list(seq[lo:hi])


def columnar_rows(cert: Certificate, name: str) -> Callable[[int, int], Any] | None:
    """``rows(lo, hi)`` of table ``name`` as Arrow tables made from the certificate's columns
    (:func:`save_table` writes them; JSON is their rows), or None where the sequence is not a
    columnar certificate's unchanged one, or pyarrow is missing."""
    seq = getattr(cert, name)
    kind = {"regions": Regions, "vertices": Vertices, "adjacency": Adjacencies}[name]
    if type(seq) is not kind or not isinstance(seq, (Regions, Vertices, Adjacencies)) \
            or not seq.pristine():
        return None
    try:
        pa, _ = _arrow()
    except MissingDependencyError:
        return None
    return _from_columns(pa, name, seq.cx, cert.pieces, _schemas(pa)[name])


def complex_rows(cx: Complex, name: str) -> Callable[[int, int], Any]:
    """``rows(lo, hi)`` of table ``name`` as Arrow tables made from the columns of ``cx`` (its
    own piece labels), for :func:`save_table`."""
    pa, _ = _arrow()
    return _from_columns(pa, name, cx, cx.pieces, _schemas(pa)[name])


def _texts(r: Rationals, lo: int, hi: int) -> list[str]:
    return list(map(_parse.ratio_text, r.num[lo:hi], r.den[lo:hi]))


def _from_columns(pa: Any, name: str, cx: Complex, pieces: list[int],
                  schema: Any) -> Callable[[int, int], Any]:
    """``rows(lo, hi)`` for :func:`save_table` as an Arrow table built from the columns of
    ``cx``: the same table as the items' JSON gives (``tests/test_columnar.py`` compares
    them)."""
    d, m = cx.d, cx.d + 1

    def lists(offsets: Any, values: Any) -> Any:
        return pa.ListArray.from_arrays(pa.array(np.asarray(offsets, np.int32)), values)

    def ragged(r: Ragged, lo: int, hi: int) -> Any:
        s = r.start[lo:hi + 1]
        return lists(s - s[0], pa.array(r.flat[s[0]:s[-1]], pa.int64()))

    def strings(values: Sequence[str | None]) -> Any:
        return pa.array(values, pa.string())

    def runs(n: int, width: int) -> np.ndarray:
        return np.arange(n + 1, dtype=np.int64) * width

    def points(sr: tuple[Any, Rationals] | None, lo: int, hi: int) -> Any:
        if sr is None:
            return lists(np.zeros(hi - lo + 1), lists([0], strings([])))
        start, pts = sr
        s = start[lo:hi + 1]
        inner = lists(runs(int(s[-1] - s[0]), d), strings(_texts(pts, int(s[0]) * d,
                                                                  int(s[-1]) * d)))
        return lists(s - s[0], inner)

    def regions(lo: int, hi: int) -> Any:
        n = hi - lo
        per = [s.rows(ids[lo:hi]) for s, ids in zip(cx.states, cx.state_ids, strict=True)]
        widths = np.array([s.n for s in cx.states], dtype=np.int64)
        values = np.concatenate(per, axis=1).reshape(-1) if per else np.zeros(0, np.int64)
        inner = np.concatenate([[0], np.cumsum(np.tile(widths, n))])
        pattern = lists(runs(n, len(per)), lists(inner, pa.array(values, pa.int64())))
        f0, f1 = int(cx.facet_start[lo]), int(cx.facet_start[hi])
        frow = cx.facet_row[f0:f1].tolist()
        row_text = {r: _texts(cx.rows, r * m, r * m + m) for r in set(frow)}
        nf = f1 - f0
        frays = ragged(cx.facet_rays, f0, f1) if len(cx.facet_rays.start) else \
            lists(np.zeros(nf + 1), pa.array([], pa.int64()))
        facet = pa.StructArray.from_arrays(
            [lists(runs(nf, d), strings([x for r in frow for x in row_text[r][:d]])),
             strings([row_text[r][d] for r in frow]), ragged(cx.facet_ids, f0, f1),
             ragged(cx.facet_vertices, f0, f1), frays],
            fields=list(schema.field("facets").type.value_type))
        no = cx.n_out
        output = lists(runs(n, no), lists(runs(n * no, m),
                                          strings(_texts(cx.outputs, lo * no * m, hi * no * m))))
        volume = [None if q == 0 else _parse.ratio_text(p, q)
                  for p, q in zip(cx.volume.num[lo:hi], cx.volume.den[lo:hi], strict=True)]
        return pa.Table.from_arrays([
            pattern, lists(runs(n, d), strings(_texts(cx.witness, lo * d, hi * d))),
            lists(cx.facet_start[lo:hi + 1] - f0, facet), points(cx.rays, lo, hi),
            points(cx.lines, lo, hi), ragged(cx.region_vertices, lo, hi), output,
            strings(volume), pa.array(cx.repaired[lo:hi]), pa.array(pieces[lo:hi], pa.int64())],
            schema=schema)

    def vertices(lo: int, hi: int) -> Any:
        return pa.Table.from_arrays(
            [lists(runs(hi - lo, d), strings(_texts(cx.vertices, lo * d, hi * d)))],
            schema=schema)

    def adjacency(lo: int, hi: int) -> Any:
        plane = cx.adj_plane[lo:hi].tolist()
        text = {p: _texts(cx.planes, p * m, p * m + m) for p in set(plane)}
        return pa.Table.from_arrays(
            [pa.array(cx.adj_i[lo:hi]), pa.array(cx.adj_j[lo:hi]),
             lists(runs(hi - lo, d), strings([x for p in plane for x in text[p][:d]])),
             strings([text[p][d] for p in plane]), ragged(cx.adj_ids, lo, hi)], schema=schema)

    return {"regions": regions, "vertices": vertices, "adjacency": adjacency}[name]


# --------------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class _Shard:
    file: Path
    name: str  # as the manifest gives it, for messages
    first: int
    rows: int
    size: int
    sha256: str


def _shard_list(root: Path, table: str, listed: Any) -> list[_Shard]:
    get, under, integer, string = _parse.get, _parse.under, _parse.integer, _parse.string
    out, first = [], 0
    for k, s in enumerate(_parse.items(listed, most=1 << 20)):
        where = f".shards.{table}[{k}]"
        _parse.obj(s)
        name = under(f"{where}.file", string, get(s, "file"), 256)
        if Path(name).parts != (table, Path(name).name) or not name.endswith(".parquet"):
            raise Malformed(f"{name!r} is not a file of {table}/", f"{where}.file")
        rows = under(f"{where}.rows", integer, get(s, "rows"), 0, 1 << 40)
        size = under(f"{where}.bytes", integer, get(s, "bytes"), 0, 1 << 50)
        digest = under(f"{where}.sha256", string, get(s, "sha256"), 64)
        out.append(_Shard(root / name, name, first, rows, size, digest))
        first += rows
    return out


def _read_shard(shard: _Shard, schema: Any, columns: list[str] | None = None,
                read: Callable[[Any], Any] | None = None) -> Any:
    """The shard's table (or only ``columns`` of it; or ``read`` of its ``ParquetFile``), after
    its size, digest, footer sizes, row count and schema are checked; every failure a
    :class:`CertificateError` naming the file."""
    pa, pq = _arrow()

    def bad(why: str) -> CertificateError:
        return CertificateError(f"shard {shard.name}: {why}")

    try:
        if shard.file.stat().st_size != shard.size:
            raise bad(f"{shard.file.stat().st_size:,} bytes, the manifest says {shard.size:,}")
        data = shard.file.read_bytes()
    except FileNotFoundError:
        raise bad("missing (the manifest lists it)") from None
    except OSError as exc:
        raise bad(f"cannot be read: {exc.strerror or exc}") from None
    if hashlib.sha256(data).hexdigest() != shard.sha256:
        raise bad("its SHA-256 differs from the manifest's (changed since it was written)")
    try:
        f = pq.ParquetFile(pa.BufferReader(data))
        meta = f.metadata
        declared = sum(meta.row_group(g).column(c).total_uncompressed_size
                       for g in range(meta.num_row_groups) for c in range(meta.num_columns))
        if declared > GZIP_MAX_RATIO * len(data) + GZIP_SLACK:
            raise bad(f"declares {declared:,} bytes uncompressed from {len(data):,}: more than "
                      f"{GZIP_MAX_RATIO}x, refused as a decompression bomb")
        if meta.num_rows != shard.rows:
            raise bad(f"{meta.num_rows:,} rows, the manifest says {shard.rows:,}")
        if not f.schema_arrow.equals(schema):
            raise bad(f"columns {f.schema_arrow.names} of unexpected types; expected "
                      f"{schema.names} as exactrelu writes them")
        return f.read(columns=columns) if read is None else read(f)
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise bad(f"not a readable Parquet file ({exc})") from None


# ------------------------------------------------------------------------- columnar reading
class _Declined(Exception):
    """A shard's value the columnar reader does not take (a null, a length, a range, a
    rational's text, patterns of unequal shapes): the row reader reads that shard, and raises
    the error naming the field (or reads it as objects, where only the shapes differ)."""


def _array(t: Any, name: str) -> Any:
    """Column ``name`` of table ``t`` as one array."""
    return t.column(name).combine_chunks()


def _lists(arr: Any) -> tuple[np.ndarray, Any]:
    """The offsets (from 0, int64) and values of a list array without nulls."""
    if arr.null_count:
        raise _Declined
    off = np.asarray(arr.offsets, dtype=np.int64)
    return off - off[0], arr.flatten()


def _equal(arr: Any, n: int) -> Any:
    """The values of a list array whose lists all have ``n`` items."""
    off, values = _lists(arr)
    if np.any(np.diff(off) != n):
        raise _Declined
    return values


def _index(arr: Any, lo: int, hi: int | np.ndarray) -> np.ndarray:
    """An int64 array without nulls, each value in ``[lo, hi)`` (``hi`` one bound each, or
    one for all)."""
    if arr.null_count:
        raise _Declined
    a = np.asarray(arr.to_numpy(zero_copy_only=False), dtype=np.int64)
    if len(a) and (a.min() < lo or np.any(a >= hi)):
        raise _Declined
    return a


def _ragged_index(arr: Any, lo: int, hi: int) -> Ragged:
    off, values = _lists(arr)
    return Ragged(off, _index(values, lo, hi))


class _Texts:
    """Rationals from their certificate texts (:func:`exactrelu._parse.parse_certificate`), each
    distinct text parsed once per shard (equal values then share their integers)."""

    def __init__(self) -> None:
        self.seen: dict[str, tuple[int, int]] = {}

    def pair(self, s: Any) -> tuple[int, int]:
        hit = self.seen.get(s)
        if hit is None:
            if type(s) is not str:
                raise _Declined
            try:
                f = _parse.parse_certificate(s)
            except Malformed:
                raise _Declined from None
            hit = self.seen[s] = (f.numerator, f.denominator)
        return hit

    def __call__(self, arr: Any) -> Rationals:
        if arr.null_count:
            raise _Declined
        pairs = [self.pair(s) for s in arr.to_pylist()]
        return Rationals([p for p, _ in pairs], [q for _, q in pairs])

    def rows(self, arr: Any, b: Any, d: int) -> tuple[Rationals, np.ndarray]:
        """Rows ``(a_1, .., a_d, b)`` (``arr``: the ``a`` texts, ``d`` per row), each distinct
        row once, and the row of each."""
        if arr.null_count or b.null_count:
            raise _Declined
        a_text, b_text = arr.to_pylist(), b.to_pylist()
        number: dict[tuple, int] = {}
        which = np.fromiter((number.setdefault((*a_text[k * d:k * d + d], t), len(number))
                             for k, t in enumerate(b_text)), np.int64, len(b_text))
        pairs = [self.pair(s) for key in number for s in key]
        return Rationals([p for p, _ in pairs], [q for _, q in pairs]), which


def _states(a: np.ndarray) -> tuple[StateTable, np.ndarray]:
    """An op's states (a row per region) as its distinct rows and each region's row."""
    n = a.shape[1]
    if a.size and a.min() >= 0 and a.max() <= 1:
        packed, bits = np.packbits(a.astype(bool), axis=1), True
    else:
        packed, bits = a, False
    rows, inverse = np.unique(packed, axis=0, return_inverse=True)
    table = StateTable(rows, n, True) if bits else state_table(rows)
    return table, np.asarray(inverse, dtype=np.int64).reshape(-1)


def _region_columns(f: Any, d: int, n_out: int, n_vertices: int, n_ids: int) -> Complex:
    """The regions of a shard (its ``ParquetFile``) as a :class:`~exactrelu._columns.Complex`
    holding only regions (no vertices or pairs), every value checked as the row reader checks
    it (any other failure declines too: the row reader then names it). The patterns are read
    :data:`PATTERN_ROWS` at a time (they are the widest column: 64-bit integers for each unit,
    kept as bits)."""
    try:
        return _region_columns_of(f, d, n_out, n_vertices, n_ids)
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise _Declined from exc


#: Rows of patterns read at a time (2-880-880-880: 21 MB as 64-bit integers).
PATTERN_ROWS = 1024


def _patterns(f: Any) -> tuple[list[StateTable], list[np.ndarray]]:
    """The distinct states of each op and each region's, from the ``pattern`` column."""
    widths: list[int] | None = None
    parts: list[list[np.ndarray]] = []
    for batch in f.iter_batches(batch_size=PATTERN_ROWS, columns=["pattern"]):
        n = batch.num_rows
        off, inner = _lists(batch.column(0))
        ops = np.diff(off)
        inner_off, values = _lists(inner)
        if not n:
            continue
        if np.any(ops != ops[0]) or (widths is not None and ops[0] != len(widths)):
            raise _Declined
        sizes = np.diff(inner_off).reshape(n, int(ops[0]))
        if np.any(sizes != sizes[0]) or (widths is not None and sizes[0].tolist() != widths):
            raise _Declined
        if widths is None:
            widths = sizes[0].tolist()
            parts = [[] for _ in widths]
        flat = _index(values, -_STATE, _STATE).reshape(n, -1)
        at = 0
        for j, w in enumerate(widths):
            a = flat[:, at:at + w]
            at += w
            small = not a.size or (a.min() >= -128 and a.max() <= 127)
            parts[j].append(a.astype(np.int8) if small else a.copy())
    states, state_ids = [], []
    for chunks in parts:
        table, ids = _states(np.concatenate(chunks))
        states.append(table)
        state_ids.append(ids)
    return states, state_ids


def _region_columns_of(f: Any, d: int, n_out: int, n_vertices: int, n_ids: int) -> Complex:
    states, state_ids = _patterns(f)
    t = f.read(columns=[c for c in f.schema_arrow.names if c not in ("pattern", "piece")])
    n = t.num_rows
    texts = _Texts()
    witness = texts(_equal(_array(t, "witness"), d))
    points: dict[str, tuple[Any, Rationals] | None] = {}
    counts: dict[str, np.ndarray] = {}
    for name in ("rays", "lines"):
        start, inner = _lists(_array(t, name))
        counts[name] = np.diff(start)
        pts = texts(_equal(inner, d))
        points[name] = (start, pts) if len(pts.num) else None
    facet_start, facets = _lists(_array(t, "facets"))
    if facets.null_count:
        raise _Declined
    a, b, ids, vertices, rays = facets.flatten()
    rows, facet_row = texts.rows(_equal(a, d), b, d)
    ray_start, ray_values = _lists(rays)
    of_facet = np.repeat(np.repeat(np.arange(n), np.diff(facet_start)), np.diff(ray_start))
    facet_rays = Ragged(ray_start, _index(ray_values, 0, counts["rays"][of_facet]))
    outputs = texts(_equal(_equal(_array(t, "output"), n_out), d + 1))
    volume = _array(t, "volume")
    if volume.null_count:
        pairs = [(0, 0) if s is None else texts.pair(s) for s in volume.to_pylist()]
    else:
        pairs = [texts.pair(s) for s in volume.to_pylist()]
    repaired = _array(t, "repaired")
    if repaired.null_count:
        raise _Declined
    return Complex(
        d, n_out, states, state_ids, witness, Rationals([], []),
        _ragged_index(_array(t, "vertices"), 0, n_vertices), rows, facet_start, facet_row,
        _ragged_index(ids, 0, n_ids), _ragged_index(vertices, 0, n_vertices), outputs,
        Rationals([p for p, _ in pairs], [q for _, q in pairs]),
        repaired.to_numpy(zero_copy_only=False), [], [], [], Ragged([0], []),
        Rationals([], []), np.zeros(n, dtype=np.int64),
        facet_rays if len(ray_values) else Ragged([], []), points["rays"], points["lines"])


def _vertex_columns(f: Any, d: int) -> Complex:
    try:
        return _only(d, vertices=_Texts()(_equal(_array(f.read(), "coordinates"), d)))
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise _Declined from exc


def _adjacency_columns(f: Any, d: int, n_regions: int, n_ids: int) -> Complex:
    try:
        return _adjacency_columns_of(f.read(), d, n_regions, n_ids)
    except (ValueError, TypeError, IndexError, OverflowError) as exc:
        raise _Declined from exc


def _adjacency_columns_of(t: Any, d: int, n_regions: int, n_ids: int) -> Complex:
    planes, which = _Texts().rows(_equal(_array(t, "a"), d), _array(t, "b"), d)
    return _only(d, adj_i=_index(_array(t, "i"), 0, n_regions),
                 adj_j=_index(_array(t, "j"), 0, n_regions), adj_plane=which,
                 adj_ids=_ragged_index(_array(t, "ids"), 0, n_ids), planes=planes)


def _only(d: int, **fields: Any) -> Complex:
    """A :class:`~exactrelu._columns.Complex` of no regions with ``fields``."""
    empty, none = Rationals([], []), Ragged([0], [])
    base: dict[str, Any] = dict(
        d=d, n_out=0, states=[], state_ids=[], witness=empty, vertices=empty,
        region_vertices=none, rows=empty, facet_start=[0], facet_row=[], facet_ids=Ragged([], []),
        facet_vertices=Ragged([], []), outputs=empty, volume=empty, repaired=[], adj_i=[],
        adj_j=[], adj_plane=[], adj_ids=none, planes=empty, pieces=[])
    return Complex(**{**base, **fields})


class _Pass(Sequence[T]):
    """One shard's items for one reading pass (:meth:`_Rows.shards`): views made a chunk at a
    time and not kept, items assigned or changed as they are. ``columns``: the shard's
    :class:`~exactrelu._columns.Complex` and its first row's index, where it was read as
    columns and its items are what the columns say (None where it was read as objects, or an
    item of it was assigned or changed in place)."""

    def __init__(self, items: Sequence[T], changed: dict[int, T], first: int) -> None:
        self._items, self._changed, self._first = items, changed, first
        cx = getattr(items, "cx", None)
        self.columns: tuple[Complex, int] | None = None
        if (cx is not None and isinstance(items, Lazy) and items.pristine()
                and not any(first <= k < first + len(items) for k in changed)):
            self.columns = (cx, first)

    def __len__(self) -> int:
        return len(self._items)

    @overload
    def __getitem__(self, i: int) -> T: ...
    @overload
    def __getitem__(self, i: slice) -> list[T]: ...

    def __getitem__(self, i: int | slice) -> T | list[T]:
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(len(self)))]
        k = range(len(self))[i]
        return self._changed.get(self._first + k, self._items[k])

    def __iter__(self) -> Iterator[T]:
        n, first = len(self), self._first
        for lo in range(0, n, GROUP_ROWS):
            for k, item in enumerate(items(self._items, lo, min(lo + GROUP_ROWS, n)), first + lo):
                yield self._changed.get(k, item)


class _Rows(Lazy[T]):
    """A table's items, read a shard at a time when first wanted (a
    :class:`~exactrelu._columns.Lazy` sequence: items can be assigned, inserted and deleted as a
    columnar certificate's). A shard is read as columns (``columns(table, first)``: a lazy
    sequence of views on a :class:`~exactrelu._columns.Complex` of its rows, a few hundred
    bytes to a few KB per region where objects take tens of KB), every value checked as the row
    reader checks it; a shard the columnar reader declines is read row by row (``convert``),
    which names the malformed field. Shards read are kept (random access, as the checker's
    adjacency and pieces make, would read them again and again; a view changed in place stays
    changed while its shard is kept): :meth:`release` drops them, :meth:`shards` walks them
    holding one at a time."""

    keep = 0  # the shards read keep their items

    def __init__(self, shards: list[_Shard], schema: Any, table: str,
                 convert: Callable[[int, dict[str, Any]], T],
                 columns: Callable[[Any, int], Sequence[T]] | None = None) -> None:
        super().__init__(sum(s.rows for s in shards))
        self._shards = shards
        self._firsts = [s.first for s in shards]
        self._schema, self._table, self._convert = schema, table, convert
        self._columns = columns
        self._cached: dict[int, Sequence[T]] = {}

    def release(self) -> None:
        """Drop the shards read so far (they are read again when wanted)."""
        self._cached.clear()

    def shards(self, wanted: Callable[[int, int], bool] | None = None
               ) -> Iterator[Sequence[T]]:
        """The items shard by shard, each shard read when reached and dropped after (unless it
        was kept already), as a :class:`_Pass` (views made a chunk at a time, not kept; its
        ``columns`` give the shard's columns to a reader that takes them), items assigned
        since as assigned. ``wanted(lo, hi)``: read only the shards of rows ``lo`` to ``hi - 1``
        for which it is true (the others are left out)."""
        if self._items is not None:
            yield self._items
            return
        for k, shard in enumerate(self._shards):
            if wanted is not None and not wanted(shard.first, shard.first + shard.rows):
                continue
            part = self._cached[k] if k in self._cached else self._read(k)
            yield _Pass(part, self._changed, shard.first)

    def _load(self, k: int) -> Sequence[T]:
        if k not in self._cached:
            self._cached[k] = self._read(k)
        return self._cached[k]

    def _read(self, k: int) -> Sequence[T]:
        shard = self._shards[k]
        columns = self._columns
        if columns is not None:
            try:
                return _read_shard(shard, self._schema, read=lambda f: columns(f, shard.first))
            except _Declined:
                pass
        rows = _read_shard(shard, self._schema).to_pylist()
        out = []
        for i, row in enumerate(rows, shard.first):
            try:
                out.append(self._convert(i, row))
            except Malformed as exc:
                raise CertificateError(f"malformed certificate: "
                                       f"{exc.under(f'.{self._table}[{i}]').where()}") from None
        return out

    def _make(self, i: int) -> T:
        k = bisect.bisect_right(self._firsts, i) - 1
        return self._load(k)[i - self._shards[k].first]

    def __iter__(self) -> Iterator[T]:
        """Shard after shard, every one read (an empty one too: its row count is checked)."""
        if self._items is not None:
            yield from self._items
            return
        for k, shard in enumerate(self._shards):
            for i, item in enumerate(self._load(k), shard.first):
                yield self._changed.get(i, item)

    def __repr__(self) -> str:
        return f"<{len(self):,} {self._table} in {len(self._shards)} shards>"


def load(path: str | Path) -> Certificate:
    """The sharded certificate at ``path``: its manifest read and checked now, its regions,
    vertices and adjacency read shard by shard when wanted (see the module docstring)."""
    root = Path(path)
    try:
        return _load(root)
    except Malformed as exc:
        raise CertificateError(f"malformed sharded certificate {root}: {exc.where()}") from None


def _load(root: Path) -> Certificate:
    pa, _ = _arrow()
    manifest = root / MANIFEST
    try:
        size = manifest.stat().st_size
        if size > MANIFEST_BYTES:
            raise CertificateError(f"{manifest}: {size:,} bytes; a manifest has at most "
                                   f"{MANIFEST_BYTES:,}")
        text = manifest.read_bytes().decode("utf-8")
    except FileNotFoundError:
        raise CertificateError(f"{root} is not a sharded certificate: no {MANIFEST}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CertificateError(f"cannot read {manifest}: {exc}") from None
    top = _parse.read_json(text)
    h: Header = read_header(top, FORMAT)
    listed = _parse.obj(_parse.under(".shards", _parse.get, top, "shards"))
    shards = {t: _shard_list(root, t, _parse.get(listed, t)) for t in TABLES}
    schemas = _schemas(pa)
    n_regions = sum(s.rows for s in shards["regions"])
    n_vertices = sum(s.rows for s in shards["vertices"])
    if n_regions == 0:
        raise Malformed("no regions (every domain has at least one)", ".shards.regions")
    d, n_out, n_ids = h.d, h.n_out, h.n_ids
    pieces: list[int] = []
    for s in shards["regions"]:
        column = _read_shard(s, schemas["regions"], ["piece"]).column("piece").to_pylist()
        for i, p in enumerate(column, s.first):
            pieces.append(_parse.under(f".regions[{i}].piece", _parse.integer, p, 0, n_regions))
    regions: _Rows[Region] = _Rows(
        shards["regions"], schemas["regions"], "regions",
        lambda i, r: _region(i, {k: v for k, v in r.items() if k != "piece"}, d, n_out,
                             n_vertices, n_ids),
        lambda t, first: Regions(_region_columns(t, d, n_out, n_vertices, n_ids), first))
    vertices: _Rows[tuple] = _Rows(
        shards["vertices"], schemas["vertices"], "vertices",
        lambda i, r: _parse.under(".coordinates", _parse.rationals, r["coordinates"], d),
        lambda t, first: Vertices(_vertex_columns(t, d)))
    adjacency: _Rows[Adjacency] = _Rows(
        shards["adjacency"], schemas["adjacency"], "adjacency",
        lambda i, r: _adjacency(r, d, n_regions, n_ids),
        lambda t, first: Adjacencies(_adjacency_columns(t, d, n_regions, n_ids)))
    return h.certificate(regions, vertices, adjacency, pieces)


def origin(cert: Certificate) -> tuple[Path, tuple[tuple[_Shard, ...], ...]] | None:
    """Where a sharded certificate was read from (:func:`load`): its directory and the shards
    its manifest lists for each of :data:`TABLES` (name, first row, rows, size, SHA-256: another
    process that loads the directory reads these same bytes or stops); None for any other
    certificate, or one whose regions, vertices or adjacent pairs were assigned or changed since
    it was read (the files no longer say what it holds)."""
    tables = []
    for seq in (cert.regions, cert.vertices, cert.adjacency):
        if not (isinstance(seq, _Rows) and seq.pristine()):
            return None
        tables.append(tuple(seq._shards))
    return (tables[0][0].file.parent.parent, tuple(tables)) if tables[0] else None
