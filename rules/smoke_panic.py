"""Smoke detectors and panic inputs alarm in every state, armed or not (PSSM.md)."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.debounce import DebouncedFlags, FlagRule
from rules.depot import Depot, SensorKind

__all__ = ["SmokePanicRule", "SmokePanicRuleConfig"]


class SmokePanicRuleConfig(RuleConfigBase):
    """Smoke (`smoke.<sensor>`) while it lasts; a panic press (`panic.<sensor>`) at once."""

    type: Literal["smoke_panic"] = "smoke_panic"
    fixed_severities: ClassVar[dict[str, Severity]] = {"smoke": Severity.CRITICAL,
                                                       "panic": Severity.CRITICAL}
    # EN 50131-1 §8.9.1: signals shorter than 400 ms are not processed (smoke only: a panic
    # press is an event, often reported once).
    debounce_ms: float = Field(default=400.0, ge=0)

    def build(self, depot: Depot) -> SmokePanicRule:
        """The rule for every smoke detector and panic input of the depot."""
        return SmokePanicRule(self, depot)


class SmokePanicRule(FlagRule):
    """Smoke fires once it outlasts the debounce and ends when the detector clears; a panic
    press fires and ends at once: the alarm stays open until the on-site check."""

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.SMOKE, SensorKind.PANIC,
                                                        SensorKind.KEYPAD})

    def __init__(self, config: SmokePanicRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._flags = DebouncedFlags(int(config.debounce_ms * 1_000_000))
        self._subjects = {s.id for s in depot.sensors_of(SensorKind.SMOKE)}
        # A keypad's panic key (Zigbee2MQTT `action: panic`/`emergency`) is a panic input too.
        self._panic = {s.id for s in depot.sensors_of(SensorKind.PANIC)} \
            | {s.id for s in depot.sensors_of(SensorKind.KEYPAD)}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow smoke flags and panic presses."""
        sensor = reading.sensor
        if sensor in self._panic:
            if reading.values.get("panic") is not True:
                return []
            return [self._transition(TransitionKind.FIRING, "panic", sensor, now_ns, "pressed"),
                    self._transition(TransitionKind.RESOLVED, "panic", sensor, now_ns,
                                     "released (check on site)")]
        smoke = reading.values.get("smoke")
        if sensor not in self._subjects or not isinstance(smoke, bool):
            return []
        return self._follow(sensor, smoke, reading.at_ns, now_ns)

    def _flagged(self, kind: TransitionKind, sensor_id: str, now_ns: int) -> Transition:
        text = "detected" if kind is TransitionKind.FIRING else "cleared"
        return self._transition(kind, "smoke", sensor_id, now_ns, text)

    def _transition(self, kind: TransitionKind, rule: str, sensor_id: str, now_ns: int,
                    text: str) -> Transition:
        storehouse = self._depot.sensors[sensor_id].storehouse
        name = self._depot.storehouses[storehouse].name
        return Transition(kind=kind, rule=rule, subject=sensor_id, severity=Severity.CRITICAL,
                          at_ns=now_ns, storehouse=storehouse,
                          summary=f"{name}: {rule} {sensor_id} {text}",
                          facts={"sensor": sensor_id, rule: kind is TransitionKind.FIRING})
