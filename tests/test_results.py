"""The typed, per-unit-current CaseResult: any channel currents from one solve, exactly."""

from __future__ import annotations

import numpy as np
import pytest

import emsim
from emsim.models import (
    Case,
    Channel,
    Contact,
    Disk,
    Electrode,
    Layer,
    MeshSettings,
    Patch,
    library,
)
from emsim.solvers.linalg import ksp as linear
from emsim.solvers.records import Absent

SIGMA = {"skin": 0.465, "fat": 0.04, "muscle": 0.2}
G_CONTACT = 1.0 / 50e-4  # 50 ohm cm^2 contact on every electrode [S/m^2]


def four_electrode_case() -> Case:
    """Two channels, four bare electrodes with contacts, built in Python (no file)."""
    lib = library()
    layers = (
        Layer(tissue=lib["skin"], thickness_m=1.5e-3, label="skin"),
        Layer(tissue=lib["fat"], thickness_m=3e-3, label="fat"),
        Layer(tissue=lib["muscle"], thickness_m=6e-3, label="muscle"),
    )
    contact = Contact(resistance_ohm_m2=1.0 / G_CONTACT)

    def pad(name: str, x: float, y: float) -> Electrode:
        return Electrode(name=name, shape=Disk(diameter_m=8e-3), center_m=(x, y), contact=contact)

    electrodes = (pad("A", -12e-3, -6e-3), pad("B", 12e-3, -6e-3), pad("C", -12e-3, 6e-3), pad("D", 12e-3, 7e-3))
    channels = (
        Channel(name="1", anode=("A",), cathode=("B",), current_A=5e-3),
        Channel(name="2", anode=("C",), cathode=("D",), current_A=2e-3),
    )
    return Case(
        name="four-pads", patch=Patch(width_m=44e-3, length_m=32e-3), layers=layers, electrodes=electrodes,
        channels=channels, mesh=MeshSettings(quality="coarse", degree=1, size_factor=3.0),
    )  # fmt: skip


class DirectSolver:
    """Reference: the complete-electrode formulation with one real unknown per electrode.

    Electrode B (the first channel's cathode) is the 0 V reference; every other electrode k has
    its potential as a real unknown and its current I_k as the right-hand side (MUMPS, factorised
    once, its own KSP: not one of emsim's solves).
    """

    def __init__(self, result: emsim.CaseResult) -> None:
        import basix.ufl
        import ufl
        from dolfinx import fem
        from dolfinx.fem.petsc import LinearProblem

        patch, problem = result.mesh, result.problem
        mesh = patch.mesh
        self.V = problem.V
        R = fem.functionspace(mesh, basix.ufl.real_element(mesh.basix_cell(), dtype=np.float64))
        self.names = ["A", "C", "D"]
        spaces = ufl.MixedFunctionSpace(self.V, R, R, R)
        u, *lam = ufl.TrialFunctions(spaces)
        v, *mu = ufl.TestFunctions(spaces)
        dx = ufl.Measure("dx", domain=mesh, subdomain_data=patch.cell_tags)
        ds = ufl.Measure("ds", domain=mesh, subdomain_data=patch.facet_tags)
        S = {n: fem.Constant(mesh, t) for n, t in problem.sigma.items()}
        G = fem.Constant(mesh, G_CONTACT)
        a = sum(ufl.inner(S[n] * ufl.grad(u), ufl.grad(v)) * dx(patch.volumes[n]) for n in S)
        a += G * u * v * ds(patch.surfaces["electrode:B"])
        self.current = {}
        L = fem.Constant(mesh, 0.0) * v * dx
        for name, lk, mk in zip(self.names, lam, mu, strict=True):
            dsk = ds(patch.surfaces[f"electrode:{name}"])
            a += G * (u - lk) * (v - mk) * dsk
            area = mesh.comm.allreduce(fem.assemble_scalar(fem.form(fem.Constant(mesh, 1.0) * dsk)))
            self.current[name] = fem.Constant(mesh, 0.0)
            L += self.current[name] / area * mk * dsk
        self.phi = fem.Function(self.V)
        self.lam = [fem.Function(R) for _ in self.names]
        self.problem = LinearProblem(
            ufl.extract_blocks(a), ufl.extract_blocks(L), u=[self.phi, *self.lam], kind="mpi",
            petsc_options={"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": "mumps"},
            petsc_options_prefix="test_direct_",
        )  # fmt: skip
        self.problem.solve()  # assembles and factorises once

    def solve(self, i1: float, i2: float) -> tuple[np.ndarray, dict[str, float]]:
        """Potential dofs and electrode potentials [V] (B at 0 V) at the channel currents."""
        from dolfinx.fem import petsc as fpetsc
        from dolfinx.la.petsc import _zero_vector

        for name, value in (("A", i1), ("C", i2), ("D", -i2)):
            self.current[name].value = value
        p = self.problem
        _zero_vector(p.b)
        fpetsc.assemble_vector(p.b, p.L)
        p.solver.solve(p.b, p.x)
        fpetsc.assign(p.x, [self.phi, *self.lam])
        pots = {n: float(f.x.array[0]) for n, f in zip(self.names, self.lam, strict=True)}
        return self.phi.x.array.copy(), {**pots, "B": 0.0}


@pytest.fixture(scope="module")
def solved():
    case = four_electrode_case()
    result = emsim.solve(case)
    return case, result


def test_a_case_built_in_python_is_checked_like_a_file():
    case = four_electrode_case()
    with pytest.raises(emsim.InputError) as err:
        Patch(width_m=-0.01, length_m=0.02)
    assert err.value.field == "patch.width_mm" and err.value.value == -10.0
    with pytest.raises(emsim.InputError) as err:
        Case(**{**_fields(case), "electrodes": (*case.electrodes[:3], _moved(case.electrodes[3], (-12e-3, 7e-3)))})
    assert err.value.field == "electrode[D].center_mm" and "overlaps" in err.value.allowed
    with pytest.raises(emsim.InputError) as err:
        Channel(name="x", anode=("A",), cathode=("A",), current_A=1e-3)
    assert err.value.field == "channel[x].cathode"


def _fields(case: Case) -> dict:
    return {f: getattr(case, f) for f in case.__dataclass_fields__ if f != "materials"}


def _moved(e: Electrode, center: tuple[float, float]) -> Electrode:
    import dataclasses

    return dataclasses.replace(e, center_m=center)


def test_thousand_channel_currents_from_one_result_agree_with_direct_solves_without_a_solve(solved):
    from mpi4py import MPI

    if MPI.COMM_WORLD.size > 1:
        pytest.skip("the direct reference is assembled serially")
    _, result = solved
    direct = DirectSolver(result)
    rng = np.random.default_rng(7)
    currents = rng.uniform(-20e-3, 20e-3, size=(1000, 2))
    before = dict(linear.SOLVES)
    metrics = [result.at({"1": i1, "2": i2}) for i1, i2 in currents]
    fields = [result.potential([i1, i2]).x.array.copy() for i1, i2 in currents[:1000:10]]
    assert linear.SOLVES == before  # no further linear solve of any emsim problem
    worst = 0.0
    for k, ((i1, i2), m) in enumerate(zip(currents, metrics, strict=True)):
        phi, pots = direct.solve(i1, i2)
        e = m.electric
        scale = max(abs(v) for v in pots.values())
        for name, v in pots.items():
            worst = max(worst, abs(e.electrode_voltage_V[name] - v) / scale)
        assert e.electrode_current_A["A"] == pytest.approx(i1, rel=1e-9, abs=1e-12)
        assert e.electrode_current_A["D"] == pytest.approx(-i2, rel=1e-9, abs=1e-12)
        assert e.channel_current_A == {"1": i1, "2": i2}
        if k % 10 == 0:
            # The superposed field is the direct field (both hold B's metal at 0 V).
            assert np.max(np.abs(fields[k // 10] - phi)) <= 1e-9 * np.max(np.abs(phi))
    assert worst < 1e-9


def test_metrics_at_other_currents_equal_a_fresh_solve_of_the_case_at_those_currents(solved):
    """Every record, not only potentials: the scaled result equals solving the case again."""
    case, result = solved
    i = {"1": 3.1e-3, "2": 7.3e-3}
    again = emsim.solve(case.with_currents(i)).metrics.electric
    scaled = result.at(i).electric
    for key in ("impedance_ohm", "skin_current_density_peak_A_per_m2", "skin_current_density_p99_A_per_m2",
                "muscle_field_max_V_per_m", "muscle_field_mean_V_per_m", "joule_power_dc_at_peak_W"):  # fmt: skip
        assert getattr(scaled, key) == pytest.approx(getattr(again, key), rel=1e-9), key
    for name in "ABCD":
        assert scaled.skin_current_density_mean_A_per_m2[name] == pytest.approx(
            again.skin_current_density_mean_A_per_m2[name], rel=1e-9
        )
    # Joule power is a quadratic form: at twice the currents, four times the power.
    twice = result.at({k: 2 * v for k, v in i.items()}).electric
    assert twice.joule_power_dc_at_peak_W == pytest.approx(4 * scaled.joule_power_dc_at_peak_W, rel=1e-12)


def test_metrics_json_is_generated_from_the_records_with_units_and_definitions(solved):
    _, result = solved
    body = result.to_json()
    defs = body["definitions"]
    for key in ("impedance_ohm", "skin_current_density_peak_A_per_m2", "muscle_field_max_V_per_m"):
        assert key in body and defs[key].startswith("[")
    assert defs["impedance_ohm"].startswith("[ohm]") and defs["skin_current_density_peak_A_per_m2"].startswith("[A/m^2]")
    assert body["case_digest_sha256"] == result.case.digest()
    assert body["absent"] == {  # a d.c. case: no phases, so no charge per phase, no thresholds
        "charge_per_phase_uC": "a d.c. case has no phases",
        "charge_density_per_phase_uC_per_cm2": "a d.c. case has no phases",
        "comfort": "a d.c. case has no pulse width for the strength-duration thresholds (add a [waveform])",
    }
    labels = [row[0] for row in result.summary_rows()]
    assert "impedance" in labels and "skin J peak (1 mm disc)" in labels


def test_a_metric_that_cannot_be_computed_is_absent_with_its_reason():
    import dataclasses

    case = four_electrode_case()
    lib = library()
    paste = dataclasses.replace(lib["muscle"], name="paste")
    layers = (*case.layers[:2], dataclasses.replace(case.layers[2], tissue=paste, label="paste"))
    result = emsim.solve(dataclasses.replace(case, layers=layers, materials={}))
    body = result.to_json()
    assert "muscle_field_max_V_per_m" not in body
    assert "no target muscle" in body["absent"]["muscle_field_max_V_per_m"]
    assert isinstance(result.metrics.electric.muscle_field_max_V_per_m, Absent)
