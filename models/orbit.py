"""The globe placed under an exclusion zone of ``kind = "orbit"``: sizes, tissues and the retina.

Phosphenes come from the retina, not from the periorbital skin, fat or muscle, so a field limit
for the eye needs a modelled globe (see :mod:`emsim.models.exclusion`). An orbit zone gets one,
from ``models/data/orbit.toml`` (every number with its source there):

* two concentric spheres centred under the zone's centre: the sclera (one shell of uniform
  thickness) and the vitreous inside it, each its own volume (``globe:ZONE:sclera``,
  ``globe:ZONE:vitreous``) with its own tissue (``sclera``, ``vitreous`` of
  ``models/data/tissues.toml``);
* the globe's front lies ``front_below_skin_mm`` below the zone's skin layer (a simplification of
  the planar patch: in reality the cornea lies at the skin surface level, between the lids); the
  layers around it stand for the orbital fat; the orbital rim (bone) is not meshed;
* the RETINA is the posterior hemisphere of the globe's inner surface (the vitreous side of the
  vitreous-sclera interface, the half away from the skin): the retina lines the globe from the
  posterior pole to the ora serrata, a little in front of the equator; the part in front of the
  equator is left out because in this planar model the globe's front (where the cornea, lens and
  ciliary body are in reality) is the part nearest the pads, and a criterion made for the retina
  must not be applied to tissue that stands for the anterior segment.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any

from ..errors import InputError
from .tissues import library

__all__ = ["GlobeGeometry", "globe_data", "globe_geometry", "globe_tissues", "globe_volume_names"]


@dataclass(frozen=True, slots=True)
class GlobeGeometry:
    """Where the globe of one orbit zone sits in the patch frame (SI).

    Attributes:
        zone: the zone's name.
        center_m: (x, y, z) of the spheres' common centre [m] (z < 0: below the skin surface).
        outer_radius_m: the sclera's outer radius [m].
        inner_radius_m: the vitreous' radius, the retina's [m].
        retina_size_m: mesh size at the inner surface [m].
    """

    zone: str
    center_m: tuple[float, float, float]
    outer_radius_m: float
    inner_radius_m: float
    retina_size_m: float

    @property
    def vitreous_volume_m3(self) -> float:
        """4/3 pi r_in^3 [m^3]."""
        return 4.0 / 3.0 * math.pi * self.inner_radius_m**3

    @property
    def sclera_volume_m3(self) -> float:
        """4/3 pi (r_out^3 - r_in^3) [m^3]."""
        return 4.0 / 3.0 * math.pi * (self.outer_radius_m**3 - self.inner_radius_m**3)

    def is_retina(self, x: Any, y: Any, z: Any, shell_m: float) -> Any:
        """True where points (cell centroids) lie within ``shell_m`` inside the inner surface, posterior half."""
        cx, cy, cz = self.center_m
        r = ((x - cx) ** 2 + (y - cy) ** 2 + (z - cz) ** 2) ** 0.5
        return (r >= self.inner_radius_m - shell_m) & (r <= self.inner_radius_m) & (z < cz)


@cache
def globe_data() -> dict[str, Any]:
    """``models/data/orbit.toml`` as a table."""
    text = resources.files("emsim.models").joinpath("data/orbit.toml").read_text("utf-8")
    return tomllib.loads(text)


def globe_volume_names(zone: str) -> dict[str, str]:
    """The mesh volume name of each globe part of zone ``zone`` and its tissue name."""
    g = globe_data()["globe"]
    return {f"globe:{zone}:sclera": g["sclera_tissue"], f"globe:{zone}:vitreous": g["vitreous_tissue"]}


def globe_geometry(case: Any) -> tuple[GlobeGeometry, ...]:
    """The globe of every orbit zone of ``case``; an InputError when one does not fit in the patch.

    The globe must lie inside the tissue (below the skin layer, above the patch's deep face) and
    inside the patch's sides: the error names the zone and what to enlarge.
    """
    g = globe_data()["globe"]
    r_out = g["outer_radius_mm"] * 1e-3
    r_in = r_out - g["sclera_thickness_mm"] * 1e-3
    out = []
    for zone in case.exclusions:
        if getattr(zone, "kind", "cylinder") != "orbit":
            continue
        skin = case.layers[0].thickness_m
        cz = -(skin + g["front_below_skin_mm"] * 1e-3 + r_out)
        (cx, cy), w2, l2 = zone.center_m, case.patch.width_m / 2, case.patch.length_m / 2
        where = f"exclusion[{zone.name}]"
        if cz - r_out < -case.depth_m:
            raise InputError(
                f"{where}.kind", "orbit",
                f"the globe (radius {r_out * 1e3:g} mm, front {g['front_below_skin_mm']:g} mm below the "
                f"skin layer) reaches {-(cz - r_out) * 1e3:.4g} mm deep: the tissue stack must be at least that "
                f"deep (it is {case.depth_m * 1e3:.4g} mm); add depth to the deepest layer",
            )  # fmt: skip
        if cx - r_out < -w2 or cx + r_out > w2 or cy - r_out < -l2 or cy + r_out > l2:
            raise InputError(
                f"{where}.center_mm", [float(f"{c * 1e3:.6g}") for c in zone.center_m],
                f"an orbit zone's globe (radius {r_out * 1e3:g} mm) must lie inside the patch, x in "
                f"[{-w2 * 1e3:g}, {w2 * 1e3:g}] mm and y in [{-l2 * 1e3:g}, {l2 * 1e3:g}] mm; enlarge [patch]",
            )  # fmt: skip
        out.append(GlobeGeometry(zone.name, (cx, cy, cz), r_out, r_in, g["retina_cell_size_mm"] * 1e-3))
    return tuple(out)


def globe_tissues(case: Any) -> dict[str, Any]:
    """The tissue (:class:`emsim.models.tissues.Tissue`) of every globe volume of ``case``, by volume name."""
    lib = library()
    out: dict[str, Any] = {}
    for zone in case.exclusions:
        if getattr(zone, "kind", "cylinder") == "orbit":
            out |= {name: lib[tissue] for name, tissue in globe_volume_names(zone.name).items()}
    return out
