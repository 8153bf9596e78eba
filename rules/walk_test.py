"""Walk tests: an engineer walks a zone and every detector must be seen (EN 50131-1 walk-test
facility; quarterly IDS tests, DoD AA&E). While a zone's test runs its detectors are recorded,
not alarmed; doors and tamper stay live. A zone whose last passed test is too old is a warning.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from daemon.vocabulary.readings import Severity, Transition, TransitionKind
from rules.base import Fact, Outcome, format_duration
from rules.depot import Depot, SensorKind

__all__ = ["WalkResult", "WalkTests"]

_NS = 1_000_000_000
# The detectors a walk test proves (smoke and panic have their own tests; doors stay live).
_WALKED = frozenset({SensorKind.MOTION, SensorKind.VIBRATION, SensorKind.GLASS_BREAK})


@dataclass(frozen=True, slots=True)
class WalkResult:
    """How a zone's last walk test ended: `passed` or `failed`, when, who walked it, and the
    detectors not seen."""

    result: str
    at_ns: int
    by: str
    not_seen: tuple[str, ...]


@dataclass(slots=True)
class _Walk:
    until_ns: int
    by: str
    how: str
    seen: set[str] = field(default_factory=set)


class WalkTests:
    """Running walk tests per storehouse, the detectors each has seen, and the last passed one."""

    def __init__(self, depot: Depot, window_ns: int, max_age_ns: int) -> None:
        self._depot = depot
        self._window_ns, self._max_age_ns = window_ns, max_age_ns
        self.detectors: dict[str, list[str]] = {}
        for sensor in depot.sensors.values():
            if sensor.kind in _WALKED:
                self.detectors.setdefault(sensor.storehouse, []).append(sensor.id)
        self._walks: dict[str, _Walk] = {}
        # Last passed test per storehouse; a zone never tested counts from the first tick.
        self._passed_ns: dict[str, int] = {}
        self._due: set[str] = set()
        self.last: dict[str, WalkResult] = {}

    def start(self, storehouse: str, by: str, how: str, now_ns: int) -> list[Outcome]:
        """Start (or restart) a zone's walk test; refused where there is nothing to walk."""
        if not self.detectors.get(storehouse):
            return [self._fact(storehouse, "refused", by, how, now_ns,
                               note="no motion, vibration or glass-break detector here")]
        self._walks[storehouse] = _Walk(now_ns + self._window_ns, by, how)
        return [self._fact(storehouse, "started", by, how, now_ns,
                           note=f"for {format_duration(self._window_ns / _NS)}")]

    def walking(self, storehouse: str) -> bool:
        """Whether the zone's detectors are under test (recorded, not alarmed)."""
        return storehouse in self._walks

    def seen(self, sensor: str, storehouse: str, now_ns: int) -> list[Outcome]:
        """A detector triggered during its zone's test; the test passes once all were seen."""
        walk = self._walks.get(storehouse)
        if walk is None:
            return []
        walk.seen.add(sensor)
        if walk.seen.issuperset(self.detectors[storehouse]):
            return self._finish(storehouse, now_ns)
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Tests whose window ended (failed: a detector not seen) and overdue zones."""
        out: list[Outcome] = []
        for storehouse in [s for s, w in self._walks.items() if now_ns >= w.until_ns]:
            out += self._finish(storehouse, now_ns)
        for storehouse in self.detectors:
            last = self._passed_ns.setdefault(storehouse, now_ns)
            if now_ns - last >= self._max_age_ns and storehouse not in self._due:
                self._due.add(storehouse)
                out.append(self._due_transition(
                    TransitionKind.FIRING, storehouse, now_ns,
                    f"no passed walk test for {format_duration((now_ns - last) / _NS)}"))
        return out

    def _finish(self, storehouse: str, now_ns: int) -> list[Outcome]:
        walk = self._walks.pop(storehouse)
        missing = [d for d in self.detectors[storehouse] if d not in walk.seen]
        self.last[storehouse] = WalkResult("failed" if missing else "passed", now_ns, walk.by,
                                           tuple(missing))
        out: list[Outcome] = [self._fact(storehouse, "failed" if missing else "passed",
                                         walk.by, walk.how, now_ns, seen=sorted(walk.seen),
                                         not_seen=missing)]
        if not missing:
            self._passed_ns[storehouse] = now_ns
            if storehouse in self._due:
                self._due.discard(storehouse)
                out.append(self._due_transition(TransitionKind.RESOLVED, storehouse, now_ns,
                                                f"walk test passed ({walk.by})"))
        return out

    def _fact(self, storehouse: str, result: str, by: str, how: str, at_ns: int, *,
              seen: list[str] | None = None, not_seen: list[str] | None = None,
              note: str = "") -> Fact:
        return Fact("walk_test", {"storehouse": storehouse},
                    {"result": result, "by": by, "how": how, "seen": ", ".join(seen or []),
                     "not_seen": ", ".join(not_seen or []), "note": note}, at_ns)

    def _due_transition(self, kind: TransitionKind, storehouse: str, now_ns: int,
                        text: str) -> Transition:
        name = self._depot.storehouses[storehouse].name
        return Transition(kind=kind, rule="walk_test_due", subject=storehouse,
                          severity=Severity.WARNING, at_ns=now_ns, storehouse=storehouse,
                          summary=f"{name}: {text}", facts={"storehouse": storehouse})

    def snapshot(self) -> dict[str, Any]:
        """Running tests, last passes, overdue zones."""
        return {"walks": {s: {"until_ns": w.until_ns, "by": w.by, "how": w.how,
                              "seen": sorted(w.seen)} for s, w in self._walks.items()},
                "passed_ns": dict(self._passed_ns), "due": sorted(self._due),
                "last": {s: {"result": r.result, "at_ns": r.at_ns, "by": r.by,
                             "not_seen": list(r.not_seen)} for s, r in self.last.items()}}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back a snapshot (zones no longer with detectors are dropped)."""
        known = self.detectors
        self._walks = {s: _Walk(int(w["until_ns"]), str(w["by"]), str(w["how"]),
                                {str(d) for d in w.get("seen", [])})
                       for s, w in state.get("walks", {}).items() if s in known}
        self._passed_ns = {s: int(t) for s, t in state.get("passed_ns", {}).items()
                           if s in known}
        self._due = {s for s in state.get("due", []) if s in known}
        self.last = {s: WalkResult(str(r["result"]), int(r["at_ns"]), str(r["by"]),
                                   tuple(str(d) for d in r.get("not_seen", [])))
                     for s, r in state.get("last", {}).items() if s in known}
