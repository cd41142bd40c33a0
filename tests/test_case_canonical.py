"""The canonical case form and its digest; the layering rules of the package."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
from pathlib import Path

import pytest

from emsim.errors import InputError
from emsim.models import load_case, parse_case, parse_case_text
from emsim.studies.run import default_case_path

ROOT = Path(__file__).resolve().parent.parent

REFORMATTED = """
# the default cheek case, written differently: key order, inline and dotted tables, integers for
# floats, explicit defaults, comments
description = "Cheek, two 15 mm hydrogel pads, 10 mA symmetric biphasic 250 us at 50 Hz, 5 s on / 10 s off, ramps 1 s"
name = "cheek-two-pads"

[mesh]
degree = 1
quality = "coarse"
size_factor = 1

[patch]
length_mm = 90.0
width_mm = 60

[[layer]]
thickness_mm = 1.90
tissue = "skin"
[[layer]]
tissue = "fat"
thickness_mm = 3
target = false
[[layer]]
tissue = "muscle"
thickness_mm = 10
fibre_direction = [2, 0, 0]
[[layer]]
label = "deep_fat"
thickness_mm = 13
tissue = "fat"

[[electrode]]
center_mm = [-15, 0]
name = "A"
diameter_mm = 15.0
contact = { capacitance_uF_per_cm2 = 0.0155, resistance_ohm_cm2 = 2900 }
[electrode.gel]
thickness_mm = 0.5
material = "hydrogel"

[[electrode]]
name = "B"
shape = "disk"
diameter_mm = 15
center_mm = [15.0, 0.0]
gel = { material = "hydrogel", thickness_mm = 0.50 }
contact = { resistance_ohm_cm2 = 2900.0 }

[channel]
current_mA = 10
cathode = "B"
anode = ["A"]
name = "1"
timing = "interleaved"

[waveform]
frequency_Hz = 50.0
shape = "biphasic_symmetric"
pulse_width_us = 250
interphase_gap_us = 50
on_s = 5
off_s = 10
ramp_down_s = 1
ramp_up_s = 1.0
rise_time_us = 2

[solver]
method = "auto"

[thermal]
session_min = 10.0

[activation]
target_volume_cm3 = 0.5
onset_volume_mm3 = 1

[[exclusion]]
min_distance_mm = 10
depth_mm = 10
radius_mm = 12
kind = "orbit"
center_mm = [-15, 32]
name = "eye_contour"
source = "placement policy: keep the pads 10 mm from the eye contour (no standard sets the distance); the globe under it carries the phosphene criterion"
"""


def test_two_files_of_the_same_case_have_the_same_digest():
    a = load_case(default_case_path())
    b = parse_case_text(REFORMATTED)
    assert a == b
    assert a.digest() == b.digest()
    assert a.to_toml() == b.to_toml()


def test_the_canonical_form_reads_back_to_the_same_case_and_digest():
    for path in sorted((ROOT / "studies" / "cases").glob("*.toml")):
        case = load_case(path)
        again = parse_case_text(case.to_toml())
        assert again == case, path.name
        assert again.digest() == case.digest(), path.name


def test_the_digest_is_stable_across_processes():
    case = load_case(default_case_path())
    code = (
        "import emsim; from emsim.models import load_case; from emsim.studies.run import default_case_path; "
        "print(load_case(default_case_path()).digest())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120)
    assert out.stdout.strip() == case.digest()
    assert re.fullmatch(r"[0-9a-f]{64}", case.digest())


def _leaves(table, path=()):
    if isinstance(table, dict):
        for k, v in table.items():
            yield from _leaves(v, (*path, k))
    elif isinstance(table, list) and table and all(isinstance(x, dict) for x in table):
        for i, v in enumerate(table):
            yield from _leaves(v, (*path, i))
    elif isinstance(table, list):
        for i, v in enumerate(table):
            if isinstance(v, (int, float)) and not isinstance(v, bool):
                yield (*path, i), v
    elif isinstance(table, (int, float)) and not isinstance(table, bool):
        yield path, table


def _set(table, path, value):
    for key in path[:-1]:
        table = table[key]
    table[path[-1]] = value


def test_the_digest_changes_when_any_value_changes():
    base = load_case(default_case_path())
    canonical = base.to_dict()
    changed = 0
    for path, value in _leaves(canonical):
        if "fibre_direction" in path and value:
            continue  # a direction is normalised: scaling a component along it means the same case
        table = copy.deepcopy(canonical)
        _set(table, path, value * 1.01 if value else 0.5)
        if path[0] == "mesh" and path[-1] == "degree":
            _set(table, path, 3 - value)  # the other allowed degree
        try:
            case = parse_case(table)
        except InputError:
            continue  # the changed value is not allowed: no case to hash
        assert case.digest() != base.digest(), path
        changed += 1
    assert changed >= 25  # every number of the default case, materials included
    renamed = copy.deepcopy(canonical)
    renamed["electrode"][0]["name"] = "A2"
    renamed["channel"][0]["anode"] = ["A2"]
    assert parse_case(renamed).digest() != base.digest()


def test_solvers_write_no_files_and_no_library_module_asserts():
    writers = re.compile(r"savefig\(|XDMFFile\(|VTXWriter\(|to_csv\(|savetxt\(|write_text\(|open\([^)]*['\"][wa]")
    for path in sorted((ROOT / "solvers").glob("*.py")):
        text = path.read_text()
        assert not writers.search(text), f"{path.name} writes a file"
    for folder in ("models", "meshes", "solvers", "studies", "device"):
        for path in sorted((ROOT / folder).glob("*.py")):
            assert not re.search(r"^\s*assert\s", path.read_text(), re.MULTILINE), f"{folder}/{path.name} asserts"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t["electrode"][0].update(diameter_mm=-3), "electrode[A].diameter_mm"),
        (lambda t: t["layer"][1].update(thickness_mm=0), "layer[1].thickness_mm"),
        (lambda t: t["patch"].update(width_mm="wide"), "patch.width_mm"),
        (lambda t: t["electrode"][0]["contact"].update(resistance_ohm_cm2=-1), "electrode[A].contact.resistance_ohm_cm2"),
        (lambda t: t["thermal"].update(session_min=1e4), "thermal.session_min"),
    ],
)
def test_ranges_stated_in_the_dataclasses_name_the_file_key(change, field):
    table = load_case(default_case_path()).to_dict()
    change(table)
    with pytest.raises(InputError) as err:
        parse_case(table)
    assert err.value.field == field
