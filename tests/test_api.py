"""The officers' HTTP API and `depotwatch alerts`: a real aiohttp server on 127.0.0.1 driving
the real AlarmDesk, called with an aiohttp client and with the CLI as a subprocess."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from daemon.alerts.alarm import AlarmState
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers, hash_token, silence_end
from daemon.alerts.settings import AlertingConfig
from daemon.config.loading import load_config
from daemon.notifiers.base import Outbox
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import ConfigError, DepotwatchError, NotifierError
from daemon.vocabulary.readings import Severity, TransitionKind
from daemon.web.api import ApiServer, build_api, serve
from daemon.web.api_routes import ROUTES

ROOT = Path(__file__).parent.parent
ALICE = "alice-token-0123456789abcdef"
BOB = "bob-token-fedcba9876543210"
OFFICERS = {hash_token(ALICE): "alice", hash_token(BOB): "bob"}
# 2024-03-02 22:14:05 UTC
T0 = int(dt.datetime(2024, 3, 2, 22, 14, 5, tzinfo=dt.UTC).timestamp()) * 10**9
S = 10**9
DOOR = "door_armed.SH1-D2"
HUMID = "humidity_high.SH1-C1"


class StepClock:
    """The API's time, moved by the test (the desk is pure: time is whatever it is given)."""

    def __init__(self, now_ns: int) -> None:
        self.now = now_ns

    def now_ns(self) -> int:
        return self.now


def condition(key: str, state: TransitionKind = TransitionKind.FIRING, *,
              severity: Severity = Severity.CRITICAL, at_ns: int = T0) -> Alert:
    rule, subject = key.split(".", 1)
    return Alert(key=key, rule=rule, subject=subject, severity=severity, state=state,
                 summary=f"Storehouse 1: {rule} on {subject}", storehouse="SH1",
                 started_ns=at_ns, changed_ns=at_ns, facts={"door": subject})


@dataclass
class Api:
    """A running API over a real AlarmDesk, and a client session."""

    desk: AlarmDesk
    clock: StepClock
    server: ApiServer
    session: aiohttp.ClientSession
    audit: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return self.server.url

    async def call(self, method: str, path: str, *, token: str | None = ALICE,
                   body: Any = None, data: bytes | None = None,
                   headers: Mapping[str, str] | None = None) -> tuple[int, Any]:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.url + path, json=body, data=data,
                                        headers=sent) as response:
            return response.status, await response.json()

    def fire(self, key: str, severity: Severity = Severity.CRITICAL) -> None:
        self.desk.condition(condition(key, severity=severity), self.clock.now)

    def end(self, key: str) -> None:
        self.desk.condition(condition(key, TransitionKind.RESOLVED), self.clock.now)


@contextlib.asynccontextmanager
async def running_api(health: Callable[[], dict[str, Any]] | None = None
                      ) -> AsyncIterator[Api]:
    audit: list[tuple[str, str, str]] = []
    desk = AlarmDesk(AlertingConfig(), lambda alert, targets: None,
                     lambda actor, action, subject, details, at_ns: audit.append(
                         (actor, action, subject)))
    clock = StepClock(T0)
    app = build_api(desk, OFFICERS, clock, health=health)
    async with serve(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as session:
        assert server.port != 0
        yield Api(desk, clock, server, session, audit)


def with_api(scenario: Callable[[Api], Coroutine[Any, Any, None]],
             health: Callable[[], dict[str, Any]] | None = None) -> None:
    async def main() -> None:
        async with running_api(health) as api:
            await asyncio.wait_for(scenario(api), 60)

    asyncio.run(main())


# -- authentication ----------------------------------------------------------------------------

GUARDED = [r for r in ROUTES if not r.public]


@pytest.mark.parametrize("route", GUARDED, ids=[r.operation for r in GUARDED])
@pytest.mark.parametrize("headers", [
    {},
    {"Authorization": "Bearer not-an-officers-token-at-all"},
    {"Authorization": f"Basic {ALICE}"},
    {"Authorization": "Bearer "},
    {"Authorization": f"Bearer {hash_token(ALICE)}"},  # the stored digest is no token
], ids=["none", "wrong", "basic", "empty", "digest"])
def test_every_api_route_needs_an_officer_token(route: Any, headers: dict[str, str],
                                                caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        path = route.path.format(key=DOOR, id="nosuch")
        body = {"note": "x"} if route.method == "POST" else None
        status, answer = await api.call(route.method, path, token=None, body=body,
                                        headers=headers)
        assert status == 401, answer
        assert "officer token" in answer["error"]
        assert api.desk.get(DOOR).state is AlarmState.FIRING
        assert [a for a in api.audit if a[0] != "system"] == []

    with caplog.at_level(logging.DEBUG, logger="daemon.web.api"):
        with_api(scenario)
    assert "API: refused" in caplog.text
    for secret in (ALICE, "not-an-officers-token-at-all", hash_token(ALICE)):
        assert secret not in caplog.text


def test_health_and_the_openapi_document_need_no_token() -> None:
    async def scenario(api: Api) -> None:
        assert await api.call("GET", "/healthz", token=None) == (
            200, {"status": "ok", "spool_points": 3})
        status, document = await api.call("GET", "/api/v1/openapi.json", token=None)
        assert status == 200 and document["openapi"] == "3.1.0"

    with_api(scenario, health=lambda: {"spool_points": 3})


def test_an_unhealthy_daemon_answers_503() -> None:
    async def scenario(api: Api) -> None:
        status, body = await api.call("GET", "/healthz", token=None)
        assert (status, body["status"]) == (503, "degraded")

    with_api(scenario, health=lambda: {"status": "degraded", "ticks_stale_s": 12})


def test_token_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        assert (await api.call("GET", "/api/v1/alerts"))[0] == 200
        assert (await api.call("POST", f"/api/v1/alerts/{DOOR}/ack", body={}))[0] == 200
        assert (await api.call("GET", "/api/v1/alerts", token=BOB + "x"))[0] == 401

    with caplog.at_level(logging.DEBUG):
        with_api(scenario)
    assert "alice acknowledged alarm door_armed.SH1-D2" in caplog.text
    for secret in (ALICE, BOB, BOB + "x"):
        assert secret not in caplog.text


# -- alarms -----------------------------------------------------------------------------------


def test_list_and_get_alarms() -> None:
    async def scenario(api: Api) -> None:
        api.fire(HUMID, Severity.WARNING)
        api.clock.now += 5 * S
        api.fire(DOOR)
        status, answer = await api.call("GET", "/api/v1/alerts")
        assert status == 200
        # The desk's order (most severe first) and every field of each alarm.
        assert answer == {"alerts": [api.desk.get(DOOR).to_dict(), api.desk.get(HUMID).to_dict()]}
        assert await api.call("GET", f"/api/v1/alerts/{DOOR}") == (
            200, api.desk.get(DOOR).to_dict())
        status, answer = await api.call("GET", "/api/v1/alerts/door_armed.SH9-D9")
        assert (status, answer) == (404, {"error": "no alarm 'door_armed.SH9-D9'"})
        status, answer = await api.call("GET", "/api/v1/alerts?all=yes")
        assert status == 422 and "all" in answer["error"]

    with_api(scenario)


def test_acknowledge_with_a_note() -> None:
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        api.clock.now += 90 * S
        status, alarm = await api.call("POST", f"/api/v1/alerts/{DOOR}/ack",
                                       body={"note": "  on my way, 10 min  "})
        assert status == 200
        assert (alarm["state"], alarm["acked_by"], alarm["acked_ns"], alarm["ack_note"]) == (
            "acknowledged", "alice", T0 + 90 * S, "on my way, 10 min")
        assert ("alice", "acknowledged", DOOR) in api.audit
        status, answer = await api.call("POST", f"/api/v1/alerts/{DOOR}/ack", token=BOB,
                                        body={"note": "me too"})
        assert (status, answer) == (409, {"error": f"{DOOR} was already acknowledged by alice"})
        status, answer = await api.call("POST", "/api/v1/alerts/nope.x/ack", body={})
        assert (status, answer["error"]) == (404, "no alarm 'nope.x'")
        # An empty body is an empty note.
        api.fire(HUMID, Severity.WARNING)
        status, alarm = await api.call("POST", f"/api/v1/alerts/{HUMID}/ack", data=b"")
        assert (status, alarm["ack_note"], alarm["acked_by"]) == (200, "", "alice")

    with_api(scenario)


@pytest.mark.parametrize(("path", "body", "loc"), [
    (f"/api/v1/alerts/{DOOR}/ack", {"note": 5}, ["note"]),
    (f"/api/v1/alerts/{DOOR}/ack", {"note": "x", "officer": "bob"}, ["officer"]),
    (f"/api/v1/alerts/{DOOR}/ack", {"note": "x" * 2001}, ["note"]),
    (f"/api/v1/alerts/{DOOR}/check", {"note": "ok"}, ["finding"]),
    (f"/api/v1/alerts/{DOOR}/check", {"finding": "burglary"}, ["finding"]),
    ("/api/v1/silences", {"matchers": {}, "reason": "r", "for_s": 60}, ["matchers"]),
    ("/api/v1/silences", {"matchers": {"sensor": "s1"}, "reason": "r", "for_s": 60},
     ["matchers", "sensor"]),
    ("/api/v1/silences", {"matchers": {"rule": "r"}, "reason": " ", "for_s": 60}, ["reason"]),
    ("/api/v1/silences", {"matchers": {"rule": "r"}, "reason": "r"}, []),
    ("/api/v1/silences", {"matchers": {"rule": "r"}, "reason": "r", "for_s": 60,
                          "ends_at": "2030-01-01T00:00:00Z"}, []),
    ("/api/v1/silences", {"matchers": {"rule": "r"}, "reason": "r",
                          "ends_at": "2030-01-01T00:00:00"}, ["ends_at"]),
    ("/api/v1/silences", {"matchers": {"rule": "r"}, "reason": "r", "for_s": -5}, ["for_s"]),
    ("/api/v1/silences", [1, 2], []),
])
def test_invalid_bodies_get_422_with_pydantics_errors(path: str, body: Any,
                                                      loc: list[str]) -> None:
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        status, answer = await api.call("POST", path, body=body)
        assert status == 422, answer
        assert answer["error"] == "invalid request body"
        assert [e["loc"] for e in answer["detail"]] == [loc]
        assert api.desk.get(DOOR).state is AlarmState.FIRING and api.desk.silences() == []

    with_api(scenario)


def test_malformed_json_and_huge_bodies_are_refused() -> None:
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        status, answer = await api.call("POST", f"/api/v1/alerts/{DOOR}/ack", data=b"{note:")
        assert status == 422 and answer["detail"][0]["type"] == "json_invalid"
        status, answer = await api.call("POST", f"/api/v1/alerts/{DOOR}/ack",
                                        data=b'{"note": "' + b"x" * 70_000 + b'"}')
        assert status == 413 and "error" in answer
        status, answer = await api.call("DELETE", f"/api/v1/alerts/{DOOR}")
        assert status == 405 and "error" in answer

    with_api(scenario)


def test_a_critical_alarm_clears_only_after_the_on_site_check() -> None:
    # PSSM.md "response": cleared only after an on-site check is logged, never remotely.
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        api.clock.now += 60 * S
        api.end(DOOR)
        status, alarm = await api.call("GET", f"/api/v1/alerts/{DOOR}")
        assert (alarm["state"], alarm["condition_active"]) == ("firing", False)
        api.clock.now += 600 * S
        # Issue 30: a check before the acknowledgement is refused, and changes nothing.
        status, answer = await api.call("POST", f"/api/v1/alerts/{DOOR}/check", token=BOB,
                                        body={"finding": "false_alarm", "note": "wind"})
        assert status == 409 and "not acknowledged yet" in answer["error"]
        assert (await api.call("POST", f"/api/v1/alerts/{DOOR}/ack", token=BOB,
                               body={"note": ""}))[0] == 200
        status, alarm = await api.call("POST", f"/api/v1/alerts/{DOOR}/check", token=BOB,
                                       body={"finding": "false_alarm", "note": "wind"})
        assert status == 200
        assert (alarm["state"], alarm["checked_by"], alarm["checked_ns"], alarm["finding"],
                alarm["check_note"], alarm["cleared_ns"]) == (
            "cleared", "bob", T0 + 660 * S, "false_alarm", "wind", T0 + 660 * S)
        assert ("bob", "checked", DOOR) in api.audit
        assert (await api.call("GET", "/api/v1/alerts"))[1] == {"alerts": []}
        _, everything = await api.call("GET", "/api/v1/alerts?all=1")
        assert [a["key"] for a in everything["alerts"]] == [DOOR]
        status, answer = await api.call("POST", f"/api/v1/alerts/{DOOR}/check",
                                        body={"finding": "fault"})
        assert (status, answer) == (409, {"error": f"{DOOR} is already cleared"})

    with_api(scenario)


def test_a_check_while_the_condition_lasts_keeps_the_alarm_open() -> None:
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        assert (await api.call("POST", f"/api/v1/alerts/{DOOR}/ack", body={}))[0] == 200
        status, alarm = await api.call("POST", f"/api/v1/alerts/{DOOR}/check",
                                       body={"finding": "intrusion", "note": "door pried"})
        assert (status, alarm["state"], alarm["finding"]) == (200, "acknowledged", "intrusion")
        api.clock.now += 30 * S
        api.end(DOOR)
        _, alarm = await api.call("GET", f"/api/v1/alerts/{DOOR}")
        assert (alarm["state"], alarm["cleared_ns"]) == ("cleared", T0 + 30 * S)

    with_api(scenario)


# -- silences ---------------------------------------------------------------------------------


def test_silence_create_list_expire() -> None:
    async def scenario(api: Api) -> None:
        api.fire(HUMID, Severity.WARNING)
        status, silence = await api.call("POST", "/api/v1/silences", body={
            "matchers": {"rule": "humidity_high", "storehouse": "SH1"},
            "reason": "dehumidifier serviced", "for_s": 7200})
        assert status == 201
        assert (silence["author"], silence["needs_approval"], silence["starts_ns"],
                silence["ends_ns"], silence["matchers"]) == (
            "alice", False, T0, T0 + 7200 * S, {"rule": "humidity_high", "storehouse": "SH1"})
        assert api.desk.get(HUMID).silenced_by == silence["id"]
        assert await api.call("GET", "/api/v1/silences") == (200, {"silences": [silence]})
        api.clock.now += 60 * S
        status, expired = await api.call("POST", f"/api/v1/silences/{silence['id']}/expire",
                                         token=BOB)
        assert (status, expired["expired_ns"]) == (200, T0 + 60 * S)
        assert ("bob", "silence_expired", silence["id"]) in api.audit
        assert api.desk.get(HUMID).silenced_by is None
        status, answer = await api.call("POST", f"/api/v1/silences/{silence['id']}/expire")
        assert status == 409 and "already expired" in answer["error"]
        assert (await api.call("POST", "/api/v1/silences/nosuch/expire"))[0] == 404
        # An absolute end, and one in the past (the desk refuses it).
        status, silence = await api.call("POST", "/api/v1/silences", body={
            "matchers": {"subject": "SH1-C1"}, "reason": "sensor swap",
            "ends_at": "2024-03-03T06:00:00.000123+01:00"})
        assert (status, silence["ends_ns"]) == (201, T0 + (6 * 3600 + 45 * 60 + 55) * S + 123_000)
        status, answer = await api.call("POST", "/api/v1/silences", body={
            "matchers": {"subject": "SH1-C1"}, "reason": "late", "ends_at": "2024-03-01T00:00Z"})
        assert (status, answer) == (409, {"error": "a silence must end in the future"})

    with_api(scenario)


def test_silencing_a_critical_rule_takes_a_second_officer() -> None:
    async def scenario(api: Api) -> None:
        api.fire(DOOR)
        status, silence = await api.call("POST", "/api/v1/silences", body={
            "matchers": {"rule": "door_armed", "door": "SH1-D2"},
            "reason": "lock replaced tonight", "for_s": 3600})
        assert (status, silence["needs_approval"], silence["approved_by"]) == (201, True, None)
        assert api.desk.get(DOOR).silenced_by is None  # not in force yet
        approve = f"/api/v1/silences/{silence['id']}/approve"
        status, answer = await api.call("POST", approve)
        assert (status, answer) == (
            409, {"error": "a silence of a critical rule needs a second, different officer"})
        assert (await api.call("POST", "/api/v1/silences/nosuch/approve", token=BOB))[0] == 404
        status, approved = await api.call("POST", approve, token=BOB)
        assert (status, approved["approved_by"]) == (200, "bob")
        assert ("bob", "silence_approved", silence["id"]) in api.audit
        assert api.desk.get(DOOR).silenced_by == silence["id"]
        status, answer = await api.call("POST", approve, token=BOB)
        assert status == 409 and "needs no (further) approval" in answer["error"]

    with_api(scenario)


# -- the OpenAPI document ---------------------------------------------------------------------

ROUTES_BRIEF = {
    ("GET", "/healthz"), ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/alerts"), ("GET", "/api/v1/alerts/{key}"),
    ("POST", "/api/v1/alerts/{key}/ack"), ("POST", "/api/v1/alerts/{key}/check"),
    ("GET", "/api/v1/silences"), ("POST", "/api/v1/silences"),
    ("POST", "/api/v1/silences/{id}/approve"), ("POST", "/api/v1/silences/{id}/expire"),
    ("POST", "/api/v1/storehouses/{id}/arm"), ("POST", "/api/v1/storehouses/{id}/disarm"),
    ("POST", "/api/v1/storehouses/{id}/walk-test"),
    ("GET", "/api/v1/notifiers"),
}


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [*([node["$ref"]] if "$ref" in node else []),
                *(r for v in node.values() for r in _refs(v))]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_openapi_document_describes_every_route_truthfully() -> None:
    async def scenario(api: Api) -> None:
        _, doc = await api.call("GET", "/api/v1/openapi.json", token=None)
        documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
        app = build_api(api.desk, OFFICERS, api.clock)
        # /api/v2 is Alertmanager's API, described by Alertmanager's own OpenAPI document.
        served = {(r.method, r.resource.canonical) for r in app.router.routes()
                  if r.method != "HEAD" and r.resource is not None
                  and not r.resource.canonical.startswith("/api/v2/")}
        assert documented == served == ROUTES_BRIEF
        schemas = doc["components"]["schemas"]
        for ref in _refs(doc):
            assert ref.removeprefix("#/components/schemas/") in schemas, ref
        for path, ops in doc["paths"].items():
            for method, op in ops.items():
                public = path in ("/healthz", "/api/v1/openapi.json")
                assert ("401" in op["responses"]) is not public, (method, path)
                assert (op.get("security") == []) is public
                for name in ("key", "id"):
                    if f"{{{name}}}" in path:
                        assert {"name": name, "in": "path", "required": True,
                                "schema": {"type": "string"}} in op["parameters"]
        # The schemas are those of what is served: every field of a real answer, no more.
        api.fire(DOOR)
        _, alarm = await api.call("GET", f"/api/v1/alerts/{DOOR}")
        assert set(schemas["Alarm"]["properties"]) == set(alarm)
        assert set(schemas["Alarm"]["required"]) == set(alarm)
        _, silence = await api.call("POST", "/api/v1/silences", body={
            "matchers": {"rule": "door_armed"}, "reason": "r", "for_s": 60})
        assert set(schemas["Silence"]["properties"]) == set(silence)
        assert schemas["Finding"]["enum"] == ["intrusion", "fault", "false_alarm"]
        check = doc["paths"]["/api/v1/alerts/{key}/check"]["post"]["requestBody"]
        assert check["required"] is True
        ack = doc["paths"]["/api/v1/alerts/{key}/ack"]["post"]["requestBody"]
        assert ack["required"] is False
        assert set(schemas["SilenceBody"]["properties"]) == {
            "matchers", "reason", "ends_at", "for_s"}

    with_api(scenario)


# -- serving ----------------------------------------------------------------------------------


def test_a_taken_port_is_a_depotwatch_error() -> None:
    async def scenario() -> None:
        with socket.socket() as taken:
            taken.bind(("127.0.0.1", 0))
            taken.listen()
            port = taken.getsockname()[1]
            app = build_api(AlarmDesk(AlertingConfig(), lambda a, t: None), OFFICERS,
                            StepClock(T0))
            with pytest.raises(DepotwatchError, match=f"cannot listen on 127.0.0.1:{port}"):
                async with serve(app, "127.0.0.1", port):
                    pass

    asyncio.run(scenario())


def test_officers_identify_tokens_by_digest() -> None:
    officers = Officers(OFFICERS)
    assert (officers.identify(ALICE), officers.identify(BOB)) == ("alice", "bob")
    assert officers.identify(ALICE + " ") is None and officers.identify("") is None
    assert Officers({hash_token(ALICE).upper(): "alice"}).identify(ALICE) == "alice"
    with pytest.raises(DepotwatchError, match="officer 'x': token_sha256 is not hex"):
        Officers({"zz" * 32: "x"})
    with pytest.raises(DepotwatchError, match="not 64 hex digits"):
        Officers({"ab" * 16: "x"})


@pytest.mark.parametrize(("text", "expected"), [
    ("90m", {"for_s": 5400.0}), ("2h", {"for_s": 7200.0}), ("1d", {"for_s": 86400.0}),
    ("30 s", {"for_s": 30.0}), ("1.5h", {"for_s": 5400.0}),
    ("2024-03-03T06:00Z", {"ends_at": "2024-03-03T06:00:00+00:00"}),
    ("2024-03-03T06:00+01:00", {"ends_at": "2024-03-03T06:00:00+01:00"}),
])
def test_until_takes_durations_and_zoned_times(text: str, expected: dict[str, Any]) -> None:
    assert silence_end(text) == expected


@pytest.mark.parametrize("text", ["2024-03-03T06:00", "tomorrow", "5w", ""])
def test_until_refuses_the_ambiguous(text: str) -> None:
    with pytest.raises(ValueError, match="give a duration"):
        silence_end(text)


# -- config -----------------------------------------------------------------------------------


def _config_file(tmp_path: Path, api: str) -> Path:
    path = tmp_path / "depot.yaml"
    path.write_text("site: {id: north}\nstorehouses: [{id: SH1}]\n" + api, encoding="utf-8")
    return path


def test_api_config_defaults_and_officers(tmp_path: Path) -> None:
    assert load_config(_config_file(tmp_path, "")).api.url() == "http://127.0.0.1:8470"
    config = load_config(_config_file(tmp_path, (
        "api:\n  listen_host: 0.0.0.0\n  listen_port: 9000\n  officers:\n"
        f"    - {{name: alice, token_sha256: {hash_token(ALICE).upper()}}}\n"
        f"    - {{name: bob, token_sha256: {hash_token(BOB)}}}\n")))
    assert config.api.url() == "http://127.0.0.1:9000"
    assert config.api.tokens() == OFFICERS


@pytest.mark.parametrize(("api", "problem"), [
    ("api:\n  officers:\n    - {name: alice, token_sha256: hunter2}\n",
     "depot.yaml:5: api.officers[0].token_sha256: String should match pattern "
     "'^[0-9a-fA-F]{64}$'"),
    (f"api:\n  officers:\n    - {{name: a, token_sha256: {'a' * 64}}}\n"
     f"    - {{name: a, token_sha256: {'b' * 64}}}\n",
     "depot.yaml:5: api.officers: officer name given twice: a"),
    (f"api:\n  officers:\n    - {{name: a, token_sha256: {'a' * 64}}}\n"
     f"    - {{name: b, token_sha256: {'A' * 64}}}\n",
     "depot.yaml:5: api.officers: officer token_sha256 given twice: aaaaaaaa..."),
    ("api:\n  listen_port: 70000\n",
     "depot.yaml:4: api.listen_port: Input should be less than or equal to 65535"),
    ("api:\n  token: abc\n", "depot.yaml:4: api.token: unknown key"),
])
def test_api_config_mistakes(tmp_path: Path, api: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config_file(tmp_path, api))
    assert [p.split(f"{tmp_path}/", 1)[1] for p in caught.value.problems] == [problem]


# -- the CLI against the running API ----------------------------------------------------------


async def cli(*args: str, token: str | None = ALICE, stdin: bytes = b"") -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DEPOTWATCH_TOKEN"}
    if token is not None:
        env["DEPOTWATCH_TOKEN"] = token
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "daemon.cli", *args, cwd=ROOT, env=env,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate(stdin)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


def test_cli_lists_and_acknowledges() -> None:
    async def scenario(api: Api) -> None:
        url = ["--url", api.url]
        assert await cli("alerts", "list", *url) == (0, "no open alarms\n", "")
        api.fire(HUMID, Severity.WARNING)
        api.fire(DOOR)
        code, out, err = await cli("alerts", "list", *url)
        assert (code, err) == (0, "")
        assert out.splitlines() == [
            "critical  firing        door_armed.SH1-D2  since 2024-03-02 22:14:05Z  SH1  "
            "Storehouse 1: door_armed on SH1-D2",
            "warning   firing        humidity_high.SH1-C1  since 2024-03-02 22:14:05Z  SH1  "
            "Storehouse 1: humidity_high on SH1-C1",
        ]
        api.clock.now += 120 * S
        assert await cli("alerts", "ack", DOOR, "--note", "patrol sent", *url) == (
            0, f"acknowledged {DOOR} (by alice)\n", "")
        alarm = api.desk.get(DOOR)
        assert (alarm.state, alarm.acked_by, alarm.ack_note, alarm.acked_ns) == (
            AlarmState.ACKNOWLEDGED, "alice", "patrol sent", T0 + 120 * S)
        code, out, _ = await cli("alerts", "list", *url)
        assert "[acked by alice at 2024-03-02 22:16:05Z]" in out.splitlines()[0]
        code, out, _ = await cli("alerts", "list", "--json", *url)
        assert json.loads(out) == [a.to_dict() for a in api.desk.alarms()]
        # Refusals: exit 1 with the API's reason; no token: exit 2.
        assert await cli("alerts", "ack", DOOR, *url) == (
            1, "", f"refused (409): {DOOR} was already acknowledged by alice\n")
        assert await cli("alerts", "ack", "nope.x", *url) == (
            1, "", "refused (404): no alarm 'nope.x'\n")
        assert await cli("alerts", "list", *url, token="wrong-token-0123456789") == (
            1, "", "the API refused the officer token (check DEPOTWATCH_TOKEN)\n")
        code, _, err = await cli("alerts", "list", *url, token=None)
        assert (code, err) == (2, "set DEPOTWATCH_TOKEN to your officer token\n")

    with_api(scenario)


def test_cli_checks_and_silences(tmp_path: Path) -> None:
    async def scenario(api: Api) -> None:
        # The address from the config's api section.
        config = _config_file(tmp_path, f"api: {{listen_port: {api.server.port}}}\n")
        where = ["-c", str(config)]
        api.fire(DOOR)
        api.end(DOOR)
        code, out, err = await cli("alerts", "ack", DOOR, *where, token=BOB)
        assert code == 0, err
        code, out, err = await cli("alerts", "check", DOOR, "--finding", "fault",
                                   "--note", "loose contact", *where, token=BOB)
        assert (code, out, err) == (
            0, f"recorded the on-site check of {DOOR}: fault; cleared\n", "")
        assert api.desk.get(DOOR).finding == "fault"
        code, out, err = await cli("alerts", "silence", "--rule", "door_armed", "--door",
                                   "SH1-D2", "--reason", "lock work", "--until", "2h", *where)
        assert code == 0, err
        [silence] = api.desk.silences()
        assert out.splitlines() == [
            f"{silence.id}  door=SH1-D2, rule=door_armed  by alice: lock work  "
            "(awaiting a second officer's approval)",
            f"a second officer approves it with: depotwatch alerts approve {silence.id}",
        ]
        assert await cli("alerts", "approve", silence.id, *where) == (
            1, "", "refused (409): a silence of a critical rule needs a second, different "
                   "officer\n")
        code, out, _ = await cli("alerts", "approve", silence.id, *where, token=BOB)
        assert (code, out) == (0, f"{silence.id}  door=SH1-D2, rule=door_armed  by alice: "
                                  "lock work  (until 2024-03-03 00:14:05Z, approved by bob)\n")
        code, out, _ = await cli("alerts", "expire", silence.id, *where)
        assert (code, out.endswith("(expired 2024-03-02 22:14:05Z)\n")) == (0, True)
        code, out, _ = await cli("alerts", "silences", *where)
        assert (code, out.count("\n")) == (0, 1)
        code, out, _ = await cli("alerts", "silences", "--json", *where)
        assert (code, json.loads(out)) == (0, [s.to_dict() for s in api.desk.silences()])
        code, _, err = await cli("alerts", "silence", "--reason", "x", "--until", "2h", *where)
        assert (code, err) == (1, "refused (422): invalid request body\n  matchers: Value "
                                  "error, give at least one of rule, storehouse, door, "
                                  "subject\n")
        code, _, err = await cli("alerts", "silence", "--rule", "x", "--reason", "x",
                                 "--until", "06:00", *where)
        assert code == 2 and "give a duration" in err

    with_api(scenario)


class _Refusing:
    """A notifier that takes every alert change but those of one key, which it refuses."""

    name = "hq-hook"

    async def send(self, alert: Alert) -> None:
        if alert.key == DOOR:
            raise NotifierError("422 unknown storehouse", retryable=False)


def test_notifier_counts_and_refusals_in_the_api_and_the_cli() -> None:
    """GET /api/v1/notifiers and `depotwatch alerts notifiers` show a real outbox's counts
    and its refusal with the alert key and the reason, as the OpenAPI document says."""
    async def main() -> None:
        outbox = Outbox(_Refusing())
        delivering = asyncio.create_task(outbox.run())
        outbox.put(condition(DOOR))
        outbox.put(condition(HUMID, severity=Severity.WARNING))
        await asyncio.sleep(0.2)
        desk = AlarmDesk(AlertingConfig(), lambda alert, targets: None,
                         lambda actor, action, subject, details, at_ns: None)
        app = build_api(desk, OFFICERS, StepClock(T0), notifiers=lambda: [outbox.figures()])
        async with serve(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as session:
            api = Api(desk, StepClock(T0), server, session)
            status, answer = await api.call("GET", "/api/v1/notifiers", token=BOB)
            _, doc = await api.call("GET", "/api/v1/openapi.json", token=None)
            code, out, err = await cli("alerts", "notifiers", "--url", api.url)
        delivering.cancel()
        [hook] = answer["notifiers"]
        assert status == 200
        assert {k: v for k, v in hook.items() if k != "refusals"} == {
            "name": "hq-hook", "delivered": 1, "failed": 1, "retried": 0, "refused": 1,
            "given_up": 0, "backlog": 0, "delivered_by": {}}
        assert [(r["key"], r["state"], r["reason"]) for r in hook["refusals"]] == [
            (DOOR, "firing", "422 unknown storehouse")]
        assert set(doc["components"]["schemas"]["NotifierFigures"]["properties"]) == set(hook)
        assert (code, err) == (0, "")
        assert out.splitlines()[0].split() == [
            "hq-hook", "delivered", "1", "failed", "1", "retried", "0", "refused", "1",
            "given_up", "0", "backlog", "0"]
        assert out.splitlines()[1].startswith(f"  refused {DOOR} (firing) at ")
        assert out.splitlines()[1].endswith(": 422 unknown storehouse")

    asyncio.run(main())


def test_cli_reports_an_unreachable_api() -> None:
    async def scenario() -> None:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        code, _, err = await cli("alerts", "list", "--url", f"http://127.0.0.1:{port}")
        assert code == 1
        assert err.startswith(f"cannot reach the depotwatch API at http://127.0.0.1:{port}: ")

    asyncio.run(scenario())


def test_hash_token_prints_the_configs_digest() -> None:
    async def scenario() -> None:
        assert await cli("officers", "hash-token", stdin=f"{ALICE}\n".encode()) == (
            0, hash_token(ALICE) + "\n", "")
        code, out, err = await cli("officers", "hash-token", stdin=b"short\n")
        assert (code, out) == (2, "") and "at least 16" in err

    asyncio.run(scenario())
