"""Every long-running task of the daemon under a supervisor: a failure is logged once, raised
as a `task_failed` fault alert, and the task restarted with back-off.

A guard that exits when one of its parts fails leaves the depot unwatched until systemd brings
it back, and a part that fails at every start (a file the disk refuses, a server gone) puts it
in a crash loop (issue 24). So only a signal ends the daemon; a failing part is retried, at
most once a minute once it keeps failing, while every other part runs on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

__all__ = ["Supervisor", "backoff_s"]

log = logging.getLogger(__name__)

# fault name, subject, active, summary: what Pipeline.fault takes, less the time.
Fault = Callable[[str, str, bool, str], None]
Failed = Callable[[str, BaseException], None]


def backoff_s(failures: int, first_s: float, max_s: float) -> float:
    """The wait before restarting a task after its `failures`-th failure in a row."""
    return float(min(max_s, first_s * 2 ** min(max(failures - 1, 0), 32)))


class Supervisor:
    """Starts tasks in `group` and restarts each that raises; a task that returns ends."""

    def __init__(self, group: asyncio.TaskGroup, fault: Fault, failed: Failed | None = None,
                 *, first_s: float = 1.0, max_s: float = 60.0, steady_s: float = 60.0) -> None:
        self._group = group
        self._fault = fault
        self._failed = failed
        self._first_s, self._max_s, self._steady_s = first_s, max_s, steady_s
        self.restarts: dict[str, int] = {}

    def start(self, name: str, run: Callable[[], Awaitable[object]]) -> asyncio.Task[None]:
        """Run `run()` as task `name`, again after each failure."""
        return self._group.create_task(self._keep(name, run), name=name)

    async def _keep(self, name: str, run: Callable[[], Awaitable[object]]) -> None:
        failures = 0
        steady: asyncio.TimerHandle | None = None
        while True:
            began = time.monotonic()
            try:
                await run()
                return
            except Exception as exc:  # CancelledError (the stop) is no Exception: it ends us
                if steady is not None:
                    steady.cancel()
                failures = 1 if time.monotonic() - began >= self._steady_s else failures + 1
                wait = backoff_s(failures, self._first_s, self._max_s)
                self._report(name, exc, failures, wait)
            await asyncio.sleep(wait)
            self.restarts[name] = self.restarts.get(name, 0) + 1
            # Running for steady_s again ends the fault; a failure before that keeps it.
            steady = asyncio.get_running_loop().call_later(
                self._steady_s, self._fault, "task_failed", name, False,
                f"task {name} running again")

    def _report(self, name: str, error: Exception, failures: int, wait_s: float) -> None:
        # One line per failure, the traceback only with the first of a run of them.
        log.error("task %r failed: %s: %s; restarting it in %.0f s (%d in a row)", name,
                  type(error).__name__, error, wait_s, failures,
                  exc_info=error if failures == 1 else None)
        try:
            self._fault("task_failed", name, True,
                        f"task {name} failed ({type(error).__name__}: {error}); restarting")
        except Exception:  # the alert path itself broken: the log line above still says it
            log.exception("task_failed fault for %r not raised", name)
        if self._failed is not None:
            self._failed(name, error)
