"""The records store: roster, items and orders in SQLite in the state dir, every change versioned.

The spool's durability: WAL with `synchronous=FULL`, so a change is on disk when `write`
returns and a power cut loses at most the transaction being written (SQLite rolls it back on
open). Each record carries a version; a write names the version it was based on, and a record
changed since is refused (`StaleRecord`: the second writer reloads), so concurrent edits never
lose a change. Every change is also a row of `changes` (who, when, before, after), the history
the roster and order exports read.

One connection, used from one thread at a time: the caller serialises (`daemon.book.desk`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from daemon.book.entries import KINDS, Entry, RecordKind, Records
from daemon.statefile import set_aside
from daemon.vocabulary.errors import DepotwatchError

__all__ = ["RECORDS_FILE", "Change", "Parked", "RecordsError", "RecordsStore", "StaleRecord",
           "Write"]

log = logging.getLogger(__name__)

RECORDS_FILE = "records.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS roster (name TEXT PRIMARY KEY, badge TEXT NOT NULL,
    zones TEXT NOT NULL, valid_from_ns INTEGER, valid_until_ns INTEGER,
    escort_only INTEGER NOT NULL, duress_code TEXT, state TEXT NOT NULL,
    version INTEGER NOT NULL);
-- Items keyed by EPC; `state` is the item's place in its lifecycle (rules.depot.ItemState).
CREATE TABLE IF NOT EXISTS items (epc TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL,
    lot TEXT NOT NULL, storehouse TEXT NOT NULL, state TEXT NOT NULL DEFAULT 'on_book',
    version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS movement_orders (id TEXT PRIMARY KEY, portal TEXT NOT NULL,
    epcs TEXT NOT NULL, valid_from_ns INTEGER NOT NULL, valid_until_ns INTEGER NOT NULL,
    state TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS work_orders (id TEXT PRIMARY KEY, door TEXT NOT NULL,
    valid_from_ns INTEGER NOT NULL, valid_until_ns INTEGER NOT NULL, state TEXT NOT NULL,
    version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS key_issues (id TEXT PRIMARY KEY, epc TEXT NOT NULL,
    person TEXT NOT NULL, issued_ns INTEGER NOT NULL, due_ns INTEGER NOT NULL,
    returned_ns INTEGER, state TEXT NOT NULL, version INTEGER NOT NULL);
-- The history: one row per change; before and after as the audit trail shows them.
CREATE TABLE IF NOT EXISTS changes (seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns INTEGER NOT NULL, actor TEXT NOT NULL, approved_by TEXT NOT NULL, kind TEXT NOT NULL,
    key TEXT NOT NULL, version INTEGER NOT NULL, before TEXT, after TEXT);
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (kind, at_ns);
-- An item's steps (keys `<epc>@<time>`) without reading every step; only steps, so a register
-- import pays nothing for it.
CREATE INDEX IF NOT EXISTS changes_of_steps ON changes (key) WHERE kind = 'lifecycle';
-- Changes waiting for a second officer (the two-person rule on the records themselves).
CREATE TABLE IF NOT EXISTS parked (id INTEGER PRIMARY KEY AUTOINCREMENT, at_ns INTEGER NOT NULL,
    actor TEXT NOT NULL, kind TEXT NOT NULL, key TEXT NOT NULL, expected INTEGER,
    row TEXT NOT NULL, reason TEXT NOT NULL);
-- Each step of an item's life (issue 27) and each consignment received.
CREATE TABLE IF NOT EXISTS lifecycle (id TEXT PRIMARY KEY, epc TEXT NOT NULL,
    state TEXT NOT NULL, storehouse TEXT NOT NULL, document TEXT NOT NULL, note TEXT NOT NULL,
    at_ns INTEGER NOT NULL, version INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS lifecycle_by_item ON lifecycle (epc, at_ns);
CREATE TABLE IF NOT EXISTS consignments (id TEXT PRIMARY KEY, exporting_state TEXT NOT NULL,
    reference TEXT NOT NULL, storehouse TEXT NOT NULL, received_ns INTEGER NOT NULL,
    items TEXT NOT NULL, state TEXT NOT NULL, version INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
-- Each count of a storehouse against the book (rules/reconciliation.py), for the auditors.
CREATE TABLE IF NOT EXISTS counts (at_ns INTEGER NOT NULL, storehouse TEXT NOT NULL,
    by TEXT NOT NULL, fields TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS counts_by_time ON counts (at_ns);
"""


class RecordsError(DepotwatchError):
    """The records store cannot be opened or written, or a change does not fit it."""


class StaleRecord(RecordsError):
    """The record changed since the writer read it: reload and change it again."""


@dataclass(frozen=True, slots=True)
class Write:
    """One record to write: `expected` is the version it was based on, None for a new one."""

    kind: str
    entry: Entry
    expected: int | None


@dataclass(frozen=True, slots=True)
class Change:
    """One change made: the record's new version, before and after as the audit shows them."""

    seq: int
    at_ns: int
    actor: str
    approved_by: str
    kind: str
    key: str
    version: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Parked:
    """A change that waits for a second officer's approval."""

    id: int
    at_ns: int
    actor: str
    kind: str
    key: str
    expected: int | None
    entry: Entry
    reason: str


class RecordsStore:
    """The book on disk."""

    def __init__(self, path: Path) -> None:
        self.path = path
        # What was lost when the file could not be read (set aside, the book started again).
        self.damage: str | None = None
        try:
            self._open(path)
        except sqlite3.DatabaseError as exc:
            aside = set_aside(path)
            self.damage = (f"records store unreadable ({exc}): set aside as {aside.name}; the "
                           "book starts again from the config's sections")
            log.error("%s", self.damage)
            self._open(path)

    @property
    def damaged(self) -> tuple[Path, str | None]:
        """The file and what was lost when it was opened (None: nothing)."""
        return self.path, self.damage

    def _open(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            # Badge numbers and duress codes are in it, as in the config: the owner only (its
            # -wal and -shm files take the same mode from SQLite).
            os.close(os.open(path, os.O_CREAT | os.O_WRONLY, 0o600))
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA busy_timeout=5000")
            self._db.executescript(_SCHEMA)
            checked = self._db.execute("PRAGMA quick_check").fetchone()
            if checked is None or checked[0] != "ok":
                raise sqlite3.DatabaseError(f"quick_check: {checked[0] if checked else '?'}")
            # Counts are kept from the event loop while a change may be writing on a worker
            # thread: their own connection keeps them out of that change's transaction.
            self._counts_db = sqlite3.connect(path, isolation_level=None,
                                              check_same_thread=False)
            self._counts_db.execute("PRAGMA synchronous=FULL")
            self._counts_db.execute("PRAGMA busy_timeout=5000")
        except sqlite3.DatabaseError:
            with contextlib.suppress(AttributeError):
                self._db.close()
            raise
        except (sqlite3.Error, OSError) as exc:
            raise RecordsError(f"records store {path}: cannot open: {exc}") from exc

    def close(self) -> None:
        """Close the database."""
        self._db.close()
        self._counts_db.close()

    @property
    def seeded(self) -> bool:
        """Whether the config's sections were ever imported (the first start's seed)."""
        return self._db.execute("SELECT 1 FROM meta WHERE name = 'seeded'").fetchone() is not None

    def load(self) -> Records:
        """Every record, as one snapshot; of the lifecycle, each item's newest step (the
        others are read from here: `entry`, `steps_of`, `history`)."""
        tables = {name: {row[0]: kind.from_row(row) for row in self._rows(kind)}
                  for name, kind in KINDS.items()}
        return Records(**tables)

    def _rows(self, kind: RecordKind) -> Iterator[tuple[Any, ...]]:
        columns = ", ".join(kind.columns)
        if kind.table == "lifecycle":
            # A year of pallets through a portal is a step per item each way: in memory that
            # grew without bound (issue 29), so the book holds the newest step of each item.
            yield from self._db.execute(
                f"SELECT {columns} FROM lifecycle AS step WHERE at_ns = (SELECT MAX(at_ns) "
                "FROM lifecycle WHERE epc = step.epc) GROUP BY epc")
            return
        yield from self._db.execute(f"SELECT {columns} FROM {kind.table}")

    def entry(self, kind: str, key: str) -> Any | None:
        """One record as the store has it (an item's older lifecycle step too), or None."""
        spec = KINDS[kind]
        row = self._db.execute(f"SELECT {', '.join(spec.columns)} FROM {spec.table} "
                               f"WHERE {spec.key} = ?", (key,)).fetchone()
        return None if row is None else spec.from_row(tuple(row))

    def version(self, kind: str, key: str) -> int | None:
        """A record's version, None when it is not on the book."""
        spec = KINDS[kind]
        row = self._db.execute(f"SELECT version FROM {spec.table} WHERE {spec.key} = ?",
                               (key,)).fetchone()
        return None if row is None else int(row[0])

    def versions(self, kind: str) -> dict[str, int]:
        """Every record's version of one kind."""
        spec = KINDS[kind]
        return {str(k): int(v) for k, v in self._db.execute(
            f"SELECT {spec.key}, version FROM {spec.table}")}

    def write(self, writes: Sequence[Write], actor: str, at_ns: int, *,
              approved_by: str = "", seed: bool = False) -> list[Change]:
        """Apply `writes` in one transaction, all or none; raises StaleRecord, changing nothing,
        if any record is not at the version its write expected."""
        changes: list[Change] = []
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for write in writes:
                    changes.append(self._write(write, actor, at_ns, approved_by))
                if seed:
                    self._db.execute("INSERT OR REPLACE INTO meta VALUES ('seeded', ?)",
                                     (str(at_ns),))
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise RecordsError(f"records store {self.path}: cannot write: {exc}") from exc
        return changes

    def _write(self, write: Write, actor: str, at_ns: int, approved_by: str) -> Change:
        spec = KINDS[write.kind]
        key = str(getattr(write.entry, spec.key))
        names = ", ".join(spec.columns)
        row = self._db.execute(f"SELECT {names}, version FROM {spec.table} "
                               f"WHERE {spec.key} = ?", (key,)).fetchone()
        current = None if row is None else int(row[-1])
        if current != write.expected:
            what = "is already on the book" if write.expected is None else (
                "is no longer on the book" if current is None
                else f"changed since (version {current}, not {write.expected})")
            raise StaleRecord(f"{write.kind} {key!r} {what}: reload it and change it again")
        before = None if row is None else spec.public(spec.from_row(tuple(row[:-1])))
        after = spec.public(write.entry)
        version = (current or 0) + 1
        marks = ", ".join("?" * (len(spec.columns) + 1))
        self._db.execute(f"INSERT OR REPLACE INTO {spec.table} ({names}, version) "
                         f"VALUES ({marks})", (*spec.to_row(write.entry), version))
        seq = self._db.execute(
            "INSERT INTO changes (at_ns, actor, approved_by, kind, key, version, before, after) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (at_ns, actor, approved_by, write.kind, key, version,
             None if before is None else json.dumps(before), json.dumps(after))).lastrowid
        return Change(int(seq or 0), at_ns, actor, approved_by, write.kind, key, version,
                      before, after)

    def history(self, kind: str, since_ns: int = 0,
                until_ns: int = 2**63 - 1) -> list[Change]:
        """The changes of one kind in a time range, oldest first."""
        rows = self._db.execute(
            "SELECT seq, at_ns, actor, approved_by, kind, key, version, before, after "
            "FROM changes WHERE kind = ? AND at_ns >= ? AND at_ns < ? ORDER BY seq",
            (kind, since_ns, until_ns))
        return [Change(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                       None if r[7] is None else json.loads(r[7]),
                       None if r[8] is None else json.loads(r[8])) for r in rows]

    def steps_of(self, epc: str) -> list[Change]:
        """The changes of an item's lifecycle steps (keys `<epc>@<time>`), oldest first."""
        rows = self._db.execute(
            "SELECT seq, at_ns, actor, approved_by, kind, key, version, before, after "
            "FROM changes INDEXED BY changes_of_steps "
            "WHERE kind = 'lifecycle' AND key >= ? AND key < ? ORDER BY seq",
            (f"{epc}@", f"{epc}A"))  # '@' sorts just before 'A'
        return [Change(r[0], r[1], r[2], r[3], r[4], r[5], r[6],
                       None if r[7] is None else json.loads(r[7]),
                       None if r[8] is None else json.loads(r[8])) for r in rows]

    def keep_count(self, at_ns: int, storehouse: str, by: str,
                   fields: dict[str, Any]) -> None:
        """Keep one storehouse count's result."""
        try:
            self._counts_db.execute("INSERT INTO counts VALUES (?, ?, ?, ?)",
                             (at_ns, storehouse, by, json.dumps(fields, sort_keys=True)))
        except sqlite3.Error as exc:
            raise RecordsError(f"records store {self.path}: cannot write: {exc}") from exc

    def counts(self, since_ns: int = 0,
               until_ns: int = 2**63 - 1) -> list[tuple[int, str, str, dict[str, Any]]]:
        """Counts in a time range, oldest first: (at, storehouse, by, fields)."""
        rows = self._db.execute("SELECT at_ns, storehouse, by, fields FROM counts "
                                "WHERE at_ns >= ? AND at_ns < ? ORDER BY at_ns",
                                (since_ns, until_ns))
        return [(int(r[0]), str(r[1]), str(r[2]), json.loads(r[3])) for r in rows]

    def park(self, write: Write, actor: str, at_ns: int, reason: str) -> Parked:
        """Keep a change until a second officer approves it."""
        spec = KINDS[write.kind]
        row, key = json.dumps(list(spec.to_row(write.entry))), str(getattr(write.entry, spec.key))
        try:
            cursor = self._db.execute(
                "INSERT INTO parked (at_ns, actor, kind, key, expected, row, reason) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (at_ns, actor, write.kind, key, write.expected, row, reason))
        except sqlite3.Error as exc:
            raise RecordsError(f"records store {self.path}: cannot write: {exc}") from exc
        return Parked(int(cursor.lastrowid or 0), at_ns, actor, write.kind, key,
                      write.expected, write.entry, reason)

    def parked(self) -> list[Parked]:
        """Changes waiting for approval, oldest first."""
        rows = self._db.execute("SELECT id, at_ns, actor, kind, key, expected, row, reason "
                                "FROM parked ORDER BY id")
        return [Parked(r[0], r[1], r[2], r[3], r[4], r[5],
                       KINDS[r[3]].from_row(tuple(json.loads(r[6]))), r[7]) for r in rows]

    def unpark(self, parked_id: int) -> None:
        """Forget a parked change (approved or refused)."""
        self._db.execute("DELETE FROM parked WHERE id = ?", (parked_id,))

