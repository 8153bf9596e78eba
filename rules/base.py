"""The rule contract: pure, synchronous, no clock and no I/O of its own."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from pydantic import BaseModel, ConfigDict

from daemon.vocabulary.readings import FieldValue, Reading, Severity, Transition

__all__ = ["Fact", "Outcome", "Rule", "RuleConfigBase", "WakeAt", "format_duration", "no_wake"]


@dataclass(frozen=True, slots=True)
class Fact:
    """Something a rule established for the records (a portal movement, a badge event).

    The pipeline writes it to InfluxDB as `measurement` with the site tag added.
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    at_ns: int


Outcome = Transition | Fact

# Asks for a tick at a time (ns): the end of a debounce or a hold. A rule with such timers has
# an attribute `wake_at`; the engine sets it to a function that only notes the time, and the
# runner ticks then, not at its next interval: a timer fires at its deadline whatever the tick.
WakeAt = Callable[[int], None]


def no_wake(at_ns: int) -> None:
    """`wake_at` of a rule no engine has taken yet (a rule tested alone ticks by hand)."""


class Rule(Protocol):
    """One PSSM rule kind holding its own per-subject state; `now_ns` is always given.

    `snapshot()` returns JSON-ready state and `restore()` takes it back, so open-since times and
    sustain timers survive a daemon restart. A rule may name the depot sensor kinds it judges in
    a class attribute `kinds`: the engine then hands it readings of those kinds only (and of
    anything that is not a depot sensor, such as the gateway's own readings).
    """

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Outcomes caused by one reading."""
        ...

    def tick(self, now_ns: int) -> list[Outcome]:
        """Outcomes caused by time passing (sustain times, silence, held-open doors)."""
        ...

    def snapshot(self) -> dict[str, Any]:
        """The rule's state as JSON-ready data."""
        ...

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a state from `snapshot()`; unknown subjects are ignored."""
        ...


class RuleConfigBase(BaseModel):
    """Shared pydantic settings for rule configs: unknown keys are errors.

    Every rule kind runs with its defaults unless the config lists it; switching one off takes
    an explicit `enabled: false`, so a rule is never lost by leaving it out.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Rule names a kind raises at a severity fixed in its code, not in its config.
    fixed_severities: ClassVar[dict[str, Severity]] = {}

    enabled: bool = True

    def alarm_severities(self) -> dict[str, Severity]:
        """Rule name to the most severe alarm this kind raises as configured; how long one
        officer may silence it follows from that (unknown names count as critical)."""
        order = list(Severity)
        configured = [Severity(str(value)) for key, value in self
                      if key == "severity" or key.endswith("_severity")]
        kind = str(getattr(self, "type", ""))
        own = {kind: max(configured, key=order.index)} if configured and kind else {}
        return {**self.fixed_severities, **own}


def format_duration(seconds: float) -> str:
    """Human duration for alert summaries: 45 s, 12 min, 3.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
