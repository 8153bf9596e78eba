"""The issue-26 decoders: plain values, availability, json_fields scaling, maps and arrays,
Tasmota probes and Wiegand, canonical badges; each never raises but a DecodeError."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import RawMessage
from drivers.decoders.availability import AvailabilityDecoderConfig
from drivers.decoders.badges import data_badge, frame_fields, read_badge, roster_badge, uid_badge
from drivers.decoders.base import SKIPPED, UNHANDLED, Decoder
from drivers.decoders.json_fields import JsonFieldsDecoderConfig
from drivers.decoders.plain import PlainDecoderConfig
from drivers.decoders.tasmota import TasmotaDecoderConfig
from drivers.decoders.wiegand import WiegandDecoderConfig
from drivers.decoders.zigbee2mqtt import Zigbee2MqttDecoderConfig
from drivers.profiles import catalogue


def raw(payload: bytes | str | object) -> RawMessage:
    if not isinstance(payload, bytes | str):
        payload = json.dumps(payload)
    return RawMessage("t", payload.encode() if isinstance(payload, str) else payload, 7)


def values(decoder: Decoder, payload: bytes | str | object, sensor: str = "s") -> list[dict]:
    return [dict(r.values) for r in decoder.decode(raw(payload), sensor)]


@pytest.mark.parametrize(("payload", "want"), [
    ("open", True), ("close", False), ("OPEN", True), ("ON", True), ("off", False),
    ("true", True), ("false", False), ("1", True)])
def test_plain_words(payload: str, want: bool) -> None:
    decoder = PlainDecoderConfig(field="open", values={"open": True, "close": False}).build()
    assert values(decoder, payload) == [{"open": want}]


def test_plain_number_scaled_and_mapped_words_checked() -> None:
    decoder = PlainDecoderConfig(field="temperature_c", scale=0.1, offset=-1).build()
    assert values(decoder, "215") == [{"temperature_c": pytest.approx(20.5)}]
    with pytest.raises(DecodeError):
        values(decoder, "warm")
    with pytest.raises(ValueError, match="expected true/false"):
        PlainDecoderConfig(field="open", values={"open": "yes"})


@pytest.mark.parametrize(("payload", "want"), [
    ('{"state":"online"}', True), ('{"state":"offline"}', False), ("Offline", False),
    ("online", True), ("false", False)])
def test_availability_words(payload: str, want: bool) -> None:
    decoder = AvailabilityDecoderConfig(online=["online", "true"],
                                        offline=["offline", "false"]).build()
    assert values(decoder, payload) == [{"available": want}]
    with pytest.raises(DecodeError):
        values(decoder, "maybe")


def test_impinj_rssi_in_centi_dbm_is_scaled() -> None:
    decoder = catalogue()["rfid/impinj-r700"].decoder_config().build()
    [reading] = decoder.decode(raw({"tagInventoryEvent": {
        "epcHex": "e2801160600002054e5d8d1b", "antennaPort": 2, "peakRssiCdbm": -2650}}), "x")
    assert reading.sensor == "antenna-2"
    assert reading.values == {"epc": "E2801160600002054E5D8D1B", "rssi_dbm": -26.5}


@pytest.mark.parametrize(("read", "error"), [
    ({"epcHex": "E280#1", "antennaPort": 1}, "not 8 to 64 hex digits"),
    ({"epcHex": "E2801160600002054E5D8D1B", "antennaPort": 9}, "antenna 9 is not"),
    ({"epcHex": "E2801160600002054E5D8D1B"}, "no antenna number"),
    ({"antennaPort": 1}, "required field 'epc'"),
])
def test_rfid_json_bad_reads_are_decode_errors(read: dict, error: str) -> None:
    decoder = catalogue()["rfid/impinj-r700"].decoder_config().build()
    with pytest.raises(DecodeError, match=error):
        decoder.decode(raw({"tagInventoryEvent": read}), "x")


def test_json_fields_word_map_and_array_under_a_path() -> None:
    decoder = JsonFieldsDecoderConfig(
        items="reads", fields={"epc": "epc", "motion": {"path": "pir", "values": {
            "ON": True, "OFF": False}}}).build()
    got = values(decoder, {"reads": [{"epc": "300833b2ddd90140", "pir": "ON"},
                                     {"epc": "300833B2DDD90141", "pir": "off"}]})
    assert got == [{"epc": "300833B2DDD90140", "motion": True},
                   {"epc": "300833B2DDD90141", "motion": False}]
    with pytest.raises(DecodeError, match="not an array"):
        values(decoder, {"reads": {"epc": "x"}})


def test_tasmota_null_probe_is_skipped_not_the_message() -> None:
    decoder = TasmotaDecoderConfig(probes={"DS18B20-1": "a", "0316A2791A3E": "b"}).build()
    readings = decoder.decode(raw({
        "DS18B20-1": {"Id": "01144A0CB2AA", "Temperature": None},
        "DS18B20-2": {"Id": "0316A2791A3E", "Temperature": 55.0}, "TempUnit": "C"}), "dev")
    assert [(r.sensor, dict(r.values)) for r in readings] == [
        ("a", {SKIPPED: "temperature_c"}), ("b", {"temperature_c": 55.0})]


def test_tasmota_wiegand_badge_is_facility_and_card() -> None:
    decoder = TasmotaDecoderConfig().build()
    assert values(decoder, {"Wiegand": {"UID": 789888, "Size": 26}}) == [{"badge": "12/3456"}]
    assert values(decoder, {"Wiegand": {"UID": "0xC0D80", "Size": 26}}) == [{"badge": "12/3456"}]
    assert values(decoder, {"Wiegand": {"UID": 3456789, "Size": 32}}) == [
        {"badge": "uid:34BF15"}]
    with pytest.raises(DecodeError, match="keypad key"):
        values(decoder, {"Wiegand": {"UID": 5, "Size": 4}})


def _frame(facility: int, card: int, bits: int, facility_bits: int) -> int:
    data_bits = bits - 2
    data = (facility << (data_bits - facility_bits)) | card
    half = (data_bits + 1) // 2
    first, second = data >> (data_bits - half), data & ((1 << half) - 1)
    even = first.bit_count() % 2
    odd = 1 - second.bit_count() % 2
    return (even << (bits - 1)) | (data << 1) | odd


@pytest.mark.parametrize(("bits", "facility_bits"), [(26, 8), (34, 16), (37, 16)])
def test_wiegand_frames_and_data_bits_agree(bits: int, facility_bits: int) -> None:
    frame = _frame(12, 3456, bits, facility_bits)
    assert frame_fields(frame, bits) == (12, 3456)
    assert data_badge((frame >> 1) & ((1 << (bits - 2)) - 1), bits) == "12/3456"
    decoder = WiegandDecoderConfig(format="hex", bit_length=bits).build()
    assert values(decoder, f"{frame:X}") == [{"badge": "12/3456"}]
    with pytest.raises(DecodeError, match="parity"):
        frame_fields(frame ^ 1, bits)


def test_uid_forms_are_one() -> None:
    assert uid_badge("3456789", 10) == uid_badge("0x34bf15") == uid_badge("34:BF:15") \
        == uid_badge(3456789) == "uid:34BF15"
    assert uid_badge(0x0A) == "uid:0A"


def test_zigbee2mqtt_security_fields_are_never_heartbeats() -> None:
    decoder = Zigbee2MqttDecoderConfig().build()
    assert values(decoder, {"water_leak": True}) == [{"water_leak": True}]
    assert values(decoder, {"occupancy": True}) == [{"motion": True}]
    assert values(decoder, {"action": "single"}) == [{UNHANDLED: "action=single"}]
    assert values(decoder, {"action": "tilt"}) == [{"vibration": True}]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.sampled_from(["Wiegand", "UID", "Size", "DS18B20-1", "Id", "Temperature", "data",
                         "idHex", "antenna", "peakRssi", "tagInventoryEvent", "epcHex",
                         "antennaPort", "peakRssiCdbm", "state", "params", "x"]),
        inner, max_size=4),
    max_leaves=8,
)
_DECODERS = [
    PlainDecoderConfig(field="open").build(),
    PlainDecoderConfig(field="temperature_c", scale=0.01).build(),
    AvailabilityDecoderConfig().build(),
    TasmotaDecoderConfig().build(),
    TasmotaDecoderConfig(probes={"DS18B20-1": "a", "x": "b"}).build(),
    *(p.decoder_config().build() for p in catalogue().values() if p.decoder is not None),
]


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(json_values)
def test_any_json_gives_readings_or_a_decode_error(body: object) -> None:
    for decoder in _DECODERS:
        with contextlib.suppress(DecodeError):
            decoder.decode(raw(json.dumps(body)), "s")


@settings(suppress_health_check=[HealthCheck.too_slow], max_examples=150)
@given(st.binary(max_size=200))
def test_any_bytes_give_readings_or_a_decode_error(payload: bytes) -> None:
    for decoder in _DECODERS:
        with contextlib.suppress(DecodeError):
            decoder.decode(raw(payload), "s")


@given(st.integers(min_value=-5, max_value=1 << 40), st.sampled_from([26, 34, 37, 30]))
def test_badge_functions_raise_only_decode_errors(value: int, bits: int) -> None:
    for call in (lambda: frame_fields(value, bits), lambda: data_badge(value, bits),
                 lambda: uid_badge(value), lambda: uid_badge(str(value), 10)):
        with contextlib.suppress(DecodeError):
            call()


@pytest.mark.parametrize(("value", "form", "badge"), [
    ("012/03456", "facility_card", "12/3456"), ("12:3456", "facility_card", "12/3456"),
    ("3456789", "uid_decimal", "uid:34BF15"), ("04:a2:b3:c4", "uid_hex", "uid:04A2B3C4"),
    ("789888", "wiegand26_data", "12/3456"), ("65540242", "wiegand34_data", "1000/4242"),
    ("7", "as_read", "7")])
def test_badge_forms_are_made_canonical(value: str, form: str, badge: str) -> None:
    assert read_badge(value, form) == badge  # type: ignore[arg-type]
    decoder = JsonFieldsDecoderConfig(fields={"badge": "card"}, badge_form=form).build()
    assert values(decoder, {"card": value}) == [{"badge": badge}]
    plain = PlainDecoderConfig(field="badge", badge_form=form).build()
    assert values(plain, value) == [{"badge": badge}]


def test_roster_entries_are_made_canonical_where_they_are_badges() -> None:
    assert roster_badge("012/03456") == "12/3456"
    assert roster_badge("uid:04a2") == "uid:04A2"
    assert roster_badge("1001") == "1001" and roster_badge("12:34") == "12:34"


@given(st.text(max_size=30), st.sampled_from(["facility_card", "uid_decimal", "uid_hex",
                                               "wiegand26_data", "wiegand37_data"]))
def test_read_badge_raises_only_decode_errors(text: str, form: str) -> None:
    with contextlib.suppress(DecodeError):
        read_badge(text, form)  # type: ignore[arg-type]
