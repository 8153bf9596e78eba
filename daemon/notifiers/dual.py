"""Two independent ways to one receiver (EN 50136 dual path): a primary notifier, and a
fallback used once the primary has failed for `fallback_after_s`.

The uplink is the first thing an intruder cuts: a webhook to HQ then fails, and the alarm must
leave by the mobile network (SMS, or an Apprise service on another link) instead. The paths are
other notifiers of the config, named here; they are told only through this one.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter, deque
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from daemon.notifiers.base import Notifier
from daemon.notifiers.common import NotifierSettings, Site
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError

__all__ = ["Delivery", "DualPathConfig", "DualPathNotifier"]

log = logging.getLogger(__name__)

# Deliveries kept with the path that made them, for officers and tests; older ones are counted.
_DELIVERIES_KEPT = 100

NotifierName = str


class DualPathConfig(NotifierSettings):
    """A primary notifier and a fallback taking over after the primary failed for a while."""

    example: ClassVar[dict[str, Any]] = {
        "type": "dual_path", "name": "hq", "primary": "hq-webhook", "fallback": "duty-sms",
    }

    type: Literal["dual_path"] = "dual_path"
    # Names of other notifiers of this config.
    primary: NotifierName = Field(min_length=1)
    fallback: NotifierName = Field(min_length=1)
    # How long the primary may fail before an alert goes by the fallback (EN 50136-1 leaves
    # it to the site; 30 s keeps a cut uplink well inside a critical alarm's 120 s repeat).
    fallback_after_s: float = Field(default=30.0, ge=0, le=3600)
    # `host:port` beyond the depot's uplink (HQ's receiver, the provider's router): when the
    # primary fails and this cannot be reached either, the uplink is down and the alert goes
    # by the fallback at once instead of after `fallback_after_s`.
    uplink_probe: str | None = Field(default=None, pattern=r"^[A-Za-z0-9.\-\[\]:]+:[0-9]{1,5}$")

    @model_validator(mode="after")
    def _two_paths(self) -> DualPathConfig:
        if self.primary == self.fallback:
            raise ValueError("primary and fallback must be different notifiers")
        return self

    @property
    def paths(self) -> tuple[str, str]:
        """The notifiers this one sends through."""
        return (self.primary, self.fallback)

    def build(self, site: Site, name: str,
              paths: Mapping[str, Notifier]) -> DualPathNotifier:
        """The notifier over the already built `paths` (by name); the site is theirs."""
        return DualPathNotifier(name, paths[self.primary], paths[self.fallback],
                                fallback_after_s=self.fallback_after_s,
                                uplink_probe=self.uplink_probe)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One alert change delivered, and by which path."""

    key: str
    state: str
    path: str
    at_s: float


class DualPathNotifier:
    """Sends by the primary; once it has failed for `fallback_after_s`, by the fallback."""

    def __init__(self, name: str, primary: Notifier, fallback: Notifier, *,
                 fallback_after_s: float = 30.0, uplink_probe: str | None = None) -> None:
        self.name = name
        self.uplink_probe = uplink_probe
        self.primary = primary
        self.fallback = fallback
        self.fallback_after_s = fallback_after_s
        self.target = f"{primary.name}, else {fallback.name}"
        # When the primary's failing began (monotonic), None while it works.
        self._failing_since: float | None = None
        self._last_primary_try = 0.0
        self.delivered_by: Counter[str] = Counter()
        self.deliveries: deque[Delivery] = deque(maxlen=_DELIVERIES_KEPT)

    def _primary_worth_trying(self, now: float) -> bool:
        # In a long outage a slow primary (a 10 s timeout) would delay every alert: it is
        # tried again once per fallback_after_s, and otherwise the fallback goes at once.
        if self._failing_since is None or now - self._failing_since < self.fallback_after_s:
            return True
        return now - self._last_primary_try >= self.fallback_after_s

    async def send(self, alert: Alert) -> None:
        """Deliver by the primary, or by the fallback once the primary has failed long enough;
        NotifierError(retryable) while waiting for that, or when both fail."""
        now = time.monotonic()
        primary_error = "not tried: failing"
        if self._primary_worth_trying(now):
            self._last_primary_try = now
            try:
                await self.primary.send(alert)
            except NotifierError as exc:
                primary_error = str(exc)
                if exc.retryable and await self._uplink_down():
                    # No need to wait out fallback_after_s: the path itself is cut.
                    primary_error += "; uplink down"
                    self._failing_since = min(self._failing_since or now,
                                              now - self.fallback_after_s)
                elif exc.retryable:  # a refusal of this one alert says nothing of the path
                    self._failing_from(now, exc)
            else:
                self._failing_since = None
                self._delivered(alert, self.primary.name)
                return
        await self._by_fallback(alert, primary_error)

    async def _uplink_down(self) -> bool:
        if self.uplink_probe is None:
            return False
        host, _, port = self.uplink_probe.rpartition(":")
        try:
            async with asyncio.timeout(2.0):
                _, writer = await asyncio.open_connection(host.strip("[]"), int(port))
        except (OSError, TimeoutError):
            return True
        writer.close()
        return False

    def _failing_from(self, now: float, exc: NotifierError) -> None:
        """Note the primary failing since `now` at the latest; raises until it is long enough."""
        if self._failing_since is None:
            self._failing_since = now
        failing_s = time.monotonic() - self._failing_since
        if failing_s < self.fallback_after_s:
            wait_s = self.fallback_after_s - failing_s
            raise NotifierError(f"primary {self.primary.name}: {exc}; fallback "
                                f"{self.fallback.name} in {wait_s:.0f} s",
                                retryable=True) from exc

    async def _by_fallback(self, alert: Alert, primary_error: str) -> None:
        try:
            await self.fallback.send(alert)
        except NotifierError as exc:
            raise NotifierError(
                f"primary {self.primary.name}: {primary_error}; fallback {self.fallback.name}: "
                f"{exc}", retryable=True) from exc
        self._delivered(alert, self.fallback.name)
        since = self._failing_since
        failing = f"{time.monotonic() - since:.0f} s" if since is not None else "refused"
        log.warning("notifier %s: alert %s (%s) delivered by fallback %s; primary %s failing "
                    "(%s): %s", self.name, alert.key, alert.state.value, self.fallback.name,
                    self.primary.name, failing, primary_error, extra={"alert_key": alert.key})

    def _delivered(self, alert: Alert, path: str) -> None:
        # Debug only for the primary: info stays quiet, and the fallback logs a warning.
        log.debug("notifier %s: alert %s (%s) delivered by %s", self.name, alert.key,
                  alert.state.value, path, extra={"alert_key": alert.key})
        self.delivered_by[path] += 1
        self.deliveries.append(Delivery(alert.key, alert.state.value, path, time.time()))
