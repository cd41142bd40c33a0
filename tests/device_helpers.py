"""Device-test helpers: synthetic per-unit figures for tests that need no physics (values chosen,
not solved), and the tiny head and one-preset file the corner-search tests solve."""

from __future__ import annotations

import numpy as np

from emsim.device.figures import FigureSet, dc_ratio, energy_per_pulse_mJ_per_A2, net_dc_uA
from emsim.device.presets import Preset

PRESETS_TOML = """
[device]
name = "test-device"
electrode_head = "cheek-two-pads"
compliance_voltage_V = 60
[validation]
safety_factor = 1.5
spread = "nominal"
[[preset]]
id = 7
name = "lift"
waveform = "biphasic_symmetric"
pulse_width_us = 200
interphase_gap_us = 50
frequency_Hz = 50
levels_uA = [2000, 4000, 6000, 8000, 10000, 20000]
session_min = 10
[[preset]]
id = 9
name = "tone"
waveform = "biphasic_symmetric"
pulse_width_us = 300
interphase_gap_us = 50
frequency_Hz = 80
levels_uA = [1000, 3000, 5000]
session_min = 5
burst = { on_s = 5.0, off_s = 5.0, ramp_s = 1.0 }
"""


def synthetic_figures(preset: Preset, *, peak_density=(0.05, 0.08), volts_per_A=(2000.0, 3000.0)) -> FigureSet:
    """Two anatomy cases with chosen per-unit figures (mA/cm^2 per mA for the local peak)."""
    w = preset.waveform_model()
    n = len(peak_density)
    rms = w.rms_pulse_train(1.0)
    dc = dc_ratio(w)
    # CEM43 probes: two probes per case, a basal 37 / 36 C and a rise history growing to 1 / 2 K
    # at the reference current over 20 steps of 30 s (no dose near 1 min below 2x the reference)
    hist = np.linspace(0.0, 1.0, 21)[:, None] * np.array([1.0, 2.0])[None, :]
    return FigureSet(
        labels=tuple(f"case{i}" for i in range(n)), compliance_voltage_V=60.0, rms_ratio=rms,
        ac_rms_ratio=float(np.sqrt(rms * rms - dc * dc)), dc_ratio=dc, pad_area_min_cm2=1.767,
        energy_mJ_per_A2=energy_per_pulse_mJ_per_A2(w),
        rms_density_peak_mA_per_cm2_per_A=np.array(peak_density) * 1e3,  # per mA of peak -> per A
        rms_density_mean_mA_per_cm2_per_A=np.array(peak_density) * 0.9e3,
        charge_per_phase_uC_per_A=np.full(n, w.charge_per_phase_C(1.0) * 1e6),
        charge_density_uC_per_cm2_per_A=np.full(n, w.charge_per_phase_C(1.0) * 1e6 / 1.767),
        net_dc_uA_per_A=np.full(n, net_dc_uA(w, 1.0)),
        power_density_W_per_cm2_per_A2=np.full(n, 1.0),
        peak_voltage_V_per_A=np.array(volts_per_A), thermal_reference_A=max(preset.levels_A),
        skin_basal_C=np.full(n, 34.0), skin_T0_C=np.array([[34.0, 33.5]] * n), skin_rise_K=np.array([[0.5, 1.0]] * n),
        cem43_T0_C=np.tile([37.0, 36.0], (n, 1)), cem43_rise_K=np.tile(hist, (n, 1, 1)), cem43_dt_s=30.0,
        current_for_target_A=np.full(n, 0.009),
    )  # fmt: skip


def tiny_corners_presets(*, contact: str, sites: str | None = None) -> str:
    """A one-preset file (250 us biphasic at 50 Hz, 2 and 5 mA, 1 min) over ``head.toml`` with spread = "corners".

    Args:
        contact: ``[validation] contact`` (a contact range name, or "head").
        sites: a site of models/data/sites.toml whose stack replaces the head's, or None.
    """
    site_line = f'sites = ["{sites}"]\n' if sites else ""
    return f"""[device]
name = "tiny"
electrode_head = "head.toml"
compliance_voltage_V = 60
{site_line}[validation]
spread = "corners"
contact = "{contact}"
safety_factor = 1.5
[[preset]]
id = 1
name = "a"
waveform = "biphasic_symmetric"
pulse_width_us = 250
interphase_gap_us = 50
frequency_Hz = 50
levels_uA = [2000, 5000]
session_min = 1
"""


def tiny_corners_head() -> dict:
    """The tiny two-pad head (conftest.small_two_pad_table) at the corner-search tests' cheap settings.

    The search is checked against brute force, or serial against parallel, over the same
    evaluations, so the waveform sweep's accuracy does not enter: a 20 % error estimate (fewer
    frequency solves per corner), a 1-minute session in 30 s heat steps, and the head's own
    carbon-rubber contact fit (2.9 kohm cm^2, 0.0155 uF/cm^2; cheek-head.toml).
    """
    from conftest import small_two_pad_table

    head = small_two_pad_table()
    head["solver"] = {"waveform_frequencies": 16, "waveform_tolerance": 0.2}
    head["thermal"] = {"session_min": 1.0, "time_step_s": 30.0}
    for e in head["electrode"]:
        e["contact"] = {"resistance_ohm_cm2": 2900.0, "capacitance_uF_per_cm2": 0.0155}
    return head
