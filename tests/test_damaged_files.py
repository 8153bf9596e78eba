"""Files the daemon owns, damaged: set aside with a timestamped name, a fault alert, a fresh file,
and security state (alarms, silences) back to fail-secure; never a crash loop."""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from inprocess_daemon import depot, eventually, running
from servers import Mosquitto

from daemon.alerts.audit import AuditLog, verify
from daemon.config.schema import Config
from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.settings import DeadLetterConfig
from daemon.runner import Daemon
from daemon.statefile import StateFile
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.readings import Severity, TransitionKind

NOW_NS = time.time_ns()
HOUR_NS = 3600 * 1_000_000_000


def _config(state_dir: Path) -> Config:
    # Port 1 is never a broker: these daemons are built, not run.
    return Config.model_validate(depot(state_dir, 1))


def _lived_in_state(state_dir: Path) -> dict[str, Any]:
    """A state file with an open alarm and an approved silence, as a stopped daemon left it."""
    daemon = Daemon(_config(state_dir))
    alert = Alert(key="door_armed.SH1-D1", rule="door_armed", subject="SH1-D1",
                  severity=Severity.CRITICAL, state=TransitionKind.FIRING,
                  summary="door SH1-D1 opened while armed", storehouse="SH1",
                  started_ns=NOW_NS, changed_ns=NOW_NS, facts={"door": "SH1-D1"})
    daemon.desk.condition(alert, NOW_NS)
    silence = daemon.desk.add_silence({"rule": "door_armed"}, "Sgt. Novak", "maintenance",
                                      NOW_NS + HOUR_NS, NOW_NS)
    daemon.desk.approve_silence(silence.id, "Lt. Dvorak", NOW_NS)
    daemon.state_file.save(daemon._state())
    daemon.audit.close()
    daemon.deadletters.close()
    return json.loads(daemon.state_file.path.read_text())


def _retyped(value: Any) -> Any:
    return {dict: lambda: [], list: lambda: {"x": 1}, str: lambda: 7, int: lambda: "7",
            float: lambda: "7.5", bool: lambda: "yes"}.get(type(value), lambda: [])()


def _inner_retyped(doc: dict[str, Any], path: tuple[str | int, ...]) -> dict[str, Any]:
    copy = json.loads(json.dumps(doc))
    node: Any = copy
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = _retyped(node[path[-1]])
    return copy


DAMAGE: list[tuple[str, Callable[[dict[str, Any]], bytes]]] = [
    ("not UTF-8", lambda doc: b'{"note":"d\xe9p\xf4t",' + json.dumps(doc).encode()[1:]),
    ("not JSON", lambda doc: json.dumps(doc).encode()[:-40]),
    ("not an object", lambda doc: b"[1, 2, 3]"),
    ("alarms a list", lambda doc: json.dumps({**doc, "alarms": []}).encode()),
    ("silence ends as text", lambda doc: json.dumps(
        _inner_retyped(doc, ("alarms", "silences", 0, "ends_ns"))).encode()),
    ("silence approver a number", lambda doc: json.dumps(
        _inner_retyped(doc, ("alarms", "silences", 0, "approved_by"))).encode()),
    ("alarm started as a list", lambda doc: json.dumps(
        _inner_retyped(doc, ("alarms", "open", 0, "facts"))).encode()),
    ("engine a list", lambda doc: json.dumps({**doc, "engine": []}).encode()),
    ("engine rules a list", lambda doc: json.dumps(
        _inner_retyped(doc, ("engine", "rules"))).encode()),
    ("undelivered notice retyped", lambda doc: json.dumps(
        {**doc, "outboxes": {"mqtt": [{"key": 7}]}}).encode()),
]


@pytest.mark.parametrize(("how", "damage"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_state_file_is_set_aside_and_the_start_fail_secure(
        tmp_path: Path, how: str, damage: Callable[[dict[str, Any]], bytes]) -> None:
    state_dir = tmp_path / "state"
    doc = _lived_in_state(state_dir)
    (state_dir / "engine-state.json").write_bytes(damage(doc))
    daemon = Daemon(_config(state_dir))
    try:
        # Fail-secure: no alarm half-restored, no silence muting anything.
        assert daemon.desk.alarms() == []
        assert daemon.desk.silences() == []
        assert daemon.pipeline.alerts.firing() == []
        assert daemon.state_file.damage is not None
        assert "silences" in daemon.state_file.damage
        aside = sorted(state_dir.glob("engine-state.json.damaged-*"))
        assert len(aside) == 1, how
        assert aside[0].read_bytes() == damage(doc)
        assert not (state_dir / "engine-state.json").exists()
    finally:
        daemon.audit.close()
        daemon.deadletters.close()


def test_undamaged_state_is_taken_back(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    _lived_in_state(state_dir)
    daemon = Daemon(_config(state_dir))
    try:
        assert [a.key for a in daemon.desk.alarms()] == ["door_armed.SH1-D1"]
        assert [s.approved_by for s in daemon.desk.silences()] == ["Lt. Dvorak"]
        assert daemon.state_file.damage is None
        assert not list(state_dir.glob("*.damaged-*"))
    finally:
        daemon.audit.close()
        daemon.deadletters.close()


_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=3),
    max_leaves=12)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(section=st.sampled_from(["engine", "alerts", "alarms", "recent", "outboxes"]),
       value=_JSON)
def test_any_json_in_any_section_never_stops_the_start(
        tmp_path_factory: pytest.TempPathFactory, section: str, value: Any) -> None:
    state_dir = tmp_path_factory.mktemp("state")
    (state_dir / "engine-state.json").write_text(json.dumps({section: value}))
    daemon = Daemon(_config(state_dir))
    try:
        daemon.pipeline.tick(NOW_NS)
        daemon.desk.tick(NOW_NS)
        assert all(s.active(NOW_NS) is False or s.approved_by for s in daemon.desk.silences())
    finally:
        daemon.audit.close()
        daemon.deadletters.close()


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-2**70, max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(
        st.text(max_size=8) | st.integers(-5, 5), inner, max_size=3), max_leaves=12))
def test_state_saved_reads_back_as_the_standard_library_wrote_it(value: Any) -> None:
    # Saved with orjson (issue 29), read with json: what json.dumps' round trip gave, integer
    # keys as strings and integers past 64 bits included.
    import tempfile
    with tempfile.TemporaryDirectory() as tmp:
        state = StateFile(Path(tmp) / "engine-state.json")
        state.save({"engine": value})
        assert state.load() == json.loads(json.dumps({"engine": value}))


def test_state_file_not_utf8_reads_as_none(tmp_path: Path) -> None:
    path = tmp_path / "engine-state.json"
    path.write_bytes(b'{"a": "\xff"}')
    state = StateFile(path)
    assert state.load() is None
    assert state.damage is not None and "utf-8" in state.damage
    assert [p.name.split("-")[0] for p in tmp_path.iterdir()] == ["engine"]


def test_damaged_deadletter_database_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "deadletters.sqlite"
    store = DeadLetterStore(path, DeadLetterConfig())
    for n in range(50):
        store.keep("zigbee2mqtt/door1", "not JSON", b"x" * 4000, n)
    store.close()
    # Cut in the middle, as a power cut on a disk without barriers might: SQLite only notices
    # when it reads the missing pages, which the store now makes it do at open.
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(sqlite3.DatabaseError):
        DeadLetterStore(path, DeadLetterConfig(), repair=False)
    store = DeadLetterStore(path, DeadLetterConfig())
    try:
        assert store.damage is not None and "set aside as deadletters.sqlite.damaged-" in (
            store.damage)
        store.keep("zigbee2mqtt/door1", "not JSON", b"\xff", 1)
        assert store.total() == 1
    finally:
        store.close()
    assert len(list(tmp_path.glob("deadletters.sqlite.damaged-*"))) == 1


def test_garbage_deadletter_database_is_set_aside(tmp_path: Path) -> None:
    path = tmp_path / "deadletters.sqlite"
    path.write_bytes(random.Random(7).randbytes(12288))
    store = DeadLetterStore(path, DeadLetterConfig())
    try:
        assert store.damage is not None
        assert store.total() == 0
    finally:
        store.close()


def test_audit_log_of_garbage_is_set_aside_and_a_new_chain_names_it(tmp_path: Path) -> None:
    path = tmp_path / "audit.jsonl"
    path.write_bytes(random.Random(20261207).randbytes(8192).replace(b"\n", b"") + b"\nx\n")
    with AuditLog(path) as audit:
        assert audit.damage is not None and "new chain" in audit.damage
        entry = audit.append("Sgt. Novak", "acknowledged", "door_armed.SH1-D1", {}, NOW_NS)
        assert entry.seq == 2
    aside = list(tmp_path.glob("audit.jsonl.damaged-*"))
    assert len(aside) == 1
    assert verify(path).status == "intact"
    first = json.loads(path.read_text().splitlines()[0])
    assert (first["action"], first["subject"]) == ("audit_log_set_aside", aside[0].name)


def test_damaged_files_raise_a_fault_alert_and_the_daemon_runs(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    config = depot(state_dir, mosquitto.port)
    state_dir.mkdir()
    (state_dir / "engine-state.json").write_bytes(b"\xff\xfe not the state")
    (state_dir / "deadletters.sqlite").write_bytes(random.Random(1).randbytes(8192))
    with running(config) as daemon:
        def faults() -> set[str]:
            return {a.subject for a in daemon.daemon.desk.alarms() if a.rule == "file_damaged"}

        eventually(lambda: faults() == {"engine-state.json", "deadletters.sqlite"})
        alarm = daemon.daemon.desk.get("file_damaged.engine-state.json")
        assert "engine-state.json.damaged-" in alarm.summary
        assert "nothing silenced" in alarm.summary
        daemon.publish("zigbee2mqtt/door1", b"\x00garbage")
        eventually(lambda: daemon.daemon.deadletters.total() == 1)
