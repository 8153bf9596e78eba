"""The fault matrix (issue "Never blind"): whatever else is wrong, an armed door that opens
is at the notifier within 10 s, published at QoS 0 and at QoS 1.

Real parts throughout: our own Mosquitto (restarted in one case) and InfluxDB (stopped in
one case), the daemon in-process so its clock can be stepped (`running(..., clock=...)`), and
a real webhook notifier posting to an aiohttp receiver. One daemon goes through the cases one
after the other, each with doors of its own (a critical alarm stays open until checked); the
full-disk case has its own daemon whose state dir is on a 4 MiB tmpfs (`mount -t tmpfs`,
root; skipped where it cannot be mounted).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fault_matrix import LIMIT_S, run_matrix
from servers import InfluxDB1, Mosquitto


@pytest.fixture()
def servers(tmp_path: Path) -> Iterator[tuple[Mosquitto, InfluxDB1]]:
    with Mosquitto(tmp_path / "mqtt") as broker, InfluxDB1(tmp_path / "influx") as influx:
        influx.create_database("matrix")
        yield broker, influx


def test_an_armed_door_reaches_the_notifier_within_10_s_whatever_the_fault(
        servers: tuple[Mosquitto, InfluxDB1], tmp_path: Path) -> None:
    broker, influx = servers
    took = run_matrix(broker, influx, tmp_path)
    print("\n" + "\n".join(f"{case:<36} {seconds:6.2f} s"
                            for case, seconds in sorted(took.items())))
    late = {case: seconds for case, seconds in took.items() if seconds > LIMIT_S}
    assert not late, took
