"""Storage may degrade, alarms may not: the spool on a real full filesystem (a tmpfs mounted
for the test: `mount -t tmpfs -o size=4m`, which needs root, as CI has) and on one it cannot
write at all."""

from __future__ import annotations

import asyncio
import contextlib
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inprocess_daemon import Running, depot, eventually, running
from servers import InfluxDB1, Mosquitto

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


def test_the_daemon_stops_cleanly_when_its_disk_is_full_at_shutdown(
        small_disk: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    """Seen under load in the fault matrix: InfluxDB took the backlog at shutdown, the spool
    could not record it ("database or disk is full") and the daemon failed to stop. Points
    are spooled while InfluxDB is down, the disk then fills up (the WAL, far from its
    checkpoint, cannot grow: the cursor's update fails for certain), InfluxDB comes back and
    the daemon is stopped: it stops cleanly (`running` raises if `run` raised), what the
    disk could not take is logged, and InfluxDB has the points."""
    with InfluxDB1(small_disk.parent / "influx") as influx:
        influx.create_database("depot")
        config = depot(small_disk / "state", mosquitto.port)
        config["influxdb"] = [{"api": "v1", "url": influx.url, "database": "depot"}]
        with running(config) as r:
            influx.stop()
            for i in range(20):
                _publish(r, "zigbee2mqtt/clim1", {"temperature": 18 + i / 10, "humidity": 50})
                _publish(r, "zigbee2mqtt/door1", {"contact": i % 2 == 0})
            eventually(lambda: r.daemon.spool.committed_points >= 40)
            _fill(small_disk)
            influx.start()
        counted = influx.query("depot", "SELECT count(*) FROM /.*/")["results"][0]
        assert counted.get("series"), counted
    assert "sent again at the next start" in caplog.text
    assert "engine state not saved at shutdown" in caplog.text


def test_a_writer_waits_for_space_instead_of_failing_while_the_disk_is_full(
        small_disk: Path, mosquitto: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    """InfluxDB takes a batch while the spool's disk is full, so its cursor cannot be kept:
    the writer logs it once and waits for space; it is not a task that fails and is restarted
    every few seconds (a "task failed" alert beside storage_degraded for one cause)."""
    with InfluxDB1(small_disk.parent / "influx") as influx:
        influx.create_database("depot")
        config = depot(small_disk / "state", mosquitto.port)
        config["influxdb"] = [{"api": "v1", "url": influx.url, "database": "depot"}]
        with running(config) as r:
            influx.stop()
            for i in range(20):
                _publish(r, "zigbee2mqtt/clim1", {"temperature": 18 + i / 10, "humidity": 50})
            eventually(lambda: r.daemon.spool.committed_points >= 20)
            _fill(small_disk)
            influx.start()
            eventually(lambda: "waiting for space" in caplog.text, timeout_s=20)
            time.sleep(1.0)  # a crash loop would show within it (restarts after 1 s)
            assert not [m for m in caplog.messages if m.startswith("task ") and "failed" in m]


def _publish(r: Running, topic: str, body: dict[str, Any]) -> None:
    """At QoS 1, waiting while the broker's receive window (its packet ids) is full."""
    deadline = time.monotonic() + 10
    while True:
        try:
            r.publish(topic, body)
            return
        except OverflowError:
            assert time.monotonic() < deadline, f"the broker took no publish to {topic}"
            time.sleep(0.02)
