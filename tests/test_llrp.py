"""The LLRP driver against our LLRP reader simulator: real LLRP bytes over TCP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from llrp_sim import (
    ADD_ROSPEC,
    DELETE_ROSPEC,
    ENABLE_ROSPEC,
    KEEPALIVE_ACK,
    RO_ACCESS_REPORT,
    SET_READER_CONFIG,
    LlrpReaderSim,
    Tag,
    message,
    tlv,
    tv,
)
from pydantic import ValidationError
from reader_links import Taken

from daemon.vocabulary.clock import SteadyClock
from daemon.vocabulary.errors import DecodeError
from drivers.llrp import LlrpReader, LlrpReaderConfig, decode_message, tag_readings

EPC = "E28011606000020D6842A1B2"
ANTENNAS = {1: "P1-IN", 2: "P1-OUT"}


def _config(port: int, **extra: object) -> LlrpReaderConfig:
    return LlrpReaderConfig.model_validate(
        {"type": "llrp", "id": "portal1", "host": "127.0.0.1", "port": port,
         "antennas": ANTENNAS, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
         "connect_timeout_s": 2.0, **extra})


def _with_reader(scenario: Callable[[LlrpReaderSim, LlrpReader, Taken], Awaitable[None]],
                 sim_keepalive_s: float | None = None, **extra: object) -> None:
    async def run() -> None:
        sim = LlrpReaderSim(sim_keepalive_s)
        await sim.start()
        taken = Taken()
        reader = _config(sim.port, **extra).build(SteadyClock(), taken.links())
        task = asyncio.create_task(reader.run())
        try:
            await asyncio.wait_for(sim.inventorying.wait(), 5)
            await asyncio.wait_for(reader.up.wait(), 5)
            await scenario(sim, reader, taken)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await sim.stop()

    asyncio.run(asyncio.wait_for(run(), 30))


def test_tag_reports_become_portal_antenna_readings() -> None:
    async def scenario(sim: LlrpReaderSim, _reader: LlrpReader, taken: Taken) -> None:
        assert sim.received[:4] == [SET_READER_CONFIG, DELETE_ROSPEC, ADD_ROSPEC, ENABLE_ROSPEC]
        await sim.report([Tag(EPC, antenna=1, rssi_dbm=-58, first_seen_us=1_765_000_000_500_000),
                          Tag("e2801160600002" + "0d6842a1b2deadbeef", antenna=2, rssi_dbm=-71)])
        await taken.until(lambda: len(taken.readings) == 2)
        first, second = taken.readings
        assert first.sensor == "P1-IN"
        assert first.values == {"epc": EPC, "rssi_dbm": -58.0,
                                "device_time_s": 1_765_000_000.5}
        assert second.sensor == "P1-OUT"
        assert second.values["epc"] == "E28011606000020D6842A1B2DEADBEEF"
        assert taken.states == [True] and taken.rejects == []

    _with_reader(scenario)


def test_keepalives_are_answered_and_a_silent_reader_is_dropped() -> None:
    async def scenario(sim: LlrpReaderSim, _reader: LlrpReader, taken: Taken) -> None:
        await taken.until(lambda: KEEPALIVE_ACK in sim.received, 3)
        # The reader keeps its TCP connection but stops talking (hung firmware): after three
        # keepalive intervals the driver gives up on it and connects afresh.
        sim.keepalive_s = None
        sim.inventorying.clear()
        await taken.until(lambda: sim.connections == 2 and sim.inventorying.is_set(), 8)
        assert taken.states == [True, False, True]

    _with_reader(scenario, sim_keepalive_s=0.3, keepalive_s=1.0)


def test_reconnects_after_the_reader_drops() -> None:
    async def scenario(sim: LlrpReaderSim, _reader: LlrpReader, taken: Taken) -> None:
        sim.drop()
        await taken.until(lambda: sim.connections == 2 and sim.inventorying.is_set())
        await taken.until(lambda: taken.states == [True, False, True])
        await sim.report([Tag(EPC, antenna=2)])
        await taken.until(lambda: len(taken.readings) == 1)
        assert taken.readings[0].sensor == "P1-OUT"

    _with_reader(scenario)


def test_bad_input_is_dead_lettered_and_nothing_else_lost() -> None:
    async def scenario(sim: LlrpReaderSim, _reader: LlrpReader, taken: Taken) -> None:
        # One report: a good tag, a tag from an antenna the config does not know, a tag with
        # no EPC; then a message of an unknown type, then a good report.
        no_epc = tlv(240, tv(1, struct.pack(">H", 1)))
        body = b"".join([tlv(240, tv(13, bytes.fromhex(EPC)) + tv(1, struct.pack(">H", 1))),
                         tlv(240, tv(13, bytes.fromhex(EPC)) + tv(1, struct.pack(">H", 7))),
                         no_epc])
        await sim.send(message(RO_ACCESS_REPORT, 0, body))
        await sim.send(message(999, 0, b"\x01\x02"))
        await sim.report([Tag(EPC, antenna=2)])
        await taken.until(lambda: len(taken.readings) == 2 and len(taken.rejects) == 3)
        reasons = [r for _, r, _ in taken.rejects]
        assert "antenna 7" in reasons[0] and "without an EPC" in reasons[1]
        assert "not readable" in reasons[2]
        assert {s for s, _, _ in taken.rejects} == {"llrp:portal1"}
        assert taken.states == [True]  # none of it cost the connection
        # A stream whose framing is lost is dead-lettered and the connection made afresh.
        await sim.send(b"\xff" * 10)
        await taken.until(lambda: sim.connections == 2 and sim.inventorying.is_set())
        assert "framing lost" in taken.rejects[-1][1]

    _with_reader(scenario)


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match="valid integer"):
        _config("5084")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match=r"antenna port\(s\) \[0\]"):
        _config(5084, antennas={0: "P1-IN"})
    with pytest.raises(ValidationError, match="Extra inputs"):
        _config(5084, antenna={1: "P1-IN"})
    with pytest.raises(ValidationError, match="reconnect_max_s is below"):
        _config(5084, reconnect_min_s=5.0, reconnect_max_s=1.0)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_decode_or_raise_decode_error(data: bytes) -> None:
    for frame in (data, message(RO_ACCESS_REPORT, 0, data)):
        try:
            _, fields = decode_message(frame)
        except DecodeError:
            continue
        readings, _bad = tag_readings(fields, ANTENNAS, 1)
        assert all(r.sensor in ANTENNAS.values() for r in readings)
