"""Availability and no silent loss through the real pipeline (decoders, DeviceWatch, rules):
offline is no sign of life but a fault at once, a bridge offline is one fault naming its
sensors, a security field no rule reads is counted with one fault, a null probe is skipped
and counted."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from daemon.alerts.alarm import Alarm
from daemon.alerts.book import AlertBook
from daemon.alerts.inhibition import inhibitor
from daemon.alerts.settings import AlertingConfig
from daemon.config.schema import Config
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.pipeline import Pipeline
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import RawMessage, TransitionKind
from drivers.mqtt_topics import TopicRoute, TopicRouter
from rules.engine import Engine

NS = 1_000_000_000
T0 = 1_800_000_000 * NS


def depot_config(state_dir: Path) -> Config:
    return Config.model_validate({
        "site": {"id": "d"}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "armed": {"mode": "always"}}],
        "doors": [{"id": "D1", "storehouse": "SH1", "contact_sensor": "door1"},
                  {"id": "D2", "storehouse": "SH1", "contact_sensor": "door2"}],
        "climate_sensors": [{"id": "c1", "storehouse": "SH1"},
                            {"id": "c2", "storehouse": "SH1"}],
        "bridges": [{"id": "z2m", "profile": "zigbee2mqtt/bridge", "device": "zigbee2mqtt"}],
        "devices": [
            {"sensor": "door1", "profile": "zigbee2mqtt/aqara-mccgq11lm", "bridge": "z2m"},
            {"sensor": "door2", "profile": "zigbee2mqtt/sonoff-snzb-04", "bridge": "z2m"},
            {"sensor": "c1", "profile": "tasmota/ds18b20-multi", "device": "cellar",
             "decoder": {"probes": {"DS18B20-1": "c1", "DS18B20-2": "c2"}}},
        ],
    })


class Depot:
    """A pipeline on a virtual clock with the alert changes it made."""

    def __init__(self, config: Config, tmp: Path) -> None:
        depot = config.depot()
        self.changes: list[Alert] = []
        self.deadletters = DeadLetterStore(tmp / "dead.sqlite", config.deadletters)
        self.pipeline = Pipeline(
            depot=depot,
            router=TopicRouter([TopicRoute.from_config(s) for s in config.mqtt.subscriptions]),
            engine=Engine([(r.type, r.build(depot)) for r in config.rule_set()], depot),
            alerts=AlertBook(), deadletters=self.deadletters,
            store=lambda lines, receipts: None, notify=[self.changes.append])

    def publish(self, topic: str, payload: Any, at_s: float) -> None:
        body = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        now = T0 + int(at_s * NS)
        self.pipeline.ingest(RawMessage(topic, body, now), now)

    def tick(self, at_s: float) -> None:
        self.pipeline.tick(T0 + int(at_s * NS))

    def firing(self) -> set[str]:
        state: dict[str, str] = {}
        for change in self.changes:
            state[change.key] = change.state.value
        return {k for k, v in state.items() if v == TransitionKind.FIRING.value}


@pytest.fixture
def site(tmp_path: Path) -> Iterator[Depot]:
    depot = Depot(depot_config(tmp_path), tmp_path)
    yield depot
    depot.deadletters.close()


def test_offline_is_no_sign_of_life(site: Depot) -> None:
    # door1's limit is its profile's check-in x 2.5: 9,000 s.
    site.publish("zigbee2mqtt/door1", {"contact": True, "battery": 100}, 0)
    for at in range(1000, 9001, 1000):
        site.publish("zigbee2mqtt/door1/availability", {"state": "offline"}, at)
        site.tick(at)
    assert "sensor_silent.door1" not in site.firing()
    site.tick(9001)
    assert "sensor_silent.door1" in site.firing()
    assert site.pipeline.devices.availability["door1"][0] is False


def test_a_device_offline_is_one_fault_at_once_cleared_when_online(site: Depot) -> None:
    site.publish("zigbee2mqtt/door1/availability", {"state": "online"}, 0)
    site.publish("zigbee2mqtt/door1/availability", {"state": "offline"}, 1)
    site.publish("zigbee2mqtt/door1/availability", "offline", 2)
    faults = [(c.key, c.state.value) for c in site.changes if c.rule == "device_offline"]
    assert faults == [("device_offline.door1", "firing")]
    assert "door1" in site.changes[-1].summary
    site.publish("zigbee2mqtt/door1/availability", {"state": "online"}, 3)
    assert [c.state.value for c in site.changes if c.rule == "device_offline"] == [
        "firing", "resolved"]
    # A bridge's state is its own fault, not a device's.
    site.publish("zigbee2mqtt/bridge/state", {"state": "offline"}, 4)
    assert [c.key for c in site.changes][-1] == "bridge_offline.z2m"


def test_a_bridge_offline_is_one_fault_naming_its_sensors(site: Depot) -> None:
    site.publish("zigbee2mqtt/bridge/state", {"state": "online"}, 0)
    site.publish("zigbee2mqtt/bridge/state", {"state": "offline"}, 1)
    site.publish("zigbee2mqtt/bridge/state", "offline", 2)
    faults = [c for c in site.changes if c.rule == "bridge_offline"]
    assert [(c.key, c.state.value) for c in faults] == [("bridge_offline.z2m", "firing")]
    assert "door1, door2" in faults[0].summary
    site.publish("zigbee2mqtt/bridge/state", {"state": "online"}, 30)
    assert [c.state.value for c in site.changes if c.rule == "bridge_offline"] == [
        "firing", "resolved"]


def test_silence_behind_an_offline_bridge_is_muted_by_it(site: Depot) -> None:
    site.tick(0)
    site.publish("zigbee2mqtt/bridge/state", {"state": "offline"}, 0)
    site.tick(9001)
    silent = next(c for c in site.changes if c.key == "sensor_silent.door1")
    bridge = next(c for c in site.changes if c.key == "bridge_offline.z2m")
    assert silent.facts["bridge"] == "z2m"
    rules = AlertingConfig().inhibit
    assert inhibitor(_alarm(silent), [_alarm(bridge)], rules) == bridge.key
    # A silent sensor not behind the bridge is paged.
    other = next(c for c in site.changes if c.key == "sensor_silent.c1")
    assert "bridge" not in other.facts
    assert inhibitor(_alarm(other), [_alarm(bridge)], rules) is None


def _alarm(alert: Alert) -> Alarm:
    return Alarm(alert.key, alert.rule, alert.subject, alert.severity, alert.storehouse,
                 alert.summary, dict(alert.facts), alert.started_ns)


def test_a_security_field_no_rule_reads_is_counted_with_one_fault(site: Depot) -> None:
    for at in (0, 1, 2):
        site.publish("zigbee2mqtt/door1", {"contact": True, "smoke": True}, at)
    site.publish("zigbee2mqtt/door2", {"contact": True, "action": "single"}, 3)
    devices = site.pipeline.devices
    assert devices.unhandled == {"door1": {"smoke": 3}, "door2": {"action=single": 1}}
    faults = [c.key for c in site.changes if c.rule == "unhandled_field"]
    assert faults == ["unhandled_field.door1", "unhandled_field.door2"]
    # The contact in the same messages is read all the same.
    assert devices.last_heard["door1"] == T0 + 2 * NS


def test_a_null_probe_is_skipped_and_counted_the_others_kept(site: Depot) -> None:
    site.publish("tele/cellar/SENSOR", {"DS18B20-1": {"Temperature": None},
                                        "DS18B20-2": {"Temperature": 55.0}}, 0)
    devices = site.pipeline.devices
    assert devices.skipped == {"c1": 1}
    assert "c1" not in devices.last_heard and devices.last_heard["c2"] == T0
    assert site.deadletters.total() == 0


def test_decoder_errors_are_counted_per_sensor(site: Depot) -> None:
    site.publish("zigbee2mqtt/door1", "not json", 0)
    site.publish("zigbee2mqtt/door1/availability", "maybe", 1)
    assert site.pipeline.devices.decode_errors == {"door1": 2}
    assert site.deadletters.total() == 2


def test_device_counts_survive_a_restart_and_damage_costs_only_them(
        site: Depot, tmp_path: Path) -> None:
    site.publish("zigbee2mqtt/door1", {"contact": True, "smoke": True}, 0)
    site.publish("zigbee2mqtt/bridge/state", "offline", 1)
    saved = json.loads(json.dumps(site.pipeline.snapshot()))
    fresh = Depot(depot_config(tmp_path), tmp_path / "x")
    fresh.pipeline.restore(saved)
    assert fresh.pipeline.devices.snapshot() == saved["devices"]
    # The bridge, offline before the restart, stays one fault: no second one on its retained
    # `offline` after the reconnect.
    fresh.publish("zigbee2mqtt/bridge/state", "offline", 2)
    assert not [c for c in fresh.changes if c.rule == "bridge_offline"]
    saved["devices"]["availability"] = {"door1": "broken"}
    damaged = Depot(depot_config(tmp_path), tmp_path / "y")
    damaged.pipeline.restore(saved)
    assert damaged.pipeline.devices.snapshot()["last_heard"] == {}
    assert damaged.pipeline.engine.snapshot() == fresh.pipeline.engine.snapshot()
    fresh.deadletters.close()
    damaged.deadletters.close()


def test_a_bug_in_the_device_watch_costs_no_alarm(site: Depot,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("bug")

    monkeypatch.setattr(site.pipeline.devices, "_unhandled", broken)
    site.tick(0)
    # An armed door opens in a message that also carries a field no door rule reads.
    site.publish("zigbee2mqtt/door1", {"contact": False, "smoke": True}, 1)
    site.tick(2)
    assert "door_armed.D1" in site.firing()
    assert site.deadletters.total() == 0
