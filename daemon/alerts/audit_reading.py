"""Reading the audit chain across its files: `verify` (streamed, bounded memory), `export` for
the central archive, and the newest entries about an alarm for the console."""

from __future__ import annotations

import json
import logging
import os
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from daemon.alerts.audit_format import (
    GENESIS_HASH,
    AuditEntry,
    chain_files,
    parse_line,
    split_lines,
)

__all__ = ["LOOKAHEAD_LINES", "Problem", "Progress", "TornTail", "VerifyResult", "export",
           "recent_for", "verify"]

log = logging.getLogger(__name__)

ProblemKind = Literal["edited", "removed", "reordered", "duplicated", "chain_broken", "garbled"]
Status = Literal["intact", "torn_tail", "tampered"]
# Bytes read so far and in all: `audit verify` draws its progress bar from these.
Progress = Callable[[int, int], None]

# How far `verify` looks ahead and remembers behind, in lines: a seq gap is told apart from an
# entry moved by fewer lines than this; one moved further is still reported, as a removal and
# a reordering. Memory stays bounded by this, not by the size of the log.
LOOKAHEAD_LINES = 1024


@dataclass(frozen=True, slots=True)
class Problem:
    """Something `verify` found wrong, and where: the 1-based line and the seq it holds (and
    the file, when the chain spans several)."""

    kind: ProblemKind
    line: int
    seq: int | None
    message: str
    file: str = ""

    def __str__(self) -> str:
        seq = f" (seq {self.seq})" if self.seq is not None else ""
        where = f"{self.file}: " if self.file else ""
        return f"{where}line {self.line}{seq}: {self.kind}: {self.message}"


@dataclass(frozen=True, slots=True)
class TornTail:
    """An unfinished last line (no newline): a write cut short by a crash, not tampering."""

    line: int
    size: int


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What `verify` found in an audit chain (the active file and the files rotated from it)."""

    path: Path
    lines: int
    last_seq: int
    last_hash: str
    problems: tuple[Problem, ...]
    torn: TornTail | None
    files: tuple[Path, ...] = ()

    @property
    def status(self) -> Status:
        """`tampered` if any complete line is wrong, else `torn_tail` or `intact`."""
        if self.problems:
            return "tampered"
        return "torn_tail" if self.torn else "intact"


@dataclass(frozen=True, slots=True)
class _Link:
    """What judging a line needs of its entry (not the details: the window stays small)."""

    seq: int
    hash: str
    prev_hash: str


@dataclass(slots=True)
class _Line:
    file: str
    number: int
    entry: _Link | None
    reason: str


class _Chain:
    """The running judgement: the seq each line should hold, recent hashes, what is ahead."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []
        self.hashes: dict[int, str] = {0: GENESIS_HASH}
        self.last = 0  # the seq the previous line holds (or, if it was damaged, should hold)
        self.last_hash = GENESIS_HASH
        self.ahead: Counter[int] = Counter()

    def _problem(self, kind: ProblemKind, line: _Line, seq: int | None, message: str) -> None:
        self.problems.append(Problem(kind, line.number, seq, message, line.file))

    def _seen_between(self, low: int, high: int) -> bool:
        """Whether a seq in low..high-1 is on a line within reach, behind or ahead."""
        return any(low <= s < high for s in self.hashes) or any(
            low <= s < high for s in self.ahead)

    def judge(self, line: _Line) -> None:
        """Check one line against the chain so far and what lies just ahead."""
        entry, last = line.entry, self.last
        if entry is None:
            self._problem("garbled", line, None, f"{line.reason}; expected seq {last + 1} here")
            self.last += 1
            return
        if line.reason:
            self._problem("edited", line, entry.seq, line.reason)
            self.last += 1
            self.hashes[self.last] = entry.hash
            return
        seq = entry.seq
        if seq in self.hashes and seq <= last:
            kind: ProblemKind = "duplicated" if self.hashes[seq] == entry.hash else "reordered"
            self._problem(kind, line, seq, f"seq {seq} comes after seq {last}"
                          + (" (a copy of an earlier line)" if kind == "duplicated" else ""))
        elif seq <= last:
            self._problem("reordered", line, seq, f"seq {seq} comes after seq {last}")
        elif seq > last + 1:
            if self._seen_between(last + 1, seq):
                self._problem("reordered", line, seq, f"seq {seq} comes before seq {last + 1}")
            else:
                gap = f"seq {last + 1}" + (f"..{seq - 1}" if seq - 1 > last + 1 else "")
                self._problem("removed", line, seq, f"{gap} missing before this line")
        elif (expected := self.hashes.get(seq - 1)) is not None and entry.prev_hash != expected:
            self._problem("chain_broken", line, seq,
                          f"prev_hash is not the hash of seq {seq - 1}: an earlier entry was "
                          "changed and its hash recomputed")
        self.hashes.setdefault(seq, entry.hash)
        self.last = max(last, seq)
        self.last_hash = entry.hash
        if len(self.hashes) > 2 * LOOKAHEAD_LINES:
            keep = self.last - LOOKAHEAD_LINES
            self.hashes = {s: h for s, h in self.hashes.items() if s >= keep}


def _lines(files: Sequence[Path], named: bool, progress: Progress | None
           ) -> Iterator[tuple[_Line | None, TornTail | None]]:
    """Each complete line of every file, parsed; an unfinished last line as a TornTail."""
    total = sum(f.stat().st_size for f in files)
    done = 0
    for path in files:
        with path.open("rb") as stream:
            number = 0
            for raw in stream:
                number += 1
                done += len(raw)
                if progress is not None and number % 1024 == 0:
                    progress(done, total)
                if not raw.endswith(b"\n") and path == files[-1]:
                    yield None, TornTail(number, len(raw))
                    continue
                if not raw.endswith(b"\n"):
                    # More writes came after it: not a power cut (one append is one write, so
                    # a crash leaves at most the very last line unfinished).
                    entry: _Link | None = None
                    reason = "an unfinished line with later files after it"
                else:
                    parsed, reason = parse_line(raw[:-1])
                    entry = (_Link(parsed.seq, parsed.hash, parsed.prev_hash) if parsed
                             else None)
                yield _Line(path.name if named else "", number, entry, reason), None
    if progress is not None:
        progress(total, total)


def verify(path: Path, progress: Progress | None = None) -> VerifyResult:
    """Check every line and every link of the chain (rotated files, then `path`), streaming:
    report edits, removals, reordering and a torn tail, in memory bounded by LOOKAHEAD_LINES."""
    files = chain_files(path)
    chain = _Chain()
    window: deque[_Line] = deque()
    lines = 0
    torn: TornTail | None = None
    for line, tail in _lines(files, len(files) > 1, progress):
        if tail is not None:
            torn = tail
            continue
        assert line is not None
        lines += 1
        window.append(line)
        if line.entry is not None:
            chain.ahead[line.entry.seq] += 1
        if len(window) > LOOKAHEAD_LINES:
            _judge_next(chain, window)
    while window:
        _judge_next(chain, window)
    return VerifyResult(path, lines, chain.last, chain.last_hash, tuple(chain.problems), torn,
                        tuple(files))


def _judge_next(chain: _Chain, window: deque[_Line]) -> None:
    line = window.popleft()
    if line.entry is not None:
        seq = line.entry.seq
        chain.ahead[seq] -= 1
        if not chain.ahead[seq]:
            del chain.ahead[seq]
    chain.judge(line)


def export(path: Path, since_ns: int) -> Iterator[dict[str, Any]]:
    """Entries for the central archive, across the chain's files: from the first one at or
    after `since_ns`, every later one (contiguous in seq even if the clock stepped back, so the
    archive can check the links). Lines that are not entries are skipped with a warning, a
    torn tail silently; `verify` says what they are."""
    started = False
    for file in chain_files(path):
        with file.open("rb") as stream:
            for number, raw in enumerate(stream, start=1):
                if not raw.endswith(b"\n"):
                    continue
                entry, reason = parse_line(raw[:-1])
                if entry is None:
                    log.warning("audit export %s: line %d skipped: %s", file, number, reason)
                    continue
                started = started or entry.at_ns >= since_ns
                if started:
                    yield entry.as_dict()


def recent_for(path: Path, subjects: Sequence[str], limit: int = 50,
               max_bytes: int = 4 << 20) -> list[AuditEntry]:
    """The newest `limit` entries about any of `subjects`, oldest first, for the web console.

    Reads back from the end of the chain, at most `max_bytes` of it (an alarm's entries are
    near its end; just after a rotation, in the previous file); lines that are not intact
    entries are skipped (`verify` reports them), so is an unfinished last line."""
    wanted = frozenset(subjects)
    # Cheap byte test first: only lines that mention a subject are parsed and hash-checked.
    needles = [json.dumps(s, ensure_ascii=False)[1:-1].encode("utf-8") for s in wanted]
    found: list[AuditEntry] = []
    budget = max_bytes
    for file in reversed(chain_files(path)):
        if len(found) >= limit or budget <= 0:
            break
        try:
            fd = os.open(file, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            continue
        try:
            end = os.fstat(fd).st_size
            start = max(0, end - budget)
            data = os.pread(fd, end - start, start)
        finally:
            os.close(fd)
        budget -= end - start
        lines, _ = split_lines(data)
        if start > 0 and lines:
            lines = lines[1:]  # the window's first line may be cut
        for raw in reversed(lines):
            if len(found) >= limit:
                break
            if not any(needle in raw for needle in needles):
                continue
            entry, reason = parse_line(raw)
            if entry is not None and not reason and entry.subject in wanted:
                found.append(entry)
    return found[::-1]
