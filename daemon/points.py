"""Readings and alerts as InfluxDB points, in the schema of DESIGN.md."""

from __future__ import annotations

import functools

from daemon.alerts import Alert
from daemon.lineprotocol import line, line_in_series, series_key
from daemon.model import FieldValue, Reading
from rules.climate import dew_point_c
from rules.depot import Depot, SensorKind

__all__ = ["alert_line", "dew_point_c", "reading_lines"]

_DOOR_FIELDS = ("open", "tamper", "battery_pct", "battery_low")
_CLIMATE_FIELDS = ("temperature_c", "humidity_pct", "battery_pct", "battery_low", "tamper")


# Raw badge numbers must never reach InfluxDB, and a raw tag read means little alone: the
# access and movement rules write `access` and `portal` facts instead.
_NO_POINTS = (SensorKind.BADGE_READER, SensorKind.PORTAL_ANTENNA, SensorKind.INVENTORY_READER)
_DOOR = SensorKind.DOOR


@functools.lru_cache(maxsize=8192)
def _series(measurement: str, site: str, storehouse: str, key: str, value: str) -> str:
    # A sensor's series key (escaping, tag order) is the same on every reading.
    return series_key(measurement, {"site": site, "storehouse": storehouse, key: value})


def reading_lines(reading: Reading, depot: Depot) -> list[str]:
    """Line protocol for one reading of a known sensor; a heartbeat with no fields gives none."""
    sensor = depot.sensors[reading.sensor]
    if sensor.kind in _NO_POINTS:
        return []
    values = reading.values
    if sensor.kind is _DOOR:
        fields = {k: values[k] for k in _DOOR_FIELDS if k in values}
        measurement = "door"
        head = _series(measurement, depot.site, sensor.storehouse, "door", sensor.door)
    else:
        fields = {k: values[k] for k in _CLIMATE_FIELDS if k in values}
        temperature, humidity = fields.get("temperature_c"), fields.get("humidity_pct")
        if isinstance(temperature, float) and isinstance(humidity, float):
            fields["dew_point_c"] = dew_point_c(temperature, humidity)
        measurement = "climate"
        head = _series(measurement, depot.site, sensor.storehouse, "sensor", sensor.id)
    if not fields:
        return []
    return [line_in_series(head, measurement, fields, reading.at_ns)]


def alert_line(alert: Alert, site: str) -> str:
    """One point per alert state change."""
    fields: dict[str, FieldValue] = {"key": alert.key, "summary": alert.summary}
    # The subject is a tag so that alerts of one rule changing in the same tick (five items
    # found unseen at once) are separate series; as fields they would overwrite each other.
    tags = {"site": site, "rule": alert.rule, "severity": alert.severity.value,
            "state": alert.state.value, "storehouse": alert.storehouse,
            "subject": alert.subject}
    return line("alert", tags, fields, alert.changed_ns)
