"""The Grafana depot overview, built as JSON (InfluxQL only), with climate bands from a config."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from daemon.config.schema import Config
from rules.climate import ClimateRuleConfig
from rules.depot import ClimateClass

__all__ = [
    "DATASOURCE_UID",
    "OVERVIEW_UID",
    "ClimateBands",
    "depot_overview",
    "render",
]

Json = dict[str, Any]

# The uid the provisioned datasource (dashboards/provisioning/datasources/) carries; the
# datasource variable starts on it and lets an HQ with several InfluxDBs pick another.
DATASOURCE_UID = "depotwatch-influxdb"
OVERVIEW_UID = "depotwatch-overview"
_DS: Json = {"type": "influxdb", "uid": "${datasource}"}

# Grafana's InfluxQL macros and our variables. Every query filters by site: an HQ InfluxDB
# holds many depots. Tag values are matched with anchored regexes, which is how Grafana
# expands multi-value and "All" selections for InfluxQL.
_SITE = '"site" =~ /^$site$/'
_STORE = '"storehouse" =~ /^$storehouse$/'
# Alarms not tied to a storehouse (a lost broker, a full spool) are never filtered away.
_STORE_OR_NONE = f"({_STORE} OR \"storehouse\" = '')"
_DOOR = '"door" =~ /^$door$/'
_TIME = "$timeFilter"

_SEVERITY_COLORS = {"warning": "yellow", "alarm": "orange", "critical": "red"}


@dataclass(frozen=True, slots=True)
class ClimateBands:
    """The climate rule's limits as the dashboard draws them; defaults are the rule's."""

    temperature_warning_c: float = 30.0
    temperature_alarm_c: float = 37.8
    temperature_critical_c: float = 50.0
    humidity_warning_pct: float = 65.0
    humidity_alarm_pct: float = 70.0
    propellant_humidity_alarm_pct: float = 60.0
    # Storehouse ids of climate class `propellant` (their humidity alarm is lower).
    propellant_storehouses: tuple[str, ...] = ()

    @classmethod
    def from_config(cls, config: Config) -> ClimateBands | None:
        """The bands the config's climate rule runs with; None if the rule is switched off."""
        rule = next((r for r in config.rule_set() if isinstance(r, ClimateRuleConfig)), None)
        if rule is None:
            return None
        return cls(
            temperature_warning_c=rule.temperature_warning_c,
            temperature_alarm_c=rule.temperature_alarm_c,
            temperature_critical_c=rule.temperature_critical_c,
            humidity_warning_pct=rule.humidity_warning_pct,
            humidity_alarm_pct=rule.humidity_alarm_pct,
            propellant_humidity_alarm_pct=rule.propellant_humidity_alarm_pct,
            propellant_storehouses=tuple(
                s.id for s in config.storehouses if s.climate_class is ClimateClass.PROPELLANT),
        )


def _steps(*limits: tuple[float, str]) -> Json:
    """Absolute thresholds: green below the first limit, then each band's colour, ascending."""
    steps: list[Json] = [{"color": "green", "value": None}]
    # A lower band that starts above a higher one is hidden by it (e.g. propellant humidity:
    # the 60 % alarm lies below the 65 % warning), so keep only the ascending steps.
    for value, color in sorted(limits):
        steps.append({"color": color, "value": value})
    return {"mode": "absolute", "steps": steps}


def _temperature_steps(b: ClimateBands) -> Json:
    return _steps((b.temperature_warning_c, "yellow"), (b.temperature_alarm_c, "orange"),
                  (b.temperature_critical_c, "red"))


def _humidity_steps(b: ClimateBands, alarm_pct: float) -> Json:
    limits = [(alarm_pct, "orange")]
    if b.humidity_warning_pct < alarm_pct:
        limits.append((b.humidity_warning_pct, "yellow"))
    return _steps(*limits)


def _target(query: str, *, ref: str = "A", table: bool = False, alias: str = "") -> Json:
    target: Json = {"refId": ref, "datasource": _DS, "query": query, "rawQuery": True,
                    "resultFormat": "table" if table else "time_series"}
    if alias:
        target["alias"] = alias
    return target


def _panel(kind: str, title: str, grid: tuple[int, int, int, int], targets: list[Json], *,
           description: str, options: Json | None = None, defaults: Json | None = None,
           overrides: list[Json] | None = None, transformations: list[Json] | None = None,
           **extra: Any) -> Json:
    x, y, w, h = grid
    panel: Json = {
        "type": kind, "title": title, "description": description, "datasource": _DS,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "options": options or {},
        "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []},
        **extra,
    }
    if transformations:
        panel["transformations"] = transformations
    return panel


def _row(title: str, y: int) -> Json:
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


def _bool_map(true_text: str, true_color: str, false_text: str, false_color: str) -> list[Json]:
    return [{"type": "value", "options": {
        "true": {"text": true_text, "color": true_color, "index": 0},
        "false": {"text": false_text, "color": false_color, "index": 1},
    }}]


def _text_map(colors: dict[str, str]) -> list[Json]:
    return [{"type": "value", "options": {
        value: {"color": color, "index": i} for i, (value, color) in enumerate(colors.items())
    }}]


def _colored_column(field: str, colors: dict[str, str]) -> Json:
    return {"matcher": {"id": "byName", "options": field}, "properties": [
        {"id": "mappings", "value": _text_map(colors)},
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
    ]}


def _organize(renames: dict[str, str], exclude: tuple[str, ...] = ()) -> Json:
    return {"id": "organize", "options": {
        "renameByName": renames, "excludeByName": {name: True for name in exclude},
        "indexByName": {},
    }}


def _now_panels(y: int) -> list[Json]:
    doors_now = _panel(
        "stat", "Doors now", (0, y, 8, 7), [
            _target(f'SELECT last("open") FROM "door" WHERE {_SITE} AND {_STORE} AND {_DOOR} '
                    f'AND {_TIME} GROUP BY "door"', alias="$tag_door"),
            _target(f'SELECT last("tamper") FROM "door" WHERE {_SITE} AND {_STORE} AND {_DOOR} '
                    f'AND {_TIME} GROUP BY "door"', ref="B", alias="$tag_door tamper"),
        ],
        description="Each door's last reported contact (OPEN / closed) and tamper switch.",
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/", "values": False},
                 "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                 "justifyMode": "auto", "orientation": "auto"},
        defaults={"mappings": _bool_map("OPEN", "red", "closed", "green"),
                  "color": {"mode": "thresholds"}},
        overrides=[{"matcher": {"id": "byFrameRefID", "options": "B"}, "properties": [
            {"id": "mappings", "value": _bool_map("TAMPER", "red", "ok", "green")}]}],
    )
    active = _panel(
        "table", "Active alarms", (8, y, 16, 7), [
            _target(f'SELECT "key", "summary", "severity", "state", "storehouse" FROM "alert" '
                    f"WHERE {_SITE} AND {_STORE_OR_NONE} AND {_TIME}", table=True),
        ],
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
            _organize({"Time (last)": "since", "severity (last)": "severity",
                       "summary (last)": "summary", "storehouse (last)": "storehouse"},
                      exclude=("state (last)",)),
            {"id": "sortBy", "options": {"sort": [{"field": "since", "desc": True}]}},
        ],
        overrides=[_colored_column("severity", _SEVERITY_COLORS)],
        options={"showHeader": True, "cellHeight": "sm"},
    )
    timeline = _panel(
        "state-timeline", "Door timeline", (0, y + 7, 24, 7), [
            _target(f'SELECT last("open") FROM "door" WHERE {_SITE} AND {_STORE} AND {_DOOR} '
                    f'AND {_TIME} GROUP BY time($__interval), "door" fill(previous)',
                    alias="$tag_door"),
        ],
        description="Open (red) and closed (green) over time; alarm markers from the alert log.",
        options={"showValue": "never", "mergeValues": True, "rowHeight": 0.8,
                 "alignValue": "left", "legend": {"showLegend": False, "displayMode": "list",
                                                  "placement": "bottom"}},
        defaults={"mappings": _bool_map("open", "red", "closed", "green"),
                  "color": {"mode": "thresholds"}},
    )
    return [_row("Now", y - 1), doors_now, active, timeline]


def _climate_panels(y: int, bands: ClimateBands | None) -> list[Json]:
    def series(field: str, unit: str, steps: Json | None, title: str,
               overrides: list[Json], x: int) -> Json:
        custom: Json = {"drawStyle": "line", "lineWidth": 2, "fillOpacity": 0,
                        "showPoints": "never", "spanNulls": True}
        defaults: Json = {"unit": unit, "custom": custom, "color": {"mode": "palette-classic"}}
        if steps is not None:
            custom["thresholdsStyle"] = {"mode": "dashed+area"}
            defaults["thresholds"] = steps
        return _panel(
            "timeseries", title, (x, y, 12, 8), [
                _target(f'SELECT mean("{field}") FROM "climate" WHERE {_SITE} AND {_STORE} '
                        f'AND {_TIME} GROUP BY time($__interval), "storehouse", "sensor" '
                        "fill(none)", alias="$tag_storehouse $tag_sensor"),
            ],
            description=f"{title} per sensor against the climate rule's warning (yellow), "
            "alarm (orange) and critical (red) limits" + (
                "." if steps is not None else "; the climate rule is switched off."),
            options={"legend": {"showLegend": True, "displayMode": "list",
                                "placement": "bottom", "calcs": []},
                     "tooltip": {"mode": "multi", "sort": "desc"}},
            defaults=defaults, overrides=overrides,
        )

    humidity_overrides: list[Json] = []
    if bands is not None and bands.propellant_storehouses:
        names = "|".join(re.escape(s) for s in bands.propellant_storehouses)
        humidity_overrides.append({
            "matcher": {"id": "byRegexp", "options": f"^({names}) .*"},
            "properties": [{"id": "thresholds", "value": _humidity_steps(
                bands, bands.propellant_humidity_alarm_pct)}],
        })
    temperature = series("temperature_c", "celsius",
                         _temperature_steps(bands) if bands else None, "Temperature", [], 0)
    humidity = series("humidity_pct", "humidity",
                      _humidity_steps(bands, bands.humidity_alarm_pct) if bands else None,
                      "Relative humidity", humidity_overrides, 12)
    daily_overrides = []
    if bands is not None:
        for field in ("max °C", "min °C"):
            daily_overrides.append({"matcher": {"id": "byName", "options": field}, "properties": [
                {"id": "thresholds", "value": _temperature_steps(bands)},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]})
    daily = _panel(
        "table", "Daily climate record (08:00)", (0, y + 8, 24, 6), [
            _target('SELECT "max_c", "min_c", "max_humidity_pct", "min_humidity_pct", '
                    f'"storehouse" FROM "climate_daily" WHERE {_SITE} AND {_STORE} AND {_TIME}',
                    table=True),
        ],
        description="Each storehouse's highest and lowest temperature and humidity of the day "
        "before, taken at 08:00 local time (the climate_record rule). Last 30 days.",
        timeFrom="30d", hideTimeOverride=True,
        transformations=[
            _organize({"Time": "taken", "max_c": "max °C", "min_c": "min °C",
                       "max_humidity_pct": "max % RH", "min_humidity_pct": "min % RH"}),
            {"id": "sortBy", "options": {"sort": [{"field": "taken", "desc": True}]}},
        ],
        defaults={"decimals": 1}, overrides=daily_overrides,
        options={"showHeader": True, "cellHeight": "sm"},
    )
    return [_row("Climate", y - 1), temperature, humidity, daily]


def _access_panels(y: int) -> list[Json]:
    badges = _panel(
        "table", "Last badge events", (0, y, 12, 9), [
            _target(f'SELECT "person", "door", "result" FROM "access" WHERE {_SITE} AND {_DOOR} '
                    f"AND {_TIME} ORDER BY time DESC LIMIT 200", table=True),
        ],
        description="Badge reads at the selected doors: the roster name and the result. Badge "
        "numbers never leave the gateway.",
        overrides=[
            _colored_column("result", {"granted": "green", "unknown": "red", "expired": "red",
                                       "not_yet_valid": "red", "zone_not_allowed": "red",
                                       "escort_missing": "orange"}),
            {"matcher": {"id": "byName", "options": "person"}, "properties": [
                {"id": "mappings", "value": [{"type": "special", "options": {
                    "match": "empty", "result": {"text": "(not on the roster)", "index": 0}}}]}]},
        ],
        transformations=[_organize({"Time": "time"})],
        options={"showHeader": True, "cellHeight": "sm"},
    )
    portal = _panel(
        "table", "Portal movements", (12, y, 12, 9), [
            _target('SELECT "item", "direction", "order", "portal", "epc" FROM "portal" '
                    f"WHERE {_SITE} AND {_STORE} AND {_TIME} ORDER BY time DESC LIMIT 200",
                    table=True),
        ],
        description="Tagged items through the RFID portals: item, direction and the movement "
        "order that covers it (NONE: left without an order).",
        overrides=[
            _colored_column("direction", {"out": "blue", "in": "green", "unknown": "orange"}),
            {"matcher": {"id": "byName", "options": "order"}, "properties": [
                {"id": "mappings", "value": [{"type": "special", "options": {
                    "match": "empty", "result": {"text": "NONE", "color": "red", "index": 0}}}]},
                {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
        ],
        transformations=[_organize({"Time": "time"})],
        options={"showHeader": True, "cellHeight": "sm"},
    )
    orders = _panel(
        "table", "Movement orders closed", (0, y + 9, 24, 5), [
            _target('SELECT "order", "portal", "expected_count", "read_count", "complete", '
                    f'"missing_epcs" FROM "movement_order" WHERE {_SITE} AND {_STORE} AND '
                    f"{_TIME} ORDER BY time DESC", table=True),
        ],
        description="Each movement order at the end of its window: items listed and read "
        "going out; incomplete means the count is uncertain.",
        overrides=[{"matcher": {"id": "byName", "options": "complete"}, "properties": [
            {"id": "mappings", "value": _bool_map("complete", "green", "INCOMPLETE", "red")},
            {"id": "custom.cellOptions", "value": {"type": "color-background"}}]}],
        transformations=[_organize({"Time": "window end"})],
        options={"showHeader": True, "cellHeight": "sm"},
    )
    return [_row("Access and movements", y - 1), badges, portal, orders]


def _gateway_panels(y: int) -> list[Json]:
    inputs = _panel(
        "stat", "Gateway inputs", (0, y, 8, 5), [
            # No time filter: an input's state is written when it changes, which may be long
            # before the dashboard's range; the last change is its state now.
            _target(f'SELECT last("up") FROM "gateway" WHERE {_SITE} GROUP BY "component"',
                    alias="$tag_component"),
        ],
        description="Each gateway input's last reported state (the MQTT broker connection, "
        "serial ports).",
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/", "values": False},
                 "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                 "justifyMode": "auto", "orientation": "auto"},
        defaults={"mappings": _bool_map("UP", "green", "DOWN", "red"),
                  "color": {"mode": "thresholds"}},
    )
    spool = _panel(
        "timeseries", "Spool backlog and writer lag", (0, y + 5, 8, 5), [
            _target('SELECT last("spool_points") AS "backlog", last("lag_s") AS "lag" FROM '
                    f"\"gateway\" WHERE {_SITE} AND \"component\" = 'spool' AND {_TIME} "
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
    log = _panel(
        "table", "Alarm log", (8, y, 16, 10), [
            _target(f'SELECT "state", "severity", "key", "summary", "storehouse" FROM "alert" '
                    f"WHERE {_SITE} AND {_STORE_OR_NONE} AND {_TIME} ORDER BY time DESC "
                    "LIMIT 500", table=True),
        ],
        description="Every alarm change in the time range, newest first.",
        overrides=[_colored_column("severity", _SEVERITY_COLORS),
                   _colored_column("state", {"firing": "red", "resolved": "green"})],
        transformations=[_organize({"Time": "time"})],
        options={"showHeader": True, "cellHeight": "sm"},
    )
    return [_row("Gateway and alarm log", y - 1), inputs, spool, log]


def _variables(site: str | None) -> list[Json]:
    def query(name: str, label: str, q: str, *, multi: bool) -> Json:
        variable: Json = {
            "type": "query", "name": name, "label": label, "datasource": _DS,
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
        {"type": "datasource", "name": "datasource", "label": "InfluxDB", "query": "influxdb",
         "current": {"text": "depotwatch", "value": DATASOURCE_UID}, "refresh": 1, "regex": "",
         "hide": 0, "options": []},
        site_var,
        query("storehouse", "Storehouse",
              f'SHOW TAG VALUES WITH KEY = "storehouse" WHERE {_SITE}', multi=True),
        query("door", "Door",
              f'SHOW TAG VALUES FROM "door" WITH KEY = "door" WHERE {_SITE} AND {_STORE}',
              multi=True),
    ]


def _annotations() -> list[Json]:
    return [
        {"name": "Annotations & Alerts", "builtIn": 1, "enable": True, "hide": True,
         "iconColor": "rgba(0, 211, 255, 1)", "type": "dashboard",
         "datasource": {"type": "grafana", "uid": "-- Grafana --"},
         "target": {"limit": 100, "matchAny": False, "tags": [], "type": "dashboard"}},
        {"name": "Alarms", "enable": True, "iconColor": "red", "datasource": _DS,
         # The InfluxDB datasource's annotation query (the schema models only Grafana's own).
         "target": {"refId": "Alarms", "fromAnnotations": True, "queryType": "tags",
                    "query": f'SELECT "summary", "key", "severity", "rule" FROM "alert" WHERE '
                             f"\"state\" = 'firing' AND {_SITE} AND {_TIME}",
                    "textColumn": "summary", "titleColumn": "key",
                    "tagsColumn": "severity,rule"}},
    ]


_DEFAULT_BANDS = ClimateBands()


def depot_overview(bands: ClimateBands | None = _DEFAULT_BANDS, site: str | None = None) -> Json:
    """The depot overview dashboard; `bands` None draws no climate limits."""
    panels = [*_now_panels(1), *_climate_panels(16, bands), *_access_panels(31),
              *_gateway_panels(46)]
    for number, panel in enumerate(panels, start=1):
        panel["id"] = number
    return {
        "uid": OVERVIEW_UID, "title": "Depot overview",
        "description": "depotwatch: doors, alarms, badges, portal movements, storehouse "
        "climate and gateway health of one depot (InfluxQL).",
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
