"""The monthly PSSM record (issue 10): facts gathered from InfluxDB and the audit trail.

Every figure comes from InfluxQL over the daemon's own schema (README "InfluxDB schema") and from
`state_dir/audit.jsonl`. `build_report` returns tables (the same ones in PDF, CSV and JSON) plus
the climate series the PDF plots; the climate tables are built here, the alarm tables in
`daemon.report_alarms`, the rest in `daemon.report_sections`; `daemon.report_pdf` renders the PDF.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from daemon.alerts.audit import audit_path, export, verify
from daemon.config.schema import Config
from daemon.tsdb.settings import InfluxConfig
from daemon.vocabulary.errors import DepotwatchError
from rules.climate import ClimateRuleConfig
from rules.climate_record import ClimateRecordRuleConfig
from rules.depot import ClimateClass

__all__ = [
    "RESPONSE_TARGET_S",
    "ClimateSeries",
    "Format",
    "InfluxQL",
    "Report",
    "ReportError",
    "StorehouseReport",
    "Table",
    "build_report",
    "month_range",
    "write_report",
]

_NS = 1_000_000_000
# PSSM.md "response": on-scene confirmation expected within 15 min of an alarm.
RESPONSE_TARGET_S = 15 * 60
# A climate sample counts for the time until the next one, but never longer than this: the
# sensor-silent limit (PSSM.md: missing after 15 min), so a dead sensor does not stay "hot".
MAX_HOLD_S = 15 * 60
# The raw climate query is split into chunks of this many days (progress on stderr).
_CHUNK_DAYS = 7
Cell = str | int | float | None
Format = Literal["pdf", "csv", "json"]
Progress = Callable[[str], None]


class ReportError(DepotwatchError):
    """The report cannot be built (no InfluxDB target, a failed query, a missing library)."""


@dataclass(slots=True)
class Table:
    """One table of the report; the PDF, CSV and JSON all carry exactly these."""

    name: str
    title: str
    storehouse: str
    columns: list[str]
    rows: list[list[Cell]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON form: rows as objects keyed by column."""
        return {"name": self.name, "title": self.title, "storehouse": self.storehouse,
                "columns": self.columns,
                "rows": [dict(zip(self.columns, row, strict=True)) for row in self.rows]}


@dataclass(slots=True)
class ClimateSeries:
    """One sensor's samples over the month, for the plot."""

    sensor: str
    times_ns: list[int] = field(default_factory=list)
    temperature_c: list[float | None] = field(default_factory=list)
    humidity_pct: list[float | None] = field(default_factory=list)


@dataclass(slots=True)
class StorehouseReport:
    """One storehouse's sections."""

    id: str
    name: str
    tables: list[Table]
    series: list[ClimateSeries]
    # (label, limit) of the temperature and humidity warning and alarm limits, for the plot bands.
    temperature_limits: tuple[float, float]
    humidity_limits: tuple[float, float]
    notes: list[str] = field(default_factory=list)


@dataclass(slots=True)
class Report:
    """The whole monthly record."""

    site: str
    site_name: str
    month: str
    timezone: str
    start_ns: int
    end_ns: int
    generated: str
    storehouses: list[StorehouseReport]
    site_tables: list[Table]
    audit_status: str
    audit_head_hash: str

    def tables(self) -> list[Table]:
        """Every table, storehouse sections first, then the site-wide ones."""
        return [t for s in self.storehouses for t in s.tables] + self.site_tables

    def as_dict(self) -> dict[str, Any]:
        """The JSON document."""
        return {"site": self.site, "site_name": self.site_name, "month": self.month,
                "timezone": self.timezone, "generated": self.generated,
                "storehouses": [{"id": s.id, "name": s.name, "notes": s.notes}
                                for s in self.storehouses],
                "audit": {"status": self.audit_status, "head_hash": self.audit_head_hash},
                "tables": [t.as_dict() for t in self.tables()]}


def month_range(month: str, zone: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a YYYY-MM month in the zone, in ns since the epoch."""
    try:
        first = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=zone)
    except ValueError as exc:
        raise ReportError(f"--month {month!r}: give it as YYYY-MM, e.g. 2026-11") from exc
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return int(first.timestamp()) * _NS, int(nxt.timestamp()) * _NS


def _quote(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxQL:
    """InfluxQL over HTTP `/query` (urllib, stdlib). InfluxDB 1.x natively; 2.x and 3.x answer
    through their v1-compatible `/query` (the bucket needs a DBRP mapping on 2.x)."""

    def __init__(self, target: InfluxConfig) -> None:
        self.url = target.url.rstrip("/") + "/query"
        self.database = target.database or target.bucket or ""
        self.timeout_s = max(target.timeout_s, 60.0)
        self._params = {"db": self.database, "epoch": "ns"}
        if target.retention_policy:
            self._params["rp"] = target.retention_policy
        self._headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if target.api == "v2" and target.token is not None:
            self._headers["Authorization"] = f"Token {target.token.get_secret_value()}"
        elif target.username:
            password = target.password.get_secret_value() if target.password else ""
            basic = base64.b64encode(f"{target.username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {basic}"

    def query(self, influxql: str) -> list[dict[str, Any]]:
        """The series of one statement: each with name, tags, columns, values."""
        body = urllib.parse.urlencode({**self._params, "q": influxql}).encode()
        request = urllib.request.Request(self.url, data=body, headers=self._headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise ReportError(f"InfluxDB {self.url}: HTTP {exc.code}: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise ReportError(f"InfluxDB {self.url}: {exc}") from exc
        results = answer.get("results") or [{}]
        if "error" in results[0]:
            raise ReportError(f"InfluxDB query failed: {results[0]['error']}: {influxql}")
        series: list[dict[str, Any]] = results[0].get("series") or []
        return series

    def rows(self, influxql: str) -> Iterable[tuple[dict[str, str], dict[str, Any]]]:
        """Each row as (tags of its series, {column: value})."""
        for series in self.query(influxql):
            tags = series.get("tags") or {}
            for values in series.get("values") or []:
                yield tags, dict(zip(series["columns"], values, strict=True))


def _target(config: Config) -> InfluxConfig:
    for target in config.influxdb:
        if target.api == "v1":
            return target
    if config.influxdb:
        return config.influxdb[0]
    raise ReportError("the config has no influxdb target to read the month from")


def _climate_config(config: Config) -> ClimateRuleConfig:
    for rule in config.rule_set():
        if isinstance(rule, ClimateRuleConfig):
            return rule
    return ClimateRuleConfig()


def _read_at(config: Config) -> dt.time:
    for rule in config.rule_set():
        if isinstance(rule, ClimateRecordRuleConfig):
            return rule.read_at
    return ClimateRecordRuleConfig().read_at


class _Clock:
    """Local-time formatting in the report's zone."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def time(self, ns: int | None) -> str:
        if ns is None:
            return ""
        return dt.datetime.fromtimestamp(ns // _NS, tz=self.zone).strftime("%Y-%m-%d %H:%M")

    def date(self, ns: int) -> dt.date:
        return dt.datetime.fromtimestamp(ns // _NS, tz=self.zone).date()


class _Builder:
    def __init__(self, config: Config, month: str, storehouse: str | None,
                 progress: Progress, now_ns: int) -> None:
        self.config = config
        self.month = month
        ids = [s.id for s in config.storehouses]
        if storehouse is not None and storehouse not in ids:
            raise ReportError(f"--storehouse {storehouse}: not in the config ({', '.join(ids)})")
        self.storehouses = [s for s in config.storehouses
                            if storehouse is None or s.id == storehouse]
        self.zone = ZoneInfo(self.storehouses[0].timezone)
        self.clock = _Clock(self.zone)
        self.start_ns, self.end_ns = month_range(month, self.zone)
        # Availability counts the hours of the month that have passed.
        self.until_ns = max(self.start_ns, min(self.end_ns, now_ns))
        self.now_ns = now_ns
        self.progress = progress
        self.db = InfluxQL(_target(config))
        self.site = config.site.id
        self.climate = _climate_config(config)
        self.read_at = _read_at(config)
        self.depot = config.depot()

    def _where(self, start_ns: int | None = None, end_ns: int | None = None,
               **tags: str) -> str:
        clauses = [f'"site" = {_quote(self.site)}']
        clauses += [f'"{k}" = {_quote(v)}' for k, v in tags.items()]
        clauses.append(f"time >= {self.start_ns if start_ns is None else start_ns}")
        clauses.append(f"time < {self.end_ns if end_ns is None else end_ns}")
        return " AND ".join(clauses)

    # -- climate ---------------------------------------------------------------------------------

    def _series(self, sh: str) -> list[ClimateSeries]:
        """Raw climate samples from a day before the month (the first daily window) to its end."""
        begin = self.start_ns - 86400 * _NS
        chunk = _CHUNK_DAYS * 86400 * _NS
        bounds = list(range(begin, self.end_ns, chunk))
        series: dict[str, ClimateSeries] = {}
        for index, lo in enumerate(bounds, start=1):
            self.progress(f"{sh}: climate samples, part {index}/{len(bounds)}")
            hi = min(lo + chunk, self.end_ns)
            q = (f'SELECT "temperature_c", "humidity_pct" FROM "climate" WHERE '
                 f'{self._where(lo, hi, storehouse=sh)} GROUP BY "sensor"')
            for tags, row in self.db.rows(q):
                name = tags.get("sensor", "")
                s = series.setdefault(name, ClimateSeries(name))
                s.times_ns.append(int(row["time"]))
                s.temperature_c.append(_float(row.get("temperature_c")))
                s.humidity_pct.append(_float(row.get("humidity_pct")))
        return [series[k] for k in sorted(series)]

    def _daily(self, sh: str, series: list[ClimateSeries]) -> Table:
        table = Table("climate_daily", "Daily maximum and minimum (24 h to the "
                      f"{self.read_at.strftime('%H:%M')} reading)", sh,
                      ["date", "max_c", "min_c", "max_rh_pct", "min_rh_pct", "source"])
        recorded: dict[dt.date, dict[str, Any]] = {}
        q = (f'SELECT "max_c", "min_c", "max_humidity_pct", "min_humidity_pct" FROM '
             f'"climate_daily" WHERE {self._where(storehouse=sh)}')
        for _, point in self.db.rows(q):
            recorded[self.clock.date(int(point["time"]))] = point
        day = self.clock.date(self.start_ns)
        last = self.clock.date(self.end_ns - 1)
        while day <= last:
            row = recorded.get(day)
            if row is not None:
                table.rows.append([day.isoformat(), _round(row.get("max_c")),
                                   _round(row.get("min_c")),
                                   _round(row.get("max_humidity_pct")),
                                   _round(row.get("min_humidity_pct")), "climate_daily"])
            else:
                end = dt.datetime.combine(day, self.read_at, tzinfo=self.zone)
                hi = int(end.timestamp()) * _NS
                lo = int((end - dt.timedelta(days=1)).timestamp()) * _NS
                temps = [v for s in series for t, v in zip(s.times_ns, s.temperature_c,
                                                            strict=True)
                         if lo <= t < hi and v is not None]
                rhs = [v for s in series for t, v in zip(s.times_ns, s.humidity_pct, strict=True)
                       if lo <= t < hi and v is not None]
                table.rows.append([
                    day.isoformat(), _round(max(temps)) if temps else None,
                    _round(min(temps)) if temps else None, _round(max(rhs)) if rhs else None,
                    _round(min(rhs)) if rhs else None, "computed" if temps or rhs else "no data"])
            day += dt.timedelta(days=1)
        return table

    def _limits(self, climate_class: ClimateClass) -> tuple[tuple[float, float],
                                                             tuple[float, float]]:
        c = self.climate
        humidity_alarm = (c.propellant_humidity_alarm_pct
                          if climate_class is ClimateClass.PROPELLANT else c.humidity_alarm_pct)
        return ((c.temperature_warning_c, c.temperature_alarm_c),
                (c.humidity_warning_pct, humidity_alarm))

    def _hours_above(self, sh: str, series: list[ClimateSeries],
                     temperature: tuple[float, float], humidity: tuple[float, float]) -> Table:
        table = Table("climate_limits", "Hours above the warning and alarm limits", sh,
                      ["sensor", "quantity", "band", "limit", "hours_above", "peak"])
        hold = MAX_HOLD_S * _NS
        for s in series:
            for quantity, values, limits in (("temperature_c", s.temperature_c, temperature),
                                             ("humidity_pct", s.humidity_pct, humidity)):
                seconds = [0.0, 0.0]
                peak: float | None = None
                for i, (t, v) in enumerate(zip(s.times_ns, values, strict=True)):
                    if v is None or not self.start_ns <= t < self.end_ns:
                        continue
                    peak = v if peak is None else max(peak, v)
                    nxt = s.times_ns[i + 1] if i + 1 < len(s.times_ns) else self.end_ns
                    held = min(nxt, self.end_ns) - t
                    for b, limit in enumerate(limits):
                        if v > limit:
                            seconds[b] += min(held, hold) / _NS
                for b, band in enumerate(("warning", "alarm")):
                    table.rows.append([s.sensor, quantity, band, limits[b],
                                       round(seconds[b] / 3600, 2), _round(peak)])
        return table

    # -- integrity -------------------------------------------------------------------------------

    def _integrity(self) -> tuple[Table, str, str]:
        table = Table("integrity", "Audit trail integrity", "", ["item", "value"])
        path = audit_path(self.config.state_dir)
        if not path.exists():
            table.rows.append(["status", "no audit log"])
            table.rows.append(["file", str(path)])
            return table, "missing", ""
        self.progress("audit trail: verifying the chain")
        result = verify(path)
        month_entries = 0
        month_last: tuple[int, str] | None = None
        for entry in export(path, self.start_ns):
            if entry["at_ns"] >= self.end_ns:
                break
            month_entries += 1
            month_last = (int(entry["seq"]), str(entry["hash"]))
        status = {"intact": "intact", "torn_tail": "intact up to a torn final write",
                  "tampered": "TAMPERED"}[result.status]
        table.rows += [["status", status], ["file", str(path)], ["entries", result.lines],
                       ["entries_in_month", month_entries],
                       ["month_last_seq", month_last[0] if month_last else None],
                       ["month_last_hash", month_last[1] if month_last else ""],
                       ["head_seq", result.last_seq], ["head_hash", result.last_hash]]
        table.rows += [["problem", str(p)] for p in result.problems[:50]]
        if len(result.problems) > 50:
            table.rows.append(["problem", f"... {len(result.problems) - 50} more"])
        return table, status, result.last_hash

    # -- the whole -------------------------------------------------------------------------------

    def build(self) -> Report:
        from daemon.records import alarms
        from daemon.records import sections as more

        by_storehouse = alarms.by_storehouse(self)
        sections = []
        for sh in self.storehouses:
            self.progress(f"{sh.id}: climate")
            series = self._series(sh.id)
            temperature, humidity = self._limits(sh.climate_class)
            tables = [self._daily(sh.id, series),
                      self._hours_above(sh.id, series, temperature, humidity),
                      more.climate_events(self, sh.id, series, temperature, humidity)]
            self.progress(f"{sh.id}: alarms, access, movements, supervision")
            tables += alarms.alarm_tables(self, sh.id, by_storehouse.get(sh.id, []))
            tables += [*more.access(self, sh.id), more.armed_entries(self, sh.id)]
            tables += more.vault_tables(self, sh.id)
            tables += [*more.movements(self, sh.id), more.items_unseen(self, sh.id)]
            tables += more.supervision(self, sh.id, series)
            tables.append(more.silent_periods(self, sh.id, series))
            notes = []
            if not any(s.times_ns for s in series):
                notes.append("no climate readings in InfluxDB for this month")
            for s in series:
                s_in = [i for i, t in enumerate(s.times_ns) if t >= self.start_ns]
                s.times_ns = [s.times_ns[i] for i in s_in]
                s.temperature_c = [s.temperature_c[i] for i in s_in]
                s.humidity_pct = [s.humidity_pct[i] for i in s_in]
            sections.append(StorehouseReport(sh.id, sh.name or sh.id, tables, series,
                                             temperature, humidity, notes))
        integrity, status, head = self._integrity()
        self.progress("gateway: uptime and spool backlog")
        site_tables = [more.month_summary(sections), integrity, *more.gateway_tables(self)]
        if len(self.storehouses) == len(self.config.storehouses) and by_storehouse.get(""):
            for t in alarms.alarm_tables(self, "", by_storehouse[""]):
                t.name, t.title = f"site_{t.name}", f"{t.title}, not tied to a storehouse"
                site_tables.append(t)
        generated = dt.datetime.fromtimestamp(self.now_ns / _NS, tz=self.zone)
        return Report(self.site, self.config.site.name or self.site, self.month, str(self.zone),
                      self.start_ns, self.end_ns, generated.strftime("%Y-%m-%d %H:%M %Z"),
                      sections, site_tables, status, head)


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _round(value: Any) -> float | None:
    number = _float(value)
    return None if number is None else round(number, 2)


def _stderr(message: str) -> None:
    print(f"report: {message}", file=sys.stderr, flush=True)


def build_report(config: Config, month: str, storehouse: str | None = None,
                 progress: Progress = _stderr, now_ns: int | None = None) -> Report:
    """Gather the month's record for every storehouse (or one)."""
    import time

    now = time.time_ns() if now_ns is None else now_ns
    return _Builder(config, month, storehouse, progress, now).build()


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
        from daemon.records.pdf import render_pdf

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
