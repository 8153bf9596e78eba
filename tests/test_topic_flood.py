"""Never down: 50,000 new topics in a minute leave memory, metric series and the log bounded
(issue "Never down, nothing lost"), and an armed door still alarms during the flood."""

from __future__ import annotations

import re
import time
import urllib.request
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from daemon_process import DaemonProcess
from servers import Mosquitto

TOPICS = 50_000


def _config(tmp_path: Path, broker: Mosquitto) -> dict[str, Any]:
    return {
        "site": {"id": "flood-depot"},
        "state_dir": str(tmp_path / "state"),
        "storehouses": [{"id": "SH1", "armed": {"mode": "always"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "mqtt": {"host": "127.0.0.1", "port": broker.port, "client_id": "flood-daemon",
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "rules": [{"type": "door_armed"}],
        "api": {"listen_port": 0, "metrics_token_required": False},
    }


def _rss_kib(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1))  # type: ignore[union-attr]


def _metrics(daemon: DaemonProcess) -> str:
    url = re.findall(r"alert API listening on (\S+)", daemon.log())[-1]
    with urllib.request.urlopen(f"{url}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def test_fifty_thousand_new_topics_leave_memory_series_and_log_bounded(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, _config(tmp_path, mosquitto))
    daemon.start()
    device = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="flood-device")
    device.connect("127.0.0.1", mosquitto.port)
    device.loop_start()
    try:
        daemon.wait_log("MQTT connected")
        daemon.wait_log("alert API listening")
        assert daemon.proc is not None
        for i in range(2_000):  # warm-up: the first dead letters, logger and database pages
            device.publish(f"zigbee2mqtt/warm-{i}", b'{"contact": true}', qos=0)
        time.sleep(2)
        before = _rss_kib(daemon.proc.pid)
        lines_before = daemon.log().count("\n")
        started = time.monotonic()
        for i in range(TOPICS):
            device.publish(f"zigbee2mqtt/junk-{i}", b'{"contact": true}', qos=0)
            if i % 1000 == 999:
                time.sleep(0.01)
        device.publish("zigbee2mqtt/door1", b'{"contact": false}', qos=1)
        daemon.wait_log("door_armed.SH1-D1 firing", timeout=30)
        took = time.monotonic() - started
        time.sleep(3)
        grown_kib = _rss_kib(daemon.proc.pid) - before
        series = [line for line in _metrics(daemon).splitlines()
                  if line.startswith("depotwatch_decode_errors_total{")]
        new_lines = daemon.log().count("\n") - lines_before
    finally:
        device.loop_stop()
        device.disconnect()
        assert daemon.stop() == 0, daemon.log()
    print(f"\n{TOPICS} topics in {took:.1f} s: RSS +{grown_kib} KiB, {len(series)} series, "
          f"{new_lines} log lines")
    assert took < 60
    assert len(series) <= 101, len(series)
    assert new_lines < 100, daemon.log()[-3000:]
    assert grown_kib < 20 * 1024, f"RSS grew by {grown_kib} KiB"
