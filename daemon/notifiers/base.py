"""The notifier contract and the outbox that retries each notifier until delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from typing import Protocol

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError

__all__ = ["Notifier", "Outbox"]

log = logging.getLogger(__name__)


class Notifier(Protocol):
    """Delivers one alert change; raises NotifierError(retryable=...) when it cannot."""

    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver the alert."""
        ...


class Outbox:
    """Alert changes waiting for one notifier, delivered in order, retried with backoff.

    What is pending goes into the daemon's state file with every alert change, so a restart
    delivers it (at least once: a change sent just before a crash may be sent again).
    """

    def __init__(self, notifier: Notifier, *, retry_min_s: float = 0.5,
                 retry_max_s: float = 30.0) -> None:
        self.notifier = notifier
        self._pending: deque[Alert] = deque()
        self._wakeup = asyncio.Event()
        # Set when the notifier's path came back (the broker reconnected): end the backoff now.
        self._retry = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self.delivered = 0
        self.failed = 0

    def put(self, alert: Alert) -> None:
        """Queue one alert change; never blocks and never drops."""
        self._pending.append(alert)
        self._idle.clear()
        self._wakeup.set()

    def retry_now(self) -> None:
        """The way to the notifier is back: cut a running backoff short and send at once."""
        self._retry.set()

    def pending(self) -> list[Alert]:
        """Alert changes not yet delivered, oldest first (for the state file): a notifier that
        hands changes on before they are confirmed (MQTT: until the PUBACK) counts those too."""
        unconfirmed = getattr(self.notifier, "unconfirmed", None)
        sent = unconfirmed() if callable(unconfirmed) else []
        return [*sent, *self._pending]

    def restore(self, alerts: list[Alert]) -> None:
        """Queue again what was undelivered when the daemon stopped."""
        for alert in alerts:
            self.put(alert)

    @property
    def backlog(self) -> int:
        """Alert changes not yet delivered."""
        return len(self._pending)

    async def run(self) -> None:
        """Deliver forever; cancellation is the shutdown path."""
        delay = self._retry_min_s
        while True:
            if not self._pending:
                self._idle.set()
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            alert = self._pending[0]
            try:
                await self.notifier.send(alert)
            except NotifierError as exc:
                self.failed += 1
                if not exc.retryable:
                    log.error("notifier %s gave up on alert %s: %s",
                              self.notifier.name, alert.key, exc)
                    self._pending.popleft()
                    continue
                log.warning("notifier %s failed for alert %s (%s); retrying in %.1f s",
                            self.notifier.name, alert.key, exc, delay)
                self._retry.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(delay):
                        await self._retry.wait()
                delay = (self._retry_min_s if self._retry.is_set()
                         else min(self._retry_max_s, delay * 2))
                continue
            self._pending.popleft()
            self.delivered += 1
            delay = self._retry_min_s

    async def drain(self, timeout_s: float) -> None:
        """Wait until everything queued is delivered, or the timeout passes."""
        try:
            # Not wait_for: on Python 3.11 it can swallow the caller's cancellation.
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("notifier %s: %d alert change(s) undelivered at shutdown",
                        self.notifier.name, len(self._pending))
