"""TSDB writer and sinks against real InfluxDB 1.x and VictoriaMetrics (the v2 write API)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Coroutine
from pathlib import Path
from typing import Any

import aiohttp.web
import pytest
from pydantic import SecretStr
from servers import InfluxDB1, VictoriaMetrics, free_port

from daemon.spool.store import Spool
from daemon.tsdb.lineprotocol import line
from daemon.tsdb.settings import FileOutputConfig, InfluxConfig
from daemon.tsdb.writer import FileSink, InfluxV1Sink, InfluxV2Sink, TsdbWriter, build_sink
from daemon.vocabulary.errors import SinkError
from daemon.vocabulary.readings import FieldValue
from daemon.web.doorman import ListeningSite

Point = tuple[str, dict[str, str], dict[str, FieldValue], int]


def v1_config(url: str, db: str, **kw: Any) -> InfluxConfig:
    return InfluxConfig(api="v1", url=url, database=db, **{"timeout_s": 2.0, **kw})


def v2_config(url: str, **kw: Any) -> InfluxConfig:
    return InfluxConfig(api="v2", url=url, bucket="depot", org="hq", **{"timeout_s": 2.0, **kw})


class SpooledWriter(TsdbWriter):
    """A writer with its own spool in a temp dir; `enqueue` spools a line as the pipeline does."""

    def __init__(self, sink: Any, path: Path | None = None, **kw: Any) -> None:
        path = path or Path(tempfile.mkdtemp()) / "spool.sqlite"
        self.spool = Spool(path, ["test"], max_bytes=1 << 30)
        super().__init__("test", sink, self.spool, **kw)

    def enqueue(self, text: str) -> None:
        self.spool.append([text])

    async def unsent(self) -> int:
        return (await self.spool.backlog())[0].points


def make_writer(sink: Any, **kw: Any) -> SpooledWriter:
    opts: dict[str, Any] = dict(
        batch_size=100, flush_interval_s=0.05, retry_min_s=0.02, retry_max_s=0.2,
    )
    opts.update(kw)
    return SpooledWriter(sink, **opts)


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


async def wait_until(cond: Callable[[], bool], within_s: float = 10.0) -> None:
    deadline = time.monotonic() + within_s
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@contextlib.asynccontextmanager
async def running(writer: SpooledWriter) -> AsyncIterator[asyncio.Task[None]]:
    """Run the spool and the writer for the block; cancelling them is the shutdown path."""
    await writer.spool.open()
    committer = asyncio.create_task(writer.spool.run())
    task = asyncio.create_task(writer.run())
    try:
        yield task
    finally:
        for t in (task, committer):
            t.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await t
        await writer.spool.close()
        await writer.sink.close()


def read_back(server: InfluxDB1, db: str, source: str = "/.*/") -> list[Point]:
    """Every stored point as (measurement, tags, fields, ts), sorted by time and name."""
    result = server.query(db, f"SELECT * FROM {source} GROUP BY *")["results"][0]
    assert "error" not in result, result
    points: list[Point] = []
    for series in result.get("series", []):
        tags = {k: v for k, v in series.get("tags", {}).items() if v}
        for row in series["values"]:
            fields = {
                # Go's JSON writes whole floats without a decimal point.
                c: float(v) if type(v) is int else v
                for c, v in zip(series["columns"][1:], row[1:], strict=True)
                if v is not None
            }
            points.append((series["name"], tags, fields, row[0]))
    return sorted(points, key=lambda p: (p[3], p[0], sorted(p[1].items())))


def depot_points(base_ns: int, n: int) -> list[Point]:
    points: list[Point] = []
    for i in range(n):
        ts = base_ns + i * 1000
        points.append(("door", {"site": "d7", "storehouse": "sh 1", "door": f"door {i % 5}"},
                       {"open": i % 2 == 0, "tamper": False}, ts))
        points.append(("climate", {"site": "d7", "storehouse": "sh 1", "sensor": f"c{i % 3}"},
                       {"temperature_c": 20 + i / 7, "humidity_pct": 45.5, "dew_point_c": -0.25},
                       ts))
        points.append(("access", {"site": "d7", "door": "door 1", "result": "granted"},
                       {"person": f'Sgt. O\'Neil "{i}", 2nd=yes', "badge_hash": "ab\\cd" * 4}, ts))
    return sorted(points, key=lambda p: (p[3], p[0], sorted(p[1].items())))


# --- InfluxDB 1.x ------------------------------------------------------------------------------


def test_v1_writer_delivers_points_exactly(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("tsdb_exact")
    points = depot_points(time.time_ns(), 200)

    async def main() -> tuple[dict[str, int], int]:
        writer = make_writer(InfluxV1Sink(v1_config(influxdb1.url, "tsdb_exact")), batch_size=64)
        async with running(writer):
            for p in points:
                writer.enqueue(line(*p))
            await wait_until(lambda: writer.written == len(points))
            unsent = await writer.unsent()
        return writer.stats(), unsent

    stats, unsent = run(main())
    assert unsent == 0
    assert stats == {"written": 600, "rejected": 0, "retries": 0, "consecutive_failures": 0}
    assert read_back(influxdb1, "tsdb_exact") == points


def test_v1_bad_line_refused_with_server_message(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("tsdb_bad")
    sink = InfluxV1Sink(v1_config(influxdb1.url, "tsdb_bad"))
    body = b"good,k=a f=1.0 1\nthis is not line protocol\ngood,k=b f=2.0 2"

    async def main() -> SinkError:
        try:
            with pytest.raises(SinkError) as info:
                await sink.write(body)
            return info.value
        finally:
            await sink.close()

    err = run(main())
    assert err.retryable is False
    assert "HTTP 400" in str(err)
    assert "unable to parse 'this is not line protocol'" in str(err)
    # InfluxDB 1.x stores the lines it could parse: dropping the batch loses only the bad one.
    assert [p[3] for p in read_back(influxdb1, "tsdb_bad")] == [1, 2]


def test_v1_writer_drops_refused_batch_and_logs_once(
    influxdb1: InfluxDB1, caplog: pytest.LogCaptureFixture
) -> None:
    influxdb1.create_database("tsdb_refused")

    async def main() -> tuple[SpooledWriter, list[Any]]:
        writer = make_writer(InfluxV1Sink(v1_config(influxdb1.url, "tsdb_refused")), batch_size=2)
        async with running(writer):
            writer.enqueue("m,k=a f=1.0 1")
            await wait_until(lambda: writer.written == 1)
            # f is a float now: string values are a field type conflict (400).
            writer.enqueue('m,k=a f="now a string" 2')
            writer.enqueue('m,k=a f="again" 3')
            await wait_until(lambda: writer.rejected == 2)
            writer.enqueue('m,k=a f="and again" 4')
            writer.enqueue("m,k=a f=5.0 5")
            await wait_until(lambda: writer.rejected == 4)
            writer.enqueue("m,k=a f=6.0 6")
            await wait_until(lambda: writer.written == 2)
            assert await writer.unsent() == 0
            aside = await writer.spool.set_aside_summary()
        return writer, aside

    with caplog.at_level(logging.WARNING, logger="daemon.tsdb.writer"):
        writer, aside = run(main())
    assert writer.retries == 0
    # The refused batches are kept aside with the server's reason, not retried forever.
    assert sum(a.points for a in aside) == 4 and {a.target for a in aside} == {"test"}
    assert all("field type conflict" in a.reason for a in aside)
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 2
    assert "field type conflict" in errors[0].getMessage()
    assert [p[3] for p in read_back(influxdb1, "tsdb_refused")] == [1, 5, 6]


def test_v1_missing_database_is_retried(influxdb1: InfluxDB1) -> None:
    # 404 "database not found" is fixed by an operator, and the points are good: keep them.
    sink = InfluxV1Sink(v1_config(influxdb1.url, "tsdb_not_created"))

    async def main() -> SinkError:
        try:
            with pytest.raises(SinkError) as info:
                await sink.write(b"m f=1.0 1")
            return info.value
        finally:
            await sink.close()

    err = run(main())
    assert err.retryable is True
    assert "HTTP 404" in str(err) and "database not found" in str(err)


def test_writer_keeps_batch_until_server_appears(tmp_path: Path) -> None:
    server = InfluxDB1(tmp_path / "late")  # its port is chosen, nothing listens there yet
    points = depot_points(time.time_ns(), 10)
    config = v1_config(server.url, "late", username="depot", password=SecretStr("pa55-w0rd"))

    async def main() -> TsdbWriter:
        writer = make_writer(InfluxV1Sink(config), batch_size=8)
        for p in points:
            writer.enqueue(line(*p))
        async with running(writer):
            await wait_until(lambda: writer.retries >= 3)
            assert writer.written == 0
            assert await writer.unsent() == len(points)
            assert writer.last_error is not None and "pa55-w0rd" not in writer.last_error
            await asyncio.to_thread(server.start)
            await asyncio.to_thread(server.create_database, "late")
            await wait_until(lambda: writer.written == len(points))
        return writer

    try:
        writer = run(main())
        assert writer.written == len(points)
        assert read_back(server, "late") == points
    finally:
        server.close()


def test_same_point_twice_is_stored_once(influxdb1: InfluxDB1) -> None:
    influxdb1.create_database("tsdb_twice")
    ts = time.time_ns()
    first = line("door", {"site": "d7", "door": "d1"}, {"open": True}, ts)
    replay = line("door", {"site": "d7", "door": "d1"}, {"open": False}, ts)

    async def main() -> None:
        sink = InfluxV1Sink(v1_config(influxdb1.url, "tsdb_twice"))
        try:
            await sink.write(first.encode())
            await sink.write(first.encode())
            await sink.write(replay.encode())  # same series and time: overwrites
        finally:
            await sink.close()

    run(main())
    assert read_back(influxdb1, "tsdb_twice") == [
        ("door", {"site": "d7", "door": "d1"}, {"open": False}, ts)
    ]


# --- cancellation ---------------------------------------------------------------------------


class GateSink:
    """A sink whose writes wait for the test to let them finish (logic seam, no I/O)."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.fail: SinkError | None = None

    async def write(self, body: bytes) -> None:
        self.bodies.append(body)
        self.started.set()
        await self.release.wait()
        self.release.clear()
        if self.fail is not None:
            raise self.fail

    async def close(self) -> None:
        pass


def test_cancel_mid_write_keeps_batch_in_the_spool() -> None:
    async def main() -> tuple[int, GateSink]:
        sink = GateSink()
        writer = make_writer(sink, batch_size=2)
        writer.enqueue("m f=1.0 1")
        writer.enqueue("m f=2.0 2")
        async with running(writer):
            await sink.started.wait()
            # Shutdown while the write hangs: the batch must still be there for the next start.
        again = make_writer(sink, path=writer.spool.path, batch_size=2)
        sink.release.set()
        async with running(again):
            await wait_until(lambda: again.written == 2)
        return again.written, sink

    written, sink = run(main())
    assert written == 2
    assert sink.bodies == [b"m f=1.0 1\nm f=2.0 2"] * 2


# --- v2 write API (VictoriaMetrics) -------------------------------------------------------------


def vm_samples(vm: VictoriaMetrics, match: str, n: int) -> list[dict[str, Any]]:
    """The series matching, once n samples are searchable (VictoriaMetrics indexes lazily)."""
    deadline = time.monotonic() + 10
    while True:
        series = vm.wait_for_series(match)
        if sum(len(s["values"]) for s in series) >= n or time.monotonic() > deadline:
            return series
        time.sleep(0.05)


def test_v2_writer_to_victoriametrics(victoriametrics: VictoriaMetrics) -> None:
    base = (time.time_ns() // 1_000_000_000) * 1_000_000_000
    # Sub-millisecond parts: VictoriaMetrics keeps milliseconds only.
    stamps = [base + i * 1_000_000 + 123_456 for i in range(20)]

    async def main() -> TsdbWriter:
        config = v2_config(victoriametrics.url, token=SecretStr("t0ken"))
        writer = make_writer(InfluxV2Sink(config), batch_size=8)
        async with running(writer):
            for i, ts in enumerate(stamps):
                writer.enqueue(line("v2climate", {"site": "d7", "sensor": "c 1"},
                                    {"temperature_c": 18.5 + i, "note": "ok"}, ts))
                door: dict[str, FieldValue] = {"open": i % 2 == 0}
                writer.enqueue(line("v2door", {"site": "d7", "door": "d1"}, door, ts))
            await wait_until(lambda: writer.written == 40)
        return writer

    writer = run(main())
    assert writer.retries == 0 and writer.rejected == 0
    series = vm_samples(victoriametrics, 'v2climate_temperature_c{sensor="c 1"}', 20)
    assert len(series) == 1
    assert series[0]["metric"] == {"__name__": "v2climate_temperature_c", "site": "d7",
                                   "sensor": "c 1"}
    assert series[0]["values"] == [18.5 + i for i in range(20)]
    assert series[0]["timestamps"] == [ts // 1_000_000 for ts in stamps]
    door = vm_samples(victoriametrics, 'v2door_open{door="d1"}', 20)
    assert door[0]["values"] == [1 - i % 2 for i in range(20)]
    note = vm_samples(victoriametrics, 'v2climate_note{sensor="c 1"}', 20)
    assert note[0]["values"] == [0] * 20  # strings become 0


def test_v2_errors_are_translated(influxdb1: InfluxDB1) -> None:
    async def attempt(url: str) -> SinkError:
        sink = InfluxV2Sink(v2_config(url, token=SecretStr("t0ken-secret")))
        try:
            with pytest.raises(SinkError) as info:
                await sink.write(b"m f=1.0 1")
            return info.value
        finally:
            await sink.close()

    # InfluxDB 1.6 has no /api/v2: 404 is a configuration problem, worth retrying.
    not_found = run(attempt(influxdb1.url))
    refused = run(attempt(f"http://127.0.0.1:{free_port()}"))
    assert not_found.retryable and "HTTP 404" in str(not_found)
    assert refused.retryable
    for err in (not_found, refused):
        assert "t0ken-secret" not in str(err)
    # A connection error is chained; an HTTP status is an answer, with no exception behind it.
    assert isinstance(refused.__cause__, Exception)


Handler = Callable[[aiohttp.web.Request], Coroutine[Any, Any, aiohttp.web.Response]]


async def write_via_stand_in(api: str, handler: Handler) -> SinkError:
    """One write through a sink to an in-process server answering with `handler`.

    Stands in for InfluxDB 2.x/3.x error answers, which no server installed here gives.
    """
    app = aiohttp.web.Application()
    app.router.add_post("/write", handler)
    app.router.add_post("/api/v2/write", handler)
    runner = aiohttp.web.AppRunner(app, shutdown_timeout=0.1)
    await runner.setup()
    port = free_port()
    await ListeningSite(runner, "127.0.0.1", port).start()
    url = f"http://127.0.0.1:{port}"
    config = v1_config(url, "db", timeout_s=0.2) if api == "v1" else v2_config(url, timeout_s=0.2)
    sink = InfluxV1Sink(config) if api == "v1" else InfluxV2Sink(config)
    try:
        with pytest.raises(SinkError) as info:
            await sink.write(b"m f=1.0 1")
        return info.value
    finally:
        await sink.close()
        await runner.cleanup()


STATUS_CASES = [
    (400, False), (413, False), (422, False), (401, True), (404, True), (429, True),
    (500, True), (503, True),
]


@pytest.mark.parametrize("api", ["v1", "v2"])
@pytest.mark.parametrize(("status", "retryable"), STATUS_CASES)
def test_status_classification(api: str, status: int, retryable: bool) -> None:
    key = "error" if api == "v1" else "message"  # InfluxDB 1.x vs 2.x error bodies

    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        await request.read()
        return aiohttp.web.json_response({"code": "x", key: f"refused {status}"}, status=status)

    err = run(write_via_stand_in(api, handler))
    assert err.retryable is retryable
    assert f"HTTP {status}: refused {status}" in str(err)


@pytest.mark.parametrize("api", ["v1", "v2"])
def test_no_answer_is_retryable_timeout(api: str) -> None:
    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        await asyncio.sleep(0.5)
        return aiohttp.web.Response(status=204)

    err = run(write_via_stand_in(api, handler))
    assert err.retryable is True
    assert "no answer within 0.2s" in str(err)


@pytest.mark.parametrize(
    ("userinfo", "kw"),
    [
        ("", {"username": "depot", "password": SecretStr("pä55:w0rd")}),
        ("depot:p%C3%A455%3Aw0rd@", {}),  # credentials in the URL, percent-encoded
    ],
)
def test_v1_basic_auth(userinfo: str, kw: dict[str, Any]) -> None:
    seen: list[str] = []

    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append(request.headers.get("Authorization", ""))
        return aiohttp.web.Response(status=204)

    async def main() -> None:
        app = aiohttp.web.Application()
        app.router.add_post("/write", handler)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await ListeningSite(runner, "127.0.0.1", port).start()
        sink = InfluxV1Sink(v1_config(f"http://{userinfo}127.0.0.1:{port}", "db", **kw))
        try:
            await sink.write(b"m f=1.0 1")
            assert "w0rd" not in sink.target
        finally:
            await sink.close()
            await runner.cleanup()

    run(main())
    assert seen == ["Basic " + base64.b64encode("depot:pä55:w0rd".encode()).decode()]


# --- file output and the factory ---------------------------------------------------------------


def test_file_sink_appends_batches(tmp_path: Path) -> None:
    path = tmp_path / "out.lp"
    lines = [line("m", {"k": "v"}, {"f": float(i)}, i) for i in range(7)]

    async def main() -> None:
        writer = make_writer(build_sink(FileOutputConfig(path=path)), batch_size=3)
        async with running(writer):
            for text in lines:
                writer.enqueue(text)
            await wait_until(lambda: writer.written == 7)

    run(main())
    assert path.read_text() == "".join(f"{text}\n" for text in lines)


def test_build_sink_picks_by_api() -> None:
    assert isinstance(build_sink(v1_config("http://127.0.0.1:1", "db")), InfluxV1Sink)
    assert isinstance(build_sink(v2_config("http://127.0.0.1:1")), InfluxV2Sink)
    assert isinstance(build_sink(FileOutputConfig(path=Path("x.lp"))), FileSink)


# --- gzip (issue 23) ---------------------------------------------------------------------------


def _gzip_batch(measurement: str, base_ns: int, n: int) -> bytes:
    return "".join(line(measurement, {"site": "gz", "sensor": f"c{i % 7}"},
                        {"temperature_c": 18.0 + i}, base_ns + i * 1_000_000) + "\n"
                   for i in range(n)).encode()


def test_gzip_writes_reach_influxdb1_and_victoriametrics(
        influxdb1: InfluxDB1, victoriametrics: VictoriaMetrics) -> None:
    influxdb1.create_database("tsdb_gzip")
    base = (time.time_ns() // 1_000_000_000) * 1_000_000_000
    body = _gzip_batch("gzclimate", base, 300)
    assert len(body) > 1024  # over the threshold: this batch goes gzipped

    async def main() -> None:
        for sink in (InfluxV1Sink(v1_config(influxdb1.url, "tsdb_gzip")),
                     InfluxV2Sink(v2_config(victoriametrics.url))):
            try:
                await sink.write(body)
            finally:
                await sink.close()

    run(main())
    stored = read_back(influxdb1, "tsdb_gzip")
    assert len(stored) == 300 and stored[-1][2] == {"temperature_c": 317.0}
    series = vm_samples(victoriametrics, 'gzclimate_temperature_c{site="gz"}', 300)
    assert sum(len(s["values"]) for s in series) == 300


@pytest.mark.parametrize(("compression", "size", "encoding"), [
    ("gzip", 300, "gzip"), ("gzip", 3, None), ("none", 300, None)])
def test_gzip_is_the_default_above_a_small_batch(compression: str, size: int,
                                                 encoding: str | None) -> None:
    seen: list[tuple[str | None, bytes]] = []

    async def handler(request: aiohttp.web.Request) -> aiohttp.web.Response:
        seen.append((request.headers.get("Content-Encoding"), await request.read()))
        return aiohttp.web.Response(status=204)

    async def main() -> None:
        app = aiohttp.web.Application()
        app.router.add_post("/write", handler)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        port = free_port()
        await ListeningSite(runner, "127.0.0.1", port).start()
        extra = {} if compression == "gzip" else {"compression": compression}
        sink = InfluxV1Sink(v1_config(f"http://127.0.0.1:{port}", "d", **extra))
        try:
            await sink.write(_gzip_batch("m", 1, size))
        finally:
            await sink.close()
            await runner.cleanup()

    run(main())
    # aiohttp's server inflates the body: what arrives is the line protocol either way.
    assert seen == [(encoding, _gzip_batch("m", 1, size))]
