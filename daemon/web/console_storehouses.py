"""The console's depot page: the gateway's links and dead letters, then each storehouse at a
glance (zone, doors, climate, silent sensors, last events); and the dead letters' list."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from daemon.alerts.desk import AlarmDesk
from daemon.vocabulary.clock import Clock
from daemon.web.console_glance import glance
from daemon.web.console_page import DepotTime, page, render
from daemon.web.console_session import Sessions, not_logged_in
from daemon.web.glance import GatewayGlance
from daemon.web.recent import RecentEvents
from rules.zone_state import ZoneView

__all__ = ["DEAD_LETTERS_SHOWN", "StorehousePages"]

# Dead letters listed on their page, newest first (`depotwatch deadletters` lists them all).
DEAD_LETTERS_SHOWN = 50


class StorehousePages:
    """The storehouses page, read from the daemon's recent events, alarms and links."""

    def __init__(self, recent: RecentEvents | None, desk: AlarmDesk, sessions: Sessions,
                 clock: Clock, gateway: GatewayGlance | None = None,
                 zone_states: Callable[[], Sequence[ZoneView]] | None = None) -> None:
        self._recent, self._desk, self._sessions = recent, desk, sessions
        self._clock, self._gateway, self._zone_states = clock, gateway, zone_states

    def mount(self, app: web.Application) -> None:
        """Add the storehouses page, its polling and the dead letters' page."""
        app.router.add_route("GET", "/storehouses", self.list_page)
        app.router.add_route("GET", "/console/storehouses.json", self.list_json)
        app.router.add_route("GET", "/deadletters", self.dead_letters_page)

    async def list_page(self, request: web.Request) -> web.Response:
        """The depot at a glance."""
        session = self._sessions.guard(request)
        return page("storehouses.html", session, **await self._context())

    async def list_json(self, request: web.Request) -> web.Response:
        """The glance for the page's polling."""
        if self._sessions.session(request) is None:
            return not_logged_in()
        return web.json_response({"html": render("_storehouses.html", **await self._context())})

    async def dead_letters_page(self, request: web.Request) -> web.Response:
        """The newest rejected payloads: when, from where, why (for the engineers)."""
        session = self._sessions.guard(request)
        now = self._clock.now_ns()
        zones = self._recent.zones() if self._recent is not None else {}
        entries = (self._gateway.dead_letters(DEAD_LETTERS_SHOWN)
                   if self._gateway is not None else [])
        kept = self._gateway.dead_letters_kept() if self._gateway is not None else 0
        return page("deadletters.html", session, entries=entries, kept=kept,
                    shown=DEAD_LETTERS_SHOWN, time=DepotTime(zones, now))

    async def _context(self) -> dict[str, Any]:
        recent, now = self._recent, self._clock.now_ns()
        if recent is None:
            return {"recent": False, "glance": None, "time": DepotTime({}, now)}
        return {"recent": True, "glance": await glance(recent, self._desk, self._gateway, now,
                                                       self._zone_states),
                "time": DepotTime(recent.zones(), now)}
