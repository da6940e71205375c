# The compiled exact layer (exactrelu/_core.cpp); its spec and result (a dict of lists of ints,
# the fields of exactrelu.engines.Complex, or an int: more regions than max_leaves) are described
# in exactrelu/engines/compiled.py.
from collections.abc import Callable
from typing import Any

def certify2d(spec: Any, threads: int, proposals: Any,
              report: Callable[[int, int], None] | None = ...,
              max_leaves: int = ...) -> dict[str, Any] | int: ...
def settle() -> None: ...
