"""Faults the gateway finds in itself: its clock stepped, its disk refusing the state or spool;
the spool's health as `gateway` points, and its health sources (UPS, clock sync, disk, CPU
temperature) read into the pipeline."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import NoReturn

from daemon.config.schema import Config
from daemon.ingest.pipeline import Pipeline
from daemon.spool.store import Spool
from daemon.tsdb.writer import TsdbWriter
from daemon.vocabulary.clock import Clock
from drivers.gateway_health import GatewayHealth, GatewayHealthConfig

__all__ = ["SelfWatch"]

log = logging.getLogger(__name__)

# A jump of the wall clock against the steady clock larger than this between two ticks is a
# step (NTP slews by at most 0.5 ms per second).
_CLOCK_STEP_NS = 1_000_000_000


class SelfWatch:
    """Raises and clears the gateway's own faults through the pipeline, once per change."""

    def __init__(self, clock: Clock, config: Config | None = None,
                 pipeline: Callable[[], Pipeline] | None = None) -> None:
        self._clock = clock
        self._pipeline = pipeline
        # The health sources, read into the pipeline in use (a reload swaps it).
        health = config.health if config is not None else GatewayHealthConfig(enabled=False)
        self.health = GatewayHealth(health, config.state_dir if config else Path("."),
                                    self._health_reading, self._health_fault)
        # Wall clock minus the steady clock, as last seen; the spool's last problem; whether
        # the last state save worked.
        self._wall_offset_ns = 0
        self._storage_problem: str | None = None
        self._state_saved = True

    def clock_step(self, pipeline: Pipeline, now_ns: int) -> None:
        """Follow the wall clock against the steady one; a step over 1 s is a fault.

        The rules run on the steady clock; a step moves only the time records are written
        with. Slewing (NTP's small corrections) is followed tick by tick without a fault.
        """
        wall_offset = getattr(self._clock, "wall_offset_ns", None)
        if wall_offset is None:
            return
        offset = wall_offset()
        step_ns = offset - self._wall_offset_ns
        self._wall_offset_ns = offset
        pipeline.set_record_offset(offset)
        if abs(step_ns) > _CLOCK_STEP_NS:
            log.warning("gateway clock stepped by %+.1f s; timers keep the steady clock",
                        step_ns / 1e9)
            pipeline.fault("clock_stepped", "gateway", True,
                           f"gateway clock stepped by {step_ns / 1e9:+.0f} s", now_ns)

    def state_saved(self, pipeline: Pipeline, error: OSError | None) -> None:
        """A state save worked (None) or the disk refused it: a full disk must not end the
        daemon; the state stays in memory and the next save that works clears the fault."""
        if (error is None) == self._state_saved:
            return
        self._state_saved = error is None
        if error is not None:
            log.error("engine state not saved: %s (kept in memory; retried)", error)
        pipeline.fault("storage_degraded", "state_file", error is not None,
                       f"state file not written: {error}" if error is not None
                       else "state file written again", self._clock.now_ns())

    def storage(self, pipeline: Pipeline, problem: str | None, now_ns: int) -> None:
        """One storage_degraded fault while the spool sheds points or the disk refuses."""
        if (problem is None) != (self._storage_problem is None):
            if problem is not None:
                log.error("storage degraded: %s", problem)
            pipeline.fault("storage_degraded", "spool", problem is not None,
                           problem or "spool storage back to normal", now_ns)
        self._storage_problem = problem

    async def report_storage(self, pipeline: Pipeline, spool: Spool,
                             writers: Sequence[TsdbWriter], interval_s: float) -> NoReturn:
        """Forever: the spool's fill, backlog and lag as a `spool` point (the spool_quota rule
        reads it), and a storage fault while the spool sheds points or the disk refuses."""
        while True:
            backlog = await spool.backlog()
            now = self._clock.now_ns()
            oldest = min((b.oldest_ns for b in backlog if b.oldest_ns), default=None)
            pipeline.gateway_reading("spool", {
                "fill_pct": round(spool.fill_pct, 2),
                "spool_points": float(max((b.points for b in backlog), default=0)),
                "lag_s": round((time.time_ns() - oldest) / 1e9, 3) if oldest else 0.0,
                "rejected_points": float(sum(w.rejected for w in writers)),
                "write_retries": float(sum(w.retries for w in writers)),
                "shed_points": float(spool.shed_points),
            }, now)
            self.storage(pipeline, spool.degraded, now)
            await asyncio.sleep(interval_s)

    def _health_reading(self, component: str, values: Mapping[str, float | bool]) -> None:
        if self._pipeline is not None:
            self._pipeline().gateway_reading(component, values, self._clock.now_ns())

    def _health_fault(self, fault: str, subject: str, active: bool, summary: str) -> None:
        if self._pipeline is not None:
            self._pipeline().fault(fault, subject, active, summary, self._clock.now_ns())
