"""Officers' actions over MQTT, for depots whose consoles speak MQTT (issue 6).

The broker's ACL decides who may publish on the command topic; the officer token in each
message decides who the action is recorded for. Replies go to `<commands topic>/replies`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, SecretStr, ValidationError

from daemon.alerts.alarm import Finding, LifecycleError
from daemon.alerts.arming import ArmingDesk
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers
from daemon.alerts.replay_guard import ReplayGuard
from daemon.alerts.roles import require
from daemon.vocabulary.clock import Clock
from daemon.vocabulary.secrets import redact_payload, redact_text

__all__ = ["Command", "CommandDesk"]

log = logging.getLogger(__name__)

_NS = 1_000_000_000


class Command(BaseModel):
    """One action: the same ones as the HTTP API."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default="", max_length=64)  # echoed in the reply
    token: SecretStr
    # When the officer's console sent it (RFC 3339 with a zone, or Unix seconds) and a value
    # used once: a captured command cannot be played again (ReplayGuard).
    sent_at: AwareDatetime
    nonce: str = Field(min_length=8, max_length=128)
    action: Literal["ack", "check", "silence", "approve", "expire", "arm", "disarm",
                    "walk_test"]
    key: str | None = None
    note: str = Field(default="", max_length=2000)
    finding: Finding | None = None
    matchers: dict[str, str] = Field(default_factory=dict)
    reason: str = Field(default="", max_length=2000)
    for_s: float | None = Field(default=None, gt=0, le=30 * 86400)
    silence_id: str | None = None
    # arm / disarm: the storehouse, and whether to arm over what is not secured (recorded).
    storehouse: str | None = Field(default=None, max_length=200)
    force: bool = False


class CommandDesk:
    """Checks a command's token and passes it to the AlarmDesk; every outcome is replied."""

    def __init__(self, desk: AlarmDesk, officers: Officers, clock: Clock,
                 reply: Callable[[bytes], None],
                 reject: Callable[[str, str, bytes, int], None] | None = None,
                 source: str = "commands", max_age_s: float = 60.0,
                 arming: ArmingDesk | None = None) -> None:
        self._desk = desk
        self._arming = arming
        self._guard = ReplayGuard(max_age_s, clock.now_ns())
        self._refusals_logged_at = -60.0
        self._refusals_unlogged = 0
        # A malformed command is bad input like any other: counted and kept (dead letters).
        self._reject = reject
        self._source = source
        self._officers = officers
        self._clock = clock
        self._reply = reply

    def handle(self, payload: bytes) -> None:
        """Run one command message; never raises."""
        request_id = ""
        try:
            command = Command.model_validate_json(payload)
        except ValidationError as exc:
            errors = [f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()
                      if e["loc"] != ("token",) or e["type"] != "missing"] or ["token: missing"]
            # A field name may itself be a token (`{"<token>": ...}`): the reply and the
            # dead letter get only what no officer's token is in.
            reason = redact_text("; ".join(errors), self._is_token)
            self._answer(redact_text(_request_id(payload), self._is_token), error=reason)
            if self._reject is not None:
                self._reject(self._source, "malformed command: " + reason[:500],
                             redact_payload(payload, self._is_token), self._clock.now_ns())
            return
        request_id = command.id
        officer = self._officers.identify(command.token.get_secret_value())
        if officer is None:
            log.warning("MQTT command %r refused: unknown officer token", command.action)
            self._answer(request_id, error="unknown officer token")
            return
        # After the token: one who holds none cannot fill the nonce memory.
        refusal = self._guard.refusal(command.nonce, int(command.sent_at.timestamp() * _NS),
                                      self._clock.now_ns())
        if refusal is not None:
            self._log_refusal(command.action, officer, refusal)
            self._answer(request_id, error=refusal)
            return
        try:
            require(self._officers.role(officer), command.action, officer)
            result = self._run(command, officer)
        except LifecycleError as exc:
            self._answer(request_id, error=str(exc))
            return
        self._answer(request_id, result=result)

    def _log_refusal(self, action: str, officer: str, refusal: str) -> None:
        # A replay flood is logged once a minute, with how many more there were.
        now = time.monotonic()
        if now - self._refusals_logged_at < 60.0:
            self._refusals_unlogged += 1
            return
        more, self._refusals_unlogged = self._refusals_unlogged, 0
        log.warning("MQTT command %r of %s refused: %s%s", action, officer, refusal,
                    f" ({more} more refused since the last report)" if more else "")
        self._refusals_logged_at = now

    def _is_token(self, word: str) -> bool:
        return self._officers.identify(word) is not None

    def _run(self, command: Command, officer: str) -> dict[str, Any]:
        now = self._clock.now_ns()
        if command.action in ("arm", "disarm", "walk_test"):
            if not command.storehouse or self._arming is None:
                raise LifecycleError(f"{command.action} needs `storehouse`")
            return self._arming.request(command.storehouse, command.action, officer, "mqtt",
                                        force=command.force, note=command.note)
        if command.action in ("ack", "check"):
            if not command.key:
                raise LifecycleError(f"{command.action} needs `key`")
            if command.action == "ack":
                return self._desk.acknowledge(command.key, officer, command.note, now).to_dict()
            if command.finding is None:
                raise LifecycleError("check needs `finding` (intrusion, fault, false_alarm)")
            return self._desk.record_check(command.key, officer, command.finding,
                                           command.note, now).to_dict()
        if command.action == "silence":
            if command.for_s is None:
                raise LifecycleError("silence needs `for_s`")
            return self._desk.add_silence(command.matchers, officer, command.reason,
                                          now + int(command.for_s * _NS), now).to_dict()
        if not command.silence_id:
            raise LifecycleError(f"{command.action} needs `silence_id`")
        if command.action == "approve":
            return self._desk.approve_silence(command.silence_id, officer, now).to_dict()
        return self._desk.expire_silence(command.silence_id, officer, now).to_dict()

    def _answer(self, request_id: str, *, result: dict[str, Any] | None = None,
                error: str | None = None) -> None:
        body = {"id": request_id, "ok": error is None,
                **({"result": result} if result is not None else {"error": error})}
        self._reply(json.dumps(body).encode())


def _request_id(payload: bytes) -> str:
    # A malformed command's reply still names it, when its `id` can be read.
    try:
        doc = json.loads(payload)
    except ValueError:
        return ""
    found = doc.get("id") if isinstance(doc, dict) else None
    return found[:64] if isinstance(found, str) else ""
