"""The eye rules of the device registry: the pad placement policy (issue 17)."""

from __future__ import annotations

import json
import tomllib
from dataclasses import replace

import numpy as np
import pytest
from device_helpers import PRESETS_TOML, synthetic_figures

from emsim.device.presets import parse_presets
from emsim.device.rules import LIMITS, rule
from emsim.device.validate import evaluate, group_key


def _presets(limits=None):
    raw = tomllib.loads(PRESETS_TOML)
    if limits:
        raw["limits"] = limits
    return parse_presets(raw, text=json.dumps(raw))


def _evaluate(pf, gap_mm):
    figures = {group_key(p): replace(synthetic_figures(p), placement_gap_mm=np.array(gap_mm, float)) for p in pf.presets}
    return evaluate(pf, figures)


def test_placement_is_a_policy_of_10_mm_stated_as_such():
    assert LIMITS["zone_min_distance_mm"].value == 10.0
    assert LIMITS["zone_min_distance_mm"].source.startswith("policy")
    r = rule("zone_placement")
    # geometric: independent of the current (the safety factor, a multiple of the current, cannot move it)
    assert r.level_independent and r.scaling == "none" and r.kind == "limit" and r.basis == "policy"


def test_pads_12_mm_from_the_zone_pass_and_7_mm_fail_the_export_at_every_level():
    pf = _presets()
    near = _evaluate(pf, [12.5, 7.5])  # the worst anatomy case decides: 7.5 mm < 10 mm
    check = near.presets[0]
    assert "zone_placement" in check.level_independent_failures
    assert not check.exportable
    for lv in check.levels:  # the same verdict at every level: the current does not move it
        row = lv.rules["zone_placement"]
        assert row["value"] == pytest.approx(10.0 / 7.5, rel=1e-5) and row["limit"] == 1.0  # JSON: 6 digits
        assert row["status"] == "FAIL" and row["max_safe_current_uA"] == 0.0 and row["headroom"] == -1.0
    safe = check.max_safe_current["zone_placement"]
    assert safe["max_safe_current_uA"] == 0.0 and "fails at every level" in safe["note"]
    far = _evaluate(pf, [12.5, 12.5]).presets[0]
    assert "zone_placement" not in far.level_independent_failures
    assert far.levels[0].rules["zone_placement"]["value"] == pytest.approx(0.8, rel=1e-5)
    safe = far.max_safe_current["zone_placement"]
    assert safe["max_safe_current_uA"] == "inf" and "within its limit at every level" in safe["note"]


def test_a_presets_file_may_change_the_distance():
    relaxed = _evaluate(_presets({"zone_min_distance_mm": 5.0}), [7.5, 7.5]).presets[0]
    assert "zone_placement" not in relaxed.level_independent_failures
    strict = _evaluate(_presets({"zone_min_distance_mm": 8.0}), [7.5, 7.5]).presets[0]
    assert "zone_placement" in strict.level_independent_failures


def test_without_a_zone_the_placement_rule_says_it_was_not_evaluated():
    pf = _presets()
    report = evaluate(pf, {group_key(p): synthetic_figures(p) for p in pf.presets})
    assert "not evaluated" in report.not_evaluated["zone_placement"]
    none = _evaluate(pf, [np.inf, np.inf])
    assert "no [[exclusion]] zone" in none.not_evaluated["zone_placement"]


def test_a_passing_placement_never_binds_a_level():
    far = _evaluate(_presets(), [12.5, 12.5]).presets[0]
    assert all(lv.binding_rule != "zone_placement" for lv in far.levels)
    assert far.levels[0].rules["zone_placement"]["status"] == "pass"
