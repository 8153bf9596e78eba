"""Storage may degrade, alarms may not: the spool on a real full filesystem (a tmpfs mounted
for the test: `mount -t tmpfs -o size=4m`, which needs root, as CI has) and on one it cannot
write at all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemon.spool.store import Spool


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs, unmounted afterwards."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    made = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mountpoint)],
                          capture_output=True, text=True)
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-l", str(mountpoint)], check=False)


def _fill(directory: Path) -> Path:
    """A filler file that takes every free block of the filesystem."""
    filler = directory / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
            os.fsync(out.fileno())
    return filler


def test_a_full_disk_holds_security_points_in_memory_and_never_fails_a_commit(
        small_disk: Path) -> None:
    async def main() -> tuple[bool, str | None, int, list[str]]:
        spool = Spool(small_disk / "spool.sqlite", ["t"], max_bytes=1 << 30, reserve_bytes=0)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await spool.append(["door,door=D0 open=false 1"])
        filler = _fill(small_disk)
        big = "x" * 3000
        # Whatever the disk says, every commit completes: its messages get their PUBACK.
        for i in range(40):
            await asyncio.wait_for(spool.append(
                [f"climate,sensor=c f=\"{big}\" {i}", f"door,door=D1 open=true {i}"]), 5)
        degraded = spool.degraded
        filler.unlink()
        await asyncio.wait_for(spool.append(["alert,rule=door_armed x=1 99"]), 5)
        rows = [line for _, line in await spool.read("t", 1_000_000)]
        runner.cancel()
        await spool.close()
        return spool.degraded is None, degraded, spool.shed_points, rows

    recovered, degraded, shed, rows = asyncio.run(main())
    assert degraded is not None and ("disk full" in degraded or "spool full" in degraded)
    assert shed > 0 and recovered
    # Every door state came through (from memory, once the disk had room again).
    assert [r for r in rows if r.startswith("door,door=D1")] == [
        f"door,door=D1 open=true {i}" for i in range(40)]
    assert rows[-1] == "alert,rule=door_armed x=1 99"


def test_a_spool_on_a_full_disk_starts_in_memory(small_disk: Path) -> None:
    """The daemon starts on a full disk: the spool it cannot create runs in memory."""
    async def main() -> tuple[bool, str | None, list[str]]:
        _fill(small_disk)
        spool = Spool(small_disk / "spool.sqlite", ["t"], max_bytes=1 << 20)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await asyncio.wait_for(spool.append(["door,door=D1 open=true 1"]), 5)
        rows = [line for _, line in await spool.read("t", 100)]
        runner.cancel()
        await spool.close()
        return spool.in_memory, spool.degraded, rows

    in_memory, degraded, rows = asyncio.run(main())
    assert in_memory and degraded is not None and rows == ["door,door=D1 open=true 1"]
