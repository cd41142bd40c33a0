"""Studies (issue 11): study files, the resumable ledger runner, MPI spread, results and report."""

from __future__ import annotations

import csv
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

import emsim
from emsim.studies.ledger import Ledger
from emsim.studies.study import parse_study

from conftest import BIN, small_cheek_table, to_toml

ROOT = Path(__file__).resolve().parents[1]


def tiny_table() -> dict:
    table = small_cheek_table(size_factor=3.0)
    table["name"] = "tiny"
    return table


def write_study(folder: Path, sweep: str, *, extra: str = "") -> Path:
    (folder / "base.toml").write_text(to_toml(tiny_table()), "utf-8")
    path = folder / "study.toml"
    path.write_text(f'base = "base.toml"\n{extra}\n[sweep]\n{sweep}\n', "utf-8")
    return path


THREE = '"electrode.*.diameter_mm" = [10, 12, 14]'


def ledger_rows(out: Path) -> dict[str, tuple]:
    if not (out / "ledger.sqlite").exists():
        return {}
    db = sqlite3.connect(out / "ledger.sqlite", timeout=30)
    try:
        return {r[0]: r[1:] for r in db.execute("SELECT digest, position, status, ended, attempts FROM cases")}
    except sqlite3.OperationalError:  # the schema is not there yet
        return {}
    finally:
        db.close()


def start_cli(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "emsim.cli", *args], cwd=cwd,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip


# ----------------------------------------------------------------------------- study files


def test_grid_zip_list_and_digests():
    base = tiny_table()
    s = parse_study({"case": base, "sweep": {"electrode.A.diameter_mm": [10, 15], "layer.fat.thickness_mm": [2.0, 4.0],
                                             "channel.current_mA": [5, 10]}})  # fmt: skip
    assert len(s.points) == 8 and len(s.groups) == 4
    assert len({p.digest for p in s.points}) == 8
    p = s.points[0]
    assert p.case.electrode("A").shape.diameter_m == pytest.approx(0.010)
    assert p.case.layers[1].thickness_m == pytest.approx(0.002)
    assert p.digest == emsim.parse_case(p.case.to_dict()).digest()
    z = parse_study({"case": base, "sweep": {"mode": "zip", "layer[0].thickness_mm": [1.5, 2.0], "channel.1.current_mA": [1, 2]}})
    assert [pt.params for pt in z.points] == [{"layer[0].thickness_mm": 1.5, "channel.1.current_mA": 1},
                                             {"layer[0].thickness_mm": 2.0, "channel.1.current_mA": 2}]  # fmt: skip
    lst = parse_study({"base": "cheek-dc", "sweep": {"mode": "list", "point": [{"mesh.quality": "coarse"}, {"patch.width_mm": 70}]}})
    assert len(lst.points) == 2 and lst.base_name == "cheek-dc"
    # the same case twice counts once
    assert len(parse_study({"case": base, "sweep": {"channel.current_mA": [10, 10.0]}}).points) == 1


@pytest.mark.parametrize(
    ("sweep", "named"),
    [
        ({"electrode.C.diameter_mm": [10]}, "electrode.C.diameter_mm"),
        ({"layer[7].thickness_mm": [1]}, "layer[7].thickness_mm"),
        ({"electrode.A.diameter_mm": [-3]}, "sweep electrode.A.diameter_mm"),
        ({"electrode.A.diametr_mm": [3]}, "electrode.A.diametr_mm"),
        ({"nonsense.key": [1]}, "nonsense.key"),
        ({"layer.fat.thickness_mm": []}, "sweep.layer.fat.thickness_mm"),
        ({"mode": "cube", "channel.current_mA": [1]}, "sweep.mode"),
        ({"mode": "zip", "channel.current_mA": [1, 2], "mesh.degree": [1]}, "sweep"),
    ],
)
def test_bad_path_or_value_names_it(sweep, named):
    with pytest.raises(emsim.InputError) as err:
        parse_study({"case": tiny_table(), "sweep": sweep})
    assert named in str(err.value)


def test_bad_study_stops_cli_before_anything_runs(tmp_path):
    from conftest import run_cli

    study = write_study(tmp_path, '"electrode.A.diameter_mm" = [10, 80]')
    r = run_cli("run", str(study), "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert "electrode.A.diameter_mm" in r.stderr and "at point 1" in r.stderr
    assert not (tmp_path / "out").exists()


# ----------------------------------------------------------------------------- runner


def test_amplitude_axis_adds_no_solve(tmp_path):
    from emsim.solvers.linalg.ksp import SOLVES
    from emsim.studies.sweep import run_study

    study = parse_study({"case": tiny_table(), "sweep": {"channel.current_mA": [2, 5, 10, 20]}})
    assert len(study.points) == 4 and len(study.groups) == 1
    before = sum(SOLVES.values())
    summary = run_study(study, tmp_path / "out", write_results=False)
    solves = sum(SOLVES.values()) - before
    assert summary.computed == 4 and summary.solves == 1
    one = sum(SOLVES.values())
    direct = emsim.solve(study.points[2].case).metrics.electric  # the 10 mA case solved directly
    per_geometry = sum(SOLVES.values()) - one
    assert solves == per_geometry  # four amplitudes cost what one case costs
    rows = Ledger(tmp_path / "out").rows()
    m = rows[2].metrics
    assert m["current_requested_A"] == pytest.approx(0.010)
    assert m["skin_current_density_peak_A_per_m2"] == pytest.approx(direct.skin_current_density_peak_A_per_m2, rel=1e-9)
    assert m["joule_power_dc_at_peak_W"] == pytest.approx(direct.joule_power_dc_at_peak_W, rel=1e-9)
    assert rows[3].metrics["joule_power_dc_at_peak_W"] == pytest.approx(4 * direct.joule_power_dc_at_peak_W, rel=1e-9)


def test_results_tables_and_rerun_does_nothing(tmp_path):
    import pyarrow.parquet as pq

    from conftest import run_cli

    study = write_study(tmp_path, '"electrode.*.diameter_mm" = [10, 14]\n"channel.current_mA" = [5, 10]')
    out = tmp_path / "out"
    r = run_cli("run", str(study), "--out", str(out), cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    with (out / "results.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 4
    cols = list(rows[0])
    assert cols[:4] == ["case_digest_sha256", "case_index", "electrode.*.diameter_mm", "channel.current_mA"]
    assert "impedance_ohm" in cols and "skin_current_density_peak_A_per_m2" in cols
    table = pq.read_table(out / "results.parquet")
    assert table.num_rows == 4 and table.column_names == cols
    for row in rows:
        folder = out / "cases" / row["case_digest_sha256"][:16]
        assert (folder / "metrics.json").exists() and (folder / "skin_current_density.png").exists()
    before = ledger_rows(out)
    again = run_cli("run", str(study), "--out", str(out), cwd=tmp_path)
    assert again.returncode == 0 and "already done" in again.stderr and "nothing" in again.stderr
    assert ledger_rows(out) == before
    (out / "report.html").unlink()
    rep = run_cli("report", str(out), cwd=tmp_path)
    assert rep.returncode == 0, rep.stderr
    assert (out / "report.html").exists()


# ----------------------------------------------------------------------------- kill and resume


@pytest.mark.slow
def test_sigkill_after_first_case_then_resume(tmp_path):
    study = write_study(tmp_path, THREE)
    out = tmp_path / "out"
    proc = start_cli("run", str(study), "--out", str(out), cwd=tmp_path)
    deadline = time.time() + 300
    first = None
    while time.time() < deadline and proc.poll() is None:
        done = {d: r for d, r in ledger_rows(out).items() if r[1] == "done"}
        if done:
            first = next(iter(done.items()))
            break
        time.sleep(0.05)
    assert first is not None, "no case finished"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert sum(r[1] == "done" for r in ledger_rows(out).values()) < 3
    r = subprocess.run([sys.executable, "-m", "emsim.cli", "run", str(study), "--out", str(out)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = ledger_rows(out)
    assert len(rows) == 3 and all(row[1] == "done" for row in rows.values())
    digest, (_, _, ended, attempts) = first
    assert rows[digest][2] == ended and rows[digest][3] == attempts == 1  # not recomputed
    with (out / "results.csv").open() as f:
        assert len(list(csv.DictReader(f))) == 3
    _check_folders(out)


def _check_folders(out: Path) -> None:
    import json

    names = sorted(p.name for p in (out / "cases").iterdir())
    assert not [n for n in names if n.startswith(".")], names  # no partial folder left
    rows = Ledger(out).rows()
    assert len(names) == len(rows) == len({r.digest for r in rows})
    for r in rows:
        m = json.loads((out / r.folder / "metrics.json").read_text())
        assert m["case_digest_sha256"] == r.digest
        assert m["impedance_ohm"] == r.metrics["impedance_ohm"]


@pytest.mark.slow
def test_kills_at_random_moments(tmp_path):
    study = write_study(tmp_path, THREE)
    out = tmp_path / "out"
    rng = random.Random(11)
    for _ in range(3):
        proc = start_cli("run", str(study), "--out", str(out), cwd=tmp_path)
        time.sleep(rng.uniform(1.0, 7.0))
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
    r = subprocess.run([sys.executable, "-m", "emsim.cli", "run", str(study), "--out", str(out)], cwd=tmp_path,
                       capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert r.returncode == 0, r.stderr
    rows = ledger_rows(out)
    assert len(rows) == 3 and all(row[1] == "done" for row in rows.values())
    with (out / "results.csv").open() as f:
        table = list(csv.DictReader(f))
    assert sorted(t["case_digest_sha256"] for t in table) == sorted(rows)
    _check_folders(out)


# ----------------------------------------------------------------------------- MPI


@pytest.mark.mpi
def test_serial_and_mpirun_identical(tmp_path):
    from conftest import run_cli

    study = write_study(tmp_path, '"electrode.*.diameter_mm" = [10, 14]\n"channel.current_mA" = [5, 10]')
    r1 = run_cli("run", str(study), "--out", str(tmp_path / "serial"), cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr
    r2 = run_cli("run", str(study), "--out", str(tmp_path / "mpi"), cwd=tmp_path, mpi=2)
    assert r2.returncode == 0, r2.stderr
    serial = (tmp_path / "serial" / "results.csv").read_text()
    spread = (tmp_path / "mpi" / "results.csv").read_text()
    assert serial == spread
    ranks = {row.rank for row in Ledger(tmp_path / "mpi").rows()}
    assert ranks == {0, 1}  # both ranks took cases
    assert BIN.exists()


# ----------------------------------------------------------------------------- the report in a browser


def _chromium() -> str | None:
    import shutil

    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_in_headless_chromium(tmp_path):
    import re

    from emsim.studies.sweep import run_study

    browser = _chromium()
    if browser is None:
        if os.environ.get("EMSIM_CI"):
            pytest.fail("chromium is missing: .ci/run installs the Debian package")
        pytest.skip("chromium not installed (apt-get install chromium; .ci/run does it)")
    out = tmp_path / "out"
    study = parse_study({"case": tiny_table(), "sweep": {"electrode.*.diameter_mm": [10, 14], "channel.current_mA": [5, 10]}})
    run_study(study, out)
    page = (out / "report.html").resolve()
    base = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--allow-file-access-from-files",
            "--enable-logging=stderr", "--v=0", f"--user-data-dir={tmp_path / 'profile'}"]  # fmt: skip
    dom = subprocess.run([*base, "--dump-dom", page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
    assert dom.returncode == 0, dom.stderr[-2000:]
    html = dom.stdout
    srcs = re.findall(r'<img src="([^"]+)"', html)
    assert len(srcs) == 2 + 4  # one plot per swept parameter, one picture per case
    assert all((out / s).is_file() for s in srcs)
    assert 'data-images-broken="0"' in html and 'data-images-loaded="6"' in html  # every image decoded
    assert "data-js-errors" not in html
    assert html.count("<tr>") == 1 + 4  # header and one row per case
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [line for line in console if "error" in line.lower() or "uncaught" in line.lower()], console
    shot = tmp_path / "report.png"
    r = subprocess.run([*base, "--window-size=1400,2400", f"--screenshot={shot}", page.as_uri()],
                       capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert r.returncode == 0 and shot.stat().st_size > 20_000


def test_readme_example_study_parses():
    from emsim.studies.study import load_study

    study = load_study(ROOT / "studies" / "examples" / "cheek-pad-sweep.toml")
    assert len(study.points) == 18 and len(study.groups) == 6
    assert all(p.case.mesh.quality == "coarse" and p.case.mesh.degree == 1 for p in study.points)


# ----------------------------------------------------------------------------- waveform axes


def pulse_table() -> dict:
    """The tiny cheek with a capacitive contact and a biphasic train, at a coarser mesh.

    The waveform sweep stops at a 10 % error estimate (9 frequency solves instead of the default
    2 %'s 11): the tests on this case compare a reused response with a direct solve, or one rank
    with two, each at the same tolerance, not the response with the truth.
    """
    table = small_cheek_table(size_factor=6.0)
    table["name"] = "tiny-pulse"
    table["solver"] = {"waveform_tolerance": 0.1}
    for e in table["electrode"]:
        e["contact"] = {"resistance_ohm_cm2": 2900.0, "capacitance_uF_per_cm2": 0.0155}
    table["waveform"] = {"shape": "biphasic_symmetric", "pulse_width_us": 250.0, "frequency_Hz": 50.0,
                         "interphase_gap_us": 50.0}  # fmt: skip
    return table


def frequency_solves() -> int:
    from emsim.solvers.linalg.ksp import SOLVES

    return sum(n for k, n in SOLVES.items() if "frequency" in k)


def test_waveform_axis_adds_no_3d_frequency_solve(tmp_path):
    """Issue 11: a waveform-only axis reuses the geometry's frequency response."""
    from emsim.studies.sweep import run_study

    widths = [150, 250, 400]
    study = parse_study({"case": pulse_table(), "sweep": {"waveform.pulse_width_us": widths}})
    assert len(study.points) == 3 and len(study.groups) == 1
    before = frequency_solves()
    summary = run_study(study, tmp_path / "out", write_results=False)
    in_study = frequency_solves() - before
    assert summary.computed == 3 and summary.solves == 1
    rows = Ledger(tmp_path / "out").rows()
    per_case = []
    for point, row in zip(study.points, rows, strict=True):
        start = frequency_solves()
        direct = emsim.solve(point.case).metrics.waveform
        per_case.append(frequency_solves() - start)
        assert row.params["waveform.pulse_width_us"] == point.params["waveform.pulse_width_us"]
        for key in ("electrode_voltage_peak_V", "skin_current_density_peak_pulse_A_per_m2", "joule_power_cycle_mean_W",
                    "muscle_field_peak_V_per_m"):  # fmt: skip
            assert row.metrics[key] == pytest.approx(getattr(direct, key), rel=1e-9), key
    assert in_study == per_case[0] > 0  # three waveforms cost the frequency solves of one
    # The widths change the answer (the contact charges longer): the reuse is not a copy.
    peaks = [r.metrics["electrode_voltage_peak_V"] for r in rows]
    assert peaks[0] < peaks[1] < peaks[2]


@pytest.mark.mpi
def test_ranks_per_case_2_under_mpirun_gives_the_serial_results_table(tmp_path):
    """One case on a 2-rank sub-communicator: the same table as the serial run, to rounding."""
    import csv

    from conftest import run_cli

    (tmp_path / "base.toml").write_text(to_toml(pulse_table()), "utf-8")
    study = tmp_path / "study.toml"
    study.write_text('base = "base.toml"\n[sweep]\n"waveform.pulse_width_us" = [200, 300]\n'
                     '"channel.current_mA" = [5, 10]\n', "utf-8")  # fmt: skip
    r1 = run_cli("run", str(study), "--out", str(tmp_path / "serial"), cwd=tmp_path)
    assert r1.returncode == 0, r1.stderr
    r2 = run_cli("run", str(study), "--out", str(tmp_path / "mpi"), "--ranks-per-case", "2", cwd=tmp_path, mpi=2)
    assert r2.returncode == 0, r2.stderr

    def table(name: str) -> list[dict]:
        with open(tmp_path / name / "results.csv", newline="") as f:
            return list(csv.DictReader(f))

    serial, spread = table("serial"), table("mpi")
    assert len(serial) == len(spread) == 4
    assert [r.keys() for r in serial] == [r.keys() for r in spread]
    compared = 0
    for a, b in zip(serial, spread, strict=True):
        for key, value in a.items():
            try:
                x, y = float(value), float(b[key])
            except ValueError:
                if key not in ("seconds", "ended", "rank") and "time" not in key:
                    assert value == b[key], key
                continue
            if any(s in key for s in ("seconds", "timings", "_s]", "rank", "iterations")):
                continue
            assert y == pytest.approx(x, rel=1e-6, abs=1e-12 * max(1.0, abs(x))), key
            compared += 1
    assert compared > 40
