"""The PRESB preconditioner of the real 2x2 block form and the solver state a frequency sweep shares.

These sit beside :mod:`emsim.solvers.linalg.ksp`: they are linear-solver machinery, independent of
the physics of :mod:`emsim.solvers.spectral.frequency` that uses them.
"""

from __future__ import annotations

from typing import Any

from petsc4py import PETSc

from .ksp import create_ksp

__all__ = ["PresbPreconditioner", "SweepState"]


class PresbPreconditioner:
    r"""PRESB preconditioner of the real 2x2 block form, as a petsc4py python PC.

    Axelsson, Neytcheva & Ahmad 2014, Numer Algorithms 66:811. The operator is [[K_r, -K_i], [K_i, K_r]] (K_r the real, K_i the imaginary stiffness, both
    symmetric positive semi-definite, K_r + K_i positive definite with the Dirichlet rows). The
    preconditioner [[K_r, -K_i], [K_i, K_r + 2 K_i]] is solved exactly with two solves with
    K_r + K_i: (K_r + K_i) h = f + g, (K_r + K_i) y = K_r h - f, x = h - y. Its eigenvalues with
    the operator lie in [1/2, 1], so FGMRES converges in a few iterations independent of the
    mesh and the frequency. The inner SPD solves are either

    * ``direct``: a MUMPS Cholesky factorisation of K_r + K_i (half the unknowns of the block
      matrix, symmetric: a small fraction of the block LU's work and memory), so the
      preconditioner is exact and FGMRES needs 5-9 iterations to 1e-10 on the cheek cases; or
    * CG + GAMG to a loose relative tolerance (1e-2, fastest in a trial on the cheek case:
      FGMRES accepts a variable preconditioner, and the outer tolerance alone sets the
      accuracy), for problems too large to factorise.

    Across a frequency sweep :meth:`update` refills K_r and S in place from the new operator
    (same sparsity). With ``reuse_interpolation`` GAMG then keeps its aggregates and
    prolongators from the first setup and only recomputes the Galerkin coarse operators and
    the smoothers: the aggregation (most of the GAMG setup) depends on the graph of strong
    connections, which the smooth change of the admittivities with frequency hardly alters,
    and any loss of preconditioner quality costs only inner iterations, never accuracy
    (FGMRES's outer tolerance sets that). With ``direct``, :meth:`update` refactorises
    numerically on the first frequency's ordering and symbolic analysis.
    """

    def __init__(self, A, comm, *, reuse_interpolation: bool = False, direct: bool = False) -> None:
        r0, r1 = A.getOwnershipRange()
        n = (r1 - r0) // 2
        self.is_re = PETSc.IS().createStride(n, first=r0, step=2, comm=comm)
        self.is_im = PETSc.IS().createStride(n, first=r0 + 1, step=2, comm=comm)
        self.Kr = A.createSubMatrix(self.is_re, self.is_re)
        self.Ki = A.createSubMatrix(self.is_im, self.is_re)
        self.S = self.Kr.copy()
        self.S.axpy(1.0, self.Ki, structure=PETSc.Mat.Structure.DIFFERENT_NONZERO_PATTERN)
        if direct:
            ksp = create_ksp(self.S, method="mumps", symmetric=True, name="emsim_presb")
        else:
            # Loose inner tolerance: measured fastest for the outer FGMRES.
            ksp = create_ksp(self.S, method="cg-gamg", rtol=1e-2, name="emsim_presb", max_it=1000)
        if reuse_interpolation and not direct:
            opts, key = PETSc.Options(), ksp.getOptionsPrefix() + "pc_gamg_reuse_interpolation"
            opts[key] = True
            ksp.getPC().setFromOptions()
            del opts[key]
        self.inner = ksp
        self.h, self.r = self.S.createVecs()
        self.y = self.h.duplicate()

    def update(self, A) -> None:
        """Refill K_r, K_i and S = K_r + K_i from ``A`` (same sparsity as at construction)."""
        same = PETSc.Mat.Structure.SUBSET_NONZERO_PATTERN
        A.createSubMatrix(self.is_re, self.is_re, submat=self.Kr)
        A.createSubMatrix(self.is_im, self.is_re, submat=self.Ki)
        self.S.zeroEntries()
        self.S.axpy(1.0, self.Kr, structure=same)
        self.S.axpy(1.0, self.Ki, structure=same)
        # set up again on use: GAMG reusing its interpolation, or a numeric Cholesky refactorisation
        self.inner.setOperators(self.S)

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


class SweepState:
    """Solver state shared by the :class:`FrequencyProblem` of one frequency sweep (both paths).

    The operator of every frequency has the same function space and sparsity, and only its
    values change, smoothly in log f. Rebuilding everything per frequency spent about half the
    time of a sweep in setup (matrix allocation, sub-matrix extraction, GAMG aggregation), so a
    sweep keeps: the space, the block matrix (filled in place from matrices assembled once, see
    :mod:`emsim.solvers.spectral.affine`, or re-assembled), the PRESB preconditioner
    (:meth:`PresbPreconditioner.update`, GAMG interpolation reused), the outer FGMRES KSP, the
    right-hand side vector and the compiled forms (their constants set per frequency). It also
    keeps the unit fields of every electrode at every solved frequency: a new solve starts from
    the one nearest in log f (on the default case, 6 outer iterations instead of 8 at an adaptive
    frequency that fell between earlier ones). The converged answer is the same to the outer
    tolerance: the reuse changes only the iterations needed to reach it. The block-LU path
    (method "mumps") shares the space, the matrix and the KSP: each frequency refactorises
    numerically on the first one's ordering and symbolic analysis; so does the Cholesky
    factorisation inside PRESB (method "presb-mumps").
    """

    def __init__(self) -> None:
        # DOLFINx space, PETSc matrix, KSP and vector (untyped), created by the first frequency
        self.V: Any = None
        self.A: Any = None
        self.presb: PresbPreconditioner | None = None
        self.ksp: Any = None
        self.b: Any = None
        # per electrode, the unit field (its local array, ghosts included) of every frequency
        # solved [Hz; d.c. at the quasi-static frequency]: the initial guesses
        self.previous: dict[str, dict[float, Any]] = {}
        self.normals: dict[str, Any] | None = None
        # the compiled forms of the frequency problem (constants set per frequency; no PETSc objects)
        self.forms: Any = None
        # the matrix as a combination of matrices assembled once (an AffineBlockMatrix), built
        # at the first complex frequency; it replaces the assembly of every later frequency
        self.affine: Any = None

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
        self.affine = None


# ---------------------------------------------------------------------------- waveform response
