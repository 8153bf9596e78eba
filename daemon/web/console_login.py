"""The console's door: the login with an officer token, and the logout."""

from __future__ import annotations

import hmac
import logging
import secrets

from aiohttp import web

from daemon.alerts.officers import Officers
from daemon.web.api_refusals import read_form
from daemon.web.console_page import error, escape, page, refused_page
from daemon.web.console_session import SESSION_COOKIE, SESSION_S, Refused, Sessions

__all__ = ["LOGIN_COOKIE", "Login"]

log = logging.getLogger(__name__)

LOGIN_COOKIE = "depotwatch_login"


class Login:
    """The login form, its check of the officer token, and the logout."""

    def __init__(self, sessions: Sessions, officers: Officers) -> None:
        self._sessions, self._officers = sessions, officers

    def mount(self, app: web.Application) -> None:
        """Add the login and logout routes."""
        app.router.add_route("GET", "/console/login", self.form)
        app.router.add_route("POST", "/console/login", self.login)
        app.router.add_route("POST", "/console/logout", self.logout)

    async def form(self, request: web.Request, message: str = "",
                   status: int = 200) -> web.Response:
        """The token form; the double-submit cookie guards the login itself against CSRF."""
        nonce = secrets.token_hex(16)
        nxt = _safe_next(request.query.get("next", ""))
        body = f"""
<section class="card narrow"><h1>Duty officer login</h1>
{error(message)}
<form method="post" action="/console/login">
<input type="hidden" name="csrf" value="{nonce}">
<input type="hidden" name="next" value="{escape(nxt)}">
<label>Officer token <input type="password" name="token" autocomplete="current-password"
 required autofocus></label>
<button type="submit">Log in</button></form></section>"""
        response = page("Login", body, None, status)
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
        officer = self._officers.identify(str(form.get("token", "")).strip())
        if officer is None:
            log.warning("console: refused a login from %s: unknown token", request.remote)
            return await self.form(request, "That is not an officer token.", 401)
        log.info("console: %s logged in from %s", officer, request.remote)
        response = _see_other(_safe_next(str(form.get("next", ""))) or "/alerts")
        response.set_cookie(SESSION_COOKIE, self._sessions.cookie_for(officer), httponly=True,
                            samesite="Strict", path="/", max_age=SESSION_S)
        response.del_cookie(LOGIN_COOKIE, path="/console/login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """End the session (a form POST with the CSRF token, like every action)."""
        try:
            session, _ = await self._sessions.acting(request)
        except Refused as refused:
            return refused_page(refused)
        log.info("console: %s logged out", session.officer)
        response = _see_other("/console/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _safe_next(target: str) -> str:
    # Only a path on this server: never an open redirect to another site.
    return target if target.startswith("/") and not target.startswith("//") else ""
