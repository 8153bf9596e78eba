"""The gateway's own health over the month (issue 21): mains and UPS, clock synchronisation,
state disk and CPU temperature, per day, from the `gateway` points of its health sources."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict

from daemon.records.builder import ReportBuilder, rounded
from daemon.records.document import Table
from daemon.records.influxql import quote

__all__ = ["gateway_health"]

_NS = 1_000_000_000
_COLUMNS = ["date", "on_battery_hours", "min_charge_pct", "unsynchronised_hours",
            "max_offset_s", "min_disk_free_pct", "max_cpu_c"]


def gateway_health(b: ReportBuilder) -> Table:
    """Per day: hours on battery and the lowest charge, hours with the clock unsynchronised
    and the largest offset, the lowest free share of the state disk, the hottest CPU. A state
    (on battery, unsynchronised) holds from its point until the next one; days without any
    health point are left out."""
    table = Table("gateway_health", "Gateway health per day: mains, clock, disk, CPU", "",
                  _COLUMNS)
    days: dict[str, dict[str, float | None]] = defaultdict(dict)
    for component, field, column, how in (
            ("ups", "charge_pct", "min_charge_pct", "min"),
            ("clock", "offset_s", "max_offset_s", "max_abs"),
            ("disk", "free_pct", "min_disk_free_pct", "min"),
            ("cpu", "temperature_c", "max_cpu_c", "max")):
        # InfluxQL 1.x has no max(abs()): the offset's largest size is max or -min.
        select = (f'max("{field}") AS v, min("{field}") AS w' if how == "max_abs"
                  else f'{how}("{field}") AS v')
        q = (f'SELECT {select} FROM "gateway" WHERE {b.where(component=component)} '
             f'GROUP BY time(1d) fill(none) tz({quote(str(b.zone))})')
        for _, row in b.db.rows(q):
            value = row.get("v")
            if how == "max_abs" and value is not None and row.get("w") is not None:
                value = max(abs(float(value)), abs(float(row["w"])))
            days[b.clock.date(int(row["time"])).isoformat()][column] = rounded(value)
    for component, field, true_means, column in (("ups", "on_battery", True, "on_battery_hours"),
                                                 ("clock", "synchronised", False,
                                                  "unsynchronised_hours")):
        for day, hours in _state_hours(b, component, field, true_means).items():
            days[day][column] = hours
    for day in sorted(days):
        table.rows.append([day, *(days[day].get(c, 0.0 if c.endswith("_hours") else None)
                                  for c in _COLUMNS[1:])])
    return table


def _state_hours(b: ReportBuilder, component: str, field: str,
                 wanted: bool) -> dict[str, float]:
    """Hours per day the boolean `field` was `wanted`, each point holding until the next."""
    q = (f'SELECT "{field}" FROM "gateway" WHERE {b.where(None, b.until_ns, component=component)}')
    points = sorted((int(row["time"]), row.get(field) is wanted) for _, row in b.db.rows(q)
                    if row.get(field) is not None)
    hours: dict[str, float] = defaultdict(float)
    ends = [*(t for t, _ in points[1:]), b.until_ns] if points else []
    for (start, state), end in zip(points, ends, strict=True):
        at = start
        while state and at < end:
            # Split at local midnights so each day gets its own share.
            day = b.clock.date(at)
            midnight = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(),
                                           tzinfo=b.clock.zone)
            until = min(end, int(midnight.timestamp()) * _NS)
            hours[day.isoformat()] += (until - at) / _NS / 3600
            at = until
    return {day: round(h, 2) for day, h in hours.items() if h > 0}
