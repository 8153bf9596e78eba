"""InfluxQL over HTTP: how the report asks InfluxDB for the month's points."""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from typing import Any

from daemon.records.document import ReportError
from daemon.tsdb.settings import InfluxConfig

__all__ = ["InfluxQL", "quote"]


def quote(value: str) -> str:
    """An InfluxQL string literal."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxQL:
    """InfluxQL over HTTP `/query` (urllib, stdlib). InfluxDB 1.x natively; 2.x and 3.x answer
    through their v1-compatible `/query` (the bucket needs a DBRP mapping on 2.x)."""

    def __init__(self, target: InfluxConfig) -> None:
        self.url = target.url.rstrip("/") + "/query"
        self.database = target.database or target.bucket or ""
        self.timeout_s = max(target.timeout_s, 60.0)
        self._params = {"db": self.database, "epoch": "ns"}
        if target.retention_policy:
            self._params["rp"] = target.retention_policy
        self._headers = {"Content-Type": "application/x-www-form-urlencoded"}
        if target.api == "v2" and target.token is not None:
            self._headers["Authorization"] = f"Token {target.token.get_secret_value()}"
        elif target.username:
            password = target.password.get_secret_value() if target.password else ""
            basic = base64.b64encode(f"{target.username}:{password}".encode()).decode()
            self._headers["Authorization"] = f"Basic {basic}"

    def query(self, influxql: str) -> list[dict[str, Any]]:
        """The series of one statement: each with name, tags, columns, values."""
        body = urllib.parse.urlencode({**self._params, "q": influxql}).encode()
        request = urllib.request.Request(self.url, data=body, headers=self._headers,
                                         method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                answer = json.loads(response.read())
        except urllib.error.HTTPError as exc:
            detail = exc.read()[:300].decode("utf-8", "replace")
            raise ReportError(f"InfluxDB {self.url}: HTTP {exc.code}: {detail}") from exc
        except (OSError, ValueError) as exc:
            raise ReportError(f"InfluxDB {self.url}: {exc}") from exc
        results = answer.get("results") or [{}]
        if "error" in results[0]:
            raise ReportError(f"InfluxDB query failed: {results[0]['error']}: {influxql}")
        series: list[dict[str, Any]] = results[0].get("series") or []
        return series

    def rows(self, influxql: str) -> Iterable[tuple[dict[str, str], dict[str, Any]]]:
        """Each row as (tags of its series, {column: value})."""
        for series in self.query(influxql):
            tags = series.get("tags") or {}
            for values in series.get("values") or []:
                yield tags, dict(zip(series["columns"], values, strict=True))

