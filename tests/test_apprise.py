"""The Apprise notifier against a local HTTP receiver of ours (`json://` and `ntfy://` URLs
pointed at 127.0.0.1), through the Outbox."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import logging
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from aiohttp import web
from pydantic import ValidationError
from servers import free_port

from daemon.config.loading import load_config
from daemon.notifiers.apprise import AppriseConfig, AppriseNotifier
from daemon.notifiers.base import Outbox
from daemon.notifiers.common import Site, StorehouseInfo
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import ConfigError
from daemon.vocabulary.readings import Severity, TransitionKind
from daemon.web.doorman import ListeningSite

SITE = Site(id="north", name="Depot North", base_url="https://depotwatch.north.example",
            storehouses={"SH1": StorehouseInfo("Storehouse 1", ZoneInfo("Europe/Berlin"))})
STARTED_NS = int(dt.datetime(2024, 3, 2, 22, 14, 5, tzinfo=dt.UTC).timestamp()) * 10**9
PASSWORD = "ntfy-pass-5f0c9e1a77d2"


def door_alert(key: str = "door_armed.SH1-D2") -> Alert:
    return Alert(key=key, rule="door_armed", subject="door SH1-D2", severity=Severity.CRITICAL,
                 state=TransitionKind.FIRING,
                 summary="Storehouse 1: door SH1-D2 opened while armed", storehouse="SH1",
                 started_ns=STARTED_NS, changed_ns=STARTED_NS)


@dataclass
class Receiver:
    """Records every request; answers the scripted statuses first, then 200."""

    statuses: deque[int] = field(default_factory=deque)
    port: int = field(default_factory=free_port)
    seen: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    async def _handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.path, dict(request.headers), await request.read()))
        status = self.statuses.popleft() if self.statuses else 200
        return web.json_response({"ok": status == 200}, status=status)

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


async def _until(check: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def test_json_url_delivers_title_and_body() -> None:
    async def scenario() -> dict[str, Any]:
        async with Receiver().running() as receiver:
            notifier = AppriseConfig(url=f"json://127.0.0.1:{receiver.port}/alerts"
                                     ).build(SITE, "phones")  # type: ignore[arg-type]
            await notifier.send(door_alert())
            path, _, body = receiver.seen[0]
            assert path == "/alerts"
            document: dict[str, Any] = json.loads(body)
            return document

    document = asyncio.run(scenario())
    assert document["title"] == ("[CRITICAL] Depot North: Storehouse 1: door SH1-D2 opened "
                                 "while armed")
    assert "Since: 2024-03-02 23:14:05 CET" in document["message"]
    assert "Alert: door_armed.SH1-D2" in document["message"]
    assert "https://depotwatch.north.example/alerts/door_armed.SH1-D2" in document["message"]
    assert document["type"] == "failure"


def test_outbox_retries_a_5xx_through_apprise_and_counts() -> None:
    async def scenario() -> tuple[Outbox, Receiver]:
        async with Receiver(deque([503, 503])).running() as receiver:
            notifier = AppriseNotifier(AppriseConfig(
                url=f"json://127.0.0.1:{receiver.port}/x"), SITE)  # type: ignore[arg-type]
            outbox = Outbox(notifier, retry_min_s=0.05)
            task = asyncio.create_task(outbox.run())
            outbox.put(door_alert())
            await _until(lambda: outbox.delivered == 1)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return outbox, receiver

    outbox, receiver = asyncio.run(scenario())
    assert (outbox.delivered, outbox.failed, outbox.retried, outbox.backlog) == (1, 2, 2, 0)
    assert len(receiver.seen) == 3


def test_ntfy_password_from_the_environment_never_logged(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    receiver = Receiver(deque([500]))
    monkeypatch.setenv("DEPOTWATCH_NTFY_URL",
                       f"ntfy://duty:{PASSWORD}@127.0.0.1:{receiver.port}/depot-north")
    path = tmp_path / "depot.yaml"
    path.write_text("site: {id: north}\n"
                    "storehouses: [{id: SH1, timezone: Europe/Berlin}]\n"
                    "notifiers: [{type: apprise, name: phones, url: '${DEPOTWATCH_NTFY_URL}'}]\n")
    config = load_config(path)
    notifier = config.notifiers[0].build(SITE, "phones")
    assert isinstance(notifier, AppriseNotifier)
    assert PASSWORD not in repr(config) and PASSWORD not in notifier.target

    async def scenario() -> tuple[str, list[tuple[str, dict[str, str], bytes]]]:
        async with receiver.running():
            caplog.set_level(logging.DEBUG)
            outbox = Outbox(notifier, retry_min_s=0.05)
            task = asyncio.create_task(outbox.run())
            outbox.put(door_alert())
            await _until(lambda: outbox.delivered == 1)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return caplog.text, receiver.seen

    text, seen = asyncio.run(scenario())
    assert "retrying" in text
    assert PASSWORD not in text
    assert json.loads(seen[-1][2])["topic"] == "depot-north"
    assert json.loads(seen[-1][2])["title"].startswith("[CRITICAL] Depot North")
    assert "Basic" in seen[-1][1]["Authorization"]


def test_unknown_scheme_is_a_config_error_without_the_url(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        AppriseConfig(url="nosuchservice://token-abcdef@host/x")  # type: ignore[arg-type]
    assert "nosuchservice" in str(caught.value) and "token-abcdef" not in str(caught.value)
    path = tmp_path / "depot.yaml"
    path.write_text("site: {id: north}\n"
                    "notifiers:\n  - {type: apprise, url: 'foo://secret-123456@x'}\n")
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert "depot.yaml:3" in str(error.value) and "secret-123456" not in str(error.value)
