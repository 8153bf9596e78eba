"""Readers and panels that speak their own protocol (LLRP, OSDP, SIA DC-09): their shared contract.

Each is one module in `drivers/` with a settings model whose `type` names it and a `build()`;
`drivers/reader_kinds.py` lists them in one union. Their libraries are optional extras
(`pip install depotwatch[llrp]`): a config naming a driver whose library is missing is refused
with the command that installs it.
"""

from __future__ import annotations

import asyncio
import importlib.util
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol

from pydantic import ConfigDict, Field, model_validator

from daemon.vocabulary.readings import Reading
from daemon.vocabulary.settings import Identifier, Settings

__all__ = ["Backoff", "ReaderDriver", "ReaderLinks", "ReaderSettings", "needs_extra"]


@dataclass(frozen=True, slots=True)
class ReaderLinks:
    """Where a reader driver's output goes: all by the driver's component name."""

    # Decoded readings, taken by the pipeline (rules, then the spool).
    reading: Callable[[str, Reading], Awaitable[None]]
    # The device connected (True) or lost (False): the `input_lost` rule's input.
    state: Callable[[str, bool], None]
    # Bad input: (source, reason, payload, received ns) -> a dead letter, counted, logged once.
    reject: Callable[[str, str, bytes, int], None]
    # A fault the device reports (a panel's mains lost): (fault, subject, active, summary).
    fault: Callable[[str, str, bool, str], None]
    # A panel armed or disarmed: (storehouse, "arm" | "disarm", by whom) -> None when the
    # storehouse's zone followed, else why not.
    arm: Callable[[str, str, str], str | None]


class ReaderDriver(Protocol):
    """A running reader or panel: `run()` until cancelled, reconnecting on its own."""

    component: str
    # Set while the device is connected (a receiver: listening).
    up: asyncio.Event

    async def run(self) -> None:
        """Talk to the device until cancelled."""
        ...


class ReaderSettings(Settings):
    """Settings shared by every reader driver; strict: "5084" is not a port number."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    id: Identifier
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _backoff_order(self) -> ReaderSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is below reconnect_min_s")
        return self


def needs_extra(module: str, extra: str) -> None:
    """Refuse a driver whose library is not installed, naming the extra that brings it."""
    if importlib.util.find_spec(module) is None:
        raise ValueError(f"needs the {module} library: pip install 'depotwatch[{extra}]'")


class Backoff:
    """Capped exponential backoff with jitter; reset after a connection that stayed up."""

    def __init__(self, low_s: float, high_s: float) -> None:
        self._low, self._high = low_s, high_s
        self._next = low_s

    def reset(self) -> None:
        """The device was reachable: the next loss starts from the shortest wait."""
        self._next = self._low

    def delay(self) -> float:
        """How long to wait before the next attempt."""
        now, self._next = self._next, min(self._high, self._next * 2)
        return now * random.uniform(0.8, 1.0)
