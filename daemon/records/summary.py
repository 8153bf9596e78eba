"""The month at a glance: the record's first table, one column per storehouse."""

from __future__ import annotations

from daemon.records.document import Cell, StorehouseReport, Table

__all__ = ["month_summary"]


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
