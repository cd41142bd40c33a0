"""Activation estimate: strength-duration, activated volume, activating function, anisotropy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from test_frequency import AREA_M2, BIPHASIC, LAYERS, SIGMA, column_table

from emsim.errors import InputError
from emsim.meshes.patch import build_patch_mesh
from emsim.models import parse_case
from emsim.pipeline import solve_case
from emsim.solvers.physiology import activation as act
from emsim.solvers.spectral.sweep import waveform_response

from conftest import small_cheek_table


def test_threshold_is_twice_the_rheobase_at_the_chronaxie_for_both_laws():
    for model in ("weiss", "lapicque"):
        sd = act.StrengthDuration(rheobase_field_V_per_m=10.0, chronaxie_s=300e-6, model=model)
        assert sd.threshold_field_V_per_m(300e-6) == pytest.approx(20.0, rel=1e-12)
        assert sd.threshold_field_V_per_m(1.0) == pytest.approx(10.0, rel=1e-2)
    with pytest.raises(InputError):
        act.StrengthDuration(model="hill")


def test_default_field_threshold_lies_in_the_quoted_20_to_70_V_per_m_at_100_to_300_us():
    sd = act.StrengthDuration()
    assert sd.chronaxie_s == pytest.approx(460e-6)  # Mogyoros 1996: 459 +- 126 us
    for pw in (100e-6, 200e-6, 300e-6):
        assert 20.0 <= sd.threshold_field_V_per_m(pw) <= 70.0


def test_activated_fraction_and_current_for_half_of_the_volume():
    field_per_A = np.linspace(1.0, 100.0, 100)  # V/(m A), equal volumes
    vol = np.full(100, 1e-9)
    i50 = act.current_for_fraction_A(field_per_A, vol, 40.0, 0.5)
    assert i50 == pytest.approx(40.0 / 51.0)  # the 50 strongest cells reach 51 V/(m A)
    assert act.activated_fraction(field_per_A, vol, 40.0, i50 * (1 + 1e-12)) == pytest.approx(0.5)
    assert act.activated_fraction(field_per_A, vol, 40.0, 0.99 * i50) < 0.5
    assert math.isinf(act.current_for_fraction_A(np.zeros(3), np.ones(3), 40.0))


def _column_resistance(table: dict) -> float:
    return solve_case(parse_case(table)).metrics.electric.impedance_ohm


def test_muscle_fibres_along_the_column_divide_its_resistance_by_sqrt_ratio_across_multiply_it():
    # The material's value is the mixed one, split about its geometric mean: along sigma sqrt(r),
    # across sigma / sqrt(r) (a constant-conductivity material keeps r = r0 at every frequency).
    base = column_table(capacitance=False)
    r_iso = _column_resistance(base)
    along = column_table(capacitance=False)
    along["layer"][2] |= {"fibre_direction": [0.0, 0.0, 1.0], "anisotropy_ratio": 4.0}
    across = column_table(capacitance=False)
    across["layer"][2] |= {"fibre_direction": [1.0, 0.0, 0.0], "anisotropy_ratio": 4.0}
    r_muscle = LAYERS[2][1] / SIGMA["muscle"] / AREA_M2
    assert _column_resistance(along) == pytest.approx(r_iso - r_muscle * (1 - 1 / 2), rel=1e-8)
    assert _column_resistance(across) == pytest.approx(r_iso + r_muscle * (2 - 1), rel=1e-8)


def test_column_activation_uses_the_uniform_fibre_field_and_its_strength_duration_threshold():
    table = column_table(waveform=BIPHASIC)
    table["layer"][2] |= {"fibre_direction": [0.0, 0.0, 1.0], "anisotropy_ratio": 4.0}
    case = parse_case(table)
    resp = waveform_response(case, build_patch_mesh(case), n_frequencies=12)
    w, m = resp.at([case.channels[0].current_A])
    sigma_along = math.sqrt(4.0) * SIGMA["muscle"]  # mixed value split about its geometric mean
    e_fibre = 0.01 / (sigma_along * AREA_M2)  # current control: J = I/A in the 1-D column
    assert m.muscle_fibre_field_peak_V_per_m == pytest.approx(e_fibre, rel=1e-6)
    threshold = act.StrengthDuration().threshold_field_V_per_m(100e-6)
    assert m.activation_threshold_field_V_per_m == pytest.approx(threshold)
    assert m.current_for_50pct_activation_A == pytest.approx(threshold * sigma_along * AREA_M2, rel=1e-6)
    assert m.muscle_activated_fraction == (1.0 if e_fibre >= threshold else 0.0)
    # A uniform field has no curvature along the fibre.
    assert abs(w.muscle_activating_function_peak_V_per_m2) < 1e-6 * e_fibre / 1e-3


def test_activating_function_of_a_quadratic_potential_is_its_curvature(monkeypatch):
    from dolfinx import fem

    case = parse_case(column_table(degree=2))
    patch = build_patch_mesh(case)
    V = fem.functionspace(patch.mesh, ("Lagrange", 2))
    phi = fem.Function(V)
    phi.interpolate(lambda x: 3.0 * x[0] ** 2 + 5.0 * x[2])  # d2/dx2 = 6 V/m^2
    af = act.fibre_second_derivative(patch, phi, {"muscle": np.array([1.0, 0.0, 0.0])})
    cells = patch.cell_tags.find(patch.volumes["layer:muscle"])
    # The L2 projection reproduces the linear fibre derivative 6 x exactly, so AF = 6 per cell.
    assert np.max(np.abs(af[cells] - 6.0)) < 1e-6 * 6.0
    other = patch.cell_tags.find(patch.volumes["layer:fat_c"])
    assert np.all(af[other] == 0.0)
    # The sweep's cached operator (forms, mass matrix and KSP once) gives the same numbers, for
    # each component of a blocked field and for repeated calls.
    W = fem.functionspace(patch.mesh, ("Lagrange", 2, (2,)))
    pair = fem.Function(W)
    pair.interpolate(lambda x: np.stack([3.0 * x[0] ** 2 + 5.0 * x[2], -x[0] ** 2]))
    cached = act.FibreSecondDerivative(patch, W, {"muscle": np.array([1.0, 0.0, 0.0])})
    for _ in range(2):
        assert np.max(np.abs(cached(pair, 0) - af)) < 1e-9 * 6.0
        assert np.max(np.abs(cached(pair, 1)[cells] + 2.0)) < 1e-6 * 2.0
    # The DG0 interpolation of grad (the path of cells that are not affine tetrahedra, made on
    # first use) gives the same numbers as the P1 gradient operator.
    monkeypatch.setattr(act.P1CellGradient, "of", classmethod(lambda cls, mesh: None))
    for _ in range(2):
        assert np.max(np.abs(cached(pair, 0) - af)) < 1e-9 * 6.0
    cached.close()


def _cheek_pulse(width_mm: float, length_mm: float, *, user_muscle: bool = False):
    table = small_cheek_table(size_factor=3.0)
    table["patch"] = {"width_mm": width_mm, "length_mm": length_mm}
    table["waveform"] = {"shape": "biphasic_symmetric", "pulse_width_us": 250.0, "frequency_Hz": 50.0}
    table["channel"]["current_mA"] = 20.0
    if user_muscle:
        table["material"] = {"my_muscle": {"conductivity_S_per_m": 0.2, "electrical_source": "test"}}
        table["layer"][2] = {"tissue": "my_muscle", "thickness_mm": 10.0, "target": True}
    return parse_case(table)


def test_activated_volume_counts_only_activated_tissue_while_the_fraction_depends_on_the_patch():
    """Issue 8.5: muscle added far from the pads (a bigger patch) dilutes the fraction, not the volume."""
    rng = np.random.default_rng(3)
    field_per_A = rng.uniform(0.0, 4000.0, 500)  # V/(m A)
    vol = rng.uniform(1e-10, 3e-10, 500)  # m^3
    far = (np.zeros(1500), np.full(1500, 2e-10))  # inactive muscle of a larger patch
    v1 = act.activated_volume_m3(field_per_A, vol, 40.0, 0.02)
    v2 = act.activated_volume_m3(np.r_[field_per_A, far[0]], np.r_[vol, far[1]], 40.0, 0.02)
    assert v1 == v2 == pytest.approx(vol[field_per_A * 0.02 >= 40.0].sum(), rel=1e-12)
    f1 = act.activated_fraction(field_per_A, vol, 40.0, 0.02)
    f2 = act.activated_fraction(np.r_[field_per_A, far[0]], np.r_[vol, far[1]], 40.0, 0.02)
    assert f2 < 0.5 * f1
    # The current that activates a stated volume: the same with or without the far muscle.
    target = 0.4 * vol.sum()
    i1 = act.current_for_volume_A(field_per_A, vol, 40.0, target)
    i2 = act.current_for_volume_A(np.r_[field_per_A, far[0]], np.r_[vol, far[1]], 40.0, target)
    assert i1 == i2 and act.activated_volume_m3(field_per_A, vol, 40.0, i1 * (1 + 1e-12)) >= target


@pytest.mark.slow
def test_a_target_layer_of_a_user_material_gets_activation_numbers():
    case = _cheek_pulse(60.0, 40.0, user_muscle=True)
    assert case.target_layers() == ["my_muscle"]
    m = solve_case(case).metrics
    assert m.activation.muscle_activated_volume_cm3 >= 0.0
    assert m.activation.target_volume_cm3 == pytest.approx(0.5)
    assert m.electric.muscle_field_max_V_per_m > 0
