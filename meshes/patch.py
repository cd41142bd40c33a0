"""The layered tissue patch with its gel pads and electrodes, built in gmsh and tagged by name.

Coordinates are metres. The patch is built flat: the skin surface is the plane z = 0, tissue layers lie below it
(z < 0, first layer on top) and gel pads above it (0 < z < gel thickness), with the metal
electrode as the pad's top face. An electrode without gel is a patch imprinted on the skin
surface. A curved patch (``[patch] shape = "cylinder" | "sphere"``) is this flat mesh with its
node coordinates mapped onto the curved skin after meshing (:mod:`emsim.meshes.curvature`), so
every tag below survives. When an electrode has both a gel pad and a contact impedance, its pad is split into a
lower *contact sublayer* and the gel above it (see :mod:`emsim.solvers.electric.problem`).

Every volume and surface is a named physical group:

=====================  =========================================================
``layer:LABEL``        tissue layer (LABEL from :class:`emsim.models.Layer`)
``gel:E``              gel pad of electrode E (above the contact sublayer)
``contact:E``          contact sublayer of electrode E's pad
``electrode:E``        the metal face of electrode E (pad top, or imprint on skin)
``skin_under:E``       skin surface under electrode E's gel pad
``skin_exposed``       skin surface not covered by any electrode or pad
``pad_side:E``         side walls of electrode E's gel pad
``bottom``             the deep face, z = -depth
``sides``              the four lateral faces of the tissue block
=====================  =========================================================
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gmsh
import numpy as np
from dolfinx.mesh import Mesh, MeshTags
from mpi4py import MPI

from ..errors import MeshError
from ..models.case import Case
from ..models.electrodes import Electrode
from ..models.shapes import Disk, RoundedRectangle
from .curvature import SurfaceMap, surface_map
from .distribute import gmsh_model_to_mesh

__all__ = [
    "QUALITY_ACCURACY",
    "QUALITY_SCALE",
    "MeshReport",
    "PatchMesh",
    "build_gmsh_model",
    "build_patch_mesh",
    "contact_sublayer_fraction",
    "gmsh_quality",
    "mesh_sizes",
    "pad_levels",
]

log = logging.getLogger(__name__)

#: Multiplier of every target element size per mesh quality.
QUALITY_SCALE = {"coarse": 2.0, "default": 1.0, "fine": 0.5}
#: What each quality level buys: the relative error bound of the resistance of the benchmark
#: disk (a = 4 mm on a grounded slab, D = 40 mm) at degree 3, measured 0.25 %, 0.12 % and
#: 0.06 % (docs/performance.md; degree 2 has about 2.5x these errors). ``emsim verify``
#: checks the disk against these bounds.
QUALITY_ACCURACY = {"coarse": 0.005, "default": 0.0025, "fine": 0.0012}

#: Fraction of a gel pad's thickness given to the contact sublayer.
contact_sublayer_fraction = 0.5

# Target sizes at quality "default" [m].
_H_EDGE = 0.4e-3  # at electrode outlines, where the current density peaks
_H_EDGE_REL = 1.0 / 12.0  # ... and at most this fraction of the electrode's half extent
_GRADING = 0.3  # size growth per metre of distance from an electrode outline
_H_SURFACE = 8e-3  # on the skin surface away from electrodes (weak current there; thin skin has its layer box)
_PER_DEEPEST = 2.0  # elements across the thickest layer: the largest size
# Target size inside a layer: thickness / 2.25 (issue 9: at least two cells across every layer).
# A size of thickness / 2 let gmsh place tetrahedra spanning a whole thin layer (one cell across a
# 1 mm platysma or the 1.9 mm skin); at / 2.25 no cell of the built-in sites spans more than 0.75
# of its layer (tests/test_anatomy.py measures it).
_ACROSS_LAYER = 2.25
_PER_PAD = 1.0  # elements across each gel pad sublayer, at least (never below the edge size)
_MU = 0.5  # grading exponent toward outlines: h ~ d^(1 - mu) (see edge_size)
_TIP = 0.05  # smallest size at an outline, as a fraction of the edge size
_ALGORITHM_3D = 1  # gmsh 3-D algorithm: 1 Delaunay, 10 HXT
_OPTIMIZE = 1  # gmsh tetrahedron optimisation pass


@dataclass(frozen=True, slots=True)
class MeshReport:
    """What a mesh is made of.

    Attributes:
        cells: number of tetrahedra.
        vertices: number of vertices.
        h_min_m: shortest edge [m].
        h_max_m: longest edge [m].
        quality_min: smallest scaled inverse condition number (gmsh ``minSICN``, 1 = ideal).
        quality_p01: 1st percentile of the same quality measure.
        quality_mean: mean of the same quality measure.
        target_sizes_m: the target element sizes used, by name [m].
    """

    cells: int
    vertices: int
    h_min_m: float
    h_max_m: float
    quality_min: float
    quality_p01: float
    quality_mean: float
    target_sizes_m: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """The report as plain data (for JSON)."""
        return {
            "cells": self.cells,
            "vertices": self.vertices,
            "h_min_m": self.h_min_m,
            "h_max_m": self.h_max_m,
            "quality_min_sicn": self.quality_min,
            "quality_p01_sicn": self.quality_p01,
            "quality_mean_sicn": self.quality_mean,
            "target_sizes_m": dict(self.target_sizes_m),
        }


@dataclass(frozen=True)
class PatchMesh:
    """A tagged DOLFINx mesh of a case's patch.

    Attributes:
        mesh: the DOLFINx mesh (distributed over the communicator).
        cell_tags: volume tags (values from ``volumes``).
        facet_tags: surface tags (values from ``surfaces``).
        volumes: volume tag by name (``layer:skin``, ``gel:A``, ``contact:A``).
        surfaces: surface tag by name (``electrode:A``, ``skin_exposed``, ``bottom``, ...).
        report: cells, vertices, sizes and quality.
        surface: the map of the flat patch onto a curved one (its local frames rotate the
            contact sublayers and muscle fibres), or None for a flat patch or an imported mesh.
    """

    mesh: Mesh
    cell_tags: MeshTags
    facet_tags: MeshTags
    volumes: dict[str, int]
    surfaces: dict[str, int]
    report: MeshReport
    surface: SurfaceMap | None = None

    def skin_surface_tags(self) -> dict[str, int]:
        """Tags of every surface that is skin, by name."""
        out = {n: t for n, t in self.surfaces.items() if n == "skin_exposed" or n.startswith("skin_under:")}
        return out


def mesh_sizes(case: Case) -> dict[str, float]:
    """The target sizes [m] of a case's patch mesh: at the pad rims (edge, tip), over the skin, at most."""
    s = QUALITY_SCALE[case.mesh.quality] * case.mesh.size_factor
    half = min(min(e.half_extent_m) for e in case.electrodes)
    h_edge = s * min(_H_EDGE, _H_EDGE_REL * half)
    h_max = s * max(layer.thickness_m for layer in case.layers) / _PER_DEEPEST
    h_max = max(h_max, 2 * h_edge)
    return {
        "edge": h_edge,
        "tip": _TIP * h_edge,
        "mu": _MU,
        "surface": max(s * _H_SURFACE, h_edge),
        "max": h_max,
        "grading_per_m": _GRADING,
        "scale": s,
    }


def layer_box_size(sizes: dict[str, float], thickness_m: float) -> float:
    """Largest size [m] inside a tissue layer: thickness / 2.25, so at least two cells across it.

    A thin target muscle or bone must be resolved (issue 9); the graded field refines further at
    the outlines. The same at every quality: the layer's own scale sets it, not the mesh's.
    """
    return min(sizes["max"], thickness_m / _ACROSS_LAYER)


def pad_box_size(sizes: dict[str, float], sublayer_m: float) -> float:
    """Largest size [m] inside a gel pad whose thinnest sublayer is ``sublayer_m`` thick."""
    return min(sizes["max"], max(sublayer_m / _PER_PAD, sizes["edge"]))


def edge_size(sizes: dict[str, float], distance_m: Any) -> Any:
    """Target size [m] at a distance [m] from the nearest electrode or pad outline.

    h(d) = h_tip + h_edge (d / h_edge)^(1 - mu) + g d: the potential near the rim of an
    equipotential disk behaves like r^(1/2) (the current density like r^(-1/2)), and a mesh
    whose size grows like d^(1 - mu) toward it recovers the convergence rate a smooth solution
    would have when mu is small enough (graded meshes for corner singularities: Babuska,
    Kellogg & Pitkaranta 1979, Numer Math 33:447; Apel 1999, "Anisotropic finite elements",
    ch. 3). ``h_tip`` bounds the smallest elements; ``g`` keeps the growth going far away.
    """
    d = np.asarray(distance_m, dtype=float)
    he = sizes["edge"]
    return sizes["tip"] + he * (d / he) ** (1.0 - sizes["mu"]) + sizes["grading_per_m"] * d


def edge_size_expression(sizes: dict[str, float], distance: str) -> str:
    """:func:`edge_size` as a gmsh MathEval expression of the field ``distance`` (e.g. ``F1``)."""
    he = sizes["edge"]
    return (
        f"{sizes['tip']:.9g} + {he:.9g}*({distance}/{he:.9g})^{1.0 - sizes['mu']:.9g}"
        f" + {sizes['grading_per_m']:.9g}*{distance}"
    )


def _pos(a: str) -> str:
    """max(a, 0) in gmsh's MathEval syntax (which has abs but no max)."""
    return f"(0.5*(({a})+abs({a})))"


def _outline_distance_expression(e: Electrode, z_m: float) -> str:
    """Distance [m] from (x, y, z) to electrode e's outline at height z_m, as a MathEval expression."""
    cx, cy = e.center_m
    dx, dy = f"(x-({cx:.12g}))", f"(y-({cy:.12g}))"
    shape = e.shape
    if isinstance(shape, Disk):
        lateral = f"(sqrt({dx}^2+{dy}^2)-{shape.diameter_m / 2:.12g})"
    elif isinstance(shape, RoundedRectangle):
        # Signed distance of a rounded box (as RoundedRectangle.signed_distance).
        hx, hy = shape.half_extent_m
        r = shape.corner_radius_m
        qx, qy = f"(abs({dx})-{hx - r:.12g})", f"(abs({dy})-{hy - r:.12g})"
        larger = f"(0.5*({qx}+{qy}+abs({qx}-{qy})))"
        lateral = f"(sqrt({_pos(qx)}^2+{_pos(qy)}^2)-{_pos(f'-{larger}')}-{r:.12g})"
    else:
        raise MeshError(f"electrode {e.name}: no distance expression for shape {shape.kind!r}")
    return f"sqrt({lateral}^2+(z-({z_m:.12g}))^2)"


def pad_levels(case: Case) -> dict[str, list[float]]:
    """Z levels [m] of each gel pad: [0, (sublayer top,) pad top]."""
    out = {}
    for e in case.electrodes:
        if e.gel is None:
            continue
        t = e.gel.thickness_m
        out[e.name] = [0.0, contact_sublayer_fraction * t, t] if e.contact is not None else [0.0, t]
    return out


def _disk(occ: Any, shape: Disk, cx: float, cy: float, z: float) -> int:
    r = shape.diameter_m / 2
    return occ.addDisk(cx, cy, z, r, r)


def _rounded_rectangle(occ: Any, shape: RoundedRectangle, cx: float, cy: float, z: float) -> int:
    hx, hy = shape.half_extent_m
    return occ.addRectangle(cx - hx, cy - hy, z, 2 * hx, 2 * hy, roundedRadius=shape.corner_radius_m)


#: How gmsh draws each footprint class (the only place that knows the shapes' kinds).
_FOOTPRINTS: dict[type, Callable[..., int]] = {Disk: _disk, RoundedRectangle: _rounded_rectangle}


def _add_footprint(occ: Any, e: Electrode, z: float) -> int:
    """Add the electrode's footprint as a plane surface at height z; return its tag."""
    draw = _FOOTPRINTS.get(type(e.shape))
    if draw is None:
        raise MeshError(f"electrode {e.name}: no gmsh footprint for shape {e.shape.kind!r}")
    return draw(occ, e.shape, e.center_m[0], e.center_m[1], z)


#: Geometric tolerance [m] of the tagging (gmsh pads bounding boxes by 1e-7 m).
_TOL_M = 1e-6

Groups = dict[str, list[tuple[int, list[int]]]]


def _add(groups: Groups, name: str, dim: int, tag: int) -> None:
    groups.setdefault(name, []).append((dim, [tag]))


def _build_gmsh_model(case: Case, sizes: dict[str, float]) -> Groups:
    """Build geometry and mesh in the current gmsh model; return physical groups by name."""
    layer_z, levels = _add_geometry(case)
    groups: Groups = {}
    _tag_volumes(case, layer_z, levels, groups)
    _tag_surfaces(case, layer_z, levels, groups)
    _add_physical_groups(case, groups)
    _mesh_with_size_fields(case, sizes, layer_z, levels)
    return groups


def _add_geometry(case: Case) -> tuple[list[tuple[float, float]], dict[str, list[float]]]:
    """Layers, pads and electrode footprints in the current gmsh model, fragmented together.

    Returns:
        The (bottom, top) z of every layer [m] and the z levels of every pad.
    """
    occ = gmsh.model.occ
    W, L = case.patch.width_m, case.patch.length_m
    z_top = 0.0
    layer_z: list[tuple[float, float]] = []
    objects: list[tuple[int, int]] = []
    for layer in case.layers:
        z_bot = z_top - layer.thickness_m
        objects.append((3, occ.addBox(-W / 2, -L / 2, z_bot, W, L, layer.thickness_m)))
        layer_z.append((z_bot, z_top))
        z_top = z_bot
    levels = pad_levels(case)
    for e in case.electrodes:
        if e.name in levels:
            zs = levels[e.name]
            for z0, z1 in itertools.pairwise(zs):
                surf = _add_footprint(occ, e, z0)
                ext = occ.extrude([(2, surf)], 0, 0, z1 - z0)
                objects.extend(d for d in ext if d[0] == 3)
        else:
            objects.append((2, _add_footprint(occ, e, 0.0)))
    occ.fragment(objects, [])
    occ.synchronize()
    return layer_z, levels


def _tag_volumes(case: Case, layer_z: list[tuple[float, float]], levels: dict[str, list[float]], groups: Groups) -> None:
    """Name every volume by its centre of mass: a layer, a pad's gel or its contact sublayer."""
    for _, tag in gmsh.model.getEntities(3):
        x, y, z = gmsh.model.occ.getCenterOfMass(3, tag)
        if z < 0:
            for layer, (z0, z1) in zip(case.layers, layer_z, strict=True):
                if z0 - _TOL_M <= z <= z1 + _TOL_M:
                    _add(groups, f"layer:{layer.label}", 3, tag)
                    break
            else:
                raise MeshError(f"volume {tag} at z = {z:g} m lies in no layer")
            continue
        owner = [e for e in case.electrodes if e.name in levels and e.contains(x, y, tol=_TOL_M)]
        if len(owner) != 1:
            raise MeshError(f"volume {tag} at ({x:g}, {y:g}, {z:g}) m belongs to no single pad")
        e = owner[0]
        zs = levels[e.name]
        _add(groups, f"contact:{e.name}" if len(zs) == 3 and z < zs[1] else f"gel:{e.name}", 3, tag)


def _tag_surfaces(case: Case, layer_z: list[tuple[float, float]], levels: dict[str, list[float]], groups: Groups) -> None:
    """Name every surface by its bounding box and centre of mass (skin, electrodes, pads, faces)."""
    W, L = case.patch.width_m, case.patch.length_m
    depth = -layer_z[-1][0]
    for _, tag in gmsh.model.getEntities(2):
        x0, y0, z0, x1, y1, z1 = gmsh.model.getBoundingBox(2, tag)
        x, y, z = gmsh.model.occ.getCenterOfMass(2, tag)
        if abs(z1 - z0) < _TOL_M:  # horizontal
            if abs(z) < _TOL_M:
                # A footprint has the footprint's area; the skin around it may share its centre.
                area = gmsh.model.occ.getMass(2, tag)
                owner = [
                    e
                    for e in case.electrodes
                    if e.contains(x, y, tol=_TOL_M) and abs(area - e.area_m2) <= 1e-6 * e.area_m2
                ]
                if not owner:
                    _add(groups, "skin_exposed", 2, tag)
                elif owner[0].gel is None:
                    _add(groups, f"electrode:{owner[0].name}", 2, tag)
                else:
                    _add(groups, f"skin_under:{owner[0].name}", 2, tag)
            elif abs(z + depth) < _TOL_M:
                _add(groups, "bottom", 2, tag)
            elif z > 0:
                owner = [e for e in case.electrodes if e.name in levels and e.contains(x, y, tol=_TOL_M)]
                if owner and abs(z - levels[owner[0].name][-1]) < _TOL_M:
                    _add(groups, f"electrode:{owner[0].name}", 2, tag)
            continue
        if z < 0:
            on_side = (
                abs(x1 - x0) < _TOL_M and (abs(x0 + W / 2) < _TOL_M or abs(x0 - W / 2) < _TOL_M)
            ) or (abs(y1 - y0) < _TOL_M and (abs(y0 + L / 2) < _TOL_M or abs(y0 - L / 2) < _TOL_M))
            if on_side:
                _add(groups, "sides", 2, tag)
            continue
        owner = [e for e in case.electrodes if e.name in levels and e.contains(x, y, tol=2 * _TOL_M)]
        if owner:
            _add(groups, f"pad_side:{owner[0].name}", 2, tag)


def _add_physical_groups(case: Case, groups: Groups) -> None:
    """Check the faces every case needs and add the named groups to the gmsh model."""
    for e in case.electrodes:
        if f"electrode:{e.name}" not in groups:
            raise MeshError(f"electrode {e.name}: its metal face was not found in the geometry")
    if "bottom" not in groups:
        raise MeshError("the deep face was not found in the geometry")

    for name, items in groups.items():
        dim = items[0][0]
        tags = [t for _, ts in items for t in ts]
        gmsh.model.addPhysicalGroup(dim, tags, name=name)


def _mesh_with_size_fields(
    case: Case, sizes: dict[str, float], layer_z: list[tuple[float, float]], levels: dict[str, list[float]]
) -> None:
    """Size fields graded from electrode outlines, bounded per layer and per pad; then mesh in 3-D."""
    W, L = case.patch.width_m, case.patch.length_m
    fld = gmsh.model.mesh.field
    fields = []
    h_edge, h_max = sizes["edge"], sizes["max"]
    # Graded toward every electrode and pad outline (on the skin and at the pad top). The exact
    # distance as an expression: a gmsh Distance field samples the curves, and the sampling that
    # resolves the smallest elements made the 1-D meshing alone take seconds.
    for e in case.electrodes:
        for z_level in sorted({0.0, levels[e.name][-1] if e.name in levels else 0.0}):
            graded = fld.add("MathEval")
            fld.setString(graded, "F", edge_size_expression(sizes, _outline_distance_expression(e, z_level)))
            fields.append(graded)
    # Skin surface: refine toward z = 0 from below.
    surf = fld.add("MathEval")
    fld.setString(surf, "F", f"{sizes['surface']:.9g} + {sizes['grading_per_m']:.9g}*abs(z)")
    fields.append(surf)
    for layer, (z0, z1) in zip(case.layers, layer_z, strict=True):
        box = fld.add("Box")
        fld.setNumber(box, "VIn", layer_box_size(sizes, layer.thickness_m))
        fld.setNumber(box, "VOut", h_max)
        for k, v in zip(
            ("XMin", "XMax", "YMin", "YMax", "ZMin", "ZMax"),
            (-W, W, -L, L, z0 - _TOL_M, z1 + _TOL_M),
            strict=True,
        ):
            fld.setNumber(box, k, v)
        fields.append(box)
    for e in case.electrodes:
        if e.name not in levels:
            continue
        zs = levels[e.name]
        dz = min(b - a for a, b in itertools.pairwise(zs))
        (cx, cy), (hx, hy) = e.center_m, e.half_extent_m
        box = fld.add("Box")
        fld.setNumber(box, "VIn", pad_box_size(sizes, dz))
        fld.setNumber(box, "VOut", h_max)
        for k, v in zip(
            ("XMin", "XMax", "YMin", "YMax", "ZMin", "ZMax"),
            (cx - hx - _TOL_M, cx + hx + _TOL_M, cy - hy - _TOL_M, cy + hy + _TOL_M, -_TOL_M, zs[-1] + _TOL_M),
            strict=True,
        ):
            fld.setNumber(box, k, v)
        fields.append(box)
    fmin = fld.add("Min")
    fld.setNumbers(fmin, "FieldsList", fields)
    fld.setAsBackgroundMesh(fmin)
    gmsh.option.setNumber("Mesh.MeshSizeMax", h_max)
    gmsh.option.setNumber("Mesh.MeshSizeMin", min(0.25 * h_edge, sizes["tip"]) if sizes["tip"] > 0 else 0.25 * h_edge)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 0)
    gmsh.option.setNumber("Mesh.Algorithm", 6)  # Frontal-Delaunay for surfaces
    gmsh.option.setNumber("Mesh.Algorithm3D", _ALGORITHM_3D)
    gmsh.option.setNumber("Mesh.Optimize", _OPTIMIZE)
    gmsh.option.setNumber("General.NumThreads", 1)  # deterministic meshes
    gmsh.option.setNumber("Mesh.RandomSeed", 1)
    gmsh.model.mesh.generate(3)



def build_gmsh_model(case: Case) -> dict[str, tuple[int, int]]:
    """Build the case's meshed, tagged (and, when curved, mapped) patch in the current gmsh model.

    For export (e.g. ``gmsh.write("patch.msh")``): gmsh must be initialised and a model added;
    call on one rank. Returns the physical groups as name -> (dimension, tag).

    Raises:
        MeshError: a surface could not be identified.
    """
    _build_gmsh_model(case, mesh_sizes(case))
    surface = surface_map(case.patch.shape, case.patch.curvature_radius_m)
    if surface is not None:
        _map_nodes(surface)
    return {gmsh.model.getPhysicalName(d, t): (d, t) for d, t in gmsh.model.getPhysicalGroups()}


def _map_nodes(surface: SurfaceMap) -> None:
    """Move every node of the current gmsh mesh from the flat patch onto the curved one."""
    tags, coords, _ = gmsh.model.mesh.getNodes(includeBoundary=True, returnParametricCoord=False)
    curved = surface.to_curved(coords.reshape(-1, 3))
    for tag, xyz in zip(tags.tolist(), curved.tolist(), strict=True):
        gmsh.model.mesh.setNode(tag, xyz, [])


def gmsh_quality() -> tuple[int, int, float, float, float, float, float]:
    """Cells, vertices, shortest and longest edge [m], min / 1st percentile / mean minSICN."""
    types, elem_tags, elem_nodes = gmsh.model.mesh.getElements(3)
    tets = np.concatenate([t for ty, t in zip(types, elem_tags, strict=True) if ty == 4])
    nodes = np.concatenate([n for ty, n in zip(types, elem_nodes, strict=True) if ty == 4]).reshape(-1, 4)
    q = np.asarray(gmsh.model.mesh.getElementQualities(tets, "minSICN"))
    tag_all, coords, _ = gmsh.model.mesh.getNodes(includeBoundary=True, returnParametricCoord=False)
    index = np.zeros(int(tag_all.max()) + 1, dtype=np.int64)
    index[tag_all.astype(np.int64)] = np.arange(len(tag_all))
    xyz = coords.reshape(-1, 3)[index[nodes.astype(np.int64)]]
    lengths = np.stack([np.linalg.norm(xyz[:, i] - xyz[:, j], axis=1) for i, j in itertools.combinations(range(4), 2)])
    return (
        len(tets),
        len(np.unique(nodes)),
        float(lengths.min()),
        float(lengths.max()),
        float(q.min()),
        float(np.percentile(q, 1)),
        float(q.mean()),
    )


def build_patch_mesh(case: Case, comm: MPI.Comm | None = None, *, max_dofs: float | None = None) -> PatchMesh:
    """Build, tag and distribute the mesh of a case's patch.

    gmsh runs on rank 0 only; the mesh is then distributed over ``comm``. Before anything is
    meshed, the size of the mesh and solve is estimated (:mod:`emsim.meshes.estimate`). A case
    with a ``[mesh] file`` loads that file instead (:mod:`emsim.meshes.imported`).

    Args:
        case: the case whose geometry to mesh.
        comm: MPI communicator (default ``MPI.COMM_WORLD``).
        max_dofs: refuse the case when its estimated dofs exceed this (default
            :data:`emsim.meshes.estimate.DEFAULT_MAX_DOFS`).

    Returns:
        The tagged mesh with its report.

    Raises:
        InputError: the estimated dofs exceed ``max_dofs`` (the message gives the estimate).
        MeshError: gmsh failed or a surface could not be identified.
    """
    from .estimate import DEFAULT_MAX_DOFS, check_resources  # local: estimate imports this module

    if case.mesh.file is not None:  # imported anatomy: the file's mesh, its groups mapped to roles
        from .imported import load_tagged_mesh  # local: imported imports this module

        return load_tagged_mesh(case, comm)
    check_resources(case, DEFAULT_MAX_DOFS if max_dofs is None else max_dofs)  # same on every rank

    comm = comm or MPI.COMM_WORLD
    sizes = mesh_sizes(case)
    surface = surface_map(case.patch.shape, case.patch.curvature_radius_m)
    stats = None
    error = None
    if comm.rank == 0:
        if not gmsh.isInitialized():
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add(case.name)
        try:
            _build_gmsh_model(case, sizes)
            if surface is not None:
                _map_nodes(surface)
            stats = gmsh_quality()
        except MeshError as err:
            error = str(err)
        except Exception as err:  # noqa: BLE001  (gmsh raises plain Exceptions; re-raised as MeshError)
            error = f"gmsh failed: {err}"
    stats = comm.bcast(stats, root=0)
    data = gmsh_model_to_mesh(comm, error, gdim=3)
    volumes: dict[str, int] = {}
    surfaces: dict[str, int] = {}
    for name, group in data.physical_groups.items():
        (volumes if group.dim == 3 else surfaces)[name] = int(group.tag)
    cells, vertices, hmin, hmax, qmin, qp01, qmean = stats
    report = MeshReport(
        cells=cells,
        vertices=vertices,
        h_min_m=hmin,
        h_max_m=hmax,
        quality_min=qmin,
        quality_p01=qp01,
        quality_mean=qmean,
        target_sizes_m={k: v for k, v in sizes.items() if k not in ("grading_per_m", "mu", "scale")},
    )
    log.info("mesh %s: %d cells, %d vertices, h_min %.3g m", case.name, cells, vertices, hmin)
    return PatchMesh(
        mesh=data.mesh,
        cell_tags=data.cell_tags,
        facet_tags=data.facet_tags,
        volumes=volumes,
        surfaces=surfaces,
        report=report,
        surface=surface,
    )
