"""Who is at the console: the officer's signed session cookie and each form's CSRF token.

An officer logs in with the API token once; the console then keeps a session cookie (HttpOnly,
SameSite=Strict) signed with a key made for this process, so a restart logs everyone out. Every
form POST carries a CSRF token bound to the session.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import logging
import secrets
import time
import urllib.parse
from dataclasses import dataclass

from aiohttp import web

from daemon.web.api_refusals import read_form

__all__ = ["SESSION_COOKIE", "SESSION_S", "Refused", "Session", "Sessions", "not_logged_in"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "depotwatch_session"
# A shift, and a little: an officer paged at 03:00 is not sent back to the login at 03:05.
SESSION_S = 12 * 3600


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in officer."""

    officer: str
    sid: str
    csrf: str


class Refused(Exception):
    """A form the console will not act on: the status and what the officer reads."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class Sessions:
    """Issues and checks the console's session cookies and CSRF tokens."""

    def __init__(self, key: bytes | None = None) -> None:
        # Per process: no key on disk to steal, and a restart ends every session.
        self._key = key or secrets.token_bytes(32)

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _csrf(self, sid: str) -> str:
        return self._sign("csrf|" + sid)

    def cookie_for(self, officer: str) -> str:
        """A new session cookie's value for `officer`, valid for SESSION_S."""
        name = base64.urlsafe_b64encode(officer.encode()).decode()
        body = f"{name}|{int(time.time()) + SESSION_S}|{secrets.token_hex(16)}"
        return f"{body}|{self._sign(body)}"

    def session(self, request: web.Request) -> Session | None:
        """The officer whose valid, unexpired session cookie came with `request`."""
        parts = request.cookies.get(SESSION_COOKIE, "").split("|")
        if len(parts) != 4:
            return None
        body = "|".join(parts[:3])
        if not hmac.compare_digest(self._sign(body), parts[3]):
            return None
        name, expires, sid = parts[:3]
        try:
            if int(expires) < time.time():
                return None
            officer = base64.urlsafe_b64decode(name.encode()).decode()
        except ValueError:
            return None
        return Session(officer, sid, self._csrf(sid))

    def guard(self, request: web.Request) -> Session:
        """The session of a page's request; without one, off to the login and back."""
        found = self.session(request)
        if found is None:
            target = urllib.parse.quote(request.path_qs, safe="")
            raise web.HTTPSeeOther(f"/console/login?next={target}")
        return found

    async def acting(self, request: web.Request) -> tuple[Session, dict[str, str]]:
        """The session and the form of an action, or Refused: not logged in, or no CSRF token."""
        session = self.session(request)
        if session is None:
            raise Refused(401, "Not logged in: log in with your officer token.")
        form = await read_form(request)
        token = str(form.get("csrf", ""))
        if not hmac.compare_digest(token.encode(), session.csrf.encode()):
            log.warning("console: refused %s %s by %s: missing or wrong CSRF token",
                        request.method, request.path, session.officer)
            raise Refused(403, "The form's security token is missing or stale: reload the page.")
        return session, {k: str(v) for k, v in form.items()}


def not_logged_in() -> web.Response:
    """The answer to a page's polling without a session."""
    return web.json_response({"error": "not logged in"}, status=401)
