"""Dual path: a webhook to HQ as primary, an Apprise URL as fallback; with HQ down an armed door
arrives by the fallback once `fallback_after_s` has run out (30 s by default: within 40 s), and
the figures say which path delivered it."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inprocess_daemon import depot, eventually, running
from servers import Mosquitto, free_port
from test_apprise import Receiver, door_alert

from daemon.config.loading import load_config
from daemon.notifiers.apprise import AppriseConfig
from daemon.notifiers.base import Outbox
from daemon.notifiers.common import Site
from daemon.notifiers.dual import DualPathNotifier
from daemon.notifiers.kinds import build_notifiers
from daemon.notifiers.webhook import WebhookConfig
from daemon.vocabulary.errors import ConfigError, NotifierError
from daemon.web.doorman import ListeningSite

SECRET = "dual-path-secret-0123456789"
SITE = Site(id="north", name="Depot North")


def _webhook(port: int) -> WebhookConfig:
    return WebhookConfig(url=f"http://127.0.0.1:{port}/hook", secret=SECRET,  # type: ignore[arg-type]
                         timeout_s=2)


def test_primary_while_it_works_fallback_after_it_failed_long_enough() -> None:
    async def scenario() -> tuple[DualPathNotifier, Outbox, Receiver, Receiver]:
        hq, phones = Receiver(), Receiver()
        async with hq.running(), phones.running():
            dual = DualPathNotifier(
                "hq", _webhook(hq.port).build(SITE, "hq-webhook"),
                AppriseConfig(url=f"json://127.0.0.1:{phones.port}/x").build(  # type: ignore[arg-type]
                    SITE, "phones"), fallback_after_s=1.0)
            outbox = Outbox(dual, retry_min_s=0.1, retry_max_s=0.3)
            task = asyncio.create_task(outbox.run())
            outbox.put(door_alert("door_armed.SH1-D1"))
            await _until(lambda: outbox.delivered == 1)
            hq.statuses.extend([503] * 1000)  # HQ's receiver fails from now on
            outbox.put(door_alert("door_armed.SH1-D2"))
            await _until(lambda: outbox.delivered == 2, 5.0)
            # The outage is old: the next alert goes by the fallback without waiting again.
            sent = time.monotonic()
            outbox.put(door_alert("door_armed.SH1-D3"))
            await _until(lambda: outbox.delivered == 3, 5.0)
            assert time.monotonic() - sent < 0.5
            hq.statuses.clear()  # HQ back: the primary is tried again after fallback_after_s
            await asyncio.sleep(1.1)
            outbox.put(door_alert("door_armed.SH1-D4"))
            await _until(lambda: outbox.delivered == 4, 5.0)
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return dual, outbox, hq, phones

    dual, outbox, _, phones = asyncio.run(scenario())
    assert [(d.key, d.path) for d in dual.deliveries] == [
        ("door_armed.SH1-D1", "hq-webhook"), ("door_armed.SH1-D2", "phones"),
        ("door_armed.SH1-D3", "phones"), ("door_armed.SH1-D4", "hq-webhook")]
    assert dual.delivered_by == {"hq-webhook": 2, "phones": 2} and outbox.delivered == 4
    assert len(phones.seen) == 2


async def _until(check: Any, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


def _yaml(tmp_path: Path, notifiers: str) -> Path:
    path = tmp_path / "depot.yaml"
    path.write_text("site: {id: north}\nstorehouses: [{id: SH1, timezone: Europe/Berlin}]\n"
                    "notifiers:\n" + notifiers)
    return path


def test_paths_are_told_only_through_their_dual_path(tmp_path: Path) -> None:
    config = load_config(_yaml(tmp_path, (
        f"  - {{type: webhook, name: hq-webhook, url: 'http://127.0.0.1:9/h', secret: {SECRET}}}\n"
        "  - {type: apprise, name: phones, url: 'json://127.0.0.1:9/x'}\n"
        "  - {type: apprise, name: other, url: 'json://127.0.0.1:9/y'}\n"
        "  - {type: dual_path, name: hq, primary: hq-webhook, fallback: phones}\n")))
    built = build_notifiers(config.notifiers, SITE)
    assert [n.name for n in built] == ["other", "hq"]
    dual = built[1]
    assert isinstance(dual, DualPathNotifier) and dual.fallback_after_s == 30.0


@pytest.mark.parametrize(("notifiers", "message"), [
    ("  - {type: dual_path, primary: a, fallback: b}\n",
     "dual_path: no notifier named a, b"),
    ("  - {type: apprise, name: a, url: 'json://h/x'}\n"
     "  - {type: dual_path, primary: a, fallback: a}\n",
     "primary and fallback must be different notifiers"),
    ("  - {type: apprise, name: a, url: 'json://h/x'}\n"
     "  - {type: dual_path, primary: a, fallback: log}\n",
     "no notifier named log"),
])
def test_dual_path_mistakes(tmp_path: Path, notifiers: str, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(_yaml(tmp_path, notifiers))
    assert message in str(error.value)


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "mosquitto") as server:
        yield server


# The daemon's dual path with a short `fallback_after_s`: what is proven end to end (the config
# builds the dual path, HQ's failures start the clock, the door goes by the fallback once it
# has run out, logged and counted) does not depend on the length. The default's 30 s is
# asserted above (test_paths_are_told_only_through_their_dual_path); with it the outbox's
# retries (0.5 s doubling, no jitter: 0.5, 1.5, 3.5, 7.5, 15.5, 31.5 s) deliver at 31.5 s,
# within the 40 s promised, as this test measured when it waited the full 30 s.
FALLBACK_S = 3.0


def test_armed_door_with_hq_down_arrives_by_the_fallback_once_it_is_due(
        tmp_path: Path, broker: Mosquitto, caplog: pytest.LogCaptureFixture) -> None:
    phones = Receiver()
    config: dict[str, Any] = depot(tmp_path / "state", broker.port)
    config["notifiers"] = [
        # HQ's receiver is down (nothing listens on its port): the uplink was cut.
        {"type": "webhook", "name": "hq-webhook", "url": f"http://127.0.0.1:{free_port()}/h",
         "secret": SECRET, "timeout_s": 2},
        {"type": "apprise", "name": "phones", "url": f"json://127.0.0.1:{phones.port}/duty"},
        {"type": "dual_path", "name": "hq", "primary": "hq-webhook", "fallback": "phones",
         "fallback_after_s": FALLBACK_S},
    ]
    with running(config) as r:
        receiving = r.call(_serve(phones))
        try:
            r.publish("zigbee2mqtt/door1", {"contact": True})
            time.sleep(0.5)
            opened = time.monotonic()
            r.publish("zigbee2mqtt/door1", {"contact": False})
            eventually(lambda: bool(phones.seen), timeout_s=FALLBACK_S + 10)
            took = time.monotonic() - opened
            # The receiver has the request before the outbox has its answer: count after it.
            outbox = next(o for o in r.daemon.outboxes if o.notifier.name == "hq")
            eventually(lambda: outbox.figures().delivered == 1, timeout_s=10)
            figures = {f.name: f for f in (o.figures() for o in r.daemon.outboxes)}
            dual = next(o.notifier for o in r.daemon.outboxes if o.notifier.name == "hq")
        finally:
            r.call(receiving.cleanup())
    body = json.loads(phones.seen[0][2])
    assert "door SH1-D1 opened while armed" in body["title"]
    assert FALLBACK_S - 1 < took < FALLBACK_S + 10  # as 29 < took < 40 for the default 30 s
    assert ("notifier hq: alert door_armed.SH1-D1 (firing) delivered by fallback phones; "
            "primary hq-webhook failing") in caplog.text
    assert isinstance(dual, DualPathNotifier) and dual.delivered_by == {"phones": 1}
    assert figures["hq"].delivered == 1
    assert "hq-webhook" not in figures and "phones" not in figures


async def _serve(receiver: Receiver) -> Any:
    from aiohttp import web

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", receiver._handle)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await ListeningSite(runner, "127.0.0.1", receiver.port).start()
    return runner


def test_uplink_down_sends_by_the_fallback_at_once() -> None:
    # HQ's receiver and the probe beyond the uplink both unreachable: no 30 s wait.
    async def scenario() -> tuple[DualPathNotifier, float]:
        phones = Receiver()
        async with phones.running():
            dual = DualPathNotifier(
                "hq", _webhook(free_port()).build(SITE, "hq-webhook"),
                AppriseConfig(url=f"json://127.0.0.1:{phones.port}/x").build(  # type: ignore[arg-type]
                    SITE, "phones"), fallback_after_s=30.0,
                uplink_probe=f"127.0.0.1:{free_port()}")
            started = time.monotonic()
            await dual.send(door_alert("door_armed.SH1-D1"))
            return dual, time.monotonic() - started

    dual, took = asyncio.run(scenario())
    assert dual.delivered_by == {"phones": 1} and took < 5.0


def test_uplink_up_waits_for_the_primary() -> None:
    # The probe answers: HQ's receiver alone is down, the outbox retries it first.
    async def scenario() -> str:
        probe = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0)
        port = probe.sockets[0].getsockname()[1]
        try:
            dual = DualPathNotifier(
                "hq", _webhook(free_port()).build(SITE, "hq-webhook"),
                AppriseConfig(url="json://127.0.0.1:9/x").build(  # type: ignore[arg-type]
                    SITE, "phones"), fallback_after_s=30.0, uplink_probe=f"127.0.0.1:{port}")
            try:
                await dual.send(door_alert("door_armed.SH1-D1"))
            except NotifierError as exc:
                return str(exc)
            return "sent"
        finally:
            probe.close()

    assert "fallback phones in 30 s" in asyncio.run(scenario())
