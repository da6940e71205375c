"""Certify the reference nets and print a markdown table beside the float trace time.

Run: ``python benchmarks/certify_bench.py [--only 2-16-16 5-8-8 ...] [--workers N] [--repeat R]
[--big] [--profile NET]`` (from the repository root, with the package installed); ``--only`` takes
reference nets and other widths of the same kind of net. ``--profile 2-64-64-64``
certifies that reference net once in this process (no pool) under cProfile and prints where the
exact layer spends its time: the functions of ``exactrelu`` with the most time of their own.
``--big`` adds a 2-D net with about 100,000 regions, certified the way a user would (``verify(net,
bounds)``: its own trace and its own process pool of ``--workers``), and reports the peak memory of
this process and its workers together (this process's resident high-water mark plus its workers'
proportional set sizes sampled every 0.1 s: ``benchmarks/measure.TreeMemory``; Linux).
Every certificate of at most ``--check-max-regions`` regions (default 200,000) is also re-checked
by the independent checker, once (its time and its ratio to certification are columns too).
Times are the best of ``--repeat`` runs (default 3) after one warm-up run on a tiny net, so that
imports and first-call costs are not billed to the first row (the library exactrelu replaces
and relucent are timed beside it by ``compare_torchays.py``). Each net is certified as
``verify`` does it (``--engine auto``): the compiled engine on ``--workers`` threads where it
applies (chains of affine layers and elementwise ops on 2-D boxes), else the Python engine,
whose (warm) process pool of ``--workers`` is used only for traces of at least
``exactrelu.verify.PARALLEL_THRESHOLD`` regions. ``--engine python`` times the Python engine
everywhere. Before each run the previous certificate is freed and the compiled engine's
background frees are waited for (``_core.settle``), so that no run pays for the one before it.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

import exactrelu
from exactrelu.capture import capture
from exactrelu.domain import as_domain
from exactrelu.engines import compiled as compiled_engine
from exactrelu.trace import trace
from exactrelu.verify import PARALLEL_THRESHOLD

from measure import TreeMemory, peak_rss_mb
from nets import mlp, reference_nets

DEFAULT = ["2-16-16", "2-16-16-16", "2-32-32", "2-32-32-32", "3-8-8", "2-64-64-64", "2-128-128-128",
           "4-16-16-16"]


def settle() -> None:
    """Wait for the compiled engine's background frees of earlier certificates."""
    if compiled_engine.available():
        compiled_engine._core.settle()


def big_row(net: torch.nn.Module, bounds: list, workers: int, engine: str) -> None:
    """The 100,000-region net as a user runs it: ``verify`` with its own trace, threads or pool."""
    settle()
    with TreeMemory() as mem:
        cert = exactrelu.verify(net, bounds, progress=False, workers=workers, engine=engine)
    sec = cert.stats["seconds"]
    print(f"\nbig net 2-256-256-256: {cert.num_regions} regions, {cert.num_vertices} vertices; "
          f"trace {sec['trace']:.1f} s, certify {sec['exact'] + sec['assemble']:.1f} s "
          f"({cert.stats['engine']} engine, {workers} workers); peak memory, this process "
          f"and its workers together: {mem.peak:.0f} MB (this process alone: "
          f"{mem.peak_main:.0f} MB)", flush=True)


def profile_row(name: str, top: int = 15) -> None:
    """One in-process certification of the reference net ``name`` under cProfile: the cells it
    made and the ``exactrelu`` functions with the most time of their own (cumulative beside)."""
    import cProfile
    import pstats

    net, bounds = next((net, b) for n, net, b in reference_nets() if n == name)
    tr = trace(net, bounds, progress=False)
    prof = cProfile.Profile()
    prof.enable()
    cert = exactrelu.verify(net, bounds, progress=False, trace=tr, workers=1, engine="python")
    prof.disable()
    stats = pstats.Stats(prof).stats  # type: ignore[attr-defined]
    rows = [(tt, ct, n, f"{Path(file).name}:{fn}") for (file, _line, fn), (_cc, n, tt, ct, _)
            in stats.items() if f"{os.sep}exactrelu{os.sep}" in file]
    rows.sort(reverse=True)
    total = sum(tt for (_cc, _n, tt, _ct, _) in stats.values())
    print(f"\nprofile of {name}: {cert.stats['cells']} cells, {cert.num_regions} regions, "
          f"{total:.2f} s under cProfile (which slows Python calls; read shares, not seconds)")
    print("| function | calls | own s | cumulative s |")
    print("|---|---:|---:|---:|")
    for tt, ct, n, where in rows[:top]:
        print(f"| {where} | {n} | {tt:.3f} | {ct:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None,
                        help="names such as 2-16-16 (reference nets, or any widths: 5-8-8)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--big", action="store_true",
                        help="add a 2-D net with about 100,000 regions")
    parser.add_argument("--repeat", type=int, default=3, help="best of this many runs per net")
    parser.add_argument("--check-max-regions", type=int, default=200000,
                        help="run the checker on certificates of at most this many regions")
    parser.add_argument("--profile", metavar="NET",
                        help="profile one in-process certification (Python engine)")
    parser.add_argument("--engine", choices=["auto", "python"], default="auto",
                        help="auto: as verify does it (compiled where it applies); python: the "
                             "Python engine")
    args = parser.parse_args()
    names = args.only or DEFAULT
    known = [n for n, _, _ in reference_nets()]
    if args.profile and args.profile not in known:
        parser.error(f"--profile {args.profile}: not a reference net; one of {', '.join(known)}")
    nets = [(n, net, b) for n, net, b in reference_nets() if n in names]
    for n in names:  # other widths such as 5-8-8: the same kind of net (benchmarks/nets.py)
        if n not in known:
            try:
                widths = tuple(int(w) for w in n.split("-"))
            except ValueError:
                parser.error(f"--only {n}: a reference net or widths such as 5-8-8")
            nets.append((n, mlp(widths), [(-1, 1)] * widths[0]))
    print(f"workers: {args.workers}, torch {torch.__version__}, {os.cpu_count()} cores")
    print("| net | engine | float regions | trace s | certified regions | pieces | vertices "
          "| certify s | certify / trace | check s | check / certify |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    executor = cf.ProcessPoolExecutor(max_workers=args.workers) if args.workers > 1 else None
    try:
        if executor is not None:  # warm the pool so start-up is not billed to the first net
            list(executor.map(abs, range(args.workers)))
        warm = mlp((2, 4, 4))
        exactrelu.check(exactrelu.verify(warm, [(-1, 1)] * 2, progress=False, workers=1), warm)
        for name, net, bounds in nets:
            t_trace = t_cert = math.inf
            cert = None
            compiled = args.engine == "auto" and compiled_engine.plan(capture(net, (len(bounds),)),
                                                                  as_domain(bounds)) is not None
            for _ in range(max(1, args.repeat)):
                cert = None  # the previous run's certificate is freed here, not in a timed region
                settle()
                t0 = time.perf_counter()
                tr = trace(net, bounds, progress=False)
                t1 = time.perf_counter()
                # verify's own policy: the compiled engine (threads) where it applies; else a
                # process pool only for traces large enough to pay for it
                pool = executor if not compiled and tr.num_regions >= PARALLEL_THRESHOLD else None
                cert = exactrelu.verify(net, bounds, progress=False, trace=tr, executor=pool,
                                        workers=args.workers,
                                        engine="auto" if compiled else "python")
                t2 = time.perf_counter()
                t_trace, t_cert = min(t_trace, t1 - t0), min(t_cert, t2 - t1)
            if cert.num_regions <= args.check_max_regions:
                t2 = time.perf_counter()
                exactrelu.check(cert, net)
                t_check = time.perf_counter() - t2
                check_s = f"{t_check:.2f} | {t_check / t_cert:.0f}"
            else:
                check_s = "skipped | -"
            print(f"| {name} | {cert.stats['engine']} | {tr.num_regions} | {t_trace:.3f} | "
                  f"{cert.num_regions} | {cert.num_pieces} | "
                  f"{cert.num_vertices} | {t_cert:.3f} | {t_cert / max(t_trace, 1e-9):.1f} | "
                  f"{check_s} |", flush=True)
    finally:
        if executor is not None:
            executor.shutdown()
    if args.profile:
        profile_row(args.profile)
    if args.big:
        big_row(mlp((2, 256, 256, 256)), [(-1, 1)] * 2, args.workers, args.engine)
    print(f"peak resident memory, this process's peak plus the largest child's: "
          f"{peak_rss_mb():.0f} MB")


if __name__ == "__main__":
    main()
