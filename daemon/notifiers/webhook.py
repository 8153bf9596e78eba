"""Alert changes POSTed as JSON to an HTTP endpoint, signed with HMAC-SHA256 and a timestamp.

The receiver checks `X-Depotwatch-Signature: sha256=<hex>`, the HMAC-SHA256 with the shared
secret of `<X-Depotwatch-Timestamp>.<body>`, and refuses timestamps far from its clock: the
timestamp is inside the MAC, so a captured request cannot be replayed later (the scheme of
Stripe's and Slack's webhooks). `verify_signature` does the receiver's side.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import time
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, field_validator

from daemon.notifiers.common import (
    CaFile,
    HttpUrl,
    NotifierSettings,
    Site,
    event_id,
    origin,
    post,
    tls_context,
)
from daemon.vocabulary.alert import Alert

__all__ = [
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookConfig",
    "WebhookNotifier",
    "sign",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Depotwatch-Signature"
TIMESTAMP_HEADER = "X-Depotwatch-Timestamp"
EVENT_HEADER = "X-Depotwatch-Event"


class WebhookConfig(NotifierSettings):
    """JSON POST per alert change, HMAC-SHA256 signed; retried on 5xx and timeouts, not on 4xx."""

    example: ClassVar[dict[str, Any]] = {
        "type": "webhook", "url": "https://soc.example.mil/depotwatch",
        "secret": "${DEPOTWATCH_WEBHOOK_SECRET}",
    }

    type: Literal["webhook"] = "webhook"
    url: HttpUrl
    # Shared with the receiver; at least 16 characters (a guessable key forges alarms).
    secret: SecretStr
    timeout_s: float = Field(default=10.0, gt=0, le=300)
    ca_file: CaFile | None = None

    @field_validator("secret")
    @classmethod
    def _long_enough(cls, value: SecretStr) -> SecretStr:
        if len(value.get_secret_value()) < 16:
            raise ValueError("secret must be at least 16 characters")
        return value

    def build(self, site: Site, name: str) -> WebhookNotifier:
        """The notifier."""
        return WebhookNotifier(self, site, name)


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header value: `sha256=` and the hex HMAC of `timestamp.body`."""
    mac = hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: bytes, timestamp: str, body: bytes, signature: str, *,
                     now_s: float, tolerance_s: float = 300.0) -> bool:
    """The receiver's check: a fresh timestamp and a matching MAC (compared in constant time)."""
    try:
        sent_s = int(timestamp)
    except ValueError:
        return False
    if abs(now_s - sent_s) > tolerance_s:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body), signature)


def _iso(at_ns: int) -> str:
    return dt.datetime.fromtimestamp(at_ns / 1e9, tz=dt.UTC).isoformat(timespec="milliseconds")


class WebhookNotifier:
    """POSTs `Alert.to_json` plus site name, link, event id and ISO times; signs every try."""

    def __init__(self, config: WebhookConfig, site: Site, name: str = "webhook") -> None:
        self.name = name
        self._url = config.url
        self._secret = config.secret
        self._timeout_s = config.timeout_s
        self._ssl = tls_context(config.ca_file)
        self._site = site
        self.target = origin(config.url)

    def body(self, alert: Alert) -> bytes:
        """The JSON document for one alert change."""
        document: dict[str, Any] = json.loads(alert.to_json(self._site.id))
        document.update(
            event_id=event_id(alert), site_name=self._site.name,
            started_at=_iso(alert.started_ns), changed_at=_iso(alert.changed_ns),
            link=self._site.link(alert),
        )
        return json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode()

    async def send(self, alert: Alert) -> None:
        """POST the change; NotifierError(retryable) on 5xx/408/429/timeouts/connection loss."""
        body = self.body(alert)
        # Wall time, not the pipeline's clock: the receiver compares it with its own clock, and a
        # retry hours later gets a fresh timestamp rather than a refusal as a replay.
        timestamp = str(int(time.time()))
        secret = self._secret.get_secret_value()
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: timestamp,
            SIGNATURE_HEADER: sign(secret.encode(), timestamp, body),
            EVENT_HEADER: event_id(alert),
        }
        await post(self._url, body, headers, timeout_s=self._timeout_s, ssl_context=self._ssl,
                   secrets=[secret])
