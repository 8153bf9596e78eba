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

from daemon.vocabulary.readings import Reading, Severity
from rules.badge_access import badge_read
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import AccessVerdict, Depot, SensorKind
from rules.door_contacts import DoorOpeningRule

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


class DoorForcedRule(DoorOpeningRule):
    """Fires when a confirmed opening had no granted read at the door's reader before it."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.DOOR, SensorKind.BADGE_READER})
    rule_name: ClassVar[str] = "door_forced"

    def __init__(self, config: DoorForcedRuleConfig, depot: Depot) -> None:
        super().__init__(depot, (d for d in depot.doors.values() if d.badge_reader),
                         Severity(config.severity), int(config.debounce_ms * 1_000_000))
        self._window_ns = int(config.window_s * _NS)
        # Reads at these go to `_badged`; a door contact's reading (most of this rule's) never
        # meets `badge_read`.
        self._readers = frozenset(s.id for s in depot.sensors_of(SensorKind.BADGE_READER))
        self._granted_at: dict[str, int] = {}

    def _badged(self, reading: Reading, now_ns: int) -> list[Outcome]:
        read = badge_read(self._depot, reading)
        if read is None or read.verdict is not AccessVerdict.GRANTED or not read.door.badge_reader:
            return []
        door_id = read.door.id
        self._granted_at[door_id] = max(self._granted_at.get(door_id, read.at_ns), read.at_ns)
        return self._check(door_id, now_ns)

    def _judge_opening(self, door: str, since: int, now_ns: int) -> str | None:
        # Judged once per opening, found badged or not: a read after the confirmation does not
        # make a forced opening a badged one.
        self._judged.add(door)
        granted = self._granted_at.get(door)
        if granted is not None and granted >= since - self._window_ns:
            return None
        window = format_duration(self._window_ns / _NS)
        return f"forced: opened with no granted badge in the {window} before"

    def _closing_text(self, since: int | None, closed_ns: int) -> str:
        return "closed after being forced"

    def snapshot(self) -> dict[str, Any]:
        """Last granted read per door, open-since times, judged and firing doors."""
        return {"granted_at": dict(self._granted_at), **super().snapshot(),
                "checked": sorted(self._judged)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back granted reads, open-since times, judged and firing doors."""
        super().restore(state)
        doors = self._contacts.doors
        self._granted_at = {d: int(t) for d, t in state.get("granted_at", {}).items()
                            if d in doors}
        self._judged |= {d for d in state.get("checked", []) if d in doors}
