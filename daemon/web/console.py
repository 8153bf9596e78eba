"""The duty officer's web console: alarms, acknowledge, on-site check, silence, silences to
approve or expire, door states and recent events per storehouse (issue 8).

Served by the API's aiohttp application. Officers log in with their API token and then carry a
signed session cookie (console_session); every action goes through the AlarmDesk, which writes
the audit trail. This module puts the pages on their routes and serves the static files.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from importlib import resources
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers
from daemon.book.desk import RecordsDesk
from daemon.vocabulary.clock import Clock
from daemon.web.console_alarms import AlarmPages
from daemon.web.console_items import ItemPages
from daemon.web.console_login import Login
from daemon.web.console_page import NIGHTS
from daemon.web.console_records import RecordPages
from daemon.web.console_session import Sessions
from daemon.web.console_silences import SilencePages
from daemon.web.console_storehouses import StorehousePages
from daemon.web.dusk import DarkHours
from daemon.web.glance import GatewayGlance
from daemon.web.recent import RecentEvents
from daemon.web.throttle import GuessThrottle
from rules.zone_state import ZoneView

__all__ = ["mount_console"]

_STATIC = {"console.css": "text/css", "console.js": "text/javascript",
           "theme.js": "text/javascript", "alerting.js": "text/javascript"}


def mount_console(app: web.Application, desk: AlarmDesk, officers: Officers, clock: Clock, *,
                  recent: RecentEvents | None = None, audit_path: Path | None = None,
                  key: bytes | None = None, throttle: GuessThrottle | None = None,
                  sessions_path: Path | None = None, gateway: GatewayGlance | None = None,
                  dark: DarkHours | None = None,
                  zone_states: Callable[[], Sequence[ZoneView]] | None = None,
                  records: RecordsDesk | None = None) -> None:
    """Add the console's pages, forms and static files to the API's application; wrong tokens
    at its login count in `throttle` (shared with the API's); sessions are kept in
    `sessions_path` across restarts when given. `gateway` shows the links and dead letters on
    the depot page; pages turn dark in `dark`'s hours; `zone_states` gives the storehouse page
    its walk tests; `records` adds the roster and orders pages."""
    sessions = Sessions(officers, key, sessions_path)
    if dark is not None:
        app.middlewares.append(_nights(dark, clock))
    app.router.add_route("GET", "/", _index)
    Login(sessions, officers, throttle or GuessThrottle()).mount(app)
    app.router.add_route("GET", "/console/static/{name}", _static)
    # Pages read times in each storehouse's zone (the config's `timezone`).
    zones = recent.zones() if recent is not None else {}
    AlarmPages(desk, clock, sessions, audit_path, zones).mount(app)
    StorehousePages(recent, desk, sessions, clock, gateway, zone_states).mount(app)
    SilencePages(desk, clock, sessions, zones).mount(app)
    if records is not None:
        RecordPages(records, clock, sessions, zones).mount(app)
        ItemPages(records, clock, sessions, zones).mount(app)


def _nights(dark: DarkHours, clock: Clock) -> Middleware:
    # Every page of this application is framed with this depot's dark hours.
    @web.middleware
    async def framed(request: web.Request, handler: Handler) -> web.StreamResponse:
        NIGHTS.set((dark, clock))
        return await handler(request)
    return framed


async def _index(request: web.Request) -> web.StreamResponse:
    # The console's home is the alarm list.
    raise web.HTTPSeeOther("/alerts")


async def _static(request: web.Request) -> web.Response:
    # Plain files in console_static/, no build step.
    name = request.match_info["name"]
    if name not in _STATIC:
        raise web.HTTPNotFound()
    text = resources.files("daemon.web").joinpath("console_static", name).read_text("utf-8")
    return web.Response(text=text, content_type=_STATIC[name],
                        headers={"Cache-Control": "no-cache"})
