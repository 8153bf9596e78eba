"""Fixed UHF RFID readers (portals, inventory readers) over LLRP (EPCglobal LLRP 1.1, TCP 5084).

The driver is the LLRP client: it connects to the reader, asks for a keepalive, replaces every
ROSpec on the reader with its own (inventory on the configured antennas, a report per tag) and
turns each tag in an RO_ACCESS_REPORT into a reading of the antenna's sensor (`epc`, `rssi_dbm`,
and the reader's first-seen time as `device_time_s`): the readings portal and inventory rules
take from any other RFID reader. sllurp encodes the client's messages and decodes the
reader's; the connection, the handshake and the reconnecting are ours (asyncio, no threads).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import struct
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, model_validator

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DecodeError, DriverError
from daemon.vocabulary.readings import FieldValue, Reading
from drivers.decoders.base import field_text
from drivers.readers import Backoff, ReaderLinks, ReaderSettings, needs_extra

__all__ = ["LlrpReader", "LlrpReaderConfig", "decode_message", "tag_readings"]

log = logging.getLogger(__name__)

# LLRP 1.1 §15.1: a 10-byte header (version and type, length, message id) before every message.
_HEADER = struct.Struct(">HII")
# Reports of thousands of tags stay far below this; a larger length means the stream is lost.
_MAX_MESSAGE = 1 << 20
_ROSPEC_ID = 1
# A connection that stayed up this long was healthy: the next loss starts the backoff afresh.
_STABLE_S = 10.0


class LlrpReaderConfig(ReaderSettings):
    """An LLRP reader: where it is and which depot sensor each of its antenna ports is."""

    type: Literal["llrp"]
    host: str = Field(min_length=1)
    port: int = Field(default=5084, ge=1, le=65535)
    # Antenna port -> sensor: a portal's inner or outer antenna, or an inventory reader.
    antennas: dict[int, str] = Field(min_length=1)
    # Index into the reader's transmit power table; 0 is the reader's highest power.
    tx_power: int = Field(default=0, ge=0, le=255)
    # Gen2 session: 2 keeps a tag quiet for a while once read (fewer repeats at a portal).
    session: int = Field(default=2, ge=0, le=3)
    # The reader sends a KEEPALIVE this often; three missed and the connection is taken as dead
    # (a reader that lost power never closes its TCP connection).
    keepalive_s: float = Field(default=10.0, ge=1, le=600)
    connect_timeout_s: float = Field(default=5.0, gt=0, le=60)

    @model_validator(mode="after")
    def _check(self) -> LlrpReaderConfig:
        needs_extra("sllurp", "llrp")
        bad = sorted(a for a in self.antennas if not 1 <= a <= 65535)
        if bad:
            raise ValueError(f"antenna port(s) {bad} out of 1..65535")
        return self

    @property
    def component(self) -> str:
        """The gateway component name of this reader."""
        return f"llrp:{self.id}"

    def sensors(self) -> frozenset[str]:
        """The depot sensors this reader feeds."""
        return frozenset(self.antennas.values())

    def build(self, clock: Clock, links: ReaderLinks) -> LlrpReader:
        """The driver for this reader."""
        return LlrpReader(self, clock, links)


def decode_message(frame: bytes) -> tuple[str, dict[str, Any]]:
    """A whole LLRP message's name and fields (sllurp's decoding); DecodeError if unreadable."""
    from sllurp.llrp import LLRPMessage

    try:
        message = LLRPMessage(msgbytes=frame)
        name = message.getName()
        fields = message.msgdict[name]
    except Exception as exc:  # sllurp raises LLRPError, struct.error, KeyError, ...: all bad input
        raise DecodeError(f"LLRP message not readable: {type(exc).__name__}: {exc}"[:300]) \
            from exc
    if not isinstance(name, str) or not isinstance(fields, dict):
        raise DecodeError("LLRP message not readable")
    return name, fields


def tag_readings(report: Mapping[str, Any], antennas: Mapping[int, str],
                 now_ns: int) -> tuple[list[Reading], list[tuple[str, bytes]]]:
    """The readings of one RO_ACCESS_REPORT, and (reason, tag) for each tag that cannot be one.

    A reading is timed by receipt; the reader's own first-seen time is kept as `device_time_s`.
    """
    tags = report.get("TagReportData", [])
    if isinstance(tags, dict):
        tags = [tags]
    if not isinstance(tags, list):
        return [], [("TagReportData is not a list", repr(tags).encode()[:2000])]
    readings: list[Reading] = []
    bad: list[tuple[str, bytes]] = []
    for tag in tags:
        try:
            readings.append(_tag_reading(tag, antennas, now_ns))
        except DecodeError as exc:
            bad.append((str(exc), repr(tag).encode()[:2000]))
    return readings, bad


def _tag_reading(tag: Any, antennas: Mapping[int, str], now_ns: int) -> Reading:
    if not isinstance(tag, dict):
        raise DecodeError("tag report is not a parameter set")
    epc = tag.get("EPC", tag.get("EPC-96"))
    if not isinstance(epc, bytes | str):
        raise DecodeError("tag report without an EPC")
    antenna = tag.get("AntennaID")
    if antenna is None and len(antennas) == 1:
        antenna = next(iter(antennas))  # a one-antenna reader need not say which
    if not isinstance(antenna, int) or antenna not in antennas:
        raise DecodeError(f"tag read by antenna {antenna!r}, not in this reader's `antennas`")
    text = epc.decode("ascii", "replace") if isinstance(epc, bytes) else epc
    values: dict[str, FieldValue] = {"epc": field_text("epc", text)}
    rssi = tag.get("PeakRSSI")
    if isinstance(rssi, int) and not isinstance(rssi, bool):
        values["rssi_dbm"] = float(rssi)  # LLRP 1.1 §13.2.3.11: signed dBm
    first_seen = tag.get("FirstSeenTimestampUTC")
    if isinstance(first_seen, int) and not isinstance(first_seen, bool) and first_seen > 0:
        values["device_time_s"] = first_seen / 1e6  # microseconds since the Unix epoch
    return Reading(sensor=antennas[antenna], at_ns=now_ns, values=values)


def _encode(name: str, msg_id: int, fields: Mapping[str, Any]) -> bytes:
    from sllurp.llrp import LLRPMessage

    frame: bytes = LLRPMessage(msgdict={name: {"Ver": 1, "ID": msg_id, **fields}}).msgbytes
    return frame


def _rospec(config: LlrpReaderConfig) -> dict[str, Any]:
    from sllurp.llrp_proto import LLRPROSpec

    content = {"EnableAntennaID": True, "EnablePeakRSSI": True, "EnableFirstSeenTimestamp": True,
               "EnableLastSeenTimestamp": False, "EnableTagSeenCount": False,
               "EnableChannelIndex": False, "EnableROSpecID": False, "EnableSpecIndex": False,
               "EnableInventoryParameterSpecID": False, "EnableAccessSpecID": False,
               "EnableCRC": False, "EnablePCBits": False}
    spec: dict[str, Any] = LLRPROSpec(
        None, _ROSPEC_ID, antennas=tuple(sorted(config.antennas)), tx_power=config.tx_power,
        report_every_n_tags=1, tag_content_selector=content, session=config.session)
    return spec


class LlrpReader:
    """One LLRP reader: connect, set up inventory, take reports, reconnect when it drops."""

    def __init__(self, config: LlrpReaderConfig, clock: Clock, links: ReaderLinks) -> None:
        self.config = config
        self.component = config.component
        self._clock = clock
        self._links = links
        self._ids = itertools.count(1)
        self.up = asyncio.Event()
        self.reports = 0

    async def run(self) -> None:
        """Connect and read until cancelled; a lost reader is reported and reconnected."""
        backoff = Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        reported: bool | None = None
        while True:
            opened = time.monotonic()
            try:
                reader, writer = await asyncio.wait_for(
                    asyncio.open_connection(self.config.host, self.config.port),
                    self.config.connect_timeout_s)
            except (OSError, TimeoutError) as exc:
                if reported is not False:
                    log.warning("LLRP reader %s: cannot connect to %s:%d: %s; retrying",
                                self.config.id, self.config.host, self.config.port, exc)
                    self._links.state(self.component, False)
                    reported = False
                await asyncio.sleep(backoff.delay())
                continue
            try:
                await self._session(reader, writer)
            except (DriverError, OSError, TimeoutError, asyncio.IncompleteReadError) as exc:
                log.warning("LLRP reader %s lost: %s; reconnecting", self.config.id,
                            str(exc) or type(exc).__name__)
                self._links.state(self.component, False)
                reported = False
            finally:
                self.up.clear()
                writer.close()
            if time.monotonic() - opened >= _STABLE_S:
                backoff.reset()
            await asyncio.sleep(backoff.delay())

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        timeout = self.config.connect_timeout_s
        _, fields = await self._expect(reader, writer, "READER_EVENT_NOTIFICATION", timeout)
        attempt = fields.get("ReaderEventNotificationData", {}).get("ConnectionAttemptEvent")
        if not isinstance(attempt, dict) or attempt.get("Status") != "Success":
            raise DriverError(f"the reader refused the connection: {attempt!r}")
        keepalive = {"KeepaliveTriggerType": 1, "TimeInterval": int(self.config.keepalive_s * 1000)}
        await self._ask(reader, writer, "SET_READER_CONFIG",
                        {"ResetToFactoryDefaults": False, "KeepaliveSpec": keepalive})
        # ROSpec 0 is every ROSpec: whatever an earlier client left on the reader goes.
        await self._ask(reader, writer, "DELETE_ROSPEC", {"ROSpecID": 0})
        await self._ask(reader, writer, "ADD_ROSPEC",
                        {"ROSpecID": _ROSPEC_ID, "ROSpec": _rospec(self.config)})
        await self._ask(reader, writer, "ENABLE_ROSPEC", {"ROSpecID": _ROSPEC_ID})
        log.info("LLRP reader %s at %s:%d inventorying on antenna(s) %s", self.config.id,
                 self.config.host, self.config.port, sorted(self.config.antennas))
        self._links.state(self.component, True)
        self.up.set()
        silence = 3 * self.config.keepalive_s
        while True:
            await self._take(reader, writer, await self._next(reader, silence))

    async def _ask(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                   name: str, fields: Mapping[str, Any]) -> None:
        writer.write(_encode(name, next(self._ids), fields))
        await writer.drain()
        _, answer = await self._expect(reader, writer, f"{name}_RESPONSE",
                                       self.config.connect_timeout_s)
        status = answer.get("LLRPStatus", {})
        if not isinstance(status, dict) or status.get("StatusCode") != "Success":
            raise DriverError(f"the reader refused {name}: {status!r}"[:300])

    async def _expect(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                      wanted: str, timeout_s: float) -> tuple[str, dict[str, Any]]:
        deadline = time.monotonic() + timeout_s
        while True:
            frame = await self._next(reader, max(0.0, deadline - time.monotonic()))
            try:
                name, fields = decode_message(frame)
            except DecodeError as exc:
                self._links.reject(self.component, str(exc), frame, self._clock.now_ns())
                continue
            if name == wanted:
                return name, fields
            if name == "KEEPALIVE":
                await self._keepalive_ack(writer)

    async def _next(self, reader: asyncio.StreamReader, timeout_s: float) -> bytes:
        """The next whole message; a stream whose framing is lost ends the connection."""
        try:
            async with asyncio.timeout(timeout_s):
                header = await reader.readexactly(_HEADER.size)
                kind, length, _ = _HEADER.unpack(header)
                if (kind >> 10) & 0x7 not in (1, 2) or not _HEADER.size <= length <= _MAX_MESSAGE:
                    self._links.reject(self.component, "LLRP framing lost (bad version or "
                                       f"length {length})", header, self._clock.now_ns())
                    raise DriverError("LLRP framing lost")
                return header + await reader.readexactly(length - _HEADER.size)
        except TimeoutError:
            raise DriverError(f"the reader said nothing for {timeout_s:.0f} s") from None

    async def _take(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                    frame: bytes) -> None:
        now_ns = self._clock.now_ns()
        try:
            name, fields = decode_message(frame)
        except DecodeError as exc:
            self._links.reject(self.component, str(exc), frame, now_ns)
            return
        if name == "KEEPALIVE":
            await self._keepalive_ack(writer)
        elif name == "RO_ACCESS_REPORT":
            self.reports += 1
            readings, bad = tag_readings(fields, self.config.antennas, now_ns)
            for reason, tag in bad:
                self._links.reject(self.component, reason, tag, now_ns)
            # Taken together: each reading meets the rules at once, in report order, and
            # they share spool commits (one after the other, a report of 200 tags at a dock
            # door would wait for 200 commit windows).
            await asyncio.gather(*(self._links.reading(self.component, r) for r in readings))
        elif name == "READER_EVENT_NOTIFICATION":
            event = fields.get("ReaderEventNotificationData", {})
            if isinstance(event, dict) and "ConnectionCloseEvent" in event:
                raise DriverError("the reader closed the connection")
        elif name == "ERROR_MESSAGE":
            log.warning("LLRP reader %s reports an error: %.200r", self.config.id,
                        fields.get("LLRPStatus"))

    async def _keepalive_ack(self, writer: asyncio.StreamWriter) -> None:
        writer.write(_encode("KEEPALIVE_ACK", next(self._ids), {}))
        await writer.drain()
