"""Never blind, the pure parts: one undeliverable alert never blocks the others, field
identifiers never reach a topic unescaped."""

from __future__ import annotations

import asyncio
import contextlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from daemon.notifiers.base import Outbox
from daemon.notifiers.mqtt import topic_level
from daemon.vocabulary.alert import Alert
from daemon.vocabulary.errors import DecodeError, NotifierError
from daemon.vocabulary.readings import Severity, TransitionKind
from drivers.decoders.base import coerce_field


def _alert(key: str, state: TransitionKind = TransitionKind.FIRING) -> Alert:
    return Alert(key=key, rule=key.split(".")[0], subject=key.split(".", 1)[-1],
                 severity=Severity.CRITICAL, state=state, summary=key, storehouse="SH1",
                 started_ns=1, changed_ns=1)


class Receiver:
    """Takes every alert but those whose key it chokes on (retryably, or for good)."""

    name = "test"

    def __init__(self, choke: dict[str, bool]) -> None:
        self.choke = choke
        self.taken: list[tuple[str, TransitionKind]] = []

    async def send(self, alert: Alert) -> None:
        if alert.key in self.choke:
            raise NotifierError(f"cannot take {alert.key}", retryable=self.choke[alert.key])
        self.taken.append((alert.key, alert.state))


async def _deliver(outbox: Outbox, alerts: list[Alert], wait_s: float) -> None:
    task = asyncio.create_task(outbox.run())
    try:
        for alert in alerts:
            outbox.put(alert)
        await asyncio.sleep(wait_s)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def test_an_alert_that_keeps_failing_does_not_hold_back_the_others() -> None:
    receiver = Receiver({"item_unknown.POISON": True})
    outbox = Outbox(receiver, retry_min_s=0.05, retry_max_s=0.1)
    poison = _alert("item_unknown.POISON")
    doors = [_alert(f"door_armed.SH1-D{i}") for i in range(5)]
    asyncio.run(_deliver(outbox, [poison, *doors], 0.5))
    assert [key for key, _ in receiver.taken] == [d.key for d in doors]
    assert outbox.delivered == 5 and outbox.failed >= 3 and outbox.retried >= 2
    assert outbox.pending() == [poison]  # kept for the state file, retried on
    assert outbox.backlog == 1


def test_changes_of_one_alert_keep_their_order_behind_a_retry() -> None:
    receiver = Receiver({"door_armed.SH1-D1": True})
    outbox = Outbox(receiver, retry_min_s=0.05, retry_max_s=0.05)
    firing, cleared = _alert("door_armed.SH1-D1"), _alert("door_armed.SH1-D1",
                                                          TransitionKind.RESOLVED)

    async def scenario() -> None:
        task = asyncio.create_task(outbox.run())
        try:
            outbox.put(firing)
            await asyncio.sleep(0.02)
            outbox.put(cleared)
            outbox.put(_alert("door_armed.SH1-D2"))
            await asyncio.sleep(0.2)
            assert [k for k, _ in receiver.taken] == ["door_armed.SH1-D2"]
            del receiver.choke["door_armed.SH1-D1"]
            outbox.retry_now()
            await asyncio.sleep(0.1)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(scenario())
    assert receiver.taken == [("door_armed.SH1-D2", TransitionKind.FIRING),
                              ("door_armed.SH1-D1", TransitionKind.FIRING),
                              ("door_armed.SH1-D1", TransitionKind.RESOLVED)]
    assert outbox.backlog == 0


def test_a_refused_alert_is_kept_with_its_reason_and_counted() -> None:
    receiver = Receiver({"door_armed.SH1-D1": False})
    outbox = Outbox(receiver, retry_min_s=0.05)
    asyncio.run(_deliver(outbox, [_alert("door_armed.SH1-D1"), _alert("tamper.S1")], 0.1))
    assert receiver.taken == [("tamper.S1", TransitionKind.FIRING)]
    assert (outbox.delivered, outbox.refused, outbox.given_up, outbox.backlog) == (1, 1, 0, 0)
    [refusal] = outbox.refusals
    assert refusal.alert.key == "door_armed.SH1-D1" and "cannot take" in refusal.reason


def test_an_alert_undeliverable_past_the_limit_is_given_up_with_its_reason() -> None:
    receiver = Receiver({"door_armed.SH1-D1": True})
    outbox = Outbox(receiver, retry_min_s=0.02, retry_max_s=0.02, give_up_after_s=0.1)
    asyncio.run(_deliver(outbox, [_alert("door_armed.SH1-D1")], 0.3))
    assert (outbox.given_up, outbox.backlog) == (1, 0)
    assert "undelivered for" in outbox.refusals[0].reason


@given(st.text())
def test_a_topic_level_never_carries_wildcards_separators_or_nul(key: str) -> None:
    level = topic_level(key)
    assert level and not set(level) & {"+", "#", "/", "\0"}
    assert set(level) <= set(string.ascii_letters + string.digits + "_.:-%")


@given(st.text(alphabet=string.ascii_letters + string.digits + "_.:-", min_size=1))
def test_a_plain_key_stays_as_it_is(key: str) -> None:
    assert topic_level(key) == key


@pytest.mark.parametrize("epc", ["30#+/\x00x", "E2801160+#", "E280 1160 ZZ", "E2", "F" * 65])
def test_an_epc_that_is_not_hex_is_a_dead_letter(epc: str) -> None:
    with pytest.raises(DecodeError):
        coerce_field("epc", epc)


def test_an_epc_is_upper_case_hex_without_spaces() -> None:
    assert coerce_field("epc", " e280 1160 6000 0209 ") == "E280116060000209"


@pytest.mark.parametrize("badge", ["12\x0034", "ab\ncd", "\x1b[31m"])
def test_a_badge_with_control_characters_is_a_dead_letter(badge: str) -> None:
    with pytest.raises(DecodeError):
        coerce_field("badge", badge)
