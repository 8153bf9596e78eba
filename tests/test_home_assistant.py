"""Home Assistant MQTT discovery against the real Mosquitto and a real `depotwatch run`: the
discovery topics read back as Home Assistant subscribes to them, each config validated against
HA's schema, each value template rendered with Jinja2 (as HA renders it) from the retained
state, the availability topic with the last will."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess
from ha_schema import COMPONENTS, Sensor
from inprocess_daemon import depot
from jinja2.sandbox import ImmutableSandboxedEnvironment
from servers import Mosquitto

from daemon.config.schema import Config
from daemon.homeassistant.discovery import HomeAssistantConfig, StorehouseView, discovery
from daemon.homeassistant.publisher import HomeAssistantPublisher
from daemon.vocabulary.clock import SteadyClock
from daemon.vocabulary.errors import DriverError
from daemon.web.recent import RecentEvents

_JINJA = ImmutableSandboxedEnvironment()


def _retained(broker: Mosquitto, topic: str, count: int) -> dict[str, str]:
    """What a new subscriber to `topic` gets retained: topic -> payload (waits up to 3 s)."""
    done = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                           "-t", topic, "-C", str(count), "-W", "3", "-F", "%t\t%p"],
                          capture_output=True, text=True, check=False)
    return dict(line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line)


def _publish(broker: Mosquitto, topic: str, body: dict[str, Any]) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                    "-t", topic, "-m", json.dumps(body)], check=True, timeout=10)


def _states(broker: Mosquitto, configs: dict[str, dict[str, Any]]) -> dict[str, str]:
    """Each entity's state as Home Assistant would show it: its value template rendered over
    the retained message on its state topic ("None" is HA's unknown)."""
    topics = {c["state_topic"] for c in configs.values()}
    payloads = {t: _retained(broker, t, 1)[t] for t in topics}
    return {c["unique_id"]: _JINJA.from_string(c["value_template"]).render(
        value=payloads[c["state_topic"]], value_json=json.loads(payloads[c["state_topic"]]))
        for c in configs.values()}


def _until(check: Any, timeout_s: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        seen = check()
        if seen or time.monotonic() > deadline:
            return seen
        time.sleep(0.2)


def test_discovery_is_what_home_assistant_takes(mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = depot(tmp_path / "state", mosquitto.port)
    config["site"] = {"id": (site := f"ha-{uuid.uuid4().hex[:8]}"), "name": "Depot North"}
    config["home_assistant"] = {"discovery_prefix": (prefix := f"ha{uuid.uuid4().hex[:6]}")}
    daemon = DaemonProcess(tmp_path, config)
    found: dict[str, str] = {}
    daemon.start()
    try:
        # As HA subscribes: <prefix>/# (its MQTT integration's discovery subscription).
        found.update(_until(lambda: len(_retained(mosquitto, f"{prefix}/#", 7)) == 7 and
                            _retained(mosquitto, f"{prefix}/#", 7)) or {})
        assert found, daemon.log()
        configs = {topic: json.loads(body) for topic, body in found.items()}
        node = f"depotwatch_{site}"
        assert set(configs) == {
            f"{prefix}/{component}/{node}/SH1_{key}/config" for component, key in (
                ("binary_sensor", "armed"), ("binary_sensor", "alarm"),
                ("sensor", "active_alarms"), ("sensor", "unacknowledged_alarms"),
                ("binary_sensor", "door_SH1-D1"), ("sensor", "clim1_temperature"),
                ("sensor", "clim1_humidity"))}
        for topic, body in configs.items():
            component = topic.split("/")[1]
            entity = COMPONENTS[component].model_validate(body)
            assert not isinstance(entity, Sensor) or entity.unit_fits(), body
            assert (entity.availability_topic, entity.device and entity.device.name) == (
                f"depotwatch/{site}/status", "depotwatch Depot North")
            assert entity.state_topic == f"depotwatch/{site}/storehouses/SH1"
        assert len({c["unique_id"] for c in configs.values()}) == len(configs)
        assert _retained(mosquitto, f"depotwatch/{site}/status", 1) == {
            f"depotwatch/{site}/status": "online"}

        by_id = {c["unique_id"]: c for c in configs.values()}
        ids = {key: f"depotwatch_{site}_SH1_{key}" for key in (
            "armed", "alarm", "active_alarms", "door_SH1-D1", "clim1_temperature")}
        first = _states(mosquitto, by_id)
        assert (first[ids["armed"]], first[ids["alarm"]], first[ids["active_alarms"]],
                first[ids["door_SH1-D1"]], first[ids["clim1_temperature"]]) == (
            "ON", "OFF", "0", "None", "None")

        # The store is always armed: the door opening is a critical alarm, shown within ~1 s.
        _publish(mosquitto, "zigbee2mqtt/door1", {"contact": False})
        _publish(mosquitto, "zigbee2mqtt/clim1", {"temperature": 21.5, "humidity": 45})
        later = _until(lambda: (s := _states(mosquitto, by_id))[ids["alarm"]] == "ON"
                       and s[ids["clim1_temperature"]] != "None" and s)
        assert later, daemon.log()
        assert (later[ids["door_SH1-D1"]], later[ids["active_alarms"]],
                float(later[ids["clim1_temperature"]])) == ("ON", "1", 21.5)
        assert daemon.stop() == 0
        # The gateway gone: HA marks every entity unavailable from the availability topic.
        assert _retained(mosquitto, f"depotwatch/{site}/status", 1) == {
            f"depotwatch/{site}/status": "offline"}
    finally:
        if daemon.running():
            daemon.stop()
        # Retained messages of this test's site and prefix cleared from the shared broker.
        for topic in [*found, f"depotwatch/{site}/storehouses/SH1"]:
            subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(mosquitto.port),
                            "-t", topic, "-r", "-n"], check=False, timeout=10)


def test_discovery_off_by_default_and_names_are_topic_safe() -> None:
    """Ids with characters HA refuses in a topic level or an entity id are made safe."""
    entities = discovery("north/1", "North", "0.1", "depotwatch/north/1/status",
                         HomeAssistantConfig(), [StorehouseView("SH 1", "Store", ("D#1",), ())])
    for entity in entities:
        node, object_id = entity.topic.split("/")[2:4]
        assert node == "depotwatch_north_1" and " " not in object_id and "#" not in object_id
        assert COMPONENTS[entity.topic.split("/")[1]].model_validate(entity.config)
    assert [e.config["name"] for e in entities] == [
        "Store armed", "Store alarm", "Store active alarms", "Store unacknowledged alarms",
        "Door D#1"]
    assert Config.model_fields["home_assistant"].default is None


class _RefusingOnceLink:
    """A broker link that refuses the first publish (as MqttLink does when not connected)."""

    def __init__(self) -> None:
        self.connected = asyncio.Event()
        self.sent: list[tuple[str, int]] = []
        self.refuse = 1

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> int:
        if self.refuse:
            self.refuse -= 1
            raise DriverError("MQTT not connected")
        assert retain
        self.sent.append((topic, qos))
        return 0


def test_a_failing_publish_is_logged_and_retried(caplog: pytest.LogCaptureFixture) -> None:
    """The broker refusing never ends the task: it logs and announces everything again; every
    message goes out at QoS 0, so none takes a packet id from the alarm notices' window."""
    depot_register = Config.model_validate(depot(Path("/nonexistent"), 1)).depot()

    async def main() -> _RefusingOnceLink:
        link = _RefusingOnceLink()
        publisher = HomeAssistantPublisher(
            "north", "North", "depotwatch/north/status", HomeAssistantConfig(), link,
            list, RecentEvents(depot_register), SteadyClock())
        task = asyncio.create_task(publisher.run())
        link.connected.set()
        await asyncio.sleep(1.3)
        task.cancel()
        return link

    link = asyncio.run(main())
    assert "home assistant: not published (MQTT not connected)" in caplog.text
    assert len(link.sent) == 8 and {qos for _, qos in link.sent} == {0}
