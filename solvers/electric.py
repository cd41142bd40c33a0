r"""Electro-quasistatic current flow with equipotential electrodes, by linearity.

Physics. In the tissue, gel and contact sublayers the potential phi [V] satisfies
div(S grad phi) = 0 with S the conductivity tensor [S/m]; outer faces are insulated
(S grad phi . n = 0) except the metal electrodes and, for a grounded channel, the deep face
(phi = 0).

Electrodes. Each electrode is an equipotential metal with one unknown potential V_e:

* on a gel pad, or bare without a contact impedance, phi = V_e on its metal face (exact
  Dirichlet condition);
* bare on the skin with a contact impedance r_c [ohm m^2], the stratum corneum is a Robin
  condition S grad phi . n = (V_e - phi) / r_c on the electrode face (exact normal resistance);
* under a gel pad, the contact impedance is a *thin layer*: the lower part of the pad (thickness
  h = ``contact_sublayer_fraction`` x gel thickness) carries gel and stratum corneum in series
  in the normal direction, sigma_n = h / (h / sigma_gel + r_c), while conducting like the gel
  along the skin, sigma_t = sigma_gel. Its normal resistance per area, h / sigma_n =
  h / sigma_gel + r_c, is exact (verified by the 1-D column); it tends to the interface
  condition as h / (pad size) -> 0.

Current control by linearity (lead fields). One matrix is assembled and one preconditioner set
up; for each electrode k the *unit field* phi_k solves the problem with V_k = 1 and every other
electrode (and the ground) at 0. The consistent (variational) currents I_ik leaving electrode i
in unit field k form the admittance matrix Y [S]. A channel's current pattern then fixes the
electrode potentials through a small system (tied anodes, tied cathodes, floating electrodes at
zero current), and the field is the superposition phi = sum_k V_k phi_k. This is the Schur
complement of the "one real unknown per electrode" mixed formulation onto the electrode
potentials, solved exactly, so CG + GAMG applies to a plain SPD matrix.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from ..errors import SolverError
from ..meshes.patch import PatchMesh, contact_sublayer_fraction
from ..models.case import Case
from ..models.electrodes import Channel
from .linear import assemble_lifted_rhs, create_ksp, resolve_method, solve_checked

__all__ = [
    "ChannelSolution",
    "ElectricProblem",
    "dirichlet_dofs",
    "material_conductivities",
    "volume_admittivities",
]

log = logging.getLogger(__name__)



def _tensor(across: complex, ratio: float, fibre) -> np.ndarray:
    """Conductivity tensor: `across` transverse to the fibre, `ratio * across` along it."""
    if fibre is None:
        return across * np.eye(3)
    f = np.asarray(fibre, dtype=float)
    return across * (np.eye(3) + (ratio - 1.0) * np.outer(f, f))


def volume_admittivities(case: Case, frequency_Hz: float, *, complex_valued: bool = False) -> dict[str, np.ndarray]:
    """Conductivity tensor [S/m] (3x3) of every tagged volume at ``frequency_Hz``.

    Keys are the mesh's volume names (``layer:LABEL``, ``gel:E``, ``contact:E``).

    * Tissues: the effective conductivity (``complex_valued=False``), or the complex
      admittivity sigma* = j w eps0 eps*(w) of the Cole-Cole model (``complex_valued=True``;
      constant-conductivity materials are then purely real). Anisotropic layers get
      sigma_across (I + (ratio - 1) f f^T).
    * Contact sublayers carry gel and stratum corneum in series along z: with y_c = 1/r_c
      (+ j w c_c when complex and a capacitance is given), sigma_z = h / (h / sigma_gel + 1 / y_c),
      and the gel's value along x and y.
    """
    w = 2 * np.pi * frequency_Hz
    dtype = np.complex128 if complex_valued else np.float64

    def value(tissue) -> complex:
        if complex_valued and tissue.dispersion is not None:
            from ..models.dispersion import GABRIEL_1996

            return complex(GABRIEL_1996[tissue.dispersion].complex_conductivity_S_per_m(frequency_Hz))
        return tissue.conductivity_at(frequency_Hz)

    out: dict[str, np.ndarray] = {}
    for layer in case.layers:
        t = _tensor(value(layer.tissue), layer.anisotropy_ratio, layer.fibre_direction)
        out[f"layer:{layer.label}"] = np.asarray(t, dtype=dtype)
    for e in case.electrodes:
        if e.gel is None:
            continue
        s = value(e.gel.material)
        out[f"gel:{e.name}"] = s * np.eye(3, dtype=dtype)
        if e.contact is not None:
            h = contact_sublayer_fraction * e.gel.thickness_m
            y = 1.0 / e.contact.resistance_ohm_m2
            if complex_valued and e.contact.capacitance_F_per_m2 is not None:
                y = y + 1j * w * e.contact.capacitance_F_per_m2
            t = s * np.eye(3, dtype=dtype)
            t[2, 2] = h / (h / s + 1.0 / y)
            out[f"contact:{e.name}"] = t
    return out


def material_conductivities(case: Case, frequency_Hz: float) -> dict[str, np.ndarray]:
    """Real conductivity tensors [S/m] of every tagged volume (the quasi-static solve)."""
    return volume_admittivities(case, frequency_Hz, complex_valued=False)


def dirichlet_dofs(case: Case, patch: PatchMesh, V, robin: set[str]) -> dict[str, np.ndarray]:
    """Local (block) dofs held by a Dirichlet condition, by electrode name (and ``"ground"``).

    Every electrode not in ``robin`` is an equipotential metal face; a grounded case also holds
    the deep face.
    """
    from dolfinx import fem

    mesh = patch.mesh
    fdim = mesh.topology.dim - 1
    mesh.topology.create_connectivity(fdim, mesh.topology.dim)
    names = [f"electrode:{e.name}" for e in case.electrodes if e.name not in robin]
    if case.grounded:
        names.append("bottom")
    out = {}
    for name in names:
        facets = patch.facet_tags.find(patch.surfaces[name])
        key = "ground" if name == "bottom" else name.split(":", 1)[1]
        out[key] = fem.locate_dofs_topological(V, fdim, facets)
    return out


@dataclass(frozen=True)
class ChannelSolution:
    """The field of one or more channels at their set currents.

    Attributes:
        potential: the potential phi [V] (a DOLFINx Function).
        electrode_potentials_V: potential of each electrode's metal [V], by name.
        electrode_currents_A: current leaving each electrode into the body [A], by name
            (consistent variational flux of ``potential``).
        ground_current_A: current leaving the grounded deep face [A] (0 when not grounded).
    """

    potential: object
    electrode_potentials_V: dict[str, float]
    electrode_currents_A: dict[str, float]
    ground_current_A: float


class ElectricProblem:
    """The electric problem of a case on its mesh: one assembly, unit fields, superposition.

    Args:
        case: the case (layers, electrodes, solver settings).
        patch: the tagged mesh of the case.
        frequency_Hz: frequency at which dispersive tissues are evaluated (default: the case's
            ``solver.quasi_static_frequency_Hz``).
    """

    def __init__(self, case: Case, patch: PatchMesh, *, frequency_Hz: float | None = None) -> None:
        import ufl
        from dolfinx import fem

        self.case = case
        self.patch = patch
        mesh = patch.mesh
        self.comm = mesh.comm
        self.frequency_Hz = frequency_Hz or case.solver.quasi_static_frequency_Hz
        self.V = fem.functionspace(mesh, ("Lagrange", case.mesh.degree))
        imap = self.V.dofmap.index_map
        self.dofs = imap.size_global * self.V.dofmap.index_map_bs
        self.names = [e.name for e in case.electrodes]

        self.sigma = material_conductivities(case, self.frequency_Hz)
        missing = set(self.sigma) ^ set(patch.volumes)
        if missing:
            raise SolverError(f"volumes and materials disagree: {sorted(missing)}")
        self.dx = ufl.Measure("dx", domain=mesh, subdomain_data=patch.cell_tags)
        self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=patch.facet_tags)
        self._S = {name: fem.Constant(mesh, tensor) for name, tensor in self.sigma.items()}
        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)

        # Electrodes: Robin (bare with contact) or Dirichlet (all others).
        self.robin: dict[str, float] = {}  # name -> conductance per area G [S/m^2]
        for e in case.electrodes:
            if e.gel is None and e.contact is not None:
                self.robin[e.name] = 1.0 / e.contact.resistance_ohm_m2
        self._dirichlet_dofs = dirichlet_dofs(case, patch, self.V, set(self.robin))
        all_dofs = np.unique(np.concatenate(list(self._dirichlet_dofs.values()) or [np.empty(0, np.int32)]))
        self._g = fem.Function(self.V)
        self._bc = fem.dirichletbc(self._g, all_dofs.astype(np.int32))

        a = sum(
            ufl.inner(self._S[name] * ufl.grad(u), ufl.grad(v)) * self.dx(patch.volumes[name])
            for name in self.sigma
        )
        for name, G in self.robin.items():
            a = a + fem.Constant(mesh, G) * u * v * self.ds(patch.surfaces[f"electrode:{name}"])
        self._a = fem.form(a)
        # RHS of a unit solve: Robin sources (Dirichlet values enter by lifting).
        self._robin_weight = {
            name: fem.Constant(mesh, 0.0) for name in self.robin
        }
        L = fem.Constant(mesh, 0.0) * v * ufl.dx
        for name, G in self.robin.items():
            L = L + self._robin_weight[name] * G * v * self.ds(patch.surfaces[f"electrode:{name}"])
        self._L = fem.form(L)
        # Residual form for consistent currents: r(v) = a(phi, v) - L(v).
        self._phi = fem.Function(self.V)
        res = sum(
            ufl.inner(self._S[name] * ufl.grad(self._phi), ufl.grad(v)) * self.dx(patch.volumes[name])
            for name in self.sigma
        )
        self._residual = fem.form(res)
        self._robin_current = {
            name: fem.form(
                fem.Constant(mesh, G) * (self._robin_weight[name] - self._phi)
                * self.ds(patch.surfaces[f"electrode:{name}"])
            )
            for name, G in self.robin.items()
        }  # fmt: skip
        self._indicator = {}
        for name, dofs in self._dirichlet_dofs.items():
            w = np.zeros(imap.size_local + imap.num_ghosts)
            w[dofs] = 1.0
            self._indicator[name] = w[: imap.size_local]

        self._ksp = None
        self._A = None
        self._unit: dict[str, object] | None = None
        self._Y: np.ndarray | None = None
        self.iterations: list[int] = []
        self.method = resolve_method(case.solver.method, self.dofs)

    # ------------------------------------------------------------------ linear algebra

    def _setup(self) -> None:
        """Assemble the matrix and set up the KSP and its preconditioner, once."""
        from dolfinx.fem import petsc as fpetsc

        self._A = fpetsc.assemble_matrix(self._a, bcs=[self._bc])
        self._A.assemble()
        self._ksp = create_ksp(self._A, method=self.method, rtol=self.case.solver.rtol, name="emsim_electric")
        self._b = fpetsc.create_vector(self.V)
        log.info("electric: %d dofs, %s", self.dofs, self.method)

    def _solve_unit(self, k: str):
        from dolfinx import fem

        self._g.x.array[:] = 0.0
        if k in self._dirichlet_dofs:
            self._g.x.array[self._dirichlet_dofs[k]] = 1.0
        for name, c in self._robin_weight.items():
            c.value = 1.0 if name == k else 0.0
        assemble_lifted_rhs(self._b, self._L, self._a, self._bc)
        phi = fem.Function(self.V, name=f"unit_potential_{k}")
        self.iterations.append(solve_checked(self._ksp, self._b, phi.x.petsc_vec, f"electric solve for electrode {k}"))
        phi.x.scatter_forward()
        return phi

    # ------------------------------------------------------------------ unit fields and Y

    @property
    def unit_fields(self) -> dict[str, object]:
        """Unit fields phi_k (V_k = 1 V, all other electrodes and ground 0 V), by electrode."""
        if self._unit is None:
            if self._ksp is None:
                self._setup()
            self._unit = {k: self._solve_unit(k) for k in self.names}
            for c in self._robin_weight.values():
                c.value = 0.0
        return self._unit

    def currents(self, phi, potentials: dict[str, float]) -> tuple[dict[str, float], float]:
        """Consistent currents [A] leaving each electrode (and the ground) for a field.

        Args:
            phi: a potential field solving the problem.
            potentials: the electrode potentials [V] that produced it (for Robin electrodes).

        Returns:
            Currents by electrode name, and the current leaving the ground face.
        """
        from dolfinx import fem
        from dolfinx.fem import petsc as fpetsc

        self._phi.x.array[:] = phi.x.array
        r = fpetsc.assemble_vector(self._residual)
        from petsc4py import PETSc

        r.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        local = r.array_r
        out: dict[str, float] = {}
        for name, w in self._indicator.items():
            out[name] = self.comm.allreduce(float(local @ w))
        r.destroy()
        for name, form in self._robin_current.items():
            self._robin_weight[name].value = potentials[name]
            out[name] = self.comm.allreduce(fem.assemble_scalar(form))
            self._robin_weight[name].value = 0.0
        ground = out.pop("ground", 0.0)
        return {n: out[n] for n in self.names}, ground

    def admittance(self) -> np.ndarray:
        """Admittance matrix Y [S]: Y[i, k] = current leaving electrode i in unit field k."""
        if self._Y is None:
            n = len(self.names)
            Y = np.zeros((n, n))
            for k, name in enumerate(self.names):
                pots = {m: float(m == name) for m in self.names}
                cur, _ = self.currents(self.unit_fields[name], pots)
                Y[:, k] = [cur[m] for m in self.names]
            self._Y = Y
        return self._Y

    # ------------------------------------------------------------------ channels

    def electrode_potentials(self, channel: Channel, current_A: float | None = None) -> np.ndarray:
        """Electrode potentials [V] that drive ``channel`` at ``current_A`` (default: its own).

        Anodes are tied together, cathodes are tied together (or the ground is the return),
        every other electrode floats (zero net current). The cathode potential is 0 V.
        """
        current = channel.current_A if current_A is None else current_A
        Y = self.admittance()
        index = {n: i for i, n in enumerate(self.names)}
        groups = [list(channel.anode)]
        if not channel.grounded:
            groups.append(list(channel.cathode))
        tied = set(channel.anode) | set(channel.cathode)
        groups += [[n] for n in self.names if n not in tied]
        T = np.zeros((len(self.names), len(groups)))
        for g, members in enumerate(groups):
            for n in members:
                T[index[n], g] = 1.0
        Yg = T.T @ Y @ T
        rhs = np.zeros(len(groups))
        rhs[0] = current
        keep = [g for g in range(len(groups)) if channel.grounded or g != 1]  # cathode at 0 V
        Vg = np.zeros(len(groups))
        Vg[keep] = np.linalg.solve(Yg[np.ix_(keep, keep)], rhs[keep])
        return T @ Vg

    def solve(self, channels: tuple[Channel, ...] | list[Channel] | None = None, *, scale: float = 1.0) -> ChannelSolution:
        """Superpose the channels at their currents times ``scale``.

        Args:
            channels: the channels to drive together (default: all of the case's).
            scale: multiplies every channel's current (linearity).

        Returns:
            The potential field, electrode potentials and consistent currents.
        """
        from dolfinx import fem

        channels = self.case.channels if channels is None else channels
        V = np.zeros(len(self.names))
        for ch in channels:
            V += self.electrode_potentials(ch, ch.current_A * scale)
        phi = fem.Function(self.V, name="potential")
        for k, name in enumerate(self.names):
            phi.x.array[:] += V[k] * self.unit_fields[name].x.array
        pots = dict(zip(self.names, V.tolist(), strict=True))
        cur, ground = self.currents(phi, pots)
        return ChannelSolution(
            potential=phi, electrode_potentials_V=pots, electrode_currents_A=cur, ground_current_A=ground
        )

    def close(self) -> None:
        """Free the PETSc objects."""
        if self._ksp is not None:
            self._ksp.destroy()
            self._A.destroy()
            self._b.destroy()
            self._ksp = None
