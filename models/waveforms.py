"""Stimulation waveforms: pulse shapes, bursts, on/off cycles and ramps, with exact figures.

All values are SI inside (s, Hz, A, C). Every figure is given for a peak amplitude ``peak_A``
chosen by the caller: currents and charges scale linearly with it, mean squares quadratically.

A waveform is the product of two parts:

* the *pulse train* ``i(t)``, periodic with :attr:`Waveform.period_s`, which :meth:`sample`
  returns and :meth:`spectrum` decomposes; pulses start at ``t = 0`` with their first phase,
  which is positive, and every phase is a rectangle (:meth:`Waveform.phases`) smoothed by the
  output stage's rise time ``rise_time_s`` (below);
* the *envelope* ``e(t)`` in 0..1 of the on/off cycle, periodic with ``on_s + off_s``: a linear
  ramp up over ``ramp_up_s``, a plateau, a linear ramp down over ``ramp_down_s`` (the ramps are
  inside the on time), then ``off_s`` at zero. Without on/off times ``e(t) = 1``.

Shapes:

* ``"dc"``: constant current.
* ``"biphasic_symmetric"``: a positive phase of width PW, an interphase gap, a negative phase
  of width PW; ``I_rms = I_peak sqrt(2 PW f)`` (IEC 60601-2-10 usage).
* ``"biphasic_asymmetric"``: charge-balanced; the second phase has amplitude ``I_peak / r`` and
  width ``r PW`` for an asymmetry ratio ``r`` (4 for a 1:4 pulse).
* ``"monophasic"``: positive phases only. Allowed, but it carries a net d.c. component
  (:attr:`Waveform.net_dc`) that IEC 60601-2-10 requires to be declared.
* ``"microcurrent"``: monophasic rectangular pulses at ``frequency_Hz`` whose polarity reverses
  every half ``polarity_period_s`` (slowly: about 1 Hz, as market microcurrent devices do). It is balanced over the
  polarity cycle only, so each half cycle carries a large one-way charge
  (:meth:`Waveform.unidirectional_charge_C`).

Rise time: each edge is a linear ramp of ``rise_time_s`` (case file ``rise_time_us``; 0, the
ideal step, for a waveform built in Python; the built-in cases and ``[device]`` state it): the
rectangular pulse convolved with a unit box of width t_r. Phase charges are unchanged, each
Fourier coefficient is the rectangle's times ``sinc(f t_r) exp(-j pi f t_r)``, and a phase's mean
square falls to ``a^2 (w - t_r/3)`` (ramps apart; exact in general). It bounds the onset spike
at the pad rim that a capacitive contact makes from an ideal step.

Bursts (not for dc or microcurrent): the pulses at ``frequency_Hz`` are delivered in bursts of
length ``burst_on_s`` repeating at ``burst_frequency_Hz``; a burst holds the pulses that start at
``m / frequency_Hz`` and end within ``burst_on_s``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, cast  # cast: a shape's optional fields are validated set

import numpy as np

from ..errors import InputError
from .waveform_checks import (
    BIPHASIC,
    CASE_KEYS,
    CASE_UNITS,
    SHAPES,
    SI_UNITS,
    Naming,
    pulses_per_burst,
    real,
    validate,
)

if TYPE_CHECKING:
    import numpy.typing as npt

__all__ = ["CASE_KEYS", "SHAPES", "Waveform"]

# Largest number of (harmonic, pulse) pairs evaluated at once by the spectrum.
_SPECTRUM_CHUNK = 1_000_000
# Largest number of polarity half cycles integrated at once by the session charge.
_SESSION_CHUNK = 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class Waveform:
    """A stimulation waveform: pulse shape, optional bursts, optional on/off cycle with ramps.

    Fields that do not apply to a shape keep their defaults (``None``, or 0 for the interphase
    gap and 1 for the asymmetry ratio); setting them is an error, so that a case cannot carry a
    number that silently does nothing.

    Attributes:
        shape: One of :data:`SHAPES`.
        frequency_Hz: Pulse repetition frequency in Hz, > 0 (not for dc).
        pulse_width_s: Width of the (first) phase in s, > 0 (not for dc).
        interphase_gap_s: Gap between the two phases of a biphasic pulse in s, >= 0.
        asymmetry_ratio: ``r`` of a biphasic_asymmetric pulse, >= 1: the second phase has
            amplitude ``1/r`` of the first and ``r`` times its width.
        burst_frequency_Hz: Burst repetition frequency in Hz, below ``frequency_Hz``.
        burst_on_s: Length of a burst in s, at most one burst period and at least one pulse.
        on_s: On time of the on/off cycle in s, > 0 (with ``off_s``).
        off_s: Off time of the on/off cycle in s, >= 0 (with ``on_s``).
        ramp_up_s: Linear ramp up at the start of the on time in s, >= 0.
        ramp_down_s: Linear ramp down at the end of the on time in s, >= 0;
            ``ramp_up_s + ramp_down_s <= on_s``.
        polarity_period_s: Microcurrent only: full period of the polarity reversal in s; it must
            hold an even number of pulse periods so that both half cycles carry equal charge.
        rise_time_s: Output rise (and fall) time of every pulse edge in s, >= 0 (0: ideal step),
            at most the shortest phase; 0 for dc. See the module doc.

    """

    shape: str
    frequency_Hz: float | None = None
    pulse_width_s: float | None = None
    interphase_gap_s: float = 0.0
    asymmetry_ratio: float = 1.0
    burst_frequency_Hz: float | None = None
    burst_on_s: float | None = None
    on_s: float | None = None
    off_s: float | None = None
    ramp_up_s: float = 0.0
    ramp_down_s: float = 0.0
    polarity_period_s: float | None = None
    rise_time_s: float = 0.0

    def __post_init__(self) -> None:
        """Validate all fields together; the first bad one raises an InputError."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        validate(values, Naming(prefix="", units=SI_UNITS, raw=values))

    @classmethod
    def from_case(cls, table: Mapping[str, Any]) -> Waveform:
        """Build a waveform from a case file's ``[waveform]`` table.

        Keys (units in the names): ``shape``, ``pulse_width_us``, ``frequency_Hz``,
        ``interphase_gap_us``, ``asymmetry_ratio``, ``burst_frequency_Hz``, ``burst_on_ms``,
        ``on_s``, ``off_s``, ``ramp_up_s``, ``ramp_down_s``, ``polarity_period_s``,
        ``rise_time_us``.

        Args:
            table: The parsed TOML table.

        Returns:
            The waveform, in SI units.

        Raises:
            InputError: an unknown key, a missing shape or a bad value; the field is named as
                in the case file, e.g. ``waveform.pulse_width_us``, with the value as written.
        """
        if not isinstance(table, Mapping):
            raise InputError("waveform", table, "must be a table of waveform keys")
        for key in table:
            if key not in CASE_KEYS:
                raise InputError(
                    f"waveform.{key}", table[key], f"unknown key; allowed: {', '.join(CASE_KEYS)}"
                )
        if "shape" not in table:
            raise InputError("waveform.shape", None, f"is required; one of {', '.join(SHAPES)}")
        values: dict[str, Any] = {f.name: f.default for f in fields(cls)}
        raw: dict[str, Any] = dict(values)
        for key, value in table.items():
            field, factor_to_si, _ = CASE_KEYS[key]
            raw[field] = value
            if key == "shape":
                values[field] = value
            else:
                values[field] = real(f"waveform.{key}", value) * factor_to_si
        # Check with the case file's names and units first, so errors speak the user's language.
        validate(values, Naming(prefix="waveform.", units=CASE_UNITS, raw=raw))
        return cls(**values)

    def to_table(self) -> dict[str, Any]:
        """The case file's ``[waveform]`` table: keys of the fields that are set, file units."""
        out: dict[str, Any] = {}
        for key, (name, to_si, _) in CASE_KEYS.items():
            value = getattr(self, name)
            default = type(self).__dataclass_fields__[name].default
            if value is None or (key != "shape" and value == default):
                continue
            out[key] = value if key == "shape" else float(f"{value / to_si:.15g}")
        return out

    # ---- timing ---------------------------------------------------------------------------

    @property
    def pulse_period_s(self) -> float:
        """Time from one pulse start to the next, ``1 / frequency_Hz`` in s (inf for dc)."""
        return math.inf if self.frequency_Hz is None else 1.0 / self.frequency_Hz

    @property
    def period_s(self) -> float:
        """Period of the pulse train in s, envelope excluded.

        ``1 / frequency_Hz`` for plain pulses, ``1 / burst_frequency_Hz`` with bursts,
        ``polarity_period_s`` for microcurrent, inf for dc. :meth:`sample` repeats with it and
        :meth:`spectrum` has its lines at its harmonics.
        """
        if self.shape == "dc":
            return math.inf
        if self.shape == "microcurrent":
            return float(cast(float, self.polarity_period_s))
        if self.burst_frequency_Hz is not None:
            return 1.0 / self.burst_frequency_Hz
        return self.pulse_period_s

    @property
    def pulses_per_burst(self) -> int | None:
        """Number of whole pulses in one burst (None without bursts)."""
        if self.burst_on_s is None:
            return None
        return pulses_per_burst(self.burst_on_s, self._pulse_duration_s, self.pulse_period_s)

    @property
    def pulse_rate_Hz(self) -> float:
        """Mean number of pulses per second while on, ``frequency_Hz`` or ``n f_burst``."""
        if self.shape == "dc":
            return 0.0
        if self.burst_frequency_Hz is not None:
            return cast(int, self.pulses_per_burst) * self.burst_frequency_Hz
        return float(cast(float, self.frequency_Hz))

    @property
    def duty_factor(self) -> float:
        """Fraction of the time the pulse train is non-zero, envelope excluded.

        ``2 PW f`` for a symmetric biphasic pulse, ``(1 + r) PW f`` asymmetric, ``PW f``
        monophasic or microcurrent (``f`` the mean pulse rate with bursts), 1 for dc. Interphase
        gaps are not counted.
        """
        if self.shape == "dc":
            return 1.0
        return sum(end - start for start, end, _ in self.phases()) * self.pulse_rate_Hz

    @property
    def net_dc(self) -> bool:
        """True when the pulse train is not charge balanced over its period (dc, monophasic).

        Microcurrent is balanced over its polarity period and gives False; combined with an
        on/off cycle it can still leave net charge over a session: check
        :meth:`net_charge_per_session_C`.
        """
        return self.shape in ("dc", "monophasic")

    # ---- envelope -------------------------------------------------------------------------

    @property
    def cycle_s(self) -> float | None:
        """Length of the on/off cycle ``on_s + off_s`` in s (None when always on)."""
        return None if self.on_s is None else self.on_s + cast(float, self.off_s)

    @property
    def mean_envelope(self) -> float:
        """Time average of the envelope over its cycle.

        ``<e> = (on - ramp_up/2 - ramp_down/2) / (on + off)``; 1 when always on.
        """
        if self.on_s is None:
            return 1.0
        return (self.on_s - 0.5 * (self.ramp_up_s + self.ramp_down_s)) / cast(float, self.cycle_s)

    @property
    def mean_square_envelope(self) -> float:
        """Time average of the squared envelope over its cycle, exact for linear ramps.

        ``<e^2> = (on - 2 ramp_up/3 - 2 ramp_down/3) / (on + off)``, since a linear ramp of
        length R contributes ``integral_0^R (t/R)^2 dt = R/3``; 1 when always on.
        """
        if self.on_s is None:
            return 1.0
        return (self.on_s - 2.0 / 3.0 * (self.ramp_up_s + self.ramp_down_s)) / cast(float, self.cycle_s)

    def envelope(self, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """On/off envelope in 0..1 at times ``t_s`` (cycle starting with the ramp up at t = 0).

        Args:
            t_s: Times in s, scalar or array.

        Returns:
            ``e(t)``, same shape as ``t_s``: ``t/ramp_up`` on the ramp up, 1 on the plateau,
            ``(on - t)/ramp_down`` on the ramp down, 0 in the off time (times within a cycle).
        """
        t = np.asarray(t_s, dtype=np.float64)
        if self.on_s is None:
            return np.ones_like(t)[()]
        tau = np.mod(t, cast(float, self.cycle_s))
        e = np.where(tau < self.on_s, 1.0, 0.0)
        if self.ramp_up_s > 0.0:
            e = np.where(tau < self.ramp_up_s, tau / self.ramp_up_s, e)
        if self.ramp_down_s > 0.0:
            down = (tau >= self.on_s - self.ramp_down_s) & (tau < self.on_s)
            e = np.where(down, (self.on_s - tau) / self.ramp_down_s, e)
        return e[()]

    # ---- currents -------------------------------------------------------------------------

    def sample(self, peak_A: float, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Instantaneous current of the pulse train at times ``t_s``, envelope excluded.

        Phases are half-open intervals ``[start, end)``; the train repeats with
        :attr:`period_s`. Multiply by :meth:`envelope` for the delivered current.

        Args:
            peak_A: Peak current of the first phase in A.
            t_s: Times in s, scalar or array.

        Returns:
            The current in A, same shape as ``t_s``.
        """
        t = np.asarray(t_s, dtype=np.float64)
        if self.shape == "dc":
            return (peak_A * np.ones_like(t))[()]
        pulse_period_s = self.pulse_period_s
        tau = np.mod(t, self.period_s)
        index = np.floor(tau / pulse_period_s)
        tau = tau - index * pulse_period_s
        unit = self._pulse_unit(tau)
        if self.shape == "microcurrent":
            half = round(cast(float, self.polarity_period_s) * cast(float, self.frequency_Hz) / 2.0)
            unit = np.where(index < half, unit, -unit)
        elif self.burst_on_s is not None:
            unit = np.where(index < self.pulses_per_burst, unit, 0.0)
        return (peak_A * unit)[()]

    def rms_pulse_train(self, peak_A: float) -> float:
        """R.m.s. current while on (plateau), without the on/off envelope, in A.

        ``I_rms^2 = I_peak^2 sum_phases (a_p^2 w_p) x pulse rate`` (``w_p - t_r/3`` with a rise time):
        ``I_peak sqrt(2 PW f)`` for a symmetric biphasic pulse, ``I_peak sqrt((1 + 1/r) PW f)`` asymmetric,
        ``I_peak sqrt(PW f)`` monophasic or microcurrent, ``|I_peak|`` dc; with bursts ``f`` is
        the mean pulse rate ``n f_burst``. This is the figure IEC 60601-2-10 limits.

        Args:
            peak_A: Peak current in A.

        Returns:
            The r.m.s. current in A.
        """
        return abs(peak_A) * math.sqrt(self._mean_square_unit())

    def rms(self, peak_A: float) -> float:
        """R.m.s. current over the whole on/off cycle, ramps included, in A.

        ``I_rms = I_rms,train sqrt(<e^2>)`` with :attr:`mean_square_envelope` integrated
        exactly. The envelope is taken as continuous, i.e. slow against the pulse period; a
        device that steps its amplitude once per pulse differs by a fraction of the order of
        one pulse period over the ramp time.

        Args:
            peak_A: Peak current in A (the plateau amplitude).

        Returns:
            The r.m.s. current in A.

        """
        return self.rms_pulse_train(peak_A) * math.sqrt(self.mean_square_envelope)

    def charge_per_phase_C(self, peak_A: float) -> float:
        """Charge of the first phase, ``I_peak PW`` in C (the second phase carries as much).

        For dc the phase is the on time: ``I_peak (on - ramp_up/2 - ramp_down/2)``, infinite
        when always on.

        Args:
            peak_A: Peak current in A.

        Returns:
            The charge in C, with the sign of ``peak_A``.

        """
        if self.shape == "dc":
            return self._charge_per_on_time_C(peak_A)
        return peak_A * cast(float, self.pulse_width_s)

    def net_charge_per_period_C(self, peak_A: float) -> float:
        """Net charge over one :attr:`period_s` of the pulse train, envelope excluded, in C.

        Exactly 0 for the biphasic shapes and for microcurrent (over its polarity period);
        ``I_peak PW`` per pulse for monophasic (times the pulses per burst with bursts);
        infinite for dc.

        Args:
            peak_A: Peak current in A.

        Returns:
            The net charge in C, with the sign of ``peak_A``.

        """
        if self.shape in (*BIPHASIC, "microcurrent") or peak_A == 0.0:
            return 0.0
        if self.shape == "dc":
            return math.copysign(math.inf, peak_A)
        return peak_A * cast(float, self.pulse_width_s) * (self.pulses_per_burst or 1)

    def net_charge_per_session_C(self, peak_A: float, session_s: float) -> float:
        """Net charge delivered over a session of ``session_s`` seconds from t = 0, in C.

        ``Q = integral_0^S e(t) m(t) dt``, where ``m(t)`` is the pulse train's mean current
        over a pulse period: 0 for biphasic pulses (balanced pulse by pulse), ``I_peak PW``
        times the pulse rate for monophasic, ``+-I_peak PW f`` by polarity half cycle for
        microcurrent, ``I_peak`` for dc. The envelope and the polarity reversal are integrated
        exactly, partial cycles at the end included. Smoothing the pulses to their mean is
        exact over whole pulse (burst) periods at constant envelope; otherwise how the device
        gates its pulse clock decides whether an on time holds one pulse more or fewer, up to
        one pulse's (burst's) charge per on/off cycle, about 1/(pulses per on time) of it.

        Args:
            peak_A: Peak current in A.
            session_s: Session length in s, >= 0.

        Returns:
            The net charge in C, with the sign of ``peak_A``.

        Raises:
            InputError: ``session_s`` is negative or not finite.

        """
        session_s = real("session_s", session_s)
        if session_s < 0.0:
            raise InputError("session_s", session_s, "must be >= 0 s")
        if self.shape in BIPHASIC:
            return 0.0
        if self.shape == "dc":
            return cast(float, peak_A * self._envelope_integral(session_s))  # a NumPy float scalar
        mean_A = peak_A * cast(float, self.pulse_width_s) * self.pulse_rate_Hz
        if self.shape == "monophasic":
            return cast(float, mean_A * self._envelope_integral(session_s))
        # Microcurrent: sum the envelope integral over polarity half cycles with alternate signs.
        half_s = 0.5 * cast(float, self.polarity_period_s)
        n_halves = math.ceil(session_s / half_s)
        total = 0.0
        for first in range(0, n_halves, _SESSION_CHUNK):
            k = np.arange(first, min(first + _SESSION_CHUNK, n_halves))
            starts = k * half_s
            ends = np.minimum(starts + half_s, session_s)
            signs = np.where(k % 2 == 0, 1.0, -1.0)
            total += float(
                np.sum(signs * (self._envelope_integral(ends) - self._envelope_integral(starts)))
            )
        return mean_A * total

    def unidirectional_charge_C(self, peak_A: float) -> float:
        """Largest charge delivered in one direction before the current reverses, in C.

        ``I_peak PW`` for the biphasic shapes (one phase); for microcurrent an upper bound,
        ``I_peak PW n`` with ``n`` pulses per polarity half cycle (envelope taken as 1); for
        dc and monophasic the net charge of one on time, ramps included, infinite when always
        on. Slowly alternating microcurrent carries a large charge per half cycle.

        Args:
            peak_A: Peak current in A.

        Returns:
            The charge in C, with the sign of ``peak_A``.

        """
        if self.shape in BIPHASIC:
            return peak_A * cast(float, self.pulse_width_s)
        if self.shape == "microcurrent":
            half = round(cast(float, self.polarity_period_s) * cast(float, self.frequency_Hz) / 2.0)
            return peak_A * cast(float, self.pulse_width_s) * half
        mean_A = peak_A if self.shape == "dc" else peak_A * cast(float, self.pulse_width_s) * self.pulse_rate_Hz
        return self._charge_per_on_time_C(mean_A)

    def spectrum(
        self, peak_A: float, n_harmonics: int
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.complex128]]:
        """Complex Fourier series of the pulse train over one :attr:`period_s`, analytically.

        Two-sided convention: ``i(t) = sum_{k=-N..N} c_k exp(j 2 pi f_k t)`` with
        ``f_k = k / T`` and ``T = period_s``, so ``c_{-k} = conj(c_k)``, ``c_0`` is the mean
        current and ``sum |c_k|^2 -> I_rms,train^2`` (Parseval). Each rectangular phase of
        amplitude ``a`` from ``t1`` to ``t2`` contributes
        ``a (t2 - t1)/T sinc(k (t2 - t1)/T) exp(-j pi k (t1 + t2)/T)``
        (``sinc(x) = sin(pi x)/(pi x)``); a pulse starting at ``t_m`` with sign ``s_m`` adds its
        pulse's coefficients times ``s_m exp(-j 2 pi k t_m / T)``. The envelope is excluded.

        Args:
            peak_A: Peak current in A.
            n_harmonics: Highest harmonic N, >= 0.

        Returns:
            ``(frequencies_Hz, c_A)``, each of length ``2N + 1`` ordered from ``k = -N`` to
            ``N`` (index N is d.c.). For dc, a single line: ``([0.0], [I_peak])``.

        Raises:
            InputError: ``n_harmonics`` is not an integer >= 0.

        """
        if isinstance(n_harmonics, bool) or not isinstance(n_harmonics, (int, np.integer)):
            raise InputError("n_harmonics", n_harmonics, "must be an integer >= 0")
        if n_harmonics < 0:
            raise InputError("n_harmonics", n_harmonics, "must be an integer >= 0")
        if self.shape == "dc":
            return np.zeros(1), np.full(1, complex(peak_A))
        period_s = self.period_s
        k = np.arange(-n_harmonics, n_harmonics + 1, dtype=np.float64)
        pulse = np.zeros(k.shape, dtype=np.complex128)
        for start, end, amplitude in self.phases():
            width = (end - start) / period_s
            pulse += (
                amplitude
                * width
                * np.sinc(k * width)
                * np.exp(-1j * np.pi * k * (start + end) / period_s)
            )
        if self.rise_time_s > 0.0:  # the rectangle convolved with a unit box on [0, t_r]
            r = self.rise_time_s / period_s
            pulse *= np.sinc(k * r) * np.exp(-1j * np.pi * k * r)
        starts_s, signs = self._pulse_starts()
        array_factor = np.zeros(k.shape, dtype=np.complex128)
        chunk = max(1, _SPECTRUM_CHUNK // k.size)
        for first in range(0, starts_s.size, chunk):
            t_m = starts_s[first : first + chunk]
            phase = np.exp(-2j * np.pi * np.outer(k, t_m) / period_s)
            array_factor += phase @ signs[first : first + chunk]
        return k / period_s, peak_A * pulse * array_factor

    # ---- private --------------------------------------------------------------------------

    def pulse_square_integral_s(self) -> float:
        """Integral of the unit pulse's square over one pulse [s] (``sum a^2 w`` for ideal steps).

        With a rise time the pulse is linear between the phase edges and the edges + t_r; a piece
        from f0 to f1 over h integrates exactly to ``h (f0^2 + f0 f1 + f1^2) / 3``.
        """
        if self.shape == "dc":
            return math.inf
        tr = self.rise_time_s
        if tr == 0.0:
            return sum(a * a * (end - start) for start, end, a in self.phases())
        knots = np.unique([p for s, e, _ in self.phases() for p in (s, s + tr, e, e + tr)])
        f = self._pulse_unit(knots)
        f0, f1, h = f[:-1], f[1:], np.diff(knots)
        return float(np.sum(h * (f0 * f0 + f0 * f1 + f1 * f1)) / 3.0)

    def _pulse_unit(self, tau: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """The unit pulse at local times ``tau``: the rectangles' mean over [tau - t_r, tau] (or the rectangles)."""
        tau = np.asarray(tau, dtype=np.float64)
        unit = np.zeros_like(tau)
        tr = self.rise_time_s
        for start, end, amplitude in self.phases():
            if tr > 0.0:
                overlap = np.minimum(tau, end) - np.maximum(tau - tr, start)
                unit = unit + amplitude * np.clip(overlap, 0.0, None) / tr
            else:
                unit = np.where((tau >= start) & (tau < end), amplitude, unit)
        return unit

    def phases(self) -> list[tuple[float, float, float]]:
        """Nominal rectangular phases of one pulse for unit peak: ``(start_s, end_s, amplitude)``."""
        pw = cast(float, self.pulse_width_s)
        if self.shape == "biphasic_symmetric":
            second = pw + self.interphase_gap_s
            return [(0.0, pw, 1.0), (second, second + pw, -1.0)]
        if self.shape == "biphasic_asymmetric":
            r = self.asymmetry_ratio
            second = pw + self.interphase_gap_s
            return [(0.0, pw, 1.0), (second, second + r * pw, -1.0 / r)]
        return [(0.0, pw, 1.0)]

    @property
    def _pulse_duration_s(self) -> float:
        """Time from the start of a pulse to the end of its last phase."""
        return self.phases()[-1][1]

    def _pulse_starts(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Start times in s and signs of the pulses in one :attr:`period_s`."""
        if self.shape == "microcurrent":
            half = round(cast(float, self.polarity_period_s) * cast(float, self.frequency_Hz) / 2.0)
            m = np.arange(2 * half, dtype=np.float64)  # exact integers: the products are unchanged
            return m * self.pulse_period_s, np.where(m < half, 1.0, -1.0)
        count = self.pulses_per_burst or 1
        return np.arange(count, dtype=np.float64) * self.pulse_period_s, np.ones(count)

    def _mean_square_unit(self) -> float:
        """Mean square of the unit-peak pulse train over its period."""
        if self.shape == "dc":
            return 1.0
        return self.pulse_square_integral_s() * self.pulse_rate_Hz

    def _charge_per_on_time_C(self, mean_A: float) -> float:
        """Charge of a mean current over one on time, ramps included; infinite if always on."""
        if mean_A == 0.0:
            return 0.0
        if self.on_s is None:
            return math.copysign(math.inf, mean_A)
        return mean_A * self.mean_envelope * cast(float, self.cycle_s)

    def _envelope_integral(self, t_s: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """``E(t) = integral_0^t e(u) du`` in s, exact (piecewise quadratic within a cycle)."""
        t = np.asarray(t_s, dtype=np.float64)
        if self.on_s is None:
            return t
        on, up, down, cycle = self.on_s, self.ramp_up_s, self.ramp_down_s, cast(float, self.cycle_s)
        cycles = np.floor(t / cycle)
        tau = t - cycles * cycle
        per_cycle = on - 0.5 * (up + down)
        plateau_end = on - down
        partial = np.where(tau < on, np.minimum(tau, plateau_end) - 0.5 * up, per_cycle)
        if up > 0.0:
            partial = np.where(tau < up, 0.5 * tau * tau / up, partial)
        if down > 0.0:
            late = on - np.clip(tau, plateau_end, on)  # time left to the end of the on time
            ramp_part = 0.5 * (down - late * late / down)
            partial = np.where((tau >= plateau_end) & (tau < on), partial + ramp_part, partial)
        return (cycles * per_cycle + partial)[()]
