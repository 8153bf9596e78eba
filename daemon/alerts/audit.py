"""Append-only, hash-chained audit log of security events and alarm actions (PSSM.md "Records")."""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeAlias

from daemon.statefile import set_aside
from daemon.vocabulary.errors import DepotwatchError

__all__ = [
    "AUDIT_FILE",
    "GENESIS_HASH",
    "AuditEntry",
    "AuditError",
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

log = logging.getLogger(__name__)

AUDIT_FILE = "audit.jsonl"
# prev_hash of the first entry: there is nothing before it.
GENESIS_HASH = "0" * 64

Json: TypeAlias = "str | int | float | bool | Sequence[Json] | Mapping[str, Json] | None"

_FIELDS = frozenset({"seq", "at_ns", "actor", "action", "subject", "details", "prev_hash", "hash"})
_HEX = frozenset("0123456789abcdef")
# Every line ends with `,"hash":"<64 hex>"}`: the bytes before it plus "}" are exactly what was
# hashed, so any verifier (jq, sha256sum, another language) checks an entry without re-encoding.
_HASH_SUFFIX_LEN = len(',"hash":"') + 64 + len('"}')

ProblemKind = Literal["edited", "removed", "reordered", "duplicated", "chain_broken", "garbled"]
Status = Literal["intact", "torn_tail", "tampered"]


class AuditError(DepotwatchError):
    """The audit log cannot be opened or written."""


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One record: who did what to which subject, when, chained to the record before it."""

    seq: int
    at_ns: int
    actor: str
    action: str
    subject: str
    details: Mapping[str, Json]
    prev_hash: str
    hash: str

    def as_dict(self) -> dict[str, Any]:
        """The entry as the JSON object stored on its line."""
        return {"seq": self.seq, "at_ns": self.at_ns, "actor": self.actor,
                "action": self.action, "subject": self.subject, "details": self.details,
                "prev_hash": self.prev_hash, "hash": self.hash}


@dataclass(frozen=True, slots=True)
class Problem:
    """Something `verify` found wrong, and where: the 1-based line and the seq it holds."""

    kind: ProblemKind
    line: int
    seq: int | None
    message: str

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        return f"line {self.line}{seq}: {self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class TornTail:
    """An unfinished last line (no newline): a write cut short by a crash, not tampering."""

    line: int
    size: int


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What `verify` found in one audit log file."""

    path: Path
    lines: int
    last_seq: int
    last_hash: str
    problems: tuple[Problem, ...]
    torn: TornTail | None

    @property
    def status(self) -> Status:
        """`tampered` if any complete line is wrong, else `torn_tail` or `intact`."""
        if self.problems:
            return "tampered"
        return "torn_tail" if self.torn else "intact"


def audit_path(state_dir: Path) -> Path:
    """Where the daemon keeps its audit log."""
    return state_dir / AUDIT_FILE


def _body(fields: Mapping[str, Any]) -> bytes:
    """The canonical JSON of an entry without its hash: sorted keys, no spaces, UTF-8."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _line(body: bytes, digest: str) -> bytes:
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n'


def _parse(raw: bytes) -> tuple[AuditEntry | None, str]:
    """The entry on a complete line (without its newline) and "" if intact, else a reason;
    the entry is None when the line is not an entry at all."""
    try:
        obj = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        return None, f"not a JSON line ({exc})"
    if not isinstance(obj, dict) or set(obj) != _FIELDS:
        return None, "not an audit entry (wrong fields)"
    ints = [obj["seq"], obj["at_ns"]]
    strs = [obj["actor"], obj["action"], obj["subject"], obj["prev_hash"], obj["hash"]]
    if (any(type(v) is not int for v in ints) or any(type(v) is not str for v in strs)
            or not isinstance(obj["details"], dict)):
        return None, "not an audit entry (a field has the wrong type)"
    entry = AuditEntry(**obj)
    fields = {k: v for k, v in obj.items() if k != "hash"}
    try:
        body = _body(fields)
    except ValueError as exc:
        return entry, f"cannot be re-encoded ({exc})"
    if len(entry.hash) != 64 or not set(entry.hash) <= _HEX:
        return entry, "its hash is not 64 lowercase hex digits"
    if hashlib.sha256(body).hexdigest() != entry.hash:
        return entry, "its content does not match its hash"
    if _line(body, entry.hash) != raw + b"\n":
        # Same values, different bytes (spacing, escapes, key order): still an edit.
        return entry, "its bytes are not the canonical encoding of its content"
    return entry, ""


def encode(entry: Mapping[str, Any]) -> str:
    """An entry's line (without the newline): for an intact entry, the bytes in the log."""
    body = _body({k: v for k, v in entry.items() if k != "hash"})
    return _line(body, str(entry["hash"]))[:-1].decode("utf-8")


def _split(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without newlines) and the unfinished tail after the last newline."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1] if end else []
    return lines, data[end:]


def verify(path: Path) -> VerifyResult:
    """Check every line and every link; report edits, removals, reordering and a torn tail."""
    lines, tail = _split(path.read_bytes())
    parsed = [_parse(raw) for raw in lines]
    seqs_present = {e.seq for e, _ in parsed if e is not None}
    problems: list[Problem] = []
    hashes: dict[int, str] = {0: GENESIS_HASH}
    last = 0  # the seq the previous line holds (or, if it was damaged, should hold)
    last_hash = GENESIS_HASH
    for number, (entry, reason) in enumerate(parsed, start=1):
        if entry is None:
            problems.append(Problem("garbled", number, None,
                                    f"{reason}; expected seq {last + 1} here"))
            last += 1
            continue
        if reason:
            problems.append(Problem("edited", number, entry.seq, reason))
            last += 1
            hashes[last] = entry.hash
            continue
        seq = entry.seq
        if seq in hashes and seq <= last:
            kind: ProblemKind = "duplicated" if hashes[seq] == entry.hash else "reordered"
            problems.append(Problem(kind, number, seq,
                                    f"seq {seq} comes after seq {last}"
                                    + (" (a copy of an earlier line)" if kind == "duplicated"
                                       else "")))
        elif seq <= last:
            problems.append(Problem("reordered", number, seq, f"seq {seq} comes after seq {last}"))
        elif seq > last + 1:
            missing = range(last + 1, seq)
            if any(m in seqs_present for m in missing):
                problems.append(Problem("reordered", number, seq,
                                        f"seq {seq} comes before seq {last + 1}"))
            else:
                gap = f"seq {last + 1}" + (f"..{seq - 1}" if seq - 1 > last + 1 else "")
                problems.append(Problem("removed", number, seq,
                                        f"{gap} missing before this line"))
        elif (expected := hashes.get(seq - 1)) is not None and entry.prev_hash != expected:
            problems.append(Problem(
                "chain_broken", number, seq,
                f"prev_hash is not the hash of seq {seq - 1}: an earlier entry was changed and "
                "its hash recomputed"))
        hashes.setdefault(seq, entry.hash)
        last = max(last, seq)
        last_hash = entry.hash
    torn = TornTail(len(lines) + 1, len(tail)) if tail else None
    return VerifyResult(path, len(lines), last, last_hash, tuple(problems), torn)


def export(path: Path, since_ns: int) -> Iterator[dict[str, Any]]:
    """Entries for the central archive: from the first one at or after `since_ns`, every later
    one (contiguous in seq even if the clock stepped back, so the archive can check the links).
    Lines that are not entries are skipped with a warning, a torn tail silently; `verify`
    says what they are."""
    lines, _ = _split(path.read_bytes())
    started = False
    for number, raw in enumerate(lines, start=1):
        entry, reason = _parse(raw)
        if entry is None:
            log.warning("audit export %s: line %d skipped: %s", path, number, reason)
            continue
        started = started or entry.at_ns >= since_ns
        if started:
            yield entry.as_dict()


def recent_for(path: Path, subjects: Sequence[str], limit: int = 50,
               max_bytes: int = 4 << 20) -> list[AuditEntry]:
    """The newest `limit` entries about any of `subjects`, oldest first, for the web console.

    Reads back from the end of the file, at most `max_bytes` of it (the log is never rotated,
    so an alarm's entries are near its end); lines that are not intact entries are skipped
    (`verify` reports them), so is an unfinished last line. A missing file has no entries.
    """
    wanted = frozenset(subjects)
    # Cheap byte test first: only lines that mention a subject are parsed and hash-checked.
    needles = [json.dumps(s, ensure_ascii=False)[1:-1].encode("utf-8") for s in wanted]
    found: list[AuditEntry] = []
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return []
    try:
        end = os.fstat(fd).st_size
        start = max(0, end - max_bytes)
        data = os.pread(fd, end - start, start)
    finally:
        os.close(fd)
    lines, _ = _split(data)
    if start > 0 and lines:
        lines = lines[1:]  # the window's first line may be cut
    for raw in reversed(lines):
        if len(found) >= limit:
            break
        if not any(needle in raw for needle in needles):
            continue
        entry, reason = _parse(raw)
        if entry is not None and not reason and entry.subject in wanted:
            found.append(entry)
    return found[::-1]


def _tail(fd: int, size: int) -> tuple[AuditEntry | None, int, int]:
    """The last readable entry, how many unreadable lines follow it, and where the last
    complete line ends; reads back from the end only as far as needed (the log is not rotated)."""
    window = 1 << 16
    while True:
        start = max(0, size - window)
        data = os.pread(fd, size - start, start)
        end = data.rfind(b"\n") + 1
        # Unless the window reaches the start of the file, its first line may be cut.
        first = 0 if start == 0 else data.find(b"\n") + 1
        if first < end or start == 0:
            lines, _ = _split(data[first:end])
            for after, raw in enumerate(reversed(lines)):
                entry, _ = _parse(raw)
                if entry is not None:
                    return entry, after, start + end
            if start == 0:
                return None, len(lines), end
        window *= 4


class AuditLog:
    """The daemon's audit log: one writer, each entry written whole with O_APPEND and fsynced
    before `append` returns. Opening continues the chain and sets a torn last line aside."""

    def __init__(self, path: Path) -> None:
        self.path = path
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
        self._size, self._seq, self._hash = 0, 0, GENESIS_HASH
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
            plain = json.loads(_body(dict(details)))
        except (TypeError, ValueError) as exc:
            raise AuditError(f"audit entry {action} {subject}: details are not JSON: "
                             f"{exc}") from exc
        with self._lock:
            if self._fd < 0:
                raise AuditError(f"audit log {self.path} is closed")
            fields: dict[str, Any] = {"seq": self._seq + 1, "at_ns": at_ns, "actor": actor,
                                      "action": action, "subject": subject,
                                      "details": plain, "prev_hash": self._hash}
            body = _body(fields)
            digest = hashlib.sha256(body).hexdigest()
            line = _line(body, digest)
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
            try:
                os.fsync(self._fd)
            except OSError as exc:
                raise AuditError(f"audit log {self.path}: fsync failed: {exc}") from exc
            return AuditEntry(**fields, hash=digest)

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
