"""Run the verification suite: ``python -m verify [--case NAME] [--fast] [--milp] [--no-cert]``.

One row per case: expected numbers (from the construction's formula, verify/cases.py), the
certifier's (``exactrelu.verify``; "n/a" while it does not exist), the independent exact reference
counter's (verify/_reference.py), the checker's verdict (``exactrelu.check``; "n/a" while missing),
the MILP float baseline's region count (with --milp, small cases only), and the seconds taken.
Numbers are shown as R/P/V/E/A = regions / pieces / vertices / edges / adjacent pairs ("-" where a
source does not give one).  Exit status 1 on any mismatch between an expected number and a computed
one (or a certifier/checker failure), 0 otherwise.

``--no-cert`` leaves the certifier out (the reference counter alone). Cases with a golden
certificate in verify/golden/ get it re-checked by the independent checker ("golden" column).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from . import cases as _cases
from ._reference import reference_count

KEYS = ("regions", "pieces", "vertices", "edges", "adjacency")


def _fmt(nums: dict | None) -> str:
    if nums is None:
        return "n/a"
    return "/".join(str(nums[k]) if nums.get(k) is not None else "-" for k in KEYS)


GOLDEN = Path(__file__).resolve().parent / "golden"


def _load_certifier():
    """(verify, check) from exactrelu."""
    import exactrelu

    return (lambda net, dom: exactrelu.verify(net, dom, progress=False)), exactrelu.check


def _cert_numbers(cert) -> dict:
    out = {"regions": cert.num_regions, "pieces": cert.num_pieces, "vertices": len(cert.vertices),
           "adjacency": len(cert.adjacency)}
    if cert.dim == 2:
        out["edges"] = len(cert.edges())
    return out


def check_golden(case) -> str:
    """Re-check the committed golden certificate of ``case`` with the independent checker and
    compare its numbers with the expected ones: a change in the certificate format or in the
    checker cannot pass unnoticed. Returns "" when there is no golden file, else "ok" or a
    reason."""
    import exactrelu

    path = GOLDEN / f"{case.name}.json"
    if not path.exists():
        return ""
    cert = exactrelu.Certificate.load(path)
    exactrelu.check(cert, case.build())
    got = _cert_numbers(cert)
    bad = _mismatches(case.expected(), got, "golden")
    return "; ".join(bad) if bad else "ok"


def _mismatches(expected: dict, got: dict | None, label: str) -> list[str]:
    if got is None:
        return []
    return [f"{label} {k}: expected {v}, got {got[k]}" for k, v in expected.items()
            if got.get(k) is not None and got[k] != v]


def run_case(case, verify_fn, check_fn, use_milp: bool) -> tuple[dict, list[str]]:
    t0 = time.perf_counter()
    problems: list[str] = []
    exp = case.expected()
    net = case.build()
    row = {"name": case.name, "source": case.source, "expected": _fmt(exp)}

    cert = None
    if verify_fn is None:
        row["certified"] = "n/a"
    else:
        try:
            cert = verify_fn(net, case.domain)
            got = _cert_numbers(cert)
            row["certified"] = _fmt(got)
            problems += _mismatches(exp, got, "certified")
        except Exception as e:  # a failure of the code under test is a finding, not a crash
            row["certified"] = f"ERROR {type(e).__name__}"
            problems.append(f"certifier raised {type(e).__name__}: {e}")

    ref = reference_count(net, case.domain)
    got = {"regions": ref.num_regions, "pieces": ref.num_pieces, "vertices": ref.num_vertices,
           "edges": ref.num_edges, "adjacency": len(ref.adjacency)}
    row["reference"] = _fmt(got)
    problems += _mismatches(exp, got, "reference")
    if case.dim == 2 and ref.num_vertices - ref.num_edges + ref.num_regions != 1:
        problems.append("reference violates V - E + F = 1")

    if check_fn is None or cert is None:
        row["check"] = "n/a"
    else:
        try:
            verdict = check_fn(cert, net)
            ok = getattr(verdict, "ok", verdict)
            row["check"] = "ok" if (ok is None or bool(ok)) else "FAIL"
            if row["check"] == "FAIL":
                problems.append(f"checker rejected the certificate: {verdict!r}")
        except Exception as e:
            row["check"] = f"FAIL {type(e).__name__}"
            problems.append(f"checker raised {type(e).__name__}: {e}")

    try:
        golden = check_golden(case)
    except Exception as e:  # a rejected golden certificate is a finding
        golden = f"FAIL {type(e).__name__}: {e}"
    row["golden"] = golden or "-"
    if golden and golden != "ok":
        problems.append(f"golden certificate: {golden}")

    if use_milp and case.milp:
        from .milp import milp_count
        m = milp_count(net, case.domain)
        if m.complete:
            row["milp"] = str(m.count)
            problems += _mismatches({"regions": exp["regions"]}, {"regions": m.count}, "milp")
        else:
            row["milp"] = f"{m.count}+ ({m.reason})"
    else:
        row["milp"] = "-" if use_milp else ""
    row["seconds"] = f"{time.perf_counter() - t0:.2f}"
    return row, problems


def main(argv=None) -> int:
    names = [c.name for c in _cases.CASES]
    p = argparse.ArgumentParser(prog="python -m verify", description=__doc__.split("\n\n")[0])
    p.add_argument("--case", action="append", metavar="NAME",
                   help="run only this case (repeatable); see --list")
    p.add_argument("--fast", action="store_true", help="only cases that take well under a second")
    p.add_argument("--milp", action="store_true",
                   help="also run the MILP float baseline on small cases")
    p.add_argument("--no-cert", action="store_true",
                   help="do not call exactrelu.verify even if present")
    p.add_argument("--list", action="store_true", help="list the case names and sources, then exit")
    p.add_argument("--write-golden", action="store_true",
                   help="(re)write verify/golden/NAME.json for the selected cases from "
                        "exactrelu.verify")
    args = p.parse_args(argv)
    if args.case:
        unknown = [n for n in args.case if n not in names]
        if unknown:
            p.error(f"unknown case(s): {', '.join(unknown)} (use --list)")
    selected = [c for c in _cases.CASES
                if (not args.case or c.name in args.case) and (not args.fast or c.fast)]
    if args.list:
        for c in selected:
            print(f"{c.name:28s} {c.source}")
        return 0

    if args.write_golden:
        import exactrelu

        for c in selected:
            cert = exactrelu.verify(c.build(), c.domain, progress=False)
            cert.stats.pop("seconds", None)  # keep golden files free of timings
            cert.save(GOLDEN / f"{c.name}.json")
            print(f"wrote {GOLDEN / (c.name + '.json')}: {cert.summary()}")
        return 0
    verify_fn, check_fn = (None, None) if args.no_cert else _load_certifier()
    cols = [("name", 28), ("source", 40), ("expected", 22), ("certified", 22), ("reference", 22),
            ("check", 6), ("golden", 6), ("milp", 6 if args.milp else 0), ("seconds", 7)]
    cols = [(k, w) for k, w in cols if w]
    print("numbers are regions/pieces/vertices/edges/adjacent-pairs")
    header = " ".join(k.ljust(w) for k, w in cols)
    print(header)
    print("-" * len(header))
    failures = []
    for case in selected:
        row, problems = run_case(case, verify_fn, check_fn, args.milp)
        src = row["source"] if len(row["source"]) <= 40 else row["source"][:37] + "..."
        row["source"] = src
        mark = "  MISMATCH" if problems else ""
        print(" ".join(str(row[k]).ljust(w) for k, w in cols).rstrip() + mark, flush=True)
        failures += [f"{case.name}: {msg}" for msg in problems]
    print()
    print(f"{len(selected)} cases, {len(failures)} mismatches"
          + ("" if verify_fn else
             "; certifier not available (exactrelu.verify missing): certified = n/a"))
    for f in failures:
        print("  " + f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
