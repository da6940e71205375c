"""What a user meets when a dependency is missing, and what the package declares about itself.

A missing module is simulated in a fresh interpreter with ``sys.modules[name] = None`` (its import
then fails as if it were not installed). The install itself, into a new virtual environment, is
``scripts/install_test.sh`` (run by ``make test``).
"""

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import tomllib

import exactrelu
from exactrelu import _deps
from exactrelu.errors import ExactReluError, MissingDependencyError

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]

# x -> relu(x_1) + relu(x_2): four regions on [-1, 1]^2 (the quadrants), one per sign pattern
NET = """
import torch
from torch import nn
net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
with torch.no_grad():
    net[0].weight.copy_(torch.eye(2)); net[0].bias.zero_()
    net[2].weight.fill_(1.0); net[2].bias.zero_()
box = [(-1, 1), (-1, 1)]
"""


def _without(missing: list[str], code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a new interpreter (this tree's exactrelu) where ``missing`` won't import."""
    prelude = f"import sys\nfor name in {missing!r}:\n    sys.modules[name] = None\n"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", prelude + code], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _raised(code: str) -> str:
    """Code that runs ``code`` and prints the MissingDependencyError it must raise."""
    return f"""
from exactrelu import ExactReluError, MissingDependencyError
try:
{chr(10).join('    ' + line for line in code.strip().splitlines())}
except MissingDependencyError as err:
    assert isinstance(err, ExactReluError) and isinstance(err, ImportError)
    print("raised:", err)
else:
    raise AssertionError("no MissingDependencyError")
"""


def _messages(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.removeprefix("raised: ") for line in proc.stdout.splitlines()
            if line.startswith("raised: ")]


def test_without_python_flint_float_graphs_work_and_exact_work_says_what_to_install() -> None:
    proc = _without(["flint"], NET + """
import exactrelu
x = torch.tensor([[0.5, -0.25], [-1.0, 2.0]])
g = exactrelu.affine_maps(net, x)
assert torch.allclose((g.weight * x[:, None]).sum(-1) + g.bias, net(x))
""" + _raised("exactrelu.verify(net, box, progress=False)"))
    [message] = _messages(proc)
    assert "pip install python-flint" in message


@pytest.mark.parametrize("missing, names", [
    (["cdd.gmp"], "cdd.gmp"),
    (["cdd", "cdd.gmp"], "pycddlib"),
])
def test_without_cdd_gmp_exact_work_names_the_c_libraries(missing: list[str], names: str) -> None:
    proc = _without(missing, NET + "import exactrelu\n"
                    + _raised("exactrelu.verify(net, None, progress=False)"))
    [message] = _messages(proc)
    assert names in message
    assert "apt-get install libcdd-dev libgmp-dev" in message
    assert "conda install -c conda-forge cddlib gmp" in message
    assert "pip install 'pycddlib>=3'" in message


def test_without_the_compiled_core_the_python_engine_certifies_and_says_so_once() -> None:
    proc = _without(["exactrelu._core"], NET + """
import logging
import exactrelu
logging.basicConfig(level=logging.INFO, format="LOG %(message)s")
for _ in range(2):
    cert = exactrelu.verify(net, box, progress=False)
    assert cert.num_regions == 4 and cert.stats["engine"] == "python", cert.stats["engine"]
try:
    exactrelu.verify(net, box, progress=False, engine="compiled")
except exactrelu.InvalidInputError as err:
    print("compiled:", err)
""")
    logged = [line for line in proc.stderr.splitlines() if line.startswith("LOG ")]
    assert len(logged) == 1 and "the Python engine certifies instead" in logged[0], proc.stderr
    [compiled] = [line for line in proc.stdout.splitlines() if line.startswith("compiled: ")]
    for words in ("exactrelu._core is not built", "apt-get install g++ libgmp-dev",
                  "--force-reinstall"):
        assert words in compiled and words in logged[0]


def test_optional_modules_name_the_extra_that_installs_their_dependency() -> None:
    proc = _without(["hypothesis", "matplotlib"], _raised("import exactrelu.strategies")
                    + _raised("import exactrelu.testing") + _raised("import exactrelu.plot"))
    assert _messages(proc) == [
        "exactrelu.strategies needs hypothesis: pip install 'exactrelu[testing]'",
        "exactrelu.testing needs hypothesis: pip install 'exactrelu[testing]'",
        "exactrelu.plot needs matplotlib: pip install 'exactrelu[plot]'",
    ]
    extras = PYPROJECT["optional-dependencies"]
    assert [d.split(">")[0] for d in extras["testing"]] == ["hypothesis"]
    assert "matplotlib" in [d.split(">")[0] for d in extras["plot"]]
    # every extra a module's guard names exists
    named = {m.group(1) for f in (ROOT / "exactrelu").glob("*.py")
             for m in re.finditer(r'extra_missing\(err, "[\w.]+", "(\w+)"\)', f.read_text())}
    assert {"testing", "plot"} <= named <= set(extras), named


def test_a_missing_modules_names_raise_at_first_use_and_are_no_instances() -> None:
    absent = _deps._AbsentModule("nowhere", "pip install nowhere")
    with pytest.raises(MissingDependencyError, match=r"^pip install nowhere$"):
        absent.fmpz_mat(2, 2)
    with pytest.raises(MissingDependencyError, match=r"^pip install nowhere$"):
        _ = absent.LPObjType.MAX
    assert not isinstance(3, absent.fmpz) and int is not absent.fmpz
    assert absent.fmpz is absent.fmpz
    assert not hasattr(absent, "__path__") and not hasattr(absent.fmpz, "__wrapped__")
    assert issubclass(MissingDependencyError, ExactReluError)


def test_version_is_pyprojects_in_the_package_and_on_the_command_line(monkeypatch) -> None:
    version = PYPROJECT["version"]
    assert exactrelu.__version__ == version
    proc = subprocess.run([sys.executable, "-m", "exactrelu.cli", "--version"], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout) == (0, f"exactrelu {version}\n"), proc.stderr

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    assert exactrelu._version() == version  # a source tree never installed: its pyproject.toml
