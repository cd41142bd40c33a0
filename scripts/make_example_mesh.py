"""Write the imported-anatomy example: a tagged gmsh mesh of a curved cheek with two gel pads.

The geometry is built here directly in gmsh (OpenCASCADE), independently of emsim's own patch
builder, and its physical groups carry anatomical names, not emsim's roles: the example case
``studies/cases/imported/cheek-sphere.toml`` maps them through ``[mesh.tags]``.

Geometry (mm): the skin is a sphere of radius 40 centred 40 below the origin (a cheek's
curvature), cut to the block |x| <= 15, |y| <= 10 by vertical planes; below it skin 1.5,
fat 2 and muscle 5 follow as spherical shells. Two round pads of 8 mm diameter at x = -7 and
x = +7 are vertical cylinders cut from the shell 0 to 0.5 above the skin, each split at 0.25
into a contact sublayer (below) and the gel (above); the metal is the pad's top face.

Usage::

    python scripts/make_example_mesh.py [OUT.msh]

(default ``studies/cases/imported/cheek-sphere.msh``, next to the example case file).
"""

from __future__ import annotations

import itertools
import math
import sys
from pathlib import Path

#: Dimensions [m].
R = 40e-3
LAYERS = (("Dermis", 1.5e-3), ("Hypodermis", 2.0e-3), ("Masseter", 5.0e-3))
HALF_X, HALF_Y = 15e-3, 10e-3
PADS = (("left", -7e-3), ("right", 7e-3))
PAD_RADIUS = 4e-3
PAD_THICKNESS = 0.5e-3
CONTACT_FRACTION = 0.5
#: Element sizes [m]: near the pads, and elsewhere.
H_PAD, H_MAX = 0.7e-3, 2.5e-3
_TOL = 1e-6

DEFAULT_OUT = Path(__file__).resolve().parent.parent / "studies" / "cases" / "imported" / "cheek-sphere.msh"


def _shell(occ, r_in: float, r_out: float, box: int) -> list[tuple[int, int]]:
    """The spherical shell between two radii about (0, 0, -R), cut to a copy of ``box``."""
    outer = occ.addSphere(0, 0, -R, r_out)
    inner = occ.addSphere(0, 0, -R, r_in)
    shell, _ = occ.cut([(3, outer)], [(3, inner)])
    out, _ = occ.intersect(shell, occ.copy([(3, box)]))
    return out


def _point_on(gmsh, dim: int, tag: int) -> tuple[float, float, float]:
    """A point of a surface (the middle of its parameter range, projected on it)."""
    lo, hi = gmsh.model.getParametrizationBounds(dim, tag)
    mid = [(a + b) / 2 for a, b in zip(lo, hi, strict=True)]
    x, y, z = gmsh.model.getValue(dim, tag, mid)
    cx, cy, cz = gmsh.model.occ.getCenterOfMass(dim, tag)
    # A trimmed surface's parameter centre may fall outside it: use the closest point to the COM.
    px, py, pz = gmsh.model.getClosestPoint(dim, tag, [cx, cy, cz])[0]
    return (px, py, pz) if math.isfinite(px) else (x, y, z)


def build(out: Path) -> Path:
    """Build, mesh and write the example mesh to ``out`` (binary .msh 4.1)."""
    import gmsh

    started = gmsh.isInitialized()
    if not started:
        gmsh.initialize(interruptible=False)
    gmsh.option.setNumber("General.Terminal", 0)
    gmsh.model.add("cheek-sphere")
    occ = gmsh.model.occ
    depth = sum(t for _, t in LAYERS)
    box = occ.addBox(-HALF_X, -HALF_Y, -depth - 20e-3, 2 * HALF_X, 2 * HALF_Y, depth + 40e-3)
    pieces: list[tuple[int, int]] = []
    r_top = R
    for _, t in LAYERS:
        pieces += _shell(occ, r_top - t, r_top, box)
        r_top -= t
    levels = (R, R + CONTACT_FRACTION * PAD_THICKNESS, R + PAD_THICKNESS)
    for _, x in PADS:
        for r0, r1 in itertools.pairwise(levels):
            cyl = occ.addCylinder(x, 0, -R, 0, 0, 2 * R, PAD_RADIUS)
            shell_box = occ.addBox(-2 * R, -2 * R, -2 * R, 4 * R, 4 * R, 4 * R)
            pieces += _pad_piece(occ, r0, r1, cyl, shell_box)
    occ.remove([(3, box)], recursive=True)
    occ.fragment(pieces, [])
    occ.synchronize()

    groups: dict[str, list[tuple[int, int]]] = {}

    def radius(p: tuple[float, float, float]) -> float:
        return math.dist(p, (0.0, 0.0, -R))

    for _, tag in gmsh.model.getEntities(3):
        # A thin curved shell's centre of mass lies below it: classify a volume by the radius
        # of its top face (the largest over its spherical faces) and the side of its centre.
        faces = gmsh.model.getBoundary([(3, tag)], oriented=False)
        r_top = max(radius(_point_on(gmsh, 2, abs(f))) for _, f in faces if gmsh.model.getType(2, abs(f)) == "Sphere")
        p = occ.getCenterOfMass(3, tag)
        name = None
        top = R
        for layer, t in LAYERS:
            if abs(r_top - top) < _TOL:
                name = layer
            top -= t
        if name is None:
            side = "left" if p[0] < 0 else "right"
            name = f"Skin film {side}" if abs(r_top - levels[1]) < _TOL else f"Hydrogel {side}"
        groups.setdefault(name, []).append((3, tag))
    for _, tag in gmsh.model.getEntities(2):
        p = _point_on(gmsh, 2, tag)
        r = radius(p)
        pad = [s for s, x in PADS if math.hypot(p[0] - x, p[1]) < PAD_RADIUS + _TOL]
        if abs(r - R) < _TOL:
            name = f"Skin under {pad[0]}" if pad else "Skin"
        elif abs(r - levels[2]) < _TOL and pad:
            name = f"Plate {pad[0]}"
        elif abs(r - (R - depth)) < _TOL:
            name = "Deep"
        elif abs(abs(p[0]) - HALF_X) < _TOL or abs(abs(p[1]) - HALF_Y) < _TOL:
            name = "Cut"
        elif r > R and pad and abs(math.hypot(p[0] - dict(PADS)[pad[0]], p[1]) - PAD_RADIUS) < _TOL:
            name = f"Pad rim {pad[0]}"
        else:
            continue  # internal interfaces
        groups.setdefault(name, []).append((2, tag))
    # Group numbers chosen apart from any emsim numbering; two groups get a number only.
    for k, (name, items) in enumerate(sorted(groups.items())):
        dim = items[0][0]
        tag = 100 + 10 * k
        gmsh.model.addPhysicalGroup(dim, [t for _, t in items], tag)
        if name not in ("Plate right", "Deep"):
            gmsh.model.setPhysicalName(dim, tag, name)

    fld = gmsh.model.mesh.field
    cyl_fields = []
    for _, x in PADS:
        f = fld.add("Cylinder")
        for key, value in (("Radius", PAD_RADIUS + 2e-3), ("VIn", H_PAD), ("VOut", H_MAX), ("XCenter", x),
                           ("YCenter", 0.0), ("ZCenter", -2e-3), ("XAxis", 0.0), ("YAxis", 0.0), ("ZAxis", 6e-3)):
            fld.setNumber(f, key, value)
        cyl_fields.append(f)
    fmin = fld.add("Min")
    fld.setNumbers(fmin, "FieldsList", cyl_fields)
    fld.setAsBackgroundMesh(fmin)
    gmsh.option.setNumber("Mesh.MeshSizeMax", H_MAX)
    gmsh.option.setNumber("Mesh.MeshSizeFromPoints", 0)
    gmsh.option.setNumber("Mesh.MeshSizeFromCurvature", 12)
    gmsh.option.setNumber("Mesh.MeshSizeExtendFromBoundary", 0)
    gmsh.option.setNumber("General.NumThreads", 1)
    gmsh.option.setNumber("Mesh.RandomSeed", 1)
    gmsh.option.setNumber("Mesh.Optimize", 1)
    gmsh.model.mesh.generate(3)
    gmsh.option.setNumber("Mesh.Binary", 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".tmp-{out.name}")
    gmsh.write(str(tmp))
    tmp.replace(out)  # atomic: a reader never sees half a mesh
    gmsh.model.remove()
    if not started:
        gmsh.finalize()
    return out


def _pad_piece(occ, r0: float, r1: float, cyl: int, shell_box: int) -> list[tuple[int, int]]:
    """The part of the vertical pad cylinder between two radii about the sphere's centre."""
    out = _shell(occ, r0, r1, shell_box)
    piece, _ = occ.intersect(out, [(3, cyl)])
    occ.remove([(3, shell_box)], recursive=True)
    return piece


if __name__ == "__main__":
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    print(build(path))
