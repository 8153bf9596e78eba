"""Sequential confirmation (EN 50131-9): in a zone that asks for it, one detector alone is an
unconfirmed intrusion; a second, different detector of the zone within the window (30 min by
default, 30-60 min in EN 50131-9) makes it a confirmed intrusion, at a higher severity.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from daemon.vocabulary.readings import Severity, Transition, TransitionKind
from rules.base import Outcome, format_duration
from rules.depot import Depot

__all__ = ["Confirmations"]

_NS = 1_000_000_000


class Confirmations:
    """Per confirmation zone, the detectors (and entry doors) that tripped within the window."""

    def __init__(self, depot: Depot, window_ns: int) -> None:
        self._depot, self._window_ns = depot, window_ns
        self.zones = frozenset(s.id for s in depot.storehouses.values()
                               if s.sequential_confirmation)
        # Zone -> subject -> when it tripped; zones whose intrusion is confirmed.
        self._tripped: dict[str, dict[str, int]] = {}
        self._confirmed: set[str] = set()

    def trip(self, storehouse: str, subject: str, now_ns: int) -> list[Outcome]:
        """A detector or door of the zone alarmed; the confirmed intrusion when it is the
        second different one within the window."""
        if storehouse not in self.zones:
            return []
        recent = {s: t for s, t in self._tripped.get(storehouse, {}).items()
                  if now_ns - t <= self._window_ns}
        if not recent:
            self._confirmed.discard(storehouse)
        others = sorted(s for s in recent if s != subject)
        recent[subject] = now_ns
        self._tripped[storehouse] = recent
        if not others or storehouse in self._confirmed:
            return []
        self._confirmed.add(storehouse)
        first = min(others, key=recent.__getitem__)
        gap = format_duration((now_ns - recent[first]) / _NS)
        name = self._depot.storehouses[storehouse].name
        # Fires and ends at once: the critical alarm stays open until the on-site check.
        return [Transition(kind=kind, rule="intrusion_confirmed", subject=storehouse,
                           severity=Severity.CRITICAL, at_ns=now_ns, storehouse=storehouse,
                           summary=f"{name}: confirmed intrusion, {first} then {subject} "
                                   f"within {gap}",
                           facts={"first": first, "second": subject})
                for kind in (TransitionKind.FIRING, TransitionKind.RESOLVED)]

    def confirmed(self, storehouse: str) -> bool:
        """Whether a detector tripping now is part of a confirmed intrusion (or the zone does
        not ask for confirmation)."""
        return storehouse not in self.zones or storehouse in self._confirmed

    def forget(self, storehouse: str) -> None:
        """The zone was disarmed: the incident is over, the next trip starts afresh."""
        self._tripped.pop(storehouse, None)
        self._confirmed.discard(storehouse)

    def snapshot(self) -> dict[str, Any]:
        """Trips and confirmed zones, JSON-ready."""
        return {"tripped": {z: dict(t) for z, t in self._tripped.items()},
                "confirmed": sorted(self._confirmed)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a snapshot, for zones that still ask for confirmation."""
        self._tripped = {z: {str(s): int(t) for s, t in trips.items()}
                         for z, trips in state.get("tripped", {}).items() if z in self.zones}
        self._confirmed = {z for z in state.get("confirmed", []) if z in self.zones}
