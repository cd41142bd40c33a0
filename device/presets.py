"""Presets files: the table of stimulation presets a device's firmware is built from.

A presets file (TOML) names the device, the electrode head the presets apply to (a case file, or
a built-in case), the output stage's compliance voltage, optionally the facial sites the head is
used on, and one ``[[preset]]`` table per preset::

    [device]
    name = "facial-ems-1"
    electrode_head = "cheek-two-pads"     # a case file (relative to this file) or a built-in case
    compliance_voltage_V = 60
    sites = ["cheek", "jaw"]              # optional
    [validation]                          # optional
    safety_factor = 1.5                   # figures x this must stay within each limit
    spread = "corners"                    # or "nominal"
    contact_factors = [0.5, 2.0]          # contact resistance spread (x nominal)
    [limits]                              # optional overrides of the rules' limits (see rules.py)
    net_dc_uA = 1.0
    [[preset]]
    id = 1
    name = "lift"
    waveform = "biphasic_symmetric"
    pulse_width_us = 200
    interphase_gap_us = 50
    frequency_Hz = 50
    levels_uA = [2000, 4000, 6000]
    session_min = 10
    burst = { on_s = 5.0, off_s = 5.0, ramp_s = 1.0 }   # optional on/off cycle with ramps

Every consistency check runs here, before any physics (:func:`parse_presets`): integer units
(the firmware stores integers), levels strictly increasing and inside a plausible range (a
``levels_uA`` table holding mA values is caught), unique ids, waveform parameters that fit in one
period (the waveform model's own checks). Errors are :class:`~emsim.errors.InputError` naming the
field as the file has it (``preset[1].levels_uA``).
"""

from __future__ import annotations

import hashlib
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import CaseFileError, InputError
from ..models.sites import sites as library
from ..models.waveforms import Waveform
from .rules import LIMIT_KEYS

__all__ = [
    "MAX_LEVELS",
    "MAX_PRESETS",
    "WAVEFORMS",
    "Device",
    "LEVEL_RANGE_uA",
    "Preset",
    "PresetsFile",
    "Validation",
    "parse_presets",
    "read_presets",
]

#: Waveform shapes a preset may use (the firmware's waveform codes follow this order, from 1).
WAVEFORMS = ("biphasic_symmetric", "biphasic_asymmetric", "monophasic")
#: Most levels per preset (the binary table's fixed record size).
MAX_LEVELS = 16
#: Most presets per file (the C driver's static table).
MAX_PRESETS = 32
#: Allowed level currents [uA]. The floor catches a table written in mA (``[2, 4, 6]``): no
#: muscle stimulator level is below 10 uA (market microcurrent starts at 50 uA, shared/PHYSICS.md);
#: the ceiling is the largest r.m.s. output IEC 60601-2-10 allows at any frequency (100 mA), so a
#: table written in nA, or x1000 by mistake, is caught too.
LEVEL_RANGE_uA = (10, 100_000)
_PW_RANGE_us = (1, 10_000)
_FREQ_RANGE_Hz = (1, 10_000)
_SESSION_RANGE_min = (0.0, 120.0)
_COMPLIANCE_RANGE_V = (1.0, 1000.0)

_DEVICE_KEYS = ("name", "electrode_head", "compliance_voltage_V", "sites")
_VALIDATION_KEYS = ("safety_factor", "spread", "contact_factors")
_PRESET_KEYS = (
    "id", "name", "waveform", "pulse_width_us", "interphase_gap_us", "asymmetry_ratio", "frequency_Hz",
    "levels_uA", "session_min", "burst",
)  # fmt: skip
_BURST_KEYS = ("on_s", "off_s", "ramp_s")
_TOP_KEYS = ("device", "validation", "limits", "preset")


@dataclass(frozen=True, slots=True)
class Device:
    """The device the presets are for.

    Attributes:
        name: device name.
        electrode_head: case file path (resolved) or built-in case name.
        compliance_voltage_V: largest voltage the output stage can drive [V].
        sites: facial sites the head is used on (empty: the head case's own tissue stack).
    """

    name: str
    electrode_head: str
    compliance_voltage_V: float
    sites: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Validation:
    """How the presets are validated over the people who will use the device.

    Attributes:
        safety_factor: every figure times this must stay within its limit (>= 1).
        spread: ``"corners"`` (nominal + each site's layers all at min / all at max x the contact
            factors) or ``"nominal"`` (the nominal anatomy only).
        contact_factors: factors on the skin contact's specific resistance for the corners.
    """

    safety_factor: float = 1.5
    spread: str = "corners"
    contact_factors: tuple[float, ...] = (0.5, 2.0)


@dataclass(frozen=True, slots=True)
class Preset:
    """One stimulation preset, in the firmware's integer units.

    Attributes:
        id: preset id (1..65535, unique).
        name: display name.
        waveform: one of :data:`WAVEFORMS`.
        pulse_width_us: width of the (first) phase [us].
        interphase_gap_us: gap between the phases of a biphasic pulse [us].
        asymmetry_ratio: biphasic_asymmetric only: second phase 1/r the amplitude, r times as long.
        frequency_Hz: pulse frequency [Hz].
        levels_uA: peak current of each level [uA], strictly increasing.
        session_min: session length [min].
        on_s, off_s, ramp_s: the on/off cycle with linear ramps [s] (None: continuous).
    """

    id: int
    name: str
    waveform: str
    pulse_width_us: int
    interphase_gap_us: int
    frequency_Hz: int
    levels_uA: tuple[int, ...]
    session_min: float
    asymmetry_ratio: float = 1.0
    on_s: float | None = None
    off_s: float | None = None
    ramp_s: float | None = None

    def waveform_table(self) -> dict[str, Any]:
        """The case file's ``[waveform]`` table of this preset."""
        t: dict[str, Any] = {"shape": self.waveform, "pulse_width_us": self.pulse_width_us,
                             "frequency_Hz": self.frequency_Hz}  # fmt: skip
        if self.waveform in ("biphasic_symmetric", "biphasic_asymmetric"):
            t["interphase_gap_us"] = self.interphase_gap_us
        if self.waveform == "biphasic_asymmetric":
            t["asymmetry_ratio"] = self.asymmetry_ratio
        if self.on_s is not None:
            t |= {"on_s": self.on_s, "off_s": self.off_s, "ramp_up_s": self.ramp_s, "ramp_down_s": self.ramp_s}
        return t

    def waveform_model(self) -> Waveform:
        """The preset's waveform (SI)."""
        return Waveform.from_case(self.waveform_table())

    @property
    def levels_A(self) -> tuple[float, ...]:
        """Level currents [A]."""
        return tuple(v * 1e-6 for v in self.levels_uA)


@dataclass(frozen=True, slots=True)
class PresetsFile:
    """A checked presets file.

    Attributes:
        device: the device.
        validation: the anatomy spread and safety factor.
        limits: limit overrides by rule limit key (see :mod:`emsim.device.rules`).
        presets: the presets, in file order.
        digest_sha256: SHA-256 of the file's text and of the electrode head's case text.
        path: where it was read from (None for text).
    """

    device: Device
    validation: Validation
    limits: Mapping[str, float]
    presets: tuple[Preset, ...]
    digest_sha256: str = ""
    path: Path | None = field(default=None, compare=False)


def _integer(where: str, value: Any, lo: int, hi: int, unit: str) -> int:
    ok = isinstance(value, int) and not isinstance(value, bool)
    if isinstance(value, float) and math.isfinite(value) and value == int(value):
        ok, value = True, int(value)
    if not ok or not (lo <= value <= hi):
        raise InputError(where, value, f"a whole number of {unit} in {lo}..{hi}")
    return int(value)


def _real(where: str, value: Any, lo: float, hi: float, *, lo_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value > hi or value < lo or (lo_open and value == lo):
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise InputError(where, value, f"a number {bound} and <= {hi}")
    return float(value)


def _keys(table: Any, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
    if not isinstance(table, Mapping):
        raise InputError(where, table, "must be a table")
    for key in table:
        if key not in allowed:
            raise InputError(f"{where}.{key}" if where else key, table[key], f"unknown key; allowed: {', '.join(allowed)}")
    return dict(table)


def _levels(where: str, value: Any) -> tuple[int, ...]:
    if not isinstance(value, list) or not (1 <= len(value) <= MAX_LEVELS):
        raise InputError(where, value, f"a list of 1..{MAX_LEVELS} currents in uA")
    lo, hi = LEVEL_RANGE_uA
    for i, v in enumerate(value):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and 0 < v < lo:
            raise InputError(f"{where}[{i}]", v, f"below {lo} uA: levels are in uA (is this table in mA?)")
        _integer(f"{where}[{i}]", v, lo, hi, "uA")
    levels = tuple(int(v) for v in value)
    for i in range(1, len(levels)):
        if levels[i] <= levels[i - 1]:
            raise InputError(where, list(value), f"strictly increasing (level {i + 1} = {levels[i]} uA "
                                                 f"is not above level {i} = {levels[i - 1]} uA)")  # fmt: skip
    return levels


def _preset(i: int, row: Any) -> Preset:
    where = f"preset[{i}]"
    row = _keys(row, _PRESET_KEYS, where)
    for key in ("id", "name", "waveform", "pulse_width_us", "frequency_Hz", "levels_uA", "session_min"):
        if key not in row:
            raise InputError(f"{where}.{key}", None, "required")
    name = row["name"]
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"{where}.name", name, "a non-empty string")
    shape = row["waveform"]
    if shape not in WAVEFORMS:
        raise InputError(f"{where}.waveform", shape, f"one of {', '.join(WAVEFORMS)}")
    biphasic = shape.startswith("biphasic")
    if not biphasic and "interphase_gap_us" in row:
        raise InputError(f"{where}.interphase_gap_us", row["interphase_gap_us"], "only for a biphasic waveform")
    if shape != "biphasic_asymmetric" and "asymmetry_ratio" in row:
        raise InputError(f"{where}.asymmetry_ratio", row["asymmetry_ratio"], "only for biphasic_asymmetric")
    burst = row.get("burst")
    on = off = ramp = None
    if burst is not None:
        b = _keys(burst, _BURST_KEYS, f"{where}.burst")
        for key in ("on_s", "off_s"):
            if key not in b:
                raise InputError(f"{where}.burst.{key}", None, "required")
        on = _real(f"{where}.burst.on_s", b["on_s"], 0.0, 3600.0, lo_open=True)
        off = _real(f"{where}.burst.off_s", b["off_s"], 0.0, 3600.0)
        ramp = _real(f"{where}.burst.ramp_s", b.get("ramp_s", 0.0), 0.0, on / 2)
    preset = Preset(
        id=_integer(f"{where}.id", row["id"], 1, 65535, "(id)"),
        name=name,
        waveform=shape,
        pulse_width_us=_integer(f"{where}.pulse_width_us", row["pulse_width_us"], *_PW_RANGE_us, "us"),
        interphase_gap_us=_integer(f"{where}.interphase_gap_us", row.get("interphase_gap_us", 0), 0, 100_000, "us"),
        frequency_Hz=_integer(f"{where}.frequency_Hz", row["frequency_Hz"], *_FREQ_RANGE_Hz, "Hz"),
        levels_uA=_levels(f"{where}.levels_uA", row["levels_uA"]),
        session_min=_real(f"{where}.session_min", row["session_min"], *_SESSION_RANGE_min, lo_open=True),
        asymmetry_ratio=_real(f"{where}.asymmetry_ratio", row.get("asymmetry_ratio", 1.0), 1.0, 20.0),
        on_s=on, off_s=off, ramp_s=ramp,
    )  # fmt: skip
    try:  # the waveform model's own checks: phases fit in one period, ramps fit in the on time
        preset.waveform_model()
    except InputError as err:
        key = err.field.removeprefix("waveform.")
        key = {"ramp_up_s": "burst.ramp_s", "ramp_down_s": "burst.ramp_s", "on_s": "burst.on_s",
               "off_s": "burst.off_s", "shape": "waveform"}.get(key, key)  # fmt: skip
        raise InputError(f"{where}.{key}", err.value, err.allowed) from None
    return preset


def parse_presets(raw: Mapping[str, Any], *, base: Path | None = None, head_text: str = "", text: str = "") -> PresetsFile:
    """Check a presets table (as read from TOML) and build the :class:`PresetsFile`.

    Args:
        raw: the parsed TOML.
        base: folder against which a relative ``electrode_head`` path resolves.
        head_text: the head case's text (part of the digest).
        text: the presets file's own text (part of the digest).

    Raises:
        InputError: the first inconsistent field, named as in the file.
    """
    raw = _keys(raw, _TOP_KEYS, "")
    if "device" not in raw:
        raise InputError("device", None, "a [device] table is required")
    d = _keys(raw["device"], _DEVICE_KEYS, "device")
    for key in ("name", "electrode_head", "compliance_voltage_V"):
        if key not in d:
            raise InputError(f"device.{key}", None, "required")
    for key in ("name", "electrode_head"):
        if not isinstance(d[key], str) or not d[key].strip():
            raise InputError(f"device.{key}", d[key], "a non-empty string")
    sites = d.get("sites", [])
    if not isinstance(sites, list) or not all(isinstance(s, str) for s in sites) or len(set(sites)) != len(sites):
        raise InputError("device.sites", sites, "a list of distinct site names (emsim sites)")

    for j, s in enumerate(sites):
        if s not in library():
            raise InputError(f"device.sites[{j}]", s, f"one of {', '.join(library())}")
    head = d["electrode_head"]
    if head.endswith(".toml") and base is not None and not Path(head).is_absolute():
        head = str((base / head).resolve())
    device = Device(
        name=d["name"], electrode_head=head,
        compliance_voltage_V=_real("device.compliance_voltage_V", d["compliance_voltage_V"], *_COMPLIANCE_RANGE_V),
        sites=tuple(sites),
    )  # fmt: skip
    v = _keys(raw.get("validation", {}), _VALIDATION_KEYS, "validation")
    factors = v.get("contact_factors", [0.5, 2.0])
    if not isinstance(factors, list) or not factors:
        raise InputError("validation.contact_factors", factors, "a non-empty list of factors in 0.05..20")
    validation = Validation(
        safety_factor=_real("validation.safety_factor", v.get("safety_factor", 1.5), 1.0, 10.0),
        spread=v.get("spread", "corners"),
        contact_factors=tuple(_real(f"validation.contact_factors[{j}]", f, 0.05, 20.0) for j, f in enumerate(factors)),
    )  # fmt: skip
    if validation.spread not in ("corners", "nominal"):
        raise InputError("validation.spread", validation.spread, "one of corners, nominal")
    lim = _keys(raw.get("limits", {}), tuple(LIMIT_KEYS), "limits")
    limits = {k: _real(f"limits.{k}", x, 0.0, 1e9, lo_open=True) for k, x in lim.items()}
    rows = raw.get("preset")
    if not isinstance(rows, list) or not rows or len(rows) > MAX_PRESETS:
        raise InputError("preset", rows if rows is None else len(rows), f"1..{MAX_PRESETS} [[preset]] tables")
    presets = tuple(_preset(i, row) for i, row in enumerate(rows))
    seen: dict[int, int] = {}
    for i, p in enumerate(presets):
        if p.id in seen:
            raise InputError(f"preset[{i}].id", p.id, f"unique (preset[{seen[p.id]}] has the same id)")
        seen[p.id] = i
    digest = hashlib.sha256(text.encode() + b"\0" + head_text.encode()).hexdigest()
    return PresetsFile(device, validation, limits, presets, digest)


def head_case_text(head: str) -> tuple[str, Path]:
    """The text and path of an electrode head: a case file, or a built-in case by name.

    Raises:
        InputError: naming ``device.electrode_head`` when neither exists.
    """
    path = Path(head)
    if not path.is_file():
        builtin = Path(str(resources.files("emsim.studies").joinpath(f"cases/{head}.toml")))
        if not builtin.is_file():
            names = sorted(p.stem for p in builtin.parent.glob("*.toml"))
            raise InputError("device.electrode_head", head, f"a case file or a built-in case ({', '.join(names)})")
        path = builtin
    return path.read_text("utf-8"), path


def read_presets(path: str | Path) -> PresetsFile:
    """Read and check a presets file (every consistency check, no physics).

    Raises:
        CaseFileError: the file is missing or not TOML.
        InputError: an inconsistent field.
    """
    path = Path(path)
    try:
        text = path.read_text("utf-8")
        raw = tomllib.loads(text)
    except (OSError, UnicodeDecodeError) as err:
        raise CaseFileError(f"presets file {str(path)!r}: cannot be read ({err})") from None
    except tomllib.TOMLDecodeError as err:
        raise CaseFileError(f"presets file {str(path)!r}: not valid TOML ({err})") from None
    first = parse_presets(raw, base=path.parent, text=text)
    head_text, _ = head_case_text(first.device.electrode_head)
    out = parse_presets(raw, base=path.parent, head_text=head_text, text=text)
    return PresetsFile(out.device, out.validation, out.limits, out.presets, out.digest_sha256, path)
