"""The layered mesher: the skin-surface triangulation extruded through the layers and the pads.

Tissue layers are planar slabs (or mapped onto a curved skin afterwards), so they are meshed as
layers: gmsh triangulates the skin plane z = 0 with the electrode footprints imprinted, graded
toward every outline (the current density peaks at the rim); the triangles are extruded down
through the tissue at a set of z levels (at least :data:`MIN_CELLS_ACROSS` cells across every
layer, graded toward the skin like the outlines), and each footprint is extruded up through its
gel pad. Every prism is split into three tetrahedra by the global-index rule (the diagonal of
each vertical quad face runs from the lower-numbered 2-D vertex at the upper level to the
higher-numbered one at the lower level), so neighbouring prisms agree on their shared faces and
the mesh is conforming (Dompierre et al. 1999, "How to subdivide pyramids, prisms and
hexahedra into tetrahedra", IMR 8).

The cost is (skin vertices) x (levels) instead of patch area / thickness^3: a thin layer adds a
few levels, not a fine 3-D mesh over the whole patch. Away from the pads the cells are flat
(wide triangles, thin levels near the skin); their shape is bounded by :data:`MAX_ASPECT`
(see :func:`prism_aspect`), which the mesh report measures per layer.

Nodes keep their level: tissue node ``j * n2 + i`` is 2-D vertex i at tissue level j, so a new
stack of layer thicknesses only moves z (:mod:`emsim.meshes.morph`).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import MeshError
from ..models.case import Case

__all__ = [
    "MAX_ASPECT",
    "MIN_CELLS_ACROSS",
    "LayeredMesh",
    "extrude",
    "level_count",
    "level_counts",
    "level_sizes",
    "pad_levels",
    "prism_aspect",
    "skin_triangulation",
    "tissue_levels",
]

#: Cells across every tissue layer and every pad sublayer, at least (issue 9: a thin target
#: muscle or bone is resolved; one cell across a layer under-resolves its field).
MIN_CELLS_ACROSS = 2
#: Bound on the prism aspect ratio max(h_xy / dz, dz / h_xy) of every cell (h_xy: the longest
#: edge of its skin triangle, dz: its level height). The level heights and the far skin size are
#: clamped to it (:func:`level_sizes`); tests/test_anatomy.py checks it on the built meshes.
MAX_ASPECT = 400.0
#: Levels across one layer beyond which the mesher gives up (the estimate refuses such cases first).
MAX_LEVELS = 100_000


def prism_aspect(h_xy: Any, dz: Any) -> Any:
    """Aspect ratio of a prism of skin-triangle size h_xy [m] and height dz [m] (1 = cube-like)."""
    h_xy, dz = np.asarray(h_xy, dtype=float), np.asarray(dz, dtype=float)
    return np.maximum(h_xy / dz, dz / h_xy)


def level_sizes(sizes: dict[str, float]) -> tuple[float, float]:
    """(smallest level height, largest skin-triangle size) [m] the aspect bound allows.

    The smallest level height is ``sizes["z_min"]``; flat cells far from the pads have at most
    :data:`MAX_ASPECT` times it laterally, and the tallest level is at most MAX_ASPECT times the
    smallest skin triangle (``sizes["tip"]``), so every prism keeps the bound.
    """
    return sizes["z_min"], min(sizes["surface"], MAX_ASPECT * sizes["z_min"])


def _cumulative(d0: float, d1: float, h_of: Any) -> tuple[np.ndarray, np.ndarray]:
    """Sample depths on [d0, d1] and the integral of 1 / h_of from d0 to each (the cell count)."""
    d = np.linspace(d0, d1, 2001)
    w = 1.0 / np.asarray(h_of(d), dtype=float)
    return d, np.concatenate([[0.0], np.cumsum(0.5 * (w[1:] + w[:-1]) * np.diff(d))])


def _across(sizes: dict[str, float]) -> int:
    """Cells across a tissue layer, at least: the case's ``[mesh] cells_across_layer`` (its integer part), else the rule."""
    return int(sizes["across_layer"]) if "across_layer" in sizes else MIN_CELLS_ACROSS


def level_count(d0: float, d1: float, h_of: Any, n_min: int) -> int:
    """Cells across [d0, d1] for the level height h_of(d) [m], at least n_min."""
    _, cum = _cumulative(d0, d1, h_of)
    return max(n_min, math.ceil(cum[-1] - 1e-9))


def _levels_in(d0: float, d1: float, h_of: Any, n_min: int) -> np.ndarray:
    """Levels on [d0, d1] equidistributing the integral of 1 / h_of(d), at least n_min cells."""
    d, cum = _cumulative(d0, d1, h_of)
    n = max(n_min, math.ceil(cum[-1] - 1e-9))
    if n > MAX_LEVELS:
        raise MeshError(f"{n} levels across {d1 - d0:g} m: more than {MAX_LEVELS}")
    out = np.interp(np.linspace(0.0, cum[-1], n + 1), cum, d)
    out[0], out[-1] = d0, d1
    return out


def level_counts(case: Case, sizes: dict[str, float]) -> tuple[int, dict[str, int]]:
    """Cells across the tissue and across each pad, without building the levels (for the estimate)."""
    from .patch import pad_z_levels

    depth, tissue = 0.0, 0
    for layer in case.layers:
        tissue += level_count(depth, depth + layer.thickness_m, lambda x: _z_size(sizes, x), _across(sizes))
        depth += layer.thickness_m
    pads = {}
    for name, bounds in pad_z_levels(case).items():
        top = bounds[-1]
        pads[name] = sum(
            level_count(z0, z1, lambda x, top=top: _z_size(sizes, np.minimum(x, top - x)), MIN_CELLS_ACROSS)
            for z0, z1 in itertools.pairwise(bounds)
        )
    return tissue, pads


def _z_size(sizes: dict[str, float], d: Any) -> Any:
    """Target level height [m] at a distance d [m] from the nearest rim level (skin or pad top)."""
    from .patch import edge_size

    z_min, _ = level_sizes(sizes)
    h = np.maximum(edge_size(sizes, d), z_min)
    return np.minimum(h, min(sizes["max"], MAX_ASPECT * sizes["tip"]))


def tissue_levels(case: Case, sizes: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """Z levels [m] of the tissue (0 down to -depth) and the layer index of each interval."""
    zs, owner = [0.0], []
    depth = 0.0
    for k, layer in enumerate(case.layers):
        d = _levels_in(depth, depth + layer.thickness_m, lambda x: _z_size(sizes, x), _across(sizes))
        zs.extend((-d[1:]).tolist())
        owner.extend([k] * (len(d) - 1))
        depth += layer.thickness_m
    return np.asarray(zs), np.asarray(owner, dtype=np.int64)


def pad_levels(case: Case, sizes: dict[str, float]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per padded electrode: its z levels [m] (0 up to the pad top) and each interval's sublayer.

    Sublayer 0 is the contact sublayer when the electrode has a contact impedance, else the gel;
    sublayer 1 is the gel above the contact sublayer. Graded toward both rims (skin and metal).
    """
    from .patch import pad_z_levels

    out = {}
    for name, bounds in pad_z_levels(case).items():
        top = bounds[-1]
        zs, owner = [0.0], []
        for k, (z0, z1) in enumerate(itertools.pairwise(bounds)):
            z = _levels_in(z0, z1, lambda x, top=top: _z_size(sizes, np.minimum(x, top - x)), MIN_CELLS_ACROSS)
            zs.extend(z[1:].tolist())
            owner.extend([k] * (len(z) - 1))
        out[name] = (np.asarray(zs), np.asarray(owner, dtype=np.int64))
    return out


@dataclass(frozen=True)
class SkinTriangulation:
    """The skin plane's triangulation.

    Attributes:
        xy: (n2, 2) vertices [m].
        triangles: (m, 3) vertex indices, each row sorted ascending (the split rule needs it).
        region: (m,) index of the electrode whose footprint holds the triangle, -1 for bare skin.
    """

    xy: np.ndarray
    triangles: np.ndarray
    region: np.ndarray


def _footprint(occ: Any, e: Any) -> int:
    """The electrode's footprint as an OCC plane surface at z = 0; its tag."""
    from .patch import add_footprint

    return add_footprint(occ, e, 0.0)


def skin_triangulation(case: Case, sizes: dict[str, float]) -> SkinTriangulation:
    """Triangulate the skin plane with gmsh (current model), graded toward every outline.

    The target size at (x, y) is :func:`emsim.meshes.patch.edge_size` of the distance to the
    nearest outline, at most the far size of :func:`level_sizes`.
    """
    import gmsh

    from .patch import edge_size, set_graded_size_options

    occ = gmsh.model.occ
    W, L = case.patch.width_m, case.patch.length_m
    rect = occ.addRectangle(-W / 2, -L / 2, 0.0, W, L)
    prints = [(2, _footprint(occ, e)) for e in case.electrodes]
    occ.fragment([(2, rect)], prints)
    occ.synchronize()
    _, h_far = level_sizes(sizes)
    electrodes = case.electrodes

    def size(dim: int, tag: int, x: float, y: float, z: float, lc: float) -> float:
        d = min(abs(float(e.signed_distance(x, y))) for e in electrodes)
        return float(min(edge_size(sizes, d), h_far))

    gmsh.model.mesh.setSizeCallback(size)
    set_graded_size_options(h_far, sizes["tip"])
    gmsh.model.mesh.generate(2)
    gmsh.model.mesh.removeSizeCallback()
    tags, coords, _ = gmsh.model.mesh.getNodes(returnParametricCoord=False)
    index = {int(t): i for i, t in enumerate(tags.tolist())}
    xy = coords.reshape(-1, 3)[:, :2]
    tris, region = [], []
    for _, s in gmsh.model.getEntities(2):
        _, _, nodes = gmsh.model.mesh.getElements(2, s)
        if not nodes:
            continue
        t = np.array([index[int(n)] for n in nodes[0]], dtype=np.int64).reshape(-1, 3)
        c = xy[t].mean(axis=1)
        votes = [int(np.sum(e.signed_distance(c[:, 0], c[:, 1]) < 0)) for e in electrodes]
        best = int(np.argmax(votes)) if votes else -1
        owner = best if votes and votes[best] * 2 > len(t) else -1
        tris.append(t)
        region.append(np.full(len(t), owner))
    tri = np.concatenate(tris)
    used, tri = np.unique(tri, return_inverse=True)  # only the vertices of triangles, renumbered
    tri = np.sort(tri.reshape(-1, 3), axis=1)
    return SkinTriangulation(xy=xy[used], triangles=tri, region=np.concatenate(region))


@dataclass(frozen=True)
class LayeredMesh:
    """The extruded tetrahedral mesh, tagged by name, in flat coordinates.

    Attributes:
        points: (N, 3) vertices [m].
        tets: (M, 4) vertex indices, positively oriented.
        cell_names: names of the volumes; ``cell_group`` indexes it.
        cell_group: (M,) volume of each tetrahedron.
        facets: (K, 3) tagged triangles.
        facet_names: names of the surfaces; ``facet_group`` indexes it.
        facet_group: (K,) surface of each triangle.
        layer_aspect: the largest prism aspect ratio per tissue layer label.
    """

    points: np.ndarray
    tets: np.ndarray
    cell_names: list[str]
    cell_group: np.ndarray
    facets: np.ndarray
    facet_names: list[str]
    facet_group: np.ndarray
    layer_aspect: dict[str, float]


def _prism_tets(tri: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Three tetrahedra per prism; tri sorted (a < b < c), lo/hi map 2-D ids to node ids."""
    a, b, c = tri[:, 0], tri[:, 1], tri[:, 2]
    return np.concatenate(
        [
            np.column_stack([lo[a], lo[b], lo[c], hi[c]]),
            np.column_stack([lo[a], lo[b], hi[b], hi[c]]),
            np.column_stack([lo[a], hi[a], hi[b], hi[c]]),
        ]
    )


def _quad_tris(edges: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """The two triangles of each vertical quad face over sorted 2-D edges (p < q), as the split has them."""
    p, q = edges[:, 0], edges[:, 1]
    return np.concatenate([np.column_stack([lo[p], lo[q], hi[q]]), np.column_stack([lo[p], hi[q], hi[p]])])


def _boundary_edges(tri: np.ndarray) -> np.ndarray:
    """Sorted edges used by exactly one of the triangles."""
    e = np.concatenate([tri[:, [0, 1]], tri[:, [1, 2]], tri[:, [0, 2]]])
    e = np.sort(e, axis=1)
    u, count = np.unique(e, axis=0, return_counts=True)
    return u[count == 1]


def extrude(case: Case, skin: SkinTriangulation, sizes: dict[str, float]) -> LayeredMesh:
    """Extrude the skin triangulation through the tissue levels and each pad's levels."""
    zs, owner = tissue_levels(case, sizes)
    pads = pad_levels(case, sizes)
    n2, nz = len(skin.xy), len(zs)
    points = [np.column_stack([np.tile(skin.xy, (nz, 1)), np.repeat(zs, n2)])]
    n_nodes = n2 * nz
    tets, groups, facets, fgroups = [], [], [], []
    cell_names: list[str] = []
    facet_names: list[str] = []

    def cname(n: str) -> int:
        if n not in cell_names:
            cell_names.append(n)
        return cell_names.index(n)

    def fname(n: str) -> int:
        if n not in facet_names:
            facet_names.append(n)
        return facet_names.index(n)

    tri = skin.triangles
    ids = np.arange(n2)
    h_xy = np.max(
        np.linalg.norm(skin.xy[tri[:, [1, 2, 2]]] - skin.xy[tri[:, [0, 0, 1]]], axis=2), axis=1
    )
    aspect: dict[str, float] = {}
    for j in range(nz - 1):
        layer = case.layers[owner[j]]
        t = _prism_tets(tri, ids + j * n2, ids + (j + 1) * n2)
        tets.append(t)
        groups.append(np.full(len(t), cname(f"layer:{layer.label}")))
        a = float(prism_aspect(h_xy, zs[j] - zs[j + 1]).max())
        aspect[layer.label] = max(aspect.get(layer.label, 0.0), a)
    # Skin surface, bottom and the four sides of the tissue block.
    for k, e in enumerate(case.electrodes):
        sel = skin.region == k
        if not sel.any():
            raise MeshError(f"electrode {e.name}: its footprint holds no triangle of the skin mesh")
        facets.append(tri[sel])
        fgroups.append(np.full(int(sel.sum()), fname(f"skin_under:{e.name}" if e.gel is not None else f"electrode:{e.name}")))
    bare = skin.region < 0
    facets.append(tri[bare])
    fgroups.append(np.full(int(bare.sum()), fname("skin_exposed")))
    facets.append(tri + (nz - 1) * n2)
    fgroups.append(np.full(len(tri), fname("bottom")))
    border = _boundary_edges(tri)
    for j in range(nz - 1):
        f = _quad_tris(border, ids + j * n2, ids + (j + 1) * n2)
        facets.append(f)
        fgroups.append(np.full(len(f), fname("sides")))
    # Gel pads: the footprint's triangles extruded up; level 0 shares the skin vertices.
    for k, e in enumerate(case.electrodes):
        if e.name not in pads:
            continue
        pz, sub = pads[e.name]
        ftri = tri[skin.region == k]
        verts = np.unique(ftri)
        level_ids = [ids]
        for z in pz[1:]:
            new = np.full(n2, -1, dtype=np.int64)
            new[verts] = n_nodes + np.arange(len(verts))
            n_nodes += len(verts)
            points.append(np.column_stack([skin.xy[verts], np.full(len(verts), z)]))
            level_ids.append(new)
        names = [f"contact:{e.name}", f"gel:{e.name}"] if e.contact is not None else [f"gel:{e.name}"]
        rim = _boundary_edges(ftri)
        for j in range(len(pz) - 1):
            # Upward: level j is below level j + 1; the split rule is the same either way.
            t = _prism_tets(ftri, level_ids[j], level_ids[j + 1])
            tets.append(t)
            groups.append(np.full(len(t), cname(names[sub[j]])))
            f = _quad_tris(rim, level_ids[j], level_ids[j + 1])
            facets.append(f)
            fgroups.append(np.full(len(f), fname(f"pad_side:{e.name}")))
        facets.append(level_ids[-1][ftri])
        fgroups.append(np.full(len(ftri), fname(f"electrode:{e.name}")))
    pts = np.concatenate(points)
    cells = np.concatenate(tets)
    # Positive orientation (gmsh's quality measures and some readers expect it).
    p = pts[cells]
    det = np.einsum("ij,ij->i", np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), p[:, 3] - p[:, 0])
    if np.any(det == 0):
        raise MeshError("the extruded mesh has a degenerate tetrahedron")
    neg = det < 0
    cells[neg] = cells[neg][:, [1, 0, 2, 3]]
    return LayeredMesh(
        points=pts,
        tets=cells,
        cell_names=cell_names,
        cell_group=np.concatenate(groups),
        facets=np.concatenate(facets),
        facet_names=facet_names,
        facet_group=np.concatenate(fgroups),
        layer_aspect=aspect,
    )


def load_into_gmsh(mesh: LayeredMesh) -> None:
    """Put the mesh into the current gmsh model as discrete entities with named physical groups."""
    import gmsh

    node_tags = np.arange(1, len(mesh.points) + 1)
    elem = 1
    first = True
    for g, name in enumerate(mesh.cell_names):
        ent = gmsh.model.addDiscreteEntity(3)
        if first:  # every node lives on the first volume; elements anywhere may use them
            gmsh.model.mesh.addNodes(3, ent, node_tags, mesh.points.ravel())
            first = False
        t = mesh.tets[mesh.cell_group == g] + 1
        gmsh.model.mesh.addElementsByType(ent, 4, np.arange(elem, elem + len(t)), t.ravel())
        elem += len(t)
        gmsh.model.addPhysicalGroup(3, [ent], name=name)
    for g, name in enumerate(mesh.facet_names):
        ent = gmsh.model.addDiscreteEntity(2)
        f = mesh.facets[mesh.facet_group == g] + 1
        gmsh.model.mesh.addElementsByType(ent, 2, np.arange(elem, elem + len(f)), f.ravel())
        elem += len(f)
        gmsh.model.addPhysicalGroup(2, [ent], name=name)
