"""Alerts written to the log (and so to the journal under systemd)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import TextIO

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import TransitionKind

__all__ = ["ConsoleNotifier", "LogNotifier"]

log = logging.getLogger("depotwatch.alerts")


class LogNotifier:
    """Every alert change as one log line: WARNING when firing, INFO when resolved."""

    name = "log"

    async def send(self, alert: Alert) -> None:
        """Log the change."""
        level = logging.WARNING if alert.state is TransitionKind.FIRING else logging.INFO
        log.log(level, "alert %s %s [%s]: %s", alert.key, alert.state.value,
                alert.severity.value, alert.summary)


class ConsoleNotifier:
    """Alert changes printed for a person watching (the demo), with depot-local times."""

    name = "console"

    def __init__(self, zone: dt.tzinfo, stream: TextIO | None = None) -> None:
        self._zone = zone
        self._stream = stream or sys.stdout

    async def send(self, alert: Alert) -> None:
        """Print the change."""
        at = dt.datetime.fromtimestamp(alert.changed_ns / 1e9, tz=self._zone)
        print(f"{at:%a %H:%M}  {phase(alert):<8} {alert.severity.value:<8} {alert.key:<36} "
              f"{describe(alert)}", file=self._stream, flush=True)


def phase(alert: Alert) -> str:
    """The alarm's lifecycle step in one word: FIRING, over, acked, cleared (or resolved)."""
    lifecycle = alert.facts.get("lifecycle")
    if lifecycle is None:  # a bare condition change (replay, or no lifecycle)
        return "FIRING" if alert.state is TransitionKind.FIRING else "resolved"
    if lifecycle == "cleared":
        return "cleared"
    if lifecycle == "acknowledged":
        return "acked"
    return "FIRING" if alert.facts.get("condition_active", True) else "over"


def describe(alert: Alert) -> str:
    """The summary, with who acknowledged or checked and what they found."""
    extra = [f"{name.split('_')[0]} by {alert.facts[name]}"
             for name in ("acked_by", "checked_by") if name in alert.facts]
    if "finding" in alert.facts:
        extra.append(f"finding: {alert.facts['finding']}")
    return alert.summary + (f" ({'; '.join(extra)})" if extra else "")
