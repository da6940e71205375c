"""torch.export programs and the new ops: certified as ``ep.module()(x)`` computes.

Exported versions of the hand-built models of ``test_capture_semantics`` and a model using every
new op are certified through ``ep`` and ``ep.module()`` and compared with torch at every witness
(that file's rigorous comparison, :func:`assert_maps_equal_net`); the models of ``test_capture``
give the same certificate exported and as modules; each new op has a construction with a known
count; what capture cannot model is refused with every op named.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import exactrelu
from exactrelu import InvalidInputError, UnsupportedModelError, capture
from exactrelu.domain import Box, Slice, as_domain
from exactrelu.engines.compiled import explain

from test_capture import Residual, _convnet, _mlp
from test_capture_semantics import (
    ETA,
    HAND_BUILT,
    Bound,
    U,
    _init,
    affine,
    certify_and_compare,
    gamma,
    leaky,
    propagate,
    residual,
)


def export(net: nn.Module, shape: tuple[int, ...], dynamic: bool = False) -> Any:
    """``torch.export.export`` of ``net`` on a float64 example of one sample (a dynamic batch
    dimension with ``dynamic``)."""
    example = torch.zeros((2 if dynamic else 1, *shape), dtype=torch.float64)
    dims = ({0: torch.export.Dim("batch")},) if dynamic else None
    return torch.export.export(net, (example,), dynamic_shapes=dims)


# ----------------------------------------------------------------------------- rigorous bounds
# Bounds of test_capture_semantics's kind (max-norm: Lipschitz constant, magnitude, error of the
# float64 value torch computes) for the ops that file has none for.

def scaled(c: float, b: Bound, divide: bool = False) -> Bound:
    """x * c (or x / c): one rounded product or quotient (or an underflow)."""
    s = 1 / abs(Fraction(c)) if divide else abs(Fraction(c))
    return Bound(s * b.lip, s * b.mag * (1 + U), s * b.err + U * s * b.mag + ETA)


def shifted(c: float, b: Bound) -> Bound:
    """x + c: one rounded addition."""
    total = b.mag + abs(Fraction(c))
    return Bound(b.lip, total * (1 + U), b.err + U * total)


def clipped(b: Bound, *values: float) -> Bound:
    """An exact, 1-Lipschitz op whose values are inputs or the constants ``values`` (abs,
    clamp, maximum, padding, copies of entries)."""
    return Bound(b.lip, max([b.mag, *(abs(Fraction(v)) for v in values)]), b.err)


def joined(*bs: Bound) -> Bound:
    """Values taken from several tensors (concatenation, maximum of two)."""
    return Bound(max(b.lip for b in bs), max(b.mag for b in bs), max(b.err for b in bs))


def averaged(k: int, b: Bound) -> Bound:
    """The mean of k values: a rounded sum and a division (or a product by a rounded 1/k)."""
    return Bound(b.lip, b.mag * (1 + gamma(k + 2)), b.err + gamma(k + 2) * b.mag)


class EveryOp(nn.Module):
    """Every new op once, on a 2-D input: abs, constants added, products and quotients by
    constants, x - y, chunk, flip, maximum and minimum of two tensors, clamp both ways, ReLU6,
    mean, a broadcast add, unsqueeze, constant padding, ConvTranspose1d, per-channel PReLU,
    nearest upsampling, strided slicing."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 4)
        self.convt = nn.ConvTranspose1d(1, 2, 2, stride=2)
        self.prelu = nn.PReLU(2)
        self.up = nn.Upsample(scale_factor=2)
        self.head = nn.Linear(8, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.abs(self.fc(x)) - 0.5
        h = 2 * h - h / 4
        a, b = h.chunk(2, dim=1)
        h = torch.cat([torch.maximum(a, b.flip(1)), torch.minimum(a, -b).clamp(-0.75, 0.75),
                       a.clamp(min=0.25)], 1)
        h = F.relu6(4 * h).mean(1, keepdim=True) + h
        h = self.convt(F.pad(h.unsqueeze(1), (1, 1), value=0.5))
        h = self.up(self.prelu(h))[:, :, ::8]
        return self.head(h.flatten(1))

    def propagate(self, b: Bound) -> Bound:
        h = shifted(0.5, clipped(propagate(self.fc, b)))
        h = residual(scaled(2, h), scaled(4, h, divide=True))
        h = joined(h, clipped(h, 0.75, 0.25))
        r = averaged(6, clipped(scaled(4, h), 0, 6))
        h = clipped(residual(r, h), 0.5)
        w = self.convt.weight.detach()
        h = affine(w.transpose(0, 1), self.convt.bias, h)
        h = leaky(float(self.prelu.weight.detach().abs().max()), h)
        return propagate(self.head, h)


def _every_op() -> tuple[nn.Module, tuple[int, ...]]:
    return _init(EveryOp(), 21), (2,)


EXPORTABLE = {name: make for name, make in HAND_BUILT.items() if "backward hooks" not in name}
EXPORTABLE["every new op"] = _every_op
SQUARE = Box([(Fraction(-3, 2), Fraction(5, 4))] * 2)


@pytest.mark.parametrize("name", list(EXPORTABLE))
def test_exported_models_are_certified_as_ep_module_computes(name: str) -> None:
    """ep.module()(x) is the certified function (both engines where the compiled one applies),
    and ep itself gives the same certificate."""
    net, shape = EXPORTABLE[name]()
    ep = export(net, shape)
    domain = Box([(Fraction(-3, 2), Fraction(5, 4))] * math.prod(shape))
    used = certify_and_compare(ep.module(), domain, shape, lambda b: propagate(net, b))
    via_ep = exactrelu.verify(ep, domain, progress=False, workers=1)
    via_module = exactrelu.verify(ep.module(), domain, progress=False, workers=1)
    assert via_ep.digest == via_module.digest
    assert [r.output for r in via_ep.regions] == [r.output for r in via_module.regions]
    exactrelu.check(via_ep, ep.module())
    if name in ("repeated module in a Sequential", "buffer bias"):
        assert used == ["python", "compiled"]


def test_every_new_op_as_a_module_is_certified_as_it_computes() -> None:
    """The same model captured by torch.fx (functional, method and operator forms) rather
    than from its exported graph."""
    net, shape = _every_op()
    prog = capture(net, shape)
    kinds = {type(nd.module).__name__ for nd in prog.nodes}
    assert {"Abs", "AddConstant", "Mul", "Div", "Sub", "Gather", "Clamp", "Mean", "Pad",
            "ConvTranspose1d", "PReLU", "Upsample", "ReLU6", "Add", "Cat"} <= kinds, kinds
    certify_and_compare(net, SQUARE, shape)


@pytest.mark.parametrize("make", [_mlp, _convnet, Residual], ids=["mlp", "convnet", "residual"])
def test_the_models_of_test_capture_give_the_same_certificate_exported(make: Callable) -> None:
    """Same regions, patterns and exact maps through the two front ends (torch.fx on the module,
    the ATen graph of its export), on a plane through three inputs."""
    torch.manual_seed(4)
    net = make().double().eval()
    shape = (3,) if make is _mlp else (2, 4, 4)
    xs = [torch.randn(shape, dtype=torch.float64) for _ in range(3)]
    domain = Slice.plane(*xs, bounds=[(-1, 1), (-1, 1)])
    ep = export(net, shape)
    a = exactrelu.verify(net, domain, progress=False, workers=1)
    for b in (exactrelu.verify(ep, domain, progress=False, workers=1),
              exactrelu.verify(ep.module(), domain, progress=False, workers=1)):
        assert a.num_regions == b.num_regions > 1
        assert sorted((r.pattern, r.output) for r in a.regions) == \
            sorted((r.pattern, r.output) for r in b.regions)


def test_static_and_dynamic_batches_and_the_core_aten_decomposition_are_one_program() -> None:
    net, shape = _init(nn.Sequential(nn.Conv2d(1, 2, 2), nn.BatchNorm2d(2), nn.ReLU(),
                                     nn.MaxPool2d(2), nn.Flatten(), nn.Linear(2, 1)), 5), (1, 3, 3)
    with torch.no_grad():
        net[1].running_var.abs_().add_(0.5)
    batch3 = torch.export.export(net, (torch.zeros(3, *shape, dtype=torch.float64),))
    progs = [capture(net, shape), capture(export(net, shape, dynamic=True), shape),
             capture(export(net, shape).run_decompositions(), shape), capture(batch3, shape)]
    x = torch.randn(4, *shape, dtype=torch.float64)
    for prog in progs:
        torch.testing.assert_close(prog.forward(x), net(x), rtol=1e-12, atol=1e-12)
        assert [type(nd.module).__name__ for nd in prog.nodes if nd.piecewise] == \
            ["ReLU", "MaxPool2d"]


# ----------------------------------------------------------------------------- known counts

def _on_identity(fn: Callable, n: int) -> nn.Module:
    """``fn`` of the input itself (an identity Linear first, so the ops see a model tensor)."""

    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.fc = nn.Linear(n, n)
            with torch.no_grad():
                self.fc.weight.copy_(torch.eye(n))
                self.fc.bias.zero_()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return fn(self.fc(x))

    return Net().double().eval()


def _prelu2() -> nn.Module:
    net = nn.Sequential(nn.Identity(), nn.PReLU(2)).double()
    with torch.no_grad():
        net[1].weight.copy_(torch.tensor([0.25, -2.0]))
    return net


# (net, domain, regions, pieces): breakpoints counted by hand
KNOWN: dict[str, tuple[Callable[[], nn.Module], list, int, int]] = {
    "abs of one unit": (lambda: _on_identity(torch.abs, 1), [(-1, 2)], 2, 2),
    "-|x| as minimum(x, -x)": (lambda: _on_identity(lambda h: torch.minimum(h, -h), 1),
                               [(-1, 2)], 2, 2),
    "clamp(x, -1/2, 1/2)": (lambda: _on_identity(lambda h: h.clamp(-0.5, 0.5), 1), [(-1, 1)],
                            3, 3),
    "clamp(min=1/4)": (lambda: _on_identity(lambda h: torch.clamp(h, min=0.25), 1), [(-1, 1)],
                       2, 2),
    "relu6(4x): kinks at 0 and 3/2": (lambda: _on_identity(lambda h: F.relu6(4 * h), 1),
                                      [(-1, 2)], 3, 3),
    "maximum(x1, x2): the diagonal": (lambda: _on_identity(lambda h: torch.maximum(
        h[:, :1], h[:, 1:]), 2), [(-1, 1), (-1, 1)], 2, 2),
    "per-channel PReLU: the quadrants": (_prelu2, [(-1, 1), (-1, 1)], 4, 4),
    "abs then nearest upsampling: the same kinks": (lambda: _on_identity(
        lambda h: F.interpolate(torch.abs(h).unsqueeze(1), scale_factor=3).flatten(1), 2),
        [(-1, 1), (-1, 1)], 4, 4),
}


@pytest.mark.parametrize("name", list(KNOWN))
@pytest.mark.parametrize("exported", [False, True], ids=["module", "exported"])
def test_new_ops_have_their_known_counts(name: str, exported: bool) -> None:
    make, bounds, regions, pieces = KNOWN[name]
    net = make()
    shape = (len(bounds),)
    target = export(net, shape) if exported else net
    for engine in ("python", "compiled"):
        why = explain(capture(target, shape), as_domain(bounds))
        if engine == "compiled" and isinstance(why, str):
            continue
        cert = exactrelu.verify(target, bounds, progress=False, workers=1, engine=engine)
        assert (cert.num_regions, cert.num_pieces) == (regions, pieces), engine


def test_the_compiled_engine_takes_scalar_prelu_and_says_why_not_per_channel() -> None:
    box = as_domain([(-1, 1), (-1, 1)])
    scalar = nn.Sequential(nn.Linear(2, 2), nn.PReLU(), nn.Linear(2, 1))
    assert not isinstance(explain(capture(scalar, (2,)), box), str)
    why = explain(capture(_prelu2(), (2,)), box)
    assert isinstance(why, str) and "per unit" in why and "PReLU" in why


def test_tie_states_of_the_new_ops_are_the_documented_ones() -> None:
    """At a breakpoint: abs, PReLU and a one-sided clamp take the piece below it (state 0),
    clamp with both bounds the identity; maximum(a, b) = b + relu(a - b) has relu off."""
    x = [Fraction(0), Fraction(0)]
    cases = [(lambda h: torch.abs(h), [0, 0]), (lambda h: h.clamp(min=0), [0, 0]),
             (lambda h: h.clamp(max=0), [0, 0]), (lambda h: h.clamp(-1, 0), [1, 1]),
             (lambda h: torch.maximum(h[:, :1], h[:, 1:]), [0])]
    for fn, state in cases:
        prog = capture(_on_identity(fn, 2), (2,))
        _, states = prog.exact_run(exactrelu._exact.constant_map(x, (2,)))
        assert states[0].reshape(-1).tolist() == state
    _, states = capture(_prelu2(), (2,)).exact_run(exactrelu._exact.constant_map(x, (2,)))
    assert states[0].reshape(-1).tolist() == [0, 0]


# ----------------------------------------------------------------------------- the digest

class _Constants(nn.Module):
    """A parameter, a buffer and a tensor constant (lifted by torch.export), each read."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)
        self.register_buffer("shift", torch.tensor([0.25, -0.5]))
        self.scale = torch.tensor([2.0, 3.0], dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.fc(x) * self.scale + self.shift).sum(1, keepdim=True)


@pytest.mark.parametrize("tensor", ["fc.weight", "shift", "scale"])
def test_the_digest_covers_parameters_buffers_and_constants(tensor: str) -> None:
    net = _Constants().double()
    ep = export(nn.Sequential(nn.Identity(), _StripSum(net)), (2,))
    cert = exactrelu.verify(ep, [(-1, 1), (-1, 1)], progress=False)
    exactrelu.check(cert, ep)
    changed = export(nn.Sequential(nn.Identity(), _StripSum(net)), (2,))
    owners = {**dict(changed.state_dict), **dict(changed.constants)}
    key = next(k for k in owners if k.endswith(tensor))
    with torch.no_grad():
        owners[key].view(-1)[0] += 0.125
    with pytest.raises(exactrelu.CertificateError, match="digest"):
        exactrelu.check(cert, changed)


class _StripSum(nn.Module):
    """``_Constants`` without its sum (which has no rule): relu of an affine map."""

    def __init__(self, inner: _Constants) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        i = self.inner
        return torch.relu(i.fc(x) * i.scale + i.shift)


# ----------------------------------------------------------------------------- refusals

class _TwoOut(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.fc(x), torch.relu(x)


class _Unsupported(nn.Module):
    """Three ops without a rule, in one program: each is named."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        return torch.sin(h) + torch.sigmoid(h) * h + F.gelu(h)


def _train_bn() -> Any:
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.ReLU()).double().train()
    return torch.export.export(net, (torch.zeros(2, 2, dtype=torch.float64),))


def _edited() -> Any:
    gm = export(nn.Sequential(nn.Linear(2, 2), nn.ReLU()).double(), (2,)).module()
    relu = next(n for n in gm.graph.nodes if n.op == "call_function" and "relu" in str(n.target))
    relu.target = torch.ops.aten.abs.default  # the graph now says abs; forward still runs relu
    return gm


class _WritesParameters(nn.Module):
    """Forward writes into its own weight (twice): capture must refuse it without writing."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.fc.weight
        w += 1
        self.fc.bias.add_(1)
        return self.fc(x)


def _untouched_after_refusal() -> nn.Module:
    net = _WritesParameters()
    before = [t.clone() for t in net.parameters()]
    with pytest.raises(UnsupportedModelError):
        capture(net, (2,))
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    return net


def _forward_replaced() -> Any:
    gm = export(nn.Sequential(nn.Linear(2, 2), nn.ReLU()).double(), (2,)).module()
    type(gm).forward = lambda self, x: 2 * x  # its class is its own (GraphModule makes one each)
    return gm


REFUSED: dict[str, tuple[Callable[[], Any], tuple[str, ...]]] = {
    "writes into its parameters": (_untouched_after_refusal, ("writes into a tensor", "add_")),
    "two outputs": (lambda: export(_TwoOut().double(), (2,)), ("returns", "one tensor")),
    "ops without rules": (lambda: export(_Unsupported().double(), (2,)),
                          ("aten.sin", "aten.sigmoid", "aten.gelu", "aten.mul")),
    "batch norm in train mode": (_train_bn, ("train mode",)),
    "a graph edited without recompile": (_edited, ("not the code of its graph",)),
    "a forward replaced on its class": (_forward_replaced, ("not the code of its graph",)),
    "decomposed PReLU (where)": (lambda: export(nn.Sequential(nn.Linear(2, 2), nn.PReLU()).double(),
                                                (2,)).run_decompositions(),
                                 ("aten.where", "aten.gt")),
}


@pytest.mark.parametrize("name", list(REFUSED))
def test_what_the_exported_graph_front_end_cannot_model_is_refused(name: str) -> None:
    make, words = REFUSED[name]
    with pytest.raises(UnsupportedModelError) as info:
        capture(make(), (2,))
    message = str(info.value)
    assert all(w in message for w in words), message


def test_an_input_shape_that_is_not_the_programs_is_one_clear_error() -> None:
    ep = export(nn.Sequential(nn.Flatten(), nn.Linear(4, 1)).double(), (1, 2, 2))
    with pytest.raises(InvalidInputError, match=r"input_shape=\(1, 2, 2\)"):
        capture(ep, (4,))
    # verify takes the program's own input shape for a box of as many coordinates
    assert exactrelu.verify(ep, [(-1, 1)] * 4, progress=False).num_regions == 1
