# The two commands: `make demo` (the main job) and `make test` (the lint and type gate, then every
# test).
# Both install what is missing first (Debian packages, .venv, the package).
PY := .venv/bin/python
STAMP := .venv/.installed
export HYPOTHESIS_PROFILE ?= ci

.PHONY: demo test lint setup bench verify

CORE := .venv/.core

$(STAMP): pyproject.toml constraints.txt setup.py scripts/setup.sh
	bash scripts/setup.sh

# the compiled exact layer, rebuilt in place when its source is newer than the built module
# (setup.sh's editable install builds it first: a fresh install does not compile it twice)
$(CORE): $(STAMP) exactrelu/_core.cpp
	@for so in exactrelu/_core*.so; do [ "$$so" -nt exactrelu/_core.cpp ] && exit 0; done; \
	  echo "$(PY) setup.py -q build_ext --inplace"; $(PY) setup.py -q build_ext --inplace
	touch $(CORE)

setup: $(CORE)

demo: $(CORE)
	$(PY) examples/regions_demo.py

verify: $(CORE)
	$(PY) -m verify

# ruff (style and likely bugs) and mypy (types), configured in pyproject.toml
lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m mypy

# the last step installs the package as a user would, into a new virtual environment of its own
test: $(CORE) lint
	$(PY) -m verify --fast
	$(PY) -m pytest -q -p no:cacheprovider
	bash scripts/install_test.sh

bench: $(CORE)
	$(PY) benchmarks/trace_bench.py
	$(PY) benchmarks/certify_bench.py
