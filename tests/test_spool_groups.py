"""The spool stores a commit's points as one row: what that must not change (salvage, the
per-point schema of older spools, set-aside lines, backlog in points) and receipts kept one
row per commit."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from daemon.spool.backlog import inspect_spool
from daemon.spool.receipts import ReceiptBook, ReceiptGroup
from daemon.spool.store import Spool
from daemon.tsdb.writer import TsdbWriter
from daemon.vocabulary.errors import SinkError


def batches(n: int, size: int) -> list[list[str]]:
    return [[f"m,k=b{b} f={i}.0 {b * 1000 + i}" for i in range(size)] for b in range(n)]


async def fill(spool: Spool, groups: list[list[str]]) -> None:
    runner = asyncio.create_task(spool.run())
    for group in groups:
        await spool.append(group)
    runner.cancel()


def test_backlog_counts_points_not_groups(tmp_path: Path) -> None:
    async def main() -> tuple[int, int, int]:
        spool = Spool(tmp_path / "spool.sqlite", ["a", "b"], max_bytes=1 << 30)
        await spool.open()
        await fill(spool, [["m f=1.0 1", "m f=2.0 2", "m f=3.0 3"], ["m f=4.0 4"] * 5])
        before = (await spool.backlog())[0].points
        first = (await spool.read_groups("a", 1))[0]
        assert first.points == 3
        await spool.advance("a", first.id)
        after = {b.target: b.points for b in await spool.backlog()}
        await spool.close()
        return before, after["a"], after["b"]

    assert asyncio.run(main()) == (8, 5, 8)
    report = inspect_spool(tmp_path / "spool.sqlite")
    assert report is not None
    assert {b.target: b.points for b in report.backlog} == {"a": 5, "b": 8}


def test_a_batch_is_whole_groups(tmp_path: Path) -> None:
    # batch_size 4 over groups of 3: the second group is not split, the batch holds 6 points.
    async def main() -> list[list[str]]:
        spool = Spool(tmp_path / "spool.sqlite", ["t"], max_bytes=1 << 30)
        await spool.open()
        await fill(spool, batches(3, 3))
        out = []
        while rows := await spool.read("t", 4):
            out.append([text for _, text in rows])
            await spool.advance("t", rows[-1][0])
        await spool.close()
        return out

    groups = batches(3, 3)
    assert asyncio.run(main()) == [groups[0] + groups[1], groups[2]]


def old_spool(path: Path, rows: int, cursor: int, deleted_up_to: int) -> None:
    """A spool as written before groups: one row per point, rows up to `deleted_up_to` gone."""
    db = sqlite3.connect(path)
    db.executescript("""
        CREATE TABLE points (id INTEGER PRIMARY KEY AUTOINCREMENT,
                             spooled_ns INTEGER NOT NULL, line TEXT NOT NULL);
        CREATE TABLE cursors (target TEXT PRIMARY KEY, last_id INTEGER NOT NULL);
        CREATE TABLE receipts (digest BLOB NOT NULL, at_ns INTEGER NOT NULL);
        CREATE TABLE set_aside (id INTEGER PRIMARY KEY AUTOINCREMENT, target TEXT NOT NULL,
            at_ns INTEGER NOT NULL, reason TEXT NOT NULL, line TEXT NOT NULL);
    """)
    db.executemany("INSERT INTO points (spooled_ns, line) VALUES (?, ?)",
                   [(time.time_ns(), f"m f={i}.0 {i}") for i in range(1, rows + 1)])
    db.execute("INSERT INTO cursors VALUES ('t', ?)", (cursor,))
    db.execute("DELETE FROM points WHERE id <= ?", (deleted_up_to,))
    db.commit()
    db.close()


def test_a_per_point_spool_is_migrated_on_open(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    old_spool(path, rows=10, cursor=6, deleted_up_to=6)
    report = inspect_spool(path)  # readable before the daemon has opened it
    assert report is not None and report.backlog[0].points == 4

    async def main() -> tuple[list[str], list[str]]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        left = [text for _, text in await spool.read("t", 100)]
        await fill(spool, [["m f=11.0 11", "m f=12.0 12"]])
        rows = await spool.read("t", 100)
        await spool.close()
        return left, [text for _, text in rows]

    left, after = asyncio.run(main())
    assert left == [f"m f={i}.0 {i}" for i in range(7, 11)]
    assert after == [*left, "m f=11.0 11", "m f=12.0 12"]
    report = inspect_spool(path)
    assert report is not None and report.backlog[0].points == 6


def test_a_drained_per_point_spool_gives_new_groups_ids_past_the_cursor(tmp_path: Path) -> None:
    # Everything written and deleted: a new group numbered from 1 would sit behind the cursor
    # (500) and never be written.
    path = tmp_path / "spool.sqlite"
    old_spool(path, rows=500, cursor=500, deleted_up_to=500)

    async def main() -> list[tuple[int, str]]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        await fill(spool, [["m f=1.0 501"]])
        rows = await spool.read("t", 10)
        await spool.close()
        return rows

    assert asyncio.run(main()) == [(501, "m f=1.0 501")]


def test_salvage_of_a_damaged_spool_keeps_whole_groups(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    groups = batches(60, 50)

    async def write() -> None:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        await fill(spool, groups)
        await spool.close()

    asyncio.run(write())
    db = sqlite3.connect(path)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    data = bytearray(path.read_bytes())
    page = int.from_bytes(data[16:18], "big")
    # Scribble over a page in the middle: some groups are lost, the rest must read back whole.
    middle = (len(data) // page // 2) * page
    data[middle:middle + page] = b"\xa5" * page
    path.write_bytes(bytes(data))

    async def reopen() -> tuple[list[list[str]], Spool]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        read = await spool.read_groups("t", 1_000_000)
        await spool.close()
        return [g.lines.split("\n") for g in read], spool

    kept, spool = asyncio.run(reopen())
    assert spool.damage is not None
    assert spool.damage.salvaged == sum(len(g) for g in kept)
    assert 0 < len(kept) <= len(groups)
    assert all(group in groups for group in kept)
    assert kept == sorted(kept, key=groups.index)
    print(f"\nsalvaged {len(kept)} of {len(groups)} groups")


class Refuses:
    """A sink that refuses (400) any batch holding a line with `bad` in it."""

    target = "refuses"

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def write(self, body: bytes) -> None:
        if b"bad" in body:
            raise SinkError("refuses: HTTP 400: unable to parse 'bad'", retryable=False)
        self.bodies.append(body)

    async def close(self) -> None:
        pass


def test_a_refused_group_is_set_aside_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"

    async def main() -> tuple[TsdbWriter, Refuses]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        await fill(spool, [["m f=1.0 1", "bad line", "m f=3.0 3"], ["m f=4.0 4"]])
        sink = Refuses()
        writer = TsdbWriter("t", sink, spool, batch_size=1, flush_interval_s=0.05)
        assert await writer.write_once() == 3
        assert await writer.write_once() == 1
        assert await writer.write_once() == 0
        await spool.close()
        return writer, sink

    writer, sink = asyncio.run(main())
    assert (writer.rejected, writer.written, sink.bodies) == (3, 1, [b"m f=4.0 4"])
    db = sqlite3.connect(path)
    aside = db.execute("SELECT target, reason, line FROM set_aside ORDER BY id").fetchall()
    db.close()
    # One row per line with the server's reason, as `depotwatch spool` counts them.
    assert [line for _, _, line in aside] == ["m f=1.0 1", "bad line", "m f=3.0 3"]
    assert all(t == "t" and "unable to parse 'bad'" in r for t, r, _ in aside)
    report = inspect_spool(path)
    assert report is not None and [(a.points, a.target) for a in report.set_aside] == [(3, "t")]
    assert report.backlog[0].points == 0


def receipt_rows(path: Path) -> int:
    db = sqlite3.connect(path)
    try:
        return int(db.execute("SELECT COUNT(*) FROM receipt_groups").fetchone()[0])
    finally:
        db.close()


def test_receipts_are_kept_per_message_across_commits_and_restarts(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    now = time.time_ns()

    async def main() -> tuple[dict[bytes, int], dict[bytes, int]]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await spool.append(["m f=1.0 1"], [(b"same", now), (b"a", now)])
        await spool.append(["m f=2.0 2"], [(b"same", now), (b"b", now)])
        for digest in (b"same", b"a", b"nobody's"):
            spool.acknowledged(digest)
        await spool.append(["m f=3.0 3"], [(b"c", now)])
        live = dict(spool.receipts)
        runner.cancel()
        await spool.close()
        again = Spool(path, ["t"], max_bytes=1 << 30)
        await again.open()
        reopened = dict(again.receipts)
        await again.close()
        return live, reopened

    live, reopened = asyncio.run(main())
    # One "same" acknowledged: the other message with those bytes still awaits its PUBACK.
    assert live == reopened == {b"same": 1, b"b": 1, b"c": 1}
    report = inspect_spool(path)
    assert report is not None and report.receipts == 3
    # The first commit's row is gone (both its receipts released); the other two remain.
    assert receipt_rows(path) == 2


def test_fully_acknowledged_receipt_rows_are_deleted(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"

    async def main() -> dict[bytes, int]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        digests = [i.to_bytes(16, "big") for i in range(300)]
        for chunk in range(3):
            await spool.append(["m f=1.0 1"], [(d, time.time_ns())
                                               for d in digests[chunk * 100:chunk * 100 + 100]])
        for digest in reversed(digests):
            spool.acknowledged(digest)
        await spool.append(["m f=2.0 2"])
        runner.cancel()
        await spool.close()
        return dict(spool.receipts)

    assert asyncio.run(main()) == {}
    assert receipt_rows(path) == 0


def test_per_receipt_rows_of_an_older_spool_are_migrated(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    now, day_ago = time.time_ns(), time.time_ns() - 86_401 * 10**9
    old_spool(path, rows=0, cursor=0, deleted_up_to=0)
    db = sqlite3.connect(path)
    db.execute("CREATE INDEX receipts_digest ON receipts (digest)")
    db.executemany("INSERT INTO receipts VALUES (?, ?)",
                   [(b"x", now), (b"x", now + 1), (b"y", now), (b"stale", day_ago)])
    db.commit()
    db.close()
    report = inspect_spool(path)
    assert report is not None and report.receipts == 4

    async def main() -> dict[bytes, int]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        receipts = dict(spool.receipts)
        await spool.close()
        return receipts

    # A day-old receipt is let go on open, as before.
    assert asyncio.run(main()) == {b"x": 2, b"y": 1}
    report = inspect_spool(path)
    assert report is not None and report.receipts == 3


def _released_types(path: Path) -> set[str]:
    db = sqlite3.connect(path)
    try:
        return {t for (t,) in db.execute("SELECT typeof(released) FROM receipt_groups")}
    finally:
        db.close()


def test_released_receipts_stay_blobs_and_text_ones_are_repaired(tmp_path: Path) -> None:
    """`released || ?` stored TEXT (every later start exited 1): new releases are BLOBs, and a
    spool the released version wrote is repaired when it is opened."""
    path = tmp_path / "spool.sqlite"
    now = time.time_ns()
    # Digests as the daemon makes them: 16 bytes, mostly not UTF-8.
    digests = [bytes([0xFF, 0xFE, i]) + bytes(13) for i in range(4)]

    async def commit_and_release() -> None:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await spool.append(["m f=1.0 1"], [(d, now) for d in digests])
        spool.acknowledged(digests[0])
        await spool.append(["m f=2.0 2"])
        runner.cancel()
        await spool.close()

    async def reopen() -> dict[bytes, int]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        receipts = dict(spool.receipts)
        await spool.close()
        return receipts

    asyncio.run(commit_and_release())
    assert _released_types(path) == {"blob"}
    # What the released version left: the same bytes, stored as TEXT.
    db = sqlite3.connect(path)
    db.execute("UPDATE receipt_groups SET released = CAST(released AS TEXT)")
    db.commit()
    db.close()
    assert _released_types(path) == {"text"}
    assert asyncio.run(reopen()) == {d: 1 for d in digests[1:]}
    assert _released_types(path) == {"blob"}


@given(commits=st.lists(st.lists(st.sampled_from([b"a" * 16, b"b" * 16, b"c" * 16]),
                                 min_size=1, max_size=5), min_size=1, max_size=6),
       data=st.data())
def test_every_receipt_is_released_once_whatever_the_order_of_acknowledgements(
        commits: list[list[bytes]], data: st.DataObject) -> None:
    """Identical messages in several commits (an unchanged heartbeat): each acknowledgement
    releases one receipt, the oldest commit's first, and nothing is held once all are in."""
    book = ReceiptBook()
    for group_id, digests in enumerate(commits):
        left: dict[bytes, int] = {}
        for digest in digests:
            left[digest] = left.get(digest, 0) + 1
        book.settle([[(d, 0) for d in digests]], [], ReceiptGroup(group_id, left, len(digests)))
    done: set[int] = set()
    for digest in data.draw(st.permutations([d for c in commits for d in c])):
        done |= {group_id for group_id, digests in book.release([digest]).items()
                 if not digests}
        book.settle([], [digest], None)
    assert done == set(range(len(commits)))
    assert not book.counts and not book._holding
