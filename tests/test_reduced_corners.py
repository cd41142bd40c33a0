"""Screening corners in a snapshot reduced basis: its figures against full solves, and what is reported.

The tiny cheek head of tests/test_device_corners.py (five factors: skin and fat thickness, contact
R and C, skin conductivity). A screening solver answers a corner's frequency solves in the span of
earlier corners' full solutions when the residual allows; its search objectives (1 / I_limit of
every limit rule) must agree with a full solve of the same corner within
:data:`emsim.device.validate.SCREENING_MARGIN`, and a validation's reported figures must be those of
full solves.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from test_device_corners import PRESETS, WANTED

from emsim.device.anatomy import AnatomyCase, corner_case, spread_factors
from emsim.device.figures import stack_figures
from emsim.device.presets import read_presets
from emsim.device.rules import RuleContext
from emsim.device.validate import (
    SCREENING_MARGIN,
    AnatomySolver,
    max_safe_currents,
    severities,
    solve_groups,
)
from emsim.models.toml import dumps as to_toml

from conftest import small_two_pad_table


def _presets(tmp):
    head = small_two_pad_table()
    head["solver"] = {"waveform_frequencies": 16, "waveform_tolerance": 0.05}
    head["thermal"] = {"session_min": 1.0, "time_step_s": 30.0}
    for e in head["electrode"]:
        e["contact"] = {"resistance_ohm_cm2": 2900.0, "capacitance_uF_per_cm2": 0.0155}
    (tmp / "head.toml").write_text(to_toml(head))
    (tmp / "presets.toml").write_text(PRESETS)
    return read_presets(tmp / "presets.toml")


@pytest.mark.slow
def test_screened_corners_give_every_rule_within_the_margin_of_a_full_solve(tmp_path):
    pf = _presets(tmp_path)
    every = {f.name: f for f in spread_factors(pf.device, pf.validation, "cheek")}
    nominal = AnatomyCase("cheek", tuple(every[n] for n in WANTED))
    screening = AnatomySolver(pf, keep_results=False, screening=True)
    full = AnatomySolver(pf, keep_results=False)
    corners = list(itertools.product((False, True), repeat=len(WANTED)))[
        ::3
    ]  # 11 corners, every factor varied
    compared = 0
    for c in corners:
        a = corner_case(nominal, c)
        y_screened = severities(pf, screening(a)[0])
        y_full = severities(pf, full(a)[0])
        ok = ~np.isnan(y_full)
        assert np.array_equal(ok, ~np.isnan(y_screened))
        scale = np.abs(y_full[ok]).max()
        # each rule's objective within the margin of its full value (relative, against the rule's
        # largest objective of the corner where a value is 0)
        err = np.abs(y_screened[ok] - y_full[ok]) / np.maximum(np.abs(y_full[ok]), 1e-3 * scale)
        assert err.max() <= SCREENING_MARGIN, (a.label, err.max())
        compared += 1
    basis = screening.bases["cheek"]
    # the comparison is not vacuous: most frequency solves were answered in the basis
    assert basis.reduced_solves > basis.full_solves
    assert compared == len(corners)


@pytest.mark.slow
def test_the_reported_worst_corners_are_full_solves(tmp_path, monkeypatch):
    from emsim.device import validate

    pf = _presets(tmp_path)
    every = {f.name: f for f in spread_factors(pf.device, pf.validation, "cheek")}
    factors = tuple(every[n] for n in ("skin", "R", "sigma_skin"))  # 8 corners: brute force
    monkeypatch.setattr(
        validate, "nominal_case", lambda device, validation, site: AnatomyCase(site, factors)
    )
    solver = AnatomySolver(pf, keep_results=False, screening=True)
    figures, _, cases, record = solve_groups(pf, solver=solver)
    (rec,) = record
    assert rec["screened_solves"] == 8 and 1 <= rec["full_solves"] <= 8
    assert "full solves only" in rec["figures_from"]
    # every reported case is one the solver solved fully, and its figures are that full solve's
    full_labels = [p["anatomy"] for p in solver.profile if not p["screened"]]
    assert sorted(a.label for a in cases) == sorted(full_labels)
    reference = AnatomySolver(pf, keep_results=False)
    (key,) = figures
    again = stack_figures([reference(a)[0][key] for a in cases])
    sf = pf.validation.safety_factor
    for p in pf.presets:
        ctx = RuleContext(pf.device, p, pf.limits)
        np.testing.assert_allclose(
            max_safe_currents(figures[key], ctx, sf), max_safe_currents(again, ctx, sf), rtol=1e-9
        )
