"""HQ supervision (issue 21), on loopback with real parts: a depot daemon with its own
Mosquitto bridged to an HQ Mosquitto, and `depotwatch hq` as a process; cutting the bridge
raises "depot unreachable" at HQ within the configured time, restoring it clears the alert
with the dark period. The pure judgement and the heartbeat's shape are tested beside it."""

from __future__ import annotations

import dataclasses
import json
import time
import uuid
from pathlib import Path

import pytest
from daemon_process import DaemonProcess
from hq_parts import DepotBroker, HqProcess, retained
from inprocess_daemon import depot
from servers import Mosquitto

from daemon.cli.main import main
from daemon.hq.heartbeat import Heartbeat
from daemon.hq.supervision import Supervision, dark_for
from daemon.vocabulary.readings import TransitionKind

S = 1_000_000_000


def test_cut_bridge_raises_depot_unreachable_at_hq_and_restoring_clears_it(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The depot's broker stops (the uplink is cut): HQ alarms within the limit; back: cleared
    with how long the depot was dark."""
    site = f"north-{uuid.uuid4().hex[:6]}"
    depot_broker = DepotBroker(site, mosquitto.port, tmp_path / "depot-broker")
    depot_broker.start()
    config = depot(tmp_path / "state", depot_broker.port)
    config["site"]["id"] = site
    config["heartbeat_s"] = 0.5
    daemon = DaemonProcess(tmp_path, config)
    daemon.start()
    hq = HqProcess(tmp_path, {
        "name": "HQ test", "depots": [{"site": site, "name": "Depot North"}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": f"hq-{uuid.uuid4().hex[:6]}", "reconnect_max_s": 1.0},
        "unreachable_after_s": 3, "down_grace_s": 1, "tick_interval_s": 0.2,
        "state_dir": str(tmp_path / "hq-state"), "api": {"listen_port": 0}})
    try:
        body = ""
        for _ in range(10):  # the daemon's start takes a few seconds on a busy machine
            body = body or retained(mosquitto, f"depotwatch/{site}/gateway/heartbeat")
        beat = Heartbeat.from_json(body.encode())
        assert beat.site == site and beat.active_alarms == 0 and beat.interval_s == 0.5
        key = f"depot_unreachable.{site}"
        time.sleep(4)  # past the limit while heard: no alarm
        assert key not in hq.log()
        depot_broker.stop()
        took_s = hq.wait_log(f"alert {key} firing", timeout_s=8)
        assert took_s <= 3 + 1.5, hq.log()
        assert "Depot North unreachable from HQ" in hq.log()
        time.sleep(2)
        depot_broker.start()
        hq.wait_log(f"alert {key} resolved", timeout_s=15)
        cleared = next(line for line in hq.log().splitlines() if f"{key} resolved" in line)
        assert "reachable again after" in cleared and " dark" in cleared
        assert hq.log().count(f"alert {key} firing") == 1
    finally:
        assert hq.stop() == 0
        daemon.stop()
        depot_broker.stop()


def test_a_silent_depot_is_unreachable_after_the_limit_and_a_heartbeat_clears_it() -> None:
    supervision = Supervision([("north", "Depot North")], unreachable_after_s=180,
                              down_grace_s=30, started_ns=0)
    assert supervision.heard("north", None, 10 * S) == []
    assert supervision.tick(190 * S) == []
    [raised] = supervision.tick(191 * S)
    assert raised.state is TransitionKind.FIRING and raised.key == "depot_unreachable.north"
    assert "no heartbeat for 3 min 01 s" in raised.summary
    assert supervision.tick(400 * S) == []  # raised once
    [cleared] = supervision.heard("north", None, 410 * S)
    assert cleared.state is TransitionKind.RESOLVED
    assert cleared.summary == "Depot North reachable again after 6 min 40 s dark"
    assert cleared.facts["dark_s"] == 400.0


@pytest.mark.parametrize("signal", ["bridge", "status"])
def test_a_bridge_or_gateway_down_waits_out_the_grace(signal: str) -> None:
    supervision = Supervision([("north", "North")], unreachable_after_s=180, down_grace_s=30,
                              started_ns=0)
    down = supervision.bridge if signal == "bridge" else supervision.status
    assert down("north", False, 5 * S) == []
    assert down("north", True, 20 * S) == []  # a blip: nobody paged
    assert down("north", False, 40 * S) == []
    [raised] = supervision.tick(70 * S)
    assert raised.state is TransitionKind.FIRING
    assert ("bridge" if signal == "bridge" else "offline") in raised.summary
    [cleared] = down("north", True, 100 * S)
    assert "after 1 min 20 s dark" in cleared.summary  # dark since last heard (20 s)


def test_dark_periods_read_as_people_say_them() -> None:
    assert [dark_for(s) for s in (4.6, 200, 7500)] == ["5 s", "3 min 20 s", "2 h 05 min"]


def test_a_heartbeat_round_trips_and_garbage_is_refused() -> None:
    beat = Heartbeat(site="n", version="0.1.0", sent_s=1.5, interval_s=30, spool_points=3,
                     lag_s=0.2, active_alarms=1, unacknowledged_alarms=1, last_reading_s=None)
    assert Heartbeat.from_json(beat.to_json()) == beat
    with pytest.raises(ValueError, match="not a heartbeat"):
        Heartbeat.from_json(json.dumps({"site": "n"}).encode())


def test_hq_check_reports_config_mistakes_with_their_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "hq.yaml"
    path.write_text("depots:\n  - site: north\n  - site: north\nunreachable_after_s: -1\n")
    assert main(["hq", "-c", str(path), "--check"]) == 78
    err = capsys.readouterr().err
    assert "unreachable_after_s" in err and ":4:" in err and "listed twice" in err
    path.write_text("depots:\n  - site: north\n")
    assert main(["hq", "-c", str(path), "--check"]) == 0
    assert "1 depots" in capsys.readouterr().out


def test_a_heartbeat_sent_after_the_bridge_went_down_proves_it_up() -> None:
    """Mosquitto restarted sends the bridge's queued "0" after its new "1": the heartbeats
    that follow decide."""
    supervision = Supervision([("north", "North")], unreachable_after_s=180, down_grace_s=5,
                              started_ns=0, wall_offset_ns=1000 * S)
    assert supervision.bridge("north", False, 10 * S) == []
    beat = Heartbeat(site="north", version="0.1.0", sent_s=1009.0, interval_s=30,
                     spool_points=0, lag_s=0.0, active_alarms=0, unacknowledged_alarms=0,
                     last_reading_s=None)
    assert supervision.heard("north", beat, 12 * S) == []  # an old one, retained or queued
    [raised] = supervision.tick(16 * S)
    [cleared] = supervision.heard("north", dataclasses.replace(beat, sent_s=1020.0), 21 * S)
    assert raised.state is TransitionKind.FIRING and cleared.state is TransitionKind.RESOLVED


def test_the_example_hq_config_is_valid(capsys: pytest.CaptureFixture[str]) -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "hq.yaml"
    assert main(["hq", "-c", str(example), "--check"]) == 0
