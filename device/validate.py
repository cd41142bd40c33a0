"""Validate every level of every preset against every rule, over the anatomy spread.

The physics is solved once per anatomy case (:class:`AnatomySolver`: one mesh, one electric
solve and one frequency response, every preset group's waveform and heating from it); which
anatomy cases are solved is the worst-case search's choice (:func:`solve_groups`). Every level is
then evaluated from the per-unit-current figures by linearity (:func:`evaluate`, no solve): a level
passes when every evaluated limit rule holds at safety factor x its current in every anatomy
case; its headroom per rule is I_max_safe / I - 1 (:mod:`emsim.device.rules`); a preset's
``max_safe_level`` is the number of its leading levels that pass.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from mpi4py import MPI

from .. import __version__
from ..errors import EmsimError, InputError
from ..meshes.morph import morph_layers
from ..meshes.patch import PatchMesh, build_patch_mesh
from ..models.case_file import parse_case, parse_toml
from ..pipeline import GeometryCache, GeometrySolution, solve_case
from ..solvers.electric.metrics import ElectricLeadField
from ..solvers.electric.problem import ElectricProblem
from .anatomy import (
    CONDUCTIVITY_RANGES_NOTE,
    AnatomyCase,
    corner_case,
    head_case_table,
    nominal_case,
)
from .figures import FigureSet, figure_set, stack_figures
from .presets import SEARCH_MESH, Preset, PresetsFile, head_case_text
from .rules import LIMITS, RULES, Rule, RuleContext
from .search import (
    BRUTE_FORCE_UP_TO,
    CONFIRM_BELOW,
    CONFIRM_TOP,
    Confirmation,
    confirm_worst,
    worst_corners,
)

__all__ = [
    "DEFINITIONS",
    "HEADROOM_DIGITS",
    "VALUE_DIGITS",
    "AnatomySolver",
    "CornerGroups",
    "LevelCheck",
    "PresetCheck",
    "ValidationReport",
    "evaluate",
    "group_key",
    "guidance_power_density_W_per_cm2",
    "max_safe_currents",
    "number_text",
    "output_table",
    "severities",
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
        passed: every evaluated limit rule holds at safety factor x this current in every
            anatomy case (equivalently: every headroom >= 0).
        binding_rule: the limit rule with the smallest headroom.
        headroom: that headroom, I_max_safe / I - 1 (a fraction of the level current; < 0 fails).
        worst_anatomy: the anatomy case where the binding rule is worst.
        rules: per rule: value at the level current and at safety factor x it (worst case),
            limit, unit, I_max_safe [uA], headroom, anatomy, status, how it scales with I.
    """

    level: int
    current_uA: int
    passed: bool
    binding_rule: str
    headroom: float
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
    max_safe_current: dict[str, dict[str, Any]] = field(default_factory=dict)

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
    anatomy_cases: dict[str, dict[str, Any]] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """Every level of every preset passes."""
        return all(lv.passed for p in self.presets for lv in p.levels)

    def rules_table(self) -> list[dict[str, Any]]:
        """Every rule with its kind, basis, unit, default limit, scaling and source."""
        rows = []
        for r in RULES:
            limit = LIMITS[r.limit_key].value if r.limit_key else None
            override = self.presets_file.limits.get(r.limit_key) if r.limit_key else None
            rows.append({
                "rule": r.name, "title": r.title, "kind": r.kind, "basis": r.basis, "unit": r.unit,
                "limit": _number(override if override is not None else limit) if r.limit_key else None,
                "limit_key": r.limit_key, "scales_with_current": r.scaling,
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
            "definitions": DEFINITIONS,
            "anatomy_cases": self.anatomy,
            "anatomy_search": self.search,
            "conductivity_spread": CONDUCTIVITY_RANGES_NOTE,
            "solves": self.solves,
            "rules": self.rules_table(),
            "presets": [
                {
                    "id": p.preset.id, "name": p.preset.name, "max_safe_level": p.max_safe_level,
                    "max_safe_current_uA": p.max_safe_current_uA, "exportable": p.exportable,
                    "level_independent_failures": p.level_independent_failures,
                    "max_safe_current_by_rule": p.max_safe_current,
                    "output_table_510k": p.output_table,
                    "levels": [
                        {"level": lv.level, "current_uA": lv.current_uA, "pass": lv.passed,
                         "binding_rule": lv.binding_rule, "headroom": _number(lv.headroom, HEADROOM_DIGITS),
                         "binding_anatomy": self.anatomy_cases.get(lv.worst_anatomy, {"label": lv.worst_anatomy}),
                         "rules": lv.rules}
                        for lv in p.levels
                    ],
                }
                for p in self.presets
            ],
        }  # fmt: skip


#: Significant digits of every figure written (values, limits, currents): enough for a figure
#: solved to about 1e-4, few enough that a re-solve's last-digit noise never shows (byte-identical).
VALUE_DIGITS = 6
#: Significant digits of a headroom (a fraction of current: 3-4 digits are what it deserves).
HEADROOM_DIGITS = 4

#: What the figures of a validation mean (written into validation.json).
DEFINITIONS = {
    "safety_factor": "a level passes a rule when the rule holds at safety_factor x the level current",
    "max_safe_current_uA": "per rule, the largest level current that passes it: the current at which the rule's "
    "value reaches its limit, divided by the safety factor (worst anatomy case). 'inf': the rule never binds "
    "(independent of the current and within its limit, a zero coefficient, or no finite limit)",
    "headroom": "max_safe_current / level current - 1: the fraction by which the level current could rise before "
    "the rule fails (>= 0 passes, < 0 fails), comparable across rules whatever their power law",
    "rms_current_density": "r.m.s. at the plateau of the on/off cycle (the pulse train while on), at the simulated "
    "local peak (1 mm disc at the pad rim) of the worst pad; the pad mean is reported in the 510(k) table",
    "value": "the rule's figure at the level current (worst anatomy case); value_at_safety_factor at safety_factor "
    "x the level current, the figure the limit is compared with",
    "report_rules": "report rules (efficacy, comfort and the others of kind 'report') never fail a level and are not "
    "searched: their worst anatomy case is the worst over the cases solved on the validation mesh (the limit rules' "
    "search; with search_mesh = 'coarse', the corners confirmed, among them each report rule's top corners of the "
    "search mesh's ranking), a bound from those cases, not the worst of the spread (another search, solving other "
    "corners, may report another value)",
}


def _number(x: Any, digits: int = VALUE_DIGITS) -> float | str | None:
    """A float rounded to ``digits`` significant digits (repr-stable), or "inf"/"-inf"/"nan"."""
    if x is None:
        return None
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return float(f"{x:.{digits}g}") + 0.0


number_text = _number  # public: the export writes its floats the same way


def _safety(r: Rule) -> str:
    return {
        "linear": "value proportional to I: I_limit = limit / coefficient",
        "quadratic": "value proportional to I^2: I_limit = sqrt(limit / coefficient)",
        "monotone": "value increasing in I: solved for I (closed form or bisection)",
        "none": "independent of the current: holds at every level or at none",
    }[r.scaling]


def _unbounded_reason(r: Rule, F: FigureSet, limit: float, i_safe: float) -> str | None:
    """Why a rule's I_max_safe is inf or 0 (a reader must never meet a bare "inf")."""
    if math.isinf(i_safe):
        if math.isinf(limit):
            return "inf: no finite limit is set (reported only; set one in [limits] to enforce it)"
        if r.scaling == "none":
            return "inf: independent of the current and within its limit at every level"
        return "inf: the figure is 0 at every current (e.g. no d.c. component in a charge-balanced waveform)"
    if i_safe == 0.0:
        if r.scaling == "none":
            return "0: independent of the current and above its limit: fails at every level"
        return "0: above the limit at any current (or not computable)"
    return None


def _anatomy(F: FigureSet, index: int, same: bool) -> str:
    """The label of anatomy case ``index``, or that no case is worse (a figure the same in every case)."""
    return "every case (independent of the anatomy)" if same and F.n > 1 else F.labels[index]


def rule_limit_currents(r: Rule, F: FigureSet, ctx: RuleContext) -> np.ndarray | None:
    """I_limit [A] per anatomy case (the current at which the value reaches the limit); None: not evaluated."""
    if r.not_evaluated is not None and r.not_evaluated(F):
        return None
    limit = r.limit(ctx)
    if math.isnan(limit):
        return None
    out = r.limit_current_A(F, limit)
    return np.where(np.isnan(out), 0.0, out)  # a figure that cannot be computed (NaN) gives no safe current


def max_safe_currents(F: FigureSet, ctx: RuleContext, sf: float) -> np.ndarray:
    """I_max_safe [A] of every rule per anatomy case, shape (rule, anatomy); NaN where not evaluated."""
    out = np.full((len(RULES), F.n), np.nan)
    for j, r in enumerate(RULES):
        i = rule_limit_currents(r, F, ctx)
        if i is not None:
            out[j] = i / sf
    return out


def evaluate(
    pf: PresetsFile,
    figures: dict[str, FigureSet],
    *,
    solves: int = 0,
    anatomy_cases: dict[str, dict[str, Any]] | None = None,
    search: list[dict[str, Any]] | None = None,
) -> ValidationReport:
    """Evaluate every level of every preset from the per-unit figures of its group (no solve).

    A level passes a limit rule when the rule's value at safety factor x the level current is
    within the limit in every anatomy case (a direct check); its headroom is I_max_safe / I - 1
    with I_max_safe = I_limit / safety factor (the tests hold the two to each other).

    Args:
        pf: the presets file.
        figures: the figure set of each group (:func:`group_key`).
        solves: how many anatomy cases were solved (reported).
        anatomy_cases: each anatomy label's description (factor values), for the report.
        search: the worst-case search per site, for the report.
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
        by_rule: dict[str, dict[str, Any]] = {}
        for r in RULES:
            reason = r.not_evaluated(F) if r.not_evaluated else None
            if reason:
                not_evaluated[r.name] = reason
                per_rule[r.name] = {"reason": reason}
                by_rule[r.name] = {"status": reason}
                continue
            limit = r.limit(ctx)
            i_lim = rule_limit_currents(r, F, ctx)
            if i_lim is None:
                reason = f"not evaluated: no limit value ({limit})"
                not_evaluated[r.name] = reason
                per_rule[r.name] = {"reason": reason}
                by_rule[r.name] = {"status": reason}
                continue
            values = r.evaluate(F, current)
            at_sf = r.evaluate(F, current * sf)
            i_safe = i_lim / sf
            a = int(np.argmin(i_safe)) if not r.higher_is_better else int(np.argmax(i_safe))
            if r.kind == "limit":
                with np.errstate(invalid="ignore"):
                    holds = np.where(np.isnan(at_sf), False, at_sf <= limit)
            else:
                holds = None
            per_rule[r.name] = {"values": values, "at_sf": at_sf, "limit": limit, "i_safe": i_safe, "holds": holds,
                                "a": a, "i_lim": i_lim}  # fmt: skip
            # the same in every case to 1e-9: a figure that does not depend on the anatomy names no
            # corner picked by rounding (the pads' charge density: its area from each corner's
            # morphed mesh, or each group's own mesh, spread 3.3e-13 over the sample's 80 corners)
            span = np.abs(i_safe).max() if np.all(np.isfinite(i_safe)) else math.inf
            same = bool(np.all(i_safe == i_safe[0])) or bool(np.ptp(i_safe) <= 1e-9 * span)
            per_rule[r.name]["same"] = same and F.n > 1
            key = "max_safe_current_uA" if r.kind == "limit" else "threshold_current_uA"
            by_rule[r.name] = {
                key: _number((i_safe if r.kind == "limit" else i_lim)[a] * 1e6),
                "anatomy": _anatomy(F, a, same),
                "kind": r.kind, "scales_with_current": _safety(r),
            }  # fmt: skip
            why = _unbounded_reason(r, F, limit, i_safe[a])
            if why:
                by_rule[r.name]["note"] = why
        levels = []
        for k, cur in enumerate(p.levels_uA):
            rules_out: dict[str, dict[str, Any]] = {}
            worst_h, jb, ab = math.inf, None, 0
            jb_constant = False  # the binding rule so far is a passing current-independent one
            passed = True
            for r in RULES:
                d = per_rule[r.name]
                if "reason" in d:
                    rules_out[r.name] = {"status": d["reason"]}
                    continue
                i = cur * 1e-6
                if r.kind == "limit":
                    a = int(np.argmin(d["i_safe"]))
                    h = d["i_safe"][a] / i - 1.0
                    ok = bool(d["holds"][:, k].all())
                    passed &= ok
                    # the smallest headroom binds; a passing current-independent rule (the pad
                    # placement, the open-circuit voltage: headroom inf) only when nothing else is
                    # evaluated, since the level's current does not move it
                    constant = ok and r.scaling == "none"
                    if jb is None or h < worst_h or (h == worst_h and jb_constant and not constant):
                        worst_h, jb, ab, jb_constant = h, r.name, a, constant
                    status = "pass" if ok else "FAIL"
                    rules_out[r.name] = {
                        "value": _number(d["values"][a, k]), "value_at_safety_factor": _number(d["at_sf"][a, k]),
                        "limit": _number(d["limit"]), "unit": r.unit, "max_safe_current_uA": _number(d["i_safe"][a] * 1e6),
                        "headroom": _number(h, HEADROOM_DIGITS), "anatomy": _anatomy(F, a, d["same"]), "status": status,
                    }  # fmt: skip
                    continue
                # a reported figure: its worst case (the highest value; the lowest for efficacy) and the
                # current at which it crosses its threshold (no safety factor: it decides nothing)
                v = d["values"][:, k]
                vw = int(np.argmin(v)) if r.higher_is_better else int(np.nanargmax(np.where(np.isnan(v), -np.inf, v)))
                above = bool(v[vw] >= d["limit"])
                rules_out[r.name] = {
                    "value": _number(v[vw]), "threshold": _number(d["limit"]), "unit": r.unit,
                    "threshold_current_uA": _number(d["i_lim"][vw] * 1e6), "anatomy": _anatomy(F, vw, d["same"]),
                    "status": f"reported: {'at or above' if above else 'below'} the threshold",
                }  # fmt: skip
            # a real case even where the binding rule is the same in every case: the pictures show it
            levels.append(LevelCheck(k + 1, cur, passed, jb or "", float(worst_h), F.labels[ab], rules_out))
        safe = 0
        for lv in levels:
            if not lv.passed:
                break
            safe += 1
        independent = sorted({r.name for r in RULES if r.level_independent and r.kind == "limit"
                              and "holds" in per_rule[r.name] and not per_rule[r.name]["holds"].all()})  # fmt: skip
        top = p.levels_uA[safe - 1] if safe else p.levels_uA[0]
        checks.append(PresetCheck(p, levels, safe, independent, output_table(p, top, F, pf.device.compliance_voltage_V),
                                  by_rule))  # fmt: skip
    return ValidationReport(pf, labels, checks, solves, not_evaluated, anatomy_cases=dict(anatomy_cases or {}),
                            search=list(search or []))  # fmt: skip


def output_table(preset: Preset, current_uA: int, F: FigureSet, compliance_V: float) -> dict[str, Any]:
    """The 510(k) output table row (FDA 1999 guidance, shared/PHYSICS.md) at one level, worst case.

    Current control: into a load R the current is the set current while I R is within the
    compliance voltage, else compliance / R. The average power density is the guidance's figure,
    I_rms^2 x 500 ohm / the smallest pad area (r.m.s. at the plateau); the simulated one (the
    model's cycle-mean Joule power over the worst pad's area) is given beside it.
    """
    w = preset.waveform_model()
    i = current_uA * 1e-6
    n = _number
    row: dict[str, Any] = {"waveform": preset.waveform, "level_current_uA": current_uA}
    for r_ohm, key in ((500, "500ohm"), (2000, "2kohm"), (10000, "10kohm")):
        v = min(i * r_ohm, compliance_V)
        row[f"max_voltage_{key}_V"] = n(v)
        row[f"max_current_{key}_mA"] = n(v / r_ohm * 1e3)
    phases = w.phases()
    row["pulse_duration_us"] = n((phases[-1][1] - phases[0][0]) * 1e6)
    row["phase_width_us"] = preset.pulse_width_us
    row["frequency_Hz"] = preset.frequency_Hz
    row["net_charge_per_pulse_uC"] = n(i * sum(a * (t1 - t0) for t0, t1, a in phases) * 1e6 + 0.0)
    i500 = min(i, compliance_V / 500.0)
    row["max_phase_charge_500ohm_uC"] = n(i500 * (phases[0][1] - phases[0][0]) * 1e6)
    row["max_rms_current_density_mA_per_cm2"] = n(float(F.rms_density_peak_mA_per_cm2_per_A.max() * i))
    row["mean_rms_current_density_mA_per_cm2"] = n(float(F.rms_density_mean_mA_per_cm2_per_A.max() * i))
    mean_abs = i * w.pulse_rate_Hz * sum(abs(a) * (t1 - t0) for t0, t1, a in phases) * w.mean_envelope
    row["max_average_current_mA"] = n(mean_abs * 1e3)
    row["max_average_power_density_W_per_cm2"] = n(guidance_power_density_W_per_cm2(F, i))
    row["simulated_average_power_density_W_per_cm2"] = n(float(F.power_density_W_per_cm2_per_A2.max() * i * i))
    return row


def guidance_power_density_W_per_cm2(F: FigureSet, current_A: float) -> float:
    """The FDA guidance's average power density: I_rms^2 x 500 ohm / the smallest pad area [W/cm^2]."""
    return (F.rms_ratio * current_A) ** 2 * 500.0 / F.pad_area_min_cm2


class AnatomySolver:
    """Solve one anatomy case of a head for every preset group: ``solver(case) -> {group key: FigureSet}``.

    Each site is meshed once, at its nominal stack (the first case of the site); every other case
    of the site moves that mesh's nodes to its layer thicknesses (:func:`emsim.meshes.morph.morph_layers`:
    same cells, same dofs, same sparsity), and its contact R and C and tissue conductivities enter
    only the coefficients of the forms: no anatomy case re-meshes. Per case: one electric solve,
    one frequency response and one heat basis, shared by every preset group (the response per unit
    current does not depend on the waveform: every group's waveform is synthesised from it through
    :func:`emsim.pipeline.solve_case`'s ``cache``; every level's heating is a combination of the
    basis runs). Every group is solved at the same reference current (the largest level of the
    file), so the cached response is valid for all of them; rises at other currents scale by
    (I / I_ref)^2 (exact). This callable is the unit the worst-case search evaluates.

    Attributes:
        search_mesh: False: the head's own mesh, the one the verdict is computed on; True: the
            worst-case search's cheap model, the head's mesh made coarser by
            :data:`emsim.device.presets.SEARCH_MESH` (:func:`solve_groups`).
        profile: per solved case, its label and the seconds of each step (``morph_s`` or
            ``mesh_s``, ``electric_s``, ``waveform_s``, ``thermal_s``, ``total_s``).
    """

    def __init__(
        self, pf: PresetsFile, *, comm: Any = None, progress: Progress = _nothing, keep_results: bool = True,
        search_mesh: bool = False,
    ) -> None:  # fmt: skip
        text, path = head_case_text(pf.device.electrode_head)
        self.head = parse_toml(text, path)
        if search_mesh:
            # the search's cheap model: the head's mesh with SEARCH_MESH's sizes and layer cells
            mesh = self.head.setdefault("mesh", {})
            # (within the case's range: a head already at its largest sizes keeps them)
            mesh["size_factor"] = min(float(mesh.get("size_factor", 1.0)) * SEARCH_MESH["size_factor"], 20.0)
            mesh["cells_across_layer"] = min(float(mesh.get("cells_across_layer", 10.0)), SEARCH_MESH["cells_across_layer"])
        self.search_mesh = search_mesh
        self.pf = pf
        self.comm = comm or MPI.COMM_WORLD
        self.progress = progress
        self.keep_results = keep_results
        self.groups: dict[str, list[Preset]] = {}
        for p in pf.presets:
            self.groups.setdefault(group_key(p), []).append(p)
        self.reference_A = max(max(p.levels_A) for p in pf.presets)
        self.solves = 0
        self.seconds: list[float] = []
        self.profile: list[dict[str, Any]] = []
        self._patches: dict[str | None, PatchMesh] = {}

    def _patch(self, anatomy: AnatomyCase, case: Any, timings: dict[str, float]) -> PatchMesh:
        """The site's mesh with its nodes at ``case``'s layer thicknesses (meshed once per site)."""
        t0 = time.perf_counter()
        patch = self._patches.get(anatomy.site)
        if patch is None:
            # mesh the site at its nominal stack (not at the first corner's: the morph then stretches
            # every layer by at most its range end over the nominal)
            nominal = AnatomyCase(anatomy.site, anatomy.factors)
            members = next(iter(self.groups.values()))
            base = parse_case(head_case_table(self.head, nominal, members[0], self.reference_A))
            self.progress(f"meshing {nominal.label} (once for the site)")
            patch = build_patch_mesh(base, self.comm)
            timings["mesh_s"] = time.perf_counter() - t0
            t0 = time.perf_counter()
        patch = morph_layers(patch, [layer.thickness_m for layer in case.layers])
        timings["morph_s"] = time.perf_counter() - t0
        self._patches[anatomy.site] = patch
        return patch

    def __call__(self, anatomy: AnatomyCase) -> tuple[dict[str, FigureSet], dict[str, Any]]:
        """(figure set by group key, CaseResult by group key) of one anatomy case."""
        t0 = time.perf_counter()
        self.solves += 1
        self.progress(f"solve {self.solves}: {anatomy.label}")
        cache = GeometryCache()
        figures, results = {}, {}
        timings: dict[str, float] = {}
        shared: GeometrySolution | None = None
        for key, members in self.groups.items():
            case = parse_case(head_case_table(self.head, anatomy, members[0], self.reference_A))
            if cache.get(case) is None:
                if shared is None:
                    patch = self._patch(anatomy, case, timings)
                    t1 = time.perf_counter()
                    problem = ElectricProblem(case, patch)
                    solutions = problem.channel_unit_solutions()
                    shared = GeometrySolution(patch, problem, solutions, ElectricLeadField.build(problem, solutions))
                    timings["electric_s"] = time.perf_counter() - t1
                    cache.put(case, shared)
                else:  # another session length: the same fields and frequency response, its own heat basis
                    cache.put(case, dataclasses.replace(shared, heat_basis=None))

            def report(text: str, label: str = anatomy.label) -> None:
                self.progress(f"  {label}: {text}")

            r = solve_case(case, comm=self.comm, cache=cache, progress=report)
            solved = r.solver.timings_s if r.solver is not None else {}
            for step in ("waveform_s", "thermal_s"):
                timings[step] = timings.get(step, 0.0) + solved.get(step, 0.0)
            figures[key] = figure_set([anatomy.label], [r], self.reference_A, self.pf.device.compliance_voltage_V)
            if self.keep_results:
                results[key] = r
        cache.close()  # the heat basis's PETSc objects; the results stay readable
        self.seconds.append(time.perf_counter() - t0)
        timings["total_s"] = self.seconds[-1]
        self.profile.append({"anatomy": anatomy.label, **{k: round(v, 3) for k, v in timings.items()}})
        log.info("anatomy case %s: %s", anatomy.label, self.profile[-1])
        return figures, results


def _portable(err: Exception) -> Exception:
    """``err`` if it survives pickling (to travel to the other ranks), else an error with its message."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:  # noqa: BLE001  (an exception class with its own __init__ signature)
        return EmsimError(str(err)) if isinstance(err, EmsimError) else RuntimeError(f"{type(err).__name__}: {err}")


class CornerGroups:
    """The ranks split into groups that solve a batch of anatomy cases side by side (MPI).

    The corners of one search batch are independent (:mod:`emsim.device.search`), and a corner
    (some 10^4-10^5 dofs) is too small to scale well over many ranks: so the communicator is split
    (``comm.Split``) into ``comm.size // ranks_per_corner`` groups, each with its own
    :class:`AnatomySolver` on its sub-communicator (each group meshes a site once, then morphs),
    and the batch's corners are dealt round-robin (corner i to group i mod groups: the corners
    cost about the same). Each group's figures are gathered to every rank, in the batch's order;
    no CaseResult leaves its group (they hold DOLFINx objects): the caller re-solves on the whole
    communicator what needs one. Collective over ``comm``: every rank calls :meth:`solve` with
    the same cases.

    Attributes:
        size: number of groups.
        ranks_per_group: ranks in each group.
        index: this rank's group.
        solver: this group's anatomy solve (figures only, ``keep_results=False``).
        screening: this group's solve on the search's coarser mesh (``search_mesh``; else the
            ``solver`` itself).
    """

    def __init__(
        self, pf: PresetsFile, comm: Any, ranks_per_corner: int, *, progress: Progress = _nothing, search_mesh: bool = False
    ) -> None:  # fmt: skip
        self.comm = comm
        self.size = comm.size // ranks_per_corner
        self.ranks_per_group = ranks_per_corner
        self.index = comm.rank // ranks_per_corner
        self.sub = comm.Split(color=self.index, key=comm.rank)

        def report(text: str) -> None:
            progress(f"[group {self.index + 1} of {self.size}] {text}")

        self.solver = AnatomySolver(pf, comm=self.sub, progress=report, keep_results=False)
        self.screening = (
            AnatomySolver(pf, comm=self.sub, progress=report, keep_results=False, search_mesh=True)
            if search_mesh else self.solver
        )  # fmt: skip

    def solve(self, cases: Sequence[AnatomyCase], *, screening: bool = False) -> list[dict[str, FigureSet]]:
        """The figures by group key of each case (on every rank), each case solved by one group.

        ``screening``: solved by the search's cheap model (``screening``, on the coarser mesh).
        """
        solver = self.screening if screening else self.solver
        mine: list[tuple[int, dict[str, FigureSet] | None, Exception | None]] = []
        for i in range(self.index, len(cases), self.size):
            try:
                figures, _ = solver(cases[i])
            except Exception as err:  # noqa: BLE001  (raised on every rank below, not to hang the others)
                mine.append((i, None, _portable(err)))
                break
            mine.append((i, figures, None))
        # wait for the other groups asleep, not spinning in the gather: an MPI rank polls at full
        # CPU, which on shared or oversubscribed cores slows the groups still solving
        done = self.comm.Ibarrier()
        while not done.Test():
            time.sleep(0.01)
        rows = [row for part in self.comm.allgather(mine if self.sub.rank == 0 else []) for row in part]
        failed = sorted(((i, err) for i, _, err in rows if err is not None), key=lambda t: t[0])
        if failed:
            raise failed[0][1]
        by_index = {i: figures for i, figures, _ in rows}
        return [by_index[i] for i in range(len(cases))]

    def close(self) -> None:
        """Free the sub-communicator."""
        self.sub.Free()


def severities(pf: PresetsFile, figures: dict[str, FigureSet], kind: str = "limit") -> np.ndarray:
    """The search objectives of one anatomy case, per (preset, rule of ``kind``); larger is worse.

    1 / I_limit for a rule whose value grows with the current (the corner that reaches the limit
    at the least current is the worst); I_limit itself for a report rule that is better higher
    (efficacy: the corner that needs the most current for the target volume is the worst).

    Raises:
        ValueError: ``kind`` is not "limit" or "report".
    """
    if kind not in ("limit", "report"):
        raise ValueError(f"severities: kind {kind!r} is not 'limit' or 'report'")
    out = []
    for p in pf.presets:
        F = figures[group_key(p)]
        ctx = RuleContext(pf.device, p, pf.limits)
        for r in RULES:
            if r.kind != kind:
                continue
            i = rule_limit_currents(r, F, ctx)
            with np.errstate(divide="ignore"):
                if i is None:
                    out.append(math.nan)
                elif r.higher_is_better:
                    out.append(min(float(i[0]), 1e300))
                else:
                    out.append(min(float(1.0 / i[0]), 1e300))
    return np.array(out)


class _SiteSearch:
    """The worst-corner search of one site: the corners solved, their objectives and fields kept.

    Collective over ``comm``. Holds the solved fields (meshes, functions: the pictures' source)
    only of the corners that are the worst so far for some objective, so memory stays a few
    cases, not every corner.
    """

    def __init__(
        self, pf: PresetsFile, nominal: AnatomyCase, solver: Any, groups: Callable[[], CornerGroups | None],
        progress: Progress = _nothing, screening: Any = None,
    ) -> None:  # fmt: skip
        self.pf, self.nominal, self.solver, self.groups = pf, nominal, solver, groups
        self.progress = progress
        # the search ranks the corners on the cheap model, then confirms on the solver's: only
        # where it screens (a brute-force spread is solved on the validation mesh directly)
        self.screening: Any = screening if 2 ** len(nominal.factors) > BRUTE_FORCE_UP_TO else None
        self.screened: dict[tuple[bool, ...], np.ndarray] = {}
        self.screened_report: dict[tuple[bool, ...], np.ndarray] = {}
        self.started = time.perf_counter()
        self.solved: dict[tuple[bool, ...], tuple[dict[str, FigureSet], dict[str, Any]]] = {}
        self.seen: dict[tuple[bool, ...], np.ndarray] = {}
        self.in_groups: set[tuple[bool, ...]] = set()
        self.worst_in_groups: list[tuple[bool, ...]] = []  # set by run()
        self.record: dict[str, Any] = {}

    def _keep(self, levels: tuple[bool, ...], figs: dict[str, FigureSet], res: dict[str, Any]) -> np.ndarray:
        """Record a solved corner; drop the fields of every corner no longer worst for anything."""
        self.seen[levels] = y = severities(self.pf, figs)
        self.solved[levels] = (figs, res)
        worst_so_far = set()
        for j in range(len(y)):
            col = {c: v[j] for c, v in self.seen.items() if not np.isnan(v[j])}
            if col:
                worst_so_far.add(max(col, key=lambda corner: col[corner]))
        for c, (f, r) in self.solved.items():
            if r and c not in worst_so_far:
                self.solved[c] = (f, {})
        return y

    def announce(self, what: str, count: int) -> None:
        """One progress line per batch of the search: what it is, and where the search stands (its length is not known ahead)."""
        seconds = time.perf_counter() - self.started
        done = len(self.screened) or len(self.seen)  # with a search mesh, the head's corners are among its
        pace = f", {seconds / done:.0f} s wall a corner" if done and not self.screened else ""
        where = f" on the search mesh, {len(self.seen)} of them again on the head's" if self.screened else ""
        self.progress(
            f"search {self.nominal.site or 'patch'}: {count} corner(s): {what}; "
            f"{done} of {2 ** len(self.nominal.factors)} corners solved so far{where} in {seconds / 60:.1f} min{pace}"
        )

    def evaluate_many(self, corners: Sequence[tuple[bool, ...]]) -> list[np.ndarray]:
        """The objectives of a batch of independent corners (in parallel groups where there are)."""
        groups = self.groups() if len(corners) > 1 else None
        if groups is not None:
            figures = groups.solve([corner_case(self.nominal, c) for c in corners])
            self.in_groups.update(corners)
            return [self._keep(c, f, {}) for c, f in zip(corners, figures, strict=True)]
        out = []
        for c in corners:  # one by one: each corner's fields dropped as soon as another is worse
            figs, res = self.solver(corner_case(self.nominal, c))
            out.append(self._keep(c, figs, res))
        return out

    def evaluate_screening(self, corners: Sequence[tuple[bool, ...]]) -> list[np.ndarray]:
        """The objectives of a batch of corners on the search's cheap model (figures not kept)."""
        groups = self.groups() if len(corners) > 1 else None
        cases = [corner_case(self.nominal, c) for c in corners]
        if groups is not None:
            figures = groups.solve(cases, screening=True)
        else:
            figures = [self.screening(case)[0] for case in cases]
        out = [severities(self.pf, f) for f in figures]
        self.screened.update(zip(corners, out, strict=True))
        self.screened_report.update((c, severities(self.pf, f, "report")) for c, f in zip(corners, figures, strict=True))
        return out

    def confirm(self, screened: Sequence[tuple[bool, ...]]) -> Confirmation:
        """Solve on the validation mesh the corners that could be the worst (:func:`confirm_worst`).

        Ranked by the limit rules (the verdict: bounded, every screened corner that could be
        worse at the largest ratio seen is solved) and the report rules too (efficacy, comfort:
        their worst is over the corners solved on the validation mesh, so each one's top corners
        of the search mesh are among them; not bounded).
        """

        def accurate(corners: Sequence[tuple[bool, ...]]) -> list[np.ndarray]:
            limit = self.evaluate_many(corners)
            return [np.concatenate([y, severities(self.pf, self.solved[c][0], "report")])
                    for c, y in zip(corners, limit, strict=True)]  # fmt: skip

        both = {c: np.concatenate([self.screened[c], self.screened_report[c]]) for c in screened}
        limit = len(next(iter(self.screened.values())))  # the limit rules' objectives come first: bounded
        return confirm_worst(both, accurate, bounded=range(limit), announce=self.announce)

    def run(self) -> tuple[list[AnatomyCase], list[dict[str, FigureSet]], list[dict[str, Any]], dict[str, Any]]:
        """Search the site: (its cases, their figures, the worst corners' results, its record).

        A worst corner solved in a parallel group has no results here (empty): :meth:`again`
        solves the ones the pictures need once the verdict names them.
        """
        nominal = self.nominal
        k = len(nominal.factors)
        if self.screening is None:
            found = worst_corners(k, evaluate_many=self.evaluate_many, announce=self.announce)
            worst_of = found.worst
        else:
            found = worst_corners(k, evaluate_many=self.evaluate_screening, announce=self.announce)
            confirmed = self.confirm(list(found.values))
            worst_of = confirmed.worst[: len(found.worst)]  # the limit rules' (the report rules' follow)
        worst = {c for c in worst_of if c is not None}
        self.worst_in_groups = [c for c in dict.fromkeys(worst_of) if c is not None and c in self.in_groups]
        cases = [corner_case(nominal, levels) for levels in self.solved]
        figures = [figs for figs, _ in self.solved.values()]
        results = [res if levels in worst else {} for levels, (_, res) in self.solved.items()]
        limit_rules = [(p, r) for p in self.pf.presets for r in RULES if r.kind == "limit"]
        record = {
            "site": nominal.site, "method": found.method, "corners_total": 2 ** k, "solves": len(self.solved),
            "factors": [{"name": f.name, "kind": f.kind, "min": _number(f.low), "max": _number(f.high), "unit": f.unit,
                         "source": f.source} for f in nominal.factors],
            "worst_corner_by_rule": {f"preset {p.id} {r.name}": corner_case(nominal, c).label
                                     for (p, r), c in zip(limit_rules, worst_of, strict=True) if c is not None},
        }  # fmt: skip
        if self.screening is not None:
            rules = [f"preset {p.id} {r.name}" for p, r in limit_rules]
            # the confirmation ranks the report rules too (severities(..., "report"), after the limit rules)
            ranked = rules + [f"preset {p.id} {r.name}" for p in self.pf.presets for r in RULES if r.kind == "report"]
            record["method"] = (f"{found.method} on the search mesh, then the corners that could be the worst solved "
                                "again on the validation mesh (the verdict's)")  # fmt: skip
            record["search_mesh"] = {
                "mesh": {**SEARCH_MESH, "definition": "the head's [mesh] with every target size times size_factor and "
                         "cells_across_layer cells across each tissue layer"},
                "corners_solved": found.evaluations,
                "confirmed_top": CONFIRM_TOP, "confirmed_below": CONFIRM_BELOW, "confirm_rounds": confirmed.rounds,
                "worst_corner_by_rule_on_search_mesh": {
                    rule: corner_case(nominal, c).label for rule, c in zip(rules, found.worst, strict=True) if c is not None},
                "rank_on_search_mesh_of_the_worst_by_rule": {
                    rule: rank for rule, rank in zip(ranked, confirmed.rank, strict=True) if rank is not None},
                "unconfirmed_bound_by_rule": {
                    rule: _number(b) for rule, b in zip(ranked, confirmed.bound, strict=True) if b is not None},
                "ratio_validation_to_search_mesh_by_rule": {
                    rule: [_number(rr[0]), _number(rr[1])] for rule, rr in zip(ranked, confirmed.ratio_range, strict=True)
                    if rr is not None},
                "definition": (
                    "the search ranks the corners on the search mesh; per rule its top corners (confirmed_top) are "
                    "solved on the validation mesh, and every corner of its ranking down to confirmed_below past the "
                    "worst found; then, per limit rule, every corner the search solved whose search-mesh figure times "
                    "the largest ratio (validation / search mesh) seen exceeds the worst found, until none does. "
                    "The verdict uses the validation mesh's corners only. rank 0: the search mesh's worst is the "
                    "validation mesh's; the ratio range: validation / search mesh figure over the confirmed corners; "
                    "the unconfirmed bound: the largest search-mesh figure of a screened corner not confirmed times "
                    "the largest ratio, over the verdict's worst (<= 1 for every limit rule: no corner the search "
                    "solved could be worse unless its ratio exceeds every ratio seen; report rules are not bounded). "
                    "Corners the search did not solve are not covered, as in any search; search_mesh = \"head\" "
                    "in [validation] solves every searched corner on the validation mesh"),
            }  # fmt: skip
        groups = self.groups() if self.in_groups else None
        if groups is not None:
            record.update({
                "parallel_groups": groups.size, "ranks_per_group": groups.ranks_per_group,
                "solved_in_groups": len(self.in_groups), "batches": found.batches,
                "solved_again_on_all_ranks": 0,
            })  # fmt: skip
        self.record = record
        return cases, figures, results, record

    def again(self, labels: set[str] | None, progress: Progress, comm: Any) -> dict[str, dict[str, Any]]:
        """Solve on every rank the worst corners solved in a group whose label is in ``labels``.

        None: every such corner. Returns the results by anatomy label; the record counts them.
        """
        out = {}
        for c in self.worst_in_groups:
            case = corner_case(self.nominal, c)
            if labels is not None and case.label not in labels:
                continue
            progress(f"worst corner {case.label} again on all {comm.size} ranks (pictures)")
            out[case.label] = self.solver(case)[1]
        if "solved_again_on_all_ranks" in self.record:
            self.record["solved_again_on_all_ranks"] = len(out)
        return out


def solve_groups(
    pf: PresetsFile,
    *,
    progress: Progress = _nothing,
    comm: Any = None,
    solver: Any = None,
    ranks_per_corner: int = 1,
    pictured: Callable[[dict[str, FigureSet], list[AnatomyCase]], set[str]] | None = None,
    screening: Any = None,
) -> tuple[dict[str, FigureSet], dict[tuple[str, int], Any], list[AnatomyCase], list[dict[str, Any]]]:
    """Solve the anatomy cases the spread needs and stack each group's figures over them.

    With ``spread = "nominal"``: each site's nominal case. With ``"corners"``: each site's worst
    corner per (preset, limit rule), searched (:func:`emsim.device.search.worst_corners`); every
    corner solved on the way is kept in the figures (the evaluation takes the worst over them).
    With ``[validation] search_mesh = "coarse"`` (the default) and more corners than brute force
    takes, the search ranks them on the search mesh (:data:`emsim.device.presets.SEARCH_MESH`) and
    :func:`emsim.device.search.confirm_worst` solves again on the head's mesh those that could be
    the worst: only these are in the figures (the search mesh's are not). A given ``solver`` and
    an imported mesh search on the head's mesh.

    Sweeps across ranks: the search hands its corners over in batches of independent ones (the
    screening runs, the predictions, one step's neighbours). On more than one rank, a batch of
    more than one corner is solved by :class:`CornerGroups` (``comm.size // ranks_per_corner``
    groups side by side, each corner on one group's sub-communicator; figures gathered to every
    rank); a batch of one corner, and every case on one rank, is solved on the whole communicator
    as before. The CaseResults of a group's corners stay in the group: after the search, each
    worst corner solved in a group is solved again on the whole communicator, for its results
    (pictures), exactly as a serial search keeps them; its figures stay the group's, the ones the
    search ranked (the two agree to the solvers' round-off: the same mesh and solvers on other
    ranks); with ``pictured``, only those whose label it returns (the cases the pictures show;
    the others' results are not needed). On one rank nothing changes.

    Args:
        pf: the presets file.
        progress: called with a short text at the start of each solve.
        comm: MPI communicator.
        solver: the anatomy solve (default :class:`AnatomySolver`): ``solver(case) -> (figures
            by group, results by group)``. A solver given here solves every case, one by one.
        ranks_per_corner: ranks per group (a divisor of ``comm.size``). Default 1: one corner per
            rank, since a corner is too small to gain much from more ranks; larger for corners
            whose memory a single rank cannot hold.
        pictured: ``(figures by group key, anatomy cases) -> labels`` of the anatomy cases whose
            results are wanted (default: every worst corner's).
        screening: the search mesh's anatomy solve, same interface as ``solver`` (default: an
            :class:`AnatomySolver` on the search mesh when ``[validation] search_mesh = "coarse"``
            and no ``solver`` is given; none with a given ``solver``). With a given one every case
            is solved one by one, as with a given ``solver``.

    Returns:
        (figures by group key, CaseResult by (group key, anatomy index) for the worst corners,
        the anatomy cases in figure order, the search record per site).
    """
    comm = comm or MPI.COMM_WORLD
    if not isinstance(ranks_per_corner, int) or ranks_per_corner < 1 or comm.size % ranks_per_corner:
        raise InputError("ranks_per_corner", ranks_per_corner, f"a divisor of the number of ranks ({comm.size})")
    parallel = solver is None and screening is None and comm.size // ranks_per_corner > 1
    coarse = pf.validation.search_mesh == "coarse" and solver is None  # a given solver solves every case
    solver = solver or AnatomySolver(pf, comm=comm, progress=progress)
    if coarse and "file" in solver.head.get("mesh", {}):
        coarse = False  # an imported mesh has no sizes to change
    if coarse and screening is None:
        screening = AnatomySolver(pf, comm=comm, progress=progress, keep_results=False, search_mesh=True)
    made: list[CornerGroups] = []

    def groups() -> CornerGroups | None:
        """The parallel groups, split on first use (None on one group)."""
        if parallel and not made:
            made.append(CornerGroups(pf, comm, ranks_per_corner, progress=progress, search_mesh=coarse))
            progress(f"corners in {made[0].size} parallel groups of {ranks_per_corner} rank(s)")
        return made[0] if made else None

    cases: list[AnatomyCase] = []
    per_case: list[dict[str, FigureSet]] = []
    results_by_case: list[dict[str, Any]] = []
    record: list[dict[str, Any]] = []
    searches: list[_SiteSearch] = []
    try:
        for site in pf.device.sites or (None,):
            nominal = nominal_case(pf.device, pf.validation, site)
            if pf.validation.spread == "nominal":
                figs, res = solver(nominal)
                cases.append(nominal)
                per_case.append(figs)
                results_by_case.append(res)
                record.append({"site": site, "method": "nominal only (spread = \"nominal\"): no worst case searched",
                               "factors": [], "corners_total": 1, "solves": 1})  # fmt: skip
                continue
            search = _SiteSearch(pf, nominal, solver, groups, progress, screening)
            searches.append(search)
            site_cases, site_figures, site_results, site_record = search.run()
            cases += site_cases
            per_case += site_figures
            results_by_case += site_results
            record.append(site_record)
        figures = {key: stack_figures([f[key] for f in per_case]) for key in per_case[0]}
        if any(search.worst_in_groups for search in searches):
            # a worst corner solved in a group: solved again on every rank, for its pictures
            labels = pictured(figures, cases) if pictured is not None else None
            index = {case.label: i for i, case in enumerate(cases)}
            for search in searches:
                for label, res in search.again(labels, progress, comm).items():
                    results_by_case[index[label]] = res
    finally:
        for g in made:
            g.close()
    results = {(key, i): r for i, res in enumerate(results_by_case) for key, r in res.items()}
    return figures, results, cases, record


def validate(
    pf: PresetsFile, *, progress: Progress = _nothing, comm: Any = None, solver: Any = None, ranks_per_corner: int = 1
) -> tuple[ValidationReport, dict]:
    """Solve the head over the anatomy spread and evaluate every level of every preset.

    Collective over ``comm``; on more than one rank the corners of the search are solved in
    parallel groups of ``ranks_per_corner`` ranks (:func:`solve_groups`).

    Returns:
        (the report, the solved CaseResults of the worst corners by (group key, anatomy index)).
    """
    t0 = time.perf_counter()
    evaluated: list[tuple[dict[str, FigureSet], ValidationReport]] = []

    def pictured(figures: dict[str, FigureSet], cases: list[AnatomyCase]) -> set[str]:
        """The anatomy of each preset's top level: the one its worst-case picture shows."""
        evaluated.append((figures, evaluate(pf, figures)))
        return {p.levels[-1].worst_anatomy for p in evaluated[-1][1].presets}

    figures, results, cases, record = solve_groups(pf, progress=progress, comm=comm, solver=solver,
                                                   ranks_per_corner=ranks_per_corner, pictured=pictured)  # fmt: skip
    described = {a.label: a.describe() for a in cases}
    if evaluated and evaluated[-1][0] is figures:
        # the figures the pictures were chosen from are the final ones (the re-solves add fields,
        # not figures): their evaluation, not a second one (10 s on the sample's 66 corners)
        report = dataclasses.replace(evaluated[-1][1], solves=len(cases), anatomy_cases=described, search=record)
    else:
        report = evaluate(pf, figures, solves=len(cases), anatomy_cases=described, search=record)
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
