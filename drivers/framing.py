"""Serial framing: bytes as they arrive -> whole frames; noise, bad checksums, over-long frames.

A framer never holds more than about `max_frame_bytes` plus one read: what cannot be a frame is
cut, handed back as an error frame (the driver dead-letters it) and dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "BinaryFramer",
    "ChecksumFramingConfig",
    "FixedFramingConfig",
    "Frame",
    "Framer",
    "FramingConfig",
    "LineFramer",
    "LineFramingConfig",
    "crc16_modbus",
    "xor8",
]


@dataclass(frozen=True, slots=True)
class Frame:
    """A frame's payload; with `error` set, bytes that are no frame (cut to the frame limit)."""

    payload: bytes
    error: str = ""


class Framer(Protocol):
    """Reassembles frames from reads of any size."""

    def feed(self, data: bytes) -> list[Frame]:
        """Frames (and errors) completed by these bytes."""
        ...

    def flush(self) -> list[Frame]:
        """After an idle gap or a lost port: whatever is buffered is an incomplete frame."""
        ...

    @property
    def pending(self) -> int:
        """Bytes buffered, waiting for the rest of a frame."""
        ...


def crc16_modbus(data: bytes) -> int:
    """CRC-16/MODBUS (poly 0x8005 reflected, init 0xFFFF), sent low byte first.

    Modbus over Serial Line V1.02, 6.2.2.
    """
    crc = 0xFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def xor8(data: bytes) -> int:
    """Longitudinal XOR of every byte (BCC), as many reader and I/O board protocols append."""
    value = 0
    for byte in data:
        value ^= byte
    return value


class LineFramer:
    """Frames ended by a terminator; an over-long line is cut, reported once, skipped to its end."""

    def __init__(self, terminator: bytes, max_frame_bytes: int, *, strip: bool = True) -> None:
        self._terminator = terminator
        self._max = max_frame_bytes
        self._strip = strip
        self._buf = bytearray()
        self._discarding = False  # inside an over-long frame, dropping until its terminator
        self.discarded_bytes = 0

    @property
    def pending(self) -> int:
        """Bytes buffered."""
        return len(self._buf)

    def feed(self, data: bytes) -> list[Frame]:
        """Split off every terminated frame."""
        out: list[Frame] = []
        self._buf += data
        while (end := self._buf.find(self._terminator)) >= 0:
            frame = bytes(self._buf[:end])
            del self._buf[: end + len(self._terminator)]
            if self._discarding:
                self._discarding = False
                self.discarded_bytes += len(frame)
            elif len(frame) > self._max:
                out.append(Frame(frame[: self._max],
                                 f"frame of {len(frame)} bytes exceeds {self._max}; cut"))
            else:
                payload = frame.strip() if self._strip else frame
                if payload:
                    out.append(Frame(payload))
        # Keep what could still be the start of a terminator; the rest of an over-long frame goes.
        keep = len(self._terminator) - 1
        if len(self._buf) > self._max + keep:
            if not self._discarding:
                out.append(Frame(bytes(self._buf[: self._max]),
                                 f"no terminator within {self._max} bytes; frame cut"))
                self._discarding = True
            drop = len(self._buf) - keep
            self.discarded_bytes += drop
            del self._buf[:drop]
        return out

    def flush(self) -> list[Frame]:
        """A partial line at an idle gap is incomplete; the next byte starts a new frame."""
        frame, discarding = bytes(self._buf), self._discarding
        self._buf.clear()
        self._discarding = False
        if discarding or not frame.strip():
            return []
        return [Frame(frame[: self._max],
                      f"incomplete frame of {len(frame)} bytes (no terminator)")]


class BinaryFramer:
    """`start | [length byte] | body | [checksum]` frames; hunts for `start` through noise.

    The checksum covers everything after `start` up to the checksum (length byte and body).
    After a bad checksum only the start marker is dropped and the hunt resumes, so a corrupted
    length byte cannot swallow the next good frame.
    """

    def __init__(self, *, start: bytes, length_byte: bool, body_length: int | None,
                 checksum: Literal["none", "xor", "crc16_modbus"], max_frame_bytes: int) -> None:
        if not length_byte and body_length is None:
            raise ValueError("a frame needs a length byte or a fixed body length")
        self._start = start
        self._length_byte = length_byte
        self._body_length = body_length
        self._checksum = checksum
        self._checksum_bytes = {"none": 0, "xor": 1, "crc16_modbus": 2}[checksum]
        self._max = max_frame_bytes
        self._buf = bytearray()
        self._noise = bytearray()
        self._quiet = 0  # bytes of a rejected frame that are not reported again as noise

    @property
    def pending(self) -> int:
        """Bytes buffered (noise waiting to be reported included)."""
        return len(self._buf) + len(self._noise)

    def feed(self, data: bytes) -> list[Frame]:
        """Frames and errors completed by these bytes."""
        out: list[Frame] = []
        self._buf += data
        header = len(self._start) + (1 if self._length_byte else 0)
        while True:
            if self._start:
                at = self._buf.find(self._start)
                skip = at if at >= 0 else max(0, len(self._buf) - (len(self._start) - 1))
                if skip:
                    self._skip_noise(bytes(self._buf[:skip]), out)
                    del self._buf[:skip]
                if at < 0:
                    break
            if len(self._buf) < header:
                break
            body = self._buf[len(self._start)] if self._length_byte else self._body_length
            assert body is not None
            total = header + body + self._checksum_bytes
            if total > self._max:
                self._report_noise(out)
                out.append(Frame(bytes(self._buf[:header]),
                                 f"declared frame of {total} bytes exceeds {self._max}"))
                self._drop_marker()
                continue
            if len(self._buf) < total:
                break
            frame = bytes(self._buf[:total])
            self._report_noise(out)
            problem = self._check(frame, header, total)
            if problem:
                out.append(Frame(frame, problem))
                self._quiet = total - len(self._start)
                self._drop_marker(total)
            else:
                out.append(Frame(frame[header: total - self._checksum_bytes]))
                self._quiet = 0
                del self._buf[:total]
        return out

    def flush(self) -> list[Frame]:
        """Report buffered noise and a partial frame; the next byte starts a new hunt."""
        out: list[Frame] = []
        noise_only = bool(self._start) and not self._buf.startswith(self._start)
        if noise_only:
            self._skip_noise(bytes(self._buf), out)
            self._buf.clear()
        self._report_noise(out)
        if self._buf:
            frame = bytes(self._buf[: self._max])
            out.append(Frame(frame, f"incomplete frame of {len(self._buf)} bytes"))
            self._buf.clear()
        self._quiet = 0
        return out

    def _check(self, frame: bytes, header: int, total: int) -> str:
        if self._checksum == "none":
            return ""
        covered = frame[len(self._start): total - self._checksum_bytes]
        if self._checksum == "xor":
            got, want = frame[-1], xor8(covered)
            width = 2
        else:
            got, want = int.from_bytes(frame[-2:], "little"), crc16_modbus(covered)
            width = 4
        if got == want:
            return ""
        return (f"{self._checksum} checksum mismatch: frame says {got:0{width}X}, "
                f"computed {want:0{width}X}")

    def _drop_marker(self, total: int | None = None) -> None:
        # With a start marker, resume the hunt one marker further; without one nothing marks
        # where the next frame starts, so the whole frame goes (an idle gap resynchronises).
        del self._buf[: len(self._start) if self._start else (total or len(self._buf))]

    def _skip_noise(self, chunk: bytes, out: list[Frame]) -> None:
        silent = min(self._quiet, len(chunk))
        self._quiet -= silent
        self._noise += chunk[silent:]
        # Report in pieces of the frame limit, however the reads happened to split the noise.
        while len(self._noise) >= self._max:
            out.append(Frame(bytes(self._noise[: self._max]),
                             f"{self._max} bytes of noise before a frame start"))
            del self._noise[: self._max]

    def _report_noise(self, out: list[Frame]) -> None:
        if self._noise:
            out.append(Frame(bytes(self._noise),
                             f"{len(self._noise)} bytes of noise before a frame start"))
            self._noise.clear()


class _FramingBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _hex_bytes(value: str) -> bytes:
    cleaned = value.replace(" ", "")
    try:
        return bytes.fromhex(cleaned)
    except ValueError as exc:
        raise ValueError(f"not hex bytes: {value!r} (write e.g. \"02\" or \"AA 55\")") from exc


class LineFramingConfig(_FramingBase):
    """Text lines ended by `terminator` ("\\n", "\\r\\n", "\\x03" ...), whitespace stripped."""

    type: Literal["lines"] = "lines"
    terminator: str = Field(default="\n", min_length=1, max_length=4)
    max_frame_bytes: int = Field(default=1024, ge=8, le=65536)
    strip: bool = True

    @field_validator("terminator")
    @classmethod
    def _latin1(cls, value: str) -> str:
        if any(ord(c) > 255 for c in value):
            raise ValueError("terminator must be single bytes (\\x00 to \\xff)")
        return value

    def build(self) -> LineFramer:
        """The framer."""
        return LineFramer(self.terminator.encode("latin-1"), self.max_frame_bytes,
                          strip=self.strip)


class FixedFramingConfig(_FramingBase):
    """Frames of `length` bytes, optionally led by a `start` marker (hex, counted in `length`)."""

    type: Literal["fixed"] = "fixed"
    length: int = Field(ge=1, le=4096)
    start: str = ""

    @model_validator(mode="after")
    def _start_fits(self) -> FixedFramingConfig:
        if len(_hex_bytes(self.start)) >= self.length:
            raise ValueError("the start marker must be shorter than the frame")
        return self

    @property
    def max_frame_bytes(self) -> int:
        """The frame length."""
        return self.length

    def build(self) -> BinaryFramer:
        """The framer."""
        start = _hex_bytes(self.start)
        return BinaryFramer(start=start, length_byte=False, body_length=self.length - len(start),
                            checksum="none", max_frame_bytes=self.length)


class ChecksumFramingConfig(_FramingBase):
    """`start | length byte | body | checksum` frames (or a fixed body `length`), XOR or CRC-16."""

    type: Literal["checksum"] = "checksum"
    start: str = Field(min_length=2)
    length_byte: bool = True
    length: int | None = Field(default=None, ge=1, le=4096)
    checksum: Literal["crc16_modbus", "xor"] = "crc16_modbus"
    max_frame_bytes: int = Field(default=260, ge=4, le=65536)

    @field_validator("start")
    @classmethod
    def _start_hex(cls, value: str) -> str:
        _hex_bytes(value)
        return value

    @model_validator(mode="after")
    def _one_length(self) -> ChecksumFramingConfig:
        if self.length_byte == (self.length is not None):
            raise ValueError("give either length_byte: true or a fixed body 'length'")
        return self

    def build(self) -> BinaryFramer:
        """The framer."""
        return BinaryFramer(start=_hex_bytes(self.start), length_byte=self.length_byte,
                            body_length=self.length, checksum=self.checksum,
                            max_frame_bytes=self.max_frame_bytes)


FramingConfig = Annotated[
    LineFramingConfig | FixedFramingConfig | ChecksumFramingConfig,
    Field(discriminator="type"),
]
