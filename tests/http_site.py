"""The tests' own HTTP servers (webhook sinks, a failing InfluxDB), stopped as the API is."""

from __future__ import annotations

from aiohttp import web

from daemon.vocabulary.listening import stop_accepting


class TcpSite(web.TCPSite):
    """aiohttp's TCP site; one the daemon connects to just as it stops closes that connection
    instead of leaving its socket to a ResourceWarning (Python 3.11's asyncio)."""

    async def stop(self) -> None:
        """Stop accepting, let the connections already accepted reach aiohttp, close."""
        if self._server is not None:
            await stop_accepting(self._server)
        await super().stop()
