"""Time decision boundaries, their independent check, level sets and topology on generated nets.

Run: ``python benchmarks/boundary_bench.py [--only 2-32-32:10 3-16-16:4 ...]`` (from the
repository root, with the package installed). A name ``w0-w1-...:k`` is ``benchmarks/nets.py``'s
``mlp`` with ``k`` outputs on ``[-1, 1]^w0``, certified once (not timed); then
``exactrelu.decision_boundary``, ``exactrelu.check_boundary`` (after ``exactrelu.check``, not
timed), ``exactrelu.level_set`` of output 0 at its value at the domain's centre and
``exactrelu.decision_region_topology`` of the class at the centre are timed, one process, one run
each.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import exactrelu

from nets import mlp

DEFAULT = ["2-16-16-16:3", "2-32-32:10", "2-64-64-64:3", "3-8-8:3", "3-16-16:4", "4-8-8:3"]


def _timed(f, *args, **kwargs):
    t = time.perf_counter()
    out = f(*args, **kwargs)
    return out, time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="names such as 2-32-32:10")
    args = parser.parse_args()
    print("| net | outputs | regions | boundary cells | boundary s | check_boundary s "
          "| level cells | level_set s | class: pieces, Betti | topology s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in args.only or DEFAULT:
        arch, k = name.split(":")
        widths = tuple(int(w) for w in arch.split("-"))
        net = mlp(widths, out=int(k))
        cert = exactrelu.check(exactrelu.verify(net, [(-1, 1)] * widths[0], progress=False), net)
        centre = exactrelu.exact_forward(net, [0] * widths[0], (widths[0],))
        cls = centre.index(max(centre))
        b, t_b = _timed(exactrelu.decision_boundary, cert)
        _, t_c = _timed(exactrelu.check_boundary, b, cert, net, certificate_checked=True)
        lev, t_l = _timed(exactrelu.level_set, cert, centre[0])
        top, t_t = _timed(exactrelu.decision_region_topology, cert, cls)
        print(f"| {arch} | {k} | {cert.num_regions} | {len(b)} | {t_b:.2f} | {t_c:.2f} | "
              f"{len(lev)} | {t_l:.2f} | {cls}: {top.num_pieces}, {top.betti} | {t_t:.2f} |")


if __name__ == "__main__":
    main()
