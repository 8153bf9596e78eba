"""The API's zone calls: arm and disarm a storehouse's intrusion zone (operator role)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection

from aiohttp import web

from daemon.alerts.alarm import LifecycleError
from daemon.alerts.arming import ArmingDesk, ArmingRefused
from daemon.web.api_bodies import ArmBody, WalkTestBody
from daemon.web.api_refusals import Refusal, read_body

__all__ = ["ZoneCalls"]

log = logging.getLogger(__name__)


class ZoneCalls:
    """The route table's zone operations, over one ArmingDesk."""

    def __init__(self, arming: ArmingDesk | None,
                 storehouses: Callable[[], Collection[str]]) -> None:
        # Asked at each call: a config reload may add storehouses (or take them away).
        self._arming, self._storehouses = arming, storehouses

    async def arm(self, request: web.Request, officer: str) -> web.Response:
        """Arm: the exit delay starts; refused (409) with what is not secured unless forced."""
        return await self._ask(request, officer, "arm")

    async def disarm(self, request: web.Request, officer: str) -> web.Response:
        """Disarm: a running entry delay stops."""
        return await self._ask(request, officer, "disarm")

    async def walk_test(self, request: web.Request, officer: str) -> web.Response:
        """Start a walk test of the zone."""
        return await self._ask(request, officer, "walk_test")

    async def _ask(self, request: web.Request, officer: str, action: str) -> web.Response:
        if action == "walk_test":
            force, note = False, (await read_body(request, WalkTestBody)).note
        else:
            body = await read_body(request, ArmBody)
            force, note = body.force, body.note
        storehouse = request.match_info["id"]
        if storehouse not in self._storehouses():
            raise Refusal(404, f"no storehouse {storehouse!r}")
        if self._arming is None:
            raise Refusal(409, "zone arming is not offered by this daemon")
        try:
            answer = self._arming.request(storehouse, action, officer, "api", force=force,
                                          note=note)
        except ArmingRefused as exc:
            log.info("API: %s of %s by %s refused: %s", action, storehouse, officer, exc)
            raise Refusal(409, str(exc), detail=exc.answer) from None
        except LifecycleError as exc:
            raise Refusal(409, str(exc)) from None
        return web.json_response(answer)
