"""`depotwatch dashboards push`: dashboards into Grafana over its HTTP API (grafana-client)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from daemon.vocabulary.errors import DepotwatchError

__all__ = ["TOKEN_ENV", "GrafanaError", "push"]

log = logging.getLogger(__name__)

# A Grafana service-account token with the Editor role (dashboards and folders only).
TOKEN_ENV = "DEPOTWATCH_GRAFANA_TOKEN"

INSTALL_HINT = (
    "the Grafana push needs the optional extra 'grafana': "
    "URLLIB3_NO_OVERRIDE=1 pip install --no-binary urllib3-future 'depotwatch[grafana]' "
    "(the two settings keep urllib3-future from replacing urllib3 in the environment)"
)


class GrafanaError(DepotwatchError):
    """Grafana refused or could not be reached."""


def push(
    dashboards: Sequence[dict[str, Any]], url: str, token: str, *,
    folder: str = "depotwatch", folder_title: str = "depotwatch", message: str = "",
    timeout_s: float = 10.0,
) -> list[str]:
    """Create or overwrite each dashboard (by uid) in `folder`, made if missing; their URLs."""
    try:
        import niquests
        from grafana_client.api import GrafanaApi
        from grafana_client.client import GrafanaClientError, GrafanaException
    except ImportError as exc:
        raise GrafanaError(INSTALL_HINT) from exc

    api = GrafanaApi.from_url(url, credential=token, timeout=timeout_s)
    urls: list[str] = []
    try:
        try:
            api.folder.get_folder(folder)
        except GrafanaClientError as exc:
            if exc.status_code != 404:
                raise
            api.folder.create_folder(folder_title, uid=folder)
            log.info("created Grafana folder %s", folder)
        for dashboard in dashboards:
            # Never send an instance-specific numeric id: the uid decides what is replaced.
            body = {k: v for k, v in dashboard.items() if k not in ("id", "version")}
            answer = api.dashboard.update_dashboard({
                "dashboard": body, "folderUid": folder, "overwrite": True, "message": message,
            })
            urls.append(str(answer.get("url", "")) if isinstance(answer, dict) else "")
            log.info("pushed dashboard %s to %s", dashboard.get("uid"), url)
    except GrafanaException as exc:
        detail = exc.message or type(exc).__name__
        raise GrafanaError(f"Grafana at {url}: HTTP {exc.status_code}: {detail}") from exc
    except niquests.exceptions.RequestException as exc:
        raise GrafanaError(f"Grafana at {url} not reachable: {exc}") from exc
    return urls
