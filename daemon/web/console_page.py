"""The console's page frame and the HTML pieces every console page shares."""

from __future__ import annotations

import datetime as dt
import html
from typing import Any

from aiohttp import web

from daemon.web.console_session import Refused, Session

__all__ = ["csrf_field", "error", "escape", "page", "refused_page", "when"]

_NS = 1_000_000_000
_NAV = ('<nav><a href="/alerts">Alarms</a><a href="/storehouses">Storehouses</a>'
        '<a href="/silences">Silences</a></nav>')


def escape(value: Any) -> str:
    """`value` as text safe inside HTML and its attributes."""
    return html.escape(str(value), quote=True)


def error(message: str) -> str:
    """An error line for the officer (nothing without a message)."""
    return f'<p class="error" role="alert">{escape(message)}</p>' if message else ""


def when(ns: int | None) -> str:
    """A moment in UTC as a <time> element; "-" for none."""
    if ns is None:
        return "-"
    moment = dt.datetime.fromtimestamp(ns / _NS, tz=dt.UTC)
    return f'<time datetime="{moment.isoformat()}">{moment:%Y-%m-%d %H:%M:%S}Z</time>'


def csrf_field(session: Session) -> str:
    """The hidden input every form of the session carries."""
    return f'<input type="hidden" name="csrf" value="{session.csrf}">'


def page(title: str, body: str, session: Session | None, status: int = 200) -> web.Response:
    """A whole console page: header, navigation and logout for a session, then `body`."""
    who = nav = ""
    if session is not None:
        nav = _NAV
        who = (f'<span id="officer">{escape(session.officer)}</span>'
               '<form method="post" action="/console/logout" class="logout">'
               f'{csrf_field(session)}'
               '<button type="submit">Log out</button></form>')
    text = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(title)} - depotwatch</title>
<link rel="stylesheet" href="/console/static/console.css">
<script src="/console/static/console.js" defer></script></head>
<body><header><a href="/alerts" class="brand">depotwatch</a>{nav}<div class="who">{who}</div>
</header><main>{body}</main></body></html>"""
    # The console is never framed (clickjacking) and loads only its own files.
    return web.Response(text=text, content_type="text/html", status=status, headers={
        "X-Frame-Options": "DENY", "Cache-Control": "no-store",
        "Content-Security-Policy": "default-src 'self'; frame-ancestors 'none'"})


def refused_page(refused: Refused, back: str = "") -> web.Response:
    """The page for a refused form, with a link `back` to where the officer came from."""
    link = f'<p><a href="{back}">Back</a></p>' if back else ""
    return page("Refused", f"<h1>Refused</h1>{error(refused.message)}{link}", None,
                refused.status)
