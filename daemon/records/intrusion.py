"""Intrusion sections of the record: walk test results and zone changes by staff (PSSM.md
"Intrusion detection and arming": every detector triggered and seen, the result recorded)."""

from __future__ import annotations

from daemon.records.builder import ReportBuilder
from daemon.records.document import Table

__all__ = ["walk_tests", "zone_changes"]


def walk_tests(b: ReportBuilder, sh: str) -> Table:
    """Each walk test that ended in the month: passed or failed, who walked it, each detector
    seen or not seen (`walk_test` points; starts and refusals are in the audit trail)."""
    table = Table("walk_tests", "Walk tests (every detector triggered and seen)", sh,
                  ["time", "result", "by", "how", "seen", "not_seen"])
    q = (f'SELECT "result", "by", "how", "seen", "not_seen" FROM "walk_test" '
         f"WHERE {b.where(storehouse=sh)} AND (\"result\" = 'passed' OR \"result\" = 'failed')")
    for _, row in b.db.rows(q):
        table.rows.append([b.clock.time(int(row["time"])), str(row.get("result") or ""),
                           str(row.get("by") or ""), str(row.get("how") or ""),
                           str(row.get("seen") or ""), str(row.get("not_seen") or "")])
    table.rows.sort(key=lambda r: str(r[0]))
    return table


def zone_changes(b: ReportBuilder, sh: str) -> Table:
    """Every change of the zone's state and every refused arming in the month: who, how,
    forced over what (`zone` points; repeats that changed nothing are left out)."""
    table = Table("zone_changes", "Zone armed and disarmed by staff", sh,
                  ["time", "state", "result", "by", "how", "forced", "not_secured", "note"])
    q = (f'SELECT "state", "result", "by", "how", "forced", "not_secured", "note" FROM "zone" '
         f"WHERE {b.where(storehouse=sh)} AND \"result\" != 'unchanged'")
    for _, row in b.db.rows(q):
        table.rows.append([b.clock.time(int(row["time"])), str(row.get("state") or ""),
                           str(row.get("result") or ""), str(row.get("by") or ""),
                           str(row.get("how") or ""), "yes" if row.get("forced") else "",
                           str(row.get("not_secured") or ""), str(row.get("note") or "")])
    table.rows.sort(key=lambda r: str(r[0]))
    return table
