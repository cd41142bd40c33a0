"""The built-in library of facial sites: layer stacks with nominal thicknesses, ranges and sources.

A *site* is the tissue under a pad on one part of the face (``models/data/sites.toml``): its
layers from the skin surface down, each with a nominal thickness and the range ``(min, max)`` that
covers the spread across adult faces, one layer marked as the stimulation target. A case file
``site = "cheek"`` takes its ``[[layer]]`` tables from here (:func:`site_layer_rows`); explicit
``[[layer]]`` tables with the same ``label`` override the site's values. Preset validation varies
the thicknesses over their ranges (:meth:`Site.thickness_ranges_m`).
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import InputError

__all__ = ["Site", "SiteLayer", "site", "site_layer_rows", "sites"]

_LAYER_KEYS = ("label", "tissue", "thickness_mm", "range_mm", "target", "fibre_direction", "source")


@dataclass(frozen=True, slots=True)
class SiteLayer:
    """One layer of a site.

    Attributes:
        label: unique label in the site (``"skin"``, ``"zygomaticus"``); the case's layer label.
        tissue: material name in the tissue library (``models/data/tissues.toml``).
        thickness_m: nominal thickness [m].
        range_m: (min, max) thickness across adult faces [m]; min <= nominal <= max.
        target: the layer is the site's stimulation target.
        fibre_direction: unit fibre vector in the patch frame, or None (isotropic).
        source: where the numbers come from.
    """

    label: str
    tissue: str
    thickness_m: float
    range_m: tuple[float, float]
    target: bool
    fibre_direction: tuple[float, float, float] | None
    source: str

    def to_table(self) -> dict[str, Any]:
        """The layer in case-file units (mm), as ``emsim sites --json`` prints it."""
        row: dict[str, Any] = {
            "label": self.label, "tissue": self.tissue, "thickness_mm": round(self.thickness_m * 1e3, 9),
            "range_mm": [round(v * 1e3, 9) for v in self.range_m], "target": self.target,
        }  # fmt: skip
        if self.fibre_direction is not None:
            row["fibre_direction"] = list(self.fibre_direction)
        row["source"] = self.source
        return row


@dataclass(frozen=True, slots=True)
class Site:
    """A facial site: its layers from the skin down.

    Attributes:
        name: site name (``"cheek"``).
        description: one line on the anatomy.
        source: the sources of the stack as a whole.
        layers: the layers, skin first.
    """

    name: str
    description: str
    source: str
    layers: tuple[SiteLayer, ...]

    @property
    def target(self) -> SiteLayer:
        """The stimulation target layer."""
        return next(layer for layer in self.layers if layer.target)

    @property
    def depth_m(self) -> float:
        """Nominal depth of the stack [m]."""
        return sum(layer.thickness_m for layer in self.layers)

    def thickness_ranges_m(self) -> dict[str, tuple[float, float]]:
        """(min, max) thickness [m] of each layer, by label."""
        return {layer.label: layer.range_m for layer in self.layers}

    def to_table(self) -> dict[str, Any]:
        """The site in case-file units, as ``emsim sites --json`` prints it."""
        return {
            "name": self.name, "description": self.description, "source": self.source,
            "depth_mm": round(self.depth_m * 1e3, 9), "target": self.target.label,
            "layer": [layer.to_table() for layer in self.layers],
        }  # fmt: skip


def _layer(name: str, i: int, row: dict[str, Any]) -> SiteLayer:
    where = f"sites.{name}.layer[{i}]"
    unknown = sorted(set(row) - set(_LAYER_KEYS))
    if unknown:
        raise InputError(f"{where}.{unknown[0]}", row[unknown[0]], f"one of {', '.join(_LAYER_KEYS)}")
    for key in ("label", "tissue", "thickness_mm", "range_mm", "source"):
        if key not in row:
            raise InputError(f"{where}.{key}", None, "required")
    t, (lo, hi) = float(row["thickness_mm"]), (float(v) for v in row["range_mm"])
    if not (0 < lo <= t <= hi) or not all(math.isfinite(v) for v in (lo, t, hi)):
        raise InputError(f"{where}.range_mm", row["range_mm"], f"0 < min <= thickness_mm ({t}) <= max")
    d = row.get("fibre_direction")
    if d is not None:
        n = math.hypot(*d)
        d = tuple(float(c) / n for c in d)
    return SiteLayer(
        label=row["label"], tissue=row["tissue"], thickness_m=t * 1e-3, range_m=(lo * 1e-3, hi * 1e-3),
        target=bool(row.get("target", False)), fibre_direction=d, source=row["source"],
    )  # fmt: skip


@cache
def sites() -> dict[str, Site]:
    """The built-in site library, by name (``models/data/sites.toml``)."""
    text = resources.files("emsim.models").joinpath("data/sites.toml").read_text("utf-8")
    out: dict[str, Site] = {}
    for name, table in tomllib.loads(text).items():
        layers = tuple(_layer(name, i, row) for i, row in enumerate(table["layer"]))
        labels = [layer.label for layer in layers]
        if len(set(labels)) != len(labels) or sum(layer.target for layer in layers) != 1:
            raise InputError(f"sites.{name}.layer", labels, "unique labels and exactly one target")
        out[name] = Site(name, table["description"], table["source"], layers)
    return out


def site(name: object) -> Site:
    """The built-in site ``name``.

    Raises:
        InputError: naming ``site`` when there is no such site.
    """
    library = sites()
    if not isinstance(name, str) or name not in library:
        raise InputError("site", name, f"one of {', '.join(library)}")
    return library[name]


def site_layer_rows(name: str, overrides: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The ``[[layer]]`` tables of site ``name``, with the case file's own layers applied.

    Each explicit layer table must carry a ``label`` of the site; its keys replace the site's
    values for that layer (e.g. ``{label = "fat", thickness_mm = 5.0}``).

    Raises:
        InputError: for an unknown site, or a layer whose label is not one of the site's.
    """
    s = site(name)
    rows = []
    for layer in s.layers:
        row: dict[str, Any] = {
            "label": layer.label, "tissue": layer.tissue, "thickness_mm": layer.thickness_m * 1e3,
            "target": layer.target,
        }  # fmt: skip
        if layer.fibre_direction is not None:
            row["fibre_direction"] = list(layer.fibre_direction)
        rows.append(row)
    by_label = {row["label"]: row for row in rows}
    for i, override in enumerate(overrides):
        label = override.get("label") if isinstance(override, dict) else None
        if label not in by_label:
            raise InputError(f"layer[{i}].label", label, f"with site = {name!r}, one of {', '.join(by_label)}")
        by_label[label].update(override)
    if sum(bool(row.get("target")) for row in rows) > 1:  # an override moved the target
        explicit = {o["label"] for o in overrides if o.get("target")}
        for row in rows:
            if row["label"] not in explicit:
                row["target"] = False
    return rows
