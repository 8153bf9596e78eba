"""Alert state: one alert per key, no duplicate firing, every change handed to the notifiers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.model import FieldValue, Severity, Transition, TransitionKind

__all__ = ["Alert", "AlertBook"]


@dataclass(frozen=True, slots=True)
class Alert:
    """An alert as notifiers see it after a state change."""

    key: str
    rule: str
    subject: str
    severity: Severity
    state: TransitionKind
    summary: str
    storehouse: str
    started_ns: int
    changed_ns: int
    facts: Mapping[str, FieldValue] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, for the state file."""
        return {"key": self.key, "rule": self.rule, "subject": self.subject,
                "severity": self.severity.value, "state": self.state.value,
                "summary": self.summary, "storehouse": self.storehouse,
                "started_ns": self.started_ns, "changed_ns": self.changed_ns,
                "facts": dict(self.facts)}

    @classmethod
    def from_dict(cls, item: Mapping[str, Any]) -> Alert:
        """Back from `to_dict()`."""
        return cls(
            key=item["key"], rule=item["rule"], subject=item["subject"],
            severity=Severity(item["severity"]),
            state=TransitionKind(item.get("state", "firing")), summary=item["summary"],
            storehouse=item["storehouse"], started_ns=int(item["started_ns"]),
            changed_ns=int(item["changed_ns"]), facts=item.get("facts", {}),
        )

    def to_json(self, site: str) -> bytes:
        """The JSON body published on the alerts topic."""
        return json.dumps({
            "site": site, "key": self.key, "rule": self.rule, "subject": self.subject,
            "severity": self.severity.value, "state": self.state.value,
            "summary": self.summary, "storehouse": self.storehouse,
            "started_ns": self.started_ns, "changed_ns": self.changed_ns,
            "facts": dict(self.facts),
        }, ensure_ascii=False).encode()


class AlertBook:
    """Which alerts are firing; turns rule transitions into alert changes, dropping repeats."""

    def __init__(self) -> None:
        self._firing: dict[str, Alert] = {}
        self.fired = 0
        self.resolved = 0

    def apply(self, transition: Transition) -> Alert | None:
        """The alert change a transition causes, or None when it changes nothing."""
        current = self._firing.get(transition.key)
        if transition.kind is TransitionKind.FIRING:
            if current is not None:
                return None
            alert = Alert(
                key=transition.key, rule=transition.rule, subject=transition.subject,
                severity=transition.severity, state=TransitionKind.FIRING,
                summary=transition.summary, storehouse=transition.storehouse,
                started_ns=transition.at_ns, changed_ns=transition.at_ns,
                facts=transition.facts,
            )
            self._firing[transition.key] = alert
            self.fired += 1
            return alert
        if current is None:
            return None
        del self._firing[transition.key]
        self.resolved += 1
        return Alert(
            key=current.key, rule=current.rule, subject=current.subject,
            severity=current.severity, state=TransitionKind.RESOLVED,
            summary=transition.summary, storehouse=current.storehouse,
            started_ns=current.started_ns, changed_ns=transition.at_ns, facts=transition.facts,
        )

    def firing(self) -> list[Alert]:
        """Alerts firing now, oldest first."""
        return sorted(self._firing.values(), key=lambda a: a.started_ns)

    def snapshot(self) -> list[dict[str, Any]]:
        """Firing alerts as JSON-ready data, for a restart."""
        return [alert.to_dict() for alert in self.firing()]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        """Take back firing alerts: one still firing after a restart is not raised again."""
        for item in saved:
            alert = Alert.from_dict(item)
            self._firing[alert.key] = alert
