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

__all__ = ["first_colliding_cells", "locate_points", "point_gradients", "point_volumes"]

#: A candidate cell holds a point this close to it [m]: the squared-distance test of
#: ``dolfinx.geometry.compute_colliding_cells`` (1e-12 m^2); the two picked the same cell for
#: all of 42,000 section and random points of the default case (a tolerance of 1e-12 of the
#: cell height instead: 172 differed). Candidates come from the bounding boxes, unpadded.
_COLLISION_DISTANCE_M = 1e-6
#: Candidate (point, cell) pairs handled at once by :func:`first_colliding_cells` (memory bound).
_CHUNK = 200_000


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


def first_colliding_cells(mesh: Mesh, points_m: npt.ArrayLike, n_owned: int) -> np.ndarray:
    """Per point the first owned cell (in bounding-box candidate order) that holds it, else -1.

    The same cells as ``compute_colliding_cells`` followed by "first owned one", for a mesh of
    affine tetrahedra, in a vectorised test: the barycentric coordinates of each candidate pair,
    and the point counts as inside when its distance to every face plane it lies beyond is at
    most :data:`_COLLISION_DISTANCE_M` (near an edge or a vertex the plane distance is a lower
    bound of the true distance). ``compute_colliding_cells`` runs a GJK distance per
    candidate pair in a loop, and a picture's 22k points have many candidates each: seconds
    per section on the default case. Other meshes (curved cells) use it unchanged.

    Args:
        mesh: the mesh (tetrahedra).
        points_m: (n, 3) points [m].
        n_owned: number of cells this rank owns (the first ``n_owned`` local cells).
    """
    pts = np.ascontiguousarray(np.asarray(points_m, dtype=mesh.geometry.x.dtype).reshape(-1, 3))
    cells = np.full(len(pts), -1, dtype=np.int32)
    if len(pts) == 0 or n_owned == 0:
        return cells
    tree = geometry.bb_tree(mesh, 3, entities=np.arange(n_owned, dtype=np.int32))
    candidates = geometry.compute_collisions_points(tree, pts)
    offsets, links = np.asarray(candidates.offsets), np.asarray(candidates.array)
    if mesh.geometry.cmaps[0].degree != 1 or mesh.topology.cell_name() != "tetrahedron":
        colliding = geometry.compute_colliding_cells(mesh, candidates, pts)
        for i in np.flatnonzero(np.diff(colliding.offsets)):
            found = colliding.links(i)
            found = found[found < n_owned]
            if len(found):
                cells[i] = found[0]
        return cells
    point_of = np.repeat(np.arange(len(pts)), np.diff(offsets))
    keep = links < n_owned
    point_of, links = point_of[keep], links[keep]
    inside = np.zeros(len(links), dtype=bool)
    x = mesh.geometry.x
    for start in range(0, len(links), _CHUNK):
        sl = slice(start, start + _CHUNK)
        v = x[dmesh.entities_to_geometry(mesh, 3, links[sl].astype(np.int32))]  # (k, 4, 3)
        jinv = np.linalg.inv(np.transpose(v[:, 1:] - v[:, :1], (0, 2, 1)))  # rows: grad lambda_1..3
        lam = np.einsum("kij,kj->ki", jinv, pts[point_of[sl]] - v[:, 0])
        lam = np.column_stack([1.0 - lam.sum(axis=1), lam])
        grads = np.concatenate([-jinv.sum(axis=1, keepdims=True), jinv], axis=1)  # (k, 4, 3)
        beyond = -lam / np.linalg.norm(grads, axis=2)  # distance beyond each face plane [m]
        inside[sl] = beyond.max(axis=1) <= _COLLISION_DISTANCE_M
    hit = np.flatnonzero(inside)
    points, first = np.unique(point_of[hit], return_index=True)  # candidates are grouped by point, in order
    cells[points] = links[hit[first]]
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
