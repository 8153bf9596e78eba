"""UHF RFID readers in ASCII tag-report mode: EPC, antenna and RSSI per line, per reader layout."""

from __future__ import annotations

import math
from typing import Literal

from pydantic import Field, field_validator, model_validator

from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from drivers.decoders.base import EPC, DecoderConfigBase
from drivers.decoders.text import line_text, split_pairs

__all__ = ["RfidAsciiDecoder", "RfidAsciiDecoderConfig"]

_COLUMNS = ("epc", "antenna", "rssi_dbm", "")


class RfidAsciiDecoderConfig(DecoderConfigBase):
    """Tag reports such as `E200...,1,-61.5` (csv) or `Tag:E200 ..., Ant:1, Rssi:-61` (keyed)."""

    type: Literal["rfid_ascii"] = "rfid_ascii"
    # csv: fields by position (`columns`, "" skips one); keyed: `k=v` / `Key:v` pairs.
    layout: Literal["csv", "keyed"] = "csv"
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    columns: list[str] = Field(default_factory=lambda: ["epc", "antenna", "rssi_dbm"])
    # keyed layout: the reader's key for each value (case-insensitive); Alien: Tag, Ant, Rssi.
    epc_key: str = "epc"
    antenna_key: str = "ant"
    rssi_key: str = "rssi"
    # Readers that report RSSI in centi-dBm (e.g. -6150) say 0.01 here.
    rssi_scale: float = 1.0
    # Antenna number -> sensor id: a portal's inner and outer antennas on one reader. Without
    # it every read belongs to the port's sensor.
    antennas: dict[int, str] = Field(default_factory=dict)
    # Lines that carry no tag, e.g. Alien's "(No Tags)" or a prompt: no reading, no error.
    ignore: list[str] = Field(default_factory=list)

    @field_validator("columns")
    @classmethod
    def _known_columns(cls, value: list[str]) -> list[str]:
        unknown = sorted(set(value) - set(_COLUMNS))
        if unknown:
            raise ValueError(f"unknown column(s) {unknown}; known: epc, antenna, rssi_dbm, \"\"")
        if value.count("epc") != 1 or value.count("antenna") > 1 or value.count("rssi_dbm") > 1:
            raise ValueError("exactly one 'epc' column and at most one 'antenna' and 'rssi_dbm'")
        return value

    @model_validator(mode="after")
    def _scale(self) -> RfidAsciiDecoderConfig:
        if not math.isfinite(self.rssi_scale) or self.rssi_scale == 0:
            raise ValueError("rssi_scale must be a finite number other than 0")
        return self

    def build(self) -> RfidAsciiDecoder:
        """The decoder."""
        return RfidAsciiDecoder(self)


class RfidAsciiDecoder:
    """One tag read per line: {"epc", "rssi_dbm"} for the antenna's sensor."""

    def __init__(self, config: RfidAsciiDecoderConfig) -> None:
        self._config = config
        self._ignore = tuple(config.ignore)

    def decode(self, raw: RawMessage, sensor: str) -> list[Reading]:
        """The tag read, nothing for an ignored line, or a DecodeError."""
        text = line_text(raw.payload)
        if self._ignore and text.startswith(self._ignore):
            return []
        epc, antenna, rssi = self._split(text)
        epc = "".join(epc.split()).upper()
        if not EPC.match(epc):
            raise DecodeError("EPC is not 8 to 64 hex digits")
        values: dict[str, FieldValue] = {"epc": epc}
        if rssi is not None:
            values["rssi_dbm"] = self._rssi(rssi)
        if self._config.antennas:
            if antenna is None:
                raise DecodeError("no antenna number in the tag report")
            number = self._antenna(antenna)
            if number not in self._config.antennas:
                raise DecodeError(f"antenna {number} is not in the decoder's 'antennas'")
            sensor = self._config.antennas[number]
        if not sensor:
            raise DecodeError("no sensor: the port has no 'sensor' and the decoder no 'antennas'")
        return [Reading(sensor=sensor, at_ns=raw.received_ns, values=values)]

    def _split(self, text: str) -> tuple[str, str | None, str | None]:
        config = self._config
        if config.layout == "keyed":
            pairs = split_pairs(text)
            if config.epc_key.lower() not in pairs:
                raise DecodeError(f"no {config.epc_key!r} in the tag report")
            return (pairs[config.epc_key.lower()], pairs.get(config.antenna_key.lower()),
                    pairs.get(config.rssi_key.lower()))
        cells = [cell.strip() for cell in text.split(config.delimiter)]
        if len(cells) != len(config.columns):
            raise DecodeError(f"{len(cells)} columns; the layout has {len(config.columns)}")
        named = dict(zip(config.columns, cells, strict=True))
        return named["epc"], named.get("antenna"), named.get("rssi_dbm")

    def _antenna(self, text: str) -> int:
        if not text.isdigit() or len(text) > 3:
            raise DecodeError(f"antenna {text[:10]!r} is not a number")
        return int(text)

    def _rssi(self, text: str) -> float:
        try:
            rssi = float(text) * self._config.rssi_scale
        except ValueError as exc:
            raise DecodeError(f"RSSI {text[:10]!r} is not a number") from exc
        if not math.isfinite(rssi):
            raise DecodeError("RSSI is not a finite number")
        return rssi
