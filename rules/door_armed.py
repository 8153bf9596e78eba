"""A door opened while its storehouse is armed: alarm at once (EN 50131-1, ≤ 10 s end to end)."""

from __future__ import annotations

from typing import Literal

from daemon.model import Reading, Severity, Transition, TransitionKind
from rules.base import RuleConfigBase
from rules.depot import Depot

__all__ = ["DoorArmedRule", "DoorArmedRuleConfig"]


class DoorArmedRuleConfig(RuleConfigBase):
    """Door opened while armed; the alarm holds until the door is closed again."""

    type: Literal["door_armed"] = "door_armed"
    severity: Literal["alarm", "critical"] = "critical"

    def build(self, depot: Depot) -> DoorArmedRule:
        """The rule for every door of the depot."""
        return DoorArmedRule(self, depot)


class DoorArmedRule:
    """Fires when a contact reports open while the door's storehouse is armed."""

    def __init__(self, config: DoorArmedRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._severity = Severity(config.severity)
        self._door_of_sensor = {door.contact_sensor: door for door in depot.doors.values()}
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Transition]:
        """Check an open/closed change against the storehouse's armed schedule."""
        door = self._door_of_sensor.get(reading.sensor)
        is_open = reading.values.get("open")
        if door is None or not isinstance(is_open, bool):
            return []
        storehouse = self._depot.storehouses[door.storehouse]
        if is_open and door.id not in self._firing and storehouse.is_armed(reading.at_ns):
            self._firing.add(door.id)
            return [Transition(
                kind=TransitionKind.FIRING, rule="door_armed", subject=door.id,
                severity=self._severity, at_ns=now_ns, storehouse=storehouse.id,
                summary=f"{storehouse.name}: door {door.id} opened while armed",
                facts={"open": True},
            )]
        if not is_open and door.id in self._firing:
            self._firing.discard(door.id)
            return [Transition(
                kind=TransitionKind.RESOLVED, rule="door_armed", subject=door.id,
                severity=self._severity, at_ns=now_ns, storehouse=storehouse.id,
                summary=f"{storehouse.name}: door {door.id} closed",
                facts={"open": False},
            )]
        return []

    def tick(self, now_ns: int) -> list[Transition]:
        """Nothing depends on time alone."""
        return []
