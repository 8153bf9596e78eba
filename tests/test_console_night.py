"""Issue 30 and issue 23 item 4 in real headless Chromium against an in-process daemon on the
session Mosquitto broker: hostile text in every field that reaches a page shows escaped and
never runs; the alarm list is an officer's queue; times are the storehouse's; the dark theme
keeps AA contrast; phone and desk screens never scroll sideways. Writes
test-artifacts/console-*.png (docs/ with DEPOTWATCH_DOCS_SCREENSHOTS=1)."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from inprocess_daemon import OFFICER, Running, depot, eventually, running
from playwright.sync_api import Browser, Page, expect
from servers import Mosquitto
from test_console import DOOR_URL, browser, log_in

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_console

NS = 1_000_000_000
# The pictures in docs/ are refreshed on purpose (DEPOTWATCH_DOCS_SCREENSHOTS=1), never as a
# side effect of `make test`, which would leave every checkout dirty.
DOCS = (Path(__file__).resolve().parent.parent / "docs"
        if os.environ.get("DEPOTWATCH_DOCS_SCREENSHOTS") else Path("test-artifacts"))
# Closes an attribute, opens a tag, and runs script both ways; no "/" (it is part of an MQTT
# topic) and short enough for the config's 64-character names.
HOSTILE = "\"'><img src=x onerror=__xss=1><script>__xss=2"
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
ZONE = "Europe/Vienna"


def hostile_depot(state_dir: Path, mqtt_port: int) -> dict[str, Any]:
    """The console depot with hostile text in the storehouse and officer names (the config
    refuses it in ids: sensor and door ids reach the pages only from the rules' alarms)."""
    config = depot(state_dir, mqtt_port)
    config["storehouses"][0]["name"] = "Store " + HOSTILE
    config["api"]["officers"][0]["name"] = "Sgt. " + HOSTILE
    return config


def test_hostile_text_in_every_field_shows_escaped_and_never_runs(
        browser: Browser, mosquitto: Mosquitto, tmp_path: Path) -> None:
    with running(hostile_depot(tmp_path / "state", mosquitto.port)) as live:
        live.publish("zigbee2mqtt/door1", {"contact": False})
        eventually(lambda: len(live.daemon.desk.alarms()) == 1)
        # A sensor name in an alarm's key, subject and summary, and an EPC in its facts (what
        # the silent-sensor and portal rules carry).
        sensor_key = "sensor_silent.s" + HOSTILE
        raise_alarm(live, sensor_key, "sensor_silent", Severity.ALARM,
                    "sensor s" + HOSTILE + " silent")
        raise_alarm(live, "item_unseen.x", "item_unseen", Severity.ALARM,
                    "item " + HOSTILE + " unseen", facts={"epc": HOSTILE})
        page = browser.new_page()
        log_in(page, live.url)
        door_key = next(a.key for a in live.daemon.desk.alarms() if a.rule == "door_armed")
        door = f"{live.url}/alerts/{urllib.parse.quote(door_key, safe='')}"
        page.goto(door)
        page.fill("#ack-form textarea[name=note]", "note " + HOSTILE)
        page.click("#ack-form button")
        page.check("#check-form input[value=intrusion]")
        page.fill("#check-form textarea[name=note]", "finding " + HOSTILE)
        page.click("#check-form button")
        expect(page.locator("#confirm-note")).to_have_text("finding " + HOSTILE)
        assert_inert(page)
        page.click("#confirm-form button")
        page.goto(door)
        page.fill("#silence-form input[name=reason]", "reason " + HOSTILE)
        page.click("#silence-form button")
        # A finding that is not one is refused without echoing it.
        refused = page.request.post(door + "/check", form={
            "finding": HOSTILE, "csrf": page.locator(".logout input[name=csrf]").get_attribute(
                "value") or ""})
        assert refused.status == 422 and "<img" not in refused.text()
        for path in ("/alerts", "/alerts/" + urllib.parse.quote(door_key, safe=""),
                     "/alerts/item_unseen.x", "/alerts/" + urllib.parse.quote(sensor_key, safe=""),
                     "/storehouses", "/silences"):
            page.goto(live.url + path)
            page.wait_for_timeout(3500)  # a round of polling swaps server HTML in
            assert_inert(page)
            text = page.locator("main").inner_text()
            assert HOSTILE.strip() in text, f"{path} does not show the text as typed"
        page.goto(live.url + "/alerts/item_unseen.x")
        expect(page.locator("details.engineers")).to_contain_text(HOSTILE.strip())
        page.goto(live.url + "/silences")
        expect(page.locator("#silences")).to_contain_text("reason " + HOSTILE.strip())
        page.close()


def assert_inert(page: Page) -> None:
    """No hostile element made it into the DOM and nothing of it ran."""
    assert page.evaluate("window.__xss") is None
    assert page.locator("img").count() == 0
    assert page.locator("script").count() == 3  # the console's own theme, console, alerting


def raise_alarm(live: Running, key: str, rule: str, severity: Severity, summary: str, *,
                ago_s: float = 0, storehouse: str = "SH1",
                facts: dict[str, Any] | None = None) -> None:
    """A rule's condition raised on the live desk, `ago_s` seconds back."""
    async def fire() -> None:
        at = live.daemon.clock.now_ns() - int(ago_s * NS)
        live.daemon.desk.condition(Alert(
            key=key, rule=rule, subject=key.partition(".")[2], severity=severity,
            state=TransitionKind.FIRING, summary=summary, storehouse=storehouse,
            started_ns=at, changed_ns=at, facts=facts or {}), at)
    live.call(fire())


def desk_call(live: Running, action: Any) -> None:
    async def act() -> None:
        action(live.daemon.clock.now_ns())
    live.call(act())


@pytest.fixture
def night(mosquitto: Mosquitto, tmp_path: Path) -> Iterator[Running]:
    """A night at the depot, Vienna time: alarms at every stage of their lifecycle."""
    config = depot(tmp_path / "state", mosquitto.port)
    config["storehouses"][0].update(name="Small-arms store 1", timezone=ZONE)
    # The browser's scheme alone decides here (the dark hours have their own test).
    config["api"]["console"] = {"dark_at_night": False}
    config["storehouses"].append({"id": "SH2", "name": "Propellant magazine", "timezone": ZONE})
    config["api"]["officers"].append(
        {"name": "Cpl. Vogel", "role": "viewer",
         "token_sha256": hashlib.sha256(b"console-viewer-token-0123456789").hexdigest()})
    with running(config) as live:
        desk = live.daemon.desk
        raise_alarm(live, "humidity_high.SH2", "humidity_high", Severity.WARNING,
                    "Propellant magazine (clim2): humidity 78 % above 70 %", ago_s=3000,
                    storehouse="SH2")
        raise_alarm(live, "tamper.door2", "tamper", Severity.CRITICAL,
                    "Small-arms store 1: door2 tamper switch open", ago_s=1800)
        desk_call(live, lambda now: desk.acknowledge("tamper.door2", OFFICER, "on my way", now))
        raise_alarm(live, "sensor_silent.clim1", "sensor_silent", Severity.ALARM,
                    "Small-arms store 1: clim1 silent for 15 min", ago_s=600)
        live.publish("zigbee2mqtt/door1", {"contact": False})
        eventually(lambda: any(a.rule == "door_armed" for a in desk.alarms()))
        raise_alarm(live, "climate_swing.SH2", "climate_swing", Severity.WARNING,
                    "Propellant magazine (clim2): 12 °C swing in 24 h", ago_s=7200,
                    storehouse="SH2")
        desk_call(live, lambda now: desk.add_silence(
            {"rule": "climate_swing"}, "Lt. Weber", "cooling being repaired", now + 3600 * NS,
            now))
        raise_alarm(live, "battery_low.door3", "battery_low", Severity.WARNING,
                    "Small-arms store 1: door3 battery low", ago_s=9000)
        desk_call(live, lambda now: desk.condition(Alert(
            key="battery_low.door3", rule="battery_low", subject="door3",
            severity=Severity.WARNING, state=TransitionKind.RESOLVED,
            summary="Small-arms store 1: door3 battery replaced", storehouse="SH1",
            started_ns=now, changed_ns=now), now))
        yield live


def queue_order(page: Page) -> list[tuple[str, str]]:
    return [tuple(x) for x in page.locator("#alarm-rows article[data-key]").evaluate_all(
        "cards => cards.map(c => [c.dataset.group, c.dataset.key])")]


def test_the_alarm_list_is_an_officers_queue(browser: Browser, night: Running) -> None:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True,
                                  has_touch=True)
    page = context.new_page()
    log_in(page, night.url)
    expect(page.locator(".banner")).to_contain_text("1 critical alarm nobody has acknowledged")
    assert queue_order(page) == [
        ("firing", "door_armed.SH1-D1"), ("firing", "sensor_silent.clim1"),
        ("firing", "humidity_high.SH2"), ("acknowledged", "tamper.door2"),
        ("silenced", "climate_swing.SH2"), ("cleared", "battery_low.door3")]
    door = page.locator('article[data-key="door_armed.SH1-D1"]')
    # The card's words and its one next action.
    expect(door.locator("h3")).to_have_text("Small-arms store 1: door SH1-D1 opened while armed")
    expect(door.locator("button.act-ack")).to_have_text("Acknowledge")
    tamper = page.locator('article[data-key="tamper.door2"]')
    expect(tamper.locator(".now")).to_contain_text(f"Acknowledged by {OFFICER}")
    expect(tamper.locator("a.act-check")).to_have_text("Record on-site check")
    swing = page.locator('article[data-key="climate_swing.SH2"]')
    expect(swing.locator(".now")).to_contain_text("Silenced by Lt. Weber until")
    expect(swing.locator(".now")).to_contain_text("cooling being repaired")
    # Cleared alarms are folded away.
    expect(page.locator('article[data-key="battery_low.door3"]')).to_be_hidden()
    # The door shuts: the headline keeps what the alarm was raised for, the second line moves.
    night.publish("zigbee2mqtt/door1", {"contact": True})
    expect(door.locator(".now")).to_contain_text("over", timeout=10_000)
    expect(door.locator("h3")).to_contain_text("opened while armed")
    # One tap acknowledges from the queue; the card moves down to the acknowledged group.
    door.locator("button.act-ack").click()
    expect(page).to_have_url(night.url + "/alerts")
    expect(page.locator(".banner")).to_have_count(0)
    assert queue_order(page)[:2] == [("firing", "sensor_silent.clim1"),
                                     ("firing", "humidity_high.SH2")]
    context.close()
    viewer = browser.new_page()
    log_in(viewer, night.url, "console-viewer-token-0123456789")
    expect(viewer.locator("#alarm-rows article").first).to_be_visible()
    assert viewer.locator("button.act-ack, a.act-check").count() == 0
    viewer.close()


def test_times_are_the_storehouses_local_time(browser: Browser, night: Running) -> None:
    page = browser.new_page(timezone_id="UTC")
    log_in(page, night.url)
    alarm = night.daemon.desk.get("sensor_silent.clim1")
    local = dt.datetime.fromtimestamp(alarm.started_ns / NS, tz=ZoneInfo(ZONE))
    offset = f"{local:%z}"
    expect(page.locator("p.zone")).to_have_text(
        f"Times in {ZONE}, UTC{offset[:3]}:{offset[3:]}")
    # A moment of another day reads with its date: the alarm began ten minutes ago, and in the
    # ten minutes after the storehouse's midnight that is yesterday.
    today = dt.datetime.fromtimestamp(night.daemon.clock.now_ns() / NS, tz=ZoneInfo(ZONE)).date()
    shown = f"{local:%H:%M}" if local.date() == today else f"{local:%a %d %b %H:%M}"
    card = page.locator('article[data-key="sensor_silent.clim1"]')
    expect(card.locator(".since time")).to_have_text(shown)
    expect(card.locator(".since .ago")).to_have_text("10 min ago")
    page.goto(night.url + "/alerts/sensor_silent.clim1")
    expect(page.locator("#alarm time").first).to_have_text(shown)
    page.close()


# Relative luminance and contrast ratio (WCAG 2.1), from the colours Chromium renders.
CONTRAST_JS = """() => {
  function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return m; }
  function lum(c) { const v = c.slice(0, 3).map(x => { x /= 255;
    return x <= 0.03928 ? x / 12.92 : Math.pow((x + 0.055) / 1.055, 2.4); });
    return 0.2126 * v[0] + 0.7152 * v[1] + 0.0722 * v[2]; }
  function background(el) {
    for (; el; el = el.parentElement) {
      const c = rgb(getComputedStyle(el).backgroundColor);
      if (c.length < 4 || c[3] > 0.5) { return c; }
    }
    return [255, 255, 255];
  }
  const worst = [];
  for (const el of document.querySelectorAll("body *")) {
    const own = [...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim());
    if (!own || !el.getClientRects().length) { continue; }
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    worst.push([Math.round(ratio * 100) / 100, el.tagName + "." + el.className,
                el.textContent.trim().slice(0, 30)]);
  }
  worst.sort((x, y) => x[0] - y[0]);
  const page = lum(rgb(getComputedStyle(document.body).backgroundColor));
  return {worst: worst.slice(0, 5), body: page};
}"""


@pytest.mark.parametrize("scheme", ["dark", "light"])
def test_every_text_meets_aa_contrast(browser: Browser, night: Running, scheme: str) -> None:
    context = browser.new_context(viewport=DESK, color_scheme=scheme)  # type: ignore[arg-type]
    page = context.new_page()
    log_in(page, night.url)
    page.locator("details.group-cleared summary").click()
    for path in ("/alerts", "/alerts/tamper.door2", "/storehouses", "/silences"):
        page.goto(night.url + path)
        if path == "/alerts":
            page.locator("details.group-cleared summary").click()
        found = page.evaluate(CONTRAST_JS)
        assert (found["body"] < 0.05) == (scheme == "dark"), found
        ratio, what, text = found["worst"][0]
        assert ratio >= 4.5, f"{scheme} {path}: {what} {text!r} at {ratio}:1 ({found['worst']})"
    context.close()


@pytest.mark.parametrize(("size", "scheme"), [(PHONE, "dark"), (PHONE, "light"),
                                             (DESK, "light"), (DESK, "dark")])
def test_pages_fit_phone_and_desk_and_are_pictured(browser: Browser, night: Running,
                                                   size: dict[str, int], scheme: str) -> None:
    context = browser.new_context(viewport=size, color_scheme=scheme,  # type: ignore[arg-type]
                                  device_scale_factor=1, timezone_id=ZONE)
    page = context.new_page()
    log_in(page, night.url)
    device = "phone" if size is PHONE else "desk"
    pages = {"alerts": "/alerts", "alarm": "/alerts/tamper.door2", "storehouses": "/storehouses",
             "silences": "/silences", "check": DOOR_URL}
    for name, path in pages.items():
        page.goto(night.url + path)
        overflow = page.evaluate(
            "document.documentElement.scrollWidth - document.documentElement.clientWidth")
        assert overflow <= 0, f"{path} scrolls sideways by {overflow} px ({device})"
        # The storehouses' pictures come from test_console_glance's fuller depot.
        if name == "alerts" and (device, scheme) in (("phone", "dark"), ("desk", "light")):
            page.screenshot(path=str(DOCS / f"console-{name}-{device}-{scheme}.png"),
                            full_page=name != "alerts")
    context.close()
