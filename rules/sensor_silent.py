"""A sensor that stops reporting is itself an alarm: fail secure (PSSM.md supervision rows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import Depot, Supervision
from rules.input_lost import GATEWAY_PREFIX, NOT_SENSOR_INPUTS

__all__ = ["SensorSilentRule", "SensorSilentRuleConfig"]

_NS = 1_000_000_000


class SensorSilentRuleConfig(RuleConfigBase):
    """Longest silence per supervision class before "sensor silent" fires."""

    type: Literal["sensor_silent"] = "sensor_silent"
    fixed_severities: ClassVar[dict[str, Severity]] = {"sensor_silent": Severity.ALARM}
    # EN 50131 grade 3-4 interconnection monitoring for wired/serial devices.
    wired_s: float = Field(default=10.0, gt=0)
    # Three missed 60 s heartbeats: stricter than EN grade 3's ~20 min.
    radio_s: float = Field(default=180.0, gt=0)
    climate_s: float = Field(default=900.0, gt=0)

    def build(self, depot: Depot) -> SensorSilentRule:
        """The rule for every sensor of the depot."""
        return SensorSilentRule(self, depot)


class SensorSilentRule:
    """Fires when a sensor has sent nothing for longer than its class allows; any reading clears."""

    def __init__(self, config: SensorSilentRuleConfig, depot: Depot) -> None:
        self._depot = depot
        limits = {
            Supervision.WIRED: config.wired_s,
            Supervision.RADIO: config.radio_s,
            Supervision.CLIMATE: config.climate_s,
        }
        # A sensor bound to a device profile has its own limit (its check-in interval x 2.5).
        own = depot.silent_after_s
        self._limit_ns = {s.id: int(own.get(s.id, limits[s.supervision]) * _NS)
                          for s in depot.sensors.values()}
        # The bridge each sensor reports through: its silence alarm carries it, so that a
        # bridge_offline fault mutes it (README "Availability").
        self._bridge_of = {s: bridge for bridge, sensors in depot.bridges.items()
                           for s in sensors}
        # Unknown until first heard: the clock starts at the engine's first event, so a sensor
        # that never reports after a restart is reported silent (fail secure).
        self._last_seen: dict[str, int] = {}
        self._firing: set[str] = set()
        # Gateway inputs down since when: their sensors' silence is the input's, not theirs.
        self._input_down: dict[str, int] = {}
        # The one input each sensor reports through, where the config tells (the alarm's
        # `input`, which the default inhibition matches against `input_lost`).
        fed_by: dict[str, list[str]] = {}
        for component, sensors in depot.input_sensors.items():
            for sensor in sensors:
                fed_by.setdefault(sensor, []).append(component)
        self._input_of = {s: inputs[0] for s, inputs in fed_by.items() if len(inputs) == 1}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Any reading proves the sensor alive; an input coming back restarts the clocks."""
        if reading.sensor not in self._limit_ns:
            if reading.sensor.startswith(GATEWAY_PREFIX):
                return self._input(reading, now_ns)
            return []
        last_seen = self._last_seen
        if len(last_seen) < len(self._limit_ns):  # `_start`'s own test, without the call
            self._start(now_ns)
        last_seen[reading.sensor] = now_ns
        if reading.sensor in self._firing:
            self._firing.discard(reading.sensor)
            return [self._transition(TransitionKind.RESOLVED, reading.sensor, now_ns,
                                     "reporting again")]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Fire for every sensor past its silence limit."""
        self._start(now_ns)
        out: list[Outcome] = []
        for sensor, limit_ns in self._limit_ns.items():
            silent_ns = now_ns - self._last_seen[sensor]
            if sensor not in self._firing and silent_ns > limit_ns:
                self._firing.add(sensor)
                out.append(self._transition(
                    TransitionKind.FIRING, sensor, now_ns,
                    f"silent for {format_duration(silent_ns / _NS)}",
                ))
        return out

    def _input(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """A broker or port that was down is back: every sensor it feeds that was reporting
        until it went down gets its full limit from now to report again, and its silent alarm
        ends (the input_lost alarm stands for that gap). Sensors silent before the input failed
        stay so, and so do sensors on other inputs. Where the config does not tell which
        sensors an input feeds (a serial decoder naming sensors from the frame), it counts for
        all: a sensor that really died meanwhile is reported one limit later."""
        up = reading.values.get("up")
        component = reading.sensor.removeprefix(GATEWAY_PREFIX)
        if component in NOT_SENSOR_INPUTS:
            return []
        if up is False:
            self._input_down.setdefault(component, now_ns)
            return []
        down_ns = self._input_down.pop(component, None)
        if up is not True or down_ns is None:
            return []
        self._start(now_ns)
        fed = self._depot.input_sensors.get(component)
        out: list[Outcome] = []
        for sensor, limit_ns in self._limit_ns.items():
            if fed is not None and sensor not in fed:
                continue  # on another input: its silence is its own
            if self._last_seen[sensor] < down_ns - limit_ns:
                continue  # silent before the input went down
            self._last_seen[sensor] = now_ns
            if sensor in self._firing:
                self._firing.discard(sensor)
                out.append(self._transition(TransitionKind.RESOLVED, sensor, now_ns,
                                            f"silence was the gateway input {component}'s; "
                                            "waiting for the sensor to report"))
        return out

    def snapshot(self) -> dict[str, Any]:
        """When each sensor was last heard, which are reported silent, inputs down."""
        return {"last_seen": dict(self._last_seen), "firing": sorted(self._firing),
                "inputs_down": dict(self._input_down)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back last-heard times: silence across a restart still counts."""
        self._last_seen = {s: int(t) for s, t in state.get("last_seen", {}).items()
                           if s in self._limit_ns}
        self._firing = {s for s in state.get("firing", []) if s in self._limit_ns}
        self._input_down = {str(c): int(t) for c, t in state.get("inputs_down", {}).items()}

    def _start(self, now_ns: int) -> None:
        # Runs per reading: once every sensor has a clock (the keys are a subset of
        # `_limit_ns`), a length check instead of a loop over the whole depot.
        if len(self._last_seen) < len(self._limit_ns):
            for sensor in self._limit_ns:
                self._last_seen.setdefault(sensor, now_ns)

    def _transition(self, kind: TransitionKind, sensor: str, now_ns: int,
                    text: str) -> Transition:
        info = self._depot.sensors[sensor]
        name = self._depot.storehouses[info.storehouse].name
        return Transition(
            kind=kind, rule="sensor_silent", subject=sensor, severity=Severity.ALARM,
            at_ns=now_ns, storehouse=info.storehouse, summary=f"{name}: {sensor} {text}",
            facts={"supervision": info.supervision.value,
                   **({"input": self._input_of[sensor]} if sensor in self._input_of else {}),
                   **({"bridge": self._bridge_of[sensor]} if sensor in self._bridge_of else {})},
        )
