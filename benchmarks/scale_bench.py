"""Scale benchmark: the float trace, and verify, save and check end to end, on 2-D MLPs up to
more than a million regions; prints a markdown table.

Run: ``python benchmarks/scale_bench.py [--widths 64 128 ...] [--depth 3] [--stages trace verify
save shards read check] [--shard-rows N] [--workers N] [--threads T] [--max-memory GB] [--timeout
S]``. It measures the
package of the checkout it sits in (the header names it), whichever one the environment has
installed. Give ``--threads 1`` on a machine other work keeps busy: torch's intra-op threads wait
on each other there, and wall time then says more about the load than about the code.

The nets are ``benchmarks/nets.py``'s ``mlp((2, w, ..., w))`` (``--depth`` hidden layers of
width ``w``, PyTorch's default initialisation after ``torch.manual_seed(5)``, two outputs) on
``[-1, 1]^2``. In two dimensions the number of regions grows about with the square of the number
of units, so width sets the scale: 2-880-880-880 has 1,123,301 regions (depth adds fewer
regions per unit at PyTorch's default initialisation, and costs more per region).

Stages, each through the public API: ``trace`` (``exactrelu.trace.trace``), ``verify``
(``exactrelu.verify`` with its own trace, engine ``auto``, ``--workers``), ``save``
(``Certificate.save`` to a temporary JSON file), ``shards`` (``Certificate.save`` as a sharded
Parquet directory, ``--shard-rows`` rows per shard), ``read`` (``Certificate.load`` of the last
file saved and one pass over its regions, shard by shard for a sharded one: what any checker
that reads every region pays) and ``check`` (``Certificate.load`` of the last file saved and
``exactrelu.check``, which reads a sharded one shard by shard). A stage that is not selected but
needed by a selected one (save needs a certificate, read and check a saved file) runs
unmeasured.

Every net runs in a child process of its own (a fresh interpreter, so that memory one net freed
is not reused by the next), under an address-space limit of ``--max-memory`` GB (default 10;
a stage that hits it is reported as out of memory) and an optional ``--timeout`` per net.
Columns: seconds (wall) and CPU seconds (user + system, the process and its waited-for children),
regions per wall second and microseconds per region, peak memory (the summed proportional set
size of the child process and its workers, sampled every 0.1 s from /proc, see
``benchmarks/measure.py``; "process" is the child alone) and bytes per region: (peak summed PSS
during the stage minus the child's PSS when the stage began) / regions.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# the nets, and the package of this checkout (not whichever one the environment has installed)
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

STAGES = ("trace", "verify", "save", "shards", "read", "check")
DEFAULT_WIDTHS = [64, 128, 256, 384, 512, 640, 880]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _row(stage: str, regions: int, wall: float, cpu: float, mem: Any, **extra: Any) -> dict:
    return {"stage": stage, "regions": regions, "seconds": wall, "cpu": cpu,
            "peak_mb": mem.peak, "peak_main_mb": mem.peak_main,
            "bytes_per_region": (mem.peak - mem.start) * 2**20 / max(regions, 1), **extra}


def run_net(widths: tuple[int, ...], stages: list[str], workers: int, threads: int,
            shard_rows: int | None = None) -> None:
    """Run the stages on one net in this process; one JSON line per measured stage."""
    import torch

    import exactrelu
    from exactrelu.trace import trace

    from measure import TreeMemory
    from nets import mlp

    net = mlp(widths)
    bounds = [(-1.0, 1.0)] * widths[0]
    torch.set_num_threads(threads)

    def emit(row: dict) -> None:
        print(json.dumps(row), flush=True)

    if "trace" in stages:
        gc.collect()
        with TreeMemory() as mem:
            w0, c0 = time.perf_counter(), _cpu()
            tr = trace(net, bounds, progress=False)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
        emit(_row("trace", tr.num_regions, wall, cpu, mem, vertices=tr.num_vertices))
        del tr
    need = [s for s in ("verify", "save", "check") if s in stages]
    if not need:
        return
    gc.collect()
    with TreeMemory() as mem:
        w0, c0 = time.perf_counter(), _cpu()
        cert = exactrelu.verify(net, bounds, progress=False, workers=workers)
        wall, cpu = time.perf_counter() - w0, _cpu() - c0
    if "verify" in stages:
        emit(_row("verify", cert.num_regions, wall, cpu, mem, engine=cert.stats.get("engine")))
    regions = cert.num_regions
    if not any(s in stages for s in ("save", "shards", "read", "check")):
        return
    with tempfile.TemporaryDirectory() as tmp:
        saves = [s for s in ("save", "shards") if s in stages] or ["save"]
        path = Path(tmp)
        for stage in saves:
            path = Path(tmp) / ("net.parquet" if stage == "shards" else "net.cert.json")
            gc.collect()
            with TreeMemory() as mem:
                w0, c0 = time.perf_counter(), _cpu()
                cert.save(path, progress=False,
                          shard_rows=shard_rows if stage == "shards" else None)
                wall, cpu = time.perf_counter() - w0, _cpu() - c0
            size = (sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
                    if path.is_dir() else path.stat().st_size)
            if stage in stages:
                emit(_row(stage, regions, wall, cpu, mem, file_mb=size / 2**20))
        del cert
        gc.collect()
        if "read" in stages:
            with TreeMemory() as mem:
                w0, c0 = time.perf_counter(), _cpu()
                loaded = exactrelu.Certificate.load(path)
                rows = loaded.regions
                for _ in (rows.shards() if hasattr(rows, "shards") else [rows]):
                    pass
                wall, cpu = time.perf_counter() - w0, _cpu() - c0
            del loaded, rows
            gc.collect()
            emit(_row("read", regions, wall, cpu, mem))
        if "check" not in stages:
            return
        with TreeMemory() as mem:
            w0, c0 = time.perf_counter(), _cpu()
            exactrelu.check(exactrelu.Certificate.load(path), net, progress=False)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
        emit(_row("check", regions, wall, cpu, mem))


def _limit(gb: float) -> Any:
    def apply() -> None:
        cap = int(gb * 10**9)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    return apply


def _print_row(name: str, r: dict) -> None:
    regions = r["regions"]
    per = r["seconds"] / max(regions, 1)
    note = ""
    if "engine" in r:
        note = f"engine {r['engine']}"
    if "file_mb" in r:
        note = f"file {r['file_mb']:.0f} MB"
    if "vertices" in r:
        note = f"{r['vertices']:,} vertices"
    print(f"| {name} | {r['stage']} | {regions:,} | {r['seconds']:.2f} | {r['cpu']:.1f} | "
          f"{regions / max(r['seconds'], 1e-9):,.0f} | {per * 1e6:.1f} | "
          f"{r['bytes_per_region']:,.0f} | {r['peak_mb']:,.0f} | {r['peak_main_mb']:,.0f} | "
          f"{note} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--widths", type=int, nargs="*", default=DEFAULT_WIDTHS)
    parser.add_argument("--depth", type=int, default=3, help="hidden layers (default 3)")
    parser.add_argument("--stages", nargs="*", choices=STAGES, default=list(STAGES))
    parser.add_argument("--shard-rows", type=int, default=None,
                        help="rows per shard of the shards stage (default: the library's)")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--threads", type=int, default=None,
                        help="torch intra-op threads (default: --workers)")
    parser.add_argument("--max-memory", type=float, default=10.0,
                        help="address-space limit of each net's process, GB (default 10)")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per net")
    parser.add_argument("--net", help=argparse.SUPPRESS)  # the child's own run
    args = parser.parse_args()
    if args.net:
        run_net(tuple(int(w) for w in args.net.split("-")), args.stages, args.workers,
                args.threads or args.workers, args.shard_rows)
        return
    import torch

    import exactrelu

    threads = args.threads or args.workers
    print(f"exactrelu from {Path(exactrelu.__file__).parent}, torch {torch.__version__}, "
          f"{os.cpu_count()} cores, workers {args.workers}, "
          f"torch threads {threads}, "
          f"load average {os.getloadavg()[0]:.1f}, memory limit {args.max_memory:g} GB per net")
    print("| net | stage | regions | seconds | CPU s | regions/s | us/region | bytes/region | "
          "peak MB (process + workers) | peak MB (process) | |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    stages = [s for s in STAGES if s in args.stages]
    for w in args.widths:
        name = "-".join(map(str, (2,) + (w,) * args.depth))
        cmd = [sys.executable, __file__, "--net", name, "--workers", str(args.workers),
               "--threads", str(threads), "--stages", *stages]
        if args.shard_rows is not None:
            cmd += ["--shard-rows", str(args.shard_rows)]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                                  check=False, preexec_fn=_limit(args.max_memory))
            out, err, code = done.stdout, done.stderr, done.returncode
        except subprocess.TimeoutExpired as exc:
            out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
            err, code = f"timed out after {args.timeout:g} s", -1
        rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
        for r in rows:
            _print_row(name, r)
        if code != 0:
            last = (err.strip().splitlines() or ["?"])[-1]
            if "MemoryError" in err or "DefaultCPUAllocator" in err:
                last = f"out of memory under the {args.max_memory:g} GB limit"
            left = [s for s in stages if s not in {r["stage"] for r in rows}]
            print(f"| {name} | {', '.join(left)} | failed: {last[:120]} | | | | | | | | |",
                  flush=True)


if __name__ == "__main__":
    main()
