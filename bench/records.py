"""The book at 100,000 items: how long a start takes to load it and build the rules, and what one
records change costs while such a register is on the book (issue 19; issue 29's start-to-ready
target is <= 3 s with 100,000 items).

All in one process and one run: the baseline is the bare SQLite read of the same rows (what no
store could beat) and the config's way (the same items as a YAML section, validated), whose cost
the store keeps out of every start. Run: .venv/bin/python bench/records.py [--items N]
[--yaml-items N] [--rounds N]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import harness

from daemon.book.entries import EntryState
from daemon.book.store import RECORDS_FILE, RecordsStore, Write
from daemon.config.loading import load_config
from daemon.config.schema import Config
from daemon.runner import Daemon
from daemon.vocabulary.clock import SystemClock
from rules.depot import Item, ItemKind

KINDS = (ItemKind.WEAPON, ItemKind.AMMUNITION, ItemKind.OTHER)


def depot(state_dir: Path, items: list[dict[str, str]] | None = None) -> dict[str, Any]:
    """A depot of four storehouses with doors, portals and the rules that judge items."""
    stores = [f"SH{i}" for i in range(1, 5)]
    return {
        "site": {"id": "bench-records"}, "state_dir": str(state_dir),
        "storehouses": [{"id": s} for s in stores],
        "doors": [{"id": f"{s}-D1", "storehouse": s, "contact_sensor": f"{s}-door",
                   "badge_reader": f"{s}-reader"} for s in stores],
        "portals": [{"id": f"{s}-P1", "storehouse": s, "inner_antenna": f"{s}-in",
                     "outer_antenna": f"{s}-out"} for s in stores],
        "inventory_readers": [{"id": f"{s}-inv", "storehouse": s} for s in stores],
        "roster": [{"name": f"Person {i}", "badge": f"{1000 + i}", "zones": stores[:2]}
                   for i in range(200)],
        "items": items or [],
        "mqtt": {"host": "127.0.0.1", "port": 1, "subscriptions": []},
        "file_output": {"path": str(state_dir / "points.lp")},
        "rules": [{"type": "badge_access"}, {"type": "portal_movement"},
                  {"type": "item_unseen"}, {"type": "door_held_open"},
                  {"type": "reconciliation"}],
        "api": {"listen_port": 0},
    }


def register(n: int) -> list[Item]:
    """N items spread over the storehouses."""
    return [Item(f"E280{i:020X}", f"Item {i}", KINDS[i % 3], f"LOT-{i // 500}",
                 f"SH{1 + i % 4}") for i in range(n)]


def timed(work: Callable[[], object], rounds: int) -> list[float]:
    """Wall seconds of each round."""
    took = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        took.append(time.perf_counter() - start)
    return took


def close(daemon: Daemon) -> None:
    """Let go of the state dir's files (a start without `run`)."""
    daemon.audit.close()
    daemon.book.store.close()
    daemon.deadletters.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--yaml-items", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--output")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        config = Config.model_validate(depot(state))
        store = RecordsStore(state / RECORDS_FILE)
        start = time.perf_counter()
        store.write([Write("items", item, None) for item in register(args.items)], "bench",
                    time.time_ns())
        import_s = time.perf_counter() - start
        store.close()

        def raw_read() -> object:
            with sqlite3.connect(state / RECORDS_FILE) as db:
                return db.execute("SELECT epc, name, kind, lot, storehouse FROM items").fetchall()

        def store_load() -> object:
            opened = RecordsStore(state / RECORDS_FILE)
            try:
                return opened.load()
            finally:
                opened.close()

        def daemon_start() -> object:
            daemon = Daemon(config, clock=SystemClock())
            close(daemon)
            return daemon

        raw = timed(raw_read, args.rounds)
        load = timed(store_load, args.rounds)
        start_s = timed(daemon_start, args.rounds)
        daemon = Daemon(config, clock=SystemClock())
        # A tick first: item_unseen then holds a clock per item, which a change carries over.
        daemon.pipeline.tick(time.time_ns())
        person = daemon.book.records.roster["Person 7"]
        version = [1]

        def revoke_and_restore() -> None:
            # What a change costs the loop: the write's fsync, then the rules rebuilt.
            for state_now in (EntryState.REVOKED, EntryState.ACTIVE):
                changed = dataclasses.replace(person, state=state_now)
                daemon.book.store.write([Write("roster", changed, version[0])], "bench",
                                        time.time_ns())
                version[0] += 1
                daemon.reloader.records_changed(daemon.book.records)

        change = [t / 2 for t in timed(revoke_and_restore, args.rounds)]
        close(daemon)
        yaml_file = state / "depot.yaml"
        yaml_file.write_text(yaml.safe_dump(depot(state, [
            {"epc": i.epc, "name": i.name, "kind": i.kind.value, "lot": i.lot,
             "storehouse": i.storehouse} for i in register(args.yaml_items)])))
        yaml_load = timed(lambda: load_config(yaml_file), 1)
    report(args, import_s, raw, load, start_s, change, yaml_load)


def report(args: argparse.Namespace, import_s: float, raw: list[float], load: list[float],
           start_s: list[float], change: list[float], yaml_load: list[float]) -> None:
    """Print the table and write the JSON."""
    med = statistics.median
    rows = [
        ("import into the store (one transaction)", import_s, ""),
        ("bare SQLite read of the rows (baseline)", med(raw), "1.0x"),
        ("store.load(): the book in memory", med(load), f"{med(load) / med(raw):.1f}x"),
        ("Daemon(config) with the book: start to ready to run", med(start_s),
         f"{med(start_s) / med(raw):.1f}x"),
        ("one roster change applied to the rules", med(change), ""),
        (f"the same {args.yaml_items:,} items as a YAML config section (load_config)",
         yaml_load[0], f"{yaml_load[0] / med(raw):.1f}x"),
    ]
    print(f"{args.items:,} items on the book, median of {args.rounds} rounds")
    for name, seconds, ratio in rows:
        print(f"  {name:<62} {seconds:8.3f} s  {ratio}")
    out = harness.results_path("records", args.output)
    out.write_text(json.dumps({"items": args.items, "rounds": args.rounds,
                               "machine": harness.machine(),
                               "seconds": {name: s for name, s, _ in rows}}, indent=1))
    print(f"written {out}")


if __name__ == "__main__":
    main()
