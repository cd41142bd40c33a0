"""The safety rules a preset level must meet: one registry entry per rule, with its source.

A rule computes, for every anatomy case and every level at once (numpy, shape ``(anatomy,
level)``), the figure it limits from the per-unit-current figures of a solved head
(:class:`~emsim.device.figures.FigureSet`), and states its limit. The margin of a level is

    margin = 1 - safety_factor (value - base) / (limit - base)

(``base`` is 0 except for the skin temperature, whose safety factor applies to the rise above
the basal temperature); a level passes a rule when its margin is >= 0 in every anatomy case.
The binding rule of a level is the one with the smallest margin.

Kinds: ``"limit"`` rules decide pass/fail; ``"report"`` rules (efficacy, comfort, Shannon) are
shown and never fail a level. A rule that cannot be evaluated for a head says why
(:attr:`Rule.not_evaluated`) and is listed as "not evaluated" in every report: never a silent
pass. ``level_independent`` rules are decided by the waveform or the device, not the level: one
failing makes the preset fail the export.

Limits come from :data:`LIMITS` (shared/PHYSICS.md, with source and clause) and can be overridden
in a presets file's ``[limits]`` table by key.

To add a rule: extract its
per-unit figure in :mod:`emsim.device.figures` and append one :class:`Rule` to :data:`RULES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError

if TYPE_CHECKING:
    from .figures import FigureSet
    from .presets import Device, Preset

__all__ = ["LIMITS", "LIMIT_KEYS", "RULES", "Limit", "Rule", "RuleContext", "rule"]


@dataclass(frozen=True, slots=True)
class Limit:
    """A limit value with its unit and source.

    Attributes:
        value: the default limit (a presets file's ``[limits]`` may override it).
        unit: its unit.
        source: document and clause (or "policy" with the reason when no standard sets it).
    """

    value: float
    unit: str
    source: str


_IEC_2_10 = "IEC 60601-2-10 (nerve and muscle stimulators), output limits into 500 ohm (shared/PHYSICS.md; clause number unverified)"

#: Every limit, by the key a presets file's ``[limits]`` table uses.
LIMITS: Mapping[str, Limit] = {
    "rms_current_le_400Hz_mA": Limit(50.0, "mA", _IEC_2_10 + ": r.m.s. output up to 400 Hz"),
    "rms_current_le_1500Hz_mA": Limit(80.0, "mA", _IEC_2_10 + ": r.m.s. output 400-1500 Hz"),
    "rms_current_above_1500Hz_mA": Limit(100.0, "mA", _IEC_2_10 + ": r.m.s. output above 1500 Hz"),
    "energy_per_pulse_mJ": Limit(300.0, "mJ", _IEC_2_10 + ": energy per pulse"),
    "open_circuit_voltage_V": Limit(500.0, "V", _IEC_2_10 + ": peak open-circuit output voltage"),
    "rms_current_density_mA_per_cm2": Limit(
        2.0, "mA/cm^2", "IEC 60601-2-10: electrodes above 2 mA/cm^2 r.m.s. need the operator's special attention; "
        "applied to the simulated local peak at the pad rim (1 mm disc), not only the pad mean",
    ),
    "net_dc_uA": Limit(
        1.0, "uA", "policy: facial presets must be charge balanced (IEC 60601-2-10 requires the d.c. component "
        "declared; a net d.c. current electrolyses the skin under the pad). Raise [limits] net_dc_uA to allow a "
        "declared d.c. component",
    ),
    "average_power_density_W_per_cm2": Limit(
        0.25, "W/cm^2", "FDA guidance for powered muscle stimulators (1999): maximum average power density"
    ),
    "skin_temperature_C": Limit(
        41.0, "C", "IEC 60601-1 applied part not intended to supply heat: 41 C (43 C for >= 10 min quoted from "
        "memory, unverified: the lower value is used); the safety factor applies to the rise above basal",
    ),
    "cem43_min": Limit(
        1.0, "min", "policy (unverified): thermal dose CEM43 kept below 1 min, far below the doses reported for "
        "skin damage; CEM43 = sum dt R^(43 - T) (shared/PHYSICS.md)",
    ),
    "charge_per_phase_uC": Limit(
        math.inf, "uC", "no standard limit for transcutaneous stimulation (reported as in a 510(k) table); set "
        "[limits] charge_per_phase_uC to enforce one",
    ),
    "shannon_k": Limit(
        1.85, "-", "Shannon 1992: log10(D) = k - log10(Q), damage at k >= 1.85 for implanted neural tissue only "
        "(shared/PHYSICS.md): reported, never decides skin safety",
    ),
}
LIMIT_KEYS = tuple(LIMITS)


@dataclass(frozen=True, slots=True)
class RuleContext:
    """What a rule's limit may depend on: the device, the preset and the limit overrides."""

    device: Device
    preset: Preset
    limits: Mapping[str, float]

    def limit(self, key: str) -> float:
        """The limit ``key``: the file's override, else the default of :data:`LIMITS`."""
        return float(self.limits.get(key, LIMITS[key].value))


Values = Callable[["FigureSet", np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Rule:
    """One safety rule.

    Attributes:
        name: short id (``"rms_current_density"``), used in reports and JSON.
        title: what it checks, one line.
        unit: unit of its value and limit.
        limit_key: the key of its limit in :data:`LIMITS` (None: the limit comes from the device).
        kind: ``"limit"`` (decides pass/fail) or ``"report"`` (shown only).
        values: figures, currents [A] (levels) -> values, shape (anatomy, level).
        limit: context -> the limit value.
        base: figures -> the value at zero current, shape (anatomy, 1) (default 0).
        source: the source, when not that of ``limit_key``.
        uses_safety_factor: the safety factor applies (False for device constants).
        level_independent: decided by the waveform or the device: a failure fails the export.
        not_evaluated: figures -> a reason when the rule cannot be evaluated, else None.
        higher_is_better: report rules whose value should exceed the limit (efficacy).
        per_unit: for a value that is a power of the current, figures -> its coefficient
            (value = per_unit x I^power, per anatomy case): lets the fast path stack such rules.
        power: that power (1: currents, charges, voltages; 2: energies, powers).
    """

    name: str
    title: str
    unit: str
    limit_key: str | None
    kind: str
    values: Values
    limit: Callable[[RuleContext], float]
    base: Callable[[FigureSet], Any] | None = None
    source: str = ""
    uses_safety_factor: bool = True
    level_independent: bool = False
    not_evaluated: Callable[[FigureSet], str | None] | None = None
    higher_is_better: bool = False
    per_unit: Callable[[FigureSet], Any] | None = None
    power: int = 1

    def source_text(self) -> str:
        """The rule's source and clause."""
        return self.source or (LIMITS[self.limit_key].source if self.limit_key else "")


def rule(name: str) -> Rule:
    """The registered rule ``name``."""
    for r in RULES:
        if r.name == name:
            return r

    raise InputError("rule", name, f"one of {', '.join(r.name for r in RULES)}")


def _outer(per_unit: np.ndarray, current_A: np.ndarray, power: int = 1) -> np.ndarray:
    return np.multiply.outer(np.asarray(per_unit, float), np.asarray(current_A, float) ** power)


def _rms_band_limit(c: RuleContext) -> float:
    f = c.preset.frequency_Hz
    if f <= 400:
        return c.limit("rms_current_le_400Hz_mA")
    if f <= 1500:
        return c.limit("rms_current_le_1500Hz_mA")
    return c.limit("rms_current_above_1500Hz_mA")


def _skin_temperature(F: FigureSet, current_A: np.ndarray) -> np.ndarray:
    s = (np.asarray(current_A, float) / F.thermal_reference_A) ** 2
    # max over the lines T0 + s rise of each case's skin front (its upper envelope): exact
    # (ThermalResult.at); a loop over the few lines beats a reduction over a short last axis
    T0, rise = F.skin_T0_C, F.skin_rise_K
    t = T0[:, 0, None] + rise[:, 0, None] * s[None, :]
    for k in range(1, T0.shape[1]):
        np.maximum(t, T0[:, k, None] + rise[:, k, None] * s[None, :], out=t)
    return t


def _cem43(F: FigureSet, current_A: np.ndarray) -> np.ndarray:
    s = (np.asarray(current_A, float) / F.thermal_reference_A) ** 2
    # CEM43 increases with s (the Joule rise is >= 0 everywhere): the tabulated value at the grid
    # point at or above s is an upper bound (the grid steps s by 1 %).
    j = np.minimum(np.searchsorted(F.cem43_s_grid, s * (1 - 1e-12), side="left"), len(F.cem43_s_grid) - 1)
    out = F.cem43_min_grid[:, j]
    beyond = s > F.cem43_s_grid[-1] * (1 + 1e-9)
    if beyond.any():
        out = out.copy()
        out[:, beyond] = np.inf  # above the tabulated range: no bound, so it does not pass
    return out


def _thermal_absent(F: FigureSet) -> str | None:
    return F.thermal_absent


def _activation_absent(F: FigureSet) -> str | None:
    return F.activation_absent


def _shannon(F: FigureSet, current_A: np.ndarray) -> np.ndarray:
    q = _outer(F.charge_per_phase_uC_per_A, current_A)
    d = _outer(F.charge_density_uC_per_cm2_per_A, current_A)
    with np.errstate(divide="ignore"):
        return np.log10(d) + np.log10(q)


def _sensory_absent(F: FigureSet) -> str | None:
    if F.sensory_threshold_A is None:  # a figure cache written before the comfort record existed
        return "not evaluated: no sensory-threshold figure in these figures (validate again)"
    return F.comfort_absent


def _figure(F: FigureSet, name: str) -> np.ndarray:
    """An optional per-anatomy figure; NaN where a cache predates it (its rule is then not evaluated)."""
    v = getattr(F, name)
    return np.full(F.n, np.nan) if v is None else np.asarray(v, float)


def _exclusion_or_cache_absent(F: FigureSet) -> str | None:
    if F.exclusion_ratio_per_A is None:
        return "not evaluated: no exclusion figure in these figures (validate again)"
    return F.exclusion_absent


#: The rules, in the order reports list them.
RULES: tuple[Rule, ...] = (
    Rule("iec_rms_current", "r.m.s. output current into 500 ohm at the plateau (pulse train) by frequency band", "mA",
         "rms_current_le_400Hz_mA", "limit", lambda F, i: _outer(F.rms_ratio * 1e3, i), _rms_band_limit, per_unit=lambda F: F.rms_ratio * 1e3,
         source=_IEC_2_10 + ": 50 mA up to 400 Hz, 80 mA up to 1500 Hz, 100 mA above"),
    Rule("iec_energy_per_pulse", "energy of one pulse into 500 ohm", "mJ", "energy_per_pulse_mJ", "limit",
         lambda F, i: _outer(F.energy_mJ_per_A2, i, 2), lambda c: c.limit("energy_per_pulse_mJ"),
         per_unit=lambda F: F.energy_mJ_per_A2, power=2),
    Rule("iec_open_circuit_voltage", "peak open-circuit voltage: the compliance voltage", "V",
         "open_circuit_voltage_V", "limit",
         lambda F, i: np.full((F.n, len(i)), F.compliance_voltage_V), lambda c: c.limit("open_circuit_voltage_V"),
         uses_safety_factor=False, level_independent=True),
    Rule("rms_current_density", "r.m.s. current density at the skin at the plateau, simulated local peak (pad rim)", "mA/cm^2",
         "rms_current_density_mA_per_cm2", "limit", lambda F, i: _outer(F.rms_density_peak_mA_per_cm2_per_A, i),
         lambda c: c.limit("rms_current_density_mA_per_cm2"), per_unit=lambda F: F.rms_density_peak_mA_per_cm2_per_A),
    Rule("charge_per_phase", "charge per phase under a pad", "uC", "charge_per_phase_uC", "limit",
         lambda F, i: _outer(F.charge_per_phase_uC_per_A, i), lambda c: c.limit("charge_per_phase_uC"),
         per_unit=lambda F: F.charge_per_phase_uC_per_A),
    Rule("net_dc_current", "net d.c. output current (mean over the whole cycle, envelope included)", "uA", "net_dc_uA", "limit",
         lambda F, i: np.abs(_outer(F.net_dc_uA_per_A, i)), lambda c: c.limit("net_dc_uA"),
         uses_safety_factor=False, level_independent=True),
    Rule("average_power_density", "cycle-mean electrical power over the pad area", "W/cm^2",
         "average_power_density_W_per_cm2", "limit", lambda F, i: _outer(F.power_density_W_per_cm2_per_A2, i, 2),
         lambda c: c.limit("average_power_density_W_per_cm2"), per_unit=lambda F: F.power_density_W_per_cm2_per_A2,
         power=2),
    Rule("skin_temperature", "peak skin temperature over the session (Pennes)", "C", "skin_temperature_C", "limit",
         _skin_temperature, lambda c: c.limit("skin_temperature_C"), base=lambda F: F.skin_basal_C[:, None],
         not_evaluated=_thermal_absent),
    Rule("cem43", "thermal dose CEM43 over the session, hottest tissue point", "min", "cem43_min", "limit",
         _cem43, lambda c: c.limit("cem43_min"), not_evaluated=_thermal_absent),
    Rule("exclusion_zone", "exclusion zones (eye contour, ...): largest zone value / its limit", "-", None, "limit",
         lambda F, i: _outer(_figure(F, "exclusion_ratio_per_A"), i), lambda c: 1.0,
         per_unit=lambda F: _figure(F, "exclusion_ratio_per_A"),
         source="the head case's [[exclusion]] zones and their limits (each zone names its source; the built-in "
         "eye contour: ICNIRP 2010 basic restriction, phosphenes); values as solvers/electric/exclusion.py compares them",
         not_evaluated=_exclusion_or_cache_absent),
    Rule("compliance_voltage", "simulated peak electrode voltage within the compliance voltage", "V", None, "limit",
         lambda F, i: _outer(F.peak_voltage_V_per_A, i), lambda c: c.device.compliance_voltage_V,
         per_unit=lambda F: F.peak_voltage_V_per_A,
         source="the device's output stage: above its compliance voltage the current is not delivered as set"),
    Rule("efficacy", "target muscle volume activated: level current / current for the target volume", "-", None,
         "report", lambda F, i: _outer(1.0 / F.current_for_target_A, i),
         lambda c: 1.0, source="activation estimate (solvers/physiology/activation.py): reported, not a failure",
         not_evaluated=_activation_absent, higher_is_better=True),
    Rule("comfort", "level current / sensory threshold current (above 1: felt)", "-", None, "report",
         lambda F, i: _outer(1.0 / _figure(F, "sensory_threshold_A"), i), lambda c: 1.0,
         source="sensory threshold in the dermis (solvers/physiology/sensory.py; rheobase an estimate): reported, not a failure",
         not_evaluated=_sensory_absent),
    Rule("shannon", "Shannon k = log10(D) + log10(Q) (charge density and charge per phase)", "-", "shannon_k",
         "report", _shannon, lambda c: c.limit("shannon_k")),
)  # fmt: skip
