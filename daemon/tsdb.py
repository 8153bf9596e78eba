"""Time-series output: sinks that POST line protocol, and the batching writer in front of them."""

from __future__ import annotations

import asyncio
import base64
import collections
import itertools
import json
import logging
import random
import time
import urllib.parse
from pathlib import Path
from typing import Protocol, cast

import aiohttp
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write_api_async import WriteApiAsync
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from daemon.config import FileOutputConfig, InfluxConfig
from daemon.errors import SinkError

__all__ = ["FileSink", "InfluxV1Sink", "InfluxV2Sink", "Sink", "TsdbWriter", "build_sink"]

log = logging.getLogger(__name__)

# Server error texts can name every bad line of a 5000-line batch; keep messages readable.
_MAX_MESSAGE_CHARS = 1000
_LOG_EVERY_S = 60.0
# influxdb-client's WritePrecision is a class of plain str constants, annotated as the class.
_PRECISION_NS = cast(WritePrecision, WritePrecision.NS)


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


class InfluxV1Sink:
    """InfluxDB 1.x: POST line protocol to /write with basic auth (also 2.x/3.x's v1 API)."""

    def __init__(self, config: InfluxConfig) -> None:
        params = {"db": config.database or "", "precision": "ns"}
        if config.retention_policy:
            params["rp"] = config.retention_policy
        # Credentials in the URL (http://user:pw@host) become the header too: aiohttp refuses a
        # request that has both.
        parts = urllib.parse.urlsplit(config.url)
        base = _redact_url(config.url).rstrip("/")
        self._url = f"{base}/write?{urllib.parse.urlencode(params)}"
        self.target = f"influxdb v1 {base} db={config.database}"
        self._headers = {"Content-Type": "text/plain; charset=utf-8"}
        username = config.username or urllib.parse.unquote(parts.username or "")
        password = (config.password.get_secret_value() if config.password
                    else urllib.parse.unquote(parts.password or ""))
        if username:
            # By hand: aiohttp 3.14 deprecates BasicAuth, and its replacement is not in 3.9.
            token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
            self._headers["Authorization"] = f"Basic {token}"
        self._secrets = (password, parts.password or "")
        self._timeout = aiohttp.ClientTimeout(total=config.timeout_s)
        # Built on first write: an aiohttp session belongs to the loop it was made in.
        self._session: aiohttp.ClientSession | None = None

    async def write(self, body: bytes) -> None:
        """POST one batch; 2xx is success."""
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        try:
            async with self._session.post(self._url, data=body, headers=self._headers) as resp:
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


class InfluxV2Sink:
    """InfluxDB 2.x/3.x, Cloud or VictoriaMetrics: /api/v2/write through influxdb-client."""

    def __init__(self, config: InfluxConfig) -> None:
        self._url = config.url
        # An empty token sends no Authorization header (VictoriaMetrics needs none).
        self._token = config.token.get_secret_value() if config.token else ""
        self._org = config.org
        self._bucket = config.bucket or ""
        self._timeout_s = config.timeout_s
        self.target = f"influxdb v2 {_redact_url(config.url)} bucket={config.bucket}"
        parts = urllib.parse.urlsplit(config.url)
        self._secrets = (self._token, parts.password or "")
        # Built on first write: the async client insists on a running loop.
        self._client: InfluxDBClientAsync | None = None
        self._api: WriteApiAsync | None = None

    async def write(self, body: bytes) -> None:
        """Write one batch; ApiException, aiohttp and timeout errors become SinkError."""
        if self._client is None or self._api is None:
            self._client = InfluxDBClientAsync(
                url=self._url, token=self._token, org=self._org,
                timeout=int(self._timeout_s * 1000),
            )
            self._api = self._client.write_api()
        try:
            await self._api.write(
                bucket=self._bucket, org=self._org, record=body, write_precision=_PRECISION_NS
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            text = _server_error_text(exc.body) or str(exc.reason or "")
            message = f"{self.target}: HTTP {status}: {text}"
            # status 0: the client refused to build the request; repeating it cannot help.
            retryable = status != 0 and _retryable_status(status)
            raise SinkError(_clean(message, self._secrets), retryable=retryable) from exc
        except TimeoutError as exc:  # before OSError, its base class
            message = f"{self.target}: no answer within {self._timeout_s}s"
            raise SinkError(message, retryable=True) from exc
        except (aiohttp.ClientError, OSError) as exc:
            message = f"{self.target}: {type(exc).__name__}: {exc}"
            raise SinkError(_clean(message, self._secrets), retryable=True) from exc

    async def close(self) -> None:
        """Close the client's HTTP session."""
        if self._client is not None:
            client, self._client, self._api = self._client, None, None
            await client.close()  # type: ignore[no-untyped-call]


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
    """Batches lines for one sink: retries what may succeed later, drops what never will."""

    def __init__(
        self,
        name: str,
        sink: Sink,
        *,
        batch_size: int,
        flush_interval_s: float,
        max_buffered_points: int,
        retry_min_s: float = 0.5,
        retry_max_s: float = 30.0,
    ) -> None:
        if batch_size <= 0 or max_buffered_points <= 0:
            raise ValueError("batch_size and max_buffered_points must be positive")
        self.name = name
        self.sink = sink
        self._batch_size = batch_size
        self._flush_interval_s = flush_interval_s
        self._max_buffered = max_buffered_points
        self._retry_min_s = retry_min_s
        self._retry_max_s = retry_max_s
        # Lines stay here until the sink has taken them: a batch is only removed after success.
        # TODO(spool): the durable on-disk spool (a later issue) replaces this bounded memory
        # buffer; until then an outage longer than the buffer loses the oldest points.
        self._buffer: collections.deque[str] = collections.deque()
        self._full = asyncio.Event()
        # One batch in flight at a time, whether sent by run() or flush().
        self._send_lock = asyncio.Lock()
        self._inflight = 0  # leading buffer lines that are part of the batch being sent
        self._evicted_inflight = 0  # of those, evicted by overflow while the write was running
        self._failures = 0  # consecutive retryable failures
        self.written = 0
        self.dropped = 0
        self.rejected = 0
        self.retries = 0
        self.last_error: str | None = None
        self._dropped_since_log = 0
        self._last_drop_log = -_LOG_EVERY_S
        self._last_retry_log = -_LOG_EVERY_S
        self._rejected_since_log = 0
        self._last_reject_log = -_LOG_EVERY_S

    def enqueue(self, line: str) -> None:
        """Buffer one line without blocking; when full, the oldest line is dropped."""
        if len(self._buffer) >= self._max_buffered:
            self._buffer.popleft()
            if self._inflight:
                # Part of the batch being written: its fate (written or lost) is counted then.
                self._inflight -= 1
                self._evicted_inflight += 1
            else:
                self.dropped += 1
            self._dropped_since_log += 1
            now = time.monotonic()
            if now - self._last_drop_log >= _LOG_EVERY_S:
                log.warning(
                    "%s: buffer full (%d lines), dropped %d oldest line(s) since last report",
                    self.name, self._max_buffered, self._dropped_since_log,
                )
                self._last_drop_log = now
                self._dropped_since_log = 0
        self._buffer.append(line)
        if len(self._buffer) >= self._batch_size:
            self._full.set()

    def stats(self) -> dict[str, int]:
        """Counters for health and metrics."""
        return {
            "buffered": len(self._buffer),
            "written": self.written,
            "dropped": self.dropped,
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

    async def _wait_for_batch(self) -> None:
        if len(self._buffer) >= self._batch_size:
            return
        self._full.clear()
        try:
            async with asyncio.timeout(self._flush_interval_s):
                await self._full.wait()
        except TimeoutError:
            pass

    async def _send_batch(self) -> bool:
        """Send the oldest lines once; False after a retryable failure (the batch stays)."""
        async with self._send_lock:
            if not self._buffer:
                self._failures = 0
                return True
            n = min(self._batch_size, len(self._buffer))
            batch = list(itertools.islice(self._buffer, n))
            self._inflight, self._evicted_inflight = n, 0
            try:
                # "replace": a lone surrogate from a caller that skipped line() must not wedge
                # the buffer's head forever.
                await self.sink.write("\n".join(batch).encode("utf-8", "replace"))
            except SinkError as exc:
                still_buffered, evicted = self._end_inflight()
                self.last_error = str(exc)
                if exc.retryable:
                    self.dropped += evicted
                    self._failures += 1
                    self.retries += 1
                    self._log_retry(exc)
                    return False
                for _ in range(still_buffered):
                    self._buffer.popleft()
                self.rejected += n
                self._failures = 0
                self._log_reject(n, exc)
                return True
            except BaseException:
                # Cancelled (shutdown) or a bug in the sink: the batch stays for flush() or the
                # supervisor; lines evicted meanwhile may not have arrived.
                self.dropped += self._end_inflight()[1]
                raise
            still_buffered, _ = self._end_inflight()
            for _ in range(still_buffered):
                self._buffer.popleft()
            self.written += n  # evicted lines of this batch were delivered too
            if self._failures:
                log.info("%s: delivered again after %d failed attempts", self.name, self._failures)
                self._failures = 0
            return True

    def _end_inflight(self) -> tuple[int, int]:
        """(batch lines still at the buffer's head, batch lines evicted during the write)."""
        counts = (self._inflight, self._evicted_inflight)
        self._inflight = self._evicted_inflight = 0
        return counts

    def _log_retry(self, exc: SinkError) -> None:
        now = time.monotonic()
        if self._failures == 1 or now - self._last_retry_log >= _LOG_EVERY_S:
            log.warning(
                "%s: write failed (attempt %d, %d lines buffered), will retry: %s",
                self.name, self._failures, len(self._buffer), exc,
            )
            self._last_retry_log = now

    def _log_reject(self, n: int, exc: SinkError) -> None:
        # TODO(spool): move rejected batches aside for inspection (a later issue).
        self._rejected_since_log += n
        now = time.monotonic()
        if now - self._last_reject_log >= _LOG_EVERY_S:
            log.error(
                "%s: server refused %d line(s), dropped them (not retryable): %s",
                self.name, self._rejected_since_log, exc,
            )
            self._last_reject_log = now
            self._rejected_since_log = 0

    async def run(self) -> None:
        """Write batches forever; cancel the task to stop (then call flush())."""
        while True:
            if self._failures == 0:
                await self._wait_for_batch()
            if not await self._send_batch():
                await asyncio.sleep(self._backoff_s())

    async def flush(self, timeout_s: float) -> bool:
        """Send everything buffered now, retrying until `timeout_s`; True if all were taken."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._buffer:
                    if not await self._send_batch():
                        await asyncio.sleep(min(self._backoff_s(), 1.0))
        except TimeoutError:
            log.warning(
                "%s: flush gave up after %.1fs with %d line(s) unsent",
                self.name, timeout_s, len(self._buffer),
            )
            return False
        return True
