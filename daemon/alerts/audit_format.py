"""The audit log's line format (canonical JSON, hash last) and the files one chain spans."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

__all__ = [
    "AUDIT_FILE",
    "GENESIS_HASH",
    "AuditEntry",
    "Json",
    "audit_path",
    "chain_files",
    "encode",
    "entry_body",
    "entry_line",
    "parse_line",
    "rotated_name",
    "split_lines",
]

AUDIT_FILE = "audit.jsonl"
# prev_hash of the first entry: there is nothing before it.
GENESIS_HASH = "0" * 64

Json: TypeAlias = "str | int | float | bool | Sequence[Json] | Mapping[str, Json] | None"

_FIELDS = frozenset({"seq", "at_ns", "actor", "action", "subject", "details", "prev_hash", "hash"})
_HEX = frozenset("0123456789abcdef")
# A rotated file is named after the first seq it holds: sorting by that number is chain order.
_ROTATED = re.compile(r"\.(\d{10,})$")


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


def audit_path(state_dir: Path) -> Path:
    """Where the daemon keeps its audit log (the file it appends to)."""
    return state_dir / AUDIT_FILE


def rotated_name(path: Path, first_seq: int) -> Path:
    """Where a full file goes when the log rotates: `audit.jsonl.<its first seq, 10 digits>`."""
    return path.with_name(f"{path.name}.{first_seq:010d}")


def chain_files(path: Path) -> list[Path]:
    """Every file of the chain, oldest first: the rotated files, then the active one if any."""
    rotated = []
    for candidate in path.parent.glob(f"{path.name}.*"):
        found = _ROTATED.search(candidate.name[len(path.name):])
        if found and candidate.name == f"{path.name}.{found.group(1)}":
            rotated.append((int(found.group(1)), candidate))
    files = [p for _, p in sorted(rotated)]
    return [*files, path] if path.exists() else files


def entry_body(fields: Mapping[str, Any]) -> bytes:
    """The canonical JSON of an entry without its hash: sorted keys, no spaces, UTF-8."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def entry_line(body: bytes, digest: str) -> bytes:
    """The stored line: the body with `"hash"` as its last member, and a newline.

    Every line ends with `,"hash":"<64 hex>"}`: the bytes before it plus "}" are exactly what was
    hashed, so any verifier (jq, sha256sum, another language) checks an entry without
    re-encoding it."""
    return body[:-1] + b',"hash":"' + digest.encode("ascii") + b'"}\n'


def parse_line(raw: bytes) -> tuple[AuditEntry | None, str]:
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
        body = entry_body(fields)
    except ValueError as exc:
        return entry, f"cannot be re-encoded ({exc})"
    if len(entry.hash) != 64 or not set(entry.hash) <= _HEX:
        return entry, "its hash is not 64 lowercase hex digits"
    if hashlib.sha256(body).hexdigest() != entry.hash:
        return entry, "its content does not match its hash"
    if entry_line(body, entry.hash) != raw + b"\n":
        # Same values, different bytes (spacing, escapes, key order): still an edit.
        return entry, "its bytes are not the canonical encoding of its content"
    return entry, ""


def encode(entry: Mapping[str, Any]) -> str:
    """An entry's line (without the newline): for an intact entry, the bytes in the log."""
    body = entry_body({k: v for k, v in entry.items() if k != "hash"})
    return entry_line(body, str(entry["hash"]))[:-1].decode("utf-8")


def split_lines(data: bytes) -> tuple[list[bytes], bytes]:
    """Complete lines (without newlines) and the unfinished tail after the last newline."""
    end = data.rfind(b"\n") + 1
    lines = data[:end].split(b"\n")[:-1] if end else []
    return lines, data[end:]
