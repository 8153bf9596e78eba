"""The duty officer's web console in real headless Chromium (Debian's, driven by Playwright),
against an in-process daemon on the session Mosquitto broker: an alarm raised by a real
Zigbee2MQTT reading is seen, acknowledged and checked through the page."""

from __future__ import annotations

import hashlib
import json
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from inprocess_daemon import DOOR_KEY, OFFICER, TOKEN, Running, depot, eventually, running
from playwright.sync_api import Browser, Page, expect, sync_playwright
from servers import Mosquitto

from daemon.config.schema import Config
from daemon.vocabulary.readings import Reading
from daemon.web.recent import RecentEvents

NS = 1_000_000_000

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
    row = page.locator(f'article[data-key="{DOOR_KEY}"]')
    expect(row).to_be_visible(timeout=10_000)
    expect(row).to_contain_text("critical")
    expect(row).to_contain_text("Store 1")
    expect(row.locator(".state")).to_have_text("firing")

    row.locator("h3 a").click()
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

    # Issue 30: no finding is preset, and the one chosen is read back before it is recorded.
    page.check("#check-form input[name=finding][value=false_alarm]")
    page.fill("#check-form textarea[name=note]", "contact loose, fixed")
    page.click("#check-form button")
    expect(page.locator("#confirm-finding")).to_have_text("false alarm")
    assert live.daemon.desk.get(DOOR_KEY).finding is None
    page.click("#confirm-form button")
    expect(page.locator("#alarm-state")).to_have_text("cleared")
    expect(page.locator("#finding")).to_have_text("false alarm")
    actions = audit_actions(live)
    assert (OFFICER, "acknowledged", DOOR_KEY) in actions
    assert any(a[0] == OFFICER and a[2] == DOOR_KEY and "check" in a[1] for a in actions)

    page.click(".who .logout button")
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
    expect(page.locator(f'article[data-key="{DOOR_KEY}"]')).to_be_visible()
    for path in ("/alerts", DOOR_URL, "/storehouses", "/silences"):
        page.goto(live.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px on a phone"
    shot = tmp_path / "console-phone.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 5000
    context.close()


SECOND_TOKEN = "console-second-officer-token-9876543210"
SECOND = "Lt. Weber"
BADGE = "4711"


def depot_with_reader(state_dir: Path, mqtt_port: int) -> dict[str, Any]:
    """The console depot plus a badge reader at SH1-D1, a roster and a second officer."""
    config = depot(state_dir, mqtt_port)
    config["doors"][0]["badge_reader"] = "reader1"
    config["roster"] = [{"name": "Sgt. Anna Berger", "badge": BADGE, "zones": ["SH1"]}]
    config["mqtt"]["subscriptions"].append(
        {"topic": "badges/{sensor}", "decoder": {"type": "json_fields",
                                                 "fields": {"badge": "card"}}})
    config["api"]["officers"].append(
        {"name": SECOND, "token_sha256": hashlib.sha256(SECOND_TOKEN.encode()).hexdigest()})
    return config


@pytest.fixture
def reader_daemon(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Running]:
    with running(depot_with_reader(tmp_path / "state", mosquitto.port)) as live:
        yield live


def test_storehouse_page_shows_door_state_and_last_events_live(
        browser: Browser, reader_daemon: Running) -> None:
    live = reader_daemon
    page = browser.new_page()
    log_in(page, live.url)
    page.click("header nav >> text=Storehouses")
    expect(page).to_have_url(live.url + "/storehouses")
    card = page.locator('section[data-storehouse="SH1"]')
    expect(card.locator("h2")).to_contain_text("Store 1")
    door = card.locator('tr[data-door="SH1-D1"] td.door-state')
    expect(door).to_have_text("unknown")

    # The page is open before anything happens: polling brings door, badge and alarm in.
    live.publish("badges/reader1", {"card": BADGE})
    live.publish("badges/reader1", {"card": "999999"})
    live.publish("zigbee2mqtt/door1", {"contact": False})
    expect(door).to_have_text("open", timeout=10_000)
    events = card.locator("ol.events")
    expect(events).to_contain_text("door SH1-D1 opened")
    expect(events).to_contain_text("badge Sgt. Anna Berger at SH1-D1: granted")
    expect(events).to_contain_text("badge unknown badge at SH1-D1: refused (unknown)")
    # Alarms in the officer's words, the rule key only in the link to the alarm's page.
    expect(events).to_contain_text("Critical alarm raised: Store 1: door SH1-D1 opened while armed")
    assert DOOR_KEY not in events.inner_text()
    live.publish("zigbee2mqtt/door1", {"contact": True})
    expect(door).to_have_text("closed", timeout=10_000)
    expect(events).to_contain_text("door SH1-D1 closed")
    expect(events).to_contain_text("(over)")
    # Badge numbers never reach the page, only roster names.
    text = page.content()
    assert BADGE not in text and "999999" not in text
    page.close()


def test_alarm_page_lists_its_audit_entries(browser: Browser, depot_daemon: Running) -> None:
    live = depot_daemon
    live.publish("zigbee2mqtt/door1", {"contact": False})
    eventually(lambda: any(a.key == DOOR_KEY for a in live.daemon.desk.alarms()))
    page = browser.new_page()
    log_in(page, live.url)
    page.goto(live.url + DOOR_URL)
    audit = page.locator("#audit")
    expect(audit.locator("tr", has_text="raised")).to_contain_text("system")
    page.fill("#ack-form textarea[name=note]", "on my way")
    page.click("#ack-form button")
    row = audit.locator("tr", has_text="acknowledged")
    expect(row).to_contain_text(OFFICER)
    expect(row).to_contain_text("note: on my way")
    # An entry written while the page is open (the condition ends) shows up by polling.
    live.publish("zigbee2mqtt/door1", {"contact": True})
    expect(audit.locator("tr", has_text="condition_ended")).to_be_visible(timeout=10_000)
    # The page shows exactly the alarm's entries from the audit log, in order.
    shown = [int(s) for s in audit.locator("tr[data-seq]").evaluate_all(
        "rows => rows.map(r => r.dataset.seq)")]
    entries = [json.loads(line) for line in
               (live.daemon.config.state_dir / "audit.jsonl").read_text().splitlines()]
    assert shown == [e["seq"] for e in entries if e["subject"] == DOOR_KEY]
    page.close()


def test_silences_are_approved_by_a_second_officer_and_expired(
        browser: Browser, reader_daemon: Running) -> None:
    live = reader_daemon
    live.publish("zigbee2mqtt/door1", {"contact": False})
    eventually(lambda: any(a.key == DOOR_KEY for a in live.daemon.desk.alarms()))
    first = browser.new_context()
    page = first.new_page()
    log_in(page, live.url)
    page.goto(live.url + DOOR_URL)
    page.fill("#silence-form input[name=reason]", "contact being replaced")
    page.click("#silence-form button")
    [silence] = live.daemon.desk.silences()
    page.click("header nav >> text=Silences")
    card = page.locator(f'section[data-silence="{silence.id}"]')
    expect(card.locator(".silence-state")).to_have_text("awaiting approval")
    # The author may not approve a silence of a critical rule: refused, visibly, nothing changes.
    card.locator("form.approve button").click()
    expect(page.locator(".error")).to_contain_text("second, different officer")
    assert live.daemon.desk.silences()[0].approved_by is None
    # Without the CSRF token the approval is refused too.
    approve = f"{live.url}/silences/{silence.id}/approve"
    assert first.request.post(approve, form={}).status == 403
    assert live.daemon.desk.silences()[0].approved_by is None

    second = browser.new_context()
    other = second.new_page()
    log_in(other, live.url, SECOND_TOKEN)
    expect(other.locator("#officer")).to_have_text(SECOND)
    other.goto(live.url + "/silences")
    theirs = other.locator(f'section[data-silence="{silence.id}"]')
    theirs.locator("form.approve button").click()
    expect(theirs.locator(".silence-state")).to_have_text("active")
    expect(theirs).to_contain_text(f"Approved by{SECOND}")
    assert live.daemon.desk.silences()[0].approved_by == SECOND
    assert live.daemon.desk.get(DOOR_KEY).silenced_by == silence.id
    # The first officer's open page learns of the approval by polling.
    expect(card.locator(".silence-state")).to_have_text("active", timeout=10_000)
    # The alarm's page shows its silence's entries in its audit trail.
    detail = first.new_page()
    detail.goto(live.url + DOOR_URL)
    expect(detail.locator("#audit tr", has_text="silence_approved")).to_contain_text(SECOND)
    expect(detail.locator("#audit tr", has_text="silence_created")).to_contain_text(OFFICER)

    theirs.locator("form.expire button").click()
    expect(theirs.locator(".silence-state")).to_have_text("expired")
    expect(theirs.locator("form")).to_have_count(0)
    assert live.daemon.desk.silences()[0].expired_ns is not None
    actions = audit_actions(live)
    assert (SECOND, "silence_approved", silence.id) in actions
    assert (SECOND, "silence_expired", silence.id) in actions
    assert (OFFICER, "silence_approved", silence.id) not in actions
    first.close()
    second.close()


def test_recent_events_are_bounded_and_hold_no_badge_numbers(tmp_path: Path) -> None:
    config = Config.model_validate(depot_with_reader(tmp_path / "state", 1883))
    recent = RecentEvents(config.depot(), keep=5)
    for second in range(30):
        recent.reading(Reading("door1", second * NS, {"open": second % 2 == 0}))
        recent.reading(Reading("door1", second * NS + 1, {"open": second % 2 == 0}))  # repeat
    recent.reading(Reading("reader1", 40 * NS, {"badge": BADGE}))
    events = recent.events("SH1")
    assert len(events) == 5 and events[0].text == "badge Sgt. Anna Berger at SH1-D1: granted"
    assert [e.text for e in events[1:3]] == ["door SH1-D1 closed", "door SH1-D1 opened"]
    [door] = recent.doors("SH1")
    assert (door.open, door.since_ns) == (False, 29 * NS)
    assert BADGE not in json.dumps(recent.as_dict())


def test_recent_events_survive_a_restart_through_the_state_file(tmp_path: Path) -> None:
    # The daemon saves the view with its engine state: after a restart the console still shows
    # the door open since when it opened, and the history, not "unknown".
    config = depot_with_reader(tmp_path / "state", 1883)
    recent = RecentEvents(Config.model_validate(config).depot())
    recent.reading(Reading("reader1", 10 * NS, {"badge": BADGE}))
    recent.reading(Reading("door1", 12 * NS, {"open": True}))
    saved = json.loads(json.dumps(recent.snapshot()))
    assert BADGE not in json.dumps(saved)
    # A door removed from the config meanwhile, and a damaged entry, are left out.
    saved["doors"]["SH9-D9"] = [True, 1]
    saved["events"]["SH1"].append(["not", "an", "event"])
    again = RecentEvents(Config.model_validate(config).depot())
    again.restore(saved)
    [door] = again.doors("SH1")
    assert (door.open, door.since_ns) == (True, 12 * NS)
    assert [e.text for e in again.events("SH1")] == [
        "door SH1-D1 opened", "badge Sgt. Anna Berger at SH1-D1: granted"]
