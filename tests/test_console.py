"""The duty officer's web console in real headless Chromium (Debian's, driven by Playwright),
against an in-process daemon on the session Mosquitto broker: an alarm raised by a real
Zigbee2MQTT reading is seen, acknowledged and checked through the page."""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path

import pytest
from inprocess_daemon import DOOR_KEY, OFFICER, TOKEN, Running, depot, eventually, running
from playwright.sync_api import Browser, Page, expect, sync_playwright
from servers import Mosquitto

CHROMIUM = "/usr/bin/chromium"
# Debian's chromium, headless, no sandbox (root in CI), nothing phoning home.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DOOR_URL = f"/alerts/{urllib.parse.quote(DOOR_KEY, safe='')}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} missing; install with: apt-get install -y chromium")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True,
                                              args=FLAGS)
        yield launched
        launched.close()


@pytest.fixture
def depot_daemon(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Running]:
    with running(depot(tmp_path / "state", mosquitto.port)) as live:
        yield live


def log_in(page: Page, url: str, token: str = TOKEN) -> None:
    page.goto(url + "/alerts")
    expect(page).to_have_url(url + "/console/login?next=/alerts")
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")


def audit_actions(live: Running) -> list[tuple[str, str, str]]:
    lines = (live.daemon.config.state_dir / "audit.jsonl").read_text().splitlines()
    entries = [json.loads(line) for line in lines]
    return [(e["actor"], e["action"], e["subject"]) for e in entries]


def test_officer_acknowledges_and_checks_an_alarm_raised_by_a_reading(
        browser: Browser, depot_daemon: Running, tmp_path: Path) -> None:
    live = depot_daemon
    page = browser.new_page()
    log_in(page, live.url)
    expect(page).to_have_url(live.url + "/alerts")
    expect(page.locator("#officer")).to_have_text(OFFICER)
    expect(page.locator("#alarm-rows")).to_contain_text("No alarms")

    # The page was loaded before the door opened: polling brings the alarm in.
    live.publish("zigbee2mqtt/door1", {"contact": False, "battery": 90})
    row = page.locator(f'tr[data-key="{DOOR_KEY}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("critical")
    expect(row).to_contain_text("SH1")
    expect(row.locator("td.state")).to_have_text("firing")

    row.locator("a").click()
    expect(page).to_have_url(live.url + DOOR_URL)
    expect(page.locator("#alarm-state")).to_have_text("firing")
    page.fill("#ack-form textarea[name=note]", "on my way, 10 min")
    page.click("#ack-form button")
    expect(page.locator("#alarm-state")).to_have_text("acknowledged")
    expect(page.locator("#ack-note")).to_have_text("on my way, 10 min")
    assert live.daemon.desk.get(DOOR_KEY).acked_by == OFFICER

    # Door shut: the condition ends, and the open page shows it without a reload.
    live.publish("zigbee2mqtt/door1", {"contact": True, "battery": 90})
    expect(page.locator("#alarm")).to_contain_text("ended", timeout=10_000)

    page.select_option("#check-form select[name=finding]", "false_alarm")
    page.fill("#check-form textarea[name=note]", "contact loose, fixed")
    page.click("#check-form button")
    expect(page.locator("#alarm-state")).to_have_text("cleared")
    expect(page.locator("#finding")).to_have_text("false_alarm")
    actions = audit_actions(live)
    assert (OFFICER, "acknowledged", DOOR_KEY) in actions
    assert any(a[0] == OFFICER and a[2] == DOOR_KEY and "check" in a[1] for a in actions)

    page.click(".who button")
    expect(page).to_have_url(live.url + "/console/login")
    page.goto(live.url + "/alerts")
    expect(page).to_have_url(live.url + "/console/login?next=/alerts")
    page.close()


def test_actions_without_csrf_token_or_session_are_refused(
        browser: Browser, depot_daemon: Running) -> None:
    live = depot_daemon
    live.publish("zigbee2mqtt/door1", {"contact": False})
    eventually(lambda: any(a.key == DOOR_KEY for a in live.daemon.desk.alarms()))
    context = browser.new_context()
    page = context.new_page()
    log_in(page, live.url)
    expect(page.locator("#officer")).to_have_text(OFFICER)
    ack = live.url + DOOR_URL + "/ack"
    # Logged in (the cookie goes along), but no CSRF token, then a wrong one.
    for form in ({"note": "forged"}, {"note": "forged", "csrf": "0" * 64}):
        assert context.request.post(ack, form=form).status == 403
    assert context.request.post(live.url + "/console/logout", form={}).status == 403
    # No session at all: a wrong token at the login, and an action with none.
    other = browser.new_page()
    other.goto(live.url + "/console/login")
    other.fill("input[name=token]", "not-an-officer-token-at-all")
    other.click("button[type=submit]")
    expect(other.locator(".error")).to_contain_text("not an officer token")
    assert other.request.post(ack, form={"note": "x", "csrf": "x"}).status == 401
    status, _ = live.get("/alerts")
    assert status == 200  # urllib follows the redirect to the login page
    alarm = live.daemon.desk.get(DOOR_KEY)
    assert alarm.acked_by is None and alarm.state == "firing"
    assert not [a for a in audit_actions(live) if a[1] == "acknowledged"]
    # With the token, the same session's silence form works (a critical rule: it waits for a
    # second officer's approval).
    page.goto(live.url + DOOR_URL)
    page.fill("#silence-form input[name=reason]", "contact being replaced")
    page.fill("#silence-form input[name=minutes]", "30")
    page.click("#silence-form button")
    expect(page).to_have_url(live.url + DOOR_URL)
    [silence] = live.daemon.desk.silences()
    assert silence.author == OFFICER and silence.matchers == {"rule": "door_armed",
                                                               "subject": "SH1-D1"}
    context.close()
    other.close()


def test_console_fits_a_phone_screen(browser: Browser, depot_daemon: Running,
                                     tmp_path: Path) -> None:
    live = depot_daemon
    live.publish("zigbee2mqtt/door1", {"contact": False})
    eventually(lambda: any(a.key == DOOR_KEY for a in live.daemon.desk.alarms()))
    context = browser.new_context(viewport={"width": 390, "height": 844},
                                  device_scale_factor=2, is_mobile=True, has_touch=True)
    page = context.new_page()
    log_in(page, live.url)
    expect(page.locator(f'tr[data-key="{DOOR_KEY}"]')).to_be_visible()
    for path in ("/alerts", DOOR_URL):
        page.goto(live.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px on a phone"
    shot = tmp_path / "console-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000
    context.close()
