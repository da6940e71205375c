"""``exactrelu.verify``: float trace, exact certification, certificate."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import math
import os
import time
from collections.abc import Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from . import _export, distributed, engines
from ._parse import Malformed, approx, show
from .capture import Program, capture
from .certificate import Certificate
from .domain import Domain, Slice, as_domain, shape_size
from .errors import (
    CertificationError,
    ExactReluError,
    InvalidInputError,
    RegionLimitError,
    VerificationError,
)

log = logging.getLogger(__name__)

#: The most threads or processes ``workers`` may ask for.
MAX_WORKERS = 1024

#: The most cells ``cells`` may ask for.
MAX_CELLS = 1 << 16

#: The values of ``engine``: "auto" and the names of :data:`exactrelu.engines.ENGINES`.
ENGINES = ("auto", *engines.ENGINES)

#: Below this many float regions the Python engine certifies in-process (see
#: :data:`exactrelu.engines.python.PARALLEL_THRESHOLD`).
PARALLEL_THRESHOLD = engines.python.PARALLEL_THRESHOLD

#: The environment variable that sets ``workers`` when a call leaves it None (the pytest plugin
#: sets it under pytest-xdist: the cores divided among the test workers).
WORKERS_ENV = "EXACTRELU_WORKERS"


def env_workers() -> int | None:
    """``workers`` from :data:`WORKERS_ENV` (None when unset or empty): a positive integer of at
    most :data:`MAX_WORKERS`, else an InvalidInputError naming the variable."""
    text = os.environ.get(WORKERS_ENV, "").strip()
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or len(text) > 4 or \
            not 1 <= int(text) <= MAX_WORKERS:
        raise InvalidInputError(f"the environment variable {WORKERS_ENV}={show(text)}: set it to a "
                                f"positive integer of at most {MAX_WORKERS:,}, or unset it (all "
                                "cores)")
    return int(text)


def _claim_failed(info: Any) -> bool:
    """pytest's ``__tracebackhide__`` test: a failed claim is shown at the caller's line, without
    exactrelu's frames."""
    return bool(info.errisinstance(VerificationError))


def _count(value: Any, name: str, most: int | None = None) -> int | None:
    """``value`` if it is None or a positive int (not a bool), at most ``most``."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInputError(f"{name}={show(value)} ({type(value).__name__}): pass a positive "
                                "integer or None")
    if value < 1 or (most is not None and value > most):
        limit = f" of at most {most:,}" if most is not None else ""
        raise InvalidInputError(f"{name}={show(int(value))}: pass a positive integer{limit} "
                                "or None")
    return int(value)


def _arguments(input_shape: Any, executor: Any, workers: Any, claimed: Any, progress: Any,
               engine: Any, max_regions: Any
               ) -> tuple[tuple[int, ...] | None, int | None, int | None]:
    """Every argument of :func:`verify` but the net and domain checked before any work, one
    clear InvalidInputError each; returns ``input_shape`` as a tuple, ``workers`` and
    ``max_regions`` as ints (or None)."""
    if not isinstance(engine, str) or engine not in ENGINES:
        raise InvalidInputError(f"engine={show(engine)}: use 'auto', 'compiled' or 'python'")
    if executor is not None and not callable(getattr(executor, "submit", None)):
        raise InvalidInputError(f"executor must be a concurrent.futures.Executor (with submit); "
                                f"got {type(executor).__name__}")
    if not isinstance(progress, (bool, np.bool_)):
        raise InvalidInputError(f"progress={show(progress)}: pass True or False")
    workers = _count(workers, "workers", MAX_WORKERS)
    max_regions = _count(max_regions, "max_regions")
    if claimed is not None:
        if isinstance(claimed, (bool, str, bytes, float, dict, set, Fraction)) \
                or not isinstance(claimed, (int, np.integer, Sequence, torch.Tensor, np.ndarray)):
            raise InvalidInputError("claimed must be a region count (an int) or a list of "
                                    f"activation patterns; got {show(claimed)} "
                                    f"({type(claimed).__name__})")
        if isinstance(claimed, (int, np.integer)) and claimed < 0:
            raise InvalidInputError(f"claimed={show(int(claimed))}: a region count is at least 0")
    shape = None
    if input_shape is not None:
        if isinstance(input_shape, (str, bytes)) or \
                not isinstance(input_shape, (Sequence, torch.Size)):
            raise InvalidInputError(f"input_shape={show(input_shape)}: pass a tuple of positive "
                                    "sizes")
        sizes = list(input_shape)
        if any(isinstance(v, np.integer) for v in sizes):
            sizes = [int(v) if isinstance(v, np.integer) else v for v in sizes]
        try:
            shape = shape_size(sizes)[0]
        except Malformed as exc:
            raise InvalidInputError(exc.where("input_shape")) from None
    return shape, workers, max_regions


def _program_and_domain(net: nn.Module | Program, domain: Any,
                        input_shape: Sequence[int] | None) -> tuple[Program, Domain]:
    """The captured program and the domain; the input shape comes from ``input_shape``, a Slice, a
    Program, an exported program, or the domain's dimension (a flat input); for ``domain=None``
    without any of those, from a leading ``nn.Linear``."""
    if isinstance(domain, Slice):
        shape: tuple[int, ...] = tuple(domain.input_shape)
        dom: Domain = domain
    else:
        if input_shape is not None:
            shape = tuple(int(s) for s in input_shape)
        elif isinstance(net, Program):
            shape = net.input_shape
        elif (exported := _export.input_shape(net)) is not None:
            shape = exported  # an exported program's own input shape
        elif domain is None:
            first = next(iter(net.children()), None) if isinstance(net, nn.Sequential) else None
            if not isinstance(first, nn.Linear):
                raise InvalidInputError("domain=None (all of R^d) needs the input size: pass "
                                        "input_shape=(d,) or RealSpace(d)")
            shape = (first.in_features,)
        else:
            shape = ()
        dom = as_domain(domain, math.prod(shape) if shape else None)
        shape = shape or (dom.dim,)
    prog = net if isinstance(net, Program) else capture(net, shape)
    if not isinstance(dom, Slice) and prog.in_dim != dom.dim:
        raise InvalidInputError(f"the domain has dimension {dom.dim} but the network takes "
                                f"{prog.in_dim} inputs; pass one (lo, hi) pair per input, or a "
                                "Slice for a higher-dimensional input")
    return prog, dom


def verify(net: nn.Module | Program, domain: Any, *, input_shape: Sequence[int] | None = None,
           executor: cf.Executor | None = None, workers: int | None = None, claimed: Any = None,
           progress: bool = True, trace: Any = None, engine: str = "auto",
           max_regions: int | None = None, save: str | Path | None = None,
           cells: int | None = None) -> Certificate:
    """Certify the linear regions of ``net`` on ``domain`` in exact rational arithmetic.

    ``domain``: a list of (lo, hi) pairs, a :class:`~exactrelu.domain.Domain`. ``engine``: the
    exact layer to use. ``"compiled"`` (C++ and GMP, on ``workers`` threads, all cores by default)
    takes chains of affine layers and ReLU/LeakyReLU/Hardtanh ops on 2-D to 6-D domains;
    ``"python"`` takes every network and domain; ``"auto"`` (default) takes the compiled one where
    it applies and no ``executor`` is given. Both give the same certificate. ``executor``: a
    ``dask.distributed.Client`` runs the cells of the first piecewise layer as tasks on its
    workers, each certified as here (``engine`` and ``workers`` apply to each task), and merges
    them exactly (:mod:`exactrelu.distributed`); any other ``concurrent.futures.Executor`` (e.g.
    Dask's ``client.get_executor()``) runs the Python engine's exact work; by default a process
    pool over ``workers`` for large traces, in-process otherwise. ``workers=None`` takes the
    environment variable ``EXACTRELU_WORKERS`` when set (exactrelu's pytest plugin sets it under
    pytest-xdist: the cores divided among the test workers), else all cores.
    ``claimed``: a region count or a list of patterns to compare against; a difference raises
    :class:`~exactrelu.errors.VerificationError` naming missing and spurious regions.
    ``max_regions``: stop with :class:`~exactrelu.errors.RegionLimitError` (its ``found``: how
    many regions were known to exist) as soon as more than that many regions are known to exist,
    so that memory stays what that many regions need: the exact engines (both) count certified
    regions and the cells still to split (each holds one region at least); the float trace,
    which may propose a few spurious candidates near ties, stops at twice as many.
    ``save``: a path to write the certificate to as :meth:`Certificate.save` does (JSON, or
    sharded Parquet for a name ending in ``.parquet``); with a Dask client and a ``.parquet``
    name, the workers write their cells' shards and the client only what lies between cells,
    and the certificate returned is the directory loaded lazily.
    ``cells``: split the domain into about this many cells of the first piecewise layer (cut
    one switching function at a time until no cell holds more than ``1 / cells`` of the
    estimated work; see :mod:`exactrelu.distributed`) and certify them one after another in
    this process. With ``save`` naming a ``.parquet`` directory each cell is written as shards
    once its numbering is known, so that memory holds one cell's certification (plus what lies
    on the cells' boundaries), not the whole net's, and the certificate returned is that
    directory loaded lazily; peak memory is about that of certifying the largest cell.
    Otherwise the cells' columns are merged in memory into one columnar certificate (saved to
    ``save`` as JSON when it is given): the peak is the largest cell's certification plus the
    merged columns (about 1.6 KB per region in 2-D). Either way it is the certificate
    ``verify`` makes without ``cells`` in canonical form, regions in the same order, adjacent
    pairs listed cell by cell, then those across cells. Every domain kind splits (on an
    unbounded one, cells may be unbounded polyhedra). With a Dask client, ``cells`` sets how
    many tasks to aim for (default 4 per worker).
    Domains are limited in size (bounded: 10 dimensions; see :mod:`exactrelu.domain`); every
    argument is checked before any work.

    >>> net = nn.Sequential(nn.Linear(1, 2), nn.ReLU(), nn.Linear(2, 1))
    >>> with torch.no_grad():
    ...     _ = net[0].weight.copy_(torch.tensor([[1.0], [1.0]]))
    ...     _ = net[0].bias.copy_(torch.tensor([0.0, -0.5]))
    >>> verify(net, [(-1, 1)], progress=False).num_regions
    3
    """
    __tracebackhide__ = _claim_failed
    t0 = time.perf_counter()
    input_shape, workers, max_regions = _arguments(input_shape, executor, workers, claimed,
                                                   progress, engine, max_regions)
    if workers is None:
        workers = env_workers()
    progress = bool(progress)
    if save is not None and not isinstance(save, (str, Path)):
        raise InvalidInputError(f"save={show(save)}: pass a path (str or pathlib.Path)")
    cells = _count(cells, "cells", MAX_CELLS)
    dask = distributed.is_dask_client(executor)
    shards = save is not None and str(save).endswith(".parquet")
    if cells is not None and not dask and (executor is not None or trace is not None):
        raise InvalidInputError("cells= runs its cells in this process, each tracing its "
                                "own: drop executor= and trace=")
    prog, dom = _program_and_domain(net, domain, input_shape)
    if cells is not None and not dask:
        cert = distributed.run(net, prog, dom, None, workers=workers, max_regions=max_regions,
                               engine=engine, progress=progress,
                               save=save if shards else None, cells=cells)
        if claimed is not None:
            compare_claim(cert, claimed)
        if save is not None and not shards:
            cert.save(save, progress=progress)
        return cert
    if dask:
        if trace is not None:
            raise InvalidInputError("trace= is for a local run: on a Dask cluster every task "
                                    "traces its own cell (drop trace= or the executor)")
        cert = distributed.run(net, prog, dom, executor, workers=workers,
                               max_regions=max_regions, engine=engine, progress=progress,
                               save=save if shards else None, cells=cells)
        if claimed is not None:
            compare_claim(cert, claimed)
        if save is not None and not shards:
            cert.save(save, progress=progress)
        return cert
    name, cx, times, n_float = certify_complex(prog, dom, engine, executor, workers, progress,
                                               max_regions, trace, t0)
    cert = engines.build_certificate(prog, dom, cx)
    del cx
    cert = _finish(cert, name, (*times, time.perf_counter()), n_float, claimed)
    if save is not None:
        cert.save(save, progress=progress)
    return cert


def certify_complex(prog: Program, dom: Domain, engine: str, executor: Any, workers: int | None,
                    progress: bool, max_regions: int | None, trace: Any, t0: float
                    ) -> tuple[str, engines.Complex, tuple[float, float, float], int]:
    """What :func:`verify` does between capture and the certificate (arguments checked): the
    engine chosen, the float trace (``trace`` or made here), the exact complex. Returns the
    engine's name, the complex, the times (``t0``, trace done, engine done) and the number of
    float regions proposed."""
    options = engines.Options(executor, workers, progress, max_regions)
    eng = engines.choose(engine, prog, dom, options)
    tr = trace
    if tr is None and not dom.is_bounded:
        log.info("unbounded domain: no float trace, the exact layer enumerates every cell itself")
    elif tr is None:
        try:
            from .trace import trace as float_trace
            tr = float_trace(prog, dom, progress=progress,
                             max_regions=None if max_regions is None else 2 * max_regions)
        except ImportError:
            tr = None
        except RegionLimitError as exc:
            raise RegionLimitError(f"more than max_regions={max_regions:,} regions, most likely: "
                                   f"the float trace proposed {exc.found:,} candidates (it stops "
                                   "at twice max_regions)", exc.found) from None
        except (ExactReluError, RuntimeError, ArithmeticError, ValueError, IndexError,
                AssertionError) as exc:
            # the float trace only proposes; exact repair covers for a failure of its own (any
            # other exception, e.g. from a signal handler that stops the run, is the caller's)
            log.warning("float trace failed (%s); certifying from exact seeds only", exc)
            tr = None
    t1 = time.perf_counter()
    proposals = engines.Proposals(tr)
    del tr  # the engine frees a trace made here once it has read it (a caller's stays theirs)
    try:
        cx = eng.certify(prog, dom, proposals, options)
    except CertificationError as exc:
        raise _naming_rules(exc, prog) from None
    return eng.name, cx, (t0, t1, time.perf_counter()), proposals.num_regions


def _naming_rules(exc: CertificationError, prog: Program) -> CertificationError:
    """``exc`` naming the program's rules that are not exactrelu's own (the likely culprits)."""
    own = sorted({f"{type(nd.rule).__qualname__} for {type(nd.module).__qualname__}"
                  for nd in prog.nodes if type(nd.rule).__module__.split(".")[0] != "exactrelu"})
    return CertificationError(exc.detail, own) if own and not exc.rules else exc


def _finish(cert: Certificate, engine: str, times: tuple, n_float: int,
            claimed: Any) -> Certificate:
    """Statistics common to both engines, then the claim (if any) checked."""
    __tracebackhide__ = _claim_failed
    t0, t1, t2, t3 = times
    cert.stats["seconds"] = {"trace": t1 - t0, "exact": t2 - t1, "assemble": t3 - t2,
                             "total": t3 - t0}
    cert.stats["float_regions"] = n_float
    cert.stats["engine"] = engine
    if claimed is not None:
        compare_claim(cert, claimed)
    return cert


def compare_claim(cert: Certificate, claimed: Any) -> None:
    """Raise VerificationError when ``claimed`` (a count or list of patterns) differs: the counts,
    then the first regions missing from the claim (witnesses as decimals beside their exact
    values) and the first claimed patterns no region has."""
    __tracebackhide__ = _claim_failed
    if isinstance(claimed, (int, np.integer)) and not isinstance(claimed, bool):
        if claimed != cert.num_regions:
            raise VerificationError(f"claimed region count {show(int(claimed))}, certified "
                                    f"{cert.num_regions} regions ({cert.num_pieces} linear pieces) "
                                    f"on {cert.domain!r}")
        return
    try:
        claims = [_flat_pattern(p) for p in claimed]
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError("claimed must be a region count or a list of activation "
                                "patterns") from None
    have = {tuple(x for s in r.pattern for x in s): r for r in cert.regions}
    n = len(next(iter(have)))
    for k, c in enumerate(claims):
        if len(c) != n:
            raise InvalidInputError(f"claimed pattern {k} has {len(c)} states; the network's "
                                    f"patterns have {n} (one per unit of each piecewise op, in "
                                    "order)")
    want = set(claims)
    missing = [have[k] for k in have if k not in want]
    spurious = list(dict.fromkeys(k for k in claims if k not in have))  # in the claim's order
    if missing or spurious:
        lines = [f"claimed {len(want)} patterns, certified {cert.num_regions} regions on "
                 f"{cert.domain!r}"]
        for r in missing[:SHOWN]:
            lines.append(f"  missing: region {r.index} (certified, not claimed), pattern "
                         f"{pattern_text(r.pattern)}, witness "
                         f"({', '.join(approx(v) for v in r.witness)})")
        sizes = [len(s) for s in next(iter(have.values())).pattern]
        for pat in spurious[:SHOWN]:
            parts, at = [], 0
            for size in sizes:
                parts.append(list(pat[at:at + size]))
                at += size
            lines.append(f"  spurious: pattern {pattern_text(parts)} (claimed; no "
                         "full-dimensional region has it)")
        more = len(missing) + len(spurious) - min(SHOWN, len(missing)) - min(SHOWN, len(spurious))
        if more > 0:
            lines.append(f"  ... and {more} more")
        raise VerificationError("\n".join(lines))


#: How many missing and how many spurious regions a failed claim lists.
SHOWN = 5


def pattern_text(pattern: Sequence[Sequence[int]]) -> str:
    """A pattern for a message: each op's states as digits (commas where a state has more than
    one), ops separated by ``|``; e.g. ``0110|10``."""
    out = []
    for states in pattern:
        states = list(states)
        wide = any(not 0 <= v <= 9 for v in states)
        out.append((",".join if wide else "".join)(str(v) for v in states))
    return "|".join(out)


def _flat_pattern(p: Any) -> tuple[int, ...]:
    if isinstance(p, torch.Tensor):
        return tuple(int(v) for v in p.reshape(-1).tolist())
    if isinstance(p, (list, tuple)) and p and isinstance(p[0], (list, tuple, torch.Tensor)):
        out: list[int] = []
        for s in p:
            out.extend(_flat_pattern(s))
        return tuple(out)
    return tuple(int(v) for v in p)
