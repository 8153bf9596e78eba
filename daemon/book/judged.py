"""The depot the rules judge with: the config's places and devices, the book's records."""

from __future__ import annotations

import dataclasses

from daemon.book.entries import EntryState, Records
from rules.depot import Depot, KeyIssue, MovementOrder, Person, WorkOrder

__all__ = ["judged_depot"]


def judged_depot(base: Depot, records: Records) -> Depot:
    """`base` with its roster, items and orders replaced by the book's active records."""
    active = EntryState.ACTIVE
    roster = {p.badge: Person(p.name, p.zones, p.valid_from_ns, p.valid_until_ns,
                              p.escort_only)
              for p in records.roster.values() if p.state is active}
    return dataclasses.replace(
        base, roster=roster,
        # The mapping itself: 100,000 items are not copied for each roster change.
        items=records.items,
        movement_orders=tuple(
            MovementOrder(m.id, m.portal, m.epcs, m.valid_from_ns, m.valid_until_ns)
            for m in records.movement_orders.values() if m.state is active),
        work_orders=tuple(WorkOrder(w.id, w.door, w.valid_from_ns, w.valid_until_ns)
                          for w in records.work_orders.values() if w.state is active),
        duress={p.duress_code: p.name for p in records.roster.values()
                if p.state is active and p.duress_code is not None},
        keys_out={k.epc: KeyIssue(k.epc, k.person, k.issued_ns, k.due_ns)
                  for k in records.key_issues.values() if k.state is active},
    )
