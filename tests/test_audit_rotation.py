"""The audit log rotates by size or by month with the chain carried across files, and `verify`
streams a large log in bounded memory; `audit verify --json` and its progress bar."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import pty
import subprocess
import sys
import tracemalloc
from pathlib import Path

from daemon.alerts.audit import AuditLog, audit_path, export, verify
from daemon.alerts.audit_format import GENESIS_HASH, chain_files, entry_body, entry_line
from daemon.alerts.settings import AuditConfig

REPO = Path(__file__).resolve().parent.parent
T0 = 1_717_200_000 * 10**9  # 2024-06-01T00:00:00Z
DAY = 86_400 * 10**9


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_size_rotation_carries_the_chain(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    with AuditLog(path, AuditConfig(rotate_bytes=4096)) as audit:
        for i in range(60):
            audit.append("alice", "acknowledged", f"door_forced.D{i}", {"note": "x" * 40},
                         T0 + i)
    files = chain_files(path)
    assert len(files) >= 4 and files[-1] == path
    assert [f.name for f in files[:2]] == ["audit.jsonl.0000000001",
                                           f"audit.jsonl.{_lines(files[1])[0]['seq']:010d}"]
    for before, after in itertools.pairwise(files):
        assert before.stat().st_size <= 4096
        last, first = _lines(before)[-1], _lines(after)[0]
        # Each new file begins with the previous file's last hash, in an entry saying so.
        assert (first["action"], first["subject"], first["prev_hash"], first["seq"]) == (
            "audit_log_rotated", before.name, last["hash"], int(str(last["seq"])) + 1)
        assert first["details"] == {"file": before.name, "last_seq": last["seq"],
                                    "last_hash": last["hash"]}
    result = verify(path)
    assert (result.status, result.files, result.lines) == ("intact", tuple(files),
                                                           sum(len(_lines(f)) for f in files))
    seqs = [e["seq"] for e in export(path, 0)]
    assert seqs == list(range(1, result.last_seq + 1))
    # A restart continues in the active file, same chain.
    with AuditLog(path, AuditConfig(rotate_bytes=4096)) as audit:
        assert audit.append("bob", "cleared", "door_forced.D0", {}, T0).seq == result.last_seq + 1
    assert verify(path).status == "intact"


def test_monthly_rotation(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    with AuditLog(path, AuditConfig(rotate_every="month")) as audit:
        for day in range(0, 70, 7):  # 2024-06-01 .. 2024-08-03
            audit.append("system", "raised", "tamper.S1", {}, T0 + day * DAY)
    assert [f.name for f in chain_files(path)] == [
        "audit.jsonl.0000000001", "audit.jsonl.0000000006", "audit.jsonl"]
    assert [e["action"] for e in _lines(path)] == ["audit_log_rotated", "raised"]
    assert verify(path).status == "intact"


def test_crash_between_rename_and_first_entry_continues_the_chain(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    with AuditLog(path) as audit:
        last = [audit.append("system", "raised", f"s{i}", {}, T0) for i in range(3)][-1]
    path.rename(path.with_name("audit.jsonl.0000000001"))
    with AuditLog(path) as audit:
        assert audit.last_hash() == last.hash
        entry = audit.append("system", "cleared", "s0", {}, T0)
    assert (entry.seq, entry.prev_hash) == (4, last.hash)
    assert verify(path).status == "intact"


def test_tampering_across_files_is_found(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    with AuditLog(path, AuditConfig(rotate_bytes=4096)) as audit:
        for i in range(60):
            audit.append("alice", "acknowledged", f"door_forced.D{i}", {"note": "x" * 40}, T0)
    first, second, *_ = chain_files(path)
    # The last entry of a rotated file rewritten with a fresh hash: the next file's link breaks.
    lines = first.read_bytes().splitlines(keepends=True)
    obj = json.loads(lines[-1])
    obj["actor"] = "mallory"
    body = entry_body({k: v for k, v in obj.items() if k != "hash"})
    lines[-1] = entry_line(body, hashlib.sha256(body).hexdigest())
    first.write_bytes(b"".join(lines))
    [broken] = verify(path).problems
    assert (broken.kind, broken.file, broken.line) == ("chain_broken", second.name, 1)
    # A whole rotated file deleted: its seqs are missing before the next file's first line.
    second.unlink()
    problems = verify(path).problems
    assert [(p.kind, p.line) for p in problems] == [("removed", 1)]
    assert str(problems[0]).startswith("audit.jsonl.")


def _big_log(path: Path, count: int) -> None:
    """`count` entries written directly (no fsync per entry: only the bytes matter here)."""
    prev = GENESIS_HASH
    with path.open("wb") as out:
        for seq in range(1, count + 1):
            body = entry_body({"seq": seq, "at_ns": T0 + seq, "actor": "system",
                               "action": "raised", "subject": f"door_forced.SH1-D{seq % 40}",
                               "details": {"note": "door opened while armed", "n": seq},
                               "prev_hash": prev})
            prev = hashlib.sha256(body).hexdigest()
            out.write(entry_line(body, prev))


def test_verify_streams_a_large_log_in_bounded_memory(tmp_path: Path) -> None:
    path = audit_path(tmp_path)
    _big_log(path, 25_000)
    size = path.stat().st_size
    assert size > 6_000_000
    seen: list[tuple[int, int]] = []
    tracemalloc.start()
    try:
        result = verify(path, progress=lambda done, total: seen.append((done, total)))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (result.status, result.lines, result.last_seq) == ("intact", 25_000, 25_000)
    # Reading the file whole, as verify did before, peaks above the file's size.
    assert peak < 2_000_000, peak
    assert seen[-1] == (size, size) and len(seen) > 20
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_far_moved_entry_is_still_tampering(tmp_path: Path) -> None:
    """An entry moved further than verify looks ahead is still reported (as removed and then
    out of order) rather than missed."""
    path = audit_path(tmp_path)
    _big_log(path, 3_000)
    lines = path.read_bytes().splitlines(keepends=True)
    moved = lines.pop(10)
    lines.insert(2_500, moved)
    path.write_bytes(b"".join(lines))
    kinds = [(p.kind, p.seq) for p in verify(path).problems]
    assert ("removed", 12) in kinds and ("reordered", 11) in kinds


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "depotwatch.yaml"
    config.write_text(f"site: {{id: x}}\nstorehouses: [{{id: S}}]\nstate_dir: {tmp_path}\n",
                      encoding="utf-8")
    return config


def test_cli_verify_json_and_progress_bar(tmp_path: Path) -> None:
    config = _config(tmp_path)
    cli = [sys.executable, "-m", "daemon.cli", "audit", "verify", "-c", str(config)]
    done = subprocess.run([*cli, "--json"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    assert (done.returncode, json.loads(done.stdout)["status"]) == (0, "missing")
    with AuditLog(audit_path(tmp_path), AuditConfig(rotate_bytes=4096)) as audit:
        for i in range(40):
            audit.append("alice", "acknowledged", f"d{i}", {"note": "x" * 40}, T0)
    done = subprocess.run([*cli, "--json"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    shown = json.loads(done.stdout)
    assert done.returncode == 0 and done.stderr == ""  # no progress bar off a terminal
    assert set(shown) == {"path", "files", "status", "lines", "last_seq", "last_hash",
                          "problems", "torn", "torn_set_aside"}
    assert (shown["status"], shown["last_seq"], len(shown["files"])) == (
        "intact", 40 + len(shown["files"]) - 1, len(chain_files(audit_path(tmp_path))))
    with audit_path(tmp_path).open("ab") as out:
        out.write(b"garbage\n")
    done = subprocess.run([*cli, "--json"], cwd=REPO, capture_output=True, text=True,
                          timeout=60, check=False)
    shown = json.loads(done.stdout)
    assert (done.returncode, shown["status"]) == (1, "tampered")
    assert [(p["kind"], p["file"]) for p in shown["problems"]] == [("garbled", "audit.jsonl")]
    # On a terminal, stderr carries the progress bar.
    leader, follower = pty.openpty()
    subprocess.run(cli, cwd=REPO, stdout=subprocess.DEVNULL, stderr=follower, timeout=60,
                   check=False)
    os.close(follower)
    drawn = os.read(leader, 4096).decode()
    os.close(leader)
    assert "verifying [" in drawn and "100%" in drawn
