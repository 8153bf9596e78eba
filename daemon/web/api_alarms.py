"""The API's alarm calls: list, read one, acknowledge, record the on-site check."""

from __future__ import annotations

import logging

from aiohttp import web

from daemon.alerts.alarm import Alarm, LifecycleError
from daemon.alerts.desk import AlarmDesk
from daemon.vocabulary.clock import Clock
from daemon.web.api_bodies import AckBody, CheckBody
from daemon.web.api_refusals import Refusal, lifecycle_conflict, read_body

__all__ = ["AlarmCalls"]

log = logging.getLogger(__name__)


class AlarmCalls:
    """The route table's alarm operations, over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, clock: Clock) -> None:
        self._desk, self._clock = desk, clock

    def _alarm(self, key: str) -> Alarm:
        try:
            return self._desk.get(key)
        except LifecycleError as exc:
            raise Refusal(404, str(exc)) from None

    async def list_alerts(self, request: web.Request, officer: str) -> web.Response:
        """Open alarms; all=1 adds the recently cleared."""
        flag = request.query.get("all", "0").lower()
        if flag not in ("0", "1", "false", "true"):
            raise Refusal(422, "query parameter all must be 0 or 1")
        alarms = self._desk.alarms(include_cleared=flag in ("1", "true"))
        return web.json_response({"alerts": [a.to_dict() for a in alarms]})

    async def get_alert(self, request: web.Request, officer: str) -> web.Response:
        """One alarm, open or recently cleared."""
        return web.json_response(self._alarm(request.match_info["key"]).to_dict())

    async def acknowledge(self, request: web.Request, officer: str) -> web.Response:
        """Acknowledge with a note: repeats and escalation stop."""
        body = await read_body(request, AckBody)
        key = self._alarm(request.match_info["key"]).key
        with lifecycle_conflict():
            alarm = self._desk.acknowledge(key, officer, body.note, self._clock.now_ns())
        log.debug("API: %s acknowledged alarm %s", officer, key)
        return web.json_response(alarm.to_dict())

    async def record_check(self, request: web.Request, officer: str) -> web.Response:
        """The on-site check and its finding."""
        body = await read_body(request, CheckBody)
        key = self._alarm(request.match_info["key"]).key
        with lifecycle_conflict():
            alarm = self._desk.record_check(key, officer, body.finding, body.note,
                                            self._clock.now_ns())
        log.debug("API: %s recorded the check of alarm %s: %s", officer, key, body.finding)
        return web.json_response(alarm.to_dict())
