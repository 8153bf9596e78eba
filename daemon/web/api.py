"""The officers' HTTP API: list alarms, acknowledge, record on-site checks, silences (issue 6).

One aiohttp application answers the route table (every call but health and the OpenAPI
document with an officer's token), and, when the daemon asks, /readyz, /metrics and the
console; `serve` listens with it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from daemon.alerts.arming import ArmingDesk
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers
from daemon.alerts.roles import Forbidden, Role, require
from daemon.book.desk import RecordsDesk
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DepotwatchError
from daemon.web.api_alarms import AlarmCalls
from daemon.web.api_alertmanager import ALERTMANAGER_ROUTES, AlertmanagerCalls
from daemon.web.api_notifiers import NotifierCalls, NotifierFiguresSource
from daemon.web.api_records import RECORDS_ROUTES, RecordsCalls
from daemon.web.api_refusals import Refusal, as_json
from daemon.web.api_routes import MAX_BODY_BYTES, ROUTES, Operation, Route
from daemon.web.api_silences import SilenceCalls
from daemon.web.api_zones import ZoneCalls
from daemon.web.console import mount_console
from daemon.web.doorman import BoundedSite, Doorman, connection_budget, raise_file_limit
from daemon.web.dusk import DarkHours
from daemon.web.glance import GatewayGlance
from daemon.web.openapi import openapi_document
from daemon.web.recent import RecentEvents
from daemon.web.settings import ApiConfig
from daemon.web.throttle import GuessThrottle

__all__ = ["ApiServer", "build_api", "run_api", "serve"]

log = logging.getLogger(__name__)


def _operations(desk: AlarmDesk, clock: Clock, health: Callable[[], Mapping[str, Any]] | None,
                notifiers: NotifierFiguresSource | None, zones: ZoneCalls) -> dict[str, Operation]:
    """The JSON API's operations by their OpenAPI operationId."""
    alarms, silences = AlarmCalls(desk, clock), SilenceCalls(desk, clock)
    return {
        "health": _health(health), "openapi": _openapi(False),
        "listAlerts": alarms.list_alerts, "getAlert": alarms.get_alert,
        "acknowledgeAlert": alarms.acknowledge, "recordCheck": alarms.record_check,
        "listSilences": silences.list_silences, "createSilence": silences.create,
        "approveSilence": silences.approve, "expireSilence": silences.expire,
        **AlertmanagerCalls(desk, clock).operations(),
        "listNotifiers": NotifierCalls(notifiers).list_notifiers,
        "armZone": zones.arm, "disarmZone": zones.disarm, "startWalkTest": zones.walk_test}


def build_api(desk: AlarmDesk, officers: Mapping[str, str] | Officers, clock: Clock, *,
              health: Callable[[], Mapping[str, Any]] | None = None,
              ready: Callable[[], Awaitable[list[str]]] | None = None,
              metrics: Callable[[], Awaitable[bytes]] | None = None,
              console: bool = False, recent: RecentEvents | None = None,
              audit_path: Path | None = None, roles: Mapping[str, Role] | None = None,
              metrics_token_required: bool = True,
              throttle: GuessThrottle | None = None,
              notifiers: NotifierFiguresSource | None = None,
              sessions_path: Path | None = None, arming: ArmingDesk | None = None,
              storehouses: Callable[[], Collection[str]] = frozenset,
              gateway: GatewayGlance | None = None,
              dark: DarkHours | None = None,
              records: RecordsDesk | None = None) -> web.Application:
    """The API as an aiohttp application; `officers` maps token SHA-256 (hex) to officer name,
    `roles` officer name to role (operator where it says nothing).

    With `ready` (reasons not to be ready), `metrics` (Prometheus text, behind an officer token
    unless `metrics_token_required` is false) and `console`, the same application also serves
    /readyz, /metrics and the officers' web console (issue 8); those are no part of the JSON
    API's OpenAPI document. Wrong tokens on the API and the console's login share `throttle`.
    `notifiers` gives the outboxes' figures for /api/v1/notifiers (none without it).
    `arming` arms and disarms the zones of the storehouses `storehouses()` names (asked at
    each call, so a reload's new storehouses are served). The console shows `gateway`'s links
    and dead letters and turns dark in `dark`'s hours; `records` keeps the book (roster,
    items, orders) on /api/v1/records.
    """
    # An Officers given is shared with the caller, which may swap its tokens (a reload).
    known = officers if isinstance(officers, Officers) else Officers(officers, roles)
    guesses = throttle or GuessThrottle()
    if not known:
        log.warning("API: no officers configured (api.officers): every call will be refused")
    operations = _operations(desk, clock, health, notifiers, ZoneCalls(arming, storehouses))
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[as_json])
    if records is not None:
        operations |= {**RecordsCalls(records).operations(), "openapi": _openapi(True)}
    for route in (*ROUTES, *ALERTMANAGER_ROUTES, *(RECORDS_ROUTES if records else ())):
        app.router.add_route(route.method, route.path,
                             _guarded(route, operations[route.operation], known, guesses),
                             name=route.operation)
    if ready is not None:
        app.router.add_get("/readyz", _readyz(ready), name="ready")
    if metrics is not None:
        app.router.add_get("/metrics", _metrics(
            metrics, (known, guesses) if metrics_token_required else None), name="metrics")
    if console:
        mount_console(app, desk, known, clock, recent=recent, audit_path=audit_path,
                      throttle=guesses, sessions_path=sessions_path, gateway=gateway,
                      dark=dark, zone_states=arming.zone_states if arming is not None else None,
                      records=records)
    return app


def _guarded(route: Route, operation: Operation, officers: Officers,
             guesses: GuessThrottle) -> Handler:
    async def handle(request: web.Request) -> web.StreamResponse:
        # Default deny: only routes the table marks public go without a token.
        if route.public:
            return await operation(request, "")
        officer = _officer(request, officers, guesses)
        try:
            require(officers.role(officer), route.action, officer)
        except Forbidden as exc:
            log.info("API: refused %s %s to %s: %s", request.method, request.path, officer, exc)
            raise Refusal(403, str(exc)) from None
        return await operation(request, officer)
    return handle


def _officer(request: web.Request, officers: Officers, guesses: GuessThrottle) -> str:
    source = request.remote or "unknown"
    wait = guesses.wait_s(source)
    if wait > 0:
        # Unjudged while the address backs off: a flood learns nothing, not even a right token.
        guesses.refused_waiting(source, "API")
        retry = str(math.ceil(wait))
        raise Refusal(429, f"too many wrong officer tokens from this address: try again in "
                      f"{retry} s", headers={"Retry-After": retry})
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    officer = officers.identify(token.strip()) if scheme.lower() == "bearer" else None
    if officer is None:
        if token:
            guesses.failed(source, "API")
        else:
            log.debug("API: refused %s %s from %s: no bearer token", request.method,
                      request.path, source)
        raise Refusal(401, "a valid officer token is required (Authorization: Bearer ...)",
                      headers={"WWW-Authenticate": 'Bearer realm="depotwatch"'})
    return officer


def _health(health: Callable[[], Mapping[str, Any]] | None) -> Operation:
    async def answer(request: web.Request, officer: str) -> web.Response:
        body: dict[str, Any] = {"status": "ok", **(health() if health else {})}
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)
    return answer


def _openapi(records: bool) -> Operation:
    # Built at the first request, not at start: pydantic's JSON schemas of every body are
    # garbage a daemon that is never asked for its document need not make (issue 29).
    document: list[dict[str, Any]] = []

    async def answer(request: web.Request, officer: str) -> web.Response:
        if not document:
            document.append(openapi_document(records))
        return web.json_response(document[0])
    return answer


def _readyz(ready: Callable[[], Awaitable[list[str]]]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        # For load balancers and systemd: no token, and only reasons, never a secret.
        reasons = await ready()
        return web.json_response({"status": "not ready" if reasons else "ready",
                                  "reasons": reasons}, status=503 if reasons else 200)
    return handle


def _metrics(render: Callable[[], Awaitable[bytes]],
             guard: tuple[Officers, GuessThrottle] | None) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        if guard is not None:
            # Any officer, viewer too: Prometheus sends its token as a bearer token.
            _officer(request, *guard)
        body = await render()
        # Here, not at the top: prometheus_client is imported at the first scrape (issue 29).
        from prometheus_client import CONTENT_TYPE_LATEST

        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})
    return handle


@dataclass(frozen=True, slots=True)
class ApiServer:
    """A listening API."""

    host: str
    port: int

    @property
    def url(self) -> str:
        """Base URL, e.g. http://127.0.0.1:8470."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


@contextlib.asynccontextmanager
async def serve(app: web.Application, host: str, port: int, *, max_connections: int = 256,
                idle_s: float = 30.0) -> AsyncIterator[ApiServer]:
    """Listen on host:port (0 picks a free port) while the block runs, holding at most
    `max_connections` and closing one silent for `idle_s`."""
    # No access log: info stays quiet, and the desk's audit trail records every action.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0, keepalive_timeout=idle_s)
    await runner.setup()
    try:
        try:
            await BoundedSite(runner, host, port, Doorman(max_connections, idle_s)).start()
        except OSError as exc:
            raise DepotwatchError(f"alert API cannot listen on {host}:{port}: "
                                  f"{exc.strerror or exc}") from exc
        bound = runner.addresses[0]
        server = ApiServer(host, int(bound[1]))
        log.info("alert API listening on %s", server.url)
        yield server
    finally:
        await runner.cleanup()


async def serve_officers(app: web.Application, config: ApiConfig,
                         listening: Callable[[str], None], lost: Callable[[], None]) -> None:
    """Serve the officers' API until cancelled, within the open-file budget; a port that
    cannot be had is logged and `lost()`, never a crash of the gateway."""
    try:
        async with serve(app, config.listen_host, config.listen_port,
                         max_connections=connection_budget(config.max_connections,
                                                           raise_file_limit()),
                         idle_s=config.idle_timeout_s) as server:
            listening(server.url)
            await asyncio.Event().wait()
    except DepotwatchError as exc:
        log.error("%s; running without the officers' API", exc)
        lost()


async def run_api(app: web.Application, host: str, port: int) -> None:
    """Serve until cancelled (the daemon's TaskGroup shutdown path)."""
    async with serve(app, host, port):
        await asyncio.Event().wait()
