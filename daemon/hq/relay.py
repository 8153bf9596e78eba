"""Acknowledging at HQ: the action goes to the depot as an ordinary officer's command on its
command topic (`depotwatch/<site>/commands`, which the bridge carries in), with the token the
depot knows HQ by. The depot judges it as any command (token, role, replay guard) and records
it in its own audit trail; its reply comes back over the bridge."""

from __future__ import annotations

import asyncio
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import SecretStr

from daemon.hq.heartbeat import Publisher
from daemon.hq.topics import commands_topic
from daemon.vocabulary.errors import DepotwatchError

__all__ = ["CommandRelay", "RelayError"]


class RelayError(DepotwatchError):
    """The command could not be sent, or the depot did not answer in time."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class CommandRelay:
    """Sends HQ's acknowledgements to depots and waits for their replies."""

    def __init__(self, link: Publisher, tokens: dict[str, SecretStr | None],
                 timeout_s: float) -> None:
        self._link = link
        self._tokens = tokens
        self._timeout_s = timeout_s
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}

    def reply(self, site: str, body: bytes) -> None:
        """A depot's reply to a command (ours or a console's there)."""
        try:
            doc = json.loads(body)
        except ValueError:
            return
        waiting = self._waiting.pop(str(doc.get("id", "")), None) if isinstance(doc, dict) \
            else None
        if waiting is not None and not waiting.done():
            waiting.set_result(doc)

    async def acknowledge(self, site: str, key: str, officer: str, note: str) -> dict[str, Any]:
        """Acknowledge alarm `key` at depot `site` for HQ's `officer`; the depot's result."""
        token = self._tokens.get(site)
        if token is None:
            raise RelayError(f"HQ holds no command token for depot {site}: acknowledge there",
                             409)
        request_id = secrets.token_hex(8)
        command = {"id": request_id, "token": token.get_secret_value(), "action": "ack",
                   "key": key, "nonce": secrets.token_hex(16),
                   "sent_at": datetime.now(UTC).isoformat(),
                   "note": f"at HQ by {officer}" + (f": {note}" if note else "")}
        waiting = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = waiting
        try:
            self._link.publish(commands_topic(site), json.dumps(command).encode(), qos=1)
            doc = await asyncio.wait_for(waiting, self._timeout_s)
        except DepotwatchError as exc:
            raise RelayError(f"not sent to depot {site}: {exc}", 503) from exc
        except TimeoutError as exc:
            raise RelayError(f"depot {site} did not answer within {self._timeout_s:g} s "
                             "(is it reachable?)", 504) from exc
        finally:
            self._waiting.pop(request_id, None)
        if not doc.get("ok"):
            raise RelayError(f"depot {site} refused: {doc.get('error')}", 409)
        result = doc.get("result")
        return result if isinstance(result, dict) else {}
