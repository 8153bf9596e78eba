"""Every bound profile's samples published over the real Mosquitto to a running daemon:
readings, points and alarms (smoke, water); a bridge outage is one fault that mutes, then
pages, its sensors' silence; a device's own "offline" is a fault at once; a security field no
rule reads raises one fault; `depotwatch devices` rows."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Any

from inprocess_daemon import Running, eventually, running
from servers import Mosquitto

from daemon.alerts.alarm import LifecycleError
from daemon.cli.devices import device_rows
from daemon.config.schema import Config
from drivers.profiles import catalogue


def _config(state_dir: Path, port: int) -> dict[str, Any]:
    return {
        "site": {"id": "devices-depot"}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "name": "Store 1", "armed": {"mode": "always"}}],
        "doors": [{"id": "D1", "storehouse": "SH1", "contact_sensor": "door1"},
                  {"id": "D2", "storehouse": "SH1", "contact_sensor": "door2",
                   "badge_reader": "reader2"},
                  {"id": "D3", "storehouse": "SH1", "contact_sensor": "door3"}],
        "climate_sensors": [{"id": c, "storehouse": "SH1"} for c in ("c1", "c2", "c3", "c4")],
        "detectors": [{"id": "smoke1", "kind": "smoke", "storehouse": "SH1"},
                      {"id": "leak1", "kind": "water_leak", "storehouse": "SH1"}],
        "portals": [{"id": "P1", "storehouse": "SH1", "inner_antenna": "p1-in",
                     "outer_antenna": "p1-out"}],
        "roster": [{"name": "Sgt. Brandt", "badge": "12/3456", "zones": ["SH1"]},
                   {"name": "Cpl. Haas", "badge": "1000/4242", "zones": ["SH1"]}],
        "bridges": [{"id": "z2m", "profile": "zigbee2mqtt/bridge", "device": "zigbee2mqtt"}],
        "devices": [
            # A short silence limit, so that its silence comes during the bridge outage.
            {"sensor": "door1", "profile": "zigbee2mqtt/aqara-mccgq11lm", "bridge": "z2m",
             "silent_after_s": 3},
            {"sensor": "door2", "profile": "shelly/gen1-dw2", "device": "shellydw2-1A2B"},
            {"sensor": "door3", "profile": "shelly/gen2-input-door", "device": "shellyplusi4-d3"},
            {"sensor": "reader2", "profile": "tasmota/wiegand", "device": "gate-reader"},
            {"sensor": "c1", "profile": "tasmota/ds18b20-multi", "device": "cellar",
             "decoder": {"probes": {"DS18B20-1": "c1", "DS18B20-2": "c2", "DS18B20-3": "c4"}}},
            {"sensor": "c3", "profile": "zigbee2mqtt/sonoff-snzb-02", "bridge": "z2m"},
            {"sensor": "smoke1", "profile": "zigbee2mqtt/heiman-hs1sa", "bridge": "z2m"},
            {"sensor": "leak1", "profile": "zigbee2mqtt/aqara-sjcgq11lm"},
            {"sensor": "p1-in", "profile": "rfid/impinj-r700", "device": "portal-reader",
             "decoder": {"antennas": {1: "p1-in", 2: "p1-out"}}},
        ],
        "mqtt": {"host": "127.0.0.1", "port": port,
                 "client_id": f"depotwatch-{uuid.uuid4().hex[:8]}",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "file_output": {"path": str(state_dir / "points.lp")},
        "alerting": {"inhibit_grace_s": 0.5},
        "tick_interval_s": 0.1,
        "api": {"listen_port": 0},
    }


def _publish_samples(live: Running, config: Config) -> int:
    sent = 0
    for binding in config.devices:
        topic = binding.subscriptions()[0].topic
        for sample in catalogue()[binding.profile].samples:
            live.publish(topic, sample.payload.encode())
            sent += 1
    return sent


def test_profile_samples_over_mosquitto_give_readings_and_alarms(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    raw = _config(tmp_path / "state", mosquitto.port)
    config = Config.model_validate(raw)
    with running(raw) as live:
        assert live.probe is not None
        probe = live.probe
        live.call(probe.subscribe("depotwatch/#"))
        devices = live.daemon.pipeline.devices
        live.publish("zigbee2mqtt/bridge/state", b'{"state":"online"}')
        sent = _publish_samples(live, config)
        assert sent >= 18
        every = set(config.depot().sensors)
        eventually(lambda: set(devices.last_heard) >= every - {"c1"})
        # The Tasmota sample with a null probe: skipped and counted, the other probes kept.
        eventually(lambda: devices.skipped.get("c1") == 1)
        assert devices.decode_errors == {}
        # Smoke from the Heiman sample: a critical alarm; the Wiegand badge 12/3456 opens.
        live.call(probe.wait_alert("smoke.smoke1", "firing"))
        # Water from the Aqara leak sample: an alarm, and no unhandled field.
        live.call(probe.wait_alert("water_leak.leak1", "firing"))
        assert "leak1" not in devices.unhandled
        points = (tmp_path / "state" / "points.lp")
        eventually(lambda: points.exists() and "temperature_c=55.2" in points.read_text())
        text = points.read_text()
        assert "sensor=c2" in text and "sensor=c4" in text
        # Both Tasmota Wiegand samples match the roster's canonical facility/card form.
        # The session broker keeps other tests' retained alerts: only this depot's count.
        assert not [a for a in _ours(probe, config) if a["rule"] == "badge_access"]

        # The bridge goes: one fault naming it and its sensors; door1's silence is muted.
        live.publish("zigbee2mqtt/bridge/state", b'{"state":"offline"}')
        fault = live.call(probe.wait_alert("bridge_offline.z2m", "firing"))
        fault_seen_ns = time.time_ns()
        assert "door1" in fault["summary"] and "smoke1" in fault["summary"]
        # door1's silence starts now, with the bridge already offline (on a slow machine the
        # samples above may be more than its 3 s old by now).
        live.publish("zigbee2mqtt/door1", b'{"contact":true}')
        eventually(lambda: devices.last_heard["door1"] > fault_seen_ns)
        desk = live.daemon.desk
        eventually(lambda: _open(live, "sensor_silent.door1"), timeout_s=8)
        assert desk.get("sensor_silent.door1").inhibited_by == "bridge_offline.z2m"
        time.sleep(0.3)
        assert not [a for a in _ours(probe, config) if a["key"] == "sensor_silent.door1"]
        # Back, and door1 still silent: now it is paged.
        live.publish("zigbee2mqtt/bridge/state", b'{"state":"online"}')
        live.call(probe.wait_alert("sensor_silent.door1", "firing", within_s=8))

        # A climate sensor sending smoke: one fault, counted, the temperature still read.
        live.publish("zigbee2mqtt/c3", b'{"temperature":20.5,"smoke":true}')
        live.publish("zigbee2mqtt/c3", b'{"temperature":20.6,"smoke":true}')
        live.call(probe.wait_alert("unhandled_field.c3", "firing"))
        eventually(lambda: devices.unhandled.get("c3") == {"smoke": 2})
        assert len([a for a in _ours(probe, config) if a["key"] == "unhandled_field.c3"]) == 1

        rows = {r["sensor"]: r for r in device_rows(
            config, live.daemon.pipeline.snapshot()["devices"], time.time_ns())}
    assert rows["door1"]["profile"] == "zigbee2mqtt/aqara-mccgq11lm"
    assert rows["door1"]["bridge"] == "z2m" and rows["door1"]["silent_after_s"] == 3
    assert rows["c3"]["unhandled"] == {"smoke": 2}
    assert rows["c1"]["skipped"] == 1 and rows["c1"]["last_heard"] != "never"
    assert rows["bridge z2m"]["availability"] == "online"
    assert rows["bridge z2m"]["behind"] == ["c3", "door1", "smoke1"]


def test_a_device_reporting_itself_offline_is_a_fault_at_once(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # door2's silence limit is its profile's 4 h check-in x 2.5: its last will must not wait.
    raw = _config(tmp_path / "state", mosquitto.port)
    config = Config.model_validate(raw)
    with running(raw) as live:
        assert live.probe is not None
        probe = live.probe
        live.call(probe.subscribe("depotwatch/#"))
        live.publish("shellies/shellydw2-1A2B/online", b"true")
        live.publish("shellies/shellydw2-1A2B/sensor/state", b"close")
        devices = live.daemon.pipeline.devices
        eventually(lambda: devices.availability.get("door2", [None])[0] is True)
        sent_ns = time.time_ns()
        live.publish("shellies/shellydw2-1A2B/online", b"false")
        fault = live.call(probe.wait_alert("device_offline.door2", "firing", within_s=5))
        assert (time.time_ns() - sent_ns) / 1e9 < 5
        assert fault["severity"] == "warning" and "door2" in fault["summary"]
        assert "sensor_silent.door2" not in {a["key"] for a in _ours(probe, config)}
        # Offline again (a retained last will seen twice): still one fault.
        live.publish("shellies/shellydw2-1A2B/online", b"false")
        live.publish("shellies/shellydw2-1A2B/online", b"true")
        live.call(probe.wait_alert("device_offline.door2", "resolved", within_s=5))
        firings = [a for a in _ours(probe, config)
                   if a["key"] == "device_offline.door2" and a["state"] == "firing"]
        assert len(firings) <= 1
        rows = {r["sensor"]: r for r in device_rows(
            config, live.daemon.pipeline.snapshot()["devices"], time.time_ns())}
    assert rows["door2"]["availability"] == "online"


def _open(live: Running, key: str) -> bool:
    async def has() -> bool:
        try:
            live.daemon.desk.get(key)
        except LifecycleError:
            return False
        return True
    return bool(live.call(has()))


def test_a_devices_row_without_state(tmp_path: Path) -> None:
    config = Config.model_validate(_config(tmp_path, 1883))
    rows = device_rows(config, {}, time.time_ns())
    assert {r["last_heard"] for r in rows if r["kind"] != "bridge"} == {"never"}
    assert asyncio is not None


def _ours(probe: Any, config: Config) -> list[dict[str, Any]]:
    """This depot's alerts among those on the session broker."""
    return [a for a in probe.alerts() if a.get("site") == config.site.id]
