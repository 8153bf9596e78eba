"""`depotwatch replay`: a scenario through the real decoders and engine on a virtual clock."""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import AwareDatetime, Field, ValidationError, model_validator

from daemon.alerts.book import AlertBook
from daemon.config.loading import load_config
from daemon.config.schema import Config
from daemon.config.yamlsource import YamlSource
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.pipeline import Pipeline
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import ConfigError, DecodeError
from daemon.vocabulary.readings import FieldValue, RawMessage, Reading
from daemon.vocabulary.settings import Settings
from drivers.decoders.base import FIELD_TYPES, coerce_field
from drivers.mqtt_topics import TopicRoute, TopicRouter
from rules.engine import Engine
from rules.kinds import RuleConfig
from rules.zone_state import zone_request

__all__ = ["ReplayResult", "Scenario", "check", "load_scenario", "replay"]

_NS = 1_000_000_000


class ReadingEvent(Settings):
    """A decoded reading, as a decoder would produce it."""

    sensor: str
    values: dict[str, Any] = Field(default_factory=dict)
    # When the sensor measured it, if earlier than delivery (an out-of-order reading).
    measured_at: float | None = Field(default=None, allow_inf_nan=False)


class MqttEvent(Settings):
    """A raw MQTT message: the topic and a JSON payload (mapping) or raw text."""

    topic: str
    payload: dict[str, Any] | list[Any] | str


class InputEvent(Settings):
    """A gateway input (the MQTT broker connection, a serial port) going down or up."""

    component: str
    up: bool


class ZoneEvent(Settings):
    """An officer arming or disarming a storehouse's zone (as from the API)."""

    storehouse: str
    action: Literal["arm", "disarm", "walk_test"]
    by: str = "officer"
    force: bool = False


class Event(Settings):
    """One thing that happens `at` seconds after the scenario's start."""

    at: float = Field(ge=0, allow_inf_nan=False)
    reading: ReadingEvent | None = None
    mqtt: MqttEvent | None = None
    input: InputEvent | None = None
    zone: ZoneEvent | None = None
    restart: bool = False

    @model_validator(mode="after")
    def _one_kind(self) -> Event:
        kinds = (self.reading is not None, self.mqtt is not None, self.input is not None,
                 self.zone is not None, self.restart)
        if sum(kinds) != 1:
            raise ValueError("an event is exactly one of: reading, mqtt, input, zone, "
                             "restart: true")
        return self


class Expectation(Settings):
    """An alert transition the scenario must produce."""

    at: float
    key: str
    state: Literal["firing", "resolved"]
    severity: Literal["warning", "alarm", "critical"] | None = None


class Scenario(Settings):
    """A depot, a start time, timed events and the alert transitions they must give."""

    description: str = ""
    config: str | dict[str, Any]
    rules: list[RuleConfig] | None = None
    start: AwareDatetime
    tick_s: float = Field(default=1.0, gt=0, allow_inf_nan=False)
    end: float | None = Field(default=None, allow_inf_nan=False)
    events: list[Event] = Field(default_factory=list)
    expect: list[Expectation] = Field(default_factory=list)
    tolerance_s: float = Field(default=1.0, ge=0)

    @model_validator(mode="after")
    def _in_order(self) -> Scenario:
        times = [event.at for event in self.events]
        if times != sorted(times):
            raise ValueError("events must be listed in delivery order (`at` never decreasing)")
        return self


def load_scenario(path: Path) -> tuple[Scenario, Config]:
    """Read a scenario and its depot config; ConfigError with lines on any mistake."""
    source = YamlSource(str(path), _text(path))
    if source.problems:
        raise ConfigError(str(path), source.problems)
    # The path itself may hold the surrogate: printed escaped, or stderr refuses it too.
    unencodable = [source.problem(loc, "a lone UTF-16 surrogate: not Unicode text")
                   .encode("utf-8", "backslashreplace").decode("utf-8")
                   for loc in _lone_surrogates(source.data, ())]
    if unencodable:
        raise ConfigError(str(path), unencodable)
    try:
        scenario = Scenario.model_validate(source.data)
    except ValidationError as exc:
        raise ConfigError(str(path), [source.problem(e["loc"], e["msg"])
                                      for e in exc.errors()]) from None
    if isinstance(scenario.config, str):
        config = load_config(path.parent / scenario.config)
    else:
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as inline:
            yaml.safe_dump(scenario.config, inline)
        config = load_config(inline.name)
        Path(inline.name).unlink()
    if scenario.rules is not None:
        config = config.model_copy(update={"rules": scenario.rules})
    return scenario, config


def _text(path: Path) -> str:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(str(path), [f"{path}:0: cannot read: {exc}"]) from exc
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ConfigError(str(path), [f"{path}:{line}: not UTF-8 text ({exc.reason} at byte "
                                      f"{exc.start})"]) from None


def _lone_surrogates(value: Any, loc: tuple[str | int, ...]) -> list[tuple[str | int, ...]]:
    """Where the document holds text no UTF-8 encoder takes (YAML reads "\\ud800" as it)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return [loc]
        return []
    if isinstance(value, dict):
        keys = [(*loc, str(k)) for k in value if _lone_surrogates(str(k), ())]
        return keys + [found for k, v in value.items() for found in _lone_surrogates(v, (*loc, k))]
    if isinstance(value, list):
        return [found for i, v in enumerate(value) for found in _lone_surrogates(v, (*loc, i))]
    return []


class ReplayResult:
    """The alert changes a replay produced, with their offsets from the start."""

    def __init__(self, start_ns: int) -> None:
        self.start_ns = start_ns
        self.alerts: list[Alert] = []
        self.deadletters: list[str] = []
        # (seconds from the start, source, reason, payload) of each dead letter, in order.
        self.dead_letters: list[tuple[float, str, str, bytes]] = []

    def offset_s(self, alert: Alert) -> float:
        """Seconds from the scenario's start to the change."""
        return (alert.changed_ns - self.start_ns) / _NS

    def json_lines(self, zone: dt.tzinfo) -> list[str]:
        """Every change as one JSON line."""
        return [
            json.dumps({
                "t": round(self.offset_s(a), 3),
                "at": dt.datetime.fromtimestamp(a.changed_ns / _NS, tz=zone).isoformat(),
                "key": a.key, "rule": a.rule, "state": a.state.value,
                "severity": a.severity.value, "summary": a.summary,
            }, ensure_ascii=False)
            for a in self.alerts
        ]

    def dead_letter_lines(self) -> list[str]:
        """Each dead letter as one JSON line: when, where from, why, and the payload's start."""
        return [json.dumps({"t": round(t, 3), "deadletter": source, "reason": reason,
                            "payload": payload[:120].decode("utf-8", "backslashreplace")},
                           ensure_ascii=False)
                for t, source, reason, payload in self.dead_letters]


def _engine(config: Config) -> Engine:
    depot = config.depot()
    return Engine([(rule.type, rule.build(depot)) for rule in config.rule_set()], depot)


def replay(scenario: Scenario, config: Config) -> ReplayResult:
    """Play the events on a virtual clock, ticking every `tick_s`; pure apart from the result."""
    start_ns = int(scenario.start.timestamp() * _NS)
    result = ReplayResult(start_ns)
    depot = config.depot()
    with tempfile.TemporaryDirectory() as tmp:
        deadletters = DeadLetterStore(Path(tmp) / "deadletters.sqlite", config.deadletters)
        alerts = AlertBook()
        pipeline = Pipeline(
            depot=depot,
            router=TopicRouter([TopicRoute.from_config(s) for s in config.mqtt.subscriptions]),
            engine=_engine(config), alerts=alerts, deadletters=deadletters,
            store=lambda lines, receipts: None, notify=[result.alerts.append],
        )
        end = scenario.end if scenario.end is not None else (
            scenario.events[-1].at + 1 if scenario.events else 0.0)
        ticks = 0
        for event in [*scenario.events, None]:
            until = end if event is None else event.at
            while ticks * scenario.tick_s <= until:
                pipeline.tick(start_ns + int(ticks * scenario.tick_s * _NS))
                ticks += 1
            if event is None:
                break
            now_ns = start_ns + int(event.at * _NS)
            if event.restart:
                # What the daemon does across a restart: state to disk, a new engine, restore.
                saved = json.loads(json.dumps(pipeline.snapshot()))
                pipeline.engine = _engine(config)
                pipeline.alerts = alerts = AlertBook()
                pipeline.restore(saved)
            elif event.input is not None:
                pipeline.input_state(event.input.component, event.input.up, now_ns)
            elif event.zone is not None:
                zone = event.zone
                pipeline.zone_request(zone.storehouse, zone_request(
                    zone.action, zone.by, "scenario", force=zone.force), now_ns)
            elif event.mqtt is not None:
                payload = event.mqtt.payload
                body = payload.encode() if isinstance(payload, str) else json.dumps(
                    payload).encode()
                pipeline.ingest(RawMessage(event.mqtt.topic, body, now_ns), now_ns)
            elif event.reading is not None:
                reading = _reading(event.reading, start_ns, now_ns)
                if reading is None or reading.sensor not in depot.sensors:
                    result.deadletters.append(f"t={event.at}: {event.reading.sensor}")
                    result.dead_letters.append((event.at, "scenario", "unknown sensor or bad "
                                                f"values for {event.reading.sensor!r}", b""))
                    continue
                pipeline.take(reading, now_ns, "scenario")
        kept = list(reversed(deadletters.entries(100_000)))
        result.deadletters += [f"{d.source}: {d.reason}" for d in kept]
        result.dead_letters += [((d.at_ns - start_ns) / _NS, d.source, d.reason, d.payload)
                                for d in kept]
        result.dead_letters.sort(key=lambda entry: entry[0])
        deadletters.close()
    return result


def _reading(event: ReadingEvent, start_ns: int, now_ns: int) -> Reading | None:
    values: dict[str, FieldValue] = {}
    try:
        for name, value in event.values.items():
            if name not in FIELD_TYPES:
                raise DecodeError(f"unknown field {name!r}")
            values[name] = coerce_field(name, value)
    except DecodeError:
        return None
    at_ns = now_ns if event.measured_at is None else start_ns + int(event.measured_at * _NS)
    return Reading(sensor=event.sensor, at_ns=at_ns, values=values)


def check(scenario: Scenario, result: ReplayResult) -> list[str]:
    """A readable diff between the expected and the produced transitions; empty if they match."""
    actual = [(result.offset_s(a), a) for a in result.alerts]
    used: set[int] = set()
    problems: list[str] = []
    for want in scenario.expect:
        match = next((
            i for i, (t, a) in enumerate(actual)
            if i not in used and a.key == want.key and a.state.value == want.state
            and (want.severity is None or a.severity.value == want.severity)
            and abs(t - want.at) <= scenario.tolerance_s
        ), None)
        if match is None:
            near = [f"{a.state.value} at {t:.1f} s" for t, a in actual if a.key == want.key]
            problems.append(f"- missing  {want.state:<8} {want.key} at {want.at:g} s"
                            f" (±{scenario.tolerance_s:g})"
                            + (f"; {want.key} was {', '.join(near)}" if near else ""))
        else:
            used.add(match)
    for i, (t, a) in enumerate(actual):
        if i not in used:
            problems.append(f"+ unexpected {a.state.value:<8} {a.key} at {t:.1f} s "
                            f"[{a.severity.value}]: {a.summary}")
    return problems
