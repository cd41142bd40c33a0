r"""The periodic steady-state response to a waveform, held per unit peak current of each channel.

Periodic steady state. For a waveform with period T and two-sided Fourier coefficients c_k
(:meth:`emsim.models.waveforms.Waveform.spectrum`), any linear response X (electrode potential,
cell field, current density) is X(t) = sum_k c_k X(f_k) exp(j 2 pi f_k t), X(-f) = conj X(f).
The transfer X(f) is sampled by 3-D solves (:class:`~emsim.solvers.spectral.frequency.FrequencyProblem`)
at a few frequencies of a band holding 1/T to the truncation frequency f_N = N/T, and evaluated
at every harmonic through a set-valued AAA rational model (:mod:`emsim.solvers.spectral.rational`; the
adaptive choice of frequencies and the error estimate are in
:mod:`emsim.solvers.spectral.sweep`).

The response of resistive paths jumps with the current, and a truncated Fourier series of a jump
rings (Gibbs). The synthesis therefore splits off the high-frequency limit X_ref = Re X(f_N):

    X(t) = X_ref i(t) + sum_{|k| <= N} c_k (X(f_k) - X_ref) exp(j w_k t),

with i(t) sampled exactly; the remainder is continuous (for an R || C contact its coefficients
fall as 1/k^2), and the harmonics beyond N are taken at X(f_N). The default f_N = 500 / (shortest
phase) makes that truncation error for a contact of time constant tau about
1 / (pi^2 f_N tau) of its voltage at most (0.1 % at tau = 100 us, PW = 200 us). On the uniform
time grid the remainder is one inverse real FFT per quantity.

Fields at the pulse: the skin current density (per skin facet, :mod:`emsim.solvers.electric.skin`), the
muscle field and the activating function are synthesised the same way at chosen instants of the
first pulse, through the cardinal weights of the rational model.

Probes: at the case's ``[[probe]]`` points the field E = -grad phi and the current density
J = S* E are synthesised over the whole period like the electrode potentials (see
:mod:`emsim.solvers.electric.points` for how a point is located).

Linearity. Every quantity is held per unit peak current of each channel (the last axis), so
that :meth:`WaveformLeadField.at` gives the metrics at any channel currents without a solve.
Channels: simultaneous channels fire in phase and their fields add; interleaved channels (the
default, as most stimulators do) never overlap, so each pulse quantity is the largest over the
channels each alone, and powers and heat add without cross terms. Scope: the pulse train at the
plateau of the on/off cycle (the envelope is slow against the pulses and scales the response;
r.m.s. figures and the heat include it); the tissue and the skin contact are linear (Panescu
1994: the skin is not, at high current density).

The sweep that computes all this is :func:`emsim.solvers.spectral.sweep.waveform_response`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ...models.waveforms import Waveform
from ..channels import ChannelLayout, Currents
from ..electric.skin import PEAK_AVERAGING_RADIUS_M, DiscAverage
from ..physiology import activation as act
from ..physiology.sensory import ComfortMetrics, comfort_metrics
from ..records import Absent, metric
from .joule import CycleHeat

__all__ = [
    "DEFAULT_N_FREQUENCIES",
    "ActivationMetrics",
    "ChannelWaveform",
    "TimeCourse",
    "WaveformLeadField",
    "WaveformMetrics",
    "pulse_instants",
]

log = logging.getLogger(__name__)

#: Former default number of sampled frequencies of the cubic-spline sweep (kept for callers; the
#: rational sweep starts from :data:`emsim.solvers.spectral.sweep.INITIAL_FREQUENCIES` and
#: ``[solver] waveform_frequencies`` caps it).
DEFAULT_N_FREQUENCIES = 24


@dataclass(frozen=True)
class ChannelWaveform:
    """One channel's electrode voltage and power over one period (periodic steady state)."""

    electrode_voltage_peak_V: float = metric("V", "max over one period of |V_anode - V_cathode|")
    electrode_voltage_rms_V: float = metric("V", "r.m.s. over one period of V_anode - V_cathode")
    mean_power_W: float = metric("W", "mean over the period of (V_anode - V_cathode) i")


@dataclass(frozen=True)
class WaveformMetrics:
    """Waveform metrics at given channel currents (peak currents of the pulses)."""

    waveform_shape: str = metric("-", "the waveform's shape")
    electrode_voltage_peak_V: float = metric(
        "V", "max over one period (periodic steady state) of |V_anode - V_cathode|, first channel",
        label="electrode voltage, peak over the period",
    )  # fmt: skip
    electrode_voltage_rms_V: float = metric("V", "r.m.s. over one period of V_anode - V_cathode, first channel")
    mean_power_W: float = metric("W", "mean over the period of sum over channels of (V_anode - V_cathode) i")
    waveform_by_channel: Mapping[str, ChannelWaveform] = metric("-", "peak and r.m.s. voltage [V] and mean power [W] of each channel")
    muscle_field_peak_V_per_m: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "V/m", "max |E| over the target muscle cells at the pulse instants", label="muscle |E| at the pulse, max"
    )
    muscle_activating_function_peak_V_per_m2: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "V/m^2", "max of the activating function d^2 phi / ds^2 over the target muscle at the pulse instants"
    )
    skin_current_density_peak_pulse_A_per_m2: float = metric(
        "A/m^2",
        "max over the pulse instants of the normal skin current density averaged over a disc of radius "
        f"{PEAK_AVERAGING_RADIUS_M * 1e3:g} mm (the d.c. peak's definition and support)",
        label="skin J at the pulse, peak",
    )
    skin_current_density_peak_pulse_time_s: float = metric(
        "s", "instant of the first pulse (from its start) where the pulse peak is reached"
    )
    charge_per_phase_C: float = metric("C", "charge of the first phase of a pulse, first channel", label="charge per phase")
    net_charge_per_period_C: float = metric("C", "net charge per pulse-train period, first channel", label="net charge per period")
    current_rms_A: float = metric(
        "A", "r.m.s. current over the whole cycle (pulses, bursts, on/off, ramps), first channel",
        label="current r.m.s. (whole cycle)",
    )  # fmt: skip
    current_rms_pulse_train_A: float = metric("A", "r.m.s. current of the pulse train at the plateau, first channel")
    probe_field_peak_V_per_m: Mapping[str, float] | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
       "V/m", "per [[probe]]: max over one period of |E(t)| at the point")
    probe_current_density_peak_A_per_m2: Mapping[str, float] | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
       "A/m^2", "per [[probe]]: max over one period of |J(t)|")
    layer_joule_power_cycle_mean_W: Mapping[str, float] = metric(
        "W", "Joule power averaged over the whole cycle (pulses, gaps, bursts, on/off, ramps) from the "
        "waveform's spectrum through the dispersive tissues and the capacitive contact, per volume label "
        "and per bare electrode's contact (contact:E); interleaved channels add without cross terms",
    )  # fmt: skip
    joule_power_cycle_mean_W: float = metric(
        "W", "sum of layer_joule_power_cycle_mean_W: the heat the session deposits per second", label="Joule power, cycle mean",
    )  # fmt: skip


@dataclass(frozen=True)
class ActivationMetrics:
    """Activation estimate of the target muscle at given channel currents."""

    muscle_fibre_field_peak_V_per_m: float = metric("V/m", "max over the target muscle and the pulse instants of |E . f|")
    activation_threshold_field_V_per_m: float = metric(
        "V/m", "strength-duration threshold of the field along the fibres at the pulse width"
    )
    muscle_activated_fraction: float = metric(
        "-", "target-muscle volume fraction (of the modelled patch) where the fibre field at the pulse "
        "reaches the threshold; depends on the patch size: prefer muscle_activated_volume_cm3",
    )  # fmt: skip
    muscle_activated_volume_cm3: float = metric(
        "cm^3", "target-muscle volume where the fibre field at the pulse reaches the threshold",
        label="muscle volume above threshold",
    )  # fmt: skip
    target_volume_cm3: float = metric("cm^3", "the stated volume of [activation] target_volume_cm3")
    current_for_target_volume_A: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "A", "first channel's peak current (others in proportion) at which the stated target volume is "
        "above threshold", label="current to activate the target volume", scale=1e3, shown_unit="mA",
    )  # fmt: skip
    current_for_50pct_activation_A: float | Absent = metric(  # noqa: RUF009  (metric() is a dataclasses.field)
        "A", "first channel's peak current (others in proportion) at which half the target muscle of the "
        "modelled patch is above threshold (depends on the patch size: prefer current_for_target_volume_A)",
    )  # fmt: skip


@dataclass(frozen=True)
class TimeCourse:
    """The periodic steady state over one period at given channel currents.

    Attributes:
        times_s: uniform time grid over one period [s].
        channel_current_A: current of each channel on the grid [A].
        channel_voltage_V: V_anode - V_cathode of each channel [V].
        electrode_potential_V: potential of each electrode [V] (first cathode at 0 V).
        probe_field_V_per_m: per probe, (n_times, 3) field E(t) [V/m].
        probe_current_density_A_per_m2: per probe, (n_times, 3) current density J(t) [A/m^2].
        pulse_duration_s: start of the first phase to the end of the last of one pulse [s].
    """

    times_s: np.ndarray
    channel_current_A: dict[str, np.ndarray]
    channel_voltage_V: dict[str, np.ndarray]
    electrode_potential_V: dict[str, np.ndarray]
    probe_field_V_per_m: dict[str, np.ndarray]
    probe_current_density_A_per_m2: dict[str, np.ndarray]
    pulse_duration_s: float


def pulse_instants(waveform: Waveform) -> np.ndarray:
    """Instants [s] of the first pulse where fields are synthesised: dense at each phase's start.

    A capacitive contact is a short at the start of a phase, so the current crowds at the pad
    rim exactly then and relaxes over the contact's time constant. The edge is the output
    stage's ramp of ``rise_time_s`` (t_r): the current reaches the phase's amplitude at
    start + t_r, where the crowding is largest, so each phase is sampled on its ramp (start +
    t_r x (0.5, 1)) and then at start + t_r + (w - t_r) x (1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3,
    0.6) and just before its end (w its width). With t_r = 0 (an ideal step) the onset spike is
    as sharp as the model of the contact makes it.
    """
    fractions = np.array([1e-4, 1e-3, 3e-3, 0.01, 0.03, 0.1, 0.3, 0.6, 1 - 1e-3])
    tr = float(getattr(waveform, "rise_time_s", 0.0) or 0.0)
    out = []
    for start, end, _ in waveform.phases():
        if tr > 0.0:
            out.append(start + tr * np.array([0.5, 1.0]))
        out.append(start + tr + (end - start - tr) * fractions)
    return np.concatenate(out)


@dataclass(frozen=True)
class WaveformLeadField:
    """The waveform response per unit peak current of each channel (last axis), on every rank.

    Attributes:
        waveform: the case's waveform.
        layout: the channels (names, ``"interleaved"`` or ``"simultaneous"`` timing) and the
            electrodes they drive (names; per channel, the index of its first anode and cathode,
            -1: ground).
        times_s: uniform time grid over one period [s]; ``unit_current``: i(t) of a unit peak.
        potentials_V_per_A: (n_times, n_electrodes, n_channels) electrode potentials.
        sample_frequencies_Hz: frequencies of the 3-D solves (0: d.c.).
        transfer_V_per_A: (n_samples, n_electrodes, n_channels) complex potentials.
        n_harmonics: harmonics synthesised; ``interpolation_error``: its relative estimate.
        instants_s: instants of the first pulse where the fields were synthesised [s].
        skin_jn_per_A: (n_instants, n_facets, n_channels) normal skin current density.
        disc: the skin-peak averaging operator (facets in the d.c. lead field's order).
        muscle_field_per_A: (n_instants, n_cells, 3, n_channels) target-muscle field.
        muscle_af_per_A: (n_instants, n_cells, n_channels) activating function.
        fibre: (n_cells, 3) fibre direction of each target-muscle cell; ``muscle_volumes_m3``.
        probes: probe names; ``probe_field_per_A``, ``probe_current_density_per_A``:
            (n_times, n_probes, 3, n_channels).
        heat: the cycle-averaged Joule heat per channel pair.
        target_volume_m3: the volume whose activation current is reported [m^3].
        zone_pulse_field_per_A, zone_pulse_current_density_per_A: (n_instants, n_zone_cells, 3,
            n_channels) exclusion-zone E and J at the pulse instants (cells in the order of
            :class:`emsim.solvers.electric.exclusion.ZoneLeadField`); ``zone_field_ms_per_A2``,
            ``zone_current_density_ms_per_A2``: (n_zone_cells, n_pairs) their mean squares over
            the pulse train at the plateau per channel pair (``pairs``).
        dermis_field_per_A: (n_instants, n_dermis_cells, 3, n_channels) field in the skin layers
            (:mod:`emsim.solvers.physiology.sensory`); ``dermis_volumes_m3`` their volumes.
        onset_volume_m3: the volume at which a response begins [m^3]; ``sensory``: the sensory
            strength-duration model.
        strength_duration: the activation threshold model.
        method: how the sweep went (frequencies added, tolerance, harmonics).
    """

    waveform: Waveform
    layout: ChannelLayout
    times_s: np.ndarray
    unit_current: np.ndarray
    potentials_V_per_A: np.ndarray
    sample_frequencies_Hz: np.ndarray
    transfer_V_per_A: np.ndarray
    n_harmonics: int
    interpolation_error: float
    instants_s: np.ndarray
    skin_jn_per_A: np.ndarray
    disc: DiscAverage
    muscle_field_per_A: np.ndarray
    muscle_af_per_A: np.ndarray
    fibre: np.ndarray
    muscle_volumes_m3: np.ndarray
    has_target: bool
    probes: tuple[str, ...]
    probe_field_per_A: np.ndarray
    probe_current_density_per_A: np.ndarray
    heat: CycleHeat
    strength_duration: act.StrengthDuration
    method: Mapping[str, Any]
    target_volume_m3: float = 0.5e-6
    zone_pulse_field_per_A: np.ndarray | None = None
    zone_pulse_current_density_per_A: np.ndarray | None = None
    zone_field_ms_per_A2: np.ndarray | None = None
    zone_current_density_ms_per_A2: np.ndarray | None = None
    pairs: tuple[tuple[int, int], ...] = ()
    dermis_field_per_A: np.ndarray | None = None
    dermis_volumes_m3: np.ndarray | None = None
    onset_volume_m3: float = 1e-9
    sensory: act.StrengthDuration | None = None

    def _current(self, currents_A: Currents) -> np.ndarray:
        return self.layout.vector(currents_A)

    def groups(self, current: np.ndarray) -> list[np.ndarray]:
        """The channel currents that flow together (:func:`emsim.solvers.channels.firing_groups`)."""
        return self.layout.groups(current)

    def time_course(self, currents_A: Currents) -> TimeCourse:
        """The periodic steady state over one period at channel (peak) currents [A].

        Interleaved channels: each channel's voltage is its own response (the channels' pulses
        never overlap); electrode potentials are those of all channels in phase, a bound.
        """
        current = self._current(currents_A)
        V = self.potentials_V_per_A @ current
        if self.layout.cathode[0] >= 0:
            V = V - V[:, [self.layout.cathode[0]]]
        volt = {}
        for c, (ch, a, k) in enumerate(zip(self.layout.names, self.layout.anode, self.layout.cathode, strict=True)):
            own = self.potentials_V_per_A[:, :, c] * current[c] if self.layout.timing == "interleaved" else V
            volt[ch] = own[:, a] - (own[:, k] if k >= 0 else 0.0)
        pe = self.probe_field_per_A @ current
        pj = self.probe_current_density_per_A @ current
        return TimeCourse(
            times_s=self.times_s,
            channel_current_A={ch: i * self.unit_current for ch, i in zip(self.layout.names, current, strict=True)},
            channel_voltage_V=volt,
            electrode_potential_V={n: V[:, i] for i, n in enumerate(self.layout.electrodes)},
            probe_field_V_per_m={p: pe[:, k] for k, p in enumerate(self.probes)},
            probe_current_density_A_per_m2={p: pj[:, k] for k, p in enumerate(self.probes)},
            pulse_duration_s=0.0 if self.waveform.shape == "dc" else self.waveform.phases()[-1][1],
        )

    def skin_peak_by_instant(self, currents_A: Currents) -> np.ndarray:
        """Disc-averaged skin peak [A/m^2] at each pulse instant (``instants_s``) at the currents."""
        current = self._current(currents_A)
        peaks = [self.disc.peaks(np.abs(self.skin_jn_per_A @ g).T) for g in self.groups(current)]
        return np.max(peaks, axis=0)

    def muscle_field(self, currents_A: Currents) -> np.ndarray:
        """(n_instants, n_cells, 3) target-muscle field [V/m] at the instants (channels in phase)."""
        return self.muscle_field_per_A @ self._current(currents_A)

    def at(self, currents_A: Currents) -> tuple[WaveformMetrics, ActivationMetrics | Absent]:
        """Waveform and activation metrics at channel (peak) currents [A]; no solve."""
        current = self._current(currents_A)
        course = self.time_course(current)
        w, i0 = self.waveform, float(current[0])

        def mean(y: np.ndarray) -> float:
            return float(np.mean(y)) if len(y) else 0.0

        by_channel = {
            n: ChannelWaveform(
                electrode_voltage_peak_V=float(np.max(np.abs(v))),
                electrode_voltage_rms_V=math.sqrt(mean(v**2)),
                mean_power_W=mean(v * course.channel_current_A[n]),
            )
            for n, v in course.channel_voltage_V.items()
        }
        first = by_channel[self.layout.names[0]]
        peaks = self.skin_peak_by_instant(current)
        at_peak = int(np.argmax(peaks))
        no_target = Absent("the case has no target muscle layer (a layer of the library's muscle)")
        e_max: float | Absent
        af_max: float | Absent
        if self.has_target and self.muscle_field_per_A.shape[1]:
            e_max = max(float(np.linalg.norm(self.muscle_field_per_A @ g, axis=2).max()) for g in self.groups(current))
            af_max = max(float((self.muscle_af_per_A @ g).max()) for g in self.groups(current))
        else:
            e_max = af_max = no_target
        probes = {p: float(np.linalg.norm(e, axis=1).max()) for p, e in course.probe_field_V_per_m.items()}
        probes_j = {p: float(np.linalg.norm(j, axis=1).max()) for p, j in course.probe_current_density_A_per_m2.items()}
        heat = self.heat.layer_power_W(current)
        no_probe = Absent("the case has no [[probe]]")
        metrics = WaveformMetrics(
            waveform_shape=w.shape,
            electrode_voltage_peak_V=first.electrode_voltage_peak_V,
            electrode_voltage_rms_V=first.electrode_voltage_rms_V,
            mean_power_W=sum(c.mean_power_W for c in by_channel.values()),
            waveform_by_channel=by_channel,
            muscle_field_peak_V_per_m=e_max,
            muscle_activating_function_peak_V_per_m2=af_max,
            skin_current_density_peak_pulse_A_per_m2=float(peaks[at_peak]),
            skin_current_density_peak_pulse_time_s=float(self.instants_s[at_peak]),
            charge_per_phase_C=w.charge_per_phase_C(i0),
            net_charge_per_period_C=w.net_charge_per_period_C(i0),
            current_rms_A=w.rms(i0),
            current_rms_pulse_train_A=w.rms_pulse_train(i0),
            probe_field_peak_V_per_m=probes if self.probes else no_probe,
            probe_current_density_peak_A_per_m2=probes_j if self.probes else no_probe,
            layer_joule_power_cycle_mean_W=heat,
            joule_power_cycle_mean_W=sum(heat.values()),
        )
        return metrics, self._activation(current)

    def fibre_field(self, current: np.ndarray) -> np.ndarray:
        """Per target-muscle cell, the largest |E . f| [V/m] over the pulse instants and firing groups."""
        return np.max([
            np.max(np.abs(np.einsum("icj,cj->ic", self.muscle_field_per_A @ g, self.fibre)), axis=0)
            for g in self.groups(current)
        ], axis=0)  # fmt: skip

    def dermis_field(self, current: np.ndarray) -> np.ndarray | None:
        """Per dermis cell, the largest |E| [V/m] over the pulse instants and firing groups (None: no skin layer)."""
        if self.dermis_field_per_A is None or not self.dermis_field_per_A.shape[1]:
            return None
        return np.max(
            [np.linalg.norm(self.dermis_field_per_A @ g, axis=2).max(axis=0) for g in self.groups(current)], axis=0
        )

    def comfort(self, currents_A: Currents) -> ComfortMetrics | Absent:
        """Sensory and motor thresholds and their ratio (:mod:`emsim.solvers.physiology.sensory`), or Absent."""
        current = self._current(currents_A)
        width = self.waveform.pulse_width_s
        if self.waveform.shape == "dc" or width is None:
            return Absent("a d.c. waveform has no pulse width for the strength-duration thresholds")
        target = self.has_target and self.muscle_field_per_A.shape[1]
        return comfort_metrics(
            pulse_width_s=width, first_current_A=float(current[0]),
            dermis_field_A=self.dermis_field(current),
            dermis_volumes_m3=self.dermis_volumes_m3 if self.dermis_volumes_m3 is not None else np.zeros(0),
            fibre_field_A=self.fibre_field(current) if target else None, muscle_volumes_m3=self.muscle_volumes_m3,
            onset_volume_m3=self.onset_volume_m3, sensory=self.sensory or act.StrengthDuration(),
            motor=self.strength_duration,
        )  # fmt: skip

    def _activation(self, current: np.ndarray) -> ActivationMetrics | Absent:
        w = self.waveform
        if not (self.has_target and self.muscle_field_per_A.shape[1]):
            return Absent("the case has no target muscle layer (a layer of the library's muscle)")
        if w.shape == "dc" or w.pulse_width_s is None:
            return Absent("a d.c. waveform has no pulse width for the strength-duration threshold")
        # A cell is activated when any firing group drives its fibre field over the threshold.
        ef = self.fibre_field(current)
        threshold = self.strength_duration.threshold_field_V_per_m(w.pulse_width_s)
        v = self.muscle_volumes_m3
        total = float(v.sum())
        volume = act.activated_volume_m3(ef, v, threshold, 1.0)
        for_volume: float | Absent
        for_half: float | Absent
        if current[0] == 0:
            off = Absent("the first channel carries no current: the currents are scaled with it")
            for_volume = for_half = off
        else:
            per_A = ef / abs(current[0])
            for_half = act.current_for_fraction_A(per_A, v, threshold, 0.5)
            if self.target_volume_m3 <= total:
                for_volume = act.current_for_volume_A(per_A, v, threshold, self.target_volume_m3)
            else:
                for_volume = Absent(
                    f"the stated target volume ({self.target_volume_m3 * 1e6:g} cm^3) exceeds the target "
                    f"layers' volume in the patch ({total * 1e6:.3g} cm^3)"
                )
        return ActivationMetrics(
            muscle_fibre_field_peak_V_per_m=float(ef.max()),
            activation_threshold_field_V_per_m=threshold,
            muscle_activated_fraction=volume / total if total > 0 else 0.0,
            muscle_activated_volume_cm3=volume * 1e6,
            target_volume_cm3=self.target_volume_m3 * 1e6,
            current_for_target_volume_A=for_volume,
            current_for_50pct_activation_A=for_half,
        )

    def method_record(self) -> dict[str, Any]:
        """How the response was computed (frequencies, harmonics, error estimate, instants)."""
        w = self.waveform
        T = w.period_s if w.shape != "dc" else 1.0
        t = self.times_s
        return {
            "sample_frequencies_Hz": self.sample_frequencies_Hz.tolist(),
            "n_harmonics": self.n_harmonics,
            "truncation_frequency_Hz": self.n_harmonics / T if w.shape != "dc" else 0.0,
            "time_step_s": float(t[1] - t[0]) if len(t) > 1 else 0.0,
            "interpolation_error_estimate": self.interpolation_error,
            **self.method,
            "pulse_instants_s": self.instants_s.tolist(),
            "channel_timing": self.layout.timing,
            "activation_model": {
                "model": self.strength_duration.model,
                "rheobase_field_V_per_m": self.strength_duration.rheobase_field_V_per_m,
                "chronaxie_s": self.strength_duration.chronaxie_s,
                "note": "field thresholds are estimates (factor 2); see emsim.solvers.physiology.activation",
            },
        }
