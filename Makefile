# emsim: the two commands of the README are `make run` and `make test`.
# Both create .venv/ first when it is missing or older than pyproject.toml.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.emsim-installed
NP ?= 2

.PHONY: setup run test test-fast verify bench lint clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $$(scripts/find-python) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

run: setup
	$(VENV)/bin/emsim run

# The solver tests also run on 2 MPI ranks (one case distributed; the slow physics cases run
# serially only, to keep the suite near 20 minutes on 2 cores); then the whole suite serially.
MPI_TESTS := tests/test_electric.py tests/test_thermal.py tests/test_frequency.py tests/test_activation.py

test: setup
	$(VENV)/bin/mpirun -n $(NP) $(PY) -m pytest -q -p no:cacheprovider -m "not slow" $(MPI_TESTS)
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not mpi"

verify: setup
	$(VENV)/bin/emsim verify

# The benchmark set (docs/performance.md): a table on stdout, benchmarks/results.json.
bench: setup
	$(PY) benchmarks/run.py

# ruff, then mypy on the package: .typecheck/emsim links to the repository root (the root is the
# `emsim` package), so mypy checks it under its own name (settings in pyproject.toml).
lint: setup
	$(VENV)/bin/ruff check .
	@mkdir -p .typecheck && ln -sfn .. .typecheck/emsim
	MYPYPATH=.typecheck $(PY) -m mypy -p emsim

clean:
	rm -rf out .pytest_cache .typecheck
