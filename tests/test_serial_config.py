"""Serial and Modbus config: the example validates, mistakes name their line."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.config.loading import load_config
from daemon.vocabulary.errors import ConfigError

EXAMPLE = Path(__file__).parent.parent / "examples" / "serial-devices.yaml"


def test_serial_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOTWATCH_BADGE_SALT", "test-salt")
    config = load_config(EXAMPLE)
    assert [p.id for p in config.serial] == ["door-io-sh1", "badge-sh1-d1", "rfid-p1"]
    assert [s.sensor for s in config.modbus[0].sensors] == ["sh1-climate1", "sh1-climate2"]


MISTAKES = """\
site: {id: s}
storehouses: [{id: SH1}]
doors: [{id: D1, storehouse: SH1, contact_sensor: door1}]
serial:
  - id: io
    device: /dev/ttyS0
    sensor: door9
    decoder: {type: io_board, fields: {open: door}}
  - id: io
    device: /dev/ttyS1
    decoder: {type: wiegand}
  - id: rfid
    device: /dev/ttyS2
    stop_bits: 3
    framing: {type: checksum, start: "02", length: 4}
    decoder: {type: rfid_ascii, antennas: {1: door1, 2: p1-outer}}
modbus:
  - id: bus
    device: /dev/ttyS0
    sensors:
      - {sensor: clim9, slave: 1, registers: [{field: temperature_c, address: 0}]}
"""


def test_serial_mistakes_are_named_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "depot.yaml"
    path.write_text(MISTAKES)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = [p.split("depot.yaml:", 1)[1] for p in caught.value.problems]
    assert found == [
        "7: serial[0].sensor: unknown sensor 'door9' (not a door, climate sensor, portal "
        "antenna, reader or detector)",
        "9: serial[1].id: duplicate id 'io'",
        "9: serial[1]: needs a 'sensor' (or a decoder that names it: sensor_key, antennas)",
        "14: serial[2].stop_bits: stop_bits is 1, 1.5 or 2",
        "15: serial[2].framing.checksum: give either length_byte: true or a fixed body 'length'",
        "16: serial[2].decoder.antennas[2]: unknown sensor 'p1-outer' (not a door, climate "
        "sensor, portal antenna, reader or detector)",
        "19: modbus[0].device: device '/dev/ttyS0' is already read by serial[0]",
        "21: modbus[0].sensors[0].sensor: unknown sensor 'clim9' (not a door, climate sensor, "
        "portal antenna, reader or detector)",
    ]


def test_a_detector_on_a_serial_line_is_a_known_sensor(tmp_path: Path) -> None:
    # A keypad (or a motion, water-leak detector) wired to a serial line: `check-config` and
    # `run` read the config through load_config, whose cross-checks once refused it.
    path = tmp_path / "depot.yaml"
    path.write_text("""\
site: {id: north}
storehouses: [{id: SH1, arming: staff}]
detectors: [{id: sh1-keypad, kind: keypad, storehouse: SH1}]
serial:
  - {id: keypad, device: /dev/ttyUSB7, sensor: sh1-keypad, decoder: {type: keypad_lines}}
""")
    config = load_config(path)
    assert [p.sensor for p in config.serial] == ["sh1-keypad"]
