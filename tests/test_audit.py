"""The audit log: the chain round-trips, every kind of tampering is found and located, a torn
last line is told apart from tampering and set aside, export and the CLI."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from daemon.alerts.audit import (
    GENESIS_HASH,
    AuditError,
    AuditLog,
    Problem,
    audit_path,
    encode,
    export,
    verify,
)

REPO = Path(__file__).resolve().parent.parent
T0 = 1_717_200_000 * 10**9  # 2024-06-01T00:00:00Z
MINUTE = 60 * 10**9


def _fill(path: Path, count: int = 6) -> list[str]:
    """A log of `count` alarm actions a minute apart; returns its lines."""
    with AuditLog(path) as audit:
        for i in range(count):
            audit.append(f"officer-{i % 2}", "acknowledged", f"door_forced.D{i}",
                         {"note": f"checked é {i}", "finding": None, "n": i, "t_c": 21.5},
                         T0 + i * MINUTE)
    return path.read_text(encoding="utf-8").splitlines(keepends=True)


def _write(path: Path, lines: list[str]) -> None:
    path.write_text("".join(lines), encoding="utf-8")


def _kinds(problems: tuple[Problem, ...]) -> list[tuple[str, int, int | None]]:
    return [(p.kind, p.line, p.seq) for p in problems]


@pytest.fixture
def log_path(tmp_path: Path) -> Path:
    return audit_path(tmp_path)


def test_round_trip(log_path: Path) -> None:
    with AuditLog(log_path) as audit:
        assert audit.last_hash() == GENESIS_HASH
        first = audit.append("system", "raised", "tamper.S1", {"severity": "critical"}, T0)
        second = audit.append("alice", "acknowledged", "tamper.S1", {"note": "on my way"},
                              T0 + MINUTE)
        assert (first.seq, first.prev_hash) == (1, GENESIS_HASH)
        assert (second.seq, second.prev_hash) == (2, first.hash)
        assert audit.last_hash() == second.hash
    result = verify(log_path)
    assert result.status == "intact"
    assert (result.lines, result.last_seq, result.last_hash) == (2, 2, second.hash)
    # Reopening continues the chain.
    with AuditLog(log_path) as audit:
        assert audit.last_hash() == second.hash
        third = audit.append("system", "cleared", "tamper.S1", {}, T0 + 2 * MINUTE)
    assert (third.seq, third.prev_hash) == (3, second.hash)
    assert verify(log_path).status == "intact"
    assert [e["seq"] for e in export(log_path, 0)] == [1, 2, 3]


def test_line_format_checks_without_reencoding(log_path: Path) -> None:
    """An archive in any language checks a line: SHA-256 of the line without its `hash` member."""
    for line in _fill(log_path, 3):
        entry = json.loads(line)
        assert list(entry)[-1] == "hash"
        body = line.rstrip("\n").encode("utf-8")[: -len(',"hash":"' + "0" * 64 + '"}')] + b"}"
        assert hashlib.sha256(body).hexdigest() == entry["hash"]
        assert encode(entry) + "\n" == line


@pytest.mark.parametrize(("field", "value"), [
    ("actor", "mallory"),
    ("action", "cleared"),
    ("at_ns", T0),
    ("details", {"note": "nothing to see"}),
    ("subject", "door_forced.D9"),
])
def test_edited_entry_is_named(log_path: Path, field: str, value: object) -> None:
    lines = _fill(log_path)
    entry = json.loads(lines[3])
    entry[field] = value
    lines[3] = encode(entry) + "\n"  # the old hash kept
    _write(log_path, lines)
    result = verify(log_path)
    assert result.status == "tampered"
    assert _kinds(result.problems) == [("edited", 4, 4)]
    assert "line 4 (seq 4): edited" in str(result.problems[0])


def test_edited_and_rehashed_entry_breaks_the_next_link(log_path: Path) -> None:
    lines = _fill(log_path)
    entry = json.loads(lines[2])
    entry["actor"] = "mallory"
    fields = {k: v for k, v in entry.items() if k != "hash"}
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    entry["hash"] = hashlib.sha256(canonical.encode()).hexdigest()
    lines[2] = encode(entry) + "\n"
    _write(log_path, lines)
    assert _kinds(verify(log_path).problems) == [("chain_broken", 4, 4)]


def test_reformatted_line_is_an_edit(log_path: Path) -> None:
    """Same values, other bytes (a space after a comma) is still caught."""
    lines = _fill(log_path)
    lines[1] = lines[1].replace(',"actor"', ', "actor"')
    _write(log_path, lines)
    assert _kinds(verify(log_path).problems) == [("edited", 2, 2)]


@pytest.mark.parametrize(("index", "expected"), [
    (0, [("removed", 1, 2)]),
    (2, [("removed", 3, 4)]),
])
def test_removed_entry(log_path: Path, index: int, expected: list[tuple[str, int, int]]) -> None:
    lines = _fill(log_path)
    del lines[index]
    _write(log_path, lines)
    result = verify(log_path)
    assert _kinds(result.problems) == expected
    assert f"seq {index + 1} missing" in result.problems[0].message


def test_removed_last_entry_needs_the_anchor(log_path: Path) -> None:
    """Cutting whole lines off the end leaves a valid shorter chain: only the last hash quoted
    elsewhere (monthly report, central archive) reveals it."""
    lines = _fill(log_path)
    before = verify(log_path).last_hash
    _write(log_path, lines[:-1])
    result = verify(log_path)
    assert result.status == "intact"
    assert result.last_hash != before


def test_swapped_entries(log_path: Path) -> None:
    lines = _fill(log_path)
    lines[2], lines[3] = lines[3], lines[2]
    _write(log_path, lines)
    assert _kinds(verify(log_path).problems) == [("reordered", 3, 4), ("reordered", 4, 3)]


def test_duplicated_entry(log_path: Path) -> None:
    lines = _fill(log_path)
    lines.insert(3, lines[1])
    _write(log_path, lines)
    assert _kinds(verify(log_path).problems) == [("duplicated", 4, 2)]


def test_garbled_line_in_the_middle(log_path: Path) -> None:
    lines = _fill(log_path)
    lines[2] = "}{ not json\n"
    _write(log_path, lines)
    assert _kinds(verify(log_path).problems) == [("garbled", 3, None)]


@pytest.mark.parametrize("cut", [1, 40, -2])
def test_torn_last_line_is_set_aside(log_path: Path, cut: int) -> None:
    lines = _fill(log_path)
    torn = lines[-1].encode("utf-8")[:cut]
    log_path.write_bytes("".join(lines[:-1]).encode("utf-8") + torn)
    result = verify(log_path)
    assert result.status == "torn_tail"
    assert result.problems == ()
    assert result.torn is not None
    assert (result.torn.line, result.torn.size) == (6, len(torn))
    assert result.last_seq == 5

    with AuditLog(log_path) as audit:
        assert audit.torn is not None
        assert audit.torn.read_bytes() == torn
        entry = audit.append("system", "raised", "tamper.S1", {}, T0 + 10 * MINUTE)
    assert entry.seq == 6
    result = verify(log_path)
    assert (result.status, result.last_seq) == ("intact", 6)


def test_zero_filled_tail_is_torn(log_path: Path) -> None:
    """ext4 may extend a file with zeros when a crash beats the data blocks to disk."""
    _fill(log_path)
    with log_path.open("ab") as out:
        out.write(b"\0" * 300)
    assert verify(log_path).status == "torn_tail"
    with AuditLog(log_path) as audit:
        audit.append("system", "raised", "tamper.S1", {}, T0)
    assert verify(log_path).status == "intact"


def test_only_a_torn_line(log_path: Path) -> None:
    log_path.write_bytes(b'{"action":"rai')
    with AuditLog(log_path) as audit:
        assert audit.append("system", "raised", "x", {}, T0).seq == 1
    assert verify(log_path).status == "intact"


def test_reopen_after_garbled_last_line_reports_only_that_line(log_path: Path) -> None:
    lines = _fill(log_path)
    lines[-1] = "garbage\n"
    _write(log_path, lines)
    with AuditLog(log_path) as audit:
        assert audit.append("system", "raised", "x", {}, T0).seq == 7
    assert _kinds(verify(log_path).problems) == [("garbled", 6, None)]


def test_open_reads_back_past_a_long_tail(log_path: Path) -> None:
    """The chain head is found even when the last lines are longer than one read window."""
    with AuditLog(log_path) as audit:
        audit.append("system", "raised", "x", {}, T0)
        last = audit.append("system", "note", "x", {"text": "y" * 200_000}, T0)
    with AuditLog(log_path) as audit:
        assert audit.last_hash() == last.hash
        assert audit.append("system", "cleared", "x", {}, T0).seq == 3
    assert verify(log_path).status == "intact"


def test_second_writer_is_refused(log_path: Path) -> None:
    with AuditLog(log_path), pytest.raises(AuditError, match="in use"):
        AuditLog(log_path)


@pytest.mark.parametrize("details", [{"x": float("nan")}, {"x": object()}, {"x": "\ud800"}])
def test_details_must_be_json(log_path: Path, details: dict[str, object]) -> None:
    with AuditLog(log_path) as audit:
        with pytest.raises(AuditError, match="not JSON"):
            audit.append("system", "raised", "x", details, T0)  # type: ignore[arg-type]
        assert audit.append("system", "raised", "x", {}, T0).seq == 1
    assert verify(log_path).status == "intact"


def test_export_since(log_path: Path) -> None:
    lines = _fill(log_path)
    exported = list(export(log_path, T0 + 3 * MINUTE))
    assert [e["seq"] for e in exported] == [4, 5, 6]
    assert [encode(e) + "\n" for e in exported] == lines[3:]
    assert list(export(log_path, T0 + 99 * MINUTE)) == []


# -- CLI ------------------------------------------------------------------------------------

def _config(tmp_path: Path) -> Path:
    config = tmp_path / "depotwatch.yaml"
    config.write_text(f"site: {{id: x}}\nstorehouses: [{{id: S}}]\nstate_dir: {tmp_path}\n",
                      encoding="utf-8")
    return config


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "daemon.cli", "audit", *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)


def test_cli_verify(tmp_path: Path) -> None:
    config = _config(tmp_path)
    done = _cli("verify", "-c", config)
    assert (done.returncode, done.stderr.startswith("no audit log yet")) == (0, True)

    lines = _fill(audit_path(tmp_path))
    done = _cli("verify", "-c", config)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "chain intact" in done.stdout

    _write(audit_path(tmp_path), [*lines[:-1], lines[-1][:20]])
    done = _cli("verify", "-c", config)
    assert done.returncode == 3, done.stdout + done.stderr
    assert "line 6: torn final write" in done.stdout

    lines[4] = lines[4].replace("officer-0", "officer-9")
    _write(audit_path(tmp_path), lines)
    done = _cli("verify", "-c", config)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "line 5 (seq 5): edited" in done.stdout
    assert "TAMPERED" in done.stdout


def test_cli_bad_config(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("site: {id: x}\n", encoding="utf-8")
    assert _cli("verify", "-c", config).returncode == 78


def test_cli_export(tmp_path: Path) -> None:
    config = _config(tmp_path)
    lines = _fill(audit_path(tmp_path))
    out = tmp_path / "archive.jsonl"
    done = _cli("export", "-c", config, "--since", "2024-06-01T00:04:00Z", "-o", out)
    assert done.returncode == 0, done.stderr
    assert out.read_text(encoding="utf-8").splitlines(keepends=True) == lines[4:]
    # No offset means UTC; to stdout.
    done = _cli("export", "-c", config, "--since", "2024-06-01T00:05:00")
    assert done.stdout.splitlines(keepends=True) == lines[5:]
    assert _cli("export", "-c", config, "--since", "yesterday").returncode == 2


# -- any single-byte change ------------------------------------------------------------------

@pytest.fixture(scope="module")
def sample(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, bytes]]:
    directory = tmp_path_factory.mktemp("audit-bytes")
    _fill(directory / "original.jsonl", 4)
    yield directory / "changed.jsonl", (directory / "original.jsonl").read_bytes()


@settings(max_examples=600, deadline=None)
@given(data=st.data())
def test_any_single_byte_change_is_detected(
    sample: tuple[Path, bytes], data: st.DataObject
) -> None:
    """Replace, delete or insert one byte anywhere: never `intact`."""
    path, original = sample
    op = data.draw(st.sampled_from(["replace", "delete", "insert"]), label="op")
    at = data.draw(st.integers(0, len(original) - (op != "insert")), label="offset")
    if op == "replace":
        new = data.draw(st.integers(0, 255).filter(lambda b: b != original[at]), label="byte")
        changed = original[:at] + bytes([new]) + original[at + 1:]
    elif op == "delete":
        changed = original[:at] + original[at + 1:]
    else:
        changed = original[:at] + bytes([data.draw(st.integers(0, 255))]) + original[at:]
    path.write_bytes(changed)
    assert verify(path).status != "intact"
