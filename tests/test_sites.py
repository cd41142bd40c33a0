"""The facial site library and the case file's ``site`` key."""

from __future__ import annotations

import json

import pytest

from emsim.errors import InputError
from emsim.models import parse_case
from emsim.models.case_file import parse_case_text
from emsim.models.sites import site, sites
from emsim.models.tissues import library

from conftest import run_cli, small_cheek_table

SITE_NAMES = ("forehead", "cheek", "jaw", "under_chin")


def test_the_library_has_the_four_sites_with_sources_ranges_and_one_target():
    lib = sites()
    assert set(SITE_NAMES) <= set(lib)
    materials = library()
    for s in lib.values():
        assert sum(layer.target for layer in s.layers) == 1
        assert s.layers[0].tissue == "skin"
        for layer in s.layers:
            assert layer.tissue in materials
            lo, hi = layer.range_m
            assert 0 < lo <= layer.thickness_m <= hi < 0.05
            assert len(layer.source) > 20
    # anatomy the issue names: bone under the forehead and the jaw, a thick masseter target at the jaw
    assert site("forehead").layers[-1].tissue == "bone_cortical"
    assert site("jaw").target.label == "masseter" and 8e-3 < site("jaw").target.thickness_m < 10.5e-3
    assert site("under_chin").layers[1].thickness_m >= 5e-3
    assert 1e-3 <= site("forehead").target.thickness_m <= 2e-3


def _site_table(name: str, layers: list | None = None) -> dict:
    table = small_cheek_table()
    table.pop("layer")
    table["site"] = name
    if layers is not None:
        table["layer"] = layers
    return table


@pytest.mark.parametrize("name", SITE_NAMES)
def test_site_fills_the_layers_and_marks_its_target(name):
    case = parse_case(_site_table(name))
    s = site(name)
    assert [layer.label for layer in case.layers] == [layer.label for layer in s.layers]
    assert [layer.thickness_m for layer in case.layers] == pytest.approx([layer.thickness_m for layer in s.layers])
    assert case.target_layers() == [s.target.label]
    assert case.site == name
    again = parse_case_text(case.to_toml())
    assert again.digest() == case.digest()


def test_explicit_layers_override_the_site_by_label():
    case = parse_case(_site_table("cheek", [{"label": "fat", "thickness_mm": 5.5}]))
    fat = next(layer for layer in case.layers if layer.label == "fat")
    assert fat.thickness_m == pytest.approx(5.5e-3)
    assert parse_case(_site_table("cheek")).digest() != case.digest()
    moved = parse_case(_site_table("cheek", [{"label": "masseter", "target": True}]))
    assert moved.target_layers() == ["masseter"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t.update(site="nose"), "site"),
        (lambda t: t.update(site=3), "site"),
        (lambda t: t.update(layer=[{"label": "dermis", "thickness_mm": 1.0}]), "layer[0].label"),
        (lambda t: t.update(layer=[{"thickness_mm": 1.0}]), "layer[0].label"),
    ],
)
def test_bad_site_input_names_the_field(change, field):
    table = _site_table("cheek")
    change(table)
    with pytest.raises(InputError) as err:
        parse_case(table)
    assert err.value.field == field


def test_emsim_sites_prints_the_library_as_table_and_json(tmp_path):
    out = run_cli("sites", "--json", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    printed = json.loads(out.stdout)
    assert printed == {name: s.to_table() for name, s in sites().items()}
    assert printed["jaw"]["layer"][2]["range_mm"] == [6.0, 12.5]
    table = run_cli("sites", cwd=tmp_path)
    assert table.returncode == 0 and "zygomaticus" in table.stdout and "platysma" in table.stdout
