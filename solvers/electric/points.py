"""Field values at chosen points of a distributed mesh: one owning cell per point, on one rank."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import ufl
from dolfinx import fem, geometry
from dolfinx import mesh as dmesh
from dolfinx.mesh import Mesh
from mpi4py import MPI

from ...errors import SolverError
from ...meshes.curvature import SurfaceMap
from ...meshes.patch import PatchMesh

__all__ = ["locate_points", "point_gradients", "point_volumes"]


def locate_points(mesh: Mesh, points_m: npt.ArrayLike, *, surface: SurfaceMap | None = None) -> np.ndarray:
    """Per point, the local index of the cell that evaluates it on this rank, else -1.

    Exactly one rank gets a cell per point: among the owned cells holding the point (bounding
    box tree and exact collision, :mod:`dolfinx.geometry`) the one with the lowest centroid
    height (so a point on an interface parallel to the skin, e.g. the skin surface, lies in the
    volume below it), on the lowest rank on a tie. The height is z, or on a curved patch (its
    ``surface`` map, :mod:`emsim.meshes.curvature`) the height above the curved skin.

    Raises:
        SolverError: a point lies in no cell of the mesh.
    """
    comm = mesh.comm
    pts = np.ascontiguousarray(np.asarray(points_m, dtype=mesh.geometry.x.dtype).reshape(-1, 3))
    n_owned = mesh.topology.index_map(3).size_local
    cells = np.full(len(pts), -1, dtype=np.int32)
    best = np.full(len(pts), np.inf)
    if len(pts) == 0:
        return cells
    tree = geometry.bb_tree(mesh, 3, entities=np.arange(n_owned, dtype=np.int32))
    colliding = geometry.compute_colliding_cells(mesh, geometry.compute_collisions_points(tree, pts), pts)
    for i in range(len(pts)):
        found = np.asarray(colliding.links(i), dtype=np.int32)
        found = found[found < n_owned]
        if len(found):
            centroids = mesh.geometry.x[dmesh.entities_to_geometry(mesh, 3, found)].mean(axis=1)
            zc = centroids[:, 2] if surface is None else surface.to_flat(centroids)[:, 2]
            cells[i], best[i] = found[np.argmin(zc)], zc.min()
    lowest = best.copy()
    comm.Allreduce(MPI.IN_PLACE, lowest, op=MPI.MIN)
    rank = np.where((cells >= 0) & (best == lowest), comm.rank, comm.size).astype(np.int64)
    comm.Allreduce(MPI.IN_PLACE, rank, op=MPI.MIN)
    missing = np.flatnonzero(rank == comm.size)
    if len(missing):
        raise SolverError(f"points outside the mesh: {pts[missing].tolist()} m")
    cells[rank != comm.rank] = -1
    return cells


def point_gradients(
    mesh: Mesh, scalars: Sequence[ufl.core.expr.Expr], degree: int, points_m: npt.ArrayLike, cells: npt.ArrayLike
) -> np.ndarray:
    """-grad of each UFL scalar (Lagrange of ``degree``) at located points, on every rank.

    The gradient is interpolated exactly into DG(degree - 1) and evaluated in the cell of
    :func:`locate_points` by the rank holding it; the values are summed over the ranks.

    Returns:
        (len(scalars), n_points, 3) array [units of the scalar per m].
    """
    pts = np.asarray(points_m, dtype=mesh.geometry.x.dtype).reshape(-1, 3)
    out = np.zeros((len(scalars), len(pts), 3))
    own = np.asarray(cells) >= 0
    W = fem.functionspace(mesh, ("DG", degree - 1, (3,)))
    for k, u in enumerate(scalars):
        g = fem.Function(W)
        g.interpolate(fem.Expression(-ufl.grad(u), W.element.interpolation_points))
        if own.any():
            out[k, own] = np.asarray(g.eval(pts[own], np.asarray(cells, dtype=np.int32)[own])).reshape(-1, 3)
    mesh.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
    return out


def point_volumes(patch: PatchMesh, cells: Sequence[int] | np.ndarray) -> list[str]:
    """Name of the tagged volume of each located point (on every rank)."""
    tags = patch.cell_tags
    found = np.full(len(cells), -1, dtype=np.int64)
    for i, c in enumerate(cells):
        if c >= 0:
            j = np.searchsorted(tags.indices, c)
            if j < len(tags.indices) and tags.indices[j] == c:
                found[i] = tags.values[j]
    patch.mesh.comm.Allreduce(MPI.IN_PLACE, found, op=MPI.MAX)
    by_tag = {v: k for k, v in patch.volumes.items()}
    if any(int(t) not in by_tag for t in found):
        raise SolverError("a probe point lies in an untagged cell")
    return [by_tag[int(t)] for t in found]
