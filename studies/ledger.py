"""The study ledger, ``DIR/ledger.sqlite``: one row per case digest, its status and metrics.

Statuses: ``pending`` -> ``running`` -> ``done``. Every state change is its own committed
transaction (SQLite, write-ahead log, ``synchronous = FULL``, a busy timeout), so a kill at any
moment leaves either the old or the new state. A ``done`` row is never recomputed. Workers (MPI
ranks, and separate runs on one folder alike) claim work with an immediate transaction, so each
geometry group is claimed by exactly one worker (dynamic scheduling, no master rank).

A claim carries its owner (:class:`Owner`: the run, host, process id and the process's start
time) and a heartbeat. A ``running`` row is interrupted, and only then reset to ``pending`` and
redone, when its owner is gone: on this host, its process no longer exists (or the process id
now belongs to a later process); on another host (a shared folder), its heartbeat is older
than :data:`LEASE_S`. A second run on the folder therefore never takes over the cases a live
run is computing. Every claim, reset and finish is also logged in the ``events`` table, the
audit trail from which a run counts what it computed itself.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LEASE_S", "LEDGER_NAME", "Ledger", "LedgerRow", "Owner", "owner_alive"]

#: File name of the ledger in a study's output folder.
LEDGER_NAME = "ledger.sqlite"
#: A claim by a process on another host is taken over when its heartbeat is older than this [s].
#: (On the claiming host a process check decides at once.) Heartbeats come every
#: :data:`HEARTBEAT_S`; the lease is long because a solve may hold the interpreter for minutes.
LEASE_S = 3600.0
#: Seconds between heartbeats of a worker's claims.
HEARTBEAT_S = 30.0
#: How long opening the ledger waits for another process's lock before it gives up [s].
BUSY_TIMEOUT_S = 120.0

_SCHEMA = """
CREATE TABLE IF NOT EXISTS cases (
    digest TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    grp TEXT NOT NULL,
    params TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    started REAL,
    ended REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    rank INTEGER,
    emsim_version TEXT,
    folder TEXT,
    metrics TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    at REAL NOT NULL, digest TEXT NOT NULL, event TEXT NOT NULL, run TEXT, host TEXT, pid INTEGER
);
"""
# Columns added after the first ledgers were written (older ledgers gain them on open).
_OWNER_COLUMNS = (("owner_run", "TEXT"), ("owner_host", "TEXT"), ("owner_pid", "INTEGER"),
                  ("owner_start", "INTEGER"), ("heartbeat", "REAL"))  # fmt: skip


def _process_start(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), or None.

    With the pid it identifies one process: a pid reused by a later process has a later start.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()  # after "pid (comm) "; comm may hold spaces
    if fields[0] in ("Z", "X"):  # a zombie has ended: it computes nothing any more
        return -1
    return int(fields[19])  # field 22 of proc(5), the 20th after comm


@dataclass(frozen=True)
class Owner:
    """Who holds a claim: the run, the host, the process id and its start time (clock ticks)."""

    run: str
    host: str
    pid: int
    start: int | None

    @classmethod
    def this_process(cls, run: str | None = None) -> Owner:
        """The owner of claims made by this process (``run``: the run id shared by its ranks)."""
        pid = os.getpid()
        return cls(run or uuid.uuid4().hex, socket.gethostname(), pid, _process_start(pid))

    @property
    def label(self) -> str:
        """``host pid N`` for messages."""
        return f"{self.host} pid {self.pid}"


def owner_alive(host: str | None, pid: int | None, start: int | None, heartbeat: float | None, *,
                now: float | None = None) -> bool:  # fmt: skip
    """Whether the owner of a claim may still be computing it.

    On this host: its process exists, is not a zombie, and (where the start time is known) is
    the same process that claimed. On another host: its heartbeat is younger than :data:`LEASE_S`.
    A claim without an owner (a ledger from before owners were recorded) is not alive.
    """
    if host is None or pid is None:
        return False
    if host != socket.gethostname():
        return heartbeat is not None and (now or time.time()) - heartbeat < LEASE_S
    current = _process_start(pid)
    if current is None:
        if Path("/proc/self/stat").exists():
            return False  # /proc works and the process is gone
        try:  # no /proc (not Linux): the process id alone
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    if current == -1:
        return False
    return start is None or current == start


@dataclass(frozen=True)
class LedgerRow:
    """One case as the ledger holds it (times in seconds since the epoch)."""

    digest: str
    position: int
    group: str
    params: dict[str, Any]
    status: str
    started: float | None
    ended: float | None
    attempts: int
    rank: int | None
    emsim_version: str | None
    folder: str | None
    metrics: dict[str, Any] | None
    owner_host: str | None = None
    owner_pid: int | None = None


def _locked(err: sqlite3.OperationalError) -> bool:
    text = str(err).lower()
    return "locked" in text or "busy" in text


class Ledger:
    """The SQLite ledger of one study folder (one connection per process).

    Args:
        folder: the study folder.
        owner: who this connection's claims belong to (default: this process, a new run id).
    """

    def __init__(self, folder: str | Path, *, owner: Owner | None = None) -> None:
        self.path = Path(folder) / LEDGER_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.owner = owner or Owner.this_process()
        self._beat: threading.Thread | None = None
        #: Cases this connection reset because their owner was gone (at registration or a claim).
        self.taken_over = 0
        self._stop = threading.Event()
        # Two runs opening a new ledger together: switching it to WAL and creating the tables
        # can meet the other's lock in states where SQLite answers "database is locked" without
        # waiting (the busy handler is not called there); retry until BUSY_TIMEOUT_S has passed.
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self.db = self._open()
                break
            except sqlite3.OperationalError as err:
                if not _locked(err) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _open(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.executescript(_SCHEMA)
            have = {r[1] for r in db.execute("PRAGMA table_info(cases)")}
            for name, kind in _OWNER_COLUMNS:
                if name not in have:
                    try:
                        db.execute(f"ALTER TABLE cases ADD COLUMN {name} {kind}")
                    except sqlite3.OperationalError as err:  # another process added it first
                        if "duplicate column" not in str(err):
                            raise
        except BaseException:
            db.close()
            raise
        return db

    def close(self) -> None:
        """Stop the heartbeat and close the connection."""
        self._stop.set()
        if self._beat is not None:
            self._beat.join()
            self._beat = None
        self.db.close()

    def _tx(self, sql: str, args: Sequence[Any] = ()) -> sqlite3.Cursor:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            cur = self.db.execute(sql, args)
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return cur

    def _log(self, digests: Iterable[str], event: str, owner: tuple[str, str, int] | None = None) -> None:
        """Append events (inside the caller's transaction); ``owner``: (run, host, pid), default ours."""
        o = self.owner
        run, host, pid = owner if owner is not None else (o.run, o.host, o.pid)
        now = time.time()
        self.db.executemany("INSERT INTO events (at, digest, event, run, host, pid) VALUES (?, ?, ?, ?, ?, ?)",
                            [(now, d, event, run, host, pid) for d in digests])  # fmt: skip

    def _reset_orphans(self, digests: Collection[str] | None = None) -> list[str]:
        """Inside a transaction: reset ``running`` rows whose owner is gone; their digests."""
        sql = "SELECT digest, owner_run, owner_host, owner_pid, owner_start, heartbeat FROM cases WHERE status = 'running'"
        now = time.time()
        gone = [r for r in self.db.execute(sql) if (digests is None or r[0] in digests)
                and not owner_alive(r[2], r[3], r[4], r[5], now=now)]  # fmt: skip
        for r in gone:
            self.db.execute(
                "UPDATE cases SET status = 'pending', started = NULL, rank = NULL, owner_run = NULL, owner_host = NULL, "
                "owner_pid = NULL, owner_start = NULL, heartbeat = NULL WHERE digest = ?", (r[0],))  # fmt: skip
            self.db.execute("INSERT INTO events (at, digest, event, run, host, pid) VALUES (?, ?, 'reset', ?, ?, ?)",
                            (now, r[0], r[1], r[2], r[3]))  # fmt: skip
        return [r[0] for r in gone]

    # ------------------------------------------------------------------ study setup

    def register(self, rows: Iterable[tuple[str, int, str, dict[str, Any]]], meta: dict[str, Any]) -> int:
        """Add the study's cases (digest, position, group, params) and its description.

        Known digests keep their status; positions and params follow the current study.
        Rows left ``running`` by a run that is gone are reset to ``pending``; rows a live run
        (another process, or another host within its lease) is computing are left to it.

        Returns:
            How many interrupted cases were reset.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for digest, position, group, params in rows:
                self.db.execute(
                    "INSERT INTO cases (digest, position, grp, params) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(digest) DO UPDATE SET position = excluded.position, grp = excluded.grp, "
                    "params = excluded.params",
                    (digest, position, group, json.dumps(params)),
                )
            reset = len(self._reset_orphans())
            self.taken_over += reset
            for key, value in meta.items():
                self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, json.dumps(value)))
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return reset

    def meta(self) -> dict[str, Any]:
        """The study's description as registered (axes, digests in order, name, ...)."""
        return {k: json.loads(v) for k, v in self.db.execute("SELECT key, value FROM meta")}

    # ------------------------------------------------------------------ work

    def claim_group(self, digests: Sequence[str], rank: int) -> tuple[str, list[str]] | None:
        """Atomically claim the first pending geometry group among ``digests`` (marks it running).

        Cases among ``digests`` whose owner is gone are reset to pending first, so a run takes
        over the work of a run that was killed.

        Returns:
            (group key, the group's pending digests in position order), or None when no case
            of the study is pending.
        """
        o = self.owner
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.taken_over += len(self._reset_orphans(set(digests)))
            marks = ",".join("?" * len(digests))
            row = self.db.execute(
                f"SELECT grp FROM cases WHERE status = 'pending' AND digest IN ({marks}) ORDER BY position LIMIT 1",
                list(digests),
            ).fetchone()
            if row is None:
                self.db.execute("COMMIT")
                return None
            group = row[0]
            claimed = [r[0] for r in self.db.execute(
                f"SELECT digest FROM cases WHERE status = 'pending' AND grp = ? AND digest IN ({marks}) "
                "ORDER BY position", [group, *digests])]  # fmt: skip
            now = time.time()
            self.db.executemany(
                "UPDATE cases SET status = 'running', started = ?, rank = ?, attempts = attempts + 1, owner_run = ?, "
                "owner_host = ?, owner_pid = ?, owner_start = ?, heartbeat = ? WHERE digest = ?",
                [(now, rank, o.run, o.host, o.pid, o.start, now, d) for d in claimed],
            )
            self._log(claimed, "claim")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self._start_heartbeat()
        return group, claimed

    def _start_heartbeat(self) -> None:
        """Refresh this owner's claims every HEARTBEAT_S in a thread (its own connection)."""
        if self._beat is not None:
            return

        def beat() -> None:
            db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
            try:
                while not self._stop.wait(HEARTBEAT_S):
                    try:
                        db.execute("UPDATE cases SET heartbeat = ? WHERE status = 'running' AND owner_run = ? "
                                   "AND owner_pid = ?", (time.time(), self.owner.run, self.owner.pid))  # fmt: skip
                    except sqlite3.OperationalError:  # a busy ledger: the next beat will do
                        continue
            finally:
                db.close()

        self._beat = threading.Thread(target=beat, name="emsim-ledger-heartbeat", daemon=True)
        self._beat.start()

    def finish(self, digest: str, metrics: dict[str, Any], folder: str, version: str) -> None:
        """Mark a case done with its metrics (its folder is already in place)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            self.db.execute(
                "UPDATE cases SET status = 'done', ended = ?, metrics = ?, folder = ?, emsim_version = ?, "
                "heartbeat = NULL WHERE digest = ?",
                (time.time(), json.dumps(metrics), folder, version, digest),
            )
            self._log([digest], "finish")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    def release(self, digests: Sequence[str]) -> None:
        """Put this owner's claimed cases back to pending (after an error in their group)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            for d in digests:
                n = self.db.execute(
                    "UPDATE cases SET status = 'pending', started = NULL, rank = NULL, owner_run = NULL, "
                    "owner_host = NULL, owner_pid = NULL, owner_start = NULL, heartbeat = NULL "
                    "WHERE digest = ? AND status = 'running' AND owner_pid = ? AND owner_run = ?",
                    (d, self.owner.pid, self.owner.run),
                ).rowcount
                if n:
                    self._log([d], "release")
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise

    # ------------------------------------------------------------------ queries

    def rows(self, digests: Sequence[str] | None = None) -> list[LedgerRow]:
        """Rows (of the given digests, else all), in study order."""
        sql = "SELECT digest, position, grp, params, status, started, ended, attempts, rank, emsim_version, " \
              "folder, metrics, owner_host, owner_pid FROM cases"  # fmt: skip
        found = {r[0]: r for r in self.db.execute(sql + " ORDER BY position")}
        order = list(digests) if digests is not None else list(found)
        out = []
        for d in order:
            r = found.get(d)
            if r is not None:
                metrics = json.loads(r[11]) if r[11] else None
                out.append(LedgerRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], r[6], r[7], r[8], r[9], r[10],
                                     metrics, r[12], r[13]))  # fmt: skip
        return out

    def counts(self, digests: Sequence[str]) -> dict[str, int]:
        """Number of cases per status among ``digests``."""
        out = {"pending": 0, "running": 0, "done": 0}
        for row in self.rows(digests):
            out[row.status] = out.get(row.status, 0) + 1
        return out

    def running_elsewhere(self, digests: Sequence[str]) -> list[LedgerRow]:
        """Rows among ``digests`` running under another run (a claim just before reset the dead ones)."""
        return [r for r in self.rows(digests) if r.status == "running"
                and self._owner_run(r.digest) != self.owner.run]  # fmt: skip

    def _owner_run(self, digest: str) -> str | None:
        row = self.db.execute("SELECT owner_run FROM cases WHERE digest = ?", (digest,)).fetchone()
        return row[0] if row else None

    def finished_by_run(self, digests: Sequence[str], run: str) -> int:
        """How many of ``digests`` the run ``run`` finished (from the events log)."""
        marks = ",".join("?" * len(digests))
        row = self.db.execute(f"SELECT COUNT(DISTINCT digest) FROM events WHERE event = 'finish' AND run = ? "
                              f"AND digest IN ({marks})", [run, *digests]).fetchone()  # fmt: skip
        return int(row[0])

    def events(self) -> list[tuple[float, str, str, str | None, str | None, int | None]]:
        """The audit trail: (time, digest, event, run, host, pid), oldest first."""
        return list(self.db.execute("SELECT at, digest, event, run, host, pid FROM events ORDER BY rowid"))
