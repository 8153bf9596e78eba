"""Never blind: an armed-door alarm arrives in time whatever else is wrong (issue "Never
blind"). Against the real broker, with the daemon in-process so its clock can be stepped."""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

from inprocess_daemon import depot, eventually, running
from servers import Mosquitto

from daemon.vocabulary.clock import SteadyClock

HOUR_NS = 3600 * 10**9


def _config(tmp_path: Path, broker: Mosquitto, **rules: dict[str, Any]) -> dict[str, Any]:
    config = depot(tmp_path / "state", broker.port)
    # Its own site: alert notices are retained on the shared broker.
    config["site"]["id"] = f"never-blind-{uuid.uuid4().hex[:8]}"
    config["doors"].append({"id": "SH1-D2", "storehouse": "SH1", "contact_sensor": "door2"})
    config["rules"] = [{"type": "door_armed"}, {"type": "gateway_fault"},
                       *({"type": kind, **settings} for kind, settings in rules.items())]
    return config


def _alerts_of(r: Any) -> str:
    return f"depotwatch/{r.daemon.config.site.id}/alerts/#"


def _first_alert(r: Any, key: str, state: str = "firing") -> dict[str, Any]:
    return next(a for a in r.probe.alerts() if a["key"] == key and a["state"] == state)


def _wait_alert(r: Any, key: str, state: str = "firing", timeout_s: float = 10.0) -> float:
    """Seconds until the alert's notice came in on the broker."""
    started = time.monotonic()
    eventually(lambda: any(a["key"] == key and a["state"] == state for a in r.probe.alerts()),
               timeout_s=timeout_s)
    return time.monotonic() - started


def test_an_opening_alarms_at_its_debounce_mark_whatever_the_tick(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """With 10 s between ticks, an armed door held open (no further readings) alarms at the
    400 ms debounce mark, not at the next tick; a 0.6 s opening between ticks alarms too."""
    with running(_config(tmp_path, mosquitto), tick_interval_s=10.0) as r:
        assert r.probe is not None
        r.call(r.probe.subscribe(_alerts_of(r)))
        time.sleep(1.5)  # past the start-up grace, into the 10 s tick interval
        r.publish("zigbee2mqtt/door1", {"contact": False})
        took = _wait_alert(r, "door_armed.SH1-D1", timeout_s=5)
        assert took < 1.4, f"alarm after {took:.2f} s"
        r.publish("zigbee2mqtt/door2", {"contact": False})
        time.sleep(0.6)
        r.publish("zigbee2mqtt/door2", {"contact": True})
        _wait_alert(r, "door_armed.SH1-D2", timeout_s=3)


def test_a_clock_step_is_a_fault_and_moves_no_timer(mosquitto: Mosquitto,
                                                     tmp_path: Path) -> None:
    """+1 h and -1 h steps of the gateway's clock: one "clock stepped" fault each time, no
    "sensor silent" storm, and an armed-door alarm still within its second."""
    step = [0]
    clock = SteadyClock(wall=lambda: time.time_ns() + step[0])
    config = _config(tmp_path, mosquitto, sensor_silent={"radio_s": 120, "wired_s": 60})
    with running(config, tick_interval_s=0.2, clock=clock) as r:
        assert r.probe is not None
        r.call(r.probe.subscribe(_alerts_of(r)))
        r.publish("zigbee2mqtt/clim1", {"temperature": 18.0, "humidity": 50.0})
        r.publish("zigbee2mqtt/door1", {"contact": True})
        time.sleep(1.0)
        step[0] = HOUR_NS
        _wait_alert(r, "clock_stepped.gateway", timeout_s=5)
        assert "+3600 s" in _first_alert(r, "clock_stepped.gateway")["summary"]
        step[0] = -HOUR_NS
        eventually(lambda: sum(1 for a in r.probe.alerts()  # type: ignore[union-attr]
                               if a["key"] == "clock_stepped.gateway") >= 1)
        time.sleep(1.0)
        r.publish("zigbee2mqtt/door1", {"contact": False})
        took = _wait_alert(r, "door_armed.SH1-D1", timeout_s=5)
        keys = {a["key"] for a in r.probe.alerts()}
    assert took < 1.4
    assert not [k for k in keys if k.startswith("sensor_silent")], keys


def test_an_implausible_value_is_a_sensor_fault_not_a_climate_alarm(
        mosquitto: Mosquitto, tmp_path: Path) -> None:
    """-999 °C and 1e308 °C: a sensor_fault alert and dead letters, never a temperature alarm
    or a sustain timer; the next plausible reading clears the fault."""
    config = _config(tmp_path, mosquitto, climate={}, condensation={}, climate_swing={})
    with running(config) as r:
        assert r.probe is not None
        r.call(r.probe.subscribe(_alerts_of(r)))
        r.publish("zigbee2mqtt/clim1", {"temperature": 18.0, "humidity": 50.0})
        r.publish("zigbee2mqtt/clim1", {"temperature": -999.0, "humidity": 50.0})
        r.publish("zigbee2mqtt/clim1", {"temperature": 1e308, "humidity": 50.0})
        _wait_alert(r, "sensor_fault.clim1")
        eventually(lambda: r.daemon.deadletters.counts.get("zigbee2mqtt/clim1", 0) == 2)
        r.publish("zigbee2mqtt/clim1", {"temperature": 18.5, "humidity": 50.0})
        _wait_alert(r, "sensor_fault.clim1", "resolved")
        time.sleep(0.5)
        keys = {a["key"] for a in r.probe.alerts()}
    assert keys == {"sensor_fault.clim1"}, keys
