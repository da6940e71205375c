# The two commands: `make demo` (the main job) and `make test` (every test).
# Both install what is missing first (Debian packages, .venv, the package).
PY := .venv/bin/python
STAMP := .venv/.installed
export HYPOTHESIS_PROFILE ?= ci

.PHONY: demo test setup bench verify

$(STAMP): pyproject.toml constraints.txt scripts/setup.sh
	bash scripts/setup.sh

setup: $(STAMP)

demo: $(STAMP)
	$(PY) examples/regions_demo.py

verify: $(STAMP)
	$(PY) -m verify

test: $(STAMP)
	$(PY) -m verify --fast
	$(PY) -m pytest -q -p no:cacheprovider

bench: $(STAMP)
	$(PY) benchmarks/trace_bench.py
	$(PY) benchmarks/certify_bench.py
