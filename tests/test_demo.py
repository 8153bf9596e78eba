"""`depotwatch demo` (what `make demo` runs): the whole night on the embedded broker."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_plays_the_night_and_every_incident_fires_and_resolves(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "daemon.cli", "demo", "--state-dir", str(tmp_path)],
        capture_output=True, text=True, timeout=180,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    lines = out.splitlines()
    for key in ("door_armed.SH1-D2", "tamper.sh2-door1", "temperature_warning.sh2-climate1",
                "sensor_silent.sh1-climate1"):
        assert any("FIRING" in line and key in line for line in lines), key
        assert any("acked" in line and key in line for line in lines), key
        assert any("cleared" in line and key in line for line in lines), key
    assert "Fri 23:12  FIRING   critical door_armed.SH1-D2" in out
    # The door closed at 23:20, but a critical alarm stays open until the on-site check.
    assert any(line.startswith("Fri 23:20  acked") and "door SH1-D2 closed" in line
               for line in lines)
    assert any(line.startswith("Fri 23:2") and "cleared" in line and "door_armed.SH1-D2" in line
               for line in lines)
    assert "finding: false_alarm" in out
    assert "dead letters: 2" in out
    assert "demo OK" in out
    # Door SH1-D1 opened at 17:45, before its store arms at 18:00: no alarm.
    assert "door_armed.SH1-D1" not in out
    points = (tmp_path / "points.lp").read_text().splitlines()
    assert len(points) > 5000
    assert any(p.startswith("alert,") for p in points)
    assert (tmp_path / "deadletters.sqlite").exists()


def test_demo_console_stays_up_with_a_demo_officer_until_ctrl_c(tmp_path: Path) -> None:
    """`make demo-console`: after the night, the console answers the printed officer token;
    Ctrl-C ends it cleanly. The demo config has its officer, so no "no officers" warning."""
    import json
    import re
    import signal
    import urllib.request

    process = subprocess.Popen(
        [sys.executable, "-m", "daemon.cli", "demo", "--speed", "4000", "--console",
         "--state-dir", str(tmp_path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    assert process.stdout is not None
    seen: list[str] = []
    try:
        for line in process.stdout:
            seen.append(line)
            if "log in as the demo duty officer" in line:
                break
        out = "".join(seen)
        url = re.search(r"(http://127\.0\.0\.1:\d+)/console/login", out)
        token = re.search(r"with the token (\S+)", out)
        assert url and token and "demo OK" in out, out
        assert "no officers configured" not in out
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        with opener.open(url.group(1) + "/console/login", timeout=10) as page:
            assert page.status == 200
        request = urllib.request.Request(url.group(1) + "/api/v1/alerts?all=1",
                                         headers={"Authorization": f"Bearer {token.group(1)}"})
        with opener.open(request, timeout=10) as answer:
            alerts = json.load(answer)["alerts"]
        assert any(a["key"] == "door_armed.SH1-D2" for a in alerts)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stdout.close()
