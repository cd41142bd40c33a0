"""emsim validate / export on the command line: exit codes and the files they leave (no physics)."""

from __future__ import annotations

from pathlib import Path

import pytest

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


def test_every_corner_of_the_spread_builds_a_valid_case_with_each_factor_at_its_own_end():
    from emsim.device.anatomy import contact_range, corner_case, head_case_table, nominal_case
    from emsim.device.presets import head_case_text, parse_presets
    from emsim.models.case_file import parse_case, parse_toml
    from emsim.models.sites import site

    raw = {"device": {"name": "d", "electrode_head": "cheek-two-pads", "compliance_voltage_V": 60,
                      "sites": ["cheek", "jaw"]},
           "preset": [{"id": 1, "name": "a", "waveform": "biphasic_symmetric", "pulse_width_us": 200,
                       "interphase_gap_us": 50, "frequency_Hz": 50, "levels_uA": [1000, 2000], "session_min": 5}]}  # fmt: skip
    pf = parse_presets(raw)
    # the sample head: the built-in case's eye zone is an orbit, whose globe (26.4 mm deep) the nominal cheek stack (20.1 mm) cannot hold
    head = parse_toml(*head_case_text(str(SAMPLES / "cheek-head.toml")))
    c = contact_range(pf.validation.contact)
    assert pf.validation.contact == "hydrogel_under_stimulation"  # the default: the large-signal range
    assert c.resistance_ohm_cm2 == (100.0, 5300.0)
    assert contact_range("gel_on_unprepared_skin").resistance_ohm_cm2 == (1e4, 1e6)  # Rosell et al. 1988 at 1 Hz
    for name in ("cheek", "jaw"):
        nominal = nominal_case(pf.device, pf.validation, name)
        s = site(name)
        tissues = [t for t in ("skin", "fat", "muscle") if t in {layer.tissue for layer in s.layers}]
        sigma = [f"sigma_{t}" for t in tissues]  # the conductivity ranges of models/data/conductivity.toml
        assert [f.name for f in nominal.factors] == [layer.label for layer in s.layers] + ["R", "C"] + sigma
        k = len(nominal.factors)
        n = len(s.layers)
        # a mixed corner (alternating min / max): every layer at its own end, not all together
        levels = tuple(i % 2 == 0 for i in range(k))
        case = parse_case(head_case_table(head, corner_case(nominal, levels), pf.presets[0], 0.002))
        want = [layer.range_m[1 if levels[i] else 0] for i, layer in enumerate(s.layers)]
        assert [layer.thickness_m for layer in case.layers] == pytest.approx(want)
        r = c.resistance_ohm_cm2[1 if levels[n] else 0]
        cap = c.capacitance_uF_per_cm2[1 if levels[n + 1] else 0]
        for i, t in enumerate(tissues):  # each scaled tissue at its own range end
            f = nominal.factors[n + 2 + i]
            scale = f.high if levels[n + 2 + i] else f.low
            layer = next(la for la in case.layers if la.tissue.name == t)
            assert layer.tissue.conductivity_scale == pytest.approx(scale)
        assert case.electrodes[0].contact.resistance_ohm_m2 == pytest.approx(r * 1e-4)
        assert case.electrodes[1].contact.capacitance_F_per_m2 == pytest.approx(cap * 1e-2)
        assert case.channels[0].current_A == pytest.approx(0.002)
        assert case.thermal.session_s == 300.0
        assert corner_case(nominal, levels).label.startswith(f"{name}/skin+ ")


def test_the_large_signal_contact_resistance_top_is_the_two_pad_size_fit_of_its_source_rounded_up():
    """models/data/contact.toml [hydrogel_under_stimulation]: the max R is the contact term of
    Z(A) = 2 rho / A + R_tissue through the two conductances its source quotes (886 uS for 20 cm^2
    pads, 1286 uS for 60 cm^2), rounded up; the small-signal range lies above it (breakdown)."""
    from emsim.device.anatomy import contact_range, contact_ranges

    large, small = contact_range("hydrogel_under_stimulation"), contact_range("gel_on_unprepared_skin")
    z20, z60 = 1.0 / 886e-6, 1.0 / 1286e-6  # pair impedances [ohm]
    rho = (z20 - z60) / (2.0 / 20.0 - 2.0 / 60.0)  # [ohm cm^2]
    assert "886 uS" in large.resistance_source and "1286 uS" in large.resistance_source
    assert rho <= large.resistance_ohm_cm2[1] <= 1.01 * rho  # 5266 -> 5300
    assert large.resistance_ohm_cm2[1] < small.resistance_ohm_cm2[0]
    for c in contact_ranges().values():  # every entry: a range with a source that says what is unverified
        assert 0.0 < c.resistance_ohm_cm2[0] <= c.resistance_ohm_cm2[1]
        assert 0.0 < c.capacitance_uF_per_cm2[0] <= c.capacitance_uF_per_cm2[1]
        assert "UNVERIFIED" in c.resistance_source + c.capacitance_source
