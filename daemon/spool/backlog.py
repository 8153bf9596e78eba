"""What the spool still holds: each target's backlog, the points set aside, and the read-only
look `depotwatch spool` takes at a spool file (safe while the daemon runs)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from daemon.spool.receipts import unpack_digests

__all__ = ["Backlog", "SetAside", "SpoolReport", "advance_cursor", "count_backlog", "inspect_spool",
           "summarize_set_aside"]


@dataclass(frozen=True, slots=True)
class Backlog:
    """What one target still has to write."""

    target: str
    points: int
    oldest_ns: int | None


@dataclass(frozen=True, slots=True)
class SetAside:
    """Points a server refused, grouped by target and reason."""

    target: str
    reason: str
    points: int
    last_ns: int


def summarize_set_aside(db: sqlite3.Connection) -> list[SetAside]:
    """What servers refused, per target and reason, oldest last refusal first."""
    rows = db.execute(
        "SELECT target, reason, COUNT(*), MAX(at_ns) FROM set_aside "
        "GROUP BY target, reason ORDER BY MAX(at_ns)").fetchall()
    return [SetAside(str(t), str(r), int(n), int(at)) for t, r, n, at in rows]


@dataclass(frozen=True, slots=True)
class SpoolReport:
    """What `depotwatch spool` shows: size, backlog per target, what was set aside."""

    path: Path
    bytes: int
    backlog: list[Backlog]
    set_aside: list[SetAside]
    damaged_files: list[Path]
    receipts: int


def inspect_spool(path: Path) -> SpoolReport | None:
    """Read a spool without changing it (safe while the daemon runs); None if there is none."""
    if not path.exists():
        return None
    size = sum(Path(f"{path}{sfx}").stat().st_size for sfx in ("", "-wal")
               if Path(f"{path}{sfx}").exists())
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        targets = [str(t) for (t,) in db.execute("SELECT target FROM cursors ORDER BY target")]
        backlog: list[Backlog] = []
        tables = {str(name) for (name,) in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        # A spool from before groups (one row per point) until the daemon next opens it.
        table, count_expr = (("point_groups", "COALESCE(SUM(points), 0)")
                             if "point_groups" in tables else ("points", "COUNT(*)"))
        for target in targets:
            count, oldest = db.execute(
                f"SELECT {count_expr}, MIN(spooled_ns) FROM {table} WHERE id > "
                "(SELECT last_id FROM cursors WHERE target = ?)", (target,)).fetchone()
            backlog.append(Backlog(target, int(count), oldest))
        aside = summarize_set_aside(db)
        receipts = 0
        if "receipt_groups" in tables:
            for taken, released in db.execute("SELECT taken, released FROM receipt_groups"):
                receipts += len(unpack_digests(taken)) - len(unpack_digests(released))
        elif "receipts" in tables:
            receipts = int(db.execute("SELECT COUNT(*) FROM receipts").fetchone()[0])
    finally:
        db.close()
    damaged = sorted(p for p in path.parent.glob(f"{path.name}.damaged-*")
                     if not p.name.endswith(("-wal", "-shm")))
    return SpoolReport(path, size, backlog, aside, damaged, receipts)


def count_backlog(db: sqlite3.Connection, targets: Sequence[str]) -> list[Backlog]:
    """Per target: points committed and not yet written, and when the oldest was spooled."""
    out: list[Backlog] = []
    for target in targets:
        count, oldest = db.execute(
            "SELECT COALESCE(SUM(points), 0), MIN(spooled_ns) FROM point_groups WHERE id > "
            "(SELECT last_id FROM cursors WHERE target = ?)", (target,)).fetchone()
        out.append(Backlog(target, int(count), oldest))
    return out


def advance_cursor(db: sqlite3.Connection, targets: Sequence[str], target: str, last_id: int,
                   reason: str | None, lines: list[str]) -> None:
    """`target` wrote up to `last_id` (a refused batch kept aside with `reason`); groups every
    target has passed are deleted. Runs inside the caller's transaction."""
    if reason is not None:
        now = time.time_ns()
        db.executemany("INSERT INTO set_aside (target, at_ns, reason, line) "
                       "VALUES (?, ?, ?, ?)", [(target, now, reason, t) for t in lines])
    db.execute("UPDATE cursors SET last_id = ? WHERE target = ?", (last_id, target))
    marks = ",".join("?" * len(targets))
    db.execute("DELETE FROM point_groups WHERE id <= (SELECT MIN(last_id) FROM "
               f"cursors WHERE target IN ({marks}))", tuple(targets))
