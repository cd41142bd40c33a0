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
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from ..io import write_npz
from ..models.waveforms import Waveform
from ..solvers.records import Absent
from ..solvers.result import CaseResult

__all__ = [
    "FigureSet",
    "dc_ratio",
    "energy_per_pulse_mJ_per_A2",
    "figure_set",
    "load_figures",
    "net_dc_uA",
    "save_figures",
    "stack_figures",
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


def _worst(mapping: object, current_A: float) -> float:
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


def _cem43_probes(result: CaseResult) -> tuple[np.ndarray, np.ndarray, float]:
    """The solver's CEM43 probes: basal temperatures and rise histories at the reference current."""
    th = result.thermal
    if th is None:  # the caller reads the probes of a case with [thermal] only
        raise InputError("thermal", None, "a head case with [thermal]")
    # CEM43 where the heating is: the heated region (solvers/thermal/session.py, HEATED_FRACTION),
    # every node of it a probe, so the rescaled dose is exact there at any current; not the
    # tissue probes, whose max is the deep face held at the core temperature
    T0, rise = th.heated_probe_rises()
    return T0, rise, th.time_step_s


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
    # r.m.s. current densities at the plateau of the on/off cycle (the pulse train while on): the
    # solver's IEC record (solvers/electric/iec.py) gives them so, the one definition of both
    peak, mean, q, qd, dc, pw, vp, basal, fronts, probes, target, zone, sensory, gap = ([] for _ in range(14))
    thermal_absent = activation_absent = exclusion_absent = comfort_absent = phosphene_absent = None
    phosphene: list[float] = []
    dt = 0.0
    for r in results:
        ref = np.full(len(r.channels), reference_A)
        m = r.at(ref)
        iec = m.iec
        peak.append(_worst(iec.rms_current_density_local_peak_mA_per_cm2, reference_A))
        mean.append(_worst(iec.rms_current_density_mA_per_cm2, reference_A))
        q.append(_worst(iec.charge_per_phase_uC, reference_A))
        qd.append(_worst(iec.charge_density_per_phase_uC_per_cm2, reference_A))
        dc.append(net_dc_uA(w, 1.0))
        pw.append(_worst(iec.average_power_density_W_per_cm2, reference_A) / reference_A)
        by_channel = m.waveform.waveform_by_channel if m.waveform is not None else {}
        volts = [abs(c.electrode_voltage_peak_V) for c in by_channel.values()] if by_channel else [0.0]
        vp.append(max(volts) / reference_A)
        th = m.thermal
        if th is None or isinstance(th, Absent):
            thermal_absent = "not evaluated: the head case has no heating ([thermal])" if th is None else \
                f"not evaluated: {th.reason}"  # fmt: skip
            basal.append(math.nan)
            fronts.append((np.array([-np.inf]), np.array([0.0])))
            probes.append((np.array([-np.inf]), np.zeros((1, 1))))
        else:
            basal.append(th.skin_temperature_basal_C)
            fronts.append(upper_envelope(*r.thermal.skin_front_lines()))
            t0, rise, dt = _cem43_probes(r)
            probes.append((t0, rise))
        a = m.activation
        if a is None or isinstance(a, Absent):
            activation_absent = "not evaluated: " + (a.reason if isinstance(a, Absent) else "no activation record")
            target.append(math.inf)
        else:
            t = a.current_for_target_volume_A
            target.append(math.inf if isinstance(t, Absent) else float(t))
        x = m.exclusion
        if x is None:
            exclusion_absent = "not evaluated: the head case has no [[exclusion]] zone"
            zone.append(math.nan)
            gap.append(math.inf)
        else:
            gap.append(x.exclusion_placement_gap_min_mm)
            empty = [name for name, row in x.exclusion.items() if not row.cells]
            if isinstance(x.exclusion_limit_ratio_max, Absent):  # placement-only zones
                exclusion_absent = f"not evaluated: {x.exclusion_limit_ratio_max.reason}"
                zone.append(math.nan)
            else:
                if empty:
                    exclusion_absent = f"not evaluated: no tissue cell lies in zone(s) {', '.join(empty)}: refine the mesh"
                zone.append(x.exclusion_limit_ratio_max / reference_A)  # r.m.s. (or d.c.) values: linear in I
        phos_ratio = x.exclusion_phosphene_ratio_max if x is not None else Absent("the head case has no [[exclusion]] zone")
        if isinstance(phos_ratio, Absent):
            phosphene_absent = f"not evaluated: {phos_ratio.reason}"
            phosphene.append(math.nan)
        else:
            phosphene.append(phos_ratio / reference_A)  # the weighted-peak index is linear in I
        c = m.comfort
        t = getattr(c, "sensory_threshold_current_A", None)
        if c is None or isinstance(c, Absent) or isinstance(t, Absent) or t is None:
            why = c.reason if isinstance(c, Absent) else (t.reason if isinstance(t, Absent) else "no comfort record")
            comfort_absent = f"not evaluated: {why}"
            sensory.append(math.inf)
        else:
            sensory.append(float(t))
    width = max(len(t0) for t0, _ in fronts)
    T0 = np.full((len(results), width), -np.inf)
    rise = np.zeros((len(results), width))
    for i, (t0, dr) in enumerate(fronts):
        T0[i, : len(t0)], rise[i, : len(dr)] = t0, dr
    c_T0, c_rise = _pad_probes(probes)
    pads = [e for e in results[0].case.electrodes]
    arr = lambda v: np.asarray(v, float)
    rms = float(w.rms_pulse_train(1.0))
    dcr = dc_ratio(w)
    return FigureSet(
        labels=tuple(labels), compliance_voltage_V=compliance_voltage_V,
        rms_ratio=rms, ac_rms_ratio=math.sqrt(max(rms * rms - dcr * dcr, 0.0)), dc_ratio=dcr,
        pad_area_min_cm2=min(e.area_m2 for e in pads) * 1e4, energy_mJ_per_A2=energy_per_pulse_mJ_per_A2(w),
        rms_density_peak_mA_per_cm2_per_A=arr(peak), rms_density_mean_mA_per_cm2_per_A=arr(mean),
        charge_per_phase_uC_per_A=arr(q), charge_density_uC_per_cm2_per_A=arr(qd), net_dc_uA_per_A=arr(dc),
        power_density_W_per_cm2_per_A2=arr(pw), peak_voltage_V_per_A=arr(vp), thermal_reference_A=reference_A,
        skin_basal_C=arr(basal), skin_T0_C=T0, skin_rise_K=rise, cem43_T0_C=c_T0, cem43_rise_K=c_rise, cem43_dt_s=dt,
        current_for_target_A=arr(target), exclusion_ratio_per_A=arr(zone), sensory_threshold_A=arr(sensory),
        thermal_absent=thermal_absent, activation_absent=activation_absent, exclusion_absent=exclusion_absent,
        comfort_absent=comfort_absent, placement_gap_mm=arr(gap), phosphene_ratio_per_A=arr(phosphene),
        phosphene_absent=phosphene_absent,
    )  # fmt: skip


def _pad_probes(probes: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """Stack per-case probe sets: T0 padded with -inf (no dose), rises with 0, times with the last."""
    width = max(len(t0) for t0, _ in probes)
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
