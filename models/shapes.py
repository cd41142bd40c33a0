"""Electrode footprints as objects: disk, rounded rectangle, ring and polygon, in the electrode's own frame.

A shape knows its size, nothing of where it sits: coordinates given to it are relative to the
electrode's centre, in metres, in the plane of the skin surface (for a curved patch: the
surface coordinates). Every caller asks the shape (:class:`Shape`) instead of testing its kind.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any, ClassVar, Protocol, cast, runtime_checkable

import numpy as np

from ..errors import InputError
from .quantity import check_fields, numbers_from_table, numbers_to_table, quantity

__all__ = ["SHAPES", "Disk", "Polygon", "Ring", "RoundedRectangle", "Shape", "shape_from_table"]


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

    def signed_distance[X: (float, np.ndarray)](self, x: X, y: X) -> X:
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

    def signed_distance[X: (float, np.ndarray)](self, x: X, y: X) -> X:
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

    def signed_distance[X: (float, np.ndarray)](self, x: X, y: X) -> X:
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


@dataclass(frozen=True, slots=True)
class Ring:
    """An annulus: the footprint between two concentric circles (a ring electrode).

    Attributes:
        outer_diameter_m: outer diameter [m] (case file ``outer_diameter_mm`` > 0).
        inner_diameter_m: inner diameter [m], below the outer (``inner_diameter_mm`` > 0).
    """

    kind: ClassVar[str] = "ring"
    outer_diameter_m: float = quantity("outer_diameter_mm", to_si=1e-3, low=0.01, low_open=False, high=1e3)
    inner_diameter_m: float = quantity("inner_diameter_mm", to_si=1e-3, low=0.01, low_open=False, high=1e3)

    def __post_init__(self) -> None:
        """Check the diameters and that the hole is inside the ring."""
        check_fields(self, "")
        if not self.inner_diameter_m < self.outer_diameter_m:
            raise InputError(
                "inner_diameter_mm", self.inner_diameter_m * 1e3,
                f"must be below outer_diameter_mm = {self.outer_diameter_m * 1e3:g}",
            )  # fmt: skip

    @property
    def area_m2(self) -> float:
        """Footprint area [m^2]."""
        return math.pi * (self.outer_diameter_m**2 - self.inner_diameter_m**2) / 4

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """Half extents (x, y) of the bounding box [m]."""
        return (self.outer_diameter_m / 2, self.outer_diameter_m / 2)

    def signed_distance[X: (float, np.ndarray)](self, x: X, y: X) -> X:
        """Distance [m] to the nearer circle, negative inside the annulus (numbers or arrays)."""
        r = np.hypot(x, y)
        return np.maximum(r - self.outer_diameter_m / 2, self.inner_diameter_m / 2 - r)

    def contains(self, x: float, y: float, *, tol: float = 0.0) -> bool:
        """True when (x, y) lies in the annulus grown by ``tol``."""
        return bool(self.signed_distance(x, y) <= tol)

    def outline(self, n: int = 240) -> np.ndarray:
        """(n, 2) points [m]: the outer circle counter-clockwise, then the inner one clockwise."""
        a = np.linspace(0.0, 2 * np.pi, n // 2, endpoint=False)
        outer = 0.5 * self.outer_diameter_m * np.column_stack([np.cos(a), np.sin(a)])
        inner = 0.5 * self.inner_diameter_m * np.column_stack([np.cos(-a), np.sin(-a)])
        return np.concatenate([outer, inner])

    def to_table(self) -> dict[str, Any]:
        """``shape = "ring"``, ``outer_diameter_mm`` and ``inner_diameter_mm``."""
        return {"shape": self.kind, **numbers_to_table(self)}


def _segments_cross(p: np.ndarray, q: np.ndarray, r: np.ndarray, s: np.ndarray) -> bool:
    """True when the closed segments pq and rs share a point."""

    def orient(a: np.ndarray, b: np.ndarray, c: np.ndarray) -> float:
        return float((b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0]))

    d1, d2, d3, d4 = orient(r, s, p), orient(r, s, q), orient(p, q, r), orient(p, q, s)
    if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and d1 * d2 != 0 and d3 * d4 != 0:
        return True

    def on(a: np.ndarray, b: np.ndarray, c: np.ndarray, d: float) -> bool:
        return d == 0 and min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])

    return on(r, s, p, d1) or on(r, s, q, d2) or on(p, q, r, d3) or on(p, q, s, d4)


@dataclass(frozen=True, slots=True)
class Polygon:
    """A simple polygon (no self-intersection), its vertices relative to the electrode's centre.

    Attributes:
        vertices_m: (x, y) of each vertex [m], counter-clockwise (case file ``vertices_mm``, a
            list of [x_mm, y_mm]; a clockwise list is reversed). At least 3, all distinct,
            edges at least 0.01 mm, no two non-adjacent edges touching.
    """

    kind: ClassVar[str] = "polygon"
    vertices_m: tuple[tuple[float, float], ...] = ()

    def __post_init__(self) -> None:
        """Check the vertices: enough, finite, edges long enough, no self-intersection."""
        v = self.vertices_m
        if len(v) < 3 or not all(len(p) == 2 and all(math.isfinite(c) for c in p) for p in v):
            raise InputError("vertices_mm", [list(p) for p in v], "at least 3 finite points [x_mm, y_mm]")
        p = np.asarray(v, dtype=float)
        q = np.roll(p, -1, axis=0)
        if np.min(np.linalg.norm(q - p, axis=1)) < 1e-5:
            raise InputError("vertices_mm", (p * 1e3).tolist(), "edges at least 0.01 mm long (distinct vertices)")
        n = len(p)
        for i in range(n):
            for j in range(i + 1, n):
                if j == i + 1 or (i == 0 and j == n - 1):
                    continue  # adjacent edges share a vertex
                if _segments_cross(p[i], q[i], p[j], q[j]):
                    raise InputError(
                        "vertices_mm", (p * 1e3).tolist(), f"a simple polygon: edges {i} and {j} cross or touch"
                    )
        if self._signed_area() < 0:
            object.__setattr__(self, "vertices_m", tuple(reversed(v)))

    def _signed_area(self) -> float:
        p = np.asarray(self.vertices_m, dtype=float)
        q = np.roll(p, -1, axis=0)
        return 0.5 * float(np.sum(p[:, 0] * q[:, 1] - q[:, 0] * p[:, 1]))

    @classmethod
    def from_table(cls, table: dict[str, Any], where: str) -> Polygon:
        """The polygon of a table's ``vertices_mm``."""
        raw = table.get("vertices_mm")
        if not isinstance(raw, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in p)
            for p in raw
        ):
            raise InputError(f"{where}.vertices_mm", raw, "a list of at least 3 points [x_mm, y_mm]")
        return cls(vertices_m=tuple((1e-3 * float(x), 1e-3 * float(y)) for x, y in raw))

    @property
    def area_m2(self) -> float:
        """Footprint area [m^2] (shoelace formula)."""
        return abs(self._signed_area())

    @property
    def half_extent_m(self) -> tuple[float, float]:
        """Half extents (x, y) of the smallest box centred on the electrode's centre [m]."""
        p = np.abs(np.asarray(self.vertices_m, dtype=float))
        return (float(p[:, 0].max()), float(p[:, 1].max()))

    def signed_distance[X: (float, np.ndarray)](self, x: X, y: X) -> X:
        """Exact distance [m] to the outline, negative inside (even-odd rule; numbers or arrays)."""
        xa, ya = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        p = np.asarray(self.vertices_m, dtype=float)
        q = np.roll(p, -1, axis=0)
        d = np.full(np.broadcast(xa, ya).shape, np.inf)
        inside = np.zeros(d.shape, dtype=bool)
        for (ax, ay), (bx, by) in zip(p, q, strict=True):
            ex, ey = bx - ax, by - ay
            t = np.clip(((xa - ax) * ex + (ya - ay) * ey) / (ex * ex + ey * ey), 0.0, 1.0)
            d = np.minimum(d, np.hypot(xa - ax - t * ex, ya - ay - t * ey))
            crosses = (ay > ya) != (by > ya)
            with np.errstate(divide="ignore", invalid="ignore"):
                xc = ax + (ya - ay) * ex / np.where(ey == 0, 1.0, ey)
            inside ^= crosses & (xa < xc)
        out = np.where(inside, -d, d)
        return cast(X, out if out.ndim else float(out))  # the type of the arguments

    def contains(self, x: float, y: float, *, tol: float = 0.0) -> bool:
        """True when (x, y) lies in the polygon grown by ``tol``."""
        return bool(self.signed_distance(x, y) <= tol)

    def outline(self, n: int = 240) -> np.ndarray:
        """(about n, 2) points [m] along the edges, counter-clockwise, the vertices included."""
        p = np.asarray(self.vertices_m, dtype=float)
        q = np.roll(p, -1, axis=0)
        per = max(n // len(p), 1)
        t = np.linspace(0.0, 1.0, per, endpoint=False)[:, None]
        return np.concatenate([a + t * (b - a) for a, b in zip(p, q, strict=True)])

    def to_table(self) -> dict[str, Any]:
        """``shape = "polygon"`` and ``vertices_mm``."""
        return {"shape": self.kind, "vertices_mm": [[round(x * 1e3, 9), round(y * 1e3, 9)] for x, y in self.vertices_m]}


#: Shape classes by their case-file name.
SHAPES: dict[str, type] = {cls.kind: cls for cls in (Disk, RoundedRectangle, Ring, Polygon)}


def shape_from_table(table: dict[str, Any], where: str) -> Shape:
    """The footprint from an ``[[electrode]]`` table's ``shape`` and size keys.

    Keys of another shape are an error (a disk takes ``diameter_mm`` only).
    """
    kind = table.get("shape", "disk")
    if kind not in SHAPES:
        raise InputError(f"{where}.shape", kind, f"one of {', '.join(SHAPES)}")
    cls = SHAPES[kind]

    def keys(c: Any) -> set[str]:
        if c is Polygon:
            return {"vertices_mm"}
        return {f.metadata["quantity"].key for f in fields(c) if "quantity" in f.metadata}

    own = keys(cls)
    other = {k for c in SHAPES.values() if c is not cls for k in keys(c)} - own
    for key in sorted(other):
        if key in table:
            raise InputError(f"{where}.{key}", table[key], f"not a {kind} key; a {kind} takes {', '.join(sorted(own))}")
    if cls is Polygon:
        try:
            return Polygon.from_table(table, where)
        except InputError as err:
            raise InputError(err.field if err.field.startswith(where) else f"{where}.{err.field}", err.value, err.allowed) from None
    kwargs = numbers_from_table(cls, table, where)
    for f in fields(cls):
        name = f.name
        if "quantity" in f.metadata and f.default is MISSING and name not in kwargs:
            raise InputError(f"{where}.{f.metadata['quantity'].key}", None, "missing; a number is required")
    try:
        return cls(**kwargs)
    except InputError as err:
        raise InputError(f"{where}.{err.field}", err.value, err.allowed) from None

