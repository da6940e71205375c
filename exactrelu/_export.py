"""The torch.export front end: an ``ExportedProgram``, or the module ``ep.module()`` makes of it.

capture takes an exported program as the module its ``module()`` returns (a ``GraphModule`` of
ATen ops whose parameters, buffers and constants are the program's), so the certified function is
exactly ``ep.module()(x)``. It walks that module's graph as it is rather than tracing it again,
which is sound only because its forward runs exactly that graph; :func:`problems` checks so:

- the forward is the code generated from the current graph (not a graph edited afterwards
  without ``recompile()``), compiled: the class's ``forward`` has the bytecode, names and
  constants of that code compiled anew (not a forward replaced on the class);
- the program takes one tensor (positionally) and returns one tensor;
- the hooks and replaced methods are torch.export's own: a pre-hook that checks the inputs match
  the program's input spec, two that enter and leave a context for modules passed as inputs
  (none here), ``train``/``eval`` that raise, and the ``_guards_fn`` submodule the graph calls to
  assert the input's shape, whose result nothing reads. None of them changes a value.

The graph's ATen ops are translated by the tables of :mod:`exactrelu._ops` into the modules the
rules of :mod:`exactrelu.rules` know; anything else is refused with every op listed.

An exported program has a batch size of its own when it was exported with static shapes (the
default): its reshapes then name that number (``view(x, [1, 8])``), which capture reads as the
batch dimension; every op is checked to act on each sample alone.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeGuard

import torch
import torch.fx as fx
import torch.utils._pytree as pytree
from torch import nn

_unlift: ModuleType | None
try:  # where torch.export keeps the module class ep.module() makes and its guard submodule
    from torch.export import _unlift
except ImportError:  # pragma: no cover - a torch without torch.export
    _unlift = None

__all__ = ["as_module", "is_exported", "is_guard", "own_hook", "own_methods", "problems",
           "input_batch_and_shape", "input_shape"]

if TYPE_CHECKING:
    from torch.export import ExportedProgram

_EXPORTED = getattr(_unlift, "_StatefulGraphModule", None)
_GUARDS = getattr(_unlift, "GuardsFn", None)


def _exported_program_class() -> type[ExportedProgram] | None:
    try:
        from torch.export import ExportedProgram
    except ImportError:  # pragma: no cover
        return None
    return ExportedProgram


def as_module(obj: Any) -> Any:
    """``obj.module()`` for an ``ExportedProgram``, ``obj`` itself otherwise."""
    cls = _exported_program_class()
    return obj.module() if cls is not None and isinstance(obj, cls) else obj


def is_exported(mod: Any) -> TypeGuard[fx.GraphModule]:
    """Did torch.export make ``mod`` (``ep.module()``)?"""
    return _EXPORTED is not None and isinstance(mod, _EXPORTED)


def is_guard(mod: Any) -> bool:
    """Is ``mod`` the guard submodule torch.export adds (``_guards_fn``)?"""
    return _GUARDS is not None and isinstance(mod, _GUARDS)


def own_hook(mod: Any, hook: Any) -> bool:
    """Is ``hook`` one torch.export registers on the module it makes (see the module docstring)?"""
    if not is_exported(mod):
        return False
    return (hook is getattr(_unlift, "_check_input_constraints_pre_hook", None)
            or (getattr(hook, "__module__", None) == getattr(_unlift, "__name__", None)
                and getattr(hook, "__qualname__", "").startswith(
                    "_create_stateful_graph_module.<locals>.")))


def own_methods(mod: Any) -> set[str]:
    """The methods torch.export replaces on the instances it makes: ``train`` and ``eval`` of the
    module (they raise), ``forward`` of the guard (it asserts the input's shape)."""
    if is_guard(mod):
        return {"forward"}
    if not is_exported(mod):
        return set()
    return {name for name in ("train", "eval")
            if getattr(getattr(vars(mod).get(name), "__func__", None), "__qualname__", "")
            .startswith("ExportedProgram.module.<locals>.")}


def problems(gm: Any, label: str) -> list[str]:
    """What makes ``gm``'s forward differ from its graph, or its call from one tensor in and one
    tensor out (see the module docstring)."""
    out = []
    where = f"{label} (torch.export program)"
    code = gm.graph.python_code(root_module="self").src
    if code != gm.code or not _runs(getattr(type(gm), "forward", None), code):
        out.append(f"{where}: its forward is not the code of its graph (a graph edited without "
                   "recompile(), or a forward replaced); export the model again")
    if getattr(gm, "_in_spec", None) != pytree.tree_structure(((0,), {})):
        out.append(f"{where}: it takes {gm._in_spec}; exactrelu certifies programs taking one "
                   "tensor")
    if getattr(gm, "_out_spec", None) != pytree.tree_structure(0):
        out.append(f"{where}: it returns {gm._out_spec}; exactrelu certifies programs returning "
                   "one tensor")
    return out


def _runs(forward: Any, source: str) -> bool:
    """Is ``forward`` the function that ``source`` (a GraphModule's generated code) defines: the
    same bytecode, names and constants?"""
    ours = compile(source, "<exactrelu>", "exec", dont_inherit=True)
    want = next((c for c in ours.co_consts if getattr(c, "co_name", None) == "forward"), None)
    got = getattr(forward, "__code__", None)
    return want is not None and got is not None and all(
        getattr(want, k) == getattr(got, k)
        for k in ("co_code", "co_names", "co_varnames", "co_consts", "co_argcount"))


def input_batch_and_shape(gm: Any) -> tuple[int | None, tuple[int, ...] | None]:
    """(batch size, per-sample shape) of the program's input: the batch size None when it is
    dynamic, the shape None when the graph does not record it."""
    for node in gm.graph.nodes:
        if node.op == "placeholder":
            val = node.meta.get("val")
            if not isinstance(val, torch.Tensor) or val.dim() == 0:
                return None, None
            rest = tuple(val.shape[1:])
            if not all(isinstance(s, int) for s in rest):
                return None, None
            batch = val.shape[0]
            return (batch if isinstance(batch, int) else None), rest
    return None, None


def input_shape(net: Any) -> tuple[int, ...] | None:
    """The per-sample input shape of an exported program (or of ``ep.module()``), else None."""
    mod = as_module(net)
    if not isinstance(mod, nn.Module) or not is_exported(mod):
        return None
    return input_batch_and_shape(mod)[1]
