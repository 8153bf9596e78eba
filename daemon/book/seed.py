"""The config's record sections (roster, items, movement_orders, work_orders) as book entries:
imported on the first start and by `depotwatch records import` with no file."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from typing import Protocol

from daemon.book.entries import (
    Entry,
    ItemEntry,
    MovementOrderEntry,
    Records,
    RosterEntry,
    WorkOrderEntry,
)
from daemon.book.store import Write
from daemon.config.depot import ItemConfig, MovementOrderConfig, PersonConfig, WorkOrderConfig
from rules.depot import Item

__all__ = ["RecordSections", "differences", "seed_entries"]


class RecordSections(Protocol):
    """The config sections the book is seeded from."""

    roster: list[PersonConfig]
    items: list[ItemConfig]
    movement_orders: list[MovementOrderConfig]
    work_orders: list[WorkOrderConfig]


def _ns(moment: dt.datetime | None) -> int | None:
    return None if moment is None else int(moment.timestamp() * 1_000_000_000)


def seed_entries(sections: RecordSections) -> dict[str, list[Entry]]:
    """Every record the config's sections hold, by kind."""
    roster: list[Entry] = [
        RosterEntry(p.name, p.badge.get_secret_value(), frozenset(p.zones), _ns(p.valid_from),
                    _ns(p.valid_until), p.escort_only,
                    p.duress_code.get_secret_value() if p.duress_code else None)
        for p in sections.roster]
    items: list[Entry] = [Item(i.epc.upper(), i.name, i.kind, i.lot, i.storehouse)
                          for i in sections.items]
    movements: list[Entry] = [
        MovementOrderEntry(m.id, m.portal, frozenset(e.upper() for e in m.items),
                           _ns(m.valid_from) or 0, _ns(m.valid_until) or 0)
        for m in sections.movement_orders]
    works: list[Entry] = [WorkOrderEntry(w.id, w.door, _ns(w.valid_from) or 0,
                                         _ns(w.valid_until) or 0) for w in sections.work_orders]
    return {"roster": roster, "items": items, "movement_orders": movements,
            "work_orders": works}


def differences(records: Records, incoming: Mapping[str, Sequence[Entry]],
                versions: Mapping[str, Mapping[str, int]]) -> list[Write]:
    """The writes that bring the book to `incoming` (records not in it are left as they are):
    new records, and changed ones based on their current version."""
    writes: list[Write] = []
    for kind, entries in incoming.items():
        held: Mapping[str, ItemEntry | Entry] = records.of(kind)
        for entry in entries:
            key = entry.epc if isinstance(entry, Item) else entry.key
            if held.get(key) != entry:
                writes.append(Write(kind, entry, versions.get(kind, {}).get(key)))
    return writes
