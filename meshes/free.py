"""The free mesher: gmsh tetrahedra of the layered patch, graded in 3-D toward the outlines.

The default ``[mesh] method = "free"``. The layers, the gel pads and the electrode footprints
are built as OpenCASCADE solids, fragmented together, tagged by their geometry (the names of
:mod:`emsim.meshes.patch`) and meshed by gmsh's Delaunay mesher under a background size field:
the minimum of fields graded from every electrode and pad outline
(:func:`emsim.meshes.patch.edge_size` of the exact distance), a field graded from the skin
surface, and boxes per layer (at least two cells across it) and per pad. Its interfaces are the
flat planes z = const, so :func:`emsim.meshes.morph.morph_layers` moves its nodes as it does the
layered mesh's.
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..errors import MeshError
from ..models.case import Case
from ..models.electrodes import Electrode
from ..models.orbit import globe_geometry
from ..models.shapes import Disk, Polygon, Ring, RoundedRectangle
from .globe import add_globe_solids, globe_pieces, globe_size_expressions
from .patch import add_footprint, edge_size_expression, pad_z_levels, set_graded_size_options

__all__ = ["RELAXED_ACCURACY", "build_free", "far_layer_box_size", "layer_box_size", "pad_box_size", "resolved_regions"]

# Target size inside a layer: thickness / 2.25 (issue 9: at least two cells across every layer).
# A size of thickness / 2 let gmsh place tetrahedra spanning a whole thin layer (one cell across a
# 1 mm platysma or the 1.9 mm skin); at / 2.25 no cell of the built-in sites spans more than 0.75
# of its layer (tests/test_anatomy.py measures it).
_ACROSS_LAYER = 2.25
#: Away from the pads and the globes (issue 18; relaxing issue 9's rule there is put to the team in
#: the issue notes, not yet decided): the layers keep thickness / 2.25 only inside :func:`resolved_regions`; outside them the size inside
#: a layer is thickness / _ACROSS_LAYER_FAR (0.5: twice the thickness; a layer is then one cell
#: across, its cells flat). The default case's safety figures stay within :data:`RELAXED_ACCURACY`
#: of the rule's mesh (tests/test_mesh_relaxed.py; measured in docs/performance.md).
_ACROSS_LAYER_FAR = 0.5
#: Margin of a resolved region (dimensionless): beyond a pad's footprint, a multiple of the
#: footprint's largest half extent; beyond a globe's outer sphere or a zone's disc, of its radius.
_PAD_MARGIN = 2.0
_GLOBE_MARGIN = 0.25
#: The bound on what the relaxation may change in the default case's safety figures, relative to
#: the same case meshed with the rule everywhere: the skin peak current density 1 % (issue 18's
#: accuracy target for the default case's skin peak), the impedance and the electrode voltage
#: 0.5 %, the retina's phosphene ratio 2 % (both ours: ASSUMPTION, below the spread a corner search
#: covers; the phosphene ratio is reported, not binding, in the default case).
#: tests/test_mesh_relaxed.py checks it on the built-in default case (d.c. part).
RELAXED_ACCURACY = {
    "skin_current_density_peak": 0.01,
    "impedance": 0.005,
    "electrode_voltage": 0.005,
    "retina_phosphene_ratio": 0.02,
}
_PER_PAD = 1.0  # elements across each gel pad sublayer, at least (never below the edge size)
_ALGORITHM_3D = 1  # gmsh 3-D algorithm: 1 Delaunay, 10 HXT
_OPTIMIZE = 1  # gmsh tetrahedron optimisation pass
#: Geometric tolerance [m] of the tagging (gmsh pads bounding boxes by 1e-7 m).
_TOL_M = 1e-6

Groups = dict[str, list[tuple[int, list[int]]]]


def layer_box_size(sizes: dict[str, float], thickness_m: float) -> float:
    """Largest size [m] inside a tissue layer: thickness / 2.25, so at least two cells across it.

    A thin target muscle or bone must be resolved (issue 9); the graded field refines further at
    the outlines. The same at every quality: the layer's own scale sets it, not the mesh's. A
    case's ``[mesh] cells_across_layer`` (``sizes["across_layer"]``) replaces the 2.25.
    """
    return min(sizes["max"], thickness_m / sizes.get("across_layer", _ACROSS_LAYER))


def far_layer_box_size(sizes: dict[str, float], thickness_m: float) -> float:
    """Largest size [m] inside a tissue layer outside every :func:`resolved_regions` box.

    Issue 18 relaxes issue 9's two-cells-across rule away from the pads and the globes, where the
    current is weak and no criterion is sampled (the default case's figures are checked against
    the rule's mesh in tests/test_mesh_relaxed.py).
    """
    far = min(sizes["max"], sizes.get("surface", sizes["max"]), thickness_m / _ACROSS_LAYER_FAR)
    return max(far, layer_box_size(sizes, thickness_m))  # never finer than the rule; thick layers keep it


def resolved_regions(case: Case) -> list[tuple[float, float, float, float]]:
    """The (x_min, x_max, y_min, y_max) boxes [m] where every layer is two cells across (issue 9).

    One per gel pad or electrode (its footprint grown by :data:`_PAD_MARGIN` of its largest half
    extent on every side), one per orbit globe (its outer sphere grown by :data:`_GLOBE_MARGIN`
    of its radius) and one per exclusion zone (its disc grown the same): the current under and
    around the pads, the retina the phosphene criterion samples, the zones whose fields are
    reported. Elsewhere :func:`far_layer_box_size` applies.
    """
    out = []
    for e in case.electrodes:
        (cx, cy), (hx, hy) = e.center_m, e.half_extent_m
        m = _PAD_MARGIN * max(hx, hy)
        out.append((cx - hx - m, cx + hx + m, cy - hy - m, cy + hy + m))
    for g in globe_geometry(case):
        cx, cy, _ = g.center_m
        r = (1.0 + _GLOBE_MARGIN) * g.outer_radius_m
        out.append((cx - r, cx + r, cy - r, cy + r))
    for z in case.exclusions:  # every exclusion zone's field is reported: its cells keep the rule
        (cx, cy), r = z.center_m, (1.0 + _GLOBE_MARGIN) * z.radius_m
        out.append((cx - r, cx + r, cy - r, cy + r))
    return out


def pad_box_size(sizes: dict[str, float], sublayer_m: float) -> float:
    """Largest size [m] inside a gel pad whose thinnest sublayer is ``sublayer_m`` thick."""
    return min(sizes["max"], max(sublayer_m / _PER_PAD, sizes["edge"]))


def _pos(a: str) -> str:
    """max(a, 0) in gmsh's MathEval syntax (which has abs but no max)."""
    return f"(0.5*(({a})+abs({a})))"


def _outline_distance_expressions(e: Electrode, z_m: float) -> list[str]:
    """Distances [m] from (x, y, z) to pieces of electrode e's outline at height z_m (MathEval).

    The distance to the outline is the minimum of these (the Min field takes it).
    """
    cx, cy = e.center_m
    dx, dy = f"(x-({cx:.12g}))", f"(y-({cy:.12g}))"
    dz2 = f"(z-({z_m:.12g}))^2"
    shape = e.shape
    if isinstance(shape, Disk):
        laterals = [f"(sqrt({dx}^2+{dy}^2)-{shape.diameter_m / 2:.12g})"]
    elif isinstance(shape, Ring):
        radius = f"sqrt({dx}^2+{dy}^2)"
        laterals = [f"({radius}-{d / 2:.12g})" for d in (shape.outer_diameter_m, shape.inner_diameter_m)]
    elif isinstance(shape, RoundedRectangle):
        # Signed distance of a rounded box (as RoundedRectangle.signed_distance).
        hx, hy = shape.half_extent_m
        r = shape.corner_radius_m
        qx, qy = f"(abs({dx})-{hx - r:.12g})", f"(abs({dy})-{hy - r:.12g})"
        larger = f"(0.5*({qx}+{qy}+abs({qx}-{qy})))"
        laterals = [f"(sqrt({_pos(qx)}^2+{_pos(qy)}^2)-{_pos(f'-{larger}')}-{r:.12g})"]
    elif isinstance(shape, Polygon):
        # Distance to each edge segment a-b: |p - a - t (b - a)|, t the projection clamped to [0, 1].
        out = []
        pts = shape.vertices_m
        for (ax, ay), (bx, by) in zip(pts, pts[1:] + pts[:1], strict=True):
            ex, ey = bx - ax, by - ay
            px, py = f"({dx}-({ax:.12g}))", f"({dy}-({ay:.12g}))"
            t = f"(({px}*({ex:.12g})+{py}*({ey:.12g}))/{ex * ex + ey * ey:.12g})"
            t = f"(1-{_pos(f'1-{_pos(t)}')})"
            out.append(f"sqrt(({px}-{t}*({ex:.12g}))^2+({py}-{t}*({ey:.12g}))^2+{dz2})")
        return out
    else:
        raise MeshError(f"electrode {e.name}: no distance expression for shape {shape.kind!r}")
    return [f"sqrt({lat}^2+{dz2})" for lat in laterals]


def _centroid(e: Electrode) -> tuple[float, float]:
    """The footprint's centroid [m] in patch coordinates (a ring's or a polygon's may lie outside it)."""
    cx, cy = e.center_m
    if isinstance(e.shape, Polygon):
        v = np.asarray(e.shape.vertices_m, dtype=float)
        w = np.roll(v, -1, axis=0)
        cross = v[:, 0] * w[:, 1] - w[:, 0] * v[:, 1]
        a = 0.5 * cross.sum()
        return cx + float(((v[:, 0] + w[:, 0]) * cross).sum() / (6 * a)), cy + float(((v[:, 1] + w[:, 1]) * cross).sum() / (6 * a))
    return cx, cy


def _owns(e: Electrode, x: float, y: float, tol: float) -> bool:
    """True when (x, y) (a centre of mass) belongs to e's footprint: inside it, or at its centroid."""
    gx, gy = _centroid(e)
    return e.contains(x, y, tol=tol) or math.hypot(x - gx, y - gy) < tol


def _add(groups: Groups, name: str, dim: int, tag: int) -> None:
    groups.setdefault(name, []).append((dim, [tag]))


def build_free(case: Case, sizes: dict[str, float]) -> Groups:
    """Build geometry and mesh in the current gmsh model; return physical groups by name."""
    layer_z, levels, globes = _add_geometry(case)
    groups: Groups = {}
    _tag_volumes(case, layer_z, levels, groups, globes)
    _tag_surfaces(case, layer_z, levels, groups)
    _add_physical_groups(case, groups)
    _mesh_with_size_fields(case, sizes, layer_z, levels)
    return groups


def _add_geometry(case: Case) -> tuple[list[tuple[float, float]], dict[str, list[float]], dict[int, str]]:
    """Layers, pads, electrode footprints and orbit globes in the current gmsh model, fragmented together.

    Returns:
        The (bottom, top) z of every layer [m], the z levels of every pad and the globe pieces
        (volume tag -> ``globe:ZONE:PART``, :mod:`emsim.meshes.globe`).
    """
    import gmsh

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
    levels = pad_z_levels(case)
    for e in case.electrodes:
        if e.name in levels:
            zs = levels[e.name]
            for z0, z1 in itertools.pairwise(zs):
                surf = add_footprint(occ, e, z0)
                ext = occ.extrude([(2, surf)], 0, 0, z1 - z0)
                objects.extend(d for d in ext if d[0] == 3)
        else:
            objects.append((2, add_footprint(occ, e, 0.0)))
    solids = add_globe_solids(occ, case)
    objects.extend(d for d, _ in solids)
    _, children = occ.fragment(objects, [])
    occ.synchronize()
    return layer_z, levels, globe_pieces(objects, children, solids)


def _tag_volumes(
    case: Case, layer_z: list[tuple[float, float]], levels: dict[str, list[float]], groups: Groups,
    globes: dict[int, str],
) -> None:  # fmt: skip
    """Name every volume: a globe piece by the fragment map, else by its centre of mass (layer, gel, contact)."""
    import gmsh

    for _, tag in gmsh.model.getEntities(3):
        if tag in globes:
            _add(groups, globes[tag], 3, tag)
            continue
        x, y, z = gmsh.model.occ.getCenterOfMass(3, tag)
        if z < 0:
            for layer, (z0, z1) in zip(case.layers, layer_z, strict=True):
                if z0 - _TOL_M <= z <= z1 + _TOL_M:
                    _add(groups, f"layer:{layer.label}", 3, tag)
                    break
            else:
                raise MeshError(f"volume {tag} at z = {z:g} m lies in no layer")
            continue
        owner = [e for e in case.electrodes if e.name in levels and _owns(e, x, y, _TOL_M)]
        if len(owner) != 1:
            raise MeshError(f"volume {tag} at ({x:g}, {y:g}, {z:g}) m belongs to no single pad")
        e = owner[0]
        zs = levels[e.name]
        _add(groups, f"contact:{e.name}" if len(zs) == 3 and z < zs[1] else f"gel:{e.name}", 3, tag)


def _tag_surfaces(case: Case, layer_z: list[tuple[float, float]], levels: dict[str, list[float]], groups: Groups) -> None:
    """Name every surface by its bounding box and centre of mass (skin, electrodes, pads, faces)."""
    import gmsh

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
                    e for e in case.electrodes if _owns(e, x, y, _TOL_M) and abs(area - e.area_m2) <= 1e-6 * e.area_m2
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
                owner = [e for e in case.electrodes if e.name in levels and _owns(e, x, y, _TOL_M)]
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
        owner = [e for e in case.electrodes if e.name in levels and _owns(e, x, y, 2 * _TOL_M)]
        if owner:
            _add(groups, f"pad_side:{owner[0].name}", 2, tag)


def _add_physical_groups(case: Case, groups: Groups) -> None:
    """Check the faces every case needs and add the named groups to the gmsh model."""
    import gmsh

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
    import gmsh

    W, L = case.patch.width_m, case.patch.length_m
    fld = gmsh.model.mesh.field
    fields = []
    h_edge, h_max = sizes["edge"], sizes["max"]
    # Graded toward every electrode and pad outline (on the skin and at the pad top). The exact
    # distance as an expression: a gmsh Distance field samples the curves, and the sampling that
    # resolves the smallest elements made the 1-D meshing alone take seconds.
    for e in case.electrodes:
        for z_level in sorted({0.0, levels[e.name][-1] if e.name in levels else 0.0}):
            for distance in _outline_distance_expressions(e, z_level):
                graded = fld.add("MathEval")
                fld.setString(graded, "F", edge_size_expression(sizes, distance))
                fields.append(graded)
    for expression in globe_size_expressions(case, sizes):  # orbit zones: refined toward the retina
        graded = fld.add("MathEval")
        fld.setString(graded, "F", expression)
        fields.append(graded)
    # Skin surface: refine toward z = 0 from below.
    surf = fld.add("MathEval")
    fld.setString(surf, "F", f"{sizes['surface']:.9g} + {sizes['grading_per_m']:.9g}*abs(z)")
    fields.append(surf)
    regions = resolved_regions(case)
    for layer, (z0, z1) in zip(case.layers, layer_z, strict=True):
        near, far = layer_box_size(sizes, layer.thickness_m), far_layer_box_size(sizes, layer.thickness_m)
        xy_boxes = [(-W, W, -L, L)] if far <= near else [(-W, W, -L, L), *regions]
        for k_box, (x0, x1, y0, y1) in enumerate(xy_boxes):
            box = fld.add("Box")
            fld.setNumber(box, "VIn", far if k_box == 0 else near)
            fld.setNumber(box, "VOut", h_max)
            for k, v in zip(
                ("XMin", "XMax", "YMin", "YMax", "ZMin", "ZMax"),
                (x0, x1, y0, y1, z0 - _TOL_M, z1 + _TOL_M),
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
    set_graded_size_options(h_max, min(0.25 * h_edge, sizes["tip"]) if sizes["tip"] > 0 else 0.25 * h_edge)
    gmsh.option.setNumber("Mesh.Algorithm3D", _ALGORITHM_3D)
    gmsh.option.setNumber("Mesh.Optimize", _OPTIMIZE)
    gmsh.model.mesh.generate(3)
