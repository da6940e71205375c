"""Model files at the command line: .pt2 (torch.export), TorchScript, and a factory with
safetensors or state_dict weights give the same regions, each checked against its own file; the
.pt2 reader refuses, without running or unpickling anything, what could run code."""

from __future__ import annotations

import json
import re
import sys
import warnings
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import exactrelu
from exactrelu import InvalidInputError, MissingDependencyError
from exactrelu._models import load_model
from exactrelu.cli import main

FACTORY = """\
from torch import nn


def build():
    return nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 4), nn.Hardtanh(),
                         nn.Linear(4, 1))
"""


def _net() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(2, 5), nn.ReLU(), nn.Linear(5, 4), nn.Hardtanh(),
                         nn.Linear(4, 1)).eval()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from safetensors.torch import save_file

    d = tmp_path_factory.mktemp("files")
    net = _net()
    torch.export.save(torch.export.export(net, (torch.zeros(1, 2),)), d / "model.pt2")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.jit.script(net).save(str(d / "model.pt"))
    torch.save(net.state_dict(), d / "weights.pt")
    save_file(net.state_dict(), str(d / "weights.safetensors"))
    (d / "files_factory.py").write_text(FACTORY)
    return {"dir": d, "net": net}


def _run(args: list, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch,
         cwd: Path) -> tuple[int, str, str]:
    monkeypatch.chdir(cwd)
    rc = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


FORMATS = {
    ".pt2 (torch.export)": lambda d: ["model.pt2"],
    "TorchScript": lambda d: ["model.pt"],
    "factory + state_dict": lambda d: ["files_factory:build", "--weights", "weights.pt"],
    "factory + safetensors": lambda d: ["files_factory:build", "--weights", "weights.safetensors"],
}


def test_every_format_counts_the_same_regions_and_checks(files, capsys, monkeypatch) -> None:
    d = files["dir"]
    want = exactrelu.verify(files["net"], [(-2, 2), (-1, 1)], progress=False)
    counts = {}
    for name, model in FORMATS.items():
        cert = d / f"{re.sub(r'[^a-z]', '', name)}.json"
        rc, out, err = _run(["verify", *model(d), "--bounds", -2, 2, -1, 1, "-o", cert, "--quiet",
                             "--workers", 1], capsys, monkeypatch, d)
        assert rc == 0, (name, err)
        counts[name] = re.match(r"certified: (\d+) regions, (\d+) pieces", out).groups()
        model_args = model(d)
        rc, out, err = _run(["check", cert, "--model", *model_args], capsys, monkeypatch, d)
        assert rc == 0 and out.startswith("OK"), (name, out, err)
        assert json.loads(cert.read_text())["num_regions"] == want.num_regions
    assert set(counts.values()) == {(str(want.num_regions), str(want.num_pieces))}, counts
    assert want.num_regions > 4


def test_safetensors_weights_are_read_with_safetensors(files, monkeypatch) -> None:
    """The same tensors as the state_dict; and without the package, the extra to install."""
    monkeypatch.chdir(files["dir"])
    a = load_model("files_factory:build", "weights.safetensors")
    b = load_model("files_factory:build", "weights.pt")
    assert all(torch.equal(x, y)
               for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
    monkeypatch.setitem(sys.modules, "safetensors", None)
    monkeypatch.setitem(sys.modules, "safetensors.torch", None)
    with pytest.raises(MissingDependencyError, match=r"exactrelu\[safetensors\]"):
        load_model("files_factory:build", "weights.safetensors")


def test_a_pt2_file_is_the_exported_program(files) -> None:
    loaded = load_model(str(files["dir"] / "model.pt2"))
    x = torch.randn(1, 2)
    torch.testing.assert_close(loaded(x), files["net"](x), rtol=0, atol=0)
    assert exactrelu.capture(loaded, (2,)).digest() == exactrelu.capture(
        torch.export.export(files["net"], (torch.zeros(1, 2),)), (2,)).digest()


# ----------------------------------------------------------------------------- hostile .pt2 files

def _rewrite(src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None],
             compression: int = zipfile.ZIP_STORED) -> Path:
    """``src`` with each entry passed through ``edit(name, data)`` (None drops it)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w", compression) as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info.filename, data)
    return dst


def _json_edit(suffix: str, change: Callable[[Any], None]) -> Callable[[str, bytes], bytes]:
    def edit(name: str, data: bytes) -> bytes:
        if not name.endswith(suffix):
            return data
        obj = json.loads(data)
        change(obj)
        return json.dumps(obj).encode()
    return edit


MARKER = "EXACTRELU_TEST_CODE_RAN"


def _guard_code(program: Any) -> None:
    program["guards_code"] = [f"True\nimport os\nos.environ['{MARKER}'] = '1'"]


def _pickled(config: Any) -> None:
    next(iter(config["config"].values()))["use_pickle"] = True


def _one_stride_short(config: Any) -> None:
    next(iter(config["config"].values()))["tensor_meta"]["strides"].pop()


def _foreign_target(program: Any) -> None:
    program["graph_module"]["graph"]["nodes"][0]["target"] = "torch.os.system"


HOSTILE: dict[str, tuple[Callable[[Path, Path], Path], str]] = {
    "guard code": (lambda s, d: _rewrite(s, d, _json_edit("models/model.json", _guard_code)),
                   "guard code"),
    "a pickled weight": (lambda s, d: _rewrite(s, d, _json_edit("model_weights_config.json",
                                                                _pickled)), "pickled"),
    "a call outside ATen": (lambda s, d: _rewrite(s, d, _json_edit("models/model.json",
                                                                   _foreign_target)),
                            "torch.os.system"),
    "compressed entries": (lambda s, d: _rewrite(s, d, lambda n, b: b, zipfile.ZIP_DEFLATED),
                           "compressed"),
    "a truncated weight": (lambda s, d: _rewrite(s, d, lambda n, b: b[:-4] if "weights/weight_0"
                                                 in n else b), "does not fit"),
    "no program": (lambda s, d: _rewrite(s, d, lambda n, b: None if "models/" in n else b),
                   "programs []"),
    "a stride short": (lambda s, d: _rewrite(s, d, _json_edit("model_weights_config.json",
                                                              _one_stride_short)),
                       "dimensions but 1 strides"),
}


@pytest.mark.parametrize("name", list(HOSTILE))
def test_a_pt2_file_that_could_run_code_is_refused_without_running_it(name, files, tmp_path,
                                                                      monkeypatch) -> None:
    monkeypatch.delenv(MARKER, raising=False)
    make, words = HOSTILE[name]
    path = make(files["dir"] / "model.pt2", tmp_path / "hostile.pt2")
    with pytest.raises(InvalidInputError) as info:
        load_model(str(path))
    assert words in str(info.value) and "torch.export.save" in str(info.value)
    assert MARKER not in __import__("os").environ


def test_a_dynamic_shape_file_is_refused_as_symbolic(files, tmp_path) -> None:
    """torch's loader would parse its symbolic sizes with sympy (Python's eval)."""
    ep = torch.export.export(files["net"], (torch.zeros(2, 2),),
                             dynamic_shapes=({0: torch.export.Dim("batch")},))
    torch.export.save(ep, tmp_path / "dynamic.pt2")
    with pytest.raises(InvalidInputError, match="static shapes"):
        load_model(str(tmp_path / "dynamic.pt2"))


def test_a_hostile_pt2_file_is_one_error_line_at_the_command_line(files, tmp_path, capsys,
                                                                  monkeypatch) -> None:
    path = HOSTILE["guard code"][0](files["dir"] / "model.pt2", tmp_path / "bad.pt2")
    rc, _out, err = _run(["verify", path, "--bounds", -1, 1, -1, 1], capsys, monkeypatch, tmp_path)
    assert rc == 2 and err.startswith("exactrelu: error: model ") and "Traceback" not in err
    rc, _, err = _run(["verify", files["dir"] / "model.pt2", "--weights", "w.pt", "--bounds", -1,
                       1, -1, 1], capsys, monkeypatch, tmp_path)
    assert rc == 2 and "--weights goes with" in err


def test_new_standard_layers_are_rebuilt_from_torchscript(tmp_path) -> None:
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv3d(1, 2, 2), nn.BatchNorm3d(2), nn.PReLU(2),
                        nn.Flatten()).double().eval()
    up = nn.Sequential(nn.ConvTranspose2d(1, 2, 2, stride=2, output_padding=1), nn.PReLU(),
                       nn.Upsample(scale_factor=2), nn.Flatten(), nn.Linear(2 * 10 * 10, 1))
    for i, model in enumerate([net, up.double().eval()]):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.jit.script(model).save(str(tmp_path / f"{i}.pt"))
        loaded = load_model(str(tmp_path / f"{i}.pt"))
        assert [type(m) for m in loaded] == [type(m) for m in model]
        shape = (1, 2, 2, 2) if i == 0 else (1, 2, 2)
        x = torch.randn(3, *shape, dtype=torch.float64)
        torch.testing.assert_close(exactrelu.capture(loaded, shape).forward(x), model(x),
                                   rtol=1e-12, atol=1e-12)
