"""Officers and the alert API: tokens kept as SHA-256 digests, and the officer's client."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import re
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any

from daemon.alerts.roles import Role
from daemon.vocabulary.errors import DepotwatchError
from daemon.vocabulary.secrets import redact_text

__all__ = [
    "MIN_TOKEN_CHARS",
    "AlertClient",
    "ApiError",
    "Officers",
    "format_alarm",
    "format_notifier",
    "format_silence",
    "hash_token",
    "silence_end",
]

# Digests are unsalted: only safe for random tokens (e.g. `openssl rand -hex 32`), never for a
# password someone chose. A short token is refused when it is hashed for the config.
MIN_TOKEN_CHARS = 16


def hash_token(token: str) -> str:
    """The SHA-256 hex digest of a token, as the config's `api.officers[].token_sha256` holds it."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


class Officers:
    """Who a bearer token belongs to, from a map of token SHA-256 (hex) to officer name, and
    each officer's role (operator unless `roles` says otherwise)."""

    def __init__(self, by_digest: Mapping[str, str],
                 roles: Mapping[str, Role] | None = None) -> None:
        entries: list[tuple[bytes, str]] = []
        for digest, name in by_digest.items():
            try:
                raw = bytes.fromhex(digest)
            except ValueError as exc:
                raise DepotwatchError(f"officer {name!r}: token_sha256 is not hex") from exc
            if len(raw) != hashlib.sha256().digest_size:
                raise DepotwatchError(f"officer {name!r}: token_sha256 is not 64 hex digits")
            entries.append((raw, name))
        self._entries = tuple(entries)
        self._roles = dict(roles or {})

    def __len__(self) -> int:
        return len(self._entries)

    def replace(self, other: Officers) -> None:
        """Take `other`'s tokens and roles (a config reload); a console session opened with a
        token no longer listed ends at its next request."""
        self._entries, self._roles = other._entries, other._roles

    def redact(self, text: str) -> str:
        """`text` with every officer token in it replaced (a token pasted into a note)."""
        return redact_text(text, lambda word: self.identify(word) is not None)

    def identify(self, token: str) -> str | None:
        """The officer holding `token`, or None; constant time in where the digests differ."""
        return self.holder(hashlib.sha256(token.encode("utf-8")).digest())

    def role(self, officer: str) -> Role:
        """What `officer` may do (an officer configured without a role is an operator)."""
        return self._roles.get(officer, Role.OPERATOR)

    def holder(self, digest: bytes) -> str | None:
        """The officer whose token has this SHA-256 digest, or None (a changed token: None)."""
        found: str | None = None
        # No early exit: every stored digest is compared, so timing tells nothing of the match.
        for stored, name in self._entries:
            if hmac.compare_digest(digest, stored):
                found = name
        return found


class ApiError(DepotwatchError):
    """The alert API refused a call (`status` is its HTTP status; 0: it could not be reached)."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class AlertClient:
    """An officer's side of the alert API: what `depotwatch alerts` sends."""

    def __init__(self, url: str, token: str, *, timeout_s: float = 10.0) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        # The API listens on the gateway itself: never route it through a proxy from the env.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def call(self, method: str, path: str, body: Mapping[str, Any] | None = None) -> Any:
        """One request to `{url}/api/v1{path}`; the decoded JSON answer, or ApiError."""
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            f"{self.url}/api/v1{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json",
                     **({"Content-Type": "application/json"} if data is not None else {})})
        try:
            with self._opener.open(request, timeout=self._timeout_s) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            with exc:
                raise ApiError(_refusal(exc.code, exc.read()), exc.code) from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(f"cannot reach the depotwatch API at {self.url}: {reason}", 0) from exc


def _refusal(status: int, raw: bytes) -> str:
    if status == 401:
        return "the API refused the officer token (check DEPOTWATCH_TOKEN)"
    try:
        answer = json.loads(raw)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        return f"refused (HTTP {status})"
    message = f"refused ({status}): {answer.get('error', '')}"
    detail = answer.get("detail")
    # pydantic's errors (422); a refused arming's detail is the zone's answer, its error says all.
    for problem in detail if isinstance(detail, list) else []:
        where = ".".join(str(part) for part in problem.get("loc", ()))
        message += f"\n  {where or 'body'}: {problem.get('msg', '')}"
    return message


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd])\s*$")
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def silence_end(text: str) -> dict[str, Any]:
    """`--until` as the API takes it: a duration (`90m`, `2h`, `1d`) or an ISO time with zone."""
    match = _DURATION.match(text)
    if match:
        return {"for_s": float(match.group(1)) * _UNIT_S[match.group(2)]}
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise ValueError(f"--until {text!r}: give a duration (90m, 2h, 1d) or a time with its "
                         "zone (2024-03-03T06:00+01:00)")
    return {"ends_at": moment.isoformat()}


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    return f"{dt.datetime.fromtimestamp(ns / 1e9, tz=dt.UTC):%Y-%m-%d %H:%M:%SZ}"


def format_alarm(alarm: Mapping[str, Any]) -> str:
    """One alarm on one line, as `depotwatch alerts list` prints it."""
    notes = []
    if alarm.get("acked_by"):
        notes.append(f"acked by {alarm['acked_by']} at {_when(alarm.get('acked_ns'))}")
    if alarm.get("finding"):
        notes.append(f"checked by {alarm.get('checked_by')}: {alarm['finding']}")
    elif alarm.get("state") != "cleared" and not alarm.get("condition_active", True):
        notes.append("condition ended, awaiting the on-site check")
    for label, field in (("silenced", "silenced_by"), ("inhibited by", "inhibited_by")):
        if alarm.get(field):
            notes.append(f"{label} {alarm[field]}")
    line = (f"{alarm.get('severity', '?'):<8}  {alarm.get('state', '?'):<12}  "
            f"{alarm.get('key', '?')}  since {_when(alarm.get('started_ns'))}  "
            f"{alarm.get('storehouse') or '-'}  {alarm.get('summary', '')}")
    return line + (f"  [{'; '.join(notes)}]" if notes else "")


def format_silence(silence: Mapping[str, Any]) -> str:
    """One silence on one line, as `depotwatch alerts silences` prints it."""
    matchers = ", ".join(f"{k}={v}" for k, v in sorted(silence.get("matchers", {}).items()))
    if silence.get("expired_ns") is not None:
        status = f"expired {_when(silence['expired_ns'])}"
    elif silence.get("needs_approval") and not silence.get("approved_by"):
        status = "awaiting a second officer's approval"
    else:
        status = f"until {_when(silence.get('ends_ns'))}"
        if silence.get("approved_by"):
            status += f", approved by {silence['approved_by']}"
    return (f"{silence.get('id', '?')}  {matchers}  by {silence.get('author', '?')}: "
            f"{silence.get('reason', '')}  ({status})")


def format_notifier(figures: Mapping[str, Any]) -> list[str]:
    """One notifier's counts on a line, then one line per refusal it keeps (`depotwatch
    alerts notifiers`)."""
    counts = "  ".join(f"{label} {figures.get(label, 0)}" for label in (
        "delivered", "failed", "retried", "refused", "given_up", "backlog"))
    lines = [f"{figures.get('name', '?'):<16}  {counts}"]
    paths = figures.get("delivered_by") or {}
    if paths:
        lines.append("  by path: " + ", ".join(f"{name} {n}" for name, n in paths.items()))
    for refusal in figures.get("refusals", []):
        when = _when(int(refusal.get("at_s", 0) * 1e9))
        lines.append(f"  refused {refusal.get('key', '?')} ({refusal.get('state', '?')}) at "
                     f"{when}: {refusal.get('reason', '')}")
    return lines
