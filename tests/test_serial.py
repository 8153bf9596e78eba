"""The serial driver on real pseudo-terminals: every framing and decoder, noise, unplugging."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import termios
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from serial_devices import PtyLink, until

from daemon.vocabulary.clock import SystemClock
from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import RawMessage, Reading
from drivers.framing import crc16_modbus
from drivers.serial import SerialPort, SerialPortConfig, SerialRouter

EPC = "E28011606000020549A0B1C2"


class Harness:
    """A SerialPort wired as the daemon wires it: frames routed and decoded, errors kept."""

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = SerialPortConfig.model_validate(config)
        self.port = SerialPort(self.config, SystemClock())
        self.router = SerialRouter([self.config])
        self.readings: list[Reading] = []
        self.dead: list[tuple[str, bytes]] = []
        self.states: list[bool] = []
        self.port.on_message(self._message)
        self.port.on_state(self.states.append)
        self.port.on_reject(lambda source, reason, payload, at: self.dead.append((reason, payload)))

    async def _message(self, raw: RawMessage) -> None:
        route = self.router.route(raw.source)
        assert route is not None and len(raw.payload) <= route.max_payload_bytes
        try:
            self.readings += route.decoder.decode(raw, route.sensor)
        except DecodeError as exc:  # the pipeline dead-letters these
            self.dead.append((str(exc), raw.payload))

    def values(self) -> list[dict[str, object]]:
        return [dict(r.values) for r in self.readings]



@contextlib.asynccontextmanager
async def running(harness: Harness) -> AsyncIterator[Harness]:
    task = asyncio.create_task(harness.port.run())
    try:
        yield harness
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


@pytest.fixture
def link(tmp_path: Path) -> Any:
    pty = PtyLink(tmp_path / "ttyDEPOT0")
    yield pty
    pty.unplug()


def port_config(link: PtyLink, **extra: Any) -> dict[str, Any]:
    return {"id": "io1", "device": str(link.path), "reconnect_min_s": 0.05,
            "reconnect_max_s": 0.2, **extra}


def run(coro: Any) -> None:
    asyncio.run(asyncio.wait_for(coro, 20))


IO_BOARD = {"type": "io_board", "fields": {"open": "door", "tamper": "tmp"}}


def test_io_board_lines_split_merged_and_noise(link: PtyLink) -> None:
    async def scenario() -> None:
        link.plug()
        config = port_config(link, sensor="sh1-door1", decoder=IO_BOARD,
                             framing={"type": "lines", "terminator": "\r\n"})
        async with running(Harness(config)) as h:
            await until(h.port.is_open.is_set)
            await link.send(b"door=0 tmp=0\r\n")
            await link.send(b"door=1 t")                       # one line in two reads
            await link.send(b"mp=0\r\n")
            await link.send(b"door=1 tmp=1\r\ndoor=0 tmp=0\r")   # merged, terminator split
            await link.send(b"\n\x00\xff\x13~~\r\n")            # line noise
            await until(lambda: len(h.readings) == 4 and len(h.dead) == 1)
            assert h.values() == [{"open": False, "tamper": False}, {"open": True, "tamper": False},
                                  {"open": True, "tamper": True}, {"open": False, "tamper": False}]
            assert {r.sensor for r in h.readings} == {"sh1-door1"}
            assert h.dead[0][0].startswith("not ASCII") and h.dead[0][1] == b"\x00\xff\x13~~"
            assert h.states == [True] and h.port.stats["frames"] == 5

    run(scenario())


def checksum_frame(body: bytes) -> bytes:
    covered = bytes([len(body)]) + body
    return b"\x02" + covered + crc16_modbus(covered).to_bytes(2, "little")


def wiegand26(facility: int, card: int, *, bad_parity: bool = False) -> bytes:
    data = f"{facility:08b}{card:016b}"
    even = str(data[:12].count("1") % 2)
    odd = str(1 - data[12:].count("1") % 2)
    if bad_parity:
        odd = str(1 - int(odd))
    return (even + data + odd).encode()


def test_badge_reader_behind_a_wiegand_converter_with_crc_frames(link: PtyLink) -> None:
    async def scenario() -> None:
        link.plug()
        config = port_config(link, sensor="sh1-reader1", decoder={"type": "wiegand"},
                             framing={"type": "checksum", "start": "02",
                                      "checksum": "crc16_modbus"})
        async with running(Harness(config)) as h:
            await until(h.port.is_open.is_set)
            good = checksum_frame(wiegand26(12, 3456))
            corrupted = bytearray(checksum_frame(wiegand26(12, 1111)))
            corrupted[5] ^= 0x01
            await link.send(b"\x55\xaa" + good[:9])
            await link.send(good[9:] + bytes(corrupted) + checksum_frame(wiegand26(7, 1)))
            await link.send(checksum_frame(wiegand26(12, 3456, bad_parity=True)))
            await until(lambda: len(h.readings) == 2 and len(h.dead) == 3)
            assert h.values() == [{"badge": "12/3456"}, {"badge": "7/1"}]
            reasons = [reason for reason, _ in h.dead]
            assert reasons[0] == "2 bytes of noise before a frame start"
            assert reasons[1].startswith("crc16_modbus checksum mismatch")
            assert reasons[2] == "Wiegand 26: odd parity bit wrong; not a badge"

    run(scenario())


def test_rfid_reader_antennas_become_portal_sensors(link: PtyLink) -> None:
    async def scenario() -> None:
        link.plug()
        config = port_config(link, decoder={"type": "rfid_ascii",
                                            "antennas": {1: "p1-inner", 2: "p1-outer"}})
        async with running(Harness(config)) as h:
            await until(h.port.is_open.is_set)
            await link.send(f"{EPC},1,-61.5\n{EPC},2,-58.0\n{EPC},9,-50\n".encode())
            await until(lambda: len(h.readings) == 2 and len(h.dead) == 1)
            assert [(r.sensor, r.values["epc"]) for r in h.readings] == [
                ("p1-inner", EPC), ("p1-outer", EPC)]
            assert "antenna 9" in h.dead[0][0]
            # One chunk, yet each read has its own timestamp (or InfluxDB keeps only one).
            assert h.readings[0].at_ns < h.readings[1].at_ns

    run(scenario())


def test_fixed_frames_resynchronise_after_an_idle_gap(link: PtyLink) -> None:
    async def scenario() -> None:
        link.plug()
        config = port_config(link, sensor="sh1-reader1", idle_reset_s=0.15,
                             decoder={"type": "wiegand", "format": "binary", "bit_length": 26},
                             framing={"type": "fixed", "length": 4})
        async with running(Harness(config)) as h:
            await until(h.port.is_open.is_set)
            await link.send(b"\x01\x02\x03")      # a torn frame, then silence
            await until(lambda: len(h.dead) == 1)
            assert h.dead[0] == ("incomplete frame of 3 bytes", b"\x01\x02\x03")
            await link.send(int(wiegand26(99, 4242), 2).to_bytes(4, "big"))
            await until(lambda: len(h.readings) == 1)
            assert h.values() == [{"badge": "99/4242"}]

    run(scenario())


def test_64_kib_of_garbage_without_a_terminator(link: PtyLink) -> None:
    async def scenario() -> None:
        link.plug()
        config = port_config(link, sensor="sh1-door1", decoder=IO_BOARD,
                             framing={"type": "lines", "max_frame_bytes": 512})
        async with running(Harness(config)) as h:
            await until(h.port.is_open.is_set)
            garbage = bytes(range(256)).replace(b"\n", b"") * 257
            garbage = garbage[:65536]
            for offset in range(0, len(garbage), 4096):
                await link.send(garbage[offset: offset + 4096])
                assert h.port.buffered <= 512
            await link.send(b"\ndoor=1 tmp=0\n")
            await until(lambda: len(h.readings) == 1)
            assert h.values() == [{"open": True, "tamper": False}]
            [(reason, payload)] = h.dead
            assert reason == "no terminator within 512 bytes; frame cut"
            assert payload == garbage[:512]

    run(scenario())


def test_unplugged_adapter_is_reported_and_resumes_when_it_returns(link: PtyLink) -> None:
    async def scenario() -> None:
        config = port_config(link, sensor="sh1-door1", decoder=IO_BOARD, baud=19200,
                             stop_bits=2)
        async with running(Harness(config)) as h:
            await until(lambda: h.states == [False])      # not there at start: down at once
            link.plug()
            await until(lambda: h.states == [False, True])
            # The UART settings reached the tty. (Linux ptys keep speed and stop bits but force
            # 8 data bits without parity, so those two cannot be checked here.)
            fd = os.open(link.path, os.O_RDONLY | os.O_NOCTTY)
            try:
                attrs = termios.tcgetattr(fd)
            finally:
                os.close(fd)
            assert attrs[4] == attrs[5] == termios.B19200
            assert attrs[2] & termios.CSTOPB
            await link.send(b"door=0 tmp=0\n")
            await until(lambda: len(h.readings) == 1)
            link.unplug()                                  # the USB adapter is pulled
            await until(lambda: h.states == [False, True, False])
            await asyncio.sleep(0.3)                       # retries fail quietly meanwhile
            assert h.states == [False, True, False]
            link.plug()                                    # and plugged back in
            await until(lambda: h.states == [False, True, False, True])
            await link.send(b"door=1 tmp=0\n")
            await until(lambda: len(h.readings) == 2)
            assert h.values()[-1] == {"open": True, "tamper": False}
            assert h.port.stats["lost"] == 1 and h.port.stats["opened"] == 2

    run(scenario())


def test_serial_to_ethernet_converter_in_raw_tcp_mode() -> None:
    """`socket://host:port` (pyserial's URL) reads a converter's TCP stream like a port."""

    async def scenario() -> None:
        sent = asyncio.Event()

        async def converter(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            writer.write(b"door=1 tmp=0\ndoor=0 t")
            await writer.drain()
            await asyncio.sleep(0.05)
            writer.write(b"mp=0\n")
            await writer.drain()
            await sent.wait()
            writer.close()

        server = await asyncio.start_server(converter, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        config = {"id": "io1", "device": f"socket://127.0.0.1:{port}", "sensor": "sh1-door1",
                  "decoder": IO_BOARD, "reconnect_min_s": 0.05, "reconnect_max_s": 0.1}
        async with server, running(Harness(config)) as h:
            await until(lambda: len(h.readings) == 2)
            assert h.values() == [{"open": True, "tamper": False},
                                  {"open": False, "tamper": False}]
            sent.set()                                  # the converter drops the connection
            await until(lambda: h.states[:2] == [True, False])

    run(scenario())


UDEV_RULES = Path(__file__).parent.parent / "deploy" / "udev" / "99-depotwatch-serial.rules"
UDEV_PAIR = re.compile(r'^(?P<key>[A-Z_]+)(\{(?P<attr>[A-Za-z0-9_/]+)\})?'
                       r'(?P<op>==|!=|\+=|=)"(?P<value>[^"]*)"$')


def test_udev_rules_name_each_adapter_once_by_its_serial_number() -> None:
    """udevadm cannot check rules here (Debian 12's has no `verify`): check their shape."""
    links: list[str] = []
    for line in UDEV_RULES.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        pairs = [UDEV_PAIR.match(part.strip()) for part in line.split(", ")]
        assert all(pairs), line
        rule = {(m["key"], m["attr"]): (m["op"], m["value"]) for m in pairs if m}
        assert ("ATTRS", "serial") in rule, f"not keyed by a serial number: {line}"
        if rule[("SUBSYSTEM", None)] == ("==", "tty"):
            op, link = rule[("SYMLINK", None)]
            assert op == "+=" and link.startswith("depotwatch-")
            assert rule[("MODE", None)] == ("=", "0660")
            assert rule[("ENV", "ID_MM_DEVICE_IGNORE")] == ("=", "1")
            links.append(link)
    assert len(links) == len(set(links)) >= 4
