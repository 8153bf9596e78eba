"""Water in a store is an alarm, armed or not: a leak probe on the floor of a magazine or vault
(Zigbee2MQTT `water_leak`, any decoder's `water_leak` field).

Ammunition must be kept dry (IATG 06.30 storage conditions; PSSM.md "Storage climate": humidity
halves double-base propellant life [Q]). A leak or flooding wets packaging and propellant long
before the store's humidity climbs past the climate rule's 24 h limits, so it is raised at once.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.debounce import DebouncedFlags, FlagRule
from rules.depot import Depot, SensorKind

__all__ = ["WaterLeakRule", "WaterLeakRuleConfig"]


class WaterLeakRuleConfig(RuleConfigBase):
    """`water_leak.<sensor>` while a leak probe reports water; resolved when it reports dry."""

    type: Literal["water_leak"] = "water_leak"
    # Someone must go and look (move the stock, find the leak): an alarm, checked on site.
    severity: Literal["warning", "alarm", "critical"] = "alarm"
    # As the other binary sensors (EN 50131-1 §8.9.1, 400 ms): a probe's blip is not processed.
    debounce_ms: float = Field(default=400.0, ge=0)

    def build(self, depot: Depot) -> WaterLeakRule:
        """The rule for every water-leak probe of the depot."""
        return WaterLeakRule(self, depot)


class WaterLeakRule(FlagRule):
    """Fires when `water_leak: true` outlasts the debounce; resolves when the probe is dry."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.WATER_LEAK})

    def __init__(self, config: WaterLeakRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._severity = Severity(config.severity)
        self._flags = DebouncedFlags(int(config.debounce_ms * 1_000_000))
        self._subjects = {s.id for s in depot.sensors_of(SensorKind.WATER_LEAK)}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow the probe's water flag."""
        wet = reading.values.get("water_leak")
        if not isinstance(wet, bool) or reading.sensor not in self._subjects:
            return []
        return self._follow(reading.sensor, wet, reading.at_ns, now_ns)

    def _flagged(self, kind: TransitionKind, sensor_id: str, now_ns: int) -> Transition:
        storehouse = self._depot.sensors[sensor_id].storehouse
        name = self._depot.storehouses[storehouse].name
        wet = kind is TransitionKind.FIRING
        text = "water detected (check the stock for wet packaging)" if wet else "dry again"
        return Transition(kind=kind, rule="water_leak", subject=sensor_id,
                          severity=self._severity, at_ns=now_ns, storehouse=storehouse,
                          summary=f"{name}: {sensor_id} {text}",
                          facts={"sensor": sensor_id, "water_leak": wet})
