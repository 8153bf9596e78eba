"""Modbus RTU polling of RS-485 sensors (temperature/humidity transmitters, I/O modules), pymodbus.

One `ModbusBus` per RS-485 line polls each configured slave at its interval and turns its
registers into a Reading. A slave that does not answer produces nothing, so the `sensor_silent`
rule reports it; a bus whose adapter disappears is reported down (`input_lost`) and reopened
with backoff. Responses with a bad CRC are counted (pymodbus drops them; the poll times out).
"""

from __future__ import annotations

import asyncio
import logging
import math
import random
import struct
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, field_validator, model_validator

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import PortLost
from daemon.vocabulary.readings import FieldValue, Reading
from daemon.vocabulary.settings import Identifier, Settings
from drivers.decoders.base import FIELD_TYPES
from drivers.serial import LineSettings

if TYPE_CHECKING:  # pymodbus itself is imported when a bus runs (drivers/modbus_rtu.py)
    from pymodbus.client import AsyncModbusSerialClient
    from pymodbus.pdu import ModbusPDU

__all__ = ["ModbusBus", "ModbusBusConfig", "ModbusSensorConfig", "RegisterConfig",
           "modbus_source"]

log = logging.getLogger(__name__)

_WIDTH = {"int16": 1, "uint16": 1, "int32": 2, "uint32": 2, "float32": 2}
# Modbus Application Protocol V1.1b3 6.3/6.4 and 6.1/6.2: most registers / bits per read.
_MAX_REGISTERS = 125
_MAX_BITS = 2000
_REGISTER_TABLES = ("holding", "input")
_CRC_LOG_INTERVAL_S = 60.0
# A bus that stayed open this long was healthy: the next loss starts the backoff afresh.
_STABLE_S = 10.0


def modbus_source(bus_id: str) -> str:
    """The gateway component name of a bus."""
    return f"modbus:{bus_id}"


class RegisterConfig(Settings):
    """One value of a slave: table, address (0-based, as on the wire), type, scale and offset."""

    field: str
    table: Literal["holding", "input", "coil", "discrete"] = "input"
    address: int = Field(ge=0, le=65535)
    type: Literal["int16", "uint16", "int32", "uint32", "float32"] = "int16"
    # Which 16-bit word of a 32-bit value comes first on the wire.
    word_order: Literal["big", "little"] = "big"
    # value = raw * scale + offset, e.g. 0.1 for a transmitter reporting 215 for 21.5 °C.
    scale: float = 1.0
    offset: float = 0.0
    # For true/false fields: a normally-closed contact reads 1 when the door is shut.
    invert: bool = False

    @field_validator("field")
    @classmethod
    def _typed_field(cls, value: str) -> str:
        if value not in FIELD_TYPES or FIELD_TYPES[value] is str:
            known = sorted(k for k, t in FIELD_TYPES.items() if t is not str)
            raise ValueError(f"unknown or text field {value!r}; known: {known}")
        return value

    @model_validator(mode="after")
    def _fits(self) -> RegisterConfig:
        if self.table not in _REGISTER_TABLES and FIELD_TYPES[self.field] is not bool:
            raise ValueError(f"a {self.table} is one bit: only true/false fields read it")
        if self.address + _WIDTH[self.type] > 65536:
            raise ValueError("the value runs past register 65535")
        if not (math.isfinite(self.scale) and math.isfinite(self.offset)):
            raise ValueError("scale and offset must be finite")
        return self


class ModbusSensorConfig(Settings):
    """A slave on the bus: its address, the sensor id it reports as, and how often to poll."""

    sensor: Identifier
    slave: int = Field(ge=1, le=247)
    interval_s: float = Field(default=30.0, ge=0.05)
    registers: list[RegisterConfig] = Field(min_length=1)

    @field_validator("registers")
    @classmethod
    def _one_value_per_field(cls, value: list[RegisterConfig]) -> list[RegisterConfig]:
        fields = [r.field for r in value]
        twice = sorted({f for f in fields if fields.count(f) > 1})
        if twice:
            raise ValueError(f"field(s) {twice} read twice")
        return value


class ModbusBusConfig(LineSettings):
    """An RS-485 line polled as Modbus RTU master (the standard's default is 8E1; many
    transmitters ship 9600 8N1)."""

    # How long a slave may take to answer, and how often a poll is retried before it counts
    # as unanswered.
    timeout_s: float = Field(default=0.5, gt=0, le=10)
    retries: int = Field(default=1, ge=0, le=5)
    sensors: list[ModbusSensorConfig] = Field(min_length=1)

    @model_validator(mode="after")
    def _rtu_line(self) -> ModbusBusConfig:
        # Modbus over Serial Line V1.02 2.5.1: 11 bits per character, 1 or 2 stop bits.
        if self.stop_bits == 1.5:
            raise ValueError("Modbus RTU uses 1 or 2 stop bits")
        slaves = [s.slave for s in self.sensors]
        twice = sorted({s for s in slaves if slaves.count(s) > 1})
        if twice:
            raise ValueError(f"slave address(es) {twice} used twice on one bus")
        return self


@dataclass(frozen=True, slots=True)
class _Request:
    table: str
    address: int
    count: int
    registers: tuple[RegisterConfig, ...]


def _plan(sensor: ModbusSensorConfig) -> list[_Request]:
    """One read per table when the span fits in one request, else one per value."""
    requests: list[_Request] = []
    for table in ("holding", "input", "coil", "discrete"):
        regs = tuple(r for r in sensor.registers if r.table == table)
        if not regs:
            continue
        start = min(r.address for r in regs)
        end = max(r.address + (_WIDTH[r.type] if table in _REGISTER_TABLES else 1) for r in regs)
        limit = _MAX_REGISTERS if table in _REGISTER_TABLES else _MAX_BITS
        if end - start <= limit:
            requests.append(_Request(table, start, end - start, regs))
        else:
            requests += [_Request(table, r.address, _WIDTH[r.type] if table in _REGISTER_TABLES
                                  else 1, (r,)) for r in regs]
    return requests


def _value(reg: RegisterConfig, words: list[int]) -> float:
    if reg.type in ("int16", "uint16"):
        raw = float(struct.unpack(">h" if reg.type == "int16" else ">H",
                                  words[0].to_bytes(2, "big"))[0])
    else:
        first, second = words if reg.word_order == "big" else reversed(words)
        data = first.to_bytes(2, "big") + second.to_bytes(2, "big")
        raw = float(struct.unpack({"int32": ">i", "uint32": ">I", "float32": ">f"}[reg.type],
                                  data)[0])
    return raw * reg.scale + reg.offset


def registers_to_values(request_table: str, start: int, data: Sequence[int] | Sequence[bool],
                        registers: tuple[RegisterConfig, ...]) -> dict[str, FieldValue]:
    """The fields of one response; ValueError for a value that is not a finite number."""
    values: dict[str, FieldValue] = {}
    for reg in registers:
        at = reg.address - start
        if request_table in _REGISTER_TABLES:
            words = [int(w) for w in data[at: at + _WIDTH[reg.type]]]
            number = _value(reg, words)
            if not math.isfinite(number):
                raise ValueError(f"{reg.field} at {reg.address} is not a finite number")
            if FIELD_TYPES[reg.field] is bool:
                values[reg.field] = (number != 0) != reg.invert
            else:
                values[reg.field] = number
        else:
            values[reg.field] = bool(data[at]) != reg.invert
    return values


OnReading = Callable[[Reading], Awaitable[None]]
OnState = Callable[[bool], None]


class ModbusBus:
    """Polls every slave of one bus; reconnects with backoff when the adapter is lost."""

    def __init__(self, config: ModbusBusConfig, clock: Clock) -> None:
        self.config = config
        self.component = modbus_source(config.id)
        self._clock = clock
        self._plans = {s.sensor: _plan(s) for s in config.sensors}
        self._on_reading: OnReading | None = None
        self._on_state: OnState | None = None
        self.answering: dict[str, bool] = {}
        self.stats: Counter[str] = Counter()
        self.is_open = asyncio.Event()
        self.up = self.is_open  # as every reader driver says it (drivers/readers.py)
        self._crc_logged = -_CRC_LOG_INTERVAL_S

    def on_reading(self, callback: OnReading) -> None:
        """Where readings go (already decoded: the pipeline's `take`)."""
        self._on_reading = callback

    def on_state(self, callback: OnState) -> None:
        """Told True when the bus adapter opens, False when it cannot be opened or is lost."""
        self._on_state = callback

    async def run(self) -> None:
        """Poll until cancelled."""
        # pymodbus logs every unanswered poll with a frame dump at ERROR; this driver logs each
        # slave's change between answering and silent once, and counts the rest.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        delay = self.config.reconnect_min_s
        reported: bool | None = None
        while True:
            client = self._client()
            opened = time.monotonic()
            try:
                if not await client.connect():
                    if reported is not False:
                        log.warning("Modbus bus %s: cannot open %s; retrying with backoff",
                                    self.config.id, self.config.device)
                        self._report(False)
                        reported = False
                    await asyncio.sleep(delay * random.uniform(0.8, 1.0))
                    delay = min(self.config.reconnect_max_s, delay * 2)
                    continue
                log.info("Modbus bus %s open on %s (%d baud), polling %d slave(s)",
                         self.config.id, self.config.device, self.config.baud,
                         len(self.config.sensors))
                opened = time.monotonic()
                self.stats["opened"] += 1
                self._report(True)
                reported = True
                self.is_open.set()
                try:
                    await self._poll_forever(client)
                except PortLost as exc:
                    self.stats["lost"] += 1
                    log.warning("Modbus bus %s lost on %s: %s; reopening with backoff",
                                self.config.id, self.config.device, exc)
                    self._report(False)
                    reported = False
            finally:
                self.is_open.clear()
                client.close()
            if time.monotonic() - opened >= _STABLE_S:
                delay = self.config.reconnect_min_s
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))
            delay = min(self.config.reconnect_max_s, delay * 2)

    def _client(self) -> AsyncModbusSerialClient:
        from drivers.modbus_rtu import AsyncModbusSerialClient, crc_counting_framer

        client = AsyncModbusSerialClient(
            self.config.device, baudrate=self.config.baud, bytesize=self.config.data_bits,
            parity=self.config.parity_code, stopbits=int(self.config.stop_bits),
            timeout=self.config.timeout_s, retries=self.config.retries,
            reconnect_delay=0,  # reconnecting is ours: it reports the bus down and up
            name=f"modbus {self.config.id}",
        )
        client.ctx.framer = crc_counting_framer(self._crc_error)
        return client

    def _crc_error(self) -> None:
        # Bad CRCs mean line trouble (termination, grounding, a second master): say so at most
        # once a minute, with the count, rather than per frame.
        self.stats["crc_errors"] += 1
        now = time.monotonic()
        if now - self._crc_logged >= _CRC_LOG_INTERVAL_S:
            log.warning("Modbus bus %s: answer with a bad CRC dropped (%d so far); check the "
                        "RS-485 wiring and termination", self.config.id, self.stats["crc_errors"])
            self._crc_logged = now

    async def _poll_forever(self, client: AsyncModbusSerialClient) -> None:
        loop = asyncio.get_running_loop()
        due = {s.sensor: loop.time() for s in self.config.sensors}
        intervals = {s.sensor: s.interval_s for s in self.config.sensors}
        slaves = {s.sensor: s.slave for s in self.config.sensors}
        while True:
            sensor = min(due, key=due.__getitem__)
            wait = due[sensor] - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            if not client.connected:
                raise PortLost("the adapter stopped answering the operating system")
            reading = await self._poll(client, sensor, slaves[sensor])
            # Keep the cadence, but never try to catch up on polls missed while others timed out.
            due[sensor] = max(due[sensor] + intervals[sensor], loop.time())
            if reading is not None and self._on_reading is not None:
                await self._on_reading(reading)

    async def _poll(self, client: AsyncModbusSerialClient, sensor: str,
                    slave: int) -> Reading | None:
        from pymodbus.exceptions import ConnectionException, ModbusException

        self.stats["polls"] += 1
        values: dict[str, FieldValue] = {}
        try:
            for request in self._plans[sensor]:
                response = await self._read(client, request, slave)
                if response.isError():
                    code = getattr(response, "exception_code", "?")
                    raise ValueError(f"exception response {code} to a {request.table} read"
                                     f" at {request.address}")
                data: Sequence[int] | Sequence[bool] = (
                    response.registers if request.table in _REGISTER_TABLES else response.bits)
                if len(data) < request.count:
                    raise ValueError(f"{len(data)} values in the answer, {request.count} asked")
                values.update(registers_to_values(request.table, request.address, data,
                                                  request.registers))
        except ConnectionException as exc:
            raise PortLost(str(exc)) from exc
        except (ModbusException, ValueError) as exc:
            self.stats["unanswered"] += 1
            if self.answering.get(sensor, True):
                log.warning("Modbus bus %s: sensor %s (slave %d) not answering: %s",
                            self.config.id, sensor, slave, exc)
            self.answering[sensor] = False
            return None
        if not self.answering.get(sensor, True):
            log.info("Modbus bus %s: sensor %s (slave %d) answering again",
                     self.config.id, sensor, slave)
        self.answering[sensor] = True
        self.stats["answers"] += 1
        return Reading(sensor=sensor, at_ns=self._clock.now_ns(), values=values)

    async def _read(self, client: AsyncModbusSerialClient, request: _Request,
                    slave: int) -> ModbusPDU:
        if request.table == "holding":
            return await client.read_holding_registers(request.address, count=request.count,
                                                       device_id=slave)
        if request.table == "input":
            return await client.read_input_registers(request.address, count=request.count,
                                                     device_id=slave)
        if request.table == "coil":
            return await client.read_coils(request.address, count=request.count,
                                           device_id=slave)
        return await client.read_discrete_inputs(request.address, count=request.count,
                                                 device_id=slave)

    def _report(self, up: bool) -> None:
        if self._on_state is not None:
            self._on_state(up)
