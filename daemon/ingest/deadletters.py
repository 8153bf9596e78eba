"""Malformed payloads: counted per source, logged at most once a minute, kept for inspection."""

from __future__ import annotations

import logging
import sqlite3
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from daemon.ingest.settings import DeadLetterConfig
from daemon.statefile import set_aside
from daemon.vocabulary.secrets import redact_payload
from daemon.vocabulary.sources import SOURCES_KEPT, SourceCounts

__all__ = ["DeadLetter", "DeadLetterStore"]

log = logging.getLogger(__name__)

# New sources that get a line of their own per minute; the rest share one summary line.
_NEW_SOURCES_LOGGED = 20

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deadletter (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns INTEGER NOT NULL,
    source TEXT NOT NULL,
    reason TEXT NOT NULL,
    size INTEGER NOT NULL,
    payload BLOB NOT NULL
)
"""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """One rejected payload as kept on disk; `size` is the original length before any cut."""

    id: int
    at_ns: int
    source: str
    reason: str
    size: int
    payload: bytes


def _open(path: Path) -> sqlite3.Connection:
    """The database, checked: SQLite reads a damaged file lazily, so it is made to read every
    page now (the table is bounded by `max_entries`), not fail at the first bad payload."""
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute(_SCHEMA)
        verdict = db.execute("PRAGMA quick_check").fetchone()
        if verdict is None or verdict[0] != "ok":
            raise sqlite3.DatabaseError(f"quick_check: {verdict[0] if verdict else 'no answer'}")
        columns = [row[1] for row in db.execute("PRAGMA table_info(deadletter)")]
        if columns != ["id", "at_ns", "source", "reason", "size", "payload"]:
            raise sqlite3.DatabaseError(f"table deadletter has columns {columns}")
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db


class DeadLetterStore:
    """SQLite table of rejected payloads, bounded by entry count (oldest go first). A damaged
    database is set aside at open (`damage` says what was lost) unless not `repair`: then
    sqlite3.DatabaseError."""

    def __init__(self, path: Path, config: DeadLetterConfig, *, repair: bool = True) -> None:
        self.path = path
        self._config = config
        self.counts = SourceCounts()
        self._last_logged: dict[str, float] = {}
        self._suppressed: Counter[str] = Counter()
        # New sources logged in the current minute, and those left unlogged in it.
        self._window_started = time.monotonic()
        self._new_logged = 0
        self._unlogged_sources = 0
        # What was lost, when the database found at start could not be read (the fault alert).
        self.damage: str | None = None
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = _open(path)
        except sqlite3.DatabaseError as exc:
            if not repair:  # a reader (the CLI) leaves that to the daemon
                raise
            # Dead letters are evidence, not state: keep the damaged file, start a new one.
            aside = set_aside(path)
            self.damage = (f"dead-letter database unreadable ({exc}): the rejected payloads "
                           f"kept so far are lost; set aside as {aside.name}")
            log.error("dead letters %s: damaged (%s); set aside as %s, starting a new one",
                      path, exc, aside)
            self._db = _open(path)
        # Payload bytes kept, against the budget (`deadletters.max_bytes`).
        self._bytes = self._kept_bytes()
        # Dead letters the disk would not take.
        self.unkept = 0

    def keep(self, source: str, reason: str, payload: bytes, at_ns: int) -> None:
        """Count, store and (rate-limited) log one rejected payload; a disk that refuses it
        loses the copy (counted in `unkept`), never the daemon."""
        self.counts.count(source)
        # Kept whole for inspection, except a token or password in it (issue 25): redacted
        # before the cut, which could otherwise leave a secret's head unrecognised.
        kept = redact_payload(payload)[: self._config.max_payload_bytes]
        try:
            self._store(source, reason, payload, kept, at_ns)
        except sqlite3.Error as exc:
            self.unkept += 1
            if self.unkept == 1 or self.unkept % 1000 == 0:
                log.error("dead letter from %s not kept: %s (%d lost so far)", source, exc,
                          self.unkept)
        self._log(source, reason)

    def _store(self, source: str, reason: str, payload: bytes, kept: bytes, at_ns: int) -> None:
        # Small inserts on a local WAL database take microseconds; bad input is the rare path.
        cursor = self._db.execute(
            "INSERT INTO deadletter (at_ns, source, reason, size, payload) VALUES (?,?,?,?,?)",
            (at_ns, source, reason, len(payload), kept),
        )
        self._bytes += len(kept)
        row_id = cursor.lastrowid or 0
        if row_id % 100 == 0:
            self._db.execute("DELETE FROM deadletter WHERE id <= ?",
                             (row_id - self._config.max_entries,))
            self._bytes = self._kept_bytes()
        if self._bytes > self._config.max_bytes:
            # Past the budget: the oldest tenth goes (entries are up to 1 MiB each).
            self._db.execute("DELETE FROM deadletter WHERE id IN (SELECT id FROM deadletter "
                             "ORDER BY id LIMIT MAX(1, (SELECT COUNT(*) FROM deadletter) / 10))")
            self._bytes = self._kept_bytes()

    def _kept_bytes(self) -> int:
        return int(self._db.execute("SELECT COALESCE(SUM(LENGTH(payload)), 0) FROM deadletter"
                                    ).fetchone()[0])

    def _log(self, source: str, reason: str) -> None:
        now = time.monotonic()
        last = self._last_logged.get(source)
        if last is not None and now - last < self._config.log_interval_s:
            self._suppressed[source] += 1
            return
        if last is None and not self._new_source_logged(now):
            return
        more = self._suppressed.pop(source, 0)
        extra = f" ({more} more since the last report)" if more else ""
        log.warning("rejected payload from %s: %s; kept as dead letter, %d so far%s",
                    source, reason, self.counts.get(source, 0), extra, extra={"topic": source})
        self._last_logged[source] = now
        if len(self._last_logged) > SOURCES_KEPT:  # forget the longest-quiet source
            quiet = next(iter(self._last_logged))
            del self._last_logged[quiet]
            self._suppressed.pop(quiet, None)

    def _new_source_logged(self, now: float) -> bool:
        """Whether a source not seen lately may have its line: at most `_NEW_SOURCES_LOGGED`
        a minute, then one summary line a minute for the rest (a flood of new topics)."""
        if now - self._window_started >= 60.0:
            if self._unlogged_sources:
                log.warning("rejected payloads from %d more new source(s) in the last minute "
                            "(not logged one by one; `depotwatch deadletters` lists them)",
                            self._unlogged_sources)
            self._window_started, self._new_logged, self._unlogged_sources = now, 0, 0
        if self._new_logged < _NEW_SOURCES_LOGGED:
            self._new_logged += 1
            return True
        self._unlogged_sources += 1
        return False

    def entries(self, limit: int = 50) -> list[DeadLetter]:
        """The newest entries first."""
        rows = self._db.execute(
            "SELECT id, at_ns, source, reason, size, payload FROM deadletter "
            "ORDER BY id DESC LIMIT ?", (limit,),
        ).fetchall()
        return [DeadLetter(*row) for row in rows]

    def total(self) -> int:
        """How many entries are kept."""
        return int(self._db.execute("SELECT COUNT(*) FROM deadletter").fetchone()[0])

    def close(self) -> None:
        """Close the database."""
        self._db.close()
