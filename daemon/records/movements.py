"""Movement sections of the record: portal traffic, items out without an order, items unseen."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from daemon.records.builder import ReportBuilder, rounded
from daemon.records.document import Table

__all__ = ["daily_counts", "items_unseen", "movements"]

_DIFFERENCES = ("missing", "unexpected", "moved_without_order")


def movements(b: ReportBuilder, sh: str) -> list[Table]:
    """Portal reads out and in, items out without an order, incomplete movement orders."""
    portals = Table("movements", "Items out and in per portal", sh,
                    ["portal", "out", "in", "orders", "out_without_order"])
    unordered = Table("out_without_order", "Items that left without a movement order", sh,
                      ["time", "portal", "item", "epc"])
    uncertain = Table("count_uncertain", "Orders with items not read (count uncertain)", sh,
                      ["time", "portal", "order", "expected", "read"])
    per: dict[str, dict[str, Any]] = defaultdict(
        lambda: {"out": 0, "in": 0, "orders": set(), "unordered": 0})
    for p in b.config.portals:
        if p.storehouse == sh:
            _ = per[p.id]  # configured portals are listed even without traffic
    q = (f'SELECT "item", "epc", "order" FROM "portal" WHERE {b.where(storehouse=sh)} '
         'GROUP BY "portal", "direction"')
    for tags, row in b.db.rows(q):
        portal, direction = tags.get("portal", ""), tags.get("direction", "")
        order = str(row.get("order") or "")
        entry = per[portal]
        if direction in ("out", "in"):
            entry[direction] += 1
        if order:
            entry["orders"].add(order)
        elif direction == "out":
            entry["unordered"] += 1
            unordered.rows.append([b.clock.time(int(row["time"])), portal,
                                   str(row.get("item") or ""), str(row.get("epc") or "")])
    for portal in sorted(per):
        entry = per[portal]
        portals.rows.append([portal, entry["out"], entry["in"],
                             " ".join(sorted(entry["orders"])), entry["unordered"]])
    unordered.rows.sort(key=lambda r: str(r[0]))
    q = (f'SELECT "expected_count", "read_count", "complete" FROM "movement_order" WHERE '
         f'{b.where(storehouse=sh)} GROUP BY "portal", "order"')
    for tags, row in b.db.rows(q):
        if row.get("complete") is False:
            uncertain.rows.append([b.clock.time(int(row["time"])), tags.get("portal", ""),
                                   tags.get("order", ""), rounded(row.get("expected_count")),
                                   rounded(row.get("read_count"))])
    uncertain.rows.sort(key=lambda r: str(r[0]))
    return [portals, unordered, uncertain]


def items_unseen(b: ReportBuilder, sh: str) -> Table:
    """`alert` points of the item_unseen rule (not read for its max_unseen_s, 24 h by default)
    that fired in the month, with the first resolution after."""
    table = Table("items_unseen", "Items not seen for more than 24 h", sh,
                  ["since", "epc", "item", "resolved", "summary"])
    names = {i.epc.upper(): i.name for i in b.config.items}
    points = b.alert_points(sh, "item_unseen")
    for at, _, state, key, text in points:
        if state != "firing":
            continue
        epc = key.split(".", 1)[-1]
        resolved = next((t for t, _, s, k, _ in points if k == key and s == "resolved"
                         and t > at), None)
        table.rows.append([b.clock.time(at), epc, names.get(epc.upper(), ""),
                           b.clock.time(resolved), text])
    return table


def daily_counts(b: ReportBuilder, sh: str) -> Table:
    """The storehouse's counts against the book (rules/reconciliation.py) that found a
    difference: one line each, with the items it named."""
    table = Table("count_differences", "Daily counts that found differences", sh,
                  ["time", "by", "on_book", "seen", *_DIFFERENCES, "items"])
    q = (f'SELECT "by", "on_book", "seen", "missing", "unexpected", "moved_without_order", '
         f'"missing_epcs", "unexpected_epcs", "moved_without_order_epcs" FROM "reconciliation" '
         f"WHERE {b.where(storehouse=sh)}")
    for _, row in b.db.rows(q):
        if not any(row.get(name) for name in _DIFFERENCES):
            continue
        items = "; ".join(f"{name.replace('_', ' ')}: {row[f'{name}_epcs']}"
                          for name in _DIFFERENCES if row.get(f"{name}_epcs"))
        table.rows.append([b.clock.time(int(row["time"])), str(row.get("by") or ""),
                           *(rounded(row.get(k)) for k in ("on_book", "seen", *_DIFFERENCES)),
                           items])
    return table
