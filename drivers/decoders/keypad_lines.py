"""Serial keypads and reader panels that print each code entry as a line: `ARM 1234`,
`K2 DISARM 1234`, `PANIC` (RS-232/RS-485 keypad interfaces, Wiegand-to-serial converters in
ASCII mode). The code becomes the reading's `badge`, checked against the roster by the zone rule.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.base import DecoderConfigBase
from drivers.decoders.text import line_text

__all__ = ["KeypadLinesDecoder", "KeypadLinesDecoderConfig"]

# `[keypad] ACTION [code]`: an optional keypad name, a word, an optional code of 4-12 digits.
_PATTERN = (r"^(?:(?P<keypad>[A-Za-z0-9_-]{1,32})\s+)?(?P<action>[A-Za-z]{1,16})"
            r"(?:\s+(?P<code>[0-9]{4,12}))?$")
_Action = Literal["arm", "disarm", "panic"]
_ACTIONS: dict[str, _Action] = {"arm": "arm", "away": "arm", "stay": "arm", "disarm": "disarm",
                                "off": "disarm", "panic": "panic", "sos": "panic"}


class KeypadLinesDecoderConfig(DecoderConfigBase):
    """Keypad lines matched by `pattern` (named groups `action`, `code`, optionally `keypad`)."""

    type: Literal["keypad_lines"] = "keypad_lines"
    pattern: str = _PATTERN
    # The keypad's word (any case) -> `arm`, `disarm` or `panic`.
    actions: dict[str, _Action] = Field(
        default_factory=lambda: dict(_ACTIONS))
    # The keypad's name on the line -> sensor id; without it the name is the sensor id, and a
    # line naming none belongs to the port's sensor.
    keypads: dict[str, str] = Field(default_factory=dict)
    # Lines that carry no entry (a prompt, "READY"): no reading, no error.
    ignore: list[str] = Field(default_factory=list)

    @field_validator("pattern")
    @classmethod
    def _groups(cls, value: str) -> str:
        try:
            groups = re.compile(value).groupindex
        except re.error as exc:
            raise ValueError(f"not a regular expression: {exc}") from exc
        if "action" not in groups:
            raise ValueError("the pattern needs a named group 'action'")
        return value

    @field_validator("actions")
    @classmethod
    def _lower(cls, value: dict[str, _Action]) -> dict[str, _Action]:
        return {word.lower(): action for word, action in value.items()}

    def build(self) -> KeypadLinesDecoder:
        """The decoder."""
        return KeypadLinesDecoder(self)


class KeypadLinesDecoder:
    """One entry per line: {"action", "badge"} to arm or disarm, {"panic": true} for a panic."""

    def __init__(self, config: KeypadLinesDecoderConfig) -> None:
        self._config = config
        self._pattern = re.compile(config.pattern)
        self._ignore = tuple(config.ignore)

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """The entry, nothing for an ignored line, or a DecodeError (which never quotes the
        code: it is a person's secret)."""
        text = line_text(raw.payload)
        if self._ignore and text.startswith(self._ignore):
            return []
        found = self._pattern.match(text)
        if found is None:
            raise DecodeError("not a keypad entry line")
        groups = found.groupdict()
        word = (groups.get("action") or "").lower()
        action = self._config.actions.get(word)
        if action is None:
            raise DecodeError(f"unknown keypad action {word[:16]!r}")
        sensor = self._sensor(groups.get("keypad"), sensor)
        if action == "panic":
            return [Reading(sensor=sensor, at_ns=raw.received_ns, values={"panic": True})]
        code = groups.get("code")
        if not code:
            raise DecodeError(f"{action} without a code")
        values: dict[str, FieldValue] = {"action": action, "badge": code}
        return [Reading(sensor=sensor, at_ns=raw.received_ns, values=values)]

    def _sensor(self, keypad: str | None, port_sensor: str) -> str:
        if keypad:
            if not self._config.keypads:
                return keypad
            if keypad not in self._config.keypads:
                raise DecodeError(f"keypad {keypad[:32]!r} is not in the decoder's 'keypads'")
            return self._config.keypads[keypad]
        if not port_sensor:
            raise DecodeError("no keypad: the line names none and the port has no 'sensor'")
        return port_sensor
