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
import itertools
import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import torch
import torch.fx as fx
from torch import nn
from torch.nn.modules import module as _module_mod
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.dropout import _DropoutNd
from torch.nn.utils.spectral_norm import SpectralNorm as _OldSpectralNorm
from torch.nn.utils.weight_norm import WeightNorm as _OldWeightNorm

from . import _exact, _export
from ._exact import ExactMap
from ._ops import (
    ARGUMENT_NAMES,
    ARITHMETIC,
    CAT_OPS,
    FLATTEN_OPS,
    FOLD_ATTRIBUTES,
    FOLD_METHODS,
    FOLD_OPS,
    FUNCTIONAL_MODULES,
    GATHER_OPS,
    IDENTITY_OPS,
    MAXIMUM,
    METHODS,
    MINIMUM,
    MODEL,
    PIECES_OPS,
    SIZE_OPS,
    SQUEEZE_OPS,
    TUPLE_MODULES,
    UNSQUEEZE_OPS,
    VIEW_OPS,
)
from .errors import InvalidInputError, UnsupportedModelError
from .rules import (
    MAX_ENTRIES,
    RULES,
    Abs,
    Add,
    AddConstant,
    AffineRule,
    Cat,
    Clamp,
    Div,
    FloatMap,
    Gather,
    LinearRule,
    Mean,
    Mul,
    Pad,
    PiecewiseRule,
    Reshape,
    ReshapeCallRule,
    Rule,
    Sub,
    _aten,
    find_rule,
    module_state,
    overrides,
    parametrizations,
    registered_class,
    rule_conflict,
)

__all__ = ["Program", "Node", "capture", "constraint_offsets"]

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

    @property
    def piecewise_rule(self) -> PiecewiseRule:
        """The rule of a piecewise op (``piecewise`` is true): it has PiecewiseRule's methods."""
        return cast(PiecewiseRule, self.rule)


class Program:
    """A captured network: ops in topological order, their rules and shapes.

    The float and exact passes share one loop: :meth:`float_run` pushes a batch of local affine
    maps (torch, any device/dtype) through every op, :meth:`exact_run` one exact map for a given
    activation pattern. A *pattern* is a list with one int64 state tensor per piecewise op.
    """

    def __init__(self, net: nn.Module, nodes: list[Node], input_shape: tuple[int, ...],
                 output: int) -> None:
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
        return nd.piecewise_rule.num_switching(nd.module, nd.in_shapes[0])

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
            for attr in _DIGEST_ATTRIBUTES:
                if hasattr(nd.module, attr):
                    h.update(f"{attr}={getattr(nd.module, attr)!r};".encode())
            if isinstance(nd.module, nn.Module) \
                    and not type(nd.module).__module__.startswith("torch."):
                # a user's module with a registered rule: whatever its rule may read
                for part in module_state(nd.module):
                    h.update(part)
        return h.hexdigest()

    def device(self) -> torch.device | None:
        """The device of the model's first parameter or buffer (of the ops' modules for a
        program unpickled without ``net``), or None when it has none."""
        mods = [self.net] if self.net is not None else [
            nd.module for nd in self.nodes if isinstance(nd.module, nn.Module)]
        for m in mods:
            for t in itertools.chain(m.parameters(), m.buffers()):
                return t.device
        return None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (for worker processes) without ``net``: the ops hold what they compute with,
        and a model torch.export made carries hooks that do not pickle."""
        return {**self.__dict__, "net": None}

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
                  until: int | None = None,
                  collect: list | None = None) -> tuple[FloatMap, list[torch.Tensor]]:
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
                  until: int | None = None,
                  collect: list | None = None) -> tuple[ExactMap, list[torch.Tensor]]:
        """The exact counterpart of :meth:`float_run` for one sample.

        ``m0`` is the exact input map (``k == 0``: exact values, an exact forward pass). States not
        given are decided from exact values (only possible when ``k == 0``).
        """
        def decide(rule: PiecewiseRule, nd: Node, m: ExactMap) -> torch.Tensor:
            if m.k != 0:
                raise InvalidInputError("exact_run needs the states when the map has free "
                                        "coordinates")
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
            rule = nd.piecewise_rule
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
                    return nd.piecewise_rule.exact_apply(nd.module, ins[0],
                                                         st.reshape(nd.out_shape))
                return nd.piecewise_rule.apply(nd.module, ins[0], st.to(ins[0].b.device))

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


# The constants of an op the digest hashes (besides the tensors its rule reads and the shapes).
_DIGEST_ATTRIBUTES = (
    "negative_slope", "min_val", "max_val", "eps", "stride", "padding", "kernel_size", "dilation",
    "groups", "start_dim", "end_dim", "dim", "shape", "ceil_mode", "count_include_pad",
    "divisor_override", "output_size", "mode", "value", "scale_factor", "size", "align_corners",
    "recompute_scale_factor", "keepdim", "dims", "min", "max", "op", "args", "item")


def _exact_state(rule: PiecewiseRule, nd: Node, m: ExactMap) -> torch.Tensor:
    """States decided exactly: the signs of the exact switching functions (0 on ties, which
    ``state_from_signs`` resolves by the documented tie rule)."""
    sw = rule.exact_switching(nd.module, m).values()
    signs = torch.tensor([(v > 0) - (v < 0) for v in sw], dtype=torch.int64).unsqueeze(0)
    return rule.state_from_signs(nd.module, signs, m.shape)[0]


def _op_name(module: Any) -> str:
    t = type(module)
    return t.__name__ if t.__module__.startswith("exactrelu") \
        else f"{t.__module__}.{t.__qualname__}"


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
    net = _export.as_module(net)
    if not isinstance(net, nn.Module):
        raise InvalidInputError(f"expected a torch.nn.Module or a torch.export.ExportedProgram, "
                                f"got {type(net).__name__}")
    try:
        input_shape = tuple(operator.index(s) for s in input_shape)
    except TypeError:
        raise InvalidInputError(f"input_shape must be a sequence of ints (no batch dimension), "
                                f"got {input_shape!r}") from None
    if not input_shape or any(s <= 0 for s in input_shape):
        raise InvalidInputError(f"input_shape must be non-empty with positive sizes (no batch "
                                f"dimension), got {input_shape}")

    builder = _Builder()
    builder.input_shape = input_shape
    builder.problems += _global_hook_problems()
    out = builder.module(net, "", [INPUT])
    problems = builder.problems + builder.tensor_problems() + builder.inplace_problems(out)
    if problems:
        lines = "\n".join(f"  - {p}" for p in problems)
        raise UnsupportedModelError(
            f"{type(net).__name__} has {len(problems)} operation(s) exactrelu cannot handle:\n"
            f"{lines}\n"
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
        return (registered_class(type(m)) is not None or _export.is_exported(m)
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
        self.batch: int | None = None  # the batch size of the exported graph being captured
        self.input_shape: tuple[int, ...] = ()

    def add(self, name: str, module: Any, inputs: list[int]) -> int:
        rule = find_rule(type(module))
        if rule is None:
            why = rule_conflict(type(module)) or "no rule registered"
            self.problems.append(f"{name or '<root>'} ({_op_name(module)}): {why}")
            rule = Rule()
        else:
            problem = rule.check(module)
            if problem:
                self.problems.append(f"{name or '<root>'} ({_op_name(module)}): {problem}")
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
            self.problems += [_hook_problem(label, mod, kind, h) for h in hooks.values()
                              if not _export.own_hook(mod, h)]
        # mypy reads a class's own __hash__ as the class object's (classes are hashable)
        methods = _methods(type(mod))  # type: ignore[arg-type]
        patched = sorted(vars(mod).keys() & methods - _export.own_methods(mod))
        if patched:
            self.problems.append(f"{label} ({_op_name(mod)}): {', '.join(patched)} replaced on the "
                                 "instance; capture follows the class's forward, so define the "
                                 "behaviour in the class instead")
        called = [k for k in _call_overrides(type(mod))  # type: ignore[arg-type]  # as above
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
        if _export.is_exported(mod):
            return self.exported(mod, name, inputs)
        if registered_class(type(mod)) is not None:
            # its submodules (parametrizations, the layers of a user's module) run inside it
            for sub_name, sub in mod.named_modules(prefix=name):
                if sub is not mod:
                    self.check_call(sub, sub_name)
            return self.add(name, mod, inputs)
        # overrides is cached by class; mypy reads a class's own __hash__ as the class object's
        if isinstance(mod, nn.Sequential) and \
                not overrides(type(mod), nn.Sequential):  # type: ignore[arg-type]
            cur = inputs
            # every entry of _modules in order, as Sequential.forward calls them (a module listed
            # twice is called twice; named_children would list it once)
            for child_name, child in mod._modules.items():
                cur = [self.module(child, f"{name}.{child_name}" if name else child_name, cur)]
            if not len(mod):
                return inputs[0] if len(inputs) == 1 else self.add(name, nn.Identity(), inputs)
            return cur[0]
        if fx.Tracer().is_leaf_module(mod, name):
            # a torch.nn layer without a rule: name it, do not trace inside
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

    def exported(self, gm: fx.GraphModule, name: str, inputs: list[int]) -> int:
        """A module torch.export made (``ep.module()``): its graph of ATen ops, walked as it is
        (its forward runs exactly this graph, which :func:`_export.problems` checks)."""
        label = name or "<root>"
        self.problems += _export.problems(gm, label)
        if inputs != [INPUT]:
            self.problems.append(f"{label}: an exported program inside another model; capture "
                                 "the exported program on its own")
        batch, shape = _export.input_batch_and_shape(gm)
        if shape is not None and shape != self.input_shape and inputs == [INPUT]:
            raise InvalidInputError(
                f"input_shape {self.input_shape} does not fit the exported program, which takes "
                f"inputs of shape ({'batch' if batch is None else batch}, "
                f"{', '.join(map(str, shape))}); pass input_shape={shape}")
        outer, self.batch = self.batch, batch
        try:
            return self.graph(gm, name, inputs, exported=True)
        finally:
            self.batch = outer

    def graph(self, gm: fx.GraphModule, prefix: str, inputs: list[int],
              exported: bool = False) -> int:
        """Capture the nodes of ``gm``'s graph (fed ``inputs``); returns the output's value. For a
        module torch.export made (``exported``), its guard call is skipped (it checks the input's
        shape and returns nothing) and its one output is the flat output of the graph."""
        env: dict[fx.Node, Any] = {}
        placeholders = 0
        out = INPUT
        for node in gm.graph.nodes:
            path = f"{prefix}.{node.target}" if prefix and node.op == "call_module" else (
                str(node.target) if node.op == "call_module"
                else f"{prefix + '.' if prefix else ''}{node.name}")
            if node.op == "placeholder":
                if placeholders >= len(inputs):
                    self.problems.append(f"{path}: the model takes more than one input")
                    env[node] = INPUT
                else:
                    env[node] = inputs[placeholders]
                placeholders += 1
            elif node.op == "call_module":
                sub = gm.get_submodule(node.target)
                if exported and _export.is_guard(sub) and not node.users:
                    self.check_call(sub, path)
                    continue
                if node.kwargs:
                    self.problems.append(f"{path} ({_op_name(sub)}): called with keyword arguments "
                                         f"{sorted(node.kwargs)}; pass the input positionally")
                env[node] = self.module(sub, path, [self.ref(env, a, path) for a in node.args])
            elif node.op == "call_function":
                env[node] = self.function(node, env, path)
            elif node.op == "call_method":
                env[node] = self.method(node, env, path)
            elif node.op == "get_attr":
                env[node] = self.attribute(gm, node.target, path)
            elif node.op == "output":
                res = node.args[0]
                if exported and isinstance(res, (tuple, list)) and len(res) == 1:
                    res = res[0]  # the flat outputs; _export checked that the model returns one
                if isinstance(res, (tuple, list)):
                    self.problems.append(f"{prefix or '<root>'}: the model returns {len(res)} "
                                         "tensors; return one")
                    res = res[0]
                out = self.ref(env, res, prefix or "output")
        return out

    def ref(self, env: dict, a: Any, path: str) -> int:
        if isinstance(a, fx.Node):
            v = env[a]
            if isinstance(v, int):
                return v
            what = "a shape value" if isinstance(v, _Meta) else (
                "a tensor that is not computed from the input" if isinstance(v, _Const) else
                "several tensors")
            self.problems.append(f"{path}: uses {what} ({a.name}) where the model's tensor was "
                                 "expected")
            return INPUT
        self.problems.append(f"{path}: constant argument {a!r} where a tensor of the model was "
                             "expected")
        return INPUT

    def attribute(self, gm: nn.Module, target: str, path: str) -> Any:
        """A tensor the graph reads from its module (a parameter, buffer or constant): the tensor
        itself, which the ops built from it read (no copy)."""
        owner_name, _, leaf = target.rpartition(".")
        try:
            owner = gm.get_submodule(owner_name)
            value = getattr(owner, leaf)
        except AttributeError:
            value = None
        if isinstance(value, torch.Tensor):
            plist = parametrizations(owner).get(leaf)
            if plist is not None and any(m.training for m in plist.modules()):
                self.problems.append(f"{path} (get_attr {target}): its parametrization is in "
                                     "train mode; call net.eval() first")
            return _Const(value)
        self.problems.append(f"{path} (get_attr {target}): not a tensor of the model "
                             f"({type(value).__name__})")
        return _Const(None)

    def resolve(self, env: dict, a: Any) -> Any:
        """An argument of a call with its graph values looked up: a model tensor as
        :class:`_Value`, constants as :class:`_Const`, shapes as :class:`_Meta`."""
        if isinstance(a, fx.Node):
            v = env[a]
            return _Value(v) if isinstance(v, int) else v
        if isinstance(a, (list, tuple)):
            return type(a)(self.resolve(env, x) for x in a)
        return a

    def function(self, node: fx.Node, env: dict, path: str) -> Any:
        args = [self.resolve(env, a) for a in node.args]
        kwargs = {k: self.resolve(env, v) for k, v in node.kwargs.items()}
        return self.call(node.target, args, kwargs, path)

    def method(self, node: fx.Node, env: dict, path: str) -> Any:
        name = str(node.target)  # a call_method node's target is the method's name
        args = [self.resolve(env, a) for a in node.args]
        kwargs = {k: self.resolve(env, v) for k, v in node.kwargs.items()}
        if name == "size" and isinstance(args[0], _Value):
            dim = args[1] if len(args) > 1 else kwargs.get("dim")
            return _Meta(batch=dim == 0, shape=dim is None)
        if name == "dim" and isinstance(args[0], _Value):
            return _Meta()
        if name in ("contiguous", "detach") and len(args) == 1 and not kwargs:
            return args[0]
        if name in ("view", "reshape", "permute", "flip") and len(args) > 1 and not (
                len(args) == 2 and isinstance(args[1], (tuple, list))):
            args = [args[0], tuple(args[1:])]  # x.view(a, b) is torch.reshape(x, (a, b))
        if name == "view":
            name = "reshape"
        if name in ("expand", "repeat") and isinstance(args[0], _Value):
            return self.gather(f"Tensor.{name}", args, kwargs, path)
        f = METHODS.get(name)
        if f is not None:
            return self.call(f, args, kwargs, path)
        if name in FOLD_METHODS and isinstance(args[0], _Const) and \
                not _contains(args[1:], kwargs, _Value, _Meta, _Pieces):
            return self.fold(lambda t, *a, **k: getattr(t, name)(*a, **k), args, kwargs,
                             f"{path} (method Tensor.{name})")
        keywords = f" with {sorted(kwargs)}" if kwargs else ""
        inplace = " (an in-place method)" if name.endswith("_") and name[:-1] in METHODS else ""
        self.problems.append(f"{path} (method Tensor.{name}{keywords}): no rule "
                             f"registered{inplace}")
        return INPUT

    def call(self, f: Any, args: list, kwargs: dict, path: str) -> Any:
        """What a call of ``f`` on resolved arguments becomes (see :mod:`exactrelu._ops`)."""
        label = f"{path} ({_function_name(f)})"
        if f is getattr:
            if isinstance(args[0], _Const) and len(args) == 2 and args[1] in FOLD_ATTRIBUTES:
                return self.fold(getattr, args, {}, label)
            return _Meta(shape=len(args) > 1 and args[1] == "shape")
        if f is operator.getitem:
            return self.getitem(args[0], args[1], path, label)
        if f in SIZE_OPS:
            return _Meta(batch=len(args) > 1 and args[1] == 0)
        if f in FOLD_OPS and not _contains(args, kwargs, _Value, _Meta, _Pieces):
            return self.fold(f, args, kwargs, label)
        if f in ARITHMETIC:
            return self.arithmetic(ARITHMETIC[f], args, kwargs, path, label)
        if f in MAXIMUM or f in MINIMUM:
            return self.extremum(f in MAXIMUM, args, kwargs, path, label)
        if f in CAT_OPS:
            dim = args[1] if len(args) > 1 else kwargs.get("dim", 0)
            parts = args[0] if isinstance(args[0], (list, tuple)) else [args[0]]
            return self.add(path, Cat(int(dim)), [self.value(p, label) for p in parts])
        reshape = self.reshape_spec(f, args, kwargs)
        if reshape is not None:
            return self.add(path, _PendingReshape(*reshape, self.batch),
                            [self.value(args[0], label)])
        if f in IDENTITY_OPS and isinstance(args[0], _Value):
            return args[0].index
        if f in GATHER_OPS or f in PIECES_OPS:
            positional = _positional(f, args, kwargs)
            if positional is None:
                self.problems.append(f"{label}: pass its arguments positionally")
                return INPUT
            if f in GATHER_OPS:
                return self.gather(GATHER_OPS[f], positional, {}, path)
            return _Pieces(self.value(args[0], label), f, positional, {})
        if f in TUPLE_MODULES:
            return _Pieces(self.value(args[0], label), f, args, kwargs)
        if f in FUNCTIONAL_MODULES:
            return self.module_call(FUNCTIONAL_MODULES[f], args, kwargs, path, label)
        if f is _COPY:
            self.problems.append(f"{label}: writes a buffer of the model in forward (BatchNorm "
                                 "in train mode does); export the model in eval mode")
            return INPUT
        self.problems.append(f"{label}: no rule registered")
        return INPUT

    def value(self, v: Any, label: str) -> int:
        """The model tensor ``v``, or a problem (and the input, so capture goes on)."""
        if isinstance(v, _Value):
            return v.index
        what = ("a shape value" if isinstance(v, _Meta) else "a constant" if isinstance(v, _Const)
                else "several tensors" if isinstance(v, _Pieces) else repr(v))
        self.problems.append(f"{label}: {what} where a tensor of the model was expected")
        return INPUT

    def fold(self, f: Callable[..., Any], args: list, kwargs: dict, label: str) -> Any:
        """A call on constants only, computed now as forward computes it (first on the meta
        device: a result larger than :data:`~exactrelu.rules.MAX_ENTRIES` is refused before it
        is made)."""
        try:
            with torch.no_grad():
                meta = f(*_plain(args, meta=True), **_plain(kwargs, meta=True))
                sizes = [t.numel() for t in _leaves([meta], False) if isinstance(t, torch.Tensor)]
                if sum(sizes) > MAX_ENTRIES:
                    self.problems.append(f"{label}: makes {sum(sizes)} values from the model's "
                                         f"tensors (at most {MAX_ENTRIES} are supported)")
                    return _Const(None)
                out = f(*_plain(args), **_plain(kwargs))
        except Exception as exc:  # torch raises many types for bad arguments
            self.problems.append(f"{label}: computing it on the model's tensors failed ({exc})")
            return _Const(None)
        if isinstance(out, torch.Tensor):
            return _Const(out)
        if isinstance(out, (tuple, list)):
            return type(out)(_Const(t) if isinstance(t, torch.Tensor) else t for t in out)
        return out

    def module_call(self, factory: Callable[..., Any], args: list, kwargs: dict, path: str,
                    label: str) -> int:
        """A call on one model tensor with constant arguments: the module its factory builds."""
        models = _find(args, kwargs, _Value)
        if len(models) != 1 or _contains(args, kwargs, _Meta, _Pieces):
            self.problems.append(f"{label}: its arguments besides one tensor of the model must be "
                                 "numbers or the model's tensors, not values computed in forward")
            return INPUT
        try:
            made = factory(*_plain(args, model=MODEL), **_plain(kwargs, model=MODEL))
        except (TypeError, ValueError, RuntimeError) as exc:
            self.problems.append(f"{label}: arguments not understood ({exc})")
            return INPUT
        return self.add(path, made, [models[0].index])

    def getitem(self, base: Any, key: Any, path: str, label: str) -> Any:
        if isinstance(base, _Pieces):
            return self.piece(base, key, path, label)
        if isinstance(base, _Meta):
            return _Meta(batch=base.shape and key == 0)
        if isinstance(base, _Const):
            return self.fold(operator.getitem, [base, key], {}, label)
        if isinstance(base, (tuple, list)):
            return base[key]
        return self.gather("getitem", [base, key], {}, path)

    def gather(self, op: str, args: list, kwargs: dict, path: str) -> int:
        """A call that copies entries of its model tensor: a :class:`Gather` node."""
        label = f"{path} ({op})"
        if kwargs or _contains(args[1:], {}, _Value, _Const, _Pieces, torch.Tensor) or \
                _contains(args[1:], {}, fx.Node, _Meta, slices=True):
            self.problems.append(f"{label}: its arguments must be numbers (not tensors or values "
                                 "computed in forward), positionally")
            return INPUT
        consts = tuple(_tuple_of(a) for a in args[1:])
        return self.add(path, Gather(op, consts, None, self.batch or 2),
                        [self.value(args[0], label)])

    def piece(self, pieces: _Pieces, i: Any, path: str, label: str) -> int:
        """Result ``i`` of a call returning several tensors (split, chunk; a batch norm or max
        pooling that also returns statistics or indices)."""
        if not isinstance(i, int):
            self.problems.append(f"{label}: index {i!r} into several tensors")
            return INPUT
        f = pieces.f
        if f in TUPLE_MODULES:
            factory, output = TUPLE_MODULES[f]
            if i != output:
                self.problems.append(f"{label}: uses result {i} of {_function_name(f)} (only its "
                                     f"result {output} is supported)")
                return INPUT
            return self.module_call(factory, pieces.args, pieces.kwargs, path, label)
        if pieces.kwargs or _contains(pieces.args[1:], {}, _Value, _Const, _Meta, _Pieces):
            self.problems.append(f"{label}: the arguments of {_function_name(f)} must be numbers")
            return INPUT
        consts = tuple(_tuple_of(a) for a in pieces.args[1:])
        return self.add(path, Gather(PIECES_OPS[f], consts, i, self.batch or 2), [pieces.src])

    def arithmetic(self, kind: str, args: list, kwargs: dict, path: str, label: str) -> int:
        kwargs = dict(kwargs)
        alpha = kwargs.pop("alpha", 1)
        if kwargs.pop("rounding_mode", None) is not None or kwargs or alpha != 1:
            self.problems.append(f"{label}: only plain x + y, x - y, x * c, x / c are supported "
                                 f"(not alpha or rounding_mode)")
            return INPUT
        if kind == "neg":
            return self.combine("mul", args[0], -1.0, path, label)
        if len(args) != 2:
            self.problems.append(f"{label}: expected two operands")
            return INPUT
        a, b = args
        if kind == "rsub":
            a, b, kind = b, a, "sub"
        i = self.combine(kind.rstrip("_"), a, b, path, label)
        if kind.endswith("_") and isinstance(a, _Value) and i != INPUT:
            self.writes.add(i)
        return i

    def combine(self, kind: str, a: Any, b: Any, path: str, label: str) -> int:
        """``a + b``, ``a - b``, ``a * b`` or ``a / b`` with at least one model tensor, as nodes:
        Add/Sub of two model tensors, or Mul/Div/AddConstant by a constant."""
        for v in (a, b):
            if not isinstance(v, (_Value, _Const)) and not _is_number(v):
                self.problems.append(f"{label}: operand {v!r} is neither a tensor nor a number")
                return INPUT
        if not isinstance(a, _Value) and not isinstance(b, _Value):
            self.problems.append(f"{label}: writes into a tensor of the model (a parameter or "
                                 "buffer) in forward; compute a new tensor instead")
            return INPUT
        if isinstance(a, _Value) and isinstance(b, _Value):
            if kind in ("add", "sub"):
                return self.add(path, Add() if kind == "add" else Sub(), [a.index, b.index])
            self.problems.append(f"{label}: a product or quotient of two tensors of the model is "
                                 "not piecewise linear")
            return INPUT
        if isinstance(b, _Value) and kind in ("add", "mul"):
            a, b = b, a
        if isinstance(b, _Value):  # c - x or c / x
            if kind == "div":
                self.problems.append(f"{label}: dividing by a tensor of the model is not "
                                     "piecewise linear")
                return INPUT
            neg = self.add(f"{path}.neg", Mul(-1.0), [b.index])
            return self.add(path, AddConstant(_constant(a)), [neg])
        c = _constant(b)
        if c is None:
            self.problems.append(f"{label}: operand is not a tensor of the model")
            return INPUT
        if kind == "sub":
            c = -c
        made = {"add": AddConstant, "sub": AddConstant, "mul": Mul, "div": Div}[kind](c)
        return self.add(path, made, [a.index])

    def extremum(self, maximum: bool, args: list, kwargs: dict, path: str, label: str) -> int:
        """``maximum(a, b) = b + relu(a - b)`` and ``minimum(a, b) = a - relu(a - b)``: exact in
        real arithmetic, with one ReLU unit per entry on ``a - b`` (see the README's tie states)."""
        if kwargs or len(args) != 2 or not any(isinstance(v, _Value) for v in args) or \
                not all(isinstance(v, (_Value, _Const)) for v in args):
            self.problems.append(f"{label}: only the elementwise maximum/minimum of two tensors "
                                 "is supported (torch.maximum(a, b); not over a dimension)")
            return INPUT
        a, b = args
        diff = self.combine("sub", a, b, f"{path}.sub", label)
        relu = self.add(f"{path}.relu", nn.ReLU(), [diff])
        if maximum:
            return self.combine("add", b, _Value(relu), path, label)
        return self.combine("sub", a, _Value(relu), path, label)

    def reshape_spec(self, f: Any, args: list, kwargs: dict) -> tuple[str, tuple] | None:
        """(kind, arguments) of a reshape call (view, reshape, flatten, squeeze, unsqueeze) of a
        model tensor, resolved once shapes are known; None for any other call."""
        if not args or not isinstance(args[0], _Value):
            return None
        def arg(i: int, name: str, default: Any) -> Any:
            return args[i] if len(args) > i else kwargs.get(name, default)
        if f in VIEW_OPS:
            return "view", (tuple(arg(1, "shape", ())),)
        if f in FLATTEN_OPS:
            return "flatten", (arg(1, "start_dim", 0), arg(2, "end_dim", -1))
        if f in UNSQUEEZE_OPS:
            return "unsqueeze", (arg(1, "dim", None),)
        if f in SQUEEZE_OPS:
            return "squeeze", (arg(1, "dim", None),)
        return None

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
            training = [pname for pname, plist in parametrizations(mod).items()
                        if any(m.training for m in plist.modules())]
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
    if nn.parameter.is_lazy(t):
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
    if isinstance(module, (Add, Sub, Cat, Mul, Div, AddConstant, Mean, Pad, Abs, Clamp, nn.Linear,
                           nn.modules.conv._ConvNd, _BatchNorm, nn.AvgPool2d,
                           nn.AdaptiveAvgPool2d, nn.MaxPool2d, nn.PReLU, nn.Upsample)):
        return False
    if isinstance(module, (nn.ReLU, nn.LeakyReLU, nn.Hardtanh)):
        return bool(module.inplace)
    return True


class _Meta:
    """A value of an fx graph that is not a tensor: a size (``x.size(0)``, ``x.shape``), the
    batch size when ``batch``, a tensor's shape when ``shape``."""

    def __init__(self, batch: bool = False, shape: bool = False) -> None:
        self.batch = batch
        self.shape = shape

    def __repr__(self) -> str:
        return "<batch size>" if self.batch else "<shape value>"


@dataclass(frozen=True)
class _Value:
    """A tensor of the model in a call's arguments: the index of the node computing it."""

    index: int


@dataclass(frozen=True)
class _Const:
    """A tensor the graph reads from the model (a parameter, buffer or constant), or computed
    from such tensors only."""

    tensor: torch.Tensor | None


@dataclass
class _Pieces:
    """The several results of a call (split, chunk; a batch norm with its statistics); a node is
    made for each result used."""

    src: int
    f: Any
    args: list
    kwargs: dict


def _leaves(obj: Any, slices: bool) -> Any:
    if isinstance(obj, dict):
        obj = list(obj.values())
    if isinstance(obj, (list, tuple)):
        for x in obj:
            yield from _leaves(x, slices)
    elif slices and isinstance(obj, slice):
        yield from _leaves([obj.start, obj.stop, obj.step], slices)
    else:
        yield obj


def _find(args: Any, kwargs: dict, *types: type, slices: bool = False) -> list:
    return [x for x in _leaves([args, kwargs], slices) if isinstance(x, types)]


def _contains(args: Any, kwargs: dict, *types: type, slices: bool = False) -> bool:
    return bool(_find(args, kwargs, *types, slices=slices))


def _plain(obj: Any, model: Any = None, meta: bool = False) -> Any:
    """``obj`` with constants as their tensors (empty ones of the same shape on the meta device
    with ``meta``) and model tensors as ``model``."""
    if isinstance(obj, _Const):
        t = obj.tensor
        return t.detach().to("meta") if meta and isinstance(t, torch.Tensor) else t
    if isinstance(obj, _Value):
        return model
    if isinstance(obj, dict):
        return {k: _plain(v, model, meta) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_plain(x, model, meta) for x in obj)
    return obj


def _tuple_of(a: Any) -> Any:
    return tuple(_tuple_of(x) for x in a) if isinstance(a, (list, tuple)) else a


def _positional(f: Any, args: list, kwargs: dict) -> list | None:
    """The arguments of a call of ``f`` all positional (keywords placed by the names of an ATen
    op's schema or :data:`~exactrelu._ops.ARGUMENT_NAMES`), or None when that is not possible."""
    if not kwargs:
        return list(args)
    if isinstance(f, torch._ops.OpOverload):
        names: tuple[str, ...] = tuple(a.name for a in f._schema.arguments[1:])
    else:
        names = ARGUMENT_NAMES.get(f, ())
    out, rest = list(args), dict(kwargs)
    for name in names[len(args) - 1:]:
        if name not in rest:
            break
        out.append(rest.pop(name))
    return None if rest else out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _constant(v: Any) -> torch.Tensor | float | None:
    if isinstance(v, _Const):
        return v.tensor
    return float(v) if _is_number(v) else None


def _function_name(f: Any) -> str:
    if isinstance(f, torch._ops.OpOverload):
        return str(f)
    name = getattr(f, "__name__", None) or type(f).__name__
    return f"{getattr(f, '__module__', None) or 'builtins'}.{name}"


_COPY = _aten("copy_.default")


@dataclass(frozen=True)
class _PendingReshape:
    """A reshape of each sample (view, reshape, flatten, squeeze, unsqueeze) whose per-sample
    shape is resolved once shapes are known: ``kind`` and the call's arguments (a view's shape
    counts the batch dimension: a :class:`_Meta` batch size, -1, or ``batch``, the batch size of
    an exported program, stand for it)."""

    kind: str
    args: tuple
    batch: int | None = None


RULES[_PendingReshape] = ReshapeCallRule()


def _infer_shapes(prog: Program) -> None:
    shapes: dict[int, tuple[int, ...]] = {INPUT: prog.input_shape}
    for i, nd in enumerate(prog.nodes):
        nd.in_shapes = [shapes[s] for s in nd.inputs]
        if isinstance(nd.module, _PendingReshape):
            nd.module = _resolve_reshape(nd, nd.in_shapes[0])
        try:
            with torch.no_grad():
                _check_size(nd)
                ins = [FloatMap(torch.zeros((1, 0, *s), dtype=torch.float64),
                                torch.zeros((1, *s), dtype=torch.float64))
                       for s in nd.in_shapes]
                if nd.piecewise:
                    st = nd.piecewise_rule.state(nd.module, ins[0].b)
                    out = nd.piecewise_rule.apply(nd.module, ins[0], st)
                else:
                    out = nd.rule.float_forward(nd.module, ins)
        except UnsupportedModelError as exc:
            problem = f"{nd.name or '<root>'} ({_op_name(nd.module)}): {exc}"
            raise UnsupportedModelError(f"the model has an operation exactrelu cannot handle:\n"
                                        f"  - {problem}", [problem]) from None
        except InvalidInputError:
            raise
        except Exception as exc:
            got = ", ".join(str(s) for s in nd.in_shapes)
            raise InvalidInputError(
                f"input_shape {prog.input_shape} does not fit the model: {nd.name or '<root>'} "
                f"({_op_name(nd.module)}) fails on an input of shape {got} ({exc}). Pass the shape "
                "of one sample without the batch dimension, e.g. (3, 32, 32) for images.") from None
        shapes[i] = tuple(out.b.shape[1:])
        nd.out_shape = shapes[i]


def _check_size(nd: Node) -> None:
    """Refuse an op whose output would exceed :data:`~exactrelu.rules.MAX_ENTRIES` entries per
    sample (a padding or upsampling of a model file asking for too much) before computing it:
    affine ops are run on the meta device first (nothing allocated), except a Linear on
    inputs that fit its weight, whose size its shapes give."""
    if nd.piecewise or not isinstance(nd.rule, AffineRule):
        return
    w = getattr(nd.module, "weight", None)
    if (type(nd.rule) is LinearRule and len(nd.in_shapes) == 1 and len(nd.in_shapes[0])
            and isinstance(w, torch.Tensor) and w.dim() == 2
            and nd.in_shapes[0][-1] == w.shape[1]):
        size = math.prod(nd.in_shapes[0][:-1]) * w.shape[0]  # F.linear's output, by its shapes
    else:
        size = _meta_size(nd)
    if size > MAX_ENTRIES:
        raise UnsupportedModelError(f"its output would have {size} entries per sample (at most "
                                    f"{MAX_ENTRIES} are supported)")


def _meta_size(nd: Node) -> int:
    """Entries per sample of affine op ``nd``'s output, computed on the meta device (0 for an op
    without meta kernels: it is computed for real after)."""
    ins = [FloatMap(torch.zeros((1, 0, *s), device="meta"), torch.zeros((1, *s), device="meta"))
           for s in nd.in_shapes]
    try:
        return int(nd.rule.float_forward(nd.module, ins).b.numel())
    except (NotImplementedError, RuntimeError, TypeError, ValueError):
        return 0


def _resolve_reshape(nd: Node, in_shape: tuple[int, ...]) -> Reshape:
    """The per-sample shape of a reshape call; calls that would reshape the batch dimension (or
    depend on the batch size) are refused."""
    spec = nd.module
    kind, args = spec.kind, spec.args
    full = len(in_shape) + 1  # dimensions with the batch
    n = math.prod(in_shape)

    def refuse(why: str) -> UnsupportedModelError:
        problem = f"{nd.name or '<root>'} ({kind}): {why}"
        return UnsupportedModelError(f"the model has an operation exactrelu cannot handle:\n"
                                     f"  - {problem}", [problem])

    def dim(d: Any, ndim: int) -> int:
        if not isinstance(d, int) or not -ndim <= d < ndim:
            raise refuse(f"dimension {d!r} of a tensor with {ndim} dimensions")
        return d % ndim

    if kind == "flatten":
        start, end = dim(args[0], full), dim(args[1], full)
        if start == 0:
            raise refuse("flattening the batch dimension; flatten from dimension 1 (start_dim=1)")
        return Reshape((*in_shape[:start - 1], math.prod(in_shape[start - 1:end]), *in_shape[end:]))
    if kind == "unsqueeze":
        d = dim(args[0], full + 1)
        if d == 0:
            raise refuse("a new dimension before the batch dimension")
        return Reshape((*in_shape[:d - 1], 1, *in_shape[d - 1:]))
    if kind == "squeeze":
        if args[0] is None:
            raise refuse("squeeze() without dimensions would squeeze a batch of one; name the "
                         "dimensions (x.squeeze(1))")
        given = args[0] if isinstance(args[0], (tuple, list)) else [args[0]]
        squeezed = {dim(d, full) for d in given}
        if 0 in squeezed:
            raise refuse("squeezing the batch dimension")
        return Reshape(tuple(s for i, s in enumerate(in_shape, 1)
                             if not (i in squeezed and s == 1)))
    dims = list(args[0])
    lead = dims[0] if dims else None
    batch = (isinstance(lead, _Meta) and lead.batch) or lead == -1 or (
        spec.batch is not None and lead == spec.batch)
    rest = dims[1:]
    if not batch or any(not isinstance(s, int) or s < -1 for s in rest) or rest.count(-1) > 1:
        raise refuse(f"view/reshape to {tuple(dims)}: the first size must be the batch size "
                     "(x.size(0) or -1) and the others numbers, as in x.view(x.size(0), -1)")
    known = math.prod(s for s in rest if s != -1)
    if -1 in rest and known and n % known == 0:
        rest[rest.index(-1)] = n // known
    if math.prod(rest) != n:
        raise refuse(f"view/reshape to {tuple(dims)} of samples of shape {in_shape}")
    return Reshape(tuple(rest))


def constraint_offsets(prog: Program, domain: Any) -> list[int]:
    """Where each piecewise op's switching functions start among the constraint ids: the
    domain's halfspaces come first (ids ``0 .. offsets[0]-1``), then op ``j``'s functions (ids
    ``offsets[j] .. offsets[j+1]-1``); the last entry is the number of ids."""
    A, _ = domain.halfspaces()
    offs = [len(A)]
    for j in range(prog.num_piecewise):
        offs.append(offs[-1] + prog.num_switching(j))
    return offs
