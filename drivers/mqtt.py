"""MQTT: one broker connection (gmqtt) for sensor subscriptions and alert publishing."""

from __future__ import annotations

import asyncio
import functools
import logging
import random
import ssl
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import gmqtt
from gmqtt.mqtt.constants import MQTTv50, MQTTv311

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DriverError
from daemon.vocabulary.readings import RawMessage
from drivers.mqtt_reader import PublishReader
from drivers.mqtt_settings import MqttConfig
from drivers.mqtt_topics import TopicRoute

__all__ = ["MqttLink", "PublishWindowFull"]

log = logging.getLogger(__name__)

# MQTT v5 session expiry: the broker keeps our subscriptions and queued QoS 1 readings for a
# week while the gateway daemon is down (MQTT 3.1.1 brokers keep a clean_session=False session).
_SESSION_EXPIRY_S = 7 * 24 * 3600


# A PUBACK for success without properties: the short form MQTT 3.1.1 and 5 (3.4.2.1) both take.
_PUBACK = struct.Struct("!BBH")
# Messages taken but not yet acknowledged (their spool commit pending): at this many the socket
# is not read until half of them are done, so a burst waits at the broker, not in our memory
# (Mosquitto sends a QoS 1 backlog without waiting for PUBACKs).
_MAX_PENDING = 1000


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
        return int(mid)

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


# Returns a coroutine (the PUBACK goes out when it returns), a future (when it is done) or None
# (at once): the daemon returns its spool commit's future, without a coroutine per message.
OnMessage = Callable[[RawMessage], Awaitable[None] | None]
OnState = Callable[[bool], None]


class MqttLink:
    """The gateway's broker connection: QoS 1 subscriptions, persistent session, reconnects."""

    def __init__(self, config: MqttConfig, clock: Clock) -> None:
        self._config = config
        self._clock = clock
        self._version = MQTTv50 if config.protocol == "5" else MQTTv311
        self._on_message: OnMessage | None = None
        self._on_state: OnState | None = None
        self._client: Any = None
        self.connected = asyncio.Event()
        self.connects = 0
        self._pending = 0
        self._paused: Any = None  # the transport whose reading is paused
        self._filters = sorted({TopicRoute.from_config(s).filter for s in config.subscriptions})
        self._handlers: dict[str, Callable[[bytes], None]] = {}
        self._released = asyncio.Event()  # set by every PUBACK
        self._on_puback: Callable[[int], None] | None = None
        # Set when gmqtt's internals could be hooked: acknowledges one message (mid, reason).
        self._acked: Callable[[int, int], None] | None = None
        # Packet ids (None: QoS 0) of the messages each pending spool commit will acknowledge.
        self._acks_due: dict[asyncio.Future[Any], list[int | None]] = {}

    def handle_topic(self, topic: str, handler: Callable[[bytes], None]) -> None:
        """Messages on this exact topic go to `handler` instead of the sensor pipeline."""
        self._handlers[topic] = handler
        self._filters = sorted({*self._filters, topic})

    def on_message(self, callback: OnMessage) -> None:
        """Where received messages go; the PUBACK is sent after `callback` returns (MQTT v5)."""
        self._on_message = callback

    def on_state(self, callback: OnState) -> None:
        """Told True when the broker connection comes up, False when it is lost."""
        self._on_state = callback

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
            kwargs["receive_maximum"] = _MAX_PENDING
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
        if not self._deliver_without_tasks(client):
            client.on_message = self._message  # gmqtt's way: a Task per message
        return client

    def _deliver_without_tasks(self, client: Any) -> bool:
        """Hand messages to `_take_publish` instead of gmqtt's Task per message; False if this
        gmqtt has no package handler to hook into.

        gmqtt runs every message's handler as a Task (about 5 µs a message here) and writes
        each PUBACK on its own (a syscall each); here the PUBACKs that one turn of the event
        loop completes (one spool commit) leave in one write (bench/depot.py, issue 9).
        """
        handler: Any = getattr(client, "_package_handler", None)
        if not (callable(getattr(handler, "_handle_qos_1_publish_packet", None))
                and callable(getattr(handler, "_send_puback", None))):
            return False
        acks: list[int] = []

        def flush() -> None:
            mids = acks.copy()
            acks.clear()
            connection = client._connection
            if mids and connection is not None and not connection.is_closing():
                connection.send_package(b"".join(_PUBACK.pack(0x40, 2, mid) for mid in mids))

        def acked(mid: int, reason_code: int) -> None:
            if reason_code:
                handler._send_puback(mid, reason_code=reason_code)
                return
            acks.append(mid)
            if len(acks) == 1:
                asyncio.get_running_loop().call_soon(flush)

        def qos1(mid: int, packet: bytes, print_topic: str, properties: Any) -> None:
            # We subscribe at QoS 1 only, so QoS 2 (which would need on_message's Task) never
            # arrives.
            self._take_publish(print_topic, bytes(packet), bool(properties.get("dup")), mid)

        handler._handle_qos_1_publish_packet = qos1
        client.on_message = self._message_qos0
        self._acked = acked
        return True

    def _connected(self, client: Any, flags: int, rc: int, properties: Any) -> None:
        self.connects += 1
        self._read_publishes_ourselves(client)
        client.reset_backoff()
        known = {sub.topic for sub in client.subscriptions}
        for topic_filter in self._filters:
            # Resubscribe every time: a broker restarted without persistence lost the session.
            if topic_filter in known:
                for sub in client.subscriptions:
                    if sub.topic == topic_filter:
                        client.resubscribe(sub)
            else:
                client.subscribe(topic_filter, qos=1)
        log.info("MQTT connected to %s:%d (session present: %s), subscribed to %s",
                 self._config.host, self._config.port, bool(flags), ", ".join(self._filters))
        self.connected.set()
        self._report(True)

    def _disconnected(self, client: Any, packet: Any, exc: Any = None) -> None:
        if self.connected.is_set() and self._client is not None:
            log.warning("MQTT connection to %s:%d lost; reconnecting with backoff",
                        self._config.host, self._config.port)
            self._report(False)
        self.connected.clear()

    def _read_publishes_ourselves(self, client: Any) -> None:
        """Let `PublishReader` split this connection's received bytes into packets.

        Left to gmqtt, every PUBLISH becomes a Package, passes four calls and a property parse
        of struct formats built per packet, and costs about as much as our decode and rules
        together (bench/depot.py, issue 9). Any other gmqtt, or a connection without these
        internals, keeps gmqtt's own reading.
        """
        connection: Any = getattr(client, "_connection", None)
        protocol: Any = getattr(connection, "_protocol", None)
        handler: Any = getattr(client, "_package_handler", None)
        original = getattr(protocol, "_read_packet", None)
        if (self._acked is None or not callable(original)
                or isinstance(original, PublishReader)
                or not callable(getattr(connection, "put_package", None))
                or not hasattr(handler, "current_connection")):
            return
        protocol._read_packet = PublishReader(self._take_publish, connection, handler, original,
                                               mqtt5=self._version == MQTTv50)

    def _take_publish(self, topic: str, payload: bytes, dup: bool, mid: int | None) -> None:
        """One received PUBLISH to the pipeline; its PUBACK (for `mid`, QoS 1) goes out with
        the others of the same spool commit, in one write.

        A handler that returns a coroutine is driven here, not wrapped in a Task: it starts at
        once (messages are taken in arrival order) and resumes when the future it awaits (the
        spool's commit) is done. So it must only await futures: no `asyncio.timeout()` in it.
        """
        self._pending += 1
        if self._pending >= _MAX_PENDING and self._paused is None:
            self._pause()
        if self._on_message is None or topic in self._handlers:
            done = None if mid is None or self._acked is None else functools.partial(
                self._acked, mid)
            self._step(self._message(self._client, topic, payload, 1, {"dup": dup}), done)
            return
        raw = RawMessage(source=topic, payload=payload, received_ns=self._clock.now_ns(),
                         redelivered=dup)
        try:
            waiting = self._on_message(raw)
        except Exception:
            self._handled()
            log.exception("MQTT message handler failed; the message stays unacknowledged")
            return
        if waiting is None:
            self._handled()
            if mid is not None and self._acked is not None:
                self._acked(mid, 0)
        elif asyncio.isfuture(waiting):
            # Thousands of messages share one commit's future: one callback, one write.
            mids = self._acks_due.get(waiting)
            if mids is None:
                mids = self._acks_due[waiting] = []
                waiting.add_done_callback(self._commit_done)
            mids.append(mid)
        else:
            done = None if mid is None or self._acked is None else functools.partial(
                self._acked, mid)
            self._step(self._await(waiting), done)

    def _commit_done(self, future: asyncio.Future[Any]) -> None:
        mids = self._acks_due.pop(future, [])
        self._handled(len(mids))
        if future.cancelled() or future.exception() is not None:
            if not future.cancelled():
                log.error("%d MQTT messages not taken; they stay unacknowledged: %s",
                          len(mids), future.exception())
            return  # not acknowledged: the broker sends them again after a reconnect
        connection = getattr(self._client, "_connection", None)
        acks = [mid for mid in mids if mid is not None]
        if acks and connection is not None and not connection.is_closing():
            connection.send_package(b"".join([_PUBACK.pack(0x40, 2, mid) for mid in acks]))

    def _message_qos0(self, client: Any, topic: str, payload: bytes, qos: int,
                      properties: Any) -> None:
        self._take_publish(topic, bytes(payload), bool(properties.get("dup")), None)

    async def _await(self, waiting: Awaitable[None]) -> int:
        await waiting
        return 0

    def _pause(self) -> None:
        connection = getattr(self._client, "_connection", None)
        transport = getattr(connection, "_transport", None)
        if transport is None or transport.is_closing():
            return
        transport.pause_reading()
        self._paused = transport
        # gmqtt reads through an asyncio StreamReader, which resumes a transport it paused
        # itself (its buffer full) as soon as that buffer drains: it would undo this pause
        # (MQTT 3.1.1 has no receive maximum to bound the backlog instead).
        reader: Any = getattr(getattr(connection, "_protocol", None), "_hard_reader", None)
        if reader is not None and getattr(reader, "_paused", False):
            reader._paused = False

    def _handled(self, count: int = 1) -> None:
        self._pending -= count
        if self._paused is not None and self._pending <= _MAX_PENDING // 2:
            transport, self._paused = self._paused, None
            if not transport.is_closing():
                transport.resume_reading()

    def _step(self, handler: Coroutine[Any, Any, int], done: Callable[[int], None] | None,
              ) -> None:
        try:
            waiting = handler.send(None)
        except StopIteration as finished:
            self._handled()
            if done is not None:
                done(finished.value)
            return
        except asyncio.CancelledError:
            self._handled()
            return  # not acknowledged: the broker sends it again after a reconnect
        except Exception:
            self._handled()
            log.exception("MQTT message handler failed; the message stays unacknowledged")
            return
        if asyncio.isfuture(waiting):
            # What `await future` hands to its driver; a Task would clear the flag the same way.
            waiting._asyncio_future_blocking = False
            waiting.add_done_callback(lambda _: self._step(handler, done))
        else:  # a bare yield (asyncio.sleep(0)): go on at the next turn of the loop
            asyncio.get_running_loop().call_soon(self._step, handler, done)

    async def _message(self, client: Any, topic: str, payload: bytes, qos: int,
                       properties: Any) -> int:
        handler = self._handlers.get(topic)
        if handler is not None:
            handler(bytes(payload))
            return 0
        raw = RawMessage(source=topic, payload=bytes(payload), received_ns=self._clock.now_ns(),
                         redelivered=bool(properties.get("dup")))
        if self._on_message is not None:
            waiting = self._on_message(raw)
            if waiting is not None:
                await waiting
        return 0  # PUBACK reason "success"

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
        if client is not None:
            try:
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
