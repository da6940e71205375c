"""verify on a Dask LocalCluster of processes against a local run: regions per second with 1 and
2 workers (one thread each) on 2-D MLPs; prints a markdown table.

Run: ``python benchmarks/dask_bench.py [--widths 64 128] [--workers 1 2]`` (from the repository
root; the ``dask`` extra). The nets are ``benchmarks/nets.py``'s ``mlp((2, w, w, w))`` on
``[-1, 1]^2``. "local" is ``verify(net, bounds, workers=1)``; a cluster run is ``verify(net,
bounds, executor=client, workers=1)`` with the cluster started beforehand (not timed); its time
includes the first layer's certificate, shipping the net, the tasks and the exact merge.
"writes shards" is ``verify(..., save=dir/"x.parquet")`` on the same cluster: the workers write
their cells' shards and the client merges only what lies between cells (and writes the
manifest); "client merge, then save" is the in-memory merge followed by ``cert.save`` of the
same directory, for comparison.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import exactrelu

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import mlp


def main(argv: list[str] | None = None) -> None:
    from distributed import Client, LocalCluster

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--widths", type=int, nargs="*", default=[64, 128])
    ap.add_argument("--workers", type=int, nargs="*", default=[1, 2])
    args = ap.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.1f}, {os.cpu_count()} cores")
    print("| net | regions | run | tasks | seconds | regions/s |")
    print("|---|---:|---|---:|---:|---:|")
    bounds = [(-1, 1), (-1, 1)]
    for w in args.widths:
        net = mlp((2, w, w, w))
        t0 = time.perf_counter()
        local = exactrelu.verify(net, bounds, progress=False, workers=1)
        s = time.perf_counter() - t0
        name = f"2-{w}-{w}-{w}"
        print(f"| {name} | {local.num_regions:,} | local, 1 thread | - | {s:.2f} | "
              f"{local.num_regions / s:,.0f} |", flush=True)
        for n in args.workers:
            runs = []
            with LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster) as client, \
                    tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "x.parquet"
                t0 = time.perf_counter()
                cert = exactrelu.verify(net, bounds, executor=client, progress=False, workers=1)
                runs.append(("", time.perf_counter() - t0))
                cert.save(path, progress=False)
                runs.append((", client merge, then save", time.perf_counter() - t0))
                t0 = time.perf_counter()
                cert = exactrelu.verify(net, bounds, executor=client, progress=False, workers=1,
                                        save=path)
                runs.append((", writes shards", time.perf_counter() - t0))
            assert cert.num_regions == local.num_regions
            for what, s in runs:
                print(f"| {name} | {cert.num_regions:,} | Dask, {n} worker{'s' * (n > 1)}{what} "
                      f"| {cert.stats['tasks']:,} | {s:.2f} | {cert.num_regions / s:,.0f} |",
                      flush=True)


if __name__ == "__main__":
    main()
