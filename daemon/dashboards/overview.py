"""The Grafana depot overview, built as JSON (InfluxQL only), with climate bands from a config."""

from __future__ import annotations

from daemon.config.schema import Config
from daemon.dashboards.climate import ClimateBands, climate_panels
from daemon.dashboards.panels import (
    DATASOURCE,
    DATASOURCE_UID,
    DOOR,
    SEVERITY_COLORS,
    SITE,
    STORE,
    STORE_OR_NONE,
    TIME,
    Json,
    alarm_log_columns,
    bool_map,
    colored_column,
    datasource_variable,
    numbered,
    organize,
    panel,
    row,
    stat_now,
    table,
    target,
)
from daemon.dashboards.zones import zone_panels

__all__ = [
    "DATASOURCE_UID",
    "OVERVIEW_UID",
    "depot_overview",
    "render",
]

OVERVIEW_UID = "depotwatch-overview"


def _now_panels(y: int) -> list[Json]:
    doors_now = panel(
        "stat", "Doors now", (0, y, 8, 7), [
            target(f'SELECT last("open") FROM "door" WHERE {SITE} AND {STORE} AND {DOOR} '
                   f'AND {TIME} GROUP BY "door"', alias="$tag_door"),
            target(f'SELECT last("tamper") FROM "door" WHERE {SITE} AND {STORE} AND {DOOR} '
                   f'AND {TIME} GROUP BY "door"', ref="B", alias="$tag_door tamper"),
        ],
        description="Each door's last reported contact (OPEN / closed) and tamper switch.",
        options=stat_now(),
        defaults={"mappings": bool_map("OPEN", "red", "closed", "green"),
                  "color": {"mode": "thresholds"}},
        overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"}, "properties": [
            {"id": "mappings", "value": bool_map("TAMPER", "red", "ok", "green")}]}],
    )
    active = table(
        "Active alarms", (8, y, 16, 7),
        f'SELECT "key", "summary", "severity", "state", "storehouse" FROM "alert" '
        f"WHERE {SITE} AND {STORE_OR_NONE} AND {TIME}",
        description="Alarms whose last change is `firing`, newest first. Looks back 30 days, "
        "whatever the dashboard's time range: an alarm is active until it resolves.",
        timeFrom="30d", hideTimeOverride=True,
        # InfluxQL cannot pick each key's last row (`key` is a field), so Grafana does.
        transformations=[
            {"id": "groupBy", "options": {"fields": {
                "key": {"operation": "groupby", "aggregations": []},
                "Time": {"operation": "aggregate", "aggregations": ["last"]},
                "state": {"operation": "aggregate", "aggregations": ["last"]},
                "severity": {"operation": "aggregate", "aggregations": ["last"]},
                "summary": {"operation": "aggregate", "aggregations": ["last"]},
                "storehouse": {"operation": "aggregate", "aggregations": ["last"]},
            }}},
            {"id": "filterByValue", "options": {"type": "include", "match": "all", "filters": [
                {"fieldName": "state (last)",
                 "config": {"id": "equal", "options": {"value": "firing"}}}]}},
            organize({"Time (last)": "since", "severity (last)": "severity",
                      "summary (last)": "summary", "storehouse (last)": "storehouse"},
                     exclude=("state (last)",)),
            {"id": "sortBy", "options": {"sort": [{"field": "since", "desc": True}]}},
        ],
        overrides=[colored_column("severity", SEVERITY_COLORS)],
    )
    timeline = panel(
        "state-timeline", "Door timeline", (0, y + 7, 24, 7), [
            target(f'SELECT last("open") FROM "door" WHERE {SITE} AND {STORE} AND {DOOR} '
                   f'AND {TIME} GROUP BY time($__interval), "door" fill(previous)',
                   alias="$tag_door"),
        ],
        description="Open (red) and closed (green) over time; alarm markers from the alert log.",
        options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                 "alignValue": "left", "legend": {"showLegend": False, "displayMode": "list",
                                                  "placement": "bottom"}},
        defaults={"mappings": bool_map("open", "red", "closed", "green"),
                  "color": {"mode": "thresholds"}},
    )
    return [row("Now", y - 1), doors_now, active, timeline]


def _access_panels(y: int) -> list[Json]:
    badges = table(
        "Last badge events", (0, y, 12, 9),
        f'SELECT "person", "door", "result" FROM "access" WHERE {SITE} AND {DOOR} '
        f"AND {TIME} ORDER BY time DESC LIMIT 200",
        description="Badge reads at the selected doors: the roster name and the result. Badge "
        "numbers never leave the gateway.",
        overrides=[
            colored_column("result", {"granted": "green", "unknown": "red", "expired": "red",
                                      "not_yet_valid": "red", "zone_not_allowed": "red",
                                      "escort_missing": "orange"}),
            {"matcher": {"id": "byName", "options": "person"}, "properties": [
                {"id": "mappings", "value": [{"type": "special", "options": {
                    "match": "empty", "result": {"text": "(not on the roster)", "index": 0}}}]}]},
        ],
        transformations=[organize({"Time": "time"})],
    )
    portal = table(
        "Portal movements", (12, y, 12, 9),
        'SELECT "item", "direction", "order", "portal", "epc" FROM "portal" '
        f"WHERE {SITE} AND {STORE} AND {TIME} ORDER BY time DESC LIMIT 200",
        description="Tagged items through the RFID portals: item, direction and the movement "
        "order that covers it (NONE: left without an order).",
        overrides=[
            colored_column("direction", {"out": "blue", "in": "green", "unknown": "orange"}),
            {"matcher": {"id": "byName", "options": "order"}, "properties": [
                {"id": "mappings", "value": [{"type": "special", "options": {
                    "match": "empty", "result": {"text": "NONE", "color": "red", "index": 0}}}]},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
        ],
        transformations=[organize({"Time": "time"})],
    )
    orders = table(
        "Movement orders closed", (0, y + 9, 12, 5),
        'SELECT "order", "portal", "expected_count", "read_count", "complete", '
        f'"missing_epcs" FROM "movement_order" WHERE {SITE} AND {STORE} AND '
        f"{TIME} ORDER BY time DESC",
        description="Each movement order at the end of its window: items listed and read "
        "going out; incomplete means the count is uncertain.",
        overrides=[{"matcher": {"id": "byName", "options": "complete"}, "properties": [
            {"id": "mappings", "value": bool_map("complete", "green", "INCOMPLETE", "red")},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}],
        transformations=[organize({"Time": "window end"})],
    )
    counts = table(
        "Daily counts", (12, y + 9, 12, 5),
        'SELECT "on_book", "seen", "missing", "unexpected", "moved_without_order", '
        f'"missing_epcs", "by" FROM "reconciliation" WHERE {SITE} AND {STORE} AND {TIME} '
        "ORDER BY time DESC",
        description="Each count of a storehouse against the book (daily at 08:00 and on "
        "demand): items on the book, seen by its inventory readers in 24 h, and the "
        "differences, each a warning.",
        transformations=[organize({"Time": "counted"})],
    )
    return [row("Access and movements", y - 1), badges, portal, orders, counts]


def _gateway_panels(y: int) -> list[Json]:
    inputs = panel(
        "stat", "Gateway inputs", (0, y, 8, 5), [
            # No time filter: an input's state is written when it changes, which may be long
            # before the dashboard's range; the last change is its state now.
            target(f'SELECT last("up") FROM "gateway" WHERE {SITE} GROUP BY "component"',
                   alias="$tag_component"),
        ],
        description="Each gateway input's last reported state (the MQTT broker connection, "
        "serial ports).",
        options=stat_now(),
        defaults={"mappings": bool_map("UP", "green", "DOWN", "red"),
                  "color": {"mode": "thresholds"}},
    )
    spool = panel(
        "timeseries", "Spool backlog and writer lag", (0, y + 5, 8, 5), [
            target('SELECT last("spool_points") AS "backlog", last("lag_s") AS "lag" FROM '
                   f"\"gateway\" WHERE {SITE} AND \"component\" = 'spool' AND {TIME} "
                   "GROUP BY time($__interval) fill(none)"),
        ],
        description="Points on the gateway's disk not yet in InfluxDB (left axis) and the age "
        "of the oldest of them (right axis): both stay near zero while InfluxDB is reachable.",
        options={"legend": {"showLegend": True, "displayMode": "list", "placement": "bottom",
                            "calcs": []}, "tooltip": {"mode": "multi", "sort": "none"}},
        defaults={"custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                             "showPoints": "never", "spanNulls": True},
                  "color": {"mode": "palette-classic"}, "min": 0},
        overrides=[{"matcher": {"id": "byRegexp", "options": ".*lag$"}, "properties": [
            {"id": "unit", "value": "s"},
            {"id": "custom.axisPlacement", "value": "right"}]}],
    )
    log = table(
        "Alarm log", (8, y, 16, 10),
        f'SELECT "state", "severity", "key", "summary", "storehouse" FROM "alert" '
        f"WHERE {SITE} AND {STORE_OR_NONE} AND {TIME} ORDER BY time DESC LIMIT 500",
        description="Every alarm change in the time range, newest first.",
        overrides=alarm_log_columns(),
        transformations=[organize({"Time": "time"})],
    )
    health = table(
        "Gateway health now", (0, y + 10, 24, 4),
        'SELECT last("on_battery") AS "UPS on battery", last("charge_pct") AS "UPS charge %", '
        'last("synchronised") AS "clock synchronised", last("offset_s") AS "clock offset s", '
        'last("free_pct") AS "state disk free %", last("temperature_c") AS "CPU °C" '
        f"FROM \"gateway\" WHERE {SITE} AND \"component\" =~ /^(ups|clock|disk|cpu)$/",
        description="The gateway's own health as last read (UPS through NUT, clock sync, disk "
        "of the state dir, CPU temperature); empty where the gateway has no such source.",
        transformations=[organize({}, exclude=("Time",))])
    return [row("Gateway and alarm log", y - 1), inputs, spool, log, health]


def _variables(site: str | None) -> list[Json]:
    def query(name: str, label: str, q: str, *, multi: bool) -> Json:
        variable: Json = {
            "type": "query", "name": name, "label": label, "datasource": DATASOURCE,
            "query": q, "refresh": 1, "sort": 1, "regex": "", "hide": 0,
            "multi": multi, "includeAll": multi, "options": [],
        }
        if multi:
            variable["current"] = {"text": ["All"], "value": ["$__all"]}
        return variable

    site_var = query("site", "Depot", 'SHOW TAG VALUES FROM "door" WITH KEY = "site"',
                     multi=False)
    if site is not None:
        site_var["current"] = {"text": site, "value": site}
    return [
        datasource_variable(),
        site_var,
        query("storehouse", "Storehouse",
              f'SHOW TAG VALUES WITH KEY = "storehouse" WHERE {SITE}', multi=True),
        query("door", "Door",
              f'SHOW TAG VALUES FROM "door" WITH KEY = "door" WHERE {SITE} AND {STORE}',
              multi=True),
    ]


def _annotations() -> list[Json]:
    return [
        {"name": "Annotations & Alerts", "builtIn": 1, "enable": True, "hide": True,
         "iconColor": "rgba(0, 211, 255, 1)", "type": "dashboard",
         "datasource": {"type": "grafana", "uid": "-- Grafana --"},
         "target": {"limit": 100, "matchAny": False, "tags": [], "type": "dashboard"}},
        {"name": "Alarms", "enable": True, "iconColor": "red", "datasource": DATASOURCE,
         # The InfluxDB datasource's annotation query (the schema models only Grafana's own).
         "target": {"refId": "Alarms", "fromAnnotations": True, "queryType": "tags",
                    "query": f'SELECT "summary", "key", "severity", "rule" FROM "alert" WHERE '
                             f"\"state\" = 'firing' AND {SITE} AND {TIME}",
                    "textColumn": "summary", "titleColumn": "key",
                    "tagsColumn": "severity,rule"}},
    ]


_DEFAULT_BANDS = ClimateBands()


def depot_overview(bands: ClimateBands | None = _DEFAULT_BANDS, site: str | None = None) -> Json:
    """The depot overview dashboard; `bands` None draws no climate limits."""
    panels = numbered([*_now_panels(1), *climate_panels(16, bands), *_access_panels(31),
                       *_gateway_panels(46), *zone_panels(57)])
    return {
        "uid": OVERVIEW_UID, "title": "Depot overview",
        "description": "depotwatch: doors, alarms, badges, portal movements, storehouse "
        "climate, gateway health and intrusion zones of one depot (InfluxQL).",
        "tags": ["depotwatch"], "timezone": "browser", "editable": True, "graphTooltip": 1,
        "time": {"from": "now-24h", "to": "now"}, "refresh": "30s", "schemaVersion": 39,
        "fiscalYearStartMonth": 0, "liveNow": False, "weekStart": "", "links": [],
        "templating": {"list": _variables(site)},
        "annotations": {"list": _annotations()},
        "panels": panels,
    }


def render(config: Config | None = None) -> list[Json]:
    """Every dashboard, with the climate bands and site of `config` (the defaults without)."""
    if config is None:
        return [depot_overview()]
    return [depot_overview(ClimateBands.from_config(config), site=config.site.id)]
