"""Facial anatomy (issue 9): thin layers meshed, target-muscle metrics, exclusion zones, comfort."""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
from mpi4py import MPI

from emsim.errors import InputError
from emsim.meshes.patch import build_patch_mesh
from emsim.models import parse_case
from emsim.pipeline import solve_case
from emsim.solvers.physiology import sensory
from emsim.solvers.physiology.activation import DEFAULT_CHRONAXIE_S, DEFAULT_RHEOBASE_FIELD_V_PER_M
from emsim.solvers.records import Absent

PADS = [
    {"name": "A", "shape": "disk", "diameter_mm": 10, "center_mm": [-10.0, 0.0],
     "gel": {"material": "hydrogel", "thickness_mm": 0.5},
     "contact": {"resistance_ohm_cm2": 2900.0, "capacitance_uF_per_cm2": 0.0155}},
    {"name": "B", "shape": "disk", "diameter_mm": 10, "center_mm": [10.0, 0.0],
     "gel": {"material": "hydrogel", "thickness_mm": 0.5},
     "contact": {"resistance_ohm_cm2": 2900.0, "capacitance_uF_per_cm2": 0.0155}},
]  # fmt: skip
WAVE = {"shape": "biphasic_symmetric", "pulse_width_us": 250, "interphase_gap_us": 50, "frequency_Hz": 50}
FAST_SOLVER = {"waveform_frequencies": 9, "waveform_tolerance": 0.5}


def site_table(site: str, *, waveform: bool = False, width_mm: float = 40.0, length_mm: float = 30.0) -> dict:
    """A small two-pad case on a built-in site (coarse, degree 1)."""
    table = {
        "name": f"{site}-small", "site": site, "patch": {"width_mm": width_mm, "length_mm": length_mm},
        "electrode": copy.deepcopy(PADS), "channel": {"anode": "A", "cathode": "B", "current_mA": 5.0},
        "mesh": {"quality": "coarse", "degree": 1},
    }  # fmt: skip
    if waveform:
        table |= {"waveform": dict(WAVE), "solver": dict(FAST_SOLVER)}
    return table


# ----------------------------------------------------------------------------- thin layers


@pytest.mark.parametrize("site", ["forehead", "under_chin"])
def test_every_site_layer_is_at_least_two_cells_across(site):
    # No tetrahedron spans a whole layer (z-extent below the thickness), so every vertical line
    # through a layer crosses at least two cells: 1.5 mm frontalis, 1 mm platysma, 1.9 mm skin.
    case = parse_case(site_table(site, width_mm=24.0, length_mm=14.0) | {
        "electrode": [dict(PADS[0], center_mm=[-6.0, 0.0], diameter_mm=8), dict(PADS[1], center_mm=[6.0, 0.0], diameter_mm=8)]
    })  # fmt: skip
    patch = build_patch_mesh(case, MPI.COMM_WORLD)
    mesh = patch.mesh
    x = mesh.geometry.x
    for layer in case.layers:
        cells = patch.cell_tags.find(patch.volumes[f"layer:{layer.label}"])
        z = x[mesh.geometry.dofmaps[0][cells]][:, :, 2]
        extent = MPI.COMM_WORLD.allreduce(float((z.max(1) - z.min(1)).max(initial=0.0)), op=MPI.MAX)
        assert extent < 0.8 * layer.thickness_m, (layer.label, extent, layer.thickness_m)


def test_site_metrics_report_the_target_muscle_not_the_deepest_layer():
    result = solve_case(parse_case(site_table("cheek") | {"mesh": {"quality": "coarse", "degree": 1, "size_factor": 2.0}}))
    case, lead = result.case, result.electric
    assert case.target_layers() == ["zygomaticus"]
    # The muscle record holds the zygomaticus alone: its volume is the patch area x 2 mm.
    volume = lead.muscle_volumes_m3.sum()
    assert volume == pytest.approx(0.040 * 0.030 * 0.002, rel=1e-9)
    # The field there is larger than in the masseter 9 mm deeper (independently recomputed).
    from emsim.solvers.electric.electrodes import cell_gradients

    E = cell_gradients(result.mesh.mesh, [result.potential()])[0]
    n_owned = result.mesh.mesh.topology.index_map(3).size_local

    def max_field(label: str) -> float:
        cells = result.mesh.cell_tags.find(result.mesh.volumes[f"layer:{label}"])
        cells = cells[cells < n_owned]
        return MPI.COMM_WORLD.allreduce(float(np.linalg.norm(E[cells], axis=1).max(initial=0.0)), op=MPI.MAX)

    m = result.metrics.electric
    assert m.muscle_field_max_V_per_m == pytest.approx(max_field("zygomaticus"), rel=1e-9)
    assert m.muscle_field_max_V_per_m > 2 * max_field("masseter")


# ----------------------------------------------------------------------------- exclusion zones


def disk_table(*, waveform: bool = False) -> dict:
    """A bare equipotential 6 mm disk on a thick saline slab, returning through the deep face."""
    table = {
        "name": "disk-zone", "patch": {"width_mm": 90, "length_mm": 90},
        "layer": [{"tissue": "saline", "thickness_mm": 40.0}],
        "electrode": [{"name": "A", "shape": "disk", "diameter_mm": 6, "center_mm": [0.0, 0.0]}],
        "channel": {"anode": "A", "cathode": "ground", "current_mA": 2.0},
        "exclusion": [{"name": "z", "center_mm": [15.0, 0.0], "radius_mm": 3.0, "depth_mm": 3.0,
                       "field_max_V_per_m": 1.0, "current_density_max_A_per_m2": 2.0}],
        "mesh": {"quality": "coarse", "degree": 1},
    }  # fmt: skip
    if waveform:
        table |= {"waveform": dict(WAVE), "solver": dict(FAST_SOLVER)}
    return table


def newman_surface_field(current_A: float, sigma: float, a: float, r: float) -> float:
    """|E| on the surface of a half-space at r > a from an equipotential disk (Newman 1966).

    phi(r) = (2 V0 / pi) arcsin(a / r), V0 = I / (4 sigma a): E = I / (2 pi sigma r sqrt(r^2 - a^2)).
    """
    return current_A / (2 * math.pi * sigma * r * math.sqrt(r * r - a * a))


@pytest.fixture(scope="module")
def disk_result():
    return solve_case(parse_case(disk_table(waveform=True)))


def test_zone_field_lies_between_the_disk_closed_form_at_its_near_edge_and_its_centre(disk_result):
    zone = disk_result.metrics.exclusion.exclusion["z"]
    current, sigma, a = 2e-3, 1.0, 3e-3
    near, centre = newman_surface_field(current, sigma, a, 12e-3), newman_surface_field(current, sigma, a, 15e-3)
    e = zone.field_max_dc_V_per_m
    assert centre < e < 1.1 * near, (centre, e, near)
    # Saline is resistive: J = sigma E in every cell, and the zone holds about the cylinder's volume.
    assert zone.current_density_max_dc_A_per_m2 == pytest.approx(sigma * e, rel=1e-9)
    assert zone.volume_cm3 == pytest.approx(math.pi * 0.3**2 * 0.3, rel=0.35)
    rms = zone.field_rms_max_V_per_m  # a waveform case compares the plateau r.m.s. with the limits
    # placement (policy): the disk's edge is 9 mm from the zone's edge, below the default 10 mm
    assert zone.placement_gap_mm == pytest.approx(9.0, abs=1e-6)
    assert zone.placement_pass is False and "policy" in zone.placement_rule
    assert zone.passes is False
    assert disk_result.metrics.exclusion.exclusion_placement_gap_min_mm == pytest.approx(9.0, abs=1e-6)
    assert disk_result.metrics.exclusion.exclusion_placement_pass is False
    assert max(rms / 1.0, sigma * rms / 2.0) == pytest.approx(zone.limit_ratio, rel=1e-12)


def test_zone_rms_of_a_resistive_biphasic_train_is_the_peak_times_sqrt_2_pw_f(disk_result):
    zone = disk_result.metrics.exclusion.exclusion["z"]
    # A resistive medium follows the current: the pulse peak is the d.c. value and the r.m.s. over
    # the train at the plateau is I_peak sqrt(2 PW f) times the field per ampere (symmetric biphasic).
    assert zone.field_max_pulse_V_per_m == pytest.approx(zone.field_max_dc_V_per_m, rel=2e-3)
    assert zone.field_rms_max_V_per_m == pytest.approx(
        zone.field_max_dc_V_per_m * math.sqrt(2 * 250e-6 * 50), rel=2e-3
    )
    # Linear in the current, with no solve: the limit ratio at three times the current triples.
    ratio = disk_result.metrics.exclusion.exclusion_limit_ratio_max
    assert disk_result.at({"1": 6e-3}).exclusion.exclusion_limit_ratio_max == pytest.approx(3 * ratio, rel=1e-12)
    assert ratio == pytest.approx(zone.field_rms_max_V_per_m / 1.0, rel=1e-12)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"center_mm": [10.0, 0.0]}, "exclusion[z].center_mm"),  # overlaps the disk (gap 4 mm < 3 mm + ...)
        ({"center_mm": [5.0, 0.0]}, "exclusion[z].center_mm"),  # touches the electrode
        ({"center_mm": [44.0, 0.0]}, "exclusion[z].center_mm"),  # off the patch
        ({"depth_mm": 50.0}, "exclusion[z].depth_mm"),  # deeper than the tissue
        ({"radius_mm": -1.0}, "exclusion[z].radius_mm"),
        ({"field_max_V_per_m": 0.0}, "exclusion[z].field_max_V_per_m"),
        ({"min_distance_mm": -1.0}, "exclusion[z].min_distance_mm"),
        ({"diameter": 3.0}, "exclusion[0].diameter"),
    ],
)
def test_bad_exclusion_zones_are_input_errors_naming_the_field(change, field):
    table = disk_table()
    zone = table["exclusion"][0]
    for k, v in change.items():
        if v is None:
            zone.pop(k)
        else:
            zone[k] = v
    if change.get("center_mm") == [10.0, 0.0]:
        zone["radius_mm"] = 8.0
    with pytest.raises(InputError) as err:
        parse_case(table)
    assert err.value.field == field


def test_an_overlapping_zone_error_names_the_electrode():
    table = disk_table()
    table["exclusion"][0] |= {"center_mm": [5.5, 0.0]}
    with pytest.raises(InputError, match="overlaps electrode A"):
        parse_case(table)


def test_default_case_carries_an_eye_contour_zone_judged_by_placement_not_by_a_retina_limit_in_fat():
    from emsim import builtin_case, load_case
    from emsim.models.exclusion import placement_gap_m

    case = load_case(builtin_case("cheek-two-pads"))
    (zone,) = case.exclusions
    pad = case.electrode("A")
    # the zone's edge lies 10-15 mm above the pad (orbital rim above the upper cheek)
    gap = float(pad.signed_distance(*zone.center_m)) - zone.radius_m
    assert 10e-3 <= gap <= 15e-3
    assert placement_gap_m(zone, case.electrodes) == pytest.approx(gap, rel=1e-12)
    assert zone.min_distance_m == pytest.approx(10e-3)  # the policy default, stated in the case
    # the ICNIRP CNS restriction belongs to the retina, not to periorbital fat: no field limit here
    assert not zone.has_limits
    assert parse_case(parse_case_table_roundtrip(case)).digest() == case.digest()


def test_placement_rule_measures_the_gap_from_the_pad_outline_to_the_zone_edge():
    from emsim.models.exclusion import placement_gap_m

    table = disk_table()
    # disk radius 3 mm at the origin, zone radius 3 mm centred 15 mm away: gap 15 - 3 - 3 = 9 mm
    case = parse_case(table)
    (zone,) = case.exclusions
    assert placement_gap_m(zone, case.electrodes) == pytest.approx(9e-3, abs=1e-9)
    assert zone.min_distance_m == pytest.approx(10e-3)  # default: policy
    table["exclusion"][0] |= {"min_distance_mm": 8.0}
    assert parse_case(table).exclusions[0].min_distance_m == pytest.approx(8e-3)


def test_a_zone_may_carry_the_placement_rule_only():
    table = disk_table()
    for k in ("field_max_V_per_m", "current_density_max_A_per_m2"):
        table["exclusion"][0].pop(k)
    (zone,) = parse_case(table).exclusions
    assert not zone.has_limits and zone.to_table()["min_distance_mm"] == 10


def parse_case_table_roundtrip(case) -> dict:
    import tomllib

    return tomllib.loads(case.to_toml())


# ----------------------------------------------------------------------------- comfort


def test_sensory_defaults_follow_mogyoros_and_the_equal_short_pulse_charge_estimate():
    assert sensory.DEFAULT_SENSORY_CHRONAXIE_S == pytest.approx(665e-6)
    e_rh = DEFAULT_RHEOBASE_FIELD_V_PER_M * DEFAULT_CHRONAXIE_S / 665e-6
    assert sensory.DEFAULT_SENSORY_RHEOBASE_FIELD_V_PER_M == pytest.approx(e_rh, abs=0.05)
    from emsim.models.case import ActivationSettings

    assert ActivationSettings().sensory_rheobase_field_V_per_m == sensory.DEFAULT_SENSORY_RHEOBASE_FIELD_V_PER_M


@pytest.fixture(scope="module")
def cheek_pulse():
    return solve_case(parse_case(tiny(site_table("cheek", waveform=True))))


def tiny(table: dict) -> dict:
    """The case on a 30 x 20 mm patch with 8 mm pads 14 mm apart and a coarser mesh."""
    table["patch"] = {"width_mm": 30.0, "length_mm": 20.0}
    table["electrode"][0]["center_mm"], table["electrode"][1]["center_mm"] = [-7.0, 0.0], [7.0, 0.0]
    for e in table["electrode"]:
        e["diameter_mm"] = 8
    table["mesh"]["size_factor"] = 2.0
    return table


def test_sensory_and_motor_thresholds_are_where_the_onset_volume_first_crosses(cheek_pulse):
    comfort = cheek_pulse.metrics.comfort
    w = cheek_pulse.waveform
    assert comfort.sensory_threshold_field_V_per_m == pytest.approx(8.3 * (1 + 665 / 250), rel=1e-12)
    assert comfort.motor_threshold_field_V_per_m == pytest.approx(12.0 * (1 + 460 / 250), rel=1e-12)
    onset = 1e-9
    for current, field, volumes, threshold in (
        (comfort.sensory_threshold_current_A, w.dermis_field, w.dermis_volumes_m3, comfort.sensory_threshold_field_V_per_m),
        (comfort.motor_threshold_current_A, w.fibre_field, w.muscle_volumes_m3, comfort.motor_threshold_field_V_per_m),
    ):  # fmt: skip
        assert 1e-5 < current < 1.0
        above = field(np.array([current * 1.001])) >= threshold
        below = field(np.array([current * 0.999])) >= threshold
        assert volumes[above].sum() >= onset > volumes[below].sum()
    assert comfort.motor_to_sensory_threshold_ratio == pytest.approx(
        comfort.motor_threshold_current_A / comfort.sensory_threshold_current_A, rel=1e-12
    )
    # Thresholds are properties of the design: the same at any amplitude.
    assert cheek_pulse.at({"1": 0.02}).comfort.sensory_threshold_current_A == pytest.approx(
        comfort.sensory_threshold_current_A, rel=1e-9
    )
    # The skin under the pads feels the pulse before the 2 mm zygomaticus 4.9 mm deep contracts.
    assert comfort.motor_to_sensory_threshold_ratio > 1.0


def test_comfort_is_absent_with_a_reason_for_a_dc_case():
    result = solve_case(parse_case(tiny(site_table("jaw"))))
    assert isinstance(result.metrics.comfort, Absent)
    body = result.to_json()
    assert "pulse width" in body["absent"]["comfort"]
    assert "sensory_threshold_current_A" not in body


# ----------------------------------------------------------------------------- the three-site example


def test_the_three_site_study_takes_each_site_s_layers_and_target():
    from pathlib import Path

    from emsim.studies.study import load_study

    path = Path(__file__).resolve().parent.parent / "studies" / "examples" / "three-sites.toml"
    study = load_study(path)
    targets = {p.params["site"]: p.case.target_layers() for p in study.points}
    assert targets == {"forehead": ["frontalis"], "cheek": ["zygomaticus"], "jaw": ["masseter"]}
    depths = {p.params["site"]: p.case.depth_m for p in study.points}
    assert depths == pytest.approx({"forehead": 11.4e-3, "cheek": 20.1e-3, "jaw": 18.2e-3})
    assert all(p.case.exclusions[0].name == "eye_contour" for p in study.points)
    # the default case's zone, judged by placement only: no CNS limit on periorbital tissue (issue 17)
    zones = [p.case.exclusions[0] for p in study.points]
    assert all(z.center_m == pytest.approx((-15e-3, 25e-3)) and not z.has_limits for z in zones)


# ----------------------------------------------------------------------------- layered mesh


def test_every_cell_keeps_the_stated_prism_aspect_bound_per_layer():
    """Flat cells away from the pads, tall ones under the rims: max(h_xy/dz, dz/h_xy) <= MAX_ASPECT.

    Recomputed from the DOLFINx cells: each tetrahedron of the extruded mesh spans one level
    (its z extent is the level height) and its edges project onto its skin triangle's edges.
    """
    from emsim.meshes.layered import MAX_ASPECT, MIN_CELLS_ACROSS

    table = site_table("cheek")
    table.setdefault("mesh", {})["method"] = "layered"
    case = parse_case(table)
    patch = build_patch_mesh(case, MPI.COMM_WORLD)
    x = patch.mesh.geometry.x
    for layer in case.layers:
        cells = patch.cell_tags.find(patch.volumes[f"layer:{layer.label}"])
        p = x[patch.mesh.geometry.dofmaps[0][cells]]
        dz = p[:, :, 2].max(1) - p[:, :, 2].min(1)
        edges = [np.linalg.norm(p[:, i, :2] - p[:, j, :2], axis=1) for i in range(4) for j in range(i + 1, 4)]
        hxy = np.max(edges, axis=0)
        worst = MPI.COMM_WORLD.allreduce(float(np.maximum(hxy / dz, dz / hxy).max(initial=0.0)), op=MPI.MAX)
        assert worst <= MAX_ASPECT * (1 + 1e-9), (layer.label, worst)
        assert worst == pytest.approx(patch.report.layer_aspect_max[layer.label], rel=1e-6)
        # At least MIN_CELLS_ACROSS cells across: that many + 1 distinct levels in the layer.
        levels = np.unique(np.round(p[:, :, 2].ravel(), 12))
        levels = np.unique(np.concatenate(MPI.COMM_WORLD.allgather(levels)))
        assert len(levels) >= MIN_CELLS_ACROSS + 1, (layer.label, levels)


def _stack_table(thicknesses_mm: list[float], method: str = "free", degree: int = 2) -> dict:
    return {
        "name": "morph", "patch": {"width_mm": 40.0, "length_mm": 30.0},
        "layer": [{"tissue": t, "thickness_mm": h} for t, h in zip(("skin", "fat", "muscle"), thicknesses_mm, strict=True)],
        "electrode": copy.deepcopy(PADS), "channel": {"anode": "A", "cathode": "B", "current_mA": 5.0},
        "mesh": {"quality": "coarse", "degree": degree, "method": method},
    }  # fmt: skip


def _electric(case, patch):
    from emsim.solvers.electric.metrics import ElectricLeadField
    from emsim.solvers.electric.problem import ElectricProblem

    problem = ElectricProblem(case, patch)
    lead = ElectricLeadField.build(problem, problem.channel_unit_solutions())
    return lead.at([c.current_A for c in case.channels])


@pytest.mark.parametrize(("method", "degree"), [("free", 2), ("layered", 1)])
def test_a_morphed_mesh_matches_a_fresh_mesh_of_the_new_stack_to_the_discretisation_error(method, degree):
    """Both meshers keep every layer interface on a plane z = const, so the morph moves either.

    The layered mesh runs at degree 1: at degree 2 it is 304k dofs on this patch (CG + GAMG, two
    minutes of the suite for three solves); the morph is a mesh operation, the degree only sets
    how small the discretisation error it is compared with is.
    """
    from emsim.meshes.morph import morph_layers

    old, new = [1.5, 3.0, 10.0], [1.1, 4.5, 8.0]
    case_old = parse_case(_stack_table(old, method, degree))
    case_new = parse_case(_stack_table(new, method, degree))
    patch = build_patch_mesh(case_old, MPI.COMM_WORLD)
    cells, dofmap = patch.report.cells, patch.mesh.geometry.dofmaps[0].copy()
    morphed = morph_layers(patch, [t * 1e-3 for t in new])
    assert morphed.layer_thicknesses_m == pytest.approx([t * 1e-3 for t in new], rel=1e-12)
    assert np.array_equal(morphed.mesh.geometry.dofmaps[0], dofmap)  # same topology
    # Every layer's cells lie within its new interfaces.
    x = morphed.mesh.geometry.x
    top = 0.0
    for layer, t in zip(case_new.layers, new, strict=True):
        z = x[dofmap[morphed.cell_tags.find(morphed.volumes[f"layer:{layer.label}"])]][:, :, 2]
        assert z.max() <= top + 1e-12 and z.min() >= top - t * 1e-3 - 1e-12
        top -= t * 1e-3
    m_morph = _electric(case_new, morphed)
    m_fresh = _electric(case_new, build_patch_mesh(case_new, MPI.COMM_WORLD))
    m_old = _electric(case_old, build_patch_mesh(case_old, MPI.COMM_WORLD))
    assert cells == morphed.report.cells
    # The stack change moves the impedance by several percent; the two meshes of the new stack
    # agree to the discretisation error of the coarse mesh (well within 0.5 % here).
    shift = abs(m_old.impedance_ohm / m_fresh.impedance_ohm - 1)
    assert abs(m_morph.impedance_ohm / m_fresh.impedance_ohm - 1) < min(5e-3, 0.2 * shift)
    peak_morph, peak_fresh = m_morph.skin_current_density_peak_A_per_m2, m_fresh.skin_current_density_peak_A_per_m2
    assert abs(peak_morph / peak_fresh - 1) < 0.02


def test_morph_refuses_a_wrong_stack():
    from emsim.meshes.morph import morph_layers

    patch = build_patch_mesh(parse_case(_stack_table([1.5, 3.0, 10.0])), MPI.COMM_WORLD)
    with pytest.raises(InputError) as err:
        morph_layers(patch, [1e-3, 2e-3])
    assert err.value.field == "thicknesses_m"
    with pytest.raises(InputError) as err:
        morph_layers(patch, [1e-3, 0.0, 2e-3])
    assert err.value.field == "thicknesses_m[1]"


def test_place_layers_puts_a_shared_mesh_back_to_each_morphed_stack():
    """Corners share one mesh: a corner's picture after the search moved on needs its own nodes back."""
    from emsim.meshes.morph import morph_layers, place_layers

    patch = build_patch_mesh(parse_case(_stack_table([1.5, 3.0, 10.0])), MPI.COMM_WORLD)
    x0 = patch.mesh.geometry.x.copy()
    a = morph_layers(patch, [1.1e-3, 4.5e-3, 8.0e-3])
    xa = a.mesh.geometry.x.copy()
    b = morph_layers(a, [2.0e-3, 2.0e-3, 12.0e-3])
    assert not np.allclose(b.mesh.geometry.x, xa)
    place_layers(a)  # the nodes are where a's fields were solved
    np.testing.assert_allclose(a.mesh.geometry.x, xa, atol=1e-15)
    assert a.mesh.geometry.x[:, 2].min() == pytest.approx(-(1.1 + 4.5 + 8.0) * 1e-3, rel=1e-12)
    place_layers(patch)  # the nominal one, never morphed itself, is tracked through its shared mesh
    np.testing.assert_allclose(patch.mesh.geometry.x, x0, atol=1e-15)
    place_layers(patch)  # a no-op where they already are
    np.testing.assert_allclose(patch.mesh.geometry.x, x0, atol=1e-15)
