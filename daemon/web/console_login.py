"""The console's door: the login with an officer token, and the logout."""

from __future__ import annotations

import hmac
import logging
import math
import secrets
import urllib.parse

from aiohttp import web

from daemon.alerts.officers import Officers
from daemon.web.api_refusals import read_form
from daemon.web.console_page import page, refused_page
from daemon.web.console_session import SESSION_COOKIE, SESSION_S, Refused, Sessions
from daemon.web.throttle import GuessThrottle

__all__ = ["LOGIN_COOKIE", "Login", "local_path"]

log = logging.getLogger(__name__)

LOGIN_COOKIE = "depotwatch_login"


class Login:
    """The login form, its check of the officer token, and the logout."""

    def __init__(self, sessions: Sessions, officers: Officers, guesses: GuessThrottle) -> None:
        self._sessions, self._officers, self._guesses = sessions, officers, guesses

    def mount(self, app: web.Application) -> None:
        """Add the login and logout routes."""
        app.router.add_route("GET", "/console/login", self.form)
        app.router.add_route("POST", "/console/login", self.login)
        app.router.add_route("POST", "/console/logout", self.logout)

    async def form(self, request: web.Request, message: str = "",
                   status: int = 200) -> web.Response:
        """The token form; the double-submit cookie guards the login itself against CSRF."""
        nonce = secrets.token_hex(16)
        nxt = local_path(request.query.get("next", ""))
        response = page("login.html", None, status, message=message, nonce=nonce, next=nxt)
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="Strict",
                            path="/console/login", max_age=600)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Check the officer token; on success a session cookie and on to the alarms."""
        form = await read_form(request)
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not hmac.compare_digest(str(form.get("csrf", "")).encode(),
                                                nonce.encode()):
            return await self.form(request, "The login form expired: try again.", 403)
        source = request.remote or "unknown"
        wait = self._guesses.wait_s(source)
        if wait > 0:
            # Unjudged while the address backs off, as on the API.
            self._guesses.refused_waiting(source, "console login")
            retry = str(math.ceil(wait))
            response = await self.form(request, "Too many wrong tokens from this address: "
                                       f"try again in {retry} s.", 429)
            response.headers["Retry-After"] = retry
            return response
        token = str(form.get("token", "")).strip()
        officer = self._officers.identify(token)
        if officer is None:
            self._guesses.failed(source, "console login")
            return await self.form(request, "That is not an officer token.", 401)
        log.info("console: %s logged in from %s", officer, source)
        response = _see_other(local_path(str(form.get("next", ""))) or "/alerts")
        response.set_cookie(SESSION_COOKIE, self._sessions.open(officer, token), httponly=True,
                            samesite="Strict", path="/", max_age=SESSION_S)
        response.del_cookie(LOGIN_COOKIE, path="/console/login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """End the session (a form POST with the CSRF token, like every action)."""
        try:
            session, _ = await self._sessions.acting(request)
        except Refused as refused:
            return refused_page(refused)
        self._sessions.close(session.sid)
        log.info("console: %s logged out", session.officer)
        response = _see_other("/console/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def local_path(target: str) -> str:
    """`target` if it is a path on this server, else "": never an open redirect.

    One leading "/", not "//"; no scheme or host, backslash or control character, neither as
    given nor once percent-decoded (browsers read "/\\host" and "/<TAB>/host" as "//host").
    """
    decoded, previous = target, None
    while decoded != previous:
        decoded, previous = urllib.parse.unquote(decoded), decoded
    for text in (target, decoded):
        if not text.startswith("/") or text.startswith("//") or "\\" in text or \
                any(ord(c) < 0x20 or 0x7f <= ord(c) < 0xa0 for c in text):
            return ""
    parts = urllib.parse.urlsplit(target)
    return "" if parts.scheme or parts.netloc else target
