"""The short chaos run (`make chaos` runs it for 10 minutes): every fault of tests/chaos.py
once, at 1,500 readings/s, and nothing lost outside the documented windows."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def test_chaos_loses_nothing_outside_the_documented_windows() -> None:
    done = subprocess.run([sys.executable, str(HERE / "chaos.py"), "--seconds", "75",
                           "--period", "6"], capture_output=True, text=True, timeout=400,
                          check=False)
    print(done.stdout[-3000:])
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0 and last.startswith("chaos: ") and last.endswith("PASS"), (
        done.stdout[-3000:] + done.stderr[-3000:])
