"""The linear-solver machinery: Cholesky for symmetric operators, refused for unsymmetric ones."""

from __future__ import annotations

import numpy as np
import pytest
from mpi4py import MPI
from petsc4py import PETSc

from emsim.errors import SolverError
from emsim.solvers.linalg.ksp import create_ksp


def _matrix(n: int, skew: float) -> PETSc.Mat:
    """A 1-D Laplacian plus a diagonal (SPD), plus ``skew`` times a skew-symmetric off-diagonal."""
    A = PETSc.Mat().createAIJ([n, n], nnz=3, comm=MPI.COMM_SELF)
    rng = np.random.default_rng(7)
    for i in range(n):
        A.setValue(i, i, 2.0 + rng.random())
        if i + 1 < n:
            A.setValue(i, i + 1, -1.0 + skew)
            A.setValue(i + 1, i, -1.0 - skew)
    A.assemble()
    return A


def _solve(A: PETSc.Mat, symmetric: bool) -> tuple[np.ndarray, str]:
    ksp = create_ksp(A, method="mumps", name="emsim_test", symmetric=symmetric)
    b, x = A.createVecs()
    b.array[:] = np.linspace(-1.0, 2.0, b.getSize())
    ksp.solve(b, x)
    out = x.array.copy(), ksp.getPC().getType()
    ksp.destroy()
    return out


def test_a_symmetric_operator_is_factorised_by_cholesky_with_the_lu_solution():
    x_lu, kind_lu = _solve(_matrix(200, 0.0), symmetric=False)
    x_ch, kind_ch = _solve(_matrix(200, 0.0), symmetric=True)
    assert (kind_lu, kind_ch) == ("lu", "cholesky")
    assert np.max(np.abs(x_ch - x_lu)) <= 1e-12 * np.max(np.abs(x_lu))


def test_an_unsymmetric_operator_declared_symmetric_is_refused_not_half_read():
    with pytest.raises(SolverError, match="emsim_test: the matrix is not symmetric"):
        _solve(_matrix(50, 1e-6), symmetric=True)
