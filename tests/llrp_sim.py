"""A small LLRP reader on 127.0.0.1: the real LLRP 1.1 binary messages, a few tags on demand.

It does what a fixed reader does for one client: announces the connection
(READER_EVENT_NOTIFICATION, ConnectionAttemptEvent), answers SET_READER_CONFIG and the ROSpec
messages with LLRPStatus Success, sends KEEPALIVEs and, once a ROSpec is enabled,
RO_ACCESS_REPORTs of the tags a test puts in front of it. The reader's messages are encoded
here by the standard (sllurp encodes only a client's); what the client sends is kept by type.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import time
from dataclasses import dataclass

# LLRP 1.1 message types (§16.1).
SET_READER_CONFIG, ADD_ROSPEC, DELETE_ROSPEC, ENABLE_ROSPEC = 3, 20, 21, 24
CLOSE_CONNECTION, KEEPALIVE_ACK = 14, 72
RO_ACCESS_REPORT, KEEPALIVE, READER_EVENT_NOTIFICATION = 61, 62, 63
_RESPONSES = {SET_READER_CONFIG: 13, ADD_ROSPEC: 30, DELETE_ROSPEC: 31, 22: 32, 23: 33,
              ENABLE_ROSPEC: 34, 25: 35, CLOSE_CONNECTION: 4}


def message(kind: int, msg_id: int, body: bytes) -> bytes:
    """A message: version 1, type, length, id (§15.1), then its parameters."""
    return struct.pack(">HII", (1 << 10) | kind, 10 + len(body), msg_id) + body


def tlv(kind: int, body: bytes) -> bytes:
    """A TLV parameter (§15.2.1)."""
    return struct.pack(">HH", kind, 4 + len(body)) + body


def tv(kind: int, body: bytes) -> bytes:
    """A TV parameter (§15.2.2): one byte of type with the top bit set, then a fixed value."""
    return bytes([0x80 | kind]) + body


def status_ok() -> bytes:
    """LLRPStatus (287): Success, no description."""
    return tlv(287, struct.pack(">HH", 0, 0))


@dataclass(frozen=True)
class Tag:
    """One tag read: its EPC (hex), the antenna port, peak RSSI (dBm), first seen (µs)."""

    epc: str
    antenna: int | None = 1
    rssi_dbm: int | None = -60
    first_seen_us: int | None = None


def tag_report_data(tag: Tag) -> bytes:
    """TagReportData (240) with EPC-96 (TV 13) or EPCData (241), AntennaID, PeakRSSI, time."""
    epc = bytes.fromhex(tag.epc)
    body = tv(13, epc) if len(epc) == 12 else tlv(241, struct.pack(">H", 8 * len(epc)) + epc)
    if tag.antenna is not None:
        body += tv(1, struct.pack(">H", tag.antenna))
    if tag.rssi_dbm is not None:
        body += tv(6, struct.pack(">b", tag.rssi_dbm))
    first = tag.first_seen_us if tag.first_seen_us is not None else int(time.time() * 1e6)
    return tlv(240, body + tv(2, struct.pack(">Q", first)))


class LlrpReaderSim:
    """The reader: `start()`, then `report(tags)`, `send(bytes)`, `drop()`, `stop()`."""

    def __init__(self, keepalive_s: float | None = None) -> None:
        self.keepalive_s = keepalive_s
        self.port = 0
        self.received: list[int] = []
        self.connections = 0
        self.inventorying = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._client, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and the connection."""
        self.drop()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def drop(self) -> None:
        """The reader goes away (power cut, cable pulled): the connection is closed."""
        self.inventorying.clear()
        if self._writer is not None:
            self._writer.transport.abort()
            self._writer = None

    async def report(self, tags: list[Tag]) -> None:
        """One RO_ACCESS_REPORT with these tags."""
        await self.send(message(RO_ACCESS_REPORT, 0, b"".join(map(tag_report_data, tags))))

    async def send(self, data: bytes) -> None:
        """Any bytes to the client (a fault test's bad message)."""
        assert self._writer is not None, "no client connected"
        self._writer.write(data)
        await self._writer.drain()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        self.connections += 1
        self._writer = writer
        event = tlv(246, tlv(128, struct.pack(">Q", int(time.time() * 1e6)))
                    + tlv(256, struct.pack(">H", 0)))
        writer.write(message(READER_EVENT_NOTIFICATION, 0, event))
        keepalives = asyncio.create_task(self._keepalives(writer))
        try:
            while True:
                head = await reader.readexactly(10)
                kind_word, length, msg_id = struct.unpack(">HII", head)
                await reader.readexactly(length - 10)
                kind = kind_word & 0x3FF
                self.received.append(kind)
                if kind in _RESPONSES:
                    writer.write(message(_RESPONSES[kind], msg_id, status_ok()))
                if kind == ENABLE_ROSPEC:
                    self.inventorying.set()
                if kind == CLOSE_CONNECTION:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            keepalives.cancel()
            writer.close()
            self._tasks.discard(task)

    async def _keepalives(self, writer: asyncio.StreamWriter) -> None:
        if self.keepalive_s is None:
            return
        with contextlib.suppress(ConnectionError):
            while True:
                await asyncio.sleep(self.keepalive_s)
                writer.write(message(KEEPALIVE, 0, b""))
