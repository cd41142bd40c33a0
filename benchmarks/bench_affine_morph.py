"""Is the morphed corners' electric matrix affine in the layer stretches? A check for a reduced basis.

The reduced-basis path of docs/performance.md rests on this: on a flat patch a corner's mesh is the nominal
mesh with the nodes of tissue layer i moved by z -> a_i + s_i z (s_i = the corner's thickness
over the nominal one), so that each cell of layer i sees the Jacobian diag(1, 1, s_i) and the
stiffness matrix is exactly

    K(s) = K_fixed + sum_i (s_i A_i + B_i + C_i / s_i)

(A_i: the in-plane part of layer i's conductivity, C_i: the z part, B_i: the mixed part; the gel
pads and contact sublayers above the skin do not move). A reduced basis over the anatomy spread
would assemble A_i, B_i, C_i once and combine them for every corner. This script checks the
claim on the sample's head with emsim's own electric form (ElectricProblem.form: the muscle
tensors, the contact sublayers), at the default degree of the head's mesh:

1. it assembles K at the nominal stack and with one layer at a time stretched by 2 and by 0.5,
   which gives A_i and C_i (B_i cancels in the differences);
2. it predicts K at each of the 32 thickness corners (every layer at its range end) and at random
   stacks inside the ranges, assembles K there, and reports the relative Frobenius error of the
   prediction;
3. it does the same for the mass matrix (volume: s_i M_i), which the heat and the frequency
   problems also need.

An error at rounding (1e-13 or so) confirms the claim; a larger one says where it fails. Serial;
run by hand and record the output in docs/performance.md:

    .venv/bin/python benchmarks/bench_affine_morph.py [--random 8] [--seed 3]
"""

from __future__ import annotations

import argparse
import itertools
import random
import time

import numpy as np
from sample_corners import csr, sample_head

from emsim.meshes.morph import morph_layers
from emsim.meshes.patch import build_patch_mesh
from emsim.solvers.electric.problem import ElectricProblem


def main() -> None:
    """Assemble the sample head's matrices at morphed stacks and compare with the affine model."""
    import ufl
    from dolfinx import fem
    from mpi4py import MPI
    from scipy.sparse.linalg import norm as spnorm

    p = argparse.ArgumentParser()
    p.add_argument("--presets", default="device/samples/facial-ems-1.toml")
    p.add_argument("--random", type=int, default=8)
    p.add_argument("--seed", type=int, default=3)
    args = p.parse_args()
    head = sample_head(args.presets)
    case = head.case_of(head.nominal)
    t0 = time.perf_counter()
    patch = build_patch_mesh(case, MPI.COMM_WORLD)
    problem = ElectricProblem(case, patch)
    u, v = ufl.TrialFunction(problem.V), ufl.TestFunction(problem.V)
    forms = {
        "stiffness (emsim's electric form)": fem.form(problem.form(u, v)),
        "mass": fem.form(u * v * problem.dx),
    }
    t_nom = np.array(patch.layer_thicknesses_m)
    k = len(t_nom)
    thick = [f for f in head.nominal.factors if f.kind == "thickness"]
    labels = [layer.label for layer in case.layers]
    lo = t_nom.copy()
    hi = t_nom.copy()
    for f in thick:  # the spread's range of each layer that has one [m]
        i = labels.index(f.name)
        lo[i], hi[i] = f.low * 1e-3, f.high * 1e-3
    print(f"{args.presets}, site {head.site}: {patch.report.cells:,} cells, {problem.V.dofmap.index_map.size_global:,} dofs, "
          f"degree {case.mesh.degree}, layers {labels} (nominal {np.round(t_nom * 1e3, 3).tolist()} mm), "
          f"mesh {time.perf_counter() - t0:.1f} s")  # fmt: skip

    def at(stack):
        nonlocal patch
        patch = morph_layers(patch, list(stack))
        return {name: csr(form) for name, form in forms.items()}

    K0 = at(t_nom)
    parts = []
    for i in range(k):
        d = {}
        for s in (2.0, 0.5):
            stack = t_nom.copy()
            stack[i] *= s
            d[s] = at(stack)
        # dK(s) = (s - 1) A + (1 / s - 1) C: s = 2 and 0.5 give A = (4 D2 + 2 D05) / 3, C = (4 D05 + 2 D2) / 3
        parts.append({
            name: ((4 * (d[2.0][name] - K0[name]) + 2 * (d[0.5][name] - K0[name])) / 3,
                   (4 * (d[0.5][name] - K0[name]) + 2 * (d[2.0][name] - K0[name])) / 3)
            for name in forms
        })  # fmt: skip

    def predicted(stack):
        s = np.asarray(stack) / t_nom
        return {name: K0[name] + sum((s[i] - 1) * parts[i][name][0] + (1 / s[i] - 1) * parts[i][name][1]
                                    for i in range(k)) for name in forms}  # fmt: skip

    rng = random.Random(args.seed)
    stacks = [("corner " + "".join("+" if b else "-" for b in bits), np.where(bits, hi, lo))
              for bits in itertools.product((False, True), repeat=k)]  # fmt: skip
    stacks += [(f"random {j + 1}", np.array([rng.uniform(a, b) for a, b in zip(lo, hi, strict=True)]))
               for j in range(args.random)]  # fmt: skip
    worst = dict.fromkeys(forms, 0.0)
    for label, stack in stacks:
        got, model = at(stack), predicted(stack)
        errs = {name: spnorm(model[name] - got[name]) / spnorm(got[name]) for name in forms}
        for name, e in errs.items():
            worst[name] = max(worst[name], e)
        print(f"{label:<14} {np.round(stack * 1e3, 2).tolist()} mm: "
              + ", ".join(f"{name.split()[0]} {e:.1e}" for name, e in errs.items()))  # fmt: skip
    print("largest relative Frobenius error of the affine model over", len(stacks), "stacks:",
          ", ".join(f"{name} {e:.2e}" for name, e in worst.items()))  # fmt: skip
    at(t_nom)
    problem.close()


if __name__ == "__main__":
    main()
