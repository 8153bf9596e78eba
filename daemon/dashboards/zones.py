"""The overview's intrusion panels: zone states and who set them, detectors' last activity,
walk tests (issue 20). Zone points are written at each change only, so "now" reads the last
one whatever the time range."""

from __future__ import annotations

from daemon.dashboards.panels import (
    SITE,
    STORE,
    TIME,
    Json,
    colored_column,
    organize,
    panel,
    row,
    table,
    target,
)

__all__ = ["ZONE_COLORS", "zone_panels"]

# Disarmed is the working day; armed is quiet; the delays and the alarm ask for attention.
ZONE_COLORS = {"disarmed": "green", "arming": "yellow", "armed": "blue", "entry": "orange",
               "alarm": "red"}


def _state_map() -> list[Json]:
    return [{"type": "value", "options": {
        state: {"text": state.upper() if state in ("entry", "alarm") else state,
                "color": color, "index": i}
        for i, (state, color) in enumerate(ZONE_COLORS.items())}}]


def zone_panels(y: int) -> list[Json]:
    """The intrusion row at height `y` (its header at `y - 1`)."""
    now = panel(
        "stat", "Zones now", (0, y, 8, 6), [
            # No time filter: a zone point is written when the zone changes.
            target(f'SELECT last("state") FROM "zone" WHERE {SITE} AND {STORE} '
                   'GROUP BY "storehouse"', alias="$tag_storehouse"),
        ],
        description="Each staff-armed zone's last state: disarmed, arming (exit delay), armed, "
        "entry (entry delay), alarm. Storehouses armed by their schedule write no zone points.",
        options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "/.*/", "values": False},
                 "colorMode": "background", "graphMode": "none", "textMode": "value_and_name",
                 "justifyMode": "auto", "orientation": "auto"},
        defaults={"mappings": _state_map(), "color": {"mode": "thresholds"}},
    )
    timeline = panel(
        "state-timeline", "Zone timeline", (8, y, 16, 6), [
            target(f'SELECT last("state") FROM "zone" WHERE {SITE} AND {STORE} AND {TIME} '
                   'GROUP BY time($__interval), "storehouse" fill(previous)',
                   alias="$tag_storehouse"),
        ],
        description="Zone states over time, per storehouse.",
        options={"showValue": "auto", "mergeValues": True, "rowHeight": 0.8,
                 "alignValue": "left", "legend": {"showLegend": False, "displayMode": "list",
                                                  "placement": "bottom"}},
        defaults={"mappings": _state_map(), "color": {"mode": "thresholds"}},
    )
    return [row("Intrusion zones", y - 1), now, timeline, *_zone_tables(y + 6)]


def _zone_tables(y: int) -> list[Json]:
    changes = table(
        "Zone changes", (0, y, 12, 8),
        'SELECT "storehouse", "state", "result", "by", "how", "forced", "not_secured", "note" '
        f'FROM "zone" WHERE {SITE} AND {STORE} AND {TIME} ORDER BY time DESC LIMIT 200',
        description="Who armed or disarmed which zone and how (api, mqtt, keypad, schedule), "
        "refusals with what was not secured, forced arming, delays running out.",
        overrides=[colored_column("state", ZONE_COLORS),
                   colored_column("result", {"refused": "orange", "alarm": "red"})],
        transformations=[organize({"Time": "time"})],
    )
    detectors = table(
        "Detectors, last triggered", (12, y, 12, 8),
        'SELECT "storehouse", "sensor", "motion", "vibration", "glass_break" FROM "detector" '
        f'WHERE {SITE} AND {STORE} AND ("motion" = true OR "vibration" = true OR '
        f'"glass_break" = true) AND {TIME}',
        description="Each motion, vibration and glass-break detector's last activation in the "
        "time range (a detector not listed was not triggered: walk-test it).",
        transformations=[
            {"id": "groupBy", "options": {"fields": {
                "sensor": {"operation": "groupby", "aggregations": []},
                "storehouse": {"operation": "groupby", "aggregations": []},
                "Time": {"operation": "aggregate", "aggregations": ["last"]},
            }}},
            organize({"Time (last)": "last triggered"}),
            {"id": "sortBy", "options": {"sort": [{"field": "last triggered", "desc": True}]}},
        ],
    )
    walks = table(
        "Walk tests", (0, y + 8, 24, 6),
        'SELECT "storehouse", "result", "by", "how", "seen", "not_seen", "note" FROM '
        f'"walk_test" WHERE {SITE} AND {STORE} AND {TIME} ORDER BY time DESC LIMIT 100',
        description="Walk tests started, passed (every detector seen) and failed (the "
        "detectors not seen), by whom. A passed test at least quarterly (DoD AA&E).",
        overrides=[colored_column("result", {"passed": "green", "failed": "red",
                                             "refused": "orange"})],
        transformations=[organize({"Time": "time"})],
    )
    return [changes, detectors, walks]
