"""The ``exactrelu`` command line: verify, check, trace and plot.

::

    exactrelu verify model.pt --bounds -1 1 -1 1 -o model.cert.json --plot regions.png
    exactrelu check model.cert.json --model model.pt
    exactrelu trace model.pt --bounds -1 1 -1 1
    exactrelu plot model.cert.json -o regions.png

MODEL is a ``torch.export`` program (``.pt2``), a TorchScript file, or ``package.module:factory``
with ``--weights`` (safetensors or a ``torch.save`` state_dict); see :mod:`exactrelu._models`:
nothing in a file is unpickled or run.

No traceback is ever printed: every failure is one ``exactrelu: error: ...`` line on stderr (and
indented detail lines), a missing dependency names the command that installs it. Exit status,
one meaning each:

* 0: success;
* 1: the certificate or claim does not hold (``check`` fails, ``verify --claimed`` differs);
* 2: usage or input error (arguments, files, models, domains over their limits, more regions than
  ``--max-regions``, a missing dependency);
* 3: internal error (a bug in exactrelu: please report it with the message);
* 130: interrupted (Ctrl-C).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from collections.abc import Sequence
from fractions import Fraction
from typing import Any, NoReturn

from . import __version__
from .errors import (
    CertificateError,
    CertificationError,
    ExactReluError,
    InvalidInputError,
    VerificationError,
)

__all__ = ["main"]

EXIT_OK, EXIT_FAILED, EXIT_ERROR, EXIT_BUG, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

EXIT_CODES = """exit status:
  0    success
  1    the certificate or claim does not hold (check fails, verify --claimed differs)
  2    usage or input error (arguments, files, models, limits, a missing dependency)
  3    internal error (a bug in exactrelu: please report it)
  130  interrupted (Ctrl-C)"""

JSON_HELP = ("print one JSON object on stdout instead of text: command, ok, failed (the claim or "
             "check that does not hold, or the error), regions, pieces, vertices, "
             "adjacent_pairs, domain, engine, seconds, certificate, (verify) claimed, "
             "exit_status (on an error), version")


class _UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting, and reads '-1/2' as a value."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # bounds such as -1/2 or -.5 are values, not options
        self._negative_number_matcher = re.compile(r"^-(\d|\.\d)")

    def error(self, message: str) -> NoReturn:
        raise _UsageError(f"{message} (see '{self.prog} --help')")


def _out(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def _err(message: str) -> None:
    lines = str(message).strip().splitlines() or ["unknown error"]
    sys.stderr.write("exactrelu: error: " + lines[0] + "\n")
    for rest in lines[1:]:
        sys.stderr.write("  " + rest.strip() + "\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------------- arguments
def _bounds(values: Sequence[str] | None) -> list[tuple[Fraction, Fraction]] | None:
    if values is None:
        return None
    from ._parse import clip
    from .domain import MAX_BOUNDED_DIM, to_fraction

    if len(values) % 2:
        raise InvalidInputError(f"--bounds takes pairs LO HI; got {len(values)} numbers")
    if len(values) > 2 * MAX_BOUNDED_DIM:
        raise InvalidInputError(f"--bounds: {len(values) // 2} pairs; boxes have at most "
                                f"{MAX_BOUNDED_DIM} dimensions (use --plane or --line for a slice)")
    nums = [to_fraction(v, f"--bounds value {k + 1} ({clip(v)})") for k, v in enumerate(values)]
    pairs = list(zip(nums[0::2], nums[1::2], strict=True))
    for i, (lo, hi) in enumerate(pairs):
        if not lo < hi:
            raise InvalidInputError(f"--bounds pair {i + 1}: LO {clip(values[2 * i])} is not below "
                                    f"HI {clip(values[2 * i + 1])}")
    return pairs


def _shape(text: str | None) -> tuple[int, ...] | None:
    if text is None:
        return None
    from ._parse import Malformed, clip
    from .domain import shape_size

    parts = [s.strip() for s in text.replace("x", ",").split(",") if s.strip()]
    if not parts or not all(re.fullmatch(r"[0-9]{1,12}", s) for s in parts):
        raise InvalidInputError(f"--input-shape {clip(text)}: pass positive sizes like 1,12,12")
    try:
        return shape_size([int(s) for s in parts])[0]
    except Malformed as exc:
        raise InvalidInputError(exc.where("--input-shape ")) from None


def _domain(args: argparse.Namespace) -> Any:
    from ._models import load_tensor
    from .domain import Slice

    bounds = _bounds(args.bounds)
    if args.plane is not None:
        x0, x1, x2 = (load_tensor(p, "--plane") for p in args.plane)  # nargs=3
        if bounds is not None and len(bounds) != 2:
            raise InvalidInputError(f"--plane takes --bounds for 2 slice coordinates; "
                                    f"got {len(bounds)} pairs")
        return Slice.plane(x0, x1, x2, bounds=bounds)
    if args.line is not None:
        x0, x1 = (load_tensor(p, "--line") for p in args.line)  # nargs=2
        if bounds is not None and len(bounds) != 1:
            raise InvalidInputError(f"--line takes --bounds for 1 slice coordinate; "
                                    f"got {len(bounds)} pairs")
        return Slice.line(x0, x1, bounds=bounds)
    if bounds is None:
        raise InvalidInputError("pass --bounds LO HI [LO HI ...] (one pair per input), "
                                "or --plane / --line")
    return bounds


def _model(args: argparse.Namespace) -> Any:
    from ._models import load_model

    return load_model(args.model, getattr(args, "weights", None))


def _check_plot_dim(path: str | None, dim: int) -> None:
    if path is not None and dim not in (1, 2, 3):
        raise InvalidInputError(f"plots draw 1-D, 2-D and 3-D domains; this domain has "
                                f"dimension {dim} (use --plane or --line for a 2-D or 1-D "
                                "slice)")


# --------------------------------------------------------------------------------- commands
def _summary(command: str, cert: Any, seconds: float, path: Any, failed: str | None,
             **more: Any) -> dict[str, Any]:
    """The ``--json`` summary: one object, the counts those of ``cert`` (proved when ``ok``)."""
    return {"command": command, "ok": failed is None, "failed": failed,
            "regions": None if cert is None else cert.num_regions,
            "pieces": None if cert is None else cert.num_pieces,
            "vertices": None if cert is None else cert.num_vertices,
            "adjacent_pairs": None if cert is None else len(cert.adjacency),
            "domain": None if cert is None else cert.domain.to_json(),
            "engine": None if cert is None else cert.stats.get("engine"),
            "seconds": round(seconds, 3), "certificate": None if path is None else str(path),
            **more, "version": __version__}


def _emit(summary: dict[str, Any]) -> None:
    import json

    _out(json.dumps(summary, separators=(", ", ": ")))


def _cmd_verify(args: argparse.Namespace) -> int:
    from .domain import as_domain
    from .verify import compare_claim, verify

    net = _model(args)
    domain = _domain(args)
    dom = as_domain(domain)
    _check_plot_dim(args.plot, dom.dim)
    t0 = time.perf_counter()
    cert = verify(net, dom, input_shape=_shape(args.input_shape), workers=args.workers,
                  progress=not (args.quiet or args.json), engine=args.engine,
                  max_regions=args.max_regions, cells=args.cells,
                  save=args.output if args.cells is not None else None)
    seconds = time.perf_counter() - t0
    if args.output and args.cells is None:
        cert.save(args.output)
    if args.plot:
        _plot(cert, net, args.plot, "region")
    failed = None
    if args.claimed is not None:
        try:
            compare_claim(cert, args.claimed)
        except VerificationError as exc:
            failed = str(exc)
    if args.json:
        _emit(_summary("verify", cert, seconds, args.output, failed, claimed=args.claimed))
        return EXIT_OK if failed is None else EXIT_FAILED
    _out(f"certified: {cert.num_regions} regions, {cert.num_pieces} pieces, "
         f"{cert.num_vertices} vertices on {cert.domain!r} in {seconds:.2f} s")
    if args.output and not args.quiet:
        _out(f"certificate: {args.output}")
    if args.plot and not args.quiet:
        _out(f"picture: {args.plot}")
    if failed is not None:
        raise VerificationError(failed)
    return EXIT_OK


def _cmd_check(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .certificate import Certificate
    from .check import check

    if not Path(args.cert).exists():
        raise InvalidInputError(f"no certificate at {args.cert}")
    net = _model(args)
    # --bounds / --plane / --line: the certificate must be about exactly that domain
    given = (args.bounds, args.plane, args.line) != (None, None, None)
    want = _domain(args) if given else None
    t0 = time.perf_counter()
    cert = None
    try:
        cert = Certificate.load(args.cert)
        cert = check(cert, net, domain=want, progress=not (args.quiet or args.json))
    except CertificateError as exc:
        lines = str(exc).strip().splitlines() or ["certificate does not hold"]
        if args.json:
            _emit(_summary("check", cert, time.perf_counter() - t0, args.cert, lines[0]))
        else:
            _out(f"FAILED: {args.cert}: {lines[0]}")
        return EXIT_FAILED
    seconds = time.perf_counter() - t0
    if args.json:
        _emit(_summary("check", cert, seconds, args.cert, None))
        return EXIT_OK
    _out(f"OK: {cert.num_regions} regions, {cert.num_pieces} pieces, {cert.num_vertices} vertices "
         f"on {cert.domain!r} re-verified in {seconds:.2f} s")
    return EXIT_OK


def _cmd_trace(args: argparse.Namespace) -> int:
    try:
        from .trace import trace
    except ImportError as exc:
        raise InvalidInputError(f"the float tracer (exactrelu.trace) is not available in this "
                                f"installation ({exc})") from None
    from .verify import _program_and_domain

    net = _model(args)
    prog, dom = _program_and_domain(net, _domain(args), _shape(args.input_shape))
    t0 = time.perf_counter()
    tr = trace(prog, dom, progress=not args.quiet)
    seconds = time.perf_counter() - t0
    _out(f"float trace (not certified): {tr.num_regions} regions on {dom!r} in {seconds:.2f} s")
    return EXIT_OK


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .certificate import Certificate

    if not Path(args.cert).exists():
        raise InvalidInputError(f"no certificate at {args.cert}")
    cert = Certificate.load(args.cert)
    _check_plot_dim(args.output, cert.dim)
    net = _model(args) if args.model else None
    _plot(cert, net, args.output, args.color_by)
    _out(f"picture: {args.output} ({cert.num_regions} regions)")
    return EXIT_OK


def _plot(cert: Any, net: Any, path: str, color_by: str) -> None:
    from . import plot  # without matplotlib: a MissingDependencyError naming the extra
    if cert.dim == 1:
        fig = plot.plot_function_1d(cert, net=net, path=path)
    elif cert.dim == 3:
        if color_by != "region":
            raise InvalidInputError(f"--color-by {color_by}: 3-D pictures colour by region")
        fig = plot.plot_regions_3d(cert, path=path)
    else:
        fig = plot.plot_regions(cert, color_by=color_by, net=net, path=path)
    del fig


# --------------------------------------------------------------------------------- parser
def _parser() -> _Parser:
    p = _Parser(prog="exactrelu", description="Certified linear regions of ReLU networks.",
                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", parser_class=_Parser,
                           metavar="{verify,check,trace,plot}")

    def model_args(sp: argparse.ArgumentParser, required: bool = True) -> None:
        if required:
            sp.add_argument("model", metavar="MODEL",
                            help="torch.export file (.pt2), TorchScript file, or "
                                 "package.module:factory with --weights")
        sp.add_argument("--weights", metavar="WEIGHTS",
                        help="weights of a factory model: safetensors, or a state_dict saved "
                             "with torch.save")

    def domain_args(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--bounds", nargs="+", metavar="LO HI",
                        help="one LO HI pair per input (or slice) coordinate")
        g = sp.add_mutually_exclusive_group()
        g.add_argument("--plane", nargs=3, metavar=("X0", "X1", "X2"),
                       help="tensor files: the plane through 3 inputs")
        g.add_argument("--line", nargs=2, metavar=("X0", "X1"),
                       help="tensor files: the line through 2 inputs")
        sp.add_argument("--input-shape", metavar="SHAPE",
                        help="the model's input shape without batch, e.g. 1,12,12")
        sp.add_argument("--quiet", action="store_true",
                        help="no progress bars, only the summary line")

    v = sub.add_parser("verify", help="certify the linear regions of MODEL on a domain",
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    model_args(v)
    domain_args(v)
    v.add_argument("-o", "--output", metavar="CERT",
                   help="write the certificate (JSON; gzip-compressed when CERT ends in .gz; a "
                        "directory of Parquet shards when it ends in .parquet)")
    v.add_argument("--plot", metavar="PNG", help="draw the regions (1-D, 2-D or 3-D domains)")
    v.add_argument("--workers", type=int, metavar="N",
                   help="threads (compiled engine) or processes (Python engine) for the exact work "
                        "(default: EXACTRELU_WORKERS when set, else all cores)")
    v.add_argument("--engine", choices=("auto", "compiled", "python"), default="auto",
                   help="the exact layer: compiled (2-D to 6-D, chains of affine layers and "
                        "ReLU-like ops), python (everything) or auto (compiled where it applies; "
                        "the default)")
    v.add_argument("--max-regions", type=int, metavar="N",
                   help="stop with an error once more than N regions are known to exist")
    v.add_argument("--claimed", type=int, metavar="N",
                   help="the region count to prove: exit status 1 if the certified count differs")
    v.add_argument("--cells", type=int, metavar="N",
                   help="certify the domain as about N cells of the first layer, one after "
                        "another; with -o CERT.parquet each is written to the shards as it is "
                        "done, so memory holds one cell's certification, not the whole net's")
    v.add_argument("--json", action="store_true", help=JSON_HELP)
    v.set_defaults(func=_cmd_verify)

    c = sub.add_parser("check", help="re-verify a certificate against MODEL",
                       epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    c.add_argument("cert", metavar="CERT")
    c.add_argument("--model", required=True, metavar="MODEL")
    model_args(c, required=False)
    c.add_argument("--bounds", nargs="+", metavar="LO HI",
                   help="also require the certificate to be about this box (one LO HI pair per "
                        "input)")
    g = c.add_mutually_exclusive_group()
    g.add_argument("--plane", nargs=3, metavar=("X0", "X1", "X2"),
                   help="also require the plane through these 3 inputs (tensor files)")
    g.add_argument("--line", nargs=2, metavar=("X0", "X1"),
                   help="also require the line through these 2 inputs (tensor files)")
    c.add_argument("--quiet", action="store_true", help="no progress bar, only the summary line")
    c.add_argument("--json", action="store_true", help=JSON_HELP)
    c.set_defaults(func=_cmd_check)

    t = sub.add_parser("trace", help="float-only region trace (fast, not certified)")
    model_args(t)
    domain_args(t)
    t.set_defaults(func=_cmd_trace)

    pl = sub.add_parser("plot", help="draw a certificate's regions (1-D, 2-D or 3-D)")
    pl.add_argument("cert", metavar="CERT")
    pl.add_argument("--model", metavar="MODEL", help="adds first-layer elbows to 1-D plots")
    model_args(pl, required=False)
    pl.add_argument("-o", "--output", required=True, metavar="PNG")
    pl.add_argument("--color-by", choices=("region", "class", "output"), default="region")
    pl.set_defaults(func=_cmd_plot)
    return p


def _run(argv: Sequence[str] | None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        parser = _parser()
        args = parser.parse_args(argv)
        if args.command is None:
            raise _UsageError("choose a command: verify, check, trace or plot "
                              "(see 'exactrelu --help')")
        return int(args.func(args))
    except Exception as exc:
        if _interrupted(exc):
            raise KeyboardInterrupt from exc
        status, message = _failure(exc)
    _err(message)
    if "--json" in argv and argv[:1] in (["verify"], ["check"]):  # stdout still has its object
        _emit({"command": argv[0], "ok": False, "failed": message.strip().splitlines()[0],
               "exit_status": status, "version": __version__})
    return status


def _interrupted(exc: BaseException) -> bool:
    """Did Ctrl-C cause ``exc``? A library's C++ code can turn the KeyboardInterrupt raised in
    a callback into an error of its own, with the interrupt as its cause or context."""
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:
        if isinstance(e, KeyboardInterrupt):
            return True
        seen.add(id(e))
        e = e.__cause__ or e.__context__
    return False


def _failure(exc: Exception) -> tuple[int, str]:
    """The exit status and error message of a failed command."""
    if isinstance(exc, _UsageError):
        return EXIT_ERROR, str(exc)
    if isinstance(exc, VerificationError):  # the claim does not hold
        return EXIT_FAILED, str(exc)
    if isinstance(exc, MemoryError):
        return EXIT_ERROR, "out of memory; shrink the domain, or bound the work with --max-regions"
    if isinstance(exc, CertificationError):  # its message says what to do
        return EXIT_BUG, f"internal error: {exc}"
    if isinstance(exc, ExactReluError):  # a MissingDependencyError names what to install
        return EXIT_ERROR, str(exc) or type(exc).__name__
    if isinstance(exc, ImportError):  # a required package (torch, numpy, tqdm) is broken or missing
        return EXIT_ERROR, (f"{exc}; reinstall exactrelu and its dependencies "
                            "(pip install exactrelu)")
    if isinstance(exc, (OSError, ValueError, RuntimeError)):
        return EXIT_ERROR, str(exc) or type(exc).__name__
    # a bug: one line all the same, never a traceback
    return EXIT_BUG, (f"internal error: {type(exc).__name__}: {exc}\n"
                      "(a bug in exactrelu: please report it)")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status (see the module docstring).

    >>> main(["verify", "no-such-model.pt", "--bounds", "0", "1"])
    2
    """
    try:
        return _run(argv)
    except KeyboardInterrupt:
        sys.stderr.write("exactrelu: interrupted\n")
        sys.stderr.flush()
        return EXIT_INTERRUPTED
    except Exception as exc:  # raised while reporting an error
        sys.stderr.write(f"exactrelu: error: internal error ({type(exc).__name__} while "
                         "reporting an error; a bug in exactrelu: please report it)\n")
        return EXIT_BUG


def console() -> None:
    """The ``exactrelu`` command (and ``python -m exactrelu.cli``): :func:`main`, then exit.
    Interrupted, it exits at once, without the interpreter's teardown (torch's alone took 0.7 to
    1.5 s on a busy machine); verify's worker processes are already stopped by then."""
    code = main()
    if code == EXIT_INTERRUPTED:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    sys.exit(code)


if __name__ == "__main__":
    console()
