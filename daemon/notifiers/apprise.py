"""Alert changes through Apprise: one URL per receiver reaches any of its hundred-odd services
(`ntfy://`, `tgram://`, `signal://`, `matrix://`, `json://`, SMS gateways).

The URL carries the service's token or password, so it is a secret: give it as `${VAR}` or
`${credential:NAME}`, and every message the notifier logs or keeps names only the URL with
Apprise's privacy masking. Apprise answers a failed service with `False` and a log line; the
log line is captured per call and becomes the NotifierError's reason.
"""

from __future__ import annotations

import logging
import urllib.parse
from typing import Any, ClassVar, Literal

from pydantic import ConfigDict, Field, SecretStr, field_validator

from daemon.notifiers.common import NotifierSettings, Site, clean
from daemon.notifiers.email import subject_line
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError
from daemon.vocabulary.readings import Severity, TransitionKind

__all__ = ["AppriseConfig", "AppriseNotifier", "apprise_body"]

log = logging.getLogger(__name__)


def _quiet_apprise() -> None:
    # Apprise logs whole URLs (tokens, passwords) when one does not parse, and some services
    # log topics: its lines reach us only through each call's result, cleaned, never through
    # the daemon's log handlers (nor Python's last-resort stderr handler).
    quiet = logging.getLogger("apprise")
    quiet.propagate = False
    if not quiet.handlers:
        quiet.addHandler(logging.NullHandler())


class AppriseConfig(NotifierSettings):
    """Any Apprise URL (ntfy, Telegram, Signal, Matrix, JSON...); needs the `apprise` extra."""

    example: ClassVar[dict[str, Any]] = {
        "type": "apprise",
        "url": "ntfys://duty:${DEPOTWATCH_NTFY_PASSWORD}@ntfy.example.mil/depot-north",
    }

    # A refused URL is never echoed into an error message.
    model_config = ConfigDict(hide_input_in_errors=True)

    type: Literal["apprise"] = "apprise"
    # e.g. ntfys://user:pass@ntfy.example.mil/depot-north; a secret: tokens live in URLs.
    url: SecretStr
    timeout_s: float = Field(default=20.0, gt=0, le=300)

    @field_validator("url")
    @classmethod
    def _known_service(cls, value: SecretStr) -> SecretStr:
        # Checked while the config loads: a typo in a scheme is a config error with its line,
        # not an undeliverable alarm. The message never repeats the URL.
        url = value.get_secret_value()
        try:
            import apprise
        except ImportError as exc:
            raise ValueError("the apprise notifier needs `pip install depotwatch[apprise]`"
                             ) from exc
        _quiet_apprise()
        if apprise.Apprise.instantiate(url) is None:
            scheme = urllib.parse.urlsplit(url).scheme or "?"
            raise ValueError(f"not an Apprise URL Apprise can use (scheme {scheme!r})")
        return value

    def build(self, site: Site, name: str) -> AppriseNotifier:
        """The notifier."""
        return AppriseNotifier(self, site, name)


def apprise_body(alert: Alert, site: Site) -> str:
    """A few lines for a phone: what, where, since when, the key, the link."""
    lines = [alert.summary]
    if alert.storehouse:
        lines.append(f"Storehouse: {site.storehouse_name(alert.storehouse)}")
    lines.append(f"Since: {site.local_time(alert.started_ns, alert.storehouse)}")
    if alert.state is TransitionKind.RESOLVED:
        lines.append(f"Resolved: {site.local_time(alert.changed_ns, alert.storehouse)}")
    lines.append(f"Alert: {alert.key}")
    link = site.link(alert)
    if link is not None:
        lines.append(link)
    return "\n".join(lines)


class AppriseNotifier:
    """One Apprise URL; a failed service is retryable (Apprise does not tell 4xx from 5xx)."""

    def __init__(self, config: AppriseConfig, site: Site, name: str = "apprise") -> None:
        import apprise  # here, not at the top: most gateways configure no Apprise notifier

        _quiet_apprise()
        self.name = name
        self._site = site
        self._timeout_s = config.timeout_s
        url = config.url.get_secret_value()
        asset = apprise.AppriseAsset(app_id="depotwatch", app_desc="depotwatch",
                                     storage_mode="memory")
        self._apprise = apprise.Apprise(asset=asset)
        service = apprise.Apprise.instantiate(url, asset=asset)
        if service is None or not self._apprise.add(service):
            raise NotifierError(f"{name}: Apprise cannot use the configured URL",
                                retryable=False)
        # The outbox paces retries; Apprise's own per-service throttle would only delay alarms.
        service.request_rate_per_sec = 0
        # What officers and logs see: Apprise's own masking of the URL's secrets.
        masked = service.url(privacy=True)  # type: ignore[no-untyped-call]
        self.target = str(masked).split("?", 1)[0]
        parts = urllib.parse.urlsplit(url)
        # Short pieces stay: blanking "ntfy" out of every reason would hide more than it keeps.
        self._secrets = [s for s in (url, parts.password, parts.username, parts.path[1:],
                                     parts.query) if s and len(s) >= 6]

    async def send(self, alert: Alert) -> None:
        """Notify the service; NotifierError(retryable) with Apprise's reason when it fails."""
        import apprise

        kind = (apprise.NotifyType.SUCCESS if alert.state is TransitionKind.RESOLVED
                else apprise.NotifyType.FAILURE if alert.severity is Severity.CRITICAL
                else apprise.NotifyType.WARNING)
        result = await self._apprise.async_notify(
            body=apprise_body(alert, self._site), title=subject_line(alert, self._site),
            notify_type=kind, timeout=self._timeout_s)
        if result:
            return
        reasons = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
        reason = reasons[-1] if reasons else f"status {result.status.name}"
        raise NotifierError(clean(f"{self.target}: {reason}", self._secrets), retryable=True)
