"""The console's silences page: every silence and its state, with approve and expire forms."""

from __future__ import annotations

import urllib.parse

from aiohttp import web
from aiohttp.typedefs import Handler

from daemon.alerts.alarm import LifecycleError
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.silences import Silence
from daemon.vocabulary.clock import Clock
from daemon.web.console_page import csrf_field, error, escape, page, refused_page, when
from daemon.web.console_session import Refused, Session, Sessions, not_logged_in

__all__ = ["SilencePages", "silences_in_force"]


class SilencePages:
    """The silences page and its approve and expire forms, over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, clock: Clock, sessions: Sessions) -> None:
        self._desk, self._clock, self._sessions = desk, clock, sessions
        self.approve = self._step(approve=True)
        self.expire = self._step(approve=False)

    def mount(self, app: web.Application) -> None:
        """Add the silences page, its polling and its two forms."""
        add = app.router.add_route
        add("GET", "/silences", self.list_page)
        add("GET", "/console/silences.json", self.list_json)
        add("POST", "/silences/{silence_id}/approve", self.approve)
        add("POST", "/silences/{silence_id}/expire", self.expire)

    async def list_page(self, request: web.Request, message: str = "",
                        status: int = 200) -> web.Response:
        """Every silence, newest first, with approve and expire buttons."""
        session = self._sessions.guard(request)
        body = f"""
<h1>Silences</h1>
{error(message)}
<div id="silences" data-poll="/console/silences.json">{self._silences_html(session)}</div>"""
        return page("Silences", body, session, status)

    async def list_json(self, request: web.Request) -> web.Response:
        """The silence list for the page's polling."""
        session = self._sessions.session(request)
        if session is None:
            return not_logged_in()
        return web.json_response({"html": self._silences_html(session)})

    def _silences_html(self, session: Session) -> str:
        now = self._clock.now_ns()
        csrf = csrf_field(session)
        cards = [_card(silence, _state(silence, now), csrf) for silence in self._desk.silences()]
        return "".join(cards) or '<p class="none">No silences.</p>'

    def _step(self, approve: bool) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            silence_id = request.match_info["silence_id"]
            try:
                session, _ = await self._sessions.acting(request,
                                                         "approve" if approve else "expire")
                now = self._clock.now_ns()
                if approve:
                    self._desk.approve_silence(silence_id, session.officer, now)
                else:
                    self._desk.expire_silence(silence_id, session.officer, now)
            except Refused as refused:
                return refused_page(refused, "/silences")
            except LifecycleError as exc:
                return await self.list_page(request, str(exc), 409)
            raise web.HTTPSeeOther("/silences")
        return handle


def silences_in_force(silences: list[Silence], now_ns: int) -> str:
    """The alarm list's strip of silences not yet over: what, who set it, until when."""
    items = "".join(_summary(s, _state(s, now_ns)) for s in silences
                    if _state(s, now_ns) in ("active", "awaiting approval", "pending"))
    return (f'<section class="card" id="silences-in-force"><h2>Silences in force</h2><ul>{items}'
            '</ul><p><a href="/silences">All silences</a></p></section>') if items else ""


def _summary(silence: Silence, state: str) -> str:
    matchers = ", ".join(f"{k}={v}" for k, v in sorted(silence.matchers.items()))
    approved = f", approved by {escape(silence.approved_by)}" if silence.approved_by else ""
    return (f'<li class="silence-summary">{escape(matchers)} &mdash; {escape(state)}, '
            f"by {escape(silence.author)}{approved}, until {when(silence.ends_ns)}</li>")


def _state(silence: Silence, now_ns: int) -> str:
    if silence.expired_ns is not None:
        return "expired"
    if now_ns >= silence.ends_ns:
        return "ended"
    if silence.needs_approval and silence.approved_by is None:
        return "awaiting approval"
    return "active" if silence.active(now_ns) else "pending"


def _card(silence: Silence, state: str, csrf: str) -> str:
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
    approved = (f"<tr><th>Approved by</th><td>{escape(silence.approved_by)}</td></tr>"
                if silence.approved_by else "")
    return (f'<section class="card silence" data-silence="{escape(silence.id)}">'
            f'<h2>{escape(matchers)} <span class="silence-state">{escape(state)}</span></h2>'
            '<table class="facts">'
            f"<tr><th>Reason</th><td>{escape(silence.reason)}</td></tr>"
            f"<tr><th>Created by</th><td>{escape(silence.author)}</td></tr>{approved}"
            f"<tr><th>From</th><td>{when(silence.starts_ns)}</td></tr>"
            f"<tr><th>Until</th><td>{when(silence.expired_ns or silence.ends_ns)}</td>"
            f'</tr></table><div class="buttons">{buttons}</div></section>')
