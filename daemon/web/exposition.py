"""The daemon's counters as Prometheus exposition text, read at scrape time (issue 8).

Imported at the first scrape (daemon/web/metrics.py), not at start: prometheus_client brings
http.server, wsgiref and socketserver along, 1.5 MiB a daemon nobody scrapes never needs
(issue 29). A per-daemon CollectorRegistry (no global registry, so two daemons in one
process, as in the tests, never mix).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from daemon.web.backlog import NS, Pending
from daemon.web.watched import Watched

__all__ = ["Exposition"]

# Series per source-labelled metric; busier sources first, the rest summed as "other".
_SERIES_PER_METRIC = 100


class Exposition(Collector):
    """Reads every counter of `daemon` at each scrape; `backlog` is the spool's, as the scrape
    read it just before."""

    def __init__(self, daemon: Watched, backlog: Callable[[], Sequence[Pending]]) -> None:
        self._daemon = daemon
        self._backlog = backlog
        self._registry = CollectorRegistry(auto_describe=False)
        self._registry.register(self)

    def render(self) -> bytes:
        """The exposition text for one scrape."""
        return generate_latest(self._registry)

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
        for entry in self._backlog():
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
