"""A tamper flag on any device is an alarm, armed or not (EN 50131-1 Table 7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.debounce import DebouncedFlags, FlagRule
from rules.depot import Depot

__all__ = ["TamperRule", "TamperRuleConfig"]


class TamperRuleConfig(RuleConfigBase):
    """Tamper flag raised on a sensor; resolves when the device reports it cleared."""

    type: Literal["tamper"] = "tamper"
    fixed_severities: ClassVar[dict[str, Severity]] = {"tamper": Severity.CRITICAL}
    # EN 50131-1 §8.9.1: tamper signals shorter than 400 ms are not processed.
    debounce_ms: float = Field(default=400.0, ge=0)

    def build(self, depot: Depot) -> TamperRule:
        """The rule for every sensor of the depot."""
        return TamperRule(self, depot)


class TamperRule(FlagRule):
    """Fires when `tamper: true` from a known sensor outlasts the debounce time."""

    def __init__(self, config: TamperRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._flags = DebouncedFlags(int(config.debounce_ms * 1_000_000))

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow the sensor's tamper flag."""
        tamper = reading.values.get("tamper")
        # The flag first: RFID and badge reads carry none.
        if not isinstance(tamper, bool) or reading.sensor not in self._depot.sensors:
            return []
        if tamper:
            if self._flags.raised(reading.sensor, reading.at_ns, now_ns):
                return [self._transition(TransitionKind.FIRING, reading.sensor, now_ns,
                                         "tamper switch triggered")]
            return []
        flags = self._flags
        # Nearly every reading says "no tamper" while none is up: no call for those.
        if (flags.since or flags.firing) and flags.lowered(reading.sensor):
            return [self._transition(TransitionKind.RESOLVED, reading.sensor, now_ns,
                                     "tamper switch restored")]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Confirm tamper flags that outlasted the debounce."""
        return [self._transition(TransitionKind.FIRING, sensor, now_ns, "tamper switch triggered")
                for sensor in self._flags.confirmed_by(now_ns)]

    def _transition(self, kind: TransitionKind, sensor_id: str, now_ns: int,
                    text: str) -> Transition:
        sensor = self._depot.sensors[sensor_id]
        name = self._depot.storehouses[sensor.storehouse].name
        return Transition(
            kind=kind, rule="tamper", subject=sensor_id, severity=Severity.CRITICAL,
            at_ns=now_ns, storehouse=sensor.storehouse,
            summary=f"{name}: {sensor_id} {text}",
            facts={"sensor": sensor_id, "tamper": kind is TransitionKind.FIRING},
        )

    def snapshot(self) -> dict[str, Any]:
        """Tamper-since times and firing sensors."""
        return self._flags.snapshot()

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back tamper-since times and firing sensors."""
        self._flags.restore(state, self._depot.sensors)
