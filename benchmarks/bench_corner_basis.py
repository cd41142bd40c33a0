"""How many fields span the sample's anatomy corners? A feasibility study for a reduced basis.

The sample's validation (device/samples/facial-ems-1.toml) solves about 80 of its 1024 corners,
each a mesh morph, a d.c. solve, a frequency sweep of about 10 solves and a heat basis (about
17 s a corner on this machine). Every corner is a morph of one mesh, so every corner's field lives
in the same dof space. If a few dozen fields span them all, a reduced basis (solve those,
then every corner in a small projected system) would evaluate all 1024 corners for the cost of
a few dozen solves, and the worst corner would be found by brute force, not searched.

This script measures that span for the d.c. unit fields (the frequency sweep and the heat add
their own dimensions, not measured here): it solves the unit fields of random corners, takes the
POD (SVD) of a training set and reports how well its first r modes hold the fields of corners
it has not seen (relative l2 error of the orthogonal projection, the best any basis of those r
fields can do; a Galerkin reduced solution is within a constant of it). Run by hand and record
the output in docs/performance.md:

    .venv/bin/python benchmarks/bench_corner_basis.py [--corners 64] [--train 48] [--seed 7]
"""

from __future__ import annotations

import numpy as np
from sample_corners import sample_head, snapshot_arguments, solve_corners


def main() -> None:
    """Solve random corners' d.c. unit fields and report the POD's hold on held-out corners."""
    args = snapshot_arguments()
    head = sample_head(args.presets)
    site, k = head.site, len(head.nominal.factors)
    corners = head.random_corners(args.corners, args.seed)
    snapshots, seconds = [], []
    for solved in solve_corners(head, corners):
        problem = solved.problem
        fields = problem.unit_fields
        snapshots.append(np.concatenate([fields[n].x.array.copy() for n in problem.names]))
        seconds.append(solved.seconds)
    S = np.array(snapshots)
    train, test = S[: args.train], S[args.train :]
    U, sv, _ = np.linalg.svd(train.T, full_matrices=False)
    print(f"{args.presets}, site {site}: {k} factors, {len(corners)} random corners ({args.train} to train, "
          f"{len(test)} held out), {S.shape[1] // len(problem.names):,} dofs, d.c. solve {np.mean(seconds):.2f} s "
          f"a corner")  # fmt: skip
    print("singular values over the first, every third:", " ".join(f"{x:.1e}" for x in sv[::3] / sv[0]))
    print("| modes | held-out projection error, max | mean |")
    print("|---|---|---|")
    for r in (2, 4, 8, 12, 16, 24, 32, 48):
        if r > len(sv):
            break
        B = U[:, :r]
        err = np.linalg.norm(test - (test @ B) @ B.T, axis=1) / np.linalg.norm(test, axis=1)
        print(f"| {r} | {err.max():.2e} | {err.mean():.2e} |")


if __name__ == "__main__":
    main()
