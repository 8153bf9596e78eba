"""The MQTT link's intake: each received PUBLISH to the pipeline, its PUBACK once the spool
commit it waits for is done, and the socket left unread while too many still wait."""

from __future__ import annotations

import asyncio
import functools
import logging
import struct
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.readings import RawMessage
from drivers.mqtt_reader import PublishReader

__all__ = ["MAX_PENDING", "MqttIntake", "OnMessage"]

log = logging.getLogger(__name__)

# A PUBACK for success without properties: the short form MQTT 3.1.1 and 5 (3.4.2.1) both take.
_PUBACK = struct.Struct("!BBH")
# Messages taken but not yet acknowledged (their spool commit pending): at this many the socket
# is not read until half of them are done, so a burst waits at the broker, not in our memory
# (Mosquitto sends a QoS 1 backlog without waiting for PUBACKs).
MAX_PENDING = 1000

# Returns a coroutine (the PUBACK goes out when it returns), a future (when it is done) or None
# (at once): the daemon returns its spool commit's future, without a coroutine per message.
OnMessage = Callable[[RawMessage], Awaitable[None] | None]


class MqttIntake:
    """Hands the link's received messages to `on_message` without a Task per message and sends
    their PUBACKs, those of one spool commit in one write, once that commit is done."""

    def __init__(self, clock: Clock, *, mqtt5: bool) -> None:
        self._clock = clock
        self._mqtt5 = mqtt5
        self.on_message: OnMessage | None = None
        # Exact topics whose messages go to their own callback instead of the sensor pipeline.
        self.own_topics: dict[str, Callable[[bytes], None]] = {}
        self.client: Any = None  # the link's gmqtt client, from `attach` until `detach`
        self._pending = 0
        self._paused: Any = None  # the transport whose reading is paused
        # Set when gmqtt's internals could be hooked: acknowledges one message (mid, reason).
        self._acked: Callable[[int, int], None] | None = None
        # Packet ids (None: QoS 0) of the messages each pending spool commit will acknowledge.
        self._acks_due: dict[asyncio.Future[Any], list[int | None]] = {}

    def attach(self, client: Any) -> None:
        """Take the messages of this new client (gmqtt's Task per message if it cannot be
        hooked)."""
        self.client = client
        if not self._deliver_without_tasks(client):
            client.on_message = self.message  # gmqtt's way: a Task per message

    def detach(self) -> None:
        """The link let go of its client: PUBACKs still due are not sent."""
        self.client = None

    def _deliver_without_tasks(self, client: Any) -> bool:
        """Hand messages to `take` instead of gmqtt's Task per message; False if this
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
            self.take(print_topic, bytes(packet), bool(properties.get("dup")), mid)

        handler._handle_qos_1_publish_packet = qos1
        client.on_message = self._message_qos0
        self._acked = acked
        return True

    def read_publishes(self, client: Any) -> None:
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
        protocol._read_packet = PublishReader(self.take, connection, handler, original,
                                              mqtt5=self._mqtt5)

    def take(self, topic: str, payload: bytes, dup: bool, mid: int | None) -> None:
        """One received PUBLISH to the pipeline; its PUBACK (for `mid`, QoS 1) goes out with
        the others of the same spool commit, in one write.

        A handler that returns a coroutine is driven here, not wrapped in a Task: it starts at
        once (messages are taken in arrival order) and resumes when the future it awaits (the
        spool's commit) is done. So it must only await futures: no `asyncio.timeout()` in it.
        """
        self._pending += 1
        if self._pending >= MAX_PENDING and self._paused is None:
            self._pause()
        if self.on_message is None or topic in self.own_topics:
            done = None if mid is None or self._acked is None else functools.partial(
                self._acked, mid)
            self._step(self.message(self.client, topic, payload, 1, {"dup": dup}), done)
            return
        raw = RawMessage(source=topic, payload=payload, received_ns=self._clock.now_ns(),
                         redelivered=dup, packet_id=mid)
        try:
            waiting = self.on_message(raw)
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
        connection = getattr(self.client, "_connection", None)
        acks = [mid for mid in mids if mid is not None]
        if acks and connection is not None and not connection.is_closing():
            connection.send_package(b"".join([_PUBACK.pack(0x40, 2, mid) for mid in acks]))

    def _message_qos0(self, client: Any, topic: str, payload: bytes, qos: int,
                      properties: Any) -> None:
        self.take(topic, bytes(payload), bool(properties.get("dup")), None)

    async def _await(self, waiting: Awaitable[None]) -> int:
        await waiting
        return 0

    def _pause(self) -> None:
        connection = getattr(self.client, "_connection", None)
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
        if self._paused is not None and self._pending <= MAX_PENDING // 2:
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

    async def message(self, client: Any, topic: str, payload: bytes, qos: int,
                      properties: Any) -> int:
        """A message as gmqtt's `on_message` (in a Task) or `take` (a topic with its own
        handler) hands it over; returns the PUBACK's reason code."""
        handler = self.own_topics.get(topic)
        if handler is not None:
            handler(bytes(payload))
            return 0
        raw = RawMessage(source=topic, payload=bytes(payload), received_ns=self._clock.now_ns(),
                         redelivered=bool(properties.get("dup")))
        if self.on_message is not None:
            waiting = self.on_message(raw)
            if waiting is not None:
                await waiting
        return 0  # PUBACK reason "success"

