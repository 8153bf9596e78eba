"""One HQ replica's capacity: heartbeats and alert messages per second that `depotwatch hq`
takes with many depots configured, and its CPU per message against bare gmqtt receiving the
same messages from the same broker in the same run (the ratio is the claim, not the µs).

    python bench/hq_capacity.py [--depots 2000] [--rounds 10] [--alerts 5] [--runs 3]

Each run: a bare gmqtt subscriber on `depotwatch/#` takes one phase's messages and discards
them; then `depotwatch hq` (a child process, N depots) takes the same messages. Heartbeat
phase: `rounds` heartbeats per depot, QoS 1, as fast as the broker takes them; done when HQ's
API shows every depot's last one. Alert phase: `alerts` retained-alert messages per depot
(distinct alarms); done when HQ's API lists them all. HQ's CPU is read from /proc; the API
polls' own CPU is measured afterwards and taken off.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

from harness import (
    HOST,
    REPO_DIR,
    cpu_s,
    last_json,
    machine,
    proc_cpu_s,
    proc_hwm_mib,
    readline,
    results_path,
    stamp,
    start_broker,
)
from mqtt_wire import RawClient, gmqtt_ready, publish_packet

TOKEN = "bench-hq-officer-token-0123456789"
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _messages(phase: str, depots: int, rounds: int, alerts: int, tag: str) -> list[tuple[bytes,
                                                                                         bytes]]:
    out: list[tuple[bytes, bytes]] = []
    now = time.time()
    if phase == "heartbeat":
        for r in range(rounds):
            version = f"done-{tag}" if r == rounds - 1 else f"r{r}"
            for d in range(depots):
                beat = {"site": f"d{d}", "version": version, "sent_s": now + r,
                        "interval_s": 30.0, "spool_points": 0, "lag_s": 0.0,
                        "active_alarms": 0, "unacknowledged_alarms": 0, "last_reading_s": now}
                out.append((f"depotwatch/d{d}/gateway/heartbeat".encode(),
                            json.dumps(beat).encode()))
        return out
    for a in range(alerts):
        for d in range(depots):
            key = f"door_armed.D{a}"
            alert = {"site": f"d{d}", "key": key, "rule": "door_armed", "subject": f"D{a}",
                     "severity": "critical", "state": "firing", "summary": "door opened",
                     "storehouse": "S1", "started_ns": int(now * 1e9),
                     "changed_ns": int(now * 1e9) + a, "facts": {"lifecycle": "firing"}}
            out.append((f"depotwatch/d{d}/alerts/{key}".encode(), json.dumps(alert).encode()))
    return out


def _publish(port: int, messages: list[tuple[bytes, bytes]], tag: str) -> float:
    """QoS 1, at most 1,000 unacknowledged; returns the monotonic start."""
    client = RawClient(port, f"bench-hq-pub-{tag}")
    start = time.monotonic()
    for n, (topic, payload) in enumerate(messages):
        while n - client.pubacks >= 1000:
            time.sleep(0.0005)
        client.sock.sendall(publish_packet(topic, payload, 1, n % 65535 + 1))
    while client.pubacks < len(messages):
        time.sleep(0.001)
    client.close()
    return start


def role_bare(args: argparse.Namespace) -> None:
    """gmqtt receiving and discarding `--expected` messages; one JSON line."""
    import gmqtt

    state = {"count": 0, "cpu0": 0.0, "cpu1": 0.0, "last": 0.0}

    async def main() -> None:
        done = asyncio.Event()
        client = gmqtt.Client(f"bench-hq-bare-{args.tag}", optimistic_acknowledgement=False)

        async def on_message(client: Any, topic: str, payload: bytes, qos: int,
                             properties: Any) -> int:
            if state["count"] == 0:
                state["cpu0"] = cpu_s()
            state["count"] += 1
            if state["count"] >= args.expected:
                state["cpu1"], state["last"] = cpu_s(), time.monotonic()
                done.set()
            return 0

        await gmqtt_ready(client, args.port, "depotwatch/#", on_message)
        await asyncio.wait_for(done.wait(), 600)
        await client.disconnect()

    asyncio.run(main())
    print(json.dumps({"cpu_s": state["cpu1"] - state["cpu0"], "last": state["last"]}),
          flush=True)


def _bare(port: int, messages: list[tuple[bytes, bytes]], tag: str) -> dict[str, float]:
    sub = subprocess.Popen([sys.executable, __file__, "_bare", "--port", str(port), "--tag", tag,
                            "--expected", str(len(messages))], stdout=subprocess.PIPE, text=True)
    assert sub.stdout is not None
    if (readline(sub.stdout, 30) or "").strip() != "READY":
        sub.kill()
        raise RuntimeError("bare subscriber not ready")
    start = _publish(port, messages, tag)
    out, _ = sub.communicate(timeout=600)
    res = last_json(out)
    assert res is not None
    n = len(messages)
    return {"per_s": n / (res["last"] - start), "cpu_us": res["cpu_s"] / n * 1e6}


class HqChild:
    """`depotwatch hq` with `depots` depots, its API on a free port."""

    def __init__(self, port: int, depots: int, workdir: Path, tag: str) -> None:
        config = {
            "depots": [{"site": f"d{d}"} for d in range(depots)],
            "mqtt": {"host": HOST, "port": port, "client_id": f"bench-hq-{tag}"},
            "unreachable_after_s": 3600, "state_dir": str(workdir / "state"),
            "api": {"listen_port": 0, "officers": [
                {"name": "bench", "role": "viewer",
                 "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]}}
        path = workdir / "hq.yaml"
        path.write_text(json.dumps(config))
        self.log = workdir / "hq.log"
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "daemon.cli", "--log-level", "info", "hq", "-c",
                 str(path)], stdout=log, stderr=subprocess.STDOUT, cwd=REPO_DIR)
        deadline = time.monotonic() + 60
        self.url = ""
        while time.monotonic() < deadline and not ("subscribed to" in self.log.read_text()
                                                   and self.url):
            for line in self.log.read_text().splitlines():
                if "HQ console and API on " in line:
                    self.url = line.rsplit(" ", 1)[-1]
            time.sleep(0.1)
        if not self.url:
            raise RuntimeError(self.log.read_text()[-2000:])
        time.sleep(0.5)

    def depots(self) -> list[dict[str, Any]]:
        request = urllib.request.Request(f"{self.url}/api/depots",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with _OPENER.open(request, timeout=30) as answer:
            found: list[dict[str, Any]] = json.loads(answer.read())["depots"]
            return found

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _through_hq(hq: HqChild, messages: list[tuple[bytes, bytes]], tag: str,
                done: Any, port: int) -> dict[str, float]:
    cpu0 = proc_cpu_s(hq.proc.pid)
    start = _publish(port, messages, tag)
    polls = 0
    while not done(hq.depots()):
        polls += 1
        time.sleep(0.5)
    end = time.monotonic()
    cpu = proc_cpu_s(hq.proc.pid) - cpu0
    # What the API polls cost HQ, measured now that it is idle, taken off.
    before = proc_cpu_s(hq.proc.pid)
    for _ in range(5):
        hq.depots()
    per_poll = (proc_cpu_s(hq.proc.pid) - before) / 5
    n = len(messages)
    return {"per_s": n / (end - start), "cpu_us": max(cpu - (polls + 1) * per_poll, 0) / n * 1e6,
            "poll_cpu_ms": per_poll * 1e3}


def run(args: argparse.Namespace) -> dict[str, Any]:
    broker = start_broker()
    results: dict[str, list[dict[str, float]]] = {}
    try:
        for n in range(args.runs):
            for phase in ("heartbeat", "alert"):
                tag = f"{phase}-{n}-{int(time.time())}"
                messages = _messages(phase, args.depots, args.rounds, args.alerts, tag)
                bare = _bare(broker.port, messages, tag)
                with tempfile.TemporaryDirectory(prefix="bench-hq-") as workdir:
                    hq = HqChild(broker.port, args.depots, Path(workdir), tag)
                    try:
                        if phase == "heartbeat":
                            def done(ds: list[dict[str, Any]], tag: str = tag) -> bool:
                                return all((d["heartbeat"] or {}).get("version") == f"done-{tag}"
                                           for d in ds)
                        else:
                            def done(ds: list[dict[str, Any]], tag: str = tag) -> bool:
                                return sum(d["open_alarms"] for d in ds) >= \
                                    args.depots * args.alerts
                        seen = _through_hq(hq, messages, tag, done, broker.port)
                        seen["rss_peak_mib"] = proc_hwm_mib(hq.proc.pid)
                    finally:
                        hq.stop()
                seen["ratio_cpu_vs_bare"] = seen["cpu_us"] / bare["cpu_us"]
                results.setdefault(phase, []).append({**seen, "bare_per_s": bare["per_s"],
                                                      "bare_cpu_us": bare["cpu_us"]})
                print(phase, n, json.dumps(results[phase][-1]), flush=True)
    finally:
        broker.stop()
    summary = {phase: {k: statistics.median(r[k] for r in runs) for k in runs[0]}
               for phase, runs in results.items()}
    return {"date": stamp(), "machine": machine(), "depots": args.depots,
            "rounds": args.rounds, "alerts_per_depot": args.alerts, "runs": results,
            "median": summary}


def main() -> None:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("role", nargs="?", default="run", choices=["run", "_bare"])
    parser.add_argument("--depots", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--alerts", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--tag", default="")
    parser.add_argument("--expected", type=int, default=0)
    parser.add_argument("-o", "--output")
    args = parser.parse_args()
    if args.role == "_bare":
        role_bare(args)
        return
    report = run(args)
    path = results_path("hq-capacity", args.output)
    path.write_text(json.dumps(report, indent=2) + "\n")
    for phase, m in report["median"].items():
        print(f"{phase}: HQ {m['per_s']:,.0f} msg/s, {m['cpu_us']:.0f} µs CPU/msg "
              f"(bare gmqtt {m['bare_per_s']:,.0f} msg/s, {m['bare_cpu_us']:.0f} µs; "
              f"ratio {m['ratio_cpu_vs_bare']:.1f}x), peak RSS {m['rss_peak_mib']:.0f} MiB")
    print(f"written {path}")


if __name__ == "__main__":
    main()
