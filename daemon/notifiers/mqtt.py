"""Alerts as retained JSON on `depotwatch/<site>/alerts/<key>`: the latest state per alert."""

from __future__ import annotations

import re

from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import DriverError, NotifierError
from drivers.mqtt import MqttLink

__all__ = ["MqttAlertNotifier", "topic_level"]

# Field identifiers (an RFID EPC, a badge) end up in alert keys. In a topic, `+` and `#` are
# wildcards a broker refuses in a PUBLISH, `/` adds levels and NUL is a malformed packet: the
# broker then drops the connection, and with it every other alert.
_UNSAFE = re.compile(r"[^A-Za-z0-9_.:-]")


def topic_level(text: str) -> str:
    """`text` as one safe topic level: anything but letters, digits and `_.:-` percent-encoded."""
    if not _UNSAFE.search(text):
        return text or "_"
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), text)[:512]


class MqttAlertNotifier:
    """Publishes each alert change retained at QoS 1, so a late subscriber sees current state."""

    name = "mqtt"

    def __init__(self, link: MqttLink, topic_prefix: str, site: str) -> None:
        self._link = link
        self._prefix = topic_prefix.rstrip("/")
        self._site = site
        # Published but not yet acknowledged by the broker, by packet id: these stay in the
        # state file with the outbox's pending changes, so a crash cannot lose them.
        self._unconfirmed: dict[int, Alert] = {}
        link.on_puback(self._confirmed)

    def _confirmed(self, mid: int) -> None:
        self._unconfirmed.pop(mid, None)

    def unconfirmed(self) -> list[Alert]:
        """Alert changes handed to the broker that it has not acknowledged yet, oldest first."""
        return list(self._unconfirmed.values())

    async def send(self, alert: Alert) -> None:
        """Publish the alert's state; waits while the broker's window of unacknowledged
        publishes is full (a burst), fails retryably while the broker is not connected."""
        if not self._link.connected.is_set():
            raise NotifierError("MQTT broker not connected", retryable=True)
        try:
            # A full window is flow control, not a failure: backing off from it left a burst
            # of 200 alarms trickling out over many seconds.
            mid = await self._link.publish_in_window(f"{self._prefix}/{topic_level(alert.key)}",
                                                     alert.to_json(self._site), retain=True)
        except DriverError as exc:
            raise NotifierError(str(exc), retryable=True) from exc
        self._unconfirmed[mid] = alert
