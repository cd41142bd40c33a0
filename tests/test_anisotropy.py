"""Muscle fibre anisotropy: Gabriel's mixed value split about its geometric mean, r(f) -> 1."""

from __future__ import annotations

import math

import numpy as np
import pytest

from emsim.errors import InputError
from emsim.models import anisotropy
from emsim.models.dispersion import GABRIEL_1996

# shared/PHYSICS.md: measured at low frequency (Gielen 1984; Epstein & Foster 1983).
ACROSS_RANGE_S_PER_M = (0.04, 0.1)
ALONG_RANGE_S_PER_M = (0.35, 0.8)


def test_default_low_frequency_ratio_is_sourced_and_within_the_measured_4_to_10():
    m = anisotropy.muscle()
    assert 4.0 <= m.low_frequency_ratio <= 10.0
    assert "Gielen 1984" in m.source and "Epstein & Foster 1983" in m.source


def test_gabriel_0p2_at_10_Hz_with_ratio_5_splits_into_0p089_across_and_0p45_along():
    along, across, r = anisotropy.fibre_conductivities(0.2, 10.0, 5.0)
    assert r == pytest.approx(5.0, rel=1e-6)
    assert across == pytest.approx(0.2 / math.sqrt(5.0), rel=1e-6)  # 0.0894
    assert along == pytest.approx(0.2 * math.sqrt(5.0), rel=1e-6)  # 0.447
    assert along * across == pytest.approx(0.2**2, rel=1e-12)  # geometric mean kept
    assert along / across == pytest.approx(r, rel=1e-12)


def test_gabriel_muscle_at_10_Hz_with_the_default_ratio_lies_in_the_measured_ranges():
    sigma = float(GABRIEL_1996["muscle"].conductivity_S_per_m(10.0))
    along, across, _ = anisotropy.fibre_conductivities(
        sigma, 10.0, anisotropy.muscle().low_frequency_ratio
    )
    assert ACROSS_RANGE_S_PER_M[0] <= across <= ACROSS_RANGE_S_PER_M[1]
    assert ALONG_RANGE_S_PER_M[0] <= along <= ALONG_RANGE_S_PER_M[1]


@pytest.mark.parametrize("r0", [4.0, 5.0, 10.0])
def test_ratio_is_r0_up_to_10_kHz_and_tends_to_1_at_1_MHz(r0):
    m = anisotropy.muscle().with_ratio(r0)
    assert m.ratio(10.0) == pytest.approx(r0, rel=1e-6)
    assert m.ratio(1e4) == pytest.approx(r0, rel=0.01)
    assert 1.0 < m.ratio(1e6) < 1.0 + 0.01 * (r0 - 1.0) + 1e-12
    assert m.ratio(1e8) == pytest.approx(1.0, abs=1e-5)
    f = np.logspace(0, 7, 50)
    assert np.all(np.diff([m.ratio(x) for x in f]) < 0)  # falls monotonically


def test_constant_conductivity_material_keeps_r0_at_every_frequency():
    along, across, r = anisotropy.fibre_conductivities(0.2, 1e6, 4.0, frequency_dependent=False)
    assert r == 4.0
    assert (along, across) == pytest.approx((0.4, 0.1), rel=1e-12)


def test_complex_admittivity_is_scaled_by_the_real_factor_sqrt_r():
    f = 5e4
    sigma = complex(GABRIEL_1996["muscle"].complex_conductivity_S_per_m(f))
    along, across, r = anisotropy.fibre_conductivities(sigma, f, 5.0)
    assert isinstance(along, complex)
    assert along == pytest.approx(sigma * math.sqrt(r), rel=1e-12)
    assert across == pytest.approx(sigma / math.sqrt(r), rel=1e-12)
    # The phase (permittivity over conductivity) is the tissue's in both directions.
    assert np.angle(along) == pytest.approx(np.angle(sigma), abs=1e-12)


def test_tensor_has_along_on_the_fibre_and_across_normal_to_it():
    fibre = np.array([1.0, 2.0, 2.0]) / 3.0
    t = anisotropy.conductivity_tensor(0.2, 10.0, 5.0, fibre)
    along, across, _ = anisotropy.fibre_conductivities(0.2, 10.0, 5.0)
    assert fibre @ t @ fibre == pytest.approx(along, rel=1e-12)
    normal = np.cross(fibre, [0.0, 0.0, 1.0])
    normal /= np.linalg.norm(normal)
    assert normal @ t @ normal == pytest.approx(across, rel=1e-12)
    # The along/across pair keeps the mixed value as its geometric mean (not det^(1/3), which
    # counts the across value twice: sigma r^(-1/6)).
    assert np.linalg.det(t) == pytest.approx(along * across**2, rel=1e-12)
    assert math.sqrt(along * across) == pytest.approx(0.2, rel=1e-12)
    assert np.array_equal(anisotropy.conductivity_tensor(0.2, 10.0, 5.0, None), 0.2 * np.eye(3))


def test_unphysical_parameters_are_refused():
    with pytest.raises(InputError):
        anisotropy.FibreAnisotropy(0.0, 1e5, 2.0)
    with pytest.raises(InputError):
        anisotropy.muscle().ratio(-1.0)
