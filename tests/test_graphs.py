"""Whole models with every supported op: float maps, Jacobians and exact forward passes agree."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import exactrelu
from exactrelu import capture

ROOT = Path(__file__).resolve().parent.parent
MARGIN = 1e-7


def _randomize(net: nn.Module, seed: int) -> nn.Module:
    """float64, eval, with non-trivial BatchNorm statistics."""
    gen = torch.Generator().manual_seed(seed)
    net = net.double().eval()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen,
                                                 dtype=torch.float64) * 0.3)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen,
                                               dtype=torch.float64) + 0.5)
                m.weight.copy_(torch.randn(m.weight.shape, generator=gen, dtype=torch.float64))
                m.bias.copy_(torch.randn(m.bias.shape, generator=gen, dtype=torch.float64) * 0.3)
    return net


def mlp() -> tuple[nn.Module, tuple[int, ...]]:
    return nn.Sequential(nn.Linear(4, 8), nn.LeakyReLU(0.1), nn.Linear(8, 8), nn.BatchNorm1d(8),
                         nn.Hardtanh(-0.5, 0.7), nn.Linear(8, 3)), (4,)


def conv1d_net() -> tuple[nn.Module, tuple[int, ...]]:
    return nn.Sequential(nn.Conv1d(2, 4, 3, padding=1), nn.ReLU(),
                         nn.Conv1d(4, 3, 3, stride=2, dilation=2), nn.BatchNorm1d(3),
                         nn.LeakyReLU(0.2), nn.Flatten(), nn.Linear(15, 2)), (2, 13)


def conv2d_net() -> tuple[nn.Module, tuple[int, ...]]:
    # MaxPool before ReLU: after a ReLU, windows of zeros tie exactly and no point is off the
    # switching set.
    return nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.MaxPool2d(2),
                         nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.AvgPool2d(2, 1),
                         nn.AdaptiveAvgPool2d(2),
                         nn.Dropout(0.3), nn.Identity(), nn.Flatten(), nn.Linear(16, 3)), (3, 8, 8)


class ResBlock(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 2, 3, padding=1)
        self.conv2 = nn.Conv2d(2, 2, 3, padding=1)
        self.head = nn.Linear(2 * 5 * 5, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x + self.conv2(F.relu(self.conv1(x)))
        return self.head(torch.flatten(torch.relu(y), 1))


class TwoBranches(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU())
        self.b = nn.Sequential(nn.Conv2d(1, 3, 1), nn.Hardtanh())
        self.head = nn.Linear(5 * 4 * 4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.cat([self.a(x), self.b(x)], 1)
        return self.head(y.view(y.size(0), -1))


class Functional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 6)
        self.fc3 = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv(x))
        x = x.view(x.size(0), -1)
        # not after a ReLU: its zeros sit on the switch
        x = torch.relu(F.leaky_relu(self.fc1(x), 0.3))
        x = self.fc2(x).relu()
        return self.fc3(x.reshape(x.shape[0], -1))


MODELS: dict[str, Callable[[], tuple[nn.Module, tuple[int, ...]]]] = {
    "mlp_leaky_hardtanh_bn1d": mlp,
    "conv1d": conv1d_net,
    "conv2d_bn_maxpool_adaptive_dropout": conv2d_net,
    "resnet_block_fx": lambda: (ResBlock(), (2, 5, 5)),
    "cat_two_branches": lambda: (TwoBranches(), (1, 4, 4)),
    "functional_relu_view_flatten": lambda: (Functional(), (1, 4, 3)),
}


def _build(name: str) -> tuple[nn.Module, tuple[int, ...], torch.Tensor]:
    torch.manual_seed(11)
    net, shape = MODELS[name]()
    net = _randomize(net, 7)
    x = torch.randn((5, *shape), generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    return net, shape, x


def _reconstruct(g: exactrelu.AffineMaps, x: torch.Tensor) -> torch.Tensor:
    w = g.weight.reshape(*g.weight.shape[: g.bias.dim()], -1)
    return (w * x.reshape(x.shape[0], *([1] * (g.bias.dim() - 1)), -1)).sum(-1) + g.bias


def _away_from_switching(net: nn.Module, x: torch.Tensor) -> list[int]:
    prog = capture(net, tuple(x.shape[1:]))
    collect: list = []
    prog.float_run(exactrelu.FloatMap(x.new_zeros((x.shape[0], 0, *prog.input_shape)), x),
                   collect=collect)
    keep = torch.ones(x.shape[0], dtype=torch.bool)
    for m in collect:
        keep &= m.b.abs().min(dim=1).values > MARGIN
    return torch.nonzero(keep).reshape(-1).tolist()


@pytest.mark.parametrize("name", list(MODELS))
def test_affine_maps_reconstruct_the_forward_pass(name: str) -> None:
    net, shape, x = _build(name)
    with torch.no_grad():
        y = net(x)
    g = exactrelu.affine_maps(net, x)
    assert g.weight.shape == (*y.shape, *shape)
    torch.testing.assert_close(_reconstruct(g, x), y, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_affine_weight_is_the_jacobian(name: str) -> None:
    net, _shape, x = _build(name)
    samples = _away_from_switching(net, x)
    assert len(samples) >= 3, "too few samples away from the switching surfaces"
    g = exactrelu.affine_maps(net, x)
    for i in samples:
        jac = torch.func.jacrev(lambda xi: net(xi.unsqueeze(0)).squeeze(0))(x[i])
        torch.testing.assert_close(g.weight[i], jac, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("name", list(MODELS))
def test_exact_forward_matches_float64(name: str) -> None:
    net, _shape, x = _build(name)
    with torch.no_grad():
        y = net(x)
    for i in range(2):
        exact = exactrelu.exact_forward(net, x[i])
        assert all(isinstance(v, Fraction) for v in exact)
        got = torch.tensor([float(v) for v in exact], dtype=torch.float64)
        want = y[i].reshape(-1)
        scale = want.abs().max().item()
        assert (got - want).abs().max().item() <= 1e-12 * scale, (got, want)


@pytest.mark.parametrize("name", list(MODELS))
def test_exact_affine_map_at_the_point_is_the_exact_forward(name: str) -> None:
    net, shape, x = _build(name)
    i = _away_from_switching(net, x)[0]
    g = exactrelu.affine_maps(net, x[i:i + 1])
    maps = exactrelu.exact_affine_maps(net, g.pattern, shape)
    point = [Fraction(v) for v in x[i].reshape(-1).tolist()]
    assert maps.output.at(point) == exactrelu.exact_forward(net, x[i])
    assert len(maps.switching) == len(g.pattern)


def test_exact_forward_on_a_non_dyadic_point() -> None:
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Identity(), nn.Linear(2, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.25]]))
        net[0].bias.copy_(torch.tensor([0.0, -1.0]))
        net[3].weight.copy_(torch.tensor([[3.0, -1.0]]))
        net[3].bias.copy_(torch.tensor([0.125]))
    t = [Fraction(1, 3), Fraction(-2, 7)]
    h = [max(Fraction(0), t[0] - 2 * t[1]), max(Fraction(0), t[0] / 2 + t[1] / 4 - 1)]
    assert exactrelu.exact_forward(net, t, (2,)) == [3 * h[0] - h[1] + Fraction(1, 8)]


# ----------------------------------------------------------------------------- the example script

def _load_demo() -> object:
    spec = importlib.util.spec_from_file_location("graph_demo", ROOT / "examples" / "graph_demo.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_graph_demo_testnet_reconstruction() -> None:
    demo = _load_demo()
    torch.manual_seed(5)
    net = demo.TestNet().eval()  # type: ignore[attr-defined]
    for dtype, tol in ((torch.float32, 1e-5), (torch.float64, 1e-12)):
        net = net.to(dtype)
        x = torch.randn(3, 3, 8, 8, dtype=dtype)
        g = exactrelu.affine_maps(net, x)
        with torch.no_grad():
            y = net(x)
        torch.testing.assert_close((g.weight * x[:, None]).sum((2, 3, 4)) + g.bias, y, rtol=tol,
                                   atol=tol)


def test_graph_demo_script_runs_and_its_numbers_agree() -> None:
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "graph_demo.py")],
                          capture_output=True,
                          text=True, timeout=120, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    number = r"-?\d+\.\d+(?:e[-+]\d+)?"
    output_block = out.split("output:")[1].split("weight graph:")[0]
    recon_block = out.split("sample by sample:")[1].split("exact output")[0]
    printed = [float(v) for v in re.findall(number, output_block)]
    recon = [float(v) for v in re.findall(number, recon_block)]
    assert len(printed) == 4 and len(recon) == 4
    assert all(abs(a - b) <= 2e-4 for a, b in zip(printed, recon, strict=True)), (printed, recon)
    assert "weight graph: (2, 2, 3, 8, 8)" in out
    exact = [Fraction(s) for s in re.findall(r"'(-?\d+(?:/\d+)?)'",
                                             out.split("exact output of sample 0")[1])]
    assert len(exact) == 2
    assert all(abs(float(e) - p) <= 2e-4 for e, p in zip(exact, printed[:2], strict=True))


def test_exact_forward_sees_parameters_changed_in_place() -> None:
    net = nn.Sequential(nn.Linear(2, 1), nn.ReLU())
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 2.0]]))
        net[0].bias.zero_()
    point = [Fraction(1, 3), Fraction(1, 5)]
    assert exactrelu.exact_forward(net, point, (2,)) == [Fraction(1, 3) + Fraction(2, 5)]
    with torch.no_grad():
        net[0].weight.mul_(2)  # e.g. an optimizer step
    assert exactrelu.exact_forward(net, point, (2,)) == [Fraction(2, 3) + Fraction(4, 5)]
    net[0].weight = nn.Parameter(torch.tensor([[0.5, 0.0]]))
    assert exactrelu.exact_forward(net, point, (2,)) == [Fraction(1, 6)]
    net[0].weight.data.add_(0.5)  # a write that bypasses the version counter
    assert exactrelu.exact_forward(net, point, (2,)) == [Fraction(1, 3) + Fraction(1, 10)]
