"""The phosphene criterion's physics: ICNIRP 2010 CNS limits, the weighted-peak filter, the population factor."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emsim.models.waveforms import Waveform
from emsim.solvers.physiology.phosphene import (
    NAYCHEVA_2012_THRESHOLD_A,
    POPULATION_FACTOR,
    TIERS,
    lognormal_fraction,
    weighted_peak_index,
)


def test_the_cns_limits_are_the_icnirp_2010_values_at_20_and_60_hz():
    occ, pub = TIERS["occupational"], TIERS["public"]
    assert occ.rms_V_per_m([20.0, 60.0]) == pytest.approx([0.05, 0.12], rel=1e-12)  # 120 mV/m at 60 Hz
    assert pub.rms_V_per_m([20.0, 60.0]) == pytest.approx([0.01, 0.024], rel=1e-12)  # 24 mV/m at 60 Hz
    # the segments are continuous, and the public tier is the occupational one / 5 up to 400 Hz
    f = np.geomspace(1.0, 1e7, 2001)
    e = occ.rms_V_per_m(f)
    assert np.max(np.abs(np.diff(np.log(e)))) < 0.02
    low = f <= 400
    assert occ.rms_V_per_m(f[low]) == pytest.approx(5 * pub.rms_V_per_m(f[low]), rel=1e-12)


@pytest.mark.parametrize("tier", ["occupational", "public"])
def test_the_filter_gain_is_one_over_root2_times_the_limit_on_every_asymptote(tier):
    lim = TIERS[tier]
    ratio = lambda f: np.abs(lim.weight_per_V_per_m(f)) * math.sqrt(2) * lim.rms_V_per_m(f)
    # a decade or more from every corner the first-order sections meet their asymptotes
    for f in (1.0, 1e5, 1e6):
        assert ratio(f) == pytest.approx(1.0, abs=0.01), f
    mid = math.sqrt(lim.f_rise_Hz * lim.f_flat_Hz) * 1.0  # between the rising corners
    assert ratio(mid) == pytest.approx(1.0, abs=0.3)
    # and it never departs from the piecewise curve by more than 3 dB per corner (two at most overlap)
    f = np.geomspace(1.0, 1e7, 4001)
    assert np.all(ratio(f) > 0.5) and np.all(ratio(f) < 1.42)


def test_a_sinusoid_has_the_index_root2_e_rms_times_the_filter_gain():
    f0, e_rms = 60.0, 0.12
    t = np.linspace(0, 1 / f0, 4001)
    ei = weighted_peak_index(np.array([f0]), np.array([[math.sqrt(2) * e_rms, 0, 0]]), t)
    gain = abs(TIERS["occupational"].weight_per_V_per_m(f0))
    assert ei == pytest.approx(math.sqrt(2) * e_rms * gain, rel=1e-6)
    assert 0.85 < ei < 1.0  # at the limit, within the filter's departure near the 25 Hz corner


def test_the_weighted_peak_of_a_pulse_train_matches_the_same_filter_run_in_the_time_domain():
    from scipy import signal

    # 5 + 5 ms biphasic pulses at 20 Hz (Naycheva 2012), field 0.1 V/m per unit current along x
    w = Waveform(shape="biphasic_symmetric", frequency_Hz=20.0, pulse_width_s=5e-3, interphase_gap_s=0.0,
                 rise_time_s=10e-6)  # fmt: skip
    n = 4000
    f, c = w.spectrum(0.1, n)
    k = f > 0
    t = np.linspace(0.0, w.period_s, 5001)
    ei = weighted_peak_index(f[k], 2 * c[k], t)
    lim = TIERS["occupational"]
    wn = 2 * np.pi * np.array([lim.f_low_Hz, lim.f_rise_Hz, lim.f_flat_Hz, lim.f_high_Hz])
    # W(s) = s/w1 / (1 + s/w1) / (1 + s/w2) * (1 + s/w3) / (1 + s/w4) / (sqrt2 E_flat)
    num = np.polymul([1 / wn[0], 0.0], [1 / wn[2], 1.0])
    den = np.polymul(np.polymul([1 / wn[0], 1.0], [1 / wn[1], 1.0]), [1 / wn[3], 1.0])
    num = num / (math.sqrt(2) * lim.flat_V_per_m)
    periods = 12  # the slowest pole (10 Hz) settles to 1e-6 in well under 12 periods of 50 ms
    tt = np.linspace(0.0, periods * w.period_s, periods * 5000 + 1)  # 10 us steps: the ramp is one linear piece
    _, y, _ = signal.lsim((num, den), w.sample(0.1, tt), tt)
    last = tt >= (periods - 1) * w.period_s
    assert ei == pytest.approx(np.max(np.abs(y[last])), rel=2e-3)


def test_the_population_factor_is_the_5th_percentile_of_naycheva_thresholds_taken_log_normal():
    mean, sd = NAYCHEVA_2012_THRESHOLD_A
    assert (mean, sd) == (0.062e-3, 0.038e-3)
    rng = np.random.default_rng(17)
    s2 = math.log1p((sd / mean) ** 2)
    draws = rng.lognormal(math.log(mean) - s2 / 2, math.sqrt(s2), 1_000_000)
    assert draws.mean() == pytest.approx(mean, rel=2e-3) and draws.std() == pytest.approx(sd, rel=5e-3)
    assert POPULATION_FACTOR == pytest.approx(np.quantile(draws, 0.05) / mean, rel=5e-3)
    assert POPULATION_FACTOR == pytest.approx(0.337, abs=0.002)
    assert lognormal_fraction(1.0, 0.0, -1.645) == pytest.approx(1.0)
