"""MQTT as the bench's own processes speak it: hand-encoded 3.1.1 packets, a raw socket client,
and a gmqtt subscriber's start."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from typing import Any

from harness import HOST

SESSION_EXPIRY_S = 600


def remaining_length(n: int) -> bytes:
    """MQTT variable-length integer."""
    out = bytearray()
    while True:
        n, digit = n >> 7, n & 0x7F
        out.append(digit | (0x80 if n else 0))
        if not n:
            return bytes(out)


def publish_packet(topic: bytes, payload: bytes, qos: int, packet_id: int) -> bytes:
    """One MQTT 3.1.1 PUBLISH packet."""
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += packet_id.to_bytes(2, "big")
    body += payload
    return bytes([0x30 | qos << 1]) + remaining_length(len(body)) + body


def connect_packet(client_id: bytes) -> bytes:
    """An MQTT 3.1.1 CONNECT: clean session, keepalive 60 s."""
    body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(client_id).to_bytes(2, "big") + client_id
    return b"\x10" + remaining_length(len(body)) + body


class RawClient:
    """Writes packets to a socket; a reader thread counts PUBACKs and sees PUBLISHes."""

    def __init__(self, port: int, client_id: str) -> None:
        self.sock = socket.create_connection((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock.sendall(connect_packet(client_id.encode()))
        connack = self.sock.recv(4)
        if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
            raise SystemExit(f"bad CONNACK {connack!r}")
        self.pubacks = 0
        self.pingresp = threading.Event()
        self.suback = threading.Event()
        self.published: list[tuple[float, str, bytes, bool]] = []  # (monotonic, topic, ...)
        self.on_publish: Any = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = bytearray()
        while True:
            try:
                chunk = self.sock.recv(262144)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            pos = 0
            while True:
                if len(buf) - pos < 2:
                    break
                length, mult, i = 0, 1, pos + 1
                while i < len(buf):
                    byte = buf[i]
                    length += (byte & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not byte & 0x80:
                        break
                else:
                    break
                if len(buf) - i < length:
                    break
                kind, flags, body = buf[pos] >> 4, buf[pos] & 0x0F, bytes(buf[i:i + length])
                pos = i + length
                if kind == 4:
                    self.pubacks += 1
                elif kind == 13:
                    self.pingresp.set()
                elif kind == 9:
                    self.suback.set()
                elif kind == 3:
                    tlen = int.from_bytes(body[:2], "big")
                    topic = body[2:2 + tlen].decode()
                    rest = body[2 + tlen + (2 if flags & 0x06 else 0):]
                    now = time.monotonic()
                    if self.on_publish is not None:
                        self.on_publish(now, topic, rest, bool(flags & 0x01))
            del buf[:pos]

    def subscribe(self, topic_filter: str) -> None:
        """SUBSCRIBE at QoS 0 and wait for the SUBACK."""
        topic = topic_filter.encode()
        body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x00"
        self.sock.sendall(b"\x82" + remaining_length(len(body)) + body)
        if not self.suback.wait(10):
            raise SystemExit("no SUBACK")

    def ping(self, timeout: float) -> bool:
        """PINGREQ; its PINGRESP means the broker took every earlier packet."""
        self.pingresp.clear()
        self.sock.sendall(b"\xc0\x00")
        return self.pingresp.wait(timeout)

    def close(self) -> None:
        """DISCONNECT and close the socket."""
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")
            self.sock.close()


async def gmqtt_ready(client: Any, port: int, topic_filter: str, on_message: Any) -> None:
    """Connect a gmqtt client with MQTT 5, subscribe at QoS 1, wait for the SUBACK and tell the
    parent process READY."""
    from gmqtt.mqtt.constants import MQTTv50

    subscribed = asyncio.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    client.on_message = on_message
    await client.connect(HOST, port, version=MQTTv50)
    client.subscribe(topic_filter, qos=1)
    await asyncio.wait_for(subscribed.wait(), 10)
    print("READY", flush=True)
