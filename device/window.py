"""The inputs of a preset's validation pictures: thresholds, safe maxima and headroom in current.

From a :class:`~emsim.device.validate.ValidationReport` and its per-unit figures: the sensory and
motor thresholds over the anatomy spread, and the largest safe current of every limit rule in
every anatomy case, I_max_safe, the current at which the rule's margin reaches 0. Every limit
rule's value grows with the current (currents, charges, densities and voltages as I, energies and
powers as I^2, temperatures and CEM43 along the heating's I^2 scale), so its margin falls
monotonically and a bisection on the current finds I_max_safe (to 1e-6 relative). A rule the
current cannot break within 1 A has none (inf); a level-independent rule that fails has 0.
CEM43 is tabulated up to the heating's reference current (the group's top level) and does not
pass above it, so its I_max_safe is at most that current.

The binding rule of every level is the one with the smallest I_max_safe (headroom in current
orders the rules the same way at every level), in the anatomy case where it is smallest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .rules import RULES, RuleContext
from .validate import PresetCheck, ValidationReport, evaluate_margins, group_key

__all__ = ["WindowInputs", "max_safe_currents", "window_inputs"]

_TOP_A = 1.0  # no stimulator output reaches 1 A: a rule still passing there sets no limit
_BOTTOM_A = 1e-9


def max_safe_currents(report: ValidationReport, check: PresetCheck) -> np.ndarray:
    """I_max_safe [A] of every rule (rows, :data:`~emsim.device.rules.RULES` order) per anatomy case.

    NaN for a rule not evaluated or only reported; inf when it passes at 1 A; 0 when it fails at
    1 nA (a level-independent failure); -I when the rule's table ends at I while it still passes
    (CEM43 above the heating's reference current): I_max_safe >= I. Bisection on the margins of
    :func:`~emsim.device.validate.evaluate_margins` (the safety factor included).
    """
    pf = report.presets_file
    F = report.figures[group_key(check.preset)]
    ctx = RuleContext(pf.device, check.preset, pf.limits)
    sf = pf.validation.safety_factor
    n_r, n_a = len(RULES), F.n
    rr, aa = np.meshgrid(np.arange(n_r), np.arange(n_a), indexing="ij")

    def margin(current: np.ndarray) -> np.ndarray:
        """The margin of rule r in case a at current[r, a]."""
        flat = current.ravel()
        m = evaluate_margins(F, flat, ctx, sf)  # (rule, anatomy, len(flat))
        return m[rr, aa, np.arange(flat.size).reshape(n_r, n_a)]

    lo = np.full((n_r, n_a), _BOTTOM_A)
    hi = np.full((n_r, n_a), _TOP_A)
    m_lo, m_hi = margin(lo), margin(hi)
    for _ in range(60):  # geometric bisection: 1e-9 to 1 A to 1e-6 relative in ~25 steps
        mid = np.sqrt(lo * hi)
        ok = margin(mid) >= 0
        lo, hi = np.where(ok, mid, lo), np.where(ok, hi, mid)
        if np.all(hi / lo < 1 + 1e-7):
            break
    out = lo.copy()
    # a margin that jumps from clearly positive to -inf is the end of a table (CEM43 above the
    # heating's reference current), not the limit: I_max_safe is then only known to be >= lo
    below, above = margin(lo), margin(hi)
    edge = np.isneginf(above) & (below > 1e-3)
    out[edge] = -lo[edge]  # negative: a lower bound (max_safe_currents' contract, read by window_inputs)
    out[m_hi >= 0] = np.inf
    out[m_lo < 0] = 0.0
    out[np.isnan(m_lo)] = np.nan
    # a level-independent rule (device or waveform) passes or fails whatever the current
    for j, r in enumerate(RULES):
        if r.level_independent and not np.isnan(m_lo[j]).all():
            out[j] = np.where(m_lo[j] >= 0, np.inf, 0.0)
    return out


@dataclass(frozen=True)
class WindowInputs:
    """What the therapeutic window and the headroom heatmap of one preset show.

    Attributes:
        title: the preset's id and name.
        levels_A: level currents [A].
        passed: each level passes every rule.
        sensory_A, motor_A: the thresholds (min, max) over the anatomy spread [A] (None: not evaluated).
        safe_max_A: the largest safe current (min, max) over the anatomy spread [A].
        binding_rule: the rule setting the smallest safe maximum; binding_anatomy: where.
        rules: the limit rules evaluated (heatmap columns).
        max_safe_A: their I_max_safe worst over the anatomy [A], shape (rule,).
        level_binding_anatomy: per level, the anatomy case of its binding rule.
        lower_bound: per rule, its I_max_safe is only a lower bound (a table's end, see above).
    """

    title: str
    levels_A: np.ndarray
    passed: np.ndarray
    sensory_A: tuple[float, float] | None
    motor_A: tuple[float, float] | None
    safe_max_A: tuple[float, float] | None
    binding_rule: str | None
    binding_anatomy: str | None
    rules: list[str]
    max_safe_A: np.ndarray
    level_binding_anatomy: list[str]
    lower_bound: np.ndarray | None = None


def _span(values: np.ndarray | None) -> tuple[float, float] | None:
    if values is None:
        return None
    v = np.asarray(values, float)
    if v.size == 0 or np.isnan(v).all():
        return None
    return float(np.nanmin(v)), float(np.nanmax(v))


def window_inputs(report: ValidationReport, check: PresetCheck) -> WindowInputs:
    """The pictures' inputs for one preset of a validation (needs ``report.figures``)."""
    F = report.figures[group_key(check.preset)]
    signed = max_safe_currents(report, check)  # (rule, anatomy)
    per = np.abs(signed)  # a table's end counts as the limit (conservative), flagged as a bound
    limit_rows = [j for j, r in enumerate(RULES) if r.kind == "limit" and not np.isnan(per[j]).all()]
    worst = np.nanmin(per[limit_rows], axis=1) if limit_rows else np.zeros(0)
    case_max = np.nanmin(per[limit_rows], axis=0) if limit_rows else np.full(F.n, np.inf)  # per anatomy
    binding_rule = binding_anatomy = None
    if limit_rows:
        j = limit_rows[int(np.argmin(worst))]
        a = int(np.nanargmin(per[j]))
        binding_rule, binding_anatomy = RULES[j].name, F.labels[a]
    sensory = None if F.comfort_absent or F.sensory_threshold_A is None else F.sensory_threshold_A
    motor = None if F.activation_absent else F.current_for_target_A
    p = check.preset
    return WindowInputs(
        title=f"preset {p.id}: {p.name}",
        levels_A=np.asarray(p.levels_A, float),
        passed=np.array([lv.passed for lv in check.levels]),
        sensory_A=_span(sensory),
        motor_A=_span(motor),
        safe_max_A=_span(case_max),
        binding_rule=binding_rule,
        binding_anatomy=binding_anatomy,
        rules=[RULES[j].name for j in limit_rows],
        max_safe_A=worst,
        level_binding_anatomy=[binding_anatomy or ""] * len(check.levels),
        lower_bound=np.array([bool((signed[j] < 0).any()) for j in limit_rows]),
    )
