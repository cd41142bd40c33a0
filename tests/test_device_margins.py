"""Margins in current: I_max_safe per rule re-validated, the FDA power density as the guidance
computes it, and floats written with the digits they deserve (no physics)."""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from device_helpers import PRESETS_TOML, synthetic_figures

from emsim.device.export import export_files
from emsim.device.presets import parse_presets
from emsim.device.rules import RULES, RuleContext
from emsim.device.validate import evaluate, group_key, max_safe_currents

SF = 1.5


def _pf(**validation):
    raw = _raw(**validation)
    return parse_presets(raw, text=json.dumps(raw))


def _width_s(preset):
    """A phase's mean-square width [s]: the trapezoid of rise time t_r integrates i^2 to a^2 (PW - t_r / 3)."""
    return preset.pulse_width_us * 1e-6 - preset.rise_time_us * 1e-6 / 3.0


def _raw(**validation):
    raw = tomllib.loads(PRESETS_TOML)
    raw["preset"][1] |= {"waveform": "monophasic"}  # a d.c. component: every d.c. rule has a finite bound
    del raw["preset"][1]["interphase_gap_us"]
    raw["limits"] = {"charge_per_phase_uC": 5.0, "net_dc_uA": 50.0, "phosphene_ratio_max": 1.0}
    raw["validation"] = {"safety_factor": SF, "spread": "nominal", **validation}
    return raw


def _figures(p):
    F = synthetic_figures(p, volts_per_A=(1500.0, 2500.0))
    return replace(F, exclusion_ratio_per_A=np.array([40.0, 60.0]), sensory_threshold_A=np.array([1e-3, 1.5e-3]),
                   phosphene_ratio_per_A=np.array([30.0, 45.0]))  # fmt: skip


@pytest.mark.parametrize("preset_index", [0, 1])
def test_every_rule_holds_at_its_max_safe_current_and_fails_one_percent_above(preset_index):
    pf = _pf()
    p = pf.presets[preset_index]
    F = _figures(p)
    ctx = RuleContext(pf.device, p, pf.limits)
    safe = max_safe_currents(F, ctx, SF)
    checked = 0
    for j, r in enumerate(RULES):
        limit = r.limit(ctx)
        for a in range(F.n):
            i = safe[j, a]
            if not math.isfinite(i) or i == 0.0:
                continue
            # re-validate independently of how I_max_safe was found: the rule's own value at SF x I
            # (every figure increases with the current; a reported one crosses its threshold there)
            below = r.evaluate(F, [SF * i * (1 - 1e-9)])[a, 0]
            above = r.evaluate(F, [SF * i * 1.01])[a, 0]
            assert below <= limit, (r.name, a)
            assert above > limit, (r.name, a)
            checked += 1
    names = {r.name for j, r in enumerate(RULES) if np.isfinite(safe[j]).any() and (safe[j] > 0).any()}
    expect = {"iec_rms_current", "iec_energy_per_pulse", "rms_current_density", "output_indicator",
              "charge_per_phase", "average_power_density", "average_power_density_simulated", "skin_temperature",
              "skin_temperature_disclosure", "cem43", "exclusion_zone", "compliance_voltage", "efficacy", "comfort",
              "shannon", "phosphene", "phosphene_binding"}  # fmt: skip
    if preset_index == 1:
        expect |= {"iec_dc_current", "net_dc_current"}
    assert expect <= names
    assert checked >= 2 * len(expect) - 4


def test_a_level_at_the_max_safe_current_passes_and_one_percent_above_fails_through_the_whole_validation():
    pf = _pf()
    p = pf.presets[0]
    F = _figures(p)
    figures = {group_key(q): _figures(q) for q in pf.presets}  # the same head figures for every level table
    report = evaluate(pf, figures)
    for r in RULES:
        m = report.presets[0].max_safe_current[r.name]
        if r.kind != "limit" or not isinstance(m.get("max_safe_current_uA"), float):
            continue
        i = m["max_safe_current_uA"] * (1 - 1e-5)  # the JSON value has 6 digits
        lo, hi = math.floor(i), math.ceil(1.01 * m["max_safe_current_uA"] * (1 + 1e-5))
        if not (10 <= lo and hi <= 100_000):
            continue
        raw = _raw()
        raw["preset"][0]["levels_uA"] = [lo, hi]
        one = parse_presets(raw, text=json.dumps(raw))
        rep = evaluate(one, figures)
        levels = rep.presets[0].levels
        assert levels[0].rules[r.name]["status"] == "pass", r.name
        assert levels[0].rules[r.name]["headroom"] >= 0
        assert levels[1].rules[r.name]["status"] == "FAIL", r.name
        assert levels[1].rules[r.name]["headroom"] < 0
    assert F.n == 2


def test_a_current_independent_rule_says_so_instead_of_a_bare_number():
    pf = _pf()
    report = evaluate(pf, {group_key(q): _figures(q) for q in pf.presets})
    voc = report.presets[0].max_safe_current["iec_open_circuit_voltage"]
    assert voc["max_safe_current_uA"] == "inf" and "independent of the current" in voc["note"]
    dc = report.presets[0].max_safe_current["iec_dc_current"]  # charge balanced: no d.c. component
    assert dc["max_safe_current_uA"] == "inf" and "0 at every current" in dc["note"]
    low = _pf()
    low = replace(low, limits={**low.limits, "open_circuit_voltage_V": 50.0})  # below the 60 V compliance
    report = evaluate(low, {group_key(q): _figures(q) for q in low.presets})
    voc = report.presets[0].max_safe_current["iec_open_circuit_voltage"]
    assert voc["max_safe_current_uA"] == 0.0 and "fails at every level" in voc["note"]
    assert report.presets[0].level_independent_failures == ["iec_open_circuit_voltage"]
    assert report.presets[0].levels[0].headroom == -1.0


def test_fda_power_density_is_the_guidance_figure_from_the_plateau_rms_and_the_smallest_pad():
    pf = _pf()
    report = evaluate(pf, {group_key(q): _figures(q) for q in pf.presets})
    for check, preset in zip(report.presets, pf.presets, strict=True):
        F = _figures(preset)
        w = preset.waveform_model()
        for lv in check.levels:
            i = lv.current_uA * 1e-6
            # plateau r.m.s. of the train: symmetric biphasic I sqrt(2 PW' f), monophasic I sqrt(PW' f),
            # PW' = PW - t_r / 3 (each phase a trapezoid with the device's output rise time t_r)
            phases = 2 if preset.waveform.startswith("biphasic") else 1
            i_rms = i * math.sqrt(phases * _width_s(preset) * preset.frequency_Hz)
            want = i_rms**2 * 500.0 / F.pad_area_min_cm2
            got = RULES[[r.name for r in RULES].index("average_power_density")].evaluate(F, [i])[0, 0]
            assert got == pytest.approx(want, rel=1e-9)
            assert lv.rules["average_power_density"]["value"] == pytest.approx(want, rel=1e-5)  # 6 digits
            assert lv.rules["average_power_density_simulated"]["status"].startswith("reported")
        assert w.rms_pulse_train(1.0) == pytest.approx(math.sqrt(phases * _width_s(preset) * preset.frequency_Hz))
        row = check.output_table
        i = row["level_current_uA"] * 1e-6
        assert row["max_average_power_density_W_per_cm2"] == pytest.approx(
            (i * w.rms_pulse_train(1.0)) ** 2 * 500 / F.pad_area_min_cm2, rel=1e-5)  # fmt: skip
        assert "simulated_average_power_density_W_per_cm2" in row


def test_ac_and_dc_output_are_assessed_separately():
    pf = _pf()
    report = evaluate(pf, {group_key(q): _figures(q) for q in pf.presets})
    mono = pf.presets[1]  # monophasic 300 us at 80 Hz with on/off
    lv = report.presets[1].levels[-1]
    i = lv.current_uA * 1e-6
    duty = 300e-6 * 80  # the mean: the rise time moves no charge
    square = _width_s(mono) * 80  # the mean square: each edge's ramp takes t_r / 3 off the width
    assert mono.rise_time_us == 2.0
    assert lv.rules["iec_dc_current"]["value"] == pytest.approx(i * duty * 1e3, rel=1e-5)
    assert lv.rules["iec_rms_current"]["value"] == pytest.approx(i * math.sqrt(square - duty * duty) * 1e3, rel=1e-5)
    assert mono.waveform == "monophasic"


def test_re_evaluation_with_last_digit_noise_gives_byte_identical_json_and_export():
    pf = _pf(contact="head")
    pf = replace(pf, limits={k: v for k, v in pf.limits.items() if k != "net_dc_uA"} | {"net_dc_uA": 1e6})

    def noisy(p, eps):
        F = _figures(p)
        out = {}
        for name in ("rms_density_peak_mA_per_cm2_per_A", "peak_voltage_V_per_A", "power_density_W_per_cm2_per_A2",
                     "skin_rise_K", "cem43_rise_K", "exclusion_ratio_per_A"):  # fmt: skip
            # pi / 3: figures that are not round numbers (a round synthetic value can sit exactly on a
            # rounding boundary of the 6th digit, which a solved figure does with probability ~ noise / 1e-6)
            out[name] = getattr(F, name) * (math.pi / 3) * (1 + eps)
        return replace(F, **out)

    a = evaluate(pf, {group_key(q): noisy(q, 0.0) for q in pf.presets})
    b = evaluate(pf, {group_key(q): noisy(q, 3e-12) for q in pf.presets})
    assert json.dumps(a.to_json(), sort_keys=True) == json.dumps(b.to_json(), sort_keys=True)
    fa, fb = export_files(a), export_files(b)
    assert fa.manifest == fb.manifest and fa.binary == fb.binary and fa.header == fb.header
    # every float in the files has at most 6 significant digits (a headroom at most 4)
    body = json.loads(fa.manifest)

    def floats(x):
        if isinstance(x, float):
            yield x
        elif isinstance(x, dict):
            for v in x.values():
                yield from floats(v)
        elif isinstance(x, list):
            for v in x:
                yield from floats(v)

    for x in floats(body):
        assert float(f"{x:.6g}") == x


def test_a_rule_equal_in_every_case_to_rounding_names_no_binding_anatomy():
    """The charge density from each case's own mesh differs in its last bits: no corner is worse for it."""
    pf = _pf()
    figures = {}
    for p in pf.presets:
        F = _figures(p)
        jitter = np.array([1.0, 1.0 + 3.3e-13])  # two cases, one pad area to rounding (the sample's spread)
        figures[group_key(p)] = replace(F, charge_density_uC_per_cm2_per_A=F.charge_density_uC_per_cm2_per_A * jitter)
    report = evaluate(pf, figures)
    for p in report.presets:
        assert p.max_safe_current["shannon"]["anatomy"] == "every case (independent of the anatomy)"
        assert p.max_safe_current["rms_current_density"]["anatomy"] == "case1"  # 0.08 > 0.05 mA/cm^2 per mA


def test_the_cem43_dose_over_the_undominated_probes_is_the_dose_over_all_of_them():
    """A probe no warmer and heating no faster at every step than another never holds the largest dose."""
    from emsim.device.figures import undominated_probes
    from emsim.device.rules import cem43_at_scale

    rng = np.random.default_rng(7)
    pf = _pf()
    F = _figures(pf.presets[0])
    steps, probes = 41, 3000
    shape = 1.0 - np.exp(-np.linspace(0.0, 4.0, steps))  # every probe heats along the session's course
    rise = shape[:, None] * rng.uniform(0.0, 3.0, probes) + rng.normal(0.0, 0.02, (steps, probes)).clip(0.0)
    T0 = rng.uniform(34.0, 37.0, probes)
    T0[-100:] = -np.inf  # padded probes
    F = replace(F, cem43_T0_C=np.stack([T0, T0[::-1]]), cem43_rise_K=np.stack([rise, rise[:, ::-1]]), cem43_dt_s=15.0)
    for case in range(2):
        kept_T0, kept_rise = undominated_probes(F.cem43_T0_C[case], F.cem43_rise_K[case])
        assert len(kept_T0) < probes / 2  # the dominated ones are gone
        assert np.isfinite(kept_T0).all()
        kept = replace(F, cem43_T0_C=kept_T0[None, :], cem43_rise_K=kept_rise[None, :, :])
        for s in (0.0, 0.5, 1.0, 2.0, 4.0):
            full = cem43_at_scale(F, case, s)
            assert full > 0.0
            assert cem43_at_scale(kept, 0, s) == pytest.approx(full, rel=1e-14)
