"""Condensation risk: air within a few degrees of its dew point (PSSM.md storage climate)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.climate import climate_transition, dew_point_c
from rules.depot import Depot, SensorKind

__all__ = ["CondensationRule", "CondensationRuleConfig"]


class CondensationRuleConfig(RuleConfigBase):
    """Air temperature minus dew point below `margin_c`: moisture will settle on cold metal."""

    type: Literal["condensation"] = "condensation"
    margin_c: float = Field(default=3.0, gt=0)
    hysteresis_c: float = Field(default=1.0, ge=0)

    def build(self, depot: Depot) -> CondensationRule:
        """The rule for every climate sensor."""
        return CondensationRule(self, depot)


class CondensationRule:
    """Needs temperature and humidity in the same reading, as climate sensors send them."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.CLIMATE})

    def __init__(self, config: CondensationRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._margin = config.margin_c
        self._clear = config.margin_c + config.hysteresis_c
        self._sensors = {s.id for s in depot.sensors_of(SensorKind.CLIMATE)}
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Compare the air temperature with its dew point."""
        t, rh = reading.values.get("temperature_c"), reading.values.get("humidity_pct")
        if reading.sensor not in self._sensors or not isinstance(t, float) \
                or not isinstance(rh, float):
            return []
        dew = dew_point_c(t, rh)
        margin = t - dew
        if margin < self._margin and reading.sensor not in self._firing:
            self._firing.add(reading.sensor)
            kind, text = TransitionKind.FIRING, "condensation risk"
        elif margin >= self._clear and reading.sensor in self._firing:
            self._firing.discard(reading.sensor)
            kind, text = TransitionKind.RESOLVED, "condensation risk over"
        else:
            return []
        return [climate_transition(
            self._depot, kind, "condensation", reading.sensor, Severity.WARNING, now_ns,
            f"{text}: {t:.1f} °C, dew point {dew:.1f} °C",
            {"temperature_c": t, "humidity_pct": rh, "dew_point_c": dew},
        )]

    def tick(self, now_ns: int) -> list[Outcome]:
        """Nothing depends on time alone."""
        return []

    def snapshot(self) -> dict[str, Any]:
        """Sensors at risk."""
        return {"firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back sensors at risk."""
        self._firing = {s for s in state.get("firing", []) if s in self._sensors}
