"""Alertmanager's v2 API over the alarm desk, for amtool, Grafana and existing scripts.

Alarms are served as Alertmanager alerts (the rule as `alertname`), silences as its silences.
A new silence matches labels exactly (`=`) on alertname, storehouse, door or subject: a regex or
negative matcher could mute alarms nobody named, and the two-officer rule is judged on the rule
a silence names. One that would wait for a second officer is refused with a 400 that says so
(Alertmanager has no "awaiting approval" state, and a silence amtool reports as made must mute).
The officer is the token's, never the body's `createdBy`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import time
from typing import Any

from aiohttp import web
from pydantic import AwareDatetime, ConfigDict, Field

from daemon import __version__
from daemon.alerts.alarm import Alarm, LifecycleError
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.matchers import Matcher, parse_matcher
from daemon.alerts.silences import MATCHER_KEYS, Silence
from daemon.vocabulary.clock import Clock
from daemon.web.api_bodies import RequestBody
from daemon.web.api_refusals import Refusal, read_body
from daemon.web.api_routes import Operation, Route

__all__ = ["ALERTMANAGER_ROUTES", "AlertmanagerCalls", "AlertmanagerRefusal", "alert_labels"]

_PREFIX = "/api/v2"
_NS = 1_000_000_000
# Alertmanager's own default: an alert nobody re-sends resolves after this.
_RESOLVE_TIMEOUT_NS = 300 * _NS
# Alertmanager's label for what depotwatch calls the rule.
_ALERTNAME = "alertname"

ALERTMANAGER_ROUTES = (
    Route("GET", f"{_PREFIX}/status", "amStatus", "Alertmanager v2: status", "AmStatus"),
    Route("GET", f"{_PREFIX}/alerts", "amListAlerts", "Alertmanager v2: open alarms as alerts",
          "AmAlerts", refusals=(400,)),
    Route("GET", f"{_PREFIX}/silences", "amListSilences", "Alertmanager v2: silences",
          "AmSilences", refusals=(400,)),
    Route("GET", f"{_PREFIX}/silence/{{id}}", "amGetSilence", "Alertmanager v2: one silence",
          "AmSilence", refusals=(404,)),
    Route("POST", f"{_PREFIX}/silences", "amCreateSilence",
          "Alertmanager v2: a silence one officer may set (= matchers only)", "AmSilenceId",
          refusals=(400, 403), action="silence"),
    Route("DELETE", f"{_PREFIX}/silence/{{id}}", "amExpireSilence",
          "Alertmanager v2: expire a silence", "AmEmpty", refusals=(403, 404), action="expire"),
)


class AlertmanagerRefusal(Refusal):
    """A refusal as Alertmanager words it: the body is one JSON string (amtool prints it)."""

    def response(self) -> web.Response:
        """The message as a JSON string with the status."""
        return web.json_response(self.message, status=self.status, headers=self.headers)


class _MatcherBody(RequestBody):
    # Alertmanager's field names; fields it may add later are ignored, as it does itself.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)
    name: str = Field(min_length=1, max_length=200)
    value: str = Field(max_length=200)
    isRegex: bool = False
    isEqual: bool = True


class _SilenceBody(RequestBody):
    # Alertmanager's PostableSilence.
    model_config = ConfigDict(extra="ignore", frozen=True, str_strip_whitespace=True)
    id: str | None = None
    matchers: list[_MatcherBody] = Field(min_length=1, max_length=10)
    startsAt: AwareDatetime
    endsAt: AwareDatetime
    createdBy: str = ""
    comment: str = Field(default="", max_length=2000)


def _iso(ns: int) -> str:
    return dt.datetime.fromtimestamp(ns / _NS, tz=dt.UTC).isoformat(
        timespec="milliseconds").replace("+00:00", "Z")


def _ns(when: dt.datetime) -> int:
    return (when - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(microseconds=1) * 1000


def alert_labels(alarm: Alarm) -> dict[str, str]:
    """The alarm's labels in Alertmanager's words (empty labels left out, as it does)."""
    labels = {k: v for k, v in alarm.labels().items() if v and k != "rule"}
    return {_ALERTNAME: alarm.rule, "severity": alarm.severity.value, **labels}


def _filters(request: web.Request) -> list[Matcher]:
    try:
        return [parse_matcher(text) for text in request.query.getall("filter", [])]
    except ValueError as exc:
        raise AlertmanagerRefusal(400, str(exc)) from None


def _flag(request: web.Request, name: str) -> bool:
    return request.query.get(name, "true").lower() != "false"


class AlertmanagerCalls:
    """The v2 operations over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, clock: Clock) -> None:
        self._desk, self._clock = desk, clock
        self._started = time.time_ns()

    def operations(self) -> dict[str, Operation]:
        """Each route's operation by its name in ALERTMANAGER_ROUTES."""
        return {"amStatus": self.status, "amListAlerts": self.list_alerts,
                "amListSilences": self.list_silences, "amGetSilence": self.get_silence,
                "amCreateSilence": self.create_silence, "amExpireSilence": self.expire_silence}

    async def status(self, request: web.Request, officer: str) -> web.Response:
        """A single, unclustered instance; no Alertmanager config to show."""
        return web.json_response({
            "cluster": {"status": "disabled", "peers": []},
            "versionInfo": {"version": __version__, "branch": "", "revision": "",
                            "buildUser": "", "buildDate": "", "goVersion": "depotwatch"},
            "config": {"original": ""}, "uptime": _iso(self._started)})

    async def list_alerts(self, request: web.Request, officer: str) -> web.Response:
        """Open alarms, filtered as Alertmanager filters (active, silenced, inhibited, filter)."""
        wanted = _filters(request)
        show = {name: _flag(request, name) for name in ("active", "silenced", "inhibited")}
        now_ns = self._clock.now_ns()
        alerts = []
        for alarm in self._desk.alarms():
            labels = alert_labels(alarm)
            kind = ("inhibited" if alarm.inhibited_by else "silenced" if alarm.silenced_by
                    else "active")
            if show[kind] and all(m.matches(labels) for m in wanted):
                alerts.append(self._alert(alarm, labels, now_ns))
        return web.json_response(alerts)

    def _alert(self, alarm: Alarm, labels: dict[str, str], now_ns: int) -> dict[str, Any]:
        annotations = {"summary": alarm.summary, "alert_key": alarm.key,
                       "lifecycle": alarm.state.value}
        if alarm.acked_by:
            annotations["acked_by"] = alarm.acked_by
        return {
            "labels": labels, "annotations": annotations,
            "startsAt": _iso(alarm.started_ns), "updatedAt": _iso(now_ns),
            "endsAt": _iso(now_ns + _RESOLVE_TIMEOUT_NS),
            "fingerprint": hashlib.sha256(alarm.key.encode()).hexdigest()[:16],
            "receivers": [{"name": name} for name in alarm.notified] or [{"name": "depotwatch"}],
            "status": {"state": "suppressed" if alarm.muted else "active",
                       "silencedBy": [alarm.silenced_by] if alarm.silenced_by else [],
                       "inhibitedBy": [alarm.inhibited_by] if alarm.inhibited_by else []}}

    async def list_silences(self, request: web.Request, officer: str) -> web.Response:
        """Every silence, filtered on its matchers as Alertmanager does."""
        wanted = _filters(request)
        now_ns = self._clock.now_ns()
        found = [self._silence(s, now_ns) for s in self._desk.silences()
                 if all(m.matches(self._labels(s)) for m in wanted)]
        return web.json_response(found)

    async def get_silence(self, request: web.Request, officer: str) -> web.Response:
        """One silence by id."""
        return web.json_response(self._silence(self._find(request.match_info["id"]),
                                               self._clock.now_ns()))

    async def create_silence(self, request: web.Request, officer: str) -> web.Response:
        """A silence from = matchers, if one officer may set it."""
        try:
            body = await read_body(request, _SilenceBody)
        except Refusal as exc:
            raise AlertmanagerRefusal(400, f"{exc.message}: {exc.detail}") from None
        if body.id:
            raise AlertmanagerRefusal(400, "silences cannot be changed here: expire it "
                                      "(amtool silence expire ID) and add a new one")
        matchers = self._matchers(body.matchers)
        now_ns = self._clock.now_ns()
        # amtool stamps startsAt when it builds the request; a later start is not kept here.
        if _ns(body.startsAt) > now_ns + 60 * _NS:
            raise AlertmanagerRefusal(400, "silences start when they are made here: "
                                      "leave startsAt at now")
        ends_ns = _ns(body.endsAt)
        why = self._desk.silence_approval_why(matchers, ends_ns, now_ns)
        if why:
            raise AlertmanagerRefusal(400, f"this silence needs a second officer's approval "
                                      f"({why}); create it in the console or with POST "
                                      f"/api/v1/silences, where another officer approves it")
        try:
            silence = self._desk.add_silence(matchers, officer, body.comment, ends_ns, now_ns)
        except LifecycleError as exc:
            raise AlertmanagerRefusal(400, str(exc)) from None
        return web.json_response({"silenceID": silence.id})

    async def expire_silence(self, request: web.Request, officer: str) -> web.Response:
        """End a silence now (Alertmanager's DELETE)."""
        silence = self._find(request.match_info["id"])
        try:
            self._desk.expire_silence(silence.id, officer, self._clock.now_ns())
        except LifecycleError as exc:
            raise AlertmanagerRefusal(404, str(exc)) from None
        return web.json_response({})

    @staticmethod
    def _matchers(given: list[_MatcherBody]) -> dict[str, str]:
        matchers: dict[str, str] = {}
        for matcher in given:
            name = "rule" if matcher.name == _ALERTNAME else matcher.name
            if matcher.isRegex or not matcher.isEqual:
                raise AlertmanagerRefusal(400, f"{matcher.name}: only = matchers make a "
                                          "silence here; a regex or negative matcher could "
                                          "mute alarms nobody named")
            if name not in MATCHER_KEYS or name in matchers:
                raise AlertmanagerRefusal(400, f"{matcher.name}: a silence matches alertname, "
                                          "storehouse, door or subject, each at most once")
            matchers[name] = matcher.value
        return matchers

    @staticmethod
    def _labels(silence: Silence) -> dict[str, str]:
        return {(_ALERTNAME if k == "rule" else k): v for k, v in silence.matchers.items()}

    def _silence(self, silence: Silence, now_ns: int) -> dict[str, Any]:
        ended = silence.expired_ns is not None or silence.ends_ns <= now_ns
        # Waiting for a second officer, it is not in force yet: Alertmanager's "pending".
        state = "expired" if ended else "pending" if not silence.active(now_ns) else "active"
        comment = silence.reason
        if silence.needs_approval and silence.approved_by is None:
            comment += f" [waits for a second officer: {silence.approval_why}]"
        return {
            "id": silence.id, "status": {"state": state},
            "updatedAt": _iso(silence.expired_ns or silence.starts_ns),
            "matchers": [{"name": k, "value": v, "isRegex": False, "isEqual": True}
                         for k, v in self._labels(silence).items()],
            "startsAt": _iso(silence.starts_ns),
            "endsAt": _iso(min(silence.ends_ns, silence.expired_ns or silence.ends_ns)),
            "createdBy": silence.author, "comment": comment}

    def _find(self, silence_id: str) -> Silence:
        for silence in self._desk.silences():
            if silence.id == silence_id:
                return silence
        raise AlertmanagerRefusal(404, f"no silence {silence_id!r}")
