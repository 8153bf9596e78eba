"""HQ's console, API and acknowledgements (issue 21), end to end on loopback with real parts:
two depot daemons, each with its own Mosquitto bridged to HQ's through an uplink that can be
cut, and `depotwatch hq` as a process. An alarm at one depot shows at HQ under that depot
only; acknowledged at HQ, it is acknowledged at the depot (recorded in both audit trails);
an alarm raised while a depot's uplink is cut reaches HQ once when it is back, counted late
in the clearing of "depot unreachable"."""

from __future__ import annotations

import hashlib
import json
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

from daemon_process import DaemonProcess
from hq_parts import DepotBroker, Hq, HqProcess, Uplink, until
from inprocess_daemon import depot
from servers import Mosquitto, http_request

from daemon.hq.depots import AlarmBook
from daemon.hq.topics import DepotTopics, Kind, Topic
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind

HQ_DESK_TOKEN = "hq-desk-token-at-the-depots-0123456789"  # the depots know HQ by it
MAJOR, MAJOR_TOKEN = "Maj. Hale", "hq-officer-token-0123456789abcdef"
VIEWER_TOKEN = "hq-viewer-token-0123456789abcdef"


def _sha(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _open_door(broker: DepotBroker) -> None:
    subprocess.run(["mosquitto_pub", "-h", "127.0.0.1", "-p", str(broker.port), "-q", "1",
                    "-t", "zigbee2mqtt/door1", "-m", json.dumps({"contact": False})],
                   check=True)


def _depot_config(site: str, broker: DepotBroker, state: Path) -> dict[str, Any]:
    config = depot(state, broker.port)
    config["site"]["id"] = site
    config["heartbeat_s"] = 0.5
    config["health"] = {"enabled": False}
    config["api"]["officers"].append({"name": "HQ duty desk", "role": "operator",
                                      "token_sha256": _sha(HQ_DESK_TOKEN)})
    return config


def test_two_depots_one_hq_console_ack_and_a_late_alarm(mosquitto: Mosquitto,
                                                        tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:6]
    north, south = f"north-{tag}", f"south-{tag}"
    uplinks = {site: Uplink(mosquitto.port) for site in (north, south)}
    brokers = {site: DepotBroker(site, uplinks[site].port, tmp_path / f"broker-{site}")
               for site in (north, south)}
    daemons: dict[str, DaemonProcess] = {}
    for site in (north, south):
        uplinks[site].restore()
        brokers[site].start()
        (tmp_path / site).mkdir()
        daemons[site] = DaemonProcess(tmp_path / site, _depot_config(site, brokers[site],
                                                                     tmp_path / site / "state"))
        daemons[site].start()
    process = HqProcess(tmp_path, {
        "name": "HQ test", "depots": [
            {"site": north, "name": "Depot North", "command_token": HQ_DESK_TOKEN},
            {"site": south, "name": "Depot South", "command_token": HQ_DESK_TOKEN}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": f"hq-{tag}", "reconnect_max_s": 1.0},
        "unreachable_after_s": 3, "down_grace_s": 1, "tick_interval_s": 0.2,
        "late_after_s": 1, "settle_s": 1.5, "state_dir": str(tmp_path / "hq-state"),
        "api": {"listen_port": 0, "officers": [
            {"name": MAJOR, "token_sha256": _sha(MAJOR_TOKEN), "role": "operator"},
            {"name": "Lt. Viewer", "token_sha256": _sha(VIEWER_TOKEN), "role": "viewer"}]}})
    try:
        hq = Hq(process, VIEWER_TOKEN)
        until(lambda: all(d["last_heartbeat_s"] for d in hq.depots().values()), 30,
               "both depots' heartbeats at HQ")
        status, page = http_request("GET", f"{hq.url}/")
        assert status == 200 and b"depotwatch HQ" in page
        assert http_request("GET", f"{hq.url}/api/depots")[0] == 401

        # An alarm at North shows at HQ under North only; acknowledged at HQ, it is at North.
        _open_door(brokers[north])
        key = "door_armed.SH1-D1"
        alarm = until(lambda: next(iter(hq.depots()[north]["alarms"]), None), 15,
                       "North's alarm at HQ")
        assert alarm["key"] == key and alarm["acked_by"] is None
        assert hq.depots()[south]["alarms"] == []
        assert hq.ack(north, key, VIEWER_TOKEN)[0] == 403
        status, answer = hq.ack(north, key, MAJOR_TOKEN)
        assert status == 200, answer
        assert answer["result"]["acked_by"] == "HQ duty desk"
        until(lambda: hq.depots()[north]["alarms"][0]["acked_by"] == "HQ duty desk", 10,
               "the acknowledgement back at HQ")
        assert f"at HQ by {MAJOR}: called the guard" in (
            tmp_path / north / "state" / "audit.jsonl").read_text()
        hq_audit = (tmp_path / "hq-state" / "hq-audit.jsonl").read_text()
        assert '"hq_ack"' in hq_audit and MAJOR in hq_audit
        assert hq.ack(north, "door_armed.nope", MAJOR_TOKEN)[0] == 404
        # Acknowledged already: the depot refuses, HQ says so and its trail records it.
        status, answer = hq.ack(north, key, MAJOR_TOKEN)
        assert status == 409 and "refused" in answer["error"], answer
        assert '"hq_ack_failed"' in (tmp_path / "hq-state" / "hq-audit.jsonl").read_text()

        # South's uplink cut: unreachable; an alarm raised meanwhile arrives once, late.
        unreachable = f"depot_unreachable.{south}"
        uplinks[south].cut()
        process.wait_log(f"alert {unreachable} firing", timeout_s=10)
        assert not hq.depots()[south]["reachable"] and hq.depots()[north]["reachable"]
        _open_door(brokers[south])
        daemons[south].wait_log("alert door_armed.SH1-D1 firing", timeout=10)
        time.sleep(1.5)  # past late_after_s
        uplinks[south].restore()
        process.wait_log(f"alert {unreachable} resolved", timeout_s=20)
        cleared = next(x for x in process.log().splitlines() if f"{unreachable} resolved" in x)
        assert "1 alarm change(s) arrived late" in cleared, process.log()
        seen = hq.depots()[south]
        assert seen["reachable"] and seen["late_alarms"] == 1
        assert [a["key"] for a in seen["alarms"]] == [key]
        assert hq.depots()[north]["late_alarms"] == 0
        assert process.log().count(f"alert {unreachable} firing") == 1
    finally:
        assert process.stop() == 0
        for site in (north, south):
            daemons[site].stop()
            brokers[site].stop()
            uplinks[site].cut()


def _alert(changed_s: float, state: TransitionKind = TransitionKind.FIRING) -> Alert:
    return Alert(key="door_armed.D1", rule="door_armed", subject="D1",
                 severity=Severity.CRITICAL, state=state, summary="door", storehouse="S",
                 started_ns=int(100e9), changed_ns=int(changed_s * 1e9))


def test_the_alarm_book_counts_late_arrivals_once_and_keeps_the_newest() -> None:
    book = AlarmBook(["n"], late_after_s=60, started_wall_ns=int(50e9))
    assert book.take("n", _alert(100), int(101e9)) is False  # on time
    assert book.take("n", _alert(200), int(300e9)) is True  # 100 s late
    assert book.take("n", _alert(200), int(301e9)) is False  # the same change again
    assert book.take("n", _alert(150), int(302e9)) is True  # late, older than the filed one
    assert book.depots["n"].open["door_armed.D1"].changed_ns == int(200e9)
    assert book.take("n", _alert(40), int(400e9)) is False  # from before HQ started
    book.take("n", _alert(500, TransitionKind.RESOLVED), int(501e9))
    assert book.depots["n"].open == {} and len(book.depots["n"].cleared) == 1
    assert book.depots["n"].late_alarms == 2  # 200 and the older 150 delivered late


def test_five_wildcard_filters_serve_any_number_of_depots() -> None:
    topics = DepotTopics(f"d{n}" for n in range(2000))
    assert topics.filters() == sorted([
        "depotwatch/+/gateway/heartbeat", "depotwatch/+/gateway/bridge", "depotwatch/+/status",
        "depotwatch/+/alerts/+", "depotwatch/+/commands/replies"])
    assert topics.match("depotwatch/d7/alerts/door_armed.SH1-D1") == Topic(
        Kind.ALERT, "d7", "door_armed.SH1-D1")
    assert topics.match("depotwatch/d1999/gateway/heartbeat") == Topic(Kind.HEARTBEAT, "d1999")
    assert topics.match("depotwatch/d3/commands/replies") == Topic(Kind.REPLY, "d3")
    assert topics.match("depotwatch/elsewhere/status") is None  # not supervised here
    assert topics.match("depotwatch/d1/commands") is None
    assert topics.match("depotwatch/d1/alerts/a/b") is None
