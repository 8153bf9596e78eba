"""The rule contract: pure, synchronous, no clock and no I/O of its own."""

from __future__ import annotations

from typing import Protocol

from pydantic import BaseModel, ConfigDict

from daemon.model import Reading, Transition

__all__ = ["Rule", "RuleConfigBase", "format_duration"]


class Rule(Protocol):
    """One PSSM rule kind holding its own per-subject state; `now_ns` is always given."""

    def observe(self, reading: Reading, now_ns: int) -> list[Transition]:
        """Transitions caused by one reading."""
        ...

    def tick(self, now_ns: int) -> list[Transition]:
        """Transitions caused by time passing (sustain times, silence)."""
        ...


class RuleConfigBase(BaseModel):
    """Shared pydantic settings for rule configs: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def format_duration(seconds: float) -> str:
    """Human duration for alert summaries: 45 s, 12 min, 3.5 h."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
