"""The walking skeleton end to end: Mosquitto -> daemon subprocess -> InfluxDB 1.x, VM, alerts."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from daemon_process import DaemonProcess
from mqtt_probe import MqttProbe
from servers import InfluxDB1, Mosquitto, VictoriaMetrics

SITE = "e2e-depot"
TOKEN = "e2e-officer-token-berger"
ALERTS = f"depotwatch/{SITE}/alerts/#"


def depot_config(mosquitto: Mosquitto, influxdb1: InfluxDB1, vm: VictoriaMetrics,
                 state_dir: Path, client_id: str) -> dict[str, Any]:
    return {
        "site": {"id": SITE},
        "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "name": "Store 1", "armed": {"mode": "always"}},
                        {"id": "SH2", "name": "Magazine 2", "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"},
                  {"id": "SH2-D1", "storehouse": "SH2", "contact_sensor": "door2"}],
        "climate_sensors": [{"id": "clim1", "storehouse": "SH1"},
                            {"id": "clim2", "storehouse": "SH2"},
                            {"id": "tas1", "storehouse": "SH2"}],
        "mqtt": {
            "host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id,
            "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
            "subscriptions": [
                {"topic": "zigbee2mqtt/{sensor}", "decoder": {"type": "zigbee2mqtt"}},
                {"topic": "tele/{sensor}/SENSOR", "decoder": {"type": "tasmota"}},
                {"topic": "site/+/{sensor}/state",
                 "decoder": {"type": "json_fields", "fields": {"temperature_c": "t"}}},
            ],
        },
        "influxdb": [
            {"api": "v1", "url": influxdb1.url, "database": "depot", "flush_interval_s": 0.2},
            {"api": "v2", "url": vm.url, "bucket": "depot", "org": "hq", "token": "x",
             "flush_interval_s": 0.2},
        ],
        "rules": [
            {"type": "climate"},
            {"type": "door_armed"},
            {"type": "tamper"},
            # Short enough for a test; the defaults are PSSM.md's 10 s / 180 s / 15 min.
            {"type": "sensor_silent", "wired_s": 60, "radio_s": 60, "climate_s": 2.0},
        ],
        "tick_interval_s": 0.2,
        # Port 0: several daemons run side by side in the tests; each logs where it listens.
        "api": {"listen_port": 0,
                "officers": [{"name": "Sgt. Berger",
                              "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]},
    }


@pytest.fixture(scope="module")
def depot_daemon(mosquitto: Mosquitto, influxdb1: InfluxDB1, victoriametrics: VictoriaMetrics,
                 tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    influxdb1.create_database("depot")
    workdir = tmp_path_factory.mktemp("e2e")
    daemon = DaemonProcess(workdir, depot_config(
        mosquitto, influxdb1, victoriametrics, workdir / "state", "depotwatch-e2e"))
    daemon.start()
    daemon.wait_log("MQTT connected")
    yield daemon
    assert daemon.stop() == 0, daemon.log()


def api_url(daemon: DaemonProcess) -> str:
    """The officers' API of a daemon started with `listen_port: 0`."""
    daemon.wait_log("alert API listening on")
    match = re.search(r"alert API listening on (http://\S+)", daemon.log())
    assert match is not None
    return match.group(1)


def influx_rows(influxdb1: InfluxDB1, query: str, want: int = 1,
                timeout: float = 10.0) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        result = influxdb1.query("depot", query)["results"][0]
        rows = []
        for series in result.get("series", []):
            for values in series["values"]:
                row = dict(zip(series["columns"], values, strict=True))
                row.update(series.get("tags", {}))
                rows.append(row)
        if len(rows) >= want:
            return rows
        time.sleep(0.1)
    raise AssertionError(f"{query!r} gave {len(rows)} rows, wanted {want}: {rows}")


def vm_samples(vm: VictoriaMetrics, match: str, want: int,
               timeout: float = 15.0) -> list[dict[str, Any]]:
    """VictoriaMetrics makes samples searchable in stages: poll until all are there."""
    deadline = time.monotonic() + timeout
    series: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        series = vm.wait_for_series(match, timeout=timeout)
        if sum(len(s["values"]) for s in series) >= want:
            return series
        time.sleep(0.2)
    raise AssertionError(f"{match}: wanted {want} samples, got {series}")


def test_readings_reach_influxdb_and_alerts_reach_mqtt(
        depot_daemon: DaemonProcess, mosquitto: Mosquitto, influxdb1: InfluxDB1,
        victoriametrics: VictoriaMetrics) -> None:
    async def scenario() -> None:
        async with MqttProbe(mosquitto.port) as probe:
            await probe.subscribe(ALERTS)
            probe.publish("zigbee2mqtt/door1", {"contact": True, "tamper": False, "battery": 90})
            probe.publish("zigbee2mqtt/clim1", {"temperature": 21.5, "humidity": 40})
            probe.publish("zigbee2mqtt/clim2", {"temperature": 19, "humidity": 55.5})
            probe.publish("tele/tas1/SENSOR", {"AM2301": {"Temperature": 18.25, "Humidity": 50}})
            probe.publish("site/north/clim1/state", {"t": 22.0})
            await asyncio.sleep(0.3)
            # The intrusion: a door of the always-armed store opens, with its tamper switch.
            probe.publish("zigbee2mqtt/door1", {"contact": False, "tamper": True})
            # A door of the never-armed store opens: no alarm.
            probe.publish("zigbee2mqtt/door2", {"contact": False})
            probe.publish("zigbee2mqtt/clim1", {"temperature": 55.0, "humidity": 40})
            probe.publish("zigbee2mqtt/clim1", {"temperature": 56.0, "humidity": 40})
            door = await probe.wait_alert("door_armed.SH1-D1", "firing")
            assert door["severity"] == "critical" and door["storehouse"] == "SH1"
            assert "opened while armed" in door["summary"]
            await probe.wait_alert("tamper.door1", "firing")
            await probe.wait_alert("temperature_critical.clim1", "firing")
            # clim2 and tas1 now fall silent while clim1 keeps reporting.
            for _ in range(12):
                probe.publish("zigbee2mqtt/clim1", {"temperature": 20.0, "humidity": 40})
                await asyncio.sleep(0.25)
            await probe.wait_alert("sensor_silent.clim2", "firing")
            await probe.wait_alert("sensor_silent.tas1", "firing")
            # Critical alarms are never cleared by the condition alone (PSSM.md): they stay
            # open, marked as over, until an officer records the on-site check.
            await probe.wait_alert("temperature_critical.clim1", "firing",
                                   condition_active=False)
            assert not [a for a in probe.alerts() if a["key"] == "sensor_silent.clim1"]
            probe.publish("zigbee2mqtt/door1", {"contact": True, "tamper": False})
            await probe.wait_alert("door_armed.SH1-D1", "firing", condition_active=False)
            await probe.wait_alert("tamper.door1", "firing", condition_active=False)
            # The duty officer acknowledges and, back from the door, records the check.
            api = api_url(depot_daemon)
            async with aiohttp.ClientSession(
                    headers={"Authorization": f"Bearer {TOKEN}"}) as http:
                async with http.post(f"{api}/api/v1/alerts/door_armed.SH1-D1/ack",
                                     json={"note": "on my way"}) as resp:
                    assert resp.status == 200, await resp.text()
                async with http.post(f"{api}/api/v1/alerts/door_armed.SH1-D1/check",
                                     json={"finding": "false_alarm",
                                           "note": "door closed, nothing missing"}) as resp:
                    assert resp.status == 200, await resp.text()
                    assert (await resp.json())["state"] == "cleared"
            cleared = await probe.wait_alert("door_armed.SH1-D1", "resolved")
            assert cleared["facts"]["finding"] == "false_alarm"
            assert cleared["facts"]["checked_by"] == "Sgt. Berger"
            assert not [a for a in probe.alerts() if a["key"].endswith("SH2-D1")]
            raised = [a["key"] for a in probe.alerts() if a["facts"].get("condition_active")
                      and a["facts"].get("lifecycle") == "firing"]
            assert len(raised) == len(set(raised)), "an alarm was raised twice"

        # Retained: a late subscriber (the duty room's screen) sees the current state per key.
        async with MqttProbe(mosquitto.port) as late:
            await late.subscribe(ALERTS)
            await asyncio.sleep(0.3)
            latest = {a["key"]: a for a in late.alerts()}
            assert latest["door_armed.SH1-D1"]["state"] == "resolved"
            assert latest["tamper.door1"]["facts"]["condition_active"] is False
            assert latest["sensor_silent.clim2"]["state"] == "firing"

    asyncio.run(scenario())

    doors = influx_rows(influxdb1, "SELECT open, tamper FROM door WHERE door = 'SH1-D1'", 3)
    assert [r["open"] for r in doors] == [False, True, False]
    assert [r["tamper"] for r in doors] == [False, True, False]
    climate = influx_rows(influxdb1, "SELECT temperature_c, humidity_pct, dew_point_c "
                                     "FROM climate WHERE sensor = 'tas1'")
    assert climate[0]["temperature_c"] == 18.25 and climate[0]["humidity_pct"] == 50.0
    assert 7 < climate[0]["dew_point_c"] < 9
    generic = influx_rows(influxdb1, "SELECT temperature_c, storehouse FROM climate "
                                     "WHERE sensor = 'clim1' "
                                     "AND temperature_c = 22.0")
    assert generic[0]["storehouse"] == "SH1"
    alerts = influx_rows(influxdb1, 'SELECT "key", summary FROM alert GROUP BY state', 4)
    assert {r["state"] for r in alerts} == {"firing", "resolved"}  # the rules' conditions

    series = vm_samples(victoriametrics, 'door_open{door="SH1-D1"}', 3)
    assert series[0]["metric"]["site"] == SITE
    assert sorted(series[0]["values"]) == [0, 0, 1]
    temps = vm_samples(victoriametrics, 'climate_temperature_c{sensor="tas1"}', 1)
    assert temps[0]["values"] == [18.25]


def stamp() -> dict[str, Any]:
    """A command's sending time and nonce (README "Alarms for officers")."""
    return {"sent_at": time.time(), "nonce": uuid.uuid4().hex}


def test_officers_act_over_the_mqtt_command_topic(depot_daemon: DaemonProcess,
                                                  mosquitto: Mosquitto) -> None:
    commands = f"depotwatch/{SITE}/commands"

    async def scenario() -> list[dict[str, Any]]:
        async with MqttProbe(mosquitto.port) as probe:
            await probe.subscribe(f"{commands}/replies")
            await probe.subscribe(ALERTS)
            probe.publish(commands, {**stamp(), "id": "c1", "token": "not-a-token", "action": "ack",
                                     "key": "tamper.door1"})
            probe.publish(commands, b"\xffnot a command")
            probe.publish(commands, {**stamp(), "id": "c2", "token": TOKEN, "action": "ack",
                                     "key": "tamper.door1", "note": "seen on camera"})
            probe.publish(commands, {**stamp(), "id": "c3", "token": TOKEN, "action": "check",
                                     "key": "tamper.door1", "finding": "fault"})
            probe.publish(commands, {**stamp(), "id": "c4", "token": TOKEN, "action": "check",
                                     "key": "tamper.door1", "finding": "fault"})
            await probe.wait_alert("tamper.door1", "resolved")
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 5
            while loop.time() < deadline:
                replies = [json.loads(p) for t, p in probe.messages if t.endswith("/replies")]
                if len(replies) == 5:
                    return replies
                await asyncio.sleep(0.05)
            raise AssertionError(f"replies: {probe.messages}")

    replies = {r["id"]: r for r in asyncio.run(scenario())}
    assert replies["c1"] == {"id": "c1", "ok": False, "error": "unknown officer token"}
    assert replies["c2"]["ok"] and replies["c2"]["result"]["acked_by"] == "Sgt. Berger"
    assert replies["c3"]["ok"] and replies["c3"]["result"]["state"] == "cleared"
    assert replies["c4"] == {"id": "c4", "ok": False, "error": "tamper.door1 is already cleared"}
    assert replies[""]["ok"] is False  # the garbage, answered and kept as a dead letter
    assert f"rejected payload from {commands}: malformed command" in depot_daemon.log()
    assert "not-a-token" not in depot_daemon.log()


BAD_INPUTS = [
    ("zigbee2mqtt/door1", b"this is not json", "not JSON"),
    ("zigbee2mqtt/door1", b'{"contact": "open"}', "expected true/false"),
    ("zigbee2mqtt/forklift-7", b'{"contact": true}', "unknown sensor 'forklift-7'"),
    ("zigbee2mqtt/clim1", b"{" + b" " * (1 << 20) + b"}", "exceeds 65536"),
    ("tele/tas1/SENSOR", bytes(range(256)) * 4, "not UTF-8"),
]


def test_bad_input_is_counted_kept_and_logged_once(
        depot_daemon: DaemonProcess, mosquitto: Mosquitto, influxdb1: InfluxDB1) -> None:
    async def publish() -> None:
        async with MqttProbe(mosquitto.port) as probe:
            for _ in range(3):
                for topic, payload, _reason in BAD_INPUTS:
                    probe.publish(topic, payload)
            await asyncio.sleep(0.5)
            # The daemon is still taking good readings after all that.
            probe.publish("zigbee2mqtt/clim2", {"temperature": 17.5, "humidity": 45})
            await asyncio.sleep(0.5)

    asyncio.run(publish())
    influx_rows(influxdb1, "SELECT temperature_c FROM climate WHERE temperature_c = 17.5")
    assert depot_daemon.running()
    log = depot_daemon.log()
    # Logged at most once a minute per source, with the topic.
    assert log.count("rejected payload from zigbee2mqtt/door1") == 1
    assert log.count("rejected payload from zigbee2mqtt/forklift-7") == 1
    done = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "deadletters", "-c", str(depot_daemon.config_path),
         "-n", "100"], capture_output=True, text=True, timeout=60, check=True)
    # 15 bad sensor payloads here, and the garbage command of the command-topic test.
    assert "16 dead letter(s) kept" in done.stdout
    for topic, _payload, reason in BAD_INPUTS:
        assert any(topic in line and reason in line for line in done.stdout.splitlines()), (
            topic, reason, done.stdout)
    assert "[1048578 bytes]" in done.stdout  # the 1 MB payload is kept whole


def test_reconnects_and_resubscribes_after_a_broker_restart(
        depot_daemon: DaemonProcess, mosquitto: Mosquitto, influxdb1: InfluxDB1) -> None:
    connects = depot_daemon.log().count("MQTT connected")
    mosquitto.stop()
    time.sleep(1.0)
    mosquitto.start()
    depot_daemon.wait_log("MQTT connected", count=connects + 1, timeout=20)

    async def publish() -> None:
        async with MqttProbe(mosquitto.port) as probe:
            probe.publish("zigbee2mqtt/clim2", {"temperature": 16.75, "humidity": 45})
            await asyncio.sleep(0.3)

    asyncio.run(publish())
    influx_rows(influxdb1, "SELECT temperature_c FROM climate WHERE temperature_c = 16.75")
    assert "MQTT connection to 127.0.0.1" in depot_daemon.log()


def test_open_door_timer_survives_a_daemon_restart(
        mosquitto: Mosquitto, influxdb1: InfluxDB1, victoriametrics: VictoriaMetrics,
        tmp_path: Path) -> None:
    config = depot_config(mosquitto, influxdb1, victoriametrics, tmp_path / "state",
                          "depotwatch-restart")
    config["rules"].append({"type": "door_held_open", "max_open_s": 4})
    config["influxdb"] = []

    async def scenario() -> None:
        async with MqttProbe(mosquitto.port) as probe:
            await probe.subscribe(ALERTS)
            first = DaemonProcess(tmp_path, config)
            first.start()
            first.wait_log("MQTT connected")
            opened_ns = time.time_ns()
            # SH2 is never armed: the open door only matters once it is held open too long.
            probe.publish("zigbee2mqtt/door2", {"contact": False})
            await asyncio.sleep(1.0)
            assert first.stop() == 0, first.log()
            assert (tmp_path / "state" / "engine-state.json").exists()
            second = DaemonProcess(tmp_path, config)
            second.start()
            try:
                second.wait_log("engine state restored")
                alert = await probe.wait_alert("door_held_open.SH2-D1", "firing", within_s=15)
                held_s = (alert["changed_ns"] - opened_ns) / 1e9
                # Timed from the opening before the restart, not from the new start.
                assert 4 <= held_s < 8, held_s
                assert "held open for" in alert["summary"]
            finally:
                assert second.stop() == 0, second.log()

    asyncio.run(scenario())
