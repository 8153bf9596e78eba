"""Issue 25, the officers' side: where the login may send a browser, wrong tokens backed off
and logged once a minute per address, roles on the API and the MQTT command topic, and how
long one officer may silence what. The API runs as a real aiohttp server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import urllib.parse
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.alerts.alarm import LifecycleError
from daemon.alerts.commands import CommandDesk
from daemon.alerts.desk import AlarmDesk
from daemon.alerts.officers import Officers, hash_token
from daemon.alerts.roles import Role
from daemon.alerts.settings import AlertingConfig, SilenceLimits
from daemon.alerts.silences import Silences
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind
from daemon.web.api import build_api, serve
from daemon.web.console_login import local_path
from daemon.web.throttle import GuessThrottle

S = 10**9
H = 3600 * S
T0 = 1_700_000_000 * S
ALICE, BOB, VERA = "alice-token-0123456789abcdef", "bob-token-fedcba9876543210", \
    "vera-token-viewer-0123456789"
OFFICERS = {hash_token(ALICE): "alice", hash_token(BOB): "bob", hash_token(VERA): "vera"}
ROLES = {"vera": Role.VIEWER}
DOOR = "door_armed.SH1-D2"


# -- next= ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("hostile", [
    "//evil.example", "/\\evil.example", "/\t/evil.example", "/%09/evil.example",
    "/%5Cevil.example", "/%2F/evil.example", "/%252F%252Fevil.example", "https://evil.example/",
    "javascript:alert(1)", "evil.example", "", "/alerts\r\nSet-Cookie: x=1", "\\\\evil.example",
    " /alerts", "/\x7f/evil.example"])
def test_next_refuses_anything_but_a_local_path(hostile: str) -> None:
    assert local_path(hostile) == ""


@pytest.mark.parametrize("local", ["/alerts", "/alerts/door_armed.SH1-D2?x=1", "/silences",
                                   "/alerts/door_armed%2ESH1-D2"])
def test_next_keeps_a_local_path(local: str) -> None:
    assert local_path(local) == local


@given(st.text(alphabet=st.sampled_from("/\\%:.?#@ \t\n09aAfF2Cehvx"), max_size=24))
def test_whatever_next_keeps_stays_on_this_server(target: str) -> None:
    kept = local_path(target)
    if kept:
        decoded = urllib.parse.unquote(urllib.parse.unquote(urllib.parse.unquote(kept)))
        for text in (kept, decoded):
            assert text.startswith("/") and not text.startswith("//")
            assert "\\" not in text and not any(ord(c) < 0x20 for c in text)
        # How a browser resolves it against this server: the same host.
        joined = urllib.parse.urljoin("http://gw.depot:8470/console/login", kept)
        assert urllib.parse.urlsplit(joined).netloc == "gw.depot:8470"


# -- the throttle ---------------------------------------------------------------------------------

class Ticks:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_wrong_tokens_back_off_exponentially_up_to_the_cap_and_are_forgotten() -> None:
    ticks = Ticks()
    guesses = GuessThrottle(free_failures=5, base_s=1.0, max_s=30.0, forget_s=900.0, clock=ticks)
    delays = []
    for _ in range(12):
        delays.append(guesses.failed("10.0.0.9", "API"))
        ticks.now += delays[-1]
    assert delays == [0, 0, 0, 0, 1, 2, 4, 8, 16, 30, 30, 30]
    guesses.failed("10.0.0.9", "API")
    assert guesses.wait_s("10.0.0.9") == 30.0
    assert guesses.wait_s("10.0.0.10") == 0.0  # another address is not held back
    ticks.now += 901
    assert guesses.wait_s("10.0.0.9") == 0.0
    assert guesses.failed("10.0.0.9", "API") == 0.0  # forgotten after a quiet quarter hour


@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c"]), st.floats(0, 100)), max_size=60))
def test_the_back_off_never_exceeds_its_cap(tries: list[tuple[str, float]]) -> None:
    ticks = Ticks()
    guesses = GuessThrottle(max_s=30.0, clock=ticks)
    for source, pause in tries:
        ticks.now += pause
        if guesses.wait_s(source) == 0:
            assert 0 <= guesses.failed(source, "API") <= 30.0
        assert 0 <= guesses.wait_s(source) <= 30.0


def test_refusals_are_logged_once_per_address_per_minute(caplog: pytest.LogCaptureFixture) -> None:
    ticks = Ticks()
    guesses = GuessThrottle(clock=ticks)
    with caplog.at_level(logging.INFO, logger="daemon.web.throttle"):
        for _ in range(500):
            if guesses.wait_s("10.0.0.9"):
                guesses.refused_waiting("10.0.0.9", "API")
            else:
                guesses.failed("10.0.0.9", "API")
            guesses.failed("10.0.0.7", "console login")
            ticks.now += 0.2  # 100 s
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 4, lines  # two addresses, 100 s: twice each
    assert "refused 1 token(s) from 10.0.0.9" in lines[0]
    assert any("refused 300 token(s) from 10.0.0.7" in line for line in lines[2:])


# -- the API: back-off, /metrics, roles -----------------------------------------------------------

class StepClock:
    def __init__(self) -> None:
        self.now = T0

    def now_ns(self) -> int:
        return self.now


def firing(key: str, severity: Severity = Severity.CRITICAL) -> Alert:
    rule, subject = key.split(".", 1)
    return Alert(key=key, rule=rule, subject=subject, severity=severity,
                 state=TransitionKind.FIRING, summary=f"{rule} on {subject}", storehouse="SH1",
                 started_ns=T0, changed_ns=T0, facts={"door": subject})


@contextlib.asynccontextmanager
async def api_with_roles() -> AsyncIterator[tuple[AlarmDesk, str, aiohttp.ClientSession]]:
    desk = AlarmDesk(AlertingConfig(), lambda alert, targets: None)
    desk.condition(firing(DOOR), T0)

    async def render() -> bytes:
        return b"depotwatch_points_total 1\n"

    app = build_api(desk, OFFICERS, StepClock(), roles=ROLES, metrics=render)
    async with serve(app, "127.0.0.1", 0) as server, aiohttp.ClientSession() as session:
        yield desk, server.url, session


async def call(session: aiohttp.ClientSession, method: str, url: str, token: str | None,
               body: Any = None) -> tuple[int, Any, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url, json=body, headers=headers) as response:
        return response.status, await response.read(), response.headers


def test_wrong_bearer_tokens_get_429_with_retry_after_then_the_real_one_works() -> None:
    async def main() -> None:
        async with api_with_roles() as (_, url, session):
            statuses = [(await call(session, "GET", url + "/api/v1/alerts", f"guess-{i}"))[0]
                        for i in range(40)]
            assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
            status, body, headers = await call(session, "GET", url + "/api/v1/alerts", ALICE)
            # Unjudged while the address waits: the right token is refused too, for a moment.
            assert status == 429 and int(headers["Retry-After"]) >= 1
            assert "try again" in json.loads(body)["error"]
            await asyncio.sleep(float(headers["Retry-After"]))
            assert (await call(session, "GET", url + "/api/v1/alerts", ALICE))[0] == 200
    asyncio.run(main())


def test_metrics_want_any_officer_token() -> None:
    async def main() -> None:
        async with api_with_roles() as (_, url, session):
            assert (await call(session, "GET", url + "/metrics", None))[0] == 401
            assert (await call(session, "GET", url + "/metrics", "wrong-token-0000"))[0] == 401
            status, body, _ = await call(session, "GET", url + "/metrics", VERA)
            assert status == 200 and body.startswith(b"depotwatch_")
    asyncio.run(main())


def test_a_viewer_reads_but_may_not_act_and_approval_takes_another_operator() -> None:
    async def main() -> None:
        async with api_with_roles() as (desk, url, session):
            status, body, _ = await call(session, "GET", url + "/api/v1/alerts", VERA)
            assert status == 200 and json.loads(body)["alerts"][0]["key"] == DOOR
            for path, body_ in ((f"/api/v1/alerts/{DOOR}/ack", {"note": "x"}),
                                (f"/api/v1/alerts/{DOOR}/check", {"finding": "false_alarm"}),
                                ("/api/v1/silences", {"matchers": {"rule": "door_armed"},
                                                      "reason": "x", "for_s": 60})):
                status, answer, _ = await call(session, "POST", url + path, VERA, body_)
                assert status == 403, (path, answer)
                assert "vera is a viewer" in json.loads(answer)["error"]
            assert desk.get(DOOR).acked_by is None and desk.silences() == []
            status, answer, _ = await call(session, "POST", url + "/api/v1/silences", ALICE, {
                "matchers": {"rule": "door_armed", "door": "SH1-D2"}, "reason": "lock repair",
                "for_s": 3600})
            silence = json.loads(answer)
            assert status == 201 and silence["needs_approval"]
            approve = f"/api/v1/silences/{silence['id']}/approve"
            assert (await call(session, "POST", url + approve, VERA))[0] == 403
            assert (await call(session, "POST", url + approve, ALICE))[0] == 409
            status, answer, _ = await call(session, "POST", url + approve, BOB)
            assert status == 200 and json.loads(answer)["approved_by"] == "bob"
    asyncio.run(main())


def test_mqtt_commands_follow_the_officers_role() -> None:
    desk = AlarmDesk(AlertingConfig(), lambda alert, targets: None)
    desk.condition(firing(DOOR), T0)
    replies: list[dict[str, Any]] = []
    commands = CommandDesk(desk, Officers(OFFICERS, ROLES), StepClock(),
                           lambda raw: replies.append(json.loads(raw)))
    commands.handle(json.dumps({"id": "v1", "token": VERA, "action": "ack", "key": DOOR,
                                "sent_at": T0 / 1e9, "nonce": "nonce-v1-0001"}).encode())
    assert replies[-1] == {"id": "v1", "ok": False,
                           "error": "vera is a viewer: ack takes an operator"}
    assert desk.get(DOOR).acked_by is None
    commands.handle(json.dumps({"id": "a1", "token": ALICE, "action": "ack", "key": DOOR,
                                "sent_at": T0 / 1e9, "nonce": "nonce-a1-0001"}).encode())
    assert replies[-1]["ok"] and desk.get(DOOR).acked_by == "alice"


# -- how long one officer may silence -------------------------------------------------------------

SEVERITIES = {"door_armed": Severity.CRITICAL, "sensor_silent": Severity.ALARM,
              "input_lost": Severity.ALARM, "battery_low": Severity.WARNING}


def test_ten_years_of_sensor_silent_takes_a_second_officer() -> None:
    silences = Silences(SilenceLimits(), SEVERITIES)
    day = silences.add({"rule": "sensor_silent"}, "alice", "sensor replaced", T0 + 24 * H, T0, [])
    assert not day.needs_approval
    decade = silences.add({"rule": "sensor_silent"}, "alice", "never mind",
                          T0 + 10 * 365 * 24 * H, T0, [])
    assert decade.needs_approval and "24 h" in decade.approval_why
    with pytest.raises(LifecycleError, match="second, different officer"):
        silences.approve(decade.id, "alice")
    assert silences.approve(decade.id, "bob").approved_by == "bob"


def test_the_two_officer_rule_follows_the_configured_severity() -> None:
    # door_forced configured critical at this depot; door_armed configured as an alarm.
    silences = Silences(SilenceLimits(), {"door_forced": Severity.CRITICAL,
                                          "door_armed": Severity.ALARM})
    assert silences.add({"rule": "door_forced"}, "a", "x", T0 + 60 * S, T0, []).needs_approval
    assert not silences.add({"rule": "door_armed"}, "a", "x", T0 + 60 * S, T0, []).needs_approval
    # No rule matcher may mute anything: critical.
    assert silences.add({"door": "SH1-D2"}, "a", "x", T0 + 60 * S, T0, []).needs_approval


@given(rule=st.sampled_from([*sorted(SEVERITIES), "unknown_rule"]),
       hours=st.floats(0.01, 24 * 400), critical_h=st.floats(1, 48), other_h=st.floats(1, 48))
def test_needs_approval_exactly_when_critical_or_longer_than_allowed(
        rule: str, hours: float, critical_h: float, other_h: float) -> None:
    limits = SilenceLimits(max_s={"critical": critical_h * 3600, "alarm": other_h * 3600,
                                  "warning": other_h * 3600})
    length_ns = int(hours * H)
    silence = Silences(limits, SEVERITIES).add({"rule": rule}, "a", "x", T0 + length_ns, T0, [])
    severity = SEVERITIES.get(rule, Severity.CRITICAL)
    longest_ns = limits.max_s[severity.value] * S
    assert silence.needs_approval == (severity is Severity.CRITICAL or length_ns > longest_ns)
