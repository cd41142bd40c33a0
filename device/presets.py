"""Presets files: the table of stimulation presets a device's firmware is built from.

A presets file (TOML) names the device, the electrode head the presets apply to (a case file, or
a built-in case), the output stage's compliance voltage, optionally the facial sites the head is
used on, and one ``[[preset]]`` table per preset::

    [device]
    name = "facial-ems-1"
    electrode_head = "cheek-two-pads"     # a case file (relative to this file) or a built-in case
    compliance_voltage_V = 60
    sites = ["cheek", "jaw"]              # optional
    rise_time_us = 2.0                    # optional: output rise time of a pulse edge (default 2 us,
                                          # an assumption: see DEFAULT_RISE_TIME_US)
    [validation]                          # optional
    safety_factor = 1.5                   # a level passes when every rule holds at 1.5 x its current
    spread = "corners"                    # the worst corner, searched; or "nominal"
    contact = "hydrogel_under_stimulation"   # contact R, C ranges (models/data/contact.toml), or "head"
    search_mesh = "coarse"                # the search ranks corners on a cheaper mesh, confirms on the head's
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
from ..models.case_file import parse_case, parse_toml, read_text_file
from ..models.dispersion import QUASI_STATIC_MAX_HZ
from ..models.sites import sites as library
from ..models.waveform_checks import TRUNCATION_FACTOR
from ..models.waveforms import Waveform
from .rules import LIMIT_KEYS

__all__ = [
    "DEFAULT_CONTACT",
    "MAX_LEVELS",
    "MAX_PRESETS",
    "WAVEFORMS",
    "Device",
    "FREQUENCY_RANGE_Hz",
    "LEVEL_RANGE_uA",
    "PULSE_WIDTH_RANGE_us",
    "Preset",
    "PresetsFile",
    "Validation",
    "check_head",
    "head_case_text",
    "parse_presets",
    "read_presets",
    "resolve_head",
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
#: Allowed pulse widths [us]. The floor is the band the models hold over: a phase shorter than
#: 500 / 10 MHz = 50 us needs its spectrum beyond emsim.models.dispersion.QUASI_STATIC_MAX_HZ
#: (the waveform's own check refuses it, with that reason). The driver's default device limits
#: (device/driver/ems_table.h, EMS_DEVICE_*) are these ranges.
PULSE_WIDTH_RANGE_us = (math.ceil(TRUNCATION_FACTOR / QUASI_STATIC_MAX_HZ * 1e6), 10_000)
#: Allowed pulse frequencies [Hz].
FREQUENCY_RANGE_Hz = (1, 10_000)
_SESSION_RANGE_min = (0.0, 120.0)
_COMPLIANCE_RANGE_V = (1.0, 1000.0)

_DEVICE_KEYS = ("name", "electrode_head", "compliance_voltage_V", "sites", "rise_time_us")
#: Default output rise time of a pulse edge [us] (``[device] rise_time_us``). ASSUMPTION, no
#: datasheet value verified: a constant-current output stage into a skin load slews in about
#: 1-5 us; 2 us is the fast end, the conservative side for the onset spike at the pad rim.
DEFAULT_RISE_TIME_US = 2.0
#: Default contact range of a validation (``[validation] contact``, a name in
#: ``models/data/contact.toml``): the large-signal range of a pad under stimulation pulses, whose
#: stratum corneum resistance has broken down from its small-signal value.
DEFAULT_CONTACT = "hydrogel_under_stimulation"
_VALIDATION_KEYS = ("safety_factor", "spread", "contact", "search_mesh")
#: The search mesh of ``[validation] search_mesh = "coarse"``: the head's ``[mesh]`` with every
#: target size times ``size_factor`` (1: the pad rims as fine as the head's, where the current
#: density peaks) and one cell across each tissue layer (``cells_across_layer``) instead of issue
#: 9's rule. On the sample's cheek: 65k cells against 201k, 4.5 s a corner against 17 s (one core);
#: the two meshes' rule figures differ by a ratio that varies 0.45 % (the rim's current density) to
#: 3.3 % (the heating) per rule over its corners (docs/performance.md), which the confirmation on
#: the head's mesh allows for (:func:`emsim.device.search.confirm_worst`).
SEARCH_MESH = {"size_factor": 1.0, "cells_across_layer": 1.0}
SEARCH_MESHES = ("coarse", "head")
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
        rise_time_us: output rise time of every pulse edge [us] (default
            :data:`DEFAULT_RISE_TIME_US`, an assumption stated there); every preset's waveform
            carries it.
    """

    name: str
    electrode_head: str
    compliance_voltage_V: float
    sites: tuple[str, ...] = ()
    rise_time_us: float = DEFAULT_RISE_TIME_US


@dataclass(frozen=True, slots=True)
class Validation:
    """How the presets are validated over the people who will use the device.

    Attributes:
        safety_factor: a level passes when every rule holds at this times its current (>= 1).
        spread: ``"corners"`` (the worst corner of each site's spread, searched per rule: every
            layer thickness and the contact R and C at their range ends, :mod:`emsim.device.search`)
            or ``"nominal"`` (the nominal anatomy only).
        contact: the contact range of the corners (a name in ``models/data/contact.toml``; by
            default :data:`DEFAULT_CONTACT`, the large-signal range under stimulation pulses), or
            ``"head"`` (the head's own contact, not varied).
        search_mesh: where the worst-case search ranks the corners when it screens (more than
            16 corners): ``"coarse"`` (default) on :data:`SEARCH_MESH`, the head's mesh made
            cheaper, then the corners that could be the worst are solved again on the head's own
            mesh and only those give the verdict (:func:`emsim.device.search.confirm_worst`); or
            ``"head"``: every corner on the head's mesh.
    """

    safety_factor: float = 1.5
    spread: str = "corners"
    contact: str = DEFAULT_CONTACT
    search_mesh: str = "coarse"


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
        rise_time_us: the device's output rise time [us] (``[device] rise_time_us``; 0: ideal steps).
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
    rise_time_us: float = 0.0

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
        if self.rise_time_us:
            t["rise_time_us"] = self.rise_time_us
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


def _integer(where: str, value: object, lo: int, hi: int, unit: str) -> int:
    # The range is checked before a whole float becomes an int, so that 1e308 is echoed as
    # 1e+308 and not as its 309 integer digits.
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not isinstance(value, (int, float)) or not ok or not (lo <= value <= hi) or value != int(value):
        raise InputError(where, value, f"a whole number of {unit} in {lo}..{hi}")
    return int(value)


def _real(where: str, value: object, lo: float, hi: float, *, lo_open: bool = False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not isinstance(value, (int, float)) or not ok or value > hi or value < lo or (lo_open and value == lo):
        bound = f"> {lo}" if lo_open else f">= {lo}"
        raise InputError(where, value, f"a number {bound} and <= {hi}")
    return float(value)


def _keys(table: object, allowed: tuple[str, ...], where: str) -> dict[str, Any]:
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


def _preset(i: int, row: Any, rise_time_us: float = 0.0) -> Preset:
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
        # below the floor: the waveform's band check below refuses it and says why
        pulse_width_us=_integer(f"{where}.pulse_width_us", row["pulse_width_us"], 1, PULSE_WIDTH_RANGE_us[1], "us"),
        interphase_gap_us=_integer(f"{where}.interphase_gap_us", row.get("interphase_gap_us", 0), 0, 100_000, "us"),
        frequency_Hz=_integer(f"{where}.frequency_Hz", row["frequency_Hz"], *FREQUENCY_RANGE_Hz, "Hz"),
        levels_uA=_levels(f"{where}.levels_uA", row["levels_uA"]),
        session_min=_real(f"{where}.session_min", row["session_min"], *_SESSION_RANGE_min, lo_open=True),
        asymmetry_ratio=_real(f"{where}.asymmetry_ratio", row.get("asymmetry_ratio", 1.0), 1.0, 20.0),
        on_s=on, off_s=off, ramp_s=ramp, rise_time_us=rise_time_us,
    )  # fmt: skip
    try:  # the waveform model's own checks: phases fit in one period, ramps fit in the on time
        preset.waveform_model()
    except InputError as err:
        key = err.field.removeprefix("waveform.")
        key = {"ramp_up_s": "burst.ramp_s", "ramp_down_s": "burst.ramp_s", "on_s": "burst.on_s",
               "off_s": "burst.off_s", "shape": "waveform", "rise_time_us": "(device.rise_time_us)"}.get(key, key)  # fmt: skip
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
    head = resolve_head(d["electrode_head"], base)
    device = Device(
        name=d["name"], electrode_head=head,
        compliance_voltage_V=_real("device.compliance_voltage_V", d["compliance_voltage_V"], *_COMPLIANCE_RANGE_V),
        sites=tuple(sites),
        rise_time_us=_real("device.rise_time_us", d.get("rise_time_us", DEFAULT_RISE_TIME_US), 0.0, 100.0),
    )  # fmt: skip
    v = _keys(raw.get("validation", {}), _VALIDATION_KEYS, "validation")
    contact = v.get("contact", DEFAULT_CONTACT)
    if contact != "head":
        from .anatomy import contact_range  # local: device.anatomy imports this module (the cycle)

        contact_range(contact)  # an unknown name is an InputError naming validation.contact
    validation = Validation(
        safety_factor=_real("validation.safety_factor", v.get("safety_factor", 1.5), 1.0, 10.0),
        spread=v.get("spread", "corners"),
        contact=contact,
        search_mesh=v.get("search_mesh", "coarse"),
    )  # fmt: skip
    if validation.spread not in ("corners", "nominal"):
        raise InputError("validation.spread", validation.spread, "one of corners, nominal")
    if validation.search_mesh not in SEARCH_MESHES:
        raise InputError("validation.search_mesh", validation.search_mesh, f"one of {', '.join(SEARCH_MESHES)}")
    lim = _keys(raw.get("limits", {}), tuple(LIMIT_KEYS), "limits")
    limits = {k: _real(f"limits.{k}", x, 0.0, 1e9, lo_open=True) for k, x in lim.items()}
    rows = raw.get("preset")
    if not isinstance(rows, list) or not rows or len(rows) > MAX_PRESETS:
        shown = f"{len(rows)} tables" if isinstance(rows, list) and rows else rows  # the count, not 33 tables in full
        raise InputError("preset", shown, f"1..{MAX_PRESETS} [[preset]] tables")
    presets = tuple(_preset(i, row, device.rise_time_us) for i, row in enumerate(rows))
    seen: dict[int, int] = {}
    for i, p in enumerate(presets):
        if p.id in seen:
            raise InputError(f"preset[{i}].id", p.id, f"unique (preset[{seen[p.id]}] has the same id)")
        seen[p.id] = i
    digest = hashlib.sha256(text.encode() + b"\0" + head_text.encode()).hexdigest()
    return PresetsFile(device, validation, limits, presets, digest)


def _is_path(head: str) -> bool:
    """A head that names a file (a folder part, a ``.toml`` suffix, ``~``) rather than a built-in."""
    return head.endswith(".toml") or "/" in head or "\\" in head or head.startswith(("~", "."))


def _builtin_cases() -> Path:
    return Path(str(resources.files("emsim.studies").joinpath("cases")))


def resolve_head(head: str, base: Path | None) -> str:
    """An ``electrode_head`` as given: a path (relative to the presets file) or a built-in name.

    A path may leave out ``.toml`` (``../samples/cheek-head``) when the file has it. Built-in
    names are plain names (``cheek-two-pads``); anything with a folder part is a path.
    """
    if not _is_path(head):
        return head
    path = Path(head).expanduser()
    if not path.is_absolute() and base is not None:
        path = base / path
    if not path.exists() and path.suffix != ".toml" and path.with_name(path.name + ".toml").exists():
        path = path.with_name(path.name + ".toml")
    return str(path.resolve())


def head_case_text(head: str) -> tuple[str, Path]:
    """The text and path of an electrode head: a case file, or a built-in case by name.

    Raises:
        InputError: naming ``device.electrode_head`` when neither exists, or when the file
            is not a UTF-8 case file of bounded size.
    """
    if _is_path(head):
        path = Path(head)
        if not path.exists():
            raise InputError("device.electrode_head", head, "a case file (relative to the presets file): no such file")
    else:
        path = _builtin_cases() / f"{head}.toml"
        if not path.is_file():
            names = sorted(p.stem for p in _builtin_cases().glob("*.toml"))
            raise InputError("device.electrode_head", head, f"a case file (a path, e.g. heads/cheek.toml) or a "
                                                            f"built-in case: one of {', '.join(names)}")  # fmt: skip
    try:
        return read_text_file(path, "electrode head"), path
    except CaseFileError as err:
        raise InputError("device.electrode_head", head, getattr(err, "reason", str(err))) from None


def check_head(pf: PresetsFile) -> None:
    """Check the electrode head as a case before any physics: it must be a case file.

    The head is checked as the validation will solve it: the first anatomy case with the first
    preset's waveform at its top level (a head may leave its layers to the presets' sites).

    Raises:
        InputError: naming ``device.electrode_head`` when the head is a presets file (or any
            other TOML that is not a case), or when its case is invalid (the case's own error
            follows).
    """
    # device.anatomy imports this module (Preset, Device): imported here to avoid the cycle.
    from .anatomy import head_case_table, nominal_case

    head = pf.device.electrode_head
    text, path = head_case_text(head)
    try:
        table = parse_toml(text, path)
    except CaseFileError as err:
        raise InputError("device.electrode_head", head, str(err)) from None
    if "device" in table or "preset" in table:
        raise InputError("device.electrode_head", head, "is a presets file, not a case file: the head must be a "
                                                        "case file (patch, layers, electrodes, channel)")  # fmt: skip
    if "sweep" in table:
        raise InputError("device.electrode_head", head, "is a study file, not a case file")
    first = pf.presets[0]
    try:
        parse_case(head_case_table(table, nominal_case(pf.device, pf.validation, pf.device.sites[0] if pf.device.sites else None),
                                        first, max(first.levels_A)),
                   base_dir=path.parent)  # fmt: skip
    except InputError as err:
        raise InputError("device.electrode_head", head, f"not a valid case: {err}") from None


def read_presets(path: str | Path) -> PresetsFile:
    """Read and check a presets file (every consistency check, no physics).

    Raises:
        CaseFileError: the file is missing or not TOML.
        InputError: an inconsistent field.
    """
    path = Path(path)
    text = read_text_file(path, "presets file")
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CaseFileError(f"presets file {str(path)!r}: not valid TOML ({err})") from None
    if "sweep" in raw or ("device" not in raw and any(k in raw for k in ("patch", "layer", "electrode", "channel"))):
        kind = "a study file" if "sweep" in raw else "a case file"
        raise CaseFileError(f"presets file {str(path)!r}: is {kind}, not a presets file ([device] and [[preset]] tables)")
    first = parse_presets(raw, base=path.parent, text=text)
    check_head(first)  # a presets file or a broken case as the head: now, before any solve
    head_text, _ = head_case_text(first.device.electrode_head)
    out = parse_presets(raw, base=path.parent, head_text=head_text, text=text)
    return PresetsFile(out.device, out.validation, out.limits, out.presets, out.digest_sha256, path)
