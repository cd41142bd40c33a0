"""The worst-corner search on a REAL (tiny, coarse) head against brute force, and the morphed corners.

Five factors of the cheek's spread (skin and fat thickness, contact R and C, skin conductivity):
32 corners, every one solved (each a morph of one mesh: meshed once), then the search run over the
same evaluations must find, for every limit rule of every preset, the brute-force worst corner,
with fewer evaluations than brute force; and the search on the cheaper search mesh
(``[validation] search_mesh = "coarse"``), confirmed on the head's mesh, must find it too.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from device_helpers import tiny_corners_head, tiny_corners_presets

from emsim.device.anatomy import AnatomyCase, corner_case, spread_factors
from emsim.device.presets import read_presets
from emsim.device.search import confirm_worst, worst_corners
from emsim.device.validate import AnatomySolver, severities
from emsim.models.toml import dumps as to_toml

from conftest import small_two_pad_table

PRESETS = tiny_corners_presets(contact="gel_on_unprepared_skin", sites="cheek")

WANTED = ("skin", "fat", "R", "C", "sigma_skin")


@pytest.fixture(scope="module")
def corners(tmp_path_factory):
    """(presets, factors, solver, objective vector per corner) of every corner of five factors."""
    tmp = tmp_path_factory.mktemp("corners")
    (tmp / "head.toml").write_text(to_toml(tiny_corners_head()))
    (tmp / "presets.toml").write_text(PRESETS)
    pf = read_presets(tmp / "presets.toml")
    every = {f.name: f for f in spread_factors(pf.device, pf.validation, "cheek")}
    factors = tuple(every[n] for n in WANTED)
    nominal = AnatomyCase("cheek", factors)
    solver = AnatomySolver(pf, keep_results=False)
    values = {}
    for c in itertools.product((False, True), repeat=len(factors)):
        figures, _ = solver(corner_case(nominal, c))
        values[c] = severities(pf, figures)
    return pf, factors, solver, values


@pytest.mark.slow
def test_every_corner_is_a_morph_of_one_mesh(corners):
    _, _, solver, values = corners
    assert len(solver.profile) == len(values) == 32
    meshed = [p for p in solver.profile if "mesh_s" in p]
    assert len(meshed) == 1 and meshed[0] is solver.profile[0]  # the site meshed once, at its nominal stack
    assert all("morph_s" in p for p in solver.profile)


@pytest.mark.slow
def test_a_corner_solved_after_31_others_equals_the_same_corner_solved_first(corners):
    """Nothing held across corners goes stale when a morph moves the shared mesh's nodes in place.

    The fixture's solver reached the last corner through 31 morphs of one mesh (and every cache
    keyed by that mesh: the P1 cell gradients' J^-T, for one); a fresh solver meshes the nominal
    stack and morphs it once, straight to that corner. The objectives agree to the rounding of
    the nodes' positions (1e-8: a stale Jacobian would move them by percents).
    """
    pf, factors, _, values = corners
    last = (True,) * len(factors)
    figures, _ = AnatomySolver(pf, keep_results=False)(corner_case(AnatomyCase("cheek", factors), last))
    fresh = severities(pf, figures)
    np.testing.assert_allclose(fresh, values[last], rtol=1e-8, atol=0.0)
    assert np.isfinite(fresh).sum() >= 3


@pytest.mark.slow
def test_search_finds_the_brute_force_worst_corner_of_every_rule_on_a_real_case(corners):
    _, factors, _, values = corners
    k = len(factors)
    asked = []

    def evaluate(c):
        asked.append(c)
        return values[c]

    found = worst_corners(k, evaluate, brute_force_up_to=0)
    assert found.method.startswith("fold-over")
    assert found.evaluations == len(set(asked)) < 2**k
    m = len(next(iter(values.values())))
    searched = 0
    for j in range(m):
        col = {c: v[j] for c, v in values.items() if not math.isnan(v[j])}
        if not col or max(col.values()) == min(col.values()):
            continue  # not evaluated, or independent of the anatomy (no worst corner to find)
        searched += 1
        top = max(col.values())
        assert found.worst[j] is not None
        # the worst value exactly (a corner that ties with the brute-force one is as worst)
        assert values[found.worst[j]][j] == pytest.approx(top, rel=1e-12), f"objective {j}"
    assert searched >= 3  # the contact, rim and heating rules depend on the anatomy
    # the spread is not a formality: some rule's limiting current moves by more than 2x over the corners
    y = np.array(list(values.values()))
    spread = [np.nanmax(c) / np.nanmin(c) for c in y.T if np.isfinite(c).any() and np.nanmin(c) > 0]
    assert max(spread) > 2.0


def test_a_conductivity_corner_scales_the_coefficients_and_keeps_the_tissues(tmp_path):
    """sigma_* factors: each tissue's whole model scaled to its range end, the layers and mesh kept."""
    from emsim.device.anatomy import head_case_table
    from emsim.models.case_file import parse_case
    from emsim.solvers.electric.conductivity import volume_admittivities
    from emsim.solvers.physiology.sensory import dermis_layers

    (tmp_path / "head.toml").write_text(to_toml(small_two_pad_table()))
    (tmp_path / "presets.toml").write_text(PRESETS)
    pf = read_presets(tmp_path / "presets.toml")
    factors = spread_factors(pf.device, pf.validation, "cheek")
    sigma = {f.name: f for f in factors if f.kind == "conductivity"}
    assert set(sigma) == {"sigma_skin", "sigma_fat", "sigma_muscle"}
    assert all("models/data/conductivity.toml" in f.source for f in sigma.values())
    nominal = AnatomyCase("cheek", factors)
    head = small_two_pad_table()
    p = pf.presets[0]
    base = parse_case(head_case_table(head, corner_case(nominal, tuple(f.kind != "conductivity" for f in factors)), p, 1e-3))
    top = parse_case(head_case_table(head, corner_case(nominal, (True,) * len(factors)), p, 1e-3))
    assert [(la.label, la.thickness_m) for la in top.layers] == [(la.label, la.thickness_m) for la in base.layers]
    a0, a1 = volume_admittivities(base, 10.0), volume_admittivities(top, 10.0)
    for layer in top.layers:
        want = sigma[f"sigma_{layer.tissue.name}"].high / sigma[f"sigma_{layer.tissue.name}"].low
        np.testing.assert_allclose(a1[f"layer:{layer.label}"], want * a0[f"layer:{layer.label}"], rtol=1e-12)
    # a scaled tissue is still the library's: the sensory rule's dermis and the default target stay
    assert dermis_layers(top) == dermis_layers(base) != []
    assert top.target_layers() == base.target_layers()
    assert top.digest() != base.digest()  # the scale is part of the case: no cache shares the two


@pytest.mark.slow
def test_the_search_on_the_search_mesh_confirmed_on_the_head_s_mesh_finds_the_brute_force_worst(corners):
    """``[validation] search_mesh = "coarse"`` on a real case: the corners ranked on the cheaper mesh,
    the verdict's worst from the head's mesh, against brute force on the head's mesh.

    The search mesh is a different model (its figures differ from the head mesh's), yet the worst
    corner it leads to, confirmed, is the brute-force worst of every rule, and the head's mesh
    solves a fraction of the corners.
    """
    pf, factors, head_mesh, values = corners
    nominal = AnatomyCase("cheek", factors)
    cheap = AnatomySolver(pf, keep_results=False, search_mesh=True)
    screened = {}

    def search_mesh(c):
        figures, _ = cheap(corner_case(nominal, c))
        screened[c] = severities(pf, figures)
        return screened[c]

    found = worst_corners(len(factors), search_mesh, brute_force_up_to=0)
    confirmed = confirm_worst(found.values, lambda cs: [values[c] for c in cs])
    assert len(confirmed.values) < found.evaluations < 2 ** len(factors)
    # a cheaper model: fewer cells than the head's mesh of the same site
    assert 0 < cheap._patches["cheek"].report.cells < 0.8 * head_mesh._patches["cheek"].report.cells
    m = len(next(iter(values.values())))
    differ, searched = 0.0, 0
    for j in range(m):
        col = {c: v[j] for c, v in values.items() if not math.isnan(v[j])}
        if not col or max(col.values()) == min(col.values()):
            continue
        searched += 1
        assert values[confirmed.worst[j]][j] == pytest.approx(max(col.values()), rel=1e-12), f"objective {j}"
        differ = max(differ, max(abs(screened[c][j] / values[c][j] - 1) for c in confirmed.values if values[c][j] > 0))
    assert searched >= 3
    assert differ > 1e-3  # the search mesh is another model, not the head's mesh again
