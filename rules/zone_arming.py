"""Intrusion zones: detectors alarm when armed, doors start the entry delay, staff arm and disarm.

A detector (motion, vibration, glass-break) active for the debounce time in an armed zone alarms
at once; in a zone armed by staff, a door opened starts the entry delay (default 30 s, ANSI/SIA
CP-01) and alarms unless the zone is disarmed in time; arming with a door open or a detector
active is refused with what is not secured, unless forced (EN 50131-1 prevention of setting); a
zone still disarmed 15 min after its schedule's closing time is "not secured" (PSSM.md). A zone
with sequential confirmation alarms at a lower severity until a second detector confirms it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, WakeAt, format_duration, no_wake
from rules.depot import Depot, Sensor, SensorKind
from rules.door_contacts import DoorContacts
from rules.walk_test import WalkTests
from rules.zone_confirmation import Confirmations
from rules.zone_keypad import KeypadDesk
from rules.zone_state import ZONE_PREFIX, Zone, ZoneState, ZoneView, zone_fact

__all__ = ["ZoneArmingRule", "ZoneArmingRuleConfig"]

_NS = 1_000_000_000
# Detectors that guard a zone only while it is armed (smoke and panic alarm in every state).
_INTRUSION_FIELDS = {SensorKind.MOTION: "motion", SensorKind.VIBRATION: "vibration",
                     SensorKind.GLASS_BREAK: "glass_break"}
_ARMED = (ZoneState.ARMED, ZoneState.ALARM)


class ZoneArmingRuleConfig(RuleConfigBase):
    """Zone states set by staff, entry and exit delays, detectors, "not secured"."""

    type: Literal["zone_arming"] = "zone_arming"
    severity: Literal["alarm", "critical"] = "critical"
    # ANSI/SIA CP-01: exit 60 s, entry 30 s, each settable 30-240 s.
    exit_delay_s: float = Field(default=60.0, ge=30, le=240)
    entry_delay_s: float = Field(default=30.0, ge=30, le=240)
    not_secured_after_s: float = Field(default=900.0, gt=0)
    not_secured_severity: Literal["warning", "alarm", "critical"] = "alarm"
    # EN 50131-1 §8.9.1: intrusion signals shorter than 400 ms are not processed.
    debounce_ms: float = Field(default=400.0, ge=0)
    # Two distinct authorised badges within this time disarm a two-person zone (MP1002).
    two_person_window_s: float = Field(default=60.0, gt=0)
    # Walk test: how long one runs, and how old the last passed one may be (quarterly, DoD AA&E).
    walk_test_window_s: float = Field(default=1800.0, gt=0)
    walk_test_max_age_s: float = Field(default=90 * 86400.0, gt=0)
    # Zones with `confirmation: sequential`: one detector alone is an unconfirmed intrusion at
    # this severity; a second within the window confirms it (EN 50131-9: 30-60 min).
    unconfirmed_severity: Literal["warning", "alarm", "critical"] = "alarm"
    confirmation_window_s: float = Field(default=1800.0, ge=1800, le=3600)

    def alarm_severities(self) -> dict[str, Severity]:
        """The rule names this kind raises, each at its configured severity."""
        return {"intrusion": Severity(self.severity),
                "not_secured": Severity(self.not_secured_severity), "duress": Severity.CRITICAL,
                "walk_test_due": Severity.WARNING, "intrusion_confirmed": Severity.CRITICAL}

    def build(self, depot: Depot) -> ZoneArmingRule:
        """The rule for every storehouse of the depot."""
        return ZoneArmingRule(self, depot)


class ZoneArmingRule:
    """Keeps each staff-armed zone's state; judges doors and detectors against it."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset(
        {SensorKind.DOOR, SensorKind.KEYPAD, *_INTRUSION_FIELDS})

    def __init__(self, config: ZoneArmingRuleConfig, depot: Depot) -> None:
        self._config = config
        self._depot = depot
        self._severity = Severity(config.severity)
        self._debounce_ns = int(config.debounce_ms * 1_000_000)
        self._staff = [s.id for s in depot.storehouses.values() if s.staff_arming]
        self._contacts = DoorContacts(depot.doors.values())
        self._keypads = KeypadDesk(depot, int(config.two_person_window_s * _NS))
        self._walks = WalkTests(depot, int(config.walk_test_window_s * _NS),
                                int(config.walk_test_max_age_s * _NS))
        self._zones: dict[str, Zone] = {}
        self._confirm = Confirmations(depot, int(config.confirmation_window_s * _NS))
        # Detector -> active since; subjects (detectors, doors) with an intrusion firing;
        # zones with "not secured" firing.
        self._active: dict[str, int] = {}
        self._firing: set[str] = set()
        # Of those, the ones firing as unconfirmed (they resolve at that severity).
        self._unconfirmed: set[str] = set()
        self._unsecured: set[str] = set()
        # Detectors triggered by a walk test: not alarmed until they go quiet again.
        self._walked: set[str] = set()
        self.wake_at: WakeAt = no_wake

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Arming requests, door contacts, detectors and keypads."""
        if reading.sensor.startswith(ZONE_PREFIX):
            values = reading.values
            return self.request(reading.sensor[len(ZONE_PREFIX):], str(values.get("action")),
                                str(values.get("by", "")), str(values.get("how", "")),
                                values.get("force") is True, now_ns, str(values.get("note", "")))
        sensor = self._depot.sensors.get(reading.sensor)
        if sensor is None:
            return []
        if sensor.kind is SensorKind.DOOR:
            return self._door(reading, now_ns)
        if sensor.kind is SensorKind.KEYPAD:
            state = (self._zone(sensor.storehouse, now_ns).state
                     if sensor.storehouse in self._staff else ZoneState.ARMED)
            asked = self._keypads.asked(sensor, reading, state)
            if asked is None:
                return []
            if isinstance(asked, list):
                return asked
            action, by, duress = asked
            return [*self.request(sensor.storehouse, action, by, "keypad", False, now_ns),
                    *duress]
        field = _INTRUSION_FIELDS.get(sensor.kind)
        active = reading.values.get(field) if field else None
        if not isinstance(active, bool):
            return []
        if active:
            self._active.setdefault(sensor.id, reading.at_ns)
            if self._walks.walking(sensor.storehouse):
                self._walked.add(sensor.id)
                return self._walks.seen(sensor.id, sensor.storehouse, now_ns)
            return self._check_detector(sensor.id, now_ns)
        self._active.pop(sensor.id, None)
        self._walked.discard(sensor.id)
        return self._secure_again(sensor.id, sensor.storehouse, now_ns, "quiet again")

    def tick(self, now_ns: int) -> list[Outcome]:
        """Exit and entry delays that ran out, "not secured", detectors past the debounce."""
        out: list[Outcome] = []
        for storehouse in self._staff:
            zone = self._zone(storehouse, now_ns)
            if zone.deadline_ns is not None and now_ns >= zone.deadline_ns:
                out += self._delay_over(storehouse, zone, now_ns)
            out += self._not_secured(storehouse, zone, now_ns)
        for sensor in list(self._active):
            out += self._check_detector(sensor, now_ns)
        return out + self._walks.tick(now_ns)

    # -- requests -----------------------------------------------------------------------------

    def request(self, storehouse: str, action: str, by: str, how: str, force: bool,
                now_ns: int, note: str = "") -> list[Outcome]:
        """Arm or disarm a staff-armed zone, or start a walk test of any zone; the `zone` or
        `walk_test` fact says what came of it."""
        if action == "walk_test":
            return self._walks.start(storehouse, by, how, now_ns)
        if storehouse not in self._staff:
            why = ("not armed by staff (arming: schedule)" if storehouse in self._depot.storehouses
                   else "unknown storehouse")
            return [zone_fact(storehouse, ZoneState.ARMED, now_ns, result="refused", by=by,
                              how=how, action=action, note=why)]
        zone = self._zone(storehouse, now_ns)
        if action == "disarm":
            return self._disarm(storehouse, zone, by, how, now_ns, note)
        if action != "arm":
            return [zone_fact(storehouse, zone.state, now_ns, result="refused", by=by, how=how,
                              action=action, note="action must be arm or disarm")]
        if zone.state is not ZoneState.DISARMED:
            result, why = (("refused", "in alarm: disarm first") if zone.state is ZoneState.ALARM
                           else ("unchanged", f"already {zone.state.value}"))
            return [zone_fact(storehouse, zone.state, now_ns, result=result, by=by, how=how,
                              action=action, note=why)]
        open_now = self.not_secured(storehouse)
        if open_now and not force:
            return [zone_fact(storehouse, zone.state, now_ns, result="refused", by=by, how=how,
                              action=action, not_secured=open_now.values(), note=note)]
        zone.state, zone.since_ns, zone.by, zone.how = ZoneState.ARMING, now_ns, by, how
        zone.deadline_ns = now_ns + int(self._config.exit_delay_s * _NS)
        zone.bypassed = set(open_now)
        self.wake_at(zone.deadline_ns)
        return [zone_fact(storehouse, zone.state, now_ns, result="arming", by=by, how=how,
                          action=action, not_secured=open_now.values(),
                          forced=bool(open_now), note=note),
                *self._not_secured(storehouse, zone, now_ns)]

    def not_secured(self, storehouse: str) -> dict[str, str]:
        """What stands in the way of arming: sensor id -> "door SH1-D1" / "motion sh1-pir"."""
        found: dict[str, str] = {}
        for door in self._contacts.open_since:
            if self._depot.doors[door].storehouse == storehouse:
                found[self._depot.doors[door].contact_sensor] = f"door {door}"
        for sensor_id in self._active:
            sensor = self._depot.sensors[sensor_id]
            if sensor.storehouse == storehouse:
                found[sensor_id] = f"{sensor.kind.value} {sensor_id}"
        return found

    def _disarm(self, storehouse: str, zone: Zone, by: str, how: str, now_ns: int,
                note: str) -> list[Outcome]:
        if zone.state is ZoneState.DISARMED:
            return [zone_fact(storehouse, zone.state, now_ns, result="unchanged", by=by,
                              how=how, action="disarm", note="already disarmed")]
        zone.state, zone.since_ns, zone.by, zone.how = ZoneState.DISARMED, now_ns, by, how
        zone.deadline_ns, zone.entry_door, zone.bypassed = None, "", set()
        self._confirm.forget(storehouse)
        return [zone_fact(storehouse, zone.state, now_ns, result="disarmed", by=by, how=how,
                          action="disarm", note=note),
                *self._not_secured(storehouse, zone, now_ns)]

    # -- doors and detectors ------------------------------------------------------------------

    def _door(self, reading: Reading, now_ns: int) -> list[Outcome]:
        change = self._contacts.follow(reading)
        if change is None:
            return []
        door_id, is_open, since = change
        door = self._depot.doors[door_id]
        if not is_open:
            return self._secure_again(door.contact_sensor, door.storehouse, now_ns, "closed",
                                      subject=door_id)
        zone = self._zones.get(door.storehouse)
        if zone is None or zone.state is not ZoneState.ARMED \
                or door.contact_sensor in zone.bypassed or since is None:
            return []
        return [self._start_entry(door.storehouse, zone, door_id, since)]

    def _start_entry(self, storehouse: str, zone: Zone, door: str, since: int) -> Outcome:
        zone.state, zone.entry_door = ZoneState.ENTRY, door
        zone.deadline_ns = since + int(self._config.entry_delay_s * _NS)
        self.wake_at(zone.deadline_ns)
        return zone_fact(storehouse, zone.state, since, result="entry", by=zone.by,
                         how=zone.how, note=f"door {door} opened")

    def _secure_again(self, sensor: str, storehouse: str, now_ns: int, text: str, *,
                      subject: str = "") -> list[Outcome]:
        zone = self._zones.get(storehouse)
        if zone is not None:
            zone.bypassed.discard(sensor)
        subject = subject or sensor
        if subject not in self._firing:
            return []
        self._firing.discard(subject)
        return [self._intrusion(TransitionKind.RESOLVED, subject, storehouse, now_ns, text)]

    def _check_detector(self, sensor_id: str, now_ns: int) -> list[Outcome]:
        since = self._active.get(sensor_id)
        if since is None or sensor_id in self._firing:
            return []
        if now_ns - since < self._debounce_ns:
            self.wake_at(since + self._debounce_ns)
            return []
        sensor = self._depot.sensors[sensor_id]
        if sensor_id in self._walked or self._walks.walking(sensor.storehouse) \
                or not self._guarded(sensor, now_ns):
            return []
        out = self._trip(sensor_id, sensor.storehouse, now_ns,
                         f"{sensor.kind.value} detected while armed")
        zone = self._zones.get(sensor.storehouse)
        if zone is not None and zone.state is ZoneState.ARMED:
            zone.state, zone.deadline_ns = ZoneState.ALARM, None
            out.append(zone_fact(sensor.storehouse, zone.state, now_ns, result="alarm",
                                 by=zone.by, how=zone.how, note=f"{sensor.kind.value} "
                                 f"{sensor_id}"))
        return out

    def _guarded(self, sensor: Sensor, now_ns: int) -> bool:
        # In a staff zone, detectors follow the entry delay (the way in) and the exit delay.
        if sensor.storehouse in self._staff:
            zone = self._zone(sensor.storehouse, now_ns)
            return zone.state in _ARMED and sensor.id not in zone.bypassed
        return self._depot.storehouses[sensor.storehouse].is_armed(now_ns)

    # -- timers -------------------------------------------------------------------------------

    def _delay_over(self, storehouse: str, zone: Zone, now_ns: int) -> list[Outcome]:
        zone.deadline_ns = None
        if zone.state is ZoneState.ARMING:
            zone.state = ZoneState.ARMED
            # Detectors still seeing the staff who left stay set aside until they go quiet.
            zone.bypassed |= {s for s in self._active
                              if self._depot.sensors[s].storehouse == storehouse}
            out: list[Outcome] = [zone_fact(storehouse, zone.state, now_ns, result="armed",
                                            by=zone.by, how=zone.how)]
            for door in sorted(self._contacts.open_since):
                if self._depot.doors[door].storehouse == storehouse \
                        and self._depot.doors[door].contact_sensor not in zone.bypassed:
                    out.append(self._start_entry(storehouse, zone, door, now_ns))
                    break
            return out
        if zone.state is not ZoneState.ENTRY:
            return []
        door = zone.entry_door
        zone.state = ZoneState.ALARM
        text = (f"opened while armed, not disarmed within "
                f"{format_duration(self._config.entry_delay_s)}")
        out = [zone_fact(storehouse, zone.state, now_ns, result="alarm", by=zone.by,
                         how=zone.how, note=f"door {door} {text}"),
               *self._trip(door, storehouse, now_ns, text)]
        if door not in self._contacts.open_since:
            self._firing.discard(door)
            out.append(self._intrusion(TransitionKind.RESOLVED, door, storehouse, now_ns,
                                       "closed"))
        return out

    def _not_secured(self, storehouse: str, zone: Zone, now_ns: int) -> list[Outcome]:
        expected = self._depot.storehouses[storehouse].past_closing(now_ns)
        if expected and zone.state is ZoneState.DISARMED:
            if zone.expected_since_ns is None:
                zone.expected_since_ns = now_ns
            late = now_ns - zone.expected_since_ns
            if late < self._config.not_secured_after_s * _NS or storehouse in self._unsecured:
                return []
            self._unsecured.add(storehouse)
            return [self._not_secured_transition(TransitionKind.FIRING, storehouse, now_ns,
                                                 f"still disarmed {format_duration(late / _NS)}"
                                                 " after its closing time")]
        zone.expected_since_ns = None
        if storehouse not in self._unsecured:
            return []
        self._unsecured.discard(storehouse)
        text = (f"{zone.state.value} by {zone.by}" if zone.state is not ZoneState.DISARMED
                else "no longer expected armed")
        return [self._not_secured_transition(TransitionKind.RESOLVED, storehouse, now_ns, text)]

    def views(self, now_ns: int) -> list[ZoneView]:
        """Every storehouse's zone now, in config order; changes nothing (a zone not seen yet
        is shown as its schedule would set it)."""
        found = []
        for storehouse in self._depot.storehouses.values():
            walking = self._walks.walking(storehouse.id)
            last = self._walks.last.get(storehouse.id)
            zone = self._zones.get(storehouse.id)
            if storehouse.id in self._staff and zone is not None:
                found.append(ZoneView(storehouse.id, zone.state, "staff", zone.since_ns,
                                      zone.by, zone.how, zone.deadline_ns, walking, last))
                continue
            state = ZoneState.ARMED if storehouse.is_armed(now_ns) else ZoneState.DISARMED
            found.append(ZoneView(storehouse.id, state,
                                  "staff" if storehouse.id in self._staff else "schedule",
                                  None, "", "schedule", None, walking, last))
        return found

    # -- outcomes and state -------------------------------------------------------------------

    def _zone(self, storehouse: str, now_ns: int) -> Zone:
        zone = self._zones.get(storehouse)
        if zone is None:
            # First sight (a fresh start): as the schedule says, fail secure.
            armed = self._depot.storehouses[storehouse].is_armed(now_ns)
            zone = self._zones[storehouse] = Zone(
                ZoneState.ARMED if armed else ZoneState.DISARMED, now_ns, how="schedule")
        return zone

    def _trip(self, subject: str, storehouse: str, now_ns: int, text: str) -> list[Outcome]:
        # An intrusion fires; in a confirmation zone, unconfirmed until a second detector.
        self._firing.add(subject)
        confirmed = self._confirm.trip(storehouse, subject, now_ns)
        if not self._confirm.confirmed(storehouse):
            self._unconfirmed.add(subject)
            text += " (unconfirmed)"
        return [self._intrusion(TransitionKind.FIRING, subject, storehouse, now_ns, text),
                *confirmed]

    def _intrusion(self, kind: TransitionKind, subject: str, storehouse: str, now_ns: int,
                   text: str) -> Transition:
        name = self._depot.storehouses[storehouse].name
        what = f"door {subject}" if subject in self._depot.doors else subject
        severity = (Severity(self._config.unconfirmed_severity) if subject in self._unconfirmed
                    else self._severity)
        if kind is TransitionKind.RESOLVED:
            self._unconfirmed.discard(subject)
        return Transition(kind=kind, rule="intrusion", subject=subject, severity=severity,
                          at_ns=now_ns, storehouse=storehouse, summary=f"{name}: {what} {text}",
                          facts={"sensor": subject, "active": kind is TransitionKind.FIRING})

    def _not_secured_transition(self, kind: TransitionKind, storehouse: str, now_ns: int,
                                text: str) -> Transition:
        name = self._depot.storehouses[storehouse].name
        return Transition(kind=kind, rule="not_secured", subject=storehouse,
                          severity=Severity(self._config.not_secured_severity), at_ns=now_ns,
                          storehouse=storehouse, summary=f"{name}: not secured, {text}",
                          facts={"storehouse": storehouse})

    def snapshot(self) -> dict[str, Any]:
        """Zones, open doors, active detectors and what is firing."""
        return {"zones": {s: z.snapshot() for s, z in self._zones.items()},
                "open_since": self._contacts.snapshot(), "active": dict(self._active),
                "walks": self._walks.snapshot(), "walked": sorted(self._walked),
                "firing": sorted(self._firing), "unsecured": sorted(self._unsecured),
                "unconfirmed": sorted(self._unconfirmed), "confirm": self._confirm.snapshot()}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a snapshot: a restart keeps each zone's state and its running delay."""
        self._zones = {s: Zone.restore(z) for s, z in state.get("zones", {}).items()
                       if s in self._staff}
        self._contacts.restore(state.get("open_since", {}))
        sensors = self._depot.sensors
        self._active = {s: int(t) for s, t in state.get("active", {}).items() if s in sensors}
        self._firing = {s for s in state.get("firing", [])
                        if s in sensors or s in self._depot.doors}
        self._unsecured = {s for s in state.get("unsecured", []) if s in self._staff}
        self._walks.restore(state.get("walks", {}))
        self._walked = {s for s in state.get("walked", []) if s in self._active}
        self._unconfirmed = {s for s in state.get("unconfirmed", []) if s in self._firing}
        self._confirm.restore(state.get("confirm", {}))
