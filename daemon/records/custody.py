"""A consignment's custody record (issue 27, ATT Articles 11 and 13.2): for every item delivered
under it, its life on the book (states, storehouses, who, approved by whom, on which document)
its portal passages and its shelf reads (first and last of each day in each storehouse); the
daily climate of every storehouse it lived in against that
storehouse's storage class limits; and every security alarm of those storehouses with how it
was handled. The same tables as PDF, CSV and JSON, through the monthly record's machinery.
"""

from __future__ import annotations

import datetime as dt
import time
from collections import defaultdict
from collections.abc import Callable

from daemon.book.entries import ConsignmentEntry
from daemon.book.store import RecordsStore
from daemon.config.schema import Config
from daemon.records import alarms, climate
from daemon.records.builder import Progress, ReportBuilder
from daemon.records.document import Cell, Report, ReportError, StorehouseReport, Table
from daemon.records.influxql import quote
from daemon.records.integrity import integrity

__all__ = ["consignment_report", "range_builder"]

_NS = 1_000_000_000


def range_builder(config: Config, storehouse: str | None, start_ns: int, end_ns: int,
                  progress: Progress, now_ns: int) -> ReportBuilder:
    """A report builder over [start_ns, end_ns) rather than a calendar month."""
    if end_ns <= start_ns:
        raise ReportError("--to must be after --from")
    zone = dt.datetime.fromtimestamp(start_ns / _NS, dt.UTC)
    b = ReportBuilder(config, zone.strftime("%Y-%m"), storehouse, progress, now_ns)
    b.start_ns, b.end_ns = start_ns, end_ns
    b.until_ns = max(start_ns, min(end_ns, now_ns))
    b.month = f"{b.clock.time(start_ns)} to {b.clock.time(end_ns)}"
    return b


def _find(store: RecordsStore, consignment_id: str) -> ConsignmentEntry:
    found = store.load().consignments.get(consignment_id)
    if found is None:
        raise ReportError(f"no consignment {consignment_id!r} on the book")
    return found


_Passage = tuple[str, int, str, str, str, str]


def _passages(b: ReportBuilder, epcs: set[str]) -> list[_Passage]:
    """(epc, at, portal, direction, storehouse, order) of the items' portal passages."""
    q = (f'SELECT "epc", "order" FROM "portal" WHERE {b.where()} '
         'GROUP BY "portal", "direction", "storehouse"')
    rows = [(str(row.get("epc") or ""), int(row["time"]), tags.get("portal", ""),
             tags.get("direction", ""), tags.get("storehouse", ""), str(row.get("order") or ""))
            for tags, row in b.db.rows(q) if str(row.get("epc") or "") in epcs]
    return sorted(rows, key=lambda r: (r[0], r[1]))


# EPCs named in one query's WHERE clause (InfluxQL has no IN for fields).
_EPCS_PER_QUERY = 200


def shelf_reads(b: ReportBuilder, serial: dict[str, str]) -> Table:
    """Per item, day and storehouse: the first and last inventory read (`inventory` points,
    one per item per storehouse per window, so the last is the last window's first read)."""
    days: dict[tuple[str, str, str], list[int]] = {}
    readers: dict[tuple[str, str, str], set[str]] = defaultdict(set)
    epcs = sorted(serial)
    for n in range(0, len(epcs), _EPCS_PER_QUERY):
        named = " OR ".join(f'"epc" = {quote(e)}' for e in epcs[n:n + _EPCS_PER_QUERY])
        q = (f'SELECT "epc" FROM "inventory" WHERE {b.where()} AND ({named}) '
             'GROUP BY "storehouse", "reader"')
        for tags, row in b.db.rows(q):
            at, epc = int(row["time"]), str(row.get("epc") or "")
            day = dt.datetime.fromtimestamp(at / _NS, tz=b.zone).strftime("%Y-%m-%d")
            key = (epc, day, tags.get("storehouse", ""))
            seen = days.setdefault(key, [at, at])
            seen[0], seen[1] = min(seen[0], at), max(seen[1], at)
            readers[key].add(tags.get("reader", ""))
    table = Table("shelf_reads", "Shelf reads: first and last inventory read of each day", "",
                  ["epc", "serial", "date", "storehouse", "first_read", "last_read", "readers"])
    for key in sorted(days):
        first, last = (dt.datetime.fromtimestamp(t / _NS, tz=b.zone).strftime("%H:%M:%S")
                       for t in days[key])
        table.rows.append([key[0], serial.get(key[0], ""), key[1], key[2], first, last,
                           " ".join(sorted(readers[key]))])
    return table


def custody_tables(b: ReportBuilder, store: RecordsStore,
                   consignment: ConsignmentEntry) -> tuple[list[Table], set[str]]:
    """The consignment, its items now, and each item's history; the storehouses it lived in."""
    serial = dict(consignment.serials)
    records = store.load()
    head = Table("consignment", "Consignment", "",
                 ["id", "exporting_state", "reference", "storehouse", "received", "items"])
    head.rows.append([consignment.id, consignment.exporting_state, consignment.reference,
                      consignment.storehouse, b.clock.time(consignment.received_ns),
                      len(serial)])
    items = Table("items", "Items of the consignment, as the book holds them now", "",
                  ["epc", "serial", "name", "kind", "lot", "state", "storehouse"])
    for epc in sorted(serial):
        item = records.items.get(epc)
        items.rows.append([epc, serial[epc], item.name if item else "", item.kind.value
                           if item else "", item.lot if item else "",
                           item.state.value if item else "not on the book",
                           item.storehouse if item else ""])
    history = Table("custody", "Custody history: every step on the book and every portal "
                    "passage", "", ["epc", "serial", "at", "event", "state", "storehouse", "by",
                                    "approved_by", "document"])
    events: dict[str, list[tuple[int, list[Cell]]]] = defaultdict(list)
    lived = {consignment.storehouse}
    for change in store.history("lifecycle", b.start_ns, b.end_ns):
        step = change.after or {}
        epc = str(step.get("epc", ""))
        if epc not in serial:
            continue
        at, where = int(step.get("at_ns", change.at_ns)), str(step.get("storehouse", ""))
        lived.add(where)
        events[epc].append((at, ["step", str(step.get("state", "")), where, change.actor,
                                 change.approved_by, str(step.get("document", ""))]))
    b.progress("custody: portal passages")
    for epc, at, portal, direction, where, order in _passages(b, set(serial)):
        events[epc].append((at, [f"passage {portal}", direction, where, f"portal {portal}",
                                 "", order]))
    b.progress("custody: shelf reads")
    shelves = shelf_reads(b, serial)
    lived |= {str(row[3]) for row in shelves.rows}
    for epc in sorted(events):
        for at, row in sorted(events[epc], key=_after_its_passage(events[epc])):
            moment = dt.datetime.fromtimestamp(at / _NS, tz=b.zone)
            history.rows.append([epc, serial[epc], moment.strftime("%Y-%m-%d %H:%M:%S"),
                                 *row])
    return [head, items, history, shelves], {s for s in lived if s}


# A step through the portal and its passage's point are stamped apart by the record clock's
# offset from the rules' steady clock (microseconds, more after a clock step): a step is sorted
# right after the passage of its item and direction within this much of it.
_PASSAGE_STEP_NS = 2 * _NS
_STEP_OF = {"out": "issued", "in": "returned"}


def _after_its_passage(events: list[tuple[int, list[Cell]]],
                       ) -> Callable[[tuple[int, list[Cell]]], tuple[int, int]]:
    """Sort key of an item's events: by time, a portal step just after its passage."""
    passages = [(at, _STEP_OF.get(str(row[1]), ""), row[3])
                for at, row in events if str(row[0]).startswith("passage ")]

    def key(event: tuple[int, list[Cell]]) -> tuple[int, int]:
        at, row = event
        if row[0] == "step":
            for passage_at, state, actor in passages:
                if (row[1], row[3]) == (state, actor) and abs(at - passage_at) <= _PASSAGE_STEP_NS:
                    return passage_at, 1
        return at, 0

    return key


def _storehouse(b: ReportBuilder, sh: str, episodes: list[alarms.Episode]) -> StorehouseReport:
    """The climate the items lived in, day by day against the limits, and the alarms."""
    config = next(s for s in b.config.storehouses if s.id == sh)
    b.progress(f"{sh}: climate")
    series = climate.climate_series(b, sh)
    temperature, humidity = climate.climate_limits(b, config.climate_class)
    daily = climate.daily_extremes(b, sh, series)
    daily.columns += ["class", "temperature_limit_c", "humidity_limit_pct", "within_limits"]
    for row in daily.rows:
        hot = isinstance(row[1], float) and row[1] > temperature[1]
        damp = isinstance(row[3], float) and row[3] > humidity[1]
        verdict = "no data" if row[1] is None and row[3] is None else (
            "no" if hot or damp else "yes")
        row += [config.climate_class.value, temperature[1], humidity[1], verdict]
    tables = [daily, climate.hours_above(b, sh, series, temperature, humidity),
              *alarms.alarm_tables(b, sh, episodes)]
    notes = [] if any(s.times_ns for s in series) else ["no climate readings in InfluxDB"]
    climate.trim_to_month(series, b.start_ns)
    return StorehouseReport(sh, config.name or sh, tables, series, temperature, humidity,
                            notes)


def consignment_report(config: Config, store: RecordsStore, consignment_id: str,
                       start_ns: int, end_ns: int, progress: Progress,
                       now_ns: int | None = None) -> Report:
    """Gather a consignment's custody record over [start_ns, end_ns)."""
    now = time.time_ns() if now_ns is None else now_ns
    consignment = _find(store, consignment_id)
    b = range_builder(config, consignment.storehouse, start_ns, end_ns, progress, now)
    b.storehouses = list(config.storehouses)  # its items may have lived in any of them
    site_tables, lived = custody_tables(b, store, consignment)
    by_storehouse = alarms.by_storehouse(b)
    sections = [_storehouse(b, sh, by_storehouse.get(sh, [])) for sh in sorted(lived)
                if any(s.id == sh for s in config.storehouses)]
    table, status, head = integrity(b)
    site_tables.append(table)
    generated = dt.datetime.fromtimestamp(now / _NS, tz=b.zone)
    return Report(b.site, config.site.name or b.site, f"consignment {consignment.id}, "
                  f"{b.month}", str(b.zone), start_ns, end_ns,
                  generated.strftime("%Y-%m-%d %H:%M %Z"), sections, site_tables, status, head,
                  title="Consignment custody record")
