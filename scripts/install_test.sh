#!/usr/bin/env bash
# exactrelu as a user gets it: the source distribution and the wheel built from it, installed into
# a new virtual environment (never the project's .venv), where the README's quickstart and the
# command line run. `make test` runs it after pytest; it needs the Debian packages scripts/setup.sh
# installs (cddlib and GMP for pycddlib, g++ for the compiled core) and PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
start=$SECONDS
python=${PYTHON:-python3}
# in memory when there is room (and TMPDIR says nothing): the new environment is 1.2 GB in 17,000
# files, and deleting them from a busy disk took as long as the test itself
base=${TMPDIR:-/tmp}
shm_free=$(df -Pk /dev/shm 2>/dev/null | awk 'NR == 2 {print $4}') || shm_free=0
if [ -z "${TMPDIR:-}" ] && [ -w /dev/shm ] && [ "${shm_free:-0}" -gt 4000000 ] \
   && ! grep -qs "^[^ ]* /dev/shm [^ ]* [^ ]*noexec" /proc/mounts; then
  base=/dev/shm
fi
tmp=$(mktemp -d "$base/exactrelu-install.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
say() { echo "install test [$((SECONDS - start)) s]: $*"; }

# the files git knows (committed or not; ignored ones such as a built core or .venv left out), so
# a file the package needs but git does not track fails here as it would for a user
mkdir "$tmp/src" "$tmp/run"
git ls-files -z --cached --others --exclude-standard \
  | tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null | tar -xf - -C "$tmp/src"

say "new virtual environment ($("$python" --version))"
"$python" -m venv "$tmp/venv"
bin=$tmp/venv/bin
"$bin/python" -m pip install -q build

say "building the sdist and the wheel from it"
"$bin/python" -m build -q --outdir "$tmp/dist" "$tmp/src" >"$tmp/build.log" 2>&1 \
  || { cat "$tmp/build.log"; exit 1; }
sdist=$(ls "$tmp"/dist/exactrelu-*.tar.gz)
wheel=$(ls "$tmp"/dist/exactrelu-*.whl)
"$bin/python" - "$tmp/src/pyproject.toml" "$sdist" "$wheel" <<'EOF'
import re
import sys
import tarfile
import tomllib
import zipfile

pyproject, sdist, wheel = sys.argv[1:]
with open(pyproject, "rb") as f:
    project = tomllib.load(f)["project"]
names = [n.split("/", 1)[1] for n in tarfile.open(sdist).getnames() if "/" in n]
for need in ("LICENSE", "README.md", "pyproject.toml", "setup.py", "exactrelu/_core.cpp",
             "exactrelu/_checkcore.cpp", "exactrelu/py.typed"):
    assert need in names, f"the sdist has no {need}"
z = zipfile.ZipFile(wheel)
files = z.namelist()
size = {}
for ext in ("_core", "_checkcore"):  # the certifier's compiled layer, the checker's compiled pass
    built = [n for n in files if re.fullmatch(rf"exactrelu/{ext}\..*\.so", n)]
    assert len(built) == 1, f"the wheel has no compiled {ext}: {files}"
    blob = z.read(built[0])
    assert b".debug_info" not in blob, f"the compiled {ext} carries debug information"
    size[ext] = len(blob)
    assert f"exactrelu/{ext}.pyi" in files, f"the wheel has no type stub for {ext}"
assert not any(n.startswith(("verify/", "tests/", "benchmarks/", "examples/")) for n in files)
assert not any(n.endswith(".cpp") for n in files), "the wheel carries C++ sources"
assert "exactrelu/py.typed" in files
assert "exactrelu_pytest.py" in files, "the wheel has no pytest plugin"
eps = z.read(next(n for n in files if n.endswith(".dist-info/entry_points.txt"))).decode()
assert re.search(r"^\[pytest11\]\nexactrelu_pytest = exactrelu_pytest$", eps, re.M), eps
meta = z.read(next(n for n in files if n.endswith(".dist-info/METADATA"))).decode()
assert f"Version: {project['version']}\n" in meta
assert "License-Expression: MIT\n" in meta
assert any(n.endswith(".dist-info/licenses/LICENSE") for n in files)
extras = set(re.findall(r"^Provides-Extra: (\S+)$", meta, re.M))
assert extras == set(project["optional-dependencies"]), extras
print(f"install test: sdist {len(names)} files; wheel {len(files)} files, "
      f"core {size['_core'] / 1e6:.2f} MB, checker {size['_checkcore'] / 1e6:.2f} MB, without "
      "debug information")
EOF

say "pip install of the wheel (torch pinned to the CPU build by constraints.txt)"
"$bin/python" -m pip install -q -c constraints.txt "$wheel"

cd "$tmp/run"  # away from the sources: the installed package is the one imported
say "the README's quickstart"
"$bin/python" - "$root/README.md" >quickstart.log 2>&1 <<'EOF' || { cat quickstart.log; exit 1; }
import re
import sys

readme = open(sys.argv[1]).read()
quickstart = readme.split("## Quickstart", 1)[1]
code = re.search(r"```python\n(.*?)```", quickstart, re.S).group(1)
exec(compile(code, "README quickstart", "exec"))
loaded = exactrelu.Certificate.load("net.cert.json")
assert loaded.num_regions == cert.num_regions == exactrelu.check(loaded, net).num_regions
assert cert.stats["engine"] == "compiled", cert.stats["engine"]
import exactrelu._checkcore  # noqa: E402,F401  (the checker's compiled pass is installed too)
torch.jit.script(net).save("net.pt")
try:
    import exactrelu.strategies  # noqa: F401
except exactrelu.MissingDependencyError as err:
    assert "pip install 'exactrelu[testing]'" in str(err), err
else:
    raise AssertionError("exactrelu.strategies imported without Hypothesis")
print(f"install test: quickstart certified and checked {cert.num_regions} regions", file=sys.stderr)
EOF
tail -n 1 quickstart.log

say "the command line"
version=$("$bin/exactrelu" --version)
[ "$version" = "exactrelu $(sed -n 's/^version = "\(.*\)"/\1/p' "$tmp/src/pyproject.toml")" ] \
  || { echo "exactrelu --version printed '$version'" >&2; exit 1; }
"$bin/exactrelu" verify net.pt --bounds -1 1 -1 1 -o cli.cert.json --quiet
"$bin/exactrelu" check cli.cert.json --model net.pt
status=0
"$bin/exactrelu" plot cli.cert.json -o regions.png 2>plot.err || status=$?
[ "$status" = 2 ] && [ "$(wc -l <plot.err)" = 1 ] && grep -q "exactrelu\[plot\]" plot.err \
  || { echo "exactrelu plot without matplotlib: status $status:" >&2; cat plot.err >&2; exit 1; }

say "the testing extra"
"$bin/python" -m pip install -q -c "$root/constraints.txt" "$wheel[testing]"
"$bin/python" -c "import exactrelu.strategies, exactrelu.testing"
"$bin/python" - <<'EOF'
import importlib.metadata
import sys

(plugin,) = [e for e in importlib.metadata.entry_points(group="pytest11")
             if e.name == "exactrelu_pytest"]
plugin.load()
assert "torch" not in sys.modules and "exactrelu" not in sys.modules, "the plugin imports torch"
EOF

say "ok ($version, $((SECONDS - start)) s)"
