"""Who hears of an alarm: the escalation ladders and the routing of notices to the outboxes."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from daemon.alerts.alarm import Alarm
from daemon.alerts.settings import EscalationStep, SeverityName
from daemon.vocabulary.alert import Alert
from rules.zone_keypad import SILENT_RULES

__all__ = ["ALWAYS", "Escalation", "Notify", "routed"]

_NS = 1_000_000_000

# Where a notice goes: None = every notifier, else the named ones (escalation steps).
Notify = Callable[[Alert, frozenset[str] | None], None]
# Told of every notice, whatever the escalation step.
ALWAYS = frozenset({"mqtt", "log"})
# Never told of a silent alarm (duress): the MQTT alerts topic and the console's listeners.
LOCAL = frozenset({"mqtt", "*"})


class Escalation:
    """The ladder per severity: who is told at each step while nobody acknowledges an alarm.

    Without a ladder for its severity every notifier is told at once (targets None).
    """

    def __init__(self, ladders: Mapping[SeverityName, Sequence[EscalationStep]]) -> None:
        self._ladders = ladders

    def targets(self, alarm: Alarm, step: int) -> frozenset[str] | None:
        """Who one step of the alarm's ladder tells."""
        ladder = self._ladders.get(alarm.severity.value, [])
        return frozenset(ladder[step].notify) if ladder else None

    def reached(self, alarm: Alarm) -> frozenset[str] | None:
        """Everyone told so far about this alarm (None = every notifier)."""
        ladder = self._ladders.get(alarm.severity.value, [])
        if not ladder:
            return None
        return frozenset(n for step in ladder[: alarm.escalation_step + 1] for n in step.notify)

    def due(self, alarm: Alarm, now_ns: int) -> EscalationStep | None:
        """The alarm's next step, once it has gone unacknowledged long enough for it."""
        ladder = self._ladders.get(alarm.severity.value, [])
        following = alarm.escalation_step + 1
        if following < len(ladder) and now_ns - alarm.started_ns >= ladder[following].after_s * _NS:
            return ladder[following]
        return None


def routed(notify_all: Sequence[tuple[str, Callable[[Alert], None]]],
           always: frozenset[str] = ALWAYS) -> Notify:
    """A Notify that puts each notice into the outboxes its targets name; the `always` ones
    (MQTT state, the log, a console) get every notice, lifecycle updates included."""

    def notify(alert: Alert, targets: frozenset[str] | None) -> None:
        silent = alert.rule in SILENT_RULES
        for name, put in notify_all:
            if silent and name in LOCAL:
                continue
            if targets is None or name in targets or name in always:
                put(alert)

    return notify
