"""Decoders of serial line devices: I/O boards, Wiegand converters, UHF RFID readers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import RawMessage
from drivers.decoders.base import FIELD_TYPES
from drivers.decoders.io_board import IoBoardDecoderConfig
from drivers.decoders.rfid_ascii import RfidAsciiDecoderConfig
from drivers.decoders.wiegand import WiegandDecoderConfig

EPC = "E28011606000020549A0B1C2"


def raw(payload: bytes | str) -> RawMessage:
    data = payload.encode() if isinstance(payload, str) else payload
    return RawMessage(source="serial:p", payload=data, received_ns=7)


def wiegand_bits(facility: int, card: int, bits: int = 26, *, spoil: str = "") -> str:
    """A frame built the way the HID formats describe it (independently of the decoder)."""
    facility_bits = 8 if bits == 26 else 16
    data = f"{facility:0{facility_bits}b}{card:016b}"
    first, second = data[: len(data) // 2], data[len(data) // 2:]
    even = "1" if first.count("1") % 2 else "0"
    odd = "0" if second.count("1") % 2 else "1"
    if spoil == "even":
        even = "1" if even == "0" else "0"
    if spoil == "odd":
        odd = "1" if odd == "0" else "0"
    return even + data + odd


# -- I/O boards ---------------------------------------------------------------------------

def test_io_board_kv_line_for_the_port_sensor() -> None:
    decoder = IoBoardDecoderConfig(fields={"open": "door", "tamper": "tmp"}).build()
    [r] = decoder.decode(raw("door=1 tmp=0 pir=1 uptime=123"), "sh1-door1")
    assert r.sensor == "sh1-door1" and r.at_ns == 7
    assert r.values == {"open": True, "tamper": False}


@pytest.mark.parametrize(("line", "values"), [
    ("DOOR=OPEN, TMP=normal", {"open": True, "tamper": False}),
    ("door:closed;tmp:alarm", {"open": False, "tamper": True}),
    ("door=off", {"open": False}),
])
def test_io_board_words_separators_and_case(line: str, values: dict[str, bool]) -> None:
    decoder = IoBoardDecoderConfig(fields={"open": "door", "tamper": "tmp"}).build()
    assert decoder.decode(raw(line), "d")[0].values == values


def test_io_board_json_with_inputs_named_on_the_board() -> None:
    decoder = IoBoardDecoderConfig(
        format="json", fields={"open": "closed", "tamper": "tamper", "temperature_c": "t"},
        invert=["open"], sensor_key="ch", sensors={"1": "sh1-door1", "2": "sh1-door2"}).build()
    [r] = decoder.decode(raw('{"ch": 2, "closed": 1, "tamper": false, "t": "21.5"}'), "")
    assert r.sensor == "sh1-door2"
    assert r.values == {"open": False, "tamper": False, "temperature_c": 21.5}


@pytest.mark.parametrize(("line", "message"), [
    ("door=maybe", "not a two-state value"),
    ("door", "is not a key=value pair"),
    ("door=1 door=0", "given twice"),
    ("", "empty line"),
    ("door=1\x07", "control characters"),
    (b"door=\xff", "not ASCII"),
    ("tmp=1", "required key 'door' missing"),
])
def test_io_board_bad_lines(line: str | bytes, message: str) -> None:
    decoder = IoBoardDecoderConfig(fields={"open": "door", "tamper": "tmp"},
                                   required=["open"]).build()
    with pytest.raises(DecodeError, match=message):
        decoder.decode(raw(line), "d")


def test_io_board_unknown_input_and_missing_sensor() -> None:
    named = IoBoardDecoderConfig(fields={"open": "d"}, sensor_key="ch", sensors={"1": "x"})
    with pytest.raises(DecodeError, match="not in the decoder's 'sensors'"):
        named.build().decode(raw("ch=9 d=1"), "")
    with pytest.raises(DecodeError, match="no sensor"):
        IoBoardDecoderConfig(fields={"open": "d"}).build().decode(raw("d=1"), "")


@pytest.mark.parametrize(("config", "message"), [
    ({"fields": {"smell": "nose"}}, "unknown field"),
    ({"fields": {"open": "d"}, "invert": ["tamper"]}, "not one of the mapped fields"),
    ({"fields": {"temperature_c": "t"}, "invert": ["temperature_c"]}, "only true/false"),
    ({"fields": {"open": "d"}, "sensors": {"1": "x"}}, "needs a 'sensor_key'"),
])
def test_io_board_bad_configs(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        IoBoardDecoderConfig.model_validate(config)


# -- Wiegand ------------------------------------------------------------------------------

def test_wiegand_26_bits_facility_and_card() -> None:
    decoder = WiegandDecoderConfig().build()
    [r] = decoder.decode(raw(wiegand_bits(12, 3456)), "sh1-reader1")
    assert r.sensor == "sh1-reader1" and r.values == {"badge": "12/3456"}


def test_wiegand_34_bits_and_badge_formats() -> None:
    frame = wiegand_bits(513, 65535, bits=34)
    assert WiegandDecoderConfig().build().decode(raw(frame), "r")[0].values == {
        "badge": "513/65535"}
    assert WiegandDecoderConfig(badge_format="card").build().decode(
        raw(frame), "r")[0].values == {"badge": "65535"}
    assert WiegandDecoderConfig(badge_format="number").build().decode(
        raw(frame), "r")[0].values == {"badge": str(513 * 65536 + 65535)}


def test_wiegand_hex_and_binary_frames() -> None:
    value = int(wiegand_bits(200, 1001), 2)
    hex_decoder = WiegandDecoderConfig(format="hex", bit_length=26).build()
    assert hex_decoder.decode(raw(f"{value:07X}"), "r")[0].values == {"badge": "200/1001"}
    assert hex_decoder.decode(raw(f"0x{value:x}"), "r")[0].values == {"badge": "200/1001"}
    binary = WiegandDecoderConfig(format="binary", bit_length=26).build()
    assert binary.decode(raw(value.to_bytes(4, "big")), "r")[0].values == {"badge": "200/1001"}


@pytest.mark.parametrize(("payload", "message"), [
    (wiegand_bits(12, 3456, spoil="even"), "even parity bit wrong"),
    (wiegand_bits(12, 3456, spoil="odd"), "odd parity bit wrong"),
    (wiegand_bits(1, 2, bits=34, spoil="odd"), "odd parity bit wrong"),
    ("1" * 30, "not Wiegand 26, 34 or 37"),
    ("10201", "only '0' and '1'"),
    ("", "empty line"),
])
def test_wiegand_bad_frames_are_decode_errors_not_badges(payload: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        WiegandDecoderConfig().build().decode(raw(payload), "r")


def test_wiegand_hex_wider_than_its_bits_and_short_binary() -> None:
    with pytest.raises(DecodeError, match="does not fit in 26 bits"):
        WiegandDecoderConfig(format="hex", bit_length=26).build().decode(raw("FFFFFFF"), "r")
    with pytest.raises(DecodeError, match="3 bytes; a 26-bit frame has 4"):
        WiegandDecoderConfig(format="binary", bit_length=26).build().decode(raw(b"abc"), "r")
    with pytest.raises(ValidationError, match="needs bit_length"):
        WiegandDecoderConfig(format="hex")


# -- UHF RFID ------------------------------------------------------------------------------

PORTAL = {1: "p1-inner", 2: "p1-outer"}


def test_rfid_csv_antennas_feed_the_portal_sensors() -> None:
    decoder = RfidAsciiDecoderConfig(antennas=PORTAL).build()
    [inner] = decoder.decode(raw(f"{EPC.lower()},1,-61.5"), "")
    [outer] = decoder.decode(raw(f"{EPC},2,-58"), "")
    assert inner.sensor == "p1-inner" and outer.sensor == "p1-outer"
    assert inner.values == {"epc": EPC, "rssi_dbm": -61.5}


def test_rfid_alien_keyed_layout_with_spaced_epc_and_ignored_lines() -> None:
    decoder = RfidAsciiDecoderConfig(layout="keyed", epc_key="Tag", antenna_key="Ant",
                                     rssi_key="Rssi", antennas={0: "p1-inner", 1: "p1-outer"},
                                     ignore=["(No Tags)"]).build()
    spaced = " ".join(EPC[i: i + 4] for i in range(0, len(EPC), 4))
    line = f"Tag:{spaced}, Disc:2026/11/28 01:02:03, Count:4, Ant:1, Rssi:-55.0"
    [r] = decoder.decode(raw(line), "")
    assert r.sensor == "p1-outer" and r.values == {"epc": EPC, "rssi_dbm": -55.0}
    assert decoder.decode(raw("(No Tags)"), "") == []


def test_rfid_custom_columns_centi_dbm_and_one_sensor_per_reader() -> None:
    decoder = RfidAsciiDecoderConfig(delimiter=";", columns=["", "epc", "rssi_dbm"],
                                     rssi_scale=0.01).build()
    [r] = decoder.decode(raw(f"R1;{EPC};-6150"), "store-reader")
    assert r.sensor == "store-reader" and r.values == {"epc": EPC, "rssi_dbm": -61.5}


@pytest.mark.parametrize(("line", "message"), [
    (f"{EPC},3,-60", "antenna 3 is not in the decoder's 'antennas'"),
    (f"{EPC},x,-60", "is not a number"),
    (f"{EPC},1,loud", "RSSI 'loud' is not a number"),
    (f"{EPC},1,nan", "not a finite number"),
    ("E2G0,1,-60", "EPC is not 8 to 64 hex digits"),
    (f"{EPC},1", "2 columns; the layout has 3"),
])
def test_rfid_bad_reports(line: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        RfidAsciiDecoderConfig(antennas=PORTAL).build().decode(raw(line), "")


@pytest.mark.parametrize(("config", "message"), [
    ({"columns": ["antenna", "rssi_dbm"]}, "exactly one 'epc'"),
    ({"columns": ["epc", "tid"]}, "unknown column"),
    ({"rssi_scale": 0}, "rssi_scale"),
])
def test_rfid_bad_configs(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RfidAsciiDecoderConfig.model_validate(config)


# -- every decoder, any input --------------------------------------------------------------

DECODERS = [
    IoBoardDecoderConfig(fields={"open": "door", "tamper": "tmp", "temperature_c": "t"},
                         sensor_key="id").build(),
    IoBoardDecoderConfig(format="json", fields={"open": "door", "humidity_pct": "h"},
                         invert=["open"]).build(),
    WiegandDecoderConfig().build(),
    WiegandDecoderConfig(format="hex", bit_length=34, badge_format="number").build(),
    WiegandDecoderConfig(format="binary", bit_length=26).build(),
    RfidAsciiDecoderConfig(antennas=PORTAL).build(),
    RfidAsciiDecoderConfig(layout="keyed", epc_key="tag", ignore=["#"]).build(),
]

line_like = st.lists(
    st.sampled_from(["door", "tmp", "t", "id", "=", ":", ",", ";", " ", "1", "0", "-", ".",
                     "open", "nan", "1e999", EPC, "Tag", "ant", "rssi", "{", "}", '"']),
    max_size=14).map(lambda parts: "".join(parts).encode())


def check_readings(payload: bytes) -> None:
    for decoder in DECODERS:
        try:
            readings = decoder.decode(raw(payload), "s")
        except DecodeError:
            continue
        for reading in readings:
            assert reading.sensor
            for name, value in reading.values.items():
                assert type(value) is FIELD_TYPES[name]


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=80) | line_like
       | st.integers(0, (1 << 34) - 1).map(lambda v: f"{v:b}".encode()))
def test_any_bytes_give_typed_readings_or_decode_error(payload: bytes) -> None:
    check_readings(payload)

