"""Every registered rule, fuzzed: float maps, Jacobians and exact maps against torch and Fractions.

The registry walk iterates :data:`exactrelu.rules.RULES` itself, so a rule registered without a
case in :data:`CASES` makes ``test_every_rule_has_a_case`` (and its parametrized tests) fail.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, strategies as st
from torch import nn

import exactrelu
from exactrelu import _exact, capture, rules
from exactrelu.capture import _PendingReshape
from exactrelu.rules import RULES, Add, Cat, Reshape, find_rule

SWITCH_MARGIN = 1e-6


@dataclass
class Case:
    net: nn.Module
    input_shape: tuple[int, ...]


# ------------------------------------------------------------------------ random configurations

def _seeded(draw: Callable) -> torch.Generator:
    return torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))


def _randomize(net: nn.Module, gen: torch.Generator) -> nn.Module:
    """float64, eval mode, every parameter and floating buffer redrawn from ``gen``."""
    net = net.double().eval()
    with torch.no_grad():
        for name, t in itertools.chain(net.named_parameters(), net.named_buffers()):
            if not t.is_floating_point():
                continue
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=gen, dtype=t.dtype) * 2 + 0.1)
            else:
                t.copy_(torch.randn(t.shape, generator=gen, dtype=t.dtype))
    return net


def _shape(draw: Callable, max_dims: int = 3, max_side: int = 4) -> tuple[int, ...]:
    return tuple(draw(st.lists(st.integers(1, max_side), min_size=1, max_size=max_dims)))


def linear_case(draw: Callable) -> Case:
    n_in, n_out = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    # Linear also acts on the last dim of (c, n_in)
    lead = draw(st.sampled_from([(), (2,), (1, 3)]))
    net = nn.Linear(n_in, n_out, bias=draw(st.booleans()))
    return Case(_randomize(net, _seeded(draw)), (*lead, n_in))


def _conv_common(draw: Callable, dims: int) -> tuple[nn.Module, tuple[int, ...]]:
    groups = draw(st.integers(1, 2))
    c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
    k = tuple(draw(st.integers(1, 3)) for _ in range(dims))
    dil = tuple(draw(st.integers(1, 2)) for _ in range(dims))
    if draw(st.booleans()):
        stride: Any = 1
        padding: Any = draw(st.sampled_from(["same", "valid"]))
    else:
        stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        padding = tuple(draw(st.integers(0, 2)) for _ in range(dims))
    side = tuple(d * (kk - 1) + 1 + draw(st.integers(0, 3)) for kk, d in zip(k, dil, strict=True))
    cls = (nn.Conv1d, nn.Conv2d, nn.Conv3d)[dims - 1]
    net = cls(c_in, c_out, k, stride=stride, padding=padding, dilation=dil, groups=groups,
              bias=draw(st.booleans()))
    return _randomize(net, _seeded(draw)), (c_in, *side)


def conv1d_case(draw: Callable) -> Case:
    return Case(*_conv_common(draw, 1))


def conv2d_case(draw: Callable) -> Case:
    return Case(*_conv_common(draw, 2))


def conv3d_case(draw: Callable) -> Case:
    return Case(*_conv_common(draw, 3))


def conv_transpose_case(dims: int) -> Callable[[Callable], Case]:
    def case(draw: Callable) -> Case:
        groups = draw(st.integers(1, 2))
        c_in, c_out = groups * draw(st.integers(1, 2)), groups * draw(st.integers(1, 2))
        k = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        stride = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        dil = tuple(draw(st.integers(1, 2)) for _ in range(dims))
        padding = tuple(draw(st.integers(0, d * (kk - 1) // 2))
                        for kk, d in zip(k, dil, strict=True))
        out_pad = tuple(draw(st.integers(0, max(s, d) - 1))
                        for s, d in zip(stride, dil, strict=True))
        cls = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)[dims - 1]
        net = cls(c_in, c_out, k, stride, padding, out_pad, groups, draw(st.booleans()), dil)
        side = tuple(draw(st.integers(1, 3 if dims == 3 else 4)) for _ in range(dims))
        return Case(_randomize(net, _seeded(draw)), (c_in, *side))

    return case


def batchnorm1d_case(draw: Callable) -> Case:
    c = draw(st.integers(1, 4))
    net = nn.BatchNorm1d(c, eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
                         affine=draw(st.booleans()))
    shape = draw(st.sampled_from([(c,), (c, draw(st.integers(1, 4)))]))
    return Case(_randomize(net, _seeded(draw)), shape)


def batchnorm2d_case(draw: Callable) -> Case:
    c = draw(st.integers(1, 3))
    net = nn.BatchNorm2d(c, eps=draw(st.sampled_from([1e-5, 1e-3, 0.1])),
                         affine=draw(st.booleans()))
    return Case(_randomize(net, _seeded(draw)),
                (c, draw(st.integers(1, 4)), draw(st.integers(1, 4))))


def batchnorm3d_case(draw: Callable) -> Case:
    c = draw(st.integers(1, 2))
    net = nn.BatchNorm3d(c, eps=draw(st.sampled_from([1e-5, 0.1])), affine=draw(st.booleans()))
    return Case(_randomize(net, _seeded(draw)), (c, *(draw(st.integers(1, 3)) for _ in range(3))))


class _FunctionalBatchNorm(nn.Module):
    """F.batch_norm with the module's own tensors (weight and bias optional)."""

    def __init__(self, c: int, affine: bool) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(c))
        self.register_buffer("var", torch.ones(c))
        self.w = nn.Parameter(torch.ones(c)) if affine else None
        self.b = nn.Parameter(torch.zeros(c)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.mean, self.var, self.w, self.b, False, 0.1, 1e-3)


def functional_batchnorm_case(draw: Callable) -> Case:
    c = draw(st.integers(1, 3))
    net = _randomize(_FunctionalBatchNorm(c, draw(st.booleans())), _seeded(draw))
    with torch.no_grad():
        net.var.abs_().add_(0.1)
    return Case(net, (c, *(draw(st.integers(1, 3)) for _ in range(draw(st.integers(0, 2))))))


def avgpool2d_case(draw: Callable) -> Case:
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    net = nn.AvgPool2d(k, stride, padding, ceil_mode=draw(st.booleans()),
                       count_include_pad=draw(st.booleans()),
                       divisor_override=draw(st.sampled_from([None, None, 1, 2, 5])))
    side = (k[0] + draw(st.integers(0, 3)), k[1] + draw(st.integers(0, 3)))
    return Case(net.double().eval(), (draw(st.integers(1, 2)), *side))


def adaptive_avgpool2d_case(draw: Callable) -> Case:
    out = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    net = nn.AdaptiveAvgPool2d(out)
    return Case(net.double().eval(),
                (draw(st.integers(1, 2)), draw(st.integers(1, 6)), draw(st.integers(1, 6))))


def maxpool2d_case(draw: Callable) -> Case:
    k = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = (draw(st.integers(0, k[0] // 2)), draw(st.integers(0, k[1] // 2)))
    dil = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    net = nn.MaxPool2d(k, stride, padding, dilation=dil, ceil_mode=draw(st.booleans()))
    side = tuple(d * (kk - 1) + 1 + draw(st.integers(0, 3)) for kk, d in zip(k, dil, strict=True))
    return Case(net.double().eval(), (draw(st.integers(1, 2)), *side))


def flatten_case(draw: Callable) -> Case:
    shape = _shape(draw)
    nd = len(shape) + 1  # with the batch dimension
    start = draw(st.integers(1, nd - 1))
    end = draw(st.sampled_from([-1, draw(st.integers(start, nd - 1))]))
    return Case(nn.Flatten(start, end), shape)


def identity_case(draw: Callable) -> Case:
    return Case(nn.Identity(), _shape(draw))


def dropout_case(cls: type) -> Callable[[Callable], Case]:
    """Cases for one dropout class (each has its own forward and its own registration)."""
    def case(draw: Callable) -> Case:
        dims = {nn.Dropout1d: 2, nn.Dropout2d: 3, nn.Dropout3d: 4, nn.AlphaDropout: 1}.get(cls, 2)
        shape = tuple(draw(st.integers(1, 3)) for _ in range(dims))
        return Case(cls(draw(st.sampled_from([0.0, 0.3, 0.9]))).eval(), shape)

    return case


class _Flat(nn.Module):
    def __init__(self, how: str) -> None:
        super().__init__()
        self.how = how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "view":
            return x.view(x.size(0), -1)
        if self.how == "reshape":
            return x.reshape(x.shape[0], -1)
        if self.how == "method":
            return x.flatten(1)
        return torch.flatten(x, 1)


def reshape_case(draw: Callable) -> Case:
    return Case(_Flat(draw(st.sampled_from(["view", "reshape", "method", "function"]))),
                _shape(draw))


class _AddNet(nn.Module):
    def __init__(self, n: int, how: str) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(n, n), nn.Linear(n, n)
        self.how = how

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = self.a(x), self.b(x)
        if self.how == "operator":
            return a + b
        if self.how == "torch.add":
            return torch.add(a, b)
        if self.how == "method":
            return a.add(b)
        if self.how == "input":
            return a + x
        a += b
        return a


def add_case(draw: Callable) -> Case:
    n = draw(st.integers(1, 4))
    how = draw(st.sampled_from(["operator", "torch.add", "method", "input", "inplace"]))
    return Case(_randomize(_AddNet(n, how), _seeded(draw)), (draw(st.integers(1, 3)), n))


class _CatNet(nn.Module):
    def __init__(self, n: int, m1: int, m2: int, dim: int, fn: Callable, kw: bool) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(n, m1), nn.Linear(n, m2)
        self.dim, self.fn, self.kw = dim, fn, kw

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kw:
            return self.fn([self.a(x), self.b(x), x], dim=self.dim)
        return self.fn([self.a(x), self.b(x)], self.dim)


def cat_case(draw: Callable) -> Case:
    c, n = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    dim = draw(st.sampled_from([1, 2, -1, -2]))
    kw = draw(st.booleans())
    if dim in (2, -1):  # along the features: sizes may differ
        m1, m2 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    else:
        m1 = m2 = n if kw else draw(st.integers(1, 3))
    net = _CatNet(n, m1, m2, dim, draw(st.sampled_from([torch.cat, torch.concat])), kw)
    return Case(_randomize(net, _seeded(draw)), (c, n))


def relu_case(draw: Callable) -> Case:
    return Case(nn.ReLU(), _shape(draw))


def leaky_relu_case(draw: Callable) -> Case:
    slope = draw(st.one_of(st.sampled_from([0.0, 0.01, 1.0, -1.0]),
                           st.floats(-3, 3, allow_nan=False, allow_infinity=False)))
    return Case(nn.LeakyReLU(slope), _shape(draw))


class _Call(nn.Module):
    """``fn(h, x, module)`` with ``h = Linear(x)`` (on the last dimension): a function, method or
    operator call on affine maps of the input; ``fn`` may read the module's buffers."""

    def __init__(self, fn: Callable, shape: tuple[int, ...], **tensors: torch.Tensor) -> None:
        super().__init__()
        self.fn = fn
        self.lin = nn.Linear(shape[-1], shape[-1])
        for name, t in tensors.items():
            self.register_buffer(name, t)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.lin(x), x, self)


def _call_case(draw: Callable, forms: dict[str, Callable], shape: tuple[int, ...] | None = None,
               **tensors: torch.Tensor) -> Case:
    """A :class:`_Call` of one of ``forms`` (drawn), its Linear and buffers drawn at random."""
    shape = shape or _shape(draw)
    form = draw(st.sampled_from(sorted(forms)), label="form")
    return Case(_randomize(_Call(forms[form], shape, **tensors), _seeded(draw)), shape)


def _nonzero(draw: Callable) -> float:
    return draw(st.sampled_from([-1.0, 1.0])) * draw(st.floats(1e-2, 10, allow_nan=False))


def sub_case(draw: Callable) -> Case:
    return _call_case(draw, {"operator": lambda h, x, m: h - x,
                             "torch.sub": lambda h, x, m: torch.sub(h, x),
                             "method": lambda h, x, m: h.sub(x),
                             "torch.rsub": lambda h, x, m: torch.rsub(h, x),
                             "broadcast": lambda h, x, m: h - h.mean(-1, keepdim=True)})


def mul_case(draw: Callable) -> Case:
    c = draw(st.floats(-3, 3, allow_nan=False))
    shape = _shape(draw)
    scale = torch.randn(draw(st.sampled_from([shape[-1:], (1,) * len(shape), ()])))
    return _call_case(draw, {"x * c": lambda h, x, m: h * c, "c * x": lambda h, x, m: c * h,
                             "-x": lambda h, x, m: -h, "torch.neg": lambda h, x, m: torch.neg(h),
                             "method": lambda h, x, m: h.mul(c),
                             "buffer": lambda h, x, m: h * m.scale}, shape, scale=scale)


def div_case(draw: Callable) -> Case:
    c = _nonzero(draw)
    shape = _shape(draw)
    scale = torch.randn(shape[-1:]).sign() * (torch.rand(shape[-1:]) + 0.5)
    return _call_case(draw, {"x / c": lambda h, x, m: h / c,
                             "torch.div": lambda h, x, m: torch.div(h, c),
                             "method": lambda h, x, m: h.div(c),
                             "buffer": lambda h, x, m: h / m.scale}, shape, scale=scale)


def add_constant_case(draw: Callable) -> Case:
    c = draw(st.floats(-3, 3, allow_nan=False))
    shape = _shape(draw)
    return _call_case(draw, {"x + c": lambda h, x, m: h + c, "c + x": lambda h, x, m: c + h,
                             "x - c": lambda h, x, m: h - c, "c - x": lambda h, x, m: c - h,
                             "torch.add": lambda h, x, m: torch.add(h, c),
                             "rsub": lambda h, x, m: torch.rsub(h, c),
                             "buffer": lambda h, x, m: h + m.shift},
                      shape, shift=torch.randn(shape[-1:]))


def mean_case(draw: Callable) -> Case:
    shape = _shape(draw)
    dims = draw(st.lists(st.integers(1, len(shape)), min_size=1, unique=True))
    dims = [d - len(shape) - 1 if draw(st.booleans()) else d for d in dims]  # negative forms
    keep = draw(st.booleans())
    return _call_case(draw, {"method": lambda h, x, m: h.mean(dims, keepdim=keep),
                             "torch.mean": lambda h, x, m: torch.mean(h, dims, keep)}, shape)


def _pad_amounts(draw: Callable, sides: tuple[int, ...], mode: str) -> tuple[int, ...]:
    """Two amounts per padded dimension (last dimension first, as F.pad takes them)."""
    most = {"reflect": lambda n: n - 1, "circular": lambda n: n}.get(mode, lambda n: 2)
    return tuple(draw(st.integers(0, most(n))) for n in reversed(sides) for _ in range(2))


def pad_case(draw: Callable) -> Case:
    mode = draw(st.sampled_from(["constant", "reflect", "replicate", "circular"]))
    dims = draw(st.integers(1, 2))
    shape = (draw(st.integers(1, 2)), *(draw(st.integers(2, 4)) for _ in range(dims)))
    pad = _pad_amounts(draw, shape[1:], mode)
    value = draw(st.floats(-2, 2, allow_nan=False))
    fill = value if mode == "constant" else None
    return _call_case(draw, {"F.pad": lambda h, x, m: F.pad(h, pad, mode, fill)}, shape)


def pad_module_case(base: type) -> Callable[[Callable], Case]:
    """Cases for the padding modules of one mode (their common base has the rule)."""
    def case(draw: Callable) -> Case:
        classes = [c for c in vars(nn).values() if isinstance(c, type) and issubclass(c, base)
                   and c.__name__[-2] in "123"]
        cls = draw(st.sampled_from(sorted(classes, key=lambda c: c.__name__)))
        dims = int(cls.__name__[-2])
        shape = (draw(st.integers(1, 2)), *(draw(st.integers(2, 5 - dims)) for _ in range(dims)))
        mode = ("reflect" if issubclass(cls, nn.modules.padding._ReflectionPadNd) else
                "circular" if "Circular" in cls.__name__ else "constant")
        pad = _pad_amounts(draw, shape[1:], mode)
        value = [draw(st.floats(-2, 2, allow_nan=False))] if "Constant" in cls.__name__ else []
        net = nn.Sequential(nn.Linear(shape[-1], shape[-1]), cls(pad, *value)).double()
        return Case(net, shape)

    return case


def gather_case(draw: Callable) -> Case:
    shape = (draw(st.integers(2, 3)), draw(st.integers(2, 4)))
    c, n = shape
    k = draw(st.integers(1, c))
    forms = {
        "slice": lambda h, x, m: h[:, 1:],
        "step": lambda h, x, m: h[..., ::2],
        "index": lambda h, x, m: h[:, -1],
        "chunk": lambda h, x, m: h.chunk(k, dim=1)[-1],
        "split": lambda h, x, m: torch.split(h, k, 1)[0],
        "unbind": lambda h, x, m: h.unbind(2)[n - 1],
        "permute": lambda h, x, m: h.permute(0, 2, 1),
        "transpose": lambda h, x, m: h.transpose(1, 2),
        "flip": lambda h, x, m: h.flip(-1),
        "narrow": lambda h, x, m: h.narrow(2, 1, n - 1),
        "expand": lambda h, x, m: h[..., :1].expand(-1, c, 3),
        "max of halves": lambda h, x, m: torch.maximum(h[:, :1], h[:, 1:2]),
    }
    return _call_case(draw, forms, shape)


def upsample_case(draw: Callable) -> Case:
    dims = draw(st.integers(1, 3))
    shape = (draw(st.integers(1, 2)), *(draw(st.integers(1, 3)) for _ in range(dims)))
    mode = draw(st.sampled_from(["nearest", "nearest-exact"]))
    if draw(st.booleans()):
        size, scale = None, draw(st.sampled_from([1.0, 2.0, 3.0, 1.5]))
    else:
        size, scale = tuple(draw(st.integers(1, 5)) for _ in range(dims)), None
    if draw(st.booleans()):
        up = nn.Upsample(size, scale, mode)
        return Case(nn.Sequential(nn.Linear(shape[-1], shape[-1]), up).double(), shape)
    return _call_case(draw, {"F.interpolate": lambda h, x, m: F.interpolate(h, size, scale, mode)},
                      shape)


def hardtanh_case(draw: Callable) -> Case:
    lo = draw(st.floats(-2, 1, allow_nan=False))
    hi = lo + draw(st.floats(1e-3, 3, allow_nan=False))
    kind = draw(st.sampled_from(["Hardtanh", "ReLU6", "F.relu6"]))
    shape = _shape(draw)
    if kind == "Hardtanh":
        return Case(nn.Hardtanh(lo, hi), shape)
    if kind == "ReLU6":
        net = nn.Sequential(nn.Linear(shape[-1], shape[-1]), nn.ReLU6())
        return Case(_randomize(net, _seeded(draw)), shape)
    return _call_case(draw, {"F.relu6": lambda h, x, m: F.relu6(4 * h)}, shape)


def prelu_case(draw: Callable) -> Case:
    shape = _shape(draw)
    net = nn.PReLU(draw(st.sampled_from([1, shape[0]])))
    return Case(_randomize(net, _seeded(draw)), shape)


def abs_case(draw: Callable) -> Case:
    return _call_case(draw, {"torch.abs": lambda h, x, m: torch.abs(h),
                             "method": lambda h, x, m: h.abs(),
                             "torch.absolute": lambda h, x, m: torch.absolute(h)})


def clamp_case(draw: Callable) -> Case:
    lo = draw(st.floats(-2, 1, allow_nan=False))
    hi = lo + draw(st.floats(1e-3, 3, allow_nan=False))
    return _call_case(draw, {"both": lambda h, x, m: torch.clamp(h, lo, hi),
                             "min": lambda h, x, m: h.clamp(min=lo),
                             "max": lambda h, x, m: h.clamp(max=hi),
                             "clip": lambda h, x, m: torch.clip(h, lo, hi),
                             "clamp_min": lambda h, x, m: torch.clamp_min(h, lo)})


CASES: dict[Any, Callable[[Callable], Case]] = {
    nn.Linear: linear_case,
    nn.Conv1d: conv1d_case,
    nn.Conv2d: conv2d_case,
    nn.Conv3d: conv3d_case,
    nn.ConvTranspose1d: conv_transpose_case(1),
    nn.ConvTranspose2d: conv_transpose_case(2),
    nn.ConvTranspose3d: conv_transpose_case(3),
    nn.BatchNorm1d: batchnorm1d_case,
    nn.BatchNorm2d: batchnorm2d_case,
    nn.BatchNorm3d: batchnorm3d_case,
    rules.BatchNorm: functional_batchnorm_case,
    nn.AvgPool2d: avgpool2d_case,
    nn.AdaptiveAvgPool2d: adaptive_avgpool2d_case,
    nn.MaxPool2d: maxpool2d_case,
    nn.Flatten: flatten_case,
    nn.Identity: identity_case,
    nn.Dropout: dropout_case(nn.Dropout),
    nn.Dropout1d: dropout_case(nn.Dropout1d),
    nn.Dropout2d: dropout_case(nn.Dropout2d),
    nn.Dropout3d: dropout_case(nn.Dropout3d),
    nn.AlphaDropout: dropout_case(nn.AlphaDropout),
    nn.FeatureAlphaDropout: dropout_case(nn.FeatureAlphaDropout),
    Reshape: reshape_case,
    _PendingReshape: reshape_case,
    Add: add_case,
    Cat: cat_case,
    nn.ReLU: relu_case,
    nn.LeakyReLU: leaky_relu_case,
    nn.Hardtanh: hardtanh_case,
    rules.Sub: sub_case,
    rules.Mul: mul_case,
    rules.Div: div_case,
    rules.AddConstant: add_constant_case,
    rules.Mean: mean_case,
    rules.Pad: pad_case,
    **{base: pad_module_case(base) for base in (
        nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
        nn.modules.padding._ReplicationPadNd, nn.CircularPad1d, nn.CircularPad2d,
        nn.CircularPad3d)},
    rules.Gather: gather_case,
    nn.Upsample: upsample_case,
    nn.PReLU: prelu_case,
    rules.Abs: abs_case,
    rules.Clamp: clamp_case,
}

REGISTRY = list(RULES)


def _key_id(key: Any) -> str:
    return getattr(key, "__name__", repr(key))


def test_every_rule_has_a_case() -> None:
    missing = [_key_id(k) for k in RULES if k not in CASES]
    assert not missing, f"rules without a test case in CASES: {missing}"


# ----------------------------------------------------------------------------- helpers

@dataclass
class Drawn:
    case: Case
    prog: exactrelu.Program
    x: torch.Tensor


def _draw(data: st.DataObject, key: Any) -> Drawn:
    if key not in CASES:
        pytest.fail(f"rule {_key_id(key)} is registered but has no test case in CASES")
    case = data.draw(st.composite(lambda draw: CASES[key](draw))(), label=f"case {_key_id(key)}")
    prog = capture(case.net, case.input_shape)
    rule = RULES[key]
    assert any(nd.rule is rule or type(nd.module) is key for nd in prog.nodes), \
        f"the case for {_key_id(key)} does not exercise its rule:\n{prog}"
    seed = data.draw(st.integers(0, 2**31 - 1), label="input seed")
    scale = data.draw(st.sampled_from([1.0, 1e-3, 1e3]), label="input scale")
    x = torch.randn((2, *case.input_shape), generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64) * scale
    return Drawn(case, prog, x)


def _switching_values(prog: exactrelu.Program, x: torch.Tensor) -> list[torch.Tensor]:
    collect: list = []
    prog.float_run(exactrelu.FloatMap(x.new_zeros((x.shape[0], 0, *prog.input_shape)), x),
                   collect=collect)
    return [m.b for m in collect]


def _reconstruct(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    n_in = x.dim() - 1
    w = weight.reshape(*weight.shape[: weight.dim() - n_in], -1)
    xf = x.reshape(x.shape[0], *([1] * (bias.dim() - 1)), -1)
    return (w * xf).sum(-1) + bias


def _rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    scale = max(b.abs().max().item() if b.numel() else 0.0, 1e-300)
    return (a - b).abs().max().item() / scale if b.numel() else 0.0


# ----------------------------------------------------------------------------- the registry walk

@pytest.mark.parametrize("key", REGISTRY, ids=_key_id)
@given(data=st.data())
def test_float_maps_reproduce_forward(key: Any, data: st.DataObject) -> None:
    d = _draw(data, key)
    with torch.no_grad():
        y = d.case.net(d.x)
    g = exactrelu.affine_maps(d.case.net, d.x)
    assert g.bias.shape == y.shape
    recon = _reconstruct(g.weight, g.bias, d.x)
    zero_ok = y.abs().max().item() == 0.0 and recon.abs().max().item() == 0.0
    assert zero_ok or _rel_err(recon, y) <= 1e-9
    assert _rel_err(d.prog.forward(d.x), y) <= 1e-9 or y.abs().max().item() == 0.0


@pytest.mark.parametrize("key", REGISTRY, ids=_key_id)
@given(data=st.data())
def test_float_weight_is_the_jacobian(key: Any, data: st.DataObject) -> None:
    d = _draw(data, key)
    for s in _switching_values(d.prog, d.x):
        assume(s.numel() == 0 or s.abs().min().item() > SWITCH_MARGIN)
    g = exactrelu.affine_maps(d.case.net, d.x)
    for i in range(d.x.shape[0]):
        jac = torch.func.jacrev(lambda xi: d.case.net(xi.unsqueeze(0)).squeeze(0))(d.x[i])
        assert jac.shape == g.weight[i].shape
        torch.testing.assert_close(g.weight[i], jac, rtol=1e-12, atol=1e-12)


def _near_points(data: st.DataObject, x0: torch.Tensor, count: int) -> list[list[Fraction]]:
    base = [Fraction(v) for v in x0.reshape(-1).tolist()]
    pts = []
    for i in range(count):
        q = data.draw(st.integers(10**10, 10**10 + 10**4), label=f"denominator {i}")
        r = data.draw(st.lists(st.integers(-10, 10), min_size=len(base), max_size=len(base)),
                      label=f"numerators {i}")
        pts.append([b + Fraction(ri, q) for b, ri in zip(base, r, strict=True)])
    return pts


@pytest.mark.parametrize("key", REGISTRY, ids=_key_id)
@given(data=st.data())
def test_exact_map_equals_exact_forward(key: Any, data: st.DataObject) -> None:
    d = _draw(data, key)
    for s in _switching_values(d.prog, d.x):
        assume(s.numel() == 0 or s.abs().min().item() > SWITCH_MARGIN)
    g = exactrelu.affine_maps(d.case.net, d.x)
    pattern = [p[0] for p in g.pattern]
    m0 = _exact.identity_map(d.prog.in_dim, d.prog.input_shape)
    switching: list = []
    out_map, _used = d.prog.exact_run(m0, pattern, collect=switching)
    assert out_map.k == d.prog.in_dim and out_map.n == math.prod(d.prog.output_shape)
    for pt in _near_points(data, d.x[0], 3):
        sw_values: list = []
        values, states = d.prog.exact_run(_exact.constant_map(pt, d.prog.input_shape),
                                          collect=sw_values)
        assert len(states) == len(pattern)
        for got, want in zip(states, pattern, strict=True):
            assert torch.equal(got.reshape(want.shape), want), \
                "the rational point left the float cell"
        assert out_map.at(pt) == values.values()
        for sw_map, sw_val in zip(switching, sw_values, strict=True):
            assert sw_map.at(pt) == sw_val.values()


# ----------------------------------------------------------------------------- MaxPool ties

def _first_max_positions(x: torch.Tensor, k: int, s: int) -> list[list[int]]:
    """Flat input index (per sample) of the first maximum, row-major, of every window; no
    padding."""
    n, c, h, w = x.shape
    out = []
    for b in range(n):
        row = []
        for ch in range(c):
            for i in range(0, h - k + 1, s):
                for j in range(0, w - k + 1, s):
                    best, best_pos = None, None
                    for u in range(k):
                        for v in range(k):
                            val = x[b, ch, i + u, j + v].item()
                            if best is None or val > best:
                                best, best_pos = val, (ch * h + i + u) * w + j + v
                    row.append(best_pos)
        out.append(row)
    return out


@given(data=st.data())
def test_maxpool_ties_pick_the_first_maximum(data: st.DataObject) -> None:
    k = data.draw(st.integers(2, 3), label="kernel")
    s = data.draw(st.integers(1, k), label="stride")
    c = data.draw(st.integers(1, 2))
    h, w = k + data.draw(st.integers(0, 3)), k + data.draw(st.integers(0, 3))
    # Few distinct small integers: ties among the maxima of windows are frequent and exact.
    values = data.draw(st.lists(st.integers(-2, 2), min_size=2 * c * h * w, max_size=2 * c * h * w))
    x = torch.tensor(values, dtype=torch.float64).reshape(2, c, h, w)
    net = nn.MaxPool2d(k, s)
    g = exactrelu.affine_maps(net, x)
    want = _first_max_positions(x, k, s)
    assert [p.reshape(-1).tolist() for p in g.pattern[0]] == want
    torch.testing.assert_close(_reconstruct(g.weight, g.bias, x), net(x), rtol=0, atol=0)
    prog = capture(net, (c, h, w))
    for b in range(2):
        exact_values, states = prog.exact_run(
            _exact.constant_map([Fraction(v) for v in x[b].reshape(-1).tolist()], (c, h, w)))
        assert states[0].reshape(-1).tolist() == want[b], "exact states break ties differently"
        assert [float(v) for v in exact_values.values()] == net(x[b:b + 1]).reshape(-1).tolist()


def test_maxpool_tie_example_by_hand() -> None:
    x = torch.tensor([[[[1.0, 3.0], [3.0, 3.0]]]], dtype=torch.float64)
    g = exactrelu.affine_maps(nn.MaxPool2d(2), x)
    assert g.pattern[0].reshape(-1).tolist() == [1]
    assert g.weight.reshape(-1).tolist() == [0.0, 1.0, 0.0, 0.0]


def test_maxpool_window_with_one_real_position_in_a_later_channel() -> None:
    # padding=1, stride 2 on 3x3: the corner window sees only input (0, 0) of its channel.
    x = torch.arange(18, dtype=torch.float64).reshape(1, 2, 3, 3) * -1.0
    net = nn.MaxPool2d(2, stride=2, padding=1)
    prog = capture(net, (2, 3, 3))
    vals, states = prog.exact_run(
        _exact.constant_map([Fraction(v) for v in x.reshape(-1).tolist()], (2, 3, 3)))
    assert [float(v) for v in vals.values()] == net(x).reshape(-1).tolist()
    assert states[0].reshape(-1).tolist()[4] == 9


# ----------------------------------------------------------------- exactness against Fractions

def _fractions(A: Any) -> list[list[Fraction]]:
    return [[Fraction(int(v.p), int(v.q)) for v in row] for row in A.tolist()]


def test_exact_linear_matches_fractions() -> None:
    torch.manual_seed(0)
    net = nn.Linear(4, 3).double()
    aff = find_rule(nn.Linear).exact_affine(net, (4,))
    w, b = net.weight.tolist(), net.bias.tolist()
    assert _fractions(aff.A) == [[Fraction(v) for v in row] for row in w]
    assert [Fraction(int(v.p), int(v.q)) for v in aff.a] == [Fraction(v) for v in b]


def test_exact_conv2d_matches_fractions() -> None:
    torch.manual_seed(1)
    cin, cout, h, w, k, s, p = 2, 3, 5, 4, 3, 2, 1
    net = nn.Conv2d(cin, cout, k, stride=s, padding=p).double()
    oh, ow = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
    W = net.weight.detach()
    A = [[Fraction(0)] * (cin * h * w) for _ in range(cout * oh * ow)]
    for o in range(cout):
        for i in range(oh):
            for j in range(ow):
                row = (o * oh + i) * ow + j
                for ci in range(cin):
                    for u in range(k):
                        for v in range(k):
                            r, q = i * s - p + u, j * s - p + v
                            if 0 <= r < h and 0 <= q < w:
                                A[row][(ci * h + r) * w + q] += Fraction(W[o, ci, u, v].item())
    a = [Fraction(net.bias[o].item()) for o in range(cout) for _ in range(oh * ow)]
    aff = find_rule(nn.Conv2d).exact_affine(net, (cin, h, w))
    assert _fractions(aff.A) == A
    assert [Fraction(int(v.p), int(v.q)) for v in aff.a] == a


def test_exact_conv1d_matches_fractions() -> None:
    torch.manual_seed(2)
    cin, cout, length, k, dil = 2, 2, 7, 3, 2
    net = nn.Conv1d(cin, cout, k, dilation=dil, bias=False).double()
    ol = length - dil * (k - 1)
    W = net.weight.detach()
    A = [[Fraction(0)] * (cin * length) for _ in range(cout * ol)]
    for o in range(cout):
        for i in range(ol):
            for ci in range(cin):
                for u in range(k):
                    A[o * ol + i][ci * length + i + dil * u] += Fraction(W[o, ci, u].item())
    aff = find_rule(nn.Conv1d).exact_affine(net, (cin, length))
    assert _fractions(aff.A) == A
    assert all(v == 0 for v in aff.a)


@pytest.mark.parametrize("count_include_pad", [True, False])
def test_exact_avgpool_matches_fractions(count_include_pad: bool) -> None:
    c, h, w, k, p = 2, 4, 5, 3, 1
    net = nn.AvgPool2d(k, stride=1, padding=p, count_include_pad=count_include_pad)
    oh, ow = h + 2 * p - k + 1, w + 2 * p - k + 1
    A = [[Fraction(0)] * (c * h * w) for _ in range(c * oh * ow)]
    for ch in range(c):
        for i in range(oh):
            for j in range(ow):
                taps = [(i - p + u, j - p + v) for u in range(k) for v in range(k)]
                real = [(r, q) for r, q in taps if 0 <= r < h and 0 <= q < w]
                div = k * k if count_include_pad else len(real)
                for r, q in real:
                    A[(ch * oh + i) * ow + j][(ch * h + r) * w + q] += Fraction(1, div)
    aff = find_rule(nn.AvgPool2d).exact_affine(net, (c, h, w))
    got = _fractions(aff.A)
    assert got == A
    assert Fraction(1, 9) in {v for row in got for v in row}


def test_exact_adaptive_avgpool_matches_fractions() -> None:
    h, w, oh, ow = 5, 3, 3, 2
    net = nn.AdaptiveAvgPool2d((oh, ow))
    A = [[Fraction(0)] * (h * w) for _ in range(oh * ow)]
    for i in range(oh):
        r0, r1 = (i * h) // oh, -((-(i + 1) * h) // oh)
        for j in range(ow):
            q0, q1 = (j * w) // ow, -((-(j + 1) * w) // ow)
            for r in range(r0, r1):
                for q in range(q0, q1):
                    A[i * ow + j][r * w + q] = Fraction(1, (r1 - r0) * (q1 - q0))
    assert _fractions(find_rule(nn.AdaptiveAvgPool2d).exact_affine(net, (1, h, w)).A) == A


def test_exact_batchnorm_is_the_float64_fold() -> None:
    bn = nn.BatchNorm1d(3).double().eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0]))
        bn.running_var.copy_(torch.tensor([1.0, 4.0, 0.25]))
        bn.weight.copy_(torch.tensor([2.0, -1.0, 0.5]))
        bn.bias.copy_(torch.tensor([0.0, 1.0, -3.0]))
    aff = find_rule(nn.BatchNorm1d).exact_affine(bn, (3,))
    scale = [2.0 / math.sqrt(1.0 + bn.eps), -1.0 / math.sqrt(4.0 + bn.eps),
             0.5 / math.sqrt(0.25 + bn.eps)]
    shift = [0.0 - 0.5 * scale[0], 1.0 + 1.0 * scale[1], -3.0 - 2.0 * scale[2]]
    got = _fractions(aff.A)
    for i in range(3):
        assert got[i][i] == Fraction(scale[i]) \
            or abs(float(got[i][i]) - scale[i]) <= 2e-16 * abs(scale[i])
        assert all(got[i][j] == 0 for j in range(3) if j != i)
        assert abs(float(Fraction(int(aff.a[i].p), int(aff.a[i].q))) - shift[i]) \
            <= 1e-15 * max(1.0, abs(shift[i]))


def test_functional_leaky_relu_and_hardtanh_keep_their_constants() -> None:
    class Net(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return F.hardtanh(F.leaky_relu(x, 0.25), -0.5, 2.0)

    x = torch.tensor([[-3.0, -1.0, 0.5, 4.0]], dtype=torch.float64)
    g = exactrelu.affine_maps(Net(), x)
    assert torch.diagonal(g.weight[0]).tolist() == [0.0, 0.25, 1.0, 0.0]
    assert g.bias[0].tolist() == [-0.5, 0.0, 0.0, 2.0]
    assert exactrelu.exact_forward(Net(), [Fraction(-1, 3)] * 4, (4,)) == [Fraction(-1, 12)] * 4

