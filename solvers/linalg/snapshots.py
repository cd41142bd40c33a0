"""A snapshot reduced basis shared by the frequency solves of many cases of one mesh topology.

Why. The worst-corner search of a device validation solves the same head at many anatomy corners:
every corner is a morph of one mesh (same cells, same dofs), its contact R and C and tissue
conductivities change only the coefficients, so the block systems A(corner, f) x = b of every
corner and frequency share one dof layout. Profiled on the sample (facial-ems-1, cheek, 10
factors; one corner, load average 5 on 2 cores): 94 s per corner, of which about 51 s are the nine
MUMPS factorisations of the frequency sweep (``ksp.setUp``), 5 s the unit solves, 6 s assembly,
10 s the per-frequency post-processing and the rational fit, 16 s the heat basis and 5 s the d.c.
electric solve. The factorisations are what reuse can remove; the assembly and the
post-processing of a corner stay (its mesh and coefficients are its own).

What. The full solutions already computed (at earlier corners and frequencies) span a space in
which a new corner's solution is often well approximated. For each new system the solution is
sought in that span by minimum residual: y = argmin ||b - A W y||_2 (W the snapshots,
orthonormalised, closed under multiplication by j so that complex coefficients are in the span),
and accepted when the relative residual ||b - A W y|| / ||b|| is at most ``tolerance``;
otherwise the system is solved fully (the caller's factorisation) and its solution enriches the
basis. Cost of a reduced solve: one sparse-times-dense product A W and an m x m least-squares
problem (m the basis size), no factorisation.

What it is not. The residual is an error indicator, not a bound on the error of the derived
figures (a stiff FE operator can have a small residual and a larger error). So the reduced
solutions only screen: the device validation re-solves fully the worst corner of every rule and
reports figures from full solves only (:func:`emsim.device.validate.solve_groups`), and the test
suite holds the reduced figures to a full solve on a small case (``tests/test_reduced_corners.py``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from petsc4py import PETSc

__all__ = ["DEFAULT_TOLERANCE", "MAX_VECTORS", "SnapshotBasis"]

#: Relative residual ||b - A x|| / ||b|| at which a reduced solution is accepted. At 1e-4 the
#: sweep of a screened corner of the tiny cheek head (tests/test_reduced_corners.py) did not
#: converge (its AAA error estimate sat at 0.09 > 0.05: the reduced samples were noise to the
#: rational fit); at 1e-6 the rules' objectives of 11 corners were within 1.7e-2 of full solves.
DEFAULT_TOLERANCE = 1e-6
#: Most basis vectors kept per key (each snapshot adds two: itself and j times itself); beyond it a
#: full solve no longer enriches (memory: 2 x dofs x 8 bytes per vector).
MAX_VECTORS = 240


class SnapshotBasis:
    """Orthonormal snapshot bases (one per key, e.g. per electrode) and minimum-residual solves in them.

    Vectors are the owned part of PETSc vectors in the real 2x2 block layout (interleaved re, im),
    so the basis is valid for every system of the same dof layout (one mesh topology, morphed).

    Args:
        tolerance: relative residual at which a reduced solution is accepted.
        max_vectors: most vectors kept per key.

    Attributes:
        reduced_solves, full_solves: counts of the solves answered in the basis and fully.
        residuals: the relative residual of every reduced attempt, in order.
    """

    def __init__(
        self, tolerance: float = DEFAULT_TOLERANCE, *, max_vectors: int = MAX_VECTORS
    ) -> None:
        if not 0.0 < tolerance < 1.0:
            raise ValueError(f"tolerance {tolerance!r}: must be in (0, 1)")
        self.tolerance = float(tolerance)
        self.max_vectors = int(max_vectors)
        self._basis: dict[str, np.ndarray] = {}  # key -> (n_owned, m), orthonormal columns
        self.reduced_solves = 0
        self.full_solves = 0
        self.residuals: list[float] = []
        self.enabled = True

    def size(self, key: str) -> int:
        """Number of basis vectors of ``key``."""
        W = self._basis.get(key)
        return 0 if W is None else W.shape[1]

    def solve(self, A: PETSc.Mat, b: PETSc.Vec, x: PETSc.Vec, key: str) -> bool:
        """Try the minimum-residual solution of A x = b in the basis of ``key`` (collective).

        Returns:
            True when the relative residual is within the tolerance (``x`` then holds the
            solution); False otherwise (``x`` untouched: solve fully and :meth:`add` the result).
        """
        W = self._basis.get(key)
        if not self.enabled or W is None or W.shape[1] == 0:
            return False
        comm = A.getComm().tompi4py()
        n_local, n_global = b.getLocalSize(), b.getSize()
        m = W.shape[1]
        Wd = PETSc.Mat().createDense(
            ((n_local, n_global), (PETSc.DECIDE, m)), array=W, comm=A.getComm()
        )
        AW = A.matMult(Wd)
        AWl = AW.getDenseArray(readonly=True).copy()
        AW.destroy()
        Wd.destroy()
        bl = b.getArray(readonly=True)
        G = comm.allreduce(AWl.T @ AWl)
        c = comm.allreduce(AWl.T @ bl)
        bb = comm.allreduce(float(bl @ bl))
        # min ||b - AW y||: the normal equations, solved in the eigenbasis of the Gram matrix with
        # its negligible directions dropped; the residual below is recomputed explicitly, so an
        # inaccurate y can only make a solve go full, never pass unchecked.
        lam, Q = np.linalg.eigh(G)
        keep = lam > lam.max() * 1e-13
        y = Q[:, keep] @ ((Q[:, keep].T @ c) / lam[keep])
        r = bl - AWl @ y
        rho = float(np.sqrt(comm.allreduce(float(r @ r)) / bb)) if bb > 0 else 0.0
        self.residuals.append(rho)
        if rho > self.tolerance:
            return False
        x.getArray()[:] = W @ y
        x.assemble()
        self.reduced_solves += 1
        return True

    def add(self, x: PETSc.Vec, key: str) -> None:
        """Enrich the basis of ``key`` with a full solution and j times it (collective)."""
        self.full_solves += 1
        W = self._basis.get(key)
        if W is not None and W.shape[1] + 2 > self.max_vectors:
            return
        comm = x.getComm().tompi4py()
        u = x.getArray(readonly=True).copy()
        ju = np.empty_like(u)
        ju[0::2], ju[1::2] = -u[1::2], u[0::2]  # j (u_re + j u_im) = -u_im + j u_re
        cols = [] if W is None else [W]
        for v in (u, ju):
            norm0 = np.sqrt(comm.allreduce(float(v @ v)))
            if norm0 == 0.0:
                continue
            for _ in range(2):  # Gram-Schmidt twice: orthogonal to rounding
                for block in cols:
                    v = v - block @ comm.allreduce(block.T @ v)
            norm = np.sqrt(comm.allreduce(float(v @ v)))
            if norm > 1e-10 * norm0:  # new direction (else already in the span)
                cols.append((v / norm)[:, None])
        self._basis[key] = np.ascontiguousarray(np.hstack(cols)) if cols else np.zeros((len(u), 0))

    def record(self) -> dict[str, Any]:
        """Counts and residuals, for a report."""
        res = np.array(self.residuals)
        return {
            "method": "snapshot reduced basis (minimum residual in the span of earlier full solutions)",
            "tolerance_relative_residual": self.tolerance,
            "reduced_solves": self.reduced_solves,
            "full_solves": self.full_solves,
            "basis_vectors": {k: int(W.shape[1]) for k, W in self._basis.items()},
            "median_residual": float(np.median(res)) if len(res) else None,
        }
