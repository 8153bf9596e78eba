"""A door opened while its storehouse is armed: alarm at once (EN 50131-1, ≤ 10 s end to end)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.depot import Depot, SensorKind
from rules.door_contacts import DoorContacts

__all__ = ["DoorArmedRule", "DoorArmedRuleConfig"]


class DoorArmedRuleConfig(RuleConfigBase):
    """Door open while armed; the alarm holds until the door is closed again."""

    type: Literal["door_armed"] = "door_armed"
    severity: Literal["alarm", "critical"] = "critical"
    # EN 50131-1 §8.9.1: intrusion signals shorter than 400 ms are not processed.
    debounce_ms: float = Field(default=400.0, ge=0)

    def build(self, depot: Depot) -> DoorArmedRule:
        """The rule for every door of the depot."""
        return DoorArmedRule(self, depot)


class DoorArmedRule:
    """Fires when a contact stays open for the debounce time while the storehouse is armed."""

    # The engine hands it readings of these depot sensor kinds only (and anything that is
    # not a depot sensor, such as the gateway's own readings).
    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.DOOR})

    def __init__(self, config: DoorArmedRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._severity = Severity(config.severity)
        self._debounce_ns = int(config.debounce_ms * 1_000_000)
        self._contacts = DoorContacts(depot.doors.values())
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow the door's open/closed state."""
        change = self._contacts.follow(reading)
        if change is None:
            return []
        door, is_open, _ = change
        if is_open:
            return self._check(door, now_ns)
        if door in self._firing:
            self._firing.discard(door)
            return [self._transition(TransitionKind.RESOLVED, door, now_ns, "closed")]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Confirm openings that outlasted the debounce, and doors open when arming begins."""
        out: list[Outcome] = []
        for door in list(self._contacts.open_since):
            out.extend(self._check(door, now_ns))
        return out

    def _check(self, door_id: str, now_ns: int) -> list[Outcome]:
        since = self._contacts.open_since.get(door_id)
        if since is None or door_id in self._firing or now_ns - since < self._debounce_ns:
            return []
        storehouse = self._depot.storehouses[self._depot.doors[door_id].storehouse]
        if not storehouse.is_armed(now_ns):
            return []
        self._firing.add(door_id)
        return [self._transition(TransitionKind.FIRING, door_id, now_ns, "opened while armed")]

    def _transition(self, kind: TransitionKind, door_id: str, now_ns: int,
                    text: str) -> Transition:
        storehouse = self._depot.storehouses[self._depot.doors[door_id].storehouse]
        return Transition(
            kind=kind, rule="door_armed", subject=door_id, severity=self._severity,
            at_ns=now_ns, storehouse=storehouse.id,
            summary=f"{storehouse.name}: door {door_id} {text}",
            facts={"door": door_id, "open": kind is TransitionKind.FIRING},
        )

    def snapshot(self) -> dict[str, Any]:
        """Open-since times and firing doors."""
        return {"open_since": self._contacts.snapshot(), "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back open-since times and firing doors."""
        self._contacts.restore(state.get("open_since", {}))
        self._firing = {d for d in state.get("firing", []) if d in self._depot.doors}
