"""The registry of reader and panel drivers: one line per driver in `ReaderConfig`."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from drivers.llrp import LlrpReaderConfig
from drivers.osdp import OsdpPanelConfig
from drivers.sia import SiaReceiverConfig

__all__ = ["ReaderConfig"]

ReaderConfig = Annotated[
    LlrpReaderConfig
    | OsdpPanelConfig
    | SiaReceiverConfig,
    Field(discriminator="type"),
]
