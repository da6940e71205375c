"""Adding exactrelu support for your own layers, fuzzing the rules, then certifying a network.

Two user modules: ``Scale`` (affine: y = s * x) and ``ShiftedReLU`` (piecewise: y = relu(x - 1/4)).
``Scale`` gets an ``AffineRule`` (the op without its constant, and the constant);
``ShiftedReLU`` an ``ElementwiseRule``: its thresholds and the (slope, constant) of each piece,
which is all the compiled engine needs. ``exactrelu.testing.check_rule`` fuzzes each rule with
Hypothesis before it is trusted: every method the engines call, against the module's forward,
autograd and the exact forward pass, over modules drawn from a strategy (``Scale``'s ``s`` is a
plain float, which only a strategy of modules varies). A wrong rule fails naming its wrong method.

Run with ``python examples/custom_rule.py``.
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st
from torch import nn

import exactrelu
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
class ScaleRule(exactrelu.AffineRule):
    # The exact matrix comes from ``linear`` applied to a basis in float64: exact, s is a float.
    def linear(self, module: Scale, x: torch.Tensor) -> torch.Tensor:
        return module.s * x

    def constant(self, module: Scale, zeros: torch.Tensor) -> torch.Tensor:
        return zeros


@exactrelu.register_rule(ShiftedReLU)
class ShiftedReLURule(exactrelu.ElementwiseRule):
    """Two pieces around the threshold 1/4: 0 below it, x - 1/4 above."""

    def thresholds(self, module: ShiftedReLU) -> list[float]:
        return [SHIFT]

    def slopes_consts(self, module: ShiftedReLU) -> list[tuple[float, float]]:
        return [(0.0, 0.0), (1.0, -SHIFT)]


class AbsScaleRule(ScaleRule):
    """A wrong rule for Scale, right only for s >= 0."""

    def linear(self, module: Scale, x: torch.Tensor) -> torch.Tensor:
        return abs(module.s) * x


def main() -> None:
    scales = st.builds(Scale, st.floats(-4, 4, allow_nan=False))
    check_rule(scales, input_shape=(3,), max_examples=30)
    print("check_rule(Scale): float maps, Jacobian and exact maps agree on 30 examples")
    check_rule(ShiftedReLU, input_shape=(5,), max_examples=50)
    print("check_rule(ShiftedReLU): every method the engines call agrees on 50 examples")
    try:
        check_rule(scales, AbsScaleRule(), input_shape=(3,), max_examples=30)
    except AssertionError as exc:
        print(f"check_rule(Scale, AbsScaleRule()) fails: {str(exc).splitlines()[0]}")
    else:
        raise SystemExit("check_rule accepted a wrong rule")

    net = nn.Sequential(nn.Linear(2, 4), ShiftedReLU(), Scale(0.5), nn.Linear(4, 1)).double()
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, -1.0]]))
        net[0].bias.copy_(torch.tensor([0.0, 0.0, -0.5, 0.0]))
        net[3].weight.copy_(torch.tensor([[1.0, -1.0, 2.0, 0.5]]))
    cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    exactrelu.check(cert, net)
    print(f"verify on [-1, 1]^2 ({cert.stats['engine']} engine): {cert.summary()}; the "
          "independent checker accepts the certificate")


if __name__ == "__main__":
    main()
