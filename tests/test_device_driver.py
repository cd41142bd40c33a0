"""The C driver (device/driver/ems_table.c), built on the host with the machine's C compiler.

No skip: without a C compiler these tests fail with a message saying so.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest
from device_helpers import PRESETS_TOML, synthetic_figures

import emsim
from emsim.device.export import FIELD_HASH, export_files, write_export
from emsim.device.presets import parse_presets
from emsim.device.validate import evaluate, group_key

DRIVER = Path(emsim.__file__).parent / "device" / "driver"
FLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic"]


def _compiler() -> str:
    for cc in ("cc", "gcc", "clang"):
        if shutil.which(cc):
            return cc
    pytest.fail("no C compiler (cc, gcc or clang) on PATH: the driver tests must build ems_table.c")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Export of two synthetic presets (one with dropped levels) and the test program built with its header."""
    raw = tomllib.loads(PRESETS_TOML)
    pf = parse_presets(raw, text=PRESETS_TOML)
    report = evaluate(pf, {group_key(p): synthetic_figures(p, volts_per_A=(100.0, 100.0)) for p in pf.presets})
    out = tmp_path_factory.mktemp("export")
    write_export(export_files(report), out)
    exe = out / "test_ems_table"
    cmd = [_compiler(), *FLAGS, "-DEMS_WITH_PRESETS_H", f"-I{DRIVER}", f"-I{out}",
           str(DRIVER / "test_ems_table.c"), str(DRIVER / "ems_table.c"), "-o", str(exe)]  # fmt: skip
    build = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    return out, exe


def _run(exe: Path, blob: Path, mode: str) -> str:
    r = subprocess.run([str(exe), str(blob), mode], check=False, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_driver_field_hash_matches_the_exporter():
    text = (DRIVER / "ems_table.h").read_text()
    assert int(re.search(r"EMS_TABLE_FIELD_HASH 0x([0-9A-F]+)u", text).group(1), 16) == FIELD_HASH


def test_exported_blob_loads_and_every_value_matches_the_json(exported):
    out, exe = exported
    manifest = json.loads((out / "ems_presets.json").read_text())
    lines = _run(exe, out / "ems_presets.bin", "dump").splitlines()
    assert len(lines) == len(manifest["presets"]) == 2
    for line, row in zip(lines, manifest["presets"], strict=True):
        head, levels = line.split(" levels")
        words = head.split()
        got = {"preset_id": int(words[1])} | {words[i]: int(words[i + 1]) for i in range(2, len(words), 2)}
        for key, value in got.items():
            assert value == row[key], key
        assert [int(v) for v in levels.split()] == row["levels_uA"]
    assert manifest["presets"][0]["levels_uA"] == [2000, 4000, 6000, 8000, 10000]  # 20 mA dropped


def test_generated_header_compiles_and_holds_the_same_table(exported):
    out, exe = exported
    manifest = json.loads((out / "ems_presets.json").read_text())
    lines = _run(exe, out / "ems_presets.bin", "header").splitlines()
    for line, row in zip(lines, manifest["presets"], strict=True):
        assert line == f"preset {row['preset_id']} n_levels {row['n_levels']} levels " + " ".join(map(str, row["levels_uA"]))


def test_every_single_bit_corruption_is_rejected(exported):
    out, exe = exported
    text = _run(exe, out / "ems_presets.bin", "bitflips")
    n = (out / "ems_presets.bin").stat().st_size * 8
    assert f"flips {n} accepted 0" in text
    assert "short -2 long -2" in text


def test_out_of_range_requests_are_rejected(exported):
    out, exe = exported
    text = _run(exe, out / "ems_presets.bin", "ranges")
    assert "level0 -9" in text
    assert "above -9 current 0" in text
    assert "level255 -9" in text
    assert "unknown -8" in text
    assert "null -1" in text
    assert "top 0" in text


# ----------------------------------------------------------------------------- device limits (issue 19, item 7)

RECORD_AT = 16  # header bytes; a record: u16 id, u8 waveform, u8 n_levels, 7 x u32 (pulse width first), levels
LEVELS_AT = 4 + 7 * 4


def _forged(blob: bytes, offset: int, value: int) -> bytes:
    """The blob with the u32 at ``offset`` set to ``value`` and its CRC recomputed: integrity holds."""
    import struct
    import zlib

    body = bytearray(blob[:-4])
    struct.pack_into("<I", body, offset, value)
    return bytes(body) + struct.pack("<I", zlib.crc32(body))


def _load_status(exe: Path, blob: bytes, tmp: Path) -> str:
    path = tmp / "forged.bin"
    path.write_bytes(blob)
    r = subprocess.run([str(exe), str(path), "dump"], check=False, capture_output=True, text=True, timeout=60)
    return r.stdout.strip() if r.returncode else "loaded"


def test_the_driver_limits_are_emsims_input_ranges():
    from emsim.device.presets import FREQUENCY_RANGE_Hz, LEVEL_RANGE_uA, PULSE_WIDTH_RANGE_us

    text = (DRIVER / "ems_table.h").read_text()

    def limit(name: str) -> int:
        return int(re.search(rf"#define EMS_DEVICE_{name} (\d+)u", text).group(1))

    assert (limit("MIN_LEVEL_uA"), limit("MAX_LEVEL_uA")) == LEVEL_RANGE_uA
    assert (limit("MIN_PULSE_WIDTH_us"), limit("MAX_PULSE_WIDTH_us")) == PULSE_WIDTH_RANGE_us == (50, 10_000)
    assert (limit("MIN_FREQUENCY_Hz"), limit("MAX_FREQUENCY_Hz")) == FREQUENCY_RANGE_Hz


@pytest.mark.parametrize(
    ("offset", "value", "what"),
    [
        (RECORD_AT + LEVELS_AT + 4 * 4, 2_000_000, "a 2 A top level (5th of 5)"),
        (RECORD_AT + 4, 10, "a 10 us pulse width"),
        (RECORD_AT + 4, 20_000, "a 20 ms pulse width"),
        (RECORD_AT + 4 + 8, 20_000, "a 20 kHz frequency"),
        (RECORD_AT + 4 + 8, 4_000, "a 4 kHz frequency: 2 x 200 us + gap no longer fit in 250 us"),
    ],
)
def test_a_record_beyond_the_device_limits_is_rejected_despite_a_valid_crc(exported, tmp_path, offset, value, what):
    out, exe = exported
    blob = (out / "ems_presets.bin").read_bytes()
    same = int.from_bytes(blob[offset : offset + 4], "little")
    assert same == {RECORD_AT + LEVELS_AT + 16: 10_000, RECORD_AT + 4: 200, RECORD_AT + 12: 50}[offset]  # the layout
    assert _load_status(exe, _forged(blob, offset, same), tmp_path) == "loaded"
    assert _load_status(exe, _forged(blob, offset, value), tmp_path) == "load -10", what


def test_a_firmware_with_a_smaller_output_stage_rejects_a_table_beyond_it(exported, tmp_path):
    out, _ = exported
    exe = tmp_path / "small_device"
    cmd = [_compiler(), *FLAGS, "-DEMS_DEVICE_MAX_LEVEL_uA=5000u", f"-I{DRIVER}",
           str(DRIVER / "test_ems_table.c"), str(DRIVER / "ems_table.c"), "-o", str(exe)]  # fmt: skip
    build = subprocess.run(cmd, check=False, capture_output=True, text=True)
    assert build.returncode == 0, build.stderr
    assert _load_status(exe, (out / "ems_presets.bin").read_bytes(), tmp_path) == "load -10"  # top level 10 mA
