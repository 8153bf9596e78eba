"""The registry of decoders: the discriminated union of their configs."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from drivers.decoders.availability import AvailabilityDecoderConfig
from drivers.decoders.esphome import EsphomeDecoderConfig
from drivers.decoders.io_board import IoBoardDecoderConfig
from drivers.decoders.json_fields import JsonFieldsDecoderConfig
from drivers.decoders.keypad_lines import KeypadLinesDecoderConfig
from drivers.decoders.plain import PlainDecoderConfig
from drivers.decoders.rfid_ascii import RfidAsciiDecoderConfig
from drivers.decoders.tasmota import TasmotaDecoderConfig
from drivers.decoders.wiegand import WiegandDecoderConfig
from drivers.decoders.zigbee2mqtt import Zigbee2MqttDecoderConfig

__all__ = ["DECODER_KINDS", "DecoderConfig"]

# One line per decoder: adding one is its module, this line and its test.
DECODER_KINDS = (Zigbee2MqttDecoderConfig, TasmotaDecoderConfig, JsonFieldsDecoderConfig,
                 IoBoardDecoderConfig, WiegandDecoderConfig, RfidAsciiDecoderConfig,
                 EsphomeDecoderConfig, KeypadLinesDecoderConfig, PlainDecoderConfig,
                 AvailabilityDecoderConfig)

DecoderConfig = Annotated[
    Zigbee2MqttDecoderConfig | TasmotaDecoderConfig | JsonFieldsDecoderConfig
    | IoBoardDecoderConfig | WiegandDecoderConfig | RfidAsciiDecoderConfig
    | EsphomeDecoderConfig | KeypadLinesDecoderConfig | PlainDecoderConfig
    | AvailabilityDecoderConfig,
    Field(discriminator="type"),
]
