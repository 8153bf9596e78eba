"""`audit verify` over large logs: peak memory and CPU per MB of the streaming verify, against
reading the log whole (what verify did before issue 23), at several log sizes.

Each measurement runs in a fresh child process, so its peak RSS (VmHWM) is its own; the Python
heap peak comes from tracemalloc in a separate pass (it slows the run, so CPU is measured
without it). Run: .venv/bin/python bench/audit_verify.py [--entries 20000 80000 160000]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harness import machine, results_path, stamp

from daemon.alerts.audit_format import GENESIS_HASH, entry_body, entry_line, parse_line, split_lines
from daemon.alerts.audit_reading import verify

T0 = 1_717_200_000 * 10**9


def write_log(path: Path, count: int) -> None:
    """`count` entries shaped like the daemon's (an alarm action with a note), no fsync."""
    prev = GENESIS_HASH
    with path.open("wb") as out:
        for seq in range(1, count + 1):
            body = entry_body({"seq": seq, "at_ns": T0 + seq * 10**9, "actor": "officer-1",
                               "action": "acknowledged", "subject": f"door_armed.SH1-D{seq % 40}",
                               "details": {"note": "patrol sent, door checked", "n": seq},
                               "prev_hash": prev})
            prev = hashlib.sha256(body).hexdigest()
            out.write(entry_line(body, prev))


def _whole(path: Path) -> int:
    """The old way: the file read at once, every line parsed into a list, then judged."""
    lines, _ = split_lines(path.read_bytes())
    parsed = [parse_line(raw) for raw in lines]
    return sum(1 for entry, reason in parsed if entry is not None and not reason)


def _measure(mode: str, path: Path, heap: bool) -> dict[str, float]:
    if heap:
        tracemalloc.start()
    started = time.process_time()
    if mode == "streaming":
        assert verify(path).status == "intact"
    else:
        assert _whole(path) > 0
    cpu_s = time.process_time() - started
    result = {"cpu_s": cpu_s}
    if heap:
        result["heap_peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                result["peak_rss_mib"] = int(line.split()[1]) / 1024
    return result


def child(mode: str, path: Path, heap: bool) -> dict[str, float]:
    """One measurement in a fresh interpreter."""
    done = subprocess.run([sys.executable, __file__, "_child", mode, str(path),
                           "heap" if heap else "cpu"],
                          capture_output=True, text=True, check=True, timeout=1800)
    return dict(json.loads(done.stdout.splitlines()[-1]))


def main() -> None:
    """Measure each size, both ways; print a table and write the results file."""
    if sys.argv[1:2] == ["_child"]:
        mode, path, kind = sys.argv[2:5]
        print(json.dumps(_measure(mode, Path(path), kind == "heap")))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--entries", type=int, nargs="+", default=[20_000, 80_000, 160_000])
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for count in args.entries:
            path = Path(tmp) / "audit.jsonl"
            write_log(path, count)
            mb = path.stat().st_size / 1e6
            for mode in ("streaming", "whole"):
                row = {"entries": count, "mb": round(mb, 1), "mode": mode,
                       **child(mode, path, heap=False)}
                row["heap_peak_mib"] = child(mode, path, heap=True)["heap_peak_mib"]
                row["cpu_s_per_mb"] = row["cpu_s"] / mb
                rows.append(row)
                print(f"{count:>8,} entries {mb:7.1f} MB  {mode:<9}  CPU {row['cpu_s']:6.2f} s "
                      f"({row['cpu_s_per_mb'] * 1000:5.1f} ms/MB)  heap peak "
                      f"{row['heap_peak_mib']:7.1f} MiB  peak RSS {row['peak_rss_mib']:6.1f} MiB",
                      flush=True)
    out = results_path("audit_verify", args.output)
    out.write_text(json.dumps({"date": stamp(), "machine": machine(), "rows": rows}, indent=2))
    print(f"written {out}")


if __name__ == "__main__":
    main()
