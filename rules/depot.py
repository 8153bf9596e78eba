"""The depot as the rules see it: storehouses, doors, sensors and armed schedules."""

from __future__ import annotations

import datetime as dt
import enum
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

__all__ = [
    "AT_HOME",
    "DETECTOR_FIELDS",
    "GONE",
    "AccessVerdict",
    "ArmedMode",
    "ArmedSchedule",
    "ArmedWindow",
    "ClimateClass",
    "Depot",
    "Door",
    "Item",
    "ItemKind",
    "ItemState",
    "KeyIssue",
    "MovementOrder",
    "Person",
    "Portal",
    "Sensor",
    "SensorKind",
    "Storehouse",
    "Supervision",
    "WorkOrder",
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
    BADGE_READER = "badge_reader"
    PORTAL_ANTENNA = "portal_antenna"
    INVENTORY_READER = "inventory_reader"
    # Interior intrusion detection (PSSM.md "Intrusion detection and arming").
    MOTION = "motion"
    VIBRATION = "vibration"
    GLASS_BREAK = "glass_break"
    # Alarm in every state, armed or not.
    SMOKE = "smoke"
    PANIC = "panic"
    # A water-leak probe on a store's floor: an alarm in every state (rules/water_leak.py).
    WATER_LEAK = "water_leak"
    # Where staff arm and disarm a zone with a badge or code.
    KEYPAD = "keypad"
    # A key cabinet: a key (`epc`) taken or returned (`action`) by a badge.
    KEY_CABINET = "key_cabinet"


# Each detector kind and the reading field that says it detects (true) or is quiet (false).
DETECTOR_FIELDS: Mapping[SensorKind, str] = {
    SensorKind.MOTION: "motion",
    SensorKind.VIBRATION: "vibration",
    SensorKind.GLASS_BREAK: "glass_break",
    SensorKind.SMOKE: "smoke",
    SensorKind.PANIC: "panic",
    SensorKind.WATER_LEAK: "water_leak",
}


class ItemKind(enum.StrEnum):
    """What a tagged item is."""

    WEAPON = "weapon"
    AMMUNITION = "ammunition"
    OTHER = "other"
    # A storehouse or vault key on the key register, issued to and returned by a person.
    KEY = "key"


class AccessVerdict(enum.StrEnum):
    """What the roster says about a badge at a door; only `granted` lets a person in."""

    GRANTED = "granted"
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    NOT_YET_VALID = "not_yet_valid"
    ZONE = "zone_not_allowed"


# Door contacts count as one kind of intrusion detection (DoD AA&E IDS practice, PSSM.md).
_INTRUSION_KINDS = frozenset({SensorKind.DOOR, SensorKind.MOTION, SensorKind.VIBRATION,
                              SensorKind.GLASS_BREAK})


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
    # Armed and disarmed by staff (keypad, API, MQTT); the schedule is then what is expected.
    staff_arming: bool = False
    # Sequential confirmation (EN 50131-9): an intrusion is confirmed by a second detector.
    sequential_confirmation: bool = False

    def is_armed(self, at_ns: int) -> bool:
        """Armed state of this storehouse at an instant."""
        return self.armed.is_armed(at_ns, self.zone)

    def past_closing(self, at_ns: int) -> bool:
        """Whether staff should have armed it by now ("not secured" otherwise): its weekly
        schedule says armed. Only a schedule has closing times; under `always` (the default,
        which only decides the state at a fresh start) and `never`, staff decide alone."""
        return self.armed.mode is ArmedMode.SCHEDULE and self.is_armed(at_ns)


@dataclass(frozen=True, slots=True)
class Door:
    """A door with its contact sensor, its badge reader and whether two people must badge."""

    id: str
    storehouse: str
    contact_sensor: str
    badge_reader: str = ""
    two_person: bool = False


@dataclass(frozen=True, slots=True)
class Person:
    """A roster entry; `escort_only` visitors are valid only with a roster member beside them."""

    name: str
    zones: frozenset[str]
    valid_from_ns: int | None = None
    valid_until_ns: int | None = None
    escort_only: bool = False


@dataclass(frozen=True, slots=True)
class Portal:
    """An RFID portal: the antenna inside the store and the one outside."""

    id: str
    storehouse: str
    inner_sensor: str
    outer_sensor: str


class ItemState(enum.StrEnum):
    """Where an item stands in its life on the book (issue 27); `on_book` is an item entered
    before the lifecycle was kept, judged as `stored`."""

    ON_BOOK = "on_book"
    RECEIVED = "received"
    STORED = "stored"
    ISSUED = "issued"
    RETURNED = "returned"
    TRANSFERRED = "transferred"
    UNDER_REPAIR = "under_repair"
    LOST = "lost"
    DESTROYED = "destroyed"


# Items the depot expects to find in their storehouse at a count.
AT_HOME = frozenset({ItemState.ON_BOOK, ItemState.RECEIVED, ItemState.STORED,
                     ItemState.RETURNED})
# Items that have left the book for good: any read of them again is an alarm.
GONE = frozenset({ItemState.TRANSFERRED, ItemState.DESTROYED})


@dataclass(frozen=True, slots=True)
class Item:
    """A tagged item in the register."""

    epc: str
    name: str
    kind: ItemKind
    lot: str
    storehouse: str
    state: ItemState = ItemState.ON_BOOK


@dataclass(frozen=True, slots=True)
class MovementOrder:
    """Authority to move listed items through a portal within a time window."""

    id: str
    portal: str
    epcs: frozenset[str]
    valid_from_ns: int
    valid_until_ns: int

    def covers(self, epc: str, portal: str, at_ns: int) -> bool:
        """Whether this order lets `epc` pass `portal` at `at_ns`."""
        return (portal == self.portal and epc in self.epcs
                and self.valid_from_ns <= at_ns <= self.valid_until_ns)


@dataclass(frozen=True, slots=True)
class WorkOrder:
    """Authority for a door to stay open within a time window (loading, maintenance)."""

    id: str
    door: str
    valid_from_ns: int
    valid_until_ns: int

    def covers(self, door: str, at_ns: int) -> bool:
        """Whether this order lets `door` stand open at `at_ns`."""
        return door == self.door and self.valid_from_ns <= at_ns <= self.valid_until_ns


@dataclass(frozen=True, slots=True)
class KeyIssue:
    """A key out on the register: who holds it and when it is due back."""

    epc: str
    person: str
    issued_ns: int
    due_ns: int


@dataclass(frozen=True, slots=True)
class Sensor:
    """One device that sends readings, and where it sits."""

    id: str
    kind: SensorKind
    storehouse: str
    supervision: Supervision
    door: str = ""
    portal: str = ""


@dataclass(frozen=True, slots=True)
class Depot:
    """Everything the rules need to know about the site; built from the validated config."""

    site: str
    storehouses: Mapping[str, Storehouse]
    doors: Mapping[str, Door]
    sensors: Mapping[str, Sensor]
    # Badge number -> person. Badge numbers live only here and in the config, never in
    # logs, alerts or InfluxDB (DESIGN.md depot model).
    roster: Mapping[str, Person] = field(default_factory=dict)
    portals: Mapping[str, Portal] = field(default_factory=dict)
    items: Mapping[str, Item] = field(default_factory=dict)
    movement_orders: Sequence[MovementOrder] = ()
    work_orders: Sequence[WorkOrder] = ()
    badge_salt: bytes = b""
    # Gateway input (`mqtt`, `serial:<id>`, `modbus:<id>`) -> the sensors it feeds, where the
    # config says so; an input not here may feed any sensor.
    input_sensors: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Duress code -> roster name (kept like badge numbers: never logged or written).
    duress: Mapping[str, str] = field(default_factory=dict)
    # Sensor -> its own silence limit (s), from its device profile's check-in interval.
    silent_after_s: Mapping[str, float] = field(default_factory=dict)
    # Bridge id -> the sensors that report through it (Zigbee2MQTT, a Zigbee gateway).
    bridges: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Key EPC -> its issue, for every key out now (the records store's key register).
    keys_out: Mapping[str, KeyIssue] = field(default_factory=dict)

    def sensors_of(self, kind: SensorKind) -> Sequence[Sensor]:
        """All sensors of one kind, in config order."""
        return [s for s in self.sensors.values() if s.kind is kind]

    def intrusion_detection(self, storehouse: str) -> frozenset[str]:
        """The kinds of intrusion detection guarding a storehouse: `door` (contacts), `motion`,
        `vibration`, `glass_break` (PSSM.md asks for two kinds in arms and ammunition stores)."""
        kinds = {s.kind.value for s in self.sensors.values()
                 if s.storehouse == storehouse and s.kind in _INTRUSION_KINDS}
        return frozenset(kinds)

    def authorize(self, badge: str, door: Door, at_ns: int) -> tuple[AccessVerdict, Person | None]:
        """What the roster says about `badge` at `door` at an instant (DoD entry roster)."""
        person = self.roster.get(badge)
        if person is None:
            return AccessVerdict.UNKNOWN, None
        if person.valid_from_ns is not None and at_ns < person.valid_from_ns:
            return AccessVerdict.NOT_YET_VALID, person
        if person.valid_until_ns is not None and at_ns > person.valid_until_ns:
            return AccessVerdict.EXPIRED, person
        if door.storehouse not in person.zones:
            return AccessVerdict.ZONE, person
        return AccessVerdict.GRANTED, person

    def badge_hash(self, badge: str) -> str:
        """A keyed hash that identifies an unknown badge across events without revealing it."""
        # surrogatepass: JSON may carry a lone surrogate ("\\ud800"), which strict UTF-8 refuses.
        # hmac.digest: the one-shot C path; an HMAC object per badge read cost more than the
        # access rule itself (issue 29).
        return hmac.digest(self.badge_salt, badge.encode("utf-8", "surrogatepass"),
                           "sha256").hex()[:16]
