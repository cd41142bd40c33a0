"""Axisymmetric electric solver: disks and concentric rings over layers, in the (r, z) plane.

A rotationally symmetric layout (one disk, or concentric rings, on a stack of horizontal
layers) needs no 3-D mesh: the potential depends on (r, z) only and the 3-D problem
div(sigma grad phi) = 0 becomes the 2-D weighted problem

    integral sigma grad(phi) . grad(v) 2 pi r dr dz = 0,

on the half-plane section [0, R] x [-D, 0] (r = 0 is a symmetry axis, where the natural
condition r dphi/dr = 0 holds by itself). Electrodes are equipotential metal on the top face
(z = 0; elsewhere the top is insulated), the bottom z = -D is grounded when asked, the outer
cylinder r = R is insulated, like the sides of the 3-D patch.

The result is the conductance matrix of the electrodes (and the grounded bottom):
G_ij = integral sigma grad(u_i) . grad(u_j) 2 pi r, where u_i is the solution with electrode i
at 1 V and every other electrode (and the bottom) at 0 V. G is an energy, so it converges at
twice the rate of the potential. The mesh is graded toward every electrode rim with the same
size law as the 3-D patch (:func:`emsim.meshes.patch.edge_size`), where the current density is
singular (r^(-1/2)).

Used by ``emsim verify`` (disk on a grounded slab, against the closed form) and by the
benchmarks; ``tests/test_axisymmetric.py`` checks it against the closed form and against the
3-D path on the same layered disk case.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import gmsh
import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem import petsc as fpetsc
from mpi4py import MPI
from petsc4py import PETSc

from ...errors import InputError
from ...meshes.distribute import gmsh_model_to_mesh
from ...meshes.patch import edge_size_expression, set_graded_size_options
from ..linalg.ksp import create_ksp, solve_checked

__all__ = ["AXISYMMETRIC_QUALITY", "AxisymmetricResult", "Ring", "solve_axisymmetric"]

log = logging.getLogger(__name__)

#: Size at the rims as a fraction of the narrowest electrode's radial width, per quality.
#: Named by the accuracy they give on the disk on a grounded slab at degree 2
#: (docs/performance.md): "coarse" about 0.1 %, "default" about 0.03 %, "fine" about 0.01 %.
AXISYMMETRIC_QUALITY = {"coarse": 1.0 / 20.0, "default": 1.0 / 40.0, "fine": 1.0 / 80.0}
_MU = 0.5  # grading exponent toward the rims (h ~ d^(1 - mu)), as the 3-D patch
_TIP = 0.02  # smallest size at a rim, as a fraction of the rim size
_GROWTH = 0.25  # linear size growth per metre of distance, far from the rims
_PER_LAYER = 4.0  # elements across each layer, at least (cheap in 2-D)
_TOL_M = 1e-6  # geometric tolerance of the tagging (gmsh pads bounding boxes by 1e-7 m)


@dataclass(frozen=True, slots=True)
class Ring:
    """An equipotential electrode on the top face: the annulus r_inner <= r <= r_outer.

    Attributes:
        name: electrode name.
        r_inner_m: inner radius [m] (0: a disk).
        r_outer_m: outer radius [m].
    """

    name: str
    r_inner_m: float
    r_outer_m: float

    def __post_init__(self) -> None:
        """Check the radii."""
        if not (np.isfinite(self.r_inner_m) and self.r_inner_m >= 0.0):
            raise InputError(f"ring[{self.name}].r_inner_m", self.r_inner_m, ">= 0")
        if not (np.isfinite(self.r_outer_m) and self.r_outer_m > self.r_inner_m):
            raise InputError(f"ring[{self.name}].r_outer_m", self.r_outer_m, f"> r_inner_m = {self.r_inner_m}")


@dataclass(frozen=True)
class AxisymmetricResult:
    """Conductances of an axisymmetric layout.

    Attributes:
        names: electrode names, in the order of the matrix rows.
        conductance_S: (n, n) conductance matrix [S]: current into electrode i per volt on
            electrode j, every other electrode and the grounded bottom at 0 V.
        dofs: degrees of freedom of the (r, z) problem.
        cells: triangles of the (r, z) mesh.
        degree: polynomial degree.
    """

    names: tuple[str, ...]
    conductance_S: np.ndarray
    dofs: int
    cells: int
    degree: int

    def resistance_to_ground_ohm(self, name: str) -> float:
        """Resistance [ohm] from electrode ``name`` to the grounded bottom, the others floating.

        Floating electrodes carry no net current: with I = G V and I = e_i, R = (G^-1)_ii.
        """
        i = self.names.index(name)
        return float(np.linalg.inv(self.conductance_S)[i, i])


def _check(layers: Sequence[tuple[float, float]], rings: Sequence[Ring], outer_radius_m: float) -> None:
    if not layers:
        raise InputError("layers", "[]", "at least one (thickness_m, sigma_S_per_m)")
    for k, (h, s) in enumerate(layers):
        if not (np.isfinite(h) and h > 0):
            raise InputError(f"layers[{k}].thickness_m", h, "> 0")
        if not (np.isfinite(s) and s > 0):
            raise InputError(f"layers[{k}].sigma_S_per_m", s, "> 0")
    if not rings:
        raise InputError("rings", "[]", "at least one ring or disk")
    spans = sorted((r.r_inner_m, r.r_outer_m) for r in rings)
    for (_, b), (c, _) in itertools.pairwise(spans):
        if c <= b:
            raise InputError("rings", [r.name for r in rings], "rings that do not overlap or touch")
    if not outer_radius_m > spans[-1][1]:
        raise InputError("outer_radius_m", outer_radius_m, f"> the outermost rim, {spans[-1][1]} m")


def _mesh(layers: Sequence[tuple[float, float]], rings: Sequence[Ring], outer_radius_m: float, quality: str, comm: MPI.Comm):
    """(r, z) mesh with layer cell tags (1..) and facet tags: 1 bottom, 10 + i electrode i."""
    width = min(r.r_outer_m - r.r_inner_m for r in rings)
    h_edge = AXISYMMETRIC_QUALITY[quality] * width
    depth = sum(h for h, _ in layers)
    h_max = max(2.0 * AXISYMMETRIC_QUALITY[quality] * min(depth, outer_radius_m), h_edge)
    sizes = {"edge": h_edge, "tip": _TIP * h_edge, "mu": _MU, "grading_per_m": _GROWTH}
    rims = sorted({x for r in rings for x in (r.r_inner_m, r.r_outer_m) if x > 0.0})
    error = None
    if comm.rank == 0:
        if not gmsh.isInitialized():
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("axisymmetric")
        try:
            occ = gmsh.model.occ
            z_top, rects = 0.0, []
            for h, _ in layers:
                rects.append((2, occ.addRectangle(0.0, z_top - h, 0.0, outer_radius_m, h)))
                z_top -= h
            points = [(0, occ.addPoint(x, 0.0, 0.0)) for x in rims]
            occ.fragment(rects, points)
            occ.synchronize()
            z_top = 0.0
            for k, (h, _) in enumerate(layers):
                tags = [t for _, t in gmsh.model.getEntities(2) if z_top - h < occ.getCenterOfMass(2, t)[1] < z_top]
                gmsh.model.addPhysicalGroup(2, tags, tag=k + 1)
                z_top -= h
            top: dict[int, list[int]] = {}
            bottom = []
            for _, t in gmsh.model.getEntities(1):
                x0, y0, _, x1, y1, _ = gmsh.model.getBoundingBox(1, t)
                if abs(y1 - y0) > _TOL_M:
                    continue
                xm = 0.5 * (x0 + x1)
                if abs(y0) < _TOL_M:
                    for i, r in enumerate(rings):
                        if r.r_inner_m < xm < r.r_outer_m:
                            top.setdefault(i, []).append(t)
                elif abs(y0 + depth) < _TOL_M:
                    bottom.append(t)
            gmsh.model.addPhysicalGroup(1, bottom, tag=1)
            for i, tags in top.items():
                gmsh.model.addPhysicalGroup(1, tags, tag=10 + i)
            fld = gmsh.model.mesh.field
            fields = []
            for x in rims:
                f = fld.add("MathEval")
                fld.setString(f, "F", edge_size_expression(sizes, f"sqrt((x-{x:.12g})^2+y^2)"))
                fields.append(f)
            for k, (h, _) in enumerate(layers):
                z1 = -sum(hh for hh, _ in layers[:k])
                box = fld.add("Box")
                fld.setNumber(box, "VIn", min(h_max, h / _PER_LAYER))
                fld.setNumber(box, "VOut", h_max)
                for key, v in zip(("XMin", "XMax", "YMin", "YMax"), (-1.0, 2 * outer_radius_m, z1 - h, z1), strict=True):
                    fld.setNumber(box, key, v)
                fields.append(box)
            fmin = fld.add("Min")
            fld.setNumbers(fmin, "FieldsList", fields)
            fld.setAsBackgroundMesh(fmin)
            set_graded_size_options(h_max, sizes["tip"])
            gmsh.model.mesh.generate(2)
        except Exception as err:  # noqa: BLE001  (gmsh raises plain Exceptions; re-raised as MeshError)
            error = f"gmsh failed on the axisymmetric section: {err}"
    return gmsh_model_to_mesh(comm, error, gdim=2)


def solve_axisymmetric(
    layers: Sequence[tuple[float, float]],
    rings: Sequence[Ring],
    *,
    outer_radius_m: float,
    grounded_bottom: bool = True,
    quality: str = "default",
    degree: int = 2,
    comm: MPI.Comm | None = None,
) -> AxisymmetricResult:
    """Conductance matrix of equipotential rings over horizontal layers (axisymmetric FEM).

    Args:
        layers: (thickness [m], conductivity [S/m]) of each layer, top first.
        rings: the electrodes on the top face (disks have ``r_inner_m = 0``).
        outer_radius_m: radius [m] of the insulated outer cylinder.
        grounded_bottom: the bottom face is held at 0 V (else insulated; then G is singular
            and only differences between electrodes carry meaning).
        quality: one of :data:`AXISYMMETRIC_QUALITY`.
        degree: polynomial degree of the potential (1 to 4).
        comm: MPI communicator (default ``MPI.COMM_SELF``: the problem is small).

    Returns:
        The conductances, dofs and cells.

    Raises:
        InputError: bad layers, rings, radius, quality or degree.
    """
    _check(layers, rings, outer_radius_m)
    if quality not in AXISYMMETRIC_QUALITY:
        raise InputError("quality", quality, f"one of {', '.join(AXISYMMETRIC_QUALITY)}")
    if degree not in (1, 2, 3, 4) or isinstance(degree, bool):
        raise InputError("degree", degree, "1 to 4")
    comm = comm or MPI.COMM_SELF
    data = _mesh(layers, rings, outer_radius_m, quality, comm)
    mesh, cell_tags, facet_tags = data.mesh, data.cell_tags, data.facet_tags
    V = fem.functionspace(mesh, ("Lagrange", degree))
    Q = fem.functionspace(mesh, ("DG", 0))
    sigma = fem.Function(Q)
    for k, (_, s) in enumerate(layers):
        sigma.x.array[cell_tags.find(k + 1)] = s
    r = ufl.SpatialCoordinate(mesh)[0]
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    a = fem.form(2.0 * np.pi * sigma * ufl.inner(ufl.grad(u), ufl.grad(v)) * r * ufl.dx)
    fdim = mesh.topology.dim - 1
    groups = [10 + i for i in range(len(rings))] + ([1] if grounded_bottom else [])
    dofs_of = {g: fem.locate_dofs_topological(V, fdim, facet_tags.find(g)) for g in groups}
    g_bc = fem.Function(V)
    bcs = [fem.dirichletbc(g_bc, np.concatenate([dofs_of[g] for g in groups]))]
    A = fpetsc.assemble_matrix(a, bcs=bcs)
    A.assemble()
    ksp = create_ksp(A, method="mumps", name="emsim_axisymmetric")
    L = fem.form(fem.Constant(mesh, PETSc.ScalarType(0.0)) * v * ufl.dx)
    b = fpetsc.create_vector(V)
    solutions = []
    for i in range(len(rings)):
        g_bc.x.array[:] = 0.0
        g_bc.x.array[dofs_of[10 + i]] = 1.0
        with b.localForm() as loc:
            loc.set(0.0)
        fpetsc.assemble_vector(b, L)
        fpetsc.apply_lifting(b, [a], bcs=[bcs])
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        fpetsc.set_bc(b, bcs)
        uh = fem.Function(V)
        solve_checked(ksp, b, uh.x.petsc_vec, "axisymmetric electric solve")
        uh.x.scatter_forward()
        solutions.append(uh)
    n = len(rings)
    G = np.empty((n, n))
    for i in range(n):
        for j in range(i, n):
            e = fem.form(2.0 * np.pi * sigma * ufl.inner(ufl.grad(solutions[i]), ufl.grad(solutions[j])) * r * ufl.dx)
            G[i, j] = G[j, i] = comm.allreduce(fem.assemble_scalar(e), op=MPI.SUM)
    ksp.destroy()
    A.destroy()
    b.destroy()
    cells = mesh.topology.index_map(2).size_global
    dofs = V.dofmap.index_map.size_global
    log.info("axisymmetric: %d cells, %d dofs, degree %d", cells, dofs, degree)
    return AxisymmetricResult(tuple(r.name for r in rings), G, dofs, cells, degree)
