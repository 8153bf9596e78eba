"""HQ's page and JSON API: every depot's reachability, last heartbeat, open alarms and late
arrivals; acknowledging a depot's alarm from HQ (recorded in HQ's audit trail, then sent to
the depot). Officers authenticate with a bearer token and their role, as at a depot."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Callable
from dataclasses import asdict
from importlib import resources
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler
from pydantic import Field

from daemon.alerts.audit import AuditError, AuditLog
from daemon.alerts.officers import Officers
from daemon.alerts.roles import Forbidden, require
from daemon.hq.depots import AlarmBook, alarm_view
from daemon.hq.relay import CommandRelay, RelayError
from daemon.hq.supervision import Supervision
from daemon.web.api_bodies import RequestBody
from daemon.web.api_refusals import Refusal, as_json, read_body
from daemon.web.throttle import GuessThrottle

__all__ = ["AckBody", "HqConsole"]

log = logging.getLogger(__name__)


class AckBody(RequestBody):
    """An acknowledgement from HQ: an optional note, recorded at HQ and at the depot."""

    note: str = Field(default="", max_length=2000)


def _static(name: str) -> bytes:
    return resources.files("daemon.hq").joinpath("static", name).read_bytes()


class HqConsole:
    """The HQ web application over the supervision, the alarm book and the command relay."""

    def __init__(self, supervision: Supervision, book: AlarmBook, relay: CommandRelay,
                 officers: Officers, audit: AuditLog, *, can_ack: frozenset[str],
                 wall_ns: Callable[[], int]) -> None:
        self._supervision = supervision
        self._book = book
        self._relay = relay
        self._officers = officers
        self._audit = audit
        self._can_ack = can_ack
        self._wall_ns = wall_ns
        self._guesses = GuessThrottle()

    def app(self) -> web.Application:
        """The aiohttp application."""
        app = web.Application(middlewares=[as_json], client_max_size=64 * 1024)
        page, script = _static("hq.html"), _static("hq.js")

        async def index(request: web.Request) -> web.Response:
            return web.Response(body=page, content_type="text/html", charset="utf-8")

        async def js(request: web.Request) -> web.Response:
            return web.Response(body=script, content_type="text/javascript", charset="utf-8")

        async def healthz(request: web.Request) -> web.Response:
            return web.json_response({"status": "ok"})

        app.router.add_get("/", index)
        app.router.add_get("/hq.js", js)
        app.router.add_get("/healthz", healthz)
        app.router.add_get("/api/depots", self._guard("read", self._depots))
        app.router.add_post("/api/depots/{site}/alarms/{key}/ack", self._guard("ack", self._ack))
        return app

    def _guard(self, action: str, operation: Callable[[web.Request, str], Any]) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            officer = self._officer(request)
            try:
                require(self._officers.role(officer), action, officer)
            except Forbidden as exc:
                raise Refusal(403, str(exc)) from None
            response: web.StreamResponse = await operation(request, officer)
            return response
        return handle

    def _officer(self, request: web.Request) -> str:
        source = request.remote or "unknown"
        wait = self._guesses.wait_s(source)
        if wait > 0:
            self._guesses.refused_waiting(source, "HQ API")
            retry = str(math.ceil(wait))
            raise Refusal(429, f"too many wrong officer tokens: try again in {retry} s",
                          headers={"Retry-After": retry})
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        officer = self._officers.identify(token.strip()) if scheme.lower() == "bearer" else None
        if officer is None:
            if token:
                self._guesses.failed(source, "HQ API")
            raise Refusal(401, "a valid officer token is required (Authorization: Bearer ...)",
                          headers={"WWW-Authenticate": 'Bearer realm="depotwatch-hq"'})
        return officer

    def depots(self) -> list[dict[str, Any]]:
        """Every depot as the API lists it."""
        offset = self._supervision.wall_offset_ns
        out = []
        for site, reach in self._supervision.depots.items():
            alarms = self._book.depots[site]
            beat = reach.heartbeat
            listed = sorted(alarms.open.values(), key=lambda a: a.started_ns)
            out.append({
                "site": site, "name": reach.name, "reachable": reach.dark_since_ns is None,
                "unreachable_since": (None if reach.dark_since_ns is None
                                      else (reach.dark_since_ns + offset) / 1e9),
                "last_heard_s": (reach.last_heard_ns + offset) / 1e9,
                "last_heartbeat_s": beat.sent_s if beat else None,
                "bridge_up": reach.bridge_up, "online": reach.online,
                "heartbeat": asdict(beat) if beat else None,
                "open_alarms": len(listed),
                "unacknowledged_alarms": sum(1 for a in listed if not a.facts.get("acked_by")),
                "late_alarms": alarms.late_alarms, "can_acknowledge": site in self._can_ack,
                "alarms": [alarm_view(a) for a in listed]})
        return out

    async def _depots(self, request: web.Request, officer: str) -> web.Response:
        return web.json_response({"depots": self.depots()})

    async def _ack(self, request: web.Request, officer: str) -> web.Response:
        site, key = request.match_info["site"], request.match_info["key"]
        body = await read_body(request, AckBody)
        if site not in self._supervision.depots:
            raise Refusal(404, f"no depot {site} supervised here")
        if self._book.find(site, key) is None:
            raise Refusal(404, f"no open alarm {key} at depot {site}")
        # HQ's own record first: what HQ's officer did stands even if the depot is dark.
        try:
            await asyncio.to_thread(self._audit.append, officer, "hq_ack", f"{site}/{key}",
                                    {"site": site, "key": key, "note": body.note},
                                    self._wall_ns())
        except AuditError as exc:
            raise Refusal(503, f"HQ audit trail not written: {exc}") from exc
        try:
            result = await self._relay.acknowledge(site, key, officer, body.note)
        except RelayError as exc:
            log.warning("HQ acknowledgement of %s at %s by %s: %s", key, site, officer, exc)
            # The trail says the attempt did not take at the depot, and why.
            with contextlib.suppress(AuditError):
                await asyncio.to_thread(self._audit.append, officer, "hq_ack_failed",
                                        f"{site}/{key}", {"site": site, "key": key,
                                                          "reason": str(exc)}, self._wall_ns())
            raise Refusal(exc.status, str(exc)) from exc
        log.info("HQ: %s acknowledged %s at depot %s", officer, key, site)
        return web.json_response({"site": site, "result": result})
