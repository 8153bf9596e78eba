"""Receipts of MQTT messages whose PUBACK went out, let go once the broker surely has it."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from typing import Protocol

__all__ = ["PubackReceipts", "ReceiptHolder"]


class ReceiptHolder(Protocol):
    """Keeps receipts of messages until their source's acknowledgement surely arrived."""

    def acknowledged(self, *digests: bytes) -> None:
        """These messages' receipts are no longer needed."""


class PubackReceipts:
    """Receipts of messages whose PUBACK went out, held until it surely reached the broker.

    A PUBACK written just before the connection drops is lost; the broker then sends the
    message again, and only the receipt tells the copy from a new message. So a receipt is let
    go only after its connection stayed up `hold_s` longer, or, for an older connection, once
    the next one has been up `hold_s` (a resumed session redelivers at once).
    """

    def __init__(self, spool: ReceiptHolder, hold_s: float = 2.0) -> None:
        self._spool = spool
        self._hold_s = hold_s
        # One entry per commit, not per message: thousands of messages share one.
        self._held: deque[tuple[float, int, Sequence[bytes]]] = deque()
        self._connection = 0
        self._up_since: float | None = None

    def link_state(self, up: bool) -> None:
        """The MQTT connection came up (a new one) or went down."""
        if up:
            self._connection += 1
            self._up_since = time.monotonic()
        else:
            self._up_since = None

    def sent(self, digests: Sequence[bytes]) -> None:
        """The PUBACKs of these messages (one commit's) are going out now."""
        self._held.append((time.monotonic(), self._connection, digests))
        self.release()

    def release(self) -> None:
        """Let go of every receipt that can no longer be needed."""
        if self._up_since is None or not self._held:
            return
        now = time.monotonic()
        while self._held:
            at, connection, digests = self._held[0]
            since = at if connection == self._connection else self._up_since
            if now - since < self._hold_s:
                break
            self._held.popleft()
            self._spool.acknowledged(*digests)
