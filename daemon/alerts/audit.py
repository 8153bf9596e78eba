"""Append-only, hash-chained audit log of security events and alarm actions (PSSM.md "Records"):
the writer, which rotates files and carries the chain across them; reading in `audit_reading`."""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from daemon.alerts.audit_format import (
    AUDIT_FILE,
    GENESIS_HASH,
    AuditEntry,
    Json,
    audit_path,
    chain_files,
    encode,
    entry_body,
    entry_line,
    parse_line,
    rotated_name,
    split_lines,
)
from daemon.alerts.audit_reading import Problem, TornTail, VerifyResult, export, recent_for, verify
from daemon.alerts.settings import AuditConfig
from daemon.statefile import set_aside
from daemon.vocabulary.errors import DepotwatchError

# The reading side and the format are re-exported: callers know one module, `audit`.
__all__ = [
    "AUDIT_FILE",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditError",
    "AuditLine",
    "AuditLog",
    "Json",
    "Problem",
    "TornTail",
    "VerifyResult",
    "audit_path",
    "encode",
    "export",
    "recent_for",
    "verify",
]

# One entry as `record` takes it: actor, action, subject, details, at_ns.
AuditLine = tuple[str, str, str, Mapping[str, Any], int]

log = logging.getLogger(__name__)


class AuditError(DepotwatchError):
    """The audit log cannot be opened or written."""


def _tail(fd: int, size: int) -> tuple[AuditEntry | None, int, int]:
    """The last readable entry, how many unreadable lines follow it, and where the last
    complete line ends; reads back from the end only as far as needed."""
    window = 1 << 16
    while True:
        start = max(0, size - window)
        data = os.pread(fd, size - start, start)
        end = data.rfind(b"\n") + 1
        # Unless the window reaches the start of the file, its first line may be cut.
        first = 0 if start == 0 else data.find(b"\n") + 1
        if first < end or start == 0:
            lines, _ = split_lines(data[first:end])
            for after, raw in enumerate(reversed(lines)):
                entry, _ = parse_line(raw)
                if entry is not None:
                    return entry, after, start + end
            if start == 0:
                return None, len(lines), end
        window *= 4


def _first_entry(fd: int) -> AuditEntry | None:
    """The entry on a file's first line, if it reads (for the rotated file's name and month)."""
    size, window = os.fstat(fd).st_size, 1 << 16
    data = os.pread(fd, min(window, size), 0)
    while b"\n" not in data and len(data) < size:
        window *= 4
        data = os.pread(fd, min(window, size), 0)
    lines, _ = split_lines(data)
    return parse_line(lines[0])[0] if lines else None


def _month(at_ns: int) -> tuple[int, int]:
    when = dt.datetime.fromtimestamp(at_ns / 1e9, tz=dt.UTC)
    return when.year, when.month


def _rotated_head(path: Path) -> tuple[int, str]:
    """The last seq and hash of the newest rotated file: where a new active file continues."""
    rotated = [f for f in chain_files(path) if f != path]
    if not rotated:
        return 0, GENESIS_HASH
    fd = os.open(rotated[-1], os.O_RDONLY | os.O_CLOEXEC)
    try:
        last, unreadable, _ = _tail(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return (last.seq if last else 0) + unreadable, last.hash if last else GENESIS_HASH


class AuditLog:
    """The daemon's audit log: one writer, each entry written whole with O_APPEND and fsynced
    before `append` returns. Opening continues the chain and sets a torn last line aside. A file
    past `rotation.rotate_bytes` (or from an earlier UTC month, if so set) is renamed
    `audit.jsonl.<its first seq>`, and the new file begins with an `audit_log_rotated` entry
    chained to the old file's last hash."""

    def __init__(self, path: Path, rotation: AuditConfig | None = None) -> None:
        self.path = path
        self._rotate_bytes = rotation.rotate_bytes if rotation else None
        self._monthly = rotation is not None and rotation.rotate_every == "month"
        self._first: AuditEntry | None = None
        # Where a torn last line found at open was moved (reported by the caller and the log).
        self.torn: Path | None = None
        # What was lost or is unreadable, when the file found at open was damaged.
        self.damage: str | None = None
        self._lock = threading.Lock()
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            created = not path.exists()
            self._fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        except OSError as exc:
            raise AuditError(f"audit log {path}: cannot open: {exc}") from exc
        try:
            # A second writer would fork the chain.
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            os.close(self._fd)
            raise AuditError(f"audit log {path} is in use by another process") from exc
        try:
            self._resume(created)
        except OSError as exc:
            os.close(self._fd)
            raise AuditError(f"audit log {path}: cannot read its end: {exc}") from exc

    def _resume(self, created: bool) -> None:
        """Find the chain head; set a torn last line aside."""
        if created:
            self._fsync_dir()
        size = os.fstat(self._fd).st_size
        last, unreadable, end = _tail(self._fd, size)
        if last is None and unreadable:
            self._start_over(size)
            return
        if end < size:
            self._set_aside(end)
            self.damage = f"audit log: a torn last line ({size - end} bytes) set aside"
        self._size = end
        # Unreadable lines after the last entry keep their places in the numbering, so
        # `verify` reports them once, as garbled, and not the next entry as out of order too.
        self._seq = (last.seq if last else 0) + unreadable
        self._hash = last.hash if last else GENESIS_HASH
        self._first = _first_entry(self._fd) if end else None
        if last is None and not unreadable:
            # An empty file: new, or a crash came between a rotation's rename and its first
            # entry; either way the chain goes on from the newest rotated file, if any.
            self._seq, self._hash = _rotated_head(self.path)
        if unreadable:
            log.error("audit log %s: %d unreadable line(s) at its end; the next entry is seq %d "
                      "(run `depotwatch audit verify`)", self.path, unreadable, self._seq + 1)
            self.damage = (f"audit log: {unreadable} unreadable line(s) at its end, kept in "
                           f"place for `depotwatch audit verify`")

    def _start_over(self, size: int) -> None:
        # Not this chain at all: set aside whole; the new chain's first entry names that file.
        aside = set_aside(self.path)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(self._fd)
        self._fd = fd
        self._fsync_dir()
        self._size, self._first = 0, None
        self._seq, self._hash = _rotated_head(self.path)
        self.damage = (f"audit log held no readable entry ({size} bytes): every earlier entry "
                       f"is unreadable; set aside as {aside.name}, a new chain starts")
        log.error("audit log %s: no readable entry in its %d bytes; set aside as %s, a new "
                  "chain starts", self.path, size, aside)
        self.append("depotwatch", "audit_log_set_aside", aside.name,
                    {"bytes": size, "reason": "no readable entry"}, time.time_ns())

    def _set_aside(self, end: int) -> None:
        """Move a torn last line (power cut mid-append) to a `.torn-<unix time>` file."""
        tail = os.pread(self._fd, os.fstat(self._fd).st_size - end, end)
        aside = self.path.with_name(f"{self.path.name}.torn-{int(time.time())}")
        with aside.open("wb") as out:
            out.write(tail)
            out.flush()
            os.fsync(out.fileno())
        os.ftruncate(self._fd, end)
        os.fsync(self._fd)
        self._fsync_dir()
        self.torn = aside
        log.error("audit log %s: its last line was a torn write (%d bytes, power cut during "
                  "an append); moved to %s, the chain continues from the line before",
                  self.path, len(tail), aside)

    def _fsync_dir(self) -> None:
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)

    def last_hash(self) -> str:
        """The hash of the newest entry (the chain head, quoted in the monthly report)."""
        with self._lock:
            return self._hash

    def append(self, actor: str, action: str, subject: str, details: Mapping[str, Json],
               at_ns: int) -> AuditEntry:
        """Write one entry and fsync it; on return it survives a power cut. It blocks for the
        fsync: asyncio code calls it through `asyncio.to_thread` (it is thread-safe)."""
        # A stored field never changes type: `verify` would call such a line garbled.
        if type(at_ns) is not int or not all(type(v) is str for v in (actor, action, subject)):
            raise AuditError(f"audit entry {action!r} {subject!r}: at_ns must be an int and "
                             "actor, action, subject strings")
        try:
            # Round trip so the returned entry holds exactly what the file holds.
            plain = json.loads(entry_body(dict(details)))
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit entry {action} {subject}: details are not JSON: "
                             f"{exc}") from exc
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self.path} is closed")
            if self._rotation_due(at_ns, len(entry_body(plain)) + 250):
                try:
                    self._rotate(at_ns)
                except OSError as exc:
                    # The entry matters more than the file it lands in: keep appending here.
                    log.error("audit log %s: cannot rotate (%s); appending to it still",
                              self.path, exc)
            return self._write(actor, action, subject, plain, at_ns)

    def _rotation_due(self, at_ns: int, line_bytes: int) -> bool:
        if self._size == 0:
            return False
        if self._rotate_bytes is not None and self._size + line_bytes > self._rotate_bytes:
            return True
        return (self._monthly and self._first is not None
                and _month(at_ns) != _month(self._first.at_ns))

    def _rotate(self, at_ns: int) -> None:
        """Rename the full file aside and start the next one with the chain's link to it."""
        # Named after its first seq if it reads; else after its last, which still sorts after
        # the file before it and before the file after it.
        target = rotated_name(self.path, self._first.seq if self._first else self._seq)
        if target.exists():
            raise OSError(f"{target} exists already")
        os.rename(self.path, target)
        fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(self._fd)
        self._fd, self._size, self._first = fd, 0, None
        self._fsync_dir()
        log.info("audit log %s: rotated to %s after seq %d", self.path, target.name, self._seq)
        self._write("depotwatch", "audit_log_rotated", target.name,
                    {"file": target.name, "last_seq": self._seq, "last_hash": self._hash}, at_ns)

    def _write(self, actor: str, action: str, subject: str, plain: Any,
               at_ns: int, *, fsync: bool = True) -> AuditEntry:
        """Append one entry (the lock held) and fsync it (unless the caller fsyncs a batch)."""
        fields: dict[str, Any] = {"seq": self._seq + 1, "at_ns": at_ns, "actor": actor,
                                  "action": action, "subject": subject,
                                  "details": plain, "prev_hash": self._hash}
        body = entry_body(fields)
        digest = hashlib.sha256(body).hexdigest()
        line = entry_line(body, digest)
        try:
            written = os.write(self._fd, line)
            if written != len(line):
                raise OSError(f"short write ({written} of {len(line)} bytes)")
        except OSError as exc:
            # Never leave half a line for the next append to follow (disk full).
            os.ftruncate(self._fd, self._size)
            raise AuditError(f"audit log {self.path}: cannot write: {exc}") from exc
        self._size += len(line)
        self._seq += 1
        self._hash = digest
        entry = AuditEntry(**fields, hash=digest)
        if self._first is None:
            self._first = entry
        if not fsync:
            return entry
        try:
            os.fsync(self._fd)
        except OSError as exc:
            raise AuditError(f"audit log {self.path}: fsync failed: {exc}") from exc
        return entry

    def record(self, actor: str, action: str, subject: str, details: Mapping[str, Any],
               at_ns: int) -> None:
        """`append` for the daemon's desks: details made plain JSON, a failure logged (the
        alarm goes on whether or not its record could be written)."""
        # Alarm actions are rare; the fsync (~0.2 ms here) is cheaper than a thread hop.
        try:
            self.append(actor, action, subject, json.loads(json.dumps(details)), at_ns)
        except AuditError as exc:
            log.error("audit entry %s %s not written: %s", action, subject, exc)

    def record_all(self, lines: Sequence[AuditLine]) -> None:
        """`record` for a batch (a pallet's portal steps): one fsync for all of them, so a
        caller runs it through `asyncio.to_thread` once; a failure logged as `record` does."""
        try:
            plain = [(a, act, sub, json.loads(json.dumps(d)), at) for a, act, sub, d, at in lines]
            with self._lock:
                if self._fd < 0:
                    raise AuditError(f"audit log {self.path} is closed")
                for actor, action, subject, details, at_ns in plain:
                    if self._rotation_due(at_ns, len(entry_body(details)) + 250):
                        try:
                            self._rotate(at_ns)
                        except OSError as exc:  # as `append`: the entry matters more
                            log.error("audit log %s: cannot rotate (%s); appending to it "
                                      "still", self.path, exc)
                    self._write(actor, action, subject, details, at_ns, fsync=False)
                os.fsync(self._fd)
        except (AuditError, OSError) as exc:
            log.error("%d audit entries (%s ...) not all written: %s", len(lines),
                      lines[0][1] if lines else "", exc)

    def close(self) -> None:
        """Release the file (and the writer lock)."""
        with self._lock:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
