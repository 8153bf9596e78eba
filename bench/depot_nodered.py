"""The depot bench's peer: Node-RED 4 with mqtt in -> json -> function -> influxdb out, from
bench/.node-red when `make bench` could install it there."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

from harness import BENCH_DIR, HOST, LoggedProcess
from servers import InfluxDB1, free_port

NODE_RED_DIR = BENCH_DIR / ".node-red"

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


def _flows(prefix: str, broker_port: int, influx: InfluxDB1, db: str) -> list[dict[str, object]]:
    # Node ids: Node-RED takes 16 hex digits (a word such as "json" clashes with a type).
    tab, broker, mqtt_in, parse, shape, db_node, out = (f"b{i:015x}" for i in range(7))
    return [
        {"id": tab, "type": "tab", "label": "bench"},
        {"id": broker, "type": "mqtt-broker", "name": "bench", "broker": HOST,
         "port": str(broker_port), "clientid": "nodered-bench", "autoConnect": True,
         "usetls": False, "protocolVersion": "4", "keepalive": "60",
         "cleansession": True},
        {"id": mqtt_in, "type": "mqtt in", "z": tab, "topic": f"{prefix}/#",
         "qos": "1", "datatype": "utf8", "broker": broker, "nl": False, "rap": True,
         "rh": 0, "inputs": 0, "wires": [[parse]]},
        {"id": parse, "type": "json", "z": tab, "property": "payload", "action": "obj",
         "pretty": False, "wires": [[shape]]},
        {"id": shape, "type": "function", "z": tab, "func": NODE_RED_FUNCTION,
         "outputs": 1, "wires": [[out]]},
        {"id": db_node, "type": "influxdb", "hostname": HOST, "port": str(influx.port),
         "protocol": "http", "database": db, "name": "bench", "usetls": False,
         "influxdbVersion": "1.x"},
        {"id": out, "type": "influxdb out", "z": tab, "influxdb": db_node, "measurement": "",
         "precision": "n", "retentionPolicy": "", "wires": []},
    ]


class NodeRedTarget(LoggedProcess):
    """Node-RED running mqtt in -> json -> function -> influxdb out into InfluxDB 1.6.7."""

    def __init__(self, broker_port: int, influx: InfluxDB1, workdir: Path) -> None:
        self.prefix, self.db, self.influx = "b/nodered", "bench_nodered", influx
        self.dir = workdir / "nodered"
        self.dir.mkdir(parents=True)
        influx.create_database(self.db)
        self.port = free_port()
        flows = _flows(self.prefix, broker_port, influx, self.db)
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
        """Start Node-RED and wait until its mqtt in node is connected."""
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

    def count(self, since_ns: int) -> int:
        """Points Node-RED has stored since `since_ns`, all measurements."""
        fields = {"zigbee2mqtt": ("contact", "temperature"), "tele": ("temperature",),
                  "badge": ("card",), "rfid": ("epc",)}
        q = ";".join(f'SELECT count("{f}") FROM "{m}" WHERE time >= {since_ns}'
                     for m, fs in fields.items() for f in fs)
        results = self.influx.query(self.db, q)["results"]
        return sum(v[1] for r in results for s in r.get("series", []) for v in s["values"])


def node_red_version() -> str | None:
    """The installed Node-RED's version, or None."""
    path = NODE_RED_DIR / "node_modules" / "node-red" / "package.json"
    with contextlib.suppress(OSError, ValueError):
        return str(json.loads(path.read_text())["version"])
    return None
