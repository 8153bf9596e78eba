"""Issue 25 at the console, in real headless Chromium against an in-process daemon on the
session Mosquitto broker: the login never sends the browser elsewhere, a logout ends the
session on the server, a viewer may look but not act, wrong tokens are backed off, and the
alarm list shows every silence with its author and end."""

from __future__ import annotations

import hashlib
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from inprocess_daemon import DOOR_KEY, TOKEN, Running, depot, eventually, running
from playwright.sync_api import Browser, expect
from servers import Mosquitto
from test_console import DOOR_URL, browser, log_in

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_console

VIEWER_TOKEN = "console-viewer-token-0123456789"


@pytest.fixture
def live(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Running]:
    config = depot(tmp_path / "state", mosquitto.port)
    config["api"]["officers"].append(
        {"name": "Cpl. Vogel", "role": "viewer",
         "token_sha256": hashlib.sha256(VIEWER_TOKEN.encode()).hexdigest()})
    # A long first back-off: the wrong tokens after the fifth must come within it, and a
    # browser on a loaded machine took more than the default 1 s between two submits.
    config["api"]["guess_backoff_s"] = 20.0
    with running(config) as daemon:
        yield daemon


@pytest.mark.parametrize("hostile", ["/\\evil.example", "/\t/evil.example", "//evil.example",
                                     "/%5Cevil.example", "https://evil.example/"])
def test_login_stays_on_this_server_whatever_next_says(browser: Browser, live: Running,
                                                       hostile: str) -> None:
    page = browser.new_page()
    page.goto(f"{live.url}/console/login?next={urllib.parse.quote(hostile, safe='/')}")
    page.fill("input[name=token]", TOKEN)
    page.click("button[type=submit]")
    expect(page).to_have_url(live.url + "/alerts")
    page.close()


def test_logout_ends_the_session_on_the_server(browser: Browser, live: Running) -> None:
    context = browser.new_context()
    page = context.new_page()
    log_in(page, live.url)
    expect(page).to_have_url(live.url + "/alerts")
    stolen = [c for c in context.cookies() if c["name"] == "depotwatch_session"]
    assert stolen
    page.click("text=Log out")
    expect(page).to_have_url(live.url + "/console/login")
    # The cookie someone copied before the logout opens nothing afterwards.
    replay = browser.new_context()
    replay.add_cookies(stolen)
    again = replay.new_page()
    again.goto(live.url + "/alerts")
    expect(again).to_have_url(live.url + "/console/login?next=/alerts")
    assert again.request.get(live.url + "/console/alerts.json").status == 401
    replay.close()
    context.close()


def test_a_viewer_sees_alarms_but_may_not_acknowledge(browser: Browser, live: Running) -> None:
    live.publish("zigbee2mqtt/door1", {"contact": False})
    eventually(lambda: bool(live.daemon.desk.alarms()))
    page = browser.new_page()
    log_in(page, live.url, VIEWER_TOKEN)
    expect(page.locator("#alarm-rows")).to_contain_text("SH1-D1")
    page.goto(live.url + DOOR_URL)
    # Issue 30: a viewer is offered no action at all...
    expect(page.locator("#alarm-state")).to_have_text("firing")
    expect(page.locator("#ack-form, #check-form, #silence-form")).to_have_count(0)
    # ...and the server refuses one posted anyway, with the viewer's own valid CSRF token.
    csrf = page.locator(".logout input[name=csrf]").get_attribute("value")
    answer = page.request.post(live.url + DOOR_URL + "/ack", form={"note": "x", "csrf": csrf})
    assert answer.status == 403
    assert "Cpl. Vogel is a viewer: ack takes an operator" in answer.text()
    assert live.daemon.desk.get(DOOR_KEY).acked_by is None
    page.close()


def test_wrong_tokens_at_the_login_are_backed_off(browser: Browser, live: Running) -> None:
    page = browser.new_page()
    page.goto(live.url + "/console/login")
    statuses = []
    for i in range(8):
        page.fill("input[name=token]", f"wrong-guess-{i:04d}-0123456789")
        with page.expect_response(lambda r: r.request.method == "POST") as answer:
            page.click("button[type=submit]")
        statuses.append(answer.value.status)
    assert statuses[:5] == [401] * 5 and set(statuses[5:]) == {429}
    expect(page.locator(".error")).to_contain_text("Too many wrong tokens")
    # Refused unjudged: the block of the fifth wrong token, not grown by the refused ones.
    assert 1 <= int(answer.value.headers["retry-after"]) <= 20
    page.close()


def test_the_alarm_list_shows_each_silence_with_author_and_end(browser: Browser,
                                                                live: Running) -> None:
    live.publish("zigbee2mqtt/door1", {"contact": False})
    eventually(lambda: bool(live.daemon.desk.alarms()))
    page = browser.new_page()
    log_in(page, live.url)
    page.goto(live.url + DOOR_URL)
    page.fill("#silence-form input[name=minutes]", "30")
    page.fill("#silence-form input[name=reason]", "lock replaced")
    page.click("#silence-form button[type=submit]")
    page.goto(live.url + "/alerts")
    strip = page.locator("#silences-in-force")
    expect(strip).to_contain_text("awaiting approval, by Sgt. Novak, until")
    expect(strip).to_contain_text("rule=door_armed")
    page.close()


def test_a_session_survives_a_daemon_restart_but_not_a_logout(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path) -> None:
    """Sessions are kept in state_dir (only their ids' digests): the duty officer stays logged
    in across a restart; the file holds no session id and no token."""
    config = depot(tmp_path / "state", mosquitto.port)
    context = browser.new_context()
    with running(config) as first:
        page = context.new_page()
        log_in(page, first.url)
        expect(page).to_have_url(first.url + "/alerts")
        cookie = next(c for c in context.cookies() if c["name"] == "depotwatch_session")
        first_url = first.url
    saved = (tmp_path / "state" / "console-sessions.json")
    assert cookie["value"] not in saved.read_text() and TOKEN not in saved.read_text()
    assert saved.stat().st_mode & 0o077 == 0
    config["api"]["listen_port"] = int(first_url.rsplit(":", 1)[1])
    with running(config) as second:
        page = context.new_page()
        page.goto(second.url + "/alerts")
        expect(page).to_have_url(second.url + "/alerts")
        page.click("text=Log out")
        expect(page).to_have_url(second.url + "/console/login")
    context.close()
