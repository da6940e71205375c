"""The checker's two ways of composing exact maps agree: a chain's integer products
(``_ChainRunner``) give the same switching rows, zero rows and output maps as the layer rules
through the program's node loop (``_Runner``), on every pattern prefix of a certificate."""

from __future__ import annotations

import sys

import pytest
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

import exactrelu
from exactrelu import strategies as ers
from exactrelu._exact import input_map

CHECKER = sys.modules["exactrelu.check"]  # the package exports the function under that name


def runners(net: nn.Module, dom: object) -> tuple[exactrelu.Certificate, object, object]:
    cert = exactrelu.verify(net, dom, progress=False)
    prog = exactrelu.capture(net, cert.input_shape)
    M, c = cert.domain.input_map()
    m0 = input_map(M, c, prog.input_shape)
    assert CHECKER._ChainRunner.applies(prog)
    return cert, CHECKER._ChainRunner(prog, m0), CHECKER._Runner(prog, m0)


def assert_same_maps(cert: exactrelu.Certificate, chain: object, generic: object) -> None:
    for r in cert.regions:
        key = tuple(tuple(p) for p in r.pattern)
        for j in range(len(key)):
            a, b = chain.level(key, j), generic.level(key, j)
            assert a.rows == b.rows
            assert a.zero.tolist() == b.zero.tolist()
            assert (a.F == b.F).all()  # both the nearest floats of the same rationals
            assert [a.irow(i) for i in range(len(a.rows))] == [b.irow(i) for i in
                                                                range(len(b.rows))]
        assert chain.output(key).mat == generic.output(key).mat


def prelu_net() -> nn.Sequential:
    """Per-channel PReLU slopes (the rule's unit slopes), Hardtanh with two thresholds, and a
    BatchNorm between them (an affine stretch of several nodes)."""
    torch.manual_seed(7)
    net = nn.Sequential(nn.Linear(2, 4), nn.PReLU(4), nn.Linear(4, 3), nn.BatchNorm1d(3),
                        nn.Hardtanh(-0.5, 0.25), nn.Linear(3, 2)).double()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.25, -0.5, 0.1, 2.0]))
        net[3].running_mean.uniform_(-1, 1)
        net[3].running_var.uniform_(0.5, 2)
    return net.eval()


def test_prelu_hardtanh_and_batchnorm_maps_agree() -> None:
    assert_same_maps(*runners(prelu_net(), [(-1, 1), (-1, 1)]))


@pytest.mark.parametrize("act", [nn.ReLU, lambda: nn.LeakyReLU(0.1), lambda: nn.Hardtanh(0.0, 1.0)])
def test_float32_mlp_maps_agree(act) -> None:
    torch.manual_seed(2)
    net = nn.Sequential(nn.Linear(3, 6), act(), nn.Linear(6, 5), act(), nn.Linear(5, 1)).eval()
    assert_same_maps(*runners(net, [(-1, 1)] * 3))


class Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.act, self.out = nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(x + self.act(self.lin(x)))


class Shifted(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)


def test_residual_nets_and_rules_with_their_own_exact_map_are_not_chains() -> None:
    torch.manual_seed(0)
    assert not CHECKER._ChainRunner.applies(exactrelu.capture(Residual().double().eval(), (2,)))

    class OwnMap(exactrelu.rules.ElementwiseRule):
        def slopes_consts(self, module):
            return [(0.0, 0.0), (1.0, 0.0)]

        def exact_apply(self, module, m, state):
            return super().exact_apply(module, m, state)

    net = nn.Sequential(nn.Linear(2, 2), Shifted(), nn.Linear(2, 1)).double().eval()
    saved = exactrelu.rules.RULES.get(Shifted)
    exactrelu.register_rule(Shifted, OwnMap())
    try:
        assert not CHECKER._ChainRunner.applies(exactrelu.capture(net, (2,)))
    finally:
        if saved is None:
            exactrelu.rules.RULES.pop(Shifted, None)
        else:
            exactrelu.rules.RULES[Shifted] = saved


@settings(max_examples=max(5, settings().max_examples // 3))
@given(st.data())
def test_generated_chains_maps_agree(data) -> None:
    d = data.draw(st.sampled_from([2, 3]))
    act = data.draw(st.sampled_from(ers.ACTIVATIONS))
    net = data.draw(ers.networks(input_dim=d, degenerate=data.draw(st.booleans()), widths=(1, 4),
                                 depth=(1, 2), activation=act, kind="mlp"))
    assert_same_maps(*runners(net, [(-1, 1)] * d))
