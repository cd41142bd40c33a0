r"""Curved patches: the flat tagged mesh mapped onto a cylinder or a sphere.

The patch is built flat (skin z = 0, tissue below, pads above; :mod:`emsim.meshes.patch`) and
its node coordinates are then mapped, so every tag survives and layers, pads and electrodes
follow the curved skin. In the flat coordinates (x, y, z), x and y are arc lengths along the
skin and -z the depth below it (z > 0: height above it, in a pad):

* cylinder of radius R, axis along y through (0, 0, -R): theta = x / R, rho = R + z,
  X = rho sin(theta), Y = y, Z = rho cos(theta) - R. The skin (rho = R) is mapped isometrically
  (a cylinder is developable): footprint areas, arc lengths and layer thicknesses are exact.
* sphere of radius R centred at (0, 0, -R), azimuthal-equidistant: polar angle
  alpha = sqrt(x^2 + y^2) / R, azimuth atan2(y, x), rho = R + z. Distances from the patch
  centre along the skin and layer thicknesses are exact; a footprint's area shrinks by
  sin(alpha) / alpha (at most 1 - alpha^2 / 6).

The local frame at a point is the rotation Q that takes the flat axes to the curved ones,
Q = I + [v]x + [v]x^2 / (1 + c) with n the outward radial unit vector, v = e_z x n and
c = e_z . n (Rodrigues' formula for the rotation taking e_z to n about e_z x n). For the
cylinder Q is the rotation about y by theta, so Q e_x is the tangent along the arc; for the
sphere Q transports the flat axes along the great circle from the patch centre. Anything
given in flat axes (the contact sublayer's normal, muscle fibres) is rotated with it:
a tensor S becomes Q S Q^T, a direction f becomes Q f.

The case checks the map (:class:`emsim.models.Patch`, :class:`emsim.models.Case`): the patch
half-extent over R must stay at or below ``MAX_HALF_ANGLE_RAD`` (well below pi / 2, where the
patch would fold over) and the tissue depth below ``MAX_DEPTH_FRACTION`` of R (the centre of
curvature must lie below the deepest layer).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import ufl

__all__ = ["SurfaceMap", "surface_map"]

@dataclass(frozen=True, slots=True)
class SurfaceMap:
    """The map of a flat patch onto a cylinder or a sphere (see the module doc).

    Attributes:
        shape: ``"cylinder"`` or ``"sphere"``.
        radius_m: radius of the skin surface [m].
    """

    shape: str
    radius_m: float

    def to_curved(self, flat_m: Any) -> np.ndarray:
        """(n, 3) curved coordinates [m] of flat points (x, y along the skin, z up)."""
        p = np.asarray(flat_m, dtype=float).reshape(-1, 3)
        R = self.radius_m
        x, y, z = p[:, 0], p[:, 1], p[:, 2]
        rho = R + z
        if self.shape == "cylinder":
            t = x / R
            return np.column_stack([rho * np.sin(t), y, rho * np.cos(t) - R])
        r = np.hypot(x, y)
        a = r / R
        # sin(a) / r without 0 / 0 at the centre: sin(a) / a / R.
        s = np.where(r > 0, np.sin(a) / np.where(r > 0, r, 1.0), 1.0 / R)
        return np.column_stack([rho * s * x, rho * s * y, rho * np.cos(a) - R])

    def to_flat(self, curved_m: Any) -> np.ndarray:
        """(n, 3) flat coordinates [m] of curved points (the inverse of :meth:`to_curved`)."""
        p = np.asarray(curved_m, dtype=float).reshape(-1, 3)
        R = self.radius_m
        X, Y, Z = p[:, 0], p[:, 1], p[:, 2] + R
        if self.shape == "cylinder":
            rho = np.hypot(X, Z)
            return np.column_stack([R * np.arctan2(X, Z), Y, rho - R])
        rho = np.sqrt(X**2 + Y**2 + Z**2)
        q = np.hypot(X, Y)
        a = np.arctan2(q, Z)
        s = np.where(q > 0, R * a / np.where(q > 0, q, 1.0), R / np.where(rho > 0, rho, 1.0))
        return np.column_stack([s * X, s * Y, rho - R])

    def normals(self, curved_m: Any) -> np.ndarray:
        """(n, 3) outward unit normals of the surfaces rho = const through curved points."""
        p = np.asarray(curved_m, dtype=float).reshape(-1, 3)
        d = np.column_stack([p[:, 0], p[:, 1] if self.shape == "sphere" else 0 * p[:, 1], p[:, 2] + self.radius_m])
        return d / np.linalg.norm(d, axis=1)[:, None]

    def frames(self, curved_m: Any) -> np.ndarray:
        """(n, 3, 3) rotations Q taking the flat axes to the local curved ones at curved points."""
        n = self.normals(curved_m)
        c = n[:, 2]
        K = np.zeros((len(n), 3, 3))
        # v = e_z x n = (-n_y, n_x, 0); K = [v]x.
        K[:, 0, 2], K[:, 2, 0] = n[:, 0], -n[:, 0]
        K[:, 1, 2], K[:, 2, 1] = n[:, 1], -n[:, 1]
        return np.eye(3)[None] + K + (K @ K) / (1.0 + c)[:, None, None]

    def frame_ufl(self, x: Any) -> Any:
        """The same rotation Q as a UFL 3x3 expression of the spatial coordinate ``x``."""
        R = self.radius_m
        ny_raw = x[1] if self.shape == "sphere" else 0.0 * x[1]
        length = ufl.sqrt(x[0] ** 2 + ny_raw**2 + (x[2] + R) ** 2)
        nx, ny, c = x[0] / length, ny_raw / length, (x[2] + R) / length
        K = ufl.as_matrix([[0.0, 0.0, nx], [0.0, 0.0, ny], [-nx, -ny, 0.0]])
        return ufl.Identity(3) + K + ufl.dot(K, K) / (1.0 + c)

    def skin_area_factor(self, flat_xy_m: Any) -> np.ndarray:
        """Area of the curved skin per flat area at flat points (1 on a cylinder)."""
        p = np.asarray(flat_xy_m, dtype=float).reshape(-1, 2)
        if self.shape == "cylinder":
            return np.ones(len(p))
        a = np.hypot(p[:, 0], p[:, 1]) / self.radius_m
        return np.where(a > 0, np.sin(a) / np.where(a > 0, a, 1.0), 1.0)


def surface_map(shape: str, radius_m: float | None) -> SurfaceMap | None:
    """The map of a patch shape, or None for a flat patch."""
    if shape == "flat" or radius_m is None:
        return None
    return SurfaceMap(shape, float(radius_m))


