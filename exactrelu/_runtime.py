"""Process-wide settings the exact engines hold for the duration of their work."""

from __future__ import annotations

import contextlib
import gc
from typing import Any


@contextlib.contextmanager
def paused_gc() -> Any:
    """Python's cyclic garbage collector off for the duration (restored as it was).

    The exact layer allocates millions of small objects (ints, Fractions, tuples) that live until
    the certificate is built and form no reference cycles; each automatic full collection walks
    all of them, which cost 20-30% of certification on the 2-D reference nets. Memory is still
    freed by reference counting.

    On the way out, everything the collector tracks is moved to its oldest generation
    (``gc.freeze()`` then ``gc.unfreeze()``, no traversal) before it is switched back on: else
    the first allocation after would trigger a collection of the youngest generation, which by
    then holds every object made while it was off (up to a few percent of a certification, spent
    walking objects that are not garbage). Cyclic garbage among them is collected by the next
    full collection instead of an earlier young one."""
    was = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
