"""A door opened with no granted badge at its reader in the previous 30 s: forced (PSSM.md).

Armed or not. Only doors with a badge reader are checked: without a reader there is nothing to
compare the opening with. Any granted read counts, a visitor's too (the reader released the
lock; whether the visitor was escorted is the badge_access rule's business). A granted read that
arrives after the contact opened but before the opening is confirmed (the debounce, or the next
tick) still counts, because reader and contact reach the gateway by different paths. The alert
resolves when the door closes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.badge_access import badge_read
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import AccessVerdict, Depot, SensorKind
from rules.door_contacts import DoorContacts

__all__ = ["DoorForcedRule", "DoorForcedRuleConfig"]

_NS = 1_000_000_000


class DoorForcedRuleConfig(RuleConfigBase):
    """Door with a badge reader opened with no granted badge there in the previous `window_s`."""

    type: Literal["door_forced"] = "door_forced"
    severity: Literal["alarm", "critical"] = "alarm"
    # [I] PSSM.md: no granted badge at the door's reader in the previous 30 s.
    window_s: float = Field(default=30.0, gt=0)
    # EN 50131-1 §8.9.1: intrusion signals shorter than 400 ms are not processed.
    debounce_ms: float = Field(default=400.0, ge=0)

    def build(self, depot: Depot) -> DoorForcedRule:
        """The rule for every door that has a badge reader."""
        return DoorForcedRule(self, depot)


class DoorForcedRule:
    """Fires when a confirmed opening had no granted read at the door's reader before it."""

    # The engine hands it readings of these depot sensor kinds only (and anything that is
    # not a depot sensor, such as the gateway's own readings).
    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.DOOR, SensorKind.BADGE_READER})

    def __init__(self, config: DoorForcedRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._severity = Severity(config.severity)
        self._window_ns = int(config.window_s * _NS)
        self._debounce_ns = int(config.debounce_ms * 1_000_000)
        self._contacts = DoorContacts(d for d in depot.doors.values() if d.badge_reader)
        # `badge_read` answers None for any other sensor: a door contact's reading (most of
        # this rule's) is not asked about.
        self._readers = {sensor_id for sensor_id, s in depot.sensors.items()
                         if s.kind is SensorKind.BADGE_READER}
        self._granted_at: dict[str, int] = {}
        # Openings already judged (found badged, or firing): judged once per opening.
        self._checked: set[str] = set()
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Note granted reads; follow the door's open/closed state."""
        read = badge_read(self._depot, reading) if reading.sensor in self._readers else None
        if read is not None:
            door_id = read.door.id
            if read.verdict is not AccessVerdict.GRANTED or not read.door.badge_reader:
                return []
            self._granted_at[door_id] = max(self._granted_at.get(door_id, read.at_ns),
                                            read.at_ns)
            return self._check(door_id, now_ns)
        change = self._contacts.follow(reading)
        if change is None:
            return []
        door, is_open, _ = change
        if is_open:
            return self._check(door, now_ns)
        self._checked.discard(door)
        if door in self._firing:
            self._firing.discard(door)
            return [self._transition(TransitionKind.RESOLVED, door, now_ns,
                                     "closed after being forced")]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Judge openings that outlasted the debounce."""
        out: list[Outcome] = []
        for door in list(self._contacts.open_since):
            out.extend(self._check(door, now_ns))
        return out

    def _check(self, door: str, now_ns: int) -> list[Outcome]:
        since = self._contacts.open_since.get(door)
        if since is None or door in self._checked or now_ns - since < self._debounce_ns:
            return []
        self._checked.add(door)
        granted = self._granted_at.get(door)
        if granted is not None and granted >= since - self._window_ns:
            return []
        self._firing.add(door)
        window = format_duration(self._window_ns / _NS)
        return [self._transition(TransitionKind.FIRING, door, now_ns,
                                 f"forced: opened with no granted badge in the {window} before")]

    def _transition(self, kind: TransitionKind, door_id: str, now_ns: int,
                    text: str) -> Transition:
        storehouse = self._depot.storehouses[self._depot.doors[door_id].storehouse]
        return Transition(
            kind=kind, rule="door_forced", subject=door_id, severity=self._severity,
            at_ns=now_ns, storehouse=storehouse.id,
            summary=f"{storehouse.name}: door {door_id} {text}",
            facts={"door": door_id, "open": kind is TransitionKind.FIRING},
        )

    def snapshot(self) -> dict[str, Any]:
        """Last granted read per door, open-since times, judged and firing doors."""
        return {"granted_at": dict(self._granted_at), "open_since": self._contacts.snapshot(),
                "checked": sorted(self._checked), "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back granted reads, open-since times, judged and firing doors."""
        doors = {d.id for d in self._depot.doors.values() if d.badge_reader}
        self._granted_at = {d: int(t) for d, t in state.get("granted_at", {}).items()
                            if d in doors}
        self._contacts.restore(state.get("open_since", {}))
        self._checked = {d for d in state.get("checked", []) if d in doors}
        self._firing = {d for d in state.get("firing", []) if d in doors}
