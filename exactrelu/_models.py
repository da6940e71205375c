"""Loading models for the command line, without unpickling arbitrary objects.

A MODEL is either

- a TorchScript file (``torch.jit.save``) of an ``nn.Sequential`` tree of torch's standard
  layers. TorchScript runs no Python on load; each module is rebuilt as the standard ``torch.nn``
  layer of the same name with the file's parameters and buffers carried exactly, and the file is
  refused unless every module's compiled code and attributes are exactly those of the rebuilt
  layer (so a scripted class that is only *called* ``ReLU`` is not taken for one); or
- ``package.module:factory``: a function (or class) called with no arguments that returns an
  ``nn.Module``, with its parameters from ``--weights state_dict.pt``, read with
  ``torch.load(..., weights_only=True)``.

Tensors for ``--line`` / ``--plane`` are read with ``torch.load(..., weights_only=True)`` too.
"""

from __future__ import annotations

import importlib
import io
import os
import re
import sys
import warnings
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .errors import InvalidInputError, UnsupportedModelError

__all__ = ["load_model", "load_tensor"]

_FACTORY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def is_factory_spec(spec: str) -> bool:
    """``package.module:factory`` (and not an existing file)?"""
    return bool(_FACTORY.match(spec)) and not Path(spec).exists()


def load_model(spec: str, weights: str | None = None) -> nn.Module:
    """The model named by ``spec`` (TorchScript file or ``module:factory``), in eval mode."""
    if is_factory_spec(spec):
        net = _from_factory(spec, weights)
    else:
        if weights is not None:
            raise InvalidInputError("--weights goes with a 'package.module:factory' model, not a TorchScript file")
        net = _from_torchscript(spec)
    return net.eval()


def load_tensor(path: str, what: str) -> torch.Tensor:
    """A tensor saved with ``torch.save`` (read with ``weights_only=True``)."""
    obj = _safe_load(path, what)
    if not isinstance(obj, torch.Tensor):
        raise InvalidInputError(f"{what} {path} holds a {type(obj).__name__}, not a tensor; save one with torch.save(x, path)")
    return obj.detach().to(torch.float64) if not obj.is_floating_point() else obj.detach()


def _safe_load(path: str, what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{what}: no file at {path}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError, RuntimeError, EOFError, ... for bad files
        first = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"{what} {path} is not a tensor file readable with weights_only=True ({first})") from None


def _from_factory(spec: str, weights: str | None) -> nn.Module:
    mod_name, attr = spec.split(":", 1)
    cwd = os.getcwd()
    if cwd not in sys.path:  # like `python -m`: modules next to the user are importable
        sys.path.insert(0, cwd)
    try:
        obj: Any = importlib.import_module(mod_name)
    except ImportError as exc:
        raise InvalidInputError(f"model {spec}: cannot import {mod_name} ({exc})") from None
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise InvalidInputError(f"model {spec}: {mod_name} has no attribute {attr}")
        obj = getattr(obj, part)
    if not callable(obj):
        raise InvalidInputError(f"model {spec}: {attr} is not callable; pass a function or class that builds the model")
    factory: Callable[[], Any] = obj
    try:
        net = factory()
    except TypeError as exc:
        raise InvalidInputError(f"model {spec}: calling {attr}() failed ({exc}); the factory must take no arguments") from None
    if not isinstance(net, nn.Module):
        raise InvalidInputError(f"model {spec}: {attr}() returned a {type(net).__name__}, not a torch.nn.Module")
    if weights is None:
        raise InvalidInputError(f"model {spec} needs --weights state_dict.pt (saved with torch.save(net.state_dict(), path))")
    state = _safe_load(weights, "--weights")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidInputError(f"--weights {weights} is not a state_dict (a dict of tensors)")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(s.strip() for s in first[:3])
        raise InvalidInputError(f"--weights {weights} does not fit {spec}: {detail}") from None
    return net


def _from_torchscript(path: str) -> nn.Module:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"model: no file at {path} (pass a TorchScript file or package.module:factory)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sm = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # RuntimeError for anything that is not a TorchScript archive
        first = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"model {path} is not a TorchScript file ({first}); pass "
                                f"package.module:factory --weights state_dict.pt instead") from None
    problems: list[str] = []
    net = _rebuild(sm, "model", problems)
    if not problems:
        problems = _differences(sm, net)
    if problems:
        lines = "\n".join(f"  - {q}" for q in problems)
        raise UnsupportedModelError(
            f"model {path}: exactrelu rebuilds a TorchScript file only when every module in it is "
            f"one of torch's standard layers, exactly:\n{lines}\n{_INSTEAD}", problems)
    return net


_INSTEAD = ("Pass the model as package.module:factory (a function building the nn.Module) with "
            "--weights state_dict.pt (saved with torch.save(net.state_dict(), path)) instead.")


def _get(m: Any, name: str, where: str) -> Any:
    if hasattr(m, name):
        return getattr(m, name)
    raise _NotStandard(f"{where} ({m.original_name}) does not record the constant '{name}' of a "
                       f"standard {m.original_name}")


class _NotStandard(Exception):
    """A scripted module that cannot be rebuilt as a standard layer (the message says why)."""


def _has(m: Any, name: str) -> bool:
    return getattr(m, name, None) is not None


# Standard layers by their class name: the class and the constants its constructor takes, in
# order, read from the scripted module (_BIAS: whether it has a bias). What this builds is then
# compared with the scripted module (code, attributes, tensors).
_BIAS = "<has bias>"
_CONV = ("in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups",
         _BIAS, "padding_mode")
_NORM = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_LAYERS: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "Linear": (nn.Linear, ("in_features", "out_features", _BIAS)),
    "Conv1d": (nn.Conv1d, _CONV),
    "Conv2d": (nn.Conv2d, _CONV),
    "BatchNorm1d": (nn.BatchNorm1d, _NORM),
    "BatchNorm2d": (nn.BatchNorm2d, _NORM),
    "ReLU": (nn.ReLU, ("inplace",)),
    "ReLU6": (nn.ReLU6, ("inplace",)),
    "LeakyReLU": (nn.LeakyReLU, ("negative_slope", "inplace")),
    "Hardtanh": (nn.Hardtanh, ("min_val", "max_val", "inplace")),
    "MaxPool2d": (nn.MaxPool2d, ("kernel_size", "stride", "padding", "dilation", "return_indices",
                                 "ceil_mode")),
    "AvgPool2d": (nn.AvgPool2d, ("kernel_size", "stride", "padding", "ceil_mode",
                                 "count_include_pad", "divisor_override")),
    "AdaptiveAvgPool2d": (nn.AdaptiveAvgPool2d, ("output_size",)),
    "Flatten": (nn.Flatten, ("start_dim", "end_dim")),
    "Identity": (nn.Identity, ()),
    **{kind: (getattr(nn, kind), ("p", "inplace")) for kind in
       ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")},
}


def _rebuild(m: Any, where: str, problems: list[str]) -> nn.Module:
    """An ordinary nn.Module built from the standard layer named like each scripted module, with
    the scripted module's own parameters and buffers (every one, by name and kind, values and
    dtypes exactly) and training flags. Whether it computes what ``m`` computes is decided by
    :func:`_differences`; a module that cannot be rebuilt is a problem naming it."""
    kind = getattr(m, "original_name", type(m).__name__)
    children = list(m.named_children())
    try:
        if kind == "Sequential":
            out: nn.Module = nn.Sequential(OrderedDict(
                (n, _rebuild(c, f"{where}.{n}", problems)) for n, c in children))
        elif kind in _LAYERS:
            if children:
                raise _NotStandard(f"{where} ({kind}) has submodules {[n for n, _ in children]}, "
                                   f"which a standard {kind} does not")
            cls, consts = _LAYERS[kind]
            out = cls(*[_has(m, "bias") if c == _BIAS else _get(m, c, where) for c in consts])
        else:
            raise _NotStandard(f"{where} is a {kind}, not one of the standard layers exactrelu "
                               f"rebuilds (nn.Sequential of {', '.join(sorted(_LAYERS))})")
    except _NotStandard as exc:
        problems.append(str(exc))
        return nn.Identity()
    except Exception as exc:  # a constant of the wrong type for the standard constructor
        problems.append(f"{where} ({kind}): its constants do not build a standard {kind} ({exc})")
        return nn.Identity()
    _carry_tensors(out, m)
    out.training = bool(m.training)
    return out


def _carry_tensors(dst: nn.Module, src: Any) -> None:
    """Give ``dst`` exactly ``src``'s own parameters and buffers (copies: same names, kinds and
    dtypes)."""
    for name, t in src.named_parameters(recurse=False):
        dst._buffers.pop(name, None)
        dst._parameters[name] = nn.Parameter(t.detach().clone(), requires_grad=t.requires_grad)
    for name, t in src.named_buffers(recurse=False):
        dst._parameters.pop(name, None)
        dst._buffers[name] = t.detach().clone()


def _differences(sm: Any, net: nn.Module) -> list[str]:
    """Where the rebuilt ``net`` may compute something else than the loaded ``sm``: compiled code
    (the inlined graph of each module's forward, which includes every method and function it
    calls) or any attribute (tensors bit for bit, constants, flags) differs from what TorchScript
    makes of the rebuilt standard modules, or a module has forward hooks. Only the innermost
    modules whose code differs are named."""
    try:
        ref = _script(net)
    except Exception as exc:  # a TorchScript that cannot script torch's own layers any more
        return [f"model: the rebuilt standard layers cannot be compiled for comparison ({exc})"]
    loaded, wanted = dict(sm.named_modules()), dict(ref.named_modules())
    out: list[str] = []
    code: list[str] = []
    for name, a in loaded.items():
        where = f"model.{name}" if name else "model"
        kind = getattr(a, "original_name", type(a).__name__)
        b = wanted.get(name)
        if b is None:
            out.append(f"{where} ({kind}): has no counterpart in the rebuilt model")
            continue
        if a._c._get_forward_hooks() or a._c._get_forward_pre_hooks():
            out.append(f"{where} ({kind}): has forward hooks, which may change what it computes")
        if _graph_text(a) != _graph_text(b):
            code.append(name)
        attrs_a, attrs_b = _attributes(a), _attributes(b)
        for key in sorted(set(attrs_a) | set(attrs_b)):
            if not _same_value(attrs_a.get(key, _MISSING), attrs_b.get(key, _MISSING)):
                out.append(f"{where} ({kind}): attribute '{key}' is not that of a standard {kind}")
    for name in code:
        inner = [o for o in code if o != name and (not name or o.startswith(f"{name}."))]
        if not inner:
            where = f"model.{name}" if name else "model"
            kind = getattr(loaded[name], "original_name", "?")
            out.append(f"{where} ({kind}): its compiled code is not that of torch.nn.{kind} "
                       f"(as torch {torch.__version__} compiles it)")
    return out


def _script(net: nn.Module) -> Any:
    """``net`` compiled by TorchScript and passed through save and load, as a saved file is."""
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.save(torch.jit.script(net), buf)
        buf.seek(0)
        return torch.jit.load(buf, map_location="cpu")


_MANGLE = re.compile(r"___torch_mangle_\d+\.")
_COMMENT = re.compile(r"\s+# .*:\d+:\d+$", re.MULTILINE)  # a source location: " # file:line:col"
_VALUE = re.compile(r"%[\w.]+")


def _graph_text(m: Any) -> str:
    """The inlined graph of ``m``'s forward without source locations, with type names unmangled
    and values renumbered in order of appearance (names of values carry no meaning)."""
    text = _MANGLE.sub("", _COMMENT.sub("", str(m.inlined_graph)))
    names: dict[str, str] = {}
    return _VALUE.sub(lambda v: names.setdefault(v.group(0), f"%{len(names)}"), text)


_MISSING = object()


def _attributes(m: Any) -> dict[str, Any]:
    """Every attribute of a scripted module that is not a submodule: parameters, buffers,
    constants, flags."""
    items = torch._C._jit_debug_module_iterators(m._c)["named_attributes"]
    return {k: v for k, v in items if not isinstance(v, torch._C.ScriptObject)}


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        bits = [t.detach().reshape(-1).view(torch.uint8) for t in (a, b)]
        return (a.dtype == b.dtype and a.shape == b.shape and a.layout == b.layout == torch.strided
                and torch.equal(*bits))
    return type(a) is type(b) and a == b
