"""MqttLink's message path without a Task per message, and its publish under a full window."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from servers import Mosquitto

from daemon.spool.store import Spool
from daemon.vocabulary.clock import SystemClock
from daemon.vocabulary.errors import DriverError
from daemon.vocabulary.readings import RawMessage
from drivers.mqtt import MqttLink
from drivers.mqtt_settings import MqttConfig


def _link(port: int, client_id: str) -> MqttLink:
    return MqttLink(MqttConfig.model_validate({
        "port": port, "client_id": client_id,
        "subscriptions": [{"topic": "link/{sensor}", "decoder": {"type": "zigbee2mqtt"}}],
    }), SystemClock())


async def _redelivered_to(again: MqttLink) -> list[bytes]:
    """What the broker sends a session coming back (nothing, if every PUBACK arrived)."""
    redelivered: list[bytes] = []
    again.on_message(lambda raw: redelivered.append(raw.payload))
    rerunning = asyncio.create_task(again.run())
    await asyncio.wait_for(again.connected.wait(), 10)
    await asyncio.sleep(1.0)
    rerunning.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await rerunning
    return redelivered


def test_every_qos1_message_is_handled_and_acknowledged(mosquitto: Mosquitto) -> None:
    # Handled in order, and acknowledged: the same session coming back gets nothing again (a
    # link that forgot the PUBACKs, or sent them wrong, would be handed them all once more).
    async def scenario() -> tuple[list[bytes], list[bytes]]:
        link = _link(mosquitto.port, "link-acks")
        got: list[bytes] = []

        async def handler(raw: RawMessage) -> None:
            loop = asyncio.get_running_loop()
            durable: asyncio.Future[None] = loop.create_future()
            loop.call_later(0.002, durable.set_result, None)  # a spool commit, later
            await durable
            got.append(raw.payload)

        link.on_message(handler)
        running = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            await asyncio.sleep(0.2)
            publisher = _link(mosquitto.port, "link-acks-publisher")
            publishing = asyncio.create_task(publisher.run())
            await asyncio.wait_for(publisher.connected.wait(), 10)
            for i in range(300):
                # Waits for PUBACKs while the broker's window (20) is full.
                await publisher.publish_in_window("link/door1", str(i).encode())
            for _ in range(200):
                if len(got) == 300:
                    break
                await asyncio.sleep(0.05)
            publishing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await publishing
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        return got, await _redelivered_to(_link(mosquitto.port, "link-acks"))

    got, redelivered = asyncio.run(scenario())
    assert [int(p) for p in got] == list(range(300))
    assert redelivered == []


def test_a_full_publish_window_is_a_driver_error_not_a_crash() -> None:
    # gmqtt raises OverflowError when the broker's receive maximum of publishes wait for
    # PUBACKs; a burst of alerts did that and ended the daemon's task group.
    class Full:
        def publish(self, *args: Any, **kwargs: Any) -> None:
            raise OverflowError("All ids has already used. May be your QoS queue is full.")

    link = _link(1883, "link-full")
    link._client = Full()
    link.connected.set()
    with pytest.raises(DriverError, match="awaiting PUBACK"):
        link.publish("depotwatch/site/alerts/x", b"{}")


def test_a_commit_during_a_writers_send_wakes_its_next_wait(tmp_path: Path) -> None:
    # The writer reads a batch, sends it, then waits for new points: a commit that landed
    # while it was sending must not leave it asleep for the whole flush interval.
    async def scenario() -> float:
        spool = Spool(tmp_path / "spool.sqlite", ["t"], max_bytes=1 << 20)
        await spool.open()
        committing = asyncio.create_task(spool.run())
        try:
            assert await spool.read("t", 10) == []
            await spool.append(["m f=1 1"])  # committed while "sending"
            loop = asyncio.get_running_loop()
            started = loop.time()
            await spool.wait_for_data(5.0)
            return loop.time() - started
        finally:
            committing.cancel()
            await spool.close()

    assert asyncio.run(scenario()) < 1.0


def test_a_handler_returning_a_future_is_acknowledged_when_it_is_done(
        mosquitto: Mosquitto) -> None:
    # The daemon hands back its spool commit's future instead of a coroutine per message: no
    # PUBACK before that future is done (the session coming back gets only the unfinished
    # ones), and at most the receive maximum of messages is handed over unacknowledged.
    async def scenario() -> tuple[int, int, list[bytes]]:
        link = _link(mosquitto.port, "link-futures")
        loop = asyncio.get_running_loop()
        held: list[asyncio.Future[None]] = []

        def handler(raw: RawMessage) -> asyncio.Future[None]:
            durable: asyncio.Future[None] = loop.create_future()
            held.append(durable)
            return durable

        link.on_message(handler)
        running = asyncio.create_task(link.run())
        publisher = _link(mosquitto.port, "link-futures-publisher")
        publishing = asyncio.create_task(publisher.run())
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            await asyncio.wait_for(publisher.connected.wait(), 10)
            await asyncio.sleep(0.2)
            for i in range(1500):
                # Waits for PUBACKs while the broker's window (20) is full.
                await publisher.publish_in_window("link/door1", str(i).encode())
            await asyncio.sleep(1.0)
            handed_over = len(held)
            for durable in held[:600]:
                durable.set_result(None)
            await asyncio.sleep(1.0)
            after_acks = len(held)
        finally:
            for task in (publishing, running):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        redelivered = await _redelivered_to(_link(mosquitto.port, "link-futures"))
        return handed_over, after_acks, redelivered

    handed_over, after_acks, redelivered = asyncio.run(scenario())
    assert handed_over == 1000  # the receive maximum: the rest waits at the broker
    assert after_acks == 1500
    assert [int(p) for p in redelivered] == list(range(600, 1500))


def test_publishes_with_and_without_properties_all_arrive_through_our_reader(
        mosquitto: Mosquitto) -> None:
    # The link reads plain PUBLISH packets itself (drivers/mqtt_reader.py); one with MQTT 5
    # properties (here a user property and a content type) still goes through gmqtt's parser.
    # QoS 0 and 1 mixed, more than the receive maximum, so PUBACKs must flow for all to come.
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv50

    from drivers.mqtt_reader import PublishReader

    async def scenario() -> tuple[list[tuple[str, bytes, bool]], bool]:
        link = _link(mosquitto.port, "link-reader")
        got: list[tuple[str, bytes, bool]] = []
        loop = asyncio.get_running_loop()

        def handler(raw: RawMessage) -> asyncio.Future[None]:
            got.append((raw.source, raw.payload, raw.redelivered))
            durable: asyncio.Future[None] = loop.create_future()
            loop.call_later(0.001, durable.set_result, None)
            return durable

        link.on_message(handler)
        running = asyncio.create_task(link.run())
        publisher = gmqtt.Client("link-reader-publisher")
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            await asyncio.sleep(0.2)
            protocol = link._client._connection._protocol
            ours = isinstance(protocol._read_packet, PublishReader)
            await publisher.connect("127.0.0.1", mosquitto.port, version=MQTTv50)
            for i in range(2500):
                extra: dict[str, Any] = ({"user_property": ("n", str(i)),
                                          "content_type": "application/json"}
                                         if i % 3 == 0 else {})
                # gmqtt's QoS 1 window is the broker's receive maximum: full (PUBACKs late
                # on a loaded machine), it refuses a packet id; wait for one to come free.
                for _ in range(500):
                    try:
                        publisher.publish(f"link/door{i % 4}", str(i).encode(), qos=i % 2,
                                          **extra)
                        break
                    except OverflowError:
                        await asyncio.sleep(0.02)
                else:
                    raise AssertionError(f"the publisher had no packet id for 10 s at {i}")
                if i % 10 == 0:
                    await asyncio.sleep(0.002)
            for _ in range(200):
                if len(got) == 2500:
                    break
                await asyncio.sleep(0.05)
        finally:
            await publisher.disconnect()
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
        return got, ours

    got, ours = asyncio.run(scenario())
    assert ours
    assert sorted(int(p) for _, p, _ in got) == list(range(2500))
    assert all(topic == f"link/door{int(p) % 4}" and not dup for topic, p, dup in got)


def test_mqtt_311_messages_are_read_and_acknowledged(mosquitto: Mosquitto) -> None:
    # MQTT 3.1.1 has no property block in a PUBLISH (PublishReader must not look for one) and
    # no receive maximum (the link pauses reading at 1,000 unacknowledged instead).
    from drivers.mqtt_reader import PublishReader

    def link_311(client_id: str) -> MqttLink:
        return MqttLink(MqttConfig.model_validate({
            "port": mosquitto.port, "client_id": client_id, "protocol": "3.1.1",
            "subscriptions": [{"topic": "v311/{sensor}", "decoder": {"type": "zigbee2mqtt"}}],
        }), SystemClock())

    async def scenario() -> tuple[list[bytes], bool, list[bytes]]:
        link = link_311("link-311")
        got: list[bytes] = []
        loop = asyncio.get_running_loop()

        def handler(raw: RawMessage) -> asyncio.Future[None]:
            got.append(raw.payload)
            durable: asyncio.Future[None] = loop.create_future()
            loop.call_later(0.003, durable.set_result, None)
            return durable

        link.on_message(handler)
        running = asyncio.create_task(link.run())
        publisher = _link(mosquitto.port, "link-311-publisher")
        publishing = asyncio.create_task(publisher.run())
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            await asyncio.wait_for(publisher.connected.wait(), 10)
            await asyncio.sleep(0.2)
            ours = isinstance(link._client._connection._protocol._read_packet, PublishReader)
            for i in range(2000):
                # Waits for PUBACKs while the broker's window (20) is full.
                await publisher.publish_in_window(f"v311/door{i % 3}", str(i).encode())
            for _ in range(200):
                if len(got) == 2000:
                    break
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)  # the last PUBACKs out
        finally:
            for task in (publishing, running):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        return got, ours, await _redelivered_to(link_311("link-311"))

    got, ours, redelivered = asyncio.run(scenario())
    assert ours
    assert [int(p) for p in got] == list(range(2000))
    assert redelivered == []


def test_more_filters_than_the_brokers_receive_maximum_all_subscribe(
        mosquitto: Mosquitto) -> None:
    # Mosquitto's receive maximum is 20: a SUBSCRIBE per filter ran out of packet ids (gmqtt
    # OverflowError in the connect callback, the link never subscribed). HQ with many depots.
    async def scenario() -> list[str]:
        link = _link(mosquitto.port, "link-many-filters")
        for n in range(60):
            link.subscribe(f"many/{n}/+")
        got: list[str] = []
        link.on_message(lambda raw: got.append(raw.source))
        running = asyncio.create_task(link.run())
        try:
            await asyncio.wait_for(link.connected.wait(), 10)
            await asyncio.sleep(0.3)  # the SUBACK
            for n in range(60):
                await link.publish_in_window(f"many/{n}/x", b"1")
            for _ in range(100):
                if len(got) == 60:
                    break
                await asyncio.sleep(0.05)
        finally:
            running.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await running
            await link.close()
        return got

    assert sorted(asyncio.run(scenario())) == sorted(f"many/{n}/x" for n in range(60))
