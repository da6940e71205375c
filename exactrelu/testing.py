"""Testing helpers for users who write layer rules: :func:`check_rule` fuzzes one with Hypothesis.

>>> from torch import nn
>>> check_rule(nn.ReLU, max_examples=5)
"""

from __future__ import annotations

import contextlib
import math
from fractions import Fraction
from typing import Any, Iterator, Sequence

import torch
from torch import nn

from ._deps import extra_missing

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError as err:
    raise extra_missing(err, "exactrelu.testing", "testing") from err

from .capture import capture
from .errors import InvalidInputError
from .graphs import affine_maps, exact_affine_maps
from .rules import RULES, Add, Cat, FloatMap, PiecewiseRule, Rule, clear_exact_cache, find_rule

__all__ = ["check_rule", "module_cases"]

REL = 1e-9
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


def _params(module: nn.Module, draw: Any) -> nn.Module:
    """float64, eval mode, parameters redrawn as dyadic numbers; running_var positive."""
    module = module.double().eval()
    value = st.integers(-64, 64).map(lambda k: k / 16)
    with torch.no_grad():
        for name, t in list(module.named_parameters()) + list(module.named_buffers()):
            if not t.is_floating_point():
                continue
            vals = [draw(value) for _ in range(t.numel())]
            if name.endswith("running_var"):
                vals = [abs(v) + 0.25 for v in vals]
            t.copy_(torch.tensor(vals, dtype=t.dtype).reshape(t.shape))
    return module


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


def module_cases(module_or_type: Any,
                 input_shape: Sequence[int] | None = None) -> st.SearchStrategy:
    """Strategy of ``(module, input_shape)`` pairs for a module instance, a module type (built-in
    example modules, or the type called with no arguments), or a strategy of modules."""
    if isinstance(module_or_type, st.SearchStrategy):
        if input_shape is None:
            raise InvalidInputError("pass input_shape with a strategy of modules")
        shape = tuple(input_shape)
        return module_or_type.map(lambda m: (m, shape))
    if isinstance(module_or_type, nn.Module):
        shape = tuple(input_shape) if input_shape is not None else _guess_shape(module_or_type)
        return st.just((module_or_type, shape))
    if isinstance(module_or_type, type):
        key = module_or_type
        if input_shape is None and _has_builtin(key):
            return st.composite(lambda draw: _builtin_case(key, draw))()
        try:
            mod = key()
        except TypeError as exc:
            raise InvalidInputError(
                f"{key.__name__}() needs arguments ({exc}); pass a module instance") from None
        return module_cases(mod, input_shape)
    raise InvalidInputError("expected a module, a module type or a strategy of modules, "
                            f"got {module_or_type!r}")


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


# ----------------------------------------------------------------------------- properties

def _close(a: torch.Tensor, b: torch.Tensor) -> bool:
    a, b = a.detach(), b.detach()
    scale = 1.0 + max([float(t.abs().max()) for t in (a, b) if t.numel()], default=0.0)
    return a.shape == b.shape and bool(((a - b).abs() <= REL * scale).all())


def _fail(prop: str, detail: str) -> None:
    raise AssertionError(f"check_rule: property '{prop}' failed: {detail}")


def _wrap(module: nn.Module) -> nn.Module:
    return module if find_rule(type(module)) is None else nn.Sequential(module)


def _check_one(module: nn.Module, shape: tuple[int, ...], x: torch.Tensor,
               where: list[str]) -> None:
    where[0] = "capture"
    net = _wrap(module)
    prog = capture(net, shape)
    with torch.no_grad():
        ref = net(x.clone())
    # 1. float maps reproduce forward.
    where[0] = "float forward"
    out = prog.forward(x)
    if not _close(out, ref):
        _fail("float forward", f"rule forward {out.tolist()} != module forward {ref.tolist()} "
                               f"at x={x.tolist()}")
    g = affine_maps(prog, x)
    dims = tuple(range(1 + len(prog.output_shape), g.weight.dim()))
    xb = x.reshape(x.shape[0], *[1] * len(prog.output_shape), *shape)
    lin = (g.weight * xb).sum(dims) + g.bias if dims else g.bias
    if not _close(lin, ref):
        _fail("float affine map", f"weight @ x + bias = {lin.tolist()} != module forward "
                                  f"{ref.tolist()} at x={x.tolist()}")
    # Switching values at x (float), per piecewise op; away from switching the Jacobian must match.
    where[0] = "Jacobian"
    m0 = FloatMap(x.new_zeros((x.shape[0], 0, *shape)), x)
    sw: list[torch.Tensor] = []
    prog.float_run(m0, collect=sw)
    sw_vals = [s.b.reshape(x.shape[0], -1) for s in sw]
    margin = [SWITCH_MARGIN * (1 + float(v.abs().max())) if v.numel() else 0.0 for v in sw_vals]
    for n in range(x.shape[0]):
        away = all(not v.numel() or float(v[n].abs().min()) > mg for v, mg in zip(sw_vals, margin))
        if not away:
            continue
        jac = torch.func.jacrev(lambda z: net(z.unsqueeze(0))[0])(x[n].clone())
        if not _close(g.weight[n], jac.reshape(g.weight[n].shape)):
            _fail("Jacobian", f"float weight {g.weight[n].tolist()} != autograd Jacobian "
                              f"{jac.tolist()} at x={x[n].tolist()}")
    # 2. switching functions consistent with the reported state.
    where[0] = "state from signs"
    for j, nd in enumerate(prog.piecewise_nodes()):
        rule: PiecewiseRule = nd.rule  # type: ignore[assignment]
        vals = sw_vals[j]
        state = g.pattern[j]
        for n in range(x.shape[0]):
            if vals.numel() and float(vals[n].abs().min()) <= margin[j]:
                continue
            signs = torch.where(vals[n:n + 1] > 0, 1, -1)
            st_signs = rule.state_from_signs(nd.module, signs, nd.in_shapes[0])
            if not torch.equal(st_signs[0].cpu(), state[n].cpu()):
                _fail("state from signs", f"{nd.name}: state_from_signs gives "
                                          f"{st_signs[0].tolist()}, state gives "
                                          f"{state[n].tolist()} at x={x[n].tolist()}")
            idx, sg = rule.cell_constraints(nd.module, state[n], nd.in_shapes[0])
            v = vals[n].cpu()[idx.cpu()] * sg.cpu().to(vals.dtype)
            if v.numel() and not bool((v > 0).all()):
                _fail("cell constraints", f"{nd.name}: sign * switching = {v.tolist()} not all "
                                          f"> 0 for state {state[n].tolist()} at x={x[n].tolist()}")
    # 3. exact map of the pattern == exact forward at the rational point; both match float.
    where[0] = "exact map"
    for n in range(x.shape[0]):
        q = [Fraction(v) for v in x[n].reshape(-1).tolist()]
        exact = prog.exact_forward(q)
        pattern = [p[n] for p in g.pattern]
        em = exact_affine_maps(prog, pattern)
        lin_q = [sum((a * t for a, t in zip(row, q)), Fraction(0)) + c
                 for row, c in zip(em.output.linear(), em.output.offset())]
        if lin_q != list(exact):
            _fail("exact map", f"exact map of the pattern gives {[str(v) for v in lin_q]}, "
                               f"exact forward gives {[str(v) for v in exact]} at x={q}")
        ex = torch.tensor([float(v) for v in exact], dtype=torch.float64)
        if not _close(ex, ref[n].reshape(-1).to(torch.float64)):
            _fail("exact forward", f"exact forward {[str(v) for v in exact]} != module forward "
                                   f"{ref[n].reshape(-1).tolist()} at x={x[n].tolist()}")
        for j, (e_sw, f_sw) in enumerate(zip(em.switching, sw_vals)):
            es = [sum((a * t for a, t in zip(row, q)), Fraction(0)) + c
                  for row, c in zip(e_sw.linear(), e_sw.offset())]
            fs = f_sw[n].to(torch.float64)
            if not _close(torch.tensor([float(v) for v in es], dtype=torch.float64), fs):
                _fail("exact switching", f"exact switching values {[str(v) for v in es]} != "
                                         f"float {fs.tolist()} at x={q}")
            if any(v == 0 for v in es):
                continue
            nd = prog.piecewise_nodes()[j]
            signs = torch.tensor([[1 if v > 0 else -1 for v in es]], dtype=torch.int64)
            rule_j: PiecewiseRule = nd.rule  # type: ignore[assignment]
            st_ex = rule_j.state_from_signs(nd.module, signs, nd.in_shapes[0])[0]
            if not torch.equal(st_ex.cpu(), pattern[j].cpu()):
                _fail("state from exact signs", f"{nd.name}: exact signs give state "
                                                f"{st_ex.tolist()}, float state "
                                                f"{pattern[j].tolist()} at x={q}")


@contextlib.contextmanager
def _registered(key: Any, rule: Rule | None) -> Iterator[None]:
    if rule is None:
        yield
        return
    had, old = key in RULES, RULES.get(key)
    RULES[key] = rule
    clear_exact_cache()
    try:
        yield
    finally:
        if had:
            RULES[key] = old  # type: ignore[assignment]
        else:
            RULES.pop(key, None)
        clear_exact_cache()


def _inputs(shape: tuple[int, ...]) -> st.SearchStrategy[torch.Tensor]:
    size = math.prod(shape)
    value = st.one_of(st.integers(-128, 128).map(lambda k: k / 32),
                      st.floats(-4, 4, allow_nan=False, allow_infinity=False))
    def batch(n: int) -> st.SearchStrategy[torch.Tensor]:
        return st.lists(value, min_size=n * size, max_size=n * size).map(
            lambda v: torch.tensor(v, dtype=torch.float64).reshape(n, *shape))

    return st.integers(1, 3).flatmap(batch)


def check_rule(module_or_type: Any, rule: Rule | None = None, *, max_examples: int = 50,
               input_shape: Sequence[int] | None = None) -> None:
    """Fuzz the rule of a module (type) with Hypothesis; raise AssertionError naming the property.

    ``module_or_type``: a module instance, a module type (built-in example modules for the
    built-in types, else the type called without arguments), or a strategy of modules. ``rule``,
    when given, is registered for the module's type for the duration of the check. Checked at
    random float64 inputs (dyadic grid points, where kinks and ties happen, and arbitrary floats):

    - ``float forward`` / ``float affine map``: the rule's float maps reproduce the module
      (rel 1e-9);
    - ``Jacobian``: the float weight equals ``torch.func.jacrev`` away from switching;
    - ``state from signs`` / ``cell constraints``: the reported state follows from the signs of
      the switching functions and satisfies its cell constraints strictly;
    - ``exact map`` / ``exact forward`` / ``exact switching`` / ``state from exact signs``: the
      exact map of the pattern equals the exact forward pass at the rational point, which equals
      the float forward, and the exact switching functions agree with the float ones.

    >>> from torch import nn
    >>> check_rule(nn.LeakyReLU, max_examples=5)
    """
    if isinstance(max_examples, bool) or not isinstance(max_examples, int) or max_examples < 1:
        raise InvalidInputError(f"max_examples must be a positive int, got {max_examples!r}")
    if rule is not None and not isinstance(rule, Rule):
        raise InvalidInputError(f"rule must be an exactrelu Rule instance, got {rule!r}")
    if rule is not None:
        if isinstance(module_or_type, type):
            key: Any = module_or_type
        elif isinstance(module_or_type, nn.Module):
            key = type(module_or_type)
        else:
            raise InvalidInputError("with a rule, pass the module type or a module instance")
    else:
        key = None
    with _registered(key, rule):
        cases = module_cases(module_or_type, input_shape)

        @settings(max_examples=max_examples, deadline=None, database=None,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                         HealthCheck.data_too_large])
        @given(st.data())
        def run(data: st.DataObject) -> None:
            module, shape = data.draw(cases, label="module, input_shape")
            x = data.draw(_inputs(tuple(shape)), label="x")
            clear_exact_cache()
            where = ["capture"]
            try:
                _check_one(module, tuple(shape), x, where)
            except AssertionError:
                raise
            except Exception as exc:  # a rule that crashes breaks the property being checked
                raise AssertionError(f"check_rule: property '{where[0]}' failed: the rule raised "
                                     f"{type(exc).__name__}: {exc}") from exc

        run()
