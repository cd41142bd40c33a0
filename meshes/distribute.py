"""The hand-over of a gmsh model built on rank 0 to a distributed DOLFINx mesh."""

from __future__ import annotations

from typing import Any

import gmsh
from dolfinx.io import gmsh as gmshio
from mpi4py import MPI

from ..errors import MeshError

__all__ = ["gmsh_model_to_mesh"]


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
    data = gmshio.model_to_mesh(gmsh.model if comm.rank == 0 else None, comm, 0, gdim=gdim)
    if comm.rank == 0:
        gmsh.model.remove()
    return data
