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


def _get(m: Any, name: str, where: str, default: Any = ...) -> Any:
    if hasattr(m, name):
        return getattr(m, name)
    if default is not ...:
        return default
    raise _NotStandard(f"{where} ({m.original_name}) does not record the constant '{name}' of a "
                       f"standard {m.original_name}")


class _NotStandard(Exception):
    """A scripted module that cannot be rebuilt as a standard layer (the message says why)."""


def _has(m: Any, name: str) -> bool:
    return getattr(m, name, None) is not None


# Standard layers by their class name: a constructor from the scripted module's constants. What
# the constructor builds is then compared with the scripted module (code, attributes, tensors).
_LAYERS: dict[str, Callable[[Callable[..., Any], Any], nn.Module]] = {
    "Linear": lambda g, m: nn.Linear(g("in_features"), g("out_features"), bias=_has(m, "bias")),
    "Conv1d": lambda g, m: nn.Conv1d(g("in_channels"), g("out_channels"), g("kernel_size"), g("stride"),
                                     g("padding"), g("dilation"), g("groups"), _has(m, "bias"),
                                     g("padding_mode")),
    "Conv2d": lambda g, m: nn.Conv2d(g("in_channels"), g("out_channels"), g("kernel_size"), g("stride"),
                                     g("padding"), g("dilation"), g("groups"), _has(m, "bias"),
                                     g("padding_mode")),
    "BatchNorm1d": lambda g, m: nn.BatchNorm1d(g("num_features"), g("eps"), g("momentum"), g("affine"),
                                               g("track_running_stats")),
    "BatchNorm2d": lambda g, m: nn.BatchNorm2d(g("num_features"), g("eps"), g("momentum"), g("affine"),
                                               g("track_running_stats")),
    "ReLU": lambda g, m: nn.ReLU(g("inplace")),
    "ReLU6": lambda g, m: nn.ReLU6(g("inplace")),
    "LeakyReLU": lambda g, m: nn.LeakyReLU(g("negative_slope"), g("inplace")),
    "Hardtanh": lambda g, m: nn.Hardtanh(g("min_val"), g("max_val"), g("inplace")),
    "MaxPool2d": lambda g, m: nn.MaxPool2d(g("kernel_size"), g("stride"), g("padding"), g("dilation"),
                                           g("return_indices"), g("ceil_mode")),
    "AvgPool2d": lambda g, m: nn.AvgPool2d(g("kernel_size"), g("stride"), g("padding"), g("ceil_mode"),
                                           g("count_include_pad"), g("divisor_override")),
    "AdaptiveAvgPool2d": lambda g, m: nn.AdaptiveAvgPool2d(g("output_size")),
    "Flatten": lambda g, m: nn.Flatten(g("start_dim"), g("end_dim")),
    "Identity": lambda g, m: nn.Identity(),
    **{kind: (lambda cls: lambda g, m: cls(g("p"), g("inplace")))(getattr(nn, kind))
       for kind in ("Dropout", "Dropout1d", "Dropout2d", "Dropout3d", "AlphaDropout", "FeatureAlphaDropout")},
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
                raise _NotStandard(f"{where} ({kind}) has submodules {[n for n, _ in children]}, which a "
                                   f"standard {kind} does not")
            out = _LAYERS[kind](lambda name, default=...: _get(m, name, where, default), m)
        else:
            raise _NotStandard(f"{where} is a {kind}, not one of the standard layers exactrelu rebuilds "
                               f"(nn.Sequential of {', '.join(sorted(_LAYERS))})")
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
    """Give ``dst`` exactly ``src``'s own parameters and buffers (copies, same names, kinds, dtypes)."""
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
        if not any(other.startswith(f"{name}.") or (not name and other) for other in code if other != name):
            where = f"model.{name}" if name else "model"
            kind = getattr(loaded[name], "original_name", "?")
            out.append(f"{where} ({kind}): its compiled code is not that of torch.nn.{kind}")
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
_COMMENT = re.compile(r"\s*#.*$", re.MULTILINE)
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
        return (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and a.dtype == b.dtype
                and a.shape == b.shape and a.layout == b.layout == torch.strided
                and torch.equal(a.detach().reshape(-1).view(torch.uint8), b.detach().reshape(-1).view(torch.uint8)))
    return type(a) is type(b) and a == b
