"""Modbus RTU polling against pymodbus' own server on the other end of a pty pair."""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from serial_devices import Slaves, SocatPair, until

from daemon.vocabulary.clock import SystemClock
from daemon.vocabulary.readings import Reading
from drivers.modbus import (
    ModbusBus,
    ModbusBusConfig,
    ModbusSensorConfig,
    RegisterConfig,
    _plan,
    registers_to_values,
)


def reg(**values: Any) -> RegisterConfig:
    return RegisterConfig.model_validate(values)


@pytest.mark.parametrize(("register", "words", "value"), [
    ({"field": "temperature_c", "type": "int16", "scale": 0.1}, [0xFF38], -20.0),
    ({"field": "temperature_c", "type": "uint16", "scale": 0.1}, [0xFF38], 6533.6),
    ({"field": "humidity_pct", "type": "uint16", "scale": 0.01, "offset": 1.0}, [4550], 46.5),
    ({"field": "temperature_c", "type": "int32"}, [0xFFFF, 0xFFFE], -2.0),
    ({"field": "temperature_c", "type": "uint32", "word_order": "little"}, [0x0001, 0x0002],
     float(0x00020001)),
    ({"field": "temperature_c", "type": "float32"},
     list(struct.unpack(">HH", struct.pack(">f", 21.5))), 21.5),
    ({"field": "open", "type": "uint16"}, [3], True),
    ({"field": "open", "type": "uint16", "invert": True}, [0], True),
])
def test_register_values(register: dict[str, Any], words: list[int], value: object) -> None:
    r = reg(address=10, table="holding", **register)
    values = registers_to_values("holding", 9, [0, *words], (r,))
    assert values == {register["field"]: pytest.approx(value)}
    assert type(values[register["field"]]) is type(value)


def test_bits_and_non_finite_floats() -> None:
    contact = reg(field="open", table="discrete", address=2, invert=True)
    assert registers_to_values("discrete", 0, [True, True, False], (contact,)) == {"open": True}
    nan = reg(field="temperature_c", table="input", address=0, type="float32")
    with pytest.raises(ValueError, match="not a finite number"):
        registers_to_values("input", 0, list(struct.unpack(">HH", struct.pack(">f", float("nan")))),
                            (nan,))


def test_one_request_per_table_unless_too_far_apart() -> None:
    sensor = ModbusSensorConfig(sensor="c", slave=1, registers=[
        reg(field="temperature_c", address=1), reg(field="humidity_pct", address=2),
        reg(field="open", table="coil", address=5), reg(field="tamper", table="coil", address=3000),
        reg(field="battery_pct", table="holding", address=100, type="float32"),
    ])
    plan = [(r.table, r.address, r.count) for r in _plan(sensor)]
    assert plan == [("holding", 100, 2), ("input", 1, 2), ("coil", 5, 1), ("coil", 3000, 1)]


@pytest.mark.parametrize(("config", "message"), [
    ({"field": "badge", "address": 0}, "unknown or text field"),
    ({"field": "temperature_c", "table": "coil", "address": 0}, "only true/false fields"),
    ({"field": "temperature_c", "address": 65535, "type": "int32"}, "runs past"),
])
def test_bad_register_configs(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        RegisterConfig.model_validate(config)


def test_bad_bus_configs() -> None:
    sensor = {"sensor": "c", "slave": 1, "registers": [{"field": "temperature_c", "address": 0}]}
    with pytest.raises(ValidationError, match="used twice"):
        ModbusBusConfig.model_validate({"id": "b", "device": "/dev/x",
                                        "sensors": [sensor, {**sensor, "sensor": "d"}]})
    with pytest.raises(ValidationError, match="1 or 2 stop bits"):
        ModbusBusConfig.model_validate({"id": "b", "device": "/dev/x", "stop_bits": 1.5,
                                        "sensors": [sensor]})


# -- against a real Modbus server -----------------------------------------------------------

BUS = {
    "id": "rs485-1", "baud": 19200, "timeout_s": 0.15, "retries": 0,
    "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
    "sensors": [
        {"sensor": "clim-m1", "slave": 7, "interval_s": 0.1, "registers": [
            {"field": "temperature_c", "address": 0, "scale": 0.1},
            {"field": "humidity_pct", "address": 1, "scale": 0.1}]},
        {"sensor": "sh1-door1", "slave": 8, "interval_s": 0.1, "registers": [
            {"field": "open", "table": "discrete", "address": 0},
            {"field": "tamper", "table": "discrete", "address": 1}]},
    ],
}



@contextlib.asynccontextmanager
async def polling(bus: ModbusBus) -> AsyncIterator[None]:
    task = asyncio.create_task(bus.run())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_polls_slaves_counts_crc_errors_and_survives_silence_and_unplugging(
        tmp_path: Path) -> None:
    cable = SocatPair(tmp_path / "slaves", tmp_path / "ttyRS485").start()
    slaves = Slaves(cable.a)
    bus = ModbusBus(ModbusBusConfig.model_validate({**BUS, "device": str(cable.b)}),
                    SystemClock())
    readings: list[Reading] = []
    states: list[bool] = []

    async def take(reading: Reading) -> None:
        readings.append(reading)

    bus.on_reading(take)
    bus.on_state(states.append)

    def of(sensor: str) -> list[dict[str, object]]:
        return [dict(r.values) for r in readings if r.sensor == sensor]

    async def scenario() -> None:
        await slaves.start()
        async with polling(bus):
            await until(lambda: len(of("clim-m1")) >= 2 and len(of("sh1-door1")) >= 2)
            assert of("clim-m1")[0] == {"temperature_c": pytest.approx(21.5),
                                        "humidity_pct": pytest.approx(45.5)}
            assert of("sh1-door1")[0] == {"open": True, "tamper": False}
            assert states == [True]

            slaves.corrupt = 2                     # two answers with a bad CRC
            await until(lambda: bus.stats["crc_errors"] == 2 and bus.stats["unanswered"] >= 1)

            await slaves.stop()                    # the slaves fall silent: no readings
            await until(lambda: bus.answering == {"clim-m1": False, "sh1-door1": False})
            silent_from = len(readings)
            await asyncio.sleep(0.4)
            assert len(readings) == silent_from and states == [True]

            await slaves.start()                   # and answer again
            await until(lambda: len(readings) >= silent_from + 4)
            assert bus.answering == {"clim-m1": True, "sh1-door1": True}

            await slaves.stop()
            cable.stop()                           # the RS-485 adapter is pulled
            await until(lambda: states == [True, False])
            cable.start()
            await slaves.start()
            await until(lambda: states == [True, False, True])
            resumed_from = len(readings)
            await until(lambda: len(readings) >= resumed_from + 2)
            await slaves.stop()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        cable.stop()
