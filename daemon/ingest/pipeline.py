"""One reading's way: route -> decode -> check -> points and rule engine -> alert changes."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence

from daemon.alerts.book import AlertBook
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.devices import DeviceWatch
from daemon.ingest.replays import ReplayWindow
from daemon.tsdb.lineprotocol import line
from daemon.tsdb.points import ReadingLines, alert_line
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import DecodeError, ImplausibleValue
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from daemon.vocabulary.sources import SourceCounts
from drivers.routes import Router
from rules.base import Fact, Outcome
from rules.depot import Depot
from rules.engine import Engine
from rules.gateway_fault import FAULT_SENSOR, fault_values
from rules.input_lost import GATEWAY_PREFIX
from rules.zone_arming import ZoneArmingRule
from rules.zone_keypad import SILENT_RULES
from rules.zone_state import ZONE_PREFIX, ZoneView

__all__ = ["Pipeline", "PointStore", "receipt_digest"]

log = logging.getLogger(__name__)

# Takes the points of one step and the receipts of the messages they came from; what it returns
# completes once they are durable (the spool's group commit), or None where nothing waits.
PointStore = Callable[[list[str], list[tuple[bytes, int]]], Awaitable[None] | None]
AlertSink = Callable[[Alert], None]
ReadingListener = Callable[[Reading], None]
FactListener = Callable[[Fact], None]
# Told the earliest time the rules asked for a tick at (a debounce ending), in clock ns.
WakeUp = Callable[[int], None]
# Field -> (lowest, highest) plausible value.
Ranges = Mapping[str, tuple[float, float]]


def _ignore_wake(at_ns: int) -> None:
    """No runner listens (replay, tests): ticks come on their own schedule."""


def receipt_digest(raw: RawMessage) -> bytes:
    """Identifies a message across a broker's redelivery: its source and its exact bytes."""
    return hashlib.blake2b(raw.source.encode() + b"\0" + raw.payload, digest_size=16).digest()


class Pipeline:
    """Synchronous glue between drivers and sinks; the runner supplies `now` and the sinks."""

    def __init__(
        self, depot: Depot, router: Router, engine: Engine, alerts: AlertBook,
        deadletters: DeadLetterStore, store: PointStore, notify: Sequence[AlertSink],
        receipts: Mapping[bytes, int] | None = None, *,
        plausible: Ranges | None = None,
        plausible_per_sensor: Mapping[str, Ranges] | None = None,
        wake: WakeUp | None = None, max_clock_skew_s: float = 60.0,
        replays: ReplayWindow | None = None,
    ) -> None:
        self._depot = depot
        self._router = router
        self._reading_lines = ReadingLines(depot)
        self.engine = engine
        self.alerts = alerts
        self.deadletters = deadletters
        self._store = store
        self._notify = tuple(notify)
        self._receipts: Mapping[bytes, int] = receipts if receipts is not None else {}
        self._batch: list[str] = []
        self.readings = SourceCounts()
        self.points_out = 0
        self.redeliveries_skipped = 0
        # QoS 1 messages lately taken: a broker restored from an older store sends them again.
        self.replays = replays or ReplayWindow(600.0, 1 << 18)
        # Told every decoded reading of a known sensor (the console's recent-events view).
        self.listeners: list[ReadingListener] = []
        # Told every fact the rules establish (zone changes go to the audit trail).
        self.fact_listeners: list[FactListener] = []
        self.rule_errors = 0
        self._rule_errors_logged: set[tuple[str, str]] = set()
        self._wakes = engine.wakes
        self._wake = wake or _ignore_wake
        self._plausible = tuple((plausible or {}).items())
        self._plausible_per_sensor = {s: tuple(r.items())
                                      for s, r in (plausible_per_sensor or {}).items()}
        # Sensors with a sensor_fault raised: their next plausible reading clears it.
        self._faulty: set[str] = set()
        self.implausible = 0
        # Sensors whose device clock is off by more than this: one clock_skew alert each,
        # cleared by a reading whose clock is back within it.
        self._max_skew_ns = int(max_clock_skew_s * 1e9)
        self._skewed: set[str] = set()
        # Wall clock minus the pipeline's clock, added to every point's time: a gateway clock
        # step moves the records, never the rules' timers (the runner sets it).
        self._offset_ns = 0
        # Availability, unhandled fields, decoder errors per device (`depotwatch devices`).
        self.devices = DeviceWatch(depot, self._fault)

    def ingest(self, raw: RawMessage, now_ns: int, digest: bytes | None = None, *,
               redeliverable: bool = True) -> Awaitable[None] | None:
        """Take one raw message; what it returns completes once its points are durable.

        Bad input is dead-lettered and never raises. A message the broker redelivers after it
        was already spooled (the daemon died between commit and acknowledgement) is not taken
        twice, nor one a broker restored from an older store replays (`ReplayWindow`).
        `digest`: its `receipt_digest`, if the caller has it already. A source that never
        sends a message again (a serial port) is not `redeliverable`: no receipt is kept.
        """
        # Runs per message: what `_ingest` and `_flush` were is written out here, two calls
        # fewer.
        receipts: list[tuple[bytes, int]]
        if not redeliverable:
            receipts = []
        else:
            if digest is None:
                digest = receipt_digest(raw)
            if raw.redelivered and digest in self._receipts:
                self.redeliveries_skipped += 1
                return None
            if raw.packet_id is not None and self.replays.replayed(digest, raw.packet_id,
                                                                   raw.received_ns):
                return None
            receipts = [(digest, raw.received_ns)]
        try:
            readings = self._decode(raw, now_ns)
            if self._plausible:
                self._judge_plausible(readings, now_ns)
        except ImplausibleValue as exc:
            self.deadletters.keep(raw.source, str(exc), raw.payload, raw.received_ns)
            self._sensor_fault(exc, now_ns)
            return self._flush(receipts)
        except DecodeError as exc:
            self.deadletters.keep(raw.source, str(exc), raw.payload, raw.received_ns)
            self.devices.decode_failed(self._router.route(raw.source), str(exc))
            return self._flush()
        except Exception as exc:  # a decoder bug must not stop the gateway
            log.exception("decoder failed on a payload from %s", raw.source)
            self.deadletters.keep(raw.source, f"decoder error: {exc!r}", raw.payload,
                                  raw.received_ns)
            self.devices.decode_failed(self._router.route(raw.source), repr(exc))
            return self._flush()
        self.readings.count(raw.source)
        for reading in readings:
            self._take(reading, now_ns, raw.source)
        lines, self._batch = self._batch, []
        if not lines and not receipts:
            return None
        return self._store(lines, receipts)

    def take(self, reading: Reading, now_ns: int, source: str = "") -> Awaitable[None] | None:
        """One decoded reading of a known sensor: its points, then the rules."""
        try:
            if self._plausible:
                self._judge_plausible([reading], now_ns)
        except ImplausibleValue as exc:
            self.deadletters.keep(source, str(exc), repr(dict(reading.values)).encode(),
                                  reading.at_ns)
            self._sensor_fault(exc, now_ns)
            return self._flush()
        self.devices.last_heard[reading.sensor] = reading.at_ns
        self._take(reading, now_ns, source)
        return self._flush()

    def _judge_plausible(self, readings: list[Reading], now_ns: int) -> None:
        for reading in readings:
            ranges = self._plausible_per_sensor.get(reading.sensor, self._plausible)
            values = reading.values
            for name, (low, high) in ranges:
                value = values.get(name)
                # `not low <= value <= high` is also true for NaN.
                if value is not None and value.__class__ is float and not low <= value <= high:
                    raise ImplausibleValue(
                        f"{name} {value!r} outside the plausible {low:g}..{high:g}",
                        reading.sensor)
            if reading.sensor in self._faulty:
                self._faulty.discard(reading.sensor)
                self.fault("sensor_fault", reading.sensor, False,
                           f"sensor {reading.sensor} reports plausible values again", now_ns)

    def _sensor_fault(self, exc: ImplausibleValue, now_ns: int) -> None:
        self.implausible += 1
        if exc.sensor and exc.sensor in self._depot.sensors:
            self._faulty.add(exc.sensor)
            self.fault("sensor_fault", exc.sensor, True,
                       f"sensor {exc.sensor} faulty: {exc}", now_ns)

    def fault(self, fault: str, subject: str, active: bool, summary: str, now_ns: int) -> None:
        """A fault the gateway found (storage, clock, a sensor) raised or cleared as an alert."""
        self._fault(fault, subject, active, summary, now_ns)
        self._flush()

    def _fault(self, fault: str, subject: str, active: bool, summary: str, now_ns: int) -> None:
        # Its points join the batch being built (a reading's own, in `_take`).
        reading = Reading(sensor=FAULT_SENSOR, at_ns=now_ns,
                          values=fault_values(fault, subject, active, summary))
        self._apply(self.engine.outcomes(reading, now_ns))
        self._take_wakes()

    def _judge_skew(self, reading: Reading, device_s: float, now_ns: int) -> None:
        # The device's clock against the gateway's receipt, both as records have them. Only
        # a fault: the reading keeps its receipt time, so no rule timer moves.
        skew_ns = int(device_s * 1e9) - (reading.at_ns + self._offset_ns)
        sensor = reading.sensor
        if abs(skew_ns) > self._max_skew_ns:
            if sensor not in self._skewed:
                self._skewed.add(sensor)
                log.warning("device clock of sensor %s is off by %+.0f s", sensor, skew_ns / 1e9)
                self._fault("clock_skew", sensor, True, f"device clock of sensor {sensor} is "
                            f"off by {skew_ns / 1e9:+.0f} s (readings timed by receipt)", now_ns)
        elif sensor in self._skewed:
            self._skewed.discard(sensor)
            self._fault("clock_skew", sensor, False,
                        f"device clock of sensor {sensor} agrees again", now_ns)

    def adopt(self, fresh: Pipeline) -> None:
        """Take `fresh`'s depot register, routes, rules and ranges (a config reload), carrying
        the rules' state over as a restart would; raises, changing nothing, if it does not fit."""
        fresh.engine.take_over(self.engine)
        self._depot, self._router, self.engine = fresh._depot, fresh._router, fresh.engine
        self._reading_lines = fresh._reading_lines
        self._reading_lines.offset_ns = self._offset_ns
        self._wakes = fresh.engine.wakes
        self._plausible, self._plausible_per_sensor = fresh._plausible, fresh._plausible_per_sensor
        self.devices.adopt(fresh.devices)

    def set_record_offset(self, offset_ns: int) -> None:
        """Wall clock minus the pipeline's clock: added to the time of every point written."""
        self._offset_ns = offset_ns
        self._reading_lines.offset_ns = offset_ns

    def _take_wakes(self) -> None:
        wakes = self._wakes
        if wakes:
            self._wake(min(wakes))
            wakes.clear()

    def _flush(self, receipts: list[tuple[bytes, int]] | None = None) -> Awaitable[None] | None:
        lines, self._batch = self._batch, []
        if not lines and not receipts:
            return None
        return self._store(lines, receipts or [])

    def _take(self, reading: Reading, now_ns: int, source: str) -> None:
        try:
            points = self._reading_lines(reading)
        except ValueError as exc:  # text line protocol cannot carry; the rules still run
            log.error("reading from %s not writable to InfluxDB: %s", source, exc,
                      extra={"sensor": reading.sensor, "topic": source})
            points = []
        # Inlined `_emit_point`: one call fewer per reading on the hot path.
        if points:
            self.points_out += len(points)
            self._batch += points
        device_s = reading.values.get("device_time_s")
        if isinstance(device_s, float):
            self._judge_skew(reading, device_s, now_ns)
        for listener in self.listeners:
            try:
                listener(reading)
            except Exception:  # a view's bug must not stop the gateway
                log.exception("reading listener failed on %s", reading.sensor)
        try:
            outcomes = self.engine.outcomes(reading, now_ns)
        except Exception as exc:
            # A rule's bug on one odd reading must not end the gateway, nor make the broker
            # send that message for ever (it would stay unacknowledged): counted, logged once
            # per sensor and error, and its points are still written.
            self.rule_errors += 1
            if (reading.sensor, type(exc).__name__) not in self._rule_errors_logged:
                self._rule_errors_logged.add((reading.sensor, type(exc).__name__))
                log.exception("rules failed on a reading of %s from %s (logged once; counted "
                              "in rule_errors)", reading.sensor, source)
            return
        if outcomes:  # most readings change nothing
            self._apply(outcomes)
        if self._wakes:  # an opening door or a tamper flag: its debounce ends at a deadline
            self._take_wakes()

    def input_state(self, component: str, up: bool, now_ns: int) -> None:
        """A gateway input (MQTT broker, a serial port) came up or went down."""
        self.gateway_reading(component, {"up": up}, now_ns)

    def gateway_reading(self, component: str, values: Mapping[str, float | bool],
                        now_ns: int) -> None:
        """The gateway's own health (inputs, spool) as a `gateway` point and for the rules."""
        self._emit_point(line("gateway", {"site": self._depot.site, "component": component},
                              values, now_ns + self._offset_ns))
        reading = Reading(sensor=f"{GATEWAY_PREFIX}{component}", at_ns=now_ns, values=values)
        self._apply(self.engine.outcomes(reading, now_ns))
        self._take_wakes()
        self._flush()

    def zone_request(self, storehouse: str, values: Mapping[str, FieldValue],
                     now_ns: int) -> list[Fact]:
        """An officer's request to arm or disarm a zone or walk-test it, through the rules like a
        reading; the `zone` (`walk_test`) facts say what came of it (none when zone arming is
        switched off)."""
        reading = Reading(sensor=f"{ZONE_PREFIX}{storehouse}", at_ns=now_ns, values=values)
        outcomes = self.engine.outcomes(reading, now_ns)
        self._apply(outcomes)
        self._take_wakes()
        self._flush()
        return [o for o in outcomes
                if isinstance(o, Fact) and o.measurement in ("zone", "walk_test")]

    def zone_views(self, now_ns: int) -> list[ZoneView]:
        """Every storehouse's zone now (none when zone arming is switched off)."""
        rule = self.engine.rule("zone_arming")
        return rule.views(now_ns) if isinstance(rule, ZoneArmingRule) else []

    def request(self, sensor: str, values: Mapping[str, FieldValue], now_ns: int) -> list[Fact]:
        """An officer's request through the rules like a reading (a count on demand); the facts
        it led to."""
        outcomes = self.engine.outcomes(Reading(sensor=sensor, at_ns=now_ns, values=values),
                                        now_ns)
        self._apply(outcomes)
        self._take_wakes()
        self._flush()
        return [o for o in outcomes if isinstance(o, Fact)]

    def snapshot(self) -> dict[str, object]:
        """Engine and alert state for the state file."""
        return {"engine": self.engine.snapshot(), "alerts": self.alerts.snapshot(),
                "devices": self.devices.snapshot()}

    def restore(self, state: Mapping[str, object]) -> None:
        """Take back engine and alert state after a restart (raises on a damaged state)."""
        engine, alerts = state.get("engine", {}), state.get("alerts", [])
        if not isinstance(engine, dict) or not isinstance(alerts, list):
            raise TypeError("engine state: `engine` is not an object or `alerts` not a list")
        self.engine.restore(engine)
        self.alerts.restore(alerts)
        devices = state.get("devices", {})
        if isinstance(devices, dict):
            self.devices.restore(devices)

    def tick(self, now_ns: int, *, asked_only: bool = False) -> None:
        """Let time-driven rules (sustain, silence) fire; `asked_only`: only the rules whose
        asked-for deadline (a debounce's end) has come (`Engine.tick_asked`)."""
        verdict = self.engine.tick_asked(now_ns) if asked_only else self.engine.tick(now_ns)
        self._apply([*verdict.facts, *verdict.transitions])
        self._take_wakes()
        self._flush()

    def _decode(self, raw: RawMessage, now_ns: int | None = None) -> list[Reading]:
        route = self._router.route(raw.source)
        if route is None:
            raise DecodeError("no subscription matches this topic")
        if len(raw.payload) > route.max_payload_bytes:
            raise DecodeError(
                f"payload of {len(raw.payload)} bytes exceeds {route.max_payload_bytes}"
            )
        try:
            readings = route.decoder.decode(raw, route.sensor)
        except ImplausibleValue as exc:
            exc.sensor = exc.sensor or route.sensor
            raise
        # Unknown sensors are refused, availability and notes taken aside.
        return self.devices.sort(readings, raw.received_ns if now_ns is None else now_ns)

    def _apply(self, outcomes: Sequence[Outcome]) -> None:
        # Facts before transitions, as a `Verdict` sorts them, each kind in the rules' order.
        for fact in outcomes:
            if not isinstance(fact, Fact):
                continue
            try:
                self._emit_point(line(fact.measurement, {"site": self._depot.site, **fact.tags},
                                      fact.fields, fact.at_ns + self._offset_ns))
            except ValueError as exc:
                log.error("%s fact not writable to InfluxDB: %s", fact.measurement, exc)
            for listener in self.fact_listeners:
                listener(fact)
        for transition in outcomes:
            if isinstance(transition, Fact):
                continue
            alert = self.alerts.apply(transition)
            if alert is None:
                continue
            # A silent alarm (duress) stays off the dashboards' `alert` points.
            try:
                if alert.rule not in SILENT_RULES:
                    self._emit_point(alert_line(alert, self._depot.site, self._offset_ns))
            except ValueError as exc:
                log.error("alert %s not writable to InfluxDB: %s", alert.key, exc,
                          extra={"alert_key": alert.key})
            for notify in self._notify:
                notify(alert)

    def _emit_point(self, point: str) -> None:
        self.points_out += 1
        self._batch.append(point)
