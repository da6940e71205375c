"""Certificate sizes on disk, plain JSON against gzip (``cert.save("x.cert.json.gz")``) and
Parquet shards (``cert.save("x.parquet")``, the ``parquet`` extra), and the time to save and load
each (a sharded load is lazy: "load" reads the manifest and the piece labels, "read" every
region), on the reference nets; prints a markdown table.

Run: ``python benchmarks/certificate_size.py [--only 2-16-16 ...]`` (from the repository root).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable

from exactrelu import Certificate, verify

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from nets import reference_nets

DEFAULT = ("2-16-16", "2-32-32-32", "3-8-8", "2-64-64-64")


def _seconds(fn: Callable[..., object], *args: object) -> float:
    t0 = time.perf_counter()
    fn(*args)
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--only", nargs="*", default=list(DEFAULT), help="net names")
    args = ap.parse_args(argv)
    print("| net | regions | JSON | .json.gz | ratio | save .gz s | load .gz s | load JSON s "
          "| .parquet | save .parquet s | load .parquet s | read .parquet s |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        plain, packed = os.path.join(tmp, "c.cert.json"), os.path.join(tmp, "c.cert.json.gz")
        shards = os.path.join(tmp, "c.parquet")
        for name, net, bounds in reference_nets():
            if name not in args.only:
                continue
            cert = verify(net, bounds, progress=False)
            cert.save(plain)
            save = _seconds(cert.save, packed)
            load_gz = _seconds(Certificate.load, packed)
            load = _seconds(Certificate.load, plain)
            save_pq = _seconds(cert.save, shards)
            t0 = time.perf_counter()
            lazy = Certificate.load(shards)
            load_pq = time.perf_counter() - t0
            read_pq = _seconds(list, lazy.regions)
            a, b = os.path.getsize(plain), os.path.getsize(packed)
            c = sum(os.path.getsize(os.path.join(r, f)) for r, _, fs in os.walk(shards)
                    for f in fs)
            print(f"| {name} | {cert.num_regions:,} | {a / 1e6:.2f} MB | {b / 1e6:.2f} MB | "
                  f"{a / b:.1f}x | {save:.2f} | {load_gz:.2f} | {load:.2f} | {c / 1e6:.2f} MB | "
                  f"{save_pq:.2f} | {load_pq:.2f} | {read_pq:.2f} |", flush=True)


if __name__ == "__main__":
    main()
