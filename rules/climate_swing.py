"""Daily temperature swing: max - min over 24 h above a limit stresses containers (PSSM.md)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.climate import climate_transition
from rules.depot import Depot, SensorKind

__all__ = ["ClimateSwingRule", "ClimateSwingRuleConfig"]

_HOUR_NS = 3600 * 1_000_000_000


class ClimateSwingRuleConfig(RuleConfigBase):
    """Temperature max - min within the last `window_h` hours above `max_swing_c`."""

    type: Literal["climate_swing"] = "climate_swing"
    max_swing_c: float = Field(default=10.0, gt=0)
    window_h: int = Field(default=24, ge=1, le=168)
    hysteresis_c: float = Field(default=1.0, ge=0)

    def build(self, depot: Depot) -> ClimateSwingRule:
        """The rule for every climate sensor."""
        return ClimateSwingRule(self, depot)


class ClimateSwingRule:
    """Keeps hourly min/max per sensor, so memory and snapshots stay small (24 pairs)."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.CLIMATE})

    def __init__(self, config: ClimateSwingRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._config = config
        self._sensors = {s.id for s in depot.sensors_of(SensorKind.CLIMATE)}
        self._hours: dict[str, dict[int, tuple[float, float]]] = {s: {} for s in self._sensors}
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Fold the temperature into its hour, then compare the window's swing."""
        t = reading.values.get("temperature_c")
        if reading.sensor not in self._sensors or not isinstance(t, float):
            return []
        hours = self._hours[reading.sensor]
        hour = reading.at_ns // _HOUR_NS
        bucket = hours.get(hour)
        if bucket is None:
            hours[hour] = (t, t)
            # Hours leave the window only when a new one starts (a sensor's readings reach the
            # rules in time order: the engine skips older ones).
            for old in [h for h in hours if h <= hour - self._config.window_h]:
                del hours[old]
        elif t < bucket[0] or t > bucket[1]:
            hours[hour] = (min(bucket[0], t), max(bucket[1], t))
        if len(hours) == 1:
            low, high = hours[hour]
            swing = high - low
        else:
            swing = max(h for _, h in hours.values()) - min(lo for lo, _ in hours.values())
        if swing > self._config.max_swing_c and reading.sensor not in self._firing:
            self._firing.add(reading.sensor)
            kind, text = TransitionKind.FIRING, "above"
        elif (swing <= self._config.max_swing_c - self._config.hysteresis_c
              and reading.sensor in self._firing):
            self._firing.discard(reading.sensor)
            kind, text = TransitionKind.RESOLVED, "back within"
        else:
            return []
        return [climate_transition(
            self._depot, kind, "climate_swing", reading.sensor, Severity.WARNING, now_ns,
            f"temperature swing {swing:.1f} °C in {self._config.window_h} h {text} "
            f"{self._config.max_swing_c:g} °C",
            {"swing_c": round(swing, 2)},
        )]

    def tick(self, now_ns: int) -> list[Outcome]:
        """The swing changes only with readings."""
        return []

    def snapshot(self) -> dict[str, Any]:
        """Hourly min/max per sensor and the sensors warned."""
        return {"hours": {s: {str(h): list(v) for h, v in hours.items()}
                          for s, hours in self._hours.items()},
                "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back hourly min/max."""
        for sensor, hours in state.get("hours", {}).items():
            if sensor in self._hours:
                self._hours[sensor] = {int(h): (float(v[0]), float(v[1]))
                                       for h, v in hours.items()}
        self._firing = {s for s in state.get("firing", []) if s in self._sensors}
