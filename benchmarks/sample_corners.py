"""The sample's anatomy corners for the reduced-basis benchmarks (bench_corner_basis, bench_affine_morph, bench_corner_rb).

What the three share: the presets file's first site, its nominal anatomy case, the validation's
head and reference current (:class:`emsim.device.validate.AnatomySolver`), the case of any corner,
random distinct corners, and an assembled matrix as scipy CSR. Serial only: each benchmark
gathers its snapshots or matrices on one process.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import emsim  # noqa: F401  (MPI before DOLFINx)
from emsim.device.anatomy import AnatomyCase, corner_case, head_case_table, nominal_case
from emsim.device.presets import read_presets
from emsim.device.validate import AnatomySolver
from emsim.models import Case, parse_case


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
