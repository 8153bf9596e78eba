"""Broker replays (issue 24, item 5): a Mosquitto restored from an older store sends messages
again without the DUP flag; they are not stored twice, and an unchanged heartbeat (identical
bytes every time) is never taken for one."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from daemon_process import DaemonProcess
from hypothesis import given
from hypothesis import strategies as st
from servers import InfluxDB1, Mosquitto
from test_durability import Publisher, config

from daemon.ingest.replays import ReplayWindow

DIGESTS = st.binary(min_size=16, max_size=16)


@given(st.lists(st.tuples(st.sampled_from([b"h" * 16, b"r" * 16]),
                          st.integers(1, 65535)), max_size=200))
def test_nothing_taken_outside_the_opening_run_is_ever_a_replay(
        messages: list[tuple[bytes, int]]) -> None:
    window = ReplayWindow(600.0, 1 << 18)
    assert not any(window.replayed(d, mid, 10**9 + i) for i, (d, mid) in enumerate(messages))


@given(st.lists(st.tuples(DIGESTS, st.integers(1, 65535)), min_size=1, max_size=100,
                unique=True), st.integers(0, 100))
def test_a_replay_is_skipped_until_the_first_new_message(
        taken: list[tuple[bytes, int]], cut: int) -> None:
    window = ReplayWindow(600.0, 1 << 18)
    for i, (digest, mid) in enumerate(taken):
        assert not window.replayed(digest, mid, i)
    window.session_opened()
    replay = taken[min(cut, len(taken) - 1):]
    assert all(window.replayed(d, mid, 10**6) for d, mid in replay)
    assert window.skipped == len(replay)
    # A new message ends the run: the same bytes under an old packet id are new from here on.
    assert not window.replayed(b"n" * 16, 7, 10**6)
    assert not any(window.replayed(d, mid, 10**6) for d, mid in replay)


def test_the_same_bytes_under_another_packet_id_are_a_new_message() -> None:
    window = ReplayWindow(600.0, 1 << 18)
    window.replayed(b"h" * 16, 1, 0)
    window.session_opened()
    assert not window.replayed(b"h" * 16, 2, 1)


def test_the_window_forgets_by_age_and_by_count() -> None:
    window = ReplayWindow(10.0, 1000)
    window.replayed(b"a" * 16, 1, 0)
    for i in range(2, 4):
        window.replayed(bytes([i]) * 16, i, 11 * 10**9 * (i - 1))
    window.session_opened()
    assert not window.replayed(b"a" * 16, 1, 33 * 10**9)
    for i in range(5000):
        window.replayed(i.to_bytes(16, "big"), i % 65536, 40 * 10**9)
    assert len(window) <= 1000


def test_a_failed_commit_forgets_the_window() -> None:
    window = ReplayWindow(600.0, 1000)
    window.replayed(b"a" * 16, 1, 0)
    window.forget()
    window.session_opened()
    assert not window.replayed(b"a" * 16, 1, 1)


def _count(influx: InfluxDB1, db: str, sensor: str) -> int:
    result = influx.query(db, f"SELECT count(temperature_c) FROM climate WHERE sensor = '{sensor}'")
    series = result["results"][0].get("series", [])
    return int(series[0]["values"][0][1]) if series else 0


def _wait_count(influx: InfluxDB1, db: str, sensor: str, n: int, within_s: float = 30) -> int:
    deadline = time.monotonic() + within_s
    while (got := _count(influx, db, sensor)) < n and time.monotonic() < deadline:
        time.sleep(0.25)
    return got


def test_a_broker_restored_from_an_old_store_duplicates_nothing(
        influxdb1: InfluxDB1, tmp_path: Path) -> None:
    broker = Mosquitto(tmp_path / "broker")
    broker.start()
    influxdb1.create_database("replays")
    cfg = config(broker, influxdb1.url, "replays", tmp_path / "state", "replay-daemon")
    cfg["climate_sensors"].append({"id": "clim2", "storehouse": "SH1"})
    daemon = DaemonProcess(tmp_path, cfg)
    device = None
    try:
        daemon.start()  # subscribes: the broker keeps the session while the daemon is away
        daemon.wait_log("MQTT connected")
        assert daemon.stop() == 0
        device = Publisher(broker.port)
        for seq in range(1, 151):  # queued for the daemon, with identical heartbeats among them
            device.publish(seq)
            if seq % 3 == 0:
                device.client.publish("load/clim2", b'{"t": 20.5}', qos=1)
        device.wait_acked(150)
        time.sleep(0.5)
        broker.stop()  # saves its store: the queue above, ids and all
        shutil.copy(broker.dir / "mosquitto.db", tmp_path / "old-store.db")
        broker.start()
        daemon.start()
        values = _wait(influxdb1, 150)
        assert _wait_count(influxdb1, "replays", "clim2", 50) == 50
        broker.kill()  # a crash; it comes back from the older store and sends all 200 again
        shutil.copy(tmp_path / "old-store.db", broker.dir / "mosquitto.db")
        broker.start()
        daemon.wait_log("MQTT connected", count=2, timeout=30)
        for seq in range(151, 201):
            device.client.publish("load/clim2", b'{"t": 20.5}', qos=1)
            device.publish(seq)
        device.wait_acked(200)
        values = _wait(influxdb1, 200)
        time.sleep(2)  # what the broker sends again has had time to arrive
        values = _clim1(influxdb1)
        assert sorted(values) == list(range(1, 201)), "a reading was lost or stored twice"
        assert _count(influxdb1, "replays", "clim2") == 100, "a heartbeat lost or doubled"
    finally:
        if device is not None:
            device.close()
        if daemon.running():
            assert daemon.stop() == 0, daemon.log()
        broker.close()


def _wait(influx: InfluxDB1, n: int, within_s: float = 30) -> list[int]:
    deadline = time.monotonic() + within_s
    values = _clim1(influx)
    while len(set(values)) < n and time.monotonic() < deadline:
        time.sleep(0.25)
        values = _clim1(influx)
    return values


def _clim1(influx: InfluxDB1) -> list[int]:
    """Every stored reading of clim1 as its sequence number (one entry per point)."""
    result = influx.query("replays", "SELECT temperature_c FROM climate WHERE sensor = 'clim1'")
    return [int(v[1]) for s in result["results"][0].get("series", []) for v in s["values"]]
