"""The rule engine: feeds readings and ticks to every rule; owns no clock and does no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.model import Reading, Transition
from rules.base import Fact, Outcome, Rule
from rules.depot import Depot, SensorKind

__all__ = ["Engine", "Verdict"]

SNAPSHOT_VERSION = 1


@dataclass(slots=True)
class Verdict:
    """What one event led to: alert transitions and facts for the records."""

    transitions: list[Transition] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    def add(self, outcomes: list[Outcome]) -> None:
        """Sort outcomes into transitions and facts."""
        for outcome in outcomes:
            if isinstance(outcome, Transition):
                self.transitions.append(outcome)
            else:
                self.facts.append(outcome)


class Engine:
    """Synchronous core: the same readings and ticks always give the same outcomes."""

    def __init__(self, rules: Sequence[tuple[str, Rule]], depot: Depot | None = None) -> None:
        self._rules = tuple(rules)
        self._last_at: dict[str, int] = {}
        self.stale_readings = 0
        # Per depot sensor, the rules that judge its kind: a rule with a `kinds` attribute
        # returns nothing, and changes nothing, for a reading of any other kind (each rule
        # still checks; tests/test_rules.py holds every rule to its `kinds`). Anything not a
        # depot sensor (the gateway's own readings) goes to every rule. A door contact reading
        # then costs 7 rule calls instead of 17.
        everyone = tuple(rule for _, rule in self._rules)
        self._everyone = everyone
        self._by_sensor: dict[str, tuple[Rule, ...]] = {}
        if depot is not None:
            by_kind = {kind: tuple(rule for rule in everyone
                                   if kind in getattr(rule, "kinds", (kind,)))
                       for kind in SensorKind}
            self._by_sensor = {sensor.id: by_kind[sensor.kind]
                               for sensor in depot.sensors.values()}

    def observe(self, reading: Reading, now_ns: int) -> Verdict:
        """Outcomes caused by one reading; a reading older than the sensor's last is ignored."""
        verdict = Verdict()
        # A late, out-of-order reading must not undo a newer state (a door closed after it
        # was seen open); it still goes to InfluxDB, only the rules skip it.
        if reading.at_ns < self._last_at.get(reading.sensor, reading.at_ns):
            self.stale_readings += 1
            return verdict
        self._last_at[reading.sensor] = reading.at_ns
        for rule in self._by_sensor.get(reading.sensor, self._everyone):
            # Per reading and rule: most rules have nothing to say about most readings.
            outcomes = rule.observe(reading, now_ns)
            if outcomes:
                verdict.add(outcomes)
        return verdict

    def tick(self, now_ns: int) -> Verdict:
        """Outcomes caused by time passing; the runner calls this every second."""
        verdict = Verdict()
        for _, rule in self._rules:
            verdict.add(rule.tick(now_ns))
        return verdict

    def snapshot(self) -> dict[str, Any]:
        """Every rule's state, JSON-ready, for a restart."""
        return {
            "version": SNAPSHOT_VERSION,
            "last_at": dict(self._last_at),
            "rules": {name: rule.snapshot() for name, rule in self._rules},
        }

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Take back a snapshot; rules added since start fresh (and so fail secure)."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            return
        self._last_at = {str(k): int(v) for k, v in snapshot.get("last_at", {}).items()}
        states = snapshot.get("rules", {})
        for name, rule in self._rules:
            if name in states:
                rule.restore(states[name])
