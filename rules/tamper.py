"""A tamper flag on any device is an alarm, armed or not (EN 50131-1 Table 7)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, WakeAt, no_wake
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


class TamperRule:
    """Fires when `tamper: true` from a known sensor outlasts the debounce time."""

    def __init__(self, config: TamperRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._debounce_ns = int(config.debounce_ms * 1_000_000)
        self._since: dict[str, int] = {}
        self._firing: set[str] = set()
        self.wake_at: WakeAt = no_wake

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow the sensor's tamper flag."""
        tamper = reading.values.get("tamper")
        # The flag first: RFID and badge reads carry none.
        if not isinstance(tamper, bool) or reading.sensor not in self._depot.sensors:
            return []
        if tamper:
            self._since.setdefault(reading.sensor, reading.at_ns)
            return self._check(reading.sensor, now_ns)
        self._since.pop(reading.sensor, None)
        if reading.sensor in self._firing:
            self._firing.discard(reading.sensor)
            return [self._transition(TransitionKind.RESOLVED, reading.sensor, now_ns,
                                     "tamper switch restored")]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Confirm tamper flags that outlasted the debounce."""
        out: list[Outcome] = []
        for sensor in list(self._since):
            out.extend(self._check(sensor, now_ns))
        return out

    def _check(self, sensor: str, now_ns: int) -> list[Outcome]:
        since = self._since.get(sensor)
        if since is None or sensor in self._firing:
            return []
        if now_ns - since < self._debounce_ns:
            self.wake_at(since + self._debounce_ns)
            return []
        self._firing.add(sensor)
        return [self._transition(TransitionKind.FIRING, sensor, now_ns,
                                 "tamper switch triggered")]

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
        return {"since": dict(self._since), "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back tamper-since times and firing sensors."""
        sensors = self._depot.sensors
        self._since = {s: int(t) for s, t in state.get("since", {}).items() if s in sensors}
        self._firing = {s for s in state.get("firing", []) if s in sensors}
