"""Benchmark of preset validation from a cached result: level checks per second (issue 12).

A *level check* is one level of one preset in one anatomy case against every rule of the
registry (limits, headroom in current, reported figures). The physics is not timed: the per-unit
figures of a head (:class:`emsim.device.figures.FigureSet`) are what a cached result holds. They
are built here with realistic sizes (5 anatomy cases, a 100-point skin temperature front, 100
CEM43 probes over 21 time steps) from the figures of the default cheek case; the largest safe
current of every rule per anatomy case (:func:`emsim.device.validate.max_safe_currents`, the CEM43
one by bisection) is timed, then the full report, ``--repeat`` times:

    .venv/bin/python benchmarks/bench_validate.py [--presets 20] [--levels 10] [--repeat 200]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import emsim  # noqa: F401
from emsim.device.figures import (
    FigureSet,
    dc_ratio,
    energy_per_pulse_mJ_per_A2,
    net_dc_uA,
    upper_envelope,
)
from emsim.device.presets import parse_presets
from emsim.device.rules import RULES, RuleContext
from emsim.device.validate import evaluate, group_key, max_safe_currents


def _presets(n_presets: int, n_levels: int):
    rows = [
        {"id": k + 1, "name": f"p{k + 1}", "waveform": "biphasic_symmetric", "pulse_width_us": 250,
         "interphase_gap_us": 50, "frequency_Hz": 50, "session_min": 10,
         "levels_uA": [1000 * (j + 1) + 10 * k for j in range(n_levels)],
         "burst": {"on_s": 5.0, "off_s": 10.0, "ramp_s": 1.0}}
        for k in range(n_presets)
    ]  # fmt: skip
    raw = {"device": {"name": "bench", "electrode_head": "cheek-two-pads", "compliance_voltage_V": 60}, "preset": rows}
    return parse_presets(raw)


def _figures(pf, n_cases: int = 5) -> FigureSet:
    """Per-unit figures with the default cheek case's values (10 mA run) and realistic array sizes."""
    w = pf.presets[0].waveform_model()
    rng = np.random.default_rng(0)
    spread = np.linspace(0.8, 1.25, n_cases)
    top = max(p.levels_A[-1] for p in pf.presets)
    # a 100-point skin front per case, reduced to its upper envelope as figure_set() does
    lines = [upper_envelope(34.8 - rng.random(100), rng.random(100)) for _ in range(n_cases)]
    width = max(len(t) for t, _ in lines)
    T0, rise = np.full((n_cases, width), -np.inf), np.zeros((n_cases, width))
    for i, (t, r) in enumerate(lines):
        T0[i, : len(t)], rise[i, : len(r)] = t, r
    return FigureSet(
        labels=tuple(f"case{i}" for i in range(n_cases)), compliance_voltage_V=60.0, rms_ratio=w.rms_pulse_train(1.0),
        ac_rms_ratio=w.rms_pulse_train(1.0), dc_ratio=dc_ratio(w), pad_area_min_cm2=1.767,
        energy_mJ_per_A2=energy_per_pulse_mJ_per_A2(w),
        rms_density_peak_mA_per_cm2_per_A=46.3 * spread, rms_density_mean_mA_per_cm2_per_A=44.2 * spread,
        charge_per_phase_uC_per_A=np.full(n_cases, 250.0), charge_density_uC_per_cm2_per_A=141.5 * spread,
        net_dc_uA_per_A=np.full(n_cases, net_dc_uA(w, 1.0)), power_density_W_per_cm2_per_A2=10.8 * spread,
        peak_voltage_V_per_A=3815.0 * spread, thermal_reference_A=top, skin_basal_C=np.full(n_cases, 34.8),
        skin_T0_C=T0, skin_rise_K=rise,
        cem43_T0_C=36.0 + rng.random((n_cases, 100)), cem43_dt_s=30.0,
        cem43_rise_K=np.linspace(0, 1, 21)[None, :, None] * rng.random((n_cases, 1, 100)) * 2.0,
        current_for_target_A=np.full(n_cases, 0.009),
    )  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", type=int, default=20)
    ap.add_argument("--levels", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=200)
    args = ap.parse_args()
    pf = _presets(args.presets, args.levels)
    F = _figures(pf)
    # presets sharing a head and waveform share one figure set: evaluate all their levels at once
    currents = np.concatenate([np.asarray(p.levels_A) for p in pf.presets])
    ctx = RuleContext(pf.device, pf.presets[0], pf.limits)
    max_safe_currents(F, ctx, 1.5)  # warm-up
    t0 = time.perf_counter()
    for _ in range(args.repeat):
        m = max_safe_currents(F, ctx, 1.5)  # (rule, anatomy): every level's headroom is I_max_safe / I - 1
        passed = (np.fmin.reduce(m, axis=0).min() >= currents[:, None]).sum()
    dt = time.perf_counter() - t0
    checks = args.repeat * F.n * len(currents)
    print(f"largest safe currents: {checks} level checks ({F.n} anatomy cases x {len(currents)} levels x {args.repeat}, "
          f"{len(RULES)} rules each) in {dt:.3f} s: {checks / dt:.3g} level checks/s; {int(passed)} levels pass")  # fmt: skip
    figures = {group_key(pf.presets[0]): F}
    t0 = time.perf_counter()
    n = max(1, args.repeat // 20)
    for _ in range(n):
        report = evaluate(pf, figures)
    dt = time.perf_counter() - t0
    checks = n * F.n * len(currents)
    print(f"full report (per-rule records for JSON/HTML): {checks / dt:.3g} level checks/s; "
          f"max safe levels {[p.max_safe_level for p in report.presets][:5]}...")  # fmt: skip


if __name__ == "__main__":
    main()
