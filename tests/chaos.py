"""Chaos run (issue 24, item 7): QoS 1 readings at a steady rate into a real daemon while it is
SIGKILLed, sent SIGHUP, its files damaged, its broker crashed (SIGKILL, restart from its store),
InfluxDB stopped, its disk filled, its API fuzzed and its client id stolen; an armed door is
opened periodically. At the end every reading the broker acknowledged is looked up in InfluxDB.

    python tests/chaos.py --seconds 600 --rate 1500      (make chaos)
    tests/test_chaos.py runs the short version (--once: every fault once) in `make test`.

Loss is allowed only in the documented windows (README "Nothing lost"): readings the broker
acknowledged in the 5 s before it was SIGKILLed (`autosave_interval 5`), and climate readings
shed while the disk was full. Anything else lost, any duplicate, any HTTP 5xx or an alarm that
never came fails the run (exit 1). Runs the servers of tests/servers.py on free ports.
"""

from __future__ import annotations

import argparse
import faulthandler
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as paho

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_process import DaemonProcess
from servers import InfluxDB1, Mosquitto, free_port, http_request

BROKER_WINDOW_S = 5.0  # deploy/mosquitto/depotwatch.conf: autosave_interval 5
DOORS = 40
TOKEN = "chaos-officer-" + uuid.uuid4().hex


@dataclass
class Tally:
    """What happened, for the summary and the verdict."""

    restarts: int = 0
    unexpected_exits: int = 0
    events: list[str] = field(default_factory=list)
    broker_crashes: list[float] = field(default_factory=list)
    # SIGKILLs and SIGHUPs (which still end the daemon): an alarm raised just before one is
    # only in the state file the next save would have written.
    daemon_deaths: list[float] = field(default_factory=list)
    disk_full: list[tuple[float, float]] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    alarms_missing: list[str] = field(default_factory=list)
    http_requests: int = 0
    http_5xx: list[str] = field(default_factory=list)


def reading(seq: int) -> str:
    """A plausible climate payload carrying `seq`: the decoder keeps only known fields, and
    values outside -60..100 degC are dead letters, so it rides in the decimals of both."""
    return (f'{{"t": {15 + (seq % 1000) / 100:.2f}, '
            f'"h": {30 + (seq // 1000) / 1000:.3f}}}')


def sequence(temperature: float, humidity: float) -> int:
    """The sequence number of a stored reading (`reading`'s inverse)."""
    return round((temperature - 15) * 100) + round((humidity - 30) * 1000) * 1000


def say(text: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {text}", flush=True)


class Devices:
    """Climate readings at `rate`/s on the devices' listener (QoS 1), each with its sequence
    number in a field of its own; the broker's PUBACK time of each is kept."""

    def __init__(self, port: int, rate: float) -> None:
        self.rate = rate
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="chaos-devices")
        self.client.username_pw_set("chaos-devices")
        self.client.max_inflight_messages_set(1000)
        self.client.max_queued_messages_set(0)
        self.client.reconnect_delay_set(0.1, 0.5)
        # (seq, paho's handle) not yet acknowledged; swept by the publishing thread (no lock:
        # paho calls back holding its own).
        self.pending: list[tuple[int, Any]] = []
        self.acked_at: dict[int, float] = {}
        self.sent = 0
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sweep(self) -> None:
        now = time.monotonic()
        waiting = []
        for seq, info in self.pending:
            # Not is_published(): it raises for a message published while the broker was away,
            # which paho still sends (and has acknowledged) after it reconnects.
            if info._published:
                self.acked_at[seq] = now
            else:
                waiting.append((seq, info))
        self.pending = waiting

    def _run(self) -> None:
        started = time.monotonic()
        while not self.stop.is_set():
            due = int((time.monotonic() - started) * self.rate)
            while self.sent < due:
                self.sent += 1
                sensor = f"clim{self.sent % 4 + 1}"
                info = self.client.publish(f"load/{sensor}", reading(self.sent), qos=1)
                self.pending.append((self.sent, info))
            self._sweep()
            time.sleep(0.01)

    def wait_acked(self, within_s: float) -> None:
        deadline = time.monotonic() + within_s
        while self.pending and time.monotonic() < deadline:
            time.sleep(0.2)
            self._sweep()


class Doors:
    """Opens an armed door every `every_s` (a new one each time, so each alarm is new) and
    measures how long its alarm notice takes to reach the broker."""

    def __init__(self, port: int, site: str, every_s: float, tally: Tally) -> None:
        self.every_s, self.tally, self.site = every_s, tally, site
        self.opened: dict[str, float] = {}
        self.published: dict[str, float] = {}
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="chaos-doors")
        self.client.username_pw_set("chaos-doors")
        self.client.on_connect = lambda c, u, f, r, p: c.subscribe(
            f"depotwatch/{site}/alerts/#", qos=1)
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 0.5)
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        try:
            alert = json.loads(msg.payload)
        except ValueError:
            return
        key = str(alert.get("key", ""))
        opened = self.opened.pop(key, None) if alert.get("state") == "firing" else None
        if opened is not None:
            self.tally.latencies.append(time.monotonic() - opened)

    def _run(self) -> None:
        n = 0
        while not self.stop.wait(self.every_s) and n < DOORS:
            n += 1
            self.opened[f"door_armed.SH1-D{n}"] = opened = time.monotonic()
            self.published[f"door_armed.SH1-D{n}"] = opened
            self.client.publish(f"zigbee2mqtt/door{n}", b'{"contact":false}', qos=1)

    def finish(self, grace_s: float = 30.0) -> None:
        deadline = time.monotonic() + grace_s
        while self.opened and time.monotonic() < deadline:
            time.sleep(0.2)
        self.tally.alarms_missing = sorted(self.opened)


def fuzz_api(port: int, stop: threading.Event, tally: Tally) -> None:
    """Hostile requests at the officers' API all run long: any 5xx is a failure."""
    rnd = random.Random(24)
    paths = ["/alerts", "/healthz", "/readyz", "/metrics", "/alerts/x/ack", "/silences",
             "/console/login", "/%ff%fe", "/" + "a" * 5000]
    while not stop.wait(0.05):
        body = rnd.choice([rnd.randbytes(rnd.randint(0, 2000)), b"{\"a\": " + b"9" * 5000 + b"}",
                           b"\xff\xfe\xfd", json.dumps({"until": [1, {}]}).encode(),
                           b"x" * 70_000])
        method = rnd.choice(["GET", "POST", "PUT", "DELETE"])
        headers = {"Authorization": rnd.choice([f"Bearer {TOKEN}", "Bearer nope", "\x7f"]),
                   "Content-Type": rnd.choice(["application/json", "text/plain", "\xff"])}
        path = rnd.choice(paths)
        try:
            status = http_request(method, f"http://127.0.0.1:{port}{path}",
                                  data=body if method != "GET" else None, headers=headers,
                                  timeout=3)[0]
        except Exception:
            continue  # the daemon is down (a kill) or refused: not a 5xx
        tally.http_requests += 1
        if status >= 500 and not (status == 503 and path in ("/readyz", "/healthz")):
            tally.http_5xx.append(f"{method} {path} -> {status}")


class Chaos:
    """The servers, the daemon (restarted whenever it exits, as systemd's Restart=always) and
    the faults."""

    def __init__(self, work: Path, rate: float, period_s: float, outage_s: float = 15.0,
                 disk_full_s: float = 8.0) -> None:
        self.work, self.rate, self.period_s = work, rate, period_s
        self.outage_s, self.disk_full_s = outage_s, disk_full_s
        self.tally = Tally()
        self.state = work / "state"
        self.state.mkdir(parents=True)
        self.tmpfs = os.geteuid() == 0 and _mount_tmpfs(self.state)
        self.broker = Mosquitto(work / "broker")
        self.device_port = free_port()
        with self.broker.config_path.open("a") as conf:
            # As deploy/mosquitto/depotwatch.conf: saves every 5 s; devices log in with their
            # username as client id (the daemon's id cannot be taken from their listener).
            conf.write(f"autosave_on_changes false\nautosave_interval {BROKER_WINDOW_S:.0f}\n"
                       f"listener {self.device_port} 127.0.0.1\nuse_username_as_clientid true\n")
        self.influx = InfluxDB1(work / "influx")
        self.api_port = free_port()
        self.site = f"chaos-{uuid.uuid4().hex[:6]}"
        self.client_id = "depotwatch-chaos"
        self.daemon = DaemonProcess(work, self._config())
        self._lock = threading.Lock()
        self._stopping = False

    def _config(self) -> dict[str, Any]:
        fields = {"temperature_c": "t", "humidity_pct": "h"}
        return {
            "site": {"id": self.site}, "state_dir": str(self.state),
            "storehouses": [{"id": "SH1", "armed": {"mode": "always"}}],
            "doors": [{"id": f"SH1-D{n}", "storehouse": "SH1", "contact_sensor": f"door{n}"}
                      for n in range(1, DOORS + 1)],
            "climate_sensors": [{"id": f"clim{n}", "storehouse": "SH1"} for n in range(1, 5)],
            "mqtt": {"host": "127.0.0.1", "port": self.broker.port, "client_id": self.client_id,
                     "reconnect_min_s": 0.1, "reconnect_max_s": 0.5,
                     "subscriptions": [
                         {"topic": "load/{sensor}",
                          "decoder": {"type": "json_fields", "fields": fields}},
                         {"topic": "zigbee2mqtt/{sensor}", "decoder": {"type": "zigbee2mqtt"}}]},
            "influxdb": [{"api": "v1", "url": self.influx.url, "database": "chaos",
                          "flush_interval_s": 0.5, "timeout_s": 2}],
            "rules": [{"type": "door_armed"}, {"type": "sensor_silent", "enabled": False}],
            "api": {"listen_port": self.api_port, "officers": [
                {"name": "Sgt. Chaos",
                 "token_sha256": hashlib.sha256(TOKEN.encode()).hexdigest()}]},
            "spool": {"health_interval_s": 1},
        }

    # -- the daemon, kept running --------------------------------------------------------------

    def _supervise(self) -> None:
        while not self._stopping:
            time.sleep(0.2)
            with self._lock:
                if not self._stopping and not self.daemon.running():
                    code = self.daemon.proc.poll() if self.daemon.proc else None
                    say(f"daemon exited ({code}) on its own: restarted")
                    self.tally.unexpected_exits += 1
                    self._start()

    def _start(self) -> None:
        self.daemon.start()
        self.tally.restarts += 1

    # -- faults ----------------------------------------------------------------------------------

    def kill_daemon(self, damage: str | None = None) -> None:
        with self._lock:
            assert self.daemon.proc is not None
            self.tally.daemon_deaths.append(time.monotonic())
            self.daemon.proc.send_signal(signal.SIGKILL)
            self.daemon.proc.wait()
            if damage == "engine-state.json":
                (self.state / damage).write_bytes(b"\xff\xfe{not json")
            elif damage == "deadletters.sqlite":
                (self.state / damage).write_bytes(os.urandom(4096))
            self._start()

    def sighup(self) -> None:
        if self.daemon.proc is not None:
            self.tally.daemon_deaths.append(time.monotonic())
            self.daemon.proc.send_signal(signal.SIGHUP)

    def crash_broker(self) -> None:
        self.tally.broker_crashes.append(time.monotonic())
        self.broker.kill()
        time.sleep(1.0)
        self.broker.start()

    def influx_outage(self, seconds: float) -> None:
        self.influx.stop()
        time.sleep(seconds)
        self.influx.start()

    def fill_disk(self, seconds: float) -> None:
        if not self.tmpfs:
            self.tally.events.append("full disk skipped (not root: no tmpfs)")
            return
        ballast = self.state / "ballast"
        began = time.monotonic()
        with ballast.open("wb") as out:
            try:
                while True:
                    out.write(b"\0" * (1 << 20))
            except OSError:
                pass
        time.sleep(seconds)
        ballast.unlink()
        self.tally.disk_full.append((began, time.monotonic()))

    def steal_client_id(self) -> None:
        thief = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                            clean_session=True)
        thief.username_pw_set("thief-device")
        try:
            thief.connect("127.0.0.1", self.device_port)
            thief.loop_start()
            time.sleep(2)
            thief.loop_stop()
            thief.disconnect()
        except OSError:
            pass

    def faults(self) -> list[tuple[str, Any]]:
        # Quick ones first, so a short run without --once still meets the early ones.
        return [
            ("SIGKILL daemon", self.kill_daemon),
            ("SIGHUP", self.sighup),
            ("broker crash (SIGKILL, restart)", self.crash_broker),
            ("client id stolen from the devices' listener", self.steal_client_id),
            ("SIGKILL daemon, engine-state.json damaged",
             lambda: self.kill_daemon("engine-state.json")),
            (f"full disk {self.disk_full_s:g} s", lambda: self.fill_disk(self.disk_full_s)),
            ("SIGKILL daemon, deadletters.sqlite damaged",
             lambda: self.kill_daemon("deadletters.sqlite")),
            (f"InfluxDB outage {self.outage_s:g} s",
             lambda: self.influx_outage(self.outage_s)),
        ]

    # -- the run ---------------------------------------------------------------------------------

    def run(self, seconds: float, once: bool = False) -> int:
        """Faults every `period_s` for `seconds`; with `once`, each fault exactly once (however
        long a loaded machine makes them take), then one more period before the verdict."""
        self.broker.start()
        self.influx.start()
        self.influx.create_database("chaos")
        self._start()
        self.daemon.wait_log("MQTT connected", timeout=30)
        supervisor = threading.Thread(target=self._supervise, daemon=True)
        supervisor.start()
        devices = Devices(self.device_port, self.rate)
        doors = Doors(self.device_port, self.site, 3.0 if once else max(3.0, seconds / DOORS),
                      self.tally)
        stop_fuzz = threading.Event()
        fuzzer = threading.Thread(target=fuzz_api, args=(self.api_port, stop_fuzz, self.tally),
                                  daemon=True)
        devices.thread.start()
        doors.thread.start()
        fuzzer.start()
        ends = float("inf") if once else time.monotonic() + seconds
        faults = self.faults()
        n = 0
        try:
            while (n < len(faults) or not once) and time.monotonic() + self.period_s < ends:
                time.sleep(self.period_s)
                name, fault = faults[n % len(faults)]
                n += 1
                say(f"fault {n}: {name}")
                self.tally.events.append(name)
                fault()
            time.sleep(self.period_s if once else max(0.0, ends - time.monotonic()))
        finally:
            devices.stop.set()
            doors.stop.set()
            stop_fuzz.set()
        devices.thread.join()
        devices.wait_acked(60)
        doors.finish()
        return self.verdict(devices, doors)

    def _in_broker_window(self, at: float) -> bool:
        return any(c - BROKER_WINDOW_S - 1 <= at <= c + 1 for c in self.tally.broker_crashes)

    def _in_disk_full(self, at: float) -> bool:
        return any(a - 2 <= at <= b + 2 for a, b in self.tally.disk_full)

    def verdict(self, devices: Devices, doors: Doors) -> int:
        acked = dict(devices.acked_at)
        excused = {s for s, at in acked.items()
                   if self._in_broker_window(at) or self._in_disk_full(at)}
        stored = self._stored(set(acked) - excused, within_s=120)
        distinct = set(stored)
        missing = set(acked) - distinct
        in_broker = {s for s in missing if self._in_broker_window(acked[s])}
        shed = {s for s in missing - in_broker if self._in_disk_full(acked[s])}
        door_window = [k for k in self.tally.alarms_missing
                       if self._in_broker_window(doors.published[k])]
        at_death = [k for k in self.tally.alarms_missing if k not in door_window and any(
            0 <= d - doors.published[k] <= 3 for d in self.tally.daemon_deaths)]
        self.tally.alarms_missing = [k for k in self.tally.alarms_missing
                                     if k not in door_window and k not in at_death]
        if door_window:
            say(f"door openings in the broker window (never reached the daemon): {door_window}")
        if at_death:
            say(f"OPEN: alarms lost to a daemon kill within 3 s of the opening (the reading was "
                f"spooled and acknowledged, the alarm not yet in the state file): {at_death}")
        lost = missing - in_broker - shed
        duplicated = len(stored) - len(distinct)
        worst = max(self.tally.latencies, default=float("nan"))
        t = self.tally
        say(f"faults: {len(t.events)} ({', '.join(sorted(set(t.events)))})")
        say(f"HTTP fuzz: {t.http_requests} requests answered, {len(t.http_5xx)} 5xx "
            f"{t.http_5xx[:3]}")
        say(f"alarms: {len(t.latencies)} armed-door openings alarmed, longest {worst:.2f} s, "
            f"missing {t.alarms_missing}")
        if lost:
            say(f"lost outside the windows: {sorted(lost)[:20]}")
        ok = not lost and not duplicated and not t.http_5xx and not t.alarms_missing
        print(f"chaos: sent {devices.sent}, acknowledged {len(acked)}, stored {len(distinct)}, "
              f"duplicated {duplicated}, lost {len(lost)} (+{len(in_broker)} in the broker "
              f"window, +{len(shed)} shed on a full disk), restarts {t.restarts - 1} "
              f"({t.unexpected_exits} unexpected), longest alarm latency {worst:.2f} s: "
              f"{'PASS' if ok else 'FAIL'}", flush=True)
        return 0 if ok else 1

    def _stored(self, want: set[int], within_s: float) -> list[int]:
        deadline = time.monotonic() + within_s
        values: list[int] = []
        while time.monotonic() < deadline:
            values = self._query_seq()
            if want <= set(values):
                break
            time.sleep(2)
        return values

    def _query_seq(self) -> list[int]:
        query = urllib.parse.urlencode({"db": "chaos",
                                        "q": "SELECT temperature_c, humidity_pct FROM climate",
                                        "chunked": "true", "chunk_size": "100000"})
        values: list[int] = []
        with urllib.request.urlopen(f"{self.influx.url}/query?{query}", timeout=120) as resp:
            for chunk in resp.read().splitlines():
                for result in json.loads(chunk).get("results", []):
                    for series in result.get("series", []):
                        values += [sequence(v[1], v[2]) for v in series["values"]
                                   if v[1] is not None and v[2] is not None]
        return values

    def close(self) -> None:
        with self._lock:
            self._stopping = True
        if self.daemon.running():
            self.daemon.stop()
        self.broker.close()
        self.influx.close()
        if self.tmpfs:
            subprocess.run(["umount", "-l", str(self.state)], check=False)


def _mount_tmpfs(path: Path) -> bool:
    # A small file system of its own, so a full disk is the state dir's and nobody else's.
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256m", "tmpfs", str(path)],
                          capture_output=True, check=False)
    return done.returncode == 0


def main(argv: list[str] | None = None) -> int:
    """Run the chaos for `--seconds` at `--rate` readings/s; exit 0 only if nothing was lost."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--rate", type=float, default=1500.0)
    parser.add_argument("--period", type=float, default=20.0, help="seconds between faults")
    parser.add_argument("--outage", type=float, default=15.0,
                        help="seconds InfluxDB stays down in its fault")
    parser.add_argument("--disk-full", type=float, default=8.0,
                        help="seconds the state dir stays full in its fault")
    parser.add_argument("--once", action="store_true",
                        help="each fault exactly once, then stop (--seconds is not used)")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args(argv)
    faulthandler.register(signal.SIGUSR1)  # where a stuck run is: kill -USR1 <pid>
    import tempfile
    with tempfile.TemporaryDirectory(prefix="depotwatch-chaos-",
                                     dir=args.workdir) as tmp:
        chaos = Chaos(Path(tmp), args.rate, args.period, args.outage, args.disk_full)
        try:
            return chaos.run(args.seconds, once=args.once)
        finally:
            chaos.close()


if __name__ == "__main__":
    sys.exit(main())
