"""A burst of alarms through a real Mosquitto: flow control on PUBACKs, never a backoff."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import signal
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import pytest
from inprocess_daemon import depot, eventually, running
from mqtt_probe import MqttProbe
from servers import Mosquitto

from daemon.vocabulary.clock import SystemClock
from drivers.mqtt import MqttLink
from drivers.mqtt_settings import MqttConfig

DOORS = 200


def test_publishes_beyond_the_brokers_window_wait_for_pubacks(mosquitto: Mosquitto) -> None:
    """500 publishes at once through Mosquitto's receive maximum (20): each waits for a
    PUBACK to free a packet id; all arrive, once each, in order, within seconds."""

    async def scenario() -> tuple[list[bytes], float]:
        link = MqttLink(MqttConfig.model_validate({
            "port": mosquitto.port, "client_id": f"burst-{uuid.uuid4().hex[:8]}",
            "subscriptions": [{"topic": "unused/{sensor}", "decoder": {"type": "zigbee2mqtt"}}],
        }), SystemClock())
        running_link = asyncio.create_task(link.run())
        try:
            async with MqttProbe(mosquitto.port) as probe:
                await probe.subscribe("burst/#")
                async with asyncio.timeout(10):
                    await link.connected.wait()
                started = time.monotonic()
                for i in range(500):
                    await link.publish_in_window("burst/x", str(i).encode())
                for _ in range(500):  # 10 s
                    if len(probe.messages) >= 500:
                        break
                    await asyncio.sleep(0.02)
                took = time.monotonic() - started
                await asyncio.sleep(0.3)  # a duplicate would come now
                return [p for _, p in probe.messages], took
        finally:
            running_link.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running_link

    payloads, took = asyncio.run(scenario())
    assert [int(p) for p in payloads] == list(range(500))
    assert took < 10


def _open_doors(port: int, count: int) -> None:
    """Doors 0..count-1 report open at once, as Zigbee2MQTT would (QoS 1)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"doors-{uuid.uuid4()}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    try:
        sent = [client.publish(f"zigbee2mqtt/door{i}", json.dumps({"contact": False}), qos=1)
                for i in range(count)]
        for message in sent:
            message.wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_burst_of_200_alarms_reaches_the_alerts_topic_at_once(
        mosquitto: Mosquitto, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """200 doors of an armed store open together: 200 alarms, every one published to the
    alerts topic within seconds, once, in the order they fired. The MQTT outbox never counts
    a failure: before, a full window of PUBACKs was a retryable error and the outbox backed
    off (0.5 s, doubling to 30 s)."""
    config: dict[str, Any] = depot(tmp_path / "state", mosquitto.port)
    site = f"burst-{uuid.uuid4().hex[:6]}"
    config["site"] = {"id": site}
    config["doors"] = [{"id": f"SH1-D{i}", "storehouse": "SH1", "contact_sensor": f"door{i}"}
                       for i in range(DOORS)]
    caplog.set_level(logging.WARNING, logger="daemon.notifiers.base")
    with running(config) as r:
        assert r.probe is not None
        probe = r.probe
        r.call(probe.subscribe(f"depotwatch/{site}/alerts/#"))
        outbox = next(o for o in r.daemon.outboxes if o.notifier.name == "mqtt")
        started = time.monotonic()
        _open_doors(mosquitto.port, DOORS)
        eventually(lambda: len(probe.alerts()) >= DOORS, timeout_s=10)
        took = time.monotonic() - started
        time.sleep(0.3)  # a duplicate would come now
        alerts = probe.alerts()
        failed, delivered = outbox.failed, outbox.delivered
    assert [a["key"] for a in alerts] == [f"door_armed.SH1-D{i}" for i in range(DOORS)]
    assert {a["state"] for a in alerts} == {"firing"}
    assert took < 10
    assert failed == 0 and delivered == DOORS
    assert not [r for r in caplog.records if "retrying in" in r.getMessage()]


def test_an_alarm_raised_while_the_broker_is_away_goes_out_when_it_returns(
        tmp_path: Path) -> None:
    """The broker stops; input_lost fires and its MQTT notice fails, backing off (0.5 s, 1,
    2, 4, 8 ...). When the broker is back, the notice goes out at once, not when the backoff
    runs out."""
    with Mosquitto(tmp_path / "broker") as broker:
        config: dict[str, Any] = depot(tmp_path / "state", broker.port)
        config["rules"] = [{"type": "door_armed"}, {"type": "input_lost", "after_s": 1}]
        with running(config, connected=False) as r:
            eventually(r.daemon.link.connected.is_set)
            outbox = next(o for o in r.daemon.outboxes if o.notifier.name == "mqtt")
            broker.stop()
            eventually(lambda: outbox.failed >= 5, timeout_s=20)  # the next wait is 8 s or more
            broker.start()
            watcher = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"watch-{uuid.uuid4().hex[:8]}")
            seen: list[str] = []
            watcher.on_message = lambda client, userdata, message: seen.append(message.topic)
            watcher.connect("127.0.0.1", broker.port)
            watcher.subscribe("depotwatch/+/alerts/#", qos=1)
            watcher.loop_start()
            try:
                eventually(r.daemon.link.connected.is_set, timeout_s=10)
                back = time.monotonic()
                eventually(lambda: any(t.endswith("/input_lost.mqtt") for t in seen),
                           timeout_s=10)
                waited = time.monotonic() - back
            finally:
                watcher.loop_stop()
                watcher.disconnect()
    assert waited < 3, f"the notice waited {waited:.1f} s after the broker came back"


def test_an_alert_stays_pending_until_the_broker_acknowledges_it(tmp_path: Path) -> None:
    """A published alert counts as delivered only once its PUBACK is in: while the broker is
    frozen (SIGSTOP) it stays in what the state file saves, so a crash then would resend it."""
    with Mosquitto(tmp_path / "broker") as broker:
        config: dict[str, Any] = depot(tmp_path / "state", broker.port)
        with running(config, connected=False) as r:
            eventually(r.daemon.link.connected.is_set)
            outbox = next(o for o in r.daemon.outboxes if o.notifier.name == "mqtt")
            assert broker.proc is not None
            pid = broker.proc.pid
            devices = paho.Client(paho.CallbackAPIVersion.VERSION2,
                                  client_id=f"doors-{uuid.uuid4().hex[:8]}")
            devices.connect("127.0.0.1", broker.port)
            devices.loop_start()
            try:
                devices.publish("zigbee2mqtt/door1", json.dumps({"contact": False}),
                                qos=1).wait_for_publish(10)
                eventually(lambda: outbox.delivered >= 1 and outbox.backlog == 0)
                eventually(lambda: outbox.pending() == [])  # acknowledged
                os.kill(pid, signal.SIGSTOP)
                try:
                    # The alarm repeats every 120 s; acknowledge it instead: a new notice.
                    status, _ = r.call(_ack(r.url))
                    assert status == 200
                    eventually(lambda: outbox.delivered >= 2)
                    time.sleep(0.5)
                    frozen = [a.key for a in outbox.pending()]
                finally:
                    os.kill(pid, signal.SIGCONT)
                eventually(lambda: outbox.pending() == [], timeout_s=10)
            finally:
                devices.loop_stop()
                devices.disconnect()
    assert frozen == ["door_armed.SH1-D1"]


async def _ack(url: str) -> tuple[int, str]:
    import aiohttp
    from inprocess_daemon import DOOR_KEY, TOKEN

    async with aiohttp.ClientSession() as http, http.post(
            f"{url}/api/v1/alerts/{DOOR_KEY}/ack", json={"note": "on my way"},
            headers={"Authorization": f"Bearer {TOKEN}"}) as reply:
        return reply.status, await reply.text()
