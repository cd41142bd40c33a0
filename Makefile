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

# The default case on $(NP) MPI ranks (one case across the ranks; one BLAS thread each, set by
# emsim itself under mpirun): 19-21 s against 25 s on one rank, the same figures to the digits printed.
run: setup
	$(VENV)/bin/mpirun -n $(NP) $(VENV)/bin/emsim run

# The solver tests run on 2 MPI ranks (one case distributed; the slow physics cases run
# serially only); then the rest of the suite on both cores (pytest-xdist, one process per core,
# whole files handed out as workers free up, longest first (tests/conftest.py orders them by
# tests/durations.json; --no-loadscope-reorder keeps that order): a file's tests keep their order
# and module fixtures), with the 15 slowest tests listed. The serial pass leaves
# out what the MPI pass ran (EMSIM_MPI_PASSED: those files' tests that are neither slow nor
# mpi-marked; tests/conftest.py), so no assertion runs twice. One BLAS/OpenMP thread per process:
# the cores are the workers'.
MPI_TESTS := tests/test_electric.py tests/test_thermal.py tests/test_frequency.py tests/test_activation.py tests/test_linalg.py
XDIST ?= 2
TEST_ENV := OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1
PYTEST := $(TEST_ENV) $(PY) -m pytest -p no:cacheprovider

test: setup
	$(TEST_ENV) $(VENV)/bin/mpirun -n $(NP) $(PY) -m pytest -q -p no:cacheprovider -m "not slow" $(MPI_TESTS)
	EMSIM_MPI_PASSED="$(MPI_TESTS)" $(PYTEST) -n $(XDIST) --dist loadfile --no-loadscope-reorder --durations=15

# The quick check while editing: no slow, no mpirun, nothing measured at 3 s or more
# (tests/durations.json), on both cores.
test-fast: setup
	$(PYTEST) -n $(XDIST) --dist loadfile --no-loadscope-reorder --durations=15 -m "not slow and not mpi" --fast

verify: setup
	$(VENV)/bin/emsim verify

# The benchmark set (docs/performance.md): issue 18's rows against their targets, the NGSolve disk
# (its venv built on first use), every case; tables on stdout, benchmarks/results.json. --quick: see run.py.
bench: setup
	$(PY) benchmarks/run.py

# ruff, then mypy on the package: .typecheck/emsim links to the repository root (the root is the
# `emsim` package), so mypy checks it under its own name (settings in pyproject.toml). mypy runs
# from .typecheck: it searches its working directory first, and from the root the package
# emsim.io would shadow the standard library's io (`import io` in emsim/io/tables.py).
lint: setup
	$(VENV)/bin/ruff check .
	@mkdir -p .typecheck && ln -sfn .. .typecheck/emsim
	cd .typecheck && MYPYPATH=. ../$(PY) -m mypy --config-file ../pyproject.toml --cache-dir cache -p emsim

clean:
	rm -rf out .pytest_cache .typecheck
