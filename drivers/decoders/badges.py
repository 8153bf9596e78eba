"""Badge numbers in one canonical form, whatever the reader sends (README "Badge numbers").

Two forms, so that a roster entry matches every reader that reads the same credential:
- a Wiegand credential with a facility code (26-bit H10301, 34-bit H10306, 37-bit H10304):
  `<facility>/<card>`, both decimal, no leading zeros: facility 12 card 3456 is `12/3456`,
  whether it comes as a frame with parity bits, as the data bits alone (Tasmota's `UID`), or
  as a facility and a card number;
- a card serial number or UID without a facility code (MIFARE, DESFire, EM4100, decimal or
  hex as the reader prints it): `uid:<HEX>`, upper-case hex in whole bytes, no leading zero
  byte: decimal 3456789 and hex `0x34bf15` are both `uid:34BF15`.
"""

from __future__ import annotations

import re
from typing import Literal

from daemon.vocabulary.errors import DecodeError

# How a reader writes the badge number it read: `as_read` leaves it (keypad codes, roster
# entries written the reader's way); the others make the canonical form.
BadgeForm = Literal["as_read", "facility_card", "uid_decimal", "uid_hex", "wiegand26_data",
                    "wiegand34_data", "wiegand37_data"]
# "12/3456", "12:3456", "012-03456", "12,3456": a facility and a card number.
_FACILITY_CARD = re.compile(r"^\s*(\d{1,5})\s*[/:,-]\s*(\d{1,8})\s*$", re.ASCII)

__all__ = ["FACILITY_BITS", "BadgeForm", "data_badge", "facility_card", "frame_fields",
           "read_badge", "roster_badge", "uid_badge"]

# Data bits of the facility code per frame length; the card number takes the rest between
# the two parity bits (HID "Understanding Card Data Formats", 2006: H10301, H10306, H10304).
FACILITY_BITS = {26: 8, 34: 16, 37: 16}
# A UID longer than this (DESFire: 7 bytes, ISO 14443 triple size: 10) is not a UID.
_MAX_UID_BYTES = 10


def facility_card(facility: int, card: int) -> str:
    """The canonical form of a facility code and card number."""
    if facility < 0 or card < 0 or facility >= 1 << 16 or card >= 1 << 24:
        raise DecodeError("facility or card number out of range")
    return f"{facility}/{card}"


def frame_fields(value: int, bits: int) -> tuple[int, int]:
    """(facility, card) of a whole frame, parity bits included; a DecodeError for bad parity."""
    if bits not in FACILITY_BITS:
        raise DecodeError(f"{bits}-bit frames are not Wiegand 26, 34 or 37")
    if value < 0 or value >> bits:
        raise DecodeError(f"value does not fit in {bits} bits")
    data_bits = bits - 2
    data = (value >> 1) & ((1 << data_bits) - 1)
    leading, trailing = value >> (bits - 1), value & 1
    # Even parity covers the first half of the data bits and odd parity the second; the
    # 37-bit layout has an odd count, and both halves take its middle bit (18 and 18).
    half = (data_bits + 1) // 2
    first, second = data >> (data_bits - half), data & ((1 << half) - 1)
    if (leading + first.bit_count()) % 2 != 0:
        raise DecodeError(f"Wiegand {bits}: even parity bit wrong; not a badge")
    if (trailing + second.bit_count()) % 2 != 1:
        raise DecodeError(f"Wiegand {bits}: odd parity bit wrong; not a badge")
    return _split(data, bits)


def data_badge(data: int, bits: int) -> str:
    """The canonical form of a frame's data bits without parity (Tasmota's `UID` and `Size`)."""
    if bits not in FACILITY_BITS:
        raise DecodeError(f"{bits}-bit frames are not Wiegand 26, 34 or 37")
    if data < 0 or data >> (bits - 2):
        raise DecodeError(f"value does not fit in the {bits - 2} data bits of a {bits}-bit frame")
    return facility_card(*_split(data, bits))


def _split(data: int, bits: int) -> tuple[int, int]:
    card_bits = bits - 2 - FACILITY_BITS[bits]
    return data >> card_bits, data & ((1 << card_bits) - 1)


def uid_badge(uid: int | str, base: int = 16) -> str:
    """The canonical form of a serial number or UID: an int, or text in `base` (10 or 16; a
    `0x` prefix, spaces and colons between hex bytes are allowed)."""
    if isinstance(uid, bool):
        raise DecodeError("a UID is a number, not true/false")
    if isinstance(uid, str):
        text = uid.strip().replace(":", "").replace(" ", "").replace("-", "")
        if text[:2] in ("0x", "0X"):
            text, base = text[2:], 16
        digits = "0123456789" if base == 10 else "0123456789abcdefABCDEF"
        if not text or len(text) > 2 * _MAX_UID_BYTES + 4 or text.strip(digits):
            raise DecodeError(f"badge UID is not a {'decimal' if base == 10 else 'hex'} number")
        uid = int(text, base)
    if uid < 0 or uid >= 1 << (8 * _MAX_UID_BYTES):
        raise DecodeError("badge UID out of range")
    hex_digits = f"{uid:X}"
    return "uid:" + hex_digits.zfill(len(hex_digits) + len(hex_digits) % 2)


def read_badge(value: str | int, form: BadgeForm) -> str:
    """A badge number as a reader wrote it, in the canonical form `form` says it is in."""
    if form == "as_read":
        return str(value)
    if form == "facility_card":
        match = _FACILITY_CARD.match(str(value))
        if match is None:
            raise DecodeError("badge is not a facility and card number (12/3456)")
        return facility_card(int(match.group(1)), int(match.group(2)))
    if form in ("uid_decimal", "uid_hex"):
        return uid_badge(value, 10 if form == "uid_decimal" else 16)
    bits = int(form.removeprefix("wiegand")[:2])
    text = str(value).strip()
    if not (text.isascii() and text.isdigit()) or len(text) > 12:
        raise DecodeError(f"badge is not the decimal data bits of a {bits}-bit frame")
    return data_badge(int(text), bits)


def roster_badge(text: str) -> str:
    """A roster entry in the canonical form where it is one of the two (`012/03456` is
    `12/3456`, `uid:04a2` is `uid:04A2`); any other entry (a code, a card number) as written."""
    match = _FACILITY_CARD.match(text)
    if match is not None and "/" in text:
        return f"{int(match.group(1))}/{int(match.group(2))}"
    if text.strip().lower().startswith("uid:"):
        try:
            return uid_badge(text.strip()[4:])
        except DecodeError:
            return text
    return text
