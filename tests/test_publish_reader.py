"""PublishReader: the MQTT packets in a byte stream, split anywhere, read in order.

It takes over gmqtt's packet reading on the daemon's connection (issue 9: gmqtt's per-PUBLISH
path cost as much as decode and rules together), so it must give exactly what gmqtt would:
every plain PUBLISH to the pipeline, everything else to gmqtt, however TCP cuts the stream.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.mqtt_reader import PublishReader


def _length(n: int) -> bytes:
    out = bytearray()
    while True:
        byte, n = n % 128, n // 128
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


@dataclass(frozen=True)
class Publish:
    topic: bytes
    payload: bytes
    qos: int
    dup: bool
    retain: bool
    mid: int
    properties: bytes  # MQTT 5 property block (without its length)

    def packet(self, mqtt5: bool) -> tuple[int, bytes]:
        body = len(self.topic).to_bytes(2, "big") + self.topic
        if self.qos:
            body += self.mid.to_bytes(2, "big")
        if mqtt5:
            body += _length(len(self.properties)) + self.properties
        command = 0x30 | self.dup << 3 | self.qos << 1 | self.retain
        return command, body + self.payload

    def taken(self, mqtt5: bool) -> bool:
        try:
            self.topic.decode()
        except UnicodeDecodeError:
            return False
        return bool(self.topic) and self.qos < 2 and not (mqtt5 and self.properties)


@dataclass(frozen=True)
class Other:
    command: int
    body: bytes


class Connection:
    """What PublishReader needs of gmqtt's MQTTConnection: where other packets go."""

    def __init__(self, log: list[Any]) -> None:
        self._log = log
        self._last_data_in = 0.0

    def put_package(self, package: Any) -> None:
        self._log.append(("gmqtt", package.cmd, package.data))


class PackageHandler:
    def __init__(self) -> None:
        self.current_connection: Any = None


publishes = st.builds(
    Publish,
    topic=st.one_of(st.text(max_size=30).map(str.encode), st.binary(max_size=8)),
    payload=st.binary(max_size=300),
    qos=st.integers(0, 2),
    dup=st.booleans(),
    retain=st.booleans(),
    mid=st.integers(1, 65535),
    properties=st.one_of(st.just(b""), st.just(b"\x01\x01"),
                         st.binary(min_size=1, max_size=200)),
)
others = st.builds(Other, command=st.sampled_from([0x40, 0x90, 0xB0, 0xD0]),
                   body=st.binary(max_size=140))


def _stream(packets: list[Publish | Other], mqtt5: bool) -> tuple[bytes, list[Any]]:
    data, expected = b"", []
    for packet in packets:
        if isinstance(packet, Publish):
            command, body = packet.packet(mqtt5)
            if packet.taken(mqtt5):
                payload = body[2 + len(packet.topic) + (2 if packet.qos else 0)
                               + (len(_length(len(packet.properties))) if mqtt5 else 0):]
                expected.append(("taken", packet.topic.decode(), payload, packet.dup,
                                 packet.mid if packet.qos else None))
            else:
                expected.append(("gmqtt", command, body))
        else:
            command, body = packet.command, packet.body
            expected.append(("gmqtt", command, body))
        data += bytes([command]) + _length(len(body)) + body
    return data, expected


def _reader(log: list[Any], mqtt5: bool) -> tuple[PublishReader, Connection]:
    connection = Connection(log)
    handler = PackageHandler()
    handler.current_connection = connection

    def take(topic: str, payload: bytes, dup: bool, mid: int | None) -> None:
        log.append(("taken", topic, payload, dup, mid))

    def gmqtts_own(data: bytes) -> int:
        raise AssertionError("only a superseded connection goes back to gmqtt's reading")

    return PublishReader(take, connection, handler, gmqtts_own, mqtt5=mqtt5), connection


@settings(max_examples=300, deadline=None)
@given(packets=st.lists(st.one_of(publishes, others), max_size=25), mqtt5=st.booleans(),
       cuts=st.lists(st.integers(0, 20_000), max_size=12))
def test_every_packet_is_read_once_in_order_however_the_stream_is_cut(
        packets: list[Publish | Other], mqtt5: bool, cuts: list[int]) -> None:
    data, expected = _stream(packets, mqtt5)
    log: list[Any] = []
    reader, _ = _reader(log, mqtt5)
    buffer = b""
    # As gmqtt's _read_loop: append what the socket gave, read what is whole, keep the rest.
    bounds = sorted({0, len(data), *(c for c in cuts if c < len(data))})
    for start, end in itertools.pairwise(bounds):
        buffer += data[start:end]
        used = reader(buffer)
        assert used >= 0
        buffer = buffer[used:]
    assert buffer == b""
    assert log == expected


def test_a_length_of_five_bytes_resets_the_connection() -> None:
    reader, _ = _reader([], mqtt5=True)
    assert reader(b"\x32\xff\xff\xff\xff\x7f" + b"x" * 10) == -1


def test_packets_after_a_disconnect_are_dropped_as_gmqtt_drops_them() -> None:
    log: list[Any] = []
    reader, connection = _reader(log, mqtt5=True)
    handler = reader._handler

    def disconnect(package: Any) -> None:
        log.append(("gmqtt", package.cmd, package.data))
        handler.current_connection = None  # gmqtt lets the connection go

    connection.put_package = disconnect  # type: ignore[method-assign]
    publish = Publish(b"t", b"p", 1, False, False, 7, b"")
    command, body = publish.packet(True)
    first = bytes([command]) + _length(len(body)) + body
    data = first + b"\xe0\x00" + first
    assert reader(data) == len(first) + 2
    assert log == [("taken", "t", b"p", False, 7), ("gmqtt", 0xE0, b"")]
