"""The geometry of a case: the tissue patch (flat or curved) and the mesh settings (or an imported mesh).

Split from :mod:`emsim.models.case`, which re-exports every name here.
"""

from __future__ import annotations

import hashlib
import math
import os
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..errors import InputError
from .electrodes import Electrode
from .quantity import check_fields, file_value, quantity

if TYPE_CHECKING:  # case.py imports this module: the layer type only names the argument
    from .case import Layer

__all__ = [
    "MAX_DEPTH_FRACTION",
    "MAX_HALF_ANGLE_RAD",
    "MAX_MESH_FILE_BYTES",
    "MESH_METHODS",
    "MESH_SURFACE_ROLES",
    "MESH_VOLUME_ROLES",
    "MIN_LENGTH_MM",
    "PATCH_SHAPES",
    "QUALITIES",
    "MeshSettings",
    "Patch",
    "check_mesh_tags",
    "mesh_file_digest",
]

#: Patch shapes: flat, or curved onto a cylinder (axis along y) or a sphere.
PATCH_SHAPES = ("flat", "cylinder", "sphere")
#: Largest half-extent of a curved patch over its radius [rad]: 1 rad (57 degrees), well below
#: pi / 2 where the patch would fold over itself.
MAX_HALF_ANGLE_RAD = 1.0
#: Largest tissue depth over the curvature radius: the centre of curvature lies below the block.
MAX_DEPTH_FRACTION = 0.9
#: Mesh quality presets, coarse to fine.
QUALITIES = ("coarse", "default", "fine")
#: Mesh methods of a built patch: ``free`` (gmsh tetrahedra graded in 3-D, the default) and
#: ``layered`` (the skin triangulation extruded through the layers, :mod:`emsim.meshes.layered`).
MESH_METHODS = ("free", "layered")
#: Smallest length [mm] a thickness or size may have: ten times the 1 um tolerance the geometry
#: is classified with (``emsim.meshes.patch``); thinner features break gmsh or the tagging.
MIN_LENGTH_MM = 0.01


def _choice(value: object, allowed: tuple, name: str) -> None:
    if value not in allowed:
        raise InputError(name, value, f"one of {', '.join(map(str, allowed))}")


@dataclass(frozen=True, slots=True)
class Patch:
    """The modelled block of tissue; its top face is the skin surface.

    A flat patch has its skin in the plane z = 0. A curved one follows a cylinder (axis along
    y) or a sphere of radius ``curvature_radius_m`` whose top touches z = 0 at the patch centre
    (:mod:`emsim.meshes.curvature`): layers keep their thickness below the curved skin, pads
    conform to it, and x, y (electrode centres, probes) are arc lengths along the skin, z the
    height above it.

    Attributes:
        width_m: extent along x [m], centred on x = 0 (case file ``width_mm``); on a curved
            patch, an arc length along the skin.
        length_m: extent along y [m], centred on y = 0 (case file ``length_mm``).
        shape: ``"flat"``, ``"cylinder"`` or ``"sphere"`` (:data:`PATCH_SHAPES`).
        curvature_radius_m: radius of the curved skin [m] (case file ``curvature_radius_mm``);
            None for a flat patch. The half-extent the map bends (half the width for a
            cylinder, the half-diagonal for a sphere) over the radius must be at most
            :data:`MAX_HALF_ANGLE_RAD`.
    """

    width_m: float = quantity("width_mm", to_si=1e-3, low=MIN_LENGTH_MM, low_open=False, high=1000.0)
    length_m: float = quantity("length_mm", to_si=1e-3, low=MIN_LENGTH_MM, low_open=False, high=1000.0)
    shape: str = "flat"
    curvature_radius_m: float | None = quantity("curvature_radius_mm", to_si=1e-3, low=0.0, high=1e5, default=None)

    def __post_init__(self) -> None:
        """Check both sizes, the shape and the curvature."""
        check_fields(self, "patch")
        _choice(self.shape, PATCH_SHAPES, "patch.shape")
        R = self.curvature_radius_m
        if self.shape == "flat":
            if R is not None:
                raise InputError("patch.curvature_radius_mm", file_value(R, 1e-3), "only with shape cylinder or sphere")
            return
        if R is None:
            raise InputError("patch.curvature_radius_mm", None, f"required with shape {self.shape!r}: a radius in mm")
        need = self.bent_half_extent_m / MAX_HALF_ANGLE_RAD
        if R < need:
            raise InputError(
                "patch.curvature_radius_mm", file_value(R, 1e-3),
                f">= {need * 1e3:.6g} mm: the patch's half-extent along the skin "
                f"({self.bent_half_extent_m * 1e3:.6g} mm) over the radius must stay <= {MAX_HALF_ANGLE_RAD:g} rad "
                "(well below pi/2, where the patch would fold over)",
            )  # fmt: skip

    @property
    def bent_half_extent_m(self) -> float:
        """Largest arc from the patch centre that the curvature bends [m] (0 when flat)."""
        if self.shape == "sphere":
            return 0.5 * math.hypot(self.width_m, self.length_m)
        return 0.5 * self.width_m if self.shape == "cylinder" else 0.0


#: Roles of an imported mesh's physical groups (``[mesh.tags]`` keys): volumes, then surfaces.
#: ``E`` is an electrode name and ``LABEL`` a layer label.
MESH_VOLUME_ROLES = ("layer:LABEL", "gel:E", "contact:E")
MESH_SURFACE_ROLES = ("electrode:E", "skin_under:E", "skin_exposed", "pad_side:E", "bottom", "sides")


@dataclass(frozen=True, slots=True)
class MeshSettings:
    """Mesh resolution settings, or an imported tagged mesh.

    Attributes:
        quality: one of :data:`QUALITIES`.
        degree: polynomial degree of the potential (1, 2 or 3; default 2: degree 1
            underestimates the peak skin current density by several per cent at the default
            mesh; 3 pays on the edge-graded meshes of the finer qualities, see docs/performance.md).
        size_factor: multiplies every target element size (tests use > 1 for cheaper meshes).
        method: how a built patch is meshed, one of :data:`MESH_METHODS` (case file
            ``[mesh] method``; default ``"free"``). ``free``: gmsh tetrahedra graded in 3-D
            toward the electrode outlines (:mod:`emsim.meshes.free`); fewest cells on the
            usual cheek and disk cases. ``layered``: the skin triangulation extruded through
            the tissue layers and pads (:mod:`emsim.meshes.layered`), with a bounded aspect
            ratio per layer; fewer cells only on large patches with thin layers
            (docs/performance.md). Ignored with ``file``.
        cells_across_layer: cells across every tissue layer, at least (case file ``[mesh]
            cells_across_layer``, 1 to 10; None, the default: issue 9's rule, a size of
            thickness / 2.25 inside a layer on the free mesh, 2 levels on the layered one). The
            free mesher sizes a layer's cells thickness / this; the layered one takes its
            integer part as levels. Fewer than the rule is cheaper and less accurate: the
            worst-case search of ``emsim validate`` ranks its corners on a mesh with 1
            (:data:`emsim.device.presets.SEARCH_MESH`) and confirms them on the rule's.
        file: a tagged gmsh ``.msh`` file to use instead of the built patch (case file
            ``[mesh] file``, relative to the case file; stored resolved), or None.
        tags: with ``file``, the physical group(s) of the file (names, or numbers) behind each
            role emsim uses (``[mesh.tags]``, e.g. ``"layer:skin" = "dermis"``,
            ``"electrode:A" = 12``): :data:`MESH_VOLUME_ROLES` and :data:`MESH_SURFACE_ROLES`.
        file_sha256: SHA-256 of the file's bytes (computed when not given; a given one must
            match): the case digest holds it, not the file's path.
    """

    quality: str = "default"
    degree: int = quantity("degree", low=1, low_open=False, high=3, integer=True, default=2)
    size_factor: float = quantity("size_factor", low=0.0, high=20.0, default=1.0)
    method: str = "free"
    cells_across_layer: float | None = quantity("cells_across_layer", low=1.0, low_open=False, high=10.0, default=None)
    file: str | None = None
    tags: Mapping[str, tuple[str | int, ...]] = field(default_factory=dict)
    file_sha256: str = ""

    def __post_init__(self) -> None:
        """Check the choices and ranges, and read the imported file's digest."""
        _choice(self.quality, QUALITIES, "mesh.quality")
        _choice(self.method, MESH_METHODS, "mesh.method")
        if self.degree not in (1, 2, 3) or isinstance(self.degree, bool):
            raise InputError("mesh.degree", self.degree, "1, 2 or 3")
        check_fields(self, "mesh")
        if self.file is None:
            if self.tags:
                raise InputError("mesh.tags", dict(self.tags), "only with [mesh] file")
            return
        tags: dict[str, tuple[str | int, ...]] = {}
        for role, groups in dict(self.tags).items():
            groups = (groups,) if isinstance(groups, (str, int)) else tuple(groups)
            ok = groups and all(
                (isinstance(g, str) and g) or (isinstance(g, int) and not isinstance(g, bool) and g > 0) for g in groups
            )
            if not ok:
                raise InputError(f"mesh.tags.{role}", list(groups), "a physical group name or number, or a list of them")
            tags[str(role)] = groups
        object.__setattr__(self, "tags", dict(sorted(tags.items())))
        digest = mesh_file_digest(self.file)
        if self.file_sha256 and self.file_sha256 != digest:
            raise InputError("mesh.file_sha256", self.file_sha256, f"the file's own digest {digest} (it has changed)")
        object.__setattr__(self, "file_sha256", digest)


#: Largest imported mesh file read [bytes]: far above any tagged anatomy .msh a patch solve can
#: handle, and a bound on what ``[mesh] file = "/dev/zero"`` or a wrong, huge file costs to hash.
MAX_MESH_FILE_BYTES = 2 * 1024**3


def mesh_file_digest(file: str) -> str:
    """SHA-256 of an imported mesh file, read in chunks up to :data:`MAX_MESH_FILE_BYTES`.

    Raises:
        InputError: naming ``mesh.file`` when it is not a regular file (a device, a pipe, a
            folder), cannot be read, or is larger than the bound.
    """
    try:
        info = os.stat(file)
        if not stat.S_ISREG(info.st_mode):
            raise InputError("mesh.file", file, "a regular gmsh .msh file (not a device, pipe or folder)")
        if info.st_size > MAX_MESH_FILE_BYTES:
            raise InputError("mesh.file", file, f"at most {MAX_MESH_FILE_BYTES / 1024**3:g} GiB "
                                                f"(the file has {info.st_size / 1024**3:.3g} GiB)")  # fmt: skip
        h, read = hashlib.sha256(), 0
        with open(file, "rb") as f:
            while chunk := f.read(1 << 20):
                read += len(chunk)
                if read > MAX_MESH_FILE_BYTES:  # grew while being read
                    raise InputError("mesh.file", file, f"at most {MAX_MESH_FILE_BYTES / 1024**3:g} GiB")
                h.update(chunk)
    except OSError as err:
        raise InputError("mesh.file", file, f"a readable gmsh .msh file ({err.strerror or err})") from None
    return h.hexdigest()


def check_mesh_tags(
    mesh: MeshSettings,
    patch: Patch,
    layers: Sequence[Layer],
    electrodes: Sequence[Electrode],
    *,
    grounded: bool,
    thermal: bool = False,
) -> None:
    """An imported mesh names a group for every layer, pad and electrode face of the case.

    A grounded channel needs the deep face (``bottom``); a heating solve needs it too (core
    temperature) and the exposed skin (``skin_exposed``, convective), so that neither is
    silently insulated.

    Raises:
        InputError: naming ``mesh.tags.ROLE`` (a role missing or not of this case) or
            ``patch.shape`` (an imported mesh with a curved patch).
    """
    if mesh.file is None:
        return
    if patch.shape != "flat":
        raise InputError("patch.shape", patch.shape, "flat with a [mesh] file (the file brings its own geometry)")
    needed = [f"layer:{layer.label}" for layer in layers]
    for e in electrodes:
        needed.append(f"electrode:{e.name}")
        if e.gel is not None:
            needed += [f"gel:{e.name}", f"skin_under:{e.name}"]
            if e.contact is not None:
                needed.append(f"contact:{e.name}")
    if grounded or thermal:
        needed.append("bottom")
    if thermal:
        needed.append("skin_exposed")
    for role in needed:
        if role not in mesh.tags:
            raise InputError(f"mesh.tags.{role}", None, "missing: the physical group(s) of the file for this role")
    names = {e.name for e in electrodes}
    labels = {layer.label for layer in layers}
    gels = {e.name for e in electrodes if e.gel is not None}
    contacts = {e.name for e in electrodes if e.gel is not None and e.contact is not None}
    for role in mesh.tags:
        kind, _, who = role.partition(":")
        ok = {
            "layer": who in labels, "gel": who in gels, "contact": who in contacts, "electrode": who in names,
            "skin_under": who in gels, "pad_side": who in gels,
            "skin_exposed": not who, "bottom": not who, "sides": not who,
        }.get(kind, False)  # fmt: skip
        if not ok:
            allowed = ", ".join(MESH_VOLUME_ROLES + MESH_SURFACE_ROLES)
            raise InputError(
                f"mesh.tags.{role}", list(mesh.tags[role]),
                f"a role of this case: {allowed} (layers {sorted(labels)}, electrodes {sorted(names)}; "
                "gel and skin_under only for gel pads, contact only for pads with a contact)",
            )  # fmt: skip
