"""Flags that count once they have stood for a debounce time (tamper switches, smoke)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from rules.base import WakeAt, no_wake

__all__ = ["DebouncedFlags", "FlagRule"]


class DebouncedFlags:
    """Per subject: when its flag went up, and whether it was confirmed (is firing).

    EN 50131-1 §8.9.1: signals shorter than the debounce are not processed. A flag that goes up
    asks for a tick at the end of its debounce (`wake_at`), so it is confirmed then, not at the
    next interval.
    """

    def __init__(self, debounce_ns: int) -> None:
        self.debounce_ns = debounce_ns
        self.since: dict[str, int] = {}
        self.firing: set[str] = set()
        self.wake_at: WakeAt = no_wake

    def raised(self, subject: str, at_ns: int, now_ns: int) -> bool:
        """The flag is up (again); True when this confirms it."""
        self.since.setdefault(subject, at_ns)
        return self.confirm(subject, now_ns)

    def lowered(self, subject: str) -> bool:
        """The flag is down; True when it had been confirmed (its alert resolves)."""
        self.since.pop(subject, None)
        if subject not in self.firing:
            return False
        self.firing.discard(subject)
        return True

    def confirm(self, subject: str, now_ns: int) -> bool:
        """True when the flag has now stood for the debounce and was not confirmed yet."""
        since = self.since.get(subject)
        if since is None or subject in self.firing:
            return False
        if now_ns - since < self.debounce_ns:
            self.wake_at(since + self.debounce_ns)
            return False
        self.firing.add(subject)
        return True

    def confirmed_by(self, now_ns: int) -> list[str]:
        """Subjects whose debounce ran out by `now_ns` (a tick)."""
        return [s for s in list(self.since) if self.confirm(s, now_ns)]

    def snapshot(self) -> dict[str, Any]:
        """Since times and confirmed subjects, JSON-ready."""
        return {"since": dict(self.since), "firing": sorted(self.firing)}

    def restore(self, state: Mapping[str, Any], known: Collection[str]) -> None:
        """Take back a snapshot, for subjects still `known`."""
        self.since = {s: int(t) for s, t in state.get("since", {}).items() if s in known}
        self.firing = {s for s in state.get("firing", []) if s in known}


class FlagRule:
    """A rule whose timers are its `DebouncedFlags`: the engine's `wake_at` goes to them."""

    _flags: DebouncedFlags

    @property
    def wake_at(self) -> WakeAt:
        """Where the end of a flag's debounce is told (the engine sets it)."""
        return self._flags.wake_at

    @wake_at.setter
    def wake_at(self, wake: WakeAt) -> None:
        self._flags.wake_at = wake
