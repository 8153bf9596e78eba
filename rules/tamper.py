"""A tamper flag on any device is an alarm, armed or not (EN 50131-1 Table 7)."""

from __future__ import annotations

from typing import ClassVar, Literal

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
        self._subjects = depot.sensors

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow the sensor's tamper flag."""
        tamper = reading.values.get("tamper")
        # The flag first: RFID and badge reads carry none.
        if not isinstance(tamper, bool) or reading.sensor not in self._subjects:
            return []
        return self._follow(reading.sensor, tamper, reading.at_ns, now_ns)

    def _flagged(self, kind: TransitionKind, sensor_id: str, now_ns: int) -> Transition:
        sensor = self._depot.sensors[sensor_id]
        name = self._depot.storehouses[sensor.storehouse].name
        tamper = kind is TransitionKind.FIRING
        text = "tamper switch triggered" if tamper else "tamper switch restored"
        return Transition(
            kind=kind, rule="tamper", subject=sensor_id, severity=Severity.CRITICAL,
            at_ns=now_ns, storehouse=sensor.storehouse,
            summary=f"{name}: {sensor_id} {text}",
            facts={"sensor": sensor_id, "tamper": tamper},
        )
