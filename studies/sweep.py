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
is redone on the next run.

Two runs on one folder cooperate as MPI workers do: each claims groups the other has not, a run
takes over the cases of a run that is gone (:func:`emsim.studies.ledger.owner_alive`), and a run
that has nothing left to claim waits for the cases another live run is computing, so that both
end with the whole study done. The summary counts what this run computed itself (from the
ledger's event log), what other runs computed meanwhile, and what is still not done. The solved case of a group is the same whatever the rank count, so
serial and MPI runs give identical results.

Finally rank 0 writes ``results.csv``, ``results.parquet`` and ``report.html``
(:mod:`emsim.studies.report`).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mpi4py import MPI

from .. import __version__
from ..errors import InputError
from ..io import (
    check_output_folder,
    clean_stale,
    prepare_study_folder,
    save_figure,
    staged_folder,
    write_json,
    write_text,
)
from ..pipeline import GeometryCache, geometry_key, solve_case, unit_case
from ..solvers.records import jsonable
from ..solvers.result import CaseResult
from .ledger import Ledger, Owner
from .outputs import write_outputs
from .pictures import skin_current_map, skin_current_profile
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
        reset: interrupted cases (their run gone) reset to pending: at the start, or taken over
            while this run ran.
        solves: geometry groups solved by this rank.
        seconds: wall time of the run.
        by_others: cases other runs on the same folder finished while this one ran.
        not_done: cases not done when this run ended (pending, or running in another run).
    """

    total: int
    already_done: int
    computed: int
    reset: int
    solves: int
    seconds: float
    by_others: int = 0
    not_done: int = 0

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
    mesh, the electric lead fields, the frequency response and the heat basis are computed for
    the first unit case and reused by the others (each waveform is synthesised from the
    response, with no further 3-D solve, and heated as a combination of the basis's session
    runs). The cases solved depend only on the group, never on which of its points
    a rank holds.
    """
    cache = GeometryCache()
    out: dict[str, CaseResult] = {}
    for p in points:
        unit = unit_case(p.case)
        key = geometry_key(p.case)
        if key not in out:
            out[key] = solve_case(unit, comm=comm, cache=cache)
    cache.close()  # the heat basis's PETSc objects; the results stay readable
    return out


def case_metrics(result: CaseResult) -> dict[str, Any]:
    """The metrics of a result at its case's currents: values (keys with units) and ``absent``."""
    body = result.metrics.to_json()
    body.pop("definitions", None)
    return body


def write_case_folder(result: CaseResult, folder: Path, *, fields: bool, comm: MPI.Comm) -> None:
    """A case's folder, written beside and renamed into place when complete (collective).

    With ``fields`` every output of :func:`emsim.write_outputs`; else ``metrics.json``,
    ``case.toml``, ``skin_current_density.png`` and ``skin_current_profile.png`` (the depth
    section samples the distributed field: with ``fields`` only).
    """
    # A case folder is the study's own: one left by a run killed before its ledger row was
    # marked done is replaced (it carries emsim's marker; anything else there is refused).
    if fields:
        write_outputs(result, folder, comm=comm, overwrite=True)
        return
    with staged_folder(folder, kind="case", overwrite=True, comm=comm) as tmp:
        if comm.rank == 0:
            write_json(tmp / "metrics.json", jsonable(result.to_json()))
            write_text(tmp / "case.toml", result.case.to_toml())
            save_figure(skin_current_map(result), tmp / "skin_current_density.png")
            save_figure(skin_current_profile(result), tmp / "skin_current_profile.png")


#: Seconds between looks at the ledger while another run computes the last cases.
WAIT_POLL_S = 0.5


def _next_claim(
    ledger: Ledger, digests: list[str], rank: int, progress: StudyProgress, total: int
) -> tuple[str, list[str]] | None:
    """The next group to compute; while only other live runs' cases remain, wait for them.

    Returns None when no case is pending or running in another run (the study is done, or
    only this run's own other workers are still busy).
    """
    waiting = False
    while True:
        claim = ledger.claim_group(digests, rank)
        if claim is not None:
            return claim
        others = ledger.running_elsewhere(digests)
        if not others:
            return None
        if not waiting and rank == 0:
            owners = sorted({f"{r.owner_host} pid {r.owner_pid}" for r in others})
            progress(ledger.counts(digests)["done"], total,
                     f"waiting for {len(others)} case(s) another run is computing ({', '.join(owners)})")  # fmt: skip
        waiting = True
        time.sleep(WAIT_POLL_S)


@dataclass(frozen=True)
class _Plan:
    """The cases of a study as the run sees them: digests in study order, points by digest."""

    study: Study
    out: Path
    run: str  # the run id every rank of this run shares (the ledger's owner)
    digests: list[str]
    by_digest: dict[str, StudyPoint]

    @property
    def total(self) -> int:
        """Number of cases in the study."""
        return len(self.digests)

    def ledger(self) -> Ledger:
        """A connection to the study's ledger, owned by this process under the run's id."""
        return Ledger(self.out, owner=Owner.this_process(self.run))


def _plan_cases(study: Study, out: Path, comm: MPI.Comm) -> _Plan:
    """The study's cases and one run id for every rank (collective)."""
    run = comm.bcast(Owner.this_process().run if comm.rank == 0 else None, root=0)
    return _Plan(study, out, run, [p.digest for p in study.points], {p.digest: p for p in study.points})


def _register_cases(plan: _Plan, *, overwrite: bool, comm: MPI.Comm) -> tuple[int, int]:
    """Prepare the folder and register the cases in the ledger (rank 0; collective).

    Returns ``(already, reset)`` on every rank: the cases done before this run, and the
    interrupted cases of runs that are gone, reset to pending.
    """
    already = reset = 0
    if comm.rank == 0:
        study = plan.study
        prepare_study_folder(plan.out, overwrite=overwrite, field="out_dir")
        ledger = plan.ledger()
        meta = {"name": study.name, "axes": list(study.axes), "mode": study.mode, "digests": plan.digests,
                "base": study.base_name, "fields": study.fields}  # fmt: skip
        reset = ledger.register(((p.digest, p.index, p.group, p.params) for p in study.points), meta)
        clean_stale(plan.out / "cases")  # temporaries of killed runs never count as results
        already = ledger.counts(plan.digests)["done"]
        ledger.close()
    return comm.bcast((already, reset), root=0)


def _announce(plan: _Plan, already: int, reset: int, progress: StudyProgress) -> None:
    """Tell the progress callback what this run starts with (rank 0)."""
    total = plan.total
    if reset:
        progress(already, total, f"{reset} interrupted case(s) reset; they run again")
    if already == total:
        progress(total, total, f"all {total} cases already done; nothing to run")
    else:
        progress(already, total, f"{total - already} of {total} cases to run")


def _solve_claimed(plan: _Plan, claimed: list[str], ledger: Ledger | None, *, sub: MPI.Comm,
                   rank: int, progress: StudyProgress) -> None:  # fmt: skip
    """Solve one claimed group and write each of its cases (collective over the worker).

    A failure anywhere releases the group's cases back to pending before it propagates.
    """
    points = [plan.by_digest[d] for d in claimed]
    try:
        results = solve_group(points, comm=sub)
        for p in points:
            result = dataclasses.replace(results[geometry_key(p.case)], case=p.case)
            _write_case(plan, p, result, ledger, sub=sub, rank=rank, progress=progress)
    except BaseException:
        if ledger is not None:
            ledger.release(claimed)
        raise


def _write_case(plan: _Plan, p: StudyPoint, result: CaseResult, ledger: Ledger | None, *,
                sub: MPI.Comm, rank: int, progress: StudyProgress) -> None:  # fmt: skip
    """A case's folder, then its ledger row marked done (the worker's rank 0 holds the ledger)."""
    folder = case_folder_name(p.digest)
    write_case_folder(result, plan.out / folder, fields=plan.study.fields, comm=sub)
    if ledger is None:
        return
    ledger.finish(p.digest, case_metrics(result), folder, __version__)
    if rank == 0:
        done = ledger.counts(plan.digests)["done"]
        progress(done, plan.total, f"case {p.index} done ({_describe(p)})")
    else:
        log.info("rank %d: case %d done", rank, p.index)


def _work(plan: _Plan, already: int, *, sub: MPI.Comm, rank: int, progress: StudyProgress) -> tuple[int, int]:
    """Claim and solve groups until none is left for this worker (collective over ``sub``).

    Returns ``(solves, taken)``: the groups this worker solved, and the cases its ledger
    connection took over from runs that stopped meanwhile (0 off the worker's rank 0).
    """
    solves = taken = 0
    ledger = plan.ledger() if sub.rank == 0 else None
    while already < plan.total:
        claim = _next_claim(ledger, plan.digests, rank, progress, plan.total) if ledger is not None else None
        claim = sub.bcast(claim, root=0)
        if claim is None:
            break
        _solve_claimed(plan, claim[1], ledger, sub=sub, rank=rank, progress=progress)
        solves += 1
    if ledger is not None:
        taken = ledger.taken_over
        ledger.close()
    return solves, taken


def _finish_study(plan: _Plan, already: int, *, write_results: bool, comm: MPI.Comm) -> tuple[int, int, int]:
    """Count what this run and others did, and write the results tables (rank 0; collective).

    Returns ``(computed, by_others, not_done)`` on every rank.
    """
    computed = by_others = not_done = 0
    comm.barrier()
    if comm.rank == 0:
        ledger = plan.ledger()
        done = ledger.counts(plan.digests)["done"]
        computed = ledger.finished_by_run(plan.digests, plan.run)
        ledger.close()
        by_others = done - already - computed
        not_done = plan.total - done
        if write_results and (already < plan.total or not (plan.out / "results.csv").exists()):
            write_study_results(plan.out)
    return comm.bcast((computed, by_others, not_done), root=0)


def run_study(
    study: Study | str | Path,
    out_dir: str | Path,
    *,
    comm: MPI.Comm | None = None,
    ranks_per_case: int = 1,
    progress: StudyProgress = _nothing,
    write_results: bool = True,
    overwrite: bool = False,
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
        overwrite: ``out_dir`` may be an earlier emsim output of another kind (a case folder),
            replaced by a new study folder. A study folder (emsim's marker) is always resumed;
            a folder emsim did not write is never used (:mod:`emsim.io.folders`).

    Returns:
        A :class:`StudySummary` (the same on every rank).
    """
    comm = comm or MPI.COMM_WORLD
    t0 = time.perf_counter()
    if not isinstance(study, Study):
        study = load_study(study)
    out = Path(out_dir)
    check_output_folder(out, kind="study", field="out_dir", overwrite=overwrite)  # every rank: same verdict
    plan = _plan_cases(study, out, comm)
    already, reset = _register_cases(plan, overwrite=overwrite, comm=comm)
    if comm.rank == 0:
        _announce(plan, already, reset, progress)
    if ranks_per_case < 1 or comm.size % ranks_per_case:
        raise InputError("ranks_per_case", ranks_per_case, f"a divisor of the number of ranks ({comm.size})")
    sub = comm.Split(color=comm.rank // ranks_per_case, key=comm.rank)
    try:
        solves, taken = _work(plan, already, sub=sub, rank=comm.rank, progress=progress)
    finally:
        sub.Free()
    reset += comm.allreduce(taken)  # cases taken over from a run that stopped while this one ran
    computed, by_others, not_done = _finish_study(plan, already, write_results=write_results, comm=comm)
    return StudySummary(plan.total, already, computed, reset, solves, time.perf_counter() - t0, by_others, not_done)


def _describe(p: StudyPoint) -> str:
    return ", ".join(f"{k} = {v}" for k, v in p.params.items())
