"""Case parsing, units and the material library."""

from __future__ import annotations

import copy
import math

import pytest

from emsim.errors import InputError
from emsim.models import library, parse_case
from emsim.models.electrodes import Electrode
from emsim.models.shapes import RoundedRectangle

from conftest import small_cheek_table


def test_case_file_units_become_si():
    case = parse_case(small_cheek_table())
    assert case.patch.width_m == pytest.approx(0.060)
    assert case.layers[0].thickness_m == pytest.approx(1.9e-3)
    a = case.electrode("A")
    assert a.shape.diameter_m == pytest.approx(15e-3) and a.center_m == pytest.approx((-15e-3, 0.0))
    assert a.gel.thickness_m == pytest.approx(0.5e-3)
    assert a.contact.resistance_ohm_m2 == pytest.approx(100e-4)  # 100 ohm cm^2
    assert case.channels[0].current_A == pytest.approx(10e-3)
    assert case.depth_m == pytest.approx(14.9e-3)


def test_every_library_material_names_its_sources():
    for name, tissue in library().items():
        assert tissue.electrical_source, name
        if tissue.thermal is not None:
            assert tissue.thermal.source, name


def test_library_skin_is_living_skin_not_gabriel_whole_skin():
    """The barrier is the contact impedance: the skin layer conducts like living skin."""
    skin = library()["skin"]
    assert skin.dispersion is None
    assert 0.1 <= skin.conductivity_at(10.0) <= 0.5
    # Gabriel's whole (wet) skin at 10 Hz is three orders of magnitude lower.
    from emsim.models.dispersion import GABRIEL_1996

    assert GABRIEL_1996["skin_wet"].conductivity_S_per_m(10.0) < 1e-3


def test_perfusion_converts_to_per_second():
    muscle = library()["muscle"].thermal
    assert muscle.perfusion_per_s == pytest.approx(36.7 * 1090.4 * 1e-6 / 60)


def test_rounded_rectangle_area_and_containment():
    shape = RoundedRectangle(width_m=0.02, length_m=0.01, corner_radius_m=0.002)
    e = Electrode(name="R", shape=shape, center_m=(0.0, 0.0))
    assert e.area_m2 == pytest.approx(0.02 * 0.01 - (4 - math.pi) * 0.002**2)
    assert e.contains(0.0099, 0.0) and not e.contains(0.00999, 0.00499)  # cut corner



def test_ring_and_polygon_areas_distances_and_containment():
    from emsim.models.shapes import Polygon, Ring

    ring = Ring(outer_diameter_m=0.016, inner_diameter_m=0.010)
    assert ring.area_m2 == pytest.approx(math.pi * (0.008**2 - 0.005**2), rel=1e-12)
    assert ring.contains(0.006, 0.0) and not ring.contains(0.0, 0.0) and not ring.contains(0.0085, 0.0)
    assert ring.signed_distance(0.0, 0.0) == pytest.approx(0.005)
    assert ring.signed_distance(0.0065, 0.0) == pytest.approx(-0.0015)
    # A clockwise square is reversed to counter-clockwise; its distance field is exact.
    square = Polygon(vertices_m=((-0.005, -0.005), (-0.005, 0.005), (0.005, 0.005), (0.005, -0.005)))
    assert square.area_m2 == pytest.approx(1e-4, rel=1e-12)
    assert square.signed_distance(0.0, 0.0) == pytest.approx(-0.005)
    assert square.signed_distance(0.008, 0.009) == pytest.approx(0.005)
    assert square.half_extent_m == pytest.approx((0.005, 0.005))
    # A regular 64-gon inscribed in a circle of radius R: area (n/2) R^2 sin(2 pi / n).
    n, radius = 64, 0.004
    gon = Polygon(vertices_m=tuple((radius * math.cos(2 * math.pi * k / n), radius * math.sin(2 * math.pi * k / n))
                                   for k in range(n)))  # fmt: skip
    assert gon.area_m2 == pytest.approx(0.5 * n * radius**2 * math.sin(2 * math.pi / n), rel=1e-12)


def _with_electrode(**row):
    table = copy.deepcopy(small_cheek_table())
    base = {k: v for k, v in table["electrode"][0].items() if k not in ("shape", "diameter_mm", "width_mm", "length_mm")}
    table["electrode"][0] = base | row
    return table


@pytest.mark.parametrize(
    ("row", "field", "allowed"),
    [
        ({"shape": "ring", "outer_diameter_mm": 10.0, "inner_diameter_mm": 10.0}, "electrode[A].inner_diameter_mm",
         "below outer_diameter_mm"),
        ({"shape": "ring", "outer_diameter_mm": 8.0, "inner_diameter_mm": 9.0}, "electrode[A].inner_diameter_mm",
         "below outer_diameter_mm"),
        ({"shape": "polygon", "vertices_mm": [[0, 0], [4, 4], [4, 0], [0, 4]]}, "electrode[A].vertices_mm",
         "edges 0 and 2 cross"),
        ({"shape": "polygon", "vertices_mm": [[0, 0], [4, 0]]}, "electrode[A].vertices_mm", "at least 3"),
        ({"shape": "polygon", "vertices_mm": "square"}, "electrode[A].vertices_mm", "at least 3 points"),
        ({"shape": "ring", "outer_diameter_mm": 8.0, "inner_diameter_mm": 4.0, "diameter_mm": 3.0},
         "electrode[A].diameter_mm", "not a ring key"),
    ],
)  # fmt: skip
def test_bad_outlines_are_input_errors_naming_the_field(row, field, allowed):
    with pytest.raises(InputError) as err:
        parse_case(_with_electrode(**row))
    assert err.value.field == field
    assert allowed in str(err.value)


def test_an_electrode_pattern_expands_into_named_copies_on_its_pitch():
    table = copy.deepcopy(small_cheek_table())
    a = table["electrode"][0]
    table["electrode"] = [a | {"center_mm": [0.0, -6.0], "diameter_mm": 4.0, "pattern": {"columns": 3, "rows": 1,
                                                                                         "pitch_mm": [8.0, 0.0]}},
                          table["electrode"][1] | {"center_mm": [0.0, 4.0]}]  # fmt: skip
    table["channel"] = {"anode": ["A1", "A2", "A3"], "cathode": "B", "current_mA": 5.0}
    case = parse_case(table)
    names = [e.name for e in case.electrodes]
    assert names == ["A1", "A2", "A3", "B"]
    assert [e.center_m for e in case.electrodes[:3]] == [pytest.approx((x, -0.006)) for x in (-0.008, 0.0, 0.008)]
    # The canonical form holds the expanded electrodes: it parses to the same case.
    assert parse_case(case.to_dict()) == case
    bad = copy.deepcopy(table)
    bad["electrode"][0]["pattern"]["columns"] = 0
    with pytest.raises(InputError) as err:
        parse_case(bad)
    assert err.value.field == "electrode[A].pattern.columns"


def test_user_material_inline_is_usable_as_a_layer():
    table = small_cheek_table()
    table["material"] = {"saline_gel": {"conductivity_S_per_m": 1.5, "electrical_source": "bench"}}
    table["electrode"][0]["gel"]["material"] = "saline_gel"
    case = parse_case(table)
    assert case.electrode("A").gel.material.conductivity_at(1e3) == 1.5


@pytest.mark.parametrize(
    ("change", "field", "allowed"),
    [
        (lambda t: t.pop("patch"), "patch", "missing"),
        (lambda t: t["mesh"].update(quality="ultra"), "mesh.quality", "coarse, default, fine"),
        (lambda t: t["mesh"].update(degree=4), "mesh.degree", "1, 2 or 3"),
        (lambda t: t.update(solver={"waveform_frequencies": 3}), "solver.waveform_frequencies", "7 to 200"),
        (lambda t: t["channel"].update(anode="B"), "channel.cathode", "anode and cathode"),
        (lambda t: t["channel"].update(current_mA=0), "channel.current_mA", "> 0"),
        (lambda t: t["electrode"][1].update(name="A"), "electrode.name", "unique"),
        (lambda t: t["layer"][2].update(fibre_direction=[0, 0, 0]), "layer[2].fibre_direction", "non-zero"),
        (lambda t: t.update(material={"x": {"conductivity_S_per_m": -1}}), "material.x.conductivity_S_per_m", "> 0"),
    ],
)
def test_bad_values_raise_input_error_naming_field_and_allowed_range(change, field, allowed):
    table = copy.deepcopy(small_cheek_table())
    change(table)
    with pytest.raises(InputError) as err:
        parse_case(table)
    assert err.value.field == field
    assert allowed in str(err.value)


def test_thermal_case_needs_thermal_properties_of_every_material():
    table = small_cheek_table(thermal=True)
    table["material"] = {"paste": {"conductivity_S_per_m": 0.1}}
    table["electrode"][0]["gel"]["material"] = "paste"
    with pytest.raises(InputError, match="material.paste"):
        parse_case(table)


def test_contact_capacitance_defaults_to_the_documented_value_and_zero_means_resistive():
    from emsim.models.electrodes import DEFAULT_CONTACT_CAPACITANCE_F_PER_M2

    table = small_cheek_table()
    table["electrode"][1]["contact"]["capacitance_uF_per_cm2"] = 0.0
    case = parse_case(table)
    assert case.electrode("A").contact.capacitance_F_per_m2 == pytest.approx(0.0155e-2)
    assert DEFAULT_CONTACT_CAPACITANCE_F_PER_M2 == pytest.approx(0.0155 * 1e-6 / 1e-4)
    assert case.electrode("B").contact.capacitance_F_per_m2 is None


def test_the_default_case_is_what_a_facial_device_does():
    """Issue 8.9: a biphasic train with ramps and on/off, felt but under 2 mA/cm^2 r.m.s."""
    from emsim.models import load_case
    from emsim.studies.run import default_case_path

    case = load_case(default_case_path())
    w = case.waveform
    assert w is not None and w.shape.startswith("biphasic") and not w.net_dc
    assert w.on_s > 0 and w.off_s > 0 and w.ramp_up_s > 0 and w.ramp_down_s > 0
    assert 5 * 60 <= case.thermal.session_s <= 15 * 60  # facial sessions of 5-15 min
    for e in case.electrodes:  # r.m.s. over the pad at the plateau (pulse train) and over the cycle
        assert w.rms_pulse_train(case.channels[0].current_A) * 1e3 / (e.area_m2 * 1e4) < 2.0
    assert case.channels[0].current_A >= 5e-3  # a level a user feels at 250 us
    # Contact values agree between the built-in cases.
    contacts = set()
    for path in sorted(default_case_path().parent.glob("*.toml")):
        for e in load_case(path).electrodes:
            contacts.add((e.contact.resistance_ohm_m2, e.contact.capacitance_F_per_m2))
    assert len(contacts) == 1


def test_mesh_method_defaults_to_free_enters_the_digest_and_is_checked():
    table = copy.deepcopy(small_cheek_table())
    case = parse_case(table)
    assert case.mesh.method == "free"
    assert case.to_dict()["mesh"]["method"] == "free"
    layered = parse_case(copy.deepcopy(table) | {"mesh": dict(table.get("mesh", {})) | {"method": "layered"}})
    assert layered.mesh.method == "layered"
    assert parse_case(layered.to_dict()) == layered
    assert layered.digest() != case.digest()
    with pytest.raises(InputError) as err:
        parse_case(copy.deepcopy(table) | {"mesh": {"method": "hex"}})
    assert err.value.field == "mesh.method"
    assert "free, layered" in str(err.value)
