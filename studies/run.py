"""Run one case and write its outputs; the built-in default case.

The solve itself is :func:`emsim.pipeline.solve_case` (re-exported here for callers of its old
place); :func:`run_case` adds the outputs (:func:`emsim.studies.outputs.write_outputs`).
"""

from __future__ import annotations

import logging
from importlib import resources
from pathlib import Path

from mpi4py import MPI

from ..io import check_output_folder
from ..models import Case
from ..models.case_file import parse_case_text, read_case_text
from ..pipeline import Progress, solve_case
from ..solvers.result import CaseResult
from .outputs import write_outputs

__all__ = ["DEFAULT_CASE", "default_case_path", "run_case", "solve_case"]

log = logging.getLogger(__name__)

#: Name of the built-in default case.
DEFAULT_CASE = "cheek-two-pads"


def _nothing(_: str) -> None:
    pass


def default_case_path() -> Path:
    """Path of the built-in default case file."""
    return Path(str(resources.files("emsim.studies").joinpath(f"cases/{DEFAULT_CASE}.toml")))


def run_case(
    case: Case | str | Path,
    out_dir: str | Path,
    *,
    comm: MPI.Comm | None = None,
    progress: Progress = _nothing,
    source_text: str | None = None,
    max_dofs: float | None = None,
    overwrite: bool = False,
) -> CaseResult:
    """Solve a case and write its outputs into ``out_dir`` (switched into place when complete).

    Args:
        case: a :class:`~emsim.models.Case` or the path of a case file (read once).
        out_dir: the output folder.
        comm: MPI communicator.
        progress: called with a short text at the start of each step.
        source_text: the case file's text, kept as ``case.toml`` (default: the file's text, or
            the canonical form of a case built in Python).
        max_dofs: refuse the case (InputError, nothing written) when its estimated dofs exceed
            this; default :data:`emsim.meshes.estimate.DEFAULT_MAX_DOFS`.
        overwrite: replace an earlier emsim output in ``out_dir`` (a folder emsim did not
            write is never replaced; :mod:`emsim.io.folders`).
    """
    if not isinstance(case, Case):
        source_text = read_case_text(case)
        case = parse_case_text(source_text, case)
    check_output_folder(out_dir, kind="case", field="out_dir", overwrite=overwrite)  # before any solve
    result = solve_case(case, comm=comm, progress=progress, max_dofs=max_dofs)
    progress("writing outputs")
    write_outputs(result, out_dir, source_text=source_text, comm=comm, overwrite=overwrite)
    return result
