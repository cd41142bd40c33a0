"""Shared helpers for the test suite.

EMSIM_CI=1 (set by .ci/run) makes the slow physics cases run with fewer dofs; it never skips one.

Sharing: :func:`solved` solves a case table once per test process (``make test`` runs two
pytest-xdist workers, each with its own cache; under mpirun every rank runs the same tests in
the same order, so the collective solves stay matched) and hands the same result to every test
that asks for the same case (by its digest). Tests read a shared result, never modify it.

Selection (``make test``, ``make test-fast``):

* ``EMSIM_MPI_PASSED`` (space-separated test files): those files' tests that are neither
  ``slow`` nor ``mpi`` already ran, every assertion, in ``make test``'s ``mpirun -n 2`` pass;
  the serial pass leaves them out instead of running them a second time.
* ``--fast``: leaves out the tests that took 3 s or more when last measured
  (``tests/durations.json``: seconds of setup and call, serial, ``EMSIM_CI=1``, on a loaded
  2-core machine), for ``make test-fast``; ``make test`` runs them all.

Order: the files run longest first (their summed ``tests/durations.json`` seconds; a file not
measured last), each file's tests in their own order. ``make test`` hands whole files to the two
workers in this order (``--dist loadfile --no-loadscope-reorder``): longest first, so the last
file a worker takes is a short one and both cores finish together. ``--record-durations`` writes
``tests/durations.json`` afresh from the run (under pytest-xdist too: the controller sees every
test's report).

The mesh cache (:mod:`emsim.meshes.cache`) is off for the whole suite (``EMSIM_MESH_CACHE=off``,
set here before anything meshes, and inherited by the command-line and mpirun tests' processes):
a test that changes a mesher's settings in memory (``monkeypatch``) must get the mesh it asked
for, not one stored by another test, and the suite never writes into the user's cache. The
cache's own tests turn it on in a temporary folder.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import emsim  # noqa: F401  (orders MPI before dolfinx, as every user import does)
from emsim.models import parse_case, read_case_table
from emsim.models.toml import dumps as to_toml
from emsim.studies.run import default_case_path

os.environ["EMSIM_MESH_CACHE"] = "off"  # see the module doc

CI = os.environ.get("EMSIM_CI", "") not in ("", "0")
BIN = Path(sys.executable).parent

#: Tests at or above this measured duration [s] are left out by ``--fast``.
FAST_LIMIT_S = 3.0
DURATIONS = Path(__file__).with_name("durations.json")

#: Tests that read what another test of their module left behind (module state, file order),
#: by name: ``--fast`` leaves them out with the test they depend on.
DEPENDS_ON = {
    "test_the_generator_covered_every_corruption": "test_every_generated_bad_case_is_refused_with_one_line_naming_the_field",
}

#: Solved cases of this test process, by case digest (see :func:`solved`).
_SOLVED: dict[str, object] = {}


def small_cheek_table(*, thermal: bool = False, degree: int = 1, size_factor: float = 2.0) -> dict:
    """The cheek geometry, d.c. at 10 mA with a 100 ohm cm^2 contact, at a small mesh.

    Built on the d.c. example ``cheek-dc.toml`` (the default case's pads and layers); the
    current and contact are the ones the electric tests were written for.
    """
    table = copy.deepcopy(read_case_table(default_case_path().with_name("cheek-dc.toml")))
    table["channel"]["current_mA"] = 10.0
    for e in table["electrode"]:
        e["contact"] = {"resistance_ohm_cm2": 100.0}
    if not thermal:
        table.pop("thermal", None)
    table["mesh"] = {"quality": "coarse", "degree": degree, "size_factor": size_factor}
    return table


def small_two_pad_table(shape: str = "flat", radius_mm: float | None = None) -> dict:
    """Two 8 mm pads 14 mm apart on a 30 x 20 mm patch, 8.5 mm deep: coarse, degree 1."""
    t = small_cheek_table(size_factor=4.0)
    t["patch"] = {"width_mm": 30.0, "length_mm": 20.0, "shape": shape}
    if radius_mm is not None:
        t["patch"]["curvature_radius_mm"] = radius_mm
    for layer, th in zip(t["layer"], (1.5, 2.0, 5.0), strict=True):
        layer["thickness_mm"] = th
    for e, x in zip(t["electrode"], (-7.0, 7.0), strict=True):
        e["diameter_mm"] = 8.0
        e["center_mm"] = [x, 0.0]
    return t


def run_cli(*args: str, cwd: Path, mpi: int = 0, timeout: float = 900) -> subprocess.CompletedProcess:
    """Run the emsim command line (optionally under mpirun -n MPI) and capture its output."""
    cmd = [sys.executable, "-m", "emsim.cli", *args]
    if mpi:
        cmd = [str(BIN / "mpirun"), "-n", str(mpi), *cmd]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture
def write_toml(tmp_path):
    """Write a case table as TOML and return its path."""

    def write(table: dict, name: str = "case.toml") -> Path:
        path = tmp_path / name
        path.write_text(to_toml(table), "utf-8")
        return path

    return write


@pytest.fixture(scope="session")
def solved():
    """Solve a case table (or Case) once per test process: the CaseResult, shared by digest."""
    from emsim.models import Case
    from emsim.studies.run import solve_case

    def solve(table):
        case = table if isinstance(table, Case) else parse_case(table)
        key = case.digest()
        if key not in _SOLVED:
            _SOLVED[key] = solve_case(case)
        return _SOLVED[key]

    return solve


def pytest_addoption(parser):
    parser.addoption(
        "--fast", action="store_true", default=False,
        help=f"leave out the tests measured at {FAST_LIMIT_S:g} s or more (tests/durations.json)",
    )  # fmt: skip
    parser.addoption(
        "--record-durations", action="store_true", default=False,
        help="write tests/durations.json: each test's setup + call seconds in this run",
    )  # fmt: skip


#: Setup + call seconds per test id of this run, and the ids it collected (``--record-durations``).
_DURATIONS_S: dict[str, float] = {}
_COLLECTED: set[str] = set()


def pytest_runtest_logreport(report):
    """Add up each test's setup and call seconds (``--record-durations``)."""
    if report.when in ("setup", "call"):
        _DURATIONS_S[report.nodeid] = _DURATIONS_S.get(report.nodeid, 0.0) + report.duration


def pytest_sessionfinish(session):
    """Update tests/durations.json (``--record-durations``; not on an xdist worker, not under mpirun).

    The tests of this run get their seconds; the other entries stay (a run over some files
    refreshes their entries only), except those of a file that is gone and, in a run without
    pytest-xdist (its controller collects nothing), those of a file this run collected that it no
    longer holds (a renamed or removed test).
    """
    from mpi4py import MPI

    if not session.config.getoption("--record-durations") or hasattr(session.config, "workerinput"):
        return
    if MPI.COMM_WORLD.rank != 0:
        return
    from emsim.io.tables import write_json

    ran_files = {nodeid.split("::")[0] for nodeid in _COLLECTED}
    kept = {
        k: v for k, v in json.loads(DURATIONS.read_text("utf-8")).items()
        if (Path(__file__).parent.parent / k.split("::")[0]).is_file()
        and (k.split("::")[0] not in ran_files or k in _COLLECTED)
    }  # fmt: skip
    kept.update({k: round(v, 2) for k, v in _DURATIONS_S.items()})
    write_json(DURATIONS, dict(sorted(kept.items())))


def pytest_collection_modifyitems(config, items):
    """Deselect what ran in the MPI pass (EMSIM_MPI_PASSED) and, with --fast, the slow tests."""
    _COLLECTED.update(item.nodeid for item in items)
    passed = {Path(p).name for p in os.environ.get("EMSIM_MPI_PASSED", "").split()}
    measured = json.loads(DURATIONS.read_text("utf-8")) if config.getoption("--fast") else {}
    keep, drop = [], []
    for item in items:
        in_mpi_pass = (
            item.path.name in passed
            and item.get_closest_marker("slow") is None
            and item.get_closest_marker("mpi") is None
        )
        too_slow = measured.get(f"tests/{item.path.name}::{item.name}", 0.0) >= FAST_LIMIT_S
        (drop if in_mpi_pass or too_slow else keep).append(item)
    gone = {(item.path.name, item.originalname) for item in drop}
    for item in list(keep):
        if (item.path.name, DEPENDS_ON.get(item.originalname)) in gone:
            keep.remove(item)
            drop.append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = _longest_file_first(keep, json.loads(DURATIONS.read_text("utf-8")))


def _longest_file_first(items: list, measured: dict[str, float]) -> list:
    """The items with their files ordered by summed measured seconds, longest first (stable)."""
    per_file: dict[str, float] = {}
    for item in items:
        name = f"tests/{item.path.name}"
        per_file[name] = per_file.get(name, 0.0) + measured.get(f"{name}::{item.name}", 0.0)
    return sorted(items, key=lambda item: -per_file[f"tests/{item.path.name}"])
