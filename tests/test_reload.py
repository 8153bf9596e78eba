"""SIGHUP and `depotwatch reload`: the config is read again without a restart (issue 24)."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
import yaml
from daemon_process import DaemonProcess
from servers import Mosquitto

from daemon.alerts.officers import hash_token
from daemon.config.schema import Config
from daemon.reload import needs_restart

OLD_TOKEN, NEW_TOKEN = "reload-old-" + "a" * 24, "reload-new-" + "b" * 24


def _config(workdir: Path, mosquitto: Mosquitto, doors: int, token: str) -> dict[str, Any]:
    return {
        "site": {"id": "reload-depot"},
        "state_dir": str(workdir / "state"),
        "storehouses": [{"id": "SH1", "name": "Store 1", "armed": {"mode": "always"}}],
        "doors": [{"id": f"SH1-D{i}", "storehouse": "SH1", "contact_sensor": f"door{i}"}
                  for i in range(doors)],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": f"depotwatch-reload-{uuid.uuid4().hex[:8]}",
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "file_output": {"path": str(workdir / "points.lp")},
        "rules": [{"type": "door_armed"}],
        "api": {"listen_port": 0,
                "officers": [{"name": "duty", "token_sha256": hash_token(token)}]},
    }


def _open_door(mosquitto: Mosquitto, sensor: str) -> None:
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"doors-{uuid.uuid4()}")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        client.publish(f"zigbee2mqtt/{sensor}", json.dumps({"contact": False}),
                       qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def _status(url: str, token: str) -> int:
    request = urllib.request.Request(f"{url}/api/v1/alerts",
                                     headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _reload(daemon: DaemonProcess) -> None:
    assert daemon.proc is not None
    done = subprocess.run([sys.executable, "-m", "daemon.cli", "reload",
                           "--pid", str(daemon.proc.pid)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr


def test_sighup_applies_a_new_register_and_tokens_and_keeps_an_invalid_file_out(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    daemon = DaemonProcess(tmp_path, _config(tmp_path, mosquitto, 1, OLD_TOKEN))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        found = re.search(r"alert API listening on (http://\S+)", daemon.log())
        assert found, daemon.log()
        url = found.group(1)
        assert _status(url, OLD_TOKEN) == 200
        _open_door(mosquitto, "door1")  # not in the register yet: a dead letter
        daemon.wait_log("unknown sensor 'door1'")

        # An invalid file: kept out, one line, a fault alert; the daemon runs on.
        daemon.config_path.write_text("site: {id: x}\nstorehouses: []\n")
        _reload(daemon)
        daemon.wait_log("not reloaded, running on with the previous one")
        daemon.wait_log("config_invalid")
        assert _status(url, OLD_TOKEN) == 200

        # A valid one: a second door and a new token, applied at once.
        daemon.config_path.write_text(yaml.safe_dump(_config(tmp_path, mosquitto, 2,
                                                             NEW_TOKEN)))
        _reload(daemon)
        daemon.wait_log("reloaded: 1 storehouses, 2 doors")
        assert _status(url, NEW_TOKEN) == 200
        assert _status(url, OLD_TOKEN) == 401
        _open_door(mosquitto, "door1")
        daemon.wait_log("SH1-D1")
        assert daemon.running()
    finally:
        code = daemon.stop()
    log = daemon.log()
    assert code == 0, log
    # The MQTT session was never dropped for it.
    assert log.count("MQTT connected") == 1, log


def test_settings_that_need_a_restart_are_named() -> None:
    base = {"site": {"id": "x"}, "storehouses": [{"id": "SH1"}]}
    old = Config.model_validate(base)
    new = Config.model_validate({**base, "state_dir": "/tmp/elsewhere",
                                 "mqtt": {"host": "broker.example"},
                                 "alerting": {"repeat_s": {"critical": 60}}})
    assert needs_restart(old, new) == ["state_dir", "mqtt"]
    assert needs_restart(old, Config.model_validate(base)) == []


def _zone(url: str, token: str, storehouse: str,
          action: str) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(f"{url}/api/v1/storehouses/{storehouse}/{action}",
                                     data=b'{"force": false}', method="POST",
                                     headers={"Authorization": f"Bearer {token}",
                                              "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return int(answer.status), json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_sighup_adds_a_new_storehouse_to_the_zone_routes(mosquitto: Mosquitto,
                                                         tmp_path: Path) -> None:
    # Found in the intrusion work: the API's zone calls kept the storehouses of the start.
    config = _config(tmp_path, mosquitto, 1, OLD_TOKEN)
    daemon = DaemonProcess(tmp_path, config)
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        found = re.search(r"alert API listening on (http://\S+)", daemon.log())
        assert found, daemon.log()
        url = found.group(1)
        assert _zone(url, OLD_TOKEN, "SH2", "disarm")[0] == 404
        config["storehouses"].append({"id": "SH2", "name": "Store 2", "arming": "staff"})
        config["doors"].append({"id": "SH2-D1", "storehouse": "SH2", "contact_sensor": "d21"})
        daemon.config_path.write_text(yaml.safe_dump(config))
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        daemon.wait_log("reloaded: 2 storehouses, 2 doors")
        # A fresh zone is as its schedule says (always: armed); staff disarm and arm it.
        status, answer = _zone(url, OLD_TOKEN, "SH2", "disarm")
        assert status == 200, answer
        assert answer["state"] == "disarmed" and answer["by"] == "duty", answer
        status, answer = _zone(url, OLD_TOKEN, "SH2", "arm")
        assert (status, answer["state"]) == (200, "arming"), answer
    finally:
        code = daemon.stop()
    assert code == 0, daemon.log()
