"""Time the independent checker on saved certificates of boxes in 4 to 6 dimensions (or of all
of R^2 and R^3: ``--domain reals``).

Run: ``python benchmarks/check_bench.py [--only 4-10-10 5-8-8 ...] [--closure] [--generic]
[--domain box|reals]`` (from the repository root, with the package installed). Each net is
``benchmarks/nets.py``'s ``mlp`` on ``[-1, 1]^d`` (``--domain reals``: on all of R^d,
``verify(net, None)``, whose regions are unbounded polyhedra with rays; the closure proves
completeness there, ``--closure`` adds nothing); it is certified once, saved with
``cert.save`` to a temporary file and loaded again with ``Certificate.load``, and
``exactrelu.check`` is timed on the loaded certificate (one process) with its default
completeness proof: exact volumes on bounded domains up to ``check._VOLUME_MAX_DIM``
dimensions, closure under facet crossing above and on unbounded domains (with every region's
vertex and ray lists proven by walking its edges). Either way the checker also proves the
facets, the adjacent pairs and the pieces. ``--closure`` also times the closure proof on the
same certificate (by lowering that bound to 0), which takes minutes on the larger nets.
``--generic`` also times the default proof with the exact maps composed through the rules' node
loop (``EXACTRELU_CHECK_GENERIC=1``) rather than as a chain's integer products; 2-D and 3-D nets
such as ``2-64-64-64`` can be given too.

Times are CPU seconds of this process. ``check`` is timed twice: on the certificate ``verify``
returned (columnar: where the checker's compiled pass applies, chains on bounded domains up to
``check._VOLUME_MAX_DIM`` dimensions and on unbounded ones of 2 or 3, it reads the columns) and on
the loaded one (columnar too: ``Certificate.load`` reads JSON into columns); each with its ratio to
``verify``'s time (issue 17's goal: at most 3). ``--python`` also times the Python pass alone
(``EXACTRELU_CHECK_PYTHON=1``) on the certificate in memory, for comparison.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import exactrelu

from nets import mlp

CHECK = sys.modules["exactrelu.check"]
DEFAULT = ["4-10-10", "5-8-8", "6-8-8", "4-16-16-16"]


def timed_check(cert: exactrelu.Certificate, net: object, max_dim: int | None = None,
                generic: bool = False, python: bool = False) -> float:
    saved = CHECK._VOLUME_MAX_DIM, CHECK._GENERIC_MAPS, CHECK._COMPILED
    if max_dim is not None:
        CHECK._VOLUME_MAX_DIM = max_dim
    CHECK._GENERIC_MAPS = generic
    CHECK._COMPILED = not python
    try:
        t = time.process_time()
        exactrelu.check(cert, net, progress=False)
        return time.process_time() - t
    finally:
        CHECK._VOLUME_MAX_DIM, CHECK._GENERIC_MAPS, CHECK._COMPILED = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--only", nargs="*", default=None, help="names such as 4-10-10")
    parser.add_argument("--closure", action="store_true", help="also time the closure proof")
    parser.add_argument("--generic", action="store_true",
                        help="also time the default proof with maps through the node loop")
    parser.add_argument("--no-load", action="store_true",
                        help="skip the saved and loaded certificate")
    parser.add_argument("--python", action="store_true",
                        help="also time the Python pass alone (no compiled pass)")
    parser.add_argument("--domain", choices=["box", "reals"], default="box",
                        help="[-1, 1]^d (default) or all of R^d")
    args = parser.parse_args()
    reals = args.domain == "reals"
    load = Path("/proc/loadavg")
    print(f"volume proof up to d = {CHECK._VOLUME_MAX_DIM}; CPU seconds; load average "
          f"{load.read_text().split()[0] if load.exists() else '-'}; domain "
          f"{'R^d' if reals else '[-1, 1]^d'}")
    print("| net | regions | verify s | check s (in memory) | check / verify | check s (loaded) "
          "| check / verify | check s (Python pass) | check / verify | check s (closure) "
          "| check s (node loop) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only or DEFAULT:
            widths = tuple(int(w) for w in name.split("-"))
            net = mlp(widths)
            t = time.process_time()
            cert = exactrelu.verify(net, None if reals else [(-1, 1)] * widths[0],
                                    progress=False)
            t_cert = time.process_time() - t
            proof = ("volumes" if widths[0] <= CHECK._VOLUME_MAX_DIM and not reals
                     else "closure")
            t_mem = timed_check(cert, net)
            loaded = None
            if not args.no_load:
                path = Path(tmp) / f"{name}.json"
                cert.save(path)
                loaded = exactrelu.Certificate.load(path)
            t_check = timed_check(loaded, net) if loaded is not None else None
            ld = f"{t_check:.2f} | {t_check / t_cert:.1f}" if t_check is not None else "- | -"
            t_py = timed_check(cert, net, python=True) if args.python else None
            py = f"{t_py:.2f} | {t_py / t_cert:.1f}" if t_py is not None else "- | -"
            closure = (f"{timed_check(cert, net, 0):.1f}" if args.closure and not reals
                       else "-")
            generic = f"{timed_check(cert, net, generic=True):.1f}" if args.generic else "-"
            print(f"| {name} | {cert.num_regions} | {t_cert:.2f} | {t_mem:.2f} ({proof}) | "
                  f"{t_mem / t_cert:.1f} | {ld} | {py} | {closure} | {generic} |", flush=True)


if __name__ == "__main__":
    main()
