#!/usr/bin/env bash
# Install everything exactrelu needs on a Debian machine: the C libraries cddlib and GMP
# (pycddlib's exact module cdd.gmp is compiled against them, and so is exactrelu's own compiled
# exact layer exactrelu/_core.cpp, with g++), a virtual environment at .venv, and the package with
# its test extras. torch is pinned to the CPU build through constraints.txt.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in libcdd-dev libgmp-dev; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
command -v g++ >/dev/null 2>&1 || need+=("g++")
# Debian's own python3 needs these for a virtual environment (here and in scripts/install_test.sh)
# and for compiling pycddlib and the core; other Pythons (pyenv's, say) carry both
python3 -c "import ensurepip" >/dev/null 2>&1 || need+=("python3-venv")
[ -f "$(python3 -c "import sysconfig; print(sysconfig.get_paths()['include'])")/Python.h" ] \
  || need+=("python3-dev")
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing Debian packages: ${need[*]}"
  if [ "$(id -u)" -eq 0 ]; then SUDO=""; elif command -v sudo >/dev/null; then SUDO="sudo"; else
    echo "setup: need root (or sudo) to install ${need[*]}; install them and run again" >&2; exit 1
  fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv"
  python3 -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -c constraints.txt -e '.[test]'
.venv/bin/python -c "import cdd.gmp, torch, flint, exactrelu._core, exactrelu._checkcore"
touch .venv/.installed
