"""Flags that count once they have stood for a debounce time (tamper switches, smoke)."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from daemon.vocabulary.readings import Transition, TransitionKind
from rules.base import Outcome, WakeAt, no_wake

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
    """A rule that follows one debounced flag per subject: FIRING once the flag has stood for
    the debounce, RESOLVED when it falls after that. The engine's `wake_at` goes to its flags.

    A rule sets `_flags` and `_subjects` (the subjects it follows; a restore keeps only these)
    and says in `_flagged` what a change of one subject's flag reads as.
    """

    _flags: DebouncedFlags
    _subjects: Collection[str]

    def _flagged(self, kind: TransitionKind, subject: str, now_ns: int) -> Transition:
        raise NotImplementedError

    def _follow(self, subject: str, up: bool, at_ns: int, now_ns: int) -> list[Outcome]:
        """A reading of `subject`'s flag, `up` or down, taken at `at_ns`."""
        flags = self._flags
        if up:
            if flags.raised(subject, at_ns, now_ns):
                return [self._flagged(TransitionKind.FIRING, subject, now_ns)]
            return []
        # Nearly every reading says the flag is down while none is up: no call for those.
        if (flags.since or flags.firing) and flags.lowered(subject):
            return [self._flagged(TransitionKind.RESOLVED, subject, now_ns)]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Confirm flags that outlasted the debounce."""
        return [self._flagged(TransitionKind.FIRING, subject, now_ns)
                for subject in self._flags.confirmed_by(now_ns)]

    def snapshot(self) -> dict[str, Any]:
        """Since times of raised flags and the subjects firing."""
        return self._flags.snapshot()

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back since times and firing subjects, for subjects still followed."""
        self._flags.restore(state, self._subjects)

    @property
    def wake_at(self) -> WakeAt:
        """Where the end of a flag's debounce is told (the engine sets it)."""
        return self._flags.wake_at

    @wake_at.setter
    def wake_at(self, wake: WakeAt) -> None:
        self._flags.wake_at = wake
