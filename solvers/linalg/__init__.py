"""The linear-solver machinery emsim owns: one KSP per operator, and the PRESB block preconditioner.

* :mod:`.ksp`: MUMPS and CG + GAMG set up once per operator, solves checked for convergence.
* :mod:`.presb`: the PRESB preconditioner of the real 2x2 block form of the frequency problem.
"""

from .ksp import create_ksp, resolve_method, solve_checked
from .presb import PresbPreconditioner, SweepState

__all__ = ["PresbPreconditioner", "SweepState", "create_ksp", "resolve_method", "solve_checked"]
