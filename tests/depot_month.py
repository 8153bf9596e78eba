"""October 2026 at a two-storehouse depot, as its devices would publish it, with the duty
officers' answers to each alarm: the month the report test plays through the real daemon.

Everything the report must show is put in here on purpose, with the figure it must give:
climate exceedances, alarms and their checks, entries, refused badges, vault openings, portal
movements with and without a movement order, an item not seen for a day, a tamper, a climate
sensor that falls silent for good. Times are UTC (the storehouses' zone).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

UTC = dt.UTC
NS = 1_000_000_000
MONTH = "2026-10"
# The daemon starts an hour before the month, so the first daily window has data.
START = dt.datetime(2026, 9, 30, 23, 0, tzinfo=UTC)
END = dt.datetime(2026, 11, 1, 0, 0, tzinfo=UTC)
HEARTBEAT = dt.timedelta(minutes=10)

OFFICERS = {"Sgt. Anna Berger": "berger-token-0123456789abcdef",
            "Cpl. Ben Kovac": "kovac-token-0123456789abcdef"}
BERGER, KOVAC = OFFICERS


def at(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> dt.datetime:
    """A time in October 2026."""
    return dt.datetime(2026, 10, day, hour, minute, second, tzinfo=UTC)


# The broker is down from 25 Oct 00:00 to 03:00 (the gateway's MQTT input is lost); what the
# devices publish meanwhile is lost with it.
BROKER_DOWN = (at(25), at(25, 3))


@dataclass(frozen=True, slots=True)
class Message:
    """One MQTT message a device publishes at a depot time."""

    at: dt.datetime
    topic: str
    payload: dict[str, Any]
    # Heartbeats fill the month; events get one-minute steps around them so timers are judged.
    event: bool = True


@dataclass(frozen=True, slots=True)
class Response:
    """What the duty officers do with every episode of an alarm: acknowledge after `ack_min`,
    record the on-site check after `check_min` (None: never) with `finding`."""

    ack_by: str
    ack_min: float
    check_by: str | None = None
    check_min: float | None = None
    finding: str = ""


# The officers answer these alarms; every other alert (warnings) is left to clear itself.
RESPONSES = {
    "door_forced.SH1-D1": Response(BERGER, 2, KOVAC, 12, "intrusion"),
    "door_armed.SH1-V1": Response(BERGER, 1, BERGER, 8, "false_alarm"),
    "two_person.SH1-V1": Response(KOVAC, 3, KOVAC, 10, "false_alarm"),
    "two_person_alone.SH1-V1": Response(KOVAC, 3, KOVAC, 10, "false_alarm"),
    "tamper.sh1-door1": Response(BERGER, 4, BERGER, 20, "fault"),
    "temperature_alarm.sh1-t1": Response(KOVAC, 5, KOVAC, 25, "fault"),
    "portal_movement.E0000004": Response(BERGER, 1, KOVAC, 15, "intrusion"),
    "humidity_alarm.sh2-t1": Response(KOVAC, 5, KOVAC, 40, "fault"),
    "sensor_silent.sh2-t1": Response(KOVAC, 30),
    "badge_access.SH1-D1": Response(BERGER, 3, BERGER, 14, "false_alarm"),
    "input_lost.mqtt": Response(BERGER, 10, BERGER, 60, "fault"),
}

ITEMS = {"E0000001": "Rifle G3 #101", "E0000002": "Rifle G3 #102",
         "E0000003": "Rifle G3 #103", "E0000004": "Pistol P1 #104",
         "E0000005": "Rifle G3 #105"}


def config(state_dir: Path, mqtt_port: int, influx_url: str, database: str,
           client_id: str) -> dict[str, Any]:
    """The depot: SH1 with a door, a two-person vault and a portal; SH2 a propellant store."""
    armed = {"mode": "schedule", "windows": [{"from": "18:00", "to": "07:00"}]}
    return {
        "site": {"id": "depot-m", "name": "Depot Month"},
        "state_dir": str(state_dir),
        "badge_salt": "month-salt",
        "storehouses": [
            {"id": "SH1", "name": "North magazine", "armed": armed},
            {"id": "SH2", "name": "Propellant store", "climate_class": "propellant",
             "armed": armed},
        ],
        "doors": [
            {"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "sh1-door1",
             "badge_reader": "sh1-reader1"},
            {"id": "SH1-V1", "storehouse": "SH1", "contact_sensor": "sh1-vault",
             "badge_reader": "sh1-vreader", "two_person": True},
            {"id": "SH2-D1", "storehouse": "SH2", "contact_sensor": "sh2-door1",
             "badge_reader": "sh2-reader1"},
        ],
        "climate_sensors": [{"id": "sh1-t1", "storehouse": "SH1"},
                            {"id": "sh2-t1", "storehouse": "SH2"}],
        "portals": [{"id": "P1", "storehouse": "SH1", "inner_antenna": "p1-in",
                     "outer_antenna": "p1-out"}],
        "inventory_readers": [{"id": "sh1-inventory", "storehouse": "SH1"}],
        "roster": [
            {"name": "Alice Adams", "badge": "1001", "zones": ["SH1", "SH2"]},
            {"name": "Bob Brown", "badge": "1002", "zones": ["SH1"],
             "valid_until": "2026-10-01T00:00:00+00:00"},
            {"name": "Carol Clark", "badge": "1003", "zones": ["SH1"]},
        ],
        "items": [{"epc": epc, "name": name, "storehouse": "SH1"}
                  for epc, name in ITEMS.items()],
        "movement_orders": [{"id": "MO-1", "portal": "P1",
                             "items": ["E0000001", "E0000002", "E0000003"],
                             "valid_from": "2026-10-08T09:00:00+00:00",
                             "valid_until": "2026-10-08T11:00:00+00:00"}],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": client_id,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                 "subscriptions": [
                     {"topic": "zigbee2mqtt/{sensor}", "decoder": {"type": "zigbee2mqtt"}},
                     # Readers and antennas also send a status heartbeat without a card or tag.
                     {"topic": "badge/{sensor}",
                      "decoder": {"type": "json_fields", "fields": {"badge": "card"}}},
                     {"topic": "rfid/{sensor}",
                      "decoder": {"type": "json_fields", "fields": {"epc": "epc"}}}]},
        "influxdb": [{"api": "v1", "url": influx_url, "database": database,
                      "flush_interval_s": 0.2}],
        # Every device here reports at least every 10 min (a Zigbee check-in, a reader's status).
        "rules": [{"type": "sensor_silent", "radio_s": 1200, "wired_s": 1200}],
        "api": {"listen_port": 0, "officers": [
            {"name": name, "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
            for name, token in OFFICERS.items()]},
    }


# -- the story -----------------------------------------------------------------------------------

def _sh1_climate(t: dt.datetime) -> tuple[float, float]:
    temperature = 20.0 + (t.hour % 6) * 0.5
    humidity = 50.0
    if at(10, 12) <= t < at(11, 15):
        temperature = 39.0  # a failed cooling unit: 27 h above the warning and alarm limits
    if at(7) <= t < at(7, 8):
        humidity = 66.0  # 8 h above the 65 % warning
    return temperature, humidity


def _sh2_climate(t: dt.datetime) -> tuple[float, float] | None:
    if t >= at(20):
        return None  # the sensor falls silent for good
    humidity = 62.0 if at(3, 9) <= t < at(4, 11) else 48.0  # 26 h above the 60 % alarm
    return 19.0, humidity


# Door openings (start, end) and tamper periods per contact sensor.
_OPEN = {
    "sh1-door1": [(at(3, 10), at(3, 10, 2))]  # forced: nobody badged
    + [(at(5, 9, i, 5), at(5, 9, i, 25)) for i in range(5)],  # Alice, five entries
    "sh1-vault": [(at(6, 22), at(6, 22, 0, 20)), (at(6, 22, 30), at(6, 22, 30, 20)),
                  (at(13, 11), at(13, 11, 0, 20)), (at(13, 11, 10), at(13, 11, 10, 20))],
    "sh2-door1": [],
}
_TAMPER = {"sh1-door1": [(at(14, 2), at(14, 2, 10))]}

_BADGES = (
    [(at(5, 9, i), "sh1-reader1", "1001") for i in range(5)]
    + [(at(5, 9, 10), "sh1-reader1", "1002"), (at(5, 9, 11), "sh1-reader1", "1002")]  # expired
    + [(at(6, 3), "sh1-reader1", "9999")]  # not on the roster
    # Alice and Carol into the vault and out again, armed: two persons each way.
    + [(at(6, 21, 59, 10), "sh1-vreader", "1001"), (at(6, 21, 59, 40), "sh1-vreader", "1003"),
       (at(6, 22, 29, 30), "sh1-vreader", "1003"), (at(6, 22, 29, 40), "sh1-vreader", "1001")]
    # Alice alone into the vault by day.
    + [(at(13, 10, 59, 30), "sh1-vreader", "1001"), (at(13, 11, 9, 30), "sh1-vreader", "1001")]
)

# Portal passages: (time, epc, direction); out = inner then outer antenna.
_PASSAGES = [(at(8, 10), "E0000001", "out"), (at(8, 10, 1), "E0000002", "out"),
             (at(9, 10), "E0000001", "in"), (at(12, 22), "E0000004", "out")]


_HEARTBEATS = ("badge/sh1-reader1", "badge/sh1-vreader", "badge/sh2-reader1", "rfid/p1-in",
               "rfid/p1-out", "rfid/sh1-inventory")


def _between(t: dt.datetime, spans: list[tuple[dt.datetime, dt.datetime]]) -> bool:
    return any(a <= t < b for a, b in spans)


def _in_store(epc: str, t: dt.datetime) -> bool:
    """Whether the inventory reader sees the item at `t`."""
    if epc == "E0000001":
        return not at(8, 10) <= t < at(9, 10)
    if epc == "E0000002":
        return t < at(8, 10, 1)
    if epc == "E0000004":
        return t < at(12, 22)
    if epc == "E0000005":
        return not at(15, 18) <= t < at(17)  # missed by the reader for a day and a half
    return True


def _door(sensor: str, t: dt.datetime, event: bool) -> Message:
    return Message(t, f"zigbee2mqtt/{sensor}", {
        "contact": not _between(t, _OPEN[sensor]),
        "tamper": _between(t, _TAMPER.get(sensor, [])),
        "battery": 97, "linkquality": 120}, event)


def month() -> list[Message]:
    """Every message of the month, in time order."""
    out: list[Message] = []
    t = START
    while t < END:
        for sensor in _OPEN:
            out.append(_door(sensor, t, False))
        temperature, humidity = _sh1_climate(t)
        out.append(Message(t, "zigbee2mqtt/sh1-t1", {
            "temperature": temperature, "humidity": humidity, "battery": 88}, False))
        sh2 = _sh2_climate(t)
        if sh2 is not None:
            out.append(Message(t, "zigbee2mqtt/sh2-t1", {
                "temperature": sh2[0], "humidity": sh2[1], "battery": 90}, False))
        out += [Message(t, topic, {"status": "online"}, False) for topic in _HEARTBEATS]
        if t.minute == 0 and t.hour % 6 == 0:
            out += [Message(t, "rfid/sh1-inventory", {"epc": epc}, False)
                    for epc in ITEMS if _in_store(epc, t)]
        t += HEARTBEAT
    for sensor, spans in _OPEN.items():
        for start, end in spans:
            out += [_door(sensor, start, True), _door(sensor, end, True)]
    for sensor, spans in _TAMPER.items():
        for start, end in spans:
            out += [_door(sensor, start, True), _door(sensor, end, True)]
    out += [Message(t, f"badge/{reader}", {"card": card}) for t, reader, card in _BADGES]
    for t, epc, direction in _PASSAGES:
        first, second = ("p1-in", "p1-out") if direction == "out" else ("p1-out", "p1-in")
        out += [Message(t, f"rfid/{first}", {"epc": epc}),
                Message(t + dt.timedelta(seconds=2), f"rfid/{second}", {"epc": epc})]
    out.sort(key=lambda m: m.at)  # stable: heartbeats before the events of the same second
    return out


def body(message: Message) -> bytes:
    """The payload as the device sends it."""
    return json.dumps(message.payload).encode()
