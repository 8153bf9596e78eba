"""Grafana JSON pieces of the InfluxQL dashboards: panels, targets, rows, value mappings and
the site, storehouse, door and time filters their queries carry."""

from __future__ import annotations

from typing import Any

__all__ = [
    "DATASOURCE",
    "DATASOURCE_UID",
    "DOOR",
    "SEVERITY_COLORS",
    "SITE",
    "STORE",
    "STORE_OR_NONE",
    "TIME",
    "Json",
    "alarm_log_columns",
    "bool_map",
    "colored_column",
    "datasource_variable",
    "numbered",
    "organize",
    "panel",
    "row",
    "stat_now",
    "table",
    "target",
]

Json = dict[str, Any]

# Every panel reads the dashboard's datasource variable.
DATASOURCE: Json = {"type": "influxdb", "uid": "${datasource}"}
# The uid the provisioned datasource (dashboards/provisioning/datasources/) carries; the
# datasource variable starts on it and lets an HQ with several InfluxDBs pick another.
DATASOURCE_UID = "depotwatch-influxdb"
SEVERITY_COLORS = {"warning": "yellow", "alarm": "orange", "critical": "red"}

# Grafana's InfluxQL macros and our variables. Every query filters by site: an HQ InfluxDB
# holds many depots. Tag values are matched with anchored regexes, which is how Grafana
# expands multi-value and "All" selections for InfluxQL.
SITE = '"site" =~ /^$site$/'
STORE = '"storehouse" =~ /^$storehouse$/'
# Alarms not tied to a storehouse (a lost broker, a full spool) are never filtered away.
STORE_OR_NONE = f"({STORE} OR \"storehouse\" = '')"
DOOR = '"door" =~ /^$door$/'
TIME = "$timeFilter"


def target(query: str, *, ref: str = "A", table: bool = False, alias: str = "") -> Json:
    """One raw InfluxQL query of a panel."""
    found: Json = {"refId": ref, "datasource": DATASOURCE, "query": query, "rawQuery": True,
                   "resultFormat": "table" if table else "time_series"}
    if alias:
        found["alias"] = alias
    return found


def panel(kind: str, title: str, grid: tuple[int, int, int, int], targets: list[Json], *,
          description: str, options: Json | None = None, defaults: Json | None = None,
          overrides: list[Json] | None = None, transformations: list[Json] | None = None,
          **extra: Any) -> Json:
    """A panel of `kind` at grid (x, y, width, height)."""
    x, y, w, h = grid
    built: Json = {
        "type": kind, "title": title, "description": description, "datasource": DATASOURCE,
        "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
        "options": options or {},
        "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []},
        **extra,
    }
    if transformations:
        built["transformations"] = transformations
    return built


def table(title: str, grid: tuple[int, int, int, int], query: str, *, description: str,
          **rest: Any) -> Json:
    """A table panel of one query's rows, with a header and compact rows."""
    return panel("table", title, grid, [target(query, table=True)], description=description,
                 options={"showHeader": True, "cellHeight": "sm"}, **rest)


def row(title: str, y: int) -> Json:
    """A row header across the dashboard at height `y`."""
    return {"type": "row", "title": title, "collapsed": False, "panels": [],
            "gridPos": {"x": 0, "y": y, "w": 24, "h": 1}}


def bool_map(true_text: str, true_color: str, false_text: str, false_color: str) -> list[Json]:
    """Value mappings that show a boolean as a word in a colour."""
    return [{"type": "value", "options": {
        "true": {"text": true_text, "color": true_color, "index": 0},
        "false": {"text": false_text, "color": false_color, "index": 1},
    }}]


def colored_column(field: str, colors: dict[str, str]) -> Json:
    """A table column whose cells take the colour of their value."""
    return {"matcher": {"id": "byName", "options": field}, "properties": [
        {"id": "mappings", "value": _text_map(colors)},
        {"id": "custom.cellOptions", "value": {"type": "color-background"}},
    ]}


def organize(renames: dict[str, str], exclude: tuple[str, ...] = ()) -> Json:
    """The transformation that renames and hides a table's columns."""
    return {"id": "organize", "options": {
        "renameByName": renames, "excludeByName": {name: True for name in exclude},
        "indexByName": {},
    }}


def stat_now() -> Json:
    """Stat options that show each series' last value by name on its colour."""
    return {"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/", "values": False},
            "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
            "justifyMode": "auto", "orientation": "auto"}


def alarm_log_columns() -> list[Json]:
    """An alarm log's severity and state columns in their colours."""
    return [colored_column("severity", SEVERITY_COLORS),
            colored_column("state", {"firing": "red", "resolved": "green"})]


def datasource_variable() -> Json:
    """The dashboard's InfluxDB variable, starting on the provisioned datasource."""
    return {"type": "datasource", "name": "datasource", "label": "InfluxDB", "query": "influxdb",
            "current": {"text": "depotwatch", "value": DATASOURCE_UID}, "refresh": 1,
            "regex": "", "hide": 0, "options": []}


def numbered(panels: list[Json]) -> list[Json]:
    """The panels with their ids, 1 up, in order."""
    for number, each in enumerate(panels, start=1):
        each["id"] = number
    return panels


def _text_map(colors: dict[str, str]) -> list[Json]:
    return [{"type": "value", "options": {
        value: {"color": color, "index": i} for i, (value, color) in enumerate(colors.items())
    }}]
