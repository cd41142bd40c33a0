"""Presets: consistency checks, rules against closed forms, level evaluation, export (no physics)."""

from __future__ import annotations

import itertools
import json
import math
import struct
import tomllib
import zlib

import numpy as np
import pytest
from device_helpers import PRESETS_TOML, synthetic_figures
from hypothesis import given, settings
from hypothesis import strategies as st

from emsim.device.export import (
    FIELD_HASH,
    RECORD_SIZE,
    ExportRefused,
    export_files,
    precheck,
    write_export,
)
from emsim.device.presets import parse_presets
from emsim.device.validate import evaluate, group_key
from emsim.errors import InputError


def _presets(**changes):
    raw = tomllib.loads(PRESETS_TOML)
    for key, value in changes.items():
        raw["preset"][0][key] = value
    return parse_presets(raw, text=json.dumps(raw))


def _report(pf, **kw):
    figures = {group_key(p): synthetic_figures(p, **kw) for p in pf.presets}
    return evaluate(pf, figures)


@pytest.mark.parametrize(
    ("changes", "field", "words"),
    [
        ({"levels_uA": [2, 4, 6]}, "preset[0].levels_uA[0]", "mA"),
        ({"levels_uA": [2000, 4000, 4000]}, "preset[0].levels_uA", "strictly increasing"),
        ({"levels_uA": [2000, 1500]}, "preset[0].levels_uA", "strictly increasing"),
        ({"levels_uA": [2000, 200_000]}, "preset[0].levels_uA[1]", "100000"),
        ({"levels_uA": [2000.5]}, "preset[0].levels_uA[0]", "whole number"),
        ({"id": 9}, "preset[1].id", "unique"),
        ({"pulse_width_us": 9000, "frequency_Hz": 100}, "preset[0]", "period"),
        ({"frequency_Hz": 50.5}, "preset[0].frequency_Hz", "whole number"),
        ({"waveform": "dc"}, "preset[0].waveform", "biphasic_symmetric"),
        ({"colour": "red"}, "preset[0].colour", "unknown key"),
        ({"burst": {"on_s": 2.0, "off_s": 1.0, "ramp_s": 1.5}}, "preset[0].burst.ramp_s", "<= 1.0"),
    ],
)
def test_inconsistent_presets_are_named_before_any_physics(changes, field, words):
    with pytest.raises(InputError) as err:
        _presets(**changes)
    assert err.value.field.startswith(field)
    assert words in str(err.value)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(10, 100_000), min_size=2, max_size=16).filter(lambda v: any(b <= a for a, b in itertools.pairwise(v))))
def test_any_level_table_that_is_not_strictly_increasing_is_rejected(levels):
    with pytest.raises(InputError, match="strictly increasing"):
        _presets(levels_uA=levels)


def test_rms_energy_and_charge_rules_match_closed_forms():
    pf = _presets()
    report = _report(pf)
    p = pf.presets[0]  # symmetric biphasic, no on/off: I_rms = I sqrt(2 (PW - t_r/3) f) (trapezoidal edges)
    assert p.rise_time_us == 2.0  # the [device] default
    for lv in report.presets[0].levels:
        i = lv.current_uA * 1e-6
        pw = p.pulse_width_us * 1e-6
        pw_eff = pw - 2e-6 / 3
        assert lv.rules["iec_rms_current"]["value"] == pytest.approx(i * math.sqrt(2 * pw_eff * 50) * 1e3, rel=1e-5)
        assert lv.rules["iec_energy_per_pulse"]["value"] == pytest.approx(500 * i * i * 2 * pw_eff * 1e3, rel=1e-5, abs=1e-6)
        assert lv.rules["charge_per_phase"]["value"] == pytest.approx(i * pw * 1e6, rel=1e-5)
    # with on/off and ramps the IEC figure is the plateau's r.m.s., never diluted by the off time
    lv = report.presets[1].levels[-1]
    expected = lv.current_uA * 1e-6 * math.sqrt(2 * (300e-6 - 2e-6 / 3) * 80) * 1e3
    assert lv.rules["iec_rms_current"]["value"] == pytest.approx(expected, rel=1e-5)
    row = report.presets[0].output_table
    i = row["level_current_uA"] * 1e-6
    assert row["max_phase_charge_500ohm_uC"] == pytest.approx(i * 200e-6 * 1e6, rel=1e-6)
    assert row["max_voltage_10kohm_V"] == pytest.approx(min(i * 1e4, 60.0))


def test_monophasic_net_dc_closed_form_and_precheck_refuses_it():
    raw = tomllib.loads(PRESETS_TOML)
    raw["preset"][1] |= {"waveform": "monophasic"}
    del raw["preset"][1]["interphase_gap_us"]
    pf = parse_presets(raw)
    # mean current = I PW f x mean envelope; linear ramps of 1 s in a 5 s on time, 5 s off: (5 - 1) / 10
    expected = 1000e-6 * 300e-6 * 80 * (5.0 - 1.0) / 10.0 * 1e6
    report = _report(pf)
    assert report.presets[1].levels[0].rules["net_dc_current"]["value"] == pytest.approx(expected, rel=1e-6)
    assert report.presets[1].level_independent_failures == ["net_dc_current"]
    assert any("net d.c. 0.096 uA" in r or "net d.c." in r for r in precheck(pf))


def test_safe_level_follows_the_worst_anatomy_case_and_the_safety_factor():
    pf = _presets()
    report = _report(pf, peak_density=(0.05, 0.08), volts_per_A=(100.0, 100.0))
    check = report.presets[0]
    # local peak 0.08 mA/cm^2 per mA in the worst case; x1.5 within 2 mA/cm^2 -> I_rms <= 16.67 mA,
    # and I_rms / I = sqrt(2 PW f) = 0.1414 (whole cycle, continuous): the 2 mA/cm^2 limit is on
    # r.m.s. density = 0.08 x I[mA] (the figures are per peak current): I <= 2 / (1.5 x 0.08) = 16.7 mA
    limit_mA = 2.0 / (1.5 * 0.08)
    expect = sum(1 for v in pf.presets[0].levels_uA if v / 1e3 <= limit_mA)
    assert check.max_safe_level == expect == 5
    failing = check.levels[expect]
    assert failing.binding_rule == "rms_current_density"
    assert failing.worst_anatomy == "case1"
    # headroom in current: I_max_safe = 2 / (1.5 x 0.08) mA, so at 20 mA it is I_max_safe / 20 - 1 < 0
    assert failing.headroom == pytest.approx(limit_mA / 20.0 - 1.0, rel=1e-9)
    assert check.max_safe_current["rms_current_density"]["max_safe_current_uA"] == pytest.approx(limit_mA * 1e3, rel=1e-5)  # 6 digits


def test_export_is_byte_identical_drops_unsafe_levels_and_matches_the_json(tmp_path):
    pf = _presets()
    report = _report(pf, volts_per_A=(100.0, 100.0))
    first = write_export(export_files(report), tmp_path / "a")
    second = write_export(export_files(_report(pf, volts_per_A=(100.0, 100.0))), tmp_path / "b")
    for f1, f2 in zip(first, second, strict=True):
        assert f1.read_bytes() == f2.read_bytes()
    blob = (tmp_path / "a" / "ems_presets.bin").read_bytes()
    magic, version, _, fhash, count = struct.unpack_from("<4sHHII", blob)
    assert (magic, version, fhash, count) == (b"EMSP", 1, FIELD_HASH, 2)
    assert len(blob) == 16 + 2 * RECORD_SIZE + 4
    assert struct.unpack_from("<I", blob, len(blob) - 4)[0] == zlib.crc32(blob[:-4])
    manifest = json.loads((tmp_path / "a" / "ems_presets.json").read_text())
    assert manifest["presets"][0]["levels_uA"] == [2000, 4000, 6000, 8000, 10000]
    assert manifest["dropped_levels"]["7"][0]["binding_rule"] == "rms_current_density"
    assert "timestamp" not in json.dumps(manifest).lower()
    assert "2000u, 4000u, 6000u, 8000u, 10000u, 0u" in (tmp_path / "a" / "ems_presets.h").read_text()


def test_refused_export_writes_nothing_and_leaves_existing_files(tmp_path):
    pf = _presets(levels_uA=[40000, 60000])  # no safe level: 0.08 x 40 x 1.5 > 2 mA/cm^2
    report = _report(pf)
    into = tmp_path / "into"
    into.mkdir()
    (into / "ems_presets.bin").write_bytes(b"old")
    with pytest.raises(ExportRefused, match="no safe level"):
        write_export(export_files(report), into)
    assert sorted(p.name for p in into.iterdir()) == ["ems_presets.bin"]
    assert (into / "ems_presets.bin").read_bytes() == b"old"


def test_max_safe_currents_agree_with_the_per_level_headroom():
    from emsim.device.rules import RULES, RuleContext
    from emsim.device.validate import max_safe_currents

    pf = _presets()
    p = pf.presets[0]
    F = synthetic_figures(p)
    m = max_safe_currents(F, RuleContext(pf.device, p, pf.limits), 1.5)
    report = _report(pf)
    j = [r.name for r in RULES].index("rms_current_density")
    for lv in report.presets[0].levels:
        assert m[j].min() / (lv.current_uA * 1e-6) - 1 == pytest.approx(lv.rules["rms_current_density"]["headroom"], rel=1e-3)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(30, 40), st.floats(0, 5)), min_size=1, max_size=40))
def test_upper_envelope_keeps_the_maximum_of_every_line_for_every_scale(lines):
    from emsim.device.figures import upper_envelope

    T0, rise = np.array([a for a, _ in lines]), np.array([b for _, b in lines])
    t, r = upper_envelope(T0, rise)
    s = np.concatenate([np.linspace(0, 2, 201), [10.0, 1e3]])
    full = (T0[None, :] + s[:, None] * rise[None, :]).max(axis=1)
    np.testing.assert_allclose((t[None, :] + s[:, None] * r[None, :]).max(axis=1), full, rtol=0, atol=1e-9)


def test_cached_figures_reload_to_the_same_export_and_refuse_other_inputs(tmp_path):
    from emsim.device.figures import load_figures, save_figures

    pf = _presets()
    figures = {group_key(p): synthetic_figures(p, volts_per_A=(100.0, 100.0)) for p in pf.presets}
    save_figures(tmp_path / "figures.npz", figures, pf.digest_sha256)
    again = load_figures(tmp_path / "figures.npz", pf.digest_sha256)
    assert export_files(evaluate(pf, again)).binary == export_files(evaluate(pf, figures)).binary
    with pytest.raises(InputError, match="same inputs"):
        load_figures(tmp_path / "figures.npz", _presets(session_min=9).digest_sha256)


def test_exclusion_zone_binds_by_linearity_and_comfort_is_reported_never_failing():
    from dataclasses import replace

    pf = _presets()
    p = pf.presets[0]
    # zone value/limit 0.1 per mA in the worst case: x1.5 <= 1 -> I <= 6.67 mA; sensation at 1 mA
    base = synthetic_figures(p, volts_per_A=(100.0, 100.0))
    figures = {group_key(q): replace(synthetic_figures(q, volts_per_A=(100.0, 100.0)), exclusion_ratio_per_A=np.array([50.0, 100.0]),
                                     sensory_threshold_A=np.array([1e-3, 1.2e-3])) for q in pf.presets}  # fmt: skip
    report = evaluate(pf, figures)
    check = report.presets[0]
    expect = sum(1 for v in p.levels_uA if 1.5 * 0.1 * v / 1e3 <= 1.0)
    assert check.max_safe_level == expect == 3
    failing = check.levels[expect]
    assert failing.binding_rule == "exclusion_zone" and failing.worst_anatomy == "case1"
    assert failing.headroom == pytest.approx((1.0 / (1.5 * 0.1)) / (p.levels_uA[expect] / 1e3) - 1.0, rel=1e-9)
    comfort = failing.rules["comfort"]
    assert comfort["value"] == pytest.approx(p.levels_uA[expect] / 1e3, rel=1e-9)  # worst: lowest threshold
    # without the figures (a head with no zone): the rule says why, it never passes silently
    plain = evaluate(pf, {group_key(q): base for q in pf.presets})
    assert "not evaluated" in plain.not_evaluated["exclusion_zone"]
    assert "not evaluated" in plain.not_evaluated["comfort"]
