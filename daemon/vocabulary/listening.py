"""Closing a listening server without losing a connection accepted a moment before."""

from __future__ import annotations

import asyncio

__all__ = ["stop_accepting"]


async def stop_accepting(server: asyncio.AbstractServer) -> None:
    """Stop reading the listening sockets and let the connections already accepted reach
    their protocol; the caller closes the server next."""
    if not isinstance(server, asyncio.Server):
        return
    loop = asyncio.get_running_loop()
    for listening in server.sockets:
        loop.remove_reader(listening.fileno())
    # Python 3.11's asyncio makes an accepted connection's transport a turn after the accept
    # and asserts the server is still open: closed in between, the transport was never made
    # and its socket stayed open until collected (a ResourceWarning in CI). Two turns: the
    # transport made, then connection_made delivered.
    await asyncio.sleep(0)
    await asyncio.sleep(0)
