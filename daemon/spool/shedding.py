"""What the spool gives up first when it is full: climate and health points, oldest first.

Security events (door states, badge decisions, portal passages, movement-order counts), alert
transitions and the daily climate record go last: they are few, and they are what an inquiry
into a loss asks for. Alarms never depend on any of this: the rules judge every reading and the
notifiers are handed every alert before the spool sees a point.
"""

from __future__ import annotations

import sqlite3
from collections import deque

__all__ = ["BULK_PREFIXES", "MemoryHold", "degradation", "split_bulk", "thin_oldest"]

# Line-protocol lines that begin with these are the bulk: many, and each one worth little.
BULK_PREFIXES = ("climate,", "climate ", "gateway,", "gateway ")
# Rows thinned in one pass when the spool is full: enough to free pages for a commit or two.
_THIN_ROWS = 64


def split_bulk(lines: list[str]) -> tuple[list[str], int]:
    """The lines to keep (security and records) and how many bulk lines were left out."""
    kept = [text for text in lines if not text.startswith(BULK_PREFIXES)]
    return kept, len(lines) - len(kept)


def thin_oldest(db: sqlite3.Connection) -> int:
    """Drop the bulk lines of the oldest point groups (rows left empty are deleted); returns
    how many lines were dropped. Runs inside the caller's transaction."""
    shed = 0
    rows = db.execute("SELECT id, lines FROM point_groups WHERE thinned = 0 ORDER BY id "
                      "LIMIT ?", (_THIN_ROWS,)).fetchall()
    for row_id, text in rows:
        kept, dropped = split_bulk(text.split("\n"))
        shed += dropped
        if not kept:
            db.execute("DELETE FROM point_groups WHERE id = ?", (row_id,))
        else:
            db.execute("UPDATE point_groups SET lines = ?, points = ?, thinned = 1 WHERE id = ?",
                       ("\n".join(kept), len(kept), row_id))
    return shed


class MemoryHold:
    """Security lines the disk would not take, held until it does; bounded, oldest dropped."""

    def __init__(self, max_lines: int = 100_000) -> None:
        self.lines: deque[str] = deque(maxlen=max_lines)
        self.dropped = 0

    def add(self, lines: list[str]) -> None:
        """Hold these lines; past the bound the oldest are lost (and counted)."""
        overflow = len(self.lines) + len(lines) - (self.lines.maxlen or 0)
        if overflow > 0:
            self.dropped += overflow
        self.lines.extend(lines)

    def take(self) -> list[str]:
        """Everything held, oldest first, to be committed again."""
        lines = list(self.lines)
        self.lines.clear()
        return lines


def degradation(in_memory: bool, held: int, fill_pct: float, shed: int) -> str | None:
    """Why storage is degraded now (the storage_degraded fault's text), or None."""
    if in_memory:
        return f"spool file unavailable: points kept in memory ({fill_pct:.0f} % full)"
    if held:
        return f"disk full: {held} security points held in memory"
    if fill_pct >= 100.0:
        return (f"spool full ({fill_pct:.0f} % of its quota, or of the disk less its "
                f"reserve): {shed} climate and health points shed so far")
    return None
