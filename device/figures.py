"""Per-unit-current figures of a solved electrode head, stacked over the anatomy cases.

The physics is solved once per head, anatomy case and distinct waveform (with its session); every
level is then evaluated from these figures by linearity (:mod:`emsim.device.rules`): currents,
charges, current densities and voltages scale with the level current I, energies and powers with
I^2, temperature rises with I^2 along the case's own current ratios (every channel at the same
current here). Reads :class:`~emsim.solvers.result.CaseMetrics` records; recomputes nothing the
solvers already give.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import write_npz
from ..models.waveforms import Waveform
from ..solvers.electric import ExclusionMetrics
from ..solvers.physiology import ComfortMetrics
from ..solvers.records import Absent
from ..solvers.result import CaseResult
from ..solvers.spectral import ActivationMetrics
from ..solvers.thermal import ThermalMetrics, ThermalResult

__all__ = [
    "FigureSet",
    "dc_ratio",
    "energy_per_pulse_mJ_per_A2",
    "figure_set",
    "load_figures",
    "net_dc_uA",
    "save_figures",
    "stack_figures",
    "undominated_probes",
    "upper_envelope",
]

_TEST_LOAD_OHM = 500.0  # IEC 60601-2-10 output figures are stated into 500 ohm


@dataclass(frozen=True)
class FigureSet:
    """Per-unit-current figures of one head and waveform over its anatomy cases (axis 0).

    Attributes:
        labels: anatomy case labels.
        compliance_voltage_V: the device's compliance voltage [V].
        rms_ratio: I_rms / I_peak of the pulse train at the plateau (the whole output, a.c. and d.c.) [-].
        ac_rms_ratio: r.m.s. of the a.c. component / I_peak at the plateau, sqrt(rms^2 - dc^2) [-].
        dc_ratio: |mean output current| / I_peak at the plateau (the d.c. component) [-].
        pad_area_min_cm2: the smallest pad (gel footprint) area of the head [cm^2].
        energy_mJ_per_A2: energy of one pulse into 500 ohm per A^2 of peak current [mJ/A^2].
        rms_density_peak_mA_per_cm2_per_A: worst pad's local-peak (1 mm disc at the rim) r.m.s.
            current density per A of peak current, r.m.s. at the plateau (the one definition the
            device rules, the 510(k) table and the reports use).
        rms_density_mean_mA_per_cm2_per_A: worst pad's pad-mean r.m.s. current density per A
            (plateau r.m.s.), reported beside it.
        charge_per_phase_uC_per_A: worst pad's charge per phase per A [uC/A].
        charge_density_uC_per_cm2_per_A: worst pad's charge density per phase per A.
        net_dc_uA_per_A: |net d.c.| of the output per A of peak current [uA/A] (the waveform's).
        power_density_W_per_cm2_per_A2: worst pad's cycle-mean power density per A^2.
        peak_voltage_V_per_A: peak electrode voltage per A (every channel) [V/A].
        thermal_reference_A: the current the heating was solved at [A].
        skin_basal_C: basal skin temperature (max) per case [C].
        skin_T0_C: basal temperature of the skin points that can be hottest (padded with -inf).
        skin_rise_K: their peak rise at the reference current [K] (padded with 0).
        cem43_T0_C: basal temperature of the solver's heated-region probes (every node whose
            steady-state rise is at least HEATED_FRACTION of the largest), per case (padded with -inf).
        cem43_rise_K: their rise histories at the reference current, (case, time, probe) [K].
        cem43_dt_s: the time step of those histories [s].
        current_for_target_A: current activating the stated target volume [A] (inf: none).
        exclusion_ratio_per_A: largest value / limit over the head's exclusion zones per A of
            peak current (the zones' plateau r.m.s. field and current density are linear in I).
        placement_gap_mm: per case, the smallest gap between a gel footprint and an exclusion
            zone's edge [mm] (inf: no zone); geometric, the same at every level.
        sensory_threshold_A: current at which sensation begins (solvers/physiology/sensory.py) [A] (inf: none).
        thermal_absent, activation_absent, exclusion_absent, comfort_absent: why a rule cannot
            be evaluated.
        phosphene_ratio_per_A: per case, the largest phosphene ratio over the orbit zones per A
            of peak current (the retina's weighted-peak index is linear in I), or None.
        phosphene_absent: why the phosphene rule cannot be evaluated (no orbit zone, d.c.).
    """

    labels: tuple[str, ...]
    compliance_voltage_V: float
    rms_ratio: float
    energy_mJ_per_A2: float
    rms_density_peak_mA_per_cm2_per_A: np.ndarray
    rms_density_mean_mA_per_cm2_per_A: np.ndarray
    charge_per_phase_uC_per_A: np.ndarray
    charge_density_uC_per_cm2_per_A: np.ndarray
    net_dc_uA_per_A: np.ndarray
    power_density_W_per_cm2_per_A2: np.ndarray
    peak_voltage_V_per_A: np.ndarray
    thermal_reference_A: float
    skin_basal_C: np.ndarray
    skin_T0_C: np.ndarray
    skin_rise_K: np.ndarray
    cem43_T0_C: np.ndarray
    cem43_rise_K: np.ndarray
    cem43_dt_s: float
    current_for_target_A: np.ndarray
    ac_rms_ratio: float = 0.0
    dc_ratio: float = 0.0
    pad_area_min_cm2: float = math.nan
    exclusion_ratio_per_A: np.ndarray | None = None
    sensory_threshold_A: np.ndarray | None = None
    thermal_absent: str | None = None
    activation_absent: str | None = None
    exclusion_absent: str | None = None
    comfort_absent: str | None = None
    placement_gap_mm: np.ndarray | None = None
    phosphene_ratio_per_A: np.ndarray | None = None
    phosphene_absent: str | None = None

    @property
    def n(self) -> int:
        """Number of anatomy cases."""
        return len(self.labels)


def _worst(mapping: Mapping[str, float] | Absent, current_A: float) -> float:
    """The largest |value| over the electrodes per A of ``current_A`` (0: none, or absent)."""
    if isinstance(mapping, Absent) or not mapping:
        return 0.0
    return max(abs(float(v)) for v in mapping.values()) / current_A


def upper_envelope(T0: np.ndarray, rise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The lines T0 + s rise that reach the maximum over all of them for some s >= 0.

    max_k (T0_k + s rise_k) is the upper envelope of lines in s, convex and piecewise linear: the
    lines off it never give the maximum, so dropping them changes no value (exact), and the skin
    temperature rule then evaluates a handful of lines per level instead of every skin point.
    """
    T0, rise = np.asarray(T0, float), np.asarray(rise, float)
    keep = np.isfinite(T0)
    T0, rise = T0[keep], rise[keep]
    if len(T0) == 0:
        return np.array([-np.inf]), np.array([0.0])
    hull: list[int] = []
    for i in np.lexsort((T0, rise)):  # by slope, then intercept (both ascending)
        while hull and rise[hull[-1]] == rise[i]:
            hull.pop()  # same slope, lower intercept
        while hull and T0[hull[-1]] <= T0[i]:
            hull.pop()  # a steeper line no lower at s = 0 is above it for every s >= 0
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            # b is useless when i overtakes a no later than b does
            if (T0[a] - T0[i]) * (rise[b] - rise[a]) <= (T0[a] - T0[b]) * (rise[i] - rise[a]):
                hull.pop()
            else:
                break
        hull.append(int(i))
    return T0[hull], rise[hull]


def undominated_probes(T0: np.ndarray, rise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The probes (T0 [C], rise histories [K] (time, probe)) that can hold the largest CEM43 at some scale.

    The thermal dose's counterpart of :func:`upper_envelope`. A probe p with T0_p <= T0_q and
    rise_p(t) <= rise_q(t) at every step is dominated by q: its temperature T0 + s rise is no
    higher at any step for every s >= 0, the dose rate increases with T and the trapezoid weights
    are positive, so its dose is never the larger (to the last bit: numpy's vectorised power rounds
    by an element's position, 1 ulp). Probes without a finite T0 (padding) give no dose and go.
    Three rounds of the hottest probes (by peak rise, basal temperature and their sum) as
    dominators keep 7-35 % of the sample's 8871 probes, so the CEM43 rule's bisection (some 60
    doses per case) does a fraction of the work, to the same number.
    """
    T0, rise = np.asarray(T0, float), np.asarray(rise, float)
    keep = np.isfinite(T0)
    if rise.shape[0] == 0:
        return T0[keep], rise[:, keep]
    peak = rise.max(axis=0)
    for _ in range(3):
        idx = np.flatnonzero(keep)
        hottest = [idx[np.argsort(-v[idx], kind="stable")[:24]] for v in (peak, T0, T0 + peak)]
        for q in dict.fromkeys(int(i) for part in hottest for i in part):
            if keep[q]:
                dominated = (T0 <= T0[q]) & (rise <= rise[:, q : q + 1]).all(axis=0)
                dominated[q] = False
                keep &= ~dominated
    return T0[keep], rise[:, keep]


def net_dc_uA(waveform: Waveform, current_A: float) -> float:
    """|Net d.c.| of the output at peak current I: mean over the whole cycle (envelope included) [uA].

    Physics-free (the waveform alone), so the export can refuse a net-d.c. preset before solving.
    """
    if waveform.shape == "dc":
        return abs(current_A) * waveform.mean_envelope * 1e6
    mean = waveform.net_charge_per_period_C(1.0) / waveform.period_s * waveform.mean_envelope
    return abs(mean * current_A) * 1e6


def energy_per_pulse_mJ_per_A2(waveform: Waveform) -> float:
    """Energy of one pulse into 500 ohm per A^2: R x integral of i^2 over the pulse [mJ/A^2].

    ``R sum_phases a^2 (t_end - t_start)`` for ideal steps; with the output rise time the exact
    integral of the trapezoidal pulse (:meth:`emsim.models.waveforms.Waveform.pulse_square_integral_s`).
    """
    return _TEST_LOAD_OHM * waveform.pulse_square_integral_s() * 1e3


def dc_ratio(waveform: Waveform) -> float:
    """|Mean output current| / I_peak at the plateau: |sum_phases a (t_end - t_start)| x pulse rate [-]."""
    if waveform.shape == "dc":
        return 1.0
    phases = waveform.phases()
    net = sum(a * (t1 - t0) for t0, t1, a in phases)
    if abs(net) <= 1e-9 * sum(abs(a) * (t1 - t0) for t0, t1, a in phases):
        return 0.0  # charge balanced by construction: the residue is the phases' float rounding
    return abs(net) * waveform.pulse_rate_Hz


def _solved_heating(result: CaseResult) -> ThermalResult:
    """The case's solved heating (its metrics say it has one)."""
    if result.thermal is None:  # the caller reads the probes of a case with [thermal] only
        raise InputError("thermal", None, "a head case with [thermal]")
    return result.thermal


@dataclass(frozen=True)
class _CaseFigures:
    """One anatomy case's per-unit figures: a row of the :class:`FigureSet` it stacks into.

    Densities, charges and voltages per A of the reference current, powers per A^2; each
    ``*_absent`` is why its rule cannot be evaluated for this case (None: it can).
    """

    rms_density_peak: float
    rms_density_mean: float
    charge_per_phase: float
    charge_density: float
    net_dc: float
    power_density: float
    peak_voltage: float
    skin_basal_C: float
    skin_front: _Lines  # the upper envelope of the skin points' lines
    cem43_probes: _Lines  # heated-region probes: T0 [C], rise history (time, probe) [K]
    cem43_dt_s: float | None  # None: no heating solved
    current_for_target_A: float
    exclusion_ratio: float
    phosphene_ratio: float
    placement_gap_mm: float
    sensory_threshold_A: float
    thermal_absent: str | None
    activation_absent: str | None
    exclusion_absent: str | None
    phosphene_absent: str | None
    comfort_absent: str | None


_Lines = tuple[np.ndarray, np.ndarray]  # per-case lines T0 + s rise: T0 [C], rise [K]


def _thermal_figures(r: CaseResult, th: ThermalMetrics | Absent | None) -> tuple[float, _Lines, _Lines, float | None, str | None]:
    """(basal skin [C], skin front, CEM43 probes, their time step [s], why absent) of one case."""
    if th is None or isinstance(th, Absent):
        why = "not evaluated: the head case has no heating ([thermal])" if th is None else f"not evaluated: {th.reason}"
        return math.nan, (np.array([-np.inf]), np.array([0.0])), (np.array([-np.inf]), np.zeros((1, 1))), None, why
    heating = _solved_heating(r)
    # CEM43 where the heating is: the heated region (solvers/thermal/session.py, HEATED_FRACTION),
    # every node of it a probe, so the rescaled dose is exact there at any current; not the
    # tissue probes, whose max is the deep face held at the core temperature
    front = upper_envelope(*heating.skin_front_lines())
    return th.skin_temperature_basal_C, front, heating.heated_probe_rises(), heating.time_step_s, None


def _activation_figures(a: ActivationMetrics | Absent | None) -> tuple[float, str | None]:
    """(current activating the target volume [A] (inf: none), why absent) of one case."""
    if a is None or isinstance(a, Absent):
        return math.inf, "not evaluated: " + (a.reason if isinstance(a, Absent) else "no activation record")
    t = a.current_for_target_volume_A
    return (math.inf if isinstance(t, Absent) else float(t)), None


def _exclusion_figures(x: ExclusionMetrics | None, reference_A: float) -> tuple[float, float, str | None]:
    """(largest zone value / limit per A, placement gap [mm], why absent) of one case."""
    if x is None:
        return math.nan, math.inf, "not evaluated: the head case has no [[exclusion]] zone"
    gap = x.exclusion_placement_gap_min_mm
    ratio = x.exclusion_limit_ratio_max
    if isinstance(ratio, Absent):  # placement-only zones
        return math.nan, gap, f"not evaluated: {ratio.reason}"
    empty = [name for name, row in x.exclusion.items() if not row.cells]
    why = f"not evaluated: no tissue cell lies in zone(s) {', '.join(empty)}: refine the mesh" if empty else None
    return ratio / reference_A, gap, why  # r.m.s. (or d.c.) values: linear in I


def _phosphene_figures(x: ExclusionMetrics | None, reference_A: float) -> tuple[float, str | None]:
    """(phosphene ratio of the orbit zones per A, why absent) of one case."""
    ratio = x.exclusion_phosphene_ratio_max if x is not None else Absent("the head case has no [[exclusion]] zone")
    if isinstance(ratio, Absent):
        return math.nan, f"not evaluated: {ratio.reason}"
    return ratio / reference_A, None  # the weighted-peak index is linear in I


def _comfort_figures(c: ComfortMetrics | Absent | None) -> tuple[float, str | None]:
    """(current at which sensation begins [A] (inf: none), why absent) of one case."""
    t = getattr(c, "sensory_threshold_current_A", None)
    if c is None or isinstance(c, Absent) or isinstance(t, Absent) or t is None:
        why = c.reason if isinstance(c, Absent) else (t.reason if isinstance(t, Absent) else "no comfort record")
        return math.inf, f"not evaluated: {why}"
    return float(t), None


def _case_figures(r: CaseResult, reference_A: float) -> _CaseFigures:
    """The per-unit figures of one solved case (every channel at ``reference_A``)."""
    m = r.at(np.full(len(r.channels), reference_A))
    # r.m.s. current densities at the plateau of the on/off cycle (the pulse train while on): the
    # solver's IEC record (solvers/electric/iec.py) gives them so, the one definition of both
    iec = m.iec
    if iec is None:  # CaseResult.at always gives them; a hand-made metrics record may not
        raise InputError("iec", None, "the IEC output figures of CaseResult.at")
    by_channel = m.waveform.waveform_by_channel if m.waveform is not None else {}
    volts = [abs(c.electrode_voltage_peak_V) for c in by_channel.values()] if by_channel else [0.0]
    basal, front, probes, dt, thermal_absent = _thermal_figures(r, m.thermal)
    target, activation_absent = _activation_figures(m.activation)
    zone, gap, exclusion_absent = _exclusion_figures(m.exclusion, reference_A)
    phosphene, phosphene_absent = _phosphene_figures(m.exclusion, reference_A)
    sensory, comfort_absent = _comfort_figures(m.comfort)
    return _CaseFigures(
        rms_density_peak=_worst(iec.rms_current_density_local_peak_mA_per_cm2, reference_A),
        rms_density_mean=_worst(iec.rms_current_density_mA_per_cm2, reference_A),
        charge_per_phase=_worst(iec.charge_per_phase_uC, reference_A),
        charge_density=_worst(iec.charge_density_per_phase_uC_per_cm2, reference_A),
        net_dc=net_dc_uA(r.case.waveform, 1.0),
        power_density=_worst(iec.average_power_density_W_per_cm2, reference_A) / reference_A,
        peak_voltage=max(volts) / reference_A,
        skin_basal_C=basal, skin_front=front, cem43_probes=probes, cem43_dt_s=dt,
        current_for_target_A=target, exclusion_ratio=zone, phosphene_ratio=phosphene, placement_gap_mm=gap,
        sensory_threshold_A=sensory, thermal_absent=thermal_absent, activation_absent=activation_absent,
        exclusion_absent=exclusion_absent, phosphene_absent=phosphene_absent, comfort_absent=comfort_absent,
    )  # fmt: skip


def _last_reason(rows: Sequence[_CaseFigures], name: str) -> str | None:
    """Why a rule cannot be evaluated: the reason of the last case that has one (None: none has)."""
    return next((getattr(row, name) for row in reversed(rows) if getattr(row, name) is not None), None)


def _pad_fronts(fronts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-case skin fronts: T0 padded with -inf (never the maximum), rises with 0."""
    width = max(len(t0) for t0, _ in fronts)
    T0 = np.full((len(fronts), width), -np.inf)
    rise = np.zeros((len(fronts), width))
    for i, (t0, dr) in enumerate(fronts):
        T0[i, : len(t0)], rise[i, : len(dr)] = t0, dr
    return T0, rise


def figure_set(
    labels: Sequence[str], results: Sequence[CaseResult], reference_A: float, compliance_voltage_V: float
) -> FigureSet:
    """Stack the per-unit figures of one head and waveform over its anatomy cases.

    Args:
        labels: the anatomy case labels.
        results: the solved cases (every channel at ``reference_A``), one per label.
        reference_A: the channel current the cases were solved at [A].
        compliance_voltage_V: the device's compliance voltage [V].
    """
    w = results[0].case.waveform
    rows = [_case_figures(r, reference_A) for r in results]

    def column(name: str) -> np.ndarray:
        return np.asarray([getattr(row, name) for row in rows], float)

    skin_T0, skin_rise = _pad_fronts([row.skin_front for row in rows])
    c_T0, c_rise = _pad_probes([row.cem43_probes for row in rows])
    dt = next((row.cem43_dt_s for row in reversed(rows) if row.cem43_dt_s is not None), 0.0)
    rms = float(w.rms_pulse_train(1.0))
    dcr = dc_ratio(w)
    return FigureSet(
        labels=tuple(labels), compliance_voltage_V=compliance_voltage_V,
        rms_ratio=rms, ac_rms_ratio=math.sqrt(max(rms * rms - dcr * dcr, 0.0)), dc_ratio=dcr,
        pad_area_min_cm2=min(e.area_m2 for e in results[0].case.electrodes) * 1e4,
        energy_mJ_per_A2=energy_per_pulse_mJ_per_A2(w),
        rms_density_peak_mA_per_cm2_per_A=column("rms_density_peak"),
        rms_density_mean_mA_per_cm2_per_A=column("rms_density_mean"),
        charge_per_phase_uC_per_A=column("charge_per_phase"),
        charge_density_uC_per_cm2_per_A=column("charge_density"), net_dc_uA_per_A=column("net_dc"),
        power_density_W_per_cm2_per_A2=column("power_density"), peak_voltage_V_per_A=column("peak_voltage"),
        thermal_reference_A=reference_A, skin_basal_C=column("skin_basal_C"), skin_T0_C=skin_T0,
        skin_rise_K=skin_rise, cem43_T0_C=c_T0, cem43_rise_K=c_rise, cem43_dt_s=dt,
        current_for_target_A=column("current_for_target_A"), exclusion_ratio_per_A=column("exclusion_ratio"),
        sensory_threshold_A=column("sensory_threshold_A"), placement_gap_mm=column("placement_gap_mm"),
        thermal_absent=_last_reason(rows, "thermal_absent"), activation_absent=_last_reason(rows, "activation_absent"),
        exclusion_absent=_last_reason(rows, "exclusion_absent"), comfort_absent=_last_reason(rows, "comfort_absent"),
        phosphene_ratio_per_A=column("phosphene_ratio"), phosphene_absent=_last_reason(rows, "phosphene_absent"),
    )  # fmt: skip


def _pad_probes(probes: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-case probe sets, the undominated ones only: T0 padded with -inf (no dose), rises with 0, times with the last."""
    probes = [undominated_probes(t0, r) for t0, r in probes]
    width = max(1, max(len(t0) for t0, _ in probes))
    times = max(r.shape[0] for _, r in probes)
    T0 = np.full((len(probes), width), -np.inf)
    rise = np.zeros((len(probes), times, width))
    for i, (t0, r) in enumerate(probes):
        T0[i, : len(t0)] = t0
        rise[i, : r.shape[0], : r.shape[1]] = r
        rise[i, r.shape[0] :, : r.shape[1]] = r[-1]  # equal time grids in practice (one session)
    return T0, rise


def stack_figures(sets: Sequence[FigureSet]) -> FigureSet:
    """One figure set over the anatomy cases of several (same head, waveform and reference current).

    Per-case arrays are concatenated along the anatomy axis (the skin fronts and the CEM43 probes
    padded so that the padding never gives the maximum); scalars must agree.

    Raises:
        ValueError: the sets differ in a scalar (another waveform, reference current or head).
    """
    first = sets[0]
    if len(sets) == 1:
        return first
    kw: dict[str, Any] = {"labels": tuple(label for F in sets for label in F.labels)}
    for f in fields(FigureSet):
        if f.name in ("labels", "skin_T0_C", "skin_rise_K", "cem43_T0_C", "cem43_rise_K"):
            continue
        values = [getattr(F, f.name) for F in sets]
        if isinstance(values[0], np.ndarray):
            kw[f.name] = np.concatenate(values)
        elif f.name.endswith("_absent"):
            kw[f.name] = next((v for v in values if v), None)
        elif values[0] is None:
            kw[f.name] = None if all(v is None for v in values) else np.concatenate(
                [np.full(F.n, np.nan) if v is None else v for F, v in zip(sets, values, strict=True)])  # fmt: skip
        else:
            if any(v != values[0] and not (isinstance(v, float) and math.isnan(v)) for v in values):
                raise ValueError(f"figure sets differ in {f.name}: {values}")
            kw[f.name] = values[0]
    width = max(F.skin_T0_C.shape[1] for F in sets)
    T0 = np.full((sum(F.n for F in sets), width), -np.inf)
    rise = np.zeros_like(T0)
    i = 0
    for F in sets:
        T0[i : i + F.n, : F.skin_T0_C.shape[1]] = F.skin_T0_C
        rise[i : i + F.n, : F.skin_rise_K.shape[1]] = F.skin_rise_K
        i += F.n
    kw["skin_T0_C"], kw["skin_rise_K"] = T0, rise
    probes = [(F.cem43_T0_C[a], F.cem43_rise_K[a]) for F in sets for a in range(F.n)]
    kw["cem43_T0_C"], kw["cem43_rise_K"] = _pad_probes(probes)
    return FigureSet(**kw)


def save_figures(path: str | Path, figures: dict[str, FigureSet], digest: str) -> None:
    """Cache the figure sets of a validation (``figures.npz``), keyed by the inputs' digest.

    ``emsim export --from DIR`` evaluates the levels from it without solving again.
    """
    arrays: dict[str, np.ndarray] = {}
    meta: dict[str, Any] = {"digest_sha256": digest, "groups": []}
    for g, (key, F) in enumerate(figures.items()):
        scalars: dict[str, Any] = {"key": key}
        for f in fields(F):
            value = getattr(F, f.name)
            if isinstance(value, np.ndarray):
                arrays[f"{g}.{f.name}"] = value
            else:
                scalars[f.name] = list(value) if isinstance(value, tuple) else value
        meta["groups"].append(scalars)
    write_npz(path, {"meta": np.array(json.dumps(meta)), **arrays})


def load_figures(path: str | Path, digest: str) -> dict[str, FigureSet]:
    """The figure sets cached by :func:`save_figures`.

    Raises:
        InputError: no cache there, or one made from other inputs (another digest).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("--from", str(path.parent), "a folder written by emsim validate (with figures.npz)")
    with np.load(path, allow_pickle=False) as data:
        meta = json.loads(str(data["meta"]))
        if meta["digest_sha256"] != digest:
            raise InputError("--from", str(path.parent), "a validation of these same inputs (the presets file or "
                             "the head changed since: run emsim validate again)")  # fmt: skip
        out = {}
        for g, scalars in enumerate(meta["groups"]):
            kw = {k: v for k, v in scalars.items() if k != "key"}
            kw["labels"] = tuple(kw["labels"])
            for f in fields(FigureSet):
                if f"{g}.{f.name}" in data:
                    kw[f.name] = data[f"{g}.{f.name}"]
            try:
                out[scalars["key"]] = FigureSet(**kw)
            except TypeError:  # written by an emsim whose figures had other fields
                raise InputError("--from", str(path.parent), "figures written by this emsim version (run emsim "
                                 "validate again)") from None  # fmt: skip
    return out
