"""What HQ knows of each depot's alarms: the retained alert messages its gateway publishes
(`depotwatch/<site>/alerts/<key>`, with the lifecycle in their facts), and which of them
reached HQ late. Pure: arrival times are handed in."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import TransitionKind

__all__ = ["AlarmBook", "DepotAlarms", "alarm_view", "alert_from_message"]

# How many cleared alarms per depot the console still shows.
_RECENT_CLEARED = 20


def alert_from_message(body: bytes) -> Alert:
    """A depot's retained alert message back as an Alert; raises ValueError."""
    try:
        doc = json.loads(body)
    except ValueError as exc:
        raise ValueError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise ValueError("not an alert object")
    doc.pop("site", None)
    return Alert.from_dict(doc)


@dataclass(slots=True)
class DepotAlarms:
    """One depot's open alarms by key, the recently cleared, and the late arrivals."""

    open: dict[str, Alert] = field(default_factory=dict)
    cleared: list[Alert] = field(default_factory=list)
    late_alarms: int = 0
    # (key, changed_ns) of every change taken: the bridge delivers a change at least once.
    seen: set[tuple[str, int]] = field(default_factory=set)


class AlarmBook:
    """Every supervised depot's alarms as HQ receives them."""

    def __init__(self, sites: list[str], *, late_after_s: float, started_wall_ns: int) -> None:
        self.depots = {site: DepotAlarms() for site in sites}
        self._late_ns = int(late_after_s * 1e9)
        # Changes made before HQ started are history (retained), not late deliveries.
        self._started_ns = started_wall_ns

    def take(self, site: str, alert: Alert, arrived_wall_ns: int) -> bool:
        """File one alert change from `site`; True when it reached HQ late (counted once)."""
        depot = self.depots[site]
        mark = (alert.key, alert.changed_ns)
        if mark in depot.seen:
            return False
        depot.seen.add(mark)
        if len(depot.seen) > 10_000:  # bounded: only recent duplicates matter
            depot.seen = {mark}
        late = (alert.changed_ns >= self._started_ns
                and arrived_wall_ns - alert.changed_ns > self._late_ns)
        if late:
            depot.late_alarms += 1
        current = depot.open.get(alert.key)
        if current is not None and current.changed_ns > alert.changed_ns:
            return late  # an older change delivered after a newer one
        if alert.state is TransitionKind.RESOLVED:
            depot.open.pop(alert.key, None)
            depot.cleared = [alert, *(a for a in depot.cleared if a.key != alert.key)]
            del depot.cleared[_RECENT_CLEARED:]
        else:
            depot.open[alert.key] = alert
        return late

    def forget(self, site: str, key: str) -> None:
        """The depot emptied the retained message (the alert is gone)."""
        self.depots[site].open.pop(key, None)

    def find(self, site: str, key: str) -> Alert | None:
        """An open alarm of `site`."""
        depot = self.depots.get(site)
        return None if depot is None else depot.open.get(key)


def alarm_view(alert: Alert) -> dict[str, Any]:
    """One alarm as HQ's API lists it."""
    facts = alert.facts
    return {"key": alert.key, "rule": alert.rule, "subject": alert.subject,
            "severity": alert.severity.value, "summary": alert.summary,
            "storehouse": alert.storehouse,
            "lifecycle": str(facts.get("lifecycle", alert.state.value)),
            "acked_by": facts.get("acked_by"), "checked_by": facts.get("checked_by"),
            "started_s": alert.started_ns / 1e9, "changed_s": alert.changed_ns / 1e9}
