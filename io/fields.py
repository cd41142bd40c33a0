"""Fields for ParaView: XDMF (``NAME.xdmf`` with its heavy data in ``NAME.h5``), collective.

An XDMF file is two files that refer to each other by name, so it cannot be renamed into place
one file at a time: write it into a folder built by :func:`emsim.io.folders.staged_folder`,
which appears as a whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # DOLFINx is heavy: imported where a field is written, not with emsim.io
    from dolfinx import fem
    from dolfinx import mesh as dmesh

__all__ = ["write_xdmf"]


def write_xdmf(
    path: str | Path,
    mesh: dmesh.Mesh,
    *,
    functions: Sequence[fem.Function] = (),
    meshtags: dmesh.MeshTags | None = None,
) -> Path:
    """Write a mesh, its cell tags and functions to XDMF; collective over ``mesh.comm``.

    Args:
        path: the ``.xdmf`` file (the ``.h5`` beside it takes the same stem; the folder is
            created when missing); every rank passes the same path.
        mesh: the DOLFINx mesh.
        functions: DOLFINx functions on ``mesh`` (each under its own name).
        meshtags: cell tags to write with the mesh (their ``name`` is the dataset name), or None.
    """
    from dolfinx import io as dio  # DOLFINx is heavy: loaded only when a field is written

    path = Path(path)
    if mesh.comm.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
    mesh.comm.barrier()
    with dio.XDMFFile(mesh.comm, str(path), "w") as f:
        f.write_mesh(mesh)
        if meshtags is not None:
            mesh.topology.create_connectivity(mesh.topology.dim - 1, mesh.topology.dim)
            f.write_meshtags(meshtags, mesh.geometry)
        for fn in functions:
            f.write_function(fn)
    return path
