"""The depot bench's baselines: bare gmqtt as its users write it, and the daemon's own MQTT link,
each receiving and discarding one run's messages in a child process of bench/depot.py."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import resource
import time
from collections.abc import Callable
from typing import Any

from depot_load import child, mix, publish, run_messages
from harness import HOST, cpu_s, last_json, readline
from mqtt_wire import SESSION_EXPIRY_S, gmqtt_ready

Counter = Callable[[], None]


def _counter(expected: int) -> tuple[dict[str, Any], asyncio.Event, Counter]:
    """A count of messages that notes the time and CPU at the first and at the `expected`th,
    then sets the event."""
    state = {"count": 0, "first": 0.0, "last": 0.0, "cpu0": 0.0, "cpu1": 0.0}
    done = asyncio.Event()

    def count() -> None:
        if state["count"] == 0:
            state["first"], state["cpu0"] = time.monotonic(), cpu_s()
        state["count"] += 1
        if state["count"] >= expected:
            state["last"], state["cpu1"] = time.monotonic(), cpu_s()
            done.set()

    return state, done, count


async def _through_link(args: argparse.Namespace, count: Counter, done: asyncio.Event) -> None:
    from daemon.vocabulary.clock import SystemClock
    from daemon.vocabulary.readings import RawMessage
    from drivers.mqtt import MqttLink
    from drivers.mqtt_settings import MqttConfig

    link = MqttLink(MqttConfig.model_validate({
        "host": HOST, "port": args.port, "client_id": args.client_id,
        "subscriptions": [{"topic": f"{args.prefix}/#", "decoder": {"type": "zigbee2mqtt"}}],
    }), SystemClock())

    def discard(raw: RawMessage) -> None:
        count()

    link.on_message(discard)
    running = asyncio.create_task(link.run())
    await asyncio.wait_for(link.connected.wait(), 10)
    await asyncio.sleep(0.5)  # the SUBACK
    print("READY", flush=True)
    await asyncio.wait_for(done.wait(), 300)
    await asyncio.sleep(0.2)
    running.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await running


async def _bare_gmqtt(args: argparse.Namespace, count: Counter, done: asyncio.Event) -> None:
    import gmqtt

    client = gmqtt.Client(args.client_id, clean_session=False,
                          optimistic_acknowledgement=False,
                          session_expiry_interval=SESSION_EXPIRY_S)

    async def on_message(client: Any, topic: str, payload: bytes, qos: int,
                         properties: Any) -> int:
        count()
        return 0

    await gmqtt_ready(client, args.port, f"{args.prefix}/#", on_message)
    await asyncio.wait_for(done.wait(), 300)
    await asyncio.sleep(0.2)  # let the last PUBACKs out
    await client.disconnect()


def role_baseline(args: argparse.Namespace) -> None:
    """gmqtt with its own on_message (or, `--link`, the daemon's `MqttLink`), discarding every
    message; print one JSON line."""
    expected = len(run_messages(mix(args.sensors, args.messages), "FF"))
    state, done, count = _counter(expected)
    asyncio.run((_through_link if args.link else _bare_gmqtt)(args, count, done))
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"received": state["count"], "first": state["first"], "last": state["last"],
                      "cpu_s": state["cpu1"] - state["cpu0"], "rss_peak_mib": rss_kib / 1024}),
          flush=True)


def run_baseline(port: int, sensors: int, messages: int, qos: int, tag: str,
                 link: bool = False) -> dict[str, Any]:
    """Bare gmqtt (or the daemon's MQTT link) receiving and discarding one run's messages."""
    prefix = f"b/{'link' if link else 'base'}-{tag}"
    common = ["--port", str(port), "--prefix", prefix, "--sensors", str(sensors),
              "--messages", str(messages)]
    sub = child("_baseline", [*common, "--client-id", f"{'link' if link else 'bare'}-{tag}",
                              *(["--link"] if link else [])])
    assert sub.stdout is not None
    if (readline(sub.stdout, 30) or "").strip() != "READY":
        sub.kill()
        raise RuntimeError("baseline subscriber not ready")
    pub = publish(port, prefix, sensors, messages, qos)
    out, _ = sub.communicate(timeout=300)
    res = last_json(out)
    if sub.returncode != 0 or res is None:
        raise RuntimeError(f"baseline subscriber failed ({sub.returncode})")
    n = pub["messages"]
    elapsed = res["last"] - pub["start"]
    return {"messages": n, "received": res["received"], "elapsed_s": elapsed,
            "readings_per_s": n / elapsed, "cpu_us_per_reading": res["cpu_s"] / n * 1e6,
            "rss_peak_mib": res["rss_peak_mib"], "publisher_s": pub["pub_end"] - pub["start"]}
