"""Arming by staff end to end: the real daemon, Mosquitto, the API and a webhook receiver."""

from __future__ import annotations

import hashlib
import http.cookiejar
import http.server
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import pytest
from inprocess_daemon import eventually, running
from servers import Mosquitto

from daemon.vocabulary.clock import ScaledClock

TOKEN = "intrusion-officer-token-0123456789"
VIEWER_TOKEN = "intrusion-viewer-token-0123456789"
SPEED = 10.0  # depot time runs 10x: the 60 s exit and 30 s entry delays take 6 s and 3 s


class Hook(http.server.BaseHTTPRequestHandler):
    """The duty officer's webhook receiver: keeps every notice."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet."""


@pytest.fixture
def hook() -> Iterator[str]:
    Hook.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook"
    finally:
        server.shutdown()
        server.server_close()


def config(state_dir: Path, mqtt_port: int, hook_url: str) -> dict[str, Any]:
    officers = [{"name": "Sgt. Novak", "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()},
                {"name": "Pte. View", "role": "viewer",
                 "token_sha256": hashlib.sha256(VIEWER_TOKEN.encode()).hexdigest()}]
    return {
        "site": {"id": "intrusion-depot"},
        "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "name": "Ammunition 1", "arming": "staff",
                         "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "detectors": [{"id": "pir1", "kind": "motion", "storehouse": "SH1"}],
        "mqtt": {"host": "127.0.0.1", "port": mqtt_port,
                 "client_id": f"depotwatch-{uuid.uuid4().hex[:8]}",
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "notifiers": [{"type": "webhook", "name": "duty-hook", "url": hook_url,
                       "secret": "intrusion-test-secret-0123", "timeout_s": 2}],
        "file_output": {"path": str(state_dir / "points.lp")},
        "rules": [{"type": "sensor_silent", "enabled": False}],
        "api": {"listen_port": 0, "officers": officers},
    }


def post(url: str, body: dict[str, Any], token: str = TOKEN) -> tuple[int, dict[str, Any]]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_arm_from_the_api_then_an_entry_without_disarm_alarms_at_the_notifier(
        mosquitto: Mosquitto, tmp_path: Path, hook: str) -> None:
    clock = ScaledClock(time.time_ns(), SPEED)
    clock.start()
    with running(config(tmp_path, mosquitto.port, hook), clock=clock) as daemon:
        arm = f"{daemon.url}/api/v1/storehouses/SH1/arm"
        daemon.publish("zigbee2mqtt/door1", {"contact": False})
        eventually(lambda: "door1" in json.dumps(daemon.daemon.pipeline.engine.snapshot()))
        # The door stands open: arming is refused, naming it.
        status, body = post(arm, {})
        assert status == 409, body
        assert "door SH1-D1" in body["error"]
        assert body["detail"]["not_secured"] == ["door SH1-D1"]
        # The same refusal from the officers' command line.
        done = subprocess.run([sys.executable, "-m", "daemon.cli", "alerts", "arm", "SH1",
                               "--url", daemon.url], capture_output=True, text=True,
                              env={**os.environ, "DEPOTWATCH_TOKEN": TOKEN}, check=False)
        assert done.returncode == 1 and "door SH1-D1" in done.stderr, done.stderr
        # A viewer may not arm at all.
        assert post(arm, {}, VIEWER_TOKEN)[0] == 403
        status, body = post(f"{daemon.url}/api/v1/storehouses/SH1/walk-test", {})
        assert (status, body["result"], body["by"]) == (200, "started", "Sgt. Novak")
        daemon.publish("zigbee2mqtt/door1", {"contact": True})

        def armed_now() -> bool:
            status, body = post(arm, {"note": "closing time"})
            return status == 200 and body["result"] == "arming"

        eventually(armed_now)
        # After the exit delay (6 s real), the door opens and nobody disarms.
        time.sleep(60 / SPEED + 1)
        daemon.publish("zigbee2mqtt/door1", {"contact": False})
        eventually(lambda: any(n.get("key") == "intrusion.SH1-D1" for n in Hook.received),
                   timeout_s=30 / SPEED + 15)
        notice = next(n for n in Hook.received if n.get("key") == "intrusion.SH1-D1")
        assert notice["state"] == "firing" and notice["severity"] == "critical"
        # The duty officer disarms over the MQTT command topic (stamped on the depot's clock).
        assert daemon.probe is not None
        commands = "depotwatch/intrusion-depot/commands"
        daemon.call(daemon.probe.subscribe(f"{commands}/replies"))
        daemon.publish(commands, {"id": "d1", "token": TOKEN, "action": "disarm",
                                  "storehouse": "SH1", "sent_at": clock.now_ns() / 1e9,
                                  "nonce": uuid.uuid4().hex, "note": "on site"})

        def replied() -> dict[str, Any] | None:
            assert daemon.probe is not None
            for topic, payload in daemon.probe.messages:
                if topic.endswith("/replies"):
                    return dict(json.loads(payload))
            return None

        eventually(lambda: replied() is not None)
        reply = replied()
        assert reply is not None and reply["ok"], reply
        assert (reply["result"]["state"], reply["result"]["how"]) == ("disarmed", "mqtt")
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    zone = [(e["actor"], e["action"]) for e in audit if e["subject"] == "SH1"]
    assert zone[:1] == [("Sgt. Novak", "zone_refused")]
    assert ("Sgt. Novak", "walk_test_started") in zone
    assert ("Sgt. Novak", "zone_arming") in zone
    assert [a for _, a in zone if a in ("zone_armed", "zone_entry", "zone_alarm",
                                        "zone_disarmed")] == [
        "zone_armed", "zone_entry", "zone_alarm", "zone_disarmed"]
    points = (tmp_path / "points.lp").read_text()
    assert 'zone,site=intrusion-depot,storehouse=SH1 ' in points
    assert 'result="alarm"' in points


def test_duress_code_disarms_and_only_the_on_call_notifier_hears(
        mosquitto: Mosquitto, tmp_path: Path, hook: str) -> None:
    settings = config(tmp_path, mosquitto.port, hook)
    settings["storehouses"][0]["armed"] = {"mode": "always"}  # armed at start
    settings["detectors"].append({"id": "keypad1", "kind": "keypad", "storehouse": "SH1"})
    settings["roster"] = [{"name": "Anna", "badge": "1001", "zones": ["SH1"],
                           "duress_code": "4711"}]
    with running(settings) as daemon:
        assert daemon.probe is not None
        daemon.call(daemon.probe.subscribe("depotwatch/intrusion-depot/alerts/#"))
        daemon.publish("zigbee2mqtt/keypad1", {"action": "disarm", "action_code": "4711"})
        eventually(lambda: any(n.get("key") == "duress.SH1" for n in Hook.received))
        notice = next(n for n in Hook.received if n.get("key") == "duress.SH1")
        assert notice["severity"] == "critical"
        # Disarmed as asked, as if with the usual code.
        zone = daemon.daemon.pipeline.engine.snapshot()["rules"]["zone_arming"]["zones"]["SH1"]
        assert (zone["state"], zone["by"], zone["how"]) == ("disarmed", "Anna", "keypad")
        time.sleep(1.0)  # what the MQTT topic would have had by now
        assert not [a for a in daemon.probe.alerts() if a["key"] == "duress.SH1"]
        desk = daemon.daemon.desk
        assert "duress.SH1" not in [a.key for a in desk.alarms(include_silent=False)]
        assert "duress.SH1" in [a.key for a in desk.alarms()]  # the on-call API lists it
    points = (tmp_path / "points.lp").read_text()
    assert "rule=duress" not in points and "4711" not in points
    assert 'result="disarmed"' in points


def console_page(url: str, path: str, token: str = TOKEN) -> str:
    """A console page as an officer sees it: the login form, its CSRF nonce, then `path`."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}),
                                         urllib.request.HTTPCookieProcessor(jar))
    with opener.open(f"{url}/console/login", timeout=10) as form:
        found = re.search(r'name="csrf" value="([0-9a-f]+)"', form.read().decode())
    assert found
    body = urllib.parse.urlencode({"token": token, "csrf": found.group(1)}).encode()
    opener.open(f"{url}/console/login", data=body, timeout=10).close()
    with opener.open(f"{url}{path}", timeout=10) as page:
        return str(page.read().decode())


def test_a_walk_test_result_is_in_the_zone_states_and_on_the_console(
        mosquitto: Mosquitto, tmp_path: Path, hook: str) -> None:
    with running(config(tmp_path, mosquitto.port, hook)) as daemon:
        walk = f"{daemon.url}/api/v1/storehouses/SH1/walk-test"
        assert post(walk, {"note": "quarterly"})[1]["result"] == "started"
        (zone,) = daemon.daemon.arming.zone_states()
        assert (zone.storehouse, zone.state, zone.walk_test) == ("SH1", "disarmed", True)
        daemon.publish("zigbee2mqtt/pir1", {"occupancy": True})
        eventually(lambda: daemon.daemon.arming.zone_states()[0].last_walk_test is not None)
        (zone,) = daemon.daemon.arming.zone_states()
        assert zone.last_walk_test is not None and not zone.walk_test
        assert (zone.last_walk_test.result, zone.last_walk_test.by) == ("passed", "Sgt. Novak")
        page = console_page(daemon.url, "/storehouses")
        assert "Walk test:" in page and "walk-passed" in page and "by Sgt. Novak" in page
    assert not [n for n in Hook.received if n.get("key", "").startswith("intrusion")]
