"""The hand-over of a gmsh model built on rank 0 to a distributed DOLFINx mesh."""

from __future__ import annotations

from typing import Any

import gmsh
from dolfinx.io import gmsh as gmshio
from dolfinx.mesh import GhostMode, create_cell_partitioner
from mpi4py import MPI

from ..errors import MeshError

__all__ = ["gmsh_model_to_mesh", "model_to_ghosted_mesh"]


def gmsh_model_to_mesh(comm: MPI.Comm, error: str | None, *, gdim: int) -> Any:
    """Rank 0's current gmsh model as a distributed DOLFINx mesh (collective); the model is removed.

    ``error`` is rank 0's meshing failure (None on success, ignored on other ranks): every rank
    then raises it as a :class:`~emsim.errors.MeshError`.
    """
    error = comm.bcast(error, root=0)
    if error is not None:
        if comm.rank == 0:
            gmsh.model.remove()
        raise MeshError(error)
    data = model_to_ghosted_mesh(comm, gdim=gdim)
    if comm.rank == 0:
        gmsh.model.remove()
    return data


def model_to_ghosted_mesh(comm: MPI.Comm, *, gdim: int) -> Any:
    """Rank 0's current gmsh model distributed with one layer of ghost cells across shared facets.

    Every owned facet then has both its cells on the rank. The skin-facet code needs this: a
    facet under a pad takes its current from the gel cell and its orientation from the tissue
    cell, and without ghosts one of them can sit on another rank.
    """
    partitioner = create_cell_partitioner(GhostMode.shared_facet, 2) if comm.size > 1 else None
    return gmshio.model_to_mesh(gmsh.model if comm.rank == 0 else None, comm, 0, gdim=gdim, partitioner=partitioner)
