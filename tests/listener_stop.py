"""Stopping a listening server at every point of an accept, on a fresh loop each time."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections.abc import Callable, Coroutine
from typing import Any

# Enough loop turns to cover an accept: the accept, the transport made, connection_made.
TURNS = 8


def assert_closed_at_every_turn(
        stop_while_accepting: Callable[[int], Coroutine[Any, Any, bytes]]) -> None:
    """Run `stop_while_accepting(turns)` for every turn count: the client it connected must
    see its connection end (b"") and no socket may be left to a ResourceWarning."""
    for turns in range(TURNS):
        loop = asyncio.new_event_loop()
        with warnings.catch_warnings(record=True) as seen:
            warnings.simplefilter("always", ResourceWarning)
            try:
                assert loop.run_until_complete(stop_while_accepting(turns)) == b""
            finally:
                loop.close()
            gc.collect()
        assert [str(w.message) for w in seen] == [], f"stopped after {turns} turns"
