"""Loading models for the command line, without running code or unpickling objects from a file.

A MODEL is one of

- a ``torch.export`` program (``torch.export.save``, a ``.pt2`` archive), the preferred format.
  ``torch.export.load`` is not used: it unpickles weights saved with pickle
  (``torch.load(weights_only=False)``) and custom objects (``pickle.loads``), evaluates the
  symbolic shapes of dynamic dimensions with ``sympy.sympify`` (Python's ``eval``), and
  ``ep.module()`` compiles the file's guard strings with ``exec``. :func:`_from_pt2` reads the
  archive itself and takes only what cannot run code: every entry stored uncompressed (as
  ``torch.export.save`` writes them, so memory is bounded by the file), weights and constants as
  raw tensor bytes (never pickled; tensor metadata checked against the bytes), the program's JSON
  with static shapes only (no symbolic expression anywhere, no range constraints, no guard code,
  no custom objects), nodes calling ATen operators (``torch.ops.aten.*``) or ``operator.getitem``
  only, and node metadata reduced to strings torch splits without looking anything up. The
  example inputs (pickled) are not read. What remains is handed to torch's own deserializer
  (``torch._export.serde``), whose output :mod:`exactrelu.capture` checks op by op like any
  exported program. The reader uses torch's private serialization module and is tested with the
  torch this project pins; a torch without it gets one clear error.
- a TorchScript file (``torch.jit.save``, deprecated by torch) of an ``nn.Sequential`` tree of
  torch's standard layers. TorchScript runs no Python on load; each module is rebuilt as the
  standard ``torch.nn`` layer of the same name with the file's parameters and buffers carried
  exactly, and the file is refused unless every module's compiled code and attributes are exactly
  those of the rebuilt layer (so a scripted class that is only *called* ``ReLU`` is not taken for
  one); or
- ``package.module:factory``: a function (or class) called with no arguments that returns an
  ``nn.Module`` (the user's own code, which runs), with its parameters from ``--weights``: a
  safetensors file (read with the ``safetensors`` package: a JSON header and raw bytes) or a
  ``state_dict`` saved with ``torch.save``, read with ``torch.load(..., weights_only=True)``.

Tensors for ``--line`` / ``--plane`` are read with ``torch.load(..., weights_only=True)`` too.
"""

from __future__ import annotations

import importlib
import io
import json
import os
import re
import sys
import warnings
import zipfile
from collections import OrderedDict
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from . import _deps
from .errors import InvalidInputError, UnsupportedModelError

__all__ = ["load_model", "load_tensor"]

_FACTORY = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")


def is_factory_spec(spec: str) -> bool:
    """``package.module:factory`` (and not an existing file)?"""
    return bool(_FACTORY.match(spec)) and not Path(spec).exists()


def load_model(spec: str, weights: str | None = None) -> nn.Module:
    """The model named by ``spec`` (a ``.pt2`` program, a TorchScript file or
    ``module:factory``), in eval mode (an exported program is always in the mode it was
    exported in)."""
    if is_factory_spec(spec):
        return _from_factory(spec, weights).eval()
    if weights is not None:
        raise InvalidInputError("--weights goes with a 'package.module:factory' model, not a "
                                "model file (which holds its own weights)")
    if _is_pt2(spec):
        return _from_pt2(spec)
    return _from_torchscript(spec).eval()


def load_tensor(path: str, what: str) -> torch.Tensor:
    """A tensor saved with ``torch.save`` (read with ``weights_only=True``)."""
    obj = _safe_load(path, what)
    if not isinstance(obj, torch.Tensor):
        raise InvalidInputError(f"{what} {path} holds a {type(obj).__name__}, not a tensor; save "
                                "one with torch.save(x, path)")
    return obj.detach().to(torch.float64) if not obj.is_floating_point() else obj.detach()


def _safe_load(path: str, what: str) -> Any:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"{what}: no file at {path}")
    try:
        return torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch: UnpicklingError, RuntimeError, EOFError, ... for bad files
        first = _first_sentence(exc)
        raise InvalidInputError(f"{what} {path} is not a tensor file readable with "
                                f"weights_only=True ({first})") from None


def _first_sentence(exc: Exception) -> str:
    """The first sentence of an exception's message (its type's name when it has none)."""
    text = str(exc).strip()
    return text.splitlines()[0].split(". ")[0] if text else type(exc).__name__


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
        raise InvalidInputError(f"model {spec}: {attr} is not callable; pass a function or class "
                                "that builds the model")
    factory: Callable[[], Any] = obj
    try:
        net = factory()
    except TypeError as exc:
        raise InvalidInputError(f"model {spec}: calling {attr}() failed ({exc}); the factory must "
                                "take no arguments") from None
    if not isinstance(net, nn.Module):
        raise InvalidInputError(f"model {spec}: {attr}() returned a {type(net).__name__}, not a "
                                "torch.nn.Module")
    if weights is None:
        raise InvalidInputError(f"model {spec} needs --weights (a safetensors file, or a "
                                "state_dict saved with torch.save(net.state_dict(), path))")
    state = (_load_safetensors(weights) if _is_safetensors(weights)
             else _safe_load(weights, "--weights"))
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise InvalidInputError(f"--weights {weights} is not a state_dict (a dict of tensors)")
    try:
        net.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()
        detail = " ".join(s.strip() for s in first[:3])
        raise InvalidInputError(f"--weights {weights} does not fit {spec}: {detail}") from None
    return net


def _is_safetensors(path: str) -> bool:
    """Does ``path`` start like a safetensors file (8 bytes: the length of a JSON header that
    follows and fits in the file)?"""
    p = Path(path)
    if not p.is_file():
        return False
    with open(p, "rb") as f:
        head = f.read(9)
    n = int.from_bytes(head[:8], "little") if len(head) == 9 else 0
    return head[8:9] == b"{" and 2 <= n <= p.stat().st_size - 8


def _load_safetensors(path: str) -> dict[str, torch.Tensor]:
    try:
        from safetensors.torch import load_file
    except ImportError as err:
        raise _deps.extra_missing(err, "exactrelu._models", "safetensors") from None
    try:
        return load_file(path, device="cpu")
    except Exception as exc:  # safetensors raises its own error types for bad files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"--weights {path} is not a readable safetensors file "
                                f"({first})") from None


# A .pt2 archive as torch.export.save writes it; what exactrelu reads of it is bounded by these.
_PT2_JSON_LIMIT = 256 * 2**20  # bytes of one JSON entry
_PT2_TARGETS = re.compile(r"^(torch\.ops\.aten\.[A-Za-z0-9_]+\.[A-Za-z0-9_]+|_operator\.getitem)$")
_PT2_METADATA = ("stack_trace", "nn_module_stack", "torch_fn")


def _is_pt2(path: str) -> bool:
    """A zip archive with a PT2 ``archive_format`` entry (torch.export.save's format)?"""
    if not Path(path).is_file() or not zipfile.is_zipfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/archive_format") or n == "archive_format" for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


class _Pt2:
    """The entries of a .pt2 archive by their path below the archive's root folder."""

    def __init__(self, path: str, z: zipfile.ZipFile) -> None:
        self.path = path
        self.z = z
        infos = z.infolist()
        roots = {i.filename.split("/", 1)[0] for i in infos}
        if len(roots) != 1 or any("/" not in i.filename for i in infos):
            raise self.error("its entries are not in one root folder")
        root = roots.pop()
        self.entries = {i.filename[len(root) + 1:]: i for i in infos}

    def error(self, why: str) -> InvalidInputError:
        return InvalidInputError(f"model {self.path} is not a torch.export file exactrelu reads "
                                 f"({why}); save it with torch.export.save(torch.export.export("
                                 "net, (example,)), path)")

    def read(self, name: str, limit: int | None = None) -> bytes:
        info = self.entries.get(name)
        if info is None:
            raise self.error(f"no entry {name}")
        if info.compress_type != zipfile.ZIP_STORED:
            raise self.error(f"entry {name} is compressed (torch.export.save stores entries)")
        if limit is not None and info.file_size > limit:
            raise self.error(f"entry {name} has {info.file_size} bytes (at most {limit})")
        return self.z.read(info)

    def json(self, name: str) -> Any:
        try:
            return json.loads(self.read(name, _PT2_JSON_LIMIT))
        except (ValueError, UnicodeDecodeError) as exc:
            raise self.error(f"entry {name} is not JSON ({exc})") from None


def _from_pt2(path: str) -> nn.Module:
    """``ep.module()`` of the program in a .pt2 file, read without running any of its content
    (see the module docstring)."""
    try:
        from torch._export.serde import schema
        from torch._export.serde.serialize import (
            ExportedProgramDeserializer,
            _dict_to_dataclass,
            deserialize_scalar_type,
        )
        from torch.export.pt2_archive import constants as names
    except ImportError as exc:
        raise InvalidInputError(f"model {path}: this torch ({torch.__version__}) has no "
                                "torch.export serialization module exactrelu can use "
                                f"({exc})") from None
    try:
        with zipfile.ZipFile(path) as z:
            archive = _Pt2(path, z)
            if archive.read(names.ARCHIVE_FORMAT_PATH, 64).decode(errors="replace") != "pt2":
                raise archive.error("its archive_format is not pt2")
            version = archive.read(names.ARCHIVE_VERSION_PATH, 64).decode(errors="replace")
            if version != names.ARCHIVE_VERSION_VALUE:
                raise archive.error(f"archive version {version!r}; this torch writes "
                                    f"{names.ARCHIVE_VERSION_VALUE!r}")
            models = [n for n in archive.entries
                      if n.startswith(names.MODELS_DIR) and n.endswith(".json")]
            model_file = names.MODELS_FILENAME_FORMAT.format("model")
            if models != [model_file]:
                raise archive.error(f"it holds the programs {models}; exactrelu reads files with "
                                    "one program, saved by torch.export.save")
            program = archive.json(model_file)
            problems = _pt2_program_problems(program)
            if problems:
                raise archive.error("; ".join(problems))
            state = _pt2_tensors(archive, names.WEIGHTS_CONFIG_FILENAME_FORMAT.format("model"),
                                 names.WEIGHTS_DIR, schema, _dict_to_dataclass,
                                 deserialize_scalar_type)
            consts = _pt2_tensors(archive, names.CONSTANTS_CONFIG_FILENAME_FORMAT.format("model"),
                                  names.CONSTANTS_DIR, schema, _dict_to_dataclass,
                                  deserialize_scalar_type)
    except zipfile.BadZipFile as exc:
        raise InvalidInputError(f"model {path} is not a readable zip archive ({exc})") from None
    try:
        serialized = _dict_to_dataclass(schema.ExportedProgram, program)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ep = ExportedProgramDeserializer().deserialize(serialized, state, consts, None)
        return ep.module()
    except Exception as exc:  # the deserializer raises many types for inconsistent programs
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InvalidInputError(f"model {path}: torch cannot rebuild the program it holds "
                                f"({first})") from None


def _pt2_program_problems(program: Any) -> list[str]:
    """Why the program's JSON needs more than exactrelu's reader takes (see the module
    docstring); its node metadata is reduced to plain strings in place."""
    if not isinstance(program, dict) or not isinstance(program.get("graph_module"), dict):
        return ["its program is not a JSON object with a graph_module"]
    out = []
    if program.get("guards_code"):
        out.append("it has guard code (torch compiles it with exec; export with static shapes)")
    if program.get("range_constraints"):
        out.append("it has dynamic dimensions (export with static shapes)")
    gm = program["graph_module"]
    graph = gm.get("graph") if isinstance(gm.get("graph"), dict) else {}
    if any(graph.get(k) for k in ("sym_int_values", "sym_bool_values", "sym_float_values",
                                  "custom_obj_values")) or gm.get("treespec_namedtuple_fields"):
        out.append("it has symbolic values, custom objects or named tuples")

    found: set[str] = set()

    def walk(obj: Any) -> None:
        if isinstance(obj, dict):
            found.update(k for k in obj if k in ("as_expr", "as_custom_obj", "as_graph"))
            for v in obj.values():
                walk(v)
        elif isinstance(obj, list):
            for v in obj:
                walk(v)

    walk(program)
    if found:
        out.append(f"it has {', '.join(sorted(found))} values (symbolic shapes, custom objects "
                   "or subgraphs; export with static shapes)")
    targets = set()
    for node in graph.get("nodes", []) if isinstance(graph.get("nodes"), list) else []:
        if not isinstance(node, dict):
            continue
        target = node.get("target")
        if not isinstance(target, str) or not _PT2_TARGETS.match(target):
            targets.add(str(target))
        meta = node.get("metadata")
        if isinstance(meta, dict):
            node["metadata"] = {k: v for k, v in meta.items()
                                if k in _PT2_METADATA and isinstance(v, str)}
    if targets:
        out.append(f"it calls {', '.join(sorted(targets))} (exactrelu takes ATen operators)")
    return out


def _concrete(values: Sequence[Any]) -> list[Any] | None:
    """The integers of a schema's list of symbolic or concrete ints, None if any is symbolic."""
    out = [v.as_int for v in values if v.type == "as_int"]
    return out if len(out) == len(values) else None


def _pt2_tensors(archive: _Pt2, config_name: str, folder: str, schema: Any, to_dataclass: Any,
                 scalar_type: Any) -> dict[str, torch.Tensor]:
    """The tensors a payload config lists, from their raw bytes, on the CPU (tensors sharing a
    payload share its storage, as torch saved them); a pickled payload or a custom object is
    refused."""
    try:
        config = to_dataclass(schema.PayloadConfig, archive.json(config_name))
    except InvalidInputError:
        raise
    except Exception as exc:  # a config whose fields do not match torch's schema
        raise archive.error(f"{config_name} is not a payload config ({exc})") from None
    storages: dict[str, torch.Tensor] = {}
    out: dict[str, torch.Tensor] = {}
    for fqn, meta in config.config.items():
        if meta.use_pickle or meta.tensor_meta is None:
            raise archive.error(f"{fqn} is pickled (exactrelu reads raw tensors only)")
        if not meta.path_name.startswith(("weight_", "tensor_")):
            raise archive.error(f"{fqn} is a custom object ({meta.path_name})")
        tm = meta.tensor_meta
        sizes, strides = _concrete(tm.sizes), _concrete(tm.strides)
        offset = tm.storage_offset.as_int if tm.storage_offset.type == "as_int" else None
        dtype = scalar_type(tm.dtype)
        if sizes is None or strides is None or offset is None:
            raise archive.error(f"{fqn} has a symbolic shape")
        if meta.path_name not in storages:
            raw = archive.read(folder + meta.path_name)
            size = torch.empty((), dtype=dtype).element_size()
            if len(raw) % size:
                raise archive.error(f"{fqn}: {len(raw)} bytes are not a whole number of {dtype}")
            storages[meta.path_name] = torch.frombuffer(bytearray(raw), dtype=dtype) if raw else \
                torch.empty(0, dtype=dtype)
        flat = storages[meta.path_name]
        if flat.dtype != dtype:
            raise archive.error(f"{fqn}: its payload is shared with a tensor of another dtype")
        if len(strides) != len(sizes):
            raise archive.error(f"{fqn}: shape {sizes} has {len(sizes)} dimensions but "
                                f"{len(strides)} strides")
        extent = offset + sum((n - 1) * st for n, st in zip(sizes, strides, strict=True)) \
            if all(sizes) else -1
        if any(n < 0 for n in sizes) or any(st < 0 for st in strides) or offset < 0 or \
                extent >= flat.numel():
            raise archive.error(f"{fqn}: shape {sizes} with strides {strides} at offset {offset} "
                                f"does not fit its {flat.numel()} stored values")
        t = torch.as_strided(flat, sizes, strides, offset)
        out[fqn] = nn.Parameter(t, requires_grad=tm.requires_grad) if meta.is_param else t
    return out


def _from_torchscript(path: str) -> nn.Module:
    p = Path(path)
    if not p.is_file():
        raise InvalidInputError(f"model: no file at {path} (pass a TorchScript file or "
                                "package.module:factory)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            sm = torch.jit.load(str(p), map_location="cpu")
    except Exception as exc:  # RuntimeError for anything that is not a TorchScript archive
        first = _first_sentence(exc)
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
_CONV_TRANSPOSE = ("in_channels", "out_channels", "kernel_size", "stride", "padding",
                   "output_padding", "groups", _BIAS, "dilation", "padding_mode")
_NORM = ("num_features", "eps", "momentum", "affine", "track_running_stats")
_LAYERS: dict[str, tuple[type[nn.Module], tuple[str, ...]]] = {
    "Linear": (nn.Linear, ("in_features", "out_features", _BIAS)),
    "Conv1d": (nn.Conv1d, _CONV),
    "Conv2d": (nn.Conv2d, _CONV),
    "Conv3d": (nn.Conv3d, _CONV),
    **{f"ConvTranspose{d}d": (getattr(nn, f"ConvTranspose{d}d"), _CONV_TRANSPOSE)
       for d in (1, 2, 3)},
    "BatchNorm1d": (nn.BatchNorm1d, _NORM),
    "BatchNorm2d": (nn.BatchNorm2d, _NORM),
    "BatchNorm3d": (nn.BatchNorm3d, _NORM),
    "PReLU": (nn.PReLU, ("num_parameters",)),
    "Upsample": (nn.Upsample, ("size", "scale_factor", "mode", "align_corners",
                               "recompute_scale_factor")),
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
    iterators = torch._C._jit_debug_module_iterators  # type: ignore[attr-defined]  # not in stubs
    items = iterators(m._c)["named_attributes"]
    return {k: v for k, v in items if not isinstance(v, torch._C.ScriptObject)}


def _same_value(a: Any, b: Any) -> bool:
    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        if not (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor)):
            return False
        bits = [t.detach().reshape(-1).view(torch.uint8) for t in (a, b)]
        return (a.dtype == b.dtype and a.shape == b.shape and a.layout == b.layout == torch.strided
                and torch.equal(*bits))
    return type(a) is type(b) and a == b
