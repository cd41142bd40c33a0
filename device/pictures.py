"""The pictures of a preset's validation: the therapeutic window and the headroom heatmap.

Both take plain inputs (level currents, thresholds as (min, max) ranges over the anatomy spread,
the largest safe current per rule) and return a :class:`matplotlib.figure.Figure`; they write
nothing (the output layer saves them). Headroom in current is I_max_safe / I_level - 1: +0.5 means
the level could rise by half before the rule fails, -0.2 that it must drop by 20 %.

- :func:`therapeutic_window_figure`: current on the horizontal axis; the sensory threshold, the
  motor threshold (the target volume activated) and the largest safe current (with its binding
  rule) as ranges over the anatomy spread; each level a dot, green when it passes, red when it
  fails. The levels that matter sit between the motor threshold and the safe maximum.
- :func:`headroom_heatmap`: level x rule, each cell coloured by its headroom in current, the
  binding cell of each level outlined; the binding anatomy per level in the caption.

:func:`window_inputs` reads those inputs from a validation: the largest safe current of every
limit rule in every anatomy case is the verdict's own (:func:`emsim.device.validate.max_safe_currents`,
I_limit / safety factor per rule), the binding rule and anatomy of each level are the verdict's
(:class:`~emsim.device.validate.LevelCheck`), and the sensory and motor thresholds are the comfort
and efficacy figures (``sensory_threshold_A``, ``current_for_target_A``) over the anatomy cases.
"""

from __future__ import annotations

import math
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from ..formatting import current as fmt_current
from ..formatting import headroom as fmt_headroom
from .rules import RULES, RuleContext
from .validate import PresetCheck, ValidationReport, group_key, max_safe_currents

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["WindowInputs", "headroom", "headroom_heatmap", "therapeutic_window_figure", "window_inputs"]

Range = tuple[float, float] | None

_PASS, _FAIL = "#2a9d3a", "#d62728"


def headroom(max_safe_A: npt.ArrayLike, levels_A: npt.ArrayLike) -> np.ndarray:
    """I_max_safe / I_level - 1 per rule and level, shape (rule, level).

    Args:
        max_safe_A: the largest safe current per rule [A], shape (rule,) (one per rule, worst
            over the anatomy) or (rule, level); inf: the rule sets no limit on the current; NaN:
            not evaluated; 0: no current is safe (a level-independent rule fails).
        levels_A: the level currents [A], shape (level,), > 0.
    """
    m = np.asarray(max_safe_A, float)
    i = np.asarray(levels_A, float)
    if m.ndim == 1:
        m = m[:, None]
    with np.errstate(invalid="ignore", divide="ignore"):
        return m / i[None, :] - 1.0


def _range_text(r: tuple[float, float]) -> str:
    lo, hi = r
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return "none reached" if not math.isfinite(lo) else f"{fmt_current(lo)} - none"
    return fmt_current(lo) if abs(hi - lo) <= 1e-3 * max(abs(hi), 1e-12) else f"{fmt_current(lo)} - {fmt_current(hi)}"


def therapeutic_window_figure(
    levels_A: Sequence[float] | np.ndarray,
    passed: Sequence[bool] | np.ndarray,
    *,
    sensory_A: Range = None,
    motor_A: Range = None,
    safe_max_A: Range = None,
    binding_rule: str | None = None,
    binding_anatomy: str | None = None,
    title: str = "",
) -> Figure:
    """Where the levels sit between feeling, contraction and the largest safe current.

    Args:
        levels_A: the preset's level currents [A] (peak), in level order.
        passed: whether each level passes every rule (same length).
        sensory_A: the sensory threshold (min, max) over the anatomy spread [A], or None.
        motor_A: the motor threshold, the current activating the target volume (min, max) [A].
        safe_max_A: the largest safe current (min, max) over the anatomy spread [A]: its min is
            the device's limit.
        binding_rule: the rule that sets the smallest safe maximum.
        binding_anatomy: the anatomy case where it does.
        title: the figure's title (the preset).
    """
    from matplotlib.figure import Figure

    levels = np.asarray(levels_A, float)
    ok = np.asarray(passed, bool)
    if levels.shape != ok.shape:
        from ..errors import InputError

        raise InputError("passed", len(ok), f"one flag per level ({len(levels)})")
    rows: list[tuple[str, Range, str]] = [
        ("sensory threshold\n(sensation begins)", sensory_A, "#4c72b0"),
        ("motor threshold\n(target volume activated)", motor_A, "#dd8452"),
        ("largest safe current" + (f"\n(binding: {binding_rule})" if binding_rule else ""), safe_max_A, "#8c1c13"),
    ]
    finite = [float(x) for _, r, _ in rows if r is not None for x in r if math.isfinite(x)]
    right = max([*levels.tolist(), *finite, 1e-6]) * 1.12
    scale, unit = (1e3, "mA") if right >= 1e-3 else (1e6, "uA")
    fig = Figure(figsize=(10.0, 4.8), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    y_levels = 0
    for k, (label, r, colour) in enumerate(rows):
        y = len(rows) - k
        if r is None:
            ax.text(0.01 * right * scale, y, "not evaluated", va="center", fontsize=8, color="0.4")
            continue
        lo, hi = float(r[0]), float(r[1])
        if not math.isfinite(lo):
            ax.text(0.01 * right * scale, y, "not reached at any current evaluated", va="center", fontsize=8, color="0.4")
            continue
        hi_drawn = hi if math.isfinite(hi) else right
        ax.plot([lo * scale, hi_drawn * scale], [y, y], color=colour, lw=9, solid_capstyle="butt", alpha=0.75)
        ax.plot([lo * scale], [y], "|", color=colour, ms=18, mew=2)
        ax.text(hi_drawn * scale, y + 0.28, _range_text((lo, hi)), ha="right" if hi_drawn > 0.6 * right else "left",
                va="bottom", fontsize=8, color=colour)  # fmt: skip
    if (motor_A is not None and safe_max_A is not None and math.isfinite(float(motor_A[1]))
            and float(motor_A[1]) < float(safe_max_A[0])):  # fmt: skip
        # contracts the target in every anatomy case and safe in every one: the window
        ax.axvspan(float(motor_A[1]) * scale, float(safe_max_A[0]) * scale, color=_PASS, alpha=0.08, lw=0)
    if safe_max_A is not None and math.isfinite(float(safe_max_A[0])):
        limit = float(safe_max_A[0]) * scale
        ax.axvspan(limit, right * scale, color=_FAIL, alpha=0.07, lw=0)
        ax.axvline(limit, color=_FAIL, ls="--", lw=1)
    ax.scatter(levels * scale, np.full(len(levels), y_levels), c=np.where(ok, _PASS, _FAIL), s=46, zorder=3,
               edgecolors="black", linewidths=0.5)  # fmt: skip
    step = max(1, len(levels) // 12)
    for k in range(0, len(levels), step):
        ax.text(levels[k] * scale, y_levels - 0.32, str(k + 1), ha="center", va="top", fontsize=7)
    ax.set_yticks([y_levels, *range(len(rows), 0, -1)],
                  [f"levels ({int(ok.sum())} of {len(ok)} pass)", *(label for label, _, _ in rows)])  # fmt: skip
    ax.set_ylim(-0.9, len(rows) + 0.75)
    ax.set_xlim(0.0, right * scale)
    ax.set_xlabel(f"peak current [{unit}]  (level numbers under the dots; ranges: over the anatomy spread)")
    ax.grid(axis="x", alpha=0.3)
    # a corner's label is long (ten factors): wrapped to the figure's width, never cut off
    lines = textwrap.wrap(f"the smallest safe maximum: {binding_rule} in {binding_anatomy}", 95) if binding_anatomy else []
    where = "".join("\n" + line for line in lines)
    ax.set_title((title + ": " if title else "") + "therapeutic window; dots: green passes every rule, red fails\n"
                 "green band: above every motor threshold, below every safe maximum; red band: above the smallest "
                 f"safe maximum{where}", fontsize=9)  # fmt: skip
    return fig


def headroom_heatmap(
    levels_A: Sequence[float] | np.ndarray,
    rules: Sequence[str],
    max_safe_A: npt.ArrayLike,
    *,
    binding_anatomy: Sequence[str] | None = None,
    title: str = "",
) -> Figure:
    """Level x rule, coloured by headroom in current, the binding cell of each level outlined.

    Args:
        levels_A: the level currents [A].
        rules: the rule names (columns).
        max_safe_A: the largest safe current per rule [A] (worst over the anatomy), shape (rule,)
            or (rule, level); inf: no limit on the current; NaN: not evaluated.
        binding_anatomy: per level, the anatomy case of its binding rule (caption), or None.
        title: the figure's title (the preset).
    """
    from matplotlib import colors, patches
    from matplotlib.figure import Figure

    levels = np.asarray(levels_A, float)
    h = headroom(max_safe_A, levels)
    if h.shape != (len(rules), len(levels)):
        from ..errors import InputError

        raise InputError("max_safe_A", list(np.shape(max_safe_A)), f"shape ({len(rules)},) or ({len(rules)}, {len(levels)})")
    data = h.T  # rows: levels, columns: rules
    finite = data[np.isfinite(data)]
    top = max(float(np.clip(finite.max(initial=1.0), 0.1, 4.0)), 0.1)
    norm = colors.TwoSlopeNorm(vmin=-1.0, vcenter=0.0, vmax=top)
    shown = np.ma.masked_where(~np.isfinite(data), np.clip(np.nan_to_num(data, posinf=top), -1.0, top))  # grey: no number
    n_l, n_r = data.shape
    fig = Figure(figsize=(max(6.5, 1.0 * n_r + 3.0), max(3.2, 0.36 * n_l + 2.6)), dpi=110, layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("0.88")  # not evaluated / no limit
    art = ax.pcolormesh(np.arange(n_r + 1), np.arange(n_l + 1), shown, cmap="RdYlGn", norm=norm,
                        edgecolors="white", linewidth=0.5)  # fmt: skip
    bar = fig.colorbar(art, ax=ax, pad=0.01, extend="both")
    bar.set_label("headroom: I_max_safe / I - 1")
    bar.ax.yaxis.set_major_formatter(lambda v, _: fmt_headroom(v, 2))
    binding: list[int | None] = []
    for i in range(n_l):
        row = data[i]
        j = int(np.nanargmin(np.where(np.isnan(row), np.inf, row))) if np.isfinite(row).any() else None
        binding.append(j)
        for k in range(n_r):
            v = row[k]
            if np.isnan(v):
                text = "n/e"
            elif np.isinf(v):
                text = "none"
            else:
                text = fmt_headroom(v, 2)
            ax.text(k + 0.5, i + 0.5, text, ha="center", va="center", fontsize=7,
                    fontweight="bold" if j == k else "normal")  # fmt: skip
        if j is not None:
            ax.add_patch(patches.Rectangle((j, i), 1, 1, fill=False, edgecolor="black", lw=2.2))
    ax.set_xticks(np.arange(n_r) + 0.5, list(rules), rotation=35, ha="right", fontsize=8)
    ax.set_yticks(np.arange(n_l) + 0.5, [f"{i + 1}: {fmt_current(c)}" for i, c in enumerate(levels)], fontsize=8)
    ax.set_ylim(n_l, 0)
    ax.set_ylabel("level: peak current")
    ax.set_title((title + "\n" if title else "") + "headroom in current per rule (outlined: the binding rule of "
                 "each level; n/e: not evaluated; none: no limit on the current)", fontsize=9)  # fmt: skip
    if binding_anatomy is not None:
        parts = []
        for i, (j, a) in enumerate(zip(binding, binding_anatomy, strict=True)):
            if j is not None:
                parts.append(f"{i + 1}: {rules[j]} in {a}")
        same = {p.split(": ", 1)[1] for p in parts}
        if len(same) == 1 and len(parts) == n_l:
            parts = [f"every level: {same.pop()}"]
        if parts:
            lines, line = [], "binding rule and anatomy per level: "
            for p in parts:
                if len(line) + len(p) > 130:
                    lines.append(line.rstrip())
                    line = ""
                line += p + "; "
            lines.append(line.rstrip("; "))
            fig.supxlabel("\n".join(lines), fontsize=7.5, ha="left", x=0.01)
    return fig


@dataclass(frozen=True)
class WindowInputs:
    """What the therapeutic window and the headroom heatmap of one preset show.

    Attributes:
        title: the preset's id and name.
        levels_A: level currents [A].
        passed: each level passes every rule (the verdict's).
        sensory_A: the sensory threshold (min, max) over the anatomy cases [A] (None: not evaluated).
        motor_A: the current activating the target volume (min, max) over the anatomy cases [A]
            (None: not evaluated).
        safe_max_A: the largest safe current over every limit rule, (min, max) over the anatomy
            cases [A]; its min is the preset's limit.
        binding_rule: the rule setting the smallest safe maximum; binding_anatomy: the case where.
        rules: the limit rules evaluated (heatmap columns).
        max_safe_A: their I_max_safe, worst over the anatomy cases [A], shape (rule,).
        level_binding_anatomy: per level, the anatomy case of its binding rule.
    """

    title: str
    levels_A: np.ndarray
    passed: np.ndarray
    sensory_A: Range
    motor_A: Range
    safe_max_A: Range
    binding_rule: str | None
    binding_anatomy: str | None
    rules: list[str]
    max_safe_A: np.ndarray
    level_binding_anatomy: list[str]


def _span(values: npt.ArrayLike | None) -> Range:
    """(min, max) of the finite-or-inf values, None when there are none (NaN: not computed)."""
    if values is None:
        return None
    v = np.asarray(values, float)
    if v.size == 0 or np.isnan(v).all():
        return None
    return float(np.nanmin(v)), float(np.nanmax(v))


def window_inputs(report: ValidationReport, check: PresetCheck) -> WindowInputs:
    """The pictures' inputs for one preset of a validation (needs ``report.figures``)."""
    pf = report.presets_file
    F = report.figures[group_key(check.preset)]
    per = max_safe_currents(F, RuleContext(pf.device, check.preset, pf.limits), pf.validation.safety_factor)
    rows = [j for j, r in enumerate(RULES) if r.kind == "limit" and not np.isnan(per[j]).all()]
    worst = np.nanmin(per[rows], axis=1) if rows else np.zeros(0)  # (rule,): worst anatomy case
    per_case = np.nanmin(per[rows], axis=0) if rows else np.full(F.n, np.inf)  # (anatomy,): its binding rule
    top = check.levels[-1]  # headroom orders the rules the same way at every level: any level's binding rule
    sensory = None if F.comfort_absent else F.sensory_threshold_A
    motor = None if F.activation_absent else F.current_for_target_A
    p = check.preset
    return WindowInputs(
        title=f"preset {p.id}: {p.name}",
        levels_A=np.asarray(p.levels_A, float),
        passed=np.array([lv.passed for lv in check.levels]),
        sensory_A=_span(sensory),
        motor_A=_span(motor),
        safe_max_A=_span(per_case) if rows else None,
        binding_rule=top.binding_rule or None,
        binding_anatomy=top.worst_anatomy if top.binding_rule else None,
        rules=[RULES[j].name for j in rows],
        max_safe_A=worst,
        level_binding_anatomy=[lv.worst_anatomy for lv in check.levels],
    )
