"""The API's route table: the one source of both its router and its OpenAPI document."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web
from pydantic import BaseModel

from daemon.web.api_bodies import (
    AckBody,
    ArmBody,
    CheckBody,
    SilenceBody,
    WalkTestBody,
)

__all__ = ["API_PREFIX", "MAX_BODY_BYTES", "ROUTES", "Operation", "Route"]

API_PREFIX = "/api/v1"
# Bodies are a note or a silence: a few kB at most.
MAX_BODY_BYTES = 64 * 1024

# What a route does, given the request and the officer who called ("" on public routes).
Operation = Callable[[web.Request, str], Awaitable[web.Response]]


@dataclass(frozen=True, slots=True)
class Route:
    """One route: how it is called, what it answers, and whether it goes without a token."""

    method: str
    path: str
    operation: str
    summary: str
    response: str
    status: int = 200
    body: type[BaseModel] | None = None
    public: bool = False
    refusals: tuple[int, ...] = ()
    # The officers' action it is (daemon.alerts.roles.NEEDS): which role may call it.
    action: str = "read"
    # The body's models when it depends on the path (one of them), in place of `body`.
    bodies: tuple[type[BaseModel], ...] = ()
    # The answer when the change waits for a second officer (202), if it may.
    accepted: str | None = None
    # Optional query parameters it reads (strings), for the document.
    query: tuple[str, ...] = ()


ROUTES = (
    Route("GET", "/healthz", "health", "Whether the daemon runs well (no token)", "Health",
          public=True, refusals=(503,)),
    Route("GET", f"{API_PREFIX}/openapi.json", "openapi", "This OpenAPI 3.1 document (no token)",
          "OpenApi", public=True),
    Route("GET", f"{API_PREFIX}/alerts", "listAlerts",
          "Open alarms, most severe and oldest first; all=1 adds the recently cleared",
          "AlarmList", refusals=(422,)),
    Route("GET", f"{API_PREFIX}/alerts/{{key}}", "getAlert", "One alarm, open or recently cleared",
          "Alarm", refusals=(404,)),
    Route("POST", f"{API_PREFIX}/alerts/{{key}}/ack", "acknowledgeAlert",
          "Acknowledge an alarm with a note (stops repeats and escalation)", "Alarm",
          body=AckBody, refusals=(403, 404, 409, 422), action="ack"),
    Route("POST", f"{API_PREFIX}/alerts/{{key}}/check", "recordCheck",
          "Record the on-site check and its finding; clears the alarm once its condition ended",
          "Alarm", body=CheckBody, refusals=(403, 404, 409, 422), action="check"),
    Route("GET", f"{API_PREFIX}/notifiers", "listNotifiers",
          "Each notifier's delivered, failed, retried, refused and given-up alert changes, its "
          "backlog and the refusals it keeps (alert key and reason)", "NotifierList"),
    Route("GET", f"{API_PREFIX}/silences", "listSilences", "Every silence, newest first",
          "SilenceList"),
    Route("POST", f"{API_PREFIX}/silences", "createSilence",
          "Create a silence; one that may mute a critical alarm, or longer than one officer "
          "may set, waits for a second officer",
          "Silence", status=201, body=SilenceBody, refusals=(403, 409, 422), action="silence"),
    Route("POST", f"{API_PREFIX}/silences/{{id}}/approve", "approveSilence",
          "Approve another officer's silence that needs a second officer", "Silence",
          refusals=(403, 404, 409), action="approve"),
    Route("POST", f"{API_PREFIX}/silences/{{id}}/expire", "expireSilence",
          "End a silence now", "Silence", refusals=(403, 404, 409), action="expire"),
    Route("POST", f"{API_PREFIX}/storehouses/{{id}}/arm", "armZone",
          "Arm a storehouse's zone (exit delay); refused with what is not secured unless forced",
          "Zone", body=ArmBody, refusals=(403, 404, 409, 422), action="arm"),
    Route("POST", f"{API_PREFIX}/storehouses/{{id}}/disarm", "disarmZone",
          "Disarm a storehouse's zone", "Zone", body=ArmBody, refusals=(403, 404, 409, 422),
          action="disarm"),
    Route("POST", f"{API_PREFIX}/storehouses/{{id}}/walk-test", "startWalkTest",
          "Start a walk test: the zone's detectors are recorded, not alarmed, until each was "
          "seen or the window ends", "Zone", body=WalkTestBody, refusals=(403, 404, 409, 422),
          action="walk_test"),
)
