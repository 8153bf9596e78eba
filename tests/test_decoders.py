"""Payload decoders: the fields they read, and that bad input is only ever a DecodeError."""

from __future__ import annotations

import contextlib
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import RawMessage
from drivers.decoders.base import Decoder, parse_json_object
from drivers.decoders.json_fields import JsonFieldsDecoderConfig
from drivers.decoders.kinds import DECODER_KINDS
from drivers.decoders.tasmota import TasmotaDecoderConfig
from drivers.decoders.zigbee2mqtt import Zigbee2MqttDecoderConfig


def raw(payload: bytes | str | dict[str, object], topic: str = "t") -> RawMessage:
    if isinstance(payload, dict):
        payload = json.dumps(payload)
    if isinstance(payload, str):
        payload = payload.encode()
    return RawMessage(source=topic, payload=payload, received_ns=123)


def test_zigbee2mqtt_contact_true_means_closed() -> None:
    decoder = Zigbee2MqttDecoderConfig().build()
    [r] = decoder.decode(raw({"contact": True, "tamper": False, "battery": 97,
                              "battery_low": False, "linkquality": 87}), "door1")
    assert r.sensor == "door1" and r.at_ns == 123
    assert r.values == {"open": False, "tamper": False, "battery_pct": 97.0,
                        "battery_low": False}
    [r] = decoder.decode(raw({"contact": False}), "door1")
    assert r.values == {"open": True}


def test_zigbee2mqtt_climate_numbers_become_floats() -> None:
    [r] = Zigbee2MqttDecoderConfig().build().decode(
        raw({"temperature": 21, "humidity": 48.5}), "c1")
    assert r.values == {"temperature_c": 21.0, "humidity_pct": 48.5}
    assert isinstance(r.values["temperature_c"], float)


def test_zigbee2mqtt_heartbeat_without_known_fields_is_an_empty_reading() -> None:
    [r] = Zigbee2MqttDecoderConfig().build().decode(raw({"linkquality": 80}), "c1")
    assert r.values == {}


@pytest.mark.parametrize(("payload", "message"), [
    (b"not json", "not JSON"),
    (b"\xff\xfe\x00garbage", "not UTF-8"),
    (b"[1, 2]", "expected a JSON object"),
    (b'{"contact": "yes"}', "expected true/false"),
    (b'{"temperature": "hot"}', "expected a number"),
    (b'{"temperature": true}', "expected a number"),
    (b'{"humidity": 1e999}', "not a finite number"),
    (b"[" * 100_000, "nested too deeply"),
])
def test_zigbee2mqtt_bad_payloads(payload: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        Zigbee2MqttDecoderConfig().build().decode(raw(payload), "c1")


def test_tasmota_sensor_telemetry() -> None:
    body = {"Time": "2026-11-28T01:00:00", "AM2301": {"Temperature": 23.4, "Humidity": 45},
            "TempUnit": "C"}
    [r] = TasmotaDecoderConfig().build().decode(raw(body), "c2")
    assert r.values == {"temperature_c": 23.4, "humidity_pct": 45.0}


def test_tasmota_fahrenheit_is_converted() -> None:
    body = {"DS18B20": {"Temperature": 212.0}, "TempUnit": "F"}
    [r] = TasmotaDecoderConfig().build().decode(raw(body), "c2")
    assert r.values == {"temperature_c": pytest.approx(100.0)}


def test_tasmota_named_probe_missing() -> None:
    with pytest.raises(DecodeError, match="no 'SHT3X' object"):
        TasmotaDecoderConfig(sensor_key="SHT3X").build().decode(
            raw({"AM2301": {"Temperature": 1}}), "c2")


def test_json_fields_mapping_with_paths_sensor_and_invert() -> None:
    decoder = JsonFieldsDecoderConfig(
        fields={"temperature_c": "env.t", "open": "closed"}, sensor_path="dev",
        invert=["open"]).build()
    [r] = decoder.decode(raw({"dev": "c9", "env": {"t": 4}, "closed": True}), "")
    assert r.sensor == "c9"
    assert r.values == {"temperature_c": 4.0, "open": False}


def test_json_fields_required_field_missing() -> None:
    decoder = JsonFieldsDecoderConfig(fields={"temperature_c": "t"},
                                      required=["temperature_c"]).build()
    with pytest.raises(DecodeError, match="required field 'temperature_c'"):
        decoder.decode(raw({"x": 1}), "c1")


def test_json_fields_rejects_unknown_target_field() -> None:
    with pytest.raises(ValueError, match="unknown field"):
        JsonFieldsDecoderConfig(fields={"temperature_f": "t"})


def test_every_decoder_has_a_docstring() -> None:
    for kind in DECODER_KINDS:
        assert kind.__doc__
        assert kind.model_fields["type"].default


@given(st.binary(max_size=300))
def test_any_bytes_give_readings_or_decode_error(payload: bytes) -> None:
    for decoder in (Zigbee2MqttDecoderConfig().build(), TasmotaDecoderConfig().build(),
                    JsonFieldsDecoderConfig(fields={"temperature_c": "a.b"}).build()):
        with contextlib.suppress(DecodeError):
            decoder.decode(raw(payload), "s")


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=4),
    max_leaves=6,
)


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(st.dictionaries(st.sampled_from(["contact", "temperature", "humidity", "tamper",
                                        "battery", "AM2301", "TempUnit"]), json_values))
def test_any_json_object_gives_typed_readings_or_decode_error(body: dict[str, object]) -> None:
    payload = json.dumps(body).encode()
    for decoder in (Zigbee2MqttDecoderConfig().build(), TasmotaDecoderConfig().build()):
        try:
            [r] = decoder.decode(raw(payload), "s")
        except DecodeError:
            continue
        for name, value in r.values.items():
            assert isinstance(value, bool) == (name in {"open", "tamper", "battery_low"})


@pytest.mark.parametrize("payload", [
    b'{"epc":"E28011606000020100000000A","rssi":-60}',  # a digit run inside a string
    b'{"card":123456789012345678901}',  # an integer beyond 64 bits stays an int
    b'{"a":"12345678901234567890","b":[1.5,{"c":-123456789012345678901}]}',
    b'{"a":"12345678901234567890","t":21.5}',
    b'{"a":[[[["98765432109876543210"]]]],"n":18446744073709551616}',
    b'{"x":1e19,"y":9.3e18,"z":-9223372036854775809,"w":[[1e300]]}',  # big floats
])
def test_json_objects_read_as_json_loads_reads_them(payload: bytes) -> None:
    """orjson's speed must not change a value, whatever long digit runs a payload holds."""
    assert parse_json_object(payload) == json.loads(payload)
    assert [type(v) for v in parse_json_object(payload).values()] == \
        [type(v) for v in json.loads(payload).values()]


@pytest.mark.parametrize("payload", [b"123456789012345678901", b"[18446744073709551616]", b"1.5"])
def test_payloads_not_objects_are_named_as_json_loads_reads_them(payload: bytes) -> None:
    """A number beyond 64 bits at the top level is refused as an int, as json.loads reads it."""
    with pytest.raises(DecodeError, match=f"got {type(json.loads(payload)).__name__}"):
        parse_json_object(payload)


def _every_decoder() -> list[Decoder]:
    """One decoder of every kind, reading every field it can."""
    from drivers.decoders.io_board import IoBoardDecoderConfig
    from drivers.decoders.rfid_ascii import RfidAsciiDecoderConfig
    from drivers.decoders.wiegand import WiegandDecoderConfig
    fields = {"temperature_c": "t", "badge": "b", "epc": "e", "rssi_dbm": "r", "open": "o"}
    return [Zigbee2MqttDecoderConfig().build(), TasmotaDecoderConfig().build(),
            JsonFieldsDecoderConfig(fields=fields).build(),
            IoBoardDecoderConfig(fields={"open": "o", "tamper": "t"}).build(),
            IoBoardDecoderConfig(format="json", fields={"open": "o", "tamper": "t"}).build(),
            WiegandDecoderConfig().build(),
            WiegandDecoderConfig(format="hex", bit_length=26).build(),
            WiegandDecoderConfig(format="binary", bit_length=34).build(),
            RfidAsciiDecoderConfig().build(), RfidAsciiDecoderConfig(layout="keyed").build()]


# Numbers as a hostile device writes them: past every float, past Python's 4,300-digit int
# limit, NaN and infinity spelled out, exponents out of range.
hostile_numbers = st.one_of(
    st.integers(min_value=10**18, max_value=10**40).map(str),
    st.integers(min_value=4200, max_value=6000).map(lambda n: "9" * n),
    st.sampled_from(["1e400", "-1e400", "1e-400", "NaN", "Infinity", "-Infinity", "-0",
                     "0x1F", "1_000", "\\ud800", '"\\ud800"', '"\\udfff x"']),
    st.floats().map(repr),
)
device_keys = st.sampled_from(["contact", "temperature", "humidity", "battery", "tamper",
                               "t", "b", "e", "r", "o", "Temperature", "Humidity"])


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(device_keys, hostile_numbers), min_size=1, max_size=4),
       st.sampled_from(["json", "nested", "kv", "csv", "keyed", "bare"]))
def test_hostile_numbers_are_a_decode_error_in_every_decoder(
        pairs: list[tuple[str, str]], layout: str) -> None:
    """Out-of-range numbers (OverflowError, ValueError inside) are only ever a DecodeError:
    the pipeline then keeps the payload as a dead letter with one log line, no traceback."""
    body = ",".join(f'"{k}":{v}' for k, v in pairs)
    payload = {"json": "{" + body + "}", "nested": '{"AM2301":{' + body + "}}",
               "kv": " ".join(f"{k}={v}" for k, v in pairs),
               "csv": "E2801160600002,1," + ",".join(v for _, v in pairs),
               "keyed": "Tag:E2801160600002, " + ", ".join(f"{k}:{v}" for k, v in pairs),
               "bare": pairs[0][1]}[layout].encode("utf-8", "surrogatepass")
    for decoder in _every_decoder():
        with contextlib.suppress(DecodeError):
            decoder.decode(raw(payload), "s")
