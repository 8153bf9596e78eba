"""The spool: every point on the gateway's disk before its source is acknowledged.

SQLite in WAL mode with `synchronous=FULL`: a commit is on disk when it returns, and a power cut
loses at most the transaction being written, which SQLite rolls back on open. With
`spool: {fsync: false}` it runs `synchronous=NORMAL`: commits skip the fsync (the WAL is synced
at checkpoints), which survives a killed daemon but not a power cut: that can take the last
commits, whose messages the broker already considers delivered. Appends are
grouped: whatever arrives while one transaction commits goes into the next, so the fsync rate
stays flat while the reading rate grows. A commit's points are one row (their lines joined by
newlines, with their count): a row per point cost ~9 µs per reading in inserts, reads and
deletes on the spool's thread (bench/results/depot-hotpath-2026-11-29.md). Each InfluxDB target
drains through its own cursor, the id of the last group it wrote; groups every target has
passed are deleted.

All database work runs on one worker thread (one connection, no locking), off the event loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import sqlite3
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

__all__ = ["Backlog", "Group", "SetAside", "Spool", "SpoolDamage", "SpoolReport",
           "inspect_spool"]

log = logging.getLogger(__name__)

T = TypeVar("T")

_SCHEMA = """
-- One row per commit: `lines` is its points' line protocol joined by newlines.
CREATE TABLE IF NOT EXISTS point_groups (id INTEGER PRIMARY KEY AUTOINCREMENT,
    spooled_ns INTEGER NOT NULL, points INTEGER NOT NULL, lines TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cursors (target TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
-- One row per commit that took messages: a receipt per message in `taken` (identical messages,
-- an unchanged heartbeat, each have their own), those acknowledged since appended to
-- `released`; the row goes once all are. Digests are packed, each after a length byte.
CREATE TABLE IF NOT EXISTS receipt_groups (id INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ns INTEGER NOT NULL, taken BLOB NOT NULL, released BLOB NOT NULL DEFAULT x'');
CREATE TABLE IF NOT EXISTS set_aside (id INTEGER PRIMARY KEY AUTOINCREMENT,
    target TEXT NOT NULL, at_ns INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL);
"""


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


@dataclass(frozen=True, slots=True)
class SpoolDamage:
    """A damaged spool found at start: where it went and how much was saved from it."""

    moved_to: Path
    salvaged: int
    error: str


@dataclass(frozen=True, slots=True)
class Group:
    """One committed group of points: its row id, how many points, their lines joined by \n."""

    id: int
    points: int
    lines: str


_LENGTH = [bytes((n,)) for n in range(256)]


def _pack(digests: Sequence[bytes]) -> bytes:
    """Digests (up to 255 bytes each) as one blob, each after its length."""
    return b"".join([part for digest in digests for part in (_LENGTH[len(digest)], digest)])


def _unpack(blob: bytes) -> list[bytes]:
    out: list[bytes] = []
    i = 0
    while i < len(blob):
        n = blob[i]
        out.append(blob[i + 1:i + 1 + n])
        i += 1 + n
    return out


@dataclass(slots=True)
class _ReceiptGroup:
    """One receipt_groups row in memory: its receipts not yet acknowledged."""

    id: int
    left: dict[bytes, int]
    count: int


@dataclass(slots=True)
class _Pending:
    lines: list[str]
    receipts: list[tuple[bytes, int]]
    future: asyncio.Future[None]


class Spool:
    """Durable queue of line-protocol points with one read cursor per InfluxDB target."""

    def __init__(self, path: Path, targets: Sequence[str], *, max_bytes: int,
                 fsync: bool = True) -> None:
        self.path = path
        self.targets = tuple(targets)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spool")
        self._pending: list[_Pending] = []
        self._wakeup = asyncio.Event()
        self._new_data = asyncio.Event()
        # Commits that added points, and how many of them each reader (a writer's task) had
        # seen when it last read: one landing while a writer was busy sending must still wake it.
        self._generation = 0
        self._seen: weakref.WeakKeyDictionary[asyncio.Task[object], int] = (
            weakref.WeakKeyDictionary())
        self._acked: list[bytes] = []
        # Digest -> how many taken messages with those bytes still await their PUBACK.
        self.receipts: dict[bytes, int] = {}
        self.damage: SpoolDamage | None = None
        self.torn_wal: Path | None = None
        self.commits = 0
        self.committed_points = 0
        self.fill_pct = 0.0
        self._db: sqlite3.Connection | None = None
        # The receipt_groups rows, oldest first: an acknowledgement releases the oldest receipt
        # of its digest, which is nearly always in the first row or two (PUBACKs go out in
        # commit order), so the durable record costs a row per commit, not one per message.
        self._receipt_groups: deque[_ReceiptGroup] = deque()

    # -- opening, on the worker thread ------------------------------------------------------

    async def open(self) -> None:
        """Open (and check) the database; a damaged one is set aside and salvaged."""
        await self._call(self._open)

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.torn_wal = self._check_wal()
        try:
            self._db = self._connect()
            problem = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(problem)
            self._db.executescript(_SCHEMA)
            self._migrate_receipts(self._db)
            self._migrate_points(self._db)
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
            self.damage, rows = self._salvage(str(exc))
            self._db = self._connect()
            self._db.executescript(_SCHEMA)
            with self._transaction() as db:
                db.executemany("INSERT INTO point_groups (spooled_ns, points, lines) "
                               "VALUES (?, ?, ?)", rows)
        with self._transaction() as db:
            for target in self.targets:
                db.execute("INSERT OR IGNORE INTO cursors VALUES (?, 0)", (target,))
            # A receipt outlives its purpose only if the daemon died between the PUBACK and
            # the next commit; a day later no broker redelivers that message any more.
            db.execute("DELETE FROM receipt_groups WHERE at_ns < ?",
                       (time.time_ns() - 86_400 * 10**9,))
            # Receipts left by a crash between commit and PUBACK: the broker redelivers those.
            # Filled in place: the pipeline holds this mapping.
            self.receipts.clear()
            self._receipt_groups.clear()
            for row_id, taken, released in db.execute(
                    "SELECT id, taken, released FROM receipt_groups ORDER BY id").fetchall():
                left: dict[bytes, int] = {}
                for digest in _unpack(taken):
                    left[digest] = left.get(digest, 0) + 1
                for digest in _unpack(released):
                    if left.get(digest, 0) > 1:
                        left[digest] -= 1
                    else:
                        left.pop(digest, None)
                if not left:
                    db.execute("DELETE FROM receipt_groups WHERE id = ?", (row_id,))
                    continue
                self._receipt_groups.append(_ReceiptGroup(row_id, left, sum(left.values())))
                for digest, n in left.items():
                    self.receipts[digest] = self.receipts.get(digest, 0) + n
        self.fill_pct = self._fill_pct()

    @staticmethod
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
                           [(at, _pack(digests)) for at, digests in sorted(by_time.items())])
            db.execute("DROP TABLE receipts")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    @staticmethod
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

    def _check_wal(self) -> Path | None:
        """Find a torn WAL tail (power cut mid-commit) before SQLite recovers past it.

        SQLite replays the WAL up to the last frame whose checksum holds and drops the rest,
        so the database itself is fine; the torn file is copied aside and reported, so the loss
        of that one uncommitted transaction is on record.
        """
        wal = Path(f"{self.path}-wal")
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
                  "the log in %s", self.path, aside)
        return aside

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        # FULL: every commit fsyncs the WAL. NORMAL: only checkpoints do (see the docstring).
        db.execute("PRAGMA synchronous=FULL" if self.fsync else "PRAGMA synchronous=NORMAL")
        return db

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # One explicit transaction: one fsync for the whole group.
        db = self._db
        assert db is not None
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _salvage(self, error: str) -> tuple[SpoolDamage, list[tuple[int, int, str]]]:
        """Move the damaged file aside and read back every group that still reads.

        A group is one row, so it comes back whole or not at all. A file from before groups
        (one row per point) is read as groups of one.
        """
        moved = self.path.with_name(f"{self.path.name}.damaged-{int(time.time())}")
        for suffix in ("", "-wal", "-shm"):
            src = Path(f"{self.path}{suffix}")
            if src.exists():
                src.rename(f"{moved}{suffix}")
        rows: list[tuple[int, int, str]] = []
        try:
            old = sqlite3.connect(f"file:{moved}?mode=ro", uri=True)
            for table, columns in (("point_groups", "points, lines"), ("points", "1, line")):
                rows += self._salvage_rows(old, table, columns)
            old.close()
        except sqlite3.DatabaseError:
            pass
        points = sum(n for _, n, _ in rows)
        log.error("spool %s is damaged (%s): moved to %s, %d point(s) saved from it",
                  self.path, error, moved, points)
        return SpoolDamage(moved, points, error), rows

    @staticmethod
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

    async def _call(self, fn: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, fn, *args)

    # -- appending ----------------------------------------------------------------------------

    def append(self, lines: list[str], receipts: Sequence[tuple[bytes, int]] = ()
               ) -> asyncio.Future[None]:
        """Queue points for the next commit; the future is done once they are on disk."""
        # One group (list of points, future) per commit, not one per message: thousands of
        # messages share a commit, and a future and a record each cost more than their points.
        if self._pending:
            group = self._pending[-1]
            group.lines += lines
            group.receipts += receipts
            return group.future
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(list(lines), list(receipts), future))
        self._wakeup.set()
        return future

    def acknowledged(self, *digests: bytes) -> None:
        """The source has these messages' acknowledgements: their receipts are not needed."""
        self._acked.extend(digests)

    @property
    def full(self) -> bool:
        """The quota is used up: new points wait (and their sources stay unacknowledged)."""
        return self.fill_pct >= 100.0

    async def run(self) -> None:
        """Commit whatever is pending, one transaction at a time, until cancelled."""
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            if self.full:
                # Wait for the writers to make room; the sources are not acknowledged meanwhile.
                self.fill_pct = await self._call(self._fill_pct)
                if self.full:
                    await asyncio.sleep(0.5)
                    self._wakeup.set()
                    continue
            batch, self._pending = self._pending, []
            acked, self._acked = self._acked, []
            if not batch and not acked:
                continue
            released = self._release(acked)
            try:
                group, receipt_group = await self._call(self._commit, batch, released)
            except BaseException as exc:
                for item in batch:
                    if not item.future.done():
                        item.future.set_exception(exc)
                raise
            receipts = self.receipts
            for item in batch:
                for digest, _ in item.receipts:
                    receipts[digest] = receipts.get(digest, 0) + 1
            for digest in acked:
                left = receipts.get(digest, 0) - 1
                if left > 0:
                    receipts[digest] = left
                else:
                    receipts.pop(digest, None)
            if receipt_group is not None:
                self._receipt_groups.append(receipt_group)
            for item in batch:
                if not item.future.done():
                    item.future.set_result(None)
            if group is not None:
                self._generation += 1
                self._new_data.set()

    def _release(self, acked: list[bytes]) -> dict[int, list[bytes]]:
        """Match acknowledgements to receipts: row id -> digests it releases (an empty list:
        the row is done). One receipt per acknowledgement, the oldest of its digest: an
        identical message may still await its own."""
        released: dict[int, list[bytes]] = {}
        groups = self._receipt_groups
        for digest in acked:
            for group in groups:
                n = group.left.get(digest)
                if n is None:
                    continue
                if n > 1:
                    group.left[digest] = n - 1
                else:
                    del group.left[digest]
                group.count -= 1
                released.setdefault(group.id, []).append(digest)
                break
        if any(group.count == 0 for group in groups):
            for group in groups:
                if group.count == 0:
                    released[group.id] = []
            self._receipt_groups = deque(group for group in groups if group.count)
        return released

    def _commit(self, batch: list[_Pending], released: dict[int, list[bytes]]
                ) -> tuple[Group | None, _ReceiptGroup | None]:
        now = time.time_ns()
        lines = [text for item in batch for text in item.lines]
        taken = [receipt for item in batch for receipt in item.receipts]
        group: Group | None = None
        receipt_group: _ReceiptGroup | None = None
        with self._transaction() as db:
            if lines:
                text = "\n".join(lines)
                row = db.execute("INSERT INTO point_groups (spooled_ns, points, lines) "
                                 "VALUES (?, ?, ?)", (now, len(lines), text))
                assert row.lastrowid is not None
                group = Group(row.lastrowid, len(lines), text)
            if taken:
                digests = [digest for digest, _ in taken]
                # The newest receipt's time: the row is kept as long as any of them would be.
                row = db.execute("INSERT INTO receipt_groups (at_ns, taken) VALUES (?, ?)",
                                 (max(at for _, at in taken), _pack(digests)))
                assert row.lastrowid is not None
                left: dict[bytes, int] = {}
                for digest in digests:
                    left[digest] = left.get(digest, 0) + 1
                receipt_group = _ReceiptGroup(row.lastrowid, left, len(digests))
            db.executemany("DELETE FROM receipt_groups WHERE id = ?",
                           [(row_id,) for row_id, digests in released.items() if not digests])
            db.executemany("UPDATE receipt_groups SET released = released || ? WHERE id = ?",
                           [(_pack(digests), row_id) for row_id, digests in released.items()
                            if digests])
        self.commits += 1
        self.committed_points += len(lines)
        self.fill_pct = self._fill_pct()
        return group, receipt_group

    def _fill_pct(self) -> float:
        db = self._db
        assert db is not None
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        return float(100.0 * (pages - free) * size / self.max_bytes)

    # -- draining -------------------------------------------------------------------------------

    async def wait_for_data(self, timeout_s: float) -> None:
        """Return when a commit added points since the caller's last `read`, or after
        `timeout_s`."""
        task = asyncio.current_task()
        seen = self._seen.get(task) if task is not None else None
        if seen is not None and self._generation > seen:
            # Points came while the caller was busy with its last batch (before, the next wait
            # missed them and slept a whole flush interval: bench/depot.py's tail).
            return
        self._new_data.clear()
        try:
            async with asyncio.timeout(timeout_s):
                await self._new_data.wait()
        except TimeoutError:
            pass

    async def read_groups(self, target: str, limit: int) -> list[Group]:
        """The oldest groups `target` has not written yet, in order: whole groups, until they
        hold at least `limit` points (or all there is)."""
        task, generation = asyncio.current_task(), self._generation
        groups = await self._call(self._read, target, limit)
        if task is not None:
            self._seen[task] = generation
        return groups

    async def read(self, target: str, limit: int) -> list[tuple[int, str]]:
        """The oldest points `target` has not written yet, in order, each with its group's id
        (whole groups: possibly more than `limit`)."""
        return [(group.id, text) for group in await self.read_groups(target, limit)
                for text in group.lines.split("\n")]

    def _read(self, target: str, limit: int) -> list[Group]:
        assert self._db is not None
        groups: list[Group] = []
        points = 0
        for row_id, n, text in self._db.execute(
                "SELECT id, points, lines FROM point_groups WHERE id > (SELECT last_id FROM "
                "cursors WHERE target = ?) ORDER BY id", (target,)):
            groups.append(Group(row_id, n, text))
            points += n
            if points >= limit:
                break
        return groups

    async def advance(self, target: str, last_id: int, *, set_aside: str | None = None,
                      lines: Sequence[str] = ()) -> None:
        """`target` is done with points up to `last_id`; a refused batch is kept aside."""
        await self._call(self._advance, target, last_id, set_aside, list(lines))

    def _advance(self, target: str, last_id: int, reason: str | None,
                 lines: list[str]) -> None:
        with self._transaction() as db:
            if reason is not None:
                now = time.time_ns()
                db.executemany("INSERT INTO set_aside (target, at_ns, reason, line) "
                               "VALUES (?, ?, ?, ?)", [(target, now, reason, t) for t in lines])
            db.execute("UPDATE cursors SET last_id = ? WHERE target = ?", (last_id, target))
            marks = ",".join("?" * len(self.targets))
            db.execute("DELETE FROM point_groups WHERE id <= (SELECT MIN(last_id) FROM "
                       f"cursors WHERE target IN ({marks}))", self.targets)

    # -- reporting ------------------------------------------------------------------------------

    async def backlog(self) -> list[Backlog]:
        """Per target: points not yet written and when the oldest was spooled."""
        return await self._call(self._backlog)

    def _backlog(self) -> list[Backlog]:
        assert self._db is not None
        out: list[Backlog] = []
        for target in self.targets:
            count, oldest = self._db.execute(
                "SELECT COALESCE(SUM(points), 0), MIN(spooled_ns) FROM point_groups WHERE id > "
                "(SELECT last_id FROM cursors WHERE target = ?)", (target,)).fetchone()
            out.append(Backlog(target, int(count), oldest))
        return out

    async def set_aside_summary(self) -> list[SetAside]:
        """What servers refused, per target and reason."""
        return await self._call(self._set_aside_summary)

    def _set_aside_summary(self) -> list[SetAside]:
        assert self._db is not None
        rows = self._db.execute(
            "SELECT target, reason, COUNT(*), MAX(at_ns) FROM set_aside "
            "GROUP BY target, reason ORDER BY MAX(at_ns)").fetchall()
        return [SetAside(str(t), str(r), int(n), int(at)) for t, r, n, at in rows]

    async def close(self) -> None:
        """Commit what is pending and close the database."""
        if self._pending or self._acked:
            batch, self._pending = self._pending, []
            acked, self._acked = self._acked, []
            await self._call(self._commit, batch, self._release(acked))
            for item in batch:
                if not item.future.done():
                    item.future.set_result(None)
        if self._db is not None:
            await self._call(self._db.close)
            self._db = None
        self._thread.shutdown(wait=True)


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
        aside = [SetAside(str(t), str(r), int(n), int(at)) for t, r, n, at in db.execute(
            "SELECT target, reason, COUNT(*), MAX(at_ns) FROM set_aside "
            "GROUP BY target, reason ORDER BY MAX(at_ns)")]
        receipts = 0
        if "receipt_groups" in tables:
            for taken, released in db.execute("SELECT taken, released FROM receipt_groups"):
                receipts += len(_unpack(taken)) - len(_unpack(released))
        elif "receipts" in tables:
            receipts = int(db.execute("SELECT COUNT(*) FROM receipts").fetchone()[0])
    finally:
        db.close()
    damaged = sorted(p for p in path.parent.glob(f"{path.name}.damaged-*")
                     if not p.name.endswith(("-wal", "-shm")))
    return SpoolReport(path, size, backlog, aside, damaged, receipts)
