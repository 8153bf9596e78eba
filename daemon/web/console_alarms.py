"""The console's alarm pages: the list, one alarm with its audit trail, and its three forms
(acknowledge, on-site check, silence), each acted on through the AlarmDesk."""

from __future__ import annotations

import json
import logging
import urllib.parse
from collections.abc import Callable
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from daemon.alerts.alarm import Alarm, Finding, LifecycleError
from daemon.alerts.audit import AuditEntry, recent_for
from daemon.alerts.desk import AlarmDesk
from daemon.vocabulary.clock import Clock
from daemon.web.console_page import csrf_field, error, escape, page, refused_page, when
from daemon.web.console_session import Refused, Sessions, not_logged_in
from daemon.web.console_silences import silences_in_force

__all__ = ["AUDIT_SHOWN", "AlarmPages"]

log = logging.getLogger(__name__)

# Audit entries shown on an alarm's page (its own and its silence's), newest last.
AUDIT_SHOWN = 50
_NOTE_CHARS = 2000
_NS = 1_000_000_000
_NONE = '<tr><td colspan="6" class="none">No alarms.</td></tr>'

# One form's step on the desk: alarm key, officer, form fields -> what was done, for the log.
Step = Callable[[str, str, dict[str, str]], str]


class AlarmPages:
    """The alarm pages and the handlers of their forms, over one AlarmDesk."""

    def __init__(self, desk: AlarmDesk, clock: Clock, sessions: Sessions,
                 audit_path: Path | None) -> None:
        self._desk, self._clock, self._sessions = desk, clock, sessions
        self._audit_path = audit_path
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

    async def list_page(self, request: web.Request) -> web.Response:
        """Open alarms, most severe and oldest first (the desk's order), updated by polling."""
        session = self._sessions.guard(request)
        rows = "".join(_row(a) for a in self._desk.alarms(include_cleared=True,
                                                             include_silent=False))
        body = f"""
<h1>Alarms</h1>
<table class="alarms" data-poll="/console/alerts.json"><thead><tr><th>Severity</th>
<th>Storehouse</th><th>Subject</th><th>State</th><th>Since</th><th>Step</th></tr></thead>
<tbody id="alarm-rows">{rows or _NONE}</tbody></table>
{silences_in_force(self._desk.silences(), self._clock.now_ns())}"""
        return page("Alarms", body, session)

    async def alarm_page(self, request: web.Request, message: str = "",
                         status: int = 200) -> web.Response:
        """One alarm: its facts, where it is in its lifecycle, and the officer's actions."""
        session = self._sessions.guard(request)
        key = request.match_info["key"]
        try:
            alarm = self._desk.get(key)
        except LifecycleError:
            return page("No such alarm", f"<h1>No alarm {escape(key)}</h1>"
                        '<p><a href="/alerts">All alarms</a></p>', session, 404)
        facts = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>"
                        for k, v in sorted(alarm.facts.items()))
        body = f"""
<p><a href="/alerts">&larr; All alarms</a></p>
<h1 class="sev-{escape(alarm.severity)}">{escape(alarm.summary)}</h1>
{error(message)}
<section class="card" id="alarm" data-poll="/console/alerts/{_quoted(key)}.json">
{_lifecycle(alarm)}</section>
<section class="card"><h2>Facts</h2><table class="facts">
<tr><th>key</th><td>{escape(alarm.key)}</td></tr><tr><th>rule</th><td>{escape(alarm.rule)}</td></tr>
{facts}</table></section>
<section class="card"><h2>Audit trail</h2><div id="audit">{self._audit_html(alarm)}</div>
</section>
{_forms(alarm, key, csrf_field(session))}"""
        return page(alarm.key, body, session, status)

    async def list_json(self, request: web.Request) -> web.Response:
        """The list for the page's polling (cookie session, read-only)."""
        if self._sessions.session(request) is None:
            return not_logged_in()
        alarms = self._desk.alarms(include_cleared=True, include_silent=False)
        return web.json_response({"rows": "".join(_row(a) for a in alarms) or _NONE,
                                  "open": sum(a.state != "cleared" for a in alarms)})

    async def alarm_json(self, request: web.Request) -> web.Response:
        """One alarm's lifecycle block for the detail page's polling."""
        if self._sessions.session(request) is None:
            return not_logged_in()
        try:
            alarm = self._desk.get(request.match_info["key"])
        except LifecycleError as exc:
            return web.json_response({"error": str(exc)}, status=404)
        return web.json_response({"html": _lifecycle(alarm), "state": alarm.state,
                                  "audit": self._audit_html(alarm)})

    def _audit_entries(self, alarm: Alarm) -> list[AuditEntry]:
        if self._audit_path is None:
            return []
        subjects = [alarm.key] + ([alarm.silenced_by] if alarm.silenced_by else [])
        return recent_for(self._audit_path, subjects, AUDIT_SHOWN)

    def _audit_html(self, alarm: Alarm) -> str:
        if self._audit_path is None:
            return '<p class="none">No audit trail configured.</p>'
        rows = "".join(
            f'<tr data-seq="{e.seq}"><td>{when(e.at_ns)}</td><td>{escape(e.actor)}</td>'
            f'<td class="action">{escape(e.action)}</td><td>{_details(e)}</td></tr>'
            for e in self._audit_entries(alarm))
        if not rows:
            return '<p class="none">No audit entries yet.</p>'
        return ('<table class="audit"><thead><tr><th>When</th><th>Who</th><th>Action</th>'
                f"<th>Details</th></tr></thead><tbody>{rows}</tbody></table>")

    # -- the forms -------------------------------------------------------------------------------

    def _action(self, step: Step, action: str) -> Handler:
        async def handle(request: web.Request) -> web.StreamResponse:
            key = request.match_info["key"]
            try:
                session, form = await self._sessions.acting(request, action)
                if len(form.get("note", "")) > _NOTE_CHARS:
                    raise Refused(422, f"The note is longer than {_NOTE_CHARS} characters.")
                done = step(key, session.officer, form)
            except Refused as refused:
                return refused_page(refused, f"/alerts/{_quoted(key)}")
            except LifecycleError as exc:
                return await self.alarm_page(request, str(exc), 409)
            log.debug("console: %s %s alarm %s", session.officer, done, key)
            raise web.HTTPSeeOther(f"/alerts/{_quoted(key)}")
        return handle

    def _ack(self, key: str, officer: str, form: dict[str, str]) -> str:
        self._desk.acknowledge(key, officer, form.get("note", "").strip(), self._clock.now_ns())
        return "acknowledged"

    def _check(self, key: str, officer: str, form: dict[str, str]) -> str:
        try:
            finding = Finding(form.get("finding", ""))
        except ValueError:
            raise Refused(422, "Choose what the check found.") from None
        self._desk.record_check(key, officer, finding, form.get("note", "").strip(),
                                self._clock.now_ns())
        return "recorded the check of"

    def _silence(self, key: str, officer: str, form: dict[str, str]) -> str:
        alarm = self._desk.get(key)
        reason = form.get("reason", "").strip()
        try:
            minutes = float(form.get("minutes", ""))
        except ValueError:
            minutes = 0.0
        if not reason or not 0 < minutes <= 7 * 24 * 60:
            raise Refused(422, "Give a reason and a duration of 1 minute to 7 days.")
        now = self._clock.now_ns()
        self._desk.add_silence({"rule": alarm.rule, "subject": alarm.subject}, officer,
                               reason[:_NOTE_CHARS], now + int(minutes * 60 * _NS), now)
        return "silenced"


def _quoted(key: str) -> str:
    return urllib.parse.quote(key, safe="")


def _forms(alarm: Alarm, key: str, csrf: str) -> str:
    quoted = _quoted(key)
    findings = "".join(f'<option value="{f.value}">{f.value.replace("_", " ")}</option>'
                       for f in Finding)
    return f"""<section class="card actions"><h2>Acknowledge</h2>
<form method="post" action="/alerts/{quoted}/ack" id="ack-form">{csrf}
<label>Note <textarea name="note" maxlength="{_NOTE_CHARS}" rows="2"></textarea></label>
<button type="submit">Acknowledge</button></form></section>
<section class="card actions"><h2>On-site check</h2>
<form method="post" action="/alerts/{quoted}/check" id="check-form">{csrf}
<label>Finding <select name="finding">{findings}</select></label>
<label>Note <textarea name="note" maxlength="{_NOTE_CHARS}" rows="2"></textarea></label>
<button type="submit">Record check</button></form></section>
<section class="card actions"><h2>Silence</h2>
<form method="post" action="/alerts/{quoted}/silence" id="silence-form">{csrf}
<p>Mutes alarms of rule <b>{escape(alarm.rule)}</b> on <b>{escape(alarm.subject)}</b>.</p>
<label>Reason <input name="reason" maxlength="{_NOTE_CHARS}" required></label>
<label>For (minutes) <input name="minutes" type="number" min="1" max="10080" value="60"
 required></label>
<button type="submit">Create silence</button></form>
<p class="note">A silence that may mute a critical alarm, or is longer than one officer may set
(8 h critical, 24 h others by default), takes effect once a second officer approves it on the
<a href="/silences">silences page</a>.</p></section>"""


def _details(entry: AuditEntry) -> str:
    return escape(", ".join(f"{k}: {v if isinstance(v, str) else json.dumps(v)}"
                            for k, v in sorted(entry.details.items())
                            if v not in (None, "", {})))


def _row(alarm: Alarm) -> str:
    link = f"/alerts/{_quoted(alarm.key)}"
    return (f'<tr class="sev-{escape(alarm.severity)} state-{escape(alarm.state)}" '
            f'data-key="{escape(alarm.key)}">'
            f'<td data-label="Severity"><span class="badge">{escape(alarm.severity)}</span></td>'
            f'<td data-label="Storehouse">{escape(alarm.storehouse or "-")}</td>'
            f'<td data-label="Subject"><a href="{escape(link)}">{escape(alarm.subject)}</a>'
            f'<div class="summary">{escape(alarm.summary)}</div></td>'
            f'<td data-label="State" class="state">{escape(alarm.state)}</td>'
            f'<td data-label="Since">{when(alarm.started_ns)}</td>'
            f'<td data-label="Step">{alarm.escalation_step}</td></tr>')


def _lifecycle(alarm: Alarm) -> str:
    rows = [("State", f'<span class="state" id="alarm-state">{escape(alarm.state)}</span>'),
            ("Severity", escape(alarm.severity)), ("Storehouse", escape(alarm.storehouse or "-")),
            ("Subject", escape(alarm.subject)), ("Since", when(alarm.started_ns)),
            ("Condition", "active" if alarm.condition_active else "ended"),
            ("Escalation step", str(alarm.escalation_step))]
    if alarm.acked_by:
        rows.append(("Acknowledged", f"by {escape(alarm.acked_by)} at {when(alarm.acked_ns)}"
                     f'<div class="note" id="ack-note">{escape(alarm.ack_note)}</div>'))
    if alarm.finding:
        rows.append(("Checked", f"by {escape(alarm.checked_by)} at {when(alarm.checked_ns)}: "
                     f'<b id="finding">{escape(alarm.finding)}</b>'
                     f'<div class="note">{escape(alarm.check_note)}</div>'))
    if alarm.silenced_by:
        rows.append(("Silenced by", escape(alarm.silenced_by)))
    if alarm.inhibited_by:
        rows.append(("Inhibited by", escape(alarm.inhibited_by)))
    if alarm.cleared_ns:
        rows.append(("Cleared", when(alarm.cleared_ns)))
    return '<table class="facts">' + "".join(
        f"<tr><th>{k}</th><td>{v}</td></tr>" for k, v in rows) + "</table>"
