"""The daemon's footprint (issue 29): memory with N sensors, and start to ready with a full spool.

Memory: `depotwatch run` with the bench's depot config (every rule kind, InfluxDB 1.6.7 and
VictoriaMetrics writers, a webhook) for each ``--sensors`` count, idle ``--settle-s`` after it is
ready: RSS and peak RSS from /proc; beside it what the interpreter alone, the libraries the daemon
cannot run without (asyncio, ssl, sqlite3, aiohttp, pydantic, gmqtt) and all of the daemon's
modules take when imported, each in a fresh process, so what is left is the config and state.

Start to ready: the same daemon (``--start-sensors``) with a spool of ``--spool-rows`` commits of
one point each (the worst case: a trickle commits one reading at a time), written straight into
its SQLite file, and with an empty one: seconds from exec to systemd's READY=1 (the daemon is
run as `Type=notify` runs it, with NOTIFY_SOCKET) and to /readyz answering 200. Results to
``bench/results/depot-footprint-<date>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml
from depot_daemon import DaemonTarget
from depot_latency import WebhookReceiver
from harness import HOST, REPO_DIR, machine, results_path, stamp, start_broker
from servers import InfluxDB1, VictoriaMetrics, free_port

IMPORT_PROBES = {
    "interpreter": "",
    "libraries": "import asyncio, ssl, sqlite3, json, yaml, aiohttp, aiohttp.web, pydantic, gmqtt",
    "daemon modules": "import daemon.cli.main, daemon.runner, daemon.assembly",
}


def rss_of(pid: int) -> tuple[float, float]:
    """RSS and peak RSS (VmHWM) of a process, MiB."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def import_rss(code: str) -> float:
    """RSS, MiB, of a fresh interpreter after `code`."""
    probe = (f"{code}\nfor l in open('/proc/self/status'):\n"
             "    l.startswith('VmRSS:') and print(int(l.split()[1]) / 1024)")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True, cwd=REPO_DIR, env={**os.environ, "PYTHONPATH": str(REPO_DIR)})
    return float(out.stdout.strip())


class Rig:
    """Broker, InfluxDB 1.6.7, VictoriaMetrics and a webhook receiver for the daemons."""

    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.broker = start_broker()
        self.influx, self.vm = InfluxDB1(workdir / "influxdb1"), VictoriaMetrics(workdir / "vm")
        self.influx.start()
        self.vm.start()
        self.webhook = WebhookReceiver()
        self.made = 0

    def daemon(self, sensors: int) -> tuple[DaemonTarget, str]:
        """A daemon's config (not started) with its API on a free loopback port."""
        self.made += 1
        target = DaemonTarget(f"fp{self.made}", sensors, True, self.broker.port, self.influx,
                              self.vm, self.workdir, self.webhook.url)
        config = yaml.safe_load(target.config_path.read_text())
        port = free_port()
        config["api"] = {"listen_host": HOST, "listen_port": port,
                         "metrics_token_required": False}
        target.config_path.write_text(yaml.safe_dump(config))
        return target, f"http://{HOST}:{port}"

    def close(self) -> None:
        """Stop the servers."""
        self.webhook.close()
        self.vm.close()
        self.influx.close()
        self.broker.close()


def memory(rig: Rig, sensors: int, settle_s: float) -> dict[str, Any]:
    """RSS of an idle daemon with `sensors` sensors, after it is ready and has settled."""
    target, _ = rig.daemon(sensors)
    target.start()
    try:
        time.sleep(settle_s)
        rss, peak = rss_of(target.pid)
    finally:
        target.stop()
    return {"sensors": sensors, "rss_mib": rss, "peak_rss_mib": peak}


def fill_spool(path: Path, rows: int) -> None:
    """`rows` commits of one door point each, as a trickle leaves them, straight into SQLite."""
    from daemon.spool.schema import SCHEMA

    path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.executescript(SCHEMA)
    start_ns = time.time_ns() - rows * 1_000_000
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO point_groups (spooled_ns, points, lines) VALUES (?, 1, ?)",
        ((start_ns + i * 1_000_000,
          f"door,door=D{i % 45:04d},site=bench,storehouse=SH01 battery_pct={60 + i % 40}.0,"
          f"open=false {start_ns + i * 1_000_000}") for i in range(rows)))
    db.execute("COMMIT")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()


def fill_book(state_dir: Path, config_path: Path, items: int) -> None:
    """`items` items on the records store's book, spread over the config's storehouses, as the
    living-records store keeps them (the config's own items section stays small)."""
    from daemon.book.store import RECORDS_FILE, RecordsStore, Write
    from rules.depot import Item, ItemKind

    storehouses = [s["id"] for s in yaml.safe_load(config_path.read_text())["storehouses"]]
    kinds = (ItemKind.WEAPON, ItemKind.AMMUNITION, ItemKind.OTHER)
    state_dir.mkdir(parents=True, exist_ok=True)
    store = RecordsStore(state_dir / RECORDS_FILE)
    store.write([Write("items", Item(f"E280{i:020X}", f"Item {i}", kinds[i % 3],
                                     f"LOT-{i // 500}", storehouses[i % len(storehouses)]), None)
                 for i in range(items)], "bench", time.time_ns())
    store.close()


def start_to_ready(rig: Rig, sensors: int, rows: int, items: int = 0) -> dict[str, Any]:
    """Seconds from exec to READY=1 and to /readyz 200, with `rows` spool rows waiting and
    `items` items on the book."""
    target, api_url = rig.daemon(sensors)
    state_dir = target.dir / "state"
    if rows:
        fill_spool(state_dir / "spool.sqlite", rows)
    if items:
        fill_book(state_dir, target.config_path, items)
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify_path = target.dir / "notify.sock"
    notify.bind(str(notify_path))
    notify.settimeout(0.05)
    env = {**os.environ, "NOTIFY_SOCKET": str(notify_path)}
    t0 = time.monotonic()
    with target.log_path.open("ab") as log:
        target.proc = subprocess.Popen(
            [sys.executable, "-m", "daemon.cli", "--log-level", "info", "run", "-c",
             str(target.config_path)], stdout=log, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, cwd=target.dir, env=env)
    ready_s = readyz_s = None
    try:
        while time.monotonic() - t0 < 120 and (ready_s is None or readyz_s is None):
            if target.proc.poll() is not None:
                raise SystemExit(f"daemon exited:\n{target.log_tail()}")
            try:
                if b"READY=1" in notify.recv(4096) and ready_s is None:
                    ready_s = time.monotonic() - t0
            except TimeoutError:
                pass
            if readyz_s is None:
                try:
                    with urllib.request.urlopen(f"{api_url}/readyz", timeout=2) as reply:
                        if reply.status == 200:
                            readyz_s = time.monotonic() - t0
                except (OSError, urllib.error.HTTPError):
                    pass
    finally:
        target.stop()
        notify.close()
    return {"sensors": sensors, "spool_rows": rows, "book_items": items, "ready_s": ready_s,
            "readyz_s": readyz_s}


def main(argv: list[str] | None = None) -> None:
    """CLI: memory per sensor count, then start to ready with and without a full spool."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sensors", default="100,2000", help="sensor counts for memory (100,2000)")
    p.add_argument("--settle-s", type=float, default=10.0, help="idle before RSS is read (10)")
    p.add_argument("--start-sensors", type=int, default=2000, help="sensors for start (2000)")
    p.add_argument("--spool-rows", type=int, default=1_000_000, help="spool rows (1000000)")
    p.add_argument("--book-items", type=int, default=100_000,
                   help="items on the records store's book for the full start (100000)")
    p.add_argument("--start-only", action="store_true", help="skip the memory part")
    p.add_argument("--memory-only", action="store_true", help="skip the start-to-ready part")
    p.add_argument("--output", help="JSON path (results/depot-footprint-<date>.json)")
    args = p.parse_args(argv)
    load = [os.getloadavg()]
    imports = {name: import_rss(code) for name, code in IMPORT_PROBES.items()}
    workdir = Path(tempfile.mkdtemp(prefix="depotwatch-footprint-"))
    rig = Rig(workdir)
    try:
        mem = ([] if args.start_only else
               [memory(rig, int(n), args.settle_s) for n in args.sensors.split(",")])
        starts = [] if args.memory_only else [
            start_to_ready(rig, args.start_sensors, rows, items)
            for rows, items in ((0, 0), (args.spool_rows, 0), (args.spool_rows, args.book_items))]
    finally:
        rig.close()
        shutil.rmtree(workdir, ignore_errors=True)
    load.append(os.getloadavg())
    doc = {"date": stamp(), "machine": machine(load_average=load), "args": vars(args),
           "imports_rss_mib": imports, "memory": mem, "start": starts}
    path = results_path("depot-footprint", args.output)
    path.write_text(json.dumps(doc, indent=1))
    print("imports: " + ", ".join(f"{k} {v:.1f} MiB" for k, v in imports.items()))
    for m in mem:
        print(f"{m['sensors']:>6} sensors: RSS {m['rss_mib']:.1f} MiB "
              f"(peak {m['peak_rss_mib']:.1f})")
    for s in starts:
        print(f"{s['spool_rows']:>9,} spool rows, {s['book_items']:>7,} items on the book: "
              f"READY=1 after {s['ready_s']} s, /readyz 200 after {s['readyz_s']} s")
    print(f"load average {load[0][0]:.2f} -> {load[1][0]:.2f}; wrote {path}")


if __name__ == "__main__":
    main()
