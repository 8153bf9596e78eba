"""The alarm list as a duty officer's queue (issue 30): what needs a hand first.

Unacknowledged firing alarms first (critical, alarm, warning, oldest first within each), then
acknowledged ones awaiting their check or their end, then silenced or held-back ones, then the
recently cleared, newest first. Each card knows its one next action.
"""

from __future__ import annotations

from dataclasses import dataclass

from daemon.alerts.alarm import Alarm, AlarmState, Finding, LifecycleError
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.silences import Silence
from daemon.vocabulary.readings import Severity

__all__ = ["FINDING_WORDS", "GROUPS", "AlarmCard", "queue"]

# The queue's groups in order, with what the officer reads above each.
GROUPS = (("firing", "Needs acknowledging"), ("acknowledged", "Acknowledged"),
          ("silenced", "Silenced or held back"), ("cleared", "Cleared"))
FINDING_WORDS = {Finding.INTRUSION: "intrusion", Finding.FAULT: "fault",
                 Finding.FALSE_ALARM: "false alarm"}
_SEVERITY = {Severity.CRITICAL: 0, Severity.ALARM: 1, Severity.WARNING: 2}
_RANK = {name: rank for rank, (name, _) in enumerate(GROUPS)}


@dataclass(frozen=True, slots=True)
class AlarmCard:
    """One alarm as the queue shows it: its group, what holds it back, its next action."""

    alarm: Alarm
    group: str
    needs_check: bool
    silence: Silence | None
    # The headline of the alarm that holds this one back (an inhibition), in words.
    held_by: str

    @property
    def headline(self) -> str:
        """What the alarm was raised for, whatever its condition does since."""
        return self.alarm.headline or self.alarm.summary

    @property
    def present(self) -> str:
        """The condition now, when it differs from what the alarm was raised for."""
        if self.alarm.condition_active:
            return "still going on"
        changed = self.alarm.summary != self.headline
        return f"over: {self.alarm.summary}" if changed else "over"

    @property
    def awaiting_check(self) -> bool:
        """Open, needing an on-site check that nobody has recorded."""
        return (self.alarm.state is not AlarmState.CLEARED and self.needs_check
                and self.alarm.finding is None)

    @property
    def action(self) -> str:
        """The card's main button: "ack", "check" or "open"."""
        if self.alarm.state is AlarmState.FIRING and self.group == "firing":
            return "ack"
        if self.alarm.state is AlarmState.ACKNOWLEDGED and self.awaiting_check:
            return "check"
        return "open"


def queue(desk: AlarmDesk) -> list[AlarmCard]:
    """Every alarm the desk holds (open and recently cleared), in the officer's order."""
    silences = {s.id: s for s in desk.silences()}
    cards = [_card(desk, alarm, silences) for alarm in desk.alarms(include_cleared=True,
                                                                    include_silent=False)]
    return sorted(cards, key=_order)


def _card(desk: AlarmDesk, alarm: Alarm, silences: dict[str, Silence]) -> AlarmCard:
    if alarm.state is AlarmState.CLEARED:
        group = "cleared"
    elif alarm.state is AlarmState.ACKNOWLEDGED:
        group = "acknowledged"
    else:
        group = "silenced" if alarm.muted else "firing"
    held_by = ""
    if alarm.inhibited_by:
        try:
            cause = desk.get(alarm.inhibited_by)
            held_by = cause.headline or cause.summary
        except LifecycleError:
            held_by = "another alarm"
    silence = silences.get(alarm.silenced_by) if alarm.silenced_by else None
    return AlarmCard(alarm, group, desk.needs_check(alarm), silence, held_by)


def _order(card: AlarmCard) -> tuple[int, int, int]:
    alarm = card.alarm
    if card.group == "cleared":
        return _RANK["cleared"], 0, -(alarm.cleared_ns or 0)
    return _RANK[card.group], _SEVERITY[alarm.severity], alarm.started_ns
