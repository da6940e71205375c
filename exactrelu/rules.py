"""Layer rules: how each operation maps local affine maps, in float and in exact arithmetic.

The registry :data:`RULES` is the only extension point. It maps a module type (looked up through
the class hierarchy) or a functional op (``operator.add``, ``torch.cat``) to a :class:`Rule`.

Float side: a batch of local affine maps is a :class:`FloatMap` ``(W, b)`` with ``W`` of shape
``(N, k, *shape)`` and ``b`` of shape ``(N, *shape)``: entry ``i`` of sample ``n`` is
``sum_j W[n, j, i] t[n, j] + b[n, i]``. With ``k == 0`` the map is just a batch of values.

Exact side: :class:`~exactrelu._exact.ExactMap`, one map in rationals for one activation pattern.

A piecewise rule (ReLU, LeakyReLU, PReLU, Hardtanh and ReLU6, abs, clamp, MaxPool2d) also
reports its *switching functions*: affine functions of its input whose signs decide its state. The
state of every output entry is an integer (ReLU: 0 off / 1 on; LeakyReLU and PReLU: 0 negative
slope / 1 identity; abs: 0 slope -1 / 1 slope 1; Hardtanh and a clamp with both bounds: 0 clamped
low / 1 identity / 2 clamped high; a clamp with one bound: 0 at or below it / 1 above;
MaxPool2d: the position of the maximum inside its window).

Ties (a switching function exactly zero) never matter for values, since the maps agree there;
for labels the rule is: an op with one breakpoint takes the piece below it (ReLU off, LeakyReLU
and PReLU the negative slope, abs slope -1, ``clamp(min=a)`` clamped, ``clamp(max=b)`` the
identity), Hardtanh and a clamp with both bounds the identity at either bound, MaxPool2d the
first maximum in row-major window order.

Pseudo-modules (:class:`Add`, :class:`Sub`, :class:`Mul`, :class:`Div`, :class:`AddConstant`,
:class:`Mean`, :class:`Pad`, :class:`Gather`, :class:`Abs`, :class:`Clamp`, ...) stand for calls
that are not modules; :mod:`exactrelu._ops` says which call becomes which.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast, overload

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from . import _exact
from ._exact import ExactAffine, ExactMap, fmpq, fmpq_mat
from .errors import UnsupportedModelError

__all__ = ["FloatMap", "Rule", "AffineRule", "PiecewiseRule", "ElementwiseRule", "GatherRule",
           "RULES", "register_rule", "find_rule", "rule_conflict"]


class FloatMap(NamedTuple):
    """A batch of local affine maps: ``W`` (N, k, *shape), ``b`` (N, *shape)."""

    W: torch.Tensor
    b: torch.Tensor

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.b.shape[1:])

    def at(self, t: torch.Tensor) -> torch.Tensor:
        """Values at points ``t`` of shape (N, k)."""
        if self.W.shape[1] == 0:
            return self.b
        flatW = self.W.reshape(self.W.shape[0], self.W.shape[1], -1)
        return self.b + torch.einsum("nki,nk->ni", flatW, t.to(flatW.dtype)).reshape(self.b.shape)


def map_linear(fn: Callable[[torch.Tensor], torch.Tensor], W: torch.Tensor) -> torch.Tensor:
    """Apply a linear ``fn`` (acting on (B, *shape)) to every column of ``W`` (N, k, *shape)."""
    n, k = W.shape[0], W.shape[1]
    if k == 0:
        out = fn(torch.zeros((1, *W.shape[2:]), dtype=W.dtype, device=W.device))
        return out.new_zeros((n, 0, *out.shape[1:]))
    out = fn(W.reshape(n * k, *W.shape[2:]))
    return out.reshape(n, k, *out.shape[1:])


class Rule:
    """Base of every rule. Subclass :class:`AffineRule` or :class:`PiecewiseRule`."""

    piecewise: bool = False
    #: Names of the tensors the rule reads from its module (``getattr(module, name)``), or None for
    #: every parameter and buffer of the module and its submodules. The network digest hashes
    #: exactly these, and capture refuses any that is not a finite real floating-point tensor (so a
    #: rule for a module holding, say, an integer index it does not read names what it reads).
    reads: tuple[str, ...] | None = None

    def check(self, module: Any) -> str | None:
        """A reason this module cannot be handled as configured, or None."""
        return None

    def tensors(self, module: Any) -> list[tuple[str, Any]]:
        """``(name, value)`` of every tensor the rule reads from ``module``, as the module's own
        forward sees it (a parametrized tensor as its parametrization computes it); a value may be
        None (``bias=None``) or, on a broken module, something that is not a tensor."""
        if not isinstance(module, nn.Module):
            return []
        if self.reads is not None:
            return [(n, getattr(module, n, None)) for n in self.reads]
        return [(f"{prefix}{n}", t) for prefix, sub in _tensor_owners(module)
                for n, t in own_tensors(sub)]

    def float_forward(self, module: Any, inputs: list[FloatMap]) -> FloatMap:
        raise NotImplementedError

    def exact_forward(self, module: Any, inputs: list[ExactMap],
                      out_shape: tuple[int, ...]) -> ExactMap:
        raise NotImplementedError

    def notes(self, module: Any) -> list[str]:
        """Where this op is not taken exactly as written (e.g. BatchNorm folded in float64)."""
        return []


class AffineRule(Rule):
    """An affine op ``y = L(x) + a`` with one input.

    Subclasses give ``linear(module, x)`` (the op without its constant) and ``constant(module, x0)``
    (the op applied to zeros); the exact matrix is derived from ``linear`` applied to the identity
    basis in float64, which is exact for ops whose matrix entries are single parameters (Linear,
    Conv, reshapes). Ops with other entries override :meth:`exact_affine`.
    """

    def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def constant(self, module: Any, zeros: torch.Tensor) -> torch.Tensor:
        return self.linear(module, zeros)

    def float_forward(self, module: Any, inputs: list[FloatMap]) -> FloatMap:
        (m,) = inputs
        W = map_linear(lambda x: self.linear(module, x), m.W)
        b = self.linear(module, m.b) + self.constant(module, torch.zeros_like(m.b[:1]))
        return FloatMap(W, b)

    def exact_affine(self, module: Any, in_shape: tuple[int, ...]) -> ExactAffine:
        n_in = math.prod(in_shape)
        basis = torch.eye(n_in, dtype=torch.float64).reshape(n_in, *in_shape)
        cols = self.linear(module, basis).reshape(n_in, -1)
        const = self.constant(module, torch.zeros((1, *in_shape), dtype=torch.float64)).reshape(-1)
        n_out = cols.shape[1]
        entries = self.matrix_entries(module, cols.T.contiguous())
        return ExactAffine(fmpq_mat(n_out, n_in, entries), _exact.tensor_to_fmpq_list(const))

    def matrix_entries(self, module: Any, A: torch.Tensor) -> list[fmpq]:
        """Exact entries of the float64 matrix ``A`` (row-major); overridden for 1/k entries."""
        return _exact.tensor_to_fmpq_list(A)

    def exact_forward(self, module: Any, inputs: list[ExactMap],
                      out_shape: tuple[int, ...]) -> ExactMap:
        (m,) = inputs
        cache = _exact_cache(module)
        key = (type(self).__name__, m.shape)
        if key not in cache:
            cache[key] = self.exact_affine(module, m.shape)
        return cache[key].apply(m, out_shape)


class ReshapeRule(AffineRule):
    """Ops that only move entries around (Flatten, Identity, Dropout in eval, view to flat)."""

    def float_forward(self, module: Any, inputs: list[FloatMap]) -> FloatMap:
        (m,) = inputs
        return FloatMap(map_linear(lambda x: self.linear(module, x), m.W), self.linear(module, m.b))

    def exact_forward(self, module: Any, inputs: list[ExactMap],
                      out_shape: tuple[int, ...]) -> ExactMap:
        (m,) = inputs
        return m.reshape(out_shape)


class PiecewiseRule(Rule):
    """A piecewise-linear op with states; see the module docstring."""

    piecewise = True
    #: True when the cells of the op's states are exactly the cells of the arrangement of its
    #: switching hyperplanes (each sign vector of a non-empty cell is one state, as for
    #: elementwise units); the exact layer then builds all children of a cell at once.
    sign_cells = False

    def num_switching(self, module: Any, in_shape: tuple[int, ...]) -> int:
        raise NotImplementedError

    def switching(self, module: Any, m: FloatMap) -> FloatMap:
        """Float maps of the switching functions, shape (N, k, S) / (N, S)."""
        raise NotImplementedError

    def exact_switching(self, module: Any, m: ExactMap) -> ExactMap:
        raise NotImplementedError

    def state(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        """States (int64, shape (N, *out_shape)) at input values ``x`` (N, *in_shape)."""
        raise NotImplementedError

    def state_from_signs(self, module: Any, signs: torch.Tensor,
                         in_shape: tuple[int, ...]) -> torch.Tensor:
        """States (N, *out_shape) from strict signs (N, S) (+1/-1) of the switching functions."""
        raise NotImplementedError

    def cell_constraints(self, module: Any, state: torch.Tensor,
                         in_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """For one sample's ``state`` (out_shape): (indices, signs) of the switching functions whose
        strict signs define the cell of this state: ``sign * s_index(x) > 0``."""
        raise NotImplementedError

    def apply(self, module: Any, m: FloatMap, state: torch.Tensor) -> FloatMap:
        raise NotImplementedError

    def exact_apply(self, module: Any, m: ExactMap, state: torch.Tensor) -> ExactMap:
        raise NotImplementedError

    def float_forward(self, module: Any, inputs: list[FloatMap],
                      t: torch.Tensor | None = None) -> FloatMap:
        (m,) = inputs
        x = m.at(t) if t is not None else m.b
        return self.apply(module, m, self.state(module, x))

    # Plain-Python forms of the two sign queries, used one cell at a time by the exact layer.
    # Defaults go through the tensor versions; elementwise rules override them with a fast path.
    def state_tuple(self, module: Any, signs: Sequence[int],
                    in_shape: tuple[int, ...]) -> tuple[int, ...]:
        """``state_from_signs`` for one sample, signs and states as flat tuples."""
        st = self.state_from_signs(module, torch.tensor([list(signs)], dtype=torch.int64), in_shape)
        return tuple(st.reshape(-1).tolist())

    def constraint_list(self, module: Any, state: Sequence[int], in_shape: tuple[int, ...],
                        out_shape: tuple[int, ...]) -> list[tuple[int, int]]:
        """``cell_constraints`` for one flat state tuple, as a list of (index, sign)."""
        idx, sg = self.cell_constraints(
            module, torch.tensor(list(state), dtype=torch.int64).reshape(out_shape), in_shape)
        return list(zip(idx.tolist(), sg.tolist(), strict=True))


RULES: dict[Any, Rule] = {}


def register_rule(key: Any, rule: Rule | None = None) -> Any:
    """Register ``rule`` for a module type or functional op; usable as a class decorator.

    Exact maps a rule builds are cached per module object and rebuilt when anything
    :func:`module_state` sees changes (tensors of the module and its submodules, attributes of
    plain types); a rule must read nothing else from its module.

    >>> class Double(nn.Module):
    ...     def forward(self, x): return 2 * x
    >>> @register_rule(Double)
    ... class DoubleRule(AffineRule):
    ...     def linear(self, module, x): return 2 * x
    """
    if rule is not None:
        RULES[key] = rule
        return rule

    def deco(cls: type[Rule]) -> type[Rule]:
        RULES[key] = cls()
        return cls

    return deco


def find_rule(key: Any) -> Rule | None:
    """The rule for a module type or functional op.

    A module type without a rule of its own takes the rule of its nearest registered ancestor,
    unless it redefines a method that ancestor's forward runs (:func:`rule_conflict` says which):
    a rule describes the forward of the class it was registered for, not a subclass's.
    """
    if isinstance(key, type):
        owner = registered_class(key)
        if owner is None or overrides(key, owner):
            return None
        return RULES[owner]
    try:
        return RULES.get(key)
    except TypeError:
        return None


def registered_class(cls: type) -> type | None:
    """The nearest class in ``cls``'s hierarchy (``cls`` first) with a registered rule."""
    for c in cls.__mro__:
        if c in RULES:
            return c
    return None


def rule_conflict(cls: type) -> str | None:
    """Why ``cls`` does not inherit the rule of its nearest registered ancestor, or None."""
    owner = registered_class(cls)
    if owner is None:
        return None
    names = overrides(cls, owner)
    if not names:
        return None
    return (f"redefines {', '.join(names)} of {owner.__module__}.{owner.__qualname__}, so the rule "
            f"of {owner.__qualname__} does not describe what it computes; register a rule for "
            f"{cls.__qualname__} itself (exactrelu.register_rule) or use {owner.__qualname__}")


# How a call reaches forward, and the methods a subclass may redefine without changing what
# forward computes (construction, printing, initialisation and state loading).
_CALL_PATH = frozenset({"forward", "__call__", "_call_impl", "_wrapped_call_impl", "__getattr__",
                        "__getattribute__"})
_HARMLESS = frozenset({"__init__", "__repr__", "extra_repr", "reset_parameters",
                       "reset_running_stats", "__setstate__", "__getstate__", "__deepcopy__",
                       "_load_from_state_dict"})


@functools.lru_cache(maxsize=4096)
def overrides(cls: type, base: type) -> tuple[str, ...]:
    """The methods ``base``'s forward may run (forward, nn.Module's call path, every other method
    of ``base``'s classes below ``nn.Module``) that ``cls`` resolves to something else; empty
    when ``cls`` computes what ``base`` does."""
    if cls is base:
        return ()
    names = set(_CALL_PATH)
    for c in base.__mro__:
        if c is nn.Module or c is object:
            break
        names |= {k for k, v in vars(c).items()
                  if callable(v) or isinstance(v, (staticmethod, classmethod, property))}
    static = inspect.getattr_static
    return tuple(sorted(n for n in names - _HARMLESS
                        if static(cls, n, None) is not static(base, n, None)))


def parametrizations(module: nn.Module) -> dict[str, nn.Module]:
    """The parametrization (a ParametrizationList) of each parametrized tensor of ``module``."""
    if not parametrize.is_parametrized(module):
        return {}
    return dict(cast(nn.ModuleDict, module.parametrizations).items())


def own_tensors(module: nn.Module) -> list[tuple[str, Any]]:
    """``module``'s own parameters, then buffers, then parametrized tensors (each group by name),
    with the values its forward reads: a parametrized tensor as its parametrization computes it."""
    names = sorted(module._parameters) + sorted(module._buffers)
    names += sorted(parametrizations(module))
    return [(n, getattr(module, n)) for n in names]


def _tensor_owners(module: nn.Module, prefix: str = "") -> Any:
    """``(prefix, module)`` for ``module`` and its submodules, without the internals of a
    parametrization (whose results :func:`own_tensors` reads instead)."""
    yield prefix, module
    skip = "parametrizations" if parametrize.is_parametrized(module) else None
    for name, child in module.named_children():
        if name != skip:
            yield from _tensor_owners(child, f"{prefix}{name}.")


_CACHE_ATTR = "_exactrelu_exact_cache"


def exact_cache(module: Any) -> dict:
    """The cache of exact matrices of ``module`` (a dict private to it, emptied when its
    parameters change): engines keep what they derive from a module's exact values here."""
    return _exact_cache(module)


def _exact_cache(module: Any) -> dict:
    # Exact matrices are cached outside the module (keyed by id) so the model is left untouched;
    # the cache is dropped when the module's own tensors are replaced or changed in place.
    stamp = _state_stamp(module)
    store = _MODULE_CACHE.get(id(module))
    # new, id reused, or parameters changed
    if store is None or store[1] is not module or store[2] != stamp:
        store = ({}, module, stamp)
        _MODULE_CACHE[id(module)] = store
    return store[0]


def _state_stamp(module: Any) -> str:
    """A digest of everything a rule may read from ``module``: the values of its tensors (versions
    miss writes through .data; pointers are reused) and its plain attributes (a scale, a kernel
    size, the training flag), its submodules' included."""
    if not isinstance(module, nn.Module):
        return ""
    h = hashlib.sha256()
    for part in module_state(module):
        h.update(part)
    return h.hexdigest()


_PLAIN = (bool, int, float, complex, str, bytes, type(None), frozenset, torch.Size, torch.dtype)


def module_state(module: nn.Module) -> Any:
    """Bytes that change when anything a rule may read from ``module`` changes: for the module
    and each submodule, every parameter and buffer (name, dtype, shape and the raw values), and
    every public attribute that is a tensor (its raw values), of a plain type (numbers, strings:
    their ``repr``, exact for floats) or a list or tuple of these. Attributes of other types
    (functions, arbitrary objects) are not seen: a rule that reads one must not be cached on it.
    A parametrized tensor is seen as computed, besides its parametrization's own tensors."""
    for name, sub in module.named_modules():
        for tname, t in itertools.chain(sub.named_parameters(recurse=False),
                                        sub.named_buffers(recurse=False)):
            yield from _value_bytes(f"{name}.{tname}", t)
        if parametrize.is_parametrized(sub):
            for pname in sorted(sub.parametrizations.keys()):
                yield from _value_bytes(f"{name}.{pname}", getattr(sub, pname))
        for k, v in sorted(vars(sub).items()):
            if not k.startswith("_"):
                yield from _value_bytes(f"{name}.{k}", v)


def _value_bytes(label: str, v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        yield f"{label}:{v.dtype}{tuple(v.shape)};".encode()
        yield v.detach().to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
    elif isinstance(v, (list, tuple)) and not isinstance(v, torch.Size):
        yield f"{label}:{type(v).__name__}{len(v)};".encode()
        for i, item in enumerate(v):
            yield from _value_bytes(f"{label}[{i}]", item)
    elif isinstance(v, _PLAIN):
        yield f"{label}={v!r};".encode()


_MODULE_CACHE: dict[int, tuple[dict, Any, str]] = {}


def clear_exact_cache() -> None:
    """Forget cached exact matrices (after changing parameters in place)."""
    _MODULE_CACHE.clear()


@overload
def _p(t: torch.Tensor, like: torch.Tensor) -> torch.Tensor: ...
@overload
def _p(t: None, like: torch.Tensor) -> None: ...


def _p(t: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
    return None if t is None else t.detach().to(device=like.device, dtype=like.dtype)


# ----------------------------------------------------------------------------- affine rules


@register_rule(nn.Linear)
class LinearRule(AffineRule):
    reads = ("bias", "weight")

    def linear(self, module: nn.Linear, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, _p(module.weight, x))

    def constant(self, module: nn.Linear, zeros: torch.Tensor) -> torch.Tensor:
        out = F.linear(zeros, _p(module.weight, zeros))
        return out if module.bias is None else out + _p(module.bias, zeros)

    def exact_affine(self, module: nn.Linear, in_shape: tuple[int, ...]) -> ExactAffine:
        if len(in_shape) != 1:
            return super().exact_affine(module, in_shape)
        w = module.weight
        A = fmpq_mat(w.shape[0], w.shape[1], _exact.tensor_to_fmpq_list(w))
        a = _exact.tensor_to_fmpq_list(module.bias) if module.bias is not None \
            else [fmpq(0)] * w.shape[0]
        return ExactAffine(A, a)


class _ConvRule(AffineRule):
    conv: Callable[..., torch.Tensor]
    reads = ("bias", "weight")

    def check(self, module: nn.Module) -> str | None:
        if module.padding_mode != "zeros":
            return f"padding_mode={module.padding_mode!r} (only 'zeros' is supported)"
        return None

    def args(self, module: Any) -> tuple:
        """The convolution's arguments after weight and bias, in the order ``conv`` takes them."""
        return module.stride, module.padding, module.dilation, module.groups

    def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        return type(self).conv(x, _p(module.weight, x), None, *self.args(module))

    def constant(self, module: Any, zeros: torch.Tensor) -> torch.Tensor:
        return type(self).conv(zeros, _p(module.weight, zeros), _p(module.bias, zeros),
                               *self.args(module))


class _ConvTransposeRule(_ConvRule):
    """ConvTranspose1d/2d/3d: every entry of its matrix is one weight (an output position takes
    each input position through at most one kernel tap), so the float64 basis images are exact."""

    def args(self, module: Any) -> tuple:
        return module.stride, module.padding, module.output_padding, module.groups, module.dilation


# One rule per convolution class, each with torch's function of its dimension.
for _cls, _base, _conv in (
        (nn.Conv1d, _ConvRule, F.conv1d), (nn.Conv2d, _ConvRule, F.conv2d),
        (nn.Conv3d, _ConvRule, F.conv3d),
        (nn.ConvTranspose1d, _ConvTransposeRule, F.conv_transpose1d),
        (nn.ConvTranspose2d, _ConvTransposeRule, F.conv_transpose2d),
        (nn.ConvTranspose3d, _ConvTransposeRule, F.conv_transpose3d)):
    register_rule(_cls, type(f"{_cls.__name__}Rule", (_base,), {"conv": staticmethod(_conv)})())


_NO_RUNNING_STATS = "BatchNorm without running statistics (track_running_stats=False)"


def folded_batchnorm(module: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """BatchNorm in eval mode as ``y = scale * x + shift``, folded once in float64.

    ``scale = gamma / sqrt(running_var + eps)`` and ``shift = beta - running_mean * scale`` are
    computed in float64 (sqrt is not rational); from then on these float64 numbers are the exact
    parameters of the network.
    """
    if module.running_mean is None or module.running_var is None:
        raise UnsupportedModelError(_NO_RUNNING_STATS)
    var = module.running_var.detach().to("cpu", torch.float64)
    mean = module.running_mean.detach().to("cpu", torch.float64)
    scale = 1.0 / torch.sqrt(var + module.eps)
    if module.weight is not None:
        scale = module.weight.detach().to("cpu", torch.float64) * scale
    shift = -mean * scale
    if module.bias is not None:
        shift = shift + module.bias.detach().to("cpu", torch.float64)
    return scale, shift


class _BatchNormRule(AffineRule):
    reads = ("bias", "weight", "running_mean", "running_var")

    def check(self, module: nn.Module) -> str | None:
        if module.training:
            return ("BatchNorm in train mode (call net.eval() first: train-mode BatchNorm uses "
                    "batch statistics)")
        if module.running_mean is None or module.running_var is None:
            return _NO_RUNNING_STATS
        return None

    def _folded(self, module: Any, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scale, shift = folded_batchnorm(module)
        view = (1, -1) + (1,) * (like.dim() - 2)
        return (scale.to(like.device, like.dtype).reshape(view),
                shift.to(like.device, like.dtype).reshape(view))

    def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        return x * self._folded(module, x)[0]

    def constant(self, module: Any, zeros: torch.Tensor) -> torch.Tensor:
        return zeros + self._folded(module, zeros)[1]

    def notes(self, module: Any) -> list[str]:
        return ["BatchNorm folded in float64: scale = gamma/sqrt(var+eps), shift = beta - "
                "mean*scale; the float64 results are taken as exact parameters"]


@register_rule(nn.BatchNorm1d)
class BatchNorm1dRule(_BatchNormRule):
    pass


@register_rule(nn.BatchNorm2d)
class BatchNorm2dRule(_BatchNormRule):
    pass


@register_rule(nn.BatchNorm3d)
class BatchNorm3dRule(_BatchNormRule):
    pass


class BatchNorm(nn.modules.batchnorm._BatchNorm):
    """Pseudo-module for a functional batch norm (``F.batch_norm``, ``aten.batch_norm``) of any
    number of dimensions: torch's BatchNorm without the check of the input's dimensions."""

    def _check_input_dim(self, input: torch.Tensor) -> None:
        pass


register_rule(BatchNorm, _BatchNormRule())


class _PoolAverageRule(AffineRule):
    """Average pooling: matrix entries are 1/k; recovered exactly from float64 (asserted)."""

    reads = ()

    def matrix_entries(self, module: Any, A: torch.Tensor) -> list[fmpq]:
        out: list[fmpq] = []
        for v in A.reshape(-1).tolist():
            if v == 0.0:
                out.append(fmpq(0))
                continue
            k = round(1.0 / v)
            if k <= 0 or 1.0 / k != v:
                raise UnsupportedModelError(
                    f"average pooling entry {v!r} is not 1/k for an integer k; cannot take it "
                    "exactly")
            out.append(fmpq(1, k))
        return out


@register_rule(nn.AvgPool2d)
class AvgPool2dRule(_PoolAverageRule):
    def check(self, module: nn.AvgPool2d) -> str | None:
        if module.divisor_override not in (None,) and module.divisor_override <= 0:
            return "divisor_override must be positive"
        return None

    def linear(self, module: nn.AvgPool2d, x: torch.Tensor) -> torch.Tensor:
        return module(x)


@register_rule(nn.AdaptiveAvgPool2d)
class AdaptiveAvgPool2dRule(_PoolAverageRule):
    def linear(self, module: nn.AdaptiveAvgPool2d, x: torch.Tensor) -> torch.Tensor:
        return module(x)


@register_rule(nn.Flatten)
class FlattenRule(ReshapeRule):
    reads = ()

    def check(self, module: nn.Flatten) -> str | None:
        if module.start_dim == 0:
            return "Flatten(start_dim=0) flattens the batch dimension"
        return None

    def linear(self, module: nn.Flatten, x: torch.Tensor) -> torch.Tensor:
        return module(x)


@register_rule(nn.Identity)
class IdentityRule(ReshapeRule):
    reads = ()

    def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        return x


class DropoutRule(ReshapeRule):
    """Every dropout layer: the identity in eval mode (and with p == 0)."""

    reads = ()

    def check(self, module: nn.modules.dropout._DropoutNd) -> str | None:
        if module.training and module.p > 0:
            return "Dropout in train mode is random (call net.eval() first)"
        return None

    def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        return x


# Each dropout class has its own forward, so each is registered (a rule is not inherited by a
# class that overrides forward).
_DROPOUT = DropoutRule()
for _dropout in (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d, nn.AlphaDropout,
                 nn.FeatureAlphaDropout):
    register_rule(_dropout, _DROPOUT)


@dataclass(frozen=True)
class Reshape:
    """Pseudo-module for ``view``/``reshape``/``flatten`` calls: the target per-sample shape."""

    shape: tuple[int, ...]

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], *self.shape)


@register_rule(Reshape)
class ReshapeCallRule(ReshapeRule):
    def linear(self, module: Reshape, x: torch.Tensor) -> torch.Tensor:
        return module(x)


@dataclass(frozen=True)
class Add:
    """Pseudo-module for ``x + y`` / ``torch.add`` of two captured tensors."""


@register_rule(Add)
class AddRule(Rule):
    """``x + y`` of two model tensors; shapes broadcast as in torch (per sample: neither may
    broadcast over the other's batch, which both have)."""

    sign = 1

    def float_forward(self, module: Any, inputs: list[FloatMap]) -> FloatMap:
        a, b = inputs
        if len(a.shape) != len(b.shape):  # align the per-sample dimensions, as torch does
            a, b = (FloatMap(m.W.reshape(*m.W.shape[:2], *[1] * (d - len(m.shape)), *m.shape),
                             m.b.reshape(m.b.shape[0], *[1] * (d - len(m.shape)), *m.shape))
                    for m, d in ((a, max(len(a.shape), len(b.shape))),
                                 (b, max(len(a.shape), len(b.shape)))))
        return FloatMap(a.W + self.sign * b.W, a.b + self.sign * b.b)

    def exact_forward(self, module: Any, inputs: list[ExactMap],
                      out_shape: tuple[int, ...]) -> ExactMap:
        a, b = (_broadcast_map(m, tuple(out_shape)) for m in inputs)
        return ExactMap(a.mat + b.mat if self.sign == 1 else a.mat - b.mat, tuple(out_shape))


def _broadcast_map(m: ExactMap, shape: tuple[int, ...]) -> ExactMap:
    """``m`` broadcast to ``shape`` (entries repeated as torch broadcasts them)."""
    if tuple(m.shape) == shape:
        return m
    index = torch.arange(m.n).reshape(m.shape).broadcast_to(shape).reshape(-1).tolist()
    return _exact.gather_rows(m, index, shape)


@dataclass(frozen=True)
class Cat:
    """Pseudo-module for ``torch.cat(tensors, dim)``; ``dim`` counts the batch dimension."""

    dim: int


@register_rule(Cat)
class CatRule(Rule):
    def check(self, module: Cat) -> str | None:
        if module.dim == 0:
            return "torch.cat along the batch dimension"
        return None

    def float_forward(self, module: Cat, inputs: list[FloatMap]) -> FloatMap:
        dW = module.dim if module.dim < 0 else module.dim + 1  # W has the extra k dimension
        return FloatMap(torch.cat([m.W for m in inputs], dim=dW),
                        torch.cat([m.b for m in inputs], dim=module.dim))

    def exact_forward(self, module: Cat, inputs: list[ExactMap],
                      out_shape: tuple[int, ...]) -> ExactMap:
        offset, parts = 0, []
        for m in inputs:
            parts.append(torch.arange(m.n).reshape(1, *m.shape) + offset)
            offset += m.n
        index = torch.cat(parts, dim=module.dim).reshape(-1).tolist()
        rows = _exact.stack_maps(inputs)
        return _exact.from_rows([rows[i] for i in index], inputs[0].mat.ncols(), out_shape)


def batch_problem(dims: Sequence[int], ndim: int, what: str) -> None:
    """Refuse an op that reads or changes dimension 0 (the batch) of an ``ndim``-dimensional
    tensor: it would mix the samples of a batch."""
    if any(int(d) % ndim == 0 for d in dims):
        raise UnsupportedModelError(f"{what} acts on dimension 0, the batch dimension; exactrelu "
                                    "certifies functions of one sample")


@dataclass(frozen=True)
class Sub:
    """Pseudo-module for ``x - y`` of two captured tensors."""


@register_rule(Sub)
class SubRule(AddRule):
    sign = -1


class _Operand(nn.Module):
    """A pseudo-module combining its input elementwise with one constant ``other`` (a buffer that
    is the model's own tensor, not a copy; a number becomes a float64 0-d tensor, taken as its
    float64 value). ``other`` broadcasts against the input but not over the batch."""

    other: torch.Tensor

    def __init__(self, other: Any) -> None:
        super().__init__()
        if not isinstance(other, torch.Tensor):
            other = torch.tensor(float(other), dtype=torch.float64)
        self.register_buffer("other", other)

    def extra_repr(self) -> str:
        o = self.other
        return f"{o.item()!r}" if o.dim() == 0 else f"tensor of shape {tuple(o.shape)}"


class Mul(_Operand):
    """``x * other`` (also ``-x``: other = -1)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.other


class Div(_Operand):
    """``x / other``: exactly ``x`` times the rational 1/other."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x / self.other


class AddConstant(_Operand):
    """``x + other`` (``x - c`` is ``x + (-c)``; negating a float is exact)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.other


def _operand(module: _Operand, x: torch.Tensor) -> torch.Tensor:
    other = module.other
    if other.dim() > x.dim() or (other.dim() == x.dim() and other.shape[0] != 1):
        raise UnsupportedModelError(f"a constant of shape {tuple(other.shape)} broadcasts over "
                                    "the batch dimension of the model's tensor")
    return _p(other, x)


class _ScaleRule(AffineRule):
    """Mul and Div: output entry ``o`` is ``c_o * x_src(o)`` (or ``x_src(o) / c_o``), read off the
    broadcast of positions and of ``other``, so every entry is exactly the constant (or its exact
    reciprocal)."""

    reads = ("other",)
    divide = False

    def check(self, module: _Operand) -> str | None:
        if self.divide and bool((module.other == 0).any()):
            return "divides by zero"
        return None

    def linear(self, module: _Operand, x: torch.Tensor) -> torch.Tensor:
        other = _operand(module, x)
        return x / other if self.divide else x * other

    def exact_affine(self, module: _Operand, in_shape: tuple[int, ...]) -> ExactAffine:
        n_in = math.prod(in_shape)
        pos = torch.arange(n_in).reshape(1, *in_shape)
        other = module.other.detach().to("cpu", torch.float64)
        shape = torch.broadcast_shapes(pos.shape, other.shape)
        src = pos.expand(shape).reshape(-1).tolist()
        consts = _exact.tensor_to_fmpq_list(other.expand(shape).reshape(-1))
        entries = [fmpq(0)] * (len(src) * n_in)
        for o, (j, c) in enumerate(zip(src, consts, strict=True)):
            entries[o * n_in + j] = 1 / c if self.divide else c
        return ExactAffine(fmpq_mat(len(src), n_in, entries), [fmpq(0)] * len(src))


@register_rule(Mul)
class MulRule(_ScaleRule):
    pass


@register_rule(Div)
class DivRule(_ScaleRule):
    divide = True


@register_rule(AddConstant)
class AddConstantRule(AffineRule):
    reads = ("other",)

    def linear(self, module: AddConstant, x: torch.Tensor) -> torch.Tensor:
        return x + torch.zeros_like(_operand(module, x))  # the broadcast of x (adding 0 is exact)

    def constant(self, module: AddConstant, zeros: torch.Tensor) -> torch.Tensor:
        return zeros + _operand(module, zeros)


@dataclass(frozen=True)
class Mean:
    """Pseudo-module for ``x.mean(dims, keepdim)``; ``dims`` count the batch dimension."""

    dims: tuple[int, ...]
    keepdim: bool = False


@register_rule(Mean)
class MeanRule(_PoolAverageRule):
    def check(self, module: Mean) -> str | None:
        if not module.dims:
            return "mean over every dimension mixes the samples of a batch; give the dimensions"
        return None

    def linear(self, module: Mean, x: torch.Tensor) -> torch.Tensor:
        batch_problem(module.dims, x.dim(), f"mean over {module.dims}")
        return x.mean(dim=module.dims, keepdim=module.keepdim)


@dataclass(frozen=True)
class Pad:
    """Pseudo-module for ``F.pad(x, padding, mode, value)``."""

    padding: tuple[int, ...]
    mode: str = "constant"
    value: float = 0.0


# The padding modules by mode: the bases of each mode's classes (the circular classes each
# redefine the check of the input's dimensions, so each has its own registration).
_PAD_MODES = {nn.modules.padding._ConstantPadNd: "constant",
              nn.modules.padding._ReflectionPadNd: "reflect",
              nn.modules.padding._ReplicationPadNd: "replicate",
              **{getattr(nn, f"CircularPad{d}d"): "circular" for d in (1, 2, 3)
                 if hasattr(nn, f"CircularPad{d}d")}}

#: The largest padding (per side) and output (entries per sample) exactrelu builds; a model file
#: asking for more is refused before anything that size is allocated.
MAX_PAD = 4096
MAX_ENTRIES = 2**24


class PadRule(AffineRule):
    """Padding: every mode copies entries (reflect, replicate and circular copy other entries of
    the input), and constant padding adds its value, so the map is exact in every mode."""

    reads = ()

    def args(self, module: Any) -> tuple[tuple[int, ...], str, float]:
        if isinstance(module, Pad):
            return tuple(module.padding), module.mode, module.value
        mode = next(m for cls, m in _PAD_MODES.items() if isinstance(module, cls))
        return tuple(module.padding), mode, float(getattr(module, "value", 0.0))

    def check(self, module: Any) -> str | None:
        padding, mode, value = self.args(module)
        if mode not in ("constant", "reflect", "replicate", "circular"):
            return (f"padding mode {mode!r} (constant, reflect, replicate and circular are "
                    "supported)")
        if not math.isfinite(value):
            return f"pads with {value}, which is not finite"
        if len(padding) % 2 or any(abs(int(p)) > MAX_PAD for p in padding):
            return f"padding {padding}: pairs of at most {MAX_PAD} entries are supported"
        return None

    def linear(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        padding, mode, _ = self.args(module)
        batch_problem([x.dim() - 1 - i for i in range(len(padding) // 2)], x.dim(), "padding")
        return F.pad(x, padding, mode, 0.0) if mode == "constant" else F.pad(x, padding, mode)

    def constant(self, module: Any, zeros: torch.Tensor) -> torch.Tensor:
        padding, mode, value = self.args(module)
        if mode == "constant":
            return F.pad(zeros, padding, mode, value)
        return self.linear(module, zeros)


register_rule(Pad, PadRule())
for _pad in _PAD_MODES:
    register_rule(_pad, PadRule())


class GatherRule(Rule):
    """Ops that only copy entries of each sample (slicing, chunk and split, permute, nearest
    upsampling, ...): output entry ``o`` is input entry ``index[o]``.

    The index is found once per input shape by running the op on the positions of a batch
    (``probe_batch`` samples of float64 position numbers, exact below 2**53); the op is taken only
    if every output is one position of its own sample, the same for every sample of the batch.
    """

    reads = ()

    def select(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        """The op on a batch ``x`` (N, *in_shape)."""
        raise NotImplementedError

    def probe_batch(self, module: Any) -> int:
        return 2

    def index(self, module: Any, in_shape: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(flat input position of every output entry, per-sample output shape)."""
        cache = _exact_cache(module)
        key = ("gather", in_shape)
        if key not in cache:
            n, batch = math.prod(in_shape), self.probe_batch(module)
            size = self.select(module, torch.empty((batch, *in_shape), device="meta")).numel()
            if size > MAX_ENTRIES * batch:
                raise UnsupportedModelError(f"its output has {size // batch} entries per sample "
                                            f"(at most {MAX_ENTRIES} are supported)")
            pos = torch.arange(batch * n, dtype=torch.float64).reshape(batch, *in_shape)
            out = self.select(module, pos)
            flat = out.reshape(batch, -1) if out.dim() and out.shape[0] == batch else None
            own = torch.arange(batch, dtype=torch.float64).unsqueeze(1) * n
            if flat is None or not (bool((flat[0] == flat[0].round()).all())
                                    and bool(((flat[0] >= 0) & (flat[0] < n)).all())
                                    and torch.equal(flat - own, flat[:1].expand_as(flat))):
                raise UnsupportedModelError("it does not take each output entry from its own "
                                            "sample (it mixes or changes the batch dimension)")
            cache[key] = (flat[0].to(torch.int64), tuple(out.shape[1:]))
        return cache[key]

    def float_forward(self, module: Any, inputs: list[FloatMap]) -> FloatMap:
        (m,) = inputs
        idx, out_shape = self.index(module, m.shape)
        n, k = m.W.shape[0], m.W.shape[1]
        idx = idx.to(m.b.device)
        size = math.prod(m.shape)
        W = m.W.reshape(n, k, size).index_select(2, idx).reshape(n, k, *out_shape)
        return FloatMap(W, m.b.reshape(n, size).index_select(1, idx).reshape(n, *out_shape))

    def exact_forward(self, module: Any, inputs: list[ExactMap],
                      out_shape: tuple[int, ...]) -> ExactMap:
        (m,) = inputs
        idx, _ = self.index(module, m.shape)
        return _exact.gather_rows(m, idx.tolist(), out_shape)


def _aten(name: str) -> Any:
    """``torch.ops.aten.<name>`` ("op.overload", or "aten.op.overload"), or None where this torch
    has no such op."""
    op, _, overload = name.removeprefix("aten.").partition(".")
    try:
        return getattr(getattr(torch.ops.aten, op), overload)
    except (AttributeError, RuntimeError):
        return None


def _expand(x: torch.Tensor, *size: Any) -> torch.Tensor:
    return x.expand(*size)


def _repeat(x: torch.Tensor, *repeats: Any) -> torch.Tensor:
    return x.repeat(*repeats)


#: The selections a :class:`Gather` may name: functions of a tensor (with its batch dimension)
#: that only copy its entries.
GATHER_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "getitem": operator.getitem, "torch.narrow": torch.narrow, "torch.select": torch.select,
    "torch.permute": torch.permute, "torch.transpose": torch.transpose, "torch.flip": torch.flip,
    "torch.roll": torch.roll, "torch.split": torch.split, "torch.chunk": torch.chunk,
    "torch.unbind": torch.unbind, "torch.movedim": torch.movedim, "Tensor.expand": _expand,
    "Tensor.repeat": _repeat,
    **{name: op for name in (
        "aten.slice.Tensor", "aten.select.int", "aten.narrow.default", "aten.permute.default",
        "aten.transpose.int", "aten.flip.default", "aten.roll.default", "aten.expand.default",
        "aten.repeat.default", "aten.split.Tensor", "aten.split_with_sizes.default",
        "aten.chunk.default", "aten.unbind.int", "aten.movedim.int",
        "aten.upsample_nearest1d.vec", "aten.upsample_nearest2d.vec",
        "aten.upsample_nearest3d.vec", "aten.upsample_nearest1d.default",
        "aten.upsample_nearest2d.default", "aten.upsample_nearest3d.default",
        "aten._upsample_nearest_exact1d.vec", "aten._upsample_nearest_exact2d.vec",
        "aten._upsample_nearest_exact3d.vec", "aten.reflection_pad1d.default",
        "aten.reflection_pad2d.default", "aten.reflection_pad3d.default",
        "aten.replication_pad1d.default", "aten.replication_pad2d.default",
        "aten.replication_pad3d.default") if (op := _aten(name)) is not None},
}


@dataclass(frozen=True)
class Gather:
    """Pseudo-module for a call that copies entries: ``GATHER_FUNCTIONS[op](x, *args)`` (its
    ``item``-th result for ops returning several tensors, as split and chunk do). ``batch`` is
    the batch size the call is probed with (an exported program's own, where it has one)."""

    op: str
    args: tuple = ()
    item: int | None = None
    batch: int = 2

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        out = GATHER_FUNCTIONS[self.op](x, *self.args)
        return out if self.item is None else out[self.item]


@register_rule(Gather)
class GatherCallRule(GatherRule):
    def check(self, module: Gather) -> str | None:
        return None if module.op in GATHER_FUNCTIONS else f"{module.op} is not a selection"

    def select(self, module: Gather, x: torch.Tensor) -> torch.Tensor:
        return module(x)

    def probe_batch(self, module: Gather) -> int:
        return module.batch


@register_rule(nn.Upsample)
class UpsampleRule(GatherRule):
    """Nearest upsampling copies entries (whatever the sizes or scale factors: torch computes the
    source of each output from the shapes and arguments only, the same for every input)."""

    def check(self, module: nn.Upsample) -> str | None:
        if module.mode not in ("nearest", "nearest-exact"):
            return (f"Upsample(mode={module.mode!r}) interpolates with weights torch computes in "
                    "float; only mode='nearest' and 'nearest-exact' (which copy entries) are "
                    "supported")
        scales = (module.scale_factor if isinstance(module.scale_factor, tuple)
                  else (module.scale_factor,))
        sizes = module.size if isinstance(module.size, tuple) else (module.size,)
        if any(s is not None and not 0 < s <= MAX_PAD for s in (*scales, *sizes)):
            return f"Upsample(size={module.size}, scale_factor={module.scale_factor}) is too large"
        return None

    def select(self, module: nn.Upsample, x: torch.Tensor) -> torch.Tensor:
        return module(x)


# ----------------------------------------------------------------------------- piecewise rules


class _ElementwiseRule(PiecewiseRule):
    """Elementwise piecewise-linear units: out = slope[state] * x + const[state]."""

    reads: tuple[str, ...] | None = ()

    sign_cells = True

    def state_tuple(self, module: Any, signs: Sequence[int],
                    in_shape: tuple[int, ...]) -> tuple[int, ...]:
        if len(self.thresholds(module)) == 1:
            return tuple(1 if s > 0 else 0 for s in signs)
        return super().state_tuple(module, signs, in_shape)

    def constraint_list(self, module: Any, state: Sequence[int], in_shape: tuple[int, ...],
                        out_shape: tuple[int, ...]) -> list[tuple[int, int]]:
        if len(self.thresholds(module)) == 1:
            return [(i, 1 if st else -1) for i, st in enumerate(state)]
        return super().constraint_list(module, state, in_shape, out_shape)

    def slopes_consts(self, module: Any) -> list[tuple[float, float]]:
        raise NotImplementedError

    def num_switching(self, module: Any, in_shape: tuple[int, ...]) -> int:
        return math.prod(in_shape) * len(self.thresholds(module))

    def thresholds(self, module: Any) -> list[float]:
        return [0.0]

    def switching(self, module: Any, m: FloatMap) -> FloatMap:
        n, k = m.W.shape[0], m.W.shape[1]
        W = m.W.reshape(n, k, math.prod(m.shape))
        b = m.b.reshape(n, -1)
        ts = self.thresholds(module)
        return FloatMap(torch.cat([W] * len(ts), dim=2), torch.cat([b - t for t in ts], dim=1))

    def exact_switching(self, module: Any, m: ExactMap) -> ExactMap:
        rows = m.mat.tolist()
        out = []
        for t in self.thresholds(module):
            tq = _exact.to_fmpq(t)
            for row in rows:
                r = list(row)
                r[-1] -= tq
                out.append(r)
        return _exact.from_rows(out, m.mat.ncols(), (len(out),))

    def state(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        ts = self.thresholds(module)
        s = torch.zeros(x.shape, dtype=torch.int64, device=x.device)
        if len(ts) == 1:
            return (x > ts[0]).to(torch.int64)
        lo, hi = ts
        s = torch.ones(x.shape, dtype=torch.int64, device=x.device)
        s[x < lo] = 0
        s[x > hi] = 2
        return s

    def state_from_signs(self, module: Any, signs: torch.Tensor,
                         in_shape: tuple[int, ...]) -> torch.Tensor:
        n = signs.shape[0]
        u = math.prod(in_shape)
        if len(self.thresholds(module)) == 1:
            return (signs > 0).to(torch.int64).reshape(n, *in_shape)
        s_lo, s_hi = signs[:, :u], signs[:, u:]
        s = torch.ones((n, u), dtype=torch.int64, device=signs.device)
        s[s_lo < 0] = 0
        s[s_hi > 0] = 2
        return s.reshape(n, *in_shape)

    def cell_constraints(self, module: Any, state: torch.Tensor,
                         in_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        st = state.reshape(-1).cpu()
        u = st.numel()
        idx = torch.arange(u)
        if len(self.thresholds(module)) == 1:
            return idx, torch.where(st > 0, 1, -1)
        low = st == 0
        mid = st == 1
        high = st == 2
        indices = torch.cat([idx[low], idx[mid], idx[mid] + u, idx[high] + u])
        signs = torch.cat([-torch.ones(int(low.sum()), dtype=torch.int64),
                           torch.ones(int(mid.sum()), dtype=torch.int64),
                           -torch.ones(int(mid.sum()), dtype=torch.int64),
                           torch.ones(int(high.sum()), dtype=torch.int64)])
        return indices, signs

    def unit_slopes(self, module: Any, in_shape: tuple[int, ...]) -> torch.Tensor | None:
        """Slopes that differ between units (PReLU with one slope per channel): a float64 tensor
        ``(states, *in_shape)`` replacing the slopes of :meth:`slopes_consts` (constants stay
        shared), or None when every unit has the slopes of :meth:`slopes_consts`."""
        return None

    def apply(self, module: Any, m: FloatMap, state: torch.Tensor) -> FloatMap:
        sc = self.slopes_consts(module)
        per_unit = self.unit_slopes(module, m.shape)
        if per_unit is not None:
            table = per_unit.to(device=m.b.device, dtype=m.b.dtype).reshape(len(sc), -1)
            idx = state.to(device=m.b.device, dtype=torch.int64).reshape(state.shape[0], -1)
            slope = table.gather(0, idx).reshape(state.shape)
            const = torch.tensor([c for _, c in sc], dtype=m.b.dtype, device=m.b.device)
            return FloatMap(m.W * slope.unsqueeze(1), m.b * slope + const[idx].reshape(state.shape))
        if all(s == k and c == 0.0 for k, (s, c) in enumerate(sc)):  # ReLU: slope = state
            slope = state.to(device=m.b.device, dtype=m.b.dtype)
            return FloatMap(m.W * slope.unsqueeze(1), m.b * slope)
        idx = state.reshape(-1).to(device=m.b.device, dtype=torch.int64)
        table = torch.tensor(sc, dtype=m.b.dtype, device=m.b.device)  # (states, 2)
        slope = table[:, 0].index_select(0, idx).reshape(state.shape)
        if all(c == 0.0 for _, c in sc):
            return FloatMap(m.W * slope.unsqueeze(1), m.b * slope)
        const = table[:, 1].index_select(0, idx).reshape(state.shape)
        return FloatMap(m.W * slope.unsqueeze(1), m.b * slope + const)

    def exact_apply(self, module: Any, m: ExactMap, state: torch.Tensor) -> ExactMap:
        sc = [(_exact.to_fmpq(s), _exact.to_fmpq(c)) for s, c in self.slopes_consts(module)]
        per_unit = self.unit_slopes(module, m.shape)
        units = None if per_unit is None else per_unit.reshape(len(sc), -1).tolist()
        rows = m.mat.tolist()
        out = []
        for i, (row, st) in enumerate(zip(rows, state.reshape(-1).tolist(), strict=True)):
            s, c = sc[st]
            if units is not None:
                s = _exact.to_fmpq(units[st][i])
            if s == 1 and c == 0:
                out.append(row)
            elif s == 0:
                out.append([fmpq(0)] * (len(row) - 1) + [c])
            else:
                r = [s * v for v in row]
                r[-1] += c
                out.append(r)
        return _exact.from_rows(out, m.mat.ncols(), m.shape)


def plain_elementwise(rule: Any) -> bool:
    """Is ``rule`` an elementwise rule (:class:`ElementwiseRule` and exactrelu's own ReLU,
    LeakyReLU, Hardtanh, ...) whose exact behaviour is all in its thresholds, slopes and
    constants (none of the methods an engine calls is overridden)?"""
    if not isinstance(rule, _ElementwiseRule):
        return False
    return all(getattr(type(rule), m) is getattr(_ElementwiseRule, m)
               for m in ("exact_apply", "state_tuple", "constraint_list", "exact_switching",
                         "num_switching", "state_from_signs"))


class ElementwiseRule(_ElementwiseRule):
    """The rule of an elementwise piecewise-linear op, in two methods, on both exact engines.

    The op maps each input entry ``x`` to ``a_k * x + c_k`` on the ``k``-th interval cut by the
    thresholds ``t_1 < ... < t_m`` of :meth:`thresholds` (``m`` is 1 or 2; ``k = 0`` below
    ``t_1``, ``k = m`` above ``t_m``); :meth:`slopes_consts` gives the ``m + 1`` pairs
    ``(a_k, c_k)``, and ``k`` is the entry's state. An entry exactly on a threshold takes the lower
    piece with one threshold (ReLU: off at 0) and the middle one with two (Hardtanh: identity at
    either bound); the module's forward must give that piece's value there (a continuous op
    does). Both methods may read the module (a parameter, a buffer or a plain attribute) and
    return plain Python floats, taken exactly (every float is a rational). Override
    :meth:`check` to refuse a module configuration (return the reason as a string); start it
    with ``super().check(module)``, which checks the two lists.

    Switching functions (``x - t_i``), states, cell constraints and the float and exact maps are
    derived from the two lists, and the compiled engine takes the op like the built-in ReLU
    (a subclass that overrides any of those derived methods goes to the Python engine). Fuzz a
    new rule with :func:`exactrelu.testing.check_rule` before trusting it.

    >>> class ShiftedReLU(nn.Module):
    ...     def forward(self, x): return torch.relu(x - 0.25)
    >>> @register_rule(ShiftedReLU)
    ... class ShiftedReLURule(ElementwiseRule):
    ...     def thresholds(self, module): return [0.25]
    ...     def slopes_consts(self, module): return [(0.0, 0.0), (1.0, -0.25)]
    """

    def check(self, module: Any) -> str | None:
        return elementwise_problem(self, module)

    def thresholds(self, module: Any) -> list[float]:
        """The breakpoints ``t_1 < t_2`` (one or two floats); ``[0.0]`` unless overridden."""
        return [0.0]

    def slopes_consts(self, module: Any) -> list[tuple[float, float]]:
        """``(slope, constant)`` of each piece, left to right: one more than the thresholds."""
        raise NotImplementedError(f"{type(self).__name__} must define slopes_consts(module)")


def _plain_float(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def elementwise_problem(rule: _ElementwiseRule, module: Any) -> str | None:
    """What is wrong with an elementwise rule's ``thresholds`` and ``slopes_consts`` for
    ``module`` (counts, types, order), or None."""
    name = type(rule).__qualname__
    ts, sc = rule.thresholds(module), rule.slopes_consts(module)
    if not isinstance(ts, (list, tuple)) or not 1 <= len(ts) <= 2 or \
            not all(_plain_float(t) for t in ts):
        return (f"{name}.thresholds gives {ts!r}: pass a list of one or two finite floats")
    if len(ts) == 2 and not ts[0] < ts[1]:
        return f"{name}.thresholds gives {ts!r}: the thresholds must increase"
    if not isinstance(sc, (list, tuple)) or len(sc) != len(ts) + 1 or \
            not all(isinstance(p, (list, tuple)) and len(p) == 2 and all(map(_plain_float, p))
                    for p in sc):
        return (f"{name}.slopes_consts gives {sc!r}: pass {len(ts) + 1} (slope, constant) pairs "
                f"of finite floats, one per piece around the {len(ts)} threshold(s)")
    return None


@register_rule(nn.ReLU)
class ReLURule(_ElementwiseRule):
    def slopes_consts(self, module: Any) -> list[tuple[float, float]]:
        return [(0.0, 0.0), (1.0, 0.0)]


@register_rule(nn.LeakyReLU)
class LeakyReLURule(_ElementwiseRule):
    def check(self, module: nn.LeakyReLU) -> str | None:
        if not math.isfinite(module.negative_slope):
            return "negative_slope is not finite"
        return None

    def slopes_consts(self, module: nn.LeakyReLU) -> list[tuple[float, float]]:
        return [(float(module.negative_slope), 0.0), (1.0, 0.0)]


@register_rule(nn.Hardtanh)
class HardtanhRule(_ElementwiseRule):
    def check(self, module: nn.Hardtanh) -> str | None:
        lo, hi = float(module.min_val), float(module.max_val)
        if not (math.isfinite(lo) and math.isfinite(hi)):
            return (f"Hardtanh needs finite min_val and max_val (got {module.min_val}, "
                    f"{module.max_val})")
        if not lo < hi:
            return f"Hardtanh needs min_val < max_val (got {module.min_val}, {module.max_val})"
        return None

    def thresholds(self, module: nn.Hardtanh) -> list[float]:
        return [float(module.min_val), float(module.max_val)]

    def slopes_consts(self, module: nn.Hardtanh) -> list[tuple[float, float]]:
        return [(0.0, float(module.min_val)), (1.0, 0.0), (0.0, float(module.max_val))]


@register_rule(nn.PReLU)
class PReLURule(_ElementwiseRule):
    """PReLU: state 0 (input <= 0) has the slope of the unit's channel (dimension 1 of the input;
    one slope for all when ``num_parameters == 1``), state 1 the identity."""

    reads = ("weight",)

    def check(self, module: nn.PReLU) -> str | None:
        if not isinstance(module.weight, torch.Tensor) or module.weight.dim() != 1:
            return "PReLU's weight must be a vector (one slope, or one per channel)"
        return None

    def slopes_consts(self, module: nn.PReLU) -> list[tuple[float, float]]:
        w = module.weight.detach()
        return [(float(w.reshape(-1)[0]) if w.numel() == 1 else 0.0, 0.0), (1.0, 0.0)]

    def unit_slopes(self, module: nn.PReLU, in_shape: tuple[int, ...]) -> torch.Tensor | None:
        w = module.weight.detach().to("cpu", torch.float64)
        if w.numel() == 1:
            return None
        if not in_shape or in_shape[0] != w.numel():
            raise UnsupportedModelError(f"PReLU with {w.numel()} slopes on an input of shape "
                                        f"{in_shape} (one slope per channel, dimension 1)")
        neg = w.reshape(-1, *([1] * (len(in_shape) - 1))).expand(in_shape)
        return torch.stack([neg, torch.ones(in_shape, dtype=torch.float64)])


@dataclass(frozen=True)
class Abs:
    """Pseudo-module for ``torch.abs``: state 0 (input <= 0) slope -1, state 1 slope 1."""


@register_rule(Abs)
class AbsRule(_ElementwiseRule):
    def slopes_consts(self, module: Abs) -> list[tuple[float, float]]:
        return [(-1.0, 0.0), (1.0, 0.0)]


@dataclass(frozen=True)
class Clamp:
    """Pseudo-module for ``torch.clamp(x, min, max)`` with one or both bounds (numbers).

    States: with both bounds as Hardtanh (0 clamped low, 1 identity, 2 clamped high; a bound
    itself is the identity piece); with one bound 0 below or at it, 1 above (``min``: clamped,
    identity; ``max``: identity, clamped).
    """

    min: float | None = None
    max: float | None = None


@register_rule(Clamp)
class ClampRule(_ElementwiseRule):
    def check(self, module: Clamp) -> str | None:
        bounds = [b for b in (module.min, module.max) if b is not None]
        if not bounds:
            return "clamp without bounds"
        if not all(isinstance(b, (int, float)) and math.isfinite(b) for b in bounds):
            return f"clamp bounds must be finite numbers (got min={module.min}, max={module.max})"
        if len(bounds) == 2 and not bounds[0] < bounds[1]:
            return f"clamp needs min < max (got {module.min}, {module.max})"
        return None

    def thresholds(self, module: Clamp) -> list[float]:
        return [float(b) for b in (module.min, module.max) if b is not None]

    def slopes_consts(self, module: Clamp) -> list[tuple[float, float]]:
        low = [(0.0, float(module.min))] if module.min is not None else []
        high = [(0.0, float(module.max))] if module.max is not None else []
        return [*low, (1.0, 0.0), *high]


@register_rule(nn.MaxPool2d)
class MaxPool2dRule(PiecewiseRule):
    """MaxPool2d: state = flat input position of the window's maximum (first maximum on ties).

    Switching functions: ``x_i - x_j`` for every pair ``i < j`` of real (non-padding) positions in
    each window, windows in output order. Padding positions are never the maximum.
    """

    reads = ()

    def check(self, module: nn.MaxPool2d) -> str | None:
        if module.return_indices:
            return "MaxPool2d(return_indices=True)"
        return None

    def windows(self, module: nn.MaxPool2d,
                in_shape: tuple[int, ...]) -> tuple[torch.Tensor, tuple[int, ...]]:
        """(windows: (n_out, w) flat input positions, -1 for padding; out_shape)."""
        key = ("windows", in_shape)
        cache = _exact_cache(module)
        if key not in cache:
            n_in = math.prod(in_shape)
            # Mark positions by 1 + index; unfold with padding 0 gives 0 on padding.
            pos = (torch.arange(n_in, dtype=torch.float64) + 1).reshape(1, *in_shape)
            c = pos.shape[1]
            ks, st, pd, dl = (_pair(module.kernel_size), _pair(module.stride or module.kernel_size),
                              _pair(module.padding), _pair(module.dilation))
            out_ref = F.max_pool2d(pos, ks, st, pd, dl, module.ceil_mode)
            oh, ow = out_ref.shape[-2:]
            cols = F.unfold(pos, ks, dl, pd, st)  # (1, c*kh*kw, L)
            if cols.shape[-1] != oh * ow:  # ceil_mode windows: fall back to explicit enumeration
                cols = _unfold_explicit(pos, ks, st, pd, dl, oh, ow)
            cols = cols.reshape(c, ks[0] * ks[1], oh * ow).permute(0, 2, 1).reshape(c * oh * ow, -1)
            win = cols.round().to(torch.int64) - 1
            out_shape = tuple(out_ref.shape[1:])
            cache[key] = (win, out_shape)
        return cache[key]

    def _pairs(self, module: Any,
               in_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        key = ("pairs", in_shape)
        cache = _exact_cache(module)
        if key not in cache:
            win, _ = self.windows(module, in_shape)
            a, b, w = [], [], []
            for o, row in enumerate(win.tolist()):
                real = [p for p in row if p >= 0]
                for i, j in itertools.combinations(range(len(real)), 2):
                    a.append(real[i])
                    b.append(real[j])
                    w.append(o)
            cache[key] = (torch.tensor(a, dtype=torch.int64), torch.tensor(b, dtype=torch.int64),
                          torch.tensor(w, dtype=torch.int64))
        return cache[key]

    def num_switching(self, module: Any, in_shape: tuple[int, ...]) -> int:
        return int(self._pairs(module, in_shape)[0].numel())

    def switching(self, module: Any, m: FloatMap) -> FloatMap:
        a, b, _ = self._pairs(module, m.shape)
        n, k = m.W.shape[0], m.W.shape[1]
        W = m.W.reshape(n, k, math.prod(m.shape))
        v = m.b.reshape(n, -1)
        a, b = a.to(v.device), b.to(v.device)
        return FloatMap(W[:, :, a] - W[:, :, b], v[:, a] - v[:, b])

    def exact_switching(self, module: Any, m: ExactMap) -> ExactMap:
        a, b, _ = self._pairs(module, m.shape)
        rows = m.mat.tolist()
        out = [[x - y for x, y in zip(rows[i], rows[j], strict=True)]
               for i, j in zip(a.tolist(), b.tolist(), strict=True)]
        return _exact.from_rows(out, m.mat.ncols(), (len(out),))

    def state(self, module: Any, x: torch.Tensor) -> torch.Tensor:
        win, out_shape = self.windows(module, tuple(x.shape[1:]))
        win = win.to(x.device)
        flat = x.reshape(x.shape[0], -1)
        vals = flat[:, win.clamp(min=0)]
        vals = vals.masked_fill((win < 0).unsqueeze(0), float("-inf"))
        arg = vals.argmax(dim=2)  # first maximum
        picked = win.unsqueeze(0).expand(x.shape[0], -1, -1).gather(2, arg.unsqueeze(2))
        return picked.squeeze(2).reshape(x.shape[0], *out_shape)

    def state_from_signs(self, module: Any, signs: torch.Tensor,
                         in_shape: tuple[int, ...]) -> torch.Tensor:
        a, b, w = self._pairs(module, in_shape)
        win, out_shape = self.windows(module, in_shape)
        n = signs.shape[0]
        n_in = math.prod(in_shape)
        n_out = win.shape[0]
        # wins[n, o, p] counts pairs won by position p in window o; the maximum wins every pair.
        wins = torch.zeros((n, n_out, n_in), dtype=torch.int64, device=signs.device)
        winner = torch.where(signs >= 0, a.to(signs.device), b.to(signs.device))  # ties: first wins
        wins.index_put_((torch.arange(n, device=signs.device).unsqueeze(1).expand_as(winner),
                         w.to(signs.device).unsqueeze(0).expand_as(winner), winner),
                        torch.ones_like(winner), accumulate=True)
        # Best among the window's own positions (a window with one real position has no pairs).
        win = win.to(signs.device)
        in_win = wins.gather(2, win.clamp(min=0).unsqueeze(0).expand(n, -1, -1))
        in_win = in_win.masked_fill((win < 0).unsqueeze(0), -1)
        arg = in_win.argmax(dim=2, keepdim=True)
        return win.unsqueeze(0).expand(n, -1, -1).gather(2, arg).squeeze(2).reshape(n, *out_shape)

    def cell_constraints(self, module: Any, state: torch.Tensor,
                         in_shape: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        a, b, w = self._pairs(module, in_shape)
        st = state.reshape(-1).cpu()
        arg = st[w]
        involved = (a == arg) | (b == arg)
        idx = torch.nonzero(involved).reshape(-1)
        signs = torch.where(a[idx] == arg[idx], 1, -1)
        return idx, signs

    def apply(self, module: Any, m: FloatMap, state: torch.Tensor) -> FloatMap:
        n, k = m.W.shape[0], m.W.shape[1]
        idx = state.reshape(n, -1).to(m.b.device)
        W = m.W.reshape(n, k, math.prod(m.shape)).gather(2, idx.unsqueeze(1).expand(n, k, -1))
        b = m.b.reshape(n, -1).gather(1, idx)
        out_shape = state.shape[1:]
        return FloatMap(W.reshape(n, k, *out_shape), b.reshape(n, *out_shape))

    def exact_apply(self, module: Any, m: ExactMap, state: torch.Tensor) -> ExactMap:
        return _exact.gather_rows(m, state.reshape(-1).tolist(), tuple(state.shape))


def _pair(v: Any) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _unfold_explicit(pos: torch.Tensor, ks: tuple[int, int], st: tuple[int, int],
                     pd: tuple[int, int], dl: tuple[int, int], oh: int, ow: int) -> torch.Tensor:
    c, h, w = pos.shape[1:]
    padded = torch.zeros((c, h + 2 * pd[0] + ks[0] * dl[0] + st[0] * oh,
                          w + 2 * pd[1] + ks[1] * dl[1] + st[1] * ow),
                         dtype=pos.dtype)
    padded[:, pd[0]:pd[0] + h, pd[1]:pd[1] + w] = pos[0]
    out = torch.zeros((c, ks[0] * ks[1], oh * ow), dtype=pos.dtype)
    for i in range(oh):
        for j in range(ow):
            for u in range(ks[0]):
                for v in range(ks[1]):
                    out[:, u * ks[1] + v, i * ow + j] = \
                        padded[:, i * st[0] + u * dl[0], j * st[1] + v * dl[1]]
    return out.reshape(1, c * ks[0] * ks[1], oh * ow)
