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

# the compiled extensions (the exact layer _core and the checker's _checkcore), rebuilt in place
# when a source is newer than its built module (setup.sh's editable install builds them first: a
# fresh install does not compile them twice)
$(CORE): $(STAMP) exactrelu/_core.cpp exactrelu/_checkcore.cpp
	@for m in _core _checkcore; do \
	  fresh=no; for so in exactrelu/$$m*.so; do [ "$$so" -nt exactrelu/$$m.cpp ] && fresh=yes; done; \
	  [ $$fresh = yes ] || { echo "$(PY) setup.py -q build_ext --inplace"; \
	    $(PY) setup.py -q build_ext --inplace; exit 0; }; \
	done
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
