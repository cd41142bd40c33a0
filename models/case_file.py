"""Reading a case file: TOML keys and units mapped onto the :mod:`emsim.models.case` dataclasses.

The parser only maps: it checks the shape of the tables (unknown keys, missing tables, types it
cannot convert), converts the file's units (mm, mA, ohm cm^2, uF/cm^2) to SI through the
dataclasses' own field specifications, and names errors as the file has them (``layer[2]``,
``channel``); ranges and the consistency of the whole case are checked by the dataclasses.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tomllib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ..errors import CaseFileError, InputError
from .anisotropy import muscle
from .case import (
    MESH_METHODS,
    PATCH_SHAPES,
    QUALITIES,
    SOLVER_METHODS,
    TIMINGS,
    ActivationSettings,
    Case,
    Layer,
    MeshSettings,
    Patch,
    Probe,
    SolverSettings,
    ThermalSettings,
)
from .electrodes import (
    DEFAULT_CONTACT_CAPACITANCE_F_PER_M2,
    GROUND,
    Channel,
    Contact,
    Electrode,
    GelPad,
)
from .exclusion import ExclusionZone
from .quantity import numbers_from_table, renamed
from .shapes import shape_from_table
from .sites import site_layer_rows
from .tissues import Tissue, library, tissue_from_table
from .waveforms import Waveform

__all__ = [
    "MAX_INPUT_FILE_BYTES", "load_case", "parse_case", "parse_case_text", "parse_toml", "read_case_table",
    "read_case_text", "read_text_file",
]  # fmt: skip

#: Largest case, study or presets file read [bytes] (the largest real one is a few kB).
MAX_INPUT_FILE_BYTES = 16 * 1024**2

_TOP_KEYS = (
    "name", "description", "patch", "layer", "electrode", "channel", "material", "mesh",
    "solver", "thermal", "waveform", "probe", "activation", "site", "exclusion",
)  # fmt: skip
_LABEL = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_ELECTRODE_KEYS = (
    "name", "shape", "diameter_mm", "width_mm", "length_mm", "corner_radius_mm", "center_mm",
    "outer_diameter_mm", "inner_diameter_mm", "vertices_mm", "gel", "contact", "pattern",
)  # fmt: skip
#: Largest number of electrodes one ``pattern`` may expand to.
MAX_PATTERN_ELECTRODES = 64


def _expand_patterns(rows: list[Any]) -> list[Any]:
    """``[[electrode]]`` tables with a ``pattern`` expanded into one table per array element.

    ``pattern = { columns = C, rows = R, pitch_mm = [px, py] }`` places C x R copies centred on
    ``center_mm``, spaced px along x and py along y, named NAME1 .. NAME(C*R) row by row
    (y ascending, then x ascending).
    """
    out = []
    for i, row in enumerate(rows):
        if not isinstance(row, dict) or "pattern" not in row:
            out.append(row)
            continue
        where = f"electrode[{row.get('name', i)}].pattern"
        p = row["pattern"]
        if not isinstance(p, dict):
            raise InputError(where, p, "a table { columns = C, rows = R, pitch_mm = [px, py] }")
        _check_keys(p, ("columns", "rows", "pitch_mm"), where)
        counts = []
        for key in ("columns", "rows"):
            v = p.get(key, 1)
            if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_PATTERN_ELECTRODES:
                raise InputError(f"{where}.{key}", v, f"an integer in [1, {MAX_PATTERN_ELECTRODES}]")
            counts.append(v)
        cols, nrows = counts
        if cols * nrows > MAX_PATTERN_ELECTRODES:
            raise InputError(where, cols * nrows, f"at most {MAX_PATTERN_ELECTRODES} electrodes")
        pitch = _points(p.get("pitch_mm"), 2, f"{where}.pitch_mm", "a list of two numbers [px_mm, py_mm]")
        center = _points(row.get("center_mm"), 2, f"electrode[{row.get('name', i)}].center_mm", "a list of two numbers [x_mm, y_mm]")
        name = _string(row, "name", f"electrode[{i}]")
        k = 0
        for r in range(nrows):
            for c in range(cols):
                k += 1
                x = center[0] + (c - 0.5 * (cols - 1)) * pitch[0]
                y = center[1] + (r - 0.5 * (nrows - 1)) * pitch[1]
                item = {key: v for key, v in row.items() if key != "pattern"}
                out.append(item | {"name": f"{name}{k}", "center_mm": [round(x * 1e3, 9), round(y * 1e3, 9)]})
    return out


def _check_keys(table: Mapping[str, Any], allowed: tuple[str, ...], where: str) -> None:
    for key, value in table.items():
        if key not in allowed:
            name = f"{where}.{key}" if where else key
            raise InputError(name, value, f"unknown key; allowed: {', '.join(allowed)}")


def _table(parent: Mapping[str, Any], key: str, where: str, *, required: bool) -> dict[str, Any]:
    value = parent.get(key)
    if value is None:
        if required:
            raise InputError(where, None, "missing; this table is required")
        return {}
    if not isinstance(value, dict):
        raise InputError(where, value, "must be a table")
    return value


def _rows(raw: Mapping[str, Any], key: str, allowed: str, *, required: bool = True) -> list[dict[str, Any]]:
    rows = raw.get(key)
    if rows is None and not required:
        return []
    if not isinstance(rows, list) or (required and not rows) or not all(isinstance(r, dict) for r in rows):
        raise InputError(key, rows, allowed)
    return rows


def _string(table: Mapping[str, Any], key: str, where: str, *, default: str | None = None) -> str:
    name = f"{where}.{key}" if where else key
    if key not in table:
        if default is None:
            raise InputError(name, None, "missing; a string is required")
        return default
    value = table[key]
    if not isinstance(value, str) or not value.strip():
        raise InputError(name, value, "must be a non-empty string")
    return value


def _required(table: Mapping[str, Any], keys: tuple[str, ...], where: str) -> None:
    for key in keys:
        if key not in table:
            raise InputError(f"{where}.{key}", None, "missing; a number is required")


def _points(value: object, n: int, name: str, what: str) -> tuple[float, ...]:
    ok = isinstance(value, list) and len(value) == n and all(
        isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in value
    )
    if not isinstance(value, list) or not ok:
        raise InputError(name, value, what)
    return tuple(float(c) * 1e-3 for c in value)


def _point_2d(value: object, name: str, what: str) -> tuple[float, float]:
    """An [x_mm, y_mm] list as (x, y) [m] (:func:`_points`)."""
    x, y = _points(value, 2, name, what)
    return x, y


def _point_3d(value: object, name: str, what: str) -> tuple[float, float, float]:
    """An [x_mm, y_mm, z_mm] list as (x, y, z) [m] (:func:`_points`)."""
    x, y, z = _points(value, 3, name, what)
    return x, y, z


@contextmanager
def _named(where: str) -> Iterator[None]:
    """Prefix the field of an unprefixed error (raised by a nested dataclass) with ``where``."""
    try:
        yield
    except InputError as err:
        if err.field.startswith(("layer", "electrode", "channel", "probe", "material", "patch")):
            raise
        raise InputError(f"{where}.{err.field}", err.value, err.allowed) from None


# ----------------------------------------------------------------------------- the parts


def _materials(raw: Mapping[str, Any]) -> dict[str, Tissue]:
    materials = dict(library())
    for name, table in _table(raw, "material", "material", required=False).items():
        materials[name] = tissue_from_table(name, table)
    return materials


def _material(materials: Mapping[str, Tissue], name: object, where: str) -> Tissue:
    if not isinstance(name, str) or name not in materials:
        raise InputError(where, name, f"a library material or a [material.NAME]: {', '.join(sorted(materials))}")
    return materials[name]


def _layers(raw: Mapping[str, Any], materials: Mapping[str, Tissue]) -> tuple[Layer, ...]:
    rows = _rows(raw, "layer", "at least one [[layer]] table (tissue, thickness_mm)")
    layers: list[Layer] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        where = f"layer[{i}]"
        _check_keys(row, ("tissue", "thickness_mm", "fibre_direction", "anisotropy_ratio", "target", "label"), where)
        target = row.get("target", False)
        if not isinstance(target, bool):
            raise InputError(f"{where}.target", target, "true or false")
        tissue = _material(materials, row.get("tissue"), f"{where}.tissue")
        _required(row, ("thickness_mm",), where)
        seen[tissue.name] = seen.get(tissue.name, 0) + 1
        label = tissue.name if seen[tissue.name] == 1 else f"{tissue.name}_{seen[tissue.name]}"
        if "label" in row:
            label = row["label"]
            if not isinstance(label, str) or not _LABEL.fullmatch(label):
                raise InputError(f"{where}.label", label, "letters, digits and _, starting with a letter")
        kwargs = numbers_from_table(Layer, row, where)
        if "fibre_direction" in row or "anisotropy_ratio" in row:
            d = row.get("fibre_direction")
            ok = isinstance(d, list) and len(d) == 3 and all(
                isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in d
            )
            if not isinstance(d, list) or not ok or math.hypot(*d) == 0:
                raise InputError(f"{where}.fibre_direction", d, "a non-zero vector [x, y, z]")
            n = math.hypot(*d)
            kwargs["fibre_direction"] = (d[0] / n, d[1] / n, d[2] / n)
            kwargs.setdefault("anisotropy_ratio", muscle().low_frequency_ratio)  # sourced default
        with renamed(f"layer[{label}]", where):
            layers.append(Layer(tissue=tissue, label=label, target=target, **kwargs))
    return tuple(layers)


def _electrode(row: Mapping[str, Any], i: int, materials: Mapping[str, Tissue]) -> Electrode:
    where = f"electrode[{i}]"
    _check_keys(row, _ELECTRODE_KEYS, where)
    name = _string(row, "name", where)
    if name == GROUND:
        raise InputError(f"{where}.name", name, "'ground' is reserved for the deep face")
    where = f"electrode[{name}]"
    shape = shape_from_table(dict(row), where)
    center = _point_2d(row.get("center_mm"), f"{where}.center_mm", "a list of two numbers [x_mm, y_mm]")
    gel = None
    if "gel" in row:
        g = row["gel"]
        if not isinstance(g, dict):
            raise InputError(f"{where}.gel", g, "a table { material = ..., thickness_mm = ... }")
        _check_keys(g, ("material", "thickness_mm"), f"{where}.gel")
        material = _material(materials, g.get("material"), f"{where}.gel.material")
        _required(g, ("thickness_mm",), f"{where}.gel")
        with _named(where):
            gel = GelPad(material=material, **numbers_from_table(GelPad, g, f"{where}.gel"))
    contact = None
    if "contact" in row:
        c = row["contact"]
        if not isinstance(c, dict):
            raise InputError(f"{where}.contact", c, "a table { resistance_ohm_cm2 = ... }")
        _check_keys(c, ("resistance_ohm_cm2", "capacitance_uF_per_cm2"), f"{where}.contact")
        _required(c, ("resistance_ohm_cm2",), f"{where}.contact")
        kwargs = numbers_from_table(Contact, c, f"{where}.contact")
        kwargs.setdefault("capacitance_F_per_m2", DEFAULT_CONTACT_CAPACITANCE_F_PER_M2)
        if kwargs["capacitance_F_per_m2"] == 0:
            kwargs["capacitance_F_per_m2"] = None  # 0: a purely resistive contact
        with _named(where):
            contact = Contact(**kwargs)
    return Electrode(name=name, shape=shape, center_m=center, gel=gel, contact=contact)


def _names(value: object, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InputError(where, value, "an electrode name, a list of names, or 'ground'")


def _channels(raw: Mapping[str, Any]) -> tuple[tuple[Channel, ...], dict[str, str], str | None]:
    value = raw.get("channel")
    if isinstance(value, dict):
        rows = [value]
    elif isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        rows = value
    else:
        raise InputError("channel", value, "a [channel] table or [[channel]] tables (anode, cathode, current_mA)")
    channels, where_of, timing = [], {}, None
    for i, row in enumerate(rows):
        where = "channel" if isinstance(value, dict) else f"channel[{i}]"
        _check_keys(row, ("name", "anode", "cathode", "current_mA", "timing"), where)
        if "timing" in row:
            if row["timing"] not in TIMINGS:
                raise InputError(f"{where}.timing", row["timing"], f"one of {', '.join(TIMINGS)}")
            if timing is not None and row["timing"] != timing:
                raise InputError(f"{where}.timing", row["timing"], f"every channel of a case has the same timing ({timing})")
            timing = row["timing"]
        cname = _string(row, "name", where, default=str(i + 1))
        anode = _names(row.get("anode"), f"{where}.anode")
        cathode = _names(row.get("cathode"), f"{where}.cathode")
        _required(row, ("current_mA",), where)
        with renamed(f"channel[{cname}]", where):
            channels.append(Channel(name=cname, anode=anode, cathode=cathode, **numbers_from_table(Channel, row, where)))
        where_of[f"channel[{cname}]"] = where
    return tuple(channels), where_of, timing


def _probes(raw: Mapping[str, Any]) -> tuple[tuple[Probe, ...], dict[str, str]]:
    rows = _rows(raw, "probe", "[[probe]] tables (name, point_mm = [x, y, z])", required=False)
    probes, where_of = [], {}
    for i, row in enumerate(rows):
        where = f"probe[{i}]"
        _check_keys(row, ("name", "point_mm"), where)
        name = _string(row, "name", where)
        if f"probe[{name}]" in where_of:
            raise InputError(f"{where}.name", name, "probe names must be unique")
        point = _point_3d(row.get("point_mm"), f"{where}.point_mm", "a list of three numbers [x_mm, y_mm, z_mm]")
        probes.append(Probe(name=name, point_m=point))
        where_of[f"probe[{name}]"] = where
    return tuple(probes), where_of


def _exclusions(raw: Mapping[str, Any]) -> tuple[ExclusionZone, ...]:
    rows = _rows(raw, "exclusion", "[[exclusion]] tables (name, center_mm, radius_mm, depth_mm, limits)", required=False)
    keys = ("name", "center_mm", "radius_mm", "depth_mm", "min_distance_mm", "field_max_V_per_m",
            "current_density_max_A_per_m2", "source", "kind")
    zones = []
    for i, row in enumerate(rows):
        where = f"exclusion[{i}]"
        _check_keys(row, keys, where)
        name = _string(row, "name", where)
        center = _point_2d(row.get("center_mm"), f"exclusion[{name}].center_mm", "a list of two numbers [x_mm, y_mm]")
        _required(row, ("radius_mm", "depth_mm"), f"exclusion[{name}]")
        source = row.get("source", "")
        zones.append(ExclusionZone(
            name=name, center_m=center, source=source, kind=row.get("kind", "cylinder"),
            **numbers_from_table(ExclusionZone, row, f"exclusion[{name}]"),
        ))  # fmt: skip
    return tuple(zones)


def _mesh_file(m: Mapping[str, Any], base_dir: Path | None) -> dict[str, Any]:
    """``file`` (resolved against the case file's folder), ``tags`` and ``file_sha256`` of [mesh]."""
    if "file" not in m:
        if "tags" in m or "file_sha256" in m:
            raise InputError("mesh.tags" if "tags" in m else "mesh.file_sha256", m.get("tags", m.get("file_sha256")),
                             "only with [mesh] file")  # fmt: skip
        return {}
    name = m["file"]
    if not isinstance(name, str) or not name.strip():
        raise InputError("mesh.file", name, "the path of a tagged gmsh .msh file (relative to the case file)")
    path = Path(name).expanduser()
    if not path.is_absolute():
        path = (base_dir or Path.cwd()) / path
    tags = m.get("tags")
    if not isinstance(tags, dict) or not tags:
        raise InputError("mesh.tags", tags, 'a [mesh.tags] table: role = physical group, e.g. "layer:skin" = "dermis"')
    sha = m.get("file_sha256", "")
    if not isinstance(sha, str):
        raise InputError("mesh.file_sha256", sha, "a hex SHA-256 string")
    return {"file": str(path.resolve()), "tags": tags, "file_sha256": sha}


def _settings(
    raw: Mapping[str, Any], base_dir: Path | None = None
) -> tuple[MeshSettings, SolverSettings, ThermalSettings | None]:
    m = _table(raw, "mesh", "mesh", required=False)
    _check_keys(m, ("quality", "degree", "size_factor", "method", "cells_across_layer", "file", "tags", "file_sha256"), "mesh")
    degree = m.get("degree", 2)
    if degree not in (1, 2, 3) or isinstance(degree, bool):
        raise InputError("mesh.degree", degree, "1, 2 or 3")
    quality = m.get("quality", "default")
    if quality not in QUALITIES:
        raise InputError("mesh.quality", quality, f"one of {', '.join(QUALITIES)}")
    method = m.get("method", "free")
    if method not in MESH_METHODS:
        raise InputError("mesh.method", method, f"one of {', '.join(MESH_METHODS)}")
    mesh = MeshSettings(quality=quality, method=method, **numbers_from_table(MeshSettings, m, "mesh"), **_mesh_file(m, base_dir))
    s = _table(raw, "solver", "solver", required=False)
    _check_keys(s, ("method", "rtol", "quasi_static_frequency_Hz", "waveform_frequencies", "waveform_tolerance"), "solver")
    n_freq = s.get("waveform_frequencies", 24)
    if isinstance(n_freq, bool) or not isinstance(n_freq, int) or not 7 <= n_freq <= 200:
        raise InputError("solver.waveform_frequencies", n_freq, "an integer from 7 to 200")
    method = s.get("method", "auto")
    if method not in SOLVER_METHODS:
        raise InputError("solver.method", method, f"one of {', '.join(SOLVER_METHODS)}")
    solver = SolverSettings(method=method, **numbers_from_table(SolverSettings, s, "solver"))
    thermal = None
    if "thermal" in raw:
        t = _table(raw, "thermal", "thermal", required=True)
        _check_keys(t, ("h_W_per_m2K", "air_temperature_C", "core_temperature_C", "session_min", "time_step_s"), "thermal")
        thermal = ThermalSettings(**numbers_from_table(ThermalSettings, t, "thermal"))
    return mesh, solver, thermal


# ----------------------------------------------------------------------------- entry points


def parse_case(raw: Mapping[str, Any], *, base_dir: str | Path | None = None) -> Case:
    """Check a case table (as read from TOML) and build the :class:`~emsim.models.case.Case`.

    Args:
        raw: the case table.
        base_dir: folder that a relative ``[mesh] file`` is relative to (the case file's
            folder; default the working directory).

    Raises:
        InputError: naming the first bad field as the file has it, its value and what is allowed.
    """
    if not isinstance(raw, Mapping):
        raise InputError("case", type(raw).__name__, "must be a table")
    _check_keys(raw, _TOP_KEYS, "")
    name = _string(raw, "name", "")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise InputError("description", description, "must be a string")
    materials = _materials(raw)
    site = raw.get("site", "")
    if "site" in raw:  # the site's layers, with the file's own [[layer]] tables applied by label
        raw = {**raw, "layer": site_layer_rows(site, _rows(raw, "layer", "", required=False))}
    p = _table(raw, "patch", "patch", required=True)
    _check_keys(p, ("width_mm", "length_mm", "shape", "curvature_radius_mm"), "patch")
    _required(p, ("width_mm", "length_mm"), "patch")
    shape = p.get("shape", "flat")
    if shape not in PATCH_SHAPES:
        raise InputError("patch.shape", shape, f"one of {', '.join(PATCH_SHAPES)}")
    patch = Patch(shape=shape, **numbers_from_table(Patch, p, "patch"))
    layers = _layers(raw, materials)
    rows = _expand_patterns(_rows(raw, "electrode", "at least one [[electrode]] table"))
    electrodes = tuple(_electrode(row, i, materials) for i, row in enumerate(rows))
    channels, channel_where, timing = _channels(raw)
    probes, probe_where = _probes(raw)
    mesh, solver, thermal = _settings(raw, None if base_dir is None else Path(base_dir))
    a = _table(raw, "activation", "activation", required=False)
    _check_keys(a, ("target_volume_cm3", "onset_volume_mm3", "sensory_rheobase_field_V_per_m"), "activation")
    activation = ActivationSettings(**numbers_from_table(ActivationSettings, a, "activation"))
    waveform = None
    if "waveform" in raw:
        waveform = Waveform.from_case(_table(raw, "waveform", "waveform", required=True))
    case_kwargs = {
        "name": name, "description": description, "patch": patch, "layers": layers, "electrodes": electrodes,
        "channels": channels, "mesh": mesh, "solver": solver, "thermal": thermal, "waveform": waveform,
        "probes": probes, "channel_timing": timing, "activation": activation, "site": site,
        "exclusions": _exclusions(raw),
    }  # fmt: skip
    try:
        return Case(**case_kwargs)
    except InputError as err:
        for old, new in (channel_where | probe_where).items():
            if err.field.startswith(old):
                raise InputError(new + err.field[len(old) :], err.value, err.allowed) from None
        raise


def read_case_table(path: str | Path) -> dict[str, Any]:
    """Read a case file's TOML into a table.

    Raises:
        CaseFileError: the file is missing or not valid TOML.
    """
    return parse_toml(read_case_text(path), path)


def read_text_file(path: str | Path, what: str = "case file") -> str:
    """The UTF-8 text of an input file (case, study or presets file), read with a bound.

    Only a regular file is read (``/dev/zero``, a pipe or a folder is refused), and at most
    :data:`MAX_INPUT_FILE_BYTES`, so a wrong path cannot exhaust memory.

    Raises:
        CaseFileError: one line naming the file (``what``) and why it cannot be read.
    """
    def refuse(reason: str) -> CaseFileError:
        err = CaseFileError(f"{what} {str(path)!r}: cannot be read ({reason})")
        err.reason = f"cannot be read ({reason})"  # the message without the file, for callers that name it
        return err

    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            raise refuse("not a regular file")
        with open(path, "rb") as f:
            data = f.read(MAX_INPUT_FILE_BYTES + 1)
    except OSError as err:
        raise refuse(err.strerror or str(err)) from None
    if len(data) > MAX_INPUT_FILE_BYTES:
        raise refuse(f"larger than {MAX_INPUT_FILE_BYTES // 1024**2} MiB: not a {what}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        raise refuse(f"not UTF-8 text: byte 0x{data[err.start]:02x} at offset {err.start}") from None


def read_case_text(path: str | Path) -> str:
    """The text of a case file.

    Raises:
        CaseFileError: the file is missing, not a regular file, too large or not UTF-8.
    """
    return read_text_file(path, "case file")


def parse_toml(text: str, path: str | Path = "<text>") -> dict[str, Any]:
    """Parse case-file text into a table.

    Raises:
        CaseFileError: not valid TOML.
    """
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CaseFileError(f"case file {str(path)!r}: not valid TOML ({err})") from None


def parse_case_text(text: str, path: str | Path = "<text>") -> Case:
    """Parse and check a case from TOML text (a relative ``[mesh] file`` is relative to ``path``)."""
    base = None if str(path) == "<text>" else Path(path).parent
    return parse_case(parse_toml(text, path), base_dir=base)


def load_case(path: str | Path) -> Case:
    """Read and check a case file (TOML), reading the file once."""
    return parse_case_text(read_case_text(path), path)
