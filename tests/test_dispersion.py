"""Specification of the Gabriel 1996 four-term Cole-Cole tissue model (emsim.models.dispersion).

Check values are from PHYSICS.md ("from the model"), each asserted to the digits given there.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from emsim.errors import InputError
from emsim.models.dispersion import EPSILON_0_F_PER_M, GABRIEL_1996, ColeCole


def sig_figs(value: float, digits: int) -> float:
    """Round ``value`` to ``digits`` significant figures."""
    return float(f"{value:.{digits - 1}e}")


@pytest.mark.parametrize(
    ("tissue", "frequency_Hz", "expected_S_per_m", "digits"),
    [
        ("muscle", 10e3, 0.341, 3),
        ("skin_wet", 10e3, 0.0029, 2),
        ("bone_cortical", 10e3, 0.0204, 3),
        ("skin_wet", 10.0, 4.0e-4, 2),
        ("fat", 10.0, 0.0122, 3),
        ("muscle", 10.0, 0.202, 3),
    ],
)
def test_conductivity_reproduces_physics_md_check_values(
    tissue: str, frequency_Hz: float, expected_S_per_m: float, digits: int
) -> None:
    sigma = float(GABRIEL_1996[tissue].conductivity_S_per_m(frequency_Hz))
    assert sig_figs(sigma, digits) == pytest.approx(expected_S_per_m, rel=1e-12)


def test_muscle_relative_permittivity_at_10_kHz_is_25900() -> None:
    eps_r = float(GABRIEL_1996["muscle"].relative_permittivity(10e3))
    assert sig_figs(eps_r, 3) == pytest.approx(25_900.0, rel=1e-12)


def test_skin_charge_relaxation_time_spans_50_to_430_us_as_in_physics_md() -> None:
    # PHYSICS.md: "The skin's charge-relaxation time (about 50-430 us)".
    dry_s = float(GABRIEL_1996["skin_dry"].charge_relaxation_time_s(1e3))
    wet_s = float(GABRIEL_1996["skin_wet"].charge_relaxation_time_s(1e3))
    assert sig_figs(dry_s, 2) == pytest.approx(50e-6, rel=1e-12)
    assert sig_figs(wet_s, 2) == pytest.approx(430e-6, rel=1e-12)


def test_relaxation_times_are_stored_in_seconds() -> None:
    muscle = GABRIEL_1996["muscle"]
    assert muscle.tau1_s == pytest.approx(7.234e-12, rel=1e-12)
    assert muscle.tau2_s == pytest.approx(353.678e-9, rel=1e-12)
    assert muscle.tau3_s == pytest.approx(318.310e-6, rel=1e-12)
    assert muscle.tau4_s == pytest.approx(2.274e-3, rel=1e-12)


def test_every_tissue_cites_gabriel_1996_appendix_c() -> None:
    assert sorted(GABRIEL_1996) == [
        "blood",
        "bone_cortical",
        "fat",
        "muscle",
        "skin_dry",
        "skin_wet",
    ]
    for model in GABRIEL_1996.values():
        assert "Gabriel, Lau & Gabriel 1996" in model.source
        assert "41:2271" in model.source
        assert "Appendix C" in model.source


def test_single_debye_term_matches_closed_form() -> None:
    # Debye: eps* = eps_inf + d/(1 + j w tau) + sigma/(j w eps0), so
    # sigma_eff = sigma + d eps0/tau (w tau)^2/(1 + (w tau)^2), eps' = eps_inf + d/(1 + (w tau)^2)
    tau_s, delta, sigma_S_per_m = 1e-6, 1000.0, 0.5
    model = ColeCole(
        eps_inf=5.0,
        delta_eps1=delta, tau1_s=tau_s, alpha1=0.0,
        delta_eps2=0.0, tau2_s=0.0, alpha2=0.0,
        delta_eps3=0.0, tau3_s=0.0, alpha3=0.0,
        delta_eps4=0.0, tau4_s=0.0, alpha4=0.0,
        sigma_ionic_S_per_m=sigma_S_per_m,
        source="test",
    )  # fmt: skip
    f_Hz = np.array([1e3, 1.5915494309189535e5, 1e8])
    wt = 2 * np.pi * f_Hz * tau_s
    sigma_expected = sigma_S_per_m + delta * EPSILON_0_F_PER_M / tau_s * wt**2 / (1 + wt**2)
    eps_expected = 5.0 + delta / (1 + wt**2)
    np.testing.assert_allclose(model.conductivity_S_per_m(f_Hz), sigma_expected, rtol=1e-13)
    np.testing.assert_allclose(model.relative_permittivity(f_Hz), eps_expected, rtol=1e-13)


def test_complex_conductivity_is_j_omega_eps0_eps_star() -> None:
    muscle = GABRIEL_1996["muscle"]
    f_Hz = np.logspace(1, 9, 17).reshape(17, 1)
    sigma_star = muscle.complex_conductivity_S_per_m(f_Hz)
    omega = 2 * np.pi * f_Hz
    assert sigma_star.shape == (17, 1)
    np.testing.assert_allclose(sigma_star.real, muscle.conductivity_S_per_m(f_Hz), rtol=1e-14)
    np.testing.assert_allclose(
        sigma_star.imag, omega * EPSILON_0_F_PER_M * muscle.relative_permittivity(f_Hz), rtol=1e-14
    )
    np.testing.assert_allclose(
        sigma_star, 1j * omega * EPSILON_0_F_PER_M * muscle.complex_permittivity(f_Hz), rtol=1e-14
    )


def test_conductivity_rises_and_permittivity_falls_with_frequency() -> None:
    f_Hz = np.logspace(1, 10, 91)
    for model in GABRIEL_1996.values():
        assert np.all(np.diff(model.conductivity_S_per_m(f_Hz)) > 0.0)
        assert np.all(np.diff(model.relative_permittivity(f_Hz)) < 0.0)


def test_permittivity_tends_to_eps_inf_at_very_high_frequency() -> None:
    fat = GABRIEL_1996["fat"]
    assert float(fat.relative_permittivity(1e16)) == pytest.approx(fat.eps_inf, rel=1e-3)


def test_scalar_frequency_gives_a_scalar() -> None:
    value = GABRIEL_1996["blood"].conductivity_S_per_m(1e3)
    assert np.ndim(value) == 0
    assert float(value) == pytest.approx(0.700, rel=1e-3)


@pytest.mark.parametrize("frequency_Hz", [0.0, -10.0, float("nan"), [1e3, 0.0]])
def test_non_positive_frequency_is_an_input_error(frequency_Hz: object) -> None:
    with pytest.raises(InputError) as err:
        GABRIEL_1996["muscle"].conductivity_S_per_m(frequency_Hz)
    assert err.value.field == "frequency_Hz"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("tau2_s", -1e-9),
        ("tau3_s", 0.0),
        ("alpha1", 1.0),
        ("alpha4", -0.1),
        ("delta_eps2", -5.0),
        ("eps_inf", 0.5),
        ("sigma_ionic_S_per_m", -0.2),
        ("tau1_s", float("inf")),
        ("source", ""),
    ],
)
def test_bad_parameter_names_the_field(field: str, value: object) -> None:
    with pytest.raises(InputError) as err:
        dataclasses.replace(GABRIEL_1996["muscle"], **{field: value})
    assert err.value.field == field
    assert err.value.value == value
    assert f"{field} = " in str(err.value)


def test_absent_term_may_have_zero_relaxation_time() -> None:
    blood = GABRIEL_1996["blood"]
    assert blood.delta_eps3 == 0.0
    assert blood.tau3_s == 0.0
    assert float(blood.conductivity_S_per_m(10.0)) == pytest.approx(0.700, rel=1e-6)
