"""Benchmark of the electric path on the default case: mesh, setup, unit solves, post-processing.

Run by hand and record the output in benchmarks/RESULTS.md:

    .venv/bin/python benchmarks/bench_electric.py [--quality default] [--degree 2] [--method auto]
    .venv/bin/mpirun -n 2 .venv/bin/python benchmarks/bench_electric.py
"""

from __future__ import annotations

import argparse
import time

import emsim  # noqa: F401
from emsim.meshes.patch import build_patch_mesh
from emsim.models import parse_case, read_case_table
from emsim.solvers.electric.metrics import ElectricLeadField
from emsim.solvers.electric.problem import ElectricProblem
from emsim.studies.run import default_case_path


def main() -> None:
    from mpi4py import MPI

    p = argparse.ArgumentParser()
    p.add_argument("--quality", default="default")
    p.add_argument("--degree", type=int, default=2)
    p.add_argument("--method", default="auto")
    args = p.parse_args()
    table = read_case_table(default_case_path().with_name("cheek-dc.toml"))
    table.pop("thermal", None)
    table["mesh"] = {"quality": args.quality, "degree": args.degree}
    table["solver"] = {"method": args.method}
    case = parse_case(table)
    comm = MPI.COMM_WORLD
    t = {}
    t0 = time.perf_counter()
    patch = build_patch_mesh(case, comm)
    t["mesh_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    problem = ElectricProblem(case, patch)
    problem._setup()
    t["assemble_and_pc_setup_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    _ = problem.unit_fields
    t["unit_solves_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    lead = ElectricLeadField.build(problem, problem.channel_unit_solutions())
    t["lead_field_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    for k in range(1, 1001):  # any current from the per-unit-current record, no solve
        metrics = lead.at([1e-5 * k])
    t["thousand_currents_s"] = time.perf_counter() - t0
    metrics = lead.at([c.current_A for c in case.channels])
    if comm.rank == 0:
        print(
            f"ranks={comm.size} quality={args.quality} degree={args.degree} method={problem.method} "
            f"cells={patch.report.cells} dofs={problem.dofs} iterations={problem.iterations} "
            + " ".join(f"{k}={v:.2f}" for k, v in t.items())
            + f" Z={metrics.impedance_ohm:.4f}"
        )


if __name__ == "__main__":
    main()
