"""Armed-door alarm latency under each fault of the issue "Never blind", next to no fault.

The fault matrix of the suite (tests/fault_matrix.py: real Mosquitto, InfluxDB and webhook
sink, the daemon in-process with a steppable clock) run `--trials` times; per case and QoS the
median and the maximum seconds from a door's opening to its alarm at the webhook. A case over
10 s, or an alarm that never came, fails the run.

    .venv/bin/python bench/faults.py --trials 20
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import harness

LIMIT_S = 10.0


def run_trials(trials: int) -> dict[str, list[float]]:
    """Seconds per case over `trials` runs of the matrix, each on fresh servers."""
    from fault_matrix import run_matrix
    from servers import InfluxDB1, Mosquitto

    seen: dict[str, list[float]] = {}
    for trial in range(trials):
        with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
            base = Path(tmp)
            with Mosquitto(base / "mqtt") as broker, InfluxDB1(base / "influx") as influx:
                influx.create_database("matrix")
                for case, took in run_matrix(broker, influx, base).items():
                    seen.setdefault(case, []).append(took)
        print(f"trial {trial + 1}/{trials} done", file=sys.stderr)
    return seen


def summary(seen: dict[str, list[float]]) -> list[dict[str, object]]:
    """Median and maximum per case, the no-fault cases first."""
    rows = [{"case": case, "trials": len(times), "median_s": round(statistics.median(times), 3),
             "max_s": round(max(times), 3), "within_limit": max(times) <= LIMIT_S}
            for case, times in seen.items()]
    return sorted(rows, key=lambda r: (not str(r["case"]).startswith("no fault"), r["case"]))


def markdown(rows: list[dict[str, object]], trials: int) -> str:
    """The table for bench/results and README."""
    lines = [f"Armed-door alarm at the webhook, {trials} trial(s) per case (limit {LIMIT_S:g} s)",
             "", "| case | median s | max s |", "|---|---|---|"]
    lines += [f"| {r['case']} | {r['median_s']} | {r['max_s']} |" for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the trials, print and save the table; exit 1 when a case missed the limit."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=5, help="runs of the matrix (default 5)")
    parser.add_argument("--out", type=Path, default=None, help="results file stem")
    args = parser.parse_args(argv)
    rows = summary(run_trials(args.trials))
    text = markdown(rows, args.trials)
    print(text)
    stem = args.out or harness.results_path("faults", None, suffix="")
    Path(f"{stem}.json").write_text(json.dumps(
        {"date": harness.stamp(), "trials": args.trials, "limit_s": LIMIT_S, "cases": rows,
         **harness.machine()},
        indent=2))
    Path(f"{stem}.md").write_text(text)
    return 0 if all(r["within_limit"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
