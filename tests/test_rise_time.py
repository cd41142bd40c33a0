"""The output rise time: trapezoidal pulses, exact spectrum, and the RC contact's closed form (issue 17)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emsim.errors import InputError
from emsim.models import parse_case
from emsim.models.waveforms import Waveform
from emsim.solvers.reference.electric import rc_contact_mean_power, rc_contact_periodic_voltage

TRAPEZOID = {"shape": "biphasic_symmetric", "pulse_width_us": 100.0, "frequency_Hz": 1000.0,
             "interphase_gap_us": 20.0, "rise_time_us": 10.0}  # fmt: skip


def _wave(**kw) -> Waveform:
    return Waveform.from_case(TRAPEZOID | kw)


def test_a_trapezoidal_pulse_ramps_each_edge_over_the_rise_time_and_keeps_the_phase_charge():
    w = _wave()
    t = np.array([0.0, 5e-6, 10e-6, 100e-6, 105e-6, 110e-6, 120e-6, 125e-6, 130e-6, 220e-6, 230e-6])
    assert w.sample(1.0, t) == pytest.approx([0, 0.5, 1, 1, 0.5, 0, 0, -0.5, -1, -1, 0], abs=1e-12)
    grid = np.linspace(0.0, 120e-6, 240_001)
    i = w.sample(1.0, grid)
    charge = np.sum(0.5 * (i[1:] + i[:-1]) * np.diff(grid))  # the first phase alone (second starts at 120 us)
    assert charge == pytest.approx(100e-6, rel=1e-9)
    assert w.charge_per_phase_C(1.0) == pytest.approx(100e-6)


def test_mean_square_of_separated_trapezoids_is_a2_times_w_minus_tr_over_3():
    w = _wave()
    assert w.rms_pulse_train(1.0) ** 2 == pytest.approx(2 * (100e-6 - 10e-6 / 3) * 1000.0, rel=1e-12)
    # overlapping ramps (no gap): checked against a fine numerical integral
    w0 = _wave(interphase_gap_us=0.0)
    t = np.linspace(0.0, w0.period_s, 2_000_001)
    assert w0.rms_pulse_train(1.0) ** 2 == pytest.approx(np.mean(w0.sample(1.0, t[:-1]) ** 2), rel=1e-5)


@pytest.mark.parametrize("shape", ["biphasic_symmetric", "biphasic_asymmetric", "monophasic"])
def test_the_spectrum_is_the_rectangles_times_the_box_transform_and_matches_the_sampled_pulse(shape):
    kw = {"shape": shape}
    if shape == "biphasic_asymmetric":
        kw["asymmetry_ratio"] = 3.0
    if shape == "monophasic":
        kw["interphase_gap_us"] = 0.0
    w = _wave(**kw)
    T, N, M = w.period_s, 40, 400_000
    t = np.arange(M) * (T / M)
    i = w.sample(1.0, t)
    _, c = w.spectrum(1.0, N)
    k = np.arange(-N, N + 1)
    direct = np.exp(-2j * np.pi * np.outer(k, t) / T) @ i / M  # the trapezoid is continuous: a Riemann sum converges fast
    assert np.max(np.abs(direct - c)) < 1e-8
    # and it is the ideal pulse's spectrum times sinc(k t_r / T) exp(-j pi k t_r / T)
    _, c0 = _wave(**kw, rise_time_us=0.0).spectrum(1.0, N)
    r = 10e-6 / T
    assert np.allclose(c, c0 * np.sinc(k * r) * np.exp(-1j * np.pi * k * r), rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("change", "words"),
    [({"rise_time_us": -1.0}, ">= 0"), ({"rise_time_us": 150.0}, "shortest phase"),
     ({"rise_time_us": 10.0, "frequency_Hz": 4545.0}, "next pulse")],
)  # fmt: skip
def test_bad_rise_times_are_input_errors_naming_the_key(change, words):
    with pytest.raises(InputError, match=words) as err:
        _wave(**change)
    assert err.value.field == "waveform.rise_time_us"


def test_dc_has_no_edge_to_ramp():
    with pytest.raises(InputError) as err:
        Waveform.from_case({"shape": "dc", "rise_time_us": 2.0})
    assert err.value.field == "waveform.rise_time_us"


def _fourier_rc(w: Waveform, peak_A: float, series_ohm: float, contact_ohm: float, contact_F: float, t: np.ndarray):
    """V(t) of R + (R_c || C_c) from the waveform's exact Fourier series (independent of the closed form)."""
    f, c = w.spectrum(peak_A, 20_000)
    z = series_ohm + contact_ohm / (1 + 2j * np.pi * f * contact_ohm * contact_F)
    return np.real(np.exp(2j * np.pi * np.outer(t, f)) @ (c * z)), float(np.sum(np.abs(c) ** 2 * np.real(z - series_ohm)))


def test_rc_contact_closed_form_for_a_trapezoidal_train_matches_its_fourier_series():
    w = _wave()
    R, Rc, C = 50.0, 100.0, 1e-6  # tau = 100 us, the pulse width
    t = np.linspace(0.0, w.period_s, 1601)[:-1]
    fourier, power = _fourier_rc(w, 0.01, R, Rc, C, t)
    closed = rc_contact_periodic_voltage(w, 0.01, R, Rc, C, t)
    # the trapezoid is continuous, so its series converges like 1/k^2: 20,000 harmonics hold 1e-3
    assert np.max(np.abs(closed - fourier)) / np.max(np.abs(closed)) < 1e-3
    assert rc_contact_mean_power(w, 0.01, Rc, C) == pytest.approx(power, rel=1e-9)
    # a ramp of t_r at the onset: the resistive jump R I of an ideal step is spread over t_r
    assert closed[0] == pytest.approx(rc_contact_periodic_voltage(w, 0.01, R, Rc, C, [w.period_s - 1e-9])[0], abs=1e-6)
    step = rc_contact_periodic_voltage(_wave(rise_time_us=0.0), 0.01, R, Rc, C, np.array([1e-9]))[0]
    assert step > 0.9 * R * 0.01 and abs(closed[0]) < 0.05 * step


def test_rc_column_driven_by_a_trapezoidal_train_matches_the_closed_form():
    from test_frequency import (
        AREA_M2,
        C_C_F_PER_M2,
        R_C_OHM_M2,
        column_table,
        series_resistance_ohm,
    )

    from emsim.meshes.patch import build_patch_mesh
    from emsim.solvers.spectral.sweep import waveform_response

    case = parse_case(column_table(waveform=TRAPEZOID))
    patch = build_patch_mesh(case)
    lead = waveform_response(case, patch, n_frequencies=24)
    resp = lead.time_course([0.01])
    v = resp.channel_voltage_V["1"]
    reference = rc_contact_periodic_voltage(
        case.waveform, 0.01, series_resistance_ohm(False), R_C_OHM_M2 / AREA_M2, C_C_F_PER_M2 * AREA_M2, resp.times_s
    )
    assert np.max(np.abs(v - reference)) / np.max(np.abs(reference)) < 1e-3
    # the pulse instants start on the ramp: half way up, at the top, then into the phase
    assert lead.instants_s[:3] == pytest.approx([5e-6, 10e-6, 10e-6 + 90e-6 * 1e-4])
    assert math.isfinite(lead.interpolation_error)
