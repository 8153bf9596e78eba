"""Depot bench at fixed rates (issue 29): CPU at the rates a depot runs at, not at saturation.

A paced publisher (``depot.py _pace``: the depot mix, QoS 1, pre-encoded packets on a raw socket,
sent every 10 ms) sends 100, 500, 1,500 and 5,000 readings/s. In the same run, alternating
(bare, depotwatch, bare, depotwatch, ...), two receivers take them from one Mosquitto:

- ``bare``: gmqtt as its users write it (MQTT 5, persistent session, QoS 1, PUBACK after an
  async ``on_message`` that counts and discards), in its own process;
- ``depotwatch``: ``depotwatch run`` with the bench's depot config (``depot_mix.py``: every rule
  kind, the durable spool with fsync, InfluxDB 1.6.7 and VictoriaMetrics writers, a webhook
  notifier), started once and kept running across the phases.

Per phase: CPU % of a core (user + system of the receiving process only, from /proc, over
``--window-s`` after ``--warmup-s``), µs of CPU per reading, peak RSS, readings received (the
bare client's own count; depotwatch's ``depotwatch_readings_total``) against sent, and the
ratio to the bare client; medians over ``--alternations``. Idle: both receivers with nothing
arriving. Results to ``bench/results/depot-rate-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import stage_times
import yaml
from depot_daemon import DaemonTarget
from depot_latency import WebhookReceiver
from depot_load import child
from harness import (
    BENCH_DIR,
    HOST,
    last_json,
    machine,
    proc_cpu_s,
    proc_hwm_mib,
    readline,
    results_path,
    spawn,
    spawn_py_spy,
    spawn_strace,
    stamp,
    start_broker,
)
from mqtt_wire import SESSION_EXPIRY_S, gmqtt_ready
from servers import InfluxDB1, VictoriaMetrics, free_port

from rules.kinds import RULE_KINDS

RATE_SCRIPT = BENCH_DIR / "depot_rate.py"
RULE_NAMES = [str(kind.model_fields["type"].default) for kind in RULE_KINDS]


def without_parts(value: str) -> list[str]:
    """`--without`'s value checked: a typo would measure the whole daemon under another name."""
    parts = value.split(",")
    unknown = sorted(set(parts) - {"influxdb", "fsync", "rules", *RULE_NAMES})
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown part(s) {unknown}; known: influxdb, fsync, rules, {', '.join(RULE_NAMES)}")
    return parts


def role_bare(args: argparse.Namespace) -> None:
    """Bare gmqtt counting and discarding until SIGTERM; prints READY, then its count."""
    import gmqtt

    received = 0

    async def main() -> None:
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        client = gmqtt.Client(args.client_id, clean_session=False,
                              optimistic_acknowledgement=False,
                              session_expiry_interval=SESSION_EXPIRY_S)

        async def on_message(client: Any, topic: str, payload: bytes, qos: int,
                             properties: Any) -> int:
            nonlocal received
            received += 1
            return 0

        await gmqtt_ready(client, args.port, f"{args.prefix}/#", on_message)
        print("READY", flush=True)
        await stop.wait()
        await client.disconnect()

    asyncio.run(main())
    print(json.dumps({"received": received}), flush=True)


def pin(pid: int, cpu: int | None) -> None:
    """Every thread of `pid` onto one CPU (threads it starts later inherit it); None: no pin."""
    if cpu is None:
        return
    for tid in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(tid), {cpu})


def readings_total(api_url: str) -> int:
    """Messages the daemon has decoded so far (the sum of depotwatch_readings_total)."""
    with urllib.request.urlopen(f"{api_url}/metrics", timeout=5) as reply:
        text = reply.read().decode()
    return int(sum(float(m.group(1)) for m in re.finditer(
        r"^depotwatch_readings_total(?:\{[^}]*\})?\s+(\S+)$", text, re.MULTILINE)))


class Receivers:
    """The two receivers of a run: the bare client (a process per phase) and the daemon."""

    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.broker = start_broker()
        self.influx, self.vm = InfluxDB1(workdir / "influxdb1"), VictoriaMetrics(workdir / "vm")
        self.influx.start()
        self.vm.start()
        self.webhook = WebhookReceiver()
        # who -> (daemon, its API, the tree it runs from); "base": --base-tree's code.
        self.daemons: dict[str, tuple[DaemonTarget, str, str | None]] = {}
        trees = {"depotwatch": None, **({"base": args.base_tree} if args.base_tree else {})}
        for who, tree in trees.items():
            daemon = DaemonTarget("rate" if who == "depotwatch" else who, args.sensors, True,
                                  self.broker.port, self.influx, self.vm, workdir,
                                  self.webhook.url)
            self.daemons[who] = (daemon, _with_api(daemon, {}), tree)
        for parts in args.without or []:
            self._add_without(parts, workdir)
        self.phases = 0
        if args.stage_times:
            stage_times.launch_timed([d for d, _, _ in self.daemons.values()], args.stage_times)
        # --one-core: the receiver alone on CPU 0; broker, publisher and this script on CPU 1.
        self.cpu, other = (0, 1) if args.one_core else (None, None)
        if other is not None:
            pin(os.getpid(), other)
            pin(self.broker.proc.pid, other)

    def _add_without(self, parts: list[str], workdir: Path) -> None:
        """One more depotwatch, this tree's, with `parts` of its config taken out: `influxdb`
        (no writers), `fsync` (the spool's off), `rules` (every rule kind), or a rule kind."""
        # Its name goes into the site id and MQTT client id (64 characters at most).
        who = "without-" + ("-".join(parts) if len("-".join(parts)) <= 40
                            else f"{parts[0]}-and-{len(parts) - 1}-more")
        daemon = DaemonTarget(who, self.args.sensors, True, self.broker.port, self.influx,
                              self.vm, workdir, self.webhook.url)
        config: dict[str, Any] = yaml.safe_load(daemon.config_path.read_text())
        off = {kind for part in parts for kind in (RULE_NAMES if part == "rules" else [part])
               if kind in RULE_NAMES}
        config["rules"] = [r for r in config["rules"] if r["type"] not in off] + [
            {"type": kind, "enabled": False} for kind in sorted(off)]
        if "influxdb" in parts:
            config["influxdb"] = []
        if "fsync" in parts:
            config["spool"] = {"fsync": False}
        self.daemons[who] = (daemon, _with_api(daemon, config), None)

    def start(self) -> None:
        """Start the daemons and wait for their APIs."""
        for daemon, api_url, tree in self.daemons.values():
            saved = os.environ.get("PYTHONPATH")
            if tree is not None:  # the child imports the other tree's daemon
                os.environ["PYTHONPATH"] = str(Path(tree).resolve())
            try:
                daemon.start()
            finally:
                if saved is not None:
                    os.environ["PYTHONPATH"] = saved
            pin(daemon.pid, self.cpu)
            deadline = time.monotonic() + 30
            while True:
                try:
                    readings_total(api_url)
                    break
                except OSError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)

    def close(self) -> None:
        """Stop the daemons and the servers."""
        for daemon, _, _ in self.daemons.values():
            daemon.stop()
        self.webhook.close()
        self.vm.close()
        self.influx.close()
        self.broker.close()


def _with_api(daemon: DaemonTarget, changes: dict[str, Any]) -> str:
    """Write the daemon's config with `changes` and its API on a free port; the API's URL."""
    config = {**yaml.safe_load(daemon.config_path.read_text()), **changes}
    api_port = free_port()
    # /metrics without a token: loopback only, a bench daemon.
    config["api"] = {"listen_host": HOST, "listen_port": api_port,
                     "metrics_token_required": False}
    daemon.config_path.write_text(yaml.safe_dump(config))
    return f"http://{HOST}:{api_port}"


def measure(pid: int, warmup_s: float, window_s: float, timed: bool = False,
            ) -> tuple[float, float]:
    """CPU seconds of `pid` over the window after the warm-up; and its peak RSS, MiB. `timed`:
    a --stage-times daemon, asked for its stages' totals as the window opens and closes."""
    time.sleep(warmup_s)
    cpu0 = proc_cpu_s(pid)
    if timed:
        stage_times.mark(pid)
    time.sleep(window_s)
    if timed:
        stage_times.mark(pid)
    return proc_cpu_s(pid) - cpu0, proc_hwm_mib(pid)


def phase(rx: Receivers, who: str, rate: int) -> dict[str, Any]:
    """One receiver at one rate (0: idle); CPU, µs per reading, RSS, received vs sent."""
    args = rx.args
    rx.phases += 1
    bare = None
    if who == "bare":
        prefix = f"b/bare-{rx.phases}"
        bare = spawn(RATE_SCRIPT, "_bare", ["--port", str(rx.broker.port), "--prefix", prefix,
                                            "--client-id", f"bare-{rx.phases}"])
        assert bare.stdout is not None
        if (readline(bare.stdout, 30) or "").strip() != "READY":
            bare.kill()
            raise RuntimeError("bare subscriber not ready")
        pid = bare.pid
        pin(pid, rx.cpu)
    else:
        daemon, api_url, _ = rx.daemons[who]
        prefix, pid = daemon.prefix, daemon.pid
        before = readings_total(api_url)
    pace = None
    if rate:
        pace = child("_pace", ["--port", str(rx.broker.port), "--prefix", prefix,
                               "--sensors", str(args.sensors), "--messages", "20000",
                               "--rate", str(rate),
                               "--seconds", str(args.warmup_s + args.window_s + 0.5)])
        assert pace.stdout is not None
        readline(pace.stdout, 30)
    spy = None
    if args.py_spy and who != "bare":
        out_path = Path(args.py_spy) / f"{who}-{rate}-{rx.phases}.txt"
        spy = spawn_py_spy(pid, args.warmup_s + 0.5, args.window_s - 1.0, out_path)
    elif args.strace:
        out_path = Path(args.strace) / f"{who}-{rate}-{rx.phases}.txt"
        spy = spawn_strace(pid, args.warmup_s + 0.5, args.window_s - 1.0, out_path)
    timed = bool(args.stage_times) and who != "bare"
    cpu, rss = measure(pid, args.warmup_s, args.window_s, timed)
    if spy is not None:
        spy.wait(timeout=60)
    sent = 0
    if pace is not None:
        out, _ = pace.communicate(timeout=120)
        sent = int((last_json(out) or {}).get("sent", -1))
    time.sleep(1.0)  # the last commits and PUBACKs
    if bare is not None:
        bare.terminate()
        out, _ = bare.communicate(timeout=30)
        received = int((last_json(out) or {}).get("received", -1))
    else:
        received = readings_total(api_url) - before
    return {"who": who, "rate": rate, "cpu_pct": 100.0 * cpu / args.window_s,
            "us_per_reading": cpu / (rate * args.window_s) * 1e6 if rate else None,
            "rss_peak_mib": rss, "sent": sent, "received": received,
            **({"stages": stage_times.window(stage_times.dumps_of(pid))} if timed else {})}


def summarize(phases: list[dict[str, Any]], rates: list[int], whos: list[str],
              ) -> list[dict[str, Any]]:
    """Medians per rate and receiver, and depotwatch's CPU over the bare client's."""
    rows = []
    for rate in rates:
        row: dict[str, Any] = {"rate": rate}
        for who in whos:
            mine = [p for p in phases if p["rate"] == rate and p["who"] == who]
            row[who] = {
                "cpu_pct": statistics.median(p["cpu_pct"] for p in mine),
                "us_per_reading": (statistics.median(p["us_per_reading"] for p in mine)
                                   if rate else None),
                "rss_peak_mib": max(p["rss_peak_mib"] for p in mine),
                "sent": sum(p["sent"] for p in mine),
                "received": sum(p["received"] for p in mine),
                "cpu_pct_each": [round(p["cpu_pct"], 2) for p in mine]}
        row["ratio"] = row["depotwatch"]["cpu_pct"] / max(row["bare"]["cpu_pct"], 1e-9)
        for who in whos[2:]:  # --base-tree and --without receivers: "ratio_<who>"
            row[f"ratio_{who}"] = row[who]["cpu_pct"] / max(row["bare"]["cpu_pct"], 1e-9)
        rows.append(row)
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    """The README's table."""
    out = ["| rate/s | bare CPU % | depotwatch CPU % | ratio | µs/reading bare / depotwatch "
           "| RSS MiB bare / depotwatch | received / sent (depotwatch) |",
           "|---|---|---|---|---|---|---|"]
    for r in rows:
        b, d = r["bare"], r["depotwatch"]
        us = (f"{b['us_per_reading']:,.0f} / {d['us_per_reading']:,.0f}"
              if r["rate"] else "-")
        ratio = f"{r['ratio']:.2f}x" if r["rate"] else "-"
        out.append(f"| {r['rate'] or 'idle'} | {b['cpu_pct']:.2f} | {d['cpu_pct']:.2f} | "
                   f"{ratio} | {us} | {b['rss_peak_mib']:.0f} / "
                   f"{d['rss_peak_mib']:.0f} | {d['received']:,} / {d['sent']:,} |")
        for who in [w for w in r if w.startswith("ratio_")]:
            other = r[who.removeprefix("ratio_")]
            ratio = f"{r[who]:.2f}x" if r["rate"] else "-"
            name = "base tree" if who == "ratio_base" else who.removeprefix("ratio_")
            out.append(f"| ({name}) | | {other['cpu_pct']:.2f} | {ratio} | | "
                       f"{other['rss_peak_mib']:.0f} | {other['received']:,} / "
                       f"{other['sent']:,} |")
    return "\n".join(out)


def rss_mib(pid: int) -> float:
    """Resident set size now (VmRSS), MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main_soak(args: argparse.Namespace) -> None:
    """Every daemon at once at the first rate for `--soak-min` minutes: RSS every 30 s (what
    a day at a depot's rate keeps in memory: replay window, receipts, the book)."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # the servers stopped too
    rate = int(args.rates.split(",")[0])
    workdir = Path(tempfile.mkdtemp(prefix="depotwatch-soak-"))
    rx = Receivers(args, workdir)
    samples: dict[str, list[tuple[float, float]]] = {who: [] for who in rx.daemons}
    try:
        rx.start()
        paces = [child("_pace", ["--port", str(rx.broker.port), "--prefix", daemon.prefix,
                                 "--sensors", str(args.sensors), "--messages", "20000",
                                 "--rate", str(rate), "--seconds", str(args.soak_min * 60)])
                 for daemon, _, _ in rx.daemons.values()]
        start = time.monotonic()
        while any(p.poll() is None for p in paces):
            for who, (daemon, _, _) in rx.daemons.items():
                samples[who].append((round(time.monotonic() - start), rss_mib(daemon.pid)))
            print(json.dumps({w: s[-1] for w, s in samples.items()}), file=sys.stderr,
                  flush=True)
            time.sleep(30)
        for p in paces:
            p.communicate(timeout=60)
    finally:
        rx.close()
        shutil.rmtree(workdir, ignore_errors=True)
    doc = {"date": stamp(), "machine": machine(), "args": vars(args), "rate": rate,
           "rss_mib": samples}
    path = results_path("depot-soak", args.output)
    path.write_text(json.dumps(doc, indent=1))
    for who, series in samples.items():
        print(f"{who}: RSS {series[0][1]:.1f} MiB at start, {series[-1][1]:.1f} MiB after "
              f"{series[-1][0]} s at {rate}/s")
    print(f"wrote {path}")


def main_rate(args: argparse.Namespace) -> None:
    """Alternate the receivers over the rates; medians, JSON and the table."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    rates = [int(r) for r in args.rates.split(",")]
    load = [os.getloadavg()]
    workdir = Path(tempfile.mkdtemp(prefix="depotwatch-rate-"))
    rx = Receivers(args, workdir)
    phases: list[dict[str, Any]] = []
    try:
        rx.start()
        for round_ in range(args.alternations):
            for rate in [0, *rates]:
                for who in ["bare", *rx.daemons]:
                    phases.append(phase(rx, who, rate))
                    print(json.dumps({"round": round_, **phases[-1]}), file=sys.stderr,
                          flush=True)
    finally:
        rx.close()
        shutil.rmtree(workdir, ignore_errors=True)
    load.append(os.getloadavg())
    rows = summarize(phases, [0, *rates], ["bare", *rx.daemons])
    doc = {"date": stamp(), "machine": machine(load_average=load), "args": vars(args),
           "rows": rows, "phases": phases}
    path = results_path("depot-rate-one-core" if args.one_core else "depot-rate", args.output)
    path.write_text(json.dumps(doc, indent=1))
    print(table(rows) + stage_times.table([p for p in phases if p["rate"]]))
    print(f"load average {load[0][0]:.2f} -> {load[1][0]:.2f}; wrote {path}")


def main(argv: list[str] | None = None) -> None:
    """CLI: the fixed-rate bench, or (internally) the bare subscriber."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "_bare":
        p = argparse.ArgumentParser(prog="depot_rate.py _bare")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--prefix", required=True)
        p.add_argument("--client-id", required=True)
        role_bare(p.parse_args(argv[1:]))
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rates", default="100,500,1500,5000", help="readings/s, comma-separated")
    p.add_argument("--alternations", type=int, default=3, help="rounds; medians reported (3)")
    p.add_argument("--window-s", type=float, default=10.0, help="measured window (10)")
    p.add_argument("--warmup-s", type=float, default=3.0, help="before the window (3)")
    p.add_argument("--sensors", type=int, default=100, help="sensors of the depot (100)")
    p.add_argument("--base-tree", help="a second depotwatch from this checkout (the code "
                   "before a change), alternating with the others in the same run")
    p.add_argument("--without", action="append", metavar="PARTS", type=without_parts,
                   help="one more depotwatch without PARTS (comma-separated: influxdb, fsync, "
                   "rules or a rule kind), alternating with the others; repeatable")
    p.add_argument("--one-core", action="store_true",
                   help="the receiver pinned to CPU 0, broker and publisher to CPU 1 (taskset)")
    p.add_argument("--strace", metavar="DIR",
                   help="count every receiver's system calls with strace into DIR")
    p.add_argument("--py-spy", metavar="DIR",
                   help="record each depotwatch phase with py-spy (on PATH) into DIR")
    p.add_argument("--stage-times", metavar="DIR", help="time the daemons' stages inside them "
                   "(bench/stage_times.py; dumps in DIR): µs per reading of each")
    p.add_argument("--soak-min", type=float, metavar="MINUTES",
                   help="instead: every daemon at once at the first rate for MINUTES, RSS "
                   "every 30 s (results/depot-soak-<date>.json)")
    p.add_argument("--output", help="JSON path (results/depot-rate[-one-core]-<date>.json)")
    parsed = p.parse_args(argv)
    (main_soak if parsed.soak_min else main_rate)(parsed)


if __name__ == "__main__":
    main()
