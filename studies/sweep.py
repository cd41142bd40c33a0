"""Run a study: every case once, resumable after a crash, spread over MPI ranks.

:func:`run_study` registers the study's cases in the ledger (:mod:`emsim.studies.ledger`), then
each worker (one MPI rank, or a group of ``ranks_per_case`` ranks on a sub-communicator) claims
the next pending response group (:func:`emsim.pipeline.response_key`), meshes and solves
its geometry once (electric lead fields and frequency response, :func:`solve_group`),
synthesises each of its waveforms from that response (a waveform axis adds no 3-D solve), and
evaluates every case from the result of its unit case with :meth:`CaseResult.at` semantics (the
result is re-labelled with each case, so metrics and pictures are at that case's currents: an
amplitude axis adds no solve). Each case's folder is written to a temporary folder and renamed
into place before its ledger row is marked done; a case interrupted anywhere (kill -9 included)
is redone on the next run. The solved case of a group is the same whatever the rank count, so
serial and MPI runs give identical results.

Finally rank 0 writes ``results.csv``, ``results.parquet`` and ``report.html``
(:mod:`emsim.studies.report`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpi4py import MPI

from .. import __version__
from ..errors import InputError
from ..pipeline import GeometryCache, geometry_key, solve_case, unit_case
from ..solvers.result import CaseResult
from .ledger import Ledger
from .outputs import skin_current_picture, write_json_atomic, write_outputs
from .report import write_results as write_study_results
from .study import Study, StudyPoint, load_study

__all__ = ["StudySummary", "case_folder_name", "run_study", "solve_group", "write_case_folder"]

log = logging.getLogger(__name__)

#: progress(done, total, text): cases done of the study, and a short text.
StudyProgress = Callable[[int, int, str], None]


def _nothing(done: int, total: int, text: str) -> None:
    pass


@dataclass(frozen=True)
class StudySummary:
    """What a run of a study did.

    Attributes:
        total: cases in the study.
        already_done: cases done before this run started (not recomputed).
        computed: cases this run computed (on every rank).
        reset: interrupted cases found running and reset to pending.
        solves: geometry groups solved by this rank.
        seconds: wall time of the run.
    """

    total: int
    already_done: int
    computed: int
    reset: int
    solves: int
    seconds: float

    @property
    def nothing_to_do(self) -> bool:
        """True when every case was already done."""
        return self.already_done == self.total


def case_folder_name(digest: str) -> str:
    """The per-case folder (relative to the study folder): ``cases/<first 16 hex of digest>``."""
    return f"cases/{digest[:16]}"


def solve_group(points: list[StudyPoint], *, comm: MPI.Comm | None = None) -> dict[str, CaseResult]:
    """Solve a response group: each of its unit cases (:func:`unit_case`), by geometry key.

    The points of a group differ only in currents and waveform (:func:`response_key`): the
    mesh, the electric lead fields and the frequency response are computed for the first unit
    case and reused by the others (each waveform is synthesised from the response, with no
    further 3-D solve). The cases solved depend only on the group, never on which of its points
    a rank holds.
    """
    cache = GeometryCache()
    out: dict[str, CaseResult] = {}
    for p in points:
        unit = unit_case(p.case)
        key = geometry_key(p.case)
        if key not in out:
            out[key] = solve_case(unit, comm=comm, cache=cache)
    return out


def case_metrics(result: CaseResult) -> dict[str, Any]:
    """The metrics of a result at its case's currents: values (keys with units) and ``absent``."""
    body = result.metrics.to_json()
    body.pop("definitions", None)
    return body


def write_case_folder(result: CaseResult, folder: Path, *, fields: bool, comm: MPI.Comm) -> None:
    """A case's folder, written beside and renamed into place when complete (collective).

    With ``fields`` every output of :func:`emsim.write_outputs`; else ``metrics.json``,
    ``case.toml`` and ``skin_current_density.png``.
    """
    if fields:
        write_outputs(result, folder, comm=comm)
        return
    if comm.rank == 0:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = folder.parent / f".{folder.name}.tmp-{os.getpid()}"
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        try:
            write_json_atomic(tmp / "metrics.json", result.to_json())
            (tmp / "case.toml").write_text(result.case.to_toml(), "utf-8")
            skin_current_picture(result, tmp / "skin_current_density.png")
            if folder.exists():
                old = folder.parent / f".{folder.name}.old-{os.getpid()}"
                os.replace(folder, old)
                shutil.rmtree(old, ignore_errors=True)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    comm.barrier()


def _clean_stale(out: Path) -> None:
    """Remove temporary folders a killed run left behind (they never count as results)."""
    cases = out / "cases"
    if cases.is_dir():
        for p in cases.iterdir():
            if p.name.startswith(".") and (".tmp-" in p.name or ".old-" in p.name):
                shutil.rmtree(p, ignore_errors=True)


def run_study(
    study: Study | str | Path,
    out_dir: str | Path,
    *,
    comm: MPI.Comm | None = None,
    ranks_per_case: int = 1,
    progress: StudyProgress = _nothing,
    write_results: bool = True,
) -> StudySummary:
    """Run every case of a study not yet done, then write the results tables and report.

    Collective over ``comm`` (default ``MPI.COMM_WORLD``): the ranks are split into workers of
    ``ranks_per_case`` ranks (``comm.Split``); each worker claims geometry groups from the
    ledger until none is pending.

    Args:
        study: a parsed :class:`Study` or the path of a study file.
        out_dir: the study folder (``ledger.sqlite``, ``cases/``, results, report).
        comm: MPI communicator.
        ranks_per_case: ranks that solve one case together (1: one case per rank).
        progress: called on rank 0 as ``progress(done, total, text)``.
        write_results: write ``results.csv``, ``results.parquet`` and ``report.html`` at the end.

    Returns:
        A :class:`StudySummary` (the same on every rank).
    """
    comm = comm or MPI.COMM_WORLD
    t0 = time.perf_counter()
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out_dir)
    digests = [p.digest for p in study.points]
    total = len(digests)
    already, reset = _register(study, out, comm)
    if comm.rank == 0:
        if reset:
            progress(already, total, f"{reset} interrupted case(s) reset; they run again")
        if already == total:
            progress(total, total, f"all {total} cases already done; nothing to run")
        else:
            progress(already, total, f"{total - already} of {total} cases to run")
    if ranks_per_case < 1 or comm.size % ranks_per_case:
        raise InputError("ranks_per_case", ranks_per_case, f"a divisor of the number of ranks ({comm.size})")
    sub = comm.Split(color=comm.rank // ranks_per_case, key=comm.rank)
    try:
        solves = _work(study, out, comm, sub, already, progress) if already < total else 0
    finally:
        sub.Free()
    computed = _finish(out, comm, digests, already, write_results)
    return StudySummary(total, already, computed, reset, solves, time.perf_counter() - t0)


def _register(study: Study, out: Path, comm: MPI.Comm) -> tuple[int, int]:
    """Register the study's cases in the ledger (rank 0): (cases already done, interrupted cases reset)."""
    already = reset = 0
    if comm.rank == 0:
        out.mkdir(parents=True, exist_ok=True)
        digests = [p.digest for p in study.points]
        ledger = Ledger(out)
        meta = {"name": study.name, "axes": list(study.axes), "mode": study.mode, "digests": digests,
                "base": study.base_name, "fields": study.fields}  # fmt: skip
        reset = ledger.register(((p.digest, p.index, p.group, p.params) for p in study.points), meta)
        _clean_stale(out)
        already = ledger.counts(digests)["done"]
        ledger.close()
    already, reset = comm.bcast((already, reset), root=0)
    return already, reset


def _work(
    study: Study, out: Path, comm: MPI.Comm, sub: MPI.Comm, already: int, progress: StudyProgress
) -> int:
    """Claim response groups from the ledger until none is pending; solve and write each (per worker).

    Returns:
        The groups this worker solved.
    """
    digests = [p.digest for p in study.points]
    by_digest = {p.digest: p for p in study.points}
    total = len(digests)
    solves = 0
    ledger = Ledger(out) if sub.rank == 0 else None
    while True:
        claim = ledger.claim_group(digests, comm.rank) if ledger is not None else None
        claim = sub.bcast(claim, root=0)
        if claim is None:
            break
        _, claimed = claim
        points = [by_digest[d] for d in claimed]
        try:
            results = solve_group(points, comm=sub)
            solves += 1
            for p in points:
                r = dataclasses.replace(results[geometry_key(p.case)], case=p.case)
                folder = case_folder_name(p.digest)
                write_case_folder(r, out / folder, fields=study.fields, comm=sub)
                if ledger is not None:
                    ledger.finish(p.digest, case_metrics(r), folder, __version__)
                    if comm.rank == 0:
                        done = ledger.counts(digests)["done"]
                        progress(done, total, f"case {p.index} done ({_describe(p)})")
                    else:
                        log.info("rank %d: case %d done", comm.rank, p.index)
        except BaseException:
            if ledger is not None:
                ledger.release(claimed)
            raise
    if ledger is not None:
        ledger.close()
    return solves


def _finish(out: Path, comm: MPI.Comm, digests: list[str], already: int, write_results: bool) -> int:
    """Count the cases this run computed; write the results tables and report (rank 0)."""
    computed = 0
    comm.barrier()
    if comm.rank == 0:
        ledger = Ledger(out)
        done = ledger.counts(digests)["done"]
        ledger.close()
        computed = done - already
        if write_results and (already < len(digests) or not (out / "results.csv").exists()):
            write_study_results(out)
    return comm.bcast(computed, root=0)


def _describe(p: StudyPoint) -> str:
    return ", ".join(f"{k} = {v}" for k, v in p.params.items())
