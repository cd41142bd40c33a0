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

import numpy as np
from sample_corners import csr, sample_head, snapshot_arguments, solve_corners

from emsim.meshes.morph import morph_layers
from emsim.solvers.electric.electrodes import P1CellGradient


def main() -> None:
    """Solve random corners, build the POD of a training set, and measure reduced solutions of the rest."""
    import ufl
    from dolfinx import fem

    args = snapshot_arguments()
    head = sample_head(args.presets)
    corners = head.random_corners(args.corners, args.seed)
    # per corner: its layer stack [m], unit field of the first electrode, stiffness, skin J, sigma_skin
    stacks, snapshots, stiffness, skin_J, sigma_skin, seconds = [], [], [], [], [], []
    for solved in solve_corners(head, corners):
        patch, problem = solved.patch, solved.problem
        skin = patch.cell_tags.find(patch.volumes["layer:skin"])
        stacks.append(solved.stack_m)
        electrode = problem.names[0]
        field = problem.unit_fields[electrode]
        seconds.append(solved.seconds)
        u, v = ufl.TrialFunction(problem.V), ufl.TestFunction(problem.V)
        stiffness.append(csr(fem.form(problem.form(u, v))))
        dofs = problem.V.dofmap.list  # the same on every corner: one mesh, its nodes moved
        s = float(np.asarray(problem.sigma["layer:skin"]).ravel()[0])  # isotropic skin [S/m]
        snapshots.append(field.x.array.copy())
        skin_J.append(s * P1CellGradient.of(patch.mesh)(field.x.array, dofs)[skin])
        sigma_skin.append(s)
    S = np.array(snapshots)
    n_train = args.train
    u0 = S[:n_train].mean(axis=0)
    W, _, _ = np.linalg.svd((S[:n_train] - u0).T, full_matrices=False)
    print(f"{args.presets}, site {head.site}: {len(head.nominal.factors)} factors, {len(corners)} random corners "
          f"({n_train} to train, {len(corners) - n_train} held out), {S.shape[1]:,} dofs, {len(skin):,} skin cells, "
          f"truth {np.mean(seconds):.2f} s a corner; unit field of electrode {electrode}")  # fmt: skip
    print("| modes | skin peak J, largest error | skin J field (l2), largest | mean | potential (l2), largest |")
    print("|---|---|---|---|---|")
    modes = [r for r in (2, 4, 8, 12, 16, 24, 32, 47) if r <= min(W.shape[1], n_train - 1)]
    errors = {r: ([], [], []) for r in modes}  # per r: peak, field, potential errors over the held-out corners
    for j in range(n_train, len(corners)):  # each held-out corner morphed once, its gradient operator made once
        patch = morph_layers(patch, stacks[j])
        gradient = P1CellGradient.of(patch.mesh)
        K, J = stiffness[j], skin_J[j]
        peak = np.linalg.norm(J, axis=1).max()
        for r in modes:
            Wr = W[:, :r]
            u_rb = u0 + Wr @ np.linalg.solve(Wr.T @ (K @ Wr), -Wr.T @ (K @ u0))
            J_rb = sigma_skin[j] * gradient(u_rb, dofs)[skin]
            peak_err, field_err, pot_err = errors[r]
            peak_err.append(abs(np.linalg.norm(J_rb, axis=1).max() - peak) / peak)
            field_err.append(np.linalg.norm(J_rb - J) / np.linalg.norm(J))
            pot_err.append(np.linalg.norm(u_rb - S[j]) / np.linalg.norm(S[j]))
    for r, (peak_err, field_err, pot_err) in errors.items():
        print(f"| {r} | {max(peak_err):.1e} | {max(field_err):.1e} | {np.mean(field_err):.1e} | {max(pot_err):.1e} |")

if __name__ == "__main__":
    main()
