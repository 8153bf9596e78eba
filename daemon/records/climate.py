"""Climate sections of the record: daily extremes, hours above the limits, exceedance events."""

from __future__ import annotations

import datetime as dt
from typing import Any

from daemon.records.builder import ReportBuilder, as_float, rounded
from daemon.records.document import ClimateSeries, Table
from rules.depot import ClimateClass

__all__ = ["MAX_HOLD_S", "climate_events", "climate_limits", "climate_series", "daily_extremes",
           "hours_above", "trim_to_month"]

_NS = 1_000_000_000
# A climate sample counts for the time until the next one, but never longer than this: the
# sensor-silent limit (PSSM.md: missing after 15 min), so a dead sensor does not stay "hot".
MAX_HOLD_S = 15 * 60
# The raw climate query is split into chunks of this many days (progress on stderr).
_CHUNK_DAYS = 7


def climate_series(b: ReportBuilder, sh: str) -> list[ClimateSeries]:
    """Raw climate samples from a day before the month (the first daily window) to its end."""
    begin = b.start_ns - 86400 * _NS
    chunk = _CHUNK_DAYS * 86400 * _NS
    bounds = list(range(begin, b.end_ns, chunk))
    series: dict[str, ClimateSeries] = {}
    for index, lo in enumerate(bounds, start=1):
        b.progress(f"{sh}: climate samples, part {index}/{len(bounds)}")
        hi = min(lo + chunk, b.end_ns)
        q = (f'SELECT "temperature_c", "humidity_pct" FROM "climate" WHERE '
             f'{b.where(lo, hi, storehouse=sh)} GROUP BY "sensor"')
        for tags, row in b.db.rows(q):
            name = tags.get("sensor", "")
            s = series.setdefault(name, ClimateSeries(name))
            s.times_ns.append(int(row["time"]))
            s.temperature_c.append(as_float(row.get("temperature_c")))
            s.humidity_pct.append(as_float(row.get("humidity_pct")))
    return [series[k] for k in sorted(series)]


def daily_extremes(b: ReportBuilder, sh: str, series: list[ClimateSeries]) -> Table:
    """Each day's maximum and minimum: the `climate_daily` record, else computed from the
    samples of the 24 h to the daily reading."""
    table = Table("climate_daily", "Daily maximum and minimum (24 h to the "
                  f"{b.read_at.strftime('%H:%M')} reading)", sh,
                  ["date", "max_c", "min_c", "max_rh_pct", "min_rh_pct", "source"])
    recorded: dict[dt.date, dict[str, Any]] = {}
    q = (f'SELECT "max_c", "min_c", "max_humidity_pct", "min_humidity_pct" FROM '
         f'"climate_daily" WHERE {b.where(storehouse=sh)}')
    for _, point in b.db.rows(q):
        recorded[b.clock.date(int(point["time"]))] = point
    day = b.clock.date(b.start_ns)
    last = b.clock.date(b.end_ns - 1)
    while day <= last:
        row = recorded.get(day)
        if row is not None:
            table.rows.append([day.isoformat(), rounded(row.get("max_c")),
                               rounded(row.get("min_c")),
                               rounded(row.get("max_humidity_pct")),
                               rounded(row.get("min_humidity_pct")), "climate_daily"])
        else:
            end = dt.datetime.combine(day, b.read_at, tzinfo=b.zone)
            hi = int(end.timestamp()) * _NS
            lo = int((end - dt.timedelta(days=1)).timestamp()) * _NS
            temps = [v for s in series for t, v in zip(s.times_ns, s.temperature_c,
                                                        strict=True)
                     if lo <= t < hi and v is not None]
            rhs = [v for s in series for t, v in zip(s.times_ns, s.humidity_pct, strict=True)
                   if lo <= t < hi and v is not None]
            table.rows.append([
                day.isoformat(), rounded(max(temps)) if temps else None,
                rounded(min(temps)) if temps else None, rounded(max(rhs)) if rhs else None,
                rounded(min(rhs)) if rhs else None, "computed" if temps or rhs else "no data"])
        day += dt.timedelta(days=1)
    return table


def climate_limits(b: ReportBuilder, climate_class: ClimateClass) -> tuple[
        tuple[float, float], tuple[float, float]]:
    """(warning, alarm) limits of temperature and of humidity for a storehouse's climate class."""
    c = b.climate
    humidity_alarm = (c.propellant_humidity_alarm_pct
                      if climate_class is ClimateClass.PROPELLANT else c.humidity_alarm_pct)
    return ((c.temperature_warning_c, c.temperature_alarm_c),
            (c.humidity_warning_pct, humidity_alarm))


def hours_above(b: ReportBuilder, sh: str, series: list[ClimateSeries],
                temperature: tuple[float, float], humidity: tuple[float, float]) -> Table:
    """Per sensor, hours above each limit and the peak; a sample holds at most MAX_HOLD_S."""
    table = Table("climate_limits", "Hours above the warning and alarm limits", sh,
                  ["sensor", "quantity", "band", "limit", "hours_above", "peak"])
    hold = MAX_HOLD_S * _NS
    for s in series:
        for quantity, values, limits in (("temperature_c", s.temperature_c, temperature),
                                         ("humidity_pct", s.humidity_pct, humidity)):
            seconds = [0.0, 0.0]
            peak: float | None = None
            for i, (t, v) in enumerate(zip(s.times_ns, values, strict=True)):
                if v is None or not b.start_ns <= t < b.end_ns:
                    continue
                peak = v if peak is None else max(peak, v)
                nxt = s.times_ns[i + 1] if i + 1 < len(s.times_ns) else b.end_ns
                held = min(nxt, b.end_ns) - t
                for k, limit in enumerate(limits):
                    if v > limit:
                        seconds[k] += min(held, hold) / _NS
            for k, band in enumerate(("warning", "alarm")):
                table.rows.append([s.sensor, quantity, band, limits[k],
                                   round(seconds[k] / 3600, 2), rounded(peak)])
    return table


def climate_events(b: ReportBuilder, sh: str, series: list[ClimateSeries],
                   temperature: tuple[float, float], humidity: tuple[float, float]) -> Table:
    """Each run of consecutive in-month samples above a limit is one event. A sample counts until
    the next one, at most MAX_HOLD_S (as in `climate_limits`, so event hours add up to its
    hours); a silence longer than that ends the event."""
    table = Table("climate_events", "Exceedance events (consecutive samples above a limit)", sh,
                  ["sensor", "quantity", "band", "limit", "start", "end", "hours", "peak"])
    hold = MAX_HOLD_S * _NS
    events: list[tuple[int, str, str, str, float, int, float, float]] = []
    for s in series:
        for quantity, values, limits in (("temperature_c", s.temperature_c, temperature),
                                         ("humidity_pct", s.humidity_pct, humidity)):
            for band, limit in zip(("warning", "alarm"), limits, strict=True):
                run: list[float] | None = None  # start, end, seconds, peak
                for i, (t, v) in enumerate(zip(s.times_ns, values, strict=True)):
                    if v is None or not b.start_ns <= t < b.end_ns:
                        continue
                    if v <= limit:
                        if run is not None:
                            events.append((int(run[0]), s.sensor, quantity, band, limit,
                                           int(run[1]), run[2], run[3]))
                        run = None
                        continue
                    nxt = s.times_ns[i + 1] if i + 1 < len(s.times_ns) else b.end_ns
                    held = min(min(nxt, b.end_ns) - t, hold)
                    if run is not None and t > run[1]:  # a silence ended the last event
                        events.append((int(run[0]), s.sensor, quantity, band, limit,
                                       int(run[1]), run[2], run[3]))
                        run = None
                    if run is None:
                        run = [t, t, 0.0, v]
                    run[1], run[2], run[3] = t + held, run[2] + held, max(run[3], v)
                if run is not None:
                    events.append((int(run[0]), s.sensor, quantity, band, limit, int(run[1]),
                                   run[2], run[3]))
    for start, sensor, quantity, band, limit, end, held_ns, peak in sorted(events):
        table.rows.append([sensor, quantity, band, limit, b.clock.time(start), b.clock.time(end),
                           round(held_ns / _NS / 3600, 2), rounded(peak)])
    return table


def trim_to_month(series: list[ClimateSeries], start_ns: int) -> None:
    """Drop the samples before the month (read for the first daily window), for the plot."""
    for s in series:
        s_in = [i for i, t in enumerate(s.times_ns) if t >= start_ns]
        s.times_ns = [s.times_ns[i] for i in s_in]
        s.temperature_c = [s.temperature_c[i] for i in s_in]
        s.humidity_pct = [s.humidity_pct[i] for i in s_in]
