"""Tissues and other conductive materials: plain, frozen data with units and sources.

A :class:`Tissue` carries its electrical model (a constant conductivity, or a Gabriel 1996
Cole-Cole dispersion) and optional thermal properties for the Pennes bioheat equation. The
built-in library lives in ``models/data/tissues.toml``; case files may add materials of their
own under ``[material.NAME]``.
"""

from __future__ import annotations

import dataclasses
import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import InputError
from .dispersion import GABRIEL_1996

__all__ = [
    "MATERIAL_KEYS",
    "ThermalProperties",
    "Tissue",
    "library",
    "tissue_from_table",
]

#: Keys a material table (library entry or ``[material.NAME]``) may hold.
MATERIAL_KEYS = (
    "description",
    "conductivity_S_per_m",
    "dispersion",
    "electrical_source",
    "density_kg_per_m3",
    "heat_capacity_J_per_kgK",
    "thermal_conductivity_W_per_mK",
    "perfusion_mL_per_min_kg",
    "metabolic_heat_W_per_kg",
    "thermal_source",
    "conductivity_scale",
)

_THERMAL_KEYS = MATERIAL_KEYS[4:9]


def _positive(field: str, value: float, *, allow_zero: bool = False) -> None:
    ok = math.isfinite(value) and (value >= 0.0 if allow_zero else value > 0.0)
    if not ok:
        raise InputError(field, value, "must be a finite number " + (">= 0" if allow_zero else "> 0"))


@dataclass(frozen=True, slots=True)
class ThermalProperties:
    """Thermal properties of a material for the Pennes bioheat equation.

    Attributes:
        density_kg_per_m3: mass density rho [kg/m^3].
        heat_capacity_J_per_kgK: specific heat capacity c [J/(kg K)].
        thermal_conductivity_W_per_mK: thermal conductivity k [W/(m K)].
        perfusion_mL_per_min_kg: blood perfusion rate [mL/(min kg)] (IT'IS convention).
        metabolic_heat_W_per_kg: metabolic heat generation [W/kg].
        source: where the numbers come from.
    """

    density_kg_per_m3: float
    heat_capacity_J_per_kgK: float
    thermal_conductivity_W_per_mK: float
    perfusion_mL_per_min_kg: float = 0.0
    metabolic_heat_W_per_kg: float = 0.0
    source: str = ""

    def __post_init__(self) -> None:
        """Check every value is physical."""
        _positive("density_kg_per_m3", self.density_kg_per_m3)
        _positive("heat_capacity_J_per_kgK", self.heat_capacity_J_per_kgK)
        _positive("thermal_conductivity_W_per_mK", self.thermal_conductivity_W_per_mK)
        _positive("perfusion_mL_per_min_kg", self.perfusion_mL_per_min_kg, allow_zero=True)
        _positive("metabolic_heat_W_per_kg", self.metabolic_heat_W_per_kg, allow_zero=True)

    @property
    def perfusion_per_s(self) -> float:
        """Volumetric perfusion w_b [1/s] = perfusion [mL/min/kg] * rho * 1e-6 / 60."""
        return self.perfusion_mL_per_min_kg * self.density_kg_per_m3 * 1e-6 / 60.0

    @property
    def metabolic_heat_W_per_m3(self) -> float:
        """Metabolic heat per volume [W/m^3] = Q_met [W/kg] * rho."""
        return self.metabolic_heat_W_per_kg * self.density_kg_per_m3


@dataclass(frozen=True, slots=True)
class Tissue:
    """A conductive material: tissue, gel or electrode material.

    Attributes:
        name: library or case name.
        conductivity_S_per_m: constant conductivity [S/m], or None when ``dispersion`` is set.
        dispersion: key of :data:`emsim.models.dispersion.GABRIEL_1996`, or None.
        electrical_source: source of the electrical data.
        thermal: thermal properties, or None when the material has none.
        description: free text.
        conductivity_scale: factor on the electrical model (the constant, or the whole complex
            admittivity of the dispersion: conductivity and permittivity alike), 1 by default;
            the anatomy spread sets it to the ends of a tissue's published range
            (``models/data/conductivity.toml``).
    """

    name: str
    conductivity_S_per_m: float | None = None
    dispersion: str | None = None
    electrical_source: str = ""
    thermal: ThermalProperties | None = None
    description: str = ""
    # not compared: a scaled tissue is still the library's skin or muscle (the dermis layers of the
    # sensory rule, the default target layers); the case digest writes the scale (to_table)
    conductivity_scale: float = dataclasses.field(default=1.0, compare=False)

    def __post_init__(self) -> None:
        """Exactly one electrical model, with a physical value."""
        field = f"material.{self.name}"
        if (self.conductivity_S_per_m is None) == (self.dispersion is None):
            raise InputError(
                field,
                {"conductivity_S_per_m": self.conductivity_S_per_m, "dispersion": self.dispersion},
                "give exactly one of conductivity_S_per_m or dispersion",
            )
        if self.conductivity_S_per_m is not None:
            _positive(f"{field}.conductivity_S_per_m", self.conductivity_S_per_m)
        _positive(f"{field}.conductivity_scale", self.conductivity_scale)
        if self.dispersion is not None and self.dispersion not in GABRIEL_1996:
            raise InputError(f"{field}.dispersion", self.dispersion, f"one of {sorted(GABRIEL_1996)}")

    def to_table(self) -> dict[str, Any]:
        """The material as a case-file ``[material.NAME]`` table (canonical key order)."""
        out: dict[str, Any] = {}
        if self.conductivity_S_per_m is not None:
            out["conductivity_S_per_m"] = self.conductivity_S_per_m
        if self.dispersion is not None:
            out["dispersion"] = self.dispersion
        if self.conductivity_scale != 1.0:
            out["conductivity_scale"] = self.conductivity_scale
        out["electrical_source"] = self.electrical_source
        t = self.thermal
        if t is not None:
            out |= {
                "density_kg_per_m3": t.density_kg_per_m3,
                "heat_capacity_J_per_kgK": t.heat_capacity_J_per_kgK,
                "thermal_conductivity_W_per_mK": t.thermal_conductivity_W_per_mK,
                "perfusion_mL_per_min_kg": t.perfusion_mL_per_min_kg,
                "metabolic_heat_W_per_kg": t.metabolic_heat_W_per_kg,
                "thermal_source": t.source,
            }
        if self.description:
            out["description"] = self.description
        return out

    def conductivity_at(self, frequency_Hz: float) -> float:
        """Effective (real) conductivity [S/m] at ``frequency_Hz``.

        A constant-conductivity material returns its constant; a dispersive tissue evaluates
        the Gabriel 1996 Cole-Cole model, sigma = -w eps0 Im(eps*).
        """
        if self.conductivity_S_per_m is not None:
            return self.conductivity_S_per_m * self.conductivity_scale

        if self.dispersion is None:
            raise InputError(f"material.{self.name}", None, "a conductivity_S_per_m or a dispersion")
        return float(GABRIEL_1996[self.dispersion].conductivity_S_per_m(frequency_Hz)) * self.conductivity_scale


def tissue_from_table(name: str, table: dict[str, Any], *, field: str | None = None) -> Tissue:
    """Build a :class:`Tissue` from a material table (library entry or ``[material.NAME]``).

    Args:
        name: the material's name.
        table: keys from :data:`MATERIAL_KEYS`.
        field: the name used in error messages (default ``material.NAME``).

    Raises:
        InputError: unknown key, wrong type or unphysical value; the message names the field.
    """
    field = field or f"material.{name}"
    if not isinstance(table, dict):
        raise InputError(field, table, "must be a table of material properties")
    for key, value in table.items():
        if key not in MATERIAL_KEYS:
            raise InputError(f"{field}.{key}", value, f"unknown key; allowed: {', '.join(MATERIAL_KEYS)}")
        is_text = key in ("description", "dispersion", "electrical_source", "thermal_source")
        if is_text and not isinstance(value, str):
            raise InputError(f"{field}.{key}", value, "must be a string")
        if not is_text and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise InputError(f"{field}.{key}", value, "must be a number")
    given = [k for k in _THERMAL_KEYS if k in table]
    thermal = None
    if given:
        required = _THERMAL_KEYS[:3]
        missing = [k for k in required if k not in table]
        if missing:
            raise InputError(
                f"{field}.{missing[0]}", None, f"required when any thermal key is given ({', '.join(required)})"
            )
        try:
            thermal = ThermalProperties(
                density_kg_per_m3=float(table["density_kg_per_m3"]),
                heat_capacity_J_per_kgK=float(table["heat_capacity_J_per_kgK"]),
                thermal_conductivity_W_per_mK=float(table["thermal_conductivity_W_per_mK"]),
                perfusion_mL_per_min_kg=float(table.get("perfusion_mL_per_min_kg", 0.0)),
                metabolic_heat_W_per_kg=float(table.get("metabolic_heat_W_per_kg", 0.0)),
                source=table.get("thermal_source", ""),
            )
        except InputError as err:
            raise InputError(f"{field}.{err.field}", err.value, err.allowed) from None
    sigma = table.get("conductivity_S_per_m")
    try:
        return Tissue(
            name=name,
            conductivity_S_per_m=None if sigma is None else float(sigma),
            dispersion=table.get("dispersion"),
            electrical_source=table.get("electrical_source", ""),
            thermal=thermal,
            description=table.get("description", ""),
            conductivity_scale=float(table.get("conductivity_scale", 1.0)),
        )
    except InputError as err:
        if err.field.startswith("material."):
            raise InputError(field + err.field[len(f"material.{name}") :], err.value, err.allowed) from None
        raise


@cache
def library() -> dict[str, Tissue]:
    """The built-in material library (``models/data/tissues.toml``), by name."""
    text = resources.files("emsim.models").joinpath("data/tissues.toml").read_text("utf-8")
    return {name: tissue_from_table(name, table) for name, table in tomllib.loads(text).items()}
