"""A GSM modem through Gammu (python-gammu): send texts, read replies, report the modem's state.

Gammu's calls block (an AT modem answers in hundreds of milliseconds, a send in seconds), so
one thread owns the modem and every call is queued to it: the event loop never waits on the
serial line, and two calls never interleave on one modem. A call that fails with a
connection error drops the connection; the next call opens it again, so a modem unplugged
and plugged back (or re-enumerated by udev) comes back without a restart.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from daemon.vocabulary.errors import NotifierError

__all__ = ["GsmModem", "ModemState", "ReceivedText", "modem_settings"]

log = logging.getLogger(__name__)

T = TypeVar("T")

# What Gammu's GetNetworkInfo calls a modem that can send (home network or roaming).
_REGISTERED = frozenset({"HomeNetwork", "RoamingNetwork"})


@dataclass(frozen=True, slots=True)
class ReceivedText:
    """A text message the modem received: who from, what, and when the network says."""

    number: str
    text: str
    sent_at: dt.datetime | None


@dataclass(frozen=True, slots=True)
class ModemState:
    """What the modem says of itself: signal, network registration and the SIM."""

    signal_percent: int
    network: str
    registered: bool
    sim: str  # "ready", or what the SIM waits for (PIN, PUK...)

    def trouble(self) -> str | None:
        """Why the modem cannot send now, or None when it can."""
        if self.sim != "ready":
            return f"SIM not ready (waits for {self.sim})"
        if not self.registered:
            return f"not registered on a network ({self.network})"
        return None


def modem_settings(device: str, connection: str, model: str = "",
                   gammurc: Path | None = None) -> dict[str, str]:
    """Gammu's settings for one modem: from a gammurc file's first section, else the device."""
    if gammurc is not None:
        return {"gammurc": str(gammurc)}
    return {"Device": device, "Connection": connection, "Model": model}


class GsmModem:
    """One modem, driven from one thread; every method is a coroutine of the event loop."""

    def __init__(self, settings: dict[str, str], name: str) -> None:
        self.name = name
        self._settings = settings
        self._thread = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix=f"modem-{name}")
        self._machine: Any = None  # gammu.StateMachine, opened in the modem's thread

    async def _call(self, work: Callable[[Any], T]) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._thread, self._in_thread, work)

    def _in_thread(self, work: Callable[[Any], T]) -> T:
        import gammu  # here: only gateways with a modem need python-gammu

        try:
            if self._machine is None:
                self._machine = self._open(gammu)
            return work(self._machine)
        except gammu.GSMError as exc:
            # Any modem error may leave the line in an unknown state: open it afresh next time.
            self._close()
            raise NotifierError(f"modem {self.name}: {_gammu_reason(exc)}",
                                retryable=True) from exc

    def _open(self, gammu: Any) -> Any:
        machine = gammu.StateMachine()
        if "gammurc" in self._settings:
            machine.ReadConfig(Filename=self._settings["gammurc"])
        else:
            machine.SetConfig(0, self._settings)
        machine.Init()
        log.info("modem %s connected", self.name)
        return machine

    def _close(self) -> None:
        machine, self._machine = self._machine, None
        if machine is None:
            return
        try:
            machine.Terminate()
        except Exception as exc:  # a modem already gone cannot be told goodbye
            log.debug("modem %s: terminate: %s", self.name, exc)

    async def send(self, number: str, parts: list[str]) -> None:
        """Send each part as one text to `number`; NotifierError(retryable) when the modem
        cannot."""

        def send_all(machine: Any) -> None:
            for part in parts:
                machine.SendSMS({"Text": part, "SMSC": {"Location": 1}, "Number": number})

        await self._call(send_all)

    async def take_received(self) -> list[ReceivedText]:
        """The texts in the modem's inboxes, deleted from it once read (read once, kept in
        the audit log by whoever takes them)."""
        return await self._call(_take_inbox)

    async def state(self) -> ModemState:
        """Signal, registration and SIM state."""
        return await self._call(_modem_state)

    async def close(self) -> None:
        """Close the modem and its thread."""
        await asyncio.get_running_loop().run_in_executor(self._thread, self._close)
        self._thread.shutdown(wait=False)


def _take_inbox(machine: Any) -> list[ReceivedText]:
    import gammu

    texts: list[ReceivedText] = []
    read: list[tuple[int, int]] = []
    try:
        parts = machine.GetNextSMS(Start=True, Folder=0)
        while True:
            # A long reply comes as several parts; each is a message of its own here (an ACK
            # is short).
            for part in parts:
                read.append((part["Folder"], part["Location"]))
                if part.get("Type") == "Deliver":
                    texts.append(ReceivedText(str(part.get("Number", "")),
                                              str(part.get("Text", "")), part.get("DateTime")))
            parts = machine.GetNextSMS(Location=parts[0]["Location"], Folder=0)
    except gammu.ERR_EMPTY:
        pass
    # Deleted once all are read, so that none is taken twice (nor skipped by a location
    # that moved under the walk).
    for folder, location in read:
        machine.DeleteSMS(Folder=folder, Location=location)
    return texts


def _modem_state(machine: Any) -> ModemState:
    signal = machine.GetSignalQuality()
    network = machine.GetNetworkInfo()
    waits = machine.GetSecurityStatus()  # None: the SIM needs no code
    state = str(network.get("State", "unknown"))
    return ModemState(signal_percent=int(signal.get("SignalPercent", 0)), network=state,
                      registered=state in _REGISTERED, sim="ready" if waits is None else waits)


def _gammu_reason(exc: Exception) -> str:
    # Gammu's errors carry a dict: {'Text': 'No response in specified timeout...', 'Code': 14}.
    detail = exc.args[0] if exc.args else None
    if isinstance(detail, dict) and "Text" in detail:
        return f"{detail['Text']} (Gammu {type(exc).__name__})"
    return f"{type(exc).__name__}: {exc}"
