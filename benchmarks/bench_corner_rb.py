"""How many modes does a reduced basis need for the skin current density of the sample's corners?

The step after benchmarks/bench_corner_basis.py (the potentials' POD) and
benchmarks/bench_affine_morph.py (the corners' matrices are affine in the layer stretches): a
Galerkin reduced solution of each held-out corner, and its error in what the verdict reads, the
current density in the skin (a gradient, which needs more modes than the potential). Per corner
of the sample's ten-factor spread (random corners: every factor at its min or max), the truth is
the d.c. unit field of electrode A (emsim's ElectricProblem on the morphed mesh, with the corner's
conductivities and contact); the reduced solution is u_0 + W c with u_0 the training snapshots'
mean and W their first r POD modes, c from (W^T K W) c = -W^T K u_0 with the corner's own
stiffness K (the modes vanish on the Dirichlet dofs: every snapshot has the same electrode
values). Reported per r, over the held-out corners: the largest relative error of the skin's
peak current density (cellwise |sigma grad u| over the skin layer's cells: the largest cell, not
the 1 mm disc average emsim reports) and of the skin's current density field (relative l2 over the
skin cells). Serial; run by hand and record the output in docs/performance.md:

    .venv/bin/python benchmarks/bench_corner_rb.py [--corners 64] [--train 48] [--seed 7]
"""

from __future__ import annotations

import argparse
import random
import time

import numpy as np

import emsim  # noqa: F401
from emsim.device.anatomy import corner_case, head_case_table, nominal_case
from emsim.device.presets import read_presets
from emsim.device.validate import AnatomySolver
from emsim.meshes.morph import morph_layers
from emsim.meshes.patch import build_patch_mesh
from emsim.models import parse_case
from emsim.solvers.electric.electrodes import P1CellGradient
from emsim.solvers.electric.problem import ElectricProblem


def _csr(form):
    """The assembled matrix of a compiled bilinear form as scipy CSR (serial), no boundary conditions."""
    import scipy.sparse as sp
    from dolfinx.fem import petsc as fpetsc

    A = fpetsc.assemble_matrix(form)
    A.assemble()
    indptr, indices, data = A.getValuesCSR()
    n = A.getSize()
    A.destroy()
    return sp.csr_matrix((data.copy(), indices.copy(), indptr.copy()), shape=n)


def main() -> None:
    """Solve random corners, build the POD of a training set, and measure reduced solutions of the rest."""
    import ufl
    from dolfinx import fem
    from mpi4py import MPI

    p = argparse.ArgumentParser()
    p.add_argument("--presets", default="device/samples/facial-ems-1.toml")
    p.add_argument("--corners", type=int, default=64)
    p.add_argument("--train", type=int, default=48)
    p.add_argument("--seed", type=int, default=7)
    args = p.parse_args()
    if MPI.COMM_WORLD.size != 1:
        raise SystemExit("run serially: the snapshots are gathered on one process")
    pf = read_presets(args.presets)
    site = pf.device.sites[0]
    nominal = nominal_case(pf.device, pf.validation, site)
    solver = AnatomySolver(pf, keep_results=False)
    preset = next(iter(solver.groups.values()))[0]

    def case_of(anatomy):
        return parse_case(head_case_table(solver.head, anatomy, preset, solver.reference_A))

    base = build_patch_mesh(case_of(nominal), MPI.COMM_WORLD)
    skin = base.cell_tags.find(base.volumes["layer:skin"])
    rng = random.Random(args.seed)
    k = len(nominal.factors)
    corners = list(dict.fromkeys(tuple(rng.random() < 0.5 for _ in range(k)) for _ in range(20 * args.corners)))
    corners = corners[: args.corners]
    snapshots, stiffness, skin_J, sigma_skin, seconds = [], [], [], [], []
    patch = base
    for c in corners:
        case = case_of(corner_case(nominal, c))
        patch = morph_layers(patch, [layer.thickness_m for layer in case.layers])
        t0 = time.perf_counter()
        problem = ElectricProblem(case, patch)
        field = problem.unit_fields[problem.names[0]]
        seconds.append(time.perf_counter() - t0)
        u, v = ufl.TrialFunction(problem.V), ufl.TestFunction(problem.V)
        stiffness.append(_csr(fem.form(problem.form(u, v))))
        s = float(np.asarray(problem.sigma["layer:skin"]).ravel()[0])  # isotropic skin [S/m]
        grad = P1CellGradient.of(patch.mesh)
        dofs = problem.V.dofmap.list
        snapshots.append(field.x.array.copy())
        skin_J.append(s * grad(field.x.array, dofs)[skin])
        sigma_skin.append(s)
        problem.close()
    S = np.array(snapshots)
    n_train = args.train
    u0 = S[:n_train].mean(axis=0)
    W, _, _ = np.linalg.svd((S[:n_train] - u0).T, full_matrices=False)
    print(f"{args.presets}, site {site}: {k} factors, {len(corners)} random corners ({n_train} to train, "
          f"{len(corners) - n_train} held out), {S.shape[1]:,} dofs, {len(skin):,} skin cells, truth "
          f"{np.mean(seconds):.2f} s a corner; unit field of electrode {problem.names[0]}")  # fmt: skip
    print("| modes | skin peak J, largest error | skin J field (l2), largest | mean | potential (l2), largest |")
    print("|---|---|---|---|---|")
    for r in (2, 4, 8, 12, 16, 24, 32, 47):
        if r > min(W.shape[1], n_train - 1):
            continue
        Wr = W[:, :r]
        peak_err, field_err, pot_err = [], [], []
        for j in range(n_train, len(corners)):
            patch = morph_layers(patch, [layer.thickness_m for layer in case_of(corner_case(nominal, corners[j])).layers])
            K = stiffness[j]
            KW = K @ Wr
            c = np.linalg.solve(Wr.T @ KW, -Wr.T @ (K @ u0))
            u_rb = u0 + Wr @ c
            grad = P1CellGradient.of(patch.mesh)
            J_rb = sigma_skin[j] * grad(u_rb, problem.V.dofmap.list)[skin]
            J = skin_J[j]
            peak, peak_rb = np.linalg.norm(J, axis=1).max(), np.linalg.norm(J_rb, axis=1).max()
            peak_err.append(abs(peak_rb - peak) / peak)
            field_err.append(np.linalg.norm(J_rb - J) / np.linalg.norm(J))
            pot_err.append(np.linalg.norm(u_rb - S[j]) / np.linalg.norm(S[j]))
        print(f"| {r} | {max(peak_err):.1e} | {max(field_err):.1e} | {np.mean(field_err):.1e} | {max(pot_err):.1e} |")


if __name__ == "__main__":
    main()
