"""`depotwatch devices`: every configured sensor with its profile, last heard, availability,
decoder errors, fields no rule reads and values skipped (from the running daemon's state file)."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from typing import Any

from daemon.cli.subcommand import Commands, add_config_option, read_config
from daemon.config.schema import Config
from daemon.vocabulary.errors import EXIT_CONFIG

__all__ = ["add_devices_command", "device_rows"]

_NS = 1_000_000_000


def _when(at_ns: int | None, now_ns: int) -> str:
    if at_ns is None:
        return "never"
    ago = max(0.0, (now_ns - at_ns) / _NS)
    stamp = dt.datetime.fromtimestamp(at_ns / _NS, tz=dt.UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%SZ} ({ago:.0f} s ago)"


def _availability(entry: list[Any] | None) -> str:
    if entry is None:
        return "-"
    return "online" if entry[0] else "OFFLINE"


def device_rows(config: Config, state: dict[str, Any], now_ns: int) -> list[dict[str, Any]]:
    """One row per configured sensor and per bridge, as `depotwatch devices` shows them."""
    depot = config.depot()
    bound = {sensor: binding for binding in config.devices for sensor in binding.sensors()}
    bridge_of = {s: b for b, sensors in depot.bridges.items() for s in sensors}
    heard, available = state.get("last_heard", {}), state.get("availability", {})
    errors, last_error = state.get("decode_errors", {}), state.get("last_error", {})
    unhandled, skipped = state.get("unhandled", {}), state.get("skipped", {})
    rows = []
    for sensor in depot.sensors.values():
        binding = bound.get(sensor.id)
        rows.append({
            "sensor": sensor.id, "kind": sensor.kind.value,
            "profile": binding.profile if binding else "-",
            "bridge": bridge_of.get(sensor.id, "-"),
            "last_heard": _when(heard.get(sensor.id), now_ns),
            "availability": _availability(available.get(sensor.id)),
            "silent_after_s": depot.silent_after_s.get(sensor.id),
            "decoder_errors": int(errors.get(sensor.id, 0)),
            "last_error": last_error.get(sensor.id, ""),
            "unhandled": dict(unhandled.get(sensor.id, {})),
            "skipped": int(skipped.get(sensor.id, 0)),
        })
    for bridge in config.bridges:
        rows.append({
            "sensor": f"bridge {bridge.id}", "kind": "bridge", "profile": bridge.profile,
            "bridge": "-", "last_heard": "-",
            "availability": _availability(available.get(f"bridge.{bridge.id}")),
            "silent_after_s": None, "decoder_errors": 0, "last_error": "",
            "unhandled": {}, "skipped": 0,
            "behind": sorted(depot.bridges.get(bridge.id, ())),
        })
    return rows


def _devices(args: argparse.Namespace) -> int:
    import time

    config = read_config(args.config)
    if config is None:
        return EXIT_CONFIG
    path = config.state_dir / "engine-state.json"
    state: dict[str, Any] = {}
    try:
        saved = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(saved, dict) and isinstance(saved.get("devices"), dict):
            state = saved["devices"]
    except FileNotFoundError:
        print(f"(no state yet in {path}: the daemon has not run or saved)")
    except ValueError as exc:
        print(f"(state file {path} unreadable: {exc})")
    rows = device_rows(config, state, time.time_ns())
    if args.json:
        print(json.dumps(rows, indent=1))
        return 0
    for row in rows:
        notes = []
        if row["decoder_errors"]:
            notes.append(f"{row['decoder_errors']} decoder error(s), last: {row['last_error']}")
        if row["unhandled"]:
            fields = ", ".join(f"{f} x{n}" for f, n in sorted(row["unhandled"].items()))
            notes.append(f"unhandled field: {fields}")
        if row["skipped"]:
            notes.append(f"{row['skipped']} value(s) skipped (null)")
        if "behind" in row:
            notes.append(f"sensors behind it: {', '.join(row['behind']) or 'none'}")
        limit = f"silent after {row['silent_after_s']:g} s" if row["silent_after_s"] else ""
        print(f"{row['sensor']:<24} {row['kind']:<16} {row['profile']:<32} "
              f"{row['availability']:<8} last heard {row['last_heard']}"
              + (f"; {limit}" if limit else "")
              + (f"; bridge {row['bridge']}" if row["bridge"] != "-" else ""))
        for note in notes:
            print(f"    {note}")
    return 0


def add_devices_command(commands: Commands) -> None:
    """`depotwatch devices -c CONFIG [--json]`."""
    devices = commands.add_parser(
        "devices", help="list every configured sensor and bridge: profile, last heard, "
        "availability, decoder errors, unhandled fields (from the daemon's state file)")
    add_config_option(devices)
    devices.add_argument("--json", action="store_true", help="one JSON array of rows")
    devices.set_defaults(func=_devices)
