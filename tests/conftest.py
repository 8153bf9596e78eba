"""Session-scoped pytest fixtures that run real servers on 127.0.0.1."""

from __future__ import annotations

import gc
import logging
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from servers import Alertmanager, InfluxDB1, Mosquitto, VictoriaMetrics

# Webhook target until tests bring their own receiver (port 9 = discard).
DUMMY_WEBHOOK_URL = "http://127.0.0.1:9/"

_APT_HINT = (
    "apt-get install -y mosquitto mosquitto-clients influxdb victoria-metrics"
    " prometheus-alertmanager"
)


class AsyncioLeaks(logging.Handler):
    """What asyncio logs, not warns, when a task or future is dropped: a failure, not noise."""

    SIGNS = ("exception was never retrieved", "was destroyed but it is pending")

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if any(sign in message for sign in self.SIGNS):
            cause = record.exc_info[1] if record.exc_info else None
            self.seen.append(f"{message.splitlines()[0]}"
                             + (f" ({type(cause).__name__}: {cause})" if cause else ""))


ASYNCIO_LEAKS = AsyncioLeaks()
logging.getLogger("asyncio").addHandler(ASYNCIO_LEAKS)


@pytest.fixture(autouse=True)
def _no_dropped_tasks() -> Iterator[None]:
    """Fail the test after which asyncio reports a dropped task or an unretrieved exception
    (they are logged when the object is collected, so collect first)."""
    before = len(ASYNCIO_LEAKS.seen)
    yield
    gc.collect()
    dropped = ASYNCIO_LEAKS.seen[before:]
    if dropped:
        pytest.fail("asyncio: " + "; ".join(dropped), pytrace=False)


@pytest.fixture(autouse=True)
def _no_stale_stderr_handler() -> Iterator[None]:
    """Take away the stderr handler `depotwatch`'s main() puts on the root logger: it holds
    the test's captured stderr, closed when the test ends, and every later test's log line
    printed a "Logging error" traceback (noise in failures, time in every run)."""
    yield
    root = logging.getLogger()
    for handler in [h for h in root.handlers if h.get_name() == "depotwatch-stderr"]:
        root.removeHandler(handler)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """What is only collected at the end of the run fails the run too."""
    before = len(ASYNCIO_LEAKS.seen)
    gc.collect()
    late = ASYNCIO_LEAKS.seen[before:]
    if late:
        print("\nasyncio reported at the end of the run: " + "; ".join(late))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


# `make test` runs the suite on three pytest-xdist workers (`-n 3 --dist loadfile`), each with
# its own session servers on free ports. A module's tests stay on one worker, in their order:
# module fixtures (a daemon, a browser, a simulated month) are set up once, and some tests
# count what the module's earlier tests left (dead letters, audit entries). The modules that
# load the machine (1,500 readings/s, a simulated month, a pip install, 50,000 topics,
# SIGKILLs under load, tmpfs filled up, a browser night) are one unit of work: one worker runs
# them one after the other, so two of them never share the 2 cores. Balance: xdist hands out
# units largest (most tests) first, two at a time per worker, so this unit (71 tests) starts
# within the first minute; its ~240-350 s (idle to loaded machine) is most of what a worker
# does in all, and the other workers take the small modules meanwhile (three workers: 355 s
# against 580 s with two, same machine, most tests waiting). Two heavy lanes would not end the
# run sooner and would put two of these modules on the cores together.
HEAVY = {"test_chaos.py", "test_deploy.py", "test_demo.py", "test_durability.py",
         "test_fault_matrix.py", "test_report_month.py", "test_topic_flood.py",
         "test_console_night.py"}


@pytest.hookimpl(optionalhook=True)  # an xdist hook: plain `pytest` runs without it
def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """`--dist loadfile`, with the HEAVY modules one unit. (Not `xdist_group` marks with
    `--dist loadgroup`: xdist 3.8 tags their node ids in a way pytest 9.2 ignores, so every
    test went on its own.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "heavy" if Path(module).name in HEAVY else module

    return ModuleScheduling(config, log)


def _need(*binaries: str) -> None:
    """Fail (never skip) the requesting test if a server binary is missing."""
    path = "/usr/sbin:/usr/bin:/sbin:/bin"
    missing = [b for b in binaries if not (shutil.which(b) or shutil.which(b, path=path))]
    if missing:
        pytest.fail(f"missing executable(s) {', '.join(missing)}; install with: {_APT_HINT}")


def _workdir(factory: pytest.TempPathFactory, name: str) -> Path:
    return factory.mktemp(name)


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mosquitto]:
    """A running Mosquitto broker (tests may restart()/kill() it; call start() after kill())."""
    _need("mosquitto", "mosquitto_pub")
    server = Mosquitto(_workdir(tmp_path_factory, "mosquitto"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def influxdb1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """A running InfluxDB 1.x server."""
    _need("influxd")
    server = InfluxDB1(_workdir(tmp_path_factory, "influxdb1"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def victoriametrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """A running single-node VictoriaMetrics."""
    _need("victoria-metrics")
    server = VictoriaMetrics(_workdir(tmp_path_factory, "victoriametrics"))
    server.start()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def alertmanager_webhook_url() -> str:
    """Webhook URL the alertmanager fixture notifies; override to capture alerts."""
    return DUMMY_WEBHOOK_URL


@pytest.fixture(scope="session")
def alertmanager(
    tmp_path_factory: pytest.TempPathFactory, alertmanager_webhook_url: str
) -> Iterator[Alertmanager]:
    """A running Alertmanager sending all alerts to ``alertmanager_webhook_url``."""
    _need("prometheus-alertmanager")
    server = Alertmanager(alertmanager_webhook_url, _workdir(tmp_path_factory, "alertmanager"))
    server.start()
    try:
        yield server
    finally:
        server.close()
