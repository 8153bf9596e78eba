"""The console's page frame: Jinja2 templates (autoescape on) and the local times they show."""

from __future__ import annotations

import datetime as dt
import functools
import urllib.parse
from collections.abc import Mapping
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup, escape

from daemon.alerts.roles import Forbidden, require
from daemon.vocabulary.clock import Clock
from daemon.web.console_session import Refused, Session
from daemon.web.dusk import DarkHours

__all__ = ["NIGHTS", "DepotTime", "ago", "may", "page", "refused_page", "render"]

_NS = 1_000_000_000

if TYPE_CHECKING:
    import jinja2


@functools.cache
def _templates() -> jinja2.Environment:
    # Jinja2 is imported at the first page, not at start: 2.4 MiB of a daemon whose console
    # nobody opens (issue 29).
    import jinja2

    # Every value reaches the HTML escaped unless a template says otherwise; none does.
    templates = jinja2.Environment(
        loader=jinja2.PackageLoader("daemon.web", "templates"),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    # A path segment: alarm keys and silence ids quoted whole, "/" too.
    templates.filters["quoted"] = lambda value: urllib.parse.quote(str(value), safe="")
    # A topic or path may break after each "/" on a phone, never inside a word.
    templates.filters["breakable"] = lambda value: Markup(
        str(escape(value)).replace("/", "/<wbr>"))
    return templates


# The depot's dark hours and clock for the request being answered: set by the console's
# middleware, read by every page's frame (the theme turns dark by itself at night).
NIGHTS: ContextVar[tuple[DarkHours, Clock] | None] = ContextVar("console_nights", default=None)


def may(session: Session | None, action: str) -> bool:
    """Whether the session's role takes `action`: the page offers only what the officer may do."""
    if session is None:
        return False
    try:
        require(session.role, action, session.officer)
    except Forbidden:
        return False
    return True


class DepotTime:
    """Moments as the depot reads them: in each storehouse's configured time zone."""

    def __init__(self, zones: Mapping[str, ZoneInfo], now_ns: int) -> None:
        self._zones = dict(zones)
        # Alarms of no storehouse (the gateway's own) read in the depot's first storehouse's zone.
        self.zone = next(iter(self._zones.values()), ZoneInfo("UTC"))
        self.now_ns = now_ns

    def local(self, ns: int, storehouse: str = "") -> dt.datetime:
        """The moment in the storehouse's zone."""
        return dt.datetime.fromtimestamp(ns / _NS, tz=self._zones.get(storehouse, self.zone))

    def offset(self) -> str:
        """The page's zone and its offset now, shown once: "Europe/Vienna, UTC+01:00"."""
        offset = f"{self.local(self.now_ns):%z}"
        return f"{self.zone.key}, UTC{offset[:3]}:{offset[3:]}"

    def when(self, ns: int | None, storehouse: str = "") -> Markup:
        """A <time> the page keeps live: the local clock time and how long ago."""
        if ns is None:
            return Markup("-")
        moment = self.local(ns, storehouse)
        shown = f"{moment:%H:%M}" if self.same_day(moment) else f"{moment:%a %d %b %H:%M}"
        if self._zones.get(storehouse, self.zone) != self.zone:
            shown += f" ({moment:%Z})"
        return Markup(render("_time.html", iso=moment.isoformat(), ms=ns // 1_000_000,
                             shown=shown, ago=ago(self.now_ns - ns)))

    def same_day(self, moment: dt.datetime) -> bool:
        """Whether `moment` falls on today in its own zone."""
        return moment.date() == dt.datetime.fromtimestamp(self.now_ns / _NS,
                                                          tz=moment.tzinfo).date()


def ago(elapsed_ns: int) -> str:
    """How long ago in the officer's words: "just now", "4 min ago", "2 h 5 min ago"."""
    seconds = max(0, elapsed_ns // _NS)
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min ago"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min ago" if minutes else f"{hours} h ago"
    return f"{hours // 24} days ago"


def render(template: str, **context: Any) -> str:
    """A template (a whole page or a block the pages poll for) as HTML."""
    return _templates().get_template(template).render(**context)


def page(template: str, session: Session | None, status: int = 200,
         **context: Any) -> web.Response:
    """A whole console page from `template`, with the frame's header for a session."""
    text = render(template, session=session, night=_night(), **context)
    # The console is never framed (clickjacking) and loads only its own files.
    return web.Response(text=text, content_type="text/html", status=status, headers={
        "X-Frame-Options": "DENY", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"})


def _night() -> dict[str, Any]:
    # The dark spells around now, in ms for the page's script, and whether it is dark now (the
    # page is sent dark at night, so no white flash before the script runs).
    hours = NIGHTS.get()
    if hours is None:
        return {"spells": "", "dark": False}
    dark, clock = hours
    now = clock.now_ns()
    spells = dark.nights(now)
    return {"spells": " ".join(f"{a // 1_000_000}-{b // 1_000_000}" for a, b in spells),
            "dark": any(a <= now < b for a, b in spells)}


def refused_page(refused: Refused, back: str = "") -> web.Response:
    """The page for a refused form, with a link `back` to where the officer came from."""
    return page("refused.html", None, refused.status, message=refused.message, back=back)
