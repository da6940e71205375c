"""Every example runs in its fast mode, and what it prints agrees with what it wrote."""

import importlib.util
import json
import os
import re
import subprocess
import sys
from fractions import Fraction
from pathlib import Path
from types import ModuleType

import pytest
import torch

import exactrelu

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _run(name: str, tmp_path: Path, *args: str) -> str:
    """Run ``examples/<name>.py`` in a fresh interpreter (cwd ``tmp_path``); returns its stdout."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MPLBACKEND": "Agg"}
    proc = subprocess.run([sys.executable, str(EXAMPLES / f"{name}.py"), *args], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
    return proc.stdout


def _fast(name: str, tmp_path: Path) -> str:
    return _run(name, tmp_path, "--fast", "--out", str(tmp_path))


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _png(path: Path) -> None:
    assert path.is_file(), f"{path.name} was not written"
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000


def test_regions_demo_count_matches_its_certificate_and_the_checker(tmp_path: Path) -> None:
    out = _fast("regions_demo", tmp_path)
    printed = int(re.search(r"certified: (\d+) regions", out).group(1))
    cert_path = tmp_path / "regions_demo.cert.json"
    assert json.loads(cert_path.read_text())["num_regions"] == printed
    cert = exactrelu.Certificate.load(cert_path)
    assert cert.num_regions == printed > 1 and cert.dim == 2
    net, _ = _load("regions_demo").trained_net(20)  # the fast mode's net, rebuilt from its seed
    assert exactrelu.check(cert, net).num_regions == printed
    for png in ("regions.png", "regions_classes.png"):
        _png(tmp_path / png)


def test_elbows_1d_kinks_are_bounded_by_width_and_pieces(tmp_path: Path) -> None:
    out = _fast("elbows_1d", tmp_path)
    rows = re.findall(r"^\s*(\d+)\s+.+?\s+[\d.]+\s+(\d+)\s+(\d+)\s+(\d+)$", out, re.MULTILINE)
    assert len(rows) == 3  # output layer, all layers, ridge
    for width, regions, pieces, kinks in (map(int, r) for r in rows):
        assert kinks <= width and regions <= width + 1
        assert kinks == pieces - 1  # 1-D, no affine map repeats in these nets
    for png in ("width10.png", "width10_training.png", "width10_ridge.png"):
        _png(tmp_path / "elbows_1d" / png)


def test_training_dynamics_prints_a_count_per_checkpoint(tmp_path: Path) -> None:
    out = _fast("training_dynamics", tmp_path)
    per_epoch = [int(n) for n in re.findall(r"epoch\s+\d+: (\d+) certified regions", out)]
    counts = json.loads(re.search(r"counts: (\[.*\])", out).group(1))
    assert counts == per_epoch and len(counts) >= 2 and min(counts) >= 1
    _png(tmp_path / "training_counts.png")
    _png(tmp_path / "training_final_regions.png")


def test_slice_demo_count_matches_its_certificate(tmp_path: Path) -> None:
    out = _fast("slice_demo", tmp_path)
    printed = int(re.search(r"(\d+) regions", out).group(1))
    assert "check: OK" in out
    cert = exactrelu.Certificate.load(tmp_path / "slice.cert.json")
    assert cert.num_regions == printed > 1 and cert.dim == 2
    drawn = re.search(r"decision boundary: (\d+) segments of total length ([0-9.]+)", out)
    boundary = exactrelu.decision_boundary(cert)  # the fast window is crossed by a boundary
    assert int(drawn.group(1)) == len(boundary) > 0
    assert abs(float(boundary.measure()) - float(drawn.group(2))) < 1e-6
    _png(tmp_path / "slice_regions.png")


def test_local_complexity_prints_what_it_wrote_and_a_count_rechecks(tmp_path: Path) -> None:
    out = _fast("local_complexity", tmp_path)
    means = [float(m) for m in re.findall(r"local complexity mean ([\d.]+)", out)]
    log = json.loads((tmp_path / "local_complexity.json").read_text())
    assert len(means) == len(log["epochs"]) >= 2
    assert means == [round(m, 2) for m in log["mean"]]
    assert all(c >= 1 for counts in log["counts"] for c in counts)
    assert log["verdict"] in out
    _png(tmp_path / "local_complexity.png")
    # the last count at the first point, recertified from the saved net and the slice
    ex = _load("local_complexity")
    cfg = log["config"]
    net = ex.make_net(cfg["width"], cfg["depth"], cfg["init"])
    net.load_state_dict(torch.load(tmp_path / "local_complexity_net.pt", weights_only=True))
    anchor = ex.digits(1000)[0][0].double()
    r = Fraction(log["radius"])
    square = exactrelu.Slice(anchor, ex.directions(), [(-r, r), (-r, r)])
    assert exactrelu.verify(net, square, progress=False).num_regions == log["counts"][-1][0]


def test_custom_rule_runs_on_the_compiled_engine_as_its_builtin_twin(tmp_path: Path) -> None:
    out = _run("custom_rule", tmp_path)
    assert "(compiled engine)" in out and "the independent checker accepts the certificate" in out
    assert "AbsScaleRule.linear is wrong" in out  # the wrong rule is caught, its method named
    from exactrelu.rules import RULES

    ex = _load("custom_rule")  # registers its rules: undone below, other tests count RULES
    try:
        _custom_rule_twin(ex)
    finally:
        for key in (ex.Scale, ex.ShiftedReLU):
            RULES.pop(key, None)


def _custom_rule_twin(ex: ModuleType) -> None:
    torch.manual_seed(3)
    net = torch.nn.Sequential(torch.nn.Linear(2, 6), ex.ShiftedReLU(), ex.Scale(-0.5),
                              torch.nn.Linear(6, 2)).double()
    box = [(-1, 1), (-1, 1)]
    cert = exactrelu.verify(net, box, progress=False)
    assert cert.stats["engine"] == "compiled"
    # the same function from built-in layers: relu(x - 1/4) is the bias shifted by -1/4, and
    # Scale(-1/2) goes into the next layer's weight (both exact in float64)
    twin = torch.nn.Sequential(torch.nn.Linear(2, 6), torch.nn.ReLU(),
                               torch.nn.Linear(6, 2)).double()
    with torch.no_grad():
        twin[0].weight.copy_(net[0].weight)
        twin[0].bias.copy_(net[0].bias - 0.25)
        twin[2].weight.copy_(net[3].weight * -0.5)
        twin[2].bias.copy_(net[3].bias)
    other = exactrelu.verify(twin, box, progress=False)
    assert (cert.num_regions, cert.num_pieces, cert.num_vertices) == \
        (other.num_regions, other.num_pieces, other.num_vertices)
    assert sorted(r.pattern for r in cert.regions) == sorted(r.pattern for r in other.regions)
    assert cert.num_regions > 4


@pytest.mark.parametrize("name, expect", [
    ("graph_demo", "reconstructed from the graphs"),
])
def test_example_without_flags_runs(tmp_path: Path, name: str, expect: str) -> None:
    assert expect in _run(name, tmp_path)
