"""The frequency sweep's matrix: assembled at every frequency, or combined from matrices assembled once.

Measures on the default cheek case (or a case file), serially (one core; run by hand, record the
output in benchmarks/RESULTS.md):

1. one assembly of the 2x2 block matrix, the affine split's one-time build
   (:class:`emsim.solvers.spectral.affine.AffineBlockMatrix`) and one fill, each the minimum of
   ``--repeat`` runs, and the largest entry difference of a fill against an assembly;
2. the whole waveform sweep (:func:`emsim.pipeline.solve_waveform`) with the split and with it
   switched off (every frequency assembled), and the largest relative difference of the sampled
   electrode potentials per ampere between the two.

    .venv/bin/python benchmarks/bench_sweep_matrix.py [case.toml] [--repeat 3]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

import emsim  # noqa: F401  (orders MPI before dolfinx, as every user import does)


def main() -> None:
    """Time the assembly, the split's build and fill, and the sweep both ways."""
    from dolfinx.fem import petsc as fpetsc
    from mpi4py import MPI

    from emsim.meshes.patch import build_patch_mesh
    from emsim.models.case_file import parse_case, parse_toml, read_case_text
    from emsim.pipeline import solve_geometry, solve_waveform
    from emsim.solvers.linalg.presb import SweepState
    from emsim.solvers.spectral import frequency
    from emsim.solvers.spectral.affine import AffineBlockMatrix
    from emsim.studies.run import default_case_path

    p = argparse.ArgumentParser()
    p.add_argument("case", nargs="?", default=None)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    path = Path(args.case) if args.case else default_case_path()
    case = parse_case(parse_toml(read_case_text(path), path), base_dir=path.parent)
    patch = build_patch_mesh(case, MPI.COMM_WORLD)

    sweep = SweepState()
    prob = frequency.FrequencyProblem(case, patch, 1e3, sweep=sweep)
    A = fpetsc.assemble_matrix(prob._a, bcs=[prob._bc])
    A.assemble()
    assembly = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        A.zeroEntries()
        fpetsc.assemble_matrix(A, prob._a, bcs=[prob._bc])
        A.assemble()
        assembly.append(time.perf_counter() - t0)
    reference = A.getValuesCSR()[2].copy()
    volumes = {k: patch.volumes[k] for k in prob.admittivity}
    robin = {n: prob.electrodes.surface(n) for n in prob.robin}
    builds = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        split = AffineBlockMatrix(
            patch, prob.V, case.mesh.degree, volumes, robin, prob._bc, prob._bc_blocks, A, prob.admittivity, prob.robin
        )
        builds.append(time.perf_counter() - t0)
    fills = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        assert split.fill(A, prob.admittivity, prob.robin)
        fills.append(time.perf_counter() - t0)
    err = float(np.abs(A.getValuesCSR()[2] - reference).max() / np.abs(reference).max())
    kinds = sorted({basis for _, basis, _, _ in split._matrices})
    A.destroy()
    sweep.close()
    print(f"case {case.name}: {prob.dofs} block dofs, {patch.report.cells} cells; bases used: {', '.join(kinds)}")
    print(f"assembly of the block matrix  {min(assembly):.3f} s")
    print(f"affine split: build once      {min(builds):.3f} s ({split.stored_values} stored values)")
    print(f"affine split: fill            {min(fills):.3f} s (largest entry difference {err:.1e} of the largest entry)")

    H = {}
    for label, switched_off in (("split", False), ("assembled", True)):
        original = frequency.AffineBlockMatrix
        if switched_off:
            frequency.AffineBlockMatrix = _Off  # type: ignore[assignment, misc]
        try:
            geometry = solve_geometry(case, MPI.COMM_WORLD)
            t0 = time.perf_counter()
            solve_waveform(case, geometry)
            seconds = time.perf_counter() - t0
        finally:
            frequency.AffineBlockMatrix = original  # type: ignore[misc]
        response = geometry.response
        H[label] = (response.frequencies_Hz, response.stacked("H"))
        n = len(response.frequencies_Hz)
        print(f"waveform sweep, {label:9s}: {seconds:.2f} s ({n} frequencies)")
    (fa, ha), (fb, hb) = H["split"], H["assembled"]
    if np.array_equal(fa, fb):
        diff = np.abs(ha - hb).max() / np.abs(hb).max()
        print(f"electrode potentials per ampere, split against assembled: {diff:.1e} of the largest")
    else:
        print("the two sweeps sampled different frequencies:", fa, fb)


class _Off:
    """A split that declines every fill: the sweep assembles each frequency (the old path)."""

    usable = False
    reason = "switched off by the benchmark"

    def __init__(self, *args: object, **kwargs: object) -> None:
        pass

    def fill(self, *args: object) -> bool:
        """Decline: the caller assembles."""
        return False


if __name__ == "__main__":
    main()
