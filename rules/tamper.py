"""A tamper flag on any device is an alarm, armed or not (EN 50131-1 Table 7)."""

from __future__ import annotations

from typing import Literal

from daemon.model import Reading, Severity, Transition, TransitionKind
from rules.base import RuleConfigBase
from rules.depot import Depot

__all__ = ["TamperRule", "TamperRuleConfig"]


class TamperRuleConfig(RuleConfigBase):
    """Tamper flag raised on a sensor; resolves when the device reports it cleared."""

    type: Literal["tamper"] = "tamper"

    def build(self, depot: Depot) -> TamperRule:
        """The rule for every sensor of the depot."""
        return TamperRule(depot)


class TamperRule:
    """Fires on `tamper: true` from any known sensor."""

    def __init__(self, depot: Depot) -> None:
        self._depot = depot
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Transition]:
        """Follow the sensor's tamper flag."""
        tamper = reading.values.get("tamper")
        sensor = self._depot.sensors.get(reading.sensor)
        if sensor is None or not isinstance(tamper, bool):
            return []
        name = self._depot.storehouses[sensor.storehouse].name
        if tamper and sensor.id not in self._firing:
            self._firing.add(sensor.id)
            kind, text = TransitionKind.FIRING, "tamper switch triggered"
        elif not tamper and sensor.id in self._firing:
            self._firing.discard(sensor.id)
            kind, text = TransitionKind.RESOLVED, "tamper switch restored"
        else:
            return []
        return [Transition(
            kind=kind, rule="tamper", subject=sensor.id, severity=Severity.CRITICAL,
            at_ns=now_ns, storehouse=sensor.storehouse,
            summary=f"{name}: {sensor.id} {text}", facts={"tamper": tamper},
        )]

    def tick(self, now_ns: int) -> list[Transition]:
        """Nothing depends on time alone."""
        return []
