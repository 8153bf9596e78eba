"""Access sections of the monthly record: entries per door, armed entries, two-person vaults."""

from __future__ import annotations

from collections import Counter, defaultdict

from daemon.records.builder import ReportBuilder
from daemon.records.document import Table
from rules.two_person import TwoPersonRuleConfig

__all__ = ["access", "armed_entries", "vault_tables"]

_NS = 1_000_000_000
_DAY_NS = 86400 * _NS


def access(b: ReportBuilder, sh: str) -> list[Table]:
    """Granted entries, refused and unknown badges per door; refusals with roster names."""
    doors = [d.id for d in b.config.doors if d.storehouse == sh]
    per_door = Table("access_doors", "Entries per door", sh,
                     ["door", "entries", "refused", "unknown_badges"])
    refused = Table("access_refused", "Refused badges (roster names only)", sh,
                    ["time", "door", "result", "person"])
    counts: dict[str, Counter[str]] = {d: Counter() for d in doors}
    for door in doors:
        q = f'SELECT "person" FROM "access" WHERE {b.where(door=door)} GROUP BY "result"'
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


def armed_entries(b: ReportBuilder, sh: str) -> Table:
    """Granted `access` events at a time the door's storehouse was armed (config schedule)."""
    table = Table("access_armed", "Entries while the storehouse was armed", sh,
                  ["time", "door", "person"])
    storehouse = b.depot.storehouses[sh]
    for door in (d.id for d in b.config.doors if d.storehouse == sh):
        q = (f'SELECT "person" FROM "access" WHERE '
             f'{b.where(door=door, result="granted")}')
        for _, row in b.db.rows(q):
            at = int(row["time"])
            if storehouse.is_armed(at):
                table.rows.append([b.clock.time(at), door, str(row.get("person") or "")])
    table.rows.sort(key=lambda r: str(r[0]))
    return table


def vault_tables(b: ReportBuilder, sh: str) -> list[Table]:
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
    for at, name, state, key, text in b.alert_points(sh, "two_person", "two_person_alone"):
        if state == "firing":
            fired[key.split(".", 1)[-1]][name] += 1
            alerts.rows.append([b.clock.time(at), name, key, text])
    for door in (d.id for d in b.config.doors if d.storehouse == sh and d.two_person):
        grants = [(int(row["time"]), str(row.get("person") or "")) for _, row in b.db.rows(
            f'SELECT "person" FROM "access" WHERE '
            f'{b.where(b.start_ns - window, None, door=door, result="granted")}')]
        q = (f'SELECT "open" FROM "door" WHERE '
             f'{b.where(b.start_ns - _DAY_NS, None, storehouse=sh, door=door)}')
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
