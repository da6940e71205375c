# The checker's compiled pass (exactrelu/_checkcore.cpp); check._check_compiled builds its input
# (the chain's integer matrices, the certificate's columns: rationals as lists of ints, index data
# as int64 arrays, state tables as (array, bits)) and reads its results.
from collections.abc import Callable
from typing import Any

class Checker:
    def __init__(self, d: int, offsets: list[int], dom_rows: list[int], dom_dens: list[int],
                 root_rows: list[int], root_den: int, ops: list[Any], n_out: int,
                 vnum: list[int], vden: list[int]) -> None: ...
    def regions(self, base: int, lo: int, hi: int, cols: tuple[Any, ...]) -> str | None: ...
    def finish(self, n_reg: int, adj_i: Any, adj_j: Any, adj_plane: Any, ids_start: Any,
               ids_flat: Any, planes_num: list[int], planes_den: list[int],
               decide: Callable[[int, int, list[list[int]], list[int]], bool] | None = None,
               ) -> str | tuple[bytes, int, int, list[tuple[int, int]]]: ...
