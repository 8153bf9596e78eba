"""`depotwatch dashboards push`: dashboards into Grafana over its HTTP API (aiohttp)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any

import aiohttp

from daemon.vocabulary.errors import DepotwatchError

__all__ = ["TOKEN_ENV", "GrafanaError", "push"]

log = logging.getLogger(__name__)

# A Grafana service-account token with the Editor role (dashboards and folders only).
TOKEN_ENV = "DEPOTWATCH_GRAFANA_TOKEN"


class GrafanaError(DepotwatchError):
    """Grafana refused or could not be reached."""


def push(
    dashboards: Sequence[dict[str, Any]], url: str, token: str, *,
    folder: str = "depotwatch", folder_title: str = "depotwatch", message: str = "",
    timeout_s: float = 10.0,
) -> list[str]:
    """Create or overwrite each dashboard (by uid) in `folder`, made if missing; their URLs."""
    return asyncio.run(_push(dashboards, url, token, folder=folder, folder_title=folder_title,
                             message=message, timeout_s=timeout_s))


async def _call(session: aiohttp.ClientSession, method: str, url: str,
                body: dict[str, Any] | None = None, *, missing_ok: bool = False) -> Any:
    async with session.request(method, url, json=body) as response:
        if missing_ok and response.status == 404:
            return None
        try:
            answer = await response.json(content_type=None)
        except ValueError:
            answer = None
        if response.status >= 400:
            detail = answer.get("message") if isinstance(answer, dict) else None
            raise GrafanaError(f"Grafana at {url}: HTTP {response.status}: "
                               f"{detail or response.reason}")
        return answer


async def _push(dashboards: Sequence[dict[str, Any]], url: str, token: str, *, folder: str,
                folder_title: str, message: str, timeout_s: float) -> list[str]:
    base = url.rstrip("/")
    urls: list[str] = []
    # trust_env: an http(s)_proxy/NO_PROXY from the environment applies, as it did before.
    async with aiohttp.ClientSession(
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            timeout=aiohttp.ClientTimeout(total=timeout_s), trust_env=True) as session:
        try:
            if await _call(session, "GET", f"{base}/api/folders/{folder}",
                           missing_ok=True) is None:
                await _call(session, "POST", f"{base}/api/folders",
                            {"uid": folder, "title": folder_title})
                log.info("created Grafana folder %s", folder)
            for dashboard in dashboards:
                # Never send an instance-specific numeric id: the uid decides what is replaced.
                body = {k: v for k, v in dashboard.items() if k not in ("id", "version")}
                answer = await _call(session, "POST", f"{base}/api/dashboards/db", {
                    "dashboard": body, "folderUid": folder, "overwrite": True,
                    "message": message})
                urls.append(str(answer.get("url", "")) if isinstance(answer, dict) else "")
                log.info("pushed dashboard %s to %s", dashboard.get("uid"), url)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise GrafanaError(f"Grafana at {url} not reachable: "
                               f"{exc or type(exc).__name__}") from exc
    return urls
