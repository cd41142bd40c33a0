"""Benchmark of the waveform (frequency sweep) path on the default case.

Times the mesh, the whole sweep and each sampled frequency (through the progress callback),
and writes the metrics and the transfer function to a JSON file so that two runs (before and
after a change) can be compared:

    .venv/bin/python benchmarks/bench_waveform.py [--quality default] [--degree 2] [--method auto]
        [--out metrics.json] [--compare before.json]
    .venv/bin/mpirun -n 2 .venv/bin/python benchmarks/bench_waveform.py
"""

from __future__ import annotations

import argparse
import json
import time

import emsim  # noqa: F401
from emsim.meshes.patch import build_patch_mesh
from emsim.models import parse_case, read_case_table
from emsim.solvers.records import record_values
from emsim.solvers.spectral.sweep import waveform_response
from emsim.studies.run import default_case_path

WAVEFORM = {"shape": "biphasic_symmetric", "pulse_width_us": 250, "frequency_Hz": 50, "interphase_gap_us": 50}


def _flatten(d, prefix=""):
    """Numeric leaves of nested metrics, by dotted key."""
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        elif isinstance(v, (int, float)) and not isinstance(v, bool):
            out[key] = float(v)
    return out


def main() -> None:
    import numpy as np
    from mpi4py import MPI

    p = argparse.ArgumentParser()
    p.add_argument("--quality", default="default")
    p.add_argument("--degree", type=int, default=2)
    p.add_argument("--method", default="auto")
    p.add_argument("--n-frequencies", type=int, default=24)
    p.add_argument("--out", default=None)
    p.add_argument("--compare", default=None)
    args = p.parse_args()
    table = read_case_table(default_case_path())
    table.pop("thermal", None)
    table["mesh"] = {"quality": args.quality, "degree": args.degree}
    table["solver"] = {**table.get("solver", {}), "method": args.method}
    table["waveform"] = dict(WAVEFORM)
    case = parse_case(table)
    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    patch = build_patch_mesh(case, comm)
    mesh_s = time.perf_counter() - t0
    stamps = []

    def progress(text):
        stamps.append(time.perf_counter())

    t0 = time.perf_counter()
    resp = waveform_response(case, patch, n_frequencies=args.n_frequencies, progress=progress)
    total = time.perf_counter() - t0
    stamps.append(t0 + total)
    per = np.diff(stamps)  # the last one includes the synthesis and the metrics
    current = [c.current_A for c in case.channels]
    wave_metrics, _ = resp.at(current)
    metrics = _flatten(record_values(wave_metrics))
    if comm.rank == 0:
        print(
            f"ranks={comm.size} quality={args.quality} degree={args.degree} method={args.method} "
            f"cells={patch.report.cells} mesh_s={mesh_s:.2f} sweep_s={total:.2f} "
            f"per_frequency_s mean={per[:-1].mean():.2f} first={per[0]:.2f} "
            f"V_peak={wave_metrics.electrode_voltage_peak_V:.10g}"
        )
        print("per frequency [s]:", " ".join(f"{x:.2f}" for x in per))
        data = {"metrics": metrics, "transfer_re": resp.transfer_V_per_A.real.tolist(),
                "transfer_im": resp.transfer_V_per_A.imag.tolist()}  # fmt: skip
        if args.out:
            with open(args.out, "w") as fh:
                json.dump(data, fh)
        if args.compare:
            with open(args.compare) as fh:
                ref = json.load(fh)
            worst = max(
                (abs(v - ref["metrics"][k]) / max(abs(ref["metrics"][k]), 1e-300), k)
                for k, v in metrics.items() if k in ref["metrics"] and ref["metrics"][k] != 0
            )  # fmt: skip
            h = np.array(data["transfer_re"]) + 1j * np.array(data["transfer_im"])
            h0 = np.array(ref["transfer_re"]) + 1j * np.array(ref["transfer_im"])
            print(f"max relative metric change {worst[0]:.3g} ({worst[1]}); "
                  f"transfer {np.max(np.abs(h - h0)) / np.max(np.abs(h0)):.3g}")  # fmt: skip


if __name__ == "__main__":
    main()
