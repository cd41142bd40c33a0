"""Shared helpers for the test suite.

EMSIM_CI=1 (set by .ci/run) makes the slow physics cases run with fewer dofs; it never skips one.
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import pytest

import emsim  # noqa: F401  (orders MPI before dolfinx, as every user import does)
from emsim.models import read_case_table
from emsim.studies.run import default_case_path

CI = os.environ.get("EMSIM_CI", "") not in ("", "0")
BIN = Path(sys.executable).parent


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


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{ " + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + " }"
    return repr(v)


def to_toml(table: dict) -> str:
    """A minimal TOML writer for case tables (tables, arrays of tables, inline values)."""
    lines: list[str] = []
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict) and not _is_aot(v)}
    for k, v in scalars.items():
        lines.append(f"{k} = {_value(v)}")
    for k, v in table.items():
        if isinstance(v, dict):
            if all(isinstance(x, dict) for x in v.values()) and v:
                for sub, subt in v.items():
                    lines.append(f"\n[{k}.{sub}]")
                    lines += [f"{a} = {_value(b)}" for a, b in subt.items()]
            else:
                lines.append(f"\n[{k}]")
                lines += [f"{a} = {_value(b)}" for a, b in v.items()]
        elif _is_aot(v):
            for row in v:
                lines.append(f"\n[[{k}]]")
                lines += [f"{a} = {_value(b)}" for a, b in row.items()]
    return "\n".join(lines) + "\n"


def _is_aot(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)
