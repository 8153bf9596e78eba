"""The depot bench's load: the publisher of a run's messages, the paced background traffic and
the alarm probe, each a child process of bench/depot.py, and the parent's side of them."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import threading
import time
from typing import Any

import depot_mix
from harness import BENCH_DIR, last_json, spawn
from mqtt_wire import RawClient, gmqtt_ready, publish_packet

DEPOT_SCRIPT = BENCH_DIR / "depot.py"


def mix(sensors: int, messages: int) -> depot_mix.Mix:
    """The depot mix for `sensors` sensors and `messages` messages."""
    return depot_mix.make_mix(depot_mix.layout(sensors), messages)


def child(role: str, extra: list[str]) -> subprocess.Popen[str]:
    """`bench/depot.py role extra...`: one of the bench's own processes."""
    return spawn(DEPOT_SCRIPT, role, extra)


def packets(prefix: str, messages: list[tuple[str, bytes]], qos: int, first_id: int = 0,
            ) -> bytes:
    """The messages as PUBLISH packets under `prefix`, packet ids from `first_id` + 1."""
    return b"".join(
        publish_packet(f"{prefix}/{topic}".encode(), payload, qos, (first_id + i) % 65535 + 1)
        for i, (topic, payload) in enumerate(messages))


def unknown_tag_exit(epc: str) -> list[tuple[str, bytes]]:
    """A tag that is not in the item register read leaving through portal P1: an alarm with a
    key of its own (`portal_movement.<epc>`), raised as the second read is handled."""
    body = json.dumps({"epc": epc, "rssi": -50}).encode()
    return [("rfid/p1-inner", body), ("rfid/p1-outer", body)]


def run_messages(depot: depot_mix.Mix, epc: str) -> list[tuple[str, bytes]]:
    """The run's messages; the last two raise the alarm that marks the end of the run."""
    return [*depot.messages, *unknown_tag_exit(epc)]


def publish(port: int, prefix: str, sensors: int, messages: int, qos: int,
            site: str | None = None) -> dict[str, Any]:
    """One run's messages through a publisher process; its result (times, PUBACKs)."""
    extra = ["--port", str(port), "--prefix", prefix, "--sensors", str(sensors),
             "--messages", str(messages), "--qos", str(qos)]
    pub = child("_publish", [*extra, *(["--site", site] if site else [])])
    out, _ = pub.communicate(timeout=400)
    result = last_json(out)
    if pub.returncode != 0 or result is None:
        raise RuntimeError(f"publisher failed ({pub.returncode})")
    return result


def _end_marker(client: RawClient, site: str, epc: str) -> tuple[threading.Event, list[float]]:
    """Watch for the run's end alert (firing, not retained); set the event when it arrives."""
    key = f"portal_movement.{epc}"
    marker = threading.Event()
    marker_at: list[float] = []

    def seen(now: float, topic: str, payload: bytes, retained: bool) -> None:
        if retained or not topic.endswith(key):
            return
        alert = json.loads(payload)
        if alert.get("state") == "firing":
            marker_at.append(now)
            marker.set()

    client.on_publish = seen
    client.subscribe(f"depotwatch/{site}/alerts/{key}")
    return marker, marker_at


def role_publish(args: argparse.Namespace) -> None:
    """Publish one run's messages as fast as the broker takes them; print one JSON line."""
    epc = f"FF{time.time_ns():022X}"
    messages = run_messages(mix(args.sensors, args.messages), epc)
    encoded = packets(args.prefix, messages, args.qos)
    client = RawClient(args.port, f"pub-{args.prefix.replace('/', '-')}-{os.getpid()}")
    marker, marker_at = (_end_marker(client, args.site, epc) if args.site
                         else (threading.Event(), []))
    start = time.monotonic()
    client.sock.sendall(encoded)
    if not client.ping(300):
        raise SystemExit("no PINGRESP within 300 s")
    pub_end = time.monotonic()
    if args.site and not marker.wait(300):
        raise SystemExit("the run's end alert did not arrive within 300 s")
    client.close()
    if args.qos and client.pubacks != len(messages):
        raise SystemExit(f"{client.pubacks} PUBACKs for {len(messages)} QoS 1 messages")
    print(json.dumps({"messages": len(messages), "pubacks": client.pubacks, "start": start,
                      "pub_end": pub_end, "marker_at": marker_at[0] if marker_at else None}),
          flush=True)


def role_pace(args: argparse.Namespace) -> None:
    """Publish the mix at `rate` messages/s (QoS 1) for `seconds`; print one JSON line."""
    messages = mix(args.sensors, args.messages).messages
    client = RawClient(args.port, f"pace-{os.getpid()}")
    chunk = max(1, args.rate // 100)  # every 10 ms
    sent, start = 0, time.monotonic()
    print("READY", flush=True)
    while (now := time.monotonic()) - start < args.seconds:
        due = int((now - start) * args.rate)
        if due > sent:
            batch = [messages[(sent + i) % len(messages)]
                     for i in range(min(due - sent, 10 * chunk))]
            client.sock.sendall(packets(args.prefix, batch, 1, sent))
            sent += len(batch)
        time.sleep(0.01)
    client.ping(60)
    elapsed = time.monotonic() - start
    client.close()
    print(json.dumps({"sent": sent, "pubacks": client.pubacks, "rate": sent / elapsed}),
          flush=True)


def role_probe(args: argparse.Namespace) -> None:
    """Raise alarms (an unknown tag leaving, a new key each time); time publish -> alert on
    MQTT. Prints READY, then one JSON line."""
    import gmqtt

    sent: list[tuple[str, str, float]] = []  # key, state, monotonic publish time
    seen: dict[tuple[str, str], list[float]] = {}

    async def main() -> None:
        client = gmqtt.Client(f"probe-{os.getpid()}")

        def on_message(client: Any, topic: str, payload: bytes, qos: int,
                       properties: Any) -> int:
            now = time.monotonic()
            if not properties.get("retain") and "/portal_movement.FE" in topic:
                alert = json.loads(payload)
                seen.setdefault((alert["key"], alert["state"]), []).append(now)
            return 0

        await gmqtt_ready(client, args.port, f"depotwatch/{args.site}/alerts/#", on_message)
        interval = 1.0 / args.alarms_per_s
        for i in range(args.alarms):
            epc = f"FE{time.time_ns():018X}{i:04X}"
            (inner, body), (outer, _) = unknown_tag_exit(epc)
            client.publish(f"{args.prefix}/{inner}", body, qos=1)
            await asyncio.sleep(interval / 2)
            sent.append((f"portal_movement.{epc}", "firing", time.monotonic()))
            client.publish(f"{args.prefix}/{outer}", body, qos=1)  # the passage: alarm
            await asyncio.sleep(interval / 2)
        await asyncio.sleep(2.0)
        await client.disconnect()

    asyncio.run(main())
    print(json.dumps({"sent": sent, "seen": {f"{k}|{s}": v for (k, s), v in seen.items()}}),
          flush=True)
