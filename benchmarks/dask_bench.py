"""verify on a Dask LocalCluster of processes against a local run and a local ``cells=`` run:
regions per second with 1 and 2 workers (one thread each) on 2-D MLPs; prints a markdown table.

Run: ``python benchmarks/dask_bench.py [--widths 64 128] [--workers 1 2] [--domain box|reals]
[--cells 8]`` (from the repository root; the ``dask`` extra). The nets are
``benchmarks/nets.py``'s ``mlp((2, w, w, w))`` on ``[-1, 1]^2`` (``--domain box``) or on all of
R^2 (``--domain reals``: regions with rays, cells that are unbounded polyhedra). "local" is
``verify(net, domain, workers=1)``; "cells=N, in memory" is ``verify(net, domain, workers=1,
cells=N)``, the cells certified in this process and merged in memory; "cells=N" is ``verify(net,
domain, workers=1, cells=N, save=dir/"c.parquet")``; a cluster run is ``verify(net, domain,
executor=client, workers=1)`` with the cluster started beforehand (not timed); its time includes
the first layer's cells, shipping the net, the tasks and the exact merge. "writes shards" is
``verify(..., save=dir/"x.parquet")`` on the same cluster: the workers write their cells' shards
and the client merges only what lies between cells (and writes the manifest); "client merge, then
save" is the in-memory merge followed by ``cert.save`` of the same directory, for comparison. CPU
seconds are this process's plus, for a cluster run, every worker's (``time.process_time`` in
each).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import exactrelu
from exactrelu.domain import RealSpace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import mlp


def _workers_cpu(client: Any) -> float:
    return sum(client.run(time.process_time).values())


def main(argv: list[str] | None = None) -> None:
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--widths", type=int, nargs="*", default=[64, 128])
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    ap.add_argument("--domain", choices=["box", "reals"], default="box")
    ap.add_argument("--cells", type=int, default=8)
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    print("| net | domain | regions | run | tasks | seconds | CPU s | regions/s |")
    print("|---|---|---:|---|---:|---:|---:|---:|")
    domain: Any = [(-1, 1), (-1, 1)] if args.domain == "box" else RealSpace(2)
    where = "[-1, 1]^2" if args.domain == "box" else "R^2"
    for w in args.widths:
        net = mlp((2, w, w, w))
        name = f"2-{w}-{w}-{w}"

        def row(run: str, tasks: Any, s: float, cpu: float, n: int, name: str = name) -> None:
            print(f"| {name} | {where} | {n:,} | {run} | {tasks} | {s:.2f} | {cpu:.2f} | "
                  f"{n / s:,.0f} |", flush=True)

        t0, c0 = time.perf_counter(), time.process_time()
        local = exactrelu.verify(net, domain, progress=False, workers=1)
        row("local, 1 thread", "-", time.perf_counter() - t0, time.process_time() - c0,
            local.num_regions)
        t0, c0 = time.perf_counter(), time.process_time()
        cert = exactrelu.verify(net, domain, progress=False, workers=1, cells=args.cells)
        row(f"cells={args.cells}, 1 thread, in memory", f"{cert.stats['tasks']:,}",
            time.perf_counter() - t0, time.process_time() - c0, cert.num_regions)
        assert cert.num_regions == local.num_regions
        del cert
        with tempfile.TemporaryDirectory() as tmp:
            t0, c0 = time.perf_counter(), time.process_time()
            cert = exactrelu.verify(net, domain, progress=False, workers=1, cells=args.cells,
                                    save=Path(tmp) / "c.parquet")
            row(f"cells={args.cells}, 1 thread", f"{cert.stats['tasks']:,}",
                time.perf_counter() - t0, time.process_time() - c0, cert.num_regions)
            assert cert.num_regions == local.num_regions
        for n in args.workers:
            runs = []
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client, \
                    tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "x.parquet"
                t0, c0, w0 = time.perf_counter(), time.process_time(), _workers_cpu(client)
                cert = exactrelu.verify(net, domain, executor=client, progress=False,
                                        workers=1)
                cpu = time.process_time() - c0 + _workers_cpu(client) - w0
                runs.append(("", time.perf_counter() - t0, cpu))
                cert.save(path, progress=False)
                cpu = time.process_time() - c0 + _workers_cpu(client) - w0
                runs.append((", client merge, then save", time.perf_counter() - t0, cpu))
                t0, c0, w0 = time.perf_counter(), time.process_time(), _workers_cpu(client)
                cert = exactrelu.verify(net, domain, executor=client, progress=False, workers=1,
                                        save=path)
                cpu = time.process_time() - c0 + _workers_cpu(client) - w0
                runs.append((", writes shards", time.perf_counter() - t0, cpu))
            assert cert.num_regions == local.num_regions
            for what, s, cpu in runs:
                row(f"Dask, {n} worker{'s' * (n > 1)}{what}", f"{cert.stats['tasks']:,}", s, cpu,
                    cert.num_regions)


if __name__ == "__main__":
    main()
