"""The console's alarm pages: the officer's queue, one alarm with its audit trail, and its
three forms (acknowledge, on-site check with its confirmation, silence), each acted on through
the AlarmDesk."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from aiohttp.typedefs import Handler

from daemon.alerts.alarm import Finding, LifecycleError
from daemon.alerts.audit import AuditEntry, recent_for
from daemon.alerts.desk import AlarmDesk
from daemon.vocabulary.clock import Clock
from daemon.web.console_page import DepotTime, may, page, refused_page, render
from daemon.web.console_queue import FINDING_WORDS, GROUPS, AlarmCard, queue
from daemon.web.console_session import Refused, Session, Sessions, not_logged_in
from daemon.web.console_silences import silences_in_force

__all__ = ["AUDIT_SHOWN", "AlarmPages"]

log = logging.getLogger(__name__)

# Audit entries shown on an alarm's page (its own and its silence's), newest last.
AUDIT_SHOWN = 50
_NOTE_CHARS = 2000
_NS = 1_000_000_000

# One form's step on the desk: alarm key, session, form fields -> what was done, for the log.
Step = Callable[[str, Session, dict[str, str]], str]


class _Confirm(Exception):
    """A check whose finding the officer has not yet confirmed."""

    def __init__(self, finding: Finding, note: str) -> None:
        super().__init__(finding.value)
        self.finding, self.note = finding, note


class AlarmPages:
    """The alarm pages and the handlers of their forms, over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, clock: Clock, sessions: Sessions,
                 audit_path: Path | None, zones: Mapping[str, ZoneInfo]) -> None:
        self._desk, self._clock, self._sessions = desk, clock, sessions
        self._audit_path, self._zones = audit_path, zones
        self.acknowledge = self._action(self._ack, "ack")
        self.check = self._action(self._check, "check")
        self.silence = self._action(self._silence, "silence")

    def mount(self, app: web.Application) -> None:
        """Add the alarm routes; `/alerts/{key}` is what notifications link to."""
        add = app.router.add_route
        add("GET", "/console/alerts.json", self.list_json)
        add("GET", "/console/alerts/{key}.json", self.alarm_json)
        add("GET", "/alerts", self.list_page)
        add("GET", "/alerts/{key}", self.alarm_page)
        add("POST", "/alerts/{key}/ack", self.acknowledge)
        add("POST", "/alerts/{key}/check", self.check)
        add("POST", "/alerts/{key}/silence", self.silence)

    def _context(self, session: Session) -> dict[str, Any]:
        return {"time": DepotTime(self._zones, self._clock.now_ns()),
                "findings": FINDING_WORDS, "groups": GROUPS, "may_act": may(session, "ack"),
                "note_chars": _NOTE_CHARS}

    async def list_page(self, request: web.Request) -> web.Response:
        """The officer's queue: what needs a hand first, updated by polling."""
        session = self._sessions.guard(request)
        in_force = silences_in_force(self._desk.silences(), self._clock.now_ns())
        return page("alarms.html", session, queue=queue(self._desk), in_force=in_force,
                    **self._context(session))

    async def alarm_page(self, request: web.Request, message: str = "",
                         status: int = 200) -> web.Response:
        """One alarm: what it was raised for, where it stands, and the officer's next actions."""
        session = self._sessions.guard(request)
        key = request.match_info["key"]
        card = self._card(key)
        if card is None:
            return page("no_alarm.html", session, 404, key=key)
        return page("alarm.html", session, status, card=card, message=message,
                    **self._audit(card), **self._context(session))

    async def list_json(self, request: web.Request) -> web.Response:
        """The queue for the page's polling (cookie session, read-only)."""
        session = self._sessions.session(request)
        if session is None:
            return not_logged_in()
        cards = queue(self._desk)
        html = render("_alarm_queue.html", queue=cards, session=session,
                      **self._context(session))
        return web.json_response({"rows": html,
                                  "open": sum(c.group != "cleared" for c in cards),
                                  "critical": sum(c.group == "firing" and
                                                  c.alarm.severity.value == "critical"
                                                  for c in cards)})

    async def alarm_json(self, request: web.Request) -> web.Response:
        """One alarm's lifecycle block and audit trail for the detail page's polling."""
        session = self._sessions.session(request)
        if session is None:
            return not_logged_in()
        card = self._card(request.match_info["key"])
        if card is None:
            return web.json_response({"error": "no such alarm"}, status=404)
        context = {"card": card, "session": session, **self._audit(card),
                   **self._context(session)}
        return web.json_response({"html": render("_lifecycle.html", **context),
                                  "state": card.alarm.state.value,
                                  "audit": render("_audit.html", **context)})

    def _card(self, key: str) -> AlarmCard | None:
        return next((c for c in queue(self._desk) if c.alarm.key == key), None)

    def _audit(self, card: AlarmCard) -> dict[str, Any]:
        alarm = card.alarm
        entries: list[AuditEntry] = []
        if self._audit_path is not None:
            subjects = [alarm.key] + ([alarm.silenced_by] if alarm.silenced_by else [])
            entries = recent_for(self._audit_path, subjects, AUDIT_SHOWN)
        return {"configured": self._audit_path is not None, "storehouse": alarm.storehouse,
                "entries": [{"entry": e, "details": _details(e)} for e in entries]}

    # -- the forms -------------------------------------------------------------------------------

    def _action(self, step: Step, action: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            key = request.match_info["key"]
            try:
                session, form = await self._sessions.acting(request, action)
                if len(form.get("note", "")) > _NOTE_CHARS:
                    raise Refused(422, f"The note is longer than {_NOTE_CHARS} characters.")
                done = step(key, session, form)
            except Refused as refused:
                return refused_page(refused, f"/alerts/{_quoted(key)}")
            except LifecycleError as exc:
                return await self.alarm_page(request, str(exc), 409)
            except _Confirm as confirm:
                card = self._card(key)
                if card is None:
                    return await self.alarm_page(request)
                return page("confirm_check.html", session, card=card, finding=confirm.finding,
                            note=confirm.note, **self._context(session))
            log.debug("console: %s %s alarm %s", session.officer, done, key)
            back = "/alerts" if form.get("back") == "list" else f"/alerts/{_quoted(key)}"
            raise web.HTTPSeeOther(back)
        return handle

    def _ack(self, key: str, session: Session, form: dict[str, str]) -> str:
        self._desk.acknowledge(key, session.officer, form.get("note", "").strip(),
                               self._clock.now_ns())
        return "acknowledged"

    def _check(self, key: str, session: Session, form: dict[str, str]) -> str:
        try:
            finding = Finding(form.get("finding", ""))
        except ValueError:
            raise Refused(422, "Choose what the check found.") from None
        note = form.get("note", "").strip()
        if self._desk.get(key).acked_by is None:
            raise LifecycleError(f"{key} is not acknowledged yet: acknowledge it before "
                                 "recording the on-site check")
        if form.get("confirmed") != "yes":
            # A finding is recorded only once the officer has read it back (issue 30).
            raise _Confirm(finding, note)
        self._desk.record_check(key, session.officer, finding, note, self._clock.now_ns())
        return "recorded the check of"

    def _silence(self, key: str, session: Session, form: dict[str, str]) -> str:
        alarm = self._desk.get(key)
        reason = form.get("reason", "").strip()
        try:
            minutes = float(form.get("minutes", ""))
        except ValueError:
            minutes = 0.0
        if not reason or not 0 < minutes <= 7 * 24 * 60:
            raise Refused(422, "Give a reason and a duration of 1 minute to 7 days.")
        now = self._clock.now_ns()
        self._desk.add_silence({"rule": alarm.rule, "subject": alarm.subject}, session.officer,
                               reason[:_NOTE_CHARS], now + int(minutes * 60 * _NS), now)
        return "silenced"


def _quoted(key: str) -> str:
    return urllib.parse.quote(key, safe="")


def _details(entry: AuditEntry) -> str:
    return ", ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}"
                     for k, v in sorted(entry.details.items()) if v not in (None, "", {}))
