"""Loading models for the command line, without unpickling arbitrary objects.

A MODEL is either

- a TorchScript file (``torch.jit.save``). TorchScript runs no Python on load; its modules are
  rebuilt as ordinary ``torch.nn`` modules (``nn.Sequential`` trees of supported layers) so that
  exactrelu can capture them; or
- ``package.module:factory``: a function (or class) called with no arguments that returns an
  ``nn.Module``, with its parameters from ``--weights state_dict.pt``, read with
  ``torch.load(..., weights_only=True)``.

Tensors for ``--line`` / ``--plane`` are read with ``torch.load(..., weights_only=True)`` too.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable

import torch
from torch import nn

from .errors import InvalidInputError

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
        sm = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # RuntimeError for anything that is not a TorchScript archive
        first = str(exc).strip().splitlines()[0].split(". ")[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"model {path} is not a TorchScript file ({first}); save one with "
                                "torch.jit.script(net).save(path), or use package.module:factory --weights") from None
    return _rebuild(sm, "model")


def _get(m: Any, name: str, where: str, default: Any = ...) -> Any:
    if hasattr(m, name):
        return getattr(m, name)
    if default is not ...:
        return default
    raise InvalidInputError(f"TorchScript module {where} ({m.original_name}) does not record '{name}'; "
                            "save the model with torch.jit.script (not torch.jit.trace), or use package.module:factory")


def _copy_tensors(dst: nn.Module, src: Any) -> nn.Module:
    params = dict(src.named_parameters(recurse=False))
    buffers = dict(src.named_buffers(recurse=False))
    with torch.no_grad():
        for name, p in dst.named_parameters(recurse=False):
            if name in params:
                p.copy_(params[name])
        for name, b in dst.named_buffers(recurse=False):
            if name in buffers and b is not None:
                b.copy_(buffers[name])
    return dst


def _rebuild(m: Any, where: str) -> nn.Module:
    """An ordinary nn.Module equal to the TorchScript module ``m``."""
    kind = getattr(m, "original_name", type(m).__name__)
    g = lambda name, default=...: _get(m, name, where, default)  # noqa: E731
    if kind == "Sequential":
        return nn.Sequential(*[_rebuild(c, f"{where}.{n}") for n, c in m.named_children()])
    if kind == "Linear":
        w = m.weight
        return _copy_tensors(nn.Linear(w.shape[1], w.shape[0], bias=getattr(m, "bias", None) is not None), m)
    if kind in ("Conv1d", "Conv2d"):
        w = m.weight
        cls = nn.Conv1d if kind == "Conv1d" else nn.Conv2d
        groups = g("groups")
        conv = cls(w.shape[1] * groups, w.shape[0], tuple(w.shape[2:]), stride=g("stride"), padding=g("padding"),
                   dilation=g("dilation"), groups=groups, bias=getattr(m, "bias", None) is not None,
                   padding_mode=g("padding_mode", "zeros"))
        return _copy_tensors(conv, m)
    if kind in ("BatchNorm1d", "BatchNorm2d"):
        n = m.running_mean.shape[0]
        cls = nn.BatchNorm1d if kind == "BatchNorm1d" else nn.BatchNorm2d
        affine = getattr(m, "weight", None) is not None
        return _copy_tensors(cls(n, eps=g("eps"), momentum=g("momentum", 0.1), affine=affine), m)
    if kind == "ReLU":
        return nn.ReLU()
    if kind == "LeakyReLU":
        return nn.LeakyReLU(g("negative_slope"))
    if kind == "Hardtanh":
        return nn.Hardtanh(g("min_val"), g("max_val"))
    if kind == "MaxPool2d":
        return nn.MaxPool2d(g("kernel_size"), g("stride"), g("padding"), g("dilation"), ceil_mode=g("ceil_mode"))
    if kind == "AvgPool2d":
        return nn.AvgPool2d(g("kernel_size"), g("stride"), g("padding"), ceil_mode=g("ceil_mode"),
                            count_include_pad=g("count_include_pad"), divisor_override=g("divisor_override", None))
    if kind == "AdaptiveAvgPool2d":
        return nn.AdaptiveAvgPool2d(g("output_size"))
    if kind == "Flatten":
        return nn.Flatten(g("start_dim"), g("end_dim"))
    if kind == "Dropout":
        return nn.Dropout(g("p", 0.5))
    if kind == "Identity":
        return nn.Identity()
    raise InvalidInputError(
        f"TorchScript module {where} is a {kind}; only nn.Sequential trees of standard layers can be rebuilt "
        "from TorchScript. For other architectures pass package.module:factory with --weights state_dict.pt")
