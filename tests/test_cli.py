"""The command line end to end: outputs, bad input, and the same answer under mpirun -n 2."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys

import pytest

from conftest import BIN, run_cli, small_cheek_table

REQUIRED_KEYS = (
    "impedance_ohm",
    "electrode_voltage_V",
    "skin_current_density_peak_A_per_m2",
    "skin_current_density_p99_A_per_m2",
    "skin_current_density_mean_A_per_m2",
    "muscle_field_max_V_per_m",
    "muscle_field_mean_V_per_m",
    "layer_joule_power_dc_at_peak_W",
    "current_conservation_error",
    "dofs",
)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    """The cheek case at a small mesh, run once through the CLI, serially."""
    from conftest import to_toml

    folder = tmp_path_factory.mktemp("run")
    (folder / "case.toml").write_text(to_toml(small_cheek_table()), "utf-8")
    proc = run_cli("run", "case.toml", "--out", "result", cwd=folder)
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr.lower(), proc.stderr  # no silent numbers, no warnings to miss
    return folder


def test_run_writes_metrics_fields_picture_and_mesh_report(small_run):
    out = small_run / "result"
    metrics = json.loads((out / "metrics.json").read_text())
    for key in REQUIRED_KEYS:
        assert key in metrics, key
    assert set(metrics["electrode_voltage_V"]) == {"A", "B"}
    assert set(metrics["layer_joule_power_dc_at_peak_W"]) >= {"skin", "fat", "muscle"}
    assert metrics["current_conservation_error"] < 1e-8
    assert metrics["conductivity_S_per_m"]["volumes"]["layer:skin"] == pytest.approx(0.465)
    report = json.loads((out / "mesh_report.json").read_text())
    assert report["cells"] > 1000 and 0 < report["quality_min_sicn"] <= 1
    from emsim.meshes.patch import quality_accuracy  # the accuracy the case's quality is named for

    mesh = small_cheek_table()["mesh"]
    assert report["quality_named_disk_error"] == quality_accuracy(mesh["quality"], mesh["degree"]) == 0.12
    png = (out / "skin_current_density.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000
    assert (out / "fields" / "electric.xdmf").exists() and (out / "fields" / "electric.h5").stat().st_size > 0
    assert not any(p.name.startswith(".") for p in small_run.iterdir())  # no temporary left behind


@pytest.mark.mpi
def test_two_ranks_give_the_serial_metrics(small_run):
    proc = run_cli("run", "case.toml", "--out", "result-np2", cwd=small_run, mpi=2)
    assert proc.returncode == 0, proc.stderr
    serial = json.loads((small_run / "result" / "metrics.json").read_text())
    parallel = json.loads((small_run / "result-np2" / "metrics.json").read_text())
    assert parallel["solver"]["mpi_ranks"] == 2
    # the same files (on 2 ranks the pictures are shared out: io.folders.spread_work)
    assert sorted(p.name for p in (small_run / "result-np2").iterdir()) == sorted(
        p.name for p in (small_run / "result").iterdir()
    )
    compared = 0
    for key in REQUIRED_KEYS:
        a, b = serial[key], parallel[key]
        pairs = [(a[k], b[k]) for k in a] if isinstance(a, dict) else [(a, b)]
        for x, y in pairs:
            if key == "current_conservation_error":
                assert y < 1e-8
            elif x != 0:
                assert y == pytest.approx(x, rel=1e-6), key
            compared += 1
    assert compared >= 15


@pytest.mark.mpi
def test_under_mpirun_each_rank_takes_one_blas_thread_unless_the_user_chose():
    """Two OpenBLAS threads per rank on two cores made `mpirun -n 2 emsim run` no faster than one rank."""
    # one write per rank (with PYTHONUNBUFFERED, print's pieces from two ranks interleave)
    code = ("import os, sys, emsim; sys.stdout.write(f\"{os.environ.get('OMP_NUM_THREADS')} "
            "{os.environ.get('OPENBLAS_NUM_THREADS')}\\n\"); sys.stdout.flush()")  # fmt: skip
    clean = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS")}

    def threads(env: dict, ranks: int) -> list[str]:
        cmd = [sys.executable, "-c", code]
        if ranks:
            cmd = [str(BIN / "mpirun"), "-n", str(ranks), *cmd]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=True)
        return sorted(proc.stdout.split("\n")[:-1])

    assert threads(clean, 2) == ["1 1", "1 1"]
    assert threads({**clean, "OMP_NUM_THREADS": "3", "OPENBLAS_NUM_THREADS": ""}, 2) == ["3 1", "3 1"]
    assert threads(clean, 0) == ["None None"]  # a serial run keeps OpenBLAS's own default


BAD_INPUTS = [
    ("unknown tissue", lambda t: t["layer"][0].update(tissue="unobtainium"), "layer[0].tissue"),
    ("negative thickness", lambda t: t["layer"][1].update(thickness_mm=-3.0), "layer[1].thickness_mm"),
    ("electrode off the patch", lambda t: t["electrode"][0].update(center_mm=[-27.0, 0.0]), "electrode[A].center_mm"),
    ("overlapping electrodes", lambda t: t["electrode"][1].update(center_mm=[-5.0, 0.0]), "electrode[B].center_mm"),
    ("missing key", lambda t: t["patch"].pop("width_mm"), "patch.width_mm"),
    ("wrong type", lambda t: t["channel"].update(current_mA="ten"), "channel.current_mA"),
    ("unknown key", lambda t: t["electrode"][0].update(diameter_cm=1.5), "electrode[0].diameter_cm"),
    ("unknown cathode", lambda t: t["channel"].update(cathode="C"), "channel.cathode"),
]


@pytest.mark.parametrize(("what", "change", "field"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_input_exits_nonzero_with_one_line_naming_the_field_and_writes_nothing(
    tmp_path, write_toml, what, change, field
):
    table = copy.deepcopy(small_cheek_table())
    change(table)
    path = write_toml(table)
    proc = run_cli("run", str(path), "--out", "never", cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert field in lines[0] and "Traceback" not in proc.stderr
    assert not (tmp_path / "never").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case.toml"]


def test_missing_case_file_is_one_line_error(tmp_path):
    proc = run_cli("run", "nowhere.toml", cwd=tmp_path)
    assert proc.returncode == 2 and "nowhere.toml" in proc.stderr and "Traceback" not in proc.stderr
