"""What a change must satisfy before it reaches the book; each problem names its field.

And which changes need a second officer: a roster entry that gains a vault (a storehouse with a
two-person door), and a movement order for weapons or ammunition (PSSM.md two-person rule,
applied to the records themselves). Revoking and closing never wait.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from daemon.book.entries import (
    ConsignmentEntry,
    Entry,
    EntryState,
    KeyIssueEntry,
    LifecycleEntry,
    MovementOrderEntry,
    Records,
    RosterEntry,
    WorkOrderEntry,
)
from daemon.vocabulary.errors import DepotwatchError
from rules.depot import Depot, Item, ItemKind, ItemState

__all__ = ["NEXT_STATES", "Problem", "RecordRefused", "approval_needed", "problems", "vaults"]

_EPC = re.compile(r"^[0-9A-F]{8,64}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_GUARDED = frozenset({ItemKind.WEAPON, ItemKind.AMMUNITION})

_S = ItemState
_IN_HAND = frozenset({_S.STORED, _S.ISSUED, _S.TRANSFERRED, _S.UNDER_REPAIR, _S.LOST,
                      _S.DESTROYED})
# Where an item may go from each state. `received` only through a consignment; `destroyed`
# and `transferred` are final: the item has left the book (a read of it again is an alarm).
NEXT_STATES: dict[ItemState, frozenset[ItemState]] = {
    _S.ON_BOOK: _IN_HAND, _S.RECEIVED: _IN_HAND, _S.STORED: _IN_HAND,
    _S.RETURNED: _IN_HAND,
    _S.ISSUED: frozenset({_S.RETURNED, _S.TRANSFERRED, _S.UNDER_REPAIR, _S.LOST,
                          _S.DESTROYED}),
    _S.UNDER_REPAIR: frozenset({_S.RETURNED, _S.STORED, _S.LOST, _S.DESTROYED}),
    _S.LOST: frozenset({_S.RETURNED, _S.STORED, _S.DESTROYED}),
    _S.TRANSFERRED: frozenset(), _S.DESTROYED: frozenset(),
}
# Steps that need their document: the voucher, the movement order, the certificate.
_DOCUMENTED = frozenset({_S.ISSUED, _S.TRANSFERRED, _S.DESTROYED})
# Steps that take an item off the book for good: a second officer approves them.
_TWO_PERSON = frozenset({_S.TRANSFERRED, _S.DESTROYED})


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with a change: the field and why."""

    field: str
    message: str

    def as_dict(self) -> dict[str, object]:
        """As the API's 422 detail carries it (pydantic's shape, which the CLI reads)."""
        return {"loc": [self.field], "msg": self.message}


class RecordRefused(DepotwatchError):
    """A change the book does not take; `problems` name the fields."""

    def __init__(self, what: str, problems: list[Problem]) -> None:
        super().__init__(f"{what}: " + "; ".join(f"{p.field}: {p.message}" for p in problems))
        self.problems = problems


def vaults(places: Depot) -> frozenset[str]:
    """Storehouses with a two-person door."""
    return frozenset(d.storehouse for d in places.doors.values() if d.two_person)


def problems(kind: str, entry: Entry, records: Records, places: Depot,
             now_ns: int) -> list[Problem]:
    """What is wrong with writing `entry` to the book at `now_ns` (empty: nothing)."""
    if isinstance(entry, RosterEntry):
        return _roster(entry, records, places)
    if isinstance(entry, Item):
        return _item(entry, places)
    if isinstance(entry, MovementOrderEntry):
        found = _window(entry.valid_from_ns, entry.valid_until_ns, now_ns, entry.state)
        if entry.portal not in places.portals:
            found.append(Problem("portal", f"no portal {entry.portal!r} in this depot"))
        found += [Problem("items", f"EPC {epc} is not on the book")
                  for epc in sorted(entry.epcs) if epc not in records.items]
        if not entry.epcs:
            found.append(Problem("items", "at least one item"))
        return found + _identifier(entry.id)
    if isinstance(entry, KeyIssueEntry):
        return _key_issue(entry, records, now_ns)
    if isinstance(entry, LifecycleEntry):
        return _step(entry, records, places)
    if isinstance(entry, ConsignmentEntry):
        return _consignment(entry, records, places)
    if isinstance(entry, WorkOrderEntry):
        found = _window(entry.valid_from_ns, entry.valid_until_ns, now_ns, entry.state)
        if entry.door not in places.doors:
            found.append(Problem("door", f"no door {entry.door!r} in this depot"))
        return found + _identifier(entry.id)
    raise TypeError(f"not a record: {kind}")


def _key_issue(entry: KeyIssueEntry, records: Records, now_ns: int) -> list[Problem]:
    if entry.state is not EntryState.ACTIVE:
        return []  # a return is always taken
    found = []
    item = records.items.get(entry.epc)
    if item is None or item.kind is not ItemKind.KEY:
        found.append(Problem("epc", f"{entry.epc} is not a key on the book"))
    holder = records.roster.get(entry.person)
    if holder is None or holder.state is not EntryState.ACTIVE:
        found.append(Problem("person", f"{entry.person!r} is not on the roster"))
    out = next((k.person for k in records.key_issues.values()
                if k.epc == entry.epc and k.state is EntryState.ACTIVE and k.id != entry.id),
               None)
    if out is not None:
        found.append(Problem("epc", f"this key is out already (held by {out})"))
    if entry.due_ns <= now_ns:
        found.append(Problem("due", "the due time is in the past"))
    return found


def _step(entry: LifecycleEntry, records: Records, places: Depot) -> list[Problem]:
    item = records.items.get(entry.epc)
    if item is None:
        return [Problem("epc", f"EPC {entry.epc} is not on the book")]
    found = []
    if entry.state not in NEXT_STATES[item.state]:
        allowed = ", ".join(sorted(s.value for s in NEXT_STATES[item.state])) or "none (final)"
        found.append(Problem("state", f"an item {item.state.value} cannot become "
                                      f"{entry.state.value} (allowed: {allowed})"))
    if entry.state in _DOCUMENTED and not entry.document.strip():
        found.append(Problem("document", f"{entry.state.value} needs its document (voucher, "
                                         "movement order or destruction certificate number)"))
    if entry.storehouse not in places.storehouses:
        found.append(Problem("storehouse", f"no storehouse {entry.storehouse!r} in this depot"))
    return found


def _consignment(entry: ConsignmentEntry, records: Records, places: Depot) -> list[Problem]:
    found = _identifier(entry.id)
    if entry.id in records.consignments:
        found.append(Problem("id", "this consignment is already on the book"))
    if not entry.exporting_state.strip():
        found.append(Problem("exporting_state", "the exporting state is needed"))
    if not entry.reference.strip():
        found.append(Problem("reference", "the licence or end-user certificate is needed"))
    if entry.storehouse not in places.storehouses:
        found.append(Problem("storehouse", f"no storehouse {entry.storehouse!r} in this depot"))
    if not entry.serials:
        found.append(Problem("items", "at least one item"))
    found += [Problem("items", f"EPC {epc} is on the book already")
              for epc, _ in entry.serials if epc in records.items]
    return found


def _identifier(value: str) -> list[Problem]:
    if _ID.match(value):
        return []
    return [Problem("id", "letters, digits, '_', '.' and '-', at most 64, not starting with "
                          "a sign")]


def _roster(entry: RosterEntry, records: Records, places: Depot) -> list[Problem]:
    found = []
    if not entry.name.strip():
        found.append(Problem("name", "a name is needed"))
    if not entry.badge.strip():
        found.append(Problem("badge", "a badge number is needed"))
    if not entry.zones:
        found.append(Problem("zones", "at least one storehouse"))
    found += [Problem("zones", f"no storehouse {zone!r} in this depot")
              for zone in sorted(entry.zones) if zone not in places.storehouses]
    if entry.state is EntryState.ACTIVE:
        holder = next((p.name for p in records.roster.values()
                       if p.badge == entry.badge and p.name != entry.name
                       and p.state is EntryState.ACTIVE), None)
        if holder is not None:
            found.append(Problem("badge", f"this badge is already on the roster ({holder})"))
    if (entry.valid_from_ns is not None and entry.valid_until_ns is not None
            and entry.valid_until_ns <= entry.valid_from_ns):
        found.append(Problem("valid_until", "must be after valid_from"))
    return found


def _item(entry: Item, places: Depot) -> list[Problem]:
    found = []
    if not _EPC.match(entry.epc):
        found.append(Problem("epc", "8 to 64 hex digits"))
    if not entry.name.strip():
        found.append(Problem("name", "a name is needed"))
    if entry.storehouse not in places.storehouses:
        found.append(Problem("storehouse", f"no storehouse {entry.storehouse!r} in this depot"))
    return found


def _window(start_ns: int, end_ns: int, now_ns: int, state: EntryState) -> list[Problem]:
    found = []
    if end_ns <= start_ns:
        found.append(Problem("valid_until", "must be after valid_from"))
    # Closing an order whose window has passed is fine; opening one is not.
    elif state is EntryState.ACTIVE and end_ns <= now_ns:
        found.append(Problem("valid_until", "the window is in the past"))
    return found


def approval_needed(kind: str, entry: Entry, records: Records, places: Depot) -> str:
    """Why this change waits for a second officer ("" if it takes effect at once)."""
    if isinstance(entry, RosterEntry) and entry.state is EntryState.ACTIVE:
        before = records.roster.get(entry.name)
        had = before.zones if before is not None and before.state is EntryState.ACTIVE \
            and before.badge == entry.badge else frozenset()
        gained = (entry.zones - had) & vaults(places)
        if gained:
            return f"grants vault access ({', '.join(sorted(gained))})"
    if isinstance(entry, LifecycleEntry) and entry.state in _TWO_PERSON:
        return f"takes {entry.epc} off the book ({entry.state.value})"
    if isinstance(entry, MovementOrderEntry) and entry.state is EntryState.ACTIVE:
        guarded = sorted({records.items[e].kind.value for e in entry.epcs
                          if e in records.items and records.items[e].kind in _GUARDED})
        if guarded:
            return f"moves {' and '.join(guarded)}"
    return ""
