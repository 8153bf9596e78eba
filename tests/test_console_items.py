"""The console's item pages in a real browser against the real daemon, at phone size (issue 27):
a consignment received from pasted lines, an item's step recorded, a destruction waiting for
and approved by a second records officer, and the item's history."""

from __future__ import annotations

from pathlib import Path

from inprocess_daemon import running
from playwright.sync_api import Browser, Page, expect
from servers import Mosquitto
from test_console_records import browser, log_in
from test_living_records import CLERK, CLERK_TOKEN, DUTY_TOKEN, SECOND, SECOND_TOKEN, settings

from daemon.web.console_items import consigned_lines
from rules.depot import ItemKind

__all__ = ["browser"]

PHONE = {"width": 375, "height": 740}
EPCS = ["E2000000000000000000D001", "E2000000000000000000D002", "E2000000000000000000D003"]


def _within(page: Page, selector: str) -> None:
    box = page.locator(selector).bounding_box()
    assert box is not None and box["x"] + box["width"] <= PHONE["width"], selector


def _receive(clerk: Page, lines: str) -> None:
    form = clerk.locator("form.receive")
    form.locator("input[name=id]").fill("C-7")
    form.locator("input[name=exporting_state]").fill("Republic of Examplia")
    form.locator("input[name=reference]").fill("EUC-77/2026")
    form.locator("textarea[name=items]").fill(lines)
    form.locator("button").click()


def test_a_step_waits_for_the_second_officer_and_shows_in_the_history(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running(settings(tmp_path, mosquitto.port), connected=False) as live:
        clerk = browser.new_page(viewport=PHONE)
        log_in(clerk, live.url, CLERK_TOKEN, "/records/consignments")
        # A bad line: nothing received, the line named, what was typed kept.
        _receive(clerk, f"{EPCS[0]} SN-1 Rifle 1\nnot-an-epc SN-2\n")
        expect(clerk.locator("p.error")).to_contain_text("items line 2")
        assert "C-7" not in live.daemon.book.records.consignments
        expect(clerk.locator("input[name=reference]")).to_have_value("EUC-77/2026")
        _receive(clerk, "\n".join(f"{e}\tSN-{n}" for n, e in enumerate(EPCS, 1)))
        card = clerk.locator('section.consignment[data-consignment="C-7"]')
        expect(card).to_contain_text("EUC-77/2026")
        expect(card.locator(".consignment-items")).to_contain_text("3: SN-1, SN-2, SN-3")
        _within(clerk, "form.receive button")
        # Pick the item and step it on: stored, one officer.
        card.locator("a", has_text="SN-1").click()
        expect(clerk.locator("#item-state")).to_have_text("received")
        step = clerk.locator("form.step")
        step.locator("select[name=state]").select_option("stored")
        step.locator("button").click()
        expect(clerk.locator("#item-state")).to_have_text("stored")
        _within(clerk, "form.step button")
        # Destroyed: its certificate, then a second officer.
        clerk.locator("form.step select[name=state]").select_option("destroyed")
        clerk.locator("form.step button").click()
        expect(clerk.locator("p.error")).to_contain_text("document")
        clerk.locator("form.step select[name=state]").select_option("destroyed")
        clerk.locator("form.step input[name=document]").fill("DC-0042")
        clerk.locator("form.step textarea[name=note]").fill("cut up at the range")
        clerk.locator("form.step button").click()
        waiting = clerk.locator("section.waiting")
        expect(waiting).to_contain_text("Waiting for a second officer: destroyed")
        expect(waiting).to_contain_text("DC-0042")
        expect(clerk.locator("#item-state")).to_have_text("stored")
        # The second officer approves it where other waiting changes are approved.
        second = browser.new_page(viewport=PHONE)
        log_in(second, live.url, SECOND_TOKEN)
        parked = second.locator("section.parked")
        expect(parked.locator(".parked-step")).to_contain_text(f"{EPCS[0]} to destroyed")
        parked.locator("form.approve button").click()
        expect(second.locator("section.parked")).to_have_count(0)
        # The history, newest first: who, who approved, on which document.
        clerk.reload()
        expect(clerk.locator("#item-state")).to_have_text("destroyed")
        expect(clerk.locator("section.waiting")).to_have_count(0)
        expect(clerk.locator("form.step")).to_have_count(0)
        steps = clerk.locator("section.step")
        expect(steps.locator(".step-state")).to_have_text(["destroyed", "stored", "received"])
        expect(steps.nth(0).locator(".step-by")).to_have_text(CLERK)
        expect(steps.nth(0).locator(".step-approved")).to_have_text(SECOND)
        expect(steps.nth(0)).to_contain_text("DC-0042")
        expect(steps.nth(2)).to_contain_text("EUC-77/2026 (consignment C-7)")
        # An operator reads the history but records no step and receives nothing.
        duty = browser.new_page(viewport=PHONE)
        log_in(duty, live.url, DUTY_TOKEN, f"/records/items/{EPCS[1]}")
        expect(duty.locator("#item-state")).to_have_text("received")
        expect(duty.locator("form.step")).to_have_count(0)
        duty.goto(live.url + "/records/consignments")
        expect(duty.locator("form.receive")).to_have_count(0)
        # Found on the items page by serial.
        clerk.goto(live.url + "/records/items?q=SN-2")
        expect(clerk.locator("section.item")).to_have_count(1)
        expect(clerk.locator("section.item .item-state")).to_have_text("received")


def test_pasted_consignment_lines_are_read_or_refused_by_line() -> None:
    pairs, items, problems = consigned_lines(
        "e2aa SN1 Rifle one\n\nE2BB;SN2\nE2AA SN3\nE2CC\nzz SN4\n", ItemKind.WEAPON, "L1", "SH1")
    assert pairs == [("E2AA", "SN1"), ("E2BB", "SN2")]
    assert [(i.name, i.lot) for i in items] == [("Rifle one", "L1"), ("weapon SN2", "L1")]
    assert [p.field for p in problems] == ["items line 4", "items line 5", "items line 6"]
    assert consigned_lines("", ItemKind.WEAPON, "", "SH1")[2][0].field == "items"
