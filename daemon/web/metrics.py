"""Prometheus metrics and readiness of one daemon, read lazily from its objects (issue 8).

No hot-path instrumentation: the pipeline, dead letters, outboxes and writers keep counters
already; a custom collector reads them at scrape time into a per-daemon CollectorRegistry (no
global registry, so two daemons in one process, as in the tests, never mix).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence, Sized
from enum import Enum
from typing import Protocol

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.web.backlog import NS, Link, Pending, Spool, Writer, read_backlog

__all__ = ["STALLED_AFTER_S", "STALLED_FAILURES", "DaemonMetrics", "Watched"]

log = logging.getLogger(__name__)

# A writer whose oldest unsent point is older than this is stalled (InfluxDB down or refusing).
STALLED_AFTER_S = 300.0
# Consecutive failed writes before a writer counts as stalled even with a young backlog.
STALLED_FAILURES = 5


# What metrics reads of the daemon, and nothing more: the runner hands itself in, and this
# module never imports it (the runner imports this one). Read-only properties, so the
# daemon's own richer types fit.


# Series per source-labelled metric; busier sources first, the rest summed as "other".
_SERIES_PER_METRIC = 100


class _Spool(Spool, Protocol):
    @property
    def full(self) -> bool: ...
    @property
    def fill_pct(self) -> float: ...
    @property
    def shed_points(self) -> int: ...


class _PortSettings(Protocol):
    @property
    def id(self) -> str: ...


class _SerialPort(Protocol):
    @property
    def config(self) -> _PortSettings: ...
    @property
    def source(self) -> str: ...
    @property
    def is_open(self) -> asyncio.Event: ...


class _ModbusBus(Protocol):
    @property
    def component(self) -> str: ...
    @property
    def is_open(self) -> asyncio.Event: ...


class _Reader(Protocol):
    @property
    def component(self) -> str: ...
    @property
    def up(self) -> asyncio.Event: ...


class _Writer(Writer, Protocol):
    @property
    def last_write_ns(self) -> int: ...


class _Pipeline(Protocol):
    @property
    def readings(self) -> Mapping[str, int]: ...
    @property
    def points_out(self) -> int: ...
    @property
    def rule_errors(self) -> int: ...


class _DeadLetters(Protocol):
    @property
    def counts(self) -> Mapping[str, int]: ...


class _Alarm(Protocol):
    @property
    def state(self) -> Enum: ...
    @property
    def severity(self) -> Enum: ...


class _Desk(Protocol):
    def alarms(self) -> Sequence[_Alarm]: ...


class _Notifier(Protocol):
    @property
    def name(self) -> str: ...


class _Outbox(Protocol):
    @property
    def notifier(self) -> _Notifier: ...
    @property
    def delivered(self) -> int: ...
    @property
    def failed(self) -> int: ...
    @property
    def retried(self) -> int: ...
    @property
    def refused(self) -> int: ...
    @property
    def given_up(self) -> int: ...
    @property
    def backlog(self) -> int: ...


class _MqttSettings(Protocol):
    @property
    def subscriptions(self) -> Sized: ...


class _Settings(Protocol):
    @property
    def mqtt(self) -> _MqttSettings: ...


class Watched(Protocol):
    """The running daemon as its metrics and readiness see it."""

    @property
    def config(self) -> _Settings: ...
    @property
    def spool(self) -> _Spool: ...
    @property
    def link(self) -> Link: ...
    @property
    def serial_ports(self) -> Sequence[_SerialPort]: ...
    @property
    def modbus_buses(self) -> Sequence[_ModbusBus]: ...
    @property
    def readers(self) -> Sequence[_Reader]: ...
    @property
    def writers(self) -> Sequence[_Writer]: ...
    @property
    def pipeline(self) -> _Pipeline: ...
    @property
    def deadletters(self) -> _DeadLetters: ...
    @property
    def desk(self) -> _Desk: ...
    @property
    def outboxes(self) -> Sequence[_Outbox]: ...


class DaemonMetrics(Collector):
    """The daemon's counters as Prometheus metrics, and its readiness for /readyz."""

    def __init__(self, daemon: Watched, *, stalled_after_s: float = STALLED_AFTER_S,
                 stalled_failures: int = STALLED_FAILURES) -> None:
        self._daemon = daemon
        self._stalled_after_s = stalled_after_s
        self._stalled_failures = stalled_failures
        self._backlog: Sequence[Pending] = []
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(self)

    async def _refresh(self) -> str | None:
        # The spool answers on its own thread; collect() is synchronous, so fetch first.
        self._backlog, broken = await read_backlog(self._daemon.spool)
        return None if broken is None else f"spool not readable: {broken!r}"

    async def render(self) -> bytes:
        """The exposition text for one scrape."""
        await self._refresh()
        return generate_latest(self.registry)

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

    def collect(self) -> Iterator[Metric]:
        """Read every counter now (called by the registry at each scrape)."""
        yield from self._readings()
        yield self._alarms()
        yield from self._notifiers()
        yield from self._writers()
        yield from self._spool()
        yield self._inputs()

    def _readings(self) -> Iterator[Metric]:
        pipeline = self._daemon.pipeline
        yield _by_source("depotwatch_readings",
                         "Messages decoded into readings, by source (topic or port)",
                         pipeline.readings)
        yield _by_source("depotwatch_decode_errors",
                         "Payloads rejected and kept as dead letters, by source",
                         self._daemon.deadletters.counts)
        yield CounterMetricFamily("depotwatch_points", "Points produced for the time series",
                                  value=pipeline.points_out)
        yield CounterMetricFamily(
            "depotwatch_rule_errors", "Readings some rule failed on (a bug: see the log)",
            value=pipeline.rule_errors)

    def _alarms(self) -> Metric:
        by_state: Counter[tuple[str, str]] = Counter(
            (a.state.value, a.severity.value) for a in self._daemon.desk.alarms())
        alarms = GaugeMetricFamily("depotwatch_alarms", "Open alarms by lifecycle state",
                                   labels=["state", "severity"])
        for (state, severity), count in sorted(by_state.items()):
            alarms.add_metric([state, severity], count)
        return alarms

    def _notifiers(self) -> Iterator[Metric]:
        counted = [
            (CounterMetricFamily("depotwatch_notifier_deliveries",
                                 "Alert changes delivered (sent and taken)", labels=["notifier"]),
             "delivered"),
            (CounterMetricFamily("depotwatch_notifier_failures",
                                 "Failed delivery attempts", labels=["notifier"]), "failed"),
            (CounterMetricFamily("depotwatch_notifier_retries",
                                 "Delivery attempts that were retries", labels=["notifier"]),
             "retried"),
            (CounterMetricFamily("depotwatch_notifier_refused",
                                 "Alert changes the receiver refused for good (kept with the "
                                 "reason)", labels=["notifier"]), "refused"),
            (CounterMetricFamily("depotwatch_notifier_given_up",
                                 "Alert changes given up after failing too long",
                                 labels=["notifier"]), "given_up"),
        ]
        pending = GaugeMetricFamily("depotwatch_notifier_backlog",
                                    "Alert changes waiting", labels=["notifier"])
        for outbox in self._daemon.outboxes:
            name = [outbox.notifier.name]
            for family, attribute in counted:
                family.add_metric(name, getattr(outbox, attribute))
            pending.add_metric(name, outbox.backlog)
        yield from (family for family, _ in counted)
        yield pending

    def _writers(self) -> Iterator[Metric]:
        written = CounterMetricFamily("depotwatch_writer_points_written",
                                      "Points written by target", labels=["target"])
        rejected = CounterMetricFamily("depotwatch_writer_points_rejected",
                                       "Points the server refused, set aside", labels=["target"])
        retries = CounterMetricFamily("depotwatch_writer_retries", "Retried writes",
                                      labels=["target"])
        for writer in self._daemon.writers:
            stats = writer.stats()
            written.add_metric([writer.name], stats["written"])
            rejected.add_metric([writer.name], stats["rejected"])
            retries.add_metric([writer.name], stats["retries"])
        yield from (written, rejected, retries)

    def _spool(self) -> Iterator[Metric]:
        backlog = GaugeMetricFamily("depotwatch_spool_backlog_points",
                                    "Points in the spool not yet written", labels=["target"])
        lag = GaugeMetricFamily("depotwatch_spool_lag_seconds",
                                "Age of the oldest unwritten point", labels=["target"])
        now = time.time_ns()
        for entry in self._backlog:
            backlog.add_metric([entry.target], entry.points)
            lag.add_metric([entry.target], (now - entry.oldest_ns) / NS if entry.oldest_ns
                           else 0.0)
        yield from (backlog, lag)
        yield GaugeMetricFamily("depotwatch_spool_fill_ratio",
                                "Spool size over its effective quota (the configured one, or "
                                "the disk's free space less the reserve)",
                                value=self._daemon.spool.fill_pct / 100.0)
        yield CounterMetricFamily("depotwatch_spool_shed_points",
                                  "Climate and health points given up by a full spool or disk",
                                  value=self._daemon.spool.shed_points)

    def _inputs(self) -> Metric:
        daemon = self._daemon
        up = GaugeMetricFamily("depotwatch_input_up", "Whether an input is connected (1) or not",
                               labels=["input"])
        up.add_metric(["mqtt"], float(daemon.link.connected.is_set()))
        for port in daemon.serial_ports:
            up.add_metric([port.source], float(port.is_open.is_set()))
        for bus in daemon.modbus_buses:
            up.add_metric([bus.component], float(bus.is_open.is_set()))
        for reader in daemon.readers:
            up.add_metric([reader.component], float(reader.up.is_set()))
        return up


def _by_source(name: str, documentation: str, counts: Mapping[str, int]) -> Metric:
    # The busiest sources by name, the rest as one `other` series: a flood of junk topics must
    # not become thousands of series in Prometheus.
    family = CounterMetricFamily(name, documentation, labels=["source"])
    busiest = sorted(counts.items(), key=lambda item: -item[1])
    rest = sum(count for _, count in busiest[_SERIES_PER_METRIC:])
    shown = dict(busiest[:_SERIES_PER_METRIC])
    if rest:
        shown["other"] = shown.get("other", 0) + rest
    for source, count in sorted(shown.items()):
        family.add_metric([source], count)
    return family
