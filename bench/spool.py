"""Spool throughput: readings/s committed and fsyncs/s, group commit against one fsync per point.

Both modes run in the same process, on the same disk, in the same run; the ratio is the figure
to compare between machines. Run: .venv/bin/python bench/spool.py [--points N]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from daemon.spool import Spool

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
    pending: set[asyncio.Future[None]] = set()
    for i in range(n):
        pending.add(spool.append([LINE.format(i, i)]))
        if len(pending) >= in_flight:
            _done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*pending)
    elapsed = time.perf_counter() - start
    runner.cancel()
    commits = spool.commits
    await spool.close()
    return elapsed, commits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--points", type=int, default=20_000)
    parser.add_argument("--in-flight", type=int, default=1000,
                        help="messages awaiting their commit at once (MQTT receive maximum)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        base_n = max(500, args.points // 20)
        t1, c1 = asyncio.run(one_by_one(Path(tmp) / "a.sqlite", base_n))
        t2, c2 = asyncio.run(grouped(Path(tmp) / "b.sqlite", args.points, args.in_flight))
    results = {
        "machine": f"{platform.machine()}, {platform.python_version()}",
        "one_fsync_per_point": {"points": base_n, "points_per_s": round(base_n / t1),
                                "fsyncs_per_s": round(c1 / t1)},
        "group_commit": {"points": args.points, "in_flight": args.in_flight,
                         "points_per_s": round(args.points / t2),
                         "fsyncs_per_s": round(c2 / t2),
                         "points_per_commit": round(args.points / max(c2, 1), 1)},
    }
    results["ratio_group_vs_one_by_one"] = round(
        results["group_commit"]["points_per_s"] / results["one_fsync_per_point"]["points_per_s"],
        1)
    print(json.dumps(results, indent=2))
    out = Path(__file__).parent / "results" / f"spool-{time.strftime('%Y-%m-%d')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
