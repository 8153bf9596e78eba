"""Helpers for line-oriented device text: ASCII lines, `key=value` pairs, loosely typed values."""

from __future__ import annotations

import math
import re
from typing import Any

from daemon.vocabulary.errors import DecodeError, ImplausibleValue
from daemon.vocabulary.readings import FieldValue
from drivers.decoders.base import FIELD_TYPES, coerce_field

__all__ = ["field_value", "line_text", "split_pairs"]

# Words boards print for a two-state input; "open"/"closed" are a door contact's own words.
_TRUE = frozenset({"1", "true", "on", "yes", "open", "high", "active", "alarm"})
_FALSE = frozenset({"0", "false", "off", "no", "closed", "low", "inactive", "normal", "ok"})
_PAIR_SEPARATORS = re.compile(r"[,;]")


def line_text(payload: bytes) -> str:
    """One line of printable ASCII (what these devices send), or a DecodeError."""
    try:
        text = payload.decode("ascii")
    except UnicodeDecodeError as exc:
        bad = payload[exc.start]
        raise DecodeError(f"not ASCII text: byte {exc.start} is 0x{bad:02X}") from exc
    text = text.strip()
    if not text:
        raise DecodeError("empty line")
    if not text.isprintable():
        raise DecodeError("control characters in the line")
    return text


def split_pairs(text: str) -> dict[str, str]:
    """`k=v k2=v2`, `k=v, k2=v2` or `Key:v, Key2:v2` as a dict with lower-case keys.

    Pairs are separated by commas or semicolons when the line has any (values may then hold
    spaces, as Alien readers' spaced EPCs do), otherwise by whitespace.
    """
    parts = _PAIR_SEPARATORS.split(text) if _PAIR_SEPARATORS.search(text) else text.split()
    pairs: dict[str, str] = {}
    for part in parts:
        part = part.strip()
        if not part:
            continue
        cut = min((i for i in (part.find("="), part.find(":")) if i > 0), default=-1)
        if cut < 0:
            raise DecodeError(f"{part[:20]!r} is not a key=value pair")
        key, value = part[:cut].strip().lower(), part[cut + 1:].strip()
        if key in pairs:
            raise DecodeError(f"key {key[:20]!r} given twice")
        pairs[key] = value
    if not pairs:
        raise DecodeError("no key=value pairs")
    return pairs


def field_value(name: str, value: Any) -> FieldValue:
    """A depotwatch field from board text or JSON: 0/1, on/off, open/closed; numbers as text."""
    kind = FIELD_TYPES[name]
    if isinstance(value, str) and kind is not str:
        token = value.strip().lower()
        if kind is bool:
            if token in _TRUE:
                return True
            if token in _FALSE:
                return False
            raise DecodeError(f"field {name!r}: {value[:20]!r} is not a two-state value")
        try:
            number = float(token)
        except ValueError as exc:
            raise DecodeError(f"field {name!r}: {value[:20]!r} is not a number") from exc
        if not math.isfinite(number):
            raise ImplausibleValue(f"field {name!r}: not a finite number")
        return number
    if kind is bool and not isinstance(value, bool) and isinstance(value, int) and value in (0, 1):
        return bool(value)
    return coerce_field(name, value)
