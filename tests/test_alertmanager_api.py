"""The Alertmanager v2 API, driven by the real `amtool` (Debian's prometheus-alertmanager) against
a real aiohttp server over a real AlarmDesk; its matchers tested directly and with hypothesis."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.alerts.desk import AlarmDesk
from daemon.alerts.matchers import Matcher, parse_matcher
from daemon.alerts.officers import hash_token
from daemon.alerts.roles import Role
from daemon.alerts.settings import AlertingConfig
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.clock import SystemClock
from daemon.vocabulary.readings import Severity, TransitionKind
from daemon.web.api import ApiServer, build_api, serve

ALICE, VERA = "alice-token-0123456789abcdef", "vera-token-0123456789abcdef"
OFFICERS = {hash_token(ALICE): "alice", hash_token(VERA): "vera"}
ROLES = {"vera": Role.VIEWER}
AMTOOL = shutil.which("amtool")


def _fire(desk: AlarmDesk, rule: str, subject: str, severity: Severity) -> None:
    now = time.time_ns()
    desk.condition(Alert(key=f"{rule}.{subject}", rule=rule, subject=subject, severity=severity,
                         state=TransitionKind.FIRING, summary=f"{rule} on {subject}",
                         storehouse="SH1", started_ns=now, changed_ns=now,
                         facts={"door": subject}), now)


Scenario = Callable[[AlarmDesk, ApiServer, Path], Awaitable[None]]


def _with_api(tmp_path: Path, scenario: Scenario) -> None:
    async def main() -> None:
        desk = AlarmDesk(AlertingConfig(), lambda alert, targets: None, rule_severities={
            "door_armed": Severity.CRITICAL, "humidity_high": Severity.WARNING})
        _fire(desk, "door_armed", "SH1-D2", Severity.CRITICAL)
        _fire(desk, "humidity_high", "SH1-C1", Severity.WARNING)
        app = build_api(desk, OFFICERS, SystemClock(), roles=ROLES)
        async with serve(app, "127.0.0.1", 0) as server:
            await scenario(desk, server, tmp_path)
    asyncio.run(main())


async def amtool(server: ApiServer, home: Path, token: str, *args: str) -> tuple[int, str]:
    """The real amtool with the officer's token in its --http.config.file: exit status, and
    stdout, or stdout and stderr when it failed (stderr also warns of differing versions)."""
    config = home / f"http-{token[:5]}.yml"
    config.write_text(f"authorization:\n  type: Bearer\n  credentials: {token}\n")
    process = await asyncio.create_subprocess_exec(
        str(AMTOOL), f"--alertmanager.url={server.url}", f"--http.config.file={config}",
        *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(process.communicate(), 30)
    code = process.returncode or 0
    return code, out.decode() + (err.decode() if code else "")


needs_amtool = pytest.mark.skipif(AMTOOL is None, reason="amtool (prometheus-alertmanager) "
                                   "not installed")


@needs_amtool
def test_amtool_lists_alarms_adds_a_silence_and_expires_it(tmp_path: Path) -> None:
    async def scenario(desk: AlarmDesk, server: ApiServer, home: Path) -> None:
        code, out = await amtool(server, home, ALICE, "alert", "query", "-o", "json")
        assert code == 0, out
        names = sorted(a["labels"]["alertname"] for a in json.loads(out))
        assert names == ["door_armed", "humidity_high"]
        code, out = await amtool(server, home, ALICE, "alert", "query", "severity=~warn.*")
        assert code == 0 and "humidity_high" in out and "door_armed" not in out, out

        code, out = await amtool(server, home, ALICE, "silence", "add", "alertname=humidity_high",
                                 "storehouse=SH1", "--duration=2h", "--comment=dehumidifier "
                                 "serviced", "--author=someone-else")
        assert code == 0, out
        silence_id = out.strip()
        [made] = desk.silences()
        assert made.id == silence_id and made.author == "alice"  # the token's, not --author
        assert made.matchers == {"rule": "humidity_high", "storehouse": "SH1"}
        assert desk.get("humidity_high.SH1-C1").silenced_by == silence_id
        code, out = await amtool(server, home, ALICE, "silence", "query", "-o", "json")
        assert code == 0 and json.loads(out)[0]["status"]["state"] == "active", out
        code, out = await amtool(server, home, ALICE, "alert", "query")
        assert "humidity_high" not in out  # amtool hides silenced alerts by default

        code, out = await amtool(server, home, ALICE, "silence", "expire", silence_id)
        assert code == 0, out
        assert desk.silences()[0].expired_ns is not None
        assert desk.get("humidity_high.SH1-C1").silenced_by is None
        code, out = await amtool(server, home, ALICE, "silence", "query", "-q")
        assert code == 0 and out.strip() == ""  # only active silences by default
    _with_api(tmp_path, scenario)


@needs_amtool
def test_amtool_is_told_why_a_silence_needs_a_second_officer(tmp_path: Path) -> None:
    async def scenario(desk: AlarmDesk, server: ApiServer, home: Path) -> None:
        code, out = await amtool(server, home, ALICE, "silence", "add", "alertname=door_armed",
                                 "--duration=1h", "--comment=lock replaced")
        assert code != 0
        assert "needs a second officer's approval (it may mute critical alarms)" in out
        code, out = await amtool(server, home, ALICE, "silence", "add", "alertname=~hum.*",
                                 "--duration=1h", "--comment=x")
        assert code != 0 and "only = matchers make a silence here" in out
        code, out = await amtool(server, home, ALICE, "silence", "add",
                                 "alertname=humidity_high", "--duration=48h", "--comment=x")
        assert code != 0 and "longer than the 24 h one officer may silence" in out
        # A viewer may list but not silence; a wrong token gets nothing.
        code, out = await amtool(server, home, VERA, "alert", "query")
        assert code == 0 and "door_armed" in out
        code, out = await amtool(server, home, VERA, "silence", "add", "alertname=humidity_high",
                                 "--duration=1h", "--comment=x")
        assert code != 0
        code, out = await amtool(server, home, "wrong-token-0123456789", "alert", "query")
        assert code != 0 and "door_armed" not in out
        assert desk.silences() == []
    _with_api(tmp_path, scenario)


def test_v2_status_alerts_and_refusals_over_http(tmp_path: Path) -> None:
    async def scenario(desk: AlarmDesk, server: ApiServer, home: Path) -> None:
        auth = {"Authorization": f"Bearer {ALICE}"}
        async with aiohttp.ClientSession(headers=auth) as session:
            async with session.get(f"{server.url}/api/v2/status") as response:
                assert response.status == 200
                assert (await response.json())["cluster"]["status"] == "disabled"
            async with session.get(f"{server.url}/api/v2/alerts",
                                   params=[("filter", 'door!="SH1-D2"')]) as response:
                [alert] = await response.json()
                assert alert["labels"] == {"alertname": "humidity_high", "severity": "warning",
                                           "storehouse": "SH1", "subject": "SH1-C1",
                                           "door": "SH1-C1"}
                assert alert["annotations"]["alert_key"] == "humidity_high.SH1-C1"
            async with session.get(f"{server.url}/api/v2/alerts",
                                   params={"filter": "door=~["}) as response:
                assert response.status == 400
                assert "not a regular expression" in await response.json()
            async with session.delete(f"{server.url}/api/v2/silence/nope") as response:
                assert response.status == 404 and await response.json() == "no silence 'nope'"
        async with aiohttp.ClientSession() as session, \
                session.get(f"{server.url}/api/v2/alerts") as response:
            assert response.status == 401
    _with_api(tmp_path, scenario)


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ('alertname="door_armed"', {"alertname": "door_armed"}, True),
    ("alertname!=door_armed", {"alertname": "door_armed"}, False),
    ('door=~"SH1-.*"', {"door": "SH1-D2"}, True),
    ('door=~"SH1"', {"door": "SH1-D2"}, False),  # anchored, as Alertmanager's are
    ("door!~SH2.*", {"door": "SH1-D2"}, True),
    ("missing=", {}, True),  # a label the alarm lacks is ""
    (r'summary="a \"quoted\" word"', {"summary": 'a "quoted" word'}, True),
])
def test_matchers_follow_alertmanager(text: str, labels: dict[str, str], expected: bool) -> None:
    assert parse_matcher(text).matches(labels) is expected


@given(name=st.from_regex(r"[a-z_][a-z0-9_]{0,10}", fullmatch=True),
       value=st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs")), max_size=20),
       operator=st.sampled_from(["=", "!="]))
def test_a_quoted_matcher_reads_back_what_was_written(name: str, value: str,
                                                     operator: str) -> None:
    quoted = '"' + re.sub(r'(["\\])', r"\\\1", value) + '"'
    matcher = parse_matcher(f"{name}{operator}{quoted}")
    assert matcher == Matcher(name, value, is_regex=False, is_equal=operator == "=")
    assert matcher.operator == operator
    assert matcher.matches({name: value}) is (operator == "=")
