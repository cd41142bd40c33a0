"""A-priori size of a case's mesh and solve: cells, dofs and memory, without calling gmsh.

:func:`estimate_mesh` counts the layered mesh (:mod:`emsim.meshes.layered`) without meshing: the
levels exactly, the skin triangles as ``integral dA / (C_TRI h(x, y)^2)`` on a graded sample grid
(fine at the electrodes, coarse where the target size is uniform), so it costs well under a
second for any patch, including absurd ones.
:func:`check_resources` raises an :class:`~emsim.errors.InputError` naming the estimate when
the dofs exceed a limit, before anything is meshed.

The constants are calibrated against real meshes (``tests/test_estimate.py`` checks the
estimate against ``build_patch_mesh`` within :data:`CALIBRATED_FACTOR`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..errors import InputError
from ..models.case import Case
from .layered import level_counts, level_sizes
from .patch import edge_size, mesh_sizes

__all__ = [
    "BYTES_PER_DOF",
    "CALIBRATED_FACTOR",
    "C_TRI",
    "DEFAULT_MAX_DOFS",
    "EDGES_PER_CELL",
    "FACES_PER_CELL",
    "TETS_PER_PRISM",
    "VERTICES_PER_TRIANGLE",
    "MeshEstimate",
    "check_resources",
    "estimate_mesh",
]

#: Mean skin-triangle area over h^2 for the gmsh Frontal-Delaunay triangulation of a target size
#: h (an equilateral triangle of side h has 0.433 h^2). Calibrated: see tests/test_estimate.py.
C_TRI = 0.41
#: Size growth per distance a gmsh triangulation realises near an outline.
_BETA = 1.0
#: Tetrahedra per prism of the extruded mesh (:mod:`emsim.meshes.layered`).
TETS_PER_PRISM = 3
#: Skin vertices per skin triangle (Euler: about 1/2 in a planar triangulation).
VERTICES_PER_TRIANGLE = 0.5
#: Edges per tetrahedron of the extruded mesh: per level interval, each skin vertex (V) carries
#: a vertical edge and each skin edge (3 V) a horizontal and a face-diagonal one (the split adds
#: no interior edge), over 3 tetrahedra per triangle (2 V): 7 V / 6 V.
EDGES_PER_CELL = 7.0 / 6.0
#: Triangular faces per tetrahedron: per interval, a horizontal triangle per skin triangle, two per
#: quad face (3 V), two inside each prism: (2 V + 6 V + 4 V) / 6 V.
FACES_PER_CELL = 2.0
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

    The layered mesher (:mod:`emsim.meshes.layered`) extrudes the skin triangulation through
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
    sizes = mesh_sizes(case)
    tri, under = skin_triangles(case, sizes)
    tissue, pads = level_counts(case, sizes)
    prisms = tri * tissue + sum(under[n] * k for n, k in pads.items())
    cells = TETS_PER_PRISM * prisms
    vertices = VERTICES_PER_TRIANGLE * (tri * (tissue + 1) + sum(under[n] * k for n, k in pads.items()))
    # Lagrange degree p: one dof per vertex, p - 1 per edge, (p - 1)(p - 2)/2 per face.
    p = case.mesh.degree
    dofs = vertices + (p - 1) * EDGES_PER_CELL * cells + (p - 1) * (p - 2) // 2 * FACES_PER_CELL * cells
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

