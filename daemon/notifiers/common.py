"""What the HTTP and e-mail notifiers share: the site they speak for, strict settings, redaction."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import ssl
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import aiohttp
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import NotifierError

__all__ = [
    "USER_AGENT",
    "CaFile",
    "HttpUrl",
    "NotifierSettings",
    "Site",
    "StorehouseInfo",
    "basic_auth",
    "clean",
    "event_id",
    "origin",
    "post",
    "tls_context",
]

USER_AGENT = "depotwatch"
_MAX_REASON_CHARS = 300


class NotifierSettings(BaseModel):
    """Base of every notifier config: unknown keys are an error, values are frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Outbox and log name; defaults to the type, numbered when a type is configured twice.
    name: str | None = Field(default=None, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$",
                             max_length=64)


def _ca_loads(path: Path) -> Path:
    # Checked while the config loads, so a bad file is a config error with its line, not an
    # undeliverable alarm at 3 a.m.
    try:
        ssl.create_default_context(cafile=str(path))
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"cannot load CA file {str(path)!r}: {exc}") from exc
    return path


CaFile = Annotated[Path, AfterValidator(_ca_loads)]
HttpUrl = Annotated[str, Field(pattern=r"^https?://[^/\s]+(/\S*)?$")]


def tls_context(ca_file: Path | None) -> ssl.SSLContext | None:
    """A verifying context trusting `ca_file`, or None for the system's trust store."""
    return None if ca_file is None else ssl.create_default_context(cafile=str(ca_file))


@dataclass(frozen=True, slots=True)
class StorehouseInfo:
    """A storehouse's display name and time zone, for messages people read."""

    name: str
    zone: dt.tzinfo


@dataclass(frozen=True, slots=True)
class Site:
    """The depot a notifier speaks for: id, display name, link base and storehouse zones."""

    id: str
    name: str
    base_url: str | None = None
    storehouses: Mapping[str, StorehouseInfo] = field(default_factory=dict)

    def link(self, alert: Alert) -> str | None:
        """Where an officer opens the alert (the daemon's alert API), if `base_url` is set."""
        if self.base_url is None:
            return None
        return f"{self.base_url.rstrip('/')}/alerts/{urllib.parse.quote(alert.key, safe='')}"

    def zone(self, storehouse: str) -> dt.tzinfo:
        """The storehouse's zone; site-wide alerts use the first storehouse's, else UTC."""
        info = self.storehouses.get(storehouse)
        if info is None and self.storehouses:
            info = next(iter(self.storehouses.values()))
        return dt.UTC if info is None else info.zone

    def storehouse_name(self, storehouse: str) -> str:
        """The display name, or the id when unknown."""
        info = self.storehouses.get(storehouse)
        return storehouse if info is None else info.name

    def local_time(self, at_ns: int, storehouse: str) -> str:
        """`2024-03-02 23:14:05 CET` in the storehouse's zone."""
        moment = dt.datetime.fromtimestamp(at_ns / 1e9, tz=self.zone(storehouse))
        return f"{moment:%Y-%m-%d %H:%M:%S %Z}"


def event_id(alert: Alert) -> str:
    """Stable id of one alert change: a retry or a replay carries the same id."""
    raw = f"{alert.key}\x00{alert.state.value}\x00{alert.started_ns}\x00{alert.changed_ns}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def origin(url: str) -> str:
    """`scheme://host:port` of a URL: paths and query strings often hold tokens, userinfo a
    password, so messages name only this."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or "?"
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port is not None else ""
    return f"{parts.scheme}://{host}{port}"


def clean(message: str, secrets: Sequence[str]) -> str:
    """One line, bounded, with every secret (however a server echoed it) blanked out."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    message = " ".join(message.split())
    if len(message) > _MAX_REASON_CHARS:
        message = message[:_MAX_REASON_CHARS] + "..."
    return message


def _reason(body: bytes) -> str:
    """The `error`/`message` of a JSON error body, else the body's text."""
    text = body[:4096].decode("utf-8", "replace")
    try:
        decoded = json.loads(text)
    except ValueError:
        return text
    if isinstance(decoded, dict):
        for key in ("error", "message", "detail"):
            if isinstance(decoded.get(key), str):
                return str(decoded[key])
    return text


def _retryable_status(status: int) -> bool:
    # 5xx is the receiver's trouble; 408 and 429 are back-pressure. Any other answer (a 4xx,
    # or a redirect, which is not followed) says this request is refused and will stay so.
    return status >= 500 or status in (408, 425, 429)


async def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float,
    ssl_context: ssl.SSLContext | None, secrets: Sequence[str],
) -> None:
    """POST once; returns on 2xx, else raises NotifierError naming only the URL's origin."""
    where = origin(url)
    # Credentials in the URL become a header by hand (aiohttp 3.14 deprecates BasicAuth).
    parts = urllib.parse.urlsplit(url)
    all_headers = {"User-Agent": USER_AGENT, **headers}
    if parts.username is not None:
        user = urllib.parse.unquote(parts.username)
        password = urllib.parse.unquote(parts.password or "")
        secrets = [*secrets, password, parts.password or ""]
        all_headers.setdefault("Authorization", basic_auth(user, password))
        netloc = parts.hostname or ""
        netloc = f"[{netloc}]" if ":" in netloc else netloc
        netloc += f":{parts.port}" if parts.port is not None else ""
        url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    try:
        # One session per delivery: alerts are rare, and nothing is left open for shutdown.
        async with aiohttp.ClientSession(timeout=timeout) as session, session.post(
            url, data=body, headers=all_headers, allow_redirects=False,
            ssl=ssl_context if ssl_context is not None else True,
        ) as resp:
            if 200 <= resp.status < 300:
                return
            status = resp.status
            reason = _reason(await resp.read()) or resp.reason or ""
    except TimeoutError as exc:  # before OSError, its base class
        raise NotifierError(f"{where}: no answer within {timeout_s:g} s",
                            retryable=True) from exc
    except aiohttp.ClientConnectorCertificateError as exc:
        error = exc.certificate_error
        detail = getattr(error, "verify_message", None) or getattr(error, "reason", None)
        raise NotifierError(f"{where}: TLS certificate not trusted: {detail}",
                            retryable=True) from exc
    except aiohttp.ClientConnectorError as exc:
        detail = exc.os_error.strerror or type(exc.os_error).__name__
        raise NotifierError(clean(f"{where}: cannot connect: {detail}", secrets),
                            retryable=True) from exc
    except (aiohttp.ClientError, OSError) as exc:
        # Only the class name: some aiohttp errors quote the full URL.
        raise NotifierError(f"{where}: {type(exc).__name__}", retryable=True) from exc
    raise NotifierError(clean(f"{where}: HTTP {status}: {reason}", secrets),
                        retryable=_retryable_status(status))


def basic_auth(username: str, password: str) -> str:
    """An `Authorization: Basic` header value."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
