"""The depot register in the config: site, storehouses, doors, sensors, people, portals, items
and orders, and the rules' `Depot` built from them."""

from __future__ import annotations

import datetime as dt
from typing import Literal, Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, Field, SecretStr, field_validator, model_validator

from daemon.config.devices import DeviceBinding, bridge_sensors, silence_limits
from daemon.vocabulary.settings import Identifier, Settings
from drivers.decoders.badges import roster_badge
from drivers.modbus import ModbusBusConfig, modbus_source
from drivers.reader_kinds import ReaderConfig
from drivers.serial import SerialPortConfig, serial_source
from rules.depot import (
    ArmedMode,
    ArmedSchedule,
    ArmedWindow,
    ClimateClass,
    Depot,
    Door,
    Item,
    ItemKind,
    MovementOrder,
    Person,
    Portal,
    Sensor,
    SensorKind,
    Storehouse,
    Supervision,
    WorkOrder,
)

__all__ = [
    "ClimateSensorConfig",
    "DepotRegister",
    "DetectorConfig",
    "DoorConfig",
    "InventoryReaderConfig",
    "ItemConfig",
    "MovementOrderConfig",
    "PersonConfig",
    "PortalConfig",
    "SiteConfig",
    "StorehouseConfig",
    "WorkOrderConfig",
    "build_depot",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SiteConfig(Settings):
    """The depot this gateway guards."""

    id: Identifier
    name: str = ""
    # Where the depot stands (decimal degrees, north and east positive): the console turns
    # dark at its sunset (issue 30). Optional; without them, `api.console.evening`.
    latitude: float | None = Field(default=None, ge=-90, le=90)
    longitude: float | None = Field(default=None, ge=-180, le=180)


class ArmedWindowConfig(Settings):
    """A weekly armed window in the storehouse's local time, e.g. 18:00 to 07:00."""

    days: list[Weekday] = Field(
        default_factory=lambda: list(_DAYS), min_length=1
    )
    start: dt.time = Field(alias="from")
    end: dt.time = Field(alias="to")


class ArmedConfig(Settings):
    """When a storehouse is armed; `always` unless a schedule is given (fail secure)."""

    mode: ArmedMode = ArmedMode.ALWAYS
    windows: list[ArmedWindowConfig] = Field(default_factory=list)
    holidays: list[dt.date] = Field(default_factory=list)

    @model_validator(mode="after")
    def _windows_for_schedule(self) -> ArmedConfig:
        if self.mode is ArmedMode.SCHEDULE and not self.windows:
            raise ValueError("mode 'schedule' needs at least one window")
        return self


class StorehouseConfig(Settings):
    """A storehouse or zone."""

    id: Identifier
    name: str = ""
    timezone: str = "UTC"
    climate_class: ClimateClass = ClimateClass.STANDARD
    armed: ArmedConfig = Field(default_factory=ArmedConfig)
    # `staff`: armed and disarmed by staff (keypad, API, MQTT command), with exit and entry
    # delays; the schedule is then what is expected ("not secured" when nobody armed it).
    arming: Literal["schedule", "staff"] = "schedule"
    # `sequential`: one detector alone is an unconfirmed intrusion (a lower severity); a second,
    # different one in the zone within 30 min confirms it (EN 50131-9 sequential confirmation).
    confirmation: Literal["none", "sequential"] = "none"

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}") from exc
        return value


class DoorConfig(Settings):
    """A door, the contact sensor on it, its badge reader, and whether two must badge."""

    id: Identifier
    storehouse: str
    contact_sensor: Identifier
    supervision: Literal["wired", "radio"] = "radio"
    badge_reader: Identifier | None = None
    badge_reader_supervision: Literal["wired", "radio"] = "wired"
    # Vaults: two distinct authorised badges within 60 s before opening (US Army MP1002).
    two_person: bool = False


class PersonConfig(Settings):
    """A roster entry; the badge number never leaves the gateway in clear."""

    name: str = Field(min_length=1)
    badge: SecretStr
    zones: list[str] = Field(min_length=1)
    valid_from: AwareDatetime | None = None
    valid_until: AwareDatetime | None = None
    escort_only: bool = False
    # Typed at a keypad under threat: disarms as asked and raises a silent alarm (CP-01: a
    # separate code per person, never derived from the usual one).
    duress_code: SecretStr | None = None

    @model_validator(mode="after")
    def _duress_not_derived(self) -> PersonConfig:
        if self.duress_code is None:
            return self
        duress, badge = self.duress_code.get_secret_value(), self.badge.get_secret_value()
        if _near(duress, badge):
            raise ValueError("duress_code must not be the badge or code, nor one off it")
        return self


def _near(a: str, b: str) -> bool:
    # The same code, or one off it ("PIN + 1", CP-01's example of a derived duress code).
    return a == b or (a.isdigit() and b.isdigit() and abs(int(a) - int(b)) <= 1)


def duress_apart(roster: list[PersonConfig]) -> list[PersonConfig]:
    """Validator for the roster: a duress code is nobody's badge or code (nor one off it), and
    no two people share one. A keypad checks duress codes first: a colleague's usual code as
    someone's duress code would raise a silent alarm at every disarm of theirs, and a shared
    one would name the wrong person. The error names people, never codes."""
    codes = [(p.name, p.duress_code.get_secret_value()) for p in roster
             if p.duress_code is not None]
    for index, (name, code) in enumerate(codes):
        for other in roster:
            if other.name != name and _near(code, other.badge.get_secret_value()):
                raise ValueError(f"the duress_code of {name} is the badge or code of "
                                 f"{other.name}, or one off it")
        for other_name, other_code in codes[index + 1:]:
            if code == other_code:
                raise ValueError(f"{name} and {other_name} have the same duress_code")
    return roster


class PortalConfig(Settings):
    """An RFID portal: one antenna (or reader) inside, one outside."""

    id: Identifier
    storehouse: str
    inner_antenna: Identifier
    outer_antenna: Identifier
    supervision: Literal["wired", "radio"] = "wired"


class InventoryReaderConfig(Settings):
    """An RFID reader that counts what sits in a storehouse."""

    id: Identifier
    storehouse: str
    supervision: Literal["wired", "radio"] = "wired"


class ItemConfig(Settings):
    """A tagged item in the register."""

    epc: str = Field(pattern=r"^[0-9A-Fa-f]{8,64}$")
    name: str = Field(min_length=1)
    kind: ItemKind = ItemKind.WEAPON
    lot: str = ""
    storehouse: str


class MovementOrderConfig(Settings):
    """Authority to move listed items through a portal within a window (issue voucher)."""

    id: Identifier
    portal: str
    items: list[str] = Field(min_length=1)
    valid_from: AwareDatetime
    valid_until: AwareDatetime


class WorkOrderConfig(Settings):
    """Authority for a door to stand open within a window."""

    id: Identifier
    door: str
    valid_from: AwareDatetime
    valid_until: AwareDatetime


class ClimateSensorConfig(Settings):
    """A temperature/humidity sensor in a storehouse."""

    id: Identifier
    storehouse: str
    supervision: Literal["climate"] = "climate"


class DetectorConfig(Settings):
    """An interior detector, a smoke, panic or water-leak input, a keypad or a key cabinet, in
    a storehouse."""

    id: Identifier
    kind: Literal["motion", "vibration", "glass_break", "smoke", "panic", "water_leak",
                  "keypad", "key_cabinet"]
    storehouse: str
    supervision: Literal["wired", "radio"] = "radio"


class DepotRegister(Protocol):
    """The config sections the depot model is built from (the whole `Config` has them all)."""

    site: SiteConfig
    storehouses: list[StorehouseConfig]
    doors: list[DoorConfig]
    climate_sensors: list[ClimateSensorConfig]
    portals: list[PortalConfig]
    inventory_readers: list[InventoryReaderConfig]
    detectors: list[DetectorConfig]
    roster: list[PersonConfig]
    badge_salt: SecretStr | None
    items: list[ItemConfig]
    movement_orders: list[MovementOrderConfig]
    work_orders: list[WorkOrderConfig]
    serial: list[SerialPortConfig]
    modbus: list[ModbusBusConfig]
    readers: list[ReaderConfig]
    devices: list[DeviceBinding]


def build_depot(register: DepotRegister) -> Depot:
    """The depot model the rules work on."""
    sensors = _sensors(register)
    # People with the same zones share one set of them (often all zones: 0.3 MiB for 40
    # people in 80 storehouses, issue 29).
    zone_sets: dict[frozenset[str], frozenset[str]] = {}
    return Depot(
        site=register.site.id,
        storehouses={s.id: _storehouse(s) for s in register.storehouses},
        doors={d.id: Door(d.id, d.storehouse, d.contact_sensor, d.badge_reader or "",
                          d.two_person) for d in register.doors},
        sensors=sensors,
        roster={
            roster_badge(p.badge.get_secret_value()): Person(
                p.name, zone_sets.setdefault(frozenset(p.zones), frozenset(p.zones)),
                _ns(p.valid_from), _ns(p.valid_until),
                p.escort_only,
            )
            for p in register.roster
        },
        portals={p.id: Portal(p.id, p.storehouse, p.inner_antenna, p.outer_antenna)
                 for p in register.portals},
        items={i.epc.upper(): Item(i.epc.upper(), i.name, i.kind, i.lot, i.storehouse)
               for i in register.items},
        movement_orders=tuple(
            MovementOrder(m.id, m.portal, frozenset(e.upper() for e in m.items),
                          _ns(m.valid_from) or 0, _ns(m.valid_until) or 0)
            for m in register.movement_orders
        ),
        work_orders=tuple(
            WorkOrder(w.id, w.door, _ns(w.valid_from) or 0, _ns(w.valid_until) or 0)
            for w in register.work_orders
        ),
        badge_salt=(register.badge_salt.get_secret_value() if register.badge_salt
                    else f"depotwatch:{register.site.id}").encode(),
        input_sensors=_input_sensors(register, frozenset(sensors)),
        duress={p.duress_code.get_secret_value(): p.name for p in register.roster
                if p.duress_code is not None},
        silent_after_s=silence_limits(register.devices),
        bridges=bridge_sensors(register.devices),
    )


def _storehouse(s: StorehouseConfig) -> Storehouse:
    return Storehouse(
        id=s.id, name=s.name or s.id, zone=ZoneInfo(s.timezone),
        climate_class=s.climate_class,
        staff_arming=s.arming == "staff",
        sequential_confirmation=s.confirmation == "sequential",
        armed=ArmedSchedule(
            mode=s.armed.mode,
            windows=tuple(
                ArmedWindow(frozenset(_DAYS.index(d) for d in w.days), w.start, w.end)
                for w in s.armed.windows
            ),
            holidays=frozenset(s.armed.holidays),
        ),
    )


def _sensors(register: DepotRegister) -> dict[str, Sensor]:
    """Every sensor the register places: door contacts, badge readers, climate sensors,
    portal antennas, inventory readers and detectors."""
    sensors: dict[str, Sensor] = {}
    for d in register.doors:
        sensors[d.contact_sensor] = Sensor(
            d.contact_sensor, SensorKind.DOOR, d.storehouse, Supervision(d.supervision), d.id
        )
        if d.badge_reader:
            sensors[d.badge_reader] = Sensor(
                d.badge_reader, SensorKind.BADGE_READER, d.storehouse,
                Supervision(d.badge_reader_supervision), d.id,
            )
    for c in register.climate_sensors:
        sensors[c.id] = Sensor(c.id, SensorKind.CLIMATE, c.storehouse,
                               Supervision(c.supervision))
    for p in register.portals:
        for antenna in (p.inner_antenna, p.outer_antenna):
            sensors[antenna] = Sensor(antenna, SensorKind.PORTAL_ANTENNA, p.storehouse,
                                      Supervision(p.supervision), portal=p.id)
    for r in register.inventory_readers:
        sensors[r.id] = Sensor(r.id, SensorKind.INVENTORY_READER, r.storehouse,
                               Supervision(r.supervision))
    for detector in register.detectors:
        sensors[detector.id] = Sensor(detector.id, SensorKind(detector.kind),
                                      detector.storehouse, Supervision(detector.supervision))
    return sensors


def _input_sensors(register: DepotRegister,
                   sensors: frozenset[str]) -> dict[str, frozenset[str]]:
    """Which sensors each gateway input feeds, as far as the config tells."""
    fed: dict[str, frozenset[str]] = {
        modbus_source(bus.id): frozenset(s.sensor for s in bus.sensors)
        for bus in register.modbus}
    fed |= {reader.component: reader.sensors() for reader in register.readers}
    for port in register.serial:
        decoder = port.decoder
        # A decoder that names the sensor from a fixed map reads only those; one that takes
        # the name from the frame (sensor_key without a map) may read any.
        mapped = getattr(decoder, "antennas", None) or getattr(decoder, "sensors", None)
        if mapped:
            fed[serial_source(port.id)] = frozenset(mapped.values())
        elif port.sensor is not None and not getattr(decoder, "sensor_key", None) \
                and not getattr(decoder, "sensor_path", None):
            fed[serial_source(port.id)] = frozenset({port.sensor})
    # MQTT feeds the rest, unless a port's sensors are unknown (then any may be on MQTT).
    if len(fed) == len(register.modbus) + len(register.serial) + len(register.readers):
        fed["mqtt"] = sensors.difference(*fed.values())
    return fed


def _ns(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)
