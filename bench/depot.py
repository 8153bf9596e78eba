"""Depot benchmark (issue 9): readings/s, CPU per reading, memory and alarm latency.

One private Mosquitto, VictoriaMetrics and InfluxDB 1.6.7 (``tests/servers.py``; Mosquitto with
its per-packet logging turned down, as in ``mqtt_clients.py``). The same depot traffic
(``depot_mix.py``: door contacts, climate, badge events, RFID portal bursts) is published by a
separate publisher process that writes pre-encoded MQTT 3.1.1 packets straight to a socket and,
at QoS 1, counts the broker's PUBACKs (``mosquitto_pub -l`` cannot wait for them). In every
round, on the same broker and the same messages:

1. ``bare gmqtt``: gmqtt as its users write it (persistent MQTT 5 session, an ``on_message``
   callback, PUBACK after the handler) receiving and discarding: the baseline the targets name;
   and ``depotwatch's MQTT link`` (``drivers.mqtt.MqttLink``: gmqtt whose PUBLISH packets
   ``PublishReader`` reads, PUBACKs one write per commit) discarding, to show what the daemon's
   own work costs on top of its receive path;
2. ``depotwatch``: ``depotwatch run -c FILE`` as a subprocess with every rule kind at its
   defaults (``sensor_silent`` with 1 h limits: the mix's sensors report only during runs),
   the durable spool and two writers (InfluxDB 1.6.7 via /write, VictoriaMetrics via
   /api/v2/write). A run's messages are taken when the alarm raised by its last two messages
   (an unknown tag leaving) arrives on MQTT (at QoS 1 each one spooled before its PUBACK); they
   are in the database when InfluxDB holds every point the run should have written, and
   VictoriaMetrics must hold them all too; variants: 100 and 2,000 sensors, fsync on and off;
3. ``node-red``: Node-RED 4 with ``mqtt in -> json -> function -> influxdb out``
   (node-red-contrib-influxdb) writing to the same InfluxDB, when ``make bench`` could install
   it into ``bench/.node-red``.

readings/s = messages / (first publish .. end): the last message handled (bare client), the
run's end alarm (depotwatch), all points in InfluxDB (depotwatch ``to DB``; Node-RED: the
points it stored, once InfluxDB's count stops moving).
CPU µs per reading: the receiver process's user+system CPU over the run (to DB) / messages.

Then the alarm latency: background traffic paced at 5,000 readings/s into the 100-sensor
daemon while a probe publishes climate readings that fire and resolve `temperature_critical`
alarms, timing publish -> alert on ``depotwatch/<site>/alerts/<key>`` and -> the webhook.

``make bench`` runs it; results go to ``bench/results/depot-<date>.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.server
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any

import depot_mix
import yaml
from mqtt_clients import (
    SESSION_EXPIRY_S,
    _last_json,
    _mosquitto_version,
    _publish_packet,
    _readline,
    _remaining_length,
    _start_broker,
    _version,
)

HOST = "127.0.0.1"
BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
NODE_RED_DIR = BENCH_DIR / ".node-red"
sys.path.insert(0, str(REPO_DIR / "tests"))
from servers import InfluxDB1, VictoriaMetrics, free_port, http_request  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
DB_TIMEOUT_S = 60.0


def _mix(sensors: int, messages: int) -> depot_mix.Mix:
    return depot_mix.make_mix(depot_mix.layout(sensors), messages)


# --------------------------------------------------------------------------------------------
# A raw MQTT 3.1.1 connection: pre-encoded publishes, PUBACK counting, one subscription
# --------------------------------------------------------------------------------------------


class RawClient:
    """Writes packets to a socket; a reader thread counts PUBACKs and sees PUBLISHes."""

    def __init__(self, port: int, client_id: str) -> None:
        self.sock = socket.create_connection((HOST, port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        cid = client_id.encode()
        body = b"\x00\x04MQTT\x04\x02\x00\x3c" + len(cid).to_bytes(2, "big") + cid
        self.sock.sendall(b"\x10" + _remaining_length(len(body)) + body)
        connack = self.sock.recv(4)
        if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
            raise SystemExit(f"bad CONNACK {connack!r}")
        self.pubacks = 0
        self.pingresp = threading.Event()
        self.suback = threading.Event()
        self.published: list[tuple[float, str, bytes, bool]] = []  # (monotonic, topic, ...)
        self.on_publish: Any = None
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        buf = bytearray()
        while True:
            try:
                chunk = self.sock.recv(262144)
            except OSError:
                return
            if not chunk:
                return
            buf += chunk
            pos = 0
            while True:
                if len(buf) - pos < 2:
                    break
                length, mult, i = 0, 1, pos + 1
                while i < len(buf):
                    byte = buf[i]
                    length += (byte & 0x7F) * mult
                    mult *= 128
                    i += 1
                    if not byte & 0x80:
                        break
                else:
                    break
                if len(buf) - i < length:
                    break
                kind, flags, body = buf[pos] >> 4, buf[pos] & 0x0F, bytes(buf[i:i + length])
                pos = i + length
                if kind == 4:
                    self.pubacks += 1
                elif kind == 13:
                    self.pingresp.set()
                elif kind == 9:
                    self.suback.set()
                elif kind == 3:
                    tlen = int.from_bytes(body[:2], "big")
                    topic = body[2:2 + tlen].decode()
                    rest = body[2 + tlen + (2 if flags & 0x06 else 0):]
                    now = time.monotonic()
                    if self.on_publish is not None:
                        self.on_publish(now, topic, rest, bool(flags & 0x01))
            del buf[:pos]

    def subscribe(self, topic_filter: str) -> None:
        """SUBSCRIBE at QoS 0 and wait for the SUBACK."""
        topic = topic_filter.encode()
        body = b"\x00\x01" + len(topic).to_bytes(2, "big") + topic + b"\x00"
        self.sock.sendall(b"\x82" + _remaining_length(len(body)) + body)
        if not self.suback.wait(10):
            raise SystemExit("no SUBACK")

    def ping(self, timeout: float) -> bool:
        """PINGREQ; its PINGRESP means the broker took every earlier packet."""
        self.pingresp.clear()
        self.sock.sendall(b"\xc0\x00")
        return self.pingresp.wait(timeout)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.sendall(b"\xe0\x00")
            self.sock.close()


def _packets(prefix: str, messages: list[tuple[str, bytes]], qos: int, first_id: int = 0,
             ) -> bytes:
    return b"".join(
        _publish_packet(f"{prefix}/{topic}".encode(), payload, qos, (first_id + i) % 65535 + 1)
        for i, (topic, payload) in enumerate(messages))


def unknown_tag_exit(epc: str) -> list[tuple[str, bytes]]:
    """A tag that is not in the item register read leaving through portal P1: an alarm with a
    key of its own (`portal_movement.<epc>`), raised as the second read is handled."""
    body = json.dumps({"epc": epc, "rssi": -50}).encode()
    return [("rfid/p1-inner", body), ("rfid/p1-outer", body)]


def _run_messages(mix: depot_mix.Mix, epc: str) -> list[tuple[str, bytes]]:
    """The run's messages; the last two raise the alarm that marks the end of the run."""
    return [*mix.messages, *unknown_tag_exit(epc)]


def role_publish(args: argparse.Namespace) -> None:
    """Publish one run's messages as fast as the broker takes them; print one JSON line."""
    epc = f"FF{time.time_ns():022X}"
    messages = _run_messages(_mix(args.sensors, args.messages), epc)
    packets = _packets(args.prefix, messages, args.qos)
    client = RawClient(args.port, f"pub-{args.prefix.replace('/', '-')}-{os.getpid()}")
    marker = threading.Event()
    marker_at: list[float] = []
    if args.site:
        key = f"portal_movement.{epc}"

        def seen(now: float, topic: str, payload: bytes, retained: bool) -> None:
            if retained or not topic.endswith(key):
                return
            alert = json.loads(payload)
            if alert.get("state") == "firing":
                marker_at.append(now)
                marker.set()

        client.on_publish = seen
        client.subscribe(f"depotwatch/{args.site}/alerts/{key}")
    start = time.monotonic()
    client.sock.sendall(packets)
    if not client.ping(300):
        raise SystemExit("no PINGRESP within 300 s")
    pub_end = time.monotonic()
    if args.site and not marker.wait(300):
        raise SystemExit("the run's end alert did not arrive within 300 s")
    client.close()
    if args.qos and client.pubacks != len(messages):
        raise SystemExit(f"{client.pubacks} PUBACKs for {len(messages)} QoS 1 messages")
    print(json.dumps({"messages": len(messages), "pubacks": client.pubacks, "start": start,
                      "pub_end": pub_end, "marker_at": marker_at[0] if marker_at else None}),
          flush=True)


def role_pace(args: argparse.Namespace) -> None:
    """Publish the mix at `rate` messages/s (QoS 1) for `seconds`; print one JSON line."""
    mix = _mix(args.sensors, args.messages).messages
    client = RawClient(args.port, f"pace-{os.getpid()}")
    chunk = max(1, args.rate // 100)  # every 10 ms
    sent, start = 0, time.monotonic()
    print("READY", flush=True)
    while (now := time.monotonic()) - start < args.seconds:
        due = int((now - start) * args.rate)
        if due > sent:
            batch = [mix[(sent + i) % len(mix)] for i in range(min(due - sent, 10 * chunk))]
            client.sock.sendall(_packets(args.prefix, batch, 1, sent))
            sent += len(batch)
        time.sleep(0.01)
    client.ping(60)
    elapsed = time.monotonic() - start
    client.close()
    print(json.dumps({"sent": sent, "pubacks": client.pubacks, "rate": sent / elapsed}),
          flush=True)


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def role_baseline(args: argparse.Namespace) -> None:
    """gmqtt with its own on_message (or, `--link`, the daemon's `MqttLink`), discarding every
    message; print one JSON line."""
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv50

    expected = len(_run_messages(_mix(args.sensors, args.messages), "FF"))
    state = {"count": 0, "first": 0.0, "last": 0.0, "cpu0": 0.0, "cpu1": 0.0}
    done = asyncio.Event()

    def count() -> None:
        if state["count"] == 0:
            state["first"], state["cpu0"] = time.monotonic(), _cpu_s()
        state["count"] += 1
        if state["count"] >= expected:
            state["last"], state["cpu1"] = time.monotonic(), _cpu_s()
            done.set()

    async def through_link() -> None:
        from daemon.vocabulary.clock import SystemClock
        from daemon.vocabulary.readings import RawMessage
        from drivers.mqtt import MqttLink
        from drivers.mqtt_settings import MqttConfig

        link = MqttLink(MqttConfig.model_validate({
            "host": HOST, "port": args.port, "client_id": args.client_id,
            "subscriptions": [{"topic": f"{args.prefix}/#", "decoder": {"type": "zigbee2mqtt"}}],
        }), SystemClock())

        def discard(raw: RawMessage) -> None:
            count()

        link.on_message(discard)
        running = asyncio.create_task(link.run())
        await asyncio.wait_for(link.connected.wait(), 10)
        await asyncio.sleep(0.5)  # the SUBACK
        print("READY", flush=True)
        await asyncio.wait_for(done.wait(), 300)
        await asyncio.sleep(0.2)
        running.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await running

    async def main() -> None:
        client = gmqtt.Client(args.client_id, clean_session=False,
                              optimistic_acknowledgement=False,
                              session_expiry_interval=SESSION_EXPIRY_S)
        subscribed = asyncio.Event()

        async def on_message(client: Any, topic: str, payload: bytes, qos: int,
                             properties: Any) -> int:
            count()
            return 0

        client.on_subscribe = lambda *a: subscribed.set()
        client.on_message = on_message
        await client.connect(HOST, args.port, version=MQTTv50)
        client.subscribe(f"{args.prefix}/#", qos=1)
        await asyncio.wait_for(subscribed.wait(), 10)
        print("READY", flush=True)
        await asyncio.wait_for(done.wait(), 300)
        await asyncio.sleep(0.2)  # let the last PUBACKs out
        await client.disconnect()

    asyncio.run(through_link() if args.link else main())
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"received": state["count"], "first": state["first"], "last": state["last"],
                      "cpu_s": state["cpu1"] - state["cpu0"], "rss_peak_mib": rss_kib / 1024}),
          flush=True)


def role_probe(args: argparse.Namespace) -> None:
    """Raise alarms (an unknown tag leaving, a new key each time); time publish -> alert on
    MQTT. Prints READY, then one JSON line."""
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv50

    sent: list[tuple[str, str, float]] = []  # key, state, monotonic publish time
    seen: dict[tuple[str, str], list[float]] = {}

    async def main() -> None:
        client = gmqtt.Client(f"probe-{os.getpid()}")
        subscribed = asyncio.Event()

        def on_message(client: Any, topic: str, payload: bytes, qos: int,
                       properties: Any) -> int:
            now = time.monotonic()
            if not properties.get("retain") and "/portal_movement.FE" in topic:
                alert = json.loads(payload)
                seen.setdefault((alert["key"], alert["state"]), []).append(now)
            return 0

        client.on_subscribe = lambda *a: subscribed.set()
        client.on_message = on_message
        await client.connect(HOST, args.port, version=MQTTv50)
        client.subscribe(f"depotwatch/{args.site}/alerts/#", qos=1)
        await asyncio.wait_for(subscribed.wait(), 10)
        print("READY", flush=True)
        interval = 1.0 / args.alarms_per_s
        for i in range(args.alarms):
            epc = f"FE{time.time_ns():018X}{i:04X}"
            (inner, body), (outer, _) = unknown_tag_exit(epc)
            client.publish(f"{args.prefix}/{inner}", body, qos=1)
            await asyncio.sleep(interval / 2)
            sent.append((f"portal_movement.{epc}", "firing", time.monotonic()))
            client.publish(f"{args.prefix}/{outer}", body, qos=1)  # the passage: alarm
            await asyncio.sleep(interval / 2)
        await asyncio.sleep(2.0)
        await client.disconnect()

    asyncio.run(main())
    print(json.dumps({"sent": sent, "seen": {f"{k}|{s}": v for (k, s), v in seen.items()}}),
          flush=True)


# --------------------------------------------------------------------------------------------
# Receivers under test (parent side)
# --------------------------------------------------------------------------------------------


def _proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime (all threads)


def _proc_hwm_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


class DaemonTarget:
    """`depotwatch run` with one depot config (a variant), its own topic prefix and database."""

    def __init__(self, name: str, sensors: int, fsync: bool, broker_port: int,
                 influx: InfluxDB1, vm: VictoriaMetrics, workdir: Path,
                 webhook_url: str | None = None) -> None:
        self.name, self.sensors, self.fsync = name, sensors, fsync
        self.site, self.prefix, self.db = f"bench-{name}", f"b/{name}", f"bench_{name}"
        self.influx, self.vm = influx, vm
        self.dir = workdir / name
        self.dir.mkdir(parents=True)
        influx.create_database(self.db)
        config = depot_mix.daemon_config(
            depot_mix.layout(sensors), site=self.site, prefix=self.prefix,
            state_dir=str(self.dir / "state"), mqtt_port=broker_port, influx_url=influx.url,
            influx_db=self.db, vm_url=vm.url, fsync=fsync, webhook_url=webhook_url)
        self.config_path = self.dir / "depotwatch.yaml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.log_path = self.dir / "daemon.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "--log-level", "info", "run",
                 "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + 30
        while "MQTT connected" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: daemon did not connect:\n{self.log_tail()}")
            time.sleep(0.05)
        time.sleep(1.5)  # the tick's start-up grace

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> int | None:
        if self.proc is None:
            return None
        self.proc.terminate()
        try:
            return self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()

    def counts(self, since_ns: int) -> dict[str, tuple[int, int]]:
        """Points per measurement since `since_ns`: (InfluxDB 1.6.7, VictoriaMetrics)."""
        fields = {"door": "open", "climate": "temperature_c", "access": "person",
                  "portal": "epc"}
        q = ";".join(f'SELECT count("{f}") FROM "{m}" WHERE time >= {since_ns}'
                     for m, f in fields.items())
        results = self.influx.query(self.db, q)["results"]
        influx = [sum(v[1] for s in r.get("series", []) for v in s["values"]) for r in results]
        window = max(1, int((time.time_ns() - since_ns) / 1e9) + 1)
        vm = []
        for m, f in fields.items():
            query = f'sum(count_over_time({m}_{f}{{site="{self.site}"}}[{window}s]))'
            status, body = http_request(
                "GET", f"{self.vm.url}/api/v1/query?{urllib.parse.urlencode({'query': query})}")
            result = json.loads(body)["data"]["result"] if status == 200 else []
            vm.append(int(float(result[0]["value"][1])) if result else 0)
        return {m: (i, v) for m, i, v in zip(fields, influx, vm, strict=True)}


NODE_RED_FUNCTION = r"""
// topic: <prefix>/<kind>/<sensor>[/SENSOR]; one point per message, as the payload says.
const parts = msg.topic.split('/');
const kind = parts[2];
let fields;
if (kind === 'tele') {
    const probe = msg.payload.AM2301 || {};
    fields = {temperature: probe.Temperature, humidity: probe.Humidity};
} else {
    fields = Object.assign({}, msg.payload);
}
// A unique nanosecond timestamp per point: two reads of one antenna in the same millisecond
// would otherwise overwrite each other.
const seq = ((context.get('seq') || 0) + 1) % 1000000;
context.set('seq', seq);
fields.time = String(BigInt(Date.now()) * 1000000n + BigInt(seq));
msg.measurement = kind;
msg.payload = [fields, {sensor: parts[3]}];
return msg;
"""


class NodeRedTarget:
    """Node-RED running mqtt in -> json -> function -> influxdb out into InfluxDB 1.6.7."""

    def __init__(self, broker_port: int, influx: InfluxDB1, workdir: Path) -> None:
        self.prefix, self.db, self.influx = "b/nodered", "bench_nodered", influx
        self.dir = workdir / "nodered"
        self.dir.mkdir(parents=True)
        influx.create_database(self.db)
        self.port = free_port()
        # Node ids: Node-RED takes 16 hex digits (a word such as "json" clashes with a type).
        tab, broker, mqtt_in, parse, shape, db, out = (f"b{i:015x}" for i in range(7))
        flows = [
            {"id": tab, "type": "tab", "label": "bench"},
            {"id": broker, "type": "mqtt-broker", "name": "bench", "broker": HOST,
             "port": str(broker_port), "clientid": "nodered-bench", "autoConnect": True,
             "usetls": False, "protocolVersion": "4", "keepalive": "60",
             "cleansession": True},
            {"id": mqtt_in, "type": "mqtt in", "z": tab, "topic": f"{self.prefix}/#",
             "qos": "1", "datatype": "utf8", "broker": broker, "nl": False, "rap": True,
             "rh": 0, "inputs": 0, "wires": [[parse]]},
            {"id": parse, "type": "json", "z": tab, "property": "payload", "action": "obj",
             "pretty": False, "wires": [[shape]]},
            {"id": shape, "type": "function", "z": tab, "func": NODE_RED_FUNCTION,
             "outputs": 1, "wires": [[out]]},
            {"id": db, "type": "influxdb", "hostname": HOST, "port": str(influx.port),
             "protocol": "http", "database": self.db, "name": "bench", "usetls": False,
             "influxdbVersion": "1.x"},
            {"id": out, "type": "influxdb out", "z": tab, "influxdb": db, "measurement": "",
             "precision": "n", "retentionPolicy": "", "wires": []},
        ]
        (self.dir / "flows.json").write_text(json.dumps(flows))
        self.log_path = self.dir / "node-red.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> str | None:
        """None when Node-RED is installed here, else why not."""
        if shutil.which("node") is None:
            return "node is not installed"
        for module in ("node-red/red.js", "node-red-contrib-influxdb/influxdb.js"):
            if not (NODE_RED_DIR / "node_modules" / module).exists():
                return f"bench/.node-red/node_modules/{module} missing (npm install failed?)"
        return None

    def start(self) -> None:
        red = NODE_RED_DIR / "node_modules" / "node-red" / "red.js"
        env = {**os.environ, "NODE_PATH": str(NODE_RED_DIR / "node_modules")}
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                ["node", str(red), "--userDir", str(self.dir), "--port", str(self.port),
                 "flows.json"], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.dir, env=env)
        deadline = time.monotonic() + 60
        while "Connected to broker" not in (text := self.log_path.read_text(errors="replace")):
            if self.proc.poll() is not None or time.monotonic() > deadline or "Error" in text:
                raise RuntimeError(f"Node-RED did not start:\n{self.log_tail()}")
            time.sleep(0.1)
        time.sleep(0.5)

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    def count(self, since_ns: int) -> int:
        fields = {"zigbee2mqtt": ("contact", "temperature"), "tele": ("temperature",),
                  "badge": ("card",), "rfid": ("epc",)}
        q = ";".join(f'SELECT count("{f}") FROM "{m}" WHERE time >= {since_ns}'
                     for m, fs in fields.items() for f in fs)
        results = self.influx.query(self.db, q)["results"]
        return sum(v[1] for r in results for s in r.get("series", []) for v in s["values"])


# --------------------------------------------------------------------------------------------
# One run of each kind
# --------------------------------------------------------------------------------------------


def _child(role: str, extra: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(Path(__file__).resolve()), role, *extra],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, text=True)


def _publish(port: int, prefix: str, sensors: int, messages: int, qos: int,
             site: str | None = None) -> dict[str, Any]:
    extra = ["--port", str(port), "--prefix", prefix, "--sensors", str(sensors),
             "--messages", str(messages), "--qos", str(qos)]
    pub = _child("_publish", [*extra, *(["--site", site] if site else [])])
    out, _ = pub.communicate(timeout=400)
    result = _last_json(out)
    if pub.returncode != 0 or result is None:
        raise RuntimeError(f"publisher failed ({pub.returncode})")
    return result


def run_baseline(port: int, sensors: int, messages: int, qos: int, tag: str,
                 link: bool = False) -> dict[str, Any]:
    """Bare gmqtt (or the daemon's MQTT link) receiving and discarding one run's messages."""
    prefix = f"b/{'link' if link else 'base'}-{tag}"
    common = ["--port", str(port), "--prefix", prefix, "--sensors", str(sensors),
              "--messages", str(messages)]
    sub = _child("_baseline", [*common, "--client-id", f"{'link' if link else 'bare'}-{tag}",
                               *(["--link"] if link else [])])
    assert sub.stdout is not None
    if (_readline(sub.stdout, 30) or "").strip() != "READY":
        sub.kill()
        raise RuntimeError("baseline subscriber not ready")
    pub = _publish(port, prefix, sensors, messages, qos)
    out, _ = sub.communicate(timeout=300)
    res = _last_json(out)
    if sub.returncode != 0 or res is None:
        raise RuntimeError(f"baseline subscriber failed ({sub.returncode})")
    n = pub["messages"]
    elapsed = res["last"] - pub["start"]
    return {"messages": n, "received": res["received"], "elapsed_s": elapsed,
            "readings_per_s": n / elapsed, "cpu_us_per_reading": res["cpu_s"] / n * 1e6,
            "rss_peak_mib": res["rss_peak_mib"], "publisher_s": pub["pub_end"] - pub["start"]}


def run_daemon(target: DaemonTarget, port: int, messages: int, qos: int) -> dict[str, Any]:
    """One run into depotwatch: the time to take every message (the end alert), the time until
    InfluxDB holds every point, and a check that VictoriaMetrics does too.

    VictoriaMetrics is not the clock: right after a write its query results move up and down by
    a few hundred samples for about a second (recent data being merged), which would time its
    search path rather than depotwatch; its count must still come out exact.
    """
    mix = _mix(target.sensors, messages)
    expected = dict(mix.expected)
    expected["portal"] += 1  # the end marker
    since_ns = time.time_ns()
    cpu0 = _proc_cpu_s(target.pid)
    pub = _publish(port, target.prefix, target.sensors, messages, qos, target.site)
    deadline = time.monotonic() + DB_TIMEOUT_S
    db_at: float | None = None
    vm_at: float | None = None
    while db_at is None or vm_at is None:
        counts = target.counts(since_ns)
        now = time.monotonic()
        if db_at is None and all(counts[m][0] == want for m, want in expected.items()):
            db_at = now
            cpu = _proc_cpu_s(target.pid) - cpu0
        if vm_at is None and all(counts[m][1] == want for m, want in expected.items()):
            vm_at = now
        if now > deadline:
            raise RuntimeError(f"{target.name}: not all points arrived within {DB_TIMEOUT_S} s:"
                               f" expected {expected}, got {counts} (InfluxDB, VictoriaMetrics)")
        target.vm.force_flush()
        time.sleep(0.05)
    n = pub["messages"]
    ingest_s, db_s = pub["marker_at"] - pub["start"], db_at - pub["start"]
    return {"messages": n, "points": expected, "elapsed_s": ingest_s,
            "readings_per_s": n / ingest_s, "to_db_s": db_s, "to_db_readings_per_s": n / db_s,
            "vm_visible_s": vm_at - pub["start"],
            "cpu_us_per_reading": cpu / n * 1e6, "rss_peak_mib": _proc_hwm_mib(target.pid),
            "publisher_s": pub["pub_end"] - pub["start"]}


def run_nodered(target: NodeRedTarget, port: int, sensors: int, messages: int, qos: int,
                ) -> dict[str, Any]:
    """One run into Node-RED: until InfluxDB holds a point per message."""
    since_ns = time.time_ns()
    cpu0 = _proc_cpu_s(target.pid)
    pub = _publish(port, target.prefix, sensors, messages, qos)
    n = pub["messages"]
    # It writes one request per message and drops what InfluxDB refuses: wait until every point
    # is in, or until the count has not moved for 3 s (the rest is lost).
    got, db_at = 0, time.monotonic()
    while got < n and time.monotonic() - db_at < 3.0:
        time.sleep(0.1)
        now_got = target.count(since_ns)
        if now_got != got:
            got, db_at = now_got, time.monotonic()
    cpu = _proc_cpu_s(target.pid) - cpu0
    db_s = db_at - pub["start"]
    return {"messages": n, "stored": got, "lost": n - got, "elapsed_s": db_s,
            "readings_per_s": got / db_s, "to_db_readings_per_s": got / db_s,
            "cpu_us_per_reading": cpu / max(got, 1) * 1e6,
            "rss_peak_mib": _proc_hwm_mib(target.pid),
            "publisher_s": pub["pub_end"] - pub["start"]}


class WebhookReceiver:
    """Records when each alert change arrives by webhook (monotonic, key, state)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []
        arrivals = self.arrivals

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.monotonic()
                with contextlib.suppress(ValueError, KeyError):
                    alert = json.loads(body)
                    arrivals.append((now, alert["key"], alert["state"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _percentiles(values: list[float]) -> dict[str, float | int | None]:
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(v * 1000 for v in values)
    return {"n": len(ordered), "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max_ms": ordered[-1]}


def run_latency(target: DaemonTarget, port: int, webhook: WebhookReceiver, rate: int,
                seconds: float, alarms_per_s: float) -> dict[str, Any]:
    """Alarm latency under paced background load."""
    alarms = int(seconds * alarms_per_s * 0.8)
    pace = _child("_pace", ["--port", str(port), "--prefix", target.prefix, "--sensors",
                            str(target.sensors), "--messages", "20000", "--rate", str(rate),
                            "--seconds", str(seconds)])
    probe = _child("_probe", ["--port", str(port), "--prefix", target.prefix, "--site",
                              target.site, "--alarms", str(alarms), "--alarms-per-s",
                              str(alarms_per_s)])
    assert pace.stdout is not None and probe.stdout is not None
    for proc in (pace, probe):
        if (_readline(proc.stdout, 30) or "").strip() != "READY":  # type: ignore[arg-type]
            raise RuntimeError("latency publisher or probe not ready")
    webhook.arrivals.clear()
    cpu0, t0 = _proc_cpu_s(target.pid), time.monotonic()
    probe_out, _ = probe.communicate(timeout=seconds + 60)
    pace_out, _ = pace.communicate(timeout=seconds + 60)
    cpu = _proc_cpu_s(target.pid) - cpu0
    wall = time.monotonic() - t0
    res, bg = _last_json(probe_out), _last_json(pace_out)
    if res is None or bg is None:
        raise RuntimeError("latency probe failed")
    hooks: dict[tuple[str, str], list[float]] = {}
    for at, key, state in webhook.arrivals:
        hooks.setdefault((key, state), []).append(at)
    mqtt_lat: list[float] = []
    hook_lat: list[float] = []
    missing = {"mqtt": 0, "webhook": 0}
    used: dict[tuple[str, str, str], int] = {}
    seen = {tuple(k.split("|")): v for k, v in res["seen"].items()}
    for key, state, at in res["sent"]:
        for name, arrivals, out in (("mqtt", seen, mqtt_lat), ("webhook", hooks, hook_lat)):
            i = used.get((name, key, state), 0)
            times = arrivals.get((key, state), [])
            while i < len(times) and times[i] < at:
                i += 1
            if i < len(times):
                out.append(times[i] - at)
                used[(name, key, state)] = i + 1
            else:
                missing[name] += 1
    return {"background_rate": bg["rate"], "background_sent": bg["sent"],
            "background_pubacks": bg["pubacks"], "alarm_changes": len(res["sent"]),
            "daemon_cpu_busy": cpu / wall, "mqtt": _percentiles(mqtt_lat),
            "webhook": _percentiles(hook_lat), "missing": missing}


# --------------------------------------------------------------------------------------------
# Orchestration
# --------------------------------------------------------------------------------------------


def _summary(runs: list[dict[str, Any]], key: str = "readings_per_s") -> dict[str, Any]:
    ok = [r for r in runs if "error" not in r]
    rates = [r[key] for r in ok]
    out: dict[str, Any] = {"runs": len(runs), "ok": len(ok)}
    if rates:
        out.update(median=statistics.median(rates), min=min(rates), max=max(rates),
                   cpu_us_per_reading=statistics.median(r["cpu_us_per_reading"] for r in ok),
                   rss_peak_mib=max(r["rss_peak_mib"] for r in ok))
        if "to_db_readings_per_s" in ok[0]:
            to_db = [r["to_db_readings_per_s"] for r in ok]
            out.update(to_db_median=statistics.median(to_db), to_db_min=min(to_db),
                       to_db_max=max(to_db))
    out["errors"] = [r["error"] for r in runs if "error" in r]
    return out


def _settle(pid: int, max_s: float = 60.0) -> None:
    """Wait until a receiver is idle (under 10 % of a core for 0.5 s): Node-RED keeps working
    through its backlog of failed writes long after a run, and would slow the next one."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        cpu0 = _proc_cpu_s(pid)
        time.sleep(0.5)
        if _proc_cpu_s(pid) - cpu0 < 0.05:
            return


def _attempt(fn: Any, *args: Any) -> dict[str, Any]:
    try:
        result: dict[str, Any] = fn(*args)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return result


def _fmt(value: float | None, spec: str = ",.0f") -> str:
    return "-" if value is None else format(value, spec)


def markdown(doc: dict[str, Any]) -> str:
    """The short results table."""
    m = doc["machine"]
    s = doc["summary"]
    lines = [
        f"# depot benchmark, {doc['date'][:10]}",
        "",
        f"{m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, Mosquitto "
        f"{m['mosquitto']}, InfluxDB 1.6.7 + VictoriaMetrics, gmqtt {doc['versions']['gmqtt']},"
        f" Node-RED {doc['versions'].get('node-red') or '-'}. {doc['messages']:,} messages per"
        f" run ({doc['mix']}), {doc['runs']} runs each, median (min-max). Absolute rates move"
        " by 25 % between runs on this machine; the ratios within one run are the headline.",
        "",
        "readings/s: taken (depotwatch: spooled and acknowledged; bare gmqtt and the link:"
        " received);"
        " to DB: until InfluxDB 1.6.7 holds every point (VictoriaMetrics is checked to hold"
        " them all too, but its query results settle only about a second after a write, so it"
        " is not the clock); Node-RED: its figure in both columns. bare gmqtt is the chosen"
        " client as its users write it (an `on_message` callback), the baseline the targets"
        " name; depotwatch's MQTT link (drivers/mqtt.py: gmqtt with its PUBLISH packets read by"
        " `PublishReader`, PUBACKs one write per spool commit) discarding shows what the"
        " daemon's own work costs on top of its receive path.",
        "",
        "| receiver | sensors | QoS | spool fsync | readings/s | vs bare gmqtt | vs link"
        " | to DB readings/s | CPU µs/reading | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in s["rows"]:
        rng = (f"{_fmt(row.get('median'))} ({_fmt(row.get('min'))}-{_fmt(row.get('max'))})"
               if row.get("median") else "failed: " + "; ".join(row["errors"])[:200])
        to_db = (f"{_fmt(row.get('to_db_median'))} ({_fmt(row.get('to_db_min'))}-"
                 f"{_fmt(row.get('to_db_max'))})" if row.get("to_db_median") else "-")
        ratio = f"{row['vs_bare']:.2f}x" if row.get("vs_bare") else "-"
        vs_link = f"{row['vs_link']:.2f}x" if row.get("vs_link") else "-"
        lines.append(
            f"| {row['receiver']} | {row['sensors']} | {row['qos']} | {row.get('fsync', '-')} |"
            f" {rng} | {ratio} | {vs_link} | {to_db} |"
            f" {_fmt(row.get('cpu_us_per_reading'), '.1f')} |"
            f" {_fmt(row.get('rss_peak_mib'), '.1f')} |")
    lines += ["", "Ratios (medians of the same run):", ""]
    for name, value in s["ratios"].items():
        lines.append(f"- {name}: {_fmt(value, '.2f')}x" if value else f"- {name}: -")
    lat = s.get("latency")
    if lat:
        lines += ["", f"Alarm latency at {_fmt(lat['background_rate'])} readings/s background"
                  f" (daemon CPU {lat['daemon_cpu_busy'] * 100:.0f} %),"
                  f" {lat['alarm_changes']} alarms raised (an unknown tag leaving, a new key"
                  " each), from the probe's publish of the second antenna read:", "",
                  "| path | n | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
        for path in ("mqtt", "webhook"):
            p = lat[path]
            lines.append(f"| publish -> {path} | {p['n']} | {_fmt(p['p50_ms'], '.1f')} |"
                         f" {_fmt(p['p99_ms'], '.1f')} | {_fmt(p['max_ms'], '.1f')} |")
    peer_rows = [r for r in s["rows"] if r["receiver"].startswith("Node-RED")]
    if peer_rows:
        lost = sum(r.get("lost", 0) for r in doc["runs_raw"].get("node-red q1", []))
        lines += ["", "Node-RED's rate is until every point is in InfluxDB (its mqtt in node"
                  " acknowledges on receipt, before anything is stored; it writes one HTTP"
                  f" request per message). Points it lost over all runs: {lost}."]
    if s.get("peer_note"):
        lines += ["", f"Node-RED: {s['peer_note']}"]
    lines += ["", "Targets:", ""]
    for name, (ok, text) in s["targets"].items():
        lines.append(f"- {'met' if ok else 'NOT met'}: {name}: {text}")
    return "\n".join(lines) + "\n"


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _node_red_version() -> str | None:
    path = NODE_RED_DIR / "node_modules" / "node-red" / "package.json"
    with contextlib.suppress(OSError, ValueError):
        return str(json.loads(path.read_text())["version"])
    return None


def main_bench(args: argparse.Namespace) -> None:
    """Servers, receivers, rounds of runs, latency; JSON and markdown out."""
    started = time.monotonic()
    # SIGTERM (a timeout, Ctrl-C from make) still stops the servers and daemons in `finally`.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    qoses = [int(q) for q in args.qos.split(",")]
    big = args.big_sensors
    workdir = Path(tempfile.mkdtemp(prefix="depotwatch-bench-"))
    broker = _start_broker()
    influx, vm = InfluxDB1(workdir / "influxdb1"), VictoriaMetrics(workdir / "vm")
    influx.start()
    vm.start()
    webhook = WebhookReceiver()
    daemons = {
        "dw100": DaemonTarget("dw100", args.sensors, True, broker.port, influx, vm, workdir,
                              webhook.url),
        "dw2000": DaemonTarget(f"dw{big}", big, True, broker.port, influx, vm, workdir),
        "nofsync": DaemonTarget("nofsync", args.sensors, False, broker.port, influx, vm,
                                workdir),
    }
    peer_note = None if args.peer else "skipped (--no-peer)"
    peer_note = peer_note or NodeRedTarget.available()
    peer: NodeRedTarget | None = None
    runs: dict[str, list[dict[str, Any]]] = {}
    latency: dict[str, Any] | None = None

    def record(key: str, result: dict[str, Any], rnd: int) -> None:
        result["round"] = rnd
        runs.setdefault(key, []).append(result)
        text = result.get("error") or (
            f"{result['readings_per_s']:,.0f}/s"
            + (f", to DB {result['to_db_readings_per_s']:,.0f}/s"
               if "to_db_readings_per_s" in result else "")
            + f", {result['cpu_us_per_reading']:.1f} µs CPU, RSS {result['rss_peak_mib']:.0f} MiB")
        print(f"round {rnd + 1} {key:<22} {text}", file=sys.stderr, flush=True)

    try:
        for d in daemons.values():
            d.start()
        if peer_note is None:
            peer = NodeRedTarget(broker.port, influx, workdir)
            try:
                peer.start()
            except RuntimeError as exc:
                peer_note = f"could not run: {exc}"
                peer.stop()
                peer = None
        for rnd in range(args.runs):
            for qos in qoses:
                tag = f"r{rnd}q{qos}"
                record(f"bare q{qos}", _attempt(run_baseline, broker.port, args.sensors,
                                                args.messages, qos, tag), rnd)
                record(f"link q{qos}", _attempt(run_baseline, broker.port, args.sensors,
                                                args.messages, qos, tag, True), rnd)
                record(f"depotwatch {args.sensors} q{qos}",
                       _attempt(run_daemon, daemons["dw100"], broker.port, args.messages, qos),
                       rnd)
            record(f"depotwatch {big} q1",
                   _attempt(run_daemon, daemons["dw2000"], broker.port, args.messages, 1), rnd)
            record(f"depotwatch {args.sensors} q1 nofsync",
                   _attempt(run_daemon, daemons["nofsync"], broker.port, args.messages, 1), rnd)
            for qos in args.peer_qos if peer is not None else []:
                record(f"node-red q{qos}", _attempt(run_nodered, peer, broker.port,
                                                    args.sensors, args.peer_messages, qos), rnd)
                _settle(peer.pid)
        if args.latency_s > 0:
            latency = _attempt(run_latency, daemons["dw100"], broker.port, webhook,
                               args.latency_rate, args.latency_s, args.alarms_per_s)
            print(f"latency: {json.dumps(latency)}", file=sys.stderr, flush=True)
    finally:
        if peer is not None:
            peer.stop()
        codes = {name: d.stop() for name, d in daemons.items()}
        webhook.close()
        vm.close()
        influx.close()
        broker.close()
    for name, code in codes.items():
        if code not in (0, None):
            print(f"warning: daemon {name} exited {code}:\n{daemons[name].log_tail()}",
                  file=sys.stderr)

    rows: list[dict[str, Any]] = []
    bare = {q: _summary(runs.get(f"bare q{q}", [])) for q in qoses}
    for qos in qoses:
        rows.append({"receiver": "bare gmqtt (discard)", "sensors": args.sensors, "qos": qos,
                     **bare[qos]})
        rows.append({"receiver": "depotwatch's MQTT link (discard)", "sensors": args.sensors,
                     "qos": qos, **_summary(runs.get(f"link q{qos}", []))})
        dw = _summary(runs.get(f"depotwatch {args.sensors} q{qos}", []))
        rows.append({"receiver": "depotwatch", "sensors": args.sensors, "qos": qos,
                     "fsync": "on", **dw})
    for key, sensors, fsync in ((f"depotwatch {big} q1", big, "on"),
                                (f"depotwatch {args.sensors} q1 nofsync", args.sensors, "off")):
        rows.append({"receiver": "depotwatch", "sensors": sensors, "qos": 1, "fsync": fsync,
                     **_summary(runs.get(key, []))})
    for qos in args.peer_qos:
        if f"node-red q{qos}" in runs:
            rows.append({"receiver": "Node-RED mqtt->json->influxdb out", "sensors": args.sensors,
                         "qos": qos, **_summary(runs[f"node-red q{qos}"])})
    for row in rows:
        base = bare.get(row["qos"], {}).get("median")
        if row.get("median") and base and not row["receiver"].startswith("bare"):
            row["vs_bare"] = row["median"] / base
        link = _summary(runs.get(f"link q{row['qos']}", [])).get("median")
        if row.get("median") and link and row["receiver"] == "depotwatch":
            row["vs_link"] = row["median"] / link

    def med(key: str, field: str = "median") -> float | None:
        value: float | None = _summary(runs.get(key, [])).get(field)
        return value

    dw1, dw1_db = med(f"depotwatch {args.sensors} q1"), med(f"depotwatch {args.sensors} q1",
                                                            "to_db_median")
    nr1 = med("node-red q1")
    ratios = {
        "depotwatch / bare gmqtt, QoS 1": dw1 / bare[1]["median"]
        if dw1 and bare.get(1, {}).get("median") else None,
        "depotwatch / its own MQTT link discarding, QoS 1": dw1 / med("link q1")
        if dw1 and med("link q1") else None,
        "depotwatch / bare gmqtt, QoS 0": med(f"depotwatch {args.sensors} q0")
        / bare[0]["median"] if med(f"depotwatch {args.sensors} q0")
        and bare.get(0, {}).get("median") else None,
        "depotwatch (to DB) / Node-RED (to DB), QoS 1": dw1_db / nr1 if dw1_db and nr1 else None,
        f"depotwatch {big} / {args.sensors} sensors, QoS 1":
            med(f"depotwatch {big} q1") / dw1 if dw1 and med(f"depotwatch {big} q1") else None,
        "depotwatch fsync off / on, QoS 1": med(f"depotwatch {args.sensors} q1 nofsync") / dw1
        if dw1 and med(f"depotwatch {args.sensors} q1 nofsync") else None,
    }
    rss_big = _summary(runs.get(f"depotwatch {big} q1", [])).get("rss_peak_mib")
    p99 = latency["mqtt"]["p99_ms"] if latency and "mqtt" in latency else None
    ratio1 = ratios["depotwatch / bare gmqtt, QoS 1"]
    targets = {
        ">= 15,000 readings/s, QoS 1, durable spool: taken (spooled, acknowledged)":
            (bool(dw1 and dw1 >= 15000), f"{_fmt(dw1)} readings/s (median)"),
        ">= 15,000 readings/s, QoS 1, durable spool: into InfluxDB (VictoriaMetrics checked)":
            (bool(dw1_db and dw1_db >= 15000), f"{_fmt(dw1_db)} readings/s (median)"),
        ">= 0.7x the bare client, QoS 1": (bool(ratio1 and ratio1 >= 0.7),
                                            f"{_fmt(ratio1, '.2f')}x"),
        "alarm p99 <= 50 ms at 5,000 readings/s": (bool(p99 is not None and p99 <= 50),
                                                   f"{_fmt(p99, '.1f')} ms (MQTT)"),
        f"peak RSS <= 120 MB with {big} sensors": (bool(rss_big and rss_big * 1.048576 <= 120),
                                                   f"{_fmt(rss_big, '.1f')} MiB"),
        "faster than Node-RED (to DB, QoS 1)": (
            bool(dw1_db and nr1 and dw1_db > nr1),
            f"{_fmt(dw1_db)} vs {_fmt(nr1)} readings/s" if nr1 else f"no peer ({peer_note})"),
    }
    mix = _mix(args.sensors, args.messages)
    doc = {
        "benchmark": "depot",
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "messages": args.messages,
        "runs": args.runs,
        "mix": ", ".join(f"{n:,} {k}" for k, n in sorted(mix.kinds.items())),
        "points_per_run": dict(mix.expected),
        "machine": {"cpus": os.cpu_count(), "cpu_model": _cpu_model(),
                    "python": platform.python_version(), "platform": platform.platform(),
                    "mosquitto": _mosquitto_version()},
        "versions": {"gmqtt": _version("gmqtt"), "node-red": _node_red_version(),
                     "influxdb-client": _version("influxdb-client"),
                     "aiohttp": _version("aiohttp"), "orjson": _version("orjson")},
        "total_s": time.monotonic() - started,
        "summary": {"rows": rows, "ratios": ratios, "latency": latency, "targets": targets,
                    "peer_note": peer_note},
        "runs_raw": runs,
    }
    out_dir = BENCH_DIR / "results"
    out_dir.mkdir(exist_ok=True)
    stem = Path(args.output) if args.output else out_dir / f"depot-{dt.date.today()}"
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(doc))
    print()
    print(markdown(doc))
    print(f"wrote {stem.with_suffix('.json')} and .md ({doc['total_s']:.0f} s)")
    if args.keep:
        print(f"kept {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    """CLI: the benchmark, or (internally) one publisher, subscriber or probe process."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0].startswith("_"):
        p = argparse.ArgumentParser(prog=f"depot.py {argv[0]}")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--prefix", default="")
        p.add_argument("--sensors", type=int, default=100)
        p.add_argument("--messages", type=int, default=30000)
        p.add_argument("--qos", type=int, default=1)
        p.add_argument("--site", default="")
        p.add_argument("--client-id", default="bare")
        p.add_argument("--link", action="store_true", help="_baseline: the daemon's MqttLink")
        p.add_argument("--rate", type=int, default=5000)
        p.add_argument("--seconds", type=float, default=20.0)
        p.add_argument("--alarms", type=int, default=200)
        p.add_argument("--alarms-per-s", type=float, default=10.0)
        roles = {"_publish": role_publish, "_pace": role_pace, "_baseline": role_baseline,
                 "_probe": role_probe}
        roles[argv[0]](p.parse_args(argv[1:]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5, help="rounds; median/min/max reported (5)")
    p.add_argument("--messages", type=int, default=30000, help="messages per run (30000)")
    p.add_argument("--sensors", type=int, default=100, help="sensors of the main depot (100)")
    p.add_argument("--big-sensors", type=int, default=2000, help="the large depot (2000)")
    p.add_argument("--qos", default="0,1", help="QoS levels for bare and depotwatch (0,1)")
    p.add_argument("--peer-qos", default="1", help="QoS levels for Node-RED (1)",
                   type=lambda s: [int(q) for q in s.split(",") if q])
    p.add_argument("--peer-messages", type=int, default=30000,
                   help="messages per Node-RED run (30000, as for the others)")
    p.add_argument("--no-peer", dest="peer", action="store_false", help="skip Node-RED")
    p.add_argument("--latency-s", type=float, default=30.0, help="latency phase length (30)")
    p.add_argument("--latency-rate", type=int, default=5000, help="background readings/s")
    p.add_argument("--alarms-per-s", type=float, default=10.0, help="alarm changes per s")
    p.add_argument("--keep", action="store_true", help="keep the servers' and daemons' dirs")
    p.add_argument("--output", help="path stem for .json and .md (results/depot-<date>)")
    main_bench(p.parse_args(argv))


if __name__ == "__main__":
    main()
