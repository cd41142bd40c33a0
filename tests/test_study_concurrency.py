"""Two runs of one study on one folder (issue 19, item 3): they cooperate as MPI workers do.

The ledger's claims carry their owner; a case is reset as interrupted only when its owner is
gone; opening the ledger survives another process's lock; a run counts only what it computed
itself. The end-to-end test starts two real ``emsim run STUDY --out DIR`` processes on one
folder, kills one at a seeded random moment, and checks from the ledger's event log that every
case was finished exactly once and that the survivor's summary line says what it did.
"""

from __future__ import annotations

import os
import random
import re
import signal
import socket
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from emsim.studies import ledger as ledger_module
from emsim.studies.ledger import Ledger, Owner, owner_alive

from conftest import small_two_pad_table, to_toml

ROWS = [(f"d{i}", i, f"g{i}", {"i": i}) for i in range(3)]


def _sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


def _owner_of(proc: subprocess.Popen) -> Owner:
    return Owner("other-run", Owner.this_process().host, proc.pid, ledger_module._process_start(proc.pid))


def test_a_case_claimed_by_a_live_run_is_not_reset_and_is_reset_once_that_run_is_gone(tmp_path):
    other = _sleeper()
    try:
        theirs = Ledger(tmp_path, owner=_owner_of(other))
        theirs.register(ROWS, {})
        assert theirs.claim_group(["d0", "d1", "d2"], 0) == ("g0", ["d0"])
        ours = Ledger(tmp_path)
        assert ours.register(ROWS, {}) == 0  # the other run is alive: its case is its own
        assert ours.claim_group(["d0", "d1", "d2"], 0) == ("g1", ["d1"])
        assert [r.status for r in ours.rows()] == ["running", "running", "pending"]
        other.kill()
        other.wait()
        assert ours.register(ROWS, {}) == 1  # now it is gone: its case was interrupted
        assert ours.claim_group(["d0", "d1", "d2"], 0) == ("g0", ["d0"])
        events = [(d, e, pid) for _, d, e, _, _, pid in ours.events()]
        assert events == [("d0", "claim", other.pid), ("d1", "claim", os.getpid()), ("d0", "reset", other.pid),
                          ("d0", "claim", os.getpid())]  # fmt: skip
        assert [r.attempts for r in ours.rows()] == [2, 1, 0]
        theirs.close()
        ours.close()
    finally:
        other.kill()
        other.wait()


def test_a_reused_process_id_is_not_the_owner():
    me = Owner.this_process()
    assert owner_alive(me.host, me.pid, me.start, None)
    assert not owner_alive(me.host, me.pid, me.start + 1, None)  # same pid, a later process
    assert not owner_alive(me.host, None, None, None)  # a claim without an owner (old ledger)
    now = time.time()
    assert owner_alive("elsewhere", 1, None, now - 60, now=now)  # another host: its lease
    assert not owner_alive("elsewhere", 1, None, now - ledger_module.LEASE_S - 1, now=now)


def test_claims_in_a_ledger_from_before_owners_are_interrupted_and_the_columns_are_added(tmp_path):
    db = sqlite3.connect(tmp_path / "ledger.sqlite")
    db.executescript(
        "CREATE TABLE cases (digest TEXT PRIMARY KEY, position INTEGER NOT NULL, grp TEXT NOT NULL, params TEXT NOT NULL,"
        " status TEXT NOT NULL DEFAULT 'pending', started REAL, ended REAL, attempts INTEGER NOT NULL DEFAULT 0,"
        " rank INTEGER, emsim_version TEXT, folder TEXT, metrics TEXT);"
        "INSERT INTO cases (digest, position, grp, params, status, attempts) VALUES ('d0', 0, 'g0', '{}', 'running', 1);"
    )  # fmt: skip
    db.commit()
    db.close()
    ledger = Ledger(tmp_path)
    assert ledger.register(ROWS, {}) == 1
    assert [r.status for r in ledger.rows()] == ["pending"] * 3
    ledger.close()


class _LockedAtFirst:
    """A connection whose journal-mode switch meets another process's lock while ``left[0] > 0``."""

    def __init__(self, db: sqlite3.Connection, left: list[int]) -> None:
        self.db, self.left = db, left

    def execute(self, sql, *args):
        if "journal_mode" in sql and self.left[0] > 0:
            self.left[0] -= 1
            raise sqlite3.OperationalError("database is locked")
        return self.db.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.db, name)


def test_opening_the_ledger_waits_out_a_database_is_locked(tmp_path, monkeypatch):
    real, left = sqlite3.connect, [3]
    monkeypatch.setattr(ledger_module.sqlite3, "connect", lambda *a, **k: _LockedAtFirst(real(*a, **k), left))
    ledger = Ledger(tmp_path)  # used to raise sqlite3.OperationalError: database is locked
    monkeypatch.setattr(ledger_module.sqlite3, "connect", real)
    assert left == [0] and ledger.register(ROWS, {}) == 0 and len(ledger.rows()) == 3
    ledger.close()


def test_a_temporary_case_folder_of_a_live_run_is_left_alone(tmp_path):
    from emsim.io import clean_stale

    other = _sleeper()
    try:
        host = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())
        live = tmp_path / "cases" / f".abc.tmp-{other.pid}.{host}"
        dead = tmp_path / "cases" / f".abd.tmp-999999999.{host}"
        live.mkdir(parents=True)
        dead.mkdir()
        clean_stale(tmp_path / "cases")
        assert live.is_dir() and not dead.exists()
    finally:
        other.kill()
        other.wait()


# ----------------------------------------------------------------------------- two real runs


def _study(folder: Path) -> Path:
    """Four cases in four geometry groups (each its own solve) on the small two-pad patch."""
    base = small_two_pad_table()
    base["name"] = "tiny"
    base["mesh"]["size_factor"] = 8.0
    (folder / "base.toml").write_text(to_toml(base), "utf-8")
    path = folder / "study.toml"
    path.write_text('base = "base.toml"\n[sweep]\n"electrode.*.diameter_mm" = [6, 7, 8, 9]\n', "utf-8")
    return path


def _events(out: Path) -> list[tuple[str, str, int]]:
    if not (out / "ledger.sqlite").exists():
        return []
    db = sqlite3.connect(out / "ledger.sqlite", timeout=30)
    try:
        return list(db.execute("SELECT digest, event, pid FROM events ORDER BY rowid"))
    except sqlite3.OperationalError:  # the tables are being created
        return []
    finally:
        db.close()


@pytest.mark.parametrize("seed", [20, 27])  # victim 0 after its 2nd claim; victim 1 after its 2nd
def test_two_runs_on_one_folder_compute_every_case_once_when_one_is_killed(tmp_path, seed):
    rng = random.Random(seed)
    study, out = _study(tmp_path), tmp_path / "out"
    cmd = [sys.executable, "-m", "emsim.cli", "run", str(study), "--out", str(out)]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]  # fmt: skip
    victim, survivor = procs[rng.randrange(2)], None
    survivor = procs[1] if victim is procs[0] else procs[0]
    claims = rng.choice([1, 2])  # kill a moment after its 1st or 2nd claim: in the middle of that case
    deadline = time.monotonic() + 300
    while victim.poll() is None and time.monotonic() < deadline:
        if sum(1 for _, e, pid in _events(out) if e == "claim" and pid == victim.pid) >= claims:
            break
        time.sleep(0.05)
    time.sleep(rng.uniform(0.0, 0.5))  # a case takes seconds: the victim dies holding it
    victim.send_signal(signal.SIGKILL)
    victim.communicate()
    _, err = survivor.communicate(timeout=600)
    assert survivor.returncode == 0, err

    events = _events(out)
    digests = sorted({d for d, _, _ in events})
    assert len(digests) == 4
    for d in digests:
        mine = [(e, pid) for dd, e, pid in events if dd == d]
        finishes = [pid for e, pid in mine if e == "finish"]
        resets = [pid for e, pid in mine if e == "reset"]
        claims_of = [pid for e, pid in mine if e == "claim"]
        assert len(finishes) == 1, mine  # computed (and recorded) exactly once
        assert len(claims_of) == 1 + len(resets), mine  # a second claim only after its owner was gone
        assert set(resets) <= {victim.pid}, mine  # the survivor's claims were never taken from it
    assert any(e == "reset" for _, e, _ in events), events  # the survivor took over the victim's case
    db = sqlite3.connect(out / "ledger.sqlite")
    assert [r[0] for r in db.execute("SELECT status FROM cases")] == ["done"] * 4
    db.close()

    by_survivor = sum(1 for _, e, pid in events if e == "finish" and pid == survivor.pid)
    by_victim = 4 - by_survivor
    line = [s for s in err.splitlines() if "computed by this run" in s]
    assert len(line) == 1, err
    said = re.search(r": (\d+) case\(s\) computed by this run(?:, (\d+) by another run)?"
                     r"(?: \((\d+) interrupted case\(s\) redone\))?, (\d+) already done, 4 in all", line[0])  # fmt: skip
    assert said, line[0]
    computed, by_other, redone, already = (int(said[k] or 0) for k in (1, 2, 3, 4))
    assert computed == by_survivor and by_other + already == by_victim, (line[0], events)
    assert redone == sum(1 for _, e, _ in events if e == "reset"), (line[0], events)  # the survivor reset them all
    assert "incomplete" not in err
    rows = (out / "results.csv").read_text("utf-8").strip().splitlines()
    assert len(rows) == 1 + 4
    assert not [p for p in (out / "cases").iterdir() if p.name.startswith(".")]  # no temporary folder left
