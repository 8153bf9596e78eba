"""Readings and alerts as InfluxDB points, in the schema of DESIGN.md."""

from __future__ import annotations

from math import isfinite as _isfinite
from typing import NamedTuple

from daemon.tsdb.lineprotocol import check_unicode, escape_key, format_field_value, line, series_key
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import FieldValue, Reading
from rules.climate import dew_point_c
from rules.depot import DETECTOR_FIELDS, Depot, SensorKind

__all__ = ["ReadingLines", "alert_line", "dew_point_c", "reading_lines"]

# `device_time_s`: the device's own clock, kept beside the gateway's receipt time.
_DOOR_FIELDS: tuple[str, ...] = ("open", "tamper", "battery_pct", "battery_low", "device_time_s")
_DETECTOR_FIELDS: tuple[str, ...] = ("motion", "vibration", "glass_break", "smoke", "panic",
                                     "water_leak", "masked", "tamper", "battery_pct", "battery_low",
                                     "device_time_s")
_CLIMATE_FIELDS: tuple[str, ...] = ("temperature_c", "humidity_pct", "battery_pct", "battery_low",
                                    "tamper", "device_time_s")


# Raw badge numbers must never reach InfluxDB, and a raw tag read means little alone: the
# access and movement rules write `access` and `portal` facts instead.
# A keypad sends badge numbers and codes: its arming requests become `zone` facts.
_NO_POINTS = (SensorKind.BADGE_READER, SensorKind.PORTAL_ANTENNA, SensorKind.INVENTORY_READER,
              SensorKind.KEYPAD)
_DOOR = SensorKind.DOOR
_DEW_POINT_KEY = f"{escape_key('dew_point_c')}="


class _Plan(NamedTuple):
    """What a sensor's readings become: its series key, and its fields with their escaped keys."""

    head: str
    measurement: str
    # (field, "escaped_key=", "escaped_key=true", "escaped_key=false")
    fields: tuple[tuple[str, str, str, str], ...]
    dew_point: bool  # climate: the dew point follows from temperature and humidity


class ReadingLines:
    """`reading_lines` for one depot, with each sensor's series key and field keys worked out
    on its first reading instead of on every one (the pipeline holds one)."""

    def __init__(self, depot: Depot) -> None:
        self._depot = depot
        self._plans: dict[str, _Plan | None] = {}
        # Added to each reading's time (ns): wall clock minus the pipeline's steady clock.
        self.offset_ns = 0

    def __call__(self, reading: Reading) -> list[str]:
        """Line protocol for one reading of a known sensor; a heartbeat with no fields gives
        none; ValueError for text line protocol cannot carry."""
        try:
            plan = self._plans[reading.sensor]
        except KeyError:
            plan = self._plans[reading.sensor] = self._plan(reading.sensor)
        if plan is None:
            return []
        values = reading.values
        dew_point = None
        if plan.dew_point:
            temperature, humidity = values.get("temperature_c"), values.get("humidity_pct")
            if isinstance(temperature, float) and isinstance(humidity, float):
                dew_point = dew_point_c(temperature, humidity)
        body = []
        for name, key, when_true, when_false in plan.fields:
            if name in values:
                value = values[name]
                # The usual values (a finite float, a flag) formatted here as
                # `format_field_value` does, without a call each.
                if type(value) is float and _isfinite(value):
                    body.append(f"{key}{value!r}")
                elif value is True:
                    body.append(when_true)
                elif value is False:
                    body.append(when_false)
                else:
                    body.append(f"{key}{format_field_value(value)}")
        if dew_point is not None:
            body.append(f"{_DEW_POINT_KEY}{format_field_value(dew_point)}")
        if not body:
            return []
        text = f"{plan.head} {','.join(body)} {reading.at_ns + self.offset_ns:d}"
        if not text.isascii():
            check_unicode(text, plan.measurement)
        return [text]

    def _plan(self, sensor_id: str) -> _Plan | None:
        depot = self._depot
        sensor = depot.sensors[sensor_id]
        if sensor.kind in _NO_POINTS:
            return None
        if sensor.kind is _DOOR:
            measurement, names, key, value = "door", _DOOR_FIELDS, "door", sensor.door
        elif sensor.kind in DETECTOR_FIELDS:
            measurement, names, key, value = "detector", _DETECTOR_FIELDS, "sensor", sensor.id
        else:
            measurement, names, key, value = "climate", _CLIMATE_FIELDS, "sensor", sensor.id
        # Raises ValueError for a name line protocol cannot carry: not kept, so every reading
        # of the sensor is refused the same way.
        head = series_key(measurement, {"site": depot.site, "storehouse": sensor.storehouse,
                                        key: value})
        keys = [(n, f"{escape_key(n)}=") for n in names]
        return _Plan(head, measurement, tuple((n, k, f"{k}true", f"{k}false") for n, k in keys),
                     measurement == "climate")


# The last depot `reading_lines` was asked about, and its plans.
_last: ReadingLines | None = None


def reading_lines(reading: Reading, depot: Depot) -> list[str]:
    """Line protocol for one reading of a known sensor; a heartbeat with no fields gives none."""
    global _last
    lines = _last
    if lines is None or lines._depot is not depot:
        lines = _last = ReadingLines(depot)
    return lines(reading)


def alert_line(alert: Alert, site: str, offset_ns: int = 0) -> str:
    """One point per alert state change."""
    fields: dict[str, FieldValue] = {"key": alert.key, "summary": alert.summary}
    # The subject is a tag so that alerts of one rule changing in the same tick (five items
    # found unseen at once) are separate series; as fields they would overwrite each other.
    tags = {"site": site, "rule": alert.rule, "severity": alert.severity.value,
            "state": alert.state.value, "storehouse": alert.storehouse,
            "subject": alert.subject}
    return line("alert", tags, fields, alert.changed_ns + offset_ns)
