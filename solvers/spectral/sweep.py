"""The frequency response behind a waveform: adaptive rational (AAA) sweep, then synthesis.

:class:`FrequencyResponse` is the case's response per unit current of each channel at any
frequency, independent of the waveform: 3-D solves of the frequency problem
(:class:`~emsim.solvers.spectral.frequency.FrequencyProblem`) at a few frequencies, and one set-valued AAA
rational model (:mod:`emsim.solvers.spectral.rational`) of every sampled quantity over a wide band.
:func:`waveform_response` synthesises every quantity of :class:`~emsim.solvers.spectral.waveform.
WaveformLeadField` for a waveform from it (method: :mod:`emsim.solvers.spectral.waveform`,
:mod:`emsim.solvers.spectral.synthesis`, :mod:`emsim.solvers.spectral.joule`); another waveform on the same
geometry reuses the response without a 3-D solve (the band is extended, with solves, only when
the waveform's spectrum reaches beyond it).

Adaptive sampling. The sweep starts with ``n_frequencies`` log-spaced frequencies over the band
(ends included) and then, one frequency at a time: fits the model to every sample, estimates its
error on a candidate grid (:data:`CANDIDATES_PER_DECADE` per decade), and solves where the
estimate is largest, until the estimate is at most ``[solver] waveform_tolerance``.

Error estimate. The largest relative difference, over the candidates and the fitted quantities,
between the final AAA model and the AAA model one support point before it (both fitted to all
samples). Where the lower-degree model is still wrong the two disagree; when the last support
point changes nothing the models have converged. When the fit meets its tolerance with samples
to spare (a response of low rational degree, such as a 1-D column), the comparison is with the
model of one support point more instead. Relative means against each quantity's largest
sampled magnitude. Validated against a dense direct sweep (60 frequencies) of a two-pad cheek
case (tests/test_frequency.py): with 10 solves the estimate was 2.6e-3 and the true errors of
the electrode potentials, skin normal current densities, muscle fields and cell current
densities (per entry) were 0.4e-3, 1.8e-3, 2.8e-3 and 2.8e-3: the estimate is of the size of the
worst error, not a strict bound (an earlier fit: estimate 4.4e-3, errors up to 3.2e-3). A
leave-one-out spread was also tried: 10-300 x conservative, it needed 15 solves for the same
case.

Fitted quantities. Every per-frequency quantity is linear in the same common-denominator model,
so the support points and weights are fitted on a handful of functions only: the electrode
potentials, the probe fields and, for the large per-cell and per-facet arrays (skin normal
current density, muscle field, cell fields E and J, contact voltages; the activating function is
a recovered second derivative of the same potential, noise where the field is uniform),
:data:`SKETCHES` fixed weighted sums each (weights cos(k . x + p) of the entity's position with
fixed pseudo-random k, p: independent of the mesh partition, so serial and MPI runs fit the same
model) and the :data:`TOP_ENTRIES` entries that vary most with frequency (a sum over many cells
dilutes the error of one, so the hardest entries are fitted themselves).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from dolfinx.mesh import compute_midpoints

from ...errors import InputError, SolverError
from ...meshes.patch import PatchMesh
from ...models.case import Case
from ...models.waveforms import Waveform
from ..channels import ChannelLayout
from ..electric.electrodes import channel_potentials
from ..electric.exclusion import zone_cells
from ..electric.metrics import ElectricLeadField, cell_volumes
from ..electric.points import locate_points, point_volumes
from ..electric.skin import (
    PEAK_AVERAGING_RADIUS_M,
    DiscAverage,
    SkinFacets,
    gather_facets,
    skin_facets,
)
from ..linalg.presb import SweepState
from ..physiology import activation as act
from ..physiology.sensory import dermis_cells, sensory_model
from .frequency import FrequencyProblem
from .joule import pair_products
from .joule_products import cycle_heat, gram_products
from .rational import RationalModel, extend, fit_set_valued_aaa
from .synthesis import TRUNCATION_FACTOR, Spectrum, Synthesis
from .waveform import WaveformLeadField, pulse_instants

__all__ = [
    "INITIAL_FREQUENCIES",
    "MAX_FREQUENCIES",
    "RESPONSE_BAND_HZ",
    "FrequencyResponse",
    "FrequencySample",
    "response_band_Hz",
    "waveform_response",
]

log = logging.getLogger(__name__)

#: Most frequencies an adaptive sweep may sample before it stops with an error.
MAX_FREQUENCIES = 400
#: Frequencies sampled first (log-spaced over the band, its ends included).
INITIAL_FREQUENCIES = 5
#: The band [Hz] every response covers at least: the harmonics of pulse trains of 10 Hz and more
#: up to the truncation frequency of 100 us phases (500 / 100 us), so that one response serves
#: the usual waveforms of a study without a further solve.
RESPONSE_BAND_HZ = (10.0, 5e6)
#: Candidate frequencies per decade where the error estimate is evaluated.
CANDIDATES_PER_DECADE = 40
#: Weighted sums (sketches) per large array that the rational model is fitted on.
SKETCHES = 3
#: The AAA fit stops at this fraction of the tolerance on the samples outside its support.
FIT_FRACTION = 0.02
#: Entries of each large array (those varying most) the rational model is fitted on.
TOP_ENTRIES = 8


@dataclass
class FrequencySample:
    """Everything one frequency contributes, per ampere of each channel (last axis), on this rank."""

    H: np.ndarray  # (n_electrodes, n_c) electrode potentials per ampere
    Em: np.ndarray  # (n_muscle, 3, n_c) muscle field
    Af: np.ndarray  # (n_muscle, n_c) activating function
    Jn: np.ndarray  # (n_facets, n_c) skin normal current density
    P: np.ndarray  # (6 n_probes, n_c) probe E and J
    E: np.ndarray  # (n_owned_cells, 3, n_c) cell field
    J: np.ndarray  # (n_owned_cells, 3, n_c) cell current density
    dV: np.ndarray  # (n_robin, n_c) V_e - phi at the Robin facets
    sketch: np.ndarray  # weighted sums of the large arrays (same on every rank)


def _sketch_weights(points_m: np.ndarray, seed: int) -> np.ndarray:
    """(SKETCHES, n) weights cos(k . x + p) with fixed pseudo-random k [1/m] and phases p."""
    rng = np.random.default_rng(seed)
    k = rng.normal(size=(SKETCHES, 3)) * 2e3  # wavelengths of a few mm
    p = rng.uniform(0, 2 * np.pi, size=SKETCHES)
    return np.cos(points_m @ k.T + p).T if len(points_m) else np.zeros((SKETCHES, 0))


def _largest(v: np.ndarray, k: int) -> np.ndarray:
    """The indices of the k largest entries of ``v``, in increasing order of value (as ``argsort(v)[-k:]``)."""
    if len(v) <= k:
        return np.argsort(v)
    part = np.argpartition(v, len(v) - k)[-k:]
    return part[np.argsort(v[part])]


class _Sampler:
    """The per-frequency work of a sweep, with everything that does not depend on f set up once."""

    def __init__(self, case: Case, patch: PatchMesh, skin: SkinFacets) -> None:
        self.case, self.patch, self.skin = case, patch, skin
        self.names = [e.name for e in case.electrodes]
        channels = case.channels
        # With one channel its cathodes stay at 0 V: their unit fields are never needed.
        held = set(channels[0].cathode) if len(channels) == 1 else set()
        self.needed = [n for n in self.names if n not in held]
        self.directions = act.fibre_directions(case)
        self._activating: act.FibreSecondDerivative | None = None
        tags = patch.cell_tags
        mesh = patch.mesh
        self.n_owned = mesh.topology.index_map(3).size_local
        cells = np.concatenate(
            [tags.find(patch.volumes[f"layer:{m}"]) for m in self.directions] or [np.empty(0, np.int32)]
        )
        self.muscle_cells = np.sort(cells[cells < self.n_owned])
        self.fibre = np.zeros((len(self.muscle_cells), 3))
        for label, f in self.directions.items():
            mask = np.isin(self.muscle_cells, tags.find(patch.volumes[f"layer:{label}"]))
            self.fibre[mask] = act.cell_fibres(patch, self.muscle_cells[mask], f)  # follows a curved skin
        self.probe_points = np.array([p.point_m for p in case.probes], dtype=float).reshape(-1, 3)
        if patch.surface is not None:  # probes are given along the skin: onto the curved patch
            self.probe_points = patch.surface.to_curved(self.probe_points)
        found = len(self.probe_points) > 0
        self.probe_cells = (
            locate_points(patch.mesh, self.probe_points, surface=patch.surface) if found else np.empty(0, np.int32)
        )
        self.probe_volumes = point_volumes(patch, self.probe_cells) if found else []
        self.robin_pts, self.robin_cells, self.robin_owner = skin.robin_points()
        self.zone_cells, self.zone_member = zone_cells(case, patch)
        self.dermis_cells = dermis_cells(case, patch)
        owned = np.arange(self.n_owned, dtype=np.int32)
        mid = compute_midpoints(mesh, 3, owned) if self.n_owned else np.empty((0, 3))
        self.w_cells = _sketch_weights(mid, 1)
        self.w_muscle = _sketch_weights(mid[self.muscle_cells], 2)
        self.w_facets = _sketch_weights(skin.centroids_m, 3)
        self.w_robin = _sketch_weights(np.asarray(self.robin_pts).reshape(-1, 3), 4)
        self.sweep = SweepState()  # one matrix, preconditioner and KSP for all samples
        # per large array: (last sample, samples seen, their variation, their largest magnitude)
        self._variations: dict[str, tuple[FrequencySample, list[FrequencySample], np.ndarray, float]] = {}

    def _sketches(self, s: FrequencySample) -> np.ndarray:
        """The sketches of the large arrays (same on every rank)."""
        pieces = [
            np.tensordot(w, getattr(s, a), axes=1).ravel()
            for a, w in (("Jn", self.w_facets), ("Em", self.w_muscle), ("E", self.w_cells), ("J", self.w_cells),
                         ("dV", self.w_robin))
        ]  # fmt: skip
        self.sketch_sizes = [len(p) for p in pieces]
        # Zero-padded to one length per array, so that the blocks split evenly in fit_matrix.
        width = max(self.sketch_sizes)
        local = np.concatenate([np.pad(p, (0, width - len(p))) for p in pieces])
        return self.patch.mesh.comm.allreduce(local)

    def fit_matrix(self, samples: list[FrequencySample]) -> tuple[np.ndarray, np.ndarray]:
        """(m, q) fitted quantities of the samples and (q,) the size of each (collective).

        The electrode potentials, the probes, the sketches, and for each large array the
        :data:`TOP_ENTRIES` entries that vary most over the samples (the cell or facet where the
        model is hardest; chosen over all ranks by the size of the variation, so the choice
        does not depend on the partition). Each is sized by the largest magnitude of its whole
        quantity (all entries, all samples), so that errors are relative to the quantity and an
        entry that is constant up to rounding is not scaled up into noise.
        """
        comm = self.patch.mesh.comm
        parts, scales = [], []

        def add(X: np.ndarray, size: float) -> None:
            parts.append(X)
            scales.append(np.full(X.shape[1], size))

        for attr in ("H", "P"):
            X = np.array([getattr(s, attr).ravel() for s in samples])
            add(X, float(np.max(np.abs(X), initial=0.0)))
        sk = np.array([s.sketch for s in samples]).reshape(len(samples), len(self.sketch_sizes), -1)
        for i in range(sk.shape[1]):
            add(sk[:, i], float(np.max(np.abs(sk[:, i]), initial=0.0)))
        # Not the activating function: a recovered second derivative of phi (whose fields are
        # fitted), it is discretisation noise where the field is uniform (a 1-D column).
        for attr in ("Jn", "Em", "E", "J", "dV"):
            v, size = self._variation(attr, samples)
            top = _largest(v, TOP_ENTRIES)
            X = np.array([getattr(s, attr).ravel()[top] for s in samples])
            gathered = comm.allgather((v[top], X, size))
            values = np.concatenate([g[0] for g in gathered])
            cols = np.concatenate([g[1] for g in gathered], axis=1)
            pick = np.argsort(-values, kind="stable")[:TOP_ENTRIES]
            add(cols[:, pick], max(g[2] for g in gathered))
        return np.concatenate(parts, axis=1), np.concatenate(scales)

    def _variation(self, attr: str, samples: list[FrequencySample]) -> tuple[np.ndarray, float]:
        """Per entry of a large array, max over the samples of |X_s - X_last|, and max |X| (this rank).

        Kept between the fits of a sweep and updated with the new samples only (the last
        sample, the highest frequency, stays the same while the sweep fills the band in): each
        fit otherwise stacked every sample of every cell field again.
        """
        last = samples[-1]
        cached = self._variations.get(attr)
        if cached is None or cached[0] is not last or any(all(s is not c for c in samples) for s in cached[1]):
            n = getattr(last, attr).size
            cached = (last, [], np.zeros(n), 0.0)
        _, seen, v, size = cached
        X_last = getattr(last, attr).ravel()
        for s in samples:
            if any(s is c for c in seen):
                continue
            X = getattr(s, attr).ravel()
            if X.size:
                np.maximum(v, np.abs(X - X_last), out=v)
                size = max(size, float(np.abs(X).max()))
            seen.append(s)
        self._variations[attr] = (last, seen, v, size)
        return v, size

    def sample(self, f: float) -> FrequencySample:
        """Solve at ``f`` and extract every per-ampere quantity of every channel."""
        prob = FrequencyProblem(self.case, self.patch, f, sweep=self.sweep)
        Y = prob.admittance(self.needed)
        out: dict[str, list] = {k: [] for k in ("H", "Em", "Af", "Jn", "P", "E", "J", "dV")}
        for ch in self.case.channels:
            h = channel_potentials(Y, self.names, ch, 1.0)
            phi = prob.combine(h)
            E, J = prob.cell_fields(phi)
            flux, dv = None, np.zeros(0, dtype=complex)
            if len(self.robin_pts):
                values = np.asarray(phi.eval(self.robin_pts, self.robin_cells)).reshape(-1, 2)
                hv = dict(zip(self.names, h, strict=True))
                dv = np.array([hv[o] for o in self.robin_owner]) - (values[:, 0] + 1j * values[:, 1])
                flux = np.array([prob.robin[o] for o in self.robin_owner]) * dv
            af = np.zeros(E.shape[0], dtype=complex)
            if self.directions:
                if self._activating is None:  # forms, mass matrix and KSP once per sweep
                    self._activating = act.FibreSecondDerivative(self.patch, phi.function_space, self.directions)
                af = self._activating(phi, 0) + 1j * self._activating(phi, 1)
            if len(self.probe_points):
                pe, pj = prob.point_fields(phi, self.probe_points, self.probe_cells, self.probe_volumes)
                out["P"].append(np.concatenate([pe.ravel(), pj.ravel()]))
            else:
                out["P"].append(np.zeros(0, dtype=complex))
            out["H"].append(h)
            out["Em"].append(E[self.muscle_cells])
            out["Af"].append(af[self.muscle_cells])
            out["Jn"].append(self.skin.normal_current_density(J, flux))
            out["E"].append(E[: self.n_owned])
            out["J"].append(J[: self.n_owned])
            out["dV"].append(dv)
        prob.close()
        sample = FrequencySample(**{k: np.stack(v, axis=-1) for k, v in out.items()}, sketch=np.zeros(0))
        sample.sketch = self._sketches(sample)
        return sample

    def close(self) -> None:
        """Free the shared solver state."""
        self.sweep.close()
        if self._activating is not None:
            self._activating.close()
            self._activating = None


def response_band_Hz(waveform: Waveform | None, max_frequency_Hz: float | None = None) -> tuple[float, float]:
    """The band [Hz] a waveform's synthesis needs: 1 / T to its truncation frequency f_N."""
    if waveform is None or waveform.shape == "dc":
        return RESPONSE_BAND_HZ
    spec = Spectrum.of(waveform, 4, max_frequency_Hz)
    return 1.0 / spec.period_s, spec.n_harmonics / spec.period_s


class FrequencyResponse:
    """The case's response per unit current of each channel at any frequency of a band.

    Independent of the waveform (and of the channel currents and timing): held per geometry,
    materials and contact, and shared by every waveform on them. :meth:`ensure` samples until
    the rational model meets the tolerance over a band (extending an earlier band with further
    solves only); :meth:`dc` solves the d.c. problem once, when a waveform has a d.c. part.

    Args:
        case: the case (its waveform is not used).
        patch: its tagged mesh.
        tolerance: error estimate to reach (default ``[solver] waveform_tolerance``).
        max_frequencies: most frequencies the sweep may sample (default :data:`MAX_FREQUENCIES`).
        n_frequencies: frequencies sampled first (>= 4, default :data:`INITIAL_FREQUENCIES`).
        progress: optional callable taking a short text.
    """

    def __init__(
        self, case: Case, patch: PatchMesh, *, tolerance: float | None = None,
        max_frequencies: int = MAX_FREQUENCIES, n_frequencies: int = INITIAL_FREQUENCIES,
        progress: Callable[[str], None] | None = None,
    ) -> None:  # fmt: skip
        if isinstance(n_frequencies, bool) or not isinstance(n_frequencies, int) or n_frequencies < 4:
            # 4: a left-out model of an interior sample needs >= 3 samples.
            raise InputError("n_frequencies", n_frequencies, "must be an integer >= 4")
        self.case, self.patch = case, patch
        self.tolerance = case.solver.waveform_tolerance if tolerance is None else tolerance
        self.max_frequencies, self.n_frequencies = max_frequencies, n_frequencies
        self.progress = progress
        robin_names = {e.name for e in case.electrodes if e.gel is None and e.contact is not None}
        self.skin = skin_facets(case, patch, robin_names)
        self.sampler = _Sampler(case, patch, self.skin)
        self.samples: dict[float, FrequencySample] = {}
        self.dc_sample: FrequencySample | None = None
        self.band: tuple[float, float] | None = None
        self.model: RationalModel | None = None
        self.error_estimate = math.inf
        self.rounds: list[dict[str, Any]] = []
        self.solves = 0

    @property
    def fitted_model(self) -> RationalModel:
        """The rational model of the response (after :meth:`ensure`)."""
        if self.model is None:
            raise SolverError(f"case {self.case.name}: the frequency response has no model yet (call ensure first)")
        return self.model

    @property
    def frequencies_Hz(self) -> np.ndarray:
        """The sampled frequencies [Hz], increasing (the d.c. sample apart)."""
        return np.array(sorted(self.samples))

    def stacked(self, attr: str) -> np.ndarray:
        """(m, ...) the samples of one quantity in frequency order."""
        return np.array([getattr(self.samples[f], attr) for f in sorted(self.samples)])

    def _solve(self, f: float) -> None:
        if self.progress:
            self.progress(f"frequency {len(self.samples) + 1}: {f:.4g} Hz")
        self.samples[f] = self.sampler.sample(f)
        self.solves += 1

    def dc(self) -> FrequencySample:
        """The d.c. sample (solved on first use)."""
        if self.dc_sample is None:
            if self.progress:
                self.progress("frequency 0 Hz (d.c. part of the waveform)")
            self.dc_sample = self.sampler.sample(0.0)
            self.solves += 1
        return self.dc_sample

    def ensure(self, f_lo: float, f_hi: float) -> None:
        """Sample until the model's error estimate over [f_lo, f_hi] (and the band so far) is met.

        Raises:
            SolverError: the estimate is still above the tolerance with ``max_frequencies``
                frequencies.
        """
        lo, hi = (f_lo, f_hi) if self.band is None else (min(f_lo, self.band[0]), max(f_hi, self.band[1]))
        if self.band == (lo, hi) and self.error_estimate <= self.tolerance:
            return
        if self.band is None:
            first = [float(f) for f in np.geomspace(lo, hi, self.n_frequencies)]
        else:
            first = [f for f in (lo, hi) if f not in self.samples]
        self.band = (lo, hi)
        for f in first:
            self._solve(float(f))
        candidates = np.geomspace(lo, hi, max(int(CANDIDATES_PER_DECADE * math.log10(hi / lo)), 2) + 1)
        while True:
            fs = self.frequencies_Hz
            model, spread = self._fit(fs, candidates)
            est = float(spread.max())
            self.model, self.error_estimate = model, est
            self.rounds.append({"frequencies": len(fs), "interpolation_error_estimate": est})
            log.info("waveform sweep: %d frequencies, error estimate %.3g", len(fs), est)
            if est <= self.tolerance:
                return
            if len(fs) + 1 > self.max_frequencies:
                raise SolverError(
                    f"case {self.case.name}: the waveform sweep's error estimate {est:.2g} is above "
                    f"[solver] waveform_tolerance = {self.tolerance:g} with {len(fs)} frequencies "
                    f"(at most {self.max_frequencies}, [solver] waveform_frequencies)"
                )
            # Solve where the two models disagree most (never again at a sampled frequency).
            spread[np.isin(candidates, fs)] = 0.0
            self._solve(float(candidates[int(np.argmax(spread))]))

    def _fit(self, fs: np.ndarray, candidates: np.ndarray) -> tuple[RationalModel, np.ndarray]:
        """The model of all samples and its error estimate at each candidate (collective)."""
        F, scale = self.sampler.fit_matrix([self.samples[f] for f in fs])
        keep = np.max(np.abs(F), axis=0) > 1e-9 * scale
        F, scale = F[:, keep], scale[keep]
        model, other, _ = fit_set_valued_aaa(fs, F, tol=FIT_FRACTION * self.tolerance, scale=scale)
        n = len(model.support)
        if n + 1 < len(fs):
            # The fit met its tolerance with samples to spare (the data are rational of a low
            # degree): compare with the model of one support point more, which fits them too;
            # the model one point before did not, and would never agree however many samples.
            other, _, _ = fit_set_valued_aaa(fs, F, tol=0.0, max_support=n + 1, scale=scale)
        if other is None:
            return model, np.full(len(candidates), np.inf)
        Fx = extend(F)
        spread = np.abs(model.cardinal(candidates) @ Fx - other.cardinal(candidates) @ Fx) / scale
        return model, np.max(spread, axis=1)

    def record(self) -> dict[str, Any]:
        """How the response was sampled and modelled."""
        m = self.model
        return {
            "method": "set-valued AAA rational model (mirrored: conjugate symmetric); error estimate: against the model one support point before",
            "band_Hz": list(self.band) if self.band else [],
            "support_frequencies_Hz": sorted(float(m.frequencies_Hz[i]) for i in m.support) if m else [],
            "right_half_plane_poles": m.right_half_plane_poles() if m else 0,
        }

    def close(self) -> None:
        """Free the shared solver state (the samples and the model stay usable)."""
        self.sampler.close()


def waveform_response(
    case: Case,
    patch: PatchMesh,
    *,
    n_frequencies: int = INITIAL_FREQUENCIES,
    tolerance: float | None = None,
    max_frequencies: int = MAX_FREQUENCIES,
    max_frequency_Hz: float | None = None,
    strength_duration: act.StrengthDuration | None = None,
    electric: ElectricLeadField | None = None,
    progress: Callable[[str], None] | None = None,
    response: FrequencyResponse | None = None,
) -> WaveformLeadField:
    """The case's periodic steady-state response to ``case.waveform``, per unit channel current.

    Samples the frequency response (:class:`FrequencyResponse`, over :data:`RESPONSE_BAND_HZ` and
    the waveform's band 1/T to f_N) until its rational model meets ``tolerance``, then
    synthesises the waveform from the model. With ``response`` (of the same geometry, materials
    and contact) it reuses that response's samples: no 3-D solve unless the waveform needs a
    wider band or a d.c. sample it lacks.

    Args:
        case: the case; ``case.waveform`` must be set.
        patch: its tagged mesh.
        n_frequencies: number of frequencies sampled first (>= 4).
        tolerance: error estimate to reach (default ``[solver] waveform_tolerance``).
        max_frequencies: most frequencies the sweep may sample (default :data:`MAX_FREQUENCIES`).
        max_frequency_Hz: truncation frequency f_N (default 500 / shortest phase).
        strength_duration: the activation threshold model (default one).
        electric: the d.c. lead field, whose skin-peak operator is reused (built when None).
        progress: optional callable taking a short text.
        response: a frequency response to reuse (it is extended in place when needed).
    """
    w = case.waveform
    if w is None:
        raise InputError("waveform", None, "the case has no [waveform]")
    own = response is None
    if response is None:
        response = FrequencyResponse(
            case, patch, tolerance=tolerance, max_frequencies=max_frequencies, n_frequencies=n_frequencies,
            progress=progress,
        )  # fmt: skip
    elif progress:
        response.progress = progress
    try:
        spec = Spectrum.of(w, 4, max_frequency_Hz)
        if spec.dc_shape:
            syn = Synthesis(spec, w, np.array([0.0]))
            response.dc()
        else:
            lo, hi = response_band_Hz(w, max_frequency_Hz)
            response.ensure(min(lo, RESPONSE_BAND_HZ[0]), max(hi, RESPONSE_BAND_HZ[1]))
            if spec.need_dc:
                response.dc()
            syn = Synthesis(spec, w, pulse_instants(w), response.fitted_model.cardinal)
    finally:
        if own:
            response.close()
    method = {
        "tolerance": response.tolerance,
        "sweep_rounds": list(response.rounds),
        "harmonics_capped": spec.n_harmonics >= 2**19,
        "truncation_factor": TRUNCATION_FACTOR,
        "frequency_model": response.record(),
    }
    err = 0.0 if spec.dc_shape else response.error_estimate
    return _assemble(case, patch, _Modelled(response, spec, syn), electric, strength_duration, err, method)


class _Modelled:
    """The modelled quantities of a response, synthesised for one waveform (collective where noted)."""

    def __init__(self, response: FrequencyResponse, spec: Spectrum, syn: Synthesis) -> None:
        self.response, self.spec, self.syn = response, spec, syn
        self.dc = response.dc_sample if spec.need_dc or spec.dc_shape else None
        self.shape_of = response.dc_sample if spec.dc_shape else next(iter(response.samples.values()))
        # The cell fields E and J of every sample, stacked once: the zones and the heat use them.
        self.E_all = None if spec.dc_shape else response.stacked("E")
        self.J_all = None if spec.dc_shape else response.stacked("J")

    def cells(self, attr: str) -> np.ndarray:
        """The stacked samples (m, n_cells, 3, n_c) of the cell field ``attr`` (``"E"`` or ``"J"``)."""
        stacked = self.E_all if attr == "E" else self.J_all
        if stacked is None:
            raise SolverError("the stacked cell fields were released (or a d.c. waveform has none)")
        return stacked

    def dc_sample(self) -> FrequencySample:
        """The d.c. sample (a waveform with a d.c. part, or a d.c. waveform)."""
        if self.dc is None:
            raise SolverError("the waveform has no d.c. part: no d.c. sample")
        return self.dc

    def release(self) -> None:
        """Drop the stacked cell fields (the largest arrays of a sweep)."""
        self.E_all = self.J_all = None

    def split(self, attr: str) -> tuple[np.ndarray | None, np.ndarray | None]:
        """The extended samples (2 m, k) and the d.c. sample (k,) of a quantity."""
        X0 = None if self.dc is None else getattr(self.dc, attr).ravel()
        if self.spec.dc_shape:
            return None, X0
        X = self.response.stacked(attr)
        return extend(X.reshape(len(X), -1)), X0

    def at_instants(self, attr: str) -> np.ndarray:
        """A quantity at the pulse instants, (n_instants, *its per-sample shape)."""
        Xs, Xs0 = self.split(attr)
        return self.syn.at_instants(Xs, Xs0).reshape(len(self.syn.instants), *getattr(self.shape_of, attr).shape)

    def cells_at_instants(self, attr: str, cells: np.ndarray) -> np.ndarray:
        """The cell field ``attr`` (``"E"`` or ``"J"``) of some cells at the pulse instants."""
        stacked = self.E_all if attr == "E" else self.J_all
        X0 = None if self.dc is None else getattr(self.dc, attr)[cells].ravel()
        Xs = None if stacked is None else extend(stacked[:, cells].reshape(len(stacked), -1))
        n = len(self.syn.instants)
        return self.syn.at_instants(Xs, X0).reshape(n, len(cells), *getattr(self.shape_of, attr).shape[1:])


def _potentials_and_probes(
    m: _Modelled, n_electrodes: int, n_c: int, n_probes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The unit current i(t), electrode potentials and probe E and J over one period, per A."""
    (Hs, H0), (Ps, P0) = m.split("H"), m.split("P")
    X = None if Hs is None else np.concatenate([Hs, Ps], axis=1)
    X0 = None if H0 is None else np.concatenate([H0, P0])
    series, i_unit = m.syn.series(X, X0)
    n_t, n_h = len(series), n_electrodes * n_c
    probes = series[:, n_h:].reshape(n_t, 2, n_probes, 3, n_c)
    return i_unit, series[:, :n_h].reshape(n_t, n_electrodes, n_c), probes[:, 0], probes[:, 1]


def _skin_at_instants(
    m: _Modelled, patch: PatchMesh, electric: ElectricLeadField | None
) -> tuple[np.ndarray, DiscAverage]:
    """(n_instants, n_facets, n_c) normal skin current density per A and the skin-peak operator (collective)."""
    skin = m.response.skin
    jn_local = m.at_instants("Jn")
    comm = patch.mesh.comm
    _, _, _, jn_all = gather_facets(comm, skin, np.moveaxis(jn_local, 1, 0))
    disc = electric.disc if electric is not None else None
    if disc is None:
        tri, area, _, carries = gather_facets(comm, skin, np.any(jn_local != 0, axis=(0, 2)))
        disc = DiscAverage(tri.mean(axis=1), area, carries, PEAK_AVERAGING_RADIUS_M)
    return np.moveaxis(jn_all, 0, 1), disc


def _muscle_at_instants(m: _Modelled, patch: PatchMesh, vol: np.ndarray) -> tuple[np.ndarray, ...]:
    """Target-muscle field, activating function, fibres and cell volumes, gathered (collective)."""
    sampler = m.response.sampler
    em_local, af_local = m.at_instants("Em"), m.at_instants("Af")
    parts = patch.mesh.comm.allgather((em_local, af_local, sampler.fibre, vol[sampler.muscle_cells]))
    return tuple(np.concatenate([p[i] for p in parts], axis=1 if i < 2 else 0) for i in range(4))


def _zones(m: _Modelled, patch: PatchMesh, w: Waveform, pairs: tuple) -> tuple[np.ndarray, ...]:
    """Exclusion-zone E and J at the pulse instants and their plateau mean squares per pair (collective).

    The mean squares are period means of products of the modelled fields, as the heat.
    """
    zc, dc = m.response.sampler.zone_cells, m.dc
    ez, jz = m.cells_at_instants("E", zc), m.cells_at_instants("J", zc)
    E0z = None if dc is None else dc.E[zc]
    J0z = None if dc is None else dc.J[zc]
    G, g0 = m.syn.power_gram(w.rms_pulse_train(1.0) ** 2)
    if m.spec.dc_shape:
        E0, J0 = m.dc_sample().E[zc], m.dc_sample().J[zc]
        n_c = E0.shape[-1]
        per_c = lambda X: [X[..., c] for c in range(n_c)]
        mez = pair_products(per_c(E0), per_c(E0), pairs) * g0
        mjz = pair_products(per_c(J0), per_c(J0), pairs) * g0
    else:
        E_all, J_all = m.cells("E"), m.cells("J")
        mez = gram_products(G, g0, E_all[:, zc], E_all[:, zc], E0z, E0z, pairs)
        mjz = gram_products(G, g0, J_all[:, zc], J_all[:, zc], J0z, J0z, pairs)
    n_z = len(zc)
    parts = patch.mesh.comm.allgather((ez, jz, mez.reshape(n_z, len(pairs)), mjz.reshape(n_z, len(pairs))))
    return tuple(np.concatenate([p[i] for p in parts], axis=1 if i < 2 else 0) for i in range(4))


def _dermis_at_instants(m: _Modelled, patch: PatchMesh, vol: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The field in the skin layers at the pulse instants and the cells' volumes, gathered (collective)."""
    cells = m.response.sampler.dermis_cells
    es = m.cells_at_instants("E", cells)
    parts = patch.mesh.comm.allgather((es, vol[cells]))
    return np.concatenate([p[0] for p in parts], axis=1), np.concatenate([p[1] for p in parts])


def _transfers(m: _Modelled) -> tuple[np.ndarray, np.ndarray]:
    """The sampled frequencies [Hz] (0: d.c.) and the electrode potentials per A at each."""
    response = m.response
    sampled = [] if m.spec.dc_shape else list(response.frequencies_Hz)
    transfers = [] if m.spec.dc_shape else list(response.stacked("H"))
    if m.dc is not None:
        sampled, transfers = [0.0, *sampled], [m.dc.H, *transfers]  # d.c. first
    return np.array(sampled), np.array(transfers)


def _assemble(
    case: Case, patch: PatchMesh, m: _Modelled, electric: ElectricLeadField | None,
    sd: act.StrengthDuration | None, interpolation_error: float, method: dict[str, Any],
) -> WaveformLeadField:  # fmt: skip
    """Synthesise the modelled quantities into a :class:`WaveformLeadField` (collective)."""
    w = case.waveform
    sampler = m.response.sampler
    names = sampler.names
    layout = ChannelLayout.of(case)
    pairs = layout.pairs
    i_unit, potentials, probe_E, probe_J = _potentials_and_probes(m, len(names), len(case.channels), len(case.probes))
    skin_jn, disc = _skin_at_instants(m, patch, electric)
    vol = cell_volumes(patch)
    muscle_E, muscle_af, fibre, muscle_vol = _muscle_at_instants(m, patch, vol)
    zone_E, zone_J, zone_E_ms, zone_J_ms = _zones(m, patch, w, pairs)
    dermis_E, dermis_vol = _dermis_at_instants(m, patch, vol)
    heat = cycle_heat(case, patch, m.response, m.syn, pairs, vol, m.dc, stacked={"E": m.E_all, "J": m.J_all})
    m.release()
    sampled, transfers = _transfers(m)
    return WaveformLeadField(
        waveform=w,
        layout=layout,
        times_s=m.syn.t,
        unit_current=i_unit,
        potentials_V_per_A=potentials,
        sample_frequencies_Hz=sampled,
        transfer_V_per_A=transfers,
        n_harmonics=m.spec.n_harmonics,
        interpolation_error=interpolation_error,
        instants_s=m.syn.instants,
        skin_jn_per_A=skin_jn,
        disc=disc,
        muscle_field_per_A=muscle_E,
        muscle_af_per_A=muscle_af,
        fibre=fibre,
        muscle_volumes_m3=muscle_vol,
        has_target=bool(sampler.directions),
        probes=tuple(p.name for p in case.probes),
        probe_field_per_A=probe_E,
        probe_current_density_per_A=probe_J,
        heat=heat,
        strength_duration=sd or act.StrengthDuration(),
        method=method,
        target_volume_m3=case.activation.target_volume_m3,
        zone_pulse_field_per_A=zone_E,
        zone_pulse_current_density_per_A=zone_J,
        zone_field_ms_per_A2=zone_E_ms,
        zone_current_density_ms_per_A2=zone_J_ms,
        pairs=pairs,
        dermis_field_per_A=dermis_E,
        dermis_volumes_m3=dermis_vol,
        onset_volume_m3=case.activation.onset_volume_m3,
        sensory=sensory_model(case),
    )
