"""The task supervisor's back-off and the HTTP doorman's limits (issue 24), on real sockets."""

from __future__ import annotations

import asyncio
import socket

from hypothesis import given
from hypothesis import strategies as st
from listener_stop import assert_closed_at_every_turn

from daemon.supervisor import Supervisor, backoff_s
from daemon.web.doorman import BoundedSite, Doorman, connection_budget


@given(st.integers(min_value=1, max_value=10_000))
def test_backoff_doubles_and_is_capped(failures: int) -> None:
    wait = backoff_s(failures, 1.0, 60.0)
    assert 1.0 <= wait <= 60.0
    assert backoff_s(failures + 1, 1.0, 60.0) == min(60.0, 2 * wait)


@given(st.integers(min_value=1, max_value=100_000), st.integers(min_value=0, max_value=10**6))
def test_the_connection_budget_leaves_files_for_the_daemon(configured: int, files: int) -> None:
    budget = connection_budget(configured, files)
    assert 1 <= budget <= configured
    assert budget == 1 or 2 * budget + 256 <= files


def test_a_failing_task_is_restarted_and_alerted_on() -> None:
    faults: list[tuple[str, str, bool]] = []
    runs: list[int] = []

    async def flaky() -> None:
        runs.append(1)
        if len(runs) < 3:
            raise RuntimeError("boom")

    async def scenario() -> None:
        async with asyncio.TaskGroup() as group:
            keep = Supervisor(group, lambda f, s, a, _: faults.append((f, s, a)),
                              first_s=0.01, max_s=0.02, steady_s=0.05)
            keep.start("flaky", flaky)
        await asyncio.sleep(0.1)  # the steady timer clears the fault

    asyncio.run(scenario())
    assert len(runs) == 3
    assert faults[:2] == [("task_failed", "flaky", True)] * 2
    assert faults[-1] == ("task_failed", "flaky", False)


def test_the_doorman_refuses_past_its_limit_and_closes_idle_connections() -> None:
    from aiohttp import web

    async def scenario() -> tuple[int, int]:
        async def ok(_: web.Request) -> web.Response:
            return web.Response(text="ok")

        app = web.Application()
        app.router.add_get("/", ok)
        runner = web.AppRunner(app)
        await runner.setup()
        doorman = Doorman(limit=5, idle_s=0.5)
        site = BoundedSite(runner, "127.0.0.1", 0, doorman)
        await site.start()
        port = runner.addresses[0][1]
        socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(12)]
        await asyncio.sleep(0.2)
        held = doorman.open
        await asyncio.sleep(1.0)
        idle_left = doorman.open
        for s in socks:
            s.close()
        await runner.cleanup()
        assert doorman.refused == 7 and doorman.closed_idle == 5
        return held, idle_left

    held, idle_left = asyncio.run(scenario())
    assert (held, idle_left) == (5, 0)


def test_a_connection_accepted_as_the_api_stops_is_closed_with_it() -> None:
    """One accepted just before the listening socket closed was lost by Python 3.11's
    asyncio with its socket open until collected (a ResourceWarning in CI)."""
    from aiohttp import web

    from daemon.web.api import serve

    async def stop_while_accepting(turns: int) -> bytes:
        async with serve(web.Application(), "127.0.0.1", 0) as server:
            client = socket.create_connection(("127.0.0.1", server.port))
            for _ in range(turns):  # where in the accept the stop falls
                await asyncio.sleep(0)
        with client:
            client.setblocking(False)
            try:  # what the daemon's loop still runs after the API stopped
                return await asyncio.wait_for(
                    asyncio.get_running_loop().sock_recv(client, 1), 5)
            except ConnectionResetError:
                return b""

    assert_closed_at_every_turn(stop_while_accepting)
