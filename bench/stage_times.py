"""Where a reading's microseconds go inside the running daemon (`depot_rate.py --stage-times`).

py-spy's samples (a GIL-holder's stack at 250 Hz) and cProfile (which multiplies the cost of
every call, so the rules' many small ones most) did not agree on what the rules cost in the
daemon; `bench/ingest.py` times them in-process, hot, without the link, the threads or the
other receivers around them. This times them where they run.

As a launcher, `python bench/stage_times.py <depotwatch arguments>`, it wraps a fixed list of
the daemon's stages (the link's reader, ingest, decode, the rule engine and every rule kind,
the state save, the spool commit, the records and audit writes) with a clock each, times the
cyclic GC's collections per generation, then runs `depotwatch` as `python -m daemon.cli`
would. On SIGUSR2 it appends the totals so far to `$DEPOTWATCH_STAGE_TIMES/<pid>.jsonl`; the
bench sends it at the start and at the end of a measured window and reads the difference.

Clocks: the event loop's stages are timed by the wall clock (perf_counter_ns, 70 ns a read:
that thread waits for nothing inside them, but time it was preempted counts); the worker
threads' (`*` in the table) by their own thread's CPU clock (thread_time_ns, 600 ns a read: a
system call, too dear for a rule's every call), not counting fsync waits. Every timed call
adds the wrapper's cost to itself and to the stages around it; the launcher measures that cost
(`wrapper_ns`) and the table gives it.
"""

from __future__ import annotations

import functools
import gc
import importlib
import inspect
import json
import os
import pkgutil
import runpy
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ENV = "DEPOTWATCH_STAGE_TIMES"

# (module, class, method, label, clock): "wall" on the event loop, "thread" in a worker.
STAGES = [
    ("drivers.mqtt_reader", "PublishReader", "__call__", "link: PUBLISH packets read", "wall"),
    ("daemon.runner", "Daemon", "_on_message", "daemon: one message", "wall"),
    ("daemon.ingest.pipeline", "Pipeline", "ingest", "pipeline: ingest", "wall"),
    ("daemon.ingest.pipeline", "Pipeline", "_decode", "pipeline: decode", "wall"),
    ("daemon.tsdb.points", "ReadingLines", "__call__", "pipeline: line protocol", "wall"),
    ("daemon.web.recent", "RecentEvents", "reading", "console: recent events", "wall"),
    ("rules.engine", "Engine", "outcomes", "rules: engine (every rule)", "wall"),
    ("daemon.ingest.pipeline", "Pipeline", "_apply", "pipeline: apply outcomes", "wall"),
    ("daemon.ingest.pipeline", "Pipeline", "tick", "pipeline: tick", "wall"),
    ("daemon.runner", "Daemon", "_state", "state: snapshot", "wall"),
    ("daemon.statefile", "StateFile", "save", "state: save*", "thread"),
    ("daemon.spool.store", "Spool", "_commit", "spool: commit*", "thread"),
    ("daemon.book.store", "RecordsStore", "write", "records: write*", "thread"),
    ("daemon.alerts.audit", "AuditLog", "record_all", "audit: entries*", "thread"),
]

MESSAGE = "daemon: one message"  # its calls in the window: the readings taken
_totals: dict[str, list[int]] = {}


def _timed(function: Callable[..., Any], label: str, clock: Callable[[], int]
           ) -> Callable[..., Any]:
    tally = _totals.setdefault(label, [0, 0])

    @functools.wraps(function)
    def timed(*args: Any, **kwargs: Any) -> Any:
        start = clock()
        try:
            return function(*args, **kwargs)
        finally:
            tally[0] += 1
            tally[1] += clock() - start

    return timed


def _wrap(cls: type, method: str, label: str, clock: Callable[[], int]) -> None:
    setattr(cls, method, _timed(cls.__dict__[method], label, clock))


def install() -> list[str]:
    """Wrap the stages and every rule kind's `observe`; the stages this tree lacks."""
    missing = []
    clocks = {"wall": time.perf_counter_ns, "thread": time.thread_time_ns}
    for module, cls_name, method, label, clock in STAGES:
        cls = getattr(importlib.import_module(module), cls_name, None)
        if cls is None or method not in cls.__dict__:
            missing.append(f"{module}.{cls_name}.{method}")
            continue
        _wrap(cls, method, label, clocks[clock])
    # Before the engine binds the rules' `observe` methods, so the bound ones are the timed.
    rules = importlib.import_module("rules")
    for info in pkgutil.iter_modules(rules.__path__):
        rule_module = importlib.import_module(f"rules.{info.name}")
        for name, cls in vars(rule_module).items():
            if (inspect.isclass(cls) and cls.__module__ == rule_module.__name__
                    and "observe" in cls.__dict__ and name != "Engine"):
                _wrap(cls, "observe", f"rule: {name}", time.perf_counter_ns)
    return missing


def time_collections() -> None:
    """The cyclic GC's collections, timed per generation (a stage of their own)."""
    started = [0]
    # Made here, not at a first collection: that may run on a worker thread while SIGUSR2's
    # dump walks the totals on the main one.
    tallies = [_totals.setdefault(f"gc: generation {g}", [0, 0]) for g in range(3)]

    def collected(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter_ns()
        else:
            tally = tallies[info["generation"]]
            tally[0] += 1
            tally[1] += time.perf_counter_ns() - started[0]

    gc.callbacks.append(collected)


def wrapper_ns() -> float:
    """What one timed call adds, ns: a timed no-op against the bare one."""
    def nothing() -> None:
        return None

    timed = _timed(nothing, "_calibration", time.perf_counter_ns)
    best = []
    for function in (nothing, timed):
        runs = []
        for _ in range(5):
            start = time.perf_counter_ns()
            for _ in range(100_000):
                function()
            runs.append(time.perf_counter_ns() - start)
        best.append(min(runs) / 100_000)
    del _totals["_calibration"]
    return best[1] - best[0]


def main() -> None:
    """Launcher: wrap, then run depotwatch with this process's arguments."""
    out = Path(os.environ[ENV]) / f"{os.getpid()}.jsonl"
    missing = install()
    overhead = wrapper_ns()
    time_collections()

    def dump(*_: object) -> None:
        # Runs inside whatever the main thread was doing: a failure here must not end the
        # daemon under test (the bench then finds no window and says so).
        try:
            stages = {k: list(v) for k, v in list(_totals.items())}
            with out.open("a") as f:
                f.write(json.dumps({"wrapper_ns": overhead, "missing": missing,
                                    "stages": stages}) + "\n")
        except Exception as exc:
            print(f"stage_times: totals not written: {exc!r}", file=sys.stderr)

    signal.signal(signal.SIGUSR2, dump)
    sys.argv = ["depotwatch", *sys.argv[1:]]
    runpy.run_module("daemon.cli", run_name="__main__", alter_sys=True)


def launch_timed(daemons: Iterable[Any], into: str) -> None:
    """Make every bench daemon (`DaemonTarget`s) start through this launcher, dumping into
    `into`."""
    Path(into).mkdir(parents=True, exist_ok=True)
    os.environ[ENV] = str(Path(into).resolve())
    for daemon in daemons:
        daemon.launcher = [sys.executable, str(Path(__file__).resolve())]


def mark(pid: int) -> None:
    """Ask a timed daemon for its totals so far (window start or end)."""
    os.kill(pid, signal.SIGUSR2)
    time.sleep(0.05)  # written on the daemon's main thread at its next bytecode


def dumps_of(pid: int) -> Path:
    """Where a timed daemon writes its totals."""
    return Path(os.environ[ENV]) / f"{pid}.jsonl"


def window(path: Path) -> dict[str, Any]:
    """The last two dumps' difference: per stage, calls and µs per message taken."""
    lines = path.read_text().splitlines() if path.exists() else []
    if len(lines) < 2:  # the daemon's log says why (stage_times: totals not written)
        return {"error": f"{path}: {len(lines)} dump(s), 2 needed"}
    first, last = (json.loads(line) for line in lines[-2:])
    calls, calls0 = (d["stages"].get(MESSAGE, [0, 0])[0] for d in (last, first))
    readings = calls - calls0
    stages = {}
    for label, (calls, ns) in last["stages"].items():
        calls0, ns0 = first["stages"].get(label, [0, 0])
        if calls > calls0:
            stages[label] = {"calls_per_reading": (calls - calls0) / max(readings, 1),
                             "us_per_reading": (ns - ns0) / 1000 / max(readings, 1)}
    return {"wrapper_ns": last["wrapper_ns"], "missing": last["missing"], "readings": readings,
            "stages": stages}


def table(phases: list[dict[str, Any]]) -> str:
    """Per receiver and rate, the medians of the stages' µs per reading, slowest first."""
    out = []
    timed = [p for p in phases if p.get("stages", {}).get("stages")]
    for who, rate in sorted({(p["who"], p["rate"]) for p in timed}):
        mine = [p["stages"] for p in timed if p["who"] == who and p["rate"] == rate]
        labels = {label for s in mine for label in s["stages"]}
        rows = sorted(((statistics.median(s["stages"].get(label, {}).get("us_per_reading", 0.0)
                                          for s in mine),
                        statistics.median(s["stages"].get(label, {}).get("calls_per_reading",
                                                                         0.0) for s in mine),
                        label) for label in labels), reverse=True)
        out += [f"\n{who} at {rate}/s (wrapper {mine[0]['wrapper_ns']:.0f} ns a timed call; "
                "* worker thread CPU)", "| stage | µs per reading | calls per reading |",
                "|---|---|---|"]
        out += [f"| {label} | {us:.2f} | {calls:.2f} |" for us, calls, label in rows
                if us >= 0.05]
    return "\n".join(out)


if __name__ == "__main__":
    main()
