r"""One heat basis per anatomy case: the session heating of any waveform by superposition.

Pennes is linear in its source and the heat enters the time-stepped problem only through its
load vector ``F = int Q v dx + sum int q v ds`` (:meth:`PennesProblem.heat_vector`); the source
is constant over the session (the cycle-mean heat of the waveform, on/off and ramps included
through the envelope's mean square, :mod:`emsim.solvers.spectral.joule`). So the temperature is

    T(x, t) = T_basal(x) + sum_k c_k theta_k(x, t),    F = sum_k c_k F_k,

with theta_k the rise of the session run with the load F_k from the basal state. The basal
state, the time-independent part, is solved once and enters exactly; so do the mass and step
matrices (assembled and factorised once for every source). :class:`HeatBasis` keeps
orthonormal load directions F_k (Euclidean on the owned dofs) with their rise histories at
every owned dof and their steady rises; a heat whose load is not in their span (relative
residual above ``tolerance``) adds the residual's direction, one session run, and a batch of
heats adds the principal directions of their residuals only (a singular value decomposition of
the block): amplitudes, channel proportions along a pair, on/off envelopes and ramps add no
run, and waveforms whose cycle-mean heats are nearly collinear share their runs.

Every metric is then recomputed from the combined history, as the direct run computes it:
skin maximum, tissue rise and CEM43 per node and per time, the peak rise and the final
temperature fields, the probe histories of :meth:`ThermalResult.at`. The result is the
:class:`~emsim.solvers.thermal.session.ThermalResult` of
:func:`~emsim.solvers.thermal.session.session_heating` to the rounding of the superposition
(tested to 1e-6 K).

Memory: ``directions x (steps + 1) x dofs x 8`` bytes of histories (at 30 k dofs and 91 steps,
22 MB a direction).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence

import numpy as np
from dolfinx import fem
from dolfinx.fem import petsc as fpetsc
from mpi4py import MPI

from ...errors import SolverError
from ...meshes.patch import PatchMesh
from ...models.case import Case, ThermalSettings
from ..spectral.joule import CycleHeat
from .pennes_data import PennesRun, cem43_rate
from .session import ThermalResult, case_pennes_problem, session_probes, session_result

__all__ = ["HeatBasis"]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _nothing(_: str) -> None:
    pass


class HeatBasis:
    """Session heating of one mesh and one ``[thermal]`` setting for any cycle-mean heat.

    Build once per anatomy case (mesh and frequency response), then call :meth:`heating` per
    waveform and currents. Collective over the mesh's communicator.

    Args:
        case: a case of the mesh (its materials, boundaries and ``[thermal]`` settings; every
            case given to :meth:`heating` must have the same settings).
        patch: the tagged mesh.
        tolerance: a heat whose load vector is off the span by more than this fraction of its
            norm adds a direction (one session run).
        progress: called with short texts as the steps go.

    Attributes:
        runs: session runs done so far (one per basis direction).
    """

    def __init__(
        self, case: Case, patch: PatchMesh, *, tolerance: float = 1e-9, progress: Progress = _nothing
    ) -> None:
        self.patch = patch
        self.settings = case.thermal or ThermalSettings()
        self.tolerance = float(tolerance)
        self.pennes = case_pennes_problem(case, patch)
        progress(f"heating: basal state ({self.pennes.dofs} dofs, {self.pennes.method})")
        self.basal = self.pennes.steady_state(0.0)
        self.basal.name = "temperature_basal_C"
        no = self.pennes.n_owned
        self.T0 = self.basal.x.array[:no].copy()
        self._all = np.arange(no, dtype=np.int32)
        self._loads = np.zeros((no, 0))  # orthonormal load directions (owned entries)
        self._histories: list[np.ndarray] = []  # (steps + 1, owned) rise per direction [K]
        self._steady: list[np.ndarray] = []  # steady rise per direction [K]
        # The steps of PennesProblem.run: whole steps filling the session.
        n = max(1, math.ceil(self.settings.session_s / self.settings.time_step_s - 1e-9))
        self.time_step_s = self.settings.session_s / n
        self.times_s = np.arange(n + 1) * self.time_step_s
        self.runs = 0
        # The runs use loads of the first source's size, so that their temperatures stay
        # physical (a unit load vector would be 1 W per dof); the histories are per unit load.
        self._load_scale = 0.0

    # ------------------------------------------------------------------ the basis

    def _dot(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Global a^T b of owned-entry blocks."""
        return self.pennes.comm.allreduce(a.T @ b)

    def _orthogonalise(self, B: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Coefficients on the basis and the residual of load columns (Gram-Schmidt, twice)."""
        C = np.zeros((self._loads.shape[1], B.shape[1]))
        R = B.copy()
        for _ in range(2):  # the second pass restores orthogonality lost to rounding
            c = self._dot(self._loads, R)
            R -= self._loads @ c
            C += c
        return C, R

    def _loads_of(self, sources: Sequence[tuple[fem.Function, dict[int, fem.Function]]]) -> np.ndarray:
        """Owned entries of the load vectors [W] of (volume, surface) heat sources, as columns."""
        cols = []
        for source, surface in sources:
            vec = self.pennes.heat_vector(source, surface)
            cols.append(vec.array_r.copy())
            vec.destroy()
        return np.column_stack(cols) if cols else np.zeros((self.pennes.n_owned, 0))

    def extend(self, sources: Sequence[tuple[fem.Function, dict[int, fem.Function]]], *, progress: Progress = _nothing) -> int:
        """Add the directions needed to hold every given heat source (one session run each).

        The residuals of the sources off the current span are reduced to their principal
        directions (eigen-decomposition of their Gram matrix, i.e. a singular value
        decomposition of the block); those with a singular value above ``tolerance`` times
        the largest source norm are run.

        Args:
            sources: (volumetric heat [W/m^3], surface heats [W/m^2] by facet tag) pairs.
            progress: called with short texts as the steps go.

        Returns:
            The number of directions added.
        """
        B = self._loads_of(sources)
        if B.shape[1] == 0:
            return 0
        norms2 = np.diag(self._dot(B, B))
        if self._load_scale == 0.0:
            self._load_scale = float(np.sqrt(norms2.max()))
        _, R = self._orthogonalise(B)
        lam, V = np.linalg.eigh(self._dot(R, R))
        keep = lam > (self.tolerance**2) * max(float(norms2.max()), np.finfo(float).tiny)
        if not keep.any():
            return 0
        D = (R @ V[:, keep]) / np.sqrt(lam[keep])
        _, D = self._orthogonalise(D)  # against the existing basis once more, then among themselves
        for j in range(D.shape[1]):
            d = D[:, j] - self._loads @ self._dot(self._loads, D[:, j])
            d /= np.sqrt(self._dot(d, d))
            self._add_direction(d, progress)
        return int(keep.sum())

    def _add_direction(self, d: np.ndarray, progress: Progress) -> None:
        """Run the session with load ``d`` (unit norm, orthogonal to the basis); keep its rises."""
        pennes, no = self.pennes, self.pennes.n_owned
        vec = fpetsc.create_vector(pennes.V)
        scale = self._load_scale
        vec.array_w[:] = scale * d
        steady = pennes.steady_state(1.0, heat_vector=vec)
        progress(f"heating: basis direction {self.runs + 1}")
        run = pennes.run(
            self.basal, 1.0, self.settings.session_s, self.settings.time_step_s,
            probes=self._all, heat_vector=vec,
        )  # fmt: skip
        vec.destroy()
        self._loads = np.column_stack([self._loads, d])
        self._steady.append((steady.x.array[:no] - self.T0) / scale)
        self._histories.append((run.probe_history_C - self.T0) / scale)
        self.runs += 1
        log.info(
            "heat basis: direction %d, %d steps of %.3g s, %.3g MB of histories",
            self.runs, len(run.times_s) - 1, run.time_step_s,
            sum(h.nbytes for h in self._histories) / 1e6,
        )  # fmt: skip

    # ------------------------------------------------------------------ heating

    def coefficients(self, source: fem.Function, surface: dict[int, fem.Function], *, progress: Progress = _nothing) -> np.ndarray:
        """Coefficients of a heat source on the basis (extended first when it is off the span)."""
        self.extend([(source, surface)], progress=progress)
        C, _ = self._orthogonalise(self._loads_of([(source, surface)]))
        return C[:, 0]

    def heating(self, case: Case, heat: CycleHeat, *, progress: Progress = _nothing) -> ThermalResult:
        """The session heating of ``case`` with the cycle-mean heat ``heat`` at its currents.

        Equal to :func:`~emsim.solvers.thermal.session.session_heating` with ``heat`` (to the
        rounding of the superposition), without a new session run when the heat is in the
        basis's span.

        Args:
            case: the case (its channel currents and waveform; its ``[thermal]`` settings
                must be the basis's).
            heat: the waveform's cycle-mean heat per channel pair
                (:attr:`emsim.solvers.spectral.waveform.WaveformResponse.heat`).
            progress: called with short texts as the steps go.

        Raises:
            SolverError: the case's thermal settings differ from the basis's.
        """
        settings = case.thermal or ThermalSettings()
        if settings != self.settings:
            raise SolverError(
                f"heat basis: the case's thermal settings {settings} differ from the basis's {self.settings}"
            )
        currents = np.array([c.current_A for c in case.channels])
        source, surface = heat.sources(self.patch, currents)
        c = self.coefficients(source, surface, progress=progress)
        run, probes, heated = self._combined_run(c)
        basal = fem.Function(self.pennes.V, name="temperature_basal_C")
        basal.x.array[:] = self.basal.x.array
        return session_result(
            case, self.patch, self.pennes, basal, run, probes, heated, source, surface, from_waveform=True
        )

    def _combined_run(self, c: np.ndarray) -> tuple[PennesRun, np.ndarray, np.ndarray]:
        """The run record of the load ``sum_k c_k F_k``, as :meth:`PennesProblem.run` keeps it."""
        pennes, no = self.pennes, self.pennes.n_owned
        rise = np.zeros((len(self.times_s), no))
        steady = np.zeros(no)
        for ck, history, steady_k in zip(c, self._histories, self._steady, strict=True):
            rise += ck * history
            steady += ck * steady_k
        T = self.T0 + rise
        dt = self.time_step_s
        rate = cem43_rate(T)
        cem = np.zeros_like(T)
        # Trapezoidal dose, accumulated step by step as the direct run does.
        np.cumsum((dt / 60.0) * 0.5 * (rate[:-1] + rate[1:]), axis=0, out=cem[1:])
        skin, mon = pennes.skin_dofs, pennes.monitor_dofs
        maxima = np.column_stack([
            T[:, skin].max(axis=1, initial=-np.inf),
            rise[:, mon].max(axis=1, initial=-np.inf),
            cem[:, mon].max(axis=1, initial=-np.inf),
        ])  # fmt: skip
        pennes.comm.Allreduce(MPI.IN_PLACE, maxima, op=MPI.MAX)
        skin_max = np.where(np.isfinite(maxima[:, 0]), maxima[:, 0], np.nan)

        def function(values: np.ndarray, name: str) -> fem.Function:
            f = fem.Function(pennes.V, name=name)
            f.x.array[:no] = values
            f.x.scatter_forward()
            return f

        probes, heated = session_probes(pennes, self.T0, steady)
        run = PennesRun(
            times_s=self.times_s.copy(),
            time_step_s=dt,
            skin_max_C=skin_max,
            rise_max_K=maxima[:, 1].copy(),
            cem43_max_min=maxima[:, 2].copy(),
            final=function(T[-1], "temperature_C"),
            rise_peak=function(np.maximum(rise.max(axis=0), 0.0), "temperature_rise_peak_K"),
            cem43=function(cem[-1], "cem43_min"),
            probe_history_C=T[:, probes].copy(),
        )
        return run, probes, heated

    def close(self) -> None:
        """Free the PETSc objects of the thermal problem (the histories stay)."""
        self.pennes.close()
