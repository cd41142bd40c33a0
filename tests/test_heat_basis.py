"""Specification of the heat basis (emsim.solvers.thermal.basis): one set of session runs per
anatomy case serves every waveform, level and on/off envelope, equal to the direct heating.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import emsim  # (first: orders MPI before dolfinx)
from emsim.meshes.patch import build_patch_mesh
from emsim.models import parse_case
from emsim.solvers.electric.problem import ElectricProblem
from emsim.solvers.spectral.sweep import FrequencyResponse, waveform_response
from emsim.solvers.thermal.basis import HeatBasis
from emsim.solvers.thermal.session import session_heating
from emsim.studies.ledger import Ledger
from emsim.studies.study import parse_study
from emsim.studies.sweep import run_study

#: Temperatures of the basis and of the direct run agree to this [K] (the issue's bound).
TOL_K = 1e-6

CASE = {
    "name": "basis-two-pads",
    "patch": {"width_mm": 24, "length_mm": 14},
    "layer": [
        {"tissue": "skin", "thickness_mm": 1.5},
        {"tissue": "fat", "thickness_mm": 2.0},
        {"tissue": "muscle", "thickness_mm": 5.0},
    ],
    "electrode": [
        {"name": "A", "shape": "disk", "diameter_mm": 6, "center_mm": [-6.0, 0.0],
         "gel": {"material": "hydrogel", "thickness_mm": 0.5},
         "contact": {"resistance_ohm_cm2": 100.0, "capacitance_uF_per_cm2": 1.0}},
        {"name": "B", "shape": "disk", "diameter_mm": 6, "center_mm": [6.0, 0.0],
         "gel": {"material": "hydrogel", "thickness_mm": 0.5},
         "contact": {"resistance_ohm_cm2": 100.0, "capacitance_uF_per_cm2": 1.0}},
    ],
    "channel": {"anode": "A", "cathode": "B", "current_mA": 20.0},
    "mesh": {"quality": "coarse", "degree": 1, "size_factor": 2.0},
    "thermal": {"session_min": 5, "time_step_s": 20},
}  # fmt: skip

NARROW = {"shape": "biphasic_symmetric", "pulse_width_us": 100, "frequency_Hz": 100}
WIDE = {"shape": "biphasic_symmetric", "pulse_width_us": 400, "frequency_Hz": 30}
ON_OFF = {**NARROW, "on_s": 5, "off_s": 5, "ramp_up_s": 1, "ramp_down_s": 1}


def with_waveform(waveform: dict, current_mA: float = 20.0):
    return parse_case({**CASE, "waveform": waveform, "channel": {**CASE["channel"], "current_mA": current_mA}})


@pytest.fixture(scope="module")
def anatomy():
    """The mesh, its electric problem and frequency response, and a heat basis on them."""
    case = with_waveform(NARROW)
    patch = build_patch_mesh(case)
    problem = ElectricProblem(case, patch)
    response = FrequencyResponse(case, patch)
    basis = HeatBasis(case, patch)
    yield patch, problem, problem.solve(), response, basis
    basis.close()
    response.close()


def heat_of(case, patch, response):
    return waveform_response(case, patch, response=response).heat


def assert_same_heating(got, want) -> None:
    g, w = got.reference, want.reference
    for key in ("skin_temperature_basal_C", "skin_temperature_peak_C", "tissue_temperature_rise_max_K"):
        assert abs(getattr(g, key) - getattr(w, key)) <= TOL_K, key
    assert g.cem43_heated_max_min == pytest.approx(w.cem43_heated_max_min, rel=1e-9, abs=1e-12)
    assert g.cem43_skin_max_min == pytest.approx(w.cem43_skin_max_min, rel=1e-9, abs=1e-12)
    assert g.hottest_point_m == pytest.approx(w.hottest_point_m, abs=1e-12)
    assert g.skin_temperature_peak_location_m == pytest.approx(w.skin_temperature_peak_location_m, abs=1e-12)
    assert g.thermal.joule_heat_time_averaged_W == pytest.approx(w.thermal.joule_heat_time_averaged_W, rel=1e-12)
    for key in ("skin_temperature_max_C", "tissue_temperature_rise_max_K"):
        assert np.abs(got.history[key] - want.history[key]).max() <= TOL_K, key
    assert got.history["cem43_tissue_max_min"] == pytest.approx(want.history["cem43_tissue_max_min"], rel=1e-9, abs=1e-12)
    for name in ("final", "rise", "rise_peak"):
        assert np.abs(got.fields[name].x.array - want.fields[name].x.array).max() <= TOL_K, name
    # The rescaled metrics (other levels) agree as well: the same probes and skin front.
    for scale in (0.5, 3.0):
        current = scale * want.reference_currents_A[0]
        a, b = got.at(current), want.at(current)
        assert abs(a.skin_temperature_peak_C - b.skin_temperature_peak_C) <= TOL_K
        assert a.cem43_heated_max_min == pytest.approx(b.cem43_heated_max_min, rel=1e-9, abs=1e-12)
        assert a.cem43_skin_max_min == pytest.approx(b.cem43_skin_max_min, rel=1e-9, abs=1e-12)


def test_basis_heating_equals_the_direct_session_run_within_1e_6_K(anatomy) -> None:
    patch, problem, solution, response, basis = anatomy
    case = with_waveform(NARROW)
    heat = heat_of(case, patch, response)
    direct = session_heating(case, patch, problem, solution, heat=heat)
    got = basis.heating(case, heat)
    assert direct.reference.tissue_temperature_rise_max_K > 0.05  # a real rise, not round-off
    assert_same_heating(got, direct)
    assert basis.runs == 1


def test_levels_and_on_off_envelopes_add_no_session_run_and_match_direct(anatomy) -> None:
    patch, problem, _, response, basis = anatomy
    basis.heating(with_waveform(NARROW), heat_of(with_waveform(NARROW), patch, response))
    runs = basis.runs
    for case in (with_waveform(NARROW, current_mA=35.0), with_waveform(ON_OFF)):
        heat = heat_of(case, patch, response)
        got = basis.heating(case, heat)
        assert basis.runs == runs  # in the span: a combination, no new run
        scale = case.channels[0].current_A / 20e-3
        assert_same_heating(got, session_heating(case, patch, problem, problem.solve(scale=scale), heat=heat))


def test_another_pulse_shape_adds_at_most_one_direction_and_matches_direct(anatomy) -> None:
    patch, problem, solution, response, basis = anatomy
    basis.heating(with_waveform(NARROW), heat_of(with_waveform(NARROW), patch, response))
    runs = basis.runs
    case = with_waveform(WIDE)
    heat = heat_of(case, patch, response)
    got = basis.heating(case, heat)
    assert basis.runs <= runs + 1
    assert_same_heating(got, session_heating(case, patch, problem, solution, heat=heat))


def test_a_case_with_other_thermal_settings_is_refused(anatomy) -> None:
    from emsim.errors import SolverError

    patch, _, _, response, basis = anatomy
    case = with_waveform(NARROW)
    other = dataclasses.replace(case, thermal=dataclasses.replace(case.thermal, time_step_s=10.0))
    with pytest.raises(SolverError, match="thermal settings"):
        basis.heating(other, heat_of(case, patch, response))


def thermal_solves() -> int:
    from emsim.solvers.linalg.ksp import SOLVES

    return sum(n for k, n in SOLVES.items() if "thermal" in k)


def test_a_study_over_on_off_envelopes_heats_from_one_basis_and_matches_a_case_solved_alone(tmp_path) -> None:
    """A waveform axis with [thermal]: one session run for the group, the direct answer per case."""
    table = {**CASE, "name": "basis-study", "waveform": {**NARROW, "on_s": 2.0, "off_s": 4.0}}
    study = parse_study({"case": table, "sweep": {"waveform.on_s": [2.0, 6.0, 12.0]}})
    assert len(study.points) == 3 and len(study.groups) == 1
    before = thermal_solves()
    run_study(study, tmp_path / "out", write_results=False)
    in_study = thermal_solves() - before
    rows = Ledger(tmp_path / "out").rows()
    start = thermal_solves()
    direct = emsim.solve(study.points[-1].case).thermal.reference  # session_heating, no basis
    alone = thermal_solves() - start
    for key in ("skin_temperature_peak_C", "tissue_temperature_rise_max_K"):
        assert abs(rows[-1].metrics[key] - getattr(direct, key)) <= TOL_K, key
    assert rows[-1].metrics["cem43_heated_max_min"] == pytest.approx(direct.cem43_heated_max_min, rel=1e-9, abs=1e-12)
    # Envelopes scale one cycle-mean heat: one basal state and one session run for three cases
    # (alone: a basal state, a steady state with current and a run per case).
    assert in_study < 1.5 * alone
    peaks = [r.metrics["tissue_temperature_rise_max_K"] for r in rows]
    assert peaks[0] < peaks[1] < peaks[2]  # the duty cycles change the answer: not a copy
    # The superposition's rises are those of the duty cycles: on / (on + off) for one heat.
    duty = np.array([2.0, 6.0, 12.0]) / np.array([6.0, 10.0, 16.0])
    assert np.array(peaks) / peaks[-1] == pytest.approx(duty / duty[-1], rel=1e-6)
