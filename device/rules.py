"""The safety rules a preset level must meet: one registry entry per rule, with its source.

A rule computes, for every anatomy case and every current at once (numpy, shape ``(anatomy,
current)``), the figure it limits from the per-unit-current figures of a solved head
(:class:`~emsim.device.figures.FigureSet`), states its limit, and gives the current at which
the figure reaches the limit, ``I_limit`` (:meth:`Rule.limit_current_A`), from the way the figure
scales with the current:

* ``"linear"``: value = c I (currents, charges, current densities, voltages, fields);
* ``"quadratic"``: value = c I^2 (energies and powers);
* ``"monotone"``: increasing in I, solved for I (the skin temperature from its lines
  T0 + (I / I_ref)^2 rise in closed form, CEM43 by bisection on the scale (I / I_ref)^2);
* ``"none"``: a device or geometry constant, independent of the current (the open-circuit
  voltage, the pad placement against the exclusion zones): ``I_limit`` is inf when it holds, 0
  when it fails (said so in the reports, never a silent null).

**One meaning of the safety factor SF.** A level at current I passes a rule when the rule holds
at SF x I. So the largest safe level current of a rule is ``I_max_safe = I_limit / SF`` and the
headroom of a level, ``I_max_safe / I - 1``, is a fraction of current, the same for every rule
whatever its power law (a level passes a rule exactly when its headroom is >= 0). The binding
rule of a level is the one with the smallest headroom over the anatomy cases (a passing constant
has infinite headroom: it never binds a level; a failing one has headroom -1, the lowest there is).

Kinds: ``"limit"`` rules decide pass/fail; ``"report"`` rules (efficacy, comfort, Shannon, the
simulated power density, output-indicator and disclosure thresholds) are shown and never fail a
level. ``basis`` says where a limit comes from: ``"standard"`` (a clause of a standard or
guidance), ``"policy"`` (this project's choice, with its reason), ``"device"`` (the device's own
output stage), ``"dosimetric"`` (a physical threshold with its source). A rule that cannot be
evaluated for a head says why (:attr:`Rule.not_evaluated`): never a silent pass.
``level_independent`` rules are decided by the waveform, the device or the electrode head, not the
level: one failing makes the preset fail the export.

Limits come from :data:`LIMITS` (with source and clause) and can be overridden in a presets
file's ``[limits]`` table by key. Every limit whose clause was not verified against the text of
its source says so in its source string.

To add a rule: extract its per-unit figure in :mod:`emsim.device.figures` and append one
:class:`Rule` to :data:`RULES` (a linear or quadratic figure needs only ``per_unit`` and
``power``: values and ``I_limit`` follow; other laws give ``values`` and ``limit_current``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import InputError
from . import eye_rules

if TYPE_CHECKING:
    from .figures import FigureSet
    from .presets import Device, Preset

__all__ = ["LIMITS", "LIMIT_KEYS", "RULES", "SCALINGS", "Limit", "Rule", "RuleContext", "cem43_at_scale", "rule"]


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


_IEC_2_10 = (
    "IEC 60601-2-10 (nerve and muscle stimulators), output limits into a 500 ohm load (values from "
    "shared/PHYSICS.md; table and clause number UNVERIFIED against the standard's text)"
)
_IEC_2_10_IFU = (
    "IEC 60601-2-10:2012 201.7.9.2.101 (instructions for use), as adopted in AS 60601.2.10:2018 (text read)"
)

#: Every limit, by the key a presets file's ``[limits]`` table uses.
LIMITS: Mapping[str, Limit] = {
    "rms_current_le_400Hz_mA": Limit(50.0, "mA", _IEC_2_10 + ": a.c. r.m.s. output up to 400 Hz"),
    "rms_current_le_1500Hz_mA": Limit(80.0, "mA", _IEC_2_10 + ": a.c. r.m.s. output 400-1500 Hz"),
    "rms_current_above_1500Hz_mA": Limit(100.0, "mA", _IEC_2_10 + ": a.c. r.m.s. output above 1500 Hz"),
    "dc_current_mA": Limit(80.0, "mA", _IEC_2_10 + ": d.c. output (the d.c. component, assessed apart from the a.c.)"),
    "energy_per_pulse_mJ": Limit(300.0, "mJ", _IEC_2_10 + ": energy per pulse"),
    "open_circuit_voltage_V": Limit(500.0, "V", _IEC_2_10 + ": peak open-circuit output voltage"),
    "rms_current_density_mA_per_cm2": Limit(
        2.0, "mA/cm^2", "policy: " + _IEC_2_10_IFU + " g) asks the instructions for use to advise that electrodes "
        "above 2 mA/cm^2 may require the operator's special attention: an instructions-for-use threshold, NOT a "
        "limit of the standard. This project uses it as a design limit on the plateau r.m.s. current density at "
        "the simulated local peak (pad rim, 1 mm disc); raise [limits] rms_current_density_mA_per_cm2 to relax it",
    ),
    "output_indicator_mA": Limit(
        10.0, "mA", _IEC_2_10_IFU + " f): equipment able to deliver more than 10 mA or 10 V must state its maximum "
        "output values in the instructions for use (10 V into 500 ohm is 20 mA, so 10 mA decides): reported",
    ),
    "net_dc_uA": Limit(
        1.0, "uA", "policy: facial presets must be charge balanced (IEC 60601-2-10 requires the d.c. component "
        "declared; a net d.c. current electrolyses the skin under the pad). Raise [limits] net_dc_uA to allow a "
        "declared d.c. component",
    ),
    "average_power_density_W_per_cm2": Limit(
        0.25, "W/cm^2", "FDA guidance for powered muscle stimulator 510(k)s (1999): maximum average power density "
        "(computed as the guidance does: I_rms^2 x 500 ohm / the smallest pad area, r.m.s. at the plateau; value "
        "from shared/PHYSICS.md, page UNVERIFIED)",
    ),
    "skin_temperature_C": Limit(
        43.0, "C", "IEC 60601-1 Table 24 (clause 11.1, allowable maximum temperatures of applied parts in contact "
        "with the patient): 43 C for contact of 10 min or more (the table's number is attested by practitioners; the "
        "43 C row itself is UNVERIFIED against the standard's text)",
    ),
    "skin_temperature_disclosure_C": Limit(
        41.0, "C", "IEC 60601-1 clause 11.1.2.2: an applied part not intended to supply heat whose surface exceeds "
        "41 C must have the maximum temperature disclosed in the instructions for use (and its clinical effects "
        "assessed); 41 C as the applied-part limit of the 2nd edition, clause 42.3, is attested in IEC interpretation "
        "sheet DSH-425; the 3rd-edition clause UNVERIFIED against the text): reported",
    ),
    "cem43_min": Limit(
        1.0, "min", "policy (unverified): thermal dose CEM43 kept below 1 min, far below the doses reported for "
        "skin damage; CEM43 = sum dt R^(43 - T) (shared/PHYSICS.md)",
    ),
    "charge_per_phase_uC": Limit(
        math.inf, "uC", "no standard limit for transcutaneous stimulation (reported as in a 510(k) table); set "
        "[limits] charge_per_phase_uC to enforce one",
    ),
    "zone_min_distance_mm": Limit(*eye_rules.PLACEMENT_LIMIT_MM),
    "phosphene_ratio": Limit(1.0, "-", eye_rules.PHOSPHENE_SOURCE + ": reported"),
    "phosphene_ratio_max": Limit(
        math.inf, "-", eye_rules.PHOSPHENE_SOURCE + ": binding only when a presets file's [limits] "
        "phosphene_ratio_max sets a finite limit (1: the criterion as stated)",
    ),
    "shannon_k": Limit(
        1.85, "-", "Shannon 1992: log10(D) = k - log10(Q), damage at k >= 1.85 for implanted neural tissue only "
        "(shared/PHYSICS.md): reported, never decides skin safety",
    ),
}
LIMIT_KEYS = tuple(LIMITS)

#: How a rule's value scales with the level current.
SCALINGS = ("linear", "quadratic", "monotone", "none")


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
        limit: context -> the limit value.
        basis: ``"standard"``, ``"policy"``, ``"device"`` or ``"dosimetric"``.
        per_unit: figures -> the coefficient c of value = c I^power per anatomy case.
        power: that power (1: currents, charges, voltages; 2: energies, powers).
        values: figures, currents [A] -> values, shape (anatomy, current), for rules that are not
            a power of the current (default: c I^power).
        limit_current: (figures, limit) -> the current [A] at which the value reaches the limit,
            per anatomy case, for ``"monotone"`` and ``"none"`` rules.
        scaling: one of :data:`SCALINGS` (default from ``power``).
        source: the source, when not that of ``limit_key``.
        level_independent: decided by the waveform, the device or the electrode head: a failure
            fails the export.
        not_evaluated: figures -> a reason when the rule cannot be evaluated, else None.
        higher_is_better: report rules whose value should exceed the limit (efficacy).
    """

    name: str
    title: str
    unit: str
    limit_key: str | None
    kind: str
    limit: Callable[[RuleContext], float]
    basis: str = "standard"
    per_unit: Callable[[FigureSet], Any] | None = None
    power: int = 1
    values: Values | None = None
    limit_current: Callable[[FigureSet, float], np.ndarray] | None = None
    scaling: str = ""
    source: str = ""
    level_independent: bool = False
    not_evaluated: Callable[[FigureSet], str | None] | None = None
    higher_is_better: bool = False

    def __post_init__(self) -> None:
        if not self.scaling:
            object.__setattr__(self, "scaling", {1: "linear", 2: "quadratic"}.get(self.power, "monotone"))
        if self.scaling not in SCALINGS:
            raise ValueError(f"rule {self.name}: scaling {self.scaling!r} not one of {SCALINGS}")
        if self.per_unit is None and (self.values is None or self.limit_current is None):
            raise ValueError(f"rule {self.name}: give per_unit (a power law) or both values and limit_current")

    def source_text(self) -> str:
        """The rule's source and clause."""
        return self.source or (LIMITS[self.limit_key].source if self.limit_key else "")

    def _per_unit(self) -> Callable[[FigureSet], Any]:
        # __post_init__ guarantees per_unit wherever values or limit_current is missing
        if self.per_unit is None:
            raise ValueError(f"rule {self.name}: no per_unit power law")
        return self.per_unit

    def evaluate(self, F: FigureSet, current_A: Any) -> np.ndarray:
        """The rule's value at each current [A], shape (anatomy, current)."""
        current_A = np.atleast_1d(np.asarray(current_A, float))
        if self.values is not None:
            out = self.values(F, current_A)
        else:
            c = np.broadcast_to(np.asarray(self._per_unit()(F), dtype=np.float64), (F.n,))
            out = np.multiply.outer(c, current_A**self.power)
        return np.broadcast_to(out, (F.n, len(current_A)))

    def limit_current_A(self, F: FigureSet, limit: float) -> np.ndarray:
        """The current [A] at which the value reaches ``limit``, per anatomy case (no safety factor).

        inf: never reached (a zero coefficient, an infinite limit, or a constant within it);
        0: exceeded at any current (a constant above the limit); NaN: not computable.
        """
        if self.limit_current is not None:
            return np.broadcast_to(np.asarray(self.limit_current(F, limit), float), (F.n,)).copy()
        c = np.abs(np.broadcast_to(np.asarray(self._per_unit()(F), dtype=np.float64), (F.n,)))
        with np.errstate(divide="ignore", invalid="ignore"):
            out = (limit / c) ** (1.0 / self.power)
        out[c == 0] = math.inf
        if math.isinf(limit):
            out[np.isfinite(c)] = math.inf
        return out


def rule(name: str) -> Rule:
    """The registered rule ``name``."""
    for r in RULES:
        if r.name == name:
            return r

    raise InputError("rule", name, f"one of {', '.join(r.name for r in RULES)}")


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
    # (ThermalResult.at); the rise is local to each skin point, the basal temperature its own
    T0, rise = F.skin_T0_C, F.skin_rise_K
    t = T0[:, 0, None] + rise[:, 0, None] * s[None, :]
    for k in range(1, T0.shape[1]):
        np.maximum(t, T0[:, k, None] + rise[:, k, None] * s[None, :], out=t)
    return t


def _skin_temperature_current(F: FigureSet, limit: float) -> np.ndarray:
    """Closed form: max_k (T0_k + s rise_k) = limit at s* = min over rise_k > 0 of (limit - T0_k) / rise_k.

    Each line is increasing in s (rise_k >= 0: Pennes is linear with a non-negative Joule source), so
    the maximum is increasing; when some basal T0_k is already above the limit no current is safe.
    """
    T0, rise = F.skin_T0_C, F.skin_rise_K
    out = np.empty(F.n)
    for a in range(F.n):
        t0, r = T0[a], rise[a]
        if np.any(t0 > limit):
            out[a] = 0.0
            continue
        pos = r > 0
        s = np.min((limit - t0[pos]) / r[pos]) if pos.any() else math.inf
        out[a] = F.thermal_reference_A * math.sqrt(s)
    return out


def cem43_at_scale(F: FigureSet, case: int, s: float) -> float:
    """CEM43 [min] of anatomy case ``case`` at the thermal scale s = (I / I_ref)^2, max over the heated region.

    From the probe temperature histories T0 + s rise(t) (Pennes is linear in its source: exact at
    the probes), trapezoidal rule in time. The probes are the heated region's nodes (steady-state
    rise at least HEATED_FRACTION of the largest, solvers/thermal/session.py): the same region at
    every current and every node of it a probe, so the value is exact there at any scale (up to
    the solver's per-rank cap on probes; beyond it the hottest per scale, a lower bound). The
    figures keep the probes that can hold the largest dose
    (:func:`emsim.device.figures.undominated_probes`: the same maximum, a fraction of the work).
    """
    # local: emsim.solvers.thermal's package loads DOLFINx; the rules stay importable without it
    from ..solvers.thermal.pennes_data import cem43_of_history

    T0 = F.cem43_T0_C[case]
    real = np.isfinite(T0)  # the padding (T0 = -inf) gives no dose: left out, not dosed
    per_probe = cem43_of_history(T0[None, real] + s * F.cem43_rise_K[case][:, real], F.cem43_dt_s)
    return float(per_probe.max(initial=0.0))


def _cem43(F: FigureSet, current_A: np.ndarray) -> np.ndarray:
    s = (np.asarray(current_A, float) / F.thermal_reference_A) ** 2
    return np.array([[cem43_at_scale(F, a, si) for si in s] for a in range(F.n)])


_CEM43_S_MAX = 1e6  # (I / I_ref)^2: no dose limit within 1000 x the reference current counts as none


def _cem43_current(F: FigureSet, limit: float) -> np.ndarray:
    """The current at which CEM43 reaches ``limit``: bisection on s = (I / I_ref)^2.

    CEM43 increases with s (the rise is >= 0 everywhere and R^(43 - T) increases with T), so the
    root is unique.
    """
    out = np.empty(F.n)
    for a in range(F.n):
        if cem43_at_scale(F, a, 0.0) > limit:
            out[a] = 0.0  # the basal dose alone is above the limit
            continue
        lo, hi = 0.0, 1.0
        while cem43_at_scale(F, a, hi) <= limit:
            lo, hi = hi, hi * 4.0
            if hi > _CEM43_S_MAX:
                break
        if hi > _CEM43_S_MAX:
            out[a] = math.inf
            continue
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if cem43_at_scale(F, a, mid) <= limit:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-13 * hi:
                break
        out[a] = F.thermal_reference_A * math.sqrt(lo)  # lo holds the limit: conservative side
    return out


def _thermal_absent(F: FigureSet) -> str | None:
    return F.thermal_absent


def _activation_absent(F: FigureSet) -> str | None:
    return F.activation_absent


def _shannon(F: FigureSet, current_A: np.ndarray) -> np.ndarray:
    q = np.multiply.outer(F.charge_per_phase_uC_per_A, current_A)
    d = np.multiply.outer(F.charge_density_uC_per_cm2_per_A, current_A)
    with np.errstate(divide="ignore"):
        return np.log10(d) + np.log10(q)


def _shannon_current(F: FigureSet, limit: float) -> np.ndarray:
    # k = log10(d q) + 2 log10(I): I = 10^((k - log10(d q)) / 2)
    with np.errstate(divide="ignore"):
        return 10.0 ** (0.5 * (limit - np.log10(F.charge_per_phase_uC_per_A * F.charge_density_uC_per_cm2_per_A)))


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


def _constant(value: Callable[[FigureSet], Any]) -> tuple[Values, Callable[[FigureSet, float], np.ndarray]]:
    """Values and limit_current of a device constant (a number, or one per anatomy case).

    Its largest safe current is inf where it holds, 0 where it fails (NaN where it cannot be
    computed: no safe current, :func:`~emsim.device.validate.rule_limit_currents`).
    """

    def per_case(F: FigureSet) -> np.ndarray:
        return np.broadcast_to(np.asarray(value(F), float), (F.n,))

    def values(F: FigureSet, i: np.ndarray) -> np.ndarray:
        return np.repeat(per_case(F)[:, None], len(i), axis=1)

    def current(F: FigureSet, limit: float) -> np.ndarray:
        v = per_case(F)
        return np.where(np.isnan(v), np.nan, np.where(v <= limit, math.inf, 0.0))

    return values, current


_voc_values, _voc_current = _constant(lambda F: F.compliance_voltage_V)
# the pad placement is geometric: decided by the electrode head, not by the level's current
_placement_values, _placement_current = _constant(eye_rules.placement_ratio)
_PLATEAU = "at the plateau of the on/off cycle (the pulse train while on, ramps and off time excluded)"

#: The rules, in the order reports list them.
RULES: tuple[Rule, ...] = (
    Rule("iec_rms_current", f"a.c. r.m.s. output current into 500 ohm {_PLATEAU}, by frequency band", "mA",
         "rms_current_le_400Hz_mA", "limit", _rms_band_limit, per_unit=lambda F: F.ac_rms_ratio * 1e3,
         source=_IEC_2_10 + ": a.c. r.m.s. 50 mA up to 400 Hz, 80 mA up to 1500 Hz, 100 mA above"),
    Rule("iec_dc_current", f"d.c. output current (the mean of the output) {_PLATEAU}", "mA", "dc_current_mA", "limit",
         lambda c: c.limit("dc_current_mA"), per_unit=lambda F: F.dc_ratio * 1e3),
    Rule("iec_energy_per_pulse", "energy of one pulse into 500 ohm", "mJ", "energy_per_pulse_mJ", "limit",
         lambda c: c.limit("energy_per_pulse_mJ"), per_unit=lambda F: F.energy_mJ_per_A2, power=2),
    Rule("iec_open_circuit_voltage", "peak open-circuit voltage: the compliance voltage", "V",
         "open_circuit_voltage_V", "limit", lambda c: c.limit("open_circuit_voltage_V"),
         values=_voc_values, limit_current=_voc_current, scaling="none", level_independent=True),
    Rule("rms_current_density", f"r.m.s. current density at the skin {_PLATEAU}, simulated local peak (pad rim, "
         "1 mm disc): an instructions-for-use threshold used as a design limit", "mA/cm^2",
         "rms_current_density_mA_per_cm2", "limit", lambda c: c.limit("rms_current_density_mA_per_cm2"),
         basis="policy", per_unit=lambda F: F.rms_density_peak_mA_per_cm2_per_A),
    Rule("output_indicator", f"r.m.s. output current into 500 ohm {_PLATEAU}: above 10 mA (or 10 V) the "
         "instructions for use must state the maximum output", "mA", "output_indicator_mA", "report",
         lambda c: c.limit("output_indicator_mA"), per_unit=lambda F: F.rms_ratio * 1e3),
    Rule("charge_per_phase", "charge per phase under a pad", "uC", "charge_per_phase_uC", "limit",
         lambda c: c.limit("charge_per_phase_uC"), per_unit=lambda F: F.charge_per_phase_uC_per_A),
    Rule("net_dc_current", "net d.c. output current (mean over the whole cycle, envelope included)", "uA", "net_dc_uA",
         "limit", lambda c: c.limit("net_dc_uA"), basis="policy", per_unit=lambda F: np.abs(F.net_dc_uA_per_A),
         level_independent=True),
    Rule("average_power_density", f"average power density as the FDA guidance computes it: I_rms^2 x 500 ohm / "
         f"the smallest pad area, I_rms {_PLATEAU}", "W/cm^2", "average_power_density_W_per_cm2", "limit",
         lambda c: c.limit("average_power_density_W_per_cm2"),
         per_unit=lambda F: F.rms_ratio**2 * 500.0 / F.pad_area_min_cm2, power=2),
    Rule("average_power_density_simulated", "simulated cycle-mean electrical power into the model over one pad's "
         "area (worst pad), beside the guidance's figure", "W/cm^2", "average_power_density_W_per_cm2", "report",
         lambda c: c.limit("average_power_density_W_per_cm2"), basis="dosimetric",
         per_unit=lambda F: F.power_density_W_per_cm2_per_A2, power=2,
         source="the simulated Joule power of the channel (whole on/off cycle) over the pad area: reported beside "
         "the FDA guidance's figure, against the same 0.25 W/cm^2"),
    Rule("skin_temperature", "peak skin temperature over the session (Pennes; each skin point's own basal "
         "temperature plus its own rise)", "C", "skin_temperature_C", "limit", lambda c: c.limit("skin_temperature_C"),
         values=_skin_temperature, limit_current=_skin_temperature_current, scaling="monotone",
         not_evaluated=_thermal_absent),
    Rule("skin_temperature_disclosure", "peak skin temperature over the session against the 41 C disclosure "
         "threshold", "C", "skin_temperature_disclosure_C", "report", lambda c: c.limit("skin_temperature_disclosure_C"),
         values=_skin_temperature, limit_current=_skin_temperature_current, scaling="monotone",
         not_evaluated=_thermal_absent),
    Rule("cem43", "thermal dose CEM43 over the session, max over the heated region (basal temperature + local "
         "rise)", "min", "cem43_min", "limit", lambda c: c.limit("cem43_min"), basis="policy", values=_cem43,
         limit_current=_cem43_current, scaling="monotone", not_evaluated=_thermal_absent),
    Rule("exclusion_zone", "exclusion zones (eye contour, ...): largest zone value / its limit", "-", None, "limit",
         lambda c: 1.0, basis="dosimetric", per_unit=lambda F: _figure(F, "exclusion_ratio_per_A"),
         source="the head case's [[exclusion]] zones and their limits (each zone names its source; the built-in "
         "eye contour states none: the ICNIRP 2010 restriction protects the retina, not the periorbital tissue of a "
         "layered patch; it is judged by zone_placement); values as solvers/electric/exclusion.py compares them",
         not_evaluated=_exclusion_or_cache_absent),
    Rule("zone_placement", "pad placement (policy): 10 mm / smallest gap between a gel footprint and an exclusion "
         "zone's edge; limit 10 mm / zone_min_distance_mm", "-", "zone_min_distance_mm", "limit",
         lambda c: eye_rules.PLACEMENT_LIMIT_MM[0] / c.limit("zone_min_distance_mm"), basis="policy",
         values=_placement_values, limit_current=_placement_current, scaling="none", level_independent=True,
         not_evaluated=eye_rules.placement_absent),
    Rule("phosphene", "phosphenes at the retina (orbit zone): weighted-peak index of the retina's field / the 5th-"
         "percentile threshold factor", "-", "phosphene_ratio", "report", lambda c: c.limit("phosphene_ratio"),
         basis="dosimetric", per_unit=eye_rules.phosphene_ratio_per_A, not_evaluated=eye_rules.phosphene_absent),
    Rule("phosphene_binding", "phosphenes at the retina, as a limit: the phosphene ratio within [limits] "
         "phosphene_ratio_max (inf unless a presets file sets it)", "-", "phosphene_ratio_max", "limit",
         lambda c: c.limit("phosphene_ratio_max"), basis="dosimetric", per_unit=eye_rules.phosphene_ratio_per_A,
         not_evaluated=eye_rules.phosphene_absent),
    Rule("compliance_voltage", "simulated peak electrode voltage within the compliance voltage", "V", None, "limit",
         lambda c: c.device.compliance_voltage_V, basis="device", per_unit=lambda F: F.peak_voltage_V_per_A,
         source="the device's output stage: above its compliance voltage the current is not delivered as set"),
    Rule("efficacy", "target muscle volume activated: level current / current for the target volume", "-", None,
         "report", lambda c: 1.0, basis="dosimetric", per_unit=lambda F: 1.0 / F.current_for_target_A,
         source="activation estimate (solvers/physiology/activation.py): reported, not a failure",
         not_evaluated=_activation_absent, higher_is_better=True),
    Rule("comfort", "level current / sensory threshold current (above 1: felt)", "-", None, "report",
         lambda c: 1.0, basis="dosimetric", per_unit=lambda F: 1.0 / _figure(F, "sensory_threshold_A"),
         source="sensory threshold in the dermis (solvers/physiology/sensory.py; rheobase an estimate): reported, not a failure",
         not_evaluated=_sensory_absent),
    Rule("shannon", "Shannon k = log10(D) + log10(Q) (charge density and charge per phase)", "-", "shannon_k",
         "report", lambda c: c.limit("shannon_k"), basis="dosimetric", values=_shannon,
         limit_current=_shannon_current, scaling="monotone"),
)  # fmt: skip
