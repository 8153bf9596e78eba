"""The rule engine: feeds readings and ticks to every rule; owns no clock and does no I/O."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from daemon.vocabulary.readings import Reading, Transition
from rules.base import Fact, Outcome, Rule
from rules.depot import Depot, SensorKind

__all__ = ["Engine", "Verdict"]

SNAPSHOT_VERSION = 1

_Observe = Callable[[Reading, int], list[Outcome]]
# What most readings lead to; shared, so that a quiet reading allocates nothing for it.
_NOTHING: tuple[Outcome, ...] = ()
_LATER = 2**63


@dataclass(slots=True)
class Verdict:
    """What one event led to: alert transitions and facts for the records."""

    transitions: list[Transition] = field(default_factory=list)
    facts: list[Fact] = field(default_factory=list)

    def add(self, outcomes: Sequence[Outcome]) -> None:
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
        # When rules want a tick (debounce and hold deadlines), noted as they ask: the runner
        # takes them after each reading and clears the list. Empty for nearly every reading.
        self.wakes: list[int] = []
        # Per rule (its index), the earliest deadline it asked for and has not been ticked at:
        # a deadline tick (`tick_asked`) ticks only these rules, not all of them: a full tick
        # walks every climate sensor and door, and at 1,500 readings/s of the depot mix door
        # debounces made 13 of them a second where one is due (issue 29).
        self._asked: dict[int, int] = {}
        for index, (_, rule) in enumerate(self._rules):
            if hasattr(rule, "wake_at"):
                rule.wake_at = self._asker(index)
        self._last_at: dict[str, int] = {}
        self.stale_readings = 0
        # Per depot sensor, the rules that judge its kind: a rule with a `kinds` attribute
        # returns nothing, and changes nothing, for a reading of any other kind (each rule
        # still checks; tests/test_rules.py holds every rule to its `kinds`). Anything not a
        # depot sensor (the gateway's own readings) goes to every rule. A door contact reading
        # then costs 7 rule calls instead of 17.
        everyone = tuple(rule for _, rule in self._rules)
        # Bound once: a reading meets several rules, each an attribute lookup fewer.
        self._everyone: tuple[_Observe, ...] = tuple(rule.observe for rule in everyone)
        self._by_sensor: dict[str, tuple[_Observe, ...]] = {}
        if depot is not None:
            by_kind = {kind: tuple(rule.observe for rule in everyone
                                   if kind in getattr(rule, "kinds", (kind,)))
                       for kind in SensorKind}
            self._by_sensor = {sensor.id: by_kind[sensor.kind]
                               for sensor in depot.sensors.values()}

    def observe(self, reading: Reading, now_ns: int) -> Verdict:
        """Outcomes caused by one reading; a reading older than the sensor's last is ignored."""
        verdict = Verdict()
        verdict.add(self.outcomes(reading, now_ns))
        return verdict

    def outcomes(self, reading: Reading, now_ns: int) -> Sequence[Outcome]:
        """`observe` as the rules said it, in rule order: the pipeline's way, with no `Verdict`
        (and, for the many readings that lead to nothing, no list) made per reading."""
        sensor, at_ns = reading.sensor, reading.at_ns
        # A late, out-of-order reading must not undo a newer state (a door closed after it
        # was seen open); it still goes to InfluxDB, only the rules skip it.
        if at_ns < self._last_at.get(sensor, at_ns):
            self.stale_readings += 1
            return _NOTHING
        self._last_at[sensor] = at_ns
        out: Sequence[Outcome] = _NOTHING
        for observe in self._by_sensor.get(sensor, self._everyone):
            # Per reading and rule: most rules have nothing to say about most readings.
            said = observe(reading, now_ns)
            if said:
                out = said if not out else [*out, *said]
        return out

    def _asker(self, index: int) -> Callable[[int], None]:
        wakes, asked = self.wakes, self._asked

        def wake_at(at_ns: int) -> None:
            wakes.append(at_ns)
            if at_ns < asked.get(index, _LATER):
                asked[index] = at_ns
        return wake_at

    def tick(self, now_ns: int) -> Verdict:
        """Outcomes caused by time passing; the runner calls this every second."""
        # Every rule is ticked: those still waiting for a deadline ask for it again.
        self._asked.clear()
        verdict = Verdict()
        for _, rule in self._rules:
            verdict.add(rule.tick(now_ns))
        return verdict

    def tick_asked(self, now_ns: int) -> Verdict:
        """`tick` for the rules whose asked-for deadline has come, in rule order; the rest wait
        for theirs or the next full tick. The earliest deadline still pending is asked again."""
        asked = self._asked
        due = sorted(index for index, at_ns in asked.items() if at_ns <= now_ns)
        for index in due:
            del asked[index]
        verdict = Verdict()
        for index in due:
            verdict.add(self._rules[index][1].tick(now_ns))
        if asked:
            self.wakes.append(min(asked.values()))
        return verdict

    def rule(self, name: str) -> Rule | None:
        """The rule running under `name` (its kind), if it runs."""
        return next((rule for each, rule in self._rules if each == name), None)

    def snapshot(self) -> dict[str, Any]:
        """Every rule's state, JSON-ready, for a restart."""
        return {
            "version": SNAPSHOT_VERSION,
            "last_at": dict(self._last_at),
            "rules": {name: rule.snapshot() for name, rule in self._rules},
        }

    def take_over(self, previous: Engine) -> None:
        """Carry `previous`'s rule state over (a reload, a records change). A rule of the same
        kind with a `take_over` method takes its predecessor's state as it is (item clocks of a
        100,000-item book in microseconds, not the 0.3 s of a JSON round trip); the rest go
        through snapshot and restore, as across a restart."""
        self._last_at = dict(previous._last_at)
        if previous._asked:  # rules may differ: each with timers is ticked at the first one
            first = min(previous._asked.values())
            self._asked = {index: first for index, (_, rule) in enumerate(self._rules)
                           if hasattr(rule, "wake_at")}
        earlier = dict(previous._rules)
        for name, rule in self._rules:
            old = earlier.get(name)
            if old is None:
                continue
            take = getattr(rule, "take_over", None)
            if take is not None and type(old) is type(rule):
                take(old)
            else:
                rule.restore(old.snapshot())

    def restore(self, snapshot: Mapping[str, Any]) -> None:
        """Take back a snapshot; rules added since start fresh (and so fail secure)."""
        if snapshot.get("version") != SNAPSHOT_VERSION:
            return
        states, last_at = snapshot.get("rules", {}), snapshot.get("last_at", {})
        if not isinstance(states, dict) or not isinstance(last_at, dict):
            raise TypeError("engine snapshot: `rules` and `last_at` must be objects")
        self._last_at = {str(k): int(v) for k, v in last_at.items()}
        for name, rule in self._rules:
            if name in states:
                rule.restore(states[name])
