"""The study ledger, ``DIR/ledger.sqlite``: one row per case digest, its status and metrics.

Statuses: ``pending`` -> ``running`` -> ``done``. Every state change is its own committed
transaction (SQLite, write-ahead log, ``synchronous = FULL``), so a kill at any moment leaves
either the old or the new state. A ``running`` row found when a study starts was interrupted:
it is reset to ``pending`` and redone (its folder is rewritten atomically). A ``done`` row is
never recomputed. Ranks claim work with an immediate transaction, so under MPI each geometry
group is claimed by exactly one rank (dynamic scheduling, no master rank).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["LEDGER_NAME", "Ledger", "LedgerRow"]

#: File name of the ledger in a study's output folder.
LEDGER_NAME = "ledger.sqlite"

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
"""


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


class Ledger:
    """The SQLite ledger of one study folder (one connection per process)."""

    def __init__(self, folder: str | Path) -> None:
        self.path = Path(folder) / LEDGER_NAME
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(self.path, timeout=120.0, isolation_level=None)
        self.db.execute("PRAGMA busy_timeout = 120000")
        self.db.execute("PRAGMA journal_mode = WAL")
        self.db.execute("PRAGMA synchronous = FULL")
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the connection."""
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

    # ------------------------------------------------------------------ study setup

    def register(self, rows: Iterable[tuple[str, int, str, dict[str, Any]]], meta: dict[str, Any]) -> int:
        """Add the study's cases (digest, position, group, params) and its description.

        Known digests keep their status; positions and params follow the current study.
        Rows left ``running`` by an interrupted run are reset to ``pending``.

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
            reset = self.db.execute(
                "UPDATE cases SET status = 'pending', started = NULL, rank = NULL WHERE status = 'running'"
            ).rowcount
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

        Returns:
            (group key, the group's pending digests in position order), or None when no case
            of the study is pending.
        """
        self.db.execute("BEGIN IMMEDIATE")
        try:
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
                "UPDATE cases SET status = 'running', started = ?, rank = ?, attempts = attempts + 1 WHERE digest = ?",
                [(now, rank, d) for d in claimed],
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return group, claimed

    def finish(self, digest: str, metrics: dict[str, Any], folder: str, version: str) -> None:
        """Mark a case done with its metrics (its folder is already in place)."""
        self._tx(
            "UPDATE cases SET status = 'done', ended = ?, metrics = ?, folder = ?, emsim_version = ? WHERE digest = ?",
            (time.time(), json.dumps(metrics), folder, version, digest),
        )

    def release(self, digests: Sequence[str]) -> None:
        """Put claimed cases back to pending (after an error in their group)."""
        self.db.execute("BEGIN IMMEDIATE")
        self.db.executemany(
            "UPDATE cases SET status = 'pending', started = NULL, rank = NULL WHERE digest = ? AND status = 'running'",
            [(d,) for d in digests],
        )
        self.db.execute("COMMIT")

    # ------------------------------------------------------------------ queries

    def rows(self, digests: Sequence[str] | None = None) -> list[LedgerRow]:
        """Rows (of the given digests, else all), in study order."""
        sql = "SELECT digest, position, grp, params, status, started, ended, attempts, rank, emsim_version, " \
              "folder, metrics FROM cases"  # fmt: skip
        found = {r[0]: r for r in self.db.execute(sql + " ORDER BY position")}
        order = list(digests) if digests is not None else list(found)
        out = []
        for d in order:
            r = found.get(d)
            if r is not None:
                metrics = json.loads(r[11]) if r[11] else None
                out.append(LedgerRow(r[0], r[1], r[2], json.loads(r[3]), *r[4:11], metrics))
        return out

    def counts(self, digests: Sequence[str]) -> dict[str, int]:
        """Number of cases per status among ``digests``."""
        out = {"pending": 0, "running": 0, "done": 0}
        for row in self.rows(digests):
            out[row.status] = out.get(row.status, 0) + 1
        return out
