"""A keypad over a serial line: its code-entry lines decoded, and staff arming a zone with it
through a real pseudo-terminal and the real daemon."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from mqtt_probe import MqttProbe
from serial_devices import PtyLink, until
from servers import Mosquitto

from daemon.config.schema import Config
from daemon.runner import Daemon
from daemon.vocabulary.errors import DecodeError
from daemon.vocabulary.readings import RawMessage
from drivers.decoders.keypad_lines import KeypadLinesDecoderConfig

SITE = "keypad-serial"


def values(line: bytes, **settings: Any) -> list[tuple[str, dict[str, Any]]]:
    decoder = KeypadLinesDecoderConfig(**settings).build()
    return [(r.sensor, dict(r.values)) for r in decoder.decode(RawMessage("serial:k", line, 1),
                                                               "kp-port")]


def test_entry_lines_become_requests_and_panics() -> None:
    assert values(b"ARM 1001\r\n") == [("kp-port", {"action": "arm", "badge": "1001"})]
    assert values(b"k2 off 4711") == [("k2", {"action": "disarm", "badge": "4711"})]
    assert values(b"PANIC") == [("kp-port", {"panic": True})]
    assert values(b"K2 DISARM 1001", keypads={"K2": "sh1-keypad"}) == [
        ("sh1-keypad", {"action": "disarm", "badge": "1001"})]
    with pytest.raises(DecodeError):  # an unknown word is an error unless ignored
        values(b"READY")
    assert values(b"READY", ignore=["READY"]) == []
    custom = {"pattern": r"^\*(?P<code>\d+)#(?P<action>[AD])$", "actions": {"A": "arm",
                                                                              "D": "disarm"}}
    assert values(b"*1001#A", **custom) == [("kp-port", {"action": "arm", "badge": "1001"})]


@pytest.mark.parametrize("line, error", [
    (b"ARM", "arm without a code"),
    (b"HELLO 1001", "unknown keypad action 'hello'"),
    (b"ARM 12", "not a keypad entry line"),
    (b"K9 ARM 1001", "keypad 'K9' is not in the decoder's 'keypads'"),
])
def test_bad_lines_are_refused_without_quoting_the_code(line: bytes, error: str) -> None:
    decoder = KeypadLinesDecoderConfig(keypads={"K2": "kp"}, actions={
        "arm": "arm"}).build()
    with pytest.raises(DecodeError, match=error) as caught:
        decoder.decode(RawMessage("serial:k", line, 1), "kp-port")
    assert "1001" not in str(caught.value)


def test_a_pattern_without_an_action_group_is_a_config_error() -> None:
    with pytest.raises(ValueError, match="named group 'action'"):
        KeypadLinesDecoderConfig(pattern=r"^(?P<code>\d+)$")


@given(st.binary(max_size=80))
def test_any_bytes_give_an_entry_or_a_decode_error(line: bytes) -> None:
    with contextlib.suppress(DecodeError):
        values(line)


def config(mosquitto: Mosquitto, state_dir: Path, keypad: Path) -> dict[str, Any]:
    return {
        "site": {"id": SITE},
        "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1", "name": "Store 1", "arming": "staff",
                         "armed": {"mode": "never"}}],
        "doors": [{"id": "SH1-D1", "storehouse": "SH1", "contact_sensor": "sh1-door1"}],
        "detectors": [{"id": "sh1-keypad", "kind": "keypad", "storehouse": "SH1"}],
        "roster": [{"name": "Sgt. Anna Berger", "badge": "1001", "zones": ["SH1"]}],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port, "client_id": "depotwatch-keypad",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0},
        "serial": [{"id": "keypad", "device": str(keypad), "sensor": "sh1-keypad",
                    "reconnect_min_s": 0.05, "reconnect_max_s": 0.2,
                    "decoder": {"type": "keypad_lines"}}],
        "rules": [{"type": "sensor_silent", "enabled": False},
                  {"type": "zone_arming", "exit_delay_s": 30}],
        "tick_interval_s": 0.1,
        "api": {"listen_port": 0},
    }


def test_staff_arm_and_disarm_at_a_serial_keypad(mosquitto: Mosquitto, tmp_path: Path) -> None:
    keypad = PtyLink(tmp_path / "ttyKEYPAD").plug()
    daemon = Daemon(Config.model_validate(config(mosquitto, tmp_path / "state", keypad.path)),
                    tick_interval_s=0.1)
    [port] = daemon.serial_ports

    def zone() -> tuple[str, str, str]:
        (view,) = daemon.arming.zone_states()
        return view.state.value, view.by, view.how

    async def scenario() -> None:
        stop = asyncio.Event()
        running = asyncio.create_task(daemon.run(stop))
        try:
            async with MqttProbe(mosquitto.port) as probe:
                await probe.subscribe(f"depotwatch/{SITE}/alerts/#")
                await until(port.is_open.is_set)
                await keypad.send(b"ARM 9999\r\n")      # not on the roster: refused
                await keypad.send(b"ARM 1001\r\n")
                await until(lambda: zone() == ("arming", "Sgt. Anna Berger", "keypad"))
                await keypad.send(b"DISARM 1001\r\n")
                await until(lambda: zone() == ("disarmed", "Sgt. Anna Berger", "keypad"))
                await keypad.send(b"\x00\xfe 1001\r\n")  # dead-lettered, not fatal
                await keypad.send(b"PANIC\r\n")
                panic = await probe.wait_alert("panic.sh1-keypad", "firing")
                assert panic["severity"] == "critical"
                assert daemon.deadletters.counts["serial:keypad"] == 1
        finally:
            stop.set()
            await asyncio.wait_for(running, 15)

    try:
        asyncio.run(asyncio.wait_for(scenario(), 30))
    finally:
        keypad.unplug()
    audit = (tmp_path / "state" / "audit.jsonl").read_text()
    assert '"zone_refused"' in audit and '"zone_arming"' in audit
    assert "9999" not in audit  # the unknown code goes by its keyed hash
