"""Tells when the broker connection is being taken away (issue 25, "No way in").

A client logging in with the daemon's client id pushes the daemon off the broker; when it
connects with a clean session the broker also throws away the daemon's persistent session and
the QoS 1 readings queued in it. Either shows from here: a reconnect that finds no session
("session present: false"), or drops coming too often. Both are gateway faults, named with the
likely cause, so that an officer hears of it even when nothing else looks wrong.
"""

from __future__ import annotations

from collections import deque

__all__ = ["SessionWatch"]

_NS = 1_000_000_000
SESSION_RESET = "mqtt_session_reset"
FLAPPING = "mqtt_flapping"


class SessionWatch:
    """Reads the link's connects and drops; returns (fault, summary) when one is a fault."""

    def __init__(self, broker: str, client_id: str, *, drops: int = 3,
                 within_s: float = 60.0) -> None:
        self._broker = broker
        self._client_id = client_id
        self._drops = drops
        self._within_ns = int(within_s * _NS)
        self._dropped_at: deque[int] = deque(maxlen=drops)
        self._connects = 0

    def connected(self, session_present: bool) -> tuple[str, str] | None:
        """A CONNACK came; the first one of a run may find no session (a first start)."""
        self._connects += 1
        if self._connects == 1 or session_present:
            return None
        return (SESSION_RESET,
                f"MQTT broker {self._broker} did not keep the daemon's session on reconnect "
                f"(session present: false): readings queued for it may be lost. Another client "
                f"using client id {self._client_id!r}, or a broker restarted without "
                "persistence")

    def dropped(self, now_ns: int) -> tuple[str, str] | None:
        """The connection was lost; a fault once `drops` losses fall within the window."""
        self._dropped_at.append(now_ns)
        if len(self._dropped_at) < self._drops or now_ns - self._dropped_at[0] > self._within_ns:
            return None
        return (FLAPPING,
                f"MQTT connection to {self._broker} lost {self._drops} times within "
                f"{self._within_ns / _NS:.0f} s: another client may be logging in with the "
                f"daemon's client id {self._client_id!r}, or the broker is failing")
