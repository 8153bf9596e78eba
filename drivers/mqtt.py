"""MQTT: one broker connection (gmqtt) for sensor subscriptions and alert publishing."""

from __future__ import annotations

import asyncio
import logging
import random
import ssl
from collections.abc import Callable
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DriverError
from drivers.mqtt_intake import MAX_PENDING, MqttIntake, OnMessage
from drivers.mqtt_session import SessionWatch
from drivers.mqtt_settings import MqttConfig
from drivers.mqtt_topics import TopicRoute

__all__ = ["MqttLink", "PublishWindowFull"]

log = logging.getLogger(__name__)

# MQTT v5 session expiry: the broker keeps our subscriptions and queued QoS 1 readings for a
# week while the gateway daemon is down (MQTT 3.1.1 brokers keep a clean_session=False session).
_SESSION_EXPIRY_S = 7 * 24 * 3600
# The gateway's status (`status_topic`), retained.
_ONLINE, _OFFLINE = b"online", b"offline"


class _BackoffClient(gmqtt.Client):  # type: ignore[misc]
    """gmqtt reconnects on its own; this grows its delay exponentially with jitter."""

    backoff_min_s = 0.5
    backoff_max_s = 30.0
    on_released: Callable[[], None] | None = None
    on_puback: Callable[[int], None] | None = None

    def publish(self, message_or_topic: Any, payload: Any = None, qos: int = 0,
                retain: bool = False, **kwargs: Any) -> int:
        """gmqtt's publish, also telling the packet id, so its PUBACK can be told apart."""
        message = (message_or_topic if isinstance(message_or_topic, gmqtt.Message)
                   else gmqtt.Message(message_or_topic, payload, qos=qos, retain=retain, **kwargs))
        mid, package = self._connection.publish(message)
        if message.qos > 0:
            self._persistent_storage.push_message(mid, package)
        # A QoS 0 message has no packet id (gmqtt gives None): 0 is never a QoS 1 one's.
        return int(mid) if mid is not None else 0

    def _remove_message_from_queue(self, mid: int) -> None:
        # gmqtt's hook for a PUBACK (or PUBCOMP): a packet id is free again.
        super()._remove_message_from_queue(mid)
        if self.on_puback is not None:
            self.on_puback(mid)
        if self.on_released is not None:
            self.on_released()

    def reset_backoff(self) -> None:
        self.reconnect_delay = self.backoff_min_s

    async def reconnect(self, delay: bool = False) -> None:
        if delay:
            grown = min(self.backoff_max_s, max(self.backoff_min_s, self.reconnect_delay * 2))
            self.reconnect_delay = grown * random.uniform(0.8, 1.0)
        await super().reconnect(delay=delay)


# Packet ids a windowed publish leaves free for command replies and the subscriptions made at
# a reconnect, which gmqtt would otherwise refuse (OverflowError) during a burst of alerts.
_RESERVED_IDS = 2
# A window that stays full this long means the broker stopped acknowledging: report it.
_PUBACK_WAIT_S = 10.0


class PublishWindowFull(DriverError):
    """As many QoS 1 publishes as the broker takes at once still await their PUBACK."""


OnState = Callable[[bool], None]


class MqttLink:
    """The gateway's broker connection: QoS 1 subscriptions, persistent session, reconnects."""

    def __init__(self, config: MqttConfig, clock: Clock, *, site: str = "") -> None:
        self._config = config
        # Where the broker tells whether the gateway is alive (retained `online`/`offline`).
        self.status_topic = config.status_topic.replace("{site}", site) if site else None
        self._version = MQTTv50 if config.protocol == "5" else MQTTv311
        # What the link receives goes through its intake: to the pipeline, PUBACK after commit.
        self._intake = MqttIntake(clock, mqtt5=self._version == MQTTv50)
        self._on_state: OnState | None = None
        self._clock = clock
        self._session = SessionWatch(f"{config.host}:{config.port}", config.client_id)
        self._on_fault: Callable[[str, str], None] | None = None
        self._client: Any = None
        self.connected = asyncio.Event()
        self.connects = 0
        self._filters = sorted({TopicRoute.from_config(s).filter for s in config.subscriptions})
        self._released = asyncio.Event()  # set by every PUBACK
        self._on_puback: Callable[[int], None] | None = None

    def handle_topic(self, topic: str, handler: Callable[[bytes], None]) -> None:
        """Messages on this exact topic go to `handler` instead of the sensor pipeline."""
        self._intake.own_topics[topic] = handler
        self._filters = sorted({*self._filters, topic})

    def subscribe(self, topic_filter: str) -> None:
        """Also subscribe to `topic_filter` (wildcards allowed); its messages go to
        `on_message`, as the sensors' do."""
        self._filters = sorted({*self._filters, topic_filter})

    def on_message(self, callback: OnMessage) -> None:
        """Where received messages go; the PUBACK is sent after `callback` returns (MQTT v5)."""
        self._intake.on_message = callback

    def on_state(self, callback: OnState) -> None:
        """Told True when the broker connection comes up, False when it is lost."""
        self._on_state = callback

    def on_fault(self, callback: Callable[[str, str], None]) -> None:
        """Told (fault, summary) when the session was reset or the connection keeps dropping."""
        self._on_fault = callback

    def _fault(self, found: tuple[str, str] | None) -> None:
        if found is not None:
            log.warning("%s", found[1])
            if self._on_fault is not None:
                self._on_fault(*found)

    def _report(self, up: bool) -> None:
        if self._on_state is not None:
            self._on_state(up)

    def _ssl_context(self) -> ssl.SSLContext | bool:
        tls = self._config.tls
        if tls is None:
            return False
        context = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if tls.cert_file is not None:
            context.load_cert_chain(str(tls.cert_file),
                                    str(tls.key_file) if tls.key_file else None)
        if not tls.verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _build_client(self) -> Any:
        kwargs: dict[str, Any] = {}
        if self._version == MQTTv50:
            kwargs["session_expiry_interval"] = _SESSION_EXPIRY_S
            # Without it the broker may push 65,535 unacknowledged QoS 1 messages (the MQTT 5
            # default): a burst then waits in our memory (12,000 handlers at once in
            # bench/depot.py), not at the broker.
            kwargs["receive_maximum"] = MAX_PENDING
        if self.status_topic is not None:
            # The broker publishes it when the connection dies without a DISCONNECT (a killed
            # daemon, a dead gateway): whoever watches the broker sees the depot unguarded.
            kwargs["will_message"] = gmqtt.Message(self.status_topic, _OFFLINE, qos=1,
                                                   retain=True)
        client = _BackoffClient(
            self._config.client_id, clean_session=False,
            # Ack after our handler returned, so a reading is taken before the broker forgets it.
            optimistic_acknowledgement=False, **kwargs,
        )
        client.backoff_min_s = self._config.reconnect_min_s
        client.backoff_max_s = self._config.reconnect_max_s
        client.reset_backoff()
        if self._config.username is not None:
            password = self._config.password.get_secret_value() if self._config.password else None
            client.set_auth_credentials(self._config.username, password)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        client.on_released = self._released.set
        client.on_puback = self._puback
        self._intake.attach(client)
        return client

    def _connected(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        self.connects += 1
        self._intake.read_publishes(client)
        client.reset_backoff()
        # Resubscribe every time (a broker restarted without persistence lost the session),
        # every filter in one SUBSCRIBE: a packet holds a packet id until its SUBACK, and the
        # broker's receive maximum (Mosquitto: 20) bounds them; one SUBSCRIBE per filter ran
        # out of ids past about 19 filters (HQ with many depots).
        if self._filters:
            client.subscriptions = [s for s in client.subscriptions
                                    if s.topic not in self._filters]
            client.subscribe([gmqtt.Subscription(f, qos=1) for f in self._filters])
        log.info("MQTT connected to %s:%d (session present: %s), subscribed to %s",
                 self._config.host, self._config.port, bool(flags), ", ".join(self._filters))
        if self.status_topic is not None:
            client.publish(self.status_topic, _ONLINE, qos=1, retain=True)
        self.connected.set()
        self._report(True)
        self._fault(self._session.connected(bool(flags)))

    def _disconnected(self, client: Any, packet: Any, exc: Any = None) -> None:
        if self.connected.is_set() and self._client is not None:
            log.warning("MQTT connection to %s:%d lost; reconnecting with backoff",
                        self._config.host, self._config.port)
            self._report(False)
            self._fault(self._session.dropped(self._clock.now_ns()))
        self.connected.clear()

    async def run(self) -> None:
        """Connect (retrying with capped exponential backoff) and stay connected until cancelled."""
        self._client = self._build_client()
        delay = self._config.reconnect_min_s
        while True:
            try:
                await self._client.connect(
                    self._config.host, self._config.port, ssl=self._ssl_context(),
                    keepalive=self._config.keepalive_s, version=self._version,
                )
                break
            except (OSError, gmqtt.mqtt.handler.MQTTConnectError) as exc:
                log.warning("MQTT broker %s:%d not reachable (%s); retrying in %.1f s",
                            self._config.host, self._config.port, exc, delay)
                self._report(False)
                await asyncio.sleep(delay)
                delay = min(self._config.reconnect_max_s, delay * 2)
        try:
            await asyncio.Event().wait()
        finally:
            await self.close()

    async def close(self) -> None:
        """Disconnect cleanly (the broker keeps the persistent session)."""
        client, self._client = self._client, None
        self._intake.detach()
        if client is not None:
            try:
                if self.status_topic is not None and self.connected.is_set():
                    # A clean DISCONNECT discards the will: say it ourselves, before it.
                    client.publish(self.status_topic, _OFFLINE, qos=1, retain=True)
                await asyncio.wait_for(client.disconnect(), timeout=2)
            except (OSError, TimeoutError) as exc:
                log.debug("MQTT disconnect: %s", exc)

    def on_puback(self, callback: Callable[[int], None]) -> None:
        """Told the packet id of every publish the broker acknowledged."""
        self._on_puback = callback

    def _puback(self, mid: int) -> None:
        if self._on_puback is not None:
            self._on_puback(mid)

    def publish(self, topic: str, payload: bytes, *, retain: bool = False, qos: int = 1) -> int:
        """Queue a publish; QoS 1 messages are resent by gmqtt after a reconnect. Returns the
        packet id that its PUBACK will carry (`on_puback`)."""
        if self._client is None or not self.connected.is_set():
            raise DriverError(f"MQTT not connected, cannot publish to {topic}")
        try:
            return int(self._client.publish(topic, payload, qos=qos, retain=retain))
        except OverflowError as exc:
            # gmqtt is out of packet ids: as many QoS 1 publishes as the broker's receive maximum
            # (Mosquitto: max_inflight_messages, 20) wait for their PUBACKs, as in a burst of
            # alerts. Left untranslated it ended the daemon's task group.
            raise PublishWindowFull(f"MQTT: too many publishes awaiting PUBACK, cannot "
                                    f"publish to {topic} yet") from exc

    async def publish_in_window(self, topic: str, payload: bytes, *,
                                retain: bool = False) -> int:
        """Publish at QoS 1, first waiting for a PUBACK while the broker's window is full.

        Flow control for bursts (200 alarms at once): publishes go out as fast as the broker
        acknowledges them, in call order, instead of failing. Raises DriverError when not
        connected, or when no PUBACK came for `_PUBACK_WAIT_S`.
        """
        while True:
            self._released.clear()
            if self._window_open():
                try:
                    return self.publish(topic, payload, retain=retain, qos=1)
                except PublishWindowFull:
                    pass
            try:
                async with asyncio.timeout(_PUBACK_WAIT_S):
                    await self._released.wait()
            except TimeoutError:
                raise DriverError(f"MQTT: no PUBACK from the broker for {_PUBACK_WAIT_S:g} s, "
                                  f"cannot publish to {topic}") from None

    def _window_open(self) -> bool:
        """Packet ids are free beyond those kept for command replies and subscriptions."""
        ids = getattr(getattr(self._client, "_package_handler", None), "id_generator", None)
        limit, used = getattr(ids, "_max", None), getattr(ids, "_used_ids", None)
        if not isinstance(limit, int) or not isinstance(used, set):
            return True  # another gmqtt: its OverflowError is the only signal
        usable = limit - 1  # gmqtt never hands out its last id
        reserve = min(_RESERVED_IDS, usable - 1)  # a tiny receive maximum still lets alerts out
        return len(used) < usable - reserve
