"""Capture an ordinary ``torch.nn.Module`` as a :class:`Program`: a list of ops, each with its rule.

The program computes exactly what ``net(x)`` computes, or capture refuses the model. A plain
``nn.Sequential`` is walked directly (every entry, in order: a module listed twice is called twice);
anything else goes through ``torch.fx``, with every module that has a rule as a leaf. Every
problem (an op without a rule, a module in a state no rule handles such as BatchNorm in train
mode, a hook, a redefined forward, an unusable parameter, a stale read after an in-place op) is
collected, and one :class:`~exactrelu.errors.UnsupportedModelError` lists them all, each naming
the module by its qualified name.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import math
import operator
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import torch
import torch.fx as fx
from torch import nn
from torch.nn.modules import module as _module_mod
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.utils import parametrize
from torch.nn.utils.spectral_norm import SpectralNorm as _OldSpectralNorm
from torch.nn.utils.weight_norm import WeightNorm as _OldWeightNorm

from . import _exact
from ._exact import ExactMap
from .errors import InvalidInputError, UnsupportedModelError
from .rules import (ADD_OPS, CAT_OPS, FUNCTIONAL_MODULES, Add, Cat, FloatMap, PiecewiseRule,
                    Reshape, Rule, find_rule, module_state, overrides, registered_class,
                    rule_conflict)

__all__ = ["Program", "Node", "capture"]

INPUT = -1


@dataclass
class Node:
    """One captured op: ``module`` (real or pseudo) applied to the outputs of ``inputs``."""

    name: str
    module: Any
    rule: Rule
    inputs: list[int]
    in_shapes: list[tuple[int, ...]] = field(default_factory=list)
    out_shape: tuple[int, ...] = ()

    @property
    def piecewise(self) -> bool:
        return self.rule.piecewise


class Program:
    """A captured network: ops in topological order, their rules and shapes.

    The float and exact passes share one loop: :meth:`float_run` pushes a batch of local affine
    maps (torch, any device/dtype) through every op, :meth:`exact_run` one exact map for a given
    activation pattern. A *pattern* is a list with one int64 state tensor per piecewise op.
    """

    def __init__(self, net: nn.Module, nodes: list[Node], input_shape: tuple[int, ...], output: int) -> None:
        self.net = net
        self.nodes = nodes
        self.input_shape = input_shape
        self.output = output
        self.piecewise = [i for i, nd in enumerate(nodes) if nd.piecewise]
        self._last_use = self._compute_last_use()

    # --------------------------------------------------------------------------- description
    @property
    def in_dim(self) -> int:
        return math.prod(self.input_shape)

    @property
    def output_shape(self) -> tuple[int, ...]:
        return self.nodes[self.output].out_shape

    @property
    def num_piecewise(self) -> int:
        return len(self.piecewise)

    def piecewise_nodes(self) -> list[Node]:
        return [self.nodes[i] for i in self.piecewise]

    def num_switching(self, j: int) -> int:
        """Number of switching functions of piecewise op ``j``."""
        nd = self.nodes[self.piecewise[j]]
        return nd.rule.num_switching(nd.module, nd.in_shapes[0])  # type: ignore[attr-defined]

    def notes(self) -> list[str]:
        """Every place where the network is not taken exactly as written (BatchNorm folding)."""
        out: list[str] = []
        for nd in self.nodes:
            out += [f"{nd.name}: {n}" for n in nd.rule.notes(nd.module)]
        return out

    def describe(self) -> list[dict[str, Any]]:
        return [{"name": nd.name, "op": _op_name(nd.module), "inputs": nd.inputs,
                 "in_shapes": [list(s) for s in nd.in_shapes], "out_shape": list(nd.out_shape)}
                for nd in self.nodes]

    def digest(self) -> str:
        """SHA-256 of the architecture and of the exact (float64) values of every tensor a rule
        reads (:meth:`Rule.tensors <exactrelu.rules.Rule.tensors>`: a parametrized weight as
        computed); for a module that is not one of torch's own, also its submodules' tensors and
        its plain attributes (:func:`rules.module_state`)."""
        h = hashlib.sha256()
        h.update(repr(self.input_shape).encode())
        for nd in self.nodes:
            h.update(f"|{nd.name}|{_op_name(nd.module)}|{nd.inputs}|{nd.out_shape}|".encode())
            for _, t in nd.rule.tensors(nd.module):
                if t is not None:
                    h.update(t.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
            for attr in ("negative_slope", "min_val", "max_val", "eps", "stride", "padding", "kernel_size",
                         "dilation", "groups", "start_dim", "end_dim", "dim", "shape", "ceil_mode",
                         "count_include_pad", "divisor_override", "output_size"):
                if hasattr(nd.module, attr):
                    h.update(f"{attr}={getattr(nd.module, attr)!r};".encode())
            if isinstance(nd.module, nn.Module) and not type(nd.module).__module__.startswith("torch."):
                # a user's module with a registered rule: whatever its rule may read
                for part in module_state(nd.module):
                    h.update(part)
        return h.hexdigest()

    def __repr__(self) -> str:
        lines = [f"Program(input_shape={self.input_shape}, output_shape={self.output_shape})"]
        for i, nd in enumerate(self.nodes):
            src = ",".join("x" if j == INPUT else f"%{j}" for j in nd.inputs)
            lines.append(f"  %{i} = {nd.name}: {_op_name(nd.module)}({src}) -> {nd.out_shape}")
        return "\n".join(lines)

    # --------------------------------------------------------------------------- passes
    def _compute_last_use(self) -> list[int]:
        last = list(range(len(self.nodes)))
        for i, nd in enumerate(self.nodes):
            for j in nd.inputs:
                if j != INPUT:
                    last[j] = max(last[j], i)
        if self.output != INPUT:
            last[self.output] = len(self.nodes)
        return last

    def float_run(self, m0: FloatMap, *, t: torch.Tensor | None = None,
                  states: Sequence[torch.Tensor | None] | None = None,
                  until: int | None = None, collect: list | None = None) -> tuple[FloatMap, list[torch.Tensor]]:
        """Push local affine maps through the network.

        ``m0``: maps of the input, ``W`` (N, k, *input_shape), ``b`` (N, *input_shape). The state of
        piecewise op ``j`` is ``states[j]`` when given, else decided from the values at points ``t``
        (N, k) (with k == 0 the maps are values and ``t`` is not needed). With ``until=j`` the pass
        stops at piecewise op ``j`` and returns the maps of its switching functions (N, k, S).
        With a list ``collect``, the switching maps of every piecewise op are appended to it.
        Returns (maps, states of the piecewise ops passed).
        """
        def decide(rule: PiecewiseRule, nd: Node, m: FloatMap) -> torch.Tensor:
            return rule.state(nd.module, m.at(t) if t is not None else m.b)

        return self._run(m0, states, until, collect, decide, exact=False)

    def exact_run(self, m0: ExactMap, states: Sequence[torch.Tensor | None] | None = None,
                  until: int | None = None, collect: list | None = None) -> tuple[ExactMap, list[torch.Tensor]]:
        """The exact counterpart of :meth:`float_run` for one sample.

        ``m0`` is the exact input map (``k == 0``: exact values, an exact forward pass). States not
        given are decided from exact values (only possible when ``k == 0``).
        """
        def decide(rule: PiecewiseRule, nd: Node, m: ExactMap) -> torch.Tensor:
            if m.k != 0:
                raise InvalidInputError("exact_run needs the states when the map has free coordinates")
            return _exact_state(rule, nd, m)

        return self._run(m0, states, until, collect, decide, exact=True)

    def run_nodes(self, values: dict[int, Any], lo: int, hi: int,
                  step: Callable[[int, Node, list[Any]], Any]) -> dict[int, Any]:
        """Run nodes ``lo..hi-1`` in order over ``values`` (node index -> value, ``-1`` the input),
        in place: ``values[i] = step(i, node, [values[s] for s in node.inputs])``, and every node's
        value is dropped after its last use (the program's output and the input are kept).
        Returns ``values``.

        This is the one node loop of the project: :meth:`float_run` / :meth:`exact_run` and the
        exact passes of the certifier and the checker (which resume it from a stored ``values``
        between piecewise ops) all go through it.
        """
        nodes, last = self.nodes, self._last_use
        for i in range(lo, hi):
            nd = nodes[i]
            values[i] = step(i, nd, [values[s] for s in nd.inputs])
            for s in set(nd.inputs):
                if s != INPUT and last[s] <= i:
                    values.pop(s, None)
        return values

    def _run(self, m0: Any, states: Sequence[torch.Tensor | None] | None, until: int | None,
             collect: list | None, decide: Any, exact: bool) -> tuple[Any, list[torch.Tensor]]:
        """The one pass behind :meth:`float_run` and :meth:`exact_run`: :meth:`run_nodes` from
        one piecewise op to the next, piecewise states given or decided by ``decide``."""
        def forward(i: int, nd: Node, ins: list[Any]) -> Any:
            if exact:
                return nd.rule.exact_forward(nd.module, ins, nd.out_shape)
            return nd.rule.float_forward(nd.module, ins)

        values: dict[int, Any] = {INPUT: m0}
        found: list[torch.Tensor] = []
        lo = 0
        for j, p in enumerate(self.piecewise):
            self.run_nodes(values, lo, p, forward)
            nd = self.nodes[p]
            rule: PiecewiseRule = nd.rule  # type: ignore[assignment]
            x = values[nd.inputs[0]]
            switching = rule.exact_switching if exact else rule.switching
            if until == j:
                return switching(nd.module, x), found
            if collect is not None:
                collect.append(switching(nd.module, x))
            given = states[j] if states is not None and j < len(states) else None
            if given is None:
                given = decide(rule, nd, x)
            found.append(given)

            def apply(i: int, nd: Node, ins: list[Any], st: torch.Tensor = given) -> Any:
                if exact:
                    return nd.rule.exact_apply(nd.module, ins[0], st.reshape(nd.out_shape))
                return nd.rule.apply(nd.module, ins[0], st.to(ins[0].b.device))

            self.run_nodes(values, p, p + 1, apply)
            lo = p + 1
        if until is not None:
            raise IndexError(f"the program has {self.num_piecewise} piecewise ops, not {until + 1}")
        self.run_nodes(values, lo, len(self.nodes), forward)
        return values[self.output], found

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Float forward pass through the rules (BatchNorm folded), in ``x``'s dtype/device."""
        n = x.shape[0]
        m0 = FloatMap(x.new_zeros((n, 0, *self.input_shape)), x.reshape(n, *self.input_shape))
        return self.float_run(m0)[0].b

    def exact_forward(self, x: Sequence[Any]) -> list:
        """Exact forward pass at one rational input (flat sequence of Fractions/ints/floats)."""
        m0 = _exact.constant_map(x, self.input_shape)
        return self.exact_run(m0)[0].values()


def _exact_state(rule: PiecewiseRule, nd: Node, m: ExactMap) -> torch.Tensor:
    """States decided exactly: the signs of the exact switching functions (0 on ties, which
    ``state_from_signs`` resolves by the documented tie rule)."""
    sw = rule.exact_switching(nd.module, m).values()
    signs = torch.tensor([(v > 0) - (v < 0) for v in sw], dtype=torch.int64).unsqueeze(0)
    return rule.state_from_signs(nd.module, signs, m.shape)[0]


def _op_name(module: Any) -> str:
    t = type(module)
    return t.__name__ if t.__module__.startswith("exactrelu") else f"{t.__module__}.{t.__qualname__}"


# ------------------------------------------------------------------------------- capture

def capture(net: nn.Module, input_shape: Sequence[int]) -> Program:
    """Capture ``net`` for inputs of per-sample shape ``input_shape`` (no batch dimension).

    The program computes what ``net(x)`` computes, or capture raises one
    :class:`~exactrelu.errors.UnsupportedModelError` listing every module or op it cannot model
    and why: ops without a rule, modules in a state no rule handles (train-mode BatchNorm),
    forward hooks and pre-hooks (on a module or global), a subclass that redefines the forward
    of a class with a rule, a forward replaced on the instance, a parameter that is complex,
    integer or not finite, a parametrization in train mode, and an in-place op whose input is
    read again afterwards. A module called twice is two ops sharing its parameters.

    >>> net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    >>> capture(net, (2,)).num_piecewise
    1
    """
    if not isinstance(net, nn.Module):
        raise InvalidInputError(f"expected a torch.nn.Module, got {type(net).__name__}")
    try:
        input_shape = tuple(operator.index(s) for s in input_shape)
    except TypeError:
        raise InvalidInputError(f"input_shape must be a sequence of ints (no batch dimension), got {input_shape!r}") from None
    if not input_shape or any(s <= 0 for s in input_shape):
        raise InvalidInputError(f"input_shape must be non-empty with positive sizes (no batch dimension), got {input_shape}")

    builder = _Builder()
    builder.problems += _global_hook_problems()
    out = builder.module(net, "", [INPUT])
    problems = builder.problems + builder.tensor_problems() + builder.inplace_problems(out)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise UnsupportedModelError(
            f"{type(net).__name__} has {len(problems)} operation(s) exactrelu cannot handle:\n{lines}\n"
            "Register a rule for a module type or function with exactrelu.register_rule(...) "
            "(see exactrelu.rules), or change the model as the message says.", problems)
    if not builder.nodes:
        raise InvalidInputError("the network has no layers (its output is its input); "
                                "give a network with at least one layer")
    prog = Program(net, builder.nodes, input_shape, out)
    _infer_shapes(prog)
    for nd in prog.nodes:
        if 0 in nd.out_shape:
            raise InvalidInputError(f"layer {nd.name!r} has an output of size zero {nd.out_shape}; "
                                    "give every layer at least one output")
    return prog


def _global_hook_problems() -> list[str]:
    """Forward hooks registered for every module (``register_module_forward_hook`` and
    ``register_module_forward_pre_hook``): they run inside ``net(x)`` and may change its value.
    Backward hooks do not change the forward value and are allowed."""
    out = []
    for kind, register, hooks in (
            ("forward hook", "forward_hook", _module_mod._global_forward_hooks),
            ("forward pre-hook", "forward_pre_hook", _module_mod._global_forward_pre_hooks)):
        for h in hooks.values():
            out.append(f"<global> ({_callable_name(h)}): a global {kind} (torch.nn.modules.module."
                       f"register_module_{register}) runs inside every module call and may change "
                       "its output; remove it (handle.remove())")
    return out


def _callable_name(f: Any) -> str:
    f = getattr(f, "__func__", f)
    name = getattr(f, "__qualname__", None) or type(f).__qualname__
    return f"{getattr(f, '__module__', None) or type(f).__module__}.{name}"


def _hook_problem(label: str, mod: nn.Module, kind: str, hook: Any) -> str:
    if isinstance(hook, _OldWeightNorm):
        why = ("torch.nn.utils.weight_norm recomputes the weight in a forward pre-hook; use "
               "torch.nn.utils.parametrizations.weight_norm (supported) or remove_weight_norm")
    elif isinstance(hook, _OldSpectralNorm):
        why = ("torch.nn.utils.spectral_norm recomputes the weight in a forward pre-hook; use "
               "torch.nn.utils.parametrizations.spectral_norm in eval mode (supported) or "
               "remove_spectral_norm")
    else:
        why = (f"{kind} {_callable_name(hook)} may change what the module computes; remove it "
               "(handle.remove())")
    return f"{label} ({_op_name(mod)}): {why}"


class _Proxy(fx.Proxy):
    """An fx proxy that records ``x += y`` (and every other augmented assignment) as the in-place
    operator (``operator.iadd``). torch.fx's own proxy has no ``__iadd__``, so Python would fall
    back to ``x = x + y`` and the graph would lose the write into ``x``'s storage, which every
    other reference to that tensor sees when torch runs the module."""


def _inplace_operator(op: Callable[[Any, Any], Any]) -> Callable[[fx.Proxy, Any], fx.Proxy]:
    def method(self: fx.Proxy, other: Any) -> fx.Proxy:
        return self.tracer.create_proxy("call_function", op, (self, other), {})
    return method


for _name in ("iadd", "iand", "ifloordiv", "ilshift", "imod", "imul", "imatmul", "ior", "ipow",
              "irshift", "isub", "itruediv", "ixor"):
    setattr(_Proxy, f"__{_name}__", _inplace_operator(getattr(operator, _name)))


class _Tracer(fx.Tracer):
    """torch.fx's tracer with every module that has a rule (or inherits one it must not) as a
    leaf; it records the modules it traces through so that capture can check them too."""

    def __init__(self) -> None:
        super().__init__()
        self.inlined: list[tuple[str, nn.Module]] = []

    def proxy(self, node: fx.Node) -> fx.Proxy:
        return _Proxy(node, self)

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return (registered_class(type(m)) is not None
                or super().is_leaf_module(m, module_qualified_name))

    def call_module(self, m: nn.Module, forward: Callable[..., Any], args: tuple[Any, ...],
                    kwargs: dict[str, Any]) -> Any:
        try:
            name = self.path_of_module(m)
        except NameError:
            name = f"<{type(m).__name__} not registered as a submodule>"
        if not self.is_leaf_module(m, name):
            self.inlined.append((name, m))
        return super().call_module(m, forward, args, kwargs)


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = []
        self.problems: list[str] = []
        self.writes: set[int] = set()  # nodes that write their first input in place
        self._seen: set[int] = set()  # ids of modules whose own state was checked

    def add(self, name: str, module: Any, inputs: list[int]) -> int:
        rule = find_rule(type(module))
        if rule is None:
            why = rule_conflict(type(module)) or "no rule registered"
            self.problems.append(f"{name or '<root>'} ({_op_name(module)}): {why}")
            rule = Rule()
        else:
            why = rule.check(module)
            if why:
                self.problems.append(f"{name or '<root>'} ({_op_name(module)}): {why}")
        self.nodes.append(Node(name, module, rule, inputs))
        i = len(self.nodes) - 1
        if getattr(module, "inplace", False) is True and not isinstance(module, _DropoutNd):
            self.writes.add(i)
        return i

    def check_call(self, mod: nn.Module, name: str) -> None:
        """Report what makes calling ``mod`` differ from running its class's forward: hooks, a
        method replaced on the instance, a redefined ``__call__``. Once per module object."""
        if id(mod) in self._seen:
            return
        self._seen.add(id(mod))
        label = name or "<root>"
        for kind, hooks in (("forward pre-hook", mod._forward_pre_hooks),
                            ("forward hook", mod._forward_hooks)):
            self.problems += [_hook_problem(label, mod, kind, h) for h in hooks.values()]
        patched = sorted(vars(mod).keys() & _methods(type(mod)))
        if patched:
            self.problems.append(f"{label} ({_op_name(mod)}): {', '.join(patched)} replaced on the "
                                 "instance; capture follows the class's forward, so define the "
                                 "behaviour in the class instead")
        called = [k for k in _call_overrides(type(mod))
                  if not (k == "__call__" and _plain_graph_module_call(mod))]
        if called:
            self.problems.append(f"{label} ({_op_name(mod)}): its class redefines "
                                 f"{', '.join(called)}, so calling it need not run forward; define "
                                 "forward instead")

    def module(self, mod: Any, name: str, inputs: list[int]) -> int:
        label = name or "<root>"
        if not isinstance(mod, nn.Module):
            self.problems.append(f"{label}: {type(mod).__name__} is not a torch.nn.Module")
            return inputs[0] if inputs else INPUT
        self.check_call(mod, name)
        if registered_class(type(mod)) is not None:
            # its submodules (parametrizations, the layers of a user's module) run inside it
            for sub_name, sub in mod.named_modules(prefix=name):
                if sub is not mod:
                    self.check_call(sub, sub_name)
            return self.add(name, mod, inputs)
        if isinstance(mod, nn.Sequential) and not overrides(type(mod), nn.Sequential):
            cur = inputs
            # every entry of _modules in order, as Sequential.forward calls them (a module listed
            # twice is called twice; named_children would list it once)
            for child_name, child in mod._modules.items():
                cur = [self.module(child, f"{name}.{child_name}" if name else child_name, cur)]
            if not len(mod):
                return inputs[0] if len(inputs) == 1 else self.add(name, nn.Identity(), inputs)
            return cur[0]
        if fx.Tracer().is_leaf_module(mod, name):  # a torch.nn layer without a rule: name it, do not trace inside
            self.problems.append(f"{label} ({_op_name(mod)}): no rule registered")
            return inputs[0] if inputs else INPUT
        tracer = _Tracer()
        try:
            graph = tracer.trace(mod)
        except Exception as exc:  # fx raises many types; report one clear problem
            self.problems.append(f"{label} ({_op_name(mod)}): torch.fx cannot trace it ({exc})")
            return inputs[0] if inputs else INPUT
        for sub_name, sub in tracer.inlined:
            self.check_call(sub, f"{name}.{sub_name}" if name else sub_name)
        return self.graph(fx.GraphModule(tracer.root, graph), name, inputs)

    def graph(self, gm: fx.GraphModule, prefix: str, inputs: list[int]) -> int:
        env: dict[fx.Node, Any] = {}
        placeholders = 0
        out = INPUT
        for node in gm.graph.nodes:
            path = f"{prefix}.{node.target}" if prefix and node.op == "call_module" else (
                str(node.target) if node.op == "call_module" else f"{prefix + '.' if prefix else ''}{node.name}")
            if node.op == "placeholder":
                if placeholders >= len(inputs):
                    self.problems.append(f"{path}: the model takes more than one input")
                    env[node] = INPUT
                else:
                    env[node] = inputs[placeholders]
                placeholders += 1
            elif node.op == "call_module":
                sub = gm.get_submodule(node.target)
                if node.kwargs:
                    self.problems.append(f"{path} ({_op_name(sub)}): called with keyword arguments "
                                         f"{sorted(node.kwargs)}; pass the input positionally")
                env[node] = self.module(sub, path, [self.ref(env, a, path) for a in node.args])
            elif node.op == "call_function":
                env[node] = self.function(node, env, path)
            elif node.op == "call_method":
                env[node] = self.method(node, env, path)
            elif node.op == "get_attr":
                self.problems.append(f"{path} (get_attr {node.target}): tensors used directly in forward are not supported; "
                                     "use a module (e.g. nn.Linear) instead")
                env[node] = INPUT
            elif node.op == "output":
                res = node.args[0]
                if isinstance(res, (tuple, list)):
                    self.problems.append(f"{prefix or '<root>'}: the model returns {len(res)} tensors; return one")
                    res = res[0]
                out = self.ref(env, res, prefix or "output")
        return out

    def ref(self, env: dict, a: Any, path: str) -> int:
        if isinstance(a, fx.Node):
            v = env[a]
            if isinstance(v, _Meta):
                self.problems.append(f"{path}: uses a shape value ({a.name}) as a tensor")
                return INPUT
            return v
        self.problems.append(f"{path}: constant argument {a!r} where a tensor of the model was expected")
        return INPUT

    def function(self, node: fx.Node, env: dict, path: str) -> Any:
        f = node.target
        args, kwargs = node.args, node.kwargs
        fname = getattr(f, "__name__", f)
        if f in ADD_OPS:
            two_tensors = len(args) == 2 and all(isinstance(a, fx.Node) for a in args)
            if kwargs.get("alpha", 1) != 1 or not two_tensors or set(kwargs) - {"alpha"}:
                self.problems.append(f"{path} ({fname}): only x + y of two model tensors is "
                                     "supported")
                return INPUT
            i = self.add(path, Add(), [self.ref(env, a, path) for a in args])
            if f is operator.iadd:
                self.writes.add(i)
            return i
        if f in CAT_OPS:
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            return self.add(path, Cat(int(dim)), [self.ref(env, a, path) for a in args[0]])
        if f is torch.flatten:
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            return self.flatten(path, self.ref(env, args[0], path), start, end)
        if f in FUNCTIONAL_MODULES:
            consts = [*args[1:], *kwargs.values()]
            if not args or any(isinstance(a, fx.Node) for a in consts):
                self.problems.append(f"{path} ({fname}): its constants must be numbers, not values "
                                     "computed in forward")
                return INPUT
            try:
                made = FUNCTIONAL_MODULES[f](*args, **kwargs)
            except (TypeError, ValueError) as exc:
                self.problems.append(f"{path} ({fname}): arguments not understood ({exc})")
                return INPUT
            return self.add(path, made, [self.ref(env, args[0], path)])
        if f is getattr or f is operator.getitem:
            return _Meta(node)
        self.problems.append(f"{path} (function {getattr(f, '__module__', '')}.{fname}): "
                             "no rule registered")
        return INPUT

    def method(self, node: fx.Node, env: dict, path: str) -> Any:
        name = node.target
        args, kwargs = node.args, node.kwargs
        if name == "size" or name == "dim":
            return _Meta(node)
        src = self.ref(env, args[0], path)
        if name in ("flatten",):
            start = args[1] if len(args) > 1 else kwargs.get("start_dim", 0)
            end = args[2] if len(args) > 2 else kwargs.get("end_dim", -1)
            return self.flatten(path, src, start, end)
        if name in ("view", "reshape"):
            shape = args[1:] if not (len(args) == 2 and isinstance(args[1], (tuple, list))) else args[1]
            return self.add(path, _PendingReshape(tuple(shape)), [src])
        if name in ("contiguous",) and not kwargs:
            return src
        if name in ("relu",) and len(args) == 1 and not kwargs:
            return self.add(path, nn.ReLU(), [src])
        if name in ("add", "__add__") and len(args) == 2 and not kwargs:
            return self.add(path, Add(), [src, self.ref(env, args[1], path)])
        keywords = f" with {sorted(kwargs)}" if kwargs else ""
        self.problems.append(f"{path} (method Tensor.{name}{keywords}): no rule registered")
        return INPUT

    def flatten(self, path: str, src: int, start: int, end: int) -> int:
        if start != 1 or end != -1:
            self.problems.append(f"{path} (flatten start_dim={start}, end_dim={end}): only flattening "
                                 "everything but the batch dimension (start_dim=1) is supported")
            return src
        return self.add(path, _PendingReshape((-2, -1)), [src])

    def tensor_problems(self) -> list[str]:
        """Every tensor a rule reads must be a finite real floating-point tensor (a complex one
        would lose its imaginary part, an integer one is not what the rules compute with)."""
        out: list[str] = []
        seen: set[int] = set()
        for nd in self.nodes:
            mod = nd.module
            if not isinstance(mod, nn.Module) or id(mod) in seen:
                continue
            seen.add(id(mod))
            label = nd.name or "<root>"
            lists = mod.parametrizations.items() if parametrize.is_parametrized(mod) else []
            training = [pname for pname, plist in lists if any(m.training for m in plist.modules())]
            if training:
                out.append(f"{label} ({_op_name(mod)}): the parametrization of "
                           f"{', '.join(training)} is in train mode (a parametrization may update "
                           "its state on every call, as spectral_norm does); call net.eval() first")
                continue
            try:
                tensors = nd.rule.tensors(mod)
            except Exception as exc:  # a parametrization that fails, a missing attribute
                out.append(f"{label} ({_op_name(mod)}): reading its tensors failed ({exc})")
                continue
            for tname, t in tensors:
                where = f"{nd.name}.{tname}" if nd.name else tname
                why = _tensor_problem(t)
                if why:
                    out.append(f"{where}: {why}")
        return out

    def inplace_problems(self, output: int) -> list[str]:
        """An op that writes its input in place (``inplace=True``, ``x += y``) changes every tensor
        sharing that storage; a later read of one made before the write sees the new values,
        which the program (one value per op) does not model. Such a read is refused."""
        if not self.writes:
            return []
        store: dict[int, int] = {INPUT: INPUT}  # value -> the value whose storage it uses
        for i, nd in enumerate(self.nodes):
            shares = nd.inputs and (i in self.writes or _aliases(nd.module))
            store[i] = store[nd.inputs[0]] if shares else i
        out = []
        for i in sorted(self.writes):
            nd = self.nodes[i]
            target = store[nd.inputs[0]]
            stale = {v for v in store if v < i and store[v] == target}
            readers = [self.nodes[j].name or "<root>" for j in range(i + 1, len(self.nodes))
                       if stale.intersection(self.nodes[j].inputs)]
            if output in stale:
                readers.append("the output")
            if readers:
                out.append(f"{nd.name or '<root>'} ({_op_name(nd.module)}): writes its input in "
                           f"place, which {', '.join(dict.fromkeys(readers))} read(s) afterwards "
                           "(seeing the new values); use an out-of-place op (inplace=False, "
                           "y = x + z)")
        return out


@functools.lru_cache(maxsize=4096)
def _methods(cls: type) -> frozenset[str]:
    """Names of the methods (any callable attribute) of ``cls`` and its bases."""
    return frozenset(k for k in dir(cls) if callable(inspect.getattr_static(cls, k, None)))


@functools.lru_cache(maxsize=4096)
def _call_overrides(cls: type) -> tuple[str, ...]:
    """The methods between ``module(x)`` and ``forward`` that ``cls`` redefines."""
    return tuple(k for k in ("__call__", "_call_impl", "_wrapped_call_impl")
                 if inspect.getattr_static(cls, k) is not inspect.getattr_static(nn.Module, k))


def _plain_graph_module_call(mod: nn.Module) -> bool:
    """A GraphModule's own ``__call__`` (it only wraps nn.Module's, for its error messages)."""
    wrapped = getattr(type(mod), "_wrapped_call", None)
    return (isinstance(mod, fx.GraphModule) and wrapped is not None
            and getattr(wrapped, "cls_call", 0) is None)


def _tensor_problem(t: Any) -> str | None:
    if t is None:
        return None
    if not isinstance(t, torch.Tensor):
        return f"is a {type(t).__name__}, not a tensor"
    if isinstance(t, nn.parameter.UninitializedTensorMixin):
        return "is not initialized yet (a lazy module): call the model once on an input first"
    if t.is_complex():
        return (f"is complex ({t.dtype}); exactrelu takes real parameters (converting would drop "
                "the imaginary part)")
    if not t.is_floating_point():
        return (f"has dtype {t.dtype}; exactrelu takes floating-point parameters (convert it "
                "with .double())")
    if t.layout != torch.strided or t.is_meta:
        return (f"is a {t.layout} {'meta ' if t.is_meta else ''}tensor; give a dense tensor "
                "with values")
    if not torch.isfinite(t.detach()).all():
        return "parameter contains NaN or inf (exact parameters must be finite)"
    return None


def _aliases(module: Any) -> bool:
    """May the op's output share storage with its (first) input? Only ops known to return a new
    tensor say no."""
    if isinstance(module, (Add, Cat, nn.Linear, nn.Conv1d, nn.Conv2d, _BatchNorm, nn.AvgPool2d,
                           nn.AdaptiveAvgPool2d, nn.MaxPool2d)):
        return False
    if isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.Hardtanh)):
        return bool(module.inplace)
    return True


class _Meta:
    """A non-tensor value in an fx graph (x.size(0), x.shape): resolved during shape inference."""

    def __init__(self, node: fx.Node) -> None:
        self.node = node


@dataclass(frozen=True)
class _PendingReshape:
    """view/reshape/flatten whose target is resolved to a per-sample shape once shapes are known."""

    spec: tuple


from .rules import RULES as _RULES, ReshapeCallRule as _RCR  # noqa: E402

_RULES[_PendingReshape] = _RCR()


def _infer_shapes(prog: Program) -> None:
    shapes: dict[int, tuple[int, ...]] = {INPUT: prog.input_shape}
    for i, nd in enumerate(prog.nodes):
        nd.in_shapes = [shapes[s] for s in nd.inputs]
        if isinstance(nd.module, _PendingReshape):
            nd.module = _resolve_reshape(nd, nd.in_shapes[0])
        try:
            with torch.no_grad():
                ins = [FloatMap(torch.zeros((1, 0, *s), dtype=torch.float64), torch.zeros((1, *s), dtype=torch.float64))
                       for s in nd.in_shapes]
                if nd.piecewise:
                    st = nd.rule.state(nd.module, ins[0].b)  # type: ignore[attr-defined]
                    out = nd.rule.apply(nd.module, ins[0], st)  # type: ignore[attr-defined]
                else:
                    out = nd.rule.float_forward(nd.module, ins)
        except InvalidInputError:
            raise
        except Exception as exc:
            got = ", ".join(str(s) for s in nd.in_shapes)
            raise InvalidInputError(
                f"input_shape {prog.input_shape} does not fit the model: {nd.name or '<root>'} "
                f"({_op_name(nd.module)}) fails on an input of shape {got} ({exc}). Pass the shape of "
                "one sample without the batch dimension, e.g. (3, 32, 32) for images.") from None
        shapes[i] = tuple(out.b.shape[1:])
        nd.out_shape = shapes[i]


def _resolve_reshape(nd: Node, in_shape: tuple[int, ...]) -> Reshape:
    spec = nd.module.spec
    n = math.prod(in_shape)
    if spec == (-2, -1):
        return Reshape((n,))
    dims = []
    for s in spec:
        if isinstance(s, _Meta) or isinstance(s, fx.Node):
            dims.append("batch")
        else:
            dims.append(int(s))
    # Accept (batch, -1), (batch, n), (-1, n): a flat vector per sample.
    ok = len(dims) == 2 and (dims[0] in ("batch", -1)) and (dims[1] in (-1, n)) and not (dims[0] == -1 and dims[1] == -1)
    if not ok:
        raise InvalidInputError(
            f"{nd.name}: view/reshape to {tuple(dims)} is not supported; only reshaping each sample to a "
            "flat vector (x.view(x.size(0), -1)) is")
    return Reshape((n,))
