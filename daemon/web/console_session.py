"""Who is at the console: the officer's session, kept on the server, and each form's CSRF token.

An officer logs in with the API token once; the console then keeps a session cookie (HttpOnly,
SameSite=Strict) holding only a random id. The sessions live on the server: a logout removes
its session, a changed token ends every session opened with the old one. They are kept in
`state_dir/console-sessions.json` (mode 0600; only each id's SHA-256, never the id itself), so
a restart or an upgrade does not send the duty officer back to the login at 3 a.m. Every form
POST carries a CSRF token bound to the session.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.alerts.officers import Officers
from daemon.alerts.roles import Forbidden, Role, require
from daemon.statefile import StateFile
from daemon.web.api_refusals import read_form

__all__ = ["SESSION_COOKIE", "SESSION_S", "Refused", "Session", "Sessions", "not_logged_in"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "depotwatch_session"
# A shift, and a little: an officer paged at 03:00 is not sent back to the login at 03:05.
SESSION_S = 12 * 3600
# Far more than a depot has officers' browsers: past it the oldest session goes first.
_MAX_SESSIONS = 1000


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in officer."""

    officer: str
    sid: str
    csrf: str
    role: Role = Role.OPERATOR


@dataclass(frozen=True, slots=True)
class _Opened:
    officer: str
    token_digest: bytes
    expires: float


def _sid_digest(sid: str) -> str:
    """How a session id is known on the server and on disk: its SHA-256, not the id."""
    return hashlib.sha256(sid.encode("utf-8", "surrogatepass")).hexdigest()


class Refused(Exception):
    """A form the console will not act on: the status and what the officer reads."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Sessions:
    """Opens, checks and ends the console's sessions; issues each form's CSRF token."""

    def __init__(self, officers: Officers, key: bytes | None = None,
                 path: Path | None = None) -> None:
        self._officers = officers
        self._file = StateFile(path) if path is not None else None
        saved_key, self._open = self._load()
        # The CSRF key goes with the sessions: a form loaded before a restart still posts.
        self._key = key or saved_key or secrets.token_bytes(32)
        if self._file is not None and saved_key is None:
            self._save()

    def _load(self) -> tuple[bytes | None, dict[str, _Opened]]:
        """The saved key and sessions (keyed by the SHA-256 of their id); none if unreadable."""
        saved = self._file.load() if self._file is not None else None
        if not isinstance(saved, dict):
            return None, {}
        try:
            key = bytes.fromhex(str(saved["key"]))
            now = time.time()
            sessions = {str(d): _Opened(str(o), bytes.fromhex(str(t)), float(e))
                        for d, (o, t, e) in dict(saved["sessions"]).items() if float(e) > now}
        except (KeyError, TypeError, ValueError) as exc:
            log.error("console sessions in %s unreadable (%s): everyone logs in again",
                      self._file.path if self._file else "?", exc)
            return None, {}
        return key, sessions

    def _save(self) -> None:
        if self._file is None:
            return
        state: dict[str, Any] = {
            "key": self._key.hex(),
            "sessions": {d: [o.officer, o.token_digest.hex(), o.expires]
                         for d, o in self._open.items()}}
        try:
            self._file.save(state)
            os.chmod(self._file.path, 0o600)
        except OSError as exc:  # a full disk: sessions stay in memory, the console works on
            log.error("console sessions not saved: %s", exc)

    def _csrf(self, sid: str) -> str:
        return hmac.new(self._key, ("csrf|" + sid).encode(), hashlib.sha256).hexdigest()

    def open(self, officer: str, token: str) -> str:
        """A new session for `officer`, who logged in with `token`; the cookie's value."""
        now = time.time()
        if len(self._open) >= _MAX_SESSIONS:
            self._open = {s: o for s, o in self._open.items() if o.expires > now}
            while len(self._open) >= _MAX_SESSIONS:
                del self._open[next(iter(self._open))]
        sid = secrets.token_urlsafe(32)
        digest = hashlib.sha256(token.encode("utf-8")).digest()
        self._open[_sid_digest(sid)] = _Opened(officer, digest, now + SESSION_S)
        self._save()
        return sid

    def close(self, sid: str) -> None:
        """End one session (the logout): its cookie is refused from now on."""
        if self._open.pop(_sid_digest(sid), None) is not None:
            self._save()

    def close_officer(self, officer: str) -> int:
        """End every session of `officer` (a token changed or taken away); how many ended."""
        ended = [d for d, opened in self._open.items() if opened.officer == officer]
        for digest in ended:
            del self._open[digest]
        if ended:
            self._save()
        return len(ended)

    def session(self, request: web.Request) -> Session | None:
        """The officer whose open, unexpired session the request's cookie names."""
        sid = request.cookies.get(SESSION_COOKIE, "")
        opened = self._open.get(_sid_digest(sid))
        if opened is None:
            return None
        # A token changed since the login (or the officer removed) ends the session.
        if opened.expires < time.time() or \
                self._officers.holder(opened.token_digest) != opened.officer:
            self.close(sid)
            return None
        return Session(opened.officer, sid, self._csrf(sid), self._officers.role(opened.officer))

    def guard(self, request: web.Request) -> Session:
        """The session of a page's request; without one, off to the login and back."""
        found = self.session(request)
        if found is None:
            target = urllib.parse.quote(request.path_qs, safe="")
            raise web.HTTPSeeOther(f"/console/login?next={target}")
        return found

    async def acting(self, request: web.Request,
                     action: str = "read") -> tuple[Session, dict[str, str]]:
        """The session and the form of an action, or Refused: not logged in, no CSRF token, or
        a role that may not take `action`."""
        session = self.session(request)
        if session is None:
            raise Refused(401, "Not logged in: log in with your officer token.")
        form = await read_form(request)
        token = str(form.get("csrf", ""))
        if not hmac.compare_digest(token.encode(), session.csrf.encode()):
            log.warning("console: refused %s %s by %s: missing or wrong CSRF token",
                        request.method, request.path, session.officer)
            raise Refused(403, "The form's security token is missing or stale: reload the page.")
        try:
            require(session.role, action, session.officer)
        except Forbidden as exc:
            log.info("console: refused %s %s: %s", request.method, request.path, exc)
            raise Refused(403, f"Not allowed: {exc}.") from None
        return session, {k: str(v) for k, v in form.items()}


def not_logged_in() -> web.Response:
    """The answer to a page's polling without a session."""
    return web.json_response({"error": "not logged in"}, status=401)
