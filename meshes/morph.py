"""Anatomy spread without re-meshing: move a layered mesh's nodes to a new stack of thicknesses.

A built patch, free (:mod:`emsim.meshes.free`) or layered (:mod:`emsim.meshes.layered`), has
each tissue layer between two flat interface planes z = const (the layered one has all its
nodes on horizontal levels). A new stack of layer thicknesses changes only z: the map

    z -> piecewise-linear interpolation from the old interfaces (0, -t1, -t1 - t2, ...) to the new

moves every tissue node within its own layer (pad nodes, z > 0, stay), so the topology, the dof
layout, the sparsity pattern and any symbolic factorisation stay the same; only the forms are
assembled again. On a curved patch the map acts on the flat coordinates (the node is taken back
to the flat patch, morphed, and mapped onto the curved one again), so layers keep their
thickness below the curved skin.

The nodes are shared: every :class:`PatchMesh` morphed from one mesh holds the same DOLFINx
mesh, and the stack its nodes are at now is tracked per mesh (not per ``PatchMesh``), so
:func:`place_layers` puts them back to any one's stack (a corner's picture after the search has
moved on to other corners).

A morphed mesh has the cells of the stack it was built for: a layer made much thicker has
stretched cells (its aspect ratio grows by the thickness ratio). Tests compare a morphed
mesh with a fresh mesh of the same stack (tests/test_anatomy.py).
"""

from __future__ import annotations

import dataclasses
import math
import weakref
from collections.abc import Sequence

import numpy as np

from ..errors import InputError
from .patch import PatchMesh

__all__ = ["interfaces_m", "morph_layers", "morph_z", "place_layers"]

#: The stack each morphed DOLFINx mesh's nodes are at now (absent: its PatchMesh's own stack).
_HELD: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def interfaces_m(thicknesses_m: Sequence[float]) -> np.ndarray:
    """The z [m] of the layer interfaces, ascending: (-depth, ..., -t1, 0)."""
    return -np.concatenate([[0.0], np.cumsum(np.asarray(thicknesses_m, dtype=float))])[::-1]


def morph_z(z_m: np.ndarray, old_thicknesses_m: Sequence[float], new_thicknesses_m: Sequence[float]) -> np.ndarray:
    """Flat z [m] of tissue points moved from the old stack to the new (z > 0 unchanged)."""
    z = np.asarray(z_m, dtype=float)
    moved = np.interp(z, interfaces_m(old_thicknesses_m), interfaces_m(new_thicknesses_m))
    return np.where(z > 0.0, z, moved)


def _check(patch: PatchMesh, thicknesses_m: Sequence[float]) -> tuple[float, ...]:
    if patch.layer_thicknesses_m is None:
        raise InputError("patch_mesh", "imported mesh", "a built layered patch (an imported mesh has no layer levels)")
    globes = [name for name in patch.volumes if name.startswith("globe:")]
    if globes:  # moving z piecewise by layer would flatten the spheres of an orbit zone's globe
        raise InputError("patch_mesh", globes[0], "a patch without a globe (an orbit zone's patch is re-meshed, not morphed)")
    new = tuple(float(t) for t in thicknesses_m)
    n = len(patch.layer_thicknesses_m)
    if len(new) != n:
        raise InputError("thicknesses_m", list(new), f"{n} thicknesses, one per layer, top first")
    for k, t in enumerate(new):
        if not (math.isfinite(t) and t > 0.0):
            raise InputError(f"thicknesses_m[{k}]", t, "a finite thickness > 0 [m]")
    return new


def morph_layers(patch_mesh: PatchMesh, thicknesses_m: Sequence[float]) -> PatchMesh:
    """Move the patch's tissue nodes to a new stack of layer thicknesses, in place.

    Args:
        patch_mesh: a built (not imported) patch; its ``layer_thicknesses_m`` is the stack its
            nodes hold now.
        thicknesses_m: the new thickness of every layer [m], top first (as ``case.layers``).

    Returns:
        The same mesh, tags and names with ``layer_thicknesses_m`` set to the new stack. The
        DOLFINx mesh is shared and moved in place (collective only in that every rank moves its
        own nodes, ghosts included): use the returned object from now on; morphing back to the
        old thicknesses restores the nodes to rounding.

    Raises:
        InputError: an imported mesh, a mesh with a globe (orbit zone), a wrong number of
            thicknesses, or one not > 0.
    """
    new = _check(patch_mesh, thicknesses_m)
    # the nodes may have moved since this PatchMesh was made (another morph of the same mesh)
    old = _HELD.get(patch_mesh.mesh, patch_mesh.layer_thicknesses_m) or ()  # _check refused a mesh without levels
    x = patch_mesh.mesh.geometry.x
    surface = patch_mesh.surface
    flat = surface.to_flat(x) if surface is not None else np.array(x, dtype=float)
    flat[:, 2] = morph_z(flat[:, 2], old, new)
    x[:] = surface.to_curved(flat) if surface is not None else flat
    _HELD[patch_mesh.mesh] = new
    return dataclasses.replace(patch_mesh, layer_thicknesses_m=new)


def place_layers(patch_mesh: PatchMesh) -> PatchMesh:
    """Put the shared nodes of a morphed patch back to its own stack (a no-op when they are there).

    Every field of the patch (its dofs) is then drawn and sampled where it was solved. An
    imported mesh, or one never morphed, is returned unchanged.
    """
    if patch_mesh.layer_thicknesses_m is None or patch_mesh.mesh not in _HELD:
        return patch_mesh
    return morph_layers(patch_mesh, patch_mesh.layer_thicknesses_m)
