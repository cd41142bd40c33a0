r"""Phosphene criterion: the ICNIRP 2010 weighted-peak method on a field at the retina.

Electrically evoked phosphenes come from the retina. ICNIRP 2010 (Health Physics 99:818, basic
restrictions for the internal electric field in CNS tissue of the head) sets the r.m.s. limit
E_L(f) of a SINUSOIDAL field; for any other waveform it prescribes the weighted-peak method: the
field's spectrum is weighted by a filter whose gain follows 1 / (sqrt 2 E_L(f)) and the weighted
time course must stay within 1 at every instant,

    EI(t) = | sum_k W(f_k) E_k exp(j 2 pi f_k t) | <= 1,

with E_k the field's two-sided Fourier coefficients (a vector: the weighted vector field's
magnitude is taken). The filter here is the product of first-order sections with corners at the
breakpoints of the limit curve (a zero at 0 Hz and a pole at the first corner below the flat
band, a pole where the limit starts rising as f, a zero where it flattens, a pole where it rises
again), which ICNIRP describes as the usual realisation: its gain meets 1 / (sqrt 2 E_L) on every
asymptote and departs from the piecewise curve by at most 3 dB at an isolated corner, and its
phase is that of the corresponding RC networks.

Limits (r.m.s., V/m; f in Hz), CNS tissue of the head:

* occupational: 0.5/f (1-10 Hz), 0.05 (10-25 Hz), 2e-3 f (25-400 Hz), 0.8 (400 Hz-3 kHz),
  2.7e-4 f (3 kHz-10 MHz);
* general public: 0.1/f (1-10 Hz), 0.01 (10-25 Hz), 4e-4 f (25 Hz-1 kHz), 0.4 (1-3 kHz),
  1.35e-4 f (3 kHz-10 MHz).

Verified (shared/PHYSICS.md and ICNIRP 2010 summaries found with the search tool): 0.05 V/m at
10-25 Hz and 2e-3 f to 400 Hz occupational (120 mV/m at 60 Hz), 0.01 and 4e-4 f to 1 kHz public
(24 mV/m at 60 Hz). UNVERIFIED (quoted from memory of the guideline's table): the segments below
10 Hz and above 400 Hz (occupational) or 1 kHz (public). The occupational tier is the one ICNIRP
sets about at the phosphene threshold (the public tier adds a factor 5), so it is the phosphene
reference here.

Population. A criterion at the mean threshold protects half the people. Naycheva et al. 2012
(IOVS 53:7440, verified: 20 healthy subjects, DTL electrodes, 5 + 5 ms biphasic pulses) measured
transcorneal phosphene thresholds of 0.062 +- 0.038 mA at 20 Hz (mean +- SD). Taking the
thresholds as log-normal with that mean and SD (an ASSUMPTION: the paper reports mean +- SD), the
5th percentile over the mean is :data:`POPULATION_FACTOR` = 0.34: a field at that fraction of the
reference evokes phosphenes in about 1 person in 20. Checked against, not used here: Sabel et al.
2021 (IEEE TNSRE 29:2133, abstract read with the search tool: tACS at 16 Hz, lowest mean threshold
95 +- 33 uA for the F7-F8 montage) and Nissi & Laakso 2022 (Phys Med Biol 67:015001, abstract read:
the threshold radial retinal current density of five phosphene experiments simulated in 14 head
models, 6.0-20.6 mA/m^2), which tests/test_orbit.py holds the model's retina to.

On a case: an exclusion zone of ``kind = "orbit"`` places a globe under the zone
(:mod:`emsim.models.orbit`) and :mod:`emsim.solvers.electric.exclusion` evaluates this criterion
on the field at its retina. Current control makes the field at the retina, far from the pads,
the unit-current field times the current waveform i(t) (the conductivities taken at the
quasi-static frequency: an approximation, since fat and muscle are dispersive), so the index is
``max over the retina |E per A| x I x`` :func:`unit_weighted_peak` (one firing group of channels;
see the solver for several).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...errors import InputError

__all__ = [
    "NAYCHEVA_2012_THRESHOLD_A",
    "POPULATION_FACTOR",
    "TIERS",
    "CnsLimit",
    "lognormal_fraction",
    "unit_weighted_peak",
    "weighted_peak_index",
]

#: Highest harmonic frequency kept, at least [Hz]: beyond 3 kHz the filter falls as 1/f and a
#: pulse's spectrum as 1/f, so the weighted terms fall as 1/f^2 (tested against a dense sum).
_F_CUT_MIN_HZ = 50e3
_PER_PHASE = 40.0  # ... and at least this many times 1 / (the shortest phase)
_MAX_HARMONICS = 20_000
_STEPS_PER_PHASE = 16  # uniform instants per shortest phase, between the pulses
_PER_PULSE = 2000  # instants over each pulse and one shortest phase after it (where the peaks are)


@dataclass(frozen=True, slots=True)
class CnsLimit:
    """ICNIRP 2010 r.m.s. limit of the internal field in CNS tissue of the head, one tier.

    Attributes:
        tier: ``"occupational"`` or ``"public"``.
        flat_V_per_m: the flat limit between ``f_low_Hz`` and ``f_rise_Hz`` [V/m r.m.s.].
        f_low_Hz: below it the limit rises as 1/f [Hz].
        f_rise_Hz: above it the limit rises as f [Hz].
        f_flat_Hz: above it the limit is flat again [Hz].
        f_high_Hz: above it the limit rises as f again [Hz].
        source: where the numbers come from (and what is unverified).
    """

    tier: str
    flat_V_per_m: float
    f_low_Hz: float
    f_rise_Hz: float
    f_flat_Hz: float
    f_high_Hz: float
    source: str

    def rms_V_per_m(self, f_Hz: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """The piecewise limit E_L(f) [V/m r.m.s.] (1 Hz to 10 MHz)."""
        f = np.asarray(f_Hz, dtype=float)
        if np.any(f < 1.0) or np.any(f > 1e7):
            raise InputError("frequency_Hz", f_Hz, "1 Hz to 10 MHz (the range of ICNIRP 2010)")
        top = self.flat_V_per_m * self.f_flat_Hz / self.f_rise_Hz  # the second flat level
        return np.select(
            [f < self.f_low_Hz, f <= self.f_rise_Hz, f <= self.f_flat_Hz, f <= self.f_high_Hz],
            [self.flat_V_per_m * self.f_low_Hz / f, self.flat_V_per_m + 0 * f, self.flat_V_per_m * f / self.f_rise_Hz,
             top + 0 * f],
            top * f / self.f_high_Hz,
        )  # fmt: skip

    def weight_per_V_per_m(self, f_Hz: Sequence[float] | np.ndarray | float) -> np.ndarray:
        """The complex weighting filter W(f) [1/(V/m)] (peak), W(-f) = conj W(f).

        ``W = 1 / (sqrt 2 E_flat) x (j f/f_low) / (1 + j f/f_low) x 1 / (1 + j f/f_rise)
        x (1 + j f/f_flat) x 1 / (1 + j f/f_high)``.
        """
        jf = 1j * np.asarray(f_Hz, dtype=float)
        w = (jf / self.f_low_Hz) / (1 + jf / self.f_low_Hz) / (1 + jf / self.f_rise_Hz)
        w = w * (1 + jf / self.f_flat_Hz) / (1 + jf / self.f_high_Hz)
        return w / (math.sqrt(2.0) * self.flat_V_per_m)


_ICNIRP = "ICNIRP 2010 (Health Phys 99:818) basic restriction, CNS tissue of the head"
#: The two tiers of the CNS-of-the-head limit.
TIERS: dict[str, CnsLimit] = {
    "occupational": CnsLimit(
        "occupational", 0.05, 10.0, 25.0, 400.0, 3000.0,
        _ICNIRP + ", occupational: 0.05 V/m r.m.s. 10-25 Hz, 2e-3 f to 400 Hz (verified); 0.5/f below 10 Hz, "
        "0.8 V/m to 3 kHz, 2.7e-4 f above (unverified); about the phosphene threshold",
    ),
    "public": CnsLimit(
        "public", 0.01, 10.0, 25.0, 1000.0, 3000.0,
        _ICNIRP + ", general public: 0.01 V/m r.m.s. 10-25 Hz, 4e-4 f to 1 kHz (verified); 0.1/f below 10 Hz, "
        "0.4 V/m to 3 kHz, 1.35e-4 f above (unverified); the occupational tier / 5",
    ),
}  # fmt: skip

#: Transcorneal phosphene threshold of healthy subjects at 20 Hz, mean and SD [A] (Naycheva et
#: al. 2012, IOVS 53:7440; 5 + 5 ms biphasic pulses, DTL electrodes; verified).
NAYCHEVA_2012_THRESHOLD_A = (0.062e-3, 0.038e-3)


def lognormal_fraction(mean: float, sd: float, z: float) -> float:
    """The quantile at ``z`` standard normal deviates of a log-normal of given mean and SD, over the mean.

    sigma^2 = ln(1 + (sd/mean)^2), median = mean / sqrt(1 + (sd/mean)^2), quantile = median exp(z sigma).
    """
    if not (mean > 0 and sd >= 0):
        raise InputError("mean, sd", (mean, sd), "mean > 0 and sd >= 0")
    cv2 = (sd / mean) ** 2
    return math.exp(z * math.sqrt(math.log1p(cv2))) / math.sqrt(1.0 + cv2)


#: 5th percentile / mean of the Naycheva 2012 thresholds (log-normal assumption; z = -1.645).
POPULATION_FACTOR = lognormal_fraction(*NAYCHEVA_2012_THRESHOLD_A, -1.6448536269514722)


def weighted_peak_index(
    f_Hz: np.ndarray, coefficients: np.ndarray, times_s: np.ndarray, *, tier: str = "occupational"
) -> float:
    """Max over ``times_s`` of the weighted-peak exposure index EI(t) of a periodic field.

    Args:
        f_Hz: the positive harmonic frequencies f_k [Hz] (the d.c. term is weighted by 0).
        coefficients: (n_k, 3) or (n_k,) one-sided complex amplitudes: the field is
            E(t) = Re sum_k a_k exp(j 2 pi f_k t) [V/m] (a_k = 2 c_k of the two-sided series).
        times_s: instants over one period at which EI is evaluated.
        tier: ``"occupational"`` (the phosphene reference) or ``"public"``.

    Returns:
        max_t |Re sum_k W(f_k) a_k exp(j 2 pi f_k t)| (1: at the limit).
    """
    if tier not in TIERS:
        raise InputError("tier", tier, f"one of {', '.join(TIERS)}")
    f = np.asarray(f_Hz, dtype=float)
    a = np.asarray(coefficients, dtype=complex)
    a = a[:, None] if a.ndim == 1 else a
    weighted = TIERS[tier].weight_per_V_per_m(f)[:, None] * a
    t = np.asarray(times_s, dtype=float)
    chunk = max(1, 2_000_000 // max(len(f), 1))  # instants per block: bounds the (t, f) matrix's memory
    peak = 0.0
    for i in range(0, len(t), chunk):
        field = (np.exp(2j * np.pi * np.outer(t[i : i + chunk], f)) @ weighted).real  # (n_t, 3)
        peak = max(peak, float(np.max(np.linalg.norm(field, axis=-1), initial=0.0)))
    return peak


def unit_weighted_peak(waveform: Any, *, tier: str = "occupational") -> float:
    """Max over one period of the weighted-peak index of a unit field driven by the waveform [1/(V/m)].

    The field E(t) = e i(t) / I_peak with |e| = 1 V/m: the index of any field along one direction
    that follows the current is |e| x (I / I_peak) x this number. The series is the waveform's
    pulse train over :attr:`~emsim.models.waveforms.Waveform.period_s` (the plateau of the on/off
    cycle: the envelope is left out, its ramps only lower the amplitude), up to
    max(50 kHz, 40 / shortest phase), evaluated at 2000 instants over each pulse and one shortest
    phase after it (where the weighted response peaks) and 16 per shortest phase elsewhere.

    Raises:
        InputError: a d.c. waveform (the ICNIRP limits start at 1 Hz), or a period that needs
            more than 20000 harmonics.
    """
    if waveform.shape == "dc":
        raise InputError("waveform.shape", "dc", "a pulsed waveform (the ICNIRP 2010 limits start at 1 Hz)")
    phases = waveform.phases()
    shortest = min(end - start for start, end, _ in phases)
    period = waveform.period_s
    f_cut = max(_F_CUT_MIN_HZ, _PER_PHASE / shortest)
    n = math.ceil(f_cut * period)
    if n > _MAX_HARMONICS:
        raise InputError(
            "waveform", f"period {period:g} s", f"a period of at most {_MAX_HARMONICS / f_cut:g} s for the weighted-peak "
            f"method ({_MAX_HARMONICS} harmonics up to {f_cut:g} Hz)",
        )  # fmt: skip
    f, c = waveform.spectrum(1.0, n)
    k = f > 0
    # the pulses of one period start every pulse period (a burst's first pulses_per_burst of them)
    count = waveform.pulses_per_burst or max(1, round(period / waveform.pulse_period_s))
    starts = np.arange(count) * waveform.pulse_period_s
    # dense around every pulse (its phases and one shortest phase after), uniform elsewhere
    duration = phases[-1][1] + waveform.rise_time_s + shortest
    local = np.linspace(0.0, duration, _PER_PULSE)
    pulse_t = (starts[:, None] + local[None, :]).ravel()
    uniform = np.linspace(0.0, period, max(2, math.ceil(period / shortest * _STEPS_PER_PHASE)) + 1)
    t = np.unique(np.concatenate([uniform, np.mod(pulse_t, period)]))
    return weighted_peak_index(f[k], 2 * c[k], t, tier=tier)
