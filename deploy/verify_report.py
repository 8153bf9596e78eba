#!/usr/bin/env python3
"""Check a depotwatch report, or a daily audit digest, without depotwatch.

For an inspector who does not trust the depot's computer: copy this file, the report, its
`.sig`, the gateway's public key (and, to check the history too, the audit log) to any machine
with Python 3.11+ and the `cryptography` package, then:

    python3 verify_report.py REPORT --key gateway.pub [--audit audit.jsonl]
    python3 verify_report.py 2026-12-07.json --key gateway.pub      (a daily audit digest)

Exit 0: the signature is the gateway's and no byte of the report changed (and the audit log
still holds, unbroken, the entry the report was made from). Exit 1: what fails, and where.
Exit 2: the files cannot be read as a report, signature or key.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

GENESIS = "0" * 64
AUDIT_FIELDS = {"seq", "at_ns", "actor", "action", "subject", "details", "prev_hash", "hash"}


def canonical(fields: dict[str, Any]) -> bytes:
    """Sorted keys, no spaces, UTF-8: the bytes depotwatch signs and hashes."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def signature_good(signed: dict[str, Any], key: Ed25519PublicKey) -> bool:
    """Whether `signed` (with its `signature` field) was signed by `key`."""
    fields = dict(signed)
    value = base64.b64decode(fields.pop("signature"), validate=True)
    try:
        key.verify(value, canonical(fields))
    except InvalidSignature:
        return False
    return True


def pieces(content: bytes, unit: str, block: int) -> list[str]:
    """Per line (text reports) or per block (PDF), the first 16 hex digits of SHA-256."""
    parts = (content.split(b"\n") if unit == "line"
             else [content[i:i + block] for i in range(0, len(content), block)])
    return [hashlib.sha256(p).hexdigest()[:16] for p in parts]


def report_problems(content: bytes, signed: dict[str, Any]) -> list[str]:
    """Where the report differs from what was signed, if it does."""
    if hashlib.sha256(content).hexdigest() == signed["sha256"]:
        return []
    unit, block = signed["pieces"]["unit"], signed["pieces"].get("block_size", 4096)
    for index, (was, now) in enumerate(zip(signed["pieces"]["sha256"],
                                           pieces(content, unit, block), strict=False)):
        if was != now:
            if unit == "line":
                return [f"{signed['file']}: line {index + 1} differs from the signed report"]
            start = index * block
            return [f"{signed['file']}: bytes {start}-{start + block - 1} differ from the "
                    "signed report"]
    return [f"{signed['file']}: {len(content)} bytes, the signed report had {signed['size']}"]


def audit_problems(audit: bytes, head: dict[str, Any]) -> list[str]:
    """Breaks in the audit log's hash chain, and whether it still holds the signed head."""
    problems: list[str] = []
    previous = GENESIS
    found = False
    for number, raw in enumerate(audit.split(b"\n")[:-1], start=1):
        try:
            entry = json.loads(raw)
            if not isinstance(entry, dict) or set(entry) != AUDIT_FIELDS:
                raise ValueError("wrong fields")
            body = canonical({k: v for k, v in entry.items() if k != "hash"})
        except ValueError as exc:
            problems.append(f"audit log line {number}: not an audit entry ({exc})")
            continue
        if hashlib.sha256(body).hexdigest() != entry["hash"]:
            problems.append(f"audit log line {number} (seq {entry['seq']}): its content does "
                            "not match its hash")
        elif entry["prev_hash"] != previous:
            problems.append(f"audit log line {number} (seq {entry['seq']}): the chain is "
                            "broken before it")
        previous = entry["hash"]
        if entry["seq"] == head["seq"]:
            found = True
            if entry["hash"] != head["hash"]:
                problems.append(f"audit log: entry {head['seq']} is not the one the report was "
                                "made from (history rewritten)")
    if not found:
        problems.append(f"audit log: no entry {head['seq']}, which the report was made from")
    return problems


def check(target: Path, key: Ed25519PublicKey, signature: Path | None,
          audit: Path | None) -> list[str]:
    """Everything wrong with a report (and its audit log) or a digest; empty when it holds."""
    document = json.loads(target.read_bytes()) if target.suffix == ".json" else None
    if isinstance(document, dict) and document.get("format") == "depotwatch-audit-digest/1":
        signed = document
        problems = [] if signature_good(signed, key) else [
            f"{target.name}: the digest's signature does not match"]
    else:
        sig_path = signature or target.with_name(target.name + ".sig")
        signed = json.loads(sig_path.read_text(encoding="utf-8"))
        if not signature_good(signed, key):
            return [f"{sig_path.name}: the signature does not match (wrong key, or the "
                    "signature file was edited)"]
        problems = report_problems(target.read_bytes(), signed)
    head = signed.get("audit_head")
    if audit is not None and head is not None:
        problems += audit_problems(audit.read_bytes(), head)
    return problems


def main() -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("report", type=Path)
    parser.add_argument("--key", type=Path, required=True, help="the gateway's public key (PEM)")
    parser.add_argument("--signature", type=Path, help="default: REPORT.sig")
    parser.add_argument("--audit", type=Path, help="the audit log the report was made from")
    args = parser.parse_args()
    try:
        key = serialization.load_pem_public_key(args.key.read_bytes())
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("not an Ed25519 public key")
        problems = check(args.report, key, args.signature, args.audit)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        print(f"cannot verify: {exc}", file=sys.stderr)
        return 2
    for problem in problems:
        print(problem)
    print(f"{args.report}: " + ("FAILS verification" if problems else "verifies"),
          file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
