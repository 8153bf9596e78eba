"""The console's storehouses page: each storehouse's armed state, doors now and last events."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from daemon.vocabulary.clock import Clock
from daemon.web.console_page import DepotTime, page, render
from daemon.web.console_session import Sessions, not_logged_in
from daemon.web.recent import DoorState, Event, RecentEvents
from rules.walk_test import WalkResult
from rules.zone_state import ZoneView

__all__ = ["StorehousePages"]


@dataclass(frozen=True, slots=True)
class _Storehouse:
    id: str
    name: str
    armed: bool
    doors: list[DoorState]
    events: list[Event]
    # A walk test running now; how the last one ended (None: none since the records began).
    walk_test: bool = False
    last_walk_test: WalkResult | None = None


class StorehousePages:
    """The storehouses page, read from the daemon's recent door states and events."""

    def __init__(self, recent: RecentEvents | None, sessions: Sessions, clock: Clock,
                 zone_states: Callable[[], Sequence[ZoneView]] | None = None) -> None:
        self._recent, self._sessions, self._clock = recent, sessions, clock
        self._zone_states = zone_states

    def mount(self, app: web.Application) -> None:
        """Add the storehouses page and its polling."""
        app.router.add_route("GET", "/storehouses", self.list_page)
        app.router.add_route("GET", "/console/storehouses.json", self.list_json)

    async def list_page(self, request: web.Request) -> web.Response:
        """Each storehouse's doors (open/closed, since when) and its last events."""
        session = self._sessions.guard(request)
        return page("storehouses.html", session, **self._context())

    async def list_json(self, request: web.Request) -> web.Response:
        """The storehouse cards for the page's polling."""
        if self._sessions.session(request) is None:
            return not_logged_in()
        return web.json_response({"html": render("_storehouses.html", **self._context())})

    def _context(self) -> dict[str, Any]:
        recent, now = self._recent, self._clock.now_ns()
        if recent is None:
            return {"recent": False, "storehouses": [], "time": DepotTime({}, now)}
        zones = {z.storehouse: z for z in (self._zone_states() if self._zone_states else [])}
        stores = []
        for store, name in recent.storehouses():
            zone = zones.get(store)
            stores.append(_Storehouse(store, name, recent.armed(store, now), recent.doors(store),
                                      recent.events(store), zone is not None and zone.walk_test,
                                      zone.last_walk_test if zone is not None else None))
        return {"recent": True, "storehouses": stores, "time": DepotTime(recent.zones(), now)}
