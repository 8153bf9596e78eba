"""A real Daemon on its own event loop thread, so sync clients (Playwright, urllib) can call it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from mqtt_probe import MqttProbe

from daemon.config.schema import Config
from daemon.runner import Daemon
from daemon.vocabulary.clock import Clock

T = TypeVar("T")
TOKEN = "console-officer-token-0123456789"
OFFICER = "Sgt. Novak"
DOOR_KEY = "door_armed.SH1-D1"


def depot(state_dir: Path, mqtt_port: int) -> dict[str, Any]:
    """One always-armed store with one Zigbee door, one climate sensor, the API on port 0."""
    return {
        "site": {"id": "console-depot"},
        "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "name": "Store 1", "armed": {"mode": "always"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "climate_sensors": [{"id": "clim1", "storehouse": "SH1"}],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port,
                 "client_id": f"depotwatch-{uuid.uuid4().hex[:8]}",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "file_output": {"path": str(state_dir / "points.lp")},
        "rules": [{"type": "door_armed"}],
        "tick_interval_s": 0.1,
        "api": {"listen_port": 0, "officers": [
            {"name": OFFICER, "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]},
    }


@dataclass
class Running:
    """A daemon serving on `url`, its loop, and an MQTT probe on that loop."""

    daemon: Daemon
    loop: asyncio.AbstractEventLoop
    url: str
    probe: MqttProbe | None

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float = 10.0) -> T:
        """Run a coroutine on the daemon's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout_s)

    def publish(self, topic: str, body: dict[str, Any] | bytes) -> None:
        """Publish as a device would (QoS 1, through the real broker)."""
        assert self.probe is not None
        probe = self.probe

        async def send() -> None:
            probe.publish(topic, body)

        self.call(send())

    def get(self, path: str, token: str | None = None) -> tuple[int, bytes]:
        """A plain GET without cookies (what a load balancer or Prometheus sends), with the
        officer `token` as a bearer token if given."""
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        request = urllib.request.Request(
            self.url + path, headers={"Authorization": f"Bearer {token}"} if token else {})
        try:
            with opener.open(request, timeout=10) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                return exc.code, exc.read()


def eventually(check: Any, timeout_s: float = 10.0) -> None:
    """Wait until check() is true."""
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@contextlib.contextmanager
def running(config: dict[str, Any], *, connected: bool = True, tick_interval_s: float = 0.1,
            clock: Clock | None = None) -> Iterator[Running]:
    """Start the daemon (and a probe when `connected`); stop it and its loop afterwards."""
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="daemon-loop", daemon=True)
    thread.start()

    async def start() -> tuple[Daemon, asyncio.Event, asyncio.Task[None]]:
        daemon = Daemon(Config.model_validate(config), tick_interval_s=tick_interval_s,
                        clock=clock)
        stop = asyncio.Event()
        return daemon, stop, asyncio.create_task(daemon.run(stop))

    daemon, stop, task = asyncio.run_coroutine_threadsafe(start(), loop).result(10)
    probe: MqttProbe | None = None
    try:
        eventually(lambda: daemon.api_url is not None)
        if connected:
            eventually(daemon.link.connected.is_set)
            probe = asyncio.run_coroutine_threadsafe(
                MqttProbe(config["mqtt"]["port"]).__aenter__(), loop).result(10)
        assert daemon.api_url is not None
        yield Running(daemon, loop, daemon.api_url, probe)
    finally:
        async def finish() -> None:
            if probe is not None:
                await probe.__aexit__(None, None, None)
            stop.set()
            await asyncio.wait_for(task, 15)

        try:
            asyncio.run_coroutine_threadsafe(finish(), loop).result(20)
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(10)
            loop.close()
