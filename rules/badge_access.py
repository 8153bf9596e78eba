"""Every badge read checked against the roster: refused badges and unescorted visitors alarm.

PSSM.md access-control rows: a badge not on the current roster, expired, or not authorised for
the zone is an alarm (DoD key/entry roster); a visitor is valid only while escorted by a roster
member (MP1002). A refused read is an event, not a condition, so its alert
`badge_access.<door>` fires on the first refused read and resolves by itself once no further
refused read has come for `clear_after_s`; refused reads while it fires only extend it (they
are all in InfluxDB as `access` facts). "Visitor without escort" is its own alert,
`visitor_escort.<door>`, cleared the same way.

A visitor's read is escorted when a roster member who is not a visitor is granted at the same
door's reader within `escort_window_s` before or after it; the read's `access` fact is
therefore written once that is decided (at the escort's read, or when the window has passed),
still stamped with the visitor's read time. Badge numbers never leave this module's input: the
facts, alerts and snapshots carry the depot's keyed badge hash instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Fact, Outcome, RuleConfigBase, format_duration
from rules.depot import AccessVerdict, Depot, Door, Person, SensorKind

__all__ = ["ESCORT_MISSING", "BadgeAccessRule", "BadgeAccessRuleConfig", "BadgeRead",
           "badge_read"]

_NS = 1_000_000_000

# The `result` tag of a visitor's read that no roster member escorted.
ESCORT_MISSING = "escort_missing"

_REFUSED = "badge_access"
_UNESCORTED = "visitor_escort"


@dataclass(frozen=True, slots=True)
class BadgeRead:
    """One badge read at a door's reader as the roster judges it; holds no badge number."""

    door: Door
    at_ns: int
    verdict: AccessVerdict
    person: Person | None
    badge_hash: str

    @property
    def name(self) -> str:
        """The roster name, or "" for an unknown badge."""
        return self.person.name if self.person is not None else ""

    @property
    def authorised(self) -> bool:
        """Granted and not a visitor: may escort, and counts for the two-person rule."""
        return (self.verdict is AccessVerdict.GRANTED and self.person is not None
                and not self.person.escort_only)


# The last reading judged and its verdict: a badge read meets three rules and the console's
# recent events, and each asks; the roster lookup and the HMAC are done once. Depot and Reading
# are frozen, so the same two objects always get the same answer.
_last: tuple[Reading, Depot, BadgeRead | None] | None = None


def badge_read(depot: Depot, reading: Reading) -> BadgeRead | None:
    """The roster's verdict on a reading from a door's badge reader; None for anything else."""
    global _last
    last = _last
    if last is not None and last[0] is reading and last[1] is depot:
        return last[2]
    read = _badge_read(depot, reading)
    _last = (reading, depot, read)
    return read


def _badge_read(depot: Depot, reading: Reading) -> BadgeRead | None:
    sensor = depot.sensors.get(reading.sensor)
    if sensor is None or sensor.kind is not SensorKind.BADGE_READER:
        return None
    door = depot.doors.get(sensor.door)
    badge = reading.values.get("badge")
    # A decoder may hand over a card number that was a JSON number.
    if isinstance(badge, float) and badge.is_integer():
        badge = str(int(badge))
    if door is None or not isinstance(badge, str) or not badge.strip():
        return None
    badge = badge.strip()
    verdict, person = depot.authorize(badge, door, reading.at_ns)
    return BadgeRead(door, reading.at_ns, verdict, person, depot.badge_hash(badge))


class BadgeAccessRuleConfig(RuleConfigBase):
    """Badge refused (unknown, expired, not yet valid, wrong zone) or visitor without escort."""

    type: Literal["badge_access"] = "badge_access"
    severity: Literal["warning", "alarm", "critical"] = "alarm"
    # [I] A refused read is an event: its alert clears after this long without another one.
    clear_after_s: float = Field(default=300.0, gt=0)
    # MP1002: visitors only while escorted; [I] escort badged within 60 s before or after.
    escort_window_s: float = Field(default=60.0, ge=0)

    def build(self, depot: Depot) -> BadgeAccessRule:
        """The rule for every door with a badge reader."""
        return BadgeAccessRule(self, depot)


@dataclass(frozen=True, slots=True)
class _Visitor:
    """A visitor's granted read still waiting for an escort."""

    at_ns: int
    name: str
    badge_hash: str


class BadgeAccessRule:
    """Alarms on refused badges and unescorted visitors; writes an `access` fact per read."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.BADGE_READER})

    def __init__(self, config: BadgeAccessRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._severity = Severity(config.severity)
        self._clear_ns = int(config.clear_after_s * _NS)
        self._escort_ns = int(config.escort_window_s * _NS)
        # Alert name -> door -> (time of the latest event, events since it fired).
        self._alarms: dict[str, dict[str, tuple[int, int]]] = {_REFUSED: {}, _UNESCORTED: {}}
        self._escort_at: dict[str, int] = {}
        self._waiting: dict[str, list[_Visitor]] = {}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Judge one badge read."""
        read = badge_read(self._depot, reading)
        if read is None:
            return []
        door = read.door.id
        if read.verdict is not AccessVerdict.GRANTED:
            return [self._fact(read.door, read.at_ns, read.verdict.value, read.name,
                               read.badge_hash),
                    *self._raise(_REFUSED, read.door, now_ns, self._refusal(read), read.name,
                                 read.badge_hash, read.verdict.value)]
        if not read.authorised:
            escort = self._escort_at.get(door)
            if escort is not None and abs(read.at_ns - escort) <= self._escort_ns:
                return [self._fact(read.door, read.at_ns, read.verdict.value, read.name,
                                   read.badge_hash)]
            self._waiting.setdefault(door, []).append(
                _Visitor(read.at_ns, read.name, read.badge_hash))
            return []
        self._escort_at[door] = max(self._escort_at.get(door, read.at_ns), read.at_ns)
        out: list[Outcome] = [self._fact(read.door, read.at_ns, read.verdict.value, read.name,
                                         read.badge_hash)]
        waiting = self._waiting.get(door, [])
        escorted = [v for v in waiting if abs(read.at_ns - v.at_ns) <= self._escort_ns]
        for visitor in escorted:
            out.append(self._fact(read.door, visitor.at_ns, AccessVerdict.GRANTED.value,
                                  visitor.name, visitor.badge_hash))
        self._set_waiting(door, [v for v in waiting if v not in escorted])
        return out

    def tick(self, now_ns: int) -> list[Outcome]:
        """Visitors whose escort window passed; alerts quiet for `clear_after_s` resolve."""
        out: list[Outcome] = []
        for door_id, waiting in list(self._waiting.items()):
            door = self._depot.doors[door_id]
            late = [v for v in waiting if now_ns - v.at_ns > self._escort_ns]
            for visitor in late:
                out.append(self._fact(door, visitor.at_ns, ESCORT_MISSING, visitor.name,
                                      visitor.badge_hash))
                text = (f"visitor without escort: {visitor.name} badged at door {door_id},"
                        f" no roster member within {format_duration(self._escort_ns / _NS)}")
                out.extend(self._raise(_UNESCORTED, door, now_ns, text, visitor.name,
                                       visitor.badge_hash, ESCORT_MISSING))
            self._set_waiting(door_id, [v for v in waiting if v not in late])
        for name, alarms in self._alarms.items():
            for door_id, (last_ns, count) in list(alarms.items()):
                if now_ns - last_ns >= self._clear_ns:
                    del alarms[door_id]
                    out.append(self._resolved(name, self._depot.doors[door_id], now_ns, count))
        return out

    def snapshot(self) -> dict[str, Any]:
        """Firing alerts, the last escort per door, and visitors waiting for an escort."""
        return {
            "alarms": {name: {d: list(v) for d, v in alarms.items()}
                       for name, alarms in self._alarms.items()},
            "escort_at": dict(self._escort_at),
            "waiting": {d: [[v.at_ns, v.name, v.badge_hash] for v in visitors]
                        for d, visitors in self._waiting.items()},
        }

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back firing alerts, escorts and waiting visitors."""
        doors = self._depot.doors
        alarms = state.get("alarms", {})
        self._alarms = {
            name: {d: (int(v[0]), int(v[1])) for d, v in alarms.get(name, {}).items()
                   if d in doors}
            for name in (_REFUSED, _UNESCORTED)
        }
        self._escort_at = {d: int(t) for d, t in state.get("escort_at", {}).items()
                           if d in doors}
        self._waiting = {
            d: [_Visitor(int(v[0]), str(v[1]), str(v[2])) for v in visitors]
            for d, visitors in state.get("waiting", {}).items() if d in doors and visitors
        }

    def _set_waiting(self, door: str, waiting: list[_Visitor]) -> None:
        if waiting:
            self._waiting[door] = waiting
        else:
            self._waiting.pop(door, None)

    def _refusal(self, read: BadgeRead) -> str:
        door = read.door.id
        if read.verdict is AccessVerdict.UNKNOWN:
            return f"unknown badge refused at door {door}"
        if read.verdict is AccessVerdict.EXPIRED:
            return f"expired badge of {read.name} refused at door {door}"
        if read.verdict is AccessVerdict.NOT_YET_VALID:
            return f"badge of {read.name}, not valid yet, refused at door {door}"
        return f"{read.name} not authorised for this store, refused at door {door}"

    def _raise(self, name: str, door: Door, now_ns: int, text: str, person: str,
               badge_hash: str, result: str) -> list[Outcome]:
        alarms = self._alarms[name]
        current = alarms.get(door.id)
        if current is not None:
            alarms[door.id] = (now_ns, current[1] + 1)
            return []
        alarms[door.id] = (now_ns, 1)
        return [Transition(
            kind=TransitionKind.FIRING, rule=name, subject=door.id, severity=self._severity,
            at_ns=now_ns, storehouse=door.storehouse,
            summary=f"{self._store_name(door)}: {text}",
            facts={"door": door.id, "person": person, "badge_hash": badge_hash,
                   "result": result},
        )]

    def _resolved(self, name: str, door: Door, now_ns: int, count: int) -> Transition:
        what = "refused badge" if name == _REFUSED else "unescorted visitor"
        quiet = format_duration(self._clear_ns / _NS)
        return Transition(
            kind=TransitionKind.RESOLVED, rule=name, subject=door.id, severity=self._severity,
            at_ns=now_ns, storehouse=door.storehouse,
            summary=(f"{self._store_name(door)}: no {what} at door {door.id} for {quiet}"
                     f" ({count} in all)"),
            facts={"door": door.id, "events": count},
        )

    def _store_name(self, door: Door) -> str:
        return self._depot.storehouses[door.storehouse].name

    @staticmethod
    def _fact(door: Door, at_ns: int, result: str, person: str, badge_hash: str) -> Fact:
        return Fact(measurement="access", tags={"door": door.id, "result": result},
                    fields={"person": person, "badge_hash": badge_hash}, at_ns=at_ns)
