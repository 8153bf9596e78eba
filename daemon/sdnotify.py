"""systemd service notifications (sd_notify(3)): READY=1, WATCHDOG=1, STOPPING=1, STATUS=."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from collections.abc import Callable, Mapping

__all__ = ["SystemdNotifier", "stale_after", "supervise", "watchdog_interval_s"]

log = logging.getLogger(__name__)


def _address(value: str) -> str | None:
    """The socket address from $NOTIFY_SOCKET: a path, or '@name' in the abstract namespace."""
    if value.startswith("@"):
        # sd_notify(3): a leading '@' stands for the NUL byte of Linux's abstract namespace.
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # e.g. systemd 253+ "vsock:CID:PORT", which a gateway's unit never hands us


def watchdog_interval_s(environ: Mapping[str, str] | None = None) -> float | None:
    """How often to send WATCHDOG=1 (half of WatchdogSec=), or None if no watchdog is armed."""
    env = os.environ if environ is None else environ
    usec, pid = env.get("WATCHDOG_USEC", ""), env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and pid != str(os.getpid()):
        return None  # meant for another process (sd_watchdog_enabled(3))
    # systemd's advice: ping at half the timeout, so one late wake-up never trips it.
    return int(usec) / 2e6


class SystemdNotifier:
    """Sends sd_notify datagrams; does nothing when not started by systemd (no $NOTIFY_SOCKET)."""

    def __init__(self, notify_socket: str | None) -> None:
        self._address = _address(notify_socket) if notify_socket else None
        self._sock: socket.socket | None = None
        self._failed = False
        if notify_socket and self._address is None:
            log.warning("NOTIFY_SOCKET=%r is not a unix socket address; systemd not notified",
                        notify_socket)

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        """The notifier for $NOTIFY_SOCKET (a no-op one if it is unset)."""
        env = os.environ if environ is None else environ
        return cls(env.get("NOTIFY_SOCKET") or None)

    @property
    def enabled(self) -> bool:
        """True when there is a socket to notify."""
        return self._address is not None

    def notify(self, *assignments: str) -> bool:
        """Send `VAR=value` lines in one datagram; False (logged once) if it could not be sent."""
        if self._address is None:
            return False
        message = "\n".join(assignments).encode()
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
                # Never let a full socket buffer stall the event loop: drop the datagram.
                self._sock.setblocking(False)
            self._sock.sendto(message, self._address)
        except OSError as exc:
            if not self._failed:
                log.warning("cannot notify systemd on %s: %s", self._address.lstrip("\0"), exc)
                self._failed = True
            return False
        self._failed = False
        return True

    def close(self) -> None:
        """Close the socket."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None


async def supervise(
    notifier: SystemdNotifier, inputs_up: asyncio.Event, *, ready_timeout_s: float,
    healthy: Callable[[], str | None], interval_s: float | None,
) -> None:
    """READY=1 once the inputs are up, then WATCHDOG=1 every `interval_s` while healthy."""
    # Without its inputs the daemon still reports ready after `ready_timeout_s`: it must run to
    # raise its own input-lost alarm (a unit stuck "activating" would be killed and restarted).
    # `healthy()` returns None, or the reason to withhold the ping so that systemd restarts us.
    try:
        # Not wait_for: on Python 3.11 a cancellation landing as the inputs come up is
        # swallowed, and the watchdog loop below would then keep the daemon's TaskGroup alive.
        async with asyncio.timeout(ready_timeout_s):
            await inputs_up.wait()
        status = "inputs up; supervising"
    except TimeoutError:
        status = "MQTT broker not reachable; supervising anyway (input-lost alarm)"
    notifier.notify("READY=1", f"STATUS={status}")
    if interval_s is None:
        return
    was_healthy = True
    while True:
        if inputs_up.is_set() and not status.startswith("inputs up"):
            status = "inputs up; supervising"
            notifier.notify(f"STATUS={status}")
        reason = healthy()
        if reason is None:
            if not was_healthy:
                log.warning("healthy again; watchdog pings resume")
                notifier.notify(f"STATUS={status}")
            notifier.notify("WATCHDOG=1")
        elif was_healthy:
            log.error("watchdog withheld: %s; systemd will restart the daemon", reason)
            notifier.notify(f"STATUS=unhealthy: {reason}")
        was_healthy = reason is None
        await asyncio.sleep(interval_s)


def stale_after(last_s: Callable[[], float], limit_s: float, what: str) -> Callable[[], str | None]:
    """A health check: a reason when `last_s()` (a monotonic time) is older than `limit_s`."""

    def check() -> str | None:
        age = time.monotonic() - last_s()
        return f"{what} last ran {age:.1f} s ago (limit {limit_s:g} s)" if age > limit_s else None

    return check
