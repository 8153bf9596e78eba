"""Receive throughput of MQTT client libraries: gmqtt (what depotwatch uses), paho-mqtt, aiomqtt.

A private Mosquitto runs on 127.0.0.1 (``tests/servers.Mosquitto``: free port, temp dir,
``max_queued_messages 0`` = unlimited queues, so the broker itself never drops a message; only
its per-packet ``log_type all`` is turned down to warnings, which would otherwise make the broker
the bottleneck). For each client library and QoS level:

1. a subscriber subprocess connects with that library (MQTT v5 by default, persistent session
   like the daemon: ``clean_session=False`` / ``clean_start=False`` plus a session expiry),
   subscribes to ``<run>/zigbee2mqtt/+`` with the QoS under test, waits for the SUBACK and says
   READY;
2. a publisher subprocess then sends N Zigbee2MQTT-style door-contact payloads of ~80 bytes
   (``{"battery":97,"contact":true,"linkquality":120,"tamper":false,"voltage":3005}``) to 48
   topics ``<run>/zigbee2mqtt/door_NN`` as fast as the broker takes them. By default it writes
   MQTT 3.1.1 PUBLISH packets, encoded before the clock starts, straight to a socket
   (``--publisher raw``): a paho-mqtt publish() loop (``--publisher paho``) manages only
   ~45k msgs/s on 2 cores while competing for CPU with broker and subscriber, which is no faster
   than gmqtt receives, so it would measure the publisher. The ``tail s`` column (how long the
   subscriber still worked after the publisher was done) and ``sub CPU`` (subscriber CPU time
   over wall time; ~100 % = the subscriber is the bottleneck) show who set the pace;
3. the subscriber parses every payload with a pydantic model (``model_validate_json``) and
   times first message to last; it also reports its peak RSS (``getrusage``), so memory is per
   client. A run with fewer than N messages after 5 s of silence is reported as dropped.

msgs/s are compared with gmqtt measured in the same run (ratio = client / gmqtt).

paho-mqtt (2.x) and aiomqtt (2.x) are NOT depotwatch dependencies; install them into the venv
for this benchmark only::

    .venv/bin/pip install 'paho-mqtt>=2,<3' 'aiomqtt>=2,<3'

Run: ``.venv/bin/python bench/mqtt_clients.py [--messages 50000]``; the table is printed and
JSON is written to ``bench/results/mqtt_clients-<date>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness import (
    HOST,
    cpu_s,
    fmt,
    last_json,
    machine,
    mosquitto_version,
    readline,
    results_path,
    spawn,
    stamp,
    start_broker,
    version,
)
from mqtt_wire import SESSION_EXPIRY_S, connect_packet, publish_packet

CLIENTS = ("gmqtt", "paho", "aiomqtt")
BASELINE = "gmqtt"
# Distribution name for each client, for versions and install hints.
DISTRIBUTIONS = {"gmqtt": "gmqtt", "paho": "paho-mqtt", "aiomqtt": "aiomqtt"}
INSTALL_HINT = ".venv/bin/pip install 'paho-mqtt>=2,<3' 'aiomqtt>=2,<3'"
IDLE_TIMEOUT_S = 5.0  # subscriber gives up after this long without a message
START_TIMEOUT_S = 60.0  # ... or if the first message never comes
SENSORS = 48  # door_00 .. door_47


def _missing(module: str, dist: str) -> SystemExit:
    return SystemExit(
        f"{module} is not installed. It is not a depotwatch dependency; install it into the venv"
        f" for this benchmark only:  .venv/bin/pip install '{dist}'  (or: {INSTALL_HINT})"
    )


# --------------------------------------------------------------------------------------------
# Payloads
# --------------------------------------------------------------------------------------------


def make_payloads(count: int = 1024) -> list[bytes]:
    """Varied Zigbee2MQTT door-contact payloads, compact JSON as Zigbee2MQTT sends, ~80 bytes.

    ``voltage`` is not in the model: Zigbee2MQTT sends more keys than one cares about, and
    pydantic ignores them (its default), which is part of the realistic cost.
    """
    out: list[bytes] = []
    for i in range(count):
        doc = {
            "battery": 100 - i % 40,
            "contact": i % 7 != 0,
            "linkquality": 40 + i * 37 % 215,
            "tamper": i % 97 == 0,
            "voltage": 2800 + i * 13 % 400,
        }
        out.append(json.dumps(doc, separators=(",", ":")).encode())
    return out


# --------------------------------------------------------------------------------------------
# Subscriber side (runs in its own process, one library per process)
# --------------------------------------------------------------------------------------------


def _rss_kib() -> int:
    """Peak resident set size of this process so far, KiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


class Sink:
    """Counts, parses and times received payloads; shared by all client adapters."""

    def __init__(self, expected: int, qos: int) -> None:
        from pydantic import BaseModel, ValidationError

        class DoorContact(BaseModel):
            contact: bool
            tamper: bool
            battery: int
            linkquality: int

        self._validate: Callable[[bytes | bytearray], BaseModel] = DoorContact.model_validate_json
        self._error_type: type[Exception] = ValidationError
        self.expected = expected
        self.qos = qos
        self.wrong_qos = 0  # messages delivered at another QoS than subscribed (downgraded)
        self.count = 0
        self.errors = 0
        self.first = 0.0
        self.last = 0.0
        self.ready_at = 0.0
        self.cpu_first = 0.0
        self.cpu_last: float | None = None
        self.rss_ready_kib = 0
        self.last_model: Any = None

    def ready(self) -> None:
        """Subscribed (SUBACK received): tell the parent to start the publisher."""
        self.rss_ready_kib = _rss_kib()
        self.ready_at = time.monotonic()
        sys.stdout.write("READY\n")
        sys.stdout.flush()

    def on_message(self, payload: bytes | bytearray, qos: int) -> None:
        """Handle one message: time it, parse it with pydantic, count it."""
        now = time.monotonic()
        if qos != self.qos:
            self.wrong_qos += 1
        if self.count == 0:
            self.first = now
            self.cpu_first = cpu_s()
        try:
            self.last_model = self._validate(payload)
        except self._error_type:
            self.errors += 1
        self.count += 1
        self.last = time.monotonic()
        if self.count == self.expected:
            self.cpu_last = cpu_s()

    def finished(self) -> bool:
        """All messages in, or silence long enough to call the rest dropped."""
        if self.count >= self.expected:
            return True
        now = time.monotonic()
        if self.count == 0:
            return now - self.ready_at > START_TIMEOUT_S
        return now - self.last > IDLE_TIMEOUT_S

    def report(self) -> dict[str, Any]:
        """Result line for the parent process."""
        elapsed = self.last - self.first
        cpu = (cpu_s() if self.cpu_last is None else self.cpu_last) - self.cpu_first
        return {
            "received": self.count,
            "parse_errors": self.errors,
            "wrong_qos": self.wrong_qos,
            "first_monotonic": self.first,
            "last_monotonic": self.last,
            "elapsed_s": elapsed,
            "msgs_per_s": self.count / elapsed if elapsed > 0 else None,
            # CPU time over wall time between first and last message: ~1.0 means the subscriber
            # itself was the bottleneck (Python runs one thread at a time).
            "cpu_busy": cpu / elapsed if elapsed > 0 else None,
            "rss_ready_kib": self.rss_ready_kib,
            "rss_peak_kib": _rss_kib(),
        }


async def _wait_finished(sink: Sink) -> None:
    # Polling (20/s) rather than an Event keeps the per-message path free of extra work.
    while not sink.finished():  # noqa: ASYNC110
        await asyncio.sleep(0.05)


async def subscribe_gmqtt(args: argparse.Namespace, sink: Sink) -> None:
    """gmqtt as the daemon uses it (drivers/mqtt.py): async handler, ack after it returns."""
    import gmqtt
    from gmqtt.mqtt.constants import MQTTv50, MQTTv311

    v5 = args.protocol == "5"
    kwargs: dict[str, Any] = {"session_expiry_interval": SESSION_EXPIRY_S} if v5 else {}
    client = gmqtt.Client(
        args.client_id, clean_session=False, optimistic_acknowledgement=False, **kwargs
    )
    subscribed = asyncio.Event()

    def on_subscribe(client: Any, mid: int, qos: Any, properties: Any) -> None:
        subscribed.set()

    async def on_message(
        client: Any, topic: str, payload: bytes, qos: int, properties: Any
    ) -> int:
        sink.on_message(payload, qos)
        return 0

    client.on_subscribe = on_subscribe
    client.on_message = on_message
    await client.connect(HOST, args.port, version=MQTTv50 if v5 else MQTTv311)
    client.subscribe(args.topic_filter, qos=args.qos)
    await asyncio.wait_for(subscribed.wait(), 10)
    sink.ready()
    await _wait_finished(sink)
    await client.disconnect()


def subscribe_paho(args: argparse.Namespace, sink: Sink) -> None:
    """paho-mqtt 2.x with its usual network thread (loop_start) and a sync on_message."""
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
    except ImportError:
        raise _missing("paho-mqtt", "paho-mqtt>=2,<3") from None

    v5 = args.protocol == "5"
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=args.client_id,
        clean_session=None if v5 else False,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
    )
    subscribed = threading.Event()

    def on_connect(client: mqtt.Client, userdata: Any, flags: Any, rc: Any, props: Any) -> None:
        client.subscribe(args.topic_filter, qos=args.qos)

    def on_subscribe(client: mqtt.Client, userdata: Any, mid: int, rcs: Any, props: Any) -> None:
        subscribed.set()

    def on_message(client: mqtt.Client, userdata: Any, msg: mqtt.MQTTMessage) -> None:
        sink.on_message(msg.payload, msg.qos)

    client.on_connect = on_connect
    client.on_subscribe = on_subscribe
    client.on_message = on_message
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        client.connect(HOST, args.port, clean_start=False, properties=props)
    else:
        client.connect(HOST, args.port)
    client.loop_start()
    try:
        if not subscribed.wait(10):
            raise SystemExit("paho: no SUBACK within 10 s")
        sink.ready()
        while not sink.finished():
            time.sleep(0.05)
        client.disconnect()
    finally:
        client.loop_stop()


async def subscribe_aiomqtt(args: argparse.Namespace, sink: Sink) -> None:
    """aiomqtt 2.x: ``async for message in client.messages``."""
    try:
        import aiomqtt
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties
    except ImportError:
        raise _missing("aiomqtt", "aiomqtt>=2,<3") from None

    v5 = args.protocol == "5"
    kwargs: dict[str, Any] = {}
    if v5:
        props = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
        props.SessionExpiryInterval = SESSION_EXPIRY_S
        kwargs = {"protocol": aiomqtt.ProtocolVersion.V5, "clean_start": False, "properties": props}
    else:
        kwargs = {"protocol": aiomqtt.ProtocolVersion.V311, "clean_session": False}

    async with aiomqtt.Client(HOST, args.port, identifier=args.client_id, **kwargs) as client:
        await client.subscribe(args.topic_filter, qos=args.qos)

        async def consume() -> None:
            async for message in client.messages:
                payload = message.payload
                data = payload if isinstance(payload, bytes) else str(payload).encode()
                sink.on_message(data, message.qos)
                if sink.count >= sink.expected:
                    return

        task = asyncio.create_task(consume())
        sink.ready()
        await _wait_finished(sink)
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def run_subscriber(args: argparse.Namespace) -> None:
    """Entry point of a subscriber process; prints READY, then one JSON result line."""
    sink = Sink(args.messages, args.qos)
    if args.client == "gmqtt":
        asyncio.run(subscribe_gmqtt(args, sink))
    elif args.client == "paho":
        subscribe_paho(args, sink)
    elif args.client == "aiomqtt":
        asyncio.run(subscribe_aiomqtt(args, sink))
    else:
        raise SystemExit(f"unknown client {args.client!r}")
    sys.stdout.write(json.dumps(sink.report()) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# Publisher side (its own process)
# --------------------------------------------------------------------------------------------


def _publish_raw(
    args: argparse.Namespace, topics: list[bytes], payloads: list[bytes]
) -> tuple[int, float, float]:
    """Pre-encoded MQTT 3.1.1 packets written straight to a socket; (PUBACKs, start, end).

    All packets are built before the clock starts, so the publisher costs next to no CPU while
    the subscriber under test runs. A PINGREQ follows the last PUBLISH; the broker handles a
    connection's packets in order, so its PINGRESP means every PUBLISH was taken (and, at QoS 1,
    PUBACKed). Packet ids wrap at 65535; Mosquitto frees a QoS 1 id as soon as it PUBACKs it.
    """
    import socket

    n, qos = args.messages, args.qos
    packets = b"".join(
        publish_packet(topics[i % SENSORS], payloads[i % len(payloads)], qos, i % 65535 + 1)
        for i in range(n)
    )
    with socket.create_connection((HOST, args.port)) as sock:
        sock.sendall(connect_packet(f"{args.topic_prefix}-pub".encode()))
        connack = sock.recv(4)
        if connack[:1] != b"\x20" or connack[3:4] != b"\x00":
            raise SystemExit(f"publisher: bad CONNACK {connack!r}")
        pubacks = 0
        pingresp = threading.Event()

        def read_acks() -> None:
            nonlocal pubacks
            buf = b""
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    return  # broker closed the connection: no PINGRESP
                buf += chunk
                pos = 0
                while len(buf) - pos >= 2:
                    kind, length = buf[pos] >> 4, buf[pos + 1]  # acks are short: 1-byte length
                    if len(buf) - pos < 2 + length:
                        break
                    pos += 2 + length
                    if kind == 4:
                        pubacks += 1
                    elif kind == 13:  # PINGRESP
                        pingresp.set()
                        return
                buf = buf[pos:]

        reader = threading.Thread(target=read_acks, daemon=True)
        reader.start()
        start = time.monotonic()
        sock.sendall(packets)
        sock.sendall(b"\xc0\x00")  # PINGREQ
        if not pingresp.wait(120):
            raise SystemExit("publisher: no PINGRESP within 120 s (connection lost?)")
        end = time.monotonic()
        sock.sendall(b"\xe0\x00")  # DISCONNECT
    return pubacks, start, end


def _publish_paho(
    args: argparse.Namespace, topics: list[bytes], payloads: list[bytes]
) -> tuple[int, float, float]:
    """paho-mqtt 2.x with its network thread and an unlimited in-flight window."""
    try:
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion
    except ImportError:
        raise _missing("paho-mqtt", "paho-mqtt>=2,<3") from None

    n, qos = args.messages, args.qos
    done = threading.Event()
    acked = 0
    str_topics = [t.decode() for t in topics]

    def on_publish(client: mqtt.Client, userdata: Any, mid: int, rc: Any, props: Any) -> None:
        nonlocal acked
        acked += 1
        if acked >= n:
            done.set()

    client = mqtt.Client(
        CallbackAPIVersion.VERSION2, client_id=f"{args.topic_prefix}-pub",
        protocol=mqtt.MQTTv311,
    )
    client.max_inflight_messages_set(0)  # 0 = unlimited: never wait for PUBACKs to send more
    client.max_queued_messages_set(0)
    client.on_publish = on_publish
    client.connect(HOST, args.port)
    client.loop_start()
    try:
        start = time.monotonic()
        for i in range(n):
            client.publish(str_topics[i % SENSORS], payloads[i % len(payloads)], qos=qos)
        if not done.wait(120):
            raise SystemExit(f"publisher: only {acked} of {n} publishes completed in 120 s")
        end = time.monotonic()
        client.disconnect()
    finally:
        client.loop_stop()
    return (acked if qos else 0), start, end


def run_publisher(args: argparse.Namespace) -> None:
    """Publish N payloads as fast as the broker takes them; print one JSON result line."""
    payloads = make_payloads()
    topics = [f"{args.topic_prefix}/zigbee2mqtt/door_{i:02d}".encode() for i in range(SENSORS)]
    publish = _publish_raw if args.publisher == "raw" else _publish_paho
    pubacks, start, end = publish(args, topics, payloads)
    n = args.messages
    if args.qos and pubacks != n:
        raise SystemExit(f"publisher: {pubacks} PUBACKs for {n} QoS 1 messages")
    result = {"published": n, "pubacks": pubacks, "start_monotonic": start,
              "end_monotonic": end, "elapsed_s": end - start, "msgs_per_s": n / (end - start)}
    sys.stdout.write(json.dumps(result) + "\n")
    sys.stdout.flush()


# --------------------------------------------------------------------------------------------
# Orchestration (parent process)
# --------------------------------------------------------------------------------------------


def _child(role: str, extra: list[str]) -> subprocess.Popen[str]:
    return spawn(Path(__file__).resolve(), role, extra)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.wait()


def measure(
    client: str, qos: int, port: int, n: int, protocol: str, publisher: str, run_id: str
) -> dict[str, Any]:
    """One subscriber process + one publisher process; returns the combined result."""
    prefix = f"bench/{run_id}"
    common = ["--port", str(port), "--messages", str(n), "--qos", str(qos),
              "--topic-prefix", prefix]
    sub = _child("_subscriber", [*common, "--client", client, "--protocol", protocol])
    pub: subprocess.Popen[str] | None = None
    try:
        assert sub.stdout is not None
        line = readline(sub.stdout, 30)
        if line is None or line.strip() != "READY":
            _stop(sub)
            return {"client": client, "qos": qos, "error": f"subscriber not ready: {line!r}"}
        pub = _child("_publisher", [*common, "--publisher", publisher])
        pub_out, _ = pub.communicate(timeout=180)
        sub_out, _ = sub.communicate(timeout=START_TIMEOUT_S + 30)
    except subprocess.TimeoutExpired:
        for proc in (sub, pub):
            if proc is not None:
                _stop(proc)
        return {"client": client, "qos": qos, "error": "timeout"}
    pub_res, sub_res = last_json(pub_out), last_json(sub_out)
    if sub.returncode != 0 or sub_res is None:
        return {"client": client, "qos": qos, "error": f"subscriber exit {sub.returncode}"}
    if pub.returncode != 0 or pub_res is None:
        return {"client": client, "qos": qos, "error": f"publisher exit {pub.returncode}"}
    return {
        "client": client,
        "qos": qos,
        "messages": n,
        "received": sub_res["received"],
        "dropped": n - sub_res["received"],
        "parse_errors": sub_res["parse_errors"],
        "wrong_qos": sub_res["wrong_qos"],
        "msgs_per_s": sub_res["msgs_per_s"],
        "elapsed_s": sub_res["elapsed_s"],
        "subscriber_cpu_busy": sub_res["cpu_busy"],
        "rss_ready_mib": sub_res["rss_ready_kib"] / 1024,
        "rss_peak_mib": sub_res["rss_peak_kib"] / 1024,
        "publisher_msgs_per_s": pub_res["msgs_per_s"],
        # How long the subscriber was still busy after the publisher had everything acked: near 0
        # means the publisher, not the subscriber, set the pace.
        "tail_after_publisher_s": sub_res["last_monotonic"] - pub_res["end_monotonic"],
    }


def summarize(
    runs: list[dict[str, Any]], clients: list[str], qoses: list[int]
) -> list[dict[str, Any]]:
    """Median over rounds per (client, qos), ratio to gmqtt of the same QoS."""
    rows: list[dict[str, Any]] = []
    for qos in qoses:
        base: float | None = None
        for client in clients:
            ok = [r for r in runs if r["client"] == client and r["qos"] == qos and "error" not in r]
            errors = [r["error"] for r in runs if r["client"] == client and r["qos"] == qos
                      and "error" in r]
            rate = statistics.median(r["msgs_per_s"] for r in ok) if ok else None
            if client == BASELINE:
                base = rate
            rows.append({
                "client": client,
                "qos": qos,
                "msgs_per_s": rate,
                "ratio_to_gmqtt": rate / base if rate and base else None,
                "dropped": max((r["dropped"] for r in ok), default=None),
                "parse_errors": max((r["parse_errors"] for r in ok), default=None),
                "wrong_qos": max((r["wrong_qos"] for r in ok), default=None),
                "rss_peak_mib": max((r["rss_peak_mib"] for r in ok), default=None),
                "rss_ready_mib": max((r["rss_ready_mib"] for r in ok), default=None),
                "publisher_msgs_per_s": statistics.median(r["publisher_msgs_per_s"] for r in ok)
                if ok else None,
                "subscriber_cpu_busy": statistics.median(r["subscriber_cpu_busy"] for r in ok)
                if ok else None,
                "tail_after_publisher_s": statistics.median(
                    r["tail_after_publisher_s"] for r in ok) if ok else None,
                "errors": errors,
            })
    return rows


def print_table(rows: list[dict[str, Any]], versions: dict[str, str | None]) -> None:
    """Human-readable result table."""
    head = (f"{'client':<18} {'QoS':>3} {'msgs/s':>9} {'vs gmqtt':>8} {'dropped':>7}"
            f" {'RSS peak':>9} {'RSS ready':>9} {'sub CPU':>7} {'pub msgs/s':>10} {'tail s':>6}")
    print(head)
    print("-" * len(head))
    for r in rows:
        name = f"{r['client']} {versions.get(r['client']) or '?'}"
        ratio = r["ratio_to_gmqtt"]
        notes = [f"ERROR: {e}" for e in r["errors"]]
        if r["parse_errors"]:
            notes.append(f"{r['parse_errors']} payloads failed validation")
        if r["wrong_qos"]:
            notes.append(f"{r['wrong_qos']} messages not at QoS {r['qos']}")
        print(
            f"{name:<18} {r['qos']:>3} {fmt(r['msgs_per_s'], ',.0f'):>9}"
            f" {(fmt(ratio, '.2f') + 'x') if ratio else '-':>8}"
            f" {fmt(r['dropped'], 'd'):>7}"
            f" {fmt(r['rss_peak_mib'], '.1f') + ' MiB':>9}"
            f" {fmt(r['rss_ready_mib'], '.1f') + ' MiB':>9}"
            f" {fmt(r['subscriber_cpu_busy'] and 100 * r['subscriber_cpu_busy'], '.0f') + '%':>7}"
            f" {fmt(r['publisher_msgs_per_s'], ',.0f'):>10}"
            f" {fmt(r['tail_after_publisher_s'], '.2f'):>6}"
            + (f"  {'; '.join(notes)}" if notes else "")
        )


def _available(client: str) -> bool:
    module = {"gmqtt": "gmqtt", "paho": "paho.mqtt.client", "aiomqtt": "aiomqtt"}[client]
    try:
        __import__(module)
    except ImportError:
        return False
    return True


def _clients(args: argparse.Namespace) -> list[str]:
    """The clients asked for that are installed; the others are skipped with a note."""
    if args.publisher == "paho" and not _available("paho"):
        raise _missing("paho-mqtt (needed for --publisher paho)", "paho-mqtt>=2,<3")
    clients = [c for c in args.clients.split(",") if c]
    for c in list(clients):
        if c not in CLIENTS:
            raise SystemExit(f"unknown client {c!r}; choose from {', '.join(CLIENTS)}")
        if not _available(c):
            print(f"skipping {c}: not installed (not a depotwatch dependency; {INSTALL_HINT})",
                  file=sys.stderr)
            clients.remove(c)
    return clients


def _rounds(args: argparse.Namespace, clients: list[str], qoses: list[int],
            port: int) -> list[dict[str, Any]]:
    """Every (round, qos, client) against the broker on `port`, progress on stderr."""
    runs: list[dict[str, Any]] = []
    seq = 0
    for rnd in range(args.rounds):
        for qos in qoses:
            for client in clients:
                seq += 1
                res = measure(client, qos, port, args.messages, args.protocol,
                              args.publisher, f"r{seq}-{client}-q{qos}")
                res["round"] = rnd
                runs.append(res)
                msg = res.get("error") or (
                    f"{res['msgs_per_s']:,.0f} msgs/s, {res['dropped']} dropped,"
                    f" peak RSS {res['rss_peak_mib']:.1f} MiB")
                print(f"round {rnd + 1} qos {qos} {client:<8} {msg}", file=sys.stderr)
    return runs


def run_benchmark(args: argparse.Namespace) -> None:
    """Parent process: broker, then every (round, qos, client), table and JSON."""
    clients = _clients(args)
    qoses = [int(q) for q in args.qos.split(",")]
    versions = {c: version(DISTRIBUTIONS[c]) for c in CLIENTS}
    broker = start_broker()
    started = time.monotonic()
    try:
        runs = _rounds(args, clients, qoses, broker.port)
    finally:
        broker.close()
    total = time.monotonic() - started
    rows = summarize(runs, clients, qoses)
    print()
    print(f"{args.messages:,} messages per run, MQTT {args.protocol} subscribers,"
          f" {args.rounds} round(s), median; {os.cpu_count()} CPUs; {total:.0f} s total")
    print_table(rows, versions)
    out = results_path("mqtt_clients", args.output)
    doc = {
        "benchmark": "mqtt_clients",
        "date": stamp(),
        "messages": args.messages,
        "rounds": args.rounds,
        "protocol": args.protocol,
        "publisher": args.publisher,
        "payload_example": make_payloads(1)[0].decode(),
        "baseline": BASELINE,
        "machine": machine(mosquitto=mosquitto_version()),
        "versions": {**{DISTRIBUTIONS[c]: versions[c] for c in CLIENTS},
                     "pydantic": version("pydantic")},
        "total_s": total,
        "summary": rows,
        "runs": runs,
    }
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"\nwrote {out}")


def main(argv: list[str] | None = None) -> None:
    """CLI: the benchmark, or (internally) one subscriber or publisher process."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("_subscriber", "_publisher"):
        p = argparse.ArgumentParser(prog=f"mqtt_clients.py {argv[0]}")
        p.add_argument("--port", type=int, required=True)
        p.add_argument("--messages", type=int, required=True)
        p.add_argument("--qos", type=int, choices=(0, 1), required=True)
        p.add_argument("--topic-prefix", required=True)
        p.add_argument("--client", choices=CLIENTS)
        p.add_argument("--protocol", choices=("5", "3.1.1"), default="5")
        p.add_argument("--publisher", choices=("raw", "paho"), default="raw")
        args = p.parse_args(argv[1:])
        args.topic_filter = f"{args.topic_prefix}/zigbee2mqtt/+"
        args.client_id = f"{args.topic_prefix}-sub"
        if argv[0] == "_subscriber":
            run_subscriber(args)
        else:
            run_publisher(args)
        return
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--messages", type=int, default=50_000, help="messages per run (50000)")
    p.add_argument("--clients", default=",".join(CLIENTS), help="comma list (gmqtt,paho,aiomqtt)")
    p.add_argument("--qos", default="0,1", help="comma list of QoS levels (0,1)")
    p.add_argument("--rounds", type=int, default=3, help="repeat all runs; median is reported")
    p.add_argument("--protocol", choices=("5", "3.1.1"), default="5",
                   help="subscribers' MQTT version (5, the daemon's default)")
    p.add_argument("--publisher", choices=("raw", "paho"), default="raw",
                   help="raw: pre-encoded packets on a socket (default); paho: paho-mqtt"
                   " publish() loop, too slow to outrun gmqtt on 2 cores")
    p.add_argument("--output", help="JSON path (bench/results/mqtt_clients-<date>.json)")
    run_benchmark(p.parse_args(argv))


if __name__ == "__main__":
    main()
