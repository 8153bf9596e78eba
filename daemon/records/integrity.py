"""The audit trail's integrity for the record: the chain checked, the month's entries, the head."""

from __future__ import annotations

from daemon.alerts.audit import audit_path, export, verify
from daemon.records.builder import ReportBuilder
from daemon.records.document import Table

__all__ = ["integrity"]


def integrity(b: ReportBuilder) -> tuple[Table, str, str]:
    """The `integrity` table, the trail's status and the hash of its last entry."""
    table = Table("integrity", "Audit trail integrity", "", ["item", "value"])
    path = audit_path(b.config.state_dir)
    if not path.exists():
        table.rows.append(["status", "no audit log"])
        table.rows.append(["file", str(path)])
        return table, "missing", ""
    b.progress("audit trail: verifying the chain")
    result = verify(path)
    month_entries = 0
    month_last: tuple[int, str] | None = None
    for entry in export(path, b.start_ns):
        if entry["at_ns"] >= b.end_ns:
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
