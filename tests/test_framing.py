"""Framers: split and merged reads, noise, bad checksums, over-long frames, bounded buffers."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import TypeAdapter, ValidationError

from drivers.framing import (
    BinaryFramer,
    ChecksumFramingConfig,
    FixedFramingConfig,
    Frame,
    Framer,
    FramingConfig,
    LineFramer,
    LineFramingConfig,
    crc16_modbus,
    xor8,
)

FRAMING = TypeAdapter(FramingConfig)


def feed_all(framer: Framer, chunks: list[bytes]) -> list[Frame]:
    out: list[Frame] = []
    for chunk in chunks:
        out += framer.feed(chunk)
    return out


def crc_frame(body: bytes, start: bytes = b"\x02") -> bytes:
    covered = bytes([len(body)]) + body
    return start + covered + crc16_modbus(covered).to_bytes(2, "little")


def test_crc16_modbus_check_value() -> None:
    # The catalogue check value of CRC-16/MODBUS over "123456789", and a Modbus request's CRC.
    assert crc16_modbus(b"123456789") == 0x4B37
    assert crc16_modbus(bytes.fromhex("0703000000 02".replace(" ", ""))).to_bytes(2, "little") \
        == bytes.fromhex("c46d")
    assert xor8(b"\x01\x02\x04") == 0x07


@pytest.mark.parametrize(("chunks", "frames"), [
    ([b"door=1\n"], [b"door=1"]),
    ([b"do", b"or=1", b"\n"], [b"door=1"]),                          # split across reads
    ([b"a=1\nb=2\nc=3\n"], [b"a=1", b"b=2", b"c=3"]),                # merged in one read
    ([b"a=1\r\n\r\n  \nb=2\r\n"], [b"a=1", b"b=2"]),                 # CR, blank lines
    ([b"a=1\nb=", b"2\nc"], [b"a=1", b"b=2"]),                       # the tail waits
])
def test_lines(chunks: list[bytes], frames: list[bytes]) -> None:
    assert feed_all(LineFramer(b"\n", 64), chunks) == [Frame(f) for f in frames]


def test_line_terminator_of_two_bytes_split_between_reads() -> None:
    framer = LineFramer(b"\r\n", 64)
    assert feed_all(framer, [b"a=1\r", b"\nb=2\r", b"\n"]) == [Frame(b"a=1"), Frame(b"b=2")]


def test_overlong_line_is_cut_once_and_skipped_to_its_end() -> None:
    framer = LineFramer(b"\n", 16)
    out = feed_all(framer, [b"x" * 10, b"y" * 10, b"z" * 100, b"\nok=1\n"])
    assert out[0].error.startswith("no terminator within 16 bytes")
    assert out[0].payload == b"x" * 10 + b"y" * 6
    assert out[1:] == [Frame(b"ok=1")]
    assert framer.pending == 0


def test_overlong_line_completed_in_one_read_is_cut() -> None:
    [frame, ok] = LineFramer(b"\n", 8).feed(b"0123456789\nok\n")
    assert frame.error == "frame of 10 bytes exceeds 8; cut" and frame.payload == b"01234567"
    assert ok == Frame(b"ok")


def test_64_kib_of_garbage_without_terminator_stays_bounded() -> None:
    framer = LineFramer(b"\n", 256)
    garbage = bytes((i * 131 + 7) % 256 for i in range(65536)).replace(b"\n", b"#")
    errors = []
    for offset in range(0, len(garbage), 1000):
        errors += framer.feed(garbage[offset: offset + 1000])
        assert framer.pending <= 256
    assert len(errors) == 1 and len(errors[0].payload) == 256
    assert framer.feed(b"\ndoor=0\n") == [Frame(b"door=0")]
    assert framer.discarded_bytes == 65536  # the 256 reported included


def test_idle_flush_reports_a_partial_line() -> None:
    framer = LineFramer(b"\n", 64)
    assert framer.feed(b"door=") == []
    [frame] = framer.flush()
    assert frame.error.startswith("incomplete frame") and frame.payload == b"door="
    assert framer.feed(b"1\n") == [Frame(b"1")]


def test_checksum_frames_split_merged_with_noise_and_bad_crc() -> None:
    good1, good2 = crc_frame(b"door=1"), crc_frame(b"door=0")
    bad = bytearray(crc_frame(b"door=1"))
    bad[-1] ^= 0xFF
    stream = b"\xff\xfe" + good1 + bytes(bad) + good2 + good1[:3]
    framer = BinaryFramer(start=b"\x02", length_byte=True, body_length=None,
                          checksum="crc16_modbus", max_frame_bytes=64)
    out = feed_all(framer, [stream[i: i + 5] for i in range(0, len(stream), 5)])
    assert [f.payload for f in out if not f.error] == [b"door=1", b"door=0"]
    errors = [f.error for f in out if f.error]
    assert errors[0] == "2 bytes of noise before a frame start"
    assert errors[1].startswith("crc16_modbus checksum mismatch")
    assert len(errors) == 2, "the rest of a rejected frame is not reported again as noise"
    assert framer.pending == 3
    [partial] = framer.flush()
    assert partial.error == "incomplete frame of 3 bytes"


def test_xor_checksum_with_fixed_body_and_two_byte_marker() -> None:
    body = b"12345678"
    frame = b"\xaa\x55" + body + bytes([xor8(body)])
    framer = ChecksumFramingConfig(start="AA 55", length_byte=False, length=8,
                                   checksum="xor").build()
    assert framer.feed(b"\xaa" + frame + frame[:-1] + b"\x00") == [
        Frame(b"\xaa", "1 bytes of noise before a frame start"), Frame(body),
        Frame(frame[:-1] + b"\x00", f"xor checksum mismatch: frame says 00, computed "
                                    f"{xor8(body):02X}"),
    ]


def test_declared_length_beyond_the_limit_is_an_error_not_a_wait() -> None:
    framer = BinaryFramer(start=b"\x02", length_byte=True, body_length=None,
                          checksum="xor", max_frame_bytes=16)
    out = framer.feed(b"\x02\xf0" + b"\x02\x01x" + bytes([xor8(b"\x01x")]))
    assert out == [Frame(b"\x02\xf0", "declared frame of 243 bytes exceeds 16"),
                   Frame(b"\xf0", "1 bytes of noise before a frame start"), Frame(b"x")]


def test_fixed_frames_resynchronise_on_the_start_marker_or_an_idle_gap() -> None:
    with_marker = FixedFramingConfig(length=4, start="02").build()
    assert with_marker.feed(b"\x01\x02abc\x02de") == [
        Frame(b"\x01", "1 bytes of noise before a frame start"), Frame(b"abc")]
    assert with_marker.feed(b"f") == [Frame(b"def")]
    plain = FixedFramingConfig(length=3).build()
    assert plain.feed(b"abcd") == [Frame(b"abc")]
    assert plain.flush() == [Frame(b"d", "incomplete frame of 1 bytes")]
    assert plain.feed(b"xyz") == [Frame(b"xyz")]


@pytest.mark.parametrize(("config", "message"), [
    ({"type": "checksum", "start": "02", "length_byte": True, "length": 4}, "either"),
    ({"type": "checksum", "start": "0x02"}, "not hex bytes"),
    ({"type": "fixed", "length": 2, "start": "0203"}, "shorter than the frame"),
    ({"type": "lines", "terminator": ""}, "at least 1 character"),
    ({"type": "lines", "terminator": "\u20ac"}, "single bytes"),
    ({"type": "slip"}, "does not match any of the expected tags"),
])
def test_bad_framing_configs(config: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        FRAMING.validate_python(config)


def test_default_framing_is_newline_lines() -> None:
    assert LineFramingConfig().build().feed(b"a\r\n") == [Frame(b"a")]


def _framers() -> list[Framer]:
    return [
        LineFramer(b"\r\n", 32),
        BinaryFramer(start=b"\x02", length_byte=True, body_length=None,
                     checksum="crc16_modbus", max_frame_bytes=40),
        FixedFramingConfig(length=5, start="7E").build(),
    ]


@settings(max_examples=150, deadline=None)
@given(st.lists(st.binary(max_size=48), max_size=12), st.data())
def test_reassembly_does_not_depend_on_how_reads_split_the_stream(
        pieces: list[bytes], data: st.DataObject) -> None:
    """Any stream, cut into reads anywhere, gives the same frames and rejects as one read;
    buffers stay bounded. (An over-long line's reason says whether its end was in sight.)"""
    stream = b"".join(piece + crc_frame(piece[:20]) + b"\r\n" for piece in pieces)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    chunks = [stream[a:b] for a, b in zip([0, *cuts], [*cuts, len(stream)], strict=True)]
    for whole, split in zip(_framers(), _framers(), strict=True):
        expected = whole.feed(stream) + whole.flush()
        got: list[Frame] = []
        for chunk in chunks:
            got += split.feed(chunk)
            assert split.pending <= 80
        got += split.flush()
        assert [(f.payload, bool(f.error)) for f in got] == \
            [(f.payload, bool(f.error)) for f in expected]
