"""Serial ports (RS-232, RS-485 receive-only, USB adapters): framed payloads from line devices.

One `SerialPort` per configured port reads with pyserial-asyncio-fast, reassembles frames
(`drivers.framing`) and hands each to the pipeline as a RawMessage from `serial:<port id>`;
what is no frame goes to the dead letters. A port that disappears (adapter pulled) is reported
down (the `input_lost` rule), reopened with capped exponential backoff and reported up again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import termios
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Sequence
from typing import Literal

from pydantic import Field, field_validator, model_validator

from daemon.vocabulary.clock import Clock
from daemon.vocabulary.errors import PortLost
from daemon.vocabulary.readings import RawMessage
from daemon.vocabulary.settings import Identifier, Settings
from drivers.decoders.kinds import DecoderConfig
from drivers.framing import Frame, Framer, FramingConfig, LineFramingConfig
from drivers.routes import Route

__all__ = ["LineSettings", "SerialPort", "SerialPortConfig", "SerialRouter", "serial_source"]

log = logging.getLogger(__name__)

# Bytes asked for per read; under load the stream buffer (2 x _BUFFER_LIMIT) fills and one read
# takes a large batch, whose frames then share one spool commit.
_READ_CHUNK = 65536
_BUFFER_LIMIT = 65536
# A connection that lasted this long was healthy: the next loss starts the backoff afresh.
_STABLE_S = 10.0
# pyserial's parity letters (serial.PARITY_NONE ...), written out: pyserial and its asyncio
# layer are imported when a port is opened, not with the config (0.76 MiB, issue 29).
_PARITY = {"none": "N", "even": "E", "odd": "O", "mark": "M", "space": "S"}


def serial_source(port_id: str) -> str:
    """The RawMessage source (and gateway component) of a port."""
    return f"serial:{port_id}"


class LineSettings(Settings):
    """Device path and UART settings, shared by serial ports and Modbus buses."""

    id: Identifier
    # A stable name from the udev rules (deploy/udev/), e.g. /dev/depotwatch-door-io; pyserial
    # URLs (socket://host:port for a serial-to-Ethernet converter in raw TCP mode) work too.
    device: str = Field(min_length=1)
    baud: int = Field(default=9600, ge=50, le=4_000_000)
    data_bits: Literal[5, 6, 7, 8] = 8
    parity: Literal["none", "even", "odd", "mark", "space"] = "none"
    stop_bits: float = 1
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)

    @field_validator("stop_bits")
    @classmethod
    def _stop_bits(cls, value: float) -> float:
        if value not in (1, 1.5, 2):
            raise ValueError("stop_bits is 1, 1.5 or 2")
        return value

    @model_validator(mode="after")
    def _backoff_order(self) -> LineSettings:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s is below reconnect_min_s")
        return self

    @property
    def parity_code(self) -> str:
        """pyserial's (and pymodbus') parity letter."""
        return _PARITY[self.parity]


class SerialPortConfig(LineSettings):
    """A serial port, its framing, the decoder of its frames and the sensor it speaks for."""

    framing: FramingConfig = Field(default_factory=LineFramingConfig)
    decoder: DecoderConfig
    # The sensor id for every frame (one door's I/O board, one badge reader); decoders that
    # name the sensor themselves (an input name, an antenna number) leave it out.
    sensor: Identifier | None = None
    # A partial frame followed by this much silence is dead-lettered and the framer starts
    # afresh (how fixed-length frames resynchronise); null waits for the rest forever.
    idle_reset_s: float | None = Field(default=1.0, gt=0)


class SerialRouter:
    """Routes `serial:<port id>` to the port's decoder and fixed sensor id."""

    def __init__(self, ports: Sequence[SerialPortConfig]) -> None:
        self._routes = {
            serial_source(p.id): Route(p.decoder.build(), p.sensor or "", p.framing.max_frame_bytes)
            for p in ports
        }

    def route(self, source: str) -> Route | None:
        """The port's route, or None for other sources."""
        return self._routes.get(source)


OnMessage = Callable[[RawMessage], Awaitable[None]]
OnState = Callable[[bool], None]
# (source, reason, bytes, received_ns): the dead-letter store's `keep`.
OnReject = Callable[[str, str, bytes, int], None]


class SerialPort:
    """Reads one port forever: frames out, errors to the dead letters, up/down reported."""

    def __init__(self, config: SerialPortConfig, clock: Clock) -> None:
        self.config = config
        self.source = serial_source(config.id)
        self._clock = clock
        self._on_message: OnMessage | None = None
        self._on_state: OnState | None = None
        self._on_reject: OnReject | None = None
        self._framer: Framer = config.framing.build()
        self.stats: Counter[str] = Counter()
        self.is_open = asyncio.Event()

    @property
    def buffered(self) -> int:
        """Bytes held for an incomplete frame (bounded by the framing's frame limit)."""
        return self._framer.pending

    def on_message(self, callback: OnMessage) -> None:
        """Where frames go; awaited, so a slow pipeline slows reading (bounded buffers)."""
        self._on_message = callback

    def on_state(self, callback: OnState) -> None:
        """Told True when the port opens, False when it cannot be opened or is lost."""
        self._on_state = callback

    def on_reject(self, callback: OnReject) -> None:
        """Where framing errors go (noise, bad checksums, over-long and incomplete frames)."""
        self._on_reject = callback

    async def run(self) -> None:
        """Open, read, and reopen with capped exponential backoff until cancelled."""
        delay = self.config.reconnect_min_s
        reported: bool | None = None
        while True:
            try:
                reader, writer = await self._open()
            except PortLost as exc:
                if reported is not False:
                    log.warning("serial port %s: %s; retrying with backoff", self.config.id, exc)
                    self._report(False)
                    reported = False
                await asyncio.sleep(delay * random.uniform(0.8, 1.0))
                delay = min(self.config.reconnect_max_s, delay * 2)
                continue
            opened = time.monotonic()
            log.info("serial port %s open on %s (%d baud, %d%s%s)", self.config.id,
                     self.config.device, self.config.baud, self.config.data_bits,
                     self.config.parity_code, f"{self.config.stop_bits:g}")
            self.stats["opened"] += 1
            self._report(True)
            reported = True
            self.is_open.set()
            try:
                await self._read(reader)
            except PortLost as exc:
                self.stats["lost"] += 1
                log.warning("serial port %s lost on %s: %s; reopening with backoff",
                            self.config.id, self.config.device, exc)
                self._report(False)
                reported = False
                await self._deliver(self._framer.flush())
            finally:
                self.is_open.clear()
                writer.close()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(writer.wait_closed(), 2.0)
            if time.monotonic() - opened >= _STABLE_S:
                delay = self.config.reconnect_min_s
            await asyncio.sleep(delay * random.uniform(0.8, 1.0))
            delay = min(self.config.reconnect_max_s, delay * 2)

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        import serial_asyncio_fast

        try:
            return await serial_asyncio_fast.open_serial_connection(
                url=self.config.device, limit=_BUFFER_LIMIT, baudrate=self.config.baud,
                bytesize=self.config.data_bits, parity=self.config.parity_code,
                stopbits=self.config.stop_bits,
                # Another reader on the same port would steal bytes: lock it (flock).
                exclusive=True,
            )
        # pyserial's SerialException is an OSError.
        except (OSError, ValueError, termios.error) as exc:
            # termios.error: the tty refused the UART settings (not an OSError subclass).
            raise PortLost(f"cannot open {self.config.device}: {exc}") from exc

    async def _read(self, reader: asyncio.StreamReader) -> None:
        idle = self.config.idle_reset_s
        while True:
            try:
                # Not wait_for: on Python 3.11 a cancellation arriving with data is swallowed
                # and this loop would outlive the daemon's shutdown.
                async with asyncio.timeout(idle if idle and self._framer.pending else None):
                    data = await reader.read(_READ_CHUNK)
            except TimeoutError:
                self.stats["idle_resets"] += 1
                await self._deliver(self._framer.flush())
                continue
            except OSError as exc:  # pyserial's SerialException too
                raise PortLost(str(exc)) from exc
            if not data:
                raise PortLost("end of stream")
            self.stats["bytes"] += len(data)
            await self._deliver(self._framer.feed(data))

    async def _deliver(self, frames: list[Frame]) -> None:
        if not frames:
            return
        now = self._clock.now_ns()
        messages = []
        for index, frame in enumerate(frames):
            # Frames of one read (a pallet's tags) get successive nanoseconds: their points
            # would otherwise share series and timestamp in InfluxDB and overwrite each other.
            at_ns = now + index
            if frame.error:
                self.stats["rejected"] += 1
                if self._on_reject is not None:
                    self._on_reject(self.source, frame.error, frame.payload, at_ns)
            else:
                self.stats["frames"] += 1
                messages.append(RawMessage(source=self.source, payload=frame.payload,
                                           received_ns=at_ns))
        if messages and self._on_message is not None:
            # Taken in order (each task ingests before its first await); one spool commit can
            # then carry the whole batch instead of one commit per frame.
            await asyncio.gather(*(self._on_message(m) for m in messages))

    def _report(self, up: bool) -> None:
        if self._on_state is not None:
            self._on_state(up)
