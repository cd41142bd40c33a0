"""One clear line instead of a traceback or a misleading message (issue 19, items 5, 6 and 7).

Each test is a case that used to fail badly: a traceback (non-UTF-8 head, ``/dev/zero`` as a
mesh, a closed pipe), an error after solving had started (a presets file as the head), a 59 kB
or 309-digit echo, an empty list of built-ins, a path taken as a built-in name, an overlap
reported as a negative gap, or a waveform swept far beyond the band the models hold over.
No test here solves anything.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

import emsim
from emsim.cli import main
from emsim.errors import CaseFileError, InputError, echo
from emsim.models import parse_case

from conftest import small_cheek_table, to_toml

SAMPLES = Path(emsim.__file__).parent / "device" / "samples"
PRESETS = (SAMPLES / "facial-ems-1.toml").read_text("utf-8")


def _presets(folder: Path, *, head: str | None = None, text: str = PRESETS) -> Path:
    """The sample presets file in ``folder`` (its head copied beside it, or ``head``)."""
    shutil.copy(SAMPLES / "cheek-head.toml", folder / "cheek-head.toml")
    if head is not None:
        text = text.replace('electrode_head = "cheek-head.toml"', f'electrode_head = "{head}"')
    path = folder / "p.toml"
    path.write_text(text, "utf-8")
    return path


def _one_line_exit_2(capsys, argv: list[str]) -> str:
    capsys.readouterr()
    assert main(argv) == 2
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("emsim: error: "), err
    assert "Traceback" not in err and "solve" not in err
    return lines[0]


# ----------------------------------------------------------------------------- item 5: tracebacks


def test_a_non_utf8_electrode_head_is_one_line(tmp_path, capsys):
    (tmp_path / "head.toml").write_bytes(b'name = "x"\n\xff\xfe\n')
    line = _one_line_exit_2(capsys, ["validate", str(_presets(tmp_path, head="head.toml")), "--out", str(tmp_path / "o")])
    assert "device.electrode_head" in line and "not UTF-8" in line and "0xff" in line
    assert not (tmp_path / "o").exists()


def test_dev_zero_as_a_mesh_file_is_refused_before_reading_it():
    table = small_cheek_table()
    table["mesh"] = {"file": "/dev/zero", "tags": {"layer:skin": "skin"}}
    with pytest.raises(InputError) as err:
        parse_case(tomllib.loads(to_toml(table)))
    assert err.value.field == "mesh.file" and "regular" in err.value.allowed


def test_a_mesh_file_above_the_bound_is_refused(tmp_path, monkeypatch):
    from emsim.models import geometry

    big = tmp_path / "big.msh"
    big.write_bytes(b"x" * 2048)
    monkeypatch.setattr(geometry, "MAX_MESH_FILE_BYTES", 1024)
    with pytest.raises(InputError, match=r"mesh\.file = .*at most"):
        geometry.mesh_file_digest(str(big))


@pytest.mark.parametrize("command", ["run", "validate"])
def test_dev_zero_as_a_case_or_presets_file_is_one_line(tmp_path, capsys, command):
    line = _one_line_exit_2(capsys, [command, "/dev/zero", "--out", str(tmp_path / "o")])
    assert "/dev/zero" in line and "not a regular file" in line
    assert not (tmp_path / "o").exists()


def test_a_reader_that_closes_the_pipe_gets_no_traceback():
    proc = subprocess.Popen([sys.executable, "-m", "emsim.cli", "sites", "--json"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip
    proc.stdout.close()  # like `| head` that has read enough: every write now fails with EPIPE
    err = proc.stderr.read().decode()
    proc.wait(timeout=120)
    assert "Traceback" not in err and "BrokenPipeError" not in err, err
    assert proc.returncode == 1


# ----------------------------------------------------------------------------- item 6: clearer errors


def test_a_presets_file_as_the_head_is_named_before_any_solve(tmp_path, capsys):
    other = tmp_path / "other.toml"
    other.write_text(PRESETS, "utf-8")
    line = _one_line_exit_2(capsys, ["validate", str(_presets(tmp_path, head="other.toml")), "--out", str(tmp_path / "o")])
    assert "device.electrode_head" in line and "is a presets file, not a case file" in line


def test_a_case_file_given_as_presets_says_so(tmp_path, capsys):
    case = tmp_path / "case.toml"
    case.write_text(to_toml(small_cheek_table()), "utf-8")
    line = _one_line_exit_2(capsys, ["validate", str(case), "--out", str(tmp_path / "o")])
    assert "is a case file, not a presets file" in line


def test_a_ten_thousand_level_table_is_echoed_as_its_start_and_count(tmp_path, capsys):
    levels = ", ".join(str(10 + i) for i in range(10_000))
    text = PRESETS.replace("levels_uA = [2000, 4000, 6000, 8000, 10000, 14000, 20000]", f"levels_uA = [{levels}]")
    assert text != PRESETS
    line = _one_line_exit_2(capsys, ["validate", str(_presets(tmp_path, text=text)), "--out", str(tmp_path / "o")])
    assert "[10, 11, 12, 13, 14, ... (10000 items)]" in line and len(line) < 200  # was 59 kB


def test_a_huge_float_is_echoed_as_written_not_as_its_integer_digits(tmp_path, capsys):
    text = PRESETS.replace("frequency_Hz = 50", "frequency_Hz = 1e308", 1)
    assert text != PRESETS
    line = _one_line_exit_2(capsys, ["validate", str(_presets(tmp_path, text=text)), "--out", str(tmp_path / "o")])
    assert "frequency_Hz = 1e+308: a whole number of Hz in 1..10000" in line and len(line) < 120


def test_echo_summarises_long_values_of_every_kind():
    assert echo(list(range(10_000))) == "[0, 1, 2, 3, 4, ... (10000 items)]"
    assert echo({f"k{i}": i for i in range(1000)}).endswith("... (1000 keys)}")
    assert echo("x" * 5000).endswith("... (5000 characters)") and len(echo("x" * 5000)) < 200
    assert echo(1e308) == "1e+308" and echo([1, 2]) == "[1, 2]"


def test_a_missing_head_lists_the_built_ins(tmp_path, capsys):
    line = _one_line_exit_2(capsys, ["validate", str(_presets(tmp_path, head="no-such-head")), "--out", str(tmp_path / "o")])
    assert "one of cheek-dc, cheek-two-pads" in line and "()" not in line


def test_a_head_with_a_folder_part_is_a_path_relative_to_the_presets_file(tmp_path):
    from emsim.device.presets import read_presets

    heads = tmp_path / "heads"
    deep = tmp_path / "a" / "b"
    heads.mkdir()
    deep.mkdir(parents=True)
    shutil.copy(SAMPLES / "cheek-head.toml", heads / "cheek-head.toml")
    path = deep / "p.toml"
    path.write_text(PRESETS.replace('"cheek-head.toml"', '"../../heads/cheek-head"'), "utf-8")
    pf = read_presets(path)  # used to be looked up as a built-in case named "../../heads/cheek-head"
    assert pf.device.electrode_head == str((heads / "cheek-head.toml").resolve())
    path.write_text(PRESETS.replace('"cheek-head.toml"', '"../../heads/no-such"'), "utf-8")
    with pytest.raises(InputError, match=r"device\.electrode_head = .*no-such.*no such file"):
        read_presets(path)


def test_overlapping_pads_are_reported_as_overlapping_with_their_distance():
    table = small_cheek_table()
    for e, x in zip(table["electrode"], (0.0, 2.0), strict=True):
        e["diameter_mm"] = 8.0
        e["center_mm"] = [x, 0.0]
    with pytest.raises(InputError) as err:
        parse_case(tomllib.loads(to_toml(table)))
    assert err.value.field == "electrode[B].center_mm"
    assert "overlaps electrode A (centres 2 mm apart)" in err.value.allowed and "gap" not in err.value.allowed


# ----------------------------------------------------------------------------- item 7: the band


def test_the_quasi_static_bound_is_where_the_fields_stop_being_quasi_static():
    """At the bound, from the muscle row itself: (|k| L)^2 over 30 mm stays a few percent."""
    import cmath
    import math

    from emsim.models.dispersion import EPSILON_0_F_PER_M, GABRIEL_1996, QUASI_STATIC_MAX_HZ

    m, f = GABRIEL_1996["muscle"], QUASI_STATIC_MAX_HZ
    w = 2 * math.pi * f
    sigma_star = complex(m.conductivity_S_per_m(f), w * EPSILON_0_F_PER_M * m.relative_permittivity(f))
    k = cmath.sqrt(-1j * w * 4e-7 * math.pi * sigma_star)
    assert 0.02 < abs(k * 0.03) ** 2 < 0.06  # small here, and growing as f beyond
    assert 0.2 < 1 / abs(k.imag) < 0.25  # skin depth [m], as the docstring states


def test_a_1_MHz_0_1_us_waveform_is_refused_with_the_band():
    table = copy.deepcopy(small_cheek_table())
    table["waveform"] = {"shape": "biphasic_symmetric", "pulse_width_us": 0.1, "frequency_Hz": 1e6}
    with pytest.raises(InputError) as err:
        parse_case(tomllib.loads(to_toml(table)))  # used to sweep to 6.6e8 Hz
    assert err.value.field == "waveform.pulse_width_us"
    assert "must be >= 50 us" in err.value.allowed and "5e+09 Hz" in err.value.allowed
    assert "1e+07 Hz" in err.value.allowed and "quasi-static" in err.value.allowed


def test_a_50_us_pulse_is_at_the_band_edge_and_accepted():
    table = copy.deepcopy(small_cheek_table())
    table["waveform"] = {"shape": "monophasic", "pulse_width_us": 50.0, "frequency_Hz": 1000.0}
    assert parse_case(tomllib.loads(to_toml(table))).waveform.pulse_width_s == pytest.approx(50e-6, rel=1e-12)


def test_a_preset_beyond_the_band_names_its_pulse_width(tmp_path, capsys):
    text = PRESETS.replace("pulse_width_us = 250", "pulse_width_us = 20", 1)
    assert text != PRESETS
    line = _one_line_exit_2(capsys, ["validate", str(_presets(tmp_path, text=text)), "--out", str(tmp_path / "o")])
    assert "preset[0].pulse_width_us = 20" in line and "must be >= 50 us" in line


def test_the_case_file_reader_refuses_a_huge_file(tmp_path, monkeypatch):
    from emsim.models import case_file

    big = tmp_path / "big.toml"
    big.write_text("# " + "x" * 4096 + "\n", "utf-8")
    monkeypatch.setattr(case_file, "MAX_INPUT_FILE_BYTES", 1024)
    with pytest.raises(CaseFileError, match="larger than"):
        case_file.read_case_text(big)
