"""One alarm as officers see it: its states, what its on-site check found, and its notices."""

from __future__ import annotations

import dataclasses
import enum
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import TypeAdapter

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import DepotwatchError
from daemon.vocabulary.readings import FieldValue, Severity, TransitionKind

__all__ = ["Alarm", "AlarmState", "Finding", "LifecycleError"]


class Finding(enum.StrEnum):
    """What the on-site check found (MP1003: every alarm logged with its nature)."""

    INTRUSION = "intrusion"
    FAULT = "fault"
    FALSE_ALARM = "false_alarm"


class AlarmState(enum.StrEnum):
    """Where an alarm is in its lifecycle."""

    FIRING = "firing"
    ACKNOWLEDGED = "acknowledged"
    CLEARED = "cleared"


class LifecycleError(DepotwatchError):
    """An officer's action the lifecycle refuses; the message says why."""


@dataclass(slots=True)
class Alarm:
    """One alarm as officers see it."""

    key: str
    rule: str
    subject: str
    severity: Severity
    storehouse: str
    summary: str
    facts: dict[str, FieldValue]
    started_ns: int
    state: AlarmState = AlarmState.FIRING
    condition_active: bool = True
    acked_by: str | None = None
    acked_ns: int | None = None
    ack_note: str = ""
    checked_by: str | None = None
    checked_ns: int | None = None
    finding: Finding | None = None
    check_note: str = ""
    escalation_step: int = 0
    silenced_by: str | None = None
    inhibited_by: str | None = None
    cleared_ns: int | None = None
    last_sent_ns: int = 0
    notified: list[str] = field(default_factory=list)
    # Its inhibition ended; paged at this time unless its condition ends first.
    unmute_ns: int | None = None
    # What it was raised for: `summary` follows the condition ("door closed"), this does not.
    headline: str = ""

    @property
    def muted(self) -> bool:
        """Silenced, inhibited, or waiting out the grace after its inhibition ended."""
        return (self.silenced_by is not None or self.inhibited_by is not None
                or self.unmute_ns is not None)

    def labels(self) -> dict[str, str]:
        """What silences and inhibitions match on."""
        door = self.facts.get("door")
        gateway_input = self.subject if self.rule == "input_lost" else self.facts.get("input")
        bridge = self.subject if self.rule == "bridge_offline" else self.facts.get("bridge")
        return {"rule": self.rule, "storehouse": self.storehouse, "subject": self.subject,
                "door": str(door) if door is not None else self.subject,
                "input": str(gateway_input) if gateway_input is not None else "",
                "bridge": str(bridge) if bridge is not None else ""}

    def as_alert(self, now_ns: int) -> Alert:
        """The notice the notifiers get: the condition's alert with the lifecycle in its facts."""
        state = TransitionKind.RESOLVED if self.state is AlarmState.CLEARED else (
            TransitionKind.FIRING)
        facts: dict[str, FieldValue] = {**self.facts, "lifecycle": self.state.value,
                                        "condition_active": self.condition_active,
                                        "escalation_step": float(self.escalation_step)}
        for name in ("acked_by", "checked_by"):
            value = getattr(self, name)
            if value:
                facts[name] = value
        if self.finding is not None:
            facts["finding"] = self.finding.value
        return Alert(
            key=self.key, rule=self.rule, subject=self.subject, severity=self.severity,
            state=state, summary=self.summary, storehouse=self.storehouse,
            started_ns=self.started_ns, changed_ns=now_ns, facts=facts,
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, every field."""
        out = dataclasses.asdict(self)
        for name in ("severity", "state", "finding"):
            value = getattr(self, name)
            out[name] = value.value if value is not None else None
        return out

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Alarm:
        """Back from `to_dict()`; a field of the wrong type raises ValueError (a damaged state
        file): an alarm whose times are text would stop the desk's every tick."""
        return _ALARM.validate_json(json.dumps({**item, "finding": item.get("finding") or None}),
                                    strict=True)


_ALARM = TypeAdapter(Alarm)
