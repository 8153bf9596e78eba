"""The roster and the item register as CSV: `depotwatch records import|export FILE.csv`.

An import is checked whole first: every bad row is reported with its line number and field,
and nothing is applied when any row is bad (issue 19).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from daemon.book.checks import Problem, problems
from daemon.book.entries import KINDS, Entry, Records, RosterEntry
from daemon.book.forms import FORMS
from rules.depot import Depot, Item

__all__ = ["COLUMNS", "export_csv", "read_csv"]

# The key column first; zones are separated by spaces.
COLUMNS: Mapping[str, tuple[str, ...]] = {
    "roster": ("name", "badge", "zones", "valid_from", "valid_until", "escort_only"),
    "items": ("epc", "name", "kind", "lot", "storehouse"),
}


def read_csv(kind: str, text: str, records: Records, places: Depot,
             now_ns: int) -> tuple[list[Entry], list[str]]:
    """The entries a CSV file holds, and its problems as `line N: field: why` (empty: none)."""
    if kind not in COLUMNS:
        return [], [f"line 1: kind: only {' and '.join(COLUMNS)} import from CSV"]
    reader = csv.DictReader(io.StringIO(text))
    # `state` as an export writes it, so that an export imports back (states themselves
    # change through their own operations: revoke, and issue 27's item lifecycle).
    key_column, wanted = COLUMNS[kind][0], {*COLUMNS[kind], "state"}
    missing = sorted({key_column, *_required(kind)} - set(reader.fieldnames or ()))
    unknown = sorted(set(reader.fieldnames or ()) - wanted)
    if missing or unknown:
        return [], [f"line 1: header: {'missing ' + ', '.join(missing) if missing else ''}"
                    f"{'; ' if missing and unknown else ''}"
                    f"{'unknown ' + ', '.join(unknown) if unknown else ''}"]
    entries: list[Entry] = []
    errors: list[str] = []
    seen: dict[str, int] = {}
    for row in reader:
        line = reader.line_num
        entry, found = _row(kind, row, records)
        if entry is not None:
            key = str(getattr(entry, KINDS[kind].key))
            if key in seen:
                found.append(Problem(key_column, f"also on line {seen[key]}"))
            seen.setdefault(key, line)
            found += problems(kind, entry, _with(records, kind, entries), places, now_ns)
            entries.append(entry)
        errors += [f"line {line}: {p.field}: {p.message}" for p in found]
    return entries, errors


def _required(kind: str) -> set[str]:
    return {"zones"} if kind == "roster" else {"name", "storehouse"}


def _row(kind: str, row: Mapping[str, Any], records: Records) -> tuple[Entry | None,
                                                                       list[Problem]]:
    fields = {k: v for k, v in row.items()
              if k is not None and k != "state" and v not in (None, "")}
    key = str(fields.pop(COLUMNS[kind][0], "")).strip()
    if not key:
        return None, [Problem(COLUMNS[kind][0], "empty")]
    if kind == "roster" and "zones" in fields:
        fields["zones"] = str(fields["zones"]).split()
    if kind == "roster" and "escort_only" in fields:
        fields["escort_only"] = str(fields["escort_only"]).strip().lower() in ("1", "true", "yes")
    try:
        form = FORMS[kind].model_validate(fields)
    except ValidationError as exc:
        return None, [Problem(".".join(str(p) for p in e["loc"]) or "row", e["msg"])
                      for e in exc.errors(include_url=False)]
    held = records.of(kind).get(key.upper() if kind == "items" else key)
    return form.entry(key, held), []


def _with(records: Records, kind: str, entries: list[Entry]) -> Records:
    # A badge twice in one file is as bad as a badge already on the roster.
    if kind != "roster" or not entries:
        return records
    roster = dict(records.roster)
    for entry in entries:
        if isinstance(entry, RosterEntry):
            roster[entry.name] = entry
    return Records(roster, records.items, records.movement_orders, records.work_orders)


def export_csv(kind: str, records: Records) -> str:
    """The roster (badges left out) or the item register as CSV, in key order, with each
    record's state."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    columns = (*(c for c in COLUMNS[kind] if c != "badge"), "state")
    writer.writerow(columns)
    for key in sorted(records.of(kind)):
        entry = records.of(kind)[key]
        if isinstance(entry, Item):
            writer.writerow((entry.epc, entry.name, entry.kind.value, entry.lot,
                             entry.storehouse, entry.state.value))
        elif isinstance(entry, RosterEntry):
            writer.writerow((entry.name, " ".join(sorted(entry.zones)),
                             _iso(entry.valid_from_ns), _iso(entry.valid_until_ns),
                             str(entry.escort_only).lower(), entry.state.value))
    return out.getvalue()


def _iso(ns: int | None) -> str:
    return "" if ns is None else dt.datetime.fromtimestamp(ns / 1e9, dt.UTC).isoformat()
