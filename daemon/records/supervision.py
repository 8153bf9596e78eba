"""Supervision sections of the record: availability, tamper, silent periods, gateway uptime."""

from __future__ import annotations

from collections import defaultdict

from daemon.records.builder import ReportBuilder, rounded
from daemon.records.document import ClimateSeries, Table
from daemon.records.influxql import quote
from rules.sensor_silent import SensorSilentRuleConfig

__all__ = ["gateway_tables", "silent_periods", "supervision"]

_NS = 1_000_000_000
_DAY_NS = 86400 * _NS


def supervision(b: ReportBuilder, sh: str, series: list[ClimateSeries]) -> list[Table]:
    """Hours with at least one reading per climate sensor and door; tamper alerts."""
    hours = max(1, -(-(b.until_ns - b.start_ns) // (3600 * _NS)))
    table = Table("availability", "Sensor availability (hours with at least one reading)",
                  sh, ["sensor", "kind", "hours_reporting", "hours", "percent"])
    reported: dict[tuple[str, str], set[int]] = {}
    sensors = [c.id for c in b.config.climate_sensors if c.storehouse == sh]
    sensors += [s.sensor for s in series if s.sensor not in sensors]
    for name in sensors:
        reported[(name, "climate")] = set()
    for s in series:
        reported[(s.sensor, "climate")] = {
            (t - b.start_ns) // (3600 * _NS) for t in s.times_ns
            if b.start_ns <= t < b.until_ns}
    for door in (d for d in b.config.doors if d.storehouse == sh):
        q = (f'SELECT count("open") FROM "door" WHERE '
             f'{b.where(None, b.until_ns, storehouse=sh, door=door.id)} '
             'GROUP BY time(1h) fill(none)')
        reported[(door.id, "door")] = {
            (int(row["time"]) - b.start_ns) // (3600 * _NS)
            for _, row in b.db.rows(q) if row.get("count")}
    for (sensor, kind), seen in sorted(reported.items()):
        table.rows.append([sensor, kind, len(seen), hours,
                           round(100 * len(seen) / hours, 1)])
    tamper = Table("tamper", "Tamper events", sh, ["time", "key", "summary"])
    q = (f'SELECT "key", "summary" FROM "alert" WHERE '
         f'{b.where(storehouse=sh, rule="tamper", state="firing")}')
    for _, row in b.db.rows(q):
        tamper.rows.append([b.clock.time(int(row["time"])), str(row.get("key") or ""),
                            str(row.get("summary") or "")])
    return [table, tamper]


def silent_periods(b: ReportBuilder, sh: str, series: list[ClimateSeries]) -> Table:
    """Gaps longer than the sensor's supervision limit (the sensor_silent rule's wired_s,
    radio_s, climate_s) between consecutive points, clipped to the month (up to now). Climate
    sensors from `climate` points, door contacts from `door` points; a gap still open at the end
    counts up to then."""
    rule = next((r for r in b.config.rule_set() if isinstance(r, SensorSilentRuleConfig)),
                SensorSilentRuleConfig())
    table = Table("silent_periods", "Silent periods (no reading for longer than the "
                  "supervision limit)", sh,
                  ["sensor", "kind", "limit_s", "start", "end", "minutes", "open_at_end"])
    timelines: list[tuple[str, str, float, list[int]]] = []
    known = {s.sensor: s.times_ns for s in series}
    for c in (c for c in b.config.climate_sensors if c.storehouse == sh):
        timelines.append((c.id, "climate", rule.climate_s, known.pop(c.id, [])))
    timelines += [(name, "climate", rule.climate_s, times) for name, times in known.items()]
    for door in (d for d in b.config.doors if d.storehouse == sh):
        # Every door reading with a field writes a point (heartbeats carry the contact state).
        q = (f'SELECT * FROM "door" WHERE '
             f'{b.where(b.start_ns - _DAY_NS, b.until_ns, storehouse=sh, door=door.id)}')
        times = [int(row["time"]) for _, row in b.db.rows(q)]
        limit = rule.wired_s if door.supervision == "wired" else rule.radio_s
        timelines.append((door.id, "door", limit, times))
    for name, kind, limit_s, times in timelines:
        limit = int(limit_s * _NS)
        points = sorted(t for t in times if t < b.until_ns)
        previous: int | None = None
        for index, t in enumerate([*points, b.until_ns]):
            gap_from = b.start_ns if previous is None else previous
            if t - gap_from > limit and t > b.start_ns:
                since = max(gap_from, b.start_ns)
                table.rows.append([name, kind, limit_s, b.clock.time(since), b.clock.time(t),
                                   round((t - since) / _NS / 60, 1),
                                   "yes" if index == len(points) else "no"])
            previous = t
    return table


def gateway_tables(b: ReportBuilder) -> list[Table]:
    """Uptime of each gateway input (`gateway` points with `up`: the last state holds until the
    next point; before any state is known the time is unknown) and the spool backlog peaks per
    day (`gateway` component=spool: max spool_points and lag_s)."""
    uptime = Table("gateway_uptime", "Gateway inputs: uptime over the month", "",
                   ["component", "up_hours", "down_hours", "unknown_hours", "up_percent",
                    "outages"])
    state: dict[str, bool | None] = {}
    q = (f'SELECT last("up") FROM "gateway" WHERE "site" = {quote(b.site)} AND '
         f'time < {b.start_ns} GROUP BY "component"')
    for tags, row in b.db.rows(q):
        state[tags.get("component", "")] = row.get("last") is True
    changes: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    q = f'SELECT "up" FROM "gateway" WHERE {b.where(None, b.until_ns)} GROUP BY "component"'
    for tags, row in b.db.rows(q):
        changes[tags.get("component", "")].append((int(row["time"]), row.get("up") is True))
    total = max(1, b.until_ns - b.start_ns)
    for component in sorted(set(state) | set(changes)):
        spans: dict[bool | None, int] = {True: 0, False: 0, None: 0}
        now, up, outages = b.start_ns, state.get(component), 0
        for t, value in sorted(changes[component]):
            spans[up] += t - now
            if not value and up is not False:
                outages += 1
            now, up = t, value
        spans[up] += b.until_ns - now
        uptime.rows.append([component, round(spans[True] / _NS / 3600, 2),
                            round(spans[False] / _NS / 3600, 2),
                            round(spans[None] / _NS / 3600, 2),
                            round(100 * spans[True] / total, 2), outages])
    spool = Table("spool_peaks", "Spool backlog peaks per day", "",
                  ["date", "max_spool_points", "max_lag_s"])
    q = (f'SELECT max("spool_points"), max("lag_s") FROM "gateway" WHERE '
         f'{b.where(component="spool")} GROUP BY time(1d) fill(none) tz({quote(str(b.zone))})')
    for _, row in b.db.rows(q):
        spool.rows.append([b.clock.date(int(row["time"])).isoformat(), rounded(row.get("max")),
                           rounded(row.get("max_1"))])
    return [uptime, spool]
