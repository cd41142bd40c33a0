r"""Joule heating and transient Pennes bioheat over a treatment session, with thermal dose.

Physics (Pennes 1948, J Appl Physiol 1:93; numbers in shared/PHYSICS.md). On every tagged
volume (tissue layers, gel pads and their contact sublayers) the temperature T [C] satisfies

    rho c dT/dt = div(k grad T) + rho_b c_b w_b (T_a - T) + Q_met + Q_J

with rho [kg/m^3], c [J/(kg K)], k [W/(m K)] of the volume's material, the blood term
``rho_b c_b w_b (T_a - T)`` [W/m^3] with the blood's rho_b c_b (library entry ``blood``, IT'IS
v4.0), the volumetric perfusion ``w_b [1/s] = perfusion [mL/(min kg)] * rho * 1e-6 / 60``
(:attr:`emsim.models.ThermalProperties.perfusion_per_s`: mL/(min kg) x 1e-6 m^3/mL x rho
kg/m^3 / 60 s/min is m^3 of blood per m^3 of tissue per second) and the arterial temperature
T_a (the core temperature),
the metabolic heat ``Q_met = rho * q_met [W/kg]`` and the Joule heat Q_J. Gel pads have no
perfusion and no metabolism.

Joule heat. Q_J is the time average of ``J . E``: for a quasi-static field it is
``grad(phi) . S grad(phi)`` of the unit-current field times the mean square current, so
``Q_J = (grad phi . S grad phi) / I^2 * I_rms^2`` with I the channel's (peak) current and
``I_rms = waveform.rms(I)`` over the whole cycle (pulses, bursts, on/off and ramps), or I for
d.c. A bare electrode with a contact impedance r_c [ohm m^2] also dissipates
``(V_e - phi)^2 / r_c`` [W/m^2] in its stratum corneum, applied as a surface source on its face.
Temperature rises scale with I_rms^2, i.e. with I^2 at a fixed waveform: one solve per case
serves every amplitude (:meth:`ThermalResult.metrics_at`).

Boundaries. The skin and the pads lose heat to the air, ``-k dT/dn = h (T - T_air)``
(convection plus radiation, h about 10 W/(m^2 K)), on ``skin_exposed``, every ``pad_side:E``
and every ``electrode:E`` face. For a gel pad the electrode face is the pad's top: we assume the
electrode and its backing exchange heat like skin (no extra thermal resistance). A bare electrode
lies on the skin at z = 0; its face is treated as convective skin as well (a thin metal or carbon
film with the same h). The deep face (``bottom``) is held at the core temperature, the lateral
faces (``sides``) are insulated (symmetry far from the electrodes).

Time scheme. BDF2 with a fixed step, started by a Richardson-extrapolated backward-Euler step
(``2 BE(dt/2)^2 - BE(dt)``, second order, so that even the first minutes are second-order
accurate). Both are second order and L-stable: the stiff modes of the small elements at the pad
edges, excited when the current is switched on at t = 0, are damped (amplification -> 0)
instead of ringing as under Crank-Nicolson (amplification -> -1), so the tracked peak
temperature and the thermal dose see no spurious oscillations. Each step solves for the
increment, ``(a M / dt + K) dT = F - K T^n [+ (M / (2 dt)) (T^n - T^(n-1))]`` (a = 2 and 1 for
the start, 3/2 for BDF2), with the increment zero on the Dirichlet face, so three matrices are
assembled and factorised (MUMPS) or preconditioned (CG + GAMG above ``emsim.solvers.linear.MUMPS_MAX_DOFS``) once
and reused at every step, and the basal steady state is an exact fixed point.

Thermal dose (Sapareto & Dewey 1984, Int J Radiat Oncol Biol Phys 10:787):
``CEM43 = sum dt R^(43 - T)``, R = 0.5 at or above 43 C and 0.25 below, in minutes, integrated
per node with the trapezoidal rule over the time steps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError, SolverError
from ..meshes.patch import PatchMesh
from ..models.case import Case, ThermalSettings
from .electric import ChannelSolution, ElectricProblem
from .linear import create_ksp, resolve_method, solve_checked

__all__ = [
    "PennesMaterial",
    "PennesProblem",
    "PennesRun",
    "ThermalResult",
    "blood_heat_capacity_J_per_m3K",
    "case_pennes_problem",
    "cem43_rate",
    "joule_heat_factor",
    "session_heating",
]

log = logging.getLogger(__name__)


#: Scales (I / I_ref)^2 at which the probe points for rescaled thermal doses are chosen.
_PROBE_SCALES = np.geomspace(1e-2, 1e2, 17)
#: Probe points per scale and per rank (see :func:`session_heating`).
_PROBES_PER_SCALE = 16

Progress = Callable[[str], None]


def _nothing(_: str) -> None:
    pass


def cem43_rate(temperature_C: np.ndarray | float) -> np.ndarray:
    """Thermal-dose rate R^(43 - T): equivalent minutes at 43 C per minute at T.

    R = 0.5 at or above 43 C and 0.25 below (Sapareto & Dewey 1984, Int J Radiat Oncol Biol
    Phys 10:787).

    Args:
        temperature_C: temperature(s) [C].

    Returns:
        The dose rate [min/min], same shape as the input.

    """
    T = np.asarray(temperature_C, dtype=float)
    return np.where(T >= 43.0, 0.5, 0.25) ** (43.0 - T)


def blood_heat_capacity_J_per_m3K() -> float:
    """Volumetric heat capacity of blood rho_b c_b [J/(m^3 K)], from the material library."""
    from ..models.tissues import library

    blood = library()["blood"].thermal
    return blood.density_kg_per_m3 * blood.heat_capacity_J_per_kgK


_library_blood_heat_capacity = blood_heat_capacity_J_per_m3K  # the name is shadowed below


@dataclass(frozen=True, slots=True)
class PennesMaterial:
    """Thermal constants of one volume for the Pennes equation, SI.

    Any object with these five attribute names works where a material is expected, e.g.
    :class:`emsim.models.ThermalProperties`, whose ``perfusion_per_s`` converts the IT'IS
    perfusion [mL/(min kg)] to w_b [1/s] = perfusion * rho * 1e-6 / 60 and whose
    ``metabolic_heat_W_per_m3`` is rho * q_met [W/kg].

    Attributes:
        density_kg_per_m3: rho [kg/m^3], > 0.
        heat_capacity_J_per_kgK: c [J/(kg K)], > 0.
        thermal_conductivity_W_per_mK: k [W/(m K)], > 0.
        perfusion_per_s: volumetric blood perfusion w_b [1/s], >= 0.
        metabolic_heat_W_per_m3: Q_met [W/m^3], >= 0.

    """

    density_kg_per_m3: float
    heat_capacity_J_per_kgK: float
    thermal_conductivity_W_per_mK: float
    perfusion_per_s: float = 0.0
    metabolic_heat_W_per_m3: float = 0.0

    def __post_init__(self) -> None:
        """Check every value is physical."""
        for name in (
            "density_kg_per_m3",
            "heat_capacity_J_per_kgK",
            "thermal_conductivity_W_per_mK",
        ):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise InputError(name, value, "must be a finite number > 0")
        for name in ("perfusion_per_s", "metabolic_heat_W_per_m3"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0.0):
                raise InputError(name, value, "must be a finite number >= 0")

    @classmethod
    def of(cls, material: Any) -> PennesMaterial:
        """Convert a ThermalProperties-like object (same attribute names) to a PennesMaterial."""
        if isinstance(material, cls):
            return material
        return cls(
            density_kg_per_m3=float(material.density_kg_per_m3),
            heat_capacity_J_per_kgK=float(material.heat_capacity_J_per_kgK),
            thermal_conductivity_W_per_mK=float(material.thermal_conductivity_W_per_mK),
            perfusion_per_s=float(material.perfusion_per_s),
            metabolic_heat_W_per_m3=float(material.metabolic_heat_W_per_m3),
        )


@dataclass
class PennesRun:
    """The record of one time-stepped run of a :class:`PennesProblem`.

    Arrays indexed by time hold ``steps + 1`` values, from t = 0. Maxima are global (identical
    on every rank); per-node arrays and Functions are distributed like the mesh.

    Attributes:
        times_s: time of each record [s].
        time_step_s: the step used [s] (the requested one, shortened so that a whole number of
            steps fills the session).
        skin_max_C: maximum temperature over the skin (monitored) surface [C] (nan without one).
        rise_max_K: maximum of T - T0 over the monitored volumes [K].
        cem43_max_min: maximum accumulated CEM43 over the monitored volumes [min].
        final: the temperature at the end [C] (a Function).
        rise_peak: per node, the largest T - T0 over the run [K] (a Function).
        cem43: per node, the accumulated CEM43 [min] (a Function).
        probe_history_C: (times, probes) temperatures [C] at the probe dofs given to
            :meth:`PennesProblem.run` (owned dofs of this rank).

    """

    times_s: np.ndarray
    time_step_s: float
    skin_max_C: np.ndarray
    rise_max_K: np.ndarray
    cem43_max_min: np.ndarray
    final: Any
    rise_peak: Any
    cem43: Any
    probe_history_C: np.ndarray


class PennesProblem:
    """Transient Pennes bioheat on a tagged mesh: assemble once, factorise once, step many times.

    Degree-1 Lagrange temperatures in C. The problem knows nothing about electrodes: heat
    sources come in as UFL expressions.

    Args:
        mesh: the DOLFINx mesh.
        cell_tags: volume tags; every cell must carry a tag found in ``materials``.
        materials: thermal constants by cell tag value (:class:`PennesMaterial` or any object
            with the same attributes, e.g. :class:`emsim.models.ThermalProperties`).
        facet_tags: surface tags (needed for any boundary condition or skin monitor).
        convective_tags: facet tags with ``-k dT/dn = h (T - T_air)``.
        h_W_per_m2K: heat transfer coefficient h [W/(m^2 K)] on the convective faces.
        air_temperature_C: ambient temperature T_air [C].
        dirichlet_tags: facet tags held at ``dirichlet_temperature_C``.
        dirichlet_temperature_C: temperature of the Dirichlet faces [C] (the core).
        arterial_temperature_C: arterial blood temperature T_a [C].
        blood_heat_capacity_J_per_m3K: rho_b c_b [J/(m^3 K)] (default: library ``blood``).
        source: volumetric heat source Q [W/m^3] at ``source_scale = 1`` (UFL expression or
            Function), or None.
        surface_sources: surface heat sources [W/m^2] at ``source_scale = 1`` by facet tag.
        skin_tags: facet tags whose nodes form the monitored skin surface.
        monitor_cell_tags: cell tags over which rises and thermal dose are tracked (default:
            every volume).
        method: "auto" (MUMPS up to ``emsim.solvers.linear.MUMPS_MAX_DOFS`` dofs, CG + GAMG above), "mumps" or
            "cg-gamg".
        rtol: relative residual tolerance of CG.

    """

    def __init__(
        self,
        mesh: Any,
        cell_tags: Any,
        materials: Mapping[int, Any],
        *,
        facet_tags: Any = None,
        convective_tags: Sequence[int] = (),
        h_W_per_m2K: float = 10.0,
        air_temperature_C: float = 25.0,
        dirichlet_tags: Sequence[int] = (),
        dirichlet_temperature_C: float = 37.0,
        arterial_temperature_C: float = 37.0,
        blood_heat_capacity_J_per_m3K: float | None = None,
        source: Any = None,
        surface_sources: Mapping[int, Any] | None = None,
        skin_tags: Sequence[int] = (),
        monitor_cell_tags: Sequence[int] | None = None,
        method: str = "auto",
        rtol: float = 1e-10,
    ) -> None:
        import ufl
        from dolfinx import fem

        if h_W_per_m2K < 0 or not math.isfinite(h_W_per_m2K):
            raise InputError("h_W_per_m2K", h_W_per_m2K, "must be a finite number >= 0")
        if (
            convective_tags or dirichlet_tags or skin_tags or surface_sources
        ) and facet_tags is None:
            raise SolverError("PennesProblem: boundary tags were given without facet_tags")
        self.mesh = mesh
        self.comm = mesh.comm
        self.materials = {int(t): PennesMaterial.of(m) for t, m in materials.items()}
        self.rho_b_c_b = (
            blood_heat_capacity_J_per_m3K
            if blood_heat_capacity_J_per_m3K is not None
            else _library_blood_heat_capacity()
        )
        self.arterial_temperature_C = float(arterial_temperature_C)
        self.dirichlet_temperature_C = float(dirichlet_temperature_C)
        self.h_W_per_m2K = float(h_W_per_m2K)
        self.air_temperature_C = float(air_temperature_C)
        self.rtol = rtol

        tdim = mesh.topology.dim
        self.V = fem.functionspace(mesh, ("Lagrange", 1))
        imap = self.V.dofmap.index_map
        self.n_owned = imap.size_local
        self.dofs = imap.size_global

        # Piecewise-constant coefficients, filled per tag.
        Q0 = fem.functionspace(mesh, ("DG", 0))
        rho_c, kappa, b, qmet = (fem.Function(Q0) for _ in range(4))
        n_cells = (
            mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts
        )
        covered = np.zeros(n_cells, dtype=bool)
        for tag, m in self.materials.items():
            cells = cell_tags.find(tag)
            dofs = Q0.dofmap.list[cells, 0]
            rho_c.x.array[dofs] = m.density_kg_per_m3 * m.heat_capacity_J_per_kgK
            kappa.x.array[dofs] = m.thermal_conductivity_W_per_mK
            b.x.array[dofs] = self.rho_b_c_b * m.perfusion_per_s
            qmet.x.array[dofs] = m.metabolic_heat_W_per_m3
            covered[cells] = True
        for f in (rho_c, kappa, b, qmet):
            f.x.scatter_forward()
        n_owned_cells = mesh.topology.index_map(tdim).size_local
        missing = self.comm.allreduce(int(np.count_nonzero(~covered[:n_owned_cells])))
        if missing:
            unknown = sorted(set(np.unique(cell_tags.values).tolist()) - set(self.materials))
            raise SolverError(
                f"{missing} cells have no thermal material (cell tags without one: {unknown})"
            )
        self._coefficients = (rho_c, kappa, b, qmet)
        any_perfusion = self.comm.allreduce(float(b.x.array.max(initial=0.0)), op=_mpi_max()) > 0

        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        dx = ufl.Measure("dx", domain=mesh)
        ds = ufl.Measure("ds", domain=mesh, subdomain_data=facet_tags)
        h = fem.Constant(mesh, self.h_W_per_m2K)
        t_air = fem.Constant(mesh, self.air_temperature_C)
        t_a = fem.Constant(mesh, self.arterial_temperature_C)
        mass = rho_c * u * v * dx
        stiff = kappa * ufl.inner(ufl.grad(u), ufl.grad(v)) * dx + b * u * v * dx
        basal = (b * t_a + qmet) * v * dx
        for tag in convective_tags:
            stiff = stiff + h * u * v * ds(int(tag))
            basal = basal + h * t_air * v * ds(int(tag))
        heat = None
        if source is not None:
            heat = source * v * dx
        for tag, q in (surface_sources or {}).items():
            term = q * v * ds(int(tag))
            heat = term if heat is None else heat + term
        self._c = fem.Constant(mesh, 0.0)  # a / dt in the step matrix; 0 for the steady matrix
        self._mass = fem.form(mass)
        self._stiff = fem.form(stiff)
        self._step = fem.form(self._c * mass + stiff)
        self._basal = fem.form(basal)
        self._heat = None if heat is None else fem.form(heat)

        fdim = tdim - 1
        mesh.topology.create_connectivity(fdim, tdim)
        self._bc_dofs = self._facet_dofs(facet_tags, dirichlet_tags)
        self._bcs = (
            [fem.dirichletbc(np.float64(0.0), self._bc_dofs, self.V)] if len(self._bc_dofs) else []
        )
        self._bc_owned = self._bc_dofs[self._bc_dofs < self.n_owned]
        skin = self._facet_dofs(facet_tags, skin_tags)
        self.skin_dofs = skin[skin < self.n_owned]
        if monitor_cell_tags is None:
            self.monitor_dofs = np.arange(self.n_owned, dtype=np.int32)
        else:
            cells = np.concatenate(
                [cell_tags.find(int(t)) for t in monitor_cell_tags] or [np.empty(0, np.int32)]
            )
            dofs = np.unique(self.V.dofmap.list[cells].ravel())
            self.monitor_dofs = dofs[dofs < self.n_owned].astype(np.int32)
        has_bc = self.comm.allreduce(len(self._bc_dofs)) > 0
        self._well_posed = (
            has_bc or any_perfusion or (bool(convective_tags) and self.h_W_per_m2K > 0)
        )

        self.method = resolve_method(method, self.dofs)
        self._M = self._K = self._F0 = self._FJ = None
        self._solvers: dict[float, tuple[Any, Any]] = {}
        self.iterations: list[int] = []

    # ------------------------------------------------------------------ assembly and solvers

    def _facet_dofs(self, facet_tags: Any, tags: Sequence[int]) -> np.ndarray:
        from dolfinx import fem

        fdim = self.mesh.topology.dim - 1
        parts = [
            fem.locate_dofs_topological(self.V, fdim, facet_tags.find(int(t))) for t in tags
        ]  # fmt: skip
        return np.unique(np.concatenate(parts or [np.empty(0, np.int32)])).astype(np.int32)

    def _assemble(self) -> None:
        """Assemble the mass and stiffness matrices and the source vectors, once."""
        if self._M is not None:
            return
        from dolfinx.fem import petsc as fpetsc
        from petsc4py import PETSc

        self._M = fpetsc.assemble_matrix(self._mass)
        self._M.assemble()
        self._K = fpetsc.assemble_matrix(self._stiff)
        self._K.assemble()
        vectors = []
        for form in (self._basal, self._heat):
            if form is None:
                vectors.append(None)
                continue
            vec = fpetsc.assemble_vector(form)
            vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            vectors.append(vec)
        self._F0, self._FJ = vectors

    def _solver(self, mass_coefficient_per_s: float):
        """KSP for ``c M + K`` (Dirichlet rows and columns replaced by the identity), cached."""
        key = float(mass_coefficient_per_s)
        if key in self._solvers:
            return self._solvers[key][1]
        from dolfinx.fem import petsc as fpetsc

        self._c.value = key
        A = fpetsc.assemble_matrix(self._step, bcs=self._bcs)
        A.assemble()
        ksp = create_ksp(A, method=self.method, rtol=self.rtol, name="emsim_thermal")
        self._solvers[key] = (A, ksp)
        return ksp

    def _solve(self, ksp: Any, rhs: Any, out: Any) -> None:
        rhs.array[self._bc_owned] = 0.0  # the increment vanishes on the Dirichlet faces
        out.set(0.0)
        self.iterations.append(solve_checked(ksp, rhs, out, "thermal solve"))

    def _rhs(self, source_scale: float):
        """F = F_basal + source_scale * F_heat (a new vector)."""
        F = self._F0.copy()
        if self._FJ is not None and source_scale != 0.0:
            F.axpy(source_scale, self._FJ)
        return F

    # ------------------------------------------------------------------ public interface

    def steady_state(self, source_scale: float = 0.0) -> Any:
        """Solve the steady Pennes temperature [C] with the source times ``source_scale``.

        ``source_scale = 0`` gives the basal state (metabolism, perfusion, convection and the
        core temperature only).

        Args:
            source_scale: multiplies the volume and surface sources.

        Returns:
            The temperature, a Function named ``temperature_C``.

        Raises:
            SolverError: no Dirichlet face, no perfusion and no convection (undefined level).

        """
        from dolfinx import fem
        from dolfinx.fem import petsc as fpetsc

        if not self._well_posed:
            raise SolverError(
                "the steady state is undefined without a Dirichlet face, perfusion or convection"
            )
        self._assemble()
        T = fem.Function(self.V, name="temperature_C")
        T.x.array[:] = self.arterial_temperature_C
        T.x.array[self._bc_dofs] = self.dirichlet_temperature_C
        r = self._rhs(source_scale)
        w = fpetsc.create_vector(self.V)
        self._K.mult(T.x.petsc_vec, w)
        r.axpy(-1.0, w)
        d = fpetsc.create_vector(self.V)
        self._solve(self._solver(0.0), r, d)
        T.x.array[: self.n_owned] += d.array_r
        T.x.scatter_forward()
        for vec in (r, w, d):
            vec.destroy()
        return T

    def run(
        self,
        T0: Any,
        source_scale: float,
        session_s: float,
        time_step_s: float,
        *,
        progress: Progress | None = None,
        probes: np.ndarray | None = None,
    ) -> PennesRun:
        """Step from ``T0`` over ``session_s`` with the source times ``source_scale`` (BDF2).

        Args:
            T0: initial temperature [C] (a Function on this problem's space, e.g. the basal
                steady state).
            source_scale: multiplies the volume and surface sources for the whole run.
            session_s: duration [s], > 0.
            time_step_s: requested step [s]; shortened so that whole steps fill the session.
            progress: called with a short text about every 10 % of the steps.
            probes: owned local dof indices whose temperature history to record.

        Returns:
            The run's record.

        """
        from dolfinx import fem
        from dolfinx.fem import petsc as fpetsc

        if not (session_s > 0 and time_step_s > 0):
            raise InputError("session_s, time_step_s", (session_s, time_step_s), "must be > 0")
        progress = progress or _nothing
        self._assemble()
        n = max(1, math.ceil(session_s / time_step_s - 1e-9))
        dt = session_s / n
        half, full = self._solver(2.0 / dt), self._solver(1.0 / dt)  # the start
        bdf2 = self._solver(1.5 / dt) if n > 1 else None
        F = self._rhs(source_scale)
        T = fem.Function(self.V, name="temperature_C")
        T.x.array[:] = T0.x.array
        T_old = fem.Function(self.V)
        T_half = fem.Function(self.V)
        r, w, m, d = (fpetsc.create_vector(self.V) for _ in range(4))
        no = self.n_owned
        T0o = T0.x.array[:no].copy()
        probes = np.empty(0, np.int32) if probes is None else np.asarray(probes, dtype=np.int32)
        history = np.empty((n + 1, len(probes)))
        history[0] = T0o[probes]
        rise_peak = fem.Function(self.V, name="temperature_rise_peak_K")
        cem = fem.Function(self.V, name="cem43_min")
        rate_old = cem43_rate(T0o)
        skin_max, rise_max, cem_max = np.empty(n + 1), np.empty(n + 1), np.empty(n + 1)
        skin_max[0], rise_max[0], cem_max[0] = self._maxima(T0o, np.zeros(no), np.zeros(no))
        every = max(1, n // 10)

        def increment(ksp, state, previous=None) -> None:
            """Set d = (c M + K)^-1 (F - K T^n [+ M (T^n - T^(n-1)) / (2 dt)]), 0 on Dirichlet."""
            self._K.mult(state.x.petsc_vec, w)
            F.copy(r)
            r.axpy(-1.0, w)
            if previous is not None:
                w.array[:] = state.x.array[:no] - previous.x.array[:no]
                self._M.mult(w, m)
                r.axpy(0.5 / dt, m)
            self._solve(ksp, r, d)

        for step in range(n):
            if step == 0:
                # Richardson-extrapolated backward Euler: 2 BE(dt/2)^2 - BE(dt).
                T_half.x.array[:] = T.x.array
                for _ in range(2):
                    increment(half, T_half)
                    T_half.x.array[:no] += d.array_r
                    T_half.x.scatter_forward()
                increment(full, T)
                T_old.x.array[:] = T.x.array
                T.x.array[:no] = 2.0 * T_half.x.array[:no] - T.x.array[:no] - d.array_r
            else:
                increment(bdf2, T, T_old)
                T_old.x.array[:] = T.x.array
                T.x.array[:no] += d.array_r
            T.x.scatter_forward()
            Tn = T.x.array[:no]
            rise = Tn - T0o
            np.maximum(rise_peak.x.array[:no], rise, out=rise_peak.x.array[:no])
            rate = cem43_rate(Tn)
            cem.x.array[:no] += (dt / 60.0) * 0.5 * (rate_old + rate)
            rate_old = rate
            history[step + 1] = Tn[probes]
            skin_max[step + 1], rise_max[step + 1], cem_max[step + 1] = self._maxima(
                Tn, rise, cem.x.array[:no]
            )
            if (step + 1) % every == 0 or step + 1 == n:
                progress(f"heating: {(step + 1) * dt / 60:.1f} of {session_s / 60:.1f} min")
        for f in (rise_peak, cem):
            f.x.scatter_forward()
        for vec in (r, w, m, d, F):
            vec.destroy()
        return PennesRun(
            times_s=np.arange(n + 1) * dt,
            time_step_s=dt,
            skin_max_C=skin_max,
            rise_max_K=rise_max,
            cem43_max_min=cem_max,
            final=T,
            rise_peak=rise_peak,
            cem43=cem,
            probe_history_C=history,
        )

    def _maxima(
        self, T: np.ndarray, rise: np.ndarray, cem: np.ndarray
    ) -> tuple[float, float, float]:
        """Global (skin max T, max rise, max CEM43) over the monitored dofs."""
        from mpi4py import MPI

        s, m = self.skin_dofs, self.monitor_dofs
        buf = np.array([
            T[s].max(initial=-np.inf),
            rise[m].max(initial=-np.inf),
            cem[m].max(initial=-np.inf),
        ])  # fmt: skip
        self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.MAX)
        skin = buf[0] if np.isfinite(buf[0]) else math.nan
        return float(skin), float(buf[1]), float(buf[2])

    def close(self) -> None:
        """Free the PETSc objects."""
        for A, ksp in self._solvers.values():
            ksp.destroy()
            A.destroy()
        self._solvers.clear()
        for obj in (self._M, self._K, self._F0, self._FJ):
            if obj is not None:
                obj.destroy()
        self._M = self._K = self._F0 = self._FJ = None


# ============================================================================ case level


def joule_heat_factor(case: Case) -> tuple[float, float]:
    """Mean-square factor of the case's waveform and its r.m.s. current.

    The Joule heat of the case's field at the peak current I (first channel) is multiplied by
    ``(I_rms / I)^2`` with ``I_rms = case.waveform.rms(I)`` (pulses, bursts, on/off and ramps
    included), or 1 for d.c. (no waveform).

    Args:
        case: the case.

    Returns:
        ``((I_rms / I)^2, I_rms [A])``.

    """
    current = case.channels[0].current_A
    rms = getattr(case.waveform, "rms", None)
    i_rms = float(rms(current)) if rms is not None else current
    return (i_rms / current) ** 2, i_rms


def _volume_materials(case: Case, patch: PatchMesh) -> dict[str, Any]:
    """ThermalProperties of every tagged volume, by volume name."""
    by_name: dict[str, Any] = {f"layer:{layer.label}": layer.tissue for layer in case.layers}
    for e in case.electrodes:
        if e.gel is not None:
            # The contact sublayer is gel electrically in series with the stratum corneum;
            # thermally it is gel (the stratum corneum is ~15 um thick).
            by_name[f"gel:{e.name}"] = e.gel.material
            by_name[f"contact:{e.name}"] = e.gel.material
    out = {}
    for name in patch.volumes:
        tissue = by_name.get(name)
        if tissue is None:
            raise SolverError(f"volume {name} of the mesh has no material in the case")
        if tissue.thermal is None:
            raise InputError(
                f"material.{tissue.name}", "no thermal properties",
                "a heating solve needs density_kg_per_m3, heat_capacity_J_per_kgK and "
                "thermal_conductivity_W_per_mK for every layer and gel",
            )  # fmt: skip
        out[name] = tissue.thermal
    return out


def case_pennes_problem(
    case: Case,
    patch: PatchMesh,
    *,
    source: Any = None,
    surface_sources: Mapping[int, Any] | None = None,
) -> PennesProblem:
    """Build the Pennes problem of a case on its patch mesh, with the module doc's boundaries.

    Convective: ``skin_exposed``, every ``pad_side:E`` and ``electrode:E``. Core temperature:
    ``bottom``. Insulated: ``sides``. Monitored skin: ``skin_exposed``, ``skin_under:E`` and the
    faces of bare electrodes (all at z = 0). Rises and doses are tracked over the tissue layers.

    Args:
        case: the case (materials and ``[thermal]`` settings; defaults without one).
        patch: its tagged mesh.
        source: volumetric heat source [W/m^3] (UFL), or None.
        surface_sources: surface heat sources [W/m^2] by facet tag.

    """
    settings = case.thermal or ThermalSettings()
    materials = {patch.volumes[n]: p for n, p in _volume_materials(case, patch).items()}
    surf = patch.surfaces
    convective = [
        t for n, t in surf.items()
        if n == "skin_exposed" or n.startswith(("pad_side:", "electrode:"))
    ]  # fmt: skip
    skin = [t for n, t in surf.items() if n == "skin_exposed" or n.startswith("skin_under:")]
    skin += [surf[f"electrode:{e.name}"] for e in case.electrodes if e.gel is None]
    tissue = [t for n, t in patch.volumes.items() if n.startswith("layer:")]
    return PennesProblem(
        patch.mesh,
        patch.cell_tags,
        materials,
        facet_tags=patch.facet_tags,
        convective_tags=sorted(convective),
        h_W_per_m2K=settings.h_W_per_m2K,
        air_temperature_C=settings.air_temperature_C,
        dirichlet_tags=[surf["bottom"]],
        dirichlet_temperature_C=settings.core_temperature_C,
        arterial_temperature_C=settings.core_temperature_C,
        source=source,
        surface_sources=surface_sources,
        skin_tags=sorted(skin),
        monitor_cell_tags=sorted(tissue),
        method=case.solver.method,
        rtol=case.solver.rtol,
    )


def _joule_sources(problem: ElectricProblem, solution: ChannelSolution, factor: float):
    """Time-averaged Joule heat [W/m^3] (UFL) and contact-film heat [W/m^2] by facet tag."""
    import ufl
    from dolfinx import fem

    patch = problem.patch
    mesh = patch.mesh
    W = fem.functionspace(mesh, ("DG", 0, (3, 3)))
    S = fem.Function(W, name="conductivity_S_per_m")
    values = S.x.array.reshape(-1, 9)
    for name, sigma in problem.sigma.items():
        cells = patch.cell_tags.find(patch.volumes[name])
        values[W.dofmap.list[cells, 0]] = _tensor9(sigma)
    S.x.scatter_forward()
    phi = solution.potential
    c = fem.Constant(mesh, float(factor))
    source = c * ufl.inner(ufl.dot(S, ufl.grad(phi)), ufl.grad(phi))
    surface = {}
    for name, G in problem.robin.items():
        v_e = solution.electrode_potentials_V[name]
        surface[patch.surfaces[f"electrode:{name}"]] = c * G * (v_e - phi) ** 2
    return source, surface


def _tensor9(sigma: Any) -> np.ndarray:
    """A conductivity as 9 tensor entries: from a 3x3 tensor or (tangential, normal) [S/m]."""
    arr = np.real(np.asarray(sigma, dtype=complex))
    if arr.shape == (3, 3):
        return arr.ravel()
    st, sn = arr
    return np.array([st, 0, 0, 0, st, 0, 0, 0, sn])


def _select_probes(T0: np.ndarray, theta: np.ndarray, dofs: np.ndarray) -> np.ndarray:
    """Dofs among ``dofs`` in the top few of ``T0 + s theta`` for some scale s (and s = 0, inf)."""
    if len(dofs) == 0:
        return dofs
    k = min(_PROBES_PER_SCALE, len(dofs))
    t0, th = T0[dofs], theta[dofs]
    chosen: set[int] = set()
    for score in [t0, th, *(t0 + s * th for s in _PROBE_SCALES)]:
        chosen.update(dofs[np.argpartition(-score, k - 1)[:k]].tolist())
    return np.array(sorted(chosen), dtype=np.int32)


def _pareto(rise: np.ndarray, T0: np.ndarray) -> np.ndarray:
    """Return the indices not dominated in (rise, T0): they hold max(T0 + s rise), s >= 0."""
    if len(rise) == 0:
        return np.empty(0, dtype=np.int64)
    order = np.lexsort((-T0, -rise))
    t = T0[order]
    best = np.maximum.accumulate(t)
    keep = np.r_[True, t[1:] > best[:-1]]
    return order[keep]


def _point(xyz: Any) -> list[float]:
    """Coordinates [m] as a plain list, rounded to 1 pm (so that -1e-21 prints as 0.0)."""
    return [float(v) + 0.0 for v in np.round(np.asarray(xyz, dtype=float), 12)]


def _gather_all(comm, arrays: tuple[np.ndarray, ...]) -> tuple[np.ndarray, ...]:
    parts = comm.allgather(arrays)
    return tuple(np.concatenate([p[i] for p in parts]) for i in range(len(arrays)))


def _mpi_max():
    from mpi4py import MPI

    return MPI.MAX


def _trapezoid_cem43(T_history: np.ndarray, dt_s: float) -> np.ndarray:
    """CEM43 [min] per column of a (times, points) temperature history (trapezoidal rule)."""
    rate = cem43_rate(T_history)
    if len(rate) < 2:
        return np.zeros(rate.shape[1:])
    return (dt_s / 60.0) * (0.5 * rate[0] + rate[1:-1].sum(axis=0) + 0.5 * rate[-1])


@dataclass
class ThermalResult:
    """Heating of a case over its session, and its rescaling to other currents.

    Attributes:
        metrics: plain data merged into ``metrics.json`` (identical on every rank).
        reference_current_A: the first channel's (peak) current the solve was made at [A].
        rms_current_A: its r.m.s. over the waveform [A].
        history: at the reference current, by column name with units: ``time_s``,
            ``skin_temperature_max_C``, ``tissue_temperature_rise_max_K``, ``cem43_max_min``.
        fields: DOLFINx Functions for :meth:`write_fields`, by name.

    """

    metrics: dict
    reference_current_A: float
    rms_current_A: float
    history: dict[str, np.ndarray]
    fields: dict[str, Any] = field(repr=False)
    time_step_s: float = 0.0
    _skin_front: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _probes: dict[str, np.ndarray] = field(default_factory=dict, repr=False)
    _picture: dict[str, Any] | None = field(default=None, repr=False)
    _electrodes: tuple = field(default=(), repr=False)
    _case_name: str = ""

    # ------------------------------------------------------------------ rescaling

    def scale(self, current_A: float) -> float:
        """Factor ``(I / I_ref)^2`` that multiplies every temperature rise at ``current_A``.

        Every channel is scaled together, in the proportions of the case.
        """
        return (current_A / self.reference_current_A) ** 2

    def rise_at(self, current_A: float) -> float:
        """Largest tissue temperature rise over the session at ``current_A`` [K] (exact)."""
        return self.scale(current_A) * self.metrics["tissue_temperature_rise_max_K"]

    def metrics_at(self, current_A: float) -> dict:
        """Return the scalar thermal metrics at another (peak) current of the first channel.

        The rise is linear in the source, so ``T = T_basal + s (T_ref - T_basal)`` with
        ``s = (I / I_ref)^2``. Exact: the rise, the hottest point and the peak skin temperature
        (from the running maximum of the rise per node, reduced to the points that are not
        dominated in (basal temperature, peak rise)). CEM43, being non-linear in T, is
        recomputed from the temperature histories kept at probe nodes chosen, before the run,
        as the hottest for a range of scales s = 0.01 .. 100 of the steady-state rise; it is
        exact at s = 1 and a lower bound otherwise.

        Args:
            current_A: the first channel's peak current [A].

        Returns:
            ``skin_temperature_basal_C``, ``skin_temperature_peak_C``,
            ``skin_temperature_peak_location_m``, ``tissue_temperature_rise_max_K``,
            ``cem43_max_min``, ``hottest_point_m``, ``current_A``.

        """
        s = self.scale(current_A)
        m = self.metrics
        out = {
            "current_A": current_A,
            "skin_temperature_basal_C": m["skin_temperature_basal_C"],
            "tissue_temperature_rise_max_K": s * m["tissue_temperature_rise_max_K"],
            "hottest_point_m": list(m["hottest_point_m"]),
        }
        front = self._skin_front
        if len(front.get("T0", ())):
            vals = front["T0"] + s * front["rise"]
            i = int(np.argmax(vals))
            out["skin_temperature_peak_C"] = float(vals[i])
            out["skin_temperature_peak_location_m"] = _point(front["xyz"][i])
        else:
            out["skin_temperature_peak_C"] = math.nan
            out["skin_temperature_peak_location_m"] = None
        if math.isclose(s, 1.0, rel_tol=1e-12):
            out["cem43_max_min"] = m["cem43_max_min"]
        else:
            p = self._probes
            tissue = p["tissue"]
            T = p["T0"][tissue] + s * (p["history"][:, tissue] - p["T0"][tissue])
            out["cem43_max_min"] = float(_trapezoid_cem43(T, self.time_step_s).max(initial=0.0))
        return out

    def skin_history_at(self, current_A: float) -> np.ndarray:
        """Maximum skin temperature [C] at each time of ``history["time_s"]`` at ``current_A``.

        Exact at the reference current; elsewhere the maximum over the skin probe nodes.
        """
        s = self.scale(current_A)
        if math.isclose(s, 1.0, rel_tol=1e-12):
            return self.history["skin_temperature_max_C"].copy()
        p = self._probes
        skin = p["skin"]
        if not skin.any():
            return np.full(len(self.history["time_s"]), math.nan)
        return (p["T0"][skin] + s * (p["history"][:, skin] - p["T0"][skin])).max(axis=1)

    # ------------------------------------------------------------------ outputs

    def write_fields(self, folder: str | Path) -> Path:
        """Write ``thermal.xdmf`` (basal, final, rise, peak rise, CEM43, Joule heat); collective.

        Args:
            folder: an existing folder.

        Returns:
            The path of the XDMF file.

        """
        from dolfinx import io

        path = Path(folder) / "thermal.xdmf"
        first = next(iter(self.fields.values()))
        mesh = first.function_space.mesh
        with io.XDMFFile(mesh.comm, str(path), "w") as f:
            f.write_mesh(mesh)
            for fn in self.fields.values():
                f.write_function(fn)
        return path

    def write_pictures(self, folder: str | Path) -> list[Path]:
        """Write the skin-rise map, the peak temperature plot and the history CSV (rank 0 only).

        Uses only data gathered on rank 0 during :func:`session_heating`; call it on rank 0.
        Files: ``skin_temperature_rise.png``, ``peak_temperature_vs_time.png``,
        ``temperature_history.csv``.

        Args:
            folder: an existing folder.

        Returns:
            The paths written.

        """
        if self._picture is None:
            log.warning("thermal pictures are written on rank 0 only; nothing to do here")
            return []
        folder = Path(folder)
        paths = [
            self._write_history_csv(folder / "temperature_history.csv"),
            self._plot_peak(folder / "peak_temperature_vs_time.png"),
            self._plot_skin(folder / "skin_temperature_rise.png"),
        ]
        return paths

    def _write_history_csv(self, path: Path) -> Path:
        names = list(self.history)
        data = np.column_stack([self.history[n] for n in names])
        np.savetxt(path, data, delimiter=",", header=",".join(names), comments="", fmt="%.10g")
        return path

    def _plot_peak(self, path: Path) -> Path:
        from matplotlib.figure import Figure

        h = self.history
        t_min = h["time_s"] / 60.0
        fig = Figure(figsize=(8, 5), dpi=120, layout="constrained")
        ax = fig.add_subplot()
        ax.plot(t_min, h["skin_temperature_max_C"], color="tab:red", label="skin, maximum")
        peak = float(np.nanmax(h["skin_temperature_max_C"]))
        for limit, label in ((41.0, "41 C (IEC 60601-1 applied part)"), (43.0, "43 C")):
            if peak > limit - 3.0:
                ax.axhline(limit, color="0.4", ls="--", lw=1)
                ax.text(t_min[0], limit, " " + label, va="bottom", fontsize=8, color="0.3")
        ax.set_xlabel("time [min]")
        ax.set_ylabel("maximum skin temperature [C]", color="tab:red")
        ax2 = ax.twinx()
        ax2.plot(t_min, h["tissue_temperature_rise_max_K"], color="tab:blue", ls="-.",
                 label="tissue, maximum rise")  # fmt: skip
        ax2.set_ylabel("maximum tissue temperature rise [K]", color="tab:blue")
        m = self.metrics
        ax.set_title(
            f"{self._case_name}: I = {self.reference_current_A * 1e3:.3g} mA peak, "
            f"{self.rms_current_A * 1e3:.3g} mA r.m.s.; CEM43 max {m['cem43_max_min']:.3g} min",
            fontsize=10,
        )
        lines = ax.get_lines()[:1] + ax2.get_lines()
        ax.legend(lines, [ln.get_label() for ln in lines], loc="lower right")
        ax.grid(alpha=0.3)
        fig.savefig(path)
        return path

    def _plot_skin(self, path: Path) -> Path:
        from matplotlib import patches
        from matplotlib.figure import Figure
        from matplotlib.tri import Triangulation

        tri = self._picture["triangles_m"] * 1e3
        vals = self._picture["rise_K"]
        fig = Figure(figsize=(9, 6.5), dpi=120, layout="constrained")
        ax = fig.add_subplot()
        if len(tri):
            n = len(tri)
            mesh = Triangulation(
                tri[:, :, 0].ravel(), tri[:, :, 1].ravel(), np.arange(3 * n).reshape(n, 3)
            )
            art = ax.tripcolor(mesh, vals.ravel(), shading="gouraud", cmap="inferno")
            fig.colorbar(art, ax=ax, label="temperature rise at the end of the session [K]")
        for e in self._electrodes:
            cx, cy = (c * 1e3 for c in e.center_m)
            if e.shape == "disk":
                outline = patches.Circle((cx, cy), e.diameter_m * 500)
            else:
                hx, hy = (v * 1e3 for v in e.half_extent_m)
                outline = patches.FancyBboxPatch(
                    (cx - hx, cy - hy), 2 * hx, 2 * hy,
                    boxstyle=f"round,pad=0,rounding_size={e.corner_radius_m * 1e3:g}",
                )  # fmt: skip
            outline.set(fill=False, edgecolor="cyan", linewidth=1.5)
            ax.add_patch(outline)
            ax.annotate(e.name, (cx, cy), color="cyan", ha="center", va="center", fontsize=12)
        m = self.metrics
        loc = m["hottest_point_m"]
        ax.plot(loc[0] * 1e3, loc[1] * 1e3, marker="x", color="lime", ms=9,
                label=f"largest tissue rise, z = {loc[2] * 1e3:.2f} mm")  # fmt: skip
        ax.legend(loc="upper right", fontsize=8)
        ax.set_aspect("equal")
        ax.set_xlabel("x [mm]")
        ax.set_ylabel("y [mm]")
        ax.set_title(
            f"{self._case_name}: skin temperature rise after {m['session_s'] / 60:g} min "
            f"(peak skin {m['skin_temperature_peak_C']:.2f} C, max tissue rise "
            f"{m['tissue_temperature_rise_max_K']:.3g} K)",
            fontsize=10,
        )
        fig.savefig(path)
        return path


def _skin_picture_data(
    pennes: PennesProblem, patch: PatchMesh, skin_tags: list[int], rise: np.ndarray
):
    """Skin triangles [m] and the rise at their vertices, gathered on rank 0 (None elsewhere)."""
    from dolfinx import mesh as dmesh

    mesh = patch.mesh
    fdim = mesh.topology.dim - 1
    n_owned = mesh.topology.index_map(fdim).size_local
    facets = np.concatenate(
        [patch.facet_tags.find(t) for t in skin_tags] or [np.empty(0, np.int32)]
    )
    facets = np.unique(facets[facets < n_owned]).astype(np.int32)
    geom = (
        dmesh.entities_to_geometry(mesh, fdim, facets)
        if len(facets)
        else np.empty((0, 3), np.int32)
    )
    # Degree-1 Lagrange dofs sit on the geometry nodes: map node -> dof through the cells.
    g2d = np.empty(mesh.geometry.x.shape[0], dtype=np.int64)
    g2d[mesh.geometry.dofmaps[0].ravel()] = pennes.V.dofmap.list.ravel()
    tri = mesh.geometry.x[geom] if len(facets) else np.empty((0, 3, 3))
    vals = rise[g2d[geom]] if len(facets) else np.empty((0, 3))
    parts = mesh.comm.gather((tri, vals), root=0)
    if mesh.comm.rank != 0:
        return None
    return {
        "triangles_m": np.concatenate([p[0] for p in parts]),
        "rise_K": np.concatenate([p[1] for p in parts]),
    }


def session_heating(
    case: Case,
    patch: PatchMesh,
    problem: ElectricProblem,
    solution: ChannelSolution,
    *,
    progress: Progress = _nothing,
) -> ThermalResult:
    """Heat the case's patch over its session with the time-averaged Joule heat of ``solution``.

    Steps: the Joule heat ``(I_rms / I)^2 grad(phi) . S grad(phi)`` (plus the contact-film heat
    of bare electrodes), the basal steady state (no current), the steady state with current
    (only to choose the probe nodes of :meth:`ThermalResult.metrics_at`), then BDF2 over
    ``case.thermal.session_s`` from the basal state.

    Metrics (identical on every rank):

    * ``skin_temperature_basal_C``: maximum over the skin surface (z = 0) at t = 0;
    * ``skin_temperature_peak_C``: maximum over the skin surface and the session;
    * ``tissue_temperature_rise_max_K``: maximum of T - T_basal over the tissue layers and the
      session (gel pads excluded);
    * ``cem43_max_min``: maximum over the tissue nodes of the accumulated CEM43 [min];
    * ``hottest_point_m``: where the tissue rise is largest, [x, y, z];
    * ``thermal_time_step_s``, ``session_s``;
    * ``thermal``: details (location and time of the skin peak, r.m.s. current, Joule power,
      solver, settings, definitions).

    Args:
        case: the case, with its ``[thermal]`` settings (defaults when None).
        patch: its tagged mesh.
        problem: the solved electric problem (conductivities, contact films).
        solution: the channel solution at the case's currents.
        progress: called with short texts as the steps go.

    Returns:
        The thermal result, rescalable to other currents.

    """
    import ufl
    from dolfinx import fem

    settings = case.thermal or ThermalSettings()
    comm = patch.mesh.comm
    factor, i_rms = joule_heat_factor(case)
    source, surface = _joule_sources(problem, solution, factor)
    pennes = case_pennes_problem(case, patch, source=source, surface_sources=surface)
    progress(f"heating: basal state ({pennes.dofs} dofs, {pennes.method})")
    basal = pennes.steady_state(0.0)
    basal.name = "temperature_basal_C"
    with_current = pennes.steady_state(1.0)
    no = pennes.n_owned
    T0 = basal.x.array[:no]
    theta_ss = with_current.x.array[:no] - T0
    probes = np.union1d(
        _select_probes(T0, theta_ss, pennes.skin_dofs),
        _select_probes(T0, theta_ss, pennes.monitor_dofs),
    ).astype(np.int32)
    run = pennes.run(
        basal, 1.0, settings.session_s, settings.time_step_s, progress=progress, probes=probes
    )

    xyz = pennes.V.tabulate_dof_coordinates()[:no]
    rise_peak = run.rise_peak.x.array[:no]
    # Hottest point: the largest rise over the tissue (the same node at every current).
    mon = pennes.monitor_dofs
    if len(mon):
        i = mon[int(np.argmax(rise_peak[mon]))]
        local = (float(rise_peak[i]), _point(xyz[i]))
    else:
        local = (-math.inf, [math.nan] * 3)
    hottest = max(comm.allgather(local), key=lambda p: p[0])
    # Skin peak at any scale: the non-dominated (peak rise, basal temperature) skin nodes.
    skin = pennes.skin_dofs
    front = skin[_pareto(rise_peak[skin], T0[skin])]
    fr, ft, fx = _gather_all(comm, (rise_peak[front], T0[front], xyz[front].reshape(-1, 3)))
    keep = _pareto(fr, ft)
    skin_front = {"rise": fr[keep], "T0": ft[keep], "xyz": fx[keep]}
    # Probe histories, for rescaled doses.
    ph, pt0, pskin, ptissue = _gather_all(
        comm,
        (run.probe_history_C.T, T0[probes], np.isin(probes, skin), np.isin(probes, mon)),
    )
    probes_all = {"history": ph.T.copy(), "T0": pt0, "skin": pskin, "tissue": ptissue}

    basal_skin = comm.allreduce(float(T0[skin].max(initial=-math.inf)), op=_mpi_max())
    peak_i = int(np.argmax(skin_front["T0"] + skin_front["rise"])) if len(fr) else None
    joule = fem.assemble_scalar(fem.form(source * ufl.dx(domain=patch.mesh)))
    ds = ufl.Measure("ds", domain=patch.mesh, subdomain_data=patch.facet_tags)
    for tag, q in surface.items():
        joule += fem.assemble_scalar(fem.form(q * ds(tag)))
    joule = comm.allreduce(float(joule))

    metrics = {
        "skin_temperature_basal_C": basal_skin if math.isfinite(basal_skin) else math.nan,
        "skin_temperature_peak_C": float(np.nanmax(run.skin_max_C)),
        "tissue_temperature_rise_max_K": float(run.rise_max_K.max()),
        "cem43_max_min": float(run.cem43_max_min[-1]),
        "hottest_point_m": hottest[1],
        "thermal_time_step_s": run.time_step_s,
        "session_s": settings.session_s,
        "thermal": {
            "skin_temperature_peak_location_m": (
                _point(skin_front["xyz"][peak_i]) if peak_i is not None else None
            ),
            "skin_temperature_peak_time_s": float(run.times_s[int(np.nanargmax(run.skin_max_C))]),
            "tissue_temperature_rise_final_max_K": float(run.rise_max_K[-1]),
            "peak_current_A": case.channels[0].current_A,
            "rms_current_A": i_rms,
            "joule_heat_time_averaged_W": joule,
            "h_W_per_m2K": settings.h_W_per_m2K,
            "air_temperature_C": settings.air_temperature_C,
            "core_temperature_C": settings.core_temperature_C,
            "steps": len(run.times_s) - 1,
            "scheme": "BDF2, fixed step, Richardson-extrapolated backward-Euler start",
            "dofs": pennes.dofs,
            "method": pennes.method,
            "definitions": {
                "skin_temperature_peak_C": "max over the skin surface (z = 0) and the session",
                "tissue_temperature_rise_max_K": "max of T - T_basal over the tissue layers and the session",
                "cem43_max_min": "max over tissue nodes of sum dt R^(43 - T), R = 0.5 at >= 43 C, 0.25 below",
                "hottest_point_m": "where the tissue temperature rise is largest",
                "scaling": "rises scale with (I / I_ref)^2 at a fixed waveform",
            },
        },
    }
    history = {
        "time_s": run.times_s,
        "skin_temperature_max_C": run.skin_max_C,
        "tissue_temperature_rise_max_K": run.rise_max_K,
        "cem43_max_min": run.cem43_max_min,
    }
    final = run.final
    final.name = "temperature_final_C"
    rise = fem.Function(pennes.V, name="temperature_rise_final_K")
    rise.x.array[:] = final.x.array - basal.x.array
    run.rise_peak.name = "temperature_rise_peak_K"
    Q0 = fem.functionspace(patch.mesh, ("DG", 0))
    joule_field = fem.Function(Q0, name="joule_heat_time_averaged_W_per_m3")
    joule_field.interpolate(fem.Expression(source, Q0.element.interpolation_points))
    skin_tags = [
        t for n, t in patch.surfaces.items() if n == "skin_exposed" or n.startswith("skin_under:")
    ]
    skin_tags += [patch.surfaces[f"electrode:{e.name}"] for e in case.electrodes if e.gel is None]
    picture = _skin_picture_data(pennes, patch, skin_tags, rise.x.array)
    pennes.close()
    log.info(
        "heating: %d dofs, %d steps of %.3g s, peak skin %.3f C, max rise %.4g K, CEM43 %.3g min",
        pennes.dofs, len(run.times_s) - 1, run.time_step_s, metrics["skin_temperature_peak_C"],
        metrics["tissue_temperature_rise_max_K"], metrics["cem43_max_min"],
    )  # fmt: skip
    return ThermalResult(
        metrics=metrics,
        reference_current_A=case.channels[0].current_A,
        rms_current_A=i_rms,
        history=history,
        fields={
            "basal": basal,
            "final": final,
            "rise": rise,
            "rise_peak": run.rise_peak,
            "cem43": run.cem43,
            "joule": joule_field,
        },
        time_step_s=run.time_step_s,
        _skin_front=skin_front,
        _probes=probes_all,
        _picture=picture,
        _electrodes=tuple(case.electrodes),
        _case_name=case.name,
    )
