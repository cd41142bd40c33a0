"""The anatomy spread a preset is validated over: factors with ranges, and the cases built from them.

For each site the head is used on (``[device] sites``; none: the head case's own stack) the
spread has one two-level factor per quantity that varies across people, each with its range and
source:

* every layer thickness of the site, at its min and max independently (``models/data/sites.toml``);
* the skin contact's specific resistance R and capacitance C at the ends of their measured ranges
  (``models/data/contact.toml``, chosen by ``[validation] contact``: by default the large-signal
  range of a pad under stimulation pulses, ``hydrogel_under_stimulation``);
* the conductivity of every tissue of the site's layers with a range in
  ``models/data/conductivity.toml`` (skin, fat, muscle), scaled to the ends of that range: the
  scale multiplies the tissue's whole electrical model, so a corner changes the coefficients of
  the forms and never the mesh (:attr:`emsim.models.tissues.Tissue.conductivity_scale`).

An anatomy case (:class:`AnatomyCase`) is one setting of every factor: the nominal case, or a
corner (every factor at its min or max). Which corners are solved is the worst-case search's
business (:mod:`emsim.device.search`); this module only builds them and turns one into a head
case table (:func:`head_case_table`).
"""

from __future__ import annotations

import copy
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import InputError
from ..models.case_file import parse_toml
from ..models.sites import site as site_named
from ..models.tissues import library
from .presets import Device, Preset, Validation, head_case_text

__all__ = [
    "CONDUCTIVITY_RANGES_NOTE",
    "AnatomyCase",
    "ConductivityRange",
    "ContactRange",
    "Factor",
    "conductivity_ranges",
    "contact_range",
    "contact_ranges",
    "corner_case",
    "head_case_table",
    "nominal_case",
    "spread_factors",
]

#: How tissue conductivities enter the spread (said in every validation).
CONDUCTIVITY_RANGES_NOTE = (
    "each tissue of the site's layers with a range in models/data/conductivity.toml (skin, fat, muscle) is a factor: "
    "its whole electrical model scaled to the ends of the range (the factor's source gives the paper and the derivation; "
    "UNVERIFIED marks a range not read in its source)"
)


@dataclass(frozen=True, slots=True)
class ConductivityRange:
    """The published range of a library tissue's conductivity, as a scale on its electrical model.

    Attributes:
        tissue: the library tissue (``models/data/tissues.toml``).
        scale: (min, max) factor on the tissue's model [1].
        source: where the range comes from and how the scale was derived.
    """

    tissue: str
    scale: tuple[float, float]
    source: str


@cache
def conductivity_ranges() -> dict[str, ConductivityRange]:
    """The conductivity ranges of ``models/data/conductivity.toml``, by tissue name."""
    text = resources.files("emsim.models.data").joinpath("conductivity.toml").read_text("utf-8")
    out = {}
    for name, row in tomllib.loads(text).items():
        lo, hi = (float(v) for v in row["scale"])
        if not 0.0 < lo <= hi:
            raise InputError(f"conductivity.toml [{name}].scale", row["scale"], "0 < min <= max")
        out[name] = ConductivityRange(name, (lo, hi), row["source"])
    return out


@dataclass(frozen=True, slots=True)
class ContactRange:
    """The measured range of a skin contact (thin-layer R || C per area).

    Attributes:
        name: key in ``models/data/contact.toml``.
        resistance_ohm_cm2: (min, max) specific resistance [ohm cm^2].
        capacitance_uF_per_cm2: (min, max) specific capacitance [uF/cm^2].
        resistance_source, capacitance_source: where each range comes from.
    """

    name: str
    resistance_ohm_cm2: tuple[float, float]
    capacitance_uF_per_cm2: tuple[float, float]
    resistance_source: str
    capacitance_source: str


@cache
def contact_ranges() -> dict[str, ContactRange]:
    """The contact ranges of ``models/data/contact.toml``, by name."""
    text = resources.files("emsim.models.data").joinpath("contact.toml").read_text("utf-8")
    out = {}
    for name, row in tomllib.loads(text).items():
        (r_lo, r_hi), (c_lo, c_hi) = row["resistance_ohm_cm2"], row["capacitance_uF_per_cm2"]  # [min, max] each
        for key, lo, hi in (("resistance_ohm_cm2", r_lo, r_hi), ("capacitance_uF_per_cm2", c_lo, c_hi)):
            if not 0.0 < float(lo) <= float(hi):
                raise InputError(f"contact.toml [{name}].{key}", row[key], "0 < min <= max")
        out[name] = ContactRange(
            name, (float(r_lo), float(r_hi)), (float(c_lo), float(c_hi)), row["resistance_source"], row["capacitance_source"],
        )  # fmt: skip
    return out


def contact_range(name: str) -> ContactRange:
    """The contact range ``name``.

    Raises:
        InputError: naming ``validation.contact`` when there is none by that name.
    """
    ranges = contact_ranges()
    if name not in ranges:
        raise InputError("validation.contact", name, f"one of {', '.join(sorted(ranges))} (models/data/contact.toml)")
    return ranges[name]


@dataclass(frozen=True, slots=True)
class Factor:
    """One two-level factor of the spread.

    Attributes:
        name: short name, unique in the site (a layer label, ``R``, ``C`` or ``sigma_TISSUE``).
        kind: ``"thickness"``, ``"contact_resistance"``, ``"contact_capacitance"`` or
            ``"conductivity"``.
        low, high: the range ends, in ``unit``.
        unit: ``"mm"``, ``"ohm cm^2"``, ``"uF/cm^2"`` or ``"x library"`` (a scale on the tissue's model).
        source: where the range comes from.
    """

    name: str
    kind: str
    low: float
    high: float
    unit: str
    source: str


@dataclass(frozen=True, slots=True)
class AnatomyCase:
    """One anatomy case: a site and a setting of every factor of its spread.

    Attributes:
        site: the site name (None: the head case's own tissue stack).
        factors: the site's factors, in order.
        levels: per factor ``False`` (min) or ``True`` (max); None: the nominal case.
    """

    site: str | None
    factors: tuple[Factor, ...]
    levels: tuple[bool, ...] | None = None

    @property
    def label(self) -> str:
        """A short readable name: ``cheek/nominal`` or ``cheek/skin+ fat- ... R+ C-`` (+ max, - min)."""
        where = self.site or "head stack"
        if self.levels is None:
            return f"{where}/nominal"
        return f"{where}/" + " ".join(f"{f.name}{'+' if up else '-'}" for f, up in zip(self.factors, self.levels, strict=True))

    def values(self) -> dict[str, float]:
        """Each factor's value in this case, in its unit (the nominal case: empty)."""
        if self.levels is None:
            return {}
        return {f.name: (f.high if up else f.low) for f, up in zip(self.factors, self.levels, strict=True)}

    def describe(self) -> dict[str, Any]:
        """The case as a JSON record: site, label, the contact, and each factor's value, unit and level."""
        factors: dict[str, Any] | str = "nominal (the site's nominal thicknesses, the head's own contact)"
        contact: dict[str, Any] | str = "the head's own contact (its case file)"
        if self.levels is not None:
            factors = {f.name: {"value": f.high if up else f.low, "unit": f.unit, "level": "max" if up else "min"}
                       for f, up in zip(self.factors, self.levels, strict=True)}  # fmt: skip
            keys = {"contact_resistance": "resistance_ohm_cm2", "contact_capacitance": "capacitance_uF_per_cm2"}
            own = {keys[f.kind]: (f.high if up else f.low)
                   for f, up in zip(self.factors, self.levels, strict=True) if f.kind in keys}  # fmt: skip
            if own:
                contact = own
        return {"label": self.label, "site": self.site, "contact": contact, "factors": factors}


def spread_factors(device: Device, validation: Validation, site: str | None) -> tuple[Factor, ...]:
    """The two-level factors of one site: layer thicknesses, contact R and C, tissue conductivities.

    A conductivity factor for each tissue of the site's layers with a range in
    ``models/data/conductivity.toml``, in that file's order.
    """
    out: list[Factor] = []
    tissues: list[str] = []
    if site is not None:
        for layer in site_named(site).layers:
            tissues.append(layer.tissue)
            lo, hi = (v * 1e3 for v in layer.range_m)
            if hi > lo:
                out.append(Factor(layer.label, "thickness", lo, hi, "mm", f"models/data/sites.toml [{site}] {layer.label}: {layer.source}"))
    else:
        text, path = head_case_text(device.electrode_head)
        tissues = [str(row.get("tissue")) for row in parse_toml(text, path).get("layer", [])]
    if validation.contact != "head":
        c = contact_range(validation.contact)
        out.append(Factor("R", "contact_resistance", *c.resistance_ohm_cm2, "ohm cm^2", c.resistance_source))
        out.append(Factor("C", "contact_capacitance", *c.capacitance_uF_per_cm2, "uF/cm^2", c.capacitance_source))
    for name, r in conductivity_ranges().items():
        if name in tissues and r.scale[1] > r.scale[0]:
            out.append(Factor(f"sigma_{name}", "conductivity", *r.scale, "x library",
                              f"models/data/conductivity.toml [{name}]: {r.source}"))  # fmt: skip
    return tuple(out)


def nominal_case(device: Device, validation: Validation, site: str | None) -> AnatomyCase:
    """The nominal case of a site (every layer nominal, the head's own contact)."""
    return AnatomyCase(site, spread_factors(device, validation, site))


def corner_case(nominal: AnatomyCase, levels: tuple[bool, ...]) -> AnatomyCase:
    """The corner of ``nominal``'s spread at ``levels`` (one bool per factor: True = max)."""
    if len(levels) != len(nominal.factors):
        raise ValueError(f"{len(levels)} levels for {len(nominal.factors)} factors")
    return AnatomyCase(nominal.site, nominal.factors, tuple(bool(v) for v in levels))


def head_case_table(head: dict[str, Any], anatomy: AnatomyCase, preset: Preset, reference_A: float) -> dict[str, Any]:
    """The head's case table for one anatomy case and one preset's waveform and session.

    The head's ``[[layer]]`` tables are replaced by the site's (each thickness factor at its level
    in a corner); every pad's contact gets the corner's R and C; each scaled tissue becomes a
    ``[material.NAME]`` table (the head's own, else the library's) with its
    ``conductivity_scale``; every channel drives
    ``reference_A``; the waveform and the session length are the preset's.
    """
    t = copy.deepcopy(head)
    values = anatomy.values()
    kinds = {f.name: f.kind for f in anatomy.factors}
    if anatomy.site is not None:
        t["site"] = anatomy.site
        t.pop("layer", None)
        if values:
            t["layer"] = [{"label": layer.label, "thickness_mm": values.get(layer.label, layer.thickness_m * 1e3)}
                          for layer in site_named(anatomy.site).layers]  # fmt: skip
    contact = {}
    for name, v in values.items():
        if kinds[name] == "contact_resistance":
            contact["resistance_ohm_cm2"] = v
        elif kinds[name] == "contact_capacitance":
            contact["capacitance_uF_per_cm2"] = v
        elif kinds[name] == "conductivity" and v != 1.0:
            tissue = name.removeprefix("sigma_")
            materials = t.setdefault("material", {})
            own = materials.get(tissue) or library()[tissue].to_table()
            materials[tissue] = {**own, "conductivity_scale": float(own.get("conductivity_scale", 1.0)) * v}
    if contact:
        for e in t.get("electrode", []):
            e["contact"] = {**(e.get("contact") or {}), **contact}
    channels = t.get("channel")
    for row in [channels] if isinstance(channels, dict) else (channels or []):
        row["current_mA"] = reference_A * 1e3
    t["waveform"] = preset.waveform_table()
    t["thermal"] = {**t.get("thermal", {}), "session_min": preset.session_min}
    t["name"] = f"{head.get('name', 'head')} [{anatomy.label}]"
    return t
