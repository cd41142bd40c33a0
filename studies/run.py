"""Run one case end to end: mesh, electric solve, (heating), metrics, fields and pictures.

Everything is written into a temporary folder beside the output folder and moved into place
only when complete, so an output folder is never half-written.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .. import __version__
from ..models.case import Case, parse_case, read_case_table

__all__ = ["DEFAULT_CASE", "RunResult", "default_case_path", "run_case", "solve_case", "write_json_atomic"]

log = logging.getLogger(__name__)

#: Name of the built-in default case.
DEFAULT_CASE = "cheek-two-pads"

Progress = Callable[[str], None]


def default_case_path() -> Path:
    """Path of the built-in default case file."""
    return Path(str(resources.files("emsim.studies").joinpath(f"cases/{DEFAULT_CASE}.toml")))


@dataclass
class RunResult:
    """What a run produced.

    Attributes:
        case: the case.
        metrics: the metrics (as written to ``metrics.json``).
        patch: the tagged mesh.
        problem: the electric problem (unit fields reusable).
        solution: the superposed channel solution.
        extras: cell fields and skin-surface data.
        thermal: the thermal result, when the case asks for heating.
    """

    case: Case
    metrics: dict
    patch: object
    problem: object
    solution: object
    extras: dict
    thermal: object = None


def _nothing(_: str) -> None:
    pass


def solve_case(case: Case, *, comm=None, progress: Progress = _nothing) -> RunResult:
    """Mesh and solve a case and compute its metrics (no files written).

    Args:
        case: the case.
        comm: MPI communicator (default ``MPI.COMM_WORLD``).
        progress: called with a short text at the start of each step.
    """
    from mpi4py import MPI

    from ..meshes.patch import build_patch_mesh
    from ..solvers.electric import ElectricProblem
    from ..solvers.metrics import electric_metrics

    comm = comm or MPI.COMM_WORLD
    timings = {}
    t0 = time.perf_counter()
    progress("meshing")
    patch = build_patch_mesh(case, comm)
    timings["mesh_s"] = time.perf_counter() - t0
    progress(f"electric solve ({patch.report.cells} cells)")
    t1 = time.perf_counter()
    problem = ElectricProblem(case, patch)
    solution = problem.solve()
    timings["electric_s"] = time.perf_counter() - t1
    progress("post-processing")
    metrics, extras = electric_metrics(problem, solution)
    metrics = {
        "case": case.name,
        "emsim_version": __version__,
        **metrics,
        "solver": {
            "method": problem.method,
            "mesh_quality": case.mesh.quality,
            "mesh_size_factor": case.mesh.size_factor,
            "degree": case.mesh.degree,
            "iterations": problem.iterations,
            "mpi_ranks": comm.size,
        },
        "conductivity_S_per_m": {
            "frequency_Hz": problem.frequency_Hz,
            "note": "quasi-static (DC) solve; dispersive tissues evaluated at frequency_Hz; "
            "anisotropic volumes (contact sublayers: normal = z) list their 3x3 tensor",
            "volumes": {
                k: (float(v[0, 0]) if np.allclose(v, v[0, 0] * np.eye(3)) else v.tolist())
                for k, v in problem.sigma.items()
            },
        },
        "mesh": patch.report.as_dict(),
    }
    if case.waveform is not None:
        from ..solvers.frequency import waveform_response

        progress("waveform response (frequency sweep)")
        t3 = time.perf_counter()
        response = waveform_response(case, patch, n_frequencies=case.solver.waveform_frequencies, progress=progress)
        metrics.update(response.metrics)
        extras["waveform"] = response
        timings["waveform_s"] = time.perf_counter() - t3
    thermal = None
    if case.thermal is not None:
        from ..solvers import thermal as thermal_solver

        progress("heating (Pennes bioheat over the session)")
        t2 = time.perf_counter()
        thermal = thermal_solver.session_heating(case, patch, problem, solution, progress=progress)
        metrics.update(thermal.metrics)
        timings["thermal_s"] = time.perf_counter() - t2
    metrics["timings_s"] = timings
    return RunResult(case, metrics, patch, problem, solution, extras, thermal)


def write_json_atomic(path: Path, data: object) -> None:
    """Write JSON to ``path`` through a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n", "utf-8")
    os.replace(tmp, path)


def _jsonable(obj):
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _write_fields(result: RunResult, folder: Path) -> None:
    from dolfinx import fem, io

    mesh = result.patch.mesh
    phi = result.solution.potential
    if result.case.mesh.degree != 1:
        p1 = fem.functionspace(mesh, ("Lagrange", 1))
        out = fem.Function(p1, name="potential_V")
        out.interpolate(phi)
    else:
        out = phi
        out.name = "potential_V"
    with io.XDMFFile(mesh.comm, str(folder / "electric.xdmf"), "w") as f:
        f.write_mesh(mesh)
        mesh.topology.create_connectivity(2, 3)
        result.patch.cell_tags.name = "volume_tags"
        f.write_meshtags(result.patch.cell_tags, mesh.geometry)
        f.write_function(out)
        f.write_function(result.extras["E"])
        f.write_function(result.extras["J"])
    if result.thermal is not None:
        result.thermal.write_fields(folder)


def skin_current_picture(result: RunResult, path: Path) -> None:
    """PNG of the normal current density on the skin surface (top view), pyvista off-screen."""
    if not os.environ.get("DISPLAY"):
        # Headless: render through EGL directly instead of failing over from X with a warning.
        os.environ.setdefault("VTK_DEFAULT_OPENGL_WINDOW", "vtkEGLRenderWindow")
    import pyvista as pv

    pv.OFF_SCREEN = True
    skin = result.extras["skin"]
    tri = skin.triangles_m * 1e3  # mm
    n = len(tri)
    faces = np.hstack([np.full((n, 1), 3), np.arange(3 * n).reshape(n, 3)]).ravel()
    surf = pv.PolyData(tri.reshape(-1, 3), faces)
    surf.cell_data["J_n [A/m^2]"] = skin.jn_A_per_m2
    plotter = pv.Plotter(off_screen=True, window_size=(1200, 850))
    plotter.add_mesh(
        surf, scalars="J_n [A/m^2]", cmap="inferno", show_edges=False,
        scalar_bar_args={"title": "skin normal current density J_n [A/m^2]", "fmt": "%.3g"},
    )  # fmt: skip
    for e in result.case.electrodes:
        cx, cy = (c * 1e3 for c in e.center_m)
        if e.shape == "disk":
            outline = pv.Circle(radius=e.diameter_m * 500, resolution=120).translate((cx, cy, 0.05))
            plotter.add_mesh(outline.extract_feature_edges(), color="cyan", line_width=2)
        else:
            hx, hy = (h * 1e3 for h in e.half_extent_m)
            box = pv.Rectangle([[cx - hx, cy - hy, 0.05], [cx + hx, cy - hy, 0.05], [cx + hx, cy + hy, 0.05]])
            plotter.add_mesh(box.extract_feature_edges(), color="cyan", line_width=2)
        plotter.add_point_labels([[cx, cy, 0.1]], [e.name], font_size=20, text_color="cyan", shape=None)
    m = result.metrics
    plotter.add_text(
        f"{result.case.name}: I = {m['current_requested_A'] * 1e3:.3g} mA, Z = {m['impedance_ohm']:.4g} ohm, "
        f"peak J_n (1 mm disc) = {m['skin_current_density_peak_A_per_m2']:.4g} A/m^2 (x, y in mm)",
        font_size=10,
    )
    plotter.view_xy()
    plotter.show_bounds(xtitle="x [mm]", ytitle="y [mm]", show_zaxis=False, show_zlabels=False, font_size=10)
    plotter.screenshot(str(path))
    plotter.close()


def run_case(
    case: Case | str | Path,
    out_dir: str | Path,
    *,
    comm=None,
    progress: Progress = _nothing,
    source_text: str | None = None,
) -> RunResult:
    """Run a case and write its outputs into ``out_dir`` (replaced atomically when complete).

    Writes ``metrics.json``, ``mesh_report.json``, ``case.toml`` (the input, when a file),
    ``fields/electric.xdmf`` (potential, field, current density, volume tags) and
    ``skin_current_density.png``; with a waveform also ``waveform_response.png`` and
    ``waveform_time_course.csv``; with heating also the thermal outputs.

    Args:
        case: a :class:`Case` or the path of a case file.
        out_dir: the output folder.
        comm: MPI communicator.
        progress: called with a short text at the start of each step.
        source_text: the case file's text, saved as ``case.toml`` (read from the file when
            ``case`` is a path).
    """
    from mpi4py import MPI

    comm = comm or MPI.COMM_WORLD
    if not isinstance(case, Case):
        path = Path(case)
        table = read_case_table(path)
        source_text = path.read_text("utf-8")
        case = parse_case(table)
    out_dir = Path(out_dir)
    result = solve_case(case, comm=comm, progress=progress)
    progress("writing outputs")
    tmp = None
    if comm.rank == 0:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        tmp = out_dir.parent / f".{out_dir.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        (tmp / "fields").mkdir(parents=True)
    tmp = Path(comm.bcast(str(tmp) if tmp else None, root=0))
    try:
        _write_fields(result, tmp / "fields")
        if comm.rank == 0:
            write_json_atomic(tmp / "metrics.json", result.metrics)
            write_json_atomic(tmp / "mesh_report.json", result.patch.report.as_dict())
            if source_text is not None:
                (tmp / "case.toml").write_text(source_text, "utf-8")
            skin_current_picture(result, tmp / "skin_current_density.png")
            if "waveform" in result.extras:
                from ..solvers.frequency import plot_waveform_response, waveform_time_course

                plot_waveform_response(result.extras["waveform"], tmp / "waveform_response.png", title=result.case.name)
                header, rows = waveform_time_course(result.extras["waveform"])
                np.savetxt(
                    tmp / "waveform_time_course.csv", rows, fmt="%.9g", delimiter=",", header=",".join(header), comments=""
                )
            if result.thermal is not None:
                result.thermal.write_pictures(tmp)
        comm.barrier()
        if comm.rank == 0:
            old = None
            if out_dir.exists():
                old = out_dir.parent / f".{out_dir.name}.old-{os.getpid()}"
                os.replace(out_dir, old)
            os.replace(tmp, out_dir)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if comm.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    comm.barrier()
    return result

