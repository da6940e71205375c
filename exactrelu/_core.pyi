# The compiled exact layer (exactrelu/_core.cpp); its spec, proposals (per op: the trace's packed
# states as bytes and whether they are bits) and result (a dict keyed as the fields of
# exactrelu.engines.Complex: index data as int64 bytes, states as (bytes, bits), rationals as
# lists of ints; or an int: more regions than max_leaves) are described in
# exactrelu/engines/compiled.py.
from collections.abc import Callable
from typing import Any

def certify2d(spec: Any, threads: int, proposals: Any,
              report: Callable[[int, int], None] | None = ...,
              max_leaves: int = ...) -> dict[str, Any] | int: ...
def settle() -> None: ...
