"""Odd input found by comparing trees (bench/ingest_outputs.py): none of it may stop the gateway.

An exception out of `Pipeline.ingest` left the MQTT message unacknowledged, so the broker would
have sent it again at every reconnect; a rule's bug on one reading must not do that either.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.alerts.book import AlertBook
from daemon.cli.replay import _engine, check, load_scenario, replay
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.pipeline import Pipeline
from daemon.vocabulary.readings import RawMessage, Reading
from drivers.decoders.base import parse_json_object
from drivers.mqtt_topics import TopicRoute, TopicRouter
from rules.base import Outcome
from rules.climate import dew_point_c
from rules.engine import Engine

SCENARIOS = Path(__file__).parent / "scenarios"


def test_a_lone_surrogate_is_a_dead_letter_and_judging_goes_on() -> None:
    scenario, config = load_scenario(SCENARIOS / "bad-input-odd-values.yaml")
    result = replay(scenario, config)
    assert check(scenario, result) == []
    assert result.deadletters == [
        "badge/sh1-reader1: a string holds a lone UTF-16 surrogate: not valid Unicode text"]


@pytest.mark.parametrize("payload", [b'{"card": "\\ud800"}', b'{"\\udfff": 1}',
                                     b'{"a": [{"b": "x\\udc00"}], "c": NaN}'])
def test_json_with_a_lone_surrogate_is_refused(payload: bytes) -> None:
    from daemon.vocabulary.errors import DecodeError
    with pytest.raises(DecodeError, match="lone UTF-16 surrogate"):
        parse_json_object(payload)


def test_a_surrogate_pair_is_text() -> None:
    assert parse_json_object(b'{"a": "\\ud83d\\ude00", "b": NaN}')["a"] == "\U0001F600"


@given(st.floats(-1e9, 1e9), st.floats(-10, 1e6))
def test_the_dew_point_is_a_number_for_any_reading(temperature: float, humidity: float) -> None:
    assert math.isfinite(dew_point_c(temperature, humidity))


class BrokenRule:
    """A rule with a bug on one sensor's readings."""

    def observe(self, reading: Reading, now_ns: int) -> list[Outcome]:
        if reading.sensor == "sh1-door1":
            raise KeyError("a bug")
        return []

    def tick(self, now_ns: int) -> list[Outcome]:
        return []

    def snapshot(self) -> dict[str, Any]:
        return {}

    def restore(self, state: Any) -> None:
        pass


def test_a_rule_failing_on_a_reading_is_counted_logged_once_and_its_points_kept(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _, config = load_scenario(SCENARIOS / "access-badge-refused.yaml")
    depot = config.depot()
    stored: list[list[str]] = []
    pipeline = Pipeline(
        depot=depot,
        router=TopicRouter([TopicRoute.from_config(s) for s in config.mqtt.subscriptions]),
        engine=Engine([("broken", BrokenRule()), *_engine(config)._rules], depot),
        alerts=AlertBook(),
        deadletters=DeadLetterStore(tmp_path / "dl.sqlite", config.deadletters),
        store=lambda lines, receipts: stored.append(list(lines)), notify=[],
    )
    caplog.set_level(logging.ERROR, logger="daemon.ingest.pipeline")
    for i in range(3):
        pipeline.ingest(RawMessage("zigbee2mqtt/sh1-door1", b'{"contact": false}',
                                   1_800_000_000_000_000_000 + i), 1_800_000_000_000_000_000 + i)
    assert pipeline.rule_errors == 3
    assert len([r for r in caplog.records if "rules failed" in r.getMessage()]) == 1
    assert all(any(line.startswith("door,") for line in lines) for lines in stored)


_SCENARIO_HEAD = 'config: {depot}\nstart: "2026-11-25T23:00:00+01:00"\nevents:\n'


@pytest.mark.parametrize(("event", "line", "says"), [
    ('  - {at: 0, mqtt: {topic: badge/sh1-reader1, payload: "\\ud800"}}\n', 4, "surrogate"),
    ('  - {at: 0, mqtt: {topic: "badge/\\udc00", payload: {card: "1"}}}\n', 4, "surrogate"),
    ('  - {at: 0, reading: {sensor: sh1-door1, values: {"\\ud800x": 1}}}\n', 4, "surrogate"),
    ('  - {at: 1e400, mqtt: {topic: badge/sh1-reader1, payload: "x"}}\n', 4, "finite"),
    ('  - {at: 1, reading: {sensor: sh1-door1, measured_at: .nan}}\n', 4, "finite"),
    ('# d\xe9p\xf4t\n', 4, "not UTF-8"),
])
def test_replay_refuses_undecodable_input_with_the_file_and_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], event: str, line: int,
        says: str) -> None:
    from daemon.cli.main import main
    scenario = tmp_path / "odd.yaml"
    text = _SCENARIO_HEAD.format(depot=SCENARIOS / "depot.yaml") + event
    scenario.write_bytes(text.encode("latin-1") if "\xe9" in event else text.encode())
    assert main(["replay", str(scenario)]) == 78
    err = capsys.readouterr().err
    assert f"{scenario}:{line}:" in err and says in err, err


@settings(max_examples=40, deadline=None)
@given(st.text(st.characters(codec=None, exclude_categories=("Cc",)), max_size=12))
def test_replay_takes_any_text_or_exits_78(text: str) -> None:
    """Whatever text an event holds (lone surrogates included): a replay or exit 78."""
    import json
    import tempfile

    from daemon.cli.main import main
    with tempfile.TemporaryDirectory() as tmp:
        scenario = Path(tmp) / "fuzz.yaml"
        body = json.dumps(text)  # YAML reads a JSON string as the same text, escapes included
        scenario.write_text(
            _SCENARIO_HEAD.format(depot=SCENARIOS / "depot.yaml")
            + f"  - {{at: 0, mqtt: {{topic: badge/sh1-reader1, payload: {body}}}}}\n"
            + f"  - {{at: 1, reading: {{sensor: sh1-door1, values: {{open: {body}}}}}}}\n",
            encoding="utf-8")
        assert main(["replay", str(scenario)]) in (0, 78)
