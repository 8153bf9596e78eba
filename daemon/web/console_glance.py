"""The depot at a glance (issue 30): per storehouse its zone (armed or not, who set it, a delay
running), doors, the latest temperature and humidity against its storage class's limits with a
sparkline of the last 24 h, silent sensors and recent events; for the gateway, its MQTT and
InfluxDB links and the dead letters kept. Built from what the daemon holds in memory, so the
page stays whole while InfluxDB is down."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup

from daemon.alerts.alarm import AlarmState
from daemon.alerts.desk import AlarmDesk
from daemon.web.climate_history import CLIMATE_FIELDS, DAY_NS
from daemon.web.glance import ClimateLimits, GatewayGlance, LinkHealth
from daemon.web.recent import DoorState, Event, RecentEvents, ZoneView
from daemon.web.sparkline import sparkline
from rules.depot import SensorKind, Storehouse
from rules.walk_test import WalkResult
from rules.zone_state import ZoneView as ArmingView

__all__ = ["ClimateLine", "Glance", "StorehouseGlance", "ZoneWords", "glance"]

# Zone states in the officer's words, and the colour class each is shown in.
_ZONE_WORDS = {"disarmed": ("disarmed", "disarmed"), "arming": ("exit delay", "delay"),
               "armed": ("armed", "armed"), "entry": ("entry delay", "delay"),
               "alarm": ("intrusion alarm", "alarm")}
_HOW_WORDS = {"api": "officers' API", "mqtt": "MQTT command", "keypad": "keypad",
              "schedule": "schedule", "console": "console"}
_FIELD_WORDS = {"temperature_c": ("Temperature", "°C"), "humidity_pct": ("Humidity", "% RH")}


@dataclass(frozen=True, slots=True)
class ZoneWords:
    """A storehouse's armed state as the officer reads it."""

    word: str  # "armed", "disarmed", "exit delay", "entry delay", "intrusion alarm"
    css: str
    by: str  # "Sgt. Novak (keypad)", or "by schedule"
    since_ns: int | None


@dataclass(frozen=True, slots=True)
class ClimateLine:
    """One sensor field: its latest value against the limits, and the day's sparkline."""

    sensor: str
    label: str
    value: str
    level: str  # "ok", "warning", "alarm" or "none" (never reported)
    limits: str
    at_ns: int | None
    spark: Markup


@dataclass(frozen=True, slots=True)
class StorehouseGlance:
    """One storehouse's card."""

    id: str
    name: str
    zone: ZoneWords
    doors: list[DoorState]
    climate: list[ClimateLine]
    silent: list[tuple[str, int]]  # (sensor, reported silent at)
    events: list[Event]
    # A walk test running now; how the last one ended (None: none since the records began).
    walk_test: bool = False
    last_walk_test: WalkResult | None = None


@dataclass(frozen=True, slots=True)
class Glance:
    """The whole depot: the gateway's links and dead letters, then every storehouse."""

    links: list[LinkHealth]
    dead_letters: int
    storehouses: list[StorehouseGlance]


async def glance(recent: RecentEvents, desk: AlarmDesk, gateway: GatewayGlance | None,
                 now_ns: int,
                 zone_states: Callable[[], Sequence[ArmingView]] | None = None) -> Glance:
    """The depot as it stands at `now_ns`; `zone_states` adds the walk tests."""
    walks = {z.storehouse: z for z in (zone_states() if zone_states is not None else [])}
    silent: dict[str, list[tuple[str, int]]] = {}
    for alarm in desk.alarms():
        if (alarm.rule == "sensor_silent" and alarm.condition_active
                and alarm.state is not AlarmState.CLEARED):
            silent.setdefault(alarm.storehouse, []).append((alarm.subject, alarm.started_ns))
    depot = recent.depot
    stores = []
    for store in depot.storehouses.values():
        limits = gateway.limits(store.climate_class) if gateway is not None else None
        sensors = [s.id for s in depot.sensors.values()
                   if s.storehouse == store.id and s.kind is SensorKind.CLIMATE]
        stores.append(StorehouseGlance(
            store.id, store.name, _zone(recent, store, now_ns), recent.doors(store.id),
            [_line(recent, sensor, name, limits, now_ns) for sensor in sensors
             for name in CLIMATE_FIELDS],
            sorted(silent.get(store.id, [])), recent.events(store.id),
            store.id in walks and walks[store.id].walk_test,
            walks[store.id].last_walk_test if store.id in walks else None))
    links = await gateway.links(now_ns) if gateway is not None else []
    kept = gateway.dead_letters_kept() if gateway is not None else 0
    return Glance(links, kept, stores)


def _zone(recent: RecentEvents, store: Storehouse, now_ns: int) -> ZoneWords:
    zone: ZoneView | None = recent.zone(store.id) if store.staff_arming else None
    if zone is None:
        # By schedule, or staff-armed but unchanged since the start (the rule starts there too).
        armed = store.is_armed(now_ns)
        return ZoneWords("armed" if armed else "disarmed", "armed" if armed else "disarmed",
                         "by schedule", None)
    word, css = _ZONE_WORDS.get(zone.state, (zone.state, "disarmed"))
    how = _HOW_WORDS.get(zone.how, zone.how)
    by = f"{zone.by} ({how})" if zone.by else f"by {how}" if how else ""
    return ZoneWords(word, css, by, zone.since_ns)


def _line(recent: RecentEvents, sensor: str, name: str, limits: ClimateLimits | None,
          now_ns: int) -> ClimateLine:
    label, unit = _FIELD_WORDS[name]
    warning, alarm = limits.of(name) if limits is not None else (None, None)
    if warning is not None and alarm is not None and warning >= alarm:
        warning = None  # a propellant store's humidity alarm comes before the warning would
    latest = recent.climate.latest(sensor, name)
    shown = ", ".join(f"{word} {_number(limit)} {unit}" for word, limit in
                      (("warning", warning), ("alarm", alarm)) if limit is not None)
    day = recent.climate.day(sensor, name, now_ns)
    spark = sparkline(day, now_ns - DAY_NS, now_ns, warning if warning is not None else alarm,
                      f"{label} of {sensor}, last 24 h")
    if latest is None:
        return ClimateLine(sensor, label, "no reading yet", "none", shown, None, spark)
    level = "ok"
    if alarm is not None and latest.value >= alarm:
        level = "alarm"
    elif warning is not None and latest.value >= warning:
        level = "warning"
    return ClimateLine(sensor, label, f"{_number(latest.value)} {unit}", level, shown,
                       latest.at_ns, spark)


def _number(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}".removesuffix(".0")
