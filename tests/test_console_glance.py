"""Issue 30 items 4 and 5 in real headless Chromium: the depot at a glance after a day and a
night driven over MQTT on the session Mosquitto broker (the daemon in-process on a stepped
clock), with InfluxDB unreachable all along: zone state and who set it, doors, climate against
the storage class's limits with the day's sparkline, a silent sensor, the links and the dead
letters. Phone and desk: no sideways scrolling, no word broken inside a word. The dark hours by
the site's sunset, the officer's toggle, and a new critical alarm that sounds, vibrates and
notifies. Writes test-artifacts/console-storehouses-*.png."""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from inprocess_daemon import OFFICER, TOKEN, Running, depot, eventually, running
from playwright.sync_api import Browser, Page, expect
from servers import Mosquitto
from test_console import browser, log_in

from daemon.vocabulary.clock import SteppedClock

__all__ = ["browser"]  # the module-scoped Chromium fixture, shared with test_console

NS = 1_000_000_000
# The pictures in docs/ are refreshed on purpose (DEPOTWATCH_DOCS_SCREENSHOTS=1), never as a
# side effect of `make test`, which would leave every checkout dirty.
DOCS = (Path(__file__).resolve().parent.parent / "docs"
        if os.environ.get("DEPOTWATCH_DOCS_SCREENSHOTS") else Path("test-artifacts"))
PHONE = {"width": 390, "height": 844}
DESK = {"width": 1280, "height": 900}
ZONE = "Europe/Vienna"
STEP_NS = 1800 * NS  # a climate reading every half hour
VIENNA = (48.2082, 16.3738)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def glance_depot(state_dir: Path, mqtt_port: int) -> dict[str, Any]:
    """A staff-armed small-arms store and a propellant magazine, three climate sensors (one
    never reports), and an InfluxDB nobody listens for."""
    config = depot(state_dir, mqtt_port)
    config["site"].update(latitude=VIENNA[0], longitude=VIENNA[1])
    config["storehouses"] = [
        {"id": "SH1", "name": "Small-arms store 1", "timezone": ZONE, "arming": "staff",
         "armed": {"mode": "never"}},
        {"id": "SH2", "name": "Propellant magazine", "timezone": ZONE,
         "climate_class": "propellant"}]
    config["doors"] = [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"},
                       {"id": "SH2-D1", "storehouse": "SH2", "contact_sensor": "door2"}]
    config["climate_sensors"] = [{"id": "clim1", "storehouse": "SH1"},
                                 {"id": "clim2", "storehouse": "SH2"},
                                 {"id": "clim3", "storehouse": "SH2"}]
    config["influxdb"] = [{"api": "v1", "url": f"http://127.0.0.1:{free_port()}",
                           "database": "depotwatch"}]
    config["rules"] = [{"type": "door_armed"}, {"type": "zone_arming"}, {"type": "climate"},
                       {"type": "sensor_silent", "climate_s": 7200, "radio_s": 200_000,
                        "wired_s": 200_000}]
    return config


def climate(step: int) -> tuple[dict[str, float], dict[str, float]]:
    """Half-hour `step`'s readings of clim1 (a day's swing) and clim2 (humidity rising)."""
    clim1 = {"temperature": round(19.5 + 2.5 * math.sin(step / 48 * 2 * math.pi), 1),
             "humidity": 52.0}
    clim2 = {"temperature": 21.0, "humidity": 55.0 + max(0, step - 42)}
    return clim1, clim2


def arm(url: str, storehouse: str) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{url}/api/v1/storehouses/{storehouse}/arm", data=b"{}", method="POST",
        headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=10) as response:
        body: dict[str, Any] = json.loads(response.read())
        return body


@pytest.fixture(scope="module")
def night(mosquitto: Mosquitto, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """The last 24 h at the depot, a reading every half hour, ending now."""
    end = time.time_ns()
    clock = SteppedClock(end - 48 * STEP_NS)
    state = tmp_path_factory.mktemp("glance") / "state"
    with running(glance_depot(state, mosquitto.port), clock=clock) as live:
        recent = live.daemon.recent
        live.publish("zigbee2mqtt/door1", {"contact": True})
        live.publish("zigbee2mqtt/door2", {"contact": True})
        for step in range(1, 49):
            at = end - (48 - step) * STEP_NS
            clock.set(at)
            clim1, clim2 = climate(step)
            live.publish("zigbee2mqtt/clim1", clim1)
            live.publish("zigbee2mqtt/clim2", clim2)

            def taken(at: int = at) -> bool:
                return all((recent.climate.latest(s, "humidity_pct") or _never).at_ns == at
                           for s in ("clim1", "clim2"))
            eventually(taken)
            if step == 44:  # the evening round: the store is armed from the officers' API
                assert arm(live.url, "SH1")["result"] == "arming"
        live.publish("zigbee2mqtt/clim1", b"{not json")  # a dead letter
        eventually(lambda: live.daemon.deadletters.total() == 1)
        eventually(lambda: any(a.rule == "sensor_silent" for a in live.daemon.desk.alarms()))
        clock.set(max(clock.now_ns(), time.time_ns()))
        yield live


class _Never:
    at_ns = -1


_never = _Never()


def test_the_day_is_kept_as_the_glance_needs_it(night: Running) -> None:
    # 48 half-hour readings: the sparkline's day holds every one, the latest is the last.
    recent, now = night.daemon.recent, night.daemon.clock.now_ns()
    day = recent.climate.day("clim1", "temperature_c", now)
    assert [v for _, v in day][-3:] == [climate(s)[0]["temperature"] for s in (46, 47, 48)]
    assert 47 <= len(day) <= 49
    zone = recent.zone("SH1")
    assert zone is not None and (zone.state, zone.by) == ("armed", OFFICER)


# Each word of every visible text node on one line (Range.getClientRects): "close|d" is what
# issue 30 found. A word may break after a hyphen or a slash, as a reader expects.
BROKEN_WORDS_JS = """() => {
  const broken = [];
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  while (walker.nextNode()) {
    const node = walker.currentNode;
    if (!node.parentElement || !node.parentElement.getClientRects().length) { continue; }
    for (const m of node.textContent.matchAll(/[^\\s\\-\\/]+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index);
      range.setEnd(node, m.index + m[0].length);
      const lines = new Set([...range.getClientRects()].filter(r => r.width > 0)
                            .map(r => Math.round(r.top)));
      if (lines.size > 1) { broken.push(m[0]); }
    }
  }
  return broken;
}"""


def assert_fits(page: Page, what: str) -> None:
    """No sideways scrolling and no word split over two lines."""
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth")
    assert overflow <= 0, f"{what} scrolls sideways by {overflow} px"
    broken = page.evaluate(BROKEN_WORDS_JS)
    assert not broken, f"{what}: words broken over two lines: {broken}"


@pytest.mark.parametrize(("size", "scheme"), [(PHONE, "dark"), (DESK, "light")])
def test_the_depot_at_a_glance(browser: Browser, night: Running, size: dict[str, int],
                               scheme: str) -> None:
    device = "phone" if size is PHONE else "desk"
    context = browser.new_context(viewport=size, color_scheme=scheme,  # type: ignore[arg-type]
                                  timezone_id=ZONE, is_mobile=size is PHONE,
                                  has_touch=size is PHONE)
    page = context.new_page()
    # The officer's own choice, so the picture keeps its theme whatever the hour.
    page.add_init_script("localStorage.setItem('depotwatch.theme', JSON.stringify("
                         f"{{theme: '{scheme}', at: Date.now()}}))")
    log_in(page, night.url)
    page.goto(night.url + "/storehouses")
    # The gateway: the broker up, InfluxDB down all day with the points waiting, one dead letter.
    expect(page.locator('li[data-link="MQTT broker"]')).to_contain_text("working")
    influx = page.locator('li[data-link="InfluxDB"]')
    expect(influx).to_contain_text("down")
    expect(influx).to_contain_text("writes failed in a row")
    expect(page.locator("#dead-letter-count")).to_have_text("1")
    # The small-arms store: armed from the API by the officer, by name.
    store = page.locator('section[data-storehouse="SH1"]')
    expect(store.locator(".zone-state .pill")).to_have_text("armed")
    expect(store.locator(".set-by")).to_contain_text(f"{OFFICER} (officers' API)")
    expect(store.locator('tr[data-door="SH1-D1"] .door-state')).to_have_text("closed")
    temperature = store.locator('li[data-sensor="clim1"][data-field="temperature"]')
    expect(temperature.locator(".climate-value")).to_have_text(
        f"{climate(48)[0]['temperature']:g} °C")
    expect(temperature.locator(".climate-limits")).to_contain_text(
        "warning 30 °C, alarm 37.8 °C")
    points = temperature.locator("svg.spark polyline").get_attribute("points") or ""
    assert 47 <= len(points.split()) <= 49, points
    # The propellant magazine: its stricter humidity limit, a sensor that never reported.
    magazine = page.locator('section[data-storehouse="SH2"]')
    expect(magazine.locator(".zone-state")).to_contain_text("armed by schedule")
    humidity = magazine.locator('li[data-sensor="clim2"][data-field="humidity"]')
    expect(humidity).to_have_class("climate-line level-alarm")
    expect(humidity.locator(".climate-value")).to_contain_text("61 % RH")
    expect(humidity.locator(".climate-value")).to_contain_text("above the alarm limit")
    expect(humidity.locator(".climate-limits")).to_contain_text("alarm 60 % RH")
    expect(humidity.locator(".climate-limits")).not_to_contain_text("warning")
    expect(magazine.locator('li[data-sensor="clim3"] .climate-value').first).to_have_text(
        "no reading yet")
    expect(magazine.locator('ul.silent li[data-sensor="clim3"]')).to_contain_text(
        "reported silent")
    # Human words in the main view: no rule keys, no internal fields.
    main = page.locator("main").inner_text()
    for internal in ("sensor_silent.", "door_armed.", "zone_arming", "lifecycle", "_pct"):
        assert internal not in main, f"{internal!r} on the depot page"
    page.wait_for_timeout(3500)  # a round of polling: the swapped-in block fits as well
    assert_fits(page, f"/storehouses ({device})")
    page.screenshot(path=str(DOCS / f"console-storehouses-{device}-{scheme}.png"),
                    full_page=True)
    for path in ("/alerts", "/alerts/sensor_silent.clim3", "/deadletters", "/silences"):
        page.goto(night.url + path)
        assert_fits(page, f"{path} ({device})")
    expect(page.locator("header")).to_be_visible()
    page.goto(night.url + "/deadletters")
    expect(page.locator("table.deadletters tbody")).to_contain_text("zigbee2mqtt/clim1")
    context.close()


def test_dark_from_dusk_to_dawn_and_the_officers_toggle(browser: Browser,
                                                        night: Running) -> None:
    # The browser prefers light; the depot's evening makes the console dark by itself.
    zone = ZoneInfo(ZONE)
    today = dt.datetime.now(zone).date()
    evening = dt.datetime.combine(today, dt.time(21, 0), tzinfo=zone)
    noon = dt.datetime.combine(today, dt.time(12, 0), tzinfo=zone)
    context = browser.new_context(viewport=DESK,  # type: ignore[arg-type]
                                  color_scheme="light", timezone_id=ZONE)
    page = context.new_page()
    page.clock.install(time=evening)
    log_in(page, night.url)
    root = page.locator("html")
    expect(root).to_have_attribute("data-theme", "dark")
    # The officer wants light anyway: it stays light across pages.
    page.click("#theme-toggle")
    expect(root).to_have_attribute("data-theme", "light")
    page.goto(night.url + "/storehouses")
    expect(root).to_have_attribute("data-theme", "light")
    page.close()
    # At noon, light by itself; a browser that prefers dark is dark at any hour.
    page = context.new_page()
    page.clock.install(time=noon)
    page.goto(night.url + "/storehouses")
    page.evaluate("localStorage.clear()")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "light")
    page.emulate_media(color_scheme="dark")
    page.reload()
    expect(page.locator("html")).to_have_attribute("data-theme", "dark")
    context.close()


# Spies on the browser's own Notification, vibrate and Web Audio: they record, then call the
# real ones (headless Chromium has no speaker, no motor and no notification centre to look at).
SPIES_JS = """
window.__notes = []; window.__buzz = []; window.__tones = 0;
const RealNotification = window.Notification;
class Spy extends RealNotification {
  constructor(title, options) { super(title, options);
    window.__notes.push([title, options.body, options.tag]); }
}
Object.defineProperty(Spy, "permission", { get: () => RealNotification.permission });
Spy.requestPermission = (...a) => RealNotification.requestPermission(...a);
window.Notification = Spy;
const vibrate = navigator.vibrate ? navigator.vibrate.bind(navigator) : () => false;
navigator.vibrate = (pattern) => { window.__buzz.push(pattern); return vibrate(pattern); };
const oscillator = AudioContext.prototype.createOscillator;
AudioContext.prototype.createOscillator = function () { window.__tones += 1;
  return oscillator.call(this); };
"""


def test_a_new_critical_alarm_sounds_vibrates_and_notifies_once_allowed(
        browser: Browser, night: Running) -> None:
    context = browser.new_context(viewport=PHONE,  # type: ignore[arg-type]
                                  is_mobile=True, has_touch=True, timezone_id=ZONE)
    context.grant_permissions(["notifications"], origin=night.url)
    context.add_init_script(SPIES_JS)
    page = context.new_page()
    log_in(page, night.url)
    page.goto(night.url + "/storehouses")  # not the queue: the page asks for it itself
    allow = page.locator("#alerting-on")
    expect(allow).to_be_visible()
    allow.click()  # the officer's tap: sound is allowed from here on
    expect(page.locator("#alerting-state")).to_contain_text("sound on, notifications on")
    expect(allow).to_be_hidden()
    night.publish("zigbee2mqtt/door2", {"contact": False})
    clock = night.daemon.clock
    assert isinstance(clock, SteppedClock)

    def notified() -> bool:
        clock.set(clock.now_ns() + NS // 5)  # the depot's time moves on: the debounce ends
        return bool(page.evaluate("window.__notes.length"))
    eventually(notified, timeout_s=15)
    [[title, body, tag]] = page.evaluate("window.__notes")
    assert (title, tag) == ("Critical alarm", "door_armed.SH2-D1")
    assert body == "Propellant magazine: door SH2-D1 opened while armed"
    assert page.evaluate("window.__tones") == 4
    assert page.evaluate("window.__buzz") == [[300, 100, 300, 100, 300]]
    # Once per alarm: the queue page met after it raises nothing again.
    page.goto(night.url + "/alerts")
    page.wait_for_timeout(3500)
    assert page.evaluate("window.__notes.length") == 0  # a new page, nothing new raised
    night.publish("zigbee2mqtt/door2", {"contact": True})
    context.close()
