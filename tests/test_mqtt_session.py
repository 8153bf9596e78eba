"""A lost MQTT session or a connection that keeps dropping is a fault alert (issue 25)."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import uuid
from pathlib import Path
from typing import Any

from daemon_process import DaemonProcess
from mqtt_probe import MqttProbe
from servers import Mosquitto

from drivers.mqtt_session import SessionWatch

S = 1_000_000_000
SITE = "session-depot"


def test_a_first_connect_may_find_no_session_a_reconnect_may_not() -> None:
    watch = SessionWatch("127.0.0.1:1883", "depotwatch")
    assert watch.connected(False) is None  # a first start has no session yet
    assert watch.connected(True) is None
    fault, summary = watch.connected(False) or ("", "")
    assert fault == "mqtt_session_reset"
    assert "session present: false" in summary and "'depotwatch'" in summary


def test_three_drops_within_a_minute_are_a_fault_two_or_slower_ones_are_not() -> None:
    watch = SessionWatch("127.0.0.1:1883", "depotwatch")
    assert watch.dropped(0) is None
    assert watch.dropped(30 * S) is None
    assert watch.dropped(61 * S) is None  # three, but over 61 s
    found = watch.dropped(62 * S)  # 30 s, 61 s, 62 s: three within a minute
    assert found is not None and found[0] == "mqtt_flapping"
    assert "lost 3 times within 60 s" in found[1]


def _config(mosquitto: Mosquitto, state_dir: Path, client_id: str) -> dict[str, Any]:
    return {
        "site": {"id": SITE}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": client_id,
                 "reconnect_min_s": 0.2, "reconnect_max_s": 0.5,
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "tick_interval_s": 0.2,
        "api": {"listen_port": 0},  # 8470 may be another run's daemon
    }


def test_a_client_taking_the_daemons_client_id_is_a_fault_alert(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    # The broker the daemon is given here does not tie client ids to users (the shipped one
    # does: test_mosquitto_deploy.py): a thief gets in, and the daemon says so.
    client_id = f"depotwatch-session-{uuid.uuid4().hex[:6]}"
    daemon = DaemonProcess(tmp_path, _config(mosquitto, tmp_path / "state", client_id))
    daemon.start()
    sub = shutil.which("mosquitto_sub") or "/usr/bin/mosquitto_sub"

    async def scenario() -> list[dict[str, Any]]:
        async with MqttProbe(mosquitto.port) as probe:
            await probe.subscribe(f"depotwatch/{SITE}/alerts/#")
            for _ in range(3):  # clean-session logins with the daemon's client id
                await asyncio.to_thread(subprocess.run, [
                    sub, "-h", "127.0.0.1", "-p", str(mosquitto.port), "-i", client_id,
                    "-t", "x", "-W", "1"], capture_output=True, timeout=10)
                await asyncio.sleep(0.8)  # the daemon reconnects (0.2-0.5 s backoff)
            await probe.wait_alert("mqtt_session_reset.mqtt", "firing")
            await probe.wait_alert("mqtt_flapping.mqtt", "firing")
            return probe.alerts()

    try:
        daemon.wait_log("MQTT connected")
        alerts = asyncio.run(scenario())
    finally:
        assert daemon.stop() == 0, daemon.log()
    reset = next(a for a in alerts if a["key"] == "mqtt_session_reset.mqtt")
    assert client_id in reset["summary"] and "session present: false" in reset["summary"]
    assert "did not keep the daemon's session" in daemon.log()
