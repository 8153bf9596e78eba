"""The API's notifier call: each notifier's counts, backlog and refused alert changes."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence

from aiohttp import web

from daemon.notifiers.base import NotifierFigures

__all__ = ["NotifierCalls", "NotifierFiguresSource"]

# Gives every outbox's figures at the time of the call (the daemon's outboxes).
NotifierFiguresSource = Callable[[], Sequence[NotifierFigures]]


def _none() -> Sequence[NotifierFigures]:
    return ()


class NotifierCalls:
    """The route table's notifier operation, over the outboxes' figures."""

    def __init__(self, figures: NotifierFiguresSource | None) -> None:
        self._figures = figures or _none

    async def list_notifiers(self, request: web.Request, officer: str) -> web.Response:
        """Every notifier: delivered, failed, retried, refused, given up, backlog, refusals."""
        return web.json_response(
            {"notifiers": [dataclasses.asdict(f) for f in self._figures()]})
