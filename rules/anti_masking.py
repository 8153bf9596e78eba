"""A detector reporting that it is masked (sprayed, covered, blocked) is a fault in every state,
armed or not (EN 50131-2-2/-2-4 grade 3 anti-masking; PSSM.md "Intrusion detection and arming").

Grade 3 detectors signal masking on an output of its own (an anti-mask relay wired to an I/O
board input, a Tasmota switch, an ESPHome binary sensor): the reading field `masked`.
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase
from rules.debounce import DebouncedFlags, FlagRule
from rules.depot import Depot, SensorKind

__all__ = ["AntiMaskingRule", "AntiMaskingRuleConfig"]

# The detectors that can be masked; a masked flag from any other sensor is not theirs to judge.
_DETECTORS = frozenset({SensorKind.MOTION, SensorKind.VIBRATION, SensorKind.GLASS_BREAK})


class AntiMaskingRuleConfig(RuleConfigBase):
    """`anti_masking.<detector>` while a detector reports itself masked."""

    type: Literal["anti_masking"] = "anti_masking"
    # A blind detector in an arms store needs someone on site: an alarm, not a warning.
    severity: Literal["warning", "alarm", "critical"] = "alarm"
    # EN 50131-1 §8.9.1: fault signals shorter than 10 s are not processed.
    debounce_s: float = Field(default=10.0, ge=0)

    def build(self, depot: Depot) -> AntiMaskingRule:
        """The rule for every motion, vibration and glass-break detector."""
        return AntiMaskingRule(self, depot)


class AntiMaskingRule(FlagRule):
    """Fires when `masked: true` outlasts the debounce; resolves when the detector sees again."""

    kinds: ClassVar[frozenset[SensorKind]] = _DETECTORS

    def __init__(self, config: AntiMaskingRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._severity = Severity(config.severity)
        self._flags = DebouncedFlags(int(config.debounce_s * 1_000_000_000))
        self._subjects = {s.id for s in depot.sensors.values() if s.kind in _DETECTORS}

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow a detector's masked flag."""
        masked = reading.values.get("masked")
        if not isinstance(masked, bool) or reading.sensor not in self._subjects:
            return []
        return self._follow(reading.sensor, masked, reading.at_ns, now_ns)

    def _flagged(self, kind: TransitionKind, sensor_id: str, now_ns: int) -> Transition:
        sensor = self._depot.sensors[sensor_id]
        name = self._depot.storehouses[sensor.storehouse].name
        masked = kind is TransitionKind.FIRING
        text = "masked: it cannot see" if masked else "no longer masked"
        return Transition(kind=kind, rule="anti_masking", subject=sensor_id,
                          severity=self._severity, at_ns=now_ns, storehouse=sensor.storehouse,
                          summary=f"{name}: {sensor.kind.value} {sensor_id} {text}",
                          facts={"sensor": sensor_id, "masked": masked})
