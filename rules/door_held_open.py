"""A door held open past its limit without a work order: warning (PSSM.md access rows)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import Field

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, RuleConfigBase, format_duration
from rules.depot import Depot, SensorKind
from rules.door_contacts import DoorContacts

__all__ = ["DoorHeldOpenRule", "DoorHeldOpenRuleConfig"]

_NS = 1_000_000_000


class DoorHeldOpenRuleConfig(RuleConfigBase):
    """Door open longer than `max_open_s` with no open work order for it."""

    type: Literal["door_held_open"] = "door_held_open"
    max_open_s: float = Field(default=900.0, gt=0)

    def build(self, depot: Depot) -> DoorHeldOpenRule:
        """The rule for every door of the depot."""
        return DoorHeldOpenRule(self, depot)


class DoorHeldOpenRule:
    """Times each open door from the reading that opened it; a restart keeps the timer."""

    # The engine hands it readings of these depot sensor kinds only (and anything that is
    # not a depot sensor, such as the gateway's own readings).
    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.DOOR})

    def __init__(self, config: DoorHeldOpenRuleConfig, depot: Depot) -> None:
        self._depot = depot
        self._max_ns = int(config.max_open_s * _NS)
        self._contacts = DoorContacts(depot.doors.values())
        self._firing: set[str] = set()

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Start or stop a door's timer."""
        change = self._contacts.follow(reading)
        if change is None:
            return []
        door, is_open, since = change
        if is_open:
            return self._check(door, now_ns)
        if door in self._firing:
            self._firing.discard(door)
            held = format_duration((reading.at_ns - (since or reading.at_ns)) / _NS)
            return [self._transition(TransitionKind.RESOLVED, door, now_ns,
                                     f"closed after {held}")]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Warn for every door open past the limit (unless a work order covers it now)."""
        out: list[Outcome] = []
        for door in list(self._contacts.open_since):
            out.extend(self._check(door, now_ns))
        return out

    def _check(self, door: str, now_ns: int) -> list[Outcome]:
        since = self._contacts.open_since.get(door)
        if since is None or door in self._firing or now_ns - since < self._max_ns:
            return []
        if any(order.covers(door, now_ns) for order in self._depot.work_orders):
            return []
        self._firing.add(door)
        return [self._transition(TransitionKind.FIRING, door, now_ns,
                                 f"held open for {format_duration((now_ns - since) / _NS)} "
                                 "without a work order")]

    def _transition(self, kind: TransitionKind, door: str, now_ns: int,
                    text: str) -> Transition:
        storehouse = self._depot.storehouses[self._depot.doors[door].storehouse]
        return Transition(
            kind=kind, rule="door_held_open", subject=door, severity=Severity.WARNING,
            at_ns=now_ns, storehouse=storehouse.id,
            summary=f"{storehouse.name}: door {door} {text}", facts={"door": door},
        )

    def snapshot(self) -> dict[str, Any]:
        """Open-since times and warned doors."""
        return {"open_since": self._contacts.snapshot(), "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back open-since times: a door open before a restart is still timed from then."""
        self._contacts.restore(state.get("open_since", {}))
        self._firing = {d for d in state.get("firing", []) if d in self._depot.doors}
