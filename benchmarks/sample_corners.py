"""The sample's anatomy corners for the reduced-basis benchmarks (bench_corner_basis, bench_affine_morph, bench_corner_rb).

What the three share: the presets file's first site, its nominal anatomy case, the validation's
head and reference current (:class:`emsim.device.validate.AnatomySolver`), the case of any corner,
random distinct corners, the snapshot studies' options and their corners' d.c. solves on one
morphed mesh, and an assembled matrix as scipy CSR. Serial only: each benchmark gathers its
snapshots or matrices on one process.
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import emsim  # noqa: F401  (MPI before DOLFINx)
from emsim.device.anatomy import AnatomyCase, corner_case, head_case_table, nominal_case
from emsim.device.presets import read_presets
from emsim.device.validate import AnatomySolver
from emsim.meshes.morph import morph_layers
from emsim.meshes.patch import PatchMesh, build_patch_mesh
from emsim.models import Case, parse_case
from emsim.solvers.electric.problem import ElectricProblem


@dataclass(frozen=True)
class SampleHead:
    """A presets file's first site: its nominal anatomy case and the case of any corner.

    Attributes:
        site: the site's name.
        nominal: the nominal anatomy case (every factor's ``factors`` in the spread's order).
        case_of: the head's case (first preset, the validation's reference current) of an anatomy case.
    """

    site: str
    nominal: AnatomyCase
    case_of: Callable[[AnatomyCase], Case]

    def corner(self, levels: tuple[bool, ...]) -> Case:
        """The case of one corner (per factor: False = min, True = max)."""
        return self.case_of(corner_case(self.nominal, levels))

    def random_corners(self, n: int, seed: int) -> list[tuple[bool, ...]]:
        """``n`` distinct random corners (fewer if the spread has fewer), reproducible by ``seed``."""
        rng = random.Random(seed)
        k = len(self.nominal.factors)
        corners = dict.fromkeys(tuple(rng.random() < 0.5 for _ in range(k)) for _ in range(20 * n))
        return list(corners)[:n]


def sample_head(presets: str) -> SampleHead:
    """The first site of ``presets`` as its validation sees it (serial; exits on more than one rank)."""
    from mpi4py import MPI

    if MPI.COMM_WORLD.size != 1:
        raise SystemExit("run serially: the benchmark gathers its data on one process")
    pf = read_presets(presets)
    site = pf.device.sites[0]
    solver = AnatomySolver(pf, keep_results=False)  # the validation's head and reference current
    preset = next(iter(solver.groups.values()))[0]

    def case_of(anatomy: AnatomyCase) -> Case:
        return parse_case(head_case_table(solver.head, anatomy, preset, solver.reference_A))

    return SampleHead(site, nominal_case(pf.device, pf.validation, site), case_of)


def snapshot_arguments() -> argparse.Namespace:
    """The options of the snapshot studies: ``--presets``, ``--corners``, ``--train``, ``--seed``."""
    p = argparse.ArgumentParser()
    p.add_argument("--presets", default="device/samples/facial-ems-1.toml")
    p.add_argument("--corners", type=int, default=64)
    p.add_argument("--train", type=int, default=48)
    p.add_argument("--seed", type=int, default=7)
    return p.parse_args()


@dataclass(frozen=True)
class SolvedCorner:
    """One corner's d.c. solve on the morphed nominal mesh (its problem open until the next corner).

    Attributes:
        stack_m: the corner's layer thicknesses [m].
        patch: the nominal mesh with its nodes moved to that stack.
        problem: the corner's electric problem, its unit fields solved.
        seconds: the wall time of the solve [s].
    """

    stack_m: list[float]
    patch: PatchMesh
    problem: ElectricProblem
    seconds: float


def solve_corners(head: SampleHead, corners: list[tuple[bool, ...]]) -> Iterator[SolvedCorner]:
    """Mesh the head's nominal case once, then per corner: morph, solve the unit fields, yield, close."""
    from mpi4py import MPI

    patch = build_patch_mesh(head.case_of(head.nominal), MPI.COMM_WORLD)
    for c in corners:
        case = head.corner(c)
        stack = [layer.thickness_m for layer in case.layers]
        patch = morph_layers(patch, stack)
        t0 = time.perf_counter()
        problem = ElectricProblem(case, patch)
        problem.unit_fields  # noqa: B018  (solved here, so that the time is the solve's)
        seconds = time.perf_counter() - t0
        try:
            yield SolvedCorner(stack, patch, problem, seconds)
        finally:
            problem.close()


def csr(form: Any) -> Any:
    """The assembled matrix of a compiled bilinear form as scipy CSR (serial), without boundary conditions."""
    import scipy.sparse as sp
    from dolfinx.fem import petsc as fpetsc

    A = fpetsc.assemble_matrix(form)
    A.assemble()
    indptr, indices, data = A.getValuesCSR()
    n = A.getSize()
    A.destroy()
    return sp.csr_matrix((data.copy(), indices.copy(), indptr.copy()), shape=n)
