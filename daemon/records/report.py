"""The monthly PSSM record (issue 10): the sections put together, written as PDF, CSV or JSON.

Every figure comes from InfluxQL over the daemon's own schema (README "InfluxDB schema") and from
`state_dir/audit.jsonl`. `build_report` returns tables (the same ones in PDF, CSV and JSON) plus
the climate series the PDF plots. Each section module reads the month through a
`ReportBuilder`: `climate`, `alarms`, `access`, `movements`, `intrusion`, `supervision`,
`integrity`, then `summary` over the storehouses' tables; `pdf` renders the finished report.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from daemon.config.depot import StorehouseConfig
from daemon.config.schema import Config
from daemon.records import access, alarms, climate, intrusion, movements, supervision
from daemon.records.builder import Progress, ReportBuilder
from daemon.records.document import Format, Report, StorehouseReport
from daemon.records.gateway_health import gateway_health
from daemon.records.integrity import integrity
from daemon.records.pdf import render_pdf
from daemon.records.summary import month_summary

__all__ = ["build_report", "parse_csv", "to_csv", "write_report"]

_NS = 1_000_000_000


def _storehouse_section(b: ReportBuilder, sh: StorehouseConfig,
                        episodes: list[alarms.Episode]) -> StorehouseReport:
    """One storehouse's tables, climate first, and its series cut to the month for the plot."""
    b.progress(f"{sh.id}: climate")
    series = climate.climate_series(b, sh.id)
    temperature, humidity = climate.climate_limits(b, sh.climate_class)
    tables = [climate.daily_extremes(b, sh.id, series),
              climate.hours_above(b, sh.id, series, temperature, humidity),
              climate.climate_events(b, sh.id, series, temperature, humidity)]
    b.progress(f"{sh.id}: alarms, access, movements, supervision")
    tables += alarms.alarm_tables(b, sh.id, episodes)
    tables += [*access.access(b, sh.id), access.armed_entries(b, sh.id)]
    tables += access.vault_tables(b, sh.id)
    tables += [*movements.movements(b, sh.id), movements.items_unseen(b, sh.id),
               movements.daily_counts(b, sh.id)]
    tables += [intrusion.walk_tests(b, sh.id), intrusion.zone_changes(b, sh.id)]
    tables += supervision.supervision(b, sh.id, series)
    tables.append(supervision.silent_periods(b, sh.id, series))
    notes = []
    if not any(s.times_ns for s in series):
        notes.append("no climate readings in InfluxDB for this month")
    climate.trim_to_month(series, b.start_ns)
    return StorehouseReport(sh.id, sh.name or sh.id, tables, series, temperature, humidity,
                            notes)


def _stderr(message: str) -> None:
    print(f"report: {message}", file=sys.stderr, flush=True)


def build_report(config: Config, month: str, storehouse: str | None = None,
                 progress: Progress = _stderr, now_ns: int | None = None) -> Report:
    """Gather the month's record for every storehouse (or one)."""
    now = time.time_ns() if now_ns is None else now_ns
    b = ReportBuilder(config, month, storehouse, progress, now)
    by_storehouse = alarms.by_storehouse(b)
    sections = [_storehouse_section(b, sh, by_storehouse.get(sh.id, []))
                for sh in b.storehouses]
    table, status, head = integrity(b)
    b.progress("gateway: uptime and spool backlog")
    site_tables = [month_summary(sections), table, *supervision.gateway_tables(b),
                   gateway_health(b)]
    if len(b.storehouses) == len(config.storehouses) and by_storehouse.get(""):
        for t in alarms.alarm_tables(b, "", by_storehouse[""]):
            t.name, t.title = f"site_{t.name}", f"{t.title}, not tied to a storehouse"
            site_tables.append(t)
    generated = dt.datetime.fromtimestamp(b.now_ns / _NS, tz=b.zone)
    return Report(b.site, config.site.name or b.site, month, str(b.zone), b.start_ns, b.end_ns,
                  generated.strftime("%Y-%m-%d %H:%M %Z"), sections, site_tables, status, head)


def to_csv(report: Report) -> str:
    """Every table as a CSV section: a `# name,storehouse,title` line, the header, the rows, a
    blank line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["# site", report.site, "month", report.month, "timezone", report.timezone,
                     "audit_head_hash", report.audit_head_hash])
    out.write("\n")
    for table in report.tables():
        writer.writerow([f"# {table.name}", table.storehouse, table.title])
        writer.writerow(table.columns)
        writer.writerows(["" if c is None else c for c in row] for row in table.rows)
        out.write("\n")
    return out.getvalue()


def write_report(report: Report, output: Path, fmt: Format) -> None:
    """Write the report as PDF, CSV or JSON."""
    if fmt == "json":
        output.write_text(json.dumps(report.as_dict(), indent=1, ensure_ascii=False) + "\n",
                          encoding="utf-8")
    elif fmt == "csv":
        output.write_text(to_csv(report), encoding="utf-8")
    else:
        output.write_bytes(render_pdf(report))


def parse_csv(text: str) -> dict[tuple[str, str], list[dict[str, str]]]:
    """Read `to_csv` back: (table name, storehouse) -> rows as dicts (used by tests and tools)."""
    tables: dict[tuple[str, str], list[dict[str, str]]] = {}
    lines: Sequence[str] = text.split("\n\n")
    for block in lines[1:]:
        rows = list(csv.reader(io.StringIO(block)))
        if len(rows) < 2:
            continue
        name, storehouse = rows[0][0].removeprefix("# "), rows[0][1]
        tables[(name, storehouse)] = [dict(zip(rows[1], r, strict=True)) for r in rows[2:]]
    return tables
