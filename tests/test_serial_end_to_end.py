"""The daemon with a serial I/O board and a Modbus climate sensor: alerts out on MQTT.

A door contact line from a pty raises and clears a tamper alarm; the Modbus sensor falling
silent raises "sensor silent"; pulling the serial adapter raises "input lost"; each clears when
the device is back, without restarting the daemon.
"""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

from mqtt_probe import MqttProbe
from serial_devices import PtyLink, Slaves, SocatPair, until
from servers import Mosquitto

from daemon.alerts.alarm import Finding
from daemon.config.schema import Config
from daemon.runner import Daemon

SITE = "e2e-serial"


def config(mosquitto: Mosquitto, state_dir: Path, door_io: Path, rs485: Path) -> dict[str, Any]:
    return {
        "site": {"id": SITE},
        "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "name": "Store 1"}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "sh1-door1",
                   "supervision": "wired"}],
        "climate_sensors": [{"id": "clim-m1", "storehouse": "SH1"}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": "depotwatch-serial",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "serial": [{
            "id": "door-io", "device": str(door_io), "sensor": "sh1-door1",
            "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
            "decoder": {"type": "io_board", "fields": {"open": "door", "tamper": "tmp"}},
        }],
        "modbus": [{
            "id": "rs485-1", "device": str(rs485), "baud": 19200, "timeout_s": 0.15,
            "retries": 0, "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
            "sensors": [{"sensor": "clim-m1", "slave": 7, "interval_s": 0.2, "registers": [
                {"field": "temperature_c", "address": 0, "scale": 0.1},
                {"field": "humidity_pct", "address": 1, "scale": 0.1}]}],
        }],
        "rules": [
            {"type": "input_lost", "after_s": 0.5},
            {"type": "sensor_silent", "wired_s": 60, "radio_s": 60, "climate_s": 1.0},
        ],
        "tick_interval_s": 0.1,
        "api": {"listen_port": 0},
    }


def test_serial_and_modbus_devices_raise_and_clear_alerts(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    door_io = PtyLink(tmp_path / "ttyDOORIO").plug()
    cable = SocatPair(tmp_path / "slaves", tmp_path / "ttyRS485").start()
    slaves = Slaves(cable.a)
    daemon = Daemon(Config.model_validate(config(mosquitto, tmp_path / "state", door_io.path,
                                                 cable.b)), tick_interval_s=0.1)
    [port] = daemon.serial_ports

    async def scenario() -> None:
        await slaves.start()
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        try:
            async with MqttProbe(mosquitto.port) as probe:

                def firing(key: str) -> list[dict[str, Any]]:
                    """Notices that raised an alarm (not its lifecycle updates)."""
                    return [a for a in probe.alerts()
                            if a["key"] == key and a["state"] == "firing"
                            and a["facts"].get("lifecycle") == "firing"
                            and a["facts"].get("condition_active")]

                async def checked_and_cleared(key: str) -> None:
                    # An alarm outlives its condition until an officer records the check.
                    await probe.wait_alert(key, "firing", condition_active=False)
                    daemon.desk.acknowledge(key, "Sgt. Test", "", daemon.clock.now_ns())
                    daemon.desk.record_check(key, "Sgt. Test", Finding.FAULT, "checked",
                                             daemon.clock.now_ns())
                    await probe.wait_alert(key, "resolved")

                await probe.subscribe(f"depotwatch/{SITE}/alerts/#")
                await until(port.is_open.is_set)
                await door_io.send(b"door=0 tmp=0\n")
                await door_io.send(b"door=0 tmp=1\n")          # the I/O board's tamper loop
                tamper = await probe.wait_alert("tamper.sh1-door1", "firing")
                assert tamper["severity"] == "critical"
                await door_io.send(b"\x00\xfe garbage\n")       # dead-lettered, not fatal
                await door_io.send(b"door=0 tmp=0\n")
                await checked_and_cleared("tamper.sh1-door1")
                assert daemon.deadletters.counts["serial:door-io"] == 1
                assert daemon.spool.receipts == {}, "serial frames are never redelivered"

                await slaves.stop()                             # the Modbus sensor falls silent
                await probe.wait_alert("sensor_silent.clim-m1", "firing")
                await slaves.start()
                await checked_and_cleared("sensor_silent.clim-m1")

                door_io.unplug()                                # the USB adapter is pulled
                await probe.wait_alert("input_lost.serial:door-io", "firing")
                door_io.plug()
                await checked_and_cleared("input_lost.serial:door-io")
                await until(port.is_open.is_set)
                await door_io.send(b"door=0 tmp=1\n")           # and it reads again
                await until(lambda: len(firing("tamper.sh1-door1")) == 2)
                assert not firing("input_lost.modbus:rs485-1"), "the bus itself stayed up"
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)
            await slaves.stop()

    try:
        asyncio.run(asyncio.wait_for(scenario(), 40))
    finally:
        with contextlib.suppress(OSError):
            door_io.unplug()
        cable.stop()
