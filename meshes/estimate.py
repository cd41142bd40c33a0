"""A-priori size of a case's mesh and solve: cells, dofs and memory, without calling gmsh.

:func:`estimate_mesh` estimates the mesh of the case's ``[mesh] method`` without meshing. The
free mesh (:mod:`emsim.meshes.free`): the number of tetrahedra the size field asks for,
``N = integral dV / (C_TET h(x)^3)``, on a graded sample grid. The layered mesh
(:mod:`emsim.meshes.layered`): the levels exactly, the skin triangles as
``integral dA / (C_TRI h(x, y)^2)`` on a graded sample grid. The grids are fine at the
electrodes and coarse where the target size is uniform, so an estimate costs well under a second
for any patch, including absurd ones (a 1e9 mm patch gives ~1e20 cells at once).
:func:`check_resources` raises an :class:`~emsim.errors.InputError` naming the estimate when
the dofs exceed a limit, before anything is meshed.

The constants are calibrated against real meshes (``tests/test_estimate.py`` checks the
estimate against ``build_patch_mesh`` within :data:`CALIBRATED_FACTOR`).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..models.case import Case
from ..models.electrodes import Electrode
from .free import far_layer_box_size, layer_box_size, pad_box_size, resolved_regions
from .layered import level_counts, level_sizes
from .patch import edge_size, mesh_sizes, pad_z_levels

__all__ = [
    "BYTES_PER_DOF",
    "CALIBRATED_FACTOR",
    "CELLS_PER_VERTEX",
    "C_TET",
    "C_TRI",
    "DEFAULT_MAX_DOFS",
    "EDGES_PER_CELL",
    "FACES_PER_CELL",
    "FLAT_CELLS_PER_VERTEX",
    "TETS_PER_PRISM",
    "VERTICES_PER_TRIANGLE",
    "MeshEstimate",
    "check_resources",
    "estimate_mesh",
]

#: Mean tetrahedron volume over h^3 for the free gmsh Delaunay mesh of a target size h (a regular
#: tetrahedron of edge h has 0.118 h^3). Calibrated: see tests/test_estimate.py.
C_TET = 0.167  # (0.115 before the d^(1/2) grading and one-element layers; recalibrated)
#: Tetrahedra per vertex of the free meshes (about 5.5 in the bulk; thin layers and pads lower it).
CELLS_PER_VERTEX = 3.4
#: Tetrahedra per vertex where a layer is one flat cell across (outside the resolved regions of
#: :mod:`emsim.meshes.free`): about three per prism over half a vertex per triangle.
FLAT_CELLS_PER_VERTEX = 6.0
#: Mean skin-triangle area over h^2 for the gmsh Frontal-Delaunay triangulation of a target size
#: h (an equilateral triangle of side h has 0.433 h^2). Calibrated: see tests/test_estimate.py.
C_TRI = 0.41
#: Size growth per distance a gmsh triangulation realises near an outline.
_BETA = 1.0
#: Tetrahedra per prism of the extruded mesh (:mod:`emsim.meshes.layered`).
TETS_PER_PRISM = 3
#: Skin vertices per skin triangle (Euler: about 1/2 in a planar triangulation).
VERTICES_PER_TRIANGLE = 0.5
#: Edges per tetrahedron, by mesh method. Free: Euler, edges ~ vertices + cells in the bulk;
#: the boundary adds some. Layered (the extruded mesh): per level interval, each skin vertex (V) carries
#: a vertical edge and each skin edge (3 V) a horizontal and a face-diagonal one (the split adds
#: no interior edge), over 3 tetrahedra per triangle (2 V): 7 V / 6 V.
EDGES_PER_CELL = {"free": 1.45, "layered": 7.0 / 6.0}
#: Triangular faces per tetrahedron, by mesh method. Free: each interior face is shared by two of
#: a tetrahedron's four. Layered: per interval, a horizontal triangle per skin triangle, two per
#: quad face (3 V), two inside each prism: (2 V + 6 V + 4 V) / 6 V.
FACES_PER_CELL = {"free": 2.1, "layered": 2.0}
#: The estimate is within this factor of the real mesh for the calibration cases (measured 0.87 .. 1.10).
CALIBRATED_FACTOR = 1.3
#: Peak memory per dof [bytes] of a whole ``emsim run``. Measured with ``/usr/bin/time -v emsim
#: run`` (the built-in cheek case, default quality, degree 2, heating; CG + GAMG): 365,708 dofs,
#: peak RSS 1.25 GB, i.e. 3.4 kB per dof including the ~0.3 GB of the loaded libraries; the
#: biphasic example (coarse, degree 1, MUMPS, 24-frequency sweep in 2x2 block form) peaked at
#: 0.68 GB for 21,622 dofs, mostly that fixed part. 5 kB per dof adds ~50 % for the waveform's
#: block system and MUMPS fill at the same size.
BYTES_PER_DOF = 5_000
#: Default limit on the estimated dofs: 3e6 dofs x 5 kB = 15 GB, which stays well under the
#: 24 GB of the target machine even when the estimate is 20 % low (the worst calibration case)
#: and admits ``emsim verify --quality fine`` (disk on slab, ~2.4e6 dofs estimated).
DEFAULT_MAX_DOFS = 3_000_000


@dataclass(frozen=True, slots=True)
class MeshEstimate:
    """The a-priori size of a case's mesh and solve.

    Attributes:
        cells: estimated tetrahedra.
        vertices: estimated mesh vertices.
        dofs: estimated degrees of freedom of the potential (degree 1 or 2).
        memory_bytes: estimated peak memory of the run [bytes].
    """

    cells: float
    vertices: float
    dofs: float
    memory_bytes: float

    def text(self) -> str:
        """A one-line summary, e.g. ``~2.1e+05 cells, ~3.1e+05 dofs, ~3.7 GB``."""
        return f"~{self.cells:.2g} cells, ~{self.dofs:.2g} dofs, ~{self.memory_bytes / 1e9:.3g} GB"


def _graded_axis(lo: float, hi: float, intervals: list[tuple[float, float]], sizes: dict[str, float], h_far: float) -> np.ndarray:
    """Sample points on [lo, hi], spaced h/4 with h the edge-graded size at the distance from the intervals."""
    pts = [lo]
    x = lo
    floor = (hi - lo) / 2000
    while x < hi:
        d = min((max(a - x, x - b, 0.0) for a, b in intervals), default=math.inf)
        h = min(float(edge_size(sizes, d)), h_far) if math.isfinite(d) else h_far
        x = min(x + max(0.25 * h, floor), hi)
        pts.append(x)
    return np.asarray(pts)


def _graded_axis_free(
    lo: float, hi: float, intervals: list[tuple[float, float]], sizes: dict[str, float], h_coarse: float, max_steps: int
) -> np.ndarray:
    """Sample points on [lo, hi], spaced h/2 with h graded from ``intervals`` like the size field.

    The spacing is half the edge-graded size (:func:`emsim.meshes.patch.edge_size`) at the
    distance from the intervals, at most h_coarse / 2, and never finer than (hi - lo) / max_steps.
    """
    floor = (hi - lo) / max_steps
    pts = [lo]
    x = lo
    while x < hi:
        d = min((max(a - x, x - b, 0.0) for a, b in intervals), default=math.inf)
        h = min(float(_realised_edge_size(sizes, d)), h_coarse) if math.isfinite(d) else h_coarse
        x = min(x + max(0.5 * h, floor), hi)
        pts.append(x)
    return np.asarray(pts)


def _realised_edge_size(sizes: dict[str, float], d: float | np.ndarray) -> float | np.ndarray:
    """The size a tetrahedral mesh realises at a distance d from an outline.

    An element cannot be much larger than its distance to the outline where sizes are small
    (its neighbours there are small), so the mesh follows min(target, tip + BETA d) rather
    than the target :func:`emsim.meshes.patch.edge_size`, which grows like d^(1/2).
    """
    return np.minimum(edge_size(sizes, d), sizes["tip"] + _BETA * np.asarray(d))


def _reach(sizes: dict[str, float], h_max: float) -> float:
    """Distance [m] beyond which the edge-graded size exceeds h_max (it grows monotonically)."""
    lo, hi = 0.0, 1.0
    while edge_size(sizes, hi) < h_max:
        hi *= 2.0
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if edge_size(sizes, mid) < h_max else (lo, mid)
    return hi


def _lateral_distance(e: Electrode, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Signed distance [m] from points (x, y) to the electrode's outline (negative inside)."""
    return np.asarray(e.signed_distance(x, y))


def _free_cells(case: Case) -> tuple[float, float]:
    """Estimated tetrahedra of the free mesh (:mod:`emsim.meshes.free`).

    The target size h(x, y, z) is the minimum of the free mesher's fields: graded from the
    electrode outlines (:func:`emsim.meshes.patch.edge_size` of the distance), graded from the
    skin surface, per layer and per pad boxes, and the global maximum. The cell count integrates
    ``1 / (C_TET h^3)`` over the tissue and the pads with the midpoint rule on a tensor grid
    graded like h; where the outlines do not reach (the graded size exceeds h_max) h depends on z
    only and the lateral integral is exact.

    Returns:
        (all cells, the cells of the layers outside :func:`emsim.meshes.free.resolved_regions`:
        one flat cell across, :data:`FLAT_CELLS_PER_VERTEX`).
    """
    sizes = mesh_sizes(case)
    h_edge, h_max = sizes["edge"], sizes["max"]
    reach = _reach(sizes, h_max)  # beyond this distance from every outline h ignores them
    width, length = case.patch.width_m, case.patch.length_m
    levels = pad_z_levels(case)
    xi = [(e.center_m[0] - e.half_extent_m[0], e.center_m[0] + e.half_extent_m[0]) for e in case.electrodes]
    yi = [(e.center_m[1] - e.half_extent_m[1], e.center_m[1] + e.half_extent_m[1]) for e in case.electrodes]
    x = _graded_axis_free(-width / 2, width / 2, xi, sizes, h_max, 400)
    y = _graded_axis_free(-length / 2, length / 2, yi, sizes, h_max, 400)
    X, Y = np.meshgrid(0.5 * (x[1:] + x[:-1]), 0.5 * (y[1:] + y[:-1]), indexing="ij")
    area = np.outer(np.diff(x), np.diff(y))
    lateral = {e.name: _lateral_distance(e, X, Y) for e in case.electrodes}
    near = np.zeros(X.shape, dtype=bool)
    for d in lateral.values():
        near |= np.abs(d) < reach
    outlines = [
        (lateral[e.name][near], (0.0, levels[e.name][-1]) if e.name in levels else (0.0,)) for e in case.electrodes
    ]
    near_area = area[near]
    # Vertical slabs: each layer, then each gel pad (its thinner sublayer sets the box size).
    slabs: list[tuple[float, float, float, str | None]] = []  # (z0, z1, box size, pad owner)
    z_top = 0.0
    for layer in case.layers:
        z_bot = z_top - layer.thickness_m
        slabs.append((z_bot, z_top, layer_box_size(sizes, layer.thickness_m), None))
        z_top = z_bot
    for e in case.electrodes:
        if e.name in levels:
            zs = levels[e.name]
            dz = min(b - a for a, b in itertools.pairwise(zs))
            slabs.append((0.0, zs[-1], pad_box_size(sizes, dz), e.name))
    h_floor = sizes["tip"] if sizes["tip"] > 0 else 0.25 * h_edge  # gmsh's Mesh.MeshSizeMin
    cells = relaxed = 0.0
    # Issue 18: a layer is two cells across only inside the resolved regions; elsewhere its box
    # size is far_layer_box_size (the far part is then integrated point by point on the grid).
    resolved = np.zeros(X.shape, dtype=bool)
    for x0, x1, y0, y1 in resolved_regions(case):
        resolved |= (x0 <= X) & (X <= x1) & (y0 <= Y) & (Y <= y1)
    for k, (z0, z1, h_box, pad) in enumerate(slabs):
        thickness = z1 - z0
        if pad is None:
            z = -_graded_axis_free(-z1, -z0, [(0.0, 0.0)], sizes, h_box, 200)[::-1]
            weight, h_near = near_area, np.full(near_area.shape, h_box)
            far_area = float(area[~near].sum())
            h_relaxed = far_layer_box_size(sizes, case.layers[k].thickness_m)
            if h_relaxed > h_box and not resolved.all():
                relaxed += _relaxed_layer_cells(z, thickness, area[~near & ~resolved], h_relaxed, sizes, h_floor)
                far_area = float(area[~near & resolved].sum())
                h_near = np.where(resolved[near], h_box, h_relaxed)
        else:
            z = _graded_axis_free(z0, z1, [(z0, z1)], sizes, h_box, 200)
            weight, h_near = np.where(lateral[pad][near] < 0, near_area, 0.0), np.full(near_area.shape, h_box)
            far_area = float(np.sum(area[~near & (lateral[pad] < 0)]))
        cells += _slab_cells(z, thickness, weight, h_near, far_area, h_box, outlines, sizes, h_floor)
    return cells + relaxed, relaxed


def _slab_cells(
    z: np.ndarray,
    thickness: float,
    weight: np.ndarray,
    h_near: np.ndarray,
    far_area: float,
    h_box: float,
    outlines: Sequence[tuple[np.ndarray, tuple[float, ...]]],
    sizes: dict[str, float],
    h_floor: float,
) -> float:
    """Cells of one slab (a layer or a pad) by the midpoint rule over its z levels.

    Args:
        z: the slab's graded z levels [m].
        thickness: the slab's thickness [m].
        weight: area [m^2] of each grid point near an outline that the slab covers.
        h_near: box size [m] at those points (a layer's relaxed size outside the resolved regions).
        far_area: area [m^2] of the slab away from every outline (box size ``h_box``).
        h_box: the slab's box size [m].
        outlines: per electrode, the lateral distance [m] of the near points to its outline and
            the z [m] of its edges.
        sizes: :func:`emsim.meshes.patch.mesh_sizes`.
        h_floor: gmsh's smallest size [m].
    """
    g, h_surface = sizes["grading_per_m"], sizes["surface"]
    cells = 0.0
    for za, zb in itertools.pairwise(z):
        zc = 0.5 * (za + zb)
        h_far = max(min(h_box, h_surface + g * abs(zc)), h_floor)
        h = np.maximum(np.minimum(h_near, h_surface + g * abs(zc)), h_floor)
        for d, tops in outlines:
            dz = min(abs(zc - t) for t in tops)
            np.minimum(h, _realised_edge_size(sizes, np.sqrt(d * d + dz * dz)), out=h)
        np.maximum(h, h_floor, out=h)
        # A slab thinner than h holds one layer of flat tetrahedra: h^2 T per cell, not h^3.
        hz, hz_far = np.minimum(h, thickness), min(h_far, thickness)
        cells += (float(np.sum(weight / (h * h * hz))) + far_area / (h_far * h_far * hz_far)) * (zb - za) / C_TET
    return cells


def _relaxed_layer_cells(
    z: np.ndarray, thickness: float, areas: np.ndarray, h_box: float, sizes: dict[str, float], h_floor: float
) -> float:
    """Cells of a layer's part outside the resolved regions and away from the outlines (box size h_box [m])."""
    total, g = float(areas.sum()), sizes["grading_per_m"]
    cells = 0.0
    for za, zb in itertools.pairwise(z):
        h = max(min(h_box, sizes["surface"] + g * abs(0.5 * (za + zb))), h_floor)
        cells += total / (h * h * min(h, thickness)) * (zb - za) / C_TET
    return cells


def skin_triangles(case: Case, sizes: dict[str, float]) -> tuple[float, dict[str, float]]:
    """Estimated triangles of the skin triangulation, and of each electrode's footprint.

    ``N = integral dA / (C_TRI h(x, y)^2)`` with h the size the mesher asks for
    (:func:`emsim.meshes.layered.skin_triangulation`), by the midpoint rule on a tensor grid
    graded like h.
    """
    _, h_far = level_sizes(sizes)
    width, length = case.patch.width_m, case.patch.length_m
    xi = [(e.center_m[0] - e.half_extent_m[0], e.center_m[0] + e.half_extent_m[0]) for e in case.electrodes]
    yi = [(e.center_m[1] - e.half_extent_m[1], e.center_m[1] + e.half_extent_m[1]) for e in case.electrodes]
    x = _graded_axis(-width / 2, width / 2, xi, sizes, h_far)
    y = _graded_axis(-length / 2, length / 2, yi, sizes, h_far)
    X, Y = np.meshgrid(0.5 * (x[1:] + x[:-1]), 0.5 * (y[1:] + y[:-1]), indexing="ij")
    area = np.outer(np.diff(x), np.diff(y))
    sd = {e.name: np.asarray(e.signed_distance(X, Y)) for e in case.electrodes}
    d = np.min(np.abs(np.stack(list(sd.values()))), axis=0)
    # An element cannot be much larger than its distance to the outline where sizes are small
    # (its neighbours there are small): the mesh follows min(target, tip + BETA d).
    h = np.minimum(np.minimum(edge_size(sizes, d), h_far), sizes["tip"] + _BETA * d)
    h = np.maximum(h, sizes["tip"])
    density = area / (C_TRI * h * h)
    return float(density.sum()), {n: float(density[s < 0].sum()) for n, s in sd.items()}


def estimate_mesh(case: Case) -> MeshEstimate:
    """Estimate cells, vertices, dofs and memory of a case's mesh and solve (no gmsh call).

    The free mesh: :func:`_free_cells`, vertices by :data:`CELLS_PER_VERTEX`. The layered
    mesher (:mod:`emsim.meshes.layered`) extrudes the skin triangulation through
    the tissue levels and each footprint through its pad's levels: the levels are computed
    exactly (:func:`emsim.meshes.layered.level_counts`, no gmsh), the skin triangles are
    integrated from the target size (:func:`skin_triangles`); 3 tetrahedra per prism.

    Args:
        case: the case.

    Returns:
        The estimate.
    """
    if case.mesh.file is not None:
        raise InputError("mesh.file", case.mesh.file, "a built patch (an imported mesh has its own size)")
    method = case.mesh.method
    if method == "free":
        cells, flat = _free_cells(case)
        vertices = (cells - flat) / CELLS_PER_VERTEX + flat / FLAT_CELLS_PER_VERTEX
    else:
        sizes = mesh_sizes(case)
        tri, under = skin_triangles(case, sizes)
        tissue, pads = level_counts(case, sizes)
        prisms = tri * tissue + sum(under[n] * k for n, k in pads.items())
        cells = TETS_PER_PRISM * prisms
        vertices = VERTICES_PER_TRIANGLE * (tri * (tissue + 1) + sum(under[n] * k for n, k in pads.items()))
    # Lagrange degree p: one dof per vertex, p - 1 per edge, (p - 1)(p - 2)/2 per face.
    p = case.mesh.degree
    edges, faces = EDGES_PER_CELL[method] * cells, FACES_PER_CELL[method] * cells
    dofs = vertices + (p - 1) * edges + (p - 1) * (p - 2) // 2 * faces
    return MeshEstimate(cells=cells, vertices=vertices, dofs=dofs, memory_bytes=dofs * BYTES_PER_DOF)


def check_resources(case: Case, max_dofs: float = DEFAULT_MAX_DOFS) -> MeshEstimate:
    """Estimate the case's size and refuse it when the dofs exceed ``max_dofs``.

    Args:
        case: the case.
        max_dofs: the limit on the estimated dofs.

    Returns:
        The estimate, when within the limit.

    Raises:
        InputError: ``mesh`` with the estimate (cells, dofs, GB) when above the limit.
    """
    est = estimate_mesh(case)
    if not est.dofs <= max_dofs:
        raise InputError(
            "mesh",
            est.text(),
            f"above the limit of {max_dofs:.3g} dofs (patch {case.patch.width_m * 1e3:g} x "
            f"{case.patch.length_m * 1e3:g} mm, depth {case.depth_m * 1e3:g} mm, quality "
            f"{case.mesh.quality}, degree {case.mesh.degree}); reduce the patch or the quality, "
            "or use --max-dofs N to raise the limit",
        )
    return est

