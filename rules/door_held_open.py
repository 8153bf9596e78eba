"""A door held open past its limit without a work order: warning (PSSM.md access rows)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Severity
from rules.base import RuleConfigBase, format_duration
from rules.depot import Depot
from rules.door_contacts import DoorOpeningRule

__all__ = ["DoorHeldOpenRule", "DoorHeldOpenRuleConfig"]

_NS = 1_000_000_000


class DoorHeldOpenRuleConfig(RuleConfigBase):
    """Door open longer than `max_open_s` with no open work order for it."""

    type: Literal["door_held_open"] = "door_held_open"
    max_open_s: float = Field(default=900.0, gt=0)

    def build(self, depot: Depot) -> DoorHeldOpenRule:
        """The rule for every door of the depot."""
        return DoorHeldOpenRule(self, depot)


class DoorHeldOpenRule(DoorOpeningRule):
    """Times each open door from the reading that opened it; a restart keeps the timer.

    A work order that covers the door holds the warning back only while it is valid.
    """

    rule_name: ClassVar[str] = "door_held_open"
    facts_say_open: ClassVar[bool] = False

    def __init__(self, config: DoorHeldOpenRuleConfig, depot: Depot) -> None:
        super().__init__(depot, depot.doors.values(), Severity.WARNING,
                         int(config.max_open_s * _NS))

    def _judge_opening(self, door: str, since: int, now_ns: int) -> str | None:
        if any(order.covers(door, now_ns) for order in self._depot.work_orders):
            return None
        return (f"held open for {format_duration((now_ns - since) / _NS)} "
                "without a work order")

    def _closing_text(self, since: int | None, closed_ns: int) -> str:
        return f"closed after {format_duration((closed_ns - (since or closed_ns)) / _NS)}"
