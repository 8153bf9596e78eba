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
