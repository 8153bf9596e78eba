"""`--json` on the commands that print state: each output parsed, its documented shape checked."""

from __future__ import annotations

import asyncio
import base64
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from daemon.ingest.deadletters import DeadLetterStore
from daemon.ingest.settings import DeadLetterConfig
from daemon.spool.store import Spool

REPO = Path(__file__).resolve().parent.parent
T0 = 1_717_200_000_000_000_000


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "depotwatch.yaml"
    config.write_text(f"site: {{id: x}}\nstorehouses: [{{id: S}}]\nstate_dir: {tmp_path}\n",
                      encoding="utf-8")
    return config


def _json(*args: str | Path) -> Any:
    done = subprocess.run([sys.executable, "-m", "daemon.cli", *map(str, args), "--json"],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads(done.stdout)


def test_deadletters_json(tmp_path: Path) -> None:
    config = _config(tmp_path)
    assert _json("deadletters", "-c", config) == {
        "path": str(tmp_path / "deadletters.sqlite"), "total": 0, "entries": []}
    store = DeadLetterStore(tmp_path / "deadletters.sqlite", DeadLetterConfig())
    store.keep("zigbee2mqtt/door-1", "not JSON", b"{oops", T0)
    store.keep("serial:/dev/ttyUSB0", "not UTF-8", b"\xff\xfe", T0 + 10**9)
    store.close()
    listing = _json("deadletters", "-c", config, "-n", "5")
    assert listing["total"] == 2
    newest, oldest = listing["entries"]
    assert set(newest) == {"id", "at", "at_ns", "source", "reason", "size", "payload_text",
                           "payload_base64"}
    assert (newest["source"], newest["payload_text"], newest["at"]) == (
        "serial:/dev/ttyUSB0", None, "2024-06-01T00:00:01Z")
    assert base64.b64decode(newest["payload_base64"]) == b"\xff\xfe"
    assert (oldest["reason"], oldest["payload_text"], oldest["size"]) == ("not JSON", "{oops", 5)


def test_spool_json(tmp_path: Path) -> None:
    config = _config(tmp_path)
    empty = _json("spool", "-c", config)
    assert (empty["exists"], empty["targets"], empty["quota_bytes"]) == (False, [], 1 << 30)

    async def fill() -> None:
        spool = Spool(tmp_path / "spool.sqlite", ["http://127.0.0.1:9/d"], max_bytes=1 << 30)
        await spool.open()
        runner = asyncio.create_task(spool.run())
        await spool.append([f"door open=true {T0 + i}" for i in range(3)])
        await spool.append(["climate t=oops 5"])
        [*_, last] = await spool.read_groups("http://127.0.0.1:9/d", 10)
        await spool.advance("http://127.0.0.1:9/d", last.id, set_aside="400 bad field",
                            lines=["climate t=oops 5"])
        runner.cancel()
        await asyncio.gather(runner, return_exceptions=True)
        await spool.close()

    asyncio.run(fill())
    shown = _json("spool", "-c", config)
    assert set(shown) == {"path", "exists", "bytes", "quota_bytes", "targets",
                          "unacknowledged_messages", "set_aside", "damaged_files"}
    assert shown["exists"] is True and shown["bytes"] > 0
    assert shown["targets"] == [{"target": "http://127.0.0.1:9/d", "points": 0,
                                 "oldest_ns": None}]
    [aside] = shown["set_aside"]
    assert (aside["target"], aside["reason"], aside["points"]) == (
        "http://127.0.0.1:9/d", "400 bad field", 1)
