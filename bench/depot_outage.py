"""After an InfluxDB outage (issue 29): how fast the backlog drains while the depot runs on.

With the real InfluxDB 1.6.7 and Mosquitto: `depotwatch run` (the bench's depot config, every
rule kind, durable spool with fsync, one InfluxDB v1 target, a webhook) takes the depot mix while
InfluxDB is stopped. The backlog of an outage of ``--outage-s`` at ``--live-rate`` readings/s
(default 1 h at 500/s: 1.8 M readings) is built faster than real time: the paced publisher sends
that many messages at ``--fill-rate`` and the daemon spools them (every one acknowledged, as in
production). Then, with live readings at ``--live-rate`` and a probe raising alarms (unknown tags
leaving through a portal, timed from publish to the alert on MQTT and at the webhook), InfluxDB
comes back. Reported: the points in the backlog, seconds from InfluxDB's return to the first
write and to an empty backlog, points written per second meanwhile (against the live rate), the
alarm latency of the alarms published while it drained, and InfluxDB's count of every point.
Results to ``bench/results/depot-outage-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import types
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from depot_daemon import DaemonTarget
from depot_latency import WebhookReceiver, match, percentiles
from depot_load import child
from harness import HOST, last_json, machine, readline, results_path, stamp, start_broker
from servers import InfluxDB1, free_port


def metric(api_url: str, name: str) -> float:
    """The sum of a metric's samples on /metrics (0 when it has none)."""
    with urllib.request.urlopen(f"{api_url}/metrics", timeout=10) as reply:
        text = reply.read().decode()
    return sum(float(m.group(1)) for m in re.finditer(
        rf"^{name}(?:\{{[^}}]*\}})?\s+(\S+)$", text, re.MULTILINE))


def start_daemon(args: argparse.Namespace, workdir: Path, broker_port: int, influx: InfluxDB1,
                 webhook: WebhookReceiver) -> tuple[DaemonTarget, str]:
    """The daemon with one InfluxDB v1 target and its /metrics open on loopback."""
    no_vm = types.SimpleNamespace(url="http://127.0.0.1:9")  # its target is dropped below
    daemon = DaemonTarget("outage", args.sensors, True, broker_port, influx, no_vm,  # type: ignore[arg-type]
                          workdir, webhook.url)
    config = yaml.safe_load(daemon.config_path.read_text())
    config["influxdb"] = [t for t in config["influxdb"] if t["api"] == "v1"]
    api_port = free_port()
    config["api"] = {"listen_host": HOST, "listen_port": api_port,
                     "metrics_token_required": False}
    daemon.config_path.write_text(yaml.safe_dump(config))
    daemon.start()
    return daemon, f"http://{HOST}:{api_port}"


def wait_for(what: str, ready: Any, timeout_s: float, every_s: float = 0.5) -> None:
    """Poll `ready()` until it is true; SystemExit after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    while not ready():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(every_s)


def build_backlog(args: argparse.Namespace, daemon: DaemonTarget, api_url: str,
                  broker_port: int) -> dict[str, Any]:
    """The outage's readings, published at the fill rate and spooled with InfluxDB away."""
    readings = int(args.outage_s * args.live_rate)
    before = metric(api_url, "depotwatch_readings_total")
    t0 = time.monotonic()
    sent = 0
    while sent < readings:  # the broker's back-pressure slows a publisher below its rate
        fill = child("_pace", ["--port", str(broker_port), "--prefix", daemon.prefix,
                               "--sensors", str(args.sensors), "--messages", "20000", "--rate",
                               str(args.fill_rate), "--seconds",
                               str(max(1.0, (readings - sent) / args.fill_rate))])
        out, _ = fill.communicate(timeout=readings / args.fill_rate + 600)
        sent += int((last_json(out) or {}).get("sent", 0))
    wait_for("the daemon to take the backlog", lambda: metric(
        api_url, "depotwatch_readings_total") - before >= sent, 600)
    took_s = time.monotonic() - t0
    # The last commit of the fill, then what waits for InfluxDB.
    time.sleep(1.0)
    points = metric(api_url, "depotwatch_spool_backlog_points")
    return {"readings_sent": sent, "readings_taken": int(
        metric(api_url, "depotwatch_readings_total") - before), "fill_s": took_s,
        "backlog_points": int(points)}


def watch(args: argparse.Namespace, api_url: str, influx: InfluxDB1, seconds: float,
          ) -> tuple[float, list[tuple[float, float, float]], float | None, float | None,
                     float | None]:
    """InfluxDB back; written and backlog every 0.5 s for `seconds`: when InfluxDB came back
    (monotonic), the samples, and seconds to the first write and to an empty backlog (with
    the monotonic time of that)."""
    written0 = metric(api_url, "depotwatch_writer_points_written_total")
    influx.start()
    back = time.monotonic()
    samples: list[tuple[float, float, float]] = []  # since back, written, backlog
    first_write = drained = drained_at = None
    while time.monotonic() - back < seconds:
        written = metric(api_url, "depotwatch_writer_points_written_total") - written0
        backlog = metric(api_url, "depotwatch_spool_backlog_points")
        since = time.monotonic() - back
        samples.append((since, written, backlog))
        if first_write is None and written > 0:
            first_write = since
        # Empty: no more than a few commits of live points wait (one flush interval's).
        if drained is None and first_write is not None and backlog <= 2 * args.live_rate:
            drained, drained_at = since, time.monotonic()
        time.sleep(0.5)
    return back, samples, first_write, drained, drained_at


def drain(args: argparse.Namespace, daemon: DaemonTarget, api_url: str, broker_port: int,
          influx: InfluxDB1, webhook: WebhookReceiver) -> dict[str, Any]:
    """InfluxDB back, live readings and alarms on: the backlog's drain, sampled every 0.2 s."""
    webhook.arrivals.clear()
    seconds = args.probe_s + args.before_s
    pace = child("_pace", ["--port", str(broker_port), "--prefix", daemon.prefix, "--sensors",
                           str(args.sensors), "--messages", "20000", "--rate",
                           str(args.live_rate), "--seconds", str(seconds)])
    probe = child("_probe", ["--port", str(broker_port), "--prefix", daemon.prefix, "--site",
                             daemon.site, "--alarms", str(int(seconds * args.alarms_per_s)),
                             "--alarms-per-s", str(args.alarms_per_s)])
    assert pace.stdout is not None and probe.stdout is not None
    for proc in (pace, probe):
        if (readline(proc.stdout, 30) or "").strip() != "READY":
            raise SystemExit("live publisher or alarm probe not ready")
    time.sleep(args.before_s)  # live traffic and alarms with InfluxDB still away
    backlog0 = metric(api_url, "depotwatch_spool_backlog_points")
    back, samples, first_write, drained, drained_at = watch(args, api_url, influx,
                                                            args.probe_s)
    probe_out, _ = probe.communicate(timeout=120)
    pace_out, _ = pace.communicate(timeout=120)
    res, live = last_json(probe_out), last_json(pace_out)
    if res is None or live is None:
        raise SystemExit("alarm probe or live publisher failed")
    time.sleep(3.0)  # the last webhooks
    seen = {tuple(k.split("|")): v for k, v in res["seen"].items()}
    hooks: dict[tuple[str, str], list[float]] = {}
    for at, key, state in list(webhook.arrivals):
        hooks.setdefault((key, state), []).append(at)
    start = back + (first_write or 0.0)
    end = drained_at if drained_at is not None else time.monotonic()
    during = [s for s in res["sent"] if start <= s[2] <= end]
    lat_all, missing = match(res["sent"], {"mqtt": seen, "webhook": hooks})
    lat_drain, _ = match(during, {"mqtt": seen, "webhook": hooks})
    lat_before, _ = match([s for s in res["sent"] if s[2] < back],
                          {"mqtt": seen, "webhook": hooks})
    drain_s = (drained - (first_write or 0.0)) if drained is not None else None
    at_drained = next((w for s, w, _ in samples if s >= (drained or 1e18)), samples[-1][1])
    return {
        "backlog_points_at_return": int(backlog0), "first_write_after_s": first_write,
        "drained_after_s": drained, "drain_s": drain_s,
        "points_per_s": at_drained / drain_s if drain_s else None,
        "live_rate": live["rate"], "live_sent": live["sent"], "live_pubacks": live["pubacks"],
        "alarms": len(res["sent"]), "alarms_during_drain": len(during), "missing": missing,
        "during_drain": {"mqtt": percentiles(lat_drain["mqtt"]),
                         "webhook": percentiles(lat_drain["webhook"])},
        "before_return": {"mqtt": percentiles(lat_before["mqtt"]),
                          "webhook": percentiles(lat_before["webhook"])},
        "whole_probe": {"mqtt": percentiles(lat_all["mqtt"]),
                        "webhook": percentiles(lat_all["webhook"])},
        "samples": [[round(s, 2), int(w), int(b)] for s, w, b in samples]}


def stored_points(influx: InfluxDB1, db: str) -> int:
    """Every point of the run in InfluxDB (door, climate, access and portal measurements)."""
    fields = {"door": "open", "climate": "temperature_c", "access": "person", "portal": "epc"}
    q = ";".join(f'SELECT count("{f}") FROM "{m}"' for m, f in fields.items())
    results = influx.query(db, q)["results"]
    return int(sum(v[1] for r in results for s in r.get("series", []) for v in s["values"]))


def main(argv: list[str] | None = None) -> None:
    """CLI: one outage, its backlog and its drain."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--outage-s", type=float, default=3600.0, help="outage length (3600)")
    p.add_argument("--live-rate", type=int, default=500, help="readings/s live (500)")
    p.add_argument("--fill-rate", type=int, default=30000,
                   help="readings/s while the backlog is built (30000)")
    p.add_argument("--before-s", type=float, default=20.0,
                   help="live readings and alarms before InfluxDB returns (20)")
    p.add_argument("--probe-s", type=float, default=60.0,
                   help="live readings and alarms after it returns (60)")
    p.add_argument("--alarms-per-s", type=float, default=4.0, help="probe alarms/s (4)")
    p.add_argument("--sensors", type=int, default=100, help="sensors of the depot (100)")
    p.add_argument("--output", help="JSON path (results/depot-outage-<date>.json)")
    args = p.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    workdir = Path(tempfile.mkdtemp(prefix="depotwatch-outage-"))
    load = [os.getloadavg()]
    broker = start_broker()
    influx = InfluxDB1(workdir / "influxdb1")
    webhook = WebhookReceiver()
    daemon = None
    try:
        influx.start()
        daemon, api_url = start_daemon(args, workdir, broker.port, influx, webhook)
        influx.stop()  # the outage
        backlog = build_backlog(args, daemon, api_url, broker.port)
        print(json.dumps({"backlog": backlog}), file=sys.stderr, flush=True)
        result = drain(args, daemon, api_url, broker.port, influx, webhook)
        wait_for("an empty backlog", lambda: metric(
            api_url, "depotwatch_spool_backlog_points") == 0, 600)
        stored = stored_points(influx, daemon.db)
    finally:
        if daemon is not None:
            daemon.stop()
        webhook.close()
        influx.close()
        broker.close()
        shutil.rmtree(workdir, ignore_errors=True)
    load.append(os.getloadavg())
    doc = {"date": stamp(), "machine": machine(load_average=load), "args": vars(args),
           "backlog": backlog, "drain": result, "influxdb_points": stored}
    path = results_path("depot-outage", args.output)
    path.write_text(json.dumps(doc, indent=1))
    d = result
    print(f"backlog {backlog['backlog_points']:,} points from {backlog['readings_taken']:,} "
          f"readings (built in {backlog['fill_s']:.0f} s); InfluxDB back: first write after "
          f"{d['first_write_after_s']} s, empty after {d['drained_after_s']} s; "
          f"{(d['points_per_s'] or 0):,.0f} points/s "
          f"({(d['points_per_s'] or 0) / args.live_rate:.0f}x the live rate); alarms while "
          f"draining: {d['alarms_during_drain']}, MQTT {d['during_drain']['mqtt']}, webhook "
          f"{d['during_drain']['webhook']}; before InfluxDB returned: MQTT "
          f"{d['before_return']['mqtt']}; missing {d['missing']}; "
          f"{stored:,} points in InfluxDB; load {load[0][0]:.1f} -> {load[1][0]:.1f}; {path}")


if __name__ == "__main__":
    main()
