"""Region counts and times of exactrelu beside torchays and relucent, on the same networks.

torchays (the ``analysis-relu-network`` repository, the library exactrelu replaces) is not on
PyPI: clone it and pass its checkout with ``--torchays PATH``; it needs torch, numpy and scipy.
relucent (``pip install relucent``; it solves its LPs with Gurobi's size-limited licence that its
``gurobipy`` dependency carries) is compared when it imports, or never with ``--no-relucent``.
Install both into a virtual environment of their own rather than into exactrelu's.

Run from the repository root (the independent reference counter lives in ``verify/``)::

    python benchmarks/compare_torchays.py --torchays ../analysis-relu-network [--timeout 300]

Networks, on the box ``[-1, 1]^d``:

* ``2-16-16`` ... ``2-32-32-32``, ``3-8-8``: torchays's own test model
  (``torchays.models.TestTNetLinear`` with ``norm_layer=nn.BatchNormNone``, two classes) built
  right after ``torch.manual_seed(5)`` as its ``main.py`` builds it, counted as its ``main.py``
  counts (``CPA(workers=1).start(net, bounds=(-1, 1), input_size=(d,), depth=-1)``:
  ``depth=-1`` takes the model's own ``n_relu``, the index of its last ReLU layer). These are
  the parameters of ``benchmarks/nets.py``'s ``mlp``, checked bitwise in torchays's run (the
  last column says ``same as nets.mlp``).
* ``dup-*``, ``neg-*``, ``dupneg-*``: small-integer nets whose hidden units come in duplicated
  pairs (the same unit twice), negated pairs (``w, b`` and ``-w, -b``: one hyperplane, opposite
  states) or both, on ``[-1, 1]^2``; every tool is handed the same parameters.

Each tool runs once per network in a process of its own, stopped after ``--timeout`` seconds;
only the counting call is timed (imports and building the net are not). The ``reference``
column is ``verify/_reference.py``'s independent exact counter (plain recursive splitting in
Fractions, sharing no code with exactrelu; 2-D only). relucent counts the cells of its complex
meeting the cube ``[-1, 1]^d`` (``bfs(cube_radius=1, cube_mode="intersect")``), which can
include a cell touching the box only along its boundary: such a count can exceed the number of
regions.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import time
from typing import Any

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)

SEEDED = [(2, 16, 16), (2, 16, 16, 16), (2, 32, 32), (2, 32, 32, 32), (3, 8, 8)]
# (name, widths, duplicate, negate, seed) of the degenerate integer nets
DEGENERATE = [
    ("dup-2-8-8", (2, 8, 8), True, False, 1),
    ("neg-2-8-8", (2, 8, 8), False, True, 2),
    ("dupneg-2-8-8", (2, 8, 8), True, True, 3),
    ("dupneg-2-16-16", (2, 16, 16), True, True, 4),
]
TOOLS = ("exactrelu", "torchays", "relucent", "reference")


def _names() -> list[str]:
    return ["-".join(map(str, w)) for w in SEEDED] + [d[0] for d in DEGENERATE]


def _integer_layer(rng: Any, n_in: int, n_out: int, duplicate: bool, negate: bool) -> tuple:
    """(weight, bias) of small integers: ``n_out / 2^k`` distinct units (non-zero rows), each
    repeated (``duplicate``) and/or followed by its negation (``negate``)."""
    import torch

    copies = (2 if duplicate else 1) * (2 if negate else 1)
    base = n_out // copies
    rows: list[list[int]] = []
    while len(rows) < base:
        w = [int(v) for v in rng.integers(-2, 3, size=n_in)]
        if any(w) and w not in rows and [-v for v in w] not in rows:
            rows.append(w)
    bias = [int(v) for v in rng.integers(-1, 2, size=base)]
    W, B = [], []
    for w, b in zip(rows, bias, strict=True):
        unit = [(w, b)] * (2 if duplicate else 1)
        if negate:
            unit = unit + [([-v for v in w], -b) for w, b in unit]
        for uw, ub in unit:
            W.append(uw)
            B.append(ub)
    return torch.tensor(W, dtype=torch.float32), torch.tensor(B, dtype=torch.float32)


def build(name: str) -> tuple[list[tuple], Any]:
    """(layers, sequential): the network ``name`` as ``[(weight, bias), ...]`` and as
    ``nn.Sequential(Linear, ReLU, ..., Linear)``."""
    import numpy as np
    import torch
    from torch import nn

    sys.path.insert(0, HERE)
    from nets import mlp

    seeded = {"-".join(map(str, w)): w for w in SEEDED}
    if name in seeded:
        net = mlp(seeded[name])
        lin = [m for m in net if isinstance(m, nn.Linear)]
        return [(m.weight.detach().clone(), m.bias.detach().clone()) for m in lin], net
    spec = next(d for d in DEGENERATE if d[0] == name)
    _, widths, dup, neg, seed = spec
    rng = np.random.default_rng(seed)
    layers = [_integer_layer(rng, a, b, dup, neg) for a, b in itertools.pairwise(widths)]
    out = torch.tensor(rng.integers(-2, 3, size=(2, widths[-1])), dtype=torch.float32)
    layers.append((out, torch.zeros(2)))
    mods: list[nn.Module] = []
    for w, b in layers:
        lin = nn.Linear(w.shape[1], w.shape[0])
        with torch.no_grad():
            lin.weight.copy_(w)
            lin.bias.copy_(b)
        mods += [lin, nn.ReLU()]
    return layers, nn.Sequential(*mods[:-1]).eval()


# --------------------------------------------------------------------------------- one run each
def _run_exactrelu(name: str) -> dict:
    import exactrelu

    layers, net = build(name)
    t0 = time.perf_counter()
    cert = exactrelu.verify(net, [(-1, 1)] * layers[0][0].shape[1], progress=False)
    return {"regions": cert.num_regions, "seconds": time.perf_counter() - t0}


def _run_reference(name: str) -> dict:
    sys.path.insert(0, ROOT)
    from verify._reference import reference_count

    layers, net = build(name)
    if layers[0][0].shape[1] != 2:
        return {"skip": "2-D only"}
    t0 = time.perf_counter()
    res = reference_count(net, [(-1, 1), (-1, 1)])
    return {"regions": res.num_regions, "seconds": time.perf_counter() - t0}


def _run_torchays(name: str, path: str) -> dict:
    import logging

    import numpy as np
    import torch

    sys.path.insert(0, os.path.abspath(path))
    from torchays import nn as ays_nn
    from torchays.cpa import CPA
    from torchays.models import TestTNetLinear

    layers, _ = build(name)
    hidden = [w.shape[0] for w, _ in layers[:-1]]
    d = layers[0][0].shape[1]
    # as torchays's main.py: its init_fun (seeds 5), then its net factory
    torch.manual_seed(5)
    torch.cuda.manual_seed_all(5)
    np.random.seed(5)
    net = TestTNetLinear(in_features=d, layers=hidden, name="Linear", n_classes=2,
                         norm_layer=ays_nn.BatchNormNone)
    linear = [net._modules[str(i)] for i in range(len(layers))]
    same = all(torch.equal(m.weight, w) and torch.equal(m.bias, b)
               for m, (w, b) in zip(linear, layers, strict=True))
    if not same:  # the degenerate nets: hand torchays their parameters
        with torch.no_grad():
            for m, (w, b) in zip(linear, layers, strict=True):
                m.weight.copy_(w)
                m.bias.copy_(b)
    net.eval()
    quiet = logging.getLogger("torchays-compare")
    quiet.setLevel(logging.WARNING)
    quiet.propagate = False
    # logging=True is needed: its timing decorator fails with logging=False
    cpa = CPA(workers=1, device=torch.device("cpu"), logger=quiet)
    t0 = time.perf_counter()
    count = cpa.start(net, bounds=(-1, 1), input_size=(d,), depth=-1, logger=quiet)
    return {"regions": int(count), "seconds": time.perf_counter() - t0, "same": same,
            "n_relu": net.n_relu}


def _run_relucent(name: str) -> dict:
    import relucent

    _, net = build(name)
    cx = relucent.Complex(net)
    t0 = time.perf_counter()
    cx.bfs(nworkers=1, verbose=0, cube_radius=1.0, cube_mode="intersect")
    return {"regions": len(cx), "seconds": time.perf_counter() - t0}


def child(tool: str, name: str, torchays: str | None) -> None:
    try:
        if tool == "exactrelu":
            res = _run_exactrelu(name)
        elif tool == "reference":
            res = _run_reference(name)
        elif tool == "torchays":
            res = _run_torchays(name, torchays or "")
        else:
            res = _run_relucent(name)
    except Exception as exc:  # reported in the table, not a traceback
        res = {"error": f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"}
    sys.stdout.write("RESULT " + json.dumps(res) + "\n")


def measure(tool: str, name: str, torchays: str | None, timeout: float) -> dict:
    cmd = [sys.executable, os.path.abspath(__file__), "--child", tool, name]
    if torchays:
        cmd += ["--torchays", torchays]
    return child_result(cmd, timeout, [ROOT])


def child_result(cmd: list[str], timeout: float, path: list[str]) -> dict:
    """The ``RESULT`` dict a child run of ``cmd`` prints (``path`` put first on its
    ``PYTHONPATH``), or ``{"timeout": ..}`` or ``{"error": ..}``."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(
        p for p in (*path, os.environ.get("PYTHONPATH", "")) if p))
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                             cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("RESULT ")]
    if not lines:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"exit {out.returncode}: {tail}"}
    return json.loads(lines[-1][len("RESULT "):])


def _cell(res: dict | None) -> tuple[str, str]:
    if res is None or "skip" in res:
        return "-", "-"
    if "timeout" in res:
        return "stopped", f"> {res['timeout']:.0f}"
    if "error" in res:
        return "error", res["error"][:60]
    return f"{res['regions']:,}", f"{res['seconds']:.2f}"


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--torchays", metavar="PATH", help="a checkout of analysis-relu-network")
    ap.add_argument("--no-relucent", action="store_true", help="leave relucent out")
    ap.add_argument("--timeout", type=float, default=300.0, help="seconds per tool and net")
    ap.add_argument("--only", nargs="*", default=None, help="net names, e.g. 2-16-16 dup-2-8-8")
    ap.add_argument("--child", nargs=2, metavar=("TOOL", "NET"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        child(args.child[0], args.child[1], args.torchays)
        return
    tools = ["reference", "exactrelu"]
    if args.torchays:
        tools.append("torchays")
    if not args.no_relucent:
        probe = subprocess.run([sys.executable, "-c", "import relucent"], capture_output=True)
        if probe.returncode == 0:
            tools.append("relucent")
        else:
            print("relucent does not import here: left out (pip install relucent)\n")
    names = [n for n in _names() if not args.only or n in args.only]
    print(f"timeout {args.timeout:.0f} s per tool and net; regions / seconds\n")
    head = " | ".join(f"{t} regions | {t} s" for t in tools)
    print(f"| net | {head} | torchays's parameters |")
    print("|---|" + "---:|---:|" * len(tools) + "---|")
    for name in names:
        cells = []
        same = "-"
        for tool in tools:
            res = measure(tool, name, args.torchays, args.timeout)
            cells += list(_cell(res))
            if tool == "torchays" and "same" in res:
                same = ("same as nets.mlp" if res["same"] else "given exactrelu's") + \
                       f", n_relu={res['n_relu']}"
        print(f"| {name} | " + " | ".join(cells) + f" | {same} |", flush=True)


if __name__ == "__main__":
    main()
