"""The benchmark harness: a fixed set of cases, each in its own process, one table and one JSON.

    .venv/bin/python benchmarks/run.py              # the fixed set (also: make bench)
    .venv/bin/python benchmarks/run.py --large      # plus the 1M-dof memory case
    .venv/bin/python benchmarks/run.py --only disk-3d-coarse-p3 --ranks 1
    .venv/bin/python benchmarks/run.py --repeat 3  # each time the minimum of 3 runs (shared machines)

Per case: dofs, wall time per stage (mesh, assembly, solver setup, solve, post-processing,
thermal, waveform), CPU time, peak RSS of the process (and per dof), Krylov iterations, and the
error against the closed form where one exists (the disk on a grounded slab: the exact
Fredholm value of :func:`emsim.solvers.reference.electric.disk_on_grounded_slab_resistance_exact`).
The hand-written DOLFINx script (same mesh, same solver, no emsim objects in the solve) runs
next to the toolkit on the same case, and the MPI cases run on 1 and 2 ranks, in the same run.
The machine (CPU, cores, load average before and after) is recorded with the results: the
machine is shared, and wall times on a loaded machine are longer than CPU times.

Results go to ``benchmarks/results.json`` (``--json PATH``) and the table to stdout;
docs/performance.md holds the table of the last run with its machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
# The benchmark disk of issue 12: a = 4 mm on a grounded slab, sigma 0.25 S/m, D = 40 mm.
DISK = {"radius_m": 4e-3, "depth_m": 40e-3, "sigma_S_per_m": 0.25}

#: name -> (kind, options). Kinds: "disk-3d", "disk-hand" (the hand-written DOLFINx script),
#: "disk-axi", "cheek" (the built-in default case, d.c. and heating), "layered-disk" (against the
#: axisymmetric solver), "limb" (a 200 x 100 mm patch with 50 x 90 mm pads).
CASES: dict[str, tuple[str, dict]] = {
    "disk-3d-coarse-p3": ("disk-3d", {"quality": "coarse", "degree": 3}),
    "disk-3d-default-p3": ("disk-3d", {"quality": "default", "degree": 3}),
    "disk-3d-fine-p3": ("disk-3d", {"quality": "fine", "degree": 3}),
    "disk-3d-default-p3-gamg": ("disk-3d", {"quality": "default", "degree": 3, "method": "cg-gamg"}),
    "disk-3d-default-p2": ("disk-3d", {"quality": "default", "degree": 2}),
    "disk-3d-default-p1": ("disk-3d", {"quality": "default", "degree": 1}),
    "disk-hand-default-p3": ("disk-hand", {"quality": "default", "degree": 3}),
    "disk-axi-coarse-p3": ("disk-axi", {"quality": "coarse", "degree": 3}),
    "disk-axi-default-p2": ("disk-axi", {"quality": "default", "degree": 2}),
    "layered-disk-coarse-p2": ("layered-disk", {"quality": "coarse", "degree": 2, "mesh_method": "layered"}),
    "limb-coarse-p1": ("limb", {"quality": "coarse", "degree": 1, "mesh_method": "layered"}),
    "cheek-builtin": ("cheek", {}),
    "cheek-dc-coarse-p2": ("cheek", {"quality": "coarse", "degree": 2, "dc": True}),
    "cheek-dc-default-p2": ("cheek", {"quality": "default", "degree": 2, "dc": True}),
}
#: Cases that also run on 2 MPI ranks.
MPI_CASES = ("disk-3d-default-p3", "cheek-builtin")
#: The memory case (--large): about 1e6 dofs.
LARGE = {"disk-3d-large-p3": ("disk-3d", {"quality": "fine", "degree": 3, "size_factor": 0.55})}


# ---------------------------------------------------------------------------------- one case


def _disk_case(opts: dict):
    import dataclasses

    from emsim.studies.verification import disk_on_slab_case

    case, ref = disk_on_slab_case(
        **DISK, quality=opts["quality"], degree=opts["degree"], size_factor=opts.get("size_factor", 1.0)
    )
    if "method" in opts:
        case = dataclasses.replace(case, solver=dataclasses.replace(case.solver, method=opts["method"]))
    return case, ref


def _run_disk_3d(opts: dict) -> dict:
    from mpi4py import MPI

    from emsim.meshes.patch import build_patch_mesh
    from emsim.solvers.electric.metrics import ElectricLeadField
    from emsim.solvers.electric.problem import ElectricProblem

    case, ref = _disk_case(opts)
    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    patch = build_patch_mesh(case, comm, max_dofs=1e9)
    mesh_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    problem = ElectricProblem(case, patch)
    init_s = time.perf_counter() - t0
    solutions = problem.channel_unit_solutions()
    t0 = time.perf_counter()
    lead = ElectricLeadField.build(problem, solutions)
    metrics = lead.at([c.current_A for c in case.channels])
    post_s = time.perf_counter() - t0
    z = metrics.impedance_ohm
    stages = {"mesh_s": mesh_s, "forms_s": init_s, **problem.timings_s, "postprocess_s": post_s}
    return {
        "dofs": problem.dofs,
        "cells": patch.report.cells,
        "method": problem.method,
        "iterations": problem.iterations,
        "stages_s": stages,
        "value": z,
        "reference": ref,
        "error": (z - ref) / ref,
    }


def _run_disk_hand(opts: dict) -> dict:
    """The same mesh and solver as the toolkit, solved by a plain DOLFINx script."""
    import numpy as np
    import ufl
    from dolfinx import fem
    from dolfinx.fem import petsc as fpetsc
    from mpi4py import MPI
    from petsc4py import PETSc

    from emsim.meshes.patch import build_patch_mesh
    from emsim.solvers.linalg.ksp import resolve_method

    case, ref = _disk_case(opts)
    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    patch = build_patch_mesh(case, comm, max_dofs=1e9)
    mesh_s = time.perf_counter() - t0
    # --- the hand-written script starts here: what a DOLFINx user would write.
    t0 = time.perf_counter()
    mesh = patch.mesh
    V = fem.functionspace(mesh, ("Lagrange", opts["degree"]))
    u, v = ufl.TrialFunction(V), ufl.TestFunction(V)
    sigma = fem.Constant(mesh, PETSc.ScalarType(DISK["sigma_S_per_m"]))
    a = fem.form(sigma * ufl.inner(ufl.grad(u), ufl.grad(v)) * ufl.dx)
    L = fem.form(fem.Constant(mesh, PETSc.ScalarType(0.0)) * v * ufl.dx)
    fdim = mesh.topology.dim - 1
    top = fem.locate_dofs_topological(V, fdim, patch.facet_tags.find(patch.surfaces["electrode:disk"]))
    bottom = fem.locate_dofs_topological(V, fdim, patch.facet_tags.find(patch.surfaces["bottom"]))
    g = fem.Function(V)
    g.x.array[top] = 1.0
    bc = fem.dirichletbc(g, np.concatenate([top, bottom]))
    forms_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    A = fpetsc.assemble_matrix(a, bcs=[bc])
    A.assemble()
    b = fpetsc.assemble_vector(L)
    fpetsc.apply_lifting(b, [a], bcs=[[bc]])
    b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
    fpetsc.set_bc(b, [bc])
    assembly_s = time.perf_counter() - t0
    dofs = V.dofmap.index_map.size_global
    method = resolve_method("auto", dofs, degree=opts["degree"])
    t0 = time.perf_counter()
    ksp = PETSc.KSP().create(comm)
    ksp.setOperators(A)
    if method == "mumps":
        ksp.setType("preonly")
        ksp.getPC().setType("lu")
        ksp.getPC().setFactorSolverType("mumps")
    else:
        ksp.setType("cg")
        ksp.getPC().setType("gamg")
        ksp.setTolerances(rtol=1e-10, atol=1e-30)
    ksp.setUp()
    setup_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    uh = fem.Function(V)
    ksp.solve(b, uh.x.petsc_vec)
    uh.x.scatter_forward()
    solve_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    # Current into the disk = the energy of the unit field (consistent flux): I = a(u, u) at 1 V.
    current = comm.allreduce(fem.assemble_scalar(fem.form(sigma * ufl.inner(ufl.grad(uh), ufl.grad(uh)) * ufl.dx)))
    post_s = time.perf_counter() - t0
    z = 1.0 / current
    stages = {
        "mesh_s": mesh_s,
        "forms_s": forms_s,
        "assembly_s": assembly_s,
        "solver_setup_s": setup_s,
        "unit_solves_s": solve_s,
        "postprocess_s": post_s,
    }
    return {
        "dofs": dofs,
        "cells": patch.report.cells,
        "method": method,
        "iterations": [ksp.getIterationNumber()],
        "stages_s": stages,
        "value": z,
        "reference": ref,
        "error": (z - ref) / ref,
    }


def _run_disk_axi(opts: dict) -> dict:
    from emsim.solvers.electric.axisymmetric import Ring, solve_axisymmetric
    from emsim.solvers.reference.electric import disk_on_grounded_slab_resistance_exact

    ref = disk_on_grounded_slab_resistance_exact(DISK["sigma_S_per_m"], DISK["radius_m"], DISK["depth_m"])
    t0 = time.perf_counter()
    res = solve_axisymmetric(
        [(DISK["depth_m"], DISK["sigma_S_per_m"])],
        [Ring("disk", 0.0, DISK["radius_m"])],
        outer_radius_m=2.5 * DISK["depth_m"],  # the 3-D box is 5 D wide
        quality=opts["quality"],
        degree=opts["degree"],
    )
    z = res.resistance_to_ground_ohm("disk")
    return {
        "dofs": res.dofs,
        "cells": res.cells,
        "method": "mumps",
        "iterations": [1],
        "stages_s": {"mesh_and_solve_s": time.perf_counter() - t0},
        "value": z,
        "reference": ref,
        "error": (z - ref) / ref,
    }


#: The layered disk of issue 18: an equipotential 20 mm disk on skin 1.5 / fat 3 / muscle 35.5 mm
#: (the library tissues), 160 x 160 mm patch, bottom grounded.
LAYERED_DISK = {"patch_mm": 160.0, "diameter_mm": 20.0, "layers_mm": (("skin", 1.5), ("fat", 3.0), ("muscle", 35.5))}


def layered_disk_table(quality: str, degree: int, method: str = "layered") -> dict:
    """The layered-disk case (issue 18) as a case table, meshed by ``method`` ([mesh] method)."""
    w = LAYERED_DISK["patch_mm"]
    return {
        "name": "layered-disk",
        "patch": {"width_mm": w, "length_mm": w},
        "layer": [{"tissue": t, "thickness_mm": h} for t, h in LAYERED_DISK["layers_mm"]],
        "electrode": [{"name": "disk", "shape": "disk", "diameter_mm": LAYERED_DISK["diameter_mm"], "center_mm": [0.0, 0.0]}],
        "channel": {"anode": "disk", "cathode": "ground", "current_mA": 1.0},
        "mesh": {"quality": quality, "degree": degree, "method": method},
    }


def limb_table(quality: str, degree: int, method: str = "layered") -> dict:
    """A 200 x 100 mm limb patch with two 50 x 90 mm gel pads (skin 1.5 / fat 4 / muscle 40 mm), meshed by ``method``."""
    pad = {"shape": "rectangle", "width_mm": 50.0, "length_mm": 90.0, "corner_radius_mm": 5.0,
           "gel": {"material": "hydrogel", "thickness_mm": 1.0}, "contact": {"resistance_ohm_cm2": 2900.0}}  # fmt: skip
    return {
        "name": "limb",
        "patch": {"width_mm": 200.0, "length_mm": 100.0},
        "layer": [{"tissue": "skin", "thickness_mm": 1.5}, {"tissue": "fat", "thickness_mm": 4.0},
                  {"tissue": "muscle", "thickness_mm": 40.0}],
        "electrode": [pad | {"name": "A", "center_mm": [-50.0, 0.0]}, pad | {"name": "B", "center_mm": [50.0, 0.0]}],
        "channel": {"anode": "A", "cathode": "B", "current_mA": 20.0},
        "mesh": {"quality": quality, "degree": degree, "method": method},
    }


def _run_table(table: dict, reference: object) -> dict:
    from emsim.models import parse_case
    from emsim.studies.run import solve_case

    case = parse_case(table)
    res = solve_case(case, max_dofs=1e9)
    stages = dict(res.solver.get("timings_s", {}))
    stages.update(res.problem.timings_s)
    z = res.metrics.electric.impedance_ohm
    ref = reference(case) if reference is not None else None
    return {
        "dofs": res.problem.dofs,
        "cells": res.mesh.report.cells,
        "method": res.problem.method,
        "iterations": res.problem.iterations,
        "stages_s": stages,
        "value": z,
        "value_name": "impedance [ohm]",
        "reference": ref,
        "error": None if ref is None else (z - ref) / ref,
    }


def _layered_disk_reference(case) -> float:
    """The axisymmetric solver (fine, degree 3) on a cylinder of the patch's area."""
    import math

    from emsim.solvers.electric.axisymmetric import Ring, solve_axisymmetric

    f = case.solver.quasi_static_frequency_Hz
    layers = [(layer.thickness_m, layer.tissue.conductivity_at(f)) for layer in case.layers]
    radius = case.electrodes[0].half_extent_m[0]
    res = solve_axisymmetric(
        layers, [Ring("disk", 0.0, radius)], outer_radius_m=case.patch.width_m / math.sqrt(math.pi), quality="fine", degree=3
    )
    return res.resistance_to_ground_ohm("disk")


def _run_layered_disk(opts: dict) -> dict:
    return _run_table(layered_disk_table(opts["quality"], opts["degree"], opts["mesh_method"]), _layered_disk_reference)


def _run_limb(opts: dict) -> dict:
    return _run_table(limb_table(opts["quality"], opts["degree"], opts["mesh_method"]), None)


def _run_cheek(opts: dict) -> dict:
    from emsim.models import parse_case, read_case_table
    from emsim.pipeline import solve_case
    from emsim.studies.run import default_case_path

    table = read_case_table(default_case_path())
    if opts.get("dc"):
        table.pop("waveform", None)
        table.pop("thermal", None)
    if "quality" in opts:
        table["mesh"] = {"quality": opts["quality"], "degree": opts["degree"]}
    case = parse_case(table)
    res = solve_case(case, max_dofs=1e9)
    stages = dict(res.solver.timings_s) if res.solver is not None else {}
    stages.update(res.problem.timings_s)
    m = res.metrics.electric
    return {
        "dofs": res.problem.dofs,
        "cells": res.mesh.report.cells,
        "method": res.problem.method,
        "iterations": res.problem.iterations,
        "stages_s": stages,
        "value": m.skin_current_density_peak_A_per_m2,
        "value_name": "d.c. skin J peak [A/m^2]",
        "impedance_ohm": m.impedance_ohm,
        "reference": None,
        "error": None,
    }


_KINDS = {
    "disk-3d": _run_disk_3d, "disk-hand": _run_disk_hand, "disk-axi": _run_disk_axi, "cheek": _run_cheek,
    "layered-disk": _run_layered_disk, "limb": _run_limb,
}  # fmt: skip


def run_one(name: str) -> dict:
    """Run one case in this process (on every rank); rank 0 returns the record."""
    from mpi4py import MPI

    import emsim  # noqa: F401  (orders MPI before dolfinx)

    kind, opts = {**CASES, **LARGE}[name]
    c0, t0 = time.process_time(), time.perf_counter()
    out = _KINDS[kind](opts)
    out["wall_s"] = time.perf_counter() - t0
    out["cpu_s"] = MPI.COMM_WORLD.allreduce(time.process_time() - c0)
    out["ranks"] = MPI.COMM_WORLD.size
    return out


# ---------------------------------------------------------------------------------- the set


def _machine() -> dict:
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "host": platform.node()}


def _run_child(name: str, ranks: int) -> dict:
    """Run one case in a child process (under mpirun for ranks > 1), with its peak RSS.

    The peak RSS is that of the largest single process of the case (each rank is one), from
    GNU time when present.
    """
    cmd = [sys.executable, str(Path(__file__).resolve()), "--child", name]
    report = Path(f"/tmp/emsim-bench-{os.getpid()}-{name}-{ranks}.time")
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists():
        report.unlink(missing_ok=True)
        cmd = [str(gnu_time), "-a", "-o", str(report), "-f", "%M", *cmd]
    if ranks > 1:
        cmd = [str(Path(sys.executable).parent / "mpirun"), "-n", str(ranks), *cmd]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    record: dict = {"case": name, "ranks": ranks, "process_wall_s": time.perf_counter() - t0}
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if proc.returncode != 0 or not lines:
        record["failed"] = (proc.stderr or proc.stdout or "no output")[-2000:]
        return record
    record.update(json.loads(lines[-1]))
    try:
        record["peak_rss_MB"] = max(int(x) for x in report.read_text().split() if x.isdigit()) / 1024
        report.unlink()
    except (OSError, ValueError):
        pass
    return record


def _best(runs: list[dict]) -> dict:
    """One record of repeated runs: each time (stage, wall, CPU) at its minimum over the runs.

    On a shared machine the other processes only ever add time; the minimum is the estimate
    of the case's own cost (as timeit does).
    """
    ok = [r for r in runs if "failed" not in r]
    if not ok:
        return runs[-1]
    out = dict(min(ok, key=lambda r: r["process_wall_s"]))
    out["stages_s"] = {k: min(r["stages_s"].get(k, float("inf")) for r in ok) for k in ok[0]["stages_s"]}
    for key in ("wall_s", "cpu_s", "process_wall_s"):
        out[key] = min(r[key] for r in ok)
    out["repeats"] = len(ok)
    return out


def _table(records: list[dict]) -> str:
    head = (
        "| case | ranks | dofs | method | it. | mesh s | assembly s | solver setup s | solve s | post s | "
        "waveform s | thermal s | process s | CPU s | peak RSS MB | B/dof | value | error |"
    )
    rows = [head, "|" + "---|" * 18]
    for r in records:
        if "failed" in r:
            rows.append(f"| {r['case']} | {r['ranks']} | failed: {r['failed'].splitlines()[-1][:80]} |")
            continue
        st = r["stages_s"]

        def s(key: str, st: dict = st) -> str:
            return f"{st[key]:.2f}" if key in st else "-"

        mesh = s("mesh_s") if "mesh_s" in st else s("mesh_and_solve_s")
        rss = r.get("peak_rss_MB")
        per_dof = f"{rss * 2**20 / r['dofs']:.0f}" if rss else "-"
        err = f"{100 * r['error']:+.3f} %" if r.get("error") is not None else "-"
        its = max(r["iterations"]) if r["iterations"] else "-"
        rows.append(
            f"| {r['case']} | {r['ranks']} | {r['dofs']:,} | {r['method']} | {its} | {mesh} | {s('assembly_s')} | "
            f"{s('solver_setup_s')} | {s('unit_solves_s')} | {s('postprocess_s')} | {s('waveform_s')} | "
            f"{s('thermal_s')} | {r['process_wall_s']:.1f} | {r['cpu_s']:.1f} | {f'{rss:.0f}' if rss else '-'} | "
            f"{per_dof} | {r['value']:.6g} | {err} |"
        )
    return "\n".join(rows)


def _overhead(records: list[dict]) -> str | None:
    """Toolkit over the hand-written script on the same mesh and solver.

    The solve path (forms, assembly, solver setup, solve) does the same work in both; the
    toolkit's post-processing computes every metric of the case (skin current density discs,
    percentiles, layer powers, conservation), the script one current: it is reported apart.
    """
    by = {(r["case"], r["ranks"]): r for r in records if "failed" not in r}
    tool, hand = by.get(("disk-3d-default-p3", 1)), by.get(("disk-hand-default-p3", 1))
    if not (tool and hand):
        return None
    keys = ("forms_s", "assembly_s", "solver_setup_s", "unit_solves_s")
    t = sum(tool["stages_s"].get(k, 0.0) for k in keys)
    h = sum(hand["stages_s"].get(k, 0.0) for k in keys)
    return (
        f"solve path (forms, assembly, solver setup, solve) on the same mesh: toolkit {t:.2f} s, "
        f"hand-written DOLFINx script {h:.2f} s, overhead {100 * (t / h - 1):+.1f} %; post-processing "
        f"(all metrics) {tool['stages_s'].get('postprocess_s', 0.0):.2f} s against one current "
        f"{hand['stages_s'].get('postprocess_s', 0.0):.2f} s"
    )


def main() -> None:
    """Run the set (or one case as a child) and write the table and JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help="case names (default: the fixed set)")
    p.add_argument("--ranks", type=int, nargs="*", help="rank counts (default 1, and 2 for the MPI cases)")
    p.add_argument("--large", action="store_true", help="add the 1M-dof memory case")
    p.add_argument("--repeat", type=int, default=1, help="run each case N times, keep the fastest times")
    p.add_argument("--json", default=str(HERE / "results.json"), help="where to write the results")
    p.add_argument("--child", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        from mpi4py import MPI

        record = run_one(args.child)
        if MPI.COMM_WORLD.rank == 0:
            print(json.dumps(record), flush=True)
        return
    names = args.only or list(CASES) + (list(LARGE) if args.large else [])
    for n in names:
        if n not in CASES and n not in LARGE:
            p.error(f"unknown case {n!r}; one of {', '.join([*CASES, *LARGE])}")
    runs = []
    for n in names:
        for ranks in args.ranks or ([1, 2] if n in MPI_CASES else [1]):
            runs.append((n, ranks))
    machine = _machine()
    machine["load_average_before"] = os.getloadavg()
    records = []
    for n, ranks in runs:
        print(f"running {n} on {ranks} rank(s) ...", file=sys.stderr, flush=True)
        records.append(_best([_run_child(n, ranks) for _ in range(args.repeat)]))
    machine["load_average_after"] = os.getloadavg()
    table = _table(records)
    overhead = _overhead(records)
    print(table)
    if overhead:
        print("\n" + overhead)
    la = machine["load_average_before"]
    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, load average before {la[0]:.1f}, "
          f"after {machine['load_average_after'][0]:.1f}")  # fmt: skip
    out = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine,
           "records": records, "overhead": overhead}  # fmt: skip
    path = Path(args.json)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
