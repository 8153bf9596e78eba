"""A keypad or reader at a zone: who asks to arm or disarm it, checked against the roster."""

from __future__ import annotations

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from rules.base import Outcome
from rules.depot import Depot, Person, Sensor
from rules.zone_state import ZoneState, zone_fact

__all__ = ["SILENT_RULES", "KeypadDesk"]

# Alarms only the on-call notifiers hear of: not the MQTT alerts topic (a keypad may show it),
# not the console, not the dashboards' `alert` points (CP-01 duress: silent, monitoring only).
SILENT_RULES = frozenset({"duress"})


class KeypadDesk:
    """Turns keypad reads into requests: one authorised badge arms; disarming a two-person zone
    takes two distinct authorised people within the window (US Army MP1002)."""

    def __init__(self, depot: Depot, window_ns: int) -> None:
        self._depot = depot
        self._window_ns = window_ns
        self._two_person = {d.storehouse for d in depot.doors.values() if d.two_person}
        # Two-person zones: who badged to disarm, and when (memory only: a 60 s window).
        self._badged: dict[str, dict[str, int]] = {}

    def asked(self, keypad: Sensor, reading: Reading,
              state: ZoneState) -> tuple[str, str, list[Outcome]] | list[Outcome] | None:
        """(action, by, a duress alarm if any) for a request to pass on; refusals and waits as
        `zone` facts (the zone stays in `state`); None for a read that asks nothing."""
        action, badge = reading.values.get("action"), reading.values.get("badge")
        if not isinstance(action, str) or not isinstance(badge, str):
            return None
        storehouse, at_ns = keypad.storehouse, reading.at_ns
        if badge in self._depot.duress:
            # Done as asked, as if the usual code: whoever forces the guard sees nothing.
            return action, self._depot.duress[badge], self._duress(keypad, at_ns)
        person = self._depot.roster.get(badge)
        if person is None or not _authorised(person, storehouse, at_ns):
            # Badge numbers never leave the gateway: the unknown one goes by its keyed hash.
            who = person.name if person else f"badge {self._depot.badge_hash(badge)}"
            return [zone_fact(storehouse, state, at_ns, result="refused", by=who,
                              how="keypad", action=action,
                              note=f"not authorised for {storehouse}")]
        if action != "disarm" or storehouse not in self._two_person:
            return action, person.name, []
        badged = {p: t for p, t in self._badged.get(storehouse, {}).items()
                  if at_ns - t <= self._window_ns}
        badged[person.name] = at_ns
        if len(badged) < 2:
            self._badged[storehouse] = badged
            return [zone_fact(storehouse, state, at_ns, result="waiting",
                              by=person.name, how="keypad", action=action,
                              note="two-person zone: a second authorised badge is needed")]
        self._badged.pop(storehouse, None)
        return action, " + ".join(sorted(badged)), []

    def _duress(self, keypad: Sensor, at_ns: int) -> list[Outcome]:
        # Fires and ends at once: the critical alarm stays open until the on-site check.
        name = self._depot.storehouses[keypad.storehouse].name
        return [Transition(kind=kind, rule="duress", subject=keypad.storehouse,
                           severity=Severity.CRITICAL, at_ns=at_ns, storehouse=keypad.storehouse,
                           summary=f"{name}: duress code at keypad {keypad.id}",
                           facts={"keypad": keypad.id})
                for kind in (TransitionKind.FIRING, TransitionKind.RESOLVED)]


def _authorised(person: Person, storehouse: str, at_ns: int) -> bool:
    if person.valid_from_ns is not None and at_ns < person.valid_from_ns:
        return False
    if person.valid_until_ns is not None and at_ns > person.valid_until_ns:
        return False
    return storehouse in person.zones and not person.escort_only
