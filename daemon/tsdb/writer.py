"""Time-series output: sinks that POST line protocol, and the batching writer in front of them."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import logging
import random
import sqlite3
import time
import urllib.parse
from pathlib import Path
from typing import Protocol

import aiohttp

from daemon.spool.quota import is_disk_full
from daemon.spool.store import Spool
from daemon.tsdb.settings import FileOutputConfig, InfluxConfig
from daemon.vocabulary.errors import SinkError

__all__ = ["FileSink", "InfluxV1Sink", "InfluxV2Sink", "Sink", "TsdbWriter", "build_sink"]

log = logging.getLogger(__name__)

# Server error texts can name every bad line of a 5000-line batch; keep messages readable.
_MAX_MESSAGE_CHARS = 1000
_LOG_EVERY_S = 60.0
# How long a writer waits when the spool's disk refuses to record a sent batch.
_DISK_FULL_WAIT_S = 5.0


class Sink(Protocol):
    """Where batches of line protocol go; failures are `SinkError(retryable=...)` only."""

    async def write(self, body: bytes) -> None:
        """Deliver one batch (lines joined by newlines), or raise SinkError."""
        ...

    async def close(self) -> None:
        """Release connections; the sink may be used again afterwards."""
        ...


def _retryable_status(status: int) -> bool:
    """Whether an HTTP status can succeed later with the same body.

    400/413/422 mean the data itself is refused: sending it again cannot help. 401/403/404
    (bad token, missing database or bucket) are an operator's fix away and the points are
    good, so they are kept and retried like Telegraf's outputs do; 408/429 are back-pressure.
    """
    return status >= 500 or status in (401, 403, 404, 408, 429)


def _redact_url(url: str) -> str:
    """The URL without user:password, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    netloc = parts.hostname or ""
    if parts.port is not None:
        netloc += f":{parts.port}"
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def _clean(message: str, secrets: tuple[str, ...]) -> str:
    """Shorten a message and blank out any secret that might have crept in."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "***")
    if len(message) > _MAX_MESSAGE_CHARS:
        message = message[:_MAX_MESSAGE_CHARS] + "..."
    return message


def _server_error_text(body: bytes | str | None) -> str:
    """The `error` (v1) or `message` (v2) of a JSON error body, else the body itself."""
    if body is None:
        return ""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    try:
        decoded = json.loads(text)
    except ValueError:
        return text.strip()
    if isinstance(decoded, dict):
        for key in ("error", "message"):
            if isinstance(decoded.get(key), str):
                return str(decoded[key])
    return text.strip()


# Below this a batch goes plain: gzip's header and the CPU are not worth a few lines.
_GZIP_MIN_BYTES = 1024

class _HttpSink:
    """POSTs a batch of line protocol to one URL with fixed headers; shared by both APIs."""

    def __init__(self, url: str, target: str, headers: dict[str, str], timeout_s: float,
                 secrets: tuple[str, ...], compression: str = "none") -> None:
        self._url = url
        self._gzip = compression == "gzip"
        self.target = target
        self._headers = {"Content-Type": "text/plain; charset=utf-8", **headers}
        self._gzipped = {**self._headers, "Content-Encoding": "gzip"}
        self._secrets = secrets
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        # Built on first write: an aiohttp session belongs to the loop it was made in.
        self._session: aiohttp.ClientSession | None = None

    async def write(self, body: bytes) -> None:
        """POST one batch; 2xx is success."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            headers = self._headers
            if self._gzip and len(body) >= _GZIP_MIN_BYTES:
                body, headers = gzip.compress(body, compresslevel=1), self._gzipped
            async with self._session.post(self._url, data=body, headers=headers) as resp:
                if 200 <= resp.status < 300:
                    return
                text = _server_error_text(await resp.read())
                status = resp.status
        except TimeoutError as exc:  # before OSError, its base class
            message = f"{self.target}: no answer within {self._timeout.total}s"
            raise SinkError(message, retryable=True) from exc
        except (aiohttp.ClientError, OSError) as exc:
            message = f"{self.target}: {type(exc).__name__}: {exc}"
            raise SinkError(_clean(message, self._secrets), retryable=True) from exc
        message = f"{self.target}: HTTP {status}: {text}"
        raise SinkError(_clean(message, self._secrets), retryable=_retryable_status(status))

    async def close(self) -> None:
        """Close the HTTP session."""
        if self._session is not None:
            await self._session.close()
            self._session = None


def _basic_auth(username: str, password: str) -> str:
    # By hand: aiohttp 3.14 deprecates BasicAuth, and its replacement is not in 3.9.
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


class InfluxV1Sink(_HttpSink):
    """InfluxDB 1.x: POST line protocol to /write with basic auth (also 2.x/3.x's v1 API)."""

    def __init__(self, config: InfluxConfig) -> None:
        params = {"db": config.database or "", "precision": "ns"}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        # Credentials in the URL (http://user:pw@host) become the header too: aiohttp refuses a
        # request that has both.
        parts = urllib.parse.urlsplit(config.url)
        base = _redact_url(config.url).rstrip("/")
        username = config.username or urllib.parse.unquote(parts.username or "")
        password = (config.password.get_secret_value() if config.password
                    else urllib.parse.unquote(parts.password or ""))
        headers = {"Authorization": _basic_auth(username, password)} if username else {}
        super().__init__(f"{base}/write?{urllib.parse.urlencode(params)}",
                         f"influxdb v1 {base} db={config.database}", headers, config.timeout_s,
                         (password, parts.password or ""), config.compression)


class InfluxV2Sink(_HttpSink):
    """InfluxDB 2.x/3.x, Cloud or VictoriaMetrics: POST line protocol to /api/v2/write.

    The request influxdb-client's async write API sends for a body of line protocol (token
    auth, org, bucket, ns precision), without the client: importing it cost the daemon ~25 MiB
    (its generated API models, reactivex, dateutil and numpy if installed; bench/depot.py).
    """

    def __init__(self, config: InfluxConfig) -> None:
        token = config.token.get_secret_value() if config.token else ""
        params = {"org": config.org, "bucket": config.bucket or "", "precision": "ns"}
        parts = urllib.parse.urlsplit(config.url)
        base = _redact_url(config.url).rstrip("/")
        headers = {"Accept": "application/json"}
        # An empty token sends no Authorization header (VictoriaMetrics needs none).
        if token:
            headers["Authorization"] = f"Token {token}"
        elif parts.username:
            headers["Authorization"] = _basic_auth(urllib.parse.unquote(parts.username),
                                                   urllib.parse.unquote(parts.password or ""))
        super().__init__(f"{base}/api/v2/write?{urllib.parse.urlencode(params)}",
                         f"influxdb v2 {base} bucket={config.bucket}", headers,
                         config.timeout_s, (token, parts.password or ""), config.compression)


class FileSink:
    """Appends line protocol to a file (the demo's output, or a debugging tap)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.target = f"file {self.path}"

    def _append(self, body: bytes) -> None:
        with self.path.open("ab") as f:
            f.write(body + b"\n")

    async def write(self, body: bytes) -> None:
        """Append one batch and a newline."""
        try:
            await asyncio.to_thread(self._append, body)
        except OSError as exc:
            # A full disk or a remounted directory can recover; keep the batch.
            raise SinkError(f"{self.target}: {exc}", retryable=True) from exc

    async def close(self) -> None:
        """Nothing to release: the file is opened per batch."""


def build_sink(config: InfluxConfig | FileOutputConfig) -> Sink:
    """The sink for one configured output."""
    if isinstance(config, FileOutputConfig):
        return FileSink(config.path)
    if config.api == "v1":
        return InfluxV1Sink(config)
    return InfluxV2Sink(config)


class TsdbWriter:
    """Drains one target's cursor of the spool into its sink: in order, in batches.

    A batch leaves the spool only after the sink took it (a retryable failure keeps it and
    backs off); a batch the server refuses as bad data is set aside with the server's reason.
    """

    def __init__(
        self,
        name: str,
        sink: Sink,
        spool: Spool,
        *,
        batch_size: int,
        flush_interval_s: float,
        retry_min_s: float = 0.5,
        # A probe every 2 s at most: a returning InfluxDB gets its backlog within 2 s (a 30 s
        # cap left /readyz at 503 for up to 30 s after it was back); one small POST every 2 s
        # costs a down server nothing.
        retry_max_s: float = 2.0,
    ) -> None:
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.name = name
        self.sink = sink
        self._spool = spool
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        self._failures = 0  # consecutive retryable failures
        self.written = 0
        self.rejected = 0
        self.retries = 0
        self.last_error: str | None = None
        self.last_write_ns = 0
        self._last_retry_log = -_LOG_EVERY_S

    def stats(self) -> dict[str, int]:
        """Counters for health and metrics."""
        return {
            "written": self.written,
            "rejected": self.rejected,
            "retries": self.retries,
            "consecutive_failures": self._failures,
        }

    def _backoff_s(self) -> float:
        # Capped exponential, with jitter so gateways that lost the same server do not return
        # in lockstep.
        exp = min(self._failures - 1, 30)
        delay = min(self._retry_max_s, self._retry_min_s * 2.0**exp)
        return delay * random.uniform(0.75, 1.0)

    async def write_once(self) -> int:
        """Send the oldest unsent batch once; how many points left the spool (0: none or failed)."""
        # Whole groups (a commit's points each): a batch may run past batch_size by up to one.
        groups = await self._spool.read_groups(self.name, self._batch_size)
        if not groups:
            return 0
        points = sum(group.points for group in groups)
        last_id = groups[-1].id
        try:
            # "replace": a lone surrogate must not wedge the spool's head forever.
            await self.sink.write("\n".join([group.lines for group in groups])
                                  .encode("utf-8", "replace"))
        except SinkError as exc:
            self.last_error = str(exc)
            if exc.retryable:
                self._failures += 1
                self.retries += 1
                self._log_retry(exc)
                return 0
            log.error("%s: server refused %d point(s); set aside (see `depotwatch spool`): %s",
                      self.name, points, exc)
            # Set aside line by line, as `depotwatch spool` counts and shows them.
            lines = [text for group in groups for text in group.lines.split("\n")]
            await self._spool.advance(self.name, last_id, set_aside=str(exc), lines=lines)
            self.rejected += points
            self._failures = 0
            return points
        await self._spool.advance(self.name, last_id)
        self.written += points
        self.last_write_ns = time.time_ns()
        if self._failures:
            log.info("%s: delivered again after %d failed attempts", self.name, self._failures)
            self._failures = 0
        return points

    def _log_retry(self, exc: SinkError) -> None:
        now = time.monotonic()
        if self._failures == 1 or now - self._last_retry_log >= _LOG_EVERY_S:
            log.warning("%s: write failed (attempt %d), points stay in the spool: %s",
                        self.name, self._failures, exc)
            self._last_retry_log = now

    async def run(self) -> None:
        """Write batches forever; cancellation is the shutdown path (the spool keeps the rest)."""
        try:
            while True:
                try:
                    sent = await self.write_once()
                except (OSError, sqlite3.Error) as exc:
                    if not is_disk_full(exc):
                        raise  # a damaged spool: the supervisor restarts us and says so
                    # The spool's disk is full (storage_degraded says so): the batch went out
                    # but its cursor could not be kept. Wait for space instead of a crash and
                    # a "task failed" alert a second; what is re-sent is the same points.
                    self._log_disk_full(exc)
                    await asyncio.sleep(_DISK_FULL_WAIT_S)
                    continue
                if self._failures:
                    await asyncio.sleep(self._backoff_s())
                elif sent < self._batch_size:
                    # Caught up: wait for the next commit (or the flush interval), then let
                    # half a flush interval's commits join it. A POST per commit and target
                    # cost as much CPU as the readings themselves at depot rates (issue 29).
                    await self._spool.wait_for_data(self._flush_interval_s)
                    await asyncio.sleep(self._flush_interval_s / 2)
        finally:
            # An HTTP session left open outlives the daemon's loop (an unclosed-session warning
            # at exit, and its connections to InfluxDB).
            await self.sink.close()

    def _log_disk_full(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._last_retry_log >= _LOG_EVERY_S:
            log.error("%s: the spool's disk is full, what was written cannot be recorded "
                      "(%s); waiting for space", self.name, exc)
            self._last_retry_log = now

    async def drain(self, timeout_s: float) -> bool:
        """Write until the target's backlog is empty or `timeout_s` passes; True when empty.

        Never raises for the spool's disk: this runs at shutdown, and a full disk refusing to
        record a sent batch (its cursor) must not stop the daemon from stopping. The batch is
        in InfluxDB already; the next start sends it again, which InfluxDB takes as the same
        points (same series and timestamps), not new ones."""
        try:
            async with asyncio.timeout(timeout_s):
                while await self.write_once() or self._failures:
                    if self._failures:
                        await asyncio.sleep(min(self._backoff_s(), 1.0))
        except TimeoutError:
            return False
        except (OSError, sqlite3.Error) as exc:
            log.error("%s: the spool could not record what was written at shutdown (%s); "
                      "those points are sent again at the next start", self.name, exc)
            return False
        return True
