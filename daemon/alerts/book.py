"""Alert state: one alert per key, no duplicate firing, every change handed to the notifiers."""

from __future__ import annotations

from typing import Any

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Transition, TransitionKind

__all__ = ["AlertBook"]


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
        """Take back firing alerts: one still firing after a restart is not raised again. All
        or nothing: a damaged entry raises ValueError or TypeError and changes nothing."""
        alerts = [Alert.from_dict(item) for item in saved]
        self._firing = {alert.key: alert for alert in alerts}
