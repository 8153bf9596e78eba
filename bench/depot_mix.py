"""A depot's MQTT traffic for bench/depot.py: its sensors, its messages, and depotwatch's config.

One deterministic message list per (sensors, messages) pair, so every run and every receiver
(bare client, depotwatch, Node-RED) gets the same messages; only the topic prefix differs.

The mix, by message count: about 30 % RFID portal reads in bursts (a pallet of 25 tagged items
passing a portal, each tag read 4 times by each antenna: 200 reads in a row), and for the rest
door contacts (about half: Zigbee2MQTT state with battery and link quality, a door opening or
closing now and then), climate (about a third: Zigbee2MQTT or Tasmota telemetry) and access
episodes (a badge read, then that door opens and closes: 3 messages). Nothing in the mix raises
an alarm: storehouses are disarmed (day shift), badges are on the roster, the pallets carry a
movement order, temperatures stay in band.

What reaches the database for each message: a `door` or `climate` point per contact or climate
message, an `access` point per badge read, and a `portal` point per tag per burst (bursts at a
portal alternate out and in, and each portal gets an even number per run, so every burst turns
each tag's reads into exactly one passage whatever came before it).
"""

from __future__ import annotations

import datetime as dt
import json
import random
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Layout", "Mix", "daemon_config", "layout", "make_mix"]

PALLET_TAGS = 25  # tagged items per pallet
READS_PER_ANTENNA = 4  # reads of each tag by each antenna of a portal during one passage
BURST = PALLET_TAGS * READS_PER_ANTENNA * 2
SENSORS_PER_STOREHOUSE = 25
BADGE_SALT = "bench-salt-not-secret"
ROSTER = [f"7{i:05d}" for i in range(40)]


@dataclass(frozen=True)
class Layout:
    """The depot: storehouses, doors (some with badge readers), climate sensors, 2 portals."""

    sensors: int
    storehouses: list[str]
    doors: list[tuple[str, str, str, str | None]]  # id, storehouse, contact sensor, reader
    climate: list[tuple[str, str, bool]]  # id, storehouse, Tasmota (else Zigbee2MQTT)
    portals: list[tuple[str, str, str, str, list[str]]]  # id, storehouse, inner, outer, EPCs


def layout(sensors: int) -> Layout:
    """`sensors` sensors in all: 4 portal antennas, and the rest split into door contacts
    (45 %), badge readers (15 %) and climate sensors."""
    rest = sensors - 4
    if rest < 20:
        raise ValueError("at least 45 sensors")
    n_doors, n_readers = rest * 45 // 100, rest * 15 // 100
    n_climate = rest - n_doors - n_readers
    stores = [f"SH{i:02d}" for i in range(1, max(1, sensors // SENSORS_PER_STOREHOUSE) + 1)]
    doors = [(f"D{i:04d}", stores[i % len(stores)], f"door-{i:04d}",
              f"reader-{i:04d}" if i < n_readers else None) for i in range(n_doors)]
    climate = [(f"clim-{i:04d}", stores[i % len(stores)], i % 4 == 3) for i in range(n_climate)]
    portals = []
    for p in (1, 2):
        epcs = [f"E28011606000020{p}{t:09X}" for t in range(PALLET_TAGS)]
        portals.append((f"P{p}", stores[p % len(stores)], f"p{p}-inner", f"p{p}-outer", epcs))
    return Layout(sensors, stores, doors, climate, portals)


@dataclass
class Mix:
    """Messages as (topic under the prefix, payload), and what each run adds to the database."""

    messages: list[tuple[str, bytes]]
    kinds: Counter[str] = field(default_factory=Counter)  # messages per kind
    expected: Counter[str] = field(default_factory=Counter)  # points per measurement


def _z2m_door(rng: random.Random, closed: bool) -> bytes:
    return json.dumps({"battery": rng.randint(60, 100), "contact": closed,
                       "linkquality": rng.randint(30, 255), "tamper": False,
                       "voltage": rng.randint(2800, 3100)}, separators=(",", ":")).encode()


def _climate(rng: random.Random, tasmota: bool, base: float) -> bytes:
    temperature = round(base + rng.uniform(-1.5, 1.5), 2)
    humidity = round(rng.uniform(40.0, 52.0), 1)
    if tasmota:
        return json.dumps({"Time": "2026-11-28T10:15:00",
                           "AM2301": {"Temperature": temperature, "Humidity": humidity},
                           "TempUnit": "C"}, separators=(",", ":")).encode()
    return json.dumps({"battery": rng.randint(60, 100), "humidity": humidity,
                       "linkquality": rng.randint(30, 255), "temperature": temperature,
                       "voltage": rng.randint(2800, 3100)}, separators=(",", ":")).encode()


def climate_topic(sensor: str, tasmota: bool) -> str:
    """Where a climate sensor publishes."""
    return f"tele/{sensor}/SENSOR" if tasmota else f"zigbee2mqtt/{sensor}"


def _burst(rng: random.Random, portal: tuple[str, str, str, str, list[str]], out: bool,
           ) -> list[tuple[str, bytes]]:
    _, _, inner, outer, epcs = portal
    first, second = (inner, outer) if out else (outer, inner)
    reads: list[tuple[str, bytes]] = []
    for antenna in (first, second):
        side = [(f"rfid/{antenna}", json.dumps(
            {"epc": epc, "rssi": rng.randint(-75, -40), "ant": 1},
            separators=(",", ":")).encode())
            for epc in epcs for _ in range(READS_PER_ANTENNA)]
        rng.shuffle(side)
        reads += side
    return reads


def make_mix(lay: Layout, messages: int, seed: int = 9) -> Mix:
    """About `messages` messages (bursts are whole), the same for the same arguments."""
    rng = random.Random(seed)
    mix = Mix([])
    bursts = max(4, round(messages * 0.30 / BURST / 4) * 4)  # even per portal: see docstring
    other = max(0, messages - bursts * BURST)
    closed_doors = [d for d in lay.doors if d[3] is None]
    reader_doors = [d for d in lay.doors if d[3] is not None]
    base_c = {c[0]: rng.uniform(16.0, 22.0) for c in lay.climate}
    door_open: dict[str, bool] = {}
    events: list[list[tuple[str, bytes]]] = []
    count = 0
    while count < other:
        pick = rng.random()
        if pick < 0.50:
            door = rng.choice(closed_doors)
            # Mostly a state heartbeat; one in ten a door opening or closing.
            if rng.random() < 0.1:
                door_open[door[0]] = not door_open.get(door[0], False)
            event = [(f"zigbee2mqtt/{door[2]}", _z2m_door(rng, not door_open.get(door[0], False)))]
            mix.kinds["door"] += 1
        elif pick < 0.86 or not reader_doors:
            sensor, _, tasmota = rng.choice(lay.climate)
            event = [(climate_topic(sensor, tasmota), _climate(rng, tasmota, base_c[sensor]))]
            mix.kinds["climate"] += 1
        else:
            _, _, contact, reader = rng.choice(reader_doors)
            card = rng.choice(ROSTER)
            event = [(f"badge/{reader}", json.dumps({"card": card}).encode()),
                     (f"zigbee2mqtt/{contact}", _z2m_door(rng, False)),
                     (f"zigbee2mqtt/{contact}", _z2m_door(rng, True))]
            mix.kinds["badge"] += 1
            mix.kinds["door"] += 2
        events.append(event)
        count += len(event)
    # Bursts spread evenly through the traffic; in delivery order they alternate portals, and
    # at each portal out and in.
    slots = sorted(rng.sample(range(len(events) + 1), bursts)) if events else [0] * bursts
    placed: list[list[tuple[str, bytes]] | None] = list(events)
    for slot in reversed(slots):
        placed.insert(slot, None)
    out_next = {p[0]: True for p in lay.portals}
    bursts_seen = 0
    events = []
    for event in placed:
        if event is None:
            portal = lay.portals[bursts_seen % len(lay.portals)]
            event = _burst(rng, portal, out_next[portal[0]])
            out_next[portal[0]] = not out_next[portal[0]]
            bursts_seen += 1
        events.append(event)
    mix.kinds["rfid"] = bursts_seen * BURST
    mix.messages = [m for event in events for m in event]
    mix.expected.update(door=mix.kinds["door"], climate=mix.kinds["climate"],
                        access=mix.kinds["badge"], portal=bursts_seen * PALLET_TAGS)
    return mix


def _subscriptions(prefix: str) -> list[dict[str, Any]]:
    return [
        {"topic": f"{prefix}/zigbee2mqtt/{{sensor}}", "decoder": {"type": "zigbee2mqtt"}},
        {"topic": f"{prefix}/tele/{{sensor}}/SENSOR", "decoder": {"type": "tasmota"}},
        {"topic": f"{prefix}/badge/{{sensor}}",
         "decoder": {"type": "json_fields", "fields": {"badge": "card"}, "required": ["badge"]}},
        {"topic": f"{prefix}/rfid/{{sensor}}",
         "decoder": {"type": "json_fields", "fields": {"epc": "epc", "rssi_dbm": "rssi"},
                     "required": ["epc"]}},
    ]


def daemon_config(lay: Layout, *, site: str, prefix: str, state_dir: str, mqtt_port: int,
                  influx_url: str, influx_db: str, vm_url: str, fsync: bool,
                  webhook_url: str | None) -> dict[str, Any]:
    """depotwatch's config for this depot: every rule kind (silence limits raised), both
    databases, a webhook when given."""
    now = dt.datetime.now(dt.UTC)
    config: dict[str, Any] = {
        "site": {"id": site, "name": f"Bench {site}"},
        "state_dir": state_dir,
        "storehouses": [{"id": s, "name": f"Store {s}", "armed": {"mode": "never"}}
                        for s in lay.storehouses],
        "doors": [{"id": d, "storehouse": s, "contact_sensor": c,
                   **({"badge_reader": r} if r else {})} for d, s, c, r in lay.doors],
        "climate_sensors": [{"id": c, "storehouse": s} for c, s, _ in lay.climate],
        "portals": [{"id": p, "storehouse": s, "inner_antenna": i, "outer_antenna": o}
                    for p, s, i, o, _ in lay.portals],
        "badge_salt": BADGE_SALT,
        "roster": [{"name": f"Person {i:02d}", "badge": badge, "zones": lay.storehouses}
                   for i, badge in enumerate(ROSTER)],
        "items": [{"epc": epc, "name": f"Rifle {epc[-4:]}", "storehouse": s}
                  for _, s, _, _, epcs in lay.portals for epc in epcs],
        "movement_orders": [{"id": f"MO-{p}", "portal": p, "items": epcs,
                             "valid_from": (now - dt.timedelta(hours=1)).isoformat(),
                             "valid_until": (now + dt.timedelta(days=2)).isoformat()}
                            for p, _, _, _, epcs in lay.portals],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port, "client_id": f"depotwatch-{site}",
                 "subscriptions": _subscriptions(prefix)},
        # Every rule kind at its defaults but one: the mix's sensors report only during runs,
        # where a depot's report all the time; with PSSM.md's silence limits (10 s wired) every
        # idle minute between runs would page "sensor silent" for the whole depot.
        # The latency probe raises one unknown-tag alarm per probe (a new key each): past the
        # flood cap of issue 25 (5 at once per portal) they would fold into one alarm.
        "rules": [{"type": "sensor_silent", "wired_s": 3600, "radio_s": 3600,
                   "climate_s": 3600},
                  {"type": "portal_movement", "unknown_tag_cap": 1_000_000}],
        "influxdb": [
            {"api": "v1", "url": influx_url, "database": influx_db},
            {"api": "v2", "url": vm_url, "bucket": influx_db, "org": "bench", "token": "bench"},
        ],
    }
    if not fsync:
        config["spool"] = {"fsync": False}
    from daemon.config.schema import Config

    if "api" in Config.model_fields:  # the officers' API: a free port, not the default 8470
        config["api"] = {"listen_port": 0}
    if webhook_url is not None:
        config["notifiers"] = [{"type": "webhook", "url": webhook_url,
                                "secret": "bench-webhook-secret-0123456789"}]
    return config
