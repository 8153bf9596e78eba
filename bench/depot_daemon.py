"""The daemon under test: `depotwatch run` as a child process with one depot config (a variant),
its own topic prefix and database, and the points it has written."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.parse
from pathlib import Path

import depot_mix
import yaml
from harness import LoggedProcess
from servers import InfluxDB1, VictoriaMetrics, http_request


class DaemonTarget(LoggedProcess):
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
        # What runs `depotwatch`: `python -m daemon.cli`, or a launcher taking its arguments.
        self.launcher = [sys.executable, "-m", "daemon.cli"]

    def start(self) -> None:
        """Start the daemon and wait until it is connected and past its start-up grace."""
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [*self.launcher, "--log-level", "info", "run",
                 "-c", str(self.config_path)], stdout=log, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, cwd=self.dir)
        deadline = time.monotonic() + 30
        while "MQTT connected" not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{self.name}: daemon did not connect:\n{self.log_tail()}")
            time.sleep(0.05)
        time.sleep(1.5)  # the tick's start-up grace

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
