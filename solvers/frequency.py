r"""Frequency-domain electro-quasistatics and the periodic steady-state response to a waveform.

Physics. At angular frequency w the potential phasor phi = u_re + j u_im solves
div(S* grad phi) = 0 with the complex admittivity S* = S_re + j S_im [S/m] of every volume
(Gabriel 1996 Cole-Cole tissues, sigma* = j w eps0 eps*(w); constant-conductivity materials
are real; contact sublayers carry the gel and the stratum corneum R_c || C_c in series along
z, see :func:`emsim.solvers.electric.volume_admittivities`). Bare electrodes with a contact
take the Robin condition S* grad phi . n = G (V_e - phi) with G = 1/r_c + j w c_c [S/m^2].

Real 2x2 block form. PETSc is real here, so the complex problem is written for the pair
(u_re, u_im) in a blocked Lagrange space:

    a((u_re, u_im), (v_re, v_im)) = (S_re grad u_re - S_im grad u_im, grad v_re)
                                  + (S_im grad u_re + S_re grad u_im, grad v_im)

(plus the same pattern for the Robin terms), which is exactly the real and imaginary parts of the
complex weak form. The matrix is not symmetric. Small problems factorise it once per frequency
by MUMPS LU and reuse the factorisation for every electrode's unit right-hand side; large ones
(above :data:`FREQUENCY_MUMPS_MAX_DOFS`, or ``solver.method = "cg-gamg"``) use FGMRES with the
PRESB block preconditioner (two CG + GAMG solves with K_r + K_i per application; see
:class:`_Presb`), set up once per frequency; a waveform sweep shares the matrix, the
preconditioner (GAMG interpolation reused) and the KSP across its frequencies and starts every
solve from the previous frequency's field (:class:`_Sweep`). Unit fields,
consistent currents and the complex admittance matrix Y(f) [S] follow electric.py (lead fields:
one unit solve per electrode, any channel set by superposition). Frequency 0 means d.c.: the
real conductivities at ``solver.quasi_static_frequency_Hz`` and G = 1/r_c (the capacitance
blocks nothing at d.c., the resistive path carries it).

Periodic steady state. For a waveform with period T and two-sided Fourier coefficients c_k
(:meth:`emsim.models.waveforms.Waveform.spectrum`), any linear response X (electrode potential,
cell field, current density) is X(t) = sum_k c_k X(f_k) exp(j 2 pi f_k t), X(-f) = conj X(f).
The transfer X(f) is smooth in log f, so it is sampled by 3-D solves at ``n_frequencies``
log-spaced frequencies from 1/T to the truncation frequency f_N = N/T and interpolated to every
harmonic by a cubic spline in log f (real and imaginary parts). The interpolation error is
estimated without extra solves: a spline through every other sample is compared with the
samples left out; this overestimates the error of the full spline (about 16 x for a cubic).

The response of resistive paths jumps with the current, and a truncated Fourier series of a jump
rings (Gibbs). The synthesis therefore splits off the high-frequency limit X_ref = Re X(f_N):

    X(t) = X_ref i(t) + sum_{|k| <= N} c_k (X(f_k) - X_ref) exp(j w_k t),

with i(t) sampled exactly; the remainder is continuous (for an R || C contact its coefficients
fall as 1/k^2), and the harmonics beyond N are taken at X(f_N). The default f_N = 500 / (shortest
phase) makes that truncation error for a contact of time constant tau about
1 / (pi^2 f_N tau) of its voltage at most (0.1 % at tau = 100 us, PW = 200 us). On the uniform
time grid the remainder is one inverse real FFT per quantity.

Fields at the pulse: cell fields and current densities are synthesised exactly the same way, but
only at a few instants in the first pulse (middle and end of each phase), through the cardinal
spline weights, from one stored complex cell field per sampled frequency.

Probes: at the case's ``[[probe]]`` points the channel-combined field E = -grad phi and current
density J = S* E (admittivity of the cell holding the point) are evaluated for every sampled
frequency (no extra 3-D solve) and synthesised over the whole period on the same time grid and
with the same split as the electrode potentials: the tissue is resistive at high frequency, so
E and J jump with the current as the voltage does, and X_ref i(t) carries the jumps without Gibbs
ringing. A point is evaluated in one owned cell holding it (on a volume interface the lowest
cell, so that a point on the skin surface z = 0 is in the skin), on one rank, and the values are
reduced to every rank.
"""

from __future__ import annotations

import itertools
import logging
import math
from dataclasses import dataclass, field

import numpy as np

from ..errors import InputError, SolverError
from ..meshes.patch import PatchMesh
from ..models.case import Case
from ..models.electrodes import Channel
from .electric import dirichlet_dofs, volume_admittivities
from .linear import MUMPS_MAX_DOFS, assemble_lifted_rhs, create_ksp, solve_checked
from .metrics import PEAK_AVERAGING_RADIUS_M, disc_averaged_max

__all__ = [
    "DEFAULT_N_FREQUENCIES",
    "FREQUENCY_MUMPS_MAX_DOFS",
    "MAX_HARMONICS",
    "FrequencyProblem",
    "WaveformResponse",
    "channel_potentials",
    "complex_admittivities",
    "locate_points",
    "plot_waveform_response",
    "point_gradients",
    "rc_contact_periodic_voltage",
    "waveform_response",
    "waveform_time_course",
]

log = logging.getLogger(__name__)

#: Default number of sampled frequencies (3-D solves per electrode): about 4-5 per decade over
#: the usual 5 decades (1/T to 500/PW). The (conservative, half-density) interpolation error
#: estimate is 1.1e-2 on the default cheek mesh with a 250 us, 50 Hz biphasic train
#: (benchmarks/RESULTS.md); cases raise it with [solver] waveform_frequencies.
DEFAULT_N_FREQUENCIES = 24
#: Above this many (block) dofs, method "auto" uses FGMRES + PRESB (CG + GAMG inside), not MUMPS:
#: the same threshold as the real problems.
FREQUENCY_MUMPS_MAX_DOFS = MUMPS_MAX_DOFS
#: Largest number of harmonics synthesised (the FFT holds 2 x this many points per period).
MAX_HARMONICS = 2**19
#: Default truncation frequency x shortest phase width: f_N = 500 / PW (see module doc).
TRUNCATION_FACTOR = 500.0
#: Thickness [m] of the slab on the skin and radius of the disc over which J at the pulse is
#: averaged (the radius of the d.c. metric, emsim.solvers.metrics.PEAK_AVERAGING_RADIUS_M).
SKIN_AVERAGING_M = PEAK_AVERAGING_RADIUS_M



def channel_potentials(Y: np.ndarray, names: list[str], channel: Channel, current_A: complex) -> np.ndarray:
    """Electrode potentials (phasors) [V] driving ``channel`` at ``current_A`` through ``Y``.

    Anodes tied, cathodes tied at 0 V (or the grounded deep face as return), other electrodes
    floating at zero current; the same reduction as
    :meth:`emsim.solvers.electric.ElectricProblem.electrode_potentials`, for complex Y.
    """
    index = {n: i for i, n in enumerate(names)}
    groups = [list(channel.anode)]
    if not channel.grounded:
        groups.append(list(channel.cathode))
    tied = set(channel.anode) | set(channel.cathode)
    groups += [[n] for n in names if n not in tied]
    T = np.zeros((len(names), len(groups)))
    for g, members in enumerate(groups):
        for n in members:
            T[index[n], g] = 1.0
    Yg = T.T @ Y @ T
    rhs = np.zeros(len(groups), dtype=complex)
    rhs[0] = current_A
    keep = [g for g in range(len(groups)) if channel.grounded or g != 1]
    Vg = np.zeros(len(groups), dtype=complex)
    Vg[keep] = np.linalg.solve(Yg[np.ix_(keep, keep)], rhs[keep])
    return T @ Vg


def locate_points(mesh, points_m) -> np.ndarray:
    """Per point, the local index of the cell that evaluates it on this rank, else -1.

    Exactly one rank gets a cell per point: among the owned cells holding the point (bounding
    box tree and exact collision, :mod:`dolfinx.geometry`) the one with the lowest centroid z
    (so a point on a horizontal interface, e.g. the skin surface, lies in the volume below it),
    on the lowest rank on a tie.

    Raises:
        SolverError: a point lies in no cell of the mesh.
    """
    from dolfinx import geometry
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    comm = mesh.comm
    pts = np.ascontiguousarray(np.asarray(points_m, dtype=mesh.geometry.x.dtype).reshape(-1, 3))
    n_owned = mesh.topology.index_map(3).size_local
    cells = np.full(len(pts), -1, dtype=np.int32)
    best = np.full(len(pts), np.inf)
    if len(pts) == 0:
        return cells
    tree = geometry.bb_tree(mesh, 3, entities=np.arange(n_owned, dtype=np.int32))
    colliding = geometry.compute_colliding_cells(mesh, geometry.compute_collisions_points(tree, pts), pts)
    for i in range(len(pts)):
        found = np.asarray(colliding.links(i), dtype=np.int32)
        found = found[found < n_owned]
        if len(found):
            zc = mesh.geometry.x[dmesh.entities_to_geometry(mesh, 3, found)][:, :, 2].mean(axis=1)
            cells[i], best[i] = found[np.argmin(zc)], zc.min()
    lowest = best.copy()
    comm.Allreduce(MPI.IN_PLACE, lowest, op=MPI.MIN)
    rank = np.where((cells >= 0) & (best == lowest), comm.rank, comm.size).astype(np.int64)
    comm.Allreduce(MPI.IN_PLACE, rank, op=MPI.MIN)
    missing = np.flatnonzero(rank == comm.size)
    if len(missing):
        raise SolverError(f"points outside the mesh: {pts[missing].tolist()} m")
    cells[rank != comm.rank] = -1
    return cells


def point_gradients(mesh, scalars, degree: int, points_m, cells) -> np.ndarray:
    """-grad of each UFL scalar (Lagrange of ``degree``) at located points, on every rank.

    The gradient is interpolated exactly into DG(degree - 1) and evaluated in the cell of
    :func:`locate_points` by the rank holding it; the values are summed over the ranks.

    Returns:
        (len(scalars), n_points, 3) array [units of the scalar per m].
    """
    import ufl
    from dolfinx import fem
    from mpi4py import MPI

    pts = np.asarray(points_m, dtype=mesh.geometry.x.dtype).reshape(-1, 3)
    out = np.zeros((len(scalars), len(pts), 3))
    own = np.asarray(cells) >= 0
    W = fem.functionspace(mesh, ("DG", degree - 1, (3,)))
    for k, u in enumerate(scalars):
        g = fem.Function(W)
        g.interpolate(fem.Expression(-ufl.grad(u), W.element.interpolation_points))
        if own.any():
            out[k, own] = np.asarray(g.eval(pts[own], np.asarray(cells, dtype=np.int32)[own])).reshape(-1, 3)
    mesh.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
    return out


def _point_volumes(patch: PatchMesh, cells) -> list[str]:
    """Name of the tagged volume of each located point (on every rank)."""
    from mpi4py import MPI

    tags = patch.cell_tags
    found = np.full(len(cells), -1, dtype=np.int64)
    for i, c in enumerate(cells):
        if c >= 0:
            j = np.searchsorted(tags.indices, c)
            if j < len(tags.indices) and tags.indices[j] == c:
                found[i] = tags.values[j]
    patch.mesh.comm.Allreduce(MPI.IN_PLACE, found, op=MPI.MAX)
    by_tag = {v: k for k, v in patch.volumes.items()}
    if any(int(t) not in by_tag for t in found):
        raise SolverError("a probe point lies in an untagged cell")
    return [by_tag[int(t)] for t in found]


def complex_admittivities(case: Case, frequency_Hz: float) -> dict[str, np.ndarray]:
    """Complex admittivity tensors [S/m] of every tagged volume at ``frequency_Hz`` > 0.

    See :func:`emsim.solvers.electric.volume_admittivities` (tissues sigma* = j w eps0 eps*(w)
    or their constant conductivity; contact sublayers sigma_z = h / (h / sigma_gel + 1 / y_c),
    y_c = 1/r_c + j w c_c).
    """
    return volume_admittivities(case, frequency_Hz, complex_valued=True)


class FrequencyProblem:
    """The electric problem at one frequency in real 2x2 block form, with unit fields.

    Args:
        case: the case.
        patch: its tagged mesh.
        frequency_Hz: frequency [Hz], >= 0 (0: d.c., see the module doc).
        sweep: optional :class:`_Sweep` shared by the problems of one frequency sweep: they
            then share the function space, the matrix (same sparsity, re-assembled in place),
            the PRESB preconditioner and the KSPs, and start each unit solve from the previous
            frequency's unit field (see :class:`_Sweep`). ``close`` leaves it open.
    """

    def __init__(self, case: Case, patch: PatchMesh, frequency_Hz: float, *, sweep: _Sweep | None = None) -> None:
        import ufl
        from dolfinx import fem

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
        if self.frequency_Hz == 0:
            adm = volume_admittivities(case, case.solver.quasi_static_frequency_Hz, complex_valued=False)
        else:
            adm = complex_admittivities(case, self.frequency_Hz)
        self.admittivity = {k: np.asarray(v, dtype=complex) for k, v in adm.items()}
        missing = set(self.admittivity) ^ set(patch.volumes)
        if missing:
            raise SolverError(f"volumes and materials disagree: {sorted(missing)}")
        self.dx = ufl.Measure("dx", domain=mesh, subdomain_data=patch.cell_tags)
        self.ds = ufl.Measure("ds", domain=mesh, subdomain_data=patch.facet_tags)
        Sr = {k: fem.Constant(mesh, v.real.copy()) for k, v in self.admittivity.items()}
        Si = {k: fem.Constant(mesh, v.imag.copy()) for k, v in self.admittivity.items()}

        self.robin: dict[str, complex] = {}
        for e in case.electrodes:
            if e.gel is None and e.contact is not None:
                g = 1.0 / e.contact.resistance_ohm_m2
                if self.frequency_Hz > 0 and e.contact.capacitance_F_per_m2 is not None:
                    g = g + 1j * w * e.contact.capacitance_F_per_m2
                self.robin[e.name] = complex(g)
        self._dirichlet = dirichlet_dofs(case, patch, self.V, set(self.robin))
        blocks = np.unique(np.concatenate(list(self._dirichlet.values()) or [np.empty(0, np.int32)]))
        self._g = fem.Function(self.V)
        self._bc_blocks = blocks.astype(np.int32)
        self._bc = fem.dirichletbc(self._g, self._bc_blocks)

        u, v = ufl.TrialFunction(self.V), ufl.TestFunction(self.V)
        self._phi = fem.Function(self.V)

        def volume_form(p):
            return sum(
                (
                    ufl.inner(Sr[k] * ufl.grad(p[0]) - Si[k] * ufl.grad(p[1]), ufl.grad(v[0]))
                    + ufl.inner(Si[k] * ufl.grad(p[0]) + Sr[k] * ufl.grad(p[1]), ufl.grad(v[1]))
                )
                * self.dx(patch.volumes[k])
                for k in self.admittivity
            )

        a = volume_form(u)
        self._weight = {n: fem.Constant(mesh, 0.0) for n in self.robin}
        L = fem.Constant(mesh, 0.0) * v[0] * ufl.dx
        self._robin_current = {}
        for n, G in self.robin.items():
            gr, gi = fem.Constant(mesh, G.real), fem.Constant(mesh, G.imag)
            ds = self.ds(patch.surfaces[f"electrode:{n}"])
            a = a + ((gr * u[0] - gi * u[1]) * v[0] + (gi * u[0] + gr * u[1]) * v[1]) * ds
            L = L + self._weight[n] * (gr * v[0] + gi * v[1]) * ds
            # I = integral G (V_e - phi): real and imaginary parts.
            dv = self._weight[n] - self._phi[0]
            self._robin_current[n] = (
                fem.form((gr * dv + gi * self._phi[1]) * ds),
                fem.form((gi * dv - gr * self._phi[1]) * ds),
            )
        self._a, self._L = fem.form(a), fem.form(L)
        self._residual = fem.form(volume_form(self._phi))
        n_local = imap.size_local * 2
        self._indicator = {}
        for n, blk in self._dirichlet.items():
            wr = np.zeros(2 * (imap.size_local + imap.num_ghosts))
            wi = np.zeros_like(wr)
            wr[2 * blk] = 1.0
            wi[2 * blk + 1] = 1.0
            self._indicator[n] = (wr[:n_local], wi[:n_local])
        self._ksp = None
        self._presb: _Presb | None = None
        self._unit: dict[str, object] | None = None
        self._Y: np.ndarray | None = None
        m = case.solver.method
        if m == "auto":
            m = "mumps" if self.dofs <= FREQUENCY_MUMPS_MAX_DOFS else "presb"
        self.method = "mumps" if m == "mumps" else "presb"
        self.iterations: list[int] = []

    def _setup(self) -> None:
        from dolfinx.fem import petsc as fpetsc

        sweep = self._sweep if self.method == "presb" else None
        if sweep is not None and sweep.A is not None:
            self._A = sweep.A  # same sparsity at every frequency: re-assemble in place
            self._A.zeroEntries()
            fpetsc.assemble_matrix(self._A, self._a, bcs=[self._bc])
        else:
            self._A = fpetsc.assemble_matrix(self._a, bcs=[self._bc])
        self._A.assemble()
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
        if sweep is not None and sweep.ksp is not None:
            self._presb = sweep.presb
            self._presb.update(self._A)
            ksp = sweep.ksp
            ksp.setOperators(self._A)
        elif self.method == "presb":
            self._presb = _Presb(self._A, self.comm, reuse_interpolation=sweep is not None)
            ksp = create_ksp(
                self._A, method="fgmres", rtol=self.case.solver.rtol, name="emsim_frequency",
                python_pc=self._presb, max_it=500,
            )  # fmt: skip
            if sweep is not None:
                sweep.A, sweep.presb, sweep.ksp = self._A, self._presb, ksp
        else:
            ksp = create_ksp(self._A, method="mumps", name="emsim_frequency")
        self._ksp = ksp
        if sweep is not None and sweep.b is None:
            sweep.b = fpetsc.create_vector(self.V)
        self._b = sweep.b if sweep is not None else fpetsc.create_vector(self.V)
        log.info("frequency %.4g Hz: %d dofs (2x2 block), %s", self.frequency_Hz, self.dofs, self.method)

    def _solve_unit(self, k: str):
        from dolfinx import fem

        self._g.x.array[:] = 0.0
        if k in self._dirichlet:
            self._g.x.array[2 * self._dirichlet[k]] = 1.0  # V_k = 1 + 0j
        for n, c in self._weight.items():
            c.value = 1.0 if n == k else 0.0
        assemble_lifted_rhs(self._b, self._L, self._a, self._bc, diagonal=self._bc_scale)
        phi = fem.Function(self.V, name=f"unit_phasor_{k}")
        what = f"frequency solve at {self.frequency_Hz:g} Hz, electrode {k}"
        previous = self._sweep.previous.get(k) if self._sweep is not None and self.method == "presb" else None
        if previous is not None:
            # The unit field varies smoothly with log f: start from the previous frequency's.
            # The outer tolerance stays relative to |b| (PETSc's default test with a nonzero
            # guess), so the accuracy is the same as from a zero guess.
            phi.x.array[:] = previous.x.array
        self._ksp.setInitialGuessNonzero(previous is not None)
        self.iterations.append(solve_checked(self._ksp, self._b, phi.x.petsc_vec, what))
        phi.x.scatter_forward()
        if self._sweep is not None and self.method == "presb":
            self._sweep.previous[k] = phi
        return phi

    @property
    def unit_fields(self) -> dict[str, object]:
        """Unit phasor fields (V_k = 1 V, others and ground 0 V): blocked (re, im) Functions."""
        return self.unit_fields_of(self.names)

    def unit_fields_of(self, names) -> dict[str, object]:
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

    def currents(self, phi, potentials: dict[str, complex]) -> dict[str, complex]:
        """Consistent complex currents [A] leaving each electrode for a phasor field."""
        from dolfinx import fem
        from dolfinx.fem import petsc as fpetsc
        from petsc4py import PETSc

        self._phi.x.array[:] = phi.x.array
        r = fpetsc.assemble_vector(self._residual)
        r.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        local = r.array_r
        out: dict[str, complex] = {}
        for n, (wr, wi) in self._indicator.items():
            out[n] = complex(self.comm.allreduce(float(local @ wr)), self.comm.allreduce(float(local @ wi)))
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

    def admittance(self, columns=None) -> np.ndarray:
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

    def combine(self, potentials: np.ndarray):
        """The phasor field sum_k V_k phi_k (blocked Function) for complex electrode potentials."""
        from dolfinx import fem

        z = np.zeros(self.V.dofmap.index_map.size_local + self.V.dofmap.index_map.num_ghosts, dtype=complex)
        for vk, name in zip(potentials, self.names, strict=True):
            if vk == 0:
                continue  # an electrode at 0 V contributes nothing (its unit field may be unsolved)
            arr = self.unit_fields_of([name])[name].x.array
            z += vk * (arr[0::2] + 1j * arr[1::2])
        phi = fem.Function(self.V, name="phasor")
        phi.x.array[0::2] = z.real
        phi.x.array[1::2] = z.imag
        return phi

    def cell_fields(self, phi) -> tuple[np.ndarray, np.ndarray]:
        """Complex DG0 field E = -grad phi [V/m] and current density J = S* E [A/m^2] per cell."""
        import ufl
        from dolfinx import fem

        W = fem.functionspace(self.patch.mesh, ("DG", 0, (3,)))
        parts = []
        for c in (0, 1):
            f = fem.Function(W)
            f.interpolate(fem.Expression(-ufl.grad(phi[c]), W.element.interpolation_points))
            parts.append(f.x.array.reshape(-1, 3))
        E = parts[0] + 1j * parts[1]
        J = np.zeros_like(E)
        for name, tensor in self.admittivity.items():
            cells = self.patch.cell_tags.find(self.patch.volumes[name])
            J[cells] = E[cells] @ tensor.T
        return E, J

    def point_fields(self, phi, points_m, cells, volumes) -> tuple[np.ndarray, np.ndarray]:
        """Complex E = -grad phi [V/m] and J = S* E [A/m^2] at located points, (n, 3) each.

        Args:
            phi: a blocked (re, im) phasor Function.
            points_m: (n, 3) points [m].
            cells: their cells from :func:`locate_points`.
            volumes: their volume names (:func:`_point_volumes`).
        """
        g = point_gradients(self.patch.mesh, [phi[0], phi[1]], self.case.mesh.degree, points_m, cells)
        E = g[0] + 1j * g[1]
        J = np.array([self.admittivity[v] @ e for v, e in zip(volumes, E, strict=True)]).reshape(-1, 3)
        return E, J

    def close(self) -> None:
        """Free the PETSc objects (those shared with a sweep stay for the next frequency)."""
        if self._sweep is not None and self._ksp is self._sweep.ksp:
            self._ksp = self._presb = None
        if self._ksp is not None:
            self._ksp.destroy()
            self._A.destroy()
            self._b.destroy()
            self._ksp = None
        if self._presb is not None:
            self._presb.destroy()  # no-op when PETSc already did it with the KSP
            self._presb = None


class _Presb:
    r"""PRESB preconditioner of the real 2x2 block form, as a petsc4py python PC.

    Axelsson, Neytcheva & Ahmad 2014, Numer Algorithms 66:811. The operator is [[K_r, -K_i], [K_i, K_r]] (K_r the real, K_i the imaginary stiffness, both
    symmetric positive semi-definite, K_r + K_i positive definite with the Dirichlet rows). The
    preconditioner [[K_r, -K_i], [K_i, K_r + 2 K_i]] is solved exactly with two solves with
    K_r + K_i: (K_r + K_i) h = f + g, (K_r + K_i) y = K_r h - f, x = h - y. Its eigenvalues with
    the operator lie in [1/2, 1], so FGMRES converges in a few iterations independent of the
    mesh and the frequency. The inner SPD solves are CG + GAMG to a loose relative tolerance
    (1e-2, fastest in a trial on the cheek case: FGMRES accepts a variable preconditioner, and
    the outer tolerance alone sets the accuracy).

    Across a frequency sweep :meth:`update` refills K_r and S in place from the new operator
    (same sparsity). With ``reuse_interpolation`` GAMG then keeps its aggregates and
    prolongators from the first setup and only recomputes the Galerkin coarse operators and
    the smoothers: the aggregation (most of the GAMG setup) depends on the graph of strong
    connections, which the smooth change of the admittivities with frequency hardly alters,
    and any loss of preconditioner quality costs only inner iterations, never accuracy
    (FGMRES's outer tolerance sets that).
    """

    def __init__(self, A, comm, *, reuse_interpolation: bool = False) -> None:
        from petsc4py import PETSc

        r0, r1 = A.getOwnershipRange()
        n = (r1 - r0) // 2
        self.is_re = PETSc.IS().createStride(n, first=r0, step=2, comm=comm)
        self.is_im = PETSc.IS().createStride(n, first=r0 + 1, step=2, comm=comm)
        self.Kr = A.createSubMatrix(self.is_re, self.is_re)
        self.Ki = A.createSubMatrix(self.is_im, self.is_re)
        self.S = self.Kr.copy()
        self.S.axpy(1.0, self.Ki, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
        # Loose inner tolerance: measured fastest for the outer FGMRES.
        ksp = create_ksp(self.S, method="cg-gamg", rtol=1e-2, name="emsim_presb", max_it=1000)
        if reuse_interpolation:
            opts, key = PETSc.Options(), ksp.getOptionsPrefix() + "pc_gamg_reuse_interpolation"
            opts[key] = True
            ksp.getPC().setFromOptions()
            del opts[key]
        self.inner = ksp
        self.h, self.r = self.S.createVecs()
        self.y = self.h.duplicate()

    def update(self, A) -> None:
        """Refill K_r, K_i and S = K_r + K_i from ``A`` (same sparsity as at construction)."""
        from petsc4py import PETSc

        same = PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN
        A.createSubMatrix(self.is_re, self.is_re, submat=self.Kr)
        A.createSubMatrix(self.is_im, self.is_re, submat=self.Ki)
        self.S.zeroEntries()
        self.S.axpy(1.0, self.Kr, structure=same)
        self.S.axpy(1.0, self.Ki, structure=same)
        self.inner.setOperators(self.S)  # GAMG set up again (reusing its interpolation) on use

    def apply(self, pc, x, y) -> None:
        """Apply the preconditioner: y = P^-1 x."""
        f = x.getSubVector(self.is_re)
        g = x.getSubVector(self.is_im)
        f.copy(self.r)
        self.r.axpy(1.0, g)
        self.inner.solve(self.r, self.h)
        self.Kr.mult(self.h, self.r)
        self.r.axpy(-1.0, f)
        self.inner.solve(self.r, self.y)
        x.restoreSubVector(self.is_re, f)
        x.restoreSubVector(self.is_im, g)
        yr = y.getSubVector(self.is_re)
        yi = y.getSubVector(self.is_im)
        self.h.copy(yr)
        yr.axpy(-1.0, self.y)  # x_re = h - y
        self.y.copy(yi)
        y.restoreSubVector(self.is_re, yr)
        y.restoreSubVector(self.is_im, yi)

    def destroy(self, pc=None) -> None:
        """Free the PETSc objects (called by PETSc when the PC is destroyed; idempotent)."""
        objects, self._objects = getattr(self, "_objects", None), ()
        if objects is None:
            objects = (self.inner, self.S, self.Kr, self.Ki, self.h, self.r, self.y, self.is_re, self.is_im)
        for obj in objects:
            obj.destroy()


class _Sweep:
    """Solver state shared by the :class:`FrequencyProblem` of one frequency sweep (PRESB path).

    The operator of every frequency has the same function space and sparsity, and only its
    values change, smoothly in log f. Rebuilding everything per frequency spent about half the
    time of a sweep in setup (matrix allocation, sub-matrix extraction, GAMG aggregation), so a
    sweep keeps: the space, the block matrix (re-assembled in place), the PRESB preconditioner
    (:meth:`_Presb.update`, GAMG interpolation reused), the outer FGMRES KSP and the right-hand
    side vector. It also keeps the last unit field of every electrode as the initial guess of
    the next frequency's solve. The converged answer is the same to the outer tolerance: the
    reuse changes only the iterations needed to reach it. Frequencies should be visited in
    order (increasing or decreasing) for good guesses. MUMPS problems share only the space.
    """

    def __init__(self) -> None:
        self.V = None
        self.A = None
        self.presb: _Presb | None = None
        self.ksp = None
        self.b = None
        self.previous: dict[str, object] = {}

    def close(self) -> None:
        """Free the shared PETSc objects."""
        if self.ksp is not None:
            self.ksp.destroy()
            self.A.destroy()
            self.ksp = self.A = None
        if self.presb is not None:
            self.presb.destroy()
            self.presb = None
        if self.b is not None:
            self.b.destroy()
            self.b = None
        self.previous = {}


# ---------------------------------------------------------------------------- waveform response


def rc_contact_periodic_voltage(waveform, peak_A: float, series_ohm: float, contact_ohm: float, contact_F: float, t_s):
    """Analytic periodic steady state of V = R i + v_c across R in series with R_c || C_c.

    The pulse train is piecewise constant, so the contact voltage relaxes exponentially on each
    piece: v_c(t) = R_c i_p + (v_c(t0) - R_c i_p) exp(-(t - t0)/tau), tau = R_c C_c. Composing
    the pieces over one period gives v_c(T) = a v_c(0) + b with a = exp(-T/tau); periodicity
    v_c(T) = v_c(0) fixes v_c(0) = b / (1 - a) in closed form. (Verification reference: an exact
    time-domain solution, independent of the Fourier synthesis.)

    Args:
        waveform: a :class:`~emsim.models.waveforms.Waveform` without bursts or on/off.
        peak_A: peak current [A].
        series_ohm: series (tissue, gel) resistance R [ohm].
        contact_ohm: contact resistance R_c [ohm].
        contact_F: contact capacitance C_c [F].
        t_s: times [s].

    Returns:
        V(t) [V] at ``t_s``.
    """
    T = waveform.period_s
    tau = contact_ohm * contact_F
    # Breakpoints of the piecewise-constant current over one period.
    edges = sorted({0.0, T, *(p for s, e, _ in waveform._phases() for p in (s, e) if p < T)})
    pieces = [(a, b, float(waveform.sample(peak_A, 0.5 * (a + b)))) for a, b in itertools.pairwise(edges)]
    starts = []
    a_tot, b_tot = 1.0, 0.0  # v_c(end of piece) = a_tot v_c(0) + b_tot
    for t0, t1, i in pieces:
        starts.append((t0, a_tot, b_tot, i))
        decay = math.exp(-(t1 - t0) / tau)
        a_tot, b_tot = a_tot * decay, b_tot * decay + contact_ohm * i * (1.0 - decay)
    v0 = b_tot / (1.0 - a_tot)
    t = np.mod(np.asarray(t_s, dtype=float), T)
    out = np.empty_like(t)
    for idx, (t0, a0, b0, i) in enumerate(starts):
        t1 = pieces[idx][1]
        m = (t >= t0) & (t < t1)
        vc0 = a0 * v0 + b0
        out[m] = series_ohm * i + contact_ohm * i + (vc0 - contact_ohm * i) * np.exp(-(t[m] - t0) / tau)
    return out


@dataclass
class WaveformResponse:
    """Periodic steady-state response of a case to its waveform.

    Attributes:
        times_s: uniform time grid over one period [s].
        channel_current_A: current of each channel on the grid [A].
        electrode_potential_V: potential of each electrode on the grid [V] (cathode of the first
            channel at 0 V, as in the d.c. solve).
        channel_voltage_V: anode minus cathode potential of each channel [V] (the compliance
            voltage the stimulator must supply).
        sample_frequencies_Hz: frequencies of the 3-D solves [Hz] (0 for the d.c. sample).
        transfer_V: electrode potentials per unit waveform at the samples (rows), complex.
        n_harmonics: harmonics synthesised (truncation at ``n_harmonics / period``).
        interpolation_error: relative error estimate of the transfer interpolation.
        instants_s: instants of the first pulse where cell fields were synthesised [s].
        muscle_field_V_per_m: per instant, (n_muscle_cells, 3) real field in the muscle [V/m].
        muscle_activating_V_per_m2: per instant, activating function per muscle cell [V/m^2].
        skin_current_density_A_per_m2: per instant, (n_cells, 3) current density [A/m^2] in the
            cells where the current enters the skin.
        probe_field_V_per_m: per probe name, (n_times, 3) field E(t) at the probe [V/m].
        probe_current_density_A_per_m2: per probe name, (n_times, 3) current density J(t) [A/m^2].
        metrics: the plain-data metrics (see :func:`waveform_response`).
        pulse_duration_s: start of the first phase to end of the last of one pulse [s].
    """

    times_s: np.ndarray
    channel_current_A: dict[str, np.ndarray]
    electrode_potential_V: dict[str, np.ndarray]
    channel_voltage_V: dict[str, np.ndarray]
    sample_frequencies_Hz: np.ndarray
    transfer_V: np.ndarray
    n_harmonics: int
    interpolation_error: float
    instants_s: np.ndarray = field(default_factory=lambda: np.empty(0))
    muscle_field_V_per_m: list = field(default_factory=list)
    muscle_activating_V_per_m2: list = field(default_factory=list)
    skin_current_density_A_per_m2: list = field(default_factory=list)
    probe_field_V_per_m: dict = field(default_factory=dict)
    probe_current_density_A_per_m2: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    pulse_duration_s: float = 0.0


def _spline(x: np.ndarray, y: np.ndarray):
    """Cubic spline of complex rows ``y`` over ``x`` (real and imaginary parts)."""
    from scipy.interpolate import CubicSpline

    if len(x) < 4:
        raise InputError("n_frequencies", len(x), "a cubic spline needs >= 4 samples")
    re, im = CubicSpline(x, y.real, axis=0), CubicSpline(x, y.imag, axis=0)
    return lambda xx: re(xx) + 1j * im(xx)


def _pulse_instants(waveform) -> np.ndarray:
    """Middle and end (just before) of each phase of the first pulse [s]."""
    out = []
    for start, end, _ in waveform._phases():
        width = end - start
        out += [start + 0.5 * width, end - 1e-3 * width]
    return np.array(out)


def _skin_entry_cells(case: Case, patch: PatchMesh, centroids: np.ndarray) -> np.ndarray:
    """Owned cells where the current enters the skin, for the peak current density at the pulse.

    Under a gel pad the pad-side cells on the skin (the contact sublayer, or the gel's lowest
    0.5 mm), as the d.c. metric uses the pad-side flux; under bare electrodes the skin's top
    0.5 mm.
    """
    n_owned = len(centroids)
    tags = patch.cell_tags
    parts = []
    bare = False
    for e in case.electrodes:
        if e.gel is None:
            bare = True
            continue
        name = f"contact:{e.name}" if e.contact is not None else f"gel:{e.name}"
        c = tags.find(patch.volumes[name])
        c = c[c < n_owned]
        parts.append(c[centroids[c, 2] <= SKIN_AVERAGING_M])
    if bare:
        c = tags.find(patch.volumes[f"layer:{case.layers[0].label}"])
        c = c[c < n_owned]
        parts.append(c[centroids[c, 2] >= -SKIN_AVERAGING_M])
    return np.sort(np.concatenate(parts or [np.empty(0, np.int32)]))


def waveform_response(
    case: Case,
    patch: PatchMesh,
    *,
    n_frequencies: int = DEFAULT_N_FREQUENCIES,
    max_frequency_Hz: float | None = None,
    strength_duration=None,
    progress=None,
) -> WaveformResponse:
    """Periodic steady-state response of the case to ``case.waveform`` (module doc: method).

    Solves ``n_frequencies`` (+1 d.c. when the waveform has a d.c. component) frequency
    problems, each set up (factorised) once for all its electrodes' unit solves; with a single
    channel its cathodes stay at 0 V and need no unit solve.

    Scope: the pulse train at the plateau of the on/off cycle (the envelope is slow against the
    pulses and scales the response; r.m.s. figures include it); every channel is driven at the
    same time by the case's waveform with its own ``current_A`` as peak (simultaneous, in
    phase: interleaved channels are not modelled); cell fields are synthesised at the instants
    of the first pulse of the period (:attr:`WaveformResponse.instants_s`); the tissue and the
    skin contact are linear (Panescu 1994: the skin is not, at high current density).

    Metrics (first channel for scalar values; ``..._by_channel`` for all):

    * ``electrode_voltage_peak_V``: max over the period of |V_anode - V_cathode|;
    * ``electrode_voltage_rms_V``, ``mean_power_W`` (mean of sum V i over the period);
    * ``muscle_field_peak_V_per_m``: max |E| over the muscle at the pulse instants;
    * ``skin_current_density_peak_pulse_A_per_m2``: max over the pulse instants of the normal
      current density |J_z| entering the skin (pad-side cells on the skin: the contact sublayer
      or the gel's lowest 0.5 mm; the skin's top 0.5 mm under bare electrodes), volume-averaged
      over a disc of radius 0.5 mm like the d.c. ``skin_current_density_peak_A_per_m2``;
    * ``probe_field_peak_V_per_m``, ``probe_current_density_peak_A_per_m2`` (with probes): per
      probe, max over the period of |E(t)| and |J(t)|;
    * ``charge_per_phase_C``, ``net_charge_per_period_C``, ``current_rms_A`` (with on/off),
      ``current_rms_pulse_train_A`` (IEC 60601-2-10 figures, heating scales with their square);
    * activation: ``muscle_fibre_field_peak_V_per_m``, ``muscle_activating_function_peak_V_per_m2``,
      ``activation_threshold_field_V_per_m``, ``muscle_activated_fraction``,
      ``current_for_50pct_activation_A`` (:mod:`emsim.solvers.activation`).

    Args:
        case: the case; ``case.waveform`` must be set.
        patch: its tagged mesh.
        n_frequencies: number of sampled frequencies (>= 7).
        max_frequency_Hz: truncation frequency f_N (default 500 / shortest phase).
        strength_duration: a :class:`~emsim.solvers.activation.StrengthDuration` (default one).
        progress: optional callable taking a short text.
    """
    from scipy import fft

    from . import activation as act

    w = case.waveform
    if w is None:
        raise InputError("waveform", None, "the case has no [waveform]")
    if isinstance(n_frequencies, bool) or not isinstance(n_frequencies, int) or n_frequencies < 7:
        # 7: the error estimate fits a cubic spline through every other sample (>= 4 points).
        raise InputError("n_frequencies", n_frequencies, "must be an integer >= 7")
    sd = strength_duration or act.StrengthDuration()
    names = [e.name for e in case.electrodes]
    channels = case.channels

    dc_shape = w.shape == "dc"
    if dc_shape:
        T, N = 1.0, 0
        ck, c0 = np.zeros(0, complex), 1.0
        fs = np.zeros(0)
    else:
        T = w.period_s
        shortest = min(e - s for s, e, _ in w._phases())
        f_max = max_frequency_Hz or TRUNCATION_FACTOR / shortest
        N = int(min(max(math.ceil(f_max * T), 2 * n_frequencies), MAX_HARMONICS))
        if N == MAX_HARMONICS:
            log.warning("waveform: harmonics capped at %d (f_N = %.3g Hz)", N, N / T)
        _, c = w.spectrum(1.0, N)
        ck, c0 = c[N + 1 :], float(c[N].real)
        fs = np.geomspace(1.0 / T, N / T, n_frequencies)
    need_dc = dc_shape or abs(c0) > 1e-9 * max(1e-300, float(np.max(np.abs(ck), initial=0.0)))
    samples = ([0.0] if need_dc else []) + list(fs)

    # With one channel its cathodes stay at 0 V: their unit fields are never needed.
    held = set(channels[0].cathode) if len(channels) == 1 else set()
    needed = [n for n in names if n not in held]

    directions = act.fibre_directions(case)
    tags = patch.cell_tags
    n_owned = patch.mesh.topology.index_map(3).size_local
    muscle_cells = np.concatenate(
        [tags.find(patch.volumes[f"layer:{m}"]) for m in directions] or [np.empty(0, np.int32)]
    )
    muscle_cells = np.sort(muscle_cells[muscle_cells < n_owned])
    from dolfinx import mesh as dmesh

    geo = dmesh.entities_to_geometry(patch.mesh, 3, np.arange(n_owned, dtype=np.int32))
    centroids = patch.mesh.geometry.x[geo].mean(axis=1)
    skin_cells = _skin_entry_cells(case, patch, centroids)
    fibre_of_cell = np.zeros((len(muscle_cells), 3))
    for label, f in directions.items():
        m = np.isin(muscle_cells, tags.find(patch.volumes[f"layer:{label}"]))
        fibre_of_cell[m] = f
    probe_points = np.array([p.point_m for p in case.probes], dtype=float).reshape(-1, 3)
    probe_cells = locate_points(patch.mesh, probe_points) if len(probe_points) else np.empty(0, np.int32)
    probe_volumes = _point_volumes(patch, probe_cells) if len(probe_points) else []

    H, Em, Af, Js, P = [], [], [], [], []
    sweep = _Sweep()  # one matrix, preconditioner and KSP for all samples (see _Sweep)
    for i, f in enumerate(samples):
        if progress:
            progress(f"frequency {i + 1}/{len(samples)}: {f:.4g} Hz")
        prob = FrequencyProblem(case, patch, f, sweep=sweep)
        Y = prob.admittance(needed)
        h = sum(channel_potentials(Y, names, ch, ch.current_A) for ch in channels)
        phi = prob.combine(h)
        E, J = prob.cell_fields(phi)
        af = np.zeros(E.shape[0], dtype=complex)
        if directions:
            af = act.fibre_second_derivative(patch, phi[0], directions) + 1j * act.fibre_second_derivative(
                patch, phi[1], directions
            )
        if len(probe_points):
            pe, pj = prob.point_fields(phi, probe_points, probe_cells, probe_volumes)
            P.append(np.concatenate([pe.ravel(), pj.ravel()]))
        else:
            P.append(np.zeros(0, dtype=complex))
        H.append(h)
        Em.append(E[muscle_cells])
        Af.append(af[muscle_cells])
        Js.append(J[skin_cells])
        prob.close()
    sweep.close()
    H = np.array(H)
    P = np.array(P).reshape(len(samples), -1)  # probe E then J components (sample, 6 n_probes)
    n_e = len(names)
    if need_dc:
        H0, Em0, Af0, Js0, P0 = H[0], Em[0], Af[0], Js[0], P[0]
        H, Em, Af, Js, P = H[1:], Em[1:], Af[1:], Js[1:], P[1:]

    if dc_shape:
        t = np.array([0.0])
        i_unit = np.array([1.0])
        Xt = np.concatenate([H0, P0]).real[None, :]
        err = 0.0
        instants = np.array([0.0])
        fields = [(Em0.real, Af0.real, Js0.real)]
    else:
        x = np.log(fs)
        xk = np.log(np.arange(1, N + 1) / T)
        # Electrode potentials and probe fields: the same interpolation, split and synthesis.
        X = np.concatenate([H, P], axis=1)
        Xk = _spline(x, X)(xk)
        coarse = _spline(x[::2], H[::2])(x[1::2])
        err = float(np.max(np.abs(coarse - H[1::2])) / max(np.max(np.abs(H)), 1e-300))
        Xref = X[-1].real
        M = fft.next_fast_len(max(2 * N + 2, 4096), real=True)
        D = np.zeros((M // 2 + 1, X.shape[1]), dtype=complex)
        D[1 : N + 1] = ck[:, None] * (Xk - Xref)
        if need_dc:
            D[0] = c0 * (np.concatenate([H0, P0]) - Xref)
        t = np.arange(M) * (T / M)
        i_unit = w.sample(1.0, t)
        Xt = Xref[None, :] * i_unit[:, None] + M * fft.irfft(D, n=M, axis=0)

        # Cell quantities at the pulse instants, through the cardinal spline weights.
        instants = _pulse_instants(w)
        cardinal = _spline(x, np.eye(len(fs)))
        weights = np.zeros((len(instants), len(fs)), dtype=complex)
        tail = np.zeros(len(instants))
        chunk = 65536
        for k0 in range(0, N, chunk):
            k = np.arange(k0 + 1, min(k0 + chunk, N) + 1)
            L = cardinal(np.log(k / T))  # (chunk, n_s)
            g = ck[k - 1][None, :] * np.exp(2j * np.pi * np.outer(instants, k) / T)
            weights += g @ L
            tail += 2 * g.sum(axis=1).real
        r = w.sample(1.0, instants) - c0 - tail

        def synth(Xs: list, X0, j: int) -> np.ndarray:
            Xref = Xs[-1].real
            out = Xref * r[j] + c0 * (X0.real if need_dc else Xref)  # d.c. phasors are real
            for s, X in enumerate(Xs):
                out = out + 2 * (weights[j, s] * X).real
            return out

        fields = [
            (synth(Em, Em0 if need_dc else None, j), synth(Af, Af0 if need_dc else None, j),
             synth(Js, Js0 if need_dc else None, j))
            for j in range(len(instants))
        ]  # fmt: skip
        if err > 0.01:
            log.warning(
                "waveform: transfer interpolation error estimate %.2g; raise [solver] waveform_frequencies", err
            )

    V = Xt[:, :n_e]
    Pt = Xt[:, n_e:].reshape(len(t), 2, len(case.probes), 3)
    idx = {n: i for i, n in enumerate(names)}
    potentials = {n: V[:, idx[n]] for n in names}
    currents = {ch.name: ch.current_A * i_unit for ch in channels}
    volt = {}
    for ch in channels:
        vc = 0.0 if ch.grounded else potentials[ch.cathode[0]]
        volt[ch.name] = potentials[ch.anode[0]] - vc
    resp = WaveformResponse(
        times_s=t, channel_current_A=currents, electrode_potential_V=potentials, channel_voltage_V=volt,
        sample_frequencies_Hz=np.array(samples), transfer_V=H if not dc_shape else H0[None, :],
        n_harmonics=N, interpolation_error=err, instants_s=instants,
        muscle_field_V_per_m=[f[0] for f in fields], muscle_activating_V_per_m2=[f[1] for f in fields],
        skin_current_density_A_per_m2=[f[2] for f in fields],
        probe_field_V_per_m={p.name: Pt[:, 0, k].copy() for k, p in enumerate(case.probes)},
        probe_current_density_A_per_m2={p.name: Pt[:, 1, k].copy() for k, p in enumerate(case.probes)},
        pulse_duration_s=0.0 if dc_shape else w._phases()[-1][1],
    )  # fmt: skip
    resp.metrics = _metrics(case, patch, resp, muscle_cells, fibre_of_cell, skin_cells, centroids, sd)
    return resp


def _metrics(case, patch, resp: WaveformResponse, muscle_cells, fibre_of_cell, skin_cells, centroids, sd) -> dict:
    """Plain-data metrics of a waveform response, identical on every rank."""
    from mpi4py import MPI

    from . import activation as act
    from .metrics import _cell_volumes

    comm = patch.mesh.comm
    w = case.waveform
    ch0 = case.channels[0]
    vol = _cell_volumes(patch)
    e_mag = max((float(np.linalg.norm(E, axis=1).max()) if len(E) else 0.0) for E in resp.muscle_field_V_per_m)
    e_fib = np.max(
        [np.abs(np.sum(E * fibre_of_cell, axis=1)) for E in resp.muscle_field_V_per_m], axis=0
    ) if len(muscle_cells) else np.empty(0)  # fmt: skip
    af = max((float(a.max()) if len(a) else 0.0) for a in resp.muscle_activating_V_per_m2)
    jz = np.max([np.abs(J[:, 2]) for J in resp.skin_current_density_A_per_m2], axis=0)

    gathered = comm.gather(
        (e_fib, vol[muscle_cells], centroids[skin_cells, :2], vol[skin_cells], jz), root=0
    )
    e_max = comm.allreduce(e_mag, op=MPI.MAX)
    has_muscle = comm.allreduce(len(muscle_cells)) > 0
    af_max = comm.allreduce(af, op=MPI.MAX)
    out = None
    if comm.rank == 0:
        ef = np.concatenate([g[0] for g in gathered])
        mv = np.concatenate([g[1] for g in gathered])
        xy = np.concatenate([g[2] for g in gathered])
        sv = np.concatenate([g[3] for g in gathered])
        sj = np.concatenate([g[4] for g in gathered])
        peak, _ = disc_averaged_max(xy, sv, sj, SKIN_AVERAGING_M)
        pw = w.pulse_width_s if w.shape != "dc" else math.inf
        activation = {}
        if len(ef) and math.isfinite(pw):
            threshold = sd.threshold_field_V_per_m(pw)
            per_A = ef / ch0.current_A
            activation = {
                "muscle_fibre_field_peak_V_per_m": float(ef.max()),
                "activation_threshold_field_V_per_m": threshold,
                "muscle_activated_fraction": act.activated_fraction(per_A, mv, threshold, ch0.current_A),
                "current_for_50pct_activation_A": act.current_for_fraction_A(per_A, mv, threshold, 0.5),
            }
        out = (peak, activation)
    peak, activation = comm.bcast(out, root=0)

    t = resp.times_s
    T = w.period_s if w.shape != "dc" else 1.0

    def mean(y):
        return float(np.mean(y)) if len(y) else 0.0

    by_channel = {
        n: {
            "electrode_voltage_peak_V": float(np.max(np.abs(v))),
            "electrode_voltage_rms_V": math.sqrt(mean(v**2)),
            "mean_power_W": mean(v * resp.channel_current_A[n]),
        }
        for n, v in resp.channel_voltage_V.items()
    }
    first = by_channel[ch0.name]
    probes = {}
    if resp.probe_field_V_per_m:
        probes = {
            "probe_field_peak_V_per_m": {
                n: float(np.linalg.norm(e, axis=1).max()) for n, e in resp.probe_field_V_per_m.items()
            },
            "probe_current_density_peak_A_per_m2": {
                n: float(np.linalg.norm(j, axis=1).max()) for n, j in resp.probe_current_density_A_per_m2.items()
            },
        }
    metrics = {
        "waveform_shape": w.shape,
        "electrode_voltage_peak_V": first["electrode_voltage_peak_V"],
        "electrode_voltage_rms_V": first["electrode_voltage_rms_V"],
        "mean_power_W": sum(c["mean_power_W"] for c in by_channel.values()),
        "waveform_by_channel": by_channel,
        "muscle_field_peak_V_per_m": e_max if has_muscle else None,
        "muscle_activating_function_peak_V_per_m2": af_max if has_muscle else None,
        "skin_current_density_peak_pulse_A_per_m2": peak,
        "charge_per_phase_C": w.charge_per_phase_C(ch0.current_A),
        "net_charge_per_period_C": w.net_charge_per_period_C(ch0.current_A),
        "current_rms_A": w.rms(ch0.current_A),
        "current_rms_pulse_train_A": w.rms_pulse_train(ch0.current_A),
        **activation,
        **probes,
        "waveform_method": {
            "sample_frequencies_Hz": resp.sample_frequencies_Hz.tolist(),
            "n_harmonics": resp.n_harmonics,
            "truncation_frequency_Hz": resp.n_harmonics / T if w.shape != "dc" else 0.0,
            "time_step_s": float(t[1] - t[0]) if len(t) > 1 else 0.0,
            "interpolation_error_estimate": resp.interpolation_error,
            "pulse_instants_s": resp.instants_s.tolist(),
            "definitions": {
                "electrode_voltage_peak_V": "max over one period (periodic steady state) of |V_anode - V_cathode|, first channel",
                "muscle_field_peak_V_per_m": "max |E| over the muscle cells at the pulse instants (middle and end of each phase of the first pulse)",
                "skin_current_density_peak_pulse_A_per_m2": (
                    "max over the pulse instants of |J_z| entering the skin (pad-side cells on the skin), "
                    f"volume-averaged over a disc of radius {SKIN_AVERAGING_M * 1e3:g} mm"
                ),
                "muscle_activated_fraction": (
                    "muscle volume fraction where the fibre field at the pulse reaches the strength-duration "
                    "threshold at the pulse width; all channels scaled with the first channel's current"
                ),
                "current_for_50pct_activation_A": "first channel's peak current at which half the muscle volume is above threshold",
                "mean_power_W": "mean over the period of sum over channels of (V_anode - V_cathode) i",
                "probe_field_peak_V_per_m": "per [[probe]]: max over one period of |E(t)| at the point",
            },
            "activation_model": {
                "model": sd.model, "rheobase_field_V_per_m": sd.rheobase_field_V_per_m,
                "chronaxie_s": sd.chronaxie_s,
                "note": "field thresholds are estimates (factor 2); see emsim.solvers.activation",
            },
        },
    }
    return metrics


def plot_waveform_response(resp: WaveformResponse, path, *, title: str = "") -> None:
    """PNG of the compliance voltage and the current of every channel over one period.

    The top panel shows the whole period, the middle one the first pulse and the relaxation
    after it (2.5 pulse durations; times in us); with probes a third panel shows their field
    magnitude |E(t)| over that window.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = resp.times_s
    probes = resp.probe_field_V_per_m
    fig, axes = plt.subplots(3 if probes else 2, 1, figsize=(9, 10 if probes else 7), constrained_layout=True)
    window = t <= (2.5 * resp.pulse_duration_s if resp.pulse_duration_s > 0 else t[-1])
    for ax, sel, scale, unit in ((axes[0], slice(None), 1e3, "ms"), (axes[1], window, 1e6, "us")):
        ax2 = ax.twinx()
        for name, v in resp.channel_voltage_V.items():
            ax.plot(t[sel] * scale, v[sel], label=f"voltage, channel {name}")
            ax2.plot(t[sel] * scale, resp.channel_current_A[name][sel] * 1e3, "--", label=f"current, channel {name}")
        for a in (ax, ax2):  # symmetric limits: both zero lines coincide
            lim = max(abs(v) for v in a.get_ylim())
            a.set_ylim(-lim, lim)
        ax.set_xlabel(f"time [{unit}]")
        ax.set_ylabel("electrode voltage V_anode - V_cathode [V]")
        ax2.set_ylabel("current [mA]")
        ax.grid(True, alpha=0.3)
        lines = ax.get_legend_handles_labels()
        lines2 = ax2.get_legend_handles_labels()
        ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], loc="upper right", fontsize=8)
    axes[0].set_title(title or "periodic steady state over one period")
    axes[1].set_title("first pulse")
    if probes:
        ax = axes[2]
        for name, e in probes.items():
            ax.plot(t[window] * 1e6, np.linalg.norm(e[window], axis=1), label=f"probe {name}")
        ax.set_xlabel("time [us]")
        ax.set_ylabel("field magnitude |E| [V/m]")
        ax.set_title("field at the probes, first pulse")
        ax.grid(True, alpha=0.3)
        ax.legend(loc="upper right", fontsize=8)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def waveform_time_course(resp: WaveformResponse) -> tuple[list[str], np.ndarray]:
    """Header and rows of the time course over one period (``waveform_time_course.csv``).

    Columns: ``time_s``; per channel ``current_A`` and ``voltage_V`` (V_anode - V_cathode; with
    several channels ``current_A[name]``, ``voltage_V[name]``); per probe the magnitudes
    ``E_V_per_m[name]`` = |E(t)| and ``J_A_per_m2[name]`` = |J(t)|.
    """
    single = len(resp.channel_voltage_V) == 1
    header, columns = ["time_s"], [resp.times_s]
    for name, v in resp.channel_voltage_V.items():
        suffix = "" if single else f"[{name}]"
        header += [f"current_A{suffix}", f"voltage_V{suffix}"]
        columns += [resp.channel_current_A[name], v]
    for name, e in resp.probe_field_V_per_m.items():
        header += [f"E_V_per_m[{name}]", f"J_A_per_m2[{name}]"]
        columns += [np.linalg.norm(e, axis=1), np.linalg.norm(resp.probe_current_density_A_per_m2[name], axis=1)]
    return header, np.column_stack(columns)
