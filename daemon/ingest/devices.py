"""What the gateway knows of each configured device: last heard, availability, decoder errors,
fields no rule reads, values skipped; a device or bridge going offline as one fault (issue 26)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import Reading
from drivers.decoders.availability import AVAILABLE, BRIDGE_PREFIX
from drivers.decoders.base import SECURITY_FIELDS, SKIPPED, UNHANDLED
from drivers.routes import Route
from rules.depot import DETECTOR_FIELDS, Depot, SensorKind

__all__ = ["DeviceWatch", "handled_fields"]

log = logging.getLogger(__name__)

# (fault, subject, active, summary, now_ns): the pipeline's fault report.
FaultReport = Callable[[str, str, bool, str, int], None]
_NOTES = frozenset({UNHANDLED, SKIPPED, AVAILABLE})


def handled_fields(kind: SensorKind) -> frozenset[str]:
    """The security fields some rule reads for a sensor of `kind` (tamper: every kind)."""
    if kind is SensorKind.DOOR:
        return frozenset({"open", "tamper"})
    if kind is SensorKind.KEYPAD:
        return frozenset({"action", "panic", "tamper"})
    if kind in DETECTOR_FIELDS:
        return frozenset({DETECTOR_FIELDS[kind], "tamper"})
    return frozenset({"tamper"})


class DeviceWatch:
    """Sorts decoded readings before the rules: availability aside (never a sign of life),
    notes counted, security fields no rule reads counted with one fault per device."""

    def __init__(self, depot: Depot, fault: FaultReport) -> None:
        self._fault = fault
        self._depot = depot
        # Per sensor: the value names that send a reading down the slow path. One set per
        # kind, shared: a set per sensor took 1.4 MiB with 2,000 sensors (issue 29).
        by_kind = {k: (SECURITY_FIELDS - handled_fields(k)) | _NOTES for k in SensorKind}
        self._watch = {s.id: by_kind[s.kind] for s in depot.sensors.values()}
        self._failed: set[str] = set()
        self._reset()

    def _reset(self) -> None:
        self.last_heard: dict[str, int] = {}
        # Sensor or `bridge.<id>` -> [available, since (ns)].
        self.availability: dict[str, list[Any]] = {}
        self.decode_errors: dict[str, int] = {}
        self.last_error: dict[str, str] = {}
        self.unhandled: dict[str, dict[str, int]] = {}
        self.skipped: dict[str, int] = {}

    def sort(self, readings: list[Reading], now_ns: int) -> list[Reading]:
        """The readings for the rules; availability and notes taken aside. A DecodeError for
        a reading of a sensor not in the config."""
        watch_of, last_heard = self._watch, self.last_heard
        for reading in readings:
            watch = watch_of.get(reading.sensor)
            if watch is None or not watch.isdisjoint(reading.values):
                try:
                    return self._sort_slowly(readings, now_ns)
                except DecodeError:
                    raise
                except Exception:
                    # A bug in the counting must not cost a door's reading its alarm: the
                    # readings go on as they came, availability alone held back.
                    if reading.sensor not in self._failed:
                        self._failed.add(reading.sensor)
                        log.exception("device watch failed on a reading of %s; passed on as "
                                      "decoded (logged once per sensor)", reading.sensor)
                    return [r for r in readings
                            if r.sensor in watch_of and AVAILABLE not in r.values]
            last_heard[reading.sensor] = reading.at_ns
        return readings

    def _sort_slowly(self, readings: list[Reading], now_ns: int) -> list[Reading]:
        out: list[Reading] = []
        for reading in readings:
            sensor, values = reading.sensor, reading.values
            watch = self._watch.get(sensor)
            if watch is None:
                if sensor.startswith(BRIDGE_PREFIX) and AVAILABLE in values:
                    self._bridge(sensor.removeprefix(BRIDGE_PREFIX), values[AVAILABLE] is True,
                                 reading.at_ns, now_ns)
                    continue
                raise DecodeError(f"unknown sensor {sensor!r} (not in the config)")
            if AVAILABLE in values:
                # Reachable or not, as the device or its bridge says: never a sign of life.
                self._available(sensor, values[AVAILABLE] is True, reading.at_ns, now_ns)
                continue
            kept = reading if watch.isdisjoint(values) else self._notes(reading, watch, now_ns)
            if kept is not None:
                self.last_heard[sensor] = reading.at_ns
                out.append(kept)
        return out

    def _notes(self, reading: Reading, watch: frozenset[str], now_ns: int) -> Reading | None:
        sensor, values = reading.sensor, reading.values
        if SKIPPED in values:
            self.skipped[sensor] = self.skipped.get(sensor, 0) + 1
        unhandled = sorted(k for k in values if k in watch and k in SECURITY_FIELDS)
        if UNHANDLED in values:
            unhandled.append(str(values[UNHANDLED]))
        if unhandled:
            self._unhandled(sensor, unhandled, now_ns)
        rest = {k: v for k, v in values.items() if k != SKIPPED and k != UNHANDLED}
        if not rest and SKIPPED in values:
            return None  # a probe that failed to read says nothing of the sensor
        return Reading(sensor, reading.at_ns, rest)

    def _unhandled(self, sensor: str, fields: list[str], now_ns: int) -> None:
        counts = self.unhandled.setdefault(sensor, {})
        first = not counts
        for name in fields:
            counts[name] = counts.get(name, 0) + 1
        if first:
            kind = self._depot.sensors[sensor].kind.value
            log.warning("sensor %s (a %s) sends %s, which no rule reads: counted as unhandled "
                        "(logged once; see `depotwatch devices`)", sensor, kind, ", ".join(fields))
            self._fault("unhandled_field", sensor, True,
                        f"sensor {sensor} (a {kind}) sends {', '.join(fields)}, which no rule "
                        f"reads: check its profile and kind (`depotwatch devices`)", now_ns)

    def _available(self, sensor: str, available: bool, at_ns: int, now_ns: int) -> None:
        was = self.availability.get(sensor)
        self.availability[sensor] = [available, at_ns]
        if was is not None and was[0] is available:
            return
        # Its own last will or availability topic says so now: waiting for its silence limit
        # (check-in x 2.5, hours for a Zigbee contact) would leave the store unwatched.
        if available:
            self._fault("device_offline", sensor, False, f"sensor {sensor} is online again",
                        now_ns)
            return
        log.warning("sensor %s reports itself offline", sensor)
        self._fault("device_offline", sensor, True,
                    f"sensor {sensor} reports itself offline (its availability topic): "
                    "nothing it senses is heard until it is back", now_ns)

    def _bridge(self, bridge: str, available: bool, at_ns: int, now_ns: int) -> None:
        key = f"{BRIDGE_PREFIX}{bridge}"
        was = self.availability.get(key)
        self.availability[key] = [available, at_ns]
        if was is not None and was[0] is available:
            return
        behind = sorted(self._depot.bridges.get(bridge, ()))
        if available:
            self._fault("bridge_offline", bridge, False, f"bridge {bridge} is online again",
                        now_ns)
            return
        log.warning("bridge %s is offline: %d sensor(s) behind it", bridge, len(behind))
        self._fault("bridge_offline", bridge, True,
                    f"bridge {bridge} offline; sensors behind it: {', '.join(behind) or 'none'}"
                    " (their silence alarms wait for the bridge)", now_ns)

    def decode_failed(self, route: Route | None, reason: str) -> None:
        """A payload for a configured sensor was dead-lettered (the dead letters count the
        rest per topic, bounded: a flood of unknown topics must not grow this)."""
        key = route.sensor if route is not None else ""
        if key not in self._watch:
            return
        self.decode_errors[key] = self.decode_errors.get(key, 0) + 1
        self.last_error[key] = reason[:200]

    def adopt(self, fresh: DeviceWatch) -> None:
        """A reloaded config's depot, keeping what was counted."""
        self._depot, self._watch = fresh._depot, fresh._watch

    def snapshot(self) -> dict[str, Any]:
        """Everything counted, for the state file (`depotwatch devices` reads it)."""
        return {"last_heard": dict(self.last_heard), "availability": dict(self.availability),
                "decode_errors": dict(self.decode_errors), "last_error": dict(self.last_error),
                "unhandled": {s: dict(c) for s, c in self.unhandled.items()},
                "skipped": dict(self.skipped)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back what was counted before a restart; a damaged section is dropped, never
        the engine and alert state saved beside it."""
        try:
            self._restore(state)
        except (AttributeError, TypeError, ValueError, IndexError) as exc:
            log.warning("device counts in the state file unreadable (%s): starting them afresh",
                        exc)
            self._reset()

    def _restore(self, state: Mapping[str, Any]) -> None:
        self.last_heard = {str(k): int(v) for k, v in state.get("last_heard", {}).items()}
        self.availability = {str(k): [bool(v[0]), int(v[1])]
                             for k, v in state.get("availability", {}).items()}
        self.decode_errors = {str(k): int(v) for k, v in state.get("decode_errors", {}).items()}
        self.last_error = {str(k): str(v) for k, v in state.get("last_error", {}).items()}
        self.unhandled = {str(s): {str(f): int(n) for f, n in c.items()}
                          for s, c in state.get("unhandled", {}).items()}
        self.skipped = {str(k): int(v) for k, v in state.get("skipped", {}).items()}
