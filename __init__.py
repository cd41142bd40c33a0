"""emsim: physics-based simulation of electrical muscle stimulation (EMS) devices.

Subpackages follow the one path data takes: ``emsim.models`` (plain data with units and
sources) -> ``emsim.meshes`` (gmsh geometry, tagged DOLFINx meshes) -> ``emsim.solvers`` (FEM
problems and metrics) -> ``emsim.pipeline`` (the one composition of a case into a result) ->
``emsim.device`` (presets, validation, export) and ``emsim.studies`` (runs, sweeps, reports).

The scripting surface::

    import emsim

    case = emsim.load_case("my-case.toml")      # or emsim.models.Case(...) built in Python
    result = emsim.solve(case)                   # a CaseResult, per unit current of each channel
    result.at({"1": 0.004}).electric.impedance_ohm   # any channel currents [A], no new solve
    emsim.write_outputs(result, "out/mine")      # metrics.json, fields, pictures
"""

from __future__ import annotations

import os

# Under an MPI launcher with several ranks on this machine, one BLAS/OpenMP thread per rank: the
# ranks are the parallelism. With two OpenBLAS threads per rank on two cores, `mpirun -n 2 emsim
# run` of the default case took 26 s, as long as one rank; with one thread each it takes 20 s.
# Before the first import of numpy (a user's own OMP_NUM_THREADS / OPENBLAS_NUM_THREADS wins; a
# script that imported numpy before emsim keeps what it had). Serial runs keep OpenBLAS's default.
if max(int(os.environ.get(v, "1") or "1") for v in ("MPI_LOCALNRANKS", "OMPI_COMM_WORLD_LOCAL_SIZE")) > 1:
    for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        if not os.environ.get(_var):  # unset or empty (an empty OMP_NUM_THREADS fails scipy.fft)
            os.environ[_var] = "1"

from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

# The DOLFINx wheel must order MPI ahead of petsc4py/dolfinx: done once, here,
# so that no user code ever has to.
import dolfinx_solver  # noqa: F401  (import for its side effect, first)

from .errors import EmsimError, InputError
from .models import Case, load_case, parse_case

if TYPE_CHECKING:
    from mpi4py import MPI

    from .solvers.result import CaseResult

__version__ = "0.1.0"

__all__ = [
    "Case",
    "CaseResult",
    "EmsimError",
    "InputError",
    "__version__",
    "builtin_case",
    "load_case",
    "parse_case",
    "solve",
    "write_outputs",
]


def builtin_case(name: str = "cheek-two-pads") -> Path:
    """Path of a built-in case file (``cheek-two-pads``, the default, or ``cheek-dc``).

    Raises:
        InputError: no built-in case has that name.
    """
    folder = Path(str(resources.files("emsim.studies").joinpath("cases")))
    names = sorted(p.stem for p in folder.glob("*.toml"))
    if name not in names:
        raise InputError("builtin_case", name, f"one of {', '.join(names)}")
    return folder / f"{name}.toml"


def solve(case: Case, *, comm: MPI.Comm | None = None, progress: Callable[[str], None] | None = None) -> CaseResult:
    """Mesh and solve a case; returns a :class:`~emsim.solvers.result.CaseResult`.

    Args:
        case: the case (:func:`load_case`, or a :class:`~emsim.models.Case` built in Python).
        comm: MPI communicator (default ``MPI.COMM_WORLD``: under ``mpirun -n N`` one case is
            distributed over the ranks).
        progress: optional callable taking a short text at each step.
    """
    # local: `import emsim` stays light (models only, no DOLFINx solver set-up) until a solve
    from .pipeline import solve_case

    if progress is None:
        return solve_case(case, comm=comm)
    return solve_case(case, comm=comm, progress=progress)


def write_outputs(
    result: CaseResult, folder: str | Path, *, source_text: str | None = None, overwrite: bool = False
) -> Path:
    """Write a result's files into ``folder``, switched into place when complete.

    ``folder`` may be missing or empty; an earlier emsim output there is replaced only with
    ``overwrite``; a folder emsim did not write is never replaced (see
    :mod:`emsim.studies.outputs` and docs/files-and-guarantees.md).
    """
    from .studies import outputs  # local: `import emsim` stays light until outputs are written

    return outputs.write_outputs(result, folder, source_text=source_text, overwrite=overwrite)


def __getattr__(name: str) -> Any:
    if name == "CaseResult":
        from .solvers.result import (
            CaseResult,  # local: `import emsim` stays light until it is asked for
        )

        return CaseResult
    raise AttributeError(f"module 'emsim' has no attribute {name!r}")
