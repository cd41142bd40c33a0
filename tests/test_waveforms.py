"""Specification of stimulation waveforms (emsim.models.waveforms).

Closed forms are checked against brute-force numerical integration of the waveform itself
(:meth:`Waveform.sample`, :meth:`Waveform.envelope`), so the two cannot drift apart.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import pytest

from emsim.errors import InputError
from emsim.models.waveforms import Waveform


def time_average(func: Callable[[np.ndarray], np.ndarray], period_s: float, n: int) -> float:
    """Midpoint-rule average of ``func`` over ``[0, period_s)`` with ``n`` cells."""
    t_s = (np.arange(n) + 0.5) * (period_s / n)
    return float(np.mean(func(t_s)))


def time_integral(func: Callable[[np.ndarray], np.ndarray], t_end_s: float, n: int) -> float:
    """Midpoint-rule integral of ``func`` over ``[0, t_end_s)`` with ``n`` cells."""
    return time_average(func, t_end_s, n) * t_end_s


PEAK_A = 0.02  # 20 mA

# 50 Hz, 250 us per phase, 50 us gap: every phase edge is a whole number of microseconds, so a
# midpoint rule on a 1 us grid integrates the rectangles exactly (to rounding).
SYMMETRIC = Waveform(
    shape="biphasic_symmetric", frequency_Hz=50.0, pulse_width_s=250e-6, interphase_gap_s=50e-6
)
ASYMMETRIC = Waveform(
    shape="biphasic_asymmetric",
    frequency_Hz=80.0,
    pulse_width_s=200e-6,
    interphase_gap_s=20e-6,
    asymmetry_ratio=4.0,
)
MONOPHASIC = Waveform(shape="monophasic", frequency_Hz=100.0, pulse_width_s=300e-6)
BURST = Waveform(
    shape="biphasic_symmetric",
    frequency_Hz=2500.0,
    pulse_width_s=100e-6,
    burst_frequency_Hz=50.0,
    burst_on_s=10e-3,
)
MICROCURRENT = Waveform(
    shape="microcurrent", frequency_Hz=10.0, pulse_width_s=50e-3, polarity_period_s=1.0
)
RAMPED = Waveform(
    shape="biphasic_symmetric",
    frequency_Hz=35.0,
    pulse_width_s=300e-6,
    on_s=5.0,
    off_s=10.0,
    ramp_up_s=1.5,
    ramp_down_s=2.0,
)


# ---- r.m.s. -----------------------------------------------------------------------------------


def test_symmetric_biphasic_rms_is_peak_times_sqrt_2_pw_f() -> None:
    expected_A = PEAK_A * math.sqrt(2 * 250e-6 * 50.0)  # PHYSICS.md, IEC 60601-2-10
    assert SYMMETRIC.rms(PEAK_A) == pytest.approx(expected_A, rel=1e-14)
    assert SYMMETRIC.rms_pulse_train(PEAK_A) == pytest.approx(expected_A, rel=1e-14)


@pytest.mark.parametrize(
    ("waveform", "n_cells"),
    [
        (SYMMETRIC, 20_000),  # 1 us cells
        (ASYMMETRIC, 12_500),  # 1 us cells
        (MONOPHASIC, 10_000),  # 1 us cells
        (BURST, 200_000),  # 0.1 us cells
        (MICROCURRENT, 10_000),  # 100 us cells
    ],
)
def test_pulse_train_rms_matches_numerical_integration_of_sample(
    waveform: Waveform, n_cells: int
) -> None:
    mean_square_A2 = time_average(
        lambda t: waveform.sample(PEAK_A, t) ** 2, waveform.period_s, n_cells
    )
    assert waveform.rms_pulse_train(PEAK_A) == pytest.approx(math.sqrt(mean_square_A2), rel=1e-9)


def test_asymmetric_1_to_4_rms_has_closed_form() -> None:
    # I^2 PW + (I/4)^2 (4 PW) = 1.25 I^2 PW per pulse
    expected_A = PEAK_A * math.sqrt(1.25 * 200e-6 * 80.0)
    assert ASYMMETRIC.rms(PEAK_A) == pytest.approx(expected_A, rel=1e-14)


def test_burst_holds_25_pulses_and_its_rms_counts_only_them() -> None:
    # 400 us pulse period, 200 us pulse: starts at 0, 0.4, ..., 9.6 ms end by 10 ms.
    assert BURST.pulses_per_burst == 25
    expected_A = math.sqrt(25 * 2 * 100e-6 * 50.0)
    assert BURST.rms_pulse_train(1.0) == pytest.approx(expected_A, rel=1e-14)


def test_ramped_rms_integrates_squared_envelope_exactly() -> None:
    mean_e2 = time_average(lambda t: RAMPED.envelope(t) ** 2, RAMPED.cycle_s, 150_000)
    closed_form = (5.0 - 2.0 / 3.0 * (1.5 + 2.0)) / 15.0
    assert RAMPED.mean_square_envelope == pytest.approx(closed_form, rel=1e-14)
    assert RAMPED.mean_square_envelope == pytest.approx(mean_e2, rel=1e-9)
    assert RAMPED.rms(PEAK_A) ** 2 == pytest.approx(
        RAMPED.rms_pulse_train(PEAK_A) ** 2 * mean_e2, rel=1e-9
    )


def test_whole_cycle_rms_matches_brute_force_product_of_envelope_and_pulses() -> None:
    # The closed form treats the envelope as continuous; with 50 pulses per ramp the pulses
    # sample the ramps finely enough for a 1e-4 agreement with the true product signal.
    waveform = Waveform(
        shape="biphasic_symmetric",
        frequency_Hz=1000.0,
        pulse_width_s=100e-6,
        on_s=0.2,
        off_s=0.1,
        ramp_up_s=0.05,
        ramp_down_s=0.05,
    )
    mean_square_A2 = time_average(
        lambda t: (waveform.envelope(t) * waveform.sample(PEAK_A, t)) ** 2, 0.3, 300_000
    )
    assert waveform.rms(PEAK_A) == pytest.approx(math.sqrt(mean_square_A2), rel=1e-4)


def test_rms_scales_linearly_with_peak_and_ignores_its_sign() -> None:
    assert SYMMETRIC.rms(-3 * PEAK_A) == pytest.approx(3 * SYMMETRIC.rms(PEAK_A), rel=1e-14)


# ---- duty factor and charge ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("waveform", "expected"),
    [
        (SYMMETRIC, 2 * 250e-6 * 50.0),
        (ASYMMETRIC, 5 * 200e-6 * 80.0),
        (MONOPHASIC, 300e-6 * 100.0),
        (BURST, 25 * 2 * 100e-6 * 50.0),
        (MICROCURRENT, 0.5),
    ],
)
def test_duty_factor_is_the_fraction_of_time_the_current_flows(
    waveform: Waveform, expected: float
) -> None:
    numerical = time_average(lambda t: waveform.sample(1.0, t) != 0.0, waveform.period_s, 200_000)
    assert waveform.duty_factor == pytest.approx(expected, rel=1e-12)
    assert waveform.duty_factor == pytest.approx(numerical, rel=1e-9)


@pytest.mark.parametrize("waveform", [SYMMETRIC, ASYMMETRIC, BURST, MICROCURRENT])
def test_balanced_waveforms_have_zero_net_charge_per_period(waveform: Waveform) -> None:
    numerical_C = time_integral(lambda t: waveform.sample(PEAK_A, t), waveform.period_s, 200_000)
    assert abs(numerical_C) < 1e-12 * abs(waveform.charge_per_phase_C(PEAK_A))
    assert waveform.net_charge_per_period_C(PEAK_A) == 0.0
    assert waveform.net_dc is False


def test_monophasic_carries_net_charge_and_is_flagged_net_dc() -> None:
    period_s = MONOPHASIC.period_s
    numerical_C = time_integral(lambda t: MONOPHASIC.sample(PEAK_A, t), period_s, 10_000)
    assert MONOPHASIC.net_charge_per_period_C(PEAK_A) == pytest.approx(PEAK_A * 300e-6, rel=1e-14)
    assert MONOPHASIC.net_charge_per_period_C(PEAK_A) == pytest.approx(numerical_C, rel=1e-9)
    assert MONOPHASIC.net_dc is True


def test_asymmetric_second_phase_carries_the_first_phase_charge() -> None:
    # Phase 2 runs from PW + gap = 220 us for 4 PW = 800 us at -I/4.
    second_C = time_integral(lambda t: ASYMMETRIC.sample(PEAK_A, 220e-6 + t), 800e-6, 800)
    assert ASYMMETRIC.charge_per_phase_C(PEAK_A) == pytest.approx(PEAK_A * 200e-6, rel=1e-14)
    assert second_C == pytest.approx(-ASYMMETRIC.charge_per_phase_C(PEAK_A), rel=1e-12)


def test_microcurrent_reverses_polarity_every_half_period() -> None:
    t_s = np.array([0.01, 0.41, 0.49, 0.51, 0.91, 1.01])
    np.testing.assert_array_equal(
        MICROCURRENT.sample(1e-4, t_s), [1e-4, 1e-4, 0.0, -1e-4, -1e-4, 1e-4]
    )
    # Five 50 ms pulses of 100 uA in one direction before the polarity flips.
    assert MICROCURRENT.unidirectional_charge_C(100e-6) == pytest.approx(25e-6, rel=1e-14)


def test_microcurrent_on_off_in_step_with_polarity_leaves_net_charge_over_a_session() -> None:
    # On 0.5 s / off 0.5 s in phase with a 1 s polarity period: only the positive half is
    # delivered, 25 uC per cycle, 600 cycles in 10 min.
    waveform = Waveform(
        shape="microcurrent",
        frequency_Hz=10.0,
        pulse_width_s=50e-3,
        polarity_period_s=1.0,
        on_s=0.5,
        off_s=0.5,
    )
    session_C = waveform.net_charge_per_session_C(100e-6, 600.0)
    assert session_C == pytest.approx(600 * 25e-6, rel=1e-12)
    assert MICROCURRENT.net_charge_per_session_C(100e-6, 600.0) == pytest.approx(0.0, abs=1e-18)
    assert MICROCURRENT.net_charge_per_session_C(100e-6, 600.5) == pytest.approx(25e-6, rel=1e-12)


def test_monophasic_session_charge_matches_brute_force_within_one_pulse() -> None:
    waveform = Waveform(
        shape="monophasic",
        frequency_Hz=100.0,
        pulse_width_s=200e-6,
        on_s=0.7,
        off_s=0.3,
        ramp_up_s=0.2,
        ramp_down_s=0.1,
    )
    session_s = 3.25
    numerical_C = time_integral(
        lambda t: waveform.envelope(t) * waveform.sample(PEAK_A, t), session_s, 650_000
    )
    expected_C = waveform.net_charge_per_session_C(PEAK_A, session_s)
    assert abs(expected_C - numerical_C) < PEAK_A * 200e-6
    # Three whole cycles of (0.7 - 0.15) s at the mean current, then 0.25 s: the 0.2 s ramp
    # up (0.1 s worth) and 0.05 s of plateau.
    mean_A = PEAK_A * 200e-6 * 100.0
    assert expected_C == pytest.approx(mean_A * (3 * 0.55 + 0.1 + 0.05), rel=1e-12)


def test_dc_charge_over_a_session_is_current_times_time_on() -> None:
    dc = Waveform(shape="dc", on_s=60.0, off_s=60.0, ramp_up_s=10.0, ramp_down_s=10.0)
    assert dc.net_dc is True
    assert dc.rms_pulse_train(1e-3) == pytest.approx(1e-3, rel=1e-14)
    assert dc.net_charge_per_session_C(1e-3, 1200.0) == pytest.approx(1e-3 * 500.0, rel=1e-12)
    assert dc.charge_per_phase_C(1e-3) == pytest.approx(1e-3 * 50.0, rel=1e-12)


# ---- envelope -------------------------------------------------------------------------------


def test_envelope_ramps_up_holds_ramps_down_and_rests() -> None:
    t_s = np.array([0.0, 0.75, 1.5, 3.0, 4.0, 5.0, 9.0, 15.0 + 0.75])
    np.testing.assert_allclose(
        RAMPED.envelope(t_s), [0.0, 0.5, 1.0, 1.0, 0.5, 0.0, 0.0, 0.5], rtol=1e-12, atol=1e-15
    )


# ---- spectrum -------------------------------------------------------------------------------


def fourier_coefficient(
    waveform: Waveform, k: int, intervals_s: list[tuple[float, float]]
) -> complex:
    """c_k = (1/T) integral_0^T sample(t) exp(-j 2 pi k t / T) dt by Gauss-Legendre per phase.

    ``intervals_s`` are the phases as the test derives them from the waveform's definition;
    the integrand is smooth on each, so 64 nodes give it to rounding.
    """
    nodes, weights = np.polynomial.legendre.leggauss(64)
    total = 0.0j
    for a, b in intervals_s:
        t_s = 0.5 * (b - a) * nodes + 0.5 * (a + b)
        integrand = waveform.sample(1.0, t_s) * np.exp(-2j * np.pi * k * t_s / waveform.period_s)
        total += 0.5 * (b - a) * np.sum(weights * integrand)
    return total / waveform.period_s


ASYMMETRIC_PHASES = [(0.0, 200e-6), (220e-6, 1020e-6)]
BURST_PHASES = [
    (m * 400e-6 + start, m * 400e-6 + end)
    for m in range(25)
    for start, end in ((0.0, 100e-6), (100e-6, 200e-6))
]
MICROCURRENT_PHASES = [(m * 0.1, m * 0.1 + 0.05) for m in range(10)]


@pytest.mark.parametrize(
    ("waveform", "intervals_s", "harmonics"),
    [
        (ASYMMETRIC, ASYMMETRIC_PHASES, [1, 7, 33, 251]),
        (BURST, BURST_PHASES, [1, 3, 50, 51, 1025]),
        (MICROCURRENT, MICROCURRENT_PHASES, [1, 3, 9, 11, 31]),
    ],
)
def test_spectrum_matches_numerical_fourier_integral(
    waveform: Waveform, intervals_s: list[tuple[float, float]], harmonics: list[int]
) -> None:
    frequencies_Hz, c_A = waveform.spectrum(1.0, 2500)
    for k in harmonics:
        expected = fourier_coefficient(waveform, k, intervals_s)
        assert frequencies_Hz[2500 + k] == pytest.approx(k / waveform.period_s, rel=1e-14)
        assert abs(expected) > 1e-6  # no accidental zero of the sinc
        assert abs(c_A[2500 + k] - expected) <= 1e-9 * abs(expected)


def test_spectrum_matches_fine_fft_of_samples() -> None:
    # 25 000 samples at the cell midpoints of a 0.5 us grid on which every phase edge lies;
    # the DFT then differs from the series only by the factor (pi k/n)/sin(pi k/n) - 1 < 2e-6
    # (aliasing) once the half-cell shift exp(j pi k/n) is undone.
    n = 25_000
    t_s = (np.arange(n) + 0.5) * (ASYMMETRIC.period_s / n)
    k = np.arange(41)
    fft_A = np.fft.fft(ASYMMETRIC.sample(PEAK_A, t_s))[:41] / n * np.exp(-1j * np.pi * k / n)
    _, c_A = ASYMMETRIC.spectrum(PEAK_A, 40)
    np.testing.assert_allclose(c_A[40:], fft_A, rtol=0, atol=1e-5 * abs(c_A).max())


@pytest.mark.parametrize("waveform", [SYMMETRIC, ASYMMETRIC, MONOPHASIC, BURST])
def test_spectrum_satisfies_parseval(waveform: Waveform) -> None:
    _, c_A = waveform.spectrum(PEAK_A, 4000)
    power_A2 = float(np.sum(np.abs(c_A) ** 2))
    rms_A2 = waveform.rms_pulse_train(PEAK_A) ** 2
    # A partial sum of |c_k|^2 never exceeds the mean square; the 1/k^2 tail beyond
    # N = 4000 holds below 1 % of it for these pulses.
    assert power_A2 <= rms_A2 * (1 + 1e-12)
    assert power_A2 == pytest.approx(rms_A2, rel=1e-2)


def test_spectrum_is_hermitian_with_mean_current_at_dc() -> None:
    _, c_A = MONOPHASIC.spectrum(PEAK_A, 10)
    np.testing.assert_allclose(c_A[::-1], np.conj(c_A), rtol=1e-13, atol=1e-20)
    assert c_A[10].real == pytest.approx(PEAK_A * 300e-6 * 100.0, rel=1e-13)


# ---- case files and bad input ------------------------------------------------------------------


def test_from_case_converts_case_units_to_si() -> None:
    waveform = Waveform.from_case(
        {
            "shape": "biphasic_symmetric",
            "pulse_width_us": 150,
            "frequency_Hz": 2500,
            "interphase_gap_us": 20,
            "burst_frequency_Hz": 50,
            "burst_on_ms": 9.9,
            "on_s": 5,
            "off_s": 10,
            "ramp_up_s": 1,
            "ramp_down_s": 1,
        }
    )
    assert waveform.pulse_width_s == pytest.approx(150e-6, rel=1e-14)
    assert waveform.interphase_gap_s == pytest.approx(20e-6, rel=1e-14)
    assert waveform.burst_on_s == pytest.approx(9.9e-3, rel=1e-14)
    assert waveform.on_s == 5.0
    # 400 us period, 320 us pulse: the pulse starting at 9.2 ms ends by 9.52 ms, the next
    # would end at 9.92 ms, after the 9.9 ms burst.
    assert waveform.pulses_per_burst == 24


@pytest.mark.parametrize(
    ("table", "field", "value"),
    [
        (  # both 600 us phases cannot fit in a 1 ms period
            {"shape": "biphasic_symmetric", "frequency_Hz": 1000, "pulse_width_us": 600},
            "waveform.pulse_width_us",
            600,
        ),
        (  # 1:4 needs 5 PW + gap <= 1 ms
            {
                "shape": "biphasic_asymmetric",
                "frequency_Hz": 1000,
                "pulse_width_us": 190,
                "interphase_gap_us": 60,
                "asymmetry_ratio": 4,
            },
            "waveform.pulse_width_us",
            190,
        ),
        (
            {"shape": "biphasic_symmetric", "frequency_Hz": -50, "pulse_width_us": 200},
            "waveform.frequency_Hz",
            -50,
        ),
        ({"shape": "sawtooth"}, "waveform.shape", "sawtooth"),
        (
            {"shape": "monophasic", "frequency_Hz": 50, "pulse_width_ms": 0.2},
            "waveform.pulse_width_ms",
            0.2,
        ),
        ({"frequency_Hz": 50}, "waveform.shape", None),
        (
            {"shape": "monophasic", "frequency_Hz": 50, "pulse_width_us": "200"},
            "waveform.pulse_width_us",
            "200",
        ),
        (
            {
                "shape": "monophasic",
                "frequency_Hz": 50,
                "pulse_width_us": 200,
                "interphase_gap_us": 10,
            },
            "waveform.interphase_gap_us",
            10,
        ),
        (
            {
                "shape": "microcurrent",
                "frequency_Hz": 10,
                "pulse_width_us": 50_000,
                "polarity_period_s": 0.35,
            },
            "waveform.polarity_period_s",
            0.35,
        ),
        (
            {
                "shape": "biphasic_symmetric",
                "frequency_Hz": 50,
                "pulse_width_us": 200,
                "burst_frequency_Hz": 80,
                "burst_on_ms": 5,
            },
            "waveform.burst_frequency_Hz",
            80,
        ),
        (
            {
                "shape": "biphasic_symmetric",
                "frequency_Hz": 50,
                "pulse_width_us": 200,
                "on_s": 2,
                "off_s": 4,
                "ramp_up_s": 1.5,
                "ramp_down_s": 1,
            },
            "waveform.ramp_down_s",
            1,
        ),
        ({"shape": "dc", "frequency_Hz": 50}, "waveform.frequency_Hz", 50),
        (
            {"shape": "biphasic_symmetric", "frequency_Hz": 50, "pulse_width_us": 200, "on_s": 5},
            "waveform.off_s",
            None,
        ),
    ],
)
def test_bad_case_table_names_the_case_key_and_its_value(
    table: dict[str, object], field: str, value: object
) -> None:
    with pytest.raises(InputError) as err:
        Waveform.from_case(table)
    assert err.value.field == field
    assert err.value.value == value


def test_pulse_too_wide_error_gives_the_limit_in_case_units() -> None:
    with pytest.raises(InputError) as err:
        Waveform.from_case(
            {"shape": "biphasic_symmetric", "frequency_Hz": 1000, "pulse_width_us": 600}
        )
    assert "must be <= 500 us" in str(err.value)


def test_unknown_key_error_lists_the_allowed_keys() -> None:
    with pytest.raises(InputError) as err:
        Waveform.from_case({"shape": "monophasic", "width_us": 200})
    assert err.value.field == "waveform.width_us"
    assert "pulse_width_us" in err.value.allowed
    assert "polarity_period_s" in err.value.allowed


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"shape": "biphasic_symmetric", "frequency_Hz": 1000.0, "pulse_width_s": 501e-6},
         "pulse_width_s"),
        ({"shape": "monophasic", "frequency_Hz": 0.0, "pulse_width_s": 1e-4}, "frequency_Hz"),
        ({"shape": "monophasic", "frequency_Hz": 50.0, "pulse_width_s": -1e-4}, "pulse_width_s"),
        ({"shape": "square", "frequency_Hz": 50.0, "pulse_width_s": 1e-4}, "shape"),
        ({"shape": "biphasic_asymmetric", "frequency_Hz": 50.0, "pulse_width_s": 1e-4,
          "asymmetry_ratio": 0.5}, "asymmetry_ratio"),
        ({"shape": "monophasic", "frequency_Hz": 50.0, "pulse_width_s": 1e-4,
          "burst_frequency_Hz": 2.0, "burst_on_s": 0.6}, "burst_on_s"),
        ({"shape": "monophasic", "frequency_Hz": 50.0, "pulse_width_s": 1e-4,
          "ramp_up_s": 1.0}, "ramp_up_s"),
    ],
)  # fmt: skip
def test_bad_field_names_the_si_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InputError) as err:
        Waveform(**kwargs)
    assert err.value.field == field
    assert err.value.value == kwargs[field]


def test_pulse_exactly_filling_half_the_period_is_allowed() -> None:
    waveform = Waveform(shape="biphasic_symmetric", frequency_Hz=100.0, pulse_width_s=5e-3)
    assert waveform.duty_factor == pytest.approx(1.0, rel=1e-14)


def test_negative_session_and_bad_harmonic_count_are_input_errors() -> None:
    with pytest.raises(InputError) as err:
        MONOPHASIC.net_charge_per_session_C(PEAK_A, -1.0)
    assert err.value.field == "session_s"
    with pytest.raises(InputError) as err:
        MONOPHASIC.spectrum(PEAK_A, -3)
    assert err.value.field == "n_harmonics"
