"""A reading that changed an alarm is acknowledged only after its commit and a state save that
began after it (daemon/savegate.py): shared futures, never an earlier save."""

from __future__ import annotations

import asyncio

import pytest

from daemon.savegate import SaveGate


def _settle(waiting: list[asyncio.Future[None]]) -> None:
    # What the runner's save loop does once the file is written.
    for saved in waiting:
        if not saved.done():
            saved.set_result(None)


async def _turn() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


def test_an_acknowledgement_waits_for_the_commit_and_for_the_save() -> None:
    async def main() -> None:
        gate, loop = SaveGate(), asyncio.get_running_loop()
        commit = loop.create_future()
        first, second = gate.saved_and(commit), gate.saved_and(commit)
        assert first is second  # one commit's readings: one future, one callback
        waiting = gate.begin()
        commit.set_result(None)
        await _turn()
        assert not first.done()  # committed, but the state is not on disk yet
        _settle(waiting)
        await _turn()
        assert first.done() and first.exception() is None

    asyncio.run(main())


def test_a_reading_after_a_save_began_waits_for_the_next_one() -> None:
    async def main() -> None:
        gate, loop = SaveGate(), asyncio.get_running_loop()
        commit = loop.create_future()
        commit.set_result(None)
        before = gate.saved_and(commit)
        waiting = gate.begin()  # a save begins: it may not hold what comes next
        after = gate.saved_and(commit)
        assert after is not before
        _settle(waiting)
        await _turn()
        assert before.done() and not after.done()
        _settle(gate.begin())
        await _turn()
        assert after.done()

    asyncio.run(main())


def test_a_failed_commit_fails_the_acknowledgement_and_a_failed_save_is_retried() -> None:
    async def main() -> None:
        gate, loop = SaveGate(), asyncio.get_running_loop()
        broken, fine = loop.create_future(), loop.create_future()
        lost, kept = gate.saved_and(broken), gate.saved_and(fine)
        broken.set_exception(OSError("disk"))
        await _turn()
        with pytest.raises(OSError):
            lost.result()
        fine.set_result(None)
        gate.put_back(gate.begin())  # the save failed: the restarted loop saves for them
        await _turn()
        assert not kept.done()
        _settle(gate.begin())
        await _turn()
        assert kept.done() and kept.exception() is None
        assert gate.saved() is not gate.saved()  # a task's own future, cancellable alone

    asyncio.run(main())


def test_a_crowd_waiting_for_the_next_save_makes_it_due_at_once() -> None:
    """A burst of door openings: from the crowd on, the save does not wait out its spacing
    (each waiting reading holds one of the broker's in-flight messages)."""
    async def main() -> None:
        gate, loop = SaveGate(crowd=3), asyncio.get_running_loop()
        commit = loop.create_future()
        gate.saved_and(commit)
        gate.saved()
        started = loop.time()
        await gate.due(0.05)  # two waiting: the spacing is waited out
        assert loop.time() - started >= 0.04
        gate.saved_and(commit)  # the third
        started = loop.time()
        await gate.due(10.0)
        assert loop.time() - started < 1.0
        gate.begin()  # the save began: the count starts again
        assert not gate.crowded.is_set() and gate.asked == 0

    asyncio.run(main())
