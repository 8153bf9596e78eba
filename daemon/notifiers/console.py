"""Alerts written to the log (and so to the journal under systemd)."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import TextIO

from daemon.alerts import Alert
from daemon.model import TransitionKind

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
        mark = "FIRING  " if alert.state is TransitionKind.FIRING else "resolved"
        print(f"{at:%a %H:%M}  {mark} {alert.severity.value:<8} {alert.key:<40} "
              f"{alert.summary}", file=self._stream, flush=True)
