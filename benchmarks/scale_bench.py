"""Scale benchmark: the float trace, and verify, save and check end to end, on 2-D MLPs up to
more than a million regions; prints a markdown table.

Run: ``python benchmarks/scale_bench.py [--widths 64 128 ...] [--depth 3] [--stages trace verify
save shards cells cells-memory read check] [--shard-rows N] [--cells N] [--workers N] [--threads T]
[--max-memory GB] [--timeout S] [--repeat N]``. It measures the package of the checkout it sits in
(the header names it), whichever one the environment has installed. Give ``--threads 1`` on a
machine other work keeps busy: torch's intra-op threads wait on each other there, and wall time
then says more about the load than about the code.

The nets are ``benchmarks/nets.py``'s ``mlp((2, w, ..., w))`` (``--depth`` hidden layers of
width ``w``, PyTorch's default initialisation after ``torch.manual_seed(5)``, two outputs) on
``[-1, 1]^2``. In two dimensions the number of regions grows about with the square of the number
of units, so width sets the scale: 2-880-880-880 has 1,123,301 regions (depth adds fewer
regions per unit at PyTorch's default initialisation, and costs more per region).

Stages, each through the public API: ``trace`` (``exactrelu.trace.trace``), ``verify``
(``exactrelu.verify`` with its own trace, engine ``auto``, ``--workers``), ``save``
(``Certificate.save`` to a JSON file), ``shards`` (``Certificate.save`` as a sharded Parquet
directory, ``--shard-rows`` rows per shard), ``cells`` (``exactrelu.verify`` with
``cells=--cells`` and ``save`` to a sharded directory: cell after cell, each written as it is
known), ``cells-memory`` (the same cells merged in memory: ``exactrelu.verify`` with
``cells=--cells`` and no ``save``), ``read`` (``Certificate.load`` of the file saved, the sharded
one where there is one, and one pass over its regions, shard by shard for a sharded one: what any
checker that reads every region pays) and ``check`` (``Certificate.load`` of that file and
``exactrelu.check``, which reads a sharded one shard by shard). A stage that is not selected but
needed by a selected one (save needs a certificate, read and check a saved file) runs unmeasured.

Every net runs its saving stages in a child process of its own (a fresh interpreter, so that
memory one net freed is not reused by the next), and read and check in another fresh one (what
a reviewer who only checks pays), each under an address-space limit of ``--max-memory`` GB
(default 10; a stage that hits it is reported as out of memory; Arrow's memory pool is the
system allocator there unless ``ARROW_DEFAULT_MEMORY_POOL`` says otherwise, as its default
reserves 1 GiB of address space up front) and an optional ``--timeout``.
Columns: seconds (wall) and CPU seconds (user + system, the process and its waited-for children),
regions per wall second and microseconds per region, peak memory (the child's resident
high-water mark plus its workers' proportional set sizes sampled every 0.1 s, see
``benchmarks/measure.py``; "process" is the child alone) and bytes per region: (that peak
during the stage minus the child's resident set when the stage began) / regions. A verify row's last
column splits its time per region into ``verify``'s own timers (``trace``, ``exact``) and, for
the compiled engine, its core's (``cert.stats["compiled_ms"]``: the certifying phases summed over
its threads, then ``certify_wall`` and the serial ``assembly`` and ``output``).

With ``--repeat N`` the widths run in N rounds (every width once per round, in the order given,
so that each width meets the same spread of machine load), and a second table gives, per net and
stage, the median microseconds per region (wall and CPU) over the rounds and their ratio to the
first width's: issue 17 compares 2-880-880-880 (10^6 regions) with 2-128-128-128 (2 x 10^4).
Each row of that table names the load averages its runs started at.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# the nets, and the package of this checkout (not whichever one the environment has installed)
sys.path[:0] = [str(ROOT / "benchmarks"), str(ROOT)]

STAGES = ("trace", "verify", "save", "shards", "cells", "cells-memory", "read", "check")
LOADING = ("read", "check")  # stages that load the saved certificate, in a process of their own
DEFAULT_WIDTHS = [64, 128, 256, 384, 512, 640, 880]


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def _row(stage: str, regions: int, wall: float, cpu: float, mem: Any, **extra: Any) -> dict:
    return {"stage": stage, "regions": regions, "seconds": wall, "cpu": cpu,
            "peak_mb": mem.peak, "peak_main_mb": mem.peak_main,
            "bytes_per_region": (mem.peak - mem.start) * 2**20 / max(regions, 1), **extra}


def run_net(widths: tuple[int, ...], stages: list[str], workers: int, threads: int,
            shard_rows: int | None, cells: int, where: Path) -> None:
    """Run the stages on one net in this process; one JSON line per measured stage. The
    certificate is saved in ``where`` (``net.parquet`` for shards and cells, else
    ``net.cert.json``); read and check load the one there (a saving stage not selected runs
    unmeasured when a loading one needs a file and none is there)."""
    import torch

    import exactrelu
    from exactrelu.trace import trace

    from measure import TreeMemory
    from nets import mlp

    net = mlp(widths)
    bounds = [(-1.0, 1.0)] * widths[0]
    torch.set_num_threads(threads)
    shards, single = where / "net.parquet", where / "net.cert.json"

    def emit(row: dict) -> None:
        print(json.dumps(row), flush=True)

    def size(path: Path) -> float:
        files = path.rglob("*") if path.is_dir() else [path]
        return sum(f.stat().st_size for f in files if f.is_file()) / 2**20

    if "trace" in stages:
        gc.collect()
        with TreeMemory() as mem:
            w0, c0 = time.perf_counter(), _cpu()
            tr = trace(net, bounds, progress=False)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
        emit(_row("trace", tr.num_regions, wall, cpu, mem, vertices=tr.num_vertices))
        del tr
    if "cells" in stages:
        gc.collect()
        with TreeMemory() as mem:
            w0, c0 = time.perf_counter(), _cpu()
            cert = exactrelu.verify(net, bounds, progress=False, workers=workers, cells=cells,
                                    save=shards)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
        emit(_row("cells", cert.num_regions, wall, cpu, mem, file_mb=size(shards),
                  tasks=cert.stats.get("tasks")))
        del cert
    if "cells-memory" in stages:
        gc.collect()
        with TreeMemory() as mem:
            w0, c0 = time.perf_counter(), _cpu()
            cert = exactrelu.verify(net, bounds, progress=False, workers=workers, cells=cells)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
        emit(_row("cells-memory", cert.num_regions, wall, cpu, mem,
                  tasks=cert.stats.get("tasks")))
        del cert
    loading = any(s in stages for s in LOADING)
    have = shards.exists() or single.exists()
    need = [s for s in ("verify", "save", "shards") if s in stages]
    if not need and not (loading and not have):
        _load_stages(stages, shards if shards.exists() else single, net)
        return
    gc.collect()
    with TreeMemory() as mem:
        w0, c0 = time.perf_counter(), _cpu()
        cert = exactrelu.verify(net, bounds, progress=False, workers=workers)
        wall, cpu = time.perf_counter() - w0, _cpu() - c0
    if "verify" in stages:
        split = cert.stats.get("seconds", {})
        emit(_row("verify", cert.num_regions, wall, cpu, mem, engine=cert.stats.get("engine"),
                  trace_s=split.get("trace"), exact_s=split.get("exact"),
                  phases=cert.stats.get("compiled_ms")))
    regions = cert.num_regions
    saves = [s for s in ("save", "shards") if s in stages] or (["save"] if loading else [])
    for stage in saves:
        path = shards if stage == "shards" else single
        gc.collect()
        with TreeMemory() as mem:
            w0, c0 = time.perf_counter(), _cpu()
            cert.save(path, progress=False, shard_rows=shard_rows if stage == "shards" else None)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
        if stage in stages:
            emit(_row(stage, regions, wall, cpu, mem, file_mb=size(path)))
    del cert
    gc.collect()
    _load_stages(stages, shards if shards.exists() else single, net)


def _load_stages(stages: list[str], path: Path, net: Any) -> None:
    """The read and check stages on the certificate at ``path``."""
    import exactrelu

    from measure import TreeMemory

    if not any(s in stages for s in LOADING):
        return
    gc.collect()
    regions = exactrelu.Certificate.load(path).num_regions
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
        print(json.dumps(_row("read", regions, wall, cpu, mem)), flush=True)
    if "check" in stages:
        with TreeMemory() as mem:
            w0, c0 = time.perf_counter(), _cpu()
            exactrelu.check(exactrelu.Certificate.load(path), net, progress=False)
            wall, cpu = time.perf_counter() - w0, _cpu() - c0
        print(json.dumps(_row("check", regions, wall, cpu, mem)), flush=True)


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
        if r.get("trace_s") is not None and r.get("exact_s") is not None:
            note += (f"; us/region: trace {r['trace_s'] / max(regions, 1) * 1e6:.1f}, exact "
                     f"{r['exact_s'] / max(regions, 1) * 1e6:.1f}")
        if r.get("phases"):  # the compiled core's timers (ms; phases summed over its threads)
            note += "; core us/region: " + ", ".join(
                f"{k} {v * 1e3 / max(regions, 1):.1f}" for k, v in r["phases"].items())
    if "file_mb" in r:
        note = f"file {r['file_mb']:.0f} MB"
    if r.get("tasks"):
        note += (", " if note else "") + f"{r['tasks']} cells"
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
    parser.add_argument("--timeout", type=float, default=None, help="seconds per process")
    parser.add_argument("--cells", type=int, default=8,
                        help="cells= of the cells stage (default 8)")
    parser.add_argument("--repeat", type=int, default=1,
                        help="rounds over the widths; N > 1 adds a table of medians (default 1)")
    parser.add_argument("--net", help=argparse.SUPPRESS)  # the child's own run
    parser.add_argument("--dir", help=argparse.SUPPRESS)  # where the child saves and loads
    args = parser.parse_args()
    if args.net:
        run_net(tuple(int(w) for w in args.net.split("-")), args.stages, args.workers,
                args.threads or args.workers, args.shard_rows, args.cells, Path(args.dir))
        return
    import torch

    import exactrelu

    threads = args.threads or args.workers
    print(f"exactrelu from {Path(exactrelu.__file__).parent}, torch {torch.__version__}, "
          f"{os.cpu_count()} cores, workers {args.workers}, "
          f"torch threads {threads}, "
          f"load average {os.getloadavg()[0]:.1f}, memory limit {args.max_memory:g} GB per "
          "process")
    print("| net | stage | regions | seconds | CPU s | regions/s | us/region | bytes/region | "
          "peak MB (process + workers) | peak MB (process) | |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    stages = [s for s in STAGES if s in args.stages]
    making = [s for s in stages if s not in LOADING]
    loading = [s for s in stages if s in LOADING]
    runs: dict[tuple[str, str], list[dict]] = {}
    for _ in range(max(1, args.repeat)):
        for w in args.widths:
            name = "-".join(map(str, (2,) + (w,) * args.depth))
            with tempfile.TemporaryDirectory(prefix="scale-bench-") as tmp:
                # the saving stages in one process, the loading ones in a fresh one
                for part in ([making, loading] if making else [loading]):
                    if part and not _child(name, part, args, threads, tmp, runs):
                        break
    if args.repeat > 1:
        _print_medians(runs)


def _print_medians(runs: dict[tuple[str, str], list[dict]]) -> None:
    """Per net and stage, the median us per region over the rounds, wall and CPU, and their
    ratios to the first net's (in the order run) for the same stage."""
    print()
    print("| net | stage | regions | runs | us/region wall (median) | us/region CPU (median) | "
          "wall / first net | CPU / first net | load averages at the starts |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---|")
    first: dict[str, tuple[float, float]] = {}
    for (name, stage), rows in runs.items():
        wall = statistics.median(r["seconds"] / max(r["regions"], 1) * 1e6 for r in rows)
        cpu = statistics.median(r["cpu"] / max(r["regions"], 1) * 1e6 for r in rows)
        w0, c0 = first.setdefault(stage, (wall, cpu))
        loads = ", ".join(f"{r['load']:.1f}" for r in rows)
        print(f"| {name} | {stage} | {rows[0]['regions']:,} | {len(rows)} | {wall:.1f} | "
              f"{cpu:.1f} | {wall / w0:.2f} | {cpu / c0:.2f} | {loads} |", flush=True)


def _child(name: str, stages: list[str], args: Any, threads: int, where: str,
           runs: dict[tuple[str, str], list[dict]]) -> bool:
    """Run ``stages`` on net ``name`` in a child process under the memory limit; print its
    rows and add them to ``runs``; False when it failed."""
    cmd = [sys.executable, __file__, "--net", name, "--workers", str(args.workers),
           "--threads", str(threads), "--cells", str(args.cells), "--dir", where, "--stages",
           *stages]
    if args.shard_rows is not None:
        cmd += ["--shard-rows", str(args.shard_rows)]
    # Arrow's default allocator (mimalloc) reserves 1 GiB of address space it does not touch;
    # under an address-space limit the system allocator measures what is used
    env = {**os.environ, "ARROW_DEFAULT_MEMORY_POOL":
           os.environ.get("ARROW_DEFAULT_MEMORY_POOL", "system")}
    load = os.getloadavg()[0]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=args.timeout,
                              check=False, preexec_fn=_limit(args.max_memory), env=env)
        out, err, code = done.stdout, done.stderr, done.returncode
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err, code = f"timed out after {args.timeout:g} s", -1
    rows = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    for r in rows:
        _print_row(name, r)
        runs.setdefault((name, r["stage"]), []).append({**r, "load": load})
    if code != 0:
        last = (err.strip().splitlines() or ["?"])[-1]
        if "MemoryError" in err or "DefaultCPUAllocator" in err:
            last = f"out of memory under the {args.max_memory:g} GB limit"
        left = [s for s in stages if s not in {r["stage"] for r in rows}]
        print(f"| {name} | {', '.join(left)} | failed: {last[:120]} | | | | | | | | |",
              flush=True)
    return code == 0


if __name__ == "__main__":
    main()
