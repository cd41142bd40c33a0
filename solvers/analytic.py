"""Closed-form solutions the electric solver is verified against (SI units).

Sources: Newman 1966 (J Electrochem Soc 113:501) for the equipotential disk on a half-space;
the grounded-plane correction is the leading term of the image series; layered media in series
for the 1-D column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

__all__ = [
    "disk_half_space_resistance",
    "disk_on_grounded_slab_resistance",
    "series_resistance",
]


def disk_half_space_resistance(sigma_S_per_m: float, radius_m: float) -> float:
    """Spreading resistance [ohm] of an equipotential disk on a half-space: R = 1/(4 sigma a)."""
    return 1.0 / (4.0 * sigma_S_per_m * radius_m)


def disk_on_grounded_slab_resistance(sigma_S_per_m: float, radius_m: float, depth_m: float) -> float:
    """Resistance [ohm] of an equipotential disk on a slab of depth D, grounded underneath.

    R = 1/(4 sigma a) - ln 2 / (2 pi sigma D): Newman's half-space value plus the leading term
    of the grounded-plane image series (alternating images at depths 2 n D), valid for a << D
    with error O((a/D)^3) relative.
    """
    return disk_half_space_resistance(sigma_S_per_m, radius_m) - math.log(2.0) / (
        2.0 * math.pi * sigma_S_per_m * depth_m
    )


def series_resistance(
    layers: Iterable[tuple[float, float]], area_m2: float, *, contact_ohm_m2: float = 0.0
) -> float:
    """Resistance [ohm] of layers in series under a uniform current: sum h_i/(sigma_i A) + r_c/A.

    Args:
        layers: (thickness [m], conductivity [S/m]) of each layer.
        area_m2: cross-section [m^2].
        contact_ohm_m2: specific contact resistance [ohm m^2].
    """
    return sum(h / s for h, s in layers) / area_m2 + contact_ohm_m2 / area_m2
