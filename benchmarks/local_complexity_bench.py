"""Local complexity: one certificate per neighbourhood ("each") against one certificate of their
bounding box restricted to each of them ("union"), and what ``strategy="auto"`` picks.

Run: ``python benchmarks/local_complexity_bench.py [--widths 2-32-32-32] [--repeat 3]`` (from
the repository root). The net is ``benchmarks/nets.py``'s ``mlp``; ``n`` points are drawn
uniformly in ``[-s/2, s/2]^2`` (spread ``s``) with l_inf balls of the given radius around them.
``bbox regions`` is the union certificate's region count. All three strategies give the same
counts (asserted). Times are the best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import functools
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from exactrelu.analysis import local_complexity

from nets import mlp


def best(f, repeat: int) -> tuple[float, object]:
    out, t_best = None, float("inf")
    for _ in range(repeat):
        t = time.perf_counter()
        out = f()
        t_best = min(t_best, time.perf_counter() - t)
    return t_best, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--widths", default="2-32-32-32")
    args = ap.parse_args()
    widths = tuple(int(w) for w in args.widths.split("-"))
    net = mlp(widths)
    print(f"net {args.widths}")
    print("| spread | n | radius | mean count | bbox regions | each s | union s | auto s | auto |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for spread in (1, 4, 16):
        for n in (8, 64):
            torch.manual_seed(0)
            pts = ((torch.rand(n, widths[0], dtype=torch.float64) - 0.5) * spread).tolist()
            for radius in ("1/16", "1/128"):
                run = functools.partial(local_complexity, net, pts, radius=radius, keep=True)
                t_each, each = best(functools.partial(run, strategy="each"), args.repeat)
                t_union, union = best(functools.partial(run, strategy="union"), args.repeat)
                t_auto, auto = best(functools.partial(run, strategy="auto"), args.repeat)
                assert each.counts == union.counts == auto.counts
                mean = sum(each.counts) / n
                print(f"| {spread} | {n} | {radius} | {mean:.1f} | "
                      f"{union.certificates[0].num_regions} | {t_each:.3f} | {t_union:.3f} | "
                      f"{t_auto:.3f} | {auto.strategy} |")


if __name__ == "__main__":
    main()
