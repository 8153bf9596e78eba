"""A notification pending when the daemon is killed is delivered after the restart (issue 6)."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path

from aiohttp import web
from daemon_process import DaemonProcess
from mqtt_probe import MqttProbe
from servers import Mosquitto, free_port

from daemon.web.doorman import ListeningSite


def test_pending_webhook_survives_sigkill(mosquitto: Mosquitto, tmp_path: Path) -> None:
    port = free_port()  # nothing listens there yet: the webhook delivery keeps failing
    config = {
        "site": {"id": "restart-depot"},
        "state_dir": str(tmp_path / "state"),
        "storehouses": [{"id": "SH1", "armed": {"mode": "always"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "mqtt": {"port": mosquitto.port, "client_id": "restart-delivery",
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "notifiers": [{"type": "webhook", "name": "duty-hook",
                       "url": f"http://127.0.0.1:{port}/hook",
                       "secret": "restart-test-secret-0123", "timeout_s": 1}],
        "api": {"listen_port": 0},
        "rules": [{"type": "sensor_silent", "enabled": False}],
        "tick_interval_s": 0.2,
    }
    state = tmp_path / "state" / "engine-state.json"
    received: list[dict[str, object]] = []
    arrived = asyncio.Event()

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        arrived.set()
        return web.Response(text="ok")

    async def scenario() -> None:
        daemon = DaemonProcess(tmp_path, config)
        daemon.start()
        await asyncio.to_thread(daemon.wait_log, "MQTT connected")
        async with MqttProbe(mosquitto.port) as probe:
            probe.publish("zigbee2mqtt/door1", {"contact": False})
            # The alarm is raised and its webhook notice waits in the (saved) outbox.
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                saved = json.loads(state.read_text()) if state.exists() else {}
                if saved.get("outboxes", {}).get("duty-hook"):
                    break
                await asyncio.sleep(0.1)
            else:
                raise AssertionError("the pending notice never reached the state file")
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGKILL)
        daemon.proc.wait()
        app = web.Application()
        app.router.add_post("/hook", hook)
        runner = web.AppRunner(app)
        await runner.setup()
        await ListeningSite(runner, "127.0.0.1", port).start()
        try:
            daemon.start()
            try:
                await asyncio.wait_for(arrived.wait(), 20)
            finally:
                assert daemon.stop() == 0, daemon.log()
        finally:
            await runner.cleanup()

    asyncio.run(scenario())
    assert received, "the notice pending at the SIGKILL was never delivered"
    assert received[0]["key"] == "door_armed.SH1-D1"
    assert received[0]["state"] == "firing"
