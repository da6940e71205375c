"""Float LPs that propose, exact arithmetic that decides: facets and interior points of a
full-dimensional ``{t : A t <= b}`` in high dimensions.

cddlib's exact LP takes about a second per LP in 64 dimensions (measured on a 64-32-32 net's
region: 64 rows), so a region's facets by one exact LP per row took minutes. Here HiGHS (through
``scipy.optimize.linprog``, when scipy is installed) solves each LP in float and every answer
is proved exactly, or the exact LP decides:

- a row is a facet when a rational point satisfies every other row and violates it (a point
  between a strictly interior point and the float optimum, checked exactly);
- a row is redundant when nonnegative multipliers ``l`` of the other rows give ``a = l A_S`` and
  ``l . b_S <= b`` (Farkas; the float duals choose the rows ``S``, the multipliers are solved
  for exactly and checked);
- an interior point is the float centre of the largest inscribed cube, checked strictly inside.
"""

from __future__ import annotations

from collections.abc import Sequence
from fractions import Fraction
from typing import Any

import numpy as np

from .._deps import flint
from .._geometry import nearest_floats

Point = tuple[Fraction, ...]


def _linprog() -> Any:
    try:
        from scipy.optimize import linprog
    except ImportError:
        return None
    return linprog


def available() -> bool:
    """Is a float LP solver (scipy's HiGHS) installed?"""
    return _linprog() is not None


def _q(x: Fraction) -> Any:
    return flint.fmpq(x.numerator, x.denominator)


def _f(x: Any) -> Fraction:
    return Fraction(int(x.p), int(x.q))


class FloatLP:
    """The rows ``A t <= b`` (exact) with their nearest floats and an exact matrix for checks."""

    def __init__(self, A: Sequence[Sequence[Fraction]], b: Sequence[Fraction]) -> None:
        self.A = [list(r) for r in A]
        self.b = list(b)
        self.m, self.d = len(self.A), len(self.A[0])
        self.Af = nearest_floats(self.A).reshape(self.m, self.d)
        self.bf = nearest_floats(self.b).reshape(self.m)
        self.M = flint.fmpq_mat(self.m, self.d, [_q(v) for r in self.A for v in r])
        self.bq = [_q(v) for v in self.b]
        self.linprog = _linprog()

    def slacks(self, y: Point) -> list[Any]:
        """Exact ``b - A y``."""
        col = flint.fmpq_mat(self.d, 1, [_q(v) for v in y])
        return [bi - v for bi, v in zip(self.bq, (self.M * col).entries(), strict=True)]

    def interior(self, norms: Sequence[Fraction]) -> Point | None:
        """A rational point strictly inside, from the float centre of the largest inscribed
        ball for ``norms`` (None when the float LP fails or its centre is not strictly inside)."""
        if self.linprog is None:
            return None
        nf = nearest_floats(list(norms)).reshape(self.m, 1)
        cost = np.zeros(self.d + 1)
        cost[-1] = -1.0
        res = self.linprog(cost, A_ub=np.hstack([self.Af, nf]), b_ub=self.bf,
                           bounds=[(None, None)] * self.d + [(None, 1.0)], method="highs")
        if res.status != 0:
            return None
        y = tuple(Fraction(float(v)) for v in res.x[:self.d])
        return y if all(s > 0 for s in self.slacks(y)) else None

    def decide(self, group: Sequence[int], inside: Point) -> bool | None:
        """Is the halfspace of the rows ``group`` (all the same) a facet? True or False when
        proved exactly from the float LP's answer, None when it is for the exact LP to decide.
        ``inside``: a point strictly inside every row."""
        if self.linprog is None:
            return None
        g = group[0]
        keep = np.ones(self.m, dtype=bool)
        keep[list(group)] = False
        others = np.nonzero(keep)[0]
        if not len(others):
            return True
        res = self.linprog(-self.Af[g], A_ub=self.Af[others], b_ub=self.bf[others],
                           bounds=[(None, None)] * self.d, method="highs")
        if res.status == 3:  # unbounded: find a point beyond the row inside a large box
            span = 1e3 * (1.0 + float(np.max(np.abs(nearest_floats(list(inside))))))
            lo = [float(v) - span for v in inside]
            hi = [float(v) + span for v in inside]
            res = self.linprog(-self.Af[g], A_ub=self.Af[others], b_ub=self.bf[others],
                               bounds=list(zip(lo, hi, strict=True)), method="highs")
            return self._beyond(group, res.x, inside) if res.status == 0 else None
        if res.status != 0:
            return None
        if -res.fun > self.bf[g] + 1e-9 * (1.0 + abs(self.bf[g])):
            return self._beyond(group, res.x, inside)
        lam = -np.asarray(res.ineqlin.marginals, dtype=np.float64)
        return False if self._redundant(g, others, lam) else None

    def _beyond(self, group: Sequence[int], x: np.ndarray, inside: Point) -> bool | None:
        """True when a point on the segment from ``inside`` to ``x`` violates the rows ``group``
        and satisfies every other row (exactly); None when none of the few tried does."""
        target = [Fraction(float(v)) for v in x]
        members = set(group)
        for theta in (Fraction(1), Fraction(2**20 - 1, 2**20), Fraction(1, 2)):
            y = tuple(c + theta * (t - c) for c, t in zip(inside, target, strict=True))
            s = self.slacks(y)
            if s[group[0]] < 0 and all(v >= 0 for k, v in enumerate(s) if k not in members):
                return True
        return None

    def _redundant(self, g: int, others: np.ndarray, lam: np.ndarray) -> bool:
        """Farkas: rows ``S`` (the float duals' support) with exact multipliers ``l >= 0``,
        ``l A_S = a_g`` and ``l . b_S <= b_g``."""
        if not np.all(np.isfinite(lam)):
            return False
        top = float(np.max(np.abs(lam))) if len(lam) else 0.0
        S = [int(others[k]) for k in np.nonzero(lam > 1e-9 * max(top, 1e-300))[0]]
        if not S or len(S) > self.d:
            return False
        # solve sum_k l_k A[S_k] = a_g exactly: the d x |S| system [A_S^T | a_g] in rref
        aug = flint.fmpq_mat(self.d, len(S) + 1,
                       [v for i in range(self.d)
                        for v in [_q(self.A[j][i]) for j in S] + [_q(self.A[g][i])]])
        R, rank = aug.rref()
        rows = R.tolist()
        lam_q = [flint.fmpq(0)] * len(S)
        for r in rows[:rank]:
            lead = next((c for c, v in enumerate(r) if v != 0), None)
            if lead is None or lead == len(S):
                return False  # inconsistent: a_g is not in the span of the rows S
            lam_q[lead] = r[-1]  # free multipliers stay 0
        if any(v < 0 for v in lam_q):
            return False
        for i in range(self.d):  # the multipliers reproduce a_g exactly
            got = sum((lk * _q(self.A[j][i]) for lk, j in zip(lam_q, S, strict=True)),
                      flint.fmpq(0))
            if got != _q(self.A[g][i]):
                return False
        return sum((lk * self.bq[j] for lk, j in zip(lam_q, S, strict=True)),
                   flint.fmpq(0)) <= self.bq[g]
