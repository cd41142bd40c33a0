"""The linear-solver machinery: Cholesky for symmetric operators, refused for unsymmetric ones.

Runs serially and in the MPI pass (the matrices are distributed over every rank).
"""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from petsc4py import PETSc

from emsim.errors import SolverError
from emsim.solvers.linalg.ksp import create_ksp

N = 240


def _matrix(skew: float, *, pair: int | None = None) -> PETSc.Mat:
    """A 1-D Laplacian plus a diagonal (SPD) over every rank, plus ``skew`` times a skew part.

    The skew part is on every off-diagonal pair, or only on the pair (pair, pair + 1).
    """
    A = PETSc.Mat().createAIJ([N, N], nnz=(3, 1), comm=MPI.COMM_WORLD)
    r0, r1 = A.getOwnershipRange()
    for i in range(r0, r1):
        A.setValue(i, i, 2.0 + (0.37 * i) % 1.0)
        if i + 1 < N:
            A.setValue(i, i + 1, -1.0 + (skew if pair in (None, i) else 0.0))
        if i > 0:
            A.setValue(i, i - 1, -1.0 - (skew if pair in (None, i - 1) else 0.0))
    A.assemble()
    return A


def _solve(A: PETSc.Mat, symmetric: bool) -> tuple[np.ndarray, str]:
    ksp = create_ksp(A, method="mumps", name="emsim_test", symmetric=symmetric)
    b, x = A.createVecs()
    r0, r1 = b.getOwnershipRange()
    b.array[:] = np.linspace(-1.0, 2.0, N)[r0:r1]
    ksp.solve(b, x)
    full = np.concatenate(MPI.COMM_WORLD.allgather(x.array.copy()))
    out = full, ksp.getPC().getType()
    ksp.destroy()
    return out


def test_a_symmetric_operator_is_factorised_by_cholesky_with_the_lu_solution():
    x_lu, kind_lu = _solve(_matrix(0.0), symmetric=False)
    x_ch, kind_ch = _solve(_matrix(0.0), symmetric=True)
    assert (kind_lu, kind_ch) == ("lu", "cholesky")
    assert np.max(np.abs(x_ch - x_lu)) <= 1e-12 * np.max(np.abs(x_lu))


def test_an_unsymmetric_operator_declared_symmetric_is_refused_not_half_read():
    with pytest.raises(SolverError, match="emsim_test: the matrix is not symmetric"):
        _solve(_matrix(1e-6), symmetric=True)


def test_an_asymmetry_across_the_ranks_boundary_is_refused_on_every_rank():
    """The pair straddling rank 0's last row: every rank raises (none goes on to factorise)."""
    A = _matrix(0.0)
    last = MPI.COMM_WORLD.bcast(A.getOwnershipRange()[1] - 1, root=0)
    A.destroy()
    with pytest.raises(SolverError, match="not symmetric"):
        _solve(_matrix(1e-6, pair=min(last, N - 2)), symmetric=True)
