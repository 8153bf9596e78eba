"""Alarm sections of the monthly record (issue 10): every alarm raised in the month from the
audit trail (`raised`, `acknowledged`, `checked`, `cleared` entries), its response times against
the 15-minute target, and counts by nature.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass

from daemon.alerts.audit import audit_path, export
from daemon.records.builder import ReportBuilder
from daemon.records.document import Table

__all__ = ["RESPONSE_TARGET_S", "Episode", "alarm_tables", "by_storehouse"]

_NS = 1_000_000_000
# PSSM.md "response": on-scene confirmation expected within 15 min of an alarm.
RESPONSE_TARGET_S = 15 * 60


def _minutes(from_ns: int, to_ns: int | None) -> float | None:
    return None if to_ns is None else round((to_ns - from_ns) / _NS / 60, 1)


@dataclass(slots=True)
class Episode:
    """One alarm from raised to cleared, as the audit trail tells it."""

    key: str
    raised_ns: int
    severity: str
    summary: str
    acked_by: str = ""
    acked_ns: int | None = None
    checked_by: str = ""
    checked_ns: int | None = None
    finding: str = ""
    cleared_ns: int | None = None
    # What kept it from being paged (an inhibiting alarm or a silence), until it was unmuted.
    muted_by: str = ""


def _episodes(b: ReportBuilder) -> list[Episode]:
    path = audit_path(b.config.state_dir)
    if not path.exists():
        return []
    b.progress("audit trail: alarms")
    open_: dict[str, Episode] = {}
    out: list[Episode] = []
    for entry in export(path, 0):
        if entry["at_ns"] >= b.end_ns:
            break
        key, action, at = entry["subject"], entry["action"], entry["at_ns"]
        details = entry["details"]
        if action == "raised":
            episode = Episode(key, at, str(details.get("severity", "")),
                               str(details.get("summary", "")),
                               muted_by=str(details.get("inhibited_by")
                                            or details.get("silenced_by") or ""))
            open_[key] = episode
            if at >= b.start_ns:
                out.append(episode)
            continue
        episode_or_none = open_.get(key)
        if episode_or_none is None:
            continue
        ep = episode_or_none
        if action == "acknowledged" and ep.acked_ns is None:
            ep.acked_by, ep.acked_ns = entry["actor"], at
        elif action == "checked":
            if ep.acked_ns is None:
                ep.acked_by, ep.acked_ns = entry["actor"], at
            if ep.checked_ns is None:
                ep.checked_by, ep.checked_ns = entry["actor"], at
                ep.finding = str(details.get("finding", ""))
        elif action == "unmuted":
            ep.muted_by = ""
        elif action == "cleared":
            ep.cleared_ns = at
            del open_[key]
    return out


def by_storehouse(b: ReportBuilder) -> dict[str, list[Episode]]:
    """The month's alarms per storehouse: that of the key's `alert` points, else that of its
    subject in the config; "" for the rest (the site table)."""
    owner: dict[str, str] = {s.id: s.id for s in b.config.storehouses}
    for d in b.config.doors:
        owner[d.id] = d.storehouse
        owner[d.contact_sensor] = d.storehouse
        if d.badge_reader:
            owner[d.badge_reader] = d.storehouse
    for c in b.config.climate_sensors:
        owner[c.id] = c.storehouse
    for p in b.config.portals:
        owner[p.id] = owner[p.inner_antenna] = owner[p.outer_antenna] = p.storehouse
    for r in b.config.inventory_readers:
        owner[r.id] = r.storehouse
    keys: dict[str, str] = {}
    q = f'SELECT "key", "summary" FROM "alert" WHERE {b.where()} GROUP BY "storehouse"'
    for tags, row in b.db.rows(q):
        if tags.get("storehouse"):
            keys[str(row["key"])] = tags["storehouse"]
    out: dict[str, list[Episode]] = defaultdict(list)
    for ep in _episodes(b):
        subject = ep.key.split(".", 1)[1] if "." in ep.key else ep.key
        out[keys.get(ep.key) or owner.get(subject, "")].append(ep)
    return out


def alarm_tables(b: ReportBuilder, sh: str, episodes: list[Episode]) -> list[Table]:
    """Every alarm with its acknowledgement, on-site check and finding; counts by nature."""
    table = Table("alarms", "Alarms (response target: on-site check within "
                  f"{RESPONSE_TARGET_S // 60} min)", sh,
                  ["raised", "key", "rule", "severity", "acknowledged_by", "acknowledged",
                   "ack_min", "checked_by", "checked", "finding", "response_min",
                   "within_target", "cleared"])
    nature: Counter[str] = Counter()
    for ep in episodes:
        response = _minutes(ep.raised_ns, ep.checked_ns)
        met = ("no check" if response is None
               else "yes" if response * 60 <= RESPONSE_TARGET_S else "no")
        if response is None and ep.muted_by:
            # Never paged: the alarm that muted it (a lost input) is the one checked on site.
            met = f"muted by {ep.muted_by}"
        nature[ep.finding or ("muted" if ep.muted_by and response is None
                              else "not checked")] += 1
        table.rows.append([
            b.clock.time(ep.raised_ns), ep.key, ep.key.split(".", 1)[0], ep.severity,
            ep.acked_by, b.clock.time(ep.acked_ns), _minutes(ep.raised_ns, ep.acked_ns),
            ep.checked_by, b.clock.time(ep.checked_ns), ep.finding, response, met,
            b.clock.time(ep.cleared_ns)])
    counts = Table("alarm_counts", "Alarms by nature", sh, ["nature", "count"])
    for name in ("intrusion", "fault", "false_alarm", "not checked", "muted"):
        counts.rows.append([name, nature.get(name, 0)])
    return [table, counts]
