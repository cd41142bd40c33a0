"""A simulation case: the tissue patch, its layers, electrodes, channels and settings.

:func:`parse_case` turns a case table (read from TOML) into a frozen :class:`Case`, converting
the file's units (mm, mA, ohm cm^2, uF/cm^2) to SI and checking everything before anything runs:
any bad value raises :class:`~emsim.errors.InputError` naming the field, the value and what is
allowed.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import CaseFileError, InputError
from .electrodes import (
    DEFAULT_CONTACT_CAPACITANCE_F_PER_M2,
    GROUND,
    Channel,
    Contact,
    Electrode,
    GelPad,
)
from .tissues import Tissue, library, tissue_from_table

__all__ = [
    "QUALITIES",
    "SOLVER_METHODS",
    "Case",
    "Layer",
    "MeshSettings",
    "Patch",
    "Probe",
    "SolverSettings",
    "ThermalSettings",
    "load_case",
    "parse_case",
]

#: Mesh quality presets, coarse to fine.
QUALITIES = ("coarse", "default", "fine")
#: Linear solver choices: "auto" picks MUMPS for small problems, CG + GAMG for large ones.
SOLVER_METHODS = ("auto", "mumps", "cg-gamg")

_TOP_KEYS = (
    "name", "description", "patch", "layer", "electrode", "channel", "material", "mesh",
    "solver", "thermal", "waveform", "probe",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Patch:
    """The modelled block of tissue; its top face (z = 0) is the skin surface.

    Attributes:
        width_m: extent along x [m], centred on x = 0.
        length_m: extent along y [m], centred on y = 0.
    """

    width_m: float
    length_m: float


@dataclass(frozen=True, slots=True)
class Layer:
    """One tissue layer, counted from the skin surface down.

    Attributes:
        tissue: the layer's material.
        thickness_m: thickness [m].
        label: unique label used for tags and outputs, e.g. ``"skin"`` or ``"fat_2"``.
        fibre_direction: unit vector of the fibres (muscle), or None for an isotropic layer.
        anisotropy_ratio: conductivity along the fibres over conductivity across them (the
            tissue's own conductivity is the across value: Gabriel's muscle row is transverse;
            about 4 for muscle at low frequency, Gielen 1984).
    """

    tissue: Tissue
    thickness_m: float
    label: str
    fibre_direction: tuple[float, float, float] | None = None
    anisotropy_ratio: float = 1.0


@dataclass(frozen=True, slots=True)
class MeshSettings:
    """Mesh resolution settings.

    Attributes:
        quality: one of :data:`QUALITIES`.
        degree: polynomial degree of the potential (1 or 2; default 2: degree 1 underestimates
            the peak skin current density by several per cent at the default mesh).
        size_factor: multiplies every target element size (tests use > 1 for cheaper meshes).
    """

    quality: str = "default"
    degree: int = 2
    size_factor: float = 1.0


@dataclass(frozen=True, slots=True)
class SolverSettings:
    """Linear solver and material evaluation settings.

    Attributes:
        method: one of :data:`SOLVER_METHODS`.
        rtol: relative residual tolerance of the iterative solver.
        quasi_static_frequency_Hz: frequency [Hz] at which dispersive (Cole-Cole) tissues are
            evaluated for the quasi-static solve.
        waveform_frequencies: number of frequencies the waveform response samples with 3-D
            solves (log-spaced; the rest of the spectrum is interpolated).
    """

    method: str = "auto"
    rtol: float = 1e-10
    quasi_static_frequency_Hz: float = 10.0
    waveform_frequencies: int = 24


@dataclass(frozen=True, slots=True)
class ThermalSettings:
    """Settings of the Pennes bioheat solve over a session.

    Attributes:
        h_W_per_m2K: convective heat transfer coefficient at the skin and pads [W/(m^2 K)].
        air_temperature_C: ambient air temperature [C].
        core_temperature_C: temperature of the deep face and of arterial blood [C].
        session_s: session duration [s].
        time_step_s: time step [s].
    """

    h_W_per_m2K: float = 10.0
    air_temperature_C: float = 25.0
    core_temperature_C: float = 37.0
    session_s: float = 15 * 60.0
    time_step_s: float = 10.0


@dataclass(frozen=True, slots=True)
class Probe:
    """A point where the waveform response records the field and current density over time.

    Attributes:
        name: unique probe name.
        point_m: (x, y, z) [m]; z <= 0 is tissue (skin surface z = 0), z > 0 only inside a gel pad.
    """

    name: str
    point_m: tuple[float, float, float]


@dataclass(frozen=True, slots=True)
class Case:
    """Everything one simulation needs, in SI units.

    Attributes:
        name: case name.
        patch: lateral extent of the tissue block.
        layers: tissue layers from the skin surface down.
        electrodes: electrodes on the skin.
        channels: stimulator outputs.
        mesh: mesh settings.
        solver: solver settings.
        thermal: heating settings, or None when the case asks no thermal solve.
        waveform: the stimulation waveform (``emsim.models.waveforms.Waveform``), or None (DC).
        materials: every material the case uses, by name.
        description: free text.
        probes: points whose E(t) and J(t) the waveform response records.
    """

    name: str
    patch: Patch
    layers: tuple[Layer, ...]
    electrodes: tuple[Electrode, ...]
    channels: tuple[Channel, ...]
    mesh: MeshSettings = MeshSettings()
    solver: SolverSettings = SolverSettings()
    thermal: ThermalSettings | None = None
    waveform: Any = None
    materials: Mapping[str, Tissue] = field(default_factory=dict)
    description: str = ""
    probes: tuple[Probe, ...] = ()

    @property
    def depth_m(self) -> float:
        """Total depth of the tissue layers [m]."""
        return sum(layer.thickness_m for layer in self.layers)

    def electrode(self, name: str) -> Electrode:
        """The electrode called ``name``."""
        for e in self.electrodes:
            if e.name == name:
                return e
        raise KeyError(name)

    @property
    def grounded(self) -> bool:
        """True when a channel returns through the grounded deep face."""
        return any(c.grounded for c in self.channels)


# ----------------------------------------------------------------------------- parsing helpers


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


def _number(
    table: Mapping[str, Any],
    key: str,
    where: str,
    *,
    default: float | None = None,
    required: bool = False,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = True,
) -> float:
    name = f"{where}.{key}" if where else key
    if key not in table:
        if required or default is None:
            raise InputError(name, None, "missing; a number is required")
        return default
    value = table[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InputError(name, value, "must be a finite number")
    value = float(value)
    if low is not None and (value <= low if low_open else value < low):
        raise InputError(name, value, f"must be {'>' if low_open else '>='} {low:g}")
    if high is not None and value > high:
        raise InputError(name, value, f"must be <= {high:g}")
    return value


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


def _choice(table: Mapping[str, Any], key: str, where: str, choices: tuple[str, ...], default: str) -> str:
    value = _string(table, key, where, default=default)
    if value not in choices:
        raise InputError(f"{where}.{key}", value, f"one of {', '.join(choices)}")
    return value


def _names(value: Any, where: str) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InputError(where, value, "an electrode name, a list of names, or 'ground'")


# ----------------------------------------------------------------------------- the parser


def _materials(raw: Mapping[str, Any]) -> dict[str, Tissue]:
    materials = dict(library())
    user = _table(raw, "material", "material", required=False)
    for name, table in user.items():
        materials[name] = tissue_from_table(name, table)
    return materials


def _material(materials: Mapping[str, Tissue], name: Any, where: str) -> Tissue:
    if not isinstance(name, str) or name not in materials:
        raise InputError(where, name, f"a library material or a [material.NAME]: {', '.join(sorted(materials))}")
    return materials[name]


def _layers(raw: Mapping[str, Any], materials: Mapping[str, Tissue]) -> tuple[Layer, ...]:
    rows = raw.get("layer")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InputError("layer", rows, "at least one [[layer]] table (tissue, thickness_mm)")
    layers: list[Layer] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        where = f"layer[{i}]"
        _check_keys(row, ("tissue", "thickness_mm", "fibre_direction", "anisotropy_ratio"), where)
        tissue = _material(materials, row.get("tissue"), f"{where}.tissue")
        thickness = _number(row, "thickness_mm", where, required=True, low=0.0) * 1e-3
        seen[tissue.name] = seen.get(tissue.name, 0) + 1
        label = tissue.name if seen[tissue.name] == 1 else f"{tissue.name}_{seen[tissue.name]}"
        fibre, ratio = None, 1.0
        if "fibre_direction" in row or "anisotropy_ratio" in row:
            d = row.get("fibre_direction")
            ok = (
                isinstance(d, list)
                and len(d) == 3
                and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in d)
                and math.hypot(*d) > 0
            )
            if not ok:
                raise InputError(f"{where}.fibre_direction", d, "a non-zero vector [x, y, z]")
            n = math.hypot(*d)
            fibre = (d[0] / n, d[1] / n, d[2] / n)
            ratio = _number(row, "anisotropy_ratio", where, default=4.0, low=0.0, high=100.0)
        layers.append(
            Layer(tissue=tissue, thickness_m=thickness, label=label, fibre_direction=fibre, anisotropy_ratio=ratio)
        )
    return tuple(layers)


_ELECTRODE_KEYS = (
    "name", "shape", "diameter_mm", "width_mm", "length_mm", "corner_radius_mm", "center_mm",
    "gel", "contact",
)  # fmt: skip


def _electrode(row: Mapping[str, Any], i: int, materials: Mapping[str, Tissue]) -> Electrode:
    where = f"electrode[{i}]"
    _check_keys(row, _ELECTRODE_KEYS, where)
    name = _string(row, "name", where)
    if name == GROUND:
        raise InputError(f"{where}.name", name, "'ground' is reserved for the deep face")
    where = f"electrode[{name}]"
    shape = _choice(row, "shape", where, ("disk", "rectangle"), "disk")
    center = row.get("center_mm")
    if (
        not isinstance(center, list)
        or len(center) != 2
        or not all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in center)
    ):
        raise InputError(f"{where}.center_mm", center, "a list of two numbers [x_mm, y_mm]")
    kwargs: dict[str, Any] = {"center_m": (center[0] * 1e-3, center[1] * 1e-3)}
    if shape == "disk":
        for key in ("width_mm", "length_mm", "corner_radius_mm"):
            if key in row:
                raise InputError(f"{where}.{key}", row[key], "not a disk key; a disk takes diameter_mm")
        kwargs["diameter_m"] = _number(row, "diameter_mm", where, required=True, low=0.0) * 1e-3
    else:
        if "diameter_mm" in row:
            raise InputError(f"{where}.diameter_mm", row["diameter_mm"], "not a rectangle key")
        kwargs["width_m"] = _number(row, "width_mm", where, required=True, low=0.0) * 1e-3
        kwargs["length_m"] = _number(row, "length_mm", where, required=True, low=0.0) * 1e-3
        kwargs["corner_radius_m"] = (
            _number(row, "corner_radius_mm", where, default=0.0, low=0.0, low_open=False) * 1e-3
        )
    gel = None
    if "gel" in row:
        g = row["gel"]
        if not isinstance(g, dict):
            raise InputError(f"{where}.gel", g, "a table { material = ..., thickness_mm = ... }")
        _check_keys(g, ("material", "thickness_mm"), f"{where}.gel")
        gel = GelPad(
            material=_material(materials, g.get("material"), f"{where}.gel.material"),
            thickness_m=_number(g, "thickness_mm", f"{where}.gel", required=True, low=0.0) * 1e-3,
        )
    contact = None
    if "contact" in row:
        c = row["contact"]
        if not isinstance(c, dict):
            raise InputError(f"{where}.contact", c, "a table { resistance_ohm_cm2 = ... }")
        _check_keys(c, ("resistance_ohm_cm2", "capacitance_uF_per_cm2"), f"{where}.contact")
        r = _number(c, "resistance_ohm_cm2", f"{where}.contact", required=True, low=0.0)
        cap_uF = _number(
            c, "capacitance_uF_per_cm2", f"{where}.contact",
            default=DEFAULT_CONTACT_CAPACITANCE_F_PER_M2 * 1e2, low=0.0, low_open=False,
        )  # fmt: skip
        cap = cap_uF * 1e-2 if cap_uF > 0 else None  # 0: a purely resistive contact
        contact = Contact(resistance_ohm_m2=r * 1e-4, capacitance_F_per_m2=cap)
    return Electrode(name=name, shape=shape, gel=gel, contact=contact, **kwargs)


def _electrodes(raw: Mapping[str, Any], patch: Patch, materials: Mapping[str, Tissue]) -> tuple[Electrode, ...]:
    rows = raw.get("electrode")
    if not isinstance(rows, list) or not rows or not all(isinstance(r, dict) for r in rows):
        raise InputError("electrode", rows, "at least one [[electrode]] table")
    electrodes = [_electrode(row, i, materials) for i, row in enumerate(rows)]
    names = [e.name for e in electrodes]
    for name in names:
        if names.count(name) > 1:
            raise InputError("electrode.name", name, "electrode names must be unique")
    tol = 1e-9
    for e in electrodes:
        (cx, cy), (hx, hy) = e.center_m, e.half_extent_m
        if (
            cx - hx < -patch.width_m / 2 - tol
            or cx + hx > patch.width_m / 2 + tol
            or cy - hy < -patch.length_m / 2 - tol
            or cy + hy > patch.length_m / 2 + tol
        ):
            raise InputError(
                f"electrode[{e.name}].center_mm",
                [round(cx * 1e3, 6), round(cy * 1e3, 6)],
                f"the electrode must lie on the patch, x in [{-patch.width_m * 500:g}, "
                f"{patch.width_m * 500:g}] mm and y in [{-patch.length_m * 500:g}, "
                f"{patch.length_m * 500:g}] mm including its size",
            )
    for i, a in enumerate(electrodes):
        for b in electrodes[i + 1 :]:
            gap = a.distance_to_outline(b)
            if gap <= 1e-6:
                raise InputError(
                    f"electrode[{b.name}].center_mm",
                    [round(c * 1e3, 6) for c in b.center_m],
                    f"overlaps or touches electrode {a.name} (gap {gap * 1e3:.3g} mm); "
                    "electrodes must be at least 0.001 mm apart",
                )
    return tuple(electrodes)


def _channels(raw: Mapping[str, Any], electrodes: tuple[Electrode, ...]) -> tuple[Channel, ...]:
    value = raw.get("channel")
    if isinstance(value, dict):
        rows = [value]
    elif isinstance(value, list) and value and all(isinstance(r, dict) for r in value):
        rows = value
    else:
        raise InputError("channel", value, "a [channel] table or [[channel]] tables (anode, cathode, current_mA)")
    names = {e.name for e in electrodes}
    channels = []
    for i, row in enumerate(rows):
        where = "channel" if isinstance(value, dict) else f"channel[{i}]"
        _check_keys(row, ("name", "anode", "cathode", "current_mA"), where)
        cname = _string(row, "name", where, default=str(i + 1))
        anode = _names(row.get("anode"), f"{where}.anode")
        cathode = _names(row.get("cathode"), f"{where}.cathode")
        for key, terminal in (("anode", anode), ("cathode", cathode)):
            for n in terminal:
                if n not in names and not (key == "cathode" and n == GROUND):
                    allowed = sorted(names) + (["ground"] if key == "cathode" else [])
                    raise InputError(f"{where}.{key}", n, f"one of {', '.join(allowed)}")
        current = _number(row, "current_mA", where, required=True, low=0.0) * 1e-3
        try:
            channels.append(Channel(name=cname, anode=anode, cathode=cathode, current_A=current))
        except InputError as err:
            raise InputError(err.field.replace(f"channel[{cname}]", where), err.value, err.allowed) from None
    grounded = [c for c in channels if c.grounded]
    if grounded and len(channels) > 1:
        raise InputError("channel", len(channels), "a grounded (verification) channel must be the only one")
    return tuple(channels)


def _probes(
    raw: Mapping[str, Any], patch: Patch, layers: tuple[Layer, ...], electrodes: tuple[Electrode, ...]
) -> tuple[Probe, ...]:
    rows = raw.get("probe")
    if rows is None:
        return ()
    if not isinstance(rows, list) or not all(isinstance(r, dict) for r in rows):
        raise InputError("probe", rows, "[[probe]] tables (name, point_mm = [x, y, z])")
    depth = sum(layer.thickness_m for layer in layers)
    tol = 1e-9
    probes: list[Probe] = []
    for i, row in enumerate(rows):
        where = f"probe[{i}]"
        _check_keys(row, ("name", "point_mm"), where)
        name = _string(row, "name", where)
        if any(p.name == name for p in probes):
            raise InputError(f"{where}.name", name, "probe names must be unique")
        point = row.get("point_mm")
        if (
            not isinstance(point, list)
            or len(point) != 3
            or not all(isinstance(c, (int, float)) and not isinstance(c, bool) and math.isfinite(c) for c in point)
        ):
            raise InputError(f"{where}.point_mm", point, "a list of three numbers [x_mm, y_mm, z_mm]")
        x, y, z = (float(c) * 1e-3 for c in point)
        inside = abs(x) <= patch.width_m / 2 + tol and abs(y) <= patch.length_m / 2 + tol and z >= -depth - tol
        if inside and z > tol:  # above the skin: only inside a gel pad
            inside = any(
                e.gel is not None and z <= e.gel.thickness_m + tol and e.contains(x, y, tol=tol) for e in electrodes
            )
        if not inside:
            raise InputError(
                f"{where}.point_mm",
                point,
                f"the point must lie in the patch: x in [{-patch.width_m * 500:g}, {patch.width_m * 500:g}] mm, "
                f"y in [{-patch.length_m * 500:g}, {patch.length_m * 500:g}] mm, z in [{-depth * 1e3:g}, 0] mm "
                "(tissue; skin surface z = 0), or z > 0 inside a gel pad",
            )
        probes.append(Probe(name=name, point_m=(x, y, z)))
    return tuple(probes)


def parse_case(raw: Mapping[str, Any]) -> Case:
    """Check a case table and build the :class:`Case`.

    Args:
        raw: the case as read from TOML (see the README for the keys).

    Raises:
        InputError: naming the first bad field, its value and what is allowed.
    """
    if not isinstance(raw, Mapping):
        raise InputError("case", type(raw).__name__, "must be a table")
    _check_keys(raw, _TOP_KEYS, "")
    name = _string(raw, "name", "")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise InputError("description", description, "must be a string")
    materials = _materials(raw)
    p = _table(raw, "patch", "patch", required=True)
    _check_keys(p, ("width_mm", "length_mm"), "patch")
    patch = Patch(
        width_m=_number(p, "width_mm", "patch", required=True, low=0.0) * 1e-3,
        length_m=_number(p, "length_mm", "patch", required=True, low=0.0) * 1e-3,
    )
    layers = _layers(raw, materials)
    electrodes = _electrodes(raw, patch, materials)
    channels = _channels(raw, electrodes)
    probes = _probes(raw, patch, layers, electrodes)

    m = _table(raw, "mesh", "mesh", required=False)
    _check_keys(m, ("quality", "degree", "size_factor"), "mesh")
    degree = m.get("degree", 2)
    if degree not in (1, 2) or isinstance(degree, bool):
        raise InputError("mesh.degree", degree, "1 or 2")
    mesh = MeshSettings(
        quality=_choice(m, "quality", "mesh", QUALITIES, "default"),
        degree=int(degree),
        size_factor=_number(m, "size_factor", "mesh", default=1.0, low=0.0, high=20.0),
    )
    s = _table(raw, "solver", "solver", required=False)
    _check_keys(s, ("method", "rtol", "quasi_static_frequency_Hz", "waveform_frequencies"), "solver")
    n_freq = s.get("waveform_frequencies", 24)
    if isinstance(n_freq, bool) or not isinstance(n_freq, int) or not 7 <= n_freq <= 200:
        raise InputError("solver.waveform_frequencies", n_freq, "an integer from 7 to 200")
    solver = SolverSettings(
        method=_choice(s, "method", "solver", SOLVER_METHODS, "auto"),
        rtol=_number(s, "rtol", "solver", default=1e-10, low=0.0, high=1e-3),
        quasi_static_frequency_Hz=_number(
            s, "quasi_static_frequency_Hz", "solver", default=10.0, low=0.0, high=1e9
        ),
        waveform_frequencies=n_freq,
    )
    thermal = None
    if "thermal" in raw:
        t = _table(raw, "thermal", "thermal", required=True)
        keys = ("h_W_per_m2K", "air_temperature_C", "core_temperature_C", "session_min", "time_step_s")
        _check_keys(t, keys, "thermal")
        thermal = ThermalSettings(
            h_W_per_m2K=_number(t, "h_W_per_m2K", "thermal", default=10.0, low=0.0, low_open=False, high=1e4),
            air_temperature_C=_number(t, "air_temperature_C", "thermal", default=25.0, low=-50.0, high=60.0),
            core_temperature_C=_number(t, "core_temperature_C", "thermal", default=37.0, low=30.0, high=42.0),
            session_s=_number(t, "session_min", "thermal", default=15.0, low=0.0, high=240.0) * 60.0,
            time_step_s=_number(t, "time_step_s", "thermal", default=10.0, low=0.0, high=600.0),
        )
        for layer in layers:
            if layer.tissue.thermal is None:
                raise InputError(
                    f"material.{layer.tissue.name}", "no thermal properties",
                    "a [thermal] case needs density_kg_per_m3, heat_capacity_J_per_kgK and "
                    "thermal_conductivity_W_per_mK for every layer and gel",
                )  # fmt: skip
        for e in electrodes:
            if e.gel is not None and e.gel.material.thermal is None:
                raise InputError(
                    f"material.{e.gel.material.name}", "no thermal properties",
                    f"gel of electrode {e.name}: a [thermal] case needs its thermal properties",
                )  # fmt: skip
    waveform = None
    if "waveform" in raw:
        from .waveforms import Waveform

        waveform = Waveform.from_case(_table(raw, "waveform", "waveform", required=True))
    used = {layer.tissue.name for layer in layers} | {
        e.gel.material.name for e in electrodes if e.gel is not None
    }
    return Case(
        name=name,
        description=description,
        patch=patch,
        layers=layers,
        electrodes=electrodes,
        channels=channels,
        mesh=mesh,
        solver=solver,
        thermal=thermal,
        waveform=waveform,
        materials={n: materials[n] for n in sorted(used)},
        probes=probes,
    )


def read_case_table(path: str | Path) -> dict[str, Any]:
    """Read a case file's TOML into a table.

    Raises:
        CaseFileError: the file is missing or not valid TOML.
    """
    path = Path(path)
    try:
        text = path.read_text("utf-8")
    except OSError as err:
        raise CaseFileError(f"case file {str(path)!r}: cannot be read ({err.strerror})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise CaseFileError(f"case file {str(path)!r}: not valid TOML ({err})") from None


def load_case(path: str | Path) -> Case:
    """Read and check a case file (TOML)."""
    return parse_case(read_case_table(path))
