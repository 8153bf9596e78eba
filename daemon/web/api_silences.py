"""The API's silence calls: list, create, approve (the second officer), expire."""

from __future__ import annotations

import logging
from collections.abc import Callable

from aiohttp import web

from daemon.alerts.desk import AlarmDesk
from daemon.alerts.silences import Silence
from daemon.vocabulary.clock import Clock
from daemon.web.api_bodies import SilenceBody
from daemon.web.api_refusals import Refusal, lifecycle_conflict, read_body

__all__ = ["SilenceCalls"]

log = logging.getLogger(__name__)


class SilenceCalls:
    """The route table's silence operations, over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, clock: Clock) -> None:
        self._desk, self._clock = desk, clock

    async def list_silences(self, request: web.Request, officer: str) -> web.Response:
        """Every silence, newest first."""
        return web.json_response({"silences": [s.to_dict() for s in self._desk.silences()]})

    async def create(self, request: web.Request, officer: str) -> web.Response:
        """A new silence; the desk decides whether it waits for a second officer."""
        body = await read_body(request, SilenceBody)
        now_ns = self._clock.now_ns()
        with lifecycle_conflict():
            silence = self._desk.add_silence(body.matchers.labels(), officer, body.reason,
                                             body.ends_ns(now_ns), now_ns)
        log.debug("API: %s created silence %s for %s", officer, silence.id, silence.matchers)
        return web.json_response(silence.to_dict(), status=201)

    async def approve(self, request: web.Request, officer: str) -> web.Response:
        """Approve another officer's silence that waits for a second officer."""
        return self._step(request, officer, self._desk.approve_silence, "approved")

    async def expire(self, request: web.Request, officer: str) -> web.Response:
        """End a silence now."""
        return self._step(request, officer, self._desk.expire_silence, "expired")

    def _step(self, request: web.Request, officer: str,
              step: Callable[[str, str, int], Silence], done: str) -> web.Response:
        silence_id = self._silence(request.match_info["id"]).id
        with lifecycle_conflict():
            silence = step(silence_id, officer, self._clock.now_ns())
        log.debug("API: %s %s silence %s", officer, done, silence_id)
        return web.json_response(silence.to_dict())

    def _silence(self, silence_id: str) -> Silence:
        for silence in self._desk.silences():
            if silence.id == silence_id:
                return silence
        raise Refusal(404, f"no silence {silence_id!r}")
