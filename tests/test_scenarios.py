"""Every scenario in tests/scenarios/ replays to exactly its expected alert transitions."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemon.cli.replay import check, load_scenario, replay

SCENARIOS = sorted(p for p in (Path(__file__).parent / "scenarios").glob("*.yaml")
                   if p.name != "depot.yaml")


@pytest.mark.parametrize("path", SCENARIOS, ids=[p.stem for p in SCENARIOS])
def test_scenario(path: Path) -> None:
    scenario, config = load_scenario(path)
    first = replay(scenario, config)
    assert check(scenario, first) == []
    # Deterministic: the same scenario gives the same transitions every time.
    second = replay(scenario, config)
    assert [a.key for a in first.alerts] == [a.key for a in second.alerts]
    assert [a.changed_ns for a in first.alerts] == [a.changed_ns for a in second.alerts]


def test_there_are_at_least_25_scenarios() -> None:
    assert len(SCENARIOS) >= 25
