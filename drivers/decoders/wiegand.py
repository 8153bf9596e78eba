"""Badge readers behind Wiegand-to-serial converters: 26-, 34- and 37-bit frames, parity checked."""

from __future__ import annotations

from typing import Literal

from pydantic import model_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import RawMessage, Reading
from drivers.decoders.badges import facility_card, frame_fields
from drivers.decoders.base import DecoderConfigBase
from drivers.decoders.text import line_text

__all__ = ["WiegandDecoder", "WiegandDecoderConfig", "wiegand_fields"]

# Frame layouts and the canonical badge form: drivers/decoders/badges.py.


class WiegandDecoderConfig(DecoderConfigBase):
    """Wiegand frames as `0`/`1` text, hex text or raw bytes; `badge_format` as on the roster."""

    type: Literal["wiegand"] = "wiegand"
    # bits: "10001...", one character per bit (the length says 26 or 34); hex: the frame's value
    # in hex, parity bits included; binary: the value in big-endian bytes (fixed framing).
    format: Literal["bits", "hex", "binary"] = "bits"
    bit_length: Literal[26, 34, 37] | None = None
    # facility_card: "12/3456", the canonical form (badges.py); card: "3456" (one facility
    # only); number: the data bits between the parity bits as one decimal number (facility *
    # 65536 + card for 26-bit), as keyboard-wedge readers print it. Rosters written for one of
    # the last two keep working; new ones use facility_card.
    badge_format: Literal["facility_card", "card", "number"] = "facility_card"

    @model_validator(mode="after")
    def _length_known(self) -> WiegandDecoderConfig:
        if self.format != "bits" and self.bit_length is None:
            raise ValueError(f"format {self.format!r} needs bit_length (26, 34 or 37)")
        return self

    def build(self) -> WiegandDecoder:
        """The decoder."""
        return WiegandDecoder(self)


def wiegand_fields(value: int, bits: int) -> tuple[int, int]:
    """(facility, card) of a frame; a DecodeError when either parity bit is wrong."""
    return frame_fields(value, bits)


class WiegandDecoder:
    """One badge reading per frame, for the port's sensor (the door's reader)."""

    def __init__(self, config: WiegandDecoderConfig) -> None:
        self._config = config

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """The badge read, or a DecodeError (bad parity, wrong length, not a frame)."""
        value, bits = self._frame(raw.payload)
        facility, card = wiegand_fields(value, bits)
        if self._config.badge_format == "facility_card":
            badge = facility_card(facility, card)
        elif self._config.badge_format == "card":
            badge = str(card)
        else:
            badge = str((value >> 1) & ((1 << (bits - 2)) - 1))
        return [Reading(sensor=sensor, at_ns=raw.received_ns, values={"badge": badge})]

    def _frame(self, payload: bytes) -> tuple[int, int]:
        fmt, bits = self._config.format, self._config.bit_length
        if fmt == "binary":
            assert bits is not None
            if len(payload) != (bits + 7) // 8:
                raise DecodeError(f"{len(payload)} bytes; a {bits}-bit frame has {(bits + 7) // 8}")
            return int.from_bytes(payload, "big"), bits
        text = line_text(payload)
        if fmt == "bits":
            if text.strip("01"):
                raise DecodeError("a bits frame holds only '0' and '1'")
            if bits is not None and len(text) != bits:
                raise DecodeError(f"{len(text)} bits; expected {bits}")
            return int(text, 2), len(text)
        assert bits is not None
        digits = text.removeprefix("0x").removeprefix("0X")
        if not digits or len(digits) > 16 or digits.strip("0123456789abcdefABCDEF"):
            raise DecodeError("not a hex frame")
        return int(digits, 16), bits
