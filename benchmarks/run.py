"""The benchmark harness: issue 18's workloads against their targets, each case in its own process.

    .venv/bin/python benchmarks/run.py              # everything (also: make bench)
    .venv/bin/python benchmarks/run.py --quick      # without the limb, the validation and the 1M-dof case
    .venv/bin/python benchmarks/run.py --reference  # recompute the default case's fine reference first
    .venv/bin/python benchmarks/run.py --only disk-3d-coarse-p3 --ranks 1
    .venv/bin/python benchmarks/run.py --repeat 3  # each time the minimum of 3 runs (shared machines)

Two tables. The first has one row per row of issue 18's table (the default case as `make run`
runs it, the layered disk, the limb patch, `emsim validate` of the device sample, each mesh
quality on the disk at the default degree, the test suite, the memory per dof of the ~1M-dof
case), each with its target and met / missed. The second has every case: dofs, wall time per
stage (mesh, assembly, solver setup, solve, post-processing, thermal, waveform), CPU time, peak
RSS of the process (and per dof), Krylov iterations, and the error against the closed form where
one exists (the disk on a grounded slab: the exact Fredholm value of
:func:`emsim.solvers.reference.electric.disk_on_grounded_slab_resistance_exact`). Beside emsim's
disk rows runs the same disk in NGSolve (P3, graded, CG + BDDC; benchmarks/ngsolve/disk.py, in a
venv this script builds on first use at benchmarks/.ngsolve-venv), and a hand-written DOLFINx
script on the same mesh and solver as the toolkit. The machine (CPU, cores, load average before
and after) is recorded with the results: the machine is shared, and wall times on a loaded
machine are longer than CPU times.

The default case's skin peak is judged against a fine reference cached in
``benchmarks/reference.json`` (with the case, dofs, date and commit that made it);
``--reference`` recomputes it (the default case's d.c. part at fine, degree 2: minutes).

Results go to ``benchmarks/results.json`` (``--json PATH``) and the tables to stdout;
docs/performance.md holds the tables of the last full run with its machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The benchmark disk of issue 12: a = 4 mm on a grounded slab, sigma 0.25 S/m, D = 40 mm.
DISK = {"radius_m": 4e-3, "depth_m": 40e-3, "sigma_S_per_m": 0.25}

#: name -> (kind, options). Kinds: "disk-3d", "disk-hand" (the hand-written DOLFINx script),
#: "disk-axi", "cheek" (the built-in default case, d.c. and heating), "layered-disk" (against the
#: axisymmetric solver), "limb" (a 200 x 100 mm patch with 50 x 90 mm pads), "cli-run" (`emsim run`
#: of the default case), "cli-validate" (`emsim validate` of a presets file), and two that run their
#: own command instead of this script: "make" (a make target) and "ngsolve" (benchmarks/ngsolve/disk.py).
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
    # Issue 18's rows. The default case as `make run` runs it (the command line, outputs written):
    # the first run on a machine (an empty mesh cache, which it fills), and a rerun of it (the
    # mesh read from the cache). Every other case meshes with the cache off.
    "make-run": ("cli-run", {"mesh_cache": "empty"}),
    "make-run-rerun": ("cli-run", {"mesh_cache": "filled"}),
    # Each quality on the disk at the package's default degree ([mesh] degree left out).
    "disk-3d-coarse-pdefault": ("disk-3d", {"quality": "coarse", "degree": None}),
    "disk-3d-default-pdefault": ("disk-3d", {"quality": "default", "degree": None}),
    "disk-3d-fine-pdefault": ("disk-3d", {"quality": "fine", "degree": None}),
    # `emsim validate` of the device sample as it is (its own [validation] spread).
    "validate-sample": ("cli-validate", {"presets": "device/samples/facial-ems-1.toml"}),
    "test-fast": ("make", {"target": "test-fast"}),
    # The peer: the same disk in NGSolve, P3 on a Netgen mesh graded to the rim, CG + BDDC.
    "ngsolve-disk-p3": ("ngsolve", {"order": 3, "rim_h_m": 0.15e-3, "max_h_m": 10e-3}),
    # Degree 2 at about the dofs of disk-3d-fine-p3 (a memory lever: fewer nonzeros per row).
    "disk-3d-fine-p2-memory": ("disk-3d", {"quality": "fine", "degree": 2, "size_factor": 0.57, "method": "cg-gamg"}),
    # The memory case: about 1e6 dofs.
    "disk-3d-large-p3": ("disk-3d", {"quality": "fine", "degree": 3, "size_factor": 0.55}),
}
#: Cases that also run on 2 MPI ranks.
MPI_CASES = ("disk-3d-default-p3", "cheek-builtin")
#: Cases that run on these rank counts only: the sample's validation as its quick start runs it
#: (`mpiexec -n 2`: one corner per rank; serially it takes 1.9x as long, docs/device.md), and the
#: default case as `make run` runs it (`mpirun -n 2`).
RANKS = {"validate-sample": (2,), "make-run": (2,), "make-run-rerun": (2,)}
#: The long rows that --quick leaves out: the limb patch, the validation, the memory case.
LONG = ("limb-coarse-p1", "validate-sample", "disk-3d-large-p3")
#: The fine reference of the default case's skin peak (--reference): its d.c. part at fine, degree 2.
REFERENCE_CASE = "cheek-dc-fine-p2"
REFERENCE = {REFERENCE_CASE: ("cheek", {"quality": "fine", "degree": 2, "dc": True})}
REFERENCE_FILE = HERE / "reference.json"
#: The NGSolve venv (built on first use; gitignored) and the pinned wheel.
NGSOLVE_VENV = HERE / ".ngsolve-venv"
NGSOLVE_REQUIREMENT = "ngsolve==6.2.2608"


# ---------------------------------------------------------------------------------- one case


def _rss_MB(field: str = "VmRSS") -> float | None:
    """This process's resident set size [MB] (``VmHWM``: its peak so far), or None (emsim.io.process)."""
    from emsim.io.process import resident_memory_MB

    now, peak = resident_memory_MB()
    return peak if field == "VmHWM" else now


def _degree(opts: dict) -> int:
    """The case's degree; None means the package's default ([mesh] degree left out)."""
    if opts.get("degree") is not None:
        return opts["degree"]
    from emsim.models.geometry import MeshSettings

    return MeshSettings().degree


def _named_accuracy(quality: str, degree: int) -> float:
    """The relative error a quality is named for (meshes.patch: its public function if any, else the table)."""
    from emsim.meshes import patch

    by_degree = getattr(patch, "quality_accuracy", None)  # a function of (quality, degree) where one exists
    if callable(by_degree):
        return float(by_degree(quality, degree))
    return patch.QUALITY_ACCURACY[quality]


def _disk_case(opts: dict):
    import dataclasses

    from emsim.studies.verification import disk_on_slab_case

    case, ref = disk_on_slab_case(
        **DISK, quality=opts["quality"], degree=_degree(opts), size_factor=opts.get("size_factor", 1.0)
    )
    if "method" in opts:
        case = dataclasses.replace(case, solver=dataclasses.replace(case.solver, method=opts["method"]))
    return case, ref


def _run_disk_3d(opts: dict) -> dict:
    from mpi4py import MPI

    from emsim.meshes.patch import build_patch_mesh
    from emsim.solvers.electric.metrics import ElectricLeadField
    from emsim.solvers.electric.problem import ElectricProblem

    rss = {"after_imports": _rss_MB()}
    peak = {"after_imports": _rss_MB("VmHWM")}
    case, ref = _disk_case(opts)
    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    patch = build_patch_mesh(case, comm, max_dofs=1e9)
    mesh_s = time.perf_counter() - t0
    rss["after_mesh"] = _rss_MB()
    peak["after_mesh"] = _rss_MB("VmHWM")
    t0 = time.perf_counter()
    problem = ElectricProblem(case, patch)
    init_s = time.perf_counter() - t0
    rss["after_forms"] = _rss_MB()
    solutions = problem.channel_unit_solutions()
    rss.update(problem.rss_MB)
    peak.update(problem.peak_rss_MB)
    t0 = time.perf_counter()
    lead = ElectricLeadField.build(problem, solutions)
    metrics = lead.at([c.current_A for c in case.channels])
    post_s = time.perf_counter() - t0
    rss["after_postprocess"] = _rss_MB()
    peak["after_postprocess"] = _rss_MB("VmHWM")
    z = metrics.impedance_ohm
    stages = {"mesh_s": mesh_s, "forms_s": init_s, **problem.timings_s, "postprocess_s": post_s}
    return {
        "degree": case.mesh.degree,
        "named_accuracy": _named_accuracy(case.mesh.quality, case.mesh.degree),
        "rss_MB": rss,
        "peak_rss_so_far_MB": peak,
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
    stages = dict(res.solver.timings_s) if res.solver is not None else {}
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


def _find_key(tree: object, key: str) -> object:
    """The first value under ``key`` anywhere in a JSON tree (depth first), or None."""
    if isinstance(tree, dict):
        if key in tree:
            return tree[key]
        tree = list(tree.values())
    if isinstance(tree, list):
        for item in tree:
            found = _find_key(item, key)
            if found is not None:
                return found
    return None


def _cli_in_one_folder(args: list[str], result: str) -> tuple[int, float, dict]:
    """Run the emsim command line with ``--out`` a temporary folder shared by every rank (under mpirun rank 0 writes it).

    Returns (exit code, seconds, the JSON file ``result`` of the output on rank 0; {} on the others);
    the folder is removed.
    """

    from mpi4py import MPI

    from emsim.cli import main as cli_main

    comm = MPI.COMM_WORLD
    tmp = comm.bcast(tempfile.mkdtemp(prefix="emsim-bench-") if comm.rank == 0 else None)
    try:
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        rc = cli_main([*args, "--out", str(out)])
        seconds = time.perf_counter() - t0
        body = json.loads((out / result).read_text()) if comm.rank == 0 else {}
    finally:
        comm.Barrier()
        if comm.rank == 0:
            shutil.rmtree(tmp, ignore_errors=True)
    return rc, seconds, body


def _run_cli_run(opts: dict) -> dict:
    """`emsim run` of the built-in default case, as `make run` runs it (outputs to a temporary folder)."""
    rc, run_s, metrics = _cli_in_one_folder(["run"], "metrics.json")
    if rc != 0:
        raise RuntimeError(f"emsim run exited {rc}")
    peak = _find_key(metrics, "skin_current_density_peak_A_per_m2")
    value = peak.get("value") if isinstance(peak, dict) else peak
    ref = None
    if REFERENCE_FILE.exists():
        ref = json.loads(REFERENCE_FILE.read_text())[REFERENCE_CASE]["value"]
    return {
        "dofs": _find_key(metrics, "dofs"),
        "method": _find_key(metrics, "method") or "-",
        "iterations": [],
        "stages_s": {"emsim_run_s": run_s, **(_find_key(metrics, "timings_s") or {})},
        "value": value,
        "value_name": "d.c. skin J peak [A/m^2]",
        "reference": ref,
        "error": None if ref is None or value is None else (value - ref) / ref,
    }


def _run_cli_validate(opts: dict) -> dict:
    """`emsim validate` of a presets file as it is, with its own ``[validation] spread``."""
    presets = ROOT / opts["presets"]
    spread = tomllib.loads(presets.read_text()).get("validation", {}).get("spread", "corners (the default)")
    rc, run_s, report = _cli_in_one_folder(["validate", str(presets)], "validation.json")
    return {
        "dofs": None,
        "method": "-",
        "iterations": [],
        "stages_s": {"validate_s": run_s},
        "value": _find_key(report, "solves"),
        "value_name": "anatomy cases solved",
        "spread": spread,
        "passed": rc == 0,
        "reference": None,
        "error": None,
    }


_KINDS = {
    "disk-3d": _run_disk_3d, "disk-hand": _run_disk_hand, "disk-axi": _run_disk_axi, "cheek": _run_cheek,
    "layered-disk": _run_layered_disk, "limb": _run_limb, "cli-run": _run_cli_run,
    "cli-validate": _run_cli_validate,
}  # fmt: skip
#: Kinds that run outside emsim's Python (their own command, not a ``--child`` of this script).
_COMMANDS = ("make", "ngsolve")


def run_one(name: str) -> dict:
    """Run one case in this process (on every rank); rank 0 returns the record."""
    from mpi4py import MPI

    import emsim  # noqa: F401  (orders MPI before dolfinx)

    kind, opts = {**CASES, **REFERENCE}[name]
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


def _ngsolve_python() -> Path:
    """The NGSolve venv's Python, built on first use (``python -m venv`` + ``pip install ngsolve``)."""
    py = NGSOLVE_VENV / "bin" / "python"
    if not py.exists():
        print(f"building {NGSOLVE_VENV} ({NGSOLVE_REQUIREMENT}, once) ...", file=sys.stderr, flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(NGSOLVE_VENV)], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "--quiet", NGSOLVE_REQUIREMENT], check=True)
    return py


def _command(name: str) -> list[str]:
    """The command of a case: this script as a ``--child``, or the case's own command."""
    kind, opts = {**CASES, **REFERENCE}[name]
    if kind == "make":
        return ["make", "-C", str(ROOT), opts["target"]]
    if kind == "ngsolve":
        return [
            str(_ngsolve_python()), str(HERE / "ngsolve" / "disk.py"), "--radius", repr(DISK["radius_m"]),
            "--depth", repr(DISK["depth_m"]), "--sigma", repr(DISK["sigma_S_per_m"]), "--order", str(opts["order"]),
            "--rim-h", repr(opts["rim_h_m"]), "--max-h", repr(opts["max_h_m"]),
        ]  # fmt: skip
    return [sys.executable, str(Path(__file__).resolve()), "--child", name]


def _command_record(name: str, proc: subprocess.CompletedProcess) -> dict:
    """The record of a case run by its own command (make, NGSolve)."""
    kind, opts = CASES[name]
    if kind == "make":
        summary = [ln for ln in proc.stdout.splitlines() if " passed" in ln or " failed" in ln]
        return {"dofs": None, "method": "-", "iterations": [], "stages_s": {}, "value": None,
                "value_name": "pytest summary", "summary": summary[-1].strip("= ") if summary else "-",
                "reference": None, "error": None}  # fmt: skip
    from_script = json.loads([ln for ln in proc.stdout.splitlines() if ln.startswith("{")][-1])
    ref = _disk_reference()
    return from_script | {
        "method": "cg-bddc", "iterations": [from_script["iterations"]], "degree": opts["order"],
        "wall_s": sum(from_script["stages_s"].values()), "reference": ref,
        "error": (from_script["value"] - ref) / ref,
    }  # fmt: skip


def _disk_reference() -> float:
    """The exact resistance of the benchmark disk [ohm] (imported here: the parent stays light)."""
    code = ("from emsim.solvers.reference.electric import disk_on_grounded_slab_resistance_exact as f; "
            f"print(repr(f({DISK['sigma_S_per_m']!r}, {DISK['radius_m']!r}, {DISK['depth_m']!r})))")  # fmt: skip
    return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)


def _run_child(name: str, ranks: int) -> dict:
    """Run one case in a child process (under mpirun for ranks > 1), with its peak RSS.

    The peak RSS is that of the largest single process of the case (each rank is one), from
    GNU time when present. The CPU time of a case run by its own command is that of all its
    processes (from the kernel's accounting of the finished children).
    """
    kind = {**CASES, **REFERENCE}[name][0]
    cmd = _command(name)
    report = Path(f"/tmp/emsim-bench-{os.getpid()}-{name}-{ranks}.time")
    gnu_time = Path("/usr/bin/time")
    if gnu_time.exists() and kind != "make":  # make's RSS would be its largest test worker's: not a case's
        report.unlink(missing_ok=True)
        cmd = [str(gnu_time), "-a", "-o", str(report), "-f", "%M", *cmd]
    if ranks > 1:
        cmd = [str(Path(sys.executable).parent / "mpirun"), "-n", str(ranks), *cmd]
    # Every case meshes with the mesh cache off, except the cases with a "mesh_cache" option:
    # "empty" runs with an empty cache folder (a first run, which stores its mesh); "filled" runs
    # once untimed into an empty one, then is timed reading its mesh from it.
    env = {**os.environ, "EMSIM_MESH_CACHE": "off"}
    cache_mode = {**CASES, **REFERENCE}[name][1].get("mesh_cache")
    cache_root = None
    if cache_mode is not None:
        cache_root = tempfile.mkdtemp(prefix="emsim-bench-cache-")
        env = {**os.environ, "EMSIM_MESH_CACHE": "on", "EMSIM_CACHE_DIR": cache_root}
        if cache_mode == "filled":
            fill = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
            if fill.returncode != 0:
                shutil.rmtree(cache_root, ignore_errors=True)
                return {"case": name, "ranks": ranks, "failed": "the run that fills the mesh cache failed: "
                        + (fill.stderr or fill.stdout or "no output")[-2000:]}  # fmt: skip
            report.unlink(missing_ok=True)  # GNU time appends (-a): only the timed run's RSS
    usage0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, env=env)
    record: dict = {"case": name, "ranks": ranks, "process_wall_s": time.perf_counter() - t0}
    if cache_root is not None:
        shutil.rmtree(cache_root, ignore_errors=True)
        record["mesh_from_cache"] = "the mesh read from the mesh cache" in proc.stderr + proc.stdout
        if cache_mode == "filled" and not record["mesh_from_cache"]:
            record["failed"] = "the rerun did not read its mesh from the mesh cache"
            return record
    usage1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (usage1.ru_utime + usage1.ru_stime) - (usage0.ru_utime + usage0.ru_stime)
    record["process_cpu_s"] = cpu
    if kind in _COMMANDS:
        record["returncode"] = proc.returncode
        if kind == "ngsolve" and proc.returncode != 0:
            record["failed"] = (proc.stderr or proc.stdout or "no output")[-2000:]
            return record
        record.update(_command_record(name, proc))
        record.setdefault("wall_s", record["process_wall_s"])
        record["cpu_s"] = cpu
    else:
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
    for key in ("wall_s", "cpu_s", "process_wall_s", "process_cpu_s"):
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
        dofs = r.get("dofs")
        per_dof = f"{rss * 2**20 / dofs:.0f}" if rss and dofs else "-"
        err = f"{100 * r['error']:+.3f} %" if r.get("error") is not None else "-"
        its = max(r["iterations"]) if r.get("iterations") else "-"
        value = r.get("value")
        value = f"{value:.6g}" if isinstance(value, float) else (r.get("summary", "-") if value is None else value)
        rows.append(
            f"| {r['case']} | {r['ranks']} | {f'{dofs:,}' if dofs else '-'} | {r['method']} | {its} | {mesh} | "
            f"{s('assembly_s')} | {s('solver_setup_s')} | {s('unit_solves_s')} | {s('postprocess_s')} | "
            f"{s('waveform_s')} | {s('thermal_s')} | {r['process_wall_s']:.1f} | {r['cpu_s']:.1f} | "
            f"{f'{rss:.0f}' if rss else '-'} | {per_dof} | {value} | {err} |"
        )
    return "\n".join(rows)


#: The quality rows of issue 18: each [mesh] quality on the disk at the default degree.
QUALITY_ROWS = ("disk-3d-coarse-pdefault", "disk-3d-default-pdefault", "disk-3d-fine-pdefault")
#: emsim's disk rows beside NGSolve's (accuracy per second).
COMPARISON_ROWS = ("disk-3d-coarse-p3", "disk-3d-default-p3", "ngsolve-disk-p3")


def _verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


def _issue18_table(records: list[dict], quick: bool) -> str:
    """One row per row of issue 18's table: workload, target, result, met / missed."""
    by: dict[str, dict] = {}
    for r in records:  # the 1-rank record of a case, or the one of its own rank count (RANKS)
        if r["case"] not in by or r["ranks"] == 1:
            by[r["case"]] = r
    not_run = "not run (--quick)" if quick else "not run"
    rows = ["| workload (issue 18) | target | result | verdict |", "|---|---|---|---|"]

    def row(workload: str, target: str, name: str, result, ok) -> None:
        r = by.get(name)
        if r is None:
            rows.append(f"| {workload} | {target} | {not_run} | - |")
        elif "failed" in r:
            rows.append(f"| {workload} | {target} | failed: {r['failed'].splitlines()[-1][:100]} | **missed** |")
        else:
            rows.append(f"| {workload} | {target} | {result(r)} | {ok(r)} |")

    def rss(r: dict) -> str:
        return f"{r['peak_rss_MB']:.0f} MB" if r.get("peak_rss_MB") else "RSS -"

    def cheek(r: dict) -> str:
        ref = "no fine reference (run --reference)" if r.get("error") is None else (
            f"{100 * r['error']:+.2f} % off the fine reference {r['reference']:.5g}")
        return (f"{r['process_wall_s']:.1f} s wall, {r['process_cpu_s']:.1f} s CPU, {rss(r)}; {r['dofs']:,} dofs; "
                f"skin peak {r['value']:.5g} A/m^2, {ref}")  # fmt: skip

    def ten_seconds(r: dict) -> str:  # issue 18's target of the default case, first run or rerun
        if r.get("error") is None:
            return "missed (no reference)"
        return _verdict(r["process_wall_s"] <= 10.0 and abs(r["error"]) <= 0.01)

    row("`make run`, the default cheek case (whole process)", "<= 10 s, skin peak within 1 % of a fine reference",
        "make-run", cheek, ten_seconds)  # fmt: skip
    row("`make run` again, the mesh read from the mesh cache (a rerun of the same geometry)",
        "<= 10 s, skin peak within 1 % of a fine reference", "make-run-rerun", cheek, ten_seconds)  # fmt: skip
    row("layered disk: 20 mm disk on skin 1.5 / fat 3 / muscle 35.5 mm, 160 x 160 mm, coarse",
        "<= 30 s within 0.5 %", "layered-disk-coarse-p2",
        lambda r: (f"{r['process_wall_s']:.1f} s wall ({r['process_cpu_s']:.1f} s CPU), {100 * r['error']:+.3f} % vs the "
                   f"axisymmetric reference; {r['dofs']:,} dofs (layered mesh, degree 2, {r['method']}), {rss(r)}"),
        lambda r: _verdict(r["process_wall_s"] <= 30.0 and abs(r["error"]) <= 0.005))  # fmt: skip
    row("limb patch 200 x 100 mm, two 50 x 90 mm pads, coarse", "runs on this machine", "limb-coarse-p1",
        lambda r: (f"runs: {r['process_wall_s']:.0f} s wall ({r['process_cpu_s']:.0f} s CPU), {r['dofs']:,} dofs "
                   f"(layered mesh, degree 1), {rss(r)}, "
                   + ("MUMPS Cholesky" if r["method"] == "mumps" else f"{max(r['iterations'])} CG iterations")),
        lambda r: "met")  # fmt: skip
    row("`emsim validate` of device/samples/facial-ems-1.toml", "<= 60 s over the full worst-case search",
        "validate-sample",
        lambda r: (f"{r['process_wall_s']:.0f} s wall on {r['ranks']} rank(s), {r['value']} anatomy case(s) solved, spread = "
                   f"\"{r['spread']}\" ({'passed' if r['passed'] else 'some level failed'})"),
        lambda r: "missed (not the full search: spread is nominal)" if not str(r["spread"]).startswith("corners")
        else _verdict(r["process_wall_s"] <= 60.0))  # fmt: skip
    for name in QUALITY_ROWS:
        q = name.split("-")[2]
        r = by.get(name, {})
        target = f"within {100 * r['named_accuracy']:.2f} % (its name)" if "named_accuracy" in r else "its named accuracy"
        row(f"`[mesh] quality = \"{q}\"` on the disk, default degree", target, name,
            lambda r: (f"{100 * r['error']:+.3f} % with {r['dofs']:,} dofs (degree {r['degree']}), "
                       f"{r['process_wall_s']:.1f} s wall"),
            lambda r: _verdict(abs(r["error"]) <= r["named_accuracy"]))  # fmt: skip
    rows.append("| `make test` on a fresh clone (CI) | <= 10 min with every check kept | measured by CI "
                "(`make test`; no CI timing in the repository) | - |")  # fmt: skip
    row("`make test-fast`", "<= 60 s", "test-fast",
        lambda r: f"{r['process_wall_s']:.0f} s wall, {r['process_cpu_s']:.0f} s CPU ({r.get('summary', '-')})",
        lambda r: _verdict(r["returncode"] == 0 and r["process_wall_s"] <= 60.0))  # fmt: skip
    row("peak memory on a ~1M-dof case (the disk, degree 3, auto: CG + p-multigrid)", "<= 2 kB/dof", "disk-3d-large-p3",
        lambda r: (f"{r['peak_rss_MB'] * 2**20 / r['dofs'] / 1000:.2f} kB/dof: {r['peak_rss_MB']:.0f} MB peak "
                   f"at {r['dofs']:,} dofs"),
        lambda r: _verdict(r["peak_rss_MB"] * 2**20 / r["dofs"] <= 2000.0))  # fmt: skip
    return "\n".join(rows)


def _comparison_table(records: list[dict]) -> str | None:
    """emsim's disk rows beside NGSolve's: dofs, error, time; accuracy per second is the comparison."""
    by = {r["case"]: r for r in records if r["ranks"] == 1 and "failed" not in r}
    ngs = by.get("ngsolve-disk-p3")
    present = [by[n] for n in COMPARISON_ROWS if n in by]
    if not present:
        return None
    head = ("| code, case | dofs | error | wall s (after imports) | process wall s | process CPU s | peak RSS MB | "
            "time / NGSolve's | error / NGSolve's |")  # fmt: skip
    rows = [head, "|---|---|---|---|---|---|---|---|---|"]
    for r in present:
        who = "NGSolve P3, graded (Netgen), CG + BDDC" if r is ngs else (
            f"emsim {r['case'].split('-')[2]}, degree {r['degree']}, {r['method']}")
        ratio_t = f"{r['wall_s'] / ngs['wall_s']:.2f}" if ngs else "-"
        ratio_e = f"{abs(r['error']) / abs(ngs['error']):.2f}" if ngs else "-"
        rss = r.get("peak_rss_MB")
        rows.append(f"| {who} | {r['dofs']:,} | {100 * r['error']:+.3f} % | {r['wall_s']:.1f} | "
                    f"{r['process_wall_s']:.1f} | {r['process_cpu_s']:.1f} | {f'{rss:.0f}' if rss else '-'} | "
                    f"{ratio_t} | {ratio_e} |")  # fmt: skip
    return "\n".join(rows)


def _memory_table(records: list[dict]) -> str | None:
    """Resident memory per stage of the largest disk case run (MB, and per dof above the imports)."""
    disks = [r for r in records if r.get("rss_MB") and r["ranks"] == 1 and "failed" not in r]
    if not disks:
        return None
    r = max(disks, key=lambda r: r["dofs"])
    base = r["rss_MB"].get("after_imports") or 0.0
    title = f"{r['case']}: {r['dofs']:,} dofs, {r['method']}; process peak {r.get('peak_rss_MB', float('nan')):.0f} MB"
    rows = [title, "", "| stage | RSS MB | above imports, B/dof | peak so far MB |", "|---|---|---|---|"]
    peaks = r.get("peak_rss_so_far_MB", {})
    for stage, mb in r["rss_MB"].items():
        if mb is not None:
            hwm = f"{peaks[stage]:.0f}" if peaks.get(stage) else "-"
            rows.append(f"| {stage.replace('_', ' ')} | {mb:.0f} | {(mb - base) * 2**20 / r['dofs']:.0f} | {hwm} |")
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


def _write_reference(record: dict) -> None:
    """Cache the default case's fine reference with how it was made."""
    if "failed" in record:
        sys.exit(f"the reference case failed:\n{record['failed']}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT, check=False).stdout
    data = {REFERENCE_CASE: {
        "value": record["value"], "quantity": record["value_name"], "dofs": record["dofs"],
        "impedance_ohm": record.get("impedance_ohm"),
        "made_by": f"benchmarks/run.py --reference: case {REFERENCE_CASE} (the built-in default case's d.c. part, "
                   "[mesh] quality fine, degree 2)",
        "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "commit": commit.strip(),
        "process_wall_s": record["process_wall_s"], "peak_rss_MB": record.get("peak_rss_MB"),
    }}  # fmt: skip
    tmp = REFERENCE_FILE.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(REFERENCE_FILE)
    print(f"wrote {REFERENCE_FILE}: {record['value']:.6g}", file=sys.stderr)


def main() -> None:
    """Run the set (or one case as a child) and write the tables and JSON."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", nargs="*", help="case names (default: the whole set)")
    p.add_argument("--ranks", type=int, nargs="*", help="rank counts (default 1, and 2 for the MPI cases)")
    p.add_argument("--quick", action="store_true", help=f"issue 18's rows and the NGSolve comparison without {', '.join(LONG)}")
    p.add_argument("--large", action="store_true", help="only the 1M-dof memory case")
    p.add_argument("--reference", action="store_true", help=f"recompute {REFERENCE_FILE.name} ({REFERENCE_CASE}) first")
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
    if args.reference:
        print(f"running {REFERENCE_CASE} (the fine reference) ...", file=sys.stderr, flush=True)
        _write_reference(_run_child(REFERENCE_CASE, 1))
    issue18 = ["make-run", "make-run-rerun", "layered-disk-coarse-p2", "limb-coarse-p1", "validate-sample", *QUALITY_ROWS,
               "test-fast", "disk-3d-large-p3"]  # fmt: skip
    if args.only:
        names = args.only
    elif args.large:
        names = ["disk-3d-large-p3"]
    elif args.quick:
        names = [n for n in [*issue18, *COMPARISON_ROWS] if n not in LONG]
    else:
        names = [*issue18, *[n for n in CASES if n not in issue18]]
    for n in names:
        if n not in CASES:
            p.error(f"unknown case {n!r}; one of {', '.join(CASES)}")
    runs = []
    for n in names:
        for ranks in args.ranks or RANKS.get(n) or ([1, 2] if n in MPI_CASES and not args.quick else [1]):
            runs.append((n, ranks))
    machine = _machine()
    machine["load_average_before"] = os.getloadavg()
    records = []
    for n, ranks in runs:
        print(f"running {n} on {ranks} rank(s) ...", file=sys.stderr, flush=True)
        records.append(_best([_run_child(n, ranks) for _ in range(args.repeat)]))
    machine["load_average_after"] = os.getloadavg()
    sections = {
        "issue 18": _issue18_table(records, args.quick),
        "the disk beside NGSolve": _comparison_table(records),
        "memory per stage": _memory_table(records),
        "every case": _table(records),
        "toolkit overhead": _overhead(records),
    }
    for title, text in sections.items():
        if text:
            print(f"\n## {title}\n\n{text}")
    la = machine["load_average_before"]
    print(f"\nmachine: {machine['cpu']}, {machine['cores']} cores, load average before {la[0]:.1f}, "
          f"after {machine['load_average_after'][0]:.1f}")  # fmt: skip
    out = {"date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine,
           "records": records, **{k.replace(" ", "_"): v for k, v in sections.items()}}  # fmt: skip
    path = Path(args.json)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=1))
    tmp.replace(path)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
