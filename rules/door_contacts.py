"""Door openings: which doors stand open since when, and the rule shape the door rules share.

Each door rule says "a door opened while ...": an opening is judged once it has lasted the rule's
confirmation time, and its alert holds until the door closes. `DoorOpeningRule` follows the
contacts, fires and resolves; a door rule adds only what makes an opening an alert.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome, WakeAt, no_wake
from rules.depot import Depot, Door, SensorKind

__all__ = ["DoorChange", "DoorContacts", "DoorOpeningRule"]

# A contact reading about a door: (door, open or not, when the current opening began). A plain
# tuple: three door rules ask on every contact reading, and a dataclass each cost more than
# what they did with it.
DoorChange = tuple[str, bool, int | None]


class DoorContacts:
    """Open-since time per door; a repeated "open" keeps the first time, "closed" clears it."""

    def __init__(self, doors: Iterable[Door]) -> None:
        self._door_of_sensor = {door.contact_sensor: door.id for door in doors}
        self.doors = frozenset(self._door_of_sensor.values())
        self.open_since: dict[str, int] = {}

    def follow(self, reading: Reading) -> DoorChange | None:
        """The change a reading makes, or None when it is not about a followed door's contact."""
        door = self._door_of_sensor.get(reading.sensor)
        is_open = reading.values.get("open")
        if door is None or not isinstance(is_open, bool):
            return None
        if is_open:
            return door, True, self.open_since.setdefault(door, reading.at_ns)
        return door, False, self.open_since.pop(door, None)

    def snapshot(self) -> dict[str, int]:
        """Open-since times."""
        return dict(self.open_since)

    def restore(self, saved: Mapping[str, int]) -> None:
        """Take back open-since times of doors that still exist."""
        self.open_since = {d: int(t) for d, t in saved.items() if d in self.doors}


class DoorOpeningRule:
    """A door opened while something holds: one alert per opening, resolved when it closes.

    An opening is judged once it has been open `confirm_ns` (on a reading or a tick), and again
    until `_judge_opening` fires it or marks it judged; `_closing_text` words the resolution.
    """

    kinds: ClassVar[frozenset[SensorKind]] = frozenset({SensorKind.DOOR})
    rule_name: ClassVar[str]
    # Whether the alert's facts carry the door's state (door_held_open's never did).
    facts_say_open: ClassVar[bool] = True

    def __init__(self, depot: Depot, doors: Iterable[Door], severity: Severity,
                 confirm_ns: int) -> None:
        self._depot = depot
        self._severity = severity
        self._confirm_ns = confirm_ns
        self._contacts = DoorContacts(doors)
        # Badge readers whose reads go to `_badged` (door_forced's). Tested with `in` before the
        # contacts, so that a contact reading pays no call for it.
        self._readers: frozenset[str] = frozenset()
        # Openings judged for good until the door closes: every firing one, and any a rule marks.
        self._judged: set[str] = set()
        self._firing: set[str] = set()
        self.wake_at: WakeAt = no_wake

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Follow the door's open/closed state (and badge reads, for a rule that takes them)."""
        if reading.sensor in self._readers:
            return self._badged(reading, now_ns)
        change = self._contacts.follow(reading)
        if change is None:
            return []
        door, is_open, since = change
        if is_open:
            return self._check(door, now_ns)
        if door not in self._judged and since is not None \
                and reading.at_ns - since >= self._confirm_ns:
            # Open for the confirmation time, closed before a tick judged it: judged as it was
            # when it closed, so a short opening is never lost between two ticks.
            return self._closed_unjudged(door, since, reading.at_ns, now_ns)
        if door in self._judged:
            self._judged.discard(door)
            if door in self._firing:
                self._firing.discard(door)
                return [self._transition(TransitionKind.RESOLVED, door, now_ns,
                                         self._closing_text(since, reading.at_ns))]
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        """Judge openings that outlasted the confirmation time."""
        out: list[Outcome] = []
        for door in list(self._contacts.open_since):
            out.extend(self._check(door, now_ns))
        return out

    def _closed_unjudged(self, door: str, since: int, closed_ns: int,
                         now_ns: int) -> list[Outcome]:
        text = self._judge_opening(door, since, closed_ns)
        if text is None:
            return []
        return [self._transition(TransitionKind.FIRING, door, now_ns, text),
                self._transition(TransitionKind.RESOLVED, door, now_ns,
                                 self._closing_text(since, closed_ns))]

    def _check(self, door: str, now_ns: int) -> list[Outcome]:
        since = self._contacts.open_since.get(door)
        if since is None or door in self._judged:
            return []
        if now_ns - since < self._confirm_ns:
            self.wake_at(since + self._confirm_ns)
            return []
        text = self._judge_opening(door, since, now_ns)
        if text is None:
            return []
        self._judged.add(door)
        self._firing.add(door)
        return [self._transition(TransitionKind.FIRING, door, now_ns, text)]

    def _judge_opening(self, door: str, since: int, now_ns: int) -> str | None:
        """The alert's wording when a confirmed opening fires, None when it does not (yet)."""
        raise NotImplementedError

    def _closing_text(self, since: int | None, closed_ns: int) -> str:
        """The resolution's wording once the door closes."""
        raise NotImplementedError

    def _badged(self, reading: Reading, now_ns: int) -> list[Outcome]:
        """Outcomes of a read at one of `_readers`."""
        return []

    def _transition(self, kind: TransitionKind, door: str, now_ns: int,
                    text: str) -> Transition:
        storehouse = self._depot.storehouses[self._depot.doors[door].storehouse]
        return Transition(
            kind=kind, rule=self.rule_name, subject=door, severity=self._severity,
            at_ns=now_ns, storehouse=storehouse.id,
            summary=f"{storehouse.name}: door {door} {text}",
            facts=({"door": door, "open": kind is TransitionKind.FIRING}
                   if self.facts_say_open else {"door": door}),
        )

    def snapshot(self) -> dict[str, Any]:
        """Open-since times and firing doors."""
        return {"open_since": self._contacts.snapshot(), "firing": sorted(self._firing)}

    def restore(self, state: Mapping[str, Any]) -> None:
        """Take back open-since times and firing doors: a restart keeps both."""
        self._contacts.restore(state.get("open_since", {}))
        self._firing = {d for d in state.get("firing", []) if d in self._contacts.doors}
        self._judged = set(self._firing)
