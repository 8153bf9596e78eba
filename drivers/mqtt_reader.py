"""PUBLISH packets read straight out of gmqtt's receive buffer, the rest left to gmqtt."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from gmqtt.mqtt.package import Package

__all__ = ["PublishReader", "TakePublish"]

TakePublish = Callable[[str, bytes, bool, "int | None"], None]


class PublishReader:
    """Splits a connection's received bytes into MQTT packets, as gmqtt's `_read_packet` does,
    but hands a plain PUBLISH (QoS 0 or 1, no MQTT 5 properties, a UTF-8 topic) straight to
    `take(topic, payload, dup, packet id or None)`. Everything else, and a PUBLISH it does not
    take, goes to gmqtt as before. Returns how many bytes it used (-1: a malformed length, the
    connection resets).
    """

    def __init__(self, take: TakePublish, connection: Any, handler: Any,
                 original: Callable[[bytes], int], *, mqtt5: bool) -> None:
        self._take = take
        self._connection = connection
        self._handler = handler
        self._original = original
        self._mqtt5 = mqtt5

    def __call__(self, data: bytes) -> int:
        connection = self._connection
        if self._handler.current_connection is not connection:
            return self._original(data)  # gmqtt drops a superseded connection's packets
        take = self._take
        mqtt5 = self._mqtt5
        size = len(data)
        pos = 0
        took = False
        while size - pos >= 2:
            length, multiplier, at = 0, 1, pos + 1
            while True:
                if at >= size:
                    return pos  # the length is not all here yet
                byte = data[at]
                at += 1
                length += (byte & 0x7F) * multiplier
                if byte < 0x80:
                    break
                multiplier *= 128
                if multiplier > 2097152:
                    return -1
            end = at + length
            if end > size:
                break
            command = data[pos]
            if command & 0xF6 == 0x30 or command & 0xF6 == 0x32:  # PUBLISH, QoS 0 or 1
                try:
                    topic_end = at + 2 + (data[at] << 8 | data[at + 1])
                    topic = data[at + 2:topic_end].decode()
                    mid: int | None = None
                    body = topic_end
                    if command & 0x02:
                        mid = data[body] << 8 | data[body + 1]
                        body += 2
                    if mqtt5:
                        if data[body]:
                            raise ValueError("properties: gmqtt parses them")
                        body += 1
                    if not topic or body > end:
                        raise ValueError("not a PUBLISH we take")
                except (IndexError, ValueError):  # UnicodeDecodeError is a ValueError
                    connection.put_package(Package(command, data[at:end]))
                else:
                    took = True
                    take(topic, data[body:end], bool(command & 0x08), mid)
            else:
                connection.put_package(Package(command, data[at:end]))
                if self._handler.current_connection is not connection:
                    return end  # a DISCONNECT: gmqtt drops whatever follows
            pos = end
        if took:
            connection._last_data_in = time.monotonic()  # gmqtt's keepalive watches this
        return pos
