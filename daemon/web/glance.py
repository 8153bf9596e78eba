"""The gateway's own state for the console's depot at a glance (issue 30): the MQTT link, each
InfluxDB writer (up, failing, points waiting), the dead letters kept, and the climate limits of
each storage class. Read from the running daemon at each page render, never cached.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from daemon.ingest.deadletters import DeadLetter
from daemon.web.backlog import NS, Link, Spool, Writer, read_backlog
from rules.climate import ClimateRuleConfig
from rules.depot import ClimateClass

__all__ = ["ClimateLimits", "Gateway", "GatewayGlance", "LinkHealth"]

log = logging.getLogger(__name__)


# What the glance reads of the daemon, and nothing more (the runner imports this package, so
# the daemon hands itself in; read-only properties so its richer types fit).
class _DeadLetters(Protocol):
    def total(self) -> int: ...
    def entries(self, limit: int = 50) -> list[DeadLetter]: ...


class Gateway(Protocol):
    """The running daemon as the console's glance sees it."""

    @property
    def link(self) -> Link: ...
    @property
    def spool(self) -> Spool: ...
    @property
    def writers(self) -> Sequence[Writer]: ...
    @property
    def deadletters(self) -> _DeadLetters: ...


@dataclass(frozen=True, slots=True)
class LinkHealth:
    """One link as the officer reads it: its name, whether it works, and why not."""

    name: str
    up: bool
    note: str


@dataclass(frozen=True, slots=True)
class ClimateLimits:
    """The climate rule's warning and alarm limits for one storage class."""

    temperature_warning_c: float
    temperature_alarm_c: float
    humidity_warning_pct: float
    humidity_alarm_pct: float

    def of(self, name: str) -> tuple[float, float]:
        """(warning, alarm) of a climate field, `temperature_c` or `humidity_pct`."""
        if name == "temperature_c":
            return self.temperature_warning_c, self.temperature_alarm_c
        return self.humidity_warning_pct, self.humidity_alarm_pct


class GatewayGlance:
    """What the console shows of the gateway itself, read from the running daemon."""

    def __init__(self, daemon: Gateway, climate: ClimateRuleConfig | None) -> None:
        self._daemon = daemon
        # The climate rule's limits (its PSSM defaults when the rule is not configured).
        self._climate = climate or ClimateRuleConfig(type="climate")

    def limits(self, climate_class: ClimateClass) -> ClimateLimits:
        """The limits a storehouse of `climate_class` is held to."""
        c = self._climate
        humidity_alarm = (c.propellant_humidity_alarm_pct
                          if climate_class is ClimateClass.PROPELLANT else c.humidity_alarm_pct)
        return ClimateLimits(c.temperature_warning_c, c.temperature_alarm_c,
                             c.humidity_warning_pct, humidity_alarm)

    async def links(self, now_ns: int) -> list[LinkHealth]:
        """The MQTT link, then each time series writer with what waits for it."""
        daemon = self._daemon
        links = [LinkHealth("MQTT broker", daemon.link.connected.is_set(),
                            "" if daemon.link.connected.is_set() else "not connected")]
        backlog, broken = await read_backlog(daemon.spool)
        if broken is not None:
            log.warning("console: spool backlog not readable: %r", broken)
        waiting = {b.target: b for b in backlog}
        for writer in daemon.writers:
            failures = writer.stats()["consecutive_failures"]
            pending = waiting.get(writer.name)
            note = f"{failures} writes failed in a row" if failures else ""
            if pending is not None and pending.points:
                age = (now_ns - pending.oldest_ns) // NS if pending.oldest_ns else 0
                note += ("; " if note else "") + f"{pending.points} points waiting"
                note += f", oldest {_duration(age)}" if age >= 60 else ""
            links.append(LinkHealth(_writer_name(writer.name), failures == 0, note))
        return links

    def dead_letters_kept(self) -> int:
        """How many rejected payloads the dead letter store keeps."""
        try:
            return self._daemon.deadletters.total()
        except Exception as exc:  # a damaged store: the count is unknown, the page still shows
            log.warning("console: dead letters not countable: %r", exc)
            return -1

    def dead_letters(self, limit: int) -> list[DeadLetter]:
        """The newest rejected payloads first."""
        return self._daemon.deadletters.entries(limit)


def _writer_name(name: str) -> str:
    # "influxdb-0-v1" -> "InfluxDB", "influxdb-1-v2" -> "InfluxDB 2"; the file output by name.
    if not name.startswith("influxdb-"):
        return "file output" if name == "file" else name
    index = name.split("-")[1]
    return "InfluxDB" if index == "0" else f"InfluxDB {int(index) + 1}"


def _duration(seconds: int) -> str:
    if seconds < 3600:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
