"""The checker's region pass on a Dask cluster (``exactrelu.check(..., executor=client)``).

A sharded certificate read from a directory the workers share (:func:`exactrelu._shards.origin`)
has its region shards split into contiguous groups (about :data:`TASKS_PER_WORKER` per worker, in
order, of about equal rows). Every task loads the certificate from the directory (the shards its
manifest lists and its header must be the client's: same names, rows, sizes and SHA-256, which
every read checks again). One task reads the vertices (for every task and the client), one the
adjacent pairs (for the client). Each region task builds the compiled ``Checker`` of the chain
(the client's arguments, all vertices), starts it at its group's first region, runs the region
pass over its group's shards (:func:`exactrelu.check._region_pass`, what the local check runs)
and returns ``Checker.export_state()``: per region its pattern and output hashes, the group's
volume sum (exact), the vertices its regions use, its proven facets with their planes' exact
keys and (3-D) facet rows; on an unbounded domain (2-D, 3-D) also its regions' rays (3-D, the
facets' rays indexing them), every level's certified prefixes and the prefixes across its facets
not among them (the closure's state), as bytes. The client (which parses no shard but those
holding the output maps of the adjacent regions it compares) imports the states in region order
into its own ``Checker`` (``import_state`` renumbers the planes by their exact keys and the
rays, checks every count against the bytes it has and that the regions come in order) and goes
on as the local check does (``finish``, which on an unbounded domain finds every prefix across a
facet among the union of the parts' prefixes, then distinct patterns, the volume sum and the
pieces in Python).

A task that finds a false claim (or input outside the compiled pass) returns its reason; the
check then runs its Python pass in the client process, which names the claim. Imports only
check-side code, and Dask lazily (a client is passed in).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import _shards
from ._columns import Rationals
from ._deps import dask_workers
from .certificate import Certificate
from .errors import ClusterError

if TYPE_CHECKING:
    from .check import _Source

__all__ = ["RegionPass", "applies", "groups"]

#: Region groups (tasks) per Dask worker: two, so that a worker has the next group while the
#: client imports the one before, and unequal groups even out a little.
TASKS_PER_WORKER = 2


def applies(cert: Certificate) -> bool:
    """Can the workers read ``cert``'s regions and vertices from where it was read?"""
    return _shards.origin(cert) is not None


def groups(rows: list[int], n: int) -> list[tuple[int, int]]:
    """``rows`` (each shard's row count, in order) cut into at most ``n`` contiguous runs of
    shards ``(start, end)`` of about equal rows, every shard in one; none empty of shards.

    >>> groups([5, 5, 5, 5], 2)
    [(0, 2), (2, 4)]
    """
    total = sum(rows)
    n = max(1, min(n, len(rows)))
    out: list[tuple[int, int]] = []
    start, acc = 0, 0
    for k, r in enumerate(rows):
        acc += r
        left = len(rows) - k - 1  # shards after this one
        want = n - len(out) - 1   # runs still to make after this one
        if k + 1 < len(rows) and want > 0 and (acc * n >= total * (len(out) + 1) or left == want):
            out.append((start, k + 1))
            start = k + 1
    out.append((start, len(rows)))
    return out


def _opened(root: Path, listing: tuple[Any, ...]) -> Certificate | str:
    """The certificate at ``root``, or why it is not the one the client read. Raises
    :class:`ClusterError` where there is none (a directory the client alone sees)."""
    if not (Path(root) / _shards.MANIFEST).is_file():
        raise ClusterError(f"a worker finds no certificate at {root}: check(executor=client) "
                           "reads a directory that every worker and the client share")
    cert = Certificate.load(root)  # a shard that cannot be read raises CertificateError
    here = _shards.origin(cert)
    if here is None or (here[1], cert.header_json()) != listing:
        return f"the certificate at {root} is not the one the client read"
    return cert


def _source(root: Path, listing: tuple[Any, ...]) -> tuple[Certificate, _Source] | str:
    """On a worker: the certificate at ``root`` and its columns (``check._shard_source``), or
    why not."""
    from .check import _shard_source

    cert = _opened(root, listing)
    if isinstance(cert, str):
        return cert
    src = _shard_source(cert)
    return "a table is not sharded" if src is None else (cert, src)


def _read(root: Path, listing: tuple[Any, ...], table: str) -> Rationals | tuple[Any, ...] | str:
    """On a worker: the certificate's vertices (``table`` "vertices": read once for every task
    and the client) or its adjacent pairs as ``Checker.finish`` takes them ("adjacency": for the
    client), or why not."""
    from .check import _pair_columns

    got = _source(root, listing)
    if isinstance(got, str):
        return got
    cert, src = got
    out = src.vertices() if table == "vertices" else _pair_columns(src.pairs(), cert.domain.dim)
    return f"a {table} shard is not available as columns" if out is None else out


def _task(root: Path, listing: tuple[Any, ...], init: tuple[Any, ...],
          vertices: Rationals | str, n_units: list[int], n_out: int, unbounded: bool, lo: int,
          hi: int) -> bytes | str:
    """On a worker: regions ``lo`` to ``hi - 1`` of the certificate at ``root`` through the
    compiled pass (``unbounded``: the domain is, the closure's state is kept), the checker's
    state exported; or the reason it stopped."""
    from .check import _checkcore, _region_pass

    if isinstance(vertices, str):
        return vertices
    got = _source(root, listing)
    if isinstance(got, str):
        return got
    cert, src = got
    assert _checkcore is not None  # the client's check() found it; so does the worker
    try:
        checker = _checkcore.Checker(*init, vertices.num, vertices.den, unbounded)
    except ValueError as exc:
        return str(exc)
    started = checker.start(lo)
    if started is not None:
        return str(started)
    reason = _region_pass(src.regions(lambda a, b: lo <= a and b <= hi), checker,
                          cert.domain.dim, n_units, n_out, None, unbounded)
    if reason is not None:
        return reason
    state = checker.export_state()
    return state if isinstance(state, bytes) else str(state)


class RegionPass:
    """The compiled region pass over ``cert``'s regions on the workers of ``client``: the tasks
    are submitted at once (``init``, ``n_units``, ``n_out``: the client's ``Checker`` arguments
    but the vertices, the chain's units per op and its outputs; ``unbounded``: the domain is);
    :meth:`join` imports their states, :meth:`cancel` drops what is left."""

    def __init__(self, client: Any, cert: Certificate, init: tuple[Any, ...],
                 n_units: list[int], n_out: int, unbounded: bool = False) -> None:
        where = _shards.origin(cert)
        assert where is not None  # by applies()
        root, tables = where
        regions = tables[0]
        runs = groups([s.rows for s in regions], TASKS_PER_WORKER * dask_workers(client))
        self.spans = [(regions[a].first, regions[b - 1].first + regions[b - 1].rows)
                      for a, b in runs]
        self.client = client
        # a key of its own (hash=False), as exactrelu.distributed scatters the net
        init_ref = client.scatter(init, broadcast=True, hash=False)
        listing = (tables, cert.header_json())
        self.points = client.submit(_read, root, listing, "vertices", pure=False)
        self.pairs = client.submit(_read, root, listing, "adjacency", pure=False)
        self.futures = [client.submit(_task, root, listing, init_ref, self.points, n_units, n_out,
                                      unbounded, lo, hi, pure=False) for lo, hi in self.spans]

    def vertices(self) -> Rationals | str:
        """The certificate's vertices as a worker read them, or why not (a reason)."""
        return self._result(self.points, "the vertices", Rationals)

    def adjacent_pairs(self) -> tuple[Any, ...] | str:
        """The adjacent pairs as a worker read them (as ``Checker.finish`` takes them), or why
        not (a reason)."""
        return self._result(self.pairs, "the adjacent pairs", tuple)

    @staticmethod
    def _result(future: Any, what: str, kind: type) -> Any:
        out = future.result()
        if not isinstance(out, (str, kind)):
            raise ClusterError(f"the task reading {what} returned a {type(out).__name__}")
        return out

    def join(self, checker: Any, update: Callable[[int], None]) -> str | None:
        """Import the tasks' states into ``checker`` in region order (``update(n)``: ``n`` more
        regions done); None, or the reason it stopped (a task's). Raises :class:`ClusterError`
        where a task returns something that is not a state its checker can import."""
        for k, future in enumerate(self.futures):  # in region order: each follows the last
            lo, hi = self.spans[k]
            state = future.result()
            if isinstance(state, str):
                return f"regions {lo} to {hi - 1} (a task): {state}"
            if not isinstance(state, bytes):
                raise ClusterError(f"task {k} returned a {type(state).__name__}, not a checker's "
                                   "state (bytes) or a reason (str)")
            reason = checker.import_state(state)
            if reason is not None:
                raise ClusterError(f"task {k} (regions {lo} to {hi - 1}) returned a state its "
                                   f"checker cannot import: {reason}")
            future.release()
            update(hi - lo)
        return None

    def cancel(self) -> None:
        """Cancel the tasks (done ones: drop their results)."""
        self.client.cancel([self.points, self.pairs, *self.futures])
