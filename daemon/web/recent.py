"""What happened lately, per storehouse, for the web console (issue 8): each door's state, the
staff-armed zone's state and who set it, the climate of the last day, and the last few events
(door changes, badge reads, alarm changes) in the officer's words (issue 30).

A small bounded view in memory, fed from the pipeline (readings) and the alarm desk (notices),
saved with the daemon's state file so a restart keeps door states and history. Badge reads are
shown by roster name only: the badge number never enters this view.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Reading
from daemon.web.climate_history import ClimateHistory
from rules.badge_access import badge_read
from rules.base import Fact
from rules.depot import AccessVerdict, Depot, Door, SensorKind

__all__ = ["DoorState", "Event", "RecentEvents", "ZoneView"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class DoorState:
    """A door's last known contact state; `open` is None until its contact has reported."""

    door: str
    storehouse: str
    open: bool | None = None
    since_ns: int | None = None


@dataclass(frozen=True, slots=True)
class Event:
    """One line of a storehouse's recent history."""

    at_ns: int
    kind: str  # "door", "badge" or "alarm"
    subject: str
    text: str


@dataclass(frozen=True, slots=True)
class ZoneView:
    """A staff-armed zone as its last change left it: state, who or what set it, since when."""

    state: str  # disarmed, arming (exit delay), armed, entry (entry delay), alarm
    by: str
    how: str
    since_ns: int


# Zone results that leave the zone as it was.
_NO_CHANGE = frozenset({"refused", "unchanged"})
_LIFECYCLE_WORDS = {"firing": "raised", "acknowledged": "acknowledged", "cleared": "cleared"}
_SEVERITY_WORDS = {"critical": "Critical alarm", "alarm": "Alarm", "warning": "Warning"}


class RecentEvents:
    """Door states and the last `keep` events of each storehouse."""

    def __init__(self, depot: Depot, keep: int = 20) -> None:
        self._depot = depot
        self._keep = keep
        # Which readings matter, decided once per sensor as `depot.sensors` has it: a door
        # contact's (the door) and a badge reader's; any other reading passes by with two
        # lookups instead of the sensor's and its kind's.
        kind = {sensor_id: sensor.kind for sensor_id, sensor in depot.sensors.items()}
        self._contacts = {d.contact_sensor: d for d in depot.doors.values()
                          if kind.get(d.contact_sensor) is SensorKind.DOOR}
        self._readers = {sensor_id for sensor_id, k in kind.items()
                         if k is SensorKind.BADGE_READER}
        self._doors = {d.id: DoorState(d.id, d.storehouse) for d in depot.doors.values()}
        self._events: dict[str, deque[Event]] = {
            s: deque(maxlen=keep) for s in depot.storehouses}
        # Notices repeat (re-sends, escalation): an alarm's change is recorded once.
        self._alarm_seen: dict[str, tuple[str, bool]] = {}
        self.climate = ClimateHistory(s for s, k in kind.items() if k is SensorKind.CLIMATE)
        self._zones: dict[str, ZoneView] = {}

    def adopt(self, depot: Depot) -> None:
        """Another depot register (a config reload); the events seen so far stay."""
        saved, seen = self.snapshot(), self._alarm_seen
        self.__init__(depot, self._keep)  # type: ignore[misc]
        self.restore(saved)
        self._alarm_seen = seen

    @property
    def depot(self) -> Depot:
        """The depot register these events are of."""
        return self._depot

    def zone(self, storehouse: str) -> ZoneView | None:
        """The staff-armed zone's state since its last change heard (None: none heard yet)."""
        return self._zones.get(storehouse)

    def fact(self, fact: Fact) -> None:
        """A rule's fact (a pipeline fact listener): zone changes are kept, others pass."""
        if fact.measurement != "zone" or fact.fields.get("result") in _NO_CHANGE:
            return
        storehouse = fact.tags.get("storehouse", "")
        if storehouse in self._events:
            self._zones[storehouse] = ZoneView(str(fact.fields.get("state", "")),
                                               str(fact.fields.get("by", "")),
                                               str(fact.fields.get("how", "")), fact.at_ns)

    def storehouses(self) -> list[tuple[str, str]]:
        """(id, name) of every storehouse, in config order."""
        return [(s.id, s.name) for s in self._depot.storehouses.values()]

    def zones(self) -> dict[str, ZoneInfo]:
        """Each storehouse's time zone, in config order (the console's local times)."""
        return {s.id: s.zone for s in self._depot.storehouses.values()}

    def armed(self, storehouse: str, at_ns: int) -> bool:
        """Whether the storehouse is armed at `at_ns` by its configured schedule."""
        return self._depot.storehouses[storehouse].is_armed(at_ns)

    def doors(self, storehouse: str) -> list[DoorState]:
        """The storehouse's doors, in config order."""
        return [d for d in self._doors.values() if d.storehouse == storehouse]

    def climate_sensors(self, storehouse: str) -> list[str]:
        """The storehouse's climate sensors, in config order."""
        return [s.id for s in self._depot.sensors.values()
                if s.storehouse == storehouse and s.kind is SensorKind.CLIMATE]

    def events(self, storehouse: str) -> list[Event]:
        """The storehouse's recent events, newest first."""
        return list(reversed(self._events.get(storehouse, ())))

    def reading(self, reading: Reading) -> None:
        """A decoded reading of a known sensor (the pipeline calls this for every one)."""
        door = self._contacts.get(reading.sensor)
        if door is not None:
            self._door(door, reading)
        elif reading.sensor in self.climate:
            self.climate.reading(reading)
        elif reading.sensor in self._readers:
            read = badge_read(self._depot, reading)
            if read is None:
                return
            who = read.name or "unknown badge"
            verdict = ("granted" if read.verdict is AccessVerdict.GRANTED
                       else f"refused ({read.verdict.value.replace('_', ' ')})")
            self._add(read.door.storehouse, Event(reading.at_ns, "badge", read.door.id,
                                                  f"badge {who} at {read.door.id}: {verdict}"))

    def _door(self, door: Door, reading: Reading) -> None:
        is_open = reading.values.get("open")
        if not isinstance(is_open, bool):
            return
        state = self._doors[door.id]
        if state.open is is_open:
            return  # a repeated report: no change
        self._doors[door.id] = DoorState(door.id, door.storehouse, is_open, reading.at_ns)
        self._add(door.storehouse, Event(reading.at_ns, "door", door.id,
                                         f"door {door.id} {'opened' if is_open else 'closed'}"))

    def alarm(self, alert: Alert) -> None:
        """An alarm notice from the desk (raised, acknowledged, condition ended, cleared)."""
        try:
            self._alarm(alert)
        except Exception:  # a view's bug must not stop the desk's notices
            log.exception("recent events: alarm notice %s not recorded", alert.key)

    def _alarm(self, alert: Alert) -> None:
        lifecycle = str(alert.facts.get("lifecycle", alert.state.value))
        active = bool(alert.facts.get("condition_active", True))
        if self._alarm_seen.get(alert.key) == (lifecycle, active):
            return
        self._alarm_seen[alert.key] = (lifecycle, active)
        if lifecycle == "cleared":
            del self._alarm_seen[alert.key]
        storehouse = alert.storehouse or self._storehouse_of(alert.subject)
        if storehouse not in self._events:
            return
        # The officer's words: the alarm's summary and what happened to it; the rule key stays
        # in the event's subject (the link to the alarm's page, where engineers find it).
        happened = _LIFECYCLE_WORDS.get(lifecycle, lifecycle)
        text = f"{_SEVERITY_WORDS.get(alert.severity.value, 'Alarm')} {happened}"
        acked_by = alert.facts.get("acked_by")
        if lifecycle == "acknowledged" and acked_by:
            text += f" by {acked_by}"
        text += f": {alert.summary}"
        if lifecycle != "cleared" and not active:
            text += " (over)"
        self._add(storehouse, Event(alert.changed_ns, "alarm", alert.key, text))

    def _storehouse_of(self, subject: str) -> str:
        door = self._doors.get(subject)
        return door.storehouse if door is not None else ""

    def _add(self, storehouse: str, event: Event) -> None:
        if storehouse in self._events:
            self._events[storehouse].append(event)

    def snapshot(self) -> dict[str, object]:
        """Door states and events, JSON-ready, for the state file."""
        return {"doors": {d.door: [d.open, d.since_ns] for d in self._doors.values()
                          if d.open is not None},
                "events": {s: [[e.at_ns, e.kind, e.subject, e.text] for e in events]
                           for s, events in self._events.items() if events},
                "zones": {s: [z.state, z.by, z.how, z.since_ns] for s, z in self._zones.items()},
                "climate": self.climate.snapshot()}

    def restore(self, saved: Mapping[str, object]) -> None:
        """Take back what `snapshot()` gave; doors and storehouses no longer configured are
        dropped, and a malformed entry is skipped rather than stopping the start."""
        doors, events = saved.get("doors"), saved.get("events")
        climate, zones = saved.get("climate"), saved.get("zones")
        if isinstance(climate, dict):
            self.climate.restore(climate)
        for storehouse, zone in (zones.items() if isinstance(zones, dict) else []):
            if (storehouse in self._events and isinstance(zone, list) and len(zone) == 4
                    and isinstance(zone[3], int)):
                self._zones[storehouse] = ZoneView(str(zone[0]), str(zone[1]), str(zone[2]),
                                                   zone[3])
        for door_id, value in (doors.items() if isinstance(doors, dict) else []):
            state = self._doors.get(door_id)
            if state is None or not isinstance(value, list) or len(value) != 2:
                continue
            is_open, since = value
            if isinstance(is_open, bool) and isinstance(since, int):
                self._doors[door_id] = DoorState(door_id, state.storehouse, is_open, since)
        for storehouse, items in (events.items() if isinstance(events, dict) else []):
            if storehouse not in self._events or not isinstance(items, list):
                continue
            for item in items:
                if isinstance(item, list) and len(item) == 4 and isinstance(item[0], int):
                    self._events[storehouse].append(
                        Event(item[0], str(item[1]), str(item[2]), str(item[3])))

    def as_dict(self) -> Mapping[str, object]:
        """JSON-ready, for tests and debugging."""
        return {s: {"doors": [(d.door, d.open, d.since_ns) for d in self.doors(s)],
                    "events": [(e.at_ns, e.kind, e.text) for e in self.events(s)]}
                for s in self._events}
