"""The shipped device profiles: every sample decodes to what the profile says, and a config's
binding brings topics, silence limits and bridges, and is refused when it cannot read them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from daemon.config.loading import load_config
from daemon.vocabulary.errors import ConfigError, DecodeError
from daemon.vocabulary.readings import RawMessage
from drivers.profiles import catalogue, sample_problems

PROFILES = sorted(catalogue())


def test_the_catalogue_covers_the_issue_families() -> None:
    families = {name.split("/")[0] for name in PROFILES}
    assert {"zigbee2mqtt", "tasmota", "esphome", "shelly", "rfid"} <= families
    assert len(PROFILES) >= 20


@pytest.mark.parametrize("name", PROFILES)
def test_every_profile_sample_decodes_to_its_values(name: str) -> None:
    spec = catalogue()[name]
    decoder = spec.decoder_config() if spec.decoder is not None else None
    assert sample_problems(name, decoder, exact=True) == []
    assert spec.samples or spec.kind == "bridge"
    assert (spec.check_in_s is not None) == (spec.kind == "device")


def _config(tmp_path: Path, devices: list[dict[str, Any]], **extra: Any) -> Path:
    config = {
        "site": {"id": "d"}, "state_dir": str(tmp_path),
        "storehouses": [{"id": "SH1"}],
        "doors": [{"id": "D1", "storehouse": "SH1", "contact_sensor": "door1"}],
        "climate_sensors": [{"id": "c1", "storehouse": "SH1"},
                            {"id": "c2", "storehouse": "SH1"}],
        "devices": devices, **extra}
    path = tmp_path / "depot.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def test_a_binding_brings_topics_limits_and_its_bridge(tmp_path: Path) -> None:
    config = load_config(_config(tmp_path, [
        {"sensor": "door1", "profile": "zigbee2mqtt/aqara-mccgq11lm", "device": "Door 1",
         "bridge": "z2m"},
        {"sensor": "c1", "profile": "tasmota/ds18b20-multi", "device": "cellar",
         "decoder": {"probes": {"DS18B20-1": "c1", "DS18B20-2": "c2"}}, "silent_after_s": 600},
    ], bridges=[{"id": "z2m", "profile": "zigbee2mqtt/bridge", "device": "zigbee2mqtt"}]))
    topics = [(s.topic, s.sensor) for s in config.mqtt.subscriptions]
    assert topics == [("zigbee2mqtt/bridge/state", "bridge.z2m"),
                      ("zigbee2mqtt/Door 1", "door1"),
                      ("zigbee2mqtt/Door 1/availability", "door1"),
                      ("tele/cellar/SENSOR", "c1"), ("tele/cellar/LWT", "c1")]
    depot = config.depot()
    assert depot.silent_after_s == {"door1": 9000.0, "c1": 600.0, "c2": 600.0}
    assert depot.bridges == {"z2m": frozenset({"door1"})}


@pytest.mark.parametrize(("binding", "message"), [
    ({"sensor": "door1", "profile": "zigbee2mqtt/nope"}, "unknown device profile"),
    ({"sensor": "door1", "profile": "zigbee2mqtt/aqara-mccgq11lm",
      "decoder": {"type": "tasmota"}}, "cannot read the samples"),
    ({"sensor": "c1", "profile": "shelly/gen2-ht",
      "decoder": {"fields": {"temperature_c": "params.tC"}}}, "cannot read the samples"),
    ({"sensor": "door1", "profile": "zigbee2mqtt/bridge"}, "is a bridge"),
    ({"sensor": "door1", "profile": "zigbee2mqtt/aqara-mccgq11lm", "device": "a/#"},
     "device name"),
])
def test_a_binding_that_cannot_read_its_profile_is_refused(
        tmp_path: Path, binding: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, [binding]))
    text = "\n".join(caught.value.problems)
    assert message in text
    assert "devices[0]" in text


def test_an_unknown_bridge_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, [{"sensor": "door1", "bridge": "zz",
                                        "profile": "zigbee2mqtt/aqara-mccgq11lm"}]))
    assert "devices[0].bridge: unknown bridge 'zz'" in "\n".join(caught.value.problems)


def test_a_binding_of_a_sensor_the_config_does_not_place_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(_config(tmp_path, [
            {"sensor": "c1", "profile": "tasmota/ds18b20-multi",
             "decoder": {"probes": {"DS18B20-1": "c1", "DS18B20-2": "c9"}}},
            {"sensor": "c1", "profile": "zigbee2mqtt/sonoff-snzb-02"}]))
    text = "\n".join(caught.value.problems)
    assert "devices[0].decoder.probes.DS18B20-2: unknown sensor 'c9'" in text
    assert "devices[1].sensor: sensor 'c1' is already bound by devices[0]" in text


def test_the_example_devices_config_loads_and_lists(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    from daemon.cli.main import main

    example = Path(__file__).parent.parent / "examples" / "devices-depot.yaml"
    config = load_config(example)
    assert len(config.devices) == 9
    text = example.read_text().replace("./devices-state", str(tmp_path))
    (tmp_path / "c.yaml").write_text(text)
    assert main(["devices", "-c", str(tmp_path / "c.yaml")]) == 0
    out = capsys.readouterr().out
    assert "sh2-probe3" in out and "tasmota/ds18b20-multi" in out and "last heard never" in out
    assert "bridge z2m" in out and "sensors behind it: sh1-climate1, sh1-door1" in out


def test_replay_prints_each_dead_letter_with_its_reason(
        capsys: pytest.CaptureFixture[str]) -> None:
    from daemon.cli.main import main

    scenario = Path(__file__).parent / "scenarios" / "bad-input-odd-values.yaml"
    assert main(["replay", str(scenario)]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    dead = [line for line in lines if "deadletter" in line]
    assert dead == [{"t": 0.0, "deadletter": "badge/sh1-reader1", "reason": "a string holds a "
                     "lone UTF-16 surrogate: not valid Unicode text",
                     "payload": '{"card": "\\ud800"}'}]
    assert main(["replay", "--check", str(scenario)]) == 0
    assert "dead letter at 0 s from badge/sh1-reader1: a string holds" in capsys.readouterr().out


def test_a_config_validated_from_its_dump_keeps_one_set_of_device_topics(
        tmp_path: Path) -> None:
    from daemon.config.schema import Config

    config = load_config(Path(__file__).parent.parent / "examples" / "devices-depot.yaml")
    again = Config.model_validate(config.model_dump(by_alias=True, mode="json"))
    assert again.mqtt.subscriptions == config.mqtt.subscriptions


def test_a_shelly_gen2_door_contact_on_another_input(tmp_path: Path) -> None:
    # Its own input's status topic; the samples still decode, so the binding is taken.
    config = load_config(_config(tmp_path, [
        {"sensor": "door1", "profile": "shelly/gen2-input-door", "device": "shellyplusi4-d1",
         "topic": "{device}/status/input:2"}]))
    topics = [(s.topic, s.sensor) for s in config.mqtt.subscriptions]
    assert topics == [("shellyplusi4-d1/status/input:2", "door1"),
                      ("shellyplusi4-d1/online", "door1")]
    # An input set up as a button has no state: a dead letter saying so, never a heartbeat.
    decoder = catalogue()["shelly/gen2-input-door"].decoder_config().build()
    with pytest.raises(DecodeError, match="required field 'open'"):
        decoder.decode(RawMessage("t", b'{"id":2,"state":null}', 1), "door1")
