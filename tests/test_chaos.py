"""The short chaos run (`make chaos` runs it for 10 minutes): every fault of tests/chaos.py
exactly once (`--once`), at 1,500 readings/s, and nothing lost outside the documented windows.

Shorter than the long run only where length proves nothing more: faults come 4 s apart instead
of 20 (a SIGKILLed daemon is back and connected in 1-2 s, so each fault still meets a running
daemon, and the readings of each window are checked all the same), InfluxDB is down 5 s
instead of 15 (the writer's retry backoff is capped at 2 s, so 5 s already puts the spool
through failed writes at the cap and a replay; the no-loss check is the same) and the disk
stays full 3 s instead of 8 (a full disk is met by the next commit, a few ms at 1,500
readings/s)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
FAULT_KINDS = 8  # Chaos.faults()


def test_chaos_loses_nothing_outside_the_documented_windows() -> None:
    done = subprocess.run([sys.executable, str(HERE / "chaos.py"), "--once", "--period", "4",
                           "--outage", "5", "--disk-full", "3"],
                          capture_output=True, text=True, timeout=400, check=False)
    print(done.stdout[-3000:])
    last = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0 and last.startswith("chaos: ") and last.endswith("PASS"), (
        done.stdout[-3000:] + done.stderr[-3000:])
    # Every kind of fault fired, each once.
    fired = re.findall(r"\] fault \d+: (.+)", done.stdout)
    assert len(fired) == len(set(fired)) == FAULT_KINDS, fired
