"""Exclusion zones: tissue near the face where the field must stay below a stated limit.

A zone (case file ``[[exclusion]]``) is a CYLINDER of tissue: the points within ``radius_mm``
(measured along the skin, from ``center_mm`` on the skin surface) and from the skin surface down
to ``depth_mm``. Gel pads are not part of it. Its limits ``field_max_V_per_m`` and
``current_density_max_A_per_m2`` (at least one) are compared, by
:mod:`emsim.solvers.electric.exclusion`, with the largest r.m.s. value over the zone's cells: the d.c.
value for a d.c. case, the r.m.s. over the pulse train at the plateau of the on/off cycle for a
waveform (the peak values at the pulse are reported beside it).

The limit of the built-in cases' eye-contour zone is the ICNIRP 2010 basic restriction for the
internal electric field in CNS tissue of the head (retina), general public, r.m.s.:
4e-4 f V/m from 25 Hz to 1 kHz (ICNIRP 2010, Health Physics 99:818, basic restrictions). It protects
against electrically evoked phosphenes (retinal stimulation), the effect with the lowest
threshold near the face; it is set for sinusoidal fields, and the case files state how it is
applied to a pulse train.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .quantity import check_fields, numbers_to_table, quantity

__all__ = ["ExclusionZone"]


@dataclass(frozen=True, slots=True)
class ExclusionZone:
    """A cylinder of tissue under the skin where the field and current density are limited.

    Attributes:
        name: unique zone name (the key of its block in ``metrics.json``).
        center_m: (x, y) centre on the skin surface [m] (case file ``center_mm``).
        radius_m: radius along the skin [m] (case file ``radius_mm``).
        depth_m: depth below the skin surface [m] (case file ``depth_mm``); at most the tissue depth.
        field_max_V_per_m: limit of the zone's largest r.m.s. field |E| [V/m], or None.
        current_density_max_A_per_m2: limit of the zone's largest r.m.s. current density |J|
            [A/m^2], or None.
        source: where the limits come from and what they protect against (free text).
    """

    name: str
    center_m: tuple[float, float]
    radius_m: float = quantity("radius_mm", to_si=1e-3, low=0.0, high=1000.0)
    depth_m: float = quantity("depth_mm", to_si=1e-3, low=0.0, high=1000.0)
    field_max_V_per_m: float | None = quantity("field_max_V_per_m", low=0.0, high=1e6, default=None)
    current_density_max_A_per_m2: float | None = quantity(
        "current_density_max_A_per_m2", low=0.0, high=1e9, default=None
    )
    source: str = ""

    def __post_init__(self) -> None:
        """Check the name, the centre, the sizes and that at least one limit is given."""
        if not isinstance(self.name, str) or not self.name.strip():
            raise InputError("exclusion.name", self.name, "a non-empty name")
        where = f"exclusion[{self.name}]"
        c = self.center_m
        ok = isinstance(c, (tuple, list)) and len(c) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in c
        )
        if not ok:
            raise InputError(f"{where}.center_mm", c, "two finite numbers [x_mm, y_mm] on the skin surface")
        check_fields(self, where)
        if self.field_max_V_per_m is None and self.current_density_max_A_per_m2 is None:
            raise InputError(
                f"{where}.field_max_V_per_m", None,
                "give field_max_V_per_m and/or current_density_max_A_per_m2 (a zone needs a limit)",
            )  # fmt: skip
        if not isinstance(self.source, str):
            raise InputError(f"{where}.source", self.source, "a string")

    def to_table(self) -> dict[str, Any]:
        """The zone in case-file keys and units."""
        row: dict[str, Any] = {"name": self.name, "center_mm": [float(f"{v * 1e3:.15g}") for v in self.center_m]}
        row |= numbers_to_table(self)
        if self.source:
            row["source"] = self.source
        return row

    def contains(self, x: Any, y: Any, z: Any) -> Any:
        """True where the point(s) (x, y, z) [m] lie in the cylinder (z <= 0 is tissue)."""
        r2 = (x - self.center_m[0]) ** 2 + (y - self.center_m[1]) ** 2
        return (r2 <= self.radius_m**2) & (z <= 0.0) & (z >= -self.depth_m)
