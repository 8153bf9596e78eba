"""The depot-at-a-glance's pure parts (issue 30): sunset and the dark hours, the climate day
kept in memory, the sparkline, zone states and event lines in the officer's words."""

from __future__ import annotations

import asyncio
import datetime as dt
import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given
from hypothesis import strategies as st

from daemon.config.schema import Config
from daemon.ingest.deadletters import DeadLetterStore
from daemon.spool.store import Spool
from daemon.tsdb.writer import FileSink, TsdbWriter
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.clock import SteadyClock
from daemon.vocabulary.readings import Reading, Severity, TransitionKind
from daemon.web.climate_history import SLOT_NS, ClimateHistory
from daemon.web.console_page import DepotTime
from daemon.web.dusk import DarkHours, sun_times
from daemon.web.glance import GatewayGlance
from daemon.web.recent import RecentEvents
from daemon.web.sparkline import sparkline
from drivers.mqtt import MqttLink
from rules.depot import ClimateClass
from rules.zone_state import ZoneState, zone_fact

NS = 1_000_000_000
VIENNA = ZoneInfo("Europe/Vienna")


def test_sunrise_and_sunset_match_the_almanac_within_two_minutes() -> None:
    # Published times (timeanddate.com): Greenwich at midsummer, Vienna at midwinter.
    for day, place, zone, (rise, set_) in [
            (dt.date(2024, 6, 21), (51.4769, 0.0), "Europe/London", ("04:43", "21:21")),
            (dt.date(2024, 12, 21), (48.2082, 16.3738), "Europe/Vienna", ("07:42", "16:03"))]:
        times = sun_times(day, *place)
        assert times is not None
        for got, want in zip(times, (rise, set_), strict=True):
            wanted = dt.datetime.combine(day, dt.time.fromisoformat(want),
                                         tzinfo=ZoneInfo(zone))
            assert abs((got - wanted).total_seconds()) <= 120, (day, got, want)


@given(st.floats(min_value=-60, max_value=60), st.floats(min_value=-180, max_value=180),
       st.dates(min_value=dt.date(2000, 1, 1), max_value=dt.date(2100, 12, 31)))
def test_the_sun_rises_before_it_sets_away_from_the_poles(
        latitude: float, longitude: float, day: dt.date) -> None:
    times = sun_times(day, latitude, longitude)
    assert times is not None
    rise, set_ = times
    assert dt.timedelta(hours=5) < set_ - rise < dt.timedelta(hours=19)


def test_polar_day_has_no_dark_spell_and_the_evening_hour_stands_in_without_a_place() -> None:
    midsummer = int(dt.datetime(2026, 6, 21, 12, tzinfo=dt.UTC).timestamp()) * NS
    assert DarkHours(ZoneInfo("Arctic/Longyearbyen"), 78.2, 15.6).nights(midsummer) == []
    hours = DarkHours(VIENNA, evening=dt.time(19, 30), morning=dt.time(6, 45))
    at = {h: int(dt.datetime(2026, 12, 7, *h, tzinfo=VIENNA).timestamp()) * NS
          for h in ((12, 0), (19, 29), (19, 30), (23, 0), (3, 0), (6, 45))}
    assert [hours.is_dark(at[h]) for h in sorted(at)] == [
        True, False, False, False, True, True]  # 03:00, 06:45, 12:00, 19:29, 19:30, 23:00


def test_dark_by_the_sun_in_vienna() -> None:
    hours = DarkHours(VIENNA, 48.2082, 16.3738)
    day = dt.date(2026, 12, 7)
    assert not hours.is_dark(int(dt.datetime.combine(day, dt.time(15, 50), VIENNA)
                                 .timestamp()) * NS)
    assert hours.is_dark(int(dt.datetime.combine(day, dt.time(16, 15), VIENNA)
                             .timestamp()) * NS)
    assert hours.is_dark(int(dt.datetime.combine(day, dt.time(7, 30), VIENNA)
                             .timestamp()) * NS)


def test_a_moment_of_yesterday_reads_with_its_date_in_the_storehouses_zone() -> None:
    # 00:04 in Vienna on 8 December: ten minutes ago is 23:54 of the 7th (still the 7th in UTC,
    # the day the console first failed on), two minutes ago is today.
    now_ns = int(dt.datetime(2026, 12, 8, 0, 4, tzinfo=ZoneInfo("Europe/Vienna")).timestamp()
                 ) * 1_000_000_000
    depot = DepotTime({"SH1": ZoneInfo("Europe/Vienna")}, now_ns)
    assert ">Mon 07 Dec 23:54<" in depot.when(now_ns - 600 * 1_000_000_000, "SH1")
    assert ">00:02<" in depot.when(now_ns - 120 * 1_000_000_000, "SH1")


def test_the_climate_day_keeps_one_value_a_quarter_hour_and_survives_a_restart() -> None:
    history = ClimateHistory(["clim1"])
    start = 1_000 * SLOT_NS
    for minute in range(0, 30 * 60, 5):  # every 5 min for 30 h
        history.reading(Reading("clim1", start + minute * 60 * NS,
                                {"temperature_c": float(minute), "humidity_pct": True}))
    now = start + 30 * 3600 * NS
    day = history.day("clim1", "temperature_c", now)
    assert len(day) == 96 and day[-1][1] == 30 * 60 - 15.0  # the slot's first value
    assert all(b[0] - a[0] == SLOT_NS for a, b in itertools.pairwise(day))
    assert history.latest("clim1", "humidity_pct") is None  # not a number: not kept
    # A replayed old reading does not move what the officer reads.
    history.reading(Reading("clim1", start, {"temperature_c": -40.0}))
    assert history.latest("clim1", "temperature_c").value == 30 * 60 - 5.0  # type: ignore[union-attr]
    saved = json.loads(json.dumps(history.snapshot()))
    saved["gone/temperature_c"] = {"first": 1, "values": [2.0], "latest": [1, 2.0]}
    saved["clim1/humidity_pct"] = {"first": "x", "values": [1.0], "latest": "bad"}
    again = ClimateHistory(["clim1"])
    again.restore(saved)
    assert again.day("clim1", "temperature_c", now) == day
    assert again.latest("clim1", "humidity_pct") is None


def test_the_sparkline_escapes_its_label_and_draws_the_limit() -> None:
    svg = str(sparkline([(0, 20.0), (50, 25.0), (100, 22.0)], 0, 100, 30.0, "<b>clim1</b>"))
    assert "<b>" not in svg and "&lt;b&gt;" in svg
    assert 'class="limit"' in svg and 'points="0.0,' in svg
    assert "no readings" in str(sparkline([], 0, 100, None, "x"))
    assert "<circle" in str(sparkline([(10, 1.0)], 0, 100, None, "x"))


def small_depot() -> Config:
    return Config.model_validate({
        "site": {"id": "parts"}, "state_dir": "/tmp/unused",
        "storehouses": [{"id": "SH1", "name": "Small-arms store 1", "arming": "staff",
                         "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "climate_sensors": [{"id": "clim1", "storehouse": "SH1"}]})


def test_zone_states_and_alarm_lines_in_the_officers_words() -> None:
    recent = RecentEvents(small_depot().depot())
    recent.fact(zone_fact("SH1", ZoneState.ARMING, 5 * NS, result="arming", by="Sgt. Novak",
                          how="api"))
    recent.fact(zone_fact("SH1", ZoneState.ARMING, 6 * NS, result="refused", by="Pte. X",
                          how="keypad"))
    zone = recent.zone("SH1")
    assert zone is not None and (zone.state, zone.by, zone.since_ns) == ("arming",
                                                                         "Sgt. Novak", 5 * NS)
    recent.alarm(Alert(key="door_armed.SH1-D1", rule="door_armed", subject="SH1-D1",
                       severity=Severity.CRITICAL, state=TransitionKind.FIRING,
                       summary="Small-arms store 1: door SH1-D1 opened while armed",
                       storehouse="SH1", started_ns=7 * NS, changed_ns=7 * NS,
                       facts={"lifecycle": "acknowledged", "acked_by": "Sgt. Novak"}))
    [line] = [e for e in recent.events("SH1") if e.kind == "alarm"]
    assert line.text == ("Critical alarm acknowledged by Sgt. Novak: Small-arms store 1: door "
                         "SH1-D1 opened while armed")
    assert line.subject == "door_armed.SH1-D1"  # the link to the engineers' detail page
    recent.reading(Reading("clim1", 8 * NS, {"temperature_c": 21.5}))
    again = RecentEvents(small_depot().depot())
    again.restore(json.loads(json.dumps(recent.snapshot())))
    assert again.zone("SH1") == zone
    assert again.climate.latest("clim1", "temperature_c") is not None


@dataclass
class _Parts:
    """The daemon's real parts the glance reads, built but not running."""

    link: MqttLink
    spool: Spool
    writers: list[TsdbWriter]
    deadletters: DeadLetterStore


def test_a_broken_spool_and_dead_letter_store_leave_the_glance_standing(
        tmp_path: Path) -> None:
    # Fault: the spool never opened (its backlog raises) and the dead letter store closed under
    # the page: the links still show, the count reads "unknown" (-1), nothing raises.
    config = small_depot()
    spool = Spool(tmp_path / "spool.sqlite", ["influxdb-0-v1"], max_bytes=1 << 20)
    letters = DeadLetterStore(tmp_path / "dl.sqlite", config.deadletters)
    letters.close()
    parts = _Parts(MqttLink(config.mqtt, SteadyClock(), site="parts"), spool,
                   [TsdbWriter("influxdb-0-v1", FileSink(tmp_path / "x.lp"), spool,
                               batch_size=10, flush_interval_s=1.0)], letters)
    glance = GatewayGlance(parts, None)
    links = asyncio.run(glance.links(0))
    assert [(link.name, link.up) for link in links] == [("MQTT broker", False),
                                                         ("InfluxDB", True)]
    assert glance.dead_letters_kept() == -1
    assert glance.limits(ClimateClass.PROPELLANT).of("humidity_pct") == (65.0, 60.0)
