"""The Grafana HQ overview: every depot on one page (InfluxQL, the central database every
gateway writes to with its `site` tag): when each last reported, its inputs, alarms, climate
worst cases and the gateway's own health (UPS, clock, disk, CPU)."""

from __future__ import annotations

from daemon.dashboards.panels import (
    DATASOURCE,
    SITE,
    TIME,
    Json,
    alarm_log_columns,
    bool_map,
    datasource_variable,
    numbered,
    organize,
    panel,
    row,
    stat_now,
    table,
    target,
)

__all__ = ["HQ_UID", "hq_overview"]

HQ_UID = "depotwatch-hq-overview"


def _last_by_site(field: str, component: str) -> str:
    # No time filter: a state is written when read, and its last value is its state now.
    return (f'SELECT last("{field}") FROM "gateway" WHERE {SITE} AND '
            f"\"component\" = '{component}' GROUP BY \"site\"")


def _reach_panels(y: int) -> list[Json]:
    heard = table(
        "Last report per depot", (0, y, 8, 8),
        f'SELECT last("fill_pct") AS "spool fill %", last("lag_s") AS "writer lag s" '
        f"FROM \"gateway\" WHERE {SITE} AND \"component\" = 'spool' GROUP BY \"site\"",
        description="When each depot's gateway last reported its health here (every few "
        "seconds while it runs and reaches this database; a dark depot's points arrive from "
        "its spool when it is back). `depotwatch hq` raises depot_unreachable on its own.",
        transformations=[organize({"Time": "last report"})])
    inputs = panel(
        "stat", "Gateway inputs, all depots", (8, y, 8, 8), [
            target(f'SELECT last("up") FROM "gateway" WHERE {SITE} GROUP BY "site", '
                   '"component"', alias="$tag_site $tag_component")],
        description="Each depot's inputs as last reported (broker connection, serial ports).",
        options=stat_now(), defaults={"mappings": bool_map("UP", "green", "DOWN", "red"),
                                 "color": {"mode": "thresholds"}})
    raised = panel(
        "barchart", "Alarms raised per depot", (16, y, 8, 8), [
            target(f'SELECT count("key") AS "alarms" FROM "alert" WHERE {SITE} AND '
                   f"\"state\" = 'firing' AND {TIME} GROUP BY \"site\"", table=True)],
        description="Alarms raised in the time range, per depot.",
        options={"orientation": "horizontal", "showValue": "auto", "xField": "site",
                 "legend": {"showLegend": False, "displayMode": "list",
                            "placement": "bottom", "calcs": []}},
        defaults={"color": {"mode": "fixed", "fixedColor": "orange"}})
    return [row("Depots", y - 1), heard, inputs, raised]


def _health_panels(y: int) -> list[Json]:
    def stat(title: str, x: int, query: str, description: str, defaults: Json) -> Json:
        return panel("stat", title, (x, y, 6, 6), [target(query, alias="$tag_site")],
                     description=description, options=stat_now(), defaults=defaults)

    thresholds = {"mode": "absolute", "steps": [
        {"color": "red", "value": None}, {"color": "yellow", "value": 10},
        {"color": "green", "value": 20}]}
    hot = {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                         {"color": "red", "value": 80}]}
    return [
        row("Gateway health", y - 1),
        stat("Mains", 0, _last_by_site("on_battery", "ups"),
             "UPS on battery (mains lost) or on mains, per depot (NUT).",
             defaults={"mappings": bool_map("ON BATTERY", "red", "MAINS", "green"),
                       "color": {"mode": "thresholds"}}),
        stat("Clock synchronised", 6, _last_by_site("synchronised", "clock"),
             "Each gateway's clock synchronised (chrony, or the kernel's NTP state).",
             defaults={"mappings": bool_map("SYNCED", "green", "NOT SYNCED", "red"),
                       "color": {"mode": "thresholds"}}),
        stat("State disk free", 12, _last_by_site("free_pct", "disk"),
             "Free space on the disk of each gateway's state dir (spool, audit trail).",
             defaults={"unit": "percent", "thresholds": thresholds,
                       "color": {"mode": "thresholds"}}),
        stat("CPU temperature", 18, _last_by_site("temperature_c", "cpu"),
             "Hottest CPU thermal zone per gateway (none on boards that expose no zone).",
             defaults={"unit": "celsius", "thresholds": hot, "color": {"mode": "thresholds"}}),
    ]


def _alarm_and_climate_panels(y: int) -> list[Json]:
    worst = table(
        "Climate worst cases per depot", (0, y, 10, 10),
        'SELECT max("temperature_c") AS "max °C", min("temperature_c") AS "min °C", '
        'max("humidity_pct") AS "max RH %" FROM "climate" '
        f'WHERE {SITE} AND {TIME} GROUP BY "site"',
        description="Hottest, coldest and dampest readings of each depot's storehouses in "
        "the time range.", transformations=[organize({}, exclude=("Time",))])
    log = table(
        "Alarm log, all depots", (10, y, 14, 10),
        f'SELECT "state", "severity", "key", "summary" FROM "alert" WHERE {SITE} AND {TIME} '
        'GROUP BY "site" ORDER BY time DESC LIMIT 500',
        description="Every alarm change of every depot in the time range, newest first.",
        overrides=alarm_log_columns(),
        transformations=[organize({"Time": "time"})])
    return [row("Alarms and climate", y - 1), worst, log]


def hq_overview() -> Json:
    """The HQ overview dashboard: all depots (the Depot variable starts on All)."""
    panels = numbered([*_reach_panels(1), *_health_panels(10), *_alarm_and_climate_panels(17)])
    site = {"type": "query", "name": "site", "label": "Depot", "datasource": DATASOURCE,
            "query": 'SHOW TAG VALUES FROM "gateway" WITH KEY = "site"', "refresh": 1,
            "sort": 1, "regex": "", "hide": 0, "multi": True, "includeAll": True,
            "options": [], "current": {"text": ["All"], "value": ["$__all"]}}
    return {
        "uid": HQ_UID, "title": "HQ overview: all depots",
        "description": "depotwatch at HQ: every depot's reports, inputs, alarms, climate worst "
        "cases and gateway health (InfluxQL).",
        "tags": ["depotwatch", "hq"], "timezone": "browser", "editable": True,
        "graphTooltip": 1, "time": {"from": "now-24h", "to": "now"}, "refresh": "30s",
        "schemaVersion": 39, "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "",
        "links": [], "annotations": {"list": []},
        "templating": {"list": [datasource_variable(), site]},
        "panels": panels,
    }
