"""Prometheus metrics and readiness of one daemon, read lazily from its objects (issue 8).

No hot-path instrumentation: the pipeline, dead letters, outboxes and writers keep counters
already; a custom collector (daemon/web/exposition.py, imported at the first scrape) reads
them at scrape time into a per-daemon CollectorRegistry (no global registry, so two daemons in
one process, as in the tests, never mix).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from daemon.web.backlog import NS, Pending, read_backlog
from daemon.web.watched import Watched

if TYPE_CHECKING:
    from daemon.web.exposition import Exposition

__all__ = ["STALLED_AFTER_S", "STALLED_FAILURES", "DaemonMetrics"]

log = logging.getLogger(__name__)

# A writer whose oldest unsent point is older than this is stalled (InfluxDB down or refusing).
STALLED_AFTER_S = 300.0
# Consecutive failed writes before a writer counts as stalled even with a young backlog.
STALLED_FAILURES = 5


class DaemonMetrics:
    """The daemon's counters as Prometheus metrics, and its readiness for /readyz."""

    def __init__(self, daemon: Watched, *, stalled_after_s: float = STALLED_AFTER_S,
                 stalled_failures: int = STALLED_FAILURES) -> None:
        self._daemon = daemon
        self._stalled_after_s = stalled_after_s
        self._stalled_failures = stalled_failures
        self._backlog: Sequence[Pending] = []
        self._exposition: Exposition | None = None

    async def _refresh(self) -> str | None:
        # The spool answers on its own thread; collect() is synchronous, so fetch first.
        self._backlog, broken = await read_backlog(self._daemon.spool)
        return None if broken is None else f"spool not readable: {broken!r}"

    async def render(self) -> bytes:
        """The exposition text for one scrape."""
        await self._refresh()
        if self._exposition is None:
            # prometheus_client (1.5 MiB with the http.server and wsgiref it imports) is
            # imported at the first scrape, not at start: a daemon nobody scrapes never needs it.
            from daemon.web.exposition import Exposition

            self._exposition = Exposition(self._daemon, lambda: self._backlog)
        return self._exposition.render()

    async def readiness(self) -> list[str]:
        """Why the daemon is not ready (empty: ready): inputs down, spool, stalled writers."""
        daemon = self._daemon
        reasons: list[str] = []
        if daemon.config.mqtt.subscriptions and not daemon.link.connected.is_set():
            reasons.append("MQTT not connected")
        reasons += [f"serial port {p.config.id} not open" for p in daemon.serial_ports
                    if not p.is_open.is_set()]
        reasons += [f"modbus bus {b.component} not open" for b in daemon.modbus_buses
                    if not b.is_open.is_set()]
        reasons += [f"reader {r.component} not connected" for r in daemon.readers
                    if not r.up.is_set()]
        broken = await self._refresh()
        if broken:
            reasons.append(broken)
        elif daemon.spool.full:
            reasons.append("spool full: climate and health points are being shed")
        now = time.time_ns()
        # A writer draining an old backlog (after an outage, a restart with a full spool) is
        # working, not stalled: old points count only while nothing was written lately.
        written_ns = {w.name: w.last_write_ns for w in daemon.writers}
        for backlog in self._backlog:
            recent = (now - written_ns.get(backlog.target, 0)) / NS <= self._stalled_after_s
            if (backlog.oldest_ns and not recent
                    and (now - backlog.oldest_ns) / NS > self._stalled_after_s):
                reasons.append(f"writer {backlog.target} stalled: oldest unsent point "
                               f"{(now - backlog.oldest_ns) / NS:.0f} s old")
        for writer in daemon.writers:
            failures = writer.stats()["consecutive_failures"]
            if failures >= self._stalled_failures:
                reasons.append(f"writer {writer.name} failing: {failures} writes in a row")
        return reasons
