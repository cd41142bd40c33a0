"""The one composition of a case into a :class:`~emsim.solvers.result.CaseResult`.

mesh -> electric lead fields -> waveform response -> heating, in named steps:

1. :func:`solve_geometry`: the waveform-independent work (the tagged mesh, one unit solve per
   electrode, the d.c. lead field); a :class:`GeometryCache` keeps it, with the frequency
   response the waveform step adds and the heat basis the heating step adds, for every case of
   the same :func:`response_key`.
2. :func:`solve_waveform`: the periodic steady-state response to the case's waveform (from the
   cached frequency response when there is one).
3. :func:`solve_heating`: Pennes heating over the session (with a cache: a combination of the
   geometry's :class:`~emsim.solvers.thermal.basis.HeatBasis` runs).

:func:`solve_case` runs them and records how (:class:`~emsim.solvers.result.SolveInfo`). It
writes nothing: ``emsim.solve``, the command line, studies and device validation all call it
and write what they need themselves.

Results are held per unit current of each channel, so cases that differ only in amplitudes share
a solve (:func:`unit_case`, :func:`geometry_key`), and cases that differ only in amplitudes and
waveform share the geometry work and the frequency response (:func:`response_key`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from mpi4py import MPI

from .meshes.estimate import DEFAULT_MAX_DOFS, check_resources
from .meshes.patch import PatchMesh, build_patch_mesh
from .models.case import Case
from .solvers.electric.metrics import ElectricLeadField
from .solvers.electric.problem import ChannelSolution, ElectricProblem
from .solvers.result import CaseResult, SolveInfo
from .solvers.spectral.sweep import FrequencyResponse, waveform_response
from .solvers.spectral.waveform import WaveformLeadField
from .solvers.thermal.basis import HeatBasis
from .solvers.thermal.session import ThermalResult, session_heating

__all__ = [
    "GeometryCache",
    "GeometrySolution",
    "Progress",
    "geometry_key",
    "response_key",
    "solve_case",
    "solve_geometry",
    "solve_heating",
    "solve_waveform",
    "unit_case",
]

log = logging.getLogger(__name__)

#: progress(text): called with a short text at the start of each step.
Progress = Callable[[str], None]


def _nothing(_: str) -> None:
    pass


# ----------------------------------------------------------------------------- case keys


def unit_case(case: Case) -> Case:
    """The case with its channel currents normalised: the same for amplitude-only changes.

    Without ``[thermal]`` every channel is set to 1 mA (the result is held per unit current of
    each channel). With ``[thermal]`` the direction of the current vector is kept (the heating
    scales with I^2 only along the case's own current ratios), so cases on one ray share it.
    """
    currents = [c.current_A for c in case.channels]
    if case.thermal is None or not any(currents):
        unit = {c.name: 1e-3 for c in case.channels}
    else:
        top = max(abs(i) for i in currents)
        unit = {c.name: 1e-3 * i / top for c, i in zip(case.channels, currents, strict=True)}
    return case.with_currents(unit)


def geometry_key(case: Case) -> str:
    """Digest of :func:`unit_case`: equal for cases that differ only in their amplitudes."""
    return unit_case(case).digest()


def response_key(case: Case) -> str:
    """Digest of :func:`unit_case` without the waveform: equal when only amplitudes and waveform differ.

    Such cases have the same mesh, electric lead fields and frequency response per unit current.
    """
    return dataclasses.replace(unit_case(case), waveform=None).digest()


# ----------------------------------------------------------------------------- the cache


@dataclass
class GeometrySolution:
    """The waveform-independent work of a case, per unit current of each channel.

    Attributes:
        patch: the tagged mesh.
        problem: the electric problem (unit fields per electrode, function space).
        solutions: the field of each channel alone at its unit current, by channel name.
        electric: the d.c. lead field.
        response: the frequency response behind the waveform (None until a waveform case of
            this geometry has been solved; extended in place when a later waveform needs it).
        heat_basis: the session runs every waveform's heating of this geometry combines (None
            until a cached waveform case with ``[thermal]`` has been solved; extended in place;
            closed by :meth:`GeometryCache.close`).
    """

    patch: PatchMesh
    problem: ElectricProblem
    solutions: dict[str, ChannelSolution]
    electric: ElectricLeadField
    response: FrequencyResponse | None = None
    heat_basis: HeatBasis | None = None


@dataclass
class GeometryCache:
    """The :class:`GeometrySolution` of each geometry solved so far, by :func:`response_key`.

    A case whose key is there adds no mesh, no electric solve and no 3-D frequency solve (unless
    its waveform needs a wider band or a d.c. sample); it must have the same channel currents
    as the case that filled the entry (the study runner passes unit cases).
    """

    entries: dict[str, GeometrySolution] = field(default_factory=dict)

    def get(self, case: Case) -> GeometrySolution | None:
        """The entry of the case's geometry, or None."""
        return self.entries.get(response_key(case))

    def put(self, case: Case, geometry: GeometrySolution) -> None:
        """Keep the geometry work of ``case``."""
        self.entries[response_key(case)] = geometry

    def __len__(self) -> int:
        return len(self.entries)

    def close(self) -> None:
        """Free the PETSc objects of every entry's heat basis (the entries stay readable)."""
        for geometry in self.entries.values():
            if geometry.heat_basis is not None:
                geometry.heat_basis.close()


# ----------------------------------------------------------------------------- the steps


def solve_geometry(
    case: Case, comm: MPI.Comm, *, progress: Progress = _nothing, max_dofs: float | None = None,
    timings: dict[str, float] | None = None,
) -> GeometrySolution:  # fmt: skip
    """Mesh the case, solve one unit field per electrode and build the d.c. lead field.

    Args:
        case: the case.
        comm: MPI communicator.
        progress: called with a short text at the start of each step.
        max_dofs: refuse the case (InputError, before meshing) when its estimated dofs exceed
            this; default :data:`emsim.meshes.estimate.DEFAULT_MAX_DOFS`.
        timings: filled with ``mesh_s``, ``electric_s`` and ``postprocess_s`` [s] when given.
    """
    timings = {} if timings is None else timings
    t0 = time.perf_counter()
    max_dofs = DEFAULT_MAX_DOFS if max_dofs is None else max_dofs
    if case.mesh.file is None:
        estimate = check_resources(case, max_dofs)  # before the first progress line
        progress(f"meshing (estimate {estimate.text()})")
    else:  # an imported mesh is what it is: no estimate from the nominal patch
        progress(f"reading {Path(case.mesh.file).name}")
    patch = build_patch_mesh(case, comm, max_dofs=max_dofs)
    timings["mesh_s"] = time.perf_counter() - t0
    cached = ", the mesh read from the mesh cache" if patch.from_cache else ""
    progress(f"electric solve ({patch.report.cells} cells{cached})")
    t1 = time.perf_counter()
    problem = ElectricProblem(case, patch)
    solutions = problem.channel_unit_solutions()
    timings["electric_s"] = time.perf_counter() - t1
    progress("post-processing")
    t1 = time.perf_counter()
    electric = ElectricLeadField.build(problem, solutions)
    timings["postprocess_s"] = time.perf_counter() - t1
    return GeometrySolution(patch, problem, solutions, electric)


def solve_waveform(case: Case, geometry: GeometrySolution, *, progress: Progress = _nothing) -> WaveformLeadField:
    """The case's waveform response per unit current, from the geometry's frequency response.

    The response is built on first use and kept in ``geometry`` (its solver objects are freed;
    the samples and the model stay, and a later waveform extends them only when it needs to).
    """
    response = geometry.response
    if response is None:
        response = FrequencyResponse(case, geometry.patch, max_frequencies=case.solver.waveform_frequencies)
    waveform = waveform_response(
        case, geometry.patch, electric=geometry.electric, progress=progress, response=response
    )
    response.close()  # the samples and the model stay; solver objects are rebuilt if extended
    geometry.response = response
    return waveform


def solve_heating(
    case: Case, geometry: GeometrySolution, waveform: WaveformLeadField | None, *, progress: Progress = _nothing,
    basis: bool = False,
) -> ThermalResult:  # fmt: skip
    """Pennes heating over the session at the case's currents (the waveform's heat when it has one).

    With ``basis`` (a cached geometry) and a waveform heat, the heating is a combination of the
    session runs of the geometry's :class:`~emsim.solvers.thermal.basis.HeatBasis` (built on
    first use, kept in ``geometry``): each waveform and level of one geometry group adds no run
    of its own when its heat is in their span.
    """
    heat = waveform.heat if waveform is not None else None
    if heat is not None and basis:
        if geometry.heat_basis is None:
            geometry.heat_basis = HeatBasis(case, geometry.patch, progress=progress)
        return geometry.heat_basis.heating(case, heat, progress=progress)
    problem = geometry.problem
    return session_heating(case, geometry.patch, problem, problem.solve(), heat=heat, progress=progress)


def solve_case(
    case: Case, *, comm: MPI.Comm | None = None, progress: Progress = _nothing, max_dofs: float | None = None,
    cache: GeometryCache | None = None,
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
        cache: the waveform-independent work of geometries solved before (:class:`GeometryCache`,
            kept by the caller, closed by it): the mesh, the electric lead fields, the frequency
            response and the heat basis. A case of a cached geometry reuses them, a new one is
            added.
    """
    comm = comm or MPI.COMM_WORLD
    timings: dict[str, float] = {}
    geometry = cache.get(case) if cache is not None else None
    if geometry is None:
        geometry = solve_geometry(case, comm, progress=progress, max_dofs=max_dofs, timings=timings)
        if cache is not None:
            cache.put(case, geometry)
    else:
        progress("reusing the mesh, electric lead fields and frequency response of the same geometry")
    waveform = None
    if case.waveform is not None:
        progress("waveform response (frequency sweep)")
        t1 = time.perf_counter()
        waveform = solve_waveform(case, geometry, progress=progress)
        timings["waveform_s"] = time.perf_counter() - t1
    thermal = None
    if case.thermal is not None:
        progress("heating (Pennes bioheat over the session)")
        t1 = time.perf_counter()
        thermal = solve_heating(case, geometry, waveform, progress=progress, basis=cache is not None)
        timings["thermal_s"] = time.perf_counter() - t1
    info = SolveInfo(
        method=geometry.problem.method,
        mesh_quality=case.mesh.quality,
        mesh_size_factor=case.mesh.size_factor,
        degree=case.mesh.degree,
        iterations=tuple(geometry.problem.iterations),
        mpi_ranks=comm.size,
        timings_s=dict(timings),
    )
    return CaseResult(
        case=case, mesh=geometry.patch, problem=geometry.problem, channel_solutions=geometry.solutions,
        electric=geometry.electric, waveform=waveform, thermal=thermal, solver=info,
    )  # fmt: skip
