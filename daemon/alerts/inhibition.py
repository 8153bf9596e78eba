"""Inhibition: one cause, one page; an open alarm mutes the alarms it explains."""

from __future__ import annotations

from collections.abc import Collection, Sequence

from daemon.alerts.alarm import Alarm
from daemon.alerts.settings import InhibitRule

__all__ = ["inhibitor"]


def _same(label: str, source: str, target: str) -> bool:
    """Whether an inhibiting alarm's label covers the muted one's."""
    if label == "input" and not target:
        return True  # which input feeds the sensor is not known: any lost input may be why
    return source == target


def inhibitor(alarm: Alarm, open_alarms: Collection[Alarm],
              rules: Sequence[InhibitRule]) -> str | None:
    """The key of the open alarm that mutes `alarm` (the last rule that finds one wins)."""
    found = None
    labels = alarm.labels()
    for rule in rules:
        if rule.target_rule != alarm.rule:
            continue
        for source in open_alarms:
            if source.rule == rule.source_rule and source.key != alarm.key and (
                    source.subject not in rule.source_subject_not) and all(
                    _same(k, source.labels()[k], labels[k]) for k in rule.equal):
                found = source.key
                break
    return found
