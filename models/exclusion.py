"""Exclusion zones: tissue near the face kept clear of the pads, and where the field may be limited.

A zone (case file ``[[exclusion]]``) is a CYLINDER of tissue: the points within ``radius_mm``
(measured along the skin, from ``center_mm`` on the skin surface) and from the skin surface down
to ``depth_mm``. Gel pads are not part of it. Two rules, each labelled with what it is:

* Placement (POLICY, not a standard): no gel footprint within ``min_distance_mm`` of the zone's
  edge (default 10 mm: the seed practice "avoid the eye contour" made a number; it is a design
  rule of this project, not a dosimetric limit, and a case or a presets file may change it). An
  electrode that touches the zone is an input error (:class:`emsim.models.case.Case`).
  :func:`placement_gap_m` gives the gap.
* Dosimetric limits (optional): ``field_max_V_per_m`` and ``current_density_max_A_per_m2`` are
  compared, by
:mod:`emsim.solvers.electric.exclusion`, with the largest r.m.s. value over the zone's cells: the d.c.
value for a d.c. case, the r.m.s. over the pulse train at the plateau of the on/off cycle for a
waveform (the peak values at the pulse are reported beside it).

A field limit must be applied to the tissue it was made for: the ICNIRP 2010 basic restriction
for CNS tissue of the head (Health Physics 99:818) protects the RETINA against phosphenes, so it is
not a limit for periorbital skin, fat or muscle (where the former built-in eye zone applied it,
failing 1224x at 10 mA in the poorly conducting fat). A zone of ``kind = "orbit"`` gets a
modelled globe (:mod:`emsim.models.orbit`): its cells are then the globe's retina, and the
phosphene criterion (dosimetric, :mod:`emsim.solvers.physiology.phosphene`) judges them; the
built-in default case's eye zone is one.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from .electrodes import Electrode
from .quantity import check_fields, numbers_to_table, quantity

__all__ = ["DEFAULT_MIN_DISTANCE_M", "PLACEMENT_SOURCE", "ZONE_KINDS", "ExclusionZone", "placement_gap_m"]

#: ``"cylinder"``: the tissue cylinder only; ``"orbit"``: a globe is placed under the zone
#: (:mod:`emsim.models.orbit`) and the phosphene criterion is evaluated at its retina.
ZONE_KINDS = ("cylinder", "orbit")

#: Default smallest gap between a gel footprint and a zone's edge [m] (policy, see the module doc).
DEFAULT_MIN_DISTANCE_M = 10e-3
#: What the placement rule is, printed beside its verdict.
PLACEMENT_SOURCE = (
    "policy (not a standard): no gel footprint within min_distance_mm of an exclusion zone's edge "
    "(default 10 mm; the practice 'avoid the eye contour' made a number); a case's [[exclusion]] "
    "min_distance_mm or a presets file's [limits] zone_min_distance_mm changes it"
)


@dataclass(frozen=True, slots=True)
class ExclusionZone:
    """A cylinder of tissue under the skin where the field and current density are limited.

    Attributes:
        name: unique zone name (the key of its block in ``metrics.json``).
        center_m: (x, y) centre on the skin surface [m] (case file ``center_mm``).
        radius_m: radius along the skin [m] (case file ``radius_mm``).
        depth_m: depth below the skin surface [m] (case file ``depth_mm``); at most the tissue depth.
        min_distance_m: smallest gap between a gel footprint and the zone's edge [m] (case file
            ``min_distance_mm``, default 10 mm: policy, see the module doc).
        field_max_V_per_m: limit of the zone's largest r.m.s. field |E| [V/m], or None.
        current_density_max_A_per_m2: limit of the zone's largest r.m.s. current density |J|
            [A/m^2], or None.
        source: where the limits come from and what they protect against (free text).
        kind: ``"cylinder"`` (default) or ``"orbit"``: a modelled globe under the zone
            (:mod:`emsim.models.orbit`), whose retina the phosphene criterion judges.
    """

    name: str
    center_m: tuple[float, float]
    radius_m: float = quantity("radius_mm", to_si=1e-3, low=0.0, high=1000.0)
    depth_m: float = quantity("depth_mm", to_si=1e-3, low=0.0, high=1000.0)
    min_distance_m: float = quantity("min_distance_mm", to_si=1e-3, low=0.0, low_open=False, high=1000.0,
                                     default=DEFAULT_MIN_DISTANCE_M)
    field_max_V_per_m: float | None = quantity("field_max_V_per_m", low=0.0, high=1e6, default=None)
    current_density_max_A_per_m2: float | None = quantity(
        "current_density_max_A_per_m2", low=0.0, high=1e9, default=None
    )
    source: str = ""
    kind: str = "cylinder"

    def __post_init__(self) -> None:
        """Check the name, the centre, the kind and the sizes."""
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
        if not isinstance(self.source, str):
            raise InputError(f"{where}.source", self.source, "a string")
        if self.kind not in ZONE_KINDS:
            raise InputError(f"{where}.kind", self.kind, f"one of {', '.join(ZONE_KINDS)}")

    @property
    def has_limits(self) -> bool:
        """True when the zone states a field or current-density limit (else: placement only)."""
        return self.field_max_V_per_m is not None or self.current_density_max_A_per_m2 is not None

    def to_table(self) -> dict[str, Any]:
        """The zone in case-file keys and units."""
        row: dict[str, Any] = {"name": self.name, "center_mm": [float(f"{v * 1e3:.15g}") for v in self.center_m]}
        row |= numbers_to_table(self)
        if self.source:
            row["source"] = self.source
        if self.kind != "cylinder":
            row["kind"] = self.kind
        return row

    def contains(self, x: Any, y: Any, z: Any) -> Any:
        """True where the point(s) (x, y, z) [m] lie in the cylinder (z <= 0 is tissue)."""
        r2 = (x - self.center_m[0]) ** 2 + (y - self.center_m[1]) ** 2
        return (r2 <= self.radius_m**2) & (z <= 0.0) & (z >= -self.depth_m)


def placement_gap_m(zone: ExclusionZone, electrodes: Iterable[Electrode]) -> float:
    """Smallest gap [m] between the gel footprints (electrode outlines) and the zone's edge.

    The distance from the zone's centre to each footprint's outline (along the skin, on the flat
    map of a curved patch) less the zone's radius; negative when a footprint overlaps the zone
    (which :class:`emsim.models.case.Case` refuses). ``inf`` without electrodes.
    """
    cx, cy = zone.center_m
    gaps = [float(e.signed_distance(cx, cy)) - zone.radius_m for e in electrodes]
    return min(gaps, default=math.inf)
