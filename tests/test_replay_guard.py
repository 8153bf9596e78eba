"""MQTT commands carry a sending time and a nonce; replays and stale ones are refused."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from daemon.alerts.replay_guard import ReplayGuard

S = 1_000_000_000
START = 1_000 * S


def test_a_command_is_admitted_once() -> None:
    guard = ReplayGuard(60, START)
    assert guard.refusal("n-1", START + 5 * S, START + 6 * S) is None
    assert guard.refusal("n-1", START + 5 * S, START + 7 * S) == (
        "replayed command: this nonce was used already")
    assert guard.refusal("n-2", START + 5 * S, START + 7 * S) is None


def test_stale_future_and_before_start_are_refused() -> None:
    guard = ReplayGuard(60, START)
    now = START + 300 * S
    assert guard.refusal("a", now - 61 * S, now) == (
        "stale command: sent 61 s older than now (window 60 s)")
    assert guard.refusal("b", now + 90 * S, now) == (
        "stale command: sent 90 s ahead of now (window 60 s)")
    assert guard.refusal("c", START - S, START + S) == (
        "command sent before the daemon started: send it again")
    assert guard.refusal("d", now - 60 * S, now) is None  # the window's edge is inside


def test_the_memory_is_bounded_and_forgets_what_is_stale_anyway() -> None:
    guard = ReplayGuard(60, START, capacity=3)
    for i in range(3):
        assert guard.refusal(f"n{i}", START + S, START + S) is None
    assert guard.refusal("n3", START + S, START + S) == (
        "too many commands within the window: try again shortly")
    later = START + 62 * S
    assert guard.refusal("n3", later, later) is None  # the first three are forgotten
    assert guard.refusal("n0", START + S, later) is not None  # ...and refused as stale


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 200),
                          st.integers(0, 200)), max_size=60))
def test_no_nonce_is_admitted_twice_within_its_window(
        commands: list[tuple[str, int, int]]) -> None:
    guard = ReplayGuard(60, START)
    admitted: dict[str, int] = {}
    now = START
    for nonce, sent_offset_s, step_s in commands:
        now += step_s * S // 10
        sent = START + sent_offset_s * S
        if guard.refusal(nonce, sent, now) is None:
            assert abs(now - sent) <= 60 * S
            # a nonce comes back only once its first command would itself be stale
            if nonce in admitted:
                assert now - admitted[nonce] > 60 * S
            admitted[nonce] = sent
