"""Adding exactrelu support for your own layers, fuzzing the rules, then certifying a network.

Two user modules: ``Scale`` (affine: y = s * x) and ``ShiftedReLU`` (piecewise: y = relu(x - 1/4)).
Each gets a rule registered with ``exactrelu.register_rule``; ``exactrelu.testing.check_rule``
fuzzes it with Hypothesis (float maps against ``forward`` and autograd, exact maps against the exact
forward pass, switching functions against the reported states) before it is trusted.

Run with ``python examples/custom_rule.py``.
"""

from __future__ import annotations

import math

import flint
import torch
from torch import nn

import exactrelu
from exactrelu.rules import AffineRule, FloatMap, PiecewiseRule
from exactrelu.testing import check_rule

SHIFT = 0.25


class Scale(nn.Module):
    """y = s * x with a fixed float ``s``."""

    def __init__(self, s: float) -> None:
        super().__init__()
        self.s = s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.s * x


class ShiftedReLU(nn.Module):
    """y = relu(x - 1/4), elementwise."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x - SHIFT)


@exactrelu.register_rule(Scale)
class ScaleRule(AffineRule):
    # The exact matrix comes from ``linear`` applied to a basis in float64: exact, s is a float.
    def linear(self, module: Scale, x: torch.Tensor) -> torch.Tensor:
        return module.s * x

    def constant(self, module: Scale, zeros: torch.Tensor) -> torch.Tensor:
        return zeros


def _exact_rows(m):  # an exact map's rows [a_1, ..., a_k, c] as fmpq lists
    return m.mat.tolist()


def _exact_like(m, rows):  # an exact map of the same type with new rows
    entries = [v for r in rows for v in r]
    return type(m)(flint.fmpq_mat(len(rows), m.mat.ncols(), entries), (len(rows),))


@exactrelu.register_rule(ShiftedReLU)
class ShiftedReLURule(PiecewiseRule):
    """One switching function per entry, s(x) = x - 1/4; state 1 (identity) iff s > 0."""

    def num_switching(self, module, in_shape):
        return math.prod(in_shape)

    def switching(self, module, m: FloatMap) -> FloatMap:
        n, k = m.W.shape[:2]
        size = m.b[0].numel()  # reshape(n, k, -1) fails when k == 0 (plain values)
        return FloatMap(m.W.reshape(n, k, size), m.b.reshape(n, size) - SHIFT)

    def exact_switching(self, module, m):
        rows = [list(r) for r in _exact_rows(m)]
        for r in rows:
            r[-1] -= flint.fmpq(1, 4)
        return _exact_like(m, rows)

    def state(self, module, x):
        return (x > SHIFT).to(torch.int64)

    def state_from_signs(self, module, signs, in_shape):
        return (signs > 0).to(torch.int64).reshape(signs.shape[0], *in_shape)

    def cell_constraints(self, module, state, in_shape):
        st = state.reshape(-1).cpu()
        return torch.arange(st.numel()), torch.where(st > 0, 1, -1)

    def apply(self, module, m: FloatMap, state) -> FloatMap:
        on = state.to(m.b.dtype)
        return FloatMap(m.W * on.unsqueeze(1), (m.b - SHIFT) * on)

    def exact_apply(self, module, m, state):
        rows = []
        for r, on in zip(_exact_rows(m), state.reshape(-1).tolist()):
            if on:
                r = list(r)
                r[-1] -= flint.fmpq(1, 4)
                rows.append(r)
            else:
                rows.append([flint.fmpq(0)] * len(r))
        out = _exact_like(m, rows)
        return type(m)(out.mat, tuple(state.shape))


def main() -> None:
    check_rule(Scale(0.75), input_shape=(3,), max_examples=30)
    print("check_rule(Scale(0.75)): float maps, Jacobian and exact maps agree on 30 examples")
    check_rule(ShiftedReLU, input_shape=(5,), max_examples=50)
    print("check_rule(ShiftedReLU): float maps, Jacobian, exact maps and switching states agree "
          "on 50 examples")

    net = nn.Sequential(nn.Linear(2, 4), ShiftedReLU(), Scale(0.5), nn.Linear(4, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, -0.5, 0.0]))
        net[3].weight.copy_(torch.tensor([[1.0, -1.0, 2.0, 0.5]]))
    cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    exactrelu.check(cert, net)
    print(f"verify on [-1, 1]^2: {cert.summary()}; the independent checker accepts the certificate")


if __name__ == "__main__":
    main()
