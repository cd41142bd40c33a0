"""emsim validate / export on the command line: exit codes and the files they leave (no physics)."""

from __future__ import annotations

from pathlib import Path

import emsim
from emsim.cli import main

SAMPLES = Path(emsim.__file__).parent / "device" / "samples"


def test_monophasic_sample_export_is_refused_with_nothing_written_and_old_files_untouched(tmp_path, capsys):
    into = tmp_path / "driver"
    into.mkdir()
    (into / "ems_presets.h").write_text("/* old */\n")
    assert main(["export", str(SAMPLES / "monophasic.toml"), "--into", str(into)]) == 1
    err = capsys.readouterr().err
    assert "nothing written" in err and "preset 2 (galvanic)" in err and "net d.c." in err
    assert sorted(p.name for p in into.iterdir()) == ["ems_presets.h"]
    assert (into / "ems_presets.h").read_text() == "/* old */\n"


def test_a_levels_table_in_mA_is_bad_input_exit_2(tmp_path, capsys):
    text = (SAMPLES / "facial-ems-1.toml").read_text().replace(
        "levels_uA = [2000, 4000, 6000, 8000, 10000, 14000, 20000]", "levels_uA = [2, 4, 6, 8, 10, 14, 20]"
    )
    path = tmp_path / "p.toml"
    path.write_text(text.replace('"cheek-two-pads"', '"cheek-two-pads"'))
    assert main(["validate", str(path), "--out", str(tmp_path / "out")]) == 2
    assert "preset[0].levels_uA[0] = 2: below 10 uA" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_the_samples_parse_and_pass_the_physics_free_prechecks_only_where_expected():
    from emsim.device.export import precheck
    from emsim.device.presets import read_presets

    strong = read_presets(SAMPLES / "facial-ems-1.toml")
    assert [p.id for p in strong.presets] == [1, 2]
    assert precheck(strong) == []
    mono = read_presets(SAMPLES / "monophasic.toml")
    assert len(precheck(mono)) == 1
