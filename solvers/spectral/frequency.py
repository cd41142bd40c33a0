r"""Frequency-domain electro-quasistatics and the periodic steady-state response to a waveform.

Physics. At angular frequency w the potential phasor phi = u_re + j u_im solves
div(S* grad phi) = 0 with the complex admittivity S* = S_re + j S_im [S/m] of every volume
(Gabriel 1996 Cole-Cole tissues, sigma* = j w eps0 eps*(w); constant-conductivity materials
are real; contact sublayers carry the gel and the stratum corneum R_c || C_c in series along
z, see :func:`emsim.solvers.electric.conductivity.volume_admittivities`). Bare electrodes with a contact
take the Robin condition S* grad phi . n = G (V_e - phi) with G = 1/r_c + j w c_c [S/m^2].

Real 2x2 block form. PETSc is real here, so the complex problem is written for the pair
(u_re, u_im) in a blocked Lagrange space:

    a((u_re, u_im), (v_re, v_im)) = (S_re grad u_re - S_im grad u_im, grad v_re)
                                  + (S_im grad u_re + S_re grad u_im, grad v_im)

(plus the same pattern for the Robin terms), which is exactly the real and imaginary parts of the
complex weak form. The matrix is not symmetric. Every path but one solves it by FGMRES with the
PRESB block preconditioner (two solves with the symmetric positive definite K_r + K_i per
application; see :class:`~emsim.solvers.linalg.presb.PresbPreconditioner`), to ``solver.rtol``:

* ``solver.method = "auto"`` up to :data:`emsim.solvers.linalg.ksp.MUMPS_MAX_DOFS`: the inner
  solves by a MUMPS Cholesky factorisation of K_r + K_i (method ``"presb-mumps"``). Measured on
  the default cheek case (37,686 dofs): 0.16 s to refactorise and 5-9 outer iterations per unit
  solve, against 0.85 s for the block matrix's LU refactorisation; the factor holds 4.8M entries
  (52 MB) against the LU's 36.5M (336 MB);
* above it, or ``"cg-gamg"``: the inner solves by CG + GAMG (method ``"presb"``);
* ``"mumps"``, asked for by name: the block matrix factorised by MUMPS LU once per frequency,
  reused for every electrode's unit right-hand side (a direct solve, the reference the tests
  hold the others to).

The PRESB paths are set up once per frequency; a waveform sweep
shares the matrix, the preconditioner (GAMG interpolation reused, or the Cholesky analysis) and
the KSP across its frequencies and starts every solve from the field of the solved frequency
nearest in log f (:class:`~emsim.solvers.linalg.presb.SweepState`). From its first complex
frequency on, a sweep does not assemble the matrix again: the matrix is linear in the
admittivities, so it combines matrices assembled once
(:class:`~emsim.solvers.spectral.affine.AffineBlockMatrix`, checked against that frequency's
assembly). Unit fields,
consistent currents and the complex admittance matrix Y(f) [S] follow the d.c. problem (lead
fields, :mod:`emsim.solvers.electric.electrodes`: one unit solve per electrode, any channel set by
superposition). Frequency 0 means d.c.: the
real conductivities at ``solver.quasi_static_frequency_Hz`` and G = 1/r_c (the capacitance
blocks nothing at d.c., the resistive path carries it).

The periodic steady-state response to a waveform, built on these problems, is in
:mod:`emsim.solvers.spectral.waveform`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fpetsc
from petsc4py import PETSc

from ...errors import InputError, SolverError
from ...meshes.patch import PatchMesh
from ...models.case import Case
from ..electric.conductivity import (
    form_metadata,
    form_tensor,
    pad_normals,
    point_tensors,
    volume_admittivities,
)
from ..electric.electrodes import ElectrodeSystem, P1CellGradient, cell_gradients, current_density
from ..electric.points import point_gradients
from ..linalg.ksp import assemble_lifted_rhs, create_ksp, resolve_method, solve_checked
from ..linalg.presb import PresbPreconditioner, SweepState
from .affine import AffineBlockMatrix

__all__ = ["FrequencyProblem"]

log = logging.getLogger(__name__)


class FrequencyProblem:
    """The electric problem at one frequency in real 2x2 block form, with unit fields.

    Args:
        case: the case.
        patch: its tagged mesh.
        frequency_Hz: frequency [Hz], >= 0 (0: d.c., see the module doc).
        sweep: optional :class:`~emsim.solvers.linalg.presb.SweepState` shared by the problems of one
            frequency sweep: they then share the function space, the pad normals, the matrix
            (same sparsity, filled in place from the sweep's affine split, or re-assembled), the
            PRESB preconditioner and the KSPs, and
            start each unit solve from the unit field of the solved frequency nearest in log f.
            ``close`` leaves it open.
    """

    def __init__(self, case: Case, patch: PatchMesh, frequency_Hz: float, *, sweep: SweepState | None = None) -> None:
        if not math.isfinite(frequency_Hz) or frequency_Hz < 0:
            raise InputError("frequency_Hz", frequency_Hz, "must be a finite number >= 0")
        self.case, self.patch, self.frequency_Hz = case, patch, float(frequency_Hz)
        mesh = patch.mesh
        self.comm = mesh.comm
        self._sweep = sweep
        if sweep is not None and sweep.V is None:
            sweep.V = fem.functionspace(mesh, ("Lagrange", case.mesh.degree, (2,)))
        self.V = sweep.V if sweep is not None else fem.functionspace(mesh, ("Lagrange", case.mesh.degree, (2,)))
        imap = self.V.dofmap.index_map
        self.dofs = imap.size_global * 2
        self.names = [e.name for e in case.electrodes]
        w = 2 * np.pi * self.frequency_Hz
        normals = sweep.normals if sweep is not None and sweep.normals is not None else pad_normals(case, patch)
        if sweep is not None:
            sweep.normals = normals
        if self.frequency_Hz == 0:
            f_eval, complex_valued = case.solver.quasi_static_frequency_Hz, False
        else:
            f_eval, complex_valued = self.frequency_Hz, True
        adm = volume_admittivities(case, f_eval, complex_valued=complex_valued, normals=normals)
        self.admittivity = {k: np.asarray(v, dtype=complex) for k, v in adm.items()}
        missing = set(self.admittivity) ^ set(patch.volumes)
        if missing:
            raise SolverError(f"volumes and materials disagree: {sorted(missing)}")
        self.dx = ufl.Measure(
            "dx", domain=mesh, subdomain_data=patch.cell_tags, metadata=form_metadata(patch, case.mesh.degree)
        )
        self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=patch.facet_tags)
        robin: dict[str, complex] = {}
        for e in case.electrodes:
            if e.gel is None and e.contact is not None:
                g: complex = 1.0 / e.contact.resistance_ohm_m2
                if self.frequency_Hz > 0 and e.contact.capacitance_F_per_m2 is not None:
                    g = g + 1j * w * e.contact.capacitance_F_per_m2
                robin[e.name] = complex(g)
        self.electrodes = ElectrodeSystem(case, patch, self.V, robin)
        self.robin = self.electrodes.robin
        self._bc_blocks = self.electrodes.dirichlet_blocks
        self._g = fem.Function(self.V)
        self._bc = fem.dirichletbc(self._g, self._bc_blocks)
        if sweep is not None and sweep.forms is not None:
            self._forms = sweep.forms  # the same forms at every frequency: only their constants change
            self._forms.set_values(self.admittivity, self.robin)
        else:
            self._forms = _BlockForms(patch, self.V, self.dx, self.ds, self.electrodes, self.admittivity, self.robin)
            if sweep is not None:
                sweep.forms = self._forms
        forms = self._forms
        self._phi, self._weight, self._robin_current = forms.phi, forms.weight, forms.robin_current
        self._a, self._L, self._residual = forms.a, forms.L, forms.residual
        self._ksp: Any = None  # a PETSc KSP (untyped), set up on first use
        self._presb: PresbPreconditioner | None = None
        self._unit: dict[str, object] | None = None
        self._Y: np.ndarray | None = None
        # auto: PRESB with exact inner solves (see the module doc); "mumps" by name: the block LU
        self.method = resolve_method(case.solver.method, self.dofs, iterative="presb", direct="presb-mumps")
        self._presb_path = self.method in ("presb", "presb-mumps")
        self.iterations: list[int] = []

    def _setup(self) -> None:
        self._A: Any
        # The block LU (method "mumps") shares the matrix and its factorisation's analysis between
        # the frequencies > 0 of a sweep only, so that d.c. keeps its own real factorisation; the
        # PRESB paths share one matrix with d.c. too (the pattern is the forms', whatever the values).
        presb = self._presb_path
        sweep = self._sweep if presb or self.frequency_Hz > 0 else None
        affine = sweep.affine if sweep is not None else None
        if sweep is not None and sweep.A is not None:
            self._A = sweep.A  # same sparsity at every frequency: filled or re-assembled in place
            if affine is None or not affine.fill(self._A, self.admittivity, self.robin):
                self._A.zeroEntries()
                fpetsc.assemble_matrix(self._A, self._a, bcs=[self._bc])
                self._A.assemble()
        else:
            self._A = fpetsc.assemble_matrix(self._a, bcs=[self._bc])
            self._A.assemble()
        if sweep is not None and affine is None and self.frequency_Hz > 0:
            # the first complex frequency: the matrices of the affine split, checked against this assembly
            sweep.affine = AffineBlockMatrix(
                self.patch, self.V, self.case.mesh.degree, {k: self.patch.volumes[k] for k in self.admittivity},
                {n: self.electrodes.surface(n) for n in self.robin}, self._bc, self._bc_blocks, self._A, self.admittivity,
                self.robin,
            )
        # Dirichlet rows get the mean diagonal of the other rows instead of 1, so that the
        # relative residual of the iterative path measures the physics, not the identity rows.
        diag = self._A.getDiagonal()
        n_owned = self.V.dofmap.index_map.size_local
        owned = self._bc_blocks[self._bc_blocks < n_owned]
        rows = np.concatenate([2 * owned, 2 * owned + 1])
        values = diag.array.copy()
        free = np.ones(len(values), dtype=bool)
        free[rows] = False
        total = self.comm.allreduce(float(np.abs(values[free]).sum()))
        count = self.comm.allreduce(int(free.sum()))
        self._bc_scale = total / count if count else 1.0
        values[rows] = self._bc_scale
        diag.array[:] = values
        self._A.setDiagonal(diag)
        self._A.assemble()
        diag.destroy()
        if sweep is not None and sweep.ksp is not None and sweep.presb is not None:
            self._presb = sweep.presb
            if self._presb is not None:
                self._presb.update(self._A)
            ksp = sweep.ksp
            ksp.setOperators(self._A)
        elif sweep is not None and sweep.ksp is not None:
            # MUMPS within a sweep: the same matrix object, re-assembled in place with the same
            # sparsity, so PETSc's LU set-up refactorises numerically only (the ordering and the
            # symbolic analysis of the first frequency are reused; a new KSP per frequency redid
            # both and kept every earlier factorisation alive until the sweep closed).
            ksp = sweep.ksp
            ksp.setOperators(self._A)
            ksp.setUp()
        elif presb:
            self._presb = PresbPreconditioner(
                self._A, self.comm, reuse_interpolation=sweep is not None, direct=self.method == "presb-mumps"
            )
            ksp = create_ksp(
                self._A, method="fgmres", rtol=self.case.solver.rtol, name="emsim_frequency",
                python_pc=self._presb, max_it=500,
            )  # fmt: skip
            if sweep is not None:
                sweep.A, sweep.presb, sweep.ksp = self._A, self._presb, ksp
        else:
            # MUMPS: within a sweep the matrix keeps its sparsity, so the KSP set up on it
            # refactorises numerically only (the ordering and symbolic analysis are reused).
            ksp = create_ksp(self._A, method="mumps", name="emsim_frequency")
            if sweep is not None:
                sweep.A, sweep.ksp = self._A, ksp
        self._ksp = ksp
        if sweep is not None and sweep.b is None:
            sweep.b = fpetsc.create_vector(self.V)
        self._b = sweep.b if sweep is not None else fpetsc.create_vector(self.V)
        log.info("frequency %.4g Hz: %d dofs (2x2 block), %s", self.frequency_Hz, self.dofs, self.method)

    def _solve_unit(self, k: str) -> fem.Function:
        self.electrodes.set_unit_dirichlet(self._g, k)  # V_k = 1 + 0j
        for n, c in self._weight.items():
            c.value = 1.0 if n == k else 0.0
        assemble_lifted_rhs(self._b, self._L, self._a, self._bc, diagonal=self._bc_scale)
        phi = fem.Function(self.V, name=f"unit_phasor_{k}")
        what = f"frequency solve at {self.frequency_Hz:g} Hz, electrode {k}"
        presb = self._presb_path
        # d.c. is solved with the conductivities at the quasi-static frequency (> 0): its place in log f
        at = self.frequency_Hz or self.case.solver.quasi_static_frequency_Hz
        solved = self._sweep.previous.get(k, {}) if self._sweep is not None and presb else {}
        if solved:
            # The unit field varies smoothly with log f: start from the nearest solved frequency's
            # (the sweep's adaptive frequencies fall between earlier ones). The outer tolerance
            # stays relative to |b| (PETSc's default test with a nonzero guess), so the accuracy
            # is the same as from a zero guess.
            nearest = min(solved, key=lambda f: abs(math.log(f / at)))
            phi.x.array[:] = solved[nearest]
        self._ksp.setInitialGuessNonzero(bool(solved))
        self.iterations.append(solve_checked(self._ksp, self._b, phi.x.petsc_vec, what))
        phi.x.scatter_forward()
        if self._sweep is not None and presb:
            store = self._sweep.previous.setdefault(k, {})
            # a guess only: single precision halves what a sweep keeps; the real d.c. field does
            # not replace a complex field at its quasi-static frequency (10 Hz, the band's start)
            if self.frequency_Hz > 0 or at not in store:
                store[at] = phi.x.array.astype(np.float32)
        return phi

    @property
    def unit_fields(self) -> dict[str, fem.Function]:
        """Unit phasor fields (V_k = 1 V, others and ground 0 V): blocked (re, im) Functions."""
        return self.unit_fields_of(self.names)

    def unit_fields_of(self, names: Sequence[str]) -> dict[str, fem.Function]:
        """The unit fields of the electrodes ``names`` only (solved on first use)."""
        if self._unit is None:
            self._unit = {}
        missing = [k for k in self.names if k in names and k not in self._unit]
        if missing:
            if self._ksp is None:
                self._setup()
            for k in missing:
                self._unit[k] = self._solve_unit(k)
            for c in self._weight.values():
                c.value = 0.0
        return {k: self._unit[k] for k in self.names if k in names}

    def currents(self, phi: fem.Function, potentials: dict[str, complex]) -> dict[str, complex]:
        """Consistent complex currents [A] leaving each electrode for a phasor field."""
        self._phi.x.array[:] = phi.x.array
        r = fpetsc.assemble_vector(self._residual)
        r.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        out = self.electrodes.dirichlet_currents(r, self.comm)
        r.destroy()
        for n, (fr, fi) in self._robin_current.items():
            # I = integral G (V_e - phi) is affine in V_e: evaluate at V_e = 0 and V_e = 1.
            values = []
            for weight in (0.0, 1.0):
                self._weight[n].value = weight
                values.append(
                    complex(self.comm.allreduce(fem.assemble_scalar(fr)), self.comm.allreduce(fem.assemble_scalar(fi)))
                )
            self._weight[n].value = 0.0
            out[n] = values[0] + (values[1] - values[0]) * potentials[n]
        out.pop("ground", None)
        return {n: out[n] for n in self.names}

    def admittance(self, columns: Sequence[str] | None = None) -> np.ndarray:
        """Complex admittance matrix Y(f) [S]: current leaving electrode i in unit field k.

        Args:
            columns: electrode names whose columns are needed (default all); the other columns
                are returned as 0 without a solve (an electrode held at 0 V needs none).
        """
        columns = self.names if columns is None else list(columns)
        if self._Y is None:
            self._Y = np.zeros((len(self.names), len(self.names)), dtype=complex)
            self._Y_done: set[str] = set()
        fields = self.unit_fields_of(columns)
        for k, name in enumerate(self.names):
            if name in fields and name not in self._Y_done:
                cur = self.currents(fields[name], {m: complex(m == name) for m in self.names})
                self._Y[:, k] = [cur[m] for m in self.names]
                self._Y_done.add(name)
        return self._Y.copy()

    def combine(self, potentials: np.ndarray) -> fem.Function:
        """The phasor field sum_k V_k phi_k (blocked Function) for complex electrode potentials."""
        z = np.zeros(self.V.dofmap.index_map.size_local + self.V.dofmap.index_map.num_ghosts, dtype=np.complex128)
        for vk, name in zip(potentials, self.names, strict=True):
            if vk == 0:
                continue  # an electrode at 0 V contributes nothing (its unit field may be unsolved)
            arr = self.unit_fields_of([name])[name].x.array
            z += vk * (arr[0::2] + 1j * arr[1::2])
        phi = fem.Function(self.V, name="phasor")
        phi.x.array[0::2] = z.real
        phi.x.array[1::2] = z.imag
        return phi

    def cell_fields(self, phi: fem.Function) -> tuple[np.ndarray, np.ndarray]:
        """Complex DG0 field E = -grad phi [V/m] and current density J = S* E [A/m^2] per cell."""
        gradient = P1CellGradient.of(self.patch.mesh) if self.case.mesh.degree == 1 else None
        if gradient is None:
            re, im = cell_gradients(self.patch.mesh, [phi[0], phi[1]])
            E = re + 1j * im
        else:
            dofs = self.V.dofmap.list
            E = -gradient(phi.x.array[0::2], dofs) - 1j * gradient(phi.x.array[1::2], dofs)
        return E, current_density(self.patch, E, self.admittivity)

    def point_fields(
        self, phi: fem.Function, points_m: npt.ArrayLike, cells: npt.ArrayLike, volumes: Sequence[str]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Complex E = -grad phi [V/m] and J = S* E [A/m^2] at located points, (n, 3) each.

        Args:
            phi: a blocked (re, im) phasor Function.
            points_m: (n, 3) points [m].
            cells: their cells from :func:`locate_points`.
            volumes: their volume names (:func:`~emsim.solvers.electric.points.point_volumes`).
        """
        g = point_gradients(self.patch.mesh, [phi[0], phi[1]], self.case.mesh.degree, points_m, cells)
        E = g[0] + 1j * g[1]
        pts = np.asarray(points_m, dtype=float).reshape(-1, 3)
        J = np.array(
            [point_tensors(self.patch, p, self.admittivity[v])[0] @ e for v, p, e in zip(volumes, pts, E, strict=True)]
        ).reshape(-1, 3)
        return E, J

    def close(self) -> None:
        """Free the PETSc objects (those shared with a sweep stay for the next frequency)."""
        if self._sweep is not None and self._ksp is not None and self._ksp is self._sweep.ksp:
            self._ksp = self._presb = None
        if self._ksp is not None:
            self._ksp.destroy()
            self._A.destroy()
            self._b.destroy()
            self._ksp = None
        if self._presb is not None:
            self._presb.destroy()  # no-op when PETSc already did it with the KSP
            self._presb = None


class _BlockForms:
    """The compiled forms of the 2x2 block problem, with the admittivities and G as constants.

    Every frequency of a sweep has the same forms (the volumes, the Robin electrodes and the
    space are the same); only the values of the constants change. Building and compiling them
    took about 0.2 s per frequency on the default case, so a sweep builds them once
    (:attr:`~emsim.solvers.linalg.presb.SweepState.forms`) and :meth:`set_values` updates them.
    """

    def __init__(
        self, patch: PatchMesh, V: fem.FunctionSpace, dx: ufl.Measure, ds: ufl.Measure, electrodes: ElectrodeSystem,
        admittivity: dict[str, np.ndarray], robin: dict[str, complex],
    ) -> None:  # fmt: skip
        mesh = patch.mesh
        self.Sr = {k: fem.Constant(mesh, v.real.copy()) for k, v in admittivity.items()}
        self.Si = {k: fem.Constant(mesh, v.imag.copy()) for k, v in admittivity.items()}
        self.gr = {n: fem.Constant(mesh, G.real) for n, G in robin.items()}
        self.gi = {n: fem.Constant(mesh, G.imag) for n, G in robin.items()}
        Sr = {k: form_tensor(patch, c) for k, c in self.Sr.items()}
        Si = {k: form_tensor(patch, c) for k, c in self.Si.items()}
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        self.phi = fem.Function(V)

        def volume_form(p: ufl.core.expr.Expr) -> ufl.Form:  # p: the trial function, or a field
            return sum(
                (
                    ufl.inner(Sr[k] * ufl.grad(p[0]) - Si[k] * ufl.grad(p[1]), ufl.grad(v[0]))
                    + ufl.inner(Si[k] * ufl.grad(p[0]) + Sr[k] * ufl.grad(p[1]), ufl.grad(v[1]))
                )
                * dx(patch.volumes[k])
                for k in admittivity
            )

        a = volume_form(u)
        self.weight = {n: fem.Constant(mesh, 0.0) for n in robin}
        L = fem.Constant(mesh, 0.0) * v[0] * ufl.dx
        self.robin_current = {}
        for n in robin:
            gr, gi = self.gr[n], self.gi[n]
            dsn = ds(electrodes.surface(n))
            a = a + ((gr * u[0] - gi * u[1]) * v[0] + (gi * u[0] + gr * u[1]) * v[1]) * dsn
            L = L + self.weight[n] * (gr * v[0] + gi * v[1]) * dsn
            # I = integral G (V_e - phi): real and imaginary parts.
            dv = self.weight[n] - self.phi[0]
            self.robin_current[n] = (
                fem.form((gr * dv + gi * self.phi[1]) * dsn),
                fem.form((gi * dv - gr * self.phi[1]) * dsn),
            )
        self.a, self.L = fem.form(a), fem.form(L)
        self.residual = fem.form(volume_form(self.phi))

    def set_values(self, admittivity: dict[str, np.ndarray], robin: dict[str, complex]) -> None:
        """Set the constants to another frequency's admittivities [S/m] and G [S/m^2] (same keys)."""
        if set(admittivity) != set(self.Sr) or set(robin) != set(self.gr):
            raise SolverError("a sweep's frequencies must share their volumes and Robin electrodes")
        for k, value in admittivity.items():
            self.Sr[k].value = value.real
            self.Si[k].value = value.imag
        for n, G in robin.items():
            self.gr[n].value = G.real
            self.gi[n].value = G.imag
        for c in self.weight.values():
            c.value = 0.0
