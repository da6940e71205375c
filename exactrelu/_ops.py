"""The calls capture translates into modules: functions, tensor methods and ATen operators.

A captured graph (``torch.fx`` of an ``nn.Module``, or the ATen graph of a ``torch.export``
program) calls functions besides modules. Each table here says what one kind of call becomes,
always a module (or pseudo-module) that has a rule in :data:`exactrelu.rules.RULES`, so there is
one rule per computation however it is written (``F.relu``, ``torch.relu``, ``x.relu()`` and
``aten.relu.default`` all become ``nn.ReLU``):

- :data:`FUNCTIONAL_MODULES`: a call on one model tensor with constant arguments (numbers, or the
  model's own tensors) becomes a module built from the call's arguments (``aten.linear(x, w, b)``
  becomes an ``nn.Linear`` that reads the model's ``w`` and ``b``, not copies). Each factory takes
  the call's own arguments, the model tensor as :data:`MODEL`, so that positional and keyword
  constants land where torch puts them.
- :data:`ARITHMETIC`: ``+ - * /`` and unary minus (operator, torch, method and ATen forms).
- :data:`MAXIMUM` / :data:`MINIMUM`, :data:`CAT_OPS`; reshapes (:data:`VIEW_OPS`,
  :data:`FLATTEN_OPS`, :data:`UNSQUEEZE_OPS`, :data:`SQUEEZE_OPS`), copies that change nothing
  (:data:`IDENTITY_OPS`), calls that copy entries (:data:`GATHER_OPS`, named in
  :data:`exactrelu.rules.GATHER_FUNCTIONS`; :data:`PIECES_OPS` return several tensors) and
  :data:`FOLD_OPS`, computed once on constants as forward computes them (``w.t()``).
- :data:`METHODS`: a tensor method is its ``torch`` function (``x.abs()`` is ``torch.abs(x)``).
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from .rules import Abs, BatchNorm, Clamp, Mean, Pad, _aten

__all__ = ["MODEL", "FUNCTIONAL_MODULES", "ARITHMETIC", "MAXIMUM", "MINIMUM", "CAT_OPS",
           "VIEW_OPS", "FLATTEN_OPS", "UNSQUEEZE_OPS", "SQUEEZE_OPS", "IDENTITY_OPS",
           "GATHER_OPS", "PIECES_OPS", "FOLD_OPS", "FOLD_METHODS", "FOLD_ATTRIBUTES", "METHODS",
           "SIZE_OPS", "TUPLE_MODULES"]


class _Model:
    """The model tensor a call takes, as its factory sees it."""

    def __repr__(self) -> str:
        return "<model tensor>"


MODEL = _Model()


def _ops(*names: str) -> list[Any]:
    return [op for op in map(_aten, names) if op is not None]


def _tensor(t: Any, what: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{what} must be a tensor of the model (got {type(t).__name__})")
    return t


def _holding(module: nn.Module, **tensors: torch.Tensor | None) -> nn.Module:
    """``module`` (built on the meta device) reading the call's own tensors, the model's, in place
    of its parameters; in eval mode."""
    for name, t in tensors.items():
        module._parameters.pop(name, None)
        module._buffers[name] = t
    return module.eval()


def _tuple(v: Any) -> Any:
    return tuple(v) if isinstance(v, (list, tuple)) else v


# ----------------------------------------------------------------------------- factories

def _relu(input: Any, inplace: bool = False) -> nn.Module:
    return nn.ReLU(inplace)


def _relu_(input: Any) -> nn.Module:
    return nn.ReLU(inplace=True)


def _torch_relu(input: Any) -> nn.Module:
    return nn.ReLU()


def _relu6(input: Any, inplace: bool = False) -> nn.Module:
    return nn.ReLU6(inplace)


def _leaky_relu(input: Any, negative_slope: float = 0.01, inplace: bool = False) -> nn.Module:
    return nn.LeakyReLU(negative_slope, inplace)


def _leaky_relu_(input: Any, negative_slope: float = 0.01) -> nn.Module:
    return nn.LeakyReLU(negative_slope, inplace=True)


def _hardtanh(input: Any, min_val: float = -1.0, max_val: float = 1.0,
              inplace: bool = False) -> nn.Module:
    return nn.Hardtanh(min_val, max_val, inplace)


def _hardtanh_(input: Any, min_val: float = -1.0, max_val: float = 1.0) -> nn.Module:
    return nn.Hardtanh(min_val, max_val, inplace=True)


def _dropout(cls: type[nn.Module], training_default: bool) -> Callable[..., nn.Module]:
    def make(input: Any, p: float = 0.5, training: bool = training_default,
             inplace: bool = False) -> nn.Module:
        return cls(p, inplace).train(training)
    return make


def _aten_dropout(input: Any, p: float, train: bool | None) -> nn.Module:
    return nn.Dropout(p).train(bool(train))


def _abs(input: Any) -> Abs:
    return Abs()


def _bound(b: Any) -> float | None:
    if b is None:
        return None
    if isinstance(b, bool) or not isinstance(b, (int, float)):
        raise TypeError(f"clamp bounds must be numbers (got {type(b).__name__})")
    return float(b)


def _clamp(input: Any, min: Any = None, max: Any = None) -> Clamp:
    return Clamp(_bound(min), _bound(max))


def _clamp_min(input: Any, min: Any) -> Clamp:
    return Clamp(_bound(min), None)


def _clamp_max(input: Any, max: Any) -> Clamp:
    return Clamp(None, _bound(max))


def _prelu(input: Any, weight: Any) -> nn.Module:
    w = _tensor(weight, "PReLU's weight")
    return _holding(nn.PReLU(max(1, w.numel()), device="meta"), weight=w)


def _mean(input: Any, dim: Any = None, keepdim: bool = False, *, dtype: Any = None) -> Mean:
    if dtype is not None:
        raise ValueError("mean with a dtype")
    dims = () if dim is None else tuple(dim) if isinstance(dim, (list, tuple)) else (dim,)
    return Mean(tuple(int(d) for d in dims), bool(keepdim))


def _pad(input: Any, pad: Any, mode: str = "constant", value: float | None = None) -> Pad:
    return Pad(tuple(int(p) for p in pad), mode, 0.0 if value is None else float(value))


def _constant_pad_nd(input: Any, pad: Any, value: float = 0.0) -> Pad:
    return Pad(tuple(int(p) for p in pad), "constant", float(value))


def _interpolate(input: Any, size: Any = None, scale_factor: Any = None, mode: str = "nearest",
                 align_corners: bool | None = None, recompute_scale_factor: bool | None = None,
                 antialias: bool = False) -> nn.Module:
    if antialias:
        raise ValueError("antialias=True")
    return nn.Upsample(_tuple(size), _tuple(scale_factor), mode, align_corners,
                       recompute_scale_factor)


def _linear(input: Any, weight: Any, bias: Any = None) -> nn.Module:
    w = _tensor(weight, "the weight")
    if w.dim() != 2:
        raise ValueError(f"a weight of shape {tuple(w.shape)}")
    b = None if bias is None else _tensor(bias, "the bias")
    return _holding(nn.Linear(w.shape[1], w.shape[0], bias=b is not None, device="meta"),
                    weight=w, bias=b)


def _matmul(input: Any, other: Any) -> nn.Module:
    """``x @ W`` for a model tensor x and a constant matrix W: Linear with weight W^T."""
    if input is not MODEL:
        raise ValueError("a constant times the model's tensor (only x @ W is supported)")
    return _linear(input, _tensor(other, "the matrix").t())


def _addmm(input: Any, mat1: Any, mat2: Any, *, beta: float = 1, alpha: float = 1) -> nn.Module:
    """``input + mat1 @ mat2`` (how torch.export writes a Linear): the bias is ``input``."""
    if mat1 is not MODEL or beta != 1 or alpha != 1:
        raise ValueError("only bias + x @ W (beta = alpha = 1) is supported")
    bias = _tensor(input, "the bias")
    return _linear(MODEL, _tensor(mat2, "the matrix").t(), bias.reshape(-1))


def _conv_class(weight: torch.Tensor, transposed: bool) -> type[nn.Module]:
    dims = weight.dim() - 2
    table = ((nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d) if transposed
             else (nn.Conv1d, nn.Conv2d, nn.Conv3d))
    if not 1 <= dims <= 3:
        raise ValueError(f"a convolution weight of shape {tuple(weight.shape)}")
    return table[dims - 1]


def _conv(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
          dilation: Any = 1, groups: int = 1) -> nn.Module:
    w = _tensor(weight, "the weight")
    b = None if bias is None else _tensor(bias, "the bias")
    cls = _conv_class(w, False)
    m = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), _tuple(stride), _tuple(padding),
            _tuple(dilation), groups, bias=b is not None, device="meta")
    return _holding(m, weight=w, bias=b)


def _conv_transpose(input: Any, weight: Any, bias: Any = None, stride: Any = 1, padding: Any = 0,
                    output_padding: Any = 0, groups: int = 1, dilation: Any = 1) -> nn.Module:
    w = _tensor(weight, "the weight")
    b = None if bias is None else _tensor(bias, "the bias")
    cls = _conv_class(w, True)
    m = cls(w.shape[0], w.shape[1] * groups, tuple(w.shape[2:]), _tuple(stride), _tuple(padding),
            _tuple(output_padding), groups, b is not None, _tuple(dilation), device="meta")
    return _holding(m, weight=w, bias=b)


def _convolution(input: Any, weight: Any, bias: Any, stride: Any, padding: Any, dilation: Any,
                 transposed: bool, output_padding: Any, groups: int) -> nn.Module:
    if transposed:
        return _conv_transpose(input, weight, bias, stride, padding, output_padding, groups,
                               dilation)
    if any(int(p) for p in _tuple(output_padding)):
        raise ValueError("output_padding of a convolution that is not transposed")
    return _conv(input, weight, bias, stride, padding, dilation, groups)


def _batch_norm(input: Any, running_mean: Any, running_var: Any, weight: Any = None,
                bias: Any = None, training: bool = False, momentum: float = 0.1,
                eps: float = 1e-5) -> nn.Module:
    tensors = {"running_mean": running_mean, "running_var": running_var, "weight": weight,
               "bias": bias}
    for name, t in tensors.items():
        if t is not None:
            _tensor(t, name)
    m = _holding(BatchNorm(1, eps, momentum, affine=False, track_running_stats=False,
                           device="meta"), **tensors)
    m._buffers["num_batches_tracked"] = None
    return m.train(bool(training))


def _aten_batch_norm(input: Any, weight: Any, bias: Any, running_mean: Any, running_var: Any,
                     training: bool, momentum: float, eps: float,
                     cudnn_enabled: bool = False) -> nn.Module:
    return _batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)


def _batch_norm_no_training(input: Any, weight: Any, bias: Any, running_mean: Any,
                            running_var: Any, momentum: float, eps: float) -> nn.Module:
    return _batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)


def _max_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                dilation: Any = 1, ceil_mode: bool = False,
                return_indices: bool = False) -> nn.Module:
    return nn.MaxPool2d(_tuple(kernel_size), _tuple(stride) or None, _tuple(padding),
                        _tuple(dilation), return_indices, ceil_mode)


def _aten_max_pool2d(input: Any, kernel_size: Any, stride: Any = (), padding: Any = 0,
                     dilation: Any = 1, ceil_mode: bool = False) -> nn.Module:
    return _max_pool2d(input, kernel_size, stride, padding, dilation, ceil_mode)


def _avg_pool2d(input: Any, kernel_size: Any, stride: Any = None, padding: Any = 0,
                ceil_mode: bool = False, count_include_pad: bool = True,
                divisor_override: int | None = None) -> nn.Module:
    return nn.AvgPool2d(_tuple(kernel_size), _tuple(stride) or None, _tuple(padding), ceil_mode,
                        count_include_pad, divisor_override)


def _adaptive_avg_pool2d(input: Any, output_size: Any) -> nn.Module:
    return nn.AdaptiveAvgPool2d(_tuple(output_size))


FUNCTIONAL_MODULES: dict[Any, Callable[..., Any]] = {
    torch.relu: _torch_relu,
    F.relu: _relu,
    F.relu6: _relu6,
    F.leaky_relu: _leaky_relu,
    F.hardtanh: _hardtanh,
    F.dropout: _dropout(nn.Dropout, True),
    F.dropout1d: _dropout(nn.Dropout1d, True),
    F.dropout2d: _dropout(nn.Dropout2d, True),
    F.dropout3d: _dropout(nn.Dropout3d, True),
    F.alpha_dropout: _dropout(nn.AlphaDropout, False),
    F.feature_alpha_dropout: _dropout(nn.FeatureAlphaDropout, False),
    torch.abs: _abs,
    torch.absolute: _abs,
    torch.clamp: _clamp,
    torch.clip: _clamp,
    torch.clamp_min: _clamp_min,
    torch.clamp_max: _clamp_max,
    F.prelu: _prelu,
    torch.mean: _mean,
    F.pad: _pad,
    F.interpolate: _interpolate,
    F.linear: _linear,
    torch.matmul: _matmul,
    operator.matmul: _matmul,
    F.conv1d: _conv,
    F.conv2d: _conv,
    F.conv3d: _conv,
    F.conv_transpose1d: _conv_transpose,
    F.conv_transpose2d: _conv_transpose,
    F.conv_transpose3d: _conv_transpose,
    F.batch_norm: _batch_norm,
    F.max_pool2d: _max_pool2d,
    F.avg_pool2d: _avg_pool2d,
    F.adaptive_avg_pool2d: _adaptive_avg_pool2d,
}


def _aten_table(*pairs: tuple[str, Callable[..., Any]]) -> dict[Any, Callable[..., Any]]:
    """``{aten op: factory}`` from ("op.overload", factory) pairs (overloads this torch lacks are
    left out)."""
    return {op: factory for name, factory in pairs if (op := _aten(name)) is not None}


FUNCTIONAL_MODULES.update(_aten_table(
    ("relu.default", _torch_relu), ("relu_.default", _relu_), ("relu6.default", _relu6),
    ("leaky_relu.default", _leaky_relu), ("leaky_relu_.default", _leaky_relu_),
    ("hardtanh.default", _hardtanh), ("hardtanh_.default", _hardtanh_),
    ("abs.default", _abs), ("clamp.default", _clamp), ("clamp_min.default", _clamp_min),
    ("clamp_max.default", _clamp_max), ("prelu.default", _prelu),
    ("_prelu_kernel.default", _prelu), ("mean.dim", _mean), ("pad.default", _pad),
    ("constant_pad_nd.default", _constant_pad_nd), ("dropout.default", _aten_dropout),
    ("linear.default", _linear), ("matmul.default", _matmul), ("mm.default", _matmul),
    ("addmm.default", _addmm), ("conv1d.default", _conv), ("conv2d.default", _conv),
    ("conv3d.default", _conv), ("conv1d.padding", _conv), ("conv2d.padding", _conv),
    ("conv3d.padding", _conv), ("conv_transpose1d.default", _conv_transpose),
    ("conv_transpose2d.input", _conv_transpose), ("conv_transpose3d.input", _conv_transpose),
    ("convolution.default", _convolution), ("batch_norm.default", _aten_batch_norm),
    ("max_pool2d.default", _aten_max_pool2d), ("avg_pool2d.default", _avg_pool2d),
    ("adaptive_avg_pool2d.default", _adaptive_avg_pool2d),
    ("_adaptive_avg_pool2d.default", _adaptive_avg_pool2d)))

# Ops returning several tensors of which only the first is the layer's output (the others are
# statistics or indices, refused if used): the factory and the position of the output.
TUPLE_MODULES: dict[Any, tuple[Callable[..., Any], int]] = {
    op: (factory, 0) for op, factory in _aten_table(
        ("_native_batch_norm_legit_no_training.default", _batch_norm_no_training),
        ("max_pool2d_with_indices.default", _aten_max_pool2d)).items()}

# ----------------------------------------------------------------------------- other calls

ARITHMETIC: dict[Any, str] = {
    operator.add: "add", torch.add: "add", operator.iadd: "add_",
    operator.sub: "sub", torch.sub: "sub", torch.subtract: "sub", operator.isub: "sub_",
    torch.rsub: "rsub",
    operator.mul: "mul", torch.mul: "mul", torch.multiply: "mul",
    operator.truediv: "div", torch.div: "div", torch.divide: "div", torch.true_divide: "div",
    operator.neg: "neg", torch.neg: "neg", torch.negative: "neg",
    **{op: kind for kind, names in (
        ("add", ("add.Tensor", "add.Scalar")), ("add_", ("add_.Tensor",)),
        ("sub", ("sub.Tensor", "sub.Scalar")), ("sub_", ("sub_.Tensor",)),
        ("rsub", ("rsub.Scalar", "rsub.Tensor")), ("mul", ("mul.Tensor", "mul.Scalar")),
        ("div", ("div.Tensor", "div.Scalar")), ("neg", ("neg.default",)))
       for op in _ops(*names)},
}
MAXIMUM = (torch.maximum, torch.max, *_ops("maximum.default"))
MINIMUM = (torch.minimum, torch.min, *_ops("minimum.default"))
CAT_OPS = (torch.cat, torch.concat, torch.concatenate, *_ops("cat.default", "concat.default"))
VIEW_OPS = (torch.reshape, *_ops("view.default", "reshape.default", "_unsafe_view.default"))
FLATTEN_OPS = (torch.flatten, *_ops("flatten.using_ints"))
UNSQUEEZE_OPS = (torch.unsqueeze, *_ops("unsqueeze.default"))
SQUEEZE_OPS = (torch.squeeze, *_ops("squeeze.dim", "squeeze.dims", "squeeze.default"))
IDENTITY_OPS = (torch.clone, *_ops("clone.default", "alias.default", "detach.default",
                                   "lift_fresh_copy.default"))
SIZE_OPS = tuple(_ops("sym_size.int"))

GATHER_OPS: dict[Any, str] = {
    torch.narrow: "torch.narrow", torch.select: "torch.select", torch.permute: "torch.permute",
    torch.transpose: "torch.transpose", torch.swapaxes: "torch.transpose",
    torch.flip: "torch.flip", torch.roll: "torch.roll", torch.movedim: "torch.movedim",
    **{op: name for name in (
        "aten.slice.Tensor", "aten.select.int", "aten.narrow.default", "aten.permute.default",
        "aten.transpose.int", "aten.flip.default", "aten.roll.default", "aten.expand.default",
        "aten.repeat.default", "aten.movedim.int", "aten.upsample_nearest1d.vec",
        "aten.upsample_nearest2d.vec", "aten.upsample_nearest3d.vec",
        "aten.upsample_nearest1d.default", "aten.upsample_nearest2d.default",
        "aten.upsample_nearest3d.default", "aten._upsample_nearest_exact1d.vec",
        "aten._upsample_nearest_exact2d.vec", "aten._upsample_nearest_exact3d.vec",
        "aten.reflection_pad1d.default", "aten.reflection_pad2d.default",
        "aten.reflection_pad3d.default", "aten.replication_pad1d.default",
        "aten.replication_pad2d.default", "aten.replication_pad3d.default")
       if (op := _aten(name)) is not None},
}
# The names of the arguments after the tensor, for calls that may pass them by keyword (an ATen
# op's come from its schema).
ARGUMENT_NAMES: dict[Any, tuple[str, ...]] = {
    torch.split: ("split_size_or_sections", "dim"), torch.chunk: ("chunks", "dim"),
    torch.unbind: ("dim",), torch.narrow: ("dim", "start", "length"),
    torch.select: ("dim", "index"), torch.permute: ("dims",), torch.transpose: ("dim0", "dim1"),
    torch.swapaxes: ("axis0", "axis1"), torch.flip: ("dims",), torch.roll: ("shifts", "dims"),
    torch.movedim: ("source", "destination"),
}
PIECES_OPS: dict[Any, str] = {
    torch.split: "torch.split", torch.chunk: "torch.chunk", torch.unbind: "torch.unbind",
    **{op: name for name in ("aten.split.Tensor", "aten.split_with_sizes.default",
                             "aten.chunk.default", "aten.unbind.int")
       if (op := _aten(name)) is not None},
}

# Calls computed on constants (the model's tensors) at capture, as forward computes them:
# reshapes and copies, arithmetic, the transposes torch.export writes for Linear (w.t()) and a
# weight norm's weight (which capture reads as computed in nn.Modules too, parametrized). None
# writes its input (an in-place op on a parameter would change the model). Tensor methods of the
# same names (w.t(), w.view(...)) and these attributes (w.T) are folded too.
FOLD_METHODS = frozenset(("t", "view", "reshape", "contiguous", "clone", "detach", "permute",
                          "transpose", "unsqueeze", "squeeze", "flatten", "expand", "repeat",
                          "flip", "narrow", "select", "double", "float", "neg", "mul", "div",
                          "add", "sub", "size", "dim"))
FOLD_ATTRIBUTES = frozenset(("T", "mT"))
FOLD_OPS = frozenset((*(f for f, kind in ARITHMETIC.items() if not kind.endswith("_")),
                      *VIEW_OPS, *FLATTEN_OPS, *UNSQUEEZE_OPS, *SQUEEZE_OPS,
                      *IDENTITY_OPS, *GATHER_OPS, torch.t, *_ops(
                          "t.default", "_to_copy.default", "to.dtype", "contiguous.default",
                          "_weight_norm.default")))

# A tensor method is the torch function of the same name, its tensor the first argument.
METHODS: dict[str, Any] = {
    **{name: getattr(torch, name) for name in (
        "abs", "absolute", "clamp", "clip", "clamp_min", "clamp_max", "mean", "chunk", "split",
        "unbind", "neg", "negative", "sub", "subtract", "mul", "multiply", "div", "divide",
        "true_divide", "add", "relu", "flatten", "permute", "transpose", "swapaxes",
        "unsqueeze", "squeeze", "narrow", "select", "flip", "roll", "movedim", "maximum",
        "minimum", "matmul", "t", "reshape", "clone", "rsub")},
    "__matmul__": torch.matmul,
}
