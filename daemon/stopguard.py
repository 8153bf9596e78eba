"""How `depotwatch run` ends: SIGTERM stops it gracefully, and nothing can keep it alive after.

A guard must be restartable: systemd restarts it when it exits, but not while it hangs. So a
graceful stop or a failed task is bounded by a forced exit, and a signal that arrives while
the daemon is already stopping ends the process at once. The durable spool and the state file
make a forced exit lose no more than a SIGKILL would (section "Nothing lost").
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import threading
import types

__all__ = ["EXIT_FAILED", "EXIT_STUCK", "StopGuard"]

log = logging.getLogger(__name__)

# A task of the daemon failed: systemd's Restart=on-failure starts it again.
EXIT_FAILED = 1
# The stop did not finish in time (or was signalled again) and was cut short.
EXIT_STUCK = 2


class StopGuard:
    """SIGTERM/SIGINT set `stop` once; a second signal, or a stop that overruns, exits at once.

    The handlers are installed with `signal.signal`, not `loop.add_signal_handler`: the loop's
    handlers run only while the loop does, and a stop stuck in a task that ignores its
    cancellation, in asyncio.run's executor shutdown or in the interpreter's thread joins
    would have ignored every later SIGTERM. The deadlines run on a daemon thread for the same
    reason.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, stop: asyncio.Event, *,
                 stop_timeout_s: float = 10.0, failure_timeout_s: float = 5.0) -> None:
        self._loop = loop
        self._stop = stop
        self._stop_timeout_s = stop_timeout_s
        self._failure_timeout_s = failure_timeout_s
        self._stopping: str | None = None  # why the daemon is stopping, once it is
        self._lock = threading.Lock()

    def install(self) -> None:
        """Take over SIGTERM and SIGINT for the rest of the process's life."""
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._signalled)

    def failed(self, task: str, error: BaseException) -> None:
        """A task of the daemon failed: the teardown gets `failure_timeout_s`, then we exit."""
        self._begin(f"task {task!r} failed", self._failure_timeout_s, EXIT_FAILED)

    def _signalled(self, signum: int, frame: types.FrameType | None) -> None:
        name = signal.Signals(signum).name
        if self._stopping is not None:
            self._exit(f"{name} while stopping ({self._stopping})", EXIT_STUCK)
        self._begin(f"{name} received", self._stop_timeout_s, EXIT_STUCK)
        try:
            self._loop.call_soon_threadsafe(self._stop.set)
        except RuntimeError:  # the loop is closed: only the interpreter's exit is left
            self._exit(f"{name} after the event loop ended", EXIT_STUCK)

    def _begin(self, why: str, timeout_s: float, code: int) -> None:
        with self._lock:
            if self._stopping is not None:
                return
            self._stopping = why
        timer = threading.Timer(timeout_s, self._exit,
                                (f"{why}, and the daemon did not stop within {timeout_s:g} s",
                                 code))
        timer.daemon = True  # never what keeps the interpreter alive
        timer.name = "stop-deadline"
        timer.start()

    @staticmethod
    def _exit(why: str, code: int) -> None:
        log.critical("%s; exiting now (status %d)", why, code)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stderr.flush()
        os._exit(code)
