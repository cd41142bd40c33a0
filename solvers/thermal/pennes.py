r"""Transient Pennes bioheat on a tagged mesh, with thermal dose: the generic problem.

Physics (Pennes 1948, J Appl Physiol 1:93; IT'IS v4.0 tissue properties). On every tagged
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

Boundaries. The problem takes its convective faces, its Dirichlet faces and its heat sources
as tags and UFL expressions: which faces of a case are which is set up by
:func:`emsim.solvers.thermal.session.case_pennes_problem`.

Time scheme. BDF2 with a fixed step, started by a Richardson-extrapolated backward-Euler step
(``2 BE(dt/2)^2 - BE(dt)``, second order, so that even the first minutes are second-order
accurate). Both are second order and L-stable: the stiff modes of the small elements at the pad
edges, excited when the current is switched on at t = 0, are damped (amplification -> 0)
instead of ringing as under Crank-Nicolson (amplification -> -1), so the tracked peak
temperature and the thermal dose see no spurious oscillations. Each step solves for the
increment, ``(a M / dt + K) dT = F - K T^n [+ (M / (2 dt)) (T^n - T^(n-1))]`` (a = 2 and 1 for
the start, 3/2 for BDF2), with the increment zero on the Dirichlet face, so three matrices are
assembled and factorised (MUMPS) or preconditioned (CG + GAMG above ``emsim.solvers.linalg.ksp.MUMPS_MAX_DOFS``) once
and reused at every step, and the basal steady state is an exact fixed point.

Thermal dose (Sapareto & Dewey 1984, Int J Radiat Oncol Biol Phys 10:787):
``CEM43 = sum dt R^(43 - T)``, R = 0.5 at or above 43 C and 0.25 below, in minutes, integrated
per node with the trapezoidal rule over the time steps.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fpetsc
from dolfinx.mesh import Mesh, MeshTags
from mpi4py import MPI
from petsc4py import PETSc

from ...errors import InputError, SolverError
from ..linalg.ksp import SolveWith, create_ksp, resolve_method, solve_checked
from .pennes_data import PennesMaterial, PennesRun, ThermalConstants, cem43_rate
from .pennes_data import blood_heat_capacity_J_per_m3K as library_blood_heat_capacity

__all__ = ["PennesProblem"]

log = logging.getLogger(__name__)
#: Relative residual of the CG solves preconditioned by a nearby factorisation (PennesProblem._solver):
#: round-off, as a factorisation of their own would give.
_NEAR_RTOL = 1e-14

Progress = Callable[[str], None]


def _nothing(_: str) -> None:
    pass


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
        method: "auto" (MUMPS up to ``emsim.solvers.linalg.ksp.MUMPS_MAX_DOFS`` dofs, CG + GAMG above), "mumps" or
            "cg-gamg".
        rtol: relative residual tolerance of CG.

    """

    def __init__(
        self,
        mesh: Mesh,
        cell_tags: MeshTags,
        materials: Mapping[int, ThermalConstants],
        *,
        facet_tags: MeshTags | None = None,
        convective_tags: Sequence[int] = (),
        h_W_per_m2K: float = 10.0,
        air_temperature_C: float = 25.0,
        dirichlet_tags: Sequence[int] = (),
        dirichlet_temperature_C: float = 37.0,
        arterial_temperature_C: float = 37.0,
        blood_heat_capacity_J_per_m3K: float | None = None,
        source: ufl.core.expr.Expr | None = None,
        surface_sources: Mapping[int, ufl.core.expr.Expr] | None = None,
        skin_tags: Sequence[int] = (),
        monitor_cell_tags: Sequence[int] | None = None,
        method: str = "auto",
        rtol: float = 1e-10,
    ) -> None:
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
            else library_blood_heat_capacity()
        )
        self.arterial_temperature_C = float(arterial_temperature_C)
        self.dirichlet_temperature_C = float(dirichlet_temperature_C)
        self.h_W_per_m2K = float(h_W_per_m2K)
        self.air_temperature_C = float(air_temperature_C)
        self.rtol = rtol
        self._facet_tags = facet_tags

        tdim = mesh.topology.dim
        self.V = fem.functionspace(mesh, ("Lagrange", 1))
        imap = self.V.dofmap.index_map
        self.n_owned = imap.size_local
        self.dofs = imap.size_global

        self._coefficients = self._fill_coefficients(cell_tags)
        any_perfusion = self.comm.allreduce(float(self._coefficients[2].x.array.max(initial=0.0)), op=_mpi_max()) > 0
        self._build_forms(facet_tags, convective_tags, source, surface_sources)

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
        # PETSc matrices and vectors (untyped), assembled on first use
        self._M: Any = None
        self._K: Any = None
        self._F0: Any = None
        self._FJ: Any = None
        self._solvers: dict[float, tuple[Any, Any]] = {}
        self.iterations: list[int] = []

    def _fill_coefficients(self, cell_tags: MeshTags) -> tuple[fem.Function, fem.Function, fem.Function, fem.Function]:
        """Piecewise-constant rho c, k, rho_b c_b w_b and Q_met (DG0), filled per volume tag."""
        mesh = self.mesh
        tdim = mesh.topology.dim
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
        return rho_c, kappa, b, qmet

    def _build_forms(self, facet_tags: MeshTags | None, convective_tags: Sequence[int], source: ufl.core.expr.Expr | None,
                     surface_sources: Mapping[int, ufl.core.expr.Expr] | None) -> None:  # fmt: skip
        """Mass, stiffness (perfusion and convection included), basal and heat-source forms."""
        mesh = self.mesh
        rho_c, kappa, b, qmet = self._coefficients
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
        self._mass = fem.form(mass)
        self._stiff = fem.form(stiff)
        self._basal = fem.form(basal)
        self._heat = None if heat is None else fem.form(heat)

    # ------------------------------------------------------------------ assembly and solvers

    def _facet_dofs(self, facet_tags: MeshTags | None, tags: Sequence[int]) -> np.ndarray:
        fdim = self.mesh.topology.dim - 1
        if facet_tags is None:
            return np.empty(0, np.int32)
        parts = [
            fem.locate_dofs_topological(self.V, fdim, facet_tags.find(int(t))) for t in tags
        ]  # fmt: skip
        return np.unique(np.concatenate(parts or [np.empty(0, np.int32)])).astype(np.int32)

    def _assemble(self) -> None:
        """Assemble the mass and stiffness matrices and the source vectors, once."""
        if self._M is not None:
            return

        self._M = fpetsc.assemble_matrix(self._mass)
        self._M.assemble()
        self._K = fpetsc.assemble_matrix(self._stiff)
        self._K.assemble()
        vectors: list[Any] = []  # PETSc vectors
        for form in (self._basal, self._heat):
            if form is None:
                vectors.append(None)
                continue
            vec = fpetsc.assemble_vector(form)
            vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
            vectors.append(vec)
        self._F0, self._FJ = vectors

    def _solver(self, mass_coefficient_per_s: float, *, near_per_s: float | None = None):
        """KSP for ``c M + K`` (Dirichlet rows and columns replaced by the identity), cached.

        With ``near_per_s`` = c' and MUMPS: CG preconditioned by the factorisation of
        ``c' M + K`` (made or reused) instead of a factorisation of its own. Both operators are
        symmetric positive definite and the spectrum of (c' M + K)^-1 (c M + K) lies in
        [min(1, c/c'), max(1, c/c')]: for the start of a run (c = 2/dt and 1/dt against the BDF2
        steps' c' = 1.5/dt, three solves in all) CG reaches round-off (:data:`_NEAR_RTOL`) in
        12-14 triangular solves on the default case, cheaper than two more factorisations.
        """
        key = float(mass_coefficient_per_s)
        if key in self._solvers:
            return self._solvers[key][1]

        near = None if near_per_s is None or self.method != "mumps" else self._solver(near_per_s)
        self._assemble()
        # c M + K from the assembled M and K (the mass pattern is within the stiffness'), then
        # the Dirichlet rows and columns: the same matrix as assembling the form c m + k with
        # the boundary condition, to round-off, without another pass over the cells.
        A = self._K.duplicate(copy=True)
        if key != 0.0:
            A.axpy(key, self._M, structure=PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN)
        start = self.V.dofmap.index_map.local_range[0]
        A.zeroRowsColumns((self._bc_owned + start).astype(PETSc.IntType), diag=1.0)
        if near is None:
            ksp = create_ksp(A, method=self.method, rtol=self.rtol, name="emsim_thermal", symmetric=True)  # c M + K
        else:
            # to round-off (not rtol): the start sets every later step, and CEM43, exponential in
            # T, would carry a 1e-10 error of the start into its 1e-12 digits
            ksp = create_ksp(A, method="cg", rtol=_NEAR_RTOL, name="emsim_thermal_near", python_pc=SolveWith(near))
        self._solvers[key] = (A, ksp)
        return ksp

    def _solve(self, ksp: PETSc.KSP, rhs: PETSc.Vec, out: PETSc.Vec) -> None:
        rhs.array[self._bc_owned] = 0.0  # the increment vanishes on the Dirichlet faces
        out.set(0.0)
        self.iterations.append(solve_checked(ksp, rhs, out, "thermal solve"))

    def _rhs(self, source_scale: float, heat_vector: PETSc.Vec | None = None) -> PETSc.Vec:
        """F = F_basal + source_scale * F_heat (a new vector); F_heat is ``heat_vector`` if given."""
        F = self._F0.copy()
        heat = self._FJ if heat_vector is None else heat_vector
        if heat is not None and source_scale != 0.0:
            F.axpy(source_scale, heat)
        return F

    def heat_vector(
        self, source: ufl.core.expr.Expr | None = None, surface_sources: Mapping[int, ufl.core.expr.Expr] | None = None
    ) -> PETSc.Vec:
        """Assemble the load vector [W] of a heat source, for ``heat_vector=`` of a solve.

        The heat enters every solve only through this vector, ``int Q v dx + sum int q v ds``,
        so that one problem (one assembly, one factorisation per step size) serves many
        sources (:mod:`emsim.solvers.thermal.basis`).

        Args:
            source: volumetric heat source [W/m^3] (UFL expression or Function), or None.
            surface_sources: surface heat sources [W/m^2] by facet tag (of the ``facet_tags``
                given to the problem).

        Returns:
            A PETSc vector (owned entries summed over the ranks); the caller destroys it.
        """
        v = ufl.TestFunction(self.V)
        ds = ufl.Measure("ds", domain=self.mesh, subdomain_data=self._facet_tags)
        form = fem.Constant(self.mesh, 0.0) * v * ufl.dx(domain=self.mesh)
        if source is not None:
            form = form + source * v * ufl.dx(domain=self.mesh)
        for tag, q in (surface_sources or {}).items():
            form = form + q * v * ds(int(tag))
        vec = fpetsc.assemble_vector(fem.form(form))
        vec.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        return vec

    # ------------------------------------------------------------------ public interface

    def steady_state(self, source_scale: float = 0.0, *, heat_vector: PETSc.Vec | None = None) -> fem.Function:
        """Solve the steady Pennes temperature [C] with the source times ``source_scale``.

        ``source_scale = 0`` gives the basal state (metabolism, perfusion, convection and the
        core temperature only).

        Args:
            source_scale: multiplies the volume and surface sources.
            heat_vector: a load vector of :meth:`heat_vector` used instead of the problem's
                own sources.

        Returns:
            The temperature, a Function named ``temperature_C``.

        Raises:
            SolverError: no Dirichlet face, no perfusion and no convection (undefined level).

        """
        if not self._well_posed:
            raise SolverError(
                "the steady state is undefined without a Dirichlet face, perfusion or convection"
            )
        self._assemble()
        T = fem.Function(self.V, name="temperature_C")
        T.x.array[:] = self.arterial_temperature_C
        T.x.array[self._bc_dofs] = self.dirichlet_temperature_C
        r = self._rhs(source_scale, heat_vector)
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
        T0: fem.Function,
        source_scale: float,
        session_s: float,
        time_step_s: float,
        *,
        progress: Progress | None = None,
        probes: np.ndarray | None = None,
        heat_vector: PETSc.Vec | None = None,
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
            heat_vector: a load vector of :meth:`heat_vector` used instead of the problem's
                own sources.

        Returns:
            The run's record.

        """
        if not (session_s > 0 and time_step_s > 0):
            raise InputError("session_s, time_step_s", (session_s, time_step_s), "must be > 0")
        progress = progress or _nothing
        self._assemble()
        n = max(1, math.ceil(session_s / time_step_s - 1e-9))
        dt = session_s / n
        stepper = _Stepper(self, dt, self._rhs(source_scale, heat_vector), bdf2=n > 1)
        T = fem.Function(self.V, name="temperature_C")
        T.x.array[:] = T0.x.array
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
        for step in range(n):
            stepper.advance(T, first=step == 0)
            Tn = T.x.array[:no]
            rise = Tn - T0o
            np.maximum(rise_peak.x.array[:no], rise, out=rise_peak.x.array[:no])
            rate = cem43_rate(Tn)
            cem.x.array[:no] += (dt / 60.0) * 0.5 * (rate_old + rate)  # trapezoidal dose
            rate_old = rate
            history[step + 1] = Tn[probes]
            skin_max[step + 1], rise_max[step + 1], cem_max[step + 1] = self._maxima(Tn, rise, cem.x.array[:no])
            if (step + 1) % every == 0 or step + 1 == n:
                progress(f"heating: {(step + 1) * dt / 60:.1f} of {session_s / 60:.1f} min")
        for f in (rise_peak, cem):
            f.x.scatter_forward()
        stepper.destroy()
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


def _mpi_max() -> MPI.Op:
    return MPI.MAX


class _Stepper:
    """One time step of :meth:`PennesProblem.run`: BDF2, started by extrapolated backward Euler.

    Each step solves for the increment d = (a M / dt + K)^-1 (F - K T^n [+ M (T^n - T^(n-1)) /
    (2 dt)]), zero on the Dirichlet face, with the matrices factorised once per coefficient.
    """

    def __init__(self, problem: PennesProblem, dt: float, F: PETSc.Vec, *, bdf2: bool) -> None:
        self.p, self.dt, self.F = problem, dt, F
        self.bdf2 = problem._solver(1.5 / dt) if bdf2 else None
        near = 1.5 / dt if bdf2 else None  # the start's solves preconditioned by the steps' factorisation
        self.half = problem._solver(2.0 / dt, near_per_s=near)
        self.full = problem._solver(1.0 / dt, near_per_s=near)
        self.r, self.w, self.m, self.d = (fpetsc.create_vector(problem.V) for _ in range(4))
        self.T_old = fem.Function(problem.V)
        self.T_half = fem.Function(problem.V)

    def _increment(self, ksp: PETSc.KSP, state: fem.Function, previous: fem.Function | None = None) -> None:
        """Set d = (c M + K)^-1 (F - K T^n [+ M (T^n - T^(n-1)) / (2 dt)])."""
        p, no = self.p, self.p.n_owned
        p._K.mult(state.x.petsc_vec, self.w)
        self.F.copy(self.r)
        self.r.axpy(-1.0, self.w)
        if previous is not None:
            self.w.array[:] = state.x.array[:no] - previous.x.array[:no]
            p._M.mult(self.w, self.m)
            self.r.axpy(0.5 / self.dt, self.m)
        p._solve(ksp, self.r, self.d)

    def advance(self, T: fem.Function, *, first: bool) -> None:
        """Advance ``T`` by one step in place (the first by 2 BE(dt/2)^2 - BE(dt))."""
        no, d = self.p.n_owned, self.d
        if first:
            self.T_half.x.array[:] = T.x.array
            for _ in range(2):
                self._increment(self.half, self.T_half)
                self.T_half.x.array[:no] += d.array_r
                self.T_half.x.scatter_forward()
            self._increment(self.full, T)
            self.T_old.x.array[:] = T.x.array
            T.x.array[:no] = 2.0 * self.T_half.x.array[:no] - T.x.array[:no] - d.array_r
        else:
            self._increment(self.bdf2, T, self.T_old)
            self.T_old.x.array[:] = T.x.array
            T.x.array[:no] += d.array_r
        T.x.scatter_forward()

    def destroy(self) -> None:
        """Free the work vectors (the factorisations stay with the problem)."""
        for vec in (self.r, self.w, self.m, self.d, self.F):
            vec.destroy()
