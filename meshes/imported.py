"""Imported anatomy: a tagged gmsh ``.msh`` mesh, its physical groups mapped to emsim's roles.

The case file names the file and maps the file's physical groups (names or numbers) to the
roles the solvers use (``[mesh.tags]``; :class:`emsim.models.MeshSettings`)::

    [mesh]
    file = "cheek.msh"            # relative to the case file
    degree = 1
    [mesh.tags]
    "layer:skin" = "Dermis"       # a volume group per layer label (or a list of groups)
    "layer:fat" = ["Fat left", "Fat right"]
    "gel:A" = "Gel A"             # gel pad, contact sublayer (with a contact), metal face
    "contact:A" = "Contact A"
    "electrode:A" = 21            # a group number works too
    "skin_under:A" = "Skin A"
    "skin_exposed" = "Skin"

Checks (each error names the role and the group): every mapped group exists in the file with
the dimension its role needs (volumes for layer / gel / contact, surfaces otherwise); every
volume group of the file is mapped, and every tetrahedron lies in exactly one mapped volume;
no entity serves two roles. The mesh is distributed like a built one and its cell and facet tags
renumbered by role (groups mapped to no role are dropped), so every solver, metric and picture
runs unchanged. Layers still
declare their tissue; their thicknesses and the patch extent are nominal (the file's geometry
rules). Anisotropic layers keep their fibre direction in the file's axes.
"""

from __future__ import annotations

import logging
from typing import Any

import gmsh
import numpy as np
from dolfinx import mesh as dmesh
from dolfinx.mesh import Mesh, MeshTags
from mpi4py import MPI

from ..errors import InputError, MeshError
from ..models.case import Case
from .distribute import model_to_ghosted_mesh
from .patch import MeshReport, PatchMesh, mesh_quality

__all__ = ["FOOTPRINT_WARNING", "VOLUME_ROLES", "load_tagged_mesh"]

log = logging.getLogger(__name__)

#: Role kinds that are volumes (dimension 3); every other role is a surface (dimension 2).
VOLUME_ROLES = ("layer", "gel", "contact")


def _file_groups(gmsh: Any) -> dict[int, dict[str | int, int]]:
    """Physical groups of the open model by dimension: name -> tag and tag -> tag."""
    out: dict[int, dict[str | int, int]] = {2: {}, 3: {}}
    for dim, tag in gmsh.model.getPhysicalGroups():
        if dim not in out:
            continue
        out[dim][int(tag)] = int(tag)
        name = gmsh.model.getPhysicalName(dim, tag)
        if name:
            out[dim][name] = int(tag)
    return out


def _retag(case: Case, gmsh: Any) -> dict[int, dict[int, str]]:
    """Check the file's groups against ``[mesh.tags]``; the role of each file group, by dimension."""
    groups = _file_groups(gmsh)
    file = case.mesh.file
    entities: dict[str, tuple[int, list[int]]] = {}
    file_tags: dict[str, tuple[int, list[int]]] = {}
    used_volume_groups: set[int] = set()
    owner: dict[tuple[int, int], str] = {}
    for role, wanted in case.mesh.tags.items():
        dim = 3 if role.partition(":")[0] in VOLUME_ROLES else 2
        tags: list[int] = []
        for g in wanted:
            if g not in groups[dim]:
                kind = "volume" if dim == 3 else "surface"
                names = sorted(str(k) for k in groups[dim] if isinstance(k, str))
                raise InputError(
                    f"mesh.tags.{role}", g,
                    f"a {kind} physical group of {file}: names {names} or numbers {sorted(set(groups[dim].values()))}",
                )  # fmt: skip
            tag = groups[dim][g]
            file_tags.setdefault(role, (dim, []))[1].append(tag)
            if dim == 3:
                used_volume_groups.add(tag)
            for ent in gmsh.model.getEntitiesForPhysicalGroup(dim, tag):
                key = (dim, int(ent))
                if owner.get(key, role) != role:
                    raise InputError(f"mesh.tags.{role}", g, f"a group not shared with role {owner[key]} (entity {key})")
                owner[key] = role
                tags.append(int(ent))
        entities[role] = (dim, sorted(set(tags)))
    for dim, tag in gmsh.model.getPhysicalGroups(3):
        if int(tag) not in used_volume_groups:
            name = gmsh.model.getPhysicalName(dim, tag) or int(tag)
            raise InputError("mesh.tags", name, f"every volume group of {file} mapped to a role (layer:, gel:, contact:)")
    for _, ent in gmsh.model.getEntities(3):
        if (3, int(ent)) not in owner:
            _, elems, _ = gmsh.model.mesh.getElements(3, ent)
            if sum(len(e) for e in elems):
                raise InputError("mesh.tags", f"volume entity {ent}", f"every meshed volume of {file} in a mapped group")
    for role, (dim, tags) in entities.items():
        if not tags:
            raise InputError(f"mesh.tags.{role}", list(case.mesh.tags[role]), "a group with at least one entity")
    return {dim: {tag: role for role, (d, tags) in file_tags.items() if d == dim for tag in tags} for dim in (2, 3)}


def _role_tags(mesh: Any, tags: Any, dim: int, role_of: dict[int, str], number: dict[str, int]) -> Any:
    """Mesh tags of ``dim`` with the file's group numbers replaced by role numbers."""
    keep = np.isin(tags.values, list(role_of))
    idx = tags.indices[keep]
    vals = np.array([number[role_of[int(v)]] for v in tags.values[keep]], dtype=np.int32)
    order = np.argsort(idx, kind="stable")
    return dmesh.meshtags(mesh, dim, idx[order].astype(np.int32), vals[order])


#: Relative difference of a pad's skin area in the file from its declared footprint that is logged.
FOOTPRINT_WARNING = 0.02


def _warn_on_footprints(case: Case, mesh: Mesh, facet_tags: MeshTags, surfaces: dict[str, int]) -> None:
    """Log a warning where the file's skin under a pad differs from the declared footprint.

    Per-area figures that use the declared footprint (the IEC current and power densities)
    then differ from the mesh's own by as much.
    """
    n_owned = mesh.topology.index_map(2).size_local
    for e in case.electrodes:
        role = f"skin_under:{e.name}" if e.gel is not None else f"electrode:{e.name}"
        facets = facet_tags.find(surfaces[role])
        facets = facets[facets < n_owned].astype(np.int32)  # interior facets too (the skin under a pad)
        tri = mesh.geometry.x[dmesh.entities_to_geometry(mesh, 2, facets)] if len(facets) else np.zeros((0, 3, 3))
        local = 0.5 * np.linalg.norm(np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0]), axis=1).sum()
        area = mesh.comm.allreduce(float(local))
        if abs(area / e.area_m2 - 1.0) > FOOTPRINT_WARNING:
            log.warning(
                "electrode %s: the skin under it in %s has %.4g mm^2, its declared footprint %.4g mm^2 "
                "(per-area figures use the declared one)", e.name, case.mesh.file, area * 1e6, e.area_m2 * 1e6,
            )  # fmt: skip


def load_tagged_mesh(case: Case, comm: MPI.Comm | None = None) -> Any:
    """Read the case's ``[mesh] file``, map its groups to roles and distribute it.

    gmsh reads the file on rank 0 only; the mesh is then distributed over ``comm``.

    Returns:
        A :class:`emsim.meshes.patch.PatchMesh` with the roles as volume and surface names.

    Raises:
        InputError: a mapped group is missing or of the wrong dimension, a volume is unmapped,
            an entity has two roles (the message names the role and the group).
        MeshError: gmsh cannot read the file.
    """
    comm = comm or MPI.COMM_WORLD
    error: tuple[str, Any] | None = None
    stats = roles = None
    if comm.rank == 0:
        if not gmsh.isInitialized():
            gmsh.initialize(interruptible=False)
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add(f"{case.name}-imported")
        try:
            gmsh.merge(case.mesh.file)
            roles = _retag(case, gmsh)
            stats = mesh_quality()
        except InputError as err:
            error = ("input", (err.field, err.value, err.allowed))
        except Exception as err:  # noqa: BLE001  (gmsh raises plain Exceptions; re-raised as MeshError)
            error = ("mesh", f"gmsh cannot read {case.mesh.file}: {err}")
    error = comm.bcast(error, root=0)
    if error is not None:
        if comm.rank == 0:
            gmsh.model.remove()
        if error[0] == "input":
            raise InputError(*error[1])
        raise MeshError(error[1])
    stats, roles = comm.bcast((stats, roles), root=0)
    data = model_to_ghosted_mesh(comm, gdim=3)
    if comm.rank == 0:
        gmsh.model.remove()
    # Role numbers: 1, 2, ... in the order of [mesh.tags] (sorted), volumes and surfaces apart.
    number = {role: k for k, role in enumerate(case.mesh.tags, start=1)}
    volumes = {r: number[r] for r in case.mesh.tags if r.partition(":")[0] in VOLUME_ROLES}
    surfaces = {r: number[r] for r in case.mesh.tags if r not in volumes}
    cell_tags = _role_tags(data.mesh, data.cell_tags, 3, roles[3], number)
    facet_tags = _role_tags(data.mesh, data.facet_tags, 2, roles[2], number)
    cells, vertices, hmin, hmax, qmin, qp01, qmean = stats
    report = MeshReport(
        cells=cells, vertices=vertices, h_min_m=hmin, h_max_m=hmax,
        quality_min=qmin, quality_p01=qp01, quality_mean=qmean, target_sizes_m={},
    )  # fmt: skip
    log.info("mesh %s (imported %s): %d cells, %d vertices", case.name, case.mesh.file, cells, vertices)
    _warn_on_footprints(case, data.mesh, facet_tags, surfaces)
    return PatchMesh(
        mesh=data.mesh, cell_tags=cell_tags, facet_tags=facet_tags,
        volumes=volumes, surfaces=surfaces, report=report, mesher="imported",
    )  # fmt: skip
