"""The decoder contract and the typed fields a reading may carry."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from typing import Any, Protocol

import orjson
from pydantic import BaseModel, ConfigDict

from daemon.vocabulary.errors import DecodeError, ImplausibleValue
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading

__all__ = [
    "EPC",
    "FIELD_TYPES",
    "SECURITY_FIELDS",
    "SKIPPED",
    "UNHANDLED",
    "Decoder",
    "DecoderConfigBase",
    "coerce_field",
    "field_text",
    "known_fields",
    "parse_json_object",
    "parse_json_value",
]

# EPC-96 is 24 hex digits; EPC memory holds up to 496 bits. Items in the register: 8 to 64.
EPC = re.compile(r"^[0-9A-F]{8,64}$")

# The InfluxDB schema promises a field never changes type, so every field is typed here once.
FIELD_TYPES: dict[str, type] = {
    "temperature_c": float,
    "humidity_pct": float,
    "battery_pct": float,
    "open": bool,
    "tamper": bool,
    "battery_low": bool,
    # Interior detectors, smoke and panic inputs: true while detecting.
    "motion": bool,
    "vibration": bool,
    "glass_break": bool,
    "smoke": bool,
    "panic": bool,
    # A grade 3 detector's anti-mask output: true while it is covered or sprayed (cannot see).
    "masked": bool,
    # A water-leak probe: true while wet.
    "water_leak": bool,
    # A keypad's request: `arm` or `disarm` (with the `badge` or code that asked).
    "action": str,
    # Badge number as read (kept in memory only; never logged or written in clear).
    "badge": str,
    # RFID tag EPC, hex; normalised to upper case.
    "epc": str,
    "rssi_dbm": float,
}


# Fields that name a security state: never a mere heartbeat. A reading that carries one for a
# sensor whose kind has no rule reading it is counted as an "unhandled field" (issue 26).
SECURITY_FIELDS = frozenset({"open", "tamper", "smoke", "water_leak", "motion", "vibration",
                             "glass_break", "panic", "action"})
# Reading values that are notes for the gateway, never stored nor judged: what a decoder found
# but could not use (`UNHANDLED`: "action=single"), and a value it skipped (`SKIPPED`: a probe
# that reported null). A reading holding only `SKIPPED` is no sign of life.
UNHANDLED = "unhandled_field"
SKIPPED = "skipped_value"


class Decoder(Protocol):
    """Turns one raw message into readings, or raises DecodeError."""

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """Readings in the payload; `sensor` is the id the route took from the topic."""
        ...


class DecoderConfigBase(BaseModel):
    """Shared pydantic settings for decoder configs: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def known_fields(mapping: dict[str, str]) -> dict[str, str]:
    """Validator for a decoder's field mapping: every target must be a depotwatch field."""
    unknown = sorted(set(mapping) - set(FIELD_TYPES))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown}; known: {sorted(FIELD_TYPES)}")
    return mapping


def coerce_field(name: str, value: Any) -> FieldValue:
    """Check one value against its field's type; a wrong type is a DecodeError, never a guess."""
    kind = FIELD_TYPES[name]
    # The common cases first (a JSON float for a number field, a JSON bool for a flag): the
    # same results as the checks below, without their isinstance calls on every reading.
    value_type = type(value)
    if kind is float:
        if value_type is float and math.isfinite(value):
            return value  # type: ignore[no-any-return]
        if value_type is int and -(2**53) <= value <= 2**53:  # a JSON integer (a battery level)
            return float(value)
    if kind is bool and value_type is bool:
        return value  # type: ignore[no-any-return]
    if kind is str:
        if value_type is not str and (isinstance(value, bool) or not isinstance(value, int)):
            raise DecodeError(f"field {name!r}: expected text, got {type(value).__name__}")
        return field_text(name, str(value))
    if kind is bool:
        raise DecodeError(f"field {name!r}: expected true/false, got {type(value).__name__}")
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise DecodeError(f"field {name!r}: expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError as exc:  # an integer too large for a float
        raise ImplausibleValue(f"field {name!r}: number out of range") from exc
    if not math.isfinite(number):
        raise ImplausibleValue(f"field {name!r}: not a finite number")
    return number


def field_text(name: str, value: str) -> str:
    """A text field checked: an EPC is 8 to 64 hex digits (upper case), other text is printable.

    Field identifiers go on into alert keys, MQTT topics, line-protocol tags, logs and the
    console: a tag that reads `E280#+` or carries a NUL must stop here, as a dead letter.
    """
    text = value.strip()
    if name == "epc":
        text = "".join(text.split()).upper()
        if not EPC.match(text):
            raise DecodeError(f"field 'epc': not 8 to 64 hex digits ({text[:80]!r})")
        return text
    if not text or len(text) > 128:
        raise DecodeError(f"field {name!r}: empty or longer than 128 characters")
    if not text.isprintable():
        raise DecodeError(f"field {name!r}: control or unprintable characters")
    return text


# orjson reads an integer beyond 64 bits as a float, json as an int (a badge number may be one).
# Integers from -2**63 to 2**64 stay ints, so only a float of at least 2**63 in size can be one;
# a payload with such a float takes json's path. Looking at the values costs less than searching
# every payload's bytes for a run of digits (every RFID read has one, inside its EPC string).
_INT_FLOAT_LIMIT = float(2**63)


def _may_be_big_int(values: Iterable[Any]) -> bool:
    for v in values:
        kind = type(v)
        if kind is float:
            if not -_INT_FLOAT_LIMIT < v < _INT_FLOAT_LIMIT:
                return True
        elif kind is dict:
            if _may_be_big_int(v.values()):
                return True
        elif kind is list and _may_be_big_int(v):
            return True
    return False


def parse_json_object(payload: bytes) -> dict[str, Any]:
    """A JSON object from a payload, or a DecodeError saying what was wrong."""
    value: Any
    try:
        # orjson (5-6x faster, bench/depot.py) gives the same values as json.loads for every
        # payload it accepts; what it refuses (bad UTF-8, NaN, lone surrogates, bad JSON) goes
        # through json.loads, which accepts some of it and words the errors.
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value = _loads(payload)
        if _has_lone_surrogate(value):
            # json.loads takes "\ud800" alone; such a string is not Unicode text, and the
            # spool's SQLite and the writers' UTF-8 would refuse it later, with a whole commit.
            raise DecodeError(
                "a string holds a lone UTF-16 surrogate: not valid Unicode text") from None
    else:
        try:
            # A flat object (most payloads) is looked at here, without a call and a list.
            if type(value) is dict:
                exact = True
                for v in value.values():
                    kind = type(v)
                    if kind is float:
                        if not -_INT_FLOAT_LIMIT < v < _INT_FLOAT_LIMIT:
                            exact = False
                            break
                    elif (kind is dict or kind is list) and _may_be_big_int([v]):
                        exact = False
                        break
            else:
                exact = not _may_be_big_int([value])
        except RecursionError:  # nested deeper than Python's stack: json.loads says so
            exact = False
        if not exact:
            value = _loads(payload)
    if not isinstance(value, dict):
        raise DecodeError(f"expected a JSON object, got {type(value).__name__}")
    return value


def _has_lone_surrogate(value: Any) -> bool:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode()
            except UnicodeEncodeError:
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _loads(payload: bytes) -> Any:
    try:
        # Decode first: json.loads on bytes guesses UTF-16/32 from the first bytes.
        return json.loads(payload.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise DecodeError(f"not UTF-8 text: {exc.reason} at byte {exc.start}") from exc
    except json.JSONDecodeError as exc:
        raise DecodeError(f"not JSON: {exc.msg} at line {exc.lineno} column {exc.colno}") from exc
    except RecursionError as exc:
        raise DecodeError("JSON nested too deeply") from exc
    except ValueError as exc:  # an integer of more than 4,300 digits (int_max_str_digits)
        raise DecodeError(f"a number out of range ({str(exc)[:80]})") from exc


def parse_json_value(payload: bytes) -> Any:
    """A JSON object or array from a payload (tag-read batches are arrays), or a DecodeError."""
    try:
        value = orjson.loads(payload)
    except orjson.JSONDecodeError:
        value = _loads(payload)
        if _has_lone_surrogate(value):
            raise DecodeError(
                "a string holds a lone UTF-16 surrogate: not valid Unicode text") from None
        return value
    try:
        exact = not _may_be_big_int([value])
    except RecursionError:
        exact = False
    return value if exact else _loads(payload)
