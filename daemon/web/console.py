"""The duty officer's web console: alarms, acknowledge, on-site check, silence, silences to
approve or expire, door states and recent events per storehouse (issue 8).

Served by the API's aiohttp application. An officer logs in with the API token once; the
console then keeps a session cookie (HttpOnly, SameSite=Strict) signed with a key made for this
process, so a restart logs everyone out. Every form POST carries a CSRF token bound to the
session, and every action goes through the AlarmDesk, which writes the audit trail.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import html
import json
import logging
import secrets
import time
import urllib.parse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from aiohttp import web

from daemon.alerts.alarm import Alarm, Finding, LifecycleError
from daemon.alerts.audit import AuditEntry, recent_for
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers
from daemon.alerts.silences import Silence
from daemon.vocabulary.clock import Clock
from daemon.web.recent import RecentEvents

__all__ = ["SESSION_COOKIE", "Console", "mount_console"]

log = logging.getLogger(__name__)

SESSION_COOKIE = "depotwatch_session"
LOGIN_COOKIE = "depotwatch_login"
# A shift, and a little: an officer paged at 03:00 is not sent back to the login at 03:05.
SESSION_S = 12 * 3600
_NOTE_CHARS = 2000
_NS = 1_000_000_000
_STATIC = {"console.css": "text/css", "console.js": "text/javascript"}
# Audit entries shown on an alarm's page (its own and its silence's), newest last.
AUDIT_SHOWN = 50

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Session:
    """A logged-in officer."""

    officer: str
    sid: str
    csrf: str


class Console:
    """Pages and form actions of the web console, over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, officers: Officers, clock: Clock,
                 key: bytes | None = None, *, recent: RecentEvents | None = None,
                 audit_path: Path | None = None) -> None:
        self._desk, self._officers, self._clock = desk, officers, clock
        self._recent, self._audit_path = recent, audit_path
        # Per process: no key on disk to steal, and a restart ends every session.
        self._key = key or secrets.token_bytes(32)

    # -- sessions --------------------------------------------------------------------------------

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode(), hashlib.sha256).hexdigest()

    def _csrf(self, sid: str) -> str:
        return self._sign("csrf|" + sid)

    def _cookie_for(self, officer: str) -> str:
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

    def _guard(self, request: web.Request) -> Session:
        found = self.session(request)
        if found is None:
            target = urllib.parse.quote(request.path_qs, safe="")
            raise web.HTTPSeeOther(f"/console/login?next={target}")
        return found

    async def _form(self, request: web.Request, session: Session) -> dict[str, str]:
        form = await request.post()
        token = str(form.get("csrf", ""))
        if not hmac.compare_digest(token.encode(), session.csrf.encode()):
            log.warning("console: refused %s %s by %s: missing or wrong CSRF token",
                        request.method, request.path, session.officer)
            raise _Refused(403, "The form's security token is missing or stale: reload the page.")
        return {k: str(v) for k, v in form.items()}

    async def _acting(self, request: web.Request) -> tuple[Session, dict[str, str]]:
        session = self.session(request)
        if session is None:
            raise _Refused(401, "Not logged in: log in with your officer token.")
        return session, await self._form(request, session)

    # -- login -----------------------------------------------------------------------------------

    async def login_page(self, request: web.Request, error: str = "",
                         status: int = 200) -> web.Response:
        """The token form; the double-submit cookie guards the login itself against CSRF."""
        nonce = secrets.token_hex(16)
        nxt = _safe_next(request.query.get("next", ""))
        body = f"""
<section class="card narrow"><h1>Duty officer login</h1>
{_error(error)}
<form method="post" action="/console/login">
<input type="hidden" name="csrf" value="{nonce}">
<input type="hidden" name="next" value="{_e(nxt)}">
<label>Officer token <input type="password" name="token" autocomplete="current-password"
 required autofocus></label>
<button type="submit">Log in</button></form></section>"""
        response = _page("Login", body, None, status)
        response.set_cookie(LOGIN_COOKIE, nonce, httponly=True, samesite="Strict",
                            path="/console/login", max_age=600)
        return response

    async def login(self, request: web.Request) -> web.StreamResponse:
        """Check the officer token; on success a session cookie and on to the alarms."""
        form = await request.post()
        nonce = request.cookies.get(LOGIN_COOKIE, "")
        if not nonce or not hmac.compare_digest(str(form.get("csrf", "")).encode(),
                                                nonce.encode()):
            return await self.login_page(request, "The login form expired: try again.", 403)
        officer = self._officers.identify(str(form.get("token", "")).strip())
        if officer is None:
            log.warning("console: refused a login from %s: unknown token", request.remote)
            return await self.login_page(request, "That is not an officer token.", 401)
        log.info("console: %s logged in from %s", officer, request.remote)
        response = _see_other(_safe_next(str(form.get("next", ""))) or "/alerts")
        response.set_cookie(SESSION_COOKIE, self._cookie_for(officer), httponly=True,
                            samesite="Strict", path="/", max_age=SESSION_S)
        response.del_cookie(LOGIN_COOKIE, path="/console/login")
        return response

    async def logout(self, request: web.Request) -> web.StreamResponse:
        """End the session (a form POST with the CSRF token, like every action)."""
        try:
            session, _ = await self._acting(request)
        except _Refused as refused:
            return _page("Refused", f"<h1>Refused</h1>{_error(refused.message)}", None,
                         refused.status)
        log.info("console: %s logged out", session.officer)
        response = _see_other("/console/login")
        response.del_cookie(SESSION_COOKIE, path="/")
        return response

    # -- pages -----------------------------------------------------------------------------------

    async def index(self, request: web.Request) -> web.StreamResponse:
        """The console's home: the alarm list."""
        raise web.HTTPSeeOther("/alerts")

    async def alarms_page(self, request: web.Request) -> web.Response:
        """Open alarms, most severe and oldest first (the desk's order), updated by polling."""
        session = self._guard(request)
        rows = "".join(_row(a) for a in self._desk.alarms(include_cleared=True))
        body = f"""
<h1>Alarms</h1>
<table class="alarms" data-poll="/console/alerts.json"><thead><tr><th>Severity</th>
<th>Storehouse</th><th>Subject</th><th>State</th><th>Since</th><th>Step</th></tr></thead>
<tbody id="alarm-rows">{rows or _NONE}</tbody></table>"""
        return _page("Alarms", body, session)

    async def alarm_page(self, request: web.Request, error: str = "",
                         status: int = 200) -> web.Response:
        """One alarm: its facts, where it is in its lifecycle, and the officer's actions."""
        session = self._guard(request)
        key = request.match_info["key"]
        try:
            alarm = self._desk.get(key)
        except LifecycleError:
            return _page("No such alarm", f"<h1>No alarm {_e(key)}</h1>"
                         '<p><a href="/alerts">All alarms</a></p>', session, 404)
        facts = "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>"
                        for k, v in sorted(alarm.facts.items()))
        quoted = urllib.parse.quote(key, safe="")
        csrf = f'<input type="hidden" name="csrf" value="{session.csrf}">'
        findings = "".join(f'<option value="{f.value}">{f.value.replace("_", " ")}</option>'
                           for f in Finding)
        body = f"""
<p><a href="/alerts">&larr; All alarms</a></p>
<h1 class="sev-{_e(alarm.severity)}">{_e(alarm.summary)}</h1>
{_error(error)}
<section class="card" id="alarm" data-poll="/console/alerts/{quoted}.json">
{_lifecycle(alarm)}</section>
<section class="card"><h2>Facts</h2><table class="facts">
<tr><th>key</th><td>{_e(alarm.key)}</td></tr><tr><th>rule</th><td>{_e(alarm.rule)}</td></tr>
{facts}</table></section>
<section class="card"><h2>Audit trail</h2><div id="audit">{self._audit_html(alarm)}</div>
</section>
<section class="card actions"><h2>Acknowledge</h2>
<form method="post" action="/alerts/{quoted}/ack" id="ack-form">{csrf}
<label>Note <textarea name="note" maxlength="{_NOTE_CHARS}" rows="2"></textarea></label>
<button type="submit">Acknowledge</button></form></section>
<section class="card actions"><h2>On-site check</h2>
<form method="post" action="/alerts/{quoted}/check" id="check-form">{csrf}
<label>Finding <select name="finding">{findings}</select></label>
<label>Note <textarea name="note" maxlength="{_NOTE_CHARS}" rows="2"></textarea></label>
<button type="submit">Record check</button></form></section>
<section class="card actions"><h2>Silence</h2>
<form method="post" action="/alerts/{quoted}/silence" id="silence-form">{csrf}
<p>Mutes alarms of rule <b>{_e(alarm.rule)}</b> on <b>{_e(alarm.subject)}</b>.</p>
<label>Reason <input name="reason" maxlength="{_NOTE_CHARS}" required></label>
<label>For (minutes) <input name="minutes" type="number" min="1" max="10080" value="60"
 required></label>
<button type="submit">Create silence</button></form>
<p class="note">A silence that may mute a critical rule takes effect once a second officer
approves it on the <a href="/silences">silences page</a>.</p></section>"""
        return _page(alarm.key, body, session, status)

    async def alarms_json(self, request: web.Request) -> web.Response:
        """The list for the page's polling (cookie session, read-only)."""
        if self.session(request) is None:
            return web.json_response({"error": "not logged in"}, status=401)
        alarms = self._desk.alarms(include_cleared=True)
        return web.json_response({"rows": "".join(_row(a) for a in alarms) or _NONE,
                                  "open": sum(a.state != "cleared" for a in alarms)})

    async def alarm_json(self, request: web.Request) -> web.Response:
        """One alarm's lifecycle block for the detail page's polling."""
        if self.session(request) is None:
            return web.json_response({"error": "not logged in"}, status=401)
        try:
            alarm = self._desk.get(request.match_info["key"])
        except LifecycleError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"html": _lifecycle(alarm), "state": alarm.state,
                                  "audit": self._audit_html(alarm)})

    def _audit_entries(self, alarm: Alarm) -> list[AuditEntry]:
        if self._audit_path is None:
            return []
        subjects = [alarm.key] + ([alarm.silenced_by] if alarm.silenced_by else [])
        return recent_for(self._audit_path, subjects, AUDIT_SHOWN)

    def _audit_html(self, alarm: Alarm) -> str:
        if self._audit_path is None:
            return '<p class="none">No audit trail configured.</p>'
        rows = "".join(
            f'<tr data-seq="{e.seq}"><td>{_when(e.at_ns)}</td><td>{_e(e.actor)}</td>'
            f'<td class="action">{_e(e.action)}</td><td>{_details(e)}</td></tr>'
            for e in self._audit_entries(alarm))
        if not rows:
            return '<p class="none">No audit entries yet.</p>'
        return ('<table class="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th>'
                f"<th>Details</th></tr></thead><tbody>{rows}</tbody></table>")

    # -- storehouses -----------------------------------------------------------------------------

    async def storehouses_page(self, request: web.Request) -> web.Response:
        """Each storehouse's doors (open/closed, since when) and its last events."""
        session = self._guard(request)
        body = f"""
<h1>Storehouses</h1>
<div id="storehouses" data-poll="/console/storehouses.json">{self._storehouses_html()}</div>"""
        return _page("Storehouses", body, session)

    async def storehouses_json(self, request: web.Request) -> web.Response:
        """The storehouse cards for the page's polling."""
        if self.session(request) is None:
            return web.json_response({"error": "not logged in"}, status=401)
        return web.json_response({"html": self._storehouses_html()})

    def _storehouses_html(self) -> str:
        recent = self._recent
        if recent is None:
            return '<p class="none">No door states in this daemon.</p>'
        cards = []
        for store, name in recent.storehouses():
            doors = "".join(
                f'<tr data-door="{_e(d.door)}"><td>{_e(d.door)}</td>'
                f'<td class="door-state door-{_door_word(d.open)}">{_door_word(d.open)}</td>'
                f"<td>{_when(d.since_ns)}</td></tr>" for d in recent.doors(store))
            events = "".join(
                f'<li class="event-{_e(e.kind)}">{_when(e.at_ns)} {_e(e.text)}</li>'
                for e in recent.events(store))
            cards.append(
                f'<section class="card storehouse" data-storehouse="{_e(store)}">'
                f"<h2>{_e(name)} <small>({_e(store)})</small></h2>"
                '<table class="doors"><thead><tr><th>Door</th><th>State</th><th>Since</th>'
                f"</tr></thead><tbody>{doors or _NO_DOORS}</tbody></table>"
                '<h3>Last events</h3><ol class="events">'
                f'{events or "<li class=none>No events since the daemon started.</li>"}'
                "</ol></section>")
        return "".join(cards) or '<p class="none">No storehouses configured.</p>'

    # -- silences --------------------------------------------------------------------------------

    async def silences_page(self, request: web.Request, error: str = "",
                            status: int = 200) -> web.Response:
        """Every silence, newest first, with approve and expire buttons."""
        session = self._guard(request)
        body = f"""
<h1>Silences</h1>
{_error(error)}
<div id="silences" data-poll="/console/silences.json">{self._silences_html(session)}</div>"""
        return _page("Silences", body, session, status)

    async def silences_json(self, request: web.Request) -> web.Response:
        """The silence list for the page's polling."""
        session = self.session(request)
        if session is None:
            return web.json_response({"error": "not logged in"}, status=401)
        return web.json_response({"html": self._silences_html(session)})

    def _silences_html(self, session: Session) -> str:
        now = self._clock.now_ns()
        csrf = f'<input type="hidden" name="csrf" value="{session.csrf}">'
        cards = []
        for silence in self._desk.silences():
            state = _silence_state(silence, now)
            quoted = urllib.parse.quote(silence.id, safe="")
            buttons = ""
            if state == "awaiting approval":
                buttons += (f'<form method="post" action="/silences/{quoted}/approve" '
                            f'class="approve">{csrf}<button type="submit">Approve</button>'
                            "</form>")
            if state in ("active", "awaiting approval"):
                buttons += (f'<form method="post" action="/silences/{quoted}/expire" '
                            f'class="expire">{csrf}<button type="submit" class="danger">'
                            "Expire now</button></form>")
            matchers = ", ".join(f"{k}={v}" for k, v in sorted(silence.matchers.items()))
            approved = (f"<tr><th>Approved by</th><td>{_e(silence.approved_by)}</td></tr>"
                        if silence.approved_by else "")
            cards.append(
                f'<section class="card silence" data-silence="{_e(silence.id)}">'
                f'<h2>{_e(matchers)} <span class="silence-state">{_e(state)}</span></h2>'
                '<table class="facts">'
                f"<tr><th>Reason</th><td>{_e(silence.reason)}</td></tr>"
                f"<tr><th>Created by</th><td>{_e(silence.author)}</td></tr>{approved}"
                f"<tr><th>From</th><td>{_when(silence.starts_ns)}</td></tr>"
                f"<tr><th>Until</th><td>{_when(silence.expired_ns or silence.ends_ns)}</td>"
                f'</tr></table><div class="buttons">{buttons}</div></section>')
        return "".join(cards) or '<p class="none">No silences.</p>'

    def _silence_action(self, approve: bool) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            silence_id = request.match_info["silence_id"]
            try:
                session, _ = await self._acting(request)
                now = self._clock.now_ns()
                if approve:
                    self._desk.approve_silence(silence_id, session.officer, now)
                else:
                    self._desk.expire_silence(silence_id, session.officer, now)
            except _Refused as refused:
                return _page("Refused", f"<h1>Refused</h1>{_error(refused.message)}"
                             '<p><a href="/silences">Back</a></p>', None, refused.status)
            except LifecycleError as exc:
                return await self.silences_page(request, str(exc), 409)
            raise web.HTTPSeeOther("/silences")
        return handle

    # -- actions ---------------------------------------------------------------------------------

    def _action(self, act: Callable[[str, str, dict[str, str]], str]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            key = request.match_info["key"]
            try:
                session, form = await self._acting(request)
                if len(form.get("note", "")) > _NOTE_CHARS:
                    raise _Refused(422, f"The note is longer than {_NOTE_CHARS} characters.")
                done = act(key, session.officer, form)
            except _Refused as refused:
                return _page("Refused", f"<h1>Refused</h1>{_error(refused.message)}"
                             f'<p><a href="/alerts/{urllib.parse.quote(key, safe="")}">Back'
                             "</a></p>", None, refused.status)
            except LifecycleError as exc:
                return await self.alarm_page(request, str(exc), 409)
            log.debug("console: %s %s alarm %s", session.officer, done, key)
            raise web.HTTPSeeOther(f"/alerts/{urllib.parse.quote(key, safe='')}")
        return handle

    def _ack(self, key: str, officer: str, form: dict[str, str]) -> str:
        self._desk.acknowledge(key, officer, form.get("note", "").strip(), self._clock.now_ns())
        return "acknowledged"

    def _check(self, key: str, officer: str, form: dict[str, str]) -> str:
        try:
            finding = Finding(form.get("finding", ""))
        except ValueError:
            raise _Refused(422, "Choose what the check found.") from None
        self._desk.record_check(key, officer, finding, form.get("note", "").strip(),
                                self._clock.now_ns())
        return "recorded the check of"

    def _silence(self, key: str, officer: str, form: dict[str, str]) -> str:
        alarm = self._desk.get(key)
        reason = form.get("reason", "").strip()
        try:
            minutes = float(form.get("minutes", ""))
        except ValueError:
            minutes = 0.0
        if not reason or not 0 < minutes <= 7 * 24 * 60:
            raise _Refused(422, "Give a reason and a duration of 1 minute to 7 days.")
        now = self._clock.now_ns()
        self._desk.add_silence({"rule": alarm.rule, "subject": alarm.subject}, officer,
                               reason[:_NOTE_CHARS], now + int(minutes * 60 * _NS), now)
        return "silenced"

    async def static(self, request: web.Request) -> web.Response:
        """The console's CSS and JS (no build step: plain files in console_static/)."""
        name = request.match_info["name"]
        if name not in _STATIC:
            raise web.HTTPNotFound()
        text = resources.files("daemon.web").joinpath("console_static", name).read_text("utf-8")
        return web.Response(text=text, content_type=_STATIC[name],
                            headers={"Cache-Control": "no-cache"})


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def mount_console(app: web.Application, console: Console) -> None:
    """Add the console's routes; `/alerts/{key}` is what notifications link to."""
    add = app.router.add_route
    add("GET", "/", console.index)
    add("GET", "/console/login", console.login_page)
    add("POST", "/console/login", console.login)
    add("POST", "/console/logout", console.logout)
    add("GET", "/console/static/{name}", console.static)
    add("GET", "/console/alerts.json", console.alarms_json)
    add("GET", "/console/alerts/{key}.json", console.alarm_json)
    add("GET", "/alerts", console.alarms_page)
    add("GET", "/alerts/{key}", console.alarm_page)
    add("POST", "/alerts/{key}/ack", console._action(console._ack))
    add("POST", "/alerts/{key}/check", console._action(console._check))
    add("POST", "/alerts/{key}/silence", console._action(console._silence))
    add("GET", "/storehouses", console.storehouses_page)
    add("GET", "/console/storehouses.json", console.storehouses_json)
    add("GET", "/silences", console.silences_page)
    add("GET", "/console/silences.json", console.silences_json)
    add("POST", "/silences/{silence_id}/approve", console._silence_action(approve=True))
    add("POST", "/silences/{silence_id}/expire", console._silence_action(approve=False))


# -- rendering -------------------------------------------------------------------------------------

_NONE = '<tr><td colspan="6" class="none">No alarms.</td></tr>'
_NO_DOORS = '<tr><td colspan="3" class="none">No doors.</td></tr>'


_NAV = ('<nav><a href="/alerts">Alarms</a><a href="/storehouses">Storehouses</a>'
        '<a href="/silences">Silences</a></nav>')


def _door_word(is_open: bool | None) -> str:
    return "unknown" if is_open is None else ("open" if is_open else "closed")


def _silence_state(silence: Silence, now_ns: int) -> str:
    if silence.expired_ns is not None:
        return "expired"
    if now_ns >= silence.ends_ns:
        return "ended"
    if silence.needs_approval and silence.approved_by is None:
        return "awaiting approval"
    return "active" if silence.active(now_ns) else "pending"


def _details(entry: AuditEntry) -> str:
    return _e(", ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}"
                        for k, v in sorted(entry.details.items()) if v not in (None, "", {})))


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _error(message: str) -> str:
    return f'<p class="error" role="alert">{_e(message)}</p>' if message else ""


def _safe_next(target: str) -> str:
    # Only a path on this server: never an open redirect to another site.
    return target if target.startswith("/") and not target.startswith("//") else ""


def _when(ns: int | None) -> str:
    if ns is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ns / _NS, tz=dt.UTC)
    return f'<time datetime="{moment.isoformat()}">{moment:%Y-%m-%d %H:%M:%S}Z</time>'


def _row(alarm: Alarm) -> str:
    link = f"/alerts/{urllib.parse.quote(alarm.key, safe='')}"
    return (f'<tr class="sev-{_e(alarm.severity)} state-{_e(alarm.state)}" '
            f'data-key="{_e(alarm.key)}">'
            f'<td data-label="Severity"><span class="badge">{_e(alarm.severity)}</span></td>'
            f'<td data-label="Storehouse">{_e(alarm.storehouse or "-")}</td>'
            f'<td data-label="Subject"><a href="{_e(link)}">{_e(alarm.subject)}</a>'
            f'<div class="summary">{_e(alarm.summary)}</div></td>'
            f'<td data-label="State" class="state">{_e(alarm.state)}</td>'
            f'<td data-label="Since">{_when(alarm.started_ns)}</td>'
            f'<td data-label="Step">{alarm.escalation_step}</td></tr>')


def _lifecycle(alarm: Alarm) -> str:
    rows = [("State", f'<span class="state" id="alarm-state">{_e(alarm.state)}</span>'),
            ("Severity", _e(alarm.severity)), ("Storehouse", _e(alarm.storehouse or "-")),
            ("Subject", _e(alarm.subject)), ("Since", _when(alarm.started_ns)),
            ("Condition", "active" if alarm.condition_active else "ended"),
            ("Escalation step", str(alarm.escalation_step))]
    if alarm.acked_by:
        rows.append(("Acknowledged", f"by {_e(alarm.acked_by)} at {_when(alarm.acked_ns)}"
                     f'<div class="note" id="ack-note">{_e(alarm.ack_note)}</div>'))
    if alarm.finding:
        rows.append(("Checked", f"by {_e(alarm.checked_by)} at {_when(alarm.checked_ns)}: "
                     f'<b id="finding">{_e(alarm.finding)}</b>'
                     f'<div class="note">{_e(alarm.check_note)}</div>'))
    if alarm.silenced_by:
        rows.append(("Silenced by", _e(alarm.silenced_by)))
    if alarm.inhibited_by:
        rows.append(("Inhibited by", _e(alarm.inhibited_by)))
    if alarm.cleared_ns:
        rows.append(("Cleared", _when(alarm.cleared_ns)))
    return '<table class="facts">' + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"


def _page(title: str, body: str, session: Session | None, status: int = 200) -> web.Response:
    who = nav = ""
    if session is not None:
        nav = _NAV
        who = (f'<span id="officer">{_e(session.officer)}</span>'
               '<form method="post" action="/console/logout" class="logout">'
               f'<input type="hidden" name="csrf" value="{session.csrf}">'
               '<button type="submit">Log out</button></form>')
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} - depotwatch</title>
<link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/console.js" defer></script></head>
<body><header><a href="/alerts" class="brand">depotwatch</a>{nav}<div class="who">{who}</div>
</header><main>{body}</main></body></html>"""
    # The console is never framed (clickjacking) and loads only its own files.
    return web.Response(text=text, content_type="text/html", status=status, headers={
        "X-Frame-Options": "DENY", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"})
