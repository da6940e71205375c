"""The certified function is ``net(x)``: at every witness of every region, the certificate's exact
output map equals what torch computes, for generated networks and for hand-built models that
exercise each way capture could diverge from the module's own forward (repeated modules,
residual and functional calls, parametrizations, subclasses, TorchScript files).

The comparison is exact on one side and float64 on the other, with a rigorous bound (see
:func:`assert_maps_equal_net`).
"""

from __future__ import annotations

import contextlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, strategies as st
from torch import nn
from torch.nn.utils import parametrizations

import exactrelu
from exactrelu import UnsupportedModelError, capture, strategies
from exactrelu._models import load_model
from exactrelu.certificate import Certificate
from exactrelu.cli import main
from exactrelu.domain import Box, Domain
from exactrelu.engines.compiled import explain

U = Fraction(1, 2**53)  # unit roundoff of float64
ETA = Fraction(1, 2**1074)  # the smallest subnormal: the absolute error of an underflowing product


def gamma(m: int) -> Fraction:
    """Higham's gamma_m = m u / (1 - m u): a sum of m rounded products, in any order, is off by at
    most gamma_m times the sum of the absolute values of its terms."""
    return m * U / (1 - m * U)


@dataclass(frozen=True)
class Bound:
    """For one value of the network at a float64 input ``xf``: ``lip`` bounds the Lipschitz
    constant (max-norm) of the exact value as a function of the input, ``mag`` the max-norm of the
    value torch computes, ``err`` the max-norm distance between what torch computes and the exact
    value at ``xf``."""

    lip: Fraction
    mag: Fraction
    err: Fraction


def _q(t: torch.Tensor) -> list[Fraction]:
    return [Fraction(v) for v in t.detach().to(torch.float64).reshape(-1).tolist()]


def affine(weight: torch.Tensor, bias: torch.Tensor | None, b: Bound) -> Bound:
    """Linear/Conv: each output is a dot product of at most n = weight[o].numel() inputs with one
    row of weights (zero padding only drops terms), plus a bias: n + 1 rounded terms."""
    rows = weight.detach().reshape(weight.shape[0], -1)
    R = max(sum(abs(v) for v in _q(row)) for row in rows)
    beta = max((abs(v) for v in _q(bias)), default=Fraction(0)) if bias is not None else Fraction(0)
    g = gamma(rows.shape[1] + 1)
    exact = R * b.mag + beta
    return Bound(R * b.lip, exact * (1 + g), R * b.err + g * exact)


def leaky(slope: float, b: Bound) -> Bound:
    """y = x or slope * x: |slope|-Lipschitz beyond 1, one rounded product (or an underflow)."""
    s = abs(Fraction(slope))
    k = max(Fraction(1), s)
    return Bound(k * b.lip, k * b.mag, k * b.err + U * s * b.mag + ETA)


def residual(b: Bound, inner: Bound) -> Bound:
    """y = x + g(x), one rounded addition."""
    total = b.mag + inner.mag
    return Bound(b.lip + inner.lip, total * (1 + U), b.err + inner.err + U * total)


def propagate(m: nn.Module, b: Bound) -> Bound:
    """The bound after module ``m``, from the torch semantics of each layer (independent of
    exactrelu's capture): a plain Sequential calls every entry of ``_modules`` in order."""
    if hasattr(m, "propagate"):
        return m.propagate(b)
    if type(m) is nn.Sequential:
        for child in m._modules.values():
            b = propagate(child, b)
        return b
    if isinstance(m, strategies._Residual):
        return residual(b, propagate(m.act, propagate(m.linear, b)))
    if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d)):
        return affine(m.weight, m.bias, b)
    if isinstance(m, nn.LeakyReLU):
        return leaky(m.negative_slope, b)
    if isinstance(m, nn.Hardtanh):  # clamp: exact and 1-Lipschitz, values within the bounds
        return Bound(b.lip, max(b.mag, abs(Fraction(m.min_val)), abs(Fraction(m.max_val))), b.err)
    if isinstance(m, (nn.ReLU, nn.MaxPool2d, nn.Flatten, nn.Identity, nn.Dropout)):
        return b  # exact and 1-Lipschitz in the max-norm (Dropout: eval mode)
    raise AssertionError(f"no bound for {type(m).__name__}")


def assert_maps_equal_net(cert: Certificate, net: Callable[[torch.Tensor], torch.Tensor],
                          bound: Callable[[Bound], Bound], input_shape: tuple[int, ...]) -> None:
    """At each region's witness w (exact, in domain coordinates, mapped to the input x(w)), the
    region's exact output map M(w) equals torch's float64 ``net(xf)`` at xf, the nearest float64
    point to x(w), within ``lip * |x(w) - xf| + err``.

    Why this is a rigorous bound: if the certificate is right, M(w) = f(w) for the exact network
    function f, and |f(w) - net(xf)| <= |f(x(w)) - f(xf)| + |f(xf) - net(xf)|. The first term is at
    most the Lipschitz constant (the product of the max-norm operator norms of the affine layers,
    max(1, |slope|) per activation, 1 + L(g) per residual block) times |x(w) - xf|, computed
    exactly.
    The second is bounded layer by layer (:func:`propagate`): every Linear/Conv output is a sum of
    n + 1 rounded terms (n products and the bias), off by at most gamma_{n+1} times the sum of
    their absolute values whatever the summation order or use of FMA (float64 convolution on CPU
    runs as im2col and a matrix product, no Winograd or FFT); ReLU, Hardtanh, max pooling and
    reshapes are exact; a LeakyReLU product adds one rounding (or an underflow of at most one
    subnormal); an addition adds one rounding; errors already present grow by the layer's
    Lipschitz constant. Every quantity is a Fraction, so the bound itself is not rounded.
    """
    M, c = cert.domain.input_map()
    assert cert.regions
    for r in cert.regions:
        x = [sum((a * t for a, t in zip(row, r.witness, strict=True)), Fraction(0)) + ci
             for row, ci in zip(M, c, strict=True)]
        xf = [float(v) for v in x]  # correctly rounded: the nearest float64
        with torch.no_grad():
            y = net(torch.tensor(xf, dtype=torch.float64).reshape(1, *input_shape)).reshape(-1)
        exact = [sum((a * t for a, t in zip(row[:-1], r.witness, strict=True)), Fraction(0))
                 + row[-1]
                 for row in r.output]
        b = bound(Bound(Fraction(1), max(abs(Fraction(v)) for v in xf), Fraction(0)))
        tol = b.lip * max(abs(v - Fraction(f)) for v, f in zip(x, xf, strict=True)) + b.err
        assert tol < Fraction(1, 10**9), f"the bound {float(tol)} is too loose to tell anything"
        diff = max(abs(e - Fraction(v)) for e, v in zip(exact, y.tolist(), strict=True))
        assert len(exact) == y.numel() and diff <= tol, (
            f"region {r.index}: certified output {[float(e) for e in exact]} != net(x) "
            f"{y.tolist()} at the witness (difference {float(diff)}, bound {float(tol)})")


def engines(net: nn.Module, domain: Domain, input_shape: tuple[int, ...]) -> list[str]:
    """The exact engines that apply: always Python; the compiled one where it takes the net."""
    fast = not isinstance(explain(capture(net, input_shape), domain), str)
    return ["python", "compiled"] if fast else ["python"]


def certify_and_compare(net: nn.Module, domain: Domain, input_shape: tuple[int, ...],
                        bound: Callable[[Bound], Bound] | None = None) -> list[str]:
    """Certify with every engine that applies and compare each certificate with ``net``."""
    used = engines(net, domain, input_shape)
    for engine in used:
        cert = exactrelu.verify(net, domain, input_shape=input_shape, engine=engine, progress=False,
                                workers=1)
        assert_maps_equal_net(cert, net, bound or (lambda b: propagate(net, b)), input_shape)
    return used


# ----------------------------------------------------------------------------- generated networks

@given(st.data())
def test_certified_maps_equal_net_at_every_witness(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(strategies.KINDS), label="kind")
    activation = data.draw(st.sampled_from(strategies.ACTIVATIONS), label="activation")
    d = data.draw(st.integers(1, 3), label="input dim")
    net = data.draw(strategies.networks(
        input_dim=d, depth=(1, 2), widths=(1, 4), kind=kind, activation=activation,
        output_dim=data.draw(st.integers(1, 2)), degenerate=data.draw(st.booleans())))
    domain = data.draw(strategies.domains(d), label="domain")
    certify_and_compare(net, domain, net.input_shape)


# ----------------------------------------------------------------------------- hand-built models

def _init(net: nn.Module, seed: int) -> nn.Module:
    """float64, eval mode, dyadic parameters k/64 (so a wrong map is far from the bound)."""
    g = torch.Generator().manual_seed(seed)
    net = net.double().eval()
    with torch.no_grad():
        for t in list(net.parameters()) + [b for b in net.buffers() if b.is_floating_point()]:
            t.copy_(torch.randint(-96, 97, t.shape, generator=g, dtype=torch.float64) / 64)
    return net


class Shared(nn.Module):
    """One Linear called twice (two ops sharing parameters), a residual add and functional
    activations with non-default arguments, one of them in place on a fresh tensor."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.mid, self.out = nn.Linear(2, 3), nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.leaky_relu(self.inp(x), 0.25)
        h = h + F.hardtanh(self.mid(h), -2.0, 3.0)
        h = F.relu(self.mid(h), inplace=True)
        return self.out(h)

    def propagate(self, b: Bound) -> Bound:
        h = leaky(0.25, propagate(self.inp, b))
        inner = propagate(self.mid, h)
        h = residual(h, Bound(inner.lip, max(inner.mag, Fraction(3)), inner.err))
        return propagate(self.out, propagate(self.mid, h))


class SkipSequential(nn.Sequential):
    """A Sequential whose forward is not Sequential's: ``x + layers(x)`` (captured through fx)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x
        for m in self:
            y = m(y)
        return x + y

    def propagate(self, b: Bound) -> Bound:
        y = b
        for m in self:
            y = propagate(m, y)
        return residual(b, y)


class MyLinear(nn.Linear):
    """A subclass that only adds a constructor: it keeps nn.Linear's rule."""

    def __init__(self, n: int) -> None:
        super().__init__(n, n)


class UsesMyLinear(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = MyLinear(2), nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.b(torch.relu(self.a(x)))

    def propagate(self, b: Bound) -> Bound:
        return propagate(self.b, propagate(self.a, b))


class Accumulate(nn.Module):
    """``h += x`` on a tensor nothing else reads: the in-place write changes nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.fc, self.out = nn.Linear(2, 2), nn.Linear(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        h += x
        return self.out(torch.relu(h))

    def propagate(self, b: Bound) -> Bound:
        return propagate(self.out, residual(b, propagate(self.fc, b)))


def _repeated() -> tuple[nn.Module, tuple[int, ...]]:
    lin, act = nn.Linear(2, 2), nn.ReLU()
    return _init(nn.Sequential(lin, act, lin, act, nn.Linear(2, 1)), 1), (2,)


def _weight_norm() -> tuple[nn.Module, tuple[int, ...]]:
    net = _init(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), 2)
    net[0] = parametrizations.weight_norm(net[0])
    with torch.no_grad():
        net[0].parametrizations.weight.original0.mul_(3)  # g: the weight is g * v / |v|
    return net.eval(), (2,)


def _buffer_bias() -> tuple[nn.Module, tuple[int, ...]]:
    net = _init(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)), 3)
    bias = net[0].bias.detach().clone()
    del net[0].bias
    net[0].register_buffer("bias", bias)
    return net, (2,)


def _conv_pool() -> tuple[nn.Module, tuple[int, ...]]:
    net = nn.Sequential(nn.Conv2d(1, 2, (1, 2)), nn.ReLU(), nn.MaxPool2d((1, 2)), nn.Flatten(),
                        nn.Linear(2, 1))
    return _init(net, 4), (1, 1, 3)


def _conv_relu6() -> tuple[nn.Module, tuple[int, ...]]:
    net = nn.Sequential(nn.Conv1d(1, 3, 2), nn.ReLU6(), nn.Flatten(), nn.Linear(6, 2))
    return _init(net, 5), (1, 3)


def _backward_hooked() -> tuple[nn.Module, tuple[int, ...]]:
    net = _init(nn.Sequential(nn.Linear(2, 3), nn.ReLU(inplace=True), nn.Linear(3, 1)), 6)
    net[0].register_full_backward_hook(lambda *a: None)
    net.register_full_backward_pre_hook(lambda *a: None)
    return net, (2,)


def _graph_module() -> tuple[nn.Module, tuple[int, ...]]:
    inner = _init(Shared(), 7)
    gm = torch.fx.symbolic_trace(inner)
    gm.propagate = inner.propagate  # type: ignore[assignment]
    return gm, (2,)


HAND_BUILT: dict[str, Callable[[], tuple[nn.Module, tuple[int, ...]]]] = {
    "repeated module in a Sequential": _repeated,
    "module called twice, residual, functional args": lambda: (_init(Shared(), 8), (2,)),
    "fx GraphModule": _graph_module,
    "Sequential subclass with its own forward":
        lambda: (_init(SkipSequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2)), 9), (2,)),
    "subclass keeping Linear's forward": lambda: (_init(UsesMyLinear(), 10), (2,)),
    "x += y on a fresh tensor": lambda: (_init(Accumulate(), 13), (2,)),
    "weight_norm parametrization": _weight_norm,
    "buffer bias": _buffer_bias,
    "conv and max pooling": _conv_pool,
    "conv1d and ReLU6": _conv_relu6,
    "backward hooks and an in-place ReLU": _backward_hooked,
}


@pytest.mark.parametrize("name", list(HAND_BUILT))
def test_hand_built_models_are_certified_as_they_compute(name: str) -> None:
    net, shape = HAND_BUILT[name]()
    d = 1
    for s in shape:
        d *= s
    domain = Box([(Fraction(-3, 2), Fraction(5, 4))] * d)
    used = certify_and_compare(net, domain, shape)
    if name in ("repeated module in a Sequential", "weight_norm parametrization", "buffer bias"):
        assert used == ["python", "compiled"]  # both engines were compared on these


def test_a_repeated_module_is_one_op_per_call() -> None:
    net, _ = _repeated()
    prog = capture(net, (2,))
    assert [nd.name for nd in prog.nodes] == ["0", "1", "2", "3", "4"]
    assert prog.nodes[0].module is prog.nodes[2].module  # shared parameters
    assert prog.num_piecewise == 2


def test_the_digest_covers_the_parametrized_weight() -> None:
    """weight_norm's weight is computed from g and v; two nets that differ only in v compute
    different functions and must have different digests, and a certificate of one is rejected
    for the other."""
    a, _ = _weight_norm()
    b, _ = _weight_norm()
    with torch.no_grad():
        b[0].parametrizations.weight.original1[0, 0] += 0.5
    assert not torch.equal(a[0].weight, b[0].weight)
    assert capture(a, (2,)).digest() != capture(b, (2,)).digest()
    cert = exactrelu.verify(a, [(-1, 1), (-1, 1)], progress=False)
    exactrelu.check(cert, a)
    with pytest.raises(exactrelu.CertificateError, match="digest"):
        exactrelu.check(cert, b)


def test_the_checker_refuses_a_net_that_gained_a_forward_hook() -> None:
    """The checker captures the net as verify does: a hook added after certification makes
    net(x) something else, and the check refuses it instead of accepting the old certificate."""
    net = _init(nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)), 14)
    cert = exactrelu.verify(net, [(-1, 1), (-1, 1)], progress=False)
    exactrelu.check(cert, net)
    net[0].register_forward_hook(lambda m, i, o: -o)
    with pytest.raises(UnsupportedModelError,
                       match=r"0 \(torch.nn.modules.linear.Linear\): forward hook"):
        exactrelu.check(cert, net)


def test_the_digest_covers_a_buffer_bias() -> None:
    a, _ = _buffer_bias()
    b, _ = _buffer_bias()
    with torch.no_grad():
        b[0].bias[1] += 0.25
    assert capture(a, (2,)).digest() != capture(b, (2,)).digest()


# ----------------------------------------------------------------------------- TorchScript files

class ReLU(nn.Module):
    """A scripted class *named* ReLU with the constant of a real one, computing x * x."""

    __constants__ = ("inplace",)
    inplace: bool

    def __init__(self) -> None:
        super().__init__()
        self.inplace = False

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        return input * input


@contextlib.contextmanager
def _quiet_jit() -> Any:
    """torch.jit.script/save/load warn that they are deprecated; the tests still make files."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        yield


def _save_script(net: nn.Module, path: Path) -> Path:
    with _quiet_jit():
        torch.jit.script(net).save(str(path))
    return path


def test_a_scripted_class_named_relu_computing_a_square_is_refused(tmp_path: Path) -> None:
    path = _save_script(nn.Sequential(nn.Linear(2, 2), ReLU(), nn.Linear(2, 1)), tmp_path / "sq.pt")
    with pytest.raises(UnsupportedModelError) as info:
        load_model(str(path))
    (problem,) = info.value.problems
    assert "model.1" in problem and "ReLU" in problem and "compiled code" in problem
    message = str(info.value)
    assert "package.module:factory" in message and "--weights" in message
    assert "jit.script" not in message


def test_a_scripted_buffer_bias_is_carried_exactly(tmp_path: Path) -> None:
    net, shape = _buffer_bias()
    path = _save_script(net, tmp_path / "bias.pt")
    loaded = load_model(str(path))
    assert "bias" in dict(loaded[0].named_buffers()) and torch.equal(loaded[0].bias, net[0].bias)
    with _quiet_jit():
        scripted = torch.jit.load(str(path)).eval()
    cert = exactrelu.verify(loaded, [(-2, 2), (-2, 2)], progress=False)
    assert_maps_equal_net(cert, scripted, lambda b: propagate(net, b), shape)


def test_a_scripted_module_with_a_forward_hook_is_refused(tmp_path: Path) -> None:
    net = _init(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), 11)

    def double(module: nn.Module, inputs: tuple[torch.Tensor],
               output: torch.Tensor) -> torch.Tensor:
        return 2 * output

    net[0].register_forward_hook(double)
    path = _save_script(net, tmp_path / "hook.pt")
    with pytest.raises(UnsupportedModelError, match=r"model\.0 \(Linear\): has forward hooks"):
        load_model(str(path))


def test_a_standard_scripted_sequential_is_certified_through_the_cli(tmp_path: Path,
                                                                     capsys: Any) -> None:
    net = _init(nn.Sequential(nn.Linear(2, 4), nn.LeakyReLU(0.5), nn.Linear(4, 3),
                              nn.Hardtanh(-1.0, 0.5), nn.Linear(3, 1)), 12)
    path = _save_script(net, tmp_path / "std.pt")
    cert_path = tmp_path / "std.json"
    rc = main(["verify", str(path), "--bounds", "-2", "2", "-1", "1", "-o", str(cert_path),
               "--quiet", "--workers", "1"])
    assert rc == 0, capsys.readouterr().err
    cert = Certificate.from_json(json.loads(cert_path.read_text()))
    with _quiet_jit():
        scripted = torch.jit.load(str(path)).eval()
    assert_maps_equal_net(cert, scripted, lambda b: propagate(net, b), (2,))
    assert main(["check", str(cert_path), "--model", str(path)]) == 0
