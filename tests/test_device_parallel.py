"""The worst-case search's corners solved side by side on MPI ranks give the serial validation.

A tiny coarse head (two 8 mm pads on skin and muscle, 6.5 mm deep) over the spread of its own
stack's conductivities (skin, muscle: 4 corners, one batch; a third layer would double the test's
cost and add nothing a group does differently), validated serially and under ``mpirun -n 2`` (two
groups of one rank, each corner solved on one of them, figures gathered; the worst corners solved
again on both ranks for the pictures).
"""

from __future__ import annotations

import json
import tomllib

import numpy as np
import pytest
from device_helpers import PRESETS_TOML, tiny_corners_head, tiny_corners_presets
from mpi4py import MPI

from emsim.device.presets import parse_presets
from emsim.device.validate import solve_groups
from emsim.errors import EmsimError, InputError
from emsim.models.toml import dumps as to_toml

from conftest import run_cli

PRESETS = tiny_corners_presets(contact="head")

#: Keys of a search record that only a run in parallel groups writes.
PARALLEL_KEYS = ("parallel_groups", "ranks_per_group", "solved_in_groups", "batches", "solved_again_on_all_ranks")


@pytest.mark.mpi
@pytest.mark.slow
def test_two_ranks_solve_the_corners_in_two_groups_and_give_the_serial_validation(tmp_path):
    if MPI.COMM_WORLD.size > 1:
        pytest.skip("launches mpirun itself; run it from a serial pytest")
    head = tiny_corners_head()  # the corner search's real-head test's (tests/test_device_corners.py)
    head["layer"] = [layer for layer in head["layer"] if layer["tissue"] != "fat"]  # skin 1.5 mm, muscle 5 mm
    (tmp_path / "head.toml").write_text(to_toml(head))
    (tmp_path / "presets.toml").write_text(PRESETS)
    runs = {}
    for name, mpi in (("serial", 0), ("np2", 2)):
        proc = run_cli("validate", "presets.toml", "--out", name, cwd=tmp_path, mpi=mpi)
        assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: some level fails (a verdict, not an error)
        runs[name] = json.loads((tmp_path / name / "validation.json").read_text())
    serial, parallel = runs["serial"], runs["np2"]
    search = parallel["anatomy_search"][0]
    assert search["parallel_groups"] == 2 and search["ranks_per_group"] == 1
    assert search["batches"] == [4] and search["solved_in_groups"] == 4  # brute force: one batch, all in groups
    distinct = set(search["worst_corner_by_rule"].values())
    # only the corners the pictures show (each preset's top level's binding anatomy) are solved again
    pictured = {p["levels"][-1]["binding_anatomy"]["label"] for p in parallel["presets"]}
    assert pictured <= distinct
    assert search["solved_again_on_all_ranks"] == len(pictured) >= 1
    assert "parallel groups" in (tmp_path / "np2" / "validation.html").read_text()
    # the pictured corners' results were solved again on both ranks: the pictures are drawn from them
    assert (tmp_path / "np2" / "worst_preset_1.png").is_file()
    for key in PARALLEL_KEYS:
        assert key not in serial["anatomy_search"][0]  # a serial run writes what it wrote before
        del search[key]
    # the same corners, the same worst corner of every rule, verdicts, headrooms and figures (to
    # the 6 digits written: equal, the figures being bitwise equal below)
    assert parallel == serial
    # Every figure. Each corner is solved on one rank in both runs, on the same mesh (gmsh on one
    # rank), by the same serial solvers. What may differ is the mesh's history: a group morphs the
    # nodes through its own corners, and a morph moves them from where they are, to rounding
    # (meshes/morph.py); the iterative solves (frequency sweep, heat) carry that to about 1e-10
    # (measured on the cheek's ten factors: 5e-10 at most). This spread has no thickness factor
    # (no morph): the figures come out bitwise equal. 1e-8 holds with morphs too, and is far
    # below anything a wrong corner or a figure out of order would give (the corners' figures
    # differ by percents).
    with np.load(tmp_path / "serial" / "figures.npz") as a, np.load(tmp_path / "np2" / "figures.npz") as b:
        assert sorted(a.files) == sorted(b.files)
        compared = 0
        for name in a.files:
            if a[name].dtype.kind == "f":
                np.testing.assert_allclose(b[name], a[name], rtol=1e-8, atol=0.0, err_msg=name)
                compared += a[name].size
            else:
                assert np.array_equal(a[name], b[name]), name
        assert compared > 100
        volts = a["0.peak_voltage_V_per_A"]
        assert volts.size == 4 and np.ptp(volts) > 0.01 * volts.max()  # the corners are told apart


def test_ranks_per_corner_must_divide_the_ranks():
    raw = tomllib.loads(PRESETS_TOML)
    raw["validation"] = {"safety_factor": 1.5, "spread": "corners"}
    pf = parse_presets(raw, text=json.dumps(raw))
    for bad in (0, MPI.COMM_WORLD.size + 1):  # not a divisor of the number of ranks
        with pytest.raises(InputError, match="ranks_per_corner"):
            solve_groups(pf, solver=lambda case: ({}, {}), ranks_per_corner=bad)


def test_a_group_hands_back_each_corner_s_figures_in_order_and_raises_a_corner_s_error(monkeypatch):
    import emsim.device.validate as validate_module
    from emsim.device.anatomy import AnatomyCase, Factor, corner_case

    class Solver:  # one figure set per case: its label
        def __init__(self, pf, *, comm, progress, keep_results):
            assert comm.size == 1 and not keep_results  # a group of one rank keeps no fields

        def __call__(self, case):
            if case.levels == (True, True):
                raise InputError("layer[0].thickness_mm", -1.0, "must be > 0")
            return {"g": case.label}, {}

    monkeypatch.setattr(validate_module, "AnatomySolver", Solver)
    raw = tomllib.loads(PRESETS_TOML)
    pf = parse_presets(raw, text=json.dumps(raw))
    nominal = AnatomyCase(None, tuple(Factor(name, "thickness", 1.0, 2.0, "mm", "test") for name in "ab"))
    groups = validate_module.CornerGroups(pf, MPI.COMM_WORLD.Split(MPI.COMM_WORLD.rank), 1)
    try:
        cases = [corner_case(nominal, c) for c in ((False, True), (True, False), (False, False))]
        assert groups.solve(cases) == [{"g": c.label} for c in cases]
        # an error of one corner reaches every rank, with its message (InputError does not pickle:
        # it travels as an EmsimError, which the command line reports the same way)
        with pytest.raises(EmsimError, match=r"layer\[0\]\.thickness_mm = -1.0: must be > 0"):
            groups.solve([*cases, corner_case(nominal, (True, True))])
    finally:
        groups.close()
