"""Memory measurement shared by the benchmarks: peak proportional set size (PSS) of this process
and its children, sampled from /proc in a thread (Linux).

PSS is resident memory with pages shared between processes (a forked worker shares its parent's
pages until it writes them) split between them, so that the sum over processes counts each page
once (resident set sizes would count shared pages twice).

>>> with TreeMemory() as mem:
...     _ = bytearray(1 << 20)
>>> mem.peak >= 0.0
True
"""

from __future__ import annotations

import os
import resource
import threading
from typing import Self

__all__ = ["TreeMemory", "peak_rss_mb", "pss_mb"]


def peak_rss_mb() -> float:
    """This process's peak resident set size plus its largest waited-for child's, in MB."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return (own + kids) / 1024.0


def pss_mb(pid: int) -> float:
    """Proportional set size of process ``pid`` in MB (0 when it is gone or unreadable)."""
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as fh:
                out += [int(x) for x in fh.read().split()]
        except OSError:
            pass
    return out


class TreeMemory:
    """Peak summed PSS (:func:`pss_mb`, MB) of this process and its children over a ``with``
    block, sampled every ``interval`` seconds in a thread: ``peak`` (process and children),
    ``peak_main`` (this process alone) and ``start`` (this process when the block began)."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = self.peak_main = self.start = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        me = os.getpid()
        main = pss_mb(me)
        self.peak_main = max(self.peak_main, main)
        self.peak = max(self.peak, main + sum(pss_mb(k) for k in _children(me)))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self.start = pss_mb(os.getpid())
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
