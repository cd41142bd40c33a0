"""Electrodes, their gel pads and skin contacts, and the channels that drive them.

All lengths are metres, resistances per area ohm m^2, capacitances per area F/m^2 (SI);
case files use mm, ohm cm^2, uF/cm^2 and mA, converted on parsing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from .quantity import check_fields, quantity
from .shapes import SHAPES, Shape
from .tissues import Tissue

__all__ = ["GROUND", "Channel", "Contact", "Electrode", "GelPad"]

#: Cathode name meaning "the deep (bottom) face of the patch is grounded".
GROUND = "ground"

#: Specific capacitance [F/m^2] of a skin contact whose case gives none: 0.0155 uF/cm^2.
#: Source: a series R_s + (R || C) fit to the one measured electrode-skin impedance in
#: the project's reference data (carbon rubber with pre-gel, 12.6 cm^2: |Z| = 76 ohm at -55 deg, 12 kHz;
#: 26 ohm at -14 deg, 296 kHz), giving C = 195 nF over 12.6 cm^2 (R = 2.9 kohm cm^2, time
#: constant 45 us). One electrode and one measurement: UNVERIFIED for facial hydrogel pads.
#: It only matters for waveform (frequency-domain) responses; d.c. solves ignore it.
DEFAULT_CONTACT_CAPACITANCE_F_PER_M2 = 0.0155e-2


@dataclass(frozen=True, slots=True)
class Contact:
    """The skin contact (stratum corneum) as a thin-layer impedance per area.

    Attributes:
        resistance_ohm_m2: specific contact resistance r_c [ohm m^2] (case file
            ``resistance_ohm_cm2`` > 0; 1 ohm cm^2 = 1e-4 ohm m^2).
        capacitance_F_per_m2: specific contact capacitance c_c [F/m^2], or None (purely
            resistive; case file ``capacitance_uF_per_cm2``, 1 uF/cm^2 = 1e-2 F/m^2). Case files
            default to :data:`DEFAULT_CONTACT_CAPACITANCE_F_PER_M2`; 0 there means purely resistive.
    """

    resistance_ohm_m2: float = quantity("resistance_ohm_cm2", to_si=1e-4, low=0.0, high=1e7)
    capacitance_F_per_m2: float | None = quantity("capacitance_uF_per_cm2", to_si=1e-2, low=0.0, high=1e4, default=None)

    def __post_init__(self) -> None:
        """Check both values are positive."""
        check_fields(self, "contact")


@dataclass(frozen=True, slots=True)
class GelPad:
    """A conductive gel pad between the electrode and the skin, with the electrode's footprint.

    Attributes:
        material: the gel's material.
        thickness_m: pad thickness [m] (case file ``thickness_mm`` > 0).
    """

    material: Tissue
    thickness_m: float = quantity("thickness_mm", to_si=1e-3, low=0.01, low_open=False, high=1000.0)

    def __post_init__(self) -> None:
        """Check the thickness is positive."""
        check_fields(self, "gel")


@dataclass(frozen=True, slots=True)
class Electrode:
    """An equipotential metal electrode on the skin, optionally behind a gel pad.

    Attributes:
        name: unique name within a case.
        shape: the footprint (:class:`~emsim.models.shapes.Disk`,
            :class:`~emsim.models.shapes.RoundedRectangle`), in the electrode's own frame.
        center_m: (x, y) of the centre on the skin surface [m].
        gel: gel pad, or None for an electrode directly on the skin.
        contact: skin contact impedance, or None for an ideal contact.
    """

    name: str
    shape: Shape
    center_m: tuple[float, float]
    gel: GelPad | None = None
    contact: Contact | None = None

    def __post_init__(self) -> None:
        """Check the name, the shape and the centre."""
        if not isinstance(self.name, str) or not self.name.strip() or self.name == GROUND:
            raise InputError("electrode.name", self.name, "a non-empty name other than 'ground'")
        if not isinstance(self.shape, Shape):
            raise InputError(f"electrode[{self.name}].shape", self.shape, f"one of {', '.join(SHAPES)}")
        c = self.center_m
        if len(c) != 2 or not all(isinstance(v, (int, float)) and math.isfinite(v) for v in c):
            raise InputError(f"electrode[{self.name}].center_mm", c, "two finite numbers [x_mm, y_mm]")

    @property
    def area_m2(self) -> float:
        """Footprint area [m^2]."""
        return self.shape.area_m2

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """Half extents (x, y) of the footprint's bounding box [m]."""
        return self.shape.half_extent_m

    def signed_distance[X: (float, np.ndarray)](self, x: X, y: X) -> X:
        """Distance [m] from the surface point (x, y) to the outline, negative inside (arrays too)."""
        return self.shape.signed_distance(x - self.center_m[0], y - self.center_m[1])

    def contains(self, x: float, y: float, *, tol: float = 0.0) -> bool:
        """True when the point (x, y) [m] lies in the footprint (grown by ``tol``)."""
        return self.shape.contains(x - self.center_m[0], y - self.center_m[1], tol=tol)

    def outline_m(self, n: int = 240) -> np.ndarray:
        """(n, 2) points [m] along the outline, in patch coordinates."""
        return self.shape.outline(n) + np.asarray(self.center_m)

    def distance_to_outline(self, other: Electrode) -> float:
        """Gap [m] between two footprints, negative when they overlap.

        The smaller of the signed distances from each outline (sampled at 0.5 degree steps) to
        the other shape: the gap when apart, negative when the outlines cross or one footprint
        holds the other. The sampling overestimates a gap by at most about 1e-5 of the footprint's
        size (a chord 0.25 degrees off the closest point).
        """
        a, b = other.outline_m(720), self.outline_m(720)
        return float(min(self.signed_distance(a[:, 0], a[:, 1]).min(), other.signed_distance(b[:, 0], b[:, 1]).min()))


@dataclass(frozen=True, slots=True)
class Channel:
    """A current-controlled stimulator output.

    Attributes:
        name: channel name.
        anode: names of the electrodes tied to the output's positive terminal.
        cathode: names of the electrodes tied to the return terminal, or ``("ground",)``:
            the deep (bottom) face of the patch is the return (verification set-ups).
        current_A: the output's current amplitude [A] (peak of the pulse for a waveform).
    """

    name: str
    anode: tuple[str, ...]
    cathode: tuple[str, ...]
    current_A: float = quantity("current_mA", to_si=1e-3, low=0.0, high=1000.0)

    def __post_init__(self) -> None:
        """Check terminals and current."""
        f = f"channel[{self.name}]"
        check_fields(self, f)
        if not self.anode:
            raise InputError(f"{f}.anode", list(self.anode), "name at least one electrode")
        if not self.cathode:
            raise InputError(f"{f}.cathode", list(self.cathode), "name an electrode or 'ground'")
        if GROUND in self.anode:
            raise InputError(f"{f}.anode", GROUND, "the anode must be an electrode")
        if GROUND in self.cathode and len(self.cathode) > 1:
            raise InputError(f"{f}.cathode", list(self.cathode), "'ground' stands alone")
        both = set(self.anode) & set(self.cathode)
        if both:
            raise InputError(f"{f}.cathode", sorted(both), "an electrode cannot be anode and cathode")

    @property
    def grounded(self) -> bool:
        """True when the return is the grounded deep face."""
        return self.cathode == (GROUND,)
