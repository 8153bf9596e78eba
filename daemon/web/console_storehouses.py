"""The console's storehouses page: each storehouse's doors now and its last events."""

from __future__ import annotations

from aiohttp import web

from daemon.web.console_page import escape, page, when
from daemon.web.console_session import Sessions, not_logged_in
from daemon.web.recent import RecentEvents

__all__ = ["StorehousePages"]

_NO_DOORS = '<tr><td colspan="3" class="none">No doors.</td></tr>'


class StorehousePages:
    """The storehouses page, read from the daemon's recent door states and events."""

    def __init__(self, recent: RecentEvents | None, sessions: Sessions) -> None:
        self._recent, self._sessions = recent, sessions

    def mount(self, app: web.Application) -> None:
        """Add the storehouses page and its polling."""
        app.router.add_route("GET", "/storehouses", self.list_page)
        app.router.add_route("GET", "/console/storehouses.json", self.list_json)

    async def list_page(self, request: web.Request) -> web.Response:
        """Each storehouse's doors (open/closed, since when) and its last events."""
        session = self._sessions.guard(request)
        body = f"""
<h1>Storehouses</h1>
<div id="storehouses" data-poll="/console/storehouses.json">{self._storehouses_html()}</div>"""
        return page("Storehouses", body, session)

    async def list_json(self, request: web.Request) -> web.Response:
        """The storehouse cards for the page's polling."""
        if self._sessions.session(request) is None:
            return not_logged_in()
        return web.json_response({"html": self._storehouses_html()})

    def _storehouses_html(self) -> str:
        recent = self._recent
        if recent is None:
            return '<p class="none">No door states in this daemon.</p>'
        cards = []
        for store, name in recent.storehouses():
            doors = "".join(
                f'<tr data-door="{escape(d.door)}"><td>{escape(d.door)}</td>'
                f'<td class="door-state door-{_door_word(d.open)}">{_door_word(d.open)}</td>'
                f"<td>{when(d.since_ns)}</td></tr>" for d in recent.doors(store))
            events = "".join(
                f'<li class="event-{escape(e.kind)}">{when(e.at_ns)} {escape(e.text)}</li>'
                for e in recent.events(store))
            cards.append(
                f'<section class="card storehouse" data-storehouse="{escape(store)}">'
                f"<h2>{escape(name)} <small>({escape(store)})</small></h2>"
                '<table class="doors"><thead><tr><th>Door</th><th>State</th><th>Since</th>'
                f"</tr></thead><tbody>{doors or _NO_DOORS}</tbody></table>"
                '<h3>Last events</h3><ol class="events">'
                f'{events or "<li class=none>No events since the daemon started.</li>"}'
                "</ol></section>")
        return "".join(cards) or '<p class="none">No storehouses configured.</p>'


def _door_word(is_open: bool | None) -> str:
    return "unknown" if is_open is None else ("open" if is_open else "closed")
