"""The gateway's own health (issue 21): the UPS through Debian's real upsd and dummy-ups driver,
the clock (the kernel's real adjtimex state here; chrony is not installed on this machine, so
its answers are checked as recorded `chronyc -c tracking` lines, and through the real
subprocess path with a script that prints such a line), disk free, CPU temperature (absent
here: "not available"), and the `gateway_health` rule on plain numbers."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from inprocess_daemon import depot, eventually, running
from nut_server import NutServer
from servers import Mosquitto

from daemon.vocabulary.readings import Reading, Severity, Transition, TransitionKind
from drivers.clock_sync import ClockError, kernel_sync, parse_tracking, read_chrony
from drivers.gateway_health import NOT_AVAILABLE, GatewayHealth, GatewayHealthConfig
from drivers.host_health import cpu_temperature, disk_free, thermal_zones
from drivers.nut import NutError, UpsConfig, read_ups
from rules.depot import Depot
from rules.gateway_health import GatewayHealthRule, GatewayHealthRuleConfig

S = 1_000_000_000
SYNCED = ("A29FC801,162.159.200.1,3,1765100000.123456789,-0.000012345,0.000001234,"
          "0.000023456,-12.345,0.001,0.012,0.012345678,0.001234567,1031.2,Normal")
UNSYNCED = "00000000,,0,0.000000000,0.000000000,0.000000000,0.000000000,0.000,0.000,0.000," \
           "1.000000000,1.000000000,0.0,Not synchronised"
OFF_BY_2S = SYNCED.replace("-0.000012345", "-2.000000000")


@pytest.fixture(scope="module")
def nut(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NutServer]:
    server = NutServer(tmp_path_factory.mktemp("nut"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Heard:
    """The readings and faults a `GatewayHealth` reported."""

    def __init__(self) -> None:
        self.readings: dict[str, Mapping[str, float | bool]] = {}
        self.faults: list[tuple[str, str, bool, str]] = []

    def reading(self, component: str, values: Mapping[str, float | bool]) -> None:
        self.readings[component] = values

    def fault(self, fault: str, subject: str, active: bool, summary: str) -> None:
        self.faults.append((fault, subject, active, summary))


def _health(tmp_path: Path, **settings: object) -> tuple[GatewayHealth, Heard]:
    heard = Heard()
    config = GatewayHealthConfig.model_validate({"thermal_dir": str(tmp_path / "no-thermal"),
                                                 **settings})
    return GatewayHealth(config, tmp_path, heard.reading, heard.fault), heard


def test_upsd_states_read_over_the_nut_protocol(nut: NutServer) -> None:
    config = UpsConfig(port=nut.port)
    for status, charge, on_battery, low in (("OL", 100, False, False), ("OB", 80, True, False),
                                            ("OB LB", 9, True, True), ("OL CHRG", 40, False,
                                                                        False)):
        nut.set_state(status, charge)
        nut.wait_status(status)
        state = asyncio.run(read_ups(config))
        assert (state.ups, state.on_battery, state.battery_low) == (nut.ups, on_battery, low)
        assert state.values()["charge_pct"] == float(charge)
        assert state.values()["on_mains"] is not on_battery


def test_upsd_refusals_and_absence_are_nut_errors(nut: NutServer) -> None:
    with pytest.raises(NutError, match="UNKNOWN-UPS"):
        asyncio.run(read_ups(UpsConfig(port=nut.port, name="no-such-ups")))
    closed = UpsConfig(port=nut.port + 1 if nut.port < 65535 else 1, timeout_s=1)
    with pytest.raises(NutError, match="unreachable"):
        asyncio.run(read_ups(closed))


def test_ups_lost_and_back_is_one_fault_then_its_clearing(nut: NutServer,
                                                          tmp_path: Path) -> None:
    nut.set_state("OL")
    nut.wait_status("OL")
    health, heard = _health(tmp_path, ups={"port": nut.port, "timeout_s": 1})
    asyncio.run(health.probe())
    assert heard.readings["ups"]["on_mains"] is True and heard.faults == []
    assert health.sources["ups"].endswith(f"UPS {nut.ups}")
    nut.stop()
    try:
        asyncio.run(health.probe())
        asyncio.run(health.probe())
        assert [f[:3] for f in heard.faults] == [("ups_unreachable", "ups", True)]
        assert "UPS unreachable" in heard.faults[0][3]
    finally:
        nut.start()
    asyncio.run(health.probe())
    assert [f[:3] for f in heard.faults][1:] == [("ups_unreachable", "ups", False)]


def test_daemon_raises_battery_low_from_the_real_upsd(nut: NutServer, mosquitto: Mosquitto,
                                                     tmp_path: Path) -> None:
    config = depot(tmp_path, mosquitto.port)
    config["health"] = {"interval_s": 0.2, "ups": {"port": nut.port, "timeout_s": 1}}
    config["rules"] = [{"type": "gateway_health", "mains_lost_after_s": 0.5}]
    nut.set_state("OL")
    nut.wait_status("OL")
    with running(config) as run:
        keys = lambda: {a.key: a.severity for a in run.daemon.desk.alarms()}  # noqa: E731
        nut.set_state("OB", 60)
        eventually(lambda: "mains_lost.ups" in keys(), 10)
        nut.set_state("OB LB", 8)
        eventually(lambda: keys().get("ups_battery_low.ups") == Severity.ALARM, 10)
        nut.set_state("OL CHRG", 10)
        nut.wait_status("OL CHRG")
        eventually(lambda: all(not a.condition_active for a in run.daemon.desk.alarms()
                               if a.key.endswith(".ups")), 10)
    points = (tmp_path / "points.lp").read_text()
    assert "gateway,component=ups,site=console-depot " in points
    assert "battery_low=true" in points and "gateway,component=disk," in points


def test_no_upsd_in_auto_mode_is_not_available_not_a_fault(tmp_path: Path) -> None:
    health, heard = _health(tmp_path, ups={"port": 1, "timeout_s": 1})
    asyncio.run(health.probe())
    assert heard.faults[0][:3] == ("ups_unreachable", "ups", True), "a UPS given must answer"
    health, heard = _health(tmp_path)  # auto: 127.0.0.1:3493, where nothing listens here
    asyncio.run(health.probe())
    asyncio.run(health.probe())
    assert heard.faults == [] and "ups" not in heard.readings
    assert health.sources["ups"].startswith(f"{NOT_AVAILABLE}: ")


def test_chrony_tracking_lines() -> None:
    synced = parse_tracking(SYNCED)
    assert (synced.synchronised, synced.stratum) == (True, 3.0)
    assert synced.offset_s == pytest.approx(0.000012345)  # chrony's "slow" is behind: +
    assert parse_tracking(UNSYNCED).values() == {"synchronised": False, "stratum": 0.0}
    assert parse_tracking(OFF_BY_2S).offset_s == pytest.approx(2.0)
    with pytest.raises(ClockError):
        parse_tracking("506 Cannot talk to daemon")


def test_chronyc_through_a_subprocess(tmp_path: Path) -> None:
    # chrony is not installed here: a script answers as chronyc does, with a recorded line.
    script = tmp_path / "chronyc"
    script.write_text(f"#!/bin/sh\n[ \"$*\" = '-c -n tracking' ] || exit 2\necho '{SYNCED}'\n")
    script.chmod(0o755)
    assert asyncio.run(read_chrony(str(script))).synchronised is True
    failing = tmp_path / "chronyc-down"
    failing.write_text("#!/bin/sh\necho '506 Cannot talk to daemon' >&2\nexit 1\n")
    failing.chmod(0o755)
    with pytest.raises(ClockError, match="Cannot talk to daemon"):
        asyncio.run(read_chrony(str(failing)))
    health, heard = _health(tmp_path, clock="chrony", chronyc=str(failing), ups="off")
    asyncio.run(health.probe())
    assert heard.faults[0][:3] == ("clock_unreadable", "clock", True)


def test_kernel_clock_state_and_disk_and_no_thermal_zone(tmp_path: Path) -> None:
    sync = kernel_sync()  # this VM: not synchronised (no NTP client runs)
    assert sync.source == "kernel" and isinstance(sync.synchronised, bool)
    free = disk_free(tmp_path)
    stat = os.statvfs(tmp_path)
    assert free.total_bytes == stat.f_blocks * stat.f_frsize
    assert 0 < free.values()["free_pct"] <= 100
    health, heard = _health(tmp_path, ups="off", clock="kernel",
                            thermal_dir="/sys/class/thermal")
    asyncio.run(health.probe())
    assert set(heard.readings) == {"clock", "disk"} and heard.faults == []
    if not thermal_zones(Path("/sys/class/thermal")):
        assert health.sources["cpu"].startswith(f"{NOT_AVAILABLE}: no thermal zone")


def test_cpu_temperature_from_sysfs_layout(tmp_path: Path) -> None:
    for n, (kind, milli) in enumerate((("acpitz", "30000"), ("x86_pkg_temp", "71500"),
                                       ("cpu-thermal", "bad"))):
        zone = tmp_path / f"thermal_zone{n}"
        zone.mkdir()
        (zone / "type").write_text(kind + "\n")
        (zone / "temp").write_text(milli + "\n")
    zones = thermal_zones(tmp_path)
    assert [z.name for z in zones] == ["thermal_zone1", "thermal_zone2"]
    assert cpu_temperature(zones) == 71.5


def _rule(**settings: object) -> GatewayHealthRule:
    depot_ = Depot(site="d1", storehouses={}, doors={}, sensors={})
    return GatewayHealthRuleConfig.model_validate(settings).build(depot_)


def _changes(out: list[object]) -> list[tuple[str, str, Severity]]:
    return [(t.rule, t.kind.value, t.severity) for t in out if isinstance(t, Transition)]


def test_mains_lost_after_its_delay_battery_low_at_once() -> None:
    rule = _rule(mains_lost_after_s=60)
    ups = "gateway.ups"
    on_battery = {"on_battery": True, "battery_low": False, "charge_pct": 90.0}
    assert rule.observe(Reading(ups, 0, on_battery), 0) == []
    assert rule.tick(59 * S) == []
    assert _changes(rule.tick(60 * S)) == [("mains_lost", "firing", Severity.WARNING)]
    low = {**on_battery, "battery_low": True, "charge_pct": 9.0}
    assert _changes(rule.observe(Reading(ups, 61 * S, low), 61 * S)) == [
        ("ups_battery_low", "firing", Severity.ALARM)]
    back = {"on_battery": False, "battery_low": False, "charge_pct": 15.0}
    assert _changes(rule.observe(Reading(ups, 90 * S, back), 90 * S)) == [
        ("mains_lost", "resolved", Severity.WARNING),
        ("ups_battery_low", "resolved", Severity.ALARM)]
    # A blip shorter than the delay pages nobody.
    rule.observe(Reading(ups, 100 * S, on_battery), 100 * S)
    assert rule.observe(Reading(ups, 130 * S, back), 130 * S) == []
    assert rule.tick(200 * S) == []


def test_clock_disk_and_cpu_limits_with_hysteresis() -> None:
    rule = _rule(clock_unsynchronised_after_s=300)
    clock = "gateway.clock"
    assert rule.observe(Reading(clock, 0, {"synchronised": False}), 0) == []
    assert _changes(rule.tick(300 * S)) == [("clock_unsynchronised", "firing", Severity.WARNING)]
    synced_off = {"synchronised": True, "offset_s": 1.5}
    assert _changes(rule.observe(Reading(clock, 301 * S, synced_off), 301 * S)) == [
        ("clock_unsynchronised", "resolved", Severity.WARNING),
        ("clock_offset", "firing", Severity.WARNING)]
    assert rule.observe(Reading(clock, 302 * S, {**synced_off, "offset_s": 0.8}), 302 * S) == []
    assert _changes(rule.observe(Reading(clock, 303 * S, {**synced_off, "offset_s": 0.1}),
                                 303 * S)) == [("clock_offset", "resolved", Severity.WARNING)]
    disk = "gateway.disk"
    assert _changes(rule.observe(Reading(disk, 0, {"free_pct": 9.0}), 0)) == [
        ("disk_low", "firing", Severity.WARNING)]
    assert rule.observe(Reading(disk, S, {"free_pct": 11.0}), S) == []  # inside hysteresis
    assert _changes(rule.observe(Reading(disk, 2 * S, {"free_pct": 12.5}), 2 * S))[0][1] == \
        "resolved"
    cpu = "gateway.cpu"
    assert _changes(rule.observe(Reading(cpu, 0, {"temperature_c": 85.0}), 0))[0][:2] == \
        ("cpu_hot", "firing")
    assert rule.observe(Reading(cpu, S, {"temperature_c": 77.0}), S) == []


def test_state_survives_a_restart() -> None:
    rule = _rule()
    rule.observe(Reading("gateway.ups", 0, {"on_battery": True}), 0)
    again = _rule()
    again.restore(rule.snapshot())
    assert _changes(again.tick(60 * S)) == [("mains_lost", "firing", Severity.WARNING)]


@given(st.lists(st.tuples(st.sampled_from(["gateway.ups", "gateway.disk", "gateway.clock"]),
                          st.booleans(), st.floats(0, 100)), max_size=40))
def test_firing_and_resolved_alternate_per_condition(
        events: list[tuple[str, bool, float]]) -> None:
    rule = _rule(mains_lost_after_s=0, clock_unsynchronised_after_s=0)
    last: dict[str, TransitionKind] = {}
    for n, (sensor, flag, number) in enumerate(events):
        values = {"on_battery": flag, "battery_low": False, "charge_pct": number,
                  "free_pct": number, "synchronised": flag, "offset_s": number / 50}
        for t in [*rule.observe(Reading(sensor, n * S, values), n * S), *rule.tick(n * S)]:
            assert isinstance(t, Transition)
            assert last.get(t.rule, TransitionKind.RESOLVED) != t.kind, t
            last[t.rule] = t.kind
