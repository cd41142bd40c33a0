r"""The skin surface: its facets, the current density through them, and the disc-averaged peak.

Normal current density J_n [A/m^2] through a skin facet, positive into the tissue:

* under a gel pad, J . n from the pad-side cell (the contact sublayer or the gel; the flux there
  is nearly normal and smooth), n the facet's unit normal pointing into the pad;
* on a bare electrode with a contact impedance, the exact Robin flux G (V_e - phi) at the
  facet's centroid;
* on a bare ideal electrode, J . n from the skin cell;
* on exposed skin, 0 (insulated boundary).

Normals, the pad side and the electrode under each facet come from the mesh (facet geometry and
the volume and surface tags), not from an assumed flat skin at z = 0.

The peak (:class:`DiscAverage`): the maximum over the skin of J_n averaged over a disc of radius
:data:`PEAK_AVERAGING_RADIUS_M` (area-weighted mean of the facets whose centroids lie within the
radius, in 3-D, of a candidate centre; on a curved skin the chord 2 R sin(s / 2R) differs from
the arc s by s^2 / (24 R^2), under 1e-4 for R >= 10 mm). The point value at an equipotential edge is singular;
the averaged peak converges under mesh refinement. Every facet within one radius of a facet that
carries current is a candidate centre (a disc centred where nothing flows can still hold the
peak, e.g. just outside a pad edge). The averaging is a fixed sparse matrix, so the peak at any
channel currents costs one sparse product.
"""

from __future__ import annotations

import itertools
from collections.abc import Collection
from dataclasses import dataclass

import numpy as np
from dolfinx import mesh as dmesh
from mpi4py import MPI
from scipy.sparse import csr_matrix
from scipy.spatial import cKDTree

from ...errors import SolverError
from ...meshes.patch import PatchMesh
from ...models.case import Case

__all__ = [
    "PEAK_AVERAGING_RADIUS_M",
    "DiscAverage",
    "SkinFacets",
    "disc_averaged_max",
    "skin_facets",
    "weighted_percentile",
]

#: Radius [m] of the disc over which the peak skin current density is averaged (1 mm diameter).
PEAK_AVERAGING_RADIUS_M = 0.5e-3


@dataclass(frozen=True)
class SkinFacets:
    """The owned skin facets of this rank and how to evaluate J_n on them.

    Attributes:
        facets: local facet indices.
        triangles_m: (n, 3, 3) vertex coordinates [m].
        normals: (n, 3) unit normals pointing out of the tissue (into the pad or the air).
        areas_m2: (n,) facet areas [m^2].
        under: (n,) name of the electrode whose footprint holds the facet, or "".
        entry_cells: (n,) local cell whose J gives J_n (pad side under a pad, else tissue side).
        robin: (n,) True where J_n is the Robin flux of a bare electrode with a contact.
        exposed: (n,) True on exposed skin (J_n = 0).
        order: permutation sorting the gathered facets into a rank-independent order.
    """

    facets: np.ndarray
    triangles_m: np.ndarray
    normals: np.ndarray
    areas_m2: np.ndarray
    under: np.ndarray
    entry_cells: np.ndarray
    robin: np.ndarray
    exposed: np.ndarray

    @property
    def centroids_m(self) -> np.ndarray:
        """(n, 3) facet centroids [m]."""
        return self.triangles_m.mean(axis=1) if len(self.triangles_m) else np.empty((0, 3))

    def normal_current_density(
        self,
        J_cells: np.ndarray,
        robin_flux: np.ndarray | None = None,
    ) -> np.ndarray:
        """J_n [A/m^2] per facet, positive into the tissue (real or complex).

        Args:
            J_cells: (n_local_cells, 3) current density per cell [A/m^2].
            robin_flux: G (V_e - phi) at the centroids of the Robin facets, in their order
                (None when there are none).
        """
        jn = -np.einsum("ij,ij->i", J_cells[self.entry_cells], self.normals) if len(self.facets) else np.zeros(0)
        if self.robin.any() and robin_flux is not None:
            jn = jn.astype(np.result_type(jn.dtype, robin_flux.dtype))
            jn[self.robin] = robin_flux
        jn[self.exposed] = 0.0
        return jn

    def robin_points(self) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Centroids [m], cells and electrode names of the Robin facets (for phi evaluation)."""
        idx = np.flatnonzero(self.robin)
        return self.centroids_m[idx], self.entry_cells[idx], [str(u) for u in self.under[idx]]


def skin_facets(case: Case, patch: PatchMesh, robin: Collection[str]) -> SkinFacets:
    """The owned skin facets of this rank with their normals and entry cells.

    Args:
        case: the case.
        patch: its tagged mesh.
        robin: names of the bare electrodes with a contact impedance (Robin faces).
    """
    mesh = patch.mesh
    tdim = mesh.topology.dim
    mesh.topology.create_connectivity(tdim - 1, tdim)
    f2c = mesh.topology.connectivity(tdim - 1, tdim)
    n_owned = mesh.topology.index_map(tdim - 1).size_local
    surfaces = {n: t for n, t in patch.surfaces.items() if n == "skin_exposed" or n.startswith("skin_under:")}
    for e in case.electrodes:
        if e.gel is None:
            surfaces[f"electrode:{e.name}"] = patch.surfaces[f"electrode:{e.name}"]
    tissue = {v for k, v in patch.volumes.items() if k.startswith("layer:")}
    cell_tag = np.full(mesh.topology.index_map(tdim).size_local + mesh.topology.index_map(tdim).num_ghosts, -1)
    cell_tag[patch.cell_tags.indices] = patch.cell_tags.values
    parts: list[np.ndarray] = []
    under: list[str] = []
    kinds: list[str] = []
    for name, tag in surfaces.items():
        f = patch.facet_tags.find(tag)
        f = f[f < n_owned]
        parts.append(f)
        under += [name.split(":", 1)[1] if ":" in name else ""] * len(f)
        kinds += [name.split(":", 1)[0]] * len(f)
    facets = np.concatenate(parts).astype(np.int32) if parts else np.empty(0, np.int32)
    tri = mesh.geometry.x[dmesh.entities_to_geometry(mesh, tdim - 1, facets)] if len(facets) else np.empty((0, 3, 3))
    cross = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]) if len(facets) else np.empty((0, 3))
    area = 0.5 * np.linalg.norm(cross, axis=1)
    normals = cross / (2 * area[:, None]) if len(facets) else cross
    # Each facet's first tissue cell (inside) and first other cell (outside), in the order of
    # its links: the entry cell is the outside one (the pad) when there is one.
    offsets, links = f2c.offsets, f2c.array
    first = links[offsets[facets]]
    two = offsets[facets + 1] - offsets[facets] > 1
    second = np.where(two, links[np.minimum(offsets[facets] + 1, len(links) - 1)], -1)
    is_tissue = np.isin(cell_tag, np.fromiter(tissue, dtype=cell_tag.dtype, count=len(tissue)))
    first_in = is_tissue[first]
    second_in = two & is_tissue[second]
    if not np.all(first_in | second_in):
        bad = facets[~(first_in | second_in)][0]
        raise SolverError(f"skin facet {int(bad)} has no tissue cell on this rank (ghost layer missing?)")
    inside = np.where(first_in, first, second)
    outside = np.where(~first_in, first, np.where(two & ~second_in, second, -1))
    entry = np.where(outside >= 0, outside, inside).astype(np.int32)
    # Orient the normal out of the tissue, toward the pad (or the air).
    if len(facets):
        centre = mesh.geometry.x[mesh.geometry.dofmaps[0][inside]].mean(axis=1)
        flip = np.einsum("ij,ij->i", normals, centre - tri.mean(axis=1)) > 0
        normals[flip] = -normals[flip]
    under_arr = np.array(under, dtype=object)
    kinds_arr = np.array(kinds, dtype=object)
    robin_mask = np.array([k == "electrode" and u in robin for k, u in zip(kinds, under, strict=True)], dtype=bool)
    return SkinFacets(
        facets=facets, triangles_m=tri, normals=normals, areas_m2=area, under=under_arr,
        entry_cells=entry, robin=robin_mask, exposed=kinds_arr == "skin_exposed",
    )  # fmt: skip


def gather_facets(comm: MPI.Comm, skin: SkinFacets, values: np.ndarray) -> tuple[np.ndarray, ...]:
    """Every rank's facets on every rank, in a rank-independent order.

    Args:
        comm: the mesh communicator.
        skin: this rank's facets.
        values: (n_local_facets, ...) per-facet values to gather alongside.

    Returns:
        (triangles [m], areas [m^2], under, values), concatenated and sorted by centroid.
    """
    parts = comm.allgather((skin.triangles_m, skin.areas_m2, skin.under, values))
    tri = np.concatenate([p[0] for p in parts])
    area = np.concatenate([p[1] for p in parts])
    under = np.concatenate([p[2] for p in parts])
    vals = np.concatenate([p[3] for p in parts])
    order = np.lexsort(tri.mean(axis=1).T[::-1]) if len(tri) else np.empty(0, dtype=np.int64)
    return tri[order], area[order], under[order], vals[order]


#: Query points per chunk when the disc-averaging operator is built (bounds its temporary lists).
_DISC_CHUNK = 4096


class DiscAverage:
    """The disc-averaging operator of the skin peak, built once for a set of facets.

    Args:
        centroids_m: (n, 3) facet centroids [m].
        areas_m2: (n,) facet areas [m^2] (the weights).
        carries: (n,) True where some channel can drive current through the facet.
        radius_m: averaging radius [m].
    """

    def __init__(self, centroids_m: np.ndarray, areas_m2: np.ndarray, carries: np.ndarray, radius_m: float) -> None:
        self.points_m = np.asarray(centroids_m, dtype=float)
        self.areas_m2 = np.asarray(areas_m2, dtype=float)
        n = len(self.points_m)
        if n == 0 or not np.any(carries):
            self.centres = np.zeros(0, dtype=np.int64)
            self.matrix = csr_matrix((0, n))
            return
        tree = cKDTree(self.points_m)
        # Built in chunks of query points, straight into CSR arrays: the neighbour lists of every
        # facet at once (Python ints) and a COO copy were the post-processing's memory peak on
        # fine meshes (the discs near a rim hold thousands of graded facets each). Rows, their
        # sorted columns and each row's weights are those of one query_ball_point per centre.
        starts = range(0, int(np.count_nonzero(carries)), _DISC_CHUNK)
        carrying = self.points_m[carries]
        near = [np.fromiter(itertools.chain.from_iterable(tree.query_ball_point(carrying[i : i + _DISC_CHUNK], radius_m)),
                            dtype=np.int64) for i in starts]  # fmt: skip
        self.centres = np.unique(np.concatenate(near))
        del near
        lengths, cols, vals = [], [], []
        for i in range(0, len(self.centres), _DISC_CHUNK):
            rows = tree.query_ball_point(self.points_m[self.centres[i : i + _DISC_CHUNK]], radius_m)
            for idx in rows:
                w = areas_m2[idx]
                lengths.append(len(idx))
                cols.append(np.asarray(idx, dtype=np.int32 if n < 2**31 else np.int64))
                vals.append(w / w.sum())
            del rows
        indptr = np.zeros(len(self.centres) + 1, dtype=np.int64)
        np.cumsum(lengths, out=indptr[1:])
        self.matrix = csr_matrix((np.concatenate(vals), np.concatenate(cols), indptr), shape=(len(self.centres), n))

    def peak(self, values: np.ndarray) -> tuple[float, np.ndarray]:
        """Largest disc average of ``values`` (n,) and the centre [m] where it is reached."""
        if len(self.centres) == 0:
            return 0.0, (self.points_m[0] if len(self.points_m) else np.zeros(3))
        means = self.matrix @ values
        best = int(np.argmax(means))
        return float(means[best]), self.points_m[self.centres[best]]

    def peak_where(self, values: np.ndarray, where: np.ndarray) -> tuple[float, np.ndarray]:
        """Largest disc average of ``values`` over the centres on the facets ``where`` (and where)."""
        keep = np.flatnonzero(where[self.centres])
        if len(keep) == 0:
            return 0.0, np.zeros(3)
        means = (self.matrix @ values)[keep]
        best = int(np.argmax(means))
        return float(means[best]), self.points_m[self.centres[keep[best]]]

    def percentile(self, values: np.ndarray, where: np.ndarray, q: float) -> float:
        """Area-weighted q-th percentile of the disc averages centred on the facets ``where``.

        The same averages as :meth:`peak`, so the percentile is never above the peak.
        """
        keep = where[self.centres]
        if not keep.any():
            return 0.0
        means = (self.matrix @ values)[keep]
        area = self.areas_m2[self.centres[keep]]
        return weighted_percentile(means, area, q)

    def peaks(self, values: np.ndarray) -> np.ndarray:
        """Largest disc average of each column of ``values`` (n, m): (m,) array."""
        if len(self.centres) == 0:
            return np.zeros(values.shape[1])
        return np.asarray((self.matrix @ values).max(axis=0)).ravel()


def disc_averaged_max(points_m: np.ndarray, weights: np.ndarray, values: np.ndarray, radius_m: float) -> tuple[float, list[float]]:
    """Max over the points of the weighted mean of ``values`` within ``radius_m`` (and where).

    Points may be 2-D or 3-D. See :class:`DiscAverage`.
    """
    pts = np.asarray(points_m, dtype=float)
    if pts.ndim == 2 and pts.shape[1] == 2:
        pts3 = np.column_stack([pts, np.zeros(len(pts))])
    else:
        pts3 = pts
    peak, where = DiscAverage(pts3, np.asarray(weights, float), np.asarray(values) != 0, radius_m).peak(values)
    return peak, [float(c) for c in where[: pts.shape[1]]] if len(pts) else [0.0, 0.0]


def weighted_percentile(values: np.ndarray, weights: np.ndarray, q: float) -> float:
    """Weighted q-th percentile (0..100): the area CDF inverted by linear interpolation."""
    if len(values) == 0:
        return 0.0
    order = np.argsort(values)
    v, w = values[order], weights[order]
    cdf = np.cumsum(w) / w.sum()
    return float(np.interp(q / 100.0, cdf, v))
