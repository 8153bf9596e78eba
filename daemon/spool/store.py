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
import contextlib
import logging
import sqlite3
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from daemon.spool.backlog import (
    Backlog,
    SetAside,
    advance_cursor,
    count_backlog,
    summarize_set_aside,
)
from daemon.spool.pending import Pending, fail_waiters
from daemon.spool.quota import DiskQuota, FillGauge, is_disk_full
from daemon.spool.receipts import ReceiptBook, ReceiptGroup
from daemon.spool.salvage import SpoolDamage, check_wal, salvage
from daemon.spool.schema import SCHEMA, migrate
from daemon.spool.shedding import MemoryHold, degradation, split_bulk, thin_oldest

__all__ = ["Group", "Spool"]

T = TypeVar("T")

log = logging.getLogger(__name__)

# The most a spool held in memory may take (the disk refused its file at start).
_MEMORY_SPOOL_BYTES = 64 << 20
# Pauses between attempts at a commit that failed (not for a full disk): 3.75 s in all.
_COMMIT_RETRY_S = (0.05, 0.2, 0.5, 1.0, 2.0)


@dataclass(frozen=True, slots=True)
class Group:
    """One committed group of points: its row id, how many points, their lines joined by \n."""

    id: int
    points: int
    lines: str


class Spool:
    """Durable queue of line-protocol points with one read cursor per InfluxDB target."""

    def __init__(self, path: Path, targets: Sequence[str], *, max_bytes: int,
                 fsync: bool = True, reserve_bytes: int | None = None,
                 commit_window_s: float = 0.1, commit_messages: int = 500) -> None:
        self.path = path
        self.targets = tuple(targets)
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._fill = FillGauge(DiskQuota(path.parent, max_bytes, reserve_bytes))
        # A commit waits for more until `commit_window_s` after the previous one began, or
        # until `commit_messages` appends wait (below the link's 1,000 unacknowledged).
        self.commit_window_s = commit_window_s
        self.commit_messages = commit_messages
        self._committed_at = -commit_window_s
        # Climate and health points given up because the spool was full or the disk refused.
        self.shed_points = 0
        # Security lines the disk would not take, committed again once it does.
        self._hold = MemoryHold()
        # Why storage is degraded now (None: it is not), for the storage_degraded fault.
        self.degraded: str | None = None
        self.in_memory = False
        self._thread = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="spool")
        self._pending: list[Pending] = []
        self._wakeup = asyncio.Event()
        self._new_data = asyncio.Event()
        # Commits that added points, and how many of them each reader (a writer's task) had
        # seen when it last read: one landing while a writer was busy sending must still wake it.
        self._generation = 0
        self._seen: weakref.WeakKeyDictionary[asyncio.Task[object], int] = (
            weakref.WeakKeyDictionary())
        self._acked: list[bytes] = []
        self._receipt_book = ReceiptBook()
        # Digest -> how many taken messages with those bytes still await their PUBACK: the
        # book's own mapping, which the pipeline holds.
        self.receipts: dict[bytes, int] = self._receipt_book.counts
        self.damage: SpoolDamage | None = None
        self.torn_wal: Path | None = None
        self.commits = 0
        self.committed_points = 0
        self.fill_pct = 0.0
        self._db: sqlite3.Connection | None = None

    # -- opening, on the worker thread ------------------------------------------------------

    async def open(self) -> None:
        """Open (and check) the database; a damaged one is set aside and salvaged. A disk that
        refuses the file (full, read-only) leaves the spool in memory, and says so."""
        try:
            await self._call(self._open)
        except (OSError, sqlite3.Error) as exc:
            log.error("spool %s cannot be opened (%s): points are kept in memory (at most "
                      "%d MiB) until a restart finds room", self.path, exc,
                      _MEMORY_SPOOL_BYTES >> 20)
            await self._call(self._open_in_memory)
            self.degraded = f"spool file unavailable ({exc}); points kept in memory"

    def _open_in_memory(self) -> None:
        if self._db is not None:
            self._db.close()
        self.in_memory = True
        self._db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
        self._db.executescript(SCHEMA)
        with self._transaction() as db:
            for target in self.targets:
                db.execute("INSERT OR IGNORE INTO cursors VALUES (?, 0)", (target,))
        self.fill_pct = self._fill_pct()

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.torn_wal = check_wal(self.path)
        try:
            self._db = self._connect()
            problem = self._db.execute("PRAGMA quick_check").fetchone()[0]
            if problem != "ok":
                raise sqlite3.DatabaseError(problem)
            self._db.executescript(SCHEMA)
            migrate(self._db)
        except sqlite3.DatabaseError as exc:
            if self._db is not None:
                self._db.close()
            self.damage, rows = salvage(self.path, str(exc))
            self._db = self._connect()
            self._db.executescript(SCHEMA)
            with self._transaction() as db:
                db.executemany("INSERT INTO point_groups (spooled_ns, points, lines) "
                               "VALUES (?, ?, ?)", rows)
        with self._transaction() as db:
            for target in self.targets:
                db.execute("INSERT OR IGNORE INTO cursors VALUES (?, 0)", (target,))
            self._receipt_book.load(db)
        self.fill_pct = self._fill_pct()

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
            # A full disk may have rolled the transaction back already.
            with contextlib.suppress(sqlite3.Error):
                db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

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
            group.messages += 1
            if group.messages == self.commit_messages:
                self._wakeup.set()
            return group.future
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append(Pending(list(lines), list(receipts), future))
        self._wakeup.set()
        return future

    def acknowledged(self, *digests: bytes) -> None:
        """The source has these messages' acknowledgements: their receipts are not needed."""
        self._acked.extend(digests)

    @property
    def full(self) -> bool:
        """The effective quota is used up: climate and health points are shed, oldest first
        (daemon/spool/shedding.py); every source is still acknowledged."""
        return self.fill_pct >= 100.0

    async def run(self) -> None:
        """Commit whatever is pending, one transaction at a time, until cancelled.

        Never waits for room: a full spool or a full disk sheds points by the policy of
        daemon/spool/shedding.py instead, so the broker's window never fills behind storage.
        """
        loop = asyncio.get_running_loop()
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            await self._gather(loop)
            self._committed_at = loop.time()
            batch, self._pending = self._pending, []
            acked, self._acked = self._acked, []
            if not batch and not acked:
                continue
            released = self._receipt_book.release(acked)
            try:
                group, receipt_group = await self._commit_retrying(batch, released)
            except BaseException as exc:
                for item in batch:
                    fail_waiters(item.future, exc)
                raise
            self._receipt_book.settle([item.receipts for item in batch], acked, receipt_group)
            for item in batch:
                if not item.future.done():
                    item.future.set_result(None)
            if group is not None:
                self._generation += 1
                self._new_data.set()

    async def _commit_retrying(self, batch: list[Pending], released: dict[int, list[bytes]]
                               ) -> tuple[Group | None, ReceiptGroup | None]:
        # Points that no broker sends again (tick alerts, facts, health) have only this
        # commit: a passing fault (a locked or busy file, EIO) is tried again, within the alarm
        # budget, before the spool task fails with it.
        for delay_s in _COMMIT_RETRY_S:
            try:
                return await self._call(self._commit, batch, released)
            except (OSError, sqlite3.Error) as exc:
                log.warning("spool commit failed (%s); trying again in %.2f s", exc, delay_s)
                self.degraded = f"spool commit failing: {exc}"
            await asyncio.sleep(delay_s)
        return await self._call(self._commit, batch, released)

    async def _gather(self, loop: asyncio.AbstractEventLoop) -> None:
        # A first message after a quiet spell is committed at once; at depot rates a commit
        # takes what a window brings (per-commit work was most of the CPU, issue 29).
        rest = self._committed_at + self.commit_window_s - loop.time()
        if rest <= 0 or not self._pending or self._pending[0].messages >= self.commit_messages:
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(rest):
                await self._wakeup.wait()
        self._wakeup.clear()

    def _commit(self, batch: list[Pending], released: dict[int, list[bytes]]
                ) -> tuple[Group | None, ReceiptGroup | None]:
        lines = [text for item in batch for text in item.lines]
        held = self._hold.take() if self._hold.lines else []
        if held:
            lines = [*held, *lines]
        try:
            return self._commit_lines(lines, batch, released)
        except (OSError, sqlite3.Error) as exc:
            if not is_disk_full(exc):
                # Held lines stay held, ahead of newer ones, for the next attempt.
                self._hold.lines.extendleft(reversed(held))
                raise
            # The disk refused: security lines wait in memory, the bulk is given up, and the
            # sources are acknowledged all the same (their alarms went out already).
            kept, shed = split_bulk(lines)
            self._hold.add(kept)
            self.shed_points += shed
            self.degraded = (f"disk full ({exc}): {len(self._hold.lines)} security points held "
                             f"in memory, {self.shed_points} climate and health points shed")
            return None, None

    def _commit_lines(self, lines: list[str], batch: list[Pending],
                      released: dict[int, list[bytes]]
                      ) -> tuple[Group | None, ReceiptGroup | None]:
        now = time.time_ns()
        taken = [receipt for item in batch for receipt in item.receipts]
        group: Group | None = None
        with self._transaction() as db:
            if self.full:
                self.shed_points += thin_oldest(db)
                lines, shed = split_bulk(lines)
                self.shed_points += shed
            if lines:
                text = "\n".join(lines)
                row = db.execute("INSERT INTO point_groups (spooled_ns, points, lines) "
                                 "VALUES (?, ?, ?)", (now, len(lines), text))
                assert row.lastrowid is not None
                group = Group(row.lastrowid, len(lines), text)
            receipt_group = ReceiptBook.record(db, taken, released)
        self.commits += 1
        self.committed_points += len(lines)
        # Roughly what the rows take: text, receipts and a row's own overhead.
        self.fill_pct = self._fill_pct(
            (len(group.lines) if group is not None else 0) + 20 * len(taken) + 100)
        self.degraded = degradation(self.in_memory, len(self._hold.lines), self.fill_pct,
                                    self.shed_points)
        return group, receipt_group

    def _fill_pct(self, added_bytes: int | None = None) -> float:
        """The fill figure: measured, or the last one plus `added_bytes` (what a commit wrote)
        while no measurement is due."""
        now = time.monotonic()
        if added_bytes is not None and not self._fill.due(now):
            return self._fill.grew(added_bytes)
        db = self._db
        assert db is not None
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        free = db.execute("PRAGMA freelist_count").fetchone()[0]
        size = db.execute("PRAGMA page_size").fetchone()[0]
        used = (pages - free) * size
        limit = min(self.max_bytes, _MEMORY_SPOOL_BYTES) if self.in_memory else None
        return self._fill.measured(used, limit, now)

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
            advance_cursor(db, self.targets, target, last_id, reason, lines)

    # -- reporting ------------------------------------------------------------------------------

    async def backlog(self) -> list[Backlog]:
        """Per target: points not yet written (those waiting for their commit too) and when
        the oldest was spooled."""
        waiting = sum(len(item.lines) for item in self._pending)
        found = await self._call(self._backlog)
        return [Backlog(b.target, b.points + waiting, b.oldest_ns) for b in found]

    def _backlog(self) -> list[Backlog]:
        assert self._db is not None
        return count_backlog(self._db, self.targets)

    async def set_aside_summary(self) -> list[SetAside]:
        """What servers refused, per target and reason."""
        return await self._call(self._set_aside_summary)

    def _set_aside_summary(self) -> list[SetAside]:
        assert self._db is not None
        return summarize_set_aside(self._db)

    async def close(self) -> None:
        """Commit what is pending and close the database. A commit that fails is logged, not
        raised: a full or failing disk must never keep the daemon from stopping (sources not
        yet acknowledged send their messages again to the next start)."""
        batch, self._pending = self._pending, []
        try:
            if batch or self._acked:
                acked, self._acked = self._acked, []
                await self._call(self._commit, batch, self._receipt_book.release(acked))
            for item in batch:
                if not item.future.done():
                    item.future.set_result(None)
            if self._hold.lines:  # the disk took none of them: the log is their last trace
                log.error("spool: %d security point(s) held in memory were never written to "
                          "disk (disk full) and are lost at shutdown", len(self._hold.lines))
        except (OSError, sqlite3.Error) as exc:
            log.error("spool: the last %d message(s) not committed at shutdown: %s",
                      sum(item.messages for item in batch), exc)
        finally:
            for item in batch:  # the commit failed (or was cancelled): its waiters hear so
                if not item.future.done():
                    item.future.cancel()
            if self._db is not None:
                with contextlib.suppress(sqlite3.Error):
                    await self._call(self._db.close)
                self._db = None
            self._thread.shutdown(wait=True)
