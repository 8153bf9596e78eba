"""Signed reports and daily audit digests, checked by `depotwatch verify` and by the
standalone deploy/verify_report.py (stdlib and cryptography only): both agree that an intact
report verifies, and both name the line or the bytes of an edit, a wrong key, and an audit log
whose history was rewritten."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from daemon.alerts.audit import AuditLog, audit_path
from daemon.cli.main import main
from daemon.records.digests import AuditDigests, digest_path, make_digest
from daemon.records.signing import GatewayKey, key_path, sign_document

ROOT = Path(__file__).resolve().parents[1]
STANDALONE = ROOT / "deploy" / "verify_report.py"


@pytest.fixture
def gateway(tmp_path: Path) -> dict[str, Any]:
    """A state dir with an audit log of five entries, a key, and a signed CSV and PDF."""
    state = tmp_path / "state"
    state.mkdir()
    log = AuditLog(audit_path(state))
    for n in range(5):
        entry = log.append("alice", "acknowledged", f"door_armed.SH1-D{n}", {"note": "ok"},
                           1_700_000_000_000_000_000 + n)
    log.close()
    key = GatewayKey.load_or_create(key_path(state))
    public = tmp_path / "gateway.pub"
    public.write_text(key.public_pem())
    csv = tmp_path / "report.csv"
    csv.write_text("table,storehouse,item,value\n" + "".join(
        f"climate,SH1,day {d},{20 + d}.5\n" for d in range(30)), encoding="utf-8")
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.7\n" + bytes(range(256)) * 64)
    for document in (csv, pdf):
        sign_document(document, key, site="north", audit_head=(entry.seq, entry.hash))
    return {"state": state, "public": public, "csv": csv, "pdf": pdf, "head": entry,
            "audit": audit_path(state), "key": key}


def _both(document: Path, public: Path, audit: Path | None = None) -> tuple[
        tuple[int, str], tuple[int, str]]:
    """(exit code, stdout) of `depotwatch verify` and of the standalone verifier."""
    extra = ["--audit", str(audit)] if audit else []
    ours = subprocess.run([sys.executable, "-m", "daemon.cli", "verify", str(document),
                           "--key", str(public), *extra], capture_output=True, text=True,
                          cwd=ROOT)
    theirs = subprocess.run([sys.executable, str(STANDALONE), str(document), "--key",
                             str(public), *extra], capture_output=True, text=True)
    return (ours.returncode, ours.stdout), (theirs.returncode, theirs.stdout)


def test_intact_reports_verify_with_both(gateway: dict[str, Any]) -> None:
    for document in (gateway["csv"], gateway["pdf"]):
        ours, theirs = _both(document, gateway["public"], gateway["audit"])
        assert ours[0] == 0 and theirs[0] == 0, (ours, theirs)


def test_one_edited_byte_fails_with_its_place(gateway: dict[str, Any]) -> None:
    csv: Path = gateway["csv"]
    csv.write_bytes(csv.read_bytes().replace(b"day 2,22.5", b"day 2,22.6"))
    ours, theirs = _both(csv, gateway["public"])
    assert ours == (1, "report.csv: line 4 differs from the signed report\n") == theirs
    pdf: Path = gateway["pdf"]
    data = bytearray(pdf.read_bytes())
    data[5000] ^= 1
    pdf.write_bytes(bytes(data))
    ours, theirs = _both(pdf, gateway["public"])
    assert ours == (1, "report.pdf: bytes 4096-8191 differ from the signed report\n") == theirs


def test_wrong_key_and_edited_signature_fail(gateway: dict[str, Any], tmp_path: Path) -> None:
    other = tmp_path / "other.pub"
    other.write_text(GatewayKey.load_or_create(tmp_path / "other.pem").public_pem())
    ours, theirs = _both(gateway["csv"], other)
    assert ours[0] == theirs[0] == 1 and "signature does not match" in ours[1]
    sig = gateway["csv"].with_name("report.csv.sig")
    signed = json.loads(sig.read_text())
    signed["audit_head"]["seq"] = 4
    sig.write_text(json.dumps(signed))
    ours, theirs = _both(gateway["csv"], gateway["public"])
    assert ours[0] == theirs[0] == 1 and "signature does not match" in theirs[1]


def test_rewritten_audit_history_fails(gateway: dict[str, Any]) -> None:
    audit: Path = gateway["audit"]
    lines = audit.read_bytes().split(b"\n")
    # Change who acknowledged entry 2 and re-hash the whole chain after it, as a forger
    # holding the disk would: the chain is whole again, but not the one the report names.
    previous = "0" * 64
    rewritten = []
    for raw in lines[:-1]:
        entry = json.loads(raw)
        if entry["seq"] == 2:
            entry["actor"] = "mallory"
        entry["prev_hash"] = previous
        body = {k: v for k, v in entry.items() if k != "hash"}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        entry["hash"] = previous = hashlib.sha256(canonical).hexdigest()
        rewritten.append(canonical[:-1] + b',"hash":"' + previous.encode() + b'"}')
    audit.write_bytes(b"\n".join(rewritten) + b"\n")
    ours, theirs = _both(gateway["csv"], gateway["public"], audit)
    assert ours[0] == theirs[0] == 1
    assert "entry 5 is not the one the report was made from" in ours[1]
    assert "entry 5 is not the one the report was made from" in theirs[1]
    # An edit without re-hashing shows as a broken entry too.
    audit.write_bytes(audit.read_bytes().replace(b'"mallory"', b'"malory!"'))
    ours, theirs = _both(gateway["csv"], gateway["public"], audit)
    assert ours[0] == theirs[0] == 1 and "line 2" in ours[1] and "line 2" in theirs[1]


def test_daily_digest_is_signed_published_and_checked(gateway: dict[str, Any]) -> None:
    before = dt.datetime.now(dt.UTC).date()
    published: list[tuple[str, bytes]] = []

    async def one_look() -> None:
        digests = AuditDigests(gateway["state"], "north",
                               lambda topic, body: published.append((topic, body)),
                               every_s=3600, first_after_s=0)
        task = asyncio.create_task(digests.run())
        for _ in range(300):
            if published:
                break
            await asyncio.sleep(0.05)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    asyncio.run(one_look())
    # The day it was made: the test may run across UTC midnight.
    path = next(p for day in {before, dt.datetime.now(dt.UTC).date()}
                if (p := digest_path(gateway["state"], day)).exists())
    assert published == [("depotwatch/north/gateway/audit-digest", path.read_bytes())]
    digest = json.loads(path.read_bytes())
    assert digest["audit_head"] == {"seq": 5, "hash": gateway["head"].hash}
    ours, theirs = _both(path, gateway["public"], gateway["audit"])
    assert ours[0] == 0 and theirs[0] == 0, (ours, theirs)
    digest["audit_head"]["seq"] = 4
    path.write_text(json.dumps(digest))
    ours, theirs = _both(path, gateway["public"])
    assert ours[0] == theirs[0] == 1


def test_keys_command_prints_the_public_key(gateway: dict[str, Any], tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "depot.yaml"
    config.write_text(f"site: {{id: north}}\nstate_dir: {gateway['state']}\n"
                      "storehouses: [{id: SH1}]\n")
    assert main(["keys", "show", "-c", str(config)]) == 0
    assert capsys.readouterr().out == gateway["key"].public_pem()
    fresh = tmp_path / "fresh.yaml"
    fresh.write_text(f"site: {{id: north}}\nstate_dir: {tmp_path / 'fresh-state'}\n"
                     "storehouses: [{id: SH1}]\n")
    assert main(["keys", "show", "-c", str(fresh)]) == 1
    assert main(["keys", "init", "-c", str(fresh)]) == 0
    assert (key_path(tmp_path / "fresh-state").stat().st_mode & 0o777) == 0o600
    assert make_digest(tmp_path / "fresh-state", "north", dt.date(2026, 12, 1)).exists()
