"""Testing helpers: :func:`check_rule` fuzzes a layer rule with Hypothesis, :func:`assert_regions`
asserts on the certified regions of a network in a test suite.

>>> from torch import nn
>>> check_rule(nn.ReLU, max_examples=5)
"""

from __future__ import annotations

import contextlib
import copy
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NoReturn

import torch
from torch import nn

from ._deps import extra_missing

try:
    from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st
except ImportError as err:
    raise extra_missing(err, "exactrelu.testing", "testing") from err

from . import _exact
from ._exact import ExactMap
from ._parse import approx
from .capture import INPUT, Node, capture
from .certificate import Certificate
from .errors import InvalidInputError, UnsupportedModelError, VerificationError
from .rules import (
    RULES,
    Add,
    AffineRule,
    Cat,
    FloatMap,
    ReshapeRule,
    Rule,
    _ElementwiseRule,
    clear_exact_cache,
    elementwise_problem,
    find_rule,
)

__all__ = ["check_rule", "module_cases", "assert_regions"]

#: Relative tolerance of float64 comparisons (the rule's float maps, which run in float64 on the
#: module's exact parameters, against exact values and float64 modules).
REL = 1e-9
#: Relative tolerance of a module's own forward pass in a lower precision, in units of its dtype's
#: machine epsilon (float32: 7.6e-6).
EPS_UNITS = 64
#: A point is inside a cell of a piecewise op when every switching value is this far from zero
#: (relative to the largest one), and 16 tolerances at least.
SWITCH_MARGIN = 1e-6


# ----------------------------------------------------------------------------- module cases

class _AddSelf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + x


class _CatSelf(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, x], dim=1)


class _FlattenCall(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


class _Applied(nn.Module):
    """A call that is not a module (``x - 2 * x``, ``torch.abs(x)``, ...), as a module."""

    def __init__(self, fn: Any) -> None:
        super().__init__()
        self.fn = fn

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


# Example calls for the pseudo-modules of exactrelu.rules, by the pseudo-module's name.
_CALLS = {
    "Sub": lambda x: x - 2 * x, "Mul": lambda x: x * -0.75, "Div": lambda x: x / 3,
    "AddConstant": lambda x: 0.5 - x, "Mean": lambda x: x.mean(-1, keepdim=True),
    "Pad": lambda x: torch.nn.functional.pad(x, (1, 2), value=0.25),
    "Gather": lambda x: x.flip(-1)[..., 1:], "Abs": torch.abs,
    "Clamp": lambda x: x.clamp(-0.5, 0.75),
}


@dataclass
class _Case:
    """A module to check on inputs of ``shape``; ``varied``: its parameters were redrawn by
    check_rule (a module the rule's ``check`` refuses is then skipped, not a failure)."""

    module: nn.Module
    shape: tuple[int, ...]
    varied: bool = False


#: Redrawn parameter values: dyadic (exact in every float dtype), ties with the dyadic inputs.
_VALUE = st.integers(-64, 64).map(lambda k: k / 16)


def _redraw(module: nn.Module, draw: Any) -> nn.Module:
    """A copy of ``module`` in eval mode with every floating parameter and buffer redrawn in its
    own dtype (a ``running_var`` positive)."""
    module = copy.deepcopy(module).eval()
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point() or t.is_complex() or t.numel() == 0:
                continue
            vals = draw(st.lists(_VALUE, min_size=t.numel(), max_size=t.numel()))
            if name.endswith("running_var"):
                vals = [abs(v) + 0.25 for v in vals]
            t.copy_(torch.tensor(vals, dtype=torch.float64).reshape(t.shape))
    return module


def _floating(module: nn.Module) -> bool:
    return any(t.is_floating_point() and t.numel()
               for t in list(module.parameters()) + list(module.buffers()))


def _params(module: nn.Module, draw: Any) -> nn.Module:
    """A built-in example module in float64 or float32, parameters redrawn."""
    dtype = draw(st.sampled_from([torch.float64, torch.float32]))
    return _redraw(module.to(dtype), draw)


def _side(draw: Any, lo: int = 1, hi: int = 4) -> int:
    return draw(st.integers(lo, hi))


def _builtin_case(key: Any, draw: Any) -> tuple[nn.Module, tuple[int, ...]]:
    s = lambda lo=1, hi=4: _side(draw, lo, hi)  # noqa: E731
    if key is nn.Linear:
        i, o = s(), s()
        return _params(nn.Linear(i, o, bias=draw(st.booleans())), draw), (i,)
    if key in (nn.Conv1d, nn.Conv2d, nn.Conv3d):
        dims = (nn.Conv1d, nn.Conv2d, nn.Conv3d).index(key) + 1
        c_in, c_out, k = s(1, 2), s(1, 2), s(1, 3)
        conv = key(c_in, c_out, k, stride=s(1, 2), padding=s(0, 1), bias=draw(st.booleans()))
        return _params(conv, draw), (c_in, *[k + s(0, 2) for _ in range(dims)])
    if key in (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d):
        dims = (nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d).index(key) + 1
        c_in, c_out, stride = s(1, 2), s(1, 2), s(1, 2)
        conv = key(c_in, c_out, s(1, 3), stride, output_padding=s(0, stride - 1),
                   bias=draw(st.booleans()))
        return _params(conv, draw), (c_in, *[s(1, 3) for _ in range(dims)])
    if isinstance(key, type) and issubclass(key, nn.modules.batchnorm._BatchNorm):
        c = s(1, 3)
        mod = key(c, affine=draw(st.booleans()))
        dims = {nn.BatchNorm2d: 2, nn.BatchNorm3d: 3}.get(key, 0)
        return _params(mod, draw), (c, *[s(1, 3) for _ in range(dims)])
    if isinstance(key, type) and key.__name__ in _CALLS:
        return _Applied(_CALLS[key.__name__]), (s(), s(2, 4))
    if isinstance(key, type) and key.__module__ == "torch.nn.modules.padding":
        dims = int(key.__name__[-2]) if key.__name__[-2].isdigit() else 1
        example = {"_ConstantPadNd": lambda: nn.ConstantPad1d((1, 2), 0.5),
                   "_ReflectionPadNd": lambda: nn.ReflectionPad1d(1),
                   "_ReplicationPadNd": lambda: nn.ReplicationPad1d((2, 1))}
        pad = example[key.__name__]() if key.__name__ in example else key(1)
        return pad, (s(1, 2), *[s(2, 3) for _ in range(dims)])
    if key is nn.Upsample:
        return nn.Upsample(scale_factor=s(1, 3)), (s(1, 2), s(1, 3))
    if key is nn.PReLU:
        c = s(1, 3)
        return _params(nn.PReLU(draw(st.sampled_from([1, c]))), draw), (c, s(1, 3))
    if key is nn.AvgPool2d:
        k = s(1, 3)
        pool = nn.AvgPool2d(k, s(1, 2), s(0, k // 2), count_include_pad=draw(st.booleans()))
        return pool, (s(1, 2), k + s(0, 2), k + s(0, 2))
    if key is nn.AdaptiveAvgPool2d:
        return nn.AdaptiveAvgPool2d((s(1, 3), s(1, 3))), (s(1, 2), s(1, 5), s(1, 5))
    if key is nn.MaxPool2d:
        k = s(1, 3)
        return nn.MaxPool2d(k, s(1, 2), s(0, k // 2)), (s(1, 2), k + s(0, 2), k + s(0, 2))
    if key is nn.Flatten:
        return nn.Flatten(), (s(), s())
    if key is nn.Identity:
        return nn.Identity(), (s(),)
    if isinstance(key, type) and issubclass(key, nn.modules.dropout._DropoutNd):
        return nn.Dropout(0.5).eval(), (s(), s())
    if key is nn.ReLU:
        return nn.ReLU(), (s(1, 6),)
    if key is nn.LeakyReLU:
        return nn.LeakyReLU(draw(st.sampled_from([0.01, 0.125, 0.5, -0.5, 2.0]))), (s(1, 6),)
    if key is nn.Hardtanh:
        lo = draw(st.sampled_from([-1.0, -0.5, 0.0]))
        return nn.Hardtanh(lo, lo + draw(st.sampled_from([0.25, 1.0, 2.0]))), (s(1, 6),)
    if key is Add:
        return _AddSelf(), (s(),)
    if key is Cat:
        return _CatSelf(), (s(), s())
    if isinstance(key, type) and key.__name__ in ("Reshape", "_PendingReshape"):
        return _FlattenCall(), (s(), s())
    raise InvalidInputError(f"no built-in example module for {key!r}; "
                            "pass a module instance and input_shape")


def _cases(module_or_type: Any, input_shape: Sequence[int] | None) -> st.SearchStrategy[_Case]:
    shape = tuple(input_shape) if input_shape is not None else None
    if isinstance(module_or_type, st.SearchStrategy):
        return module_or_type.map(lambda m: _Case(_module(m), shape or _guess_shape(m)))
    if isinstance(module_or_type, nn.Module):
        mod = module_or_type
        shape = shape or _guess_shape(mod)
        given_case = st.just(_Case(mod, shape))
        if not _floating(mod):
            return given_case
        return st.one_of(given_case, _varied(mod, shape))
    if isinstance(module_or_type, type):
        key = module_or_type
        if input_shape is None and _has_builtin(key):
            return st.composite(lambda draw: _Case(*_builtin_case(key, draw)))()
        try:
            mod = key()
        except TypeError as exc:
            raise InvalidInputError(
                f"{key.__name__}() needs arguments ({exc}); pass a module instance or a strategy "
                "of modules") from None
        return _cases(mod, input_shape)
    raise InvalidInputError("expected a module, a module type or a strategy of modules, "
                            f"got {module_or_type!r}")


def _varied(module: nn.Module, shape: tuple[int, ...]) -> st.SearchStrategy[_Case]:
    """Copies of ``module`` with its floating tensors redrawn."""
    return st.composite(lambda draw: _Case(_redraw(module, draw), shape, True))()


def _module(m: Any) -> nn.Module:
    if not isinstance(m, nn.Module):
        raise InvalidInputError(f"the strategy drew {m!r}, not a torch.nn.Module")
    return m


def module_cases(module_or_type: Any,
                 input_shape: Sequence[int] | None = None) -> st.SearchStrategy:
    """Strategy of ``(module, input_shape)`` pairs for a module instance (as given, and copies
    with every floating parameter and buffer redrawn), a module type (built-in example modules,
    or the type called with no arguments) or a strategy of modules. Without ``input_shape`` it is
    guessed: a module's ``input_shape`` attribute, its first ``nn.Linear``, else ``(4,)``."""
    return _cases(module_or_type, input_shape).map(lambda c: (c.module, c.shape))


def _has_builtin(key: type) -> bool:
    names = ("Reshape", "_PendingReshape")
    dropout = nn.modules.dropout._DropoutNd
    ours = key.__module__ == "exactrelu.rules" and key.__name__ in _CALLS
    padding = key.__module__ == "torch.nn.modules.padding" and key in RULES
    return (key in _BUILTIN or key.__name__ in names or issubclass(key, dropout) or ours
            or padding or issubclass(key, nn.modules.batchnorm._BatchNorm))


_BUILTIN = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
            nn.ConvTranspose3d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.Flatten,
            nn.Identity, nn.ReLU, nn.LeakyReLU, nn.Hardtanh, nn.PReLU, nn.Upsample, Add, Cat)


def _guess_shape(module: nn.Module) -> tuple[int, ...]:
    shape = getattr(module, "input_shape", None)
    if shape is not None:
        return tuple(shape)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            return (m.in_features,)
    return (4,)


def _dtype(module: Any) -> torch.dtype:
    """The dtype a module computes in: its first floating tensor's, else float64."""
    if isinstance(module, nn.Module):
        for t in list(module.parameters()) + list(module.buffers()):
            if t.is_floating_point():
                return t.dtype
    return torch.float64


# ----------------------------------------------------------------------------- reporting

class _Failed(AssertionError):
    """A method of a rule is wrong (the message names it)."""


def _short(x: Any, most: int = 120) -> str:
    """``repr(x)`` on one line, at most about ``most`` characters."""
    text = " ".join(repr(x).split())
    return text if len(text) <= most else text[:most] + " ..."


def _clip_list(values: Any, most: int = 8) -> str:
    vals = values.reshape(-1).tolist() if isinstance(values, torch.Tensor) else list(values)
    shown = [f"{v:.6g}" if isinstance(v, float) else str(v) for v in vals[:most]]
    more = f", ... ({len(vals)} in all)" if len(vals) > most else ""
    return "[" + ", ".join(shown) + more + "]"


def _exact_list(values: Sequence[Fraction], most: int = 4) -> str:
    shown = [approx(v) for v in values[:most]]
    more = f", ... ({len(values)} in all)" if len(values) > most else ""
    return "[" + ", ".join(shown) + more + "]"


@dataclass
class _Where:
    """What is being checked, for the failure message."""

    case: _Case
    x: torch.Tensor  # the batch, in the module's dtype
    node: Node | None = None

    def fail(self, rule: Any, methods: str | Sequence[str], what: str,
             n: int | None = None) -> NoReturn:
        names = [methods] if isinstance(methods, str) else list(methods)
        owner = type(rule).__qualname__
        wrong = " or ".join(f"{owner}.{m}" for m in names)
        lines = [f"check_rule: {wrong} is wrong: {what}"]
        if self.node is not None:
            lines.append(f"  op: {self.node.name} ({_short(self.node.module, 80)}), input "
                         f"shape {self.node.in_shapes[0] if self.node.in_shapes else ()}")
        lines.append(f"  module: {_short(self.case.module, 200)}, input shape "
                     f"{self.case.shape}, dtype {str(self.x.dtype).replace('torch.', '')}")
        if n is not None:
            lines.append(f"  at x = {_clip_list(self.x[n], 12)} (exact: every float is a rational)")
        raise _Failed("\n".join(lines))


def _derived(rule: Any, method: str) -> str:
    """The method to blame for ``method`` of ``rule``: an elementwise rule's derived methods come
    from ``thresholds`` and ``slopes_consts``, an affine rule's exact map from its float one."""
    cls = type(rule)
    if isinstance(rule, _ElementwiseRule) and method in _ELEMENTWISE_DERIVED and \
            all(getattr(cls, m) is getattr(_ElementwiseRule, m) for m in _ELEMENTWISE_DERIVED):
        return "slopes_consts" if method in ("apply", "exact_apply") else "thresholds"
    if isinstance(rule, AffineRule) and method == "float_forward" and \
            cls.float_forward in (AffineRule.float_forward, ReshapeRule.float_forward):
        return "linear"  # the linear part: where the constant is wrong, float_method says so
    if isinstance(rule, AffineRule) and method == "exact_forward" and \
            cls.exact_forward in (AffineRule.exact_forward, ReshapeRule.exact_forward):
        for m in ("exact_affine", "matrix_entries"):
            if getattr(cls, m) is not getattr(AffineRule, m):
                return m
    return method


_ELEMENTWISE_DERIVED = ("apply", "exact_apply", "switching", "exact_switching", "state",
                        "state_from_signs", "cell_constraints", "constraint_list", "state_tuple",
                        "num_switching")


def _call(where: _Where, rule: Any, method: str, *args: Any) -> Any:
    """``rule.method(*args)``; an exception is the method's failure."""
    try:
        return getattr(rule, method)(*args)
    except _Failed:
        raise
    except Exception as exc:  # a rule that crashes is wrong where it crashed
        where.fail(rule, _derived(rule, method), f"{method} raised {type(exc).__name__}: {exc}")


def _tol(dtype: torch.dtype, *magnitudes: Any) -> float:
    """Absolute tolerance for values of ``dtype`` whose terms are at most ``magnitudes``: relative
    to them alone (a floor such as 1 would hide a sign error in a parameter of 1e-100)."""
    rel = REL if dtype == torch.float64 else EPS_UNITS * torch.finfo(dtype).eps
    big = max([float(m.abs().max()) if isinstance(m, torch.Tensor) and m.numel() else
               float(abs(m)) if not isinstance(m, torch.Tensor) else 0.0 for m in magnitudes],
              default=0.0)
    return rel * max(big, torch.finfo(dtype).tiny)


def _close(a: torch.Tensor, b: torch.Tensor, tol: float) -> bool:
    a, b = a.detach().to(torch.float64), b.detach().to(torch.float64)
    return a.shape == b.shape and bool(((a - b).abs() <= tol).all())


def _terms(m: FloatMap, x: torch.Tensor) -> torch.Tensor:
    """Per sample, the size of the terms of ``m`` at ``x``: ``|W|^T |x| + |b|``."""
    n, k = m.W.shape[0], m.W.shape[1]
    if k == 0:
        return m.b.abs().reshape(n, -1)
    W = m.W.reshape(n, k, -1).abs()
    return torch.einsum("nki,nk->ni", W, x.reshape(n, k).abs()) + m.b.reshape(n, -1).abs()


# ----------------------------------------------------------------------------- the check

class _Checker:
    """One batch of inputs through one captured module, op by op: each op's float maps (with free
    coordinates, and as plain values) against its module and autograd, its exact maps against
    the float ones, and for piecewise ops every method the engines call against the others."""

    def __init__(self, case: _Case, x: torch.Tensor) -> None:
        self.case, self.xm = case, x
        self.where = _Where(case, x)
        self.x = x.detach().to(torch.float64)
        self.n = x.shape[0]
        self.t = self.x.reshape(self.n, -1)  # the points, as coordinates of the maps
        self.q = [[Fraction(v) for v in row] for row in self.x.reshape(self.n, -1).tolist()]

    # -- the whole module --------------------------------------------------------------------
    def run(self) -> None:
        case, where = self.case, self.where
        net = case.module if find_rule(type(case.module)) is None else nn.Sequential(case.module)
        try:
            prog = capture(net, case.shape)
        except UnsupportedModelError as exc:
            if case.varied:
                assume(False)  # the rule refuses these redrawn parameters: not a failure
            raise _Failed(f"check_rule: capture refused the module: {exc}") from None
        except _Failed:
            raise
        except Exception as exc:
            raise _Failed(f"check_rule: capture raised {type(exc).__name__}: {exc} (capture runs "
                          "the rules' float_forward, state and apply on zeros to infer shapes)"
                          ) from exc
        with torch.no_grad():
            ref = net(self.xm.clone())
        if not bool(torch.isfinite(ref).all()):
            assume(False)  # nothing to compare: parameters or inputs too large for the dtype
        self.prog = prog
        d = prog.in_dim
        eye = torch.eye(d, dtype=torch.float64).reshape(1, d, *case.shape).expand(
            self.n, d, *case.shape)
        start = (FloatMap(eye, torch.zeros_like(self.x)),
                 [_exact.identity_map(d, case.shape)] * self.n)
        values = prog.run_nodes({INPUT: start}, 0, len(prog.nodes), self.node)
        fout, eouts = values[prog.output]
        where.node = None
        got = fout.at(self.t)
        if not _close(got, ref, _tol(self.xm.dtype, ref, _terms(fout, self.x))):
            raise _Failed(f"check_rule: the captured program computes {_clip_list(got)}, the "
                          f"module {_clip_list(ref)} at x = {_clip_list(self.x)}: capture wires "
                          "the ops differently from forward")
        for n in range(self.n):
            try:
                exact = prog.exact_forward(self.q[n])
            except Exception as exc:
                raise _Failed(f"check_rule: the exact forward pass (states from exact_switching "
                              f"and state_from_signs, ties included) raised "
                              f"{type(exc).__name__}: {exc} at x = {_clip_list(self.x[n])}"
                              ) from exc
            if eouts[n].at(self.q[n]) != exact:
                raise _Failed(f"check_rule: the exact maps of the float states give "
                              f"{_exact_list(eouts[n].at(self.q[n]))}, the exact forward pass "
                              f"(states from the exact signs) {_exact_list(exact)} at x = "
                              f"{_clip_list(self.x[n])}: a state_from_signs tie state whose piece "
                              "has another value")

    def node(self, i: int, nd: Node, ins: list[Any]) -> tuple[FloatMap, list[ExactMap]]:
        """One op: checks, then its float map and one exact map per sample."""
        self.where.node = nd
        fins = [f for f, _ in ins]
        eins = [[e[n] for _, e in ins] for n in range(self.n)]
        vin = [f.at(self.t) for f in fins]
        if nd.piecewise:
            return self.piecewise(nd, fins[0], [e[0] for e in eins], vin[0])
        rule, out_shape = nd.rule, tuple(nd.out_shape)
        fout = self.float_map(rule, "float_forward",
                              _call(self.where, rule, "float_forward", nd.module, fins), out_shape)
        ref = self.reference(nd, vin)
        values = fout.at(self.t)
        if ref is not None:
            tol = _tol(ref.dtype, ref, _terms(fout, self.x))
            for n in range(self.n):
                if not _close(values[n], ref[n], tol):
                    self.where.fail(rule, self.float_method(nd, vin),
                                    f"its float map gives {_clip_list(values[n])}, the module "
                                    f"{_clip_list(ref[n])}", n)
            self.jacobian(nd, fins[0], fout, vin[0], range(self.n), rule, "float_forward")
        plain = _call(self.where, rule, "float_forward", nd.module, [self.values(v) for v in vin])
        plain = self.float_map(rule, "float_forward", plain, out_shape)
        self.same_values(rule, "float_forward", plain.b, values, fout)
        eouts = [_call(self.where, rule, "exact_forward", nd.module, e, out_shape) for e in eins]
        self.exact_vs_float(rule, "exact_forward", fout, eouts)
        return fout, eouts

    def reference(self, nd: Node, vin: list[torch.Tensor]) -> torch.Tensor | None:
        """The op's own module at the float input values (in the module's dtype), or None for
        pseudo-ops without a forward of their own (``+``, ``cat``)."""
        mod = nd.module
        if not callable(mod) or isinstance(mod, (Add, Cat)):
            return None
        dtype = _dtype(mod)
        with torch.no_grad():
            try:
                out = mod(*[v.to(dtype) for v in vin])
            except Exception:  # not callable on its captured inputs alone: no per-op reference
                return None
        if not isinstance(out, torch.Tensor) or \
                tuple(out.shape) != (vin[0].shape[0], *nd.out_shape):
            self.where.fail(nd.rule, "float_forward" if not nd.piecewise else "apply",
                            f"the rule's maps have shape {nd.out_shape} per sample (capture "
                            f"infers it from them), the module's output "
                            f"{_describe(out)} for a batch of {vin[0].shape[0]}")
        return out

    def float_method(self, nd: Node, vin: list[torch.Tensor]) -> str:
        """Which float method of an op's rule is wrong when its float map misses the module: an
        affine rule's ``constant`` when the map misses it at zero, else ``linear``."""
        rule = nd.rule
        if not isinstance(rule, AffineRule) or type(rule).float_forward not in (
                AffineRule.float_forward, ReshapeRule.float_forward):
            return "float_forward"
        if isinstance(rule, ReshapeRule):
            return "linear"
        zeros = torch.zeros((1, *vin[0].shape[1:]), dtype=torch.float64)
        ref = self.reference(nd, [zeros])
        const = _call(self.where, rule, "constant", nd.module, zeros)
        if ref is not None and \
                not _close(const.reshape(ref.shape), ref, _tol(ref.dtype, ref, const)):
            return "constant"
        return "linear"

    def jacobian(self, nd: Node, fin: FloatMap, fout: FloatMap, v: torch.Tensor, samples: Any,
                 rule: Any, method: str) -> None:
        """The float map's linear part is the module's autograd Jacobian (times the input's)."""
        mod = nd.module
        if len(nd.inputs) != 1 or not isinstance(mod, nn.Module):
            return
        dtype, d = _dtype(mod), fin.W.shape[1]
        for n in samples:
            try:
                J = torch.autograd.functional.jacobian(lambda z: mod(z.unsqueeze(0))[0],
                                                       v[n].to(dtype))
            except Exception:  # not differentiable as written: nothing to compare
                return
            J = J.to(torch.float64).reshape(fout.b[n].numel(), -1)
            want = fin.W[n].reshape(d, -1) @ J.T
            got = fout.W[n].reshape(d, -1)
            if not _close(got, want, _tol(dtype, want, got)):
                self.where.fail(rule, _derived(rule, method),
                                f"its float map's linear part {_clip_list(got)} is not the "
                                f"module's autograd Jacobian {_clip_list(want)}", n)

    def same_values(self, rule: Any, method: str, plain: torch.Tensor, values: torch.Tensor,
                    fout: FloatMap) -> None:
        """The op's float map on plain values (no free coordinates, as the float tracer passes)
        gives its values with free coordinates."""
        tol = _tol(torch.float64, values, _terms(fout, self.x))
        if not _close(plain.reshape(values.shape), values, tol):
            n = int(((plain.reshape(values.shape) - values).abs().reshape(self.n, -1)
                     .amax(dim=1)).argmax())
            self.where.fail(rule, _derived(rule, method),
                            f"on plain values (a FloatMap with k == 0, as the float tracer "
                            f"passes) it gives {_clip_list(plain[n])}, on maps with free "
                            f"coordinates {_clip_list(values[n])}", n)

    def exact_vs_float(self, rule: Any, method: str, fout: FloatMap, eouts: list[ExactMap],
                       what: str = "map") -> None:
        """Each sample's exact map equals the float one (float64 on the same exact parameters)."""
        for n, em in enumerate(eouts):
            if not isinstance(em, ExactMap):
                self.where.fail(rule, _derived(rule, method),
                                f"{method} gives {_describe(em)}; expected an ExactMap", n)
            W = fout.W[n].reshape(fout.W.shape[1], -1).T
            b = fout.b[n].reshape(-1)
            if em.n != b.numel() or em.k != W.shape[1]:
                self.where.fail(rule, _derived(rule, method),
                                f"its exact {what} has {em.n} rows of {em.k} coordinates, the "
                                f"float one {b.numel()} of {W.shape[1]}", n)
            eW, eb = _floats(em)
            at = em.at(self.q[n])
            ev = torch.tensor([float(v) for v in at], dtype=torch.float64)
            fv = fout.at(self.t)[n].reshape(-1)
            tol = _tol(torch.float64, _terms(fout, self.x)[n])
            if not (_close(eW.reshape(W.shape), W, _tol(torch.float64, W)) and
                    _close(eb, b, _tol(torch.float64, b)) and _close(ev, fv, tol)):
                self.where.fail(rule, _derived(rule, method),
                                f"its exact {what} gives {_exact_list(at)}, the float one "
                                f"{_clip_list(fv)}", n)

    # -- piecewise ops -----------------------------------------------------------------------
    def piecewise(self, nd: Node, fin: FloatMap, eins: list[ExactMap], v: torch.Tensor
                  ) -> tuple[FloatMap, list[ExactMap]]:
        """A piecewise op: its methods against each other (first the switching functions, then
        the values against the module, then the cells), its float maps against the module."""
        rule = nd.piecewise_rule
        mod, where, N = nd.module, self.where, self.n
        in_shape, out_shape = tuple(nd.in_shapes[0]), tuple(nd.out_shape)
        if isinstance(rule, _ElementwiseRule):
            problem = elementwise_problem(rule, mod)
            if problem is not None:
                where.fail(rule, ["thresholds", "slopes_consts"], problem)

        def call(method: str, *args: Any) -> Any:
            return _call(where, rule, method, mod, *args)

        def fail(methods: str | Sequence[str], what: str, n: int | None = None) -> NoReturn:
            names = [methods] if isinstance(methods, str) else methods
            where.fail(rule, list(dict.fromkeys(_derived(rule, m) for m in names)), what, n)

        # states at the float input values; switching functions, float and exact, counted
        s = call("state", v)
        if not isinstance(s, torch.Tensor) or s.dtype != torch.int64 or \
                tuple(s.shape) != (N, *out_shape):
            fail("state", f"it gives {_describe(s)}; expected int64 states of shape "
                          f"{(N, *out_shape)}")
        S = call("num_switching", in_shape)
        if isinstance(S, bool) or not isinstance(S, int) or S < 0:
            fail("num_switching", f"it gives {S!r}; expected a non-negative int")
        fsw = self.float_map(rule, "switching", call("switching", fin), (S,), "num_switching")
        esw = [call("exact_switching", e) for e in eins]
        for n, m in enumerate(esw):
            if not isinstance(m, ExactMap) or m.n != S or m.k != fin.W.shape[1]:
                fail(["exact_switching", "num_switching"], f"exact_switching gives "
                     f"{_describe(m)}; expected {S} rows (num_switching) of "
                     f"{fin.W.shape[1]} coordinates", n)
        fs = fsw.at(self.t).reshape(N, S)
        plain = self.float_map(rule, "switching", call("switching", self.values(v)), (S,))
        self.same_values(rule, "switching", plain.b, fs, fsw)
        es = [m.at(q) for m, q in zip(esw, self.q, strict=True)]
        terms = _terms(fsw, self.x)
        # float and exact switching functions agree; where not, the one whose signs contradict
        # the states is wrong
        for n in range(N):
            eW, _ = _floats(esw[n])
            ev = torch.tensor([float(c) for c in es[n]], dtype=torch.float64)
            fW = fsw.W[n].reshape(fsw.W.shape[1], S).T
            if _close(ev, fs[n], _tol(torch.float64, terms[n])) and \
                    _close(eW, fW, _tol(torch.float64, fW)):
                continue
            ok_f = self.consistent(nd, s[n], fs[n].tolist(), call)
            ok_e = self.consistent(nd, s[n], es[n], call)
            blame = ["switching"] if ok_e and not ok_f else ["exact_switching"] if ok_f and \
                not ok_e else ["switching", "exact_switching"]
            fail(blame, f"switching gives {_clip_list(fs[n])}, exact_switching "
                        f"{_exact_list(es[n])} (state {_clip_list(s[n])})", n)
        # values: the float map of each state is the module's forward; where not, the state is
        # wrong if the state from the switching signs gives the module's value, else the map
        fout = self.float_map(rule, "apply", call("apply", fin, s), out_shape)
        values = fout.at(self.t)
        ref = self.reference(nd, [v])
        margin = [max(SWITCH_MARGIN * float(fs[n].abs().max() if S else 0.0),
                      16 * _tol(ref.dtype if ref is not None else torch.float64, terms[n]))
                  for n in range(N)]
        inside = [n for n in range(N) if all(e != 0 for e in es[n]) and
                  (S == 0 or float(fs[n].abs().min()) > margin[n])]
        if ref is not None:
            tol = _tol(ref.dtype, ref, _terms(fout, self.x))
            for n in range(N):
                if _close(values[n], ref[n], tol):
                    continue
                if n in inside:
                    signs = torch.tensor([[1 if e > 0 else -1 for e in es[n]]],
                                         dtype=torch.int64)
                    alt = call("state_from_signs", signs, in_shape)
                    if isinstance(alt, torch.Tensor) and alt.shape[1:] == s.shape[1:] and \
                            not torch.equal(alt[0], s[n]):
                        one = FloatMap(fin.W[n:n + 1], fin.b[n:n + 1])
                        other = call("apply", one, alt).at(self.t[n:n + 1])
                        if _close(other[0], ref[n], tol):
                            fail("state", f"it gives {_clip_list(s[n])}, but the state "
                                          f"{_clip_list(alt[0])} of the switching signs "
                                          f"(state_from_signs) gives the module's value "
                                          f"{_clip_list(ref[n])}", n)
                fail("apply", f"in state {_clip_list(s[n])} its float map gives "
                              f"{_clip_list(values[n])}, the module {_clip_list(ref[n])}", n)
        # inside a cell: states, signs and cell constraints agree (with the exact signs, which
        # the float ones equal there)
        for n in inside:
            sig = [1 if e > 0 else -1 for e in es[n]]
            self.signs_and_cells(nd, s[n], sig, es[n], call, fail, n)
        # everywhere: the plain forms the exact layer uses, and the tie states
        for n in range(N):
            idx, sg = self.cells(nd, s[n], S, call, fail, n)
            want = sorted(set(zip(idx, sg, strict=True)))
            got = call("constraint_list", tuple(s[n].reshape(-1).tolist()), in_shape, out_shape)
            try:
                got_set = sorted({(int(i), int(g)) for i, g in got})
            except (TypeError, ValueError):
                fail("constraint_list", f"it gives {_short(got, 120)}; expected (index, "
                                        "sign) pairs", n)
            if got_set != want:
                fail("constraint_list", f"for state {_clip_list(s[n])} it gives "
                     f"{_pairs(got_set)}, cell_constraints gives {_pairs(want)} (the exact layer "
                     "builds cells from constraint_list)", n)
            sig0 = [(e > 0) - (e < 0) for e in es[n]]
            exact_in = [Fraction(a) for a in v[n].reshape(-1).tolist()] == eins[n].at(self.q[n])
            self.plain_state(nd, sig0, s[n] if n in inside or exact_in else None, call, fail, n)
            if 0 in sig0:
                tie = call("state_from_signs", torch.tensor([sig0], dtype=torch.int64), in_shape)
                if exact_in and not torch.equal(tie[0], s[n]):
                    fail(["state", "state_from_signs"], f"at a tie (a switching function exactly "
                         f"zero: {_exact_list(es[n])}) state gives {_clip_list(s[n])}, "
                         f"state_from_signs {_clip_list(tie[0])}; a tie takes one documented "
                         "state", n)
        plain_out = self.float_map(rule, "apply", call("apply", self.values(v), s), out_shape)
        self.same_values(rule, "apply", plain_out.b, values, fout)
        if ref is not None:
            self.jacobian(nd, fin, fout, v, inside, rule, "apply")
        eouts = [call("exact_apply", e, s[n].reshape(out_shape)) for n, e in enumerate(eins)]
        self.exact_vs_float(rule, "exact_apply", fout, eouts)
        return fout, eouts

    def values(self, v: torch.Tensor) -> FloatMap:
        """Plain values as a map without free coordinates (k == 0), as the float tracer passes."""
        return FloatMap(v.new_zeros((v.shape[0], 0, *v.shape[1:])), v)

    def float_map(self, rule: Any, method: str, got: Any, shape: tuple[int, ...],
                  also: str | None = None) -> FloatMap:
        """``got`` checked to be a FloatMap of the batch with entries of ``shape``."""
        want_b = (self.n, *shape)
        if not isinstance(got, FloatMap) or not isinstance(got.W, torch.Tensor) or \
                not isinstance(got.b, torch.Tensor) or tuple(got.b.shape) != want_b or \
                got.W.dim() != len(want_b) + 1 or tuple(got.W.shape[2:]) != tuple(shape):
            methods = [_derived(rule, method)] + ([_derived(rule, also)] if also else [])
            self.where.fail(rule, list(dict.fromkeys(methods)),
                            f"{method} gives {_describe(got)}; expected a FloatMap with b of "
                            f"shape {want_b} and W of shape (N, k, *{tuple(shape)})")
        return got

    def cells(self, nd: Node, state: torch.Tensor, S: int, call: Any, fail: Any, n: int
              ) -> tuple[list[int], list[int]]:
        """``cell_constraints`` of ``state`` as lists, checked to be indices and signs."""
        got = call("cell_constraints", state, tuple(nd.in_shapes[0]))
        try:
            idx, sg = got
            idx = [int(i) for i in idx.reshape(-1).tolist()]
            sg = [int(g) for g in sg.reshape(-1).tolist()]
        except (TypeError, ValueError, AttributeError):
            fail("cell_constraints", f"it gives {_short(got, 120)}; expected two int tensors "
                                     "(indices, signs)", n)
        if len(idx) != len(sg) or not all(0 <= i < S for i in idx) or \
                not all(g in (1, -1) for g in sg):
            fail("cell_constraints", f"it gives indices {_clip_list(idx)} and signs "
                 f"{_clip_list(sg)}; expected as many indices in [0, {S}) as signs +1/-1", n)
        return idx, sg

    def consistent(self, nd: Node, state: torch.Tensor, vals: Sequence[Any], call: Any) -> bool:
        """Do switching values ``vals`` give ``state`` (state_from_signs) and satisfy its cell
        constraints strictly?"""
        if any(val == 0 for val in vals):
            return False
        sig = torch.tensor([[1 if val > 0 else -1 for val in vals]], dtype=torch.int64)
        got = call("state_from_signs", sig, tuple(nd.in_shapes[0]))
        idx, sg = call("cell_constraints", state, tuple(nd.in_shapes[0]))
        ok = all(g * vals[int(i)] > 0 for i, g in zip(idx.tolist(), sg.tolist(), strict=True)
                 if 0 <= int(i) < len(vals))
        return bool(isinstance(got, torch.Tensor) and torch.equal(got[0], state) and ok)

    def signs_and_cells(self, nd: Node, state: torch.Tensor, sig: list[int], es: list[Fraction],
                        call: Any, fail: Any, n: int) -> None:
        """Inside a cell: ``state_from_signs`` of the signs is the state, and the state's cell
        constraints hold; where not, which of them (or the switching functions) is wrong."""
        in_shape = tuple(nd.in_shapes[0])
        from_signs = call("state_from_signs", torch.tensor([sig], dtype=torch.int64), in_shape)
        if not isinstance(from_signs, torch.Tensor) or from_signs.dtype != torch.int64 or \
                tuple(from_signs.shape) != (1, *state.shape):
            fail("state_from_signs", f"it gives {_describe(from_signs)}; expected int64 states "
                                     f"of shape {(1, *state.shape)}", n)
        idx, sg = self.cells(nd, state, len(sig), call, fail, n)
        sfs_ok = torch.equal(from_signs[0], state)
        cc_ok = all(g * es[i] > 0 for i, g in zip(idx, sg, strict=True))
        if sfs_ok and cc_ok:
            return
        broken = [(i, g) for i, g in zip(idx, sg, strict=True) if not g * es[i] > 0]
        if sfs_ok:
            fail("cell_constraints", f"for state {_clip_list(state)} it requires "
                 f"{_pairs(broken[:4])} (index, sign: sign * switching > 0), which the switching "
                 f"values {_exact_list(es)} break, while state_from_signs agrees with state", n)
        if cc_ok:
            fail("state_from_signs", f"the switching signs {_clip_list(sig)} give "
                 f"{_clip_list(from_signs[0])}; state gives {_clip_list(state)}, whose "
                 "cell_constraints hold", n)
        forced = list(sig)
        for i, g in zip(idx, sg, strict=True):
            forced[i] = g
        agree = call("state_from_signs", torch.tensor([forced], dtype=torch.int64), in_shape)
        if isinstance(agree, torch.Tensor) and torch.equal(agree[0], state):
            fail(["switching", "exact_switching"], f"their signs {_clip_list(sig)} contradict "
                 f"state {_clip_list(state)}: state_from_signs gives "
                 f"{_clip_list(from_signs[0])} and cell_constraints {_pairs(broken[:4])} fail "
                 "(a switching function with the wrong sign? or state_from_signs and "
                 "cell_constraints with the opposite sign convention)", n)
        fail(["state_from_signs", "cell_constraints"], f"the switching signs {_clip_list(sig)} "
             f"give state {_clip_list(from_signs[0])}, state gives {_clip_list(state)}, and the "
             f"cell constraints {_pairs(broken[:4])} fail", n)

    def plain_state(self, nd: Node, sig: list[int], state: torch.Tensor | None, call: Any,
                    fail: Any, n: int) -> None:
        """``state_tuple`` (the exact layer's form, signs possibly 0 on a tie) is
        ``state_from_signs`` as a flat tuple; where not, the one that differs from ``state``
        (the op's state at the point, when the signs are those of its exact input) is wrong."""
        in_shape = tuple(nd.in_shapes[0])
        got = call("state_tuple", list(sig), in_shape)
        want = call("state_from_signs", torch.tensor([sig], dtype=torch.int64), in_shape)
        want_t = tuple(want.reshape(-1).tolist())
        if not isinstance(got, tuple) or not all(isinstance(g, int) for g in got):
            fail("state_tuple", f"it gives {_short(got, 120)}; expected a tuple of ints "
                                "(the exact layer hashes and compares states as tuples)", n)
        if got != want_t:
            at = tuple(state.reshape(-1).tolist()) if state is not None else None
            blame = ["state_from_signs"] if at == got else ["state_tuple"] if at == want_t \
                else ["state_tuple", "state_from_signs"]
            seen = f"; state gives {_clip_list(list(at))}" if at is not None else ""
            fail(blame, f"for the signs {_clip_list(sig)} state_tuple gives "
                        f"{_clip_list(list(got))}, state_from_signs {_clip_list(list(want_t))}"
                        f"{seen}", n)


def _floats(m: ExactMap) -> tuple[torch.Tensor, torch.Tensor]:
    """An exact map's linear part (n, k) and offset (n,) as nearest float64s."""
    vals = [float(_exact.to_fraction(v)) for v in m.mat.entries()]
    full = torch.tensor(vals, dtype=torch.float64).reshape(m.n, m.k + 1)
    return full[:, :-1], full[:, -1]


def _pairs(pairs: Sequence[tuple[int, int]], most: int = 6) -> str:
    shown = ", ".join(f"({i}, {g:+d})" for i, g in list(pairs)[:most])
    return "[" + shown + (f", ... ({len(pairs)} in all)" if len(pairs) > most else "") + "]"


def _describe(x: Any) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {str(x.dtype).replace('torch.', '')} tensor of shape {tuple(x.shape)}"
    if isinstance(x, FloatMap):
        return f"a FloatMap with W of shape {tuple(x.W.shape)} and b of shape {tuple(x.b.shape)}"
    if isinstance(x, ExactMap):
        return f"an ExactMap of {x.n} rows"
    return _short(x, 80)


# ----------------------------------------------------------------------------- check_rule

@contextlib.contextmanager
def _registered(key: Any, rule: Rule | None) -> Iterator[None]:
    if rule is None or key is None:
        yield
        return
    old = RULES.get(key)
    RULES[key] = rule
    clear_exact_cache()
    try:
        yield
    finally:
        if old is not None:
            RULES[key] = old
        else:
            RULES.pop(key, None)
        clear_exact_cache()


def _inputs(shape: tuple[int, ...], dtype: torch.dtype, ties: Sequence[float]
            ) -> st.SearchStrategy[torch.Tensor]:
    """Batches of 1 to 3 inputs in ``dtype``: dyadic grid points (where kinks and ties happen),
    arbitrary floats, and the op's thresholds exactly."""
    size = math.prod(shape)
    value = st.one_of(st.integers(-128, 128).map(lambda k: k / 32),
                      st.floats(-4, 4, allow_nan=False, allow_infinity=False),
                      *([st.sampled_from(list(ties))] if ties else []))

    def batch(n: int) -> st.SearchStrategy[torch.Tensor]:
        return st.lists(value, min_size=n * size, max_size=n * size).map(
            lambda v: torch.tensor(v, dtype=torch.float64).reshape(n, *shape).to(dtype))

    return st.integers(1, 3).flatmap(batch)


def _ties(module: nn.Module, dtype: torch.dtype) -> list[float]:
    """An elementwise op's thresholds that the module's dtype holds exactly (inputs on a kink)."""
    rule = find_rule(type(module))
    if not isinstance(rule, _ElementwiseRule):
        return []
    try:
        if elementwise_problem(rule, module) is not None:
            return []
        ts = [float(t) for t in rule.thresholds(module)]
    except Exception:  # reported by the check itself
        return []
    return [t for t in ts if abs(t) <= 4 and float(torch.tensor(t, dtype=dtype)) == t]


#: Hypothesis's phases but its explanation (which lines only failing examples ran: noise here).
_PHASES = (Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink)


def check_rule(module_or_type: Any, rule: Rule | None = None, *, max_examples: int = 50,
               input_shape: Sequence[int] | None = None) -> None:
    """Fuzz the rule of a module with Hypothesis; an AssertionError names the wrong method of the
    rule, with a counterexample (the module, the input, Hypothesis's falsifying example).

    ``module_or_type``: a module instance (as given on a fifth of the examples, then with every
    floating parameter and buffer redrawn, in its own dtype), a module type (built-in example
    modules in float64 and float32 for torch's layers, else the type called without arguments)
    or a Hypothesis strategy of modules (e.g. ``st.builds(MyScale, st.floats(-4, 4))``: what
    redrawing tensors cannot vary). ``rule``, when given, is registered for the module's type
    (each drawn module's type, for a strategy) for the duration of the check. ``input_shape``
    defaults to the module's ``input_shape`` attribute, its first ``nn.Linear``'s input, else
    ``(4,)``.

    Inputs are batches in the module's dtype: dyadic grid points (kinks and ties), arbitrary
    floats and an elementwise op's thresholds. Each op of the captured module is checked:

    - its float maps reproduce its module's forward (tolerance: 1e-9 relative in float64,
      64 machine epsilons in a lower precision) and their linear part its autograd Jacobian,
      with free coordinates and on plain values (k == 0) alike; an affine rule's ``constant``
      and ``linear`` are told apart at zero;
    - its exact maps (on the module's exact parameters) equal the float ones;
    - a piecewise op's ``state``, ``state_from_signs``, ``cell_constraints``,
      ``constraint_list``, ``state_tuple``, ``switching`` / ``exact_switching`` and
      ``num_switching`` agree with each other at every point inside a cell, and on ties
      (a switching function exactly zero) ``state_tuple`` and ``state_from_signs`` agree, and
      ``state`` with them; ``apply`` / ``exact_apply`` against the module as above. For an
      :class:`~exactrelu.rules.ElementwiseRule` the derived methods are reported as
      ``thresholds`` or ``slopes_consts``.

    Finally the captured module's float output is its forward, and the exact maps of the float
    states are the exact forward pass. A redrawn module that the rule's ``check`` refuses, or
    whose forward is not finite, is skipped.

    >>> from torch import nn
    >>> check_rule(nn.LeakyReLU, max_examples=5)
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise InvalidInputError(f"max_examples must be a positive int, got {max_examples!r}")
    if rule is not None and not isinstance(rule, Rule):
        raise InvalidInputError(f"rule must be an exactrelu Rule instance, got {rule!r}")
    per_draw = isinstance(module_or_type, st.SearchStrategy)
    key: Any = None
    if rule is not None and not per_draw:
        if isinstance(module_or_type, type):
            key = module_or_type
        elif isinstance(module_or_type, nn.Module):
            key = type(module_or_type)
        else:
            raise InvalidInputError("with a rule, pass the module type, a module instance or a "
                                    "strategy of modules")
    with _registered(key, rule):
        if isinstance(module_or_type, nn.Module) and _floating(module_or_type):
            # the module as given on a fifth of the examples, then copies with its tensors
            # redrawn (mixed in one run, Hypothesis spent most examples on the given module)
            mod = module_or_type
            shape = tuple(input_shape) if input_shape is not None else _guess_shape(mod)
            n = max(1, max_examples // 5)
            _fuzz(st.just(_Case(mod, shape)), rule, per_draw, n)
            if max_examples > n:
                _fuzz(_varied(mod, shape), rule, per_draw, max_examples - n)
        else:
            _fuzz(_cases(module_or_type, input_shape), rule, per_draw, max_examples)


def _fuzz(cases: st.SearchStrategy[_Case], rule: Rule | None, per_draw: bool,
          max_examples: int) -> None:
    """Hypothesis over ``cases`` and inputs for them; ``per_draw``: register ``rule`` for each
    drawn module's type."""
    @settings(max_examples=max_examples, deadline=None, database=None,
              report_multiple_bugs=False, phases=_PHASES,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                     HealthCheck.data_too_large])
    @given(st.data())
    def run(data: st.DataObject) -> None:
        case = data.draw(cases, label="module, input_shape")
        with _registered(type(case.module) if per_draw else None, rule):
            dtype = _dtype(case.module)
            x = data.draw(_inputs(case.shape, dtype, _ties(case.module, dtype)), label="x")
            clear_exact_cache()
            _Checker(case, x).run()

    run()


# ----------------------------------------------------------------------------- assert_regions

def assert_regions(net: Any, domain: Any, *, count: int | None = None,
                   patterns: Sequence[Any] | None = None, pieces: int | None = None,
                   vertices: int | Sequence[Sequence[Any]] | None = None,
                   **verify_kwargs: Any) -> Certificate:
    """Certify ``net`` on ``domain`` (:func:`exactrelu.verify`) and assert what is claimed about
    it; returns the certificate.

    ``count``: the number of regions; ``patterns``: their activation patterns (a list, one
    pattern per region); ``pieces``: the number of linear pieces; ``vertices``: their number or
    the exact points (any order; rationals, ints or floats taken exactly). Every claim that does
    not hold is in one AssertionError, raised at the caller's line (pytest hides this helper's
    frames): claimed against certified, the first regions missing from the claim with their
    witnesses (a decimal beside the exact value) and the first claimed patterns no region has.
    ``verify_kwargs`` go to :func:`exactrelu.verify` (``progress`` is False unless given).

    >>> from torch import nn
    >>> net = nn.Sequential(nn.Linear(1, 1))
    >>> assert_regions(net, [(-1, 1)], count=1, pieces=1, vertices=[[-1], [1]]).num_regions
    1
    """
    __tracebackhide__ = True
    from .verify import compare_claim, verify

    for name, value in (("count", count), ("pieces", pieces)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidInputError(f"{name}={value!r}: pass an int")
    verify_kwargs.setdefault("progress", False)
    cert = verify(net, domain, **verify_kwargs)
    problems = []
    if count is not None and count != cert.num_regions:
        problems.append(f"regions: claimed {count}, certified {cert.num_regions}")
    if patterns is not None:
        try:
            compare_claim(cert, list(patterns))
        except VerificationError as exc:
            problems.append("patterns: " + str(exc))
    if pieces is not None and pieces != cert.num_pieces:
        problems.append(f"pieces: claimed {pieces}, certified {cert.num_pieces}")
    if vertices is not None:
        problems += _vertex_problems(cert, vertices)
    if problems:
        raise AssertionError("exactrelu.testing.assert_regions: the certified regions differ "
                             f"from the claim ({cert.summary()}):\n" +
                             "\n".join(f"  {line}" for p in problems for line in p.splitlines()))
    return cert


_BAD_VERTICES = "vertices: pass a count or a list of points"


def _vertex_problems(cert: Certificate, vertices: int | Sequence[Sequence[Any]]) -> list[str]:
    if isinstance(vertices, bool):
        raise InvalidInputError(_BAD_VERTICES)
    if isinstance(vertices, int):
        if vertices != cert.num_vertices:
            return [f"vertices: claimed {vertices}, certified {cert.num_vertices}"]
        return []
    try:
        want = {tuple(Fraction(c) for c in p) for p in vertices}
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(_BAD_VERTICES) from None
    have = set(cert.vertices)
    missing, spurious = sorted(have - want), sorted(want - have)
    if not missing and not spurious:
        return []
    lines = [f"vertices: claimed {len(want)}, certified {cert.num_vertices}"]
    lines += [f"  missing: vertex ({', '.join(approx(c) for c in p)}) (certified, not claimed)"
              for p in missing[:5]]
    lines += [f"  spurious: ({', '.join(approx(c) for c in p)}) (claimed; no vertex there)"
              for p in spurious[:5]]
    more = len(missing) + len(spurious) - min(5, len(missing)) - min(5, len(spurious))
    if more > 0:
        lines.append(f"  ... and {more} more")
    return lines

