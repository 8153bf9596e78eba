"""The console's silences page: every silence and its state, with approve and expire forms."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.typedefs import Handler

from daemon.alerts.alarm import LifecycleError
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.silences import Silence
from daemon.vocabulary.clock import Clock
from daemon.web.console_page import DepotTime, may, page, refused_page, render
from daemon.web.console_session import Refused, Session, Sessions, not_logged_in

__all__ = ["SilenceCard", "SilencePages", "silence_cards", "silences_in_force"]


@dataclass(frozen=True, slots=True)
class SilenceCard:
    """A silence as the pages show it: what it matches, in words, and its state now."""

    silence: Silence
    matchers: str
    state: str


class SilencePages:
    """The silences page and its approve and expire forms, over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, clock: Clock, sessions: Sessions,
                 zones: Mapping[str, ZoneInfo]) -> None:
        self._desk, self._clock, self._sessions = desk, clock, sessions
        self._zones = zones
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
        return page("silences.html", session, status, message=message, **self._context(session))

    async def list_json(self, request: web.Request) -> web.Response:
        """The silence list for the page's polling."""
        session = self._sessions.session(request)
        if session is None:
            return not_logged_in()
        return web.json_response({"html": render("_silences.html", session=session,
                                                   **self._context(session))})

    def _context(self, session: Session) -> dict[str, Any]:
        now = self._clock.now_ns()
        return {"time": DepotTime(self._zones, now),
                "silences": silence_cards(self._desk.silences(), now),
                "may_act": may(session, "approve")}

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


def silence_cards(silences: list[Silence], now_ns: int) -> list[SilenceCard]:
    """Each silence with its matchers in words and its state at `now_ns`."""
    return [SilenceCard(s, ", ".join(f"{k}={v}" for k, v in sorted(s.matchers.items())),
                        _state(s, now_ns)) for s in silences]


def silences_in_force(silences: list[Silence], now_ns: int) -> list[SilenceCard]:
    """The silences not yet over: the alarm list's strip (what, who set it, until when)."""
    return [c for c in silence_cards(silences, now_ns)
            if c.state in ("active", "awaiting approval", "pending")]


def _state(silence: Silence, now_ns: int) -> str:
    if silence.expired_ns is not None:
        return "expired"
    if now_ns >= silence.ends_ns:
        return "ended"
    if silence.needs_approval and silence.approved_by is None:
        return "awaiting approval"
    return "active" if silence.active(now_ns) else "pending"
