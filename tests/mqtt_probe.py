"""A test-side MQTT client on gmqtt: publish device payloads, watch the alerts topic."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import gmqtt


class MqttProbe:
    """Connects to the test broker, records messages on the subscribed filters."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.messages: list[tuple[str, bytes]] = []
        self._client: Any = None
        self._acked: set[int] = set()

    async def __aenter__(self) -> MqttProbe:
        self._client = gmqtt.Client(f"probe-{uuid.uuid4().hex[:8]}")

        def on_message(client: Any, topic: str, payload: bytes, qos: int, props: Any) -> int:
            self.messages.append((topic, bytes(payload)))
            return 0

        self._client.on_message = on_message
        await self._client.connect("127.0.0.1", self.port)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._client.disconnect()

    @property
    def connected(self) -> bool:
        """Connected to the broker now (gmqtt reconnects on its own after a restart)."""
        return bool(self._client is not None and self._client.is_connected)

    async def subscribe(self, topic_filter: str) -> None:
        self._client.subscribe(topic_filter, qos=1)
        await asyncio.sleep(0.1)

    def publish(self, topic: str, body: dict[str, Any] | bytes) -> None:
        payload = body if isinstance(body, bytes) else json.dumps(body).encode()
        self._client.publish(topic, payload, qos=1)

    def alerts(self) -> list[dict[str, Any]]:
        return [json.loads(p) for t, p in self.messages if "/alerts/" in t]

    async def wait_alert(self, key: str, state: str, within_s: float = 10.0,
                         **facts: Any) -> dict[str, Any]:
        """The first notice for `key` in `state` whose facts include `facts`."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within_s
        while loop.time() < deadline:
            for alert in self.alerts():
                if alert["key"] == key and alert["state"] == state and all(
                        alert["facts"].get(k) == v for k, v in facts.items()):
                    return alert
            await asyncio.sleep(0.05)
        seen = [(a["key"], a["state"]) for a in self.alerts()]
        raise AssertionError(f"no {state} alert {key} within {within_s} s; saw {seen}")
