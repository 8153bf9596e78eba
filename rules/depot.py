"""The depot as the rules see it: storehouses, doors, sensors and armed schedules."""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

__all__ = [
    "ArmedMode",
    "ArmedSchedule",
    "ArmedWindow",
    "ClimateClass",
    "Depot",
    "Door",
    "Sensor",
    "SensorKind",
    "Storehouse",
    "Supervision",
]

_NS = 1_000_000_000


class ArmedMode(enum.StrEnum):
    """How a storehouse's armed state is decided; `always` is the fail-secure default."""

    ALWAYS = "always"
    NEVER = "never"
    SCHEDULE = "schedule"


class ClimateClass(enum.StrEnum):
    """Storage class; propellant stores have a stricter humidity alarm (UFC 3-410-03FA: 60 %)."""

    STANDARD = "standard"
    PROPELLANT = "propellant"


class Supervision(enum.StrEnum):
    """Supervision class of a sensor; decides how long silence is tolerated (PSSM.md)."""

    WIRED = "wired"
    RADIO = "radio"
    CLIMATE = "climate"


class SensorKind(enum.StrEnum):
    """What a sensor measures, which decides its InfluxDB measurement and its rules."""

    DOOR = "door"
    CLIMATE = "climate"


@dataclass(frozen=True, slots=True)
class ArmedWindow:
    """A weekly window, in the storehouse's local time; `end` before `start` crosses midnight."""

    days: frozenset[int]  # 0 = Monday, as datetime.weekday()
    start: dt.time
    end: dt.time

    def contains(self, local: dt.datetime) -> bool:
        """Whether a local time falls in this window (a window starts on one of its days)."""
        t = local.time()
        if self.start <= self.end:
            return local.weekday() in self.days and self.start <= t < self.end
        if local.weekday() in self.days and t >= self.start:
            return True
        yesterday = (local.weekday() - 1) % 7
        return yesterday in self.days and t < self.end


@dataclass(frozen=True, slots=True)
class ArmedSchedule:
    """When a storehouse is armed: always, never, or in weekly windows plus whole holidays."""

    mode: ArmedMode = ArmedMode.ALWAYS
    windows: tuple[ArmedWindow, ...] = ()
    holidays: frozenset[dt.date] = frozenset()

    def is_armed(self, at_ns: int, zone: ZoneInfo) -> bool:
        """Armed state at an instant; pure, the caller supplies the time."""
        if self.mode is ArmedMode.ALWAYS:
            return True
        if self.mode is ArmedMode.NEVER:
            return False
        local = dt.datetime.fromtimestamp(at_ns / _NS, tz=zone)
        if local.date() in self.holidays:
            return True
        return any(window.contains(local) for window in self.windows)


@dataclass(frozen=True, slots=True)
class Storehouse:
    """A storehouse or zone with its own armed schedule, timezone and climate class."""

    id: str
    name: str
    zone: ZoneInfo
    climate_class: ClimateClass = ClimateClass.STANDARD
    armed: ArmedSchedule = field(default_factory=ArmedSchedule)

    def is_armed(self, at_ns: int) -> bool:
        """Armed state of this storehouse at an instant."""
        return self.armed.is_armed(at_ns, self.zone)


@dataclass(frozen=True, slots=True)
class Door:
    """A door with its contact sensor."""

    id: str
    storehouse: str
    contact_sensor: str


@dataclass(frozen=True, slots=True)
class Sensor:
    """One device that sends readings, and where it sits."""

    id: str
    kind: SensorKind
    storehouse: str
    supervision: Supervision
    door: str = ""


@dataclass(frozen=True, slots=True)
class Depot:
    """Everything the rules need to know about the site; built from the validated config."""

    site: str
    storehouses: Mapping[str, Storehouse]
    doors: Mapping[str, Door]
    sensors: Mapping[str, Sensor]

    def sensors_of(self, kind: SensorKind) -> Sequence[Sensor]:
        """All sensors of one kind, in config order."""
        return [s for s in self.sensors.values() if s.kind is kind]
