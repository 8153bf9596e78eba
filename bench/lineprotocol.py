"""Per-point cost of InfluxDB line protocol: depotwatch's encoder versus influxdb-client Point.

Two points in the schema of ``daemon/tsdb/points.py``:

- ``climate``: 3 tags (site, storehouse, sensor), 4 float fields;
- ``door``: 3 tags (site, storehouse, door), 2 bool fields.

Each is serialized from the same inputs (a tags dict, a fields dict, an int nanosecond
timestamp) by

- ``daemon.tsdb.lineprotocol.line(measurement, tags, fields, ts_ns)`` (the daemon's encoder, which
  also sorts tags and validates/escapes every name), and
- ``Point(m).tag(k, v)... .field(k, v)... .time(ts_ns, WritePrecision.NS).to_line_protocol()``
  (influxdb-client, the baseline).

Timing is ``timeit``: the best of several repeats, each long enough for ~0.2 s, reported as
µs/point and as the ratio to the influxdb-client Point measured in the same run. The whole run
takes well under 20 s. Results are printed and written to
``bench/results/lineprotocol-<date>.json``.

Run: ``.venv/bin/python bench/lineprotocol.py [--repeat 7]``.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import platform
import sys
import time
import timeit
import warnings
from collections.abc import Callable, Mapping
from functools import partial
from pathlib import Path
from typing import Any

from harness import machine, results_path, stamp, version

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

FieldValue = float | bool | str
PointSpec = tuple[str, dict[str, str], dict[str, FieldValue], int]

TS_NS = 1_764_355_200_123_456_789
POINTS: dict[str, PointSpec] = {
    "climate": (
        "climate",
        {"site": "depot-north", "storehouse": "SH-2", "sensor": "clim-03"},
        {"temperature_c": 14.7, "humidity_pct": 48.2, "battery_pct": 97.0, "dew_point_c": 3.91},
        TS_NS,
    ),
    "door": (
        "door",
        {"site": "depot-north", "storehouse": "SH-2", "door": "main"},
        {"open": True, "tamper": False},
        TS_NS,
    ),
}

LineFn = Callable[[str, Mapping[str, str], Mapping[str, FieldValue], int], str]


def load_line() -> LineFn:
    """Import the daemon's encoder and check it still takes (measurement, tags, fields, ts_ns)."""
    try:
        from daemon.tsdb.lineprotocol import line
    except ImportError as exc:
        raise SystemExit(f"daemon/tsdb/lineprotocol.py is missing or broken: {exc}") from exc
    params = list(inspect.signature(line).parameters)
    if params[:4] != ["measurement", "tags", "fields", "ts_ns"]:
        raise SystemExit(f"daemon.tsdb.lineprotocol.line has signature {params}; "
                         "adapt this benchmark")
    return line


def load_point() -> Callable[[str, Mapping[str, str], Mapping[str, FieldValue], int], str]:
    """influxdb-client's Point as a function of the same inputs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # reactivex on import
        from influxdb_client.client.write.point import Point as _Point
        from influxdb_client.domain.write_precision import WritePrecision

    point_cls: Any = _Point  # untyped library
    ns = WritePrecision.NS

    def point_line(
        measurement: str, tags: Mapping[str, str], fields: Mapping[str, FieldValue], ts_ns: int
    ) -> str:
        p = point_cls(measurement)
        for k, v in tags.items():
            p.tag(k, v)
        for fk, fv in fields.items():
            p.field(fk, fv)
        text: str = p.time(ts_ns, ns).to_line_protocol()
        return text

    return point_line


def time_per_point(fn: Callable[[], object], repeat: int) -> float:
    """Best-of-`repeat` seconds per call; each repeat runs ~0.2 s."""
    timer = timeit.Timer(fn)
    number, _ = timer.autorange()  # >= 0.2 s
    return min(timer.repeat(repeat=repeat, number=number)) / number


def measure(encoders: dict[str, LineFn], repeat: int) -> list[dict[str, Any]]:
    """Every point through every encoder; the first encoder is the baseline of the ratios."""
    rows: list[dict[str, Any]] = []
    for kind, (measurement, tags, fields, ts) in POINTS.items():
        base: float | None = None
        for name, fn in encoders.items():
            sample = fn(measurement, tags, fields, ts)
            per_point = time_per_point(partial(fn, measurement, tags, fields, ts), repeat)
            if base is None:
                base = per_point
            rows.append({
                "point": kind,
                "encoder": name,
                "us_per_point": per_point * 1e6,
                "points_per_s": 1 / per_point,
                "ratio_to_point": per_point / base,
                "speedup_vs_point": base / per_point,
                "sample": sample,
            })
    return rows


def print_table(rows: list[dict[str, Any]], repeat: int, total: float) -> None:
    """The results table and each encoder's output."""
    print(f"line protocol, best of {repeat}; {os.cpu_count()} CPUs;"
          f" Python {platform.python_version()}; {total:.1f} s total")
    head = f"{'point':<8} {'encoder':<22} {'µs/point':>9} {'points/s':>11} {'time vs Point':>13}"
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['point']:<8} {r['encoder']:<22} {r['us_per_point']:>9.2f}"
              f" {r['points_per_s']:>11,.0f} {r['ratio_to_point']:>12.2f}x"
              + (f"  ({r['speedup_vs_point']:.1f}x faster)" if r["ratio_to_point"] < 1 else ""))
    print("\nsample output (same point; Point sorts fields and writes 97.0 as 97):")
    for r in rows:
        print(f"  {r['encoder']:<22} {r['sample']}")


def main(argv: list[str] | None = None) -> None:
    """Measure, print a table, write JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=7, help="timeit repeats, best is kept (7)")
    parser.add_argument("--output", help="JSON path (bench/results/lineprotocol-<date>.json)")
    args = parser.parse_args(argv)

    encoders: dict[str, LineFn] = {
        "influxdb-client Point": load_point(),  # baseline, first
        "depotwatch line()": load_line(),
    }
    started = time.monotonic()
    rows = measure(encoders, args.repeat)
    total = time.monotonic() - started
    print_table(rows, args.repeat, total)

    out = results_path("lineprotocol", args.output)
    doc = {
        "benchmark": "lineprotocol",
        "date": stamp(),
        "repeat": args.repeat,
        "baseline": "influxdb-client Point",
        "machine": machine(),
        "versions": {"influxdb-client": version("influxdb-client")},
        "total_s": total,
        "results": rows,
    }
    out.write_text(json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
