"""The daemon with an LLRP portal reader and a SIA DC-09 panel: alarms out on real MQTT.

A tag carried out through the portal (inner antenna, then outer) with no movement order raises
`portal_movement.<epc>`; the panel's hold-up (HA) raises a panic alarm, its closing (CL) arms
the storehouse's zone, its mains loss (AT) is a fault alert; bad input from either is a dead
letter and nothing else changes. The LLRP reader is our simulator; the panel our DC-09 sender.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from llrp_sim import LlrpReaderSim, Tag
from llrp_sim import message as llrp_message
from mqtt_probe import MqttProbe
from serial_devices import until
from servers import Mosquitto, free_port
from sia_client import Panel, answer_kind, frame, message

from daemon.config.schema import Config
from daemon.runner import Daemon
from drivers.llrp import LlrpReader
from drivers.sia import SiaReceiver
from rules.zone_state import ZoneState, ZoneView

SITE = "e2e-readers"
EPC = "E28011606000020D6842A1B2"


def config(mosquitto: Mosquitto, state_dir: Path, llrp_port: int,
           sia_port: int) -> dict[str, Any]:
    return {
        "site": {"id": SITE},
        "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "armed": {"mode": "always"}},
                        {"id": "SH2", "arming": "staff"}],
        "portals": [{"id": "P1", "storehouse": "SH1", "inner_antenna": "P1-IN",
                     "outer_antenna": "P1-OUT"}],
        "items": [{"epc": EPC, "name": "Rifle 7", "storehouse": "SH1"}],
        "detectors": [{"id": "SH2-PIR", "kind": "motion", "storehouse": "SH2"},
                      {"id": "SH2-HOLDUP", "kind": "panic", "storehouse": "SH2"}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": "depotwatch-readers",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "readers": [
            {"type": "llrp", "id": "portal1", "host": "127.0.0.1", "port": llrp_port,
             "antennas": {1: "P1-IN", 2: "P1-OUT"}, "reconnect_min_s": 0.05,
             "reconnect_max_s": 0.2},
            {"type": "sia", "id": "panel1", "listen_host": "127.0.0.1", "listen_port": sia_port,
             "accounts": [{"account": "5678", "key": "0123456789ABCDEF", "areas": {2: "SH2"},
                           "zones": {4: "SH2-PIR", 5: "SH2-HOLDUP"}}]},
        ],
        "rules": [{"type": "input_lost", "after_s": 0.5}],
        "tick_interval_s": 0.1,
        "api": {"listen_port": 0},
    }


def test_portal_reader_and_panel_raise_alarms_and_arm_zones(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    key = "0123456789ABCDEF"

    async def scenario() -> None:
        sim = LlrpReaderSim()
        await sim.start()
        daemon = Daemon(Config.model_validate(config(mosquitto, tmp_path / "state", sim.port,
                                                     free_port())), tick_interval_s=0.1)
        [reader, receiver] = daemon.readers
        assert isinstance(reader, LlrpReader) and isinstance(receiver, SiaReceiver)
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        try:
            async with MqttProbe(mosquitto.port) as probe:
                await probe.subscribe(f"depotwatch/{SITE}/alerts/#")
                await asyncio.wait_for(sim.inventorying.wait(), 10)
                await sim.report([Tag(EPC, antenna=1, rssi_dbm=-55)])
                await sim.send(llrp_message(999, 0, b"\x01\x02"))  # no LLRP message type
                await sim.report([Tag(EPC, antenna=2, rssi_dbm=-60)])
                moved = await probe.wait_alert(f"portal_movement.{EPC}", "firing")
                assert moved["severity"] in ("alarm", "critical")

                await until(lambda: receiver.up.is_set())
                panel = await Panel.connect(receiver.port)
                try:
                    # The zone starts armed (fail-secure); the panel disarms, then sets it.
                    for seq, data in enumerate(["Nri2/OP03", "Nri2/HA05", "Nri2/AT00"], 1):
                        reply = await panel.send(message("5678", data, seq=seq, key=key))
                        assert answer_kind(reply, key) == "ACK"
                    assert _zone(daemon).state is ZoneState.DISARMED
                    assert (_zone(daemon).by, _zone(daemon).how) == ("panel 5678 user 3", "panel")
                    reply = await panel.send(message("5678", "Nri2/CL04", seq=4, key=key))
                    assert answer_kind(reply, key) == "ACK"
                    assert _zone(daemon).state is ZoneState.ARMING  # the exit delay runs
                    assert answer_kind(await panel.send(frame("garbage"))) == "NAK"
                finally:
                    await panel.close()
                await probe.wait_alert("panic.SH2-HOLDUP", "firing")
                await probe.wait_alert("mains_lost.panel-5678", "firing")
                assert daemon.deadletters.counts["llrp:portal1"] == 1
                assert daemon.deadletters.counts["sia:panel1"] == 1
                assert reader.reports == 2
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)
            await sim.stop()

    asyncio.run(asyncio.wait_for(scenario(), 40))


def _zone(daemon: Daemon) -> ZoneView:
    [zone] = [z for z in daemon.arming.zone_states() if z.storehouse == "SH2"]
    return zone
