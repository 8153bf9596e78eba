"""The rule engine: feeds readings and ticks to every rule; owns no clock and does no I/O."""

from __future__ import annotations

from collections.abc import Sequence

from daemon.model import Reading, Transition
from rules.base import Rule

__all__ = ["Engine"]


class Engine:
    """Synchronous core: the same readings and ticks always give the same transitions."""

    def __init__(self, rules: Sequence[Rule]) -> None:
        self._rules = tuple(rules)

    def observe(self, reading: Reading, now_ns: int) -> list[Transition]:
        """Transitions caused by one reading."""
        out: list[Transition] = []
        for rule in self._rules:
            out.extend(rule.observe(reading, now_ns))
        return out

    def tick(self, now_ns: int) -> list[Transition]:
        """Transitions caused by time passing; the runner calls this every second."""
        out: list[Transition] = []
        for rule in self._rules:
            out.extend(rule.tick(now_ns))
        return out
