"""Everything `Pipeline.ingest` makes of deterministic, alarm-rich input, printed for comparing
two trees: a change to the hot path must print the same.

Three parts, each from a seed: a stream (bench/depot_mix.py's messages with perturbed ones mixed
in: doors opened while armed, tamper, flat batteries, hot and wet climate, refused and visitor
badges, unordered exits, bad payloads, late and redelivered messages, gateway inputs going
down; ticks between; a restart from a JSON round trip of the state midway; 80 hours of climate
readings and ticks at the end) through a whole pipeline, printing the stored lines and receipts,
alerts, dead-letter counts, counters, the final snapshot and the console's recent events;
random payloads through the mix's decoders and `coerce_field`; random readings through
`reading_lines`. Exceptions are printed as results.

Run: `.venv/bin/python bench/ingest_outputs.py --tree OTHER_TREE > other.txt 2>/dev/null`, then
without `--tree` (this tree) into another file, and compare the two (`cmp`); dead letters are
logged on stderr. 4 seeds take about 12 s per tree.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

NS = 1_000_000_000
T0 = int(dt.datetime(2026, 11, 28, 9, 0, tzinfo=dt.UTC).timestamp()) * NS


def _run(f: Callable[[], object]) -> str:
    try:
        return repr(f())
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


def _stream_config(lay: Any, tmp: Path) -> dict[str, Any]:
    """bench/depot_mix.py's config with what the mix alone never does: an armed storehouse,
    two-person doors, orders and a roster entry out of date, an escort, a zone, more rules."""
    from bench.depot_mix import daemon_config

    cfg = daemon_config(lay, site="eq", prefix="eq", state_dir=str(tmp), mqtt_port=1883,
                        influx_url="http://127.0.0.1:1", influx_db="eq",
                        vm_url="http://127.0.0.1:1", fsync=False, webhook_url=None)
    cfg["storehouses"][0]["armed"] = {"mode": "always"}
    cfg["doors"][0]["two_person"] = True
    cfg["doors"][1]["two_person"] = True
    base = dt.datetime.fromtimestamp(T0 / NS, tz=dt.UTC)
    orders = cfg["movement_orders"]
    orders[0]["valid_from"] = (base - dt.timedelta(hours=1)).isoformat()
    orders[0]["valid_until"] = (base + dt.timedelta(minutes=3)).isoformat()
    orders[1]["valid_from"] = (base + dt.timedelta(hours=2)).isoformat()
    orders[1]["valid_until"] = (base + dt.timedelta(hours=3)).isoformat()
    cfg["roster"][0]["valid_until"] = (base - dt.timedelta(days=1)).isoformat()
    cfg["roster"][1]["escort_only"] = True
    cfg["roster"][2]["zones"] = [lay.storehouses[-1]]
    cfg["rules"] = [{"type": "sensor_silent", "wired_s": 60, "radio_s": 120, "climate_s": 300},
                    {"type": "item_unseen", "max_unseen_s": 600},
                    {"type": "door_held_open", "max_open_s": 30},
                    {"type": "badge_access", "clear_after_s": 30}]
    return cfg


def _perturber(rng: random.Random, lay: Any) -> Callable[[str, bytes], tuple[str, bytes]]:
    """A message of the mix, or one the mix never sends instead: odd doors, climate out of band,
    refused cards, unknown tags, bad payloads."""
    from bench.depot_mix import ROSTER

    doors = [d[2] for d in lay.doors]
    readers = [d[3] for d in lay.doors if d[3]]

    def perturb(topic: str, payload: bytes) -> tuple[str, bytes]:
        r = rng.random()
        if r < 0.1:
            return f"zigbee2mqtt/{rng.choice(doors)}", json.dumps({
                "contact": rng.random() < 0.5, "tamper": rng.random() < 0.3,
                "battery": rng.choice([5, 15, 19.5, 30, 90, None]),
                "battery_low": rng.choice([True, False, None])}).encode()
        if r < 0.2:
            sensor, _, tasmota = rng.choice(lay.climate[:3])
            temperature = rng.choice([20.0, 31.5, 38.0, 55.0, 55.5, 56.0, 3.0])
            humidity = rng.choice([40.0, 66.0, 75.0, 99.0])
            if tasmota:
                return f"tele/{sensor}/SENSOR", json.dumps(
                    {"AM2301": {"Temperature": temperature, "Humidity": humidity}}).encode()
            return f"zigbee2mqtt/{sensor}", json.dumps(
                {"temperature": temperature, "humidity": humidity,
                 "battery": rng.randint(1, 100)}).encode()
        if r < 0.3:
            card = rng.choice([*ROSTER[:4], "999999", 123456, " 700003 "])
            return f"badge/{rng.choice(readers)}", json.dumps({"card": card}).encode()
        if r < 0.4:
            _, _, inner, outer, epcs = rng.choice(lay.portals)
            epc = rng.choice([*epcs, "deadbeef", " e28011606000020100000000A "])
            return f"rfid/{rng.choice([inner, outer])}", json.dumps(
                {"epc": epc, "rssi": rng.choice([-50, -60.5, None, True])}).encode()
        if r < 0.5:
            return rng.choice([
                (topic, b"{not json"), ("eq/zigbee2mqtt/nobody", b"{}"), (topic, b"[1,2]"),
                (topic, b'{"battery": 1e400}'), (topic, b'{"contact": "yes"}'),
                ("eq/other/x", b"{}"), (topic, b'{"temperature": 12345678901234567890123}')])
        return topic, payload

    return perturb


def _feed(pipeline: Any, make_pipeline: Callable[[], Any], rng: random.Random,
          messages: list[tuple[str, bytes]], perturb: Callable[[str, bytes], tuple[str, bytes]],
          ) -> tuple[Any, int]:
    """The messages, some perturbed, some late or redelivered, ticks between and a restart
    midway; the pipeline in the end (the restarted one) and the next tick's time."""
    from daemon.ingest.pipeline import receipt_digest
    from daemon.vocabulary.readings import RawMessage

    now = T0
    next_tick = T0 + NS
    for i, (topic, payload) in enumerate(messages):
        if rng.random() < 0.08:
            topic, payload = perturb(topic, payload)
        now += rng.choice([1, 10, 50, 200, 900]) * 1_000_000
        while now >= next_tick:
            pipeline.tick(next_tick)
            next_tick += NS * rng.choice([1, 1, 5, 30])
        at = now - (rng.choice([0, 0, 0, 5, 3000]) * 1_000_000)  # some late, out of order
        source = topic if topic.startswith("eq/") else f"eq/{topic}"
        raw = RawMessage(source, payload, at, redelivered=rng.random() < 0.02)
        pipeline.ingest(raw, now, receipt_digest(raw) if rng.random() < 0.5 else None,
                        redeliverable=rng.random() < 0.95)
        if i == len(messages) // 2:
            # A restart: the state file's round trip, into a new pipeline.
            saved = json.loads(json.dumps(pipeline.snapshot()))
            old = pipeline
            pipeline = make_pipeline()
            pipeline.restore(saved)
            pipeline.readings, pipeline.points_out = old.readings, old.points_out
            pipeline.engine.stale_readings = old.engine.stale_readings
        if i % 997 == 0:
            pipeline.gateway_reading("mqtt", {"up": rng.random() < 0.5}, now)
            pipeline.input_state("serial:x", rng.random() < 0.5, now)
    return pipeline, next_tick


def _days(pipeline: Any, rng: random.Random, messages: list[tuple[str, bytes]],
          next_tick: int) -> None:
    """Days pass: daily climate records, item and silence alarms; climate readings between."""
    from daemon.vocabulary.readings import RawMessage

    for k in range(60):
        pipeline.tick(next_tick + k * 30 * NS)
    climate = [m for m in messages if m[0].startswith(("tele/", "zigbee2mqtt/clim"))]
    now = next_tick + 60 * 30 * NS
    for _ in range(80):
        now += 3600 * NS
        for topic, payload in rng.sample(climate, 5):
            now += NS
            pipeline.ingest(RawMessage(f"eq/{topic}", payload, now), now)
        pipeline.tick(now)


def _pipelines(config: Any, depot: Any, tmp: Path,
               store: Callable[[list[str], list[tuple[bytes, int]]], None], alerts: list[str],
               recent: Any) -> Callable[[], Any]:
    """A maker of whole pipelines for the config, as the runner builds them, sharing one store,
    one list of alerts and the console's recent events."""
    from daemon.alerts.book import AlertBook
    from daemon.ingest.deadletters import DeadLetterStore
    from daemon.ingest.pipeline import Pipeline
    from drivers.mqtt_topics import TopicRoute, TopicRouter
    from drivers.routes import Routers
    from drivers.serial import SerialRouter
    from rules.engine import Engine

    def make_pipeline() -> Pipeline:
        pipeline = Pipeline(
            depot=depot,
            router=Routers([
                TopicRouter([TopicRoute.from_config(s) for s in config.mqtt.subscriptions]),
                SerialRouter(config.serial),
            ]),
            engine=Engine([(rule.type, rule.build(depot)) for rule in config.rule_set()],
                          depot),
            alerts=AlertBook(),
            deadletters=DeadLetterStore(tmp / "dl.sqlite", config.deadletters),
            store=store, notify=[lambda a: alerts.append(repr(a))])
        pipeline.listeners.append(recent.reading)
        return pipeline

    return make_pipeline


def stream(seed: int) -> None:
    """The pipeline's outputs for one seed's stream, as one JSON document."""
    from bench.depot_mix import layout, make_mix
    from daemon.config.schema import Config
    from daemon.web.recent import RecentEvents

    tmp = Path(tempfile.mkdtemp())
    lay = layout(100)
    config = Config.model_validate(_stream_config(lay, tmp))
    depot = config.depot()
    stored: list[Any] = []
    alerts: list[str] = []

    def store(lines: list[str], receipts: list[tuple[bytes, int]]) -> None:
        stored.extend(lines)
        stored.append(("receipts", [(d.hex(), t) for d, t in receipts]))

    recent = RecentEvents(depot)
    make_pipeline = _pipelines(config, depot, tmp, store, alerts, recent)
    pipeline = make_pipeline()
    rng = random.Random(seed)
    mix = make_mix(lay, 6000, seed=seed)
    pipeline, next_tick = _feed(pipeline, make_pipeline, rng, mix.messages,
                                _perturber(rng, lay))
    _days(pipeline, rng, mix.messages, next_tick)
    out = {"stored": stored, "alerts": alerts, "dead": dict(pipeline.deadletters.counts),
           "readings": dict(pipeline.readings), "points_out": pipeline.points_out,
           "stale": pipeline.engine.stale_readings, "skipped": pipeline.redeliveries_skipped,
           "snapshot": pipeline.snapshot(), "recent": recent.snapshot()}
    print(json.dumps(out, sort_keys=True, default=repr, indent=0))

def decoders(seed: int, n: int = 40_000) -> None:
    """Random payloads through the mix's decoders, random values through `coerce_field`."""
    from daemon.vocabulary.readings import RawMessage
    from drivers.decoders.base import FIELD_TYPES, coerce_field, parse_json_object
    from drivers.decoders.json_fields import JsonFieldsDecoder, JsonFieldsDecoderConfig
    from drivers.decoders.tasmota import TasmotaDecoderConfig
    from drivers.decoders.zigbee2mqtt import Zigbee2MqttDecoder

    config = JsonFieldsDecoderConfig
    decoding = [
        Zigbee2MqttDecoder().decode,
        JsonFieldsDecoder(config(fields={"badge": "card"}, required=["badge"])).decode,
        JsonFieldsDecoder(config(fields={"epc": "epc", "rssi_dbm": "rssi"},
                                 required=["epc"])).decode,
        JsonFieldsDecoder(config(fields={"open": "a.b", "temperature_c": "t", "tamper": "x.y.z"},
                                 invert=["open"], sensor_path="id")).decode,
        TasmotaDecoderConfig().build().decode,
    ]
    rng = random.Random(seed)
    atoms = [None, True, False, 0, 1, -5, 2**63, 2**64, 2**70, -2**63 - 1, 1.5, -0.0, 1e300,
             9.3e18, 9.2e18, -9.3e18, "", " ", "abc", " e28011 ", "x" * 130, "7000001", "é",
             12345678901234567890123]
    keys = ["contact", "temperature", "humidity", "battery", "battery_low", "tamper",
            "linkquality", "card", "epc", "rssi", "a", "b", "t", "x", "y", "z", "id", "AM2301",
            "Temperature", "Humidity", "DS18B20", "Time"]

    def value(depth: int) -> Any:
        r = rng.random()
        if depth < 3 and r < 0.15:
            return {rng.choice(keys): value(depth + 1) for _ in range(rng.randint(0, 4))}
        if depth < 3 and r < 0.2:
            return [value(depth + 1) for _ in range(rng.randint(0, 3))]
        return rng.choice(atoms)

    def payload() -> bytes:
        if rng.random() < 0.05:
            return rng.choice([b"", b"{", b"[]", b"null", b"\xff\xfe", b'{"a":NaN}',
                               b'{"t": 1e400}', b'{"card": "\\ud800"}',
                               b"[" * 2000 + b"]" * 2000, b'{"a":' * 500 + b"1" + b"}" * 500])
        body = {rng.choice(keys): value(0) for _ in range(rng.randint(0, 6))}
        return json.dumps(body).encode()

    for i in range(n):
        data = payload()
        raw = RawMessage("t", data, i)
        print(_run(lambda: parse_json_object(data)))  # noqa: B023 - called at once
        for decode in decoding:
            print(_run(lambda: decode(raw, "s")))  # noqa: B023
        name = rng.choice(list(FIELD_TYPES))
        v = value(2)
        print(_run(lambda: coerce_field(name, v)))  # noqa: B023


def points(seed: int, n: int = 100_000) -> None:
    """Random readings of the bench depot's sensors (and an unknown one) as line protocol."""
    from bench.depot_mix import daemon_config, layout
    from daemon.config.schema import Config
    from daemon.tsdb.points import reading_lines
    from daemon.vocabulary.readings import Reading

    cfg = daemon_config(layout(100), site="eq", prefix="eq", state_dir=tempfile.mkdtemp(),
                        mqtt_port=1883, influx_url="http://127.0.0.1:1", influx_db="eq",
                        vm_url="http://127.0.0.1:1", fsync=False, webhook_url=None)
    depot = Config.model_validate(cfg).depot()
    rng = random.Random(seed)
    values = [1.5, -0.0, float("nan"), float("inf"), True, False, 3, 10**400, "x", 'a"b\\',
              "\ud800", "é", None, -243.12, 50.0, 0.0]
    keys = ["open", "tamper", "battery_pct", "battery_low", "temperature_c", "humidity_pct",
            "epc", "x"]
    sensors = [*depot.sensors, "nobody"]
    for _ in range(n):
        fields = {k: rng.choice(values) for k in rng.sample(keys, rng.randint(0, 5))}
        reading = Reading(rng.choice(sensors), rng.randint(0, 2**63), fields)
        print(_run(lambda: reading_lines(reading, depot)))  # noqa: B023


def main() -> None:
    """Print every part's outputs for each seed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tree", type=Path, default=Path(__file__).resolve().parent.parent,
                        help="the depotwatch tree whose code runs (default: this one)")
    parser.add_argument("--seeds", type=int, default=4)
    args = parser.parse_args()
    sys.path.insert(0, str(args.tree.resolve()))
    for seed in range(1, args.seeds + 1):
        print(f"# stream, seed {seed}")
        stream(seed)
        print(f"# decoders, seed {seed}")
        decoders(seed)
        print(f"# points, seed {seed}")
        points(seed)


if __name__ == "__main__":
    main()
