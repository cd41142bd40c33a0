r"""Conductivity (admittivity) tensors of every tagged volume of a case.

* Tissues: the effective conductivity at a frequency (real), or the complex admittivity
  sigma* = j w eps0 eps*(w) of the Gabriel 1996 Cole-Cole model; constant-conductivity materials
  are real at every frequency. Anisotropic layers split it about its geometric mean, along
  sigma sqrt(r(f)), across sigma / sqrt(r(f)) (:meth:`emsim.models.case.Layer.conductivity_tensor`).
* Gel pads without a contact impedance: the gel's (isotropic) value.
* A gel pad of thickness t over a contact impedance is split in two (``emsim.meshes.patch``):
  the lower *contact sublayer* of thickness h carries gel and stratum corneum in series along
  the pad's normal n, sigma_n = h / (h / sigma_gel + 1 / y_c) with y_c = 1 / r_c (+ j w c_c when
  complex), and conducts only across: the stratum corneum is an interface, so no current may
  run sideways beneath it (a sideways path at the gel's conductivity would lay a sheet as
  conductive as the skin on a thick saline sponge). Its sideways value is
  :data:`SUBLAYER_SIDEWAYS_FRACTION` x sigma_n, negligible yet keeping the matrix well
  conditioned. The gel above it carries the whole pad's sideways spreading: sigma_gel along n,
  sigma_gel t / (t - h) across. So the normal resistance per area (t / sigma_gel + r_c) and the
  gel's sideways sheet conductance (sigma_gel t) are both exact, and the contact acts as the
  interface condition S grad phi . n = y_c (phi_gel - phi_skin) of a true contact.

The pad normal comes from the mesh (:func:`pad_normals`: the mean unit normal of the skin facets
under the pad, pointing into the pad), not from an assumed flat skin.

On a curved patch (:mod:`emsim.meshes.curvature`) every tensor is given in the local frame of
the flat patch (pad normal +z, muscle fibres in flat axes) and rotated point by point,
S(x) = Q(x) S Q(x)^T with Q the local frame at x: in the forms as a UFL expression
(:func:`form_tensor`), per cell at its centroid in post-processing (:func:`cell_tensors`). So a
contact sublayer conducts across the curved pad everywhere, not only along its mean normal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt
import ufl
from dolfinx import mesh as dmesh

from ...meshes.patch import PatchMesh, contact_sublayer_fraction
from ...models.case import Case
from ...models.dispersion import GABRIEL_1996
from ...models.orbit import globe_tissues
from ...models.tissues import Tissue

__all__ = [
    "SUBLAYER_SIDEWAYS_FRACTION",
    "cell_tensors",
    "conductivity_summary",
    "form_metadata",
    "form_tensor",
    "pad_normals",
    "point_tensors",
    "volume_admittivities",
]

_Z = (0.0, 0.0, 1.0)
#: Sideways over normal conductivity of a contact sublayer (an interface conducts only across).
SUBLAYER_SIDEWAYS_FRACTION = 1e-3


def volume_admittivities(
    case: Case,
    frequency_Hz: float,
    *,
    complex_valued: bool = False,
    normals: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Conductivity tensor [S/m] (3x3) of every tagged volume at ``frequency_Hz``.

    Keys are the mesh's volume names (``layer:LABEL``, ``gel:E``, ``contact:E``).

    Args:
        case: the case.
        frequency_Hz: frequency [Hz] of the tissue models.
        complex_valued: complex admittivities (Cole-Cole tissues and contact capacitance), or
            the real effective conductivities.
        normals: unit normal of each gel pad (pointing into the pad), by electrode name
            (:func:`pad_normals`); a pad not listed takes +z.
    """
    w = 2 * np.pi * frequency_Hz
    dtype = np.complex128 if complex_valued else np.float64
    normals = normals or {}

    def value(tissue: Tissue) -> complex:
        if complex_valued and tissue.dispersion is not None:
            # the scale (an anatomy spread's range end) multiplies the whole admittivity
            return complex(GABRIEL_1996[tissue.dispersion].complex_conductivity_S_per_m(frequency_Hz)) * tissue.conductivity_scale
        return tissue.conductivity_at(frequency_Hz)

    out: dict[str, np.ndarray] = {}
    for layer in case.layers:
        tensor = layer.conductivity_tensor(value(layer.tissue), frequency_Hz)
        out[f"layer:{layer.label}"] = np.asarray(tensor, dtype=dtype)
    for name, tissue in globe_tissues(case).items():  # orbit zones: the globe's sclera and vitreous
        out[name] = value(tissue) * np.eye(3, dtype=dtype)
    for e in case.electrodes:
        if e.gel is None:
            continue
        s = value(e.gel.material)
        if e.contact is None:
            out[f"gel:{e.name}"] = s * np.eye(3, dtype=dtype)
            continue
        thick = e.gel.thickness_m
        h = contact_sublayer_fraction * thick
        y: complex = 1.0 / e.contact.resistance_ohm_m2
        if complex_valued and e.contact.capacitance_F_per_m2 is not None:
            y = y + 1j * w * e.contact.capacitance_F_per_m2
        n = np.asarray(normals.get(e.name, _Z), dtype=float)
        nn = np.outer(n, n)
        across = np.eye(3) - nn
        sigma_n = h / (h / s + 1.0 / y)
        out[f"gel:{e.name}"] = np.asarray(s * nn + s * thick / (thick - h) * across, dtype=dtype)
        out[f"contact:{e.name}"] = np.asarray(sigma_n * nn + SUBLAYER_SIDEWAYS_FRACTION * sigma_n * across, dtype=dtype)
    return out


def pad_normals(case: Case, patch: PatchMesh) -> dict[str, np.ndarray]:
    """Mean unit normal of the skin under each gel pad, pointing into the pad, by electrode.

    Computed from the ``skin_under:E`` facets of the mesh (area-weighted, oriented toward the
    cell of the pad's volume), reduced over the ranks. On a curved patch every pad's normal is
    +z in its local frame (the tensors are rotated point by point, :func:`form_tensor`).
    """
    if patch.surface is not None:
        return {e.name: np.array(_Z) for e in case.electrodes if e.gel is not None}

    mesh = patch.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    n_owned = mesh.topology.index_map(tdim - 1).size_local
    pad_tags = {v for k, v in patch.volumes.items() if k.startswith(("gel:", "contact:"))}
    cell_tag = dict(zip(patch.cell_tags.indices.tolist(), patch.cell_tags.values.tolist(), strict=True))
    out = {}
    for e in case.electrodes:
        name = f"skin_under:{e.name}"
        if name not in patch.surfaces:
            continue
        facets = patch.facet_tags.find(patch.surfaces[name])
        facets = facets[facets < n_owned].astype(np.int32)
        total = np.zeros(3)
        if len(facets):
            tri = mesh.geometry.x[dmesh.entities_to_geometry(mesh, tdim - 1, facets)]
            cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])  # |cross| = 2 area
            mid = tri.mean(axis=1)
            for k, f in enumerate(facets):
                cells = [c for c in f2c.links(f) if cell_tag.get(int(c)) in pad_tags]
                if not cells:
                    continue
                geo = dmesh.entities_to_geometry(mesh, tdim, np.array(cells[:1], dtype=np.int32))
                toward_pad = mesh.geometry.x[geo][0].mean(axis=0) - mid[k]
                total += cross[k] if np.dot(cross[k], toward_pad) > 0 else -cross[k]
        total = mesh.comm.allreduce(total)
        norm = np.linalg.norm(total)
        out[e.name] = total / norm if norm > 0 else np.array(_Z)
    return out


def form_tensor(patch: PatchMesh, tensor: ufl.core.expr.Expr) -> ufl.core.expr.Expr:
    """A volume's tensor for a UFL form: ``tensor`` itself, or Q S Q^T on a curved patch.

    Args:
        patch: the tagged mesh (its ``surface`` map, if any).
        tensor: a 3x3 UFL tensor in the local frame (e.g. a ``fem.Constant``).
    """
    if patch.surface is None:
        return tensor

    Q = patch.surface.frame_ufl(ufl.SpatialCoordinate(patch.mesh))
    return ufl.dot(ufl.dot(Q, tensor), Q.T)


def form_metadata(patch: PatchMesh, degree: int) -> dict[str, int]:
    """Measure metadata for forms with :func:`form_tensor`: a fixed quadrature on a curved patch.

    The rotation is smooth on the scale of a cell (cell size << radius), but UFL would estimate
    the degree of its square roots and quotients as a polynomial's and integrate with a needlessly
    high rule; degree 2p (exact for grad u . S grad v of Lagrange p with S linear over a cell)
    suffices. A flat patch keeps UFL's own estimate (its tensors are constants).
    """
    return {} if patch.surface is None else {"quadrature_degree": 2 * int(degree)}


def point_tensors(patch: PatchMesh, points_m: npt.ArrayLike, tensor: np.ndarray) -> np.ndarray:
    """(n, 3, 3) values of one volume's tensor at points [m], rotated on a curved patch."""
    pts = np.asarray(points_m, dtype=float).reshape(-1, 3)
    tensor = np.asarray(tensor)
    if patch.surface is None:
        return np.broadcast_to(tensor, (len(pts), 3, 3))
    Q = patch.surface.frames(pts)
    return Q @ tensor @ np.transpose(Q, (0, 2, 1))


def cell_tensors(patch: PatchMesh, cells: npt.ArrayLike, tensor: np.ndarray) -> np.ndarray:
    """(n, 3, 3) values of one volume's tensor at the centroids of local cells."""
    cells = np.asarray(cells, dtype=np.int32)
    if patch.surface is None or len(cells) == 0:
        return np.broadcast_to(np.asarray(tensor), (len(cells), 3, 3))

    mid = dmesh.compute_midpoints(patch.mesh, patch.mesh.topology.dim, cells)
    return point_tensors(patch, mid, tensor)


def conductivity_summary(admittivity: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """JSON-ready conductivities [S/m]: a number for isotropic volumes, the 3x3 tensor otherwise."""
    out: dict[str, Any] = {}
    for k, v in admittivity.items():
        v = np.real(v)
        out[k] = float(v[0, 0]) if np.allclose(v, v[0, 0] * np.eye(3)) else v.tolist()
    return out
