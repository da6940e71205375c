# The compiled exact layer (exactrelu/_core.cpp); its spec and result are described in
# exactrelu/_fastpath.py.
from collections.abc import Callable, Sequence
from typing import Any

def certify2d(spec: Any, classes: Sequence[type], threads: int, proposals: Any,
              report: Callable[[int, int], None] | None = ..., max_leaves: int = ...) -> Any: ...
def settle() -> None: ...
