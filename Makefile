# hami — the README's two commands: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
PACKAGES := -e . $(foreach d,$(wildcard vendors/hami-*),-e $(d)) -e examples/hami-example-accelerator

.PHONY: demo test lint typecheck imports pytest bench soak protos clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml $(wildcard vendors/*/pyproject.toml) examples/hami-example-accelerator/pyproject.toml
	$(BIN)/python -m pip install --quiet $(PACKAGES)
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/hami simulate examples/cluster.yaml examples/workload.yaml

test: $(VENV)/.installed-test lint typecheck imports pytest

lint:
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Test folders are checked one by one: they share module names (test_contract.py, ...).
TEST_DIRS := $(wildcard tests/*/) $(wildcard vendors/*/tests/) $(wildcard examples/*/tests/)

typecheck:
	$(BIN)/mypy hami_core $(foreach d,$(wildcard vendors/hami-*),$(d)/hami_*) examples/hami-example-accelerator/hami_example
	$(BIN)/mypy benchmarks tests/test_repo_layout.py deploy/render.py
	for d in $(TEST_DIRS); do $(BIN)/mypy $$d || exit 1; done

imports:
	$(BIN)/lint-imports

pytest:
	$(BIN)/pytest -p no:cacheprovider

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/codec.py
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/allocate.py
	$(BIN)/python benchmarks/extender.py
	$(BIN)/python benchmarks/simulate.py --nodes 100 --pods 1000

# The long reliability suites (docs/reliability.md): 10,000 interleavings, >100,000 fuzz inputs.
soak: $(VENV)/.installed-test
	HAMI_SOAK=1 $(BIN)/pytest tests/reliability -p no:cacheprovider -s --timeout=0

protos: $(VENV)/.installed-test
	$(BIN)/python scripts/gen-protos

clean:
	rm -rf $(VENV) build dist .mypy_cache .ruff_cache
