"""A door opened while its storehouse is armed: alarm at once (EN 50131-1, ≤ 10 s end to end)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Severity
from rules.base import RuleConfigBase
from rules.depot import Depot
from rules.door_contacts import DoorOpeningRule

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


class DoorArmedRule(DoorOpeningRule):
    """Fires when a contact stays open for the debounce time while the storehouse is armed.

    A door already open when arming begins fires at the next tick. Doors of a storehouse armed
    by staff are zone_arming's (entry delay), not this rule's.
    """

    rule_name: ClassVar[str] = "door_armed"

    def __init__(self, config: DoorArmedRuleConfig, depot: Depot) -> None:
        super().__init__(depot, depot.doors.values(), Severity(config.severity),
                         int(config.debounce_ms * 1_000_000))

    def _judge_opening(self, door: str, since: int, now_ns: int) -> str | None:
        storehouse = self._depot.storehouses[self._depot.doors[door].storehouse]
        if storehouse.staff_arming:
            # Staff set the zone: zone_arming judges its doors, with the entry delay.
            return None
        return "opened while armed" if storehouse.is_armed(now_ns) else None

    def _closing_text(self, since: int | None, closed_ns: int) -> str:
        return "closed"
