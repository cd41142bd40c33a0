"""The layered tissue patch with its gel pads and electrodes, built in gmsh and tagged by name.

Coordinates are metres. ``[mesh] method`` chooses the mesher: ``free`` (the default,
:mod:`emsim.meshes.free`: gmsh tetrahedra graded in 3-D toward the outlines) or ``layered``
(:mod:`emsim.meshes.layered`: the skin triangulation extruded through the tissue layers and the
gel pads). The patch is built flat: the skin surface is the plane z = 0, tissue layers lie below it
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
from dataclasses import dataclass, field, replace
from typing import Any

import gmsh
import numpy as np
from dolfinx.mesh import Mesh, MeshTags
from mpi4py import MPI

from ..errors import InputError, MeshError
from ..models.case import Case
from ..models.electrodes import Electrode
from ..models.shapes import Disk, Polygon, Ring, RoundedRectangle
from . import cache as mesh_cache
from .curvature import SurfaceMap, surface_map
from .distribute import gmsh_model_to_mesh

__all__ = [
    "QUALITY_ACCURACY_BY_DEGREE",
    "QUALITY_SCALE",
    "MeshReport",
    "PatchMesh",
    "add_footprint",
    "build_gmsh_model",
    "build_patch_mesh",
    "contact_sublayer_fraction",
    "edge_size",
    "edge_size_expression",
    "mesh_quality",
    "mesh_sizes",
    "pad_z_levels",
    "quality_accuracy",
    "set_graded_size_options",
]

log = logging.getLogger(__name__)

#: Multiplier of every target element size per mesh quality.
QUALITY_SCALE = {"coarse": 2.0, "default": 1.0, "fine": 0.5}
#: What each quality level buys, by Lagrange degree: the bound on the relative error of the
#: resistance of the benchmark disk (an equipotential disk on a grounded slab, a / D = 0.1; the
#: a = 5 mm, D = 50 mm case of ``emsim verify`` and the a = 4 mm, D = 40 mm case of
#: tests/test_electric.py) on the default free mesh. A quality's name promises this at the
#: degree the case runs, so the default degree (2) is in the table, not only the best one.
#: Measured 2026-12-06 (both disks where two figures; all from below, as a Dirichlet problem's
#: FE resistance is): degree 1: -10.4 / -11.1 %, -7.8 / -8.0 %, -5.7 %; degree 2: -0.89 /
#: -0.96 %, -0.49 / -0.52 %, -0.27 %; degree 3: -0.235 / -0.253 %, -0.117 / -0.122 %, -0.056 %
#: (coarse, default, fine; docs/performance.md). Each bound sits above the measured errors
#: with a margin. On the layered mesh at degree 2: -0.42 % (coarse, 1.5e5 dofs) and -0.23 %
#: (default, 4.5e5 dofs), within the same bounds. ``emsim verify``, ``mesh_report.json`` and
#: tests/test_electric.py use this table (:func:`quality_accuracy`).
QUALITY_ACCURACY_BY_DEGREE: dict[int, dict[str, float]] = {
    1: {"coarse": 0.12, "default": 0.09, "fine": 0.06},
    2: {"coarse": 0.010, "default": 0.006, "fine": 0.003},
    3: {"coarse": 0.005, "default": 0.0025, "fine": 0.0012},
}


def quality_accuracy(quality: str, degree: int) -> float:
    """The relative error bound [-] a mesh quality is named for at a Lagrange degree.

    Args:
        quality: "coarse", "default" or "fine".
        degree: 1, 2 or 3.

    Raises:
        InputError: an unknown quality or degree.
    """
    by_quality = QUALITY_ACCURACY_BY_DEGREE.get(degree)
    if by_quality is None:
        raise InputError("mesh.degree", degree, f"one of {sorted(QUALITY_ACCURACY_BY_DEGREE)}")
    if quality not in by_quality:
        raise InputError("mesh.quality", quality, f"one of {', '.join(by_quality)}")
    return by_quality[quality]

#: Fraction of a gel pad's thickness given to the contact sublayer.
contact_sublayer_fraction = 0.5

# Target sizes at quality "default" [m].
_H_EDGE = 0.4e-3  # at electrode outlines, where the current density peaks
_H_EDGE_REL = 1.0 / 12.0  # ... and at most this fraction of the electrode's half extent
_GRADING = 0.3  # size growth per metre of distance from an electrode outline
_H_SURFACE = 8e-3  # on the skin surface away from electrodes (weak current there; thin skin has its layer box)
_PER_DEEPEST = 2.0  # elements across the thickest layer: the largest size
_MU_FREE = 0.5  # grading exponent toward outlines of the free mesher: h ~ d^(1 - mu)
_Z_MIN = 0.05  # smallest level height (at the skin and pad tops), as a fraction of the edge size
# Grading exponent toward outlines of the layered mesher, h ~ d^(1 - mu) (see edge_size): mu below lambda / p, with
# lambda = 1/2 the exponent of the rim singularity (potential ~ r^(1/2)) and p the degree, keeps
# the optimal rate of degree p (Babuska, Kellogg & Pitkaranta 1979; Apel 1999, ch. 3).
_SINGULAR_EXPONENT = 0.5
_TIP = 0.05  # smallest size at an outline, as a fraction of the edge size


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
        layer_aspect_max: the largest prism aspect ratio per tissue layer label (bounded by
            :data:`emsim.meshes.layered.MAX_ASPECT`; empty for the free mesher and an imported mesh).
        named_accuracy: the relative error bound [-] the case's quality is named for at its
            degree (:func:`quality_accuracy`); None for an imported mesh, which has no quality.
    """

    cells: int
    vertices: int
    h_min_m: float
    h_max_m: float
    quality_min: float
    quality_p01: float
    quality_mean: float
    target_sizes_m: dict[str, float] = field(default_factory=dict)
    layer_aspect_max: dict[str, float] = field(default_factory=dict)
    named_accuracy: float | None = None

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
            "layer_aspect_max": dict(self.layer_aspect_max),
            "quality_named_disk_error": (
                self.named_accuracy
                if self.named_accuracy is not None
                else "not named: an imported mesh has no quality level"
            ),
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
        layer_thicknesses_m: the tissue stack the node coordinates hold, top layer first [m]
            (:func:`emsim.meshes.morph.morph_layers` moves them), or None for an imported mesh.
        mesher: what made the cells: ``"free"`` or ``"layered"`` (the case's ``[mesh] method``),
            or ``"imported"`` (a mesh file; its ``method`` is ignored). The solvers' choices that
            depend on the cells' shape (the layered mesher's flat prisms) read it here.
        from_cache: True when gmsh did not run: the mesh was read from the mesh cache
            (:mod:`emsim.meshes.cache`), the same nodes, cells and tags as a fresh build.
    """

    mesh: Mesh
    cell_tags: MeshTags
    facet_tags: MeshTags
    volumes: dict[str, int]
    surfaces: dict[str, int]
    report: MeshReport
    surface: SurfaceMap | None = None
    layer_thicknesses_m: tuple[float, ...] | None = None
    mesher: str = "free"
    from_cache: bool = False

    def skin_surface_tags(self) -> dict[str, int]:
        """Tags of every surface that is skin, by name."""
        out = {n: t for n, t in self.surfaces.items() if n == "skin_exposed" or n.startswith("skin_under:")}
        return out


def mesh_sizes(case: Case) -> dict[str, float]:
    """The target sizes [m] of a case's mesh at its quality and size factor.

    ``edge``: size near an outline; ``tip``: the smallest, at the outline; ``z_min``: the
    smallest level height of the layered mesh (at the skin and the pad top); ``surface``: the
    skin size far from the electrodes; ``max``: the largest size anywhere; ``mu``: the grading
    exponent (0.5 for the free mesher, 0.5 / degree for the layered one); ``across_layer``: the
    case's ``[mesh] cells_across_layer``, only when set (else the meshers' rule).
    """
    s = QUALITY_SCALE[case.mesh.quality] * case.mesh.size_factor
    half = min(min(e.half_extent_m) for e in case.electrodes)
    h_edge = s * min(_H_EDGE, _H_EDGE_REL * half)
    h_max = s * max(layer.thickness_m for layer in case.layers) / _PER_DEEPEST
    h_max = max(h_max, 2 * h_edge)
    out = {
        "edge": h_edge,
        "tip": _TIP * h_edge,
        "z_min": _Z_MIN * h_edge,
        "mu": _MU_FREE if case.mesh.method == "free" else _SINGULAR_EXPONENT / case.mesh.degree,
        "surface": max(s * _H_SURFACE, h_edge),
        "max": h_max,
        "grading_per_m": _GRADING,
        "scale": s,
    }
    if case.mesh.cells_across_layer is not None:
        out["across_layer"] = case.mesh.cells_across_layer
    return out


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


def set_graded_size_options(h_max: float, h_min: float) -> None:
    """Gmsh options of every graded emsim mesh: sizes from the background field alone, bounded.

    Sizes come only from the field (not from points, boundaries or curvature), surfaces use the
    Frontal-Delaunay algorithm, and one thread with a fixed seed makes the mesh deterministic
    (reruns byte-identical).

    Args:
        h_max: the largest element size [m].
        h_min: the smallest element size [m].
    """
    for key, value in (
        ("Mesh.MeshSizeMax", h_max),
        ("Mesh.MeshSizeMin", h_min),
        ("Mesh.MeshSizeExtendFromBoundary", 0),
        ("Mesh.MeshSizeFromPoints", 0),
        ("Mesh.MeshSizeFromCurvature", 0),
        ("Mesh.Algorithm", 6),  # Frontal-Delaunay for surfaces
        ("General.NumThreads", 1),
        ("Mesh.RandomSeed", 1),
    ):
        gmsh.option.setNumber(key, value)


def edge_size_expression(sizes: dict[str, float], distance: str) -> str:
    """:func:`edge_size` as a gmsh MathEval expression of the field ``distance`` (e.g. ``F1``)."""
    he = sizes["edge"]
    return (
        f"{sizes['tip']:.9g} + {he:.9g}*({distance}/{he:.9g})^{1.0 - sizes['mu']:.9g}"
        f" + {sizes['grading_per_m']:.9g}*{distance}"
    )


def pad_z_levels(case: Case) -> dict[str, list[float]]:
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


def _ring(occ: Any, shape: Ring, cx: float, cy: float, z: float) -> int:
    ro, ri = shape.outer_diameter_m / 2, shape.inner_diameter_m / 2
    out, _ = occ.cut([(2, occ.addDisk(cx, cy, z, ro, ro))], [(2, occ.addDisk(cx, cy, z, ri, ri))])
    return out[0][1]


def _polygon(occ: Any, shape: Polygon, cx: float, cy: float, z: float) -> int:
    pts = [occ.addPoint(cx + x, cy + y, z) for x, y in shape.vertices_m]
    lines = [occ.addLine(a, b) for a, b in zip(pts, pts[1:] + pts[:1], strict=True)]
    return occ.addPlaneSurface([occ.addCurveLoop(lines)])


#: How gmsh draws each footprint class (the only place that knows the shapes' kinds).
_FOOTPRINTS: dict[type, Callable[..., int]] = {Disk: _disk, RoundedRectangle: _rounded_rectangle, Ring: _ring, Polygon: _polygon}


def add_footprint(occ: Any, e: Electrode, z: float) -> int:
    """Add the electrode's footprint as a plane surface at height z; return its tag."""
    draw = _FOOTPRINTS.get(type(e.shape))
    if draw is None:
        raise MeshError(f"electrode {e.name}: no gmsh footprint for shape {e.shape.kind!r}")
    return draw(occ, e.shape, e.center_m[0], e.center_m[1], z)


def _build_layered(case: Case, sizes: dict[str, float], surface: SurfaceMap | None) -> dict[str, float]:
    """Mesh the case as layers into the current gmsh model (mapped when curved); the aspect per layer."""
    import gmsh

    from .layered import extrude, load_into_gmsh, skin_triangulation

    current = gmsh.model.getCurrent()
    gmsh.model.add(f"{current}-skin")
    try:
        skin = skin_triangulation(case, sizes)
    finally:
        gmsh.model.setCurrent(f"{current}-skin")
        gmsh.model.remove()
        gmsh.model.setCurrent(current)
    layered = extrude(case, skin, sizes)
    for e in case.electrodes:
        if f"electrode:{e.name}" not in layered.facet_names:
            raise MeshError(f"electrode {e.name}: its metal face was not found in the geometry")
    if surface is not None:
        layered = replace(layered, points=surface.to_curved(layered.points))
    load_into_gmsh(layered)
    return layered.layer_aspect


def _map_nodes(surface: SurfaceMap) -> None:
    """Move every node of the current gmsh mesh from the flat patch onto the curved one."""
    import gmsh

    tags, coords, _ = gmsh.model.mesh.getNodes(includeBoundary=True, returnParametricCoord=False)
    curved = surface.to_curved(coords.reshape(-1, 3))
    for tag, xyz in zip(tags.tolist(), curved.tolist(), strict=True):
        gmsh.model.mesh.setNode(tag, xyz, [])


def _build(case: Case, sizes: dict[str, float], surface: SurfaceMap | None) -> dict[str, float]:
    """Mesh the case by its ``[mesh] method`` into the current gmsh model; the aspect per layer (layered only)."""
    if case.mesh.method == "layered":
        return _build_layered(case, sizes, surface)
    from .free import build_free  # here, not at the top: free imports this module's helpers

    build_free(case, sizes)
    if surface is not None:
        _map_nodes(surface)
    return {}


def build_gmsh_model(case: Case) -> dict[str, tuple[int, int]]:
    """Build the case's meshed, tagged (and, when curved, mapped) patch in the current gmsh model.

    For export to a gmsh file (e.g. :func:`emsim.io.cache.write_msh`): gmsh must be initialised and a model added;
    call on one rank. Returns the physical groups as name -> (dimension, tag).

    Raises:
        MeshError: a surface could not be identified.
    """
    import gmsh

    _build(case, mesh_sizes(case), surface_map(case.patch.shape, case.patch.curvature_radius_m))
    return {gmsh.model.getPhysicalName(d, t): (d, t) for d, t in gmsh.model.getPhysicalGroups()}


def mesh_quality() -> tuple[int, int, float, float, float, float, float]:
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
    with a ``[mesh] file`` loads that file instead (:mod:`emsim.meshes.imported`). A geometry
    meshed before is read from the mesh cache instead of meshed again (:mod:`emsim.meshes.cache`;
    ``EMSIM_MESH_CACHE=off`` turns it off).

    Args:
        case: the case whose geometry to mesh.
        comm: MPI communicator (default ``MPI.COMM_WORLD``).
        max_dofs: refuse the case when its estimated dofs exceed this (default
            :data:`emsim.meshes.estimate.DEFAULT_MAX_DOFS`).

    Returns:
        The tagged mesh with its report.

    Raises:
        InputError: the estimated dofs exceed ``max_dofs`` (the message gives the estimate), or
            a mesh cache setting is not one it may be (:func:`emsim.meshes.cache.settings`).
        MeshError: gmsh failed or a surface could not be identified.
    """
    from .estimate import DEFAULT_MAX_DOFS, check_resources  # local: estimate imports this module

    if case.mesh.file is not None:  # imported anatomy: the file's mesh, its groups mapped to roles
        from .imported import load_tagged_mesh  # local: imported imports this module

        return load_tagged_mesh(case, comm)
    check_resources(case, DEFAULT_MAX_DOFS if max_dofs is None else max_dofs)  # same on every rank

    comm = comm or MPI.COMM_WORLD
    cache_cfg = mesh_cache.settings()  # on every rank: a bad setting is refused by all of them
    sizes = mesh_sizes(case)
    surface = surface_map(case.patch.shape, case.patch.curvature_radius_m)
    stats = aspect = None
    error = None
    cached = False
    if comm.rank == 0:
        if not gmsh.isInitialized():
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add(case.name)
        try:
            key, hit = mesh_cache.lookup(cache_cfg, case, sizes)  # the same geometry meshed before: read into the model
            if hit is not None:
                (stats, aspect), cached = hit, True
            else:
                aspect = _build(case, sizes, surface)
                stats = mesh_quality()
                mesh_cache.store(cache_cfg, key, stats, aspect, case_name=case.name)
        except MeshError as err:
            error = str(err)
        except Exception as err:  # noqa: BLE001  (gmsh raises plain Exceptions; re-raised as MeshError)
            error = f"gmsh failed: {err}"
    stats, aspect, cached = comm.bcast((stats, aspect, cached), root=0)
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
        layer_aspect_max=dict(aspect or {}),
        named_accuracy=quality_accuracy(case.mesh.quality, case.mesh.degree),
    )
    log.info("mesh %s: %d cells, %d vertices, h_min %.3g m%s", case.name, cells, vertices, hmin, " (from the mesh cache)" if cached else "")
    return PatchMesh(
        mesh=data.mesh,
        cell_tags=data.cell_tags,
        facet_tags=data.facet_tags,
        volumes=volumes,
        surfaces=surfaces,
        report=report,
        surface=surface,
        layer_thicknesses_m=tuple(layer.thickness_m for layer in case.layers),
        mesher=case.mesh.method,
        from_cache=cached,
    )
