"""Access, movement and supervision sections of the monthly record (issue 10), and the climate
exceedance events: per-door entries, entries while armed, two-person compliance on vault doors,
portal movements, items unseen for 24 h, availability, silent periods, tamper, gateway uptime
and spool backlog peaks. Each returns `Table`s that the PDF, CSV and JSON all carry.

Imported lazily by `daemon.report` (which these functions read through its `_Builder`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import TYPE_CHECKING, Any

from daemon.records.report import (
    MAX_HOLD_S,
    Cell,
    ClimateSeries,
    StorehouseReport,
    Table,
    _quote,
    _round,
)
from rules.sensor_silent import SensorSilentRuleConfig
from rules.two_person import TwoPersonRuleConfig

if TYPE_CHECKING:
    from daemon.records.report import _Builder

__all__ = ["access", "armed_entries", "climate_events", "gateway_tables", "items_unseen",
           "movements", "silent_periods", "supervision", "vault_tables"]

_NS = 1_000_000_000
_DAY_NS = 86400 * _NS


# -- per-door entries, portal movements, availability (the first cut) ----------------------


def access(b: _Builder, sh: str) -> list[Table]:
    """Granted entries, refused and unknown badges per door; refusals with roster names."""
    doors = [d.id for d in b.config.doors if d.storehouse == sh]
    per_door = Table("access_doors", "Entries per door", sh,
                     ["door", "entries", "refused", "unknown_badges"])
    refused = Table("access_refused", "Refused badges (roster names only)", sh,
                    ["time", "door", "result", "person"])
    counts: dict[str, Counter[str]] = {d: Counter() for d in doors}
    for door in doors:
        q = f'SELECT "person" FROM "access" WHERE {b._where(door=door)} GROUP BY "result"'
        for tags, row in b.db.rows(q):
            result = tags.get("result", "")
            person = str(row.get("person") or "")
            if result == "granted":
                counts[door]["entries"] += 1
                continue
            counts[door]["unknown" if result == "unknown" else "refused"] += 1
            refused.rows.append([b.clock.time(int(row["time"])), door, result,
                                 person or "(not on the roster)"])
    for door in doors:
        c = counts[door]
        per_door.rows.append([door, c["entries"], c["refused"], c["unknown"]])
    refused.rows.sort(key=lambda r: str(r[0]))
    return [per_door, refused]

def movements(b: _Builder, sh: str) -> list[Table]:
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
    q = (f'SELECT "item", "epc", "order" FROM "portal" WHERE {b._where(storehouse=sh)} '
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
         f'{b._where(storehouse=sh)} GROUP BY "portal", "order"')
    for tags, row in b.db.rows(q):
        if row.get("complete") is False:
            uncertain.rows.append([b.clock.time(int(row["time"])), tags.get("portal", ""),
                                   tags.get("order", ""), _round(row.get("expected_count")),
                                   _round(row.get("read_count"))])
    uncertain.rows.sort(key=lambda r: str(r[0]))
    return [portals, unordered, uncertain]

def supervision(b: _Builder, sh: str, series: list[ClimateSeries]) -> list[Table]:
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
             f'{b._where(None, b.until_ns, storehouse=sh, door=door.id)} '
             'GROUP BY time(1h) fill(none)')
        reported[(door.id, "door")] = {
            (int(row["time"]) - b.start_ns) // (3600 * _NS)
            for _, row in b.db.rows(q) if row.get("count")}
    for (sensor, kind), seen in sorted(reported.items()):
        table.rows.append([sensor, kind, len(seen), hours,
                           round(100 * len(seen) / hours, 1)])
    tamper = Table("tamper", "Tamper events", sh, ["time", "key", "summary"])
    q = (f'SELECT "key", "summary" FROM "alert" WHERE '
         f'{b._where(storehouse=sh, rule="tamper", state="firing")}')
    for _, row in b.db.rows(q):
        tamper.rows.append([b.clock.time(int(row["time"])), str(row.get("key") or ""),
                            str(row.get("summary") or "")])
    return [table, tamper]


# -- added: events, armed entries, vaults, unseen items, silences, gateway ------------------


def climate_events(b: _Builder, sh: str, series: list[ClimateSeries],
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
                           round(held_ns / _NS / 3600, 2), _round(peak)])
    return table


def armed_entries(b: _Builder, sh: str) -> Table:
    """Granted `access` events at a time the door's storehouse was armed (config schedule)."""
    table = Table("access_armed", "Entries while the storehouse was armed", sh,
                  ["time", "door", "person"])
    storehouse = b.depot.storehouses[sh]
    for door in (d.id for d in b.config.doors if d.storehouse == sh):
        q = (f'SELECT "person" FROM "access" WHERE '
             f'{b._where(door=door, result="granted")}')
        for _, row in b.db.rows(q):
            at = int(row["time"])
            if storehouse.is_armed(at):
                table.rows.append([b.clock.time(at), door, str(row.get("person") or "")])
    table.rows.sort(key=lambda r: str(r[0]))
    return table


def _alerts(b: _Builder, sh: str, *rules: str) -> list[tuple[int, str, str, str, str]]:
    """(time, rule, state, key, summary) of the month's `alert` points of these rules."""
    which = " OR ".join(f'"rule" = {_quote(r)}' for r in rules)
    q = (f'SELECT "key", "summary" FROM "alert" WHERE {b._where(storehouse=sh)} AND ({which}) '
         'GROUP BY "rule", "state"')
    out = [(int(row["time"]), tags.get("rule", ""), tags.get("state", ""),
            str(row.get("key") or ""), str(row.get("summary") or ""))
           for tags, row in b.db.rows(q)]
    return sorted(out)


def vault_tables(b: _Builder, sh: str) -> list[Table]:
    """Two-person compliance on doors with `two_person: true`. An opening is a `door` point with
    open=true after one that was not; it complies when two distinct persons had granted badges at
    that door in the two_person rule's window (60 s by default) up to the opening."""
    rule = next((r for r in b.config.rule_set() if isinstance(r, TwoPersonRuleConfig)),
                TwoPersonRuleConfig())
    window = int(rule.window_s * _NS)
    summary = Table("two_person", f"Two-person compliance on vault doors ({rule.window_s:g} s "
                    "window)", sh, ["door", "openings", "two_persons", "fewer",
                                    "two_person_alerts", "alone_alerts"])
    lone = Table("two_person_openings", "Vault openings without two distinct granted badges",
                 sh, ["time", "door", "persons"])
    alerts = Table("two_person_alerts", "Two-person alerts", sh, ["time", "rule", "key",
                                                                   "summary"])
    fired: dict[str, defaultdict[str, int]] = defaultdict(lambda: defaultdict(int))
    for at, name, state, key, text in _alerts(b, sh, "two_person", "two_person_alone"):
        if state == "firing":
            fired[key.split(".", 1)[-1]][name] += 1
            alerts.rows.append([b.clock.time(at), name, key, text])
    for door in (d.id for d in b.config.doors if d.storehouse == sh and d.two_person):
        grants = [(int(row["time"]), str(row.get("person") or "")) for _, row in b.db.rows(
            f'SELECT "person" FROM "access" WHERE '
            f'{b._where(b.start_ns - window, None, door=door, result="granted")}')]
        q = (f'SELECT "open" FROM "door" WHERE '
             f'{b._where(b.start_ns - _DAY_NS, None, storehouse=sh, door=door)}')
        was_open: bool | None = None
        openings = complying = 0
        for _, row in b.db.rows(q):
            at, is_open = int(row["time"]), row.get("open") is True
            if is_open and was_open is not True and at >= b.start_ns:
                openings += 1
                persons = sorted({p for t, p in grants if at - window <= t <= at and p})
                if len(persons) >= 2:
                    complying += 1
                else:
                    lone.rows.append([b.clock.time(at), door, ", ".join(persons) or "(none)"])
            if row.get("open") is not None:
                was_open = is_open
        summary.rows.append([door, openings, complying, openings - complying,
                             fired[door]["two_person"], fired[door]["two_person_alone"]])
    return [summary, lone, alerts]


def items_unseen(b: _Builder, sh: str) -> Table:
    """`alert` points of the item_unseen rule (not read for its max_unseen_s, 24 h by default)
    that fired in the month, with the first resolution after."""
    table = Table("items_unseen", "Items not seen for more than 24 h", sh,
                  ["since", "epc", "item", "resolved", "summary"])
    names = {i.epc.upper(): i.name for i in b.config.items}
    points = _alerts(b, sh, "item_unseen")
    for at, _, state, key, text in points:
        if state != "firing":
            continue
        epc = key.split(".", 1)[-1]
        resolved = next((t for t, _, s, k, _ in points if k == key and s == "resolved"
                         and t > at), None)
        table.rows.append([b.clock.time(at), epc, names.get(epc.upper(), ""),
                           b.clock.time(resolved), text])
    return table


def silent_periods(b: _Builder, sh: str, series: list[ClimateSeries]) -> Table:
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
             f'{b._where(b.start_ns - _DAY_NS, b.until_ns, storehouse=sh, door=door.id)}')
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


def gateway_tables(b: _Builder) -> list[Table]:
    """Uptime of each gateway input (`gateway` points with `up`: the last state holds until the
    next point; before any state is known the time is unknown) and the spool backlog peaks per
    day (`gateway` component=spool: max spool_points and lag_s)."""
    uptime = Table("gateway_uptime", "Gateway inputs: uptime over the month", "",
                   ["component", "up_hours", "down_hours", "unknown_hours", "up_percent",
                    "outages"])
    state: dict[str, bool | None] = {}
    q = (f'SELECT last("up") FROM "gateway" WHERE "site" = {_quote(b.site)} AND '
         f'time < {b.start_ns} GROUP BY "component"')
    for tags, row in b.db.rows(q):
        state[tags.get("component", "")] = row.get("last") is True
    changes: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    q = f'SELECT "up" FROM "gateway" WHERE {b._where(None, b.until_ns)} GROUP BY "component"'
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
         f'{b._where(component="spool")} GROUP BY time(1d) fill(none) tz({_quote(str(b.zone))})')
    for _, row in b.db.rows(q):
        spool.rows.append([b.clock.date(int(row["time"])).isoformat(), _round(row.get("max")),
                           _round(row.get("max_1"))])
    return [uptime, spool]


def _number(value: Cell) -> float:
    try:
        return float(value or 0)
    except ValueError:
        return 0.0


def _count(value: Cell) -> int:
    return int(_number(value))


def month_summary(sections: list[StorehouseReport]) -> Table:
    """The month at a glance, one column per storehouse, from the sections' own tables: what an
    inspector reads first, each figure detailed on the storehouse's pages."""
    table = Table("summary", "The month at a glance (details on each storehouse's pages)", "",
                  ["figure", *(s.id for s in sections)])
    columns: list[dict[str, Cell]] = []
    for section in sections:
        rows = {t.name: [dict(zip(t.columns, r, strict=True)) for r in t.rows]
                for t in section.tables}
        alarms = rows.get("alarms", [])
        checked = [a for a in alarms if a["within_target"] in ("yes", "no")]
        in_time = sum(1 for a in checked if a["within_target"] == "yes")
        muted = sum(1 for a in alarms if str(a["within_target"]).startswith("muted"))
        limits = rows.get("climate_limits", [])
        doors = rows.get("access_doors", [])
        moves = rows.get("movements", [])
        availability = [_number(r["percent"]) for r in rows.get("availability", [])]
        columns.append({
            "alarms raised": len(alarms),
            "found on site: intrusion / fault / false alarm": " / ".join(
                str(sum(1 for a in alarms if a["finding"] == f))
                for f in ("intrusion", "fault", "false_alarm")),
            "on-site checks within 15 min": f"{in_time} of {len(checked)}",
            "alarms never checked on site": len(alarms) - len(checked) - muted,
            "alarms muted, never paged (their cause was)": muted,
            "hours above a climate warning limit": max(
                (_number(r["hours_above"]) for r in limits if r["band"] == "warning"), default=0.0),
            "hours above a climate alarm limit": max(
                (_number(r["hours_above"]) for r in limits if r["band"] == "alarm"), default=0.0),
            "entries (granted badges)": sum(_count(r["entries"]) for r in doors),
            "entries while armed": len(rows.get("access_armed", [])),
            "badges refused / unknown": f"{sum(_count(r['refused']) for r in doors)} / "
                                        f"{sum(_count(r['unknown_badges']) for r in doors)}",
            "two-person openings with fewer than two": sum(
                _count(r["fewer"]) for r in rows.get("two_person", [])),
            "items out / in through portals": f"{sum(_count(r['out']) for r in moves)} / "
                                              f"{sum(_count(r['in']) for r in moves)}",
            "items out without a movement order": sum(
                _count(r["out_without_order"]) for r in moves),
            "movement orders with count uncertain": len(rows.get("count_uncertain", [])),
            "items not seen for more than 24 h": len(rows.get("items_unseen", [])),
            "lowest sensor availability %": min(availability, default=None),
            "tamper events": len(rows.get("tamper", [])),
        })
    for figure in columns[0] if columns else []:
        table.rows.append([figure, *(c[figure] for c in columns)])
    return table
