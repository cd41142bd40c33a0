"""The linear solvers emsim owns: one KSP per operator, set up once, reused for many solves.

MUMPS for small problems and as the reference: Cholesky (LDL^T) where the operator is symmetric
by construction (the electric and the heat problems), LU otherwise; CG + GAMG (smoothed
aggregation, Chebyshev / Jacobi smoothers) for large symmetric positive definite ones; for
those of Lagrange degree 2 or 3, CG + p-multigrid (:mod:`emsim.solvers.linalg.pmg`: Chebyshev /
Jacobi on the degree-p operator, GAMG on the degree-1 operator of the same mesh).

Options. Every problem's KSP has a stable options prefix (``emsim_electric_``,
``emsim_frequency_``, ``emsim_presb_``, ``emsim_thermal_``, ``emsim_thermal_near_``), and emsim's settings are defaults
under it: an option a user has put into PETSc's database (``PETSC_OPTIONS`` or the command
line, e.g. ``-emsim_electric_ksp_rtol 1e-12``) wins. The defaults emsim set are removed from
the database once read; the user's stay.

Every linear solve goes through :func:`solve_checked`, which counts them (:data:`SOLVES`), so
that tests can prove a result was reused rather than solved again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dolfinx import fem
from dolfinx.fem import petsc as fpetsc
from mpi4py import MPI
from petsc4py import PETSc

from ...errors import InputError, SolverError
from .pmg import LowOrderCoarse

__all__ = [
    "ELECTRIC_MUMPS_MAX_DOFS",
    "METHODS",
    "MUMPS_MAX_DOFS",
    "MUMPS_MAX_DOFS_BY_DEGREE",
    "SOLVES",
    "SolveWith",
    "assemble_lifted_rhs",
    "create_ksp",
    "resolve_method",
    "solve_checked",
]

#: Above this many global dofs, method "auto" uses CG + GAMG instead of MUMPS
#: (measured on the default case at degree 2: GAMG 12 s against MUMPS 20 s on 2 cores).
MUMPS_MAX_DOFS = 200_000
#: The same switch per Lagrange degree, for the symmetric electric problem, which MUMPS
#: factorises by Cholesky (half the LU's factor). Measured on 2 cores (docs/performance.md), the
#: layered meshes' flat cells slow CG + GAMG down while the factorisation does not care: the
#: layered disk (degree 2, 310,859 dofs) 16.4 s and 1416 MB with Cholesky (10.6 s to factorise)
#: against 37.1 s and 811 MB with CG + GAMG (246 iterations); the limb patch (degree 1, 412,307
#: dofs) 5.6 s to factorise and 0.5 s to solve, 1724 MB, against CG + GAMG's 118 iterations.
#: Degree 3 couples more dofs per row (about 3x the nonzeros of degree 2: a denser factor)
#: and stays at 200k (GAMG: 84 CG iterations against 26 at degree 2, but the edge-graded
#: meshes keep its dofs few). This is the switch on the layered mesher's flat cells (its prisms
#: split in three tetrahedra; :data:`ELECTRIC_MUMPS_MAX_DOFS`).
MUMPS_MAX_DOFS_BY_DEGREE = {1: 500_000, 2: 400_000, 3: MUMPS_MAX_DOFS}
#: The electric problem's switch per mesher (:attr:`emsim.meshes.patch.PatchMesh.mesher`:
#: "layered", "free", or "imported", which takes the free mesher's) and degree. On the free mesher's graded tetrahedra CG +
#: p-multigrid converges in 25-30 iterations at degree 2 and beats the factorisation from about
#: 90k dofs. Measured on 1 rank: the disk at fine (89,894 dofs), set-up and solve 0.59 s against
#: 1.59 s; the default cheek's d.c. part at degree 2, whole process (`benchmarks/run.py --only
#: cheek-dc-coarse-p2 cheek-dc-default-p2`), 264,576 dofs 15.3 s and 491 MB against 26.2 s and
#: 1299 MB, 384,259 dofs 25.0 s and 624 MB against 37.5 s and 1714 MB. So it takes over above
#: 100k there. On the layered mesher's flat cells Jacobi smoothing struggles as GAMG does (the
#: layered disk: 190 iterations, 17 s against the factorisation's 10.4 s), so the factorisation
#: keeps them up to 400k. Degree 3 on the free mesh: the disk at default, 101,130 dofs, 2.1 s
#: (MUMPS) against 2.5 s: 200k stays.
_FREE_ELECTRIC_MUMPS_MAX_DOFS = {1: 500_000, 2: 100_000, 3: MUMPS_MAX_DOFS}
ELECTRIC_MUMPS_MAX_DOFS = {
    "layered": MUMPS_MAX_DOFS_BY_DEGREE,
    "free": _FREE_ELECTRIC_MUMPS_MAX_DOFS,
    "imported": _FREE_ELECTRIC_MUMPS_MAX_DOFS,  # a mesh file's tetrahedra: no flat prisms known
}
#: Methods a problem may ask for. "cg-pmg" (CG + p-multigrid) is the electric problem's at
#: degree 2 or 3; at degree 1, and for a problem without it (the heat, the frequency
#: problem's inner solves), it is "cg-gamg".
METHODS = ("auto", "mumps", "cg-gamg", "cg-pmg")

#: Number of linear solves made in this process, by problem name (see :func:`solve_checked`).
SOLVES: dict[str, int] = {}


def resolve_method(
    method: str, dofs: int, *, iterative: str = "cg-gamg", degree: int | None = None, direct: str = "mumps",
    limits: Mapping[int, int] | None = None,
) -> str:
    """The concrete method for ``method``: "mumps", ``direct`` or ``iterative`` ("auto" picks by size).

    Args:
        method: one of :data:`METHODS`.
        dofs: global number of unknowns.
        iterative: the problem's iterative method ("cg-gamg"; "cg-pmg" for the electric problem
            at degree 2 or 3; "presb" for the block form). Any method but "mumps" asked for by
            name resolves to it.
        direct: what "auto" takes for a problem of at most the switch's dofs ("mumps", or
            "presb-mumps" for the block form: PRESB with MUMPS inner solves). "mumps" asked for
            by name is always "mumps".
        degree: Lagrange degree of the unknowns ("auto" switches at ``limits[degree]``;
            default :data:`MUMPS_MAX_DOFS`).
        limits: the switch per degree (default :data:`MUMPS_MAX_DOFS_BY_DEGREE`; the electric
            problem's: :data:`ELECTRIC_MUMPS_MAX_DOFS`).
    """
    if method not in METHODS:
        raise InputError("solver.method", method, f"one of {', '.join(METHODS)}")
    if method == "auto":
        per_degree = MUMPS_MAX_DOFS_BY_DEGREE if limits is None else limits
        limit = per_degree.get(degree, MUMPS_MAX_DOFS) if degree is not None else MUMPS_MAX_DOFS
        return direct if dofs <= limit else iterative
    return "mumps" if method == "mumps" else iterative


def create_ksp(
    A: PETSc.Mat, *, method: str, rtol: float = 1e-10, name: str = "emsim", python_pc: object | None = None,
    max_it: int = 2000, symmetric: bool = False, coarse: LowOrderCoarse | None = None,
) -> PETSc.KSP:
    """A KSP for the assembled matrix ``A``, with its preconditioner set up (factorised) once.

    Args:
        A: assembled PETSc matrix (symmetric positive definite for "cg-gamg").
        method: "mumps", "cg-gamg", "cg-pmg" (with ``coarse``; see :func:`resolve_method`), or
            "fgmres" or "cg" with the preconditioner ``python_pc`` (a petsc4py Python PC context).
        rtol: relative residual tolerance of the Krylov method.
        name: the options prefix without its trailing underscore (``emsim_electric``).
        python_pc: the preconditioner context for "fgmres" and "cg".
        max_it: iteration limit of the Krylov method.
        symmetric: ``A`` is symmetric by construction (a symmetric bilinear form, Dirichlet rows
            and columns removed alike). "mumps" then factorises it by Cholesky (MUMPS's LDL^T
            with pivoting, from the upper triangle; checked symmetric to 1e-12 of its largest
            row sum first, a :class:`~emsim.errors.SolverError` otherwise) instead of LU: about
            the same time on the default case's electric matrix, half the factor's memory (52
            against 89 MB), the same solution to round-off.
        coarse: for "cg-pmg", the degree-1 operator and the interpolation from its space into
            ``A``'s.
    """
    prefix = f"{name}_"
    if method == "mumps":
        if symmetric:
            # MUMPS's Cholesky reads the upper triangle only: a term that broke the symmetry
            # would be dropped silently, so it is checked (7 ms on the default case's matrix)
            # MatIsSymmetric of an MPIAIJ matrix answers per rank for the off-process block: the
            # verdict is agreed on every rank, or some would raise while others factorise (a hang)
            tol = 1e-12 * A.norm(PETSc.NormType.INFINITY)
            if not A.getComm().tompi4py().allreduce(bool(A.isSymmetric(tol)), op=MPI.LAND):
                raise SolverError(f"{name}: the matrix is not symmetric to {tol:.3g}; it cannot be factorised by Cholesky")
            A.setOption(PETSc.Mat.Option.SYMMETRIC, True)
        settings: dict[str, Any] = {
            "ksp_type": "preonly",
            "pc_type": "cholesky" if symmetric else "lu",
            "pc_factor_mat_solver_type": "mumps",
        }
    else:
        # every Krylov method: emsim's tolerance, no absolute floor (the residual is relative)
        krylov = {"ksp_rtol": rtol, "ksp_atol": 1e-30, "ksp_max_it": max_it}
        if method == "fgmres":
            settings = {"ksp_type": "fgmres", **krylov, "ksp_gmres_restart": 100}
        elif method == "cg" and python_pc is not None:
            settings = {"ksp_type": "cg", **krylov}
        elif method == "cg-pmg":
            if coarse is None:
                raise SolverError(f"{name}: method cg-pmg needs the degree-1 coarse operator")
            # Two levels: 2 Chebyshev / Jacobi iterations on A (the PCMG default count), then the
            # coarse correction by one GAMG V-cycle on the degree-1 operator (a fixed linear map:
            # CG stays valid). Measured on the disk at degree 3, 276k dofs (docs/performance.md):
            # 46 CG iterations against GAMG's 37, set-up and solve 7.2 s against 9.2 s, the
            # process's peak 613 MB against 862 MB.
            settings = {
                "ksp_type": "cg", **krylov, "pc_type": "mg", "pc_mg_levels": 2,
                "mg_levels_ksp_type": "chebyshev", "mg_levels_pc_type": "jacobi",
                "mg_coarse_ksp_type": "preonly", "mg_coarse_pc_type": "gamg", "mg_coarse_pc_gamg_threshold": 0.02,
            }  # fmt: skip
        elif method == "cg-gamg":
            settings = {
                "ksp_type": "cg", **krylov, "pc_type": "gamg", "pc_gamg_threshold": 0.02,
                "mg_levels_ksp_type": "chebyshev", "mg_levels_pc_type": "jacobi",
            }  # fmt: skip
        else:
            raise SolverError(f"{name}: no linear solver {method!r} (mumps, cg-gamg, cg-pmg, fgmres or cg with a preconditioner)")
    ksp = PETSc.KSP().create(A.getComm())
    ksp.setOperators(A)
    ksp.setOptionsPrefix(prefix)
    opts = PETSc.Options()
    ours = [key for key in settings if not opts.hasName(prefix + key)]  # the user's options win
    for key in ours:
        opts[prefix + key] = settings[key]
    try:
        ksp.setFromOptions()
        if python_pc is not None:
            pc = ksp.getPC()
            pc.setType(PETSc.PC.Type.PYTHON)
            pc.setPythonContext(python_pc)
        if coarse is not None and method == "cg-pmg":  # (checked above: cg-pmg has its coarse level)
            pc = ksp.getPC()
            levels = pc.getMGLevels() if pc.getType() == PETSc.PC.Type.MG else None
            if levels != 2:
                # a user's -{prefix}pc_type or pc_mg_levels: the two levels cannot be wired
                raise InputError(
                    f"PETSc option -{prefix}pc_type / pc_mg_levels", f"{pc.getType()} / {levels}",
                    "mg with 2 levels for solver.method cg-pmg (or choose another solver.method)",
                )  # fmt: skip
            pc.setMGInterpolation(1, coarse.P)
            pc.getMGCoarseSolve().setOperators(coarse.A)
        ksp.setUp()  # the multigrid levels read their options here: removed only after it
    except Exception:
        ksp.destroy()
        raise
    finally:
        for key in ours:
            del opts[prefix + key]  # keep the global options database clean
    return ksp


class SolveWith:
    """A petsc4py Python preconditioner that applies another KSP's solve.

    E.g. the factorisation of a nearby operator as the preconditioner of a Krylov method
    (:meth:`emsim.solvers.thermal.pennes.PennesProblem._solver`). The other KSP stays its
    owner's.
    """

    def __init__(self, ksp: PETSc.KSP) -> None:
        self.ksp = ksp

    def apply(self, pc: PETSc.PC, x: PETSc.Vec, y: PETSc.Vec) -> None:
        """Set y to the other KSP's solution for the right-hand side x."""
        self.ksp.solve(x, y)


def assemble_lifted_rhs(
    b: PETSc.Vec, L: fem.Form, a: fem.Form, bc: fem.DirichletBC, *, diagonal: float = 1.0
) -> PETSc.Vec:
    """Assemble ``L`` into ``b`` with the Dirichlet values of ``bc`` lifted out of ``a``.

    Args:
        b: PETSc vector, overwritten.
        L: compiled linear form.
        a: compiled bilinear form the matrix was assembled from.
        bc: the Dirichlet condition (its function holds this solve's values).
        diagonal: the value on the matrix diagonal of the Dirichlet rows.
    """
    with b.localForm() as loc:
        loc.set(0.0)
    fpetsc.assemble_vector(b, L)
    fpetsc.apply_lifting(b, [a], bcs=[[bc]])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    fpetsc.set_bc(b, [bc], alpha=diagonal)
    return b


def solve_checked(ksp: PETSc.KSP, b: PETSc.Vec, x: PETSc.Vec, what: str) -> int:
    """Solve ``ksp`` for ``x``; raise :class:`~emsim.errors.SolverError` if it diverged.

    Counts the solve in :data:`SOLVES` under the KSP's options prefix.

    Returns:
        The iteration count.
    """
    key = (ksp.getOptionsPrefix() or "").rstrip("_")
    SOLVES[key] = SOLVES.get(key, 0) + 1
    ksp.solve(b, x)
    reason = ksp.getConvergedReason()
    if reason < 0:
        raise SolverError(f"{what} did not converge (PETSc reason {reason})")
    return ksp.getIterationNumber()
