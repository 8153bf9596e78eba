"""Officers' MQTT commands are refused when replayed or stale (issue 25, "No way in").

A command carries when it was sent and a nonce. One sent longer ago than the window (or that
far ahead: a clock set wrong), one sent before the daemon started (its nonce may have been
used before the restart, and the nonces are not kept on disk), and one whose nonce was seen
within the window are refused. A nonce is remembered until its command would be refused as
stale anyway, so the memory is bounded by the commands one window can hold.
"""

from __future__ import annotations

import heapq

__all__ = ["ReplayGuard"]

_NS = 1_000_000_000


class ReplayGuard:
    """Admits each (nonce, sent time) once, within `max_age_s` of now; pure (time passed in)."""

    def __init__(self, max_age_s: float, started_ns: int, capacity: int = 10_000) -> None:
        self._window_ns = int(max_age_s * _NS)
        self._started_ns = started_ns
        self._capacity = capacity
        self._seen: dict[str, int] = {}  # nonce -> when it may be forgotten
        self._expiries: list[tuple[int, str]] = []

    def refusal(self, nonce: str, sent_ns: int, now_ns: int) -> str | None:
        """Why this command is refused, or None (and its nonce is remembered)."""
        age_s = (now_ns - sent_ns) / _NS
        if abs(now_ns - sent_ns) > self._window_ns:
            window_s = self._window_ns / _NS
            ahead = "ahead of" if age_s < 0 else "older than"
            return f"stale command: sent {abs(age_s):.0f} s {ahead} now (window {window_s:g} s)"
        if sent_ns < self._started_ns:
            return "command sent before the daemon started: send it again"
        self._forget(now_ns)
        if nonce in self._seen:
            return "replayed command: this nonce was used already"
        if len(self._seen) >= self._capacity:
            return "too many commands within the window: try again shortly"
        expiry = sent_ns + self._window_ns
        self._seen[nonce] = expiry
        heapq.heappush(self._expiries, (expiry, nonce))
        return None

    def _forget(self, now_ns: int) -> None:
        while self._expiries and self._expiries[0][0] < now_ns:
            _, nonce = heapq.heappop(self._expiries)
            self._seen.pop(nonce, None)
