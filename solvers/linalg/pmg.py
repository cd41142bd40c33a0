r"""The coarse level of a p-multigrid: the degree-1 operator of the same mesh and its interpolation.

Why. CG + GAMG on a degree-3 operator (about 60 nonzeros per row) pays a set-up transient of
about 1.5 kB per dof (GAMG's graph and filtered copies of the matrix), which set the peak memory
of the ~1M-dof case (docs/performance.md, "Memory"). A two-level p-multigrid leaves the
degree-p operator to a few Chebyshev / Jacobi sweeps (no copy of it) and hands the smooth error
to the degree-1 operator of the same mesh (about 1/27 of the dofs at degree 3, 15 nonzeros per
row), where GAMG's transient is small. The method is :func:`emsim.solvers.linalg.ksp.create_ksp`'s
``"cg-pmg"``; this module builds its coarse level.

What. For a symmetric form a(u, v) on the degree-p Lagrange space V with Dirichlet dofs on some
facets: V_1 = Lagrange degree 1 on the same mesh, A_1 = a on V_1 with the same facets' dofs
Dirichlet (identity rows and columns, as in A), and P: V_1 -> V, the interpolation. P1 is a
subspace of Pp, so P is exact and, between degree-1 dofs whose hat functions stay clear of the
Dirichlet dofs, A_1 is the Galerkin product P^T A P, assembled directly (the triple product's
transient is not formed). The preconditioner is a fixed symmetric linear map, so CG stays valid; its
quality costs iterations only, never accuracy (CG's tolerance sets that).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fpetsc
from petsc4py import PETSc

__all__ = ["LowOrderCoarse"]


class LowOrderCoarse:
    """The degree-1 operator A_1 and the interpolation P (degree 1 into ``V``) of a symmetric form.

    Args:
        V: the (scalar) Lagrange space of the fine operator, degree 2 or more.
        form: (trial, test) -> the UFL bilinear form of the fine operator (the same
            coefficients and measures).
        dirichlet_facets: the facets (of ``V``'s mesh, dimension tdim - 1) whose dofs are
            Dirichlet in the fine operator
            (:attr:`emsim.solvers.electric.electrodes.ElectrodeSystem.dirichlet_facets`).

    Attributes:
        A: the assembled degree-1 operator (PETSc matrix; Dirichlet rows and columns identity).
        P: the interpolation matrix from the degree-1 space into ``V`` (rows: ``V``'s dofs).
        dofs: global number of degree-1 dofs.
    """

    def __init__(
        self,
        V: fem.FunctionSpace,
        form: Callable[[ufl.Argument, ufl.Argument], ufl.Form],
        dirichlet_facets: Sequence[np.ndarray],
    ) -> None:
        mesh = V.mesh
        self.V1 = fem.functionspace(mesh, ("Lagrange", 1))
        fdim = mesh.topology.dim - 1
        mesh.topology.create_connectivity(fdim, mesh.topology.dim)  # a no-op when the caller made it
        blocks = [fem.locate_dofs_topological(self.V1, fdim, f) for f in dirichlet_facets]
        dofs = np.unique(np.concatenate(blocks or [np.empty(0, np.int32)])).astype(np.int32)
        bc = fem.dirichletbc(fem.Function(self.V1), dofs)
        u, v = ufl.TrialFunction(self.V1), ufl.TestFunction(self.V1)
        self.A: PETSc.Mat = fpetsc.assemble_matrix(fem.form(form(u, v)), bcs=[bc])
        self.A.assemble()
        # dolfinx leaves the ghost rows' values to the assembly (its docstring: not finalised)
        self.P: PETSc.Mat = fpetsc.interpolation_matrix(self.V1, V)
        self.P.assemble()
        self.dofs = self.V1.dofmap.index_map.size_global

    def destroy(self) -> None:
        """Free the PETSc matrices."""
        self.A.destroy()
        self.P.destroy()
