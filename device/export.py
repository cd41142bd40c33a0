"""Export the safe preset table into the driver package: C header, packed binary, JSON manifest.

Files (byte-identical on re-export: no timestamps, sorted keys, fixed formats):

* ``ems_presets.h``: a C99 ``static const ems_preset_t EMS_PRESETS[]`` in integer units (uA, us,
  Hz, ms, mV, nC, uA/cm^2, uW/cm^2); per preset its number of safe levels and their currents.
* ``ems_presets.bin``: little-endian; header ``magic "EMSP"``, u16 schema version, u16 zero,
  u32 hash of the field list (CRC-32 of :data:`FIELD_LIST`), u32 record count; the records
  (:data:`FIELDS`, :data:`RECORD_SIZE` bytes each); a CRC-32 (zlib) trailer over everything
  before it. ``device/driver/ems_table.c`` reads it.
* ``ems_presets.json``: the same table with provenance: emsim version, the inputs' digest, the
  rules with their limits and sources, the safety factor, the anatomy cases, the dropped levels
  and why.

Levels above a preset's safe maximum are dropped (and listed with their binding rule). A preset
that breaks a level-independent rule, or has no safe level, refuses the whole export
(:class:`ExportRefused`): nothing is written and existing files are untouched.

The three files are one unit, the driver package folder: this module decides their bytes, and
:func:`emsim.io.folders.staged_folder` writes them into a new folder beside the target and
switches it into place in one atomic step, so the folder holds the old package or the new one,
never a mix. Names are ASCII in the header: a non-ASCII character of a device or preset name
becomes ``_`` in its C comment (the JSON manifest keeps the name exactly, as JSON unicode
escapes).
"""

from __future__ import annotations

import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import __version__
from ..errors import EmsimError
from ..io import staged_folder, write_bytes
from .figures import net_dc_uA
from .presets import MAX_LEVELS, WAVEFORMS, PresetsFile
from .rules import LIMITS
from .validate import HEADROOM_DIGITS, PresetCheck, ValidationReport
from .validate import number_text as number

__all__ = [
    "FIELDS",
    "FIELD_HASH",
    "FIELD_LIST",
    "MAGIC",
    "RECORD_SIZE",
    "SCHEMA_VERSION",
    "ExportRefused",
    "export_files",
    "precheck",
    "write_export",
]

MAGIC = b"EMSP"
SCHEMA_VERSION = 1

#: The record's fields in order: (name, struct code, count). Integer units in the names.
FIELDS: tuple[tuple[str, str, int], ...] = (
    ("preset_id", "H", 1), ("waveform", "B", 1), ("n_levels", "B", 1),
    ("pulse_width_us", "I", 1), ("interphase_gap_us", "I", 1), ("frequency_Hz", "I", 1),
    ("session_ms", "I", 1), ("on_ms", "I", 1), ("off_ms", "I", 1), ("ramp_ms", "I", 1),
    ("levels_uA", "I", MAX_LEVELS),
    ("max_voltage_500ohm_mV", "I", 1), ("max_voltage_2kohm_mV", "I", 1), ("max_voltage_10kohm_mV", "I", 1),
    ("max_current_500ohm_uA", "I", 1), ("max_current_2kohm_uA", "I", 1), ("max_current_10kohm_uA", "I", 1),
    ("net_charge_per_pulse_nC", "i", 1), ("max_phase_charge_500ohm_nC", "I", 1),
    ("max_rms_current_density_uA_per_cm2", "I", 1), ("max_average_current_uA", "I", 1),
    ("max_average_power_density_uW_per_cm2", "I", 1),
)  # fmt: skip
_C_TYPES = {"H": "uint16_t", "B": "uint8_t", "I": "uint32_t", "i": "int32_t"}
#: The field list the hash covers ("name:type[count];...").
FIELD_LIST = ";".join(f"{n}:{_C_TYPES[c]}[{k}]" for n, c, k in FIELDS)
FIELD_HASH = zlib.crc32(FIELD_LIST.encode("ascii"))
_RECORD = struct.Struct("<" + "".join(f"{k}{c}" for _, c, k in FIELDS))
RECORD_SIZE = _RECORD.size
_HEADER = struct.Struct("<4sHHII")


class ExportRefused(EmsimError):
    """The presets cannot be exported (a level-independent rule fails, or no safe level)."""


def precheck(pf: PresetsFile) -> list[str]:
    """Level-independent rules decidable before any physics; a reason per failing preset.

    Net d.c. of the output (the waveform alone) and the compliance voltage against the peak
    open-circuit voltage limit.
    """
    reasons = []
    net_limit = float(pf.limits.get("net_dc_uA", LIMITS["net_dc_uA"].value))
    voc = float(pf.limits.get("open_circuit_voltage_V", LIMITS["open_circuit_voltage_V"].value))
    if pf.device.compliance_voltage_V > voc:
        reasons.append(f"device: compliance voltage {pf.device.compliance_voltage_V:g} V above the "
                       f"{voc:g} V open-circuit limit (iec_open_circuit_voltage)")  # fmt: skip
    for p in pf.presets:
        w = p.waveform_model()
        dc = net_dc_uA(w, p.levels_A[0])
        if dc > net_limit:
            reasons.append(f"preset {p.id} ({p.name}): net d.c. {dc:.4g} uA at level 1 above the {net_limit:g} uA "
                           f"limit (net_dc_current; {p.waveform} is not charge balanced)")  # fmt: skip
    return reasons


def _rint(x: float) -> int:
    return round(float(x))


def _record(check: PresetCheck) -> tuple[int, ...]:
    p, t = check.preset, check.output_table
    n = check.max_safe_level
    levels = list(p.levels_uA[:n]) + [0] * (MAX_LEVELS - n)
    ms = lambda s: _rint((s or 0.0) * 1e3)
    return (
        p.id, WAVEFORMS.index(p.waveform) + 1, n, p.pulse_width_us, p.interphase_gap_us, p.frequency_Hz,
        _rint(p.session_min * 60e3), ms(p.on_s), ms(p.off_s), ms(p.ramp_s), *levels,
        _rint(t["max_voltage_500ohm_V"] * 1e3), _rint(t["max_voltage_2kohm_V"] * 1e3),
        _rint(t["max_voltage_10kohm_V"] * 1e3), _rint(t["max_current_500ohm_mA"] * 1e3),
        _rint(t["max_current_2kohm_mA"] * 1e3), _rint(t["max_current_10kohm_mA"] * 1e3),
        _rint(t["net_charge_per_pulse_uC"] * 1e3), _rint(t["max_phase_charge_500ohm_uC"] * 1e3),
        _rint(t["max_rms_current_density_mA_per_cm2"] * 1e3), _rint(t["max_average_current_mA"] * 1e3),
        _rint(t["max_average_power_density_W_per_cm2"] * 1e6),
    )  # fmt: skip


def _records(report: ValidationReport) -> list[dict[str, Any]]:
    out = []
    for check in report.presets:
        values = _record(check)
        row: dict[str, Any] = {}
        i = 0
        for name, _, k in FIELDS:
            row[name] = list(values[i : i + k]) if k > 1 else values[i]
            i += k
        row["levels_uA"] = row["levels_uA"][: check.max_safe_level]
        out.append(row)
    return out


def _binary(report: ValidationReport) -> bytes:
    body = _HEADER.pack(MAGIC, SCHEMA_VERSION, 0, FIELD_HASH, len(report.presets))
    body += b"".join(_RECORD.pack(*_record(c)) for c in report.presets)
    return body + struct.pack("<I", zlib.crc32(body))


def _c_comment(text: str) -> str:
    """``text`` safe inside a C comment: ASCII letters, digits and `` -_.,()``; anything else ``_``."""
    return "".join(ch if (ch.isascii() and ch.isalnum()) or ch in " -_.,()" else "_" for ch in text)


def _header(report: ValidationReport, records: list[dict[str, Any]]) -> str:
    pf = report.presets_file
    lines = [
        f"/* ems_presets.h: generated by emsim {__version__} from inputs sha256 {pf.digest_sha256}.",
        (f" * Device {_c_comment(pf.device.name)}; safe levels only (validation over {len(report.anatomy)} anatomy "
        f"cases, safety factor {pf.validation.safety_factor:g})."),
        " * Do not edit: re-export with `emsim export`. Units: uA, us, Hz, ms, mV, nC, uA/cm^2, uW/cm^2. */",
        "#ifndef EMS_PRESETS_H", "#define EMS_PRESETS_H", "", "#include <stdint.h>", "",
        f"#define EMS_PRESETS_COUNT {len(records)}u", f"#define EMS_PRESETS_MAX_LEVELS {MAX_LEVELS}u",
        f"#define EMS_PRESETS_SCHEMA_VERSION {SCHEMA_VERSION}u", f"#define EMS_PRESETS_FIELD_HASH 0x{FIELD_HASH:08X}u",
        "", "typedef struct ems_preset {",
    ]  # fmt: skip
    for name, code, k in FIELDS:
        lines.append(f"    {_C_TYPES[code]} {name}{f'[{k}]' if k > 1 else ''};")
    lines += ["} ems_preset_t;", "", "static const ems_preset_t EMS_PRESETS[EMS_PRESETS_COUNT] = {"]
    for check, row in zip(report.presets, records, strict=True):
        parts = []
        for name, _, k in FIELDS:
            v = row[name]
            if k > 1:
                v = list(v) + [0] * (k - len(v))
                parts.append(f".{name} = {{" + ", ".join(f"{x}u" for x in v) + "}")
            else:
                parts.append(f".{name} = {v}{'' if name.startswith('net_') else 'u'}")
        lines.append(f"    /* preset {check.preset.id}: {_c_comment(check.preset.name)} */")
        lines.append("    {" + ", ".join(parts) + "},")
    lines += ["};", "", "#endif /* EMS_PRESETS_H */", ""]
    return "\n".join(lines)


def _manifest(report: ValidationReport, records: list[dict[str, Any]]) -> str:
    pf = report.presets_file
    dropped = {}
    for check in report.presets:
        dropped[str(check.preset.id)] = [
            {"level": lv.level, "current_uA": lv.current_uA, "binding_rule": lv.binding_rule,
             "headroom": number(lv.headroom, HEADROOM_DIGITS), "worst_anatomy": lv.worst_anatomy}
            for lv in check.levels[check.max_safe_level:]
        ]  # fmt: skip
    body = {
        "schema_version": SCHEMA_VERSION,
        "field_list": FIELD_LIST,
        "field_hash_crc32": f"0x{FIELD_HASH:08X}",
        "provenance": {
            "emsim_version": __version__,
            "inputs_digest_sha256": pf.digest_sha256,
            "device": pf.device.name,
            "electrode_head": Path(pf.device.electrode_head).name,
            "compliance_voltage_V": number(pf.device.compliance_voltage_V),
            "sites": list(pf.device.sites),
            "anatomy_cases": report.anatomy,
            "safety_factor": number(pf.validation.safety_factor),
            "rules": report.rules_table(),
        },
        "presets": [{"name": c.preset.name, **r, "output_table_510k": c.output_table}
                    for c, r in zip(report.presets, records, strict=True)],
        "dropped_levels": dropped,
    }
    return json.dumps(body, indent=2, sort_keys=True, allow_nan=False) + "\n"


@dataclass(frozen=True)
class ExportFiles:
    """The three files' contents, and the levels dropped per preset id."""

    header: str
    binary: bytes
    manifest: str
    dropped: dict[int, list[int]]


def export_files(report: ValidationReport) -> ExportFiles:
    """The export's contents from a validation (nothing written).

    Raises:
        ExportRefused: a preset breaks a level-independent rule or has no safe level.
    """
    problems = []
    for c in report.presets:
        if c.level_independent_failures:
            problems.append(f"preset {c.preset.id} ({c.preset.name}): breaks "
                            f"{', '.join(c.level_independent_failures)} at every level")  # fmt: skip
        elif c.max_safe_level == 0:
            lv = c.levels[0]
            problems.append(f"preset {c.preset.id} ({c.preset.name}): no safe level (level 1, {lv.current_uA} uA, "
                            f"fails {lv.binding_rule}, headroom {lv.headroom:.3g} of its current, on {lv.worst_anatomy})")  # fmt: skip
    if problems:
        raise ExportRefused("export refused, nothing written: " + "; ".join(problems))
    records = _records(report)
    dropped = {c.preset.id: list(c.preset.levels_uA[c.max_safe_level:]) for c in report.presets}
    return ExportFiles(_header(report, records), _binary(report), _manifest(report, records), dropped)


def write_export(files: ExportFiles, into: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write the driver package into the folder ``into`` as one unit (old or new, never a mix).

    The bytes are made first (nothing is written if that fails), then the three files go into a
    new folder beside ``into`` that replaces it in one atomic switch; temporaries of killed
    exports are removed. ``into`` may be missing or empty; an earlier package (emsim's marker)
    is replaced only with ``overwrite``; a folder emsim did not write is never replaced.

    Returns:
        The three files (their final paths).
    """
    into = Path(into)
    contents = {"ems_presets.h": files.header.encode("ascii"), "ems_presets.bin": files.binary,
                "ems_presets.json": files.manifest.encode("utf-8")}  # fmt: skip
    with staged_folder(into, kind="driver", overwrite=overwrite, field="--into") as tmp:
        for name, data in contents.items():
            write_bytes(tmp / name, data)
    return [into / name for name in contents]
