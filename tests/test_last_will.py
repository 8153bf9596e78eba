"""The gateway's status topic: retained `online` while it runs, `offline` when it stops or
dies (the broker's last will), against the real Mosquitto and a real `depotwatch run`."""

from __future__ import annotations

import subprocess
import time
import uuid
from pathlib import Path

from daemon_process import DaemonProcess
from inprocess_daemon import depot
from servers import Mosquitto


def _retained(broker: Mosquitto, topic: str) -> str:
    """The retained message on `topic` as a new subscriber gets it ("" if none in 3 s)."""
    done = subprocess.run(["mosquitto_sub", "-h", "127.0.0.1", "-p", str(broker.port),
                           "-t", topic, "-C", "1", "-W", "3"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip()


def _until(broker: Mosquitto, topic: str, wanted: str, timeout_s: float = 10.0) -> str:
    deadline = time.monotonic() + timeout_s
    seen = ""
    while time.monotonic() < deadline:
        seen = _retained(broker, topic)
        if seen == wanted:
            return seen
        time.sleep(0.1)
    return seen


def test_status_is_online_then_offline_on_sigkill_and_on_a_clean_stop(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """SIGKILL leaves no chance to say goodbye: the broker publishes the will, retained."""
    config = depot(tmp_path / "state", mosquitto.port)
    config["site"]["id"] = site = f"will-{uuid.uuid4().hex[:8]}"
    topic = f"depotwatch/{site}/status"
    daemon = DaemonProcess(tmp_path, config)
    daemon.start()
    try:
        assert _until(mosquitto, topic, "online") == "online", daemon.log()
        assert daemon.proc is not None
        daemon.proc.kill()
        daemon.proc.wait(timeout=10)
        assert _until(mosquitto, topic, "offline") == "offline"
        daemon.start()
        assert _until(mosquitto, topic, "online") == "online", daemon.log()
        assert daemon.stop() == 0
        assert _retained(mosquitto, topic) == "offline"
    finally:
        if daemon.running():
            daemon.stop()
