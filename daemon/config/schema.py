"""The one YAML config: validated strictly, every mistake reported with its path and line."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AwareDatetime,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from daemon.alerts.settings import AlertingConfig
from daemon.config.yamlsource import YamlSource
from daemon.notifiers.kinds import NotifierList
from daemon.vocabulary.errors import ConfigError
from daemon.vocabulary.settings import Identifier, Settings
from drivers.modbus import ModbusBusConfig, modbus_source
from drivers.mqtt_settings import MqttConfig
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
from rules.kinds import RuleConfig, rule_set

__all__ = [
    "ApiConfig",
    "Config",
    "InfluxConfig",
    "MqttConfig",
    "load_config",
]

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
_DAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


class SiteConfig(Settings):
    """The depot this gateway guards."""

    id: Identifier
    name: str = ""


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


class InfluxConfig(Settings):
    """One InfluxDB write target: `v1` POSTs to /write, `v2` POSTs to /api/v2/write."""

    api: Literal["v1", "v2"]
    url: str = Field(pattern=r"^https?://")
    database: str | None = None
    retention_policy: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    bucket: str | None = None
    org: str = ""
    token: SecretStr | None = None
    batch_size: int = Field(default=5000, gt=0)
    flush_interval_s: float = Field(default=1.0, gt=0)
    timeout_s: float = Field(default=10.0, gt=0)

    @model_validator(mode="after")
    def _target(self) -> InfluxConfig:
        if self.api == "v1" and not self.database:
            raise ValueError("api v1 needs 'database'")
        if self.api == "v2" and not self.bucket:
            raise ValueError("api v2 needs 'bucket'")
        return self


class FileOutputConfig(Settings):
    """Line protocol appended to a local file (the demo's output, or a debugging tap)."""

    path: Path


class SpoolConfig(Settings):
    """The on-disk spool every point passes through before InfluxDB."""

    # Disk quota; when full, new readings wait unacknowledged at the broker.
    max_bytes: int = Field(default=1 << 30, ge=1 << 20)
    # How often spool backlog, lag and fill are written as `gateway` points.
    health_interval_s: float = Field(default=5.0, gt=0)
    # false: commits are not fsynced (SQLite synchronous=NORMAL). A killed daemon loses
    # nothing, but a power cut can lose the last commits, already acknowledged to the broker.
    fsync: bool = True


class DeadLetterConfig(Settings):
    """Where malformed payloads are kept for inspection."""

    max_entries: int = Field(default=10_000, gt=0)
    max_payload_bytes: int = Field(default=1 << 20, gt=0)
    log_interval_s: float = Field(default=60.0, ge=0)


class OfficerConfig(Settings):
    """An officer of the alert API; only the SHA-256 of the token is kept
    (`depotwatch officers hash-token` prints it)."""

    name: str = Field(min_length=1, max_length=64)
    token_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")


class ApiConfig(Settings):
    """The officers' HTTP API: alarms, acknowledgements, on-site checks, silences."""

    # Loopback by default: officers reach it on the gateway or through a tunnel.
    listen_host: str = Field(default="127.0.0.1", min_length=1)
    # 0 picks a free port (tests); the daemon logs where it listens.
    listen_port: int = Field(default=8470, ge=0, le=65535)
    officers: list[OfficerConfig] = Field(default_factory=list)

    @field_validator("officers")
    @classmethod
    def _distinct(cls, officers: list[OfficerConfig]) -> list[OfficerConfig]:
        names = [o.name for o in officers]
        digests = [o.token_sha256.lower() for o in officers]
        for kind, values in (("name", names), ("token_sha256", digests)):
            twice = sorted({v for v in values if values.count(v) > 1})
            if twice:
                shown = twice if kind == "name" else [f"{d[:8]}..." for d in twice]
                raise ValueError(f"officer {kind} given twice: {', '.join(shown)}")
        return officers

    def tokens(self) -> dict[str, str]:
        """Token SHA-256 (lower-case hex) to officer name, as `daemon.api.build_api` takes it."""
        return {o.token_sha256.lower(): o.name for o in self.officers}

    def url(self) -> str:
        """Where a client on this gateway reaches the API."""
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(self.listen_host, self.listen_host)
        return f"http://{f'[{host}]' if ':' in host else host}:{self.listen_port}"


class Config(Settings):
    """The whole gateway configuration."""

    site: SiteConfig
    state_dir: Path = Path("/var/lib/depotwatch")
    storehouses: list[StorehouseConfig] = Field(min_length=1)
    doors: list[DoorConfig] = Field(default_factory=list)
    climate_sensors: list[ClimateSensorConfig] = Field(default_factory=list)
    portals: list[PortalConfig] = Field(default_factory=list)
    inventory_readers: list[InventoryReaderConfig] = Field(default_factory=list)
    roster: list[PersonConfig] = Field(default_factory=list)
    # Key for the hash that stands in for unknown badge numbers in logs and InfluxDB.
    badge_salt: SecretStr | None = None
    items: list[ItemConfig] = Field(default_factory=list)
    movement_orders: list[MovementOrderConfig] = Field(default_factory=list)
    work_orders: list[WorkOrderConfig] = Field(default_factory=list)
    mqtt: MqttConfig = Field(default_factory=MqttConfig)
    # Serial ports (line devices: I/O boards, badge readers, RFID readers) and Modbus RTU buses.
    serial: list[SerialPortConfig] = Field(default_factory=list)
    modbus: list[ModbusBusConfig] = Field(default_factory=list)
    influxdb: list[InfluxConfig] = Field(default_factory=list)
    file_output: FileOutputConfig | None = None
    # Webhook, Alertmanager and e-mail notifiers (MQTT and the log always run).
    notifiers: NotifierList = Field(default_factory=list)
    # Where officers reach this daemon's alert API; notifications link to {base_url}/alerts/KEY.
    base_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    # Overrides: every rule kind runs with its PSSM.md defaults unless listed here.
    rules: list[RuleConfig] = Field(default_factory=list)
    deadletters: DeadLetterConfig = Field(default_factory=DeadLetterConfig)
    spool: SpoolConfig = Field(default_factory=SpoolConfig)
    alerting: AlertingConfig = Field(default_factory=AlertingConfig)
    # The officers' HTTP API (bearer token per officer).
    api: ApiConfig = Field(default_factory=ApiConfig)
    tick_interval_s: float = Field(default=1.0, gt=0, le=10)
    # How often engine state (open doors, sustain timers, firing alerts) goes to disk.
    state_save_interval_s: float = Field(default=5.0, gt=0)

    def rule_set(self) -> list[RuleConfig]:
        """Every enabled rule kind with its settings."""
        return rule_set(self.rules)

    def depot(self) -> Depot:
        """The depot model the rules work on."""
        storehouses = {
            s.id: Storehouse(
                id=s.id, name=s.name or s.id, zone=ZoneInfo(s.timezone),
                climate_class=s.climate_class,
                armed=ArmedSchedule(
                    mode=s.armed.mode,
                    windows=tuple(
                        ArmedWindow(frozenset(_DAYS.index(d) for d in w.days), w.start, w.end)
                        for w in s.armed.windows
                    ),
                    holidays=frozenset(s.armed.holidays),
                ),
            )
            for s in self.storehouses
        }
        doors = {d.id: Door(d.id, d.storehouse, d.contact_sensor, d.badge_reader or "",
                            d.two_person) for d in self.doors}
        sensors: dict[str, Sensor] = {}
        for d in self.doors:
            sensors[d.contact_sensor] = Sensor(
                d.contact_sensor, SensorKind.DOOR, d.storehouse, Supervision(d.supervision), d.id
            )
            if d.badge_reader:
                sensors[d.badge_reader] = Sensor(
                    d.badge_reader, SensorKind.BADGE_READER, d.storehouse,
                    Supervision(d.badge_reader_supervision), d.id,
                )
        for c in self.climate_sensors:
            sensors[c.id] = Sensor(c.id, SensorKind.CLIMATE, c.storehouse,
                                   Supervision(c.supervision))
        for p in self.portals:
            for antenna in (p.inner_antenna, p.outer_antenna):
                sensors[antenna] = Sensor(antenna, SensorKind.PORTAL_ANTENNA, p.storehouse,
                                          Supervision(p.supervision), portal=p.id)
        for r in self.inventory_readers:
            sensors[r.id] = Sensor(r.id, SensorKind.INVENTORY_READER, r.storehouse,
                                   Supervision(r.supervision))
        return Depot(
            site=self.site.id, storehouses=storehouses, doors=doors, sensors=sensors,
            roster={
                p.badge.get_secret_value(): Person(
                    p.name, frozenset(p.zones), _ns(p.valid_from), _ns(p.valid_until),
                    p.escort_only,
                )
                for p in self.roster
            },
            portals={p.id: Portal(p.id, p.storehouse, p.inner_antenna, p.outer_antenna)
                     for p in self.portals},
            items={i.epc.upper(): Item(i.epc.upper(), i.name, i.kind, i.lot, i.storehouse)
                   for i in self.items},
            movement_orders=tuple(
                MovementOrder(m.id, m.portal, frozenset(e.upper() for e in m.items),
                              _ns(m.valid_from) or 0, _ns(m.valid_until) or 0)
                for m in self.movement_orders
            ),
            work_orders=tuple(
                WorkOrder(w.id, w.door, _ns(w.valid_from) or 0, _ns(w.valid_until) or 0)
                for w in self.work_orders
            ),
            badge_salt=(self.badge_salt.get_secret_value() if self.badge_salt
                        else f"depotwatch:{self.site.id}").encode(),
            input_sensors=self._input_sensors(frozenset(sensors)),
        )

    def _input_sensors(self, sensors: frozenset[str]) -> dict[str, frozenset[str]]:
        """Which sensors each gateway input feeds, as far as the config tells."""
        fed: dict[str, frozenset[str]] = {
            modbus_source(bus.id): frozenset(s.sensor for s in bus.sensors)
            for bus in self.modbus}
        for port in self.serial:
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
        if len(fed) == len(self.modbus) + len(self.serial):
            fed["mqtt"] = sensors.difference(*fed.values())
        return fed


def _ns(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)


def _items(data: dict[str, Any], section: str) -> list[tuple[int, dict[str, Any]]]:
    value = data.get(section)
    if not isinstance(value, list):
        return []
    return [(i, item) for i, item in enumerate(value) if isinstance(item, dict)]


def _cross_references(data: dict[str, Any], source: YamlSource) -> list[str]:
    # Works on the raw document, so these mistakes are reported together with schema errors.
    problems: list[str] = []
    for section in ("storehouses", "doors"):
        seen: set[Any] = set()
        for index, item in _items(data, section):
            if item.get("id") in seen:
                problems.append(source.problem((section, index, "id"),
                                               f"duplicate id {item.get('id')!r}"))
            seen.add(item.get("id"))
    known = sorted(str(s.get("id")) for _, s in _items(data, "storehouses"))
    placed = [("doors", i, d, "contact_sensor") for i, d in _items(data, "doors")]
    placed += [("doors", i, d, "badge_reader") for i, d in _items(data, "doors")]
    placed += [("climate_sensors", i, c, "id") for i, c in _items(data, "climate_sensors")]
    placed += [("portals", i, p, "inner_antenna") for i, p in _items(data, "portals")]
    placed += [("portals", i, p, "outer_antenna") for i, p in _items(data, "portals")]
    placed += [("inventory_readers", i, r, "id") for i, r in _items(data, "inventory_readers")]
    placed += [("items", i, item, "") for i, item in _items(data, "items")]
    sensor_owner: dict[Any, str] = {}
    checked: set[tuple[str, int]] = set()
    for section, index, item, field in placed:
        storehouse = item.get("storehouse")
        if (section, index) in checked:
            storehouse = None
        checked.add((section, index))
        if storehouse is not None and str(storehouse) not in known:
            problems.append(source.problem(
                (section, index, "storehouse"),
                f"unknown storehouse {storehouse!r} (known: {', '.join(known)})",
            ))
        sensor = item.get(field) if field else None
        if sensor is None:
            continue
        if sensor in sensor_owner:
            problems.append(source.problem(
                (section, index, field),
                f"sensor {sensor!r} is already used by {sensor_owner[sensor]}",
            ))
        sensor_owner[sensor] = f"{section}[{index}]"
    problems.extend(_register_references(data, source, known))
    kinds: list[Any] = [rule.get("type") for _, rule in _items(data, "rules")]
    for index, kind in enumerate(kinds):
        if kind is not None and kinds.index(kind) != index:
            problems.append(source.problem(("rules", index, "type"),
                                           f"rule kind {kind!r} configured twice"))
    mqtt = data.get("mqtt")
    for index, sub in _items(mqtt if isinstance(mqtt, dict) else {}, "subscriptions"):
        decoder = sub.get("decoder")
        has_path = isinstance(decoder, dict) and decoder.get("sensor_path")
        if "{sensor}" not in str(sub.get("topic", "{sensor}")) and not has_path:
            problems.append(source.problem(
                ("mqtt", "subscriptions", index, "topic"),
                "needs a {sensor} placeholder (or a decoder with sensor_path)",
            ))
    return problems


def _register_references(data: dict[str, Any], source: YamlSource,
                         storehouses: list[str]) -> list[str]:
    problems: list[str] = []
    doors = {str(d.get("id")) for _, d in _items(data, "doors")}
    portals = {str(p.get("id")) for _, p in _items(data, "portals")}
    epcs = {str(i.get("epc", "")).upper() for _, i in _items(data, "items")}
    for index, person in _items(data, "roster"):
        zones = person.get("zones")
        for z_index, zone in enumerate(zones if isinstance(zones, list) else []):
            if str(zone) not in storehouses:
                problems.append(source.problem(("roster", index, "zones", z_index),
                                               f"unknown storehouse {zone!r}"))
    for index, order in _items(data, "movement_orders"):
        if "portal" in order and str(order["portal"]) not in portals:
            problems.append(source.problem(("movement_orders", index, "portal"),
                                           f"unknown portal {order['portal']!r}"))
        listed = order.get("items")
        for i_index, epc in enumerate(listed if isinstance(listed, list) else []):
            if str(epc).upper() not in epcs:
                problems.append(source.problem(("movement_orders", index, "items", i_index),
                                               f"EPC {epc!r} is not in the item register"))
    for index, order in _items(data, "work_orders"):
        if "door" in order and str(order["door"]) not in doors:
            problems.append(source.problem(("work_orders", index, "door"),
                                           f"unknown door {order['door']!r}"))
    for section in ("movement_orders", "work_orders"):
        for index, order in _items(data, section):
            start, end = order.get("valid_from"), order.get("valid_until")
            if isinstance(start, dt.datetime) and isinstance(end, dt.datetime) and end <= start:
                problems.append(source.problem((section, index, "valid_until"),
                                               "ends before it starts"))
    return problems


def _serial_references(data: dict[str, Any], source: YamlSource) -> list[str]:
    """Serial ports and Modbus buses: unique ids and devices, and sensors the depot knows."""
    problems: list[str] = []
    known = {str(d.get(k)) for _, d in _items(data, "doors")
             for k in ("contact_sensor", "badge_reader") if d.get(k) is not None}
    known |= {str(c.get("id")) for _, c in _items(data, "climate_sensors")}
    known |= {str(p.get(k)) for _, p in _items(data, "portals")
              for k in ("inner_antenna", "outer_antenna") if p.get(k) is not None}
    known |= {str(r.get("id")) for _, r in _items(data, "inventory_readers")}

    def check_sensor(path: tuple[Any, ...], sensor: Any) -> None:
        if sensor is not None and str(sensor) not in known:
            problems.append(source.problem(path, f"unknown sensor {sensor!r} (not a door, "
                                                 "climate sensor, portal antenna or reader)"))

    devices: dict[str, str] = {}
    for section in ("serial", "modbus"):
        ids: set[str] = set()
        for index, port in _items(data, section):
            if str(port.get("id")) in ids:
                problems.append(source.problem((section, index, "id"),
                                               f"duplicate id {port.get('id')!r}"))
            ids.add(str(port.get("id")))
            device = port.get("device")
            if device is not None and str(device) in devices:
                problems.append(source.problem(
                    (section, index, "device"),
                    f"device {device!r} is already read by {devices[str(device)]}"))
            devices.setdefault(str(device), f"{section}[{index}]")
    for index, port in _items(data, "serial"):
        check_sensor(("serial", index, "sensor"), port.get("sensor"))
        decoder = port.get("decoder")
        decoder = decoder if isinstance(decoder, dict) else {}
        names_sensor = bool(decoder.get("sensor_key") or decoder.get("antennas")
                            or decoder.get("sensor_path"))
        if port.get("sensor") is None and not names_sensor and "type" in decoder:
            problems.append(source.problem(
                ("serial", index),
                "needs a 'sensor' (or a decoder that names it: sensor_key, antennas)"))
        for key in ("sensors", "antennas"):
            mapping = decoder.get(key)
            for name, sensor in (mapping.items() if isinstance(mapping, dict) else []):
                check_sensor(("serial", index, "decoder", key, name), sensor)
    for index, bus in _items(data, "modbus"):
        for s_index, slave in _items(bus, "sensors"):
            check_sensor(("modbus", index, "sensors", s_index, "sensor"), slave.get("sensor"))
    return problems


def _message(error: Any) -> str:
    message = str(error["msg"])
    if error["type"] == "extra_forbidden":
        return "unknown key"
    if error["type"] == "missing":
        return "required key missing"
    if error["type"] == "union_tag_invalid":
        ctx = error.get("ctx", {})
        return f"unknown type {ctx.get('tag')!r} (known: {ctx.get('expected_tags')})"
    return re.sub(r"^Value error, ", "", message)


def load_config(path: str | Path) -> Config:
    """Read and validate a config file; raises ConfigError listing every problem found."""
    filename = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(filename, [f"{filename}:0: cannot read: {exc}"]) from exc
    source = YamlSource(filename, text)
    if source.problems and source.data is None:
        raise ConfigError(filename, source.problems)
    if not isinstance(source.data, dict):
        raise ConfigError(filename, [*source.problems,
                                     f"{filename}:1: (top level): expected a mapping of keys"])
    problems = list(source.problems)
    config: Config | None = None
    try:
        config = Config.model_validate(source.data)
    except ValidationError as exc:
        problems.extend(source.problem(e["loc"], _message(e)) for e in exc.errors())
    problems.extend(_cross_references(source.data, source))
    problems.extend(_serial_references(source.data, source))
    if problems or config is None:
        # Report in file order, so the list reads top to bottom like the file.
        problems.sort(key=_line_number)
        raise ConfigError(filename, problems)
    return config


def _line_number(problem: str) -> int:
    match = re.match(r"^.*?:(\d+): ", problem)
    return int(match.group(1)) if match else 0
