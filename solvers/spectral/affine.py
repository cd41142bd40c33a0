r"""The frequency problem's block matrix as a fixed combination of matrices assembled once.

The bilinear form of :mod:`emsim.solvers.spectral.frequency` is linear in the admittivity
tensor S*_k = S_r + j S_i of every volume k and in the Robin conductance G_n = g_r + j g_i of
every bare electrode n:

.. math::

    A(f) = \sum_k \sum_c \begin{bmatrix} S_{r,c} & -S_{i,c} \\ S_{i,c} & S_{r,c} \end{bmatrix}
           \otimes C_{k,c}
         + \sum_n \begin{bmatrix} g_r & -g_i \\ g_i & g_r \end{bmatrix} \otimes M_n,

with C_{k,c} = \int_k \nabla v \cdot E_c \nabla u the stiffness of volume k for the basis tensor
E_c (rotated point by point on a curved patch, as the forms are), and M_n the surface mass matrix
of electrode n. Only the coefficients depend on the frequency. So a frequency sweep assembles
C_{k,c} and M_n once and every later frequency's matrix is a sum of arrays on the block matrix's
sparsity, written into it in one call. Each volume takes the smallest basis its tensor needs
(:data:`BASES`): the identity for an isotropic tissue (one matrix), e_i e_i^T for a layer
anisotropic along the patch axes or a pad's contact sublayer (three), the six symmetric unit
tensors otherwise; a basis of up to four tensors is one assembly over the volume's own cells (a
tensor in each of the four blocks). On the default cheek case (one core) the split costs about
1.2 s once and 0.04-0.06 s per frequency, against 0.37-0.45 s per assembly
(benchmarks/RESULTS.md, "The frequency sweep's matrix from matrices assembled once").

The Dirichlet rows and columns are those of :func:`dolfinx.fem.petsc.assemble_matrix`: every
basis matrix is assembled with the electrodes' condition and 0 on the diagonal (so each rank
zeroes the columns of the Dirichlet dofs it knows, exactly as the direct assembly does), and the
owned Dirichlet rows get 1 on the diagonal last. The operator checks itself once, when it is
built from the assembled matrix of the sweep's first complex frequency: its own matrix there must
equal the assembled one entry by entry (to 1e-10 of each entry, plus 1e-13 of the largest). If it
does not, the sweep keeps assembling (a warning says why); a later tensor outside the basis its
volume was assembled for (an isotropic tissue turned anisotropic) makes :meth:`fill` decline and
that frequency assembled. So the reuse changes the time, and the matrix only by round-off (the
same terms summed in another order; a tensor is expanded on its basis to 1e-12 of its largest
entry, :data:`STRUCTURE_TOL`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import IntegralType
from dolfinx.fem import petsc as fpetsc
from dolfinx.fem.forms import compile_form, create_form, get_integration_domains
from mpi4py import MPI

from ...meshes.patch import PatchMesh
from ..electric.conductivity import form_metadata, form_tensor

__all__ = ["BASES", "SYMMETRIC_COMPONENTS", "AffineBlockMatrix", "structure"]

log = logging.getLogger(__name__)

#: The (i, j) of the six symmetric unit tensors (e_i e_i^T, and e_i e_j^T + e_j e_i^T for i < j).
SYMMETRIC_COMPONENTS = ((0, 0), (1, 1), (2, 2), (0, 1), (0, 2), (1, 2))
#: Entrywise tolerance of the self-check: relative to each entry, and to the largest entry.
CHECK_RTOL, CHECK_ATOL_FRACTION = 1e-10, 1e-13
#: A tensor is taken as isotropic, diagonal or symmetric when what the smaller basis leaves out
#: is at most this fraction of its largest entry.
STRUCTURE_TOL = 1e-12


def _unit(i: int, j: int) -> np.ndarray:
    E = np.zeros((3, 3))
    E[i, j] = E[j, i] = 1.0
    return E


#: The bases a volume's tensors are expanded on: isotropic (the identity), diagonal, symmetric.
BASES: dict[str, list[np.ndarray]] = {
    "isotropic": [np.eye(3)],
    "diagonal": [_unit(i, i) for i in range(3)],
    "symmetric": [_unit(i, j) for i, j in SYMMETRIC_COMPONENTS],
}


def _expand(S: np.ndarray, basis: str) -> np.ndarray | None:
    """The complex coefficients of a 3x3 tensor on one of :data:`BASES`, None if it is not in its span."""
    S = np.asarray(S, dtype=complex)
    if S.shape != (3, 3):
        return None
    if basis == "isotropic":
        c = np.array([np.trace(S) / 3])
    elif basis == "diagonal":
        c = np.diag(S).copy()
    else:
        c = np.array([S[i, j] for i, j in SYMMETRIC_COMPONENTS])
    rebuilt = sum((ck * E for ck, E in zip(c, BASES[basis], strict=True)), np.zeros((3, 3), dtype=complex))
    if np.abs(S - rebuilt).max() > STRUCTURE_TOL * np.abs(S).max(initial=0.0):
        return None
    return c


def structure(S: np.ndarray) -> str | None:
    """The smallest of :data:`BASES` whose span holds the tensor S (None: not a symmetric 3x3 tensor)."""
    for basis in BASES:
        if _expand(S, basis) is not None:
            return basis
    return None


class AffineBlockMatrix:
    """A frequency sweep's block matrix from matrices assembled once (see the module doc).

    Args:
        patch: the tagged mesh.
        V: the blocked (re, im) Lagrange space of the frequency problem.
        degree: its degree (for the forms' quadrature on a curved patch).
        volumes: the tag of every volume of the forms, by name (the admittivities' keys).
        robin_surfaces: the facet tag of every Robin electrode's face, by name.
        bc: the Dirichlet condition of the electrodes (its values do not matter).
        dirichlet_blocks: its local blocks (owned and ghost).
        A: the block matrix, assembled (its sparsity and the reference for the self-check).
        admittivity: the admittivity tensors [S/m] A was assembled with, by volume.
        robin: the Robin conductances [S/m^2] A was assembled with, by electrode.

    After construction :attr:`usable` says whether the self-check passed; only then may
    :meth:`fill` replace an assembly.
    """

    def __init__(
        self, patch: PatchMesh, V: fem.FunctionSpace, degree: int, volumes: Mapping[str, int],
        robin_surfaces: Mapping[str, int], bc: fem.DirichletBC, dirichlet_blocks: np.ndarray, A: Any,
        admittivity: Mapping[str, np.ndarray], robin: Mapping[str, complex],
    ) -> None:  # fmt: skip
        comm = patch.mesh.comm
        self.usable = False
        self.reason = ""
        self._local_reason = ""  # a failure seen on this rank only, agreed over the ranks before use
        ai, aj, reference = A.getValuesCSR()
        self._ai, self._aj = ai, aj
        r0, _ = A.getOwnershipRange()
        lengths = np.diff(ai)
        rows = np.repeat(np.arange(len(lengths)), lengths)
        # the (re, re) entry of each 2x2 block: an even row (r0 is even) and an even column
        first = np.flatnonzero((rows % 2 == 0) & (aj % 2 == 0))
        span = lengths[rows[first]]  # the (im, re) entry of the block sits one row length further
        n = len(aj)
        inside = (first + span + 1 < n) & (first + 1 < n)
        if not (
            4 * len(first) == n  # the blocks cover every stored entry
            and inside.all()
            and np.array_equal(aj[first + 1], aj[first] + 1)
            and np.array_equal(aj[first + span], aj[first])
            and np.array_equal(aj[first + span + 1], aj[first] + 1)
        ):
            self._local_reason = "the block matrix's rows are not stored as whole 2x2 blocks"
        self._first, self._span = first, span
        # The Dirichlet rows and columns: each component matrix is assembled with the condition
        # (its rows and columns zero, as every rank's assembly leaves them: a rank zeroes the
        # columns of the Dirichlet dofs it knows), with 1 on the owned rows' diagonal added last.
        imap = V.dofmap.index_map
        owned = dirichlet_blocks[dirichlet_blocks < imap.size_local]
        bc_rows = np.zeros(len(lengths), dtype=bool)
        bc_rows[2 * owned] = bc_rows[2 * owned + 1] = True
        self._diagonal = np.flatnonzero(bc_rows[rows] & (aj == r0 + rows))
        if len(self._diagonal) != int(bc_rows.sum()):
            self._local_reason = self._local_reason or "a Dirichlet row has no diagonal entry"
        if self._declined(comm):  # every rank returns here, or none (they assemble together below)
            return
        # (volume or electrode, its basis or "robin", positions, (basis size, positions) values)
        self._matrices: list[tuple[str, str, np.ndarray, np.ndarray]] = []
        B = A.duplicate(copy=False)
        try:
            if self._assemble_volumes(patch, V, degree, volumes, admittivity, bc, B):
                self._assemble_robin(patch, V, robin_surfaces, bc, B)
        except Exception as err:  # noqa: BLE001 (the sweep then assembles: slower, never wrong)
            self._local_reason = f"building it failed: {type(err).__name__}: {err}"
        finally:
            B.destroy()
        if self._declined(comm):
            return
        self._values = np.zeros(n)
        values = self._combine(admittivity, robin)
        if values is None:  # (the admittivities are the same on every rank: so is this outcome)
            log.warning("the sweep assembles every frequency's matrix: %s", self.reason)
            return
        largest = comm.allreduce(float(np.abs(reference).max(initial=0.0)), op=MPI.MAX)
        bound = CHECK_RTOL * np.abs(reference) + CHECK_ATOL_FRACTION * largest
        bad = comm.allreduce(int(np.count_nonzero(np.abs(values - reference) > bound)))
        if bad:
            self.reason = f"{bad} entries differ from the assembled matrix"
            log.warning("the sweep assembles every frequency's matrix: %s", self.reason)
            return
        self.usable = True

    def _declined(self, comm: MPI.Comm) -> bool:
        """Agree over the ranks on the local failures so far (collective); True: not usable, with the reason."""
        reasons = [r for r in comm.allgather(self.reason or self._local_reason) if r]
        if not reasons:
            return False
        self.reason = reasons[0]
        log.warning("the sweep assembles every frequency's matrix: %s", self.reason)
        return True

    def _extract(self, B: Any, count: int) -> np.ndarray:
        """The first ``count`` blocks' values (count, n_blocks) of an assembled B on A's sparsity."""
        _, aj, av = B.getValuesCSR()
        f, s = self._first, self._span
        if len(aj) != len(self._aj):  # (not raised here: the other ranks would wait in the next assembly)
            self._local_reason = "a basis matrix's sparsity differs from the block matrix's"
            return np.zeros((count, len(f)))
        return np.stack([av[at] for at in (f, f + 1, f + s, f + s + 1)[:count]])

    def _assemble_volumes(
        self, patch: PatchMesh, V: fem.FunctionSpace, degree: int, volumes: Mapping[str, int],
        admittivity: Mapping[str, np.ndarray], bc: fem.DirichletBC, B: Any,
    ) -> bool:  # fmt: skip
        mesh = patch.mesh
        slots = [fem.Constant(mesh, np.zeros((3, 3))) for _ in range(4)]
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        dx = ufl.Measure("dx", domain=mesh, metadata=form_metadata(patch, degree))
        T = [form_tensor(patch, s) for s in slots]
        # blocks (row, column) = (v0, u0), (v0, u1), (v1, u0), (v1, u1): one basis tensor in each
        form = (
            ufl.inner(T[0] * ufl.grad(u[0]), ufl.grad(v[0])) + ufl.inner(T[1] * ufl.grad(u[1]), ufl.grad(v[0]))
            + ufl.inner(T[2] * ufl.grad(u[0]), ufl.grad(v[1])) + ufl.inner(T[3] * ufl.grad(u[1]), ufl.grad(v[1]))
        ) * dx(1)  # fmt: skip
        compiled = compile_form(mesh.comm, form)
        for name, tag in volumes.items():
            # the same basis on every rank: the structure of the tensor, not of the local cells
            basis = structure(admittivity[name])
            if basis is None:
                self.reason = f"the admittivity of {name} is not a symmetric 3x3 tensor"
                return False
            tensors = BASES[basis]
            cells = get_integration_domains(IntegralType.cell, patch.cell_tags, [tag])[0][1]
            a = create_form(compiled, [V, V], mesh, {IntegralType.cell: [(1, cells)]}, {}, {s: s for s in slots})
            parts = []
            for start in range(0, len(tensors), 4):
                group = tensors[start : start + 4]
                for k, slot in enumerate(slots):
                    slot.value = group[k] if k < len(group) else np.zeros((3, 3))
                B.zeroEntries()
                fpetsc.assemble_matrix(B, a, bcs=[bc], diag=0.0)
                B.assemble()
                parts.append(self._extract(B, len(group)))
            C = np.concatenate(parts)
            where = np.flatnonzero(np.any(C != 0.0, axis=0))
            self._matrices.append((name, basis, where, np.ascontiguousarray(C[:, where])))
        return True

    def _assemble_robin(
        self, patch: PatchMesh, V: fem.FunctionSpace, surfaces: Mapping[str, int], bc: fem.DirichletBC, B: Any
    ) -> None:
        if not surfaces:
            return
        mesh = patch.mesh
        u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
        ds = ufl.Measure("ds", domain=mesh)
        compiled = compile_form(mesh.comm, u[0] * v[0] * ds(1))
        for name, tag in surfaces.items():
            facets = get_integration_domains(IntegralType.exterior_facet, patch.facet_tags, [tag])[0][1]
            a = create_form(compiled, [V, V], mesh, {IntegralType.exterior_facet: [(1, facets)]}, {}, {})
            B.zeroEntries()
            fpetsc.assemble_matrix(B, a, bcs=[bc], diag=0.0)
            B.assemble()
            M = self._extract(B, 1)
            where = np.flatnonzero(M[0] != 0.0)
            self._matrices.append((name, "robin", where, np.ascontiguousarray(M[:, where])))

    def _combine(self, admittivity: Mapping[str, np.ndarray], robin: Mapping[str, complex]) -> np.ndarray | None:
        """The matrix's local CSR values, or None (with :attr:`reason`) if a tensor leaves its basis."""
        values = self._values
        values[:] = 0.0
        f, s = self._first, self._span
        for name, basis, where, C in self._matrices:
            if basis == "robin":
                c: np.ndarray | None = np.array([complex(robin[name])])
            else:
                c = _expand(admittivity[name], basis)
            if c is None:
                self.reason = f"the admittivity of {name} is no longer {basis} (the matrices were assembled for that)"
                return None
            at, down = f[where], f[where] + s[where]
            re, im = c.real @ C, c.imag @ C
            values[at] += re
            values[at + 1] -= im
            values[down] += im
            values[down + 1] += re
        values[self._diagonal] = 1.0
        return values

    def fill(self, A: Any, admittivity: Mapping[str, np.ndarray], robin: Mapping[str, complex]) -> bool:
        """Write the matrix of these admittivities [S/m] and conductances [S/m^2] into ``A`` (assembled).

        Returns False (``A`` untouched) when the operator is not usable, or when a tensor has
        left the basis its volume was assembled for (an isotropic tissue given an anisotropic or
        a non-symmetric tensor): the caller then assembles.
        """
        if not self.usable:
            return False
        values = self._combine(admittivity, robin)
        if values is None:
            log.warning("the sweep assembles this frequency's matrix: %s", self.reason)
            return False
        A.setValuesCSR(self._ai, self._aj, values)
        A.assemble()
        return True

    @property
    def stored_values(self) -> int:
        """How many numbers the operator keeps (its memory is about 8 bytes each, plus the indices)."""
        return int(sum(C.size for *_, C in self._matrices))
