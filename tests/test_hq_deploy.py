"""HQ's systemd unit (deploy/depotwatch-hq.service): verified and scored by systemd-analyze as
the gateway's is, and `depotwatch hq` telling systemd READY=1 and WATCHDOG=1."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
import yaml
from servers import Mosquitto
from test_deploy import NotifySocket

REPO = Path(__file__).resolve().parent.parent
UNIT = REPO / "deploy" / "depotwatch-hq.service"


def _unit(tmp_path: Path) -> Path:
    stand_in = tmp_path / "bin" / "depotwatch"
    stand_in.parent.mkdir()
    stand_in.write_text("#!/bin/sh\n")
    stand_in.chmod(0o755)
    unit = tmp_path / "depotwatch-hq.service"
    unit.write_text(UNIT.read_text().replace("/opt/depotwatch/bin/depotwatch", str(stand_in)))
    return unit


def _analyze() -> str:
    found = shutil.which("systemd-analyze")
    if found is None:
        pytest.fail("systemd-analyze missing: apt-get install systemd (make apt-test does)")
    return found


def test_hq_unit_verifies_and_scores_as_the_gateways(tmp_path: Path) -> None:
    unit = _unit(tmp_path)
    done = subprocess.run([_analyze(), "verify", "--man=no", str(unit)],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and done.stdout + done.stderr == "", done.stderr
    done = subprocess.run([_analyze(), "security", "--offline=yes", "--threshold=20",
                           "--no-pager", str(unit)], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr
    assert "Overall exposure level for depotwatch-hq.service: 1." in done.stdout
    text = UNIT.read_text()
    for line in ("Type=notify", "WatchdogSec=30", "RestartPreventExitStatus=78",
                 "ExecStart=/opt/depotwatch/bin/depotwatch hq -c /etc/depotwatch/hq.yaml",
                 "StateDirectory=depotwatch-hq"):
        assert f"\n{line}\n" in text, line


def test_hq_tells_systemd_ready_and_keeps_the_watchdog_fed(mosquitto: Mosquitto,
                                                           tmp_path: Path) -> None:
    config = tmp_path / "hq.yaml"
    config.write_text(yaml.safe_dump({
        "depots": [{"site": "north"}], "state_dir": str(tmp_path / "state"),
        "api": {"listen_port": 0},
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": f"hq-{uuid.uuid4().hex[:6]}"}}))
    systemd = NotifySocket()
    proc = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "hq", "-c", str(config)],
        env={**os.environ, "NOTIFY_SOCKET": systemd.name, "WATCHDOG_USEC": "400000"},
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        got = systemd.wait_for(lambda m: m.count("WATCHDOG=1") >= 2, 15)
        assert got[0].startswith("READY=1"), got[:3]
        proc.terminate()
        assert proc.wait(20) == 0
        systemd.wait_for(lambda m: "STOPPING=1" in m, 5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        systemd.close()
