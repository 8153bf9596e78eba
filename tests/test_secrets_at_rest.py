"""No officer token is kept or logged (issue 25, "No way in"): the real daemon is given tokens,
used over MQTT commands (well formed, misspelled, garbage, replayed, stale) and the HTTP API,
then every file under its state_dir and its log are searched for them. The same daemon shows
that a replayed or stale command is refused."""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path
from typing import Any

from daemon_process import DaemonProcess
from mqtt_probe import MqttProbe
from servers import Mosquitto

SITE = "secrets-depot"
COMMANDS = f"depotwatch/{SITE}/commands"
TOKENS = {"Sgt. Berger": "berger-" + uuid.uuid4().hex, "Lt. Okafor": "okafor-" + uuid.uuid4().hex}
BERGER, OKAFOR = TOKENS.values()


def _config(mosquitto: Mosquitto, state_dir: Path) -> dict[str, Any]:
    return {
        "site": {"id": SITE}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": f"depotwatch-secrets-{uuid.uuid4().hex[:6]}",
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "tick_interval_s": 0.2,
        "api": {"listen_port": 0, "officers": [
            {"name": name, "token_sha256": hashlib.sha256(token.encode()).hexdigest()}
            for name, token in TOKENS.items()]},
    }


def _command(**fields: Any) -> dict[str, Any]:
    return {"sent_at": time.time(), "nonce": uuid.uuid4().hex, "action": "ack",
            "key": "tamper.door1", **fields}


def _api(daemon: DaemonProcess, path: str, token: str, body: dict[str, Any]) -> int:
    match = re.search(r"alert API listening on (http://\S+)", daemon.log())
    assert match is not None, daemon.log()
    request = urllib.request.Request(
        match.group(1) + path, data=json.dumps(body).encode(), method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return refused.code


def _send_commands(mosquitto: Mosquitto) -> dict[str, dict[str, Any]]:
    replayed = _command(id="ack", token=BERGER, note="seen on camera")
    sent: list[dict[str, Any] | bytes] = [
        replayed,
        {**replayed, "id": "replay"},
        _command(id="stale", token=BERGER, sent_at=time.time() - 3600),
        _command(id="typo", token=OKAFOR, nots="a misspelled note"),
        _command(id="tokn", tokn=OKAFOR),
        _command(id="as-key", token=BERGER, **{OKAFOR: "x"}),
        b'{"id": "cut", "token": "' + BERGER.encode() + b'", "action": "ac',
        b"\xff" + OKAFOR.encode(),
    ]

    async def scenario() -> dict[str, dict[str, Any]]:
        async with MqttProbe(mosquitto.port) as probe:
            await probe.subscribe(f"{COMMANDS}/replies")
            await probe.subscribe(f"depotwatch/{SITE}/alerts/#")
            probe.publish("zigbee2mqtt/door1", {"contact": True, "tamper": True})
            await probe.wait_alert("tamper.door1", "firing")
            for body in sent:
                probe.publish(COMMANDS, body)
            loop = asyncio.get_running_loop()
            deadline = loop.time() + 10
            while loop.time() < deadline:
                replies = [json.loads(p) for t, p in probe.messages if t.endswith("/replies")]
                if len(replies) == len(sent):
                    return {r["id"] + ("" if r["id"] else str(i)): r
                            for i, r in enumerate(replies)}
                await asyncio.sleep(0.05)
            raise AssertionError(f"replies: {probe.messages}")

    return asyncio.run(scenario())


def test_no_token_is_kept_or_logged_and_replays_are_refused(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    state = tmp_path / "state"
    daemon = DaemonProcess(tmp_path, _config(mosquitto, state))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        daemon.wait_log("alert API listening on")
        replies = _send_commands(mosquitto)
        # The API with a token, a wrong one, and a token in a note.
        assert _api(daemon, "/api/v1/alerts/tamper.door1/check", OKAFOR,
                    {"finding": "fault", "note": f"token {BERGER} pasted by mistake"}) == 200
        assert _api(daemon, "/api/v1/alerts/tamper.door1/ack", "wrong-" + BERGER, {}) == 401
    finally:
        assert daemon.stop() == 0, daemon.log()
    assert replies["ack"]["ok"], replies
    assert replies["replay"]["error"] == "replayed command: this nonce was used already"
    assert re.match(r"stale command: sent 360[01] s older than now", replies["stale"]["error"])
    assert "nots: Extra inputs are not permitted" in replies["typo"]["error"]
    assert not any(r["ok"] for i, r in replies.items() if i != "ack"), replies
    assert "replayed command" in daemon.log()
    files = [p for p in state.rglob("*") if p.is_file()]
    assert any(p.name == "deadletters.sqlite" for p in files), files
    for token in TOKENS.values():
        for text in (*replies.values(), daemon.log()):
            assert token not in json.dumps(text), text
        kept = [str(p.relative_to(state)) for p in files if token.encode() in p.read_bytes()]
        assert kept == [], f"{token} kept in {kept}"
