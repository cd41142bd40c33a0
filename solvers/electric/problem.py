r"""Electro-quasistatic current flow with equipotential electrodes, by linearity.

Physics. In the tissue, gel and contact sublayers the potential phi [V] satisfies
div(S grad phi) = 0 with S the conductivity tensor [S/m] (:mod:`emsim.solvers.electric.conductivity`);
outer faces are insulated (S grad phi . n = 0) except the metal electrodes and, for a grounded
channel, the deep face (phi = 0).

Electrodes (:mod:`emsim.solvers.electric.electrodes`): equipotential metal, a Dirichlet face on a gel pad
or bare without contact, a Robin condition for a bare electrode with a contact impedance; under
a gel pad the contact impedance is a *thin layer*, the contact sublayer, conducting only across it (exact normal resistance,
verified by the 1-D column; it tends to the interface condition as h / (pad size) -> 0).

Current control by linearity (lead fields). One matrix is assembled and one preconditioner set
up; one unit solve per electrode gives the admittance matrix Y; each channel's field per ampere
is then a superposition of the unit fields (:meth:`ElectricProblem.channel_unit_fields`), and any
set of channel currents is a superposition of those, with no further solve.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fpetsc
from petsc4py import PETSc

from ...errors import SolverError
from ...io.process import resident_memory_MB
from ...meshes.patch import PatchMesh
from ...models.case import Case
from ...models.electrodes import Channel
from ..linalg.ksp import (
    ELECTRIC_MUMPS_MAX_DOFS,
    assemble_lifted_rhs,
    create_ksp,
    resolve_method,
    solve_checked,
)
from ..linalg.pmg import LowOrderCoarse
from .conductivity import form_metadata, form_tensor, pad_normals, volume_admittivities
from .electrodes import ElectrodeSystem, channel_potentials

__all__ = ["ChannelSolution", "ElectricProblem"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ChannelSolution:
    """The field of one or more channels at given currents.

    Attributes:
        potential: the potential phi [V] (a DOLFINx Function).
        electrode_potentials_V: potential of each electrode's metal [V], by name.
        electrode_currents_A: current leaving each electrode into the body [A], by name
            (consistent variational flux of ``potential``).
        ground_current_A: current leaving the grounded deep face [A] (0 when not grounded).
    """

    potential: Any
    electrode_potentials_V: dict[str, float]
    electrode_currents_A: dict[str, float]
    ground_current_A: float


def _note_rss(into: dict[str, float], peak: dict[str, float], stage: str) -> None:
    """Record the process's resident set size and its peak so far [MB] under ``stage``."""
    now, high = resident_memory_MB()
    if now is not None:
        into[stage] = now
    if high is not None:
        peak[stage] = high


class ElectricProblem:
    """The electric problem of a case on its mesh: one assembly, unit fields, superposition.

    Args:
        case: the case (layers, electrodes, solver settings).
        patch: the tagged mesh of the case.
        frequency_Hz: frequency at which dispersive tissues are evaluated (default: the case's
            ``solver.quasi_static_frequency_Hz``).
    """

    def __init__(self, case: Case, patch: PatchMesh, *, frequency_Hz: float | None = None) -> None:
        self.case, self.patch = case, patch
        mesh = patch.mesh
        self.comm = mesh.comm
        self.frequency_Hz = frequency_Hz or case.solver.quasi_static_frequency_Hz
        self.V = fem.functionspace(mesh, ("Lagrange", case.mesh.degree))
        self.dofs = self.V.dofmap.index_map.size_global
        self.names = [e.name for e in case.electrodes]
        self.sigma = volume_admittivities(case, self.frequency_Hz, normals=pad_normals(case, patch))
        missing = set(self.sigma) ^ set(patch.volumes)
        if missing:
            raise SolverError(f"volumes and materials disagree: {sorted(missing)}")
        self.dx = ufl.Measure(
            "dx", domain=mesh, subdomain_data=patch.cell_tags, metadata=form_metadata(patch, case.mesh.degree)
        )
        self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=patch.facet_tags)
        self._S = {name: form_tensor(patch, fem.Constant(mesh, tensor)) for name, tensor in self.sigma.items()}
        robin = {e.name: 1.0 / e.contact.resistance_ohm_m2 for e in case.electrodes if e.gel is None and e.contact}
        self.electrodes = ElectrodeSystem(case, patch, self.V, robin)
        self.robin: dict[str, float] = {k: float(v.real) for k, v in self.electrodes.robin.items()}
        self._g = fem.Function(self.V)
        self._bc = fem.dirichletbc(self._g, self.electrodes.dirichlet_blocks)

        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self._a = fem.form(self.form(u, v))
        # RHS of a unit solve: Robin sources (Dirichlet values enter by lifting).
        self._robin_weight = {name: fem.Constant(mesh, 0.0) for name in self.robin}
        L = fem.Constant(mesh, 0.0) * v * ufl.dx
        for name, G in self.robin.items():
            L = L + self._robin_weight[name] * G * v * self.ds(self.electrodes.surface(name))
        self._L = fem.form(L)
        # Residual form for consistent currents: r(v) = a(phi, v) - L(v).
        self._phi = fem.Function(self.V)
        self._residual = fem.form(self.energy(self._phi, v))
        self._robin_current = {
            name: fem.form(
                fem.Constant(mesh, G) * (self._robin_weight[name] - self._phi) * self.ds(self.electrodes.surface(name))
            )
            for name, G in self.robin.items()
        }
        # PETSc KSP, matrix and vector (untyped), set up on first use
        self._ksp: Any = None
        self._A: Any = None
        self._b: Any = None
        self._unit: dict[str, Any] | None = None
        self._Y: np.ndarray | None = None
        self.iterations: list[int] = []
        #: Wall time [s] of the matrix assembly, the solver setup (factorisation or
        #: preconditioner) and the unit solves, once they have run (for the benchmarks).
        self.timings_s: dict[str, float] = {}
        #: Resident memory of this process [MB] after the same stages (``after_assembly``,
        #: ``after_solver_setup``, ``after_unit_solves``), read from /proc; empty where /proc is
        #: absent. For the benchmarks' memory breakdown.
        self.rss_MB: dict[str, float] = {}
        #: The process's peak resident memory so far [MB] at the same stages.
        self.peak_rss_MB: dict[str, float] = {}
        # CG + p-multigrid at degree 2 and 3 (GAMG on the degree-1 operator: a fraction of GAMG's
        # set-up memory on the degree-p one, and faster; docs/performance.md); "cg-gamg" by name
        # keeps GAMG on the degree-p operator
        pmg = case.mesh.degree >= 2 and case.solver.method != "cg-gamg"
        self.method = resolve_method(
            case.solver.method, self.dofs, degree=case.mesh.degree, iterative="cg-pmg" if pmg else "cg-gamg",
            limits=ELECTRIC_MUMPS_MAX_DOFS[patch.mesher],
        )  # fmt: skip
        self._coarse: LowOrderCoarse | None = None
        #: Global dofs of the p-multigrid's degree-1 level (method "cg-pmg", once set up; else None).
        self.coarse_dofs: int | None = None

    def energy(self, u: ufl.core.expr.Expr, v: ufl.core.expr.Expr) -> ufl.Form:
        """The UFL form sum over volumes of (S grad u) . grad v dx."""
        return sum(
            ufl.inner(self._S[name] * ufl.grad(u), ufl.grad(v)) * self.dx(self.patch.volumes[name])
            for name in self.sigma
        )

    def form(self, u: ufl.core.expr.Expr, v: ufl.core.expr.Expr) -> ufl.Form:
        """The bilinear form of the problem: :meth:`energy` and the bare electrodes' Robin terms."""
        a = self.energy(u, v)
        for name, G in self.robin.items():
            a = a + fem.Constant(self.patch.mesh, G) * u * v * self.ds(self.electrodes.surface(name))
        return a

    # ------------------------------------------------------------------ linear algebra

    def _setup(self) -> None:
        """Assemble the matrix and set up the KSP and its preconditioner, once."""
        t0 = time.perf_counter()
        self._A = fpetsc.assemble_matrix(self._a, bcs=[self._bc])
        self._A.assemble()
        t1 = time.perf_counter()
        _note_rss(self.rss_MB, self.peak_rss_MB, "after_assembly")
        if self.method == "cg-pmg":
            self._coarse = LowOrderCoarse(self.V, self.form, list(self.electrodes.dirichlet_facets.values()))
            self.coarse_dofs = self._coarse.dofs
            log.info("electric: p-multigrid coarse level of %d degree-1 dofs", self.coarse_dofs)
        # the form is symmetric and the Dirichlet rows and columns go alike: MUMPS by Cholesky
        self._ksp = create_ksp(
            self._A, method=self.method, rtol=self.case.solver.rtol, name="emsim_electric", symmetric=True,
            coarse=self._coarse,
        )  # fmt: skip
        self._b = fpetsc.create_vector(self.V)
        self.timings_s["assembly_s"] = t1 - t0
        self.timings_s["solver_setup_s"] = time.perf_counter() - t1
        _note_rss(self.rss_MB, self.peak_rss_MB, "after_solver_setup")
        log.info("electric: %d dofs, %s", self.dofs, self.method)

    def _solve_unit(self, k: str) -> fem.Function:
        self.electrodes.set_unit_dirichlet(self._g, k)
        for name, c in self._robin_weight.items():
            c.value = 1.0 if name == k else 0.0
        assemble_lifted_rhs(self._b, self._L, self._a, self._bc)
        phi = fem.Function(self.V, name=f"unit_potential_{k}")
        self.iterations.append(solve_checked(self._ksp, self._b, phi.x.petsc_vec, f"electric solve for electrode {k}"))
        phi.x.scatter_forward()
        return phi

    # ------------------------------------------------------------------ unit fields and Y

    @property
    def unit_fields(self) -> dict[str, fem.Function]:
        """Unit fields phi_k (V_k = 1 V, all other electrodes and ground 0 V), by electrode."""
        if self._unit is None:
            if self._ksp is None:
                self._setup()
            t0 = time.perf_counter()
            self._unit = {k: self._solve_unit(k) for k in self.names}
            self.timings_s["unit_solves_s"] = time.perf_counter() - t0
            for c in self._robin_weight.values():
                c.value = 0.0
            # every later field is a superposition of these: the matrix, its factors or
            # preconditioner are not needed again, and freed before the post-processing builds
            # its operators (at 787k dofs, degree 3: 650 MB of matrix that set the peak)
            self.close()
            _note_rss(self.rss_MB, self.peak_rss_MB, "after_unit_solves")
        return self._unit

    def currents(self, phi: fem.Function, potentials: dict[str, float]) -> tuple[dict[str, float], float]:
        """Consistent currents [A] leaving each electrode (and the ground) for a field.

        Args:
            phi: a potential field solving the problem.
            potentials: the electrode potentials [V] that produced it (for Robin electrodes).

        Returns:
            Currents by electrode name, and the current leaving the ground face.
        """
        self._phi.x.array[:] = phi.x.array
        r = fpetsc.assemble_vector(self._residual)
        r.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        out = self.electrodes.dirichlet_currents(r, self.comm)
        r.destroy()
        for name, form in self._robin_current.items():
            self._robin_weight[name].value = potentials[name]
            out[name] = self.comm.allreduce(fem.assemble_scalar(form))
            self._robin_weight[name].value = 0.0
        ground = out.pop("ground", 0.0)
        return {n: float(np.real(out[n])) for n in self.names}, float(np.real(ground))

    def admittance(self) -> np.ndarray:
        """Admittance matrix Y [S]: Y[i, k] = current leaving electrode i in unit field k."""
        if self._Y is None:
            Y = np.zeros((len(self.names), len(self.names)))
            for k, name in enumerate(self.names):
                cur, _ = self.currents(self.unit_fields[name], {m: float(m == name) for m in self.names})
                Y[:, k] = [cur[m] for m in self.names]
            self._Y = Y
        return self._Y

    # ------------------------------------------------------------------ channels

    def electrode_potentials(self, channel: Channel, current_A: float | None = None) -> np.ndarray:
        """Electrode potentials [V] that drive ``channel`` at ``current_A`` (default: its own)."""
        current = channel.current_A if current_A is None else current_A
        return channel_potentials(self.admittance(), self.names, channel, current)

    def combine(self, potentials: Sequence[float] | np.ndarray, name: str = "potential") -> fem.Function:
        """The field sum_k V_k phi_k for electrode potentials V_k [V] (a new Function)."""
        phi = fem.Function(self.V, name=name)
        for vk, k in zip(potentials, self.names, strict=True):
            if vk != 0.0:
                phi.x.array[:] += vk * self.unit_fields[k].x.array
        return phi

    def solve(self, channels: Sequence[Channel] | None = None, *, scale: float = 1.0) -> ChannelSolution:
        """Superpose the channels at their currents times ``scale``.

        Args:
            channels: the channels to drive together (default: all of the case's).
            scale: multiplies every channel's current (linearity).

        Returns:
            The potential field, electrode potentials and consistent currents.
        """
        channels = self.case.channels if channels is None else channels
        V = np.zeros(len(self.names))
        for ch in channels:
            V += self.electrode_potentials(ch, ch.current_A * scale)
        phi = self.combine(V)
        pots = dict(zip(self.names, V.tolist(), strict=True))
        cur, ground = self.currents(phi, pots)
        return ChannelSolution(
            potential=phi, electrode_potentials_V=pots, electrode_currents_A=cur, ground_current_A=ground
        )

    def channel_unit_solutions(self) -> dict[str, ChannelSolution]:
        """The solution of each channel alone at 1 A (its lead field), by channel name."""
        out = {}
        for ch in self.case.channels:
            V = self.electrode_potentials(ch, 1.0)
            phi = self.combine(V, name=f"potential_per_A_{ch.name}")
            pots = dict(zip(self.names, V.tolist(), strict=True))
            cur, ground = self.currents(phi, pots)
            out[ch.name] = ChannelSolution(phi, pots, cur, ground)
        return out

    def volume_power(self, phi_a: fem.Function, phi_b: fem.Function) -> dict[str, float]:
        """Integral of grad phi_a . S grad phi_b over each volume [W for V^2], by volume name."""
        out = {}
        for name in self.sigma:
            integrand = ufl.inner(self._S[name] * ufl.grad(phi_a), ufl.grad(phi_b))
            form = fem.form(integrand * self.dx(self.patch.volumes[name]))
            out[name] = self.comm.allreduce(fem.assemble_scalar(form))
        return out

    def robin_power(self, a: ChannelSolution, b: ChannelSolution) -> dict[str, float]:
        """Integral of G (V_a - phi_a)(V_b - phi_b) over each bare electrode's contact [W for V^2].

        The heat dissipated in the stratum corneum of a bare electrode with a contact impedance,
        by ``contact:E``.
        """
        out = {}
        for name, G in self.robin.items():
            dva = a.electrode_potentials_V[name] - a.potential
            dvb = b.electrode_potentials_V[name] - b.potential
            form = fem.form(G * dva * dvb * self.ds(self.electrodes.surface(name)))
            out[f"contact:{name}"] = self.comm.allreduce(fem.assemble_scalar(form))
        return out

    def close(self) -> None:
        """Free the PETSc objects (the unit fields stay: done once they are solved)."""
        if self._ksp is not None:
            self._ksp.destroy()
            self._A.destroy()
            self._b.destroy()
            self._ksp = None
        if self._coarse is not None:
            self._coarse.destroy()
            self._coarse = None
