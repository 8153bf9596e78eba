"""The notifier contract and the outbox that retries each notifier until delivery."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Protocol

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError

__all__ = ["Notifier", "NotifierFigures", "Outbox", "Refusal", "RefusalShown"]

log = logging.getLogger(__name__)

# How many refused or given-up alert changes an outbox keeps for `depotwatch alerts` and the
# API; older ones are only counted.
_REFUSALS_KEPT = 100


class Notifier(Protocol):
    """Delivers one alert change; raises NotifierError(retryable=...) when it cannot."""

    name: str

    async def send(self, alert: Alert) -> None:
        """Deliver the alert."""
        ...


@dataclass(frozen=True, slots=True)
class Refusal:
    """An alert change a notifier will never deliver, and why."""

    alert: Alert
    reason: str
    at_s: float


@dataclass(frozen=True, slots=True)
class RefusalShown:
    """A refused or given-up alert change as officers see it: its key, state and reason."""

    key: str
    state: str
    reason: str
    at_s: float


@dataclass(frozen=True, slots=True)
class NotifierFigures:
    """One notifier's counts and its kept refusals (API `/api/v1/notifiers`, `depotwatch
    alerts notifiers`)."""

    name: str
    delivered: int
    failed: int
    retried: int
    refused: int
    given_up: int
    backlog: int
    refusals: list[RefusalShown]
    # A dual path's deliveries by the path that made them (primary or fallback name).
    delivered_by: dict[str, int] = field(default_factory=dict)


@dataclass(slots=True)
class _Retry:
    """Changes of one alert key held back because the first of them failed to deliver."""

    changes: deque[Alert]
    delay_s: float
    due_s: float
    since_s: float
    last_error: str = ""
    attempts: int = 1
    later: list[Alert] = field(default_factory=list)


class Outbox:
    """Alert changes waiting for one notifier, retried with backoff per alert.

    Changes of one alert keep their order; a change the notifier cannot take right now is held
    back with its own backoff, and the changes of other alerts go on past it: one alert a
    receiver chokes on (a poison key, a payload it refuses) never blocks the rest. A change
    refused for good, or undeliverable for `give_up_after_s`, is kept with its reason.
    What is pending goes into the daemon's state file with every alert change, so a restart
    delivers it (at least once: a change sent just before a crash may be sent again).
    """

    def __init__(self, notifier: Notifier, *, retry_min_s: float = 0.5,
                 retry_max_s: float = 30.0, give_up_after_s: float = 86_400.0) -> None:
        self.notifier = notifier
        self._ready: deque[Alert] = deque()
        # The change being sent now: still undelivered until the notifier returns.
        self._sending: Alert | None = None
        self._retries: dict[str, _Retry] = {}
        self._wakeup = asyncio.Event()
        # Set when the notifier's path came back (the broker reconnected): end every backoff.
        self._retry_all = False
        self._idle = asyncio.Event()
        self._idle.set()
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._give_up_after_s = give_up_after_s
        self.refusals: deque[Refusal] = deque(maxlen=_REFUSALS_KEPT)
        # delivered: sent and taken; failed: attempts that failed; retried: attempts that were
        # a retry; refused: changes the receiver refused for good; given_up: changes dropped
        # after give_up_after_s of failures.
        self.delivered = 0
        self.failed = 0
        self.retried = 0
        self.refused = 0
        self.given_up = 0

    def put(self, alert: Alert) -> None:
        """Queue one alert change; never blocks and never drops."""
        self._ready.append(alert)
        self._idle.clear()
        self._wakeup.set()

    def retry_now(self) -> None:
        """The way to the notifier is back: cut every running backoff short and send at once."""
        self._retry_all = True
        self._wakeup.set()

    def pending(self) -> list[Alert]:
        """Alert changes not yet delivered, oldest first (for the state file): a notifier that
        hands changes on before they are confirmed (MQTT: until the PUBACK) counts those too."""
        unconfirmed = getattr(self.notifier, "unconfirmed", None)
        sent = unconfirmed() if callable(unconfirmed) else []
        held = [a for r in self._retries.values() for a in (*r.changes, *r.later)]
        sending = [self._sending] if self._sending is not None else []
        return [*sent, *held, *sending, *self._ready]

    def restore(self, alerts: list[Alert]) -> None:
        """Queue again what was undelivered when the daemon stopped."""
        for alert in alerts:
            self.put(alert)

    @property
    def backlog(self) -> int:
        """Alert changes not yet delivered."""
        held = sum(len(r.changes) + len(r.later) for r in self._retries.values())
        return len(self._ready) + held + (self._sending is not None)

    def figures(self) -> NotifierFigures:
        """The counts, the backlog and the refusals kept, newest last."""
        return NotifierFigures(
            self.notifier.name, self.delivered, self.failed, self.retried, self.refused,
            self.given_up, self.backlog,
            [RefusalShown(r.alert.key, str(r.alert.state), r.reason, r.at_s)
             for r in self.refusals],
            dict(getattr(self.notifier, "delivered_by", {})))

    async def run(self) -> None:
        """Deliver forever; cancellation is the shutdown path."""
        while True:
            await self._retry_due()
            if self._ready:
                await self._deliver(self._ready.popleft())
                continue
            if not self._retries:
                self._idle.set()
            self._wakeup.clear()
            wait_s = (min(r.due_s for r in self._retries.values()) - time.monotonic()
                      if self._retries else None)
            if wait_s is not None and wait_s <= 0:
                continue
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait_s):
                    await self._wakeup.wait()

    async def _deliver(self, alert: Alert) -> None:
        retry = self._retries.get(alert.key)
        if retry is not None:  # an older change of this alert is still held back
            retry.later.append(alert)
            return
        self._sending = alert
        try:
            await self.notifier.send(alert)
        except NotifierError as exc:
            self.failed += 1
            if not exc.retryable:
                self._refuse(alert, str(exc))
                return
            now = time.monotonic()
            delay = self._retry_min_s
            self._retries[alert.key] = _Retry(deque([alert]), delay, now + delay, now, str(exc))
            log.warning("notifier %s failed for alert %s (%s); retrying in %.1f s",
                        self.notifier.name, alert.key, exc, delay, extra={"alert_key": alert.key})
            return
        except asyncio.CancelledError:
            self._ready.appendleft(alert)  # the shutdown: still pending for the state file
            raise
        finally:
            self._sending = None
        self.delivered += 1

    async def _retry_due(self) -> None:
        every = self._retry_all
        self._retry_all = False
        now = time.monotonic()
        for key, retry in list(self._retries.items()):
            if not every and retry.due_s > now:
                continue
            await self._retry(key, retry)

    async def _retry(self, key: str, retry: _Retry) -> None:
        while retry.changes:
            alert = retry.changes[0]
            self.retried += 1
            try:
                await self.notifier.send(alert)
            except NotifierError as exc:
                self.failed += 1
                if not exc.retryable:
                    retry.changes.popleft()
                    self._refuse(alert, str(exc))
                    continue
                self._back_off(key, retry, str(exc))
                return
            retry.changes.popleft()
            self.delivered += 1
        # Delivered: what came for this alert meanwhile goes first, in its order.
        del self._retries[key]
        self._ready.extendleft(reversed(retry.later))

    def _back_off(self, key: str, retry: _Retry, error: str) -> None:
        now = time.monotonic()
        retry.attempts += 1
        retry.last_error = error
        if now - retry.since_s >= self._give_up_after_s:
            del self._retries[key]
            reason = (f"undelivered for {now - retry.since_s:.0f} s after {retry.attempts} "
                      f"attempts; last error: {error}")
            for alert in (*retry.changes, *retry.later):
                self.given_up += 1
                self.refusals.append(Refusal(alert, reason, time.time()))
            log.error("notifier %s gave up on alert %s: %s", self.notifier.name, key, reason,
                      extra={"alert_key": key})
            return
        retry.delay_s = min(self._retry_max_s, retry.delay_s * 2)
        retry.due_s = now + retry.delay_s
        log.warning("notifier %s failed for alert %s (%s); retrying in %.1f s",
                    self.notifier.name, key, error, retry.delay_s, extra={"alert_key": key})

    def _refuse(self, alert: Alert, reason: str) -> None:
        self.refused += 1
        self.refusals.append(Refusal(alert, reason, time.time()))
        log.error("notifier %s gave up on alert %s: %s", self.notifier.name, alert.key, reason,
                  extra={"alert_key": alert.key})

    async def drain(self, timeout_s: float) -> None:
        """Wait until everything queued is delivered, or the timeout passes."""
        try:
            # Not wait_for: on Python 3.11 it can swallow the caller's cancellation.
            async with asyncio.timeout(timeout_s):
                await self._idle.wait()
        except TimeoutError:
            log.warning("notifier %s: %d alert change(s) undelivered at shutdown",
                        self.notifier.name, self.backlog)
