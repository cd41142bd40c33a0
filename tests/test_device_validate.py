"""Preset validation on a solved head: one mesh, electric solve and frequency response per anatomy
case (every waveform from it), and the level figures agree with the solver's own metrics at the
level current."""

from __future__ import annotations

import numpy as np
import pytest

from emsim.device.presets import read_presets
from emsim.device.validate import group_key, validate
from emsim.models.toml import dumps as to_toml
from emsim.solvers.linalg import ksp as linear

from conftest import small_cheek_table

PRESETS = """
[device]
name = "tiny"
electrode_head = "head.toml"
compliance_voltage_V = 60
[validation]
spread = "nominal"
contact = "head"
safety_factor = 1.0
[[preset]]
id = 1
name = "a"
waveform = "biphasic_symmetric"
pulse_width_us = 250
interphase_gap_us = 50
frequency_Hz = 50
levels_uA = [2000, 5000, 50000]
session_min = 1
[[preset]]
id = 2
name = "b"
waveform = "biphasic_symmetric"
pulse_width_us = 250
interphase_gap_us = 50
frequency_Hz = 50
levels_uA = [1000, 8000]
session_min = 1
[[preset]]
id = 3
name = "c"
waveform = "biphasic_asymmetric"
asymmetry_ratio = 4
pulse_width_us = 200
interphase_gap_us = 20
frequency_Hz = 80
levels_uA = [1000, 3000]
session_min = 1
"""


@pytest.mark.slow
def test_validation_solves_once_per_anatomy_case_and_levels_scale_by_linearity(tmp_path):
    head = small_cheek_table(thermal=True, size_factor=2.5)
    head["solver"] = {"waveform_frequencies": 12, "waveform_tolerance": 0.05}
    head["thermal"] = {"session_min": 1.0, "time_step_s": 30.0}
    for e in head["electrode"]:
        e["contact"] = {"resistance_ohm_cm2": 2900.0, "capacitance_uF_per_cm2": 0.0155}
    (tmp_path / "head.toml").write_text(to_toml(head))
    (tmp_path / "presets.toml").write_text(PRESETS)
    pf = read_presets(tmp_path / "presets.toml")
    before = linear.SOLVES.get("emsim_electric", 0)
    report, results = validate(pf)
    # one anatomy case: one mesh and one electric solve per pad, whatever the number of waveforms
    # (presets 1 and 2 share a waveform; preset 3 is synthesised from the same frequency response)
    assert report.solves == 1
    assert len(results) == 2  # a result per distinct waveform and session, from the one response
    assert linear.SOLVES["emsim_electric"] - before == len(head["electrode"])
    p = report.presets[0]
    r = results[(group_key(pf.presets[0]), 0)]
    for lv in p.levels:
        i = lv.current_uA * 1e-6
        m = r.at([i])
        peak = max(m.iec.rms_current_density_local_peak_mA_per_cm2.values())
        # the solver's record and the rule share one definition (plateau r.m.s., local peak)
        assert lv.rules["rms_current_density"]["value"] == pytest.approx(peak, rel=1e-5)
        assert lv.rules["compliance_voltage"]["value"] == pytest.approx(m.waveform.electrode_voltage_peak_V, rel=1e-5)
        assert lv.rules["skin_temperature"]["value"] == pytest.approx(m.thermal.skin_temperature_peak_C, abs=1e-4)
        # CEM43 of the heated region, every node of it a probe: the rule's rescaled dose is the
        # solver's at every level (at the reference current the solver's own dose field), to the
        # JSON's 6 digits
        assert lv.rules["cem43"]["value"] == pytest.approx(m.thermal.cem43_heated_max_min, rel=1e-5, abs=1e-12)
    # 50 mA drives more than 60 V through 2.9 kohm cm^2 pads: the compliance rule binds it
    assert not p.levels[-1].passed
    assert p.max_safe_level == 2
    assert p.levels[-1].binding_rule in {"compliance_voltage", "rms_current_density"}
    v = np.array([lv.rules["compliance_voltage"]["value"] for lv in p.levels])
    np.testing.assert_allclose(v / v[0], np.array(pf.presets[0].levels_uA) / 2000, rtol=1e-5)  # JSON figures: 6 digits
