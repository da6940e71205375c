"""Memory measurement shared by the benchmarks: the peak memory of this process (its resident
high-water mark) and its children (their proportional set size, sampled from /proc in a
thread) (Linux).

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


def _status_kb(field: str) -> float:
    """A field of this process's /proc/self/status, in kB (0 when unreadable)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field + ":"):
                    return float(line.split()[1])
    except OSError:
        pass
    return 0.0


def _reset_peak() -> bool:
    """Reset this process's resident high-water mark (VmHWM); False where it cannot be."""
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
    except OSError:
        return False
    return _status_kb("VmHWM") > 0


class TreeMemory:
    """Peak memory (MB) of this process and its children over a ``with`` block: ``peak``
    (process and children), ``peak_main`` (this process alone) and ``start`` (this process when
    the block began).

    This process's own memory is its resident set, its peak the kernel's high-water mark
    (``VmHWM``, reset when the block begins by writing 5 to ``/proc/self/clear_refs``): exact,
    and free. Its PSS is not sampled: reading a process's own ``smaps_rollup`` walks its page
    tables under its memory-map lock, and every 0.1 s that stalls a process of a few GB (35% more
    time on 2-512-512-512). Children (workers) are sampled for their PSS every ``interval``
    seconds in a thread, and the sum with this process's resident set then; where the
    high-water mark cannot be reset, this process's PSS is sampled too."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval = interval
        self.peak = self.peak_main = self.start = 0.0
        self._hwm = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _own(self) -> float:
        return _status_kb("VmRSS") / 1024 if self._hwm else pss_mb(os.getpid())

    def _sample(self) -> None:
        kids = _children(os.getpid())
        if self._hwm and not kids:
            return  # the high-water mark has this process's peak
        main = self._own()
        self.peak_main = max(self.peak_main, main)
        self.peak = max(self.peak, main + sum(pss_mb(k) for k in kids))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._sample()
            self._stop.wait(self.interval)

    def __enter__(self) -> Self:
        self._hwm = _reset_peak()
        self.start = self._own()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self._sample()
        if self._hwm:
            self.peak_main = max(self.peak_main, _status_kb("VmHWM") / 1024)
            self.peak = max(self.peak, self.peak_main)
