"""Per-message CPU of `Pipeline.ingest` on bench/depot.py's depot mix, and of its parts.

No MQTT and no network: the daemon's pipeline (routers, every rule kind, the console's recent
events, the alert book) is built from `bench/depot_mix.py`'s config and fed the mix's messages in
a loop, with the receipt digest computed as the runner does. Stores: `spool` (a real `Spool` with
fsync off, its commits awaited every 1,000 messages as the MQTT link's backlog bound would) and
`none` (a store that keeps nothing). The baseline, in the same run, is the decode alone (route,
decoder, known-sensor check and the device watch's sorting); the parts (digest, decode, line
protocol, rules, recent events) are timed alone on the same decoded readings, so they show where
`ingest`'s time goes; `device_watch_us` is the share of the decode the device watch takes.

Timing is process CPU time per message, the best of `--repeat` passes over the whole mix (rules
keep state between passes, as they would in a daemon; the mix's bursts leave every tag where it
started). `--profile` prints cProfile's top functions for one pass instead.

Run: `.venv/bin/python bench/ingest.py [--sensors 100] [--messages 30000] [--output FILE]`.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import datetime as dt
import json
import os
import platform
import pstats
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.depot_mix import Mix, daemon_config, layout, make_mix
from daemon.assembly import build_pipeline
from daemon.config.schema import Config
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.pipeline import Pipeline, receipt_digest
from daemon.spool.store import Spool
from daemon.tsdb.points import ReadingLines
from daemon.vocabulary.readings import RawMessage, Reading
from daemon.web.recent import RecentEvents
from rules.engine import Engine

PREFIX = "bench"
IN_FLIGHT = 1000  # the MQTT link's bound on unacknowledged messages


def _config(sensors: int, state_dir: Path) -> Config:
    config = daemon_config(layout(sensors), site="bench", prefix=PREFIX,
                           state_dir=str(state_dir), mqtt_port=1883,
                           influx_url="http://127.0.0.1:1", influx_db="bench",
                           vm_url="http://127.0.0.1:1", fsync=False, webhook_url=None)
    return Config.model_validate(config)


def _pipeline(config: Config, store: Callable[..., Awaitable[None] | None],
              receipts: Any) -> Pipeline:
    # As the daemon builds it, less the outboxes and the alarm desk (the mix raises none).
    depot = config.depot()
    deadletters = DeadLetterStore(config.state_dir / "dl.sqlite", config.deadletters)
    return build_pipeline(config, depot, deadletters, store, receipts, notify=[],
                          listeners=[RecentEvents(depot).reading])


class _Clock:
    """Message times one millisecond apart, continuing across passes (the rules keep state)."""

    def __init__(self) -> None:
        self.ns = time.time_ns()

    def raws(self, messages: list[tuple[str, bytes]]) -> list[RawMessage]:
        out = []
        for topic, payload in messages:
            self.ns += 1_000_000
            out.append(RawMessage(f"{PREFIX}/{topic}", payload, self.ns))
        return out


def _cpu_per_message(run: Callable[[], object], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        run()
        best = min(best, time.process_time() - start)
    return best / n * 1e6


async def _warm_up(pipelines: tuple[Pipeline, ...], clock: _Clock,
                   messages: list[tuple[str, bytes]]) -> None:
    # Route and series caches filled, every rule's per-sensor state made.
    # Awaited every IN_FLIGHT messages, as the passes do: the spool commits by window (250 ms),
    # so awaiting each message's commit took 250 ms a message.
    for pipeline in pipelines:
        pending: Awaitable[None] | None = None
        for i, raw in enumerate(clock.raws(messages)):
            pending = pipeline.ingest(raw, raw.received_ns) or pending
            if i % IN_FLIGHT == IN_FLIGHT - 1 and pending is not None:
                await pending
                pending = None
        if pending is not None:
            await pending


def _spool_pass(spooled: Pipeline) -> Callable[[list[RawMessage]], Awaitable[float]]:
    async def spool_pass(raws: list[RawMessage]) -> float:
        start = time.process_time()
        pending: Awaitable[None] | None = None
        for i, raw in enumerate(raws):
            digest = receipt_digest(raw)
            pending = spooled.ingest(raw, raw.received_ns, digest) or pending
            if i % IN_FLIGHT == IN_FLIGHT - 1 and pending is not None:
                # The commit itself runs on the spool's thread: its CPU is counted as well.
                await pending
        if pending is not None:
            await pending
        return time.process_time() - start

    return spool_pass


def _ingest_pass(unstored: Pipeline) -> Callable[[list[RawMessage]], None]:
    def ingest_pass(raws: list[RawMessage]) -> None:
        for raw in raws:
            unstored.ingest(raw, raw.received_ns, receipt_digest(raw))

    return ingest_pass


def _parts(config: Config, unstored: Pipeline, clock: _Clock, mix: Mix,
           raws_once: list[RawMessage], repeat: int) -> dict[str, float]:
    """The parts alone, on the same decoded readings, against an engine of their own."""
    n = len(mix.messages)
    results: dict[str, float] = {}
    decode = unstored._decode  # the baseline is exactly the pipeline's own decode
    results["digest_us"] = _cpu_per_message(
        lambda: [receipt_digest(raw) for raw in raws_once], n, repeat)
    results["decode_us"] = _cpu_per_message(
        lambda: [decode(raw) for raw in raws_once], n, repeat)
    readings: list[Reading] = [r for raw in raws_once for r in decode(raw)]
    # Part of the decode above: the device watch's sorting (known sensor, availability, fields
    # no rule reads), on readings already decoded.
    sort = unstored.devices.sort
    results["device_watch_us"] = _cpu_per_message(
        lambda: [sort([r], 0) for r in readings], n, repeat)
    depot = config.depot()
    reading_lines = ReadingLines(depot)  # as the pipeline holds one
    results["line_protocol_us"] = _cpu_per_message(
        lambda: [reading_lines(r) for r in readings], n, repeat)
    recent = RecentEvents(depot).reading
    results["recent_events_us"] = _cpu_per_message(
        lambda: [recent(r) for r in readings], n, repeat)
    engine = Engine([(rule.type, rule.build(depot)) for rule in config.rule_set()], depot)

    decoded = [decode(raw) for raw in raws_once]

    def clock_readings() -> list[Reading]:
        # Fresh times every pass, so that the engine never drops the readings as stale.
        return [Reading(r.sensor, raw.received_ns, r.values)
                for raw, rs in zip(clock.raws(mix.messages), decoded, strict=True) for r in rs]

    def rules_pass() -> None:
        outcomes = engine.outcomes  # the pipeline's way into the engine
        for reading in clock_readings():
            outcomes(reading, reading.at_ns)

    rebuild_us = _cpu_per_message(clock_readings, n, repeat)
    results["rules_us"] = _cpu_per_message(rules_pass, n, repeat) - rebuild_us
    return results


async def _measure(args: argparse.Namespace, state_dir: Path) -> dict[str, Any]:
    config = _config(args.sensors, state_dir)
    mix = make_mix(layout(args.sensors), args.messages)
    n = len(mix.messages)
    clock = _Clock()
    results: dict[str, Any] = {"messages": n, "kinds": dict(mix.kinds)}

    spool = Spool(state_dir / "spool.sqlite", ["t"], max_bytes=1 << 34, fsync=False)
    await spool.open()
    committer = asyncio.create_task(spool.run())
    spooled = _pipeline(config, spool.append, spool.receipts)
    unstored = _pipeline(config, lambda lines, receipts: None, {})
    await _warm_up((spooled, unstored), clock, mix.messages)
    ingest_pass = _ingest_pass(unstored)

    if args.profile:
        raws = clock.raws(mix.messages)
        profile = cProfile.Profile()
        profile.runcall(ingest_pass, raws)
        pstats.Stats(profile).sort_stats("tottime").print_stats(args.profile)
        committer.cancel()
        await spool.close()
        return results

    spool_pass = _spool_pass(spooled)
    results["ingest_spool_us"] = min([await spool_pass(clock.raws(mix.messages))
                                      for _ in range(args.repeat)]) / n * 1e6
    committer.cancel()
    await spool.close()

    def fresh(fn: Callable[[list[RawMessage]], None]) -> Callable[[], object]:
        # New receive times every pass: a message is never a redelivery of the last pass.
        return lambda: fn(clock.raws(mix.messages))

    raws_once = clock.raws(mix.messages)
    make_raws_us = _cpu_per_message(lambda: clock.raws(mix.messages), n, args.repeat)
    results["ingest_no_store_us"] = (_cpu_per_message(fresh(ingest_pass), n, args.repeat)
                                     - make_raws_us)
    results.update(_parts(config, unstored, clock, mix, raws_once, args.repeat))
    results["spool_append_us"] = results["ingest_spool_us"] - results["ingest_no_store_us"]
    parts = ("digest_us", "decode_us", "line_protocol_us", "recent_events_us", "rules_us")
    results["rest_us"] = results["ingest_no_store_us"] - sum(results[k] for k in parts)
    return results


def main() -> None:
    """Measure, print, and write JSON if asked."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sensors", type=int, default=100)
    parser.add_argument("--messages", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", type=int, default=0, metavar="N",
                        help="print cProfile's top N functions of one pass instead")
    parser.add_argument("--output", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results = asyncio.run(_measure(args, Path(tmp)))
    if args.profile:
        return
    results["ingest_vs_decode"] = results["ingest_no_store_us"] / results["decode_us"]
    for key, value in results.items():
        print(f"{key:>20}: {value:.2f}" if isinstance(value, float) else f"{key:>20}: {value}")
    if args.output is not None:
        doc = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
               "machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                           "platform": platform.platform()},
               "sensors": args.sensors, "repeat": args.repeat, "results": results}
        args.output.parent.mkdir(parents=True, exist_ok=True)
        runs = json.loads(args.output.read_text()) if args.output.exists() else []
        runs.append(doc)
        args.output.write_text(json.dumps(runs, indent=2) + "\n")


if __name__ == "__main__":
    main()
