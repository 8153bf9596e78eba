"""The daemon ends only on a signal: a failed task is restarted (issue 24 changed this: it used
to stop the daemon), and SIGTERM at any moment (running, after a failure, during the stop) ends
the process within a bound."""

from __future__ import annotations

import asyncio
import gc
import json
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho
from daemon_process import DaemonProcess
from servers import Mosquitto, free_port

from daemon.config.schema import Config
from daemon.runner import Daemon
from daemon.vocabulary.alert import Alert


class BrokenNotifier:
    """A notifier with a bug: it raises what the Outbox does not catch (not NotifierError)."""

    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    async def send(self, alert: Alert) -> None:
        """Fail the way an unexpected library error would."""
        self.calls += 1
        raise RuntimeError(f"notifier bug on {alert.key}")


def _input_lost_config(state_dir: Path) -> Config:
    return Config.model_validate({
        "site": {"id": "north"}, "state_dir": str(state_dir),
        "storehouses": [{"id": "SH1"}],
        "mqtt": {"port": free_port()},  # no broker: the alert path does not need one
        "rules": [{"type": "input_lost", "after_s": 0}],
        "api": {"listen_port": 0},
    })


def test_a_task_failing_as_an_alert_changes_is_restarted_and_the_stop_still_ends_the_run(
        tmp_path: Path) -> None:
    """The hang behind "SIGTERM ignored after the TaskGroup failed": one alert change wakes
    the failing outbox and the state saver in the same turn of the loop. The failed task is
    now restarted with back-off (issue 24), the run goes on, and a stop still ends it."""
    # Its own loop on a daemon thread: a regression hangs that loop, not the test session.
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="shutdown-test", daemon=True)
    thread.start()
    failures: list[tuple[str, float]] = []

    async def scenario() -> tuple[bool, bool, BaseException | None]:
        daemon = Daemon(_input_lost_config(tmp_path), notifiers=[BrokenNotifier()],
                        tick_interval_s=0.05)
        stop, twice = asyncio.Event(), asyncio.Event()

        def failed(name: str, _: BaseException) -> None:
            failures.append((name, time.monotonic()))
            if len(failures) >= 2:
                twice.set()

        # The broker is absent: the link's input_lost alarm is the alert change.
        task = asyncio.create_task(daemon.run(stop, failed=failed))
        waiting = asyncio.create_task(twice.wait())
        await asyncio.wait({task, waiting}, timeout=15, return_when=asyncio.FIRST_COMPLETED)
        waiting.cancel()
        running = not task.done()
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=15)
        return running, bool(done), task.exception() if done else None

    running, finished, error = asyncio.run_coroutine_threadsafe(scenario(), loop).result(45)
    loop.call_soon_threadsafe(loop.stop)
    thread.join(10)
    loop.close()
    assert running, f"Daemon.run() ended after a task failed: {failures}"
    assert finished, "Daemon.run() still running after the stop"
    assert error is None
    # Restarted (the first back-off is 1 s), and failed again: the same task each time.
    assert {name for name, _ in failures} == {"notify broken"}
    assert len(failures) >= 2 and failures[1][1] - failures[0][1] >= 0.9
    gc.collect()


def _depot(workdir: Path, mosquitto: Mosquitto, **extra: Any) -> dict[str, Any]:
    """One always-armed store, the broker, points to a file, the API on a free port."""
    return {
        "site": {"id": "stop-depot"},
        "state_dir": str(workdir / "state"),
        "storehouses": [{"id": "SH1", "name": "Store 1", "armed": {"mode": "always"}}],
        "doors": [{"id": f"SH1-D{i}", "storehouse": "SH1", "contact_sensor": f"door{i}"}
                  for i in range(20)],
        "mqtt": {"host": "127.0.0.1", "port": mosquitto.port,
                 "client_id": f"depotwatch-stop-{uuid.uuid4().hex[:8]}",
                 "reconnect_min_s": 0.2, "reconnect_max_s": 1.0,
                 "subscriptions": [{"topic": "zigbee2mqtt/{sensor}",
                                    "decoder": {"type": "zigbee2mqtt"}}]},
        "file_output": {"path": str(workdir / "points.lp")},
        "rules": [{"type": "door_armed"}],
        "state_save_interval_s": 0.5,
        "api": {"listen_port": 0},
        **extra,
    }


def _exit_within(daemon: DaemonProcess, timeout_s: float) -> tuple[int, float]:
    """The exit status and how long it took; a process still running is killed and fails."""
    assert daemon.proc is not None
    started = time.monotonic()
    try:
        code = daemon.proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        daemon.proc.kill()
        daemon.proc.wait()
        raise AssertionError(f"still running {timeout_s} s later:\n{daemon.log()}") from None
    return code, time.monotonic() - started


def _break_state_file(workdir: Path) -> None:
    # A directory where the state file's temporary copy goes: the next save raises
    # IsADirectoryError (as ENOSPC or EIO would), even for root, whom chmod does not stop.
    (workdir / "state" / "engine-state.json.tmp").mkdir()


def _open_doors(mosquitto: Mosquitto, count: int) -> None:
    """Doors 0..count-1 report open, as Zigbee2MQTT would (QoS 1, each acknowledged)."""
    client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=f"doors-{uuid.uuid4()}")
    client.connect(mosquitto.host, mosquitto.port)
    client.loop_start()
    try:
        for i in range(count):
            client.publish(f"zigbee2mqtt/door{i}", json.dumps({"contact": False}),
                           qos=1).wait_for_publish(10)
    finally:
        client.disconnect()
        client.loop_stop()


def test_a_failed_task_is_restarted_and_alerted_on_while_the_daemon_stays_up(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A task that raises (the state file cannot be written) is logged with its name, raised
    as a task_failed fault alert and restarted; the daemon stays up (issue 24: it used to
    exit 1) and SIGTERM still ends it cleanly."""
    daemon = DaemonProcess(tmp_path, _depot(tmp_path, mosquitto))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        _break_state_file(tmp_path)
        _open_doors(mosquitto, 20)  # alert changes make the saver write at once
        daemon.wait_log("task 'state' failed: IsADirectoryError")
        daemon.wait_log("task_failed")
        daemon.wait_log("task 'state' failed", count=2)  # restarted, and failing again
        assert daemon.running(), daemon.log()
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)
        code, _ = _exit_within(daemon, 15)
    finally:
        if daemon.running():
            daemon.stop()
    log = daemon.log()
    assert code == 0, log
    assert "depotwatch stopped after a failure" not in log


def test_sigterm_right_after_a_failure_ends_the_process(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """The old hang: SIGTERM while a failed task is handled (it used to set an Event nobody
    waited for any more). The process ends within its bound."""
    daemon = DaemonProcess(tmp_path, _depot(tmp_path, mosquitto))
    daemon.start()
    try:
        daemon.wait_log("MQTT connected")
        _break_state_file(tmp_path)
        _open_doors(mosquitto, 20)
        daemon.wait_log("task 'state' failed")
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGTERM)
        code, _ = _exit_within(daemon, 10)
    finally:
        if daemon.running():
            daemon.stop()
    # A failed task no longer ends the daemon (issue 24): SIGTERM's clean stop, status 0.
    assert code == 0, daemon.log()


def test_sigterm_stops_a_busy_daemon_and_a_second_one_cuts_the_stop_short(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """A stop that has to wait (a webhook that never answers holds the outbox's 3-s drain)
    ends by itself within its bound; a second SIGTERM during it ends the process at once."""
    with socket.create_server(("127.0.0.1", 0), backlog=64) as silent:
        # Connections queue in the backlog and are never answered: a hung receiver.
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/hook"
        config = _depot(tmp_path, mosquitto, notifiers=[
            {"type": "webhook", "url": url, "secret": "shutdown-test-secret", "timeout_s": 60}])
        for attempt, second_signal in enumerate((False, True)):
            workdir = tmp_path / f"run{attempt}"
            workdir.mkdir()
            config["state_dir"] = str(workdir / "state")
            daemon = DaemonProcess(workdir, config)
            daemon.start()
            try:
                daemon.wait_log("MQTT connected")
                _open_doors(mosquitto, 5)
                daemon.wait_log("firing", count=5)
                assert daemon.proc is not None
                daemon.proc.send_signal(signal.SIGTERM)
                if second_signal:
                    daemon.wait_log("stopping: delivering queued alerts")
                    daemon.proc.send_signal(signal.SIGTERM)
                code, took = _exit_within(daemon, 15)
            finally:
                if daemon.running():
                    daemon.stop()
            log = daemon.log()
            if second_signal:
                assert code == 2 and "SIGTERM while stopping" in log, log
                assert took < 2.5, log  # not the drain's 3 s
            else:
                assert code == 0, log
                assert "notifier webhook: 5 alert change(s) undelivered at shutdown" in log, log


_STUCK = """
import asyncio, contextlib, logging, sys
from daemon.stopguard import StopGuard

async def ignores_cancellation() -> None:
    while True:  # what the old wait_for race did to the state saver
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(3600)

async def main() -> None:
    stop = asyncio.Event()
    StopGuard(asyncio.get_running_loop(), stop, stop_timeout_s=1.0).install()
    task = asyncio.create_task(ignores_cancellation())
    print("ready", flush=True)
    await stop.wait()
    task.cancel()
    await task

logging.basicConfig(level=logging.INFO)
asyncio.run(main())
"""


def test_a_stop_that_cannot_finish_is_cut_short(tmp_path: Path) -> None:
    """Whatever keeps a stopping process alive (here a task that ignores its cancellation),
    SIGTERM ends it after the guard's timeout, with status 2."""
    with subprocess.Popen([sys.executable, "-c", _STUCK], stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, cwd=Path(__file__).parent.parent) as proc:
        try:
            assert proc.stdout is not None and proc.stdout.readline() == b"ready\n"
            proc.send_signal(signal.SIGTERM)
            started = time.monotonic()
            _, errors = proc.communicate(timeout=15)
            took = time.monotonic() - started
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
    assert proc.returncode == 2, errors
    assert b"SIGTERM received, and the daemon did not stop within 1 s" in errors
    assert 0.9 <= took < 10
