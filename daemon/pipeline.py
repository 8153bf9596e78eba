"""One reading's way: route -> decode -> check -> points and rule engine -> alert changes."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence

from daemon.alerts import Alert, AlertBook
from daemon.deadletters import DeadLetterStore
from daemon.errors import DecodeError
from daemon.lineprotocol import line
from daemon.model import RawMessage, Reading
from daemon.points import alert_line, reading_lines
from drivers.routes import Router
from rules.depot import Depot
from rules.engine import Engine, Verdict
from rules.input_lost import GATEWAY_PREFIX

__all__ = ["Pipeline"]

log = logging.getLogger(__name__)

PointSink = Callable[[str], None]
AlertSink = Callable[[Alert], None]


class Pipeline:
    """Synchronous glue between drivers and sinks; the runner supplies `now` and the sinks."""

    def __init__(
        self, depot: Depot, router: Router, engine: Engine, alerts: AlertBook,
        deadletters: DeadLetterStore, points: Sequence[PointSink], notify: Sequence[AlertSink],
    ) -> None:
        self._depot = depot
        self._router = router
        self.engine = engine
        self.alerts = alerts
        self.deadletters = deadletters
        self._points = tuple(points)
        self._notify = tuple(notify)
        self.readings: Counter[str] = Counter()
        self.points_out = 0

    def ingest(self, raw: RawMessage, now_ns: int) -> None:
        """Take one raw message; bad input is dead-lettered and never raises."""
        try:
            readings = self._decode(raw)
        except DecodeError as exc:
            self.deadletters.keep(raw.source, str(exc), raw.payload, raw.received_ns)
            return
        except Exception as exc:  # a decoder bug must not stop the gateway
            log.exception("decoder failed on a payload from %s", raw.source)
            self.deadletters.keep(raw.source, f"decoder error: {exc!r}", raw.payload,
                                  raw.received_ns)
            return
        self.readings[raw.source] += 1
        for reading in readings:
            self.take(reading, now_ns, raw.source)

    def take(self, reading: Reading, now_ns: int, source: str = "") -> None:
        """One decoded reading of a known sensor: its points, then the rules."""
        try:
            points = reading_lines(reading, self._depot)
        except ValueError as exc:  # text line protocol cannot carry; the rules still run
            log.error("reading from %s not writable to InfluxDB: %s", source, exc)
            points = []
        for point in points:
            self._emit_point(point)
        self._apply(self.engine.observe(reading, now_ns))

    def input_state(self, component: str, up: bool, now_ns: int) -> None:
        """A gateway input (MQTT broker, a serial port) came up or went down."""
        self._emit_point(line("gateway", {"site": self._depot.site, "component": component},
                              {"up": up}, now_ns))
        reading = Reading(sensor=f"{GATEWAY_PREFIX}{component}", at_ns=now_ns,
                          values={"up": up})
        self._apply(self.engine.observe(reading, now_ns))

    def snapshot(self) -> dict[str, object]:
        """Engine and alert state for the state file."""
        return {"engine": self.engine.snapshot(), "alerts": self.alerts.snapshot()}

    def restore(self, state: dict[str, object]) -> None:
        """Take back engine and alert state after a restart."""
        engine, alerts = state.get("engine"), state.get("alerts")
        if isinstance(engine, dict):
            self.engine.restore(engine)
        if isinstance(alerts, list):
            self.alerts.restore(alerts)

    def tick(self, now_ns: int) -> None:
        """Let time-driven rules (sustain, silence) fire."""
        self._apply(self.engine.tick(now_ns))

    def _decode(self, raw: RawMessage) -> list[Reading]:
        route = self._router.route(raw.source)
        if route is None:
            raise DecodeError("no subscription matches this topic")
        if len(raw.payload) > route.max_payload_bytes:
            raise DecodeError(
                f"payload of {len(raw.payload)} bytes exceeds {route.max_payload_bytes}"
            )
        readings = route.decoder.decode(raw, route.sensor)
        for reading in readings:
            if reading.sensor not in self._depot.sensors:
                raise DecodeError(f"unknown sensor {reading.sensor!r} (not in the config)")
        return readings

    def _apply(self, verdict: Verdict) -> None:
        for fact in verdict.facts:
            try:
                self._emit_point(line(fact.measurement, {"site": self._depot.site, **fact.tags},
                                      fact.fields, fact.at_ns))
            except ValueError as exc:
                log.error("%s fact not writable to InfluxDB: %s", fact.measurement, exc)
        for transition in verdict.transitions:
            alert = self.alerts.apply(transition)
            if alert is None:
                continue
            try:
                self._emit_point(alert_line(alert, self._depot.site))
            except ValueError as exc:
                log.error("alert %s not writable to InfluxDB: %s", alert.key, exc)
            for notify in self._notify:
                notify(alert)

    def _emit_point(self, point: str) -> None:
        self.points_out += 1
        for sink in self._points:
            sink(point)
