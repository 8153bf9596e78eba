"""CSV for the people who audit the depot: the registers, the roster and order history, the
daily counts, and movement orders with their portal passages (issue 19), from the CLI and the
console alike."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from daemon.book.csvio import COLUMNS, export_csv
from daemon.book.store import RecordsStore
from daemon.config.schema import Config
from daemon.records.influxql import InfluxQL, quote

__all__ = ["EXPORTS", "Passages", "export", "influx_passages", "moment_ns"]

# What may be exported: the registers, then what reads the store's history and counts.
EXPORTS = (*sorted(COLUMNS), "roster-history", "orders-history", "reconciliation",
           "movements", "key-register")
_HISTORIES = {"roster-history": ("roster",),
              "orders-history": ("movement_orders", "work_orders")}
_DIFFERENCES = ("missing", "unexpected", "moved_without_order")
_END = 2**63 - 1

# Portal passages under orders in a time range: order -> rows (at_ns, portal, direction, epc,
# item), read from InfluxDB's `portal` points by the caller that knows where they are.
Passages = Callable[[int, int], Mapping[str, list[tuple[int, str, str, str, str]]]]


def influx_passages(config: Config) -> Passages | None:
    """Portal passages under movement orders, read from the config's first InfluxDB target
    (None without one). Blocking: call it off the event loop."""
    if not config.influxdb:
        return None
    db = InfluxQL(config.influxdb[0])

    def read(since_ns: int, until_ns: int) -> dict[str, list[tuple[int, str, str, str, str]]]:
        found: dict[str, list[tuple[int, str, str, str, str]]] = {}
        q = (f'SELECT "order", "epc", "item" FROM "portal" WHERE "site" = '
             f"{quote(config.site.id)} AND time >= {since_ns} AND time < {until_ns} "
             'GROUP BY "portal", "direction"')
        for tags, row in db.rows(q):
            if row.get("order"):
                found.setdefault(str(row["order"]), []).append(
                    (int(row["time"]), tags.get("portal", ""), tags.get("direction", ""),
                     str(row.get("epc") or ""), str(row.get("item") or "")))
        for rows in found.values():
            rows.sort()
        return found
    return read


def moment_ns(text: str) -> int:
    """A date or time from an export's range (UTC unless it says otherwise)."""
    moment = dt.datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1_000_000_000)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat()


def export(what: str, store: RecordsStore, since_ns: int = 0, until_ns: int = _END,
           passages: Passages | None = None) -> str:
    """One export as CSV text; `what` is one of EXPORTS."""
    if what in COLUMNS:
        return export_csv(what, store.load())
    if what == "reconciliation":
        return _rows(_counts(store, since_ns, until_ns))
    if what == "movements":
        return _rows(_movements(store, since_ns, until_ns, passages))
    if what == "key-register":
        return _rows(_keys(store, since_ns, until_ns))
    if what in _HISTORIES:
        return _rows(_history(store, _HISTORIES[what], since_ns, until_ns))
    raise ValueError(f"no export {what!r}: {', '.join(EXPORTS)}")


def _rows(rows: Iterable[Iterable[Any]]) -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(rows)
    return out.getvalue()


def _history(store: RecordsStore, kinds: tuple[str, ...], since_ns: int,
             until_ns: int) -> Iterable[Iterable[Any]]:
    """Every change of `kinds`, oldest first: who, when, approved by, before, after (badges
    as digests)."""
    yield ("at", "kind", "key", "version", "by", "approved_by", "before", "after")
    changes = sorted((c for kind in kinds for c in store.history(kind, since_ns, until_ns)),
                     key=lambda c: c.seq)
    for c in changes:
        yield (_iso(c.at_ns), c.kind, c.key, c.version, c.actor, c.approved_by,
               "" if c.before is None else json.dumps(c.before, sort_keys=True),
               "" if c.after is None else json.dumps(c.after, sort_keys=True))


def _counts(store: RecordsStore, since_ns: int, until_ns: int) -> Iterable[Iterable[Any]]:
    """Every count: when, storehouse, by whom, and what it found."""
    yield ("at", "storehouse", "by", "on_book", "seen", *_DIFFERENCES,
           *(f"{n}_epcs" for n in _DIFFERENCES))
    for at_ns, storehouse, by, fields in store.counts(since_ns, until_ns):
        yield (_iso(at_ns), storehouse, by, int(fields.get("on_book", 0)),
               int(fields.get("seen", 0)), *(int(fields.get(n, 0)) for n in _DIFFERENCES),
               *(fields.get(f"{n}_epcs", "") for n in _DIFFERENCES))


def _movements(store: RecordsStore, since_ns: int, until_ns: int,
               passages: Passages | None) -> Iterable[Iterable[Any]]:
    """Each movement order whose window meets the range, who issued and approved it, and a
    line per portal passage under it (none: the order's own line only)."""
    yield ("order", "portal", "valid_from", "valid_until", "state", "issued_by", "approved_by",
           "items", "passage_at", "passage_portal", "direction", "epc", "item")
    issued: dict[str, tuple[str, str]] = {}
    for change in store.history("movement_orders"):
        issued.setdefault(change.key, (change.actor, change.approved_by))
    under = passages(since_ns, until_ns) if passages is not None else {}
    for order in sorted(store.load().movement_orders.values(), key=lambda o: o.valid_from_ns):
        if order.valid_until_ns < since_ns or order.valid_from_ns >= until_ns:
            continue
        by, approved = issued.get(order.id, ("", ""))
        head = (order.id, order.portal, _iso(order.valid_from_ns), _iso(order.valid_until_ns),
                order.state.value, by, approved, " ".join(sorted(order.epcs)))
        rows = under.get(order.id, [])
        if not rows:
            yield (*head, "", "", "", "", "")
        for at_ns, portal, direction, epc, item in rows:
            yield (*head, _iso(at_ns), portal, direction, epc, item)


def _keys(store: RecordsStore, since_ns: int, until_ns: int) -> Iterable[Iterable[Any]]:
    """Who held which key when: every issue that overlaps the range, with who issued it."""
    yield ("key", "epc", "person", "issued", "due", "returned", "issued_by", "returned_by")
    by: dict[str, list[str]] = {}
    for change in store.history("key_issues"):
        by.setdefault(change.key, []).append(change.actor)
    records = store.load()
    for issue in sorted(records.key_issues.values(), key=lambda k: k.issued_ns):
        if issue.issued_ns >= until_ns or (issue.returned_ns or _END) < since_ns:
            continue
        item = records.items.get(issue.epc)
        actors = by.get(issue.id, [""])
        yield (item.name if item else "", issue.epc, issue.person, _iso(issue.issued_ns),
               _iso(issue.due_ns), "" if issue.returned_ns is None else _iso(issue.returned_ns),
               actors[0], actors[-1] if issue.returned_ns is not None else "")
