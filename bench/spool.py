"""Spool throughput: readings/s committed and fsyncs/s, group commit against one fsync per point;
and the spool's CPU per point as the daemon drives it.

Both throughput modes run in the same process, on the same disk, in the same run; the ratio is
the figure to compare between machines. The CPU figure (a receipt per message, acknowledgements
as PUBACKs are let go, two writers draining to sinks that take 2 ms) is the process's CPU time
per point, to compare versions of the spool on one machine. Run: .venv/bin/python bench/spool.py
[--points N]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import platform
import resource
import sys
import tempfile
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.spool.store import Spool
from daemon.tsdb.writer import TsdbWriter

LINE = "climate,site=depot-north,storehouse=SH1,sensor=sh1-climate1 temperature_c={}.5 {}"


async def one_by_one(path: Path, n: int) -> tuple[float, int]:
    """Baseline: every point waits for its own commit (one fsync per point)."""
    spool = Spool(path, ["t"], max_bytes=1 << 34)
    await spool.open()
    runner = asyncio.create_task(spool.run())
    start = time.perf_counter()
    for i in range(n):
        await spool.append([LINE.format(i, i)])
    elapsed = time.perf_counter() - start
    runner.cancel()
    commits = spool.commits
    await spool.close()
    return elapsed, commits


async def grouped(path: Path, n: int, in_flight: int) -> tuple[float, int]:
    """As the daemon runs: many messages in flight, each waiting for the commit it joined."""
    spool = Spool(path, ["t"], max_bytes=1 << 34)
    await spool.open()
    runner = asyncio.create_task(spool.run())
    start = time.perf_counter()
    # One future per message, though messages of one commit share it: a set of them would
    # count commits, not messages, and let every point in at once.
    pending: deque[asyncio.Future[None]] = deque()
    for i in range(n):
        pending.append(spool.append([LINE.format(i, i)]))
        if len(pending) >= in_flight:
            await pending.popleft()
    for future in pending:
        await future
    elapsed = time.perf_counter() - start
    runner.cancel()
    commits = spool.commits
    await spool.close()
    return elapsed, commits


class SlowSink:
    """Takes any batch after 2 ms, as a database on the LAN might."""

    target = "slow sink"

    async def write(self, body: bytes) -> None:
        """Wait, then accept."""
        await asyncio.sleep(0.002)

    async def close(self) -> None:
        """Nothing to release."""


async def as_the_daemon(path: Path, n: int, in_flight: int, held: int) -> tuple[float, float]:
    """CPU seconds and wall seconds to spool and drain `n` points, one message and receipt each;
    a receipt is acknowledged `held` messages later (~2 s at 10k messages/s: PubackReceipts)."""
    spool = Spool(path, ["a", "b"], max_bytes=1 << 34)
    await spool.open()
    runner = asyncio.create_task(spool.run())
    writers = [TsdbWriter(t, SlowSink(), spool, batch_size=5000, flush_interval_s=1.0)
               for t in ("a", "b")]
    tasks = [asyncio.create_task(w.run()) for w in writers]
    sent: deque[bytes] = deque()
    waiting: deque[asyncio.Future[None]] = deque()
    cpu0, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for i in range(n):
        digest = hashlib.blake2b(i.to_bytes(8, "little"), digest_size=16).digest()
        waiting.append(spool.append([LINE.format(i, i)], [(digest, time.time_ns())]))
        sent.append(digest)
        if len(sent) > held:
            spool.acknowledged(sent.popleft())
        if len(waiting) >= in_flight:
            await waiting.popleft()
    for future in waiting:
        await future
    for task in tasks:
        task.cancel()
    for writer in writers:
        await writer.drain(60.0)
    cpu1, end = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    # Not `written`: a writer cancelled during its advance has written without counting it.
    assert all(b.points == 0 for b in await spool.backlog())
    runner.cancel()
    await spool.close()
    cpu = cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime
    return cpu, end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=1000,
                        help="messages awaiting their commit at once (MQTT receive maximum)")
    parser.add_argument("--output", type=Path, help="JSON file (results/spool-<date>.json)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_n = max(500, args.points // 20)
        t1, c1 = asyncio.run(one_by_one(Path(tmp) / "a.sqlite", base_n))
        t2, c2 = asyncio.run(grouped(Path(tmp) / "b.sqlite", args.points, args.in_flight))
        daemon_n = args.points * 5
        cpu, t3 = asyncio.run(as_the_daemon(Path(tmp) / "c.sqlite", daemon_n, args.in_flight,
                                            20_000))
    results = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "one_fsync_per_point": {"points": base_n, "points_per_s": round(base_n / t1),
                                "fsyncs_per_s": round(c1 / t1)},
        "group_commit": {"points": args.points, "in_flight": args.in_flight,
                         "points_per_s": round(args.points / t2),
                         "fsyncs_per_s": round(c2 / t2),
                         "points_per_commit": round(args.points / max(c2, 1), 1)},
    }
    results["as_the_daemon"] = {"points": daemon_n, "points_per_s": round(daemon_n / t3),
                                "cpu_us_per_point": round(cpu / daemon_n * 1e6, 2)}
    results["ratio_group_vs_one_by_one"] = round(
        results["group_commit"]["points_per_s"] / results["one_fsync_per_point"]["points_per_s"],
        1)
    print(json.dumps(results, indent=2))
    out = args.output or (Path(__file__).parent / "results"
                          / f"spool-{time.strftime('%Y-%m-%d')}.json")
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
