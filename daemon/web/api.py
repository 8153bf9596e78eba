"""The officers' HTTP API: list alarms, acknowledge, record on-site checks, silences (issue 6)."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from daemon.alerts.alarm import Alarm, Finding, LifecycleError
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers
from daemon.alerts.silences import Silence
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import DepotwatchError
from daemon.web.console import Console, mount_console
from daemon.web.recent import RecentEvents

__all__ = [
    "API_PREFIX",
    "ROUTES",
    "AckBody",
    "ApiServer",
    "CheckBody",
    "SilenceBody",
    "SilenceMatchers",
    "build_api",
    "openapi_document",
    "run_api",
    "serve",
]

log = logging.getLogger(__name__)

API_PREFIX = "/api/v1"
# Bodies are a note or a silence: a few kB at most.
MAX_BODY_BYTES = 64 * 1024
_NS = 1_000_000_000
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NOTE_CHARS = 2000
_LABEL_CHARS = 200

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
Body = TypeVar("Body", bound="_Body")


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)


class AckBody(_Body):
    """Acknowledge an alarm: repeats and escalation stop; the alarm stays open."""

    note: str = Field(default="", max_length=_NOTE_CHARS)


class CheckBody(_Body):
    """The on-site check; it clears the alarm once its condition has ended (PSSM.md response)."""

    finding: Finding
    note: str = Field(default="", max_length=_NOTE_CHARS)


class SilenceMatchers(_Body):
    """Which alarms a silence mutes: every label given must equal the alarm's."""

    rule: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)
    storehouse: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)
    door: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)
    subject: str | None = Field(default=None, min_length=1, max_length=_LABEL_CHARS)

    @model_validator(mode="after")
    def _some(self) -> SilenceMatchers:
        if not self.labels():
            raise ValueError("give at least one of rule, storehouse, door, subject")
        return self

    def labels(self) -> dict[str, str]:
        """The matchers given, as the desk takes them."""
        return {k: v for k, v in self.model_dump().items() if v is not None}


class SilenceBody(_Body):
    """A silence from now until `ends_at`, or for `for_s` seconds (exactly one of the two)."""

    matchers: SilenceMatchers
    reason: str = Field(min_length=1, max_length=_NOTE_CHARS)
    ends_at: AwareDatetime | None = None
    # The bound only keeps the nanosecond arithmetic finite; it is no policy.
    for_s: float | None = Field(default=None, gt=0, le=10 * 366 * 86400)

    @model_validator(mode="after")
    def _one_end(self) -> SilenceBody:
        if (self.ends_at is None) == (self.for_s is None):
            raise ValueError("give exactly one of ends_at, for_s")
        return self

    def ends_ns(self, now_ns: int) -> int:
        """When the silence ends; `for_s` counts on the daemon's clock, not the caller's."""
        if self.ends_at is not None:
            # Integer arithmetic: a float timestamp times 1e9 is off by up to ~200 ns.
            return (self.ends_at - _EPOCH) // dt.timedelta(microseconds=1) * 1000
        return now_ns + int((self.for_s or 0.0) * _NS)


class _Refusal(Exception):
    """An answer other than success, as a JSON body {"error": ..., "detail": ...}."""

    def __init__(self, status: int, message: str, detail: Any = None,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.detail, self.headers = status, message, detail, headers

    def response(self) -> web.Response:
        body: dict[str, Any] = {"error": self.message}
        if self.detail is not None:
            body["detail"] = self.detail
        return web.json_response(body, status=self.status, headers=self.headers)


@dataclass(frozen=True, slots=True)
class _Route:
    method: str
    path: str
    operation: str
    summary: str
    response: str
    status: int = 200
    body: type[_Body] | None = None
    public: bool = False
    refusals: tuple[int, ...] = ()


# The one table both the router and the OpenAPI document are built from.
ROUTES = (
    _Route("GET", "/healthz", "health", "Whether the daemon runs well (no token)", "Health",
           public=True, refusals=(503,)),
    _Route("GET", f"{API_PREFIX}/openapi.json", "openapi", "This OpenAPI 3.1 document (no token)",
           "OpenApi", public=True),
    _Route("GET", f"{API_PREFIX}/alerts", "listAlerts",
           "Open alarms, most severe and oldest first; all=1 adds the recently cleared",
           "AlarmList", refusals=(422,)),
    _Route("GET", f"{API_PREFIX}/alerts/{{key}}", "getAlert", "One alarm, open or recently cleared",
           "Alarm", refusals=(404,)),
    _Route("POST", f"{API_PREFIX}/alerts/{{key}}/ack", "acknowledgeAlert",
           "Acknowledge an alarm with a note (stops repeats and escalation)", "Alarm",
           body=AckBody, refusals=(404, 409, 422)),
    _Route("POST", f"{API_PREFIX}/alerts/{{key}}/check", "recordCheck",
           "Record the on-site check and its finding; clears the alarm once its condition ended",
           "Alarm", body=CheckBody, refusals=(404, 409, 422)),
    _Route("GET", f"{API_PREFIX}/silences", "listSilences", "Every silence, newest first",
           "SilenceList"),
    _Route("POST", f"{API_PREFIX}/silences", "createSilence",
           "Create a silence; one that may mute a critical rule waits for a second officer",
           "Silence", status=201, body=SilenceBody, refusals=(409, 422)),
    _Route("POST", f"{API_PREFIX}/silences/{{id}}/approve", "approveSilence",
           "Approve another officer's silence of a critical rule", "Silence",
           refusals=(404, 409)),
    _Route("POST", f"{API_PREFIX}/silences/{{id}}/expire", "expireSilence",
           "End a silence now", "Silence", refusals=(404, 409)),
)


class _Api:
    def __init__(self, desk: AlarmDesk, officers: Officers, clock: Clock,
                 health: Callable[[], Mapping[str, Any]] | None) -> None:
        self._desk, self._officers, self._clock, self._health = desk, officers, clock, health
        self._document = openapi_document()

    # -- plumbing --------------------------------------------------------------------------------

    def handler(self, route: _Route) -> Handler:
        act: Callable[[web.Request, str], Awaitable[web.StreamResponse]] = getattr(
            self, "_do_" + re.sub("([A-Z])", r"_\1", route.operation).lower())

        async def handle(request: web.Request) -> web.StreamResponse:
            # Default deny: only routes the table marks public go without a token.
            return await act(request, "" if route.public else self._authenticate(request))

        return handle

    def _authenticate(self, request: web.Request) -> str:
        scheme, _, token = request.headers.get("Authorization", "").partition(" ")
        officer = self._officers.identify(token.strip()) if scheme.lower() == "bearer" else None
        if officer is None:
            # Never the token itself: only whether one came, and from where.
            log.warning("API: refused %s %s from %s: %s", request.method, request.path,
                        request.remote, "unknown token" if token else "no bearer token")
            raise _Refusal(401, "a valid officer token is required (Authorization: Bearer ...)",
                           headers={"WWW-Authenticate": 'Bearer realm="depotwatch"'})
        return officer

    @staticmethod
    async def _body(request: web.Request, model: type[Body]) -> Body:
        raw = await request.read()
        try:
            return model.model_validate_json(raw if raw.strip() else b"{}")
        except ValidationError as exc:
            # exc.json() makes every input JSON-ready (a malformed body's bytes included).
            raise _Refusal(422, "invalid request body", json.loads(
                exc.json(include_url=False, include_context=False))) from None

    def _alarm(self, key: str) -> Alarm:
        try:
            return self._desk.get(key)
        except LifecycleError as exc:
            raise _Refusal(404, str(exc)) from None

    def _silence(self, silence_id: str) -> Silence:
        for silence in self._desk.silences():
            if silence.id == silence_id:
                return silence
        raise _Refusal(404, f"no silence {silence_id!r}")

    # -- operations ------------------------------------------------------------------------------

    async def _do_health(self, request: web.Request, officer: str) -> web.Response:
        body: dict[str, Any] = {"status": "ok", **(self._health() if self._health else {})}
        return web.json_response(body, status=200 if body["status"] == "ok" else 503)

    async def _do_openapi(self, request: web.Request, officer: str) -> web.Response:
        return web.json_response(self._document)

    async def _do_list_alerts(self, request: web.Request, officer: str) -> web.Response:
        flag = request.query.get("all", "0").lower()
        if flag not in ("0", "1", "false", "true"):
            raise _Refusal(422, "query parameter all must be 0 or 1")
        alarms = self._desk.alarms(include_cleared=flag in ("1", "true"))
        return web.json_response({"alerts": [a.to_dict() for a in alarms]})

    async def _do_get_alert(self, request: web.Request, officer: str) -> web.Response:
        return web.json_response(self._alarm(request.match_info["key"]).to_dict())

    async def _do_acknowledge_alert(self, request: web.Request, officer: str) -> web.Response:
        body = await self._body(request, AckBody)
        key = self._alarm(request.match_info["key"]).key
        with _conflict():
            alarm = self._desk.acknowledge(key, officer, body.note, self._clock.now_ns())
        log.debug("API: %s acknowledged alarm %s", officer, key)
        return web.json_response(alarm.to_dict())

    async def _do_record_check(self, request: web.Request, officer: str) -> web.Response:
        body = await self._body(request, CheckBody)
        key = self._alarm(request.match_info["key"]).key
        with _conflict():
            alarm = self._desk.record_check(key, officer, body.finding, body.note,
                                            self._clock.now_ns())
        log.debug("API: %s recorded the check of alarm %s: %s", officer, key, body.finding)
        return web.json_response(alarm.to_dict())

    async def _do_list_silences(self, request: web.Request, officer: str) -> web.Response:
        return web.json_response({"silences": [s.to_dict() for s in self._desk.silences()]})

    async def _do_create_silence(self, request: web.Request, officer: str) -> web.Response:
        body = await self._body(request, SilenceBody)
        now_ns = self._clock.now_ns()
        with _conflict():
            silence = self._desk.add_silence(body.matchers.labels(), officer, body.reason,
                                             body.ends_ns(now_ns), now_ns)
        log.debug("API: %s created silence %s for %s", officer, silence.id, silence.matchers)
        return web.json_response(silence.to_dict(), status=201)

    async def _do_approve_silence(self, request: web.Request, officer: str) -> web.Response:
        silence_id = self._silence(request.match_info["id"]).id
        with _conflict():
            silence = self._desk.approve_silence(silence_id, officer, self._clock.now_ns())
        log.debug("API: %s approved silence %s", officer, silence_id)
        return web.json_response(silence.to_dict())

    async def _do_expire_silence(self, request: web.Request, officer: str) -> web.Response:
        silence_id = self._silence(request.match_info["id"]).id
        with _conflict():
            silence = self._desk.expire_silence(silence_id, officer, self._clock.now_ns())
        log.debug("API: %s expired silence %s", officer, silence_id)
        return web.json_response(silence.to_dict())


@contextlib.contextmanager
def _conflict() -> Iterator[None]:
    """A refused lifecycle step is a 409 carrying the desk's message for the officer."""
    try:
        yield
    except LifecycleError as exc:
        raise _Refusal(409, str(exc)) from None


@web.middleware
async def _as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Every error is JSON, aiohttp's own 404/405/413 too, so the CLI has one shape to read.
    try:
        return await handler(request)
    except _Refusal as refusal:
        return refusal.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {k: v for k, v in exc.headers.items() if k.lower() == "allow"}
        return web.json_response({"error": exc.reason}, status=exc.status, headers=allow)


def build_api(desk: AlarmDesk, officers: Mapping[str, str], clock: Clock, *,
              health: Callable[[], Mapping[str, Any]] | None = None,
              ready: Callable[[], Awaitable[list[str]]] | None = None,
              metrics: Callable[[], Awaitable[bytes]] | None = None,
              console: bool = False, recent: RecentEvents | None = None,
              audit_path: Path | None = None) -> web.Application:
    """The API as an aiohttp application; `officers` maps token SHA-256 (hex) to officer name.

    With `ready` (reasons not to be ready), `metrics` (Prometheus text) and `console`, the same
    application also serves /readyz, /metrics and the officers' web console (issue 8); those
    are no part of the JSON API's OpenAPI document.
    """
    known = Officers(officers)
    if not known:
        log.warning("API: no officers configured (api.officers): every call will be refused")
    api = _Api(desk, known, clock, health)
    app = web.Application(client_max_size=MAX_BODY_BYTES, middlewares=[_as_json])
    for route in ROUTES:
        app.router.add_route(route.method, route.path, api.handler(route), name=route.operation)
    if ready is not None:
        app.router.add_get("/readyz", _readyz(ready), name="ready")
    if metrics is not None:
        app.router.add_get("/metrics", _metrics(metrics), name="metrics")
    if console:
        mount_console(app, Console(desk, known, clock, recent=recent, audit_path=audit_path))
    return app


def _readyz(ready: Callable[[], Awaitable[list[str]]]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        # For load balancers and systemd: no token, and only reasons, never a secret.
        reasons = await ready()
        return web.json_response({"status": "not ready" if reasons else "ready",
                                  "reasons": reasons}, status=503 if reasons else 200)
    return handle


def _metrics(render: Callable[[], Awaitable[bytes]]) -> Handler:
    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=await render(), headers={"Content-Type": CONTENT_TYPE_LATEST})
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
async def serve(app: web.Application, host: str, port: int) -> AsyncIterator[ApiServer]:
    """Listen on host:port (0 picks a free port) while the block runs."""
    # No access log: info stays quiet, and the desk's audit trail records every action.
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
    await runner.setup()
    try:
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            raise DepotwatchError(f"alert API cannot listen on {host}:{port}: "
                                  f"{exc.strerror or exc}") from exc
        bound = runner.addresses[0]
        server = ApiServer(host, int(bound[1]))
        log.info("alert API listening on %s", server.url)
        yield server
    finally:
        await runner.cleanup()


async def run_api(app: web.Application, host: str, port: int) -> None:
    """Serve until cancelled (the daemon's TaskGroup shutdown path)."""
    async with serve(app, host, port):
        await asyncio.Event().wait()


def openapi_document() -> dict[str, Any]:
    """The OpenAPI 3.1 description of `ROUTES`, schemas generated from the very types served."""
    ref = "#/components/schemas/{model}"
    adapters: list[tuple[str, Any, TypeAdapter[Any]]] = [
        ("Alarm", "serialization", TypeAdapter(Alarm)),
        ("Silence", "serialization", TypeAdapter(Silence)),
        *((r.body.__name__, "validation", TypeAdapter(r.body)) for r in ROUTES if r.body),
    ]
    _, generated = TypeAdapter.json_schemas(adapters, ref_template=ref)
    schemas: dict[str, Any] = dict(generated.get("$defs", {}))
    for name in ("Alarm", "Silence"):
        # to_dict() writes every field, defaulted or not.
        schemas[name]["required"] = list(schemas[name]["properties"])
    schemas |= {
        "AlarmList": _object({"alerts": {"type": "array", "items": {"$ref": ref.format(
            model="Alarm")}}}),
        "SilenceList": _object({"silences": {"type": "array", "items": {"$ref": ref.format(
            model="Silence")}}}),
        "Error": {"type": "object", "required": ["error"], "properties": {
            "error": {"type": "string"},
            "detail": {"description": "pydantic's errors, with 422", "type": "array"}}},
        "Health": {**_object({"status": {"type": "string"}}), "additionalProperties": True},
        "OpenApi": {"type": "object", "description": "An OpenAPI 3.1 document"},
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method.lower()] = _operation(route, ref)
    return {
        "openapi": "3.1.0",
        "info": {"title": "depotwatch alert API", "version": "1",
                 "description": "Officers list alarms, acknowledge them, record on-site checks "
                                "and manage silences. Every /api/v1 route but this document "
                                "takes an officer's bearer token."},
        "paths": paths,
        "components": {"schemas": schemas, "securitySchemes": {
            "officerToken": {"type": "http", "scheme": "bearer",
                             "description": "An officer's token (the config keeps its SHA-256)"},
        }},
        "security": [{"officerToken": []}],
    }


_REASONS = {401: "No token, or not an officer's", 404: "No such alarm or silence",
            409: "The lifecycle refuses this step (the message says why)",
            413: f"Body over {MAX_BODY_BYTES} bytes",
            422: "Invalid request body or query", 503: "Not healthy"}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": list(properties)}


def _operation(route: _Route, ref: str) -> dict[str, Any]:
    def answer(description: str, schema: str) -> dict[str, Any]:
        return {"description": description,
                "content": {"application/json": {"schema": {"$ref": ref.format(model=schema)}}}}

    responses = {str(route.status): answer("Done", route.response)}
    refusals = (*route.refusals, *(() if route.public else (401,)),
                *((413,) if route.body else ()))
    for status in refusals:
        responses[str(status)] = answer(_REASONS[status], "Health" if status == 503 else "Error")
    operation: dict[str, Any] = {"operationId": route.operation, "summary": route.summary,
                                 "responses": dict(sorted(responses.items()))}
    if route.public:
        operation["security"] = []
    parameters: list[dict[str, Any]] = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in ("key", "id") if f"{{{name}}}" in route.path]
    if route.operation == "listAlerts":
        parameters.append({"name": "all", "in": "query", "required": False,
                           "schema": {"type": "string", "enum": ["0", "1", "false", "true"]}})
    if parameters:
        operation["parameters"] = parameters
    if route.body is not None:
        required = any(f.is_required() for f in route.body.model_fields.values())
        operation["requestBody"] = {"required": required, "content": {"application/json": {
            "schema": {"$ref": ref.format(model=route.body.__name__)}}}}
    return operation
