"""HQ as two identical replicas (issue 21): both supervise every depot and notify the same
Alertmanager, which de-duplicates them (the Prometheus HA pattern). With both up, an uplink
cut is notified once; with one replica killed, a cut after the kill is still notified, once."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from daemon_process import DaemonProcess
from hq_parts import DepotBroker, HqProcess, Uplink
from inprocess_daemon import depot
from servers import Alertmanager, Mosquitto, free_port


class Webhook:
    """Alertmanager's webhook receiver: every notification it sends, in order."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        seen = self.notifications

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                seen.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def about(self, key: str, status: str) -> list[dict[str, Any]]:
        """Notifications that carry `key` in `status`."""
        return [n for n in self.notifications
                if any(a["labels"].get("key") == key and a["status"] == status
                       for a in n["alerts"])]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    receiver = Webhook()
    try:
        yield receiver
    finally:
        receiver.close()


def _wait(check: Any, timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, what
        time.sleep(0.1)


def test_two_hq_replicas_report_a_cut_once_and_one_survives_the_others_death(
        mosquitto: Mosquitto, webhook: Webhook, tmp_path: Path) -> None:
    site = f"north-{uuid.uuid4().hex[:6]}"
    key = f"depot_unreachable.{site}"
    manager = Alertmanager(webhook.url, tmp_path / "alertmanager")
    manager.start()
    uplink = Uplink(mosquitto.port)
    uplink.restore()
    broker = DepotBroker(site, uplink.port, tmp_path / "broker")
    broker.start()
    config = depot(tmp_path / "state", broker.port)
    config["site"]["id"] = site
    config["heartbeat_s"] = 0.5
    config["health"] = {"enabled": False}
    gateway = DaemonProcess(tmp_path, config)
    gateway.start()
    replicas = []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        # Identical but for what each must own: its broker session and its audit trail.
        replicas.append(HqProcess(tmp_path / name, {
            "depots": [{"site": site, "name": "Depot North"}],
            "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                     "client_id": f"hq-{name}-{site}", "reconnect_max_s": 1.0},
            "unreachable_after_s": 3, "down_grace_s": 1, "tick_interval_s": 0.2,
            "settle_s": 0.5, "state_dir": str(tmp_path / name / "state"),
            "api": {"listen_port": 0},
            "notifiers": [{"type": "alertmanager", "urls": [manager.url]}]}))
    try:
        for replica in replicas:
            replica.wait_log("subscribed to", timeout_s=20)
        time.sleep(2)  # heartbeats reach both

        # Both up: both raise the alert, Alertmanager notifies once.
        uplink.cut()
        for replica in replicas:
            replica.wait_log(f"alert {key} firing", timeout_s=10)
        _wait(lambda: webhook.about(key, "firing"), 10, "firing notified")
        time.sleep(3)  # group_interval is 1 s: a duplicate would have come by now
        assert len(webhook.about(key, "firing")) == 1, webhook.notifications
        uplink.restore()
        _wait(lambda: webhook.about(key, "resolved"), 20, "resolved notified")

        # Replica a dies; a cut afterwards is still reported, once.
        replicas[0].proc.kill()
        replicas[0].proc.wait()
        time.sleep(1)
        before = len(webhook.about(key, "firing"))
        uplink.cut()
        _wait(lambda: len(webhook.about(key, "firing")) > before, 15,
              "firing notified by the surviving replica")
        time.sleep(3)
        assert len(webhook.about(key, "firing")) == before + 1, webhook.notifications
    finally:
        for replica in replicas:
            if replica.proc.poll() is None:
                replica.stop()
        gateway.stop()
        broker.stop()
        uplink.cut()
        manager.close()
