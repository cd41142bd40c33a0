"""Electrode footprints as objects: a disk and a rounded rectangle, in the electrode's own frame.

A shape knows its size, nothing of where it sits: coordinates given to it are relative to the
electrode's centre, in metres, in the plane of the skin surface (for a curved patch: the
surface coordinates). Every caller asks the shape (:class:`Shape`) instead of testing its kind.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from ..errors import InputError
from .quantity import check_fields, numbers_from_table, numbers_to_table, quantity

__all__ = ["SHAPES", "Disk", "RoundedRectangle", "Shape", "shape_from_table"]


@runtime_checkable
class Shape(Protocol):
    """What every footprint answers (lengths in metres, relative to the centre)."""

    kind: ClassVar[str]

    @property
    def area_m2(self) -> float:
        """Footprint area [m^2]."""

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """Half extents (x, y) of the bounding box [m]."""

    def signed_distance(self, x: Any, y: Any) -> Any:
        """Distance [m] from (x, y) to the outline, negative inside (numbers or arrays)."""

    def contains(self, x: float, y: float, *, tol: float = 0.0) -> bool:
        """True when (x, y) lies in the footprint grown by ``tol`` [m]."""

    def outline(self, n: int = 240) -> np.ndarray:
        """(n, 2) points [m] along the outline, counter-clockwise."""

    def to_table(self) -> dict[str, Any]:
        """The case-file keys of the shape (``shape`` and its sizes)."""


@dataclass(frozen=True, slots=True)
class Disk:
    """A circular footprint.

    Attributes:
        diameter_m: diameter [m] (case file: ``diameter_mm`` > 0).
    """

    kind: ClassVar[str] = "disk"
    diameter_m: float = quantity("diameter_mm", to_si=1e-3, low=0.01, low_open=False, high=1e3)

    def __post_init__(self) -> None:
        """Check the diameter."""
        check_fields(self, "")

    @property
    def area_m2(self) -> float:
        """Footprint area [m^2]."""
        return math.pi * self.diameter_m**2 / 4

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """Half extents (x, y) of the bounding box [m]."""
        return (self.diameter_m / 2, self.diameter_m / 2)

    def signed_distance(self, x: Any, y: Any) -> Any:
        """Distance [m] from (x, y) to the circle, negative inside (numbers or arrays)."""
        return np.hypot(x, y) - self.diameter_m / 2

    def contains(self, x: float, y: float, *, tol: float = 0.0) -> bool:
        """True when (x, y) lies in the disk grown by ``tol``."""
        return bool(self.signed_distance(x, y) <= tol)

    def outline(self, n: int = 240) -> np.ndarray:
        """(n, 2) points [m] on the circle."""
        a = np.linspace(0.0, 2 * np.pi, n, endpoint=False)
        return 0.5 * self.diameter_m * np.column_stack([np.cos(a), np.sin(a)])

    def to_table(self) -> dict[str, Any]:
        """``shape = "disk"`` and ``diameter_mm``."""
        return {"shape": self.kind, **numbers_to_table(self)}


@dataclass(frozen=True, slots=True)
class RoundedRectangle:
    """A rectangle with rounded corners (radius 0: sharp).

    Attributes:
        width_m: extent along x [m] (case file ``width_mm`` > 0).
        length_m: extent along y [m] (case file ``length_mm`` > 0).
        corner_radius_m: corner radius [m], 0 to half the shorter side (``corner_radius_mm``).
    """

    kind: ClassVar[str] = "rectangle"
    width_m: float = quantity("width_mm", to_si=1e-3, low=0.01, low_open=False, high=1e3)
    length_m: float = quantity("length_mm", to_si=1e-3, low=0.01, low_open=False, high=1e3)
    corner_radius_m: float = quantity("corner_radius_mm", to_si=1e-3, low=0.0, low_open=False, default=0.0)

    def __post_init__(self) -> None:
        """Check the sizes and that the corners fit."""
        check_fields(self, "")
        if self.corner_radius_m > 0.5 * min(self.width_m, self.length_m) * (1 + 1e-12):
            raise InputError(
                "corner_radius_mm", self.corner_radius_m * 1e3, "must be in [0, min(width, length)/2]"
            )

    @property
    def area_m2(self) -> float:
        """Footprint area [m^2] (exact with the rounded corners)."""
        r = self.corner_radius_m
        return self.width_m * self.length_m - (4 - math.pi) * r * r

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """Half extents (x, y) [m]."""
        return (self.width_m / 2, self.length_m / 2)

    def signed_distance(self, x: Any, y: Any) -> Any:
        """Exact distance [m] to the rounded outline, negative inside (numbers or arrays)."""
        hx, hy = self.half_extent_m
        r = self.corner_radius_m
        qx, qy = np.abs(x) - (hx - r), np.abs(y) - (hy - r)
        outside = np.hypot(np.maximum(qx, 0.0), np.maximum(qy, 0.0))
        return outside + np.minimum(np.maximum(qx, qy), 0.0) - r

    def contains(self, x: float, y: float, *, tol: float = 0.0) -> bool:
        """True when (x, y) lies in the footprint grown by ``tol``."""
        return bool(self.signed_distance(x, y) <= tol)

    def outline(self, n: int = 240) -> np.ndarray:
        """(about n, 2) points [m] along the outline, corners sampled on their arcs."""
        hx, hy = self.half_extent_m
        r = self.corner_radius_m
        per = max(n // 4, 2)
        pts = []
        for cx, cy, a0 in ((hx - r, hy - r, 0.0), (-hx + r, hy - r, 0.5), (-hx + r, -hy + r, 1.0), (hx - r, -hy + r, 1.5)):
            a = np.pi * (a0 + np.linspace(0.0, 0.5, per))
            pts.append(np.column_stack([cx + r * np.cos(a), cy + r * np.sin(a)]))
        return np.concatenate(pts)

    def to_table(self) -> dict[str, Any]:
        """``shape = "rectangle"``, ``width_mm``, ``length_mm``, ``corner_radius_mm``."""
        return {"shape": self.kind, **numbers_to_table(self)}


#: Shape classes by their case-file name.
SHAPES: dict[str, type[Disk | RoundedRectangle]] = {cls.kind: cls for cls in (Disk, RoundedRectangle)}


def shape_from_table(table: dict[str, Any], where: str) -> Shape:
    """The footprint from an ``[[electrode]]`` table's ``shape`` and size keys.

    Keys of another shape are an error (a disk takes ``diameter_mm`` only).
    """
    kind = table.get("shape", "disk")
    if kind not in SHAPES:
        raise InputError(f"{where}.shape", kind, f"one of {', '.join(SHAPES)}")
    cls = SHAPES[kind]
    own = {spec.metadata["quantity"].key for spec in fields(cls) if "quantity" in spec.metadata}
    other = {
        f.metadata["quantity"].key
        for c in SHAPES.values()
        if c is not cls
        for f in fields(c)
        if "quantity" in f.metadata
    } - own
    for key in sorted(other):
        if key in table:
            raise InputError(f"{where}.{key}", table[key], f"not a {kind} key; a {kind} takes {', '.join(sorted(own))}")
    kwargs = numbers_from_table(cls, table, where)
    for f in fields(cls):
        name = f.name
        if "quantity" in f.metadata and f.default is MISSING and name not in kwargs:
            raise InputError(f"{where}.{f.metadata['quantity'].key}", None, "missing; a number is required")
    try:
        return cls(**kwargs)
    except InputError as err:
        raise InputError(f"{where}.{err.field}", err.value, err.allowed) from None

