"""Exact affine maps over the rationals, stored as python-flint ``fmpq_mat``.

An :class:`ExactMap` holds the affine map ``t -> M t + c`` of every (flattened) entry of a tensor
as one augmented matrix ``[M | c]`` of shape ``(n, k + 1)``. With ``k == 0`` it is just a vector of
exact values, which is how the exact forward pass on rational points is done: the same code path.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import torch

from ._deps import flint

fmpq = flint.fmpq
fmpq_mat = flint.fmpq_mat
fmpz = flint.fmpz
fmpz_mat = flint.fmpz_mat


def to_fmpq(x: Fraction | int | float | fmpq) -> fmpq:
    """The exact rational value of ``x`` (a float is taken exactly, never rounded)."""
    if isinstance(x, fmpq):
        return x
    if isinstance(x, bool):
        raise TypeError("booleans are not numbers here")
    if isinstance(x, int):
        return fmpq(x)
    if isinstance(x, float):
        x = Fraction(x)
    if isinstance(x, Fraction):
        return fmpq(x.numerator, x.denominator)
    raise TypeError(f"cannot take {type(x).__name__} as an exact rational")


def to_fraction(x: fmpq) -> Fraction:
    """``fmpq`` -> ``fractions.Fraction``."""
    return Fraction(int(x.p), int(x.q))


def tensor_to_fmpq_list(t: torch.Tensor) -> list[fmpq]:
    """Exact rationals of the float entries of ``t`` (flattened, row-major)."""
    values = t.detach().to("cpu", torch.float64).reshape(-1).tolist()
    # float.as_integer_ratio is the float's exact value (what to_fmpq takes through Fraction)
    return [fmpq(*v.as_integer_ratio()) for v in values]


@dataclass(frozen=True)
class ExactMap:
    """Exact affine maps ``t -> M t + c`` of the entries of a tensor of shape ``shape``.

    ``mat`` is the augmented ``fmpq_mat`` ``[M | c]`` of shape ``(prod(shape), k + 1)``.
    """

    mat: fmpq_mat
    shape: tuple[int, ...]

    def __reduce__(self) -> tuple:
        # fmpq_mat does not pickle; ship the entries (needed by process pools).
        return (_rebuild_map, (self.mat.nrows(), self.mat.ncols(), self.mat.entries(), self.shape))

    @property
    def k(self) -> int:
        return self.mat.ncols() - 1

    @property
    def n(self) -> int:
        return self.mat.nrows()

    def rows(self) -> list[list[fmpq]]:
        return self.mat.tolist()

    def linear(self) -> list[list[Fraction]]:
        """The matrix ``M`` as Fractions."""
        return [[to_fraction(v) for v in row[:-1]] for row in self.mat.tolist()]

    def offset(self) -> list[Fraction]:
        """The vector ``c`` as Fractions."""
        return [to_fraction(row[-1]) for row in self.mat.tolist()]

    def values(self) -> list[Fraction]:
        """The exact values, for a map with ``k == 0`` (an exact forward pass)."""
        if self.k != 0:
            raise ValueError("values() needs a map without free coordinates (k == 0)")
        return self.offset()

    def at(self, t: Sequence[Fraction | int]) -> list[Fraction]:
        """Exact value ``M t + c`` at the rational point ``t``."""
        if len(t) != self.k:
            raise ValueError(f"point has {len(t)} coordinates, the map takes {self.k}")
        col = fmpq_mat(self.k + 1, 1, [to_fmpq(v) for v in t] + [fmpq(1)])
        out = self.mat * col
        return [to_fraction(v) for v in out.entries()]

    def reshape(self, shape: Sequence[int]) -> ExactMap:
        return ExactMap(self.mat, tuple(shape))


def _rebuild_map(n: int, ncols: int, entries: list, shape: tuple[int, ...]) -> ExactMap:
    return ExactMap(fmpq_mat(n, ncols, entries), shape)


def from_rows(rows: list[list[fmpq]], ncols: int, shape: Sequence[int]) -> ExactMap:
    n = len(rows)
    flat: list[fmpq] = [v for row in rows for v in row]
    return ExactMap(fmpq_mat(n, ncols, flat), tuple(shape))


def identity_map(n: int, shape: Sequence[int]) -> ExactMap:
    """The map ``t -> t`` on ``n`` coordinates (``k == n``)."""
    entries = [fmpq(1) if j == i else fmpq(0) for i in range(n) for j in range(n + 1)]
    return ExactMap(fmpq_mat(n, n + 1, entries), tuple(shape))


def input_map(M: Sequence[Sequence[Fraction]], c: Sequence[Fraction],
              shape: Sequence[int]) -> ExactMap:
    """The exact map ``t -> M t + c`` (``M`` of shape ``(n, k)``)."""
    k = len(M[0]) if len(M) else 0
    entries = [to_fmpq(v) for row, ci in zip(M, c, strict=True) for v in (*row, ci)]
    return ExactMap(fmpq_mat(len(c), k + 1, entries), tuple(shape))


def constant_map(values: Iterable[Fraction | float | int], shape: Sequence[int]) -> ExactMap:
    """Exact values as a map with ``k == 0``."""
    vals = [to_fmpq(v) for v in values]
    return ExactMap(fmpq_mat(len(vals), 1, vals), tuple(shape))


@dataclass(frozen=True)
class ExactAffine:
    """An exact affine layer ``y = A x + a`` on flattened tensors (``A``: fmpq_mat (n_out,
    n_in))."""

    A: fmpq_mat
    a: list[fmpq]

    def __reduce__(self) -> tuple:
        return (_rebuild_affine, (self.A.nrows(), self.A.ncols(), self.A.entries(), self.a))

    def apply(self, m: ExactMap, out_shape: Sequence[int]) -> ExactMap:
        out = self.A * m.mat
        if any(v != 0 for v in self.a):
            ncols = m.mat.ncols()
            rows = out.tolist()
            for row, ai in zip(rows, self.a, strict=True):
                row[-1] += ai
            return from_rows(rows, ncols, out_shape)
        return ExactMap(out, tuple(out_shape))


def gather_rows(m: ExactMap, index: Sequence[int], shape: Sequence[int]) -> ExactMap:
    """Rows ``index`` of ``m`` (a permutation, selection or repetition of entries)."""
    rows = m.mat.tolist()
    return from_rows([rows[i] for i in index], m.mat.ncols(), shape)


def stack_maps(maps: Sequence[ExactMap]) -> list[list[fmpq]]:
    rows: list[list[fmpq]] = []
    for m in maps:
        rows.extend(m.mat.tolist())
    return rows


def _rebuild_affine(n: int, m: int, entries: list, a: list) -> ExactAffine:
    return ExactAffine(fmpq_mat(n, m, entries), a)


class IntMap:
    """An exact affine map as one integer matrix over one positive denominator:
    ``[M | c] = N / den``.

    The certifier's hot path (affine layers and elementwise units) stays in integers, which skips
    the per-entry canonicalisation of ``fmpq_mat`` (about 8x faster products here); other rules
    get an :class:`ExactMap` (:func:`as_exact`). The matrix is held as an ``fmpz_mat`` (for
    products), as rows of Python ints (cheap to sum, to evaluate and to round to float64), or
    both: each is made from the other on first use."""

    __slots__ = ("_N", "_rows", "den", "shape")

    def __init__(self, N: Any, den: int, shape: tuple[int, ...],
                 rows: list[list[int]] | None = None) -> None:
        self._N = N
        self._rows = rows
        self.den = den
        self.shape = shape

    @property
    def N(self) -> Any:
        """The matrix as an ``fmpz_mat``."""
        if self._N is None:
            rows = self._rows
            self._N = fmpz_mat(rows) if rows else fmpz_mat(0, 0)
        return self._N

    @property
    def rows(self) -> list[list[int]]:
        """The matrix as rows of Python ints (shared: never modify them)."""
        if self._rows is None:
            self._rows = [[int(v) for v in r] for r in self._N.tolist()]
        return self._rows

    def __reduce__(self) -> tuple:  # fmpz_mat does not pickle (process pools ship cells)
        return (IntMap, (None, self.den, self.shape, self.rows))


def as_int(m: Any) -> IntMap:
    if isinstance(m, IntMap):
        return m
    N, den = m.mat.numer_denom()
    return IntMap(N, int(den), m.shape)


def as_exact(m: Any) -> ExactMap:
    if isinstance(m, IntMap):
        return ExactMap(fmpq_mat(m.N) / fmpz(m.den), m.shape)
    return m
