"""Reports a third party can check: an Ed25519 signature over each report file and the head
of the audit chain it was made from (ATT Articles 11 and 13: evidence about delivered items
that does not rest on trusting the depot's own computer).

A signature is a detached `<report>.sig` (JSON): the file's size and SHA-256, a digest per
line (text reports) or per 4 KiB block (PDF) so that a check names where an edit is, the audit
chain's head (seq and hash) when the report was made, and the gateway key's signature over
all of it. `deploy/verify_report.py` checks the same format with nothing of depotwatch.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from daemon.vocabulary.errors import DepotwatchError

__all__ = ["DIGEST_FORMAT", "FORMAT", "GatewayKey", "SignatureError", "is_digest", "key_path",
           "sign_document", "signature_path", "verify_digest", "verify_document"]

FORMAT = "depotwatch-signature/1"
DIGEST_FORMAT = "depotwatch-audit-digest/1"
_BLOCK = 4096


class SignatureError(DepotwatchError):
    """A signing key that cannot be read or written, or a signature file that is not one."""


def key_path(state_dir: Path) -> Path:
    """Where the gateway keeps its private signing key (mode 0600)."""
    return state_dir / "signing" / "ed25519-key.pem"


def signature_path(document: Path) -> Path:
    """The detached signature beside a report: `<report>.sig`."""
    return document.with_name(document.name + ".sig")


def _canonical(fields: Mapping[str, Any]) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def key_id(public: Ed25519PublicKey) -> str:
    """Short name of a public key: the first 16 hex digits of SHA-256 of its raw bytes."""
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class GatewayKey:
    """The gateway's Ed25519 signing key."""

    private: Ed25519PrivateKey

    @classmethod
    def load_or_create(cls, path: Path) -> GatewayKey:
        """The key in `path`, made (0600, in a 0700 directory) if there is none yet."""
        if path.exists():
            return cls.load(path)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        private = Ed25519PrivateKey.generate()
        pem = private.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process made it first: use that one
            return cls.load(path)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        return cls(private)

    @classmethod
    def load(cls, path: Path) -> GatewayKey:
        """The key in `path`; SignatureError when it cannot be read or is not Ed25519."""
        try:
            private = serialization.load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError) as exc:
            raise SignatureError(f"signing key {path}: {exc}") from exc
        if not isinstance(private, Ed25519PrivateKey):
            raise SignatureError(f"signing key {path}: not an Ed25519 key")
        return cls(private)

    @property
    def public(self) -> Ed25519PublicKey:
        """The public half."""
        return self.private.public_key()

    def public_pem(self) -> str:
        """The public key as PEM, for inspectors and HQ."""
        return self.public.public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def sign(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """`fields` with `key_id` and an Ed25519 `signature` (base64) over their canonical
        JSON."""
        signed = {**fields, "key_id": key_id(self.public)}
        value = self.private.sign(_canonical(signed))
        return {**signed, "signature": base64.b64encode(value).decode("ascii")}


def _pieces(content: bytes) -> dict[str, Any]:
    # Text reports (CSV, JSON) get a digest per line: a check says "line 57". Anything else
    # (PDF) a digest per 4 KiB block: "bytes 8192-12287".
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        blocks = [content[i:i + _BLOCK] for i in range(0, len(content), _BLOCK)]
        return {"unit": "block", "block_size": _BLOCK,
                "sha256": [hashlib.sha256(b).hexdigest()[:16] for b in blocks]}
    lines = content.split(b"\n")
    return {"unit": "line", "sha256": [hashlib.sha256(line).hexdigest()[:16] for line in lines]}


def sign_document(document: Path, key: GatewayKey, *, site: str,
                  audit_head: tuple[int, str] | None, kind: str = "report") -> Path:
    """Write `<document>.sig`: the file's digests and the audit head, signed. The path."""
    content = document.read_bytes()
    fields: dict[str, Any] = {
        "format": FORMAT, "kind": kind, "site": site, "file": document.name,
        "size": len(content), "sha256": hashlib.sha256(content).hexdigest(),
        "pieces": _pieces(content),
        "signed_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "audit_head": ({"seq": audit_head[0], "hash": audit_head[1]}
                       if audit_head is not None else None),
    }
    target = signature_path(document)
    target.write_text(json.dumps(key.sign(fields), indent=1) + "\n", encoding="utf-8")
    return target


def _load_public(pem: bytes) -> Ed25519PublicKey:
    try:
        public = serialization.load_pem_public_key(pem)
    except ValueError as exc:
        raise SignatureError(f"not a PEM public key: {exc}") from exc
    if not isinstance(public, Ed25519PublicKey):
        raise SignatureError("not an Ed25519 public key")
    return public


def _signed_fields(path: Path) -> tuple[dict[str, Any], bytes]:
    try:
        signed = json.loads(path.read_text(encoding="utf-8"))
        value = base64.b64decode(signed.pop("signature"), validate=True)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise SignatureError(f"{path}: not a depotwatch signature ({exc})") from exc
    return signed, value


def _signature_good(signed: Mapping[str, Any], value: bytes, public_pem: bytes) -> bool:
    try:
        _load_public(public_pem).verify(value, _canonical(signed))
    except InvalidSignature:
        return False
    return True


def is_digest(path: Path) -> bool:
    """Whether `path` is a daily audit digest (signed inline) rather than a report."""
    if path.suffix != ".json" or path.stat().st_size > 1 << 20:
        return False
    try:
        return bool(json.loads(path.read_bytes()).get("format") == DIGEST_FORMAT)
    except (ValueError, AttributeError):
        return False


def verify_digest(digest: Path, public_pem: bytes, audit: Path | None = None) -> list[str]:
    """What is wrong with a daily audit digest (and the audit log against it)."""
    signed, value = _signed_fields(digest)
    if not _signature_good(signed, value, public_pem):
        return [f"{digest.name}: the digest's signature does not match"]
    head = signed.get("audit_head")
    return _audit_problems(audit, head) if audit is not None and head is not None else []


def verify_document(document: Path, signature: Path, public_pem: bytes,
                    audit: Path | None = None) -> list[str]:
    """What is wrong with `document` against its signature (empty: it verifies): a bad
    signature, the first edited line or block, an audit log that no longer holds the head."""
    signed, value = _signed_fields(signature)
    if not _signature_good(signed, value, public_pem):
        return [f"{signature.name}: the signature does not match (wrong key, or the signature "
                "file was edited)"]
    problems = _content_problems(document.read_bytes(), signed)
    if audit is not None and signed.get("audit_head") is not None:
        problems += _audit_problems(audit, signed["audit_head"])
    return problems


def _content_problems(content: bytes, signed: Mapping[str, Any]) -> list[str]:
    if hashlib.sha256(content).hexdigest() == signed["sha256"]:
        return []
    pieces = signed["pieces"]
    found = _pieces(content) if pieces["unit"] == _pieces(content)["unit"] else {"sha256": []}
    for index, (was, now) in enumerate(zip(pieces["sha256"], found["sha256"], strict=False)):
        if was != now:
            if pieces["unit"] == "line":
                return [f"{signed['file']}: line {index + 1} differs from the signed report"]
            start = index * pieces["block_size"]
            return [f"{signed['file']}: bytes {start}-{start + pieces['block_size'] - 1} differ "
                    "from the signed report"]
    return [f"{signed['file']}: {len(content)} bytes, the signed report had {signed['size']}"]


def _audit_problems(audit: Path, head: Mapping[str, Any]) -> list[str]:
    # `verify` and `export` read across the rotated files (audit.jsonl.<seq>) too.
    from daemon.alerts.audit import export, verify

    result = verify(audit)
    problems = [f"audit log: {p}" for p in result.problems[:5]]
    wanted_seq, wanted_hash = int(head["seq"]), str(head["hash"])
    for entry in export(audit, 0):
        if entry.get("seq") == wanted_seq:
            if entry.get("hash") != wanted_hash:
                problems.append(f"audit log: entry {wanted_seq} is not the one the report was "
                                "made from (history rewritten)")
            return problems
    problems.append(f"audit log: no entry {wanted_seq}, which the report was made from")
    return problems
