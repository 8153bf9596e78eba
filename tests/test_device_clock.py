"""A device's own timestamp: kept as `device_time_s`, never the reading's time; far off the
gateway's receipt it is one `clock_skew` fault per sensor (issue "Never blind")."""

from __future__ import annotations

import datetime as dt
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inprocess_daemon import depot, eventually, running
from servers import Mosquitto

from daemon.vocabulary.readings import RawMessage
from drivers.decoders.device_time import device_time_s
from drivers.decoders.json_fields import JsonFieldsDecoderConfig
from drivers.decoders.zigbee2mqtt import Zigbee2MqttDecoder

HOUR_S = 3600.0


@given(st.floats(min_value=0, max_value=4e9, allow_nan=False))
def test_epoch_seconds_and_milliseconds_read_alike(seconds: float) -> None:
    assert device_time_s(seconds, "epoch_s") == seconds
    assert device_time_s(seconds * 1000, "epoch_ms") == pytest.approx(seconds)


@given(st.datetimes(min_value=dt.datetime(1971, 1, 1), max_value=dt.datetime(2100, 1, 1),
                    timezones=st.sampled_from([dt.UTC, dt.timezone(dt.timedelta(hours=2))])))
def test_iso_8601_with_a_zone_reads_as_its_instant(moment: dt.datetime) -> None:
    assert device_time_s(moment.isoformat(), "iso8601") == pytest.approx(moment.timestamp())


@pytest.mark.parametrize(("value", "time_format"), [
    ("2026-11-29T23:12:05", "iso8601"),  # no zone: a guess, not read
    ("yesterday", "iso8601"), (17, "iso8601"), ("17", "epoch_ms"), (True, "epoch_s"),
    (float("nan"), "epoch_s"), (float("inf"), "epoch_ms"), ("x" * 10_000, "iso8601")])
def test_a_timestamp_that_is_not_one_is_dropped(value: Any, time_format: Any) -> None:
    assert device_time_s(value, time_format) is None


def _raw(body: bytes) -> RawMessage:
    return RawMessage(source="zigbee2mqtt/door1", payload=body, received_ns=5)


def test_zigbee2mqtt_keeps_last_seen_and_times_the_reading_by_receipt() -> None:
    decoder = Zigbee2MqttDecoder()
    [iso] = decoder.decode(_raw(b'{"contact": false, "last_seen": "2026-11-29T23:12:05Z"}'),
                           "door1")
    [epoch] = decoder.decode(_raw(b'{"contact": false, "last_seen": 1795993925000}'), "door1")
    [garbled] = decoder.decode(_raw(b'{"contact": false, "last_seen": "soon"}'), "door1")
    assert iso.at_ns == epoch.at_ns == 5
    assert iso.values["device_time_s"] == epoch.values["device_time_s"] == 1795993925.0
    assert garbled.values == {"open": True}  # the door still opens


def test_json_fields_reads_the_configured_time() -> None:
    decoder = JsonFieldsDecoderConfig.model_validate({
        "type": "json_fields", "fields": {"temperature_c": "t"}, "time": "meta.ts",
        "time_format": "epoch_s"}).build()
    [reading] = decoder.decode(_raw(b'{"t": 18.5, "meta": {"ts": 1795993925}}'), "clim1")
    assert reading.values == {"temperature_c": 18.5, "device_time_s": 1795993925.0}
    assert reading.at_ns == 5


def _alerts(r: Any, key: str) -> list[dict[str, Any]]:
    assert r.probe is not None
    return [a for a in r.probe.alerts() if a["key"] == key]


def test_a_skewed_device_clock_is_one_fault_and_moves_no_timer(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """An hour ahead, then a day behind: one clock_skew alert (not one per reading), no
    sustain timer satisfied by the day-old stamp, the armed door still alarms at once; a
    reading whose clock agrees again clears it."""
    config = depot(tmp_path / "state", mosquitto.port)
    config["site"]["id"] = site = f"skew-{uuid.uuid4().hex[:8]}"
    config["rules"] = [{"type": "door_armed"}, {"type": "gateway_fault"},
                       {"type": "climate", "temperature_warning_c": 30.0,
                        "temperature_warning_for_s": 600.0}]
    with running(config) as r:
        assert r.probe is not None
        r.call(r.probe.subscribe(f"depotwatch/{site}/alerts/#"))
        now = time.time()
        for ahead in (HOUR_S, HOUR_S + 1, -24 * HOUR_S):
            r.publish("zigbee2mqtt/clim1", {"temperature": 35.0, "last_seen": int(
                (now + ahead) * 1000)})
        r.publish("zigbee2mqtt/door1", {"contact": False, "last_seen": int(
            (now - 24 * HOUR_S) * 1000)})
        eventually(lambda: _alerts(r, "door_armed.SH1-D1"), timeout_s=3)
        eventually(lambda: _alerts(r, "clock_skew.clim1"), timeout_s=3)
        assert "+3600 s" in _alerts(r, "clock_skew.clim1")[0]["summary"]
        r.publish("zigbee2mqtt/clim1", {"temperature": 33.0, "last_seen": int(
            time.time() * 1000)})
        eventually(lambda: any(a["state"] == "resolved"
                               for a in _alerts(r, "clock_skew.clim1")), timeout_s=3)
        time.sleep(0.5)
        assert [a["state"] for a in _alerts(r, "clock_skew.clim1")] == ["firing", "resolved"]
        assert not _alerts(r, "temperature_warning.clim1")
        assert {a["key"] for a in r.probe.alerts()} == {
            "door_armed.SH1-D1", "clock_skew.clim1", "clock_skew.door1"}
