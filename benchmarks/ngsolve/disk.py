"""The benchmark disk in NGSolve: P3 on a graded mesh, CG + BDDC (issue 18's peer comparison).

An equipotential disk of radius a on a grounded slab of depth D and conductivity sigma, the box
5 D wide with insulated sides (the same problem as ``disk-3d-*`` in benchmarks/run.py). The disk
is at 1 V, the bottom at 0 V; the current is the energy of the solution, I = sigma |grad u|^2
integrated over the box, so R = 1 / I. The mesh is Netgen's, graded toward the disk's rim (the
r^(1/2) singularity of the potential) by a local size on the rim edge and Netgen's grading
parameter. Run by benchmarks/run.py from its own venv (benchmarks/.ngsolve-venv) and prints one
JSON line: dofs, R, stage times, iterations.

    benchmarks/.ngsolve-venv/bin/python benchmarks/ngsolve/disk.py --radius 4e-3 --depth 40e-3 \
        --sigma 0.25 --rim-h 0.4e-3 --max-h 8e-3
"""

from __future__ import annotations

import argparse
import json
import time


def main() -> None:
    """Mesh, assemble, solve and print the JSON record."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--radius", type=float, required=True, help="disk radius a [m]")
    p.add_argument("--depth", type=float, required=True, help="slab depth D [m]")
    p.add_argument("--sigma", type=float, required=True, help="conductivity [S/m]")
    p.add_argument("--rim-h", type=float, required=True, help="element size on the disk's rim [m]")
    p.add_argument("--max-h", type=float, required=True, help="largest element size [m]")
    p.add_argument("--grading", type=float, default=0.3, help="Netgen's grading (0..1, smaller is slower growth)")
    p.add_argument("--order", type=int, default=3, help="polynomial order")
    p.add_argument("--rtol", type=float, default=1e-10, help="CG relative tolerance")
    p.add_argument("--threads", type=int, default=1, help="NGSolve task-manager threads")
    args = p.parse_args()

    import ngsolve as ngs
    from netgen import occ

    ngs.SetNumThreads(args.threads)
    a, depth, half = args.radius, args.depth, 2.5 * args.depth
    t0 = time.perf_counter()
    box = occ.Box(occ.Pnt(-half, -half, -depth), occ.Pnt(half, half, 0.0))
    box.faces.Min(occ.Z).name = "bottom"
    # A short coaxial cylinder under the disk splits the top face along the rim (same material).
    plug = occ.Cylinder(occ.Pnt(0.0, 0.0, -a), occ.Z, r=a, h=a)
    plug.faces.Max(occ.Z).name = "disk"
    plug.faces.Max(occ.Z).edges.maxh = args.rim_h
    shape = occ.Glue([box, plug])
    mesh = ngs.Mesh(occ.OCCGeometry(shape).GenerateMesh(maxh=args.max_h, grading=args.grading))
    mesh_s = time.perf_counter() - t0

    with ngs.TaskManager():
        t0 = time.perf_counter()
        fes = ngs.H1(mesh, order=args.order, dirichlet="disk|bottom")
        u, v = fes.TnT()
        sigma = ngs.CoefficientFunction(args.sigma)
        bf = ngs.BilinearForm(sigma * ngs.grad(u) * ngs.grad(v) * ngs.dx)
        pre = ngs.Preconditioner(bf, "bddc")  # registered before assembly: BDDC builds from the element matrices
        bf.Assemble()
        lf = ngs.LinearForm(fes)
        lf.Assemble()
        setup_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        gfu = ngs.GridFunction(fes)
        gfu.Set(1.0, definedon=mesh.Boundaries("disk"))
        # Lift the Dirichlet data: solve A du = -A u0 on the free dofs (BDDC acts on them only).
        res = gfu.vec.CreateVector()
        res.data = lf.vec - bf.mat * gfu.vec
        inv = ngs.krylovspace.CGSolver(bf.mat, pre.mat, tol=args.rtol, maxiter=500)
        gfu.vec.data += inv * res
        solve_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        current = ngs.Integrate(sigma * ngs.grad(gfu) * ngs.grad(gfu), mesh)
        post_s = time.perf_counter() - t0
    record = {
        "dofs": fes.ndof,
        "free_dofs": sum(fes.FreeDofs()),
        "cells": mesh.ne,
        "iterations": inv.iterations,
        "value": 1.0 / current,
        "stages_s": {"mesh_s": mesh_s, "assembly_and_bddc_setup_s": setup_s, "solve_s": solve_s, "postprocess_s": post_s},
        "ngsolve": ngs.__version__,
    }
    print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
