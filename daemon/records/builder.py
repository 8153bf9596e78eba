"""What every section of the monthly record reads: the month, storehouses, zone and InfluxDB."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo

from daemon.config.schema import Config
from daemon.records.document import ReportError
from daemon.records.influxql import InfluxQL, quote
from daemon.tsdb.settings import InfluxConfig
from rules.climate import ClimateRuleConfig
from rules.climate_record import ClimateRecordRuleConfig

__all__ = ["Progress", "ReportBuilder", "ReportClock", "as_float", "month_range", "rounded"]

_NS = 1_000_000_000
Progress = Callable[[str], None]


def month_range(month: str, zone: ZoneInfo) -> tuple[int, int]:
    """[start, end) of a YYYY-MM month in the zone, in ns since the epoch."""
    try:
        first = dt.datetime.strptime(month, "%Y-%m").replace(tzinfo=zone)
    except ValueError as exc:
        raise ReportError(f"--month {month!r}: give it as YYYY-MM, e.g. 2026-11") from exc
    nxt = (first.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return int(first.timestamp()) * _NS, int(nxt.timestamp()) * _NS


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


class ReportClock:
    """Local-time formatting in the report's zone."""

    def __init__(self, zone: ZoneInfo) -> None:
        self.zone = zone

    def time(self, ns: int | None) -> str:
        """`YYYY-MM-DD HH:MM` local time, or "" for no time."""
        if ns is None:
            return ""
        return dt.datetime.fromtimestamp(ns // _NS, tz=self.zone).strftime("%Y-%m-%d %H:%M")

    def date(self, ns: int) -> dt.date:
        """The local date."""
        return dt.datetime.fromtimestamp(ns // _NS, tz=self.zone).date()


class ReportBuilder:
    """The month being reported, for one storehouse or all: config, zone, time range, InfluxDB."""

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
        self.clock = ReportClock(self.zone)
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

    def where(self, start_ns: int | None = None, end_ns: int | None = None,
              **tags: str) -> str:
        """An InfluxQL WHERE clause: this site, these tags, the month (or [start_ns, end_ns))."""
        clauses = [f'"site" = {quote(self.site)}']
        clauses += [f'"{k}" = {quote(v)}' for k, v in tags.items()]
        clauses.append(f"time >= {self.start_ns if start_ns is None else start_ns}")
        clauses.append(f"time < {self.end_ns if end_ns is None else end_ns}")
        return " AND ".join(clauses)

    def alert_points(self, sh: str, *rules: str) -> list[tuple[int, str, str, str, str]]:
        """(time, rule, state, key, summary) of the month's `alert` points of these rules."""
        which = " OR ".join(f'"rule" = {quote(r)}' for r in rules)
        q = (f'SELECT "key", "summary" FROM "alert" WHERE {self.where(storehouse=sh)} '
             f'AND ({which}) GROUP BY "rule", "state"')
        out = [(int(row["time"]), tags.get("rule", ""), tags.get("state", ""),
                str(row.get("key") or ""), str(row.get("summary") or ""))
               for tags, row in self.db.rows(q)]
        return sorted(out)


def as_float(value: Any) -> float | None:
    """A number from InfluxDB as a float; None for anything else (booleans too)."""
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def rounded(value: Any) -> float | None:
    """A number from InfluxDB to two decimals, as the tables show it; None for anything else."""
    number = as_float(value)
    return None if number is None else round(number, 2)
