"""A device's battery running low is reported at once (PSSM.md: battery low at once)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.depot import Depot

__all__ = ["BatteryLowRule", "BatteryLowRuleConfig"]


class BatteryLowRuleConfig(RuleConfigBase):
    """The device's own low-battery flag, or its charge below `min_pct`."""

    type: Literal["battery_low"] = "battery_low"
    fixed_severities: ClassVar[dict[str, Severity]] = {"battery_low": Severity.WARNING}
    min_pct: float = Field(default=20.0, ge=0, le=100)
    # A battery reading hovers around the limit as temperature changes: clear only above it.
    hysteresis_pct: float = Field(default=5.0, ge=0)

    def build(self, depot: Depot) -> BatteryLowRule:
        """The rule for every sensor of the depot."""
        return BatteryLowRule(self, depot)


class BatteryLowRule:
    """Warns per sensor; a silent sensor with a flat battery is the supervision rule's job."""

    def __init__(self, config: BatteryLowRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._min = config.min_pct
        self._clear = config.min_pct + config.hysteresis_pct
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Check the flag and the charge."""
        values = reading.values
        flag = values.get("battery_low")
        pct = values.get("battery_pct")
        if flag is None and pct is None:  # RFID and badge reads, Tasmota climate
            return []
        sensor = self._depot.sensors.get(reading.sensor)
        if sensor is None:
            return []
        low = flag is True or (isinstance(pct, float) and pct < self._min)
        ok = flag is not True and (pct is None or (isinstance(pct, float) and pct >= self._clear))
        if low and sensor.id not in self._firing:
            self._firing.add(sensor.id)
            kind, summary = TransitionKind.FIRING, "battery low"
        elif ok and sensor.id in self._firing:
            self._firing.discard(sensor.id)
            kind, summary = TransitionKind.RESOLVED, "battery ok"
        else:
            return []  # most readings: no text formatted for a transition that is not made
        text = f"{pct:.0f} %" if isinstance(pct, float) else "low-battery flag"
        summary = f"{summary} ({text})"
        name = self._depot.storehouses[sensor.storehouse].name
        return [Transition(
            kind=kind, rule="battery_low", subject=sensor.id, severity=Severity.WARNING,
            at_ns=now_ns, storehouse=sensor.storehouse, summary=f"{name}: {sensor.id} {summary}",
            facts={"sensor": sensor.id, **({"battery_pct": pct} if isinstance(pct, float)
                                           else {})},
        )]

    def tick(self, now_ns: int) -> list[Outcome]:
        """Nothing depends on time alone."""
        return []

    def snapshot(self) -> dict[str, Any]:
        """Sensors reported low."""
        return {"firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back sensors reported low."""
        self._firing = {s for s in state.get("firing", []) if s in self._depot.sensors}
