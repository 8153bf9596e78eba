"""How many connections the officers' HTTP server holds, and for how long an idle one stays.

aiohttp accepts every connection and keeps a silent one open for ever: 1,100 idle TCP
connections took the daemon past its 1,024-file limit and its other tasks failed with EMFILE
(issue 24). The doorman sits between the listening socket and aiohttp: past `limit` open
connections a new one is closed at once (its descriptor is free again before the next
accept), and a connection that sends nothing for `idle_s` is closed.
"""

from __future__ import annotations

import asyncio
import logging
import resource
import time
from collections.abc import Callable
from typing import Any

from aiohttp import web

from daemon.vocabulary.listening import stop_accepting

__all__ = ["BoundedSite", "Doorman", "ListeningSite", "connection_budget", "raise_file_limit"]

log = logging.getLogger(__name__)

# Descriptors kept for everything but the HTTP server: databases, MQTT, serial ports, notifiers.
_RESERVED_FILES = 256


def raise_file_limit(want: int = 65536) -> int:
    """Raise the soft limit on open files towards the hard limit; the soft limit now."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = want if hard == resource.RLIM_INFINITY else min(want, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("open-file limit stays at %d: %s", soft, exc)
    return int(soft)


def connection_budget(configured: int, file_limit: int) -> int:
    """The connections the HTTP server may hold: the configured limit, within what the
    process's file limit leaves after the daemon's own files."""
    return max(1, min(configured, (file_limit - _RESERVED_FILES) // 2))


class Doorman:
    """Counts open connections, refuses those past the limit, closes the idle ones."""

    def __init__(self, limit: int, idle_s: float) -> None:
        self.limit = limit
        self.idle_s = idle_s
        self.open = 0
        self.refused = 0
        self.closed_idle = 0
        self._last_warned = 0.0

    def admit(self) -> bool:
        """Whether one more connection may stay; counts it if so."""
        if self.open >= self.limit:
            self.refused += 1
            now = time.monotonic()
            if now - self._last_warned >= 60.0:  # one line a minute, however many
                self._last_warned = now
                log.warning("HTTP: %d connections open (the limit): refusing new ones "
                            "(%d refused so far)", self.open, self.refused)
            return False
        self.open += 1
        return True

    def left(self) -> None:
        """An admitted connection ended."""
        self.open -= 1

    def factory(self, inner: Callable[[], asyncio.Protocol]) -> Callable[[], asyncio.Protocol]:
        """A protocol factory for `loop.create_server` around aiohttp's."""
        return lambda: _Watched(self, inner)


class _Watched(asyncio.Protocol):
    """aiohttp's protocol behind the doorman: made only for admitted connections."""

    def __init__(self, doorman: Doorman, inner: Callable[[], asyncio.Protocol]) -> None:
        self._doorman = doorman
        self._make = inner
        self._inner: asyncio.Protocol | None = None
        self._transport: asyncio.BaseTransport | None = None
        self._heard = time.monotonic()
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        if not self._doorman.admit():
            # abort, not close: no lingering, the descriptor goes now.
            transport.abort()  # type: ignore[attr-defined]
            return
        self._transport = transport
        self._inner = self._make()
        self._inner.connection_made(transport)
        self._watch()

    def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        due = self._heard + self._doorman.idle_s
        self._timer = loop.call_at(loop.time() + max(0.0, due - time.monotonic()), self._idle)

    def _idle(self) -> None:
        if self._transport is None or self._transport.is_closing():
            return
        if time.monotonic() - self._heard >= self._doorman.idle_s:
            self._doorman.closed_idle += 1
            self._transport.abort()  # type: ignore[attr-defined]
            return
        self._watch()

    def data_received(self, data: bytes) -> None:
        self._heard = time.monotonic()
        if self._inner is not None:
            self._inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self._inner.eof_received() if self._inner is not None else None

    def pause_writing(self) -> None:
        if self._inner is not None:
            self._inner.pause_writing()

    def resume_writing(self) -> None:
        if self._inner is not None:
            self._inner.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._inner is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._doorman.left()
        inner, self._inner, self._transport = self._inner, None, None
        inner.connection_lost(exc)

    def __getattr__(self, name: str) -> Any:
        # Anything else aiohttp's protocol offers (it is read rarely, never on the hot path).
        if self._inner is None:
            raise AttributeError(name)
        return getattr(self._inner, name)


class ListeningSite(web.TCPSite):
    """aiohttp's TCP site that stops without losing a connection accepted a moment before."""

    async def stop(self) -> None:
        """Stop accepting, let the connections already accepted reach aiohttp, close."""
        if self._server is not None:
            await stop_accepting(self._server)
        await super().stop()


class BoundedSite(ListeningSite):
    """aiohttp's TCP site with a doorman at the socket."""

    def __init__(self, runner: web.BaseRunner, host: str, port: int, doorman: Doorman) -> None:
        super().__init__(runner, host, port)
        self.doorman = doorman

    async def start(self) -> None:
        """Listen; aiohttp's protocol sees only admitted connections."""
        await web.BaseSite.start(self)  # registers the site with its runner
        loop = asyncio.get_running_loop()
        server = self._runner.server
        assert server is not None
        self._server = await loop.create_server(
            self.doorman.factory(server), self._host, self._port, backlog=self._backlog,
            reuse_address=self._reuse_address, reuse_port=self._reuse_port)
        sockets = self._server.sockets
        self._bound_port = sockets[0].getsockname()[1] if sockets else self._port
