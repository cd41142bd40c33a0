"""The linear solvers emsim owns: one KSP per operator, set up once, reused for many solves.

MUMPS (LU) for small problems and as the reference; CG + GAMG (smoothed aggregation, Chebyshev
/ Jacobi smoothers) for large symmetric positive definite ones. Each KSP gets its own options
prefix, and its options are removed from PETSc's global database once read.
"""

from __future__ import annotations

import itertools
from typing import Any

from ..errors import InputError

__all__ = ["METHODS", "MUMPS_MAX_DOFS", "assemble_lifted_rhs", "create_ksp", "resolve_method", "solve_checked"]

#: Above this many global dofs, method "auto" uses CG + GAMG instead of MUMPS
#: (measured on the default case: benchmarks/RESULTS.md).
MUMPS_MAX_DOFS = 200_000
#: Methods a problem may ask for.
METHODS = ("auto", "mumps", "cg-gamg")

_counter = itertools.count()


def resolve_method(method: str, dofs: int) -> str:
    """The concrete method for ``method`` ("auto" picks by problem size)."""
    if method not in METHODS:
        raise InputError("solver.method", method, f"one of {', '.join(METHODS)}")
    if method == "auto":
        return "mumps" if dofs <= MUMPS_MAX_DOFS else "cg-gamg"
    return method


def create_ksp(
    A: Any, *, method: str, rtol: float = 1e-10, name: str = "emsim", python_pc: Any = None, max_it: int = 2000
) -> Any:
    """A KSP for the assembled matrix ``A``, with its preconditioner set up (factorised) once.

    Args:
        A: assembled PETSc matrix (symmetric positive definite for "cg-gamg").
        method: "mumps", "cg-gamg" (see :func:`resolve_method`), or "fgmres" with the
            preconditioner ``python_pc`` (a petsc4py Python PC context).
        rtol: relative residual tolerance of the Krylov method.
        name: stem of the options prefix (a unique number is appended).
        python_pc: the preconditioner context for "fgmres".
        max_it: iteration limit of the Krylov method.
    """
    from petsc4py import PETSc

    prefix = f"{name}_{next(_counter)}_"
    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOperators(A)
    ksp.setOptionsPrefix(prefix)
    if method == "mumps":
        settings: dict[str, Any] = {
            "ksp_type": "preonly",
            "pc_type": "lu",
            "pc_factor_mat_solver_type": "mumps",
        }
    elif method == "fgmres":
        settings = {
            "ksp_type": "fgmres",
            "ksp_rtol": rtol,
            "ksp_atol": 1e-30,
            "ksp_max_it": max_it,
            "ksp_gmres_restart": 100,
        }
    else:
        settings = {
            "ksp_type": "cg",
            "pc_type": "gamg",
            "ksp_rtol": rtol,
            "ksp_atol": 1e-30,
            "ksp_max_it": max_it,
            "pc_gamg_threshold": 0.02,
            "mg_levels_ksp_type": "chebyshev",
            "mg_levels_pc_type": "jacobi",
        }
    opts = PETSc.Options()
    for key, value in settings.items():
        opts[prefix + key] = value
    ksp.setFromOptions()
    for key in settings:
        del opts[prefix + key]  # keep the global options database clean
    if python_pc is not None:
        pc = ksp.getPC()
        pc.setType(PETSc.PC.Type.PYTHON)
        pc.setPythonContext(python_pc)
    ksp.setUp()
    return ksp


def assemble_lifted_rhs(b: Any, L: Any, a: Any, bc: Any, *, diagonal: float = 1.0) -> Any:
    """Assemble ``L`` into ``b`` with the Dirichlet values of ``bc`` lifted out of ``a``.

    Args:
        b: PETSc vector, overwritten.
        L: compiled linear form.
        a: compiled bilinear form the matrix was assembled from.
        bc: the Dirichlet condition (its function holds this solve's values).
        diagonal: the value on the matrix diagonal of the Dirichlet rows.
    """
    from dolfinx.fem import petsc as fpetsc
    from petsc4py import PETSc

    with b.localForm() as loc:
        loc.set(0.0)
    fpetsc.assemble_vector(b, L)
    fpetsc.apply_lifting(b, [a], bcs=[[bc]])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    fpetsc.set_bc(b, [bc], alpha=diagonal)
    return b


def solve_checked(ksp: Any, b: Any, x: Any, what: str) -> int:
    """Solve ``ksp`` for ``x``; raise :class:`~emsim.errors.SolverError` if it diverged.

    Returns:
        The iteration count.
    """
    from ..errors import SolverError

    ksp.solve(b, x)
    reason = ksp.getConvergedReason()
    if reason < 0:
        raise SolverError(f"{what} did not converge (PETSc reason {reason})")
    return ksp.getIterationNumber()
