"""The depot bench's report: medians per receiver, ratios, the issue's targets, and the results
as JSON and as a markdown table."""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

from depot_load import mix
from depot_nodered import node_red_version
from depot_saturation import Runs
from harness import fmt, machine, mosquitto_version, results_path, stamp, version


def summary(runs: list[dict[str, Any]], key: str = "readings_per_s") -> dict[str, Any]:
    """Median, min and max of one receiver's runs, its CPU per reading, peak RSS and errors."""
    ok = [r for r in runs if "error" not in r]
    rates = [r[key] for r in ok]
    out: dict[str, Any] = {"runs": len(runs), "ok": len(ok)}
    if rates:
        out.update(median=statistics.median(rates), min=min(rates), max=max(rates),
                   cpu_us_per_reading=statistics.median(r["cpu_us_per_reading"] for r in ok),
                   rss_peak_mib=max(r["rss_peak_mib"] for r in ok))
        if "to_db_readings_per_s" in ok[0]:
            to_db = [r["to_db_readings_per_s"] for r in ok]
            out.update(to_db_median=statistics.median(to_db), to_db_min=min(to_db),
                       to_db_max=max(to_db))
    out["errors"] = [r["error"] for r in runs if "error" in r]
    return out


def _median(runs: Runs, key: str, field: str = "median") -> float | None:
    value: float | None = summary(runs.get(key, [])).get(field)
    return value


def rows(args: argparse.Namespace, runs: Runs) -> list[dict[str, Any]]:
    """One row per receiver and variant, with its ratios to bare gmqtt and to the link."""
    qoses = [int(q) for q in args.qos.split(",")]
    big = args.big_sensors
    out: list[dict[str, Any]] = []
    bare = {q: summary(runs.get(f"bare q{q}", [])) for q in qoses}
    for qos in qoses:
        out.append({"receiver": "bare gmqtt (discard)", "sensors": args.sensors, "qos": qos,
                    **bare[qos]})
        out.append({"receiver": "depotwatch's MQTT link (discard)", "sensors": args.sensors,
                    "qos": qos, **summary(runs.get(f"link q{qos}", []))})
        dw = summary(runs.get(f"depotwatch {args.sensors} q{qos}", []))
        out.append({"receiver": "depotwatch", "sensors": args.sensors, "qos": qos,
                    "fsync": "on", **dw})
    for key, sensors, fsync in ((f"depotwatch {big} q1", big, "on"),
                                (f"depotwatch {args.sensors} q1 nofsync", args.sensors, "off")):
        out.append({"receiver": "depotwatch", "sensors": sensors, "qos": 1, "fsync": fsync,
                    **summary(runs.get(key, []))})
    for qos in args.peer_qos:
        if f"node-red q{qos}" in runs:
            out.append({"receiver": "Node-RED mqtt->json->influxdb out", "sensors": args.sensors,
                        "qos": qos, **summary(runs[f"node-red q{qos}"])})
    for row in out:
        base = bare.get(row["qos"], {}).get("median")
        if row.get("median") and base and not row["receiver"].startswith("bare"):
            row["vs_bare"] = row["median"] / base
        link = _median(runs, f"link q{row['qos']}")
        if row.get("median") and link and row["receiver"] == "depotwatch":
            row["vs_link"] = row["median"] / link
    return out


def ratios(args: argparse.Namespace, runs: Runs) -> dict[str, float | None]:
    """The headline ratios between medians of the same run."""
    big, sensors = args.big_sensors, args.sensors
    bare1, bare0 = _median(runs, "bare q1"), _median(runs, "bare q0")
    dw1, dw1_db = _median(runs, f"depotwatch {sensors} q1"), _median(
        runs, f"depotwatch {sensors} q1", "to_db_median")
    dw0, link1, nr1 = (_median(runs, f"depotwatch {sensors} q0"), _median(runs, "link q1"),
                       _median(runs, "node-red q1"))
    dw_big, nofsync = (_median(runs, f"depotwatch {big} q1"),
                       _median(runs, f"depotwatch {sensors} q1 nofsync"))
    return {
        "depotwatch / bare gmqtt, QoS 1": dw1 / bare1 if dw1 and bare1 else None,
        "depotwatch / its own MQTT link discarding, QoS 1": dw1 / link1
        if dw1 and link1 else None,
        "depotwatch / bare gmqtt, QoS 0": dw0 / bare0 if dw0 and bare0 else None,
        "depotwatch (to DB) / Node-RED (to DB), QoS 1": dw1_db / nr1 if dw1_db and nr1 else None,
        f"depotwatch {big} / {sensors} sensors, QoS 1": dw_big / dw1 if dw1 and dw_big else None,
        "depotwatch fsync off / on, QoS 1": nofsync / dw1 if dw1 and nofsync else None,
    }


def targets(args: argparse.Namespace, runs: Runs, ratio: dict[str, float | None],
            latency: dict[str, Any] | None, peer_note: str | None,
            ) -> dict[str, tuple[bool, str]]:
    """Issue 9's targets: whether each is met, and the figure that says so."""
    big = args.big_sensors
    dw1, dw1_db = _median(runs, f"depotwatch {args.sensors} q1"), _median(
        runs, f"depotwatch {args.sensors} q1", "to_db_median")
    nr1 = _median(runs, "node-red q1")
    rss_big = summary(runs.get(f"depotwatch {big} q1", [])).get("rss_peak_mib")
    p99 = latency["mqtt"]["p99_ms"] if latency and "mqtt" in latency else None
    ratio1 = ratio["depotwatch / bare gmqtt, QoS 1"]
    return {
        ">= 15,000 readings/s, QoS 1, durable spool: taken (spooled, acknowledged)":
            (bool(dw1 and dw1 >= 15000), f"{fmt(dw1)} readings/s (median)"),
        ">= 15,000 readings/s, QoS 1, durable spool: into InfluxDB (VictoriaMetrics checked)":
            (bool(dw1_db and dw1_db >= 15000), f"{fmt(dw1_db)} readings/s (median)"),
        ">= 0.7x the bare client, QoS 1": (bool(ratio1 and ratio1 >= 0.7),
                                            f"{fmt(ratio1, '.2f')}x"),
        "alarm p99 <= 50 ms at 5,000 readings/s": (bool(p99 is not None and p99 <= 50),
                                                   f"{fmt(p99, '.1f')} ms (MQTT)"),
        f"peak RSS <= 120 MB with {big} sensors": (bool(rss_big and rss_big * 1.048576 <= 120),
                                                   f"{fmt(rss_big, '.1f')} MiB"),
        "faster than Node-RED (to DB, QoS 1)": (
            bool(dw1_db and nr1 and dw1_db > nr1),
            f"{fmt(dw1_db)} vs {fmt(nr1)} readings/s" if nr1 else f"no peer ({peer_note})"),
    }


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def document(args: argparse.Namespace, runs: Runs, latency: dict[str, Any] | None,
             peer_note: str | None, started: float) -> dict[str, Any]:
    """The whole result, as written to results/depot-<date>.json."""
    ratio = ratios(args, runs)
    depot = mix(args.sensors, args.messages)
    return {
        "benchmark": "depot",
        "date": stamp(),
        "messages": args.messages,
        "runs": args.runs,
        "mix": ", ".join(f"{n:,} {k}" for k, n in sorted(depot.kinds.items())),
        "points_per_run": dict(depot.expected),
        "machine": machine(_cpu_model(), mosquitto=mosquitto_version()),
        "versions": {"gmqtt": version("gmqtt"), "node-red": node_red_version(),
                     "influxdb-client": version("influxdb-client"),
                     "aiohttp": version("aiohttp"), "orjson": version("orjson")},
        "total_s": time.monotonic() - started,
        "summary": {"rows": rows(args, runs), "ratios": ratio, "latency": latency,
                    "targets": targets(args, runs, ratio, latency, peer_note),
                    "peer_note": peer_note},
        "runs_raw": runs,
    }


def _intro(doc: dict[str, Any]) -> list[str]:
    m = doc["machine"]
    return [
        f"# depot benchmark, {doc['date'][:10]}",
        "",
        f"{m['cpus']} CPUs ({m['cpu_model']}), Python {m['python']}, Mosquitto "
        f"{m['mosquitto']}, InfluxDB 1.6.7 + VictoriaMetrics, gmqtt {doc['versions']['gmqtt']},"
        f" Node-RED {doc['versions'].get('node-red') or '-'}. {doc['messages']:,} messages per"
        f" run ({doc['mix']}), {doc['runs']} runs each, median (min-max). Absolute rates move"
        " by 25 % between runs on this machine; the ratios within one run are the headline.",
        "",
        "readings/s: taken (depotwatch: spooled and acknowledged; bare gmqtt and the link:"
        " received);"
        " to DB: until InfluxDB 1.6.7 holds every point (VictoriaMetrics is checked to hold"
        " them all too, but its query results settle only about a second after a write, so it"
        " is not the clock); Node-RED: its figure in both columns. bare gmqtt is the chosen"
        " client as its users write it (an `on_message` callback), the baseline the targets"
        " name; depotwatch's MQTT link (drivers/mqtt.py: gmqtt with its PUBLISH packets read by"
        " `PublishReader`, PUBACKs one write per spool commit) discarding shows what the"
        " daemon's own work costs on top of its receive path.",
        "",
    ]


def _table(table_rows: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| receiver | sensors | QoS | spool fsync | readings/s | vs bare gmqtt | vs link"
        " | to DB readings/s | CPU µs/reading | peak RSS MiB |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in table_rows:
        rng = (f"{fmt(row.get('median'))} ({fmt(row.get('min'))}-{fmt(row.get('max'))})"
               if row.get("median") else "failed: " + "; ".join(row["errors"])[:200])
        to_db = (f"{fmt(row.get('to_db_median'))} ({fmt(row.get('to_db_min'))}-"
                 f"{fmt(row.get('to_db_max'))})" if row.get("to_db_median") else "-")
        ratio = f"{row['vs_bare']:.2f}x" if row.get("vs_bare") else "-"
        vs_link = f"{row['vs_link']:.2f}x" if row.get("vs_link") else "-"
        lines.append(
            f"| {row['receiver']} | {row['sensors']} | {row['qos']} | {row.get('fsync', '-')} |"
            f" {rng} | {ratio} | {vs_link} | {to_db} |"
            f" {fmt(row.get('cpu_us_per_reading'), '.1f')} |"
            f" {fmt(row.get('rss_peak_mib'), '.1f')} |")
    return lines


def _latency(lat: dict[str, Any] | None) -> list[str]:
    if not lat:
        return []
    lines = ["", f"Alarm latency at {fmt(lat['background_rate'])} readings/s background"
             f" (daemon CPU {lat['daemon_cpu_busy'] * 100:.0f} %),"
             f" {lat['alarm_changes']} alarms raised (an unknown tag leaving, a new key"
             " each), from the probe's publish of the second antenna read:", "",
             "| path | n | p50 ms | p99 ms | max ms |", "|---|---|---|---|---|"]
    for path in ("mqtt", "webhook"):
        p = lat[path]
        lines.append(f"| publish -> {path} | {p['n']} | {fmt(p['p50_ms'], '.1f')} |"
                     f" {fmt(p['p99_ms'], '.1f')} | {fmt(p['max_ms'], '.1f')} |")
    return lines


def _peer(doc: dict[str, Any]) -> list[str]:
    s = doc["summary"]
    lines = []
    if [r for r in s["rows"] if r["receiver"].startswith("Node-RED")]:
        lost = sum(r.get("lost", 0) for r in doc["runs_raw"].get("node-red q1", []))
        lines += ["", "Node-RED's rate is until every point is in InfluxDB (its mqtt in node"
                  " acknowledges on receipt, before anything is stored; it writes one HTTP"
                  f" request per message). Points it lost over all runs: {lost}."]
    if s.get("peer_note"):
        lines += ["", f"Node-RED: {s['peer_note']}"]
    return lines


def markdown(doc: dict[str, Any]) -> str:
    """The short results table."""
    s = doc["summary"]
    lines = [*_intro(doc), *_table(s["rows"]), "", "Ratios (medians of the same run):", ""]
    for name, value in s["ratios"].items():
        lines.append(f"- {name}: {fmt(value, '.2f')}x" if value else f"- {name}: -")
    lines += [*_latency(s.get("latency")), *_peer(doc), "", "Targets:", ""]
    for name, (ok, text) in s["targets"].items():
        lines.append(f"- {'met' if ok else 'NOT met'}: {name}: {text}")
    return "\n".join(lines) + "\n"


def write(doc: dict[str, Any], output: str | None) -> Path:
    """The JSON and the markdown next to it (results/depot-<date>, or `output`); the stem."""
    stem = results_path("depot", output, suffix="")
    stem.with_suffix(".json").write_text(json.dumps(doc, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(doc))
    return stem
