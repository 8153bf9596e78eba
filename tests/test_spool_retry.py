"""A commit that fails for a passing reason (here: the file locked by another process for
longer than SQLite's busy timeout) is tried again: points no broker sends again (tick alerts,
facts, health) are not lost with it (issue 24, item 5)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from pathlib import Path

from daemon.spool.store import Spool


def test_a_commit_failing_once_is_tried_again_and_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    locked = threading.Event()

    def hold_the_lock() -> None:
        # Longer than the spool connection's 5 s busy timeout: its first attempt fails.
        other = sqlite3.connect(path, isolation_level=None)
        other.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(5.6)
        other.execute("COMMIT")
        other.close()

    async def main() -> tuple[int, list[tuple[int, str]]]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await spool.append(["gateway up=true 1"])
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        await asyncio.to_thread(locked.wait)
        # A tick alert, with no broker to send it again: durable once the lock is gone.
        await spool.append(["alert state=\"firing\" 2"])
        await asyncio.to_thread(holder.join)
        rows = await spool.read("t", 10)
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await spool.close()
        return spool.commits, rows

    commits, rows = asyncio.run(main())
    assert commits == 2
    assert [text for _, text in rows] == ["gateway up=true 1", 'alert state="firing" 2']
