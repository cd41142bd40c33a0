"""Run one case end to end: mesh, electric lead fields, waveform response, heating, outputs.

:func:`solve_case` returns a :class:`~emsim.solvers.result.CaseResult` and writes nothing;
:func:`run_case` also writes the outputs (:func:`emsim.studies.outputs.write_outputs`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from ..io import check_output_folder
from ..models import Case
from ..models.case_file import parse_case_text, read_case_text
from ..solvers.result import CaseResult
from .outputs import write_outputs

__all__ = ["DEFAULT_CASE", "default_case_path", "run_case", "solve_case"]

log = logging.getLogger(__name__)

#: Name of the built-in default case.
DEFAULT_CASE = "cheek-two-pads"

Progress = Callable[[str], None]


def _nothing(_: str) -> None:
    pass


def default_case_path() -> Path:
    """Path of the built-in default case file."""
    return Path(str(resources.files("emsim.studies").joinpath(f"cases/{DEFAULT_CASE}.toml")))


def solve_case(
    case: Case, *, comm: Any = None, progress: Progress = _nothing, max_dofs: float | None = None,
    reuse: dict[str, Any] | None = None,
) -> CaseResult:  # fmt: skip
    """Mesh and solve a case: per-unit-current records of every solver (no files written).

    One assembly and one preconditioner per problem; one unit solve per electrode; every
    channel's lead field and every metric at any current follow by superposition.

    Args:
        case: the case.
        comm: MPI communicator (default ``MPI.COMM_WORLD``).
        progress: called with a short text at the start of each step.
        max_dofs: refuse the case (InputError, before meshing) when its estimated dofs exceed
            this; default :data:`emsim.meshes.estimate.DEFAULT_MAX_DOFS`.
        reuse: a cache (a dict the caller keeps) of the waveform-independent work by
            :func:`emsim.studies.study.response_key`: the mesh, the electric lead fields, the
            frequency response and the heat basis (``"heat_basis"``, closed by the caller). A case whose key is there adds no mesh, no electric solve and
            no 3-D frequency solve (unless its waveform needs a wider band or a d.c. sample);
            the case must have the same channel currents as the one that filled the entry (the
            runner passes unit cases).
    """
    from mpi4py import MPI

    from ..meshes.estimate import DEFAULT_MAX_DOFS, check_resources
    from ..meshes.patch import build_patch_mesh
    from ..solvers.electric.metrics import ElectricLeadField
    from ..solvers.electric.problem import ElectricProblem

    comm = comm or MPI.COMM_WORLD
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    key = None
    if reuse is not None:
        from .study import response_key

        key = response_key(case)
    cached = reuse.get(key) if reuse is not None else None
    if cached is None:
        max_dofs = DEFAULT_MAX_DOFS if max_dofs is None else max_dofs
        if case.mesh.file is None:
            estimate = check_resources(case, max_dofs)  # before the first progress line
            progress(f"meshing (estimate {estimate.text()})")
        else:  # an imported mesh is what it is: no estimate from the nominal patch
            progress(f"reading {Path(case.mesh.file).name}")
        patch = build_patch_mesh(case, comm, max_dofs=max_dofs)
        timings["mesh_s"] = time.perf_counter() - t0
        progress(f"electric solve ({patch.report.cells} cells)")
        t1 = time.perf_counter()
        problem = ElectricProblem(case, patch)
        solutions = problem.channel_unit_solutions()
        timings["electric_s"] = time.perf_counter() - t1
        progress("post-processing")
        t1 = time.perf_counter()
        electric = ElectricLeadField.build(problem, solutions)
        timings["postprocess_s"] = time.perf_counter() - t1
        cached = {"patch": patch, "problem": problem, "solutions": solutions, "electric": electric, "response": None}
        if reuse is not None:
            reuse[key] = cached
    else:
        progress("reusing the mesh, electric lead fields and frequency response of the same geometry")
    patch, problem, solutions, electric = cached["patch"], cached["problem"], cached["solutions"], cached["electric"]
    waveform = None
    if case.waveform is not None:
        from ..solvers.spectral.sweep import FrequencyResponse, waveform_response

        progress("waveform response (frequency sweep)")
        t1 = time.perf_counter()
        response = cached["response"]
        if response is None:
            response = FrequencyResponse(case, patch, max_frequencies=case.solver.waveform_frequencies)
        waveform = waveform_response(case, patch, electric=electric, progress=progress, response=response)
        response.close()  # the samples and the model stay; solver objects are rebuilt if extended
        if reuse is not None:
            cached["response"] = response
        timings["waveform_s"] = time.perf_counter() - t1
    thermal = None
    if case.thermal is not None:
        from ..solvers.thermal.session import session_heating

        progress("heating (Pennes bioheat over the session)")
        t1 = time.perf_counter()
        heat = waveform.heat if waveform is not None else None
        if heat is not None and reuse is not None:
            # One heat basis per geometry group: each waveform and level is a combination of
            # the session runs it holds (emsim.solvers.thermal.basis), no run of its own.
            from ..solvers.thermal.basis import HeatBasis

            if cached.get("heat_basis") is None:
                cached["heat_basis"] = HeatBasis(case, patch, progress=progress)
            thermal = cached["heat_basis"].heating(case, heat, progress=progress)
        else:
            thermal = session_heating(case, patch, problem, problem.solve(), heat=heat, progress=progress)
        timings["thermal_s"] = time.perf_counter() - t1
    solver = {
        "method": problem.method,
        "mesh_quality": case.mesh.quality,
        "mesh_size_factor": case.mesh.size_factor,
        "degree": case.mesh.degree,
        "iterations": problem.iterations,
        "mpi_ranks": comm.size,
        "timings_s": timings,
    }
    return CaseResult(
        case=case, mesh=patch, problem=problem, channel_solutions=solutions, electric=electric,
        waveform=waveform, thermal=thermal, solver=solver,
    )  # fmt: skip


def run_case(
    case: Case | str | Path,
    out_dir: str | Path,
    *,
    comm: Any = None,
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
