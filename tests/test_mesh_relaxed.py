"""Issue 18: issue 9's two-cells-across rule relaxed away from the pads and the globe.

The free mesher keeps every layer two cells across only inside
:func:`emsim.meshes.free.resolved_regions` (around each pad and each orbit globe); outside them the
size inside a layer is :func:`emsim.meshes.free.far_layer_box_size` (one flat cell across). The default case's safety figures must stay within
:data:`emsim.meshes.free.RELAXED_ACCURACY` of the same case meshed with the rule everywhere.
"""

from __future__ import annotations

import numpy as np
import pytest

from emsim.meshes import free
from emsim.models import parse_case, read_case_table
from emsim.pipeline import solve_case
from emsim.solvers.physiology.phosphene import unit_weighted_peak
from emsim.studies.run import default_case_path


def _default_dc_case():
    """The built-in default case without its waveform and heating (the figures the mesh sets)."""
    table = read_case_table(default_case_path())
    waveform = parse_case(table).waveform
    table.pop("waveform", None)
    table.pop("thermal", None)
    return parse_case(table), waveform


def _figures(case, waveform) -> dict[str, float]:
    res = solve_case(case)
    m = res.metrics.electric
    current = np.array([c.current_A for c in case.channels])
    zones = res.electric.zones.with_phosphene(unit_weighted_peak(waveform, tier="occupational"))
    return {
        "cells": res.mesh.report.cells,
        "skin_current_density_peak": m.skin_current_density_peak_A_per_m2,
        "impedance": m.impedance_ohm,
        "electrode_voltage": max(abs(v) for v in m.electrode_voltage_V.values()),
        "retina_phosphene_ratio": zones.at(current).exclusion_phosphene_ratio_max,
    }


def test_resolved_regions_hold_the_pads_and_the_globe():
    case, _ = _default_dc_case()
    regions = free.resolved_regions(case)
    for e, (x0, x1, y0, y1) in zip(case.electrodes, regions, strict=False):
        (cx, cy), (hx, hy) = e.center_m, e.half_extent_m
        assert x0 < cx - hx and x1 > cx + hx and y0 < cy - hy and y1 > cy + hy
    assert len(regions) == len(case.electrodes) + 2 * len(case.exclusions)  # an orbit zone: its globe and its disc
    # Outside them the size is larger: the relaxation does something on this case.
    skin = case.layers[0].thickness_m
    sizes = {"max": 1.0}
    assert free.far_layer_box_size(sizes, skin) > free.layer_box_size(sizes, skin)


@pytest.mark.slow
def test_default_case_figures_within_the_named_accuracy_of_the_rule_everywhere(monkeypatch):
    case, waveform = _default_dc_case()
    relaxed = _figures(case, waveform)
    monkeypatch.setattr(free, "_ACROSS_LAYER_FAR", free._ACROSS_LAYER)  # the rule over the whole patch
    everywhere = _figures(case, waveform)
    assert relaxed["cells"] < 0.85 * everywhere["cells"], (relaxed["cells"], everywhere["cells"])
    for name, bound in free.RELAXED_ACCURACY.items():
        assert relaxed[name] == pytest.approx(everywhere[name], rel=bound), name


def test_cells_across_layer_sets_the_size_inside_a_layer_on_both_meshers_and_is_checked():
    """``[mesh] cells_across_layer`` (the worst-case search's mesh uses 1) replaces the rule's 2.25 / 2 levels."""
    from emsim.errors import InputError
    from emsim.meshes import layered
    from emsim.meshes.layered import level_count, tissue_levels
    from emsim.meshes.patch import mesh_sizes

    table = read_case_table(default_case_path())
    rule = parse_case(table)
    table["mesh"] = {**table.get("mesh", {}), "cells_across_layer": 1}
    one = parse_case(table)
    assert one.mesh.cells_across_layer == 1.0 and rule.mesh.cells_across_layer is None
    skin = rule.layers[0].thickness_m
    assert free.layer_box_size(mesh_sizes(rule), skin) == pytest.approx(skin / 2.25)
    assert free.layer_box_size(mesh_sizes(one), skin) == pytest.approx(min(skin, mesh_sizes(one)["max"]))
    # the layered mesher: its integer part as the least number of levels across a layer (where the
    # level heights would allow fewer: a layer thin beside them)
    huge = np.vectorize(lambda d: 1.0)  # a level height far above the layer's thickness
    assert [level_count(0.0, skin, huge, layered._across(mesh_sizes(c))) for c in (rule, one)] == [2, 1]
    _, owner_rule = tissue_levels(rule, mesh_sizes(rule))
    assert min(np.bincount(owner_rule)) >= 2
    # written back into the case's table (the digest holds it), absent when not set
    assert one.to_dict()["mesh"]["cells_across_layer"] == 1 and "cells_across_layer" not in rule.to_dict()["mesh"]
    for bad in (0.5, 11, -1):
        table["mesh"]["cells_across_layer"] = bad
        with pytest.raises(InputError, match="cells_across_layer"):
            parse_case(table)
