"""check on a Dask LocalCluster of processes against a local check: regions per second of
``exactrelu.check`` of a sharded certificate with 1 and 2 workers (one thread each) on 2-D (or
3-D) MLPs; prints a markdown table.

Run: ``python benchmarks/dask_check.py [--widths 256] [--depth 3] [--cells 8] [--workers 1 2]
[--domain box|r2|r3] [--max-memory GB]`` (from the repository root; the ``dask`` extra). The nets
are ``benchmarks/nets.py``'s ``mlp((d, w, ..., w))`` on ``[-1, 1]^2`` (``--domain box``, the
default), all of R^2 (``r2``) or all of R^3 (``r3``: completeness by the closure, whose state the
workers' checkers export too); each certificate is made by
``verify(net, domain, workers=1, cells=--cells, save=dir/"net.parquet")`` (not timed: cell by
cell, each cell's regions in shards of their own). "local" is ``check(path, net)`` in this
process (the compiled pass, shard by shard); a cluster run is ``check(path, net,
executor=client)`` with the cluster started beforehand and the checker imported on each worker
(not timed): the workers check the
region shards, two contiguous groups per worker, and the client joins their states, reads the
adjacent pairs and finishes. Columns: wall seconds; CPU seconds of this process and of the
workers (user + system, from ``os.times`` on each worker before and after); regions per wall
second; peak memory: this process's resident high-water mark during the check
(``benchmarks/measure.TreeMemory``; its sampling thread, once a second, reads the workers) and
each worker's peak RSS over its life (``ru_maxrss``, the largest of them). ``--max-memory``
limits the address space of this process and, inherited, of every worker (GB, default 4).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# the nets, and the package of this checkout (not whichever one the environment has installed)
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]


def _cpu_self() -> float:
    t = os.times()
    return t.user + t.system


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _warm() -> None:
    import exactrelu.check  # noqa: F401  (torch and the compiled checker, as a task needs)


def _loadavg() -> str:
    with open("/proc/loadavg") as fh:
        return fh.read().strip()


def _row(name: str, regions: int, run: str, wall: float, cpu: float, workers_cpu: float | None,
         peak_client: float, peak_worker: float | None) -> None:
    w = "-" if workers_cpu is None else f"{workers_cpu:.1f}"
    pw = "-" if peak_worker is None else f"{peak_worker:,.0f}"
    print(f"| {name} | {regions:,} | {run} | {wall:.2f} | {cpu:.1f} | {w} | "
          f"{regions / max(wall, 1e-9):,.0f} | {peak_client:,.0f} | {pw} |", flush=True)


def main(argv: list[str] | None = None) -> None:
    from distributed import Client, LocalCluster

    import exactrelu

    from measure import TreeMemory
    from nets import mlp

    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", type=int, nargs="*", default=[256])
    ap.add_argument("--depth", type=int, default=3, help="hidden layers (default 3)")
    ap.add_argument("--cells", type=int, default=8, help="cells= of the verify run (default 8)")
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--domain", choices=["box", "r2", "r3"], default="box",
                    help="[-1, 1]^2, all of R^2 or all of R^3 (default box)")
    ap.add_argument("--max-memory", type=float, default=4.0,
                    help="address-space limit of this process and each worker, GB (default 4)")
    args = ap.parse_args(argv)
    cap = int(args.max_memory * 2**30)
    resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    print(f"exactrelu from {Path(exactrelu.__file__).parent}, {os.cpu_count()} cores, "
          f"memory limit {args.max_memory:g} GB per process; /proc/loadavg: {_loadavg()}")
    print("| net | regions | run | seconds | CPU s (client) | CPU s (workers) | regions/s | "
          "peak MB (client) | peak MB (a worker's RSS) |")
    print("|---|---:|---|---:|---:|---:|---:|---:|---:|")
    domain: Any = ([(-1.0, 1.0), (-1.0, 1.0)] if args.domain == "box" else
                   exactrelu.RealSpace(int(args.domain[1])))
    where = {"box": "", "r2": " on R^2", "r3": " on R^3"}[args.domain]
    for width in args.widths:
        widths = (2 if args.domain != "r3" else 3,) + (width,) * args.depth
        name = "-".join(map(str, widths)) + where
        net = mlp(widths)
        with tempfile.TemporaryDirectory(prefix="dask-check-") as tmp:
            path = Path(tmp) / "net.parquet"
            exactrelu.verify(net, domain, progress=False, workers=1, cells=args.cells, save=path)
            regions = exactrelu.Certificate.load(path).num_regions
            with TreeMemory(interval=1.0) as mem:
                w0, c0 = time.perf_counter(), _cpu_self()
                exactrelu.check(str(path), net, progress=False)
                wall, cpu = time.perf_counter() - w0, _cpu_self() - c0
            _row(name, regions, "local", wall, cpu, None, mem.peak_main, None)
            for n in args.workers:
                with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                  dashboard_address=None, memory_limit=0) as cluster, \
                        Client(cluster) as client:
                    client.run(_warm)  # each worker imports the checker once (not timed)
                    before: dict[str, Any] = client.run(_cpu_self)
                    with TreeMemory(interval=1.0) as mem:
                        w0, c0 = time.perf_counter(), _cpu_self()
                        exactrelu.check(str(path), net, progress=False, executor=client)
                        wall, cpu = time.perf_counter() - w0, _cpu_self() - c0
                    after: dict[str, Any] = client.run(_cpu_self)
                    peaks: dict[str, Any] = client.run(_peak_rss_mb)
                workers_cpu = sum(after[k] - before[k] for k in after)
                _row(name, regions, f"Dask, {n} worker{'s' if n > 1 else ''}", wall, cpu,
                     workers_cpu, mem.peak_main, max(peaks.values()))
    print(f"/proc/loadavg after: {_loadavg()}")


if __name__ == "__main__":
    main()
