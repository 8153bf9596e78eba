"""Intrusion panels that report by SIA DC-09 (the monitoring-centre protocol): a TCP receiver.

The panel connects and sends one message per event, framed `<LF>...<CR>`, plain or AES
encrypted, with a CRC; pysiaalarm checks the CRC, decrypts, parses and builds the answer (ACK,
NAK, DUH). The events become what depotwatch already judges: a burglary (BA/BR) is its zone's
detector field, tamper (TA/TR) `tamper`, duress or hold-up (HA/HR) `panic`, low battery (YT/YR)
`battery_low`; closing and opening (CL/OP, CG/OG, CA/OA) arm and disarm the area's storehouse
zone (audited as `how: panel`); AC loss (AT/AR) is a `mains_lost` fault alert. A message is
acknowledged once its readings are taken, so the panel sends again what was not.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, SecretStr, field_validator, model_validator

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.listening import stop_accepting
from daemon.vocabulary.readings import Reading
from daemon.vocabulary.settings import Settings
from drivers.readers import Backoff, ReaderLinks, ReaderSettings, needs_extra

if TYPE_CHECKING:
    from pysiaalarm.account import SIAAccount
    from pysiaalarm.event import SIAEvent

__all__ = ["Arm", "Fault", "SiaAccountConfig", "SiaReceiver", "SiaReceiverConfig",
           "panel_effects", "parse_message"]

log = logging.getLogger(__name__)

# DC-09 messages are short (a few hundred bytes with extended data); longer is not a panel.
_MAX_MESSAGE = 2048
_ZONE_FIELDS = Literal["motion", "vibration", "glass_break", "open", "smoke", "panic"]
# SIA event codes (SIA DC-03): (field, value) on the zone's sensor, or the panel's.
_ZONE_EVENTS: dict[str, tuple[str, bool]] = {"TA": ("tamper", True), "TR": ("tamper", False),
                                            "HA": ("panic", True), "HR": ("panic", False)}
_PANEL_EVENTS: dict[str, tuple[str, bool]] = {"YT": ("battery_low", True),
                                             "YR": ("battery_low", False)}
_DIGITS = re.compile(r"[0-9]{1,6}")
_ARMING = {"CL": "arm", "CG": "arm", "CA": "arm", "OP": "disarm", "OG": "disarm",
           "OA": "disarm"}


class SiaZoneConfig(Settings):
    """A panel zone: the depot sensor it is, and the field a burglary (BA) sets."""

    sensor: str
    field: _ZONE_FIELDS = "motion"


class SiaAccountConfig(Settings):
    """A panel's account: its key, and where its zones and areas are in the depot."""

    account: str = Field(pattern=r"^[0-9A-Fa-f]{3,16}$")
    # The AES key as set in the panel: 16, 24 or 32 characters, used as typed (AES-128/192/
    # 256; pysiaalarm's convention). With a key, plain messages from this account are refused.
    key: SecretStr | None = None
    # Tamper, duress and battery events without a zone are this sensor's (the panel's own).
    panel_sensor: str | None = None
    zones: dict[int, str | SiaZoneConfig] = Field(default_factory=dict)
    # Area (partition, the `ri` of a message) -> storehouse armed and disarmed by the panel.
    areas: dict[int, str] = Field(default_factory=dict)

    @field_validator("key")
    @classmethod
    def _key_length(cls, key: SecretStr | None) -> SecretStr | None:
        if key is not None and len(key.get_secret_value()) not in (16, 24, 32):
            raise ValueError("an AES key is 16, 24 or 32 characters")
        return key

    def zone(self, number: int) -> SiaZoneConfig | None:
        """The zone's settings, None if the config does not place it."""
        target = self.zones.get(number)
        return SiaZoneConfig(sensor=target) if isinstance(target, str) else target


class SiaReceiverConfig(ReaderSettings):
    """A SIA DC-09 receiver: where panels connect, and their accounts."""

    type: Literal["sia"]
    listen_host: str = "0.0.0.0"
    listen_port: int = Field(ge=1, le=65535)
    accounts: list[SiaAccountConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _check(self) -> SiaReceiverConfig:
        needs_extra("pysiaalarm", "sia")
        numbers = [a.account.upper() for a in self.accounts]
        twice = sorted({n for n in numbers if numbers.count(n) > 1})
        if twice:
            raise ValueError(f"account(s) {twice} listed twice")
        return self

    @property
    def component(self) -> str:
        """The gateway component name of this receiver."""
        return f"sia:{self.id}"

    def sensors(self) -> frozenset[str]:
        """The depot sensors the panels feed."""
        named = {a.panel_sensor for a in self.accounts if a.panel_sensor}
        named |= {z.sensor for a in self.accounts for n in a.zones if (z := a.zone(n))}
        return frozenset(named)

    def build(self, clock: Clock, links: ReaderLinks) -> SiaReceiver:
        """The driver for this receiver."""
        return SiaReceiver(self, clock, links)


@dataclass(frozen=True, slots=True)
class Arm:
    """A panel armed or disarmed an area: the storehouse's zone follows."""

    storehouse: str
    action: str
    by: str


@dataclass(frozen=True, slots=True)
class Fault:
    """A fault the panel reports, raised or cleared."""

    fault: str
    subject: str
    active: bool
    summary: str


def _accounts(config: SiaReceiverConfig) -> dict[str, SIAAccount]:
    from pysiaalarm.account import SIAAccount

    return {a.account.upper(): SIAAccount(
        a.account.upper(), a.key.get_secret_value() if a.key else None) for a in config.accounts}


def parse_message(data: bytes, accounts: Mapping[str, SIAAccount]) -> SIAEvent:
    """One DC-09 message (without its LF and CR) parsed and decrypted; DecodeError otherwise."""
    from pysiaalarm.event import SIAEvent

    try:
        event = SIAEvent.from_line(data.decode("ascii").strip(), dict(accounts))
    except Exception as exc:  # format, account, hex, AES and unicode errors alike
        raise DecodeError(f"not a SIA DC-09 message: {type(exc).__name__}: {exc}"[:300]) \
            from exc
    if not isinstance(event, SIAEvent):
        raise DecodeError("not a SIA DC-09 event message")
    return event


def message_problem(event: SIAEvent, account: SiaAccountConfig | None) -> str | None:
    """Why a parsed message cannot be taken, or None."""
    if not event.valid_message:
        return f"CRC mismatch (sent {event.msg_crc}, computed {event.calc_crc})"
    if account is None:
        return f"unknown account {event.account!r}"
    if account.key is not None and not event.encrypted:
        return f"plain message for account {account.account}, which has a key"
    if not event.valid_timestamp:
        return f"timestamp {event.timestamp} outside the accepted window"
    return None


def panel_effects(code: str, area: str | None, number: str | None,
                  account: SiaAccountConfig, now_ns: int) -> list[Reading | Arm | Fault]:
    """What one event means for the depot; DecodeError for an event the config cannot place."""
    zone_no = _number(number)
    if code in _ARMING:
        area_no = _number(area) or 1
        storehouse = account.areas.get(area_no)
        if storehouse is None:
            raise DecodeError(f"{code}: area {area_no} not in account {account.account}'s areas")
        by = f"panel {account.account} user {zone_no}" if zone_no else f"panel {account.account}"
        return [Arm(storehouse, _ARMING[code], by)]
    if code in ("AT", "AR"):
        return [Fault("mains_lost", f"panel-{account.account}", code == "AT",
                      f"panel {account.account}: mains power "
                      + ("lost" if code == "AT" else "restored"))]
    zone = account.zone(zone_no) if zone_no else None
    if code in ("BA", "BR"):
        if zone is None:
            raise DecodeError(f"{code}: zone {zone_no} not in account {account.account}'s zones")
        return [Reading(zone.sensor, now_ns, {zone.field: code == "BA"})]
    if code in _ZONE_EVENTS or code in _PANEL_EVENTS:
        field, value = _ZONE_EVENTS.get(code) or _PANEL_EVENTS[code]
        sensor = zone.sensor if zone is not None and code in _ZONE_EVENTS \
            else account.panel_sensor
        if sensor is None:
            raise DecodeError(f"{code}: zone {zone_no} not placed and no panel_sensor for "
                              f"account {account.account}")
        return [Reading(sensor, now_ns, {field: value})]
    return []  # tests, polls and events depotwatch has no rule for


def _number(text: str | None) -> int | None:
    """A zone, user or area number: ASCII digits only (`str.isdigit` takes "²")."""
    digits = text.strip() if text else ""
    return int(digits) if _DIGITS.fullmatch(digits) else None


class SiaReceiver:
    """Listens for panels; each message is parsed, taken and answered."""

    def __init__(self, config: SiaReceiverConfig, clock: Clock, links: ReaderLinks) -> None:
        self.config = config
        self.component = config.component
        self._clock = clock
        self._links = links
        self._accounts = _accounts(config)
        self._settings = {a.account.upper(): a for a in config.accounts}
        self.up = asyncio.Event()
        self.port = config.listen_port
        self.events = 0
        self._panels: set[asyncio.Task[None]] = set()

    async def run(self) -> None:
        """Listen until cancelled; a port that cannot be bound is reported down and retried."""
        backoff = Backoff(self.config.reconnect_min_s, self.config.reconnect_max_s)
        reported: bool | None = None
        while True:
            try:
                server = await asyncio.start_server(self._panel, self.config.listen_host,
                                                    self.config.listen_port, limit=_MAX_MESSAGE)
            except OSError as exc:
                if reported is not False:
                    log.warning("SIA receiver %s: cannot listen on %s:%d: %s; retrying",
                                self.config.id, self.config.listen_host,
                                self.config.listen_port, exc)
                    self._links.state(self.component, False)
                    reported = False
                await asyncio.sleep(backoff.delay())
                continue
            break
        self.port = server.sockets[0].getsockname()[1]
        log.info("SIA DC-09 receiver %s listening on %s:%d for %d account(s)", self.config.id,
                 self.config.listen_host, self.port, len(self.config.accounts))
        self._links.state(self.component, True)
        self.up.set()
        try:
            await asyncio.Event().wait()
        finally:
            self.up.clear()
            await stop_accepting(server)
            server.close()
            # Python 3.11's server leaves its connections open: a panel kept talking to a
            # receiver that had stopped (at shutdown, or before the supervisor restarted it)
            # until the panel hung up.
            for panel in self._panels:
                panel.cancel()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.gather(*self._panels, return_exceptions=True), 2)
                await asyncio.wait_for(server.wait_closed(), 2)

    async def _panel(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peer = writer.get_extra_info("peername")
        task = asyncio.current_task()
        assert task is not None
        self._panels.add(task)
        try:
            while True:
                try:
                    data = await reader.readuntil(b"\r")
                except asyncio.LimitOverrunError:
                    self._links.reject(self.component, f"message from {peer} over "
                                       f"{_MAX_MESSAGE} bytes", b"", self._clock.now_ns())
                    return
                except asyncio.IncompleteReadError as exc:
                    if exc.partial.strip():
                        self._links.reject(self.component, "connection closed inside a "
                                           "message", exc.partial, self._clock.now_ns())
                    return
                writer.write(await self._message(data.strip(b"\n\r\0 ")))
                await writer.drain()
        except (ConnectionError, TimeoutError) as exc:
            log.info("SIA receiver %s: panel %s gone: %s", self.config.id, peer, exc)
        finally:
            self._panels.discard(task)
            writer.close()

    async def _message(self, data: bytes) -> bytes:
        """Take one message; the answer to send (nothing for a CRC mismatch: DC-09 §5.5)."""
        from pysiaalarm.event import NAKEvent

        now_ns = self._clock.now_ns()
        if not data:
            return b""
        try:
            event = parse_message(data, self._accounts)
        except DecodeError as exc:
            self._links.reject(self.component, str(exc), data, now_ns)
            return bytes(NAKEvent().create_response())
        account = self._settings.get(str(event.account or "").upper())
        problem = message_problem(event, account)
        if problem is not None:
            self._links.reject(self.component, problem, data, now_ns)
            return b"" if not event.valid_message else bytes(NAKEvent().create_response())
        assert account is not None
        self.events += 1
        try:
            effects = panel_effects(str(event.code or ""), event.ri, event.message, account,
                                    now_ns)
        except DecodeError as exc:
            self._links.reject(self.component, str(exc), data, now_ns)
            effects = []
        await self._apply(effects, data, now_ns)
        return bytes(event.create_response())

    async def _apply(self, effects: Sequence[Reading | Arm | Fault], data: bytes,
                     now_ns: int) -> None:
        for effect in effects:
            if isinstance(effect, Reading):
                await self._links.reading(self.component, effect)
            elif isinstance(effect, Fault):
                self._links.fault(effect.fault, effect.subject, effect.active, effect.summary)
            else:
                refused = self._links.arm(effect.storehouse, effect.action, effect.by)
                if refused is not None:
                    self._links.reject(self.component, f"{effect.action} of "
                                       f"{effect.storehouse} not followed: {refused}", data,
                                       now_ns)
