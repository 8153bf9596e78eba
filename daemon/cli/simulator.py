"""A compressed night at the demo depot: heartbeats, normal traffic and four incidents."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from zoneinfo import ZoneInfo

__all__ = ["EXPECTED_ALERTS", "Publish", "demo_night"]

ZONE = ZoneInfo("Europe/Vienna")
# Friday evening: SH1 arms at 18:00, SH2 (propellant) at 17:00.
START = dt.datetime(2026, 11, 27, 17, 40, tzinfo=ZONE)
END = dt.datetime(2026, 11, 28, 5, 0, tzinfo=ZONE)

# What the night must raise; the demo fails if any is missing.
EXPECTED_ALERTS = (
    "door_armed.SH1-D2",
    "tamper.sh2-door1",
    "temperature_warning.sh2-climate1",
    "sensor_silent.sh1-climate1",
)

_DOORS = {"SH1-D1": "sh1-door1", "SH1-D2": "sh1-door2", "SH2-D1": "sh2-door1",
          "SH2-D2": "sh2-door2"}


@dataclass(frozen=True, slots=True)
class Publish:
    """One MQTT message the simulated devices send at a depot time."""

    at: dt.datetime
    topic: str
    payload: bytes


def _at(day: int, hour: int, minute: int) -> dt.datetime:
    return dt.datetime(2026, 11, 27 + day, hour, minute, tzinfo=ZONE)


def _between(t: dt.datetime, start: dt.datetime, end: dt.datetime) -> bool:
    return start <= t < end


def _sh2_temperature(t: dt.datetime) -> float:
    """Propellant magazine 2 overheats: a failed cooling unit from 01:00 to 03:30."""
    base = 21.0
    rise_start, peak, fall_start, cool = _at(1, 1, 0), _at(1, 1, 30), _at(1, 3, 0), _at(1, 3, 30)
    if t < rise_start or t >= cool:
        return base
    if t < peak:
        return base + 12.0 * (t - rise_start) / (peak - rise_start)
    if t < fall_start:
        return 33.0
    return 33.0 - 9.0 * (t - fall_start) / (cool - fall_start)


def demo_night(door_heartbeat_s: int = 30, climate_interval_s: int = 300) -> Iterator[Publish]:
    """Every message of the night, in time order."""
    step = dt.timedelta(seconds=door_heartbeat_s)
    t = START
    n = 0
    while t < END:
        for door, sensor in _DOORS.items():
            is_open = (door == "SH1-D1" and _between(t, _at(0, 17, 45), _at(0, 17, 55))) or (
                door == "SH1-D2" and _between(t, _at(0, 23, 12), _at(0, 23, 20)))
            tamper = sensor == "sh2-door1" and _between(t, _at(1, 0, 30), _at(1, 0, 45))
            body: dict[str, object] = {"contact": not is_open, "tamper": tamper,
                                       "battery": 97, "linkquality": 120}
            yield Publish(t, f"zigbee2mqtt/{sensor}", json.dumps(body).encode())
        if n % (climate_interval_s // door_heartbeat_s) == 0:
            if not _between(t, _at(1, 1, 40), _at(1, 2, 20)):  # sh1-climate1 drops off
                body = {"temperature": 19.5, "humidity": 52.0, "battery": 88}
                yield Publish(t, "zigbee2mqtt/sh1-climate1", json.dumps(body).encode())
            body = {"temperature": round(_sh2_temperature(t), 2), "humidity": 48.0,
                    "battery": 91}
            yield Publish(t, "zigbee2mqtt/sh2-climate1", json.dumps(body).encode())
            tele = {"Time": t.strftime("%Y-%m-%dT%H:%M:%S"),
                    "AM2301": {"Temperature": 20.4, "Humidity": 47.5}, "TempUnit": "C"}
            yield Publish(t, "tele/sh2-climate2/SENSOR", json.dumps(tele).encode())
        if t == _at(0, 20, 0):
            # Bad input the gateway must survive: garbage and a device nobody configured.
            yield Publish(t, "zigbee2mqtt/sh1-door1", b"\x00\xffnot json")
            yield Publish(t, "zigbee2mqtt/forklift-7", b'{"contact": true}')
        t += step
        n += 1
