"""Time ``exactrelu.trace`` on the issue's reference nets and print a markdown table.

Run: ``python benchmarks/trace_bench.py [--device cuda] [--only 2-16-16 ...] [--repeat 3]``
(from the repository root, with the package installed). Best of ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import os
import sys

import torch

from exactrelu.trace import trace

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import reference_nets


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--only", nargs="*", default=None, help="net names such as 2-16-16")
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args(argv)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}\n")
    print("| net | regions | seconds | regions/s |")
    print("|---|---:|---:|---:|")
    for name, net, bounds in reference_nets():
        if args.only and name not in args.only:
            continue
        best = None
        for _ in range(max(1, args.repeat)):
            tr = trace(net, bounds, device=args.device, progress=False)
            best = tr.seconds if best is None else min(best, tr.seconds)
        print(f"| {name} | {tr.num_regions:,} | {best:.3f} | {tr.num_regions / best:,.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
