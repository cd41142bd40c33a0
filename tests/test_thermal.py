"""Specification of the heating solver (emsim.solvers.thermal.session): Pennes bioheat over a session.

Closed forms are in emsim.solvers.reference.bioheat; material numbers are the library's (IT'IS
v4.0). EMSIM_CI=1 only shrinks the convergence studies; nothing is skipped.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import emsim  # noqa: F401  (orders MPI before dolfinx)
from emsim.errors import InputError
from emsim.meshes.patch import build_patch_mesh
from emsim.models import library, parse_case
from emsim.solvers.electric.problem import ElectricProblem
from emsim.solvers.records import record_values
from emsim.solvers.reference.bioheat import finite_slab_rise_K, finite_slab_steady_C, uniform_rise_K
from emsim.solvers.thermal.pennes import PennesProblem
from emsim.solvers.thermal.pennes_data import (
    PennesMaterial,
    blood_heat_capacity_J_per_m3K,
    cem43_rate,
)
from emsim.solvers.thermal.session import case_pennes_problem, session_heating

CI = os.environ.get("EMSIM_CI", "") not in ("", "0")
MUSCLE = library()["muscle"].thermal
RHO_B_C_B = blood_heat_capacity_J_per_m3K()
B_MUSCLE = RHO_B_C_B * MUSCLE.perfusion_per_s  # rho_b c_b w_b [W/(m^3 K)]
TOP, BOTTOM = 1, 2  # facet tags of the column


def column(nz: int, *, depth_m: float = 0.02, width_m: float = 1e-3, comm=None):
    """A 1-D column of tetrahedra: z from -depth (core) to 0 (skin); one material, tag 1."""
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    comm = comm or MPI.COMM_WORLD
    msh = dmesh.create_box(comm, [[0, 0, -depth_m], [width_m, width_m, 0]], [1, 1, nz])
    n_cells = msh.topology.index_map(3).size_local + msh.topology.index_map(3).num_ghosts
    cells = dmesh.meshtags(
        msh, 3, np.arange(n_cells, dtype=np.int32), np.full(n_cells, 1, np.int32)
    )
    top = dmesh.locate_entities_boundary(msh, 2, lambda x: np.isclose(x[2], 0.0))
    bottom = dmesh.locate_entities_boundary(msh, 2, lambda x: np.isclose(x[2], -depth_m))
    ent = np.concatenate([top, bottom])
    val = np.concatenate([np.full(len(top), TOP), np.full(len(bottom), BOTTOM)]).astype(np.int32)
    order = np.argsort(ent)
    facets = dmesh.meshtags(msh, 2, ent[order].astype(np.int32), val[order])
    return msh, cells, facets


def slab_problem(nz: int, *, source_W_per_m3: float | None = None, **kwargs) -> PennesProblem:
    """Muscle column: convective skin (h 10, air 25 C), core 37 C at 20 mm."""
    from dolfinx import fem

    msh, cells, facets = column(nz)
    source = None if source_W_per_m3 is None else fem.Constant(msh, source_W_per_m3)
    return PennesProblem(
        msh, cells, {1: MUSCLE}, facet_tags=facets, convective_tags=[TOP], h_W_per_m2K=10.0,
        air_temperature_C=25.0, dirichlet_tags=[BOTTOM], dirichlet_temperature_C=37.0,
        arterial_temperature_C=37.0, source=source, skin_tags=[TOP], **kwargs,
    )  # fmt: skip


SLAB = {
    "depth_m": 0.02,
    "k_W_per_mK": MUSCLE.thermal_conductivity_W_per_mK,
    "b_W_per_m3K": B_MUSCLE,
    "h_W_per_m2K": 10.0,
}


def depth_of_dofs(problem: PennesProblem) -> np.ndarray:
    return -problem.V.tabulate_dof_coordinates()[: problem.n_owned, 2]


# ----------------------------------------------------------------------------- basal state


def test_basal_column_matches_the_finite_slab_pennes_solution_within_0_02_K() -> None:
    problem = slab_problem(40)
    T = problem.steady_state()
    x = depth_of_dofs(problem)
    exact = finite_slab_steady_C(
        x, **SLAB, source_W_per_m3=MUSCLE.metabolic_heat_W_per_m3, arterial_temperature_C=37.0,
        air_temperature_C=25.0, core_temperature_C=37.0,
    )  # fmt: skip
    error = np.abs(T.x.array[: problem.n_owned] - exact).max(initial=0.0)
    assert problem.comm.allreduce(error, op=_max()) < 0.02
    # The skin surface sits 2.24 K below the core: the profile is not trivially flat.
    assert problem.comm.allreduce(
        T.x.array[: problem.n_owned].min(initial=99.0), op=_min()
    ) == pytest.approx(34.76, abs=0.01)


def test_basal_state_of_a_patch_case_matches_the_finite_slab_within_0_02_K() -> None:
    case = parse_case({
        "name": "column",
        "patch": {"width_mm": 4, "length_mm": 4},
        "layer": [{"tissue": "muscle", "thickness_mm": 20}],
        "electrode": [{"name": "E", "shape": "rectangle", "width_mm": 4, "length_mm": 4,
                       "center_mm": [0, 0]}],
        "channel": {"anode": "E", "cathode": "ground", "current_mA": 1.0},
        "mesh": {"quality": "coarse", "degree": 1, "size_factor": 6.0},
        "thermal": {},
    })  # fmt: skip
    patch = build_patch_mesh(case)
    assert patch.report.cells < 20_000
    problem = case_pennes_problem(case, patch)  # the bare electrode face is convective skin
    T = problem.steady_state()
    exact = finite_slab_steady_C(
        depth_of_dofs(problem), **SLAB, source_W_per_m3=MUSCLE.metabolic_heat_W_per_m3,
        arterial_temperature_C=37.0, air_temperature_C=25.0, core_temperature_C=37.0,
    )  # fmt: skip
    error = np.abs(T.x.array[: problem.n_owned] - exact).max(initial=0.0)
    assert problem.comm.allreduce(error, op=_max()) < 0.02


# ----------------------------------------------------------------------------- perfusion alone


def insulated_block(*, arterial_temperature_C: float = 37.0, source_W_per_m3: float | None = None,
                    material=MUSCLE) -> PennesProblem:  # fmt: skip
    from dolfinx import fem
    from dolfinx import mesh as dmesh
    from mpi4py import MPI

    msh = dmesh.create_box(MPI.COMM_WORLD, [[0, 0, 0], [1e-3, 1e-3, 1e-3]], [2, 2, 2])
    n = msh.topology.index_map(3).size_local + msh.topology.index_map(3).num_ghosts
    cells = dmesh.meshtags(msh, 3, np.arange(n, dtype=np.int32), np.ones(n, np.int32))
    source = None if source_W_per_m3 is None else fem.Constant(msh, source_W_per_m3)
    return PennesProblem(msh, cells, {1: material}, arterial_temperature_C=arterial_temperature_C,
                         source=source)  # fmt: skip


def test_uniform_heating_without_conduction_is_q_over_b_1_minus_exp_within_0_5_percent() -> None:
    q = 5e3  # W/m^3
    problem = insulated_block(source_W_per_m3=q)
    T0 = problem.steady_state()
    # Basal: perfusion balances metabolism, T = T_a + Q_met / b everywhere.
    basal = 37.0 + MUSCLE.metabolic_heat_W_per_m3 / B_MUSCLE
    assert np.allclose(T0.x.array, basal, rtol=0, atol=1e-9)
    run = problem.run(T0, 1.0, 900.0, 10.0)
    rho_c = MUSCLE.density_kg_per_m3 * MUSCLE.heat_capacity_J_per_kgK
    exact = uniform_rise_K(
        run.times_s[1:], source_W_per_m3=q, rho_c_J_per_m3K=rho_c, b_W_per_m3K=B_MUSCLE
    )
    relative = np.abs(run.rise_max_K[1:] / exact - 1.0)
    assert relative.max() < 0.005
    # tau = rho c / b is 24.5 min for muscle: after 15 min the rise is 46 % of q / b.
    assert run.rise_max_K[-1] / (q / B_MUSCLE) == pytest.approx(
        1 - math.exp(-900 * B_MUSCLE / rho_c), rel=1e-3
    )


@pytest.mark.parametrize(
    ("held_at_C", "expected_min"), [(45.0, 40.0), (43.0, 10.0), (41.0, 10.0 / 16)]
)
def test_cem43_of_tissue_held_ten_minutes_at_constant_temperature(
    held_at_C: float, expected_min: float
) -> None:
    no_metabolism = dataclasses.replace(PennesMaterial.of(MUSCLE), metabolic_heat_W_per_m3=0.0)
    problem = insulated_block(arterial_temperature_C=held_at_C, material=no_metabolism)
    T0 = problem.steady_state()
    assert np.allclose(T0.x.array, held_at_C, rtol=0, atol=1e-9)
    run = problem.run(T0, 0.0, 600.0, 60.0)
    assert run.cem43_max_min[-1] == pytest.approx(expected_min, rel=1e-9)
    assert cem43_rate(held_at_C) * 10.0 == pytest.approx(expected_min, rel=1e-12)


def test_steady_state_without_any_heat_sink_is_refused() -> None:
    from emsim.errors import SolverError

    gel = PennesMaterial(
        density_kg_per_m3=1000.0, heat_capacity_J_per_kgK=4180.0, thermal_conductivity_W_per_mK=0.6
    )
    with pytest.raises(SolverError, match="undefined"):
        insulated_block(material=gel).steady_state()


# ----------------------------------------------------------------------------- Joule heating

TINY = {
    "name": "tiny-two-pads",
    "patch": {"width_mm": 24, "length_mm": 14},
    "layer": [
        {"tissue": "skin", "thickness_mm": 1.5},
        {"tissue": "fat", "thickness_mm": 2.0},
        {"tissue": "muscle", "thickness_mm": 5.0},
    ],
    "electrode": [
        {"name": "A", "shape": "disk", "diameter_mm": 6, "center_mm": [-6.0, 0.0],
         "gel": {"material": "hydrogel", "thickness_mm": 0.5}, "contact": {"resistance_ohm_cm2": 100.0}},
        {"name": "B", "shape": "disk", "diameter_mm": 6, "center_mm": [6.0, 0.0],
         "gel": {"material": "hydrogel", "thickness_mm": 0.5}, "contact": {"resistance_ohm_cm2": 100.0}},
    ],
    "channel": {"anode": "A", "cathode": "B", "current_mA": 3.0},
    "mesh": {"quality": "coarse", "degree": 1, "size_factor": 2.0},
    "thermal": {"session_min": 5, "time_step_s": 20},
}  # fmt: skip


@pytest.fixture(scope="module")
def tiny():
    """The tiny two-pad case, meshed and solved once: (case, patch, problem, solution, result)."""
    case = parse_case(TINY)
    patch = build_patch_mesh(case)
    problem = ElectricProblem(case, patch)
    solution = problem.solve()
    return case, patch, problem, solution, session_heating(case, patch, problem, solution)


def at_current(case, current_A: float):
    return dataclasses.replace(
        case, channels=(dataclasses.replace(case.channels[0], current_A=current_A),)
    )


def test_doubling_the_current_multiplies_the_temperature_rise_by_4_within_1_percent(tiny) -> None:
    case, patch, problem, _, ref = tiny
    doubled = session_heating(at_current(case, 2 * 3e-3), patch, problem, problem.solve(scale=2.0))
    m1, m2 = ref.reference, doubled.reference
    assert m2.tissue_temperature_rise_max_K / m1.tissue_temperature_rise_max_K == pytest.approx(4.0, rel=0.01)
    rise1, rise2 = ref.fields["rise"].x.array, doubled.fields["rise"].x.array
    assert np.abs(rise2 - 4 * rise1).max() <= 0.01 * 4 * np.abs(rise1).max()
    assert m1.tissue_temperature_rise_max_K > 0.1  # a real rise, not round-off
    # One solve serves every amplitude: the rescaled metrics equal the direct second solve.
    scaled = ref.at(2 * 3e-3)
    for key in ("tissue_temperature_rise_max_K", "skin_temperature_peak_C", "cem43_heated_max_min", "cem43_skin_max_min"):
        assert getattr(scaled, key) == pytest.approx(getattr(m2, key), rel=1e-6), key
    assert scaled.hottest_point_m == pytest.approx(m2.hottest_point_m, abs=1e-9)
    assert scaled.thermal_rise_scale == pytest.approx(4.0, rel=1e-12)
    assert ref.rise_at(2 * 3e-3) == pytest.approx(m2.tissue_temperature_rise_max_K, rel=1e-6)
    assert ref.skin_history_at(2 * 3e-3) == pytest.approx(
        doubled.history["skin_temperature_max_C"], rel=1e-9
    )


def test_cem43_is_taken_where_the_heating_is_not_at_the_face_held_at_the_core_temperature(tiny) -> None:
    _, _, _, _, ref = tiny
    m = ref.reference
    core_dose = 300.0 / 60.0 * 0.25 ** (43.0 - 37.0)  # a 5-min session at 37 C: the deep face, any current
    # the all-tissue max is that dose (reported as a detail, named for what it is) ...
    assert core_dose * (1 - 1e-9) <= m.thermal.cem43_tissue_max_min < 1.05 * core_dose
    # ... while the heated region (skin under the pads, basal about 35 C, peak 36.8 C here) is cooler
    assert 0.0 < m.cem43_heated_max_min < 0.8 * core_dose
    assert 0.0 < m.cem43_skin_max_min < 0.8 * core_dose  # the skin surface too
    # it grows with the current where the heating is, and it is a dose of a rising temperature
    hotter = ref.at(3 * 3e-3)
    assert hotter.cem43_heated_max_min > 1.5 * m.cem43_heated_max_min
    assert ref.at(1e-6).cem43_heated_max_min < m.cem43_heated_max_min
    # below the reference current the probes of the heated region give the direct solve's dose
    case, patch, problem, _, _ = tiny
    half = session_heating(at_current(case, 1.5e-3), patch, problem, problem.solve(scale=0.5))
    assert ref.at(1.5e-3).cem43_heated_max_min == pytest.approx(half.reference.cem43_heated_max_min, rel=1e-6)


def test_joule_heat_follows_the_waveform_mean_square_including_on_off_and_ramps(tiny) -> None:
    _, patch, problem, solution, ref = tiny
    waveform = {"shape": "biphasic_symmetric", "pulse_width_us": 200, "frequency_Hz": 50,
                "on_s": 5, "off_s": 5, "ramp_up_s": 1, "ramp_down_s": 1}  # fmt: skip
    pulsed_case = parse_case({**TINY, "waveform": waveform})
    pulsed = session_heating(pulsed_case, patch, problem, solution)
    # <i^2> / I^2 = 2 PW f (biphasic) x (on - 2/3 (ramps)) / (on + off) = 0.02 x 0.36667
    expected = 2 * 200e-6 * 50 * (5 - 2 / 3 * 2) / 10
    ratio = (
        pulsed.reference.tissue_temperature_rise_max_K
        / ref.reference.tissue_temperature_rise_max_K
    )
    assert ratio == pytest.approx(expected, rel=1e-6)
    assert pulsed.reference.thermal.rms_current_A == pytest.approx(
        3e-3 * math.sqrt(expected), rel=1e-12
    )
    joule = (
        pulsed.reference.thermal.joule_heat_time_averaged_W
        / ref.reference.thermal.joule_heat_time_averaged_W
    )
    assert joule == pytest.approx(expected, rel=1e-12)


def test_session_metrics_are_physical_and_outputs_are_written(tiny, tmp_path: Path) -> None:
    from emsim.studies import outputs

    case, patch, _, solution, ref = tiny
    m = ref.reference
    for key in ("skin_temperature_basal_C", "skin_temperature_peak_C", "tissue_temperature_rise_max_K",
                "cem43_heated_max_min", "cem43_skin_max_min", "hottest_point_m", "thermal_time_step_s", "session_s"):  # fmt: skip
        assert hasattr(m, key)
    assert 30.0 < m.skin_temperature_basal_C < m.skin_temperature_peak_C < 45.0
    assert m.session_s == 300.0 and m.thermal_time_step_s == 20.0
    # The Joule heat entering the tissue equals I^2 Z for d.c. (energy conservation).
    impedance = solution.electrode_potentials_V["A"] - solution.electrode_potentials_V["B"]
    power = m.thermal.joule_heat_time_averaged_W
    assert power == pytest.approx(impedance / 3e-3 * (3e-3) ** 2, rel=1e-6)
    # The hottest tissue is the skin under a pad (radius 3 mm around x = +-6 mm), on the side
    # facing the other pad, where the current crowds.
    x, y, z = m.hottest_point_m
    assert abs(z) < 1e-6
    assert math.hypot(abs(x) - 6e-3, y) < 3e-3 and abs(x) < 6e-3
    comm = patch.mesh.comm
    folder = Path(comm.bcast(str(tmp_path), root=0))  # one folder for the collective write
    outputs.write_thermal_fields(ref, folder)
    assert (folder / "thermal.xdmf").exists() and (folder / "thermal.h5").exists()
    if comm.rank == 0:  # pictures use data gathered on rank 0 only
        outputs.write_thermal_files(case, ref, folder)
        for name in ("skin_temperature_rise.png", "peak_temperature_vs_time.png"):
            assert (folder / name).stat().st_size > 10_000
        header = (folder / "temperature_history.csv").read_text().splitlines()[0]
        assert header == "time_s,skin_temperature_max_C,tissue_temperature_rise_max_K,cem43_tissue_max_min"


def test_cg_gamg_and_mumps_give_the_same_heating(tiny) -> None:
    case, patch, problem, solution, ref = tiny
    iterative = dataclasses.replace(case, solver=dataclasses.replace(case.solver, method="cg-gamg"))
    result = session_heating(iterative, patch, problem, solution)
    assert result.reference.thermal.method == "cg-gamg"
    for key in ("skin_temperature_peak_C", "tissue_temperature_rise_max_K", "cem43_heated_max_min"):
        assert getattr(result.reference, key) == pytest.approx(getattr(ref.reference, key), rel=1e-7), key


# ----------------------------------------------------------------------------- convergence


def observed_order(steps: np.ndarray, errors: np.ndarray) -> float:
    """Least-squares slope of log(error) against log(step)."""
    return float(np.polyfit(np.log(steps), np.log(errors), 1)[0])


def test_time_step_convergence_of_the_peak_rise_is_second_order(tiny) -> None:
    case, patch, problem, solution, _ = tiny

    def heat(session_s: float, steps: int):
        settings = dataclasses.replace(
            case.thermal, session_s=session_s, time_step_s=session_s / steps
        )
        return session_heating(
            dataclasses.replace(case, thermal=settings), patch, problem, solution
        )

    # The pad-edge peak, still rising after 60 s: BDF2 is second order.
    steps = np.array([8, 16, 32] if CI else [8, 16, 32, 64])
    reference = heat(60.0, 1024).reference.tissue_temperature_rise_max_K
    errors = np.array(
        [abs(heat(60.0, n).reference.tissue_temperature_rise_max_K - reference) for n in steps]
    )
    assert observed_order(60.0 / steps, errors) == pytest.approx(2.0, abs=0.2)
    # Over a 5 min session, the whole final temperature field (maximum norm) as well.
    steps = np.array([20, 40, 80] if CI else [20, 40, 80, 160])
    final = heat(300.0, 2560).fields["final"].x.array
    errors = np.array([
        problem.comm.allreduce(np.abs(heat(300.0, n).fields["final"].x.array - final).max(), op=_max())
        for n in steps
    ])  # fmt: skip
    assert observed_order(300.0 / steps, errors) == pytest.approx(2.0, abs=0.2)


def test_mesh_convergence_of_the_peak_rise_against_the_transient_slab_solution() -> None:
    # Insulated skin (h = 0) puts the peak rise at the surface, a mesh node at every level, and
    # cube cells keep the tetrahedra shape-regular: P1 converges at second order.
    from dolfinx import fem

    q = 2e4  # W/m^3, switched on at t = 0 from the basal state
    rho_c = MUSCLE.density_kg_per_m3 * MUSCLE.heat_capacity_J_per_kgK
    slab = {**SLAB, "h_W_per_m2K": 0.0}
    x = np.linspace(0.0, 0.02, 2001)
    rise = finite_slab_rise_K(x, 900.0, **slab, rho_c_J_per_m3K=rho_c, source_W_per_m3=q)
    assert rise.argmax() == 0
    cells = np.array([5, 10, 20] if CI else [5, 10, 20, 40])
    errors = []
    for nz in cells:
        msh, cell_tags, facets = column(int(nz), width_m=0.02 / nz)
        problem = PennesProblem(
            msh, cell_tags, {1: MUSCLE}, facet_tags=facets, convective_tags=[TOP], h_W_per_m2K=0.0,
            dirichlet_tags=[BOTTOM], source=fem.Constant(msh, q), skin_tags=[TOP],
        )  # fmt: skip
        run = problem.run(problem.steady_state(), 1.0, 900.0, 2.0)
        errors.append(abs(run.rise_max_K[-1] - rise[0]))
    errors = np.array(errors)
    assert np.all(np.diff(errors) < 0), errors
    assert observed_order(0.02 / cells, errors) == pytest.approx(2.0, abs=0.2)
    assert errors[-1] / rise[0] < 2e-3


# ----------------------------------------------------------------------------- inputs


def test_a_thermal_case_whose_layer_has_no_thermal_properties_is_an_input_error_naming_it() -> None:
    table = {**TINY, "material": {"goo": {"conductivity_S_per_m": 0.3}}}
    table["layer"] = [{"tissue": "goo", "thickness_mm": 3.0}]
    with pytest.raises(InputError, match=r"material\.goo") as err:
        parse_case(table)
    assert err.value.field == "material.goo"


# ----------------------------------------------------------------------------- MPI


MPI_SCRIPT = """
import json, sys
sys.path.insert(0, {tests!r})
import test_thermal as t
from emsim.models import parse_case
from emsim.meshes.patch import build_patch_mesh
from emsim.solvers.electric.problem import ElectricProblem
from emsim.solvers.thermal.session import session_heating
from emsim.solvers.records import record_values
problem = t.slab_problem(20, source_W_per_m3=2e4)
run = problem.run(problem.steady_state(), 1.0, 300.0, 10.0)
case = parse_case(t.TINY)
patch = build_patch_mesh(case)
electric = ElectricProblem(case, patch)
result = session_heating(case, patch, electric, electric.solve())
out = {{"slab": [run.skin_max_C[-1], run.rise_max_K[-1], run.cem43_max_min[-1]],
        "case": record_values(result.reference), "at_6mA": record_values(result.at(6e-3))}}
from mpi4py import MPI
with open({out!r} + str(MPI.COMM_WORLD.rank) + ".json", "w") as f:
    json.dump(out, f, sort_keys=True)
"""


@pytest.mark.mpi
@pytest.mark.slow
def test_two_ranks_give_identical_metrics_on_every_rank_and_match_serial(
    tiny, tmp_path: Path
) -> None:
    if tiny[1].mesh.comm.size > 1:
        pytest.skip("launches mpirun itself; run it from a serial pytest")
    script = tmp_path / "mpi_thermal.py"
    out = str(tmp_path / "rank")
    script.write_text(textwrap.dedent(MPI_SCRIPT.format(tests=str(Path(__file__).parent), out=out)))
    mpirun = Path(sys.executable).parent / "mpirun"
    proc = subprocess.run([str(mpirun), "-n", "2", sys.executable, str(script)], capture_output=True,
                          text=True, timeout=600, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    outputs = [json.loads(Path(f"{out}{rank}.json").read_text()) for rank in (0, 1)]
    assert outputs[0] == outputs[1]  # bitwise identical on both ranks
    problem = slab_problem(20, source_W_per_m3=2e4)
    run = problem.run(problem.steady_state(), 1.0, 300.0, 10.0)
    serial = [run.skin_max_C[-1], run.rise_max_K[-1], run.cem43_max_min[-1]]
    assert outputs[0]["slab"] == pytest.approx(serial, rel=1e-9)
    ref = record_values(tiny[4].reference)
    for key in (
        "skin_temperature_basal_C",
        "skin_temperature_peak_C",
        "tissue_temperature_rise_max_K",
    ):
        assert outputs[0]["case"][key] == pytest.approx(ref[key], rel=1e-9), key


def _max():
    from mpi4py import MPI

    return MPI.MAX


def _min():
    from mpi4py import MPI

    return MPI.MIN


def test_heat_from_the_waveform_spectrum_equals_the_dc_heat_times_the_mean_square_when_resistive(tiny) -> None:
    """Issue 8.3: with resistive tissue and contact the spectral heat is the d.c. heat x <i^2>."""
    from emsim.solvers.spectral.sweep import waveform_response

    _, patch, _, _, _ = tiny
    table = copy.deepcopy(TINY)
    table["material"] = {
        n: {**{k: v for k, v in library()[n].to_table().items() if k != "dispersion"},
            "conductivity_S_per_m": library()[n].conductivity_at(10.0)}
        for n in ("skin", "fat", "muscle")
    }  # fmt: skip
    for e in table["electrode"]:
        e["contact"]["capacitance_uF_per_cm2"] = 0.0
    table["waveform"] = {"shape": "biphasic_symmetric", "pulse_width_us": 200, "frequency_Hz": 50,
                         "on_s": 5, "off_s": 5, "ramp_up_s": 1, "ramp_down_s": 1}  # fmt: skip
    case = parse_case(table)
    problem = ElectricProblem(case, patch)
    solution = problem.solve()
    lead = waveform_response(case, patch, n_frequencies=8)
    spectral = session_heating(case, patch, problem, solution, heat=lead.heat).reference
    dc = session_heating(case, patch, problem, solution).reference
    assert spectral.thermal.joule_heat_from.startswith("the waveform")
    assert spectral.thermal.joule_heat_time_averaged_W == pytest.approx(dc.thermal.joule_heat_time_averaged_W, rel=1e-9)
    assert spectral.tissue_temperature_rise_max_K == pytest.approx(dc.tissue_temperature_rise_max_K, rel=1e-9)
