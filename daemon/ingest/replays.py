"""Broker replays: messages a broker sends again without the DUP flag after it restarted from
an older store, told apart from a device repeating the same bytes.

A restored Mosquitto resends what its old store still held for our session with the packet ids
it had then, DUP clear, right after we reconnect and before anything new. So a message is a
replay when it comes in the run of messages that opens a session and carries the same bytes
(the receipt digest: topic and payload, with the device's sequence or time where it sends one)
under the same packet id as a message taken within the window. The first message that is not
one ends the run: after it the broker sends only what devices published since, and an
unchanged door heartbeat with identical bytes is then always a new message.
"""

from __future__ import annotations

from array import array

__all__ = ["ReplayWindow", "replay_key"]

_KEY_BITS = (1 << 64) - 1


def replay_key(digest: bytes, packet_id: int) -> int:
    """One unsigned 64-bit int for (receipt digest, packet id), within this process (str/bytes
    hashes are salted per process: the window is never written down)."""
    return (hash(digest) ^ packet_id << 47) & _KEY_BITS


class ReplayWindow:
    """The QoS 1 messages taken lately, and whether the run of messages that opens a session
    is still going on.

    Two generations of keys, the older dropped whole when the newer is `window_s / 2` old or
    holds `max_entries / 2`: one append per message, and a message is remembered for between
    half the window and all of it. The keys are kept as 8-byte array items, not in a set
    (about 100 bytes a key: 26 MiB when full at depot rates, issue 29); a set is built from
    them only while a session's opening run is checked.
    """

    def __init__(self, window_s: float, max_entries: int) -> None:
        self.half_ns = int(window_s * 1e9 / 2)
        self.half_entries = max(1, max_entries // 2)
        self._current: array[int] = array("Q")
        self._previous: array[int] = array("Q")
        self._since_ns: int | None = None
        # While a session's opening run is checked: every key in the window.
        self._checking: set[int] | None = None
        self.watching = False
        self.skipped = 0

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def session_opened(self) -> None:
        """The broker link came (back) up: what opens the session may be a replay."""
        self.watching = True
        self._checking = None

    def forget(self) -> None:
        """A commit failed: its messages stay unacknowledged and must be taken when the broker
        sends them again, so nothing taken so far counts as a replay any more."""
        self._current, self._previous, self._since_ns = array("Q"), array("Q"), None
        self._checking = None

    def replayed(self, digest: bytes, packet_id: int, now_ns: int) -> bool:
        """True for a replay (skip it); otherwise the message is remembered as taken."""
        key = (hash(digest) ^ packet_id << 47) & _KEY_BITS  # replay_key, inlined
        if self.watching:
            checking = self._checking
            if checking is None:
                checking = self._checking = {*self._current, *self._previous}
            if key in checking:
                self.skipped += 1
                return True
            self.watching = False
            self._checking = None
        current = self._current
        current.append(key)
        since = self._since_ns
        if since is None:
            self._since_ns = now_ns
        elif now_ns - since > self.half_ns or len(current) >= self.half_entries:
            self._previous, self._current, self._since_ns = current, array("Q"), now_ns
        return False
