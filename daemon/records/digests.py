"""A signed daily digest of the audit chain's head, kept on the gateway and published to HQ.

Once HQ holds the day's digest (seq and hash of the last audit entry, signed by the gateway
key), a history rewritten later on the gateway disagrees with it: the chain can be re-hashed
by whoever holds the disk, but not back into what HQ already has.

Signing loads `cryptography` (about 12 MiB of memory): the daemon runs it in a short-lived
`python -m daemon.records.digests` once a day and only publishes the file it writes.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NoReturn

from daemon.vocabulary.errors import DepotwatchError

__all__ = ["DIGEST_TOPIC", "AuditDigests", "digest_path", "make_digest"]

log = logging.getLogger(__name__)

# Under `gateway/`, which the HQ bridge (deploy/mosquitto/bridge-hq.conf) already carries out.
DIGEST_TOPIC = "depotwatch/{site}/gateway/audit-digest"


def digest_path(state_dir: Path, day: dt.date) -> Path:
    """Where the digest of `day` (UTC) is kept."""
    return state_dir / "signing" / "digests" / f"{day.isoformat()}.json"


def make_digest(state_dir: Path, site: str, day: dt.date) -> Path:
    """Sign the audit chain's head now as the digest of `day`; the file written."""
    from daemon.alerts.audit import audit_path, verify
    from daemon.records.signing import DIGEST_FORMAT, GatewayKey, key_path

    audit = audit_path(state_dir)
    result = verify(audit) if audit.exists() else None
    key = GatewayKey.load_or_create(key_path(state_dir))
    fields: dict[str, Any] = {
        "format": DIGEST_FORMAT, "site": site, "date": day.isoformat(),
        "made_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "audit_head": ({"seq": result.last_seq, "hash": result.last_hash}
                       if result is not None else None),
        "audit_status": result.status if result is not None else "missing",
    }
    target = digest_path(state_dir, day)
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    partial.write_text(json.dumps(key.sign(fields), sort_keys=True) + "\n", encoding="utf-8")
    os.replace(partial, target)
    return target


class AuditDigests:
    """Makes today's digest if there is none (in a child process) and publishes it retained."""

    def __init__(self, state_dir: Path, site: str,
                 publish: Callable[[str, bytes], object], *, every_s: float = 3600.0,
                 first_after_s: float = 60.0) -> None:
        self._state_dir = state_dir
        self._site = site
        self._publish = publish
        self._every_s = every_s
        # A gateway that restarts in a loop should not sign in a loop too.
        self._first_after_s = first_after_s
        self.topic = DIGEST_TOPIC.replace("{site}", site)

    async def run(self) -> NoReturn:
        """Forever: today's digest made and published, then a look again every `every_s`."""
        published: Path | None = None
        await asyncio.sleep(self._first_after_s)
        while True:
            today = dt.datetime.now(dt.UTC).date()
            path = digest_path(self._state_dir, today)
            if not path.exists():
                await self._make(today)
            if path.exists() and path != published:
                try:
                    self._publish(self.topic, path.read_bytes())
                except DepotwatchError as exc:  # broker away: again at the next look
                    log.warning("audit digest not published: %s", exc)
                else:
                    published = path
            await asyncio.sleep(self._every_s)

    async def _make(self, day: dt.date) -> None:
        child = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "daemon.records.digests", str(self._state_dir), self._site,
            day.isoformat(), stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE)
        _, errors = await child.communicate()
        if child.returncode != 0:
            log.error("audit digest of %s not made: %s", day,
                      errors.decode(errors="replace").strip()[-500:])


def main(argv: Sequence[str]) -> int:
    """`python -m daemon.records.digests STATE_DIR SITE YYYY-MM-DD`."""
    state_dir, site, day = argv
    make_digest(Path(state_dir), site, dt.date.fromisoformat(day))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
