"""The console's records pages in a real browser against the real daemon (issue 19): a badge
revoked in the console is refused at its door within 2 s, with no console logout; a movement
order issued and approved in the console; a phone-sized page."""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from inprocess_daemon import Running, eventually, running
from playwright.sync_api import Browser, Page, expect, sync_playwright
from servers import Mosquitto
from test_living_records import (
    CLERK_TOKEN,
    DUTY_TOKEN,
    PISTOL,
    RIFLE,
    SECOND_TOKEN,
    alarm_keys,
    carry_out,
    settings,
)

from daemon.book.entries import RosterEntry

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


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
def live(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Running]:
    with running(settings(tmp_path, mosquitto.port)) as daemon:
        yield daemon


def log_in(page: Page, url: str, token: str, to: str = "/records") -> None:
    page.goto(url + to)
    page.fill("input[name=token]", token)
    page.click("button[type=submit]")
    expect(page).to_have_url(url + to)


def test_a_badge_revoked_in_the_console_is_refused_within_2_s_and_nobody_is_logged_out(
        browser: Browser, live: Running) -> None:
    duty = browser.new_page()
    log_in(duty, live.url, DUTY_TOKEN, "/alerts")
    # A phone: the roster reads in one column, the revoke button within reach.
    clerk = browser.new_page(viewport={"width": 375, "height": 740})
    log_in(clerk, live.url, CLERK_TOKEN)
    person = clerk.locator('section[data-person="Pvt. Ash"]')
    expect(person).to_contain_text("SH1")
    # The duty operator sees the roster but may not change it: no buttons.
    duty.goto(live.url + "/records")
    expect(duty.locator('section[data-person="Pvt. Ash"] form.revoke')).to_have_count(0)
    person.locator("form.revoke button").click()
    revoked = time.monotonic()
    expect(person.locator(".person-state")).to_have_text("revoked")
    live.publish("badge/reader1", {"card": "1001"})
    eventually(lambda: any(k.endswith(".D1") for k in alarm_keys(live)), 2.0)
    assert time.monotonic() - revoked < 2.5
    # A records change reloads no officer: the duty officer's console still works.
    duty.goto(live.url + "/alerts")
    expect(duty).to_have_url(live.url + "/alerts")
    expect(duty.locator("#officer")).to_be_visible()
    box = clerk.locator("form.add button").bounding_box()
    assert box is not None and box["x"] + box["width"] <= 375
    # The auditors' export, from the same session: the revocation with who did it.
    with clerk.expect_download() as fetched:
        clerk.locator('form.export button:text("roster-history")').click()
    history = Path(fetched.value.path()).read_text()
    assert "roster,Pvt. Ash,2,Cpl. Reyes" in history and "revoked" in history
    assert "1001" not in history


def test_a_movement_order_issued_in_the_console_waits_for_the_second_officer(
        browser: Browser, live: Running) -> None:
    clerk = browser.new_page()
    log_in(clerk, live.url, CLERK_TOKEN, "/records/orders")
    form = clerk.locator("form.issue-movement")
    form.locator("input[name=id]").fill("MO-9")
    form.locator(f'input[name="item.{RIFLE}"]').check()
    form.locator("input[name=valid_from]").fill("2020-01-01T08:00")
    form.locator("input[name=valid_until]").fill("2099-01-01T08:00")
    form.locator("button").click()
    expect(clerk).to_have_url(live.url + "/records/orders")
    assert "MO-9" not in live.daemon.book.records.movement_orders
    second = browser.new_page()
    log_in(second, live.url, SECOND_TOKEN)
    parked = second.locator("section.parked")
    expect(parked).to_contain_text("moves weapon")
    parked.locator("form.approve button").click()
    expect(second.locator("section.parked")).to_have_count(0)
    assert "MO-9" in live.daemon.book.records.movement_orders
    carry_out(live, RIFLE)
    carry_out(live, PISTOL)
    eventually(lambda: f"portal_movement.{PISTOL}" in alarm_keys(live))
    assert f"portal_movement.{RIFLE}" not in alarm_keys(live)
    # A window in the past is refused, naming the field, and nothing is issued.
    form = clerk.locator("form.issue-movement")
    form.locator("input[name=id]").fill("MO-10")
    form.locator(f'input[name="item.{RIFLE}"]').check()
    form.locator("input[name=valid_from]").fill("2020-01-01T08:00")
    form.locator("input[name=valid_until]").fill("2020-01-02T08:00")
    form.locator("button").click()
    expect(clerk.locator("p.error")).to_contain_text("valid_until: the window is in the past")


def test_a_key_issued_and_returned_in_the_console(browser: Browser, mosquitto: Mosquitto,
                                                   tmp_path: Path) -> None:
    config = settings(tmp_path, mosquitto.port)
    config["items"].append({"epc": "4B00000000000001", "name": "Store 1 key", "kind": "key",
                            "storehouse": "SH1"})
    with running(config, connected=False) as live:
        clerk = browser.new_page(viewport={"width": 375, "height": 740})
        log_in(clerk, live.url, CLERK_TOKEN, "/records/orders")
        form = clerk.locator("form.issue-key")
        form.locator("select[name=person]").select_option("Pvt. Ash")
        form.locator("input[name=due]").fill("2099-01-01T18:00")
        form.locator("button").click()
        card = clerk.locator('section.key[data-key="4B00000000000001"]')
        expect(card).to_contain_text("Pvt. Ash")
        card.locator("form.return button").click()
        expect(clerk.locator("section.key")).to_have_count(0)
        issues = list(live.daemon.book.records.key_issues.values())
        assert [(k.person, k.state.value) for k in issues] == [("Pvt. Ash", "closed")]


def test_changing_a_persons_zones_in_the_console_keeps_their_validity(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path) -> None:
    config = settings(tmp_path, mosquitto.port)
    config["storehouses"][0]["timezone"] = "Europe/Vienna"
    config["roster"][0]["valid_until"] = "2099-06-30T17:00:00+02:00"
    with running(config, connected=False) as live:
        clerk = browser.new_page()
        log_in(clerk, live.url, CLERK_TOKEN)
        person = clerk.locator('section[data-person="Pvt. Ash"]')
        person.locator("summary").click()
        person.locator('input[name="zone.VAULT"]').check()
        person.locator("form.change button").click()
        # Vault access: parked for the second officer, the validity carried along.
        parked = live.daemon.book.store.parked()
        assert [p.reason for p in parked] == ["grants vault access (VAULT)"]
        entry = parked[0].entry
        assert isinstance(entry, RosterEntry)
        assert entry.valid_until_ns == int(dt.datetime(2099, 6, 30, 15, tzinfo=dt.UTC)
                                           .timestamp()) * 10**9
        assert entry.badge == "1001"
