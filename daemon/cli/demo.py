"""`depotwatch demo`: an embedded broker, the simulated night, and the daemon watching it."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import signal
import socket
import sys
import time
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from daemon.alerts.alarm import AlarmState, Finding
from daemon.cli.simulator import END, EXPECTED_ALERTS, START, ZONE, demo_night
from daemon.config.schema import Config
from daemon.notifiers.console import ConsoleNotifier
from daemon.tsdb.settings import FileOutputConfig
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.clock import ScaledClock
from daemon.web.settings import OfficerConfig

__all__ = ["run_demo"]

if TYPE_CHECKING:
    from daemon.runner import Daemon

log = logging.getLogger(__name__)

DEMO_OFFICER = "demo-duty"
_NS = 1_000_000_000


class _Recorder:
    """Keeps every alert change the demo saw, for the summary."""

    name = "recorder"

    def __init__(self) -> None:
        self.changes: list[Alert] = []

    async def send(self, alert: Alert) -> None:
        self.changes.append(alert)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def demo_config(port: int, state_dir: Path, officer_token: str = "") -> Config:
    """The packaged demo depot, pointed at the embedded broker and a local state dir, with the
    demo duty officer holding `officer_token` (made per run: it is printed on screen)."""
    text = resources.files("daemon.cli").joinpath("demo_depot.yaml").read_text(encoding="utf-8")
    config = Config.model_validate(yaml.safe_load(text))
    mqtt = config.mqtt.model_copy(update={"port": port, "protocol": "3.1.1"})
    officers = [OfficerConfig(name=DEMO_OFFICER, role="operator",
                              token_sha256=hashlib.sha256(officer_token.encode()).hexdigest())]
    # A free port for the API: a gateway's real daemon may hold 8470 while the demo runs.
    api = config.api.model_copy(update={"listen_port": 0,
                                        "officers": officers if officer_token else []})
    # A simulated night at a fictional depot: this machine's UPS and clock are not its.
    health = config.health.model_copy(update={"enabled": False})
    return config.model_copy(update={
        "mqtt": mqtt, "api": api, "state_dir": state_dir, "health": health,
        "file_output": FileOutputConfig(path=state_dir / "points.lp"),
    })


async def _play(clock: ScaledClock, port: int) -> int:
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv311

    devices = gmqtt.Client("demo-devices")
    await devices.connect("127.0.0.1", port, version=MQTTv311)
    sent = 0
    for message in demo_night():
        wait_s = clock.real_seconds((message.at.timestamp() * 1e9 - clock.now_ns()) / 1e9)
        if wait_s > 0:
            await asyncio.sleep(wait_s)
        devices.publish(message.topic, message.payload, qos=1)
        sent += 1
    # The night is over: stop the depot clock so the devices' silence after it is not an alarm.
    clock.freeze()
    await asyncio.sleep(0.3)
    await devices.disconnect()
    return sent


async def _console_until_stopped(daemon: Daemon, token: str) -> None:
    """Keep the daemon (clock frozen at the night's end) and its console up until Ctrl-C."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"\nThe console stays up until Ctrl-C: {daemon.api_url}/console/login\n"
          f"  log in as the demo duty officer {DEMO_OFFICER!r} with the token {token}\n"
          "  (alarms, their audit trail, storehouses, silences; the depot clock is stopped at "
          f"{END:%a %H:%M})", flush=True)
    await stop.wait()


async def _demo(speed: float, state_dir: Path, console: bool) -> int:
    from amqtt.broker import Broker

    from daemon.runner import Daemon

    port = _free_port()
    broker = Broker({
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    })
    await broker.start()
    clock = ScaledClock(int(START.timestamp() * 1e9), speed)
    recorder = _Recorder()
    token = secrets.token_urlsafe(18)
    daemon = Daemon(demo_config(port, state_dir, token), clock=clock,
                    notifiers=[ConsoleNotifier(ZONE), recorder],
                    tick_interval_s=max(0.01, 30.0 / speed))
    stop = asyncio.Event()
    print(f"depotwatch demo: {START:%a %d %b %H:%M} to {END:%a %H:%M} at Depot North, "
          f"played {speed:g}x faster; broker on 127.0.0.1:{port}\n", flush=True)
    started = time.monotonic()
    runner = asyncio.create_task(daemon.run(stop))
    await asyncio.wait_for(daemon.link.connected.wait(), timeout=10)
    clock.start()
    officer = asyncio.create_task(_duty_officer(daemon, clock))
    sent = await _play(clock, port)
    officer.cancel()
    code = _summary(daemon, recorder, sent, time.monotonic() - started, state_dir)
    if console:
        await _console_until_stopped(daemon, token)
    stop.set()
    await runner
    with contextlib.suppress(Exception):
        await broker.shutdown()
    return code


# What the duty officer finds on site, per rule, in this night's story.
_FINDINGS = {"door_armed": Finding.FALSE_ALARM, "tamper": Finding.FAULT,
             "sensor_silent": Finding.FAULT}


async def _duty_officer(daemon: Daemon, clock: ScaledClock) -> None:
    """Acknowledges each alarm a minute after it fires and records the on-site check 10 min later,
    as the API or the console would; warnings clear on their own."""
    officer = "Sgt. A. Berger (duty)"
    while True:
        now = clock.now_ns()
        for alarm in daemon.desk.alarms():
            if alarm.state is AlarmState.FIRING and now - alarm.started_ns >= 60 * _NS:
                daemon.desk.acknowledge(alarm.key, officer, "on my way", now)
            elif (alarm.state is AlarmState.ACKNOWLEDGED and alarm.checked_ns is None
                  and now - (alarm.acked_ns or now) >= 600 * _NS and alarm.rule in _FINDINGS):
                daemon.desk.record_check(alarm.key, officer, _FINDINGS[alarm.rule],
                                         "checked on site", now)
        await asyncio.sleep(clock.real_seconds(30))


def _summary(daemon: object, recorder: _Recorder, sent: int, real_s: float,
             state_dir: Path) -> int:
    from daemon.runner import Daemon

    assert isinstance(daemon, Daemon)
    pipeline = daemon.pipeline
    fired = {a.key for a in recorder.changes if a.state.value == "firing"}
    resolved = {a.key for a in recorder.changes if a.state.value == "resolved"}
    checked = sorted({f"{a.key}: {a.facts['finding']}" for a in recorder.changes
                      if "finding" in a.facts})
    points_file = state_dir / "points.lp"
    points = sum(1 for _ in points_file.open()) if points_file.exists() else 0
    missing = [key for key in EXPECTED_ALERTS if key not in fired]
    print("\nSummary")
    print(f"  night played in {real_s:.1f} s: {sent} messages published by the devices")
    print(f"  readings taken: {sum(pipeline.readings.values())}, "
          f"points written to {points_file}: {points}")
    print(f"  dead letters: {sum(pipeline.deadletters.counts.values())} "
          f"({dict(pipeline.deadletters.counts)}), kept in {state_dir}/deadletters.sqlite"
          + (" (list them: .venv/bin/depotwatch deadletters -c examples/demo-depot.yaml)"
             if state_dir == Path("demo-state") else ""))
    print(f"  alarms raised: {len(fired)}, cleared: {len(resolved)}, "
          f"still open: {sorted(fired - resolved)}")
    print(f"  on-site checks recorded: {checked}")
    for key in EXPECTED_ALERTS:
        print(f"  expected {key:<40} {'seen' if key in fired else 'MISSING'}")
    if missing:
        print(f"demo FAILED: missing alerts {missing}", file=sys.stderr)
        return 1
    print("demo OK")
    return 0


def run_demo(speed: float = 1200.0, state_dir: Path = Path("demo-state"),
             console: bool = False) -> int:
    """Play the night; exit status 0 when every expected alert fired. With `console`, the
    daemon and its web console stay up afterwards until Ctrl-C."""
    logging.getLogger("amqtt").setLevel(logging.ERROR)
    logging.getLogger("transitions").setLevel(logging.ERROR)
    # The console prints alerts; keep the log to problems (dead letters, lost connections).
    for name in ("depotwatch.alerts", "daemon.runner", "drivers.mqtt"):
        logging.getLogger(name).setLevel(logging.ERROR)
    state_dir.mkdir(parents=True, exist_ok=True)
    # A fresh night: no points, dead letters, spool or engine state from an earlier run.
    for old in ("points.lp", "engine-state.json", "deadletters.sqlite", "spool.sqlite",
                "audit.jsonl"):
        for suffix in ("", "-wal", "-shm"):
            (state_dir / f"{old}{suffix}").unlink(missing_ok=True)
    return asyncio.run(_demo(speed, state_dir, console))
