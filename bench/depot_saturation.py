"""The depot bench's saturation rounds: each receiver takes the same run of messages as fast as
the broker delivers them; readings/s, CPU per reading and peak RSS per run."""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any

from depot_baselines import run_baseline
from depot_daemon import DaemonTarget
from depot_load import mix, publish
from depot_nodered import NodeRedTarget
from depot_rig import Rig
from harness import proc_cpu_s, proc_hwm_mib

DB_TIMEOUT_S = 60.0
Runs = dict[str, list[dict[str, Any]]]  # "bare q1", "depotwatch 100 q1", ... -> one per round


def run_daemon(target: DaemonTarget, port: int, messages: int, qos: int) -> dict[str, Any]:
    """One run into depotwatch: the time to take every message (the end alert), the time until
    InfluxDB holds every point, and a check that VictoriaMetrics does too.

    VictoriaMetrics is not the clock: right after a write its query results move up and down by
    a few hundred samples for about a second (recent data being merged), which would time its
    search path rather than depotwatch; its count must still come out exact.
    """
    expected = dict(mix(target.sensors, messages).expected)
    expected["portal"] += 1  # the end marker
    since_ns = time.time_ns()
    cpu0 = proc_cpu_s(target.pid)
    pub = publish(port, target.prefix, target.sensors, messages, qos, target.site)
    deadline = time.monotonic() + DB_TIMEOUT_S
    db_at: float | None = None
    vm_at: float | None = None
    while db_at is None or vm_at is None:
        counts = target.counts(since_ns)
        now = time.monotonic()
        if db_at is None and all(counts[m][0] == want for m, want in expected.items()):
            db_at = now
            cpu = proc_cpu_s(target.pid) - cpu0
        if vm_at is None and all(counts[m][1] == want for m, want in expected.items()):
            vm_at = now
        if now > deadline:
            raise RuntimeError(f"{target.name}: not all points arrived within {DB_TIMEOUT_S} s:"
                               f" expected {expected}, got {counts} (InfluxDB, VictoriaMetrics)")
        target.vm.force_flush()
        time.sleep(0.05)
    n = pub["messages"]
    ingest_s, db_s = pub["marker_at"] - pub["start"], db_at - pub["start"]
    return {"messages": n, "points": expected, "elapsed_s": ingest_s,
            "readings_per_s": n / ingest_s, "to_db_s": db_s, "to_db_readings_per_s": n / db_s,
            "vm_visible_s": vm_at - pub["start"],
            "cpu_us_per_reading": cpu / n * 1e6, "rss_peak_mib": proc_hwm_mib(target.pid),
            "publisher_s": pub["pub_end"] - pub["start"]}


def run_nodered(target: NodeRedTarget, port: int, sensors: int, messages: int, qos: int,
                ) -> dict[str, Any]:
    """One run into Node-RED: until InfluxDB holds a point per message."""
    since_ns = time.time_ns()
    cpu0 = proc_cpu_s(target.pid)
    pub = publish(port, target.prefix, sensors, messages, qos)
    n = pub["messages"]
    # It writes one request per message and drops what InfluxDB refuses: wait until every point
    # is in, or until the count has not moved for 3 s (the rest is lost).
    got, db_at = 0, time.monotonic()
    while got < n and time.monotonic() - db_at < 3.0:
        time.sleep(0.1)
        now_got = target.count(since_ns)
        if now_got != got:
            got, db_at = now_got, time.monotonic()
    cpu = proc_cpu_s(target.pid) - cpu0
    db_s = db_at - pub["start"]
    return {"messages": n, "stored": got, "lost": n - got, "elapsed_s": db_s,
            "readings_per_s": got / db_s, "to_db_readings_per_s": got / db_s,
            "cpu_us_per_reading": cpu / max(got, 1) * 1e6,
            "rss_peak_mib": proc_hwm_mib(target.pid),
            "publisher_s": pub["pub_end"] - pub["start"]}


def settle(pid: int, max_s: float = 60.0) -> None:
    """Wait until a receiver is idle (under 10 % of a core for 0.5 s): Node-RED keeps working
    through its backlog of failed writes long after a run, and would slow the next one."""
    deadline = time.monotonic() + max_s
    while time.monotonic() < deadline:
        cpu0 = proc_cpu_s(pid)
        time.sleep(0.5)
        if proc_cpu_s(pid) - cpu0 < 0.05:
            return


def attempt(fn: Any, *args: Any) -> dict[str, Any]:
    """`fn(*args)`, or {"error": ...} when the run failed (the rounds go on)."""
    try:
        result: dict[str, Any] = fn(*args)
    except (RuntimeError, subprocess.TimeoutExpired) as exc:
        return {"error": f"{type(exc).__name__}: {exc}"}
    return result


def _record(runs: Runs, key: str, result: dict[str, Any], rnd: int) -> None:
    result["round"] = rnd
    runs.setdefault(key, []).append(result)
    text = result.get("error") or (
        f"{result['readings_per_s']:,.0f}/s"
        + (f", to DB {result['to_db_readings_per_s']:,.0f}/s"
           if "to_db_readings_per_s" in result else "")
        + f", {result['cpu_us_per_reading']:.1f} µs CPU, RSS {result['rss_peak_mib']:.0f} MiB")
    print(f"round {rnd + 1} {key:<22} {text}", file=sys.stderr, flush=True)


def run_rounds(args: argparse.Namespace, rig: Rig) -> Runs:
    """Every round: bare gmqtt, the link and depotwatch at each QoS, then the 2,000-sensor and
    the fsync-off daemon, then Node-RED; each run's figures, progress on stderr."""
    runs: Runs = {}
    port, big, sensors, messages = rig.broker.port, args.big_sensors, args.sensors, args.messages
    for rnd in range(args.runs):
        for qos in [int(q) for q in args.qos.split(",")]:
            tag = f"r{rnd}q{qos}"
            _record(runs, f"bare q{qos}",
                    attempt(run_baseline, port, sensors, messages, qos, tag), rnd)
            _record(runs, f"link q{qos}",
                    attempt(run_baseline, port, sensors, messages, qos, tag, True), rnd)
            _record(runs, f"depotwatch {sensors} q{qos}",
                    attempt(run_daemon, rig.daemons["dw100"], port, messages, qos), rnd)
        _record(runs, f"depotwatch {big} q1",
                attempt(run_daemon, rig.daemons["dw2000"], port, messages, 1), rnd)
        _record(runs, f"depotwatch {sensors} q1 nofsync",
                attempt(run_daemon, rig.daemons["nofsync"], port, messages, 1), rnd)
        peer = rig.peer
        if peer is None:
            continue
        for qos in args.peer_qos:
            _record(runs, f"node-red q{qos}",
                    attempt(run_nodered, peer, port, sensors, args.peer_messages, qos), rnd)
            settle(peer.pid)
    return runs
