"""Validate every level of every preset against every rule, over the anatomy spread.

The physics is solved once per (anatomy case, distinct waveform and session) of the head
(:func:`solve_groups`: solves = heads x anatomy cases x distinct waveforms); every level is then
evaluated from the per-unit-current figures by linearity (:func:`evaluate`, numpy over anatomy
cases and levels at once, no solve). A level passes when every evaluated limit rule has a margin
>= 0 in every anatomy case (margins in :mod:`emsim.device.rules`); a preset's ``max_safe_level``
is the number of its leading levels that pass.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .. import __version__
from ..models.case_file import parse_case, parse_toml
from ..pipeline import solve_case
from .anatomy import AnatomyCase, anatomy_cases, head_case_table
from .figures import FigureSet, figure_set
from .presets import Preset, PresetsFile, head_case_text
from .rules import LIMITS, RULES, Rule, RuleContext

__all__ = [
    "LevelCheck",
    "PresetCheck",
    "ValidationReport",
    "evaluate",
    "group_key",
    "output_table",
    "solve_groups",
    "validate",
]

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


def _nothing(_: str) -> None:
    pass


def group_key(preset: Preset) -> str:
    """Presets with the same key share their solves: same waveform and session length."""
    return json.dumps({"waveform": preset.waveform_table(), "session_min": preset.session_min}, sort_keys=True)


@dataclass(frozen=True)
class LevelCheck:
    """One level against every rule (worst over the anatomy cases).

    Attributes:
        level: level number, from 1.
        current_uA: its peak current [uA].
        passed: every evaluated limit rule has margin >= 0 in every anatomy case.
        binding_rule: the limit rule with the smallest margin.
        margin: that margin (1 - safety_factor x value / limit; < 0 fails).
        worst_anatomy: the anatomy case where the binding rule is worst.
        rules: per rule: value (worst case), limit, unit, margin, anatomy, status.
    """

    level: int
    current_uA: int
    passed: bool
    binding_rule: str
    margin: float
    worst_anatomy: str
    rules: dict[str, dict[str, Any]]


@dataclass(frozen=True)
class PresetCheck:
    """A preset's validation: its levels, highest safe level and level-independent failures."""

    preset: Preset
    levels: list[LevelCheck]
    max_safe_level: int
    level_independent_failures: list[str]
    output_table: dict[str, Any]

    @property
    def max_safe_current_uA(self) -> int:
        """Current of the highest safe level [uA] (0 when none)."""
        return self.preset.levels_uA[self.max_safe_level - 1] if self.max_safe_level else 0

    @property
    def exportable(self) -> bool:
        """No level-independent failure and at least one safe level."""
        return not self.level_independent_failures and self.max_safe_level > 0


@dataclass
class ValidationReport:
    """The validation of a presets file."""

    presets_file: PresetsFile
    anatomy: list[str]
    presets: list[PresetCheck]
    solves: int
    not_evaluated: dict[str, str]
    seconds: float = 0.0
    worst_pictures: dict[int, str] = field(default_factory=dict)
    figures: dict[str, FigureSet] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        """Every level of every preset passes."""
        return all(lv.passed for p in self.presets for lv in p.levels)

    def rules_table(self) -> list[dict[str, Any]]:
        """Every rule with its kind, unit, default limit and source."""
        rows = []
        for r in RULES:
            limit = LIMITS[r.limit_key].value if r.limit_key else None
            override = self.presets_file.limits.get(r.limit_key) if r.limit_key else None
            rows.append({
                "rule": r.name, "title": r.title, "kind": r.kind, "unit": r.unit,
                "limit": _finite(override if override is not None else limit) if r.limit_key else None,
                "limit_key": r.limit_key,
                "safety_factor_applies": r.uses_safety_factor and r.kind == "limit",
                "level_independent": r.level_independent, "source": r.source_text(),
                "not_evaluated": self.not_evaluated.get(r.name),
            })  # fmt: skip
        return rows

    def to_json(self) -> dict[str, Any]:
        """The content of ``validation.json``."""
        pf = self.presets_file
        return {
            "device": pf.device.name,
            "electrode_head": pf.device.electrode_head,
            "emsim_version": __version__,
            "inputs_digest_sha256": pf.digest_sha256,
            "passed": self.passed,
            "safety_factor": pf.validation.safety_factor,
            "anatomy_cases": self.anatomy,
            "solves": self.solves,
            "rules": self.rules_table(),
            "presets": [
                {
                    "id": p.preset.id, "name": p.preset.name, "max_safe_level": p.max_safe_level,
                    "max_safe_current_uA": p.max_safe_current_uA, "exportable": p.exportable,
                    "level_independent_failures": p.level_independent_failures,
                    "output_table_510k": p.output_table,
                    "levels": [
                        {"level": lv.level, "current_uA": lv.current_uA, "pass": lv.passed,
                         "binding_rule": lv.binding_rule, "margin": _finite(lv.margin),
                         "worst_anatomy": lv.worst_anatomy, "rules": lv.rules}
                        for lv in p.levels
                    ],
                }
                for p in self.presets
            ],
        }  # fmt: skip


def _finite(x: float) -> float | str:
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{float(x):.9g}")  # 9 significant digits: small figures keep their precision


def _rule_margins(r: Rule, F: FigureSet, current_A: np.ndarray, ctx: RuleContext, sf: float):
    """(values, limit, margins) of one rule; margins None when it is not evaluated or reported."""
    values = np.broadcast_to(r.values(F, current_A), (F.n, len(current_A)))  # anatomy-independent rules
    limit = r.limit(ctx)
    if r.kind != "limit" or math.isnan(limit) or (r.not_evaluated and r.not_evaluated(F)):
        return values, limit, None
    base = r.base(F) if r.base is not None else 0.0
    k = sf if r.uses_safety_factor else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):
        if math.isinf(limit):
            margins = np.where(np.isfinite(values), 1.0, -np.inf)
        else:
            margins = 1.0 - k * (values - base) / (limit - base)
    margins = np.where(np.isnan(margins), -np.inf, margins)  # a value that cannot be computed fails
    if r.level_independent:
        margins = np.broadcast_to(margins.min(axis=1, keepdims=True), margins.shape)
    return values, limit, margins


def evaluate_margins(F: FigureSet, current_A: np.ndarray, ctx: RuleContext, sf: float) -> np.ndarray:
    """Margins of every limit rule, shape (rule, anatomy, level); NaN for rules not evaluated.

    The fast path (no per-rule records, report rules skipped): rules whose value is a power of
    the current are stacked into one product per power, margin = 1 - (k / limit) c I^p; the
    others are evaluated one by one. This is what the benchmark times.
    """
    current_A = np.asarray(current_A, float)
    out = np.full((len(RULES), F.n, len(current_A)), np.nan)
    stacked: dict[int, tuple[list[int], list[Any]]] = {}
    for j, r in enumerate(RULES):
        if r.kind != "limit" or (r.not_evaluated is not None and r.not_evaluated(F)):
            continue
        limit = r.limit(ctx)
        if math.isnan(limit) or math.isinf(limit):
            if not math.isnan(limit):
                out[j] = 1.0  # no finite limit: never binding (a reported figure such as charge per phase)
            continue
        k = sf if r.uses_safety_factor else 1.0
        if r.per_unit is not None and not r.level_independent and r.base is None:
            rows, coefs = stacked.setdefault(r.power, ([], []))
            rows.append(j)
            coefs.append(np.broadcast_to(np.asarray(r.per_unit(F), float) * (k / limit), (F.n,)))
            continue
        values = r.values(F, current_A)
        base = r.base(F) if r.base is not None else 0.0
        m = 1.0 - (k / (limit - base)) * (values - base)
        if r.level_independent:
            m = m.min(axis=-1, keepdims=True)
        out[j] = np.where(np.isnan(m), -np.inf, m)  # a value that cannot be computed (NaN) fails
    for power, (rows, coefs) in stacked.items():
        c = np.asarray(coefs)  # (rules, anatomy)
        out[rows] = 1.0 - c[:, :, None] * (current_A**power)[None, None, :]
    return out


def output_table(preset: Preset, current_uA: int, F: FigureSet, compliance_V: float) -> dict[str, Any]:
    """The 510(k) output table row (FDA 1999 guidance, shared/PHYSICS.md) at one level, worst case.

    Current control: into a load R the current is the set current while I R is within the
    compliance voltage, else compliance / R.
    """
    w = preset.waveform_model()
    i = current_uA * 1e-6
    row: dict[str, Any] = {"waveform": preset.waveform, "level_current_uA": current_uA}
    for r_ohm, key in ((500, "500ohm"), (2000, "2kohm"), (10000, "10kohm")):
        v = min(i * r_ohm, compliance_V)
        row[f"max_voltage_{key}_V"] = round(v, 6)
        row[f"max_current_{key}_mA"] = round(v / r_ohm * 1e3, 6)
    phases = w.phases()
    row["pulse_duration_us"] = round((phases[-1][1] - phases[0][0]) * 1e6, 6)
    row["phase_width_us"] = preset.pulse_width_us
    row["frequency_Hz"] = preset.frequency_Hz
    row["net_charge_per_pulse_uC"] = round(i * sum(a * (t1 - t0) for t0, t1, a in phases) * 1e6, 6) + 0.0
    i500 = min(i, compliance_V / 500.0)
    row["max_phase_charge_500ohm_uC"] = round(i500 * (phases[0][1] - phases[0][0]) * 1e6, 6)
    row["max_rms_current_density_mA_per_cm2"] = round(float(F.rms_density_peak_mA_per_cm2_per_A.max() * i), 6)
    row["mean_rms_current_density_mA_per_cm2"] = round(float(F.rms_density_mean_mA_per_cm2_per_A.max() * i), 6)
    mean_abs = i * w.pulse_rate_Hz * sum(abs(a) * (t1 - t0) for t0, t1, a in phases) * w.mean_envelope
    row["max_average_current_mA"] = round(mean_abs * 1e3, 6)
    row["max_average_power_density_W_per_cm2"] = round(float(F.power_density_W_per_cm2_per_A2.max() * i * i), 9)
    return row


def evaluate(pf: PresetsFile, figures: dict[str, FigureSet], *, solves: int = 0) -> ValidationReport:
    """Evaluate every level of every preset from the per-unit figures of its group (no solve).

    Args:
        pf: the presets file.
        figures: the figure set of each group (:func:`group_key`).
        solves: how many head cases were solved (reported).
    """
    sf = pf.validation.safety_factor
    checks: list[PresetCheck] = []
    not_evaluated: dict[str, str] = {}
    labels: list[str] = []
    for p in pf.presets:
        F = figures[group_key(p)]
        labels = list(F.labels)
        ctx = RuleContext(pf.device, p, pf.limits)
        current = np.asarray(p.levels_A)
        per_rule: dict[str, dict[str, Any]] = {}
        margins = np.full((len(RULES), F.n, len(current)), np.nan)
        for j, r in enumerate(RULES):
            values, limit, m = _rule_margins(r, F, current, ctx, sf)
            reason = r.not_evaluated(F) if r.not_evaluated else None
            if reason:
                not_evaluated[r.name] = reason
            if m is not None:
                margins[j] = m
            per_rule[r.name] = {"values": values, "limit": limit, "margins": m, "reason": reason}
        levels = []
        for k, cur in enumerate(p.levels_uA):
            col = margins[:, :, k]
            evaluated = ~np.isnan(col[:, 0])
            worst = np.where(evaluated, np.nanmin(np.where(np.isnan(col), np.inf, col), axis=1), np.inf)
            jb = int(np.argmin(worst))
            ab = int(np.argmin(col[jb])) if evaluated[jb] else 0
            rules_out = {}
            for j, r in enumerate(RULES):
                d = per_rule[r.name]
                v = d["values"][:, k]
                if d["reason"]:
                    rules_out[r.name] = {"status": d["reason"]}
                    continue
                if d["margins"] is not None:
                    a = int(np.argmin(d["margins"][:, k]))
                    status = "pass" if d["margins"][a, k] >= 0 else "FAIL"
                    marg = _finite(d["margins"][a, k])
                else:
                    a = int(np.argmin(v)) if r.higher_is_better else int(np.nanargmax(np.where(np.isnan(v), -np.inf, v)))
                    status, marg = "reported", None
                rules_out[r.name] = {"value": _finite(v[a]), "limit": _finite(d["limit"]), "unit": r.unit,
                                     "margin": marg, "anatomy": F.labels[a], "status": status}  # fmt: skip
            levels.append(LevelCheck(k + 1, cur, bool(worst[jb] >= 0), RULES[jb].name, float(worst[jb]),
                                     F.labels[ab], rules_out))  # fmt: skip
        safe = 0
        for lv in levels:
            if not lv.passed:
                break
            safe += 1
        independent = sorted({r.name for j, r in enumerate(RULES)
                              if r.level_independent and per_rule[r.name]["margins"] is not None
                              and (per_rule[r.name]["margins"] < 0).any()})  # fmt: skip
        top = p.levels_uA[safe - 1] if safe else p.levels_uA[0]
        checks.append(PresetCheck(p, levels, safe, independent, output_table(p, top, F, pf.device.compliance_voltage_V)))
    return ValidationReport(pf, labels, checks, solves, not_evaluated)


def solve_groups(
    pf: PresetsFile, *, progress: Progress = _nothing, comm: Any = None
) -> tuple[dict[str, FigureSet], dict[tuple[str, int], Any], list[AnatomyCase]]:
    """Solve the head once per anatomy case and distinct (waveform, session); figures per group.

    Returns:
        (figures by group key, CaseResult by (group key, anatomy index), the anatomy cases).
    """
    text, path = head_case_text(pf.device.electrode_head)
    head = parse_toml(text, path)
    cases = anatomy_cases(pf.device, pf.validation)
    groups: dict[str, list[Preset]] = {}
    for p in pf.presets:
        groups.setdefault(group_key(p), []).append(p)
    figures: dict[str, FigureSet] = {}
    results: dict[tuple[str, int], Any] = {}
    n = len(groups) * len(cases)
    done = 0
    for key, members in groups.items():
        # heating is solved at the group's top level: rises at lower levels scale by (I/I_ref)^2 <= 1
        reference = max(max(p.levels_A) for p in members)
        solved = []
        for i, a in enumerate(cases):
            done += 1
            progress(f"solve {done}/{n}: presets {', '.join(str(p.id) for p in members)} on {a.label}")
            case = parse_case(head_case_table(head, a, members[0], reference))
            results[(key, i)] = solve_case(case, comm=comm, progress=lambda t, a=a: progress(f"  {a.label}: {t}"))
            solved.append(results[(key, i)])
        figures[key] = figure_set([a.label for a in cases], solved, reference, pf.device.compliance_voltage_V)
    return figures, results, cases


def validate(pf: PresetsFile, *, progress: Progress = _nothing, comm: Any = None) -> tuple[ValidationReport, dict]:
    """Solve the head over the anatomy spread and evaluate every level of every preset.

    Returns:
        (the report, the solved CaseResults by (group key, anatomy index)).
    """
    t0 = time.perf_counter()
    figures, results, _ = solve_groups(pf, progress=progress, comm=comm)
    report = evaluate(pf, figures, solves=len(results))
    report.figures = figures
    report.seconds = time.perf_counter() - t0
    return report, results


def worst_cases(report: ValidationReport) -> Sequence[tuple[int, str, int]]:
    """(preset id, group key, anatomy index) of each preset's worst case at its top level."""
    out = []
    for p in report.presets:
        top = p.levels[-1]
        out.append((p.preset.id, group_key(p.preset), report.anatomy.index(top.worst_anatomy)))
    return out
