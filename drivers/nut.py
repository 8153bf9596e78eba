"""A UPS through Network UPS Tools: the NUT network protocol spoken to `upsd` over TCP.

The protocol (NUT's docs/net-protocol.txt) is line-based: `LIST UPS` names the UPSes upsd
serves, `LIST VAR <ups>` their variables, one `VAR <ups> <name> "<value>"` line each, between
`BEGIN LIST ...` and `END LIST ...`; a refusal is one `ERR <reason>` line. A read-only client
needs no login; `USERNAME`/`PASSWORD` are sent when configured (upsd's ACL may ask for them).
"""

from __future__ import annotations

import asyncio
import shlex
from dataclasses import dataclass

from pydantic import Field, SecretStr

from daemon.vocabulary.errors import DriverError
from daemon.vocabulary.settings import Settings

__all__ = ["NUT_PORT", "NutError", "UpsConfig", "UpsState", "read_ups", "ups_state"]

# IANA's port for NUT (upsd's default LISTEN port).
NUT_PORT = 3493
# A line longer than this is not NUT talking.
_MAX_LINE = 4096


class NutError(DriverError):
    """upsd unreachable, refusing (`ERR ...`), or not speaking NUT."""


class UpsConfig(Settings):
    """Where the gateway's UPS is read: upsd's address and the UPS's name there."""

    host: str = "127.0.0.1"
    port: int = Field(default=NUT_PORT, ge=1, le=65535)
    # The UPS's name in upsd (ups.conf's section); None: the first one upsd lists.
    name: str | None = None
    username: str | None = None
    password: SecretStr | None = None
    timeout_s: float = Field(default=5.0, gt=0)


@dataclass(frozen=True, slots=True)
class UpsState:
    """A UPS as the gateway records it: on mains or battery, battery low, charge, runtime."""

    ups: str
    status: str
    on_battery: bool
    battery_low: bool
    charge_pct: float | None
    runtime_s: float | None

    def values(self) -> dict[str, float | bool]:
        """Reading values (a field never changes type: numbers are floats, flags are bools)."""
        out: dict[str, float | bool] = {"on_mains": not self.on_battery,
                                        "on_battery": self.on_battery,
                                        "battery_low": self.battery_low}
        if self.charge_pct is not None:
            out["charge_pct"] = self.charge_pct
        if self.runtime_s is not None:
            out["runtime_s"] = self.runtime_s
        return out


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def ups_state(ups: str, variables: dict[str, str]) -> UpsState:
    """A UPS's state from its NUT variables (`ups.status` flags: OL on line, OB on battery,
    LB low battery; NUT's docs/new-drivers.txt)."""
    status = variables.get("ups.status", "")
    flags = set(status.split())
    # Neither on line nor on battery: upsd has no data from its driver yet (`WAIT`), or the
    # UPS says nothing usable; not "on mains".
    if not flags & {"OL", "OB"}:
        raise NutError(f"UPS {ups}: status {status or 'missing'!r}, neither OL nor OB")
    return UpsState(ups=ups, status=status, on_battery="OB" in flags,
                    battery_low="LB" in flags,
                    charge_pct=_number(variables.get("battery.charge")),
                    runtime_s=_number(variables.get("battery.runtime")))


class _Session:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def line(self) -> str:
        raw = await self.reader.readline()
        if not raw:
            raise NutError("upsd closed the connection")
        if len(raw) > _MAX_LINE or not raw.endswith(b"\n"):
            raise NutError("upsd sent an over-long or cut line")
        text = raw.decode("utf-8", "replace").rstrip("\r\n")
        if text.startswith("ERR "):
            raise NutError(f"upsd refused: {text[4:]}")
        return text

    async def ask(self, command: str) -> str:
        self.writer.write(command.encode() + b"\n")
        await self.writer.drain()
        return await self.line()

    async def listing(self, what: str) -> list[list[str]]:
        first = await self.ask(f"LIST {what}")
        if first != f"BEGIN LIST {what}":
            raise NutError(f"not a NUT answer to LIST {what}: {first[:80]!r}")
        rows: list[list[str]] = []
        while (text := await self.line()) != f"END LIST {what}":
            try:
                rows.append(shlex.split(text))
            except ValueError as exc:
                raise NutError(f"unreadable NUT line {text[:80]!r}") from exc
        return rows


async def _read(config: UpsConfig) -> UpsState:
    reader, writer = await asyncio.open_connection(config.host, config.port)
    session = _Session(reader, writer)
    try:
        if config.username is not None:
            await session.ask(f"USERNAME {config.username}")
        if config.password is not None:
            await session.ask(f"PASSWORD {config.password.get_secret_value()}")
        name = config.name
        if name is None:
            upses = [row[1] for row in await session.listing("UPS") if len(row) >= 2]
            if not upses:
                raise NutError("upsd serves no UPS")
            name = upses[0]
        rows = await session.listing(f"VAR {name}")
        with_values = (row for row in rows if len(row) == 4 and row[0] == "VAR")
        variables = {row[2]: row[3] for row in with_values}
        writer.write(b"LOGOUT\n")
        return ups_state(name, variables)
    finally:
        writer.close()


async def read_ups(config: UpsConfig) -> UpsState:
    """Ask upsd for the UPS's state now; raises `NutError`."""
    where = f"upsd {config.host}:{config.port}"
    try:
        return await asyncio.wait_for(_read(config), config.timeout_s)
    except NutError as exc:
        raise NutError(f"{where}: {exc}") from exc
    except (OSError, TimeoutError) as exc:
        raise NutError(f"{where} unreachable: {exc or 'timed out'}") from exc
