"""exactrelu's pytest plugin: under pytest-xdist, each test worker certifies on its share of the
cores.

pytest loads it through the ``pytest11`` entry point in every session of an environment where
exactrelu is installed, so it imports neither torch nor exactrelu (a module inside the
``exactrelu`` package would import torch with the package): pytest's start-up stays as it was.

In a pytest-xdist worker (``PYTEST_XDIST_WORKER_COUNT`` set), it sets ``EXACTRELU_WORKERS``, the
``workers`` that :func:`exactrelu.verify` takes when a call leaves it None, to the cores this
process may use divided by the number of workers (at least 1), unless ``EXACTRELU_WORKERS`` is
set already. Without xdist it does nothing. Turn it off with ``-p no:exactrelu_pytest``; the
entry point has the module's name, so ``-p exactrelu_pytest`` loads it once, installed or not.
"""

from __future__ import annotations

import os
from typing import Any

#: The environment variable :func:`exactrelu.verify` reads (``exactrelu.verify.WORKERS_ENV``).
WORKERS_ENV = "EXACTRELU_WORKERS"
#: Set by pytest-xdist in each of its workers: how many workers the session runs.
XDIST_COUNT_ENV = "PYTEST_XDIST_WORKER_COUNT"


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the system has one)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def share(cores: int, workers: int) -> int:
    """Each of ``workers`` test processes' share of ``cores``: at least 1.

    >>> share(8, 3), share(2, 4)
    (2, 1)
    """
    return max(1, cores // max(1, workers))


def pytest_configure(config: Any) -> None:
    count = os.environ.get(XDIST_COUNT_ENV, "").strip()
    if not count.isdigit() or os.environ.get(WORKERS_ENV, "").strip():
        return
    os.environ[WORKERS_ENV] = str(share(available_cores(), int(count)))
