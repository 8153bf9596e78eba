"""The fault matrix of the issue "Never blind", shared by its test and bench/faults.py.

Real parts throughout: our own Mosquitto (restarted in one case) and InfluxDB (stopped in
one case), the daemon in-process so its clock can be stepped (`running(..., clock=...)`), and
a real webhook notifier posting to an aiohttp receiver. One daemon goes through the cases one
after the other, each with doors of its own (a critical alarm stays open until checked); the
full-disk case has its own daemon whose state dir is on a 4 MiB tmpfs (`mount -t tmpfs`,
root; noted as not run where it cannot be mounted).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gmqtt
from aiohttp import web
from inprocess_daemon import Running, depot, eventually, running
from servers import InfluxDB1, Mosquitto, free_port

from daemon.vocabulary.clock import SteadyClock
from daemon.web.doorman import ListeningSite

LIMIT_S = 10.0
HOUR_NS = 3600 * 10**9
DOORS = 20
SECRET = "fault-matrix-secret-0123456789"


class Sink:
    """The notifier's far end: when each alert key first arrived firing."""

    def __init__(self) -> None:
        self.port = free_port()
        self.firing: dict[str, float] = {}

    async def _take(self, request: web.Request) -> web.Response:
        body = json.loads(await request.read())
        if body.get("state") == "firing":
            self.firing.setdefault(body["key"], time.monotonic())
        return web.Response(text="ok")

    async def start(self) -> web.AppRunner:
        app = web.Application()
        app.router.add_post("/hook", self._take)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await ListeningSite(runner, "127.0.0.1", self.port).start()
        return runner


def matrix_config(state_dir: Path, broker: Mosquitto, influx: InfluxDB1, sink: Sink,
            **spool: Any) -> dict[str, Any]:
    config = depot(state_dir, broker.port)
    config["site"]["id"] = f"matrix-{uuid.uuid4().hex[:8]}"
    config["doors"] = [{"id": f"SH1-D{i}", "storehouse": "SH1", "contact_sensor": f"door{i}"}
                       for i in range(1, DOORS + 1)]
    config["portals"] = [{"id": "P1", "storehouse": "SH1", "inner_antenna": "p1-in",
                          "outer_antenna": "p1-out"}]
    config["mqtt"]["subscriptions"].append(
        {"topic": "rfid/{sensor}", "decoder": {"type": "json_fields", "fields": {"epc": "epc"}}})
    config["rules"] = [{"type": "door_armed"}, {"type": "gateway_fault"},
                       {"type": "portal_movement"}]
    config["influxdb"] = [{"api": "v1", "url": influx.url, "database": "matrix"}]
    config["spool"] = spool
    config["notifiers"] = [{"type": "webhook", "url": f"http://127.0.0.1:{sink.port}/hook",
                            "secret": SECRET, "timeout_s": 5}]
    del config["file_output"]
    return config


def _publish(broker: Mosquitto, topic: str, body: dict[str, Any], qos: int) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", str(qos),
                    "-t", topic, "-m", json.dumps(body)], check=True, timeout=10)


class Matrix:
    """Opens the next unused door at QoS 0 and 1 and times each alarm at the sink."""

    def __init__(self, broker: Mosquitto, sink: Sink) -> None:
        self.broker, self.sink = broker, sink
        self.door = 0
        self.took: dict[str, float] = {}

    def open_doors(self, case: str, qos_levels: tuple[int, ...] = (0, 1)) -> None:
        for qos in qos_levels:
            self.door += 1
            key = f"door_armed.SH1-D{self.door}"
            sent = time.monotonic()
            _publish(self.broker, f"zigbee2mqtt/door{self.door}", {"contact": False}, qos)
            with contextlib.suppress(AssertionError):
                eventually(lambda k=key: k in self.sink.firing, timeout_s=LIMIT_S + 5)  # type: ignore[misc]
            arrived = self.sink.firing.get(key)
            self.took[f"{case} qos{qos}"] = (arrived - sent) if arrived else float("inf")


@contextlib.contextmanager
def _daemon(config: dict[str, Any], sink: Sink,
            clock: SteadyClock | None = None) -> Iterator[Running]:
    with running(config, clock=clock) as r:
        hook = r.call(sink.start())
        try:
            for i in range(1, DOORS + 1):  # every door known closed
                _publish_via(r, f"zigbee2mqtt/door{i}", {"contact": True})
            time.sleep(0.5)
            yield r
        finally:
            r.call(hook.cleanup())


def _publish_via(r: Running, topic: str, body: dict[str, Any]) -> None:
    """Through the probe at QoS 1, waiting while the broker's in-flight window is full."""
    for _ in range(200):
        try:
            r.publish(topic, body)
            return
        except OverflowError:
            time.sleep(0.02)
    raise AssertionError(f"the broker took no publish to {topic} for 4 s")


async def _flood(port: int, topics: int, seconds: float) -> None:
    """`topics` new topics, evenly over `seconds`, at QoS 0 (a misconfigured bridge)."""
    client = gmqtt.Client(f"flood-{uuid.uuid4().hex[:8]}")
    await client.connect("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    started = loop.time()
    for i in range(topics):
        client.publish(f"zigbee2mqtt/new-{uuid.uuid4().hex[:6]}-{i}", b'{"contact":false}', qos=0)
        if i % 50 == 49:
            await asyncio.sleep(max(0.0, started + seconds * (i + 1) / topics - loop.time()))
    await client.disconnect()


def _fill_spool(r: Running, broker: Mosquitto) -> None:
    """Climate readings at QoS 1 until the spool sheds (at its quota, InfluxDB down)."""
    async def flood() -> None:
        client = gmqtt.Client(f"climate-{uuid.uuid4().hex[:8]}")
        await client.connect("127.0.0.1", broker.port)
        for i in range(40_000):
            if r.daemon.spool.shed_points > 0:
                break
            body = json.dumps({"temperature": 18.0 + i % 7 / 10, "humidity": 50.0,
                               "battery": 90, "linkquality": i}).encode()
            while True:
                try:
                    client.publish(f"zigbee2mqtt/clim{i % 4 + 1}", body, qos=1)
                    break
                except OverflowError:  # the broker's in-flight window is full: wait a bit
                    await asyncio.sleep(0.005)
            if i % 200 == 199:
                await asyncio.sleep(0.01)
        await client.disconnect()

    r.call(flood(), timeout_s=60)
    eventually(lambda: r.daemon.spool.shed_points > 0, timeout_s=10)


def disk_full_case(matrix: Matrix, broker: Mosquitto, influx: InfluxDB1, sink: Sink,
                    tmp_path: Path) -> None:
    """A daemon whose state dir is on a 4 MiB tmpfs that a filler file then takes whole."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode != 0:
        matrix.took["disk full (not run: no tmpfs)"] = 0.0
        return
    try:
        config = matrix_config(disk / "state", broker, influx, sink)
        with _daemon(config, sink):
            _fill(disk)
            # A new daemon and site: its own doors again.
            matrix.door = 0
            sink.firing.clear()
            matrix.open_doors("disk full")
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _fill(directory: Path) -> None:
    # Outermost: closing the file may report the full disk too.
    with contextlib.suppress(OSError), (directory / "filler").open("wb") as out:
        while True:
            out.write(b"\0" * 65536)
            out.flush()
            os.fsync(out.fileno())


def run_matrix(broker: Mosquitto, influx: InfluxDB1, tmp_path: Path) -> dict[str, float]:
    """Every fault case once; seconds from each door's opening to its alarm at the sink."""
    sink = Sink()
    step = [0]
    clock = SteadyClock(wall=lambda: time.time_ns() + step[0])
    matrix = Matrix(broker, sink)
    # The spool's smallest quota (1 MiB): a few thousand climate readings fill it.
    config = matrix_config(tmp_path / "state", broker, influx, sink, max_bytes=1 << 20)
    config["climate_sensors"] = [{"id": f"clim{i}", "storehouse": "SH1"} for i in range(1, 5)]
    with _daemon(config, sink, clock) as r:
        matrix.open_doors("no fault")
        for epc in ("30#+/\x00x", "E2801160+#", "30#+/" * 400):  # poison identifiers
            for antenna in ("rfid/p1-in", "rfid/p1-out"):
                _publish_via(r, antenna, {"epc": epc})
        matrix.open_doors("poison id")
        for offset in (HOUR_NS, -HOUR_NS):
            step[0] = offset
            time.sleep(0.3)  # a few rule ticks see the step
            matrix.open_doors(f"clock {offset // HOUR_NS:+d} h")
        assert "clock_stepped.gateway" in sink.firing
        # 50,000 new topics in a minute, scaled to 5,000 in 6 s (same rate): the full count
        # would take the file past its time budget on 2 shared cores.
        flood = asyncio.run_coroutine_threadsafe(_flood(broker.port, 5000, 6.0), r.loop)
        time.sleep(2.0)
        matrix.open_doors("50k topics/min")
        flood.result(30)
        broker.restart()
        # QoS 1 at once: the broker keeps it for the daemon's session until it is back. A
        # QoS 0 message is never queued for a subscriber that is away (MQTT), so that door
        # opens once the daemon has reconnected.
        matrix.open_doors("broker restart", (1,))
        eventually(r.daemon.link.connected.is_set)
        matrix.open_doors("broker restart", (0,))
        # The probe reconnects after gmqtt's 6 s: its pending retry must not outlive the loop.
        eventually(lambda: r.probe is not None and r.probe.connected, timeout_s=15)
        influx.stop()
        _fill_spool(r, broker)
        matrix.open_doors("InfluxDB down, spool at quota")
        influx.start()
    disk_full_case(matrix, broker, influx, sink, tmp_path)
    return matrix.took
