"""For test suites: assert_regions and its messages, a failed claim's traceback under pytest, the
worker count from EXACTRELU_WORKERS and the pytest plugin that divides the cores under xdist."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from fractions import Fraction as F
from pathlib import Path

import pytest
from torch import nn

import exactrelu
import exactrelu_pytest
from exactrelu import certify
from exactrelu.engines import compiled as compiled_engine
from exactrelu.testing import assert_regions
from exactrelu.verify import WORKERS_ENV

ROOT = Path(__file__).resolve().parent.parent

# Two lines cross inside the box: 7x + y = 1 and x - 3y = -1/2 (ReLU units), summed. By hand: 4
# regions (one per sign pattern), 4 pieces (4 different gradients), and 9 vertices: the box's
# corners, where each line leaves the box, and where the lines cross.
BOX = [(F(-1, 3), 1), (-1, F(2, 7))]
PATTERNS = [[[1, 1]], [[1, 0]], [[0, 1]], [[0, 0]]]
VERTICES = [(F(-1, 3), -1), (1, -1), (1, F(2, 7)), (F(-1, 3), F(2, 7)),  # corners
            (F(2, 7), -1), (F(5, 49), F(2, 7)),  # 7x + y = 1 at y = -1 and y = 2/7
            (F(-1, 3), F(1, 18)), (F(5, 14), F(2, 7)),  # x - 3y = -1/2 at x = -1/3 and y = 2/7
            (F(5, 44), F(9, 44))]  # where they cross

NET = """
import torch
from torch import nn
net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1)).double()
with torch.no_grad():
    net[0].weight.copy_(torch.tensor([[7.0, 1.0], [1.0, -3.0]]))
    net[0].bias.copy_(torch.tensor([-1.0, 0.5]))
    net[2].weight.fill_(1.0)
    net[2].bias.zero_()
"""


@pytest.fixture(scope="module")
def net() -> nn.Module:
    space: dict = {}
    exec(NET, space)
    return space["net"]


def test_assert_regions_passes_on_the_hand_counted_net_and_returns_the_certificate(net):
    cert = assert_regions(net, BOX, count=4, patterns=PATTERNS, pieces=4, vertices=VERTICES,
                          workers=1)
    assert isinstance(cert, exactrelu.Certificate) and cert.num_regions == 4
    assert assert_regions(net, BOX, vertices=9, engine="python").num_vertices == 9


def test_assert_regions_failure_shows_each_difference_plainly(net):
    claimed_vertices = [*VERTICES[:-1], (F(5, 45), F(9, 44))]  # the crossing point miscomputed
    with pytest.raises(AssertionError) as info:
        assert_regions(net, BOX, count=5, patterns=[*PATTERNS[:3], [[1, 1]], [[2, 0]]],
                       pieces=3, vertices=claimed_vertices)
    text = str(info.value)
    assert "regions: claimed 5, certified 4" in text
    assert "pieces: claimed 3, certified 4" in text
    assert "vertices: claimed 9, certified 9" in text
    assert "missing: vertex (0.1136 (= 5/44), 0.2045 (= 9/44))" in text
    assert "spurious: (0.1111 (= 1/9), 0.2045 (= 9/44))" in text
    assert "spurious: pattern 20 (claimed; no full-dimensional region has it)" in text
    # the region left out of the claim, with its witness as decimals beside the exact values
    cert = exactrelu.verify(net, BOX, progress=False)
    (r,) = [r for r in cert.regions if r.pattern == [[0, 0]]]
    shown = [f"{float(w):.4g} (= {w.numerator}/{w.denominator})" for w in r.witness]
    assert f"missing: region {r.index} (certified, not claimed), pattern 00, witness " \
           f"({shown[0]}, {shown[1]})" in text
    assert "Certificate(" not in text and "Region(" not in text and len(text) < 2000


def test_certificate_repr_is_one_short_line(net):
    cert = exactrelu.verify(net, BOX, progress=False)
    assert repr(cert) == ("<Certificate: 4 regions, 4 pieces, 9 vertices, 4 adjacent pairs on "
                          "Box([(-1/3, 1), (-1, 2/7)])>")


def test_assert_regions_refuses_bad_claims(net):
    with pytest.raises(exactrelu.InvalidInputError):
        assert_regions(net, BOX, count="4")
    with pytest.raises(exactrelu.InvalidInputError):
        assert_regions(net, BOX, vertices=["a"])


# ----------------------------------------------------------------------------- under pytest

def _pytest(tmp_path: Path, code: str, env: dict[str, str], *args: str
            ) -> subprocess.CompletedProcess:
    """pytest in a fresh interpreter on ``code`` (this tree's exactrelu and plugin)."""
    (tmp_path / "test_user.py").write_text(textwrap.dedent(code))
    full = {k: v for k, v in os.environ.items() if k not in ("EXACTRELU_WORKERS",
                                                             "PYTEST_XDIST_WORKER_COUNT",
                                                             "PYTEST_ADDOPTS")}
    # installed plugins stay out (the test loads this tree's plugin by -p)
    full.update({"PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
                 "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1", **env})
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q",
                           "-p", "exactrelu_pytest", *args, "test_user.py"], cwd=tmp_path,
                          env=full, capture_output=True, text=True, timeout=300)


def test_under_pytest_a_failed_claim_is_shown_at_the_test_line(tmp_path):
    cores = exactrelu_pytest.available_cores()
    code = NET + f"""
import os
import exactrelu
from fractions import Fraction as F
from exactrelu.testing import assert_regions

BOX = [(F(-1, 3), 1), (-1, F(2, 7))]

def test_regions():
    assert_regions(net, BOX, count=5, patterns=[[1, 1], [1, 0], [0, 1]])

def test_claimed():
    exactrelu.verify(net, BOX, progress=False, claimed=[[1, 1], [1, 0], [0, 1]])

def test_count():
    assert exactrelu.verify(net, BOX, progress=False).num_regions == 5

def test_workers_from_the_plugin():
    assert os.environ["EXACTRELU_WORKERS"] == "{max(1, cores // 3)}"
"""
    proc = _pytest(tmp_path, code, {"PYTEST_XDIST_WORKER_COUNT": "3"})
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1 and "3 failed, 1 passed" in out, out[-3000:]
    assert "regions: claimed 5, certified 4" in out and "(= " in out
    for line in ("assert_regions(net, BOX, count=5", "exactrelu.verify(net, BOX, progress=False, "
                 "claimed="):
        assert "test_user.py" in out and line in out, out[-3000:]
    # the tracebacks end at the test's own lines: no frame of exactrelu's helpers
    assert not re.search(r"exactrelu[/\\](testing|verify)\.py:\d+", out), out[-3000:]
    assert "missing: region" in out and "Certificate(" not in out
    assert "<Certificate: 4 regions" in out  # pytest's "where 4 = <Certificate: ...>.num_regions"


def test_the_plugin_imports_neither_torch_nor_exactrelu(tmp_path):
    code = """
import sys

def test_nothing_heavy_at_startup():
    assert "torch" not in sys.modules and "exactrelu" not in sys.modules
"""
    proc = _pytest(tmp_path, code, {"PYTEST_XDIST_WORKER_COUNT": "2"})
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "exactrelu_pytest" in sys.modules


def test_plugin_divides_the_cores_among_xdist_workers(monkeypatch):
    monkeypatch.delenv("EXACTRELU_WORKERS", raising=False)
    monkeypatch.setattr(exactrelu_pytest, "available_cores", lambda: 8)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "3")
    exactrelu_pytest.pytest_configure(None)
    assert os.environ["EXACTRELU_WORKERS"] == "2"
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "16")
    monkeypatch.delenv("EXACTRELU_WORKERS")
    exactrelu_pytest.pytest_configure(None)
    assert os.environ["EXACTRELU_WORKERS"] == "1"
    monkeypatch.setenv("EXACTRELU_WORKERS", "5")  # the user's own setting is kept
    exactrelu_pytest.pytest_configure(None)
    assert os.environ["EXACTRELU_WORKERS"] == "5"
    monkeypatch.delenv("EXACTRELU_WORKERS")
    monkeypatch.delenv("PYTEST_XDIST_WORKER_COUNT")  # no xdist: nothing set
    exactrelu_pytest.pytest_configure(None)
    assert "EXACTRELU_WORKERS" not in os.environ
    assert exactrelu_pytest.WORKERS_ENV == WORKERS_ENV


# ----------------------------------------------------------------------------- EXACTRELU_WORKERS

def _recorded(monkeypatch, module, name: str, position: int, keyword: str) -> list:
    """Calls of ``module.name`` record the argument ``keyword`` (or the one at ``position``)."""
    seen: list = []
    real = getattr(module, name)

    def spy(*args, **kwargs):
        seen.append(kwargs[keyword] if keyword in kwargs else args[position])
        return real(*args, **kwargs)

    monkeypatch.setattr(module, name, spy)
    return seen


def test_verify_takes_workers_from_the_environment(net, monkeypatch):
    threads = _recorded(monkeypatch, compiled_engine, "certify", 4, "threads")
    workers = _recorded(monkeypatch, certify, "run", 4, "workers")
    monkeypatch.delenv("EXACTRELU_WORKERS", raising=False)
    exactrelu.verify(net, BOX, progress=False)
    monkeypatch.setenv("EXACTRELU_WORKERS", "3")
    exactrelu.verify(net, BOX, progress=False)
    exactrelu.verify(net, BOX, progress=False, workers=2)  # an explicit count wins
    exactrelu.verify(net, BOX, progress=False, engine="python")
    monkeypatch.setenv("EXACTRELU_WORKERS", " 1 ")
    exactrelu.verify(net, BOX, progress=False, engine="python")
    assert threads == [os.cpu_count() or 1, 3, 2]
    assert workers == [3, 1]


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "99999", "1e3"])
def test_a_bad_worker_count_in_the_environment_is_named(net, monkeypatch, value):
    monkeypatch.setenv("EXACTRELU_WORKERS", value)
    with pytest.raises(exactrelu.InvalidInputError, match="EXACTRELU_WORKERS"):
        exactrelu.verify(net, BOX, progress=False)
    monkeypatch.setenv("EXACTRELU_WORKERS", "")  # empty: unset
    assert exactrelu.verify(net, BOX, progress=False).num_regions == 4

