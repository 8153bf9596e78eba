"""Which gateway input feeds which sensor: a port coming back restarts only its own sensors'
silence clocks (a door contact on MQTT that died during a serial outage stays reported)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from daemon.cli.replay import check, load_scenario, replay

SCENARIOS = Path(__file__).parent / "scenarios"


def _depot_with(tmp_path: Path, **extra: Any) -> Path:
    data = yaml.safe_load((SCENARIOS / "depot.yaml").read_text())
    data.update(extra)
    path = tmp_path / "depot.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


IO_BOARD = {"id": "io1", "device": "/dev/depotwatch-io1",
            "decoder": {"type": "io_board", "fields": {"open": "door"}, "sensor_key": "ch",
                        "sensors": {"2": "sh1-door2"}}}


def test_the_config_tells_which_input_feeds_which_sensor(tmp_path: Path) -> None:
    from daemon.config.loading import load_config
    wiegand = {"id": "badge1", "device": "/dev/depotwatch-badge1", "sensor": "sh1-reader1",
               "decoder": {"type": "wiegand", "format": "bits"}}
    depot = load_config(_depot_with(tmp_path, serial=[IO_BOARD, wiegand])).depot()
    assert depot.input_sensors["serial:io1"] == {"sh1-door2"}
    assert depot.input_sensors["serial:badge1"] == {"sh1-reader1"}
    assert depot.input_sensors["mqtt"] == set(depot.sensors) - {"sh1-door2", "sh1-reader1"}
    # A board naming its inputs from the frame, without a map: it may feed any sensor, and so
    # may MQTT then (nothing narrows what a return restarts).
    free = {**IO_BOARD, "decoder": {**IO_BOARD["decoder"], "sensors": {}}}
    depot = load_config(_depot_with(tmp_path, serial=[free])).depot()
    assert "serial:io1" not in depot.input_sensors and "mqtt" not in depot.input_sensors


def test_a_port_coming_back_restarts_only_its_own_sensors(tmp_path: Path) -> None:
    _depot_with(tmp_path, serial=[IO_BOARD])
    scenario = tmp_path / "serial-outage.yaml"
    scenario.write_text(yaml.safe_dump({
        "description": "the I/O board's port is down 100-400 s; sh1-door2 behind it falls "
                       "silent, sh1-door1 on MQTT dies at 120 s and must stay reported "
                       "(both radio contacts, 180 s)",
        "config": "depot.yaml",
        "rules": [{"type": "input_lost"},
                  {"type": "sensor_silent", "radio_s": 180, "wired_s": 604800,
                   "climate_s": 604800}],
        "start": "2026-11-25T12:00:00+01:00", "end": 520,
        "events": sorted([
            *({"at": t, "reading": {"sensor": "sh1-door2", "values": {"open": False}}}
              for t in (0, 40, 80, 430)),
            *({"at": t, "reading": {"sensor": "sh1-door1", "values": {"open": False}}}
              for t in (0, 60, 120)),
            {"at": 100, "input": {"component": "serial:io1", "up": False}},
            {"at": 400, "input": {"component": "serial:io1", "up": True}},
        ], key=lambda event: event["at"]),
        "expect": [
            {"at": 110, "key": "input_lost.serial:io1", "state": "firing", "severity": "alarm"},
            {"at": 261, "key": "sensor_silent.sh1-door2", "state": "firing"},
            {"at": 301, "key": "sensor_silent.sh1-door1", "state": "firing"},
            {"at": 400, "key": "input_lost.serial:io1", "state": "resolved"},
            # Before: "silence was the gateway input serial:io1's" ended sh1-door1's alarm too.
            {"at": 400, "key": "sensor_silent.sh1-door2", "state": "resolved"},
        ],
    }, sort_keys=False))
    loaded, config = load_scenario(scenario)
    assert check(loaded, replay(loaded, config)) == []


def test_a_silent_sensor_names_the_input_it_reports_through(tmp_path: Path) -> None:
    # The alarm's `input` is what the default inhibition matches against `input_lost`.
    from daemon.config.loading import load_config
    from daemon.vocabulary.readings import Transition
    from rules.sensor_silent import SensorSilentRule, SensorSilentRuleConfig
    depot = load_config(_depot_with(tmp_path, serial=[IO_BOARD])).depot()
    rule = SensorSilentRule(SensorSilentRuleConfig(radio_s=1), depot)
    assert rule.tick(10**18) == []  # every clock starts here
    fired = {o.subject: o.facts for o in rule.tick(10**18 + 5 * 10**9)
             if isinstance(o, Transition)}
    assert fired["sh1-door2"]["input"] == "serial:io1"
    assert fired["sh1-door1"]["input"] == "mqtt"
