"""The depot bench's alarm latency phase: paced background traffic into one daemon while a probe
raises alarms, timed from the probe's publish to the alert on MQTT and at a webhook."""

from __future__ import annotations

import contextlib
import http.server
import json
import statistics
import threading
import time
from typing import Any

from depot_daemon import DaemonTarget
from depot_load import child
from harness import HOST, last_json, proc_cpu_s, readline

Arrivals = dict[tuple[str, str], list[float]]  # (key, state) -> monotonic arrival times


class WebhookReceiver:
    """Records when each alert change arrives by webhook (monotonic, key, state)."""

    def __init__(self) -> None:
        self.arrivals: list[tuple[float, str, str]] = []
        arrivals = self.arrivals

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                now = time.monotonic()
                with contextlib.suppress(ValueError, KeyError):
                    alert = json.loads(body)
                    arrivals.append((now, alert["key"], alert["state"]))
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()


def percentiles(values: list[float]) -> dict[str, float | int | None]:
    """Count, p50, p99 and max of latencies in seconds, as milliseconds."""
    if not values:
        return {"n": 0, "p50_ms": None, "p99_ms": None, "max_ms": None}
    ordered = sorted(v * 1000 for v in values)
    return {"n": len(ordered), "p50_ms": statistics.median(ordered),
            "p99_ms": ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))],
            "max_ms": ordered[-1]}


def match(sent: list[list[Any]], paths: dict[str, Arrivals],
          ) -> tuple[dict[str, list[float]], dict[str, int]]:
    """Each sent alarm change against its first arrival after the publish, on every path:
    the latencies per path, and how many never arrived."""
    latencies: dict[str, list[float]] = {name: [] for name in paths}
    missing = dict.fromkeys(paths, 0)
    used: dict[tuple[str, str, str], int] = {}
    for key, state, at in sent:
        for name, arrivals in paths.items():
            i = used.get((name, key, state), 0)
            times = arrivals.get((key, state), [])
            while i < len(times) and times[i] < at:
                i += 1
            if i < len(times):
                latencies[name].append(times[i] - at)
                used[(name, key, state)] = i + 1
            else:
                missing[name] += 1
    return latencies, missing


# How long after the probe's end a webhook notification may still arrive.
LATE_S = 10.0


def _hooks(webhook: WebhookReceiver) -> Arrivals:
    hooks: Arrivals = {}
    for at, key, state in list(webhook.arrivals):
        hooks.setdefault((key, state), []).append(at)
    return hooks


def every_alarm_arrived(latency: dict[str, Any] | None) -> str | None:
    """Why the latency phase fails the run (an alarm change missing on a path), or None."""
    if latency is None:
        return None
    if "error" in latency:
        return f"latency phase failed: {latency['error']}"
    missing = {path: n for path, n in latency.get("missing", {}).items() if n}
    if missing:
        return (f"alarm changes that never reached a notifier (of {latency['alarm_changes']}): "
                + ", ".join(f"{path} {n}" for path, n in missing.items()))
    return None


def run_latency(target: DaemonTarget, port: int, webhook: WebhookReceiver, rate: int,
                seconds: float, alarms_per_s: float) -> dict[str, Any]:
    """Alarm latency under paced background load."""
    alarms = int(seconds * alarms_per_s * 0.8)
    # Cleared before the probe starts, not after its READY: an alarm it raised at once, while
    # the publisher's READY was still awaited, lost its webhook here (the "239 of 240").
    webhook.arrivals.clear()
    pace = child("_pace", ["--port", str(port), "--prefix", target.prefix, "--sensors",
                           str(target.sensors), "--messages", "20000", "--rate", str(rate),
                           "--seconds", str(seconds)])
    probe = child("_probe", ["--port", str(port), "--prefix", target.prefix, "--site",
                             target.site, "--alarms", str(alarms), "--alarms-per-s",
                             str(alarms_per_s)])
    assert pace.stdout is not None and probe.stdout is not None
    for proc in (pace, probe):
        if (readline(proc.stdout, 30) or "").strip() != "READY":  # type: ignore[arg-type]
            raise RuntimeError("latency publisher or probe not ready")
    cpu0, t0 = proc_cpu_s(target.pid), time.monotonic()
    probe_out, _ = probe.communicate(timeout=seconds + 60)
    pace_out, _ = pace.communicate(timeout=seconds + 60)
    cpu = proc_cpu_s(target.pid) - cpu0
    wall = time.monotonic() - t0
    res, bg = last_json(probe_out), last_json(pace_out)
    if res is None or bg is None:
        raise RuntimeError("latency probe failed")
    seen = {tuple(k.split("|")): v for k, v in res["seen"].items()}
    latencies, missing = match(res["sent"], {"mqtt": seen, "webhook": _hooks(webhook)})
    waited = time.monotonic()
    # The last alarms' webhooks may still be on their way when the probe ends: a notification
    # counts as missing only if it is not there 10 s (the EN 50131 limit) later either.
    while missing["webhook"] and time.monotonic() - waited < LATE_S:
        time.sleep(0.2)
        latencies, missing = match(res["sent"], {"mqtt": seen, "webhook": _hooks(webhook)})
    return {"background_rate": bg["rate"], "background_sent": bg["sent"],
            "background_pubacks": bg["pubacks"], "alarm_changes": len(res["sent"]),
            "daemon_cpu_busy": cpu / wall, "mqtt": percentiles(latencies["mqtt"]),
            "webhook": percentiles(latencies["webhook"]), "missing": missing}
