"""The eye rules of the device registry: pad placement against the zones, phosphenes at the retina.

Placement (POLICY, not a standard): no gel footprint within ``zone_min_distance_mm`` of an
exclusion zone's edge (default 10 mm, :data:`emsim.models.exclusion.DEFAULT_MIN_DISTANCE_M`; a
presets file's ``[limits] zone_min_distance_mm`` changes it). It is geometric: decided by the
electrode head, the same at every level and independent of the current, a device constant like
the open-circuit voltage (its largest safe current is inf when it holds, 0 when it fails; the
safety factor, a multiple of the current, does not move it), so a failure fails the export.

The rule's value is ``10 mm / gap`` (the default distance over the smallest gap) and its limit
``10 mm / zone_min_distance_mm`` (1 by default): value <= limit exactly when gap >= the required
distance, and it reads like every other value / limit of the registry (a gap of 0 or less, a pad
touching the zone, is refused earlier as an input error).

Phosphenes (DOSIMETRIC): the head's orbit zones (``kind = "orbit"``, a modelled globe) give the
retina's ICNIRP 2010 weighted-peak index over the population factor, the phosphene ratio
(:mod:`emsim.solvers.electric.exclusion`, :mod:`emsim.solvers.physiology.phosphene`): linear in the
current, so ``I_limit = I / ratio`` at the ratio's limit 1 and the headroom ``I_max_safe / I - 1``
follows as for every linear rule. Two registry entries read the same figure: ``phosphene``
(reported, limit 1: the value and the current at which phosphenes become likely) and
``phosphene_binding`` (a limit rule whose limit ``[limits] phosphene_ratio_max`` is inf by default,
so it decides nothing until a presets file sets it, e.g. to 1).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..models.exclusion import DEFAULT_MIN_DISTANCE_M, PLACEMENT_SOURCE

if TYPE_CHECKING:
    from .figures import FigureSet

__all__ = ["PHOSPHENE_SOURCE", "PLACEMENT_LIMIT_MM", "phosphene_absent", "phosphene_ratio_per_A", "placement_absent",
           "placement_ratio"]

#: What the phosphene rules are (their limit keys' source).
PHOSPHENE_SOURCE = (
    "dosimetric: the retina of the head's orbit zone (a modelled globe, models/data/orbit.toml), its field by the ICNIRP "
    "2010 weighted-peak method against the occupational CNS-of-the-head limit (Health Phys 99:818; about the "
    "phosphene threshold) over the 5th-percentile factor 0.337 of transcorneal phosphene thresholds (Naycheva et al. "
    "2012 IOVS 53:7440, 0.062 +- 0.038 mA, log-normal assumption); the ratio 1: phosphenes in about 1 person in 20"
)

#: The default of ``[limits] zone_min_distance_mm`` [mm] and what it is.
PLACEMENT_LIMIT_MM = (DEFAULT_MIN_DISTANCE_M * 1e3, "mm", PLACEMENT_SOURCE)


def placement_ratio(F: FigureSet) -> np.ndarray:
    """10 mm / smallest pad-to-zone gap per anatomy case, shape (anatomy,) (no zone: 0; no figure: NaN)."""
    gap = np.full(F.n, np.nan) if F.placement_gap_mm is None else np.asarray(F.placement_gap_mm, float)
    with np.errstate(divide="ignore"):
        # gap <= 0 (a pad touching or inside a zone) never passes; NaN (no figure) stays NaN
        return np.where(gap > 0, PLACEMENT_LIMIT_MM[0] / np.where(gap > 0, gap, 1.0), np.where(np.isnan(gap), np.nan, np.inf))


def placement_absent(F: FigureSet) -> str | None:
    """Why the placement rule cannot be evaluated for these figures, or None."""
    if F.placement_gap_mm is None:
        return "not evaluated: no placement figure in these figures (validate again)"
    gap = np.asarray(F.placement_gap_mm, float)
    if np.isnan(gap).any():
        return "not evaluated: no placement figure for some anatomy case (validate again)"
    if not np.isfinite(gap).any():
        return "not evaluated: the head case has no [[exclusion]] zone"
    return None


def phosphene_ratio_per_A(F: FigureSet) -> np.ndarray:
    """The phosphene ratio per A of peak current per anatomy case (NaN: no figure)."""
    return np.full(F.n, np.nan) if F.phosphene_ratio_per_A is None else np.asarray(F.phosphene_ratio_per_A, float)


def phosphene_absent(F: FigureSet) -> str | None:
    """Why the phosphene rules cannot be evaluated for these figures, or None."""
    if F.phosphene_ratio_per_A is None:
        return "not evaluated: no phosphene figure in these figures (validate again)"
    return F.phosphene_absent
