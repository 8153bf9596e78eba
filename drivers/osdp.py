"""OSDP card readers and keypads on an RS-485 line (IEC 60839-11-5): depotwatch is the panel.

libosdp runs the control panel (CP) side: polling, secure channel (AES-128, one key per reader),
replies and retries, in its own thread; this driver hands it the serial port, carries its
events into the event loop and turns them into readings: a card read is the reader sensor's
`badge` (Wiegand 26/34 as `facility/card` like the serial Wiegand decoder, ASCII as typed), a
keypad entry ended by `#` is the keypad sensor's `{"action", "badge"}` (`*` first: arm,
otherwise disarm; the code is checked against the roster like any keypad). A reader offline
or without a secure channel when one is required makes the line down (`input_lost`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import Reading
from daemon.vocabulary.settings import Settings
from drivers.decoders.base import field_text
from drivers.decoders.wiegand import wiegand_fields
from drivers.readers import Backoff, ReaderLinks, ReaderSettings, needs_extra

__all__ = ["KeyEntry", "OsdpPanel", "OsdpPanelConfig", "OsdpReaderConfig", "card_badge"]

log = logging.getLogger(__name__)

# libosdp's event numbers (osdp.constants.Event) and card formats (CardFormat).
_CARD_READ, _KEY_PRESS = 1, 2
_RAW_UNSPECIFIED, _RAW_WIEGAND, _ASCII = 0, 1, 2
# OSDP 2.2 §7.12 osdp_KEYPAD: '*' is sent as 0x7F and '#' as 0x0D.
_STAR, _HASH = 0x7F, 0x0D
_POLL_S = 0.25
# Readers come online (and agree their secure channel) within a second or two of the first
# poll: a line is not reported down before this, so a start is not an `input_lost`.
_ONLINE_GRACE_S = 5.0


class OsdpReaderConfig(Settings):
    """One peripheral device on the line: its address, key, and the sensors it is."""

    address: int = Field(ge=0, le=126)
    # The door's badge reader sensor: card reads.
    sensor: str
    # A `detectors` keypad: code entries (none: key presses are dead letters).
    keypad: str | None = None
    # Secure channel base key, 32 hex digits, as set in the reader (never logged).
    scbk: SecretStr | None = None

    @field_validator("scbk")
    @classmethod
    def _key(cls, key: SecretStr | None) -> SecretStr | None:
        text = key.get_secret_value() if key is not None else ""
        if key is not None and (len(text) != 32 or any(c not in "0123456789abcdefABCDEF"
                                                       for c in text)):
            raise ValueError("scbk is 32 hex digits (a 128-bit key)")
        return key


class OsdpPanelConfig(ReaderSettings):
    """An RS-485 line of OSDP readers, polled by depotwatch as control panel."""

    type: Literal["osdp"]
    device: str = Field(min_length=1)
    baud: Literal[9600, 19200, 38400, 57600, 115200] = 9600
    # required: every reader needs its scbk and is refused without the secure channel
    # (IEC 60839-11-5 grade 3); off: plain OSDP (bench tests, older readers).
    secure_channel: Literal["required", "off"] = "required"
    # How a Wiegand card number is written, as on the roster (see the `wiegand` decoder).
    badge_format: Literal["facility_card", "card", "number"] = "facility_card"
    # Keys typed without a `#` for this long are forgotten.
    keypad_timeout_s: float = Field(default=10.0, gt=0, le=120)
    # libosdp waits up to a minute before it polls an offline reader again: a line with a
    # reader offline this long is reopened instead, so a reader that is back is polled at once.
    offline_restart_s: float = Field(default=10.0, ge=1, le=600)
    readers: list[OsdpReaderConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> OsdpPanelConfig:
        needs_extra("osdp", "osdp")
        addresses = [r.address for r in self.readers]
        twice = sorted({a for a in addresses if addresses.count(a) > 1})
        if twice:
            raise ValueError(f"address(es) {twice} used twice on one line")
        keyless = [r.address for r in self.readers if r.scbk is None]
        if self.secure_channel == "required" and keyless:
            raise ValueError(f"secure_channel is required: reader(s) {keyless} need an scbk")
        return self

    @property
    def component(self) -> str:
        """The gateway component name of this line."""
        return f"osdp:{self.id}"

    def sensors(self) -> frozenset[str]:
        """The depot sensors this line feeds."""
        return frozenset({r.sensor for r in self.readers} | {r.keypad for r in self.readers
                                                             if r.keypad})

    def build(self, clock: Clock, links: ReaderLinks) -> OsdpPanel:
        """The driver for this line."""
        return OsdpPanel(self, clock, links)


def card_badge(event: Mapping[str, Any], badge_format: str) -> str:
    """The badge of a card read event; DecodeError for a card that cannot be one."""
    data, kind = event.get("data"), event.get("format")
    if not isinstance(data, bytes) or not data:
        raise DecodeError("card read without data")
    if kind == _ASCII:
        try:
            return field_text("badge", data.decode("ascii"))
        except UnicodeDecodeError as exc:
            raise DecodeError("ASCII card data that is not ASCII") from exc
    bits = event.get("length")
    if kind not in (_RAW_WIEGAND, _RAW_UNSPECIFIED) or not isinstance(bits, int) \
            or not 0 < bits <= 8 * len(data):
        raise DecodeError(f"card format {kind!r} with {bits!r} bits in {len(data)} bytes")
    # OSDP 2.2 §7.10: raw card bits are sent left-aligned, the last byte padded with zeros.
    value = int.from_bytes(data, "big") >> (8 * len(data) - bits)
    if bits not in (26, 34):
        return f"{value:X}"  # another format's bits, as hex: the roster lists them so
    facility, card = wiegand_fields(value, bits)
    if badge_format == "facility_card":
        return f"{facility}/{card}"
    return str(card) if badge_format == "card" else str((value >> 1) & ((1 << (bits - 2)) - 1))


class KeyEntry:
    """The keys typed at one keypad until `#`; forgets an entry left unfinished."""

    def __init__(self, timeout_s: float) -> None:
        self._timeout_ns = int(timeout_s * 1e9)
        self._keys = bytearray()
        self._last_ns = 0

    def press(self, data: bytes, now_ns: int) -> list[dict[str, str]]:
        """The entries the keys finish: `{"action", "badge"}`; DecodeError for a key that is
        not a digit, `*` or `#` (the entry is dropped)."""
        if now_ns - self._last_ns > self._timeout_ns:
            self._keys.clear()
        self._last_ns = now_ns
        entries: list[dict[str, str]] = []
        for key in data:
            if key == _HASH:
                arm = self._keys[:1] == bytes([_STAR])
                code = bytes(self._keys[1:] if arm else self._keys).decode("ascii")
                self._keys.clear()
                if not code.isdigit() or not 4 <= len(code) <= 12:
                    raise DecodeError("keypad entry is not a code of 4 to 12 digits")
                entries.append({"action": "arm" if arm else "disarm", "badge": code})
            elif key == _STAR or 0x30 <= key <= 0x39:
                self._keys.append(key)
            else:
                self._keys.clear()
                raise DecodeError(f"keypad key 0x{key:02X} is not a digit, * or #")
        return entries


class _SerialChannel:
    """The serial port as libosdp reads and writes it (from its own thread)."""

    def __init__(self, device: str, baud: int) -> None:
        import serial

        self._port = serial.Serial(device, baud, timeout=0, write_timeout=1)
        self.lost: str | None = None

    def read(self, max_bytes: int) -> bytes:
        try:
            data: bytes = self._port.read(max_bytes)
        except Exception as exc:  # an unplugged adapter raises in libosdp's thread
            self.lost = self.lost or str(exc)
            return b""
        return data

    def write(self, buf: bytes) -> int:
        try:
            sent: int | None = self._port.write(buf)
        except Exception as exc:
            self.lost = self.lost or str(exc)
            return 0
        return sent or 0

    def flush(self) -> None:
        with contextlib.suppress(Exception):
            self._port.flush()

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._port.close()


class OsdpPanel:
    """Runs libosdp's control panel on the line; reopens the port when it is lost."""

    def __init__(self, config: OsdpPanelConfig, clock: Clock, links: ReaderLinks) -> None:
        self.config = config
        self.component = config.component
        self._clock = clock
        self._links = links
        self._entries = {r.address: KeyEntry(config.keypad_timeout_s) for r in config.readers}
        self.up = asyncio.Event()

    async def run(self) -> None:
        """Poll the readers until cancelled."""
        backoff = Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        reported: bool | None = None
        while True:
            try:
                channel = _SerialChannel(self.config.device, self.config.baud)
            except Exception as exc:
                if reported is not False:
                    log.warning("OSDP line %s: cannot open %s: %s; retrying", self.config.id,
                                self.config.device, exc)
                    self._links.state(self.component, False)
                    reported = False
                await asyncio.sleep(backoff.delay())
                continue
            opened = time.monotonic()
            try:
                reported = await self._serve(channel, reported)
            finally:
                self.up.clear()
                channel.close()
            if time.monotonic() - opened >= 10:
                backoff.reset()
            await asyncio.sleep(backoff.delay())

    async def _serve(self, channel: _SerialChannel, reported: bool | None) -> bool | None:
        from osdp import ControlPanel, LibFlag, LogLevel, PDInfo

        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[int, Any, int]] = asyncio.Queue()

        def heard(pd: int, event: Any) -> int:  # libosdp's thread
            loop.call_soon_threadsafe(events.put_nowait, (pd, event, self._clock.now_ns()))
            return 0

        secure = self.config.secure_channel == "required"
        infos = [PDInfo(r.address, channel, name=f"{self.config.id}-{r.address}",
                        scbk=bytes.fromhex(r.scbk.get_secret_value()) if r.scbk else None,
                        flags=[LibFlag.EnforceSecure] if secure else [])
                 for r in self.config.readers]
        # libosdp prints to stderr itself, once per failed poll while a reader is offline: only
        # its critical messages; the line's changes are logged here, once each.
        panel = ControlPanel(infos, log_level=LogLevel.Critical, event_handler=heard)
        panel.start()
        grace_ends = loop.time() + _ONLINE_GRACE_S
        down_since = grace_ends
        try:
            while channel.lost is None:
                up = self._all_up(panel, secure)
                if up is not reported and (up or reported or loop.time() > grace_ends):
                    self._say(up)
                    reported = up
                if up:
                    down_since = loop.time()
                elif loop.time() - down_since > self.config.offline_restart_s:
                    return reported
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(_POLL_S):
                        await self._take(*await events.get())
            log.warning("OSDP line %s lost on %s: %s; reopening", self.config.id,
                        self.config.device, channel.lost)
            if reported is not False:
                self._links.state(self.component, False)
            return False
        finally:
            await asyncio.to_thread(panel.stop)

    def _all_up(self, panel: Any, secure: bool) -> bool:
        online, sc = int(panel.status()), int(panel.sc_status())
        mask = (1 << len(self.config.readers)) - 1
        return online & mask == mask and (not secure or sc & mask == mask)

    def _say(self, up: bool) -> None:
        if up:
            self.up.set()
            log.info("OSDP line %s: %d reader(s) online%s", self.config.id,
                     len(self.config.readers),
                     " with secure channel" if self.config.secure_channel == "required" else "")
        else:
            self.up.clear()
            log.warning("OSDP line %s: a reader is offline or without its secure channel",
                        self.config.id)
        self._links.state(self.component, up)

    async def _take(self, pd: int, event: Any, now_ns: int) -> None:
        reader = self.config.readers[pd] if 0 <= pd < len(self.config.readers) else None
        try:
            readings = self._readings(reader, event, now_ns)
        except DecodeError as exc:
            where = f"reader {reader.address}: " if reader else ""
            self._links.reject(self.component, f"{where}{exc}", repr(event).encode()[:2000],
                               now_ns)
            return
        for reading in readings:
            await self._links.reading(self.component, reading)

    def _readings(self, reader: OsdpReaderConfig | None, event: Any,
                  now_ns: int) -> list[Reading]:
        if reader is None or not isinstance(event, dict):
            raise DecodeError("event from an unknown reader")
        kind = event.get("event")
        if kind == _CARD_READ:
            badge = card_badge(event, self.config.badge_format)
            return [Reading(reader.sensor, now_ns, {"badge": badge})]
        if kind == _KEY_PRESS:
            data = event.get("data")
            if not isinstance(data, bytes):
                raise DecodeError("key press without keys")
            entries = self._entries[reader.address].press(data, now_ns)
            if entries and reader.keypad is None:
                raise DecodeError("a code was typed, but the reader has no `keypad` sensor")
            return [Reading(str(reader.keypad), now_ns, e) for e in entries]
        return []  # status and manufacturer replies: nothing for the rules
