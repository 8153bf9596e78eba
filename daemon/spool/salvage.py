"""Damage found when the spool opens: a torn write-ahead log kept on record, a damaged file
moved aside and every group that still reads saved from it."""

from __future__ import annotations

import logging
import sqlite3
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["SpoolDamage", "check_wal", "salvage"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class SpoolDamage:
    """A damaged spool found at start: where it went and how much was saved from it."""

    moved_to: Path
    salvaged: int
    error: str


def check_wal(path: Path) -> Path | None:
    """Find a torn WAL tail (power cut mid-commit) before SQLite recovers past it.

    SQLite replays the WAL up to the last frame whose checksum holds and drops the rest,
    so the database itself is fine; the torn file is copied aside and reported, so the loss
    of that one uncommitted transaction is on record.
    """
    wal = Path(f"{path}-wal")
    if not wal.exists() or wal.stat().st_size < 32:
        return None
    with wal.open("rb") as header_file:
        header = header_file.read(32)
    page_size = int.from_bytes(header[8:12], "big")
    frame = 24 + page_size
    if page_size < 512 or (wal.stat().st_size - 32) % frame == 0:
        return None
    aside = wal.with_name(f"{wal.name}.torn-{int(time.time())}")
    aside.write_bytes(wal.read_bytes())
    log.error("spool %s: its write-ahead log ends in a torn write (power cut during a "
              "commit); that uncommitted transaction is lost, the rest is kept; copy of "
              "the log in %s", path, aside)
    return aside


def salvage(path: Path, error: str) -> tuple[SpoolDamage, list[tuple[int, int, str]]]:
    """Move the damaged file aside and read back every group that still reads.

    A group is one row, so it comes back whole or not at all. A file from before groups
    (one row per point) is read as groups of one.
    """
    moved = path.with_name(f"{path.name}.damaged-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{path}{suffix}")
        if src.exists():
            src.rename(f"{moved}{suffix}")
    rows: list[tuple[int, int, str]] = []
    try:
        old = sqlite3.connect(f"file:{moved}?mode=ro", uri=True)
        for table, columns in (("point_groups", "points, lines"), ("points", "1, line")):
            rows += _salvage_rows(old, table, columns)
        old.close()
    except sqlite3.DatabaseError:
        pass
    points = sum(n for _, n, _ in rows)
    log.error("spool %s is damaged (%s): moved to %s, %d point(s) saved from it",
              path, error, moved, points)
    return SpoolDamage(moved, points, error), rows


def _salvage_rows(old: sqlite3.Connection, table: str, columns: str
                  ) -> list[tuple[int, int, str]]:
    rows: list[tuple[int, int, str]] = []
    select = f"SELECT id, spooled_ns, {columns} FROM {table}"
    try:
        end = int(old.execute(f"SELECT MAX(id) FROM {table}").fetchone()[0] or 0)
        known_end = True
    except sqlite3.DatabaseError as exc:
        if "no such table" in str(exc):
            return rows  # the other schema
        end, known_end = 10_000_000, False
    last = 0
    while True:
        try:
            chunk = old.execute(f"{select} WHERE id > ? ORDER BY id LIMIT 1000",
                                (last,)).fetchall()
        except sqlite3.DatabaseError:
            # A damaged page: the next 1,000 ids one by one, keeping each group that reads
            # (a group can hold a whole commit, too much to skip in bulk). Not when even the
            # last id is unreadable: ten million single reads of garbage took minutes.
            for row_id in range(last + 1, last + 1001) if known_end else ():
                with suppress(sqlite3.DatabaseError):
                    rows += [(int(ns), int(n), str(text)) for _, ns, n, text in
                             old.execute(f"{select} WHERE id = ?", (row_id,))]
            last += 1000
            if last >= end:
                break
            continue
        if not chunk:
            break
        rows += [(int(ns), int(n), str(text)) for _, ns, n, text in chunk]
        last = int(chunk[-1][0])
    return rows
