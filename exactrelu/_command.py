"""Is this process the ``exactrelu`` command? Imported first by the package, so that when it is,
Ctrl-C during the slow imports that follow (importlib.metadata, numpy, torch) exits at once with
status 130 instead of a traceback: a KeyboardInterrupt raised inside torch's import can surface in
one of its C++ callbacks, which aborts the process (SIGABRT). The package restores Python's
default handler once its imports are done; from there on exactrelu.cli handles the interrupt."""

from __future__ import annotations

import itertools
import os
import signal
import sys


def launched_as_command() -> bool:
    """Is this process the ``exactrelu`` command (the script or ``python -m exactrelu.cli``)?"""
    argv = list(getattr(sys, "orig_argv", ()))
    return os.path.basename(sys.argv[0]) == "exactrelu" or \
        any(a == "-m" and b == "exactrelu.cli" for a, b in itertools.pairwise(argv))


def exit_interrupted(*_: object) -> None:
    """The command's exit on Ctrl-C while it starts: nothing to clean up yet."""
    sys.stderr.write("exactrelu: interrupted\n")
    sys.stderr.flush()
    os._exit(130)


COMMAND = launched_as_command()
if COMMAND:
    signal.signal(signal.SIGINT, exit_interrupted)
