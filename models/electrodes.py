"""Electrodes, their gel pads and skin contacts, and the channels that drive them.

All lengths are metres, resistances per area ohm m^2, capacitances per area F/m^2 (SI);
case files use mm, ohm cm^2, uF/cm^2 and mA, converted on parsing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..errors import InputError
from .tissues import Tissue

__all__ = ["GROUND", "SHAPES", "Channel", "Contact", "Electrode", "GelPad"]

#: Shapes an electrode may have.
SHAPES = ("disk", "rectangle")
#: Cathode name meaning "the deep (bottom) face of the patch is grounded".
GROUND = "ground"

#: Specific capacitance [F/m^2] of a skin contact whose case gives none: 0.0155 uF/cm^2.
#: Source: a series R_s + (R || C) fit to the one measured electrode-skin impedance in
#: shared/PHYSICS.md (carbon rubber with pre-gel, 12.6 cm^2: |Z| = 76 ohm at -55 deg, 12 kHz;
#: 26 ohm at -14 deg, 296 kHz), giving C = 195 nF over 12.6 cm^2 (R = 2.9 kohm cm^2, time
#: constant 45 us). One electrode and one measurement: UNVERIFIED for facial hydrogel pads.
#: It only matters for waveform (frequency-domain) responses; d.c. solves ignore it.
DEFAULT_CONTACT_CAPACITANCE_F_PER_M2 = 0.0155e-2


@dataclass(frozen=True, slots=True)
class Contact:
    """The skin contact (stratum corneum) as a thin-layer impedance per area.

    Attributes:
        resistance_ohm_m2: specific contact resistance r_c [ohm m^2] (1 ohm cm^2 = 1e-4 ohm m^2).
        capacitance_F_per_m2: specific contact capacitance c_c [F/m^2], or None (purely
            resistive; 1 uF/cm^2 = 1e-2 F/m^2). Case files default to
            :data:`DEFAULT_CONTACT_CAPACITANCE_F_PER_M2`; 0 there means purely resistive.
    """

    resistance_ohm_m2: float
    capacitance_F_per_m2: float | None = None

    def __post_init__(self) -> None:
        """Check both values are positive."""
        r = self.resistance_ohm_m2
        if not (math.isfinite(r) and r > 0):
            raise InputError("contact.resistance_ohm_cm2", r * 1e4, "must be > 0")
        c = self.capacitance_F_per_m2
        if c is not None and not (math.isfinite(c) and c > 0):
            raise InputError("contact.capacitance_uF_per_cm2", c * 1e2, "must be > 0")


@dataclass(frozen=True, slots=True)
class GelPad:
    """A conductive gel pad between the electrode and the skin, with the electrode's footprint.

    Attributes:
        material: the gel's material.
        thickness_m: pad thickness [m].
    """

    material: Tissue
    thickness_m: float

    def __post_init__(self) -> None:
        """Check the thickness is positive."""
        if not (math.isfinite(self.thickness_m) and self.thickness_m > 0):
            raise InputError("gel.thickness_mm", self.thickness_m * 1e3, "must be > 0")


@dataclass(frozen=True, slots=True)
class Electrode:
    """An equipotential metal electrode on the skin, optionally behind a gel pad.

    Attributes:
        name: unique name within a case.
        shape: ``"disk"`` or ``"rectangle"`` (rounded by ``corner_radius_m``).
        center_m: (x, y) of the centre on the skin surface [m].
        diameter_m: disk diameter [m] (disk only).
        width_m: extent along x [m] (rectangle only).
        length_m: extent along y [m] (rectangle only).
        corner_radius_m: rectangle corner radius [m].
        gel: gel pad, or None for an electrode directly on the skin.
        contact: skin contact impedance, or None for an ideal contact.
    """

    name: str
    shape: str
    center_m: tuple[float, float]
    diameter_m: float = 0.0
    width_m: float = 0.0
    length_m: float = 0.0
    corner_radius_m: float = 0.0
    gel: GelPad | None = None
    contact: Contact | None = None

    def __post_init__(self) -> None:
        """Check shape and sizes."""
        f = f"electrode[{self.name}]"
        if self.shape not in SHAPES:
            raise InputError(f"{f}.shape", self.shape, f"one of {', '.join(SHAPES)}")
        if self.shape == "disk":
            if not (math.isfinite(self.diameter_m) and self.diameter_m > 0):
                raise InputError(f"{f}.diameter_mm", self.diameter_m * 1e3, "must be > 0")
        else:
            for key in ("width_m", "length_m"):
                v = getattr(self, key)
                if not (math.isfinite(v) and v > 0):
                    raise InputError(f"{f}.{key[:-2]}_mm", v * 1e3, "must be > 0")
            r = self.corner_radius_m
            if not (math.isfinite(r) and 0 <= r <= 0.5 * min(self.width_m, self.length_m)):
                raise InputError(
                    f"{f}.corner_radius_mm", r * 1e3, "must be in [0, min(width, length)/2]"
                )

    @property
    def area_m2(self) -> float:
        """Footprint area [m^2] (exact for the rounded rectangle)."""
        if self.shape == "disk":
            return math.pi * self.diameter_m**2 / 4
        r = self.corner_radius_m
        return self.width_m * self.length_m - (4 - math.pi) * r * r

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """Half extents (x, y) of the footprint's bounding box [m]."""
        if self.shape == "disk":
            return (self.diameter_m / 2, self.diameter_m / 2)
        return (self.width_m / 2, self.length_m / 2)

    def contains(self, x: float, y: float, *, tol: float = 0.0) -> bool:
        """True when the point (x, y) [m] lies in the footprint (grown by ``tol``)."""
        dx, dy = abs(x - self.center_m[0]), abs(y - self.center_m[1])
        if self.shape == "disk":
            return math.hypot(dx, dy) <= self.diameter_m / 2 + tol
        hx, hy = self.half_extent_m
        r = self.corner_radius_m
        if dx > hx + tol or dy > hy + tol:
            return False
        qx, qy = dx - (hx - r), dy - (hy - r)
        if qx > 0 and qy > 0:
            return math.hypot(qx, qy) <= r + tol
        return True

    def distance_to_outline(self, other: Electrode) -> float:
        """Conservative gap [m] between two footprints (negative when they overlap).

        Exact for two disks; for rectangles uses the bounding boxes, which is conservative
        (reports overlap when the boxes overlap).
        """
        (ax, ay), (bx, by) = self.center_m, other.center_m
        if self.shape == "disk" and other.shape == "disk":
            return math.hypot(ax - bx, ay - by) - (self.diameter_m + other.diameter_m) / 2
        (ahx, ahy), (bhx, bhy) = self.half_extent_m, other.half_extent_m
        gx = abs(ax - bx) - ahx - bhx
        gy = abs(ay - by) - ahy - bhy
        if gx > 0 or gy > 0:
            return math.hypot(max(gx, 0.0), max(gy, 0.0))
        return max(gx, gy)


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
    current_A: float

    def __post_init__(self) -> None:
        """Check terminals and current."""
        f = f"channel[{self.name}]"
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
        if not (math.isfinite(self.current_A) and self.current_A > 0):
            raise InputError(f"{f}.current_mA", self.current_A * 1e3, "must be > 0")

    @property
    def grounded(self) -> bool:
        """True when the return is the grounded deep face."""
        return self.cathode == (GROUND,)
