"""Validation of a waveform's fields: every rule stated once, errors named as the user wrote them.

:func:`validate` checks SI field values; :class:`Naming` decides whether an error names the
dataclass field (``pulse_width_s``) or the case-file key with its unit (``waveform.pulse_width_us``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from .dispersion import QUASI_STATIC_MAX_HZ

__all__ = [
    "BIPHASIC", "CASE_KEYS", "CASE_UNITS", "FIT_RTOL", "SHAPES", "SI_UNITS", "TRUNCATION_FACTOR", "Naming",
    "pulses_per_burst", "real", "validate",
]  # fmt: skip

SHAPES = ("dc", "biphasic_symmetric", "biphasic_asymmetric", "monophasic", "microcurrent")

BIPHASIC = ("biphasic_symmetric", "biphasic_asymmetric")

#: Keys of a case file's ``[waveform]`` table: field name, factor to SI, unit.
CASE_KEYS: Mapping[str, tuple[str, float, str]] = {
    "shape": ("shape", 1.0, ""),
    "pulse_width_us": ("pulse_width_s", 1e-6, "us"),
    "frequency_Hz": ("frequency_Hz", 1.0, "Hz"),
    "interphase_gap_us": ("interphase_gap_s", 1e-6, "us"),
    "asymmetry_ratio": ("asymmetry_ratio", 1.0, ""),
    "burst_frequency_Hz": ("burst_frequency_Hz", 1.0, "Hz"),
    "burst_on_ms": ("burst_on_s", 1e-3, "ms"),
    "on_s": ("on_s", 1.0, "s"),
    "off_s": ("off_s", 1.0, "s"),
    "ramp_up_s": ("ramp_up_s", 1.0, "s"),
    "ramp_down_s": ("ramp_down_s", 1.0, "s"),
    "polarity_period_s": ("polarity_period_s", 1.0, "s"),
    "rise_time_us": ("rise_time_s", 1e-6, "us"),
}

#: The synthesis's truncation frequency times the shortest phase: f_N = 500 / PW. A pulse's
#: spectrum is sampled and synthesised up to f_N (:mod:`emsim.solvers.spectral.synthesis`), so
#: f_N is the band a waveform needs the models to hold over.
TRUNCATION_FACTOR = 500.0

# Relative slack on "fits in" comparisons, so that e.g. 2 x 5 ms fits in 1/(100 Hz) exactly.
FIT_RTOL = 1e-9
# Largest number of (harmonic, pulse) pairs evaluated at once by the spectrum.
_SPECTRUM_CHUNK = 1_000_000
# Largest number of polarity half cycles integrated at once by the session charge.
_SESSION_CHUNK = 1_000_000


@dataclass(frozen=True, slots=True)
class Naming:
    """How validation errors name fields: as dataclass fields (SI) or as case-file keys."""

    prefix: str
    units: Mapping[str, tuple[str, float, str]]  # field -> (shown name, factor from SI, unit)
    raw: Mapping[str, Any]  # field -> the value as the user gave it

    def error(self, field: str, allowed: str) -> InputError:
        """The error for ``field``, named and valued as the user gave it."""
        return InputError(self.prefix + self.units[field][0], self.raw[field], allowed)

    def amount(self, field: str, value_si: float) -> str:
        """An SI amount of ``field`` in the unit the user uses, e.g. ``"250 us"``."""
        _, factor_from_si, unit = self.units[field]
        return f"{value_si * factor_from_si:.6g} {unit}".rstrip()


SI_UNITS: dict[str, tuple[str, float, str]] = {
    "shape": ("shape", 1.0, ""),
    "frequency_Hz": ("frequency_Hz", 1.0, "Hz"),
    "pulse_width_s": ("pulse_width_s", 1.0, "s"),
    "interphase_gap_s": ("interphase_gap_s", 1.0, "s"),
    "asymmetry_ratio": ("asymmetry_ratio", 1.0, ""),
    "burst_frequency_Hz": ("burst_frequency_Hz", 1.0, "Hz"),
    "burst_on_s": ("burst_on_s", 1.0, "s"),
    "on_s": ("on_s", 1.0, "s"),
    "off_s": ("off_s", 1.0, "s"),
    "ramp_up_s": ("ramp_up_s", 1.0, "s"),
    "ramp_down_s": ("ramp_down_s", 1.0, "s"),
    "polarity_period_s": ("polarity_period_s", 1.0, "s"),
    "rise_time_s": ("rise_time_s", 1.0, "s"),
}
CASE_UNITS: dict[str, tuple[str, float, str]] = {
    field: (key, 1.0 / to_si, unit) for key, (field, to_si, unit) in CASE_KEYS.items()
}


def real(name: str, value: object) -> float:
    """Return ``value`` as a float, or raise if it is not a finite real number."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise InputError(name, value, "must be a number")
    if not math.isfinite(value):
        raise InputError(name, value, "must be finite")
    return float(value)


def pulses_per_burst(burst_on_s: float, pulse_duration_s: float, pulse_period_s: float) -> int:
    """Whole pulses, starting every pulse period, whose last phase ends within the burst."""
    return math.floor((burst_on_s - pulse_duration_s) / pulse_period_s + FIT_RTOL) + 1


class _Checker:
    """The rules of a waveform's fields, in SI; errors named by ``names``."""

    def __init__(self, v: Mapping[str, Any], names: Naming) -> None:
        self.v, self.names = v, names

    def require(self, field: str, present: bool, why: str) -> None:
        """The field must be set (``present``) or must not be."""
        if present and self.v[field] is None:
            raise self.names.error(field, f"is required {why}")
        if not present and self.v[field] is not None:
            raise self.names.error(field, f"must not be set {why}")

    def positive(self, field: str) -> None:
        """The field must be > 0."""
        if self.v[field] <= 0.0:
            raise self.names.error(field, f"must be > 0 {self.names.units[field][2]}".rstrip())

    def pulse(self, shape: str) -> float:
        """Frequency, pulse width, gap and asymmetry; returns the duration of one pulse [s]."""
        pulsed = shape != "dc"
        self.require("frequency_Hz", pulsed, f"for shape {shape}")
        self.require("pulse_width_s", pulsed, f"for shape {shape}")
        if not pulsed:
            for field in ("burst_frequency_Hz", "burst_on_s", "polarity_period_s"):
                self.require(field, False, "for shape dc")
        else:
            self.positive("frequency_Hz")
            self.positive("pulse_width_s")
        pulse_period_s = 1.0 / self.v["frequency_Hz"] if pulsed else math.inf
        pw = self.v["pulse_width_s"]
        duration_s = 0.0  # from the start of a pulse to the end of its last phase

        if shape not in BIPHASIC and self.v["interphase_gap_s"] != 0.0:
            raise self.names.error("interphase_gap_s", "must be 0: only biphasic pulses have a gap")
        if shape != "biphasic_asymmetric" and self.v["asymmetry_ratio"] != 1.0:
            raise self.names.error("asymmetry_ratio", "must be 1: only biphasic_asymmetric uses it")
        if shape in BIPHASIC:
            gap = self.v["interphase_gap_s"]
            if gap < 0.0 or gap >= pulse_period_s * (1.0 - FIT_RTOL):
                raise self.names.error(
                    "interphase_gap_s",
                    "must be >= 0 and < 1/frequency_Hz = "
                    + self.names.amount("interphase_gap_s", pulse_period_s),
                )
            ratio = self.v["asymmetry_ratio"]
            if ratio < 1.0:
                raise self.names.error("asymmetry_ratio", "must be >= 1 (second phase r times longer)")
            widths = 2.0 if shape == "biphasic_symmetric" else 1.0 + ratio
            max_pw = (pulse_period_s - gap) / widths
            if pw > max_pw * (1.0 + FIT_RTOL):
                raise self.names.error(
                    "pulse_width_s",
                    f"must be <= {self.names.amount('pulse_width_s', max_pw)} so that both phases "
                    f"and the interphase gap fit in one pulse period "
                    f"({self.names.amount('pulse_width_s', pulse_period_s)})",
                )
            duration_s = pw * widths + gap
        elif pulsed:
            if pw > pulse_period_s * (1.0 + FIT_RTOL):
                raise self.names.error(
                    "pulse_width_s",
                    f"must be <= 1/frequency_Hz = {self.names.amount('pulse_width_s', pulse_period_s)}",
                )
            duration_s = pw
        return duration_s

    def band(self, shape: str) -> None:
        """The spectrum the synthesis needs stays within the band the models hold over."""
        if shape == "dc":
            return
        pw = self.v["pulse_width_s"]
        if TRUNCATION_FACTOR / pw > QUASI_STATIC_MAX_HZ * (1.0 + FIT_RTOL):
            shortest = TRUNCATION_FACTOR / QUASI_STATIC_MAX_HZ
            raise self.names.error(
                "pulse_width_s",
                f"must be >= {self.names.amount('pulse_width_s', shortest)}: the pulse's spectrum is needed up to "
                f"{TRUNCATION_FACTOR:g} / pulse width = {TRUNCATION_FACTOR / pw:.3g} Hz, beyond "
                f"{QUASI_STATIC_MAX_HZ:.3g} Hz, the band where the models hold (electro-quasi-static fields; "
                "see emsim.models.dispersion.QUASI_STATIC_MAX_HZ)",
            )

    def microcurrent(self, shape: str) -> None:
        """The polarity period of microcurrent."""
        pulse_period_s = 1.0 / self.v["frequency_Hz"] if shape != "dc" else math.inf
        self.require("polarity_period_s", shape == "microcurrent", f"for shape {shape}")
        if shape == "microcurrent":
            self.positive("polarity_period_s")
            pulses = self.v["polarity_period_s"] * self.v["frequency_Hz"]
            half = round(pulses / 2.0)
            if half < 1 or abs(pulses - 2 * half) > FIT_RTOL * pulses:
                raise self.names.error(
                    "polarity_period_s",
                    "must hold an even number (>= 2) of pulse periods of 1/frequency_Hz = "
                    f"{self.names.amount('polarity_period_s', pulse_period_s)}, so that both polarities "
                    "carry the same charge",
                )

    def bursts(self, shape: str, duration_s: float) -> None:
        """Burst frequency and length."""
        bursts = self.v["burst_frequency_Hz"] is not None or self.v["burst_on_s"] is not None
        if bursts:
            if shape in ("dc", "microcurrent"):
                field = "burst_frequency_Hz" if self.v["burst_frequency_Hz"] is not None else "burst_on_s"
                raise self.names.error(field, f"must not be set for shape {shape}")
            self.require("burst_frequency_Hz", True, "with burst_on")
            self.require("burst_on_s", True, "with burst_frequency_Hz")
            self.positive("burst_frequency_Hz")
            if self.v["burst_frequency_Hz"] >= self.v["frequency_Hz"]:
                raise self.names.error("burst_frequency_Hz", "must be below frequency_Hz")
            burst_period_s = 1.0 / self.v["burst_frequency_Hz"]
            burst_on_s = self.v["burst_on_s"]
            if burst_on_s < duration_s * (1.0 - FIT_RTOL):
                raise self.names.error(
                    "burst_on_s",
                    f"must be >= one pulse ({self.names.amount('burst_on_s', duration_s)})",
                )
            if burst_on_s > burst_period_s * (1.0 + FIT_RTOL):
                raise self.names.error(
                    "burst_on_s",
                    f"must be <= 1/burst_frequency_Hz = {self.names.amount('burst_on_s', burst_period_s)}",
                )

    def envelope(self) -> None:
        """On/off times and ramps."""
        if self.v["on_s"] is not None or self.v["off_s"] is not None:
            self.require("on_s", True, "with off_s")
            self.require("off_s", True, "with on_s")
            self.positive("on_s")
            if self.v["off_s"] < 0.0:
                raise self.names.error("off_s", "must be >= 0 s")
        for field in ("ramp_up_s", "ramp_down_s"):
            if self.v[field] < 0.0:
                raise self.names.error(field, "must be >= 0 s")
            if self.v[field] > 0.0 and self.v["on_s"] is None:
                raise self.names.error(field, "needs on_s and off_s: ramps lie inside the on time")
        if self.v["on_s"] is not None and self.v["ramp_up_s"] + self.v["ramp_down_s"] > self.v["on_s"] * (1 + FIT_RTOL):
            raise self.names.error(
                "ramp_down_s",
                f"ramp_up_s + ramp_down_s must be <= on_s = {self.names.amount('on_s', self.v['on_s'])}",
            )


    def rise_time(self, shape: str, duration_s: float) -> None:
        """The output rise time: >= 0, at most the shortest phase, the pulse's tail within its period."""
        tr = self.v["rise_time_s"]
        if shape == "dc":
            if tr != 0.0:
                raise self.names.error("rise_time_s", "must be 0 for shape dc (no pulse edges)")
            return
        if tr < 0.0:
            raise self.names.error("rise_time_s", "must be >= 0 us")
        pw = self.v["pulse_width_s"]
        shortest = pw if shape != "biphasic_asymmetric" else min(pw, self.v["asymmetry_ratio"] * pw)
        if tr > shortest * (1.0 + FIT_RTOL):
            raise self.names.error(
                "rise_time_s", f"must be <= the shortest phase, {self.names.amount('rise_time_s', shortest)}, "
                "so that every phase reaches its amplitude",
            )  # fmt: skip
        room = 1.0 / self.v["frequency_Hz"] - duration_s
        if tr > room * (1.0 + FIT_RTOL):
            raise self.names.error(
                "rise_time_s", f"must be <= {self.names.amount('rise_time_s', room)}: the last edge's ramp must "
                "end before the next pulse starts",
            )  # fmt: skip


def validate(v: Mapping[str, Any], names: Naming) -> None:
    """Check SI field values ``v`` of a waveform; raise the first problem, named by ``names``."""
    shape = v["shape"]
    if shape not in SHAPES:
        raise names.error("shape", f"must be one of {', '.join(SHAPES)}")
    for field in SI_UNITS:
        if field != "shape" and v[field] is not None:
            try:
                real(field, v[field])
            except InputError as exc:
                raise names.error(field, exc.allowed) from None
    check = _Checker(v, names)
    duration_s = check.pulse(shape)
    check.band(shape)
    check.microcurrent(shape)
    check.bursts(shape, duration_s)
    check.envelope()
    check.rise_time(shape, duration_s)
