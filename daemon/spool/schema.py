"""The spool's tables, and the migrations that bring spools written by older versions to them."""

from __future__ import annotations

import sqlite3

from daemon.spool.receipts import pack_digests

__all__ = ["SCHEMA", "migrate"]

SCHEMA = """
-- One row per commit: `lines` is its points' line protocol joined by newlines; `thinned`
-- once a full spool has dropped its climate and health lines (daemon/spool/shedding.py).
CREATE TABLE IF NOT EXISTS point_groups (id INTEGER PRIMARY KEY AUTOINCREMENT,
    spooled_ns INTEGER NOT NULL, points INTEGER NOT NULL, lines TEXT NOT NULL,
    thinned INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS cursors (target TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
-- One row per commit that took messages: a receipt per message in `taken` (identical messages,
-- an unchanged heartbeat, each have their own), those acknowledged since appended to
-- `released`; the row goes once all are. Digests are packed, each after a length byte.
CREATE TABLE IF NOT EXISTS receipt_groups (id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns INTEGER NOT NULL, taken BLOB NOT NULL, released BLOB NOT NULL DEFAULT x'');
CREATE TABLE IF NOT EXISTS set_aside (id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL, at_ns INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL);
"""


def migrate(db: sqlite3.Connection) -> None:
    """Bring the tables of an older spool to `SCHEMA` (which must already be applied)."""
    _migrate_receipts(db)
    _migrate_points(db)
    _migrate_thinned(db)


def _migrate_thinned(db: sqlite3.Connection) -> None:
    """Spools written before shedding have no `thinned` column: none of their rows is."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(point_groups)")}
    if "thinned" not in columns:
        db.execute("ALTER TABLE point_groups ADD COLUMN thinned INTEGER NOT NULL DEFAULT 0")
    # Released digests stored as TEXT by `released || ?` (versions before the CAST): the same
    # bytes, as the BLOB they should be; reading them as text stopped every start.
    db.execute("UPDATE receipt_groups SET released = CAST(released AS BLOB) "
               "WHERE typeof(released) = 'text'")


def _migrate_receipts(db: sqlite3.Connection) -> None:
    """Spools written before receipt groups kept a row per receipt (and before receipts
    were counted, one per digest): those become one group per receipt time."""
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'receipts'"
                  ).fetchone() is None:
        return
    by_time: dict[int, list[bytes]] = {}
    for digest, at_ns in db.execute("SELECT digest, at_ns FROM receipts ORDER BY rowid"):
        by_time.setdefault(int(at_ns), []).append(bytes(digest))
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany("INSERT INTO receipt_groups (at_ns, taken) VALUES (?, ?)",
                       [(at, pack_digests(digests)) for at, digests in sorted(by_time.items())])
        db.execute("DROP TABLE receipts")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


def _migrate_points(db: sqlite3.Connection) -> None:
    """Spools written before groups held one row per point: each becomes a group of one.

    Ids are kept, so every target's cursor still points where it did.
    """
    if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'points'"
                  ).fetchone() is None:
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("INSERT INTO point_groups (id, spooled_ns, points, lines) "
                   "SELECT id, spooled_ns, 1, line FROM points")
        # Never hand out an id a cursor has passed: written rows are gone from `points`,
        # but their ids are in its sequence and in the cursors.
        seq = db.execute(
            "SELECT MAX(COALESCE((SELECT MAX(seq) FROM sqlite_sequence WHERE name IN "
            "('points', 'point_groups')), 0), COALESCE((SELECT MAX(last_id) FROM cursors), "
            "0))").fetchone()[0]
        db.execute("DELETE FROM sqlite_sequence WHERE name IN ('points', 'point_groups')")
        db.execute("INSERT INTO sqlite_sequence (name, seq) VALUES ('point_groups', ?)",
                   (seq,))
        db.execute("DROP TABLE points")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")
