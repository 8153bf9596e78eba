"""Nothing lost (DESIGN.md promise 1), against real processes: InfluxDB outage, SIGKILLed
daemon, restarted broker, truncated spool. Every published reading carries a unique value, so
"arrived" and "arrived twice" can both be counted in InfluxDB."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from daemon_process import DaemonProcess
from servers import InfluxDB1, Mosquitto

from daemon.spool.backlog import inspect_spool
from daemon.spool.store import Spool

SITE = "durable-depot"
OUTAGE_S = 15.0


def config(mosquitto: Mosquitto, influx_url: str, db: str, state_dir: Path,
           client_id: str) -> dict[str, Any]:
    return {
        "site": {"id": SITE},
        "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "armed": {"mode": "never"}}],
        "climate_sensors": [{"id": "clim1", "storehouse": "SH1"}],
        "mqtt": {
            "host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id,
            "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
            "subscriptions": [{"topic": "load/{sensor}",
                               "decoder": {"type": "json_fields",
                                           "fields": {"temperature_c": "t"}}}],
        },
        "influxdb": [{"api": "v1", "url": influx_url, "database": db,
                      "flush_interval_s": 0.2, "timeout_s": 2}],
        "rules": [{"type": "sensor_silent", "enabled": False}],
        "api": {"listen_port": 0},  # daemons of other tests may be up at the same time
        "spool": {"health_interval_s": 1},
        # The readings carry their sequence number as the temperature: plausible here.
        "plausibility": {"temperature_c": {"min": 0, "max": 1e9}},
    }


class Publisher:
    """A QoS 1 device that knows which messages the broker acknowledged (PUBACK).

    paho keeps QoS 1 messages published while the broker is away and sends them on reconnect;
    they count once acknowledged. Fewer than 65 535 messages per test, so ids never repeat.
    """

    def __init__(self, port: int) -> None:
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="load-device")
        self.client.max_inflight_messages_set(100)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 0.5)
        self.seq_of_mid: dict[int, int] = {}
        self.acked_mids: set[int] = set()
        self.client.on_publish = self._on_publish
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any,
                    properties: Any) -> None:
        self.acked_mids.add(mid)

    def publish(self, seq: int) -> None:
        info = self.client.publish("load/clim1", f'{{"t": {seq}.5}}', qos=1)
        self.seq_of_mid[info.mid] = seq

    @property
    def acked(self) -> set[int]:
        mids = set(self.acked_mids)
        return {seq for mid, seq in list(self.seq_of_mid.items()) if mid in mids}

    def wait_acked(self, n: int, within_s: float = 30.0) -> None:
        deadline = time.monotonic() + within_s
        while len(self.acked) < n and time.monotonic() < deadline:
            time.sleep(0.05)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def stored_values(influx: InfluxDB1, db: str) -> list[int]:
    """Every stored temperature as its sequence number (one entry per point)."""
    result = influx.query(db, "SELECT temperature_c FROM climate")["results"][0]
    return [int(v[1]) for s in result.get("series", []) for v in s["values"]]


def wait_stored(influx: InfluxDB1, db: str, want: set[int], within_s: float = 60.0) -> list[int]:
    deadline = time.monotonic() + within_s
    values: list[int] = []
    while time.monotonic() < deadline:
        values = stored_values(influx, db)
        if want <= set(values):
            return values
        time.sleep(0.25)
    missing = sorted(want - set(values))
    raise AssertionError(f"{len(missing)} acknowledged reading(s) missing: {missing[:20]}")


@pytest.fixture
def publisher(mosquitto: Mosquitto) -> Iterator[Publisher]:
    device = Publisher(mosquitto.port)
    yield device
    device.close()


def test_influxdb_outage_of_15_s_loses_nothing(
        mosquitto: Mosquitto, tmp_path: Path, publisher: Publisher) -> None:
    # 15 s proves what 60 s did: the writer's retry backoff reaches its 2 s cap
    # (daemon/tsdb/writer.py) within 2 s, so the outage holds ~7 failed writes at the cap, and
    # the ~150 readings it spools are far from any quota; nothing else in the daemon counts
    # the outage's length. The no-loss and no-duplicate checks are the same.
    influx = InfluxDB1(tmp_path / "influx")
    influx.start()
    influx.create_database("outage")
    daemon = DaemonProcess(tmp_path, config(mosquitto, influx.url, "outage",
                                            tmp_path / "state", "durable-outage"))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        seq = 0
        for _ in range(50):
            publisher.publish(seq := seq + 1)
        wait_stored(influx, "outage", set(range(1, 51)))
        influx.stop()
        outage_end = time.monotonic() + OUTAGE_S
        while time.monotonic() < outage_end:  # 10 readings a second all through the outage
            publisher.publish(seq := seq + 1)
            time.sleep(0.1)
        backlog = subprocess.run(
            [sys.executable, "-m", "daemon.cli", "spool", "-c", str(daemon.config_path)],
            capture_output=True, text=True, timeout=60, check=True).stdout
        assert "point(s) to write" in backlog and " 0 point(s)" not in backlog, backlog
        influx.start()
        for _ in range(50):
            publisher.publish(seq := seq + 1)
        publisher.wait_acked(seq)
        values = wait_stored(influx, "outage", set(range(1, seq + 1)))
        assert len(values) == len(set(values)) == seq, "a reading was stored twice"
        print(f"\noutage: published {seq}, stored {len(set(values))}, lost 0, "
              f"duplicated {len(values) - len(set(values))}")
    finally:
        assert daemon.stop() == 0, daemon.log()
        influx.close()


def test_sigkilled_daemon_loses_and_duplicates_nothing(
        mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path, publisher: Publisher) -> None:
    influxdb1.create_database("killed")
    cfg = config(mosquitto, influxdb1.url, "killed", tmp_path / "state", "durable-kill")
    daemon = DaemonProcess(tmp_path, cfg)
    daemon.start()
    daemon.wait_log("MQTT connected")
    stop = threading.Event()
    count = [0]

    def load() -> None:  # ~1000 readings a second while the daemon is killed and restarted
        while not stop.is_set():
            for _ in range(20):
                count[0] += 1
                publisher.publish(count[0])
            time.sleep(0.02)

    thread = threading.Thread(target=load)
    thread.start()
    kills = 0
    try:
        for _ in range(4):
            time.sleep(random.uniform(0.7, 1.5))
            assert daemon.proc is not None
            daemon.proc.send_signal(signal.SIGKILL)
            daemon.proc.wait()
            kills += 1
            daemon.start()
            daemon.wait_log("MQTT connected", count=kills + 1)
        time.sleep(0.5)
    finally:
        stop.set()
        thread.join()
    try:
        publisher.wait_acked(count[0])
        acked = set(publisher.acked)
        values = wait_stored(influxdb1, "killed", acked, within_s=90)
        duplicated = len(values) - len(set(values))
        print(f"\nSIGKILL x{kills}: published {count[0]}, acknowledged by the broker "
              f"{len(acked)}, stored {len(set(values))}, lost {len(acked - set(values))}, "
              f"duplicated {duplicated}")
        assert duplicated == 0
    finally:
        # Never leave a daemon behind: it would hold ports and a broker session.
        assert daemon.stop() == 0, daemon.log()


def test_broker_restart_during_load_loses_nothing(
        mosquitto: Mosquitto, influxdb1: InfluxDB1, tmp_path: Path, publisher: Publisher) -> None:
    influxdb1.create_database("brokerrestart")
    daemon = DaemonProcess(tmp_path, config(mosquitto, influxdb1.url, "brokerrestart",
                                            tmp_path / "state", "durable-broker"))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        for seq in range(1, 501):
            publisher.publish(seq)
            if seq == 250:
                publisher.wait_acked(250)
                mosquitto.restart()  # SIGTERM: Mosquitto saves its persistent sessions
        publisher.wait_acked(500, within_s=60)
        acked = set(publisher.acked)
        assert len(acked) == 500
        values = wait_stored(influxdb1, "brokerrestart", acked)
        assert len(values) == len(set(values))
    finally:
        assert daemon.stop() == 0, daemon.log()


def test_power_cut_mid_commit_keeps_every_whole_transaction(tmp_path: Path) -> None:
    live, cut_copy = tmp_path / "live", tmp_path / "after-power-cut"
    live.mkdir()
    cut_copy.mkdir()
    batches = [[f"climate,sensor=c1 temperature_c={b}.{i} {b * 100 + i}" for i in range(100)]
               for b in range(40)]

    async def fill() -> None:
        spool = Spool(live / "spool.sqlite", ["t"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        for batch in batches:
            await spool.append(batch)
        # The power goes: the files are as they are on disk now, no clean close.
        for name in ("spool.sqlite", "spool.sqlite-wal"):
            (cut_copy / name).write_bytes((live / name).read_bytes())
        runner.cancel()
        await spool.close()

    asyncio.run(fill())
    wal = cut_copy / "spool.sqlite-wal"
    size = wal.stat().st_size
    cut = random.Random(11).randrange(size // 2, size - 100)
    with wal.open("r+b") as wal_file:
        wal_file.truncate(cut)  # the write of the last frames was torn

    async def reopen() -> tuple[list[str], Spool]:
        spool = Spool(cut_copy / "spool.sqlite", ["t"], max_bytes=1 << 30)
        await spool.open()
        rows = await spool.read("t", 100_000)
        await spool.close()
        return [text for _, text in rows], spool

    kept, spool = asyncio.run(reopen())
    assert spool.torn_wal is not None and spool.torn_wal.exists()  # reported and kept aside
    # Transactions are all-or-nothing: the points kept are exactly the first k whole batches.
    assert 0 < len(kept) < 4000 and len(kept) % 100 == 0
    assert kept == [text for batch in batches[: len(kept) // 100] for text in batch]
    print(f"\ntorn log at byte {cut} of {size}: kept {len(kept)} of 4000 points "
          f"({len(kept) // 100} whole commits)")


def test_corrupt_spool_file_is_set_aside_and_the_daemon_starts(tmp_path: Path) -> None:
    path = tmp_path / "spool.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + bytes(random.Random(3).randbytes(8192)))

    async def reopen() -> tuple[int, Any]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await spool.append(["m f=1.0 1"])
        n = len(await spool.read("t", 10))
        runner.cancel()
        await spool.close()
        return n, spool.damage

    works, damage = asyncio.run(reopen())
    assert works == 1
    assert damage is not None and damage.moved_to.exists()
    report = inspect_spool(path)
    assert report is not None and report.damaged_files == [damage.moved_to]


def test_a_full_spool_sheds_climate_points_oldest_first_and_never_withholds_a_commit(
        tmp_path: Path) -> None:
    """Never blind (this reverses "a full spool withholds acknowledgement"): at its quota the
    spool commits at once, gives up the oldest climate and health points first, and keeps door
    states and alert transitions."""
    async def main() -> tuple[bool, int, list[str], list[str]]:
        spool = Spool(tmp_path / "spool.sqlite", ["t"], max_bytes=1 << 20)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        big = "x" * 2000
        i = 0
        while not spool.full:
            await spool.append([f"climate,sensor=c{i} f=\"{big}\" {i}" for _ in range(30)]
                               + [f"door,door=D{i} open=true {i}"])
            i += 1
        # At the quota: the next commit is not held back (its message is acknowledged).
        committed = spool.append([f"climate,sensor=late f=\"{big}\" 1",
                                  "alert,rule=door_armed state=\"firing\" 2"])
        await asyncio.wait_for(committed, 5)
        rows = [line for _, line in await spool.read("t", 1_000_000)]
        runner.cancel()
        await spool.close()
        return committed.done(), spool.shed_points, rows, [f"door,door=D{n} open=true {n}"
                                                           for n in range(i)]

    done, shed, rows, doors = asyncio.run(main())
    assert done and shed > 0
    # Every door state and the alert are kept; the oldest climate points went first.
    assert [r for r in rows if r.startswith("door,")] == doors
    assert "alert,rule=door_armed state=\"firing\" 2" in rows
    assert not any(r.startswith("climate,sensor=c0 ") for r in rows)


def test_spool_survives_its_process_being_killed(tmp_path: Path) -> None:
    # Commit, then SIGKILL before any clean close: every committed point is there afterwards.
    script = f"""
import asyncio, os, signal, sys
sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
from pathlib import Path
from daemon.spool.store import Spool
async def main():
    spool = Spool(Path({str(tmp_path / 'spool.sqlite')!r}), ["t"], max_bytes=1 << 30)
    await spool.open()
    asyncio.create_task(spool.run())
    for i in range(100):
        await spool.append([f"m f={{i}}.0 {{i}}"])
    print("committed", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
asyncio.run(main())
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONWARNINGS": ""})
    assert "committed" in done.stdout and done.returncode == -signal.SIGKILL

    async def count() -> int:
        spool = Spool(tmp_path / "spool.sqlite", ["t"], max_bytes=1 << 30)
        await spool.open()
        n = len(await spool.read("t", 1000))
        await spool.close()
        return n

    assert asyncio.run(count()) == 100


def test_identical_messages_keep_a_receipt_each(tmp_path: Path) -> None:
    # An unchanged heartbeat has the same bytes every time: acknowledging the first one must not
    # forget the second, or the broker's redelivery of the second is taken twice.
    digest = b"zigbee2mqtt/door1\x00same bytes"

    async def main() -> tuple[dict[bytes, int], dict[bytes, int], dict[bytes, int]]:
        spool = Spool(tmp_path / "spool.sqlite", ["t"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await spool.append(["m f=1.0 1"], [(digest, time.time_ns())])
        await spool.append(["m f=1.0 2"], [(digest, time.time_ns())])
        both = dict(spool.receipts)
        spool.acknowledged(digest)
        await spool.append(["m f=1.0 3"])
        one = dict(spool.receipts)
        runner.cancel()
        await spool.close()
        again = Spool(tmp_path / "spool.sqlite", ["t"], max_bytes=1 << 30)
        await again.open()  # what a restart finds: the second message still awaits its PUBACK
        reopened = dict(again.receipts)
        await again.close()
        return both, one, reopened

    both, one, reopened = asyncio.run(main())
    assert both == {digest: 2} and one == {digest: 1} and reopened == {digest: 1}


def test_receipts_of_an_older_spool_are_carried_over(tmp_path: Path) -> None:
    import sqlite3

    path = tmp_path / "spool.sqlite"
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE receipts (digest BLOB PRIMARY KEY, at_ns INTEGER NOT NULL)")
    db.execute("INSERT INTO receipts VALUES (?, ?)", (b"old", time.time_ns()))
    db.commit()
    db.close()

    async def main() -> dict[bytes, int]:
        spool = Spool(path, ["t"], max_bytes=1 << 30)
        await spool.open()
        receipts = dict(spool.receipts)
        await spool.close()
        return receipts

    assert asyncio.run(main()) == {b"old": 1}
