"""Webhook, Alertmanager and e-mail notifiers against real peers: an aiohttp receiver, real
Alertmanager 0.25 replicas, and an in-process aiosmtpd server with STARTTLS and AUTH."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime as dt
import email
import email.policy
import hashlib
import hmac
import ipaddress
import json
import logging
import ssl
import time
import traceback
from collections import deque
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import bcrypt
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from pydantic import ValidationError
from servers import Alertmanager, free_port, http_request

from daemon.assembly import build_notifiers
from daemon.config.loading import load_config
from daemon.config.schema import Config
from daemon.notifiers.alertmanager import AlertmanagerConfig, AlertmanagerNotifier
from daemon.notifiers.base import Outbox
from daemon.notifiers.common import Site, StorehouseInfo
from daemon.notifiers.email import EmailConfig, EmailNotifier
from daemon.notifiers.kinds import NOTIFIER_KINDS, Resender
from daemon.notifiers.webhook import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    WebhookConfig,
    WebhookNotifier,
    verify_signature,
)
from daemon.runner import Daemon
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import ConfigError, NotifierError
from daemon.vocabulary.readings import Severity, TransitionKind
from daemon.web.doorman import ListeningSite

T = TypeVar("T")

SITE = Site(id="north", name="Depot North", base_url="https://depotwatch.north.example",
            storehouses={"SH1": StorehouseInfo("Storehouse 1", ZoneInfo("Europe/Berlin"))})
WEBHOOK_SECRET = "wh-secret-0123456789-abcdef"
# 2024-03-02 22:14:05 UTC = 23:14:05 CET
STARTED_NS = int(dt.datetime(2024, 3, 2, 22, 14, 5, tzinfo=dt.UTC).timestamp()) * 10**9


def run(coro: Coroutine[Any, Any, T]) -> T:
    async def settled() -> T:
        try:
            return await coro
        finally:
            # aiosmtplib closes a TLS connection without waiting for its close_notify
            # exchange; closing the loop at once would leave the socket to the GC (a
            # ResourceWarning). A running daemon's loop finishes it by itself.
            await asyncio.sleep(0.05)

    return asyncio.run(settled())


def alert(state: TransitionKind = TransitionKind.FIRING, *, key: str = "door_armed:SH1-D2",
          started_ns: int = STARTED_NS, changed_ns: int | None = None) -> Alert:
    return Alert(
        key=key, rule="door_armed", subject="door SH1-D2", severity=Severity.CRITICAL,
        state=state, summary="Storehouse 1: door SH1-D2 opened while armed", storehouse="SH1",
        started_ns=started_ns,
        changed_ns=started_ns if changed_ns is None else changed_ns,
        facts={"door": "SH1-D2", "armed": True},
    )


def resolved(original: Alert, after_s: float = 60.0) -> Alert:
    return Alert(
        key=original.key, rule=original.rule, subject=original.subject,
        severity=original.severity, state=TransitionKind.RESOLVED,
        summary="Storehouse 1: door SH1-D2 closed", storehouse=original.storehouse,
        started_ns=original.started_ns,
        changed_ns=original.started_ns + int(after_s * 1e9), facts={"door": "SH1-D2"},
    )


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


def all_text(error: BaseException) -> str:
    """An exception as a traceback would show it, causes included."""
    return "".join(traceback.format_exception(error))


# -- an HTTP peer --------------------------------------------------------------------------


@dataclass
class Seen:
    path: str
    query: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """An aiohttp server answering with scripted statuses (then 200), recording requests."""

    statuses: deque[int] = field(default_factory=deque)
    delay_s: float = 0.0
    # Answer errors with what a careless server might echo: headers and decoded credentials.
    echo: bool = False
    port: int = field(default_factory=free_port)
    seen: list[Seen] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        self.seen.append(Seen(request.path, request.query_string, dict(request.headers), body))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        status = self.statuses.popleft() if self.statuses else 200
        text = "ok"
        if status >= 300:
            text = json.dumps({"error": "refused: bad request field 'summary'"})
            if self.echo:
                auth = request.headers.get("Authorization", "")
                decoded = ""
                if auth.startswith("Basic "):
                    decoded = base64.b64decode(auth[6:]).decode()
                text = json.dumps({"error": f"auth {auth} ({decoded}) "
                                            f"headers {dict(request.headers)} url {request.url}"})
        return web.Response(status=status, text=text, content_type="application/json")

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Receiver]:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await ListeningSite(runner, "127.0.0.1", self.port).start()
        try:
            yield self
        finally:
            await runner.cleanup()


@contextlib.asynccontextmanager
async def delivering(outbox: Outbox) -> AsyncIterator[Outbox]:
    task = asyncio.create_task(outbox.run())
    try:
        yield outbox
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


# -- the registry and the config ------------------------------------------------------------


def test_every_notifier_kind_has_a_docstring_and_a_valid_example() -> None:
    for kind in NOTIFIER_KINDS:
        assert kind.__doc__ and kind.build.__doc__
        assert kind.model_fields["type"].default
        kind.model_validate(kind.example)


def _config_file(tmp_path: Path, notifiers: str) -> Path:
    path = tmp_path / "depot.yaml"
    path.write_text("site: {id: north, name: Depot North}\n"
                    "storehouses: [{id: SH1, name: Storehouse 1, timezone: Europe/Berlin}]\n"
                    "base_url: https://depotwatch.north.example\n"
                    "notifiers:\n" + notifiers)
    return path


def test_config_builds_notifiers_with_distinct_names(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DW_TEST_HOOK_SECRET", WEBHOOK_SECRET)
    config = load_config(_config_file(tmp_path, (
        "  - {type: webhook, url: 'https://a.example/hook', secret: '${DW_TEST_HOOK_SECRET}'}\n"
        "  - {type: webhook, url: 'https://b.example/hook', secret: '${DW_TEST_HOOK_SECRET}'}\n"
        "  - {type: alertmanager, urls: ['http://am1:9093', 'http://am2:9093/']}\n"
        "  - {type: email, name: duty-mail, host: smtp.example, from_address: dw@example,\n"
        "     to: [duty@example]}\n"
    )))
    notifiers = build_notifiers(config)
    assert [n.name for n in notifiers] == ["webhook", "webhook-2", "alertmanager", "duty-mail"]
    assert [type(n) for n in notifiers] == [WebhookNotifier, WebhookNotifier,
                                            AlertmanagerNotifier, EmailNotifier]
    assert [isinstance(n, Resender) for n in notifiers] == [False, False, True, False]
    assert WEBHOOK_SECRET not in repr(config)


@pytest.mark.parametrize(("notifiers", "problem"), [
    ("  - {type: webhook, url: 'https://a.example/', secret: short}\n",
     ":5: notifiers[0].secret: secret must be at least 16 characters"),
    ("  - {type: pager, url: 'https://a.example/'}\n",
     ":5: notifiers[0]: unknown type 'pager' (known: 'webhook', 'alertmanager', 'email', "
     "'apprise', 'sms', 'dual_path')"),
    ("  - {type: alertmanager, urls: ['http://am1:9093'], resend_every: 5}\n",
     ":5: notifiers[0].resend_every: unknown key"),
    ("  - {type: alertmanager, urls: ['http://am1:9093'], bearer_token: t,\n"
     "     basic_auth: {username: u, password: p}}\n",
     ":5: notifiers[0].alertmanager: give basic_auth or bearer_token, not both"),
    ("  - {type: alertmanager, urls: ['http://am1:9093', 'http://am1:9093/']}\n",
     ":5: notifiers[0].urls: a replica URL is listed twice"),
    ("  - {type: alertmanager, urls: ['http://am1:9093'], labels: {severity: low}}\n",
     ":5: notifiers[0].labels: label 'severity' is set from the alert"),
    ("  - {type: email, host: smtp.example, security: none, username: u, password: p,\n"
     "     from_address: dw@example, to: [duty@example]}\n",
     ":5: notifiers[0].email: a password is never sent without TLS: use security starttls "
     "or tls"),
    ("  - {type: email, host: smtp.example, from_address: 'dw@example\\nBcc: x@y', to: [a@b]}\n",
     ":5: notifiers[0].from_address: String should match pattern"),
    ("  - {type: email, host: smtp.example, from_address: dw@example, to: [a@b],\n"
     "     ca_file: /nonexistent/ca.pem}\n",
     ":6: notifiers[0].ca_file: cannot load CA file '/nonexistent/ca.pem'"),
    ("  - {type: email, host: smtp.example, from_address: dw@example, to: [a@b]}\n"
     "  - {type: webhook, name: email, url: 'https://a.example/', secret: 0123456789abcdef}\n",
     ":5: notifiers: notifier name(s) used twice: email"),
    ("  - {type: webhook, name: mqtt, url: 'https://a.example/', secret: 0123456789abcdef}\n",
     ":5: notifiers: notifier name(s) used twice: mqtt"),
])
def test_notifier_config_mistakes_name_their_line(tmp_path: Path, notifiers: str,
                                                  problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config_file(tmp_path, notifiers))
    [found] = caught.value.problems
    assert found.split("depot.yaml", 1)[1].startswith(problem), found


def test_webhook_url_must_be_http() -> None:
    with pytest.raises(ValidationError):
        WebhookConfig.model_validate({"url": "ftp://a.example/", "secret": WEBHOOK_SECRET})


# -- webhook -------------------------------------------------------------------------------


def _webhook(url: str, **kwargs: Any) -> WebhookNotifier:
    return WebhookConfig.model_validate(
        {"url": url, "secret": WEBHOOK_SECRET, **kwargs}).build(SITE, "webhook")


def _check_signature(seen: Seen) -> None:
    # Computed here independently of daemon.notifiers.webhook.sign.
    timestamp = seen.headers[TIMESTAMP_HEADER]
    assert abs(int(timestamp) - time.time()) < 60
    mac = hmac.new(WEBHOOK_SECRET.encode(), f"{timestamp}.".encode() + seen.body,
                   hashlib.sha256).hexdigest()
    assert seen.headers[SIGNATURE_HEADER] == f"sha256={mac}"


def test_webhook_retries_a_5xx_and_delivers_once_signed() -> None:
    async def scenario() -> None:
        async with Receiver(deque([503])).running() as receiver:
            outbox = Outbox(_webhook(f"{receiver.url}/depot/alerts"), retry_min_s=0.05)
            async with delivering(outbox):
                outbox.put(alert())
                await outbox.drain(5.0)
            assert (outbox.delivered, outbox.failed) == (1, 1)
            assert len(receiver.seen) == 2
            first, second = receiver.seen
            assert first.body == second.body and second.path == "/depot/alerts"
            for seen in receiver.seen:
                _check_signature(seen)
            body = json.loads(second.body)
            assert body["site"] == "north" and body["site_name"] == "Depot North"
            assert body["key"] == "door_armed:SH1-D2" and body["state"] == "firing"
            assert body["severity"] == "critical" and body["facts"]["door"] == "SH1-D2"
            assert body["started_at"] == "2024-03-02T22:14:05.000+00:00"
            assert body["link"] == "https://depotwatch.north.example/alerts/door_armed%3ASH1-D2"
            assert second.headers["X-Depotwatch-Event"] == body["event_id"]

    run(scenario())


def test_webhook_signature_covers_the_timestamp() -> None:
    body, now = b'{"key":"x"}', time.time()
    notifier_sig = "sha256=" + hmac.new(WEBHOOK_SECRET.encode(), f"{int(now)}.".encode() + body,
                                        hashlib.sha256).hexdigest()
    secret = WEBHOOK_SECRET.encode()
    assert verify_signature(secret, str(int(now)), body, notifier_sig, now_s=now)
    # The same MAC with another timestamp (a replay made to look fresh) fails.
    assert not verify_signature(secret, str(int(now) + 1), body, notifier_sig, now_s=now)
    # An old request, replayed as it was, is refused.
    assert not verify_signature(secret, str(int(now)), body, notifier_sig, now_s=now + 3600)
    assert not verify_signature(secret, str(int(now)), body + b" ", notifier_sig, now_s=now)
    assert not verify_signature(secret, "not-a-number", body, notifier_sig, now_s=now)


def test_webhook_4xx_is_dropped_with_the_reason_logged(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with Receiver(deque([400])).running() as receiver:
            outbox = Outbox(_webhook(receiver.url), retry_min_s=0.05)
            async with delivering(outbox):
                outbox.put(alert())
                await outbox.drain(5.0)
            assert len(receiver.seen) == 1
            assert (outbox.delivered, outbox.failed, outbox.backlog) == (0, 1, 0)

    with caplog.at_level(logging.WARNING):
        run(scenario())
    [record] = [r for r in caplog.records if "gave up" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "door_armed:SH1-D2" in record.getMessage()
    assert "HTTP 400: refused: bad request field 'summary'" in record.getMessage()


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_webhook_retryable_statuses(status: int) -> None:
    async def scenario() -> NotifierError:
        async with Receiver(deque([status])).running() as receiver:
            with pytest.raises(NotifierError) as caught:
                await _webhook(receiver.url).send(alert())
            return caught.value

    assert run(scenario()).retryable


@pytest.mark.parametrize("status", [301, 400, 401, 403, 404, 422])
def test_webhook_final_statuses(status: int) -> None:
    async def scenario() -> NotifierError:
        async with Receiver(deque([status])).running() as receiver:
            with pytest.raises(NotifierError) as caught:
                await _webhook(receiver.url).send(alert())
            return caught.value

    assert not run(scenario()).retryable


def test_webhook_timeout_and_refused_connection_are_retryable() -> None:
    async def scenario() -> list[NotifierError]:
        errors = []
        async with Receiver(delay_s=0.5).running() as receiver:
            with pytest.raises(NotifierError) as caught:
                await _webhook(receiver.url, timeout_s=0.2).send(alert())
            errors.append(caught.value)
        with pytest.raises(NotifierError) as caught:
            await _webhook(f"http://127.0.0.1:{free_port()}/").send(alert())
        errors.append(caught.value)
        return errors

    timeout, refused = run(scenario())
    assert timeout.retryable and "no answer within 0.2 s" in str(timeout)
    assert refused.retryable and "cannot connect" in str(refused)


def test_webhook_secrets_stay_out_of_logs_and_errors(caplog: pytest.LogCaptureFixture) -> None:
    url_password = "url-pass-5ecret-xyz"

    async def scenario() -> list[NotifierError]:
        errors = []
        async with Receiver(deque([500, 401]), echo=True).running() as receiver:
            url = f"http://officer:{url_password}@127.0.0.1:{receiver.port}/hook"
            notifier = _webhook(url)
            outbox = Outbox(notifier, retry_min_s=0.01)
            async with delivering(outbox):
                outbox.put(alert())
                await outbox.drain(5.0)
            for _ in range(2):
                receiver.statuses.append(500)
                with pytest.raises(NotifierError) as caught:
                    await notifier.send(alert())
                errors.append(caught.value)
            # The URL's credentials did reach the receiver, as a header.
            assert receiver.seen[0].headers["Authorization"] == "Basic " + base64.b64encode(
                f"officer:{url_password}".encode()).decode()
        with pytest.raises(NotifierError) as caught:
            await _webhook(f"http://officer:{url_password}@127.0.0.1:{free_port()}/").send(
                alert())
        errors.append(caught.value)
        return errors

    with caplog.at_level(logging.DEBUG):
        errors = run(scenario())
    assert "HTTP 500" in str(errors[0]) and "***" in str(errors[0])
    for secret in (WEBHOOK_SECRET, url_password):
        assert secret not in caplog.text
        for error in errors:
            assert secret not in all_text(error)
    assert "gave up" in caplog.text


# -- Alertmanager ----------------------------------------------------------------------------


def _alertmanager(urls: list[str], **kwargs: Any) -> AlertmanagerNotifier:
    return AlertmanagerConfig.model_validate(
        {"urls": urls, "labels": {"team": "depot-security"}, **kwargs}).build(SITE, "am")


def _active(server: Alertmanager) -> list[dict[str, Any]]:
    status, body = http_request("GET", f"{server.url}/api/v2/alerts?active=true")
    assert status == 200, body
    found: list[dict[str, Any]] = json.loads(body)
    return [a for a in found if a["status"]["state"] == "active"]


def _notified(receiver: Receiver, key: str, status: str) -> bool:
    for seen in receiver.seen:
        message = json.loads(seen.body)
        for item in message["alerts"]:
            if item["labels"].get("key") == key and item["status"] == status:
                return True
    return False


def test_alertmanager_payload() -> None:
    notifier = _alertmanager(["http://am:9093"])
    firing = notifier.payload(alert())
    assert firing["labels"] == {
        "alertname": "door_armed", "key": "door_armed:SH1-D2", "severity": "critical",
        "site": "north", "storehouse": "SH1", "subject": "door SH1-D2", "team": "depot-security",
    }
    assert firing["annotations"]["summary"] == "Storehouse 1: door SH1-D2 opened while armed"
    assert firing["annotations"]["description"].splitlines() == [
        "Depot North: Storehouse 1: door SH1-D2 opened while armed",
        "storehouse: Storehouse 1", "since: 2024-03-02 23:14:05 CET",
        "armed: True", "door: SH1-D2",
    ]
    assert firing["startsAt"] == "2024-03-02T22:14:05.000Z" and "endsAt" not in firing
    assert firing["generatorURL"].endswith("/alerts/door_armed%3ASH1-D2")
    cleared = notifier.payload(resolved(alert(), after_s=90))
    assert cleared["endsAt"] == "2024-03-02T22:15:35.000Z"
    site_wide = notifier.payload(Alert("input_lost:mqtt", "input_lost", "mqtt", Severity.ALARM,
                                       TransitionKind.FIRING, "input mqtt lost", "", 1, 1))
    assert "storehouse" not in site_wide["labels"]


def test_alertmanager_replicas_receive_group_and_resolve() -> None:
    """Two real replicas, one down at first: delivered via the live one, the other catches up
    on the resend; the resolve reaches the webhook receiver behind Alertmanager."""

    async def scenario() -> None:
        receiver = Receiver()
        first = Alertmanager(receiver.url + "/am")
        second = Alertmanager(receiver.url + "/am")
        async with receiver.running():
            try:
                await asyncio.to_thread(first.start)
                notifier = _alertmanager([first.url, second.url + "/"])
                now_ns = time.time_ns()
                firing = alert(started_ns=now_ns)
                await notifier.send(firing)  # the second replica is down: still delivered
                assert [a["labels"]["key"] for a in _active(first)] == [firing.key]
                await eventually(lambda: _notified(receiver, firing.key, "firing"))

                await asyncio.to_thread(second.start)
                assert await notifier.resend([firing]) == 2
                [held] = _active(second)
                assert held["labels"]["alertname"] == "door_armed"
                assert held["annotations"]["summary"] == firing.summary

                await notifier.send(resolved(firing, after_s=0.001))
                await eventually(lambda: _notified(receiver, firing.key, "resolved"))
                assert _active(first) == [] and _active(second) == []
                # A stale copy of the firing alert (the book has not caught up) must not
                # re-open it, while the resolve is re-sent to replicas that may have missed it.
                assert await notifier.resend([firing]) == 2
                assert _active(first) == [] and _active(second) == []
            finally:
                await asyncio.gather(asyncio.to_thread(first.close),
                                     asyncio.to_thread(second.close))

    run(scenario())


def test_alertmanager_fails_only_when_no_replica_accepts(
        caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with Receiver(deque([400, 400, 400])).running() as bad, \
                Receiver(deque([503, 503])).running() as busy:
            final = _alertmanager([bad.url, f"http://127.0.0.1:{free_port()}"])
            notifier = _alertmanager([bad.url, busy.url])
            with pytest.raises(NotifierError) as caught:
                await notifier.send(alert())
            assert caught.value.retryable  # one replica might take it later
            assert "HTTP 400" in str(caught.value) and "HTTP 503" in str(caught.value)
            with pytest.raises(NotifierError) as caught:
                await final.send(alert())
            assert caught.value.retryable  # the unreachable one is worth another try
            only_bad = _alertmanager([bad.url])
            with pytest.raises(NotifierError) as caught:
                await only_bad.send(alert())
            assert not caught.value.retryable
            await notifier.send(alert())  # busy's next answer is 503 too, bad's is now 200
            assert [s.path for s in busy.seen] == ["/api/v2/alerts"] * 2

    with caplog.at_level(logging.WARNING):
        run(scenario())
    assert "replica missed alert door_armed:SH1-D2" in caplog.text


def test_alertmanager_keep_alive_resends_what_is_firing() -> None:
    async def scenario() -> None:
        async with Receiver().running() as receiver:
            notifier = _alertmanager([receiver.url])
            notifier.resend_interval_s = 0.05
            firing = [alert(), alert(key="tamper:SH1-T1")]
            task = asyncio.create_task(notifier.keep_alive(lambda: firing))
            try:
                await eventually(lambda: len(receiver.seen) >= 3)
            finally:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            batch = json.loads(receiver.seen[0].body)
            assert [a["labels"]["key"] for a in batch] == [a.key for a in firing]
            assert all("endsAt" not in a for a in batch)

    run(scenario())


class _AuthAlertmanager(Alertmanager):
    """Alertmanager behind its own basic auth (`--web.config.file`)."""

    def __init__(self, webhook_url: str, username: str, password: str) -> None:
        super().__init__(webhook_url)
        hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=4)).decode()
        self.web_config = self.dir / "web.yml"
        self.web_config.write_text(json.dumps({"basic_auth_users": {username: hashed}}))
        self._auth = "Basic " + base64.b64encode(
            f"{username}:{password}".encode()).decode()

    def _command(self) -> list[str]:
        return [*super()._command(), f"--web.config.file={self.web_config}"]

    def _is_ready(self) -> bool:
        try:
            status, _ = http_request("GET", f"{self.url}/-/ready",
                                     headers={"Authorization": self._auth}, timeout=1.0)
        except OSError:
            return False
        return status == 200


def test_alertmanager_auth_and_secrets_stay_out_of_logs(
        caplog: pytest.LogCaptureFixture) -> None:
    password, wrong, token = "am-pass-5ecret-1", "am-wrong-5ecret-2", "am-token-5ecret-3"

    async def scenario() -> list[NotifierError]:
        errors = []
        server = _AuthAlertmanager(f"http://127.0.0.1:{free_port()}/", "depotwatch", password)
        try:
            await asyncio.to_thread(server.start)
            good = _alertmanager([server.url], basic_auth={"username": "depotwatch",
                                                           "password": password})
            await good.send(alert())
            bad = _alertmanager([server.url], basic_auth={"username": "depotwatch",
                                                          "password": wrong})
            with pytest.raises(NotifierError) as caught:
                await bad.send(alert())
            assert "HTTP 401" in str(caught.value) and not caught.value.retryable
            errors.append(caught.value)
            assert await bad.resend([alert()]) == 0
        finally:
            await asyncio.to_thread(server.close)
        async with Receiver(deque([500, 500]), echo=True).running() as echo:
            bearer = _alertmanager([echo.url], bearer_token=token)
            with pytest.raises(NotifierError) as caught:
                await bearer.send(alert())
            assert echo.seen[0].headers["Authorization"] == f"Bearer {token}"
            errors.append(caught.value)
            assert await bearer.resend([alert()]) == 0
        return errors

    with caplog.at_level(logging.DEBUG):
        errors = run(scenario())
    for secret in (password, wrong, token):
        assert secret not in caplog.text
        for error in errors:
            assert secret not in all_text(error)
    assert "resend of 1 alert(s) failed" in caplog.text


# -- e-mail ----------------------------------------------------------------------------------

SMTP_USER, SMTP_PASSWORD = "depotwatch", "smtp-pass-5ecret-9"


@pytest.fixture(scope="module")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and localhost, and its key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "depotwatch test SMTP")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                       critical=False)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Mailbox:
    """aiosmtpd handler keeping every accepted message and whether it came over TLS."""

    def __init__(self) -> None:
        self.messages: list[tuple[EmailMessage, bool, list[str]]] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.content
        assert isinstance(content, bytes)
        message = email.message_from_bytes(content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        self.messages.append((message, session.ssl is not None, list(envelope.rcpt_tos)))
        return "250 OK"


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str,
                  auth_data: Any) -> AuthResult:
    ok = (isinstance(auth_data, LoginPassword) and auth_data.login == SMTP_USER.encode()
          and auth_data.password == SMTP_PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@contextlib.contextmanager
def smtp_server(tls_files: tuple[Path, Path] | None) -> Iterator[tuple[Controller, Mailbox]]:
    mailbox = Mailbox()
    kwargs: dict[str, Any] = {}
    if tls_files is not None:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(*map(str, tls_files))
        kwargs = {"tls_context": context, "require_starttls": True, "auth_required": True,
                  "authenticator": _authenticate}
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield controller, mailbox
    finally:
        controller.stop()


def _email(port: int, **kwargs: Any) -> EmailNotifier:
    settings = {"host": "127.0.0.1", "port": port, "from_address": "depotwatch@north.example",
                "to": ["duty@north.example", "deputy@north.example"], "timeout_s": 5, **kwargs}
    return EmailConfig.model_validate(settings).build(SITE, "email")


def test_email_over_starttls_with_auth(tls_files: tuple[Path, Path]) -> None:
    with smtp_server(tls_files) as (controller, mailbox):
        notifier = _email(controller.port, username=SMTP_USER, password=SMTP_PASSWORD,
                          ca_file=str(tls_files[0]))
        firing = alert()
        run(notifier.send(firing))
        run(notifier.send(resolved(firing)))
    (fired, tls, recipients), (cleared, _, _) = mailbox.messages
    assert tls and recipients == ["duty@north.example", "deputy@north.example"]
    assert fired["Subject"] == ("[CRITICAL] Depot North: Storehouse 1: door SH1-D2 opened "
                                "while armed")
    assert fired["Importance"] == "high" and fired["Auto-Submitted"] == "auto-generated"
    text = fired.get_content()
    assert "CRITICAL alert FIRING at Depot North (site north)" in text
    assert "Storehouse: Storehouse 1 (SH1)" in text
    assert "Started:    2024-03-02 23:14:05 CET" in text
    assert "  door: SH1-D2" in text and "  armed: True" in text
    assert "Acknowledge: https://depotwatch.north.example/alerts/door_armed%3ASH1-D2" in text
    assert cleared["Subject"] == "[RESOLVED critical] Depot North: Storehouse 1: door SH1-D2 closed"
    assert cleared["In-Reply-To"] == fired["Message-ID"]
    assert "Resolved:   2024-03-02 23:15:05 CET" in cleared.get_content()


def test_email_refuses_to_go_without_the_tls_it_was_told_to_use(
        tls_files: tuple[Path, Path]) -> None:
    with smtp_server(None) as (plain, mailbox):
        with pytest.raises(NotifierError) as caught:
            run(_email(plain.port).send(alert()))
        assert not caught.value.retryable and "not supported" in str(caught.value)
        run(_email(plain.port, security="none").send(alert()))
        assert len(mailbox.messages) == 1 and not mailbox.messages[0][1]
    with smtp_server(tls_files) as (controller, _):
        # The system trust store does not know the test certificate.
        with pytest.raises(NotifierError) as caught:
            run(_email(controller.port, username=SMTP_USER, password=SMTP_PASSWORD).send(
                alert()))
        assert caught.value.retryable and "TLS" in str(caught.value)
    with pytest.raises(NotifierError) as caught:
        run(_email(free_port()).send(alert()))
    assert caught.value.retryable


def test_email_secrets_stay_out_of_logs(tls_files: tuple[Path, Path],
                                        caplog: pytest.LogCaptureFixture) -> None:
    wrong = "smtp-wrong-5ecret-8"
    errors = []
    with caplog.at_level(logging.DEBUG), smtp_server(tls_files) as (controller, mailbox):
        for password in (wrong, SMTP_PASSWORD):
            notifier = _email(controller.port, username=SMTP_USER, password=password,
                              ca_file=str(tls_files[0]))
            outbox = Outbox(notifier, retry_min_s=0.01)

            async def deliver(outbox: Outbox = outbox) -> None:
                async with delivering(outbox):
                    outbox.put(alert())
                    await outbox.drain(5.0)

            run(deliver())
        with pytest.raises(NotifierError) as caught:
            run(_email(controller.port, username=SMTP_USER, password=wrong,
                       ca_file=str(tls_files[0])).send(alert()))
        errors.append(caught.value)
        assert "login refused: 535" in str(caught.value) and not caught.value.retryable
        assert len(mailbox.messages) == 1
    with pytest.raises(NotifierError) as caught:
        run(_email(free_port(), username=SMTP_USER, password=wrong).send(alert()))
    errors.append(caught.value)
    for secret in (wrong, SMTP_PASSWORD):
        assert secret not in caplog.text
        for error in errors:
            assert secret not in all_text(error)
    assert "gave up on alert door_armed:SH1-D2" in caplog.text


def test_config_drives_the_site_seen_by_notifiers(tmp_path: Path) -> None:
    config = load_config(_config_file(
        tmp_path, "  - {type: alertmanager, urls: ['http://am1:9093']}\n"))
    assert isinstance(config, Config)
    [notifier] = build_notifiers(config)
    assert isinstance(notifier, AlertmanagerNotifier)
    payload = notifier.payload(alert())
    assert payload["generatorURL"] == ("https://depotwatch.north.example/alerts/"
                                       "door_armed%3ASH1-D2")
    assert "since: 2024-03-02 23:14:05 CET" in payload["annotations"]["description"]



def test_daemon_keeps_firing_alerts_alive_in_alertmanager(tmp_path: Path) -> None:
    """The runner wiring: an alert that fires in the daemon reaches Alertmanager and is sent
    again every `resend_interval_s` while it stays active."""

    def posts(receiver: Receiver) -> list[dict[str, Any]]:
        return [item for seen in receiver.seen for item in json.loads(seen.body)
                if item["labels"].get("subject") == "serial-test"]

    async def scenario() -> None:
        async with Receiver().running() as receiver:
            config = Config.model_validate({
                "site": {"id": "north", "name": "Depot North"}, "state_dir": str(tmp_path),
                "storehouses": [{"id": "SH1"}],
                "mqtt": {"port": free_port()},  # no broker: the alert path does not need one
                "rules": [{"type": "input_lost", "after_s": 0}],
                "notifiers": [{"type": "alertmanager", "urls": [receiver.url],
                               "resend_interval_s": 1}],
                "api": {"listen_port": 0},  # 8470 may be another run's daemon
            })
            daemon = Daemon(config, tick_interval_s=0.05)
            assert [r.name for r in daemon.resenders] == ["alertmanager"]
            assert "alertmanager" in [o.notifier.name for o in daemon.outboxes]
            stop = asyncio.Event()
            task = asyncio.create_task(daemon.run(stop))
            try:
                await asyncio.sleep(0.2)
                daemon.pipeline.input_state("serial-test", False, time.time_ns())
                await eventually(lambda: len(posts(receiver)) >= 2, timeout_s=5)
            finally:
                stop.set()
                await asyncio.wait_for(task, 10)
            first = posts(receiver)[0]
            assert first["labels"]["alertname"] == "input_lost"
            assert first["labels"]["site"] == "north" and "endsAt" not in first

    run(scenario())
