r"""The electrode system shared by the d.c. and frequency problems.

Electrodes are equipotential metal with one unknown potential V_e each:

* on a gel pad, or bare without a contact impedance, phi = V_e on the metal face (exact
  Dirichlet condition);
* bare on the skin with a contact impedance, the stratum corneum is a Robin condition
  S grad phi . n = G (V_e - phi), with G = 1 / r_c (+ j w c_c at a frequency) [S/m^2].

Current control by linearity (lead fields): for each electrode k the *unit field* phi_k solves
the problem with V_k = 1 and every other electrode (and the ground) at 0. The consistent
(variational) currents leaving electrode i in unit field k form the admittance matrix Y [S].
A channel's current pattern then fixes the electrode potentials through a small system (tied
anodes, tied cathodes at 0 V or the grounded deep face, floating electrodes at zero current):
:func:`channel_potentials`, the same for real and complex Y. This is the Schur complement of
the "one real unknown per electrode" mixed formulation onto the electrode potentials.

This module owns the bookkeeping both problems share: which electrodes are Robin and which
Dirichlet, their dofs and indicator vectors (for the consistent currents), the channel solve,
and the cell fields E = -grad phi and J = S E.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping, Sequence
from typing import ClassVar

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.mesh import Mesh
from mpi4py import MPI
from petsc4py import PETSc

from ...meshes.patch import PatchMesh
from ...models.case import Case
from ...models.electrodes import Channel
from .conductivity import cell_tensors

__all__ = [
    "ElectrodeSystem",
    "P1CellGradient",
    "cell_gradients",
    "channel_potentials",
    "current_density",
    "unit_channel_potentials",
]


def channel_potentials(Y: np.ndarray, names: Sequence[str], channel: Channel, current_A: complex) -> np.ndarray:
    """Electrode potentials [V] (real or phasors) driving ``channel`` at ``current_A`` through ``Y``.

    Anodes are tied, cathodes tied at 0 V (or the grounded deep face is the return), every other
    electrode floats (zero net current).

    Args:
        Y: admittance matrix [S] (n x n, real or complex), ordered as ``names``.
        names: electrode names.
        channel: the channel.
        current_A: the channel's current [A] (a phasor for complex Y).
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
    dtype = np.result_type(Y.dtype, type(current_A))
    rhs = np.zeros(len(groups), dtype=dtype)
    rhs[0] = current_A
    keep = [g for g in range(len(groups)) if channel.grounded or g != 1]  # cathode at 0 V
    Vg = np.zeros(len(groups), dtype=dtype)
    Vg[keep] = np.linalg.solve(Yg[np.ix_(keep, keep)], rhs[keep])
    return T @ Vg


def unit_channel_potentials(Y: np.ndarray, names: Sequence[str], channels: Sequence[Channel]) -> np.ndarray:
    """Electrode potentials per unit current of each channel: (n_electrodes, n_channels) [V/A]."""
    return np.column_stack([channel_potentials(Y, names, ch, 1.0) for ch in channels])


class ElectrodeSystem:
    """Robin and Dirichlet electrodes of a case on a function space, with their indicators.

    Args:
        case: the case.
        patch: its tagged mesh.
        V: the Lagrange space of the potential (scalar, or blocked (re, im) with ``bs = 2``).
        robin_admittance: Robin conductance per area G [S/m^2] by bare-with-contact electrode
            (complex at a frequency).
    """

    def __init__(self, case: Case, patch: PatchMesh, V: fem.FunctionSpace, robin_admittance: Mapping[str, complex]) -> None:
        self.case, self.patch, self.V = case, patch, V
        self.names = [e.name for e in case.electrodes]
        self.robin = dict(robin_admittance)
        mesh = patch.mesh
        fdim = mesh.topology.dim - 1
        mesh.topology.create_connectivity(fdim, mesh.topology.dim)
        faces = [f"electrode:{n}" for n in self.names if n not in self.robin]
        if case.grounded:
            faces.append("bottom")
        self.dirichlet: dict[str, np.ndarray] = {}
        #: The facets of each Dirichlet face (an electrode's metal, or "ground"), by the same keys:
        #: another space on the mesh (the p-multigrid's degree-1 level) takes its dofs from them.
        self.dirichlet_facets: dict[str, np.ndarray] = {}
        for face in faces:
            facets = patch.facet_tags.find(patch.surfaces[face])
            key = "ground" if face == "bottom" else face.split(":", 1)[1]
            self.dirichlet_facets[key] = facets
            self.dirichlet[key] = fem.locate_dofs_topological(V, fdim, facets)
        blocks = np.concatenate(list(self.dirichlet.values()) or [np.empty(0, np.int32)])
        self.dirichlet_blocks = np.unique(blocks).astype(np.int32)
        imap = V.dofmap.index_map
        self.bs = V.dofmap.index_map_bs
        n_all, n_local = self.bs * (imap.size_local + imap.num_ghosts), self.bs * imap.size_local
        # Indicator of each Dirichlet electrode's dofs, per component: the consistent current
        # is the residual summed over them.
        self.indicators: dict[str, list[np.ndarray]] = {}
        for key, blk in self.dirichlet.items():
            parts = []
            for c in range(self.bs):
                w = np.zeros(n_all)
                w[self.bs * blk + c] = 1.0
                parts.append(w[:n_local])
            self.indicators[key] = parts

    def surface(self, name: str) -> int:
        """Facet tag of electrode ``name``'s metal face."""
        return self.patch.surfaces[f"electrode:{name}"]

    def set_unit_dirichlet(self, g: fem.Function, k: str) -> None:
        """Fill the boundary function ``g``: 1 (+0j) on electrode k's face, 0 elsewhere."""
        g.x.array[:] = 0.0
        if k in self.dirichlet:
            g.x.array[self.bs * self.dirichlet[k]] = 1.0

    def dirichlet_currents(self, residual: PETSc.Vec, comm: MPI.Comm) -> dict[str, complex | float]:
        """Consistent currents [A] through the Dirichlet faces from an assembled residual vector.

        Args:
            residual: PETSc vector of a(phi, v) (ghosts added to their owners).
            comm: the mesh communicator.

        Returns:
            By electrode name (and ``"ground"``): real for scalar spaces, complex for blocked ones.
        """
        local = residual.array_r
        out: dict[str, complex | float] = {}
        for key, parts in self.indicators.items():
            values = [comm.allreduce(float(local @ w)) for w in parts]
            out[key] = values[0] if self.bs == 1 else complex(values[0], values[1])
        return out


def cell_gradients(mesh: Mesh, scalars: Sequence[ufl.core.expr.Expr]) -> list[np.ndarray]:
    """-grad of each UFL scalar per cell (DG0 interpolation; owned and ghost cells): (n, 3) arrays."""
    W = fem.functionspace(mesh, ("DG", 0, (3,)))
    out = []
    for u in scalars:
        f = fem.Function(W)
        f.interpolate(fem.Expression(-ufl.grad(u), W.element.interpolation_points))
        f.x.scatter_forward()
        out.append(f.x.array.reshape(-1, 3).copy())
    return out


class P1CellGradient:
    """grad u per cell of a degree-1 Lagrange field u on affine tetrahedra, from its dof values.

    The gradient of a P1 field is constant on an affine cell: grad u = J^-T (u_1 - u_0, u_2 - u_0,
    u_3 - u_0) with J the cell's Jacobian (columns x_i - x_0). The same numbers as the DG0
    interpolation of ``grad(u)`` (:func:`cell_gradients`) to round-off, without evaluating a
    form per call: a sweep takes it 4 times per frequency (two fields, two components).
    J^-T is computed once per mesh (:meth:`of`).

    Args:
        mesh: a tetrahedral mesh with an affine (degree-1) geometry.
    """

    _cache: ClassVar[weakref.WeakKeyDictionary] = weakref.WeakKeyDictionary()  # by mesh

    def __init__(self, mesh: Mesh) -> None:
        g = mesh.geometry
        self.nodes_m = np.array(g.x, copy=True)  # the node positions J^-T was made for [m]
        x = g.x[g.dofmaps[0]]  # (n_cells, 4, 3): the vertices, in the P1 element's local order
        J = np.transpose(x[:, 1:] - x[:, :1], (0, 2, 1))  # J[:, a, b] = (x_b - x_0)_a
        self.inverse_transpose = np.ascontiguousarray(np.transpose(np.linalg.inv(J), (0, 2, 1)))

    @classmethod
    def of(cls, mesh: Mesh) -> P1CellGradient | None:
        """The operator of ``mesh``, or None when its cells are not affine tetrahedra.

        Made once per mesh and node positions: a morph (:func:`emsim.meshes.morph.morph_layers`)
        moves the nodes of the same mesh object in place, so the held operator is checked
        against the nodes (an exact comparison, about 1 ms on 10^5 nodes) and made again when
        they moved.
        """
        if mesh.topology.cell_name() != "tetrahedron" or mesh.geometry.cmaps[0].degree != 1:
            return None
        op = cls._cache.get(mesh)
        if op is None or not np.array_equal(op.nodes_m, mesh.geometry.x):
            op = cls._cache[mesh] = cls(mesh)
        return op

    def __call__(self, values: np.ndarray, dofs: np.ndarray) -> np.ndarray:
        """(n_cells, 3) grad u per local cell (owned and ghost).

        Args:
            values: u at the local dofs (owned and ghost: scattered forward).
            dofs: (n_cells, 4) the cells' dofs (``V.dofmap.list`` of the P1 space of ``values``).
        """
        u = values[dofs]
        return np.einsum("nij,nj->ni", self.inverse_transpose, u[:, 1:] - u[:, :1])


def current_density(patch: PatchMesh, E: np.ndarray, admittivity: Mapping[str, np.ndarray]) -> np.ndarray:
    """J = S E per cell [A/m^2] from the field E [V/m] and the admittivity tensor of each volume.

    On a curved patch each cell's tensor is rotated into its local frame at the cell centroid
    (:func:`emsim.solvers.electric.conductivity.cell_tensors`).
    """
    J = np.zeros_like(E, dtype=np.result_type(E.dtype, *(t.dtype for t in admittivity.values())))
    for name, tensor in admittivity.items():
        cells = patch.cell_tags.find(patch.volumes[name])
        if patch.surface is None:
            J[cells] = E[cells] @ tensor.T
        else:
            J[cells] = np.einsum("nij,nj->ni", cell_tensors(patch, cells, tensor), E[cells])
    return J
