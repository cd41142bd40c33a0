"""The benchmark harness runs a case in its own process and records what docs/performance.md shows."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_harness_records_dofs_stages_memory_and_the_error_of_the_axisymmetric_disk(tmp_path):
    out = tmp_path / "results.json"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--only", "disk-axi-coarse-p3", "--json", str(out)],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    (record,) = data["records"]
    assert record["case"] == "disk-axi-coarse-p3" and record["ranks"] == 1
    assert record["dofs"] > 1000 and record["peak_rss_MB"] > 0 and record["cpu_s"] > 0
    # The axisymmetric path's 0.1 % target, against the exact (Fredholm) slab resistance.
    assert abs(record["error"]) < 1e-3
    assert "disk-axi-coarse-p3" in proc.stdout and data["machine"]["cores"] >= 1
