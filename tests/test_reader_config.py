"""The `readers` section: the example validates, mistakes are named with their lines."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from daemon.config.loading import load_config
from daemon.vocabulary.errors import ConfigError
from drivers.reader_kinds import ReaderConfig

EXAMPLE = Path(__file__).parent.parent / "examples" / "readers.yaml"


def test_readers_example_is_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEPOTWATCH_BADGE_SALT", "test-salt")
    monkeypatch.setenv("OSDP_SCBK_SH1", "00112233445566778899AABBCCDDEEFF")
    monkeypatch.setenv("OSDP_SCBK_SH2", "FFEEDDCCBBAA99887766554433221100")
    monkeypatch.setenv("SIA_KEY_A1B2", "0123456789ABCDEF")
    config = load_config(EXAMPLE)
    assert [r.component for r in config.readers] == [
        "llrp:portal-p1", "llrp:magazine-shelves", "osdp:doors-line", "sia:panel-sh1"]
    fed = config.depot().input_sensors
    assert fed["llrp:portal-p1"] == {"p1-inner", "p1-outer"}
    assert fed["osdp:doors-line"] == {"sh1-reader1", "sh1-keypad", "sh2-reader1"}
    assert fed["sia:panel-sh1"] == {"sh1-panel", "sh1-pir1", "sh1-door1", "sh1-holdup"}


def test_every_reader_driver_is_documented() -> None:
    union = typing.get_args(typing.get_args(ReaderConfig)[0])
    assert {m.model_fields["type"].annotation.__args__[0] for m in union} == {  # type: ignore[union-attr]
        "llrp", "osdp", "sia"}
    assert all(m.__doc__ and m.build.__doc__ for m in union)


MISTAKES = """\
site: {id: s}
storehouses: [{id: SH1}]
doors: [{id: D1, storehouse: SH1, contact_sensor: door1, badge_reader: reader1}]
readers:
  - {type: llrp, id: r1, host: h, antennas: {1: door1, 2: p1-outer}}
  - {type: llrp, id: r1, host: h, port: "5084", antennas: {1: door1}}
  - type: osdp
    id: line
    device: /dev/ttyS0
    readers: [{address: 1, sensor: reader1}]
  - type: sia
    id: panel
    listen_port: 7777
    accounts: [{account: "12", areas: {1: SH9}, zones: {3: pir9}}]
"""


def test_reader_mistakes_are_named_with_their_lines(tmp_path: Path) -> None:
    path = tmp_path / "depot.yaml"
    path.write_text(MISTAKES)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    found = [p.split("depot.yaml:", 1)[1] for p in caught.value.problems]
    assert found == [
        "5: readers[0].antennas[2]: unknown sensor 'p1-outer' (not a door's contact or badge "
        "reader, portal antenna, reader or detector)",
        "6: readers[1].port: Input should be a valid integer",
        "6: readers[1].id: duplicate id 'r1'",
        "7: readers[2].osdp: secure_channel is required: reader(s) [1] need an scbk",
        "14: readers[3].accounts[0].account: String should match pattern "
        "'^[0-9A-Fa-f]{3,16}$'",
        "14: readers[3].accounts[0].zones[3]: unknown sensor 'pir9' (not a door's contact or "
        "badge reader, portal antenna, reader or detector)",
        "14: readers[3].accounts[0].areas[1]: unknown storehouse 'SH9'",
    ]
