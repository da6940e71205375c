"""exactrelu beside relucent on all of R^2 and R^3: region counts and times on the same networks.

relucent (``pip install relucent``, version 1.0.0; a float tool: its LPs run in Gurobi through
the size-limited licence its ``gurobipy`` dependency carries) enumerates the regions of a ReLU
network over all of R^d; exactrelu certifies them exactly (``verify(net, None)``, the compiled
engine, and ``engine="python"`` beside it). relucent is never installed into exactrelu's
environment: ``--install`` puts relucent 1.0.0 (without its dependencies) and the two it needs
that exactrelu's environment lacks (``gurobipy``, ``plotly``) into a directory of their own
(``--relucent-dir``, default ``~/.cache/exactrelu-bench/relucent``) that only relucent's runs put
on their path; without ``--install`` that directory is used when it holds relucent, and
relucent is left out otherwise (say ``--install`` to have it).

Run from the repository root::

    python benchmarks/compare_relucent.py [--install] [--timeout 600] [--max-memory 4]

Networks: ``benchmarks/nets.py``'s ``mlp`` (``Linear(d, w1)-ReLU-...-Linear(wk, 2)``, built
right after ``torch.manual_seed(5)``), on all of R^d. Each tool runs once per network in a
process of its own, under an address-space limit of ``--max-memory`` GB, stopped after
``--timeout`` seconds; only the counting call is timed (imports and building the net are not):
exactrelu's ``verify`` (certification of every region, vertex, ray, line, facet, adjacency and
piece; the checker is not run), relucent's ``Complex(net).bfs(nworkers=1)``. The last columns
are relucent's time over each engine's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

from compare_torchays import child_result

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
NETS = [(2, 16, 16), (2, 16, 16, 16), (2, 32, 32), (2, 32, 32, 32), (2, 64, 64),
        (3, 8, 8), (3, 8, 8, 8), (3, 16, 16), (3, 16, 16, 16)]
TOOLS = ("compiled", "python", "relucent")
DEFAULT_DIR = os.path.join(os.path.expanduser("~"), ".cache", "exactrelu-bench", "relucent")


def _net(name: str) -> object:
    sys.path.insert(0, HERE)
    from nets import mlp

    return mlp(tuple(int(w) for w in name.split("-")))


def child(tool: str, name: str) -> dict:
    net = _net(name)
    if tool == "relucent":
        import relucent

        cx = relucent.Complex(net)
        t0 = time.perf_counter()
        cx.bfs(nworkers=1, verbose=0)
        return {"regions": len(cx), "seconds": time.perf_counter() - t0}
    import exactrelu

    t0 = time.perf_counter()
    cert = exactrelu.verify(net, None, progress=False, engine=tool, workers=1)
    return {"regions": cert.num_regions, "seconds": time.perf_counter() - t0}


def measure(tool: str, name: str, timeout: float, max_memory: float, path: str) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", tool, name,
           "--max-memory", str(max_memory)]
    return child_result(cmd, timeout, [ROOT] + ([path] if tool == "relucent" else []))


def install(path: str) -> None:
    """relucent 1.0.0 and the dependencies exactrelu's environment lacks, into ``path``."""
    pip = [sys.executable, "-m", "pip", "install", "--quiet", "--target", path]
    subprocess.run([*pip, "--no-deps", "relucent==1.0.0"], check=True)
    subprocess.run([*pip, "gurobipy>=12,<14", "plotly>=5.20"], check=True)


def _cell(res: dict) -> tuple[str, str]:
    if "timeout" in res:
        return "stopped", f"> {res['timeout']:.0f}"
    if "error" in res:
        return "error", res["error"][:60]
    return f"{res['regions']:,}", f"{res['seconds']:.3f}"


def _ratio(num: dict, den: dict) -> str:
    if "seconds" not in num or "seconds" not in den:
        return "-"
    r = num["seconds"] / den["seconds"]
    return f"{r:.0f}x" if r >= 10 else f"{r:.1f}x"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--install", action="store_true",
                    help="install relucent into --relucent-dir first (PyPI)")
    ap.add_argument("--relucent-dir", default=DEFAULT_DIR, help="where relucent lives")
    ap.add_argument("--no-relucent", action="store_true", help="leave relucent out")
    ap.add_argument("--no-python", action="store_true", help="leave exactrelu's Python engine out")
    ap.add_argument("--timeout", type=float, default=600.0, help="seconds per tool and net")
    ap.add_argument("--max-memory", type=float, default=4.0, help="GB of address space per run")
    ap.add_argument("--only", nargs="*", default=None, help="net names, e.g. 2-16-16 3-8-8")
    ap.add_argument("--child", nargs=2, metavar=("TOOL", "NET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        cap = int(args.max_memory * 2**30)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        try:
            res = child(*args.child)
        except Exception as exc:  # reported in the table, not a traceback
            res = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
        sys.stdout.write("RESULT " + json.dumps(res) + "\n")
        return
    tools = list(TOOLS)
    if args.no_python:
        tools.remove("python")
    if args.no_relucent:
        tools.remove("relucent")
    else:
        if args.install:
            install(args.relucent_dir)
        probe = subprocess.run([sys.executable, "-c", "import relucent"], capture_output=True,
                               env=dict(os.environ, PYTHONPATH=args.relucent_dir))
        if probe.returncode != 0:
            print(f"relucent does not import from {args.relucent_dir}: left out (--install "
                  "installs it there)\n")
            tools.remove("relucent")
    names = ["-".join(map(str, w)) for w in NETS]
    names = [n for n in names if not args.only or n in args.only]
    print(f"all of R^d; timeout {args.timeout:.0f} s and {args.max_memory:g} GB per tool and "
          f"net; load average {os.getloadavg()[0]:.2f} at the start\n")
    head = " | ".join(f"{t} regions | {t} s" for t in tools)
    ratio_of = [t for t in ("compiled", "python") if t in tools] if "relucent" in tools else []
    print((f"| net | {head} | " + "".join(f"relucent / {t} | " for t in ratio_of)).rstrip())
    print("|---|" + "---:|---:|" * len(tools) + "---:|" * len(ratio_of))
    for name in names:
        res = {t: measure(t, name, args.timeout, args.max_memory, args.relucent_dir)
               for t in tools}
        cells = [c for t in tools for c in _cell(res[t])]
        cells += [_ratio(res["relucent"], res[t]) for t in ratio_of]
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")


if __name__ == "__main__":
    main()
