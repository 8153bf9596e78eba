"""The OSDP driver (control panel) against libosdp's peripheral device over a real pseudo-terminal
pair, secure channel on: the PD plays the card reader with keypad."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
import tty
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError
from reader_links import Taken

from daemon.vocabulary.clock import SteadyClock
from daemon.vocabulary.errors import DecodeError
from drivers.osdp import KeyEntry, OsdpPanel, OsdpPanelConfig, card_badge

SCBK = "000102030405060708090A0B0C0D0E0F"
# Wiegand 26, facility 12, card 3456, both parity bits right: left-aligned in 4 bytes.
W26 = (0 << 25) | (12 << 17) | (3456 << 1) | 1


def _w26_bytes(value: int) -> bytes:
    return (value << 6).to_bytes(4, "big")


class _PtyEnd:
    """The PD's end of the pty (libosdp Channel): non-blocking reads of the master side."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.id = 0

    def read(self, max_bytes: int) -> bytes:
        try:
            return os.read(self.fd, max_bytes)
        except (BlockingIOError, OSError):
            return b""

    def write(self, buf: bytes) -> int:
        try:
            return os.write(self.fd, buf)
        except OSError:
            return 0

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _reader_device(scbk: str = SCBK) -> Iterator[tuple[str, Any]]:
    """A pty whose slave the driver opens; libosdp's PD (address 101) on the master."""
    master, slave = os.openpty()
    tty.setraw(master)
    tty.setraw(slave)
    os.set_blocking(master, False)
    pd = _peripheral(master, scbk)
    try:
        yield os.ttyname(slave), pd
    finally:
        if pd.thread is not None:
            pd.stop()
        os.close(master)
        os.close(slave)


def _peripheral(master: int, scbk: str = SCBK) -> Any:
    """libosdp's PD at address 101 on the pty's master side, started."""
    from osdp import Capability, LogLevel, PDCapabilities, PDInfo, PeripheralDevice

    pd = PeripheralDevice(PDInfo(101, _PtyEnd(master), scbk=bytes.fromhex(scbk)),
                          PDCapabilities([(Capability.CommunicationSecurity, 1, 1)]),
                          log_level=LogLevel.Error)
    pd.channel_fd = master
    pd.start()
    return pd


def _config(device: str, **extra: Any) -> OsdpPanelConfig:
    return OsdpPanelConfig.model_validate({
        "type": "osdp", "id": "line1", "device": device, "baud": 115200,
        "reconnect_min_s": 0.05, "reconnect_max_s": 0.2, "offline_restart_s": 1.0,
        "readers": [{"address": 101, "sensor": "SH1-D1-reader", "keypad": "SH1-KP",
                     "scbk": SCBK}], **extra})


def _with_line(scenario: Callable[[Any, OsdpPanel, Taken], Awaitable[None]]) -> None:
    async def run(device: str, pd: Any) -> None:
        taken = Taken()
        panel = _config(device).build(SteadyClock(), taken.links())
        task = asyncio.create_task(panel.run())
        try:
            await asyncio.wait_for(panel.up.wait(), 15)
            await scenario(pd, panel, taken)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    with _reader_device() as (device, pd):
        asyncio.run(asyncio.wait_for(run(device, pd), 40))


def _card(data: bytes, bits: int, fmt: int = 1) -> dict[str, Any]:
    return {"event": 1, "reader_no": 0, "direction": 0, "format": fmt, "length": bits,
            "data": data}


def test_cards_and_codes_become_badge_and_keypad_readings() -> None:
    async def scenario(pd: Any, panel: OsdpPanel, taken: Taken) -> None:
        assert panel.up.is_set() and taken.states == [True]
        pd.submit_event(_card(_w26_bytes(W26), 26))
        # A 40-bit card of no Wiegand format: its bits as hex (libosdp's PD no longer sends
        # the ASCII format, deprecated in OSDP 2.2).
        pd.submit_event(_card(bytes.fromhex("04A1B2C3D5"), 40, fmt=0))
        pd.submit_event({"event": 2, "reader_no": 0, "data": b"\x7f1234\x0d"})
        pd.submit_event({"event": 2, "reader_no": 0, "data": b"56"})
        pd.submit_event({"event": 2, "reader_no": 0, "data": b"78\x0d"})
        await taken.until(lambda: len(taken.readings) == 4, 10)
        assert [(r.sensor, dict(r.values)) for r in taken.readings] == [
            ("SH1-D1-reader", {"badge": "12/3456"}), ("SH1-D1-reader", {"badge": "4A1B2C3D5"}),
            ("SH1-KP", {"action": "arm", "badge": "1234"}),
            ("SH1-KP", {"action": "disarm", "badge": "5678"})]
        assert taken.rejects == []

    _with_line(scenario)


def test_bad_cards_and_keys_are_dead_lettered_and_the_line_goes_on() -> None:
    async def scenario(pd: Any, _panel: OsdpPanel, taken: Taken) -> None:
        pd.submit_event(_card(_w26_bytes(W26 ^ 1), 26))  # odd parity wrong
        pd.submit_event({"event": 2, "reader_no": 0, "data": b"12\x0d"})  # too short
        pd.submit_event({"event": 2, "reader_no": 0, "data": b"1A"})
        pd.submit_event(_card(_w26_bytes(W26), 26))
        await taken.until(lambda: len(taken.readings) == 1 and len(taken.rejects) == 3, 10)
        reasons = [r for _, r, _ in taken.rejects]
        assert "odd parity bit wrong" in reasons[0]
        assert "4 to 12 digits" in reasons[1] and "0x41" in reasons[2]
        assert all(r.startswith("reader 101: ") for r in reasons)
        assert taken.readings[0].values == {"badge": "12/3456"}
        assert taken.states == [True]

    _with_line(scenario)


def test_a_reader_that_goes_silent_takes_the_line_down_until_it_is_back() -> None:
    async def scenario(pd: Any, panel: OsdpPanel, taken: Taken) -> None:
        await asyncio.to_thread(pd.stop)  # the reader loses power
        await taken.until(lambda: taken.states == [True, False], 15)
        t0 = time.monotonic()
        again = _peripheral(pd.channel_fd)  # and comes back, secure channel to agree anew
        try:
            await taken.until(lambda: taken.states == [True, False, True], 30)
            assert time.monotonic() - t0 < 10
            again.submit_event(_card(_w26_bytes(W26), 26))
            await taken.until(lambda: len(taken.readings) == 1, 10)
            assert panel.up.is_set()
        finally:
            await asyncio.to_thread(again.stop)

    _with_line(scenario)


def test_a_pulled_adapter_is_reported_and_the_line_reopened(tmp_path: Path) -> None:
    link = tmp_path / "ttyOSDP"  # the adapter's stable name, as udev gives it

    def plug() -> tuple[int, int, Any]:
        master, slave = os.openpty()
        tty.setraw(master)
        tty.setraw(slave)
        os.set_blocking(master, False)
        os.symlink(os.ttyname(slave), link)
        return master, slave, _peripheral(master)

    def unplug(master: int, slave: int, pd: Any) -> None:
        pd.stop()
        link.unlink()
        os.close(master)
        os.close(slave)

    async def run() -> None:
        taken = Taken()
        panel = _config(str(link)).build(SteadyClock(), taken.links())
        adapter = plug()
        task = asyncio.create_task(panel.run())
        try:
            await asyncio.wait_for(panel.up.wait(), 15)
            await asyncio.to_thread(unplug, *adapter)
            await taken.until(lambda: taken.states == [True, False], 10)
            adapter = plug()
            await taken.until(lambda: taken.states == [True, False, True], 15)
            adapter[2].submit_event(_card(_w26_bytes(W26), 26))
            await taken.until(lambda: len(taken.readings) == 1, 10)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await asyncio.to_thread(unplug, *adapter)

    asyncio.run(asyncio.wait_for(run(), 45))


def test_config_errors_are_clear() -> None:
    with pytest.raises(ValidationError, match=r"reader\(s\) \[101\] need an scbk"):
        _config("/dev/null", readers=[{"address": 101, "sensor": "r"}])
    with pytest.raises(ValidationError, match="32 hex digits"):
        _config("/dev/null", readers=[{"address": 1, "sensor": "r", "scbk": "00"}])
    with pytest.raises(ValidationError, match=r"address\(es\) \[1\] used twice"):
        _config("/dev/null", secure_channel="off",
                readers=[{"address": 1, "sensor": "r"}, {"address": 1, "sensor": "s"}])
    with pytest.raises(ValidationError, match="Input should be 9600"):
        _config("/dev/null", baud=9601)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=12), st.integers(-5, 200), st.integers(0, 4),
       st.sampled_from(["facility_card", "card", "number"]))
def test_any_card_data_is_a_badge_or_a_decode_error(data: bytes, bits: int, fmt: int,
                                                    badge_format: str) -> None:
    with contextlib.suppress(DecodeError):
        assert card_badge(_card(data, bits, fmt), badge_format)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=8), max_size=6))
def test_any_keys_are_entries_or_a_decode_error(presses: list[bytes]) -> None:
    entry = KeyEntry(10.0)
    for at, data in enumerate(presses):
        with contextlib.suppress(DecodeError):
            for found in entry.press(data, at):
                assert found["badge"].isdigit() and found["action"] in ("arm", "disarm")
