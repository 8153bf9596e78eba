"""Alerts pushed to every replica of a Prometheus Alertmanager cluster (POST /api/v2/alerts).

Delivery: an alert change is sent to all replicas at once and counts as delivered when at least
one accepted it; the replicas gossip it to each other, and their notification log dedupes the
pages. A replica that missed it gets it with the next resend, which carries every firing alert
and every alert resolved in the last `resolved_retention_s` (Prometheus does the same, 15 min).
Firing alerts carry no `endsAt`, so Alertmanager resolves them by itself after its
`resolve_timeout` (5 min by default) unless they are sent again: `keep_alive` re-sends them every
`resend_interval_s`, which must stay well under that timeout.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, ClassVar, Literal, NoReturn

from pydantic import Field, SecretStr, field_validator, model_validator

from daemon.notifiers.common import (
    CaFile,
    HttpUrl,
    NotifierSettings,
    Site,
    basic_auth,
    clean,
    origin,
    post,
    tls_context,
)
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError
from daemon.vocabulary.readings import TransitionKind

__all__ = ["AlertmanagerConfig", "AlertmanagerNotifier", "BasicAuthConfig"]

log = logging.getLogger(__name__)

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# Set from the alert itself; static labels may not override them.
_ALERT_LABELS = frozenset({"alertname", "key", "severity", "site", "storehouse", "subject"})


class BasicAuthConfig(NotifierSettings):
    """HTTP basic auth (Alertmanager's `--web.config.file` basic_auth_users, or a proxy)."""

    username: str = Field(min_length=1)
    password: SecretStr


class AlertmanagerConfig(NotifierSettings):
    """Every replica of an Alertmanager cluster; firing alerts re-sent, `endsAt` on clear."""

    example: ClassVar[dict[str, Any]] = {
        "type": "alertmanager",
        "urls": ["http://am-1.hq.example.mil:9093", "http://am-2.hq.example.mil:9093"],
        "labels": {"team": "depot-security"},
    }

    type: Literal["alertmanager"] = "alertmanager"
    # Base URLs (with any --web.route-prefix); /api/v2/alerts is appended.
    urls: list[HttpUrl] = Field(min_length=1)
    resend_interval_s: float = Field(default=60.0, ge=1.0, le=3600.0)
    resolved_retention_s: float = Field(default=900.0, ge=0)
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    basic_auth: BasicAuthConfig | None = None
    bearer_token: SecretStr | None = None
    ca_file: CaFile | None = None
    # Static labels for Alertmanager's routing (team, region ...).
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("urls")
    @classmethod
    def _distinct(cls, urls: list[str]) -> list[str]:
        stripped = [u.rstrip("/") for u in urls]
        if len(set(stripped)) != len(stripped):
            raise ValueError("a replica URL is listed twice")
        return stripped

    @field_validator("labels")
    @classmethod
    def _label_names(cls, labels: dict[str, str]) -> dict[str, str]:
        for name in labels:
            if not _LABEL_NAME.match(name) or name.startswith("__"):
                raise ValueError(f"invalid label name {name!r}")
            if name in _ALERT_LABELS:
                raise ValueError(f"label {name!r} is set from the alert")
        return labels

    @model_validator(mode="after")
    def _one_auth(self) -> AlertmanagerConfig:
        if self.basic_auth is not None and self.bearer_token is not None:
            raise ValueError("give basic_auth or bearer_token, not both")
        return self

    def build(self, site: Site, name: str) -> AlertmanagerNotifier:
        """The notifier."""
        return AlertmanagerNotifier(self, site, name)


def _rfc3339(at_ns: int) -> str:
    moment = dt.datetime.fromtimestamp(at_ns / 1e9, tz=dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


class AlertmanagerNotifier:
    """Posts alert changes to all replicas; `keep_alive` re-sends what is still firing."""

    def __init__(self, config: AlertmanagerConfig, site: Site,
                 name: str = "alertmanager") -> None:
        self.name = name
        self.resend_interval_s = config.resend_interval_s
        self._endpoints = [f"{url}/api/v2/alerts" for url in config.urls]
        self._site = site
        self._labels = dict(config.labels)
        self._timeout_s = config.timeout_s
        self._retention_s = config.resolved_retention_s
        self._ssl = tls_context(config.ca_file)
        self._headers = {"Content-Type": "application/json"}
        self._secrets: list[str] = []
        if config.basic_auth is not None:
            password = config.basic_auth.password.get_secret_value()
            self._headers["Authorization"] = basic_auth(config.basic_auth.username, password)
            self._secrets.append(password)
        if config.bearer_token is not None:
            token = config.bearer_token.get_secret_value()
            self._headers["Authorization"] = f"Bearer {token}"
            self._secrets.append(token)
        # Latest resolved change per key, with when it was handed to us (monotonic seconds):
        # re-sent for `resolved_retention_s` to replicas that missed it, and it stops a stale
        # firing copy from being re-sent after the clear.
        self._resolved: dict[str, tuple[Alert, float]] = {}
        # One post at a time, so a resend of a firing alert cannot overtake its resolve.
        self._lock = asyncio.Lock()
        self.resends = 0

    def payload(self, alert: Alert) -> dict[str, Any]:
        """One postable alert: labels identify it (Alertmanager's fingerprint), annotations tell."""
        labels = {
            **self._labels, "alertname": alert.rule, "key": alert.key,
            "severity": alert.severity.value, "site": self._site.id,
            "storehouse": alert.storehouse, "subject": alert.subject,
        }
        item: dict[str, Any] = {
            # An empty label is an absent one to Alertmanager's matchers.
            "labels": {k: v for k, v in labels.items() if v},
            "annotations": {"summary": alert.summary, "description": self._describe(alert)},
            "startsAt": _rfc3339(alert.started_ns),
        }
        if alert.state is TransitionKind.RESOLVED:
            item["endsAt"] = _rfc3339(max(alert.changed_ns, alert.started_ns))
        link = self._site.link(alert)
        if link is not None:
            item["generatorURL"] = link
        return item

    def _describe(self, alert: Alert) -> str:
        lines = [f"{self._site.name}: {alert.summary}"]
        if alert.storehouse:
            lines.append(f"storehouse: {self._site.storehouse_name(alert.storehouse)}")
        lines.append(f"since: {self._site.local_time(alert.started_ns, alert.storehouse)}")
        lines += [f"{k}: {v}" for k, v in sorted(alert.facts.items())]
        return "\n".join(lines)

    async def send(self, alert: Alert) -> None:
        """Post one change to every replica; delivered when any accepted it."""
        async with self._lock:
            if alert.state is TransitionKind.RESOLVED:
                self._resolved[alert.key] = (alert, time.monotonic())
            else:
                self._resolved.pop(alert.key, None)
            errors = await self._post_all([alert])
        if len(errors) < len(self._endpoints):
            for error in errors:
                log.warning("alertmanager %s: replica missed alert %s (%s); the next resend "
                            "brings it", self.name, alert.key, error)
            return
        retryable = any(e.retryable for e in errors)
        raise NotifierError("no replica accepted: " + "; ".join(str(e) for e in errors),
                            retryable=retryable)

    async def resend(self, firing: Iterable[Alert]) -> int:
        """Post firing and recently resolved alerts to every replica; how many accepted."""
        async with self._lock:
            now = time.monotonic()
            self._resolved = {k: (a, at) for k, (a, at) in self._resolved.items()
                              if now - at <= self._retention_s}
            batch: dict[str, Alert] = {}
            for alert in firing:
                resolved = self._resolved.get(alert.key)
                # A copy of the alert this notifier already cleared is stale: skip it.
                if resolved is None or resolved[0].started_ns < alert.started_ns:
                    batch[alert.key] = alert
            for key, (alert, _) in self._resolved.items():
                batch.setdefault(key, alert)
            if not batch:
                return len(self._endpoints)
            errors = await self._post_all(list(batch.values()))
        self.resends += 1
        for error in errors:
            log.warning("alertmanager %s: resend of %d alert(s) failed: %s",
                        self.name, len(batch), error)
        return len(self._endpoints) - len(errors)

    async def keep_alive(self, firing: Callable[[], Sequence[Alert]]) -> NoReturn:
        """Resend now (alerts restored after a restart) and every `resend_interval_s`.

        The runner starts it as a task with `AlertBook.firing`; cancelling it is the shutdown.
        """
        while True:
            await self.resend(firing())
            await asyncio.sleep(self.resend_interval_s)

    async def _post_all(self, alerts: Sequence[Alert]) -> list[NotifierError]:
        body = json.dumps([self.payload(a) for a in alerts], ensure_ascii=False).encode()
        results = await asyncio.gather(
            *(post(url, body, self._headers, timeout_s=self._timeout_s, ssl_context=self._ssl,
                   secrets=self._secrets) for url in self._endpoints),
            return_exceptions=True,
        )
        errors: list[NotifierError] = []
        for url, result in zip(self._endpoints, results, strict=True):
            if isinstance(result, NotifierError):
                errors.append(result)
            elif isinstance(result, BaseException):
                # Not expected from `post`; counted as a retryable failure of that replica.
                errors.append(NotifierError(
                    clean(f"{origin(url)}: {type(result).__name__}", self._secrets),
                    retryable=True))
        return errors
